//! The daemon's HTTP API: a subset of the Docker Engine API v1.41 on a unix socket
//! (`/run/berth/berth.sock`), and the typed client the CLI uses.
//!
//! - `server`: the socket, the accept loop, signals (`berth daemon`).
//! - `routes`: paths to `Engine` calls, Docker's status codes and stream formats.
//! - `stream`: multiplexed stdio frames and JSON-lines streams (both sides).
//! - `client`: the typed client; `autostart`: connect, or start a daemon first.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub mod autostart;
pub mod client;
mod routes;
mod server;
pub mod stream;

pub use client::{Client, ClientError};
pub use server::DaemonError;

/// The API version served (the docker CLI negotiates down to it through `/_ping`).
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.12";
/// `/_ping` response header naming the state root the daemon serves.
pub const ROOT_HEADER: &str = "berth-root";

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
pub fn run_daemon(options: DaemonOptions) -> ExitCode {
    // The daemon allocates little and rarely contends: one malloc arena instead of one per
    // worker thread (each costs a few hundred KiB of touched heap).
    // SAFETY: a plain call, before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-daemon")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth daemon: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(server::serve(options));
    // Followed log streams and hijacked sessions end with the process; don't wait long.
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            ExitCode::from(1)
        }
    }
}
