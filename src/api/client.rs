//! The typed client of the daemon's API (what the berth CLI and the tests use): one method
//! per endpoint, Docker's models, one connection per request over the unix socket.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use bollard_stubs::models::{
    ContainerCreateResponse, ContainerInspectResponse, ContainerSummaryInner, ContainerTopResponse,
    ContainerWaitResponse, CreateImageInfo, ExecInspectResponse, Image, ImageDeleteResponseItem,
    ImageSummary, SystemEventsResponse, SystemInfo, SystemVersion,
};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, HOST, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::UnixStream;

use super::stream;
use super::API_VERSION;
use crate::engine::container::{
    CreateContainer, ExecConfig, ExecStartOptions, ListOptions, Logs, LogsOptions, OutputStream,
    Session, WaitCondition,
};
use crate::engine::image::reference::Reference;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to the berth daemon at {}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The daemon answered with an error status; `message` is its own words.
    #[error("{message}")]
    Status { status: u16, message: String },
    /// An error the daemon reported in the middle of a stream (a failed pull).
    #[error("{0}")]
    Remote(String),
    #[error("talking to the berth daemon at {}: {detail}", socket.display())]
    Http { socket: PathBuf, detail: String },
    #[error("unexpected response from the berth daemon to {what}: {detail}")]
    Decode { what: String, detail: String },
    #[error("starting the berth daemon: {0}")]
    Autostart(String),
    #[error(
        "the berth daemon at {} serves {}, not {}; use --root {} or --host to pick a daemon",
        socket.display(), served.display(), wanted.display(), served.display()
    )]
    WrongRoot {
        socket: PathBuf,
        served: PathBuf,
        wanted: PathBuf,
    },
}

impl ClientError {
    /// The HTTP status of an error response.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Nobody listens on the socket (it is missing, or stale): a daemon may be started.
    pub fn is_absent(&self) -> bool {
        matches!(self, ClientError::Connect { source, .. }
            if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused))
    }
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Items of a stream the daemon sends (pull progress, events).
pub type ClientStream<T> = Pin<Box<dyn Stream<Item = Result<T>> + Send>>;

/// What `/_ping` tells.
#[derive(Debug, Clone, Default)]
pub struct Ping {
    pub api_version: Option<String>,
    /// The state root the daemon serves (berth daemons only).
    pub root: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    /// Unix seconds.
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub filters: HashMap<String, Vec<String>>,
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `?a=b&c=d`, leaving out absent values.
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn flag(b: bool) -> Option<String> {
    Some(if b { "1" } else { "0" }.to_string())
}

fn filters_json(f: &HashMap<String, Vec<String>>) -> Option<String> {
    (!f.is_empty()).then(|| serde_json::to_string(f).unwrap_or_default())
}

/// An `AsyncRead` as a stream of byte chunks.
fn read_chunks<R: AsyncRead + Send + Unpin + 'static>(
    reader: R,
) -> impl Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut buf = BytesMut::with_capacity(32 * 1024);
        match reader.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), Some(reader))),
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn http_err(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Http {
            socket: self.socket.clone(),
            detail: e.to_string(),
        }
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.http_err(e))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        sender.send_request(req).await.map_err(|e| self.http_err(e))
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        hijack: bool,
    ) -> Result<Request<Full<Bytes>>> {
        let uri = if path.starts_with("/_ping") {
            path.to_string()
        } else {
            format!("/v{API_VERSION}{path}")
        };
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, "berth");
        if body.is_some() {
            b = b.header(CONTENT_TYPE, "application/json");
        }
        if hijack {
            b = b.header(CONNECTION, "Upgrade").header(UPGRADE, "tcp");
        }
        b.body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.http_err(e))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>> {
        let req = self.build(method, path, body, false)?;
        let resp = self.send(req).await?;
        check(resp).await
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.call(Method::GET, path, None).await?;
        read_json(resp, path).await
    }

    async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Decode {
            what: path.to_string(),
            detail: format!("encoding the request: {e}"),
        })?;
        let resp = self.call(Method::POST, path, Some(body)).await?;
        read_json(resp, path).await
    }

    /// A request whose answer has no body worth reading (204, or 304 for "already so").
    async fn post_empty(&self, path: &str) -> Result<()> {
        self.call(Method::POST, path, None).await.map(drop)
    }

    // ---- system ----

    pub async fn ping(&self) -> Result<Ping> {
        let resp = self.call(Method::GET, "/_ping", None).await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        Ok(Ping {
            api_version: header("api-version"),
            root: header(super::ROOT_HEADER).map(PathBuf::from),
        })
    }

    pub async fn version(&self) -> Result<SystemVersion> {
        let mut v: serde_json::Value = self.get_json("/version").await?;
        // The v1.41 model types component details as a map of unit types; drop them.
        if let Some(components) = v.get_mut("Components").and_then(|c| c.as_array_mut()) {
            for c in components {
                if let Some(o) = c.as_object_mut() {
                    o.remove("Details");
                }
            }
        }
        serde_json::from_value(v).map_err(|e| ClientError::Decode {
            what: "/version".into(),
            detail: e.to_string(),
        })
    }

    pub async fn info(&self) -> Result<SystemInfo> {
        self.get_json("/info").await
    }

    // ---- containers ----

    pub async fn create_container(
        &self,
        name: Option<&str>,
        body: &CreateContainer,
    ) -> Result<ContainerCreateResponse> {
        let path = format!(
            "/containers/create{}",
            query(&[("name", name.map(String::from))])
        );
        self.post_json(&path, body).await
    }

    pub async fn start(&self, id: &str) -> Result<()> {
        self.post_empty(&format!("/containers/{}/start", enc(id)))
            .await
    }

    pub async fn stop(
        &self,
        id: &str,
        timeout_secs: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let q = query(&[
            ("t", timeout_secs.map(|t| t.to_string())),
            ("signal", signal.map(String::from)),
        ]);
        self.post_empty(&format!("/containers/{}/stop{q}", enc(id)))
            .await
    }

    pub async fn restart(&self, id: &str, timeout_secs: Option<i64>) -> Result<()> {
        let q = query(&[("t", timeout_secs.map(|t| t.to_string()))]);
        self.post_empty(&format!("/containers/{}/restart{q}", enc(id)))
            .await
    }

    pub async fn kill(&self, id: &str, signal: Option<&str>) -> Result<()> {
        let q = query(&[("signal", signal.map(String::from))]);
        self.post_empty(&format!("/containers/{}/kill{q}", enc(id)))
            .await
    }

    pub async fn wait(&self, id: &str, condition: WaitCondition) -> Result<ContainerWaitResponse> {
        let c = match condition {
            WaitCondition::NotRunning => "not-running",
            WaitCondition::NextExit => "next-exit",
            WaitCondition::Removed => "removed",
        };
        let path = format!("/containers/{}/wait?condition={c}", enc(id));
        let resp = self.call(Method::POST, &path, None).await?;
        let r: ContainerWaitResponse = read_json(resp, &path).await?;
        match r.error.as_ref().and_then(|e| e.message.clone()) {
            Some(m) if !m.is_empty() => Err(ClientError::Remote(m)),
            _ => Ok(r),
        }
    }

    pub async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse> {
        self.get_json(&format!("/containers/{}/json", enc(id)))
            .await
    }

    pub async fn list(&self, options: &ListOptions) -> Result<Vec<ContainerSummaryInner>> {
        let q = query(&[
            ("all", flag(options.all)),
            ("limit", options.limit.map(|l| l.to_string())),
            ("filters", filters_json(&options.filters)),
        ]);
        self.get_json(&format!("/containers/json{q}")).await
    }

    pub async fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let q = query(&[("force", flag(force)), ("v", flag(volumes))]);
        self.call(Method::DELETE, &format!("/containers/{}{q}", enc(id)), None)
            .await
            .map(drop)
    }

    pub async fn top(&self, id: &str, ps_args: Option<&str>) -> Result<ContainerTopResponse> {
        let q = query(&[("ps_args", ps_args.map(String::from))]);
        self.get_json(&format!("/containers/{}/top{q}", enc(id)))
            .await
    }

    pub async fn logs(&self, id: &str, options: &LogsOptions) -> Result<Logs> {
        let q = query(&[
            ("follow", flag(options.follow)),
            ("stdout", flag(options.stdout)),
            ("stderr", flag(options.stderr)),
            ("since", options.since.map(|t| format!("{t:.9}"))),
            ("until", options.until.map(|t| format!("{t:.9}"))),
            ("timestamps", flag(options.timestamps)),
            (
                "tail",
                Some(options.tail.map_or("all".to_string(), |t| t.to_string())),
            ),
        ]);
        let resp = self
            .call(
                Method::GET,
                &format!("/containers/{}/logs{q}", enc(id)),
                None,
            )
            .await?;
        let tty = is_raw(&resp);
        let body = resp.into_body().into_data_stream();
        let output = if tty {
            stream::raw(body)
        } else {
            stream::demux(body)
        };
        Ok(Logs { tty, output })
    }

    /// `docker attach`: stdin (if asked) goes to the container; output is live from now.
    pub async fn attach(&self, id: &str, options: &AttachOptions) -> Result<Session> {
        let q = query(&[
            ("stream", flag(true)),
            ("stdin", flag(options.stdin)),
            ("stdout", flag(options.stdout)),
            ("stderr", flag(options.stderr)),
        ]);
        self.hijack(&format!("/containers/{}/attach{q}", enc(id)), None)
            .await
    }

    pub async fn exec_create(&self, id: &str, config: &ExecConfig) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct Created {
            #[serde(rename = "Id")]
            id: String,
        }
        let c: Created = self
            .post_json(&format!("/containers/{}/exec", enc(id)), config)
            .await?;
        Ok(c.id)
    }

    /// Starts an exec; unless detached, its stdio rides the hijacked connection.
    pub async fn exec_start(&self, exec_id: &str, options: &ExecStartOptions) -> Result<Session> {
        let body = serde_json::json!({ "Detach": options.detach, "Tty": options.tty });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let path = format!("/exec/{}/start", enc(exec_id));
        if options.detach {
            self.call(Method::POST, &path, Some(body)).await?;
            return Ok(Session {
                tty: options.tty,
                stdin: None,
                output: Box::pin(futures_util::stream::empty()),
            });
        }
        self.hijack(&path, Some(body)).await
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspectResponse> {
        self.get_json(&format!("/exec/{}/json", enc(exec_id))).await
    }

    async fn hijack(&self, path: &str, body: Option<Vec<u8>>) -> Result<Session> {
        let req = self.build(Method::POST, path, body, true)?;
        let resp = check(self.send(req).await?).await?;
        let tty = is_raw(&resp);
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            // A daemon that did not upgrade streams the output as the body.
            let body = resp.into_body().into_data_stream();
            let output: OutputStream = if tty {
                stream::raw(body)
            } else {
                stream::demux(body)
            };
            return Ok(Session {
                tty,
                stdin: None,
                output,
            });
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(|e| self.http_err(e))?;
        let (rd, wr) = tokio::io::split(TokioIo::new(upgraded));
        let chunks = read_chunks(rd);
        let output = if tty {
            stream::raw(chunks)
        } else {
            stream::demux(chunks)
        };
        Ok(Session {
            tty,
            stdin: Some(Box::pin(wr)),
            output,
        })
    }

    // ---- images ----

    pub async fn list_images(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<ImageSummary>> {
        let q = query(&[("filters", filters_json(filters))]);
        self.get_json(&format!("/images/json{q}")).await
    }

    pub async fn inspect_image(&self, name: &str) -> Result<Image> {
        self.get_json(&format!("/images/{}/json", enc_name(name)))
            .await
    }

    /// Pulls an image; the stream yields Docker's progress messages and ends with the
    /// `Digest: ...` and `Status: ...` lines, or an error.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: Option<&str>,
    ) -> Result<ClientStream<CreateImageInfo>> {
        let tag = match (&reference.digest, &reference.tag) {
            (Some(d), _) => Some(d.to_string()),
            (None, t) => t.clone(),
        };
        let q = query(&[
            ("fromImage", Some(reference.repository())),
            ("tag", tag),
            ("platform", platform.map(String::from)),
        ]);
        let resp = self
            .call(Method::POST, &format!("/images/create{q}"), None)
            .await?;
        let lines =
            stream::json_lines::<CreateImageInfo, _, _>(resp.into_body().into_data_stream());
        Ok(Box::pin(lines.map(|item| match item {
            Ok(m) => match m.error {
                Some(e) => Err(ClientError::Remote(e)),
                None => Ok(m),
            },
            Err(detail) => Err(ClientError::Decode {
                what: "/images/create".into(),
                detail,
            }),
        })))
    }

    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>> {
        let path = format!(
            "/images/{}{}",
            enc_name(name),
            query(&[("force", flag(force))])
        );
        let resp = self.call(Method::DELETE, &path, None).await?;
        read_json(resp, &path).await
    }

    // ---- events ----

    pub async fn events(
        &self,
        options: &EventsOptions,
    ) -> Result<ClientStream<SystemEventsResponse>> {
        let q = query(&[
            ("since", options.since.map(|t| format!("{t:.9}"))),
            ("until", options.until.map(|t| format!("{t:.9}"))),
            ("filters", filters_json(&options.filters)),
        ]);
        let resp = self.call(Method::GET, &format!("/events{q}"), None).await?;
        let lines =
            stream::json_lines::<SystemEventsResponse, _, _>(resp.into_body().into_data_stream());
        Ok(Box::pin(lines.map(|item| {
            item.map_err(|detail| ClientError::Decode {
                what: "/events".into(),
                detail,
            })
        })))
    }
}

/// Image names keep their slashes in paths (`/images/localhost:5000/app/json`).
fn enc_name(name: &str) -> String {
    name.split('/').map(enc).collect::<Vec<_>>().join("/")
}

fn is_raw(resp: &Response<Incoming>) -> bool {
    resp.headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v == HeaderValue::from_static(stream::RAW))
}

/// Turns an error status into `ClientError::Status` with the daemon's message.
async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if status.is_success() || status.is_informational() || status == StatusCode::NOT_MODIFIED {
        return Ok(resp);
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body).trim().to_string();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                text
            }
        });
    Err(ClientError::Status {
        status: status.as_u16(),
        message,
    })
}

async fn read_json<T: DeserializeOwned>(resp: Response<Incoming>, what: &str) -> Result<T> {
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Decode {
            what: what.to_string(),
            detail: e.to_string(),
        })?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
        what: what.to_string(),
        detail: e.to_string(),
    })
}
