//! The sidecar's own detection of a dead primary.
//!
//! A stream that drops is not proof that the primary died: the network
//! between the sidecar and the primary may be the thing that broke, or the
//! primary may be paused (SIGSTOP, a stalled disk) with its connections up.
//! So while the stream is down the sidecar probes the primary (TCP connect,
//! login, `SELECT 1`, each with its own time limit) and asks the primary's
//! replicas whether they still hear from it. It calls the primary:
//!
//! - **alive** while the stream is up or a probe answers;
//! - **unreachable** while probes fail, for less than `--dead-after`, or for
//!   longer but with a replica that still replicates, or with no replica
//!   reachable to confirm (the sidecar may be the one cut off);
//! - **dead** once probes have failed for `--dead-after` and no replica
//!   still replicates (or none is known).
//!
//! [`decide`] holds that rule without I/O; [`watch`] runs it: probes,
//! samples replicas, publishes a [`PrimaryHealth`] for the status API, logs
//! each change and runs `--on-primary-state` ([`command`]).

pub mod command;
pub mod decide;
pub mod probe;
pub mod replicas;
mod watch;

use serde::Serialize;

pub use decide::{
    Change, Decider, DeciderConfig, IoThread, Observation, PrimaryState, ProbeFailure, ReplicaSample,
    ReplicaSeen, ReplicaView, Stage, Testimony, Verdict,
};
pub use replicas::{Endpoint, EndpointError};
pub use watch::{watch, DetectConfig};

/// What the detector publishes for the status API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PrimaryHealth {
    /// The primary (host:port).
    pub primary: String,
    /// Its state (`None` before the first judgement).
    pub state: Option<PrimaryState>,
    /// When it entered that state (seconds since the epoch).
    pub since: Option<u64>,
    /// Why.
    pub reason: Option<String>,
    /// Changes of state so far (the first judgement counts).
    pub changes: u64,
    /// The replicas consulted, and what they say.
    pub replicas: Vec<ReplicaHealth>,
}

/// One replica, as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaHealth {
    /// host:port.
    pub addr: String,
    /// What it says about the primary.
    pub testimony: Testimony,
    /// Its IO thread (`Slave_IO_Running`), when reached.
    pub io_running: Option<String>,
    /// Why, in words.
    pub detail: String,
}

impl PrimaryHealth {
    /// Nothing known yet about `primary`.
    pub fn new(primary: impl Into<String>) -> PrimaryHealth {
        PrimaryHealth { primary: primary.into(), ..PrimaryHealth::default() }
    }
}

#[cfg(test)]
mod tests;
