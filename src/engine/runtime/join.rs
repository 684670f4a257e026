//! Putting a new process into a container's cgroup without a migration by its parent.
//!
//! Writing a pid to `cgroup.procs` write-locks the kernel's global threadgroup rwsem, which
//! costs an RCU grace period (measured 14–20 ms here) — more than everything else a
//! container start does. Two paths avoid it: a process born into its cgroup
//! (clone3 `CLONE_INTO_CGROUP`, cgroup v2) and a single-threaded process moving its own
//! thread (`0` written to a v1 `tasks` file, which the kernel does without that lock). So the
//! child is cloned into the v2 directory and moves itself in each v1 hierarchy. The files are
//! opened by the parent, before any namespace change hides the host's cgroup tree.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use super::cgroup::Cgroup;

/// Descriptors opened by the parent and used by the child.
pub struct CgroupJoin {
    /// The v2 directory, for `CLONE_INTO_CGROUP`.
    v2: Option<File>,
    /// Its `cgroup.procs`, for the slow path when the kernel refuses `CLONE_INTO_CGROUP`.
    v2_procs: Option<(PathBuf, File)>,
    born_in_v2: bool,
    /// Each v1 hierarchy's `tasks` file, opened for writing.
    v1_tasks: Vec<(PathBuf, File)>,
}

fn is_v2(dir: &Path) -> bool {
    dir.join("cgroup.controllers").exists()
}

impl CgroupJoin {
    pub fn open(cg: &Cgroup) -> io::Result<CgroupJoin> {
        let mut join = CgroupJoin {
            v2: None,
            v2_procs: None,
            born_in_v2: true,
            v1_tasks: Vec::new(),
        };
        for dir in cg.dirs() {
            if is_v2(&dir) {
                join.v2 = Some(File::open(&dir).map_err(|e| with_path(&dir, e))?);
                let procs = dir.join("cgroup.procs");
                let f = File::options()
                    .write(true)
                    .open(&procs)
                    .map_err(|e| with_path(&procs, e))?;
                join.v2_procs = Some((procs, f));
            } else {
                let tasks = dir.join("tasks");
                let f = File::options()
                    .write(true)
                    .open(&tasks)
                    .map_err(|e| with_path(&tasks, e))?;
                join.v1_tasks.push((tasks, f));
            }
        }
        Ok(join)
    }

    /// The descriptor for clone3's `cgroup` field.
    pub fn v2_fd(&self) -> Option<RawFd> {
        self.v2.as_ref().map(|f| f.as_raw_fd())
    }

    /// The kernel refused `CLONE_INTO_CGROUP`: the child joins v2 itself, the slow way.
    pub fn not_born_in_v2(&mut self) {
        self.born_in_v2 = false;
    }

    /// Child side, single-threaded: moves the calling thread (= process) in every v1
    /// hierarchy, and in v2 unless it was born there.
    pub fn join_self(&self) -> io::Result<()> {
        for (path, f) in &self.v1_tasks {
            (&*f).write_all(b"0").map_err(|e| with_path(path, e))?;
        }
        if let (false, Some((path, f))) = (self.born_in_v2, &self.v2_procs) {
            (&*f).write_all(b"0").map_err(|e| with_path(path, e))?;
        }
        Ok(())
    }
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
