//! `gapless stream` and the replication client against live MariaDB
//! servers: logins (native password, ed25519, TLS), streaming from a
//! position and from a GTID, equality with `gapless decode` of the same
//! binlog files, a primary killed with `kill -9` mid-workload, a purged
//! start position, server-id conflicts, and semi-sync ACKs.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::server::{Server, Streamer};
use common::{mariadb_here, repo, row_lines, wait_until};
use gapless_protocol::client::{ClientError, ConnectOptions, Connection, Password};
use gapless_protocol::tls::{SslMode, TlsOptions};

const PASSWORD: &str = "repl-pw-7f3a";

fn decode_jsonl(files: &[PathBuf]) -> String {
    let out =
        common::gapless().args(["decode", "--format", "jsonl"]).args(files).output().expect("gapless decode");
    assert!(out.status.success(), "decode failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The first line where two outputs differ, for assertion messages.
fn first_difference(a: &str, b: &str) -> String {
    let (la, lb): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    for i in 0..la.len().max(lb.len()) {
        if la.get(i) != lb.get(i) {
            return format!("line {}:\n  stream: {:?}\n  decode: {:?}", i + 1, la.get(i), lb.get(i));
        }
    }
    "no difference".into()
}

/// The JSON value of `"key":` in a line (numbers and strings, as text).
fn field<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

#[test]
fn stream_equals_decode_of_the_same_binlogs() {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start(
        "eq",
        1,
        21100,
        &["--binlog-row-metadata=FULL", "--binlog-checksum=CRC32", "--max-binlog-size=65536"],
    );
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    let mut live = Streamer::spawn(
        &[
            "--source",
            &primary.url("repl"),
            "--from",
            "mariadb-bin.000001:4",
            "--format",
            "jsonl",
            "--heartbeat",
            "1",
        ],
        PASSWORD,
        "eq-live",
    );
    let workload = std::fs::read_to_string(repo().join("fixtures/workload/types.sql")).expect("workload");
    primary.sql(&workload);
    primary.sql("FLUSH BINARY LOGS");
    let files = primary.binlogs();
    assert!(files.len() >= 3, "the workload should span several binlogs (max_binlog_size 64K): {files:?}");
    let expected = decode_jsonl(&files);
    let expected_rows = row_lines(&expected).len();
    assert!(expected_rows > 100, "workload too small: {expected_rows} rows");

    live.wait_for(Duration::from_secs(60), "all rows", |out| row_lines(out).len() >= expected_rows);
    assert_eq!(live.stop(), 0, "log:\n{}", live.log());
    let streamed = live.output();
    assert!(
        streamed == expected,
        "streamed JSON lines differ from `gapless decode` of the binlog files at {}",
        first_difference(&streamed, &expected)
    );

    // Raw: byte for byte the events the files hold (each file past its
    // magic), none of the events the primary makes up for the stream. The
    // file in use is checked by length only: the primary clears the in-use
    // flag of its FORMAT_DESCRIPTION when it sends it.
    let mut expected_raw = b"\xfebin".to_vec();
    let (in_use, closed) = files.split_last().expect("binlogs");
    for f in closed {
        expected_raw.extend_from_slice(&std::fs::read(f).expect("binlog")[4..]);
    }
    let closed_len = expected_raw.len();
    expected_raw.extend_from_slice(&std::fs::read(in_use).expect("binlog")[4..]);
    let mut raw = Streamer::spawn(
        &["--source", &primary.url("repl"), "--from", "mariadb-bin.000001:4", "--format", "raw"],
        PASSWORD,
        "eq-raw",
    );
    let start = std::time::Instant::now();
    let raw_len = |s: &Streamer| std::fs::metadata(&s.stdout).map_or(0, |m| m.len() as usize);
    while raw_len(&raw) < expected_raw.len() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(raw.stop(), 0, "log:\n{}", raw.log());
    let streamed_raw = std::fs::read(&raw.stdout).expect("raw output");
    assert!(
        streamed_raw.len() == expected_raw.len() && streamed_raw[..closed_len] == expected_raw[..closed_len],
        "raw stream ({} bytes) differs from the binlog files ({} bytes) at byte {:?}",
        streamed_raw.len(),
        expected_raw.len(),
        streamed_raw.iter().zip(&expected_raw).position(|(a, b)| a != b)
    );

    // From a GTID in the middle: exactly the row changes of the later
    // transactions.
    let rows = row_lines(&expected);
    let middle_gtid = field(rows[rows.len() / 2], "gtid").expect("gtid").to_string();
    let from: Vec<&str> =
        rows.iter().copied().skip_while(|l| field(l, "gtid") != Some(&middle_gtid)).collect();
    let after: Vec<&str> = from.into_iter().skip_while(|l| field(l, "gtid") == Some(&middle_gtid)).collect();
    assert!(!after.is_empty());
    let mut by_gtid = Streamer::spawn(
        &["--source", &primary.url("repl"), "--from-gtid", &middle_gtid, "--format", "jsonl"],
        PASSWORD,
        "eq-gtid",
    );
    by_gtid
        .wait_for(Duration::from_secs(60), "rows after the GTID", |out| row_lines(out).len() >= after.len());
    assert_eq!(by_gtid.stop(), 0);
    let streamed = by_gtid.output();
    assert_eq!(row_lines(&streamed), after, "rows streamed after GTID {middle_gtid}");
}

/// Inserts ids `from..to`, one transaction each, in one client session.
fn insert_script(from: u32, to: u32) -> String {
    (from..to).map(|i| format!("INSERT INTO d.t VALUES ({i}, REPEAT('x', {}));\n", i % 50)).collect()
}

#[test]
fn primary_killed_mid_workload_no_gap_no_duplicate() {
    killed_mid_workload("kill", 21200, &["--from", "mariadb-bin.000001:4"]);
}

/// The same, resuming by GTID (`@slave_connect_state`) instead of by file
/// and position.
#[test]
fn primary_killed_mid_workload_resume_by_gtid() {
    killed_mid_workload("killg", 21700, &["--from-gtid", ""]);
}

/// A primary shut down cleanly ends the dump with an EOF packet: the
/// stream does not stop there, it reconnects once the primary is back and
/// goes on with no gap and no duplicate.
#[test]
fn a_primary_shut_down_cleanly_and_restarted_is_followed_on() {
    if !mariadb_here() {
        return;
    }
    let primary =
        Server::start("shutdown", 1, 22000, &["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL"]);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    primary.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB;");
    let source = primary.url("repl");
    let args = [
        "--source",
        &source,
        "--from-gtid",
        "",
        "--format",
        "jsonl",
        "--heartbeat",
        "1",
        "--max-backoff",
        "1",
    ];
    let mut s = Streamer::spawn(&args, PASSWORD, "shutdown");
    primary.sql(&insert_script(1, 101));
    s.wait_for(Duration::from_secs(30), "the first 100 rows", |out| row_lines(out).len() >= 100);
    // SHUTDOWN as mariadb-admin shutdown sends it.
    let _ = primary.client("-e SHUTDOWN").output().expect("mariadb client");
    wait_until(Duration::from_secs(30), "the primary to stop", || {
        std::net::TcpStream::connect(("127.0.0.1", primary.port)).is_err()
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(s.is_running(), "the stream stopped with the primary:\n{}", s.log());
    primary.restart();
    primary.sql(&insert_script(101, 201));
    s.wait_for(Duration::from_secs(60), "the rows after the restart", |out| row_lines(out).len() >= 200);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(s.stop(), 0);
    let ids: Vec<u32> = row_lines(&s.output())
        .iter()
        .map(|line| {
            let after = &line[line.find("\"after\":").expect("after")..];
            field(after, "id").expect("id").parse().expect("numeric id")
        })
        .collect();
    assert_eq!(ids, (1..201).collect::<Vec<u32>>(), "every row once, in order");
    assert!(s.log().contains("reconnecting"), "{}", s.log());
}

fn killed_mid_workload(name: &str, port_base: u16, start: &[&str]) {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start(
        name,
        1,
        port_base,
        &[
            "--binlog-checksum=CRC32",
            "--binlog-row-metadata=FULL",
            "--sync-binlog=1",
            "--innodb-flush-log-at-trx-commit=1",
        ],
    );
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    primary.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB;");
    let source = primary.url("repl");
    let mut args = vec!["--source", &source, "--format", "jsonl", "--heartbeat", "1", "--max-backoff", "1"];
    args.extend_from_slice(start);
    let mut s = Streamer::spawn(&args, PASSWORD, name);
    primary.sql(&insert_script(1, 301));
    s.wait_for(Duration::from_secs(30), "the first 300 rows", |out| row_lines(out).len() >= 300);

    // A client inserting in the background while the primary dies.
    let writer = primary
        .client("-N -B")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("writer");
    let mut writer = writer;
    {
        use std::io::Write;
        let mut stdin = writer.stdin.take().expect("stdin");
        let script = insert_script(1000, 30_000);
        std::thread::spawn(move || {
            let _ = stdin.write_all(script.as_bytes());
        });
    }
    std::thread::sleep(Duration::from_millis(700));
    primary.kill9();
    let _ = writer.wait();
    primary.restart();
    primary.sql(&insert_script(50_000, 50_200));

    let count: usize = primary.value("SELECT COUNT(*) FROM d.t").parse().expect("count");
    assert!(count > 500, "the background writer should have committed some rows before the kill ({count})");
    s.wait_for(Duration::from_secs(60), "every committed row", |out| row_lines(out).len() >= count);
    // A little longer: a duplicate would show up as extra lines.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(s.stop(), 0);

    let out = s.output();
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for line in row_lines(&out) {
        let after = &line[line.find("\"after\":").expect("after")..];
        let id = field(after, "id").expect("id").parse().expect("numeric id");
        *seen.entry(id).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "rows streamed twice: {dups:?}");
    let in_table: Vec<u32> =
        primary.sql("SELECT id FROM d.t ORDER BY id").lines().map(|l| l.parse().expect("id")).collect();
    let streamed: Vec<u32> = seen.keys().copied().collect();
    assert_eq!(streamed.len(), in_table.len(), "streamed rows vs table rows");
    assert_eq!(streamed, in_table, "the stream must hold exactly the committed rows");
    let log = s.log();
    assert!(log.contains("reconnecting"), "the log should say it reconnected:\n{log}");
    if start[0] == "--from-gtid" {
        assert!(log.contains("from=after GTID 0-1-"), "the reconnect should resume by GTID:\n{log}");
    }
}

async fn login(
    server: &Server,
    user: &str,
    password: &str,
    tls: TlsOptions,
) -> Result<Connection, ClientError> {
    let mut options = ConnectOptions::new("127.0.0.1", server.port, user);
    options.password = Password::new(password);
    options.tls = tls;
    Connection::connect(&options).await
}

fn tls(mode: SslMode, ca: Option<PathBuf>) -> TlsOptions {
    TlsOptions { mode, ca, ..TlsOptions::default() }
}

#[test]
fn logins_native_ed25519_tls_and_refusals() {
    if !mariadb_here() {
        return;
    }
    let pki = repo().join("target/tmp/pki-stream-test");
    let made = std::process::Command::new("bash")
        .args(["fixtures/lib/tls.sh", "tls_make_pki"])
        .arg(&pki)
        .current_dir(repo())
        .status()
        .expect("tls.sh");
    assert!(made.success(), "tls_make_pki failed");
    let p = |f: &str| pki.join(f).display().to_string();
    let primary = Server::start(
        "auth",
        1,
        21300,
        &[
            &format!("--ssl-ca={}", p("ca.pem")),
            &format!("--ssl-cert={}", p("server-cert.pem")),
            &format!("--ssl-key={}", p("server-key.pem")),
            "--plugin-load-add=auth_ed25519",
        ],
    );
    primary.create_repl_user("native", &format!("IDENTIFIED BY '{PASSWORD}'"));
    primary.create_repl_user("ed", "IDENTIFIED VIA ed25519 USING PASSWORD('ed-pw-91')");
    primary.create_repl_user("tlsonly", &format!("IDENTIFIED BY '{PASSWORD}' REQUIRE SSL"));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut c =
            login(&primary, "native", PASSWORD, tls(SslMode::Disabled, None)).await.expect("native login");
        assert!(c.server().is_mariadb());
        assert_eq!(c.query_value("SELECT CURRENT_USER()").await.unwrap().as_deref(), Some("native@%"));
        assert!(!c.is_tls());

        let mut c =
            login(&primary, "ed", "ed-pw-91", tls(SslMode::Disabled, None)).await.expect("ed25519 login");
        assert_eq!(c.query_value("SELECT CURRENT_USER()").await.unwrap().as_deref(), Some("ed@%"));
        let plugin = c.query_value("SELECT plugin FROM mysql.user WHERE user = 'ed'").await;
        // The user may not read mysql.user; the login itself is the check.
        drop(plugin);

        let err = login(&primary, "ed", "wrong", tls(SslMode::Disabled, None)).await.unwrap_err();
        assert_eq!(err.server_error().map(|e| e.code), Some(1045), "{err}");
        let err = login(&primary, "native", "wrong", tls(SslMode::Disabled, None)).await.unwrap_err();
        assert_eq!(err.server_error().map(|e| e.code), Some(1045), "{err}");

        // TLS with the CA the test made: verified, host name included.
        let mut c =
            login(&primary, "tlsonly", PASSWORD, tls(SslMode::VerifyIdentity, Some(pki.join("ca.pem"))))
                .await
                .expect("TLS login");
        assert!(c.is_tls());
        let cipher = c.query_rows("SHOW SESSION STATUS LIKE 'Ssl_cipher'").await.unwrap();
        let cipher = cipher.rows[0][1].clone().unwrap_or_default();
        assert!(!cipher.is_empty(), "the server should report a TLS cipher");

        // The wrong CA is refused before any password is sent.
        let err =
            login(&primary, "tlsonly", PASSWORD, tls(SslMode::VerifyCa, Some(pki.join("other-ca.pem"))))
                .await
                .unwrap_err();
        assert!(matches!(err, ClientError::Tls { .. }), "{err}");
        assert!(err.to_string().contains("127.0.0.1"), "{err}");

        // The default, PREFERRED, checks the certificate too: this server's
        // CA is in no system bundle, so the connection is refused rather
        // than silently left unauthenticated...
        let err = login(&primary, "native", PASSWORD, tls(SslMode::Preferred, None)).await.unwrap_err();
        assert!(matches!(err, ClientError::Tls { .. }), "{err}");
        // ...unless the user says "encrypt without checking".
        let c = login(&primary, "native", PASSWORD, tls(SslMode::Required, None)).await.expect("REQUIRED");
        assert!(c.is_tls());

        // REQUIRE SSL user without TLS: the server says no.
        let err = login(&primary, "tlsonly", PASSWORD, tls(SslMode::Disabled, None)).await.unwrap_err();
        assert_eq!(err.server_error().map(|e| e.code), Some(1045), "{err}");

        // caching_sha2 / sha256 users do not exist on MariaDB: the server
        // offers native password; an unknown plugin name is an error that
        // names it (checked in the auth unit tests).
    });

    // Through the binary: a wrong password is shown as the server said it,
    // without the password, and is not retried.
    let out = common::gapless()
        .args(["stream", "--source", &primary.url("native"), "--ssl-mode", "disabled"])
        .env("GAPLESS_PASSWORD", "not-the-password-42")
        .output()
        .expect("gapless stream");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ERROR 1045"), "{stderr}");
    assert!(!stderr.contains("not-the-password-42"), "the password leaked: {stderr}");
}

#[test]
fn purged_position_and_server_id_conflicts() {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start("ids", 1, 21400, &["--binlog-checksum=CRC32"]);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    primary.sql(
        "CREATE DATABASE d; FLUSH BINARY LOGS; CREATE TABLE d.t (id INT PRIMARY KEY); FLUSH BINARY LOGS;",
    );
    primary.sql("PURGE BINARY LOGS TO 'mariadb-bin.000003'");

    // A purged position: the server's 1236, not retried.
    let mut s = Streamer::spawn(
        &["--source", &primary.url("repl"), "--from", "mariadb-bin.000001:4"],
        PASSWORD,
        "purged",
    );
    assert_eq!(s.wait_exit(Duration::from_secs(30)), 1, "log:\n{}", s.log());
    assert!(s.log().contains("1236"), "{}", s.log());

    // A real replica with server id 2, starting where the primary is now
    // (its first binlogs are purged).
    let replica = Server::start("ids-r", 2, 21450, &[]);
    let pos = primary.value("SELECT @@gtid_binlog_pos");
    replica.sql(&format!(
        "SET GLOBAL gtid_slave_pos = '{pos}'; \
         CHANGE MASTER TO master_host='127.0.0.1', master_port={}, master_user='repl', \
         master_password='{PASSWORD}', master_use_gtid=slave_pos; START SLAVE;",
        primary.port
    ));
    wait_until(Duration::from_secs(30), "the replica to register", || {
        primary.sql("SHOW SLAVE HOSTS").lines().any(|l| l.starts_with("2\t"))
    });

    // gapless refuses an id a real replica uses, and leaves it alone.
    let mut s = Streamer::spawn(&["--source", &primary.url("repl"), "--server-id", "2"], PASSWORD, "dup");
    assert_eq!(s.wait_exit(Duration::from_secs(30)), 1, "log:\n{}", s.log());
    assert!(s.log().contains("server id 2 is already used by the replica"), "{}", s.log());
    let running = replica.value(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVE_RUNNING'",
    );
    assert_eq!(running, "ON", "the real replica must keep running");

    // A replica that takes gapless's id later drops gapless: it says so
    // and stops instead of fighting over the id.
    let mut s = Streamer::spawn(
        &["--source", &primary.url("repl"), "--server-id", "77", "--max-backoff", "1"],
        PASSWORD,
        "replaced",
    );
    wait_until(Duration::from_secs(30), "gapless to register", || {
        primary.sql("SHOW SLAVE HOSTS").lines().any(|l| l.starts_with("77\t"))
    });
    replica.sql("STOP SLAVE; SET GLOBAL server_id = 77; START SLAVE;");
    assert_eq!(s.wait_exit(Duration::from_secs(30)), 1, "log:\n{}", s.log());
    assert!(s.log().contains("dropped this stream for another replica with server id 77"), "{}", s.log());
}

#[test]
fn semi_sync_acks_every_transaction() {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start(
        "semi",
        1,
        21500,
        &[
            "--rpl-semi-sync-master-enabled=ON",
            "--rpl-semi-sync-master-timeout=60000",
            "--binlog-checksum=CRC32",
        ],
    );
    // Not binlogged: no commit waits for an ACK before gapless is there.
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    let mut s = Streamer::spawn(
        &["--source", &primary.url("repl"), "--semi-sync", "--format", "jsonl"],
        PASSWORD,
        "semi",
    );
    let count = |name: &str| -> u64 {
        primary
            .value(&format!(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '{name}'"
            ))
            .parse()
            .unwrap_or(u64::MAX)
    };
    wait_until(Duration::from_secs(30), "a semi-sync client", || count("RPL_SEMI_SYNC_MASTER_CLIENTS") == 1);
    let (yes_before, no_before) = (count("RPL_SEMI_SYNC_MASTER_YES_TX"), count("RPL_SEMI_SYNC_MASTER_NO_TX"));
    primary.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY);");
    primary.sql(&(1..=20).map(|i| format!("INSERT INTO d.t VALUES ({i});\n")).collect::<String>());
    // A missing ACK would make a commit wait the 60 s timeout and then
    // count as "no".
    assert!(count("RPL_SEMI_SYNC_MASTER_YES_TX") - yes_before >= 20, "every commit acknowledged by gapless");
    assert_eq!(count("RPL_SEMI_SYNC_MASTER_NO_TX"), no_before, "no commit fell back to async");
    let on = primary.value("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'");
    assert!(on.ends_with("ON"), "{on}");
    s.wait_for(Duration::from_secs(10), "20 rows", |out| row_lines(out).len() >= 20);
    assert_eq!(s.stop(), 0);
}

#[test]
fn a_silent_primary_is_a_dead_connection() {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start("silent", 1, 21600, &["--binlog-checksum=CRC32"]);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    primary.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY);");
    let mut s = Streamer::spawn(
        &["--source", &primary.url("repl"), "--format", "jsonl", "--heartbeat", "1", "--max-backoff", "1"],
        PASSWORD,
        "silent",
    );
    wait_until(Duration::from_secs(30), "gapless to stream", || s.log().contains("streaming"));
    primary.sql("INSERT INTO d.t VALUES (1)");
    s.wait_for(Duration::from_secs(10), "the first row", |out| row_lines(out).len() == 1);

    // A frozen primary sends nothing, not even heartbeats: after three
    // periods (and slack) gapless calls the connection dead.
    primary.signal("STOP");
    wait_until(Duration::from_secs(30), "the dead connection to be noticed", || {
        s.log().contains("nothing received for")
    });
    primary.signal("CONT");
    primary.sql("INSERT INTO d.t VALUES (2)");
    s.wait_for(Duration::from_secs(30), "the row after the freeze", |out| row_lines(out).len() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.stop(), 0);
    assert_eq!(row_lines(&s.output()).len(), 2, "each row once:\n{}", s.output());
}
