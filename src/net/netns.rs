//! Network namespaces kept as files (`<run_root>/netns/<id>`), so networking can be set up
//! before the container starts and shared by `network_mode: service:x`.
//!
//! No fork: the namespace is made on a short-lived dedicated thread (unshare(CLONE_NEWNET)
//! changes only the calling thread), which brings `lo` up, bind-mounts its
//! `/proc/thread-self/ns/net` onto the file and exits; the mount keeps the namespace alive.
//! Safe to call from the tokio daemon.

use std::fs::OpenOptions;
use std::io::{self, ErrorKind};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace {}: {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("network namespace {}: the file already exists", path.display())]
    Exists { path: PathBuf },
    #[error("network namespace {}: the setup thread panicked", path.display())]
    Thread { path: PathBuf },
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> NetnsError + 'a {
    move |source| NetnsError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

fn errno_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(nix::Error) -> NetnsError + 'a {
    move |e| NetnsError::Io {
        path: path.to_owned(),
        op,
        source: io::Error::from(e),
    }
}

/// Creates a new network namespace bind-mounted at `path` (parent dirs created) with `lo` up.
/// Done on a short-lived dedicated std::thread (unshare(CLONE_NEWNET) affects only that
/// thread; it then bind-mounts /proc/thread-self/ns/net onto `path` and exits) — safe to call
/// from the tokio daemon, no fork.
pub fn create(path: &Path) -> Result<(), NetnsError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent, "cannot create the directory"))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(NetnsError::Exists {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(io_err(path, "cannot create the file")(e)),
    }
    let target = path.to_owned();
    let outcome = std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || make_namespace(&target))
        .map_err(io_err(path, "cannot start the setup thread"))
        .and_then(|thread| {
            thread.join().unwrap_or_else(|_| {
                Err(NetnsError::Thread {
                    path: path.to_owned(),
                })
            })
        });
    if outcome.is_err() {
        let _ = remove(path);
    }
    outcome
}

/// Runs on its own thread, which it leaves in the new namespace (the thread then ends).
fn make_namespace(path: &Path) -> Result<(), NetnsError> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(errno_err(path, "unshare(CLONE_NEWNET)"))?;
    loopback_up().map_err(io_err(path, "bringing lo up"))?;
    mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(errno_err(path, "bind-mounting the namespace"))
}

/// `ip link set lo up`, through the classic interface-flags ioctl (the kernel then gives lo
/// 127.0.0.1/8 and ::1 by itself).
fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `req`, which outlives the calls.
    unsafe {
        if libc::ioctl(raw, libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(raw, libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Unmounts (MNT_DETACH) and deletes the file; Ok if already gone.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    // Stacked mounts (a create raced with another) come off one per call.
    for _ in 0..8 {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            // EINVAL: not a mount point (any more); ENOENT: no file.
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => break,
            Err(e) => return Err(errno_err(path, "unmounting")(e)),
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, "deleting the file")(e)),
    }
}
