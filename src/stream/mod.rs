//! `gapless stream`: follow a primary's binlog as a replica would, and hand
//! each transaction on once it is complete.
//!
//! The loop connects, streams, and on a broken connection or a restarted
//! primary reconnects with backoff, resuming just past the last whole
//! transaction it handed on: the output has no gap and no duplicate across
//! reconnects. Errors that will not go away by retrying (wrong password, a
//! purged position, a server id taken by another replica) stop it with the
//! server's own message.

mod output;
mod session;
mod status;
mod tracker;

use std::time::Duration;

use gapless_protocol::client::{BinlogStream, ClientError};
use thiserror::Error;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::ring::{Coordinates, Published};

pub use output::{ParallelJsonlSink, RawSink, RenderSink, SharedBuf, Sink, SinkError};
pub use session::{DumpFrom, SessionConfig};
pub use status::StreamStatus;
pub use tracker::{Received, ResumePoint, TrackError, Tracker};

/// Where the stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The primary's current end of binlog: only new transactions.
    Current,
    /// A file and position, or after a GTID position.
    At(DumpFrom),
    /// Where an earlier run left off (the ring's resume point).
    Resume {
        /// The point.
        point: ResumePoint,
        /// Resume by GTID rather than by file and position.
        by_gtid: bool,
    },
}

/// What to stream and how.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    /// Connection and session settings.
    pub session: SessionConfig,
    /// The replica server id; picked from the free ones when `None`.
    pub server_id: Option<u32>,
    /// Where to start.
    pub start: Start,
    /// The longest wait between reconnect attempts.
    pub max_backoff: Duration,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Binlog events received (heartbeats and made-up events not counted).
    pub events: u64,
    /// Transactions and other units handed on.
    pub units: u64,
    /// Connections opened (1 + reconnects).
    pub connections: u64,
    /// Semi-sync ACKs sent.
    pub acks: u64,
    /// Where a next run would resume.
    pub resume: ResumePoint,
}

/// Keeps the published [`StreamStatus`] up to date.
struct Reporter<'a> {
    status: &'a Published<StreamStatus>,
    plan: &'a StreamPlan,
}

impl Reporter<'_> {
    fn update(&mut self, change: impl FnOnce(&mut StreamStatus)) {
        let mut status = self.status.load();
        status.source = self.plan.session.connect.addr();
        status.semi_sync_requested = self.plan.session.semi_sync;
        change(&mut status);
        self.status.store(status);
    }

    /// At a pause in the stream: what was received so far (`last_unit`:
    /// the last unit handed on since the previous report).
    fn progress(&mut self, tracker: &Tracker, summary: &Summary, last_unit: Option<tracker::Received>) {
        self.update(|s| {
            if let Some(last) = last_unit {
                s.last_received = Some(Coordinates {
                    file: last.file.to_string(),
                    position: last.end,
                    gtid: last.gtid.as_deref().unwrap_or("").to_string(),
                    timestamp: crate::ring::record::event_timestamp(&last.bytes),
                });
            }
            if let Some((file, pos)) = tracker.primary_position() {
                s.primary_file = Some(file.to_string());
                s.primary_position = Some(pos);
            }
            // The primary is at least as far as what was received from it.
            if let Some(last) = &s.last_received {
                let behind = match (&s.primary_file, s.primary_position) {
                    (Some(f), Some(p)) => {
                        crate::ring::index::cmp_coords(f, p, &last.file, last.position)
                            == std::cmp::Ordering::Less
                    }
                    _ => true,
                };
                if behind {
                    s.primary_file = Some(last.file.clone());
                    s.primary_position = Some(last.position);
                }
            }
            s.last_contact = Some(unix_now());
            s.events = summary.events;
            s.units = summary.units;
            s.acks_sent = summary.acks;
            s.semi_sync_active = summary.acks > 0;
        });
    }

    fn error(&mut self, e: &StreamError) {
        self.update(|s| s.last_error = Some(e.to_string()));
    }

    fn disconnected(&mut self, e: Option<&StreamError>) {
        self.update(|s| {
            s.connected = false;
            if let Some(e) = e {
                s.last_error = Some(e.to_string());
            }
        });
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Why streaming stopped.
#[derive(Debug, Error)]
pub enum StreamError {
    /// Talking to the primary failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server id is registered by another replica.
    #[error(
        "{addr}: server id {server_id} is already used by the replica at '{host}'; \
         streaming with it would disconnect that replica. Pick another --server-id (or leave it out)"
    )]
    DuplicateServerId {
        /// The primary.
        addr: String,
        /// The id.
        server_id: u32,
        /// The other replica's reported host.
        host: String,
    },
    /// The primary kicked this stream off for another replica with the same
    /// server id.
    #[error(
        "{addr}: the primary dropped this stream for another replica with server id {server_id} ('{host}')"
    )]
    Replaced {
        /// The primary.
        addr: String,
        /// The id.
        server_id: u32,
        /// The other replica's reported host.
        host: String,
    },
    /// A GTID start of the other server family.
    #[error("{addr} is {server}, but --from-gtid gave {given}")]
    GtidFlavor {
        /// The primary.
        addr: String,
        /// "MariaDB" or "MySQL".
        server: &'static str,
        /// What was given.
        given: String,
    },
    /// Binary logging is off on the primary.
    #[error("{addr}: SHOW MASTER STATUS is empty: binary logging is disabled on this server (log_bin=OFF)")]
    NoBinlog {
        /// The primary.
        addr: String,
    },
    /// COM_BINLOG_DUMP carries 32-bit positions.
    #[error("{file}:{position}: positions past 4 GiB can only be reached with --from-gtid")]
    PositionTooLarge {
        /// File.
        file: String,
        /// Position.
        position: u64,
    },
    /// The streamed events did not decode.
    #[error(transparent)]
    Track(#[from] TrackError),
    /// Output failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl StreamError {
    fn is_transient(&self) -> bool {
        matches!(self, StreamError::Client(e) if e.is_transient())
    }

    /// The primary ended the stream because another replica connected with
    /// the same server id (MariaDB 4052; MySQL 1236 with this message).
    fn is_same_server_id(&self) -> bool {
        let StreamError::Client(e) = self else { return false };
        e.server_error().is_some_and(|e| {
            e.code == 4052 || (e.code == 1236 && e.message.contains("same server_uuid/server_id"))
        })
    }
}

/// Streams until `stop` turns true, or a permanent error.
pub async fn run(
    plan: &StreamPlan,
    sink: &mut dyn Sink,
    status: &Published<StreamStatus>,
    mut stop: watch::Receiver<bool>,
) -> Result<Summary, StreamError> {
    let mut summary = Summary::default();
    let mut report = Reporter { status, plan };
    let (server_id, mut tracker, gtid_mode) = match prepare(plan, &mut stop).await? {
        Some(ready) => ready,
        None => return Ok(summary),
    };
    sink.start(tracker.resume_point(), gtid_mode)?;
    report.update(|s| s.server_id = Some(server_id));
    let mut backoff = Backoff::new(plan.max_backoff);
    let mut units = Vec::new();
    loop {
        let from = dump_from(tracker.resume_point(), gtid_mode);
        let opened = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            r = session::open(&plan.session, server_id, &from) => r,
        };
        let (mut stream, checksums) = match opened {
            Ok(s) => s,
            Err(e) if e.is_transient() => {
                let wait = backoff.next();
                warn!("{e}; retrying in {wait:?}");
                report.error(&e);
                if sleep_or_stop(wait, &mut stop).await {
                    break;
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        summary.connections += 1;
        tracker.reconnected(checksums);
        report.update(|s| {
            s.connected = true;
            s.connections = summary.connections;
            s.last_error = None;
        });
        let result =
            match pump(&mut stream, &mut tracker, sink, &mut units, &mut summary, &mut report, &mut stop)
                .await
            {
                // The dump is blocking: the primary ends it (EOF) only when
                // it shuts down. Reconnect as after any dropped connection.
                Ok(()) if !*stop.borrow() => {
                    Err(StreamError::Client(ClientError::Closed { addr: plan.session.connect.addr() }))
                }
                other => other,
            };
        units.clear();
        report.disconnected(result.as_ref().err());
        match result {
            Ok(()) => break,
            Err(StreamError::Sink(e)) if e.is_transient() => {
                drop(stream);
                error!("{e}; streaming is paused until the output can be written again");
                match reopen_sink(sink, &mut backoff, &mut stop).await {
                    Some(Some(point)) => tracker = Tracker::new(point),
                    Some(None) => {}
                    None => break,
                }
            }
            Err(e) if e.is_transient() => {
                if let Err(e) = sink.flush() {
                    // The next write finds the same trouble and pauses.
                    if !e.is_transient() {
                        return Err(e.into());
                    }
                }
                let (file, pos) = tracker.position();
                warn!(at = %format!("{file}:{pos}"), "{e}");
                // A primary that closes the stream may have handed our id to
                // another replica; one that is unreachable has not.
                let closed =
                    matches!(e, StreamError::Client(ClientError::Closed { .. } | ClientError::Io { .. }));
                if let Some(replaced) = if closed { replaced_by_twin(plan, server_id).await } else { None } {
                    return Err(replaced);
                }
                backoff.reset_if_streamed(summary.events);
                let wait = backoff.next();
                info!(resume = %dump_from(tracker.resume_point(), gtid_mode), "reconnecting in {wait:?}");
                if sleep_or_stop(wait, &mut stop).await {
                    break;
                }
            }
            Err(e) => {
                let _ = sink.flush();
                if e.is_same_server_id() {
                    return Err(replaced_by_twin(plan, server_id).await.unwrap_or(StreamError::Replaced {
                        addr: plan.session.connect.addr(),
                        server_id,
                        host: "unknown".into(),
                    }));
                }
                return Err(e);
            }
        }
    }
    sink.flush()?;
    summary.resume = tracker.resume_point().clone();
    Ok(summary)
}

/// After the sink failed for a reason that may pass (a full disk): waits
/// and retries until it takes units again. Returns where to resume (`None`
/// inside: where the tracker is), or `None` when asked to stop.
async fn reopen_sink(
    sink: &mut dyn Sink,
    backoff: &mut Backoff,
    stop: &mut watch::Receiver<bool>,
) -> Option<Option<ResumePoint>> {
    loop {
        let wait = backoff.next();
        if sleep_or_stop(wait, stop).await {
            return None;
        }
        match sink.reopen() {
            Ok(point) => {
                info!("the output can be written again; resuming the stream");
                return Some(point);
            }
            Err(e) => error!("{e}; still paused, retrying in {:?}", backoff.next),
        }
    }
}

/// Picks the server id and the start point; `None` if stopped meanwhile.
async fn prepare(
    plan: &StreamPlan,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<(u32, Tracker, bool)>, StreamError> {
    let mut backoff = Backoff::new(plan.max_backoff);
    loop {
        let attempt = async {
            let mut conn = session::connect(&plan.session).await?;
            let server_id = match plan.server_id {
                Some(id) => id,
                None => session::pick_server_id(&mut conn).await?,
            };
            let from = match &plan.start {
                Start::Current => Some(session::current_position(&mut conn).await?),
                Start::At(from) => Some(session::fit_flavor(from, &conn)?),
                Start::Resume { .. } => None,
            };
            conn.close().await;
            Ok::<_, StreamError>((server_id, from))
        };
        let result = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return Ok(None),
            r = attempt => r,
        };
        match result {
            Ok((server_id, None)) => {
                let Start::Resume { point, by_gtid } = &plan.start else {
                    unreachable!("only a resume has no start")
                };
                return Ok(Some((server_id, Tracker::new(point.clone()), *by_gtid)));
            }
            Ok((server_id, Some(from))) => {
                let gtid_mode = !matches!(from, DumpFrom::Position { .. });
                let mut resume = ResumePoint::default();
                match from {
                    DumpFrom::Position { file, position } => {
                        resume.file = file;
                        resume.position = position;
                    }
                    DumpFrom::MariaGtid(list) => resume.maria = list,
                    DumpFrom::MysqlGtid(set) => resume.mysql = set,
                }
                return Ok(Some((server_id, Tracker::new(resume), gtid_mode)));
            }
            Err(e) if e.is_transient() => {
                let wait = backoff.next();
                warn!("{e}; retrying in {wait:?}");
                if sleep_or_stop(wait, stop).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The dump start for the resume point: by GTID when the run started by
/// GTID, else by file and position.
fn dump_from(resume: &ResumePoint, gtid_mode: bool) -> DumpFrom {
    match gtid_mode {
        true if !resume.mysql.is_empty() => DumpFrom::MysqlGtid(resume.mysql.clone()),
        true => DumpFrom::MariaGtid(resume.maria.clone()),
        false => DumpFrom::Position { file: resume.file.clone(), position: resume.position },
    }
}

/// How long the stream may be quiet before the output is written out.
pub const IDLE_FLUSH: Duration = Duration::from_millis(20);

/// How often the published status is updated while events keep coming.
const REPORT_EVERY: Duration = Duration::from_millis(50);

/// Moves events from the stream through the tracker to the sink until the
/// stream ends, fails, or `stop` turns true.
async fn pump(
    stream: &mut BinlogStream,
    tracker: &mut Tracker,
    sink: &mut dyn Sink,
    units: &mut Vec<tracker::Received>,
    summary: &mut Summary,
    report: &mut Reporter<'_>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), StreamError> {
    // The (file, end) of the last event the primary wants acknowledged.
    let mut ack: Option<(String, u64)> = None;
    // The last unit handed on since the status was updated, and when it
    // was last updated.
    let mut last_unit: Option<tracker::Received> = None;
    let mut reported = std::time::Instant::now();
    let delay = sink.flush_delay();
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let next = match stream.try_next()? {
            Some(next) => next,
            None => {
                // All that arrived together is handed on: make it durable
                // once, and acknowledge the last event asked for (an ACK
                // covers everything before it).
                if let Some((file, pos)) = ack.take_if(|_| !tracker.in_transaction()) {
                    sink.sync()?;
                    stream.ack(file.as_bytes(), pos).await?;
                    summary.acks += 1;
                    tracing::debug!(file = %file, position = pos, "semi-sync ACK sent");
                }
                // The status is brought up to date at most every
                // REPORT_EVERY while events keep coming, and whenever the
                // stream goes quiet (below). A sink flushed at every pause
                // (the ring) cannot tell a pause from the end of a burst:
                // it reports at every pause.
                if delay.is_zero() || reported.elapsed() >= REPORT_EVERY {
                    report.progress(tracker, summary, last_unit.take());
                    reported = std::time::Instant::now();
                }
                // Unless the sink wants every pause flushed, wait a little
                // first: flushing at every empty read would make the output
                // wait on each socket read.
                let soon = if delay.is_zero() {
                    sink.flush()?;
                    Err(())
                } else {
                    tokio::select! {
                        biased;
                        _ = stop.wait_for(|s| *s) => return Ok(()),
                        next = tokio::time::timeout(delay, stream.next()) => next.map_err(|_| ()),
                    }
                };
                match soon {
                    Ok(next) => next?,
                    Err(()) => {
                        if !delay.is_zero() {
                            sink.flush()?;
                            report.progress(tracker, summary, last_unit.take());
                            reported = std::time::Instant::now();
                        }
                        tokio::select! {
                            biased;
                            _ = stop.wait_for(|s| *s) => return Ok(()),
                            next = stream.next() => next?,
                        }
                    }
                }
            }
        };
        let Some(event) = next else { return Ok(()) };
        if tracker.push(event.bytes, units)? {
            summary.events += 1;
        }
        if event.needs_ack {
            let (file, pos) = tracker.position();
            ack = Some((file.to_string(), pos));
        }
        if let Some(last) = units.last() {
            summary.units += 1;
            if !last.resent {
                last_unit = Some(last.clone());
            }
            sink.write(units)?;
            units.clear();
        }
    }
}

/// After a dropped connection: if another replica now holds our server id,
/// the primary dropped us for it.
async fn replaced_by_twin(plan: &StreamPlan, server_id: u32) -> Option<StreamError> {
    let mut conn = session::connect(&plan.session).await.ok()?;
    let replicas = session::replica_ids(&mut conn).await.ok()?;
    conn.close().await;
    replicas.into_iter().find_map(|(id, host)| {
        (id == server_id && host != plan.session.report_host).then(|| StreamError::Replaced {
            addr: plan.session.connect.addr(),
            server_id,
            host,
        })
    })
}

/// Sleeps, or returns true early when asked to stop.
async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

/// Exponential backoff from 250 ms up to a ceiling.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    max: Duration,
    events_at_last_reset: u64,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);

    fn new(max: Duration) -> Self {
        Backoff { next: Self::FIRST, max, events_at_last_reset: 0 }
    }

    fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// A connection that delivered events was healthy: start over from the
    /// short wait.
    fn reset_if_streamed(&mut self, events: u64) {
        if events > self.events_at_last_reset {
            self.next = Self::FIRST;
            self.events_at_last_reset = events;
        }
    }
}

/// How often [`watch_primary`] asks the primary where its binlog ends.
const PRIMARY_POLL: Duration = Duration::from_secs(5);

/// Asks the primary for its binlog position every few seconds (on a
/// connection of its own) and publishes it, so the status shows how far the
/// stream is behind. Runs until `stop`.
pub async fn watch_primary(
    session: SessionConfig,
    status: std::sync::Arc<Published<StreamStatus>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = None;
    loop {
        if conn.is_none() {
            conn = session::connect(&session).await.ok();
        }
        if let Some(c) = conn.as_mut() {
            match session::current_position(c).await {
                Ok(DumpFrom::Position { file, position }) => {
                    let mut s = status.load();
                    s.primary_file = Some(file);
                    s.primary_position = Some(position);
                    status.store(s);
                }
                _ => conn = None,
            }
        }
        if sleep_or_stop(PRIMARY_POLL, &mut stop).await {
            if let Some(c) = conn {
                c.close().await;
            }
            return;
        }
    }
}
