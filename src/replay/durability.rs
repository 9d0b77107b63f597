//! `--relaxed-durability`: the target commits without syncing while the
//! replay runs, then its settings are put back and what was applied is
//! made durable.
//!
//! A replay applies its transactions one after the other on one
//! connection, so with `innodb_flush_log_at_trx_commit=1` (and
//! `sync_binlog=1`) every one of them waits for a sync of the disk: on
//! most disks that, not the SQL, is what bounds the speed of a failover's
//! completion. For the duration of the replay this sets
//! `innodb_flush_log_at_trx_commit=2` (written to the OS at each commit,
//! synced about once a second) and `sync_binlog=0`. A crash of mysqld
//! then loses nothing; a crash of the machine during the replay can lose
//! the last second of what was applied, which a second replay applies
//! again from the ring (by GTID, nothing twice). At the end the old values
//! are set again, and `FLUSH LOCAL ENGINE LOGS` (InnoDB's redo log) and,
//! when the binlog was synced before, `FLUSH LOCAL BINARY LOGS` (a new
//! binlog file: the finished one is synced) make it all durable. LOCAL
//! keeps the FLUSH out of the binlog.
//!
//! These are global settings: other sessions on the target commit the
//! same way meanwhile. If gapless is killed during the replay they stay
//! relaxed until set back (or mysqld restarts); the log says so at the
//! start.

use gapless_protocol::client::{ConnectOptions, Connection};
use tracing::{info, warn};

use super::ReplayError;

/// The target's durability settings before the replay relaxed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relaxed {
    /// `innodb_flush_log_at_trx_commit` before.
    pub flush_log_at_trx_commit: String,
    /// `sync_binlog` before.
    pub sync_binlog: String,
}

impl Relaxed {
    /// The statements that put the settings back and make what was
    /// applied durable, in order.
    pub fn restore_statements(&self) -> Vec<String> {
        let mut sql = vec![
            format!("SET GLOBAL innodb_flush_log_at_trx_commit = {}", self.flush_log_at_trx_commit),
            format!("SET GLOBAL sync_binlog = {}", self.sync_binlog),
            // LOCAL: a FLUSH is otherwise written to the binlog, with the
            // GTID the session set last: a transaction of the old primary's
            // that it never had.
            "FLUSH LOCAL ENGINE LOGS".to_string(),
        ];
        if self.sync_binlog != "0" {
            sql.push("FLUSH LOCAL BINARY LOGS".to_string());
        }
        sql
    }
}

/// A setting as read back: digits only (it goes into a SET statement).
fn setting(conn_addr: &str, name: &str, value: Option<String>) -> Result<String, ReplayError> {
    match value {
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        other => Err(ReplayError::Durability(format!(
            "{conn_addr}: @@GLOBAL.{name} is {other:?}; cannot relax durability safely"
        ))),
    }
}

/// Relaxes the target's durability; returns what to put back.
pub async fn relax(conn: &mut Connection) -> Result<Relaxed, ReplayError> {
    let addr = conn.addr().to_string();
    let flush = conn.query_value("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit").await?;
    let sync = conn.query_value("SELECT @@GLOBAL.sync_binlog").await?;
    let relaxed = Relaxed {
        flush_log_at_trx_commit: setting(&addr, "innodb_flush_log_at_trx_commit", flush)?,
        sync_binlog: setting(&addr, "sync_binlog", sync)?,
    };
    conn.execute("SET GLOBAL innodb_flush_log_at_trx_commit = 2").await?;
    conn.execute("SET GLOBAL sync_binlog = 0").await?;
    info!(
        target = %addr,
        was_flush_log_at_trx_commit = %relaxed.flush_log_at_trx_commit,
        was_sync_binlog = %relaxed.sync_binlog,
        "--relaxed-durability: innodb_flush_log_at_trx_commit = 2 and sync_binlog = 0 on the target until the \
         replay ends (if gapless is killed meanwhile, set them back by hand)"
    );
    Ok(relaxed)
}

/// Puts the settings back and makes what was applied durable, on `conn`
/// or, when that one is gone, on a new connection.
pub async fn restore(
    conn: Option<&mut Connection>,
    options: &ConnectOptions,
    relaxed: &Relaxed,
) -> Result<(), ReplayError> {
    let statements = relaxed.restore_statements();
    if let Some(c) = conn {
        match run_all(c, &statements).await {
            Ok(()) => return done(options, relaxed),
            Err(e) => {
                warn!(target = %options.addr(), "restoring the durability settings: {e}; trying a new connection")
            }
        }
    }
    let result = async {
        let mut c = Connection::connect(options).await?;
        run_all(&mut c, &statements).await?;
        c.close().await;
        Ok::<_, gapless_protocol::client::ClientError>(())
    }
    .await;
    match result {
        Ok(()) => done(options, relaxed),
        Err(e) => Err(ReplayError::Durability(format!(
            "{}: could not set innodb_flush_log_at_trx_commit back to {} and sync_binlog to {}: {e}; \
             set them by hand (a restart of mysqld also does)",
            options.addr(),
            relaxed.flush_log_at_trx_commit,
            relaxed.sync_binlog
        ))),
    }
}

async fn run_all(
    conn: &mut Connection,
    statements: &[String],
) -> Result<(), gapless_protocol::client::ClientError> {
    for sql in statements {
        conn.execute(sql).await?;
    }
    Ok(())
}

fn done(options: &ConnectOptions, relaxed: &Relaxed) -> Result<(), ReplayError> {
    info!(
        target = %options.addr(),
        innodb_flush_log_at_trx_commit = %relaxed.flush_log_at_trx_commit,
        sync_binlog = %relaxed.sync_binlog,
        "durability settings restored; the applied transactions are flushed to disk"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restoring_syncs_the_binlog_only_when_it_was_synced() {
        let synced = Relaxed { flush_log_at_trx_commit: "1".into(), sync_binlog: "1".into() };
        assert_eq!(
            synced.restore_statements(),
            [
                "SET GLOBAL innodb_flush_log_at_trx_commit = 1",
                "SET GLOBAL sync_binlog = 1",
                "FLUSH LOCAL ENGINE LOGS",
                "FLUSH LOCAL BINARY LOGS"
            ]
        );
        let unsynced = Relaxed { flush_log_at_trx_commit: "1".into(), sync_binlog: "0".into() };
        assert_eq!(unsynced.restore_statements().last().map(String::as_str), Some("FLUSH LOCAL ENGINE LOGS"));
    }

    #[test]
    fn settings_must_be_numbers() {
        assert_eq!(setting("t:1", "sync_binlog", Some("100".into())).unwrap(), "100");
        for bad in [None, Some(String::new()), Some("1; DROP TABLE x".into()), Some("-1".into())] {
            let e = setting("t:1", "sync_binlog", bad).unwrap_err().to_string();
            assert!(e.contains("t:1") && e.contains("sync_binlog"), "{e}");
        }
    }
}
