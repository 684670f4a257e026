//! Image references, parsed and normalized exactly as Docker's distribution/reference does
//! (`ParseNormalizedNamed` followed by `TagNameOnly`): `redis` is
//! `docker.io/library/redis:latest`, `user/app` is `docker.io/user/app:latest`.
//!
//! Hand-written rather than regex-based: the grammar is small, the crate has no regex
//! dependency, and a structural parser can say precisely which part is wrong.
//!
//! Grammar (from distribution/reference):
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path-component ['/' path-component]*
//! domain           := host [':' port-number]
//! host             := domain-name | '[' IPv6address ']'
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use super::digest::Digest;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The host Docker Hub's registry API actually lives on.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
/// Longest allowed name (domain + '/' + path), as in Docker.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference {0:?}: repository name must have at least one component")]
    Empty(String),
    #[error(
        "invalid repository name ({0}), cannot specify 64-byte hexadecimal strings \
         (that is an image id, not a name)"
    )]
    HexIdentifier(String),
    #[error("invalid reference {reference:?}: repository name ({name}) must be lowercase")]
    Uppercase { reference: String, name: String },
    #[error(
        "invalid reference {reference:?}: repository name must not be more than \
         {NAME_TOTAL_LENGTH_MAX} characters (it has {len})"
    )]
    NameTooLong { reference: String, len: usize },
    #[error("invalid reference {reference:?}: invalid registry domain {domain:?}")]
    Domain { reference: String, domain: String },
    #[error(
        "invalid reference {reference:?}: invalid path component {component:?} (only lowercase \
         letters, digits and single separators '.', '_', '__' or '-' between them)"
    )]
    PathComponent {
        reference: String,
        component: String,
    },
    #[error(
        "invalid reference {reference:?}: invalid tag {tag:?} (1 to 128 of letters, digits, \
         '_', '.', '-', not starting with '.' or '-')"
    )]
    Tag { reference: String, tag: String },
    #[error("invalid reference {reference:?}: invalid digest {digest:?}: {detail}")]
    Digest {
        reference: String,
        digest: String,
        detail: String,
    },
}

/// A fully normalized image reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry domain, possibly with a port: `docker.io`, `localhost:5000`, `[::1]:5000`.
    pub domain: String,
    /// Repository path inside the registry: `library/redis`, `user/app`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// `ParseNormalizedNamed` + `TagNameOnly`: a reference without tag or digest gets
    /// `latest`.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// `ParseNormalizedNamed` alone: the tag stays absent when none was written.
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty(String::new()));
        }
        if is_hex_identifier(s) {
            return Err(ReferenceError::HexIdentifier(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        // Docker checks case on everything before the first ':' of the remainder, so that an
        // uppercase repository gets this specific message rather than "invalid format".
        let remote_name = remainder.split(':').next().unwrap_or_default();
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::Uppercase {
                reference: s.to_string(),
                name: remote_name.to_string(),
            });
        }
        parse_parts(s, domain, &remainder)
    }

    /// `docker.io/library/redis`: domain and path, no tag or digest.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The host the registry API is reached on: `registry-1.docker.io` for Docker Hub.
    pub fn registry_host(&self) -> &str {
        registry_host(&self.domain)
    }

    /// Whether the registry is on this machine (localhost, 127.0.0.0/8, ::1).
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.domain)
    }

    /// Docker's `FamiliarName`: `redis`, `user/app`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            if let Some(rest) = self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                if !rest.contains('/') {
                    return rest.to_string();
                }
            }
            return self.path.clone();
        }
        self.repository()
    }

    /// Docker's `FamiliarString`: `redis:latest`, `user/app:1`, `x@sha256:...`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// What to ask the registry for: the digest when there is one (it pins the content),
    /// else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::Tag {
                reference: self.to_string(),
                tag: tag.to_string(),
            });
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository pinned to a digest, without tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Reference, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The API host for a registry domain: Docker Hub's `docker.io` is served from
/// `registry-1.docker.io`; every other domain is its own host.
pub fn registry_host(domain: &str) -> &str {
    if domain == DEFAULT_DOMAIN {
        DOCKER_HUB_REGISTRY
    } else {
        domain
    }
}

/// Splits `host[:port]` (host may be a bracketed IPv6 literal) into host and port text.
pub fn split_host_port(domain: &str) -> (&str, Option<&str>) {
    if let Some(rest) = domain.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let host = &domain[..end + 2];
            let after = &rest[end + 1..];
            return (host, after.strip_prefix(':'));
        }
        return (domain, None);
    }
    match domain.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub fn is_loopback_host(domain: &str) -> bool {
    let (host, _) = split_host_port(domain);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6 == Ipv6Addr::LOCALHOST,
        Err(_) => false,
    }
}

/// Docker's `splitDockerDomain`: the first component is a domain when it contains '.' or
/// ':', is `localhost`, or has uppercase letters (a repository path cannot).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Docker's `Parse` applied to `domain/remainder`.
fn parse_parts(
    original: &str,
    domain: String,
    remainder: &str,
) -> Result<Reference, ReferenceError> {
    let reference = original.to_string();
    // Neither name nor tag may contain '@', so the first one starts the digest.
    let (name_tag, digest_text) = match remainder.split_once('@') {
        Some((a, b)) => (a, Some(b)),
        None => (remainder, None),
    };
    // The remainder holds no domain, so any ':' starts the tag.
    let (path, tag) = match name_tag.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (name_tag, None),
    };
    if !is_valid_domain(&domain) {
        return Err(ReferenceError::Domain { reference, domain });
    }
    for component in path.split('/') {
        if !is_valid_path_component(component) {
            return Err(ReferenceError::PathComponent {
                reference,
                component: component.to_string(),
            });
        }
    }
    let name_len = domain.len() + 1 + path.len();
    if name_len > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong {
            reference,
            len: name_len,
        });
    }
    if let Some(t) = tag {
        if !is_valid_tag(t) {
            return Err(ReferenceError::Tag {
                reference,
                tag: t.to_string(),
            });
        }
    }
    let digest = match digest_text {
        None => None,
        Some(d) => Some(d.parse::<Digest>().map_err(|e| ReferenceError::Digest {
            reference: reference.clone(),
            digest: d.to_string(),
            detail: e.to_string(),
        })?),
    };
    Ok(Reference {
        domain,
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

fn is_valid_domain(domain: &str) -> bool {
    let (host, port) = split_host_port(domain);
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.strip_suffix(']') {
            Some(v6) => !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
            None => false,
        };
    }
    !host.is_empty() && host.split('.').all(is_valid_domain_component)
}

fn is_valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        }
        _ => false,
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
}

/// `[\w][\w.-]{0,127}`
pub fn is_valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_LENGTH_MAX
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    /// (input, normalized full form, familiar form) for valid references, after
    /// distribution/reference's normalize_test.go and reference_test.go.
    #[test]
    fn valid_references_normalize_like_docker() {
        let d = format!("sha256:{H}");
        let cases: Vec<(String, String, String)> = vec![
            ("redis", "docker.io/library/redis:latest", "redis:latest"),
            ("redis:7", "docker.io/library/redis:7", "redis:7"),
            ("library/debian", "docker.io/library/debian:latest", "debian:latest"),
            ("docker/docker", "docker.io/docker/docker:latest", "docker/docker:latest"),
            ("user/app:1", "docker.io/user/app:1", "user/app:1"),
            ("docker.io/debian", "docker.io/library/debian:latest", "debian:latest"),
            ("docker.io/library/debian", "docker.io/library/debian:latest", "debian:latest"),
            ("docker.io/docker/docker", "docker.io/docker/docker:latest", "docker/docker:latest"),
            ("index.docker.io/debian", "docker.io/library/debian:latest", "debian:latest"),
            ("index.docker.io/docker/docker", "docker.io/docker/docker:latest", "docker/docker:latest"),
            ("docker.io/library/foo/bar", "docker.io/library/foo/bar:latest", "library/foo/bar:latest"),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
            ("localhost", "docker.io/library/localhost:latest", "localhost:latest"),
            ("myreg.io/a/b:tag", "myreg.io/a/b:tag", "myreg.io/a/b:tag"),
            ("127.0.0.1:5000/docker/docker", "127.0.0.1:5000/docker/docker:latest", "127.0.0.1:5000/docker/docker:latest"),
            ("127.0.0.1:5000/debian", "127.0.0.1:5000/debian:latest", "127.0.0.1:5000/debian:latest"),
            ("192.168.0.1", "docker.io/library/192.168.0.1:latest", "192.168.0.1:latest"),
            ("192.168.0.1:80", "docker.io/library/192.168.0.1:80", "192.168.0.1:80"),
            ("192.168.0.1:8/debian", "192.168.0.1:8/debian:latest", "192.168.0.1:8/debian:latest"),
            ("test_com", "docker.io/library/test_com:latest", "test_com:latest"),
            ("test.com:tag", "docker.io/library/test.com:tag", "test.com:tag"),
            ("test.com:5000", "docker.io/library/test.com:5000", "test.com:5000"),
            ("test.com/repo:tag", "test.com/repo:tag", "test.com/repo:tag"),
            ("test:5000/repo", "test:5000/repo:latest", "test:5000/repo:latest"),
            ("lowercase:Uppercase", "docker.io/library/lowercase:Uppercase", "lowercase:Uppercase"),
            ("foo_bar.com:8080", "docker.io/library/foo_bar.com:8080", "foo_bar.com:8080"),
            ("foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080", "foo/foo_bar.com:8080"),
            ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
            ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com"),
            ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com"),
            ("registry.io/foo/project--id.module--name.ver---sion--name", "registry.io/foo/project--id.module--name.ver---sion--name:latest", "registry.io/foo/project--id.module--name.ver---sion--name:latest"),
            ("[2001:db8::1]/repo", "[2001:db8::1]/repo:latest", "[2001:db8::1]/repo:latest"),
            ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo:tag"),
            ("[::1]:5000/repo", "[::1]:5000/repo:latest", "[::1]:5000/repo:latest"),
            ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
            ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest", "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest"),
        ]
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .chain([
            (format!("repo@{d}"), format!("docker.io/library/repo@{d}"), format!("repo@{d}")),
            (format!("a:tag@{d}"), format!("docker.io/library/a:tag@{d}"), format!("a:tag@{d}")),
            (format!("test:5000/repo@{d}"), format!("test:5000/repo@{d}"), format!("test:5000/repo@{d}")),
            (format!("test:5000/repo:tag@{d}"), format!("test:5000/repo:tag@{d}"), format!("test:5000/repo:tag@{d}")),
            (format!("[2001:db8::1]:5000/repo@{d}"), format!("[2001:db8::1]:5000/repo@{d}"), format!("[2001:db8::1]:5000/repo@{d}")),
        ])
        .collect();
        for (input, full, familiar) in cases {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "full form of {input}");
            assert_eq!(r.familiar(), familiar, "familiar form of {input}");
            // Normalizing is idempotent.
            assert_eq!(Reference::parse(&full).unwrap(), r, "reparse of {full}");
            assert_eq!(
                Reference::parse(&familiar).unwrap(),
                r,
                "reparse of {familiar}"
            );
        }
    }

    #[test]
    fn parts_are_split_as_docker_does() {
        let r = Reference::parse("redis").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str()),
            ("docker.io", "library/redis")
        );
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.repository(), "docker.io/library/redis");
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        assert_eq!(r.familiar_name(), "redis");

        let r = Reference::parse(&format!("host:5000/a/b@sha256:{H}")).unwrap();
        assert_eq!(r.domain, "host:5000");
        assert_eq!(r.path, "a/b");
        assert_eq!(r.tag, None, "a digest reference gets no default tag");
        assert_eq!(r.digest.as_ref().unwrap().hex(), H);
        assert_eq!(r.registry_host(), "host:5000");
        assert_eq!(r.manifest_ref(), format!("sha256:{H}"));

        let r = Reference::parse(&format!("a:tag@sha256:{H}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("tag"));
        assert!(r.digest.is_some());
        assert_eq!(r.manifest_ref(), format!("sha256:{H}"), "the digest wins");

        let r = Reference::parse_named("user/app").unwrap();
        assert_eq!(r.tag, None, "parse_named does not add latest");
        assert_eq!(r.to_string(), "docker.io/user/app");
        assert_eq!(r.familiar(), "user/app");
    }

    #[test]
    fn invalid_references_are_refused_with_the_reason() {
        use ReferenceError as E;
        let hex64 = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
        let is_path = |e: &E| matches!(e, E::PathComponent { .. });
        let is_domain = |e: &E| matches!(e, E::Domain { .. });
        let is_upper = |e: &E| matches!(e, E::Uppercase { .. });
        let is_tag = |e: &E| matches!(e, E::Tag { .. });
        let is_digest = |e: &E| matches!(e, E::Digest { .. });
        let is_hex = |e: &E| matches!(e, E::HexIdentifier(_));
        let is_empty = |e: &E| matches!(e, E::Empty(_));
        type Check = fn(&E) -> bool;
        let cases: Vec<(String, Check)> = vec![
            ("".into(), is_empty),
            (hex64.into(), is_hex),
            ("https://github.com/docker/docker".into(), is_domain),
            ("docker___library/debian".into(), is_path),
            ("docker/Docker".into(), is_upper),
            ("docker.io/docker/Docker".into(), is_upper),
            ("Uppercase:tag".into(), is_upper),
            ("a/Foo".into(), is_upper),
            ("Foo/FarB".into(), is_upper),
            ("-docker".into(), is_path),
            ("-docker/docker".into(), is_path),
            ("-docker.io/docker/docker".into(), is_domain),
            ("docker///docker".into(), is_path),
            ("docker.io/docker///docker".into(), is_path),
            ("docker.io/".into(), is_path),
            ("aa/asdf$$^/aa".into(), is_path),
            (":justtag".into(), is_path),
            ("a/b/".into(), is_path),
            ("a__-b".into(), is_path),
            ("a..b".into(), is_path),
            ("localhost:abc/x".into(), is_domain),
            ("localhost:/x".into(), is_domain),
            ("[fe80::1%eth0]:5000/repo".into(), is_domain),
            ("[2001:db8:3:4::192.0.2.33]:5000/repo".into(), is_domain),
            ("1:2:3:4:5:6:7:8:5000/repo".into(), is_domain),
            ("[2001:db8::1]:tag".into(), is_path),
            ("my_reg.io/x".into(), is_domain),
            ("reg-.io/x".into(), is_domain),
            ("redis:".into(), is_tag),
            ("redis:.x".into(), is_tag),
            ("redis:-x".into(), is_tag),
            ("redis:a/b".into(), is_domain),
            (format!("redis:{}", "a".repeat(129)), is_tag),
            (format!("@sha256:{H}"), is_path),
            (format!("validname@invaliddigest:{H}"), is_digest),
            (format!("validname@sha512:{H}{H}"), is_digest),
            ("validname@sha256:FFFF".into(), is_digest),
            (format!("validname@sha256:{}", H.to_uppercase()), is_digest),
            ("x@".into(), is_digest),
        ];
        for (input, check) in cases {
            match Reference::parse(&input) {
                Ok(r) => panic!("{input:?} was accepted as {r}"),
                Err(e) => {
                    assert!(check(&e), "{input:?}: unexpected error kind {e:?}");
                    let msg = e.to_string();
                    assert!(!msg.is_empty());
                }
            }
        }
        let msg = Reference::parse(hex64).unwrap_err().to_string();
        assert!(
            msg.contains("cannot specify 64-byte hexadecimal strings"),
            "{msg}"
        );
        let msg = Reference::parse("docker/Docker").unwrap_err().to_string();
        assert!(
            msg.contains("docker/Docker") && msg.contains("lowercase"),
            "{msg}"
        );
    }

    #[test]
    fn name_length_is_limited_to_255() {
        // "docker.io/library/" is 18 characters.
        let ok = "a".repeat(255 - 18);
        assert_eq!(Reference::parse(&ok).unwrap().repository().len(), 255);
        let long = "a".repeat(256 - 18);
        assert!(matches!(
            Reference::parse(&long),
            Err(ReferenceError::NameTooLong { len: 256, .. })
        ));
        let nested = format!("reg.io/{}aa", "a/".repeat(123));
        assert_eq!(Reference::parse(&nested).unwrap().repository().len(), 255);
        let nested = format!("reg.io/{}aaa", "a/".repeat(123));
        assert!(Reference::parse(&nested).is_err());
    }

    #[test]
    fn tags_follow_the_word_grammar() {
        for t in ["a", "A", "_x", "1.0", "v1.2.3-rc_1", &"x".repeat(128)] {
            assert!(is_valid_tag(t), "{t}");
        }
        for t in ["", ".a", "-a", "a+b", "a:b", &"x".repeat(129)] {
            assert!(!is_valid_tag(t), "{t}");
        }
        let r = Reference::parse("redis").unwrap();
        assert_eq!(
            r.with_tag("7").unwrap().to_string(),
            "docker.io/library/redis:7"
        );
        assert!(r.with_tag("no/slash").is_err());
        let d: Digest = format!("sha256:{H}").parse().unwrap();
        assert_eq!(
            r.with_digest(d).to_string(),
            format!("docker.io/library/redis@sha256:{H}")
        );
    }

    #[test]
    fn loopback_detection() {
        for (r, lo) in [
            ("localhost/x", true),
            ("localhost:5000/x", true),
            ("127.0.0.1:5000/x", true),
            ("127.1.2.3/x", true),
            ("[::1]:5000/x", true),
            ("[::1]/x", true),
            ("redis", false),
            ("myreg.io/x", false),
            ("128.0.0.1/x", false),
            ("[2001:db8::1]/x", false),
            ("localhost.example.com/x", false),
        ] {
            assert_eq!(Reference::parse(r).unwrap().is_loopback(), lo, "{r}");
        }
        assert_eq!(split_host_port("[::1]:5000"), ("[::1]", Some("5000")));
        assert_eq!(split_host_port("a.b"), ("a.b", None));
    }

    #[test]
    fn serde_round_trips_through_the_full_form() {
        let r = Reference::parse("user/app:1").unwrap();
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, "\"docker.io/user/app:1\"");
        let back: Reference = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
        assert!(serde_json::from_str::<Reference>("\"Bad/Ref\"").is_err());
    }
}
