//! cgroup v1 (legacy and hybrid): one hierarchy per mounted controller set, limits written to
//! the controllers' files; the v2 `unified` mount, when present, is joined for membership and
//! its atomic `cgroup.kill`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{
    create_dir, keyed_value, kill_until_empty, read_file, read_procs, remove_dir, write_file,
    CgroupError, CgroupSpec, Manager,
};

/// A mounted v1 hierarchy and the controllers (or `name=...`) it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    pub controllers: Vec<String>,
}

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

#[derive(Debug, Clone)]
pub struct V1 {
    pub hierarchies: Vec<Hierarchy>,
    /// The cgroup2 mount of a hybrid machine.
    pub unified: Option<PathBuf>,
}

/// Docker's (runc's) device allowlist for non-privileged containers, after `deny a`:
/// mknod of any node, and use of the standard nodes the runtime creates in /dev.
const DEFAULT_DEVICE_RULES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",   // null
    "c 1:5 rwm",   // zero
    "c 1:7 rwm",   // full
    "c 5:0 rwm",   // tty
    "c 1:8 rwm",   // random
    "c 1:9 rwm",   // urandom
    "c 5:2 rwm",   // ptmx
    "c 136:* rwm", // pts
    "c 5:1 rwm",   // console
];

impl V1 {
    pub fn open(&self, path: &str) -> V1Cgroup {
        V1Cgroup {
            dirs: self
                .hierarchies
                .iter()
                .map(|h| (h.clone(), h.mountpoint.join(path)))
                .collect(),
            unified: self.unified.as_ref().map(|u| u.join(path)),
        }
    }

    pub fn create(&self, spec: &CgroupSpec, privileged: bool) -> Result<V1Cgroup, CgroupError> {
        let cgroup = self.open(&spec.path);
        let result = self
            .make_dirs(&spec.path)
            .and_then(|()| cgroup.apply(spec, privileged));
        if let Err(e) = result {
            // Leave nothing half-made behind.
            let _ = cgroup.remove();
            return Err(e);
        }
        Ok(cgroup)
    }

    fn make_dirs(&self, path: &str) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            if h.has("cpuset") {
                make_cpuset_dirs(&h.mountpoint, path)?;
            } else {
                create_dir(&h.mountpoint.join(path))?;
            }
        }
        if let Some(unified) = &self.unified {
            create_dir(&unified.join(path))?;
        }
        Ok(())
    }
}

/// A new cpuset cgroup starts with empty `cpus`/`mems` and then refuses tasks: give each new
/// level its parent's (unless the kernel already did, with `cgroup.clone_children`).
fn make_cpuset_dirs(root: &Path, path: &str) -> Result<(), CgroupError> {
    let mut dir = root.to_path_buf();
    for component in path.split('/') {
        let parent = dir.clone();
        dir.push(component);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => return Err(CgroupError::Create { path: dir, source }),
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if read_file(&dir.join(file))?.trim().is_empty() {
                let inherited = read_file(&parent.join(file))?;
                write_file(&dir.join(file), inherited.trim())?;
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct V1Cgroup {
    dirs: Vec<(Hierarchy, PathBuf)>,
    unified: Option<PathBuf>,
}

impl V1Cgroup {
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|(_, d)| d.clone())
            .chain(self.unified.clone())
            .collect()
    }

    fn dir_of(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(h, _)| h.has(controller))
            .map(|(_, d)| d.as_path())
    }

    /// Where membership is read: the unified dir when present (all tasks join it), else the
    /// first hierarchy.
    fn procs_file(&self) -> Option<PathBuf> {
        self.unified
            .as_ref()
            .or(self.dirs.first().map(|(_, d)| d))
            .map(|d| d.join("cgroup.procs"))
    }

    fn apply(&self, spec: &CgroupSpec, privileged: bool) -> Result<(), CgroupError> {
        if let Some(dir) = self.dir_of("memory") {
            apply_memory(dir, spec)?;
        }
        if let Some(dir) = self.dir_of("cpu") {
            if let Some(period) = spec.cpu_period {
                write_file(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
            }
            if let Some(quota) = spec.cpu_quota {
                let quota = if quota > 0 { quota } else { -1 };
                write_file(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            if let Some(shares) = spec.cpu_shares.filter(|s| *s > 0) {
                write_file(&dir.join("cpu.shares"), &shares.to_string())?;
            }
        }
        if let (Some(dir), Some(cpus)) = (self.dir_of("cpuset"), &spec.cpuset_cpus) {
            if !cpus.is_empty() {
                write_file(&dir.join("cpuset.cpus"), cpus)?;
            }
        }
        if let (Some(dir), Some(limit)) = (self.dir_of("pids"), spec.pids_limit) {
            // Docker: 0 and -1 both mean unlimited.
            let value = if limit > 0 {
                limit.to_string()
            } else {
                "max".to_owned()
            };
            write_file(&dir.join("pids.max"), &value)?;
        }
        if let Some(dir) = self.dir_of("devices") {
            if privileged {
                write_file(&dir.join("devices.allow"), "a")?;
            } else {
                write_file(&dir.join("devices.deny"), "a")?;
                for rule in DEFAULT_DEVICE_RULES {
                    write_file(&dir.join("devices.allow"), rule)?;
                }
            }
        }
        Ok(())
    }

    /// v1 `freezer`: freeze so nothing forks while we kill, SIGKILL everyone, thaw (a frozen
    /// task cannot die).
    fn freeze_and_kill(&self, dir: &Path) -> Result<(), CgroupError> {
        let state = dir.join("freezer.state");
        write_file(&state, "FROZEN")?;
        let deadline = Instant::now() + Duration::from_millis(200);
        while read_file(&state)?.trim() != "FROZEN" && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let killed = read_procs(&dir.join("cgroup.procs")).map(|pids| {
            for pid in pids {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        write_file(&state, "THAWED")?;
        killed
    }
}

fn apply_memory(dir: &Path, spec: &CgroupSpec) -> Result<(), CgroupError> {
    if let Some(memory) = spec.memory.filter(|m| *m > 0) {
        let limit = dir.join("memory.limit_in_bytes");
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        // Docker: unset (or 0) swap = as much swap as memory; -1 = unlimited.
        let swap = match spec.memory_swap {
            None | Some(0) => memory.saturating_mul(2),
            Some(v) if v < 0 => -1,
            Some(v) => v,
        };
        // Without swap accounting (no memsw file) Docker ignores the swap limit.
        let has_memsw = memsw.exists();
        match write_file(&limit, &memory.to_string()) {
            Ok(()) => {
                if has_memsw {
                    write_file(&memsw, &swap.to_string())?;
                }
            }
            // The kernel keeps memory <= memsw: raising memory above the current memsw (a
            // re-apply) needs memsw raised first.
            Err(CgroupError::Write { source, .. })
                if has_memsw && source.raw_os_error() == Some(libc::EINVAL) =>
            {
                write_file(&memsw, &swap.to_string())?;
                write_file(&limit, &memory.to_string())?;
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(reservation) = spec.memory_reservation.filter(|r| *r > 0) {
        write_file(
            &dir.join("memory.soft_limit_in_bytes"),
            &reservation.to_string(),
        )?;
    }
    Ok(())
}

impl Manager for V1Cgroup {
    fn add(&self, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for dir in self
            .dirs
            .iter()
            .map(|(_, d)| d)
            .chain(self.unified.as_ref())
        {
            write_file(&dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        match self.procs_file() {
            Some(procs) => read_procs(&procs),
            None => Ok(Vec::new()),
        }
    }

    fn oom_killed(&self) -> Result<bool, CgroupError> {
        let Some(dir) = self.dir_of("memory") else {
            return Ok(false);
        };
        let path = dir.join("memory.oom_control");
        let text = read_file(&path)?;
        Ok(keyed_value(&path, &text, "oom_kill")?.unwrap_or(0) > 0)
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        let Some(procs) = self.procs_file() else {
            return Ok(());
        };
        let cgroup_kill = self.unified.as_ref().map(|u| u.join("cgroup.kill"));
        match cgroup_kill.filter(|k| k.exists()) {
            Some(kill) => write_file(&kill, "1")?,
            None => {
                if let Some(dir) = self.dir_of("freezer").filter(|d| d.exists()) {
                    self.freeze_and_kill(dir)?;
                }
            }
        }
        kill_until_empty(&procs, true)
    }

    fn remove(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        for dir in self
            .dirs
            .iter()
            .map(|(_, d)| d)
            .chain(self.unified.as_ref())
        {
            if let Err(e) = remove_dir(dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
