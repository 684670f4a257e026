use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    berth::cli::run(berth::cli::Cli::parse())
}
