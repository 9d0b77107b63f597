//! `gapless decode`: flags, their checks, and the call into [`crate::decode`].

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use gapless_decoder::gtid::{GtidSet, MariaGtid};
use gapless_decoder::values::temporal::days_from_civil;

use crate::decode::{self, Filters, GtidFilter, Plan};
use crate::render::Format;

/// Output formats as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Like `mysqlbinlog -v`: headers and `###` pseudo-SQL for rows.
    Text,
    /// One JSON object per changed row (see docs/jsonl.md).
    Jsonl,
    /// Executable SQL that redoes the changes.
    Sql,
}

/// Decode binlog files.
///
/// Files are read in the order given, like mysqlbinlog: --start-position
/// applies to the first file and --stop-position to the last. Times are UTC.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: FormatArg,
    /// Start at the event at this position of the first file.
    #[arg(long, value_name = "N")]
    pub start_position: Option<u64>,
    /// Stop before the event at this position of the last file.
    #[arg(long, value_name = "N")]
    pub stop_position: Option<u64>,
    /// Show events at or after this UTC time ("YYYY-MM-DD HH:MM:SS").
    #[arg(long, value_name = "T")]
    pub start_datetime: Option<String>,
    /// Show events before this UTC time ("YYYY-MM-DD HH:MM:SS").
    #[arg(long, value_name = "T")]
    pub stop_datetime: Option<String>,
    /// Only transactions in this GTID set: a MySQL set (uuid:1-5,uuid:7) or
    /// MariaDB GTIDs (0-1-42,0-1-43).
    #[arg(long, value_name = "SET")]
    pub include_gtids: Option<String>,
    /// Only this database.
    #[arg(long, value_name = "DB")]
    pub database: Option<String>,
    /// Only row events of this table.
    #[arg(long, value_name = "T")]
    pub table: Option<String>,
    /// Verify CRC32 checksums (the default).
    #[arg(long, overrides_with = "no_verify_checksums")]
    pub verify_checksums: bool,
    /// Do not verify CRC32 checksums.
    #[arg(long)]
    pub no_verify_checksums: bool,
    /// Keep going past events that fail to decode, and report how many.
    #[arg(long)]
    pub force: bool,
    /// With --format sql: do not set each transaction's original GTID.
    #[arg(long)]
    pub skip_gtids: bool,
    /// Threads for --format jsonl on large files (default: the CPUs, at most 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,
    /// Bytes per chunk when decoding in parallel (for tests).
    #[arg(long, hide = true, default_value_t = 1 << 20, value_name = "BYTES")]
    pub chunk_size: usize,
    /// Decode what the ring in this directory holds (`gapless stream
    /// --ring`) instead of files; it may be written to meanwhile.
    #[arg(long, value_name = "DIR", conflicts_with = "files")]
    pub ring: Option<PathBuf>,
    /// Binlog files, in order.
    #[arg(required_unless_present = "ring", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Seconds since the epoch for "YYYY-MM-DD HH:MM:SS" (or a date alone), UTC.
pub fn parse_datetime(s: &str) -> anyhow::Result<u32> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 {
        bail!("bad time {s:?}: expected \"YYYY-MM-DD HH:MM:SS\"");
    }
    let num = |p: &str, what: &str| -> anyhow::Result<i64> {
        p.parse::<i64>().with_context(|| format!("bad {what} {p:?} in time {s:?}"))
    };
    let (y, m, day) = (num(d[0], "year")?, num(d[1], "month")?, num(d[2], "day")?);
    let (hh, mm, ss) = (num(t[0], "hour")?, num(t[1], "minute")?, num(t[2], "second")?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 59 {
        bail!("time {s:?} is out of range");
    }
    let days = days_from_civil(y, m, day);
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u32::try_from(secs).with_context(|| format!("time {s:?} is outside 1970..2106"))
}

/// Parses `--include-gtids`: MariaDB GTIDs when every item looks like
/// D-S-N, otherwise a MySQL GTID set.
pub fn parse_gtid_filter(s: &str) -> anyhow::Result<GtidFilter> {
    let items: Vec<&str> = s.split(',').map(str::trim).filter(|i| !i.is_empty()).collect();
    let looks_maria = !items.is_empty()
        && items.iter().all(|i| i.split('-').count() == 3 && i.split('-').all(|p| p.parse::<u64>().is_ok()));
    if looks_maria {
        let list = items
            .iter()
            .map(|i| i.parse::<MariaGtid>().with_context(|| format!("bad MariaDB GTID {i:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Ok(GtidFilter::Maria(list));
    }
    let set: GtidSet = s.parse().with_context(|| format!("bad GTID set {s:?}"))?;
    Ok(GtidFilter::Mysql(set))
}

impl DecodeArgs {
    /// Checks the flags and builds the plan.
    pub fn plan(self) -> anyhow::Result<Plan> {
        if let (Some(a), Some(b)) = (self.start_position, self.stop_position) {
            if self.files.len() == 1 && a >= b {
                bail!("--start-position {a} is not before --stop-position {b}");
            }
        }
        let start_datetime = self.start_datetime.as_deref().map(parse_datetime).transpose()?;
        let stop_datetime = self.stop_datetime.as_deref().map(parse_datetime).transpose()?;
        if let (Some(a), Some(b)) = (start_datetime, stop_datetime) {
            if a >= b {
                bail!("--start-datetime is not before --stop-datetime");
            }
        }
        let gtids = self.include_gtids.as_deref().map(parse_gtid_filter).transpose()?;
        let format = match self.format {
            FormatArg::Text => Format::Text,
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Sql => Format::Sql,
        };
        let total: u64 = self.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
        Ok(Plan {
            files: self.files,
            ring: self.ring,
            format,
            options: crate::render::Options { keep_gtids: !self.skip_gtids },
            filters: Filters {
                start_position: self.start_position,
                stop_position: self.stop_position,
                start_datetime,
                stop_datetime,
                gtids,
                database: self.database,
                table: self.table,
            },
            verify_checksums: !self.no_verify_checksums,
            force: self.force,
            progress: std::io::stderr().is_terminal() && total > 64 << 20,
            threads: match self.threads {
                Some(n) => usize::from(n),
                None => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            },
            chunk_size: self.chunk_size.max(4096),
        })
    }
}

/// Runs `gapless decode`.
pub fn run(args: DecodeArgs) -> anyhow::Result<i32> {
    let plan = args.plan()?;
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout);
    let result = match &plan.ring {
        Some(dir) => decode::run_ring(&plan, dir, &mut out),
        None => decode::run(&plan, &mut out),
    };
    let report = match result {
        Ok(r) => r,
        Err(decode::RunError::Render { error: crate::render::RenderError::Io(e), .. })
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            // `| head` closed the pipe: not an error.
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    out.flush().ok();
    if report.skipped > 0 {
        eprintln!("gapless: skipped {} event(s) that failed to decode (--force)", report.skipped);
        return Ok(crate::cli::EXIT_FAILURE);
    }
    for (code, n) in &report.unknown {
        eprintln!("gapless: {n} event(s) of unknown type {code} were shown as opaque events");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<DecodeArgs, clap::Error> {
        let mut full = vec!["gapless", "decode"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).map(|c| match c.command {
            Command::Decode(d) => d,
            other => panic!("parsed as {other:?}"),
        })
    }

    #[test]
    fn defaults() {
        let a = parse(&["f.000001"]).unwrap();
        assert_eq!(a.format, FormatArg::Text);
        let plan = a.plan().unwrap();
        assert!(plan.verify_checksums);
        assert!(!plan.force);
    }

    #[test]
    fn each_flag() {
        let a = parse(&[
            "--format",
            "jsonl",
            "--start-position",
            "4",
            "--stop-position",
            "900",
            "--start-datetime",
            "2024-01-01 00:00:00",
            "--stop-datetime",
            "2024-01-02",
            "--include-gtids",
            "0-1-5,0-1-6",
            "--database",
            "shop",
            "--table",
            "orders",
            "--no-verify-checksums",
            "--force",
            "--skip-gtids",
            "--threads",
            "3",
            "a",
            "b",
        ])
        .unwrap();
        let plan = a.plan().unwrap();
        assert_eq!(plan.format, Format::Jsonl);
        assert_eq!(plan.filters.start_position, Some(4));
        assert_eq!(plan.filters.stop_position, Some(900));
        assert_eq!(plan.filters.start_datetime, Some(1_704_067_200));
        assert_eq!(plan.filters.stop_datetime, Some(1_704_153_600));
        assert!(matches!(plan.filters.gtids, Some(GtidFilter::Maria(ref l)) if l.len() == 2));
        assert_eq!(plan.filters.database.as_deref(), Some("shop"));
        assert_eq!(plan.filters.table.as_deref(), Some("orders"));
        assert!(!plan.verify_checksums && plan.force);
        assert!(!plan.options.keep_gtids);
        assert_eq!(plan.threads, 3);
        assert_eq!(plan.files.len(), 2);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--format", "xml", "f"]).is_err());
        assert!(parse(&[]).is_err(), "a file is required");
        assert!(parse(&["--ring", "r", "f"]).is_err(), "a ring or files");
        assert!(parse(&["--ring", "r"]).unwrap().plan().unwrap().ring.is_some());
        assert!(parse(&["--start-position", "x", "f"]).is_err());
        assert!(parse(&["--threads", "0", "f"]).is_err());
        assert!(parse(&["--start-position", "100", "--stop-position", "50", "f"]).unwrap().plan().is_err());
        assert!(parse(&["--start-datetime", "2024-13-01 00:00:00", "f"]).unwrap().plan().is_err());
        assert!(parse(&["--include-gtids", "not-a-gtid", "f"]).unwrap().plan().is_err());
    }

    #[test]
    fn mysql_gtid_sets() {
        let f = parse_gtid_filter("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5").unwrap();
        assert!(matches!(f, GtidFilter::Mysql(_)));
    }
}
