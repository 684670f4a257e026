//! `berth shim`: one small single-threaded monitor per container, re-exec'd by the daemon and
//! double-forked so it outlives it (conmon / containerd-shim style). It starts the container
//! through [`crate::engine::runtime`], holds its stdio (and pty), writes the json-file log,
//! serves stdin on `attach.sock`, reaps pid 1 and records `exit.json`.
//!
//! Both ends of the daemon ↔ shim protocol live here: [`launch`] is what the daemon calls.

pub mod logfile;
pub mod logread;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::runtime::spec::ShimState;

/// The one line a shim writes on its report pipe once the container has started or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShimReport {
    Started(ShimState),
    Failed { message: String, exit_code: i32 },
}

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The container could not start (Docker's 127/126/128 in `exit_code`).
    #[error("{message}")]
    Start { message: String, exit_code: i32 },
    #[error("shim for {bundle}: {message}")]
    Protocol { bundle: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Daemon side: re-execs `exe shim start --bundle <bundle>` (the bundle holds `spec.json`),
/// and returns once the shim reports. Blocking; call from `spawn_blocking`.
pub fn launch(exe: &Path, bundle: &Path) -> Result<ShimState, ShimError> {
    let _ = (exe, bundle);
    todo!("issue 4 shim")
}

/// `berth shim start --bundle B`: double-fork, start the container, report, monitor.
pub fn main_start(bundle: &Path) -> std::process::ExitCode {
    let _ = bundle;
    todo!("issue 4 shim")
}

/// `berth shim run --bundle B`: run the container in the foreground with this process's
/// stdio; exits with the container's exit code (for tests and benchmarks of the runtime).
pub fn main_run(bundle: &Path) -> std::process::ExitCode {
    let _ = bundle;
    todo!("issue 4 runtime")
}

/// `berth shim exec --bundle B --spec JSON`: run an [`crate::engine::runtime::ExecSpec`] in
/// the running container (its `shim.json` names pid 1) with this process's stdio, or a pty
/// relayed to it when `tty`; exits with the process's exit code.
pub fn main_exec(bundle: &Path, spec_json: &str) -> std::process::ExitCode {
    let _ = (bundle, spec_json);
    todo!("issue 4 runtime")
}
