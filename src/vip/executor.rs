//! Where a VIP command runs: here, on another host over ssh, or in a
//! network namespace (tests). Every command runs with a timeout (the child
//! is killed when it passes) and a failure names the host spec, the command
//! and what the command wrote to stderr.

use std::fmt::{self, Display};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::VipError;

/// How long ssh may take to connect (`-o ConnectTimeout`): a dead host
/// must not use up the whole move's deadline.
pub const SSH_CONNECT_TIMEOUT_SECS: u32 = 5;

/// At most this much of a command's stdout and of its stderr is kept; the
/// rest is read and dropped (a misbehaving remote shell can't fill memory).
const OUTPUT_CAP: usize = 64 * 1024;

/// Where `ip` and `arping` usually live; searched after `$PATH`, because
/// orchestrator's `$PATH` (and a non-root login's) often lacks the sbin
/// directories.
const TOOL_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Where a command runs, parsed from a host spec (see [`Executor::from_str`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executor {
    /// This machine: `ip …` and `arping …` run directly.
    Local,
    /// Another machine: `ssh -o BatchMode=yes -o ConnectTimeout=5 TARGET -- ip …`
    /// (keys only, never a password). With `sudo`, the remote command runs
    /// under `sudo -n` (which must not ask for a password either).
    Ssh {
        /// `[USER@]HOST`, as ssh takes it (ports and options belong in
        /// ~/.ssh/config).
        target: String,
        /// Run the remote commands with `sudo -n`.
        sudo: bool,
    },
    /// A network namespace of this machine: `ip netns exec NAME ip …`
    /// (used by the tests).
    Netns {
        /// The namespace's name (as `ip netns list` shows it).
        name: String,
    },
}

impl Display for Executor {
    /// The host spec, as the user writes it (`ssh:` always spelled out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Executor::Local => f.write_str("local"),
            Executor::Ssh { target, sudo: false } => write!(f, "ssh:{target}"),
            Executor::Ssh { target, sudo: true } => write!(f, "ssh+sudo:{target}"),
            Executor::Netns { name } => write!(f, "netns:{name}"),
        }
    }
}

impl FromStr for Executor {
    type Err = VipError;

    /// `local`, `netns:NAME`, `ssh:[USER@]HOST`, `ssh+sudo:[USER@]HOST`, or
    /// a bare `[USER@]HOST` (meaning ssh). Host and user names are limited
    /// to characters that need no quoting, so nothing in a spec can become
    /// an ssh option or a shell word.
    fn from_str(spec: &str) -> Result<Self, VipError> {
        let bad = |reason: &str| VipError::BadHost { input: spec.to_string(), reason: reason.to_string() };
        let trimmed = spec.trim();
        if trimmed.is_empty() {
            return Err(bad("empty"));
        }
        if trimmed.eq_ignore_ascii_case("local") {
            return Ok(Executor::Local);
        }
        if let Some(name) = trimmed.strip_prefix("netns:") {
            check_netns(name).map_err(bad)?;
            return Ok(Executor::Netns { name: name.to_string() });
        }
        if let Some(target) = trimmed.strip_prefix("ssh+sudo:") {
            check_ssh_target(target).map_err(bad)?;
            return Ok(Executor::Ssh { target: target.to_string(), sudo: true });
        }
        if let Some(target) = trimmed.strip_prefix("ssh:") {
            check_ssh_target(target).map_err(bad)?;
            return Ok(Executor::Ssh { target: target.to_string(), sudo: false });
        }
        // A bare host; an IPv6 literal is the only bare host with a colon.
        let host_part = trimmed.rsplit_once('@').map_or(trimmed, |(_, h)| h);
        if host_part.contains(':') && host_part.parse::<std::net::Ipv6Addr>().is_err() {
            let kind = trimmed.split_once(':').map_or(trimmed, |(k, _)| k);
            return Err(bad(&format!(
                "unknown kind {kind:?} (a port does not belong here: put it in ~/.ssh/config)"
            )));
        }
        check_ssh_target(trimmed).map_err(bad)?;
        Ok(Executor::Ssh { target: trimmed.to_string(), sudo: false })
    }
}

fn check_netns(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the namespace name is empty");
    }
    if name.len() > 64 {
        return Err("the namespace name is longer than 64 bytes");
    }
    if name == "." || name == ".." || name.starts_with('-') {
        return Err("not a namespace name");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
        return Err("a namespace name may hold only letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

fn check_ssh_target(target: &str) -> Result<(), &'static str> {
    let (user, host) = match target.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, target),
    };
    if let Some(user) = user {
        if user.is_empty() || user.starts_with('-') {
            return Err("the user name is empty or starts with '-'");
        }
        if !user.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
            return Err("a user name may hold only letters, digits, '_', '-' and '.'");
        }
    }
    if host.is_empty() {
        return Err("the host name is empty");
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 bytes");
    }
    if host.starts_with('-') {
        return Err("a host name can't start with '-'");
    }
    if host.contains(':') {
        return match host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err("not an IPv6 address, and a port does not belong here (use ~/.ssh/config)"),
        };
    }
    if !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
        return Err("a host name may hold only letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

/// What a finished command gave.
#[derive(Debug)]
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Executor {
    /// Runs `argv` (`ip …` or `arping …`) where this executor says, killing
    /// it after `timeout`. A non-zero exit is not an error here: callers
    /// decide (arping's duplicate address detection exits 1 on a reply).
    pub(crate) fn run(&self, argv: &[&str], timeout: Duration) -> Result<Output, VipError> {
        let command = argv.join(" ");
        let mut cmd = self.command(argv);
        run_with_timeout(&mut cmd, timeout).map_err(|e| match e {
            RunError::Spawn(error) => VipError::Spawn { host: self.to_string(), command, error },
            RunError::Timeout { stderr } => {
                VipError::Timeout { host: self.to_string(), command, timeout, stderr: tidy(&stderr) }
            }
        })
    }

    /// Like [`Executor::run`], but a non-zero exit is an error carrying
    /// the exit status and stderr.
    pub(crate) fn run_ok(&self, argv: &[&str], timeout: Duration) -> Result<Output, VipError> {
        let out = self.run(argv, timeout)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(self.failed(argv, &out))
        }
    }

    /// The error for a command that ran and exited with a failure.
    pub(crate) fn failed(&self, argv: &[&str], out: &Output) -> VipError {
        let mut stderr = tidy(&out.stderr);
        if stderr.is_empty() {
            stderr = tidy(&out.stdout);
        }
        if stderr.is_empty() {
            stderr = "(nothing on stderr)".to_string();
        }
        // ssh exits 255 when it could not log in or the connection broke.
        let hint = match self {
            Executor::Ssh { .. } if out.status.code() == Some(255) => {
                " (ssh could not connect or log in: check the host is up and key-based login works with BatchMode)"
            }
            _ => "",
        };
        VipError::Failed {
            host: self.to_string(),
            command: argv.join(" "),
            status: describe(out.status),
            stderr: format!("{stderr}{hint}"),
        }
    }

    /// The process to start.
    fn command(&self, argv: &[&str]) -> Command {
        let (program, args) = argv.split_first().map_or(("true", &[][..]), |(p, a)| (*p, a));
        match self {
            Executor::Local => {
                let mut cmd = Command::new(find_tool(program));
                cmd.args(args);
                cmd
            }
            Executor::Netns { name } => {
                let mut cmd = Command::new(find_tool("ip"));
                cmd.args(["netns", "exec", name.as_str()]).arg(find_tool(program)).args(args);
                cmd
            }
            Executor::Ssh { target, sudo } => {
                let mut cmd = Command::new("ssh");
                cmd.args(["-o", "BatchMode=yes"])
                    .args(["-o", &format!("ConnectTimeout={SSH_CONNECT_TIMEOUT_SECS}")])
                    // A multiplexing master forked by ssh would keep our
                    // pipes open after the command ends.
                    .args(["-o", "ControlMaster=no"])
                    .arg("-T")
                    .arg(target)
                    .arg("--")
                    .arg(remote_command(argv, *sudo));
                cmd
            }
        }
    }
}

/// The command line the remote shell runs: the sbin directories added to
/// `$PATH` (a non-root login often lacks them), `sudo -n` when asked, and
/// every argument quoted.
pub(crate) fn remote_command(argv: &[&str], sudo: bool) -> String {
    let mut line = String::from("PATH=\"$PATH:/usr/sbin:/sbin\" ");
    if sudo {
        line.push_str("sudo -n ");
    }
    let quoted: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
    line.push_str(&quoted.join(" "));
    line
}

/// `arg` as one POSIX shell word.
pub(crate) fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b)) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// `program` found in `$PATH` or the usual tool directories; the bare name
/// when not found (spawning then fails with "not found", naming it).
fn find_tool(program: &str) -> PathBuf {
    if program.contains('/') {
        return PathBuf::from(program);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(TOOL_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(program))
}

/// An exit status in words.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// Output trimmed and folded onto one line (a report line must stay one
/// line). Long output keeps its start and its end, where tools put their
/// conclusion (ssh's "Host key verification failed." comes after a banner
/// of warnings).
pub(crate) fn tidy(text: &str) -> String {
    let joined = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    const HEAD: usize = 200;
    const TAIL: usize = 400;
    if joined.len() <= HEAD + TAIL {
        return joined;
    }
    let mut head = HEAD;
    while !joined.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = joined.len() - TAIL;
    while !joined.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{} … {}", &joined[..head], &joined[tail..])
}

/// Why [`run_with_timeout`] gave no exit status.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The process could not be started.
    Spawn(std::io::Error),
    /// It ran past its timeout and was killed; what it wrote to stderr.
    Timeout { stderr: String },
}

/// Runs `cmd` with stdin closed and stdout/stderr captured, in its own
/// process group so that, when `timeout` passes, the whole group (ssh or
/// `ip netns exec` and whatever they started) is killed.
pub(crate) fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output, RunError> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let started = Instant::now();
    let pid = child.id();
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let (status, timed_out) = match rx.recv_timeout(timeout) {
        Ok(status) => (status, false),
        Err(_) => {
            kill_group(pid);
            (rx.recv().unwrap_or_else(|_| Err(std::io::Error::other("the waiting thread ended"))), true)
        }
    };
    // The pipes close when the group is gone; something that escaped the
    // group (a daemonised helper) must not hold us past the deadline.
    let grace = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(500));
    let collect =
        |rx: Option<mpsc::Receiver<String>>| rx.and_then(|r| r.recv_timeout(grace).ok()).unwrap_or_default();
    let stdout = collect(stdout);
    let stderr = collect(stderr);
    if timed_out {
        return Err(RunError::Timeout { stderr });
    }
    let status = status.map_err(RunError::Spawn)?;
    Ok(Output { status, stdout, stderr })
}

/// Reads a pipe to its end on a thread; the first [`OUTPUT_CAP`] bytes,
/// lossily decoded, arrive on the channel.
fn reader(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
    });
    rx
}

/// SIGKILL to the process group led by `pid`.
fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    // The group is the child's own (process_group(0) made it its leader).
    // Should its waiter have reaped it a moment ago, the group is gone and
    // the call fails with ESRCH: process ids are handed out in sequence,
    // so one is not reused within that moment.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}
