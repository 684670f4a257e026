//! The monitor: the long-lived half of `berth shim start`. It starts the container, reports
//! once on its stdout, then, single-threaded around one `poll(2)`, copies the container's
//! output into the json-file log, relays `attach.sock` clients to the container's stdin, reaps
//! pid 1 (signalfd) and records `exit.json`. Small on purpose: no threads, no async runtime,
//! buffers only while there is data.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::signal::{kill, signal, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, Pid};

use super::logfile::{rfc3339_nano, LineSplitter, LogStream, LogWriter};
use super::ShimReport;
use crate::engine::image::fsutil::write_atomic;
use crate::engine::runtime::spec::{ContainerSpec, ExitState, ShimState};
use crate::engine::runtime::{self, ContainerStdio, RuntimeError};

/// How long output may keep flowing after pid 1 exited (only processes outside the container's
/// pid namespace, e.g. with `pid: host`, can hold the pipes open that long).
const DRAIN: Duration = Duration::from_secs(2);
/// Read size for the container's output; at most one line piece is buffered beyond it.
const READ_SIZE: usize = 16 * 1024;
const MAX_CLIENTS: usize = 16;
/// Docker's time for "never started".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Runs the monitor for `<bundle>/spec.json`; returns when the container is gone.
pub(super) fn run(bundle: &Path) -> ExitCode {
    let spec = match read_spec(bundle) {
        Ok(spec) => spec,
        Err(message) => {
            eprintln!("berth shim: {message}");
            return ExitCode::FAILURE;
        }
    };
    let (state_dir, id) = (spec.state_dir.clone(), spec.id.clone());
    match Monitor::start(bundle, spec) {
        Ok(mut m) => {
            report(&ShimReport::Started(m.state.clone()));
            detach_stdio();
            // Mostly asleep in poll from now on: give back what starting the container took.
            crate::trim::release_unused_memory();
            m.run();
            m.finish();
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let exit = ExitState {
                exit_code: failure.exit_code,
                oom_killed: false,
                started_at: ZERO_TIME.into(),
                finished_at: rfc3339_nano(SystemTime::now()),
                error: Some(failure.message.clone()),
            };
            write_exit(&state_dir, &id, &exit);
            report(&ShimReport::Failed {
                message: failure.message,
                exit_code: failure.exit_code,
            });
            ExitCode::FAILURE
        }
    }
}

fn read_spec(bundle: &Path) -> Result<ContainerSpec, String> {
    let path = bundle.join("spec.json");
    let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("invalid {}: {e}", path.display()))
}

/// The one report line on fd 1 (the daemon's pipe). A daemon that has gone away is not an
/// error: the container runs on and `shim.json` tells the next daemon about it.
fn report(r: &ShimReport) {
    let Ok(mut line) = serde_json::to_vec(r) else {
        return;
    };
    line.push(b'\n');
    let mut out = io::stdout().lock();
    let _ = out.write_all(&line).and_then(|()| out.flush());
}

/// Points stdin and stdout at /dev/null so the daemon's pipe closes; stderr stays (the
/// daemon gave us `shim.log` for late diagnostics).
fn detach_stdio() {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
}

fn write_exit(state_dir: &Path, id: &str, exit: &ExitState) {
    let path = state_dir.join("exit.json");
    let res = serde_json::to_vec_pretty(exit)
        .map_err(|e| e.to_string())
        .and_then(|b| write_atomic(&path, &b, 0o644).map_err(|e| e.to_string()));
    if let Err(e) = res {
        eprintln!("berth shim {}: cannot record the exit: {e}", short(id));
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Why the container did not start, with Docker's exit code for it.
struct Failure {
    message: String,
    exit_code: i32,
}

impl Failure {
    fn setup(message: String) -> Failure {
        Failure {
            message,
            exit_code: 128,
        }
    }
}

impl From<RuntimeError> for Failure {
    fn from(e: RuntimeError) -> Failure {
        match e {
            RuntimeError::Exec { message, exit_code } => Failure { message, exit_code },
            e => Failure::setup(e.to_string()),
        }
    }
}

/// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot).
fn start_ticks(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; fields resume after the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn set_flags(fd: &OwnedFd, nonblock: bool) -> nix::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    if nonblock {
        let fl = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
        fcntl(fd, FcntlArg::F_SETFL(fl | OFlag::O_NONBLOCK))?;
    }
    Ok(())
}

/// One of the container's output streams (a pipe, or the pty master with a tty).
struct Output {
    fd: OwnedFd,
    lines: LineSplitter,
}

/// The shim's ends of the container's stdio.
struct Stdio {
    outputs: Vec<Output>,
    /// Where attached clients' bytes go: the stdin pipe, or the pty master.
    stdin: Option<OwnedFd>,
}

fn make_stdio(spec: &ContainerSpec) -> nix::Result<(ContainerStdio, Stdio)> {
    let p = &spec.process;
    if p.tty {
        let size = Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None)?;
        set_flags(&pty.master, true)?;
        set_flags(&pty.slave, false)?;
        let stdin = if p.open_stdin {
            Some(nix::unistd::dup(&pty.master).and_then(|fd| set_flags(&fd, true).map(|()| fd))?)
        } else {
            None
        };
        let container = ContainerStdio {
            stdin: Some(nix::unistd::dup(&pty.slave)?),
            stdout: nix::unistd::dup(&pty.slave)?,
            stderr: pty.slave,
        };
        let ours = Stdio {
            outputs: vec![Output {
                fd: pty.master,
                lines: LineSplitter::new(LogStream::Stdout),
            }],
            stdin,
        };
        return Ok((container, ours));
    }
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC)?;
    set_flags(&out_r, true)?;
    set_flags(&err_r, true)?;
    let (stdin_r, stdin_w) = if p.open_stdin {
        let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
        set_flags(&w, true)?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let container = ContainerStdio {
        stdin: stdin_r,
        stdout: out_w,
        stderr: err_w,
    };
    let ours = Stdio {
        outputs: vec![
            Output {
                fd: out_r,
                lines: LineSplitter::new(LogStream::Stdout),
            },
            Output {
                fd: err_r,
                lines: LineSplitter::new(LogStream::Stderr),
            },
        ],
        stdin: stdin_w,
    };
    Ok((container, ours))
}

/// `<bundle>/attach.sock`, mode 0600, non-blocking.
fn bind_attach(path: &Path) -> io::Result<UnixListener> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // The socket's mode comes from the umask at bind; never let it be wider than 0600.
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Which descriptor a poll slot stands for.
#[derive(Clone, Copy)]
enum Slot {
    Signals,
    Output(usize),
    Listener,
    Client(usize),
    Stdin,
}

struct Monitor {
    spec: ContainerSpec,
    attach_path: PathBuf,
    state: ShimState,
    signals: SignalFd,
    outputs: Vec<Output>,
    stdin: Option<OwnedFd>,
    /// Client bytes not yet accepted by the container's stdin; clients are not read while
    /// it is non-empty, so a container that does not read its stdin holds them back.
    pending: Vec<u8>,
    listener: Option<UnixListener>,
    clients: Vec<UnixStream>,
    log: LogWriter,
    log_error_reported: bool,
    /// Docker's exit code of pid 1 once reaped.
    exit_code: Option<i32>,
}

impl Monitor {
    /// Everything up to a running container; on failure nothing is left behind but the
    /// returned reason.
    fn start(bundle: &Path, spec: ContainerSpec) -> Result<Monitor, Failure> {
        let log = match LogWriter::open(&spec.log) {
            Ok(log) => log,
            Err(e) => return Err(Failure::setup(e.to_string())),
        };
        let attach_path = bundle.join("attach.sock");
        let listener = match bind_attach(&attach_path) {
            Ok(l) => l,
            Err(e) => {
                let msg = format!("cannot listen on {}: {e}", attach_path.display());
                return Err(Failure::setup(msg));
            }
        };
        let fail = |f: Failure| {
            let _ = fs::remove_file(&attach_path);
            Err(f)
        };
        let (container_stdio, ours) = match make_stdio(&spec) {
            Ok(s) => s,
            Err(e) => return fail(Failure::setup(format!("container stdio: {e}"))),
        };
        // From here on the shim must not die of a stray signal, and must hear about pid 1's
        // exit. (The runtime resets the mask and dispositions in the container.)
        let signals = match setup_signals() {
            Ok(s) => s,
            Err(e) => return fail(Failure::setup(format!("shim signals: {e}"))),
        };
        let started = match runtime::start(&spec, container_stdio) {
            Ok(s) => s,
            Err(e) => return fail(e.into()),
        };
        let started_at = rfc3339_nano(SystemTime::now());
        let init = Pid::from_raw(started.init_pid);

        let state = ShimState {
            shim_pid: std::process::id() as i32,
            init_pid: started.init_pid,
            init_start_ticks: started.init_start_ticks,
            shim_start_ticks: start_ticks("self").unwrap_or(0),
            started_at,
        };
        let state_path = bundle.join("shim.json");
        let written = serde_json::to_vec_pretty(&state)
            .map_err(|e| e.to_string())
            .and_then(|b| write_atomic(&state_path, &b, 0o644).map_err(|e| e.to_string()));
        if let Err(e) = written {
            let f = Failure::setup(format!("cannot record the shim state: {e}"));
            let f = abort(&spec, init, f);
            return fail(f);
        }
        let mut m = Monitor {
            spec,
            attach_path,
            state,
            signals,
            outputs: ours.outputs,
            stdin: ours.stdin,
            pending: Vec::new(),
            listener: Some(listener),
            clients: Vec::new(),
            log,
            log_error_reported: false,
            exit_code: None,
        };
        // pid 1 may have exited before SIGCHLD was routed to the signalfd.
        m.reap();
        Ok(m)
    }

    fn run(&mut self) {
        let mut buf = vec![0u8; READ_SIZE];
        let mut drain_until: Option<Instant> = None;
        loop {
            let mut timeout = PollTimeout::NONE;
            if self.exit_code.is_some() {
                // pid 1 is gone: nobody may write to stdin any more; read what is left.
                self.close_stdin();
                self.listener = None;
                if self.outputs.is_empty() {
                    return;
                }
                let now = Instant::now();
                let until = *drain_until.get_or_insert(now + DRAIN);
                if now >= until {
                    return;
                }
                let ms = (until - now).as_millis().clamp(1, 60_000) as u16;
                timeout = PollTimeout::from(ms);
            }

            let mut slots = Vec::with_capacity(4 + self.clients.len());
            let mut fds = Vec::with_capacity(4 + self.clients.len());
            fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
            slots.push(Slot::Signals);
            for (i, o) in self.outputs.iter().enumerate() {
                fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
                slots.push(Slot::Output(i));
            }
            if let Some(l) = &self.listener {
                fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
                slots.push(Slot::Listener);
            }
            if self.pending.is_empty() {
                for (i, c) in self.clients.iter().enumerate() {
                    fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
                    slots.push(Slot::Client(i));
                }
            } else if let Some(s) = &self.stdin {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
                slots.push(Slot::Stdin);
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    // Cannot happen with valid descriptors; don't spin if it does.
                    self.warn(&format!("poll: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
            let ready: Vec<Slot> = fds
                .iter()
                .zip(&slots)
                .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(_, s)| *s)
                .collect();
            drop(fds);

            // Outputs first (before reaping), clients in reverse so removals keep indices.
            let mut closed_outputs = Vec::new();
            let mut gone_clients = Vec::new();
            for slot in ready.iter().copied() {
                match slot {
                    Slot::Output(i) => {
                        if !self.read_output(i, &mut buf) {
                            closed_outputs.push(i);
                        }
                    }
                    Slot::Client(i) => {
                        if !self.read_client(i) {
                            gone_clients.push(i);
                        }
                    }
                    Slot::Signals | Slot::Listener | Slot::Stdin => {}
                }
            }
            for i in closed_outputs.into_iter().rev() {
                self.outputs.remove(i);
            }
            let stdin_once = self.spec.process.stdin_once;
            for i in gone_clients.into_iter().rev() {
                if i < self.clients.len() {
                    self.clients.remove(i);
                }
                if stdin_once {
                    // `docker run -i` without a tty: the first attach's EOF is the
                    // container's EOF.
                    self.close_stdin();
                }
            }
            for slot in ready {
                match slot {
                    Slot::Signals => self.read_signals(),
                    Slot::Listener => self.accept(),
                    Slot::Stdin => self.flush_stdin(),
                    Slot::Output(_) | Slot::Client(_) => {}
                }
            }
        }
    }

    /// Reads once from output `i`; false at its end.
    fn read_output(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let n = match nix::unistd::read(&self.outputs[i].fd, buf) {
            Ok(n) => n,
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => return true,
            // EIO: the pty master once no slave descriptor is left.
            Err(Errno::EIO) => 0,
            Err(e) => {
                self.warn(&format!("reading the container's output: {e}"));
                0
            }
        };
        let now = rfc3339_nano(SystemTime::now());
        let o = &mut self.outputs[i];
        let res = if n == 0 {
            o.lines.finish(&now, &mut self.log)
        } else {
            o.lines.feed(&buf[..n], &now, &mut self.log)
        };
        if let Err(e) = res {
            self.log_failed(&e.to_string());
        }
        n != 0
    }

    /// Reads once from client `i` into `pending`; false when it has gone.
    fn read_client(&mut self, i: usize) -> bool {
        let mut tmp = [0u8; 4096];
        let Some(c) = self.clients.get_mut(i) else {
            return false;
        };
        match c.read(&mut tmp) {
            Ok(0) => false,
            Ok(n) => {
                self.pending.extend_from_slice(&tmp[..n]);
                self.flush_stdin();
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                true
            }
            Err(_) => false,
        }
    }

    fn flush_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.pending = Vec::new();
            return;
        };
        while !self.pending.is_empty() {
            match nix::unistd::write(fd, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                // EPIPE: the container closed its stdin; nobody will read more.
                Err(_) => {
                    self.close_stdin();
                    return;
                }
            }
        }
        self.pending = Vec::new();
    }

    /// Closes the container's stdin (it reads EOF) and lets attached clients go.
    fn close_stdin(&mut self) {
        self.stdin = None;
        self.pending = Vec::new();
        self.clients.clear();
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        loop {
            match l.accept() {
                Ok((c, _)) => {
                    // Without a stdin to feed (none, or already closed), the client is
                    // closed at once and sees EOF.
                    if self.stdin.is_some()
                        && self.clients.len() < MAX_CLIENTS
                        && c.set_nonblocking(true).is_ok()
                    {
                        self.clients.push(c);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn read_signals(&mut self) {
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => self.reap(),
                    Ok(sig @ (Signal::SIGTERM | Signal::SIGINT)) if self.exit_code.is_none() => {
                        let _ = kill(Pid::from_raw(self.state.init_pid), sig);
                    }
                    _ => {}
                },
                Ok(None) => return,
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    /// Reaps every exited child; notes pid 1's status.
    fn reap(&mut self) {
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == self.state.init_pid => {
                    self.exit_code = Some(code);
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == self.state.init_pid => {
                    self.exit_code = Some(128 + sig as i32);
                }
                Ok(WaitStatus::StillAlive) => return,
                Ok(_) => {}
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    fn finish(mut self) {
        let now = rfc3339_nano(SystemTime::now());
        for o in &mut self.outputs {
            if let Err(e) = o.lines.finish(&now, &mut self.log) {
                self.log_error_reported = true;
                eprintln!("berth shim {}: {e}", short(&self.spec.id));
            }
        }
        let oom_killed = runtime::finish(&self.spec).unwrap_or_else(|e| {
            self.warn(&format!("cleaning up: {e}"));
            false
        });
        let exit = ExitState {
            exit_code: self.exit_code.unwrap_or(255),
            oom_killed,
            started_at: self.state.started_at.clone(),
            finished_at: rfc3339_nano(SystemTime::now()),
            error: None,
        };
        // The cgroup is gone before exit.json appears: a restart may reuse it at once.
        write_exit(&self.spec.state_dir, &self.spec.id, &exit);
        let _ = fs::remove_file(&self.attach_path);
    }

    fn log_failed(&mut self, message: &str) {
        // Once: a full disk would otherwise fill shim.log too.
        if !self.log_error_reported {
            self.log_error_reported = true;
            self.warn(&format!("{message} (further log errors are not reported)"));
        }
    }

    fn warn(&self, message: &str) {
        eprintln!("berth shim {}: {message}", short(&self.spec.id));
    }
}

/// Ignores SIGHUP and SIGPIPE, and routes SIGCHLD, SIGTERM and SIGINT to a signalfd.
fn setup_signals() -> nix::Result<SignalFd> {
    // SAFETY: installing SIG_IGN runs no handler code.
    unsafe {
        signal(Signal::SIGHUP, SigHandler::SigIgn)?;
        signal(Signal::SIGPIPE, SigHandler::SigIgn)?;
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

/// The container started but the shim cannot monitor it: kill and reap it, release its
/// cgroup, and fail the start with `f`.
fn abort(spec: &ContainerSpec, init: Pid, f: Failure) -> Failure {
    let _ = kill(init, Signal::SIGKILL);
    let _ = waitpid(init, None);
    let _ = runtime::finish(spec);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_reads_field_22() {
        let ticks = start_ticks("self").unwrap();
        let again = start_ticks(&std::process::id().to_string()).unwrap();
        assert_eq!(ticks, again);
        assert!(start_ticks("0").is_none());
    }

    #[test]
    fn attach_socket_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attach.sock");
        fs::write(&path, b"stale").unwrap();
        let _l = bind_attach(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        UnixStream::connect(&path).unwrap();
    }
}
