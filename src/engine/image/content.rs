//! The content store: immutable blobs addressed by sha256, laid out like containerd's.
//!
//! ```text
//! <root>/content/blobs/sha256/<hex>    verified blobs, never written in place
//! <root>/content/ingest/<hex>          partial download of an expected digest (resumable)
//! <root>/content/ingest/<hex>.lock     flock held by whoever is writing <hex>
//! <root>/content/ingest/.tmp-*         blobs of not-yet-known digest (archive entries)
//! ```
//!
//! A blob only appears under `blobs/` by rename after its size and digest were verified and
//! its data fsynced, so a reader never sees a half-written or unverified blob, and a crash at
//! any point leaves at worst a partial in `ingest/` that the next ingest of the same digest
//! resumes (or discards if it no longer verifies).
//!
//! Async callers (the registry client runs on tokio): [`ContentStore::ingest_async`] does the
//! flock wait and re-hash on a blocking thread, and [`IngestWriter::into_async`] moves the
//! writer onto a blocking thread fed through a bounded channel, so the async side only ever
//! awaits channel sends and never blocks a runtime worker on disk I/O.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{flock, FlockOperation};

use super::digest::{Digest, Hasher};
use super::fsutil;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content store: cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {0} is not in the content store")]
    NotFound(Digest),
    #[error("blob {digest} is {size} bytes, more than the {max}-byte limit for this kind of blob")]
    TooLarge { digest: Digest, size: u64, max: u64 },
    #[error(
        "blob {expected} failed verification: the content hashes to {actual}; the partial data was removed"
    )]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest}: the background writer stopped unexpectedly: {reason}")]
    WriterGone { digest: Digest, reason: String },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContentError {
    let path = path.to_path_buf();
    move |source| ContentError::Io { op, path, source }
}

/// Buffer size for hashing and copying blobs: large enough that syscalls do not dominate.
const COPY_BUF: usize = 256 * 1024;

/// Handle to a content store directory. Cheap to clone (paths only); all state is on disk,
/// so several handles, threads and processes may use one store at once.
#[derive(Clone, Debug)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store under `<root>/content`.
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        let content = root.join("content");
        let blobs = content.join("blobs").join("sha256");
        let ingest = content.join("ingest");
        fs::create_dir_all(&blobs).map_err(io_err("create directory", &blobs))?;
        fs::create_dir_all(&ingest).map_err(io_err("create directory", &ingest))?;
        Ok(ContentStore { blobs, ingest })
    }

    /// Where the blob lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The blob opened for reading (`open` is the store constructor).
    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| self.not_found_or(digest, "open", &path, e))
    }

    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        let path = self.path(digest);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| self.not_found_or(digest, "stat", &path, e))
    }

    /// The whole blob in memory. Prefer [`read_capped`](Self::read_capped) for anything
    /// whose size an archive or registry chose.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        self.read_capped(digest, u64::MAX)
    }

    /// The whole blob, refused if it is larger than `max` bytes (manifests, configs).
    pub fn read_capped(&self, digest: &Digest, max: u64) -> Result<Vec<u8>, ContentError> {
        let path = self.path(digest);
        let file = File::open(&path).map_err(|e| self.not_found_or(digest, "open", &path, e))?;
        let size = file.metadata().map_err(io_err("stat", &path))?.len();
        if size > max {
            return Err(ContentError::TooLarge {
                digest: digest.clone(),
                size,
                max,
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        // take(): the file cannot grow (blobs are immutable), but never trust that for memory.
        file.take(max)
            .read_to_end(&mut out)
            .map_err(io_err("read", &path))?;
        Ok(out)
    }

    /// Stores `bytes`, returning their digest. Atomic and idempotent: an existing blob is
    /// left alone, concurrent writers of the same content serialize on the ingest lock.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, ContentError> {
        let digest = Digest::of(bytes);
        match self.ingest(&digest, Some(bytes.len() as u64))? {
            Ingest::AlreadyPresent(d) => Ok(d),
            Ingest::Writer(mut w) => {
                if w.offset() != 0 {
                    // A partial of these very bytes: start over rather than splice.
                    w.restart()?;
                }
                w.write_all(bytes)
                    .map_err(io_err("write", &w.partial_path.clone()))?;
                w.commit()
            }
        }
    }

    /// Removes a blob. Returns false if it was not there.
    pub fn delete(&self, digest: &Digest) -> Result<bool, ContentError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Every blob in the store, sorted. Files that are not named by a digest are ignored.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_err("list", &self.blobs))? {
            let entry = entry.map_err(io_err("list", &self.blobs))?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Re-hashes a stored blob (fsck). Blobs are verified on the way in; this is for
    /// detecting disk corruption or tampering, not part of normal reads.
    pub fn verify(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.path(digest);
        let file = File::open(&path).map_err(|e| self.not_found_or(digest, "open", &path, e))?;
        let actual = hash_reader(file, &path)?.finish();
        if &actual == digest {
            Ok(())
        } else {
            Err(ContentError::DigestMismatch {
                expected: digest.clone(),
                actual,
            })
        }
    }

    fn not_found_or(
        &self,
        digest: &Digest,
        op: &'static str,
        path: &Path,
        e: io::Error,
    ) -> ContentError {
        if e.kind() == io::ErrorKind::NotFound {
            ContentError::NotFound(digest.clone())
        } else {
            io_err(op, path)(e)
        }
    }
}

fn hash_reader(mut r: impl Read, path: &Path) -> Result<Hasher, ContentError> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(hasher),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read", path)(e)),
        };
        hasher.update(&buf[..n]);
    }
}

fn fsync_dir(dir: &Path) -> Result<(), ContentError> {
    fsutil::fsync_dir(dir).map_err(|e| ContentError::Io {
        op: e.op,
        path: e.path,
        source: e.source,
    })
}

/// What [`ContentStore::ingest`] found.
pub enum Ingest {
    /// The blob is committed already (perhaps by the writer we waited for). Nothing to do.
    AlreadyPresent(Digest),
    /// We hold the exclusive lock for this digest: send the bytes from
    /// [`IngestWriter::offset`] on, then [`IngestWriter::commit`].
    Writer(Box<IngestWriter>),
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ingest::AlreadyPresent(d) => write!(f, "AlreadyPresent({d})"),
            Ingest::Writer(w) => write!(f, "Writer({}, offset {})", w.expected, w.offset),
        }
    }
}

impl ContentStore {
    /// Starts (or resumes) writing the blob `expected`. Blocks while another thread or
    /// process is writing the same digest; when it finishes, this returns `AlreadyPresent`.
    /// With `expected_size`, writes beyond it fail at once and commit checks it.
    pub fn ingest(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Ingest, ContentError> {
        if self.has(expected) {
            return Ok(Ingest::AlreadyPresent(expected.clone()));
        }
        let lock_path = self.ingest.join(format!("{}.lock", expected.hex()));
        let lock = match lock_file(&lock_path, FlockOperation::LockExclusive)? {
            Some(lock) => lock,
            None => return Err(not_locked(&lock_path)),
        };
        if self.has(expected) {
            let _ = fs::remove_file(&lock_path);
            return Ok(Ingest::AlreadyPresent(expected.clone()));
        }
        let partial_path = self.ingest.join(expected.hex());
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&partial_path)
            .map_err(io_err("open partial", &partial_path))?;
        // Resume: the hash must cover the bytes already on disk.
        let mut hasher = hash_reader(&mut file, &partial_path)?;
        let stale = match expected_size {
            Some(size) if hasher.len() > size => true,
            // Complete but wrong (e.g. a crash lost unsynced data): start over, not fail.
            Some(size) if hasher.len() == size => hasher.clone().finish() != *expected,
            _ => false,
        };
        if stale {
            file.set_len(0).map_err(io_err("truncate", &partial_path))?;
            hasher = Hasher::new();
        }
        Ok(Ingest::Writer(Box::new(IngestWriter {
            expected: expected.clone(),
            expected_size,
            offset: hasher.len(),
            hasher,
            file,
            partial_path,
            lock_path,
            blob_path: self.path(expected),
            blobs_dir: self.blobs.clone(),
            _lock: lock,
            done: false,
        })))
    }

    /// [`ingest`](Self::ingest) on a blocking thread: the flock wait and the re-hash of a
    /// partial must not stall a tokio worker.
    pub async fn ingest_async(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Ingest, ContentError> {
        let store = self.clone();
        let digest = expected.clone();
        tokio::task::spawn_blocking(move || store.ingest(&digest, expected_size))
            .await
            .map_err(|e| ContentError::WriterGone {
                digest: expected.clone(),
                reason: e.to_string(),
            })?
    }

    /// A writer for a blob whose digest is known only once it is written (archive entries).
    /// Its temporary file is removed if the writer is dropped without commit.
    pub fn writer(&self) -> Result<BlobWriter, ContentError> {
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.ingest)
            .map_err(io_err("create temporary file in", &self.ingest))?;
        Ok(BlobWriter {
            tmp,
            hasher: Hasher::new(),
            store: self.clone(),
        })
    }

    /// Removes ingest leftovers older than `max_age`: partials nobody holds the lock of and
    /// temporary files of dead writers. Returns how many files were removed.
    pub fn prune_ingest(&self, max_age: Duration) -> Result<usize, ContentError> {
        let now = SystemTime::now();
        let old = |path: &Path| {
            fs::metadata(path)
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() >= max_age)
                .unwrap_or(false)
        };
        let mut removed = 0;
        for entry in fs::read_dir(&self.ingest).map_err(io_err("list", &self.ingest))? {
            let entry = entry.map_err(io_err("list", &self.ingest))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if name.starts_with(".tmp-") {
                if old(&path) && fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            } else if Digest::from_hex(name).is_ok() && old(&path) {
                let lock_path = self.ingest.join(format!("{name}.lock"));
                // Held means a writer is alive: leave its partial alone.
                if let Some(_lock) =
                    lock_file(&lock_path, FlockOperation::NonBlockingLockExclusive)?
                {
                    if fs::remove_file(&path).is_ok() {
                        removed += 1;
                    }
                    let _ = fs::remove_file(&lock_path);
                }
            }
        }
        Ok(removed)
    }
}

fn not_locked(path: &Path) -> ContentError {
    io_err("lock", path)(io::Error::new(
        io::ErrorKind::WouldBlock,
        "a blocking flock returned without the lock",
    ))
}

/// Opens `path` and flocks it. `None` if a non-blocking attempt found it held.
///
/// Lock files are unlinked by their holder when done, so a waiter may end up holding a lock
/// on an unlinked inode while a newcomer locks a fresh file at the same path. Re-checking
/// that the path still names our inode after locking closes that race.
fn lock_file(path: &Path, op: FlockOperation) -> Result<Option<File>, ContentError> {
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err("open lock file", path))?;
        loop {
            match flock(&file, op) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(io_err("lock", path)(e.into())),
            }
        }
        let ours = file.metadata().map_err(io_err("stat", path))?;
        match fs::metadata(path) {
            Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => return Ok(Some(file)),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("stat", path)(e)),
        }
    }
}

/// Exclusive writer of one expected blob. Dropping it without commit keeps the partial for
/// a later resume and releases the lock.
pub struct IngestWriter {
    expected: Digest,
    expected_size: Option<u64>,
    offset: u64,
    hasher: Hasher,
    file: File,
    partial_path: PathBuf,
    lock_path: PathBuf,
    blob_path: PathBuf,
    blobs_dir: PathBuf,
    _lock: File,
    done: bool,
}

impl IngestWriter {
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// Bytes already present when the ingest started: ask the server for `Range: bytes=N-`.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes in the partial now (offset plus what was written since).
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Drops the partial data and starts from byte 0 (a server that ignored the Range).
    pub fn restart(&mut self) -> Result<(), ContentError> {
        self.file
            .set_len(0)
            .map_err(io_err("truncate", &self.partial_path))?;
        self.hasher = Hasher::new();
        self.offset = 0;
        Ok(())
    }

    /// Verifies size and digest, makes the data durable and publishes the blob.
    /// A short blob keeps its partial (resumable); wrong content removes it.
    pub fn commit(mut self) -> Result<Digest, ContentError> {
        let actual_size = self.hasher.len();
        if let Some(expected) = self.expected_size {
            if actual_size != expected {
                if actual_size > expected {
                    self.discard();
                }
                return Err(ContentError::SizeMismatch {
                    digest: self.expected.clone(),
                    expected,
                    actual: actual_size,
                });
            }
        }
        let actual = std::mem::take(&mut self.hasher).finish();
        if actual != self.expected {
            self.discard();
            return Err(ContentError::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            });
        }
        self.file
            .sync_all()
            .map_err(io_err("fsync", &self.partial_path))?;
        fs::rename(&self.partial_path, &self.blob_path)
            .map_err(io_err("rename into blobs", &self.partial_path))?;
        self.done = true;
        fsync_dir(&self.blobs_dir)?;
        let _ = fs::remove_file(&self.lock_path);
        Ok(self.expected.clone())
    }

    /// Gives up: removes the partial and releases the lock.
    pub fn abort(mut self) -> Result<(), ContentError> {
        self.done = true;
        let r = fs::remove_file(&self.partial_path);
        let _ = fs::remove_file(&self.lock_path);
        match r {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_err("remove partial", &self.partial_path)(e))
            }
            _ => Ok(()),
        }
    }

    fn discard(&mut self) {
        self.done = true;
        let _ = fs::remove_file(&self.partial_path);
        let _ = fs::remove_file(&self.lock_path);
    }
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(size) = self.expected_size {
            if self.hasher.len() + buf.len() as u64 > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} is larger than its expected {size} bytes",
                        self.expected
                    ),
                ));
            }
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for IngestWriter {
    fn drop(&mut self) {
        if !self.done {
            // Keep the partial for resume; the lock file goes (we still hold it, see lock_file).
            let _ = fs::remove_file(&self.lock_path);
        }
    }
}

/// Writer of a blob whose digest is computed as it is written.
pub struct BlobWriter {
    tmp: tempfile::NamedTempFile,
    hasher: Hasher,
    store: ContentStore,
}

impl BlobWriter {
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        self.hasher.clone().finish()
    }

    /// Publishes the blob under its digest (a no-op if the store has it already).
    pub fn commit(self) -> Result<Digest, ContentError> {
        let digest = self.hasher.finish();
        let blob_path = self.store.path(&digest);
        if blob_path.is_file() {
            return Ok(digest); // the temporary file is removed on drop
        }
        let tmp_path = self.tmp.path().to_path_buf();
        self.tmp
            .as_file()
            .sync_all()
            .map_err(io_err("fsync", &tmp_path))?;
        self.tmp
            .persist(&blob_path)
            .map_err(|e| io_err("rename into blobs", &tmp_path)(e.error))?;
        fsync_dir(&self.store.blobs)?;
        Ok(digest)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.as_file_mut().write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum AsyncCmd {
    Data(bytes::Bytes),
    Commit,
    Abort,
}

/// An [`IngestWriter`] running on a blocking thread, fed by a bounded channel. Dropping it
/// keeps the partial (resumable), like dropping the sync writer.
pub struct AsyncIngestWriter {
    digest: Digest,
    offset: u64,
    tx: Option<tokio::sync::mpsc::Sender<AsyncCmd>>,
    task: Option<tokio::task::JoinHandle<Result<Option<Digest>, ContentError>>>,
}

impl IngestWriter {
    /// Moves the writer onto a blocking thread. Must be called inside a tokio runtime.
    pub fn into_async(self) -> AsyncIngestWriter {
        // 16 chunks in flight bounds memory (reqwest chunks are a few KiB to a few MiB).
        let (tx, mut rx) = tokio::sync::mpsc::channel::<AsyncCmd>(16);
        let digest = self.expected.clone();
        let offset = self.offset;
        let task = tokio::task::spawn_blocking(move || {
            let mut w = self;
            while let Some(cmd) = rx.blocking_recv() {
                match cmd {
                    AsyncCmd::Data(b) => w
                        .write_all(&b)
                        .map_err(io_err("write", &w.partial_path.clone()))?,
                    AsyncCmd::Commit => return w.commit().map(Some),
                    AsyncCmd::Abort => return w.abort().map(|()| None),
                }
            }
            Ok(None)
        });
        AsyncIngestWriter {
            digest,
            offset,
            tx: Some(tx),
            task: Some(task),
        }
    }
}

impl AsyncIngestWriter {
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub async fn write(&mut self, chunk: bytes::Bytes) -> Result<(), ContentError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(AsyncCmd::Data(chunk)).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The thread stopped: its result carries the real error.
            Err(self
                .finish()
                .await
                .err()
                .unwrap_or(ContentError::WriterGone {
                    digest: self.digest.clone(),
                    reason: "writer already finished".into(),
                }))
        }
    }

    pub async fn commit(mut self) -> Result<Digest, ContentError> {
        self.send(AsyncCmd::Commit).await;
        match self.finish().await? {
            Some(d) => Ok(d),
            None => Err(ContentError::WriterGone {
                digest: self.digest.clone(),
                reason: "the writer ended without committing".into(),
            }),
        }
    }

    pub async fn abort(mut self) -> Result<(), ContentError> {
        self.send(AsyncCmd::Abort).await;
        self.finish().await.map(|_| ())
    }

    async fn send(&mut self, cmd: AsyncCmd) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(cmd).await;
        }
    }

    async fn finish(&mut self) -> Result<Option<Digest>, ContentError> {
        self.tx = None;
        match self.task.take() {
            Some(task) => task.await.map_err(|e| ContentError::WriterGone {
                digest: self.digest.clone(),
                reason: e.to_string(),
            })?,
            None => Err(ContentError::WriterGone {
                digest: self.digest.clone(),
                reason: "writer already finished".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn writer(store: &ContentStore, d: &Digest, size: Option<u64>) -> IngestWriter {
        match store.ingest(d, size).unwrap() {
            Ingest::Writer(w) => *w,
            other => panic!("expected a writer, got {other:?}"),
        }
    }

    #[test]
    fn write_blob_is_idempotent_and_readable() {
        let (_dir, s) = store();
        let d = s.write_blob(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(s.write_blob(b"hello").unwrap(), d);
        assert!(s.has(&d));
        assert_eq!(s.read(&d).unwrap(), b"hello");
        assert_eq!(s.size(&d).unwrap(), 5);
        assert_eq!(s.list().unwrap(), vec![d.clone()]);
        s.verify(&d).unwrap();
        assert!(matches!(
            s.read_capped(&d, 4),
            Err(ContentError::TooLarge {
                size: 5,
                max: 4,
                ..
            })
        ));
        assert!(s.delete(&d).unwrap());
        assert!(!s.delete(&d).unwrap());
        assert!(matches!(s.read(&d), Err(ContentError::NotFound(_))));
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn resume_continues_from_the_partial() {
        let (_dir, s) = store();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let d = Digest::of(&data);
        let mut w = writer(&s, &d, Some(data.len() as u64));
        assert_eq!(w.offset(), 0);
        w.write_all(&data[..123_456]).unwrap();
        drop(w);
        assert!(!s.has(&d));
        let mut w = writer(&s, &d, Some(data.len() as u64));
        assert_eq!(w.offset(), 123_456);
        w.write_all(&data[123_456..]).unwrap();
        assert_eq!(w.commit().unwrap(), d);
        assert_eq!(s.read(&d).unwrap(), data);
        assert!(matches!(
            s.ingest(&d, None).unwrap(),
            Ingest::AlreadyPresent(_)
        ));
        // Nothing left in ingest/.
        assert_eq!(fs::read_dir(&s.ingest).unwrap().count(), 0);
    }

    #[test]
    fn wrong_content_is_refused_and_the_partial_removed() {
        let (_dir, s) = store();
        let d = Digest::of(b"right");
        let mut w = writer(&s, &d, Some(5));
        w.write_all(b"wrong").unwrap();
        let err = w.commit().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&d.to_string()), "{msg}");
        assert!(msg.contains(&Digest::of(b"wrong").to_string()), "{msg}");
        assert!(!s.has(&d));
        assert!(!s.ingest.join(d.hex()).exists());
        // Too many bytes fail at write time.
        let mut w = writer(&s, &d, Some(5));
        assert!(w.write_all(b"righter").is_err());
        w.abort().unwrap();
        // Short: refused, but the prefix is kept for a resume.
        let mut w = writer(&s, &d, Some(5));
        w.write_all(b"rig").unwrap();
        assert!(matches!(
            w.commit(),
            Err(ContentError::SizeMismatch {
                expected: 5,
                actual: 3,
                ..
            })
        ));
        let mut w = writer(&s, &d, Some(5));
        assert_eq!(w.offset(), 3);
        w.write_all(b"ht").unwrap();
        w.commit().unwrap();
    }

    #[test]
    fn a_complete_but_corrupt_partial_is_restarted() {
        let (_dir, s) = store();
        let d = Digest::of(b"abcdef");
        fs::write(s.ingest.join(d.hex()), b"abcxyz").unwrap();
        let mut w = writer(&s, &d, Some(6));
        assert_eq!(w.offset(), 0);
        w.write_all(b"abcdef").unwrap();
        w.commit().unwrap();
    }

    #[test]
    fn blob_writer_names_the_blob_by_its_content() {
        let (_dir, s) = store();
        let mut w = s.writer().unwrap();
        w.write_all(b"some ").unwrap();
        w.write_all(b"bytes").unwrap();
        assert_eq!(w.written(), 10);
        let d = w.commit().unwrap();
        assert_eq!(d, Digest::of(b"some bytes"));
        assert_eq!(s.read(&d).unwrap(), b"some bytes");
        // Same content again: no error, no leftover temp file.
        let mut w = s.writer().unwrap();
        w.write_all(b"some bytes").unwrap();
        assert_eq!(w.commit().unwrap(), d);
        // Dropped without commit: temp file gone.
        let mut w = s.writer().unwrap();
        w.write_all(b"x").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(&s.ingest).unwrap().count(), 0);
    }

    #[test]
    fn concurrent_ingest_of_one_digest_writes_once() {
        let (_dir, s) = store();
        let data = vec![42u8; 1 << 20];
        let d = Digest::of(&data);
        let barrier = std::sync::Barrier::new(2);
        let results: Vec<&'static str> = std::thread::scope(|scope| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        match s.ingest(&d, Some(data.len() as u64)).unwrap() {
                            Ingest::AlreadyPresent(_) => "present",
                            Ingest::Writer(mut w) => {
                                for c in data.chunks(64 * 1024) {
                                    w.write_all(c).unwrap();
                                    std::thread::sleep(Duration::from_millis(2));
                                }
                                w.commit().unwrap();
                                "wrote"
                            }
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = results.clone();
        sorted.sort();
        assert_eq!(sorted, vec!["present", "wrote"]);
        assert_eq!(s.read(&d).unwrap(), data);
    }

    #[test]
    fn prune_removes_only_unlocked_old_leftovers() {
        let (_dir, s) = store();
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let mut held = writer(&s, &a, None);
        held.write_all(b"partial").unwrap();
        fs::write(s.ingest.join(b.hex()), b"stale").unwrap();
        fs::write(s.ingest.join(".tmp-dead"), b"stale").unwrap();
        assert_eq!(s.prune_ingest(Duration::from_secs(3600)).unwrap(), 0);
        assert_eq!(s.prune_ingest(Duration::ZERO).unwrap(), 2);
        assert!(s.ingest.join(a.hex()).exists());
        assert!(!s.ingest.join(b.hex()).exists());
        drop(held);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_ingest_resumes_and_commits() {
        let (_dir, s) = store();
        let data = vec![9u8; 200_000];
        let d = Digest::of(&data);
        let Ingest::Writer(w) = s.ingest_async(&d, Some(200_000)).await.unwrap() else {
            panic!("expected a writer")
        };
        let mut w = w.into_async();
        w.write(bytes::Bytes::copy_from_slice(&data[..50_000]))
            .await
            .unwrap();
        drop(w);
        // Let the blocking thread notice the closed channel and release the lock.
        let Ingest::Writer(w) = s.ingest_async(&d, Some(200_000)).await.unwrap() else {
            panic!("expected a writer")
        };
        let mut w = w.into_async();
        assert_eq!(w.offset(), 50_000);
        w.write(bytes::Bytes::copy_from_slice(&data[50_000..]))
            .await
            .unwrap();
        assert_eq!(w.commit().await.unwrap(), d);
        assert!(s.has(&d));
        // Wrong bytes: the error comes back through commit.
        let e = Digest::of(b"other");
        let Ingest::Writer(w) = s.ingest_async(&e, None).await.unwrap() else {
            panic!("expected a writer")
        };
        let mut w = w.into_async();
        w.write(bytes::Bytes::from_static(b"nope")).await.unwrap();
        assert!(matches!(
            w.commit().await,
            Err(ContentError::DigestMismatch { .. })
        ));
    }
}
