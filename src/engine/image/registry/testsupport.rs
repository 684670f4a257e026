//! Test support for the registry client and everything that pulls or pushes images:
//! a real CNCF distribution registry (Debian's `docker-registry`) on a loopback port, a
//! scripted HTTP server, and a fake registry on top of it that injects faults (corrupt
//! blobs, bodies cut short, 5xx, ignored Range, redirects, schema 1, token auth).
//!
//! A fake server must hang up on a TLS ClientHello (first byte 0x16), as these do: the
//! client probes loopback registries with HTTPS first and would otherwise wait for its
//! probe timeout.
//!
//! Plain std threads and sockets: tests must not depend on a tokio runtime being around,
//! and these servers must behave badly on purpose, which a real HTTP stack resists.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Where the registry binary is; `BERTH_TEST_REGISTRY_BIN` overrides.
pub fn registry_binary() -> PathBuf {
    std::env::var_os("BERTH_TEST_REGISTRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"))
}

/// A `docker-registry serve` on 127.0.0.1:<free port> with storage in a temp dir; killed on
/// drop.
pub struct TestRegistry {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// An open registry (no auth).
    pub fn start() -> io::Result<TestRegistry> {
        TestRegistry::start_inner(None)
    }

    /// A registry requiring HTTP basic auth for `user`/`password` (htpasswd, bcrypt).
    pub fn start_with_basic_auth(user: &str, password: &str) -> io::Result<TestRegistry> {
        TestRegistry::start_inner(Some((user, password)))
    }

    fn start_inner(auth: Option<(&str, &str)>) -> io::Result<TestRegistry> {
        let bin = registry_binary();
        if !bin.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} not found: install Debian's docker-registry package",
                    bin.display()
                ),
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()?;
        let mut last_err = None;
        // The free port is found by binding and releasing it; another process may take it
        // before the registry does, so a failed start is tried again on a new port.
        for _ in 0..5 {
            let port = free_port()?;
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let config = registry_config(dir.path(), addr, auth)?;
            let log = std::fs::File::create(dir.path().join("registry.log"))?;
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            match wait_for_http(addr, &mut child, Duration::from_secs(15)) {
                Ok(()) => return Ok(TestRegistry { child, addr, dir }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = Some(e);
                }
            }
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        Err(io::Error::other(format!(
            "docker-registry did not start: {}; log:\n{log}",
            last_err.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`, the domain to put in references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The registry's storage root.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The registry's own log (useful when a test fails).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn registry_config(
    dir: &Path,
    addr: SocketAddr,
    auth: Option<(&str, &str)>,
) -> io::Result<PathBuf> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {addr}\n  secret: berth-test-secret\n",
        data.display()
    );
    if let Some((user, password)) = auth {
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, format!("{user}:{}\n", bcrypt_hash(password)?))?;
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            htpasswd.display()
        ));
    }
    let path = dir.join("config.yml");
    std::fs::write(&path, yaml)?;
    Ok(path)
}

/// Polls until something answers HTTP on `addr`, failing early if the child exits.
fn wait_for_http(addr: SocketAddr, child: &mut Child, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!("registry exited early: {status}")));
        }
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            if s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok() {
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("nothing answered on {addr}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A bcrypt hash (`$2b$`, cost 5) for an htpasswd file, from the system's libcrypt
/// (libxcrypt; essential in Debian) loaded at run time: no bcrypt crate needed, and the
/// berth binary does not link libcrypt.
pub fn bcrypt_hash(password: &str) -> io::Result<String> {
    use std::ffi::{c_char, c_int, c_ulong, CStr, CString};
    type GenSalt =
        unsafe extern "C" fn(*const c_char, c_ulong, *const c_char, c_int) -> *mut c_char;
    type Crypt = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut c_char;
    // crypt() returns a static buffer.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let pw = CString::new(password).map_err(|_| io::Error::other("password contains NUL"))?;
    // SAFETY: dlopen/dlsym with NUL-terminated names; the symbols have the C signatures
    // declared above (crypt(3), crypt_gensalt(3)); returned pointers are checked for NULL
    // and copied out before the lock is released. The library stays loaded (no dlclose).
    unsafe {
        let lib = libc::dlopen(c"libcrypt.so.1".as_ptr(), libc::RTLD_NOW);
        if lib.is_null() {
            return Err(io::Error::other("cannot load libcrypt.so.1"));
        }
        let gensalt = libc::dlsym(lib, c"crypt_gensalt".as_ptr());
        let crypt = libc::dlsym(lib, c"crypt".as_ptr());
        if gensalt.is_null() || crypt.is_null() {
            return Err(io::Error::other("libcrypt lacks crypt/crypt_gensalt"));
        }
        let gensalt: GenSalt = std::mem::transmute::<*mut libc::c_void, GenSalt>(gensalt);
        let crypt: Crypt = std::mem::transmute::<*mut libc::c_void, Crypt>(crypt);
        let salt = gensalt(c"$2b$".as_ptr(), 5, std::ptr::null(), 0);
        if salt.is_null() {
            return Err(io::Error::other("crypt_gensalt failed"));
        }
        let salt = CStr::from_ptr(salt).to_owned();
        let hash = crypt(pw.as_ptr(), salt.as_ptr());
        if hash.is_null() {
            return Err(io::Error::other("crypt failed"));
        }
        let hash = CStr::from_ptr(hash).to_string_lossy().into_owned();
        if !hash.starts_with("$2b$") {
            return Err(io::Error::other(format!(
                "crypt gave no bcrypt hash: {hash}"
            )));
        }
        Ok(hash)
    }
}

/// A request as the scripted server saw it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    /// Path with query, as sent: `/v2/x/blobs/sha256:..?a=b`.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// A query parameter's raw (undecoded beyond %XX) value.
    pub fn query(&self, name: &str) -> Vec<String> {
        let Some((_, q)) = self.target.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response to send. The body goes out with a Content-Length for all of it; `cut_after`
/// closes the connection after that many body bytes (a body cut short).
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub cut_after: Option<usize>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            ..Response::default()
        }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        Response::new(status)
            .header("Content-Type", "application/json")
            .body(body.to_string().into_bytes())
    }

    /// The distribution spec's error body.
    pub fn registry_error(status: u16, code: &str, message: &str) -> Response {
        Response::json(
            status,
            &serde_json::json!({"errors": [{"code": code, "message": message}]}),
        )
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }

    pub fn cut_after(mut self, n: usize) -> Response {
        self.cut_after = Some(n);
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1:<free port> answering every request with a closure,
/// one request per connection. Records every request. Stops on drop.
pub struct ScriptedServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    pub fn start<F>(handler: F) -> io::Result<ScriptedServer>
    where
        F: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (handler, requests) = (handler.clone(), requests2.clone());
                std::thread::spawn(move || {
                    let _ = serve_connection(conn, &*handler, &requests);
                });
            }
        });
        Ok(ScriptedServer {
            addr,
            stop,
            requests,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn clear_requests(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_connection(
    conn: TcpStream,
    handler: &Handler,
    requests: &Mutex<Vec<Request>>,
) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    // A TLS ClientHello (a client probing for HTTPS) starts with 0x16: hang up at once, as
    // a plain HTTP server that cannot speak TLS effectively does.
    if reader.fill_buf()?.first() == Some(&0x16) {
        return conn.shutdown(Shutdown::Both);
    }
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if let Some(n) = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0u8; n];
        reader.read_exact(&mut body)?;
        req.body = body;
    } else if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        req.body = read_chunked(&mut reader)?;
    }
    requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(req.clone());
    let resp = handler(&req);
    write_response(conn, &req, &resp)
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if n == 0 {
            let mut crlf = String::new();
            reader.read_line(&mut crlf)?;
            return Ok(out);
        }
        let start = out.len();
        out.resize(start + n, 0);
        reader.read_exact(&mut out[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

fn write_response(mut conn: TcpStream, req: &Request, resp: &Response) -> io::Result<()> {
    let reason = match resp.status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\nConnection: close\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !resp
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    if req.method != "HEAD" {
        let n = resp
            .cut_after
            .unwrap_or(resp.body.len())
            .min(resp.body.len());
        conn.write_all(&resp.body[..n])?;
    }
    conn.flush()?;
    conn.shutdown(Shutdown::Both)
}

/// Bearer-token settings of a [`FakeRegistry`]: requests must carry `Bearer <token>`;
/// others get a 401 challenge naming `realm` and `service`.
#[derive(Clone, Debug)]
pub struct BearerAuth {
    pub realm: String,
    pub service: String,
    pub token: String,
}

/// What a [`FakeRegistry`] serves and how it misbehaves. Tests change it at any time
/// through [`FakeRegistry::state`].
#[derive(Clone, Debug, Default)]
pub struct FakeState {
    /// `"<repo>/<tag or digest>"` → (Content-Type, bytes).
    pub manifests: HashMap<String, (String, Vec<u8>)>,
    /// Digest text → bytes.
    pub blobs: HashMap<String, Vec<u8>>,
    /// The next `fail_next` requests answer `fail_status` (500 when 0).
    pub fail_next: u32,
    pub fail_status: u16,
    /// The next `cut_next` blob bodies stop after `cut_at` bytes of what they send.
    pub cut_next: u32,
    pub cut_at: usize,
    /// Answer 200 with the whole blob to Range requests.
    pub ignore_range: bool,
    /// Blob digests served with one byte flipped.
    pub corrupt: HashSet<String>,
    /// Answer blob GETs with a 307 to `<this base URL><same path>`.
    pub redirect_blobs: Option<String>,
    pub bearer: Option<BearerAuth>,
    /// Required basic credentials.
    pub basic: Option<(String, String)>,
}

/// A registry look-alike on the scripted server, serving whatever [`FakeState`] holds.
/// Answers Range requests with 206 unless told not to.
pub struct FakeRegistry {
    server: ScriptedServer,
    state: Arc<Mutex<FakeState>>,
}

impl FakeRegistry {
    pub fn start() -> io::Result<FakeRegistry> {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let s2 = state.clone();
        let server = ScriptedServer::start(move |req| {
            let mut st = s2.lock().unwrap_or_else(|p| p.into_inner());
            fake_registry_answer(&mut st, req)
        })?;
        Ok(FakeRegistry { server, state })
    }

    /// Locks the state for reading or changing.
    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn host(&self) -> String {
        self.server.host()
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }

    pub fn clear_requests(&self) {
        self.server.clear_requests()
    }

    /// Adds a manifest under `repo` by tag and by its digest; returns the digest text.
    pub fn add_manifest(&self, repo: &str, tag: &str, media_type: &str, bytes: &[u8]) -> String {
        let digest = crate::engine::image::digest::Digest::of(bytes).to_string();
        let mut st = self.state();
        let entry = (media_type.to_string(), bytes.to_vec());
        st.manifests.insert(format!("{repo}/{tag}"), entry.clone());
        st.manifests.insert(format!("{repo}/{digest}"), entry);
        digest
    }

    /// Adds a blob; returns its digest text.
    pub fn add_blob(&self, bytes: &[u8]) -> String {
        let digest = crate::engine::image::digest::Digest::of(bytes).to_string();
        self.state().blobs.insert(digest.clone(), bytes.to_vec());
        digest
    }
}

fn fake_registry_answer(st: &mut FakeState, req: &Request) -> Response {
    if st.fail_next > 0 {
        st.fail_next -= 1;
        let status = if st.fail_status == 0 {
            500
        } else {
            st.fail_status
        };
        return Response::registry_error(status, "UNKNOWN", "injected failure");
    }
    if let Some(b) = &st.bearer {
        if req.header("authorization") != Some(&format!("Bearer {}", b.token)) {
            let scope = scope_of(req.path());
            let mut ch = format!("Bearer realm=\"{}\",service=\"{}\"", b.realm, b.service);
            if let Some(s) = scope {
                ch.push_str(&format!(",scope=\"{s}\""));
            }
            return Response::registry_error(401, "UNAUTHORIZED", "authentication required")
                .header("WWW-Authenticate", &ch);
        }
    }
    if let Some((u, p)) = &st.basic {
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        );
        if req.header("authorization") != Some(want.as_str()) {
            return Response::registry_error(401, "UNAUTHORIZED", "authentication required")
                .header("WWW-Authenticate", "Basic realm=\"fake\"");
        }
    }
    let path = req.path().to_string();
    if path == "/v2/" || path == "/v2" {
        return Response::json(200, &serde_json::json!({}));
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Response::new(404);
    };
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        return match st.manifests.get(&format!("{repo}/{reference}")) {
            Some((ct, bytes)) => Response::new(200)
                .header("Content-Type", ct)
                .header(
                    "Docker-Content-Digest",
                    &crate::engine::image::digest::Digest::of(bytes).to_string(),
                )
                .body(bytes.clone()),
            None => Response::registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
        };
    }
    if let Some((_, digest)) = rest.rsplit_once("/blobs/") {
        if let Some(base) = &st.redirect_blobs {
            return Response::new(307).header("Location", &format!("{base}{}", req.target));
        }
        let Some(blob) = st.blobs.get(digest) else {
            return Response::registry_error(404, "BLOB_UNKNOWN", "blob unknown to registry");
        };
        let mut blob = blob.clone();
        if st.corrupt.contains(digest) {
            if let Some(b) = blob.first_mut() {
                *b ^= 0xff;
            }
        }
        let len = blob.len();
        let start = req
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|_| !st.ignore_range);
        let mut resp = match start {
            Some(s) if s < len => Response::new(206)
                .header("Content-Range", &format!("bytes {s}-{}/{len}", len - 1))
                .body(blob[s..].to_vec()),
            Some(_) => return Response::new(416),
            None => Response::new(200).body(blob),
        };
        resp = resp.header("Content-Type", "application/octet-stream");
        if st.cut_next > 0 && req.method == "GET" {
            st.cut_next -= 1;
            resp = resp.cut_after(st.cut_at);
        }
        return resp;
    }
    Response::new(404)
}

/// `repository:<name>:pull` for a /v2/<name>/... path.
fn scope_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let name = ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .find_map(|m| rest.split_once(m).map(|(n, _)| n))?;
    Some(format!("repository:{name}:pull"))
}

/// A token endpoint: answers GET `/token` with `{"token": <token>, "expires_in": 300}`,
/// optionally only to the right basic credentials.
pub fn token_server(token: &str, creds: Option<(&str, &str)>) -> io::Result<ScriptedServer> {
    let token = token.to_string();
    let want = creds.map(|(u, p)| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    });
    ScriptedServer::start(move |req| {
        if req.path() != "/token" {
            return Response::new(404);
        }
        if let Some(w) = &want {
            if req.header("authorization") != Some(w.as_str()) {
                return Response::json(401, &serde_json::json!({"details": "bad credentials"}));
            }
        }
        Response::json(200, &serde_json::json!({"token": token, "expires_in": 300}))
    })
}
