//! XA transactions prepared on the primary.
//!
//! MySQL and MariaDB log an XA transaction's rows at `XA PREPARE`, as a
//! group of its own (`XA START` … `XA END`, then an XA_PREPARE event), and
//! its `XA COMMIT` or `XA ROLLBACK` later as another. A replica applies the
//! first and keeps the transaction prepared, for the transaction manager
//! to finish; replay does the same.
//!
//! A MariaDB session that prepared an XA transaction can do nothing else
//! until it ends (ERROR 1399, XAER_RMFAIL); when it ends, the server keeps
//! the transaction prepared (10.5 and later). So on MariaDB each such group
//! is applied on a session of its own, which is then closed, while the
//! replay's session keeps its lock. MySQL detaches a prepared transaction
//! from its session by itself.

use std::time::{Duration, Instant};

use gapless_decoder::header::HEADER_LEN;
use gapless_decoder::EventType;
use gapless_protocol::client::{ClientError, ConnectOptions, Connection};

/// Whether a unit's events end in an XA PREPARE that leaves the
/// transaction prepared (not MySQL's `XA COMMIT … ONE PHASE`, which logs
/// the same event).
pub(super) fn leaves_prepared(events: &[(u64, &[u8])]) -> bool {
    let Some(&(_, last)) = events.last() else { return false };
    // The event's body starts with its one_phase byte.
    last.get(4) == Some(&EventType::XA_PREPARE.0) && last.get(HEADER_LEN) == Some(&0)
}

/// Runs `statements` (a prepared XA group) on a session of its own and
/// closes it, then waits, on `main`, until the server has ended that
/// session: until then the transaction is still tied to it, and an
/// `XA COMMIT` of it would not find it.
pub(super) async fn apply_apart(
    options: &ConnectOptions,
    main: &mut Connection,
    statements: impl IntoIterator<Item = String>,
) -> Result<(), ClientError> {
    let mut side = Connection::connect(options).await?;
    let id = side.query_value("SELECT CONNECTION_ID()").await?.unwrap_or_default();
    let mut result = Ok(());
    for sql in statements {
        result = side.query(&sql).await.map(drop);
        if result.is_err() {
            break;
        }
    }
    // Closed even after an error: a transaction not prepared yet is rolled
    // back when its session ends.
    side.close().await;
    result?;
    let gone = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}");
    let started = Instant::now();
    while main.query_value(&gone).await?.as_deref() != Some("0") && started.elapsed() < SESSION_END {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// How long a closed session may take to end on the server.
const SESSION_END: Duration = Duration::from_secs(30);
