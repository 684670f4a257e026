//! The daemon's HTTP API: a subset of the Docker Engine API v1.41 on a unix socket
//! (`/run/berth/berth.sock`), and the typed client the CLI uses.

use std::path::PathBuf;

/// `berth daemon` options.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub root: PathBuf,
    pub run_root: PathBuf,
    /// Default `<run_root>/berth.sock`.
    pub socket: PathBuf,
    pub registry: crate::engine::image::registry::RegistryConfig,
}

/// Runs the daemon until SIGTERM/SIGINT; containers keep running after it exits.
pub fn run_daemon(options: DaemonOptions) -> std::process::ExitCode {
    let _ = options;
    todo!("issue 4 api")
}
