//! Manifest and index documents, media types, and platform selection.
//!
//! Own small serde structs rather than oci-spec's: descriptors carry our `Digest` (so a
//! digest we cannot verify is refused at parse time) and Docker's media types parse as
//! first-class values instead of `Other(..)`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::RegistryError;
use crate::engine::image::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The Accept header for manifests. All four are needed: CNCF distribution 2.8 answers
/// 404 for an OCI-stored tag when Accept lacks the OCI types, and rewrites to schema 1
/// when it lacks Docker v2.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest or index accepted (containerd uses the same bound).
pub const MANIFEST_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// A content descriptor (OCI image-spec descriptor).
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
    /// A plain descriptor for bytes we hold.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
            platform: None,
        }
    }
}

/// An image manifest (OCI or Docker schema 2: the same shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
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
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest document.
// Only a few exist at a time; boxing would just add noise at every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

pub fn is_manifest_type(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Only the fields needed to classify a document.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    config: Option<serde_json::Value>,
}

/// Parses manifest bytes. `content_type` is the HTTP Content-Type (parameters ignored).
/// Returns the effective media type and the document. The body's own `mediaType` wins over
/// the header; without either, the shape decides (OCI allows omitting it).
pub fn parse_manifest(
    reference: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<(String, Manifest), RegistryError> {
    let header = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| !c.is_empty());
    let schema1 = |_: ()| RegistryError::Schema1 {
        reference: reference.to_string(),
    };
    if matches!(
        header.as_deref(),
        Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED)
    ) {
        return Err(schema1(()));
    }
    let invalid = |detail: String| RegistryError::InvalidManifest {
        reference: reference.to_string(),
        detail,
    };
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not a JSON object: {e}")))?;
    match probe.schema_version.as_ref().and_then(|v| v.as_u64()) {
        Some(1) => return Err(schema1(())),
        Some(2) => {}
        Some(v) => return Err(invalid(format!("unsupported schemaVersion {v}"))),
        None => return Err(invalid("schemaVersion is missing or not a number".into())),
    }
    let media_type = match (&probe.media_type, &header) {
        (Some(m), _) => m.clone(),
        (None, Some(h)) if is_index_type(h) || is_manifest_type(h) => h.clone(),
        (None, _) if probe.manifests.is_some() => OCI_INDEX.to_string(),
        (None, _) if probe.config.is_some() => OCI_MANIFEST.to_string(),
        (None, _) => return Err(invalid("neither a manifest nor an index".into())),
    };
    if media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED {
        return Err(schema1(()));
    }
    if is_index_type(&media_type) {
        let index: ImageIndex =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("bad index: {e}")))?;
        Ok((media_type, Manifest::Index(index)))
    } else if is_manifest_type(&media_type) {
        let m: ImageManifest =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("bad manifest: {e}")))?;
        Ok((media_type, Manifest::Image(m)))
    } else {
        Err(RegistryError::UnsupportedMediaType {
            reference: reference.to_string(),
            media_type,
        })
    }
}

/// A target platform. Values are kept normalized (see [`Platform::normalized`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
            os_features: Vec::new(),
        }
        .normalized()
    }

    /// The platform this process runs on (always Linux for berth).
    pub fn host() -> Platform {
        Platform::new("linux", std::env::consts::ARCH, None)
    }

    /// Parses `os/arch[/variant]` or a bare `arch` (Linux assumed), as `--platform` does.
    pub fn parse(s: &str) -> Result<Platform, RegistryError> {
        let bad = || RegistryError::Platform(s.to_string());
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [arch] if !is_os(arch) => Ok(Platform::new("linux", arch, None)),
            [os] => Ok(Platform::new(os, std::env::consts::ARCH, None)),
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

/// Picks the index entry for `want`: the best-ranked runnable entry, first in index order on
/// ties. Entries without a platform or with an `unknown` one (build attestations) are skipped.
pub fn select_platform<'a>(
    reference: &str,
    index: &'a ImageIndex,
    want: &Platform,
) -> Result<&'a Descriptor, RegistryError> {
    let want = want.clone().normalized();
    let mut best: Option<(usize, &Descriptor)> = None;
    for d in &index.manifests {
        let Some(p) = &d.platform else { continue };
        if !is_manifest_type(&d.media_type) && !is_index_type(&d.media_type) {
            continue;
        }
        if let Some(rank) = want.rank(p) {
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, d));
            }
        }
    }
    match best {
        Some((_, d)) => Ok(d),
        None => Err(RegistryError::NoMatchingPlatform {
            reference: reference.to_string(),
            wanted: want.to_string(),
            available: available_platforms(index),
        }),
    }
}

/// The platforms an index offers, for error messages (attestations left out).
pub fn available_platforms(index: &ImageIndex) -> Vec<String> {
    index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| p.os != "unknown" && p.architecture != "unknown")
        .map(|p| p.clone().normalized().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(seed: &str) -> Digest {
        Digest::of(seed.as_bytes())
    }

    fn entry(os: &str, arch: &str, variant: Option<&str>, seed: &str) -> Descriptor {
        let mut desc = Descriptor::of(OCI_MANIFEST, seed.as_bytes());
        desc.platform = Some(Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(str::to_string),
            os_version: None,
            os_features: vec![],
        });
        desc
    }

    fn index(entries: Vec<Descriptor>) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: entries,
            annotations: BTreeMap::new(),
        }
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
    fn selection_prefers_exact_then_older_arm_and_lists_what_exists() {
        let idx = index(vec![
            entry("linux", "amd64", None, "amd64"),
            entry("linux", "arm", Some("v6"), "armv6"),
            entry("linux", "arm", Some("v7"), "armv7"),
            entry("linux", "aarch64", None, "arm64"),
            entry("unknown", "unknown", None, "attestation"),
            entry("windows", "amd64", None, "win"),
        ]);
        let pick = |p: &str| {
            select_platform("x", &idx, &Platform::parse(p).unwrap()).map(|e| e.digest.clone())
        };
        assert_eq!(pick("linux/amd64").unwrap(), d("amd64"));
        assert_eq!(pick("linux/x86_64").unwrap(), d("amd64"));
        assert_eq!(
            pick("linux/arm64").unwrap(),
            d("arm64"),
            "aarch64 in the index normalizes"
        );
        assert_eq!(pick("linux/arm/v7").unwrap(), d("armv7"));
        assert_eq!(pick("linux/arm/v6").unwrap(), d("armv6"));
        assert_eq!(pick("windows/amd64").unwrap(), d("win"));
        let err = pick("linux/s390x").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("linux/s390x"), "{msg}");
        assert!(
            msg.contains("linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, windows/amd64"),
            "{msg}"
        );
        assert!(!msg.contains("unknown"), "{msg}");

        // An arm64 host without arm64 entries runs the newest 32-bit ARM one.
        let arm_only = index(vec![
            entry("linux", "arm", Some("v5"), "v5"),
            entry("linux", "arm", Some("v7"), "v7"),
        ]);
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(select_platform("x", &arm_only, &p).unwrap().digest, d("v7"));
        // arm/v7 does not run arm64, and v6 does not run v7.
        let p = Platform::parse("linux/arm/v6").unwrap();
        assert_eq!(select_platform("x", &arm_only, &p).unwrap().digest, d("v5"));
        let only64 = index(vec![entry("linux", "arm64", None, "a")]);
        assert!(select_platform("x", &only64, &Platform::parse("linux/arm/v7").unwrap()).is_err());
        // First in index order wins among equals.
        let dup = index(vec![
            entry("linux", "amd64", None, "first"),
            entry("linux", "amd64", None, "second"),
        ]);
        assert_eq!(
            select_platform("x", &dup, &Platform::parse("linux/amd64").unwrap())
                .unwrap()
                .digest,
            d("first")
        );
    }

    #[test]
    fn manifests_are_classified_and_schema1_refused() {
        let cfg = Descriptor::of(OCI_CONFIG, b"{}");
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            config: cfg.clone(),
            layers: vec![Descriptor::of(DOCKER_LAYER_GZIP, b"layer")],
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&m).unwrap();
        let (mt, parsed) = parse_manifest("r", Some("text/plain"), &bytes).unwrap();
        assert_eq!(mt, DOCKER_MANIFEST, "the body's mediaType wins");
        assert_eq!(parsed, Manifest::Image(m.clone()));

        // OCI without mediaType: the header decides, else the shape.
        let mut oci = m.clone();
        oci.media_type = None;
        let bytes = serde_json::to_vec(&oci).unwrap();
        let (mt, _) =
            parse_manifest("r", Some(&format!("{OCI_MANIFEST}; charset=utf-8")), &bytes).unwrap();
        assert_eq!(mt, OCI_MANIFEST);
        let (mt, _) = parse_manifest("r", None, &bytes).unwrap();
        assert_eq!(mt, OCI_MANIFEST);
        let idx = serde_json::json!({"schemaVersion": 2, "manifests": []});
        let (mt, parsed) = parse_manifest("r", None, idx.to_string().as_bytes()).unwrap();
        assert_eq!(mt, OCI_INDEX);
        assert!(matches!(parsed, Manifest::Index(_)));

        let s1 =
            serde_json::json!({"schemaVersion": 1, "name": "x", "tag": "latest", "fsLayers": []});
        for ct in [
            None,
            Some(DOCKER_SCHEMA1),
            Some(DOCKER_SCHEMA1_SIGNED),
            Some("application/json"),
        ] {
            let err = parse_manifest("reg/x:latest", ct, s1.to_string().as_bytes()).unwrap_err();
            assert!(
                matches!(err, RegistryError::Schema1 { .. }),
                "{ct:?}: {err}"
            );
            assert!(
                err.to_string().contains("reg/x:latest") && err.to_string().contains("schema 1")
            );
        }
        // The header alone is enough to refuse.
        assert!(matches!(
            parse_manifest("r", Some(DOCKER_SCHEMA1_SIGNED), b"{}"),
            Err(RegistryError::Schema1 { .. })
        ));

        for bad in [
            &b"not json"[..],
            b"[]",
            b"{\"schemaVersion\": 3}",
            b"{\"schemaVersion\": 2}",
        ] {
            assert!(
                matches!(
                    parse_manifest("r", None, bad),
                    Err(RegistryError::InvalidManifest { .. })
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let odd = serde_json::json!({"schemaVersion": 2, "mediaType": "application/x-other", "config": {}});
        assert!(matches!(
            parse_manifest("r", None, odd.to_string().as_bytes()),
            Err(RegistryError::UnsupportedMediaType { .. })
        ));
        // A descriptor with an algorithm we cannot verify is refused.
        let weird = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": "sha512:abcd", "size": 2}, "layers": []});
        assert!(parse_manifest("r", None, weird.to_string().as_bytes()).is_err());
        // Negative sizes do not parse.
        let neg = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cfg.digest.to_string(), "size": -1}, "layers": []});
        assert!(parse_manifest("r", None, neg.to_string().as_bytes()).is_err());
    }
}
