//! The whole story on real servers: a primary P with replicas R1 and R2,
//! the sidecar streaming P, the VIP on P's host (a network namespace of
//! the test's own LAN, tests/common/netns.rs). Both replicas stop
//! receiving before P's last transactions (R2 earlier than R1), then P is
//! killed with `kill -9`. The test then does what orchestrator does, in
//! its order and with its environment: the pre-failover hook, the
//! promotion of R1 (R2 moved under it, R1 reset), the post-master-failover
//! hook with the VIP. Afterwards R1 holds every transaction P committed,
//! R2 follows R1 and has them too, and the VIP answers on R1's host.

mod common;

use std::time::Duration;

use common::netns::{netns_here, Lan};
use common::server::Server;
use common::sidecar::{contents, row_changes, run_hook, scratch, wait_ring_holds, ApiSidecar, TABLES};
use common::{mariadb_here, wait_until};

const PASSWORD: &str = "story-repl-pw-41c7";
const APPLY_PASSWORD: &str = "story-apply-pw-93aa";
const TOKEN: &str = "story-token-0123456789abcdef0123";
const UID: &str = "1764190000:story";

/// One transaction per row: inserts of ids `from..=to` into d.t.
fn inserts(from: u32, to: u32) -> String {
    (from..=to).map(|i| format!("INSERT INTO d.t VALUES ({i}, 'row {i}');\n")).collect()
}

/// Points `replica` at `primary` (GTID, 1 s heartbeats) and starts it.
fn replicate(replica: &Server, primary: &Server) {
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'repl', \
         MASTER_PASSWORD = '{PASSWORD}', MASTER_USE_GTID = slave_pos, MASTER_HEARTBEAT_PERIOD = 1; \
         START SLAVE;",
        primary.port
    ));
}

/// One field of `SHOW SLAVE STATUS` on `replica`.
fn slave_field(replica: &Server, name: &str) -> String {
    let out = replica.client("-e 'SHOW SLAVE STATUS\\G'").output().expect("mariadb");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.trim_start().starts_with(&format!("{name}:")));
    line.and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string()).unwrap_or_default()
}

/// Waits until `replica` has executed up to `gtid`.
fn wait_executed(replica: &Server, gtid: &str) {
    wait_until(Duration::from_secs(60), &format!("{} to reach {gtid}", replica.name), || {
        replica.value("SELECT @@gtid_slave_pos") == gtid
    });
}

#[test]
fn a_dead_primary_loses_nothing_and_the_vip_follows_the_promoted_replica() {
    if !mariadb_here() || !netns_here("story") {
        return;
    }
    let lan = Lan::new("story", 74, &["hostP", "hostR1", "client"]);
    lan.give_vip("hostP");
    lan.serve("hostP", "P");
    lan.serve("hostR1", "R1");
    assert_eq!(lan.fetch(), "P", "the VIP starts on P's host");

    let opts = [
        "--binlog-checksum=CRC32",
        "--binlog-row-metadata=FULL",
        "--log-slave-updates=ON",
        "--gtid-strict-mode=ON",
    ];
    let p = Server::start("storyp", 1, 29000, &opts);
    let r1 = Server::start("storyr1", 2, 29200, &opts);
    let r2 = Server::start("storyr2", 3, 29400, &opts);
    // Users go through the binlog, so the replicas (and a promoted one)
    // have them too.
    p.sql(&format!(
        "CREATE USER 'repl'@'%' IDENTIFIED BY '{PASSWORD}'; \
         GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICATION MASTER ADMIN, SLAVE MONITOR ON *.* TO 'repl'@'%'; \
         CREATE USER 'applier'@'%' IDENTIFIED BY '{APPLY_PASSWORD}'; GRANT ALL ON *.* TO 'applier'@'%';"
    ));
    replicate(&r1, &p);
    replicate(&r2, &p);
    let dir = scratch("story");
    let (r1_addr, r2_addr) = (format!("127.0.0.1:{}", r1.port), format!("127.0.0.1:{}", r2.port));
    let replicas = format!("{r1_addr},{r2_addr}");
    let sidecar = ApiSidecar::start_with(
        &p,
        &dir,
        PASSWORD,
        TOKEN,
        ("applier", APPLY_PASSWORD),
        "storysidecar",
        &["--dead-after", "3", "--heartbeat", "1", "--replica", &r1_addr, "--replica", &r2_addr],
    );
    let (api_port, ring, mut sidecar) = (sidecar.port, sidecar.ring, sidecar.streamer);

    // Everything reaches both replicas; then R2 stops receiving, then R1.
    p.sql(TABLES);
    p.sql(&row_changes(1, 20));
    let both = p.value("SELECT @@gtid_binlog_pos");
    wait_executed(&r1, &both);
    wait_executed(&r2, &both);
    r2.sql("STOP SLAVE IO_THREAD;");
    p.sql(&inserts(21, 30));
    let r1_has = p.value("SELECT @@gtid_binlog_pos");
    wait_executed(&r1, &r1_has);
    r1.sql("STOP SLAVE IO_THREAD;");
    // The last transactions only P (and the sidecar's ring) have.
    p.sql(&inserts(31, 50));
    let last = p.value("SELECT @@gtid_binlog_pos");
    let committed = contents(&p);
    wait_ring_holds(&ring, &last);
    assert_ne!(contents(&r1), committed, "R1 lags");

    p.kill9();
    // The replicas were held back by hand (STOP SLAVE IO_THREAD, which
    // proves nothing about P); a replica that lags for real keeps trying
    // to reach P, and finds it gone.
    r1.sql("START SLAVE IO_THREAD;");
    r2.sql("START SLAVE IO_THREAD;");
    wait_until(Duration::from_secs(60), "the sidecar to see P dead", || {
        let (status, body) = common::sidecar::http(api_port, "GET", "/status", Some(TOKEN), None);
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        status == 200 && doc["primary"]["state"] == "dead"
    });

    // orchestrator's environment for this recovery.
    let orc = vec![
        ("ORC_FAILURE_TYPE", "DeadMaster".to_string()),
        ("ORC_COMMAND", String::new()),
        ("ORC_FAILED_HOST", "127.0.0.1".into()),
        ("ORC_FAILED_PORT", p.port.to_string()),
        ("ORC_FAILURE_CLUSTER_ALIAS", "shop".into()),
        ("ORC_FAILURE_CLUSTER_DOMAIN", "shop.example".into()),
        ("ORC_SUCCESSOR_HOST", "127.0.0.1".into()),
        ("ORC_SUCCESSOR_PORT", r1.port.to_string()),
        ("ORC_SUCCESSOR_BINLOG_COORDINATES", String::new()),
        ("ORC_REPLICA_HOSTS", replicas.clone()),
        ("ORC_RECOVERY_UID", UID.to_string()),
    ];
    let sidecar_url = format!("http://127.0.0.1:{api_port}");
    let token_file = dir.join("token").display().to_string();
    let log_file = dir.join("hook.log").display().to_string();
    let state_dir = dir.join("state").display().to_string();
    let common_args = |step_args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--sidecar",
            &sidecar_url,
            "--sidecar-token-file",
            &token_file,
            "--log-file",
            &log_file,
            "--deadline",
            "60",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(step_args.iter().map(|s| s.to_string()));
        v
    };

    // 1. PreFailoverProcesses: the sidecar is ready and records where each
    //    replica stands; its ring covers both.
    let (code, out) = run_hook("pre-failover", &common_args(&["--veto"]), &orc);
    assert_eq!(code, 0, "{out}");
    for (r, has) in [(&r1, &r1_has), (&r2, &both)] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("replica 127.0.0.1:{}:", r.port)))
            .unwrap_or_else(|| panic!("no line for {}: {out}", r.name));
        assert!(line.contains(&format!("GTIDs {has}")) && line.contains("the ring covers it"), "{line}");
    }

    // 2. orchestrator promotes R1: R2 moves under it, R1 is reset and
    //    made writable (ApplyMySQLPromotionAfterMasterFailover).
    r2.sql("STOP SLAVE;");
    replicate(&r2, &r1);
    r1.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;");

    // 3. PostMasterFailoverProcesses: complete R1, then move the VIP.
    let vip = lan.vip().to_string();
    let post_args = common_args(&[
        "--state-dir",
        &state_dir,
        "--VipAddr",
        &vip,
        "--InterFace",
        "eth0",
        "--vip-from",
        &lan.spec("hostP"),
        "--vip-to",
        &lan.spec("hostR1"),
    ]);
    let (code, out) = run_hook("post-master-failover", &post_args, &orc);
    assert_eq!(code, 0, "{out}\nsidecar log:\n{}", sidecar.log());
    assert!(out.contains(&format!("completion onto 127.0.0.1:{} succeeded", r1.port)), "{out}");
    assert!(out.contains(&format!("done: {vip} moved from")), "{out}");
    assert!(out.lines().all(|l| l.contains(&format!("recovery={UID}"))), "{out}");

    // R1 has every transaction P committed, with P's GTIDs.
    assert_eq!(contents(&r1), committed, "R1 lacks transactions P committed");
    assert_eq!(r1.value("SELECT @@gtid_binlog_pos"), last);
    // R2 follows R1 and gets them all from it.
    wait_executed(&r2, &last);
    assert_eq!(contents(&r2), committed);
    assert_eq!(slave_field(&r2, "Master_Port"), r1.port.to_string());
    // The VIP answers on R1's host, and P's no longer holds it.
    assert!(lan.holds("hostR1") && !lan.holds("hostP"));
    assert_eq!(lan.client_neighbour(), Some(lan.mac("hostR1")), "the client learnt R1's MAC");
    assert_eq!(lan.fetch(), "R1");

    // orchestrator may run the hook again: nothing is done twice.
    let (code, out) = run_hook("post-master-failover", &post_args, &orc);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already done"), "{out}");
    assert_eq!(contents(&r1), committed);

    assert_eq!(sidecar.stop(), 0, "{}", sidecar.log());
    let _ = std::fs::remove_dir_all(&dir);
}
