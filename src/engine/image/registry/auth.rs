//! Registry authentication pieces: `WWW-Authenticate` challenges, bearer-token responses,
//! a token cache, and credentials in Docker's `config.json` (read, and written by login).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::RegistryError;
use crate::engine::image::fsutil;
use crate::engine::image::reference::DEFAULT_DOMAIN;

/// The key `docker login` uses for Docker Hub in config.json.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// One parsed challenge from a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic {
        realm: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value (RFC 7235: `scheme param=value, param="quoted"`,
/// possibly several challenges in one header). Unknown schemes are skipped; a Bearer
/// challenge without a realm is unusable and skipped too.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut scheme: Option<String> = None;
    let mut params: HashMap<String, String> = HashMap::new();
    let flush =
        |scheme: &Option<String>, params: &mut HashMap<String, String>, out: &mut Vec<_>| {
            match scheme.as_deref() {
                Some("bearer") => {
                    if let Some(realm) = params.remove("realm") {
                        out.push(Challenge::Bearer {
                            realm,
                            service: params.remove("service"),
                            scope: params.remove("scope"),
                        });
                    }
                }
                Some("basic") => out.push(Challenge::Basic {
                    realm: params.remove("realm"),
                }),
                _ => {}
            }
            params.clear();
        };
    let b = header.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'=' | b',') {
            i += 1;
        }
        if start == i {
            break;
        }
        let token = &header[start..i];
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    // Push whole UTF-8 characters: find the next char boundary.
                    let ch_end = (i + 1..=b.len())
                        .find(|&e| header.is_char_boundary(e))
                        .unwrap_or(b.len());
                    v.push_str(&header[i..ch_end]);
                    i = ch_end;
                }
                i += 1;
                v
            } else {
                let s = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                header[s..i].trim().to_string()
            };
            params.insert(token.to_ascii_lowercase(), value);
        } else {
            // A bare token starts a new challenge.
            flush(&scheme, &mut params, &mut out);
            scheme = Some(token.to_ascii_lowercase());
        }
    }
    flush(&scheme, &mut params, &mut out);
    out
}

/// The token endpoint's answer (distribution token spec; `access_token` is the OAuth2
/// spelling some servers use).
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub fn into_token(self) -> Option<(String, Duration)> {
        let t = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        // The spec's default lifetime is 60 s; tokens claiming less are treated as 60 s.
        let secs = self.expires_in.unwrap_or(60).max(60);
        Some((t, Duration::from_secs(secs)))
    }
}

/// (host, scope) → (Authorization header, expiry; `None` for basic credentials).
type TokenMap = HashMap<(String, String), (String, Option<Instant>)>;

/// Authorization headers per (host, scope), with expiry; plus the challenge last seen
/// per host so later requests authenticate up front instead of collecting a 401 first.
#[derive(Default)]
pub struct AuthCache {
    tokens: Mutex<TokenMap>,
    challenges: Mutex<HashMap<String, Challenge>>,
}

/// Tokens are dropped this long before they expire, so one is not used mid-request as it
/// runs out.
const EXPIRY_SLACK: Duration = Duration::from_secs(10);

impl AuthCache {
    pub fn header(&self, host: &str, scope: &str) -> Option<String> {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let key = (host.to_string(), scope.to_string());
        match map.get(&key) {
            Some((h, None)) => Some(h.clone()),
            Some((h, Some(exp))) if Instant::now() + EXPIRY_SLACK < *exp => Some(h.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn store(&self, host: &str, scope: &str, header: String, ttl: Option<Duration>) {
        let exp = ttl.map(|t| Instant::now() + t);
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((host.to_string(), scope.to_string()), (header, exp));
    }

    pub fn forget(&self, host: &str, scope: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(host.to_string(), scope.to_string()));
    }

    pub fn forget_host(&self, host: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(h, _), _| h != host);
        self.challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(host);
    }

    pub fn challenge(&self, host: &str) -> Option<Challenge> {
        self.challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned()
    }

    pub fn set_challenge(&self, host: &str, c: Challenge) {
        self.challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), c);
    }
}

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// What config.json says about a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialLookup {
    Found(Credentials),
    /// Credentials exist but are kept where berth cannot read them (a credential helper or
    /// an OAuth identity token); the text says which.
    Unsupported(String),
    None,
}

#[derive(Deserialize, Default)]
struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn default_docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Docker's `ConvertToHostname` plus Docker Hub aliasing: config keys may be URLs
/// (`https://index.docker.io/v1/`), hosts, or hosts with ports; all Docker Hub spellings
/// compare equal.
pub fn normalize_registry_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or_default().to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DEFAULT_DOMAIN.to_string()
        }
        _ => host,
    }
}

/// The key `docker login` would write for a registry.
pub fn config_key_for(registry: &str) -> String {
    let n = normalize_registry_key(registry);
    if n == DEFAULT_DOMAIN {
        DOCKER_HUB_CONFIG_KEY.to_string()
    } else {
        n
    }
}

fn read_config_value(path: &Path) -> Result<Option<serde_json::Value>, RegistryError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(None),
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| RegistryError::DockerConfig {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Looks up credentials for a registry host (`registry-1.docker.io`, `localhost:5000`).
/// A plain `auths` entry wins; helpers are reported as unsupported rather than run.
pub fn lookup_credentials(path: &Path, host: &str) -> Result<CredentialLookup, RegistryError> {
    let Some(value) = read_config_value(path)? else {
        return Ok(CredentialLookup::None);
    };
    let cfg: DockerConfigFile =
        serde_json::from_value(value).map_err(|e| RegistryError::DockerConfig {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    let want = normalize_registry_key(host);
    let bad = |detail: String| RegistryError::DockerConfig {
        path: path.to_path_buf(),
        detail,
    };
    let mut identity_token = false;
    for (key, entry) in &cfg.auths {
        if normalize_registry_key(key) != want {
            continue;
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| bad(format!("auths.{key}.auth is not base64: {e}")))?;
            let text = String::from_utf8(raw)
                .map_err(|_| bad(format!("auths.{key}.auth is not UTF-8")))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| bad(format!("auths.{key}.auth is not user:password")))?;
            return Ok(CredentialLookup::Found(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(CredentialLookup::Found(Credentials {
                username: u.clone(),
                password: p.clone(),
            }));
        }
        identity_token |= entry
            .identitytoken
            .as_deref()
            .is_some_and(|t| !t.is_empty());
    }
    let helper = cfg
        .cred_helpers
        .iter()
        .find(|(k, _)| normalize_registry_key(k) == want)
        .map(|(_, v)| v.clone())
        .or(cfg.creds_store.filter(|s| !s.is_empty()));
    if let Some(h) = helper {
        return Ok(CredentialLookup::Unsupported(format!(
            "credential helper docker-credential-{h} (configured in {}), which berth does not \
             run; use `berth login` to store credentials in the file itself",
            path.display()
        )));
    }
    if identity_token {
        return Ok(CredentialLookup::Unsupported(format!(
            "an OAuth identity token in {}, which berth does not support; use `berth login` \
             with a user name and password or access token",
            path.display()
        )));
    }
    Ok(CredentialLookup::None)
}

/// Stores `user:pass` for a registry in config.json, keeping every other key, removing
/// other spellings of the same registry, with mode 0600, atomically.
pub fn store_credentials(
    path: &Path,
    registry: &str,
    creds: &Credentials,
) -> Result<String, RegistryError> {
    let key = config_key_for(registry);
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    edit_config(path, |auths| {
        let want = normalize_registry_key(&key);
        auths.retain(|k, _| normalize_registry_key(k) != want);
        auths.insert(key.clone(), serde_json::json!({ "auth": auth }));
        true
    })?;
    Ok(key)
}

/// Removes every entry for a registry; returns whether there was one.
pub fn remove_credentials(path: &Path, registry: &str) -> Result<bool, RegistryError> {
    let want = normalize_registry_key(registry);
    let mut removed = false;
    if read_config_value(path)?.is_none() {
        return Ok(false);
    }
    edit_config(path, |auths| {
        let before = auths.len();
        auths.retain(|k, _| normalize_registry_key(k) != want);
        removed = auths.len() != before;
        removed
    })?;
    Ok(removed)
}

fn edit_config(
    path: &Path,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> bool,
) -> Result<(), RegistryError> {
    let bad = |detail: String| RegistryError::DockerConfig {
        path: path.to_path_buf(),
        detail,
    };
    let mut root = read_config_value(path)?.unwrap_or_else(|| serde_json::json!({}));
    let obj = root
        .as_object_mut()
        .ok_or_else(|| bad("the file is not a JSON object".into()))?;
    let auths = obj
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .ok_or_else(|| bad("\"auths\" is not a JSON object".into()))?;
    if !edit(auths) {
        return Ok(());
    }
    let mut text = serde_json::to_vec_pretty(&root).map_err(|e| bad(e.to_string()))?;
    text.push(b'\n');
    write_atomic_private(path, &text)
}

/// Creates a missing directory 0700, then replaces the file atomically with mode 0600
/// (it holds credentials).
fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    fsutil::write_atomic(path, bytes, 0o600).map_err(|e| io(e.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull""#;
        assert_eq!(
            parse_challenges(h),
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/redis:pull".into()),
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic {
                realm: Some("Registry Realm".into())
            }]
        );
        assert_eq!(
            parse_challenges("basic"),
            vec![Challenge::Basic { realm: None }]
        );
        // Several challenges, odd spacing, unquoted values, escapes, scope with commas.
        let h = r#"Basic realm="a\"b" , Bearer realm=https://t.example/token, service = "svc", scope="repository:a:pull,push""#;
        assert_eq!(
            parse_challenges(h),
            vec![
                Challenge::Basic {
                    realm: Some("a\"b".into())
                },
                Challenge::Bearer {
                    realm: "https://t.example/token".into(),
                    service: Some("svc".into()),
                    scope: Some("repository:a:pull,push".into()),
                }
            ]
        );
        // Unusable ones are dropped; hostile input does not panic.
        assert!(parse_challenges(r#"Bearer service="x""#).is_empty());
        assert!(parse_challenges("Negotiate abc").is_empty());
        for junk in [
            "",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            "Bearer realm=\"é\\",
            ",,,",
            "Bearer =x",
        ] {
            let _ = parse_challenges(junk);
        }
        assert_eq!(
            parse_challenges("Bearer realm=\"héllo\""),
            vec![Challenge::Bearer {
                realm: "héllo".into(),
                service: None,
                scope: None
            }]
        );
    }

    #[test]
    fn token_responses() {
        let t: TokenResponse = serde_json::from_str(r#"{"token":"a","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token(), Some(("a".into(), Duration::from_secs(300))));
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token(), Some(("b".into(), Duration::from_secs(60))));
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"","access_token":"c","expires_in":5}"#).unwrap();
        assert_eq!(t.into_token(), Some(("c".into(), Duration::from_secs(60))));
        let t: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.into_token(), None);
    }

    #[test]
    fn token_cache_expires() {
        let c = AuthCache::default();
        c.store("h", "s", "Bearer x".into(), Some(Duration::from_secs(300)));
        assert_eq!(c.header("h", "s").as_deref(), Some("Bearer x"));
        assert_eq!(c.header("h", "other"), None);
        c.store("h", "s", "Bearer y".into(), Some(Duration::from_secs(5)));
        assert_eq!(
            c.header("h", "s"),
            None,
            "within the slack counts as expired"
        );
        c.store("h", "s", "Basic z".into(), None);
        assert_eq!(c.header("h", "s").as_deref(), Some("Basic z"));
        c.forget_host("h");
        assert_eq!(c.header("h", "s"), None);
    }

    #[test]
    fn registry_keys_normalize() {
        for k in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
            "http://registry-1.docker.io/v2/",
        ] {
            assert_eq!(normalize_registry_key(k), "docker.io", "{k}");
        }
        assert_eq!(
            normalize_registry_key("https://localhost:5000/v2/"),
            "localhost:5000"
        );
        assert_eq!(normalize_registry_key("MyReg.io"), "myreg.io");
        assert_eq!(config_key_for("docker.io"), DOCKER_HUB_CONFIG_KEY);
        assert_eq!(config_key_for("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn credentials_are_read_stored_and_removed_preserving_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        assert_eq!(
            lookup_credentials(&path, "x").unwrap(),
            CredentialLookup::None
        );
        assert!(!remove_credentials(&path, "x").unwrap());
        assert!(!path.exists(), "logout of nothing writes nothing");

        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpwOnc="},
                "old.example":{"username":"o","password":"pw"},
                "idt.example":{"identitytoken":"tok"}},
               "credHelpers":{"gcr.io":"gcloud"},
               "psFormat":"table {{.ID}}","HttpHeaders":{"X":"y"}}"#,
        )
        .unwrap();
        let found = |u: &str, p: &str| {
            CredentialLookup::Found(Credentials {
                username: u.into(),
                password: p.into(),
            })
        };
        assert_eq!(
            lookup_credentials(&path, "registry-1.docker.io").unwrap(),
            found("u", "p:w")
        );
        assert_eq!(
            lookup_credentials(&path, "old.example").unwrap(),
            found("o", "pw")
        );
        assert!(matches!(
            lookup_credentials(&path, "gcr.io").unwrap(),
            CredentialLookup::Unsupported(s) if s.contains("docker-credential-gcloud")
        ));
        assert!(matches!(
            lookup_credentials(&path, "idt.example").unwrap(),
            CredentialLookup::Unsupported(s) if s.contains("identity token")
        ));
        assert_eq!(
            lookup_credentials(&path, "other.example").unwrap(),
            CredentialLookup::None
        );

        let creds = Credentials {
            username: "me".into(),
            password: "secret".into(),
        };
        assert_eq!(
            store_credentials(&path, "localhost:5000", &creds).unwrap(),
            "localhost:5000"
        );
        assert_eq!(
            lookup_credentials(&path, "localhost:5000").unwrap(),
            found("me", "secret")
        );
        // Storing Docker Hub under another spelling replaces the old entry.
        store_credentials(&path, "index.docker.io", &creds).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table {{.ID}}");
        assert_eq!(v["HttpHeaders"]["X"], "y");
        assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
        assert_eq!(v["auths"]["old.example"]["username"], "o");
        assert_eq!(
            v["auths"]["https://index.docker.io/v1/"]["auth"],
            "bWU6c2VjcmV0"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        assert!(remove_credentials(&path, "docker.io").unwrap());
        assert!(!remove_credentials(&path, "docker.io").unwrap());
        assert_eq!(
            lookup_credentials(&path, "docker.io").unwrap(),
            CredentialLookup::None
        );
        assert_eq!(
            lookup_credentials(&path, "localhost:5000").unwrap(),
            found("me", "secret")
        );

        // credsStore applies to every registry without a file entry.
        std::fs::write(&path, r#"{"credsStore":"desktop"}"#).unwrap();
        assert!(matches!(
            lookup_credentials(&path, "x.io").unwrap(),
            CredentialLookup::Unsupported(s) if s.contains("docker-credential-desktop")
        ));
        // Damaged files are reported with their path.
        std::fs::write(&path, "{not json").unwrap();
        let e = lookup_credentials(&path, "x").unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
        std::fs::write(&path, r#"{"auths":{"x":{"auth":"!!!"}}}"#).unwrap();
        assert!(lookup_credentials(&path, "x").is_err());
        std::fs::write(&path, r#"{"auths":[]}"#).unwrap();
        assert!(store_credentials(&path, "x", &creds).is_err());
    }
}
