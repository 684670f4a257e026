//! The daemon's container supervisor (tokio): container records and their state on disk,
//! create/start/stop/kill/wait/remove, restart policies with Docker's back-off, health
//! checks, exec, logs, events, and re-adopting running shims after a daemon restart.
//!
//! Docker's API models (`bollard_stubs`, API v1.41) are the vocabulary: the API layer passes
//! them through unchanged, so there is one set of types.

mod create;
mod events;
mod exec;
mod health;
mod inspect;
mod lifecycle;
mod logs;
mod signal;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, Weak};
use std::time::Duration;

use bollard_stubs::models::{
    ContainerConfig, ContainerCreateResponse, ContainerInspectResponse, ContainerSummaryInner,
    ContainerTopResponse, ContainerWaitResponse, ExecInspectResponse, HostConfig,
    SystemEventsResponse,
};
use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWrite;
use tokio::sync::{broadcast, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::engine::image::registry::RegistryConfig;
use crate::engine::image::service::{ImageError, ImageService};
use crate::engine::image::store::StoreError;

use store::{Record, Status};

/// Body of `POST /containers/create` (Docker's `ContainerConfig` plus `HostConfig` and
/// `NetworkingConfig`, which the v1.41 models have no single type for).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateContainer {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(
        rename = "HostConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_config: Option<HostConfig>,
    #[serde(
        rename = "NetworkingConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub networking_config: Option<serde_json::Value>,
}

/// Where the engine keeps state and how it finds its own binary for shims.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `/var/lib/berth`.
    pub root: PathBuf,
    /// `/run/berth`.
    pub run_root: PathBuf,
    pub registry: RegistryConfig,
    /// The berth binary re-exec'd as `berth shim` (the daemon's own executable).
    pub exe: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// 404
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// 404
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// 409
    #[error("{0}")]
    Conflict(String),
    /// 400
    #[error("{0}")]
    InvalidParameter(String),
    /// 304 (already started / already stopped)
    #[error("container already in the requested state")]
    NotModified,
    /// 500
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    #[default]
    NotRunning,
    NextExit,
    Removed,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    /// Docker's filters (`label`, `name`, `id`, `status`, `ancestor`, ...): key → values.
    pub filters: HashMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds (fractions allowed), as Docker's `since`/`until`.
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub timestamps: bool,
    /// None = all.
    pub tail: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    Stdin,
    Stdout,
    Stderr,
}

/// One piece of container output. With `tty`, everything is `Stdout` and the API writes it
/// raw instead of multiplexed.
#[derive(Debug, Clone)]
pub struct OutputChunk {
    pub stream: StdStream,
    pub data: Bytes,
}

pub type OutputStream = Pin<Box<dyn Stream<Item = OutputChunk> + Send>>;

pub struct Logs {
    pub tty: bool,
    pub output: OutputStream,
}

/// Body of `POST /containers/{id}/exec`.
pub use bollard_stubs::models::ExecConfig;

#[derive(Debug, Clone, Default)]
pub struct ExecStartOptions {
    pub detach: bool,
    pub tty: bool,
}

/// A started exec (or attach): write to `stdin`, read `output` until it ends.
pub struct Session {
    pub tty: bool,
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    pub output: OutputStream,
}

/// The engine: images plus containers. One per daemon.
pub struct Engine {
    images: ImageService,
    config: EngineConfig,
    /// Handed to background tasks, which must not keep the engine alive: dropping the last
    /// `Arc<Engine>` stops supervision (the containers keep running under their shims).
    me: Weak<Engine>,
    reg: StdMutex<Registry>,
    events: events::EventBus,
    /// Monitors, restart timers, health checks, exec relays: aborted with the engine.
    tasks: StdMutex<JoinSet<()>>,
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<String, Arc<Container>>,
    /// name (without `/`) → id.
    names: HashMap<String, String>,
    execs: HashMap<String, Arc<exec::Exec>>,
}

/// One container: its record and the supervisor's live state.
pub(crate) struct Container {
    id: String,
    /// Serializes start/stop/restart/remove (kill and wait never take it).
    op: tokio::sync::Mutex<()>,
    rec: StdMutex<Record>,
    rt: StdMutex<Live>,
    wake: watch::Sender<Wake>,
}

/// What the supervisor knows beyond the record (not persisted).
#[derive(Default)]
struct Live {
    /// Bumped at each start: monitors and timers of an older run do nothing.
    generation: u64,
    /// Docker's restart manager: current back-off and the restarts it made.
    backoff: Duration,
    retries: i64,
    /// Docker's ExitOnNext: the next exit must not restart (stop, kill, remove).
    no_restart: bool,
    removing: bool,
    restart_timer: Option<AbortHandle>,
    health: Option<AbortHandle>,
}

/// Broadcast to waiters at each exit and at removal.
#[derive(Debug, Clone, Default)]
struct Wake {
    exits: u64,
    exit_code: i64,
    error: Option<String>,
    removed: bool,
}

fn lock<T>(m: &StdMutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these cannot leave a record half-written in a way the
    // next holder cannot cope with; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Container {
    fn new(rec: Record) -> Arc<Container> {
        let wake = Wake {
            exit_code: rec.state.exit_code,
            ..Wake::default()
        };
        Arc::new(Container {
            id: rec.id.clone(),
            op: tokio::sync::Mutex::new(()),
            rec: StdMutex::new(rec),
            rt: StdMutex::new(Live::default()),
            wake: watch::channel(wake).0,
        })
    }

    fn snapshot(&self) -> Record {
        lock(&self.rec).clone()
    }

    /// Changes the record and persists it.
    fn update<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        let mut rec = lock(&self.rec);
        let r = f(&mut rec);
        if let Err(e) = rec.save() {
            eprintln!("berth: {e}");
        }
        r
    }

    fn status(&self) -> Status {
        lock(&self.rec).state.status
    }
}

impl Engine {
    /// Opens the state under `config.root`/`run_root`, re-adopts running shims, records
    /// containers that exited meanwhile, and applies restart policies.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        for dir in [
            store::containers_dir(&config.root),
            config.run_root.join("containers"),
            config.run_root.join("netns"),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| EngineError::Internal(format!("creating {}: {e}", dir.display())))?;
        }
        let images = ImageService::open(&config.root, config.registry.clone())
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let engine = Arc::new_cyclic(|me| Engine {
            images,
            config,
            me: me.clone(),
            reg: StdMutex::new(Registry::default()),
            events: events::EventBus::new(),
            tasks: StdMutex::new(JoinSet::new()),
        });
        engine.adopt_all().await;
        Ok(engine)
    }

    pub fn images(&self) -> &ImageService {
        &self.images
    }

    pub async fn create(
        &self,
        name: Option<&str>,
        body: CreateContainer,
    ) -> Result<ContainerCreateResponse, EngineError> {
        self.create_container(name, body).await
    }

    pub async fn start(&self, id: &str) -> Result<(), EngineError> {
        let c = self.find(id)?;
        let _op = c.op.lock().await;
        self.start_locked(&c, true).await
    }

    /// `signal`: the container's StopSignal when None; `timeout`: its StopTimeout (10 s).
    pub async fn stop(
        &self,
        id: &str,
        timeout_secs: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), EngineError> {
        let c = self.find(id)?;
        let sig = signal.map(signal::parse).transpose()?;
        let _op = c.op.lock().await;
        self.stop_locked(&c, timeout_secs, sig).await
    }

    pub async fn restart(&self, id: &str, timeout_secs: Option<i64>) -> Result<(), EngineError> {
        let c = self.find(id)?;
        let _op = c.op.lock().await;
        match self.stop_locked(&c, timeout_secs, None).await {
            Ok(()) | Err(EngineError::NotModified) => {}
            Err(e) => return Err(e),
        }
        self.start_locked(&c, true).await?;
        let rec = c.snapshot();
        self.events.container(&rec, "restart", &[]);
        Ok(())
    }

    /// `signal`: `SIGKILL` when None; names (`TERM`, `SIGTERM`) or numbers.
    pub async fn kill(&self, id: &str, signal: Option<&str>) -> Result<(), EngineError> {
        let c = self.find(id)?;
        let sig = match signal {
            None | Some("") => libc::SIGKILL,
            Some(s) => signal::parse(s)?,
        };
        self.kill_container(&c, sig)
    }

    pub async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<ContainerWaitResponse, EngineError> {
        let c = self.find(id)?;
        self.wait_container(&c, condition).await
    }

    pub async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse, EngineError> {
        let c = self.find(id)?;
        Ok(self.inspect_container(&c))
    }

    pub async fn list(
        &self,
        options: &ListOptions,
    ) -> Result<Vec<ContainerSummaryInner>, EngineError> {
        self.list_containers(options)
    }

    pub async fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), EngineError> {
        // No volumes yet: anonymous volumes arrive with issue 5.
        let _ = volumes;
        let c = self.find(id)?;
        self.remove_container(&c, force).await
    }

    pub async fn top(
        &self,
        id: &str,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse, EngineError> {
        let c = self.find(id)?;
        self.top_container(&c, ps_args).await
    }

    pub async fn logs(&self, id: &str, options: &LogsOptions) -> Result<Logs, EngineError> {
        let c = self.find(id)?;
        self.container_logs(&c, options)
    }

    /// `docker attach` / `run -i`: stdin goes to the container, output is live from now.
    pub async fn attach(&self, id: &str, stdin: bool) -> Result<Session, EngineError> {
        let c = self.find(id)?;
        self.attach_container(&c, stdin).await
    }

    pub async fn exec_create(&self, id: &str, config: ExecConfig) -> Result<String, EngineError> {
        let c = self.find(id)?;
        self.create_exec(&c, config)
    }

    pub async fn exec_start(
        &self,
        exec_id: &str,
        options: &ExecStartOptions,
    ) -> Result<Session, EngineError> {
        self.start_exec(exec_id, options).await
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspectResponse, EngineError> {
        self.inspect_exec(exec_id)
    }

    /// Live events from now on; the API filters and stops at `until`.
    pub fn events(&self) -> broadcast::Receiver<SystemEventsResponse> {
        self.events.subscribe()
    }

    /// Recent events kept for `since` (Docker keeps the last 256).
    pub fn past_events(&self) -> Vec<SystemEventsResponse> {
        self.events.past()
    }

    /// `rmi`: refused (409) while a container uses the image, unless `force`.
    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
    ) -> Result<crate::engine::image::service::Removed, EngineError> {
        let record = self.images.get(name).map_err(image_error)?;
        let id = format!("sha256:{}", record.id.hex());
        let users: Vec<Record> = self
            .containers()
            .iter()
            .map(|c| c.snapshot())
            .filter(|r| r.image_id == id)
            .collect();
        let by_name = !record
            .id
            .hex()
            .starts_with(name.trim_start_matches("sha256:"));
        let last_name = record.repo_tags.len() <= 1;
        if let Some(user) = users.first() {
            let short = &user.id[..12];
            let running = users.iter().find(|r| r.state.status.is_active());
            if by_name && !force && last_name {
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {short} is using its referenced image {}",
                    record.id.short()
                )));
            }
            if !by_name {
                if let Some(r) = running {
                    return Err(EngineError::Conflict(format!(
                        "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                        record.id.short(),
                        &r.id[..12]
                    )));
                }
                if !force {
                    return Err(EngineError::Conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is being used by stopped container {short}",
                        record.id.short()
                    )));
                }
            }
            if let (true, Some(r)) = (last_name, running) {
                // Removing the last name would delete the layers under a running container.
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (cannot be forced) - running container {} is using its referenced image {}",
                    &r.id[..12],
                    record.id.short()
                )));
            }
        }
        self.images.remove(name, force).map_err(image_error)
    }

    // ---- helpers shared by the submodules ----

    fn containers(&self) -> Vec<Arc<Container>> {
        lock(&self.reg).by_id.values().cloned().collect()
    }

    /// Docker's lookup: full id, name, then a unique id prefix.
    fn find(&self, key: &str) -> Result<Arc<Container>, EngineError> {
        let reg = lock(&self.reg);
        let key = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = reg.by_id.get(key) {
            return Ok(c.clone());
        }
        if let Some(c) = reg.names.get(key).and_then(|id| reg.by_id.get(id)) {
            return Ok(c.clone());
        }
        if !key.is_empty() {
            let mut hits = reg.by_id.iter().filter(|(id, _)| id.starts_with(key));
            if let Some((_, c)) = hits.next() {
                if hits.next().is_some() {
                    return Err(EngineError::InvalidParameter(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )));
                }
                return Ok(c.clone());
            }
        }
        Err(EngineError::NoSuchContainer(key.to_string()))
    }

    /// Runs `fut` as a supervised task (aborted when the engine goes).
    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) -> AbortHandle {
        let mut tasks = lock(&self.tasks);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(fut)
    }

    fn root(&self) -> &Path {
        &self.config.root
    }
}

fn image_error(e: ImageError) -> EngineError {
    match e {
        ImageError::Store(StoreError::NotFound(name)) => EngineError::NoSuchImage(name),
        ImageError::Reference(e) => EngineError::InvalidParameter(e.to_string()),
        ImageError::InUse(m) => EngineError::Conflict(m),
        e => EngineError::Internal(e.to_string()),
    }
}
