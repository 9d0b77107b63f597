//! The HTTP status API of `gapless stream --listen`: `GET /status` (a JSON
//! document, see [`status`]) and `GET /metrics` (Prometheus text, see
//! [`metrics`]).
//!
//! A deliberately small HTTP/1.1 server on tokio: one request per
//! connection (every response says `Connection: close`), only the request
//! head is read, with a time limit and a size limit, and the values shown
//! are read lock-free from what the stream and ring workers publish, so a
//! scrape never waits on them. The endpoints have no authentication: keep
//! them on a loopback or otherwise trusted address.

mod http;
pub mod metrics;
pub mod status;
mod time;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use self::http::{HttpError, Request, Response, Status};
use crate::ring::{Published, RingStatus};
use crate::stream::StreamStatus;

/// What the API shows: the values the workers publish.
#[derive(Clone)]
pub struct Sources {
    /// The stream's state.
    pub stream: Arc<Published<StreamStatus>>,
    /// The ring's state, when the stream writes a ring.
    pub ring: Option<Arc<Published<RingStatus>>>,
}

/// What went wrong starting the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The listen address could not be resolved or bound.
    #[error("cannot listen for the status API on {addr}: {source}")]
    Bind {
        /// The address as given.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Binds the API's listening socket on `addr` (`127.0.0.1:9187`,
/// `[::1]:9187`, `localhost:9187`). Warns when the address is not a
/// loopback one: the endpoints have no authentication.
pub async fn bind(addr: &str) -> Result<TcpListener, ApiError> {
    let bind_error = |source| ApiError::Bind { addr: addr.to_owned(), source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    if !local.ip().is_loopback() {
        warn!(
            listen = %local,
            "the status API listens on a non-loopback address; its endpoints have no authentication, \
             so anyone who can reach {local} can read the stream's status"
        );
    }
    Ok(listener)
}

/// Serves the API on `listener` until `stop` turns true (or its sender is
/// dropped). Each connection is handled in its own task; connections still
/// open when it stops get a short grace period and are then closed.
///
/// Errors on a single connection are logged at debug level and never end
/// the server; running out of file descriptors or memory pauses accepting
/// briefly. Only an error of the listening socket itself is returned.
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_with(listener, sources, stop, Limits::default()).await
}

/// The server's limits; tests shorten the times.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// The whole request head must arrive within this time.
    read_timeout: Duration,
    /// Largest request head, with its final empty line.
    max_head: usize,
    /// Time to write a response.
    write_timeout: Duration,
    /// After a response: the most time spent reading and discarding what
    /// the client still sends (a body, the rest of an oversized head), so
    /// that closing does not reset the connection before the client has
    /// read the response.
    linger: Duration,
    /// Connections handled at once; more wait in the listen backlog.
    max_connections: usize,
    /// On stop: the most time open connections get to finish.
    grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            read_timeout: Duration::from_secs(5),
            max_head: 8 * 1024,
            write_timeout: Duration::from_secs(5),
            linger: Duration::from_secs(2),
            max_connections: 64,
            grace: Duration::from_secs(1),
        }
    }
}

async fn serve_with(
    listener: TcpListener,
    sources: Sources,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        info!("status API on http://{addr}/status and http://{addr}/metrics");
    }
    let mut tasks = JoinSet::new();
    let result = loop {
        tokio::select! {
            biased;
            () = stop_requested(&mut stop) => break Ok(()),
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        warn!("status API connection task panicked: {e}");
                    }
                }
            }
            accepted = listener.accept(), if tasks.len() < limits.max_connections => match accepted {
                Ok((socket, peer)) => {
                    let sources = sources.clone();
                    tasks.spawn(async move { connection(socket, peer, &sources, limits).await });
                }
                Err(e) if is_transient(&e) => {
                    debug!("status API: accepting a connection: {e}");
                }
                Err(e) if is_resource_shortage(&e) => {
                    warn!("status API: accepting a connection: {e}; pausing for 100 ms");
                    tokio::select! {
                        () = stop_requested(&mut stop) => break Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
                Err(e) => break Err(e),
            },
        }
    };
    drop(listener);
    let finished =
        tokio::time::timeout(limits.grace, async { while tasks.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        debug!("status API: closing {} connection(s) still open", tasks.len());
        tasks.shutdown().await;
    }
    result
}

/// Returns once `stop` is true or its sender is gone. Cancel-safe.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Accept errors about one connection only.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock | TimedOut
    )
}

/// Accept errors that go away once other connections close.
fn is_resource_shortage(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// What reading a request head came to.
enum Head {
    /// A request.
    Request(Request),
    /// Not one: answer with this error.
    Refused(HttpError),
    /// The client closed its side before a whole head.
    Closed,
}

/// Handles one connection: one request, one response, close.
async fn connection(mut socket: TcpStream, peer: SocketAddr, sources: &Sources, limits: Limits) {
    let mut buf = Vec::with_capacity(1024);
    let head =
        tokio::time::timeout(limits.read_timeout, read_head(&mut socket, &mut buf, limits.max_head)).await;
    let (response, head_only) = match head {
        Ok(Ok(Head::Request(request))) => {
            let response = route(&request, sources, time::unix_now());
            debug!(%peer, method = %request.method, path = %request.path, status = response.status.code, "status API");
            (response, request.method == "HEAD")
        }
        Ok(Ok(Head::Refused(e))) => {
            debug!(%peer, "status API: {e}");
            (Response::text(e.status(), &e.to_string()), false)
        }
        Ok(Ok(Head::Closed)) => return,
        Ok(Err(e)) => {
            debug!(%peer, "status API: reading the request: {e}");
            return;
        }
        Err(_) if buf.is_empty() => {
            // Connected and sent nothing: nobody to answer.
            debug!(%peer, "status API: no request within {:?}; closing", limits.read_timeout);
            return;
        }
        Err(_) => {
            debug!(%peer, "status API: request head incomplete after {:?}", limits.read_timeout);
            let message = format!("request head not received within {:?}", limits.read_timeout);
            (Response::text(Status::REQUEST_TIMEOUT, &message), false)
        }
    };

    let bytes = response.encode(head_only, time::unix_now());
    let written = tokio::time::timeout(limits.write_timeout, async {
        socket.write_all(&bytes).await?;
        socket.shutdown().await
    })
    .await;
    match written {
        Ok(Ok(())) => linger(&mut socket, limits.linger).await,
        Ok(Err(e)) => debug!(%peer, "status API: writing the response: {e}"),
        Err(_) => {
            debug!(%peer, "status API: the client did not read the response within {:?}", limits.write_timeout)
        }
    }
}

/// Reads until `buf` holds a whole request head, or the client closes, or
/// what arrived cannot be one.
async fn read_head(socket: &mut TcpStream, buf: &mut Vec<u8>, max_head: usize) -> std::io::Result<Head> {
    let mut chunk = [0u8; 2048];
    loop {
        match http::parse_request(buf, max_head) {
            Ok(Some(request)) => return Ok(Head::Request(request)),
            Ok(None) => {}
            Err(e) => return Ok(Head::Refused(e)),
        }
        let want = chunk.len().min(max_head.saturating_sub(buf.len())).max(1);
        let n = socket.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// After the response (and our FIN): discard what the client still sends
/// until it closes, for at most `limit`, so unread bytes do not make the
/// kernel reset the connection and lose the response.
async fn linger(socket: &mut TcpStream, limit: Duration) {
    let mut scratch = [0u8; 2048];
    let mut left: usize = 64 * 1024;
    let _ = tokio::time::timeout(limit, async {
        while let Ok(n @ 1..) = socket.read(&mut scratch).await {
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    })
    .await;
}

/// The response to a request.
fn route(request: &Request, sources: &Sources, now: u64) -> Response {
    const ALLOW: &str = "GET, HEAD";
    let path = request.path.as_str();
    let render = match path {
        "/status" => render_status,
        "/metrics" => render_metrics,
        _ => {
            let message = format!("not found: {path} (the endpoints are /status and /metrics)");
            return Response::text(Status::NOT_FOUND, &message);
        }
    };
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        let message = format!("method {} not allowed on {path} (allowed: {ALLOW})", request.method);
        let mut response = Response::text(Status::METHOD_NOT_ALLOWED, &message);
        response.allow = Some(ALLOW);
        return response;
    }
    let stream = sources.stream.load();
    let ring = sources.ring.as_ref().map(|r| r.load());
    render(&stream, ring.as_ref(), now)
}

fn render_status(stream: &StreamStatus, ring: Option<&RingStatus>, now: u64) -> Response {
    Response::new(Status::OK, "application/json", status::render(stream, ring, now))
}

fn render_metrics(stream: &StreamStatus, ring: Option<&RingStatus>, now: u64) -> Response {
    Response::new(Status::OK, metrics::CONTENT_TYPE, metrics::render(stream, ring, now).into_bytes())
}

#[cfg(test)]
mod tests;
