//! Real handshakes over 127.0.0.1 against a rustls server, with certificates
//! made by `fixtures/lib/tls.sh` (so the fixture script is tested too).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ServerConfig, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::*;

/// The PKI, made once per test process. It lives under the workspace's
/// `target/` and `tls_make_pki` is idempotent and locks the directory, so
/// parallel test runs share it safely.
fn pki() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        let dir = root.join("target").join("tls-test-pki");
        let status = Command::new("bash")
            .arg(root.join("fixtures/lib/tls.sh"))
            .arg("tls_make_pki")
            .arg(&dir)
            .status()
            .expect("running bash fixtures/lib/tls.sh");
        assert!(
            status.success(),
            "fixtures/lib/tls.sh tls_make_pki {} failed (is openssl installed?)",
            dir.display()
        );
        dir
    })
}

fn file(name: &str) -> PathBuf {
    pki().join(name)
}

fn options(mode: SslMode, ca: Option<&str>) -> TlsOptions {
    TlsOptions { mode, ca: ca.map(file), ..TlsOptions::default() }
}

fn setup(opts: &TlsOptions) -> TlsSetup {
    opts.client_config_with(&[]).expect("client config").expect("TLS enabled")
}

/// A one-shot TLS server on 127.0.0.1 presenting server-cert.pem. With
/// `client_ca`, it demands a client certificate issued by that CA.
struct TestServer {
    versions: &'static [&'static SupportedProtocolVersion],
    client_ca: Option<&'static str>,
    /// Sign the handshake with this key instead of the certificate's own: a
    /// server that shows a certificate it has no key for.
    impostor_key: Option<&'static str>,
}

impl Default for TestServer {
    fn default() -> Self {
        TestServer { versions: rustls::DEFAULT_VERSIONS, client_ca: None, impostor_key: None }
    }
}

impl TestServer {
    fn config(&self) -> ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(self.versions)
            .expect("protocol versions");
        let builder = match self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let roots = files::load_ca_file(&file(ca)).expect("client CA");
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let chain = files::load_cert_chain(&file("server-cert.pem")).expect("server cert");
        match self.impostor_key {
            None => {
                let key = files::load_key(&file("server-key.pem")).expect("server key");
                builder.with_single_cert(chain, key).expect("server identity")
            }
            Some(key) => {
                // with_single_cert would refuse the mismatch; a resolver does not check.
                let key = files::load_key(&file(key)).expect("impostor key");
                let signer = provider.key_provider.load_private_key(key).expect("signing key");
                builder.with_cert_resolver(Arc::new(Impostor(Arc::new(CertifiedKey::new(chain, signer)))))
            }
        }
    }

    /// Accepts one connection, says "hello", and reports how many client
    /// certificates the peer presented.
    async fn start(&self) -> (SocketAddr, JoinHandle<io::Result<usize>>) {
        let acceptor = TlsAcceptor::from(Arc::new(self.config()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut tls = acceptor.accept(tcp).await?;
            tls.write_all(b"hello").await?;
            tls.flush().await?;
            let mut ack = [0u8; 2];
            tls.read_exact(&mut ack).await?;
            Ok(tls.get_ref().1.peer_certificates().map_or(0, |c| c.len()))
        });
        (addr, task)
    }
}

#[derive(Debug)]
struct Impostor(Arc<CertifiedKey>);

impl ResolvesServerCert for Impostor {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Handshake with `server`, calling it `host`, and exchange a few bytes so
/// that a rejection by the server (TLS 1.3 client auth) shows up too.
async fn talk(setup: &TlsSetup, server: &TestServer, host: &str) -> Result<usize, TlsError> {
    let (addr, task) = server.start().await;
    let exchange = async {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut tls = setup.connect(host, tcp).await?;
        let mut hello = [0u8; 5];
        let io = async {
            tls.read_exact(&mut hello).await?;
            tls.write_all(b"ok").await?;
            tls.flush().await
        };
        io.await.map_err(|e| TlsError::from_handshake(host, e))?;
        assert_eq!(&hello, b"hello");
        Ok(())
    };
    let client = tokio::time::timeout(Duration::from_secs(20), exchange).await.expect("client timed out");
    let served = tokio::time::timeout(Duration::from_secs(20), task).await.expect("server timed out");
    client?;
    Ok(served.expect("server task").expect("server side of a successful exchange"))
}

async fn connect(opts: &TlsOptions, host: &str) -> Result<usize, TlsError> {
    talk(&setup(opts), &TestServer::default(), host).await
}

fn assert_rejected(result: Result<usize, TlsError>, want: fn(&CertificateError) -> bool) {
    let err = result.expect_err("the handshake should fail");
    let reason = err.certificate_error().unwrap_or_else(|| panic!("not a certificate error: {err}"));
    assert!(want(reason), "unexpected certificate error: {reason:?} ({err})");
}

fn unknown_issuer(e: &CertificateError) -> bool {
    matches!(e, CertificateError::UnknownIssuer)
}

fn wrong_name(e: &CertificateError) -> bool {
    matches!(e, CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })
}

#[tokio::test]
async fn verify_identity_accepts_the_right_ca_by_ip_and_by_name() {
    let opts = options(SslMode::VerifyIdentity, Some("ca.pem"));
    let s = setup(&opts);
    assert!(s.required && s.verifies_peer && s.verifies_host);
    connect(&opts, "127.0.0.1").await.expect("by IP");
    connect(&opts, "[127.0.0.1]").await.expect("by bracketed IP");
    connect(&opts, "localhost").await.expect("by name");
}

#[tokio::test]
async fn verifying_modes_refuse_another_ca() {
    for mode in [SslMode::VerifyIdentity, SslMode::VerifyCa] {
        let result = connect(&options(mode, Some("other-ca.pem")), "127.0.0.1").await;
        assert_rejected(result, unknown_issuer);
    }
}

#[tokio::test]
async fn verify_identity_refuses_a_name_the_certificate_lacks() {
    let result = connect(&options(SslMode::VerifyIdentity, Some("ca.pem")), "db.example").await;
    assert_rejected(result, wrong_name);
    let err = connect(&options(SslMode::VerifyIdentity, Some("ca.pem")), "db.example").await.unwrap_err();
    assert!(err.to_string().contains("VERIFY_CA"), "the message should hint at VERIFY_CA: {err}");
}

#[tokio::test]
async fn verify_ca_ignores_the_host_name() {
    let opts = options(SslMode::VerifyCa, Some("ca.pem"));
    let s = setup(&opts);
    assert!(s.required && s.verifies_peer && !s.verifies_host);
    connect(&opts, "db.example").await.expect("VERIFY_CA does not check the name");
}

/// Guards the order `CaOnly` relies on: the chain is checked before the name,
/// so forgiving a wrong name never hides a wrong CA.
#[tokio::test]
async fn verify_ca_with_wrong_ca_and_wrong_name_reports_the_ca() {
    let result = connect(&options(SslMode::VerifyCa, Some("other-ca.pem")), "db.example").await;
    assert_rejected(result, unknown_issuer);
}

#[tokio::test]
async fn required_without_ca_encrypts_without_verifying() {
    let opts = options(SslMode::Required, None);
    let s = setup(&opts);
    assert!(s.required && !s.verifies_peer && !s.verifies_host);
    // Neither the CA nor the name is checked; the handshake signatures are,
    // under TLS 1.3 and TLS 1.2 alike.
    connect(&opts, "db.example").await.expect("TLS 1.3");
    static TLS12_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    let tls12 = TestServer { versions: &TLS12_ONLY, ..TestServer::default() };
    talk(&s, &tls12, "127.0.0.1").await.expect("TLS 1.2");
}

/// What keeps `EncryptOnly` from being "no TLS security at all": a server
/// must hold the key of the certificate it shows.
#[tokio::test]
async fn required_without_ca_still_checks_handshake_signatures() {
    static TLS12_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    let s = setup(&options(SslMode::Required, None));
    for versions in [&TLS12_ONLY, &TLS13_ONLY] {
        let server = TestServer { versions, impostor_key: Some("client-key.pem"), ..TestServer::default() };
        let err = talk(&s, &server, "127.0.0.1").await.expect_err("a forged handshake signature must fail");
        assert!(
            matches!(err.certificate_error(), Some(CertificateError::BadSignature)),
            "{:?}: {err:?}",
            versions[0].version
        );
    }
}

#[tokio::test]
async fn required_with_a_ca_acts_as_verify_ca() {
    let s = setup(&options(SslMode::Required, Some("other-ca.pem")));
    assert!(s.required && s.verifies_peer && !s.verifies_host);
    assert_rejected(
        connect(&options(SslMode::Required, Some("other-ca.pem")), "127.0.0.1").await,
        unknown_issuer,
    );
    connect(&options(SslMode::Required, Some("ca.pem")), "db.example").await.expect("name not checked");
}

#[tokio::test]
async fn preferred_is_optional_and_verifies_the_chain() {
    // No ssl-ca: the system bundle (here the test CA) verifies the chain.
    let opts = options(SslMode::Preferred, None);
    let system = opts.client_config_with(&[file("ca.pem")]).unwrap().unwrap();
    assert!(!system.required && system.verifies_peer && !system.verifies_host);
    talk(&system, &TestServer::default(), "db.example").await.expect("chain checked, name not");
    let err = opts.client_config_with(&[file("missing.pem")]).unwrap_err();
    assert!(matches!(err, TlsError::NoCa { .. }), "{err}");
    assert!(err.to_string().contains("ssl-mode=REQUIRED"), "{err}");
    let with_ca = setup(&options(SslMode::Preferred, Some("ca.pem")));
    assert!(!with_ca.required && with_ca.verifies_peer && !with_ca.verifies_host);
    assert_rejected(
        connect(&options(SslMode::Preferred, Some("other-ca.pem")), "127.0.0.1").await,
        unknown_issuer,
    );
}

#[tokio::test]
async fn verifying_modes_fall_back_to_the_system_bundle() {
    // The "system bundle" here is the test CA, so the outcome is known.
    let opts = options(SslMode::VerifyIdentity, None);
    let s = opts.client_config_with(&[file("missing.pem"), file("ca.pem")]).unwrap().unwrap();
    assert!(s.verifies_peer);
    talk(&s, &TestServer::default(), "localhost").await.expect("trusted through the bundle");

    let err = options(SslMode::VerifyCa, None).client_config_with(&[file("missing.pem")]).unwrap_err();
    assert!(matches!(err, TlsError::NoCa { mode: SslMode::VerifyCa, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("ssl-ca") && msg.contains("missing.pem"), "{msg}");
}

#[tokio::test]
async fn client_certificate_is_presented() {
    let server = TestServer { client_ca: Some("ca.pem"), ..TestServer::default() };
    let opts = TlsOptions {
        cert: Some(file("client-cert.pem")),
        key: Some(file("client-key.pem")),
        ..options(SslMode::VerifyIdentity, Some("ca.pem"))
    };
    assert_eq!(talk(&setup(&opts), &server, "127.0.0.1").await.expect("with client cert"), 1);

    let without = options(SslMode::VerifyIdentity, Some("ca.pem"));
    let err = talk(&setup(&without), &server, "127.0.0.1").await.expect_err("server demands a certificate");
    assert!(matches!(err, TlsError::Handshake { .. }), "{err:?}");
    assert!(err.to_string().contains("ssl-cert"), "the message should point at ssl-cert: {err}");
}

#[test]
fn disabled_builds_nothing_and_reads_no_file() {
    let opts = TlsOptions {
        mode: SslMode::Disabled,
        ca: Some("/nonexistent/ca.pem".into()),
        cert: Some("/nonexistent/cert.pem".into()),
        key: None,
    };
    assert!(opts.client_config().expect("nothing to fail").is_none());
}

#[test]
fn default_is_preferred_without_files() {
    let opts = TlsOptions::default();
    assert_eq!(opts.mode, SslMode::Preferred);
    assert!(opts.ca.is_none() && opts.cert.is_none() && opts.key.is_none());
}

#[test]
fn ssl_mode_parses_and_displays_like_mysql() {
    for mode in SslMode::ALL {
        assert_eq!(mode.to_string().parse::<SslMode>(), Ok(mode));
        assert_eq!(mode.to_string().to_lowercase().replace('_', "-").parse::<SslMode>(), Ok(mode));
    }
    assert_eq!(SslMode::VerifyIdentity.to_string(), "VERIFY_IDENTITY");
    assert_eq!("Verify-Ca".parse::<SslMode>(), Ok(SslMode::VerifyCa));
    assert_eq!("disabled".parse::<SslMode>(), Ok(SslMode::Disabled));
    for bad in ["", "verify", "VERIFYCA", " REQUIRED", "true"] {
        let err = bad.parse::<SslMode>().unwrap_err();
        assert_eq!(err.input, bad);
        assert!(err.to_string().contains("VERIFY_IDENTITY"), "{err}");
    }
}

#[test]
fn cert_and_key_go_together() {
    let cert_only = TlsOptions { cert: Some(file("client-cert.pem")), ..options(SslMode::Required, None) };
    let err = cert_only.client_config_with(&[]).unwrap_err();
    assert!(matches!(err, TlsError::CertWithoutKey { .. }), "{err:?}");
    assert!(err.to_string().contains("client-cert.pem") && err.to_string().contains("ssl-key"), "{err}");

    let key_only = TlsOptions { key: Some(file("client-key.pem")), ..options(SslMode::Required, None) };
    let err = key_only.client_config_with(&[]).unwrap_err();
    assert!(matches!(err, TlsError::KeyWithoutCert { .. }), "{err:?}");
}

#[test]
fn mismatched_cert_and_key_are_refused() {
    let opts = TlsOptions {
        cert: Some(file("client-cert.pem")),
        key: Some(file("server-key.pem")),
        ..options(SslMode::Required, None)
    };
    let err = opts.client_config_with(&[]).unwrap_err();
    assert!(matches!(err, TlsError::ClientIdentity { .. }), "{err:?}");
    assert!(err.to_string().contains("does not belong"), "{err}");
}

#[test]
fn unreadable_ca_is_named() {
    let missing = TlsOptions { ca: Some("/nonexistent/gapless/ca.pem".into()), ..TlsOptions::default() };
    let err = missing.client_config().unwrap_err();
    assert!(matches!(err, TlsError::Read { role: PemRole::Ca, .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/gapless/ca.pem"), "{err}");
    assert!(err.to_string().contains("ssl-ca"), "{err}");
}

#[test]
fn ca_file_without_certificates_is_named() {
    // A key file is valid PEM but holds no certificate.
    let err = options(SslMode::VerifyCa, Some("ca-key.pem")).client_config_with(&[]).unwrap_err();
    assert!(matches!(err, TlsError::Empty { role: PemRole::Ca, .. }), "{err:?}");
    assert!(err.to_string().contains("ca-key.pem") && err.to_string().contains("BEGIN CERTIFICATE"), "{err}");
}

/// A file in the temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, contents: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("gapless-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write scratch file");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn damaged_ca_file_is_malformed() {
    let bad = Scratch::new(
        "bad-ca.pem",
        "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
    );
    let opts = TlsOptions { mode: SslMode::VerifyCa, ca: Some(bad.0.clone()), ..TlsOptions::default() };
    let err = opts.client_config_with(&[]).unwrap_err();
    assert!(matches!(err, TlsError::Malformed { role: PemRole::Ca, .. }), "{err:?}");

    // Valid base64, but not a certificate.
    let junk = Scratch::new("junk-ca.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    let opts = TlsOptions { mode: SslMode::VerifyCa, ca: Some(junk.0.clone()), ..TlsOptions::default() };
    let err = opts.client_config_with(&[]).unwrap_err();
    assert!(matches!(err, TlsError::Malformed { role: PemRole::Ca, .. }), "{err:?}");
    assert!(err.to_string().contains("certificate #1"), "{err}");
}

#[test]
fn encrypted_client_key_is_explained() {
    let key = Scratch::new(
        "encrypted-key.pem",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let opts = TlsOptions {
        cert: Some(file("client-cert.pem")),
        key: Some(key.0.clone()),
        ..options(SslMode::Required, None)
    };
    let err = opts.client_config_with(&[]).unwrap_err();
    assert!(matches!(err, TlsError::Malformed { role: PemRole::ClientKey, .. }), "{err:?}");
    assert!(err.to_string().contains("passphrase"), "{err}");
}

#[test]
fn server_names() {
    use rustls::pki_types::IpAddr as PkiIp;
    let ip = |host: &str| match server_name(host) {
        Ok(ServerName::IpAddress(ip)) => ip,
        other => panic!("{host}: expected an IP name, got {other:?}"),
    };
    assert_eq!(ip("127.0.0.1"), PkiIp::from(std::net::IpAddr::from([127, 0, 0, 1])));
    assert_eq!(ip("[127.0.0.1]"), ip("127.0.0.1"));
    assert_eq!(ip("::1"), PkiIp::from(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)));
    assert_eq!(ip("[::1]"), ip("::1"));
    assert!(matches!(ip("[2001:db8::5]"), PkiIp::V6(_)));

    for host in ["localhost", "db.example", "db-1.prod.example.com"] {
        match server_name(host) {
            Ok(ServerName::DnsName(name)) => assert_eq!(name.as_ref(), host),
            other => panic!("{host}: expected a DNS name, got {other:?}"),
        }
    }
    for host in ["", "bad host", "[db.example]", "[::1", "db..example"] {
        let err = server_name(host).unwrap_err();
        assert!(matches!(&err, TlsError::InvalidHost { host: h } if h == host), "{host}: {err:?}");
    }
}
