//! The image service: the engine API for images (pull, push, load, save, tag, remove, list).
//! It ties the registry client, the content store, the snapshotter and the image index
//! together; each of those stays ignorant of the others. Until the daemon exists (issue 4)
//! the CLI calls this in-process; the stores' file locks make concurrent processes safe.

use std::collections::BTreeSet;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::archive::{self, ArchiveError};
use super::content::{ContentError, ContentStore, Ingest};
use super::digest::Digest;
use super::imagespec::{Descriptor, Platform};
use super::reference::{Reference, ReferenceError};
use super::registry::{
    BlobBody, BlobFetch, PushOutcome, RegistryClient, RegistryConfig, RegistryError, SyncSink,
};
use super::snapshot::{SnapshotError, Snapshotter};
use super::store::{ImageRecord, ImageStore, StoreError};

/// Layers downloaded at once per pull (Docker's default `max-concurrent-downloads` is 3).
const CONCURRENT_DOWNLOADS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("pulling {reference}: {message}")]
    Pull { reference: String, message: String },
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    Corrupt(String),
}

/// What a pull reports as it goes, per layer like `docker pull` (layer ids are the first 12
/// hex digits of the blob digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// The manifest is known; these layers (id, compressed size) will be fetched.
    Resolved {
        manifest: Digest,
        layers: Vec<(String, u64)>,
    },
    AlreadyExists(String),
    Downloading {
        id: String,
        current: u64,
        total: u64,
    },
    Verifying(String),
    DownloadComplete(String),
    Extracting(String),
    PullComplete(String),
    /// Push: the registry now has this layer.
    Pushed(String),
}

/// Receives pull progress; called from several tasks at once.
pub trait PullProgress: Send + Sync {
    fn event(&self, image: &str, event: PullEvent);
}

/// Discards progress.
pub struct Quiet;

impl PullProgress for Quiet {
    fn event(&self, _: &str, _: PullEvent) {}
}

/// The outcome of a pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub record: ImageRecord,
    /// The digest users pin with `@sha256:` (the index's if the tag named one).
    pub digest: Digest,
    /// False when the image was already present with this manifest.
    pub downloaded: bool,
}

/// What `remove` did, in Docker's words.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    pub untagged: Vec<String>,
    pub deleted: Vec<Digest>,
}

#[derive(Clone)]
pub struct ImageService {
    root: PathBuf,
    content: ContentStore,
    snapshots: Arc<Snapshotter>,
    images: ImageStore,
    registry: Arc<RegistryClient>,
}

impl ImageService {
    /// Opens (creating if needed) the image state under `root` (`/var/lib/berth`).
    pub fn open(root: &Path, registry: RegistryConfig) -> Result<ImageService, ImageError> {
        Ok(ImageService {
            root: root.to_path_buf(),
            content: ContentStore::open(root)?,
            snapshots: Arc::new(Snapshotter::open(root)?),
            images: ImageStore::open(root)?,
            registry: Arc::new(RegistryClient::new(registry)?),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn snapshots(&self) -> &Snapshotter {
        &self.snapshots
    }

    pub fn registry(&self) -> &RegistryClient {
        &self.registry
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self.images.list()?)
    }

    /// An image by name (`busybox`, `busybox:1`, `host:5000/x@sha256:…`) or id (prefix).
    pub fn get(&self, name_or_id: &str) -> Result<ImageRecord, ImageError> {
        let key = match Reference::parse(name_or_id) {
            Ok(r) => r.to_string(),
            Err(_) => name_or_id.to_string(),
        };
        match self.images.get_by_ref(&key) {
            Ok(r) => Ok(r),
            // A short id also parses as a name (`abc123` → docker.io/library/abc123:latest).
            Err(_) if key != name_or_id => Ok(self.images.get_by_ref(name_or_id)?),
            Err(e) => Err(e.into()),
        }
    }

    /// The image's config document (Docker/OCI image config JSON: `config.Env`, `config.Cmd`,
    /// `rootfs`, `history`, ...), as stored.
    pub fn config_json(&self, record: &ImageRecord) -> Result<serde_json::Value, ImageError> {
        let raw = self
            .content
            .read_capped(&record.id, super::imagespec::MAX_CONFIG_BYTES)?;
        serde_json::from_slice(&raw)
            .map_err(|e| ImageError::Corrupt(format!("image config {}: not JSON: {e}", record.id)))
    }

    /// Snapshot `diff` directories of the image's layers, top-most first (overlay lowerdir
    /// order).
    pub fn lower_dirs(&self, record: &ImageRecord) -> Vec<PathBuf> {
        record
            .layers
            .iter()
            .rev()
            .map(|l| self.snapshots.diff_path(&l.chain_id))
            .collect()
    }

    /// Pulls `reference` for `platform`: manifest and config first, then the layers in
    /// parallel (bounded), each unpacked into its snapshot as soon as it is verified.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: &Platform,
        progress: &dyn PullProgress,
    ) -> Result<Pulled, ImageError> {
        let name = reference.familiar();
        let resolved = self.registry.resolve(reference, platform).await?;
        let pin = resolved
            .index_digest
            .clone()
            .unwrap_or_else(|| resolved.manifest_digest.clone());
        let repo_digest = format!("{}@{}", reference.repository(), pin);
        let tags: Vec<String> = if reference.tag.is_some() {
            let mut plain = reference.clone();
            plain.digest = None;
            vec![plain.to_string()]
        } else {
            Vec::new()
        };

        // Already complete locally with this manifest: only the names may change.
        if let Ok(existing) = self.images.get_by_ref(&repo_digest) {
            if existing.manifest_digest == resolved.manifest_digest && self.is_complete(&existing) {
                let mut record = existing;
                merge_names(&mut record, tags, vec![repo_digest]);
                let record = self.images.put(record)?;
                return Ok(Pulled {
                    record,
                    digest: pin,
                    downloaded: false,
                });
            }
        }

        progress.event(
            &name,
            PullEvent::Resolved {
                manifest: resolved.manifest_digest.clone(),
                layers: resolved
                    .layers
                    .iter()
                    .map(|l| (l.digest.short().to_string(), l.size))
                    .collect(),
            },
        );
        let stored = self.content.write_blob(&resolved.manifest_bytes)?;
        if stored != resolved.manifest_digest {
            return Err(ImageError::Pull {
                reference: reference.to_string(),
                message: format!(
                    "manifest bytes hash to {stored}, not {}",
                    resolved.manifest_digest
                ),
            });
        }
        if !self.content.has(&resolved.config.digest) {
            let config = self
                .registry
                .fetch_blob_verified(
                    reference,
                    &resolved.config,
                    super::imagespec::MAX_CONFIG_BYTES,
                )
                .await?;
            self.content.write_blob(&config)?;
        }
        let mut record = ImageRecord::from_content(
            &self.content,
            &resolved.manifest_digest,
            tags,
            vec![repo_digest],
        )?;
        record.index_digest = resolved.index_digest.clone();

        let limit = Arc::new(Semaphore::new(CONCURRENT_DOWNLOADS));
        let mut parent: Option<Digest> = None;
        let mut jobs = Vec::with_capacity(record.layers.len());
        for (layer, desc) in record.layers.iter().zip(&resolved.layers) {
            jobs.push(self.fetch_and_unpack(
                reference,
                &name,
                desc,
                parent.clone(),
                layer.diff_id.clone(),
                Arc::clone(&limit),
                progress,
            ));
            parent = Some(layer.chain_id.clone());
        }
        let sizes = futures_util::future::try_join_all(jobs).await?;
        record.unpacked_size = Some(sizes.iter().sum());
        let record = self.images.put(record)?;
        Ok(Pulled {
            record,
            digest: pin,
            downloaded: true,
        })
    }

    /// One layer: download into the content store (resuming a partial), then unpack.
    /// Returns the layer's unpacked size.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_and_unpack(
        &self,
        reference: &Reference,
        name: &str,
        desc: &Descriptor,
        parent: Option<Digest>,
        diff_id: Digest,
        limit: Arc<Semaphore>,
        progress: &dyn PullProgress,
    ) -> Result<u64, ImageError> {
        let id = desc.digest.short().to_string();
        let chain_id = super::snapshot::chain_id(parent.as_ref(), &diff_id);
        if self.snapshots.exists(&chain_id) && self.content.has(&desc.digest) {
            progress.event(name, PullEvent::AlreadyExists(id));
            return Ok(self.snapshots.meta(&chain_id).map(|m| m.size).unwrap_or(0));
        }
        {
            let _permit = limit.acquire().await.map_err(|e| ImageError::Pull {
                reference: reference.to_string(),
                message: e.to_string(),
            })?;
            self.download(reference, name, desc, progress).await?;
        }
        progress.event(name, PullEvent::Extracting(id.clone()));
        let (content, snapshots) = (self.content.clone(), Arc::clone(&self.snapshots));
        let blob = desc.digest.clone();
        let size = tokio::task::spawn_blocking(move || {
            unpack_blob(&content, &snapshots, parent.as_ref(), &diff_id, &blob)
        })
        .await
        .map_err(|e| ImageError::Pull {
            reference: reference.to_string(),
            message: format!("unpack task failed: {e}"),
        })??;
        progress.event(name, PullEvent::PullComplete(id));
        Ok(size)
    }

    /// Streams one blob into the content store, verified; waits if another pull (thread or
    /// process) is already fetching the same blob, and resumes a partial left by a killed one.
    async fn download(
        &self,
        reference: &Reference,
        name: &str,
        desc: &Descriptor,
        progress: &dyn PullProgress,
    ) -> Result<(), ImageError> {
        let id = desc.digest.short().to_string();
        let mut writer = match self
            .content
            .ingest_async(&desc.digest, Some(desc.size))
            .await?
        {
            Ingest::AlreadyPresent(_) => {
                progress.event(name, PullEvent::DownloadComplete(id));
                return Ok(());
            }
            Ingest::Writer(w) => w,
        };
        let mut offset = writer.offset();
        loop {
            let total = desc.size;
            let start = offset;
            let mut sink = SyncSink(&mut *writer);
            let outcome = self
                .registry
                .fetch_blob(reference, desc, offset, &mut sink, |n| {
                    progress.event(
                        name,
                        PullEvent::Downloading {
                            id: id.clone(),
                            current: start + n,
                            total,
                        },
                    )
                })
                .await?;
            match outcome {
                BlobFetch::Complete { .. } => break,
                BlobFetch::RestartFromZero => {
                    writer.restart()?;
                    offset = 0;
                }
            }
        }
        progress.event(name, PullEvent::Verifying(id.clone()));
        tokio::task::block_in_place(|| writer.commit())?;
        progress.event(name, PullEvent::DownloadComplete(id));
        Ok(())
    }

    /// Every blob and snapshot the image needs is present.
    fn is_complete(&self, record: &ImageRecord) -> bool {
        self.content.has(&record.manifest_digest)
            && self.content.has(&record.id)
            && record
                .layers
                .iter()
                .all(|l| self.content.has(&l.digest) && self.snapshots.exists(&l.chain_id))
    }

    /// Imports a `docker save` or OCI layout archive; returns the images with their names.
    pub fn load(&self, input: impl Read) -> Result<Vec<ImageRecord>, ImageError> {
        let loaded = archive::load(input, &self.content)?;
        let mut out = Vec::with_capacity(loaded.len());
        for image in loaded {
            let tags = image
                .repo_tags
                .iter()
                .map(|t| Reference::parse(t).map(|r| r.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            let mut record =
                ImageRecord::from_content(&self.content, &image.manifest_digest, tags, Vec::new())?;
            let mut total = 0;
            let mut parent: Option<&Digest> = None;
            for layer in &record.layers {
                total += unpack_blob(
                    &self.content,
                    &self.snapshots,
                    parent,
                    &layer.diff_id,
                    &layer.digest,
                )?;
                parent = Some(&layer.chain_id);
            }
            record.unpacked_size = Some(total);
            out.push(self.images.put(record)?);
        }
        Ok(out)
    }

    /// Writes the named images as one docker-archive (`docker load` reads it).
    pub fn save<W: Write>(&self, names: &[String], out: W) -> Result<W, ImageError> {
        let mut records = Vec::with_capacity(names.len());
        for n in names {
            let mut r = self.get(n)?;
            // Save under the name asked for when it is a name, all names for an id.
            if let Ok(reference) = Reference::parse(n) {
                if r.repo_tags.contains(&reference.to_string()) {
                    r.repo_tags = vec![reference.to_string()];
                }
            }
            records.push(r);
        }
        Ok(archive::save(out, &self.content, &records)?)
    }

    /// Gives `source` (a name or id) the additional name `target`.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), ImageError> {
        let record = self.get(source)?;
        let target = Reference::parse(target)?;
        if target.digest.is_some() {
            return Err(ImageError::Pull {
                reference: target.to_string(),
                message: "refusing to create a tag with a digest reference".into(),
            });
        }
        self.images
            .tag(&record.id.to_string(), &target.to_string())?;
        Ok(())
    }

    /// Uploads an image to its registry: layers, config, then the manifest under the tag.
    pub async fn push(
        &self,
        reference: &Reference,
        progress: &dyn PullProgress,
    ) -> Result<Digest, ImageError> {
        let record = self.images.get_by_ref(&reference.to_string())?;
        let name = reference.familiar();
        for layer in &record.layers {
            let id = layer.digest.short().to_string();
            let desc = Descriptor::new(&layer.media_type, layer.digest.clone(), layer.size);
            let body = BlobBody::File(self.content.path(&layer.digest));
            match self.registry.push_blob(reference, &desc, body).await? {
                PushOutcome::AlreadyExists => progress.event(&name, PullEvent::AlreadyExists(id)),
                PushOutcome::Uploaded => progress.event(&name, PullEvent::Pushed(id)),
            }
        }
        let config_size = self.content.size(&record.id)?;
        let desc = Descriptor::new(&record.config_media_type, record.id.clone(), config_size);
        self.registry
            .push_blob(
                reference,
                &desc,
                BlobBody::File(self.content.path(&record.id)),
            )
            .await?;
        let manifest = self.content.read_capped(
            &record.manifest_digest,
            super::imagespec::MAX_MANIFEST_BYTES,
        )?;
        let digest = self
            .registry
            .push_manifest(reference, &record.manifest_media_type, &manifest)
            .await?;
        let mut updated = record;
        merge_names(
            &mut updated,
            Vec::new(),
            vec![format!("{}@{digest}", reference.repository())],
        );
        self.images.put(updated)?;
        Ok(digest)
    }

    /// `docker rmi`: untags a name (the image goes when no name is left), or removes an
    /// image by id (`force` also when it has several names). Unreferenced blobs and
    /// snapshots are then collected.
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<Removed, ImageError> {
        let record = self.get(name_or_id)?;
        let mut removed = Removed::default();
        let by_name = Reference::parse(name_or_id)
            .ok()
            .map(|r| r.to_string())
            .filter(|n| record.repo_tags.contains(n) || record.repo_digests.contains(n));
        let tags_left: Vec<&String> = record
            .repo_tags
            .iter()
            .filter(|t| Some(*t) != by_name.as_ref())
            .collect();
        match &by_name {
            // Another tag keeps the image: only this name goes.
            Some(n) if !tags_left.is_empty() => {
                self.images.untag(n)?;
                removed.untagged.push(n.clone());
            }
            // By id, an image with several tags needs force (Docker's rule).
            None if record.repo_tags.len() > 1 && !force => {
                return Err(ImageError::InUse(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    record.id.short()
                )));
            }
            // The last tag (or the id): every name goes, digests included, then the image.
            _ => {
                removed
                    .untagged
                    .extend(record.repo_tags.iter().chain(&record.repo_digests).cloned());
                self.images.remove(&record.id)?;
                removed.deleted.push(record.id.clone());
            }
        }
        self.collect_garbage()?;
        Ok(removed)
    }

    /// Deletes blobs and snapshots no image refers to.
    pub fn collect_garbage(&self) -> Result<(), ImageError> {
        let report = self.images.gc(&self.content)?;
        let keep: BTreeSet<Digest> = report.referenced_chain_ids;
        for chain in self.snapshots.list()? {
            if !keep.contains(&chain) {
                self.snapshots.remove(&chain)?;
            }
        }
        Ok(())
    }
}

/// Unpacks a layer blob from the content store into its snapshot, unless the snapshot is
/// already there; returns the layer's unpacked size.
fn unpack_blob(
    content: &ContentStore,
    snapshots: &Snapshotter,
    parent: Option<&Digest>,
    diff_id: &Digest,
    blob: &Digest,
) -> Result<u64, ImageError> {
    let chain = super::snapshot::chain_id(parent, diff_id);
    if !snapshots.exists(&chain) {
        let file = content.open_blob(blob)?;
        snapshots.unpack_layer(parent, diff_id, BufReader::with_capacity(1 << 20, file))?;
    }
    Ok(snapshots.meta(&chain).map(|m| m.size).unwrap_or(0))
}

fn merge_names(record: &mut ImageRecord, tags: Vec<String>, digests: Vec<String>) {
    for t in tags {
        if !record.repo_tags.contains(&t) {
            record.repo_tags.push(t);
        }
    }
    for d in digests {
        if !record.repo_digests.contains(&d) {
            record.repo_digests.push(d);
        }
    }
}
