//! `berth daemon`: one daemon per run root (a locked pid file), the API socket (a stale one
//! is replaced, a live one refused), the accept loop, and a clean stop on SIGTERM/SIGINT.
//! Containers are left running: their shims are separate processes the next daemon
//! re-adopts.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustix::fs::{flock, FlockOperation};
use sha2::{Digest as _, Sha256};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

use super::routes::{self, State};
use super::DaemonOptions;
use crate::engine::container::{Engine, EngineConfig, EngineError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("another berth daemon{} is running for {} (it holds the lock on {})",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), run_root.display(), lock.display())]
    AlreadyRunning {
        run_root: PathBuf,
        lock: PathBuf,
        pid: Option<i32>,
    },
    #[error("{} is in use: another process is listening on it", .0.display())]
    SocketInUse(PathBuf),
    #[error("{} exists and is not a socket; refusing to replace it", .0.display())]
    NotASocket(PathBuf),
    #[error("opening the engine: {0}")]
    Engine(#[from] EngineError),
    #[error("installing the signal handlers: {0}")]
    Signals(#[source] io::Error),
    #[error("finding the berth executable: {0}")]
    Exe(#[source] io::Error),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DaemonError {
    let path = path.to_path_buf();
    move |source| DaemonError::Io { op, path, source }
}

/// The pid file `<run_root>/daemon.pid`, exclusively locked while the daemon lives.
struct PidFile {
    path: PathBuf,
    _file: File,
}

impl PidFile {
    fn acquire(run_root: &Path) -> Result<PidFile, DaemonError> {
        let path = run_root.join("daemon.pid");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open", &path))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(DaemonError::AlreadyRunning {
                run_root: run_root.to_path_buf(),
                lock: path,
                pid: text.trim().parse().ok(),
            });
        }
        file.set_len(0).map_err(io_err("truncate", &path))?;
        file.rewind().map_err(io_err("rewind", &path))?;
        writeln!(file, "{}", std::process::id()).map_err(io_err("write", &path))?;
        Ok(PidFile { path, _file: file })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked: a daemon starting now finds no file or locks a new one.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The listening socket; removed on drop if it is still the one we bound.
struct Socket {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == self.identity {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn bind(path: &Path) -> Result<(UnixListener, Socket), DaemonError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(DaemonError::NotASocket(path.to_path_buf()))
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(DaemonError::SocketInUse(path.to_path_buf())),
            // Left behind by a daemon that died: nobody listens.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(io_err("remove the stale socket", path))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("probe", path)(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect", path)(e)),
    }
    let listener = UnixListener::bind(path).map_err(io_err("listen on", path))?;
    let socket = Socket {
        path: path.to_path_buf(),
        identity: std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino())),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(io_err("set the mode of", path))?;
    if let Err(e) = std::os::unix::fs::chown(path, Some(0), Some(0)) {
        eprintln!(
            "berth daemon: warning: cannot give {} to root:root: {e}",
            path.display()
        );
    }
    Ok((listener, socket))
}

/// A stable id for `/info`: the same machine and root give the same id.
fn daemon_id(root: &Path) -> String {
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    let mut h = Sha256::new();
    h.update(machine.trim().as_bytes());
    h.update(root.as_os_str().as_encoded_bytes());
    let x = hex::encode(h.finalize());
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// API connections open now, and a counter bumped whenever one opens or closes.
#[derive(Default)]
struct Activity {
    open: AtomicUsize,
    changes: AtomicU64,
}

/// Marks one connection as open for its lifetime.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.open.fetch_add(1, Ordering::Relaxed);
        activity.changes.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(activity))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.changes.fetch_add(1, Ordering::Relaxed);
    }
}

/// How long the API must be quiet before the daemon gives memory back.
const IDLE_TRIM_AFTER: Duration = Duration::from_secs(5);

/// A burst of API calls maps code and grows the heap; once no connection has been open for
/// [`IDLE_TRIM_AFTER`], that memory is released (`crate::trim`). Supervision (exits,
/// restarts, health checks) keeps running and maps back only what it uses.
async fn trim_when_idle(activity: Arc<Activity>) {
    let mut seen = u64::MAX;
    let mut trimmed = u64::MAX;
    loop {
        tokio::time::sleep(IDLE_TRIM_AFTER).await;
        let now = activity.changes.load(Ordering::Relaxed);
        if now == seen && now != trimmed && activity.open.load(Ordering::Relaxed) == 0 {
            let _ = tokio::task::spawn_blocking(crate::trim::release_unused_memory).await;
            trimmed = now;
        }
        seen = now;
    }
}

pub async fn serve(options: DaemonOptions) -> Result<(), DaemonError> {
    // Installed first: a stop request during start-up still ends the daemon cleanly.
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;

    for dir in [&options.root, &options.run_root] {
        std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    let _pid = PidFile::acquire(&options.run_root)?;
    let root = options
        .root
        .canonicalize()
        .map_err(io_err("resolve", &options.root))?;
    let run_root = options
        .run_root
        .canonicalize()
        .map_err(io_err("resolve", &options.run_root))?;
    let exe = std::env::current_exe().map_err(DaemonError::Exe)?;

    let engine = Engine::open(EngineConfig {
        root: root.clone(),
        run_root,
        registry: options.registry.clone(),
        exe,
    })
    .await?;
    let (listener, _socket) = bind(&options.socket)?;
    let state = Arc::new(State {
        engine,
        id: daemon_id(&root),
        root,
        debug: std::env::var_os("BERTH_DEBUG").is_some_and(|v| !v.is_empty() && v != "0"),
    });
    eprintln!(
        "berth daemon: serving {} on {} (pid {})",
        state.root.display(),
        options.socket.display(),
        std::process::id()
    );

    let activity = Arc::new(Activity::default());
    tokio::spawn(trim_when_idle(Arc::clone(&activity)));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = Arc::clone(&state);
                    let busy = Busy::new(&activity);
                    tokio::spawn(async move {
                        let _busy = busy;
                        let service = service_fn(move |req| routes::handle(Arc::clone(&state), req));
                        let conn = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades();
                        if let Err(e) = conn.await {
                            if !e.is_incomplete_message() && !e.is_canceled() {
                                eprintln!("berth daemon: connection: {e}");
                            }
                        }
                    });
                }
                Err(e) => {
                    // Out of descriptors or similar: keep serving the connections we have.
                    eprintln!("berth daemon: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    eprintln!("berth daemon: stopping; containers keep running");
    Ok(())
}
