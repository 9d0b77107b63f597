//! `gapless switchover` against real MariaDB servers.
//!
//! A primary with three replicas in two datacenters (dc1: the primary and
//! r1; dc2: r2 and r3, from a metadata MariaDB) serves, in order: the dry
//! run (the plan printed, nothing changed); the datacenter rules (a
//! replica of the other datacenter named with --to is refused, with
//! --force too, and so is a cluster with no valid replica in the primary's
//! datacenter); a failure before the point of no return (the candidate's
//! replication delayed, so the catch-up times out: rolled back); and last
//! the switchover itself under a write workload, after which every
//! committed write is everywhere and everyone follows r1; and last a
//! switch back that fails after the point of no return (a wrong
//! replication password: no replica connects), which goes on and says
//! what is left (exit 3).
//!
//! A dual-primary pair (A and B replicating from each other, one
//! gtid_domain_id each, a replica under each) is switched from A to B and
//! back, with writes before and after, and refused while both are
//! writable; with network namespaces the VIP follows the first switch.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::netns::{netns_here, Lan};
use common::server::{start_all, Server};
use common::sidecar::{private_file, scratch};
use common::topology::{addr, caught_up, cmdb, replicate, run, slave_status};
use common::{mariadb_here, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::Value;

const REPL_PASSWORD: &str = "sw-repl-pw-5c1e";
const ADMIN_PASSWORD: &str = "sw-admin-pw-77d0";
const META_PASSWORD: &str = "sw-meta-pw-1b9a";
const APP_PASSWORD: &str = "sw-app-pw-20f4";
/// What the `shopbad` cluster wrongly gives as the replication password.
const WRONG_PASSWORD: &str = "sw-wrong-pw-6e3a";

/// What the switchover logs in with on every server (docs/topology.md).
const ADMIN_GRANTS: &str = "PROCESS, SLAVE MONITOR, BINLOG MONITOR, REPLICATION MASTER ADMIN, \
     READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, CONNECTION ADMIN, RELOAD";

/// The users and the table, written on the first primary so that they
/// reach every server through replication (a promoted one needs them).
fn users_and_table() -> String {
    format!(
        "CREATE USER 'repl'@'%' IDENTIFIED BY '{REPL_PASSWORD}'; \
         GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICATION MASTER ADMIN, SLAVE MONITOR ON *.* TO 'repl'@'%'; \
         CREATE USER 'admin'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}'; GRANT {ADMIN_GRANTS} ON *.* TO 'admin'@'%'; \
         CREATE DATABASE d; CREATE TABLE d.w (id BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)); \
         CREATE USER 'app'@'%' IDENTIFIED BY '{APP_PASSWORD}'; GRANT SELECT, INSERT ON d.* TO 'app'@'%';"
    )
}

/// The `[cluster.NAME]` lines every cluster of these tests has.
fn cluster_head(name: &str, seed: &Server, dir: &Path) -> String {
    format!(
        "[cluster.{name}]\n\
         seed = \"127.0.0.1:{}\"\n\
         user = \"admin\"\n\
         password_file = \"{}\"\n\
         ssl_mode = \"DISABLED\"\n\
         max_lag_seconds = 30\n",
        seed.port,
        dir.join("admin-password").display(),
    )
}

struct Cluster {
    primary: Server,
    r1: Server,
    r2: Server,
    r3: Server,
    _meta: Server,
    config: PathBuf,
    dir: PathBuf,
}

fn cluster() -> Cluster {
    let base = ["--report-host=127.0.0.1", "--log-slave-updates", "--gtid-strict-mode=ON"];
    let replica = [&base[..], &["--read-only"]].concat();
    let mut all = start_all(&[
        ("swprimary", 1, 30000, &base),
        ("swr1", 2, 30100, &replica),
        ("swr2", 3, 30200, &replica),
        ("swr3", 4, 30300, &replica),
        ("swmeta", 9, 30400, &[]),
    ])
    .into_iter();
    let mut next = || all.next().expect("five servers");
    let (primary, r1, r2, r3, meta) = (next(), next(), next(), next(), next());
    let dir = scratch("switchover");
    for (file, pw) in [
        ("admin-password", ADMIN_PASSWORD),
        ("repl-password", REPL_PASSWORD),
        ("meta-password", META_PASSWORD),
        ("wrong-password", WRONG_PASSWORD),
    ] {
        private_file(&dir.join(file), &format!("{pw}\n"));
    }
    primary.sql(&users_and_table());
    for r in [&r1, &r2, &r3] {
        replicate(r, &primary, "repl", REPL_PASSWORD);
    }
    cmdb(&meta, &[(&primary, "dc1"), (&r1, "dc1"), (&r2, "dc2"), (&r3, "dc2")], "", "shop", META_PASSWORD);
    let repl = format!(
        "replication_user = \"repl\"\nreplication_password_file = \"{}\"\n",
        dir.join("repl-password").display()
    );
    // shop: no datacenter rule; shopdc: PreventCrossDataCenterMasterFailover;
    // shopnodc: that rule and r1, the only other dc1 server, ruled out;
    // shopbad: a wrong replication password.
    let text = format!(
        "[meta_db]\n\
         host = \"127.0.0.1\"\n\
         port = {meta_port}\n\
         name = \"cmdb\"\n\
         user = \"cmdb_reader\"\n\
         password_file = \"{meta_pw}\"\n\
         ssl_mode = \"DISABLED\"\n\
         datacenter_query = \"SELECT datacenter FROM instances WHERE hostname = :host AND port = :port\"\n\n\
         {shop}{repl}writers_timeout_seconds = 2\n\n\
         {shopdc}{repl}PreventCrossDataCenterMasterFailover = true\nwriters = \"kill\"\n\n\
         {nodc}{repl}prevent_cross_dc = true\n\
         [cluster.shopnodc.promotion]\n\"127.0.0.1:{r1}\" = \"must_not\"\n\n\
         {bad}replication_user = \"repl\"\nreplication_password_file = \"{wrong}\"\n",
        meta_port = meta.port,
        meta_pw = dir.join("meta-password").display(),
        shop = cluster_head("shop", &r2, &dir),
        shopdc = cluster_head("shopdc", &r2, &dir),
        nodc = cluster_head("shopnodc", &r2, &dir),
        bad = cluster_head("shopbad", &r2, &dir),
        wrong = dir.join("wrong-password").display(),
        r1 = r1.port,
    );
    let config = dir.join("clusters.toml");
    std::fs::write(&config, text).expect("cluster file");
    for r in [&r1, &r2, &r3] {
        caught_up(&primary, r);
    }
    Cluster { primary, r1, r2, r3, _meta: meta, config, dir }
}

impl Cluster {
    fn switchover(&self, extra: &[&str]) -> (i32, String, String) {
        let config = self.config.display().to_string();
        let (code, out, err) = run(&[&["switchover", "--config", &config][..], extra].concat());
        eprintln!("gapless switchover {}: exit {code}\n{out}{err}", extra.join(" "));
        assert!(!out.contains(REPL_PASSWORD) && !err.contains(REPL_PASSWORD), "a password in the output");
        assert!(!out.contains(ADMIN_PASSWORD) && !err.contains(ADMIN_PASSWORD), "a password in the output");
        (code, out, err)
    }

    /// The primary took no change: writable, every replica under it.
    fn untouched(&self) {
        assert_eq!(self.primary.value("SELECT @@read_only"), "0", "the primary is writable");
        for r in [&self.r1, &self.r2, &self.r3] {
            assert_eq!(slave_status(r, "Master_Port"), self.primary.port.to_string(), "{}", r.name);
            assert_eq!(slave_status(r, "Slave_IO_Running"), "Yes", "{}", r.name);
            assert_eq!(r.value("SELECT @@read_only"), "1", "{}", r.name);
        }
    }
}

fn dry_run(w: &Cluster) {
    let (code, out, _) = w.switchover(&["--cluster", "shopdc", "--dry-run"]);
    assert_eq!(code, 0);
    let (p, r1) = (addr(&w.primary), addr(&w.r1));
    assert!(out.starts_with(&format!("switchover of shopdc: {p} (dc1) -> {r1} (dc1)\n")), "{out}");
    assert!(out.contains("precheck: 12 of 12 required checks passed"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines.iter().position(|l| l.contains("--- point of no return")).expect("the point of no return");
    assert!(lines[at - 2].starts_with(&format!("  4. {r1}: wait up to 30 s")), "{out}");
    assert!(lines[at - 1].starts_with(&format!("  5. {r1}: STOP SLAVE: it has everything")), "{out}");
    assert_eq!(
        lines[at + 1],
        format!("  6. {r1}: promote: RESET SLAVE ALL; SET GLOBAL read_only = OFF"),
        "{out}"
    );
    for r in [&w.r2, &w.r3] {
        assert!(
            out.contains(&format!(
                "{}: re-point: STOP SLAVE; CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, \
                 MASTER_USER = 'repl', MASTER_PASSWORD = '****', MASTER_USE_GTID = slave_pos; START SLAVE",
                addr(r),
                w.r1.port
            )),
            "{out}"
        );
    }
    assert!(out.contains(&format!("  9. {p}: demote (it stays read_only)")), "{out}");
    assert!(out.ends_with("dry run: nothing was changed\n"), "{out}");
    let (code, out, _) = w.switchover(&["--cluster", "shopdc", "--dry-run", "--json"]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["plan"]["new_primary"]["addr"], r1);
    assert_eq!(doc["plan"]["steps"][3]["action"], "catch_up");
    assert_eq!(doc["plan"]["steps"][4]["after_point_of_no_return"], false);
    assert_eq!(doc["plan"]["steps"][5]["after_point_of_no_return"], true);
    assert!(doc["report"].is_null());
    w.untouched();
}

fn datacenter_rules(w: &Cluster) {
    let r2 = addr(&w.r2);
    for force in [false, true] {
        let mut args = vec!["--cluster", "shopdc", "--to", &r2];
        if force {
            args.push("--force");
        }
        let (code, _, err) = w.switchover(&args);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!(
                "switchover refused, nothing was changed: --to {r2} may not become the primary: in dc2, not in \
                 the primary's dc1 (prevent_cross_dc)"
            )),
            "{err}"
        );
        assert_eq!(err.contains("--force does not override that"), force, "{err}");
        w.untouched();
    }
    // No valid replica in dc1: refused rather than promoted elsewhere.
    for force in [false, true] {
        let args: &[&str] =
            if force { &["--cluster", "shopnodc", "--force"] } else { &["--cluster", "shopnodc"] };
        let (code, _, err) = w.switchover(args);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(&format!("{}: its promotion rule is must_not", addr(&w.r1))), "{err}");
        for r in [&w.r2, &w.r3] {
            assert!(
                err.contains(&format!("{}: in dc2, not in the primary's dc1 (prevent_cross_dc)", addr(r))),
                "{err}"
            );
        }
        if force {
            assert!(err.contains("prevent_cross_dc keeps the primary in its datacenter (dc1)"), "{err}");
        }
        w.untouched();
    }
}

/// A real failure before the point of no return: r1 applies each
/// transaction five minutes late, so it cannot catch up within the wait.
fn rolled_back(w: &Cluster) {
    w.r1.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 300; START SLAVE;");
    w.primary.sql("INSERT INTO d.w (id) VALUES (1000000);");
    let (r1, p) = (addr(&w.r1), addr(&w.primary));
    let (code, out, err) = w.switchover(&["--cluster", "shop", "--to", &r1, "--wait-timeout", "2"]);
    assert_eq!(code, 1, "{out}{err}");
    let line =
        out.lines().find(|l| l.starts_with("FAIL [4] ")).unwrap_or_else(|| panic!("no failed step 4: {out}"));
    assert!(line.contains(&format!("{r1} had not executed GTID ")) && line.contains("after 2.0 s"), "{line}");
    assert!(line.contains("MASTER_DELAY 300 s"), "the cause is shown: {line}");
    assert!(out.contains(&format!("ok   rolled back: {p} is writable again (read_only = OFF)")), "{out}");
    assert!(
        out.contains("failed at step 4, before the point of no return, and rolled back")
            && out.contains("step 4 (catch-up) failed"),
        "{out}"
    );
    // Steps 1-3 ran: read_only was set, then undone.
    assert!(out.contains(&format!("ok   [1] {p}: read_only = ON")), "{out}");
    w.untouched();
    w.r1.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE;");
    caught_up(&w.primary, &w.r1);
}

/// A client (`app`) that inserts `id` in a transaction and keeps it open
/// (an idle writer), once the server shows the change.
fn open_transaction(on: &Server, id: u64) -> Child {
    let child = on
        .client(&format!(
            "-u app -p{APP_PASSWORD} -h 127.0.0.1 -P {} --protocol=TCP \
             -e 'BEGIN; INSERT INTO d.w (id) VALUES ({id}); SELECT SLEEP(120)'",
            on.port
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mariadb");
    wait_until(Duration::from_secs(30), "the open transaction", || {
        on.value("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_rows_modified = 1") == "1"
    });
    child
}

/// Ends the open transactions left on `on` (their clients sleep).
fn kill_app_connections(on: &Server) {
    for id in on.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'app'").lines() {
        let _ = on.client(&format!("-e 'KILL {}'", id.trim())).output();
    }
}

/// A client that keeps its transaction open past writers_timeout_seconds
/// (writers = wait): rolled back at step 2.
fn writer_waited_for(w: &Cluster) {
    let mut child = open_transaction(&w.primary, 3_000_000);
    let p = addr(&w.primary);
    let (code, out, err) = w.switchover(&["--cluster", "shop"]);
    assert_eq!(code, 1, "{out}{err}");
    let line =
        out.lines().find(|l| l.starts_with("FAIL [2] ")).unwrap_or_else(|| panic!("no failed step 2: {out}"));
    assert!(
        line.contains(&format!("{p}: after 2 s, 1 client still writes (writers = wait"))
            && line.contains("a transaction with 1 changed rows"),
        "{line}"
    );
    assert!(out.contains("step 2 (writers) failed") && out.contains("rolled back"), "{out}");
    w.untouched();
    kill_app_connections(&w.primary);
    let _ = child.wait();
}

/// Inserts rows, one transaction each, into whichever server `target`
/// names, as the unprivileged `app`; keeps the ids whose COMMIT succeeded.
/// Errors (read_only, a lost connection) are retried with a new id.
struct Writer {
    target: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
    committed: Arc<Mutex<Vec<u64>>>,
    thread: JoinHandle<usize>,
}

impl Writer {
    fn start(port: u16) -> Writer {
        let target = Arc::new(AtomicU16::new(port));
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(Mutex::new(Vec::new()));
        let (t, s, c) = (target.clone(), stop.clone(), committed.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(write_loop(t, s, c))
        });
        Writer { target, stop, committed, thread }
    }

    fn count(&self) -> usize {
        self.committed.lock().expect("lock").len()
    }

    /// Stops; the committed ids and how many attempts failed.
    fn finish(self) -> (BTreeSet<u64>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let failures = self.thread.join().expect("writer");
        let ids = self.committed.lock().expect("lock").iter().copied().collect();
        (ids, failures)
    }
}

async fn write_loop(target: Arc<AtomicU16>, stop: Arc<AtomicBool>, committed: Arc<Mutex<Vec<u64>>>) -> usize {
    let mut conn: Option<(u16, mysql_async::Conn)> = None;
    let mut failures = 0;
    let mut next = 1u64;
    while !stop.load(Ordering::SeqCst) {
        let port = target.load(Ordering::SeqCst);
        if conn.as_ref().is_some_and(|(p, _)| *p != port) {
            conn = None;
        }
        if conn.is_none() {
            let opts = mysql_async::OptsBuilder::default()
                .ip_or_hostname("127.0.0.1")
                .tcp_port(port)
                .user(Some("app"))
                .pass(Some(APP_PASSWORD))
                .prefer_socket(false);
            match mysql_async::Conn::new(opts).await {
                Ok(c) => conn = Some((port, c)),
                Err(_) => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some((_, c)) = conn.as_mut() else { continue };
        let id = next;
        next += 1;
        let done = async {
            c.query_drop("BEGIN").await?;
            c.query_drop(format!("INSERT INTO d.w (id) VALUES ({id})")).await?;
            c.query_drop("COMMIT").await
        }
        .await;
        match done {
            Ok(()) => committed.lock().expect("lock").push(id),
            Err(_) => {
                failures += 1;
                if c.query_drop("ROLLBACK").await.is_err() {
                    conn = None;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    failures
}

fn ids(s: &Server) -> BTreeSet<u64> {
    s.sql("SELECT id FROM d.w").lines().map(|l| l.trim().parse().expect("id")).collect()
}

fn switchover_under_writes(w: &Cluster) {
    let writer = Writer::start(w.primary.port);
    wait_until(Duration::from_secs(30), "the first 50 writes", || writer.count() >= 50);
    // An idle transaction, which writers = kill ends.
    let mut idle = open_transaction(&w.primary, 2_000_000);
    let (code, out, err) = w.switchover(&["--cluster", "shopdc"]);
    assert_eq!(code, 0, "{out}{err}");
    let (p, r1) = (addr(&w.primary), addr(&w.r1));
    let killed =
        out.lines().find(|l| l.starts_with("WARN [2] ")).unwrap_or_else(|| panic!("nobody killed: {out}"));
    assert!(
        killed.contains(&format!("{p}: killed connection "))
            && killed.contains("a transaction with 1 changed rows"),
        "{killed}"
    );
    assert!(!idle.wait().expect("client").success(), "its connection was killed");
    // The datacenter rule: r1 is the only replica in the primary's dc1.
    assert!(out.starts_with(&format!("switchover of shopdc: {p} (dc1) -> {r1} (dc1)\n")), "{out}");
    assert!(out.contains(&format!("ok   point of no return: {r1} has everything {p} wrote")), "{out}");
    assert!(out.contains(&format!("done: {r1} is the primary; {p} replicates from it, read_only")), "{out}");
    for n in 1..=10 {
        assert!(out.contains(&format!("ok   [{n}] ")), "step {n} done: {out}");
    }
    // The writer goes on against the new primary.
    let before = writer.count();
    writer.target.store(w.r1.port, Ordering::SeqCst);
    wait_until(Duration::from_secs(30), "30 writes on the new primary", || writer.count() >= before + 30);
    let (committed, failures) = writer.finish();
    eprintln!("{} writes committed, {failures} attempts failed", committed.len());

    assert_eq!(w.r1.value("SELECT @@read_only"), "0", "the new primary is writable");
    assert_eq!(w.primary.value("SELECT @@read_only"), "1", "the old primary is read_only");
    assert_eq!(slave_status(&w.r1, "Master_Host"), "", "the new primary replicates from nobody");
    for s in [&w.primary, &w.r2, &w.r3] {
        assert_eq!(slave_status(s, "Master_Port"), w.r1.port.to_string(), "{} follows r1", s.name);
        caught_up(&w.r1, s);
    }
    let on_new = ids(&w.r1);
    let lost: Vec<&u64> = committed.difference(&on_new).collect();
    assert!(lost.is_empty(), "committed writes missing on the new primary: {lost:?}");
    assert!(!on_new.contains(&2_000_000), "the killed transaction was never committed");
    for s in [&w.primary, &w.r2, &w.r3] {
        assert_eq!(ids(s), on_new, "{} has exactly the new primary's rows", s.name);
    }
    // Discovery agrees.
    let config = w.config.display().to_string();
    let (code, out, err) = run(&["topology", "--cluster", "shop", "--config", &config, "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["topology"]["primary"], r1);
    assert_eq!(doc["topology"]["instances"].as_array().expect("instances").len(), 4, "{doc:#}");
}

/// A failure after the point of no return: back to the first primary with
/// a wrong replication password, so that no re-pointed replica connects.
/// The switch goes on, and ends saying what failed (exit 3).
fn past_the_point_of_no_return(w: &Cluster) {
    let (p, r1) = (addr(&w.primary), addr(&w.r1));
    let (code, out, err) = w.switchover(&["--cluster", "shopbad", "--to", &p, "--wait-timeout", "3"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(!out.contains(WRONG_PASSWORD) && !err.contains(WRONG_PASSWORD), "a password in the output");
    assert!(out.contains(&format!("ok   [6] {p}: promoted")), "{out}");
    assert!(
        out.contains(&format!(
            "past the point of no return, {p} is the primary and takes the writes, but 1 step failed"
        )),
        "{out}"
    );
    let failed =
        out.lines().find(|l| l.starts_with("FAIL failed: step 10 (verify): ")).expect("the failed step");
    for r in [&r1, &addr(&w.r2), &addr(&w.r3)] {
        assert!(failed.contains(&format!("{r}: IO/SQL ")), "{failed}");
    }
    assert!(failed.contains("Access denied for user 'repl'"), "{failed}");
    // What to run once the cause is fixed: each replica's re-point, the
    // password shown as ****.
    for (r, step) in [(&addr(&w.r2), 7), (&addr(&w.r3), 8), (&r1, 9)] {
        assert!(
            out.contains(&format!(
                "FAIL left: {r}: fix the cause above, then run again what step {step} ran: {r}: "
            )),
            "{out}"
        );
    }
    assert!(out.contains("1 step failed and 3 steps left"), "{out}");
    assert_eq!(w.primary.value("SELECT @@read_only"), "0");
    assert_eq!(w.r1.value("SELECT @@read_only"), "1");
}

#[test]
fn switchover_keeps_every_write_and_the_datacenter_rules() {
    if !mariadb_here() {
        return;
    }
    let w = cluster();
    dry_run(&w);
    datacenter_rules(&w);
    rolled_back(&w);
    writer_waited_for(&w);
    switchover_under_writes(&w);
    past_the_point_of_no_return(&w);
    let _ = std::fs::remove_dir_all(&w.dir);
}

struct Pair {
    a: Server,
    b: Server,
    ra: Server,
    rb: Server,
    config: PathBuf,
    dir: PathBuf,
}

impl Pair {
    fn switch(&self, extra: &[&str]) -> (i32, String, String) {
        let config = self.config.display().to_string();
        let (code, out, err) = run(&[&["switchover", "--dual", "--config", &config][..], extra].concat());
        eprintln!("gapless switchover --dual {}: exit {code}\n{out}{err}", extra.join(" "));
        assert!(!out.contains(ADMIN_PASSWORD) && !err.contains(ADMIN_PASSWORD));
        (code, out, err)
    }

    /// Each replica is still where it was: ra under A, rb under B, and
    /// A and B under each other, all running.
    fn shape(&self) {
        for (replica, source) in
            [(&self.ra, &self.a), (&self.rb, &self.b), (&self.a, &self.b), (&self.b, &self.a)]
        {
            assert_eq!(slave_status(replica, "Master_Port"), source.port.to_string(), "{}", replica.name);
            assert_eq!(slave_status(replica, "Slave_IO_Running"), "Yes", "{}", replica.name);
            assert_eq!(slave_status(replica, "Slave_SQL_Running"), "Yes", "{}", replica.name);
        }
    }

    /// A row written as `app` on `on`; the error text when refused.
    fn write(&self, on: &Server, id: u64) -> Result<(), String> {
        let out = on
            .client(&format!("-u app -p{APP_PASSWORD} -h 127.0.0.1 -P {} --protocol=TCP -e 'INSERT INTO d.w (id) VALUES ({id})'", on.port))
            .output()
            .expect("mariadb");
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Every server has exactly `want`.
    fn rows(&self, active: &Server, want: &[u64]) {
        for s in [&self.a, &self.b, &self.ra, &self.rb] {
            if s.port != active.port {
                wait_until(Duration::from_secs(60), &format!("{} to have every row", s.name), || {
                    ids(s).len() == want.len()
                });
            }
            assert_eq!(ids(s), want.iter().copied().collect::<BTreeSet<u64>>(), "{}", s.name);
        }
    }
}

fn pair(lan: Option<&Lan>) -> Pair {
    let base = ["--report-host=127.0.0.1", "--log-slave-updates", "--gtid-strict-mode=ON"];
    // One GTID domain per member of the pair: MariaDB's advice for
    // multi-master, so that the two never write the same domain.
    let a_opts = [&base[..], &["--gtid-domain-id=1"]].concat();
    let b_opts = [&base[..], &["--gtid-domain-id=2", "--read-only"]].concat();
    let replica = [&base[..], &["--read-only"]].concat();
    let mut all = start_all(&[
        ("swdualA", 11, 30500, &a_opts),
        ("swdualB", 12, 30600, &b_opts),
        ("swdualra", 13, 30700, &replica),
        ("swdualrb", 14, 30800, &replica),
    ])
    .into_iter();
    let mut next = || all.next().expect("four servers");
    let (a, b, ra, rb) = (next(), next(), next(), next());
    let dir = scratch("switchover-dual");
    private_file(&dir.join("admin-password"), &format!("{ADMIN_PASSWORD}\n"));
    a.sql(&users_and_table());
    replicate(&b, &a, "repl", REPL_PASSWORD);
    replicate(&ra, &a, "repl", REPL_PASSWORD);
    replicate(&rb, &b, "repl", REPL_PASSWORD);
    caught_up(&a, &b);
    // B has the users now: A may replicate from it.
    replicate(&a, &b, "repl", REPL_PASSWORD);
    wait_until(Duration::from_secs(30), "A to replicate from B", || {
        slave_status(&a, "Slave_IO_Running") == "Yes" && slave_status(&a, "Slave_SQL_Running") == "Yes"
    });
    caught_up(&a, &ra);
    caught_up(&b, &rb);
    let mut text = format!("{}\n", cluster_head("pair", &a, &dir));
    if let Some(lan) = lan {
        text.push_str(&format!(
            "{}vip = \"{}\"\ninterface = \"eth0\"\n[cluster.pairvip.vip_hosts]\n\"127.0.0.1:{}\" = \"{}\"\n\"127.0.0.1:{}\" = \"{}\"\n",
            cluster_head("pairvip", &a, &dir),
            lan.vip(),
            a.port,
            lan.spec("hostA"),
            b.port,
            lan.spec("hostB"),
        ));
    }
    let config = dir.join("clusters.toml");
    std::fs::write(&config, text).expect("cluster file");
    Pair { a, b, ra, rb, config, dir }
}

#[test]
fn dual_primary_switch_both_ways() {
    if !mariadb_here() {
        return;
    }
    let lan = netns_here("swdual").then(|| Lan::new("swdual", 77, &["hostA", "hostB"]));
    if let Some(lan) = &lan {
        lan.give_vip("hostA");
    }
    let w = pair(lan.as_ref());
    let (a, b) = (addr(&w.a), addr(&w.b));
    w.write(&w.a, 1).expect("A takes writes");

    // The plan, and nothing changed.
    let (code, out, _) = w.switch(&["--cluster", "pair", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("dual-primary switch of pair: active {a} -> passive {b}\n")), "{out}");
    assert!(out.contains(&format!("  5. {b}: SET GLOBAL read_only = OFF: it takes the writes")), "{out}");
    assert!(!out.contains("CHANGE MASTER"), "{out}");
    assert_eq!((w.a.value("SELECT @@read_only"), w.b.value("SELECT @@read_only")), ("0".into(), "1".into()));

    // A to B. With the namespaces, the VIP moves too; the precheck cannot
    // reach the VIP from here (it lives in the namespaces), so --force.
    let (code, out, err) = match &lan {
        Some(_) => w.switch(&["--cluster", "pairvip", "--force", "--timeout", "3"]),
        None => w.switch(&["--cluster", "pair"]),
    };
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("done: {b} is the active primary; {a} is passive (read_only)")), "{out}");
    assert_eq!(w.a.value("SELECT @@read_only"), "1");
    assert_eq!(w.b.value("SELECT @@read_only"), "0");
    if let Some(lan) = &lan {
        assert!(out.contains("warning: precheck failed, going on because of --force: vip"), "{out}");
        assert!(lan.holds("hostB") && !lan.holds("hostA"), "the VIP moved to B's host");
    }
    let refused = w.write(&w.a, 2).expect_err("A is read_only");
    assert!(refused.contains("1290"), "{refused}");
    w.write(&w.b, 3).expect("B takes writes");
    w.rows(&w.b, &[1, 3]);
    w.shape();

    // Both writable: refused, even with --force.
    w.a.sql("SET GLOBAL read_only = 0;");
    let (code, _, err) = w.switch(&["--cluster", "pair", "--force"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("both {b} and {a} are writable"))
            || err.contains(&format!("both {a} and {b} are writable")),
        "{err}"
    );
    w.a.sql("SET GLOBAL read_only = 1;");
    assert_eq!(w.b.value("SELECT @@read_only"), "0", "B untouched");

    // B back to A: the same command.
    let (code, out, err) = w.switch(&["--cluster", "pair"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with(&format!("dual-primary switch of pair: active {b} -> passive {a}\n")), "{out}");
    assert_eq!(w.a.value("SELECT @@read_only"), "0");
    assert_eq!(w.b.value("SELECT @@read_only"), "1");
    w.write(&w.a, 4).expect("A takes writes again");
    w.rows(&w.a, &[1, 3, 4]);
    w.shape();
    let _ = std::fs::remove_dir_all(&w.dir);
}
