//! Reading the PEM files named by `ssl-ca`, `ssl-cert` and `ssl-key`.
//!
//! Each file is read whole first, so "cannot open" and "not PEM" are told
//! apart and every error names the file and the option it came from.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::TlsError;

/// Which option a PEM file came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemRole {
    /// `ssl-ca`: the CA certificate(s).
    Ca,
    /// `ssl-cert`: the client certificate chain.
    ClientCert,
    /// `ssl-key`: the client private key.
    ClientKey,
}

impl PemRole {
    /// What the file should hold, in words.
    pub fn content(self) -> &'static str {
        match self {
            PemRole::Ca | PemRole::ClientCert => "certificate",
            PemRole::ClientKey => "private key",
        }
    }

    /// The usual PEM label of that content.
    pub fn pem_label(self) -> &'static str {
        match self {
            PemRole::Ca | PemRole::ClientCert => "CERTIFICATE",
            PemRole::ClientKey => "PRIVATE KEY",
        }
    }
}

impl fmt::Display for PemRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PemRole::Ca => "CA file (ssl-ca)",
            PemRole::ClientCert => "client certificate file (ssl-cert)",
            PemRole::ClientKey => "client key file (ssl-key)",
        })
    }
}

fn read(role: PemRole, path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read { role, path: path.to_owned(), source })
}

fn malformed(role: PemRole, path: &Path, detail: impl fmt::Display) -> TlsError {
    TlsError::Malformed { role, path: path.to_owned(), detail: detail.to_string() }
}

/// Every certificate of a PEM file, in order; at least one.
fn certificates(role: PemRole, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certificates(&read(role, path)?).map_err(|problem| problem.into_error(role, path))
}

/// What is wrong with PEM bytes (the caller names the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemProblem {
    /// Not PEM, or a PEM block that does not decode.
    Malformed(String),
    /// No item of the kind wanted in it.
    Empty,
    /// A private key protected by a passphrase.
    Encrypted,
}

impl fmt::Display for PemProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemProblem::Malformed(detail) => f.write_str(detail),
            PemProblem::Empty => f.write_str("nothing of the kind wanted in it"),
            PemProblem::Encrypted => f.write_str(
                "the key is protected by a passphrase; give an unencrypted copy \
                 (openssl pkey -in KEY -out KEY.plain) and keep it mode 0600",
            ),
        }
    }
}

impl PemProblem {
    fn into_error(self, role: PemRole, path: &Path) -> TlsError {
        match self {
            PemProblem::Empty => TlsError::Empty { role, path: path.to_owned() },
            other => malformed(role, path, other),
        }
    }
}

/// Every certificate of PEM bytes, in order; at least one. Shared by the
/// client's `ssl-cert`/`ssl-ca` and any server certificate of the crate's
/// users.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemProblem> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| PemProblem::Malformed(e.to_string()))?;
    if certs.is_empty() {
        return Err(PemProblem::Empty);
    }
    Ok(certs)
}

/// The private key of PEM bytes (PKCS#8, PKCS#1 RSA or SEC1 EC,
/// unencrypted).
pub fn parse_private_key(bytes: &[u8]) -> Result<PrivateKeyDer<'static>, PemProblem> {
    match PrivateKeyDer::from_pem_slice(bytes) {
        Ok(key) => Ok(key),
        // An encrypted key parses as "nothing found"; say what is wrong.
        Err(pem::Error::NoItemsFound) if is_encrypted_key(bytes) => Err(PemProblem::Encrypted),
        Err(pem::Error::NoItemsFound) => Err(PemProblem::Empty),
        Err(e) => Err(PemProblem::Malformed(e.to_string())),
    }
}

/// The `ssl-ca` file as trust anchors. Unlike a system bundle, every
/// certificate in it must parse: a damaged CA file the user pointed at is a
/// mistake worth stopping for.
pub(super) fn load_ca_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in certificates(PemRole::Ca, path)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| malformed(PemRole::Ca, path, format_args!("certificate #{}: {e}", i + 1)))?;
    }
    Ok(roots)
}

/// Where distributions keep their CA bundle, after `SSL_CERT_FILE` (which
/// OpenSSL, and thus the `mysql` client, honours too).
pub(super) fn system_ca_candidates() -> Vec<PathBuf> {
    const BUNDLES: [&str; 5] = [
        "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Arch, Gentoo
        "/etc/pki/tls/certs/ca-bundle.crt",   // RHEL, Fedora, Rocky, Alma
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL ≥ 7, newer path
        "/etc/ssl/ca-bundle.pem",             // openSUSE, SLES
        "/etc/ssl/cert.pem",                  // Alpine, macOS, BSDs
    ];
    let env = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()).map(PathBuf::from);
    env.into_iter().chain(BUNDLES.iter().map(PathBuf::from)).collect()
}

/// The first candidate bundle that yields at least one trust anchor. Bundles
/// are skipped silently and odd certificates in them ignored: the machine's
/// bundle is not the user's input, and `NoCa` lists what was tried.
pub(super) fn load_system_cas(candidates: &[PathBuf]) -> Option<RootCertStore> {
    candidates.iter().find_map(|path| {
        let bytes = fs::read(path).ok()?;
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(CertificateDer::pem_slice_iter(&bytes).filter_map(Result::ok));
        (!roots.is_empty()).then_some(roots)
    })
}

/// The `ssl-cert` chain: the client certificate first, intermediates after.
pub(super) fn load_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certificates(PemRole::ClientCert, path)
}

/// The `ssl-key` private key (PKCS#8, PKCS#1 RSA or SEC1 EC, unencrypted).
pub(super) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let role = PemRole::ClientKey;
    parse_private_key(&read(role, path)?).map_err(|problem| problem.into_error(role, path))
}

fn is_encrypted_key(pem: &[u8]) -> bool {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    contains(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || contains(b"Proc-Type: 4,ENCRYPTED")
}
