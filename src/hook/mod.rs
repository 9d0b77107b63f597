//! `gapless hook`: the commands orchestrator runs in its failover hook
//! lists (docs/orchestrator.md). They read orchestrator's placeholders as
//! flags and its `ORC_*` environment variables (flags win), talk to the
//! sidecar's API ([`client`]), log every step with the recovery UID to
//! stdout and an optional log file, and say by their exit code whether
//! their part succeeded: 0 done (or nothing to do), 1 failed, 2 bad input.

pub mod client;

use std::fmt::Display;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gapless_protocol::client::host_port;
use serde_json::{json, Value};

use self::client::Sidecar;

/// Exit code: the hook did its part (or had nothing to do).
pub const EXIT_OK: i32 = 0;
/// Exit code: its part failed (or the pre hook vetoes).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: bad input (an unsubstituted placeholder, a missing value).
pub const EXIT_INPUT: i32 = 2;

/// The failure types where the primary is dead: the only ones the post
/// hook completes.
pub const DEAD_PRIMARY_TYPES: [&str; 4] =
    ["DeadMaster", "DeadMasterAndSomeReplicas", "DeadCoMaster", "DeadCoMasterAndSomeReplicas"];

/// orchestrator's command for a graceful takeover: it fires the same hooks
/// (with failure type DeadMaster) but the old primary was alive and
/// drained, so there is nothing to complete.
pub const GRACEFUL_COMMAND: &str = "graceful-master-takeover";

/// What the command line gave (each `None` when absent or empty: an
/// orchestrator placeholder with no value becomes an empty argument).
#[derive(Debug, Clone, Default)]
pub struct OrcFlags {
    /// `--failure-type`.
    pub failure_type: Option<String>,
    /// `--DeadStatus` (the earlier Go hook's name for the failure type).
    pub dead_status: Option<String>,
    /// `--command` (orchestrator's `{command}`).
    pub command: Option<String>,
    /// `--successor-host`.
    pub successor_host: Option<String>,
    /// `--NewMaster`.
    pub new_master: Option<String>,
    /// `--successor-port`.
    pub successor_port: Option<String>,
    /// `--NewMasterPort`.
    pub new_master_port: Option<String>,
    /// `--failed-host`.
    pub failed_host: Option<String>,
    /// `--OldMaster`.
    pub old_master: Option<String>,
    /// `--failed-port`.
    pub failed_port: Option<String>,
    /// `--OldMasterPort`.
    pub old_master_port: Option<String>,
    /// `--cluster`.
    pub cluster: Option<String>,
    /// `--ClusterName`.
    pub cluster_name: Option<String>,
    /// `--recovery-uid`.
    pub recovery_uid: Option<String>,
    /// `--replica-hosts`.
    pub replica_hosts: Option<String>,
    /// `--VipAddr`.
    pub vip_addr: Option<String>,
    /// `--InterFace`.
    pub interface: Option<String>,
}

/// The inputs, resolved and checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// orchestrator's failure type (analysis code), e.g. `DeadMaster`.
    pub failure_type: Option<String>,
    /// orchestrator's command, e.g. `graceful-master-takeover`.
    pub command: Option<String>,
    /// The promoted replica.
    pub successor: Option<(String, u16)>,
    /// The failed primary.
    pub failed: Option<(String, u16)>,
    /// The cluster alias.
    pub cluster: Option<String>,
    /// The cluster domain (informational).
    pub cluster_domain: Option<String>,
    /// orchestrator's recovery UID.
    pub recovery_uid: Option<String>,
    /// The successor's binlog coordinates (informational).
    pub successor_binlog_coordinates: Option<String>,
    /// The failed primary's replicas, `HOST:PORT,HOST:PORT`.
    pub replica_hosts: Option<String>,
    /// The VIP to move (not implemented yet).
    pub vip_addr: Option<String>,
    /// Its interface.
    pub interface: Option<String>,
}

impl Inputs {
    /// `HOST:PORT` of the successor, as the sidecar's API takes it.
    pub fn successor_addr(&self) -> Option<String> {
        self.successor.as_ref().map(|(h, p)| host_port(h, *p))
    }

    /// The replicas as `HOST:PORT` (a host alone means port 3306), in the
    /// order given, without repeats.
    pub fn replicas(&self) -> Result<Vec<String>, InputError> {
        let mut out: Vec<String> = Vec::new();
        for item in self.replica_hosts.as_deref().unwrap_or("").split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            // A host alone means the default port.
            let spec = if item.contains(':') { item.to_string() } else { format!("{item}:3306") };
            let addr = match spec.parse::<crate::detect::Endpoint>() {
                Ok(endpoint) => endpoint.to_string(),
                Err(_) => return Err(InputError(format!("replica hosts: {item:?} is not HOST:PORT"))),
            };
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        Ok(out)
    }

    /// Why the post hook has nothing to do, or `None` when it should act.
    pub fn skip_reason(&self) -> Option<String> {
        if self.command.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(GRACEFUL_COMMAND)) {
            return Some(format!(
                "not a dead-primary failover ({} by {GRACEFUL_COMMAND}): nothing to do",
                self.failure_type.as_deref().unwrap_or("no failure type")
            ));
        }
        match self.failure_type.as_deref() {
            Some(t) if DEAD_PRIMARY_TYPES.contains(&t) => None,
            Some(t) => Some(format!("not a dead-primary failover ({t}): nothing to do")),
            None => Some("not a dead-primary failover (no failure type): nothing to do".into()),
        }
    }
}

/// Bad input: exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first `{word}` in `value` (an orchestrator placeholder left as it
/// was), if any.
pub fn placeholder(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    let mut i = 0;
    while let Some(open) = value[i..].find('{').map(|o| o + i) {
        let word_end = bytes[open + 1..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .map_or(bytes.len(), |p| open + 1 + p);
        if word_end > open + 1 && bytes.get(word_end) == Some(&b'}') {
            return Some(&value[open..=word_end]);
        }
        i = open + 1;
    }
    None
}

/// The first non-empty value among the sources (flags first, then the
/// environment variable), with the name of the one it came from; an
/// unsubstituted placeholder in it is an error naming that source.
fn pick(
    sources: &[(&'static str, Option<&String>)],
    env_name: Option<&'static str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, &'static str)>, InputError> {
    let from_env = env_name.and_then(|n| env(n).map(|v| (v, n)));
    let found = sources
        .iter()
        .find_map(|(name, v)| v.filter(|v| !v.trim().is_empty()).map(|v| (v.trim().to_string(), *name)))
        .or_else(|| from_env.filter(|(v, _)| !v.trim().is_empty()).map(|(v, n)| (v.trim().to_string(), n)));
    if let Some((value, name)) = &found {
        if let Some(p) = placeholder(value) {
            return Err(InputError(format!(
                "{name} is {value:?}: orchestrator left the placeholder {p} unsubstituted \
                 (check the hook line in orchestrator's configuration)"
            )));
        }
    }
    Ok(found)
}

fn port(value: Option<(String, &'static str)>) -> Result<Option<u16>, InputError> {
    match value {
        None => Ok(None),
        Some((v, name)) => v
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .map(Some)
            .ok_or_else(|| InputError(format!("{name} is {v:?}: expected a port (1-65535)"))),
    }
}

fn endpoint(
    host: Option<(String, &'static str)>,
    port_value: Option<(String, &'static str)>,
    what: &str,
) -> Result<Option<(String, u16)>, InputError> {
    let host_name = host.as_ref().map(|(_, n)| *n);
    match (host, port(port_value)?) {
        (Some((h, _)), Some(p)) => Ok(Some((h, p))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(InputError(format!(
            "the {what} host is given ({}) but not its port",
            host_name.unwrap_or("?")
        ))),
        (None, Some(_)) => Err(InputError(format!("the {what} port is given but not its host"))),
    }
}

/// Resolves the flags and the environment (`env` reads a variable; flags
/// win) and checks them.
pub fn resolve(flags: &OrcFlags, env: &dyn Fn(&str) -> Option<String>) -> Result<Inputs, InputError> {
    let f = flags;
    let text = |v: Option<(String, &'static str)>| v.map(|(v, _)| v);
    Ok(Inputs {
        failure_type: text(pick(
            &[("--failure-type", f.failure_type.as_ref()), ("--DeadStatus", f.dead_status.as_ref())],
            Some("ORC_FAILURE_TYPE"),
            env,
        )?),
        command: text(pick(&[("--command", f.command.as_ref())], Some("ORC_COMMAND"), env)?),
        successor: endpoint(
            pick(
                &[("--successor-host", f.successor_host.as_ref()), ("--NewMaster", f.new_master.as_ref())],
                Some("ORC_SUCCESSOR_HOST"),
                env,
            )?,
            pick(
                &[
                    ("--successor-port", f.successor_port.as_ref()),
                    ("--NewMasterPort", f.new_master_port.as_ref()),
                ],
                Some("ORC_SUCCESSOR_PORT"),
                env,
            )?,
            "successor",
        )?,
        failed: endpoint(
            pick(
                &[("--failed-host", f.failed_host.as_ref()), ("--OldMaster", f.old_master.as_ref())],
                Some("ORC_FAILED_HOST"),
                env,
            )?,
            pick(
                &[("--failed-port", f.failed_port.as_ref()), ("--OldMasterPort", f.old_master_port.as_ref())],
                Some("ORC_FAILED_PORT"),
                env,
            )?,
            "failed",
        )?,
        cluster: text(pick(
            &[("--cluster", f.cluster.as_ref()), ("--ClusterName", f.cluster_name.as_ref())],
            Some("ORC_FAILURE_CLUSTER_ALIAS"),
            env,
        )?),
        cluster_domain: text(pick(&[], Some("ORC_FAILURE_CLUSTER_DOMAIN"), env)?),
        recovery_uid: text(pick(
            &[("--recovery-uid", f.recovery_uid.as_ref())],
            Some("ORC_RECOVERY_UID"),
            env,
        )?),
        successor_binlog_coordinates: text(pick(&[], Some("ORC_SUCCESSOR_BINLOG_COORDINATES"), env)?),
        replica_hosts: text(pick(
            &[("--replica-hosts", f.replica_hosts.as_ref())],
            Some("ORC_REPLICA_HOSTS"),
            env,
        )?),
        vip_addr: text(pick(&[("--VipAddr", f.vip_addr.as_ref())], None, env)?),
        interface: text(pick(&[("--InterFace", f.interface.as_ref())], None, env)?),
    })
}

/// The recovery UID to put in log lines when the inputs could not be
/// resolved: the raw one if it is usable, else `-`.
fn raw_uid(flags: &OrcFlags, env: &dyn Fn(&str) -> Option<String>) -> String {
    flags
        .recovery_uid
        .clone()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| env("ORC_RECOVERY_UID").filter(|v| !v.trim().is_empty()))
        .filter(|v| placeholder(v).is_none())
        .unwrap_or_else(|| "-".into())
}

/// The file name of a recovery's record: the UID made
/// [safe](crate::atomic_file::safe_name), then `.done`.
pub fn done_file_name(uid: &str) -> String {
    format!("{}.done", crate::atomic_file::safe_name(uid))
}

/// Log lines: `TIME LEVEL gapless hook STEP recovery=UID: message`, to
/// stdout and appended to the log file.
pub struct Log {
    step: &'static str,
    uid: String,
    file: Option<File>,
}

impl Log {
    /// A log for `step` (`pre-failover`, `post-master-failover`); a log
    /// file that cannot be opened is said on stdout, and the hook goes on.
    pub fn new(step: &'static str, uid: &str, file: Option<&Path>) -> Log {
        let mut log = Log { step, uid: uid.to_string(), file: None };
        if let Some(path) = file {
            match std::fs::OpenOptions::new().create(true).append(true).open(path) {
                Ok(f) => log.file = Some(f),
                Err(e) => log.warn(format_args!(
                    "cannot open --log-file {}: {e}; logging to stdout only",
                    path.display()
                )),
            }
        }
        log
    }

    fn line(&mut self, level: &str, message: impl Display) {
        let text = format!(
            "{} {level} gapless hook {} recovery={}: {message}\n",
            rfc3339_now(),
            self.step,
            self.uid
        );
        // Not print!: a closed stdout must not panic the hook. (Tests use
        // print! so that the test harness captures the lines.)
        #[cfg(not(test))]
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
        #[cfg(test)]
        print!("{text}");
        if let Some(f) = &mut self.file {
            let _ = f.write_all(text.as_bytes());
        }
    }

    /// An INFO line.
    pub fn info(&mut self, message: impl Display) {
        self.line("INFO", message);
    }

    /// A WARN line.
    pub fn warn(&mut self, message: impl Display) {
        self.line("WARN", message);
    }

    /// An ERROR line.
    pub fn error(&mut self, message: impl Display) {
        self.line("ERROR", message);
    }
}

fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    // "…T22:13:20Z" with the milliseconds before the Z.
    let seconds = crate::api::time::rfc3339(now.as_secs());
    format!("{}.{:03}Z", seconds.trim_end_matches('Z'), now.subsec_millis())
}

/// How to reach the sidecar (checked when the hook starts).
#[derive(Debug, Clone)]
pub struct SidecarOptions {
    /// `--sidecar`: `http(s)://HOST:PORT`.
    pub url: String,
    /// `--sidecar-token-file`.
    pub token_file: Option<PathBuf>,
    /// `--sidecar-ca`.
    pub ca_file: Option<PathBuf>,
}

impl SidecarOptions {
    /// The sidecar's client; `None` (logged) when its URL, token file or CA
    /// file is unusable.
    fn connect(&self, log: &mut Log) -> Option<Sidecar> {
        match Sidecar::new(&self.url, self.token_file.as_deref(), self.ca_file.as_deref()) {
            Ok(s) => Some(s),
            Err(e) => {
                log.error(format_args!("{e:#}"));
                None
            }
        }
    }
}

/// `gapless hook post-master-failover`.
#[derive(Debug, Clone)]
pub struct PostOptions {
    /// The sidecar.
    pub sidecar: SidecarOptions,
    /// Everything must be done within this time.
    pub deadline: Duration,
    /// `sql` or `binlog`.
    pub mode: &'static str,
    /// Where the records of finished recoveries are kept.
    pub state_dir: PathBuf,
    /// `--log-file`.
    pub log_file: Option<PathBuf>,
    /// `--relaxed-durability`, passed to the replay.
    pub relaxed_durability: bool,
    /// `--vip-from`: the host spec the VIP is taken from (default: ssh to
    /// the failed host).
    pub vip_from: Option<String>,
    /// `--vip-to`: the host spec it goes to (default: ssh to the successor).
    pub vip_to: Option<String>,
    /// orchestrator's inputs.
    pub flags: OrcFlags,
}

/// `gapless hook pre-failover`.
#[derive(Debug, Clone)]
pub struct PreOptions {
    /// The sidecar.
    pub sidecar: SidecarOptions,
    /// The check must be answered within this time.
    pub deadline: Duration,
    /// Exit 1 (stopping the failover) when the sidecar is not ready.
    pub veto: bool,
    /// `--log-file`.
    pub log_file: Option<PathBuf>,
    /// orchestrator's inputs.
    pub flags: OrcFlags,
}

/// The time left before `end`.
fn left(end: Instant) -> Duration {
    end.saturating_duration_since(Instant::now())
}

/// A request's own timeout: what is left, at most 10 s.
fn request_timeout(end: Instant) -> Duration {
    left(end).min(Duration::from_secs(10))
}

fn log_inputs(log: &mut Log, inputs: &Inputs) {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let ep = |v: &Option<(String, u16)>| v.as_ref().map_or("-".into(), |(h, p)| host_port(h, *p));
    log.info(format_args!(
        "failure type {}, command {}, cluster {} (domain {}), failed {}, successor {} (binlog coordinates {}), replicas {}",
        show(&inputs.failure_type),
        show(&inputs.command),
        show(&inputs.cluster),
        show(&inputs.cluster_domain),
        ep(&inputs.failed),
        ep(&inputs.successor),
        show(&inputs.successor_binlog_coordinates),
        show(&inputs.replica_hosts),
    ));
}

/// Runs `gapless hook post-master-failover`; returns the exit code.
pub fn post_master_failover(opts: &PostOptions, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    const STEP: &str = "post-master-failover";
    let end = Instant::now() + opts.deadline;
    let inputs = match resolve(&opts.flags, env) {
        Ok(i) => i,
        Err(e) => {
            Log::new(STEP, &raw_uid(&opts.flags, env), opts.log_file.as_deref()).error(e);
            return EXIT_INPUT;
        }
    };
    let Some(uid) = inputs.recovery_uid.clone() else {
        Log::new(STEP, "-", opts.log_file.as_deref())
            .error("no recovery UID: give --recovery-uid or set ORC_RECOVERY_UID (orchestrator sets it)");
        return EXIT_INPUT;
    };
    let mut log = Log::new(STEP, &uid, opts.log_file.as_deref());
    log_inputs(&mut log, &inputs);
    if let Some(why) = inputs.skip_reason() {
        log.info(why);
        return EXIT_OK;
    }
    let Some(target) = inputs.successor_addr() else {
        log.error("no successor: give --successor-host/--successor-port or set ORC_SUCCESSOR_HOST/ORC_SUCCESSOR_PORT");
        return EXIT_INPUT;
    };
    let vip_plan = match vip_plan(opts, &inputs) {
        Ok(p) => p,
        Err(e) => {
            log.error(e);
            return EXIT_INPUT;
        }
    };
    let done = opts.state_dir.join(done_file_name(&uid));
    if done.exists() {
        log.info(format_args!("already done for recovery {uid} ({}): nothing to do", done.display()));
        return EXIT_OK;
    }
    let Some(sidecar) = opts.sidecar.connect(&mut log) else { return EXIT_INPUT };
    log.info(format_args!(
        "asking the sidecar {} to replay onto the successor {target} (mode {}, deadline {:.1} s)",
        sidecar.base(),
        opts.mode,
        opts.deadline.as_secs_f64()
    ));
    let after = recorded_start(&mut log, &sidecar, &uid, &target, end);
    let job = match complete(&mut log, &sidecar, &target, opts, after.as_deref(), end) {
        Ok(job) => job,
        Err(e) => {
            log.error(format_args!("completion onto {target} failed: {e}"));
            return EXIT_FAILED;
        }
    };
    let summary = summary(&job);
    log.info(format_args!(
        "completion onto {target} succeeded: replay {} applied {} transaction(s) ({} .. {}); the target had {}",
        job["id"],
        summary["applied"],
        text(&summary["first_gtid"]),
        text(&summary["last_gtid"]),
        text(&summary["target_executed"])
    ));
    let vip = match vip_plan {
        Some(plan) => match move_vip(&mut log, plan, end) {
            Ok(summary) => Some(summary),
            Err(e) => {
                log.error(format_args!(
                    "the VIP move failed: {e}; {target} is complete, but clients are not sent to it yet \
                     (running this hook again retries the move; nothing is replayed twice)"
                ));
                return EXIT_FAILED;
            }
        },
        None => {
            log.info("no --VipAddr: no VIP to move");
            None
        }
    };
    let record = json!({
        "recovery_uid": uid,
        "finished": rfc3339_now(),
        "failure_type": inputs.failure_type,
        "command": inputs.command,
        "cluster": inputs.cluster,
        "failed": inputs.failed.as_ref().map(|(h, p)| host_port(h, *p)),
        "successor": target,
        "successor_binlog_coordinates": inputs.successor_binlog_coordinates,
        "sidecar": sidecar.base(),
        "replay": job["id"],
        "summary": summary,
        "vip": vip,
    });
    match crate::atomic_file::write_json(&done, &record) {
        Ok(()) => log.info(format_args!("recorded in {}", done.display())),
        // The completion itself succeeded; a second run would replay
        // nothing new (the target has every transaction by GTID).
        Err(e) => log.warn(format_args!("could not record the recovery in {}: {e}", done.display())),
    }
    if left(end).is_zero() {
        log.warn("finished after the deadline");
    }
    log.info("done");
    EXIT_OK
}

/// The VIP move asked for (`--VipAddr`), checked before anything is done:
/// a bad address, interface or host spec is bad input.
fn vip_plan(opts: &PostOptions, inputs: &Inputs) -> Result<Option<crate::vip::MovePlan>, InputError> {
    let Some(vip) = inputs.vip_addr.as_deref() else { return Ok(None) };
    let Some(dev) = inputs.interface.as_deref() else {
        return Err(InputError(format!("--VipAddr {vip} needs --InterFace (the interface it goes on)")));
    };
    let ssh_to = |endpoint: &Option<(String, u16)>| endpoint.as_ref().map(|(h, _)| format!("ssh:{h}"));
    let from = opts.vip_from.clone().or_else(|| ssh_to(&inputs.failed));
    let Some(to) = opts.vip_to.clone().or_else(|| ssh_to(&inputs.successor)) else {
        return Err(InputError("no host to move the VIP to: give --vip-to or the successor".into()));
    };
    crate::vip::MovePlan::parse(vip, dev, from.as_deref(), &to, false, opts.deadline)
        .map(Some)
        .map_err(|e| InputError(format!("the VIP move: {e}")))
}

/// Moves the VIP to the successor (after the completion, so clients only
/// reach it once it has everything) within what is left of the deadline,
/// logging each step; the summary line for the record.
fn move_vip(log: &mut Log, mut plan: crate::vip::MovePlan, end: Instant) -> Result<String, String> {
    plan.timeout = left(end);
    log.info(format_args!(
        "moving the VIP {} on {} from {} to {}",
        plan.vip,
        plan.dev,
        plan.from.as_ref().map_or_else(|| "(no old host)".to_string(), ToString::to_string),
        plan.to
    ));
    let report = crate::vip::move_vip_with(&plan, &mut |step| match step.outcome {
        crate::vip::Outcome::Ok => log.info(format_args!("VIP: {step}")),
        _ => log.warn(format_args!("VIP: {step}")),
    })
    .map_err(|e| e.to_string())?;
    Ok(report.steps.last().map(|s| s.text.clone()).unwrap_or_default())
}

/// The report's summary kept in the record and logged.
fn summary(job: &Value) -> Value {
    let report = &job["report"];
    let applied = report["applied"].as_array();
    json!({
        "applied": job["applied"],
        "first_gtid": applied.and_then(|a| a.first()).map_or(Value::Null, |a| a["gtid"].clone()),
        "last_gtid": applied.and_then(|a| a.last()).map_or(Value::Null, |a| a["gtid"].clone()),
        "target_executed": report["target_executed"],
        "after_position": report["after_position"],
        "skipped_executed": report["skipped_executed"],
        "seconds": report["seconds"],
    })
}

/// Where the replay onto `target` starts when it has no GTIDs: the
/// coordinates the pre hook had the sidecar record for this recovery
/// (orchestrator has reset the promoted replica since). `None` leaves it
/// to the sidecar, which reads the target's GTIDs.
fn recorded_start(log: &mut Log, sidecar: &Sidecar, uid: &str, target: &str, end: Instant) -> Option<String> {
    let url = format!("/v1/positions/{}", crate::api::positions::percent_encode(uid));
    let snapshot: Value = match sidecar.request("GET", &url, None, request_timeout(end)) {
        Ok((200, answer)) => serde_json::from_str(&answer).ok()?,
        Ok((404, _)) => {
            log.info(format_args!(
                "no positions were recorded for this recovery (pre-failover hook): the sidecar works \
                 out where {target} stands from its GTIDs"
            ));
            return None;
        }
        Ok((status, answer)) => {
            log.warn(format_args!("GET {url}: {status}: {}; going on without them", answer.trim()));
            return None;
        }
        Err(e) => {
            log.warn(format_args!("GET {url}: {e:#}; going on without the recorded positions"));
            return None;
        }
    };
    let entry = snapshot["replicas"]
        .as_array()?
        .iter()
        .find(|r| r["replica"].as_str().is_some_and(|a| a.eq_ignore_ascii_case(target)));
    let Some(entry) = entry else {
        log.warn(format_args!(
            "positions were recorded for this recovery ({}), but not for {target}",
            snapshot["taken"].as_str().unwrap_or("?")
        ));
        return None;
    };
    let gtids = entry["executed_gtids"].as_str().unwrap_or("");
    let executed = entry["executed"].as_str();
    match (gtids.is_empty(), executed) {
        (false, _) => {
            log.info(format_args!(
                "{target} had executed GTIDs {gtids} before the promotion: its GTIDs decide what it lacks"
            ));
            None
        }
        (true, Some(at)) => {
            log.info(format_args!(
                "{target} has no GTIDs: the replay starts after {at}, where it had executed up to before \
                 the promotion (recorded {})",
                snapshot["taken"].as_str().unwrap_or("?")
            ));
            Some(at.to_string())
        }
        (true, None) => {
            log.warn(format_args!(
                "no executed coordinates were recorded for {target}: {}",
                text(&entry["error"])
            ));
            None
        }
    }
}

/// Starts (or joins) the replay onto `target` (after `after`, `FILE:POS`,
/// when given) and follows it until it succeeds (its job), fails, or the
/// deadline passes.
fn complete(
    log: &mut Log,
    sidecar: &Sidecar,
    target: &str,
    opts: &PostOptions,
    after: Option<&str>,
    end: Instant,
) -> Result<Value, String> {
    let mut last_error: Option<String> = None;
    let url = loop {
        let remaining = left(end);
        if remaining < Duration::from_millis(100) {
            return Err(format!(
                "the deadline passed before the sidecar started the replay{}",
                last_error.map(|e| format!(" (last error: {e})")).unwrap_or_default()
            ));
        }
        let mut body = json!({ "target": target, "mode": opts.mode, "deadline": remaining.as_secs_f64() });
        if opts.relaxed_durability {
            body["relaxed_durability"] = json!(true);
        }
        if let Some(at) = after {
            body["after"] = json!(at);
        }
        let body = body.to_string();
        match sidecar.request("POST", "/v1/replay", Some(&body), request_timeout(end)) {
            Ok((202, text)) => {
                let started: Value =
                    serde_json::from_str(&text).map_err(|e| format!("POST /v1/replay: {e}: {text}"))?;
                let url =
                    started["url"].as_str().ok_or_else(|| format!("POST /v1/replay: no url in {text}"))?;
                log.info(format_args!("replay {} started: {url}", started["id"]));
                break url.to_string();
            }
            Ok((409, _)) => match running_job(sidecar, target, end) {
                Ok(Some(url)) => {
                    log.info(format_args!("a replay onto {target} is already running: following {url}"));
                    break url;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(200)),
                Err(e) => {
                    note_retry(log, &mut last_error, e);
                    std::thread::sleep(Duration::from_millis(200));
                }
            },
            Ok((status, text)) if status >= 500 && status != 503 => {
                note_retry(log, &mut last_error, format!("POST /v1/replay: {status}: {}", text.trim()));
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok((status, text)) => return Err(format!("POST /v1/replay: {status}: {}", text.trim())),
            Err(e) => {
                note_retry(log, &mut last_error, format!("{e:#}"));
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    };
    let mut last_applied = None;
    loop {
        if left(end).is_zero() {
            return Err(format!(
                "the deadline passed while {url} was still running ({} applied so far)",
                last_applied.map_or("none".into(), |n: u64| n.to_string())
            ));
        }
        match sidecar.request("GET", &url, None, request_timeout(end)) {
            Ok((200, text)) => {
                let job: Value =
                    serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}: {text}"))?;
                match job["state"].as_str() {
                    Some("succeeded") => return Ok(job),
                    Some("failed") => {
                        return Err(format!(
                            "replay {} failed after applying {}: {}",
                            job["id"],
                            job["applied"],
                            job["error"].as_str().unwrap_or("no reason given")
                        ))
                    }
                    Some("running") => {
                        let applied = job["applied"].as_u64();
                        if applied != last_applied && applied.is_some_and(|n| n > 0) {
                            log.info(format_args!("{url}: {} applied so far", job["applied"]));
                        }
                        last_applied = applied;
                    }
                    _ => return Err(format!("GET {url}: unexpected answer {text}")),
                }
            }
            Ok((status, text)) if status >= 500 => {
                note_retry(log, &mut last_error, format!("GET {url}: {status}: {}", text.trim()))
            }
            Ok((status, text)) => return Err(format!("GET {url}: {status}: {}", text.trim())),
            Err(e) => note_retry(log, &mut last_error, format!("{e:#}")),
        }
        std::thread::sleep(Duration::from_millis(200).min(left(end)));
    }
}

/// Logs a transient error once (until a different one comes) and keeps it.
fn note_retry(log: &mut Log, last: &mut Option<String>, error: String) {
    if last.as_deref() != Some(error.as_str()) {
        log.warn(format_args!("{error}; retrying until the deadline"));
    }
    *last = Some(error);
}

/// The URL of the running replay onto `target`, from `GET /v1/replay`.
fn running_job(sidecar: &Sidecar, target: &str, end: Instant) -> Result<Option<String>, String> {
    let (status, text) =
        sidecar.request("GET", "/v1/replay", None, request_timeout(end)).map_err(|e| format!("{e:#}"))?;
    if status != 200 {
        return Err(format!("GET /v1/replay: {status}: {}", text.trim()));
    }
    let jobs: Value = serde_json::from_str(&text).map_err(|e| format!("GET /v1/replay: {e}"))?;
    Ok(jobs.as_array().and_then(|jobs| {
        jobs.iter()
            .rev()
            .find(|j| j["target"] == target && j["state"] == "running")
            .and_then(|j| j["id"].as_u64())
            .map(|id| format!("/v1/replay/{id}"))
    }))
}

/// Runs `gapless hook pre-failover`; returns the exit code.
pub fn pre_failover(opts: &PreOptions, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    const STEP: &str = "pre-failover";
    let end = Instant::now() + opts.deadline;
    let inputs = match resolve(&opts.flags, env) {
        Ok(i) => i,
        Err(e) => {
            Log::new(STEP, &raw_uid(&opts.flags, env), opts.log_file.as_deref()).error(e);
            return EXIT_INPUT;
        }
    };
    let uid = inputs.recovery_uid.clone().unwrap_or_else(|| "-".into());
    let mut log = Log::new(STEP, &uid, opts.log_file.as_deref());
    log_inputs(&mut log, &inputs);
    let replicas = match inputs.replicas() {
        Ok(r) => r,
        Err(e) => {
            log.error(e);
            return EXIT_INPUT;
        }
    };
    let Some(sidecar) = opts.sidecar.connect(&mut log) else { return EXIT_INPUT };
    let mut problems = Vec::new();
    match check_ready(&sidecar, end) {
        Ok(what) => log.info(format_args!("the sidecar {} is ready: {what}", sidecar.base())),
        Err(why) => problems.push(format!("the sidecar {} is not ready: {why}", sidecar.base())),
    }
    match (&inputs.recovery_uid, replicas.is_empty()) {
        (None, _) => log.warn(
            "no recovery UID (--recovery-uid or ORC_RECOVERY_UID): replica positions are not recorded, \
             and a replay onto a promoted replica without GTIDs will have no start point",
        ),
        (Some(_), true) => log.warn(
            "no replicas given (--replica-hosts or ORC_REPLICA_HOSTS): replica positions are not recorded, \
             and a replay onto a promoted replica without GTIDs will have no start point",
        ),
        (Some(uid), false) => match record_positions(&mut log, &sidecar, uid, &replicas, end) {
            Ok(found) => problems.extend(found),
            Err(e) => problems.push(format!("recording the replicas' positions failed: {e}")),
        },
    }
    if problems.is_empty() {
        log.info("done: the failover may go on");
        return EXIT_OK;
    }
    if opts.veto {
        for p in &problems {
            log.error(format_args!("{p}"));
        }
        log.error("vetoing the failover (--veto)");
        EXIT_FAILED
    } else {
        for p in &problems {
            log.warn(format_args!("{p}"));
        }
        log.warn("the failover goes on (no --veto), and may lose transactions");
        EXIT_OK
    }
}

/// Has the sidecar record the replicas' positions for recovery `uid` and
/// waits for them; logs each replica. Returns the problems found (a
/// replica whose missing transactions the ring does not hold).
fn record_positions(
    log: &mut Log,
    sidecar: &Sidecar,
    uid: &str,
    replicas: &[String],
    end: Instant,
) -> Result<Vec<String>, String> {
    let body = json!({ "recovery_uid": uid, "replicas": replicas }).to_string();
    log.info(format_args!("asking the sidecar to record the positions of {}", replicas.join(", ")));
    let (status, answer) = sidecar
        .request("POST", "/v1/positions", Some(&body), request_timeout(end))
        .map_err(|e| format!("{e:#}"))?;
    if !matches!(status, 200 | 202) {
        return Err(format!("POST /v1/positions: {status}: {}", answer.trim()));
    }
    let started: Value =
        serde_json::from_str(&answer).map_err(|e| format!("POST /v1/positions: {e}: {answer}"))?;
    let url = started["url"].as_str().ok_or_else(|| format!("POST /v1/positions: no url in {answer}"))?;
    if started["state"] == "done" {
        log.info(format_args!("positions for recovery {uid} were recorded earlier: {url}"));
    }
    let snapshot = loop {
        if left(end).is_zero() {
            return Err(format!("the deadline passed while {url} was still being recorded"));
        }
        let (status, answer) =
            sidecar.request("GET", url, None, request_timeout(end)).map_err(|e| format!("{e:#}"))?;
        if status != 200 {
            return Err(format!("GET {url}: {status}: {}", answer.trim()));
        }
        let v: Value = serde_json::from_str(&answer).map_err(|e| format!("GET {url}: {e}"))?;
        if v["state"] == "done" {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100).min(left(end)));
    };
    let mut problems = Vec::new();
    for r in snapshot["replicas"].as_array().into_iter().flatten() {
        let name = text(&r["replica"]);
        if !r["error"].is_null() {
            log.warn(format_args!("replica {name}: not recorded: {}", text(&r["error"])));
            continue;
        }
        let line = format!(
            "replica {name}: replicates from {}, IO {} SQL {}, executed {}, GTIDs {}",
            text(&r["primary"]),
            text(&r["io_running"]),
            text(&r["sql_running"]),
            text(&r["executed"]),
            r["executed_gtids"].as_str().filter(|g| !g.is_empty()).unwrap_or("none"),
        );
        match r["covered"].as_bool() {
            Some(true) => log.info(format_args!("{line}; the ring covers it: {}", text(&r["coverage"]))),
            Some(false) => {
                log.warn(format_args!("{line}"));
                problems.push(format!(
                    "the ring does not hold all that replica {name} lacks: {}",
                    text(&r["coverage"])
                ));
            }
            None => log.warn(format_args!("{line}; coverage unknown: {}", text(&r["coverage"]))),
        }
    }
    log.info(format_args!("positions recorded: {url}"));
    Ok(problems)
}

/// `GET /status`: connected to the primary, with a ring.
fn check_ready(sidecar: &Sidecar, end: Instant) -> Result<String, String> {
    let (status, text) = sidecar.request("GET", "/status", None, left(end)).map_err(|e| format!("{e:#}"))?;
    if status != 200 {
        return Err(format!("GET /status: {status}: {}", text.trim()));
    }
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("GET /status: {e}"))?;
    status_ready(&doc)
}

/// A JSON string without its quotes; anything else as JSON.
fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Whether a `/status` document says the sidecar is ready: it keeps a
/// ring that is not paused and holds transactions. Being disconnected is
/// expected (the primary is dead, as a rule, when this runs); what the
/// sidecar judges of the primary is said.
fn status_ready(doc: &Value) -> Result<String, String> {
    let ring = &doc["ring"];
    if ring.is_null() {
        return Err("it keeps no ring (not started with --ring)".into());
    }
    if !ring["paused"].is_null() {
        return Err(format!("its ring is paused: {}", ring["paused"]));
    }
    let last = &ring["last_durable"];
    if last.is_null() {
        return Err("its ring holds no transaction yet".into());
    }
    let held = match last["gtid"].as_str().filter(|g| !g.is_empty()) {
        Some(gtid) => gtid.to_string(),
        None => format!("{}:{}", text(&last["file"]), text(&last["position"])),
    };
    let source = text(&doc["source"]);
    let link = if doc["connected"] == Value::Bool(true) {
        format!("connected to {source}")
    } else {
        match doc["primary"]["state"].as_str() {
            Some(state) => format!(
                "disconnected from {source}, which it judges {state} ({})",
                doc["primary"]["reason"].as_str().unwrap_or("no reason given")
            ),
            None => format!("disconnected from {source}"),
        }
    };
    Ok(format!("{link}; its ring holds up to {held}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(placeholder("{successorHost}"), Some("{successorHost}"));
        assert_eq!(placeholder("db-{failedPort}x"), Some("{failedPort}"));
        assert_eq!(placeholder("{ {} {a_1}"), Some("{a_1}"));
        assert_eq!(placeholder("db2.example"), None);
        assert_eq!(placeholder("{}"), None);
        assert_eq!(placeholder("{a b}"), None);
        assert_eq!(placeholder("{unclosed"), None);
        assert_eq!(placeholder("{"), None);
    }

    #[test]
    fn the_environment_fills_in_what_the_flags_leave_out() {
        let env = env_of(&[
            ("ORC_FAILURE_TYPE", "DeadMaster"),
            ("ORC_COMMAND", "force-master-failover"),
            ("ORC_SUCCESSOR_HOST", "db2"),
            ("ORC_SUCCESSOR_PORT", "3306"),
            ("ORC_FAILED_HOST", "db1"),
            ("ORC_FAILED_PORT", "3307"),
            ("ORC_FAILURE_CLUSTER_ALIAS", "shop"),
            ("ORC_FAILURE_CLUSTER_DOMAIN", "shop.example"),
            ("ORC_SUCCESSOR_BINLOG_COORDINATES", "mariadb-bin.000003:1234"),
            ("ORC_REPLICA_HOSTS", "db2:3306,db3:3306"),
            ("ORC_RECOVERY_UID", "1700000000:abc"),
        ]);
        let i = resolve(&OrcFlags::default(), &env).unwrap();
        assert_eq!(i.failure_type.as_deref(), Some("DeadMaster"));
        assert_eq!(i.command.as_deref(), Some("force-master-failover"));
        assert_eq!(i.successor, Some(("db2".into(), 3306)));
        assert_eq!(i.failed, Some(("db1".into(), 3307)));
        assert_eq!(i.cluster.as_deref(), Some("shop"));
        assert_eq!(i.cluster_domain.as_deref(), Some("shop.example"));
        assert_eq!(i.successor_binlog_coordinates.as_deref(), Some("mariadb-bin.000003:1234"));
        assert_eq!(i.replica_hosts.as_deref(), Some("db2:3306,db3:3306"));
        assert_eq!(i.recovery_uid.as_deref(), Some("1700000000:abc"));
        assert_eq!(i.successor_addr().as_deref(), Some("db2:3306"));
        assert_eq!(i.skip_reason(), None);
    }

    #[test]
    fn flags_win_over_the_environment_and_new_names_over_legacy_ones() {
        let env = env_of(&[
            ("ORC_FAILURE_TYPE", "DeadMaster"),
            ("ORC_SUCCESSOR_HOST", "env-host"),
            ("ORC_SUCCESSOR_PORT", "1"),
            ("ORC_RECOVERY_UID", "env-uid"),
            ("ORC_FAILURE_CLUSTER_ALIAS", "env-cluster"),
        ]);
        let flags = OrcFlags {
            failure_type: s("DeadCoMaster"),
            dead_status: s("DeadMaster"),
            successor_host: s("flag-host"),
            new_master: s("legacy-host"),
            successor_port: s("3310"),
            recovery_uid: s("flag-uid"),
            ..OrcFlags::default()
        };
        let i = resolve(&flags, &env).unwrap();
        assert_eq!(i.failure_type.as_deref(), Some("DeadCoMaster"));
        assert_eq!(i.successor, Some(("flag-host".into(), 3310)));
        assert_eq!(i.recovery_uid.as_deref(), Some("flag-uid"));
        assert_eq!(i.cluster.as_deref(), Some("env-cluster"));
    }

    #[test]
    fn the_legacy_flags_of_the_go_hook_are_read() {
        let flags = OrcFlags {
            cluster_name: s("shop"),
            dead_status: s("DeadMasterAndSomeReplicas"),
            old_master: s("db1"),
            old_master_port: s("3306"),
            new_master: s("[::1]"),
            new_master_port: s("3307"),
            vip_addr: s("10.0.0.100"),
            interface: s("eth0"),
            ..OrcFlags::default()
        };
        let i = resolve(&flags, &env_of(&[])).unwrap();
        assert_eq!(i.cluster.as_deref(), Some("shop"));
        assert_eq!(i.failure_type.as_deref(), Some("DeadMasterAndSomeReplicas"));
        assert_eq!(i.failed, Some(("db1".into(), 3306)));
        assert_eq!(i.successor_addr().as_deref(), Some("[::1]:3307"));
        assert_eq!(i.vip_addr.as_deref(), Some("10.0.0.100"));
        assert_eq!(i.interface.as_deref(), Some("eth0"));
        assert_eq!(i.skip_reason(), None);
        let v6 = resolve(
            &OrcFlags { new_master: s("::1"), new_master_port: s("1"), ..OrcFlags::default() },
            &env_of(&[]),
        )
        .unwrap();
        assert_eq!(v6.successor_addr().as_deref(), Some("[::1]:1"));
    }

    #[test]
    fn empty_values_count_as_absent() {
        // An orchestrator placeholder with no value becomes "".
        let flags = OrcFlags { successor_host: s(""), successor_port: s("  "), ..OrcFlags::default() };
        let env =
            env_of(&[("ORC_SUCCESSOR_HOST", "db2"), ("ORC_SUCCESSOR_PORT", "3306"), ("ORC_FAILED_HOST", "")]);
        let i = resolve(&flags, &env).unwrap();
        assert_eq!(i.successor, Some(("db2".into(), 3306)));
        assert_eq!(i.failed, None);
    }

    #[test]
    fn unsubstituted_placeholders_are_errors_naming_their_source() {
        type Case = (OrcFlags, Vec<(&'static str, &'static str)>, &'static str);
        let cases: Vec<Case> = vec![
            (
                OrcFlags { successor_host: s("{successorHost}"), ..OrcFlags::default() },
                vec![],
                "--successor-host",
            ),
            (OrcFlags { new_master: s("{successorHost}"), ..OrcFlags::default() }, vec![], "--NewMaster"),
            (OrcFlags { dead_status: s("{failureType}"), ..OrcFlags::default() }, vec![], "--DeadStatus"),
            (OrcFlags { failed_port: s("{failedPort}"), ..OrcFlags::default() }, vec![], "--failed-port"),
            (
                OrcFlags { cluster_name: s("{failureClusterAlias}"), ..OrcFlags::default() },
                vec![],
                "--ClusterName",
            ),
            (OrcFlags::default(), vec![("ORC_SUCCESSOR_HOST", "{successorHost}")], "ORC_SUCCESSOR_HOST"),
            (OrcFlags::default(), vec![("ORC_RECOVERY_UID", "x{recoveryUID}")], "ORC_RECOVERY_UID"),
            // A bad flag is an error even though the environment is fine.
            (
                OrcFlags { successor_host: s("{successorHost}"), ..OrcFlags::default() },
                vec![("ORC_SUCCESSOR_HOST", "db2")],
                "--successor-host",
            ),
        ];
        for (flags, env, name) in cases {
            let e = resolve(&flags, &env_of(&env)).unwrap_err().0;
            assert!(e.starts_with(name) && e.contains("placeholder"), "{name}: {e}");
        }
    }

    #[test]
    fn bad_ports_and_half_endpoints_are_errors() {
        for (flags, what) in [
            (
                OrcFlags { successor_host: s("db2"), successor_port: s("0"), ..OrcFlags::default() },
                "--successor-port",
            ),
            (
                OrcFlags { successor_host: s("db2"), successor_port: s("x"), ..OrcFlags::default() },
                "--successor-port",
            ),
            (
                OrcFlags { old_master: s("db1"), old_master_port: s("70000"), ..OrcFlags::default() },
                "--OldMasterPort",
            ),
            (OrcFlags { successor_host: s("db2"), ..OrcFlags::default() }, "not its port"),
            (OrcFlags { successor_port: s("3306"), ..OrcFlags::default() }, "not its host"),
        ] {
            let e = resolve(&flags, &env_of(&[])).unwrap_err().0;
            assert!(e.contains(what), "{what}: {e}");
        }
    }

    #[test]
    fn only_dead_primary_failovers_are_completed() {
        for t in DEAD_PRIMARY_TYPES {
            let i = Inputs { failure_type: s(t), ..Inputs::default() };
            assert_eq!(i.skip_reason(), None, "{t}");
        }
        for t in ["GracefulMasterTakeover", "DeadIntermediateMaster", "UnreachableMaster", "deadmaster"] {
            let why = Inputs { failure_type: s(t), ..Inputs::default() }.skip_reason().unwrap();
            assert_eq!(why, format!("not a dead-primary failover ({t}): nothing to do"));
        }
        assert!(Inputs::default().skip_reason().unwrap().contains("no failure type"));
        // orchestrator's graceful takeover says DeadMaster, with its command.
        let graceful =
            Inputs { failure_type: s("DeadMaster"), command: s(GRACEFUL_COMMAND), ..Inputs::default() };
        assert!(graceful.skip_reason().unwrap().contains("graceful-master-takeover"));
        let forced = Inputs {
            failure_type: s("DeadMaster"),
            command: s("force-master-failover"),
            ..Inputs::default()
        };
        assert_eq!(forced.skip_reason(), None);
    }

    #[test]
    fn record_names_are_safe_file_names() {
        assert_eq!(done_file_name("1700000000:abc-1.x"), "1700000000_abc-1.x.done");
        assert_eq!(done_file_name("../etc/passwd"), "_.._etc_passwd.done");
        assert_eq!(done_file_name("a/b c"), "a_b_c.done");
    }

    #[test]
    fn readiness_needs_a_ring_that_holds_transactions() {
        let ring = json!({"paused": null, "last_durable": {"gtid": "0-1-9"}});
        let ok = json!({"source": "db1:3306", "connected": true, "ring": ring});
        assert_eq!(status_ready(&ok).unwrap(), "connected to db1:3306; its ring holds up to 0-1-9");
        // A dead primary is why the hook runs: disconnected is fine.
        let dead = json!({"source": "db1:3306", "connected": false, "ring": ring,
                          "primary": {"state": "dead", "reason": "no answer for 10 s"}});
        let why = status_ready(&dead).unwrap();
        assert!(why.contains("judges dead (no answer for 10 s)"), "{why}");
        let by_position = json!({"source": "db1:3306", "connected": false,
                                 "ring": {"paused": null, "last_durable": {"gtid": "", "file": "b.000002", "position": 120}}});
        assert!(status_ready(&by_position).unwrap().ends_with("up to b.000002:120"));
        let e = status_ready(&json!({"connected": true, "ring": {"paused": null, "last_durable": null}}))
            .unwrap_err();
        assert!(e.contains("no transaction"), "{e}");
        let e = status_ready(&json!({"connected": true, "ring": null})).unwrap_err();
        assert!(e.contains("no ring"), "{e}");
        let e = status_ready(&json!({"connected": true, "ring": {"paused": "disk full"}})).unwrap_err();
        assert!(e.contains("paused"), "{e}");
    }

    /// A fake sidecar: answers each request with `answer(method, path,
    /// body)`; returns its URL and the requests it saw.
    fn fake_sidecar(
        answer: impl Fn(&str, &str, &str) -> (u16, String) + Send + 'static,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = conn.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break (String::new(), String::new());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = client::tests_content_length(head).unwrap_or(0);
                        if body.len() >= len {
                            break (head.to_string(), body.to_string());
                        }
                    }
                };
                let mut words = head.split(' ');
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                log.lock().unwrap().push(format!("{method} {path} {body}"));
                let (status, reply) = answer(method, path, &body);
                let raw = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = conn.write_all(raw.as_bytes());
            }
        });
        (url, seen)
    }

    fn options(url: &str, state_dir: &Path, deadline: Duration) -> PostOptions {
        PostOptions {
            sidecar: SidecarOptions { url: url.to_string(), token_file: None, ca_file: None },
            deadline,
            mode: "sql",
            state_dir: state_dir.to_path_buf(),
            log_file: None,
            relaxed_durability: false,
            vip_from: None,
            vip_to: None,
            flags: OrcFlags::default(),
        }
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gapless-hook-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn dead_master(uid: &str) -> impl Fn(&str) -> Option<String> {
        env_of(&[
            ("ORC_FAILURE_TYPE", "DeadMaster"),
            ("ORC_SUCCESSOR_HOST", "db2"),
            ("ORC_SUCCESSOR_PORT", "3306"),
            ("ORC_RECOVERY_UID", uid),
        ])
    }

    #[test]
    fn a_running_replay_onto_the_successor_is_followed_on_409() {
        let polls = std::sync::atomic::AtomicUsize::new(0);
        let (url, seen) = fake_sidecar(move |method, path, _| match (method, path) {
            ("POST", "/v1/replay") => (409, "busy".into()),
            ("GET", "/v1/replay") => (
                200,
                json!([{"id": 3, "target": "db2:3306", "state": "succeeded"},
                       {"id": 7, "target": "db9:3306", "state": "running"},
                       {"id": 8, "target": "db2:3306", "state": "running"}])
                .to_string(),
            ),
            ("GET", "/v1/replay/8") => {
                if polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
                    (200, json!({"id": 8, "state": "running", "applied": 1}).to_string())
                } else {
                    let report = json!({"applied": [{"gtid": "0-1-5"}, {"gtid": "0-1-6"}], "target_executed": "0-1-4"});
                    (200, json!({"id": 8, "state": "succeeded", "applied": 2, "report": report}).to_string())
                }
            }
            _ => (404, "no".into()),
        });
        let dir = scratch("follow");
        let code = post_master_failover(&options(&url, &dir, Duration::from_secs(20)), &dead_master("u-409"));
        assert_eq!(code, EXIT_OK, "{:?}", seen.lock().unwrap());
        let record: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("u-409.done")).unwrap()).unwrap();
        assert_eq!(record["replay"], 8);
        assert_eq!(record["summary"]["last_gtid"], "0-1-6");
        let seen = seen.lock().unwrap();
        // No positions recorded (404): the sidecar decides from the GTIDs.
        assert_eq!(seen[0], "GET /v1/positions/u-409 ", "{seen:?}");
        assert!(seen[1].starts_with("POST /v1/replay {"), "{seen:?}");
        let body: Value = serde_json::from_str(seen[1].splitn(3, ' ').nth(2).unwrap()).unwrap();
        assert_eq!(body["target"], "db2:3306");
        assert_eq!(body["mode"], "sql");
        assert!(body.get("after").is_none() && body.get("after_gtid").is_none(), "{body}");
        assert!(body["deadline"].as_f64().unwrap() > 10.0, "{body}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The body of the first `POST /v1/replay` a post hook sent, when the
    /// pre hook recorded `successor` for recovery `uid`.
    fn replay_body_after_recording(uid: &'static str, successor: Value) -> Value {
        let (url, seen) = fake_sidecar(move |method, path, _| match (method, path) {
            ("GET", p) if p == format!("/v1/positions/{uid}") => (
                200,
                json!({"recovery_uid": uid, "state": "done", "taken": "2026-11-26T00:00:00Z",
                       "replicas": [{"replica": "db9:3306", "executed": "bin.000001:4", "executed_gtids": ""},
                                    successor]})
                .to_string(),
            ),
            ("POST", "/v1/replay") => (202, json!({"id": 1, "url": "/v1/replay/1"}).to_string()),
            ("GET", "/v1/replay/1") => {
                (200, json!({"id": 1, "state": "succeeded", "applied": 0}).to_string())
            }
            _ => (404, "no".into()),
        });
        let dir = scratch(uid);
        let code = post_master_failover(&options(&url, &dir, Duration::from_secs(20)), &dead_master(uid));
        assert_eq!(code, EXIT_OK, "{:?}", seen.lock().unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        let seen = seen.lock().unwrap();
        let post = seen.iter().find(|s| s.starts_with("POST /v1/replay {")).expect("a replay");
        serde_json::from_str(post.splitn(3, ' ').nth(2).unwrap()).unwrap()
    }

    #[test]
    fn recorded_coordinates_start_the_replay_when_the_successor_has_no_gtids() {
        let body = replay_body_after_recording(
            "u-pos",
            json!({"replica": "DB2:3306", "executed": "bin.000007:1234", "executed_gtids": ""}),
        );
        assert_eq!(body["after"], "bin.000007:1234", "{body}");
        // With GTIDs, the target's own GTIDs decide (they are current).
        let body = replay_body_after_recording(
            "u-gtid",
            json!({"replica": "db2:3306", "executed": "bin.000007:1234", "executed_gtids": "0-1-5"}),
        );
        assert!(body.get("after").is_none(), "{body}");
    }

    #[test]
    fn a_failed_replay_a_refusal_and_the_deadline_exit_1_without_a_record() {
        let (url, _) = fake_sidecar(|method, path, _| match (method, path) {
            ("POST", "/v1/replay") => (202, json!({"id": 1, "url": "/v1/replay/1"}).to_string()),
            ("GET", "/v1/replay/1") => {
                (200, json!({"id": 1, "state": "failed", "applied": 3, "error": "duplicate key"}).to_string())
            }
            _ => (404, "no".into()),
        });
        let dir = scratch("failed");
        assert_eq!(
            post_master_failover(&options(&url, &dir, Duration::from_secs(20)), &dead_master("u-f")),
            EXIT_FAILED
        );
        assert!(!dir.join("u-f.done").exists());

        let (url, _) = fake_sidecar(|_, _, _| (401, "no token".into()));
        assert_eq!(
            post_master_failover(&options(&url, &dir, Duration::from_secs(20)), &dead_master("u-r")),
            EXIT_FAILED
        );

        let (url, _) = fake_sidecar(|method, _, _| match method {
            "POST" => (202, json!({"id": 2, "url": "/v1/replay/2"}).to_string()),
            _ => (200, json!({"id": 2, "state": "running", "applied": 0}).to_string()),
        });
        let started = Instant::now();
        let code =
            post_master_failover(&options(&url, &dir, Duration::from_millis(700)), &dead_master("u-d"));
        assert_eq!(code, EXIT_FAILED);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!dir.join("u-d.done").exists());

        // Nobody listening (a port held without listening, so that no
        // other test takes it): retried until the deadline, then 1.
        let held = tokio::net::TcpSocket::new_v4().unwrap();
        held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = held.local_addr().unwrap().port();
        let code = post_master_failover(
            &options(&format!("http://127.0.0.1:{port}"), &dir, Duration::from_millis(700)),
            &dead_master("u-n"),
        );
        assert_eq!(code, EXIT_FAILED);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn input_errors_exit_2_before_any_request() {
        let (url, seen) = fake_sidecar(|_, _, _| (500, "should not be asked".into()));
        let dir = scratch("input");
        let opts = options(&url, &dir, Duration::from_secs(5));
        let no_uid = env_of(&[
            ("ORC_FAILURE_TYPE", "DeadMaster"),
            ("ORC_SUCCESSOR_HOST", "db2"),
            ("ORC_SUCCESSOR_PORT", "1"),
        ]);
        assert_eq!(post_master_failover(&opts, &no_uid), EXIT_INPUT);
        let no_successor = env_of(&[("ORC_FAILURE_TYPE", "DeadMaster"), ("ORC_RECOVERY_UID", "u")]);
        assert_eq!(post_master_failover(&opts, &no_successor), EXIT_INPUT);
        let placeholder = env_of(&[("ORC_FAILURE_TYPE", "{failureType}"), ("ORC_RECOVERY_UID", "u")]);
        assert_eq!(post_master_failover(&opts, &placeholder), EXIT_INPUT);
        let bad_url = PostOptions {
            sidecar: SidecarOptions { url: "127.0.0.1:1".into(), token_file: None, ca_file: None },
            ..opts.clone()
        };
        assert_eq!(post_master_failover(&bad_url, &dead_master("u")), EXIT_INPUT);
        // Not a dead primary: 0, nothing asked.
        let graceful = env_of(&[
            ("ORC_FAILURE_TYPE", "DeadMaster"),
            ("ORC_COMMAND", "graceful-master-takeover"),
            ("ORC_RECOVERY_UID", "u"),
        ]);
        assert_eq!(post_master_failover(&opts, &graceful), EXIT_OK);
        assert!(seen.lock().unwrap().is_empty());
        assert!(!dir.exists());
    }

    /// The API's own HTTPS server (the test PKI of fixtures/lib/tls.sh,
    /// a token), serving a sample status with a ring (`with_ring`).
    fn https_sidecar(dir: &Path, with_ring: bool) -> (u16, PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::Arc;

        use crate::api::status::tests::{sample_ring, sample_stream};
        use crate::api::{Security, Sources};
        use crate::ring::Published;

        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let pki = root.join("target").join("tls-test-pki");
        let status = std::process::Command::new("bash")
            .arg(root.join("fixtures/lib/tls.sh"))
            .arg("tls_make_pki")
            .arg(&pki)
            .status()
            .expect("bash fixtures/lib/tls.sh");
        assert!(status.success());
        std::fs::create_dir_all(dir).unwrap();
        let token_file = dir.join("token");
        std::fs::write(&token_file, "hook-unit-token-0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let security = Security::load(
            Some(&token_file),
            Some(&pki.join("server-cert.pem")),
            Some(&pki.join("server-key.pem")),
        )
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = crate::api::bind("127.0.0.1:0", &security).await.unwrap();
                tx.send(listener.local_addr().unwrap().port()).unwrap();
                let sources = Sources {
                    stream: Arc::new(Published::new(sample_stream())),
                    ring: with_ring.then(|| Arc::new(Published::new(sample_ring()))),
                    replay: None,
                    positions: None,
                    primary: None,
                };
                let (_stop, stop_rx) = tokio::sync::watch::channel(false);
                let _ = crate::api::serve(listener, sources, security, stop_rx).await;
            });
        });
        (rx.recv().unwrap(), token_file, pki.join("ca.pem"))
    }

    fn pre(url: String, token: Option<PathBuf>, ca: Option<PathBuf>, veto: bool) -> i32 {
        let opts = PreOptions {
            sidecar: SidecarOptions { url, token_file: token, ca_file: ca },
            deadline: Duration::from_secs(10),
            veto,
            log_file: None,
            flags: OrcFlags::default(),
        };
        pre_failover(&opts, &env_of(&[("ORC_RECOVERY_UID", "u-pre"), ("ORC_FAILURE_TYPE", "DeadMaster")]))
    }

    #[test]
    fn the_pre_hook_checks_the_sidecar_over_https_with_the_token() {
        let dir = scratch("https");
        let (port, token, ca) = https_sidecar(&dir, true);
        for host in ["127.0.0.1", "localhost"] {
            let url = format!("https://{host}:{port}");
            assert_eq!(pre(url, Some(token.clone()), Some(ca.clone()), true), EXIT_OK, "{host}");
        }
        let url = format!("https://127.0.0.1:{port}");
        // Without the token: 401, not ready.
        assert_eq!(pre(url.clone(), None, Some(ca.clone()), true), EXIT_FAILED);
        assert_eq!(pre(url.clone(), None, Some(ca.clone()), false), EXIT_OK);
        // Plain HTTP on the HTTPS port: not ready either.
        assert_eq!(pre(format!("http://127.0.0.1:{port}"), Some(token.clone()), None, true), EXIT_FAILED);
        // A CA that did not sign the server's certificate.
        let other = ca.with_file_name("other-ca.pem");
        if other.exists() {
            assert_eq!(pre(url, Some(token.clone()), Some(other), true), EXIT_FAILED);
        }
        // No ring: not ready.
        let (port, token, ca) = https_sidecar(&dir.join("noring"), false);
        assert_eq!(pre(format!("https://127.0.0.1:{port}"), Some(token), Some(ca), true), EXIT_FAILED);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_pre_hook_records_positions_and_vetoes_only_an_uncovered_replica() {
        let run = |covered: bool, veto: bool| {
            let (url, seen) = fake_sidecar(move |method, path, _| match (method, path) {
                ("GET", "/status") => (
                    200,
                    json!({"connected": true, "source": "db1:3306",
                           "ring": {"paused": null, "last_durable": {"gtid": "0-1-9"}}})
                    .to_string(),
                ),
                ("POST", "/v1/positions") => {
                    (202, json!({"url": "/v1/positions/u-pos", "state": "running"}).to_string())
                }
                ("GET", "/v1/positions/u-pos") => (
                    200,
                    json!({"state": "done", "replicas": [
                        {"replica": "db2:3306", "executed": "bin.000001:4", "executed_gtids": "0-1-3",
                         "covered": covered, "coverage": "why"},
                        {"replica": "db3:3306", "error": "connection refused", "covered": null}]})
                    .to_string(),
                ),
                _ => (404, "no".into()),
            });
            let opts = PreOptions {
                sidecar: SidecarOptions { url, token_file: None, ca_file: None },
                deadline: Duration::from_secs(10),
                veto,
                log_file: None,
                flags: OrcFlags::default(),
            };
            let env = env_of(&[("ORC_RECOVERY_UID", "u-pos"), ("ORC_REPLICA_HOSTS", "db2:3306, db3:3306")]);
            let code = pre_failover(&opts, &env);
            let seen = seen.lock().unwrap().clone();
            (code, seen)
        };
        let (code, seen) = run(true, true);
        // An unreachable replica is only a warning (some replicas may be dead too).
        assert_eq!(code, EXIT_OK, "{seen:?}");
        let post = seen.iter().find(|s| s.starts_with("POST /v1/positions ")).expect("asked to record");
        let body: Value = serde_json::from_str(post.splitn(3, ' ').nth(2).unwrap()).unwrap();
        assert_eq!(body, json!({"recovery_uid": "u-pos", "replicas": ["db2:3306", "db3:3306"]}));
        assert_eq!(run(false, true).0, EXIT_FAILED);
        assert_eq!(run(false, false).0, EXIT_OK);
    }

    #[test]
    fn replica_lists() {
        let inputs = |list: &str| Inputs { replica_hosts: Some(list.into()), ..Default::default() };
        assert_eq!(
            inputs("db2:3306,db3:3307, db2:3306,,db4,[::1]:3310").replicas().unwrap(),
            vec!["db2:3306", "db3:3307", "db4:3306", "[::1]:3310"]
        );
        for bad in ["db2:x", "db2:0", ":3306"] {
            assert!(inputs(bad).replicas().is_err(), "{bad}");
        }
        assert!(Inputs::default().replicas().unwrap().is_empty());
    }
}
