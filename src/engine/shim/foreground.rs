//! `berth shim run` and `berth shim exec`: a container (or an exec) in the foreground with
//! this process's stdio, for tests, benchmarks and the daemon's exec. Single-threaded, like
//! every shim: the runtime forks from here.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::engine::runtime::spec::{ContainerSpec, ShimState};
use crate::engine::runtime::{self, ContainerStdio, ExecSpec, RuntimeError};

/// Why a foreground shim could not do its job, with the exit code it leaves with.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 125,
        }
    }
}

impl From<RuntimeError> for Failure {
    fn from(e: RuntimeError) -> Failure {
        Failure {
            code: e.exit_code().clamp(0, 255) as u8,
            message: e.to_string(),
        }
    }
}

fn report(cmd: &str, r: Result<i32, Failure>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(f) => {
            eprintln!("berth shim {cmd}: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Failure> {
    let bytes =
        std::fs::read(path).map_err(|e| Failure::new(format!("read {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Failure::new(format!("parse {}: {e}", path.display())))
}

/// The process SIGINT/SIGTERM are forwarded to (0: none yet).
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

fn signal_mask(how: libc::c_int) {
    // SAFETY: a local sigset and sigprocmask with valid arguments.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

/// From now on the signals we would die of go to `pid` instead (pending ones included).
fn forward_signals_to(pid: i32) {
    FORWARD_TO.store(pid, Ordering::Relaxed);
    // SAFETY: installing an async-signal-safe handler.
    unsafe {
        for s in FORWARDED {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(s, &sa, std::ptr::null_mut());
        }
    }
    signal_mask(libc::SIG_UNBLOCK);
}

fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own, or -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn own_stdio() -> io::Result<ContainerStdio> {
    Ok(ContainerStdio {
        stdin: Some(dup_cloexec(0)?),
        stdout: dup_cloexec(1)?,
        stderr: dup_cloexec(2)?,
    })
}

/// A pty from the devpts instance whose `ptmx` is given: (master, slave). The slave is
/// opened through the master (TIOCGPTPEER), so no path in the other namespace is needed.
fn open_pty(ptmx: &Path) -> io::Result<(OwnedFd, OwnedFd)> {
    let master: OwnedFd = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(ptmx)?
        .into();
    // SAFETY: ioctls on a descriptor we own, with the argument types they expect.
    unsafe {
        let unlock: libc::c_int = 0;
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(io::Error::last_os_error());
        }
        let slave = libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if slave < 0 {
            return Err(io::Error::last_os_error());
        }
        // Our terminal's size, when we have one.
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
        Ok((master, OwnedFd::from_raw_fd(slave)))
    }
}

fn pty_stdio(slave: OwnedFd) -> io::Result<ContainerStdio> {
    Ok(ContainerStdio {
        stdin: Some(slave.try_clone()?),
        stdout: slave.try_clone()?,
        stderr: slave,
    })
}

/// Our terminal in raw mode while a pty is relayed (restored on drop).
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enter() -> RawMode {
        // SAFETY: termios calls on fd 0 with a local struct.
        unsafe {
            if libc::isatty(0) != 1 {
                return RawMode(None);
            }
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return RawMode(None);
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(0, libc::TCSANOW, &raw);
            RawMode(Some(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restoring the attributes read in `enter`.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Copies our stdin to the pty master and the master to our stdout until `pid` exits (then
/// drains what the process wrote last).
fn relay(master: &OwnedFd, pid: i32) -> io::Result<()> {
    let pidfd = pidfd_open(pid)?;
    let mut master_file = File::from(master.try_clone()?);
    let mut stdout = io::stdout().lock();
    let mut stdin_open = true;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[0].revents != 0 {
            // SAFETY: reading into our buffer from fd 0.
            let r = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                stdin_open = false;
            } else {
                master_file.write_all(&buf[..r as usize])?;
            }
        }
        if fds[1].revents != 0 {
            match master_file.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(r) => {
                    stdout.write_all(&buf[..r])?;
                    stdout.flush()?;
                }
                // EIO: every slave descriptor is closed.
                Err(_) => return Ok(()),
            }
        }
        if fds[2].revents != 0 {
            // SAFETY: O_NONBLOCK on a descriptor we own, so the drain cannot hang on a
            // slave held open by a background process.
            unsafe {
                let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
            while let Ok(r) = master_file.read(&mut buf) {
                if r == 0 {
                    break;
                }
                stdout.write_all(&buf[..r])?;
            }
            stdout.flush()?;
            return Ok(());
        }
    }
}

fn wait_exit_code(pid: i32) -> Result<i32, Failure> {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(runtime::exit_code(status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(Failure::new(format!("waitpid {pid}: {e}")));
        }
    }
}

/// Atomic for readers (temp + rename) but not fsync'd: shim.json describes live processes,
/// so surviving a crash of the machine is worthless, and an fsync costs 3–12 ms here.
fn write_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `berth shim run --bundle B`.
pub fn main_run(bundle: &Path) -> ExitCode {
    report("run", run(bundle))
}

fn run(bundle: &Path) -> Result<i32, Failure> {
    let spec: ContainerSpec = read_json(&bundle.join("spec.json"))?;
    // Blocked until the container exists, so a ^C in between is forwarded, not fatal.
    signal_mask(libc::SIG_BLOCK);
    let (stdio, master) = if spec.process.tty {
        let (master, slave) = open_pty(Path::new("/dev/ptmx"))
            .map_err(|e| Failure::new(format!("allocate a pty: {e}")))?;
        let stdio = pty_stdio(slave).map_err(|e| Failure::new(format!("dup the pty: {e}")))?;
        (stdio, Some(master))
    } else {
        (
            own_stdio().map_err(|e| Failure::new(format!("dup stdio: {e}")))?,
            None,
        )
    };
    let started = runtime::start(&spec, stdio)?;
    let pid = started.init_pid;
    let shim_json = bundle.join("shim.json");
    let state = ShimState {
        shim_pid: std::process::id() as i32,
        init_pid: pid,
        init_start_ticks: started.init_start_ticks,
        shim_start_ticks: runtime::start_ticks(std::process::id() as i32).unwrap_or(0),
        started_at: now_rfc3339(),
    };
    let written = serde_json::to_vec(&state)
        .map_err(io::Error::other)
        .and_then(|b| write_replace(&shim_json, &b));
    forward_signals_to(pid);
    if let Err(e) = written {
        eprintln!("berth shim run: write {}: {e}", shim_json.display());
    }
    if let Some(master) = &master {
        let _raw = RawMode::enter();
        if let Err(e) = relay(master, pid) {
            eprintln!("berth shim run: pty relay: {e}");
        }
    }
    let code = wait_exit_code(pid);
    FORWARD_TO.store(0, Ordering::Relaxed);
    let _ = std::fs::remove_file(&shim_json);
    match runtime::finish(&spec) {
        Ok(true) => eprintln!("berth shim run: the container was OOM-killed"),
        Ok(false) => {}
        Err(e) => eprintln!("berth shim run: {e}"),
    }
    code
}

/// `berth shim exec --bundle B --spec JSON`.
pub fn main_exec(bundle: &Path, spec_json: &str) -> ExitCode {
    report("exec", run_exec(bundle, spec_json))
}

fn run_exec(bundle: &Path, spec_json: &str) -> Result<i32, Failure> {
    let exec: ExecSpec = serde_json::from_str(spec_json)
        .map_err(|e| Failure::new(format!("parse the exec spec: {e}")))?;
    let spec: ContainerSpec = read_json(&bundle.join("spec.json"))?;
    let state: ShimState = read_json(&bundle.join("shim.json"))?;
    let init = state.init_pid;
    match runtime::start_ticks(init) {
        Ok(t) if t == state.init_start_ticks => {}
        _ => {
            return Err(Failure::new(format!(
                "container {} is not running (pid {init} is gone)",
                spec.id
            )))
        }
    }
    signal_mask(libc::SIG_BLOCK);
    let (stdio, master) = if exec.tty {
        // The container's own devpts instance, so the process sees its pty in /dev/pts.
        let ptmx = format!("/proc/{init}/root/dev/ptmx");
        let (master, slave) = open_pty(Path::new(&ptmx))
            .map_err(|e| Failure::new(format!("allocate a pty from {ptmx}: {e}")))?;
        let stdio = pty_stdio(slave).map_err(|e| Failure::new(format!("dup the pty: {e}")))?;
        (stdio, Some(master))
    } else {
        (
            own_stdio().map_err(|e| Failure::new(format!("dup stdio: {e}")))?,
            None,
        )
    };
    let pid = runtime::exec(&spec, init, &exec, stdio)?;
    forward_signals_to(pid);
    if let Some(master) = &master {
        let _raw = RawMode::enter();
        if let Err(e) = relay(master, pid) {
            eprintln!("berth shim exec: pty relay: {e}");
        }
    }
    wait_exit_code(pid)
}
