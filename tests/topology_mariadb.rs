//! `gapless topology` and `gapless precheck` against real MariaDB servers:
//! a primary with three replicas in two datacenters (dc1: the primary and
//! r1; dc2: r2 and r3), the datacenters, VIP and alias in a metadata
//! MariaDB read through the three kinds of query template, and a sidecar
//! (`gapless stream --ring --listen`) registered with the primary.
//!
//! One world serves every case, in order: the topology (table and JSON,
//! discovered from a replica as the seed), a passing precheck, then each
//! broken condition on its own, which must fail exactly its own check and
//! exit 1, restored before the next. The errant transaction comes last:
//! with gtid_strict_mode it cannot be undone without rebuilding r2.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::server::{start_all, Server};
use common::sidecar::{http, private_file, scratch, ApiSidecar};
use common::topology::{addr, caught_up, cmdb, replicate, run, slave_status};
use common::{mariadb_here, wait_until};
use serde_json::Value;

const REPL_PASSWORD: &str = "topo-repl-pw-41c7";
const CHECK_PASSWORD: &str = "topo-check-pw-9a2e";
const META_PASSWORD: &str = "topo-meta-pw-07bd";
const APPLY_PASSWORD: &str = "topo-apply-pw-5f18";
const TOKEN: &str = "topo-token-0123456789abcdef01234";

struct World {
    primary: Server,
    r1: Server,
    r2: Server,
    r3: Server,
    _meta: Server,
    sidecar: ApiSidecar,
    config: PathBuf,
    dir: PathBuf,
}

/// Starts the servers side by side.
fn start_servers() -> (Server, Server, Server, Server, Server) {
    let base = ["--report-host=127.0.0.1", "--log-slave-updates", "--gtid-strict-mode=ON"];
    let replica = [&base[..], &["--read-only"]].concat();
    // MariaDB lists a replica without report_host too (its address, its
    // own port): r3 goes without.
    let bare = ["--log-slave-updates", "--gtid-strict-mode=ON", "--read-only"];
    let mut all = start_all(&[
        ("topoprimary", 1, 28000, &base),
        ("topor1", 2, 28100, &replica),
        ("topor2", 3, 28200, &replica),
        ("topor3", 4, 28300, &bare),
        ("topometa", 9, 28800, &[]),
    ])
    .into_iter();
    let mut next = || all.next().expect("five servers");
    (next(), next(), next(), next(), next())
}

/// The cluster file: `shop`, and `shopdc` that keeps promotions in the
/// primary's datacenter while ruling r1 out.
fn cluster_file(w: &World, meta_port: u16, api_port: u16) -> String {
    let cluster = |name: &str, extra: &str| {
        format!(
            "[cluster.{name}]\n\
             seed = \"127.0.0.1:{seed}\"\n\
             user = \"check\"\n\
             password_file = \"{pw}\"\n\
             interface = \"lo\"\n\
             sidecar = \"http://127.0.0.1:{api_port}\"\n\
             sidecar_token_file = \"{token}\"\n\
             max_lag_seconds = 30\n\
             {extra}\n",
            seed = w.r2.port,
            pw = w.dir.join("check-password").display(),
            token = w.dir.join("token").display(),
        )
    };
    format!(
        "[meta_db]\n\
         host = \"127.0.0.1\"\n\
         port = {meta_port}\n\
         name = \"cmdb\"\n\
         user = \"cmdb_reader\"\n\
         password_file = \"{meta_pw}\"\n\
         ssl_mode = \"DISABLED\"\n\
         datacenter_query = \"SELECT datacenter FROM instances WHERE hostname = ? AND port = ?\"\n\
         DetectClusterDomainQuery = \"SELECT vip FROM instances WHERE hostname = :host AND port = :port\"\n\
         DetectClusterAliasQuery = \"SELECT alias FROM instances WHERE hostname = '{{host}}' AND port = {{port}}\"\n\n\
         {shop}\n{shopdc}",
        meta_pw = w.dir.join("meta-password").display(),
        shop = cluster("shop", ""),
        shopdc = cluster(
            "shopdc",
            &format!("PreventCrossDataCenterMasterFailover = true\n[cluster.shopdc.promotion]\n\"127.0.0.1:{}\" = \"must_not\"", w.r1.port)
        ),
    )
}

fn world() -> World {
    let (primary, r1, r2, r3, meta) = start_servers();
    let dir = scratch("topology");
    private_file(&dir.join("check-password"), &format!("{CHECK_PASSWORD}\n"));
    private_file(&dir.join("meta-password"), &format!("{META_PASSWORD}\n"));

    // The sidecar's user is the primary's alone; the check user goes
    // through the binlog to every replica.
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{REPL_PASSWORD}'"));
    primary.sql(&format!(
        "CREATE USER 'check'@'%' IDENTIFIED BY '{CHECK_PASSWORD}'; \
         GRANT PROCESS, SLAVE MONITOR, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.* TO 'check'@'%'; \
         CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(32)); \
         INSERT INTO d.t VALUES (1, 'one');"
    ));
    for r in [&r1, &r2, &r3] {
        replicate(r, &primary, "repl", REPL_PASSWORD);
    }
    cmdb(
        &meta,
        &[(&primary, "dc1"), (&r1, "dc1"), (&r2, "dc2"), (&r3, "dc2")],
        "127.0.0.1",
        "shop",
        META_PASSWORD,
    );
    let sidecar =
        ApiSidecar::start(&primary, &dir, REPL_PASSWORD, TOKEN, ("applier", APPLY_PASSWORD), "toposidecar");
    let mut w = World { primary, r1, r2, r3, _meta: meta, sidecar, config: PathBuf::new(), dir };
    let text = cluster_file(&w, w._meta.port, w.sidecar.port);
    w.config = w.dir.join("clusters.toml");
    std::fs::write(&w.config, text).expect("cluster file");
    for r in [&w.r1, &w.r2, &w.r3] {
        caught_up(&w.primary, r);
    }
    // The sidecar has registered with the primary and holds its binlog.
    wait_until(Duration::from_secs(60), "the sidecar to catch up", || {
        let (status, body) = http(w.sidecar.port, "GET", "/status", Some(TOKEN), None);
        let doc: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        status == 200
            && doc["connected"] == true
            && doc["lag"]["seconds"] == 0
            && !doc["ring"]["last_durable"].is_null()
            && w.primary.sql("SHOW SLAVE HOSTS").contains("gapless@")
    });
    w
}

fn config(w: &World) -> String {
    w.config.display().to_string()
}

/// `gapless precheck --json` on `cluster`: the exit code, the names of the
/// failed checks, and the report.
fn precheck(w: &World, cluster: &str, extra: &[&str]) -> (i32, Vec<String>, Value) {
    let config = config(w);
    let args = [&["precheck", "--cluster", cluster, "--config", &config, "--json"][..], extra].concat();
    let (code, out, err) = run(&args);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let failed = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect();
    (code, failed, report)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"].as_array().expect("checks").iter().find(|c| c["name"] == name).expect(name)
}

/// Expects exactly `name` to fail, with exit 1; returns that check.
fn only_fails(w: &World, cluster: &str, extra: &[&str], name: &str) -> Value {
    let (code, failed, report) = precheck(w, cluster, extra);
    assert_eq!(failed, [name], "{report:#}");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["passed"], false);
    check(&report, name).clone()
}

fn the_topology(w: &World) {
    let config = config(w);
    let (code, out, err) = run(&["topology", "--cluster", "shop", "--config", &config]);
    assert_eq!(code, 0, "{out}\n{err}");
    eprintln!("{out}");
    let lines: Vec<&str> = out.lines().collect();
    let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert!(lines[0].starts_with("INSTANCE") && lines[0].contains("DC"), "{out}");
    // Primary first, the replicas by port under it, the sidecar last.
    let first = cells(lines[1]);
    assert_eq!(
        (first[0].as_str(), first[1].as_str(), first[4].as_str()),
        (addr(&w.primary).as_str(), "primary", "rw")
    );
    assert_eq!(first.last().map(String::as_str), Some("dc1"));
    for (line, (server, dc)) in lines[2..5].iter().zip([(&w.r1, "dc1"), (&w.r2, "dc2"), (&w.r3, "dc2")]) {
        let c = cells(line);
        assert_eq!(&c[..3], ["+", addr(server).as_str(), "replica"], "{out}");
        assert_eq!(&c[5..], ["ro", "ROW", "strict,slave_pos", "Yes/Yes", "0s", dc], "{out}");
    }
    let side = cells(lines[5]);
    assert!(
        side[1].starts_with("gapless@") && side[2] == "sidecar",
        "the sidecar is no broken replica: {out}"
    );
    assert_eq!(lines.len(), 6, "nothing unreadable, no notes: {out}");

    let (code, out, err) = run(&["topology", "--cluster", "shop", "--config", &config, "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("json");
    let t = &doc["topology"];
    assert_eq!(t["seed"], addr(&w.r2), "discovery started at a replica");
    assert_eq!(t["primary"], addr(&w.primary), "and climbed to the primary");
    let instances = t["instances"].as_array().expect("instances");
    assert_eq!(instances.len(), 5, "{t:#}");
    for (i, (server, role, dc, id)) in [
        (&w.primary, "primary", "dc1", 1),
        (&w.r1, "replica", "dc1", 2),
        (&w.r2, "replica", "dc2", 3),
        (&w.r3, "replica", "dc2", 4),
    ]
    .into_iter()
    .enumerate()
    {
        let inst = &instances[i];
        assert_eq!(inst["port"], server.port, "{inst:#}");
        assert_eq!((inst["role"].as_str(), inst["datacenter"].as_str()), (Some(role), Some(dc)), "{inst:#}");
        assert_eq!(inst["datacenter_from"], "meta_db");
        assert_eq!(inst["server_id"], id);
        assert_eq!(inst["flavor"], "mariadb");
        assert_eq!(inst["binlog_format"], "ROW");
        assert!(inst["error"].is_null(), "{inst:#}");
        if role == "replica" {
            assert_eq!(inst["parent"], addr(&w.primary));
            assert_eq!(inst["replication"]["sql_running"], "Yes");
            assert_eq!(inst["replication"]["source_port"], w.primary.port);
        }
    }
    let side = &instances[4];
    assert_eq!(
        (side["role"].as_str(), side["parent"].as_str()),
        (Some("sidecar"), Some(addr(&w.primary).as_str()))
    );
    let status = &doc["sidecar"]["status"];
    assert_eq!(side["server_id"], status["server_id"], "the sidecar's own registration: {doc:#}");
    assert_eq!(doc["alias"], "shop", "the alias template with the earlier tool's {{host}} placeholders");
    assert_eq!(doc["vip"]["vip"], "127.0.0.1");
}

fn healthy(w: &World) {
    let (code, failed, report) = precheck(w, "shop", &[]);
    assert!(failed.is_empty(), "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(report["passed"], true);
    for name in ["metadata", "vip", "sidecar"] {
        let c = check(&report, name);
        assert_eq!((c["required"].as_bool(), c["passed"].as_bool()), (Some(true), Some(true)), "{c:#}");
    }
    assert_eq!(
        check(&report, "metadata")["value"],
        "4 datacenters, cluster domain 127.0.0.1, cluster alias shop"
    );
    assert_eq!(check(&report, "vip")["value"], "127.0.0.1 on the primary");
    // Candidates: all valid, the primary's datacenter first.
    let candidates = report["candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), 3);
    assert!(candidates.iter().all(|c| c["ok"] == true), "{candidates:#?}");
    assert_eq!(candidates[0]["instance"], addr(&w.r1));
    // The text form, exit code included.
    let config = config(w);
    let (code, out, _) = run(&["precheck", "--cluster", "shop", "--config", &config]);
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().next().unwrap_or("").starts_with("CHECK"), "{out}");
    assert!(out.ends_with("precheck passed\n"), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains(" PASS ")).count(), 14, "{out}");
}

fn stopped_sql_thread(w: &World) {
    w.r3.sql("STOP SLAVE SQL_THREAD;");
    let c = only_fails(w, "shop", &[], "replication-threads");
    assert_eq!(c["detail"], format!("{} IO/SQL Yes/No", addr(&w.r3)));
    w.r3.sql("START SLAVE SQL_THREAD;");
    caught_up(&w.primary, &w.r3);
}

fn lag(w: &World) {
    // A deliberate delay: r3's SQL thread holds each transaction for five
    // minutes, so its lag grows second by second from the next write.
    w.r3.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 300; START SLAVE;");
    w.primary.sql("INSERT INTO d.t VALUES (2, 'two');");
    wait_until(Duration::from_secs(30), "r3 to lag 3 s", || {
        slave_status(&w.r3, "Seconds_Behind_Master").parse::<u64>().is_ok_and(|s| s >= 3)
    });
    let c = only_fails(w, "shop", &["--max-lag", "2"], "replication-lag");
    let detail = c["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with(&format!("{} ", addr(&w.r3))) && detail.contains("(MASTER_DELAY 300)"),
        "{c:#}"
    );
    // The file's limit (30 s) is not reached.
    let (code, failed, report) = precheck(w, "shop", &[]);
    assert!(failed.is_empty() && code == 0, "{report:#}");
    w.r3.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE;");
    caught_up(&w.primary, &w.r3);
}

fn statement_format(w: &World) {
    w.r2.sql("SET GLOBAL binlog_format = 'STATEMENT';");
    let c = only_fails(w, "shop", &[], "binlog-format");
    assert_eq!(c["detail"], format!("{} STATEMENT", addr(&w.r2)));
    w.r2.sql("SET GLOBAL binlog_format = 'ROW';");
}

fn no_same_dc_candidate(w: &World) {
    let c = only_fails(w, "shopdc", &[], "candidate");
    assert_eq!(c["value"], "none");
    let detail = c["detail"].as_str().expect("detail");
    assert!(detail.contains(&format!("{}: its promotion rule is must_not", addr(&w.r1))), "{detail}");
    for r in [&w.r2, &w.r3] {
        assert!(
            detail.contains(&format!("{}: in dc2, not in the primary's dc1 (prevent_cross_dc)", addr(r))),
            "{detail}"
        );
    }
}

fn duplicate_server_id(w: &World) {
    // r3 takes r2's id (3); its running connection keeps the id it
    // registered with, so replication goes on.
    w.r3.sql("SET GLOBAL server_id = 3;");
    let c = only_fails(w, "shop", &[], "server-ids");
    assert_eq!(c["detail"], format!("3 on {}, {}", addr(&w.r2), addr(&w.r3)));
    w.r3.sql("SET GLOBAL server_id = 4;");
}

fn errant_transaction(w: &World) {
    // A write on a replica through its binlog (root may write despite
    // read_only): a GTID of r2's own server id the primary never had.
    w.r2.sql("INSERT INTO d.t VALUES (1000, 'only on r2');");
    let gtid = w.r2.value("SELECT @@gtid_binlog_pos");
    assert!(gtid.starts_with("0-3-"), "{gtid}");
    let c = only_fails(w, "shop", &[], "errant-gtids");
    assert_eq!(c["detail"], format!("{} {gtid}", addr(&w.r2)));
}

#[test]
fn topology_and_precheck_on_a_real_cluster() {
    if !mariadb_here() {
        return;
    }
    let mut w = world();
    the_topology(&w);
    healthy(&w);
    stopped_sql_thread(&w);
    lag(&w);
    statement_format(&w);
    no_same_dc_candidate(&w);
    duplicate_server_id(&w);
    healthy(&w);
    errant_transaction(&w);

    // Usage and discovery failures: 2 for a bad cluster name, 1 for a
    // seed nobody answers on (named in the message).
    let config = config(&w);
    let (code, _, err) = run(&["precheck", "--cluster", "nope", "--config", &config]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("[cluster.nope]") && err.contains("shop, shopdc"), "{err}");
    let nobody = common::sidecar::free_port();
    let (code, _, err) = run(&["topology", "--seed", &format!("127.0.0.1:{nobody}"), "--user", "check"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("seed 127.0.0.1:{nobody}")), "{err}");
    let (code, _, err) = run(&["precheck", "--seed", &format!("127.0.0.1:{nobody}"), "--user", "check"]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains(CHECK_PASSWORD));

    assert_eq!(w.sidecar.streamer.stop(), 0, "{}", w.sidecar.streamer.log());
    remove(&w.dir);
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
