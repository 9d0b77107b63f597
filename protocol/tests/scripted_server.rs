//! The tokio client against a scripted server on 127.0.0.1: MySQL 8's
//! caching_sha2_password and sha256_password exchanges (no MySQL server can
//! be installed here), an auth switch, a refused password, and a binlog
//! stream whose events arrive split across 16 MiB frames.
//!
//! The server side is written with the crate's own message types but checks
//! the client's answers independently: it decrypts the RSA-encrypted
//! password with the private key and compares it with the password.

use bytes::BytesMut;
use gapless_protocol::auth::caching_sha2_password;
use gapless_protocol::binlog::StreamPacket;
use gapless_protocol::client::{ClientError, ConnectOptions, Connection, Password};
use gapless_protocol::command::{BinlogDump, Command, RegisterSlave};
use gapless_protocol::handshake::{caps, AuthSwitchRequest, HandshakeResponse, InitialHandshake};
use gapless_protocol::packet::Framer;
use gapless_protocol::response::{encode_err, encode_text_row, ColumnDefinition, OkPacket};
use gapless_protocol::tls::{SslMode, TlsOptions};
use gapless_protocol::ServerError;
use rsa::pkcs8::DecodePrivateKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &[u8] = b"mysql8-pw";
const NONCE: [u8; 20] = *b"0123456789abcdefghij";
const PRIVATE_KEY: &str = include_str!("data/auth/rsa_private.pem");
const PUBLIC_KEY: &str = include_str!("data/auth/rsa_public_spki.pem");

/// The server end of one connection.
struct Peer {
    io: TcpStream,
    framer: Framer,
    buf: BytesMut,
}

impl Peer {
    async fn send(&mut self, payload: &[u8]) {
        let mut out = BytesMut::new();
        self.framer.encode(payload, &mut out);
        self.io.write_all(&out).await.expect("server write");
    }

    async fn recv(&mut self) -> Vec<u8> {
        loop {
            if let Some(p) = self.framer.decode(&mut self.buf).expect("client framing") {
                return p.to_vec();
            }
            let n = self.io.read_buf(&mut self.buf).await.expect("server read");
            assert!(n > 0, "client closed the connection");
        }
    }

    /// A new command from the client starts at sequence 0.
    async fn command(&mut self) -> Command {
        self.framer.reset();
        Command::decode(&self.recv().await).expect("a command")
    }
}

fn greeting(plugin: &str) -> InitialHandshake {
    InitialHandshake {
        server_version: b"8.4.3".to_vec(),
        connection_id: 42,
        capabilities: caps::CLIENT,
        mariadb_capabilities: 0,
        charset: 255,
        status: 2,
        nonce: NONCE.to_vec(),
        auth_plugin: Some(plugin.as_bytes().to_vec()),
    }
}

/// Decrypts what the client sent: RSA-OAEP(SHA-1), then XOR with the nonce.
fn decrypt_password(ciphertext: &[u8], nonce: &[u8]) -> Vec<u8> {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(PRIVATE_KEY).expect("test key");
    let plain = key.decrypt(rsa::Oaep::new::<sha1::Sha1>(), ciphertext).expect("OAEP decrypt");
    plain.iter().enumerate().map(|(i, b)| b ^ nonce[i % nonce.len()]).collect()
}

fn ok() -> Vec<u8> {
    OkPacket { status: 2, ..Default::default() }.encode()
}

async fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

async fn accept(listener: &TcpListener, plugin: &str) -> (Peer, HandshakeResponse) {
    let (io, _) = listener.accept().await.expect("accept");
    let mut peer = Peer { io, framer: Framer::new(), buf: BytesMut::new() };
    peer.send(&greeting(plugin).encode()).await;
    let response = HandshakeResponse::decode(&peer.recv().await).expect("handshake response");
    (peer, response)
}

fn options(port: u16, password: &[u8]) -> ConnectOptions {
    let mut o = ConnectOptions::new("127.0.0.1", port, "repl");
    o.password = Password::new(password);
    o.tls = TlsOptions { mode: SslMode::Disabled, ..TlsOptions::default() };
    o
}

/// Answers `SELECT 1` with a one-row result set (CLIENT_DEPRECATE_EOF).
async fn answer_select_1(peer: &mut Peer) {
    assert_eq!(peer.command().await, Command::Query(b"SELECT 1".to_vec()));
    peer.send(&[1]).await;
    peer.send(&ColumnDefinition { name: b"1".to_vec(), column_type: 8, ..Default::default() }.encode()).await;
    peer.send(&encode_text_row(&[Some(b"1".to_vec())])).await;
    let mut end = ok();
    end[0] = 0xfe;
    peer.send(&end).await;
}

#[tokio::test]
async fn caching_sha2_full_auth_without_tls_fetches_the_key() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(async move {
        let (mut peer, response) = accept(&listener, "caching_sha2_password").await;
        assert_eq!(response.user, b"repl");
        assert_eq!(response.auth_plugin.as_deref(), Some(&b"caching_sha2_password"[..]));
        assert_eq!(response.auth_response, caching_sha2_password(PASSWORD, &NONCE));
        assert_eq!(response.capabilities & caps::SSL, 0);
        peer.send(&[0x01, 0x04]).await; // perform full authentication
        assert_eq!(peer.recv().await, [0x02], "the client asks for the public key");
        let mut key = vec![0x01];
        key.extend_from_slice(PUBLIC_KEY.as_bytes());
        peer.send(&key).await;
        let encrypted = peer.recv().await;
        assert_eq!(encrypted.len(), 256, "one RSA-2048 block");
        assert_eq!(decrypt_password(&encrypted, &NONCE), [PASSWORD, b"\0"].concat());
        peer.send(&ok()).await;
        answer_select_1(&mut peer).await;
    });
    let mut conn = Connection::connect(&options(port, PASSWORD)).await.expect("login");
    assert_eq!(conn.server().display_version(), "8.4.3");
    assert_eq!(conn.query_value("SELECT 1").await.expect("query").as_deref(), Some("1"));
    server.await.expect("server script");
}

#[tokio::test]
async fn caching_sha2_fast_path_and_configured_key() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(async move {
        // Fast path: the server's cache has the hash.
        let (mut peer, _) = accept(&listener, "caching_sha2_password").await;
        peer.send(&[0x01, 0x03]).await;
        peer.send(&ok()).await;
        answer_select_1(&mut peer).await;
        // Full auth with the key given by the user: no key request.
        let (mut peer, _) = accept(&listener, "caching_sha2_password").await;
        peer.send(&[0x01, 0x04]).await;
        assert_eq!(decrypt_password(&peer.recv().await, &NONCE), [PASSWORD, b"\0"].concat());
        peer.send(&ok()).await;
    });
    let mut conn = Connection::connect(&options(port, PASSWORD)).await.expect("fast login");
    assert_eq!(conn.query_value("SELECT 1").await.unwrap().as_deref(), Some("1"));
    let mut with_key = options(port, PASSWORD);
    with_key.server_public_key = Some(PUBLIC_KEY.as_bytes().to_vec());
    Connection::connect(&with_key).await.expect("login with a configured key");
    server.await.expect("server script");
}

#[tokio::test]
async fn sha256_password_and_auth_switch() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(async move {
        // sha256_password over plain TCP: the first answer asks for the key.
        let (mut peer, response) = accept(&listener, "sha256_password").await;
        assert_eq!(response.auth_response, [0x01]);
        let mut key = vec![0x01];
        key.extend_from_slice(PUBLIC_KEY.as_bytes());
        peer.send(&key).await;
        assert_eq!(decrypt_password(&peer.recv().await, &NONCE), [PASSWORD, b"\0"].concat());
        peer.send(&ok()).await;

        // The account uses mysql_native_password: the server switches, with
        // a new nonce (NUL-terminated, as servers send it).
        let (mut peer, _) = accept(&listener, "caching_sha2_password").await;
        let nonce2 = *b"ABCDEFGHIJKLMNOPQRST";
        let mut data = nonce2.to_vec();
        data.push(0);
        peer.send(&AuthSwitchRequest { plugin: b"mysql_native_password".to_vec(), data }.encode()).await;
        let answer = peer.recv().await;
        assert_eq!(answer, gapless_protocol::auth::native_password(PASSWORD, &nonce2));
        peer.send(&ok()).await;
    });
    Connection::connect(&options(port, PASSWORD)).await.expect("sha256_password login");
    Connection::connect(&options(port, PASSWORD)).await.expect("login after auth switch");
    server.await.expect("server script");
}

#[tokio::test]
async fn refused_password_is_the_servers_error() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(async move {
        let (mut peer, _) = accept(&listener, "caching_sha2_password").await;
        let e = ServerError {
            code: 1045,
            sql_state: Some("28000".into()),
            message: "Access denied for user 'repl'@'127.0.0.1' (using password: YES)".into(),
        };
        peer.send(&encode_err(&e)).await;
    });
    let err = Connection::connect(&options(port, b"wrong-pw-xyz")).await.unwrap_err();
    assert_eq!(err.server_error().map(|e| e.code), Some(1045));
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:") && text.contains("ERROR 1045 (28000)"), "{text}");
    assert!(!text.contains("wrong-pw-xyz"));
    assert!(!err.is_transient());
    server.await.expect("server script");
}

/// A fake event of `len` bytes: a v4 header, then filler.
fn event(len: usize, tag: u8) -> Vec<u8> {
    let mut e = vec![tag; len];
    e[..4].copy_from_slice(&1_700_000_000u32.to_le_bytes());
    e[4] = 0x1d; // ROWS_QUERY: the protocol does not care
    e[9..13].copy_from_slice(&(len as u32).to_le_bytes());
    e
}

#[tokio::test]
async fn events_over_16_mib_arrive_whole() {
    let (listener, port) = listen().await;
    let big = 17 * 1024 * 1024 + 5;
    let server = tokio::spawn(async move {
        let (mut peer, _) = accept(&listener, "mysql_native_password").await;
        peer.send(&ok()).await;
        let Command::RegisterSlave(r) = peer.command().await else { panic!("register expected") };
        assert_eq!(r.server_id, 99);
        peer.send(&ok()).await;
        let Command::BinlogDump(d) = peer.command().await else { panic!("dump expected") };
        assert_eq!((d.file.as_slice(), d.position), (&b"binlog.000001"[..], 4));
        for (len, tag) in [(40, 1), (big, 2), (0xff_ffff - 1, 3), (60, 4)] {
            let packet = StreamPacket::Event { event: event(len, tag).into(), needs_ack: false };
            peer.send(&packet.encode(false)).await;
        }
        peer.send(&StreamPacket::End.encode(false)).await;
    });
    let mut conn = Connection::connect(&options(port, PASSWORD)).await.expect("login");
    let register = RegisterSlave {
        server_id: 99,
        hostname: b"test".to_vec(),
        user: Vec::new(),
        password: Vec::new(),
        port: 0,
    };
    conn.register_replica(register).await.expect("register");
    let dump = Command::BinlogDump(BinlogDump {
        position: 4,
        flags: 0,
        server_id: 99,
        file: b"binlog.000001".to_vec(),
    });
    let mut stream = conn.binlog_stream(dump, false, None).await.expect("dump");
    // The 0xff_fffe-byte event plus the OK byte fills a frame exactly: an
    // empty frame must follow, and the reader must wait for it.
    for (len, tag) in [(40, 1u8), (big, 2), (0xff_ffff - 1, 3), (60, 4)] {
        let ev = stream.next().await.expect("event").expect("not the end");
        assert_eq!(ev.bytes.len(), len);
        assert!(ev.bytes[19..].iter().all(|b| *b == tag), "event {tag} changed on the way");
    }
    assert_eq!(stream.next().await.expect("end"), None);
    server.await.expect("server script");
}

#[tokio::test]
async fn connection_errors_name_the_server() {
    let (listener, port) = listen().await;
    drop(listener);
    let err = Connection::connect(&options(port, PASSWORD)).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.is_transient());
}
