//! The syscall seam (youki style): everything that changes the container's view of the
//! system — mounts, pivot_root, namespaces, hostname, device nodes — goes through
//! [`Syscalls`], so the ORDER of container setup is unit-testable without root against
//! [`Recording`]; [`Linux`] is the real thing, exercised by the integration tests.

use std::cell::RefCell;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use rustix::fs::{Mode, OFlags, ResolveFlags};

/// What to do when a path resolved inside the container's root does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Nothing: ENOENT.
    No,
    /// Make missing directories, the last one included (mode 0755).
    Dir,
    /// Make missing parent directories and an empty file (mode 0644) as the last component.
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    Other,
}

/// A path resolved inside a root: an `O_PATH` descriptor (so later mounts cannot be
/// redirected by a symlink swapped in by the image) plus the path to show in errors.
#[derive(Debug)]
pub struct Target {
    fd: Option<OwnedFd>,
    shown: PathBuf,
    pub kind: FileKind,
}

impl Target {
    /// The path to hand to mount(2): `/proc/self/fd/N` for a real descriptor.
    pub fn path(&self) -> PathBuf {
        match &self.fd {
            Some(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            None => self.shown.clone(),
        }
    }

    pub fn shown(&self) -> &Path {
        &self.shown
    }
}

/// The kernel calls container setup is made of.
pub trait Syscalls {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// An overlay built with the new mount API, one `lowerdir+` per layer (no one-page limit
    /// on the option string), moved onto `target`.
    fn mount_overlay_layers(
        &self,
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> io::Result<()>;
    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    fn chdir(&self, path: &Path) -> io::Result<()>;
    fn setns(&self, fd: BorrowedFd<'_>, kind: CloneFlags) -> io::Result<()>;
    fn unshare(&self, flags: CloneFlags) -> io::Result<()>;
    fn sethostname(&self, name: &str) -> io::Result<()>;
    fn setdomainname(&self, name: &str) -> io::Result<()>;
    /// `path` (absolute, inside `root`) resolved without leaving `root`: symlinks are
    /// followed as if `root` were `/`.
    fn resolve(&self, root: &Path, path: &str, create: Create) -> io::Result<Target>;
    /// A character device `name` in the directory `dir`.
    fn mknod(&self, dir: &Target, name: &str, mode: u32, major: u64, minor: u64) -> io::Result<()>;
    fn symlink(&self, dir: &Target, name: &str, points_to: &str) -> io::Result<()>;
    /// A host directory, created with its parents (all with `mode`, exactly: the caller's
    /// umask is 0) when missing; an existing one is left as it is.
    fn create_host_dir(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Whether a host path (a bind source) is a directory; ENOENT when it does not exist.
    fn host_kind(&self, path: &Path) -> io::Result<FileKind>;
    /// The mount flags (`MS_RDONLY`, `MS_NOSUID`, ...) of the mount holding `path`, to keep
    /// them on a read-only remount.
    fn mount_flags(&self, path: &Path) -> io::Result<MsFlags>;
}

/// The real kernel.
pub struct Linux;

fn nix_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a string"))
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(rc: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(rc)?;
    // SAFETY: the syscall just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl Linux {
    fn fsconfig_string(fs: &OwnedFd, key: &str, value: &Path) -> io::Result<()> {
        let k = cstr(key)?;
        let v = cpath(value)?;
        // SAFETY: valid descriptor and NUL-terminated strings that outlive the call.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                libc::FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        })
        .map(drop)
    }

    fn open_in_root(root: &OwnedFd, path: &Path) -> io::Result<OwnedFd> {
        rustix::fs::openat2(
            root,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(io::Error::from)
    }
}

fn kind_of(fd: &OwnedFd) -> io::Result<FileKind> {
    let st = rustix::fs::fstat(fd).map_err(io::Error::from)?;
    Ok(
        if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
            FileKind::Dir
        } else {
            FileKind::Other
        },
    )
}

/// The path relative to `/`, without `.`/`..` games (those are resolved by openat2 inside
/// the root anyway; this only drops the leading `/`).
fn relative(path: &str) -> PathBuf {
    Path::new(path)
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect()
}

impl Syscalls for Linux {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).map_err(nix_err)
    }

    fn mount_overlay_layers(
        &self,
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> io::Result<()> {
        let name = cstr("overlay")?;
        // SAFETY: NUL-terminated name; returns a new descriptor or -1.
        let fs =
            owned(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), libc::FSOPEN_CLOEXEC) })?;
        for lower in lowers {
            Linux::fsconfig_string(&fs, "lowerdir+", lower)?;
        }
        Linux::fsconfig_string(&fs, "upperdir", upper)?;
        Linux::fsconfig_string(&fs, "workdir", work)?;
        // SAFETY: valid descriptor, no key/value for CMD_CREATE.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                libc::FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        })?;
        // SAFETY: valid descriptor; returns a new mount descriptor or -1.
        let mnt = owned(unsafe {
            libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), libc::FSMOUNT_CLOEXEC, 0)
        })?;
        let empty = cstr("")?;
        let to = cpath(target)?;
        // SAFETY: valid descriptors and NUL-terminated paths.
        check(unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                mnt.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH,
            )
        })
        .map(drop)
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        nix::mount::umount2(target, flags).map_err(nix_err)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        nix::unistd::pivot_root(new_root, put_old).map_err(nix_err)
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        nix::unistd::chdir(path).map_err(nix_err)
    }

    fn setns(&self, fd: BorrowedFd<'_>, kind: CloneFlags) -> io::Result<()> {
        nix::sched::setns(fd, kind).map_err(nix_err)
    }

    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        nix::sched::unshare(flags).map_err(nix_err)
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(nix_err)
    }

    fn setdomainname(&self, name: &str) -> io::Result<()> {
        // SAFETY: pointer and length describe `name`, which outlives the call.
        check(unsafe { libc::syscall(libc::SYS_setdomainname, name.as_ptr(), name.len()) })
            .map(drop)
    }

    fn resolve(&self, root: &Path, path: &str, create: Create) -> io::Result<Target> {
        let root_fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        let rel = relative(path);
        let shown = root.join(&rel);
        let found = if rel.as_os_str().is_empty() {
            rustix::fs::openat(&root_fd, ".", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .map_err(io::Error::from)
        } else {
            Linux::open_in_root(&root_fd, &rel)
        };
        let fd = match found {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound && create != Create::No => {
                // Walk down, making what is missing; each step is resolved inside the root
                // so a symlink in the image cannot send us outside it.
                let parts: Vec<Component> = rel.components().collect();
                let mut prefix = PathBuf::new();
                for (i, part) in parts.iter().enumerate() {
                    let parent = if prefix.as_os_str().is_empty() {
                        rustix::fs::openat(
                            &root_fd,
                            ".",
                            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(io::Error::from)?
                    } else {
                        Linux::open_in_root(&root_fd, &prefix)?
                    };
                    prefix.push(part);
                    match Linux::open_in_root(&root_fd, &prefix) {
                        Ok(_) => continue,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                    // O_PATH descriptors cannot be used for *at creation calls; reopen.
                    let dir = rustix::fs::openat(
                        &parent,
                        ".",
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io::Error::from)?;
                    let last = i + 1 == parts.len();
                    let made = if last && create == Create::File {
                        rustix::fs::openat(
                            &dir,
                            part.as_os_str(),
                            OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::WRONLY
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o644),
                        )
                        .map(drop)
                    } else {
                        rustix::fs::mkdirat(&dir, part.as_os_str(), Mode::from_raw_mode(0o755))
                    };
                    match made {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Linux::open_in_root(&root_fd, &rel)?
            }
            Err(e) => return Err(e),
        };
        let kind = kind_of(&fd)?;
        Ok(Target {
            fd: Some(fd),
            shown,
            kind,
        })
    }

    fn mknod(&self, dir: &Target, name: &str, mode: u32, major: u64, minor: u64) -> io::Result<()> {
        let path = dir.path().join(name);
        let p = cpath(&path)?;
        // SAFETY: NUL-terminated path that outlives the call.
        let rc = unsafe {
            libc::mknod(
                p.as_ptr(),
                libc::S_IFCHR | mode,
                libc::makedev(major as u32, minor as u32),
            )
        };
        check(rc as libc::c_long).map(drop)
    }

    fn symlink(&self, dir: &Target, name: &str, points_to: &str) -> io::Result<()> {
        std::os::unix::fs::symlink(points_to, dir.path().join(name))
    }

    fn create_host_dir(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
    }

    fn host_kind(&self, path: &Path) -> io::Result<FileKind> {
        Ok(if std::fs::metadata(path)?.is_dir() {
            FileKind::Dir
        } else {
            FileKind::Other
        })
    }

    fn mount_flags(&self, path: &Path) -> io::Result<MsFlags> {
        let st = nix::sys::statvfs::statvfs(path).map_err(nix_err)?;
        Ok(statvfs_to_ms(st.flags()))
    }
}

fn statvfs_to_ms(f: nix::sys::statvfs::FsFlags) -> MsFlags {
    use nix::sys::statvfs::FsFlags as F;
    let pairs = [
        (F::ST_RDONLY, MsFlags::MS_RDONLY),
        (F::ST_NOSUID, MsFlags::MS_NOSUID),
        (F::ST_NODEV, MsFlags::MS_NODEV),
        (F::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (F::ST_NOATIME, MsFlags::MS_NOATIME),
        (F::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (F::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(s, _)| f.contains(*s))
        .fold(MsFlags::empty(), |acc, (_, m)| acc | *m)
}

/// One recorded call, rendered for order assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<String>,
        target: String,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    OverlayLayers {
        lowers: usize,
        target: String,
    },
    Umount(String),
    PivotRoot(String, String),
    Chdir(String),
    Setns(CloneFlags),
    Unshare(CloneFlags),
    Sethostname(String),
    Setdomainname(String),
    Resolve(String, Create),
    Mknod(String),
    Symlink(String, String),
    CreateHostDir(String),
}

/// Records every call and succeeds, for unit tests of the setup order. Paths listed in
/// `files` resolve as files, everything else as a directory; paths in `missing` are ENOENT
/// when resolved without `Create`.
#[derive(Default)]
pub struct Recording {
    pub calls: RefCell<Vec<Call>>,
    pub files: Vec<String>,
    pub missing: Vec<String>,
}

impl Recording {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    fn push(&self, c: Call) {
        self.calls.borrow_mut().push(c);
    }
}

fn show(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl Syscalls for Recording {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        self.push(Call::Mount {
            source: source.map(show),
            target: show(target),
            fstype: fstype.map(String::from),
            flags,
            data: data.map(String::from),
        });
        Ok(())
    }

    fn mount_overlay_layers(
        &self,
        lowers: &[PathBuf],
        _upper: &Path,
        _work: &Path,
        target: &Path,
    ) -> io::Result<()> {
        self.push(Call::OverlayLayers {
            lowers: lowers.len(),
            target: show(target),
        });
        Ok(())
    }

    fn umount(&self, target: &Path, _flags: MntFlags) -> io::Result<()> {
        self.push(Call::Umount(show(target)));
        Ok(())
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        self.push(Call::PivotRoot(show(new_root), show(put_old)));
        Ok(())
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        self.push(Call::Chdir(show(path)));
        Ok(())
    }

    fn setns(&self, _fd: BorrowedFd<'_>, kind: CloneFlags) -> io::Result<()> {
        self.push(Call::Setns(kind));
        Ok(())
    }

    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        self.push(Call::Unshare(flags));
        Ok(())
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        self.push(Call::Sethostname(name.into()));
        Ok(())
    }

    fn setdomainname(&self, name: &str) -> io::Result<()> {
        self.push(Call::Setdomainname(name.into()));
        Ok(())
    }

    fn resolve(&self, root: &Path, path: &str, create: Create) -> io::Result<Target> {
        self.push(Call::Resolve(path.into(), create));
        if create == Create::No && self.missing.iter().any(|m| m == path) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let is_file = create == Create::File || self.files.iter().any(|f| f == path);
        Ok(Target {
            fd: None,
            shown: root.join(relative(path)),
            kind: if is_file {
                FileKind::Other
            } else {
                FileKind::Dir
            },
        })
    }

    fn mknod(
        &self,
        dir: &Target,
        name: &str,
        _mode: u32,
        _major: u64,
        _minor: u64,
    ) -> io::Result<()> {
        self.push(Call::Mknod(show(&dir.shown.join(name))));
        Ok(())
    }

    fn symlink(&self, dir: &Target, name: &str, points_to: &str) -> io::Result<()> {
        self.push(Call::Symlink(show(&dir.shown.join(name)), points_to.into()));
        Ok(())
    }

    fn create_host_dir(&self, path: &Path, _mode: u32) -> io::Result<()> {
        self.push(Call::CreateHostDir(show(path)));
        Ok(())
    }

    fn host_kind(&self, path: &Path) -> io::Result<FileKind> {
        Ok(if self.files.iter().any(|f| Path::new(f) == path) {
            FileKind::Other
        } else {
            FileKind::Dir
        })
    }

    fn mount_flags(&self, _path: &Path) -> io::Result<MsFlags> {
        Ok(MsFlags::empty())
    }
}
