//! Container cgroups, youki-style: one [`Cgroups`] enum of back-ends chosen once by probing
//! `/proc/self/mountinfo`, each creating `berth/<id>` under its hierarchy ROOTS (never
//! relative to our own cgroup: the daemon may itself sit in a limited sub-cgroup).
//!
//! - [`v1::V1`]: legacy or hybrid. Limits go to the v1 controllers; when a `cgroup2` mount
//!   also exists (hybrid, e.g. `/sys/fs/cgroup/unified`), the container joins it too, for
//!   membership and its atomic `cgroup.kill`.
//! - [`v2::V2`]: unified only. Limits go to the v2 files, controllers are enabled in the
//!   parents' `cgroup.subtree_control`.

pub mod v1;
pub mod v2;

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use super::spec::CgroupSpec;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read /proc/self/mountinfo: {0}")]
    Mountinfo(std::io::Error),
    #[error("no cgroup filesystem is mounted (nothing of type cgroup or cgroup2 in /proc/self/mountinfo)")]
    NotMounted,
    #[error("invalid cgroup path {0:?}: must be relative, non-empty, without `.` or `..`")]
    InvalidPath(String),
    #[error("cgroup {}: cannot create: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup {}: cannot set {value:?}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cgroup {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup {}: unexpected content: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("cgroup {}: cannot remove: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup {}: {count} process(es) still running after SIGKILL", path.display())]
    StillRunning { path: PathBuf, count: usize },
}

/// The cgroup back-end of this machine.
#[derive(Debug, Clone)]
pub enum Cgroups {
    V1(v1::V1),
    V2(v2::V2),
}

impl Cgroups {
    /// Reads `/proc/self/mountinfo`: any v1 hierarchy means v1 (hybrid when a cgroup2 mount
    /// exists too); a cgroup2 mount alone means v2.
    pub fn probe() -> Result<Cgroups, CgroupError> {
        let text =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(CgroupError::Mountinfo)?;
        Self::from_mountinfo(&text)
    }

    /// [`Cgroups::probe`] on a given mountinfo text (unit-testable).
    pub fn from_mountinfo(text: &str) -> Result<Cgroups, CgroupError> {
        let mut hierarchies: Vec<v1::Hierarchy> = Vec::new();
        let mut unified: Option<PathBuf> = None;
        let mut seen_devices: Vec<&str> = Vec::new();
        for mount in text.lines().filter_map(parse_mountinfo_line) {
            // The same hierarchy can be mounted twice (bind mounts): keep the first.
            if seen_devices.contains(&mount.device) {
                continue;
            }
            match mount.fstype {
                "cgroup2" => {
                    seen_devices.push(mount.device);
                    unified.get_or_insert(mount.mountpoint);
                }
                "cgroup" => {
                    let controllers: Vec<String> = mount
                        .super_options
                        .split(',')
                        .filter(|o| is_v1_controller(o))
                        .map(str::to_owned)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    seen_devices.push(mount.device);
                    hierarchies.push(v1::Hierarchy {
                        mountpoint: mount.mountpoint,
                        controllers,
                    });
                }
                _ => {}
            }
        }
        match (hierarchies.is_empty(), unified) {
            (false, unified) => Ok(Cgroups::V1(v1::V1 {
                hierarchies,
                unified,
            })),
            (true, Some(root)) => Ok(Cgroups::V2(v2::V2 { root })),
            (true, None) => Err(CgroupError::NotMounted),
        }
    }

    /// Creates `spec.path` (e.g. `berth/<id>`) in every hierarchy and applies the limits.
    /// Creating an existing cgroup is not an error (limits are re-applied).
    pub fn create(&self, spec: &CgroupSpec, privileged: bool) -> Result<Cgroup, CgroupError> {
        validate_path(&spec.path)?;
        let inner = match self {
            Cgroups::V1(v) => Inner::V1(v.create(spec, privileged)?),
            Cgroups::V2(v) => Inner::V2(v.create(spec)?),
        };
        Ok(Cgroup { inner })
    }

    /// Re-opens an existing cgroup (exec, top, a later daemon). Nothing is checked here; the
    /// operations report a missing cgroup.
    pub fn open(&self, path: &str) -> Cgroup {
        let inner = match self {
            Cgroups::V1(v) => Inner::V1(v.open(path)),
            Cgroups::V2(v) => Inner::V2(v.open(path)),
        };
        Cgroup { inner }
    }

    /// `"v1"` (with `"+unified"` in hybrid mode) or `"v2"`, for `docker info`-style output.
    pub fn version(&self) -> &'static str {
        match self {
            Cgroups::V1(v) if v.unified.is_some() => "v1+unified",
            Cgroups::V1(_) => "v1",
            Cgroups::V2(_) => "v2",
        }
    }
}

/// What every back-end's cgroup can do (the youki-style seam).
pub trait Manager {
    fn add(&self, pid: i32) -> Result<(), CgroupError>;
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    fn oom_killed(&self) -> Result<bool, CgroupError>;
    fn kill_all(&self) -> Result<(), CgroupError>;
    fn remove(&self) -> Result<(), CgroupError>;
}

/// One container's cgroup, in every hierarchy of the back-end.
#[derive(Debug, Clone)]
pub struct Cgroup {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    V1(v1::V1Cgroup),
    V2(v2::V2Cgroup),
}

impl Cgroup {
    fn manager(&self) -> &dyn Manager {
        match &self.inner {
            Inner::V1(c) => c,
            Inner::V2(c) => c,
        }
    }

    /// Moves `pid` (a whole process) into the cgroup, in every hierarchy.
    pub fn add(&self, pid: i32) -> Result<(), CgroupError> {
        self.manager().add(pid)
    }

    /// The processes (thread-group ids) now in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.manager().pids()
    }

    /// Whether the kernel's OOM killer killed a process of this cgroup (v1
    /// `memory.oom_control` `oom_kill`, v2 `memory.events` `oom_kill`). False when the
    /// cgroup has no memory controller.
    pub fn oom_killed(&self) -> Result<bool, CgroupError> {
        self.manager().oom_killed()
    }

    /// SIGKILLs every member (atomically through `cgroup.kill` when the kernel has it) and
    /// waits briefly until the cgroup is empty.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        self.manager().kill_all()
    }

    /// Removes the cgroup from every hierarchy, retrying for about a second while the kernel
    /// still reports it busy; Ok when already gone.
    pub fn remove(&self) -> Result<(), CgroupError> {
        self.manager().remove()
    }

    /// The directories of this cgroup, one per hierarchy (for diagnostics and tests).
    pub fn dirs(&self) -> Vec<PathBuf> {
        match &self.inner {
            Inner::V1(c) => c.dirs(),
            Inner::V2(c) => vec![c.dir.clone()],
        }
    }
}

struct Mount<'a> {
    device: &'a str,
    mountpoint: PathBuf,
    fstype: &'a str,
    super_options: &'a str,
}

/// `id parent major:minor root mountpoint options [optional...] - fstype source superopts`
fn parse_mountinfo_line(line: &str) -> Option<Mount<'_>> {
    let (left, right) = line.split_once(" - ")?;
    let mut left = left.split(' ');
    let device = left.nth(2)?;
    let mountpoint = unescape_octal(left.nth(1)?);
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let super_options = right.nth(1)?;
    Some(Mount {
        device,
        mountpoint: PathBuf::from(mountpoint),
        fstype,
        super_options,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let oct = bytes
            .get(i + 1..i + 4)
            .filter(|o| o.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let (b'\\', Some(oct)) = (bytes[i], oct) {
            let value = oct
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(v) = u8::try_from(value) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_v1_controller(option: &str) -> bool {
    const KNOWN: &[&str] = &[
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "net_cls",
        "net_prio",
        "blkio",
        "perf_event",
        "hugetlb",
        "pids",
        "rdma",
        "misc",
    ];
    KNOWN.contains(&option) || option.starts_with("name=")
}

fn validate_path(path: &str) -> Result<(), CgroupError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidPath(path.to_owned()))
    }
}

/// One `write(2)` of `value` to an existing cgroup file (the kernel parses each write whole).
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let result = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

pub(crate) fn read_file(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn create_dir(path: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(path).map_err(|source| CgroupError::Create {
        path: path.to_owned(),
        source,
    })
}

/// Pids listed in a `cgroup.procs` file.
pub(crate) fn read_procs(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let text = read_file(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse::<i32>().map_err(|_| CgroupError::Parse {
                path: path.to_owned(),
                message: format!("not a pid: {l:?}"),
            })
        })
        .collect()
}

/// A `key value` line of a flat-keyed cgroup file (`memory.events`, `memory.oom_control`).
pub(crate) fn keyed_value(path: &Path, text: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() == Some(key) {
            let value = parts.next().unwrap_or_default();
            return value
                .parse::<u64>()
                .map(Some)
                .map_err(|_| CgroupError::Parse {
                    path: path.to_owned(),
                    message: format!("{key} is not a number: {value:?}"),
                });
        }
    }
    Ok(None)
}

/// rmdir, retrying for about a second while busy (the last task may still be exiting);
/// an absent directory is success.
pub(crate) fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

/// SIGKILLs every pid listed in `procs` until the file is empty (new forks may appear while
/// we kill), for at most about a second. With `signal_first` false it only waits.
pub(crate) fn kill_until_empty(procs: &Path, signal: bool) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let pids = match read_procs(procs) {
            Ok(p) => p,
            // A cgroup that no longer exists is empty.
            Err(CgroupError::Read { source, .. }) if source.kind() == ErrorKind::NotFound => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::StillRunning {
                path: procs.parent().unwrap_or(procs).to_owned(),
                count: pids.len(),
            });
        }
        if signal {
            for pid in pids {
                // SAFETY: kill(2) has no memory-safety preconditions; ESRCH (already gone)
                // is fine.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 31 0:32 / /mnt/mem\\040copy rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn probes_hybrid() {
        let Cgroups::V1(v1) = Cgroups::from_mountinfo(HYBRID).unwrap() else {
            panic!("expected v1");
        };
        let names: Vec<_> = v1
            .hierarchies
            .iter()
            .map(|h| h.controllers.join(","))
            .collect();
        assert_eq!(names, ["cpu", "cpuset", "memory", "name=systemd"]);
        assert_eq!(
            v1.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn probes_unified() {
        let text =
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let Cgroups::V2(v2) = Cgroups::from_mountinfo(text).unwrap() else {
            panic!("expected v2");
        };
        assert_eq!(v2.root, Path::new("/sys/fs/cgroup"));
        assert!(matches!(
            Cgroups::from_mountinfo("1 0 0:1 / / rw - ext4 /dev/vda rw\n"),
            Err(CgroupError::NotMounted)
        ));
    }

    #[test]
    fn unescapes_mountpoints() {
        assert_eq!(unescape_octal("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_octal("/plain"), "/plain");
        assert_eq!(unescape_octal("/trailing\\04"), "/trailing\\04");
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in ["", "/berth/x", "berth/../x", "berth//x", "./x", "x/"] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
        validate_path("berth/abc").unwrap();
    }
}
