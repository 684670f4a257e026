//! `docker load` / `docker save` archives.
//!
//! [`load`] reads, in one sequential pass, any of:
//! - a docker-archive as `docker save` writes it: `manifest.json` (Config, RepoTags, Layers),
//!   `<config>.json`, `<id>/layer.tar` (uncompressed, or compressed by other tools), a legacy
//!   `repositories` file (ignored when `manifest.json` is present, as Docker does);
//! - the Docker ≥25 variant, which also carries an OCI layout (`blobs/sha256/…`,
//!   `index.json`, `oci-layout`) and points manifest.json into `blobs/`;
//! - an OCI image layout tar (`oci-layout`, `index.json`, `blobs/sha256/…`), names from the
//!   `io.containerd.image.name` or `org.opencontainers.image.ref.name` annotations;
//! - any of these gzip- or zstd-compressed as a whole.
//!
//! Every regular file is spooled straight into the content store as it streams past (entries
//! named `blobs/sha256/<hex>` are verified against that digest on the way in); the small
//! metadata files are kept in memory under a size cap. Once the archive is read, the
//! manifests are resolved against what was spooled, each layer's diff_id is checked against
//! the config (compressed layers are decompressed from the store for that), and a manifest is
//! synthesized for images that came without one. Nothing but content-addressed blobs is
//! written: recording the images is the caller's job, after unpacking the layers.
//!
//! [`save`] writes the Docker ≥25 shape (docker-archive plus OCI layout), which every
//! `docker load` since 1.10 and OCI tools accept. Layers are written as they are stored
//! (usually gzip, from a registry): that keeps the image's manifest and its digest intact,
//! needs no temporary space to learn an uncompressed size for the tar header, and `docker
//! load` decompresses layer tars itself. Output is deterministic: sorted entries, mtime 0.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufReader, Read, Write};

use serde::{Deserialize, Serialize};

use super::content::{ContentError, ContentStore, Ingest};
use super::digest::{Digest, HashingReader};
use super::imagespec::{
    media, Compression, ConfigSubset, Descriptor, Index, Manifest, Platform, MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
};
use super::store::ImageRecord;

/// Cap on the in-memory metadata files (manifest.json, index.json, …).
pub const MAX_METADATA_BYTES: u64 = 8 << 20;
/// Cap on archive entries: a docker-archive has about three per layer.
pub const MAX_ENTRIES: usize = 100_000;
/// Symlink hops followed when resolving a layer path (old archives link shared layers).
const MAX_LINK_HOPS: usize = 16;
/// Nesting of indexes followed in an OCI layout.
const MAX_INDEX_DEPTH: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read the image archive as a tar: {0}")]
    Read(#[source] io::Error),
    #[error("image archive entry {entry:?}: {reason}")]
    Entry { entry: String, reason: String },
    #[error("image archive entry {entry:?}: {source}")]
    EntryContent {
        entry: String,
        #[source]
        source: ContentError,
    },
    #[error("image archive: {0}")]
    Format(String),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("cannot write the image archive: {0}")]
    Write(#[source] io::Error),
}

fn entry_err(entry: &str, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Entry {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

/// One layer of a loaded image, in order from the base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedLayer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// Verified against the config.
    pub diff_id: Digest,
}

/// An image found in an archive; its blobs are in the content store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// The image id.
    pub config_digest: Digest,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    /// The archive had no manifest for this image; one was written from manifest.json.
    pub synthesized_manifest: bool,
    /// Names as written in the archive (`busybox:latest` or full references); the caller
    /// normalizes them.
    pub repo_tags: Vec<String>,
    pub layers: Vec<LoadedLayer>,
    pub platform: Platform,
}

/// Docker's manifest.json entry.
#[derive(Debug, Deserialize, Serialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct OciLayout {
    #[serde(rename = "imageLayoutVersion")]
    version: String,
}

/// A spooled archive entry: a blob in the store, or a link to another entry.
#[derive(Clone, Debug)]
enum Node {
    Blob(Digest),
    Link(String),
}

const METADATA: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];

/// Normalizes an entry name: `./a//b/` → `a/b`. Absolute names and `..` are refused even
/// though nothing is extracted: such an archive is broken or hostile.
fn clean_name(raw: &str) -> Result<String, ArchiveError> {
    if raw.starts_with('/') {
        return Err(entry_err(raw, "absolute path in the archive"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(entry_err(raw, "path escapes the archive (`..`)")),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a link target written in entry `name` (relative to its directory).
fn join_link(name: &str, target: &str) -> Result<String, ArchiveError> {
    if target.starts_with('/') {
        return Err(entry_err(
            name,
            format!("link target {target:?} is absolute"),
        ));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(entry_err(
                        name,
                        format!("link target {target:?} escapes the archive"),
                    ));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Legacy v1 metadata next to each layer.tar; never referenced, so not worth a blob.
fn is_v1_metadata(name: &str) -> bool {
    match name.split_once('/') {
        Some((dir, file)) => Digest::from_hex(dir).is_ok() && (file == "json" || file == "VERSION"),
        None => false,
    }
}

/// `blobs/sha256/<hex>` → the digest it claims.
fn blob_path_digest(name: &str) -> Option<Digest> {
    name.strip_prefix("blobs/sha256/")
        .and_then(|hex| Digest::from_hex(hex).ok())
}

/// Reads up to `n` bytes (fewer only at EOF).
fn read_head(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.by_ref().take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn parse_json<T: serde::de::DeserializeOwned>(
    entry: &str,
    bytes: &[u8],
) -> Result<T, ArchiveError> {
    serde_json::from_slice(bytes).map_err(|e| entry_err(entry, format!("invalid JSON: {e}")))
}

/// Copies an entry's data, telling read errors (a truncated archive) from write errors.
fn copy_entry(
    entry: &mut impl Read,
    name: &str,
    out: &mut impl Write,
) -> Result<u64, ArchiveError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(entry_err(name, format!("cannot read its data: {e}"))),
        };
        out.write_all(&buf[..n])
            .map_err(|e| entry_err(name, format!("cannot store its data: {e}")))?;
        total += n as u64;
    }
}

/// Imports every image in a docker-archive or OCI layout tar (possibly gzip/zstd as a
/// whole) into `content`. See the module docs.
pub fn load<'r, R: Read + 'r>(
    mut reader: R,
    content: &ContentStore,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let head = read_head(&mut reader, 4).map_err(ArchiveError::Read)?;
    let compression = Compression::sniff(&head);
    let buffered = BufReader::with_capacity(1 << 20, io::Cursor::new(head).chain(reader));
    let stream: Box<dyn Read + 'r> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered).map_err(ArchiveError::Read)?,
        ),
        Compression::None => Box::new(buffered),
    };
    let mut spool = Spool {
        content,
        nodes: HashMap::new(),
        metadata: HashMap::new(),
        diff_ids: HashMap::new(),
    };
    spool.read_archive(stream)?;
    spool.images()
}

struct Spool<'a> {
    content: &'a ContentStore,
    nodes: HashMap<String, Node>,
    metadata: HashMap<String, Vec<u8>>,
    /// Uncompressed digests already computed, by blob digest.
    diff_ids: HashMap<Digest, Digest>,
}

impl Spool<'_> {
    fn read_archive(&mut self, stream: impl Read) -> Result<(), ArchiveError> {
        let mut archive = tar::Archive::new(stream);
        let entries = archive.entries().map_err(ArchiveError::Read)?;
        let mut count = 0;
        for (i, entry) in entries.enumerate() {
            count = i + 1;
            if i >= MAX_ENTRIES {
                return Err(ArchiveError::Format(format!(
                    "more than {MAX_ENTRIES} entries; not an image archive"
                )));
            }
            let mut entry = entry.map_err(ArchiveError::Read)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = clean_name(&raw)?;
            if name.is_empty() {
                continue;
            }
            let kind = entry.header().entry_type();
            let link = |entry: &tar::Entry<_>| -> Result<String, ArchiveError> {
                match entry.link_name_bytes() {
                    Some(t) => Ok(String::from_utf8_lossy(&t).into_owned()),
                    None => Err(entry_err(&raw, "link without a target")),
                }
            };
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    self.file(&name, &mut entry)?
                }
                tar::EntryType::Symlink => {
                    let target = join_link(&name, &link(&entry)?)?;
                    self.nodes.insert(name, Node::Link(target));
                }
                tar::EntryType::Link => {
                    let target = clean_name(&link(&entry)?)?;
                    self.nodes.insert(name, Node::Link(target));
                }
                // Directories, devices, fifos: nothing an image archive refers to.
                _ => {}
            }
        }
        if count == 0 {
            return Err(ArchiveError::Format(
                "the input is empty (no tar entries)".into(),
            ));
        }
        Ok(())
    }

    fn file(&mut self, name: &str, entry: &mut tar::Entry<impl Read>) -> Result<(), ArchiveError> {
        let size = entry.size();
        if METADATA.contains(&name) {
            if size > MAX_METADATA_BYTES {
                return Err(entry_err(
                    name,
                    format!("{size} bytes, more than the {MAX_METADATA_BYTES}-byte limit for archive metadata"),
                ));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            copy_entry(entry, name, &mut bytes)?;
            self.metadata.insert(name.to_string(), bytes);
            return Ok(());
        }
        if is_v1_metadata(name) {
            return Ok(());
        }
        let digest = match blob_path_digest(name) {
            Some(expected) => self.spool_expected(name, entry, &expected, size)?,
            None => {
                let content_err = |source| ArchiveError::EntryContent {
                    entry: name.to_string(),
                    source,
                };
                let mut w = self.content.writer().map_err(content_err)?;
                copy_entry(entry, name, &mut w)?;
                w.commit().map_err(content_err)?
            }
        };
        self.nodes.insert(name.to_string(), Node::Blob(digest));
        Ok(())
    }

    fn spool_expected(
        &self,
        name: &str,
        entry: &mut impl Read,
        expected: &Digest,
        size: u64,
    ) -> Result<Digest, ArchiveError> {
        let content_err = |source| ArchiveError::EntryContent {
            entry: name.to_string(),
            source,
        };
        match self
            .content
            .ingest(expected, Some(size))
            .map_err(content_err)?
        {
            // Unread entry data is skipped by the tar reader.
            Ingest::AlreadyPresent(d) => Ok(d),
            Ingest::Writer(mut w) => {
                if w.offset() > 0 {
                    w.restart().map_err(content_err)?;
                }
                if let Err(e) = copy_entry(entry, name, &mut w) {
                    let _ = w.abort();
                    return Err(e);
                }
                w.commit().map_err(content_err)
            }
        }
    }

    /// The blob an entry path names, following links.
    fn resolve(&self, referrer: &str, path: &str) -> Result<Digest, ArchiveError> {
        let mut cur = clean_name(path)?;
        for _ in 0..MAX_LINK_HOPS {
            match self.nodes.get(&cur) {
                Some(Node::Blob(d)) => return Ok(d.clone()),
                Some(Node::Link(t)) => cur = t.clone(),
                None => {
                    return Err(entry_err(
                        referrer,
                        format!("refers to {path:?}, which is not in the archive"),
                    ))
                }
            }
        }
        Err(entry_err(
            referrer,
            format!("{path:?}: too many levels of links"),
        ))
    }

    /// A blob an OCI document refers to must be in the archive (or already stored).
    fn require_blob(&self, referrer: &str, digest: &Digest) -> Result<(), ArchiveError> {
        let path = format!("blobs/sha256/{}", digest.hex());
        match self.resolve(referrer, &path) {
            Ok(d) if &d == digest => Ok(()),
            Ok(d) => Err(entry_err(&path, format!("holds {d}, not {digest}"))),
            Err(_) if self.content.has(digest) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn read_config(&self, entry: &str, digest: &Digest) -> Result<ConfigSubset, ArchiveError> {
        let bytes = self
            .content
            .read_capped(digest, MAX_CONFIG_BYTES)
            .map_err(|source| ArchiveError::EntryContent {
                entry: entry.to_string(),
                source,
            })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| entry_err(entry, format!("not a valid image config: {e}")))
    }

    fn sniff_blob(&self, entry: &str, digest: &Digest) -> Result<Compression, ArchiveError> {
        let mut f = self.content.open_blob(digest)?;
        let head = read_head(&mut f, 4)
            .map_err(|e| entry_err(entry, format!("cannot read blob {digest}: {e}")))?;
        Ok(Compression::sniff(&head))
    }

    /// sha256 of the uncompressed layer.
    fn diff_id(
        &mut self,
        entry: &str,
        digest: &Digest,
        compression: Compression,
    ) -> Result<Digest, ArchiveError> {
        if compression == Compression::None {
            return Ok(digest.clone());
        }
        if let Some(d) = self.diff_ids.get(digest) {
            return Ok(d.clone());
        }
        let file = BufReader::with_capacity(256 * 1024, self.content.open_blob(digest)?);
        let decoder: Box<dyn Read> =
            match compression {
                Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
                _ => Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(|e| {
                    entry_err(entry, format!("cannot decompress layer {digest}: {e}"))
                })?),
            };
        let mut reader = HashingReader::new(decoder);
        io::copy(&mut reader, &mut io::sink())
            .map_err(|e| entry_err(entry, format!("cannot decompress layer {digest}: {e}")))?;
        let diff_id = reader.finish().1;
        self.diff_ids.insert(digest.clone(), diff_id.clone());
        Ok(diff_id)
    }
}

/// Names an OCI index entry carries: containerd's full name, else `ref.name` when it is a
/// full reference rather than a bare tag (a bare tag has no repository to attach to).
fn annotation_names(desc: &Descriptor) -> Vec<String> {
    if let Some(n) = desc.annotations.get(media::ANNOTATION_CONTAINERD_NAME) {
        return vec![n.clone()];
    }
    match desc.annotations.get(media::ANNOTATION_REF_NAME) {
        Some(r) if r.contains('/') || r.contains(':') => vec![r.clone()],
        _ => Vec::new(),
    }
}

/// Merges images listed more than once (one entry per tag) into one with all the tags.
fn merge_by_id(images: Vec<LoadedImage>) -> Vec<LoadedImage> {
    let mut out: Vec<LoadedImage> = Vec::new();
    for image in images {
        match out.iter_mut().find(|o| {
            o.config_digest == image.config_digest && o.manifest_digest == image.manifest_digest
        }) {
            Some(o) => {
                for t in image.repo_tags {
                    if !o.repo_tags.contains(&t) {
                        o.repo_tags.push(t);
                    }
                }
            }
            None => out.push(image),
        }
    }
    out
}

struct IndexedManifest {
    digest: Digest,
    media_type: String,
    layers: Vec<Digest>,
}

impl Spool<'_> {
    fn images(mut self) -> Result<Vec<LoadedImage>, ArchiveError> {
        if let Some(bytes) = self.metadata.get("oci-layout") {
            let layout: OciLayout = parse_json("oci-layout", bytes)?;
            if !layout.version.starts_with("1.") {
                return Err(entry_err(
                    "oci-layout",
                    format!("unsupported imageLayoutVersion {:?}", layout.version),
                ));
            }
        }
        let images = if self.metadata.contains_key("manifest.json") {
            self.docker_images()?
        } else if self.metadata.contains_key("index.json") {
            self.oci_images()?
        } else {
            return Err(ArchiveError::Format(
                "neither manifest.json (docker-archive) nor index.json (OCI layout) found; \
                 archives from Docker before 1.10 are not supported"
                    .into(),
            ));
        };
        if images.is_empty() {
            return Err(ArchiveError::Format("the archive lists no images".into()));
        }
        Ok(merge_by_id(images))
    }

    fn docker_images(&mut self) -> Result<Vec<LoadedImage>, ArchiveError> {
        let entries: Vec<DockerManifestEntry> =
            parse_json("manifest.json", &self.metadata["manifest.json"])?;
        // Docker ≥25 also ships the OCI manifests: reuse them to keep the image's manifest.
        let known = if self.metadata.contains_key("index.json") {
            self.index_manifests()?
        } else {
            HashMap::new()
        };
        let mut out = Vec::new();
        for e in entries {
            let config_digest = self.resolve("manifest.json", &e.config)?;
            let config_entry = clean_name(&e.config)?;
            let config = self.read_config(&config_entry, &config_digest)?;
            if config.rootfs.diff_ids.len() != e.layers.len() {
                return Err(entry_err(
                    "manifest.json",
                    format!(
                        "image {config_digest} has {} layers but its config {config_entry:?} lists {} diff_ids",
                        e.layers.len(),
                        config.rootfs.diff_ids.len()
                    ),
                ));
            }
            let mut layers = Vec::new();
            for (i, path) in e.layers.iter().enumerate() {
                let layer_entry = clean_name(path)?;
                let digest = self.resolve("manifest.json", path)?;
                let compression = self.sniff_blob(&layer_entry, &digest)?;
                let diff_id = self.diff_id(&layer_entry, &digest, compression)?;
                let expected = &config.rootfs.diff_ids[i];
                if &diff_id != expected {
                    return Err(entry_err(
                        &layer_entry,
                        format!(
                            "layer {i} uncompressed hashes to {diff_id}, but the config {config_entry:?} expects {expected}"
                        ),
                    ));
                }
                layers.push(LoadedLayer {
                    size: self.content.size(&digest)?,
                    digest,
                    media_type: compression.oci_layer_media_type().to_string(),
                    diff_id,
                });
            }
            let layer_digests: Vec<Digest> = layers.iter().map(|l| l.digest.clone()).collect();
            let (manifest_digest, manifest_media_type, synthesized) = match known
                .get(&config_digest)
                .filter(|m| m.layers == layer_digests)
            {
                Some(m) => (m.digest.clone(), m.media_type.clone(), false),
                None => {
                    let manifest = Manifest {
                        schema_version: 2,
                        media_type: Some(media::OCI_MANIFEST.to_string()),
                        config: Descriptor::new(
                            media::OCI_CONFIG,
                            config_digest.clone(),
                            self.content.size(&config_digest)?,
                        ),
                        layers: layers
                            .iter()
                            .map(|l| Descriptor::new(&l.media_type, l.digest.clone(), l.size))
                            .collect(),
                        annotations: BTreeMap::new(),
                    };
                    let bytes = serde_json::to_vec(&manifest).map_err(|e| {
                        ArchiveError::Format(format!("cannot encode a manifest: {e}"))
                    })?;
                    let d = self.content.write_blob(&bytes)?;
                    (d, media::OCI_MANIFEST.to_string(), true)
                }
            };
            out.push(LoadedImage {
                config_digest,
                manifest_digest,
                manifest_media_type,
                synthesized_manifest: synthesized,
                repo_tags: e.repo_tags.unwrap_or_default(),
                layers,
                platform: config.platform(),
            });
        }
        Ok(out)
    }

    /// The manifests index.json leads to (for this platform), by config digest. Only used to
    /// keep an image's original manifest, so anything unusable is skipped: the manifest is
    /// then synthesized from manifest.json instead.
    fn index_manifests(&self) -> Result<HashMap<Digest, IndexedManifest>, ArchiveError> {
        let index: Index = parse_json("index.json", &self.metadata["index.json"])?;
        let mut out = HashMap::new();
        for top in &index.manifests {
            let found = self.pick_manifest("index.json", top, 0).and_then(|desc| {
                self.require_blob("index.json", &desc.digest)?;
                Ok((self.read_manifest(&desc)?, desc))
            });
            let Ok(((m, media_type), desc)) = found else {
                continue;
            };
            out.insert(
                m.config.digest.clone(),
                IndexedManifest {
                    digest: desc.digest.clone(),
                    media_type,
                    layers: m.layers.iter().map(|l| l.digest.clone()).collect(),
                },
            );
        }
        Ok(out)
    }

    fn read_manifest(&self, desc: &Descriptor) -> Result<(Manifest, String), ArchiveError> {
        let entry = format!("blobs/sha256/{}", desc.digest.hex());
        let bytes = self
            .content
            .read_capped(&desc.digest, MAX_MANIFEST_BYTES)
            .map_err(|source| ArchiveError::EntryContent {
                entry: entry.clone(),
                source,
            })?;
        let m: Manifest = parse_json(&entry, &bytes)?;
        let media_type = m
            .media_type
            .clone()
            .unwrap_or_else(|| desc.media_type.clone());
        if !media::is_manifest(&media_type) || m.schema_version != 2 {
            return Err(entry_err(
                &entry,
                format!("not an image manifest (mediaType {media_type})"),
            ));
        }
        Ok((m, media_type))
    }

    fn oci_images(&mut self) -> Result<Vec<LoadedImage>, ArchiveError> {
        let index: Index = parse_json("index.json", &self.metadata["index.json"])?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            let manifest = self.pick_manifest("index.json", desc, 0)?;
            out.push(self.oci_image(&manifest, annotation_names(desc))?);
        }
        Ok(out)
    }

    /// Follows nested indexes down to the manifest for this machine's platform.
    fn pick_manifest(
        &self,
        referrer: &str,
        desc: &Descriptor,
        depth: usize,
    ) -> Result<Descriptor, ArchiveError> {
        if media::is_manifest(&desc.media_type) {
            return Ok(desc.clone());
        }
        if !media::is_index(&desc.media_type) {
            return Err(entry_err(
                referrer,
                format!(
                    "{} has media type {}, neither an image manifest nor an index",
                    desc.digest, desc.media_type
                ),
            ));
        }
        let entry = format!("blobs/sha256/{}", desc.digest.hex());
        if depth >= MAX_INDEX_DEPTH {
            return Err(entry_err(&entry, "indexes nested too deeply"));
        }
        self.require_blob(referrer, &desc.digest)?;
        let bytes = self
            .content
            .read_capped(&desc.digest, MAX_MANIFEST_BYTES)
            .map_err(|source| ArchiveError::EntryContent {
                entry: entry.clone(),
                source,
            })?;
        let index: Index = parse_json(&entry, &bytes)?;
        let host = Platform::host();
        let pick = index.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == host.os && p.architecture == host.architecture)
        });
        match pick {
            Some(d) => self.pick_manifest(&entry, d, depth + 1),
            None => Err(entry_err(
                &entry,
                format!(
                    "the index has no image for {}/{}",
                    host.os, host.architecture
                ),
            )),
        }
    }

    fn oci_image(
        &mut self,
        desc: &Descriptor,
        names: Vec<String>,
    ) -> Result<LoadedImage, ArchiveError> {
        let entry = format!("blobs/sha256/{}", desc.digest.hex());
        self.require_blob("index.json", &desc.digest)?;
        let (manifest, media_type) = self.read_manifest(desc)?;
        let config_digest = manifest.config.digest.clone();
        self.require_blob(&entry, &config_digest)?;
        let config_entry = format!("blobs/sha256/{}", config_digest.hex());
        let config = self.read_config(&config_entry, &config_digest)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(entry_err(
                &entry,
                format!(
                    "{} layers but the config lists {} diff_ids",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for (i, l) in manifest.layers.iter().enumerate() {
            let layer_entry = format!("blobs/sha256/{}", l.digest.hex());
            let compression =
                Compression::from_layer_media_type(&l.media_type).ok_or_else(|| {
                    entry_err(
                        &entry,
                        format!(
                            "layer {} has media type {}, which berth cannot unpack",
                            l.digest, l.media_type
                        ),
                    )
                })?;
            self.require_blob(&entry, &l.digest)?;
            let size = self.content.size(&l.digest)?;
            if size != l.size {
                return Err(entry_err(
                    &layer_entry,
                    format!("is {size} bytes but the manifest says {}", l.size),
                ));
            }
            let diff_id = self.diff_id(&layer_entry, &l.digest, compression)?;
            let expected = &config.rootfs.diff_ids[i];
            if &diff_id != expected {
                return Err(entry_err(
                    &layer_entry,
                    format!("layer {i} uncompressed hashes to {diff_id}, but the config expects {expected}"),
                ));
            }
            layers.push(LoadedLayer {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size,
                diff_id,
            });
        }
        Ok(LoadedImage {
            config_digest,
            manifest_digest: desc.digest.clone(),
            manifest_media_type: media_type,
            synthesized_manifest: false,
            repo_tags: names,
            layers,
            platform: config.platform(),
        })
    }
}

/// Splits `name:tag` at the last `:` after the last `/` (a registry port is not a tag).
pub(crate) fn split_tag(name: &str) -> (&str, &str) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], &name[slash + i + 1..]),
        None => (name, "latest"),
    }
}

/// `desc` as an OCI layout's index.json entry naming `tag` (a full reference): containerd's
/// annotation carries the whole name, the OCI one just the tag (as containerd exports do).
pub(crate) fn named_in_layout(desc: &Descriptor, tag: &str) -> Descriptor {
    let mut d = desc.clone();
    d.annotations
        .insert(media::ANNOTATION_CONTAINERD_NAME.into(), tag.to_string());
    d.annotations
        .insert(media::ANNOTATION_REF_NAME.into(), split_tag(tag).1.into());
    d
}

/// Docker writes familiar names (`busybox:latest`) into manifest.json and repositories.
/// Only the Docker Hub prefix is dropped, so this is the exact inverse of normalization.
fn familiar(name: &str) -> &str {
    match name.strip_prefix("docker.io/library/") {
        Some(rest) if !rest.contains('/') => rest,
        _ => name.strip_prefix("docker.io/").unwrap_or(name),
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec(value).map_err(|e| ArchiveError::Format(format!("cannot encode JSON: {e}")))
}

fn tar_header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes `images` as a docker-archive with an OCI layout alongside (Docker ≥25's shape).
/// Every tag of each record is included: pass records with `repo_tags` narrowed to what the
/// user asked for (as `docker save busybox:latest` saves only that tag). Blobs are checked to
/// exist before anything is written.
pub fn save<W: Write>(
    writer: W,
    content: &ContentStore,
    images: &[ImageRecord],
) -> Result<W, ArchiveError> {
    let mut blobs: BTreeSet<Digest> = BTreeSet::new();
    let mut index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests: Vec::new(),
        annotations: BTreeMap::new(),
    };
    let mut manifest_json = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        for d in [&image.manifest_digest, &image.id]
            .into_iter()
            .chain(image.layers.iter().map(|l| &l.digest))
        {
            if !content.has(d) {
                return Err(ArchiveError::Format(format!(
                    "image {}: blob {d} is missing from the content store",
                    image.id
                )));
            }
            blobs.insert(d.clone());
        }
        let desc = Descriptor::new(
            &image.manifest_media_type,
            image.manifest_digest.clone(),
            content.size(&image.manifest_digest)?,
        );
        if image.repo_tags.is_empty() {
            index.manifests.push(desc.clone());
        }
        for tag in &image.repo_tags {
            index.manifests.push(named_in_layout(&desc, tag));
            if let Some(top) = image.layers.last() {
                let (repo, t) = split_tag(familiar(tag));
                repositories
                    .entry(repo.to_string())
                    .or_default()
                    .insert(t.to_string(), top.digest.hex().to_string());
            }
        }
        manifest_json.push(DockerManifestEntry {
            config: format!("blobs/sha256/{}", image.id.hex()),
            repo_tags: Some(
                image
                    .repo_tags
                    .iter()
                    .map(|t| familiar(t).to_string())
                    .collect(),
            ),
            layers: image
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                .collect(),
        });
    }

    let write_err = ArchiveError::Write;
    let mut b = tar::Builder::new(writer);
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar_header(0, 0o755, tar::EntryType::Directory);
        b.append_data(&mut h, dir, io::empty()).map_err(write_err)?;
    }
    for d in &blobs {
        let file = content.open_blob(d)?;
        let size = file
            .metadata()
            .map_err(|e| ArchiveError::Format(format!("cannot stat blob {d}: {e}")))?
            .len();
        let mut h = tar_header(size, 0o644, tar::EntryType::Regular);
        // take(): a blob file cannot grow, but the header already promised `size` bytes.
        b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), file.take(size))
            .map_err(write_err)?;
    }
    let mut small = vec![
        ("index.json", json_bytes(&index)?),
        ("manifest.json", json_bytes(&manifest_json)?),
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
    ];
    if !repositories.is_empty() {
        small.push(("repositories", json_bytes(&repositories)?));
    }
    for (name, data) in small {
        let mut h = tar_header(data.len() as u64, 0o644, tar::EntryType::Regular);
        b.append_data(&mut h, name, data.as_slice())
            .map_err(write_err)?;
    }
    let mut w = b.into_inner().map_err(write_err)?;
    w.flush().map_err(write_err)?;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::image::testkit::{self, TestImage};

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        (dir, s)
    }

    /// A tar whose entry names are written raw (the tar crate refuses `..` when building).
    fn raw_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn small_image() -> TestImage {
        TestImage::scratch()
            .tag("example.com/small:1")
            .extra_layer(&[("a/", b"", 0o755), ("a/file", b"one", 0o644)])
            .extra_layer(&[("b", b"two", 0o600)])
    }

    fn record(s: &ContentStore, img: &LoadedImage) -> ImageRecord {
        ImageRecord::from_content(s, &img.manifest_digest, img.repo_tags.clone(), vec![]).unwrap()
    }

    #[test]
    fn loads_a_classic_docker_archive() {
        let (_d, s) = store();
        let img = small_image();
        let parts = img.parts();
        let loaded = load(img.docker_archive_tar().as_slice(), &s).unwrap();
        assert_eq!(loaded.len(), 1);
        let l = &loaded[0];
        assert_eq!(l.config_digest, parts.config_digest);
        assert_eq!(l.repo_tags, vec!["example.com/small:1".to_string()]);
        assert!(l.synthesized_manifest);
        assert_eq!(l.layers.len(), 2);
        for (layer, want) in l.layers.iter().zip(&parts.layers) {
            assert_eq!(layer.diff_id, want.diff_id);
            assert_eq!(layer.digest, want.diff_id, "stored uncompressed");
            assert_eq!(layer.media_type, media::OCI_LAYER);
            assert!(s.has(&layer.digest));
        }
        // The synthesized manifest is a valid, stable record source.
        let r = record(&s, l);
        assert_eq!(r.id, parts.config_digest);
        let again = load(img.docker_archive_tar().as_slice(), &s).unwrap();
        assert_eq!(again[0].manifest_digest, l.manifest_digest);
        // v1 json/VERSION files were not spooled.
        assert_eq!(s.list().unwrap().len(), 4); // config, 2 layers, manifest
    }

    #[test]
    fn loads_gzip_layers_and_whole_archive_compression() {
        let img = small_image();
        let parts = img.parts();
        let tar = testkit::docker_archive_tar_of(&[&img], true);
        for bytes in [
            tar.clone(),
            testkit::gzip(&tar),
            testkit::zstd(&img.docker_archive_tar()),
        ] {
            let (_d, s) = store();
            let l = &load(bytes.as_slice(), &s).unwrap()[0];
            assert_eq!(l.config_digest, parts.config_digest);
            assert_eq!(
                l.layers
                    .iter()
                    .map(|x| x.diff_id.clone())
                    .collect::<Vec<_>>(),
                parts.diff_ids()
            );
        }
        let (_d, s) = store();
        let l = &load(tar.as_slice(), &s).unwrap()[0];
        assert_eq!(l.layers[0].media_type, media::OCI_LAYER_GZIP);
        assert_eq!(l.layers[0].digest, parts.layers[0].digest);
    }

    #[test]
    fn loads_an_oci_layout_with_names_from_annotations() {
        let (_d, s) = store();
        let a = small_image().tag("example.com/small:2");
        let b = TestImage::scratch()
            .extra_layer(&[("z", b"z", 0o644)])
            .layer_compression(Compression::Zstd)
            .tag("docker.io/library/other:latest");
        let tar = testkit::oci_layout_tar_of(&[&a, &b]);
        let loaded = load(tar.as_slice(), &s).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].manifest_digest, a.parts().manifest_digest);
        assert!(!loaded[0].synthesized_manifest);
        assert_eq!(
            loaded[0].repo_tags,
            vec![
                "example.com/small:1".to_string(),
                "example.com/small:2".to_string()
            ]
        );
        assert_eq!(
            loaded[1].repo_tags,
            vec!["docker.io/library/other:latest".to_string()]
        );
        assert_eq!(loaded[1].layers[0].media_type, media::OCI_LAYER_ZSTD);
        assert_eq!(loaded[1].layers[0].diff_id, b.parts().layers[0].diff_id);
    }

    #[test]
    fn picks_the_host_platform_from_a_nested_index() {
        let (_d, s) = store();
        let host = TestImage::scratch().extra_layer(&[("h", b"host", 0o644)]);
        let other = TestImage::scratch()
            .extra_layer(&[("o", b"other", 0o644)])
            .platform("linux", "s390x-not-this-one");
        let hp = host.parts();
        let op = other.parts();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for p in [&hp, &op] {
            for (d, data) in p.blobs() {
                files.push((format!("blobs/sha256/{}", d.hex()), data.to_vec()));
            }
        }
        let mut od = op.manifest_descriptor();
        od.platform = Some(op.platform.clone());
        let mut hd = hp.manifest_descriptor();
        hd.platform = Some(hp.platform.clone());
        let inner = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: vec![od, hd],
            annotations: BTreeMap::new(),
        };
        let inner = serde_json::to_vec(&inner).unwrap();
        let inner_d = Digest::of(&inner);
        files.push((format!("blobs/sha256/{}", inner_d.hex()), inner.clone()));
        let mut top_desc = Descriptor::new(media::OCI_INDEX, inner_d, inner.len() as u64);
        top_desc
            .annotations
            .insert(media::ANNOTATION_REF_NAME.into(), "multi:1".into());
        let top = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: vec![top_desc],
            annotations: BTreeMap::new(),
        };
        files.push(("index.json".into(), serde_json::to_vec(&top).unwrap()));
        let entries: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let loaded = load(raw_tar(&entries).as_slice(), &s).unwrap();
        assert_eq!(loaded[0].manifest_digest, hp.manifest_digest);
        assert_eq!(loaded[0].repo_tags, vec!["multi:1".to_string()]);
    }

    #[test]
    fn save_round_trips_and_is_deterministic() {
        let (_d, s) = store();
        let img = small_image();
        let loaded = load(img.oci_layout_tar().as_slice(), &s).unwrap();
        let r = record(&s, &loaded[0]);
        let out1 = save(Vec::new(), &s, std::slice::from_ref(&r)).unwrap();
        let out2 = save(Vec::new(), &s, std::slice::from_ref(&r)).unwrap();
        assert_eq!(out1, out2);
        let (_d2, s2) = store();
        let again = load(out1.as_slice(), &s2).unwrap();
        assert_eq!(again[0].config_digest, r.id);
        // The OCI side of the archive keeps the original manifest.
        assert_eq!(again[0].manifest_digest, r.manifest_digest);
        assert!(!again[0].synthesized_manifest);
        assert_eq!(again[0].repo_tags, vec!["example.com/small:1".to_string()]);
        // Entries are sorted with mtime 0.
        let mut a = tar::Archive::new(out1.as_slice());
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                assert_eq!(e.header().mtime().unwrap(), 0);
                e.path().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names.contains(&"repositories".to_string()));
    }

    #[test]
    fn follows_symlinked_layers_like_old_docker_save() {
        let (_d, s) = store();
        let img = TestImage::scratch().extra_layer(&[("f", b"f", 0o644)]);
        let p = img.clone().layer_compression(Compression::None).parts();
        let layer = &p.layers[0];
        let config_name = format!("{}.json", p.config_digest.hex());
        let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["x:1"], "Layers": ["bbb/layer.tar"]}]);
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar_header(data.len() as u64, 0o644, tar::EntryType::Regular);
            b.append_data(&mut h, name, data).unwrap();
        };
        add(&config_name, &p.config);
        add("aaa/layer.tar", &layer.data);
        add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
        let mut h = tar_header(0, 0o777, tar::EntryType::Symlink);
        b.append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
            .unwrap();
        let tar = b.into_inner().unwrap();
        let l = load(tar.as_slice(), &s).unwrap();
        assert_eq!(l[0].layers[0].diff_id, layer.diff_id);
    }

    #[test]
    fn docker_archive_with_a_per_image_index_keeps_the_manifest() {
        // Docker with containerd's image store: index.json → image index → manifest, and
        // manifest.json pointing into blobs/.
        let (_d, s) = store();
        let p = small_image().parts();
        let mut files: Vec<(String, Vec<u8>)> = p
            .blobs()
            .into_iter()
            .map(|(d, data)| (format!("blobs/sha256/{}", d.hex()), data.to_vec()))
            .collect();
        let mut md = p.manifest_descriptor();
        md.platform = Some(Platform::host());
        let inner = serde_json::to_vec(&Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: vec![md],
            annotations: BTreeMap::new(),
        })
        .unwrap();
        let inner_d = Digest::of(&inner);
        files.push((format!("blobs/sha256/{}", inner_d.hex()), inner.clone()));
        let top = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: vec![Descriptor::new(
                media::OCI_INDEX,
                inner_d,
                inner.len() as u64,
            )],
            annotations: BTreeMap::new(),
        };
        files.push(("index.json".into(), serde_json::to_vec(&top).unwrap()));
        let manifest = serde_json::json!([{
            "Config": format!("blobs/sha256/{}", p.config_digest.hex()),
            "RepoTags": ["small:1"],
            "Layers": p.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
        }]);
        files.push((
            "manifest.json".into(),
            serde_json::to_vec(&manifest).unwrap(),
        ));
        let entries: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let l = load(raw_tar(&entries).as_slice(), &s).unwrap();
        assert_eq!(l[0].manifest_digest, p.manifest_digest);
        assert!(!l[0].synthesized_manifest);
        assert_eq!(l[0].layers[0].media_type, media::OCI_LAYER_GZIP);
        assert_eq!(l[0].repo_tags, vec!["small:1".to_string()]);
    }

    fn load_err(bytes: &[u8]) -> String {
        let (_d, s) = store();
        load(bytes, &s).unwrap_err().to_string()
    }

    #[test]
    fn hostile_archives_get_clear_errors() {
        let e = load_err(&raw_tar(&[("../evil", b"x")]));
        assert!(e.contains("../evil") && e.contains("escapes"), "{e}");
        let e = load_err(&raw_tar(&[("/etc/passwd", b"x")]));
        assert!(e.contains("absolute"), "{e}");
        let e = load_err(&raw_tar(&[("hello", b"x")]));
        assert!(e.contains("neither manifest.json"), "{e}");
        let e = load_err(b"");
        assert!(e.contains("empty"), "{e}");
        let e = load_err(
            b"this is not a tar archive at all, just some text. "
                .repeat(20)
                .as_slice(),
        );
        assert!(!e.is_empty());
        let e = load_err(&raw_tar(&[("manifest.json", b"{oops")]));
        assert!(
            e.contains("manifest.json") && e.contains("invalid JSON"),
            "{e}"
        );
        let e = load_err(&raw_tar(&[(
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":[],"Layers":[]}]"#,
        )]));
        assert!(e.contains("\"c.json\", which is not in the archive"), "{e}");
        let e = load_err(&raw_tar(&[(
            "manifest.json",
            br#"[{"Config":"../../c.json","Layers":[]}]"#,
        )]));
        assert!(e.contains("escapes"), "{e}");
        // A blob whose content does not match its name.
        let name = format!("blobs/sha256/{}", Digest::of(b"right").hex());
        let e = load_err(&raw_tar(&[(name.as_str(), b"wrong")]));
        assert!(
            e.contains(&name) && e.contains("failed verification"),
            "{e}"
        );
        // Truncated archive.
        let full = small_image().docker_archive_tar();
        let e = load_err(&full[..full.len() / 2]);
        assert!(!e.is_empty());
    }

    #[test]
    fn huge_metadata_is_refused_before_it_is_read() {
        let mut b = tar::Builder::new(Vec::new());
        let size = MAX_METADATA_BYTES + 1;
        let mut h = tar_header(size, 0o644, tar::EntryType::Regular);
        b.append_data(&mut h, "manifest.json", io::repeat(b' ').take(size))
            .unwrap();
        let tar = b.into_inner().unwrap();
        let e = load_err(&tar);
        assert!(e.contains("manifest.json") && e.contains("limit"), "{e}");
    }

    #[test]
    fn a_layer_that_disagrees_with_the_config_is_refused() {
        let img = small_image();
        let p = img.clone().layer_compression(Compression::None).parts();
        // Swap the two layers in manifest.json: each now mismatches its diff_id.
        let config_name = format!("{}.json", p.config_digest.hex());
        let manifest = serde_json::json!([{"Config": config_name, "Layers": ["l1", "l0"]}]);
        let entries: Vec<(&str, &[u8])> = vec![
            (config_name.as_str(), &p.config),
            ("l0", &p.layers[0].data),
            ("l1", &p.layers[1].data),
        ];
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let mut all = entries;
        all.push(("manifest.json", &manifest));
        let e = load_err(&raw_tar(&all));
        assert!(e.contains("\"l1\"") && e.contains("expects"), "{e}");
        // Foreign layers are refused by media type.
        let (_d, s) = store();
        let mut m: Manifest = serde_json::from_slice(&img.parts().manifest).unwrap();
        m.layers[0].media_type = media::DOCKER_FOREIGN_LAYER.into();
        let mb = serde_json::to_vec(&m).unwrap();
        let md = Digest::of(&mb);
        let idx = serde_json::to_vec(&Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![Descriptor::new(
                media::OCI_MANIFEST,
                md.clone(),
                mb.len() as u64,
            )],
            annotations: BTreeMap::new(),
        })
        .unwrap();
        let p = img.parts();
        let mut files = vec![
            (format!("blobs/sha256/{}", md.hex()), mb),
            ("index.json".to_string(), idx),
        ];
        for (d, data) in p.blobs() {
            files.push((format!("blobs/sha256/{}", d.hex()), data.to_vec()));
        }
        let entries: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let e = load(raw_tar(&entries).as_slice(), &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot unpack"), "{e}");
    }

    #[test]
    fn names_are_split_and_familiarized_like_docker() {
        assert_eq!(split_tag("busybox:1"), ("busybox", "1"));
        assert_eq!(
            split_tag("localhost:5000/x"),
            ("localhost:5000/x", "latest")
        );
        assert_eq!(split_tag("localhost:5000/x:y"), ("localhost:5000/x", "y"));
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("docker.io/user/app:1"), "user/app:1");
        assert_eq!(familiar("docker.io/library/a/b:1"), "library/a/b:1");
        assert_eq!(familiar("quay.io/x/y:z"), "quay.io/x/y:z");
    }
}
