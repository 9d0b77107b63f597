//! What the topology, precheck and switchover tests share: running
//! `gapless`, wiring replication between test servers, waiting for a
//! replica to catch up, reading its replication status, and the metadata
//! database (datacenters of each instance).

use std::process::Output;
use std::time::Duration;

use super::server::Server;
use super::wait_until;

/// `127.0.0.1:PORT` of a server, as discovery names it.
pub fn addr(s: &Server) -> String {
    format!("127.0.0.1:{}", s.port)
}

/// Runs `gapless ARGS` (no password from the environment); the exit code,
/// stdout and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let Output { status, stdout, stderr } =
        super::gapless().args(args).env_remove("GAPLESS_PASSWORD").output().expect("gapless");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// One field of a replica's `SHOW SLAVE STATUS` (empty when it has none).
pub fn slave_status(server: &Server, field: &str) -> String {
    let out = server.client("-e 'SHOW SLAVE STATUS\\G'").output().expect("mariadb");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.trim_start().starts_with(&format!("{field}:"))).unwrap_or("");
    line.split_once(':').map_or("", |(_, v)| v).trim().to_string()
}

/// Waits until `replica` has executed everything `primary` wrote, with
/// both threads running.
pub fn caught_up(primary: &Server, replica: &Server) {
    let target = primary.value("SELECT @@gtid_binlog_pos");
    wait_until(Duration::from_secs(60), &format!("{} to catch up", replica.name), || {
        replica.value("SELECT @@gtid_slave_pos") == target
            && slave_status(replica, "Slave_SQL_Running") == "Yes"
            && slave_status(replica, "Slave_IO_Running") == "Yes"
    });
}

/// Makes `replica` replicate from `source` by GTID (`slave_pos`) as
/// `user`, and starts it.
pub fn replicate(replica: &Server, source: &Server, user: &str, password: &str) {
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = '{user}', \
         MASTER_PASSWORD = '{password}', MASTER_USE_GTID = slave_pos; START SLAVE;",
        source.port
    ));
}

/// The metadata database on `meta`: `cmdb.instances` (hostname, port,
/// datacenter, vip, alias) with one row per `(server, datacenter)`, and a
/// `cmdb_reader` user that may read it.
pub fn cmdb(meta: &Server, rows: &[(&Server, &str)], vip: &str, alias: &str, reader_password: &str) {
    let rows: Vec<String> =
        rows.iter().map(|(s, dc)| format!("('127.0.0.1', {}, '{dc}', '{vip}', '{alias}')", s.port)).collect();
    meta.sql(&format!(
        "CREATE DATABASE cmdb; \
         CREATE TABLE cmdb.instances (hostname VARCHAR(255), port INT, datacenter VARCHAR(16), \
           vip VARCHAR(64), alias VARCHAR(64), PRIMARY KEY (hostname, port)); \
         INSERT INTO cmdb.instances VALUES {}; \
         CREATE USER 'cmdb_reader'@'%' IDENTIFIED BY '{reader_password}'; \
         GRANT SELECT ON cmdb.* TO 'cmdb_reader'@'%';",
        rows.join(", ")
    ));
}
