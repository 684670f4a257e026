//! The overlay snapshotter: each layer unpacked once into `snapshots/<chain-id>/diff`,
//! shared by every image that has it, ready to be an overlayfs lower directory.
//!
//! A layer is unpacked into `snapshots/tmp-<random>/diff` and renamed into place only once
//! its diff_id is verified, so a snapshot directory that exists is complete. An exclusive
//! flock on `snapshots/<chain-id>.lock` makes concurrent pulls of the same layer (threads
//! or processes) unpack it once; the others wait and find it done. Each staging directory
//! is itself flocked by its owner, so `open()` can tell a killed process's leftovers (no
//! lock) from another live process's work in progress.

use std::fs::{self, File};
use std::io::{self, BufReader, Cursor, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};

use rustix::fs::{self as rfs, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::digest::{Digest, HashingReader};
use super::unpack::{self, UnpackError, UnpackStats};

/// Read-ahead between the decompressing thread and the unpacking thread.
const CHUNK_SIZE: usize = 1 << 20;
const CHUNKS_IN_FLIGHT: usize = 4;
const TMP_PREFIX: &str = "tmp-";
const LOCK_SUFFIX: &str = ".lock";
const META_FILE: &str = "meta.json";

/// The OCI chain id: chain(L0) = diff_id(L0); chain(Ln) = sha256(chain(Ln-1) + " " + diff_id(Ln)).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
    }
}

/// `snapshots/<chain-id>/meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotMeta {
    pub chain_id: Digest,
    pub diff_id: Digest,
    /// The parent layer's chain id (none for a base layer).
    pub parent: Option<Digest>,
    /// Bytes of file content in the layer (what `docker image ls` adds up).
    pub size: u64,
    /// Bytes of the uncompressed tar stream.
    pub tar_size: u64,
    pub stats: UnpackStats,
}

/// What `unpack_layer_outcome` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This call unpacked the layer.
    Unpacked(UnpackStats),
    /// The snapshot was already there (possibly made by a concurrent caller we waited for).
    Existing,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot store: {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("layer {diff_id}: {source}")]
    Unpack {
        diff_id: Digest,
        source: UnpackError,
    },
    #[error("layer {diff_id}: reading or decompressing the layer stream: {source}")]
    Read { diff_id: Digest, source: io::Error },
    #[error(
        "layer {expected}: the uncompressed layer hashes to {actual}, not its diff_id; refused"
    )]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("snapshot {0} does not exist")]
    NotFound(Digest),
    #[error("snapshot {chain_id}: unreadable {}: {source}", .path.display())]
    Meta {
        chain_id: Digest,
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The overlay snapshotter rooted at `<root>/snapshots`.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
    sync: bool,
}

impl Snapshotter {
    /// Opens (creating if needed) `<root>/snapshots` and removes staging directories left
    /// by killed processes. Those of live processes are locked and left alone.
    pub fn open(root: &Path) -> Result<Snapshotter, SnapshotError> {
        let dir = root.join("snapshots");
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        let snapshotter = Snapshotter { dir, sync: true };
        snapshotter.remove_stale_staging()?;
        Ok(snapshotter)
    }

    /// Whether a new snapshot is flushed to disk (syncfs) before it is committed. On by
    /// default: after a crash, a committed snapshot must not hold empty files.
    pub fn set_sync(&mut self, sync: bool) {
        self.sync = sync;
    }

    /// `<root>/snapshots`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn snapshot_path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex())
    }

    /// Whether the snapshot is committed (a committed snapshot is always complete).
    pub fn exists(&self, chain_id: &Digest) -> bool {
        fs::symlink_metadata(self.snapshot_path(chain_id)).is_ok_and(|m| m.is_dir())
    }

    /// The unpacked layer: an overlayfs lower (or upper) directory.
    pub fn diff_path(&self, chain_id: &Digest) -> PathBuf {
        self.snapshot_path(chain_id).join("diff")
    }

    pub fn meta(&self, chain_id: &Digest) -> Result<SnapshotMeta, SnapshotError> {
        let path = self.snapshot_path(chain_id).join(META_FILE);
        let bytes = match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound(chain_id.clone()))
            }
            r => r.map_err(io_error("reading", &path))?,
        };
        serde_json::from_slice(&bytes).map_err(|source| SnapshotError::Meta {
            chain_id: chain_id.clone(),
            path,
            source,
        })
    }

    /// The chain ids of all committed snapshots, sorted.
    pub fn list(&self) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_error("listing", &self.dir))? {
            let entry = entry.map_err(io_error("listing", &self.dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(chain_id) = Digest::from_hex(&name) else {
                continue;
            };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(chain_id);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a snapshot; `Ok(false)` if there was none. The directory is first renamed
    /// to a staging name, so it disappears at once and a crash mid-way leaves only
    /// leftovers `open()` cleans up. Callers make sure no container still uses it.
    pub fn remove(&self, chain_id: &Digest) -> Result<bool, SnapshotError> {
        let _lock = self.lock(chain_id)?;
        if !self.exists(chain_id) {
            return Ok(false);
        }
        let trash = self.staging_dir()?;
        let from = self.snapshot_path(chain_id);
        // rename(2) may replace an empty directory: the staging dir we just made.
        fs::rename(&from, trash.path()).map_err(io_error("removing", &from))?;
        // Dropping the TempDir removes the contents (without following symlinks).
        drop(trash);
        Ok(true)
    }

    /// Unpacks one layer (gzip, zstd or plain tar, told apart by magic bytes) as the child
    /// of `parent` (a chain id) and returns its chain id. The uncompressed stream must hash
    /// to `diff_id`, or nothing is kept.
    pub fn unpack_layer(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        compressed: impl Read + Send,
    ) -> Result<Digest, SnapshotError> {
        self.unpack_layer_outcome(parent, diff_id, compressed)
            .map(|(chain_id, _)| chain_id)
    }

    /// `unpack_layer`, also saying whether this call did the work.
    pub fn unpack_layer_outcome(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        compressed: impl Read + Send,
    ) -> Result<(Digest, Outcome), SnapshotError> {
        let chain_id = chain_id(parent, diff_id);
        if self.exists(&chain_id) {
            return Ok((chain_id, Outcome::Existing));
        }
        let _lock = self.lock(&chain_id)?;
        if self.exists(&chain_id) {
            return Ok((chain_id, Outcome::Existing));
        }
        let staging = self.staging_dir()?;
        let diff = staging.path().join("diff");
        fs::create_dir(&diff).map_err(io_error("creating", &diff))?;
        let (stats, tar_size) = unpack_verified(compressed, diff_id, &diff)?;
        let meta = SnapshotMeta {
            chain_id: chain_id.clone(),
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            size: stats.bytes,
            tar_size,
            stats,
        };
        let meta_path = staging.path().join(META_FILE);
        write_synced(&meta_path, &meta)?;
        if self.sync {
            // One syncfs instead of an fsync per file: the layer's data must be on disk
            // before the rename makes it a trusted snapshot.
            rfs::syncfs(&staging.lock)
                .map_err(|e| io_error("flushing", staging.path())(e.into()))?;
        }
        let target = self.snapshot_path(&chain_id);
        fs::rename(staging.path(), &target).map_err(io_error("committing", &target))?;
        staging.disarm();
        if self.sync {
            sync_dir(&self.dir)?;
        }
        Ok((chain_id, Outcome::Unpacked(stats)))
    }
}

/// A flocked `tmp-<random>` staging directory, removed on drop unless committed.
struct Staging {
    tmp: tempfile::TempDir,
    lock: OwnedFd,
}

impl Staging {
    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The directory was renamed into place: nothing left to remove.
    fn disarm(self) {
        let Staging { tmp, lock } = self;
        let _ = tmp.keep();
        drop(lock);
    }
}

impl Snapshotter {
    fn lock(&self, chain_id: &Digest) -> Result<OwnedFd, SnapshotError> {
        let path = self.dir.join(format!("{}{LOCK_SUFFIX}", chain_id.hex()));
        let fd = rfs::open(
            &path,
            OFlags::CREATE | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_error("opening the lock", &path)(e.into()))?;
        loop {
            match rfs::flock(&fd, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(fd),
                Err(Errno::INTR) => {}
                Err(e) => return Err(io_error("locking", &path)(e.into())),
            }
        }
    }

    /// Makes and locks a fresh staging directory. Between mkdir and flock another
    /// process's `open()` may take it for a leftover and remove it; then try another.
    fn staging_dir(&self) -> Result<Staging, SnapshotError> {
        for _ in 0..8 {
            let tmp = tempfile::Builder::new()
                .prefix(TMP_PREFIX)
                .tempdir_in(&self.dir)
                .map_err(io_error("creating a staging directory in", &self.dir))?;
            let fd = match rfs::open(
                tmp.path(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(io_error("opening", tmp.path())(e.into())),
            };
            match rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => continue,
                Err(e) => return Err(io_error("locking", tmp.path())(e.into())),
            }
            let st = rfs::fstat(&fd).map_err(|e| io_error("inspecting", tmp.path())(e.into()))?;
            let still_ours = fs::symlink_metadata(tmp.path())
                .is_ok_and(|m| m.ino() == st.st_ino && m.dev() == st.st_dev);
            if still_ours {
                return Ok(Staging { tmp, lock: fd });
            }
        }
        Err(SnapshotError::Io {
            action: "claiming a staging directory in",
            path: self.dir.clone(),
            source: io::Error::other("every attempt was removed by a concurrent cleanup"),
        })
    }

    /// Best effort: a leftover that cannot be removed now is retried at the next open.
    fn remove_stale_staging(&self) -> Result<(), SnapshotError> {
        for entry in fs::read_dir(&self.dir).map_err(io_error("listing", &self.dir))? {
            let Ok(entry) = entry else { continue };
            if !entry
                .file_name()
                .as_encoded_bytes()
                .starts_with(TMP_PREFIX.as_bytes())
            {
                continue;
            }
            let path = entry.path();
            let Ok(fd) = rfs::open(
                &path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            // Locked: a live process is unpacking into it.
            if rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
                let _ = fs::remove_dir_all(&path);
            }
        }
        Ok(())
    }
}

fn write_synced(path: &Path, meta: &SnapshotMeta) -> Result<(), SnapshotError> {
    let mut bytes = serde_json::to_vec_pretty(meta).map_err(|e| SnapshotError::Io {
        action: "encoding",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    bytes.push(b'\n');
    let mut f = File::create(path).map_err(io_error("creating", path))?;
    f.write_all(&bytes).map_err(io_error("writing", path))?;
    f.sync_all().map_err(io_error("flushing", path))
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("flushing", dir))
}

/// Decompresses, hashes and unpacks `compressed` into `target`. Decompression and
/// hashing run on their own thread, ahead of the unpacking (as `tar -xzf` runs gzip
/// beside tar), so the two halves overlap on two cores.
fn unpack_verified(
    compressed: impl Read + Send,
    diff_id: &Digest,
    target: &Path,
) -> Result<(UnpackStats, u64), SnapshotError> {
    let (tx, rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    let (free_tx, free_rx) = mpsc::channel();
    let (unpacked, produced) = std::thread::scope(|s| {
        let producer = s.spawn(move || produce(compressed, tx, free_rx));
        let mut reader = ChunkReader::new(rx, free_tx);
        let unpacked = unpack::unpack(&mut reader, target)
            .map_err(|e| SnapshotError::Unpack {
                diff_id: diff_id.clone(),
                source: e,
            })
            .and_then(|stats| {
                // Whatever follows the end-of-archive marker is part of the diff_id too.
                io::copy(&mut reader, &mut io::sink())
                    .map(|_| stats)
                    .map_err(|source| SnapshotError::Read {
                        diff_id: diff_id.clone(),
                        source,
                    })
            });
        // On failure this stops the producer: its next send finds no receiver.
        drop(reader);
        (unpacked, producer.join())
    });
    let produced = match produced {
        Ok(p) => p,
        Err(_) => Err(Produce::Failed(io::Error::other(
            "the decompression thread panicked",
        ))),
    };
    match (unpacked, produced) {
        // A broken stream is the cause; the tar error it led to is only a symptom.
        (_, Err(Produce::Failed(source))) => Err(SnapshotError::Read {
            diff_id: diff_id.clone(),
            source,
        }),
        (Err(e), _) => Err(e),
        (Ok(_), Err(Produce::Stopped)) => Err(SnapshotError::Read {
            diff_id: diff_id.clone(),
            source: io::Error::other("the layer stream ended early"),
        }),
        (Ok(stats), Ok((actual, len))) => {
            if &actual != diff_id {
                return Err(SnapshotError::DiffIdMismatch {
                    expected: diff_id.clone(),
                    actual,
                });
            }
            Ok((stats, len))
        }
    }
}

enum Produce {
    Failed(io::Error),
    /// The consumer went away (the unpack failed).
    Stopped,
}

type Chunk = io::Result<(Vec<u8>, usize)>;

fn produce<R: Read>(
    compressed: R,
    tx: SyncSender<Chunk>,
    free: Receiver<Vec<u8>>,
) -> Result<(Digest, u64), Produce> {
    let fail = |tx: &SyncSender<Chunk>, e: io::Error| {
        // io::Error is not Clone: the consumer gets a copy, the report keeps the original.
        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
        Produce::Failed(e)
    };
    let decoder = decompressor(compressed).map_err(|e| fail(&tx, e))?;
    let mut src = HashingReader::new(decoder);
    loop {
        let mut buf = free.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK_SIZE]);
        let mut n = 0;
        while n < buf.len() {
            match src.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(&tx, e)),
            }
        }
        if n == 0 {
            break;
        }
        if tx.send(Ok((buf, n))).is_err() {
            return Err(Produce::Stopped);
        }
    }
    let (_, digest, len) = src.finish();
    Ok((digest, len))
}

/// gzip (1f 8b), zstd (28 b5 2f fd) or else plain tar, by the first bytes.
fn decompressor<'a, R: Read + 'a>(compressed: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut inner = BufReader::with_capacity(CHUNK_SIZE, compressed);
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < magic.len() {
        match inner.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = Cursor::new(magic[..n].to_vec()).chain(inner);
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::bufread::MultiGzDecoder::new(head)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::with_buffer(head)?),
        _ => Box::new(head),
    })
}

/// The receiving end of the read-ahead: a `Read` over the chunks, handing spent buffers
/// back to the producer.
struct ChunkReader {
    rx: Receiver<Chunk>,
    free: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    len: usize,
    pos: usize,
    state: StreamState,
}

#[derive(PartialEq)]
enum StreamState {
    Open,
    Ended,
    Failed,
}

impl ChunkReader {
    fn new(rx: Receiver<Chunk>, free: mpsc::Sender<Vec<u8>>) -> ChunkReader {
        ChunkReader {
            rx,
            free,
            buf: Vec::new(),
            len: 0,
            pos: 0,
            state: StreamState::Open,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            match self.state {
                StreamState::Ended => return Ok(0),
                StreamState::Failed => return Err(io::Error::other("the layer stream failed")),
                StreamState::Open => {}
            }
            match self.rx.recv() {
                Ok(Ok((buf, len))) => {
                    let spent = std::mem::replace(&mut self.buf, buf);
                    if !spent.is_empty() {
                        let _ = self.free.send(spent);
                    }
                    self.len = len;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.state = StreamState::Failed;
                    return Err(e);
                }
                Err(_) => self.state = StreamState::Ended,
            }
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SHA_B: &str = "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
    const SHA_C: &str = "sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";

    fn d(s: &str) -> Digest {
        s.parse().unwrap()
    }

    #[test]
    fn chain_ids_match_values_computed_by_hand() {
        // printf 'sha256:e3b0… sha256:3e23…' | sha256sum
        assert_eq!(chain_id(None, &d(EMPTY)), d(EMPTY));
        let two = chain_id(Some(&d(EMPTY)), &d(SHA_B));
        assert_eq!(
            two.hex(),
            "476bb6097114e56df6a058a9345a1b4df7fd4bdd65903498b074306ba7ccd926"
        );
        let three = chain_id(Some(&two), &d(SHA_C));
        assert_eq!(
            three.hex(),
            "e92551d3402339b745d7d5b40120aa4efc4e7d5f6d9b5dff6ff4bd3969f74d00"
        );
    }

    fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn store() -> (tempfile::TempDir, Snapshotter) {
        let dir = tempfile::Builder::new()
            .prefix("berth-snap-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let s = Snapshotter::open(dir.path()).unwrap();
        (dir, s)
    }

    /// Names in snapshots/ other than lock files.
    fn entries(s: &Snapshotter) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(s.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.ends_with(LOCK_SUFFIX))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn gzip_zstd_and_plain_layers_are_detected() {
        let (_dir, s) = store();
        let tar = layer(&[("etc/hostname", b"berth\n"), ("bin/x", &[9u8; 70_000])]);
        let diff_id = Digest::of(&tar);
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        let parents = [None, Some(d(SHA_B)), Some(d(SHA_C))];
        for (parent, blob) in parents.iter().zip([tar.clone(), gzip(&tar), zst]) {
            let (id, outcome) = s
                .unpack_layer_outcome(parent.as_ref(), &diff_id, &blob[..])
                .unwrap();
            assert_eq!(id, chain_id(parent.as_ref(), &diff_id));
            assert!(
                matches!(outcome, Outcome::Unpacked(st) if st.files == 2 && st.bytes == 70_006)
            );
            assert_eq!(
                fs::read(s.diff_path(&id).join("etc/hostname")).unwrap(),
                b"berth\n"
            );
            let meta = s.meta(&id).unwrap();
            assert_eq!(meta.diff_id, diff_id);
            assert_eq!(meta.parent, *parent);
            assert_eq!(meta.tar_size, tar.len() as u64);
            assert_eq!(meta.size, 70_006);
        }
        assert_eq!(s.list().unwrap().len(), 3);
        assert!(entries(&s).iter().all(|n| !n.starts_with(TMP_PREFIX)));
    }

    #[test]
    fn a_wrong_diff_id_is_refused_and_leaves_nothing() {
        let (_dir, s) = store();
        let tar = layer(&[("a", b"1")]);
        let wrong = Digest::of(b"something else");
        let err = s.unpack_layer(None, &wrong, &gzip(&tar)[..]).unwrap_err();
        assert!(
            matches!(&err, SnapshotError::DiffIdMismatch { expected, actual }
                if *expected == wrong && *actual == Digest::of(&tar)),
            "{err}"
        );
        assert!(err.to_string().contains("diff_id"));
        assert!(!s.exists(&wrong));
        assert!(entries(&s).is_empty(), "{:?}", entries(&s));
    }

    #[test]
    fn bytes_after_the_end_of_archive_are_part_of_the_diff_id() {
        let (_dir, s) = store();
        let mut tar = layer(&[("a", b"1")]);
        let short = Digest::of(&tar);
        tar.extend_from_slice(&[0u8; 8192]);
        tar.extend_from_slice(b"trailing");
        let err = s.unpack_layer(None, &short, &tar[..]).unwrap_err();
        assert!(matches!(err, SnapshotError::DiffIdMismatch { .. }), "{err}");
        let full = Digest::of(&tar);
        let id = s.unpack_layer(None, &full, &tar[..]).unwrap();
        assert_eq!(id, full);
        assert_eq!(s.meta(&id).unwrap().tar_size, tar.len() as u64);
    }

    #[test]
    fn broken_streams_and_hostile_entries_leave_nothing() {
        let (_dir, s) = store();
        let tar = layer(&[("a", &[1u8; 100_000])]);
        let diff_id = Digest::of(&tar);
        let gz = gzip(&tar);
        let err = s
            .unpack_layer(None, &diff_id, &gz[..gz.len() / 2])
            .unwrap_err();
        assert!(matches!(err, SnapshotError::Read { .. }), "{err}");

        let mut corrupt = gz.clone();
        corrupt[40] ^= 0xff;
        assert!(s.unpack_layer(None, &diff_id, &corrupt[..]).is_err());

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_link_name("/etc/passwd").unwrap();
        b.append_data(&mut h, "h", &b""[..]).unwrap();
        let evil = b.into_inner().unwrap();
        let err = s
            .unpack_layer(None, &Digest::of(&evil), &evil[..])
            .unwrap_err();
        assert!(matches!(err, SnapshotError::Unpack { .. }), "{err}");
        assert!(err.to_string().contains("does not exist in this layer"));
        assert!(entries(&s).is_empty(), "{:?}", entries(&s));
        assert!(s.list().unwrap().is_empty());
    }

    /// A reader that dawdles, so concurrent callers really overlap.
    struct Slow<'a>(&'a [u8]);

    impl Read for Slow<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(std::time::Duration::from_millis(2));
            let n = buf.len().min(self.0.len()).min(4096);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn concurrent_unpacks_of_one_layer_do_the_work_once() {
        let (_dir, s) = store();
        let tar = layer(&[("big", &[5u8; 200_000]), ("small", b"s")]);
        let diff_id = Digest::of(&tar);
        let gz = gzip(&tar);
        let barrier = Arc::new(Barrier::new(4));
        let outcomes: Vec<(Digest, Outcome)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let barrier = barrier.clone();
                    let (s, gz, diff_id) = (&s, &gz, &diff_id);
                    scope.spawn(move || {
                        barrier.wait();
                        s.unpack_layer_outcome(None, diff_id, Slow(gz)).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let fresh = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Unpacked(_)))
            .count();
        assert_eq!(fresh, 1, "{outcomes:?}");
        assert!(outcomes.iter().all(|(id, _)| *id == diff_id));
        assert_eq!(entries(&s), vec![diff_id.hex().to_string()]);
    }

    #[test]
    fn open_removes_unlocked_leftovers_only() {
        let (dir, s) = store();
        let stale = s.dir().join("tmp-stale");
        fs::create_dir_all(stale.join("diff/deep")).unwrap();
        fs::write(stale.join("diff/deep/f"), b"x").unwrap();
        let live = s.dir().join("tmp-live");
        fs::create_dir(&live).unwrap();
        let held = File::open(&live).unwrap();
        rfs::flock(&held, FlockOperation::NonBlockingLockExclusive).unwrap();

        let s2 = Snapshotter::open(dir.path()).unwrap();
        assert!(!stale.exists());
        assert!(live.exists());
        drop(held);
        drop(s2);
        Snapshotter::open(dir.path()).unwrap();
        assert!(!live.exists());
    }

    #[test]
    fn list_meta_and_remove() {
        let (_dir, s) = store();
        let tar = layer(&[("f", b"1")]);
        let diff_id = Digest::of(&tar);
        let base = s.unpack_layer(None, &diff_id, &tar[..]).unwrap();
        let tar2 = layer(&[("g", b"22")]);
        let child = s
            .unpack_layer(Some(&base), &Digest::of(&tar2), &tar2[..])
            .unwrap();
        let mut want = vec![base.clone(), child.clone()];
        want.sort();
        assert_eq!(s.list().unwrap(), want);
        assert_eq!(s.meta(&child).unwrap().parent, Some(base.clone()));
        // A second unpack of a present layer does not read the stream at all.
        let (_, outcome) = s
            .unpack_layer_outcome(None, &diff_id, &b"not even a tar"[..])
            .unwrap();
        assert_eq!(outcome, Outcome::Existing);

        assert!(s.remove(&base).unwrap());
        assert!(!s.remove(&base).unwrap());
        assert!(!s.exists(&base));
        assert!(matches!(s.meta(&base), Err(SnapshotError::NotFound(_))));
        assert_eq!(s.list().unwrap(), vec![child.clone()]);
        assert_eq!(entries(&s), vec![child.hex().to_string()]);
    }
}
