//! The HTTP status API of `gapless stream --listen`: `GET /status` (a JSON
//! document, see [`status`]), `GET /metrics` (Prometheus text, see
//! [`metrics`]), and replays of the ring onto a target: `POST /v1/replay`,
//! `GET /v1/replay`, `GET /v1/replay/N` (see [`replay`]).
//!
//! A deliberately small HTTP/1.1 server on tokio: one request per
//! connection (every response says `Connection: close`), only the request
//! head is read (and the body of `POST /v1/replay`, by its Content-Length),
//! with a time limit and size limits, and the values shown
//! are read lock-free from what the stream and ring workers publish, so a
//! scrape never waits on them.
//!
//! [`Security`]: with a bearer token (`--api-token-file`), every request
//! must carry `Authorization: Bearer TOKEN` and gets 401 otherwise, before
//! any endpoint looks at it; without one, only a loopback address may be
//! bound. With a certificate and key (`--api-tls-cert`, `--api-tls-key`)
//! the API speaks HTTPS only.

mod auth;
pub mod fuzzing;
mod http;
pub mod metrics;
pub mod positions;
pub mod replay;
pub mod status;
pub(crate) mod time;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

pub use self::auth::{Token, MIN_TOKEN_LEN};
use self::http::{HttpError, Request, Response, Status};
pub use self::positions::Positions;
pub use self::replay::{Login, Replays};
pub use self::tls::Tls;
use crate::detect::PrimaryHealth;
use crate::ring::{Published, RingStatus};
use crate::stream::StreamStatus;

/// What the API shows: the values the workers publish.
#[derive(Clone)]
pub struct Sources {
    /// The stream's state.
    pub stream: Arc<Published<StreamStatus>>,
    /// The ring's state, when the stream writes a ring.
    pub ring: Option<Arc<Published<RingStatus>>>,
    /// The replays started through the API (`None`: the replay endpoints
    /// answer 503).
    pub replay: Option<Arc<Replays>>,
    /// The replica positions recorded before failovers (`None`: those
    /// endpoints answer 503).
    pub positions: Option<Arc<Positions>>,
    /// The dead-primary detector's judgement, when it runs.
    pub primary: Option<Arc<Published<PrimaryHealth>>>,
}

/// What went wrong starting the API. No message shows the token.
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
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve the status API on {addr}{}: not a loopback address, and without \
         authentication anyone who reaches it could use the API; give --api-token-file FILE \
         (mode 0600, a token of at least {} characters) or listen on 127.0.0.1 or [::1]",
        resolved_note(addr, resolved),
        MIN_TOKEN_LEN
    )]
    NeedsToken {
        /// The address as given.
        addr: String,
        /// The non-loopback address it resolved to.
        resolved: SocketAddr,
    },
    /// The token file is readable by others, unreadable, or holds no
    /// usable token (the message names the file and why).
    #[error("{0}")]
    TokenFile(String),
    /// A certificate or key file could not be read or parsed.
    #[error("{flag} {}: {detail}", path.display())]
    TlsFile {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The certificate and the key do not make a TLS server identity.
    #[error("--api-tls-cert {} with --api-tls-key {}: {detail}", cert.display(), key.display())]
    TlsIdentity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Only one of the certificate and the key.
    #[error("--api-tls-cert and --api-tls-key go together: give both or neither")]
    TlsHalf,
}

fn resolved_note(addr: &str, resolved: &SocketAddr) -> String {
    if addr == resolved.to_string() {
        String::new()
    } else {
        format!(" ({resolved})")
    }
}

/// How the API is protected: a bearer token and TLS, each optional. The
/// default has neither, which [`bind`] allows on loopback addresses only.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Every request must carry `Authorization: Bearer TOKEN`.
    pub token: Option<Token>,
    /// Serve HTTPS.
    pub tls: Option<Tls>,
}

impl Security {
    /// Reads and checks the files of `--api-token-file`, `--api-tls-cert`
    /// and `--api-tls-key` (the two TLS ones together or neither), so that a
    /// bad file stops the start rather than the first request.
    pub fn load(
        token_file: Option<&Path>,
        tls_cert: Option<&Path>,
        tls_key: Option<&Path>,
    ) -> Result<Security, ApiError> {
        let token = token_file.map(Token::from_file).transpose()?;
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(Tls::from_pem_files(cert, key)?),
            (None, None) => None,
            _ => return Err(ApiError::TlsHalf),
        };
        Ok(Security { token, tls })
    }
}

/// Loopback, counting IPv4 loopback addresses mapped into IPv6.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Binds the API's listening socket on `addr` (`127.0.0.1:9187`,
/// `[::1]:9187`, `localhost:9187`), trying what it resolves to in turn.
///
/// Without a token in `security` every address it resolves to must be a
/// loopback one; otherwise it is refused before any socket is opened.
pub async fn bind(addr: &str, security: &Security) -> Result<TcpListener, ApiError> {
    let bind_error = |source| ApiError::Bind { addr: addr.to_owned(), source };
    let candidates: Vec<SocketAddr> = tokio::net::lookup_host(addr).await.map_err(bind_error)?.collect();
    if security.token.is_none() {
        if let Some(open) = candidates.iter().find(|a| !is_loopback(a.ip())) {
            return Err(ApiError::NeedsToken { addr: addr.to_owned(), resolved: *open });
        }
    }
    let mut last_error = None;
    for candidate in &candidates {
        match TcpListener::bind(candidate).await {
            Ok(listener) => {
                let local = listener.local_addr().map_err(bind_error)?;
                if security.tls.is_none() && !is_loopback(local.ip()) {
                    warn!(
                        listen = %local,
                        "the status API listens on a non-loopback address without TLS: the bearer token \
                         crosses the network in clear text (see --api-tls-cert and --api-tls-key)"
                    );
                }
                return Ok(listener);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(bind_error(
        last_error.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "resolves to no address")
        }),
    ))
}

/// Serves the API on `listener` until `stop` turns true (or its sender is
/// dropped). Each connection is handled in its own task; connections still
/// open when it stops get a short grace period and are then closed.
///
/// With a token in `security`, requests without it get 401 and reach no
/// endpoint; with TLS, each connection starts with a handshake (within the
/// time allowed for the request head), and one that fails is logged at
/// debug level and closed.
///
/// Errors on a single connection are logged at debug level and never end
/// the server; running out of file descriptors or memory pauses accepting
/// briefly. Only an error of the listening socket itself is returned.
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    security: Security,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_with(listener, sources, security, stop, Limits::default()).await
}

/// The server's limits; tests shorten the times.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// The TLS handshake (if any) and the whole request head must be done
    /// within this time.
    read_timeout: Duration,
    /// Largest request head, with its final empty line.
    max_head: usize,
    /// Largest request body (`POST /v1/replay`); it is read within
    /// `read_timeout` too.
    max_body: usize,
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
            max_body: 64 * 1024,
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
    security: Security,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        let scheme = if security.tls.is_some() { "https" } else { "http" };
        let auth = if security.token.is_some() { "bearer token required" } else { "no authentication" };
        info!("status API on {scheme}://{addr}/status and {scheme}://{addr}/metrics ({auth})");
    }
    let security = Arc::new(security);
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
                    let security = Arc::clone(&security);
                    tasks.spawn(async move { connection(socket, peer, &sources, &security, limits).await });
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

/// Handles one connection: the TLS handshake if any, then one request, one
/// response, close.
async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    sources: &Sources,
    security: &Security,
    limits: Limits,
) {
    // The handshake and the request head share the time allowed.
    let deadline = Instant::now() + limits.read_timeout;
    let token = security.token.as_ref();
    let Some(tls) = &security.tls else {
        return exchange(socket, peer, sources, token, limits, deadline).await;
    };
    match tokio::time::timeout_at(deadline, tls.acceptor.accept(socket)).await {
        Ok(Ok(stream)) => exchange(stream, peer, sources, token, limits, deadline).await,
        Ok(Err(e)) => debug!(%peer, "status API: TLS handshake failed: {e}"),
        Err(_) => debug!(%peer, "status API: no TLS handshake within {:?}; closing", limits.read_timeout),
    }
}

/// One request and its response over `socket`, then close.
async fn exchange<S>(
    mut socket: S,
    peer: SocketAddr,
    sources: &Sources,
    token: Option<&Token>,
    limits: Limits,
    deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout_at(deadline, read_head(&mut socket, &mut buf, limits.max_head)).await;
    let (response, head_only) = match head {
        Ok(Ok(Head::Request(mut request))) => {
            // Authentication first: an unauthenticated request reaches no
            // endpoint, not even to learn which exist, and its body is not
            // read.
            let response = match auth::refuse(&request, token) {
                Some(refused) => refused,
                None => match read_body(&mut socket, &mut buf, &mut request, limits, deadline).await {
                    Ok(()) => route(&request, sources, time::unix_now()),
                    Err(refused) => refused,
                },
            };
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
async fn read_head<S>(socket: &mut S, buf: &mut Vec<u8>, max_head: usize) -> std::io::Result<Head>
where
    S: AsyncRead + Unpin,
{
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

/// Whether the request is one whose body is read: a POST to an endpoint
/// that takes one.
fn takes_body(request: &Request) -> bool {
    request.method == "POST" && matches!(request.path.as_str(), "/v1/replay" | "/v1/positions")
}

/// Reads the body of a request that [takes one](takes_body) into
/// `request.body`, by its Content-Length (required, at most
/// `limits.max_body`), within the time left until `deadline`. A refusal is
/// the response to send.
async fn read_body<S>(
    socket: &mut S,
    buf: &mut Vec<u8>,
    request: &mut Request,
    limits: Limits,
    deadline: Instant,
) -> Result<(), Response>
where
    S: AsyncRead + Unpin,
{
    if !takes_body(request) {
        return Ok(());
    }
    let refuse = |e: HttpError| Response::text(e.status(), &e.to_string());
    let length = http::body_length(request, limits.max_body).map_err(refuse)?;
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(body) = http::take_body(buf, request, length) {
            request.body = body;
            return Ok(());
        }
        let want = (request.head_len + length - buf.len()).min(chunk.len());
        match tokio::time::timeout_at(deadline, socket.read(&mut chunk[..want])).await {
            Ok(Ok(0)) => {
                return Err(Response::text(
                    Status::BAD_REQUEST,
                    &format!("the connection closed before the {length} byte body was received"),
                ))
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => {
                return Err(Response::text(Status::BAD_REQUEST, &format!("reading the request body: {e}")))
            }
            Err(_) => {
                let message = format!("request body not received within {:?}", limits.read_timeout);
                return Err(Response::text(Status::REQUEST_TIMEOUT, &message));
            }
        }
    }
}

/// After the response (and our FIN): discard what the client still sends
/// until it closes, for at most `limit`, so unread bytes do not make the
/// kernel reset the connection and lose the response.
async fn linger<S: AsyncRead + Unpin>(socket: &mut S, limit: Duration) {
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

/// 405 for `request`, naming the methods `allow`ed.
fn not_allowed(request: &Request, allow: &'static str) -> Response {
    let message = format!("method {} not allowed on {} (allowed: {allow})", request.method, request.path);
    let mut response = Response::text(Status::METHOD_NOT_ALLOWED, &message);
    response.allow = Some(allow);
    response
}

/// A collection of background jobs behind `/v1/NAME`: `POST` starts one,
/// `GET /v1/NAME/ID` shows one, `GET /v1/NAME` lists them.
pub(crate) trait Jobs {
    /// `POST /v1/NAME` with the request's body.
    fn start(&self, body: &[u8]) -> Response;
    /// `GET /v1/NAME/ID`.
    fn get(&self, id: &str) -> Response;
    /// `GET /v1/NAME`.
    fn list(&self) -> Response;
}

/// The jobs under `collection` (`/v1/replay`, `/v1/positions`): `item` is
/// the ID when the path names one; `disabled` is said (503) when `jobs` is
/// not set up.
fn route_jobs(request: &Request, item: Option<&str>, jobs: Option<&dyn Jobs>, disabled: &str) -> Response {
    let allow = if item.is_some() { "GET, HEAD" } else { "GET, HEAD, POST" };
    let method = request.method.as_str();
    if !(matches!(method, "GET" | "HEAD") || (method == "POST" && item.is_none())) {
        return not_allowed(request, allow);
    }
    let Some(jobs) = jobs else {
        return Response::text(Status::UNAVAILABLE, disabled);
    };
    match (method, item) {
        ("POST", _) => jobs.start(&request.body),
        (_, Some(id)) => jobs.get(id),
        (_, None) => jobs.list(),
    }
}

/// `Some(Some(ID))` for `/v1/NAME/ID`, `Some(None)` for `/v1/NAME`, `None`
/// for any other path.
fn job_path<'a>(path: &'a str, collection: &str) -> Option<Option<&'a str>> {
    let rest = path.strip_prefix(collection)?;
    match rest.strip_prefix('/') {
        None if rest.is_empty() => Some(None),
        Some(id) if !id.is_empty() && !id.contains('/') => Some(Some(id)),
        _ => None,
    }
}

/// The response to a request.
fn route(request: &Request, sources: &Sources, now: u64) -> Response {
    const ALLOW: &str = "GET, HEAD";
    let path = request.path.as_str();
    let render = match path {
        "/status" => render_status,
        "/metrics" => render_metrics,
        p if job_path(p, "/v1/replay").is_some() => {
            let jobs = sources.replay.as_deref().map(|r| r as &dyn Jobs);
            let item = job_path(p, "/v1/replay").flatten();
            return route_jobs(request, item, jobs, "replay through the API is not enabled here");
        }
        p if job_path(p, "/v1/positions").is_some() => {
            let jobs = sources.positions.as_deref().map(|r| r as &dyn Jobs);
            let item = job_path(p, "/v1/positions").flatten();
            return route_jobs(request, item, jobs, "recording replica positions is not enabled here");
        }
        _ => {
            let message = format!(
                "not found: {path} (the endpoints are /status, /metrics, /v1/replay[/N] and /v1/positions[/UID])"
            );
            return Response::text(Status::NOT_FOUND, &message);
        }
    };
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        return not_allowed(request, ALLOW);
    }
    let stream = sources.stream.load();
    let ring = sources.ring.as_ref().map(|r| r.load());
    let primary = sources.primary.as_ref().map(|p| p.load());
    render(&stream, ring.as_ref(), primary.as_ref(), now)
}

fn render_status(
    stream: &StreamStatus,
    ring: Option<&RingStatus>,
    primary: Option<&PrimaryHealth>,
    now: u64,
) -> Response {
    Response::new(Status::OK, "application/json", status::render(stream, ring, primary, now))
}

fn render_metrics(
    stream: &StreamStatus,
    ring: Option<&RingStatus>,
    primary: Option<&PrimaryHealth>,
    now: u64,
) -> Response {
    Response::new(Status::OK, metrics::CONTENT_TYPE, metrics::render(stream, ring, primary, now).into_bytes())
}

#[cfg(test)]
mod tests;
