//! `gapless vip`: the flags of add, del and move, and the call into
//! [`crate::vip`]. Each step is printed to stdout as it is done.

use std::io::Write;
use std::net::Ipv4Addr;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::vip::{self, Device, Executor, MovePlan, Step};

/// What a host spec means; shown under each command's help.
const HOST_SPECS: &str = "\
Host specs (--on, --from, --to):
  local                 this machine: runs ip and arping here
  netns:NAME            the network namespace NAME of this machine (ip netns exec NAME ...; for tests)
  ssh:[USER@]HOST       another machine, over ssh with a key only: ssh -o BatchMode=yes
                        -o ConnectTimeout=5 [USER@]HOST -- ip ... (ports and keys go in ~/.ssh/config);
                        the login must be allowed to change addresses (root, or CAP_NET_ADMIN)
  ssh+sudo:[USER@]HOST  the same, with the commands run by sudo -n (no password prompt)
  [USER@]HOST           a bare host name means ssh:[USER@]HOST

The hosts need ip (iproute2) and arping from iputils (Debian/Ubuntu: iputils-arping).
Exit status: 0 done, 1 failed or refused, 2 bad flags. See docs/vip.md.";

/// `gapless vip`.
#[derive(Debug, Args)]
pub struct VipArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: VipAction,
}

/// The VIP commands.
#[derive(Debug, Subcommand)]
pub enum VipAction {
    /// Add the VIP to a host, unless something else on the segment still
    /// answers for it; then send gratuitous ARP.
    ///
    /// Steps: an ARP duplicate address probe from the host (refused when
    /// another machine replies, unless --force), `ip addr add ADDR/32 dev
    /// IF` (already there is fine), `arping -U` so neighbours learn the new
    /// MAC at once, and a check that the host holds it.
    #[command(after_help = HOST_SPECS)]
    Add(AddArgs),
    /// Remove the VIP from a host (absent is fine) and check it is gone.
    #[command(after_help = HOST_SPECS)]
    Del(DelArgs),
    /// Move the VIP from one host to another, refusing to make two owners.
    ///
    /// Steps: remove it from --from when given (an unreachable old host is
    /// reported and the move goes on; it gets at most half of --timeout);
    /// from --to, an ARP duplicate address probe: if anything still answers
    /// for the address the move stops (unless --force); then add it on
    /// --to, send gratuitous ARP, and check --to holds it.
    #[command(after_help = HOST_SPECS)]
    Move(MoveArgs),
}

/// The address, its interface and the deadline: the flags every VIP
/// command takes.
#[derive(Debug, Args)]
pub struct AddressArgs {
    /// The VIP: one IPv4 address, ADDR or ADDR/32 (always added as /32, so
    /// routes don't change; the interface's own address gives the subnet).
    #[arg(long, value_name = "ADDR[/32]", value_parser = vip_arg)]
    pub vip: Ipv4Addr,
    /// The interface that carries it (the same name on every host), e.g.
    /// eth0 or bond0.100.
    #[arg(long, value_name = "IF", value_parser = device_arg)]
    pub dev: Device,
    /// Everything must be done within this many seconds; each command
    /// also has its own limit of 10 s.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = timeout_arg)]
    pub timeout: Duration,
}

/// The flags of `gapless vip add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The address.
    #[command(flatten)]
    pub address: AddressArgs,
    /// The host to add it to (a host spec, below).
    #[arg(long, value_name = "HOST", default_value = "local", value_parser = host_arg)]
    pub on: Executor,
    /// Add it even when another machine still answers for it (two owners:
    /// clients reach either). Said in the output.
    #[arg(long)]
    pub force: bool,
}

/// The flags of `gapless vip del`.
#[derive(Debug, Args)]
pub struct DelArgs {
    /// The address.
    #[command(flatten)]
    pub address: AddressArgs,
    /// The host to remove it from (a host spec, below).
    #[arg(long, value_name = "HOST", default_value = "local", value_parser = host_arg)]
    pub on: Executor,
}

/// The flags of `gapless vip move`.
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// The address.
    #[command(flatten)]
    pub address: AddressArgs,
    /// The host that has it now (the old primary), when known; a failure
    /// to reach it is reported, not fatal.
    #[arg(long, value_name = "HOST", value_parser = host_arg)]
    pub from: Option<Executor>,
    /// The host to give it to (the new primary).
    #[arg(long, value_name = "HOST", value_parser = host_arg)]
    pub to: Executor,
    /// Add it even when another machine still answers for it (two owners:
    /// clients reach either). Said in the output.
    #[arg(long)]
    pub force: bool,
}

fn vip_arg(s: &str) -> Result<Ipv4Addr, String> {
    vip::parse_vip(s).map_err(|e| e.to_string())
}

fn device_arg(s: &str) -> Result<Device, String> {
    s.parse::<Device>().map_err(|e| e.to_string())
}

fn host_arg(s: &str) -> Result<Executor, String> {
    s.parse::<Executor>().map_err(|e| e.to_string())
}

fn timeout_arg(s: &str) -> Result<Duration, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 3600.0)
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("{s:?}: expected a number of seconds, more than 0 and at most 3600"))
}

impl AddArgs {
    /// The plan: a move with no old host.
    pub fn plan(&self) -> MovePlan {
        MovePlan {
            vip: self.address.vip,
            dev: self.address.dev.clone(),
            from: None,
            to: self.on.clone(),
            force: self.force,
            timeout: self.address.timeout,
        }
    }
}

impl MoveArgs {
    /// The plan.
    pub fn plan(&self) -> MovePlan {
        MovePlan {
            vip: self.address.vip,
            dev: self.address.dev.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            force: self.force,
            timeout: self.address.timeout,
        }
    }
}

/// Runs `gapless vip`: every step on stdout as it is done; a failure is
/// returned (printed to stderr by the caller, exit 1).
pub fn run(args: VipArgs) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let mut print = |step: &Step| {
        let mut out = stdout.lock();
        // A closed stdout must not stop a VIP move halfway.
        let _ = writeln!(out, "{step}");
        let _ = out.flush();
    };
    let result = match &args.action {
        VipAction::Add(a) => vip::move_vip_with(&a.plan(), &mut print),
        VipAction::Move(a) => vip::move_vip_with(&a.plan(), &mut print),
        VipAction::Del(a) => {
            vip::remove_vip(a.address.vip, &a.address.dev, &a.on, a.address.timeout, &mut print)
        }
    };
    result.map(|_| 0).map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::*;
    use clap::{CommandFactory, Parser};

    fn parse(args: &[&str]) -> Result<VipAction, String> {
        let mut argv = vec!["gapless", "vip"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli { command: Command::Vip(VipArgs { action }) }) => Ok(action),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    fn move_args(args: &[&str]) -> MoveArgs {
        match parse(args).expect("parses") {
            VipAction::Move(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_move_with_every_flag() {
        let m = move_args(&[
            "move",
            "--vip",
            "10.0.0.100/32",
            "--dev",
            "bond0.100",
            "--from",
            "db1",
            "--to",
            "ssh+sudo:ops@db2",
            "--force",
            "--timeout",
            "12.5",
        ]);
        let plan = m.plan();
        assert_eq!(plan.vip, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(plan.dev.as_str(), "bond0.100");
        assert_eq!(plan.from, Some(Executor::Ssh { target: "db1".into(), sudo: false }));
        assert_eq!(plan.to, Executor::Ssh { target: "ops@db2".into(), sudo: true });
        assert!(plan.force);
        assert_eq!(plan.timeout, Duration::from_millis(12_500));
    }

    #[test]
    fn move_defaults() {
        let plan = move_args(&["move", "--vip", "10.0.0.100", "--dev", "eth0", "--to", "netns:b"]).plan();
        assert_eq!(plan.from, None);
        assert_eq!(plan.to, Executor::Netns { name: "b".into() });
        assert!(!plan.force);
        assert_eq!(plan.timeout, vip::DEFAULT_TIMEOUT);
    }

    #[test]
    fn move_needs_to_vip_and_dev() {
        let e = parse(&["move", "--vip", "10.0.0.100", "--dev", "eth0", "--from", "db1"]).unwrap_err();
        assert!(e.contains("--to <HOST>"), "{e}");
        let e = parse(&["move", "--dev", "eth0", "--to", "db2"]).unwrap_err();
        assert!(e.contains("--vip <ADDR[/32]>"), "{e}");
        let e = parse(&["move", "--vip", "10.0.0.100", "--to", "db2"]).unwrap_err();
        assert!(e.contains("--dev <IF>"), "{e}");
        let e = parse(&["move", "--vip", "10.0.0.100", "--dev", "eth0", "--to", "db2", "--on", "db1"])
            .unwrap_err();
        assert!(e.contains("--on"), "{e}");
    }

    #[test]
    fn add_and_del_default_to_this_machine() {
        match parse(&["add", "--vip", "10.0.0.100", "--dev", "eth0"]).unwrap() {
            VipAction::Add(a) => {
                let plan = a.plan();
                assert_eq!(plan.to, Executor::Local);
                assert_eq!(plan.from, None);
                assert!(!plan.force);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["add", "--vip", "10.0.0.100", "--dev", "eth0", "--on", "netns:x", "--force"]).unwrap() {
            VipAction::Add(a) => {
                assert_eq!(a.on, Executor::Netns { name: "x".into() });
                assert!(a.plan().force);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["del", "--vip", "10.0.0.100", "--dev", "eth0", "--on", "root@db1"]).unwrap() {
            VipAction::Del(d) => assert_eq!(d.on, Executor::Ssh { target: "root@db1".into(), sudo: false }),
            other => panic!("{other:?}"),
        }
        match parse(&["del", "--vip", "10.0.0.100", "--dev", "eth0"]).unwrap() {
            VipAction::Del(d) => assert_eq!(d.on, Executor::Local),
            other => panic!("{other:?}"),
        }
        // del never needs --force, and has no --to.
        assert!(parse(&["del", "--vip", "10.0.0.100", "--dev", "eth0", "--force"]).is_err());
        assert!(parse(&["del", "--vip", "10.0.0.100", "--dev", "eth0", "--to", "db2"]).is_err());
    }

    #[test]
    fn bad_values_are_usage_errors_that_say_why() {
        for (args, says) in [
            (vec!["--vip", "10.0.0.100/24", "--dev", "eth0", "--to", "db2"], "ADDR/32"),
            (vec!["--vip", "fe80::1", "--dev", "eth0", "--to", "db2"], "IPv6"),
            (vec!["--vip", "10.0.0.100", "--dev", "eth0:1", "--to", "db2"], "label"),
            (vec!["--vip", "10.0.0.100", "--dev", "eth0", "--to", "db2:22"], "port"),
            (vec!["--vip", "10.0.0.100", "--dev", "eth0", "--to", "ssh:-oProxyCommand=x"], "'-'"),
            (vec!["--vip", "10.0.0.100", "--dev", "eth0", "--to", "db2", "--from", "netns:"], "empty"),
            (vec!["--vip", "10.0.0.100", "--dev", "eth0", "--to", "db2", "--timeout", "0"], "more than 0"),
            (vec!["--vip", "10.0.0.100", "--dev", "eth0", "--to", "db2", "--timeout=-3"], "more than 0"),
            (vec!["--vip", "10.0.0.100", "--dev", "eth0", "--to", "db2", "--timeout", "NaN"], "more than 0"),
            (vec!["--vip", "10.0.0.100", "--dev", "eth0", "--to", "db2", "--timeout", "soon"], "seconds"),
        ] {
            let mut argv = vec!["move"];
            argv.extend(args.iter().copied());
            let e = parse(&argv).expect_err(&format!("{args:?}"));
            assert!(e.contains(says), "{args:?}: {e}");
        }
    }

    #[test]
    fn flags_given_twice_keep_the_last() {
        let m = move_args(&[
            "move", "--vip", "10.0.0.1", "--vip", "10.0.0.2", "--dev", "eth0", "--to", "a", "--to", "b",
        ]);
        assert_eq!(m.address.vip, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(m.to, Executor::Ssh { target: "b".into(), sudo: false });
    }

    #[test]
    fn the_help_explains_host_specs() {
        let mut cmd = Cli::command();
        let vip = cmd.find_subcommand_mut("vip").expect("vip command");
        for name in ["add", "del", "move"] {
            let help = vip.find_subcommand_mut(name).expect(name).render_long_help().to_string();
            for part in
                ["local", "netns:NAME", "ssh:[USER@]HOST", "ssh+sudo:[USER@]HOST", "BatchMode", "--timeout"]
            {
                assert!(help.contains(part), "{name}: {part:?} missing from\n{help}");
            }
        }
    }
}
