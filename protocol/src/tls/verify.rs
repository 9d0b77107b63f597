//! The two server certificate verifiers rustls lacks: MySQL's `REQUIRED`
//! without a CA (encrypt, do not authenticate) and `VERIFY_CA` (authenticate
//! the chain, ignore the host name). `VERIFY_IDENTITY` is rustls' own
//! [`WebPkiServerVerifier`] unchanged.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// Accepts any server certificate, as `mysql --ssl-mode=REQUIRED` does
/// without `--ssl-ca`.
///
/// The handshake signatures are still checked against the presented
/// certificate: that does not authenticate the server, but it keeps the TLS
/// key exchange itself sound, so only an active man in the middle (not a
/// passive eavesdropper) can read the traffic.
#[derive(Debug)]
pub(super) struct EncryptOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl EncryptOnly {
    pub(super) fn new(provider: &CryptoProvider) -> Self {
        EncryptOnly { algorithms: provider.signature_verification_algorithms }
    }
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Verifies the chain like [`WebPkiServerVerifier`] but forgives a host name
/// that the certificate does not list (`VERIFY_CA`).
///
/// Only the name-mismatch errors are forgiven; every other rejection (unknown
/// issuer, expiry, bad signature, wrong key usage) still fails. This relies on
/// the webpki verifier checking the chain *before* the name, which it does
/// (`verify_server_cert_signed_by_trust_anchor`, then `verify_server_name`);
/// the "wrong CA and wrong name" test guards that order.
#[derive(Debug)]
pub(super) struct CaOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl CaOnly {
    pub(super) fn new(inner: Arc<WebPkiServerVerifier>) -> Self {
        CaOnly { inner }
    }
}

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}
