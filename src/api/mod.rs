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

/// mimalloc reads its settings before `main`; by default its first allocations fault in
/// 2 MiB huge pages (≈ 20 MB resident for an idle daemon here). A daemon started without
/// the shim's settings re-execs itself with them: same pid, same arguments, ≈ 6 MB.
fn reexec_with_allocator_settings() {
    use std::os::unix::process::CommandExt;
    let settings = crate::engine::shim::SHIM_ALLOCATOR_ENV;
    if settings.iter().all(|(k, _)| std::env::var_os(k).is_some()) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args);
    for (k, v) in settings {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
    // Only returns on failure; the daemon then runs with the default settings.
    let err = cmd.exec();
    eprintln!("berth daemon: warning: cannot re-exec with allocator settings: {err}");
}

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
    reexec_with_allocator_settings();
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
