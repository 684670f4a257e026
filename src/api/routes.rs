//! Request routing and the handlers: the Docker Engine API v1.41 subset berth serves.
//! Handlers translate HTTP (paths, query strings, JSON bodies, hijacked connections) to
//! `Engine` calls and back; Docker's models pass through unchanged.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard_stubs::models::{
    ContainerConfig, CreateImageInfo, ErrorDetail, GraphDriverData, IdResponse, Image,
    ImageDeleteResponseItem, ImageMetadata, ImageRootFs, ImageSummary, ProgressDetail,
    SystemEventsResponse,
};
use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::stream::{self, Body};
use super::{API_VERSION, MIN_API_VERSION};
use crate::engine::container::{
    CreateContainer, Engine, EngineError, ExecConfig, ExecStartOptions, ListOptions, LogsOptions,
    OutputChunk, Session, StdStream, WaitCondition,
};
use crate::engine::image::imagespec::Platform;
use crate::engine::image::reference::Reference;
use crate::engine::image::registry::RegistryError;
use crate::engine::image::service::{ImageError, PullEvent, PullProgress};
use crate::engine::image::store::{ImageRecord, StoreError};

/// Largest JSON request body accepted (a create with a big environment fits easily).
const MAX_BODY: usize = 16 << 20;

/// What every handler can reach.
pub struct State {
    pub engine: Arc<Engine>,
    /// The engine's root, canonical; told to clients so they can check they reach the
    /// daemon of the state they mean.
    pub root: PathBuf,
    /// A stable daemon id for `/info`.
    pub id: String,
    /// Log every request to stderr (`BERTH_DEBUG=1`).
    pub debug: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{0}")]
    BadRequest(String),
    #[error("page not found")]
    PageNotFound,
    #[error("internal error: {0}")]
    Panic(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Engine(e) => match e {
                EngineError::NoSuchContainer(_)
                | EngineError::NoSuchExec(_)
                | EngineError::NoSuchImage(_) => StatusCode::NOT_FOUND,
                EngineError::Conflict(_) => StatusCode::CONFLICT,
                EngineError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
                EngineError::NotModified => StatusCode::NOT_MODIFIED,
                EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Image(e) => image_status(e),
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PageNotFound => StatusCode::NOT_FOUND,
            ApiError::Panic(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn into_response(self) -> Response<Body> {
        let status = self.status();
        if status == StatusCode::NOT_MODIFIED {
            return respond(status, None, stream::empty());
        }
        let body = serde_json::json!({ "message": self.to_string() });
        respond(
            status,
            Some("application/json"),
            stream::full(stream::json_line(&body)),
        )
    }
}

fn image_status(e: &ImageError) -> StatusCode {
    match e {
        ImageError::Reference(_) => StatusCode::BAD_REQUEST,
        ImageError::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
        ImageError::Store(StoreError::Ambiguous { .. }) => StatusCode::BAD_REQUEST,
        ImageError::Registry(RegistryError::NotFound { .. })
        | ImageError::Registry(RegistryError::Unauthorized { .. }) => StatusCode::NOT_FOUND,
        ImageError::Registry(RegistryError::NoMatchingPlatform { .. }) => StatusCode::BAD_REQUEST,
        ImageError::InUse(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// A response with Docker's common headers.
fn respond(status: StatusCode, content_type: Option<&'static str>, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert("api-version", HeaderValue::from_static(API_VERSION));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert(
        "server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    if let Some(ct) = content_type {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    respond(
        status,
        Some("application/json"),
        stream::full(stream::json_line(value)),
    )
}

fn no_content() -> Response<Body> {
    respond(StatusCode::NO_CONTENT, None, stream::empty())
}

/// Entry point for every request on the socket.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, Infallible> {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let started = Instant::now();
    // A bug in a handler answers 500 instead of dropping the connection.
    let outcome = std::panic::AssertUnwindSafe(dispatch(&state, req))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(ApiError::Panic(what))
        });
    let response = match outcome {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                eprintln!("berth daemon: {method} {}: {e}", uri.path());
            }
            e.into_response()
        }
    };
    if state.debug {
        eprintln!(
            "berth daemon: {method} {uri} -> {} ({} ms)",
            response.status().as_u16(),
            started.elapsed().as_millis()
        );
    }
    Ok(response)
}

/// `/v1.41/containers/json` → `/containers/json`. Any version is accepted: older clients
/// get the v1.41 shapes, which they read; newer ones negotiate down through `/_ping`.
fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let version = &rest[..end];
        let numeric = version.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        });
        if numeric {
            return &rest[end..];
        }
    }
    path
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed query string; a repeated key keeps its first value, as Go's `Values.Get`.
#[derive(Debug, Default)]
struct Query(HashMap<String, String>);

impl Query {
    fn parse(q: &str) -> Query {
        let mut map = HashMap::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.entry(percent_decode(k, true))
                .or_insert_with(|| percent_decode(v, true));
        }
        Query(map)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Docker's boolean form values: absent, "", "0", "false" (any case), "no" are false.
    fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "no" | "off"
            )
        })
    }

    fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::BadRequest(format!("invalid value for {key}: {v:?} is not an integer"))
            }),
        }
    }

    /// Unix seconds with optional fraction (`1700000000.123456789`), as the docker CLI
    /// sends `since`/`until`.
    fn timestamp(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => {
                if let Ok(t) = v.parse::<f64>() {
                    return Ok(Some(t));
                }
                chrono::DateTime::parse_from_rfc3339(v)
                    .map(|t| {
                        Some(t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
                    })
                    .map_err(|_| {
                        ApiError::BadRequest(format!(
                            "invalid value for {key}: {v:?} is not a timestamp"
                        ))
                    })
            }
        }
    }

    fn filters(&self) -> Result<HashMap<String, Vec<String>>> {
        parse_filters(self.get("filters").unwrap_or(""))
    }
}

/// Docker's `filters` JSON: `{"label":["a=b"]}`, or the legacy `{"label":{"a=b":true}}`.
fn parse_filters(s: &str) -> Result<HashMap<String, Vec<String>>> {
    let mut out = HashMap::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    let bad = |why: String| ApiError::BadRequest(format!("invalid filters {s:?}: {why}"));
    let value: serde_json::Value = serde_json::from_str(s).map_err(|e| bad(e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    for (key, v) in obj {
        let values: Vec<String> = match v {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(String::from)
                        .ok_or_else(|| bad(format!("{key}: values must be strings")))
                })
                .collect::<Result<_>>()?,
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(k, _)| k.clone())
                .collect(),
            serde_json::Value::String(one) => vec![one.clone()],
            _ => return Err(bad(format!("{key}: expected a list of strings"))),
        };
        out.insert(key.clone(), values);
    }
    Ok(out)
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    limited
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::BadRequest(format!("reading the request body: {e}")))
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(body: &[u8], required: bool) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        if required {
            return Err(ApiError::BadRequest("the request body is empty".into()));
        }
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

async fn dispatch(state: &Arc<State>, req: Request<Incoming>) -> Result<Response<Body>> {
    let raw_path = req.uri().path().to_string();
    let path = strip_version(&raw_path);
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let seg: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let engine = &state.engine;

    // Image names contain slashes (`localhost:5000/app/web:1`): matched before the rest.
    if seg.len() >= 2 && seg[0] == "images" && !matches!(seg[1], "json" | "create") {
        if method == Method::GET && seg.len() >= 3 && seg[seg.len() - 1] == "json" {
            return image_inspect(state, &seg[1..seg.len() - 1].join("/"));
        }
        if method == Method::DELETE {
            return image_remove(state, &seg[1..].join("/"), query.bool("force")).await;
        }
        return Err(ApiError::PageNotFound);
    }

    match (method.clone(), seg.as_slice()) {
        (Method::GET | Method::HEAD, ["_ping"]) => Ok(ping(state, method == Method::HEAD)),
        (Method::GET, ["version"]) => Ok(json(StatusCode::OK, &version_json())),
        (Method::GET, ["info"]) => info(state).await,
        (Method::GET, ["events"]) => events(state, &query),

        (Method::POST, ["containers", "create"]) => {
            let name = query
                .get("name")
                .filter(|n| !n.is_empty())
                .map(String::from);
            let body: CreateContainer = parse_json(&read_body(req).await?, true)?;
            let created = engine.create(name.as_deref(), body).await?;
            Ok(json(StatusCode::CREATED, &created))
        }
        (Method::GET, ["containers", "json"]) => {
            let limit = query.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
            let options = ListOptions {
                all: query.bool("all"),
                limit,
                filters: query.filters()?,
            };
            Ok(json(StatusCode::OK, &engine.list(&options).await?))
        }
        (Method::GET, ["containers", id, "json"]) => {
            Ok(json(StatusCode::OK, &engine.inspect(id).await?))
        }
        (Method::POST, ["containers", id, "start"]) => {
            engine.start(id).await?;
            Ok(no_content())
        }
        (Method::POST, ["containers", id, "stop"]) => {
            let signal = query.get("signal").filter(|s| !s.is_empty());
            engine.stop(id, query.int("t")?, signal).await?;
            Ok(no_content())
        }
        (Method::POST, ["containers", id, "restart"]) => {
            engine.restart(id, query.int("t")?).await?;
            Ok(no_content())
        }
        (Method::POST, ["containers", id, "kill"]) => {
            let signal = query.get("signal").filter(|s| !s.is_empty());
            engine.kill(id, signal).await?;
            Ok(no_content())
        }
        (Method::POST, ["containers", id, "wait"]) => wait(state, id, &query).await,
        (Method::DELETE, ["containers", id]) => {
            engine
                .remove(id, query.bool("force"), query.bool("v"))
                .await?;
            Ok(no_content())
        }
        (Method::GET, ["containers", id, "top"]) => {
            let ps_args = query.get("ps_args").filter(|s| !s.is_empty());
            Ok(json(StatusCode::OK, &engine.top(id, ps_args).await?))
        }
        (Method::GET, ["containers", id, "logs"]) => logs(state, id, &query).await,
        (Method::POST, ["containers", id, "attach"]) => {
            let id = id.to_string();
            attach(state, req, &id, &query).await
        }
        (Method::POST, ["containers", _, "resize"]) | (Method::POST, ["exec", _, "resize"]) => {
            Ok(respond(StatusCode::OK, None, stream::empty()))
        }
        (Method::POST, ["containers", id, "exec"]) => {
            let id = id.to_string();
            let config: ExecConfig = parse_json(&read_body(req).await?, true)?;
            let exec_id = engine.exec_create(&id, config).await?;
            Ok(json(StatusCode::CREATED, &IdResponse { id: exec_id }))
        }
        (Method::POST, ["exec", id, "start"]) => {
            let id = id.to_string();
            exec_start(state, req, &id).await
        }
        (Method::GET, ["exec", id, "json"]) => {
            Ok(json(StatusCode::OK, &engine.exec_inspect(id).await?))
        }

        (Method::GET, ["images", "json"]) => image_list(state, &query),
        (Method::POST, ["images", "create"]) => {
            let auth = req
                .headers()
                .get("x-registry-auth")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            image_pull(state, &query, auth.as_deref()).await
        }
        _ => Err(ApiError::PageNotFound),
    }
}

// ---- system ----

fn ping(state: &State, head: bool) -> Response<Body> {
    let body = if head {
        stream::empty()
    } else {
        stream::full("OK")
    };
    let mut r = respond(StatusCode::OK, Some("text/plain; charset=utf-8"), body);
    let h = r.headers_mut();
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_bytes(state.root.as_os_str().as_bytes()) {
        h.insert(super::ROOT_HEADER, v);
    }
    r
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn version_json() -> serde_json::Value {
    let version = env!("CARGO_PKG_VERSION");
    let arch = Platform::host().architecture;
    let kernel = kernel_version();
    serde_json::json!({
        "Platform": { "Name": "berth" },
        "Components": [{
            "Name": "Engine",
            "Version": version,
            "Details": {
                "ApiVersion": API_VERSION,
                "Arch": arch,
                "BuildTime": "",
                "Experimental": "false",
                "GitCommit": "",
                "GoVersion": "n/a",
                "KernelVersion": kernel,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
            },
        }],
        "Version": version,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "n/a",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    })
}

async fn info(state: &State) -> Result<Response<Body>> {
    let containers = state
        .engine
        .list(&ListOptions {
            all: true,
            ..ListOptions::default()
        })
        .await?;
    let count = |s: &str| {
        containers
            .iter()
            .filter(|c| c.state.as_deref() == Some(s))
            .count()
    };
    let (running, paused) = (count("running"), count("paused"));
    let images = state.engine.images().list()?.len();
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let pretty = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into());
    let os_version = os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_ID="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |kb| kb * 1024);
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cgroup_version = if is_cgroup2_root() { "2" } else { "1" };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut info = serde_json::json!({
        "ID": state.id,
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": containers.len() - running - paused,
        "Images": images,
        "Driver": "overlayfs",
        "DriverStatus": [],
        "DockerRootDir": state.root.to_string_lossy(),
        "Plugins": { "Volume": [], "Network": ["bridge", "host", "none"], "Log": ["json-file"] },
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "OomKillDisable": false,
    });
    let more = serde_json::json!({
        "IPv4Forwarding": std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .is_ok_and(|v| v.trim() == "1"),
        "Debug": state.debug,
        "SystemTime": now,
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "KernelVersion": kernel_version(),
        "OperatingSystem": pretty,
        "OSVersion": os_version,
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": ncpu,
        "MemTotal": mem_total,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": { "berth": { "path": "berth" } },
        "DefaultRuntime": "berth",
        "Swarm": {
            "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
            "ControlAvailable": false, "Error": "", "RemoteManagers": null
        },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    });
    if let (Some(a), serde_json::Value::Object(b)) = (info.as_object_mut(), more) {
        a.extend(b);
    }
    Ok(json(StatusCode::OK, &info))
}

fn is_cgroup2_root() -> bool {
    rustix::fs::statfs("/sys/fs/cgroup")
        .map(|s| s.f_type == libc::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

// ---- containers ----

async fn wait(state: &State, id: &str, query: &Query) -> Result<Response<Body>> {
    let condition = match query.get("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid condition {other:?}: expected not-running, next-exit or removed"
            )))
        }
    };
    let engine = Arc::clone(&state.engine);
    let id = id.to_string();
    let mut fut = Box::pin(async move { engine.wait(&id, condition).await });
    // One poll registers the wait and finds a missing container (an error status). A wait
    // still pending answers its headers at once, as Docker does: the docker CLI blocks on
    // them before it starts the container.
    if let Some(done) = (&mut fut).now_or_never() {
        return Ok(json(StatusCode::OK, &done?));
    }
    let body = futures_util::stream::once(async move {
        match fut.await {
            Ok(r) => stream::json_line(&r),
            Err(e) => stream::json_line(&serde_json::json!({
                "StatusCode": -1,
                "Error": { "Message": e.to_string() },
            })),
        }
    });
    Ok(respond(
        StatusCode::OK,
        Some("application/json"),
        stream::streaming(body),
    ))
}

async fn logs(state: &State, id: &str, query: &Query) -> Result<Response<Body>> {
    let options = LogsOptions {
        follow: query.bool("follow"),
        stdout: query.bool("stdout"),
        stderr: query.bool("stderr"),
        since: query.timestamp("since")?.filter(|t| *t != 0.0),
        until: query.timestamp("until")?.filter(|t| *t != 0.0),
        timestamps: query.bool("timestamps"),
        tail: match query.get("tail").unwrap_or("all") {
            "" | "all" => None,
            n => match n.parse::<i64>() {
                Ok(n) if n < 0 => None,
                Ok(n) => Some(n as usize),
                Err(_) => {
                    return Err(ApiError::BadRequest(format!(
                        "invalid value for tail: {n:?}"
                    )))
                }
            },
        },
    };
    if !options.stdout && !options.stderr {
        return Err(ApiError::BadRequest(
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    let logs = state.engine.logs(id, &options).await?;
    let tty = logs.tty;
    let body = logs.output.map(move |c| stream::encode(&c, tty));
    let ct = if tty {
        stream::RAW
    } else {
        stream::MULTIPLEXED
    };
    Ok(respond(StatusCode::OK, Some(ct), stream::streaming(body)))
}

fn wants_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(CONNECTION, "upgrade") && has(UPGRADE, "tcp")
}

type Finish = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Answers a hijack request: `101 Switching Protocols` then raw stdio both ways on the
/// connection, as Docker does for attach and exec. A client that did not ask to upgrade
/// gets the output as a plain streamed body (it has no way to send stdin then).
fn hijack(
    upgrade: Option<hyper::upgrade::OnUpgrade>,
    session: Session,
    streams: (bool, bool),
    finish: Option<Finish>,
) -> Response<Body> {
    let tty = session.tty;
    let ct = if tty {
        stream::RAW
    } else {
        stream::MULTIPLEXED
    };
    let Some(upgrade) = upgrade else {
        let body = session
            .output
            .filter(move |c| std::future::ready(wanted(c, streams)))
            .map(move |c| stream::encode(&c, tty))
            .chain(futures_util::stream::once(async move {
                if let Some(f) = finish {
                    f.await;
                }
                Bytes::new()
            }));
        return respond(StatusCode::OK, Some(ct), stream::streaming(body));
    };
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => pump(TokioIo::new(upgraded), session, streams, finish).await,
            Err(e) => eprintln!("berth daemon: connection upgrade failed: {e}"),
        }
    });
    let mut r = respond(StatusCode::SWITCHING_PROTOCOLS, Some(ct), stream::empty());
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    r.headers_mut()
        .insert(UPGRADE, HeaderValue::from_static("tcp"));
    r
}

fn wanted(c: &OutputChunk, (stdout, stderr): (bool, bool)) -> bool {
    match c.stream {
        StdStream::Stdout => stdout,
        StdStream::Stderr => stderr,
        StdStream::Stdin => false,
    }
}

/// Copies the client's bytes to the session's stdin (closing it at the client's EOF) and
/// the session's output to the client, until the output ends.
async fn pump<IO>(io: IO, session: Session, streams: (bool, bool), finish: Option<Finish>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let stdin_task = session.stdin.map(|mut stdin| {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut rd, &mut stdin).await;
            let _ = stdin.shutdown().await;
        })
    });
    let tty = session.tty;
    let mut output = session.output;
    while let Some(chunk) = output.next().await {
        if !wanted(&chunk, streams) {
            continue;
        }
        if wr.write_all(&stream::encode(&chunk, tty)).await.is_err() {
            break;
        }
        if wr.flush().await.is_err() {
            break;
        }
    }
    if let Some(f) = finish {
        f.await;
    }
    let _ = wr.shutdown().await;
    if let Some(t) = stdin_task {
        t.abort();
    }
}

async fn attach(
    state: &State,
    mut req: Request<Incoming>,
    id: &str,
    query: &Query,
) -> Result<Response<Body>> {
    let upgrade = wants_upgrade(&req).then(|| hyper::upgrade::on(&mut req));
    let streams = (query.bool("stdout"), query.bool("stderr"));
    let session = state.engine.attach(id, query.bool("stdin")).await?;
    Ok(hijack(upgrade, session, streams, None))
}

#[derive(Debug, Default, Deserialize)]
struct ExecStartBody {
    #[serde(rename = "Detach", default)]
    detach: bool,
    #[serde(rename = "Tty", default)]
    tty: bool,
}

async fn exec_start(
    state: &State,
    mut req: Request<Incoming>,
    exec_id: &str,
) -> Result<Response<Body>> {
    let upgrade = wants_upgrade(&req).then(|| hyper::upgrade::on(&mut req));
    let body: ExecStartBody = parse_json(&read_body(req).await?, false)?;
    let options = ExecStartOptions {
        detach: body.detach,
        tty: body.tty,
    };
    let session = state.engine.exec_start(exec_id, &options).await?;
    if body.detach {
        drop(session);
        return Ok(respond(StatusCode::OK, None, stream::empty()));
    }
    // The docker CLI reads the exit code right after the stream ends: hold the stream open
    // until the engine has recorded it.
    let engine = Arc::clone(&state.engine);
    let id = exec_id.to_string();
    let finish: Finish = Box::pin(async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match engine.exec_inspect(&id).await {
                Ok(i) if i.running == Some(true) => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                _ => break,
            }
        }
    });
    Ok(hijack(upgrade, session, (true, true), Some(finish)))
}

// ---- events ----

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn event_time(e: &SystemEventsResponse) -> f64 {
    match (e.time_nano, e.time) {
        (Some(ns), _) => ns as f64 / 1e9,
        (None, Some(s)) => s as f64,
        _ => 0.0,
    }
}

fn event_matches(e: &SystemEventsResponse, filters: &HashMap<String, Vec<String>>) -> bool {
    let attrs = e.actor.as_ref().and_then(|a| a.attributes.as_ref());
    let attr = |k: &str| attrs.and_then(|a| a.get(k)).map(String::as_str);
    let actor_id = e.actor.as_ref().and_then(|a| a.id.as_deref()).unwrap_or("");
    let action = e.action.as_deref().unwrap_or("");
    filters.iter().all(|(key, values)| {
        values.is_empty()
            || values.iter().any(|v| match key.as_str() {
                "type" => e.typ.as_deref() == Some(v.as_str()),
                "container" | "image" | "network" | "volume" => {
                    let typed = key != "image" || e.typ.as_deref() == Some("image");
                    (typed
                        && (actor_id == v || (v.len() >= 12 && actor_id.starts_with(v.as_str()))))
                        || attr("name") == Some(v.as_str())
                        || (key == "image" && attr("image") == Some(v.as_str()))
                }
                "event" => {
                    action == v || action.split_once(':').is_some_and(|(a, _)| a.trim() == v)
                }
                "label" => match v.split_once('=') {
                    Some((k, val)) => attr(k) == Some(val),
                    None => attr(v).is_some(),
                },
                _ => true,
            })
    })
}

fn events(state: &State, query: &Query) -> Result<Response<Body>> {
    let since = query.timestamp("since")?;
    let until = query.timestamp("until")?;
    let filters = query.filters()?;
    // Subscribe before reading the past so nothing falls between the two.
    let live = state.engine.events();
    let now = unix_now();
    let past: Vec<SystemEventsResponse> = match since {
        Some(since) => state
            .engine
            .past_events()
            .into_iter()
            .filter(|e| {
                let t = event_time(e);
                t >= since && until.is_none_or(|u| t <= u)
            })
            .filter(|e| event_matches(e, &filters))
            .collect(),
        None => Vec::new(),
    };
    let last_past = past.iter().map(event_time).fold(f64::MIN, f64::max);
    let past_bytes: Vec<Bytes> = past.iter().map(stream::json_line).collect();
    let deadline =
        until.map(|u| tokio::time::Instant::now() + Duration::from_secs_f64((u - now).max(0.0)));
    let live_stream = futures_util::stream::unfold(
        (live, filters, deadline),
        move |(mut rx, filters, deadline)| async move {
            if deadline.is_some_and(|d| d <= tokio::time::Instant::now()) {
                return None;
            }
            loop {
                let next = match deadline {
                    Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                        Ok(r) => r,
                        Err(_) => return None,
                    },
                    None => rx.recv().await,
                };
                match next {
                    Ok(e) => {
                        if event_time(&e) <= last_past || !event_matches(&e, &filters) {
                            continue;
                        }
                        return Some((stream::json_line(&e), (rx, filters, deadline)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    let body = futures_util::stream::iter(past_bytes).chain(live_stream);
    Ok(respond(
        StatusCode::OK,
        Some("application/json"),
        stream::streaming(body),
    ))
}

// ---- images ----

/// `docker.io/library/busybox:latest` → `busybox:latest`, as Docker's API shows names.
fn familiar(name: &str) -> String {
    Reference::parse(name).map_or_else(|_| name.to_string(), |r| r.familiar())
}

fn unix_created(record: &ImageRecord) -> i64 {
    record
        .created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map_or(0, |t| t.timestamp())
}

fn labels_of(config: &serde_json::Value) -> HashMap<String, String> {
    config
        .get("config")
        .and_then(|c| c.get("Labels"))
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

/// Docker's `reference` filter: a pattern on the familiar name, with or without a tag,
/// `*` and `?` as wildcards.
fn reference_matches(pattern: &str, record: &ImageRecord) -> bool {
    record.repo_tags.iter().any(|t| {
        let Ok(r) = Reference::parse(t) else {
            return false;
        };
        let name = r.familiar_name();
        let tagged = r.familiar();
        if pattern.contains(':') && !pattern.ends_with(':') {
            glob(pattern, &tagged) || glob(pattern, &t.to_string())
        } else {
            glob(pattern, &name) || glob(pattern, &r.repository())
        }
    })
}

fn glob(pattern: &str, text: &str) -> bool {
    fn m(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], t) || (!t.is_empty() && t[0] != b'/' && m(p, &t[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => m(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &t[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), text.as_bytes())
}

fn image_list(state: &State, query: &Query) -> Result<Response<Body>> {
    let filters = query.filters()?;
    let svc = state.engine.images();
    let mut records = svc.list()?;
    records.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let config = svc.config_json(&r).unwrap_or_default();
        let labels = labels_of(&config);
        let keep = filters.iter().all(|(key, values)| {
            values.is_empty()
                || match key.as_str() {
                    "reference" => values.iter().any(|p| reference_matches(p, &r)),
                    "dangling" => values
                        .iter()
                        .any(|v| (v == "true" || v == "1") == r.repo_tags.is_empty()),
                    "label" => values.iter().all(|v| match v.split_once('=') {
                        Some((k, val)) => labels.get(k).map(String::as_str) == Some(val),
                        None => labels.contains_key(v),
                    }),
                    _ => true,
                }
        });
        if !keep {
            continue;
        }
        let size = i64::try_from(r.size()).unwrap_or(i64::MAX);
        out.push(ImageSummary {
            id: r.id.to_string(),
            parent_id: String::new(),
            repo_tags: r.repo_tags.iter().map(|t| familiar(t)).collect(),
            repo_digests: r.repo_digests.iter().map(|d| familiar(d)).collect(),
            created: unix_created(&r),
            size,
            shared_size: -1,
            virtual_size: size,
            labels,
            containers: -1,
        });
    }
    Ok(json(StatusCode::OK, &out))
}

fn image_inspect(state: &State, name: &str) -> Result<Response<Body>> {
    let svc = state.engine.images();
    let record = svc.get(name).map_err(|e| match e {
        ImageError::Store(StoreError::NotFound(_)) | ImageError::Reference(_) => {
            ApiError::Engine(EngineError::NoSuchImage(name.to_string()))
        }
        other => ApiError::Image(other),
    })?;
    let config = svc.config_json(&record)?;
    let text = |k: &str| {
        config
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let container_config = |k: &str| -> Option<ContainerConfig> {
        config
            .get(k)
            .and_then(|c| serde_json::from_value(c.clone()).ok())
    };
    let size = i64::try_from(record.size()).unwrap_or(i64::MAX);
    let lower: Vec<String> = svc
        .lower_dirs(&record)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let image = Image {
        id: record.id.to_string(),
        repo_tags: Some(record.repo_tags.iter().map(|t| familiar(t)).collect()),
        repo_digests: Some(record.repo_digests.iter().map(|d| familiar(d)).collect()),
        parent: String::new(),
        comment: text("comment"),
        created: record.created.clone().unwrap_or_else(|| text("created")),
        container: text("container"),
        container_config: container_config("container_config"),
        docker_version: text("docker_version"),
        author: text("author"),
        config: container_config("config"),
        architecture: record.platform.architecture.clone(),
        os: record.platform.os.clone(),
        os_version: record.platform.os_version.clone(),
        size,
        virtual_size: size,
        graph_driver: GraphDriverData {
            name: "overlayfs".into(),
            data: HashMap::from([("LowerDir".to_string(), lower.join(":"))]),
        },
        root_fs: ImageRootFs {
            typ: "layers".into(),
            layers: Some(record.diff_ids().iter().map(|d| d.to_string()).collect()),
            base_layer: None,
        },
        metadata: Some(ImageMetadata {
            last_tag_time: None,
        }),
    };
    Ok(json(StatusCode::OK, &image))
}

async fn image_remove(state: &State, name: &str, force: bool) -> Result<Response<Body>> {
    let removed = state.engine.remove_image(name, force).await?;
    let mut items: Vec<ImageDeleteResponseItem> = removed
        .untagged
        .iter()
        .map(|u| ImageDeleteResponseItem {
            untagged: Some(familiar(u)),
            deleted: None,
        })
        .collect();
    items.extend(removed.deleted.iter().map(|d| ImageDeleteResponseItem {
        untagged: None,
        deleted: Some(d.to_string()),
    }));
    Ok(json(StatusCode::OK, &items))
}

/// Pull progress as Docker's JSON messages, sent over a channel to the response body.
/// Downloading events come per network read: at most one per layer every 100 ms is sent.
struct ChannelProgress {
    tx: tokio::sync::mpsc::UnboundedSender<CreateImageInfo>,
    last: std::sync::Mutex<HashMap<String, Instant>>,
}

fn status(id: &str, status: &str) -> CreateImageInfo {
    CreateImageInfo {
        id: Some(id.to_string()),
        status: Some(status.to_string()),
        progress_detail: Some(ProgressDetail::default()),
        ..CreateImageInfo::default()
    }
}

impl PullProgress for ChannelProgress {
    fn event(&self, _image: &str, event: PullEvent) {
        let msgs = match event {
            PullEvent::Resolved { layers, .. } => layers
                .iter()
                .map(|(id, _)| status(id, "Pulling fs layer"))
                .collect(),
            PullEvent::AlreadyExists(id) => vec![status(&id, "Already exists")],
            PullEvent::Downloading { id, current, total } => {
                if current < total {
                    let Ok(mut last) = self.last.lock() else {
                        return;
                    };
                    let now = Instant::now();
                    if last
                        .get(&id)
                        .is_some_and(|t| now.duration_since(*t) < Duration::from_millis(100))
                    {
                        return;
                    }
                    last.insert(id.clone(), now);
                }
                vec![CreateImageInfo {
                    id: Some(id),
                    status: Some("Downloading".into()),
                    progress_detail: Some(ProgressDetail {
                        current: i64::try_from(current).ok(),
                        total: i64::try_from(total).ok(),
                    }),
                    ..CreateImageInfo::default()
                }]
            }
            PullEvent::Verifying(id) => vec![status(&id, "Verifying Checksum")],
            PullEvent::DownloadComplete(id) => vec![status(&id, "Download complete")],
            PullEvent::Extracting(id) => vec![status(&id, "Extracting")],
            PullEvent::PullComplete(id) => vec![status(&id, "Pull complete")],
            PullEvent::Pushed(id) => vec![status(&id, "Pushed")],
        };
        for m in msgs {
            let _ = self.tx.send(m);
        }
    }
}

fn plain_status(text: String) -> CreateImageInfo {
    CreateImageInfo {
        status: Some(text),
        ..CreateImageInfo::default()
    }
}

fn error_message(message: String) -> CreateImageInfo {
    CreateImageInfo {
        error: Some(message),
        ..CreateImageInfo::default()
    }
}

/// The error line Docker writes when a pull fails after its stream began.
#[derive(Serialize)]
struct StreamError {
    #[serde(rename = "errorDetail")]
    error_detail: ErrorDetail,
    error: String,
}

enum PullItem {
    Message(CreateImageInfo),
    Done(Result<Vec<CreateImageInfo>, ApiError>),
}

fn pull_item_bytes(item: PullItem) -> Bytes {
    match item {
        PullItem::Message(m) if m.error.is_some() => {
            let message = m.error.unwrap_or_default();
            stream::json_line(&StreamError {
                error_detail: ErrorDetail {
                    code: None,
                    message: Some(message.clone()),
                },
                error: message,
            })
        }
        PullItem::Message(m) => stream::json_line(&m),
        PullItem::Done(Ok(lines)) => lines
            .iter()
            .flat_map(|l| stream::json_line(l).to_vec())
            .collect::<Vec<u8>>()
            .into(),
        PullItem::Done(Err(e)) => pull_item_bytes(PullItem::Message(error_message(e.to_string()))),
    }
}

async fn image_pull(
    state: &State,
    query: &Query,
    _registry_auth: Option<&str>,
) -> Result<Response<Body>> {
    if query.get("fromSrc").is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::BadRequest(
            "importing a root filesystem (fromSrc) is not supported by berth".into(),
        ));
    }
    let from = query
        .get("fromImage")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::BadRequest("fromImage is required".into()))?;
    let name = match query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let reference =
        Reference::parse(&name).map_err(|e| ApiError::Image(ImageError::Reference(e)))?;
    let platform = match query.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p).map_err(|e| ApiError::BadRequest(e.to_string()))?,
        None => Platform::host(),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let first = plain_status(format!("Pulling from {}", reference.path));
    let first = CreateImageInfo {
        id: Some(reference.tag.clone().unwrap_or_else(|| {
            reference
                .digest
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default()
        })),
        ..first
    };
    let engine = Arc::clone(&state.engine);
    // The pull runs inside the response body: a client that goes away cancels it, as with
    // Docker; its partial downloads stay resumable.
    let pull = async move {
        let progress = ChannelProgress {
            tx,
            last: Default::default(),
        };
        let pulled = engine
            .images()
            .pull(&reference, &platform, &progress)
            .await?;
        let verb = if pulled.downloaded {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        Ok(vec![
            plain_status(format!("Digest: {}", pulled.digest)),
            plain_status(format!("Status: {verb} {}", reference.familiar())),
        ])
    };
    let mut items = Box::pin(progress_then_result(rx, pull));
    // Errors before any progress (unknown image, bad credentials) get an HTTP status.
    let head = items.next().await;
    let head = match head {
        Some(PullItem::Done(Err(e))) => return Err(e),
        Some(other) => vec![PullItem::Message(first), other],
        None => vec![PullItem::Message(first)],
    };
    let body = futures_util::stream::iter(head)
        .chain(items)
        .map(pull_item_bytes);
    Ok(respond(
        StatusCode::OK,
        Some("application/json"),
        stream::streaming(body),
    ))
}

/// The pull's progress messages as they come, then its result: the result waits until
/// every message sent before it is out (the channel closes when the pull ends).
fn progress_then_result<F>(
    rx: tokio::sync::mpsc::UnboundedReceiver<CreateImageInfo>,
    pull: F,
) -> impl Stream<Item = PullItem> + Send
where
    F: Future<Output = Result<Vec<CreateImageInfo>, ApiError>> + Send + 'static,
{
    let state = (rx, Some(Box::pin(pull)), None);
    futures_util::stream::unfold(state, |(mut rx, mut pull, mut result)| async move {
        loop {
            if let Some(fut) = pull.as_mut() {
                let mut closed = false;
                tokio::select! {
                    biased;
                    m = rx.recv() => match m {
                        Some(m) => return Some((PullItem::Message(m), (rx, pull, result))),
                        // Closed: the pull is finishing; its result comes next.
                        None => closed = true,
                    },
                    r = &mut *fut => {
                        result = Some(r);
                        pull = None;
                    }
                }
                if closed {
                    if let Some(fut) = pull.take() {
                        result = Some(fut.await);
                    }
                }
            } else {
                return match rx.recv().await {
                    Some(m) => Some((PullItem::Message(m), (rx, pull, result))),
                    None => result.take().map(|r| (PullItem::Done(r), (rx, pull, None))),
                };
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_stripped_from_paths() {
        assert_eq!(strip_version("/v1.41/containers/json"), "/containers/json");
        assert_eq!(strip_version("/v1.51/_ping"), "/_ping");
        assert_eq!(strip_version("/_ping"), "/_ping");
        assert_eq!(strip_version("/version"), "/version");
        assert_eq!(strip_version("/v1.41"), "");
    }

    #[test]
    fn queries_and_filters_parse_both_forms() {
        let q = Query::parse(
            "all=1&name=a%2Fb+c&t=&filters=%7B%22label%22%3A%7B%22x%3Dy%22%3Atrue%7D%7D",
        );
        assert!(q.bool("all"));
        assert!(!q.bool("t"));
        assert_eq!(q.get("name"), Some("a/b c"));
        assert_eq!(q.filters().unwrap()["label"], vec!["x=y".to_string()]);
        let f = parse_filters(r#"{"label":["a=b","c"],"status":["running"]}"#).unwrap();
        assert_eq!(f["label"].len(), 2);
        assert!(parse_filters("[1]").is_err());
        assert_eq!(percent_decode("%zz%41", false), "%zzA");
        assert_eq!(percent_decode("abc%4", false), "abc%4");
    }

    #[test]
    fn globs_match_like_path_match() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("b?sybox", "busybox"));
        assert!(!glob("busy*", "lib/busybox"));
        assert!(glob("*/app", "user/app"));
    }
}
