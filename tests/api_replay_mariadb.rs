//! Replay through the sidecar's API on MariaDB: `gapless stream --ring
//! --listen` on a primary, `POST /v1/replay` onto a fresh server, followed
//! with `GET /v1/replay/N` until it succeeds; without the token nothing is
//! started.

mod common;

use std::time::Duration;

use common::server::Server;
use common::sidecar::{
    contents, create_apply_user, http, row_changes, scratch, wait_ring_holds, ApiSidecar, TABLES,
};
use common::{mariadb_here, wait_until};
use serde_json::Value;

const PASSWORD: &str = "api-replay-pw-7c3e";
const APPLY_PASSWORD: &str = "api-apply-pw-91b4";
const TOKEN: &str = "api-replay-token-0123456789abcdef";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
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

#[test]
fn a_replay_started_through_the_api_gives_the_target_every_transaction() {
    if !mariadb_here() {
        return;
    }
    let opts = ["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL"];
    let primary = Server::start("apirpprimary", 1, 25000, &opts);
    let target = Server::start("apirptarget", 2, 25200, &opts);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    create_apply_user(&target, "applier", APPLY_PASSWORD);
    let dir = scratch("api-replay");
    let sidecar =
        ApiSidecar::start(&primary, &dir, PASSWORD, TOKEN, ("applier", APPLY_PASSWORD), "apirpsidecar");
    let (api_port, ring, mut sidecar) = (sidecar.port, sidecar.ring, sidecar.streamer);

    primary.sql(TABLES);
    primary.sql(&row_changes(1, 40));
    let final_pos = primary.value("SELECT @@gtid_binlog_pos");
    let expected = contents(&primary);
    wait_ring_holds(&ring, &final_pos);

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
