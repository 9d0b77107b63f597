//! Errors of the authentication exchange. None of them carries the password.

use thiserror::Error;

/// Why the client side of a login could not go on.
///
/// Server-side refusals arrive as ERR packets and are not handled here; these are the cases where
/// *we* cannot or will not produce the next packet.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The server asked for a plugin gapless does not implement.
    #[error("authentication plugin {0:?} is not supported")]
    UnsupportedPlugin(String),
    /// The server sent (or the user configured) an RSA public key we cannot use.
    #[error("server RSA public key is unusable: {0}")]
    BadPublicKey(#[from] PublicKeyError),
    /// An AuthMoreData packet this plugin does not expect at this point.
    #[error("unexpected auth data from the server for plugin {plugin}: {}", describe_data(*.first_byte, *.len))]
    UnexpectedData {
        /// Plugin in use when the data arrived.
        plugin: String,
        /// First byte of the data (after the 0x01 packet marker), if any.
        first_byte: Option<u8>,
        /// Length of the data.
        len: usize,
    },
    /// The plugin would send the password in clear text over a connection that is not encrypted.
    #[error(
        "refusing to send a cleartext password over an unencrypted connection (plugin {plugin}); \
         use TLS or a unix socket"
    )]
    Insecure {
        /// Plugin that needs the cleartext password.
        plugin: String,
    },
    /// RSA-OAEP with SHA-1 fits at most `key bytes - 42` bytes, the password's NUL included.
    #[error("password is too long to encrypt with a {key_bits}-bit RSA key (at most {max} bytes)")]
    PasswordTooLong {
        /// Size of the server's RSA modulus.
        key_bits: usize,
        /// Longest password that fits.
        max: usize,
    },
    /// The password must be masked with the server's scramble before RSA encryption.
    #[error("the server sent an empty scramble, so the password cannot be masked for RSA encryption")]
    EmptyNonce,
    /// The RSA operation itself failed.
    #[error("RSA encryption of the password failed: {0}")]
    Rsa(#[source] rsa::Error),
    /// No randomness for the OAEP padding.
    #[error("no random bytes for RSA-OAEP padding: {0}")]
    Random(&'static str),
}

/// Why a PEM public key was rejected.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PublicKeyError {
    /// Neither PEM label MySQL uses was found.
    #[error("not a PEM public key (expected \"BEGIN PUBLIC KEY\" or \"BEGIN RSA PUBLIC KEY\")")]
    NotPem,
    /// `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo, what MySQL servers send) failed to decode.
    #[error("bad SubjectPublicKeyInfo PEM (BEGIN PUBLIC KEY): {0}")]
    Spki(#[source] rsa::pkcs8::spki::Error),
    /// `BEGIN RSA PUBLIC KEY` (PKCS#1) failed to decode.
    #[error("bad PKCS#1 PEM (BEGIN RSA PUBLIC KEY): {0}")]
    Pkcs1(#[source] rsa::pkcs1::Error),
}

fn describe_data(first_byte: Option<u8>, len: usize) -> String {
    match first_byte {
        Some(byte) => format!("first byte 0x{byte:02x} of {len}"),
        None => "empty packet".to_owned(),
    }
}
