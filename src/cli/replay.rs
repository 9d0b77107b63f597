//! `gapless replay`: flags, their checks, the report, and the call into
//! [`crate::replay`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use gapless_decoder::gtid::{GtidSet, MariaGtidList};

use super::stream::LoginArgs;
use crate::replay::{self, Executed, ReplayPlan, ReplayStart};

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// SQL statements (INSERT, UPDATE, DELETE; DDL as written).
    Sql,
    /// Row events as BINLOG '...' statements.
    Binlog,
}

/// The flags of `gapless replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The sidecar's ring directory.
    #[arg(long, value_name = "DIR")]
    pub ring: PathBuf,
    /// The promoted replica: mysql://USER@HOST[:PORT] (no password here).
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// Apply what is not in this GTID position: MariaDB GTIDs (0-1-42,1-2-7)
    /// or a MySQL GTID set (uuid:1-42).
    #[arg(long, value_name = "SET", conflicts_with_all = ["auto", "after"], required_unless_present_any = ["auto", "after"])]
    pub after_gtid: Option<String>,
    /// Apply what comes after this place of the old primary's binlog
    /// (FILE:POS: the promoted replica's Relay_Master_Log_File and
    /// Exec_Master_Log_Pos, recorded before RESET SLAVE ALL).
    #[arg(long, value_name = "FILE:POS", conflicts_with = "auto")]
    pub after: Option<String>,
    /// Read what the target has executed from the target itself (MariaDB:
    /// gtid_binlog_pos and gtid_slave_pos; MySQL: gtid_executed).
    #[arg(long)]
    pub auto: bool,
    /// How transactions are sent: as SQL statements, or their row events as
    /// BINLOG '...' statements (byte for byte; needs BINLOG REPLAY or SUPER).
    #[arg(long, value_enum, default_value = "sql")]
    pub mode: ModeArg,
    /// Print the SQL that would run instead of running it.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop, and exit non-zero, once this many seconds have passed (an
    /// orchestrator hook has no timeout of its own).
    #[arg(long, value_name = "SECONDS")]
    pub deadline: Option<f64>,
    /// The report as JSON on stdout (with --dry-run the SQL goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Let the target commit without syncing while the replay runs
    /// (innodb_flush_log_at_trx_commit=2, sync_binlog=0), then set them
    /// back and flush: much faster on most disks. A crash of the machine
    /// meanwhile can lose the last second applied (run replay again);
    /// other sessions on the target commit the same way meanwhile.
    #[arg(long)]
    pub relaxed_durability: bool,
    /// Login and TLS.
    #[command(flatten)]
    pub login: LoginArgs,
}

impl ReplayArgs {
    /// Checks the flags and builds the plan.
    pub fn plan(&self) -> anyhow::Result<ReplayPlan> {
        let start = match (&self.after_gtid, &self.after) {
            (Some(text), _) => ReplayStart::AfterGtid(parse_executed(text)?),
            (None, Some(at)) => {
                let (file, pos) =
                    at.rsplit_once(':').with_context(|| format!("--after {at:?}: expected FILE:POS"))?;
                let position: u64 =
                    pos.parse().with_context(|| format!("--after {at:?}: bad position {pos:?}"))?;
                if file.is_empty() || position < 4 {
                    bail!("--after {at:?}: expected FILE:POS with POS >= 4");
                }
                ReplayStart::AfterPosition { file: file.to_string(), position }
            }
            (None, None) => ReplayStart::Auto,
        };
        let deadline = match self.deadline {
            Some(s) => Some(
                Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .with_context(|| format!("--deadline {s}: expected a positive number of seconds"))?,
            ),
            None => None,
        };
        Ok(ReplayPlan {
            ring: self.ring.clone(),
            target: self.login.connect_options("target", &self.target)?,
            start,
            mode: match self.mode {
                ModeArg::Sql => replay::Mode::Sql,
                ModeArg::Binlog => replay::Mode::Binlog,
            },
            dry_run: self.dry_run,
            deadline,
            progress: None,
            relaxed_durability: self.relaxed_durability,
        })
    }
}

/// A GTID position: MariaDB's D-S-N list, or a MySQL set.
fn parse_executed(text: &str) -> anyhow::Result<Executed> {
    if let Ok(list) = text.parse::<MariaGtidList>() {
        return Ok(Executed::Maria(list));
    }
    match text.parse::<GtidSet>() {
        Ok(set) => Ok(Executed::Mysql(set)),
        Err(_) => bail!("--after-gtid {text:?}: neither MariaDB GTIDs nor a MySQL GTID set"),
    }
}

/// Runs `gapless replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<i32> {
    let plan = args.plan()?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr().lock());
    let sql_out: &mut dyn Write = if args.json { &mut stderr } else { &mut stdout };
    let report = runtime.block_on(replay::run(&plan, sql_out))?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    } else {
        let verb = if report.dry_run { "would apply" } else { "applied" };
        let mut out = std::io::stderr().lock();
        writeln!(out, "gapless replay: target had executed {}", display_or_none(&report.target_executed))?;
        if let Some(at) = &report.after_position {
            writeln!(out, "gapless replay: started after {at} of the old primary's binlog ({} transaction(s) before it)", report.skipped_before)?;
        }
        match (report.applied.first(), report.applied.last()) {
            (Some(first), Some(last)) => writeln!(
                out,
                "gapless replay: {verb} {} transaction(s), {} row event(s): {} ({}:{}) .. {} ({}:{})",
                report.applied.len(),
                report.applied.iter().map(|a| a.row_events).sum::<u64>(),
                first.gtid,
                first.file,
                first.start,
                last.gtid,
                last.file,
                last.end
            )?,
            _ => writeln!(
                out,
                "gapless replay: nothing to apply: the target has every transaction the ring holds"
            )?,
        }
        writeln!(
            out,
            "gapless replay: skipped {} transaction(s) the target had, {} event(s) outside transactions; {:.3} s",
            report.skipped_executed, report.skipped_other, report.seconds
        )?;
        if !report.xa_prepared.is_empty() {
            writeln!(
                out,
                "gapless replay: {} XA transaction(s) prepared on the target, as on the old primary; their \
                 transaction manager must commit or roll them back (they hold their locks until then): {}",
                report.xa_prepared.len(),
                report.xa_prepared.join(" ")
            )?;
        }
    }
    Ok(0)
}

fn display_or_none(s: &str) -> &str {
    if s.is_empty() {
        "nothing"
    } else {
        s
    }
}
