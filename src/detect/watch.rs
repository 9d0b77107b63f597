//! The detector's task: every probe interval it reads the stream's state,
//! and while the stream is down probes the primary and samples the
//! replicas (at the same time, each on connections of its own); while the
//! stream is up it now and then asks the primary for its replicas. What it
//! sees goes to the [`Decider`]; what the decider says is published, and
//! each change is logged and handed to `--on-primary-state`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gapless_protocol::client::{ConnectOptions, Connection};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::decide::{Change, Decider, DeciderConfig, Observation, PrimaryState, ReplicaSeen};
use super::replicas::{self, Endpoint, MAX_REPLICAS};
use super::{command, probe, PrimaryHealth, ReplicaHealth};
use crate::ring::Published;
use crate::stream::{unix_now, StreamStatus};

/// How long each step of a probe or a replica sample may take.
pub const STAGE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the primary is asked for its replicas while it is alive.
const DISCOVER_EVERY: Duration = Duration::from_secs(10);

/// What the detector needs.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// How to log in to the primary (the source's login). Replicas are
    /// logged in to the same way, at their own address: the user needs
    /// SLAVE MONITOR (REPLICATION CLIENT on MySQL) there.
    pub login: ConnectOptions,
    /// Replicas to ask besides those `SHOW SLAVE HOSTS` lists.
    pub replicas: Vec<Endpoint>,
    /// How long probes must fail before the primary can be dead.
    pub dead_after: Duration,
    /// How often to probe while the stream is down.
    pub probe_interval: Duration,
    /// How long each step of a probe may take.
    pub stage_timeout: Duration,
    /// A connected stream silent for longer counts as down.
    pub stream_silence: Duration,
    /// Run through `sh -c` at each change of state.
    pub command: Option<String>,
    /// Variables removed from the command's environment (the password's).
    pub hidden_env: Vec<String>,
}

impl DetectConfig {
    /// The defaults around the flags: a stream is silent after two of its
    /// heartbeat periods and a second (the last contact is kept in whole
    /// seconds), each step may take [`STAGE_TIMEOUT`].
    pub fn new(
        login: ConnectOptions,
        dead_after: Duration,
        probe_interval: Duration,
        heartbeat: Duration,
    ) -> Self {
        DetectConfig {
            login,
            replicas: Vec::new(),
            dead_after,
            probe_interval,
            stage_timeout: STAGE_TIMEOUT,
            stream_silence: heartbeat.saturating_mul(2).saturating_add(Duration::from_secs(1)),
            command: None,
            hidden_env: Vec::new(),
        }
    }
}

/// Watches the primary until `stop` turns true, publishing its health in
/// `health`; `stream` is the stream's published state.
pub async fn watch(
    config: DetectConfig,
    stream: Arc<Published<StreamStatus>>,
    health: Arc<Published<PrimaryHealth>>,
    mut stop: watch::Receiver<bool>,
) {
    let primary = config.login.addr();
    let mut decider = Decider::new(DeciderConfig {
        dead_after: config.dead_after,
        stream_silence: config.stream_silence,
        sample_interval: config.probe_interval,
    });
    let mut eyes = Eyes::new(&config);
    let start = Instant::now().into_std();
    for replica in &eyes.known {
        decider.observe(start, Observation::ReplicaKnown { addr: replica.to_string() });
    }
    let mut since = None;
    loop {
        let tick = Instant::now();
        let status = stream.load();
        let silent_for = status.last_contact.map(|t| Duration::from_secs(unix_now().saturating_sub(t)));
        decider.observe(tick.into_std(), Observation::Stream { connected: status.connected, silent_for });
        let checking = decider.wants_checks();
        let work = async {
            if checking {
                eyes.check().await
            } else {
                eyes.discover(status.server_id).await
            }
        };
        let seen = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            seen = work => seen,
        };
        for (at, observation) in seen {
            decider.observe(at.into_std(), observation);
        }
        if let Some(change) = decider.decide(Instant::now().into_std()) {
            let at = unix_now();
            since = Some(at);
            announce(&config, &primary, &change, at);
        }
        health.store(PrimaryHealth {
            primary: primary.clone(),
            state: decider.verdict().map(|v| v.state),
            since,
            reason: decider.verdict().map(|v| v.reason.clone()),
            changes: decider.changes(),
            replicas: decider
                .replicas()
                .into_iter()
                .map(|r| ReplicaHealth {
                    addr: r.addr,
                    testimony: r.testimony,
                    io_running: r.io,
                    detail: r.detail,
                })
                .collect(),
        });
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep_until(tick + config.probe_interval) => {}
        }
    }
    eyes.close().await;
}

/// Logs a change and runs the command.
fn announce(config: &DetectConfig, primary: &str, change: &Change, since: u64) {
    let state = change.verdict.state;
    let previous = change.previous.map_or("none", PrimaryState::as_str);
    let reason = &change.verdict.reason;
    match state {
        PrimaryState::Alive => info!(%primary, %state, previous, "the primary is {state}: {reason}"),
        _ => warn!(%primary, %state, previous, "the primary is {state}: {reason}"),
    }
    if let Some(cmd) = &config.command {
        command::spawn(cmd, command::environment(change, primary, since), &config.hidden_env);
    }
}

/// The detector's connections and what it learnt through them.
struct Eyes {
    login: ConnectOptions,
    timeout: Duration,
    /// The replicas to ask.
    known: BTreeSet<Endpoint>,
    /// Open connections to replicas, kept between samples.
    conns: BTreeMap<Endpoint, Connection>,
    /// A connection to the primary for discovery, while it is alive.
    monitor: Option<Connection>,
    /// The primary's server id, once learnt: how a replica's channel from
    /// it is recognised.
    primary_id: Option<u32>,
    next_discovery: Instant,
    warned_hosts: bool,
}

impl Eyes {
    fn new(config: &DetectConfig) -> Eyes {
        let mut login = config.login.clone();
        login.connect_timeout = config.stage_timeout;
        login.program_name = "gapless-detect".into();
        let mut known = BTreeSet::new();
        for replica in &config.replicas {
            if known.len() < MAX_REPLICAS {
                known.insert(replica.clone());
            }
        }
        Eyes {
            login,
            timeout: config.stage_timeout,
            known,
            conns: BTreeMap::new(),
            monitor: None,
            primary_id: None,
            next_discovery: Instant::now(),
            warned_hosts: false,
        }
    }

    /// Probes the primary and samples every replica, all at once.
    async fn check(&mut self) -> Vec<(Instant, Observation)> {
        // The primary is in doubt: its discovery connection is no use now.
        self.monitor = None;
        let probe = async {
            let started = Instant::now();
            let result = probe::probe(&self.login, self.timeout).await;
            (Instant::now(), Observation::Probe { started: started.into_std(), result })
        };
        let mut samples = JoinSet::new();
        for replica in &self.known {
            let conn = self.conns.remove(replica);
            let mut login = self.login.clone();
            login.host = replica.host.clone();
            login.port = replica.port;
            let (replica, timeout, primary) =
                (replica.clone(), self.timeout, (self.primary_id, self.login.port));
            samples.spawn(async move {
                let (conn, seen) = sample(conn, &login, timeout, primary).await;
                (replica, conn, Instant::now(), seen)
            });
        }
        let sampled = async {
            let mut out = Vec::new();
            while let Some(joined) = samples.join_next().await {
                // A task that panicked taught nothing.
                if let Ok(one) = joined {
                    out.push(one);
                }
            }
            out
        };
        let (probed, sampled) = tokio::join!(probe, sampled);
        let mut seen = vec![probed];
        for (replica, conn, at, observed) in sampled {
            if let Some(conn) = conn {
                self.conns.insert(replica.clone(), conn);
            }
            seen.push((at, Observation::Replica { addr: replica.to_string(), seen: observed }));
        }
        seen
    }

    /// While the primary is alive: learns its server id and its replicas
    /// (every [`DISCOVER_EVERY`]); new replicas are returned as known.
    async fn discover(&mut self, own_server_id: Option<u32>) -> Vec<(Instant, Observation)> {
        // Replica connections are only needed while the primary is in doubt.
        for conn in std::mem::take(&mut self.conns).into_values() {
            let _ = tokio::time::timeout(self.timeout, conn.close()).await;
        }
        let now = Instant::now();
        if now < self.next_discovery {
            return Vec::new();
        }
        self.next_discovery = now + DISCOVER_EVERY;
        let mut conn = match self.monitor.take() {
            Some(conn) => conn,
            None => match Connection::connect(&self.login).await {
                Ok(conn) => conn,
                Err(e) => {
                    debug!("replica discovery: {e}");
                    return Vec::new();
                }
            },
        };
        let asked = tokio::time::timeout(self.timeout, async {
            let id = replicas::query_server_id(&mut conn).await;
            let hosts = replicas::query_hosts(&mut conn, own_server_id).await;
            (id, hosts)
        })
        .await;
        let Ok((id, hosts)) = asked else {
            debug!(primary = %self.login.addr(), "replica discovery timed out");
            return Vec::new();
        };
        match id {
            Ok(Some(id)) => self.primary_id = Some(id),
            Ok(None) => {}
            Err(e) => {
                debug!("replica discovery: {e}");
                return Vec::new();
            }
        }
        let hosts = match hosts {
            Ok(hosts) => hosts,
            // 1227: not allowed to list them (MariaDB wants REPLICATION
            // MASTER ADMIN); say so once.
            Err(e) if e.server_error().is_some_and(|e| e.code == 1227) => {
                if !self.warned_hosts {
                    self.warned_hosts = true;
                    warn!("{e}; the primary's replicas cannot be discovered: give them with --replica");
                }
                self.monitor = Some(conn);
                return Vec::new();
            }
            Err(e) => {
                debug!("replica discovery: {e}");
                return Vec::new();
            }
        };
        self.monitor = Some(conn);
        let mut added = Vec::new();
        for replica in hosts {
            if self.known.len() >= MAX_REPLICAS || self.known.contains(&replica) {
                continue;
            }
            info!(%replica, "found a replica of the primary (SHOW SLAVE HOSTS); it will be asked when the primary is in doubt");
            added.push((now, Observation::ReplicaKnown { addr: replica.to_string() }));
            self.known.insert(replica);
        }
        added
    }

    async fn close(self) {
        for conn in self.conns.into_values().chain(self.monitor) {
            let _ = tokio::time::timeout(self.timeout, conn.close()).await;
        }
    }
}

/// Samples one replica, on `conn` when one is open (once more on a fresh
/// connection if that fails: the replica may have restarted since); returns
/// the connection to keep, if any. `primary`: its server id (when known)
/// and port, to find the channel from it.
async fn sample(
    conn: Option<Connection>,
    login: &ConnectOptions,
    timeout: Duration,
    primary: (Option<u32>, u16),
) -> (Option<Connection>, ReplicaSeen) {
    let mut open = conn;
    loop {
        let reused = open.is_some();
        let mut conn = match open.take() {
            Some(conn) => conn,
            None => match Connection::connect(login).await {
                Ok(conn) => conn,
                Err(e) => return (None, ReplicaSeen::Unreachable(e.to_string())),
            },
        };
        let error = match tokio::time::timeout(timeout, replicas::query_status(&mut conn)).await {
            Ok(Ok(channels)) => return (Some(conn), replicas::testimony(channels, primary.0, primary.1)),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("{}: the replica status query timed out after {timeout:?}", login.addr()),
        };
        if !reused {
            return (None, ReplicaSeen::Unreachable(error));
        }
    }
}
