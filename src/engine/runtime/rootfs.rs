//! The container's filesystem, in the order runc builds it: a private mount tree, the overlay
//! root, the standard mounts (/proc, /dev and its nodes, /dev/pts, /dev/shm, /dev/mqueue,
//! /sys, /sys/fs/cgroup), the /etc files, the user's mounts, pivot_root, then the masked and
//! read-only paths and a read-only root. Every target inside the root is resolved without
//! leaving it (openat2 RESOLVE_IN_ROOT) and mounted through its descriptor.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::spec::{ContainerSpec, MountKind, MountSpec, NetworkNamespace};
use super::sync::ChildError;
use super::syscalls::{Create, FileKind, Syscalls, Target};

/// Docker's default masked paths (moby's `oci.DefaultSpec`), for non-privileged containers.
pub const DOCKER_MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's default read-only paths, for non-privileged containers.
pub const DOCKER_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// mount(2) copies at most one page of option data.
const MOUNT_DATA_MAX: usize = 4095;

/// A cgroup hierarchy of the host, to mount again inside the container's cgroup namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// The directory name under /sys/fs/cgroup (`memory`, `unified`; empty for a v2-only
    /// host where the hierarchy is /sys/fs/cgroup itself).
    pub name: String,
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    /// The controllers (`memory`, `cpu`, `name=systemd`); empty for cgroup2.
    pub options: String,
}

/// The host's cgroup hierarchies mounted under /sys/fs/cgroup, from a mountinfo text.
pub fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        // <id> <parent> <maj:min> <root> <mount point> <opts> [optional...] - <fstype> <src> <super>
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rest: Vec<&str> = right.split(' ').collect();
        if fields.len() < 5 || rest.len() < 3 {
            continue;
        }
        let (point, fstype, sup) = (fields[4], rest[0], rest[2]);
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let name = if point == "/sys/fs/cgroup" {
            String::new()
        } else if let Some(n) = point.strip_prefix("/sys/fs/cgroup/") {
            if n.contains('/') {
                continue;
            }
            n.to_string()
        } else {
            continue;
        };
        let options = if fstype == "cgroup" {
            sup.split(',')
                .filter(|o| {
                    !matches!(*o, "rw" | "ro" | "relatime")
                        && !o.starts_with("release_agent")
                        && *o != "clone_children"
                        && *o != "xattr"
                })
                .collect::<Vec<_>>()
                .join(",")
        } else {
            String::new()
        };
        if out.iter().any(|m: &CgroupMount| m.name == name) {
            continue;
        }
        out.push(CgroupMount {
            name,
            fstype: fstype.to_string(),
            options,
        });
    }
    out
}

fn fail(what: impl std::fmt::Display, e: io::Error) -> ChildError {
    ChildError::setup(format!("{what}: {e}"))
}

/// The overlay option string's escaping: `\`, `,` and `:` are separators to overlayfs.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn overlay_data(lowers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = lowers.iter().map(|l| escape(l)).collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        escape(upper),
        escape(work)
    )
}

fn common_parent(paths: &[PathBuf]) -> Option<PathBuf> {
    let mut common = paths.first()?.parent()?.to_path_buf();
    for p in paths.iter().skip(1) {
        while !p.starts_with(&common) {
            common = common.parent()?.to_path_buf();
        }
    }
    Some(common)
}

/// Where the overlay is mounted on the host path tree (inside the container's namespace).
pub fn rootfs_path(spec: &ContainerSpec) -> PathBuf {
    spec.bundle.join("rootfs")
}

fn mount_overlay(
    sys: &dyn Syscalls,
    spec: &ContainerSpec,
    rootfs: &Path,
) -> Result<(), ChildError> {
    let r = &spec.rootfs;
    for dir in [&r.upper, &r.work, &rootfs.to_path_buf()] {
        sys.create_host_dir(dir)
            .map_err(|e| fail(format_args!("create {}", dir.display()), e))?;
    }
    let mut lowers = r.lower.clone();
    if lowers.is_empty() {
        // overlayfs needs a lower layer; a scratch image gets an empty one.
        let empty = spec.state_dir.join("fs").join("empty");
        sys.create_host_dir(&empty)
            .map_err(|e| fail(format_args!("create {}", empty.display()), e))?;
        lowers.push(empty);
    }
    let what = || format!("mount the overlay root at {}", rootfs.display());
    let data = overlay_data(&lowers, &r.upper, &r.work);
    if data.len() <= MOUNT_DATA_MAX {
        return sys
            .mount(
                Some(Path::new("overlay")),
                rootfs,
                Some("overlay"),
                MsFlags::empty(),
                Some(&data),
            )
            .map_err(|e| fail(what(), e));
    }
    // Too long for one page: lower dirs relative to their common parent, as Docker does.
    if let Some(parent) = common_parent(&lowers) {
        let rel: Vec<PathBuf> = lowers
            .iter()
            .filter_map(|l| l.strip_prefix(&parent).ok().map(Path::to_path_buf))
            .collect();
        let data = overlay_data(&rel, &r.upper, &r.work);
        if rel.len() == lowers.len() && data.len() <= MOUNT_DATA_MAX {
            sys.chdir(&parent)
                .map_err(|e| fail(format_args!("chdir {}", parent.display()), e))?;
            let res = sys.mount(
                Some(Path::new("overlay")),
                rootfs,
                Some("overlay"),
                MsFlags::empty(),
                Some(&data),
            );
            sys.chdir(Path::new("/")).map_err(|e| fail("chdir /", e))?;
            return res.map_err(|e| fail(what(), e));
        }
    }
    // Still too long: one `lowerdir+` per layer through the new mount API (Linux 6.8+).
    sys.mount_overlay_layers(&lowers, &r.upper, &r.work, rootfs)
        .map_err(|e| {
            fail(
                format_args!("{} ({} layers, with lowerdir+)", what(), lowers.len()),
                e,
            )
        })
}

fn resolve(
    sys: &dyn Syscalls,
    root: &Path,
    path: &str,
    create: Create,
) -> Result<Target, ChildError> {
    sys.resolve(root, path, create)
        .map_err(|e| fail(format_args!("resolve {path} in the container's root"), e))
}

fn mount_at(
    sys: &dyn Syscalls,
    target: &Target,
    source: Option<&Path>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), ChildError> {
    sys.mount(source, &target.path(), fstype, flags, data)
        .map_err(|e| {
            fail(
                format_args!(
                    "mount {} ({}) on {}",
                    source.map(|s| s.display().to_string()).unwrap_or_default(),
                    fstype.unwrap_or("bind"),
                    target.shown().display()
                ),
                e,
            )
        })
}

/// A read-only remount of the mount at `path` (resolved afresh: a descriptor taken before
/// the mount points below it), keeping its other flags (nosuid, nodev, noexec).
fn remount_ro(sys: &dyn Syscalls, root: &Path, path: &str) -> Result<(), ChildError> {
    let target = resolve(sys, root, path, Create::No)?;
    let path = target.path();
    let keep = sys
        .mount_flags(&path)
        .map_err(|e| fail(format_args!("statvfs {}", target.shown().display()), e))?;
    sys.mount(
        None,
        &path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
        None,
    )
    .map_err(|e| {
        fail(
            format_args!("remount {} read-only", target.shown().display()),
            e,
        )
    })
}

const NOSUID_NOEXEC_NODEV: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NODEV);

/// The device nodes every container gets (name, major, minor), as runc's defaults.
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const DEV_LINKS: [(&str, &str); 6] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

fn mount_dev(sys: &dyn Syscalls, spec: &ContainerSpec, root: &Path) -> Result<(), ChildError> {
    let dev = resolve(sys, root, "/dev", Create::Dir)?;
    mount_at(
        sys,
        &dev,
        Some(Path::new("tmpfs")),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    // Re-resolve: the descriptor from before the mount points below it.
    let dev = resolve(sys, root, "/dev", Create::No)?;
    for (name, major, minor) in DEVICES {
        sys.mknod(&dev, name, 0o666, major, minor)
            .map_err(|e| fail(format_args!("mknod /dev/{name}"), e))?;
    }
    for (name, to) in DEV_LINKS {
        sys.symlink(&dev, name, to)
            .map_err(|e| fail(format_args!("symlink /dev/{name}"), e))?;
    }
    let pts = resolve(sys, root, "/dev/pts", Create::Dir)?;
    mount_at(
        sys,
        &pts,
        Some(Path::new("devpts")),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = resolve(sys, root, "/dev/shm", Create::Dir)?;
    if spec.namespaces.ipc_host {
        // Sharing the host's IPC means its POSIX shared memory too (Docker's `ipc: host`).
        mount_at(
            sys,
            &shm,
            Some(Path::new("/dev/shm")),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
    } else {
        let shm_data = format!("mode=1777,size={}", spec.shm_size);
        mount_at(
            sys,
            &shm,
            Some(Path::new("shm")),
            Some("tmpfs"),
            NOSUID_NOEXEC_NODEV,
            Some(&shm_data),
        )?;
    }
    let mq = resolve(sys, root, "/dev/mqueue", Create::Dir)?;
    mount_at(
        sys,
        &mq,
        Some(Path::new("mqueue")),
        Some("mqueue"),
        NOSUID_NOEXEC_NODEV,
        None,
    )
}

fn mount_sys(
    sys: &dyn Syscalls,
    spec: &ContainerSpec,
    root: &Path,
    cgroups: &[CgroupMount],
) -> Result<(), ChildError> {
    let ro = if spec.privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    let target = resolve(sys, root, "/sys", Create::Dir)?;
    if spec.namespaces.network == NetworkNamespace::Host {
        // sysfs shows the mounting process's network namespace; in the host's, bind the
        // host's own /sys (read-only) instead.
        mount_at(
            sys,
            &target,
            Some(Path::new("/sys")),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        if !spec.privileged {
            remount_ro(sys, root, "/sys")?;
        }
    } else {
        mount_at(
            sys,
            &target,
            Some(Path::new("sysfs")),
            Some("sysfs"),
            NOSUID_NOEXEC_NODEV | ro,
            None,
        )?;
    }
    if cgroups.is_empty() {
        return Ok(());
    }
    let base = resolve(sys, root, "/sys/fs/cgroup", Create::No)?;
    if cgroups.len() == 1 && cgroups[0].name.is_empty() {
        // v2 only: the container's cgroup namespace root, directly.
        return mount_at(
            sys,
            &base,
            Some(Path::new("cgroup2")),
            Some("cgroup2"),
            NOSUID_NOEXEC_NODEV | ro,
            None,
        );
    }
    mount_at(
        sys,
        &base,
        Some(Path::new("tmpfs")),
        Some("tmpfs"),
        NOSUID_NOEXEC_NODEV,
        Some("mode=755"),
    )?;
    for cg in cgroups.iter().filter(|c| !c.name.is_empty()) {
        let dir = resolve(
            sys,
            root,
            &format!("/sys/fs/cgroup/{}", cg.name),
            Create::Dir,
        )?;
        let opts = (!cg.options.is_empty()).then_some(cg.options.as_str());
        mount_at(
            sys,
            &dir,
            Some(Path::new("cgroup")),
            Some(&cg.fstype),
            NOSUID_NOEXEC_NODEV | ro,
            opts,
        )?;
    }
    if !spec.privileged {
        remount_ro(sys, root, "/sys/fs/cgroup")?;
    }
    Ok(())
}

fn bind_etc_files(sys: &dyn Syscalls, spec: &ContainerSpec, root: &Path) -> Result<(), ChildError> {
    let files = [
        (&spec.etc_hosts, "/etc/hosts"),
        (&spec.etc_hostname, "/etc/hostname"),
        (&spec.etc_resolv_conf, "/etc/resolv.conf"),
    ];
    for (source, target) in files {
        let Some(source) = source else { continue };
        let t = resolve(sys, root, target, Create::File)?;
        mount_at(sys, &t, Some(source), None, MsFlags::MS_BIND, None)?;
    }
    Ok(())
}

fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        _ => return None,
    })
}

fn user_mount(sys: &dyn Syscalls, m: &MountSpec, root: &Path) -> Result<(), ChildError> {
    match &m.kind {
        MountKind::Bind {
            source,
            propagation: prop,
        } => {
            let kind = sys.host_kind(source).map_err(|e| {
                ChildError::setup(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {} ({e})",
                    source.display()
                ))
            })?;
            let create = if kind == FileKind::Dir {
                Create::Dir
            } else {
                Create::File
            };
            let t = resolve(sys, root, &m.target, create)?;
            mount_at(
                sys,
                &t,
                Some(source),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            if m.read_only {
                remount_ro(sys, root, &m.target)?;
            }
            if let Some(p) = prop {
                let flags = propagation(p).ok_or_else(|| {
                    ChildError::setup(format!(
                        "mount {}: unknown bind propagation {p:?}",
                        m.target
                    ))
                })?;
                let t = resolve(sys, root, &m.target, Create::No)?;
                mount_at(sys, &t, None, None, flags, None)?;
            }
            Ok(())
        }
        MountKind::Tmpfs { size, mode } => {
            let t = resolve(sys, root, &m.target, Create::Dir)?;
            let mut opts = Vec::new();
            if let Some(size) = size {
                opts.push(format!("size={size}"));
            }
            if let Some(mode) = mode {
                opts.push(format!("mode={mode:o}"));
            }
            let data = opts.join(",");
            let ro = if m.read_only {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
            mount_at(
                sys,
                &t,
                Some(Path::new("tmpfs")),
                Some("tmpfs"),
                NOSUID_NOEXEC_NODEV | ro,
                (!data.is_empty()).then_some(data.as_str()),
            )
        }
    }
}

/// Everything before pivot_root, in the container's fresh mount namespace: returns the new
/// root's host path.
pub fn prepare(
    sys: &dyn Syscalls,
    spec: &ContainerSpec,
    cgroups: &[CgroupMount],
) -> Result<PathBuf, ChildError> {
    // Nothing we mount may propagate back to the host.
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
    .map_err(|e| fail("make / rprivate", e))?;
    let root = rootfs_path(spec);
    mount_overlay(sys, spec, &root)?;
    let proc_ = resolve(sys, &root, "/proc", Create::Dir)?;
    mount_at(
        sys,
        &proc_,
        Some(Path::new("proc")),
        Some("proc"),
        NOSUID_NOEXEC_NODEV,
        None,
    )?;
    mount_dev(sys, spec, &root)?;
    mount_sys(sys, spec, &root, cgroups)?;
    bind_etc_files(sys, spec, &root)?;
    for m in &spec.mounts {
        user_mount(sys, m, &root)?;
    }
    Ok(root)
}

/// runc's pivot_root(".", "."): the old root ends up stacked on the new one and is detached.
pub fn pivot(sys: &dyn Syscalls, root: &Path) -> Result<(), ChildError> {
    sys.chdir(root)
        .map_err(|e| fail(format_args!("chdir {}", root.display()), e))?;
    sys.pivot_root(Path::new("."), Path::new("."))
        .map_err(|e| fail(format_args!("pivot_root {}", root.display()), e))?;
    sys.umount(Path::new("."), MntFlags::MNT_DETACH)
        .map_err(|e| fail("detach the old root", e))?;
    sys.chdir(Path::new("/")).map_err(|e| fail("chdir /", e))
}

/// After pivot_root (and after sysctls, which live under the read-only /proc/sys): the
/// read-only paths, the masked paths, and the read-only root.
pub fn finalize(sys: &dyn Syscalls, spec: &ContainerSpec) -> Result<(), ChildError> {
    let root = Path::new("/");
    for path in &spec.readonly_paths {
        let t = match sys.resolve(root, path, Create::No) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(fail(format_args!("resolve {path}"), e)),
        };
        mount_at(
            sys,
            &t,
            Some(&t.path()),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        remount_ro(sys, root, path)?;
    }
    for path in &spec.masked_paths {
        let t = match sys.resolve(root, path, Create::No) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(fail(format_args!("resolve {path}"), e)),
        };
        if t.kind == FileKind::Dir {
            mount_at(
                sys,
                &t,
                Some(Path::new("tmpfs")),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )?;
        } else {
            mount_at(
                sys,
                &t,
                Some(Path::new("/dev/null")),
                None,
                MsFlags::MS_BIND,
                None,
            )?;
        }
    }
    if spec.rootfs.read_only {
        sys.mount(
            None,
            root,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )
        .map_err(|e| fail("remount / read-only", e))?;
    }
    Ok(())
}
