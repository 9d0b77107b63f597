//! Moving a virtual IP (VIP) between hosts without ever making two owners
//! (docs/vip.md).
//!
//! A VIP is one IPv4 address, added as `ADDR/32` to an interface of the
//! host that should receive its traffic. A move:
//!
//! 1. removes it from the old host when one is named (an unreachable old
//!    host is expected in a failover: noted, not fatal);
//! 2. asks the segment, from the new host, whether anything still answers
//!    for the address (ARP duplicate address detection); if something
//!    does, the move stops, unless forced: two hosts answering ARP for one
//!    address split the clients between them;
//! 3. adds it on the new host and sends gratuitous ARP, so neighbours
//!    (clients, the router) replace the old owner's MAC at once instead of
//!    when their cache expires;
//! 4. checks that the new host holds it.
//!
//! Commands run here, over ssh, or in a network namespace
//! ([`Executor`]), each with a timeout. Every step becomes a line of the
//! [`Report`], for the hook's log.

mod executor;
#[cfg(test)]
mod tests;

pub use self::executor::{Executor, SSH_CONNECT_TIMEOUT_SECS};

use std::fmt::{self, Display};
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use thiserror::Error;

/// The longest any one command may run (less when the move's deadline is
/// nearer). Long enough for ssh's connect timeout plus arping's waits.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The default deadline of a whole move.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Gratuitous ARP packets sent after adding, one a second: one lost
/// packet must not leave a neighbour with the old MAC.
pub const GARP_COUNT: u32 = 3;

/// Duplicate address probes, one a second, and how long arping waits for
/// a reply in all.
const DAD_PROBES: u32 = 2;
const DAD_WAIT_SECS: u32 = 3;

/// Why a VIP operation failed. Each names the host spec and, for
/// commands, the command and what it wrote to stderr.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VipError {
    /// The VIP given is not a usable IPv4 address.
    #[error("{input:?} is not a VIP: {reason}")]
    BadAddress {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// A host spec could not be parsed.
    #[error(
        "{input:?} is not a host spec: {reason} (expected local, netns:NAME, ssh:[USER@]HOST, \
         ssh+sudo:[USER@]HOST or a bare [USER@]HOST, meaning ssh)"
    )]
    BadHost {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// An interface name that Linux would not accept (or that needs quoting).
    #[error("{input:?} is not an interface name: {reason}")]
    BadDevice {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// The old and the new host are the same.
    #[error("--from and --to are both {host}: a VIP can't move to where it is")]
    SameHost {
        /// The host spec.
        host: String,
    },
    /// A command could not be started (the program is missing, say).
    #[error("on {host}: `{command}` could not be started: {error}")]
    Spawn {
        /// The host spec.
        host: String,
        /// The command.
        command: String,
        /// The error from the system (in the message, so not a `source`).
        error: std::io::Error,
    },
    /// A command ran past its timeout and was killed.
    #[error(
        "on {host}: `{command}` was still running after {:.1} s and was killed{}",
        timeout.as_secs_f64(),
        if stderr.is_empty() { String::new() } else { format!(" (stderr: {stderr})") }
    )]
    Timeout {
        /// The host spec.
        host: String,
        /// The command.
        command: String,
        /// The timeout it had.
        timeout: Duration,
        /// What it wrote to stderr before it was killed.
        stderr: String,
    },
    /// A command exited with a failure.
    #[error("on {host}: `{command}` failed ({status}): {stderr}")]
    Failed {
        /// The host spec.
        host: String,
        /// The command.
        command: String,
        /// Its exit status, in words.
        status: String,
        /// What it wrote to stderr (stdout when stderr was empty).
        stderr: String,
    },
    /// The move's deadline passed before a step could start.
    #[error("on {host}: no time left for {what} (the deadline passed)")]
    Deadline {
        /// The host spec.
        host: String,
        /// The step that did not run.
        what: String,
    },
    /// The address is on the interface, but not as a /32: it is not a VIP
    /// gapless added, and may be the host's own address.
    #[error(
        "on {host}: {vip} is on {dev} as {vip}/{prefix}, not as a /32 VIP: gapless leaves it alone \
         (remove it by hand if it really is the VIP)"
    )]
    NotOurs {
        /// The address.
        vip: Ipv4Addr,
        /// The interface.
        dev: String,
        /// The host spec.
        host: String,
        /// The prefix length it has there.
        prefix: u8,
    },
    /// Something on the segment still answers for the address.
    #[error(
        "{vip} still answers on the segment of {dev} (seen from {host}: ARP reply from {macs}): another \
         host holds it, and adding it to {host} would make two owners; remove it there (or name that \
         host with --from), or use --force"
    )]
    StillAnswers {
        /// The address.
        vip: Ipv4Addr,
        /// The interface the probe went out of.
        dev: String,
        /// The host spec of the host that probed.
        host: String,
        /// The MAC address(es) that replied.
        macs: String,
    },
    /// Whether the address still answers could not be checked.
    #[error(
        "could not check from {host} whether {vip} still answers on {dev}: {cause}; not adding it \
         without that check (--force skips it)"
    )]
    Unchecked {
        /// The address.
        vip: Ipv4Addr,
        /// The interface.
        dev: String,
        /// The host spec.
        host: String,
        /// Why the check failed (in the message, so not a `source`).
        cause: Box<VipError>,
    },
    /// After adding, the host does not show the address.
    #[error("on {host}: {vip} was added to {dev} but `ip addr` does not show it there")]
    NotHeld {
        /// The address.
        vip: Ipv4Addr,
        /// The interface.
        dev: String,
        /// The host spec.
        host: String,
    },
    /// After removing, the host still shows the address.
    #[error("on {host}: {vip}/32 was removed from {dev} but `ip addr` still shows it there")]
    StillHeld {
        /// The address.
        vip: Ipv4Addr,
        /// The interface.
        dev: String,
        /// The host spec.
        host: String,
    },
}

/// A VIP from the command line: `ADDR` or `ADDR/32`, IPv4, and an address
/// a host can own (not 0.0.0.0, loopback, multicast or broadcast).
pub fn parse_vip(input: &str) -> Result<Ipv4Addr, VipError> {
    let bad = |reason: &str| VipError::BadAddress { input: input.to_string(), reason: reason.to_string() };
    let text = input.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    if let Some(prefix) = prefix {
        if prefix != "32" {
            return Err(bad(
                "a VIP is one address: give ADDR or ADDR/32 (gapless always adds it as /32, so the \
                 host's routes don't change; the interface's own address carries the subnet)",
            ));
        }
    }
    let vip = match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4,
        Ok(IpAddr::V6(_)) => {
            return Err(bad("IPv6 VIPs are not supported (gratuitous ARP and ARP probes are IPv4 only)"))
        }
        Err(_) => return Err(bad("expected an IPv4 address such as 10.0.0.100 or 10.0.0.100/32")),
    };
    if vip.is_unspecified() || vip.is_loopback() || vip.is_multicast() || vip.is_broadcast() {
        return Err(bad("0.0.0.0, loopback, multicast and broadcast addresses can't be a VIP"));
    }
    Ok(vip)
}

/// A network interface name, as Linux accepts it (1 to 15 bytes) and
/// limited to characters that need no quoting: `eth0`, `bond0.100`,
/// `enp3s0f1`, `br-lan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device(String);

impl Device {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Device {
    type Err = VipError;

    fn from_str(input: &str) -> Result<Self, VipError> {
        let bad = |reason: &str| VipError::BadDevice { input: input.to_string(), reason: reason.to_string() };
        let name = input.trim();
        if name.is_empty() {
            return Err(bad("empty"));
        }
        if name.len() > 15 {
            return Err(bad("longer than 15 bytes (Linux's limit)"));
        }
        if name == "." || name == ".." || name.starts_with('-') {
            return Err(bad("not an interface name"));
        }
        if name.contains(':') {
            return Err(bad("an address label (eth0:1) is not an interface: give the interface (eth0)"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
            return Err(bad("may hold only letters, digits, '_', '-' and '.'"));
        }
        Ok(Device(name.to_string()))
    }
}

/// What an idempotent change found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The change was made.
    Made,
    /// Things already were that way (the VIP already there, or already gone).
    AlreadySo,
}

/// The longest deadline taken: a day (an `Instant` far in the future
/// would overflow).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// `timeout` after `start`, at most [`MAX_TIMEOUT`].
fn deadline(start: Instant, timeout: Duration) -> Instant {
    start + timeout.min(MAX_TIMEOUT)
}

/// How long the next command may run: [`COMMAND_TIMEOUT`], or less when
/// `until` is nearer; an error when it has passed.
fn budget(until: Instant, on: &Executor, what: &str) -> Result<Duration, VipError> {
    let left = until.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(VipError::Deadline { host: on.to_string(), what: what.to_string() });
    }
    Ok(left.min(COMMAND_TIMEOUT))
}

/// The IPv4 addresses on `dev` (`ip -o -4 addr show dev DEV`), with their
/// prefix lengths. A missing interface is an error.
pub fn addresses(dev: &Device, on: &Executor, until: Instant) -> Result<Vec<(Ipv4Addr, u8)>, VipError> {
    let argv = ["ip", "-o", "-4", "addr", "show", "dev", dev.as_str()];
    let out = on.run_ok(&argv, budget(until, on, "listing the addresses")?)?;
    Ok(parse_addresses(&out.stdout))
}

/// The `inet ADDR/PREFIX` pairs of `ip -o addr` output; lines without one
/// (inet6, or a format this does not know) are skipped.
pub(crate) fn parse_addresses(text: &str) -> Vec<(Ipv4Addr, u8)> {
    let mut found = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.by_ref().any(|w| w == "inet") {
            let Some((addr, prefix)) = words.next().and_then(|w| w.split_once('/')) else { continue };
            if let (Ok(addr), Ok(prefix)) = (addr.parse::<Ipv4Addr>(), prefix.parse::<u8>()) {
                if prefix <= 32 {
                    found.push((addr, prefix));
                }
            }
        }
    }
    found
}

/// Whether `on` has `vip` on `dev` (with any prefix).
pub fn holds(vip: Ipv4Addr, dev: &Device, on: &Executor, until: Instant) -> Result<bool, VipError> {
    Ok(addresses(dev, on, until)?.iter().any(|(a, _)| *a == vip))
}

/// `ip addr add VIP/32 dev DEV`; already there is success.
pub fn assign(vip: Ipv4Addr, dev: &Device, on: &Executor, until: Instant) -> Result<Change, VipError> {
    if addresses(dev, on, until)?.contains(&(vip, 32)) {
        return Ok(Change::AlreadySo);
    }
    let cidr = format!("{vip}/32");
    let argv = ["ip", "addr", "add", cidr.as_str(), "dev", dev.as_str()];
    let out = on.run(&argv, budget(until, on, "adding the address")?)?;
    if out.status.success() {
        return Ok(Change::Made);
    }
    // Added by someone else in the meantime: what we wanted. Checked by
    // looking, not by reading ip's message (it differs between versions).
    if addresses(dev, on, until)?.contains(&(vip, 32)) {
        return Ok(Change::AlreadySo);
    }
    Err(on.failed(&argv, &out))
}

/// Gratuitous ARP for `vip` out of `dev` (`arping -U -c 3 -I DEV VIP`,
/// iputils): every neighbour that has the address cached replaces the MAC
/// with `on`'s. `on` must hold the address (arping sends from it).
pub fn announce(vip: Ipv4Addr, dev: &Device, on: &Executor, until: Instant) -> Result<(), VipError> {
    let count = GARP_COUNT.to_string();
    let vip_text = vip.to_string();
    let argv = ["arping", "-U", "-c", count.as_str(), "-I", dev.as_str(), vip_text.as_str()];
    on.run_ok(&argv, budget(until, on, "sending gratuitous ARP")?)?;
    Ok(())
}

/// [`assign`], then [`announce`]: the VIP is on `on` and its neighbours
/// know it.
pub fn add(vip: Ipv4Addr, dev: &Device, on: &Executor, until: Instant) -> Result<Change, VipError> {
    let change = assign(vip, dev, on, until)?;
    announce(vip, dev, on, until)?;
    Ok(change)
}

/// `ip addr del VIP/32 dev DEV`; absent is success. The address with
/// another prefix is refused ([`VipError::NotOurs`]): it is not a VIP and
/// may be the host's own.
pub fn del(vip: Ipv4Addr, dev: &Device, on: &Executor, until: Instant) -> Result<Change, VipError> {
    let present = addresses(dev, on, until)?;
    if !present.contains(&(vip, 32)) {
        return match present.iter().find(|(a, _)| *a == vip) {
            Some((_, prefix)) => {
                Err(VipError::NotOurs { vip, dev: dev.to_string(), host: on.to_string(), prefix: *prefix })
            }
            None => Ok(Change::AlreadySo),
        };
    }
    let cidr = format!("{vip}/32");
    let argv = ["ip", "addr", "del", cidr.as_str(), "dev", dev.as_str()];
    let out = on.run(&argv, budget(until, on, "removing the address")?)?;
    if out.status.success() {
        return Ok(Change::Made);
    }
    if !addresses(dev, on, until)?.contains(&(vip, 32)) {
        return Ok(Change::AlreadySo);
    }
    Err(on.failed(&argv, &out))
}

/// Who else on `dev`'s segment answers ARP for `vip`, asked from `from`
/// (duplicate address detection: `arping -D -c 2 -w 3 -I DEV VIP`, which
/// probes from 0.0.0.0 and exits 0 when nobody replied, 1 when someone
/// did). The MAC addresses that replied; empty when none did. `from`
/// itself never answers its own probe, so run it on the host about to
/// take the address, before adding it.
pub fn answers(
    vip: Ipv4Addr,
    dev: &Device,
    from: &Executor,
    until: Instant,
) -> Result<Vec<String>, VipError> {
    let probes = DAD_PROBES.to_string();
    let wait = DAD_WAIT_SECS.to_string();
    let vip_text = vip.to_string();
    let argv =
        ["arping", "-D", "-c", probes.as_str(), "-w", wait.as_str(), "-I", dev.as_str(), vip_text.as_str()];
    let out = from.run(&argv, budget(until, from, "the duplicate address probe")?)?;
    match out.status.code() {
        Some(0) => Ok(Vec::new()),
        // Exit 1 means a reply only when arping printed one: another arping
        // (not iputils) exits 1 on a usage error, which must not pass for
        // an answer, nor for silence.
        Some(1) => {
            let macs = parse_replies(&out.stdout);
            if macs.is_empty() {
                Err(from.failed(&argv, &out))
            } else {
                Ok(macs)
            }
        }
        _ => Err(from.failed(&argv, &out)),
    }
}

/// The distinct MAC addresses of iputils arping's reply lines
/// (`Unicast reply from 10.0.0.100 [52:54:00:12:34:56]  0.6ms`), lowercase.
pub(crate) fn parse_replies(stdout: &str) -> Vec<String> {
    let mut macs: Vec<String> = Vec::new();
    for line in stdout.lines().filter(|l| l.contains("reply from")) {
        let Some((_, rest)) = line.split_once('[') else { continue };
        let Some((mac, _)) = rest.split_once(']') else { continue };
        let mac = mac.trim().to_ascii_lowercase();
        let well_formed = mac.split(':').count() == 6
            && mac.split(':').all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        if well_formed && !macs.contains(&mac) {
            macs.push(mac);
        }
    }
    macs
}

/// A checked move: what `gapless vip move` (and `add`, with no `from`)
/// does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovePlan {
    /// The address.
    pub vip: Ipv4Addr,
    /// Its interface (the same name on both hosts).
    pub dev: Device,
    /// The host to take it from, when known; `None` adds without removing.
    pub from: Option<Executor>,
    /// The host to give it to.
    pub to: Executor,
    /// Add it even when something still answers for it.
    pub force: bool,
    /// The whole move must be done within this.
    pub timeout: Duration,
}

impl MovePlan {
    /// A plan from text, as the command line or orchestrator gives it:
    /// `vip` as `ADDR` or `ADDR/32`, hosts as host specs
    /// ([`Executor::from_str`]).
    pub fn parse(
        vip: &str,
        dev: &str,
        from: Option<&str>,
        to: &str,
        force: bool,
        timeout: Duration,
    ) -> Result<MovePlan, VipError> {
        Ok(MovePlan {
            vip: parse_vip(vip)?,
            dev: dev.parse()?,
            from: from.map(str::parse).transpose()?,
            to: to.parse()?,
            force,
            timeout,
        })
    }
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done as intended.
    Ok,
    /// Not done, or done against a safety check (`--force`), and the move
    /// went on.
    Warning,
    /// Not done, and the move stopped here.
    Failed,
}

impl Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Ok => "ok",
            Outcome::Warning => "WARN",
            Outcome::Failed => "FAIL",
        })
    }
}

/// One step of a VIP operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// How it went.
    pub outcome: Outcome,
    /// What happened, in words, naming the host.
    pub text: String,
    /// How long it took.
    pub elapsed: Duration,
}

impl Display for Step {
    /// `ok   ssh:db2: added 10.0.0.100/32 to eth0 (0.21 s)`: one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {} ({:.2} s)", self.outcome.to_string(), self.text, self.elapsed.as_secs_f64())
    }
}

/// Every step of a VIP operation, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The steps.
    pub steps: Vec<Step>,
}

impl Report {
    /// How many steps went on despite a problem.
    pub fn warnings(&self) -> usize {
        self.steps.iter().filter(|s| s.outcome == Outcome::Warning).count()
    }

    /// One line per step.
    pub fn lines(&self) -> Vec<String> {
        self.steps.iter().map(Step::to_string).collect()
    }
}

impl Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}

/// Keeps the steps and hands each to the caller's log as it happens.
struct Recorder<'a> {
    report: Report,
    log: &'a mut dyn FnMut(&Step),
    started: Instant,
    step_started: Instant,
}

impl Recorder<'_> {
    fn push(&mut self, outcome: Outcome, text: String) {
        let now = Instant::now();
        let step = Step { outcome, text, elapsed: now.duration_since(self.step_started) };
        self.step_started = now;
        (self.log)(&step);
        self.report.steps.push(step);
    }

    /// The closing line; its time is the whole operation's.
    fn finish(&mut self, text: String) {
        let step = Step { outcome: Outcome::Ok, text, elapsed: self.started.elapsed() };
        (self.log)(&step);
        self.report.steps.push(step);
    }

    /// Records `error` as the failed step and returns it.
    fn fail<T>(&mut self, error: VipError) -> Result<T, VipError> {
        self.push(Outcome::Failed, error.to_string());
        Err(error)
    }
}

/// Moves the VIP as `plan` says (see the module docs for the steps).
pub fn move_vip(plan: &MovePlan) -> Result<Report, VipError> {
    move_vip_with(plan, &mut |_| {})
}

/// [`move_vip`], handing each step to `log` as soon as it is done, so a
/// caller's log shows the steps before a failure (and progress while a
/// slow host is waited for). The failure is the last step logged.
pub fn move_vip_with(plan: &MovePlan, log: &mut dyn FnMut(&Step)) -> Result<Report, VipError> {
    let started = Instant::now();
    let until = deadline(started, plan.timeout);
    let mut rec = Recorder { report: Report::default(), log, started, step_started: started };
    let (vip, dev, to) = (plan.vip, &plan.dev, &plan.to);

    if let Some(old) = &plan.from {
        if old == to {
            return rec.fail(VipError::SameHost { host: to.to_string() });
        }
        // An old host that hangs gets at most half the time left.
        let old_until = deadline(started, plan.timeout / 2);
        match del(vip, dev, old, old_until) {
            Ok(Change::Made) => rec.push(Outcome::Ok, format!("{old}: removed {vip}/32 from {dev}")),
            Ok(Change::AlreadySo) => {
                rec.push(Outcome::Ok, format!("{old}: did not hold {vip}/32 on {dev}: nothing to remove"))
            }
            Err(e) => rec.push(
                Outcome::Warning,
                format!(
                    "{old}: could not remove {vip} from {dev}: {e}; going on (a dead old host is \
                     expected in a failover): the next step makes sure nothing answers for {vip} any more"
                ),
            ),
        }
    }

    match answers(vip, dev, to, until) {
        Ok(macs) if macs.is_empty() => rec.push(
            Outcome::Ok,
            format!("{to}: nothing answers for {vip} on {dev}'s segment (ARP duplicate address probe)"),
        ),
        Ok(macs) if plan.force => rec.push(
            Outcome::Warning,
            format!(
                "{to}: {vip} still answers on {dev}'s segment (ARP reply from {}); going on because of \
                 --force: if that host keeps it, two hosts own {vip} and clients reach either",
                macs.join(", ")
            ),
        ),
        Ok(macs) => {
            return rec.fail(VipError::StillAnswers {
                vip,
                dev: dev.to_string(),
                host: to.to_string(),
                macs: macs.join(", "),
            })
        }
        Err(e) if plan.force => rec.push(
            Outcome::Warning,
            format!("{to}: could not check whether {vip} still answers: {e}; going on because of --force"),
        ),
        Err(e) => {
            return rec.fail(VipError::Unchecked {
                vip,
                dev: dev.to_string(),
                host: to.to_string(),
                cause: Box::new(e),
            })
        }
    }

    match assign(vip, dev, to, until) {
        Ok(Change::Made) => rec.push(Outcome::Ok, format!("{to}: added {vip}/32 to {dev}")),
        Ok(Change::AlreadySo) => rec.push(Outcome::Ok, format!("{to}: already held {vip}/32 on {dev}")),
        Err(e) => return rec.fail(e),
    }

    match announce(vip, dev, to, until) {
        Ok(()) => rec.push(
            Outcome::Ok,
            format!(
                "{to}: sent {GARP_COUNT} gratuitous ARP packets for {vip} on {dev}: neighbours now send \
                 its traffic to {to}"
            ),
        ),
        Err(e) => rec.push(
            Outcome::Warning,
            format!(
                "{to}: gratuitous ARP for {vip} failed: {e}; {vip} is on {to}, but clients and routers \
                 that cached the old owner's MAC reach it only when that entry expires"
            ),
        ),
    }

    match holds(vip, dev, to, until) {
        Ok(true) => rec.push(Outcome::Ok, format!("{to}: holds {vip} on {dev}")),
        Ok(false) => return rec.fail(VipError::NotHeld { vip, dev: dev.to_string(), host: to.to_string() }),
        Err(e) => return rec.fail(e),
    }

    let warnings = match rec.report.warnings() {
        0 => String::new(),
        1 => ", with 1 warning above".to_string(),
        n => format!(", with {n} warnings above"),
    };
    let summary = match &plan.from {
        Some(old) => format!("done: {vip} moved from {old} to {to} on {dev}{warnings}"),
        None => format!("done: {vip} is on {dev} of {to}{warnings}"),
    };
    rec.finish(summary);
    Ok(rec.report)
}

/// Removes the VIP from `on` (`gapless vip del`) and checks it is gone.
pub fn remove_vip(
    vip: Ipv4Addr,
    dev: &Device,
    on: &Executor,
    timeout: Duration,
    log: &mut dyn FnMut(&Step),
) -> Result<Report, VipError> {
    let started = Instant::now();
    let until = deadline(started, timeout);
    let mut rec = Recorder { report: Report::default(), log, started, step_started: started };
    match del(vip, dev, on, until) {
        Ok(Change::Made) => rec.push(Outcome::Ok, format!("{on}: removed {vip}/32 from {dev}")),
        Ok(Change::AlreadySo) => {
            rec.push(Outcome::Ok, format!("{on}: did not hold {vip}/32 on {dev}: nothing to remove"))
        }
        Err(e) => return rec.fail(e),
    }
    match addresses(dev, on, until) {
        Ok(present) if !present.contains(&(vip, 32)) => {
            rec.push(Outcome::Ok, format!("{on}: no longer holds {vip}/32 on {dev}"))
        }
        Ok(_) => return rec.fail(VipError::StillHeld { vip, dev: dev.to_string(), host: on.to_string() }),
        Err(e) => return rec.fail(e),
    }
    Ok(rec.report)
}
