//! The server over real sockets.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
        let listener = bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let stream = Arc::new(Published::new(sample_stream()));
        let ring = with_ring.then(|| Arc::new(Published::new(sample_ring())));
        let sources = Sources { stream: stream.clone(), ring };
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve_with(listener, sources, stop_rx, limits));
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
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        conn.write_all(raw).await.expect("send");
        let mut out = Vec::new();
        conn.read_to_end(&mut out).await.expect("read");
        parse_reply(&out)
    })
    .await
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
    let listener = bind("127.0.0.1:0").await.unwrap();
    let sources = Sources { stream: Arc::new(Published::new(StreamStatus::default())), ring: None };
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, sources.clone(), stop_rx));
    drop(stop);
    finishes(task).await.unwrap().unwrap();

    // Already true: returns at once.
    let listener = bind("127.0.0.1:0").await.unwrap();
    let (_stop, stop_rx) = watch::channel(true);
    finishes(serve(listener, sources, stop_rx)).await.unwrap();
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let err = bind("not an address").await.unwrap_err();
    assert!(err.to_string().contains("not an address"), "{err}");

    let taken = bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = bind(&addr).await.unwrap_err();
    let ApiError::Bind { addr: named, source } = &err;
    assert_eq!(named, &addr);
    assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains(&addr), "{err}");
}
