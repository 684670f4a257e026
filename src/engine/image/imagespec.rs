//! The subset of the OCI image spec and Docker's v2 formats that berth reads and writes:
//! descriptors, manifests, indexes, platforms, the config's rootfs, media types and chain
//! ids. Shared by the content store, the archive code and the registry client; it depends
//! on none of them.
//!
//! Own serde types rather than `oci-spec`'s because its annotation maps are `HashMap`s (the
//! bytes we write are hashed into digests, so key order must be stable), because Docker's
//! media types must parse as first-class values rather than `Other(..)`, and because we must
//! read unknown fields leniently while refusing digests we cannot verify (non-sha256); these
//! structs do exactly that and nothing more.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64/v8")]
    Platform(String),
}

pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker schema 1 (deprecated, refused): named only to recognise and reject it.
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// Annotation naming an image in an OCI layout, as containerd and Docker ≥25 write it
    /// (a full reference, e.g. `docker.io/library/busybox:latest`).
    pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
    /// The OCI annotation: a tag (`latest`) or, as some tools write it, a full reference.
    pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

    pub fn is_manifest(media_type: &str) -> bool {
        media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
    }

    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }

    pub fn is_config(media_type: &str) -> bool {
        media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
    }
}

/// Largest manifest or index accepted, from a registry or from disk (containerd and
/// registries use the same bound); bigger documents are refused before they are read.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From a layer media type; `None` if the type is not a layer we can unpack
    /// (including "non-distributable" and foreign layers, which are never shipped).
    pub fn from_layer_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            media::OCI_LAYER | media::DOCKER_LAYER => Some(Compression::None),
            media::OCI_LAYER_GZIP | media::DOCKER_LAYER_GZIP => Some(Compression::Gzip),
            media::OCI_LAYER_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// From the first bytes of a blob (magic numbers of gzip and zstd frames).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => media::OCI_LAYER,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        }
    }
}

/// A content descriptor (OCI image-spec descriptor).
// Field order and skip rules are part of the format: documents we write are hashed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
            platform: None,
        }
    }

    /// A plain descriptor for bytes we hold.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::of(bytes), bytes.len() as u64)
    }
}

/// A target platform. [`Platform::new`], [`Platform::parse`] and [`Platform::host`] give
/// normalized values (see [`Platform::normalized`]); values read from documents are kept
/// as written.
// Serialized in the OCI/Go field order, so the bytes match what containerd and Docker write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: Vec::new(),
            variant: variant.map(str::to_string),
        }
        .normalized()
    }

    /// The platform this process runs on (always Linux for berth), in Go's GOARCH names.
    pub fn host() -> Platform {
        // Rust's names where normalization does not already map them to Go's.
        let arch = match std::env::consts::ARCH {
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            other => other,
        };
        Platform::new("linux", arch, None)
    }

    /// Parses `os/arch[/variant]` or a bare `arch` (Linux assumed), as `--platform` does.
    pub fn parse(s: &str) -> Result<Platform, SpecError> {
        let bad = || SpecError::Platform(s.to_string());
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [arch] if !is_os(arch) => Ok(Platform::new("linux", arch, None)),
            [os] => Ok(Platform::new(os, &Platform::host().architecture, None)),
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(bad()),
        }
    }

    /// containerd's normalization: `aarch64`→`arm64` (variant `v8` by default),
    /// `x86_64`→`amd64`, `armhf`→`arm/v7`, `arm` defaults to `v7`, lowercased os.
    pub fn normalized(mut self) -> Platform {
        self.os = self.os.to_ascii_lowercase();
        if self.os == "macos" {
            self.os = "darwin".into();
        }
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self
            .variant
            .take()
            .map(|v| v.to_ascii_lowercase())
            .filter(|v| !v.is_empty());
        let (arch, variant) = match arch.as_str() {
            "i386" | "i486" | "i586" | "i686" => ("386".to_string(), None),
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_string(), variant.filter(|v| v != "v1")),
            "aarch64" | "arm64" => (
                "arm64".to_string(),
                Some(match variant.as_deref() {
                    None | Some("8") => "v8".to_string(),
                    Some(v) => v.to_string(),
                }),
            ),
            "armhf" => ("arm".to_string(), Some("v7".to_string())),
            "armel" => ("arm".to_string(), Some("v6".to_string())),
            "arm" => (
                "arm".to_string(),
                Some(match variant.as_deref() {
                    None | Some("7") => "v7".to_string(),
                    Some("5") => "v5".to_string(),
                    Some("6") => "v6".to_string(),
                    Some("8") => "v8".to_string(),
                    Some(v) => v.to_string(),
                }),
            ),
            _ => (arch, variant),
        };
        self.architecture = arch;
        self.variant = variant;
        self
    }

    /// How well an entry's platform suits this one: `None` when it cannot run here, lower is
    /// better. ARM hosts also accept older ARM variants, best first (containerd's `Only`).
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        let c = candidate.clone().normalized();
        if c.os != self.os {
            return None;
        }
        if c.architecture == self.architecture && c.variant == self.variant {
            return Some(0);
        }
        let arm_level = |p: &Platform| -> Option<u32> {
            p.variant
                .as_deref()
                .and_then(|v| v.strip_prefix('v'))
                .and_then(|n| n.parse().ok())
        };
        match (self.architecture.as_str(), c.architecture.as_str()) {
            ("arm", "arm") | ("arm64", "arm64") => {
                let (want, have) = (arm_level(self)?, arm_level(&c)?);
                (have < want).then(|| (want - have) as usize)
            }
            // 64-bit ARM runs 32-bit ARM v7 and older, after all arm64 candidates.
            ("arm64", "arm") => {
                let have = arm_level(&c)?;
                (have <= 7).then(|| 10 + (8 - have) as usize)
            }
            _ => None,
        }
    }
}

fn is_os(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "linux" | "windows" | "darwin" | "freebsd" | "netbsd" | "openbsd" | "solaris" | "illumos"
    )
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI or Docker schema 2: the same shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index or Docker manifest list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What we need from an image config; other fields are ignored on read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ConfigSubset {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    pub rootfs: RootFs,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl ConfigSubset {
    pub fn platform(&self) -> Platform {
        // Kept as the config says (not normalized): image records show what the image claims.
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone().filter(|v| !v.is_empty()),
            ..Platform::default()
        }
    }
}

/// Chain ids of a layer stack (OCI image spec, "Layer ChainID"): the first is the first
/// diff_id; each next is sha256 of "<previous chain id> <diff_id>". They name snapshots.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_refuses_foreign_digests() {
        let text = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},
            "layers":[],"extra":1}"#;
        let m: Manifest = serde_json::from_str(text).unwrap();
        assert_eq!(m.config.size, 0);
        let again: Manifest = serde_json::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(again, m);
        let bad = text.replace("sha256:e3b0", "sha512:e3b0");
        assert!(serde_json::from_str::<Manifest>(&bad).is_err());
    }

    #[test]
    fn platforms_normalize_like_containerd() {
        for (input, want) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/aarch64", "linux/arm64/v8"),
            ("linux/arm64", "linux/arm64/v8"),
            ("linux/arm64/8", "linux/arm64/v8"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/arm/6", "linux/arm/v6"),
            ("linux/i686", "linux/386"),
            ("arm64", "linux/arm64/v8"),
            ("Linux/AMD64", "linux/amd64"),
            ("linux/riscv64", "linux/riscv64"),
        ] {
            assert_eq!(Platform::parse(input).unwrap().to_string(), want, "{input}");
        }
        for bad in ["", "linux/", "/amd64", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host.to_string(), "linux/amd64");
        }
    }

    #[test]
    fn serde_shapes_are_stable() {
        // What the store and archive wrote before the registry's fields were merged in.
        let mut d = Descriptor::new(media::OCI_MANIFEST, Digest::of(b"m"), 7);
        d.platform = Some(Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            variant: Some("v7".into()),
            ..Platform::default()
        });
        d.annotations
            .insert(media::ANNOTATION_REF_NAME.into(), "latest".into());
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"mediaType":"{}","digest":"{}","size":7,"annotations":{{"{}":"latest"}},"platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}}"#,
                media::OCI_MANIFEST,
                Digest::of(b"m"),
                media::ANNOTATION_REF_NAME
            )
        );
        // The registry's extra fields appear only when set, in the OCI order.
        d.urls = vec!["https://example.com/l".into()];
        let mut p = d.platform.take().unwrap();
        p.os_version = Some("10.0.17763".into());
        p.os_features = vec!["win32k".into()];
        d.platform = Some(p);
        let text = serde_json::to_string(&d).unwrap();
        assert!(
            text.contains(r#""annotations":{"org.opencontainers.image.ref.name":"latest"},"urls":["https://example.com/l"],"platform":{"architecture":"arm","os":"linux","os.version":"10.0.17763","os.features":["win32k"],"variant":"v7"}}"#),
            "{text}"
        );
        let again: Descriptor = serde_json::from_str(&text).unwrap();
        assert_eq!(again, d);
        // Key order on read does not matter (Docker writes architecture first, others not).
        let p: Platform =
            serde_json::from_str(r#"{"variant":"v8","os":"linux","architecture":"arm64"}"#)
                .unwrap();
        assert_eq!(p, Platform::parse("linux/arm64").unwrap());
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                serde_json::to_string(&Platform::host()).unwrap(),
                r#"{"architecture":"amd64","os":"linux"}"#
            );
        }
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn compression_is_sniffed_and_mapped() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"bin/"), Compression::None);
        assert_eq!(
            Compression::from_layer_media_type(media::DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_layer_media_type(media::DOCKER_FOREIGN_LAYER),
            None
        );
    }
}
