//! A switchover's plan, made before anything changes: the precheck, the
//! chosen candidate and the ordered steps, each marked before or after the
//! point of no return. A pure function of the [`Survey`] and the
//! [`Settings`]; `--dry-run` prints it, [`super::switchover`] carries it
//! out, [`super::dual`] makes the dual-primary one.
//!
//! ```text
//!  1. old primary: SET GLOBAL read_only = ON        ┐ before: a failure rolls back
//!  2. old primary: writers (wait or kill)           │ (the candidate's replication
//!  3. old primary: read its final position          │ started again, the old primary
//!  4. candidate: wait until it has executed that    │ made writable again)
//!  5. candidate: STOP SLAVE; old primary unchanged  ┘
//!  ── point of no return ──
//!  6. candidate: RESET SLAVE ALL; read_only = OFF               ┐ after: goes on as far as
//!  7. each replica, then the old primary: CHANGE MASTER TO it   │ it can, then says what
//!  8. the VIP, when the cluster has one                         │ is done and what is left
//!  9. verify                                                    ┘
//! ```
//!
//! The point of no return is the first change that cannot simply be undone:
//! until then the old primary only stopped taking writes and the candidate
//! only stopped replicating; once the candidate forgot its source and took
//! writes, two primaries would exist if the old one were made writable.
//!
//! The SQL the steps run is built here too ([`Dialect`]), so the plan that
//! is printed is the SQL that runs, with the replication password shown as
//! `'****'`.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::candidates::{candidates, Candidate};
use super::config::{HostMap, WritersPolicy};
use super::instance::{BinlogPosition, Flavor, Instance, Topology};
use super::precheck::{self, Check};
use super::Survey;
use crate::vip::MovePlan;

/// What the operator asked for, and the cluster's switchover settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--to HOST:PORT`: the replica to promote.
    pub to: Option<String>,
    /// `--force`: go on past failed prechecks, and promote a `--to` replica
    /// whose only faults are overridable ([`Candidate::forceable`]).
    pub force: bool,
    /// How long the catch-up (and the verification) may take.
    pub wait_timeout: Duration,
    /// What to do about clients still writing.
    pub writers: WritersPolicy,
    /// How long that may take.
    pub writers_timeout: Duration,
    /// The precheck's settings (lag limit and candidate rules).
    pub precheck: precheck::Settings,
    /// How to move the VIP.
    pub vip: VipSettings,
}

/// How the VIP is moved.
#[derive(Debug, Clone, Default)]
pub struct VipSettings {
    /// The VIP was set in the cluster file (not only found in the
    /// metadata): a VIP that cannot be moved is then a refusal, not a note.
    pub configured: bool,
    /// Its interface.
    pub interface: Option<String>,
    /// The host spec of each server (default `ssh:HOST`).
    pub hosts: HostMap<String>,
}

/// Why there is no plan: nothing was changed.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// Why, naming the instances.
    pub reason: String,
    /// The precheck, when it ran.
    pub checks: Vec<Check>,
    /// The candidates, when they were judged.
    pub candidates: Vec<Candidate>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl Refusal {
    fn new(reason: impl Into<String>) -> Refusal {
        Refusal { reason: reason.into(), checks: Vec::new(), candidates: Vec::new() }
    }
}

/// The SQL spelling of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// MariaDB: `STOP SLAVE`, `CHANGE MASTER TO … MASTER_USE_GTID`,
    /// `MASTER_GTID_WAIT`.
    MariaDb,
    /// MySQL before 8.0.26: `STOP SLAVE`, `CHANGE MASTER TO
    /// … MASTER_AUTO_POSITION`, `MASTER_POS_WAIT`, `super_read_only`.
    MySqlLegacy,
    /// MySQL 8.0.26 and later: `STOP REPLICA`, `CHANGE REPLICATION SOURCE
    /// TO`, `SOURCE_POS_WAIT`.
    MySql,
}

/// `(major, minor, patch)` of a version string.
fn version_triple(version: &str) -> Option<(u32, u32, u32)> {
    let v = version.strip_prefix("5.5.5-").unwrap_or(version);
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// A string literal, escaped for any `sql_mode` but
/// `NO_BACKSLASH_ESCAPES` (which the executor turns off in its session).
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1a' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// What a replica is pointed at.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    /// Its host, as the replica connects to it.
    pub host: &'a str,
    /// Its port.
    pub port: u16,
    /// The replication user.
    pub user: &'a str,
    /// Its password; `None` shows `'****'`.
    pub password: Option<&'a str>,
}

impl Dialect {
    /// The dialect of an instance.
    pub fn of(flavor: Flavor, version: Option<&str>) -> Dialect {
        match flavor {
            Flavor::MariaDb => Dialect::MariaDb,
            Flavor::MySql => match version.and_then(version_triple) {
                Some(v) if v >= (8, 0, 26) => Dialect::MySql,
                _ => Dialect::MySqlLegacy,
            },
        }
    }

    fn is_mysql(self) -> bool {
        self != Dialect::MariaDb
    }

    /// MariaDB's connection name in a statement (`'name'` after SLAVE),
    /// MySQL's channel (`FOR CHANNEL 'name'` at the end).
    fn named(self, verb: &str, channel: &str, tail: &str) -> String {
        match (self, channel.is_empty()) {
            (_, true) => format!("{verb}{tail}"),
            (Dialect::MariaDb, false) => format!("{verb} {}{tail}", quote(channel)),
            (_, false) => format!("{verb}{tail} FOR CHANNEL {}", quote(channel)),
        }
    }

    /// Stops replication on `channel`.
    pub fn stop(self, channel: &str) -> String {
        match self {
            Dialect::MySql => self.named("STOP REPLICA", channel, ""),
            _ => self.named("STOP SLAVE", channel, ""),
        }
    }

    /// Starts replication on `channel`.
    pub fn start(self, channel: &str) -> String {
        match self {
            Dialect::MySql => self.named("START REPLICA", channel, ""),
            _ => self.named("START SLAVE", channel, ""),
        }
    }

    /// Forgets `channel` altogether (a promoted replica).
    pub fn reset_all(self, channel: &str) -> String {
        match self {
            Dialect::MySql => self.named("RESET REPLICA", channel, " ALL"),
            _ => self.named("RESET SLAVE", channel, " ALL"),
        }
    }

    /// `SHOW SLAVE STATUS` of `channel`.
    pub fn status(self, channel: &str) -> String {
        match self {
            Dialect::MySql => self.named("SHOW REPLICA STATUS", channel, ""),
            Dialect::MySqlLegacy => self.named("SHOW SLAVE STATUS", channel, ""),
            Dialect::MariaDb if channel.is_empty() => "SHOW SLAVE STATUS".into(),
            Dialect::MariaDb => format!("SHOW SLAVE {} STATUS", quote(channel)),
        }
    }

    /// Points `channel` at `source` by GTID: MariaDB `MASTER_USE_GTID =
    /// slave_pos`, MySQL auto-positioning.
    pub fn change_source(self, channel: &str, source: Source<'_>) -> String {
        let password = source.password.map_or_else(|| "'****'".to_string(), quote);
        let (verb, prefix, gtid) = match self {
            Dialect::MariaDb => ("CHANGE MASTER", "MASTER", "MASTER_USE_GTID = slave_pos"),
            Dialect::MySqlLegacy => ("CHANGE MASTER", "MASTER", "MASTER_AUTO_POSITION = 1"),
            Dialect::MySql => ("CHANGE REPLICATION SOURCE", "SOURCE", "SOURCE_AUTO_POSITION = 1"),
        };
        let tail = format!(
            " TO {prefix}_HOST = {}, {prefix}_PORT = {}, {prefix}_USER = {}, {prefix}_PASSWORD = {password}, {gtid}",
            quote(source.host),
            source.port,
            quote(source.user),
        );
        self.named(verb, channel, &tail)
    }

    /// Stops writes from clients: MySQL's `super_read_only` (which sets
    /// `read_only` too) also stops privileged clients.
    pub fn read_only_on(self) -> &'static [&'static str] {
        if self.is_mysql() {
            &["SET GLOBAL super_read_only = ON"]
        } else {
            &["SET GLOBAL read_only = ON"]
        }
    }

    /// Takes writes again.
    pub fn writable(self) -> &'static [&'static str] {
        if self.is_mysql() {
            &["SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"]
        } else {
            &["SET GLOBAL read_only = OFF"]
        }
    }

    /// The GTID position a server has written (`gtid`).
    pub fn gtid_position(self) -> &'static str {
        if self.is_mysql() {
            "SELECT @@GLOBAL.gtid_executed AS gtid"
        } else {
            "SELECT @@GLOBAL.gtid_binlog_pos AS gtid"
        }
    }

    /// `SELECT ... AS r` that waits up to `timeout` until this replica has
    /// executed `target`; read the answer with [`waited`].
    pub fn wait(self, target: &Target, channel: &str, timeout: Duration) -> String {
        let secs = format!("{:.3}", timeout.as_secs_f64());
        match target {
            Target::MariaGtid(pos) => format!("SELECT MASTER_GTID_WAIT({}, {secs}) AS r", quote(pos)),
            Target::MySqlGtid(set) => {
                format!("SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {secs}) AS r", quote(set))
            }
            Target::File(at) => {
                let f = if self == Dialect::MySql { "SOURCE_POS_WAIT" } else { "MASTER_POS_WAIT" };
                let channel =
                    if channel.is_empty() { String::new() } else { format!(", {}", quote(channel)) };
                format!("SELECT {f}({}, {}, {secs}{channel}) AS r", quote(&at.file), at.position)
            }
        }
    }
}

/// What a replica must have executed before it is promoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// MariaDB: a `gtid_binlog_pos` (`MASTER_GTID_WAIT`).
    MariaGtid(String),
    /// MySQL: a `gtid_executed` set (`WAIT_FOR_EXECUTED_GTID_SET`).
    MySqlGtid(String),
    /// No GTIDs: a binlog file and position of the source
    /// (`MASTER_POS_WAIT`).
    File(BinlogPosition),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::MariaGtid(p) | Target::MySqlGtid(p) if p.is_empty() => f.write_str("(no GTID yet)"),
            Target::MariaGtid(p) | Target::MySqlGtid(p) => write!(f, "GTID {p}"),
            Target::File(at) => write!(f, "{at}"),
        }
    }
}

/// How the catch-up is waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    /// `MASTER_GTID_WAIT` (MariaDB records GTIDs whatever the replica's
    /// `MASTER_USE_GTID`).
    MariaGtid,
    /// `WAIT_FOR_EXECUTED_GTID_SET` (MySQL with `gtid_mode=ON`).
    MySqlGtid,
    /// `MASTER_POS_WAIT` on the old primary's binlog coordinates.
    File,
}

impl WaitKind {
    fn function(self, dialect: Dialect) -> &'static str {
        match self {
            WaitKind::MariaGtid => "MASTER_GTID_WAIT",
            WaitKind::MySqlGtid => "WAIT_FOR_EXECUTED_GTID_SET",
            WaitKind::File if dialect == Dialect::MySql => "SOURCE_POS_WAIT",
            WaitKind::File => "MASTER_POS_WAIT",
        }
    }
}

/// Where the old primary's writes ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FinalPosition {
    /// `gtid_binlog_pos` (MariaDB) or `gtid_executed` (MySQL).
    pub gtid: Option<String>,
    /// `SHOW MASTER STATUS`.
    pub file: Option<BinlogPosition>,
}

impl fmt::Display for FinalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gtid = self.gtid.as_deref().map(|g| if g.is_empty() { "none" } else { g });
        let file = self.file.as_ref().map(ToString::to_string);
        write!(f, "GTID {}, binlog {}", gtid.unwrap_or("unknown"), file.as_deref().unwrap_or("unknown"))
    }
}

impl FinalPosition {
    /// The same writes as `other`, as the catch-up counts them: by GTID, or
    /// by binlog coordinates without GTIDs (a rotated binlog with no new
    /// transaction is no new write).
    pub fn same_writes(&self, other: &FinalPosition, kind: WaitKind) -> bool {
        match kind {
            WaitKind::MariaGtid | WaitKind::MySqlGtid => self.gtid == other.gtid,
            WaitKind::File => self.file == other.file,
        }
    }
}

/// `pos` without the GTIDs first written by `server_id`: a server has its
/// own transactions (a co-primary receives them back from its peer, and its
/// replication ignores its own server id, so its `gtid_slave_pos` may never
/// show them).
pub fn without_server(pos: &str, server_id: u32) -> String {
    pos.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .filter(|g| g.parse::<gapless_decoder::gtid::MariaGtid>().map_or(true, |g| g.server_id != server_id))
        .collect::<Vec<_>>()
        .join(",")
}

/// What to wait for, from the old primary's final position.
pub fn wait_target(kind: WaitKind, pos: &FinalPosition, skip_server: Option<u32>) -> Result<Target, String> {
    match kind {
        WaitKind::MariaGtid => {
            let gtid = pos.gtid.as_deref().ok_or("its gtid_binlog_pos could not be read")?;
            Ok(Target::MariaGtid(match skip_server {
                Some(id) => without_server(gtid, id),
                None => gtid.to_string(),
            }))
        }
        WaitKind::MySqlGtid => {
            Ok(Target::MySqlGtid(pos.gtid.clone().ok_or("its gtid_executed could not be read")?))
        }
        WaitKind::File => {
            Ok(Target::File(pos.file.clone().ok_or("SHOW MASTER STATUS showed no binlog position")?))
        }
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The replica has executed the target.
    Reached,
    /// The time ran out.
    TimedOut,
    /// The function returned NULL: the replica's SQL thread is not running
    /// (or the channel is unknown).
    NotReplicating,
}

/// Reads a wait function's answer: MASTER_GTID_WAIT 0 / -1,
/// WAIT_FOR_EXECUTED_GTID_SET 0 / 1, MASTER_POS_WAIT ≥ 0 / -1 / NULL.
pub fn waited(target: &Target, answer: Option<&str>) -> Waited {
    let Some(n) = answer.and_then(|a| a.trim().parse::<i64>().ok()) else { return Waited::NotReplicating };
    match target {
        Target::MySqlGtid(_) if n == 0 => Waited::Reached,
        Target::MySqlGtid(_) => Waited::TimedOut,
        _ if n >= 0 => Waited::Reached,
        _ => Waited::TimedOut,
    }
}

/// A server a step touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// `HOST:PORT`.
    pub addr: String,
    /// Its host, as the others replicate from it.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Its SQL spelling.
    pub dialect: Dialect,
    /// `@@server_id`.
    pub server_id: Option<u32>,
    /// The name of its replication channel (towards the old primary, or the
    /// peer of a dual-primary pair); empty for the default one.
    pub channel: String,
    /// Its datacenter.
    pub datacenter: Option<String>,
}

impl Node {
    /// The node of a readable instance.
    pub fn of(i: &Instance) -> Option<Node> {
        Some(Node {
            addr: i.addr(),
            host: i.host.clone(),
            port: i.port,
            dialect: Dialect::of(i.flavor?, i.version.as_deref()),
            server_id: i.server_id,
            channel: i.replication.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
            datacenter: i.datacenter.clone(),
        })
    }
}

/// A replica and what it must replicate from once verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Follows {
    /// The replica.
    pub replica: String,
    /// Its source.
    pub source: String,
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// One thing a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// `SET GLOBAL read_only = ON` (MySQL `super_read_only`) on the old
    /// primary: clients' commits fail from then on.
    ReadOnly {
        /// The old primary.
        on: String,
    },
    /// Waits for or kills the clients still writing to it.
    Writers {
        /// The old primary.
        on: String,
        /// Wait or kill.
        policy: WritersPolicy,
        /// For how long.
        #[serde(serialize_with = "seconds")]
        timeout: Duration,
    },
    /// Reads where its writes ended.
    FinalPosition {
        /// The old primary.
        on: String,
    },
    /// Waits until the candidate has executed that position (and checks
    /// the old primary did not move on meanwhile).
    CatchUp {
        /// The candidate.
        on: String,
        /// The old primary.
        from: String,
        /// How.
        kind: WaitKind,
        /// For how long.
        #[serde(serialize_with = "seconds")]
        timeout: Duration,
    },
    /// Stops the candidate's replication once it has everything, and
    /// checks the old primary did not move on since.
    StopReplication {
        /// The candidate.
        on: String,
        /// The old primary.
        from: String,
    },
    /// Makes the candidate forget its source, and writable.
    Promote {
        /// The candidate.
        on: String,
    },
    /// Makes the passive member of a dual-primary pair writable (it keeps
    /// replicating from its peer).
    Writable {
        /// The passive member.
        on: String,
    },
    /// Re-points a replica (or the old primary, `demoted`) under the new
    /// primary.
    Repoint {
        /// The replica.
        on: String,
        /// The new primary.
        to: String,
        /// It is the old primary (it stays read_only).
        demoted: bool,
    },
    /// Moves the VIP (`gapless vip move`).
    MoveVip {
        /// The address.
        vip: String,
        /// The interface.
        interface: String,
        /// The old primary's host spec.
        from: String,
        /// The new primary's host spec.
        to: String,
    },
    /// Checks the result: the new primary writable, the others read_only,
    /// each replica's IO and SQL threads running under its source.
    Verify {
        /// The writable one.
        primary: String,
        /// The read_only ones.
        read_only: Vec<String>,
        /// Who replicates from whom.
        replicating: Vec<Follows>,
    },
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// 1, 2, …
    pub number: usize,
    /// After the point of no return: a failure no longer rolls back.
    pub after_point_of_no_return: bool,
    /// What it does.
    #[serde(flatten)]
    pub action: Action,
    /// The same in words, with the SQL it runs (the password as `'****'`).
    pub text: String,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>3}. {}", self.number, self.text)
    }
}

/// A switchover or a dual-primary switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A replica becomes the primary.
    Switchover,
    /// The passive member of a dual-primary pair becomes the active one.
    Dual,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The cluster.
    pub cluster: String,
    /// What kind of switch.
    pub kind: Kind,
    /// The primary now.
    pub old_primary: Node,
    /// The primary after.
    pub new_primary: Node,
    /// Every server a step touches (the two above included).
    pub nodes: Vec<Node>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What `--force` went past, and what will not be done.
    pub warnings: Vec<String>,
    /// The precheck.
    pub checks: Vec<Check>,
    /// The candidates, best first (a switchover's).
    pub candidates: Vec<Candidate>,
    /// The new primary's server id: the catch-up does not wait for the
    /// GTIDs it wrote itself (it has them; see [`without_server`]).
    pub skip_server: Option<u32>,
}

impl Plan {
    /// The node at `addr`.
    pub fn node(&self, addr: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.addr == addr)
    }

    /// The summary, the warnings and the steps, with the point of no
    /// return marked: what `--dry-run` prints.
    pub fn describe(&self) -> String {
        let mut out = match self.kind {
            Kind::Switchover => format!(
                "switchover of {}: {}{} -> {}{}\n",
                self.cluster,
                self.old_primary.addr,
                dc(&self.old_primary),
                self.new_primary.addr,
                dc(&self.new_primary)
            ),
            Kind::Dual => format!(
                "dual-primary switch of {}: active {} -> passive {}\n",
                self.cluster, self.old_primary.addr, self.new_primary.addr
            ),
        };
        let required = self.checks.iter().filter(|c| c.required).count();
        let failed = self.checks.iter().filter(|c| c.required && !c.passed).count();
        out.push_str(&format!("precheck: {} of {required} required checks passed\n", required - failed));
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        let mut marked = false;
        for step in &self.steps {
            if step.after_point_of_no_return && !marked {
                out.push_str(
                    "  --- point of no return: a failure above rolls back (the old primary writable again); \
                     below, the switch goes on as far as it can ---\n",
                );
                marked = true;
            }
            out.push_str(&format!("{step}\n"));
        }
        out
    }
}

fn dc(n: &Node) -> String {
    n.datacenter.as_ref().map_or(String::new(), |d| format!(" ({d})"))
}

/// The failed required checks as one line each; `--force` turns them into
/// warnings, otherwise they refuse the switch.
pub fn judge_precheck(checks: &[Check], force: bool) -> Result<Vec<String>, String> {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.required && !c.passed)
        .map(|c| {
            if c.detail.is_empty() {
                format!("{}: {}", c.name, c.value)
            } else {
                format!("{}: {} ({})", c.name, c.value, c.detail)
            }
        })
        .collect();
    if failed.is_empty() {
        return Ok(Vec::new());
    }
    if force {
        Ok(failed.into_iter().map(|f| format!("precheck failed, going on because of --force: {f}")).collect())
    } else {
        Err(format!("precheck failed (--force goes on anyway): {}", failed.join("; ")))
    }
}

/// The chosen candidate and what `--force` went past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The candidate.
    pub candidate: Candidate,
    /// Its faults that `--force` overrode.
    pub warnings: Vec<String>,
}

/// Chooses the new primary among `all` (best first): `to` when given (an
/// `ok` candidate, or one whose faults `--force` may override), else the
/// best `ok` one. Never a replica the rules forbid: with `prevent_cross_dc`
/// a replica outside the primary's datacenter is refused, even with
/// `--force`, and when none qualifies the switch is refused with each
/// replica's reason rather than made elsewhere.
pub fn choose(t: &Topology, all: &[Candidate], to: Option<&str>, force: bool) -> Result<Choice, String> {
    let reasons = |c: &Candidate| format!("{}: {}", c.instance, c.why_not.join(", "));
    match to {
        Some(to) => {
            if t.primary.eq_ignore_ascii_case(to) {
                return Err(format!("--to {to} is the primary already"));
            }
            let Some(c) = all.iter().find(|c| c.instance.eq_ignore_ascii_case(to)) else {
                let names: Vec<&str> = all.iter().map(|c| c.instance.as_str()).collect();
                return Err(format!(
                    "--to {to} is not a replica of the primary {} (its replicas: {})",
                    t.primary,
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ));
            };
            if c.ok {
                return Ok(Choice { candidate: c.clone(), warnings: Vec::new() });
            }
            if c.forceable && force {
                return Ok(Choice {
                    candidate: c.clone(),
                    warnings: vec![format!(
                        "--to {} is promoted because of --force although {}",
                        c.instance,
                        c.why_not.join(", ")
                    )],
                });
            }
            let hint = if c.forceable {
                " (--force promotes it anyway)"
            } else if force {
                " (--force does not override that)"
            } else {
                ""
            };
            Err(format!("--to {} may not become the primary: {}{hint}", c.instance, c.why_not.join(", ")))
        }
        None => match all.iter().find(|c| c.ok) {
            Some(c) => Ok(Choice { candidate: c.clone(), warnings: Vec::new() }),
            None if all.is_empty() => Err(format!("the primary {} has no replicas to promote", t.primary)),
            None => {
                let mut why = format!(
                    "no replica of {} may become the primary: {}",
                    t.primary,
                    all.iter().map(reasons).collect::<Vec<_>>().join("; ")
                );
                if all.iter().any(|c| c.why_not.iter().any(|w| w.ends_with("(prevent_cross_dc)"))) {
                    let dc = t.primary().and_then(|p| p.datacenter.as_deref()).unwrap_or("unknown");
                    why.push_str(&format!(
                        "; prevent_cross_dc keeps the primary in its datacenter ({dc}), and no replica there qualifies"
                    ));
                }
                if all.iter().any(|c| c.forceable) {
                    why.push_str("; name one with --to and --force to promote it anyway");
                }
                Err(why)
            }
        },
    }
}

/// The move of the VIP from `old` to `new`, checked now; `Ok(None)` with a
/// note when the cluster has no VIP to move.
pub fn vip_step(
    survey: &Survey,
    vip: &VipSettings,
    old: &Node,
    new: &Node,
) -> Result<(Option<Action>, Option<String>), String> {
    let Some(probe) = &survey.vip else { return Ok((None, None)) };
    let spec =
        |n: &Node| vip.hosts.get(&n.host, n.port).cloned().unwrap_or_else(|| format!("ssh:{}", n.host));
    let (from, to) = (spec(old), spec(new));
    let checked = match &vip.interface {
        None => Err("no interface is configured for it (interface = \"eth0\" in the cluster)".to_string()),
        Some(dev) => MovePlan::parse(&probe.vip, dev, Some(&from), &to, false, crate::vip::DEFAULT_TIMEOUT)
            .map(|_| dev.clone())
            .map_err(|e| e.to_string()),
    };
    match checked {
        Ok(dev) => Ok((Some(Action::MoveVip { vip: probe.vip.clone(), interface: dev, from, to }), None)),
        Err(why) if vip.configured => Err(format!("the VIP {} cannot be moved: {why}", probe.vip)),
        Err(why) => Ok((
            None,
            Some(format!("the cluster domain {} (from the metadata) is not moved: {why}", probe.vip)),
        )),
    }
}

/// The text of an action, with the SQL it runs.
pub fn describe(action: &Action, plan_nodes: &[Node], replication_user: &str) -> String {
    let node = |addr: &str| plan_nodes.iter().find(|n| n.addr == addr);
    let dialect = |addr: &str| node(addr).map_or(Dialect::MariaDb, |n| n.dialect);
    let channel = |addr: &str| node(addr).map_or(String::new(), |n| n.channel.clone());
    match action {
        Action::ReadOnly { on } => format!(
            "{on}: {}: its clients can no longer write",
            dialect(on).read_only_on().join("; ")
        ),
        Action::Writers { on, policy: WritersPolicy::Wait, timeout } => format!(
            "{on}: writers = wait: wait up to {} s until no client has a transaction with changes or a write running",
            timeout.as_secs_f64()
        ),
        Action::Writers { on, policy: WritersPolicy::Kill, timeout } => format!(
            "{on}: writers = kill: KILL CONNECTION each client with a transaction with changes or a write running (up to {} s)",
            timeout.as_secs_f64()
        ),
        Action::FinalPosition { on } => format!(
            "{on}: read its final position ({}, SHOW MASTER STATUS)",
            if dialect(on) == Dialect::MariaDb { "@@gtid_binlog_pos" } else { "@@gtid_executed" }
        ),
        Action::CatchUp { on, from, kind, timeout } => format!(
            "{on}: wait up to {} s until it has executed the final position of {from} ({}), and check {from} did not move on",
            timeout.as_secs_f64(),
            kind.function(dialect(on))
        ),
        Action::StopReplication { on, from } => format!(
            "{on}: {}: it has everything; check {from} did not move on meanwhile",
            dialect(on).stop(&channel(on))
        ),
        Action::Promote { on } => {
            let d = dialect(on);
            format!("{on}: promote: {}; {}", d.reset_all(&channel(on)), d.writable().join("; "))
        }
        Action::Writable { on } => format!("{on}: {}: it takes the writes", dialect(on).writable().join("; ")),
        Action::Repoint { on, to, demoted } => {
            let d = dialect(on);
            let ch = channel(on);
            let (host, port) = node(to).map_or((to.as_str(), 0), |n| (n.host.as_str(), n.port));
            let change = d.change_source(&ch, Source { host, port, user: replication_user, password: None });
            let reset = if *demoted && d == Dialect::MariaDb {
                // Its own writes are in its binlog, not in gtid_slave_pos.
                "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos; "
            } else {
                ""
            };
            let who = if *demoted { "demote (it stays read_only)" } else { "re-point" };
            format!("{on}: {who}: {}; {reset}{change}; {}", d.stop(&ch), d.start(&ch))
        }
        Action::MoveVip { vip, interface, from, to } => {
            format!("VIP {vip} on {interface}: gapless vip move --vip {vip} --dev {interface} --from {from} --to {to}")
        }
        Action::Verify { primary, read_only, replicating } => format!(
            "verify: {primary} writable; {} read_only; {}",
            read_only.join(", "),
            if replicating.is_empty() {
                "no replica re-pointed".to_string()
            } else {
                replicating
                    .iter()
                    .map(|f| format!("{} replicates from {}", f.replica, f.source))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    }
}

/// Numbers the actions and writes their text: the first `before` of them
/// come before the point of no return.
pub fn number(actions: Vec<Action>, before: usize, nodes: &[Node], replication_user: &str) -> Vec<Step> {
    actions
        .into_iter()
        .enumerate()
        .map(|(i, action)| Step {
            number: i + 1,
            after_point_of_no_return: i >= before,
            text: describe(&action, nodes, replication_user),
            action,
        })
        .collect()
}

/// The steps every switch starts with: the old primary stops taking
/// writes, its writers are waited out (or killed), where it ended is read,
/// and the new one is waited for until it has executed all of it.
pub fn hand_over(old: &str, new: &str, s: &Settings, kind: WaitKind) -> Vec<Action> {
    vec![
        Action::ReadOnly { on: old.to_string() },
        Action::Writers { on: old.to_string(), policy: s.writers, timeout: s.writers_timeout },
        Action::FinalPosition { on: old.to_string() },
        Action::CatchUp { on: new.to_string(), from: old.to_string(), kind, timeout: s.wait_timeout },
    ]
}

/// How the catch-up is waited for on `candidate`, replicating from `old`.
pub fn wait_kind(old: &Instance, candidate: &Instance) -> WaitKind {
    match (old.flavor, candidate.flavor) {
        (Some(Flavor::MariaDb), _) => WaitKind::MariaGtid,
        _ if old.gtid.mode.as_deref() == Some("ON") && candidate.gtid.mode.as_deref() == Some("ON") => {
            WaitKind::MySqlGtid
        }
        _ => WaitKind::File,
    }
}

/// The plan of a switchover: the precheck, the candidate, the steps.
pub fn switchover(survey: &Survey, s: &Settings, replication_user: &str) -> Result<Plan, Refusal> {
    let t = &survey.topology;
    let Some(primary) = t.primary() else { return Err(Refusal::new("the cluster has no primary")) };
    if let Some(co) = &t.co_primary {
        return Err(Refusal::new(format!(
            "{} and {co} replicate from each other (dual-primary): switch them with --dual",
            t.primary
        )));
    }
    let old = Node::of(primary)
        .ok_or_else(|| Refusal::new(format!("the primary {} could not be read", primary.addr())))?;
    if primary.read_only != Some(false) {
        return Err(Refusal::new(format!(
            "the primary {} is read_only already: a switchover starts from a writable primary (did an earlier \
             one stop half-way? see gapless topology)",
            primary.addr()
        )));
    }
    let checks = precheck::run(survey, &s.precheck);
    let all = candidates(t, &s.precheck.rules);
    let refuse = |reason: String| Refusal { reason, checks: checks.clone(), candidates: all.clone() };
    let mut warnings = judge_precheck(&checks, s.force).map_err(refuse)?;
    let choice = choose(t, &all, s.to.as_deref(), s.force).map_err(refuse)?;
    warnings.extend(choice.warnings);
    let chosen = t.get(&choice.candidate.instance).ok_or_else(|| refuse("the candidate vanished".into()))?;
    let new = Node::of(chosen).ok_or_else(|| refuse(format!("{} could not be read", chosen.addr())))?;

    let mut nodes = vec![old.clone(), new.clone()];
    let mut repoint = Vec::new();
    for r in t.direct_replicas().filter(|r| r.addr() != new.addr) {
        match Node::of(r) {
            Some(n) if r.error.is_none() => {
                repoint.push(n.addr.clone());
                nodes.push(n);
            }
            _ => warnings.push(format!(
                "{} could not be read: it is left under {}; re-point it by hand",
                r.addr(),
                old.addr
            )),
        }
    }
    // The old primary is re-pointed last, with its own node (no channel).
    let mut demoted = old.clone();
    demoted.channel = String::new();
    nodes[0] = demoted;
    if nodes.iter().any(|n| n.dialect != Dialect::MariaDb) {
        let no_gtid: Vec<String> = t
            .instances
            .iter()
            .filter(|i| nodes.iter().any(|n| n.addr == i.addr()))
            .filter(|i| i.gtid.mode.as_deref() != Some("ON"))
            .map(Instance::addr)
            .collect();
        if !no_gtid.is_empty() {
            return Err(refuse(format!(
                "re-pointing MySQL replicas needs gtid_mode=ON (auto-positioning); not on {}",
                no_gtid.join(", ")
            )));
        }
    }
    let (vip, note) = vip_step(survey, &s.vip, &old, &new).map_err(refuse)?;
    warnings.extend(note);

    let mut actions = hand_over(&old.addr, &new.addr, s, wait_kind(primary, chosen));
    actions.extend([
        Action::StopReplication { on: new.addr.clone(), from: old.addr.clone() },
        Action::Promote { on: new.addr.clone() },
    ]);
    let before = 5;
    for r in &repoint {
        actions.push(Action::Repoint { on: r.clone(), to: new.addr.clone(), demoted: false });
    }
    actions.push(Action::Repoint { on: old.addr.clone(), to: new.addr.clone(), demoted: true });
    actions.extend(vip);
    let mut replicating: Vec<Follows> =
        repoint.iter().map(|r| Follows { replica: r.clone(), source: new.addr.clone() }).collect();
    replicating.push(Follows { replica: old.addr.clone(), source: new.addr.clone() });
    actions.push(Action::Verify {
        primary: new.addr.clone(),
        read_only: vec![old.addr.clone()],
        replicating,
    });
    let steps = number(actions, before, &nodes, replication_user);
    Ok(Plan {
        cluster: survey.cluster.clone(),
        kind: Kind::Switchover,
        old_primary: old,
        new_primary: new,
        nodes,
        steps,
        warnings,
        checks,
        candidates: all,
        skip_server: chosen.server_id,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::topology::candidates::tests::{cluster, get};
    use crate::topology::config::{PromotionRule, Rules};
    use crate::topology::precheck::Settings as PrecheckSettings;
    use crate::topology::{VipAnswer, VipProbe};

    pub(crate) fn survey(t: Topology) -> Survey {
        Survey { cluster: "shop".into(), topology: t, meta: None, vip: None, sidecar: None, alias: None }
    }

    pub(crate) fn settings() -> Settings {
        Settings {
            to: None,
            force: false,
            wait_timeout: Duration::from_secs(30),
            writers: WritersPolicy::Wait,
            writers_timeout: Duration::from_secs(10),
            precheck: PrecheckSettings { max_lag: 10, rules: Rules::default() },
            vip: VipSettings::default(),
        }
    }

    /// The cluster with the GTID positions the precheck needs.
    pub(crate) fn healthy() -> Topology {
        let mut t = cluster();
        for i in &mut t.instances {
            i.gtid.binlog_pos = Some("0-1-10".into());
            i.gtid.slave_pos = Some(if i.port == 1 { String::new() } else { "0-1-10".into() });
        }
        t
    }

    fn actions(p: &Plan) -> Vec<&str> {
        p.steps
            .iter()
            .map(|s| match &s.action {
                Action::ReadOnly { .. } => "read_only",
                Action::Writers { .. } => "writers",
                Action::FinalPosition { .. } => "final_position",
                Action::CatchUp { .. } => "catch_up",
                Action::StopReplication { .. } => "stop",
                Action::Promote { .. } => "promote",
                Action::Writable { .. } => "writable",
                Action::Repoint { demoted: false, .. } => "repoint",
                Action::Repoint { demoted: true, .. } => "demote",
                Action::MoveVip { .. } => "vip",
                Action::Verify { .. } => "verify",
            })
            .collect()
    }

    #[test]
    fn the_steps_in_order() {
        let p = switchover(&survey(healthy()), &settings(), "repl").unwrap();
        assert_eq!((p.old_primary.addr.as_str(), p.new_primary.addr.as_str()), ("h:1", "h:2"));
        assert_eq!(
            actions(&p),
            [
                "read_only",
                "writers",
                "final_position",
                "catch_up",
                "stop",
                "promote",
                "repoint",
                "repoint",
                "demote",
                "verify"
            ]
        );
        let after: Vec<bool> = p.steps.iter().map(|s| s.after_point_of_no_return).collect();
        assert_eq!(after, [false, false, false, false, false, true, true, true, true, true]);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let text = p.describe();
        assert!(text.starts_with("switchover of shop: h:1 (dc1) -> h:2 (dc1)\n"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| l.contains("point of no return")).unwrap();
        assert!(
            lines[at - 2].contains("4. h:2: wait up to 30 s") && lines[at - 2].contains("MASTER_GTID_WAIT")
        );
        assert_eq!(
            lines[at - 1],
            "  5. h:2: STOP SLAVE: it has everything; check h:1 did not move on meanwhile"
        );
        assert_eq!(lines[at + 1], "  6. h:2: promote: RESET SLAVE ALL; SET GLOBAL read_only = OFF");
        assert!(text.contains(
            "  7. h:3: re-point: STOP SLAVE; CHANGE MASTER TO MASTER_HOST = 'h', MASTER_PORT = 2, \
             MASTER_USER = 'repl', MASTER_PASSWORD = '****', MASTER_USE_GTID = slave_pos; START SLAVE"
        ));
        assert!(text.contains(
            "  9. h:1: demote (it stays read_only): STOP SLAVE; SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos; CHANGE MASTER TO"
        ));
        assert!(text
            .contains(" 10. verify: h:2 writable; h:1 read_only; h:3 replicates from h:2, h:4 replicates"));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["steps"][3]["action"], "catch_up");
        assert_eq!(json["steps"][3]["kind"], "maria_gtid");
        assert_eq!(json["steps"][3]["timeout"], 30.0);
        assert_eq!(json["steps"][5]["after_point_of_no_return"], true);
    }

    #[test]
    fn prevent_cross_dc_chooses_in_the_datacenter_or_refuses() {
        let mut s = settings();
        s.precheck.rules.prevent_cross_dc = true;
        let mut t = healthy();
        // h:3 is more up to date, but in dc2.
        get(&mut t, 3).gtid.slave_pos = Some("0-1-11".into());
        get(&mut t, 3).gtid.binlog_pos = Some("0-1-11".into());
        let p = switchover(&survey(t.clone()), &s, "repl").unwrap();
        assert_eq!(p.new_primary.addr, "h:2");
        // Naming the other datacenter is refused, with --force too.
        s.to = Some("h:3".into());
        let e = switchover(&survey(t.clone()), &s, "repl").unwrap_err();
        assert_eq!(
            e.reason,
            "--to h:3 may not become the primary: in dc2, not in the primary's dc1 (prevent_cross_dc)"
        );
        s.force = true;
        let e = switchover(&survey(t.clone()), &s, "repl").unwrap_err();
        assert!(e.reason.ends_with("(--force does not override that)"), "{e}");
        // Nobody in dc1 qualifies: refused, each reason named.
        s.to = None;
        s.force = false;
        s.precheck.rules.promotion = HostMap([("h:2".to_string(), PromotionRule::MustNot)].into());
        let e = switchover(&survey(t), &s, "repl").unwrap_err();
        assert!(e.reason.starts_with("precheck failed"), "the candidate check fails first: {e}");
        let e = choose(&healthy(), &candidates(&healthy(), &s.precheck.rules), None, true).unwrap_err();
        assert!(e.contains("h:2: its promotion rule is must_not"), "{e}");
        assert!(e.contains("h:3: in dc2, not in the primary's dc1 (prevent_cross_dc)"), "{e}");
        assert!(e.contains("prevent_cross_dc keeps the primary in its datacenter (dc1)"), "{e}");
        assert!(e.ends_with("name one with --to and --force to promote it anyway"), "{e}");
    }

    #[test]
    fn force_and_to() {
        let mut s = settings();
        s.to = Some("h:4".into());
        let p = switchover(&survey(healthy()), &s, "repl").unwrap();
        assert_eq!(p.new_primary.addr, "h:4", "an ok candidate by name");
        let mut t = healthy();
        get(&mut t, 4).replication.as_mut().unwrap().sql_running = "No".into();
        let e = switchover(&survey(t.clone()), &s, "repl").unwrap_err();
        assert!(e.reason.starts_with("precheck failed"), "{e}");
        s.force = true;
        let p = switchover(&survey(t.clone()), &s, "repl").unwrap();
        assert_eq!(p.new_primary.addr, "h:4");
        assert!(p
            .warnings
            .iter()
            .any(|w| w.starts_with("precheck failed, going on because of --force: replication-threads")));
        assert!(p.warnings.iter().any(|w| {
            w == "--to h:4 is promoted because of --force although replication is not running (IO/SQL Yes/No)"
        }));
        // --force never chooses a faulty replica on its own.
        s.to = None;
        let p = switchover(&survey(t), &s, "repl").unwrap();
        assert_eq!(p.new_primary.addr, "h:2");
        for (to, why) in [
            ("h:1", "--to h:1 is the primary already"),
            ("h:9", "--to h:9 is not a replica of the primary h:1 (its replicas: h:2, h:3, h:4)"),
        ] {
            s.to = Some(to.into());
            assert_eq!(switchover(&survey(healthy()), &s, "repl").unwrap_err().reason, why);
        }
    }

    #[test]
    fn refusals_before_anything() {
        let mut t = healthy();
        t.co_primary = Some("h:2".into());
        let e = switchover(&survey(t), &settings(), "repl").unwrap_err();
        assert!(e.reason.contains("switch them with --dual"), "{e}");
        let mut t = healthy();
        get(&mut t, 1).read_only = Some(true);
        let e = switchover(&survey(t), &settings(), "repl").unwrap_err();
        assert!(e.reason.contains("is read_only already"), "{e}");
        let mut t = healthy();
        for i in &mut t.instances {
            i.flavor = Some(Flavor::MySql);
            i.version = Some("8.0.36".into());
            i.gtid.mode = Some(if i.port == 3 { "OFF".into() } else { "ON".into() });
            i.gtid.enforce_consistency = Some("ON".into());
            i.gtid.executed = Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10".into());
            if let Some(r) = i.replication.as_mut() {
                r.using_gtid = Some("auto_position".into());
            }
            i.super_read_only = Some(i.port != 1);
        }
        let mut s = settings();
        s.force = true;
        let e = switchover(&survey(t), &s, "repl").unwrap_err();
        assert!(e.reason.ends_with("needs gtid_mode=ON (auto-positioning); not on h:3"), "{e}");
    }

    #[test]
    fn mysql_spelling() {
        let mut t = healthy();
        for i in &mut t.instances {
            i.flavor = Some(Flavor::MySql);
            i.version = Some("8.0.36".into());
            i.gtid.mode = Some("ON".into());
            i.gtid.enforce_consistency = Some("ON".into());
            i.gtid.executed = Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10".into());
            i.super_read_only = Some(i.port != 1);
            if let Some(r) = i.replication.as_mut() {
                r.using_gtid = Some("auto_position".into());
            }
        }
        let p = switchover(&survey(t), &settings(), "repl").unwrap();
        let text = p.describe();
        assert!(text.contains("h:1: SET GLOBAL super_read_only = ON"), "{text}");
        assert!(text.contains("WAIT_FOR_EXECUTED_GTID_SET"), "{text}");
        assert!(text.contains("h:2: STOP REPLICA: it has everything"), "{text}");
        assert!(text.contains(
            "h:2: promote: RESET REPLICA ALL; SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF"
        ));
        assert!(text.contains("CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'h', SOURCE_PORT = 2, SOURCE_USER = 'repl', SOURCE_PASSWORD = '****', SOURCE_AUTO_POSITION = 1; START REPLICA"), "{text}");
        assert!(!text.contains("gtid_slave_pos"));
    }

    #[test]
    fn the_vip() {
        let mut sv = survey(healthy());
        sv.vip = Some(VipProbe {
            vip: "10.0.0.100".into(),
            answer: Ok(VipAnswer { server_id: Some(1), hostname: Some("vm".into()) }),
        });
        let mut s = settings();
        // Found in the metadata, no interface: noted, not moved.
        let p = switchover(&sv, &s, "repl").unwrap();
        assert!(!actions(&p).contains(&"vip"));
        assert!(p
            .warnings
            .iter()
            .any(|w| w.starts_with("the cluster domain 10.0.0.100 (from the metadata) is not moved")));
        // Set in the file: refused.
        s.vip.configured = true;
        let e = switchover(&sv, &s, "repl").unwrap_err();
        assert!(e.reason.starts_with("the VIP 10.0.0.100 cannot be moved: no interface"), "{e}");
        s.vip.interface = Some("eth0".into());
        s.vip.hosts = HostMap([("h:2".to_string(), "netns:two".to_string())].into());
        let p = switchover(&sv, &s, "repl").unwrap();
        let step = p.steps.iter().find(|s| matches!(s.action, Action::MoveVip { .. })).unwrap();
        assert_eq!(
            step.action,
            Action::MoveVip {
                vip: "10.0.0.100".into(),
                interface: "eth0".into(),
                from: "ssh:h".into(),
                to: "netns:two".into()
            }
        );
        assert!(step.after_point_of_no_return);
        assert_eq!(actions(&p)[actions(&p).len() - 2], "vip", "before the verification");
        s.vip.hosts = HostMap([("h:2".to_string(), "ssh:-oProxyCommand=x".to_string())].into());
        assert!(switchover(&sv, &s, "repl").unwrap_err().reason.contains("not a host spec"));
    }

    #[test]
    fn sql_text() {
        assert_eq!(quote("it's \\ \n\0"), "'it\\'s \\\\ \\n\\0'");
        let d = Dialect::MariaDb;
        assert_eq!(d.stop("a'b"), "STOP SLAVE 'a\\'b'");
        assert_eq!(d.reset_all("x"), "RESET SLAVE 'x' ALL");
        assert_eq!(d.status("x"), "SHOW SLAVE 'x' STATUS");
        let src = Source { host: "db2", port: 3306, user: "repl", password: Some("p'w") };
        assert_eq!(
            d.change_source("", src),
            "CHANGE MASTER TO MASTER_HOST = 'db2', MASTER_PORT = 3306, MASTER_USER = 'repl', \
             MASTER_PASSWORD = 'p\\'w', MASTER_USE_GTID = slave_pos"
        );
        assert_eq!(Dialect::MySql.stop("c"), "STOP REPLICA FOR CHANNEL 'c'");
        assert_eq!(Dialect::MySqlLegacy.reset_all("c"), "RESET SLAVE ALL FOR CHANNEL 'c'");
        assert!(Dialect::MySqlLegacy
            .change_source("c", src)
            .ends_with("MASTER_AUTO_POSITION = 1 FOR CHANNEL 'c'"));
        assert_eq!(Dialect::of(Flavor::MySql, Some("8.0.25")), Dialect::MySqlLegacy);
        assert_eq!(Dialect::of(Flavor::MySql, Some("8.4.0")), Dialect::MySql);
        assert_eq!(Dialect::of(Flavor::MySql, Some("5.7.44-log")), Dialect::MySqlLegacy);
        let t = Duration::from_millis(2500);
        assert_eq!(
            d.wait(&Target::MariaGtid("0-1-5".into()), "", t),
            "SELECT MASTER_GTID_WAIT('0-1-5', 2.500) AS r"
        );
        let at = BinlogPosition { file: "b.000002".into(), position: 77 };
        assert_eq!(
            d.wait(&Target::File(at.clone()), "x", t),
            "SELECT MASTER_POS_WAIT('b.000002', 77, 2.500, 'x') AS r"
        );
        assert_eq!(
            Dialect::MySql.wait(&Target::File(at), "", t),
            "SELECT SOURCE_POS_WAIT('b.000002', 77, 2.500) AS r"
        );
    }

    #[test]
    fn wait_answers_and_targets() {
        let g = Target::MariaGtid("0-1-5".into());
        assert_eq!(waited(&g, Some("0")), Waited::Reached);
        assert_eq!(waited(&g, Some("-1")), Waited::TimedOut);
        let m = Target::MySqlGtid("x:1".into());
        assert_eq!((waited(&m, Some("0")), waited(&m, Some("1"))), (Waited::Reached, Waited::TimedOut));
        let f = Target::File(BinlogPosition { file: "b".into(), position: 4 });
        assert_eq!((waited(&f, Some("12")), waited(&f, Some("-1"))), (Waited::Reached, Waited::TimedOut));
        assert_eq!(waited(&f, None), Waited::NotReplicating);
        assert_eq!(without_server("1-11-7,2-12-3", 12), "1-11-7");
        assert_eq!(without_server("", 12), "");
        let pos = FinalPosition { gtid: Some("0-1-9,1-2-4".into()), file: None };
        assert_eq!(wait_target(WaitKind::MariaGtid, &pos, Some(2)), Ok(Target::MariaGtid("0-1-9".into())));
        assert!(wait_target(WaitKind::File, &pos, None).unwrap_err().contains("SHOW MASTER STATUS"));
        assert_eq!(pos.to_string(), "GTID 0-1-9,1-2-4, binlog unknown");
        let at = |p| Some(BinlogPosition { file: "b.000002".into(), position: p });
        let (a, b) =
            (FinalPosition { file: at(4), ..pos.clone() }, FinalPosition { file: at(90), ..pos.clone() });
        assert!(a.same_writes(&b, WaitKind::MariaGtid) && !a.same_writes(&b, WaitKind::File));
    }
}
