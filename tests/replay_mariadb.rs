//! `gapless replay` in real failovers on MariaDB: a primary, a replica
//! that lags (its SQL thread stopped), the sidecar keeping the primary's
//! binlog in its ring; the primary is killed with kill -9, the replica
//! promoted, and replay must give it every committed transaction, once,
//! with the original GTIDs.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::server::{Server, Streamer};
use common::sidecar::wait_ring_holds;
use common::{mariadb_here, repo, wait_until};

const PASSWORD: &str = "replay-pw-5d21";

fn ring_dir(tag: &str) -> PathBuf {
    let dir = repo().join("target/tmp").join(format!("replay-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Makes `replica` replicate `primary` by GTID.
fn replicate(replica: &Server, primary: &Server) {
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', \
         MASTER_PASSWORD='{PASSWORD}', MASTER_USE_GTID=slave_pos; START SLAVE;",
        primary.port
    ));
}

/// The sidecar, streaming `primary` from its first GTID into `ring`.
fn sidecar_from_start(primary: &Server, ring: &Path, tag: &str) -> Streamer {
    Streamer::spawn(
        &["--source", &primary.url("repl"), "--from-gtid", "", "--ring", &ring.display().to_string()],
        PASSWORD,
        tag,
    )
}

/// The user replay logs in with.
fn create_apply_user(target: &Server) {
    common::sidecar::create_apply_user(target, "apply", PASSWORD);
}

/// A primary (`name`, at `port`) with a replication user and a sidecar
/// streaming it into a fresh ring from its start, and targets (`name` and
/// a suffix each, at `port` + 100, + 200, …) with the apply user.
struct World {
    p: Server,
    targets: Vec<Server>,
    ring: PathBuf,
    sidecar: Streamer,
}

fn world(name: &str, port: u16, targets: &[&str]) -> World {
    let opts = ["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL"];
    let names: Vec<String> = targets.iter().map(|suffix| format!("{name}{suffix}")).collect();
    let mut specs = vec![(name, 1, port, &opts[..])];
    for (i, n) in names.iter().enumerate() {
        specs.push((n, i as u32 + 2, port + 100 * (i as u16 + 1), &opts[..]));
    }
    let mut servers = common::server::start_all(&specs);
    let p = servers.remove(0);
    p.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    for target in &servers {
        create_apply_user(target);
    }
    let ring = ring_dir(name);
    let sidecar = sidecar_from_start(&p, &ring, &format!("{name}sidecar"));
    World { p, targets: servers, ring, sidecar }
}

/// `gapless replay` onto `target` as the apply user.
fn replay(ring: &Path, target: &Server, extra: &[&str]) -> std::process::Output {
    common::gapless()
        .arg("replay")
        .args([
            "--ring",
            &ring.display().to_string(),
            "--target",
            &target.url("apply"),
            "--ssl-mode",
            "DISABLED",
        ])
        .args(extra)
        .env("GAPLESS_PASSWORD", PASSWORD)
        .output()
        .expect("gapless replay")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every table's rows in a fixed order, as the server prints them.
fn contents(server: &Server) -> String {
    server.sql("SELECT id, v, n FROM d.t ORDER BY id; SELECT k, note FROM d.u ORDER BY k;")
}

#[test]
fn a_lagging_replica_promoted_after_kill_9_gets_every_transaction_once() {
    if !mariadb_here() {
        return;
    }
    let opts = ["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL", "--log-slave-updates=ON"];
    let primary = Server::start("rpprimary", 1, 23100, &opts);
    let replica = Server::start("rpreplica", 2, 23200, &opts);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    create_apply_user(&replica);
    replicate(&replica, &primary);
    let ring = ring_dir("failover");
    let mut sidecar = sidecar_from_start(&primary, &ring, "rpsidecar");
    primary.sql(
        "CREATE DATABASE d; \
         CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(64), n DECIMAL(12,3)) ENGINE=InnoDB; \
         CREATE TABLE d.u (k VARCHAR(16) PRIMARY KEY, note TEXT) ENGINE=InnoDB;",
    );
    primary.sql(
        &(1..=50).map(|i| format!("INSERT INTO d.t VALUES ({i}, 'first {i}', {i}.5);\n")).collect::<String>(),
    );
    wait_until(Duration::from_secs(30), "the replica to catch up", || {
        replica.value("SELECT @@gtid_slave_pos") == primary.value("SELECT @@gtid_binlog_pos")
    });

    // The replica falls behind: its SQL thread stops, the primary goes on.
    replica.sql("STOP SLAVE SQL_THREAD;");
    let mut lagging = String::new();
    for i in 51..=120 {
        lagging.push_str(&format!("INSERT INTO d.t VALUES ({i}, 'late {i}', -{i}.25);\n"));
        if i % 10 == 0 {
            lagging.push_str(&format!("UPDATE d.t SET v = CONCAT(v, ' updated') WHERE id = {};\n", i - 60));
            lagging.push_str(&format!("DELETE FROM d.t WHERE id = {};\n", i - 55));
            lagging.push_str(&format!("INSERT INTO d.u VALUES ('k{i}', 'note {i} ''quoted''');\n"));
        }
    }
    lagging.push_str(
        "BEGIN; INSERT INTO d.u VALUES ('multi1', NULL); UPDATE d.t SET n = 0 WHERE id < 5; COMMIT;\n",
    );
    primary.sql(&lagging);
    let final_pos = primary.value("SELECT @@gtid_binlog_pos");
    let expected = contents(&primary);
    wait_ring_holds(&ring, &final_pos);

    // The primary dies; the replica is promoted as orchestrator would.
    primary.kill9();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sidecar.stop(), 0, "{}", sidecar.log());
    replica.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;");
    let before = replica.value("SELECT COUNT(*) FROM d.t");
    assert_ne!(contents(&replica), expected, "the replica should lack the late transactions");

    // A dry run shows what would be applied and changes nothing.
    let dry = replay(&ring, &replica, &["--auto", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let sql = String::from_utf8_lossy(&dry.stdout);
    assert!(sql.contains("INSERT INTO") && sql.contains("gtid_seq_no"), "{sql}");
    assert_eq!(replica.value("SELECT COUNT(*) FROM d.t"), before, "--dry-run applied something");

    // The replay itself.
    let out = replay(&ring, &replica, &["--auto", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let applied = report["applied"].as_array().expect("applied").len();
    assert!(applied >= 70, "{report}");
    assert_eq!(contents(&replica), expected, "after replay the promoted replica has every row");
    // The original GTIDs, through the replica's binlog.
    assert_eq!(replica.value("SELECT @@gtid_binlog_pos"), final_pos);

    // Idempotent: a second run applies nothing.
    let again = replay(&ring, &replica, &["--auto", "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON report");
    assert_eq!(report["applied"].as_array().map(Vec::len), Some(0), "{report}");
    assert!(report["skipped_executed"].as_u64().unwrap() >= applied as u64);
    assert_eq!(contents(&replica), expected);
    let _ = std::fs::remove_dir_all(&ring);
}

#[test]
fn a_ring_that_starts_after_the_target_is_refused_before_anything_is_applied() {
    if !mariadb_here() {
        return;
    }
    let opts = ["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL"];
    let primary = Server::start("rpgap", 1, 23300, &opts);
    let target = Server::start("rpgaptarget", 2, 23400, &opts);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    create_apply_user(&target);
    primary.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY) ENGINE=InnoDB;");
    primary.sql(&(1..=10).map(|i| format!("INSERT INTO d.t VALUES ({i});\n")).collect::<String>());
    let ring = ring_dir("gap");
    // The sidecar only starts now: the ring lacks the first transactions.
    let mut sidecar = Streamer::spawn(
        &["--source", &primary.url("repl"), "--ring", &ring.display().to_string()],
        PASSWORD,
        "rpgapsidecar",
    );
    wait_until(Duration::from_secs(30), "the sidecar to stream", || sidecar.log().contains("streaming"));
    primary.sql(&(11..=20).map(|i| format!("INSERT INTO d.t VALUES ({i});\n")).collect::<String>());
    wait_ring_holds(&ring, "0-1-22");
    assert_eq!(sidecar.stop(), 0);
    target.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY) ENGINE=InnoDB;");
    // The target says it has 0-1-5: 6..12 are neither there nor in the ring.
    let out = replay(&ring, &target, &["--after-gtid", "0-1-5"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("does not cover") && err.contains("0-1-5") && err.contains("0-1-13"), "{err}");
    assert_eq!(target.value("SELECT COUNT(*) FROM d.t"), "0", "nothing applied");

    // A deadline already passed: stops before the first transaction.
    let out = replay(&ring, &target, &["--after-gtid", "0-1-12", "--deadline", "0.000001"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("deadline"), "{}", stderr(&out));
    assert_eq!(target.value("SELECT COUNT(*) FROM d.t"), "0", "nothing applied");

    // A row in the way: the transactions before it are applied, the one
    // that fails is rolled back whole and named, nothing after it runs.
    // In both modes: they go several to a round trip, BINLOG statements too.
    let stops_at = |args: &[&str],
                    failing: &str,
                    row: &str,
                    ids: std::ops::RangeInclusive<u32>,
                    pos: &str| {
        let out = replay(&ring, &target, args);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains(&format!("transaction {failing}"))
                && err.contains(&format!("Duplicate entry '{row}'"))
                && err.contains("rolled back"),
            "{err}"
        );
        // The failing event is named.
        assert!(err.contains("Write_rows") && err.contains("event at mariadb-bin.000001:"), "{err}");
        let want: Vec<String> = ids.map(|i| i.to_string()).collect();
        assert_eq!(target.sql("SELECT id FROM d.t ORDER BY id").split_whitespace().collect::<Vec<_>>(), want);
        assert_eq!(target.value("SELECT @@gtid_binlog_pos"), pos);
    };
    target.sql("SET sql_log_bin = 0; INSERT INTO d.t VALUES (15);");
    stops_at(&["--after-gtid", "0-1-12", "--mode", "binlog"], "0-1-17", "15", 11..=15, "0-1-16");
    target.sql("SET sql_log_bin = 0; DELETE FROM d.t WHERE id = 15; INSERT INTO d.t VALUES (18);");
    stops_at(&["--after-gtid", "0-1-16"], "0-1-20", "18", 11..=18, "0-1-19");

    // A target that still replicates (its SQL thread running, held back an
    // hour) is refused: its own replication would apply the same
    // transactions. A dry run only warns.
    target.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', \
         MASTER_PASSWORD='{PASSWORD}', MASTER_USE_GTID=current_pos, MASTER_DELAY=3600; START SLAVE;",
        primary.port
    ));
    wait_until(Duration::from_secs(30), "the target's replication to run", || {
        target.value("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVE_RUNNING'")
            == "ON"
    });
    let out = replay(&ring, &target, &["--after-gtid", "0-1-19"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("still replicating") && err.contains("Slave_SQL_Running: Yes"), "{err}");
    assert_eq!(target.value("SELECT @@gtid_binlog_pos"), "0-1-19", "nothing applied");
    let dry = replay(&ring, &target, &["--auto", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(stderr(&dry).contains("still replicating"), "{}", stderr(&dry));
    target.sql("STOP SLAVE; RESET SLAVE ALL;");
    let _ = std::fs::remove_dir_all(&ring);
}

/// The tables of the workload databases, dumped row by row.
fn dump(server: &Server, tag: &str) -> Vec<(String, String)> {
    server.dump_tables(
        &repo().join("target/tmp").join(format!("dump-{tag}-{}", std::process::id())),
        &["gapless_types", "gapless_other", "d"],
    )
}

/// Two dumps are equal; otherwise names the tables that differ and shows
/// the first line where each does (a whole dump is megabytes).
fn assert_same_tables(left: &[(String, String)], right: &[(String, String)], what: &str) {
    let names = |d: &[(String, String)]| d.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(left), names(right), "{what}: the tables differ");
    let differ: Vec<String> = left
        .iter()
        .zip(right)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((name, a), (_, b))| {
            let at = a
                .lines()
                .zip(b.lines())
                .position(|(x, y)| x != y)
                .unwrap_or(a.lines().count().min(b.lines().count()));
            let line = |t: &str| t.lines().nth(at).unwrap_or("(none)").chars().take(200).collect::<String>();
            format!("{name}, line {}: {} vs {}", at + 1, line(a), line(b))
        })
        .collect();
    assert!(differ.is_empty(), "{what}: {}", differ.join("; "));
}

fn checksums(server: &Server) -> String {
    let tables = server.value(
        "SELECT GROUP_CONCAT(CONCAT('`', TABLE_SCHEMA, '`.`', TABLE_NAME, '`') ORDER BY TABLE_SCHEMA, TABLE_NAME) \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('gapless_types', 'gapless_other', 'd') AND TABLE_TYPE = 'BASE TABLE'",
    );
    server.sql(&format!("CHECKSUM TABLE {tables}"))
}

/// The failover: P with replicas R1 and R2, R1 lagging while every
/// column type, DDL and a large transaction run on P, and what a replay
/// must apply exactly as a replica would (generated columns, triggers,
/// a system-versioned table, savepoints, zero dates and a 0 kept in an AUTO_INCREMENT column under
/// a lax sql_mode, rows written with foreign key checks off); P killed;
/// R1 promoted; replay; R1 equals P (restarted), R2 re-pointed to R1
/// replicates on, no errant GTIDs.
#[test]
fn failover_with_every_column_type_ddl_and_a_large_transaction_sql_mode() {
    failover_with_every_column_type("sql", "rf", 23500);
}

#[test]
fn failover_with_every_column_type_ddl_and_a_large_transaction_binlog_mode() {
    failover_with_every_column_type("binlog", "rb", 24500);
}

fn failover_with_every_column_type(mode: &str, tag: &str, ports: u16) {
    if !mariadb_here() {
        return;
    }
    let opts = [
        "--binlog-checksum=CRC32",
        "--binlog-row-metadata=FULL",
        "--log-slave-updates=ON",
        "--sync-binlog=1",
        "--innodb-flush-log-at-trx-commit=1",
    ];
    let p = Server::start(&format!("{tag}p"), 1, ports, &opts);
    let r1 = Server::start(&format!("{tag}r1"), 2, ports + 100, &opts);
    let r2 = Server::start(&format!("{tag}r2"), 3, ports + 200, &opts);
    p.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    create_apply_user(&r1);
    for r in [&r1, &r2] {
        replicate(r, &p);
    }
    let ring = ring_dir(&format!("types-{mode}"));
    let mut sidecar = sidecar_from_start(&p, &ring, &format!("{tag}sidecar"));
    p.sql("CREATE DATABASE d; CREATE TABLE d.big (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB;");
    wait_until(Duration::from_secs(30), "R1 to catch up", || {
        r1.value("SELECT @@gtid_slave_pos") == p.value("SELECT @@gtid_binlog_pos")
    });
    r1.sql("STOP SLAVE SQL_THREAD;");
    let workload = std::fs::read_to_string(repo().join("fixtures/workload/types.sql")).expect("workload");
    p.sql(&workload);
    p.sql("USE d; INSERT INTO d.big SELECT seq, CONCAT('row ', seq) FROM seq_1_to_20000;");
    // Generated columns, which the target computes itself (and refuses a
    // value for), in tables made and altered while R1 lags.
    p.sql(
        "CREATE TABLE d.gen (id INT PRIMARY KEY, a INT, j LONGTEXT, v INT AS (a * 2) VIRTUAL, \
           s VARCHAR(20) AS (JSON_VALUE(j, '$.name')) PERSISTENT, KEY (v)) ENGINE=InnoDB; \
         INSERT INTO d.gen (id, a, j) VALUES (1, 10, '{\"name\":\"one\"}'), (2, 20, '{\"name\":\"two\"}'), (3, 30, NULL); \
         UPDATE d.gen SET a = a + 1, j = JSON_SET(j, '$.name', 'uno') WHERE id = 1; \
         DELETE FROM d.gen WHERE id = 2; \
         CREATE TABLE d.gen_nopk (id INT, a INT, b INT AS (a + 1) PERSISTENT) ENGINE=InnoDB; \
         INSERT INTO d.gen_nopk (id, a) VALUES (1, 1), (1, 1), (1, 1), (2, 2); \
         UPDATE d.gen_nopk SET a = 5 WHERE id = 2; \
         DELETE FROM d.gen_nopk WHERE id = 1 LIMIT 1; \
         ALTER TABLE d.gen ADD COLUMN w INT AS (a + 100) VIRTUAL; \
         INSERT INTO d.gen (id, a, j) VALUES (4, 40, '{}'); \
         UPDATE d.gen SET a = 41 WHERE id = 4;",
    );
    // Triggers: the binlog holds the rows they wrote, so replay must not
    // fire them again (one log has no key: doubled rows would go unseen).
    p.sql(
        "CREATE TABLE d.trig (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; \
         CREATE TABLE d.trig_log (n INT AUTO_INCREMENT PRIMARY KEY, id INT, what VARCHAR(10)) ENGINE=InnoDB; \
         CREATE TABLE d.trig_nokey (id INT, what VARCHAR(10)) ENGINE=InnoDB; \
         CREATE TRIGGER d.trig_ai AFTER INSERT ON d.trig FOR EACH ROW \
           INSERT INTO d.trig_log (id, what) VALUES (NEW.id, 'insert'); \
         CREATE TRIGGER d.trig_au AFTER UPDATE ON d.trig FOR EACH ROW \
           INSERT INTO d.trig_nokey (id, what) VALUES (NEW.id, 'update'); \
         INSERT INTO d.trig VALUES (1, 1), (2, 2); \
         UPDATE d.trig SET v = v + 1; \
         BEGIN; INSERT INTO d.trig VALUES (3, 3); INSERT INTO d.big VALUES (30001, 'with a trigger'); COMMIT; \
         BEGIN; INSERT INTO d.trig VALUES (4, 4); SAVEPOINT s1; INSERT INTO d.trig VALUES (5, 5); \
           ROLLBACK TO SAVEPOINT s1; INSERT INTO d.trig VALUES (6, 6); SAVEPOINT s2; \
           UPDATE d.trig SET v = 60 WHERE id = 6; COMMIT;",
    );
    // Rows the primary took under a lax sql_mode, in tables made under
    // another: zero dates, and 0 kept in an AUTO_INCREMENT column.
    p.sql(
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE'; \
         CREATE TABLE d.legacy (id INT AUTO_INCREMENT PRIMARY KEY, day DATE) ENGINE=InnoDB; \
         SET SESSION sql_mode = ''; \
         CREATE TABLE d.counter (id INT AUTO_INCREMENT PRIMARY KEY, n INT) ENGINE=InnoDB; \
         SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'; \
         INSERT INTO d.legacy VALUES (1, '0000-00-00'), (2, '2024-00-10'); \
         INSERT INTO d.counter VALUES (0, 10), (7, 70);",
    );
    // Rows written with foreign_key_checks=0 (children before their
    // parents), and a cascade, which the binlog does not hold.
    p.sql(
        "SET SESSION sql_mode = DEFAULT; \
         CREATE TABLE d.parent (id INT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE TABLE d.child (id INT PRIMARY KEY, parent_id INT, \
           FOREIGN KEY (parent_id) REFERENCES d.parent (id) ON DELETE CASCADE) ENGINE=InnoDB; \
         SET SESSION foreign_key_checks = 0; \
         INSERT INTO d.child VALUES (1, 99), (2, 98); \
         SET SESSION foreign_key_checks = 1; \
         INSERT INTO d.parent VALUES (99), (98), (97); \
         INSERT INTO d.child VALUES (3, 97); \
         DELETE FROM d.parent WHERE id = 98;",
    );
    // A system-versioned table: the server writes its history rows itself.
    p.sql(
        "CREATE TABLE d.versioned (id INT PRIMARY KEY, v INT) ENGINE=InnoDB WITH SYSTEM VERSIONING; \
         INSERT INTO d.versioned VALUES (1, 10), (2, 20); \
         UPDATE d.versioned SET v = 11 WHERE id = 1; \
         DELETE FROM d.versioned WHERE id = 2;",
    );
    p.sql("BEGIN; UPDATE d.big SET v = CONCAT(v, '!') WHERE id % 3 = 0; DELETE FROM d.big WHERE id % 7 = 0; COMMIT;");
    let final_pos = p.value("SELECT @@gtid_binlog_pos");
    wait_until(Duration::from_secs(60), "R2 to catch up", || {
        r2.value("SELECT @@gtid_slave_pos") == final_pos
    });
    wait_ring_holds(&ring, &final_pos);

    p.kill9();
    assert_eq!(sidecar.stop(), 0, "{}", sidecar.log());
    r1.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;");
    // The binlog-mode run also relaxes R1's durability while it runs.
    let relaxed = mode == "binlog";
    let mut args = vec!["--auto", "--json", "--mode", mode];
    if relaxed {
        args.push("--relaxed-durability");
    }
    let out = replay(&ring, &r1, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert!(report["applied"].as_array().unwrap().len() > 50, "{report}");
    let settings = "SELECT CONCAT(@@GLOBAL.innodb_flush_log_at_trx_commit, ' ', @@GLOBAL.sync_binlog)";
    assert_eq!(r1.value(settings), "1 1", "durability settings as they were");
    if mode == "sql" {
        // Transactions on the tables with triggers, and the system-versioned
        // one, went as BINLOG statements.
        let log = stderr(&out);
        assert!(log.contains("`d`.`trig` (triggers trig_ai, trig_au)"), "{log}");
        assert!(log.contains("`d`.`versioned` (system-versioned)"), "{log}");
    }
    if relaxed {
        let log = stderr(&out);
        assert!(log.contains("innodb_flush_log_at_trx_commit = 2") && log.contains("restored"), "{log}");
    }
    if mode == "binlog" {
        // Row transactions went as BINLOG statements.
        let dry = replay(&ring, &r2, &["--after-gtid", "", "--dry-run", "--mode", "binlog"]);
        assert!(String::from_utf8_lossy(&dry.stdout).contains("BINLOG '"), "{}", stderr(&dry));
    }

    // R1 equals P's final committed state: P restarted, row by row and
    // with the server's checksums.
    p.restart();
    assert_same_tables(
        &dump(&r1, &format!("{tag}r1")),
        &dump(&p, &format!("{tag}p")),
        "R1 after replay vs P",
    );
    assert_eq!(checksums(&r1), checksums(&p));
    // No errant GTIDs: R1's binlog GTIDs are P's, nothing of its own.
    assert_eq!(r1.value("SELECT @@gtid_binlog_pos"), final_pos);

    // R2, which had everything from P, re-pointed to R1 replicates on.
    r2.sql(&format!(
        "STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='apply', \
         MASTER_PASSWORD='{PASSWORD}', MASTER_USE_GTID=slave_pos; START SLAVE;",
        r1.port
    ));
    r1.sql("INSERT INTO d.big VALUES (100001, 'after the failover');");
    let r1_pos = r1.value("SELECT @@gtid_binlog_pos");
    wait_until(Duration::from_secs(30), "R2 to replicate from R1", || {
        r2.value("SELECT @@gtid_slave_pos") == r1_pos
    });
    // Both threads still running: no error stopped the SQL thread.
    let running = r2.value(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVE_RUNNING'",
    );
    assert_eq!(running, "ON");
    assert_eq!(checksums(&r2), checksums(&r1));
    let _ = std::fs::remove_dir_all(&ring);
}

#[test]
fn a_transaction_without_its_commit_in_the_ring_is_not_applied() {
    if !mariadb_here() {
        return;
    }
    let opts = ["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL"];
    let p = Server::start("rtorn", 1, 23800, &opts);
    let target = Server::start("rtorntarget", 2, 23900, &opts);
    p.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    create_apply_user(&target);
    let ring = ring_dir("torn");
    let sidecar = sidecar_from_start(&p, &ring, "rtornsidecar");
    p.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY) ENGINE=InnoDB;");
    p.sql(&(1..=10).map(|i| format!("INSERT INTO d.t VALUES ({i});\n")).collect::<String>());
    p.sql("BEGIN; INSERT INTO d.t VALUES (1000); INSERT INTO d.t VALUES (1001); COMMIT;");
    let last = p.value("SELECT @@gtid_binlog_pos");
    wait_ring_holds(&ring, &last);
    drop(sidecar); // kill -9
                   // The last transaction's commit never reached the ring: its last
                   // record is cut, as when the primary died while sending it.
    let (seq, path) = gapless::ring::segment::list(&ring).unwrap().pop().unwrap();
    let seg = gapless::ring::segment::ReadableSegment::open(&path).unwrap().unwrap();
    let mut last_start = 0;
    let (end, _) =
        gapless::ring::segment::walk(&seg.map, seq, gapless::ring::record::SEGMENT_HEADER, 0, |r| {
            last_start = r.offset
        });
    drop(seg);
    {
        use std::os::unix::fs::FileExt;
        let zeros = vec![0u8; end - last_start];
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(&zeros, last_start as u64)
            .unwrap();
    }
    let out = replay(&ring, &target, &["--after-gtid", "", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = target.sql("SELECT id FROM d.t ORDER BY id");
    assert_eq!(ids.split_whitespace().count(), 10, "only the whole transactions: {ids}");
    assert!(!ids.contains("1000"), "{ids}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let applied: Vec<&str> =
        report["applied"].as_array().unwrap().iter().map(|a| a["gtid"].as_str().unwrap()).collect();
    assert!(!applied.contains(&last.as_str()), "{applied:?}");
    let _ = std::fs::remove_dir_all(&ring);
}

/// A replay cut off midway, by kill -9 of gapless and then of the target,
/// and run again, ends equal: every transaction exactly once, whichever
/// mode each run used.
///
/// gapless is killed while the target holds its batch (FLUSH TABLES WITH
/// READ LOCK): the server runs the rest of that batch once the lock goes,
/// after the client is gone, and the next replay must wait for it instead
/// of applying the same transactions beside it.
#[test]
fn a_replay_killed_midway_and_run_again_ends_equal() {
    if !mariadb_here() {
        return;
    }
    let opts = ["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL"];
    let p = Server::start("rkill", 1, 24000, &opts);
    let target = Server::start("rkilltarget", 2, 24100, &opts);
    p.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    create_apply_user(&target);
    let ring = ring_dir("killed");
    let mut sidecar = sidecar_from_start(&p, &ring, "rkillsidecar");
    p.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB;");
    p.sql(&(1..=3000).map(|i| format!("INSERT INTO d.t VALUES ({i}, 'v{i}');\n")).collect::<String>());
    let last = p.value("SELECT @@gtid_binlog_pos");
    wait_ring_holds(&ring, &last);
    assert_eq!(sidecar.stop(), 0);
    let count = || target.value("SELECT COUNT(*) FROM d.t").parse::<u32>().unwrap_or(0);
    let log = ring.with_extension("replay.log");
    let background = |args: &[&str]| {
        let log = std::fs::File::create(&log).expect("replay log");
        common::gapless()
            .arg("replay")
            .args([
                "--ring",
                &ring.display().to_string(),
                "--target",
                &target.url("apply"),
                "--ssl-mode",
                "DISABLED",
            ])
            .args(args)
            .env("GAPLESS_PASSWORD", PASSWORD)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("gapless replay")
    };
    let running = |run: &mut std::process::Child| {
        let status = run.try_wait().expect("try_wait");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(status.is_none(), "the replay ended ({status:?}):\n{text}");
    };
    let sessions = |state: &str| {
        target.value(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'apply' AND STATE LIKE '{state}'"
        ))
    };

    // kill -9 of gapless while the target holds its batch.
    let mut run = background(&["--after-gtid", ""]);
    wait_until(Duration::from_secs(60), "some rows applied", || {
        running(&mut run);
        target.sql("SHOW DATABASES").contains('d') && count() >= 300
    });
    let mut hold = target
        .client("-N -B -e 'FLUSH TABLES WITH READ LOCK; SELECT SLEEP(300)'")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mariadb");
    wait_until(Duration::from_secs(30), "the replay's batch held", || sessions("%wait%") == "1");
    run.kill().unwrap();
    run.wait().unwrap();
    let first = count();
    assert!(first < 3000, "the replay should have been cut off ({first} rows)");

    // The next replay starts while the killed one's batch still waits. It
    // sends BINLOG statements, many transactions to a round trip, and is
    // cut off among them below.
    let mut run = background(&["--auto", "--mode", "binlog"]);
    wait_until(Duration::from_secs(30), "the second replay's session", || {
        running(&mut run);
        sessions("%") == "2"
    });
    std::thread::sleep(Duration::from_millis(500));
    let held =
        target.value("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(300)'");
    target.sql(&format!("KILL {held}"));
    let _ = hold.wait();

    // kill -9 of the target midway: replay fails, the target restarts.
    wait_until(Duration::from_secs(60), "more rows applied", || {
        running(&mut run);
        count() >= first + 300
    });
    target.kill9();
    assert!(!run.wait().unwrap().success(), "replay must fail when the target dies");
    target.restart();

    let out = replay(&ring, &target, &["--auto", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(), 3000);
    assert_eq!(target.value("SELECT COUNT(DISTINCT id) FROM d.t WHERE v = CONCAT('v', id)"), "3000");
    assert_eq!(target.value("SELECT @@gtid_binlog_pos"), last);

    // A session that keeps the lock: a replay with a deadline gives up on
    // it and says who holds it; a dry run only warns.
    let mut hold = target
        .client("-N -B -e \"SELECT GET_LOCK('gapless.replay', 0), SLEEP(300)\"")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mariadb");
    wait_until(Duration::from_secs(30), "the lock held", || {
        target.value("SELECT IS_USED_LOCK('gapless.replay') IS NOT NULL") == "1"
    });
    let holder = target.value("SELECT IS_USED_LOCK('gapless.replay')");
    let out = replay(&ring, &target, &["--auto", "--deadline", "2"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("still holds the replay lock") && text.contains(&format!("connection {holder}")),
        "{text}"
    );
    let out = replay(&ring, &target, &["--auto", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("connection {holder}")), "{}", stderr(&out));
    target.sql(&format!("KILL {holder}"));
    let _ = hold.wait();
    let _ = std::fs::remove_dir_all(&ring);
    let _ = std::fs::remove_file(&log);
}

/// Replication by file and position (MASTER_USE_GTID=no): the replica's
/// coordinates, recorded before the promotion, are the start point; with
/// neither GTIDs nor coordinates, --auto says it cannot tell.
#[test]
fn file_and_position_replication_replays_after_the_recorded_coordinates() {
    if !mariadb_here() {
        return;
    }
    let opts = ["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL", "--log-slave-updates=ON"];
    let p = Server::start("rpos", 1, 24200, &opts);
    let r1 = Server::start("rposr1", 2, 24300, &opts);
    p.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    create_apply_user(&r1);
    let ring = ring_dir("pos");
    let mut sidecar = Streamer::spawn(
        &[
            "--source",
            &p.url("repl"),
            "--from",
            "mariadb-bin.000001:4",
            "--ring",
            &ring.display().to_string(),
        ],
        PASSWORD,
        "rpossidecar",
    );
    r1.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', MASTER_PASSWORD='{PASSWORD}', \
         MASTER_LOG_FILE='mariadb-bin.000001', MASTER_LOG_POS=4, MASTER_USE_GTID=no; START SLAVE;",
        p.port
    ));
    p.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB;");
    p.sql(&(1..=20).map(|i| format!("INSERT INTO d.t VALUES ({i}, 'a');\n")).collect::<String>());
    let caught_up = p.value("SELECT COUNT(*) FROM d.t");
    wait_until(Duration::from_secs(30), "R1 to catch up", || {
        r1.sql("SHOW DATABASES").contains('d') && r1.value("SELECT COUNT(*) FROM d.t") == caught_up
    });
    r1.sql("STOP SLAVE SQL_THREAD;");
    p.sql(
        &(21..=60)
            .map(|i| {
                format!(
                    "INSERT INTO d.t VALUES ({i}, 'late');\nUPDATE d.t SET v = 'b' WHERE id = {};\n",
                    i - 20
                )
            })
            .collect::<String>(),
    );
    let last = p.value("SELECT @@gtid_binlog_pos");
    let expected = p.sql("SELECT id, v FROM d.t ORDER BY id");
    wait_ring_holds(&ring, &last);
    p.kill9();
    assert_eq!(sidecar.stop(), 0);

    // What a pre-failover hook records, before RESET SLAVE ALL removes it.
    let status = r1.client("-E -e 'SHOW SLAVE STATUS'").output().expect("client");
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    let field = |name: &str| -> String {
        let line = status.lines().find(|l| l.trim_start().starts_with(&format!("{name}:"))).expect(name);
        line.split_once(':').unwrap().1.trim().to_string()
    };
    let at = format!("{}:{}", field("Relay_Master_Log_File"), field("Exec_Master_Log_Pos"));
    r1.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;");
    assert_ne!(r1.sql("SELECT id, v FROM d.t ORDER BY id"), expected);

    let out = replay(&ring, &r1, &["--after", &at, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["applied"].as_array().unwrap().len(), 80, "{report}");
    assert_eq!(r1.sql("SELECT id, v FROM d.t ORDER BY id"), expected);
    // Run again: the GTIDs it now has keep it from applying anything.
    let again = replay(&ring, &r1, &["--after", &at, "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["applied"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(r1.sql("SELECT id, v FROM d.t ORDER BY id"), expected);

    // A server with no GTIDs and no replication coordinates: --auto says so.
    let blank = Server::start("rposblank", 3, 24400, &opts);
    create_apply_user(&blank);
    let out = replay(&ring, &blank, &["--auto"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no start point") && err.contains("--after FILE:POS"), "{err}");
    let _ = std::fs::remove_dir_all(&ring);
}

/// A binlog without column names (binlog_row_metadata=MINIMAL): the SQL
/// takes them from the target's information_schema.
#[test]
fn minimal_row_metadata_takes_column_names_from_the_target() {
    if !mariadb_here() {
        return;
    }
    let opts = ["--binlog-checksum=CRC32", "--binlog-row-metadata=MINIMAL", "--log-slave-updates=ON"];
    let p = Server::start("rmin", 1, 24800, &opts);
    let r1 = Server::start("rminr1", 2, 24900, &opts);
    p.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    create_apply_user(&r1);
    replicate(&r1, &p);
    let ring = ring_dir("minimal");
    let mut sidecar = sidecar_from_start(&p, &ring, "rminsidecar");
    p.sql(
        "CREATE DATABASE d; CREATE TABLE d.m (id INT PRIMARY KEY, `odd name` VARCHAR(20), d DATE, x DECIMAL(8,2), \
         b VARBINARY(8)) ENGINE=InnoDB;",
    );
    wait_until(Duration::from_secs(30), "R1 to catch up", || {
        r1.value("SELECT @@gtid_slave_pos") == p.value("SELECT @@gtid_binlog_pos")
    });
    r1.sql("STOP SLAVE SQL_THREAD;");
    let mut work = String::new();
    for i in 1..=40 {
        work.push_str(&format!(
            "INSERT INTO d.m VALUES ({i}, 'n{i}', '2024-01-{:02}', {i}.25, X'00ff{i:02x}');\n",
            i % 28 + 1
        ));
    }
    work.push_str("UPDATE d.m SET `odd name` = 'changed', x = -1.5 WHERE id % 4 = 0;\nDELETE FROM d.m WHERE id % 5 = 0;\n");
    p.sql(&work);
    let last = p.value("SELECT @@gtid_binlog_pos");
    let expected = p.sql("SELECT id, `odd name`, d, x, HEX(b) FROM d.m ORDER BY id");
    wait_ring_holds(&ring, &last);
    p.kill9();
    assert_eq!(sidecar.stop(), 0);
    r1.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;");
    let dry = replay(&ring, &r1, &["--auto", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("`odd name`"),
        "{}",
        String::from_utf8_lossy(&dry.stdout)
    );
    let out = replay(&ring, &r1, &["--auto"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(r1.sql("SELECT id, `odd name`, d, x, HEX(b) FROM d.m ORDER BY id"), expected);
    assert_eq!(r1.value("SELECT @@gtid_binlog_pos"), last);
    let _ = std::fs::remove_dir_all(&ring);
}

/// A target whose max_allowed_packet is smaller than a transaction gets it
/// in several queries inside its BEGIN … COMMIT (sql mode) or in smaller
/// BINLOG statements (binlog mode). A single statement longer than that
/// stops the replay at its transaction, with nothing of it applied (a part
/// already sent is rolled back) and the setting named; once it is raised,
/// a second run goes on.
#[test]
fn transactions_larger_than_the_targets_max_allowed_packet() {
    if !mariadb_here() {
        return;
    }
    let World { p, targets, ring, mut sidecar } = world("rpacket", 25500, &["sql", "bin"]);
    let [t_sql, t_binlog] = [&targets[0], &targets[1]];
    p.sql(
        "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB; \
         CREATE TABLE d.b (id INT PRIMARY KEY, data MEDIUMBLOB) ENGINE=InnoDB;",
    );
    // About 650 KB and 800 KB of SQL, and a small one.
    p.sql("USE d; INSERT INTO d.t SELECT seq, REPEAT(CHAR(97 + seq % 26), 150) FROM seq_1_to_4000;");
    p.sql("UPDATE d.t SET v = CONCAT('u', v) WHERE id % 2 = 0;");
    p.sql("INSERT INTO d.t VALUES (5000, 'small');");
    let before_big_row = p.value("SELECT @@gtid_binlog_pos");
    // 2 000 rows, then one row of 300 000 bytes: 600 KB as SQL, 400 KB as
    // a BINLOG statement.
    p.sql(
        "USE d; BEGIN; INSERT INTO d.t SELECT seq, REPEAT('z', 150) FROM seq_6001_to_8000; \
         INSERT INTO d.b VALUES (1, REPEAT('x', 300000)); COMMIT;",
    );
    p.sql("INSERT INTO d.t VALUES (9000, 'last');");
    let last = p.value("SELECT @@gtid_binlog_pos");
    wait_ring_holds(&ring, &last);
    assert_eq!(sidecar.stop(), 0, "{}", sidecar.log());
    let table_sums = "CHECKSUM TABLE d.t, d.b";

    for (target, mode) in [(t_sql, "sql"), (t_binlog, "binlog")] {
        target.sql("SET GLOBAL max_allowed_packet = 262144;");
        let out = replay(&ring, target, &["--after-gtid", "", "--mode", mode]);
        let log = stderr(&out);
        assert!(!out.status.success(), "{mode}: the 300 000-byte row cannot fit: {log}");
        assert!(
            log.contains("max_allowed_packet = 262144") && log.contains("SET GLOBAL max_allowed_packet = "),
            "{mode}: {log}"
        );
        // Everything before the big row's transaction, nothing of it.
        assert_eq!(target.value("SELECT @@gtid_binlog_pos"), before_big_row, "{mode}: {log}");
        assert_eq!(target.value("SELECT COUNT(*) FROM d.t"), "4001", "{mode}");
        assert_eq!(target.value("SELECT COUNT(*) FROM d.t WHERE v LIKE 'u%'"), "2000", "{mode}");
        assert_eq!(target.value("SELECT COUNT(*) FROM d.b"), "0", "{mode}");

        target.sql("SET GLOBAL max_allowed_packet = 1048576;");
        let out = replay(&ring, target, &["--auto", "--mode", mode]);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        assert_eq!(target.value("SELECT @@gtid_binlog_pos"), last, "{mode}");
        assert_eq!(target.sql(table_sums), p.sql(table_sums), "{mode}");
    }
    let _ = std::fs::remove_dir_all(&ring);
}

/// A MariaDB sequence: both modes stop before the transaction that
/// changes it and say so. (Applied, as SQL or as BINLOG statements, the
/// target logged the next GTID twice, which stopped its replicas.)
#[test]
fn replay_stops_before_a_sequence() {
    if !mariadb_here() {
        return;
    }
    let World { p, targets, ring, mut sidecar } = world("rseq", 25800, &["target"]);
    let target = &targets[0];
    p.sql(
        "CREATE DATABASE d; CREATE TABLE d.numbered (id INT PRIMARY KEY) ENGINE=InnoDB; \
         INSERT INTO d.numbered VALUES (1); \
         CREATE SEQUENCE d.seq START WITH 100 CACHE 2; \
         INSERT INTO d.numbered VALUES (NEXTVAL(d.seq)), (NEXTVAL(d.seq)); \
         INSERT INTO d.numbered VALUES (2);",
    );
    let last = p.value("SELECT @@gtid_binlog_pos");
    wait_ring_holds(&ring, &last);
    assert_eq!(sidecar.stop(), 0, "{}", sidecar.log());

    // The target starts with no GTIDs; after the first run it has some.
    for (mode, start) in [("sql", ["--after-gtid", ""].as_slice()), ("binlog", ["--auto"].as_slice())] {
        let out = replay(&ring, target, &[start, &["--mode", mode]].concat());
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("changes the sequence `d`.`seq`") && err.contains("cannot apply"),
            "{mode}: {err}"
        );
        assert_eq!(
            target.value("SELECT COUNT(*) FROM d.numbered"),
            "1",
            "{mode}: stopped before the sequence"
        );
    }
    let gtids: Vec<String> = target
        .sql("SHOW BINLOG EVENTS")
        .lines()
        .filter_map(|l| l.split('\t').next_back().filter(|info| info.contains("GTID 0-")).map(str::to_string))
        .collect();
    let mut unique = gtids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), gtids.len(), "a GTID logged twice: {gtids:?}");
    let _ = std::fs::remove_dir_all(&ring);
}

/// XA transactions: MariaDB logs XA PREPARE (with the rows) and XA COMMIT
/// or XA ROLLBACK as groups of their own. Replayed, the target ends as the
/// primary did: committed ones applied, rolled-back ones not, and one left
/// prepared is prepared there too, for its transaction manager to finish.
/// One on a table with a trigger goes as BINLOG statements in both modes.
#[test]
fn xa_transactions_end_as_on_the_primary() {
    if !mariadb_here() {
        return;
    }
    let World { p, targets, ring, mut sidecar } = world("rxa", 31200, &["sql", "binlog"]);
    let [sql_target, binlog_target] = [&targets[0], &targets[1]];
    p.sql(
        "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB; \
         INSERT INTO d.t VALUES (1, 'plain'); \
         XA START 'x1'; INSERT INTO d.t VALUES (2, 'xa'); XA END 'x1'; XA PREPARE 'x1'; XA COMMIT 'x1'; \
         XA START 'x2'; INSERT INTO d.t VALUES (3, 'rolled back'); XA END 'x2'; XA PREPARE 'x2'; XA ROLLBACK 'x2'; \
         XA START 'x3'; INSERT INTO d.t VALUES (4, 'one phase'); XA END 'x3'; XA COMMIT 'x3' ONE PHASE; \
         CREATE TABLE d.trig (id INT PRIMARY KEY) ENGINE=InnoDB; CREATE TABLE d.trig_log (id INT) ENGINE=InnoDB; \
         CREATE TRIGGER d.logged AFTER INSERT ON d.trig FOR EACH ROW INSERT INTO d.trig_log VALUES (NEW.id); \
         XA START 'x5'; INSERT INTO d.trig VALUES (1), (2); XA END 'x5'; XA PREPARE 'x5'; XA COMMIT 'x5'; \
         ",
    );
    // Left prepared when its session ends; another goes on.
    p.sql("XA START 'x4', 'b4', 7; UPDATE d.t SET v = 'changed' WHERE id = 1; XA END 'x4', 'b4', 7; XA PREPARE 'x4', 'b4', 7;");
    p.sql("INSERT INTO d.t VALUES (5, 'after');");
    let last = p.value("SELECT @@gtid_binlog_pos");
    wait_ring_holds(&ring, &last);
    assert_eq!(sidecar.stop(), 0, "{}", sidecar.log());
    let logged = |server: &Server| {
        server
            .sql("SHOW BINLOG EVENTS")
            .lines()
            .filter(|l| l.contains("GTID") || l.contains("XA "))
            .map(|l| l.split('\t').next_back().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };

    for (mode, target) in [("sql", sql_target), ("binlog", binlog_target)] {
        let out = replay(&ring, target, &["--after-gtid", "", "--mode", mode, "--json"]);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        // The report names the one left prepared.
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
        assert_eq!(report["xa_prepared"], serde_json::json!(["X'7834',X'6234',7"]), "{mode}: {report:#}");
        assert_eq!(
            target.sql("SELECT id, v FROM d.t ORDER BY id"),
            "1\tplain\n2\txa\n4\tone phase\n5\tafter\n",
            "{mode}"
        );
        // The trigger's rows come from the binlog, as on a replica, not
        // from the trigger firing again.
        assert_eq!(target.sql("SELECT id FROM d.trig_log ORDER BY id"), "1\n2\n", "{mode}");
        assert_eq!(target.value("SELECT @@gtid_binlog_pos"), last, "{mode}");
        // The XA groups logged as the primary logged them, with their GTIDs.
        assert_eq!(logged(target), logged(&p), "{mode}");
        let recover = target.sql("XA RECOVER");
        assert!(recover.contains("x4b4"), "{mode}: {recover}");
        let again = replay(&ring, target, &["--auto", "--json", "--mode", mode]);
        assert!(again.status.success(), "{mode}: {}", stderr(&again));
        let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json report");
        assert_eq!(report["applied"], serde_json::json!([]), "{mode}: {report:#}");
        let summary = stderr(&replay(&ring, target, &["--auto", "--mode", mode]));
        assert!(
            summary.contains("gapless replay: 1 XA transaction(s) prepared on the target")
                && summary.contains("X'7834',X'6234',7"),
            "{mode}: {summary}"
        );
        // Its transaction manager finishes it, as on the primary.
        target.sql("XA COMMIT 'x4', 'b4', 7");
        assert_eq!(target.value("SELECT v FROM d.t WHERE id = 1"), "changed", "{mode}");
    }
    let _ = std::fs::remove_dir_all(&ring);
}

/// An XA transaction that fails on the target is named with the server's
/// own error, and leaves nothing behind there (not prepared, not active);
/// once the cause is gone, a second run applies it. So is an XA COMMIT
/// whose transaction the target does not hold prepared.
#[test]
fn a_failing_xa_transaction_is_named_and_leaves_nothing() {
    if !mariadb_here() {
        return;
    }
    let World { p, targets, ring, mut sidecar } = world("rxafail", 31500, &["target"]);
    let target = &targets[0];
    let ddl = "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB;";
    p.sql(ddl);
    let after_ddl = p.value("SELECT @@gtid_binlog_pos");
    p.sql(
        "XA START 'x1'; INSERT INTO d.t VALUES (1, 'xa'), (2, 'xa'); XA END 'x1'; XA PREPARE 'x1'; XA COMMIT 'x1'; \
         INSERT INTO d.t VALUES (3, 'after');",
    );
    let last = p.value("SELECT @@gtid_binlog_pos");
    wait_ring_holds(&ring, &last);
    assert_eq!(sidecar.stop(), 0, "{}", sidecar.log());
    // The target has the tables, and a row of its own in the way.
    target.sql(&format!("SET sql_log_bin = 0; {ddl} INSERT INTO d.t VALUES (2, 'in the way');"));

    // The XA COMMIT fails when the target says it has the XA PREPARE
    // group but does not hold the transaction prepared: it is named, and
    // nothing after it runs.
    let prepare = next(&after_ddl);
    target.sql(&format!("SET GLOBAL gtid_slave_pos = '{prepare}';"));
    let out = replay(&ring, target, &["--auto"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("transaction {}", next(&prepare)))
            && err.contains("XA COMMIT")
            && err.contains("1397"),
        "{err}"
    );
    assert_eq!(target.value("SELECT GROUP_CONCAT(id ORDER BY id) FROM d.t"), "2", "nothing after it");
    assert_eq!(target.value("SELECT @@gtid_binlog_pos"), "", "nothing logged");

    target.sql(&format!("SET GLOBAL gtid_slave_pos = '{after_ddl}';"));
    for mode in ["sql", "binlog"] {
        let out = replay(&ring, target, &["--auto", "--mode", mode]);
        assert!(!out.status.success(), "{mode}");
        let err = stderr(&out);
        assert!(
            err.contains("Duplicate entry '2'") && err.contains(&format!("transaction {}", next(&after_ddl))),
            "{mode}: {err}"
        );
        assert_eq!(target.sql("XA RECOVER"), "", "{mode}: nothing left prepared");
        assert_eq!(target.value("SELECT GROUP_CONCAT(id ORDER BY id) FROM d.t"), "2", "{mode}");
    }
    target.sql("SET sql_log_bin = 0; DELETE FROM d.t WHERE id = 2;");
    let out = replay(&ring, target, &["--auto"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(target.sql("SELECT id, v FROM d.t ORDER BY id"), "1\txa\n2\txa\n3\tafter\n");
    assert_eq!(target.value("SELECT @@gtid_binlog_pos"), last);
    let _ = std::fs::remove_dir_all(&ring);
}

/// The GTID after a MariaDB `D-S-N`: `D-S-N+1`.
fn next(gtid: &str) -> String {
    let (head, seq) = gtid.rsplit_once('-').expect("a GTID");
    format!("{head}-{}", seq.parse::<u64>().expect("seq_no") + 1)
}

/// A failover between an XA transaction's PREPARE and its COMMIT: the
/// lagging replica had the transaction prepared (its replication applied
/// the XA PREPARE), the primary committed it and died. Promoted, the
/// replica keeps it prepared, and replay commits it with the primary's
/// XA COMMIT, nothing applied twice.
#[test]
fn a_failover_between_xa_prepare_and_xa_commit_commits_it() {
    if !mariadb_here() {
        return;
    }
    let World { p, targets, ring, mut sidecar } = world("rxafo", 31800, &["r1"]);
    let r1 = &targets[0];
    replicate(r1, &p);
    p.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB;");
    p.sql("INSERT INTO d.t VALUES (1, 'before');");
    p.sql("XA START 'x'; INSERT INTO d.t VALUES (2, 'xa'); XA END 'x'; XA PREPARE 'x';");
    let prepared = p.value("SELECT @@gtid_binlog_pos");
    wait_until(Duration::from_secs(30), "R1 to apply the XA PREPARE", || {
        r1.value("SELECT @@gtid_slave_pos") == prepared
    });
    r1.sql("STOP SLAVE;");
    p.sql("XA COMMIT 'x'; INSERT INTO d.t VALUES (3, 'after');");
    let last = p.value("SELECT @@gtid_binlog_pos");
    wait_ring_holds(&ring, &last);
    assert_eq!(sidecar.stop(), 0, "{}", sidecar.log());
    p.kill9();

    // Promoted as orchestrator does.
    r1.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;");
    assert!(r1.sql("XA RECOVER").contains('x'), "R1 holds the transaction prepared");
    let out = replay(&ring, r1, &["--auto", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let applied: Vec<&str> =
        report["applied"].as_array().unwrap().iter().map(|a| a["gtid"].as_str().unwrap()).collect();
    assert_eq!(applied.len(), 2, "the XA COMMIT and the insert after it: {report:#}");
    assert_eq!(r1.sql("SELECT id, v FROM d.t ORDER BY id"), "1\tbefore\n2\txa\n3\tafter\n");
    assert_eq!(r1.sql("XA RECOVER"), "", "nothing left prepared");
    let again = replay(&ring, r1, &["--auto", "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json report");
    assert_eq!(report["applied"], serde_json::json!([]), "{report:#}");
    let _ = std::fs::remove_dir_all(&ring);
}
