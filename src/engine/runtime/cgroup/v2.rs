//! cgroup v2 (unified only): one tree; controllers are enabled in each ancestor's
//! `cgroup.subtree_control` before the container's limits are written.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{
    create_dir, keyed_value, kill_until_empty, read_file, read_procs, remove_dir, write_file,
    CgroupError, CgroupSpec, Manager,
};

#[derive(Debug, Clone)]
pub struct V2 {
    pub root: PathBuf,
}

/// The controllers a container's limits need.
const CONTROLLERS: &[&str] = &["cpu", "cpuset", "memory", "pids"];

impl V2 {
    pub fn open(&self, path: &str) -> V2Cgroup {
        V2Cgroup {
            dir: self.root.join(path),
        }
    }

    pub fn create(&self, spec: &CgroupSpec) -> Result<V2Cgroup, CgroupError> {
        let cgroup = self.open(&spec.path);
        let result = self.make_dirs(&spec.path).and_then(|()| cgroup.apply(spec));
        if let Err(e) = result {
            let _ = cgroup.remove();
            return Err(e);
        }
        Ok(cgroup)
    }

    /// Creates each level and enables the controllers it offers in every ancestor's
    /// `subtree_control`, so they reach the leaf. One write per controller: one the kernel
    /// refuses (e.g. `cpu` while a realtime task exists) must not block the others; a limit
    /// that then cannot be written reports its own error.
    fn make_dirs(&self, path: &str) -> Result<(), CgroupError> {
        let mut dir = self.root.clone();
        for component in path.split('/') {
            let available = read_file(&dir.join("cgroup.controllers"))?;
            let enabled = read_file(&dir.join("cgroup.subtree_control"))?;
            for controller in CONTROLLERS {
                let has = |text: &str| text.split_whitespace().any(|c| c == *controller);
                if has(&available) && !has(&enabled) {
                    let _ = write_file(
                        &dir.join("cgroup.subtree_control"),
                        &format!("+{controller}"),
                    );
                }
            }
            dir.push(component);
            create_dir(&dir)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct V2Cgroup {
    pub(super) dir: PathBuf,
}

/// runc's linear map of v1 shares [2, 262144] onto v2 weight [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

impl V2Cgroup {
    fn apply(&self, spec: &CgroupSpec) -> Result<(), CgroupError> {
        let dir = &self.dir;
        if let Some(memory) = spec.memory.filter(|m| *m > 0) {
            write_file(&dir.join("memory.max"), &memory.to_string())?;
            // v2 limits swap alone: Docker's memory+swap minus memory.
            let swap = match spec.memory_swap {
                None | Some(0) => memory.to_string(),
                Some(v) if v < 0 => "max".to_owned(),
                Some(v) => v.saturating_sub(memory).max(0).to_string(),
            };
            let swap_max = dir.join("memory.swap.max");
            if swap_max.exists() {
                write_file(&swap_max, &swap)?;
            }
        }
        if let Some(reservation) = spec.memory_reservation.filter(|r| *r > 0) {
            write_file(&dir.join("memory.low"), &reservation.to_string())?;
        }
        let period = spec.cpu_period.filter(|p| *p > 0);
        match (spec.cpu_quota.filter(|q| *q > 0), period) {
            (Some(quota), period) => write_file(
                &dir.join("cpu.max"),
                &format!("{quota} {}", period.unwrap_or(100_000)),
            )?,
            (None, Some(period)) => write_file(&dir.join("cpu.max"), &format!("max {period}"))?,
            (None, None) => {}
        }
        if let Some(shares) = spec.cpu_shares.filter(|s| *s > 0) {
            write_file(
                &dir.join("cpu.weight"),
                &shares_to_weight(shares).to_string(),
            )?;
        }
        if let Some(cpus) = spec.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
            write_file(&dir.join("cpuset.cpus"), cpus)?;
        }
        if let Some(limit) = spec.pids_limit {
            let value = if limit > 0 {
                limit.to_string()
            } else {
                "max".to_owned()
            };
            write_file(&dir.join("pids.max"), &value)?;
        }
        Ok(())
    }

    fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }
}

impl Manager for V2Cgroup {
    fn add(&self, pid: i32) -> Result<(), CgroupError> {
        write_file(&self.procs(), &pid.to_string())
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        read_procs(&self.procs())
    }

    fn oom_killed(&self) -> Result<bool, CgroupError> {
        let path = self.dir.join("memory.events");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(keyed_value(&path, &text, "oom_kill")?.unwrap_or(0) > 0),
            // No memory controller here: nothing can have been OOM-killed by it.
            Err(e) if e.kind() == ErrorKind::NotFound && self.dir.is_dir() => Ok(false),
            Err(source) => Err(CgroupError::Read { path, source }),
        }
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() {
            write_file(&kill, "1")?;
        }
        kill_until_empty(&self.procs(), true)
    }

    fn remove(&self) -> Result<(), CgroupError> {
        remove_dir(&self.dir)
    }
}

impl V2Cgroup {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
    }
}
