//! The `gapless` binary: parse, dispatch, exit code.

use clap::Parser;

fn main() {
    let args = match gapless::cli::config::expand(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("gapless: error: {e:#}");
            std::process::exit(2);
        }
    };
    let cli = gapless::cli::Cli::parse_from(args);
    std::process::exit(gapless::cli::run(cli));
}
