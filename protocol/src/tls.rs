//! TLS for the client connection, with the semantics of the MySQL client's
//! `--ssl-mode`.
//!
//! The protocol upgrades a plain TCP connection in place: the server's
//! handshake advertises `CLIENT_SSL`, the client answers with a short SSL
//! request packet and both sides then run a TLS handshake on the same socket.
//! This module only decides *how* that handshake verifies the server and
//! performs it ([`TlsSetup::connect`]); sending the SSL request and falling
//! back to plaintext for `PREFERRED` is the client's job.
//!
//! | mode              | TLS        | certificate chain                  | host name |
//! |-------------------|------------|------------------------------------|-----------|
//! | `DISABLED`        | never      | –                                  | –         |
//! | `PREFERRED`       | if offered | `ssl-ca`, else the system CA file  | no        |
//! | `REQUIRED`        | mandatory  | only if `ssl-ca` is given          | no        |
//! | `VERIFY_CA`       | mandatory  | `ssl-ca`, else the system CA file  | no        |
//! | `VERIFY_IDENTITY` | mandatory  | `ssl-ca`, else the system CA file  | yes       |
//!
//! Like `mysql`, giving `ssl-ca` with `REQUIRED` verifies the chain as
//! `VERIFY_CA` does: a user who names a CA expects it to be used. Unlike
//! `mysql`, the default `PREFERRED` verifies the chain too (against the
//! system CAs when no `ssl-ca` is given): certificates are checked unless
//! the user says otherwise, and `REQUIRED` without `ssl-ca` is how to say
//! "encrypt, but do not check" (a warning is logged each time).
//!
//! Only TLS 1.2 and 1.3 are spoken (rustls has nothing older): a server whose
//! TLS library stops at 1.1 (old yaSSL builds) fails the handshake rather
//! than silently falling back to a weak protocol.

mod files;
#[cfg(test)]
mod tests;
mod verify;

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::{VerifierBuilderError, WebPkiServerVerifier};
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub use files::{parse_certificates, parse_private_key, PemProblem, PemRole};

/// How much TLS the connection demands, as the MySQL client's `--ssl-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    /// Plaintext only.
    Disabled,
    /// TLS when the server offers it, plaintext otherwise (MySQL's default).
    #[default]
    Preferred,
    /// TLS or no connection; the certificate is verified only if a CA is given.
    Required,
    /// TLS with the server's chain verified; any host name is accepted.
    VerifyCa,
    /// TLS with the chain and the host name verified.
    VerifyIdentity,
}

impl SslMode {
    /// Every mode, weakest first.
    pub const ALL: [SslMode; 5] = [
        SslMode::Disabled,
        SslMode::Preferred,
        SslMode::Required,
        SslMode::VerifyCa,
        SslMode::VerifyIdentity,
    ];

    /// The spelling `mysql --ssl-mode` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `--ssl-mode` value that names no mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ssl-mode {input:?}: expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY")]
pub struct ParseSslModeError {
    /// What was given.
    pub input: String,
}

impl FromStr for SslMode {
    type Err = ParseSslModeError;

    /// Case-insensitive, and `verify-ca` is as good as `VERIFY_CA`: option
    /// files and URLs spell it both ways.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.replace('-', "_");
        SslMode::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| ParseSslModeError { input: s.to_owned() })
    }
}

/// The user's TLS settings: `--ssl-mode`, `--ssl-ca`, `--ssl-cert`, `--ssl-key`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// How much TLS is demanded.
    pub mode: SslMode,
    /// PEM file of the CA certificate(s) the server's chain must lead to.
    pub ca: Option<PathBuf>,
    /// PEM file of the client certificate (chain), for servers that `REQUIRE X509`.
    pub cert: Option<PathBuf>,
    /// PEM file of the client certificate's unencrypted private key.
    pub key: Option<PathBuf>,
}

/// A ready TLS client configuration and what it promises, so the caller can
/// enforce `required` and warn when the server is not authenticated.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// The rustls configuration; cheap to clone and share between connections.
    pub config: Arc<ClientConfig>,
    /// TLS is mandatory: a server that does not offer it must be refused.
    /// False only for `PREFERRED`.
    pub required: bool,
    /// The server's certificate chain is verified against a CA. When false the
    /// link is encrypted but a man in the middle would not be noticed.
    pub verifies_peer: bool,
    /// The host name is checked against the certificate (`VERIFY_IDENTITY`).
    pub verifies_host: bool,
}

impl TlsOptions {
    /// Builds the client configuration; `None` when the mode is `DISABLED`.
    ///
    /// All files are read here, once, so a bad path fails at start-up rather
    /// than at the first reconnect. Without `ssl-ca`, `VERIFY_CA` and
    /// `VERIFY_IDENTITY` use the system CA bundle (`SSL_CERT_FILE`, else the
    /// usual distribution paths).
    pub fn client_config(&self) -> Result<Option<TlsSetup>, TlsError> {
        self.client_config_with(&files::system_ca_candidates())
    }

    /// [`Self::client_config`] with the system CA bundles to try spelled out,
    /// so tests do not depend on the machine.
    fn client_config_with(&self, system_cas: &[PathBuf]) -> Result<Option<TlsSetup>, TlsError> {
        if self.mode == SslMode::Disabled {
            return Ok(None);
        }
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                Some((cert, key, files::load_cert_chain(cert)?, files::load_key(key)?))
            }
            (Some(cert), None) => return Err(TlsError::CertWithoutKey { cert: cert.clone() }),
            (None, Some(key)) => return Err(TlsError::KeyWithoutCert { key: key.clone() }),
            (None, None) => None,
        };

        // An explicit provider: nothing here depends on which crypto provider
        // (if any) another part of the process installed as the default.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match (self.mode, &self.ca) {
            (SslMode::Required, None) => None,
            (_, Some(ca)) => Some(files::load_ca_file(ca)?),
            (_, None) => Some(files::load_system_cas(system_cas).ok_or_else(|| TlsError::NoCa {
                mode: self.mode,
                tried: system_cas.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            })?),
        };
        let verifies_host = self.mode == SslMode::VerifyIdentity;
        let verifies_peer = roots.is_some();
        let verifier: Arc<dyn ServerCertVerifier> = match roots {
            None => Arc::new(verify::EncryptOnly::new(&provider)),
            Some(roots) => {
                let webpki = webpki_verifier(roots, &provider)?;
                if verifies_host {
                    webpki
                } else {
                    Arc::new(verify::CaOnly::new(webpki))
                }
            }
        };

        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config =
            match identity {
                None => builder.with_no_client_auth(),
                Some((cert, key, chain, private)) => {
                    builder.with_client_auth_cert(chain, private).map_err(|source| {
                        TlsError::ClientIdentity { cert: cert.clone(), key: key.clone(), source }
                    })?
                }
            };
        Ok(Some(TlsSetup {
            config: Arc::new(config),
            required: self.mode != SslMode::Preferred,
            verifies_peer,
            verifies_host,
        }))
    }
}

fn webpki_verifier(
    roots: RootCertStore,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(TlsError::Verifier)
}

impl TlsSetup {
    /// Runs the TLS handshake over `io` (the socket, right after the SSL
    /// request packet was sent) for a server reached as `host`.
    pub async fn connect<IO>(&self, host: &str, io: IO) -> Result<TlsStream<IO>, TlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = server_name(host)?;
        TlsConnector::from(self.config.clone())
            .connect(name, io)
            .await
            .map_err(|source| TlsError::from_handshake(host, source))
    }
}

/// The name a server certificate is checked against. IP literals (`10.0.0.5`,
/// `::1`, `[::1]`) become IP names, matched against the certificate's IP
/// subjectAltNames; anything else must be a valid DNS name.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let invalid = || TlsError::InvalidHost { host: host.to_owned() };
    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if let Some(inner) = unbracketed {
        return inner.parse::<IpAddr>().map(ServerName::from).map_err(|_| invalid());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::from(ip));
    }
    ServerName::try_from(host.to_owned()).map_err(|_| invalid())
}

/// Why TLS could not be set up or established.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read the {role} {}: {source}", .path.display())]
    Read {
        /// Which option named the file.
        role: PemRole,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// A PEM file holds nothing of the expected kind.
    #[error(
        "the {role} {} holds no {}: expected a PEM block \"-----BEGIN {}-----\"",
        .path.display(),
        .role.content(),
        .role.pem_label()
    )]
    Empty {
        /// Which option named the file.
        role: PemRole,
        /// The file.
        path: PathBuf,
    },
    /// A PEM file is damaged, or holds something unusable.
    #[error("the {role} {} is unusable: {detail}", .path.display())]
    Malformed {
        /// Which option named the file.
        role: PemRole,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// `ssl-cert` without `ssl-key`.
    #[error("a client certificate (ssl-cert {}) needs its private key too (ssl-key)", .cert.display())]
    CertWithoutKey {
        /// The certificate file.
        cert: PathBuf,
    },
    /// `ssl-key` without `ssl-cert`.
    #[error("a client key (ssl-key {}) needs its certificate too (ssl-cert)", .key.display())]
    KeyWithoutCert {
        /// The key file.
        key: PathBuf,
    },
    /// The client certificate and key do not belong together, or the key type
    /// is not supported.
    #[error(
        "cannot use the client certificate {} with the key {}: {}",
        .cert.display(),
        .key.display(),
        explain_identity(.source)
    )]
    ClientIdentity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls found.
        #[source]
        source: rustls::Error,
    },
    /// A verifying mode without `ssl-ca` on a machine without a CA bundle.
    #[error(
        "ssl-mode={mode} verifies the server certificate, but no CA is known: give ssl-ca, \
         or ssl-mode=REQUIRED to encrypt without checking the certificate \
         (no system CA bundle found; tried {tried})"
    )]
    NoCa {
        /// The mode that needs a CA.
        mode: SslMode,
        /// The system bundles looked for, comma-separated.
        tried: String,
    },
    /// The host cannot be expressed as a certificate name.
    #[error("cannot check the server certificate for host {host:?}: it is neither an IP address nor a valid DNS name")]
    InvalidHost {
        /// The host as given.
        host: String,
    },
    /// rustls refused the configuration (should not happen with the ring provider).
    #[error("cannot configure TLS: {0}")]
    Config(#[source] rustls::Error),
    /// The certificate verifier could not be built from the CA certificates.
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(#[source] VerifierBuilderError),
    /// The server's certificate was rejected.
    #[error("the TLS certificate of {host} was rejected: {}", explain_rejection(.reason, .host))]
    ServerCertificate {
        /// The host as given.
        host: String,
        /// What was wrong with the certificate.
        reason: CertificateError,
    },
    /// The TLS handshake failed for another reason (I/O, alert, protocol).
    #[error("TLS handshake with {host} failed: {source}{}", handshake_hint(.source))]
    Handshake {
        /// The host as given.
        host: String,
        /// The failure, as tokio-rustls reports it.
        #[source]
        source: io::Error,
    },
}

impl TlsError {
    /// Pulls a certificate rejection out of tokio-rustls' `io::Error`, because
    /// "wrong CA" or "wrong name" is what a DBA needs to see, not "invalid data".
    fn from_handshake(host: &str, source: io::Error) -> TlsError {
        let rustls_error = source.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(reason)) = rustls_error {
            return TlsError::ServerCertificate { host: host.to_owned(), reason: reason.clone() };
        }
        TlsError::Handshake { host: host.to_owned(), source }
    }

    /// The reason the server certificate was rejected, if that is the failure.
    pub fn certificate_error(&self) -> Option<&CertificateError> {
        match self {
            TlsError::ServerCertificate { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// Words for the certificate rejections a misconfigured setup produces.
fn explain_rejection(reason: &CertificateError, host: &str) -> String {
    match reason {
        CertificateError::UnknownIssuer => {
            "it is not signed by the trusted CA (check ssl-ca: it must be the \
             CA that issued the server's certificate)"
                .to_owned()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
            "{reason}; connect with a name the certificate lists instead of {host:?}, \
             or use ssl-mode=VERIFY_CA to check only the CA"
        ),
        CertificateError::BadSignature => "its signature does not match its issuer's key".to_owned(),
        other => other.to_string(),
    }
}

fn explain_identity(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InconsistentKeys(_) => "the key does not belong to this certificate".to_owned(),
        other => other.to_string(),
    }
}

/// The alerts a server sends when it wants a client certificate it trusts.
fn handshake_hint(error: &io::Error) -> &'static str {
    use rustls::AlertDescription as Alert;
    match error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(
            Alert::CertificateRequired | Alert::BadCertificate | Alert::UnknownCA,
        )) => " (does the server require a client certificate? see ssl-cert and ssl-key)",
        _ => "",
    }
}
