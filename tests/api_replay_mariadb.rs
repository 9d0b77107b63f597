//! Replay through the sidecar's API on MariaDB: `gapless stream --ring
//! --listen` on a primary, `POST /v1/replay` onto a fresh server, followed
//! with `GET /v1/replay/N` until it succeeds; without the token nothing is
//! started.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::server::{Server, Streamer};
use common::{mariadb_here, repo, wait_until};
use serde_json::Value;

const PASSWORD: &str = "api-replay-pw-7c3e";
const APPLY_PASSWORD: &str = "api-apply-pw-91b4";
const TOKEN: &str = "api-replay-token-0123456789abcdef";

fn scratch(tag: &str) -> PathBuf {
    let dir = repo().join("target/tmp").join(format!("apirp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A file only its owner can read.
fn private_file(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// One request; returns the status and the body.
fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    if let Some(token) = token {
        raw.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        raw.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body.unwrap_or(""));
    conn.write_all(raw.as_bytes()).expect("send");
    let mut out = Vec::new();
    conn.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head: {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    (status, body.to_string())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Waits until the ring holds the transaction with this GTID.
fn wait_ring_holds(ring: &Path, gtid: &str) {
    let needle = format!("\"gtid\":\"{gtid}\"");
    wait_until(Duration::from_secs(60), &format!("the ring to hold {gtid}"), || {
        common::gapless()
            .args(["decode", "--format", "jsonl", "--ring", &ring.display().to_string()])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&needle))
    });
}

/// Polls the job until it is no longer running; returns it.
fn wait_job(port: u16, url: &str) -> Value {
    let mut job = Value::Null;
    wait_until(Duration::from_secs(60), &format!("{url} to finish"), || {
        let (status, body) = http(port, "GET", url, Some(TOKEN), None);
        assert_eq!(status, 200, "{body}");
        job = json(&body);
        job["state"] != "running"
    });
    job
}

fn contents(server: &Server) -> String {
    server.sql("SELECT id, v FROM d.t ORDER BY id; SELECT k, note FROM d.u ORDER BY k;")
}

#[test]
fn a_replay_started_through_the_api_gives_the_target_every_transaction() {
    if !mariadb_here() {
        return;
    }
    let opts = ["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL"];
    let primary = Server::start("apirpprimary", 1, 25000, &opts);
    let target = Server::start("apirptarget", 2, 25200, &opts);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    target.sql(&format!(
        "SET sql_log_bin = 0; CREATE USER 'applier'@'%' IDENTIFIED BY '{APPLY_PASSWORD}'; \
         GRANT ALL ON *.* TO 'applier'@'%';"
    ));

    let dir = scratch("main");
    let ring = dir.join("ring");
    let token_file = dir.join("token");
    let apply_file = dir.join("apply-password");
    private_file(&token_file, &format!("{TOKEN}\n"));
    private_file(&apply_file, &format!("{APPLY_PASSWORD}\n"));
    let api_port = free_port();
    let listen = format!("127.0.0.1:{api_port}");
    let mut sidecar = Streamer::spawn(
        &[
            "--source",
            &primary.url("repl"),
            "--from-gtid",
            "",
            "--ring",
            &ring.display().to_string(),
            "--ssl-mode",
            "DISABLED",
            "--listen",
            &listen,
            "--api-token-file",
            &token_file.display().to_string(),
            "--apply-user",
            "applier",
            "--apply-password-file",
            &apply_file.display().to_string(),
        ],
        PASSWORD,
        "apirpsidecar",
    );

    primary.sql(
        "CREATE DATABASE d; \
         CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB; \
         CREATE TABLE d.u (k VARCHAR(16) PRIMARY KEY, note TEXT) ENGINE=InnoDB;",
    );
    let mut rows = String::new();
    for i in 1..=40 {
        rows.push_str(&format!("INSERT INTO d.t VALUES ({i}, 'row {i}');\n"));
        if i % 10 == 0 {
            rows.push_str(&format!("UPDATE d.t SET v = CONCAT(v, ' updated') WHERE id = {};\n", i - 5));
            rows.push_str(&format!("DELETE FROM d.t WHERE id = {};\n", i - 7));
            rows.push_str(&format!("INSERT INTO d.u VALUES ('k{i}', 'note {i} ''quoted''');\n"));
        }
    }
    rows.push_str(
        "BEGIN; INSERT INTO d.u VALUES ('multi', NULL); UPDATE d.t SET v = 'x' WHERE id < 3; COMMIT;\n",
    );
    primary.sql(&rows);
    let final_pos = primary.value("SELECT @@gtid_binlog_pos");
    let expected = contents(&primary);
    wait_ring_holds(&ring, &final_pos);
    wait_until(Duration::from_secs(30), "the API to listen", || {
        TcpStream::connect(("127.0.0.1", api_port)).is_ok()
    });

    // The target is fresh: start after the empty position (--auto would
    // find neither GTIDs nor replication coordinates there).
    let body = r#"{"target": "127.0.0.1:PORT", "after_gtid": ""}"#.replace("PORT", &target.port.to_string());

    // Without the token: 401, nothing started, the target unchanged.
    let (status, text) = http(api_port, "POST", "/v1/replay", None, Some(&body));
    assert_eq!(status, 401, "{text}");
    let (status, text) =
        http(api_port, "POST", "/v1/replay", Some("wrong-token-0123456789abcdef"), Some(&body));
    assert_eq!(status, 401, "{text}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(target.value("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'd'"), "0");
    assert_eq!(target.value("SELECT @@gtid_binlog_pos"), "");
    let (status, text) = http(api_port, "GET", "/v1/replay", Some(TOKEN), None);
    assert_eq!((status, json(&text)), (200, serde_json::json!([])), "{text}");

    // With it: started, followed until it succeeds.
    let (status, text) = http(api_port, "POST", "/v1/replay", Some(TOKEN), Some(&body));
    assert_eq!(status, 202, "{text}\nlog:\n{}", sidecar.log());
    let started = json(&text);
    let url = started["url"].as_str().expect("url").to_string();
    assert_eq!(url, format!("/v1/replay/{}", started["id"]));
    let job = wait_job(api_port, &url);
    assert_eq!(job["state"], "succeeded", "{job}\nlog:\n{}", sidecar.log());
    assert_eq!(job["target"], format!("127.0.0.1:{}", target.port));
    assert_eq!(job["mode"], "sql");
    assert_eq!(job["error"], Value::Null);
    assert!(job["finished"].is_string(), "{job}");
    let applied = job["applied"].as_u64().expect("applied");
    assert!(applied >= 50, "{job}");
    assert_eq!(job["report"]["applied"].as_array().map(Vec::len), Some(applied as usize), "{job}");
    assert_eq!(contents(&target), expected, "the target has every row");
    assert_eq!(target.value("SELECT @@gtid_binlog_pos"), final_pos, "with the original GTIDs");

    // Again, now --auto (the target has GTIDs): nothing more to apply.
    let body = r#"{"target": "127.0.0.1:PORT"}"#.replace("PORT", &target.port.to_string());
    let (status, text) = http(api_port, "POST", "/v1/replay", Some(TOKEN), Some(&body));
    assert_eq!(status, 202, "{text}");
    let again = wait_job(api_port, json(&text)["url"].as_str().expect("url"));
    assert_eq!(again["state"], "succeeded", "{again}");
    assert_eq!(again["applied"], 0, "{again}");
    assert!(again["report"]["skipped_executed"].as_u64().unwrap() >= applied, "{again}");
    assert_eq!(contents(&target), expected);
    let (status, text) = http(api_port, "GET", "/v1/replay", Some(TOKEN), None);
    assert_eq!(status, 200);
    assert_eq!(json(&text).as_array().map(Vec::len), Some(2), "{text}");

    let log = sidecar.log();
    assert!(log.contains("replay started") && log.contains("replay succeeded"), "{log}");
    assert_eq!(sidecar.stop(), 0, "{}", sidecar.log());
    let _ = std::fs::remove_dir_all(&dir);
}
