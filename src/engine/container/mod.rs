//! The daemon's container supervisor (tokio): container records and their state on disk,
//! create/start/stop/kill/wait/remove, restart policies with Docker's back-off, health
//! checks, exec, logs, events, and re-adopting running shims after a daemon restart.
//!
//! Docker's API models (`bollard_stubs`, API v1.41) are the vocabulary: the API layer passes
//! them through unchanged, so there is one set of types.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bollard_stubs::models::{
    ContainerConfig, ContainerCreateResponse, ContainerInspectResponse, ContainerSummaryInner,
    ContainerTopResponse, ContainerWaitResponse, ExecInspectResponse, HostConfig,
    SystemEventsResponse,
};
use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWrite;
use tokio::sync::broadcast;

use crate::engine::image::registry::RegistryConfig;
use crate::engine::image::service::ImageService;

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
}

impl Engine {
    /// Opens the state under `config.root`/`run_root`, re-adopts running shims, records
    /// containers that exited meanwhile, and applies restart policies.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        let _ = config;
        todo!("issue 4 engine")
    }

    pub fn images(&self) -> &ImageService {
        &self.images
    }

    pub async fn create(
        &self,
        name: Option<&str>,
        body: CreateContainer,
    ) -> Result<ContainerCreateResponse, EngineError> {
        let _ = (name, body);
        todo!()
    }

    pub async fn start(&self, id: &str) -> Result<(), EngineError> {
        let _ = id;
        todo!()
    }

    /// `signal`: the container's StopSignal when None; `timeout`: its StopTimeout (10 s).
    pub async fn stop(
        &self,
        id: &str,
        timeout_secs: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), EngineError> {
        let _ = (id, timeout_secs, signal);
        todo!()
    }

    pub async fn restart(&self, id: &str, timeout_secs: Option<i64>) -> Result<(), EngineError> {
        let _ = (id, timeout_secs);
        todo!()
    }

    /// `signal`: `SIGKILL` when None; names (`TERM`, `SIGTERM`) or numbers.
    pub async fn kill(&self, id: &str, signal: Option<&str>) -> Result<(), EngineError> {
        let _ = (id, signal);
        todo!()
    }

    pub async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<ContainerWaitResponse, EngineError> {
        let _ = (id, condition);
        todo!()
    }

    pub async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse, EngineError> {
        let _ = id;
        todo!()
    }

    pub async fn list(
        &self,
        options: &ListOptions,
    ) -> Result<Vec<ContainerSummaryInner>, EngineError> {
        let _ = options;
        todo!()
    }

    pub async fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), EngineError> {
        let _ = (id, force, volumes);
        todo!()
    }

    pub async fn top(
        &self,
        id: &str,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse, EngineError> {
        let _ = (id, ps_args);
        todo!()
    }

    pub async fn logs(&self, id: &str, options: &LogsOptions) -> Result<Logs, EngineError> {
        let _ = (id, options);
        todo!()
    }

    /// `docker attach` / `run -i`: stdin goes to the container, output is live from now.
    pub async fn attach(&self, id: &str, stdin: bool) -> Result<Session, EngineError> {
        let _ = (id, stdin);
        todo!()
    }

    pub async fn exec_create(&self, id: &str, config: ExecConfig) -> Result<String, EngineError> {
        let _ = (id, config);
        todo!()
    }

    pub async fn exec_start(
        &self,
        exec_id: &str,
        options: &ExecStartOptions,
    ) -> Result<Session, EngineError> {
        let _ = (exec_id, options);
        todo!()
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspectResponse, EngineError> {
        let _ = exec_id;
        todo!()
    }

    /// Live events from now on; the API filters and stops at `until`.
    pub fn events(&self) -> broadcast::Receiver<SystemEventsResponse> {
        todo!()
    }

    /// Recent events kept for `since` (Docker keeps the last 256).
    pub fn past_events(&self) -> Vec<SystemEventsResponse> {
        todo!()
    }

    /// `rmi`: refused (409) while a container uses the image, unless `force`.
    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
    ) -> Result<crate::engine::image::service::Removed, EngineError> {
        let _ = (name, force);
        todo!()
    }
}
