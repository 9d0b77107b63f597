//! The decision, without I/O: observations go in with the instant they
//! were made, a [`Verdict`] comes out.
//!
//! The rule, in the order it is applied:
//!
//! 1. The stream is up (connected, and heard from within the stream
//!    silence): **alive**. Whatever probes said before is forgotten.
//! 2. The latest probe answered: **alive**.
//! 3. Probes fail, but for less than `dead_after` (measured from the start
//!    of the first failed probe to the end of the latest one), or fewer
//!    than [`MIN_FAILURES`] of them: **unreachable**.
//! 4. Probes have failed long enough:
//!    - no replica known: **dead**;
//!    - a replica still replicates: **unreachable** (the sidecar is the one
//!      cut off, or the primary talks to its replicas only);
//!    - none does, and at least one reachable replica says it cannot:
//!      **dead**;
//!    - no replica could say (none reached, or none replicating from this
//!      primary): **unreachable**, because the sidecar may be the one cut off.
//!
//! A replica "still replicates" when its IO thread runs and it has heard
//! from the primary recently: its received-heartbeat count or its read
//! position changed within two of its heartbeat periods (plus one sampling
//! interval, since changes are only seen when sampled). This matters for a
//! primary stopped with SIGSTOP: its TCP connections stay up and the IO
//! thread keeps saying `Yes`, but nothing arrives. A replica without a
//! heartbeat period cannot be checked that way, so its IO thread is trusted
//! (it notices a silent primary after `slave_net_timeout`). A replica that
//! cannot be reached, or whose replication was stopped by hand, proves
//! nothing either way.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Probes that must have failed, however long they took, before the
/// primary can be called dead: one failure is not "repeated".
pub const MIN_FAILURES: u32 = 2;

/// What the sidecar thinks of its primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrimaryState {
    /// Streaming, or answering probes.
    Alive,
    /// The sidecar cannot reach it, or cannot yet confirm it is dead.
    Unreachable,
    /// Down for the sidecar for long enough, and no replica hears from it.
    Dead,
}

impl PrimaryState {
    /// Every state, for pages that list them all.
    pub const ALL: [PrimaryState; 3] = [PrimaryState::Alive, PrimaryState::Unreachable, PrimaryState::Dead];

    /// The lowercase name (`alive`, `unreachable`, `dead`).
    pub fn as_str(self) -> &'static str {
        match self {
            PrimaryState::Alive => "alive",
            PrimaryState::Unreachable => "unreachable",
            PrimaryState::Dead => "dead",
        }
    }
}

impl fmt::Display for PrimaryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The step of a probe that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening the TCP connection.
    Connect,
    /// The handshake and login.
    Login,
    /// `SELECT 1`.
    Query,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "TCP connect",
            Stage::Login => "login",
            Stage::Query => "SELECT 1",
        })
    }
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailure {
    /// The step that failed.
    pub stage: Stage,
    /// The error (it names the server).
    pub error: String,
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.stage, self.error)
    }
}

/// A replica's IO thread (`Slave_IO_Running`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoThread {
    /// `Yes`: connected to the primary.
    Yes,
    /// `Connecting`: trying to (re)connect.
    Connecting,
    /// `No`: stopped.
    No,
    /// Anything else the server said.
    Other(String),
}

impl IoThread {
    /// Reads the column's text.
    pub fn parse(text: &str) -> IoThread {
        match text.trim() {
            t if t.eq_ignore_ascii_case("Yes") => IoThread::Yes,
            t if t.eq_ignore_ascii_case("Connecting") => IoThread::Connecting,
            t if t.eq_ignore_ascii_case("No") => IoThread::No,
            t => IoThread::Other(t.to_string()),
        }
    }
}

impl fmt::Display for IoThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoThread::Yes => f.write_str("Yes"),
            IoThread::Connecting => f.write_str("Connecting"),
            IoThread::No => f.write_str("No"),
            IoThread::Other(t) => f.write_str(t),
        }
    }
}

/// What one replica said about its replication from the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSample {
    /// Its IO thread.
    pub io: IoThread,
    /// The IO thread's last error, when it has one.
    pub io_error: Option<String>,
    /// `Slave_heartbeat_period`: `None` when the server does not show it,
    /// zero when heartbeats are off.
    pub heartbeat_period: Option<Duration>,
    /// `Slave_received_heartbeats`, when shown.
    pub heartbeats: Option<u64>,
    /// `Master_Log_File` and `Read_Master_Log_Pos`, when shown.
    pub read_position: Option<(String, u64)>,
}

impl ReplicaSample {
    /// Whether `self` shows something received since `before`.
    fn moved_since(&self, before: &ReplicaSample) -> bool {
        self.heartbeats != before.heartbeats || self.read_position != before.read_position
    }
}

/// One look at a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaSeen {
    /// It could not be reached or queried (the error).
    Unreachable(String),
    /// It answered, but does not replicate from this primary (why).
    NotAReplica(String),
    /// Its replication from this primary.
    Status(ReplicaSample),
}

/// Something observed, at the instant given with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The stream's state.
    Stream {
        /// Connected and streaming.
        connected: bool,
        /// Time since the last event or heartbeat (`None`: nothing yet).
        silent_for: Option<Duration>,
    },
    /// A probe that ended at the instant given; it started at `started`.
    Probe {
        /// When it started.
        started: Instant,
        /// Its outcome.
        result: Result<(), ProbeFailure>,
    },
    /// A replica to consult (known from the flags or discovered).
    ReplicaKnown {
        /// `host:port`.
        addr: String,
    },
    /// A look at a replica (made known by this too).
    Replica {
        /// `host:port`.
        addr: String,
        /// What it said.
        seen: ReplicaSeen,
    },
}

/// How patient the decider is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeciderConfig {
    /// How long probes must have failed before the primary can be dead.
    pub dead_after: Duration,
    /// A connected stream that has heard nothing for longer is down.
    pub stream_silence: Duration,
    /// How often replicas are sampled: a change happening right after a
    /// sample is seen only at the next.
    pub sample_interval: Duration,
}

/// The current judgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The state.
    pub state: PrimaryState,
    /// When the decider entered it.
    pub since: Instant,
    /// Why, in words for the log and the status page.
    pub reason: String,
}

/// A change of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The state before (`None` for the first judgement).
    pub previous: Option<PrimaryState>,
    /// The new judgement.
    pub verdict: Verdict,
    /// Changes so far, this one included (the first judgement is 1).
    pub number: u64,
}

/// What a replica says about the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Testimony {
    /// Its IO thread runs and it heard from the primary recently.
    Replicates,
    /// It cannot replicate: the IO thread is reconnecting, failed, or hears
    /// nothing.
    CannotReplicate,
    /// It cannot say: unreachable, not replicating from this primary, or
    /// stopped by hand.
    ProvesNothing,
}

/// A replica as the decider sees it, for the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    /// `host:port`.
    pub addr: String,
    /// What it says.
    pub testimony: Testimony,
    /// Its IO thread, when it was reached.
    pub io: Option<String>,
    /// Why, in words.
    pub detail: String,
}

/// The latest probes since the stream went down.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probes {
    /// None since the stream was last up.
    None,
    /// The latest answered.
    Answered,
    /// The latest `count` failed; the first started at `since`, the latest
    /// ended at `last_end`.
    Failing { since: Instant, last_end: Instant, count: u32, last: ProbeFailure },
}

/// What is known of one replica.
#[derive(Debug, Clone, Default)]
struct Track {
    /// The latest look (`None`: not looked at yet).
    latest: Option<(Instant, ReplicaSeen)>,
    /// The latest status sample, kept across failed looks to compare with.
    sample: Option<ReplicaSample>,
    /// When the sample was first seen or last changed.
    moved_at: Option<Instant>,
}

/// Turns observations into a [`Verdict`]; see the module docs for the rule.
#[derive(Debug, Clone)]
pub struct Decider {
    config: DeciderConfig,
    /// The stream's latest state: `None` before it is observed.
    stream_up: Option<bool>,
    probes: Probes,
    replicas: BTreeMap<String, Track>,
    current: Option<Verdict>,
    changes: u64,
}

impl Decider {
    /// A decider that has seen nothing.
    pub fn new(config: DeciderConfig) -> Decider {
        Decider {
            config,
            stream_up: None,
            probes: Probes::None,
            replicas: BTreeMap::new(),
            current: None,
            changes: 0,
        }
    }

    /// The current judgement (`None` before the first).
    pub fn verdict(&self) -> Option<&Verdict> {
        self.current.as_ref()
    }

    /// Changes of state so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Whether the primary should be probed and the replicas sampled now:
    /// whenever the stream is not known to be up.
    pub fn wants_checks(&self) -> bool {
        self.stream_up != Some(true)
    }

    /// Takes in one observation made at `at`.
    pub fn observe(&mut self, at: Instant, observation: Observation) {
        match observation {
            Observation::Stream { connected, silent_for } => {
                let up = connected && silent_for.is_none_or(|s| s <= self.config.stream_silence);
                if up {
                    // The stream is the best proof: start afresh when it
                    // goes down again (old samples say nothing then).
                    self.probes = Probes::None;
                    for track in self.replicas.values_mut() {
                        *track = Track::default();
                    }
                }
                self.stream_up = Some(up);
            }
            Observation::Probe { started, result } => {
                self.probes = match (result, &self.probes) {
                    (Ok(()), _) => Probes::Answered,
                    (Err(failure), Probes::Failing { since, last_end, count, .. }) => Probes::Failing {
                        since: (*since).min(started.min(at)),
                        last_end: (*last_end).max(at),
                        count: count.saturating_add(1),
                        last: failure,
                    },
                    (Err(failure), _) => {
                        Probes::Failing { since: started.min(at), last_end: at, count: 1, last: failure }
                    }
                };
            }
            Observation::ReplicaKnown { addr } => {
                self.replicas.entry(addr).or_default();
            }
            Observation::Replica { addr, seen } => {
                let track = self.replicas.entry(addr).or_default();
                if let ReplicaSeen::Status(sample) = &seen {
                    let moved = match &track.sample {
                        None => true,
                        Some(before) => sample.moved_since(before),
                    };
                    if moved {
                        track.moved_at = Some(at);
                    }
                    track.sample = Some(sample.clone());
                }
                track.latest = Some((at, seen));
            }
        }
    }

    /// Judges at `now`; returns the change when the state changed.
    pub fn decide(&mut self, now: Instant) -> Option<Change> {
        let (state, reason) = self.assess()?;
        match &mut self.current {
            Some(current) if current.state == state => {
                current.reason = reason;
                None
            }
            _ => {
                let previous = self.current.as_ref().map(|v| v.state);
                let verdict = Verdict { state, since: now, reason };
                self.current = Some(verdict.clone());
                self.changes += 1;
                Some(Change { previous, verdict, number: self.changes })
            }
        }
    }

    /// The replicas, as they look now.
    pub fn replicas(&self) -> Vec<ReplicaView> {
        self.replicas
            .iter()
            .map(|(addr, track)| {
                let (testimony, detail) = self.testimony(track);
                let io = match &track.latest {
                    Some((_, ReplicaSeen::Status(s))) => Some(s.io.to_string()),
                    _ => None,
                };
                ReplicaView { addr: addr.clone(), testimony, io, detail }
            })
            .collect()
    }

    /// The state and reason the observations support, or `None` when there
    /// is nothing to go on yet (the current judgement then stands).
    fn assess(&self) -> Option<(PrimaryState, String)> {
        if self.stream_up == Some(true) {
            return Some((PrimaryState::Alive, "streaming".into()));
        }
        let (since, last_end, count, last) = match &self.probes {
            Probes::None => return None,
            Probes::Answered => {
                return Some((PrimaryState::Alive, "answers probes (the stream is not connected)".into()))
            }
            Probes::Failing { since, last_end, count, last } => (*since, *last_end, *count, last),
        };
        let failed_for = last_end.saturating_duration_since(since);
        let unanswered = format!("no answer for {} ({last})", secs(failed_for));
        if count < MIN_FAILURES || failed_for < self.config.dead_after {
            return Some((
                PrimaryState::Unreachable,
                format!("{unanswered}; dead after {} without an answer", secs(self.config.dead_after)),
            ));
        }
        if self.replicas.is_empty() {
            return Some((PrimaryState::Dead, format!("{unanswered}; no replicas known to ask")));
        }
        let mut replicate = Vec::new();
        let mut cannot = Vec::new();
        let mut nothing = Vec::new();
        for (addr, track) in &self.replicas {
            let (testimony, detail) = self.testimony(track);
            let line = format!("{addr} ({detail})");
            match testimony {
                Testimony::Replicates => replicate.push(line),
                Testimony::CannotReplicate => cannot.push(line),
                Testimony::ProvesNothing => nothing.push(line),
            }
        }
        let also = |others: &[String]| {
            if others.is_empty() {
                String::new()
            } else {
                format!("; not counted: {}", others.join(", "))
            }
        };
        Some(if !replicate.is_empty() {
            let (word, verb) =
                if replicate.len() == 1 { ("replica", "replicates") } else { ("replicas", "replicate") };
            (
                PrimaryState::Unreachable,
                format!(
                    "unreachable from the sidecar: {word} {} still {verb}; {unanswered}",
                    replicate.join(", ")
                ),
            )
        } else if !cannot.is_empty() {
            (
                PrimaryState::Dead,
                format!("{unanswered}; no replica hears from it: {}{}", cannot.join(", "), also(&nothing)),
            )
        } else {
            (
                PrimaryState::Unreachable,
                format!(
                    "unreachable from the sidecar, and no replica could confirm it is dead (the sidecar \
                     may be the one cut off): {}; {unanswered}",
                    nothing.join(", ")
                ),
            )
        })
    }

    /// What a replica says, and why.
    fn testimony(&self, track: &Track) -> (Testimony, String) {
        let Some((at, seen)) = &track.latest else {
            return (Testimony::ProvesNothing, "not checked yet".into());
        };
        let sample = match seen {
            ReplicaSeen::Unreachable(error) => return (Testimony::ProvesNothing, error.clone()),
            ReplicaSeen::NotAReplica(why) => return (Testimony::ProvesNothing, why.clone()),
            ReplicaSeen::Status(sample) => sample,
        };
        let io_error = || sample.io_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        match &sample.io {
            IoThread::Connecting => {
                (Testimony::CannotReplicate, format!("IO thread Connecting{}", io_error()))
            }
            IoThread::No if sample.io_error.is_some() => {
                (Testimony::CannotReplicate, format!("IO thread stopped{}", io_error()))
            }
            IoThread::No => (Testimony::ProvesNothing, "replication stopped by hand (IO thread No)".into()),
            IoThread::Other(state) => (Testimony::ProvesNothing, format!("IO thread {state}")),
            IoThread::Yes => match sample.heartbeat_period.filter(|p| !p.is_zero()) {
                None => (
                    Testimony::Replicates,
                    "IO thread Yes (no heartbeat period to check it hears the primary)".into(),
                ),
                Some(period) => {
                    let window = period.saturating_mul(2).saturating_add(self.config.sample_interval);
                    let quiet = track.moved_at.map_or(Duration::ZERO, |m| at.saturating_duration_since(m));
                    if quiet > window {
                        (
                            Testimony::CannotReplicate,
                            format!(
                                "IO thread Yes, but nothing from the primary for {} (heartbeat period {})",
                                secs(quiet),
                                secs(period)
                            ),
                        )
                    } else {
                        (Testimony::Replicates, "IO thread Yes, hears the primary".into())
                    }
                }
            },
        }
    }
}

/// A duration in seconds for people: "3 s", "2.5 s".
pub(crate) fn secs(d: Duration) -> String {
    let tenths = d.as_millis() / 100;
    if tenths.is_multiple_of(10) {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}
