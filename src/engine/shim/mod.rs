//! `berth shim`: one small single-threaded monitor per container, re-exec'd by the daemon and
//! double-forked so it outlives it (conmon / containerd-shim style). It starts the container
//! through [`crate::engine::runtime`], holds its stdio (and pty), writes the json-file log,
//! serves stdin on `attach.sock`, reaps pid 1 and records `exit.json`.
//!
//! Both ends of the daemon ↔ shim protocol live here: [`launch`] is what the daemon calls.
//!
//! The contract, on disk and on sockets:
//! - in: `<bundle>/spec.json` ([`ContainerSpec`](crate::engine::runtime::spec::ContainerSpec));
//! - the report: one [`ShimReport`] JSON line on the shim's stdout, then stdout closes;
//! - `<bundle>/shim.json` ([`ShimState`]) once the container runs: how a later daemon finds the
//!   shim and pid 1 again (pids checked against their start ticks);
//! - `<bundle>/shim.log`: the shim's stderr (startup failures, late warnings);
//! - `<bundle>/attach.sock` (0600) while the container runs: bytes a client writes go to the
//!   container's stdin (or pty) when it has one (`open_stdin`); a client's EOF closes that stdin
//!   when `stdin_once`. Clients are closed at once when there is no stdin to feed. Output is not
//!   sent back: attach follows the log ([`logread`]).
//! - SIGTERM / SIGINT to the shim are forwarded to pid 1;
//! - `<state_dir>/exit.json` ([`ExitState`](crate::engine::runtime::spec::ExitState)) last,
//!   after the log is complete and the cgroup removed; then `attach.sock` goes and the shim
//!   exits.

mod foreground;
pub mod logfile;
pub mod logread;
mod monitor;

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::ForkResult;

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
///
/// The shim's stderr goes to `<bundle>/shim.log` (kept by the monitor for late diagnostics);
/// when the shim dies without reporting, its content is the error message.
pub fn launch(exe: &Path, bundle: &Path) -> Result<ShimState, ShimError> {
    launch_with_timeout(exe, bundle, REPORT_TIMEOUT)
}

/// How long a shim may take to start its container and report.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// [`launch`] with another report timeout.
pub fn launch_with_timeout(
    exe: &Path,
    bundle: &Path,
    timeout: Duration,
) -> Result<ShimState, ShimError> {
    let protocol = |message: String| ShimError::Protocol {
        bundle: bundle.display().to_string(),
        message,
    };
    let log_path = bundle.join("shim.log");
    let stderr = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| protocol(format!("cannot create {}: {e}", log_path.display())))?;
    let mut child = Command::new(exe)
        .args(["shim", "start", "--bundle"])
        .arg(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| protocol(format!("cannot run {}: {e}", exe.display())))?;
    let pipe = child.stdout.take();
    // The first process exits as soon as it has forked the monitor.
    let status = child
        .wait()
        .map_err(|e| protocol(format!("waiting for the shim: {e}")))?;
    let line = match pipe {
        Some(pipe) => read_report(pipe, timeout),
        None => Ok(Vec::new()),
    };
    let died = |what: &str| {
        let stderr = fs::read(&log_path).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr[..stderr.len().min(4096)]);
        let stderr = stderr.trim();
        let status = if status.success() {
            String::new()
        } else {
            format!(" ({status})")
        };
        if stderr.is_empty() {
            protocol(format!("{what}{status}"))
        } else {
            protocol(format!("{what}{status}: {stderr}"))
        }
    };
    let line = match line {
        Ok(line) if line.is_empty() => return Err(died("exited without reporting")),
        Ok(line) => line,
        Err(e) => return Err(died(&e)),
    };
    match serde_json::from_slice::<ShimReport>(&line) {
        Ok(ShimReport::Started(state)) => Ok(state),
        Ok(ShimReport::Failed { message, exit_code }) => {
            Err(ShimError::Start { message, exit_code })
        }
        Err(e) => Err(protocol(format!(
            "unreadable report {:?}: {e}",
            String::from_utf8_lossy(&line)
        ))),
    }
}

/// Reads one `\n`-terminated line from the report pipe within `timeout`; empty at EOF.
fn read_report(pipe: ChildStdout, timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let mut line = Vec::new();
    let mut pipe = pipe;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no report within {} s", timeout.as_secs()));
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::Error::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("waiting for the report: {e}")),
        }
        let mut buf = [0u8; 4096];
        match pipe.read(&mut buf) {
            Ok(0) => return Ok(Vec::new()),
            Ok(n) => {
                line.extend_from_slice(&buf[..n]);
                if let Some(i) = line.iter().position(|&b| b == b'\n') {
                    line.truncate(i);
                    return Ok(line);
                }
                if line.len() > 1 << 20 {
                    return Err("report line too long".into());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the report: {e}")),
        }
    }
}

/// `berth shim start --bundle <B>` recognised before the CLI parser runs: the monitor lives as
/// long as its container, and the full command-line parser would leave ~150 KB of heap and
/// stack behind in every shim. The daemon always launches it with exactly these arguments.
pub fn start_fast_path() -> Option<std::process::ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let (Some(a), Some(b), Some(c), Some(bundle), None) = (
        args.next(),
        args.next(),
        args.next(),
        args.next(),
        args.next(),
    ) else {
        return None;
    };
    (a == "shim" && b == "start" && c == "--bundle").then(|| main_start(Path::new(&bundle)))
}

/// `berth shim start --bundle B`: double-fork, start the container, report, monitor.
///
/// This process is fresh from exec and single-threaded, so forking here is sound. It leaves
/// the daemon's session (`setsid`) and forks the monitor, which is then no session leader
/// (so it can never acquire a controlling terminal) and is reparented to init when this
/// process exits — the daemon may die at any time without taking containers with it.
pub fn main_start(bundle: &Path) -> std::process::ExitCode {
    if let Err(e) = nix::unistd::setsid() {
        eprintln!("berth shim: setsid: {e}");
        return std::process::ExitCode::FAILURE;
    }
    // SAFETY: single-threaded (see above); the child continues in ordinary Rust code.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { .. }) => std::process::ExitCode::SUCCESS,
        Ok(ForkResult::Child) => {
            // Do not pin the daemon's working directory (a mount point, maybe).
            let _ = std::env::set_current_dir("/");
            monitor::run(bundle)
        }
        Err(e) => {
            eprintln!("berth shim: fork: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `berth shim run --bundle B`: run the container in the foreground with this process's
/// stdio; exits with the container's exit code (for tests and benchmarks of the runtime).
pub fn main_run(bundle: &Path) -> std::process::ExitCode {
    foreground::main_run(bundle)
}

/// `berth shim exec --bundle B --spec JSON`: run an [`crate::engine::runtime::ExecSpec`] in
/// the running container (its `shim.json` names pid 1) with this process's stdio, or a pty
/// relayed to it when `tty`; exits with the process's exit code.
pub fn main_exec(bundle: &Path, spec_json: &str) -> std::process::ExitCode {
    foreground::main_exec(bundle, spec_json)
}
