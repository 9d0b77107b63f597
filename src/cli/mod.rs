//! The command line: clap structs (what the user typed) and, per command,
//! the step that turns them into a checked plan before any I/O. Clap types
//! stay in this module.

pub mod decode;

use clap::{Parser, Subcommand};

/// gapless: keeps a MySQL/MariaDB primary's binlog and completes failovers
/// without losing transactions.
#[derive(Debug, Parser)]
#[command(name = "gapless", version, about, long_about = None, propagate_version = true)]
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
}

/// Exit codes: 0 success, 1 the work failed (bad input, I/O), 2 usage error
/// (clap's own).
pub const EXIT_FAILURE: i32 = 1;

/// Runs the parsed command and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Decode(args) => decode::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gapless: error: {e:#}");
            EXIT_FAILURE
        }
    }
}
