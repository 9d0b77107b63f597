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
//!   target's binlog (never `sql_log_bin=0`), all or nothing: it is sent as
//!   one multi-statement query, and the first error rolls it back and stops
//!   the run, naming the transaction and the server's error;
//! - the ring must cover what the target lacks: a gap between the target's
//!   position and the ring's first transaction of a domain stops the run
//!   before anything is applied.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gapless_decoder::gtid::{Gtid, GtidSet, MariaGtid, MariaGtidList};
use gapless_protocol::client::{ClientError, ConnectOptions, Connection};
use serde::Serialize;
use thiserror::Error;
use tracing::info;

use crate::render::{renderer, Format, Options};
use crate::ring::record::{CRC32, RESENT};
use crate::ring::{RingError, RingReader, Unit};
use crate::stream::{Received, RenderSink, SharedBuf, Sink, SinkError};

/// What the target has executed, as GTIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    /// MariaDB: the last GTID of each domain.
    Maria(MariaGtidList),
    /// MySQL: the executed set.
    Mysql(GtidSet),
}

impl Executed {
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
    /// Read the target's executed GTIDs from it.
    Auto,
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
    /// Print the SQL instead of running it.
    pub dry_run: bool,
    /// Stop (and fail) once this much time has passed.
    pub deadline: Option<Duration>,
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
    /// The target's executed GTIDs at the start.
    pub target_executed: String,
    /// Transactions applied, in order.
    pub applied: Vec<Applied>,
    /// Transactions the target had already executed.
    pub skipped_executed: u64,
    /// Events outside transactions (rotations, checkpoints, format copies),
    /// which are not applied.
    pub skipped_other: u64,
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
        "transaction {gtid} ({file}:{start}) failed on {target} and was rolled back: {error}; \
         {applied} transaction(s) were applied before it"
    )]
    Apply {
        /// Its GTID.
        gtid: String,
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
    /// No start point could be worked out.
    #[error("{0}")]
    NoStart(String),
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
}

/// Runs the replay; with `dry_run` the SQL goes to `out` instead.
pub async fn run(plan: &ReplayPlan, out: &mut dyn Write) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let reader = RingReader::open(&plan.ring)?;
    let target = plan.target.addr();
    let needs_connection = !plan.dry_run || matches!(plan.start, ReplayStart::Auto);
    let mut conn = match needs_connection {
        true => {
            let mut options = plan.target.clone();
            options.multi_statements = true;
            Some(Connection::connect(&options).await?)
        }
        false => None,
    };
    let executed = match (&plan.start, conn.as_mut()) {
        (ReplayStart::AfterGtid(e), _) => e.clone(),
        (ReplayStart::Auto, Some(c)) => executed_on(c).await?,
        (ReplayStart::Auto, None) => unreachable!("a connection is made for --auto"),
    };
    info!(target = %target, executed = %executed, ring = %plan.ring.display(), "replay start point");
    let mut report =
        Report { target_executed: executed.to_string(), dry_run: plan.dry_run, ..Default::default() };

    // The FORMAT_DESCRIPTION in force: each transaction is rendered by a
    // fresh renderer that first decodes it, so every transaction's SQL
    // carries its own session set-up (USE, sql_mode, …) whatever was
    // skipped before it.
    let mut format: Option<Received> = None;
    let mut checked_sources: BTreeMap<String, ()> = BTreeMap::new();
    let mut units = reader.units(reader.start());
    let mut records = Vec::new();
    while let Some(at) = units.next_into(&mut records) {
        let unit = Unit { at: at?, records: std::mem::take(&mut records) };
        let received = to_received(&unit);
        if let Some(fde) = received.iter().rev().find(|r| r.bytes.get(4) == Some(&FORMAT_DESCRIPTION)) {
            format = Some(Received { resent: true, ..fde.clone() });
        }
        let gtid = unit.gtid().to_string();
        let first = &unit.records[0].meta;
        if first.flags & RESENT != 0 || gtid.is_empty() {
            report.skipped_other += 1;
            records = unit.records;
            continue;
        }
        let done = executed.contains(&gtid).ok_or_else(|| {
            ReplayError::NoStart(format!(
                "the ring holds transaction {gtid}, which is not of the kind of GTIDs of the start point {executed}"
            ))
        })?;
        if done {
            report.skipped_executed += 1;
            records = unit.records;
            continue;
        }
        check_no_gap(&executed, &gtid, &target, &mut checked_sources)?;
        if let Some(limit) = plan.deadline {
            if started.elapsed() >= limit {
                return Err(ReplayError::Deadline {
                    seconds: limit.as_secs_f64(),
                    applied: report.applied.len(),
                });
            }
        }
        let sql = render(format.as_ref(), &received, &gtid, first.file, first.start)?;
        let applied = Applied {
            gtid: gtid.clone(),
            file: first.file.to_string(),
            start: first.start,
            end: unit.records.last().map_or(first.end, |r| r.meta.end),
            row_events: unit.records.iter().filter(|r| is_rows(r.event)).count() as u64,
        };
        match conn.as_mut().filter(|_| !plan.dry_run) {
            None => out.write_all(sql.as_bytes())?,
            Some(c) => {
                if let Err(error) = c.query(&sql).await {
                    // All or nothing: the statements after the failing one
                    // did not run; undo the ones before it.
                    let _ = c.query("ROLLBACK").await;
                    return Err(ReplayError::Apply {
                        gtid,
                        file: applied.file,
                        start: applied.start,
                        target,
                        error: Box::new(error),
                        applied: report.applied.len(),
                    });
                }
            }
        }
        info!(gtid = %applied.gtid, at = %format!("{}:{}", applied.file, applied.start), rows = applied.row_events, dry_run = plan.dry_run, "applied");
        report.applied.push(applied);
        records = unit.records;
    }
    if let Some(c) = conn {
        c.close().await;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What the target has executed. MariaDB: per domain the later of
/// `gtid_binlog_pos` and `gtid_slave_pos` (what it wrote, and what it
/// replicated; `gtid_current_pos` would hide transactions replayed with
/// another server's id). MySQL: `gtid_executed`.
async fn executed_on(conn: &mut Connection) -> Result<Executed, ReplayError> {
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

/// A unit's records as the renderer takes them.
fn to_received(unit: &Unit<'_>) -> Vec<Received> {
    let file: std::sync::Arc<str> = std::sync::Arc::from(unit.records[0].meta.file);
    let gtid = Some(unit.gtid()).filter(|g| !g.is_empty()).map(std::sync::Arc::from);
    unit.records
        .iter()
        .map(|r| Received {
            bytes: Bytes::copy_from_slice(r.event),
            file: file.clone(),
            offset: r.meta.start,
            end: r.meta.end,
            gtid: gtid.clone(),
            resent: r.meta.flags & RESENT != 0,
            crc32: r.meta.flags & CRC32 != 0,
        })
        .collect()
}

/// The SQL of one transaction, with its session set-up and GTID.
fn render(
    format: Option<&Received>,
    unit: &[Received],
    gtid: &str,
    file: &str,
    start: u64,
) -> Result<String, ReplayError> {
    let fail = |error| ReplayError::Render {
        gtid: gtid.to_string(),
        file: file.to_string(),
        start,
        error: Box::new(error),
    };
    let buf = SharedBuf::default();
    let mut sink =
        RenderSink::new(renderer(Format::Sql, Options { keep_gtids: true }, Box::new(buf.clone())));
    if let Some(format) = format {
        sink.write(std::slice::from_ref(format)).map_err(fail)?;
    }
    sink.write(unit).map_err(fail)?;
    sink.flush().map_err(fail)?;
    drop(sink);
    Ok(String::from_utf8_lossy(&buf.take()).into_owned())
}

/// The FORMAT_DESCRIPTION event's type code.
const FORMAT_DESCRIPTION: u8 = 15;

/// Row events (v1 and v2, MariaDB compressed too).
fn is_rows(event: &[u8]) -> bool {
    matches!(event.get(4), Some(23..=25 | 30..=32 | 166..=171))
}
