//! The server over real sockets; HTTPS with certificates made by
//! `fixtures/lib/tls.sh`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use super::metrics::tests::parse_page;
use super::status::tests::{sample_ring, sample_stream};
use super::*;

/// Awaits `f`, failing the test if it hangs (a generous bound: only "it
/// finished" is checked, never how fast).
async fn finishes<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f).await.expect("did not finish")
}

fn fast() -> Limits {
    Limits {
        read_timeout: Duration::from_millis(200),
        linger: Duration::from_millis(200),
        grace: Duration::from_millis(200),
        ..Limits::default()
    }
}

struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    stream: Arc<Published<StreamStatus>>,
}

impl Server {
    async fn start(with_ring: bool, limits: Limits) -> Server {
        Server::start_with(Security::default(), with_ring, limits).await
    }

    async fn start_with(security: Security, with_ring: bool, limits: Limits) -> Server {
        Server::start_full(security, with_ring, None, limits).await
    }

    async fn start_full(
        security: Security,
        with_ring: bool,
        replay: Option<Arc<Replays>>,
        limits: Limits,
    ) -> Server {
        let listener = bind("127.0.0.1:0", &security).await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let stream = Arc::new(Published::new(sample_stream()));
        let ring = with_ring.then(|| Arc::new(Published::new(sample_ring())));
        let sources = Sources { stream: stream.clone(), ring, replay, positions: None, primary: None };
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve_with(listener, sources, security, stop_rx, limits));
        Server { addr, stop, task, stream }
    }

    async fn request(&self, raw: &[u8]) -> Reply {
        exchange(self.addr, raw).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.request(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n").as_bytes())
            .await
    }

    async fn shut_down(self) {
        self.stop.send(true).unwrap();
        finishes(self.task).await.expect("no panic").expect("no error");
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// Sends `raw`, reads the whole response until the server closes.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    finishes(async {
        let conn = TcpStream::connect(addr).await.expect("connect");
        exchange_over(conn, raw).await
    })
    .await
}

/// Sends `raw` over `conn`, reads the whole response until the server closes.
async fn exchange_over<S>(mut conn: S, raw: &[u8]) -> Reply
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    conn.write_all(raw).await.expect("send");
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.expect("read");
    parse_reply(&out)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no head: {text:?}"));
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{status_line}"));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap_or_else(|| panic!("header {l:?}"));
            (n.to_owned(), v.to_owned())
        })
        .collect();
    let reply = Reply { status, headers, body: raw[end + 4..].to_vec() };
    assert_eq!(reply.header("Connection"), Some("close"));
    assert!(reply.header("Content-Type").is_some());
    assert!(reply.header("Date").is_some_and(|d| d.ends_with(" GMT")));
    reply
}

fn assert_length_matches(reply: &Reply) {
    assert_eq!(reply.header("Content-Length"), Some(reply.body.len().to_string().as_str()));
}

#[tokio::test]
async fn status_is_json_with_the_published_values() {
    let server = Server::start(true, fast()).await;
    let reply = server.get("/status").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("Content-Type"), Some("application/json"));
    assert_length_matches(&reply);
    let doc = reply.json();
    assert_eq!(doc["source"], "db1:3306");
    assert_eq!(doc["connected"], true);
    assert_eq!(doc["server_id"], 4242);
    assert_eq!(doc["last_received"]["file"], "binlog.000042");
    assert_eq!(doc["last_received"]["position"], 1234);
    assert_eq!(doc["last_received"]["gtid"], "0-1-77");
    assert_eq!(doc["last_received"]["timestamp"], 1_700_000_000);
    assert_eq!(doc["last_durable"]["position"], 1000);
    assert_eq!(doc["lag"]["bytes"], 100);
    // Computed with the current time: the sample's event is from 2023.
    assert!(doc["lag"]["seconds"].as_u64().is_some_and(|s| s > 0), "{doc}");
    assert_eq!(doc["primary"]["file"], "binlog.000042");
    assert_eq!(doc["primary"]["position"], 1334);
    assert_eq!(doc["semi_sync"], serde_json::json!({ "requested": true, "active": true, "acks_sent": 77 }));
    assert_eq!(doc["counters"], serde_json::json!({ "events": 4000, "units": 77, "connections": 2 }));
    assert_eq!(doc["last_error"], Value::Null);
    assert_eq!(doc["ring"]["dir"], "/var/lib/gapless/ring");
    assert_eq!(doc["ring"]["segments"], 3);
    assert_eq!(doc["ring"]["paused"], Value::Null);

    // Each request reads what is published now.
    server.stream.store(StreamStatus {
        connected: false,
        last_error: Some("reading from the primary: Connection reset by peer".into()),
        primary_position: Some(1234),
        ..sample_stream()
    });
    let doc = server.get("/status?pretty=1").await.json();
    assert_eq!(doc["connected"], false);
    assert_eq!(doc["last_error"], "reading from the primary: Connection reset by peer");
    assert_eq!(doc["lag"], serde_json::json!({ "seconds": 0, "bytes": 0 }));
    server.shut_down().await;
}

#[tokio::test]
async fn head_has_the_length_but_no_body() {
    let server = Server::start(true, fast()).await;
    let get = server.get("/status").await;
    let head = server.request(b"HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let len: usize = head.header("Content-Length").unwrap().parse().unwrap();
    // The lag may have moved by a second between the two: compare roughly.
    assert!(len.abs_diff(get.body.len()) < 4, "{len} vs {}", get.body.len());
    let head = server.request(b"HEAD /metrics HTTP/1.0\r\n\r\n").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    server.shut_down().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let server = Server::start(true, fast()).await;
    let reply = server.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("Content-Type").unwrap().starts_with("text/plain; version=0.0.4"));
    assert_length_matches(&reply);
    let samples = parse_page(reply.text()).unwrap_or_else(|e| panic!("{e}\n{}", reply.text()));
    let value = |name: &str| {
        samples.iter().find(|s| s.name == name).map(|s| s.value).unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(value("gapless_connected"), 1.0);
    assert_eq!(value("gapless_events_received_total"), 4000.0);
    assert_eq!(value("gapless_units_total"), 77.0);
    assert_eq!(value("gapless_connections_total"), 2.0);
    assert_eq!(value("gapless_semi_sync_acks_total"), 77.0);
    assert_eq!(value("gapless_semi_sync_active"), 1.0);
    assert!(value("gapless_lag_seconds") > 0.0);
    assert_eq!(value("gapless_lag_bytes"), 100.0);
    assert_eq!(value("gapless_ring_used_bytes"), 1_048_576.0);
    assert_eq!(value("gapless_ring_capacity_bytes"), 1_073_741_824.0);
    assert_eq!(value("gapless_ring_segments"), 3.0);
    assert_eq!(value("gapless_ring_paused"), 0.0);
    assert_eq!(value("gapless_ring_last_durable_timestamp_seconds"), 1_699_999_999.0);
    let connected = samples.iter().find(|s| s.name == "gapless_connected").unwrap();
    assert_eq!(connected.labels.get("source").map(String::as_str), Some("db1:3306"));
    server.shut_down().await;
}

#[tokio::test]
async fn without_a_ring() {
    let server = Server::start(false, fast()).await;
    let doc = server.get("/status").await.json();
    assert_eq!(doc["ring"], Value::Null);
    assert_eq!(doc["last_durable"], Value::Null);
    let page = server.get("/metrics").await;
    let samples = parse_page(page.text()).unwrap();
    assert!(samples.iter().any(|s| s.name == "gapless_connected"));
    assert!(!samples.iter().any(|s| s.name.starts_with("gapless_ring_")), "{}", page.text());
    server.shut_down().await;
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let server = Server::start(true, fast()).await;
    for path in ["/", "/status/", "/Status", "/metrics.json", "*"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_length_matches(&reply);
    }
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
        let reply = server.request(format!("{method} /status HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes()).await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("Allow"), Some("GET, HEAD"));
        assert_length_matches(&reply);
    }
    // A body sent anyway is read and discarded, not answered.
    let body = "x".repeat(1000);
    let raw = format!("POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    assert_eq!(server.request(raw.as_bytes()).await.status, 405);
    server.shut_down().await;
}

#[tokio::test]
async fn malformed_requests_get_400() {
    let server = Server::start(true, fast()).await;
    let bad: [&[u8]; 6] = [
        b"BLAH\r\n\r\n",
        b"GET /status\r\n\r\n",
        b"GET /status HTTP/1.1\r\n\r\n",
        b"GET /status HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n",
        b"GET /st\x00tus HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for raw in bad {
        let reply = server.request(raw).await;
        assert_eq!(reply.status, 400, "{:?}: {}", String::from_utf8_lossy(raw), reply.text());
        assert_length_matches(&reply);
    }
    let reply = server.request(b"GET /status HTTP/2.0\r\n\r\n").await;
    assert_eq!(reply.status, 505);
    server.shut_down().await;
}

#[tokio::test]
async fn an_oversized_head_gets_431() {
    let server = Server::start(true, fast()).await;
    // Still sending, never ending the head.
    let raw = format!("GET /status HTTP/1.1\r\nHost: a\r\nX-Big: {}", "a".repeat(9000));
    let reply = server.request(raw.as_bytes()).await;
    assert_eq!(reply.status, 431);
    // Complete, but too long.
    let raw = format!("GET /status HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "a".repeat(8200));
    let reply = server.request(raw.as_bytes()).await;
    assert_eq!(reply.status, 431);
    // Just under the limit is fine.
    let prefix = "GET /status HTTP/1.1\r\nHost: a\r\nX-Big: ";
    let raw = format!("{prefix}{}\r\n\r\n", "a".repeat(8192 - prefix.len() - 4));
    assert_eq!(raw.len(), 8192);
    assert_eq!(server.request(raw.as_bytes()).await.status, 200);
    server.shut_down().await;
}

#[tokio::test]
async fn a_silent_client_is_disconnected_after_the_timeout() {
    let server = Server::start(true, fast()).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    let mut out = Vec::new();
    finishes(conn.read_to_end(&mut out)).await.expect("closed cleanly");
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));

    // Half a request, then nothing: told why.
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /status HTTP/1.1\r\nHo").await.unwrap();
    let mut out = Vec::new();
    finishes(conn.read_to_end(&mut out)).await.unwrap();
    assert_eq!(parse_reply(&out).status, 408);

    // Closed before the head was complete: nothing to answer.
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /status HT").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut out = Vec::new();
    finishes(conn.read_to_end(&mut out)).await.unwrap();
    assert!(out.is_empty());
    server.shut_down().await;
}

#[tokio::test]
async fn many_clients_at_once() {
    let server = Server::start(true, fast()).await;
    let addr = server.addr;
    let clients: Vec<_> = (0..40)
        .map(|i| {
            let path = if i % 2 == 0 { "/status" } else { "/metrics" };
            let raw = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
            tokio::spawn(async move { exchange(addr, raw.as_bytes()).await.status })
        })
        .collect();
    for client in clients {
        assert_eq!(client.await.unwrap(), 200);
    }
    server.shut_down().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_their_turn() {
    let limits = Limits { max_connections: 1, ..fast() };
    let server = Server::start(true, limits).await;
    // Holds the only slot until its read timeout.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(server.get("/status").await.status, 200);
    let mut out = Vec::new();
    finishes(idle.read_to_end(&mut out)).await.unwrap();
    server.shut_down().await;
}

#[tokio::test]
async fn stop_turns_the_server_off() {
    let limits = Limits { read_timeout: Duration::from_secs(3600), ..fast() };
    let server = Server::start(true, limits).await;
    let addr = server.addr;
    assert_eq!(server.get("/status").await.status, 200);
    // A connection that would otherwise stay open for an hour.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    server.shut_down().await;
    let mut out = Vec::new();
    let _ = finishes(idle.read_to_end(&mut out)).await;
    assert!(out.is_empty());
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}

#[tokio::test]
async fn a_dropped_stop_sender_stops_too() {
    let open = Security::default();
    let listener = bind("127.0.0.1:0", &open).await.unwrap();
    let sources = Sources {
        stream: Arc::new(Published::new(StreamStatus::default())),
        ring: None,
        replay: None,
        positions: None,
        primary: None,
    };
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, sources.clone(), open.clone(), stop_rx));
    drop(stop);
    finishes(task).await.unwrap().unwrap();

    // Already true: returns at once.
    let listener = bind("127.0.0.1:0", &open).await.unwrap();
    let (_stop, stop_rx) = watch::channel(true);
    finishes(serve(listener, sources, open, stop_rx)).await.unwrap();
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let open = Security::default();
    let err = bind("not an address", &open).await.unwrap_err();
    assert!(err.to_string().contains("not an address"), "{err}");

    let taken = bind("127.0.0.1:0", &open).await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = bind(&addr, &open).await.unwrap_err();
    let ApiError::Bind { addr: named, source } = &err else { panic!("{err:?}") };
    assert_eq!(named, &addr);
    assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains(&addr), "{err}");
}

// ---- Authentication -------------------------------------------------------

const TOKEN: &str = "t0ken-0123456789abcdef";

fn with_token() -> Security {
    Security { token: Some(Token::from_text(TOKEN)), tls: None }
}

fn get_request(path: &str, authorization: Option<&str>) -> String {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n")
}

fn assert_refused(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {}", reply.text());
    assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer"), "{what}");
    assert_length_matches(reply);
    assert!(reply.body.len() < 200, "{what}: a short body: {}", reply.text());
    for secret in [TOKEN, "db1:3306", "gapless_"] {
        assert!(!reply.text().contains(secret), "{what}: {}", reply.text());
    }
}

#[tokio::test]
async fn a_token_is_required_on_every_endpoint() {
    let server = Server::start_with(with_token(), true, fast()).await;
    let right = format!("Bearer {TOKEN}");
    for path in ["/status", "/metrics"] {
        let wrong_ones = [
            None,
            Some("Bearer".to_owned()),
            Some("Bearer wrong-token-0123456789".to_owned()),
            Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
            Some(format!("Bearer {TOKEN}x")),
            Some(format!("Basic {TOKEN}")),
            Some(TOKEN.to_owned()),
        ];
        for auth in &wrong_ones {
            let reply = server.request(get_request(path, auth.as_deref()).as_bytes()).await;
            assert_refused(&reply, &format!("{path} with {auth:?}"));
        }
        let reply = server.request(get_request(path, Some(&right)).as_bytes()).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert!(reply.text().contains("db1:3306"), "{}", reply.text());
        // The scheme is case-insensitive.
        let reply = server.request(get_request(path, Some(&format!("bearer {TOKEN}"))).as_bytes()).await;
        assert_eq!(reply.status, 200, "{path}");
    }
    // Unknown paths and other methods learn nothing without the token.
    for raw in [
        get_request("/nowhere", None),
        "POST /status HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n".to_owned(),
        "HEAD /status HTTP/1.1\r\nHost: a\r\n\r\n".to_owned(),
    ] {
        let reply = server.request(raw.as_bytes()).await;
        assert_eq!(reply.status, 401, "{raw:?}");
        assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer"));
    }
    // Two Authorization headers, even with the right token among them.
    let raw = format!(
        "GET /status HTTP/1.1\r\nHost: a\r\nAuthorization: {right}\r\nAuthorization: Bearer x\r\n\r\n"
    );
    assert_refused(&server.request(raw.as_bytes()).await, "two headers");
    // With it, the routing is as before.
    assert_eq!(server.request(get_request("/nowhere", Some(&right)).as_bytes()).await.status, 404);
    server.shut_down().await;
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gapless-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_token_file_must_be_private_and_hold_a_long_token() {
    let dir = scratch("token");
    let path = dir.join("api-token");
    let secret = "s3cret-0123456789abcdef";
    write_mode(&path, &format!("  {secret}  \r\nsecond line\n"), 0o644);
    let err = Security::load(Some(&path), None, None).unwrap_err().to_string();
    assert!(err.contains("--api-token-file") && err.contains("chmod 600"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    for mode in [0o640, 0o604] {
        write_mode(&path, secret, mode);
        assert!(Security::load(Some(&path), None, None).is_err(), "{mode:o}");
    }

    write_mode(&path, &format!("  {secret}  \r\nsecond line\n"), 0o600);
    let security = Security::load(Some(&path), None, None).unwrap();
    assert_eq!(security.token, Some(Token::from_text(secret)));
    assert!(security.tls.is_none());
    assert!(!format!("{security:?}").contains("s3cret"));
    write_mode(&path, secret, 0o400);
    assert!(Security::load(Some(&path), None, None).is_ok());

    let refused = [
        ("short-s3cret\n", "too short"),
        ("\nlong-s3cret-0123456789\n", "empty"),
        ("", "empty"),
        ("with s3cret 0123456789abcdef\n", "printable ASCII"),
    ];
    for (text, why) in refused {
        write_mode(&path, text, 0o600);
        let err = Security::load(Some(&path), None, None).unwrap_err().to_string();
        assert!(err.contains("--api-token-file") && err.contains(why), "{text:?}: {err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    let missing = dir.join("missing");
    let err = Security::load(Some(&missing), None, None).unwrap_err().to_string();
    assert!(err.contains("--api-token-file") && err.contains(&missing.display().to_string()), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_non_loopback_address_needs_a_token() {
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let err = bind(addr, &Security::default()).await.unwrap_err();
        assert!(matches!(err, ApiError::NeedsToken { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(addr) && message.contains("--api-token-file"), "{message}");
    }
    // Loopback needs none; a token allows any address.
    drop(bind("127.0.0.1:0", &Security::default()).await.unwrap());
    drop(bind("0.0.0.0:0", &with_token()).await.unwrap());
}

// ---- TLS ------------------------------------------------------------------

/// The test PKI, made once per test process under `target/` (shared with
/// the protocol crate's tests: `tls_make_pki` is idempotent and locks).
fn pki() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target").join("tls-test-pki");
        let status = Command::new("bash")
            .arg(root.join("fixtures/lib/tls.sh"))
            .arg("tls_make_pki")
            .arg(&dir)
            .status()
            .expect("running bash fixtures/lib/tls.sh");
        assert!(status.success(), "fixtures/lib/tls.sh tls_make_pki {} failed", dir.display());
        dir
    })
}

fn pem(name: &str) -> PathBuf {
    pki().join(name)
}

fn with_tls(token: bool) -> Security {
    let tls = Tls::from_pem_files(&pem("server-cert.pem"), &pem("server-key.pem")).expect("TLS config");
    Security { token: token.then(|| Token::from_text(TOKEN)), tls: Some(tls) }
}

/// A client that trusts the test CA only.
fn tls_client() -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pem("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn https(addr: SocketAddr, raw: &[u8]) -> Reply {
    finishes(async {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::from(addr.ip());
        let tls = tls_client().connect(name, tcp).await.expect("TLS handshake");
        exchange_over(tls, raw).await
    })
    .await
}

#[tokio::test]
async fn https_with_a_token() {
    let server = Server::start_with(with_tls(true), true, fast()).await;
    let right = format!("Bearer {TOKEN}");
    let reply = https(server.addr, get_request("/status", Some(&right)).as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["source"], "db1:3306");
    let reply = https(server.addr, get_request("/metrics", Some(&right)).as_bytes()).await;
    assert_eq!(reply.status, 200);
    assert!(parse_page(reply.text()).is_ok());
    assert_refused(&https(server.addr, get_request("/status", None).as_bytes()).await, "TLS, no token");

    // Plain HTTP on the HTTPS port: the handshake fails, that connection is
    // closed without an HTTP answer (perhaps a TLS alert, perhaps a reset).
    let out = finishes(async {
        let mut conn = TcpStream::connect(server.addr).await.unwrap();
        conn.write_all(get_request("/status", Some(&right)).as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = conn.read_to_end(&mut out).await;
        out
    })
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("HTTP/") && !text.contains("db1:3306"), "{text:?}");

    // A client that does not trust the certificate: its handshake fails,
    // the server goes on.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut other = RootCertStore::empty();
    other.add(CertificateDer::from_pem_file(pem("other-ca.pem")).unwrap()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(other)
        .with_no_client_auth();
    let refused = TlsConnector::from(Arc::new(config)).connect(ServerName::from(server.addr.ip()), tcp);
    assert!(finishes(refused).await.is_err());

    let reply = https(server.addr, get_request("/status", Some(&right)).as_bytes()).await;
    assert_eq!(reply.status, 200, "still serving");
    server.shut_down().await;
}

#[tokio::test]
async fn https_without_a_token_on_loopback() {
    let server = Server::start_with(with_tls(false), false, fast()).await;
    assert_eq!(https(server.addr, get_request("/status", None).as_bytes()).await.status, 200);
    // A client that connects and never says hello is closed after the
    // time allowed for the request.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let mut out = Vec::new();
    let _ = finishes(idle.read_to_end(&mut out)).await;
    assert!(out.is_empty());
    server.shut_down().await;
}

#[test]
fn bad_tls_files_are_named() {
    let dir = scratch("tls");
    let (cert, key) = (pem("server-cert.pem"), pem("server-key.pem"));
    let garbage = dir.join("garbage.pem");
    write_mode(&garbage, "not PEM at all\n", 0o600);
    let missing = dir.join("missing.pem");
    let load = |c: &Path, k: &Path| Security::load(None, Some(c), Some(k)).unwrap_err().to_string();

    let cases = [
        (load(&missing, &key), "--api-tls-cert", missing.clone()),
        (load(&garbage, &key), "--api-tls-cert", garbage.clone()),
        (load(&key, &key), "--api-tls-cert", key.clone()),
        (load(&cert, &missing), "--api-tls-key", missing.clone()),
        (load(&cert, &garbage), "--api-tls-key", garbage.clone()),
        (load(&cert, &cert), "--api-tls-key", cert.clone()),
    ];
    for (err, flag, file) in &cases {
        assert!(err.starts_with(&format!("{flag} {}: ", file.display())), "{err}");
    }
    // A key others can read.
    let open_key = dir.join("open-key.pem");
    write_mode(&open_key, &std::fs::read_to_string(&key).unwrap(), 0o644);
    let err = load(&cert, &open_key);
    assert!(err.contains("--api-tls-key") && err.contains("chmod 600"), "{err}");
    // A key of another certificate.
    let err = load(&cert, &pem("client-key.pem"));
    assert!(err.contains("does not belong") && err.contains("client-key.pem"), "{err}");
    // Both or neither.
    assert!(matches!(Security::load(None, Some(&cert), None), Err(ApiError::TlsHalf)));
    assert!(matches!(Security::load(None, None, Some(&key)), Err(ApiError::TlsHalf)));
    assert!(Security::load(None, Some(&cert), Some(&key)).unwrap().tls.is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn post_replay(body: &str, authorization: Option<&str>) -> String {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!("POST /v1/replay HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: {}\r\n\r\n{body}", body.len())
}

#[tokio::test]
async fn replay_endpoints_over_http() {
    let login: Login = Arc::new(|host: &str, port| {
        gapless_protocol::client::ConnectOptions::new(host, port, "gapless_apply")
    });
    let dir = std::env::temp_dir().join(format!("gapless-api-http-replay-{}", std::process::id()));
    let replays = Arc::new(Replays::new(Some(dir.join("no-ring")), Some(login)));
    let server = Server::start_full(with_token(), true, Some(replays), fast()).await;
    let right = format!("Bearer {TOKEN}");
    let body = r#"{"target":"127.0.0.1:1","after_gtid":"0-1-1"}"#;

    // Without the token: 401, and nothing is started.
    for auth in [None, Some("Bearer wrong-token-0123456789")] {
        assert_refused(&server.request(post_replay(body, auth).as_bytes()).await, "POST without the token");
    }
    let raw = "POST /v1/replay HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_refused(&server.request(raw.as_bytes()).await, "POST without the token or a length");
    let list = server.request(get_request("/v1/replay", Some(&right)).as_bytes()).await;
    assert_eq!((list.status, list.json()), (200, serde_json::json!([])));

    // Lengths: required, limited, and the body must arrive in time.
    let raw = format!("POST /v1/replay HTTP/1.1\r\nHost: a\r\nAuthorization: {right}\r\n\r\n{body}");
    let reply = server.request(raw.as_bytes()).await;
    assert_eq!(reply.status, 411, "{}", reply.text());
    let raw = format!(
        "POST /v1/replay HTTP/1.1\r\nHost: a\r\nAuthorization: {right}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    assert_eq!(server.request(raw.as_bytes()).await.status, 411);
    let big = format!("{{\"target\":\"h:1\",\"after\":\"{}:4\"}}", "f".repeat(70_000));
    let reply = server.request(post_replay(&big, Some(&right)).as_bytes()).await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    let raw = format!(
        "POST /v1/replay HTTP/1.1\r\nHost: a\r\nAuthorization: {right}\r\nContent-Length: 50\r\n\r\n{{\"tar"
    );
    assert_eq!(server.request(raw.as_bytes()).await.status, 408);
    let reply = server.request(post_replay(r#"{"target":"nowhere"}"#, Some(&right)).as_bytes()).await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("HOST:PORT"), "{}", reply.text());

    // Methods.
    let raw = format!("PUT /v1/replay HTTP/1.1\r\nHost: a\r\nAuthorization: {right}\r\n\r\n");
    let reply = server.request(raw.as_bytes()).await;
    assert_eq!((reply.status, reply.header("Allow")), (405, Some("GET, HEAD, POST")));
    let raw = format!(
        "POST /v1/replay/1 HTTP/1.1\r\nHost: a\r\nAuthorization: {right}\r\nContent-Length: 0\r\n\r\n"
    );
    let reply = server.request(raw.as_bytes()).await;
    assert_eq!((reply.status, reply.header("Allow")), (405, Some("GET, HEAD")));
    assert_eq!(server.request(get_request("/v1/replay/1", Some(&right)).as_bytes()).await.status, 404);
    assert_eq!(server.request(get_request("/v1/replay/1/x", Some(&right)).as_bytes()).await.status, 404);

    // Started: 202, then it fails (there is no ring) and says why.
    let reply = server.request(post_replay(body, Some(&right)).as_bytes()).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.json(), serde_json::json!({"id": 1, "url": "/v1/replay/1"}));
    let job = finishes(async {
        loop {
            let job = server.request(get_request("/v1/replay/1", Some(&right)).as_bytes()).await.json();
            if job["state"] != "running" {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(job["error"].as_str().is_some_and(|e| e.contains("no-ring")), "{job}");
    let list = server.request(get_request("/v1/replay", Some(&right)).as_bytes()).await.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    server.shut_down().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn replay_endpoints_without_replays_are_unavailable() {
    let server = Server::start(true, fast()).await;
    let reply = server.request(post_replay(r#"{"target":"h:1"}"#, None).as_bytes()).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(server.get("/v1/replay").await.status, 503);
    server.shut_down().await;
}
