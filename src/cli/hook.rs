//! `gapless hook`: the flags of the commands orchestrator runs in its hook
//! lists, and the call into [`crate::hook`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::replay::ModeArg;
use crate::hook::{self, OrcFlags, PostOptions, PreOptions, SidecarOptions};

/// `gapless hook`.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// Which hook.
    #[command(subcommand)]
    pub step: HookStep,
}

/// The hooks.
#[derive(Debug, Subcommand)]
pub enum HookStep {
    /// For PreFailoverProcesses: checks the inputs and that the sidecar is
    /// connected to the primary and keeps a ring, and has it record every
    /// replica's executed coordinates and GTIDs (the post hook needs them
    /// once orchestrator has reset the promoted replica) and whether its
    /// ring covers what each lacks. Exits 0 (with warnings when something
    /// is wrong) unless --veto is given.
    PreFailover(PreArgs),
    /// For PostMasterFailoverProcesses: after a dead-primary failover, has
    /// the sidecar replay onto the successor what it lacks, within
    /// --deadline; once per recovery UID. Exits 0 done or nothing to do, 1
    /// failed, 2 bad input.
    PostMasterFailover(PostArgs),
}

/// The sidecar, the deadline and the log.
#[derive(Debug, Args)]
pub struct SidecarArgs {
    /// The sidecar's API: http://HOST:PORT or https://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub sidecar: String,
    /// File holding the API's bearer token (first line; mode 0600).
    #[arg(long, value_name = "FILE")]
    pub sidecar_token_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) to verify an https:// sidecar with.
    #[arg(long, value_name = "FILE")]
    pub sidecar_ca: Option<PathBuf>,
    /// Everything must be done within this many seconds.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_deadline)]
    pub deadline: Duration,
    /// Also append every log line to this file.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

fn parse_deadline(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?}: expected a positive number of seconds"))
}

/// orchestrator's inputs; each also comes from its ORC_* variable, and a
/// flag wins. Values are checked by the hook (an unsubstituted `{name}`
/// exits 2), so they are taken as text here.
#[derive(Debug, Args)]
pub struct OrcArgs {
    /// orchestrator's {failureType} (ORC_FAILURE_TYPE).
    #[arg(long, value_name = "TYPE", conflicts_with = "dead_status")]
    pub failure_type: Option<String>,
    /// Same as --failure-type (the earlier Go hook's flag).
    #[arg(long = "DeadStatus", value_name = "TYPE")]
    pub dead_status: Option<String>,
    /// orchestrator's {command} (ORC_COMMAND), e.g. graceful-master-takeover.
    #[arg(long, value_name = "COMMAND")]
    pub command: Option<String>,
    /// orchestrator's {successorHost} (ORC_SUCCESSOR_HOST).
    #[arg(long, value_name = "HOST", conflicts_with = "new_master")]
    pub successor_host: Option<String>,
    /// Same as --successor-host.
    #[arg(long = "NewMaster", value_name = "HOST")]
    pub new_master: Option<String>,
    /// orchestrator's {successorPort} (ORC_SUCCESSOR_PORT).
    #[arg(long, value_name = "PORT", conflicts_with = "new_master_port")]
    pub successor_port: Option<String>,
    /// Same as --successor-port.
    #[arg(long = "NewMasterPort", value_name = "PORT")]
    pub new_master_port: Option<String>,
    /// orchestrator's {failedHost} (ORC_FAILED_HOST).
    #[arg(long, value_name = "HOST", conflicts_with = "old_master")]
    pub failed_host: Option<String>,
    /// Same as --failed-host.
    #[arg(long = "OldMaster", value_name = "HOST")]
    pub old_master: Option<String>,
    /// orchestrator's {failedPort} (ORC_FAILED_PORT).
    #[arg(long, value_name = "PORT", conflicts_with = "old_master_port")]
    pub failed_port: Option<String>,
    /// Same as --failed-port.
    #[arg(long = "OldMasterPort", value_name = "PORT")]
    pub old_master_port: Option<String>,
    /// orchestrator's {failureClusterAlias} (ORC_FAILURE_CLUSTER_ALIAS).
    #[arg(long, value_name = "ALIAS", conflicts_with = "cluster_name")]
    pub cluster: Option<String>,
    /// Same as --cluster.
    #[arg(long = "ClusterName", value_name = "ALIAS")]
    pub cluster_name: Option<String>,
    /// orchestrator's {replicaHosts} (ORC_REPLICA_HOSTS): the failed
    /// primary's replicas, HOST:PORT separated by commas; the pre hook
    /// records their positions.
    #[arg(long, value_name = "LIST")]
    pub replica_hosts: Option<String>,
    /// orchestrator's recovery UID (ORC_RECOVERY_UID); the post hook needs it.
    #[arg(long, value_name = "UID")]
    pub recovery_uid: Option<String>,
    /// The VIP to move to the successor once it is complete (ADDR or
    /// ADDR/32; see --vip-from, --vip-to and docs/vip.md).
    #[arg(long = "VipAddr", value_name = "ADDR")]
    pub vip_addr: Option<String>,
    /// The VIP's interface (the same name on both hosts); needed with
    /// --VipAddr.
    #[arg(long = "InterFace", value_name = "IFACE")]
    pub interface: Option<String>,
}

impl OrcArgs {
    fn flags(&self) -> OrcFlags {
        OrcFlags {
            failure_type: self.failure_type.clone(),
            dead_status: self.dead_status.clone(),
            command: self.command.clone(),
            successor_host: self.successor_host.clone(),
            new_master: self.new_master.clone(),
            successor_port: self.successor_port.clone(),
            new_master_port: self.new_master_port.clone(),
            failed_host: self.failed_host.clone(),
            old_master: self.old_master.clone(),
            failed_port: self.failed_port.clone(),
            old_master_port: self.old_master_port.clone(),
            cluster: self.cluster.clone(),
            cluster_name: self.cluster_name.clone(),
            recovery_uid: self.recovery_uid.clone(),
            replica_hosts: self.replica_hosts.clone(),
            vip_addr: self.vip_addr.clone(),
            interface: self.interface.clone(),
        }
    }
}

/// The flags of `gapless hook pre-failover`.
#[derive(Debug, Args)]
pub struct PreArgs {
    /// The sidecar.
    #[command(flatten)]
    pub sidecar: SidecarArgs,
    /// Exit 1 when the sidecar is not ready or its ring does not cover what
    /// a replica lacks, which stops the failover.
    #[arg(long)]
    pub veto: bool,
    /// orchestrator's inputs.
    #[command(flatten)]
    pub orc: OrcArgs,
}

/// The flags of `gapless hook post-master-failover`.
#[derive(Debug, Args)]
pub struct PostArgs {
    /// The sidecar.
    #[command(flatten)]
    pub sidecar: SidecarArgs,
    /// How the sidecar sends transactions (as `gapless replay --mode`).
    #[arg(long, value_enum, default_value = "sql")]
    pub mode: ModeArg,
    /// Where a record of each finished recovery is kept (UID.done): a
    /// second run for the same recovery does nothing.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/gapless/hook")]
    pub state_dir: PathBuf,
    /// Have the replay relax the successor's durability while it runs
    /// (`gapless replay --relaxed-durability`): a faster completion.
    #[arg(long)]
    pub relaxed_durability: bool,
    /// Where the VIP is taken from: a host spec (local, netns:NAME,
    /// ssh:[USER@]HOST, ssh+sudo:[USER@]HOST); default ssh to the failed
    /// host. An unreachable old host is noted and the move goes on, once
    /// nothing answers for the address any more.
    #[arg(long, value_name = "HOST")]
    pub vip_from: Option<String>,
    /// Where the VIP goes: a host spec; default ssh to the successor.
    #[arg(long, value_name = "HOST")]
    pub vip_to: Option<String>,
    /// orchestrator's inputs.
    #[command(flatten)]
    pub orc: OrcArgs,
}

fn sidecar_options(args: &SidecarArgs) -> SidecarOptions {
    SidecarOptions {
        url: args.sidecar.clone(),
        token_file: args.sidecar_token_file.clone(),
        ca_file: args.sidecar_ca.clone(),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Runs `gapless hook`; returns the exit code.
pub fn run(args: HookArgs) -> i32 {
    match args.step {
        HookStep::PreFailover(a) => hook::pre_failover(
            &PreOptions {
                sidecar: sidecar_options(&a.sidecar),
                deadline: a.sidecar.deadline,
                veto: a.veto,
                log_file: a.sidecar.log_file.clone(),
                flags: a.orc.flags(),
            },
            &env,
        ),
        HookStep::PostMasterFailover(a) => hook::post_master_failover(
            &PostOptions {
                sidecar: sidecar_options(&a.sidecar),
                deadline: a.sidecar.deadline,
                mode: match a.mode {
                    ModeArg::Sql => "sql",
                    ModeArg::Binlog => "binlog",
                },
                state_dir: a.state_dir.clone(),
                log_file: a.sidecar.log_file.clone(),
                relaxed_durability: a.relaxed_durability,
                vip_from: a.vip_from.clone(),
                vip_to: a.vip_to.clone(),
                flags: a.orc.flags(),
            },
            &env,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Cli;
    use super::*;
    use clap::Parser;

    fn post(args: &[&str]) -> PostArgs {
        let mut argv = vec!["gapless", "hook", "post-master-failover", "--sidecar", "http://127.0.0.1:9306"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            super::super::Command::Hook(HookArgs { step: HookStep::PostMasterFailover(a) }) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_go_hooks_flags_are_accepted() {
        let a = post(&[
            "--ClusterName",
            "shop",
            "--DeadStatus",
            "DeadMaster",
            "--OldMaster",
            "db1",
            "--OldMasterPort",
            "3306",
            "--NewMaster",
            "db2",
            "--NewMasterPort",
            "3306",
            "--VipAddr",
            "10.0.0.100",
            "--InterFace",
            "eth0",
        ]);
        let f = a.orc.flags();
        assert_eq!(f.cluster_name.as_deref(), Some("shop"));
        assert_eq!(f.dead_status.as_deref(), Some("DeadMaster"));
        assert_eq!(f.new_master_port.as_deref(), Some("3306"));
        assert_eq!(f.interface.as_deref(), Some("eth0"));
        assert_eq!(a.sidecar.deadline, Duration::from_secs(60));
        assert_eq!(a.state_dir, PathBuf::from("/var/lib/gapless/hook"));
        assert_eq!(a.mode, ModeArg::Sql);
    }

    #[test]
    fn placeholders_and_empty_values_pass_clap_for_the_hook_to_judge() {
        let a = post(&["--successor-host", "{successorHost}", "--successor-port", "", "--deadline", "2.5"]);
        assert_eq!(a.orc.successor_host.as_deref(), Some("{successorHost}"));
        assert_eq!(a.orc.successor_port.as_deref(), Some(""));
        assert_eq!(a.sidecar.deadline, Duration::from_millis(2500));
    }

    #[test]
    fn a_new_flag_and_its_legacy_twin_conflict_and_deadlines_are_positive() {
        let base = ["gapless", "hook", "post-master-failover", "--sidecar", "http://h:1"];
        let with = |extra: &[&str]| Cli::try_parse_from(base.iter().chain(extra)).map(|_| ());
        assert!(with(&["--failure-type", "DeadMaster", "--DeadStatus", "DeadMaster"]).is_err());
        assert!(with(&["--deadline", "0"]).is_err());
        assert!(with(&["--deadline", "-1"]).is_err());
        assert!(with(&["--mode", "rows"]).is_err());
        assert!(with(&[]).is_ok());
        assert!(Cli::try_parse_from([
            "gapless",
            "hook",
            "pre-failover",
            "--sidecar",
            "http://h:1",
            "--veto"
        ])
        .is_ok());
    }
}
