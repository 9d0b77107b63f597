//! The sidecar's dead-primary detection against real MariaDB servers: the
//! state /status shows over time, /metrics, and what `--on-primary-state`
//! is run with.
//!
//! - kill -9 of a primary with a (discovered) replica: dead, confirmed by
//!   the replica's IO thread reconnecting, not before --dead-after;
//! - a clean shutdown, no replica: dead;
//! - SIGSTOP with a replica whose heartbeat period is 1 s: unreachable
//!   first (the replica's IO thread still says Yes), dead once its
//!   heartbeats stop counting up; alive again after SIGCONT;
//! - the sidecar alone cut off (nftables on 127.0.0.2 only) while the
//!   replica replicates: unreachable, never dead; alive again once the cut
//!   is lifted.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mariadb_here;
use common::server::{Server, Streamer};
use common::sidecar::{free_port, http, scratch};
use serde_json::Value;

const PASSWORD: &str = "detect-repl-pw-41c7";
/// Short, so that the tests are quick: dead after 3 s of failed probes.
const DEAD_AFTER: Duration = Duration::from_secs(3);
/// Generous bounds for a state to show (2 shared cores, servers starting
/// in parallel): only "it happened" is checked against them.
const LIMIT: Duration = Duration::from_secs(40);

/// `gapless stream --listen` on a primary, with detection flags, writing
/// each change of state to a file.
struct Sidecar {
    streamer: Streamer,
    port: u16,
    changes: PathBuf,
}

impl Sidecar {
    fn start(host: &str, primary: &Server, dir: &Path, extra: &[&str], tag: &str) -> Sidecar {
        let port = free_port();
        let changes = dir.join("changes");
        // One line per change: number, previous>state, primary, since,
        // whether the password leaked into the command's environment, reason.
        let command = format!(
            "printf '%s %s>%s %s %s %s %s\\n' \"$GAPLESS_STATE_CHANGE\" \"$GAPLESS_PREVIOUS_STATE\" \
             \"$GAPLESS_PRIMARY_STATE\" \"$GAPLESS_PRIMARY\" \"$GAPLESS_SINCE\" \
             \"password=${{GAPLESS_PASSWORD:-none}}\" \"$GAPLESS_REASON\" >> '{}'",
            changes.display()
        );
        let source = format!("mysql://repl@{host}:{}", primary.port);
        let listen = format!("127.0.0.1:{port}");
        let dead_after = DEAD_AFTER.as_secs().to_string();
        let ring = dir.join("ring").display().to_string();
        let mut args = vec![
            "--source",
            &source,
            "--ring",
            &ring,
            "--ssl-mode",
            "DISABLED",
            "--listen",
            &listen,
            "--heartbeat",
            "1",
            "--dead-after",
            &dead_after,
            "--on-primary-state",
            &command,
        ];
        args.extend_from_slice(extra);
        let streamer = Streamer::spawn(&args, PASSWORD, tag);
        let mut sidecar = Sidecar { streamer, port, changes };
        sidecar.wait(LIMIT, "the API to listen", |_| true);
        sidecar
    }

    /// The /status document, `None` while the API does not answer.
    fn status(&self) -> Option<Value> {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let (code, body) = http(self.port, "GET", "/status", None, None);
        assert_eq!(code, 200, "{body}");
        Some(serde_json::from_str(&body).expect("JSON"))
    }

    fn metrics(&self) -> String {
        let (code, body) = http(self.port, "GET", "/metrics", None, None);
        assert_eq!(code, 200, "{body}");
        body
    }

    /// Polls /status until `done` holds; returns that document. Panics
    /// with the last document and the log after `limit`, or if the
    /// sidecar exits.
    fn wait(&mut self, limit: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        let mut last = None;
        loop {
            if let Some(doc) = self.status() {
                if done(&doc) {
                    return doc;
                }
                last = Some(doc);
            }
            assert!(
                self.streamer.is_running(),
                "the sidecar exited while waiting for {what}:\n{}",
                self.streamer.log()
            );
            assert!(
                start.elapsed() < limit,
                "no {what} after {limit:?}; last /status: {last:#?}\nlog:\n{}",
                self.streamer.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the primary's state to be `state`.
    fn wait_state(&mut self, state: &str) -> Value {
        self.wait(LIMIT, &format!("primary state {state:?}"), |doc| doc["primary"]["state"] == state)
    }

    /// The changes the command saw, in order: (previous, state, the rest).
    fn changes(&self) -> Vec<(String, String, String)> {
        let text = std::fs::read_to_string(&self.changes).unwrap_or_default();
        let mut lines: Vec<(u64, String, String, String)> = text
            .lines()
            .map(|line| {
                let (n, rest) = line.split_once(' ').expect("number");
                let (transition, rest) = rest.split_once(' ').expect("transition");
                let (previous, state) = transition.split_once('>').expect(">");
                (n.parse().expect("number"), previous.into(), state.into(), rest.into())
            })
            .collect();
        // Commands run concurrently: their numbers give the order.
        lines.sort();
        lines.into_iter().map(|(_, p, s, rest)| (p, s, rest)).collect()
    }

    /// Waits until the command has recorded `n` changes.
    fn wait_changes(&mut self, n: usize) -> Vec<(String, String, String)> {
        let start = Instant::now();
        loop {
            let changes = self.changes();
            if changes.len() >= n {
                return changes;
            }
            assert!(start.elapsed() < LIMIT, "only {changes:?} recorded; log:\n{}", self.streamer.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The value of the `gapless_primary_state` sample for `state`.
fn state_metric(page: &str, state: &str) -> Option<f64> {
    let label = format!("state=\"{state}\"");
    page.lines()
        .find(|l| l.starts_with("gapless_primary_state{") && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Checks what the command saw: the transitions in order, the primary, an
/// RFC 3339 time, and no password.
fn assert_transitions(changes: &[(String, String, String)], want: &[(&str, &str)], primary: &str) {
    let got: Vec<(&str, &str)> = changes.iter().map(|(p, s, _)| (p.as_str(), s.as_str())).collect();
    assert_eq!(got, want, "{changes:#?}");
    for (_, _, rest) in changes {
        let mut words = rest.split(' ');
        assert_eq!(words.next(), Some(primary), "{rest}");
        let since = words.next().expect("since");
        assert!(since.len() == 20 && since.ends_with('Z') && since.as_bytes()[10] == b'T', "{rest}");
        assert_eq!(words.next(), Some("password=none"), "{rest}");
        assert!(words.next().is_some_and(|w| !w.is_empty()), "a reason: {rest}");
    }
}

/// A replica of `primary` (through 127.0.0.1) with this heartbeat period.
fn replicate(replica: &Server, primary: &Server, heartbeat: Option<u32>) {
    replica.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    let heartbeat = heartbeat.map(|h| format!(", MASTER_HEARTBEAT_PERIOD = {h}")).unwrap_or_default();
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'repl', \
         MASTER_PASSWORD = '{PASSWORD}', MASTER_USE_GTID = slave_pos{heartbeat}; START SLAVE;",
        primary.port
    ));
    let start = Instant::now();
    while io_running(replica) != "Yes" {
        assert!(start.elapsed() < LIMIT, "the replica does not replicate");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The replica's `Slave_IO_Running`.
fn io_running(replica: &Server) -> String {
    let out = replica.client("-e 'SHOW SLAVE STATUS\\G'").output().expect("mariadb client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix("Slave_IO_Running:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// Finds the replica at `addr` in /status.
fn listed(doc: &Value, addr: &str) -> Option<Value> {
    doc["primary"]["replicas"].as_array()?.iter().find(|r| r["addr"] == addr).cloned()
}

#[test]
fn kill_9_with_a_replica_is_dead() {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start("dkillp", 1, 27000, &[]);
    let replica = Server::start("dkillr", 2, 27100, &[]);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    // The default heartbeat period: a killed primary is seen at once anyway.
    replicate(&replica, &primary, None);
    let dir = scratch("detect-kill");
    let mut sidecar = Sidecar::start("127.0.0.1", &primary, &dir, &[], "dkill");
    let addr = format!("127.0.0.1:{}", primary.port);
    let replica_addr = format!("127.0.0.1:{}", replica.port);

    // Alive at once (a probe answers, or the stream is up), then streaming.
    sidecar.wait_state("alive");
    sidecar.wait(LIMIT, "the stream", |d| {
        d["primary"]["state"] == "alive" && d["primary"]["reason"] == "streaming"
    });
    // Found through SHOW SLAVE HOSTS.
    sidecar.wait(LIMIT, "the replica to be discovered", |d| listed(d, &replica_addr).is_some());
    assert_eq!(state_metric(&sidecar.metrics(), "alive"), Some(1.0));

    primary.kill9();
    let killed = Instant::now();
    let doc = sidecar.wait_state("dead");
    assert!(killed.elapsed() >= DEAD_AFTER, "dead after {:?}, before --dead-after", killed.elapsed());
    let reason = doc["primary"]["reason"].as_str().expect("reason");
    assert!(reason.contains("TCP connect failed"), "{reason}");
    assert!(
        reason.contains(&format!("no replica hears from it: {replica_addr} (IO thread Connecting")),
        "{reason}"
    );
    let seen = listed(&doc, &replica_addr).expect("listed");
    assert_eq!(seen["testimony"], "cannot_replicate", "{doc:#}");
    assert_eq!(seen["io_running"], "Connecting", "{doc:#}");
    let since = doc["primary"]["since"].as_str().expect("since");
    assert!(since.ends_with('Z'), "{since}");

    let page = sidecar.metrics();
    assert_eq!(state_metric(&page, "dead"), Some(1.0), "{page}");
    assert_eq!(state_metric(&page, "alive"), Some(0.0), "{page}");
    assert!(page.contains("gapless_primary_state_changes_total{"), "{page}");

    let changes = sidecar.wait_changes(3);
    assert_transitions(&changes, &[("", "alive"), ("alive", "unreachable"), ("unreachable", "dead")], &addr);
    assert!(changes[2].2.contains("no replica hears from it"), "{changes:#?}");
    let log = sidecar.streamer.log();
    assert!(log.contains("the primary is dead"), "{log}");
    assert!(!log.contains(PASSWORD), "the password is never logged");
}

#[test]
fn a_clean_shutdown_without_replicas_is_dead() {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start("dstopp", 1, 27200, &[]);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    let dir = scratch("detect-stop");
    let mut sidecar = Sidecar::start("127.0.0.1", &primary, &dir, &[], "dstop");
    let addr = format!("127.0.0.1:{}", primary.port);
    sidecar.wait_state("alive");

    // SHUTDOWN as mariadb-admin shutdown (mdb_stop) sends it.
    let _ = primary.client("-e SHUTDOWN").output().expect("mariadb client");
    let stopped = Instant::now();
    // The sidecar outlives its primary: it keeps probing and serving. (A
    // primary shutting down ends the dump with an EOF packet, which the
    // stream must take as a reason to reconnect, not as the end.)
    let doc = sidecar.wait_state("dead");
    assert!(stopped.elapsed() >= DEAD_AFTER, "dead after {:?}", stopped.elapsed());
    let reason = doc["primary"]["reason"].as_str().expect("reason");
    assert!(reason.contains("no replicas known to ask"), "{reason}");
    assert_eq!(doc["primary"]["replicas"], serde_json::json!([]), "{doc:#}");
    assert_eq!(doc["connected"], false);
    assert_eq!(state_metric(&sidecar.metrics(), "dead"), Some(1.0));

    let changes = sidecar.wait_changes(3);
    assert_transitions(&changes, &[("", "alive"), ("alive", "unreachable"), ("unreachable", "dead")], &addr);
}

/// Sends SIGCONT when dropped, so that a stopped server can be destroyed
/// even when the test fails.
struct Resume<'a>(&'a Server);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.0.signal("CONT");
    }
}

#[test]
fn sigstop_is_unreachable_then_dead() {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start("dstopsigp", 1, 27300, &[]);
    let replica = Server::start("dstopsigr", 2, 27400, &[]);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    replicate(&replica, &primary, Some(1));
    let dir = scratch("detect-sigstop");
    let replica_addr = format!("127.0.0.1:{}", replica.port);
    let mut sidecar = Sidecar::start("127.0.0.1", &primary, &dir, &["--replica", &replica_addr], "dsigstop");
    let addr = format!("127.0.0.1:{}", primary.port);
    sidecar.wait_state("alive");
    assert!(listed(&sidecar.status().expect("status"), &replica_addr).is_some(), "--replica is listed");

    primary.signal("STOP");
    let resume = Resume(&primary);
    // The connections stay up, the replica's IO thread still says Yes: the
    // sidecar cannot confirm, yet.
    sidecar.wait_state("unreachable");
    let doc = sidecar.wait_state("dead");
    let reason = doc["primary"]["reason"].as_str().expect("reason");
    assert!(reason.contains("login failed"), "the handshake hangs: {reason}");
    assert!(
        reason.contains(&format!("{replica_addr} (IO thread Yes, but nothing from the primary for")),
        "{reason}"
    );
    assert_eq!(listed(&doc, &replica_addr).expect("listed")["io_running"], "Yes");
    assert_eq!(state_metric(&sidecar.metrics(), "dead"), Some(1.0));

    drop(resume);
    let doc = sidecar.wait_state("alive");
    assert_eq!(state_metric(&sidecar.metrics(), "alive"), Some(1.0), "{doc:#}");
    let changes = sidecar.wait_changes(4);
    assert_transitions(
        &changes,
        &[("", "alive"), ("alive", "unreachable"), ("unreachable", "dead"), ("dead", "alive")],
        &addr,
    );
}

/// A table of nftables rules of this test process, dropping the TCP
/// traffic of 127.0.0.2:`port` (and nothing else); removed when dropped.
struct Cut {
    table: String,
}

impl Cut {
    /// `None` (after a loud message) where nft cannot be used outside CI.
    fn new(port: u16) -> Option<Cut> {
        let table = format!("gapless_test_{}", std::process::id());
        let rules = format!(
            "table inet {table} {{\n\
               chain out {{\n\
                 type filter hook output priority 0; policy accept;\n\
                 ip daddr 127.0.0.2 tcp dport {port} drop\n\
                 ip saddr 127.0.0.2 tcp sport {port} drop\n\
               }}\n\
             }}\n"
        );
        let out = Command::new(nft())
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child.stdin.take().expect("stdin").write_all(rules.as_bytes())?;
                child.wait_with_output()
            });
        match out {
            Ok(o) if o.status.success() => Some(Cut { table }),
            other => {
                let why = format!("{other:?}");
                assert!(std::env::var("CI").map_or(true, |v| v != "true"), "nft failed: {why}");
                eprintln!("\n*** SKIPPED (not passed): nft cannot add a table here: {why} ***\n");
                None
            }
        }
    }

    fn lift(self) {}
}

impl Drop for Cut {
    fn drop(&mut self) {
        let _ = Command::new(nft()).args(["delete", "table", "inet", &self.table]).status();
    }
}

/// The nft binary (in /usr/sbin, which is not on every PATH).
fn nft() -> &'static str {
    if Path::new("/usr/sbin/nft").exists() {
        "/usr/sbin/nft"
    } else {
        "nft"
    }
}

#[test]
fn the_sidecar_cut_off_alone_stays_unreachable() {
    if !mariadb_here() {
        return;
    }
    // The primary also listens on 127.0.0.2: the sidecar's way to it, which
    // the test cuts; the replica's (127.0.0.1) stays.
    let primary = Server::start("dcutp", 1, 27500, &["--bind-address=127.0.0.1,127.0.0.2"]);
    let replica = Server::start("dcutr", 2, 27600, &[]);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    replicate(&replica, &primary, Some(1));
    let dir = scratch("detect-cut");
    let replica_addr = format!("127.0.0.1:{}", replica.port);
    let mut sidecar = Sidecar::start("127.0.0.2", &primary, &dir, &["--replica", &replica_addr], "dcut");
    let addr = format!("127.0.0.2:{}", primary.port);
    let doc = sidecar.wait_state("alive");
    assert_eq!(doc["source"], addr.as_str());

    let Some(cut) = Cut::new(primary.port) else { return };
    let doc = sidecar.wait_state("unreachable");
    // Clearly longer than --dead-after, and then some: never dead, and the
    // replica is why.
    let start = Instant::now();
    let mut reasons = Vec::new();
    while start.elapsed() < DEAD_AFTER * 3 + Duration::from_secs(4) {
        let doc = sidecar.status().expect("status");
        assert_eq!(doc["primary"]["state"], "unreachable", "{doc:#}\nlog:\n{}", sidecar.streamer.log());
        reasons.push(doc["primary"]["reason"].as_str().unwrap_or_default().to_string());
        std::thread::sleep(Duration::from_millis(200));
    }
    let last = reasons.last().expect("a reason");
    assert!(
        last.starts_with(&format!("unreachable from the sidecar: replica {replica_addr} (IO thread Yes, hears the primary) still replicates")),
        "{last}\nfirst: {doc:#}"
    );
    assert_eq!(
        listed(&sidecar.status().expect("status"), &replica_addr).expect("listed")["testimony"],
        "replicates"
    );
    assert_eq!(state_metric(&sidecar.metrics(), "unreachable"), Some(1.0));
    assert_eq!(io_running(&replica), "Yes");

    cut.lift();
    sidecar.wait_state("alive");
    let changes = sidecar.wait_changes(3);
    assert_transitions(&changes, &[("", "alive"), ("alive", "unreachable"), ("unreachable", "alive")], &addr);
}
