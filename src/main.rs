use std::process::ExitCode;

use clap::Parser;

// Loading a large project is allocation-bound; mimalloc roughly halves that cost.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    berth::cli::run(berth::cli::Cli::parse())
}
