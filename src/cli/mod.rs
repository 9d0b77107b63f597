//! The command line: clap structs (what the user typed) and, per command,
//! the step that turns them into a checked plan before any I/O. Clap types
//! stay in this module.

pub mod config;
pub mod decode;
pub mod hook;
pub mod replay;
pub mod stream;
pub mod topology;
pub mod vip;

use clap::{Parser, Subcommand};

/// gapless: keeps a MySQL/MariaDB primary's binlog and completes failovers
/// without losing transactions.
#[derive(Debug, Parser)]
#[command(name = "gapless", version, about, long_about = None, propagate_version = true, args_override_self = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode binlog files to text, JSON lines or SQL (faster than mysqlbinlog).
    Decode(decode::DecodeArgs),
    /// Follow a primary's binlog live as a replica and print each transaction.
    ///
    /// Each transaction is printed once its commit has arrived. The password
    /// comes from $GAPLESS_PASSWORD or --password-file (a file only its owner
    /// may read), never from the command line. On a dropped connection or a
    /// restarted primary the stream reconnects with backoff and resumes after
    /// the last whole transaction printed: no gap, no duplicate. Stop it with
    /// Ctrl-C or SIGTERM. Logs go to stderr ($GAPLESS_LOG=debug for more).
    ///
    /// With --ring DIR it is the sidecar: events are kept in a crash-safe
    /// ring on disk instead of printed, and a restart resumes after the
    /// ring's last transaction (docs/sidecar.md). With --listen it serves
    /// its status, replays and replica positions over HTTP, and judges
    /// whether the primary is dead (probes, and what its replicas see).
    /// Flags may also come from a TOML file: --config FILE, a [stream]
    /// table keyed by flag name.
    Stream(stream::StreamArgs),
    /// Apply onto a promoted replica what the ring holds and it lacks.
    ///
    /// Each transaction the target has not executed (by GTID) is applied
    /// whole, with its original GTID and through the target's binlog; the
    /// first error rolls it back and stops. A second run applies nothing.
    /// The password comes from $GAPLESS_PASSWORD or --password-file.
    Replay(replay::ReplayArgs),
    /// The commands for orchestrator's hook lists (docs/orchestrator.md).
    ///
    /// `pre-failover` checks the sidecar is ready and has it record where
    /// each replica stands; `post-master-failover` has it replay onto the
    /// promoted replica what it lacks, then moves the VIP. They read
    /// orchestrator's placeholders as flags and its ORC_* variables (flags
    /// win), log each step with the recovery UID to stdout (and
    /// --log-file), and exit 0 done, 1 failed, 2 bad input.
    Hook(hook::HookArgs),
    /// Move a virtual IP between hosts, refusing to make two owners
    /// (docs/vip.md).
    ///
    /// `add` and `move` first ask the segment (ARP duplicate address
    /// probe) whether anything still answers for the address and stop if
    /// so (--force goes on); then `ip addr add ADDR/32` and gratuitous ARP.
    /// Hosts are `local`, `netns:NAME`, `ssh:[USER@]HOST` or a bare host
    /// (ssh). Each step is printed; exit 0 done, 1 failed or refused.
    Vip(vip::VipArgs),
    /// Show a cluster's servers as a tree: role, version, read_only, binlog
    /// format, GTID mode, replication threads, lag and datacenter.
    ///
    /// Discovery starts at the cluster's seed, climbs to the primary
    /// (following each replica's Master_Host) and walks down through SHOW
    /// SLAVE HOSTS (replicas need report_host) and the processlist's binlog
    /// dump threads. A gapless sidecar is shown as the sidecar. The cluster
    /// comes from the cluster file (--config, default
    /// /etc/gapless/clusters.toml) or from --seed and --user. --json prints
    /// the whole model. Exit 0 shown, 1 failed.
    #[command(after_help = topology::CLUSTER_HELP)]
    Topology(topology::TopologyArgs),
    /// Check that a cluster is ready for a switchover or a failover: one
    /// line per check, PASS or FAIL, with what was found.
    ///
    /// Checks: every instance readable; replication threads running; lag
    /// at most --max-lag; binlog_format=ROW and one binlog_row_image
    /// everywhere; consistent GTID settings; no errant GTIDs; replicas
    /// read_only; log_slave_updates on candidates; unique server ids; at
    /// least one valid candidate (same or newer version, not must_not, the
    /// primary's datacenter with prevent_cross_dc); the metadata look-ups
    /// answer; the VIP reaches the primary; the sidecar is connected and
    /// keeps up (docs/topology.md). Exit 0 all required checks passed, 1 one
    /// failed (or the cluster could not be discovered), 2 bad flags or file.
    #[command(after_help = topology::CLUSTER_HELP)]
    Precheck(topology::PrecheckArgs),
    /// Switch a cluster's primary gracefully to a replica (or, with --dual,
    /// from the active to the passive member of a dual-primary pair).
    ///
    /// Precheck, choose the candidate (the datacenter rules hold even with
    /// --force), make the old primary read_only, deal with its writers,
    /// wait until the candidate has executed everything, then promote it,
    /// re-point the other replicas and the old primary under it and move
    /// the VIP. Before the point of no return a failure rolls back (the
    /// old primary writable again); after it, the switch goes on and says
    /// what is left. --dry-run prints the plan. Exit 0 done, 1 refused or
    /// rolled back, 2 bad flags or file, 3 failed after the point of no
    /// return (docs/topology.md).
    #[command(after_help = topology::SWITCHOVER_HELP)]
    Switchover(topology::SwitchoverArgs),
}

/// Exit codes: 0 success, 1 the work failed (bad input, I/O), 2 usage error
/// (clap's own).
pub const EXIT_FAILURE: i32 = 1;

/// Logs to stderr: info and above unless $GAPLESS_LOG says otherwise
/// (e.g. `GAPLESS_LOG=debug`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GAPLESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs the parsed command and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Stream(args) => {
            init_logging();
            stream::run(args)
        }
        Command::Replay(args) => {
            init_logging();
            replay::run(args)
        }
        Command::Hook(args) => return hook::run(args),
        Command::Vip(args) => vip::run(args),
        Command::Topology(args) => topology::run_topology(args),
        Command::Precheck(args) => return topology::run_precheck(args),
        Command::Switchover(args) => return topology::run_switchover(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gapless: error: {e:#}");
            EXIT_FAILURE
        }
    }
}
