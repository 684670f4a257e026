//! Secure unpack of one image layer (a tar stream) into a directory, in overlayfs format.
//!
//! The `tar` crate is used only as a parser: its own `unpack` follows symlinks the layer
//! itself planted, so a hostile layer could write outside the target. Here every path is
//! resolved inside the target the way containerd does it: the name is cleaned lexically
//! (`..` cannot climb above the root), parents are opened with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` (so a symlink to `/` or `../..` in the
//! layer lands back in the root), and the final component is created with `*at()` calls
//! that never follow it. Whiteouts become overlay whiteouts: `.wh.<name>` a 0/0 character
//! device, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use base64::Engine as _;
use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
    XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

/// Longest file name component Linux accepts.
pub const NAME_MAX: usize = 255;
/// Longest path (including the terminating NUL) Linux accepts in one system call.
pub const PATH_MAX: usize = 4096;

const COPY_BUF_SIZE: usize = 1 << 20;
/// As the kernel's limit on symlinks followed in one lookup.
const MAX_SYMLINKS: u32 = 40;
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// xattrs a layer may not set itself: overlayfs trusts them (opaque dirs, redirects,
/// metacopy), so only our whiteout conversion may write them.
const RESERVED_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// What one layer contained. `devices` counts character and block devices and fifos;
/// `whiteouts` counts both whiteout files and opaque-directory markers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnpackStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub devices: u64,
    pub whiteouts: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("cannot open unpack target {}: {source}", .path.display())]
    Target { path: PathBuf, source: io::Error },
    #[error("reading the layer tar stream: {0}")]
    Tar(io::Error),
    #[error("layer entry {entry:?}: {action}: {source}")]
    Io {
        entry: String,
        action: &'static str,
        source: io::Error,
    },
    #[error("layer entry {entry:?}: a name component of {len} bytes is longer than NAME_MAX ({NAME_MAX})")]
    NameTooLong { entry: String, len: usize },
    #[error("layer entry {entry:?}: the path of {len} bytes is longer than PATH_MAX ({PATH_MAX})")]
    PathTooLong { entry: String, len: usize },
    #[error("layer entry {entry:?}: {reason}")]
    Invalid { entry: String, reason: String },
    #[error("layer entry {entry:?}: unsupported tar entry type {kind:?}")]
    Unsupported { entry: String, kind: char },
}

/// Unpacks the tar stream `tar_stream` into the existing directory `root`. Reading stops at
/// the tar end-of-archive marker; the caller drains anything after it if it needs to.
pub fn unpack<R: Read>(tar_stream: R, root: &Path) -> Result<UnpackStats, UnpackError> {
    let root_fd = rfs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Target {
        path: root.to_path_buf(),
        source: e.into(),
    })?;
    let mut unpacker = Unpacker::new(root_fd);
    let mut archive = tar::Archive::new(tar_stream);
    for entry in archive.entries().map_err(UnpackError::Tar)? {
        let mut entry = entry.map_err(UnpackError::Tar)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish_dirs()?;
    Ok(unpacker.stats)
}

/// A cleaned entry path: components joined by `/`, no leading `/`, no `.`/`..`/empty
/// components. Empty means the layer root.
fn clean(raw: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            // `..` at the top stays at the top, as in RESOLVE_IN_ROOT and filepath.Clean("/"+p).
            b".." => {
                let keep = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(keep);
            }
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    out
}

/// Cleans `raw` and checks it is a name Linux can take, with a clear error otherwise.
fn checked_path(raw: &[u8], entry: &str) -> Result<Vec<u8>, UnpackError> {
    let path = clean(raw);
    if path.contains(&0) {
        return Err(invalid(entry, "the name contains a NUL byte"));
    }
    if let Some(long) = path.split(|&b| b == b'/').find(|c| c.len() > NAME_MAX) {
        return Err(UnpackError::NameTooLong {
            entry: entry.to_string(),
            len: long.len(),
        });
    }
    if path.len() >= PATH_MAX {
        return Err(UnpackError::PathTooLong {
            entry: entry.to_string(),
            len: path.len(),
        });
    }
    Ok(path)
}

/// The non-empty, non-`.` components of a path (`..` kept).
fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// Splits a cleaned, non-empty path into its parent path and last component.
fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn invalid(entry: &str, reason: impl Into<String>) -> UnpackError {
    UnpackError::Invalid {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

fn io_err<'a>(entry: &'a str, action: &'static str) -> impl FnOnce(Errno) -> UnpackError + 'a {
    move |e| UnpackError::Io {
        entry: entry.to_string(),
        action,
        source: e.into(),
    }
}

/// Metadata of one entry, with PAX records (times with sub-second precision, xattrs)
/// applied over the ustar header fields.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    atime: Timespec,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn read<R: Read>(e: &mut tar::Entry<'_, R>, entry: &str) -> Result<Meta, UnpackError> {
        let h = e.header();
        // Blank numeric fields (all NUL or spaces) read as 0, as in Go's archive/tar,
        // which wrote most layers; the tar crate refuses them.
        let field = |what: &str, r: io::Result<u64>, raw: &[u8]| match r {
            Ok(v) => Ok(v),
            Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
            Err(err) => Err(invalid(
                entry,
                format!("bad {what} in the tar header: {err}"),
            )),
        };
        let old = h.as_old();
        // The tar crate has already applied PAX uid/gid to the header.
        let uid = field("uid", h.uid(), &old.uid)?;
        let gid = field("gid", h.gid(), &old.gid)?;
        let mode = field("mode", h.mode().map(u64::from), &old.mode)?;
        let mode = u32::try_from(mode & 0o7777).unwrap_or(0);
        let mtime_secs = field("mtime", h.mtime(), &old.mtime)?;
        // u32::MAX is the "unchanged" marker of chown(2), never a real id.
        let to_id = |what: &str, v: u64| match u32::try_from(v) {
            Ok(id) if id != u32::MAX => Ok(id),
            _ => Err(invalid(entry, format!("{what} {v} is out of range"))),
        };
        let mut meta = Meta {
            uid: to_id("uid", uid)?,
            gid: to_id("gid", gid)?,
            mode,
            atime: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            mtime: Timespec {
                tv_sec: i64::try_from(mtime_secs).unwrap_or(i64::MAX),
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        let mut atime = None;
        if let Some(exts) = e
            .pax_extensions()
            .map_err(|err| invalid(entry, format!("unreadable PAX header: {err}")))?
        {
            for ext in exts {
                let ext =
                    ext.map_err(|err| invalid(entry, format!("malformed PAX record: {err}")))?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                if key == b"mtime" {
                    meta.mtime =
                        pax_time(value).ok_or_else(|| invalid(entry, "malformed PAX mtime"))?;
                } else if key == b"atime" {
                    atime =
                        Some(pax_time(value).ok_or_else(|| invalid(entry, "malformed PAX atime"))?);
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    meta.xattrs.push((name.to_vec(), value.to_vec()));
                } else if let Some(name) = key.strip_prefix(b"LIBARCHIVE.xattr.") {
                    let name = percent_decode(name)
                        .ok_or_else(|| invalid(entry, "malformed LIBARCHIVE.xattr name"))?;
                    // libarchive may or may not pad; accept both.
                    let mut v = value.trim_ascii();
                    while let Some(rest) = v.strip_suffix(b"=") {
                        v = rest;
                    }
                    let value = base64::engine::general_purpose::STANDARD_NO_PAD
                        .decode(v)
                        .map_err(|_| invalid(entry, "malformed LIBARCHIVE.xattr value"))?;
                    meta.xattrs.push((name, value));
                }
            }
        }
        for (name, _) in &meta.xattrs {
            if name.is_empty() || name.contains(&0) {
                return Err(invalid(
                    entry,
                    "an xattr name is empty or contains a NUL byte",
                ));
            }
        }
        meta.xattrs
            .retain(|(name, _)| !name.starts_with(RESERVED_XATTR_PREFIX));
        meta.atime = atime.unwrap_or(meta.mtime);
        Ok(meta)
    }

    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.atime,
            last_modification: self.mtime,
        }
    }
}

/// Parses a PAX time: decimal seconds, optionally negative, optionally with a fraction.
fn pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nsec: i64 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nsec += i64::from(d - b'0') * 10i64.pow(8 - i as u32);
    }
    Some(if !neg {
        Timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        }
    } else if nsec == 0 {
        Timespec {
            tv_sec: -secs,
            tv_nsec: 0,
        }
    } else {
        Timespec {
            tv_sec: -secs - 1,
            tv_nsec: 1_000_000_000 - nsec,
        }
    })
}

/// Decodes libarchive's %XX-escaped xattr names.
fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = std::str::from_utf8(s.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Metadata of a directory, applied after all entries are written (creating children
/// changes a directory's mtime). `dev`/`ino` identify the directory we created, so a later
/// entry that replaced it (with a symlink, say) is never chmod'ed through.
struct DirMeta {
    dev: u64,
    ino: u64,
    uid: u32,
    gid: u32,
    mode: u32,
    atime: Timespec,
    mtime: Timespec,
}

struct Unpacker {
    root: Rc<OwnedFd>,
    /// The last directory resolved, by cleaned path. Entries of a layer come grouped by
    /// directory, so this saves an openat2 per entry. Dropped whenever anything is removed,
    /// since a removal is the only way an already resolved path can change meaning.
    cached: Option<(Vec<u8>, Rc<OwnedFd>)>,
    dirs: HashMap<Vec<u8>, DirMeta>,
    buf: Vec<u8>,
    stats: UnpackStats,
}

impl Unpacker {
    fn new(root: OwnedFd) -> Unpacker {
        Unpacker {
            root: Rc::new(root),
            cached: None,
            dirs: HashMap::new(),
            buf: vec![0; COPY_BUF_SIZE],
            stats: UnpackStats::default(),
        }
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let kind = e.header().entry_type();
        let raw = e.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        match kind {
            EntryType::XGlobalHeader => return Ok(()),
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo => {}
            other => {
                return Err(UnpackError::Unsupported {
                    entry: name,
                    kind: char::from(other.as_byte()),
                })
            }
        }
        let path = checked_path(&raw, &name)?;
        if path.is_empty() {
            // The layer root: its metadata belongs to the snapshot, as in containerd.
            return Ok(());
        }
        let meta = Meta::read(e, &name)?;
        let (parent_path, base) = split_last(&path);
        let parent = self.dir(parent_path, true, &name)?;
        if base.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(&parent, base, &meta, &name);
        }
        match kind {
            EntryType::Directory => self.directory(&parent, &path, base, &meta, &name),
            EntryType::Symlink => self.symlink(e, &parent, base, &meta, &name),
            EntryType::Link => self.hardlink(e, &parent, &path, base, &name),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.node(e, kind, &parent, base, &meta, &name)
            }
            _ => self.file(e, &parent, base, &meta, &name),
        }
    }

    /// Opens the directory at cleaned `path` inside the root, following symlinks but never
    /// out of the root; with `create`, missing directories are made (mode 0755, as
    /// containerd's MkdirAll).
    fn dir(&mut self, path: &[u8], create: bool, entry: &str) -> Result<Rc<OwnedFd>, UnpackError> {
        if path.is_empty() {
            return Ok(self.root.clone());
        }
        if let Some((cached, fd)) = &self.cached {
            if cached == path {
                return Ok(fd.clone());
            }
        }
        let fd = match self.open_in_root(path) {
            Err(Errno::NOENT) if create => self.create_dirs(path),
            r => r,
        }
        .map_err(|e| dir_error(entry, path, e))?;
        let fd = Rc::new(fd);
        self.cached = Some((path.to_vec(), fd.clone()));
        Ok(fd)
    }

    fn open_in_root(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        let mut tries = 0;
        loop {
            let r = rfs::openat2(
                &*self.root,
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            );
            // EAGAIN: a concurrent rename raced the lookup; the kernel asks us to retry.
            match r {
                Err(Errno::AGAIN) if tries < 16 => tries += 1,
                r => return r,
            }
        }
    }

    /// `mkdir -p` inside the root: walks `path` one component at a time with the semantics
    /// of RESOLVE_IN_ROOT (`..` stops at the root, absolute symlink targets restart from
    /// it), creating what is missing, including the target of a dangling symlink, as
    /// containerd does. Only the slow path: taken when openat2 says something is missing.
    fn create_dirs(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        let mut todo: VecDeque<Vec<u8>> = components(path).map(<[u8]>::to_vec).collect();
        // The symlink-free path of `cur` below the root, to go back up on `..`.
        let mut real: Vec<Vec<u8>> = Vec::new();
        let mut cur: Option<OwnedFd> = None;
        let mut links = 0;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        while let Some(comp) = todo.pop_front() {
            if comp == b".." {
                real.pop();
                cur = if real.is_empty() {
                    None
                } else {
                    Some(self.open_in_root(&real.join(&b'/'))?)
                };
                continue;
            }
            let at = cur.as_ref().map_or(self.root.as_fd(), |f| f.as_fd());
            let fd = match rfs::openat(at, comp.as_slice(), flags, Mode::empty()) {
                Err(Errno::NOENT) => {
                    rfs::mkdirat(at, comp.as_slice(), Mode::from_raw_mode(0o755))?;
                    let fd = rfs::openat(at, comp.as_slice(), flags, Mode::empty())?;
                    // 0755 whatever the process umask, or non-root containers could not
                    // traverse it.
                    rfs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
                    fd
                }
                // O_NOFOLLOW met a symlink (ELOOP) or a non-directory (ENOTDIR).
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    let st = rfs::statat(at, comp.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                        return Err(Errno::NOTDIR);
                    }
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::LOOP);
                    }
                    let target = rfs::readlinkat(at, comp.as_slice(), Vec::new())?;
                    let target = target.as_bytes();
                    if target.starts_with(b"/") {
                        real.clear();
                        cur = None;
                    }
                    for c in components(target).rev() {
                        todo.push_front(c.to_vec());
                    }
                    continue;
                }
                r => r?,
            };
            real.push(comp);
            cur = Some(fd);
        }
        match cur {
            Some(fd) => Ok(fd),
            None => self.open_in_root(b"."),
        }
    }

    /// Removes whatever is at `name` so a new entry can take its place (tar semantics:
    /// the later entry wins; a directory goes with its contents, as in containerd).
    fn remove(&mut self, parent: &OwnedFd, name: &[u8], entry: &str) -> Result<(), UnpackError> {
        // Callers pass one cleaned component; anything else must never reach the
        // recursive removal below.
        if matches!(name, b"" | b"." | b"..") || name.contains(&b'/') {
            return Err(invalid(entry, "refusing to remove an invalid name"));
        }
        self.cached = None;
        match rfs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(Errno::ISDIR) => {
                // std's remove_dir_all never follows symlinks (openat + O_NOFOLLOW inside);
                // the /proc path names the directory through the fd we already resolved.
                std::fs::remove_dir_all(proc_path(parent, name)).map_err(|source| UnpackError::Io {
                    entry: entry.to_string(),
                    action: "removing the directory it replaces",
                    source,
                })
            }
            Err(e) => Err(io_err(entry, "removing the entry it replaces")(e)),
        }
    }
}

/// `/proc/self/fd/<dir>/<name>`: a path for calls that have no fd or *at() form
/// (lsetxattr, remove_dir_all). The directory part is the already resolved fd and the
/// final component is not followed by those calls.
fn proc_path(dir: &OwnedFd, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(std::ffi::OsStr::from_bytes(name));
    p
}

fn dir_error(entry: &str, dir: &[u8], e: Errno) -> UnpackError {
    let dir = String::from_utf8_lossy(dir);
    match e {
        Errno::NOSYS => invalid(
            entry,
            "openat2 is not available (Linux 5.6 or later is needed to unpack layers safely)",
        ),
        Errno::NOTDIR => invalid(entry, format!("parent {dir:?} is not a directory")),
        Errno::NOENT => invalid(entry, format!("parent {dir:?} does not exist")),
        Errno::LOOP => invalid(entry, format!("too many symlinks resolving {dir:?}")),
        e => UnpackError::Io {
            entry: entry.to_string(),
            action: "opening the parent directory",
            source: e.into(),
        },
    }
}

impl Unpacker {
    fn file<R: Read>(
        &mut self,
        data: &mut R,
        parent: &OwnedFd,
        base: &[u8],
        meta: &Meta,
        entry: &str,
    ) -> Result<(), UnpackError> {
        // O_EXCL|O_NOFOLLOW: never write through whatever already sits at the name
        // (a symlink planted by an earlier entry); replace it instead, as tar does.
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(0o600);
        let fd = match rfs::openat(parent, base, flags, mode) {
            Err(Errno::EXIST) => {
                self.remove(parent, base, entry)?;
                rfs::openat(parent, base, flags, mode)
            }
            r => r,
        }
        .map_err(io_err(entry, "creating the file"))?;
        let mut file = File::from(fd);
        let written = copy(data, &mut file, &mut self.buf).map_err(|e| match e {
            CopyError::Read(e) => UnpackError::Tar(e),
            CopyError::Write(source) => UnpackError::Io {
                entry: entry.to_string(),
                action: "writing the file",
                source,
            },
        })?;
        // Order matters: chown clears setuid/setgid and security.capability, so it goes
        // first, then the mode, then xattrs; times last since the others touch ctime only.
        rfs::fchown(&file, Some(uid(meta)), Some(gid(meta)))
            .map_err(io_err(entry, "changing the owner"))?;
        rfs::fchmod(&file, Mode::from_raw_mode(meta.mode))
            .map_err(io_err(entry, "changing the mode"))?;
        for (name, value) in &meta.xattrs {
            xattr_result(rfs::fsetxattr(
                &file,
                name.as_slice(),
                value,
                XattrFlags::empty(),
            ))
            .map_err(|e| xattr_error(entry, name, e))?;
        }
        rfs::futimens(&file, &meta.times()).map_err(io_err(entry, "setting the times"))?;
        self.stats.files += 1;
        self.stats.bytes += written;
        Ok(())
    }

    fn directory(
        &mut self,
        parent: &OwnedFd,
        path: &[u8],
        base: &[u8],
        meta: &Meta,
        entry: &str,
    ) -> Result<(), UnpackError> {
        // 0700 until the end, like tar: the real mode may deny writing the children.
        let mode = Mode::from_raw_mode(0o700);
        match rfs::mkdirat(parent, base, mode) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let st = rfs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err(entry, "inspecting the existing entry"))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    self.remove(parent, base, entry)?;
                    rfs::mkdirat(parent, base, mode)
                        .map_err(io_err(entry, "creating the directory"))?;
                }
            }
            Err(e) => return Err(io_err(entry, "creating the directory")(e)),
        }
        let fd = rfs::openat(
            parent,
            base,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err(entry, "opening the new directory"))?;
        for (name, value) in &meta.xattrs {
            xattr_result(rfs::fsetxattr(
                &fd,
                name.as_slice(),
                value,
                XattrFlags::empty(),
            ))
            .map_err(|e| xattr_error(entry, name, e))?;
        }
        let st = rfs::fstat(&fd).map_err(io_err(entry, "inspecting the new directory"))?;
        self.dirs.insert(
            path.to_vec(),
            DirMeta {
                dev: st.st_dev,
                ino: st.st_ino,
                uid: meta.uid,
                gid: meta.gid,
                mode: meta.mode,
                atime: meta.atime,
                mtime: meta.mtime,
            },
        );
        // The entries that follow are most likely this directory's children.
        self.cached = Some((path.to_vec(), Rc::new(fd)));
        self.stats.dirs += 1;
        Ok(())
    }

    fn symlink<R: Read>(
        &mut self,
        e: &tar::Entry<'_, R>,
        parent: &OwnedFd,
        base: &[u8],
        meta: &Meta,
        entry: &str,
    ) -> Result<(), UnpackError> {
        // The target is data, stored verbatim: it is only ever resolved inside the
        // container's root (or, here, with RESOLVE_IN_ROOT).
        let target = e
            .link_name_bytes()
            .ok_or_else(|| invalid(entry, "symlink without a target"))?;
        if target.is_empty() || target.contains(&0) || target.len() >= PATH_MAX {
            return Err(invalid(
                entry,
                "symlink target is empty, contains a NUL byte or is longer than PATH_MAX",
            ));
        }
        match rfs::symlinkat(&*target, parent, base) {
            Err(Errno::EXIST) => {
                self.remove(parent, base, entry)?;
                rfs::symlinkat(&*target, parent, base)
            }
            r => r,
        }
        .map_err(io_err(entry, "creating the symlink"))?;
        self.apply_at(parent, base, meta, false, entry)?;
        self.stats.symlinks += 1;
        Ok(())
    }

    fn hardlink<R: Read>(
        &mut self,
        e: &tar::Entry<'_, R>,
        parent: &OwnedFd,
        path: &[u8],
        base: &[u8],
        entry: &str,
    ) -> Result<(), UnpackError> {
        let raw = e
            .link_name_bytes()
            .ok_or_else(|| invalid(entry, "hard link without a target"))?;
        let target = checked_path(&raw, entry)?;
        if target.is_empty() {
            return Err(invalid(entry, "hard link to the layer root"));
        }
        if target == path {
            return Ok(());
        }
        let (target_dir, target_base) = split_last(&target);
        let missing = || {
            invalid(
                entry,
                format!(
                    "hard link target {:?} does not exist in this layer",
                    String::from_utf8_lossy(&target)
                ),
            )
        };
        let target_parent = match self.dir(target_dir, false, entry) {
            Err(UnpackError::Invalid { .. }) => return Err(missing()),
            r => r?,
        };
        let link = || rfs::linkat(&*target_parent, target_base, parent, base, AtFlags::empty());
        let result = match link() {
            Err(Errno::EXIST) => {
                let same = |a: &OwnedFd, an: &[u8], b: &OwnedFd, bn: &[u8]| match (
                    rfs::statat(a, an, AtFlags::SYMLINK_NOFOLLOW),
                    rfs::statat(b, bn, AtFlags::SYMLINK_NOFOLLOW),
                ) {
                    (Ok(x), Ok(y)) => x.st_dev == y.st_dev && x.st_ino == y.st_ino,
                    _ => false,
                };
                if same(&target_parent, target_base, parent, base) {
                    Ok(())
                } else {
                    self.remove(parent, base, entry)?;
                    link()
                }
            }
            r => r,
        };
        result.map_err(|e| match e {
            Errno::NOENT => missing(),
            Errno::PERM => invalid(
                entry,
                format!(
                    "hard link target {:?} is a directory",
                    String::from_utf8_lossy(&target)
                ),
            ),
            e => io_err(entry, "creating the hard link")(e),
        })?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    fn node<R: Read>(
        &mut self,
        e: &tar::Entry<'_, R>,
        kind: EntryType,
        parent: &OwnedFd,
        base: &[u8],
        meta: &Meta,
        entry: &str,
    ) -> Result<(), UnpackError> {
        let h = e.header();
        let num = |r: io::Result<Option<u32>>| {
            r.map(|v| v.unwrap_or(0))
                .map_err(|err| invalid(entry, format!("bad device number: {err}")))
        };
        let (file_type, dev) = match kind {
            EntryType::Char => (
                FileType::CharacterDevice,
                rfs::makedev(num(h.device_major())?, num(h.device_minor())?),
            ),
            EntryType::Block => (
                FileType::BlockDevice,
                rfs::makedev(num(h.device_major())?, num(h.device_minor())?),
            ),
            _ => (FileType::Fifo, 0),
        };
        let mode = Mode::from_raw_mode(0o600);
        match rfs::mknodat(parent, base, file_type, mode, dev) {
            Err(Errno::EXIST) => {
                self.remove(parent, base, entry)?;
                rfs::mknodat(parent, base, file_type, mode, dev)
            }
            r => r,
        }
        .map_err(io_err(entry, "creating the device node"))?;
        self.apply_at(parent, base, meta, true, entry)?;
        self.stats.devices += 1;
        Ok(())
    }

    fn whiteout(
        &mut self,
        parent: &OwnedFd,
        base: &[u8],
        meta: &Meta,
        entry: &str,
    ) -> Result<(), UnpackError> {
        if base == WHITEOUT_OPAQUE {
            rfs::fsetxattr(parent, OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(io_err(entry, "marking the directory opaque"))?;
            self.stats.whiteouts += 1;
            return Ok(());
        }
        // Other .wh..wh. names are AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs); Docker
        // drops them too.
        if base.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        let hidden = &base[WHITEOUT_PREFIX.len()..];
        // `.wh..` and `.wh...` would name the directory itself or its parent.
        if matches!(hidden, b"" | b"." | b"..") {
            return Err(invalid(entry, "whiteout of an invalid name"));
        }
        let whiteout =
            |p: &OwnedFd| rfs::mknodat(p, hidden, FileType::CharacterDevice, Mode::empty(), 0);
        match whiteout(parent) {
            Err(Errno::EXIST) => {
                self.remove(parent, hidden, entry)?;
                whiteout(parent)
            }
            r => r,
        }
        .map_err(io_err(entry, "creating the whiteout"))?;
        rfs::chownat(
            parent,
            hidden,
            Some(uid(meta)),
            Some(gid(meta)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io_err(entry, "changing the whiteout's owner"))?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// Owner, mode (`chmod`), xattrs and times of a just-created node that cannot be
    /// opened for writing (symlink, device, fifo), by name, never following it.
    fn apply_at(
        &self,
        parent: &OwnedFd,
        base: &[u8],
        meta: &Meta,
        chmod: bool,
        entry: &str,
    ) -> Result<(), UnpackError> {
        rfs::chownat(
            parent,
            base,
            Some(uid(meta)),
            Some(gid(meta)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io_err(entry, "changing the owner"))?;
        if chmod {
            // Not a symlink (we just made it), so following is moot; fchmodat has no
            // portable no-follow flag.
            rfs::chmodat(
                parent,
                base,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(io_err(entry, "changing the mode"))?;
        }
        if !meta.xattrs.is_empty() {
            let path = proc_path(parent, base);
            for (name, value) in &meta.xattrs {
                let r = rfs::lsetxattr(&path, name.as_slice(), value, XattrFlags::empty());
                // user.* xattrs are refused on symlinks and devices (EPERM): not data loss
                // anyone can observe, so skip like tar does.
                let r = match r {
                    Err(Errno::PERM) if name.starts_with(b"user.") => Ok(()),
                    r => r,
                };
                xattr_result(r).map_err(|e| xattr_error(entry, name, e))?;
            }
        }
        rfs::utimensat(parent, base, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_err(entry, "setting the times"))?;
        Ok(())
    }

    /// Applies the recorded directory metadata, now that no more children will be added.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        let mut dirs: Vec<(Vec<u8>, DirMeta)> =
            std::mem::take(&mut self.dirs).into_iter().collect();
        // Sorted, siblings share a parent and hit the resolution cache.
        dirs.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, meta) in dirs {
            let entry = String::from_utf8_lossy(&path).into_owned();
            let (parent_path, base) = split_last(&path);
            let parent = match self.dir(parent_path, false, &entry) {
                Ok(p) => p,
                // A later entry replaced a parent: this directory is gone.
                Err(UnpackError::Invalid { .. }) => continue,
                Err(e) => return Err(e),
            };
            let fd = match rfs::openat(
                &*parent,
                base,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(io_err(&entry, "opening the directory")(e)),
            };
            let st = rfs::fstat(&fd).map_err(io_err(&entry, "inspecting the directory"))?;
            if st.st_dev != meta.dev || st.st_ino != meta.ino {
                continue;
            }
            rfs::fchown(
                &fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(io_err(&entry, "changing the owner"))?;
            rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode))
                .map_err(io_err(&entry, "changing the mode"))?;
            let times = Timestamps {
                last_access: meta.atime,
                last_modification: meta.mtime,
            };
            rfs::futimens(&fd, &times).map_err(io_err(&entry, "setting the times"))?;
        }
        Ok(())
    }
}

fn uid(meta: &Meta) -> Uid {
    Uid::from_raw(meta.uid)
}

fn gid(meta: &Meta) -> Gid {
    Gid::from_raw(meta.gid)
}

/// A filesystem without xattr support (EOPNOTSUPP) loses them silently, as with tar and
/// containerd; anything else is an error.
fn xattr_result(r: Result<(), Errno>) -> Result<(), Errno> {
    match r {
        Err(Errno::OPNOTSUPP) => Ok(()),
        r => r,
    }
}

fn xattr_error(entry: &str, name: &[u8], e: Errno) -> UnpackError {
    UnpackError::Invalid {
        entry: entry.to_string(),
        reason: format!(
            "setting xattr {:?}: {}",
            String::from_utf8_lossy(name),
            io::Error::from(e)
        ),
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies with one large reused buffer: few, big writes (std::io::copy uses 8 KiB).
fn copy<R: Read>(from: &mut R, to: &mut File, buf: &mut [u8]) -> Result<u64, CopyError> {
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match from.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CopyError::Read(e)),
            }
        }
        if filled == 0 {
            return Ok(total);
        }
        to.write_all(&buf[..filled]).map_err(CopyError::Write)?;
        total += filled as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use tar::Header;

    fn header(kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_500_000_000);
        h
    }

    fn tmp() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("berth-unpack-")
            .tempdir_in("/var/tmp")
            .unwrap()
    }

    fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 256];
        let n = rfs::lgetxattr(p, name, &mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    #[test]
    fn clean_keeps_paths_under_the_root() {
        let c = |s: &str| String::from_utf8(clean(s.as_bytes())).unwrap();
        assert_eq!(c("a/b/c"), "a/b/c");
        assert_eq!(c("./a//b/./c/"), "a/b/c");
        assert_eq!(c("../x"), "x");
        assert_eq!(c("/abs/file"), "abs/file");
        assert_eq!(c("a/../../x"), "x");
        assert_eq!(c("a/b/../c"), "a/c");
        assert_eq!(c("./"), "");
        assert_eq!(c("/"), "");
        assert_eq!(c("../.."), "");
    }

    #[test]
    fn pax_times_parse_with_fractions_and_signs() {
        let t = |s: &str| pax_time(s.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(t("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(t("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(t("1.123456789123"), Some((1, 123_456_789)));
        assert_eq!(t("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(t("x"), None);
        assert_eq!(t("1.x"), None);
        assert_eq!(t(""), None);
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(
            &mut header(EntryType::Directory, 0o755, 0),
            "etc/",
            &b""[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 0),
            "etc/.wh.shadow",
            &b""[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Directory, 0o755, 0),
            "opq/",
            &b""[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 0),
            "opq/.wh..wh..opq",
            &b""[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 0),
            "opq/.wh..wh.plnk",
            &b""[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 1),
            "opq/kept",
            &b"k"[..],
        )
        .unwrap();
        let data = b.into_inner().unwrap();
        let dir = tmp();
        let stats = unpack(&data[..], dir.path()).unwrap();
        assert_eq!(stats.whiteouts, 2);
        assert_eq!(stats.files, 1);
        let wh = fs_meta(&dir.path().join("etc/shadow"));
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        assert!(!dir.path().join("etc/.wh.shadow").exists());
        assert_eq!(
            xattr(&dir.path().join("opq"), "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
        assert!(xattr(&dir.path().join("etc"), "trusted.overlay.opaque").is_none());
        let names: Vec<_> = std::fs::read_dir(dir.path().join("opq"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["kept"]);
    }

    fn fs_meta(p: &Path) -> std::fs::Metadata {
        std::fs::symlink_metadata(p).unwrap()
    }

    #[test]
    fn modes_owners_times_xattrs_and_special_files_are_kept() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(EntryType::Regular, 0o4755, 3);
        h.set_uid(1000);
        h.set_gid(1000);
        b.append_pax_extensions([
            ("mtime", &b"1600000000.25"[..]),
            ("atime", &b"1600000001.5"[..]),
            ("SCHILY.xattr.user.note", &b"hello"[..]),
            (
                "SCHILY.xattr.security.capability",
                &[
                    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ][..],
            ),
            ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
        ])
        .unwrap();
        b.append_data(&mut h, "bin/suid", &b"abc"[..]).unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o2711, 0),
            "bin/sgid",
            &b""[..],
        )
        .unwrap();
        let mut h = header(EntryType::Symlink, 0o777, 0);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_mtime(1_234_567_890);
        b.append_link(&mut h, "bin/link", "suid").unwrap();
        b.append_link(
            &mut header(EntryType::Link, 0o644, 0),
            "bin/hard",
            "bin/suid",
        )
        .unwrap();
        let mut h = header(EntryType::Fifo, 0o620, 0);
        h.set_uid(1000);
        b.append_data(&mut h, "dev/fifo", &b""[..]).unwrap();
        let mut h = header(EntryType::Char, 0o666, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(5).unwrap();
        b.append_data(&mut h, "dev/zero", &b""[..]).unwrap();
        b.append_data(
            &mut header(EntryType::Directory, 0o1777, 0),
            "tmp/",
            &b""[..],
        )
        .unwrap();
        let data = b.into_inner().unwrap();

        let dir = tmp();
        let root = dir.path();
        let stats = unpack(&data[..], root).unwrap();
        assert_eq!(
            stats,
            UnpackStats {
                files: 2,
                dirs: 1,
                symlinks: 1,
                hardlinks: 1,
                devices: 2,
                whiteouts: 0,
                bytes: 3,
            }
        );
        let m = fs_meta(&root.join("bin/suid"));
        assert_eq!(m.mode() & 0o7777, 0o4755);
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_000, 250_000_000));
        assert_eq!((m.atime(), m.atime_nsec()), (1_600_000_001, 500_000_000));
        assert_eq!(m.nlink(), 2);
        assert_eq!(m.ino(), fs_meta(&root.join("bin/hard")).ino());
        assert_eq!(
            xattr(&root.join("bin/suid"), "user.note").as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(
            xattr(&root.join("bin/suid"), "security.capability").map(|v| v.len()),
            Some(20)
        );
        assert!(xattr(&root.join("bin/suid"), "trusted.overlay.redirect").is_none());
        assert_eq!(fs_meta(&root.join("bin/sgid")).mode() & 0o7777, 0o2711);

        let l = fs_meta(&root.join("bin/link"));
        assert!(l.file_type().is_symlink());
        assert_eq!((l.uid(), l.gid()), (1000, 1001));
        assert_eq!(l.mtime(), 1_234_567_890);
        assert_eq!(
            std::fs::read_link(root.join("bin/link")).unwrap(),
            Path::new("suid")
        );

        let f = fs_meta(&root.join("dev/fifo"));
        assert!(f.file_type().is_fifo());
        assert_eq!(f.mode() & 0o7777, 0o620);
        assert_eq!(f.uid(), 1000);
        let z = fs_meta(&root.join("dev/zero"));
        assert!(z.file_type().is_char_device());
        assert_eq!(z.rdev(), rfs::makedev(1, 5));
        assert_eq!(fs_meta(&root.join("tmp")).mode() & 0o7777, 0o1777);
        // Parents the layer did not list are made 0755.
        assert_eq!(fs_meta(&root.join("bin")).mode() & 0o7777, 0o755);
    }

    #[test]
    fn directory_metadata_is_applied_after_children_even_when_listed_after_them() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(EntryType::Directory, 0o555, 0);
        h.set_mtime(1_000_000_000);
        h.set_uid(1000);
        b.append_data(&mut h, "ro/", &b""[..]).unwrap();
        b.append_data(&mut header(EntryType::Regular, 0o644, 1), "ro/f", &b"x"[..])
            .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 1),
            "late/child",
            &b"y"[..],
        )
        .unwrap();
        let mut h = header(EntryType::Directory, 0o750, 0);
        h.set_mtime(1_100_000_000);
        h.set_gid(1000);
        b.append_data(&mut h, "late/", &b""[..]).unwrap();
        let data = b.into_inner().unwrap();
        let dir = tmp();
        let stats = unpack(&data[..], dir.path()).unwrap();
        assert_eq!(stats.dirs, 2);
        let ro = fs_meta(&dir.path().join("ro"));
        assert_eq!(ro.mode() & 0o7777, 0o555);
        assert_eq!(ro.mtime(), 1_000_000_000);
        assert_eq!(ro.uid(), 1000);
        let late = fs_meta(&dir.path().join("late"));
        assert_eq!(late.mode() & 0o7777, 0o750);
        assert_eq!(late.mtime(), 1_100_000_000);
        assert_eq!(late.gid(), 1000);
        assert!(dir.path().join("late/child").is_file());
    }

    #[test]
    fn long_names_from_gnu_and_pax_headers() {
        let long_dir = format!("{}/{}", "d".repeat(200), "e".repeat(200));
        let long_file = format!("{long_dir}/{}", "f".repeat(250));
        let mut b = tar::Builder::new(Vec::new());
        // The tar crate writes a GNU long-name entry for this one.
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 2),
            &long_file,
            &b"hi"[..],
        )
        .unwrap();
        let pax_name = format!("{long_dir}/{}", "p".repeat(240));
        b.append_pax_extensions([("path", pax_name.as_bytes())])
            .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 2),
            "short",
            &b"yo"[..],
        )
        .unwrap();
        let target = format!("{}/{}", "t".repeat(150), "u".repeat(150));
        b.append_link(&mut header(EntryType::Symlink, 0o777, 0), "sym", &target)
            .unwrap();
        let data = b.into_inner().unwrap();
        let dir = tmp();
        unpack(&data[..], dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join(&long_file)).unwrap(), b"hi");
        assert_eq!(std::fs::read(dir.path().join(&pax_name)).unwrap(), b"yo");
        assert!(!dir.path().join("short").exists());
        assert_eq!(
            std::fs::read_link(dir.path().join("sym")).unwrap(),
            Path::new(&target)
        );
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut header(EntryType::Directory, 0o755, 0), "x/", &b""[..])
            .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 1),
            "x/inner",
            &b"1"[..],
        )
        .unwrap();
        b.append_data(&mut header(EntryType::Regular, 0o600, 2), "x", &b"22"[..])
            .unwrap();
        b.append_data(&mut header(EntryType::Regular, 0o644, 1), "y", &b"1"[..])
            .unwrap();
        b.append_data(&mut header(EntryType::Directory, 0o711, 0), "y/", &b""[..])
            .unwrap();
        b.append_data(&mut header(EntryType::Regular, 0o644, 1), "z", &b"1"[..])
            .unwrap();
        b.append_data(&mut header(EntryType::Regular, 0o644, 2), "z", &b"22"[..])
            .unwrap();
        let data = b.into_inner().unwrap();
        let dir = tmp();
        unpack(&data[..], dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"22");
        let y = fs_meta(&dir.path().join("y"));
        assert!(y.is_dir());
        assert_eq!(y.mode() & 0o7777, 0o711);
        assert_eq!(std::fs::read(dir.path().join("z")).unwrap(), b"22");
    }

    #[test]
    fn libarchive_xattrs_are_decoded() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("LIBARCHIVE.xattr.user.a%3Db", &b"aGVsbG8"[..])])
            .unwrap();
        b.append_data(&mut header(EntryType::Regular, 0o644, 0), "f", &b""[..])
            .unwrap();
        let data = b.into_inner().unwrap();
        let dir = tmp();
        unpack(&data[..], dir.path()).unwrap();
        assert_eq!(
            xattr(&dir.path().join("f"), "user.a=b").as_deref(),
            Some(&b"hello"[..])
        );
    }

    #[test]
    fn a_missing_target_is_a_clear_error() {
        let err = unpack(&[][..], Path::new("/nonexistent/berth-target")).unwrap_err();
        assert!(matches!(err, UnpackError::Target { .. }));
        assert!(err.to_string().contains("/nonexistent/berth-target"));
    }
}
