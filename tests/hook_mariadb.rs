//! `gapless hook` against real MariaDB servers: a primary, a replica that
//! stopped replicating before the last transactions (the promoted one), and
//! the sidecar (`gapless stream --ring --listen` with an apply user). The
//! post-master-failover hook runs as orchestrator runs it (a process, ORC_*
//! variables set) and completes the replica; a second run with the same
//! recovery UID does nothing, nor does a graceful takeover; an unsubstituted
//! placeholder exits 2.

mod common;

use std::time::Duration;

use common::server::Server;
use common::sidecar::{
    contents, create_apply_user, free_port, http, row_changes, run_hook, scratch, wait_ring_holds,
    ApiSidecar, TABLES,
};
use common::{mariadb_here, wait_until};
use serde_json::Value;

const PASSWORD: &str = "hook-repl-pw-5d21";
const APPLY_PASSWORD: &str = "hook-apply-pw-8e07";
const TOKEN: &str = "hook-token-0123456789abcdef0123";

/// GET with the token; the status and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    http(port, "GET", path, Some(TOKEN), None)
}

/// How many replays the sidecar has run.
fn replays(port: u16) -> usize {
    let (status, body) = get(port, "/v1/replay");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).expect("json").as_array().expect("array").len()
}

#[test]
fn the_post_failover_hook_completes_the_successor_once() {
    if !mariadb_here() {
        return;
    }
    let opts = ["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL"];
    let primary = Server::start("hookprimary", 1, 26000, &opts);
    let replica = Server::start("hookreplica", 2, 26200, &opts);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    create_apply_user(&replica, "applier", APPLY_PASSWORD);
    let dir = scratch("hook");
    let state_dir = dir.join("state");
    let log_file = dir.join("hook.log");
    let token_file = dir.join("token");
    let sidecar =
        ApiSidecar::start(&primary, &dir, PASSWORD, TOKEN, ("applier", APPLY_PASSWORD), "hooksidecar");
    let (api_port, ring, mut sidecar) = (sidecar.port, sidecar.ring, sidecar.streamer);

    // The first half reaches the replica too.
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'repl', \
         MASTER_PASSWORD = '{PASSWORD}', MASTER_USE_GTID = slave_pos; START SLAVE;",
        primary.port
    ));
    primary.sql(TABLES);
    let first: String = (1..=20).map(|i| format!("INSERT INTO d.t VALUES ({i}, 'row {i}');\n")).collect();
    primary.sql(&first);
    let half = primary.value("SELECT @@gtid_binlog_pos");
    wait_until(Duration::from_secs(60), "the replica to catch up", || {
        replica.value("SELECT @@gtid_slave_pos") == half
    });
    replica.sql("STOP SLAVE;");

    // The second half only the primary (and the ring) has.
    primary.sql(&row_changes(21, 40));
    let final_pos = primary.value("SELECT @@gtid_binlog_pos");
    let expected = contents(&primary);
    wait_ring_holds(&ring, &final_pos);
    assert_ne!(contents(&replica), expected, "the replica lags");

    let sidecar_url = format!("http://127.0.0.1:{api_port}");
    let common_args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--sidecar",
            &sidecar_url,
            "--sidecar-token-file",
            &token_file.display().to_string(),
            "--state-dir",
            &state_dir.display().to_string(),
            "--log-file",
            &log_file.display().to_string(),
            "--deadline",
            "60",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let orc = |uid: &str, failure_type: &str| -> Vec<(&'static str, String)> {
        vec![
            ("ORC_FAILURE_TYPE", failure_type.to_string()),
            ("ORC_COMMAND", String::new()),
            ("ORC_FAILED_HOST", "127.0.0.1".into()),
            ("ORC_FAILED_PORT", primary.port.to_string()),
            ("ORC_FAILURE_CLUSTER_ALIAS", "shop".into()),
            ("ORC_FAILURE_CLUSTER_DOMAIN", "shop.example".into()),
            ("ORC_SUCCESSOR_HOST", "127.0.0.1".into()),
            ("ORC_SUCCESSOR_PORT", replica.port.to_string()),
            ("ORC_SUCCESSOR_BINLOG_COORDINATES", "mariadb-bin.000001:4".into()),
            ("ORC_REPLICA_HOSTS", format!("127.0.0.1:{}", replica.port)),
            ("ORC_RECOVERY_UID", uid.to_string()),
        ]
    };
    let run = |extra: &[&str], env: &[(&str, String)]| {
        let args = common_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_hook("post-master-failover", &args, env)
    };

    // The pre hook: the sidecar is ready.
    let (code, out) = run_hook(
        "pre-failover",
        &["--sidecar", &sidecar_url, "--sidecar-token-file", &token_file.display().to_string(), "--veto"],
        &orc("rec-1", "DeadMaster"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("recovery=rec-1") && out.contains("is ready"), "{out}");
    // It had the sidecar record the replica's place, which the ring covers.
    let exec = |col: &str| {
        let out = replica.client("-e 'SHOW SLAVE STATUS\\G'").output().expect("mariadb");
        let cols = String::from_utf8_lossy(&out.stdout).into_owned();
        let line =
            cols.lines().find(|l| l.trim_start().starts_with(&format!("{col}:"))).expect(col).to_string();
        line.split_once(':').expect("a value").1.trim().to_string()
    };
    let at = format!("{}:{}", exec("Relay_Master_Log_File"), exec("Exec_Master_Log_Pos"));
    let line = format!("replica 127.0.0.1:{}: replicates from 127.0.0.1:{}", replica.port, primary.port);
    assert!(out.contains(&line) && out.contains(&format!("executed {at}")), "{at}: {out}");
    assert!(out.contains("the ring covers it"), "{out}");
    let (status, body) = get(api_port, "/v1/positions/rec-1");
    assert_eq!(status, 200, "{body}");
    let recorded: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(recorded["replicas"][0]["executed"], at.as_str(), "{recorded}");
    assert_eq!(recorded["replicas"][0]["executed_gtids"], half.as_str(), "{recorded}");
    assert!(ring.join("positions/rec-1.json").exists(), "kept with the ring");

    // What orchestrator does to the promoted replica before its post hook.
    replica.sql("RESET SLAVE ALL; SET GLOBAL read_only = 0;");

    // A VIP without its interface is bad input: nothing is done.
    let (code, out) = run(&["--VipAddr", "10.0.0.100"], &orc("rec-1", "DeadMaster"));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("needs --InterFace"), "{out}");
    assert_eq!(replays(api_port), 0, "nothing started");

    // DeadMaster: completed (the VIP move is tested in failover_story.rs).
    let (code, out) = run(&[], &orc("rec-1", "DeadMaster"));
    assert_eq!(code, 0, "{out}\nsidecar log:\n{}", sidecar.log());
    assert!(out.contains("succeeded"), "{out}");
    assert!(out.contains(&format!("had executed GTIDs {half} before the promotion")), "{out}");
    assert!(out.contains("no --VipAddr: no VIP to move"), "{out}");
    assert!(out.lines().all(|l| l.contains("recovery=rec-1")), "{out}");
    assert_eq!(contents(&replica), expected, "the successor has every row");
    assert_eq!(replica.value("SELECT @@gtid_binlog_pos"), final_pos, "with the original GTIDs");
    assert_eq!(replays(api_port), 1);
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(state_dir.join("rec-1.done")).expect("record"))
            .expect("json");
    assert_eq!(record["recovery_uid"], "rec-1");
    assert_eq!(record["successor"], format!("127.0.0.1:{}", replica.port));
    assert!(record["summary"]["applied"].as_u64().expect("applied") >= 20, "{record}");
    assert_eq!(record["summary"]["last_gtid"], final_pos.as_str(), "{record}");

    // Again, same recovery: already done, nothing new.
    let (code, out) = run(&[], &orc("rec-1", "DeadMaster"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already done for recovery rec-1"), "{out}");
    assert_eq!(replays(api_port), 1, "no new replay");

    // A graceful takeover: orchestrator says DeadMaster with its command,
    // or an explicit failure type.
    let mut graceful = orc("rec-2", "DeadMaster");
    graceful[1].1 = "graceful-master-takeover".into();
    let (code, out) = run(&[], &graceful);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not a dead-primary failover") && out.contains("nothing to do"), "{out}");
    let (code, out) = run(&[], &orc("rec-3", "GracefulMasterTakeover"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not a dead-primary failover (GracefulMasterTakeover): nothing to do"), "{out}");
    assert_eq!(replays(api_port), 1, "no new replay");
    assert!(!state_dir.join("rec-2.done").exists() && !state_dir.join("rec-3.done").exists());

    // An unsubstituted placeholder: exit 2, naming the flag.
    let (code, out) = run(&["--successor-host", "{successorHost}"], &orc("rec-4", "DeadMaster"));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--successor-host") && out.contains("{successorHost}"), "{out}");
    assert_eq!(replays(api_port), 1, "no new replay");
    assert!(!state_dir.join("rec-4.done").exists());

    // Every step was logged to the file too, with its recovery UID.
    let logged = std::fs::read_to_string(&log_file).expect("log file");
    eprintln!("hook log:\n{logged}");
    for uid in ["rec-1", "rec-2", "rec-3", "rec-4"] {
        assert!(logged.contains(&format!("recovery={uid}:")), "{uid}: {logged}");
    }
    assert!(logged.contains("already done for recovery rec-1"), "{logged}");

    // The pre hook against no sidecar: a warning, or a veto.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let (code, out) =
        run_hook("pre-failover", &["--sidecar", &nobody, "--deadline", "5"], &orc("rec-5", "DeadMaster"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("WARN") && out.contains("not ready"), "{out}");
    let (code, out) = run_hook(
        "pre-failover",
        &["--sidecar", &nobody, "--deadline", "5", "--veto"],
        &orc("rec-5", "DeadMaster"),
    );
    assert_eq!(code, 1, "{out}");

    assert_eq!(sidecar.stop(), 0, "{}", sidecar.log());
    let _ = std::fs::remove_dir_all(&dir);
}
