//! Manifest documents as a registry serves them: the Accept header, classification of a
//! fetched document, and platform selection from an index. The format types themselves
//! live in [`crate::engine::image::imagespec`].

use serde::Deserialize;

use super::RegistryError;
use crate::engine::image::imagespec::media::{
    self, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, OCI_INDEX, OCI_MANIFEST,
};
use crate::engine::image::imagespec::{Descriptor, Index, Manifest, Platform};

/// The Accept header for manifests. All four are needed: CNCF distribution 2.8 answers
/// 404 for an OCI-stored tag when Accept lacks the OCI types, and rewrites to schema 1
/// when it lacks Docker v2.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// A parsed manifest document.
// Only a few exist at a time; boxing would just add noise at every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Document {
    Image(Manifest),
    Index(Index),
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
) -> Result<(String, Document), RegistryError> {
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
        (None, Some(h)) if media::is_index(h) || media::is_manifest(h) => h.clone(),
        (None, _) if probe.manifests.is_some() => OCI_INDEX.to_string(),
        (None, _) if probe.config.is_some() => OCI_MANIFEST.to_string(),
        (None, _) => return Err(invalid("neither a manifest nor an index".into())),
    };
    if media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED {
        return Err(schema1(()));
    }
    if media::is_index(&media_type) {
        let index: Index =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("bad index: {e}")))?;
        Ok((media_type, Document::Index(index)))
    } else if media::is_manifest(&media_type) {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("bad manifest: {e}")))?;
        Ok((media_type, Document::Image(m)))
    } else {
        Err(RegistryError::UnsupportedMediaType {
            reference: reference.to_string(),
            media_type,
        })
    }
}

/// Picks the index entry for `want`: the best-ranked runnable entry, first in index order on
/// ties. Entries without a platform or with an `unknown` one (build attestations) are skipped.
pub fn select_platform<'a>(
    reference: &str,
    index: &'a Index,
    want: &Platform,
) -> Result<&'a Descriptor, RegistryError> {
    let want = want.clone().normalized();
    let mut best: Option<(usize, &Descriptor)> = None;
    for d in &index.manifests {
        let Some(p) = &d.platform else { continue };
        if !media::is_manifest(&d.media_type) && !media::is_index(&d.media_type) {
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
pub fn available_platforms(index: &Index) -> Vec<String> {
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
    use crate::engine::image::digest::Digest;
    use crate::engine::image::imagespec::media::{DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG};
    use std::collections::BTreeMap;

    fn d(seed: &str) -> Digest {
        Digest::of(seed.as_bytes())
    }

    fn entry(os: &str, arch: &str, variant: Option<&str>, seed: &str) -> Descriptor {
        let mut desc = Descriptor::of(OCI_MANIFEST, seed.as_bytes());
        // Raw, as an index may hold it: selection must normalize.
        desc.platform = Some(Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(str::to_string),
            ..Platform::default()
        });
        desc
    }

    fn index(entries: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: entries,
            annotations: BTreeMap::new(),
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
        let m = Manifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            config: cfg.clone(),
            layers: vec![Descriptor::of(DOCKER_LAYER_GZIP, b"layer")],
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&m).unwrap();
        let (mt, parsed) = parse_manifest("r", Some("text/plain"), &bytes).unwrap();
        assert_eq!(mt, DOCKER_MANIFEST, "the body's mediaType wins");
        assert_eq!(parsed, Document::Image(m.clone()));

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
        assert!(matches!(parsed, Document::Index(_)));

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
