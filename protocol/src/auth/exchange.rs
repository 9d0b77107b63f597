//! The plugin-data half of a login, after the server's handshake, as a sans-IO machine.
//!
//! ```text
//! client                                   server
//!   HandshakeResponse41(initial_response) ->
//!                                        <- AuthSwitchRequest 0xFE  -> switch()
//!                                        <- AuthMoreData 0x01       -> more_data()
//!                                        <- OK 0x00 / ERR 0xFF         (caller)
//! ```
//!
//! The caller frames packets and handles OK/ERR; this type only turns plugin data into the
//! bytes to send next, and refuses anything a plugin does not expect at that point.

use std::fmt;

use super::ed25519::ed25519_signature;
use super::error::AuthError;
use super::plugin::AuthPlugin;
use super::rsa_password::rsa_encrypt_password;
use super::scramble::{caching_sha2_password, native_password};

/// `caching_sha2_password`: the cached hash matched; OK follows.
const FAST_AUTH_SUCCESS: u8 = 0x03;
/// `caching_sha2_password`: cache miss; the server needs the password itself.
const PERFORM_FULL_AUTH: u8 = 0x04;
/// `caching_sha2_password` asks for the server's RSA public key with this byte.
const CACHING_SHA2_REQUEST_KEY: u8 = 0x02;
/// `sha256_password` asks for the server's RSA public key with this byte.
const SHA256_REQUEST_KEY: u8 = 0x01;

/// What the next AuthMoreData may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    /// Only OK, ERR or an auth switch: any AuthMoreData is a protocol error.
    Verdict,
    /// `caching_sha2_password` scramble sent: 0x03 (fast auth ok) or 0x04 (full auth).
    FastAuthResult,
    /// Key requested: the next AuthMoreData is the server's PEM public key.
    PublicKey,
}

/// Client side of the authentication plugin exchange for one connection.
///
/// Holds the password for the duration of the login; its `Debug` output never shows it.
pub struct AuthExchange {
    plugin: AuthPlugin,
    password: Vec<u8>,
    nonce: Vec<u8>,
    secure: bool,
    server_key: Option<Vec<u8>>,
    awaiting: Awaiting,
}

impl AuthExchange {
    /// Starts with the plugin and nonce of the server's handshake.
    ///
    /// `secure` = the connection is TLS (or a unix socket): cleartext password allowed.
    pub fn new(plugin: AuthPlugin, password: Vec<u8>, nonce: Vec<u8>, secure: bool) -> Self {
        Self { plugin, password, nonce, secure, server_key: None, awaiting: Awaiting::Verdict }
    }

    /// Optional server RSA public key configured by the user (skips asking the server for it,
    /// which an active attacker could otherwise answer with their own key).
    pub fn with_server_public_key(mut self, pem: Vec<u8>) -> Self {
        self.server_key = Some(pem);
        self
    }

    /// The plugin currently in use (changes on an auth switch).
    pub fn plugin(&self) -> &AuthPlugin {
        &self.plugin
    }

    /// Auth data to put in the HandshakeResponse41.
    pub fn initial_response(&mut self) -> Result<Vec<u8>, AuthError> {
        self.start()
    }

    /// Server sent AuthSwitchRequest (0xFE, plugin name, plugin data): switch plugin and nonce,
    /// return the response to send.
    pub fn switch(&mut self, plugin_name: &[u8], data: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.plugin = AuthPlugin::from_name(plugin_name);
        self.nonce = data.to_vec();
        self.start()
    }

    /// Server sent AuthMoreData (0x01 + data, the 0x01 already stripped): returns the bytes to
    /// send, or `None` to just wait for the next packet (after caching_sha2 fast-auth success).
    pub fn more_data(&mut self, data: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
        match (self.awaiting, data) {
            (Awaiting::FastAuthResult, [FAST_AUTH_SUCCESS]) => {
                self.awaiting = Awaiting::Verdict;
                Ok(None)
            }
            (Awaiting::FastAuthResult, [PERFORM_FULL_AUTH]) => {
                self.send_password(CACHING_SHA2_REQUEST_KEY).map(Some)
            }
            (Awaiting::PublicKey, pem) => {
                self.awaiting = Awaiting::Verdict;
                rsa_encrypt_password(&self.password, &self.nonce, pem).map(Some)
            }
            (Awaiting::FastAuthResult | Awaiting::Verdict, _) => Err(self.unexpected(data)),
        }
    }

    /// The first response of the current plugin to the current nonce.
    fn start(&mut self) -> Result<Vec<u8>, AuthError> {
        self.awaiting = Awaiting::Verdict;
        match &self.plugin {
            AuthPlugin::MysqlNativePassword => Ok(native_password(&self.password, &self.nonce)),
            AuthPlugin::ClientEd25519 => Ok(ed25519_signature(&self.password, &self.nonce).to_vec()),
            AuthPlugin::CachingSha2Password => {
                self.awaiting = Awaiting::FastAuthResult;
                Ok(caching_sha2_password(&self.password, &self.nonce))
            }
            // MySQL's client sends a lone zero byte for an empty password, whatever the transport.
            AuthPlugin::Sha256Password if self.password.is_empty() => Ok(vec![0]),
            AuthPlugin::Sha256Password => self.send_password(SHA256_REQUEST_KEY),
            AuthPlugin::MysqlClearPassword if self.secure => Ok(self.cleartext()),
            AuthPlugin::MysqlClearPassword => {
                Err(AuthError::Insecure { plugin: self.plugin.name().to_owned() })
            }
            AuthPlugin::Other(name) => Err(AuthError::UnsupportedPlugin(name.clone())),
        }
    }

    /// The password itself, as `sha256_password` and `caching_sha2_password` full auth need it:
    /// in clear over a secure transport, else encrypted to the configured key, else ask the
    /// server for its key with `request_key` and encrypt on the next AuthMoreData.
    fn send_password(&mut self, request_key: u8) -> Result<Vec<u8>, AuthError> {
        self.awaiting = Awaiting::Verdict;
        if self.secure {
            Ok(self.cleartext())
        } else if let Some(pem) = &self.server_key {
            rsa_encrypt_password(&self.password, &self.nonce, pem)
        } else {
            self.awaiting = Awaiting::PublicKey;
            Ok(vec![request_key])
        }
    }

    /// `password || 0x00`: the plugins send it NUL-terminated.
    fn cleartext(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.password.len() + 1);
        out.extend_from_slice(&self.password);
        out.push(0);
        out
    }

    fn unexpected(&self, data: &[u8]) -> AuthError {
        AuthError::UnexpectedData {
            plugin: self.plugin.name().to_owned(),
            first_byte: data.first().copied(),
            len: data.len(),
        }
    }
}

impl fmt::Debug for AuthExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthExchange")
            .field("plugin", &self.plugin)
            .field("password", &"<redacted>")
            .field("nonce_len", &self.nonce.len())
            .field("secure", &self.secure)
            .field("server_key_configured", &self.server_key.is_some())
            .field("awaiting", &self.awaiting)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ed25519::ed25519_public_key;
    use crate::auth::testutil::{decrypt_password, NONCE_A, NONCE_B, PUBLIC_PKCS1_PEM, PUBLIC_SPKI_PEM};
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    const PASSWORD: &[u8] = b"s3cr3t-pw";

    fn exchange(plugin: AuthPlugin, secure: bool) -> AuthExchange {
        AuthExchange::new(plugin, PASSWORD.to_vec(), NONCE_A.to_vec(), secure)
    }

    fn password_nul() -> Vec<u8> {
        [PASSWORD, b"\0"].concat()
    }

    fn nul_terminated(nonce: &[u8]) -> Vec<u8> {
        [nonce, b"\0"].concat()
    }

    fn more(ex: &mut AuthExchange, data: &[u8]) -> Option<Vec<u8>> {
        ex.more_data(data).expect("AuthMoreData accepted")
    }

    #[test]
    fn caching_sha2_fast_auth_success_waits_for_ok() {
        let mut ex = exchange(AuthPlugin::CachingSha2Password, false);
        assert_eq!(ex.initial_response().unwrap(), caching_sha2_password(PASSWORD, &NONCE_A));
        assert_eq!(more(&mut ex, &[0x03]), None);
        // Only OK/ERR may follow now.
        assert!(matches!(ex.more_data(&[0x03]), Err(AuthError::UnexpectedData { .. })));
    }

    #[test]
    fn caching_sha2_full_auth_over_tls_sends_cleartext() {
        let mut ex = exchange(AuthPlugin::CachingSha2Password, true);
        ex.initial_response().unwrap();
        assert_eq!(more(&mut ex, &[0x04]), Some(password_nul()));
        assert!(ex.more_data(&[0x04]).is_err());
    }

    #[test]
    fn caching_sha2_full_auth_without_tls_requests_the_key_then_encrypts() {
        let mut ex = exchange(AuthPlugin::CachingSha2Password, false);
        ex.initial_response().unwrap();
        assert_eq!(more(&mut ex, &[0x04]), Some(vec![0x02]));
        let ciphertext = more(&mut ex, PUBLIC_SPKI_PEM).expect("encrypted password");
        assert_eq!(decrypt_password(&ciphertext, &NONCE_A), password_nul());
        assert!(ex.more_data(PUBLIC_SPKI_PEM).is_err());
    }

    #[test]
    fn caching_sha2_full_auth_with_configured_key_does_not_ask() {
        let mut ex = exchange(AuthPlugin::CachingSha2Password, false)
            .with_server_public_key(PUBLIC_PKCS1_PEM.to_vec());
        ex.initial_response().unwrap();
        let ciphertext = more(&mut ex, &[0x04]).expect("encrypted password");
        assert_eq!(decrypt_password(&ciphertext, &NONCE_A), password_nul());
    }

    #[test]
    fn caching_sha2_rejects_a_bad_key_from_the_server() {
        let mut ex = exchange(AuthPlugin::CachingSha2Password, false);
        ex.initial_response().unwrap();
        more(&mut ex, &[0x04]);
        assert!(matches!(ex.more_data(b"not a key"), Err(AuthError::BadPublicKey(_))));
    }

    #[test]
    fn garbage_more_data_names_plugin_and_byte() {
        let mut ex = exchange(AuthPlugin::CachingSha2Password, false);
        ex.initial_response().unwrap();
        let err = ex.more_data(&[0x07, 0x00]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("caching_sha2_password") && text.contains("0x07"), "{text}");
        let err = ex.more_data(&[]).unwrap_err();
        assert!(err.to_string().contains("empty packet"), "{err}");
    }

    #[test]
    fn sha256_over_tls_sends_cleartext() {
        let mut ex = exchange(AuthPlugin::Sha256Password, true);
        assert_eq!(ex.initial_response().unwrap(), password_nul());
        assert!(ex.more_data(PUBLIC_SPKI_PEM).is_err());
    }

    #[test]
    fn sha256_without_tls_requests_the_key_then_encrypts() {
        let mut ex = exchange(AuthPlugin::Sha256Password, false);
        assert_eq!(ex.initial_response().unwrap(), vec![0x01]);
        let ciphertext = more(&mut ex, PUBLIC_SPKI_PEM).expect("encrypted password");
        assert_eq!(decrypt_password(&ciphertext, &NONCE_A), password_nul());
    }

    #[test]
    fn sha256_with_configured_key_encrypts_at_once() {
        let mut ex =
            exchange(AuthPlugin::Sha256Password, false).with_server_public_key(PUBLIC_SPKI_PEM.to_vec());
        let ciphertext = ex.initial_response().unwrap();
        assert_eq!(decrypt_password(&ciphertext, &NONCE_A), password_nul());
    }

    #[test]
    fn sha256_empty_password_sends_a_zero_byte() {
        for secure in [false, true] {
            let mut ex = AuthExchange::new(AuthPlugin::Sha256Password, Vec::new(), NONCE_A.to_vec(), secure);
            assert_eq!(ex.initial_response().unwrap(), vec![0]);
        }
    }

    #[test]
    fn switch_from_native_to_ed25519() {
        let mut ex = exchange(AuthPlugin::MysqlNativePassword, false);
        assert_eq!(ex.initial_response().unwrap(), native_password(PASSWORD, &NONCE_A));
        let nonce: Vec<u8> = (100u8..132).collect();
        let response = ex.switch(b"client_ed25519", &nonce).unwrap();
        assert_eq!(ex.plugin(), &AuthPlugin::ClientEd25519);
        let public = VerifyingKey::from_bytes(&ed25519_public_key(PASSWORD)).unwrap();
        let signature = Signature::from_slice(&response).expect("64-byte signature");
        public.verify(&nonce, &signature).expect("signature verifies");
        assert!(ex.more_data(&[0x01]).is_err());
    }

    #[test]
    fn switch_from_caching_sha2_to_native_uses_the_new_scramble() {
        let mut ex = exchange(AuthPlugin::CachingSha2Password, false);
        ex.initial_response().unwrap();
        let response = ex.switch(b"mysql_native_password\0", &nul_terminated(&NONCE_B)).unwrap();
        assert_eq!(ex.plugin(), &AuthPlugin::MysqlNativePassword);
        assert_eq!(response, native_password(PASSWORD, &NONCE_B));
        // The caching_sha2 fast-auth state is gone.
        assert!(ex.more_data(&[0x03]).is_err());
    }

    #[test]
    fn switch_to_sha256_masks_with_the_new_scramble() {
        let mut ex = exchange(AuthPlugin::MysqlNativePassword, false);
        ex.initial_response().unwrap();
        assert_eq!(ex.switch(b"sha256_password", &nul_terminated(&NONCE_B)).unwrap(), vec![0x01]);
        let ciphertext = more(&mut ex, PUBLIC_SPKI_PEM).expect("encrypted password");
        assert_eq!(decrypt_password(&ciphertext, &NONCE_B), password_nul());
    }

    #[test]
    fn clear_password_only_when_secure() {
        let mut ex = exchange(AuthPlugin::MysqlClearPassword, true);
        assert_eq!(ex.initial_response().unwrap(), password_nul());

        let mut ex = exchange(AuthPlugin::MysqlNativePassword, false);
        ex.initial_response().unwrap();
        let err = ex.switch(b"mysql_clear_password", b"").unwrap_err();
        assert!(matches!(&err, AuthError::Insecure { plugin } if plugin == "mysql_clear_password"));
        assert!(err.to_string().contains("unencrypted"), "{err}");
    }

    #[test]
    fn unknown_plugin_is_unsupported() {
        let mut ex = exchange(AuthPlugin::MysqlNativePassword, true);
        let err = ex.switch(b"auth_gssapi_client", b"nonce").unwrap_err();
        assert!(matches!(&err, AuthError::UnsupportedPlugin(name) if name == "auth_gssapi_client"));
        let mut ex = exchange(AuthPlugin::Other("dialog".into()), true);
        assert!(matches!(ex.initial_response(), Err(AuthError::UnsupportedPlugin(name)) if name == "dialog"));
    }

    #[test]
    fn native_password_rejects_more_data() {
        let mut ex = exchange(AuthPlugin::MysqlNativePassword, false);
        ex.initial_response().unwrap();
        let err = ex.more_data(&[0x04]).unwrap_err();
        assert!(err.to_string().contains("mysql_native_password"), "{err}");
    }

    #[test]
    fn debug_and_errors_never_show_the_password() {
        let mut ex = exchange(AuthPlugin::CachingSha2Password, false);
        ex.initial_response().unwrap();
        let mut texts = vec![format!("{ex:?}")];
        assert!(texts[0].contains("<redacted>"), "{}", texts[0]);
        let garbage = ex.more_data(&[0x09]).unwrap_err();
        let insecure = ex.switch(b"mysql_clear_password", b"").unwrap_err();
        for err in [garbage, insecure] {
            texts.push(format!("{err} {err:?}"));
        }
        let as_text = String::from_utf8_lossy(PASSWORD).into_owned();
        let as_bytes = format!("{PASSWORD:?}");
        for text in texts {
            assert!(!text.contains(&as_text) && !text.contains(&as_bytes), "password leaked: {text}");
        }
    }
}
