//! The `gapless` binary: parse, dispatch, exit code.

use clap::Parser;

fn main() {
    let cli = gapless::cli::Cli::parse();
    std::process::exit(gapless::cli::run(cli));
}
