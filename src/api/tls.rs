//! HTTPS for the API: the server certificate and key from PEM files (read
//! like the client side reads its own, see `gapless_protocol::tls`), and
//! rustls with the ring provider.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use gapless_protocol::tls::{parse_certificates, parse_private_key, PemProblem};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::ApiError;

/// The flags that name the files, in messages.
pub(crate) const CERT_FLAG: &str = "--api-tls-cert";
pub(crate) const KEY_FLAG: &str = "--api-tls-key";

/// The API's TLS server side.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Loads the certificate chain (the server's certificate first) and its
    /// private key (PKCS#8, PKCS#1 RSA or SEC1 EC, unencrypted) from PEM
    /// files, and checks that they belong together. Errors name the file.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, ApiError> {
        let chain = load_chain(cert)?;
        let private = load_key(key)?;
        // An explicit provider: nothing depends on which one (if any) the
        // process installed as its default.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let identity_error = |e: rustls::Error| ApiError::TlsIdentity {
            cert: cert.to_owned(),
            key: key.to_owned(),
            detail: explain_identity(&e),
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(identity_error)?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(identity_error)?;
        // The API speaks HTTP/1.1 only; a client that offers h2 falls back.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(config)) })
    }
}

fn file_error(flag: &'static str, path: &Path, detail: impl fmt::Display) -> ApiError {
    ApiError::TlsFile { flag, path: path.to_owned(), detail: detail.to_string() }
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, ApiError> {
    std::fs::read(path).map_err(|e| file_error(flag, path, e))
}

/// Every certificate of the PEM file; at least one.
fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ApiError> {
    parse_certificates(&read(CERT_FLAG, path)?).map_err(|problem| match problem {
        PemProblem::Empty => {
            file_error(CERT_FLAG, path, "no certificate in it (expected PEM: BEGIN CERTIFICATE)")
        }
        other => file_error(CERT_FLAG, path, format_args!("not a PEM certificate file: {other}")),
    })
}

/// The private key of the PEM file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ApiError> {
    // A private key is a secret like a password: its owner's only.
    crate::private_file::check_private(path).map_err(|why| file_error(KEY_FLAG, path, why))?;
    parse_private_key(&read(KEY_FLAG, path)?).map_err(|problem| match problem {
        PemProblem::Empty => {
            file_error(KEY_FLAG, path, "no private key in it (expected PEM: BEGIN PRIVATE KEY)")
        }
        PemProblem::Encrypted => file_error(KEY_FLAG, path, problem),
        other => file_error(KEY_FLAG, path, format_args!("not a PEM private key file: {other}")),
    })
}

fn explain_identity(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "the key does not belong to the certificate (the first one in the file)".into()
        }
        other => other.to_string(),
    }
}
