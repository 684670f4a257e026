//! The image index: which images exist, their names, and the blobs and snapshots they use.
//!
//! All records live in one file, `<root>/images/images.json`, replaced atomically (temp
//! file, fsync, rename, fsync directory) on every change, so a crash at any point leaves
//! either the old or the new index, never a mix; one file also keeps the tag index and the
//! records consistent without a second file to reconcile. Read-modify-write sequences hold
//! an exclusive flock on `<root>/images/lock`; plain reads need no lock because the file is
//! only ever replaced whole.
//!
//! Names are taken as already-normalized strings (`docker.io/library/busybox:latest`,
//! `docker.io/library/busybox@sha256:…`); parsing references is `reference.rs`'s job.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};

use super::content::{ContentError, ContentStore};
use super::digest::Digest;
use super::fsutil;
use super::imagespec::{
    self, media, ConfigSubset, Manifest, Platform, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("image store: cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image store: {path} is not a valid image index: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("image id prefix {prefix:?} is ambiguous: it matches {count} images")]
    Ambiguous { prefix: String, count: usize },
    #[error("manifest {digest}: {reason}")]
    BadManifest { digest: Digest, reason: String },
    #[error("image config {digest}: {reason}")]
    BadConfig { digest: Digest, reason: String },
    #[error(transparent)]
    Content(#[from] ContentError),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The blob as stored (compressed or not).
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// sha256 of the uncompressed layer tar.
    pub diff_id: Digest,
    /// The snapshot this layer ends (see [`imagespec::chain_ids`]).
    pub chain_id: Digest,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest, as Docker defines image ids.
    pub id: Digest,
    /// Every image has a manifest blob: pulled, read from an archive, or synthesized.
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    /// The index (manifest list) the manifest was picked from, if any; kept so gc keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    pub config_media_type: String,
    /// `docker.io/library/busybox:latest`
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// `docker.io/library/busybox@sha256:…`
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// From the config (RFC 3339), as the image author set it.
    #[serde(default)]
    pub created: Option<String>,
    pub platform: Platform,
    pub layers: Vec<LayerRecord>,
    /// Sum of the layer blob sizes as stored.
    pub compressed_size: u64,
    /// Sum of the unpacked layer sizes; filled in by whoever unpacked the layers.
    #[serde(default)]
    pub unpacked_size: Option<u64>,
}

impl ImageRecord {
    /// Builds a record from a manifest already in the content store, reading it and its
    /// config (both size-capped) and checking that they agree.
    pub fn from_content(
        content: &ContentStore,
        manifest_digest: &Digest,
        repo_tags: Vec<String>,
        repo_digests: Vec<String>,
    ) -> Result<ImageRecord, StoreError> {
        let bad_manifest = |reason: String| StoreError::BadManifest {
            digest: manifest_digest.clone(),
            reason,
        };
        let bytes = content.read_capped(manifest_digest, MAX_MANIFEST_BYTES)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| bad_manifest(e.to_string()))?;
        let manifest_media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        if !media::is_manifest(&manifest_media_type) || manifest.schema_version != 2 {
            return Err(bad_manifest(format!(
                "not an image manifest (mediaType {manifest_media_type}, schemaVersion {})",
                manifest.schema_version
            )));
        }
        let config_digest = manifest.config.digest.clone();
        let config_bytes = content.read_capped(&config_digest, MAX_CONFIG_BYTES)?;
        let config: ConfigSubset =
            serde_json::from_slice(&config_bytes).map_err(|e| StoreError::BadConfig {
                digest: config_digest.clone(),
                reason: e.to_string(),
            })?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(bad_manifest(format!(
                "{} layers but its config {config_digest} lists {} diff_ids",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let chain = imagespec::chain_ids(&config.rootfs.diff_ids);
        let layers: Vec<LayerRecord> = manifest
            .layers
            .iter()
            .zip(config.rootfs.diff_ids.iter().zip(chain))
            .map(|(d, (diff_id, chain_id))| LayerRecord {
                digest: d.digest.clone(),
                size: d.size,
                media_type: d.media_type.clone(),
                diff_id: diff_id.clone(),
                chain_id,
            })
            .collect();
        Ok(ImageRecord {
            id: config_digest,
            manifest_digest: manifest_digest.clone(),
            manifest_media_type,
            index_digest: None,
            config_media_type: manifest.config.media_type.clone(),
            repo_tags,
            repo_digests,
            created: config.created.clone(),
            platform: config.platform(),
            compressed_size: layers.iter().map(|l| l.size).sum(),
            layers,
            unpacked_size: None,
        })
    }

    /// The size Docker shows: unpacked if known, else the compressed sum.
    pub fn size(&self) -> u64 {
        self.unpacked_size.unwrap_or(self.compressed_size)
    }

    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    pub fn chain_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.chain_id.clone()).collect()
    }

    /// The chain id of the top layer: the snapshot a container of this image starts from.
    pub fn top_chain_id(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.chain_id)
    }

    /// Every blob this image needs: manifest, config, layers (and its index, if any).
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        [&self.manifest_digest, &self.id]
            .into_iter()
            .chain(self.index_digest.iter())
            .chain(self.layers.iter().map(|l| &l.digest))
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        self.repo_tags.iter().chain(self.repo_digests.iter())
    }
}

/// What [`ImageStore::untag`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untagged {
    pub id: Digest,
    /// No names are left: the caller may remove the image (as `docker rmi <tag>` does).
    pub now_unnamed: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed_blobs: Vec<Digest>,
    pub freed_bytes: u64,
    /// Chain ids of the remaining images' layers (and every prefix of them): snapshots not
    /// in this set may be removed.
    pub referenced_chain_ids: BTreeSet<Digest>,
}

#[derive(Default, Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    /// Keyed by id hex; a BTreeMap keeps the file stable and diffable.
    images: BTreeMap<String, ImageRecord>,
}

const INDEX_VERSION: u32 = 1;

/// Handle to the image index under `<root>/images`. Cheap to clone; state is on disk.
#[derive(Clone, Debug)]
pub struct ImageStore {
    index: PathBuf,
    lock: PathBuf,
}

impl IndexFile {
    fn resolve(&self, reference: &str) -> Result<&ImageRecord, StoreError> {
        if let Some(r) = self
            .images
            .values()
            .find(|r| r.names().any(|n| n == reference))
        {
            return Ok(r);
        }
        // An id: `sha256:<hex>`, or a bare hex prefix of at least 4 characters.
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        let is_hex = hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if is_hex && (4..=64).contains(&hex.len()) {
            let mut matches = self
                .images
                .range(hex.to_string()..)
                .take_while(|(k, _)| k.starts_with(hex));
            if let Some((_, first)) = matches.next() {
                let rest = matches.count();
                if rest == 0 {
                    return Ok(first);
                }
                return Err(StoreError::Ambiguous {
                    prefix: reference.to_string(),
                    count: rest + 1,
                });
            }
        }
        Err(StoreError::NotFound(reference.to_string()))
    }

    /// Removes `name` from every image but `keep` (a tag names one image at a time).
    fn take_name(&mut self, name: &str, keep: &Digest) {
        for r in self.images.values_mut().filter(|r| &r.id != keep) {
            r.repo_tags.retain(|t| t != name);
            r.repo_digests.retain(|t| t != name);
        }
    }
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_string());
    }
}

impl ImageStore {
    pub fn open(root: &Path) -> Result<ImageStore, StoreError> {
        let dir = root.join("images");
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        Ok(ImageStore {
            index: dir.join("images.json"),
            lock: dir.join("lock"),
        })
    }

    fn load(&self) -> Result<IndexFile, StoreError> {
        let bytes = match fs::read(&self.index) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(IndexFile::default()),
            Err(e) => return Err(io_err("read", &self.index)(e)),
        };
        let file: IndexFile =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                path: self.index.clone(),
                source,
            })?;
        if file.version > INDEX_VERSION {
            return Err(StoreError::Io {
                op: "read",
                path: self.index.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("written by a newer berth (format {})", file.version),
                ),
            });
        }
        Ok(file)
    }

    fn save(&self, file: &IndexFile) -> Result<(), StoreError> {
        let mut bytes = serde_json::to_vec_pretty(file).map_err(|e| StoreError::Io {
            op: "serialize",
            path: self.index.clone(),
            source: io::Error::other(e),
        })?;
        bytes.push(b'\n');
        // 0600: the mode the file always had (tempfile's default).
        fsutil::write_atomic(&self.index, &bytes, 0o600).map_err(|e| StoreError::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        })
    }

    /// Runs a read-modify-write under the store lock; saves if `f` says it changed things.
    fn update<T>(
        &self,
        f: impl FnOnce(&mut IndexFile) -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = self.lock()?;
        let mut file = self.load()?;
        let (out, changed) = f(&mut file)?;
        if changed {
            file.version = INDEX_VERSION;
            self.save(&file)?;
        }
        Ok(out)
    }

    fn lock(&self) -> Result<File, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.lock)
            .map_err(io_err("open lock file", &self.lock))?;
        loop {
            match flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(file),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_err("lock", &self.lock)(e.into())),
            }
        }
    }

    /// Adds or updates an image. Its tags move to it from any other image (like `docker
    /// tag`/`pull`); an existing record with the same id keeps its other names, and the new
    /// manifest and layers replace the old (the latest source wins). Returns what is stored.
    pub fn put(&self, record: ImageRecord) -> Result<ImageRecord, StoreError> {
        self.update(|file| {
            for name in record.names() {
                file.take_name(name, &record.id);
            }
            let stored = match file.images.remove(record.id.hex()) {
                None => record,
                Some(old) => {
                    let mut merged = record;
                    let mut tags = old.repo_tags;
                    let mut digests = old.repo_digests;
                    merged
                        .repo_tags
                        .iter()
                        .for_each(|t| push_unique(&mut tags, t));
                    merged
                        .repo_digests
                        .iter()
                        .for_each(|t| push_unique(&mut digests, t));
                    merged.repo_tags = tags;
                    merged.repo_digests = digests;
                    if merged.unpacked_size.is_none() && merged.layers == old.layers {
                        merged.unpacked_size = old.unpacked_size;
                    }
                    merged
                }
            };
            file.images
                .insert(stored.id.hex().to_string(), stored.clone());
            Ok((stored, true))
        })
    }

    /// Records the unpacked size once the layers are unpacked.
    pub fn set_unpacked_size(&self, id: &Digest, size: u64) -> Result<(), StoreError> {
        self.update(|file| match file.images.get_mut(id.hex()) {
            Some(r) => {
                r.unpacked_size = Some(size);
                Ok(((), true))
            }
            None => Err(StoreError::NotFound(id.to_string())),
        })
    }

    pub fn get(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        Ok(self.load()?.images.remove(id.hex()))
    }

    /// Finds an image by normalized tag (`docker.io/library/busybox:latest`), repo digest
    /// (`…@sha256:…`), id (`sha256:<hex>`) or unique id prefix (≥ 4 hex digits, with or
    /// without `sha256:`). Names win over id prefixes, as in Docker. Callers holding a
    /// short user string should try it as an id before normalizing it into a name.
    pub fn get_by_ref(&self, reference: &str) -> Result<ImageRecord, StoreError> {
        self.load()?.resolve(reference).cloned()
    }

    /// All images, oldest id first (sorted by id; the CLI sorts for display).
    pub fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(self.load()?.images.into_values().collect())
    }

    /// Gives the image `reference` resolves to the extra name `new_name` (moved from any
    /// other image). Returns the image id.
    pub fn tag(&self, reference: &str, new_name: &str) -> Result<Digest, StoreError> {
        self.update(|file| {
            let id = file.resolve(reference)?.id.clone();
            file.take_name(new_name, &id);
            let changed = match file.images.get_mut(id.hex()) {
                Some(r) if !r.repo_tags.iter().any(|t| t == new_name) => {
                    r.repo_tags.push(new_name.to_string());
                    true
                }
                _ => false,
            };
            Ok((id, changed))
        })
    }

    /// Removes one name (tag or repo digest) from its image; the image itself stays.
    pub fn untag(&self, name: &str) -> Result<Untagged, StoreError> {
        self.update(|file| {
            let r = file
                .images
                .values_mut()
                .find(|r| r.names().any(|n| n == name))
                .ok_or_else(|| StoreError::NotFound(name.to_string()))?;
            r.repo_tags.retain(|t| t != name);
            r.repo_digests.retain(|t| t != name);
            let out = Untagged {
                id: r.id.clone(),
                now_unnamed: r.repo_tags.is_empty() && r.repo_digests.is_empty(),
            };
            Ok((out, true))
        })
    }

    /// Deletes an image record (blobs and snapshots stay until [`gc`](Self::gc)).
    pub fn remove(&self, id: &Digest) -> Result<ImageRecord, StoreError> {
        self.update(|file| match file.images.remove(id.hex()) {
            Some(r) => Ok((r, true)),
            None => Err(StoreError::NotFound(id.to_string())),
        })
    }

    /// Chain ids used by any image: the snapshots that must be kept.
    pub fn referenced_chain_ids(&self) -> Result<BTreeSet<Digest>, StoreError> {
        Ok(self
            .load()?
            .images
            .values()
            .flat_map(|r| r.chain_ids())
            .collect())
    }

    /// Deletes every blob no image references. Blobs written but not yet recorded (a pull
    /// or load in progress) would be deleted too: the daemon must not run this concurrently
    /// with pulls, or use [`gc_with_grace`](Self::gc_with_grace).
    pub fn gc(&self, content: &ContentStore) -> Result<GcReport, StoreError> {
        self.gc_with_grace(content, Duration::ZERO)
    }

    /// Like [`gc`](Self::gc), but keeps unreferenced blobs modified less than `grace` ago.
    pub fn gc_with_grace(
        &self,
        content: &ContentStore,
        grace: Duration,
    ) -> Result<GcReport, StoreError> {
        // Held throughout so no image is recorded between computing reachability and deleting.
        let _lock = self.lock()?;
        let file = self.load()?;
        let reachable: BTreeSet<&Digest> = file.images.values().flat_map(|r| r.blobs()).collect();
        let now = SystemTime::now();
        let mut report = GcReport {
            referenced_chain_ids: file.images.values().flat_map(|r| r.chain_ids()).collect(),
            ..GcReport::default()
        };
        for digest in content.list()? {
            if reachable.contains(&digest) {
                continue;
            }
            let path = content.path(&digest);
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if !grace.is_zero() && age < grace {
                continue;
            }
            if content.delete(&digest)? {
                report.freed_bytes += meta.len();
                report.removed_blobs.push(digest);
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::image::imagespec::Descriptor;

    struct Env {
        _dir: tempfile::TempDir,
        content: ContentStore,
        images: ImageStore,
    }

    fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        Env {
            content: ContentStore::open(dir.path()).unwrap(),
            images: ImageStore::open(dir.path()).unwrap(),
            _dir: dir,
        }
    }

    /// A tiny image whose layers are stored uncompressed (diff_id = blob digest).
    fn image(content: &ContentStore, layers: &[&[u8]], tag: &str) -> ImageRecord {
        let digests: Vec<Digest> = layers
            .iter()
            .map(|l| content.write_blob(l).unwrap())
            .collect();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "rootfs": {"type": "layers", "diff_ids": digests},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = content.write_blob(&config).unwrap();
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor::new(media::OCI_CONFIG, config_digest, config.len() as u64),
            layers: digests
                .iter()
                .zip(layers)
                .map(|(d, l)| Descriptor::new(media::OCI_LAYER, d.clone(), l.len() as u64))
                .collect(),
            annotations: Default::default(),
        };
        let m = content
            .write_blob(&serde_json::to_vec(&manifest).unwrap())
            .unwrap();
        ImageRecord::from_content(content, &m, vec![tag.to_string()], vec![]).unwrap()
    }

    #[test]
    fn record_from_content_fills_layers_and_chain_ids() {
        let e = env();
        let r = image(&e.content, &[b"one", b"two"], "docker.io/library/a:1");
        assert_eq!(r.layers.len(), 2);
        assert_eq!(r.layers[0].diff_id, Digest::of(b"one"));
        assert_eq!(r.layers[0].chain_id, Digest::of(b"one"));
        assert_eq!(
            r.layers[1].chain_id,
            imagespec::chain_ids(&[Digest::of(b"one"), Digest::of(b"two")])[1]
        );
        assert_eq!(r.compressed_size, 6);
        assert_eq!(r.platform.architecture, "amd64");
        assert_eq!(r.created.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(r.size(), 6);
    }

    #[test]
    fn lookups_by_tag_digest_id_and_prefix() {
        let e = env();
        let mut r = image(&e.content, &[b"x"], "docker.io/library/a:1");
        r.repo_digests = vec![format!("docker.io/library/a@{}", r.manifest_digest)];
        let r = e.images.put(r).unwrap();
        let by = |s: &str| e.images.get_by_ref(s).map(|x| x.id);
        assert_eq!(by("docker.io/library/a:1").unwrap(), r.id);
        assert_eq!(by(&r.repo_digests[0]).unwrap(), r.id);
        assert_eq!(by(&r.id.to_string()).unwrap(), r.id);
        assert_eq!(by(r.id.short()).unwrap(), r.id);
        assert_eq!(by(&r.id.hex()[..4]).unwrap(), r.id);
        assert!(matches!(by(&r.id.hex()[..3]), Err(StoreError::NotFound(_))));
        assert!(matches!(
            by("docker.io/library/b:1"),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(e.images.list().unwrap().len(), 1);
        assert_eq!(e.images.get(&r.id).unwrap().unwrap(), r);
    }

    #[test]
    fn ambiguous_prefix_is_an_error() {
        let e = env();
        e.images.put(image(&e.content, &[b"1"], "t:1")).unwrap();
        e.images.put(image(&e.content, &[b"2"], "t:2")).unwrap();
        let mut file = e.images.load().unwrap();
        let keys: Vec<String> = file.images.keys().cloned().collect();
        // Force two ids with a common 4-digit prefix by renaming one key.
        let mut r = file.images.remove(&keys[0]).unwrap();
        let fake = format!("{}{}", &keys[1][..4], &keys[0][4..]);
        r.id = Digest::from_hex(&fake).unwrap();
        file.images.insert(fake, r);
        e.images.save(&file).unwrap();
        assert!(matches!(
            e.images.get_by_ref(&keys[1][..4]),
            Err(StoreError::Ambiguous { count: 2, .. })
        ));
        assert!(e.images.get_by_ref(&keys[1][..12]).is_ok());
    }

    #[test]
    fn tags_move_between_images_and_untag_reports_unnamed() {
        let e = env();
        let a = e
            .images
            .put(image(&e.content, &[b"a"], "docker.io/library/x:latest"))
            .unwrap();
        e.images
            .tag(&a.id.to_string(), "docker.io/library/x:old")
            .unwrap();
        let b = e
            .images
            .put(image(&e.content, &[b"b"], "docker.io/library/x:latest"))
            .unwrap();
        assert_eq!(
            e.images
                .get_by_ref("docker.io/library/x:latest")
                .unwrap()
                .id,
            b.id
        );
        let a_now = e.images.get(&a.id).unwrap().unwrap();
        assert_eq!(a_now.repo_tags, vec!["docker.io/library/x:old".to_string()]);
        let u = e.images.untag("docker.io/library/x:old").unwrap();
        assert_eq!(
            u,
            Untagged {
                id: a.id.clone(),
                now_unnamed: true
            }
        );
        assert!(matches!(
            e.images.untag("docker.io/library/x:old"),
            Err(StoreError::NotFound(_))
        ));
        // Re-putting the same image merges names.
        let mut again = image(&e.content, &[b"b"], "docker.io/library/y:1");
        again.unpacked_size = None;
        e.images.set_unpacked_size(&b.id, 1234).unwrap();
        let merged = e.images.put(again).unwrap();
        assert_eq!(
            merged.repo_tags,
            vec![
                "docker.io/library/x:latest".to_string(),
                "docker.io/library/y:1".to_string()
            ]
        );
        assert_eq!(merged.unpacked_size, Some(1234));
        e.images.remove(&a.id).unwrap();
        assert!(matches!(
            e.images.remove(&a.id),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn gc_deletes_only_unreferenced_blobs() {
        let e = env();
        let shared: &[u8] = b"shared layer";
        let a = e
            .images
            .put(image(&e.content, &[shared, b"a"], "a:1"))
            .unwrap();
        let b = e
            .images
            .put(image(&e.content, &[shared, b"b"], "b:1"))
            .unwrap();
        let stray = e.content.write_blob(b"stray").unwrap();
        let r = e.images.gc(&e.content).unwrap();
        assert_eq!(r.removed_blobs, vec![stray.clone()]);
        assert_eq!(r.freed_bytes, 5);
        assert_eq!(r.referenced_chain_ids.len(), 3); // shared + a-top + b-top
        e.images.remove(&a.id).unwrap();
        let r = e.images.gc(&e.content).unwrap();
        // a's manifest, config and own layer go; the shared layer stays for b.
        assert_eq!(r.removed_blobs.len(), 3);
        assert!(e.content.has(&Digest::of(shared)));
        for d in b.blobs() {
            assert!(e.content.has(d), "{d} of b was removed");
        }
        assert_eq!(
            e.images.referenced_chain_ids().unwrap(),
            b.chain_ids().into_iter().collect()
        );
        // A fresh blob survives a gc with a grace period.
        let fresh = e.content.write_blob(b"fresh").unwrap();
        let r = e
            .images
            .gc_with_grace(&e.content, Duration::from_secs(600))
            .unwrap();
        assert!(r.removed_blobs.is_empty());
        assert!(e.content.has(&fresh));
    }

    #[test]
    fn a_corrupt_index_is_reported_with_its_path() {
        let e = env();
        fs::write(&e.images.index, b"{not json").unwrap();
        let err = e.images.list().unwrap_err().to_string();
        assert!(err.contains("images.json"), "{err}");
    }

    #[test]
    fn a_manifest_that_disagrees_with_its_config_is_refused() {
        let e = env();
        let config = e
            .content
            .write_blob(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#)
            .unwrap();
        let layer = e.content.write_blob(b"l").unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor::new(media::OCI_CONFIG, config, 10),
            layers: vec![Descriptor::new(media::OCI_LAYER, layer, 1)],
            annotations: Default::default(),
        };
        let md = e
            .content
            .write_blob(&serde_json::to_vec(&m).unwrap())
            .unwrap();
        let err = ImageRecord::from_content(&e.content, &md, vec![], vec![]).unwrap_err();
        assert!(err.to_string().contains("1 layers but its config"), "{err}");
        let idx = e
            .content
            .write_blob(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#)
            .unwrap();
        assert!(ImageRecord::from_content(&e.content, &idx, vec![], vec![]).is_err());
    }
}
