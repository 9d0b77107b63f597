//! `gapless replay`: apply onto a promoted replica the transactions the
//! ring holds and it has not executed, so a failover loses nothing.
//!
//! The rules (docs/replay.md):
//! - whole transactions only: the ring reader hands out only units whose
//!   commit it holds, so a transaction cut off by the primary's death is
//!   never applied;
//! - what the target has executed is read from the target itself (its
//!   GTID state) or given; a transaction in it is skipped, so a second run
//!   applies nothing;
//! - each transaction keeps its original GTID and goes through the
//!   target's binlog (never `sql_log_bin=0`), all or nothing: it is sent in
//!   multi-statement queries (several transactions in one, or a large one
//!   across several, each within the target's `max_allowed_packet`), and
//!   the first error rolls it back and stops the run, naming the
//!   transaction and the server's error;
//! - the ring must cover what the target lacks: a gap between the target's
//!   position and the ring's first transaction of a domain stops the run
//!   before anything is applied.

mod binlog;
pub mod durability;
mod lock;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gapless_decoder::gtid::{Gtid, GtidSet, MariaGtid, MariaGtidList};
use gapless_protocol::client::{host_port, ClientError, ConnectOptions, Connection};
use serde::Serialize;
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::render::sql::{GeneratedColumns, SharedColumnNames, SharedGenerated, SqlRender};
use crate::render::text::push_quoted;
use crate::ring::index::cmp_coords;
use crate::ring::record::{event_type, CRC32, RESENT};
use crate::ring::{Location, RingError, RingReader, Unit};
use crate::stream::{Received, RenderSink, SharedBuf, Sink, SinkError};
use gapless_decoder::EventType;

/// What the target has executed, as GTIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    /// MariaDB: the last GTID of each domain.
    Maria(MariaGtidList),
    /// MySQL: the executed set.
    Mysql(GtidSet),
}

impl Executed {
    /// Nothing executed (or nothing known).
    fn is_empty(&self) -> bool {
        match self {
            Executed::Maria(list) => list.is_empty(),
            Executed::Mysql(set) => set.is_empty(),
        }
    }

    /// Whether the transaction with this GTID text was executed.
    fn contains(&self, gtid: &str) -> Option<bool> {
        match self {
            Executed::Maria(list) => gtid.parse::<MariaGtid>().ok().map(|g| list.contains(&g)),
            Executed::Mysql(set) => gtid.parse::<Gtid>().ok().map(|g| set.contains(&g)),
        }
    }
}

impl std::fmt::Display for Executed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Executed::Maria(list) => write!(f, "{list}"),
            Executed::Mysql(set) => write!(f, "{set}"),
        }
    }
}

/// Where the replay starts.
#[derive(Debug, Clone)]
pub enum ReplayStart {
    /// After this GTID position (what the target has executed).
    AfterGtid(Executed),
    /// After this place in the old primary's binlog (what the target had
    /// executed when it was promoted; for set-ups without GTIDs).
    AfterPosition {
        /// Binlog file of the old primary.
        file: String,
        /// Position in it.
        position: u64,
    },
    /// Read it from the target: its executed GTIDs, or, when it has none,
    /// its replication coordinates (`Relay_Master_Log_File`,
    /// `Exec_Master_Log_Pos`) while they are still there.
    Auto,
}

/// What the target has, as the run decides what to apply.
#[derive(Debug, Clone, Default)]
struct Have {
    /// Its executed GTIDs, when known.
    executed: Option<Executed>,
    /// Everything before this place of the old primary's binlog.
    after: Option<(String, u64)>,
}

/// How transactions are sent to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// As SQL statements (INSERT, UPDATE, DELETE; DDL as written).
    #[default]
    Sql,
    /// Row events as `BINLOG '…'` statements, byte for byte.
    Binlog,
}

/// A checked replay plan.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    /// The ring directory.
    pub ring: PathBuf,
    /// The promoted replica.
    pub target: ConnectOptions,
    /// Where to start.
    pub start: ReplayStart,
    /// How transactions are sent.
    pub mode: Mode,
    /// Print the SQL instead of running it.
    pub dry_run: bool,
    /// Stop (and fail) once this much time has passed.
    pub deadline: Option<Duration>,
    /// When given, set to the number of transactions applied so far as
    /// they are (for a caller that shows the progress).
    pub progress: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
    /// Commit without syncing on the target while the replay runs
    /// ([`durability`]); restored, and made durable, at the end.
    pub relaxed_durability: bool,
}

/// One transaction applied (or, with `--dry-run`, to apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Its GTID.
    pub gtid: String,
    /// The binlog file of the old primary.
    pub file: String,
    /// Its first event's position.
    pub start: u64,
    /// The end of its last event.
    pub end: u64,
    /// Row events in it.
    pub row_events: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The target's executed GTIDs at the start ("" when not known).
    pub target_executed: String,
    /// The old primary's binlog place the run started after, if given or
    /// read from the target's replication coordinates.
    pub after_position: Option<String>,
    /// Transactions before that place, not applied.
    pub skipped_before: u64,
    /// Transactions applied, in order.
    pub applied: Vec<Applied>,
    /// Transactions the target had already executed.
    pub skipped_executed: u64,
    /// Events outside transactions (rotations, checkpoints, format copies),
    /// which are not applied.
    pub skipped_other: u64,
    /// XA transactions prepared on the target when the run ended (`XA
    /// RECOVER`), as `X'gtrid',X'bqual',formatID`: as on the old primary,
    /// they wait for their transaction manager's XA COMMIT or XA ROLLBACK,
    /// and hold their locks until then.
    pub xa_prepared: Vec<String>,
    /// Only printed, not run.
    pub dry_run: bool,
    /// Seconds taken.
    pub seconds: f64,
}

/// Why a replay stopped.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The ring could not be read.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// Talking to the target failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A transaction failed on the target; it was rolled back.
    #[error(
        "transaction {gtid} ({file}:{start}) failed on {target} and was rolled back{}: {error}; \
         {applied} transaction(s) were applied before it",
        event.as_deref().map(|e| format!(", at its {e}")).unwrap_or_default()
    )]
    Apply {
        /// Its GTID.
        gtid: String,
        /// The event whose statement failed, when known.
        event: Option<String>,
        /// Binlog file.
        file: String,
        /// Position of its first event.
        start: u64,
        /// The target.
        target: String,
        /// The server's error.
        error: Box<ClientError>,
        /// How many were applied before it.
        applied: usize,
    },
    /// A transaction could not be turned into SQL.
    #[error("transaction {gtid} ({file}:{start}): {error}")]
    Render {
        /// Its GTID.
        gtid: String,
        /// Binlog file.
        file: String,
        /// Position.
        start: u64,
        /// What failed.
        error: Box<SinkError>,
    },
    /// A statement of a transaction is longer than the target takes in
    /// one query; nothing of the transaction was applied.
    #[error(transparent)]
    TooLarge(Box<TooLarge>),
    /// The ring does not hold what the target lacks.
    #[error(
        "the ring does not cover what {target} lacks: it has executed {executed} in domain/source \
         '{domain}', but the ring's first transaction there is {first}; the ones between are not in the ring"
    )]
    Gap {
        /// The target.
        target: String,
        /// Its last executed GTID of that source.
        executed: String,
        /// The GTID source (MariaDB domain, MySQL uuid).
        domain: String,
        /// The ring's first GTID for it that the target lacks.
        first: String,
    },
    /// The ring starts after the target's place in the old primary's binlog.
    #[error(
        "the ring does not cover what {target} lacks: it had executed the old primary's binlog up to \
         {position}, but the ring starts at {first}; the transactions between are not in the ring"
    )]
    PositionGap {
        /// The target.
        target: String,
        /// Its place.
        position: String,
        /// The ring's first transaction.
        first: String,
    },
    /// No start point could be worked out.
    #[error("{0}")]
    NoStart(String),
    /// A transaction changes a table whose row changes only `BINLOG`
    /// statements apply as a replica does (triggers, system versioning) and
    /// also holds statements, which `BINLOG` cannot carry.
    #[error(
        "transaction {gtid} ({file}:{start}) changes {table} on {target}: only BINLOG statements apply its \
         rows as a replica would (as SQL, triggers would write again what the binlog already holds, and a \
         system-versioned table's period columns cannot be set), but it also holds statements, which BINLOG \
         cannot carry. Nothing of it was applied, {applied} transaction(s) before it were: apply it by hand, \
         then run the replay again"
    )]
    NeedsBinlog {
        /// Its GTID.
        gtid: String,
        /// Binlog file.
        file: String,
        /// Position of its first event.
        start: u64,
        /// The table, and why.
        table: String,
        /// The target.
        target: String,
        /// How many were applied before it.
        applied: usize,
    },
    /// A transaction that changes a MariaDB sequence, which replay cannot
    /// apply yet.
    #[error(
        "transaction {gtid} ({file}:{start}) changes the sequence {sequence}, which gapless cannot apply yet: \
         {target} logs a sequence's change on its own and would then log the next GTID twice, which stops its \
         replicas. Nothing of it was applied, {applied} transaction(s) before it were: apply it by hand with its \
         GTID, then run the replay again"
    )]
    Sequence {
        /// Its GTID.
        gtid: String,
        /// Binlog file.
        file: String,
        /// Position of its first event.
        start: u64,
        /// The sequence.
        sequence: String,
        /// The target.
        target: String,
        /// How many were applied before it.
        applied: usize,
    },
    /// The target still replicates: its own replication would apply the
    /// transactions the replay applies.
    #[error(
        "{target} is still replicating from {primary} (Slave_IO_Running: {io}, Slave_SQL_Running: {sql}): \
         its replication would apply the same transactions as the replay. Stop it first (STOP SLAVE, or \
         STOP REPLICA on MySQL; a promotion also runs RESET SLAVE ALL), then run the replay again"
    )]
    StillReplicating {
        /// The target.
        target: String,
        /// The primary it replicates from.
        primary: String,
        /// The IO thread's state.
        io: String,
        /// The SQL thread's state.
        sql: String,
    },
    /// Another replay's session holds the target's replay lock, and the
    /// deadline passed while waiting for it; nothing was applied.
    #[error(
        "{holder} still holds the replay lock on {target} (GET_LOCK('gapless.replay')), and the deadline passed \
         while waiting for it to end; nothing was applied. Two replays at once would apply the same \
         transactions: let it finish, or KILL that connection, then run the replay again"
    )]
    Busy {
        /// The target.
        target: String,
        /// Who holds the lock.
        holder: String,
    },
    /// The replay lock could not be taken.
    #[error("{0}")]
    Lock(String),
    /// The deadline passed; the transactions applied so far stay.
    #[error(
        "the deadline of {seconds} s passed after {applied} transaction(s); stopped before the next one"
    )]
    Deadline {
        /// The deadline.
        seconds: f64,
        /// Applied before stopping.
        applied: usize,
    },
    /// Writing the dry-run output failed.
    #[error("writing the SQL: {0}")]
    Output(#[from] std::io::Error),
    /// `--relaxed-durability` could not relax, or put back, the target's
    /// settings.
    #[error("{0}")]
    Durability(String),
}

/// A statement longer than the target's `max_allowed_packet` takes.
#[derive(Debug, Error)]
#[error(
    "transaction {gtid} ({file}:{start}) needs a statement of {bytes} bytes ({what}), more than {target} \
     takes in one query (max_allowed_packet = {max_allowed_packet}); nothing of it was applied and the \
     replay stopped there, after {applied} transaction(s). Raise it on the target (SET GLOBAL \
     max_allowed_packet = {}) and run the replay again",
    packet_for(*.bytes)
)]
pub struct TooLarge {
    /// The transaction's GTID.
    pub gtid: String,
    /// Binlog file.
    pub file: String,
    /// Position of its first event.
    pub start: u64,
    /// Which statement: `BINLOG`, or the event it is for.
    pub what: String,
    /// Its length.
    pub bytes: usize,
    /// The target's setting.
    pub max_allowed_packet: usize,
    /// The target.
    pub target: String,
    /// How many transactions were applied before it.
    pub applied: usize,
}

/// Runs the replay; with `dry_run` the SQL goes to `out` instead.
pub async fn run(plan: &ReplayPlan, out: &mut dyn Write) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let reader = RingReader::open(&plan.ring)?;
    let target = plan.target.addr();
    let needs_connection = !plan.dry_run || !matches!(plan.start, ReplayStart::AfterGtid(_));
    let mut conn = match needs_connection {
        true => {
            let mut options = plan.target.clone();
            options.multi_statements = true;
            Some(Connection::connect(&options).await?)
        }
        false => None,
    };
    if let Some(c) = conn.as_mut() {
        // Before the start point is read: a replay still running there
        // would change it.
        match plan.dry_run {
            true => lock::warn_if_held(c).await,
            false => lock::take(c, plan.deadline.map(|d| started + d)).await?,
        }
        check_not_replicating(c, plan.dry_run).await?;
    }
    let relaxed = match (plan.relaxed_durability && !plan.dry_run, conn.as_mut()) {
        (true, Some(c)) => Some(durability::relax(c).await?),
        _ => None,
    };
    let result = apply_all(plan, out, &reader, conn.as_mut(), started).await;
    if let Some(relaxed) = relaxed {
        let restored = durability::restore(conn.as_mut(), &plan.target, &relaxed).await;
        match (&result, restored) {
            (Ok(_), Err(e)) => return Err(e),
            (Err(_), Err(e)) => warn!(target = %target, "{e}"),
            (_, Ok(())) => {}
        }
    }
    if let Some(c) = conn {
        c.close().await;
    }
    result
}

/// Applies what the target lacks, on `conn` (`None` only for a dry run
/// that needs no connection).
async fn apply_all(
    plan: &ReplayPlan,
    out: &mut dyn Write,
    reader: &RingReader,
    mut conn: Option<&mut Connection>,
    started: Instant,
) -> Result<Report, ReplayError> {
    let target = plan.target.addr();
    let have = match (&plan.start, conn.as_deref_mut()) {
        (ReplayStart::AfterGtid(e), _) => Have { executed: Some(e.clone()), after: None },
        (ReplayStart::AfterPosition { file, position }, c) => {
            // The target's GTIDs, when it has some, also keep a second run
            // from applying anything twice.
            let executed = match c {
                Some(c) => Some(executed_on(c).await?).filter(|e| !e.is_empty()),
                None => None,
            };
            Have { executed, after: Some((file.clone(), *position)) }
        }
        (ReplayStart::Auto, Some(c)) => auto_start(c).await?,
        (ReplayStart::Auto, None) => unreachable!("a connection is made for --auto"),
    };
    let executed_text = have.executed.as_ref().map(ToString::to_string).unwrap_or_default();
    let after_text = have.after.as_ref().map(|(f, p)| format!("{f}:{p}"));
    info!(target = %target, executed = %executed_text, after = ?after_text, ring = %plan.ring.display(), "replay start point");
    let mut report = Report {
        target_executed: executed_text,
        after_position: after_text,
        dry_run: plan.dry_run,
        ..Default::default()
    };
    if let Some((file, position)) = &have.after {
        check_covers_position(reader, file, *position, &target)?;
    }

    let max_query = match conn.as_deref_mut().filter(|_| !plan.dry_run) {
        Some(c) => max_query_bytes(c).await?,
        None => usize::MAX,
    };
    // One renderer for the run, on the one connection: the session set-up
    // (character set, time zone, default database, sql_mode) is sent once
    // and then only when it changes. It sees only the transactions that are
    // applied, and each FORMAT_DESCRIPTION (decoded, not shown).
    let tables = TargetTables::default();
    let buf = SharedBuf::default();
    let mut sink = RenderSink::new(Box::new(tables.renderer(Box::new(buf.clone()))));
    let mut format: Option<Received> = None;
    let mut format_fed = false;
    let mut checked_sources: BTreeMap<String, ()> = BTreeMap::new();
    let mut batch = Batch::default();
    let mut units = reader.units(reader.start());
    let mut records = Vec::new();
    let mut apply = Applier {
        conn,
        dry_run: plan.dry_run,
        out,
        target: &target,
        progress: plan.progress.as_deref(),
        in_flight: None,
        tables: tables.clone(),
        reader,
    };
    // Any error ends the loop; the batch in flight is waited for first, so
    // the report counts what the target committed.
    let outcome: Result<(), ReplayError> = async {
        while let Some(at) = units.next_into(&mut records) {
            let unit = Unit { at: at?, records: std::mem::take(&mut records) };
            // The events are read where the ring keeps them; one at a time
            // is copied to be rendered (a transaction can be gigabytes).
            let events: Vec<(u64, &[u8])> = unit.records.iter().map(|r| (r.meta.start, r.event)).collect();
            if let Some(i) =
                unit.records.iter().rposition(|r| event_type(r.event) == Some(EventType::FORMAT_DESCRIPTION))
            {
                format = Some(Received { resent: true, ..received(&unit, i) });
                format_fed = false;
            }
            let gtid = unit.gtid().to_string();
            let first = &unit.records[0].meta;
            if first.flags & RESENT != 0 || !unit.records.iter().any(|r| is_data(r.event)) {
                report.skipped_other += 1;
                records = unit.records;
                continue;
            }
            if let Some((file, position)) = &have.after {
                if cmp_coords(first.file, first.start, file, *position) == std::cmp::Ordering::Less {
                    report.skipped_before += 1;
                    records = unit.records;
                    continue;
                }
            }
            if let Some(executed) = &have.executed {
                let done = executed.contains(&gtid).ok_or_else(|| {
                    ReplayError::NoStart(format!(
                        "the ring holds transaction '{gtid}', which is not of the kind of GTIDs of the start point {executed}"
                    ))
                })?;
                if done {
                    report.skipped_executed += 1;
                    records = unit.records;
                    continue;
                }
                if have.after.is_none() {
                    check_no_gap(executed, &gtid, &target, &mut checked_sources)?;
                }
            }
            if past(plan.deadline, started) {
                // What was rendered is not sent: stop cleanly here.
                return Err(deadline_error(plan.deadline, &report));
            }
            let applied = Applied {
                gtid: gtid.clone(),
                file: first.file.to_string(),
                start: first.start,
                end: unit.records.last().map_or(first.end, |r| r.meta.end),
                row_events: unit.records.iter().filter(|r| is_rows(r.event)).count() as u64,
            };
            let (maps, statement) = table_maps(format.as_ref(), &events);
            let unknown = tables.unknown(&maps, statement);
            if !unknown.is_empty() {
                // The target's tables as what is rendered before leaves them.
                apply.drain(&mut batch, &mut report, format.as_ref()).await?;
                if let Some(c) = apply.conn.as_deref_mut() {
                    tables.look_up(c, &unknown).await?;
                }
            }
            if let Some(sequence) = tables.sequence(&maps) {
                apply.drain(&mut batch, &mut report, format.as_ref()).await?;
                return Err(ReplayError::Sequence {
                    gtid,
                    file: applied.file,
                    start: applied.start,
                    sequence,
                    target: target.to_string(),
                    applied: report.applied.len(),
                });
            }
            let mut binlog = match plan.mode {
                Mode::Binlog => binlog::statements(format.as_ref(), &events, &gtid, max_query),
                Mode::Sql => None,
            };
            if binlog.is_none() {
                // The binlog holds what the target's triggers would write
                // again, and the history rows of a system-versioned table:
                // such a table's row events go as BINLOG statements, which
                // apply them as a replica does.
                if let Some(table) = tables.binlog_only(&maps) {
                    binlog = binlog::statements(format.as_ref(), &events, &gtid, max_query);
                    if binlog.is_none() {
                        apply.drain(&mut batch, &mut report, format.as_ref()).await?;
                        return Err(ReplayError::NeedsBinlog {
                            gtid,
                            file: applied.file,
                            start: applied.start,
                            table,
                            target: target.to_string(),
                            applied: report.applied.len(),
                        });
                    }
                    info!(gtid = %gtid, table = %table, "only BINLOG statements apply this table's rows as \
                        a replica would: the transaction goes as BINLOG statements");
                }
            }
            match binlog {
                Some(statements) => {
                    let length = statements.batched_len();
                    if !gtid.is_empty() && length <= max_query.min(BATCH_BYTES) {
                        // A small transaction's BINLOG statements join the
                        // batch of the ones before it, a round trip for many.
                        let apart = batch.counted.is_none() && !batch.sql.is_empty();
                        if apart || batch.sql.len() + length > max_query.min(BATCH_BYTES) {
                            apply.send(&mut batch, &mut report, format.as_ref()).await?;
                        }
                        batch.push_counted(applied, unit.at, statements.iter());
                        if batch.full() {
                            apply.send(&mut batch, &mut report, format.as_ref()).await?;
                        }
                    } else {
                        // A large one's go one by one, each made while the
                        // target runs the one before, after what is batched
                        // before them.
                        apply.send(&mut batch, &mut report, format.as_ref()).await?;
                        let longest = statements.longest();
                        if longest > max_query {
                            apply.settle(&mut report).await?;
                            return Err(too_large(&applied, "BINLOG", longest, max_query, &target, &report));
                        }
                        apply.one_by_one(statements.iter(), statements.xa(), applied, &mut report).await?;
                    }
                }
                None => {
                    let fail = |error| ReplayError::Render {
                        gtid: gtid.clone(),
                        file: applied.file.clone(),
                        start: applied.start,
                        error: Box::new(error),
                    };
                    if let (false, Some(f)) = (format_fed, &format) {
                        sink.write(std::slice::from_ref(f)).map_err(fail)?;
                        format_fed = true;
                    }
                    // A transaction without a GTID cannot be told applied or
                    // not after a failure: it goes alone.
                    let alone = gtid.is_empty();
                    if alone || batch.counted.is_some() {
                        apply.send(&mut batch, &mut report, format.as_ref()).await?;
                    }
                    batch.begin(applied.clone(), unit.at);
                    // Event by event: a large transaction is cut between
                    // statements, every query within max_allowed_packet.
                    for i in 0..unit.records.len() {
                        let r = received(&unit, i);
                        sink.write(std::slice::from_ref(&r)).map_err(fail)?;
                        sink.flush().map_err(fail)?;
                        let sql = String::from_utf8(buf.take())
                            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                        if sql.len() > max_query {
                            apply.abandon(&mut batch, &mut report, format.as_ref()).await?;
                            let what = format!("for its {}", describe_event(&r));
                            return Err(too_large(&applied, &what, sql.len(), max_query, &target, &report));
                        }
                        if !batch.sql.is_empty() && batch.sql.len() + sql.len() > max_query.min(BATCH_BYTES) {
                            if batch.open_sent() && past(plan.deadline, started) {
                                apply.abandon(&mut batch, &mut report, format.as_ref()).await?;
                                return Err(deadline_error(plan.deadline, &report));
                            }
                            apply.send(&mut batch, &mut report, format.as_ref()).await?;
                        }
                        batch.sql.push_str(&sql);
                    }
                    batch.commit();
                    if alone || batch.full() {
                        apply.send(&mut batch, &mut report, format.as_ref()).await?;
                    }
                }
            }
            records = unit.records;
        }
        apply.send(&mut batch, &mut report, format.as_ref()).await
    }
    .await;
    let settled = apply.settle(&mut report).await;
    if outcome.is_err() || settled.is_err() {
        // A transaction cut off after part of it was sent is not left
        // open: a statement that commits implicitly (the FLUSH that puts
        // durability back) would commit it half done.
        if let Some(c) = apply.conn.as_deref_mut().filter(|_| !plan.dry_run) {
            let _ = c.query("ROLLBACK").await;
        }
    }
    settled.and(outcome)?;
    if let Some(c) = apply.conn.as_deref_mut().filter(|_| !plan.dry_run) {
        match prepared_xa(c).await {
            Ok(xids) => report.xa_prepared = xids,
            Err(e) => {
                warn!(target = %target, "could not list the XA transactions prepared there (XA RECOVER): {e}")
            }
        }
        if !report.xa_prepared.is_empty() {
            warn!(target = %target, xids = %report.xa_prepared.join(" "), "XA transaction(s) prepared there, as on the \
                old primary: their transaction manager must commit or roll them back; they hold their locks until then");
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// SQL rendered and not sent yet: several transactions go in one round
/// trip, and a large one is sent in several, inside its BEGIN … COMMIT.
#[derive(Default)]
struct Batch {
    sql: String,
    /// The transactions whose COMMIT is in `sql`.
    transactions: Vec<Applied>,
    /// Where they are in the ring, to find the failing event after an
    /// error.
    units: Vec<Location>,
    /// The transaction being rendered, whose COMMIT is not in `sql` yet.
    open: Option<Open>,
    /// Where its text starts in `sql`.
    open_at: usize,
    /// How many statements `sql` holds, when it holds `BINLOG` statements:
    /// their answers are counted (`QueryResponse::counted`), since the
    /// server's more-results flag would stop after the first `BINLOG`.
    /// Such a batch holds only whole transactions of [`binlog::Statements`].
    counted: Option<u64>,
}

/// A transaction begun and not committed yet, and where it is in the ring.
#[derive(Clone)]
struct Open {
    applied: Applied,
    unit: Location,
    /// Part of it was sent: the target is inside it.
    sent: bool,
}

/// Transactions per round trip, and bytes of SQL, at most: a larger
/// transaction is cut at a statement into round trips of about this size,
/// so the target runs one while the next is rendered.
const BATCH_TRANSACTIONS: usize = 64;
const BATCH_BYTES: usize = 1 << 20;

impl Batch {
    fn begin(&mut self, applied: Applied, unit: Location) {
        debug_assert!(self.open.is_none(), "one transaction at a time");
        self.open = Some(Open { applied, unit, sent: false });
        self.open_at = self.sql.len();
    }

    /// Whether the target is inside the open transaction.
    fn open_sent(&self) -> bool {
        self.open.as_ref().is_some_and(|o| o.sent)
    }

    fn commit(&mut self) {
        if let Some(open) = self.open.take() {
            self.transactions.push(open.applied);
            self.units.push(open.unit);
        }
    }

    fn full(&self) -> bool {
        self.transactions.len() >= BATCH_TRANSACTIONS || self.sql.len() >= BATCH_BYTES
    }

    /// Adds a whole transaction of `BINLOG` statements, counting them.
    fn push_counted(&mut self, applied: Applied, unit: Location, statements: impl Iterator<Item = String>) {
        debug_assert!(self.counted.is_some() || self.sql.is_empty(), "counted and flagged answers apart");
        self.begin(applied, unit);
        let mut count = self.counted.unwrap_or(0);
        for sql in statements {
            self.sql.push_str(&sql);
            self.sql.push_str(";\n");
            count += 1;
        }
        self.counted = Some(count);
        self.commit();
    }
}

/// Sends SQL to the target, or, for a dry run, to the output.
struct Applier<'a> {
    conn: Option<&'a mut Connection>,
    dry_run: bool,
    out: &'a mut dyn Write,
    target: &'a str,
    progress: Option<&'a std::sync::atomic::AtomicUsize>,
    /// The batch the target is running while the next one is rendered.
    in_flight: Option<InFlight>,
    /// What is known of the target's tables, and the ring: to render a
    /// failed transaction again, event by event.
    tables: TargetTables,
    reader: &'a RingReader,
}

/// A batch sent and not answered yet.
struct InFlight {
    sql: String,
    transactions: Vec<Applied>,
    units: Vec<Location>,
    /// The transaction it holds the beginning or a middle part of.
    open: Option<Open>,
    /// The FORMAT_DESCRIPTION its events were rendered under.
    format: Option<Received>,
    /// Its statements, when their answers are counted.
    counted: Option<u64>,
}

/// Publishes how many transactions `report` has applied.
fn progressed(progress: Option<&std::sync::atomic::AtomicUsize>, report: &Report) {
    if let Some(progress) = progress {
        progress.store(report.applied.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

impl Applier<'_> {
    /// Sends a batch as one multi-statement query, after the answer to the
    /// one before it. The target runs it while the caller renders the
    /// next: [`Self::settle`] reads its answer. Its transactions are whole
    /// (BEGIN … COMMIT), but for the last, which may go on in the next
    /// batch; after an error the target's GTIDs say which of them committed
    /// before the failing one, which is rolled back and named.
    async fn send(
        &mut self,
        batch: &mut Batch,
        report: &mut Report,
        format: Option<&Received>,
    ) -> Result<(), ReplayError> {
        self.settle(report).await?;
        if batch.sql.is_empty() {
            return Ok(());
        }
        let sql = std::mem::take(&mut batch.sql);
        let transactions = std::mem::take(&mut batch.transactions);
        let units = std::mem::take(&mut batch.units);
        let counted = batch.counted.take();
        let open = batch.open.clone();
        if let Some(o) = batch.open.as_mut() {
            o.sent = true;
            batch.open_at = 0;
        }
        let Some(c) = self.conn.as_deref_mut().filter(|_| !self.dry_run) else {
            self.out.write_all(sql.as_bytes())?;
            report.applied.extend(transactions);
            progressed(self.progress, report);
            return Ok(());
        };
        let sent = c.start_query(&sql).await;
        let in_flight = InFlight { sql, transactions, units, open, format: format.cloned(), counted };
        match sent {
            Ok(()) => {
                self.in_flight = Some(in_flight);
                Ok(())
            }
            Err(error) => self.failed(in_flight, error, report).await,
        }
    }

    /// Sends what the batch holds and waits for the target to run it, for
    /// what depends on the target's state after it.
    async fn drain(
        &mut self,
        batch: &mut Batch,
        report: &mut Report,
        format: Option<&Received>,
    ) -> Result<(), ReplayError> {
        self.send(batch, report, format).await?;
        self.settle(report).await
    }

    /// Waits for the batch in flight, if any: its transactions applied, or
    /// the error of the one that failed.
    async fn settle(&mut self, report: &mut Report) -> Result<(), ReplayError> {
        let Some(in_flight) = self.in_flight.take() else { return Ok(()) };
        let c = self.conn.as_deref_mut().expect("a batch is in flight only on a connection");
        let answer = match in_flight.counted {
            Some(statements) => c.finish_statements(&in_flight.sql, statements).await,
            None => c.finish_query(&in_flight.sql).await,
        };
        match answer {
            Ok(_) => {
                log_applied(&in_flight.transactions);
                report.applied.extend(in_flight.transactions);
                progressed(self.progress, report);
                Ok(())
            }
            Err(error) => self.failed(in_flight, error, report).await,
        }
    }

    /// Gives up the transaction being rendered. What the batch holds
    /// before it is applied; when part of it was sent, the target's copy
    /// is rolled back.
    async fn abandon(
        &mut self,
        batch: &mut Batch,
        report: &mut Report,
        format: Option<&Received>,
    ) -> Result<(), ReplayError> {
        let Some(open) = batch.open.take() else { return Ok(()) };
        batch.sql.truncate(batch.open_at);
        self.drain(batch, report, format).await?;
        if let (true, Some(c)) = (open.sent, self.conn.as_deref_mut().filter(|_| !self.dry_run)) {
            c.query("ROLLBACK").await?;
        }
        Ok(())
    }

    /// After a batch failed: rolls back, counts what committed before the
    /// failing transaction, and names it and its event.
    async fn failed(
        &mut self,
        batch: InFlight,
        error: ClientError,
        report: &mut Report,
    ) -> Result<(), ReplayError> {
        let c = self.conn.as_deref_mut().expect("a batch fails only on a connection");
        let _ = c.query("ROLLBACK").await;
        let executed = executed_on(c).await.ok();
        let mut failed = None;
        for (t, unit) in batch.transactions.into_iter().zip(batch.units) {
            let done = executed.as_ref().and_then(|e| e.contains(&t.gtid)) == Some(true);
            match (done, &failed) {
                (true, None) => report.applied.push(t),
                (_, None) => failed = Some((t, unit)),
                _ => {}
            }
        }
        progressed(self.progress, report);
        // Every transaction that ends in the batch committed: the one it
        // holds a part of failed.
        let Some((t, unit)) = failed.or(batch.open.map(|o| (o.applied, o.unit))) else {
            return Err(ReplayError::Client(error));
        };
        let events = reread(self.reader, unit);
        let found = match &events {
            Some(events) => {
                // An XA transaction refused the ROLLBACK above.
                let xa = xa_of(batch.format.as_ref(), events);
                roll_back(c, xa.as_deref()).await;
                failing_event(c, batch.format.as_ref(), &self.tables, events, xa.as_deref()).await
            }
            None => None,
        };
        let (event, error) = match found {
            Some((event, again)) => (Some(event), again),
            None => (None, error),
        };
        Err(ReplayError::Apply {
            gtid: t.gtid,
            event,
            file: t.file,
            start: t.start,
            target: self.target.to_string(),
            error: Box::new(error),
            applied: report.applied.len(),
        })
    }

    /// Sends a transaction's statements one by one; rolls back on error.
    async fn one_by_one(
        &mut self,
        statements: impl Iterator<Item = String>,
        xa: Option<&str>,
        t: Applied,
        report: &mut Report,
    ) -> Result<(), ReplayError> {
        self.settle(report).await?;
        match self.conn.as_deref_mut().filter(|_| !self.dry_run) {
            None => {
                for sql in statements {
                    writeln!(self.out, "{sql};")?;
                }
            }
            Some(c) => {
                // Each statement is made while the target runs the one
                // before it.
                let sent: Result<(), ClientError> = async {
                    let mut running: Option<String> = None;
                    for sql in statements {
                        if let Some(before) = running.take() {
                            c.finish_query(&before).await?;
                        }
                        c.start_query(&sql).await?;
                        running = Some(sql);
                    }
                    match running {
                        Some(last) => c.finish_query(&last).await.map(drop),
                        None => Ok(()),
                    }
                }
                .await;
                if let Err(error) = sent {
                    roll_back(c, xa).await;
                    return Err(ReplayError::Apply {
                        gtid: t.gtid,
                        event: None,
                        file: t.file,
                        start: t.start,
                        target: self.target.to_string(),
                        error: Box::new(error),
                        applied: report.applied.len(),
                    });
                }
                log_applied(std::slice::from_ref(&t));
            }
        }
        report.applied.push(t);
        progressed(self.progress, report);
        Ok(())
    }
}

/// Finds which event of a failed transaction the target refuses: its
/// events are rendered and run one at a time inside a transaction that is
/// rolled back (the COMMIT is never sent). A transaction with a statement
/// (DDL, which commits by itself) is not run again: its statement is named.
/// `xa`: the XID of an XA transaction's rows, to undo it at the end.
async fn failing_event(
    c: &mut Connection,
    format: Option<&Received>,
    tables: &TargetTables,
    unit: &[Received],
    xa: Option<&str>,
) -> Option<(String, ClientError)> {
    let buf = SharedBuf::default();
    let mut sink = RenderSink::new(Box::new(tables.renderer(Box::new(buf.clone()))));
    let found = async {
        if let Some(f) = format {
            sink.write(std::slice::from_ref(f)).ok()?;
        }
        for r in unit {
            sink.write(std::slice::from_ref(r)).ok()?;
            sink.flush().ok()?;
            let sql = String::from_utf8_lossy(&buf.take()).into_owned();
            let text = sql.trim_end();
            if text.is_empty() || text.ends_with("COMMIT;") {
                continue;
            }
            if event_type(&r.bytes) == Some(EventType::QUERY) && !text.ends_with("BEGIN;") {
                // A statement: not run again (it may commit by itself).
                return None;
            }
            if let Err(e) = c.query(text).await {
                return Some((describe_event(r), e));
            }
        }
        None
    }
    .await;
    roll_back(c, xa).await;
    found
}

/// Undoes a transaction cut off on the target: ROLLBACK, which an active
/// XA transaction refuses (XAER_RMFAIL), so for one XA END and XA ROLLBACK
/// of its XID first. Errors are left out: there may be nothing to undo.
async fn roll_back(c: &mut Connection, xa: Option<&str>) {
    if let Some(xid) = xa {
        let _ = c.query(&format!("XA END {xid}")).await;
        let _ = c.query(&format!("XA ROLLBACK {xid}")).await;
        if c.server().is_mariadb() {
            let _ = c.query(crate::render::sql::XA_ATTACHED).await;
        }
    }
    let _ = c.query("ROLLBACK").await;
}

/// The XID of an XA transaction's rows (see [`binlog::xa_started`]).
fn xa_of(format: Option<&Received>, unit: &[Received]) -> Option<String> {
    let mut decoder = gapless_decoder::Decoder::new();
    if let Some(f) = format {
        decoder.decode(f.offset, &f.bytes).ok()?;
    }
    unit.iter()
        .take(3)
        .find_map(|r| decoder.decode(r.offset, &r.bytes).ok().and_then(|ev| binlog::xa_started(&ev.data)))
}

/// "ROWS_EVENT… event at FILE:POS", for messages.
fn describe_event(r: &Received) -> String {
    let name = r.bytes.get(4).and_then(|&t| gapless_decoder::EventType(t).name()).unwrap_or("unknown");
    format!("{name} event at {}:{}", r.file, r.offset)
}

/// Whether the deadline, if any, has passed.
fn past(deadline: Option<Duration>, started: Instant) -> bool {
    deadline.is_some_and(|limit| started.elapsed() >= limit)
}

fn deadline_error(deadline: Option<Duration>, report: &Report) -> ReplayError {
    ReplayError::Deadline {
        seconds: deadline.unwrap_or_default().as_secs_f64(),
        applied: report.applied.len(),
    }
}

/// The error for a statement longer than the target takes in one query.
fn too_large(
    t: &Applied,
    what: &str,
    bytes: usize,
    max_query: usize,
    target: &str,
    report: &Report,
) -> ReplayError {
    ReplayError::TooLarge(Box::new(TooLarge {
        gtid: t.gtid.clone(),
        file: t.file.clone(),
        start: t.start,
        what: what.to_string(),
        bytes,
        max_allowed_packet: max_query.saturating_add(QUERY_MARGIN),
        target: target.to_string(),
        applied: report.applied.len(),
    }))
}

/// A `max_allowed_packet` that takes a statement of `bytes`: the next
/// power of two with room for the framing.
fn packet_for(bytes: usize) -> usize {
    let needed = bytes.saturating_add(QUERY_MARGIN);
    needed.checked_next_power_of_two().unwrap_or(needed)
}

/// Bytes of a query the target takes: its `max_allowed_packet`, less room
/// for the command byte and packet framing.
async fn max_query_bytes(c: &mut Connection) -> Result<usize, ReplayError> {
    let text = c.query_value("SELECT @@session.max_allowed_packet").await?.unwrap_or_default();
    let packet = text.trim().parse().unwrap_or_else(|_| {
        warn!(target = %c.addr(), value = %text, "max_allowed_packet is not a number; taking 4 MiB");
        4 << 20
    });
    Ok(usize::saturating_sub(packet, QUERY_MARGIN).max(1))
}

/// What [`max_query_bytes`] leaves off `max_allowed_packet`.
const QUERY_MARGIN: usize = 1024;

fn log_applied(transactions: &[Applied]) {
    if let (Some(first), Some(last)) = (transactions.first(), transactions.last()) {
        debug!(first = %first.gtid, last = %last.gtid, count = transactions.len(), "applied");
    }
}

/// What the target has executed. MariaDB: per domain the later of
/// `gtid_binlog_pos` and `gtid_slave_pos` (what it wrote, and what it
/// replicated; `gtid_current_pos` would hide transactions replayed with
/// another server's id). MySQL: `gtid_executed`.
pub(crate) async fn executed_on(conn: &mut Connection) -> Result<Executed, ReplayError> {
    let addr = conn.addr().to_string();
    if conn.server().is_mariadb() {
        let mut list = MariaGtidList::new();
        for var in ["@@GLOBAL.gtid_binlog_pos", "@@GLOBAL.gtid_slave_pos"] {
            let text = conn.query_value(&format!("SELECT {var}")).await?.unwrap_or_default();
            let pos: MariaGtidList = text
                .parse()
                .map_err(|e| ReplayError::NoStart(format!("{addr}: {var} = {text:?} does not parse: {e}")))?;
            for g in pos.iter() {
                if !matches!(list.get(g.domain_id), Some(have) if have.seq_no >= g.seq_no) {
                    list.set(*g);
                }
            }
        }
        Ok(Executed::Maria(list))
    } else {
        let text = conn.query_value("SELECT @@GLOBAL.gtid_executed").await?.unwrap_or_default();
        let set: GtidSet = text.parse().map_err(|e| {
            ReplayError::NoStart(format!("{addr}: gtid_executed = {text:?} does not parse: {e}"))
        })?;
        Ok(Executed::Mysql(set))
    }
}

/// The XA transactions prepared on the target, from `XA RECOVER`.
async fn prepared_xa(conn: &mut Connection) -> Result<Vec<String>, ClientError> {
    let set = conn.query_rows("XA RECOVER").await?;
    let column = |name: &str| set.column(name);
    let (Some(format), Some(gtrid), Some(bqual), Some(data)) =
        (column("formatID"), column("gtrid_length"), column("bqual_length"), column("data"))
    else {
        return Ok(Vec::new());
    };
    let number = |row: &[Option<Vec<u8>>], i: usize| {
        row.get(i)?.as_ref().and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok())
    };
    let mut xids = Vec::new();
    for row in &set.rows {
        let (Some(f), Some(g), Some(b)) = (number(row, format), number(row, gtrid), number(row, bqual))
        else {
            continue;
        };
        let bytes = row.get(data).and_then(|v| v.as_deref()).unwrap_or_default();
        let (Some(gtrid), Some(bqual)) = (bytes.get(..g), bytes.get(g..g + b)) else { continue };
        let mut xid = String::new();
        crate::render::sql::push_xid(&mut xid, f as u32, gtrid, bqual);
        xids.push(xid);
    }
    Ok(xids)
}

/// Refuses a target whose replication still runs (for a dry run, says so
/// and goes on). Without the right to see it (`SLAVE MONITOR`), says that
/// it could not check.
async fn check_not_replicating(conn: &mut Connection, dry_run: bool) -> Result<(), ReplayError> {
    let target = conn.addr().to_string();
    let status = match replica_status(conn).await {
        Ok(Some(status)) => status,
        Ok(None) => return Ok(()),
        Err(e) => {
            warn!(target = %target, "could not check whether the target still replicates: {e}");
            return Ok(());
        }
    };
    let running = |state: &Option<String>| state.as_deref() == Some("Yes");
    if !running(&status.io_running) && !running(&status.sql_running) {
        return Ok(());
    }
    let shown = |state: Option<String>| state.unwrap_or_else(|| "?".to_string());
    let error = ReplayError::StillReplicating {
        target: target.clone(),
        primary: shown(status.primary),
        io: shown(status.io_running),
        sql: shown(status.sql_running),
    };
    if dry_run {
        warn!(target = %target, "{error}");
        return Ok(());
    }
    Err(error)
}

/// `--auto`: the target's executed GTIDs, or, when it has none, its
/// replication coordinates in the old primary's binlog.
async fn auto_start(conn: &mut Connection) -> Result<Have, ReplayError> {
    let executed = executed_on(conn).await?;
    if !executed.is_empty() {
        return Ok(Have { executed: Some(executed), after: None });
    }
    match replica_status(conn).await?.and_then(|s| s.executed) {
        Some(after) => Ok(Have { executed: None, after: Some(after) }),
        None => Err(ReplayError::NoStart(format!(
            "{} has no executed GTIDs and no replication coordinates (RESET SLAVE ALL removes them): \
             no start point can be worked out. Pass --after FILE:POS with the coordinates recorded before \
             the promotion (Relay_Master_Log_File:Exec_Master_Log_Pos; `gapless hook pre-failover` \
             records them), or --after-gtid",
            conn.addr()
        ))),
    }
}

/// A replica's replication state, as `SHOW SLAVE STATUS` (or MySQL 8.4's
/// `SHOW REPLICA STATUS`) shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReplicaStatus {
    /// The primary it replicates from, `HOST:PORT`.
    pub primary: Option<String>,
    /// The IO thread's state (`Yes`, `No`, `Connecting`).
    pub io_running: Option<String>,
    /// The SQL thread's state.
    pub sql_running: Option<String>,
    /// Where it has received up to in the primary's binlog.
    pub received: Option<(String, u64)>,
    /// Where it has executed up to in the primary's binlog.
    pub executed: Option<(String, u64)>,
    /// `Using_Gtid` (MariaDB) or `Auto_Position` (MySQL).
    pub using_gtid: Option<String>,
}

/// The replica's state; `None` when it is not a replica (no row).
pub(crate) async fn replica_status(conn: &mut Connection) -> Result<Option<ReplicaStatus>, ReplayError> {
    let status = match conn.query_rows("SHOW SLAVE STATUS").await {
        Ok(set) => set,
        Err(e) if e.server_error().is_some() => conn.query_rows("SHOW REPLICA STATUS").await?,
        Err(e) => return Err(e.into()),
    };
    if status.rows.is_empty() {
        return Ok(None);
    }
    // MySQL 8.0.22+ names the columns Source_* and Replica_*.
    let field = |names: &[&str]| {
        names.iter().find_map(|name| {
            let col = status.column(name)?;
            let value = status.rows.first()?.get(col)?.as_ref()?;
            Some(String::from_utf8_lossy(value).into_owned())
        })
    };
    let coords = |file: &[&str], pos: &[&str]| {
        let file = field(file).filter(|f| !f.is_empty())?;
        Some((file, field(pos)?.parse().ok()?))
    };
    let primary = match (field(&["Master_Host", "Source_Host"]), field(&["Master_Port", "Source_Port"])) {
        (Some(h), Some(p)) if !h.is_empty() => p.parse().ok().map(|p| host_port(&h, p)),
        _ => None,
    };
    Ok(Some(ReplicaStatus {
        primary,
        io_running: field(&["Slave_IO_Running", "Replica_IO_Running"]),
        sql_running: field(&["Slave_SQL_Running", "Replica_SQL_Running"]),
        received: coords(
            &["Master_Log_File", "Source_Log_File"],
            &["Read_Master_Log_Pos", "Read_Source_Log_Pos"],
        ),
        executed: coords(
            &["Relay_Master_Log_File", "Relay_Source_Log_File"],
            &["Exec_Master_Log_Pos", "Exec_Source_Log_Pos"],
        ),
        using_gtid: field(&["Using_Gtid", "Auto_Position"]),
    }))
}

/// The ring must start at or before the target's place in the old
/// primary's binlog, or the transactions in between are lost.
fn check_covers_position(
    reader: &RingReader,
    file: &str,
    position: u64,
    target: &str,
) -> Result<(), ReplayError> {
    let Some(first) = reader.first() else { return Ok(()) };
    if cmp_coords(&first.file, first.start, file, position) == std::cmp::Ordering::Greater {
        return Err(ReplayError::PositionGap {
            target: target.to_string(),
            position: format!("{file}:{position}"),
            first: format!("{}:{}", first.file, first.start),
        });
    }
    Ok(())
}

/// The first transaction applied of each GTID source must follow the
/// target's last one of that source directly (MariaDB: seq_no + 1).
fn check_no_gap(
    executed: &Executed,
    gtid: &str,
    target: &str,
    checked: &mut BTreeMap<String, ()>,
) -> Result<(), ReplayError> {
    let Executed::Maria(list) = executed else { return Ok(()) };
    let Ok(g) = gtid.parse::<MariaGtid>() else { return Ok(()) };
    if checked.insert(g.domain_id.to_string(), ()).is_some() {
        return Ok(());
    }
    match list.get(g.domain_id) {
        Some(have) if g.seq_no > have.seq_no + 1 => Err(ReplayError::Gap {
            target: target.to_string(),
            executed: have.to_string(),
            domain: g.domain_id.to_string(),
            first: gtid.to_string(),
        }),
        _ => Ok(()),
    }
}

/// What the replay learns of the target's tables from its
/// information_schema, shared with the SQL renderers: the column names of
/// tables the binlog does not name (`binlog_row_metadata=MINIMAL`), and
/// every table's generated columns, which are left out of the SQL.
#[derive(Clone, Default)]
struct TargetTables {
    names: SharedColumnNames,
    generated: SharedGenerated,
    /// Tables that SQL cannot change as a replica would.
    special: std::rc::Rc<std::cell::RefCell<HashMap<(String, String), Special>>>,
}

/// Why SQL cannot change a table as a replica would.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Special {
    /// Only `BINLOG` statements apply its rows as a replica does, and why:
    /// triggers (SQL would fire them again), system versioning (SQL can
    /// neither set its period columns nor keep the server from writing
    /// history rows the binlog already holds).
    BinlogOnly(String),
    /// A MariaDB sequence: its changes are logged on their own, and the
    /// target then logs the next GTID twice (as SQL and as `BINLOG`
    /// statements alike); replay stops before it.
    Sequence,
}

/// A table to look up: schema, table and the table map's column count.
type TableRef = (String, String, usize);

impl TargetTables {
    /// A renderer of the SQL the target runs.
    fn renderer(&self, out: Box<dyn Write>) -> SqlRender<Box<dyn Write>> {
        SqlRender::new(out, true)
            .with_column_names(self.names.clone())
            .with_generated_columns(self.generated.clone())
            .with_multi_row_inserts()
            .with_row_session()
    }

    /// The tables a transaction changes that were not looked up yet. A
    /// transaction with a statement (DDL may add or drop columns and
    /// triggers) makes every table be looked up again after it.
    fn unknown(&self, maps: &[TableRef], statement: bool) -> Vec<TableRef> {
        if statement {
            self.names.borrow_mut().clear();
            self.generated.borrow_mut().clear();
            self.special.borrow_mut().clear();
        }
        let known = self.generated.borrow();
        maps.iter()
            .filter(|(schema, table, _)| !known.contains_key(&(schema.clone(), table.clone())))
            .cloned()
            .collect()
    }

    /// The first sequence of `maps`, as "`schema`.`name`".
    fn sequence(&self, maps: &[TableRef]) -> Option<String> {
        let special = self.special.borrow();
        maps.iter().find_map(|(schema, table, _)| match special.get(&(schema.clone(), table.clone())) {
            Some(Special::Sequence) => Some(quoted_table(schema, table)),
            _ => None,
        })
    }

    /// The first table of `maps` whose rows only `BINLOG` statements apply
    /// as a replica does, as "`schema`.`table` (why)".
    fn binlog_only(&self, maps: &[TableRef]) -> Option<String> {
        let special = self.special.borrow();
        maps.iter().find_map(|(schema, table, _)| match special.get(&(schema.clone(), table.clone())) {
            Some(Special::BinlogOnly(why)) => Some(format!("{} ({why})", quoted_table(schema, table))),
            _ => None,
        })
    }

    /// Reads `tables` from the target's information_schema (kept for the
    /// run). Names are kept for a table whose column count there is the
    /// table map's; otherwise the SQL renderer refuses a table map without
    /// names with a clear error instead of guessing.
    async fn look_up(&self, conn: &mut Connection, tables: &[TableRef]) -> Result<(), ReplayError> {
        for (schema, table, columns) in tables {
            let mut sql = String::from(
                "SELECT COLUMN_NAME, GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ",
            );
            push_quoted(&mut sql, schema);
            sql.push_str(" AND TABLE_NAME = ");
            push_quoted(&mut sql, table);
            sql.push_str(" ORDER BY ORDINAL_POSITION");
            let set = conn.query_rows(&sql).await?;
            let text = |v: &Option<Vec<u8>>| v.as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
            let found: Vec<(String, bool)> = set
                .rows
                .iter()
                .map(|row| {
                    let name = row.first().and_then(text).unwrap_or_default();
                    // NULL (MariaDB) or empty (MySQL) for an ordinary column.
                    let generated = row.get(1).and_then(text).is_some_and(|e| !e.is_empty());
                    (name, generated)
                })
                .collect();
            let key = (schema.clone(), table.clone());
            let generated =
                found.iter().enumerate().filter(|(_, (_, g))| *g).map(|(i, (n, _))| (n.as_str(), i));
            self.generated.borrow_mut().insert(key.clone(), GeneratedColumns::new(generated));
            if found.len() == *columns {
                self.names.borrow_mut().insert(key.clone(), found.into_iter().map(|(n, _)| n).collect());
            }
            let mut sql = String::from(
                "SELECT GROUP_CONCAT(TRIGGER_NAME ORDER BY TRIGGER_NAME SEPARATOR ', ') FROM information_schema.TRIGGERS \
                 WHERE EVENT_OBJECT_SCHEMA = ",
            );
            push_quoted(&mut sql, schema);
            sql.push_str(" AND EVENT_OBJECT_TABLE = ");
            push_quoted(&mut sql, table);
            let mut why = Vec::new();
            if let Some(names) = conn.query_value(&sql).await?.filter(|n| !n.is_empty()) {
                why.push(format!("triggers {names}"));
            }
            let mut sql =
                String::from("SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ");
            push_quoted(&mut sql, schema);
            sql.push_str(" AND TABLE_NAME = ");
            push_quoted(&mut sql, table);
            let special = match conn.query_value(&sql).await?.as_deref() {
                Some("SEQUENCE") => Some(Special::Sequence),
                Some("SYSTEM VERSIONED") => {
                    why.push("system-versioned".to_string());
                    Some(Special::BinlogOnly(why.join("; ")))
                }
                _ => (!why.is_empty()).then(|| Special::BinlogOnly(why.join("; "))),
            };
            if let Some(special) = special {
                self.special.borrow_mut().insert(key, special);
            }
        }
        Ok(())
    }
}

/// "`schema`.`table`".
fn quoted_table(schema: &str, table: &str) -> String {
    let mut shown = String::new();
    crate::render::sql::push_ident(&mut shown, schema);
    shown.push('.');
    crate::render::sql::push_ident(&mut shown, table);
    shown
}

/// The (schema, table, column count) of each table map of `unit`, and
/// whether it holds a statement (a QUERY event other than BEGIN/COMMIT).
fn table_maps(format: Option<&Received>, unit: &[(u64, &[u8])]) -> (Vec<TableRef>, bool) {
    let mut decoder = gapless_decoder::Decoder::new();
    if let Some(f) = format {
        let _ = decoder.decode(f.offset, &f.bytes);
    }
    let mut maps = Vec::new();
    let mut statement = false;
    for &(offset, event) in unit {
        if !matches!(event_type(event), Some(EventType::QUERY | EventType::TABLE_MAP)) {
            continue;
        }
        let Ok(ev) = decoder.decode(offset, event) else { continue };
        match &ev.data {
            gapless_decoder::EventData::Query(q) => {
                statement |= !crate::render::sql::is_transaction_control(&q.query)
            }
            gapless_decoder::EventData::TableMap(t) => {
                maps.push((t.schema.clone(), t.table.clone(), t.columns.len()))
            }
            _ => {}
        }
    }
    (maps, statement)
}

/// Record `i` of a unit as the renderer takes it (a copy of its event).
fn received(unit: &Unit<'_>, i: usize) -> Received {
    let r = &unit.records[i];
    let gtid = unit.gtid();
    Received {
        bytes: Bytes::copy_from_slice(r.event),
        file: std::sync::Arc::from(r.meta.file),
        offset: r.meta.start,
        end: r.meta.end,
        gtid: (!gtid.is_empty()).then(|| std::sync::Arc::from(gtid)),
        resent: r.meta.flags & RESENT != 0,
        crc32: r.meta.flags & CRC32 != 0,
    }
}

/// The unit at `at`, read from the ring again (to find a failed
/// transaction's event); `None` if the ring no longer has it there.
fn reread(reader: &RingReader, at: Location) -> Option<Vec<Received>> {
    let mut records = Vec::new();
    let start = reader.units(at).next_into(&mut records)?.ok()?;
    let unit = Unit { at: start, records };
    (start == at).then(|| (0..unit.records.len()).map(|i| received(&unit, i)).collect())
}

/// Whether an event changes data (or is part of a change): anything but
/// the file-level events a ring also holds (rotations, format
/// descriptions, GTID lists, checkpoints, heartbeats, stops).
fn is_data(event: &[u8]) -> bool {
    !matches!(
        event_type(event),
        None | Some(
            EventType::STOP
                | EventType::ROTATE
                | EventType::FORMAT_DESCRIPTION
                | EventType::HEARTBEAT
                | EventType::PREVIOUS_GTIDS
                | EventType::HEARTBEAT_V2
                | EventType::MARIA_BINLOG_CHECKPOINT
                | EventType::MARIA_GTID_LIST
                | EventType::MARIA_START_ENCRYPTION
        )
    )
}

/// Row events (v1 and v2, MariaDB compressed too).
fn is_rows(event: &[u8]) -> bool {
    matches!(event.get(4), Some(23..=25 | 30..=32 | 166..=171))
}
