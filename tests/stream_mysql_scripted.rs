//! `gapless stream` against a scripted MySQL 8 primary on 127.0.0.1 (no
//! MySQL server can be installed here): the MySQL side of the session
//! (`SHOW REPLICAS`, `SHOW BINARY LOG STATUS` with its fallback to `SHOW
//! MASTER STATUS` on 8.0, the `source_*` variables) and MySQL's events over
//! the wire: GTIDs, tagged GTIDs (8.3+), compressed transaction payloads.
//!
//! The scripted primary serves real MySQL-written binlog files from
//! ../shared/fixtures event by event, after the made-up ROTATE a primary
//! opens every dump with; the streamed JSON lines must equal `gapless
//! decode` of the same file.

mod common;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use common::server::Streamer;
use gapless_protocol::binlog::StreamPacket;
use gapless_protocol::command::Command;
use gapless_protocol::handshake::{caps, HandshakeResponse, InitialHandshake};
use gapless_protocol::packet::Framer;
use gapless_protocol::response::{encode_err, encode_text_row, ColumnDefinition, OkPacket};
use gapless_protocol::ServerError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Which MySQL the script plays.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    /// 8.4: `SHOW MASTER STATUS` is gone.
    Mysql84,
    /// 8.0: `SHOW BINARY LOG STATUS` does not exist yet.
    Mysql80,
    /// MariaDB 10.11, for MariaDB-written files.
    Maria,
}

struct Peer {
    io: TcpStream,
    framer: Framer,
    buf: BytesMut,
}

impl Peer {
    async fn send(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        self.framer.encode(payload, &mut out);
        self.io.write_all(&out).await
    }

    async fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(p) = self.framer.decode(&mut self.buf).expect("client framing") {
                return Some(p.to_vec());
            }
            if self.io.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    async fn rows(&mut self, columns: &[&str], rows: &[Vec<&str>]) -> std::io::Result<()> {
        self.send(&[columns.len() as u8]).await?;
        for c in columns {
            self.send(
                &ColumnDefinition { name: c.as_bytes().to_vec(), column_type: 253, ..Default::default() }
                    .encode(),
            )
            .await?;
        }
        for row in rows {
            self.send(&encode_text_row(&row.iter().map(|v| Some(v.as_bytes().to_vec())).collect::<Vec<_>>()))
                .await?;
        }
        let mut end = OkPacket { status: 2, ..Default::default() }.encode();
        end[0] = 0xfe;
        self.send(&end).await
    }

    async fn ok(&mut self) -> std::io::Result<()> {
        self.send(&OkPacket { status: 2, ..Default::default() }.encode()).await
    }

    async fn syntax_error(&mut self, sql: &str) -> std::io::Result<()> {
        let e = ServerError {
            code: 1064,
            sql_state: Some("42000".into()),
            message: format!("You have an error in your SQL syntax near '{sql}'"),
        };
        self.send(&encode_err(&e)).await
    }
}

/// The binlog file as the primary sends it: a made-up ROTATE naming the
/// file (artificial flag, log_pos 0), then every event of the file.
fn dump_events(data: &[u8], name: &str, checksums: bool) -> Vec<Vec<u8>> {
    let mut rotate = Vec::new();
    rotate.extend_from_slice(&0u32.to_le_bytes());
    rotate.push(4);
    rotate.extend_from_slice(&1u32.to_le_bytes());
    let size = 19 + 8 + name.len() + if checksums { 4 } else { 0 };
    rotate.extend_from_slice(&(size as u32).to_le_bytes());
    rotate.extend_from_slice(&0u32.to_le_bytes());
    rotate.extend_from_slice(&0x20u16.to_le_bytes());
    rotate.extend_from_slice(&4u64.to_le_bytes());
    rotate.extend_from_slice(name.as_bytes());
    if checksums {
        let crc = crc32fast::hash(&rotate);
        rotate.extend_from_slice(&crc.to_le_bytes());
    }
    let mut events = vec![rotate];
    let mut pos = 4;
    while pos + 19 <= data.len() {
        let size = u32::from_le_bytes(data[pos + 9..pos + 13].try_into().unwrap()) as usize;
        events.push(data[pos..pos + size].to_vec());
        pos += size;
    }
    events
}

/// Plays a MySQL primary for every connection; records the queries.
fn serve(version: Version, file: PathBuf, queries: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (io, _) = listener.accept().await.unwrap();
                let (file, queries) = (file.clone(), queries.clone());
                tokio::spawn(async move {
                    let _ = session(version, io, &file, &queries).await;
                });
            }
        });
    });
    port
}

async fn session(
    version: Version,
    io: TcpStream,
    file: &Path,
    queries: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let data = std::fs::read(file)?;
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let checksums = fde_has_crc(&data);
    let mut peer = Peer { io, framer: Framer::new(), buf: BytesMut::new() };
    let greeting = InitialHandshake {
        server_version: match version {
            Version::Mysql84 => b"8.4.3".to_vec(),
            Version::Mysql80 => b"8.0.36".to_vec(),
            Version::Maria => b"5.5.5-10.11.6-MariaDB".to_vec(),
        },
        connection_id: 7,
        capabilities: caps::CLIENT,
        mariadb_capabilities: 0,
        charset: 255,
        status: 2,
        nonce: b"abcdefghijklmnopqrst".to_vec(),
        auth_plugin: Some(b"mysql_native_password".to_vec()),
    };
    peer.send(&greeting.encode()).await?;
    let Some(response) = peer.recv().await else { return Ok(()) };
    HandshakeResponse::decode(&response).expect("handshake response");
    peer.ok().await?;
    loop {
        peer.framer.reset();
        let Some(payload) = peer.recv().await else { return Ok(()) };
        match Command::decode(&payload).expect("a command") {
            Command::Query(sql) => {
                let sql = String::from_utf8(sql).unwrap();
                queries.lock().unwrap().push(sql.clone());
                match sql.as_str() {
                    "SHOW REPLICAS" => {
                        peer.rows(&["Server_Id", "Host", "Port", "Source_Id", "Replica_UUID"], &[]).await?
                    }
                    "SHOW SLAVE HOSTS" if version == Version::Maria => {
                        peer.rows(&["Server_id", "Host", "Port", "Master_id"], &[]).await?
                    }
                    "SELECT @@server_id" => peer.rows(&["@@server_id"], &[vec!["1"]]).await?,
                    "SHOW BINARY LOG STATUS" if version == Version::Mysql80 => {
                        peer.syntax_error(&sql).await?
                    }
                    "SHOW MASTER STATUS" if version == Version::Mysql84 => peer.syntax_error(&sql).await?,
                    "SHOW BINARY LOG STATUS" | "SHOW MASTER STATUS" => {
                        peer.rows(
                            &["File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB", "Executed_Gtid_Set"],
                            &[vec![&name, "4", "", "", ""]],
                        )
                        .await?
                    }
                    "SELECT @master_binlog_checksum" => {
                        peer.rows(
                            &["@master_binlog_checksum"],
                            &[vec![if checksums { "CRC32" } else { "NONE" }]],
                        )
                        .await?
                    }
                    s if s.starts_with("SET ") => peer.ok().await?,
                    _ => peer.syntax_error(&sql).await?,
                }
            }
            Command::RegisterSlave(_) => peer.ok().await?,
            Command::BinlogDump(d) => {
                if (d.file.as_slice(), d.position) != (name.as_bytes(), 4) {
                    let e = ServerError {
                        code: 1236,
                        sql_state: Some("HY000".into()),
                        message: format!("the script serves {name}:4 only"),
                    };
                    return peer.send(&encode_err(&e)).await;
                }
                for event in dump_events(&data, &name, checksums) {
                    let packet = StreamPacket::Event { event: event.into(), needs_ack: false };
                    peer.send(&packet.encode(false)).await?;
                }
                // A live primary keeps the stream open; wait for the client.
                while peer.io.read_buf(&mut peer.buf).await? > 0 {}
                return Ok(());
            }
            Command::Quit => return Ok(()),
            other => panic!("unexpected command {other:?}"),
        }
    }
}

/// The file's FORMAT_DESCRIPTION, if it starts with one.
fn fde(data: &[u8]) -> Option<gapless_decoder::FormatDescription> {
    let mut reader = gapless_decoder::BinlogReader::new(data, gapless_decoder::Decoder::new()).ok()?;
    match reader.next()? {
        Ok(gapless_decoder::Event { data: gapless_decoder::EventData::FormatDescription(f), .. }) => Some(f),
        _ => None,
    }
}

/// Whether the file's FORMAT_DESCRIPTION announces CRC32 checksums.
fn fde_has_crc(data: &[u8]) -> bool {
    fde(data).is_some_and(|f| f.checksum == gapless_decoder::ChecksumAlg::Crc32)
}

/// `gapless stream --format jsonl` from the scripted primary on `port`.
fn stream_jsonl(port: u16, tag: &str) -> Streamer {
    let source = format!("mysql://repl@127.0.0.1:{port}");
    Streamer::spawn(&["--source", &source, "--format", "jsonl", "--ssl-mode", "disabled"], "pw", tag)
}

fn decode_jsonl(file: &Path) -> String {
    let out = common::gapless().args(["decode", "--format", "jsonl"]).arg(file).output().expect("decode");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn check(version: Version, fixture: &str) {
    let Some(fixtures) = common::shared_fixtures() else { return };
    let file = fixtures.join(fixture);
    let expected = decode_jsonl(&file);
    let rows = expected.lines().filter(|l| l.contains("\"op\":")).count();
    assert!(rows > 0, "{fixture} has no rows");
    let queries = Arc::new(Mutex::new(Vec::new()));
    let port = serve(version, file, queries.clone());
    let mut s = stream_jsonl(port, &format!("mysql-{}", fixture.replace('/', "-")));
    s.wait_for(Duration::from_secs(30), "every row", |out| {
        out.lines().filter(|l| l.contains("\"op\":")).count() >= rows
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.stop(), 0, "{}", s.log());
    let streamed = s.output();
    assert!(
        streamed == expected,
        "{fixture}: streamed JSON lines differ from `gapless decode`:\n--- stream\n{streamed}--- decode\n{expected}log:\n{}",
        s.log()
    );

    let queries = queries.lock().unwrap().clone();
    let status = if version == Version::Mysql84 { "SHOW BINARY LOG STATUS" } else { "SHOW MASTER STATUS" };
    assert!(queries.iter().any(|q| q == status), "{status} not asked: {queries:?}");
    assert!(queries.iter().any(|q| q == "SHOW REPLICAS"), "{queries:?}");
    assert!(queries.iter().any(|q| q.starts_with("SET @source_heartbeat_period")), "{queries:?}");
    assert!(
        !queries.iter().any(|q| q.contains("mariadb_slave_capability")),
        "MariaDB-only set-up sent to MySQL"
    );
}

/// Every MySQL/MariaDB fixture with a v4 FORMAT_DESCRIPTION that `gapless
/// decode` reads whole, streamed from the scripted primary: the same JSON
/// lines. Files with a ROTATE before their last event are left out: after
/// it a primary names the next file, so the "file" fields differ by design.
#[test]
fn every_fixture_streams_like_decode() {
    let Some(fixtures) = common::shared_fixtures() else { return };
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in common::walk(&fixtures).into_iter().filter(|p| common::is_binlog(p)) {
        if path.extension().is_some_and(|e| e == "gz") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let Some(f) = fde(&data) else { continue };
        let out = common::gapless().args(["decode", "--format", "jsonl"]).arg(&path).output().unwrap();
        if !out.status.success() {
            continue;
        }
        let expected = String::from_utf8(out.stdout).unwrap();
        let rotates = expected.matches("\"event\":\"rotate\"").count();
        let last_is_rotate = expected.lines().last().is_some_and(|l| l.contains("\"event\":\"rotate\""));
        if rotates > usize::from(last_is_rotate) {
            continue;
        }
        let version = if f.server_version.contains("MariaDB") { Version::Maria } else { Version::Mysql84 };
        let queries = Arc::new(Mutex::new(Vec::new()));
        let port = serve(version, path.clone(), queries);
        let tag = format!("all-{checked}");
        let mut s = stream_jsonl(port, &tag);
        let want = expected.lines().count();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while s.output().lines().count() < want && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        s.stop();
        let streamed = s.output();
        // A file may end inside a transaction (copied while the server
        // wrote it): the stream holds such a transaction back until its
        // commit, which never comes. Everything before it must match.
        let (got, all): (Vec<&str>, Vec<&str>) = (streamed.lines().collect(), expected.lines().collect());
        let tail = all.get(got.len()..).unwrap_or_default();
        let tail_commits =
            tail.iter().any(|l| l.contains("\"event\":\"xid\"") || l.contains("\"query\":\"COMMIT\""));
        if !all.starts_with(&got) || tail_commits {
            let first = got.iter().zip(&all).position(|(a, b)| a != b).unwrap_or(got.len().min(all.len()));
            failures.push(format!(
                "{}: {} lines streamed, {} decoded, first difference at line {}:\n  stream: {:?}\n  decode: {:?}",
                path.display(),
                got.len(),
                all.len(),
                first + 1,
                got.get(first),
                all.get(first)
            ));
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures checked");
    assert!(failures.is_empty(), "{} of {checked} differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn mysql_8_0_gtid_rows() {
    check(Version::Mysql80, "rust_mysql_common/mysql-enum-string-set.000001");
}

#[test]
fn mysql_8_4_compressed_transaction() {
    check(Version::Mysql84, "rust_mysql_common/transaction_compression.000001");
}

#[test]
fn mysql_tagged_gtids() {
    check(Version::Mysql84, "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001");
}

/// A byte changed on the way (here: in the served file) is caught by the
/// event's CRC32 before anything of its transaction is shown, whether the
/// stream decodes the event (GTID, QUERY, XID) or only checks it (rows).
#[test]
fn corrupted_event_stops_the_stream_with_its_position() {
    let Some(fixtures) = common::shared_fixtures() else { return };
    let original = std::fs::read(fixtures.join("rust_mysql_common/mysql-enum-string-set.000001")).unwrap();
    // Every event of the file, by offset and type.
    let mut events = Vec::new();
    let mut pos = 4;
    while pos + 19 <= original.len() {
        let size = u32::from_le_bytes(original[pos + 9..pos + 13].try_into().unwrap()) as usize;
        events.push((pos, original[pos + 4]));
        pos += size;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
    std::fs::create_dir_all(&dir).unwrap();
    // WRITE_ROWS_V2 (30): only checked; QUERY (2): decoded.
    for ty in [30u8, 2] {
        let &(at, _) = events.iter().find(|(_, t)| *t == ty).expect("event of that type");
        let mut data = original.clone();
        data[at + 20] ^= 0x01;
        let path = dir.join(format!("corrupt-{ty}-{}.000001", std::process::id()));
        std::fs::write(&path, &data).unwrap();
        let port = serve(Version::Mysql84, path.clone(), Arc::new(Mutex::new(Vec::new())));
        // Raw output: nothing downstream decodes, so the check is the stream's.
        let source = format!("mysql://repl@127.0.0.1:{port}");
        let args = ["--source", &source, "--format", "raw", "--ssl-mode", "disabled"];
        let mut s = Streamer::spawn(&args, "pw", &format!("corrupt-{ty}"));
        assert_eq!(s.wait_exit(Duration::from_secs(30)), 1, "{}", s.log());
        let log = s.log();
        assert!(log.contains(&format!("checksum mismatch in event at offset {at}")), "type {ty}: {log}");
        // Nothing of the damaged event's transaction was written: the raw
        // output is a prefix of the file ending before it.
        let out = std::fs::read(&s.stdout).unwrap();
        assert!(out.len() <= at && original.starts_with(&out), "type {ty}: {} bytes written", out.len());
        std::fs::remove_file(&path).unwrap();
    }
}
