use std::process::ExitCode;

use clap::Parser;

// Loading a large project is allocation-bound; mimalloc roughly halves that cost.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Each container's monitor runs for its lifetime: keep the CLI parser out of it.
    if let Some(code) = berth::engine::shim::start_fast_path() {
        return code;
    }
    berth::cli::run(berth::cli::Cli::parse())
}
