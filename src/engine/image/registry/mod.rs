//! OCI distribution (Docker registry v2) client over reqwest: manifest resolution with
//! platform selection, streaming blob download with resume and retries, monolithic blob
//! push and manifest push, token/basic auth with Docker's config.json, mirrors, and the
//! HTTPS-unless-loopback-or-insecure rule.
//!
//! Blobs are streamed into a caller-supplied sink so this client knows nothing of the
//! content store; verifying a blob's digest is the sink owner's job (except for the small
//! in-memory helper [`RegistryClient::fetch_blob_verified`]).

pub mod auth;
pub mod manifest;
#[doc(hidden)]
pub mod testsupport;

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE,
};
use reqwest::{Method, StatusCode, Url};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use self::auth::{AuthCache, Challenge, CredentialLookup, Credentials};
use self::manifest::Document;
use super::digest::Digest;
use super::imagespec::{media, Descriptor, Platform, SpecError, MAX_MANIFEST_BYTES};
use super::reference::{is_loopback_host, is_valid_tag, registry_host, split_host_port, Reference};

pub use self::manifest::MANIFEST_ACCEPT;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry configuration: {0}")]
    Config(String),
    #[error("request to {url} failed: {detail}{hint}")]
    Transport {
        url: String,
        detail: String,
        hint: String,
    },
    #[error("{url}: unexpected HTTP status {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{what} not found in {registry}: {message}")]
    NotFound {
        what: String,
        registry: String,
        message: String,
    },
    #[error("access to {resource} on {registry} was denied: {detail}")]
    Unauthorized {
        registry: String,
        resource: String,
        detail: String,
    },
    #[error("{registry} sent an authentication challenge berth cannot use: {header:?}")]
    Challenge { registry: String, header: String },
    #[error("token request to {realm} failed: {detail}")]
    Token { realm: String, detail: String },
    #[error(
        "{reference} is a Docker schema 1 manifest, which is deprecated and not supported; \
         push the image again with a current Docker or another OCI tool"
    )]
    Schema1 { reference: String },
    #[error("manifest for {reference} is larger than the {limit}-byte limit")]
    ManifestTooLarge { reference: String, limit: u64 },
    #[error("invalid manifest for {reference}: {detail}")]
    InvalidManifest { reference: String, detail: String },
    #[error("{reference}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType {
        reference: String,
        media_type: String,
    },
    #[error(transparent)]
    Platform(#[from] SpecError),
    #[error(
        "{reference} has no image for platform {wanted}; available: {}",
        if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("blob {digest}: {detail}")]
    Blob { digest: Digest, detail: String },
    #[error("writing blob {digest} to its destination: {source}")]
    Sink {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("docker config {}: {detail}", path.display())]
    DockerConfig { path: PathBuf, detail: String },
}

impl RegistryError {
    /// Worth trying again (the network or the server had a bad moment).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Status { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }
}

fn is_retryable_status(s: u16) -> bool {
    s == 408 || s == 429 || (500..600).contains(&s) && s != 501 && s != 505
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Registries reachable without verified TLS: `host:port` (or `host`) entries, or CIDR
    /// ranges of IP addresses. Loopback registries are always allowed.
    pub insecure_registries: Vec<String>,
    /// Per registry domain (`docker.io`, `myreg.io:5000`), mirror base URLs tried first.
    pub mirrors: Vec<(String, Vec<String>)>,
    /// Docker's config.json for credentials; `None` means `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`.
    pub docker_config_path: Option<PathBuf>,
    /// Retries after a transient failure (connect error, 5xx, 429, body cut short).
    pub max_retries: u32,
    /// First retry delay; doubled per retry up to `max_retry_delay`.
    pub retry_base_delay: Duration,
    pub max_retry_delay: Duration,
    pub connect_timeout: Duration,
    /// Longest wait for any read (a stalled body counts as a transient failure).
    pub read_timeout: Duration,
    pub user_agent: String,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            docker_config_path: None,
            max_retries: 5,
            retry_base_delay: Duration::from_millis(250),
            max_retry_delay: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// How a registry host may be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS with verified certificates only.
    Https,
    /// HTTPS without certificate verification, falling back to plain HTTP when the TLS
    /// handshake fails (Docker's behaviour for insecure registries and loopback).
    Insecure,
}

/// The transport decision for a registry host (`host[:port]`): plain HTTP or unverified
/// TLS only for loopback hosts and hosts listed as insecure.
pub fn transport_for(host: &str, insecure: &[String]) -> Transport {
    if is_loopback_host(host) || insecure.iter().any(|e| insecure_entry_matches(e, host)) {
        Transport::Insecure
    } else {
        Transport::Https
    }
}

fn insecure_entry_matches(entry: &str, host: &str) -> bool {
    let e = entry.trim();
    let e = e
        .strip_prefix("https://")
        .or_else(|| e.strip_prefix("http://"))
        .unwrap_or(e)
        .trim_end_matches('/');
    let host_l = host.to_ascii_lowercase();
    let e_l = e.to_ascii_lowercase();
    if e_l == host_l {
        return true;
    }
    let (h, _) = split_host_port(&host_l);
    // An entry without port names the host on any port; Docker's own matching is
    // looser still (it also matches by CIDR).
    if split_host_port(&e_l).1.is_none() && !e_l.contains('/') && e_l == h {
        return true;
    }
    if let Some((net, bits)) = e_l.split_once('/') {
        let ip: Option<IpAddr> = h.trim_start_matches('[').trim_end_matches(']').parse().ok();
        if let (Some(ip), Ok(net), Ok(bits)) = (ip, net.parse::<IpAddr>(), bits.parse::<u32>()) {
            return cidr_contains(net, bits, ip);
        }
    }
    false
}

fn cidr_contains(net: IpAddr, bits: u32, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// One place a repository can be reached: the registry itself or a mirror.
#[derive(Clone, Debug)]
struct Endpoint {
    /// `host[:port]`: key for tokens, challenges, credentials and scheme probing.
    host: String,
    /// A fixed `scheme://host[:port][/prefix]`, or `None` to decide by probing (insecure).
    base: Option<String>,
    /// Path prefix of a mirror URL (no trailing slash), used when `base` is probed.
    prefix: String,
    transport: Transport,
    mirror: bool,
}

/// The client. Cheap to share (`&self` everywhere; put it in an `Arc` for tasks).
pub struct RegistryClient {
    config: RegistryConfig,
    secure: reqwest::Client,
    insecure: reqwest::Client,
    auth: AuthCache,
    /// Scheme chosen per insecure host after probing.
    schemes: Mutex<std::collections::HashMap<String, &'static str>>,
    /// Parsed mirrors: registry domain → endpoints.
    mirrors: Vec<(String, Vec<Endpoint>)>,
}

/// Result of [`RegistryClient::resolve`].
#[derive(Clone, Debug)]
pub struct Resolved {
    /// Digest of the platform image manifest.
    pub manifest_digest: Digest,
    pub manifest_bytes: Bytes,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// Digest of the index the manifest was selected from, when the reference named one.
    pub index_digest: Option<Digest>,
}

/// A manifest or index as fetched, verified against its digest.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
    pub manifest: Document,
}

/// How a blob download ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum BlobFetch {
    /// The sink now holds all `size` bytes (`offset` included); the caller verifies them.
    Complete { size: u64 },
    /// The server ignored a Range request (answered 200 to a resume). The sink may hold
    /// bytes from this or earlier calls: discard them all and call again with offset 0.
    RestartFromZero,
}

/// What [`RegistryClient::push_blob`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    AlreadyExists,
    Uploaded,
}

/// A blob to upload: reopened for every attempt, so retries and re-authentication can
/// send it again.
#[derive(Clone, Debug)]
pub enum BlobBody {
    Bytes(Bytes),
    File(PathBuf),
}

/// Adapts a `std::io::Write` (a `File`, a `HashingWriter`) into the async sink
/// `fetch_blob` takes. Writes block the task; fine for local files and memory.
pub struct SyncSink<W>(pub W);

impl<W: io::Write + Unpin> AsyncWrite for SyncSink<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().0.write(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }
}

/// The token scope for pulling from / pushing to a repository.
fn scope_for(r: &Reference, push: bool) -> String {
    format!(
        "repository:{}:{}",
        r.path,
        if push { "pull,push" } else { "pull" }
    )
}

/// Longest wait for the HTTPS probe of a loopback or insecure registry.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Upper bound on an error body read for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// One HTTP request as `send` replays it.
struct Req<'a> {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<&'a BlobBody>,
    /// Retry transient failures (off when the caller restarts a larger sequence itself).
    retry: bool,
    /// Token scope to authenticate for; `None` sends no credentials and returns a 401 as is.
    scope: Option<&'a str>,
}

impl<'a> Req<'a> {
    fn new(method: Method, url: Url, scope: Option<&'a str>) -> Self {
        Req {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            retry: true,
            scope,
        }
    }

    fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }
}

impl BlobBody {
    fn len(&self) -> Result<u64, io::Error> {
        match self {
            BlobBody::Bytes(b) => Ok(b.len() as u64),
            BlobBody::File(p) => Ok(std::fs::metadata(p)?.len()),
        }
    }

    fn to_body(&self) -> Result<reqwest::Body, io::Error> {
        match self {
            BlobBody::Bytes(b) => Ok(reqwest::Body::from(b.clone())),
            BlobBody::File(p) => {
                let file = tokio::fs::File::from_std(std::fs::File::open(p)?);
                // A small unfold rather than tokio-util's ReaderStream, which is not a
                // direct dependency.
                let stream = futures_util::stream::unfold(file, |mut f| async move {
                    use tokio::io::AsyncReadExt;
                    let mut buf = bytes::BytesMut::with_capacity(256 * 1024);
                    match f.read_buf(&mut buf).await {
                        Ok(0) => None,
                        Ok(_) => Some((Ok::<Bytes, io::Error>(buf.freeze()), f)),
                        Err(e) => Some((Err(e), f)),
                    }
                });
                Ok(reqwest::Body::wrap_stream(stream))
            }
        }
    }
}

/// The error chain as one line: reqwest's own message rarely says what went wrong.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
}

fn chain_has_io_kind(e: &(dyn std::error::Error + 'static), kinds: &[io::ErrorKind]) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(inner) = cur {
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            if kinds.contains(&io.kind()) {
                return true;
            }
        }
        cur = inner.source();
    }
    false
}

fn is_transient_reqwest(e: &reqwest::Error) -> bool {
    !(e.is_builder() || e.is_redirect() || e.is_decode())
}

/// Reads at most `limit` bytes of a body; `Ok(None)` when it is larger.
async fn read_limited(
    resp: reqwest::Response,
    limit: u64,
) -> Result<Option<Bytes>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut out = bytes::BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out.freeze()))
}

/// The registry's error message from a failed response: the distribution spec's
/// `{"errors":[{"code","message","detail"}]}` when present, else the text.
async fn error_message(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = match read_limited(resp, ERROR_BODY_LIMIT as u64).await {
        Ok(Some(b)) => b,
        _ => Bytes::new(),
    };
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<Err1>,
    }
    #[derive(serde::Deserialize)]
    struct Err1 {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(errs) = serde_json::from_slice::<Errs>(&body) {
        let parts: Vec<String> = errs
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string()
    } else {
        text.chars().take(300).collect()
    }
}

impl RegistryClient {
    pub fn new(config: RegistryConfig) -> Result<RegistryClient, RegistryError> {
        let build = |accept_invalid: bool| {
            reqwest::Client::builder()
                .user_agent(config.user_agent.clone())
                .connect_timeout(config.connect_timeout)
                .read_timeout(config.read_timeout)
                .danger_accept_invalid_certs(accept_invalid)
                .build()
                .map_err(|e| RegistryError::Config(format!("cannot build the HTTP client: {e}")))
        };
        let mut mirrors = Vec::new();
        for (registry, urls) in &config.mirrors {
            let eps = urls
                .iter()
                .map(|u| parse_mirror(u, &config.insecure_registries))
                .collect::<Result<Vec<_>, _>>()?;
            mirrors.push((auth::normalize_registry_key(registry), eps));
        }
        Ok(RegistryClient {
            secure: build(false)?,
            insecure: build(true)?,
            auth: AuthCache::default(),
            schemes: Mutex::new(Default::default()),
            mirrors,
            config,
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The config.json in use, if any can be named.
    pub fn docker_config_path(&self) -> Option<PathBuf> {
        self.config
            .docker_config_path
            .clone()
            .or_else(auth::default_docker_config_path)
    }

    fn primary(&self, r: &Reference) -> Endpoint {
        host_endpoint(r.registry_host(), &self.config.insecure_registries)
    }

    /// Mirrors for the reference's registry first, then the registry itself.
    fn endpoints(&self, r: &Reference) -> Vec<Endpoint> {
        let domain = auth::normalize_registry_key(&r.domain);
        let mut v: Vec<Endpoint> = self
            .mirrors
            .iter()
            .filter(|(d, _)| *d == domain)
            .flat_map(|(_, eps)| eps.iter().cloned())
            .collect();
        v.push(self.primary(r));
        v
    }

    fn client_for(&self, transport: Transport) -> &reqwest::Client {
        match transport {
            Transport::Https => &self.secure,
            Transport::Insecure => &self.insecure,
        }
    }

    /// `scheme://host[:port][/prefix]` for an endpoint; insecure hosts are probed once: HTTPS
    /// (unverified) when it answers, else plain HTTP.
    async fn base_url(&self, ep: &Endpoint) -> Result<Url, RegistryError> {
        let text = match &ep.base {
            Some(b) => b.clone(),
            None => {
                let known = self
                    .schemes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&ep.host)
                    .copied();
                let scheme = match known {
                    Some(s) => s,
                    None => {
                        let probe = format!("https://{}{}/v2/", ep.host, ep.prefix);
                        // A plain HTTP server answers a TLS hello at once (an error or a
                        // hang-up); the timeout only bounds servers that wait for more.
                        let probed = self
                            .insecure
                            .get(&probe)
                            .timeout(self.config.connect_timeout.min(PROBE_TIMEOUT))
                            .send()
                            .await;
                        match probed {
                            Ok(_) => {
                                self.remember_scheme(&ep.host, "https");
                                "https"
                            }
                            Err(e) => {
                                // Nobody listening says nothing about TLS: decide again next
                                // time.
                                if !chain_has_io_kind(&e, &[io::ErrorKind::ConnectionRefused]) {
                                    self.remember_scheme(&ep.host, "http");
                                }
                                "http"
                            }
                        }
                    }
                };
                format!("{scheme}://{}{}", ep.host, ep.prefix)
            }
        };
        Url::parse(&text)
            .map_err(|e| RegistryError::Config(format!("bad registry URL {text:?}: {e}")))
    }

    fn remember_scheme(&self, host: &str, scheme: &'static str) {
        self.schemes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), scheme);
    }

    async fn url(&self, ep: &Endpoint, path: &str) -> Result<Url, RegistryError> {
        let base = self.base_url(ep).await?;
        let text = format!("{}{}", base.as_str().trim_end_matches('/'), path);
        Url::parse(&text).map_err(|e| RegistryError::Config(format!("bad URL {text:?}: {e}")))
    }

    async fn backoff(&self, attempt: u32) {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        let delay = self
            .config
            .retry_base_delay
            .saturating_mul(factor)
            .min(self.config.max_retry_delay);
        tokio::time::sleep(delay).await;
    }

    fn transport_error(
        &self,
        url: &Url,
        e: &reqwest::Error,
        transport: Transport,
    ) -> RegistryError {
        let refused = chain_has_io_kind(e, &[io::ErrorKind::ConnectionRefused]);
        let hint = if transport == Transport::Https && e.is_connect() && !refused {
            let host = url_host(url);
            format!(
                " (if {host} serves plain HTTP or an unverifiable certificate, list it in \
                 the insecure registries)"
            )
        } else {
            String::new()
        };
        RegistryError::Transport {
            url: url.to_string(),
            detail: error_chain(e),
            hint,
        }
    }

    fn credentials(&self, host: &str) -> Result<CredentialLookup, RegistryError> {
        match self.docker_config_path() {
            Some(p) => auth::lookup_credentials(&p, host),
            None => Ok(CredentialLookup::None),
        }
    }

    /// Sends a request with authentication and retries: answers a 401 by obtaining a token
    /// (or basic credentials) from the challenge and trying once more; retries connect
    /// errors, timeouts, 5xx and 429 with exponential backoff.
    async fn send(&self, ep: &Endpoint, req: Req<'_>) -> Result<reqwest::Response, RegistryError> {
        let client = self.client_for(ep.transport);
        let same_host = url_is_on_host(&req.url, &ep.host);
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        loop {
            let mut rb = client
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            if let (Some(scope), true) = (req.scope, same_host) {
                if let Some(h) = self.auth_header(ep, scope).await {
                    rb = rb.header(AUTHORIZATION, h);
                }
            }
            if let Some(body) = req.body {
                let b = body.to_body().map_err(|e| match body {
                    BlobBody::File(p) => RegistryError::Io {
                        path: p.clone(),
                        source: e,
                    },
                    BlobBody::Bytes(_) => RegistryError::Config(e.to_string()),
                })?;
                rb = rb.body(b);
            }
            match rb.send().await {
                Err(e) => {
                    if req.retry && attempt < self.config.max_retries && is_transient_reqwest(&e) {
                        self.backoff(attempt).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(self.transport_error(&req.url, &e, ep.transport));
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && req.scope.is_some() => {
                    let scope = req.scope.unwrap_or_default();
                    if reauthenticated || !same_host {
                        return Err(self.unauthorized(ep, scope, resp).await);
                    }
                    let header = www_authenticate(&resp);
                    self.authenticate(ep, scope, &header).await?;
                    reauthenticated = true;
                }
                Ok(resp)
                    if req.retry
                        && attempt < self.config.max_retries
                        && is_retryable_status(resp.status().as_u16()) =>
                {
                    self.backoff(attempt).await;
                    attempt += 1;
                }
                Ok(resp) => return Ok(resp),
            }
        }
    }

    /// The cached header for (host, scope); with a challenge already known for the host, a
    /// token is fetched up front. Failures here are left to the 401 path to report.
    async fn auth_header(&self, ep: &Endpoint, scope: &str) -> Option<String> {
        if let Some(h) = self.auth.header(&ep.host, scope) {
            return Some(h);
        }
        let ch = self.auth.challenge(&ep.host)?;
        self.obtain(ep, scope, &ch, None, None).await.ok()?;
        self.auth.header(&ep.host, scope)
    }

    async fn authenticate(
        &self,
        ep: &Endpoint,
        scope: &str,
        header: &str,
    ) -> Result<(), RegistryError> {
        let challenges = auth::parse_challenges(header);
        let ch = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .or(challenges.first())
            .cloned()
            .ok_or_else(|| RegistryError::Challenge {
                registry: ep.host.clone(),
                header: header.to_string(),
            })?;
        self.auth.forget(&ep.host, scope);
        self.auth.set_challenge(&ep.host, ch.clone());
        let extra = match &ch {
            Challenge::Bearer { scope: Some(s), .. } if s != scope => Some(s.as_str()),
            _ => None,
        };
        self.obtain(ep, scope, &ch, extra, None).await
    }

    /// Gets an Authorization header for (host, scope) from a challenge and caches it.
    async fn obtain(
        &self,
        ep: &Endpoint,
        scope: &str,
        ch: &Challenge,
        extra_scope: Option<&str>,
        creds: Option<&Credentials>,
    ) -> Result<(), RegistryError> {
        let lookup = match creds {
            Some(c) => CredentialLookup::Found(c.clone()),
            None => self.credentials(&ep.host)?,
        };
        match ch {
            Challenge::Basic { .. } => match lookup {
                CredentialLookup::Found(c) => {
                    self.auth.store(&ep.host, scope, c.basic_header(), None);
                    Ok(())
                }
                other => Err(RegistryError::Unauthorized {
                    registry: ep.host.clone(),
                    resource: scope_text(scope),
                    detail: no_credentials_detail(&ep.host, &other, "basic authentication"),
                }),
            },
            Challenge::Bearer { realm, service, .. } => {
                let mut scopes: Vec<&str> = Vec::new();
                if !scope.is_empty() {
                    scopes.push(scope);
                }
                scopes.extend(extra_scope);
                let (token, ttl) = self
                    .fetch_token(ep, realm, service.as_deref(), &scopes, &lookup)
                    .await?;
                self.auth
                    .store(&ep.host, scope, format!("Bearer {token}"), Some(ttl));
                Ok(())
            }
        }
    }

    /// GET `realm?service=..&scope=..` (anonymous, or with basic credentials).
    async fn fetch_token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scopes: &[&str],
        lookup: &CredentialLookup,
    ) -> Result<(String, Duration), RegistryError> {
        let terr = |detail: String| RegistryError::Token {
            realm: realm.to_string(),
            detail,
        };
        let mut url =
            Url::parse(realm).map_err(|e| terr(format!("the realm is not a URL: {e}")))?;
        let realm_host = url_host(&url);
        let transport = transport_for(&realm_host, &self.config.insecure_registries);
        match url.scheme() {
            "https" => {}
            "http" if transport == Transport::Insecure => {}
            "http" => {
                return Err(terr(format!(
                    "the token server {realm_host} uses plain HTTP and is neither loopback nor \
                     listed in the insecure registries"
                )))
            }
            other => return Err(terr(format!("unsupported scheme {other:?}"))),
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
            if let CredentialLookup::Found(c) = lookup {
                q.append_pair("account", &c.username);
            }
        }
        let client = self.client_for(transport);
        let mut attempt = 0;
        let resp = loop {
            let mut rb = client.get(url.clone());
            if let CredentialLookup::Found(c) = lookup {
                rb = rb.header(AUTHORIZATION, c.basic_header());
            }
            match rb.send().await {
                Ok(r)
                    if is_retryable_status(r.status().as_u16())
                        && attempt < self.config.max_retries => {}
                Ok(r) => break r,
                Err(e) if is_transient_reqwest(&e) && attempt < self.config.max_retries => {}
                Err(e) => return Err(terr(error_chain(&e))),
            }
            self.backoff(attempt).await;
            attempt += 1;
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let msg = error_message(resp).await;
            let detail = match lookup {
                CredentialLookup::Found(c) => format!(
                    "the token server refused the stored credentials for user {:?} ({msg})",
                    c.username
                ),
                other => format!(
                    "the token server refused anonymous access ({msg}); {}",
                    no_credentials_detail(&ep.host, other, "a login")
                ),
            };
            return Err(RegistryError::Unauthorized {
                registry: ep.host.clone(),
                resource: scopes.join(" "),
                detail,
            });
        }
        if !status.is_success() {
            let msg = error_message(resp).await;
            return Err(terr(format!("HTTP {status}: {msg}")));
        }
        let body = read_limited(resp, 1024 * 1024)
            .await
            .map_err(|e| terr(error_chain(&e)))?
            .ok_or_else(|| terr("the response is larger than 1 MiB".into()))?;
        let parsed: auth::TokenResponse =
            serde_json::from_slice(&body).map_err(|e| terr(format!("bad JSON: {e}")))?;
        parsed
            .into_token()
            .ok_or_else(|| terr("the response has neither token nor access_token".into()))
    }

    /// The error for a 401 that survived authentication.
    async fn unauthorized(
        &self,
        ep: &Endpoint,
        scope: &str,
        resp: reqwest::Response,
    ) -> RegistryError {
        let msg = error_message(resp).await;
        let lookup = self.credentials(&ep.host).unwrap_or(CredentialLookup::None);
        let detail = match &lookup {
            CredentialLookup::Found(c) => format!(
                "{msg}; the stored credentials for user {:?} were not accepted",
                c.username
            ),
            other => format!(
                "{msg}; {}",
                no_credentials_detail(&ep.host, other, "a login")
            ),
        };
        self.auth.forget(&ep.host, scope);
        RegistryError::Unauthorized {
            registry: ep.host.clone(),
            resource: scope_text(scope),
            detail,
        }
    }
}

fn scope_text(scope: &str) -> String {
    if scope.is_empty() {
        "the registry".to_string()
    } else {
        scope.to_string()
    }
}

fn no_credentials_detail(host: &str, lookup: &CredentialLookup, needs: &str) -> String {
    match lookup {
        CredentialLookup::Unsupported(why) => {
            format!("it requires {needs}, and the credentials for {host} are kept in {why}")
        }
        _ => format!(
            "it requires {needs} and no credentials are stored for {host} (run `berth login {host}`)"
        ),
    }
}

fn www_authenticate(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a URL points at `host[:port]` (a missing port is the scheme's default).
fn url_is_on_host(url: &Url, host: &str) -> bool {
    let (h, port) = split_host_port(host);
    let port = match port {
        Some(p) => p.parse::<u16>().ok(),
        None => url.port_or_known_default().filter(|_| url.port().is_none()),
    };
    url.host_str().is_some_and(|uh| uh.eq_ignore_ascii_case(h))
        && url.port_or_known_default() == port
}

/// `host[:port]` of a URL, as used for endpoint keys (default ports left out).
fn url_host(url: &Url) -> String {
    // host_str keeps IPv6 literals bracketed.
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

fn host_endpoint(host: &str, insecure: &[String]) -> Endpoint {
    let transport = transport_for(host, insecure);
    Endpoint {
        host: host.to_string(),
        base: (transport == Transport::Https).then(|| format!("https://{host}")),
        prefix: String::new(),
        transport,
        mirror: false,
    }
}

/// A mirror URL: `https://m.example`, `m.example:5000`, `http://127.0.0.1:5001/prefix`.
/// Plain HTTP is refused for hosts that are neither loopback nor listed insecure.
fn parse_mirror(text: &str, insecure: &[String]) -> Result<Endpoint, RegistryError> {
    let bad = |why: &str| RegistryError::Config(format!("mirror {text:?}: {why}"));
    let t = text.trim();
    let (scheme, rest) = if let Some(r) = t.strip_prefix("https://") {
        (Some("https"), r)
    } else if let Some(r) = t.strip_prefix("http://") {
        (Some("http"), r)
    } else if t.contains("://") {
        return Err(bad("only http:// and https:// URLs are supported"));
    } else {
        (None, t)
    };
    let rest = rest.trim_end_matches('/');
    let (host, prefix) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, String::new()),
    };
    if host.is_empty() || host.contains(['@', '?', '#']) {
        return Err(bad("no usable host"));
    }
    let parsed = Url::parse(&format!("https://{host}{prefix}")).map_err(|e| bad(&e.to_string()))?;
    let host = url_host(&parsed);
    let transport = transport_for(&host, insecure);
    let base = match scheme {
        Some("http") if transport != Transport::Insecure => {
            return Err(bad(&format!(
                "plain HTTP is only used for loopback registries and those listed as insecure, \
                 and {host} is neither"
            )))
        }
        Some(s) => Some(format!("{s}://{host}{prefix}")),
        None if transport == Transport::Https => Some(format!("https://{host}{prefix}")),
        None => None,
    };
    Ok(Endpoint {
        host,
        base,
        prefix,
        transport,
        mirror: true,
    })
}

/// `repo:tag` or `repo@digest`, for messages.
fn display_ref(r: &Reference, reference: &str) -> String {
    let sep = if reference.contains(':') { '@' } else { ':' };
    format!("{}{sep}{reference}", r.repository())
}

impl RegistryClient {
    /// Fetches a manifest or index by tag or digest (mirrors first), verifying its digest
    /// when one was asked for. The digest is always computed from the bytes; the
    /// `Docker-Content-Digest` header is not trusted.
    pub async fn fetch_manifest(
        &self,
        r: &Reference,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let mut last = None;
        for ep in self.endpoints(r) {
            match self.fetch_manifest_at(&ep, r, reference).await {
                Ok(m) => return Ok(m),
                // A mirror's failure (any kind, as Docker does) falls through to the next.
                Err(e) if ep.mirror => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Config("no registry endpoint".into())))
    }

    async fn fetch_manifest_at(
        &self,
        ep: &Endpoint,
        r: &Reference,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let shown = display_ref(r, reference);
        let want: Option<Digest> = if reference.contains(':') {
            Some(
                reference
                    .parse()
                    .map_err(|e| RegistryError::InvalidManifest {
                        reference: shown.clone(),
                        detail: format!("{e}"),
                    })?,
            )
        } else if is_valid_tag(reference) {
            None
        } else {
            return Err(RegistryError::InvalidManifest {
                reference: shown,
                detail: "not a valid tag or digest".into(),
            });
        };
        let scope = scope_for(r, false);
        let url = self
            .url(ep, &format!("/v2/{}/manifests/{reference}", r.path))
            .await?;
        let mut attempt = 0;
        let (bytes, content_type) = loop {
            let req =
                Req::new(Method::GET, url.clone(), Some(&scope)).header(ACCEPT, MANIFEST_ACCEPT);
            let resp = self.send(ep, req).await?;
            let status = resp.status();
            if status == StatusCode::NOT_FOUND {
                return Err(RegistryError::NotFound {
                    what: format!("manifest {shown}"),
                    registry: ep.host.clone(),
                    message: error_message(resp).await,
                });
            }
            if !status.is_success() {
                return Err(RegistryError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                    message: error_message(resp).await,
                });
            }
            let ct = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match read_limited(resp, MAX_MANIFEST_BYTES).await {
                Ok(Some(b)) => break (b, ct),
                Ok(None) => {
                    return Err(RegistryError::ManifestTooLarge {
                        reference: shown,
                        limit: MAX_MANIFEST_BYTES,
                    })
                }
                Err(_) if attempt < self.config.max_retries => {
                    self.backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(self.transport_error(&url, &e, ep.transport)),
            }
        };
        let digest = Digest::of(&bytes);
        if let Some(want) = want {
            if want != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {shown} from {}", ep.host),
                    expected: want,
                    actual: digest,
                });
            }
        }
        let (media_type, manifest) =
            manifest::parse_manifest(&shown, content_type.as_deref(), &bytes)?;
        Ok(FetchedManifest {
            digest,
            media_type,
            bytes,
            manifest,
        })
    }

    /// Resolves a reference to one image manifest for `platform`: an index is narrowed to
    /// the best-matching entry, whose manifest is fetched and checked against the entry.
    pub async fn resolve(
        &self,
        r: &Reference,
        platform: &Platform,
    ) -> Result<Resolved, RegistryError> {
        let top = self.fetch_manifest(r, &r.manifest_ref()).await?;
        let (image, index_digest) = match top.manifest {
            Document::Image(_) => (top, None),
            Document::Index(ref index) => {
                let entry = manifest::select_platform(&r.to_string(), index, platform)?;
                let child = self.fetch_manifest(r, &entry.digest.to_string()).await?;
                if child.bytes.len() as u64 != entry.size {
                    return Err(RegistryError::InvalidManifest {
                        reference: display_ref(r, &entry.digest.to_string()),
                        detail: format!(
                            "the index says {} bytes, the manifest has {}",
                            entry.size,
                            child.bytes.len()
                        ),
                    });
                }
                (child, Some(top.digest))
            }
        };
        let shown = display_ref(r, &image.digest.to_string());
        let Document::Image(m) = image.manifest else {
            return Err(RegistryError::InvalidManifest {
                reference: shown,
                detail: "an index entry points to another index".into(),
            });
        };
        if !media::is_config(&m.config.media_type) {
            return Err(RegistryError::UnsupportedMediaType {
                reference: format!("{shown} (not a container image: config)"),
                media_type: m.config.media_type,
            });
        }
        Ok(Resolved {
            manifest_digest: image.digest,
            manifest_bytes: image.bytes,
            media_type: image.media_type,
            config: m.config,
            layers: m.layers,
            index_digest,
        })
    }

    /// Streams a blob into `sink`, starting at byte `offset` (the sink already holds the
    /// bytes before it). Follows redirects (reqwest drops the Authorization header when the
    /// host or port changes), retries transient failures and resumes a body cut short with
    /// a Range request. `progress` gets the total bytes in the sink after each chunk.
    /// The caller verifies the digest.
    pub async fn fetch_blob<W, F>(
        &self,
        r: &Reference,
        desc: &Descriptor,
        offset: u64,
        sink: &mut W,
        mut progress: F,
    ) -> Result<BlobFetch, RegistryError>
    where
        W: AsyncWrite + Unpin + ?Sized,
        F: FnMut(u64),
    {
        if offset > desc.size {
            return Ok(BlobFetch::RestartFromZero);
        }
        if offset == desc.size {
            return Ok(BlobFetch::Complete { size: desc.size });
        }
        let mut pos = offset;
        let mut last = None;
        for ep in self.endpoints(r) {
            match self
                .fetch_blob_at(&ep, r, desc, &mut pos, sink, &mut progress)
                .await
            {
                Ok(outcome) => return Ok(outcome),
                Err(e @ RegistryError::Sink { .. }) => return Err(e),
                Err(e) if ep.mirror => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Config("no registry endpoint".into())))
    }

    async fn fetch_blob_at<W, F>(
        &self,
        ep: &Endpoint,
        r: &Reference,
        desc: &Descriptor,
        pos: &mut u64,
        sink: &mut W,
        progress: &mut F,
    ) -> Result<BlobFetch, RegistryError>
    where
        W: AsyncWrite + Unpin + ?Sized,
        F: FnMut(u64),
    {
        let scope = scope_for(r, false);
        let url = self
            .url(ep, &format!("/v2/{}/blobs/{}", r.path, desc.digest))
            .await?;
        let blob_err = |detail: String| RegistryError::Blob {
            digest: desc.digest.clone(),
            detail,
        };
        // Consecutive cut-short bodies without progress, and all of them: a server that
        // always cuts after a few bytes must not keep us forever.
        let (mut stalled, mut cuts) = (0u32, 0u32);
        let max_cuts = 20 + 4 * self.config.max_retries;
        loop {
            let mut req = Req::new(Method::GET, url.clone(), Some(&scope));
            if *pos > 0 {
                req = req.header(reqwest::header::RANGE, &format!("bytes={pos}-"));
            }
            let resp = self.send(ep, req).await?;
            let status = resp.status();
            match status {
                StatusCode::OK if *pos > 0 => return Ok(BlobFetch::RestartFromZero),
                StatusCode::OK => {}
                StatusCode::PARTIAL_CONTENT => {
                    let cr = resp
                        .headers()
                        .get(reqwest::header::CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let start = cr
                        .strip_prefix("bytes ")
                        .and_then(|s| s.split('-').next())
                        .and_then(|s| s.trim().parse::<u64>().ok());
                    if start != Some(*pos) {
                        return Err(blob_err(format!(
                            "asked for bytes {pos}- and got Content-Range {cr:?}"
                        )));
                    }
                }
                StatusCode::NOT_FOUND => {
                    return Err(RegistryError::NotFound {
                        what: format!("blob {} of {}", desc.digest, r.repository()),
                        registry: ep.host.clone(),
                        message: error_message(resp).await,
                    })
                }
                _ => {
                    return Err(RegistryError::Status {
                        url: url.to_string(),
                        status: status.as_u16(),
                        message: error_message(resp).await,
                    })
                }
            }
            let before = *pos;
            let mut stream = resp.bytes_stream();
            let mut cause = String::new();
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        cause = format!(": {}", error_chain(&e));
                        break;
                    }
                };
                if *pos + chunk.len() as u64 > desc.size {
                    return Err(blob_err(format!(
                        "the registry sent more than the {} bytes the descriptor declares",
                        desc.size
                    )));
                }
                sink.write_all(&chunk)
                    .await
                    .map_err(|e| RegistryError::Sink {
                        digest: desc.digest.clone(),
                        source: e,
                    })?;
                *pos += chunk.len() as u64;
                progress(*pos);
            }
            if *pos == desc.size {
                sink.flush().await.map_err(|e| RegistryError::Sink {
                    digest: desc.digest.clone(),
                    source: e,
                })?;
                return Ok(BlobFetch::Complete { size: desc.size });
            }
            stalled = if *pos > before { 0 } else { stalled + 1 };
            cuts += 1;
            if stalled > self.config.max_retries || cuts > max_cuts {
                return Err(RegistryError::Transport {
                    url: url.to_string(),
                    detail: format!("the body ended after {pos} of {} bytes{cause}", desc.size),
                    hint: String::new(),
                });
            }
            self.backoff(stalled).await;
        }
    }

    /// Fetches a small blob (an image config) into memory and verifies its digest.
    pub async fn fetch_blob_verified(
        &self,
        r: &Reference,
        desc: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        if desc.size > limit {
            return Err(RegistryError::Blob {
                digest: desc.digest.clone(),
                detail: format!(
                    "it is {} bytes, more than the {limit}-byte limit for in-memory blobs",
                    desc.size
                ),
            });
        }
        let mut buf: Vec<u8> = Vec::with_capacity(desc.size as usize);
        // A resume only happens inside fetch_blob; from offset 0 a restart cannot be asked
        // for, but two rounds are allowed for a server that ignores Range mid-way.
        for _ in 0..2 {
            match self
                .fetch_blob(r, desc, buf.len() as u64, &mut buf, |_| {})
                .await?
            {
                BlobFetch::Complete { .. } => {
                    let actual = Digest::of(&buf);
                    if actual != desc.digest {
                        return Err(RegistryError::DigestMismatch {
                            what: format!("blob of {}", r.repository()),
                            expected: desc.digest.clone(),
                            actual,
                        });
                    }
                    return Ok(buf);
                }
                BlobFetch::RestartFromZero => buf.clear(),
            }
        }
        Err(RegistryError::Blob {
            digest: desc.digest.clone(),
            detail: "the download could not be completed".into(),
        })
    }

    /// HEAD a blob: its size when the repository has it.
    pub async fn blob_exists(
        &self,
        r: &Reference,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        self.blob_exists_scoped(&self.primary(r), r, digest, &scope_for(r, false))
            .await
    }

    async fn blob_exists_scoped(
        &self,
        ep: &Endpoint,
        r: &Reference,
        digest: &Digest,
        scope: &str,
    ) -> Result<Option<u64>, RegistryError> {
        let url = self
            .url(ep, &format!("/v2/{}/blobs/{digest}", r.path))
            .await?;
        let resp = self
            .send(ep, Req::new(Method::HEAD, url.clone(), Some(scope)))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(RegistryError::Status {
                url: url.to_string(),
                status: s.as_u16(),
                message: error_message(resp).await,
            }),
        }
    }

    /// Uploads a blob unless the repository has it: POST an upload session, then one PUT
    /// of the whole body with `?digest=` (the registry verifies it). Retried from the POST
    /// on transient failure, since a failed PUT may end the session.
    pub async fn push_blob(
        &self,
        r: &Reference,
        desc: &Descriptor,
        body: BlobBody,
    ) -> Result<PushOutcome, RegistryError> {
        let len = body.len().map_err(|e| match &body {
            BlobBody::File(p) => RegistryError::Io {
                path: p.clone(),
                source: e,
            },
            BlobBody::Bytes(_) => RegistryError::Config(e.to_string()),
        })?;
        if len != desc.size {
            return Err(RegistryError::Blob {
                digest: desc.digest.clone(),
                detail: format!(
                    "the descriptor says {} bytes, the content has {len}",
                    desc.size
                ),
            });
        }
        if let BlobBody::Bytes(b) = &body {
            let actual = Digest::of(b);
            if actual != desc.digest {
                return Err(RegistryError::DigestMismatch {
                    what: "blob to push".into(),
                    expected: desc.digest.clone(),
                    actual,
                });
            }
        }
        let ep = self.primary(r);
        let scope = scope_for(r, true);
        if self
            .blob_exists_scoped(&ep, r, &desc.digest, &scope)
            .await?
            .is_some()
        {
            return Ok(PushOutcome::AlreadyExists);
        }
        let mut attempt = 0;
        loop {
            match self.upload_once(&ep, r, desc, &body, &scope).await {
                Ok(()) => return Ok(PushOutcome::Uploaded),
                Err(e) if e.is_transient() && attempt < self.config.max_retries => {
                    self.backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn upload_once(
        &self,
        ep: &Endpoint,
        r: &Reference,
        desc: &Descriptor,
        body: &BlobBody,
        scope: &str,
    ) -> Result<(), RegistryError> {
        let url = self
            .url(ep, &format!("/v2/{}/blobs/uploads/", r.path))
            .await?;
        let req = Req::new(Method::POST, url.clone(), Some(scope)).header(CONTENT_LENGTH, "0");
        let resp = self.send(ep, req).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(RegistryError::Status {
                url: url.to_string(),
                status: resp.status().as_u16(),
                message: error_message(resp).await,
            });
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Status {
                url: url.to_string(),
                status: 202,
                message: "the upload was accepted without a Location header".into(),
            })?
            .to_string();
        let mut put = url.join(&location).map_err(|e| RegistryError::Status {
            url: url.to_string(),
            status: 202,
            message: format!("bad upload Location {location:?}: {e}"),
        })?;
        put.query_pairs_mut()
            .append_pair("digest", &desc.digest.to_string());
        let mut req = Req::new(Method::PUT, put.clone(), Some(scope))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, &desc.size.to_string());
        req.body = Some(body);
        req.retry = false;
        let resp = self.send(ep, req).await?;
        if resp.status() != StatusCode::CREATED {
            let status = resp.status().as_u16();
            let message = error_message(resp).await;
            if status == 400 && message.contains("DIGEST_INVALID") {
                return Err(RegistryError::Blob {
                    digest: desc.digest.clone(),
                    detail: format!(
                        "the registry found another digest for the uploaded content: {message}"
                    ),
                });
            }
            return Err(RegistryError::Status {
                url: put.to_string(),
                status,
                message,
            });
        }
        Ok(())
    }

    /// Uploads a manifest or index under the reference's tag (or its digest when it has
    /// no tag). Returns the manifest's digest.
    pub async fn push_manifest(
        &self,
        r: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let digest = Digest::of(bytes);
        let shown = r.to_string();
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(RegistryError::ManifestTooLarge {
                reference: shown,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        if let Some(want) = &r.digest {
            if *want != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest to push as {shown}"),
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        let target = r.tag.clone().unwrap_or_else(|| digest.to_string());
        let ep = self.primary(r);
        let scope = scope_for(r, true);
        let url = self
            .url(&ep, &format!("/v2/{}/manifests/{target}", r.path))
            .await?;
        let body = BlobBody::Bytes(Bytes::copy_from_slice(bytes));
        let mut req =
            Req::new(Method::PUT, url.clone(), Some(&scope)).header(CONTENT_TYPE, media_type);
        req.body = Some(&body);
        let resp = self.send(&ep, req).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(RegistryError::Status {
                url: url.to_string(),
                status: resp.status().as_u16(),
                message: error_message(resp).await,
            });
        }
        Ok(digest)
    }

    /// Checks credentials against a registry's `/v2/` (through the challenge it sends) and
    /// stores them in config.json. `registry` is a host (`localhost:5000`), a URL, or a
    /// Docker Hub spelling. Returns the config key written.
    pub async fn login(
        &self,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<String, RegistryError> {
        let path = self.docker_config_path().ok_or_else(|| {
            RegistryError::Config("no docker config path (set DOCKER_CONFIG or HOME)".into())
        })?;
        let domain = auth::normalize_registry_key(registry);
        if domain.is_empty() {
            return Err(RegistryError::Config(format!(
                "login: no registry host in {registry:?}"
            )));
        }
        let host = registry_host(&domain).to_string();
        let ep = host_endpoint(&host, &self.config.insecure_registries);
        let creds = Credentials {
            username: username.to_string(),
            password: password.to_string(),
        };
        let url = self.url(&ep, "/v2/").await?;
        let resp = self
            .send(&ep, Req::new(Method::GET, url.clone(), None))
            .await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let header = www_authenticate(&resp);
            let challenges = auth::parse_challenges(&header);
            let ch = challenges
                .iter()
                .find(|c| matches!(c, Challenge::Bearer { .. }))
                .or(challenges.first())
                .cloned()
                .ok_or_else(|| RegistryError::Challenge {
                    registry: host.clone(),
                    header: header.clone(),
                })?;
            const LOGIN: &str = "";
            self.auth.forget_host(&host);
            self.obtain(&ep, LOGIN, &ch, None, Some(&creds)).await?;
            let auth_header = self.auth.header(&host, LOGIN).unwrap_or_default();
            let check = self
                .client_for(ep.transport)
                .get(url.clone())
                .header(AUTHORIZATION, auth_header)
                .send()
                .await
                .map_err(|e| self.transport_error(&url, &e, ep.transport))?;
            self.auth.forget_host(&host);
            if check.status() == StatusCode::UNAUTHORIZED {
                return Err(RegistryError::Unauthorized {
                    registry: host,
                    resource: "the registry".into(),
                    detail: format!(
                        "login as {username:?} failed: {}",
                        error_message(check).await
                    ),
                });
            }
            if !check.status().is_success() {
                return Err(RegistryError::Status {
                    url: url.to_string(),
                    status: check.status().as_u16(),
                    message: error_message(check).await,
                });
            }
        } else if !resp.status().is_success() {
            return Err(RegistryError::Status {
                url: url.to_string(),
                status: resp.status().as_u16(),
                message: error_message(resp).await,
            });
        }
        let key = auth::store_credentials(&path, &domain, &creds)?;
        self.auth.forget_host(&host);
        Ok(key)
    }

    /// Removes stored credentials for a registry; returns whether any were there.
    pub fn logout(&self, registry: &str) -> Result<bool, RegistryError> {
        let Some(path) = self.docker_config_path() else {
            return Ok(false);
        };
        let domain = auth::normalize_registry_key(registry);
        let removed = auth::remove_credentials(&path, &domain)?;
        self.auth.forget_host(registry_host(&domain));
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_or_listed_insecure() {
        let none: Vec<String> = vec![];
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
        ] {
            assert_eq!(transport_for(h, &none), Transport::Insecure, "{h}");
        }
        for h in [
            "myreg.io",
            "myreg.io:5000",
            "registry-1.docker.io",
            "10.1.2.3:5000",
            "[2001:db8::1]:5000",
        ] {
            assert_eq!(transport_for(h, &none), Transport::Https, "{h}");
        }
        let insecure: Vec<String> = [
            "myreg.io:5000",
            "http://other.io/",
            "plain.io",
            "10.0.0.0/8",
            "fd00::/8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            transport_for("myreg.io:5000", &insecure),
            Transport::Insecure
        );
        assert_eq!(
            transport_for("myreg.io:5001", &insecure),
            Transport::Https,
            "port must match"
        );
        assert_eq!(transport_for("myreg.io", &insecure), Transport::Https);
        assert_eq!(transport_for("other.io", &insecure), Transport::Insecure);
        assert_eq!(
            transport_for("plain.io:8080", &insecure),
            Transport::Insecure,
            "no port = any port"
        );
        assert_eq!(
            transport_for("10.1.2.3:5000", &insecure),
            Transport::Insecure
        );
        assert_eq!(transport_for("11.1.2.3:5000", &insecure), Transport::Https);
        assert_eq!(
            transport_for("[fd12::1]:5000", &insecure),
            Transport::Insecure
        );
        assert_eq!(transport_for("[fe80::1]", &insecure), Transport::Https);
        assert!(cidr_contains(
            "0.0.0.0".parse().unwrap(),
            0,
            "1.2.3.4".parse().unwrap()
        ));
        assert!(!cidr_contains(
            "1.2.3.4".parse().unwrap(),
            33,
            "1.2.3.4".parse().unwrap()
        ));
    }

    #[test]
    fn endpoints_put_mirrors_first_and_refuse_plain_http_mirrors_elsewhere() {
        let cfg = RegistryConfig {
            mirrors: vec![
                (
                    "index.docker.io".into(),
                    vec![
                        "https://mirror.example".into(),
                        "127.0.0.1:5001/pfx/".into(),
                    ],
                ),
                ("myreg.io".into(), vec!["http://cache.local:80".into()]),
            ],
            insecure_registries: vec!["cache.local:80".into()],
            ..RegistryConfig::default()
        };
        let c = RegistryClient::new(cfg).unwrap();
        let eps = c.endpoints(&Reference::parse("redis").unwrap());
        let hosts: Vec<_> = eps
            .iter()
            .map(|e| (e.host.as_str(), e.base.as_deref(), e.mirror))
            .collect();
        assert_eq!(
            hosts,
            vec![
                ("mirror.example", Some("https://mirror.example"), true),
                ("127.0.0.1:5001", None, true),
                (
                    "registry-1.docker.io",
                    Some("https://registry-1.docker.io"),
                    false
                ),
            ]
        );
        assert_eq!(eps[1].prefix, "/pfx");
        assert_eq!(eps[1].transport, Transport::Insecure);
        let eps = c.endpoints(&Reference::parse("myreg.io/a").unwrap());
        assert_eq!(eps[0].base.as_deref(), Some("http://cache.local:80"));
        assert_eq!(
            c.endpoints(&Reference::parse("other.io/a").unwrap()).len(),
            1
        );

        let bad = RegistryConfig {
            mirrors: vec![("docker.io".into(), vec!["http://mirror.example".into()])],
            ..RegistryConfig::default()
        };
        let e = RegistryClient::new(bad).err().unwrap().to_string();
        assert!(
            e.contains("mirror.example") && e.contains("plain HTTP"),
            "{e}"
        );
        for junk in ["ftp://x", "", "https://", "a b"] {
            let cfg = RegistryConfig {
                mirrors: vec![("docker.io".into(), vec![junk.into()])],
                ..RegistryConfig::default()
            };
            assert!(RegistryClient::new(cfg).is_err(), "{junk:?}");
        }
    }

    fn assert_send<T: Send>(_: &T) {}

    /// The content store spawns downloads on tokio tasks: the futures must be Send.
    #[allow(dead_code)]
    fn futures_are_send(c: &RegistryClient, r: &Reference, d: &Descriptor, p: &Platform) {
        assert_send(&c.resolve(r, p));
        let mut file_sink: Vec<u8> = Vec::new();
        assert_send(&c.fetch_blob(r, d, 0, &mut file_sink, |_| {}));
        let mut sync_sink = SyncSink(std::io::sink());
        assert_send(&c.fetch_blob(r, d, 0, &mut sync_sink, |_| {}));
        assert_send(&c.fetch_blob_verified(r, d, 1));
        assert_send(&c.push_blob(r, d, BlobBody::File(PathBuf::new())));
        assert_send(&c.push_manifest(r, "", b""));
        assert_send(&c.login("", "", ""));
    }

    #[test]
    fn urls_are_matched_to_hosts_with_default_ports() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(url_is_on_host(&u("https://myreg.io/v2/"), "myreg.io"));
        assert!(url_is_on_host(
            &u("https://myreg.io:443/v2/"),
            "myreg.io:443"
        ));
        assert!(url_is_on_host(&u("https://myreg.io/v2/"), "myreg.io:443"));
        assert!(url_is_on_host(
            &u("http://127.0.0.1:5000/x"),
            "127.0.0.1:5000"
        ));
        assert!(url_is_on_host(&u("http://[::1]:5000/x"), "[::1]:5000"));
        assert!(!url_is_on_host(
            &u("http://127.0.0.1:5001/x"),
            "127.0.0.1:5000"
        ));
        assert!(!url_is_on_host(&u("https://myreg.io:8443/v2/"), "myreg.io"));
        assert!(!url_is_on_host(&u("https://storage.example/b"), "myreg.io"));
    }

    #[test]
    fn transient_errors_are_classified() {
        let status = |s| RegistryError::Status {
            url: "u".into(),
            status: s,
            message: String::new(),
        };
        for s in [500, 502, 503, 504, 429, 408] {
            assert!(status(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 501, 505] {
            assert!(!status(s).is_transient(), "{s}");
        }
        assert!(!RegistryError::Schema1 {
            reference: "r".into()
        }
        .is_transient());
    }
}
