//! Throw-away MariaDB servers for the tests that talk to a live primary,
//! started through fixtures/lib/mariadb.sh (separate processes, own data
//! dirs, ports on 127.0.0.1) and destroyed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where this test process keeps its servers (short: socket paths are
/// limited to 107 bytes).
fn sandbox() -> PathBuf {
    repo().join("target").join("tmp").join(format!("s{}", std::process::id()))
}

fn lib(script: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!(". fixtures/lib/mariadb.sh && {script}"))
        .current_dir(repo())
        .env("GAPLESS_SANDBOX", sandbox())
        .output()
        .expect("bash")
}

fn check(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// One running server.
pub struct Server {
    pub name: String,
    pub port: u16,
    server_id: u32,
    options: Vec<String>,
}

impl Server {
    /// Starts `name` with `options` on the first free port from `port_base`
    /// (give each test its own base: tests run in parallel; keep it below
    /// 32768, where the kernel hands out ephemeral ports that could take a
    /// port between the check and the server's bind).
    pub fn start(name: &str, server_id: u32, port_base: u16, options: &[&str]) -> Server {
        let opts: Vec<String> = options.iter().map(|o| (*o).to_string()).collect();
        let quoted = opts.iter().map(|o| format!("'{o}'")).collect::<Vec<_>>().join(" ");
        let out = lib(&format!(
            "p=$(mdb_free_port {port_base}) && mdb_start {name} $p {server_id} {quoted} >&2 && echo $p"
        ));
        let port = check(out, &format!("starting {name}")).trim().parse().expect("port");
        Server { name: name.to_string(), port, server_id, options: opts }
    }

    /// Runs SQL as root; returns the output (tab-separated, no headers).
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(". fixtures/lib/mariadb.sh && mdb_sql {} -N -B", self.name))
            .current_dir(repo())
            .env("GAPLESS_SANDBOX", sandbox())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().expect("stdin").write_all(sql.as_bytes())?;
                child.wait_with_output()
            })
            .expect("mariadb client");
        check(out, &format!("SQL on {}: {sql}", self.name))
    }

    /// A `mariadb` client session on this server (root), with `args`:
    /// set its stdin/stdout and spawn it, for clients that run alongside.
    pub fn client(&self, args: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!(". fixtures/lib/mariadb.sh && mdb_sql {} {args}", self.name))
            .current_dir(repo())
            .env("GAPLESS_SANDBOX", sandbox());
        cmd
    }

    /// One value.
    pub fn value(&self, sql: &str) -> String {
        self.sql(sql).trim().to_string()
    }

    /// `kill -9` the server.
    pub fn kill9(&self) {
        check(lib(&format!("mdb_kill {}", self.name)), "kill -9");
    }

    /// Sends a signal (`STOP`, `CONT`, …) to the server process.
    pub fn signal(&self, signal: &str) {
        check(lib(&format!("kill -{signal} \"$(mdb_pid {})\"", self.name)), "signal");
    }

    /// Starts it again, same port and options.
    pub fn restart(&self) {
        let quoted = self.options.iter().map(|o| format!("'{o}'")).collect::<Vec<_>>().join(" ");
        check(
            lib(&format!("mdb_start {} {} {} {quoted} >&2", self.name, self.port, self.server_id)),
            "restart",
        );
    }

    /// The binlog files, oldest first.
    pub fn binlogs(&self) -> Vec<PathBuf> {
        check(lib(&format!("mdb_binlogs {}", self.name)), "mdb_binlogs").lines().map(PathBuf::from).collect()
    }

    /// Every table of `dbs` dumped row by row into `dir` (one file per
    /// table, fixtures/lib/mariadb.sh `mdb_dump_tables`), as (file, text).
    pub fn dump_tables(&self, dir: &Path, dbs: &[&str]) -> Vec<(String, String)> {
        let _ = std::fs::remove_dir_all(dir);
        check(
            lib(&format!("mdb_dump_tables {} '{}' {}", self.name, dir.display(), dbs.join(" "))),
            "mdb_dump_tables",
        );
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("dump dir")
            .map(|e| {
                let p = e.expect("entry").path();
                (
                    p.file_name().expect("name").to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).expect("dump"),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// `mysql://USER@127.0.0.1:PORT`.
    pub fn url(&self, user: &str) -> String {
        format!("mysql://{user}@127.0.0.1:{}", self.port)
    }

    /// Creates a replication user with what gapless needs.
    pub fn create_repl_user(&self, user: &str, auth: &str) {
        self.sql(&format!(
            "SET sql_log_bin = 0; CREATE USER '{user}'@'%' {auth}; \
             GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICATION MASTER ADMIN, SLAVE MONITOR ON *.* TO '{user}'@'%';"
        ));
    }
}

/// Starts several servers side by side (their data directories are made
/// at the same time): each `(name, server id, port base, options)`; the
/// servers in the same order.
pub fn start_all(specs: &[(&str, u32, u16, &[&str])]) -> Vec<Server> {
    std::thread::scope(|s| {
        let handles: Vec<_> = specs
            .iter()
            .map(|&(name, id, port, options)| s.spawn(move || Server::start(name, id, port, options)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("server start")).collect()
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = lib(&format!("mdb_destroy {}", self.name));
    }
}

/// A `gapless stream` running in the background, its stdout and stderr in
/// files.
pub struct Streamer {
    child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Streamer {
    pub fn spawn(args: &[&str], password: &str, tag: &str) -> Streamer {
        Streamer::spawn_with_log(args, password, tag, "info")
    }

    /// [`spawn`](Self::spawn) with `$GAPLESS_LOG` set to `log`.
    pub fn spawn_with_log(args: &[&str], password: &str, tag: &str, log: &str) -> Streamer {
        let dir = sandbox();
        std::fs::create_dir_all(&dir).expect("sandbox");
        let stdout = dir.join(format!("{tag}.out"));
        let stderr = dir.join(format!("{tag}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_gapless"))
            .arg("stream")
            .args(args)
            .env("GAPLESS_PASSWORD", password)
            .env("GAPLESS_LOG", log)
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("gapless stream");
        Streamer { child, stdout, stderr }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until `done(stdout)` holds; panics with the log after `limit`.
    pub fn wait_for(&mut self, limit: Duration, what: &str, done: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            if done(&self.output()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gapless stream exited ({status}) while waiting for {what}; log:\n{}", self.log());
            }
            assert!(start.elapsed() < limit, "no {what} after {limit:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the process to exit on its own; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < limit,
                "gapless stream still running after {limit:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Still running (not exited on its own).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits; returns the exit code.
    pub fn stop(&mut self) -> i32 {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.wait_exit(Duration::from_secs(20))
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
