//! `docker exec`: join a running container (its cgroup, then its ipc, uts, net, pid, cgroup
//! and mount namespaces from /proc/<init>/ns), fork (the pid namespace applies to children
//! only), and exec the process with the container's user, capabilities, no_new_privs and
//! seccomp. The caller must be single-threaded (setns into a mount namespace requires it).

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use nix::sched::CloneFlags;

use super::join::CgroupJoin;
use super::spec::ContainerSpec;
use super::sync::{ChildError, ErrorChannel};
use super::syscalls::{Linux, Syscalls};
use super::{
    cgroup, cgroup_error, child_exit, ensure_single_threaded, kill_and_reap, process,
    seccomp_program, security, spawn_into, stdio_of, ContainerStdio, ExecSpec, RuntimeError,
};

/// Namespaces in the order nsenter/runc join them; mnt last, since it changes what paths
/// (and /proc) mean.
const NAMESPACES: [(&str, CloneFlags); 6] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// The container's env overlaid with the exec's (same key: the exec's wins, in place).
pub fn merge_env(base: &[String], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for kv in extra {
        let key = kv.split_once('=').map(|(k, _)| k).unwrap_or(kv);
        match out
            .iter_mut()
            .find(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) == key)
        {
            Some(slot) => *slot = kv.clone(),
            None => out.push(kv.clone()),
        }
    }
    out
}

pub fn enter(
    spec: &ContainerSpec,
    init_pid: i32,
    exec: &ExecSpec,
    stdio: ContainerStdio,
) -> Result<i32, RuntimeError> {
    ensure_single_threaded(spec)?;
    let caps = if exec.privileged {
        security::resolve_capabilities(true, &[], &[])
            .map_err(|e| RuntimeError::setup(spec, e.to_string()))?
    } else {
        spec.process.capabilities.clone()
    };
    let seccomp = seccomp_program(spec, &caps)?;
    let stdio = stdio_of(stdio)
        .map_err(|e| RuntimeError::setup(spec, format!("open /dev/null for stdin: {e}")))?;
    let gone = |e: std::io::Error| {
        RuntimeError::setup(
            spec,
            format!("the container's init (pid {init_pid}) is not running: {e}"),
        )
    };
    // Every namespace descriptor first: once in the container's mount namespace, /proc is
    // the container's and the host pid means nothing there.
    let mut joins = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = File::open(format!("/proc/{init_pid}/ns/{name}")).map_err(gone)?;
        let same = match (
            theirs.metadata(),
            std::fs::metadata(format!("/proc/self/ns/{name}")),
        ) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            joins.push((name, flag, theirs));
        }
    }
    // Only the exec'd process joins the cgroup (this monitor stays out of the container's
    // limits); its cgroup files are opened now, while the host's tree is visible.
    let path = &spec.cgroup.path;
    let cg = cgroup::Cgroups::probe()
        .map_err(|e| cgroup_error(path, e))?
        .open(path);
    let mut join = CgroupJoin::open(&cg).map_err(|e| RuntimeError::Cgroup {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let sys = Linux;
    for (name, flag, fd) in &joins {
        sys.setns(fd.as_fd(), *flag).map_err(|e| {
            RuntimeError::setup(spec, format!("join the container's {name} namespace: {e}"))
        })?;
    }
    drop(joins);
    sys.chdir(std::path::Path::new("/"))
        .map_err(|e| RuntimeError::setup(spec, format!("chdir / in the container: {e}")))?;

    let errors = ErrorChannel::new()
        .map_err(|e| RuntimeError::setup(spec, format!("create the error pipe: {e}")))?;
    let pid = spawn_into(CloneFlags::empty(), &mut join).map_err(|e| {
        RuntimeError::setup(
            spec,
            format!("fork into the container (has it exited?): {e}"),
        )
    })?;
    if pid == 0 {
        let ErrorChannel { parent, child } = errors;
        drop(parent);
        child_exit(child, |_| {
            if let Err(e) = join.join_self() {
                return ChildError::setup(format!("join the container's cgroup: {e}"));
            }
            drop(join);
            process::reset_signals();
            let user_spec = if exec.user.is_empty() {
                &spec.process.user
            } else {
                &exec.user
            };
            let user = match process::resolve_user(user_spec, &spec.process.additional_groups) {
                Ok(u) => u,
                Err(e) => return e,
            };
            let cwd = if exec.cwd.is_empty() {
                &spec.process.cwd
            } else {
                &exec.cwd
            };
            let plan = process::Plan {
                args: &exec.args,
                env: merge_env(&spec.process.env, &exec.env),
                user,
                cwd,
                tty: exec.tty,
                capabilities: &caps,
                no_new_privileges: spec.process.no_new_privileges,
                seccomp: seccomp.as_ref(),
                rlimits: &spec.process.rlimits,
                oom_score_adj: None,
            };
            process::exec(plan, stdio)
        });
    }
    drop(stdio);
    drop(join);
    let ErrorChannel { parent, child } = errors;
    drop(child);
    match ErrorChannel::outcome(parent) {
        Ok(None) => Ok(pid),
        Ok(Some(err)) => {
            kill_and_reap(pid);
            Err(RuntimeError::from_child(spec, err))
        }
        Err(e) => {
            kill_and_reap(pid);
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::merge_env;

    #[test]
    fn exec_env_overrides_in_place() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let extra = vec!["A=2".to_string(), "B=3".to_string()];
        assert_eq!(merge_env(&base, &extra), vec!["PATH=/bin", "A=2", "B=3"]);
    }
}
