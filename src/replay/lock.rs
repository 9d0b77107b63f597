//! One replay at a time on a target.
//!
//! A replay killed midway leaves its last query running on the target: the
//! server goes on through a multi-statement batch after its client is gone,
//! and commits it. A replay started beside it would read the target's GTIDs
//! before that commit and apply the same transactions again (a duplicate
//! key error at best, doubled rows in a table without one). So each replay
//! holds a named lock (`GET_LOCK`) on the session that applies; the server
//! frees it only when that session ends, after its last statement, so the
//! next replay waits for it before it reads where to start.

use std::time::{Duration, Instant};

use gapless_protocol::client::Connection;
use tracing::{info, warn};

use super::ReplayError;

/// The lock's name, the same on every target.
const NAME: &str = "gapless.replay";

/// How often a replay that waits says who it waits for.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Takes the lock on `conn`, waiting for the session that holds it to end,
/// until `until` (no limit without one).
pub(super) async fn take(conn: &mut Connection, until: Option<Instant>) -> Result<(), ReplayError> {
    let started = Instant::now();
    loop {
        // GET_LOCK takes whole seconds on MySQL; 0 only tries.
        let left = until.map(|end| end.saturating_duration_since(Instant::now()));
        let seconds = left.map_or(REPORT_EVERY, |left| left.min(REPORT_EVERY)).as_secs();
        let got = conn.query_value(&format!("SELECT GET_LOCK('{NAME}', {seconds})")).await?;
        match got.as_deref() {
            Some("1") if started.elapsed() >= Duration::from_secs(1) => {
                info!(target = %conn.addr(), waited_s = started.elapsed().as_secs(), "the other replay's session ended; going on");
                return Ok(());
            }
            Some("1") => return Ok(()),
            Some("0") => {}
            other => {
                return Err(ReplayError::Lock(format!(
                    "{}: SELECT GET_LOCK('{NAME}', {seconds}) returned {}, not 1 or 0",
                    conn.addr(),
                    other.unwrap_or("NULL")
                )))
            }
        }
        let holder = holder(conn).await;
        if seconds == 0 || until.is_some_and(|end| Instant::now() >= end) {
            return Err(ReplayError::Busy { target: conn.addr().to_string(), holder });
        }
        warn!(target = %conn.addr(), waited_s = started.elapsed().as_secs(), "waiting for {holder} to end");
    }
}

/// Says, for a dry run, when another replay holds the lock: what it shows
/// may change under it.
pub(super) async fn warn_if_held(conn: &mut Connection) {
    let held = conn.query_value(&format!("SELECT IS_USED_LOCK('{NAME}')")).await;
    if matches!(held, Ok(Some(_))) {
        let holder = holder(conn).await;
        warn!(target = %conn.addr(), "{holder} is running: the target may change under this dry run");
    }
}

/// Who holds the lock, as the target's process list shows it.
async fn holder(conn: &mut Connection) -> String {
    let id = match conn.query_value(&format!("SELECT IS_USED_LOCK('{NAME}')")).await {
        Ok(Some(id)) if id.bytes().all(|b| b.is_ascii_digit()) => id,
        // Freed since: the next GET_LOCK takes it.
        Ok(_) => return "another replay's session".to_string(),
        Err(e) => return format!("another replay's session (could not look it up: {e})"),
    };
    let sql = format!(
        "SELECT CONCAT(USER, '@', HOST, ', ', COMMAND, ' for ', TIME, ' s', \
         IFNULL(CONCAT(', ', NULLIF(STATE, '')), '')) FROM information_schema.PROCESSLIST WHERE ID = {id}"
    );
    let what = conn.query_value(&sql).await.ok().flatten().unwrap_or_default();
    format!(
        "another replay's session (connection {id}{}{what}; a replay killed midway leaves its last batch \
         running until it ends)",
        if what.is_empty() { "" } else { ": " }
    )
}
