//! What the sidecar tests share: scratch directories, secret files, free
//! ports, plain HTTP to the API, waiting for the ring, a sidecar with its
//! API and replay login, and a workload of row changes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::server::{Server, Streamer};
use super::{repo, wait_until};

/// A fresh directory under target/tmp for this test process.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = repo().join("target/tmp").join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Writes a file only its owner can read (password and token files).
pub fn private_file(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// One HTTP/1.1 request to the API on 127.0.0.1; the status and the body.
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
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

/// Waits until the ring holds the transaction with this GTID.
pub fn wait_ring_holds(ring: &Path, gtid: &str) {
    let needle = format!("\"gtid\":\"{gtid}\"");
    wait_until(Duration::from_secs(60), &format!("the ring to hold {gtid}"), || {
        super::gapless()
            .args(["decode", "--format", "jsonl", "--ring", &ring.display().to_string()])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&needle))
    });
}

/// A user on `server` that may write every table and set GTIDs: what
/// replay logs in with. Created outside the binlog.
pub fn create_apply_user(server: &Server, user: &str, password: &str) {
    server.sql(&format!(
        "SET sql_log_bin = 0; CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; GRANT ALL ON *.* TO '{user}'@'%';"
    ));
}

/// The tables of [`row_changes`].
pub const TABLES: &str = "CREATE DATABASE d; \
    CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB; \
    CREATE TABLE d.u (k VARCHAR(16) PRIMARY KEY, note TEXT) ENGINE=InnoDB;";

/// Inserts of ids `from..=to` into d.t, with an UPDATE, a DELETE and an
/// insert into d.u every ten, then one transaction of several statements.
pub fn row_changes(from: u32, to: u32) -> String {
    let mut sql = String::new();
    for i in from..=to {
        sql.push_str(&format!("INSERT INTO d.t VALUES ({i}, 'row {i}');\n"));
        if i % 10 == 0 {
            sql.push_str(&format!("UPDATE d.t SET v = CONCAT(v, ' updated') WHERE id = {};\n", i - 5));
            sql.push_str(&format!("DELETE FROM d.t WHERE id = {};\n", i - 7));
            sql.push_str(&format!("INSERT INTO d.u VALUES ('k{i}', 'note {i} ''quoted''');\n"));
        }
    }
    sql.push_str(
        "BEGIN; INSERT INTO d.u VALUES ('multi', NULL); UPDATE d.t SET v = 'x' WHERE id < 3; COMMIT;\n",
    );
    sql
}

/// The rows of [`TABLES`], in a fixed order.
pub fn contents(server: &Server) -> String {
    server.sql("SELECT id, v FROM d.t ORDER BY id; SELECT k, note FROM d.u ORDER BY k;")
}

/// A sidecar on `primary` from its first GTID, with its API on a free port
/// behind `token`, and replay logging in to targets as `apply_user`.
pub struct ApiSidecar {
    /// The process.
    pub streamer: Streamer,
    /// Its ring.
    pub ring: PathBuf,
    /// The API's port.
    pub port: u16,
}

impl ApiSidecar {
    /// Starts it with files under `dir`; returns once the API listens.
    pub fn start(
        primary: &Server,
        dir: &Path,
        repl_password: &str,
        token: &str,
        apply: (&str, &str),
        tag: &str,
    ) -> ApiSidecar {
        Self::start_with(primary, dir, repl_password, token, apply, tag, &[])
    }

    /// [`ApiSidecar::start`] with `extra` flags for `gapless stream`.
    pub fn start_with(
        primary: &Server,
        dir: &Path,
        repl_password: &str,
        token: &str,
        (apply_user, apply_password): (&str, &str),
        tag: &str,
        extra: &[&str],
    ) -> ApiSidecar {
        let ring = dir.join("ring");
        let (token_file, apply_file) = (dir.join("token"), dir.join("apply-password"));
        private_file(&token_file, &format!("{token}\n"));
        private_file(&apply_file, &format!("{apply_password}\n"));
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let (source, ring_dir) = (primary.url("repl"), ring.display().to_string());
        let (token_path, apply_path) = (token_file.display().to_string(), apply_file.display().to_string());
        let mut args = vec![
            "--source",
            &source,
            "--from-gtid",
            "",
            "--ring",
            &ring_dir,
            "--ssl-mode",
            "DISABLED",
            "--listen",
            &listen,
            "--api-token-file",
            &token_path,
            "--apply-user",
            apply_user,
            "--apply-password-file",
            &apply_path,
        ];
        args.extend_from_slice(extra);
        let streamer = Streamer::spawn(&args, repl_password, tag);
        wait_until(Duration::from_secs(30), "the API to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        ApiSidecar { streamer, ring, port }
    }
}

/// Runs `gapless hook STEP ARGS` as orchestrator does: a process with its
/// environment `env` (and no other ORC_* variable from the test's own).
/// The exit code and the output (stdout, then stderr), also echoed.
pub fn run_hook<S: AsRef<std::ffi::OsStr>>(step: &str, args: &[S], env: &[(&str, String)]) -> (i32, String) {
    let mut cmd = super::gapless();
    cmd.arg("hook").arg(step).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("ORC_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = cmd.output().expect("gapless hook");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("$ gapless hook {step}\n{text}");
    (out.status.code().unwrap_or(-1), text)
}
