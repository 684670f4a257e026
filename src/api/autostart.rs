//! The CLI's way to the daemon: connect, or — when nobody listens on the socket — start
//! `berth daemon` in the background (its own session, output to `<run_root>/daemon.log`)
//! and wait for it. A lock on `<run_root>/daemon.lock` keeps concurrent CLIs from starting
//! two daemons.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use super::client::{Client, ClientError, Ping};

/// How long a freshly started daemon may take to answer `/_ping`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon a CLI wants, and how to start it.
#[derive(Debug, Clone)]
pub struct Target {
    pub socket: PathBuf,
    pub root: PathBuf,
    pub run_root: PathBuf,
    /// Global flags a daemon started on demand gets besides `--root`, `--run-root` and
    /// `--host` (registry settings).
    pub daemon_args: Vec<OsString>,
    /// Refuse a daemon that serves another root (off when the user named the socket).
    pub check_root: bool,
}

fn check_root(target: &Target, ping: &Ping) -> Result<(), ClientError> {
    let (true, Some(served)) = (target.check_root, ping.root.as_ref()) else {
        return Ok(());
    };
    let wanted = target
        .root
        .canonicalize()
        .or_else(|_| std::path::absolute(&target.root))
        .unwrap_or_else(|_| target.root.clone());
    if *served == wanted {
        Ok(())
    } else {
        Err(ClientError::WrongRoot {
            socket: target.socket.clone(),
            served: served.clone(),
            wanted,
        })
    }
}

/// How long a running daemon may take to answer `/_ping`.
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// `/_ping`, bounded: a hung daemon is an error, not a hung CLI.
async fn ping(client: &Client) -> Result<Ping, ClientError> {
    tokio::time::timeout(PING_TIMEOUT, client.ping())
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Http {
                socket: client.socket().to_path_buf(),
                detail: format!("no answer to /_ping within {} s", PING_TIMEOUT.as_secs()),
            })
        })
}

/// A client for the target's daemon, started first if none runs.
pub async fn connect_or_start(target: &Target) -> Result<Client, ClientError> {
    let client = Client::new(&target.socket);
    match ping(&client).await {
        Ok(p) => return check_root(target, &p).map(|()| client),
        Err(e) if e.is_absent() => {}
        Err(e) => return Err(e),
    }
    let run_root = target.run_root.clone();
    let lock = tokio::task::spawn_blocking(move || lock_start(&run_root))
        .await
        .map_err(|e| ClientError::Autostart(e.to_string()))??;
    // Another CLI may have started one while we waited for the lock.
    match ping(&client).await {
        Ok(p) => return check_root(target, &p).map(|()| client),
        Err(e) if e.is_absent() => {}
        Err(e) => return Err(e),
    }
    let mut child = spawn_daemon(target)?;
    let deadline = Instant::now() + START_TIMEOUT;
    let log = target.run_root.join("daemon.log");
    loop {
        match ping(&client).await {
            Ok(p) => {
                drop(lock);
                return check_root(target, &p).map(|()| client);
            }
            Err(e) if !e.is_absent() => return Err(e),
            Err(_) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ClientError::Autostart(format!(
                "the daemon exited ({status}) before answering; {}",
                log_tail(&log)
            )));
        }
        if Instant::now() > deadline {
            return Err(ClientError::Autostart(format!(
                "no answer on {} after {} s; {}",
                target.socket.display(),
                START_TIMEOUT.as_secs(),
                log_tail(&log)
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn lock_start(run_root: &Path) -> Result<std::fs::File, ClientError> {
    let fail = |what: &str, e: std::io::Error| {
        ClientError::Autostart(format!("{what} {}: {e}", run_root.display()))
    };
    std::fs::create_dir_all(run_root).map_err(|e| fail("creating", e))?;
    let path = run_root.join("daemon.lock");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| fail("opening the lock in", e))?;
    flock(&file, FlockOperation::LockExclusive)
        .map_err(|e| fail("locking daemon.lock in", e.into()))?;
    Ok(file)
}

fn spawn_daemon(target: &Target) -> Result<std::process::Child, ClientError> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let exe = std::env::current_exe()
        .map_err(|e| ClientError::Autostart(format!("finding the berth executable: {e}")))?;
    let log_path = target.run_root.join("daemon.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| ClientError::Autostart(format!("{}: {e}", log_path.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| ClientError::Autostart(format!("{}: {e}", log_path.display())))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(absolute(&target.root))
        .arg("--run-root")
        .arg(absolute(&target.run_root))
        .arg("--host")
        .arg(absolute(&target.socket))
        .args(&target.daemon_args)
        .arg("daemon")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: setsid is async-signal-safe; the child execs right after.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| ClientError::Autostart(format!("spawning berth daemon: {e}")))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    if tail.is_empty() {
        format!("see {}", path.display())
    } else {
        format!("{}:\n{tail}", path.display())
    }
}
