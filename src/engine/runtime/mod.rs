//! The container runtime: turns a [`spec::ContainerSpec`] into a running, isolated process
//! (clone3 with new pid/mount/uts/ipc/cgroup namespaces, a joined network namespace, an
//! overlay root with pivot_root, cgroup limits, capabilities, seccomp, rlimits), and enters a
//! running container for exec.
//!
//! Everything here forks; call it only from a single-threaded process (`berth shim`), never
//! from the tokio daemon.

pub mod cgroup;
pub mod security;
pub mod spec;

use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

pub use spec::ContainerSpec;

/// The container process's standard streams. With a tty, all three are the pty's slave side.
pub struct ContainerStdio {
    /// None: /dev/null.
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// A container whose process has successfully exec'd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The container's pid 1 as the host sees it; a child of the calling process.
    pub init_pid: i32,
    /// Field 22 of /proc/<pid>/stat.
    pub init_start_ticks: u64,
}

/// A process to run inside a running container (`docker exec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub args: Vec<String>,
    /// Added to (and overriding) the container's env.
    pub env: Vec<String>,
    /// Empty: the container's user.
    pub user: String,
    /// Empty: the container's working dir.
    pub cwd: String,
    pub tty: bool,
    pub privileged: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The user's process could not be started; `exit_code` is Docker's (127 not found,
    /// 126 not executable, 128 other).
    #[error("{message}")]
    Exec { message: String, exit_code: i32 },
    #[error("container {id}: {message}")]
    Setup { id: String, message: String },
    #[error("cgroup {path}: {message}")]
    Cgroup { path: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Creates the container's cgroup, clones its pid 1 into fresh namespaces, sets it up and
/// waits until the user's process has exec'd (or reports why it could not).
pub fn start(spec: &ContainerSpec, stdio: ContainerStdio) -> Result<Started, RuntimeError> {
    let _ = (spec, stdio);
    todo!("issue 4 runtime")
}

/// After the caller reaped pid 1: whether the cgroup recorded an OOM kill; then removes the
/// cgroup (retrying while the kernel finishes tearing the namespace down).
pub fn finish(spec: &ContainerSpec) -> Result<bool, RuntimeError> {
    let _ = spec;
    todo!("issue 4 runtime")
}

/// Starts `exec` inside the running container whose pid 1 is `init_pid`: joins its
/// namespaces and cgroup, applies user, capabilities, no_new_privs and seccomp as the
/// container has them, and returns the new process's host pid (a child of the caller).
pub fn exec(
    spec: &ContainerSpec,
    init_pid: i32,
    exec: &ExecSpec,
    stdio: ContainerStdio,
) -> Result<i32, RuntimeError> {
    let _ = (spec, init_pid, exec, stdio);
    todo!("issue 4 runtime")
}

/// Host pids of every process in the container's cgroup (for `top`).
pub fn pids(spec: &ContainerSpec) -> Result<Vec<i32>, RuntimeError> {
    let _ = spec;
    todo!("issue 4 runtime")
}
