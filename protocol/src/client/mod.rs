//! A thin tokio client over the sans-IO core: connect, log in (with TLS when
//! asked), run text queries, and turn the connection into a binlog stream.
//!
//! Every error names the server (`host:port`) it came from, because the
//! person reading it at 3 a.m. is looking at a topology, not at one server.

mod error;
mod stream;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use error::shown_query;
pub use error::ClientError;
pub use stream::{BinlogStream, StreamEvent};

use crate::auth::{AuthExchange, AuthPlugin};
use crate::command::{Command, RegisterSlave};
use crate::error::ProtocolError;
use crate::handshake::{
    caps, AuthSwitchRequest, HandshakeResponse, InitialHandshake, SslRequest, AUTH_MORE_DATA,
};
use crate::packet::Framer;
use crate::response::{
    self, decode_err, OkPacket, Progress, QueryError, QueryResponse, QueryResult, ResultSet,
};
use crate::tls::{self, SslMode, TlsOptions};

/// utf8mb4_general_ci: the connection character set gapless asks for.
const CHARSET_UTF8MB4: u8 = 45;
/// The max_allowed_packet the client announces: the protocol maximum, so the
/// server never refuses to send a big event because of us.
const MAX_PACKET: u32 = 1 << 30;
/// How much room to read into: a new buffer of this size is taken when
/// less than [`READ_MIN`] is left. (Received events keep their part of a
/// buffer alive, so one cannot be reused; asking for the whole room at
/// every read would take a new buffer for every read.)
const READ_CHUNK: usize = 256 * 1024;
const READ_MIN: usize = 16 * 1024;

/// A password that never shows up in `Debug` output or logs.
#[derive(Clone, Default)]
pub struct Password(Vec<u8>);

impl Password {
    pub fn new(password: impl Into<Vec<u8>>) -> Self {
        Password(password.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "<empty>" } else { "<redacted>" })
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Password,
    pub tls: TlsOptions,
    /// The server's RSA public key (PEM) for caching_sha2_password /
    /// sha256_password over plain connections; asked from the server when
    /// not given.
    pub server_public_key: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// Shown as `program_name` in the server's connection attributes.
    pub program_name: String,
    /// Allow several statements in one query (`CLIENT_MULTI_STATEMENTS`):
    /// a transaction sent as one round trip. Off by default.
    pub multi_statements: bool,
}

impl ConnectOptions {
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            user: user.into(),
            password: Password::default(),
            tls: TlsOptions::default(),
            server_public_key: None,
            connect_timeout: Duration::from_secs(10),
            program_name: "gapless".into(),
            multi_statements: false,
        }
    }

    /// `host:port`, with IPv6 hosts in brackets.
    pub fn addr(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// `host:port`, with an IPv6 host in brackets (as addresses are shown and
/// parsed everywhere).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// A logged-in connection.
pub struct Connection {
    io: Box<dyn Transport>,
    framer: Framer,
    rbuf: BytesMut,
    wbuf: BytesMut,
    addr: String,
    greeting: InitialHandshake,
    capabilities: u32,
    tls: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("server_version", &self.greeting.display_version())
            .field("connection_id", &self.greeting.connection_id)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Connection {
    /// Connects, upgrades to TLS as `options.tls` says, and logs in.
    pub async fn connect(options: &ConnectOptions) -> Result<Connection, ClientError> {
        let addr = options.addr();
        let tcp = tokio::time::timeout(
            options.connect_timeout,
            TcpStream::connect((options.host.as_str(), options.port)),
        )
        .await
        .map_err(|_| ClientError::Timeout {
            addr: addr.clone(),
            what: "connecting",
            after: options.connect_timeout,
        })?
        .map_err(|source| ClientError::Connect { addr: addr.clone(), source })?;
        tcp.set_nodelay(true).map_err(|source| ClientError::Connect { addr: addr.clone(), source })?;
        let mut conn = Connection {
            io: Box::new(tcp),
            framer: Framer::new(),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::new(),
            addr,
            greeting: InitialHandshake::default(),
            capabilities: 0,
            tls: false,
        };
        tokio::time::timeout(options.connect_timeout, conn.handshake(options)).await.map_err(|_| {
            ClientError::Timeout {
                addr: conn.addr.clone(),
                what: "logging in",
                after: options.connect_timeout,
            }
        })??;
        Ok(conn)
    }

    async fn handshake(&mut self, options: &ConnectOptions) -> Result<(), ClientError> {
        let payload = self.read_payload().await?;
        if response::is_err(&payload) {
            return Err(self.server_error(&payload));
        }
        self.greeting = InitialHandshake::decode(&payload).map_err(|e| self.protocol(e))?;
        let server = self.greeting.capabilities;
        if server & caps::PROTOCOL_41 == 0 {
            return Err(self.protocol(ProtocolError::Invalid {
                what: "server capabilities",
                offset: 0,
                detail: "the server does not speak protocol 4.1".into(),
            }));
        }
        debug!(addr = %self.addr, version = %self.greeting.display_version(), id = self.greeting.connection_id, "connected");
        let wanted = caps::CLIENT | if options.multi_statements { caps::MULTI_STATEMENTS } else { 0 };
        self.capabilities = server & wanted;

        let mode = options.tls.mode;
        if server & caps::SSL != 0 && mode != SslMode::Disabled {
            let setup = options.tls.client_config().map_err(|e| self.tls_error(e))?.expect("TLS is on");
            self.capabilities |= caps::SSL;
            let request = SslRequest {
                capabilities: self.capabilities,
                max_packet: MAX_PACKET,
                charset: CHARSET_UTF8MB4,
            };
            self.send(&request.encode()).await?;
            self.start_tls(&options.host, &setup).await?;
            if !setup.verifies_peer {
                warn!(addr = %self.addr, %mode, "TLS without certificate verification: the connection is encrypted but the server is not authenticated (give --ssl-ca, or --ssl-mode VERIFY_IDENTITY)");
            }
        } else if mode == SslMode::Preferred {
            warn!(addr = %self.addr, "the server does not offer TLS; continuing unencrypted (--ssl-mode PREFERRED)");
        } else if mode != SslMode::Disabled {
            return Err(ClientError::TlsUnavailable { addr: self.addr.clone(), mode: mode.to_string() });
        }

        let plugin =
            AuthPlugin::from_name(self.greeting.auth_plugin.as_deref().unwrap_or(b"mysql_native_password"));
        let mut exchange = AuthExchange::new(
            plugin,
            options.password.expose().to_vec(),
            self.greeting.nonce.clone(),
            self.tls,
        );
        if let Some(key) = &options.server_public_key {
            exchange = exchange.with_server_public_key(key.clone());
        }
        let auth_response = exchange.initial_response().map_err(|e| self.auth_error(options, e))?;
        let response = HandshakeResponse {
            capabilities: self.capabilities,
            max_packet: MAX_PACKET,
            charset: CHARSET_UTF8MB4,
            user: options.user.as_bytes().to_vec(),
            auth_response,
            database: None,
            auth_plugin: Some(exchange.plugin().name().as_bytes().to_vec()),
            attributes: vec![
                (b"_client_name".to_vec(), b"gapless".to_vec()),
                (b"_client_version".to_vec(), env!("CARGO_PKG_VERSION").as_bytes().to_vec()),
                (b"program_name".to_vec(), options.program_name.as_bytes().to_vec()),
            ],
        };
        self.send(&response.encode()).await?;
        loop {
            let payload = self.read_payload().await?;
            match payload.first() {
                Some(&response::OK_HEADER) => {
                    OkPacket::decode(&payload).map_err(|e| self.protocol(e))?;
                    debug!(addr = %self.addr, user = %options.user, plugin = exchange.plugin().name(), tls = self.tls, "logged in");
                    return Ok(());
                }
                Some(&response::ERR_HEADER) => return Err(self.server_error(&payload)),
                Some(&AuthSwitchRequest::HEADER) => {
                    let switch = AuthSwitchRequest::decode(&payload).map_err(|e| self.protocol(e))?;
                    let reply = exchange
                        .switch(&switch.plugin, &switch.data)
                        .map_err(|e| self.auth_error(options, e))?;
                    self.send(&reply).await?;
                }
                Some(&AUTH_MORE_DATA) => {
                    if let Some(reply) =
                        exchange.more_data(&payload[1..]).map_err(|e| self.auth_error(options, e))?
                    {
                        self.send(&reply).await?;
                    }
                }
                _ => {
                    return Err(self.protocol(ProtocolError::Unexpected {
                        what: "packet during authentication",
                        first: payload.first().copied().unwrap_or(0),
                        len: payload.len(),
                    }))
                }
            }
        }
    }

    async fn start_tls(&mut self, host: &str, setup: &tls::TlsSetup) -> Result<(), ClientError> {
        if !self.rbuf.is_empty() {
            return Err(self.protocol(ProtocolError::Unexpected {
                what: "data before the TLS handshake",
                first: self.rbuf[0],
                len: self.rbuf.len(),
            }));
        }
        // Take the plain stream out (leaving a dummy), wrap it, put the TLS
        // stream back.
        let plain = std::mem::replace(&mut self.io, Box::new(tokio::io::duplex(1).0));
        let stream = setup.connect(host, plain).await.map_err(|e| self.tls_error(e))?;
        self.io = Box::new(stream);
        self.tls = true;
        Ok(())
    }

    /// The server's greeting: version, connection id, capabilities.
    pub fn server(&self) -> &InitialHandshake {
        &self.greeting
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Runs one statement with the text protocol.
    pub async fn query(&mut self, sql: &str) -> Result<QueryResult, ClientError> {
        self.start_query(sql).await?;
        self.finish_query(sql).await
    }

    /// Sends a statement without waiting for its answer, so the caller can
    /// prepare the next one while the server runs it; [`Self::finish_query`]
    /// (with the same `sql`, for messages) reads the answer. Nothing else
    /// may be sent on the connection in between.
    pub async fn start_query(&mut self, sql: &str) -> Result<(), ClientError> {
        self.framer.reset();
        self.send(&Command::Query(sql.as_bytes().to_vec()).encode()).await
    }

    /// Reads the answer to the statement [`Self::start_query`] sent.
    pub async fn finish_query(&mut self, sql: &str) -> Result<QueryResult, ClientError> {
        self.read_answer(sql, QueryResponse::new(self.capabilities)).await
    }

    /// Reads the answers to the `statements` statements of a
    /// multi-statement query [`Self::start_query`] sent, counting them
    /// instead of following the server's more-results flag (which MariaDB
    /// drops after a `BINLOG` statement; see [`QueryResponse::counted`]).
    /// `statements` must be exact: one too many waits for an answer that
    /// never comes.
    pub async fn finish_statements(
        &mut self,
        sql: &str,
        statements: u64,
    ) -> Result<QueryResult, ClientError> {
        self.read_answer(sql, QueryResponse::counted(self.capabilities, statements)).await
    }

    async fn read_answer(
        &mut self,
        sql: &str,
        mut answer: QueryResponse,
    ) -> Result<QueryResult, ClientError> {
        loop {
            let payload = self.read_payload().await?;
            match answer.push(&payload) {
                Ok(Progress::NeedMore) => {}
                Ok(Progress::Done(result)) => return Ok(result),
                Err(QueryError::Server(error)) => {
                    return Err(ClientError::Query { addr: self.addr.clone(), sql: shown_query(sql), error })
                }
                Err(QueryError::Protocol(e)) => return Err(self.protocol(e)),
            }
        }
    }

    /// Runs a statement that returns no rows (SET, …).
    pub async fn execute(&mut self, sql: &str) -> Result<OkPacket, ClientError> {
        match self.query(sql).await? {
            QueryResult::Ok(ok) => Ok(ok),
            QueryResult::Rows(_) => Ok(OkPacket::default()),
        }
    }

    /// Runs a query that returns rows; a statement without rows gives an
    /// empty set.
    pub async fn query_rows(&mut self, sql: &str) -> Result<ResultSet, ClientError> {
        match self.query(sql).await? {
            QueryResult::Rows(set) => Ok(set),
            QueryResult::Ok(_) => Ok(ResultSet::default()),
        }
    }

    /// The first column of the first row as text, `None` for no row or NULL.
    pub async fn query_value(&mut self, sql: &str) -> Result<Option<String>, ClientError> {
        let set = self.query_rows(sql).await?;
        Ok(set
            .rows
            .first()
            .and_then(|row| row.first().cloned().flatten())
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub async fn ping(&mut self) -> Result<(), ClientError> {
        self.simple_command(Command::Ping).await.map(drop)
    }

    /// COM_REGISTER_SLAVE.
    pub async fn register_replica(&mut self, register: RegisterSlave) -> Result<(), ClientError> {
        self.simple_command(Command::RegisterSlave(register)).await.map(drop)
    }

    /// Sends a binlog dump command (COM_BINLOG_DUMP or COM_BINLOG_DUMP_GTID)
    /// and turns the connection into the event stream. `semi_sync`: the
    /// session asked for semi-sync headers (`SET @rpl_semi_sync_slave = 1`).
    /// `idle_timeout`: a stream silent for this long is dead (set it above
    /// the heartbeat period the session asked for).
    pub async fn binlog_stream(
        mut self,
        dump: Command,
        semi_sync: bool,
        idle_timeout: Option<Duration>,
    ) -> Result<BinlogStream, ClientError> {
        assert!(
            matches!(dump, Command::BinlogDump(_) | Command::BinlogDumpGtid(_)),
            "not a dump command: {dump:?}"
        );
        self.framer.reset();
        self.send(&dump.encode()).await?;
        Ok(BinlogStream::new(self, semi_sync, idle_timeout))
    }

    /// Says goodbye (COM_QUIT) and closes; errors are of no interest here.
    pub async fn close(mut self) {
        self.framer.reset();
        let _ = self.send(&Command::Quit.encode()).await;
        let _ = self.io.shutdown().await;
    }

    async fn simple_command(&mut self, command: Command) -> Result<OkPacket, ClientError> {
        self.framer.reset();
        self.send(&command.encode()).await?;
        let payload = self.read_payload().await?;
        if response::is_err(&payload) {
            return Err(self.server_error(&payload));
        }
        OkPacket::decode(&payload).map_err(|e| self.protocol(e))
    }

    /// Frames and writes one payload.
    async fn send(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.framer.encode(payload, &mut self.wbuf);
        self.flush().await
    }

    /// Writes one payload outside the command's sequence (semi-sync ACKs).
    async fn send_detached(&mut self, payload: &[u8], seq: u8) -> Result<(), ClientError> {
        crate::packet::encode_frames(payload, seq, &mut self.wbuf);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        let result = async {
            self.io.write_all(&self.wbuf).await?;
            self.io.flush().await
        }
        .await;
        self.wbuf.clear();
        result.map_err(|source| ClientError::Io { addr: self.addr.clone(), source })
    }

    /// Reads until one whole payload is there. Cancel-safe: bytes read stay
    /// in the buffer for the next call.
    async fn read_payload(&mut self) -> Result<Bytes, ClientError> {
        loop {
            if let Some(payload) = self.framer.decode(&mut self.rbuf).map_err(|e| self.protocol(e))? {
                return Ok(payload);
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_MIN {
                self.rbuf.reserve(READ_CHUNK);
            }
            let n = self
                .io
                .read_buf(&mut self.rbuf)
                .await
                .map_err(|source| ClientError::Io { addr: self.addr.clone(), source })?;
            if n == 0 {
                return Err(ClientError::Closed { addr: self.addr.clone() });
            }
        }
    }

    fn protocol(&self, source: ProtocolError) -> ClientError {
        ClientError::Protocol { addr: self.addr.clone(), source }
    }

    fn server_error(&self, payload: &[u8]) -> ClientError {
        match decode_err(payload) {
            Ok(error) => ClientError::Server { addr: self.addr.clone(), error },
            Err(e) => self.protocol(e),
        }
    }

    fn tls_error(&self, source: tls::TlsError) -> ClientError {
        ClientError::Tls { addr: self.addr.clone(), source: Box::new(source) }
    }

    fn auth_error(&self, options: &ConnectOptions, source: crate::auth::AuthError) -> ClientError {
        ClientError::Auth { addr: self.addr.clone(), user: options.user.clone(), source }
    }
}
