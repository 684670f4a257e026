//! The container runtime: turns a [`spec::ContainerSpec`] into a running, isolated process
//! (clone3 with new pid/mount/uts/ipc/cgroup namespaces, a joined network namespace, an
//! overlay root with pivot_root, cgroup limits, capabilities, seccomp, rlimits), and enters a
//! running container for exec.
//!
//! Everything here forks; call it only from a single-threaded process (`berth shim`), never
//! from the tokio daemon.

pub mod cgroup;
mod enter;
mod init;
mod join;
mod process;
pub mod rootfs;
pub mod security;
pub mod spec;
pub mod sync;
pub mod syscalls;
pub mod user;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::CloneFlags;

use self::spec::{NetworkNamespace, SeccompSpec};
use self::sync::{ChildError, ErrorChannel};
use self::syscalls::{Linux, Syscalls};

use serde::{Deserialize, Serialize};

pub use spec::ContainerSpec;

/// The container process's standard streams. With a tty, all three are the pty's slave side.
pub struct ContainerStdio {
    /// None: /dev/null.
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// A container whose process has successfully exec'd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The container's pid 1 as the host sees it; a child of the calling process.
    pub init_pid: i32,
    /// Field 22 of /proc/<pid>/stat.
    pub init_start_ticks: u64,
}

/// A process to run inside a running container (`docker exec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub args: Vec<String>,
    /// Added to (and overriding) the container's env.
    pub env: Vec<String>,
    /// Empty: the container's user.
    pub user: String,
    /// Empty: the container's working dir.
    pub cwd: String,
    pub tty: bool,
    pub privileged: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The user's process could not be started; `exit_code` is Docker's (127 not found,
    /// 126 not executable, 128 other).
    #[error("{message}")]
    Exec { message: String, exit_code: i32 },
    #[error("container {id}: {message}")]
    Setup { id: String, message: String },
    #[error("cgroup {path}: {message}")]
    Cgroup { path: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl RuntimeError {
    /// The exit code Docker records for a container that could not start.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::Exec { exit_code, .. } => *exit_code,
            _ => 128,
        }
    }

    fn setup(spec: &ContainerSpec, message: impl Into<String>) -> RuntimeError {
        RuntimeError::Setup {
            id: spec.id.clone(),
            message: message.into(),
        }
    }

    fn from_child(spec: &ContainerSpec, e: ChildError) -> RuntimeError {
        match e {
            ChildError::Setup { message } => RuntimeError::setup(spec, message),
            ChildError::Exec { message, exit_code } => RuntimeError::Exec { message, exit_code },
        }
    }
}

fn cgroup_error(path: &str, e: cgroup::CgroupError) -> RuntimeError {
    RuntimeError::Cgroup {
        path: path.to_string(),
        message: e.to_string(),
    }
}

/// The seccomp program the container's processes get, compiled in the parent so the child
/// only installs it.
fn seccomp_program(
    spec: &ContainerSpec,
    caps: &[String],
) -> Result<Option<security::SeccompProgram>, RuntimeError> {
    match spec.process.seccomp {
        SeccompSpec::Unconfined => Ok(None),
        SeccompSpec::Default => security::default_seccomp(caps)
            .map(Some)
            .map_err(|e| RuntimeError::setup(spec, e.to_string())),
    }
}

/// A wait status in Docker's convention: the exit status, or 128 + the killing signal.
pub fn exit_code(status: libc::c_int) -> i32 {
    init::exit_code(status)
}

/// Field 22 (starttime, clock ticks after boot) of /proc/<pid>/stat.
pub fn start_ticks(pid: i32) -> std::io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace()
        .nth(19)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("/proc/{pid}/stat: no start time in {stat:?}"),
            )
        })
}

/// clone3 without a new stack: fork semantics into new namespaces, born into the cgroup v2
/// directory `cgroup` when given. Returns 0 in the child.
fn clone3(flags: CloneFlags, cgroup: Option<std::os::fd::RawFd>) -> std::io::Result<i32> {
    // SAFETY: an all-zero clone_args is valid (no pidfd, tid pointers, stack or tls).
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags.bits() as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    if let Some(fd) = cgroup {
        // 0x200000000 (libc's constant is a deprecated, overflowing c_int).
        args.flags |= 0x2_0000_0000;
        args.cgroup = fd as u64;
    }
    // SAFETY: the struct outlives the call and its size is passed; without CLONE_VM the child
    // gets a copy of our memory, as with fork (the caller is single-threaded).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc as i32)
    }
}

/// clone3 straight into the container's v2 cgroup when there is one (the child then joins
/// its v1 hierarchies itself, see [`join`]). Returns 0 in the child.
fn spawn_into(flags: CloneFlags, join: &mut join::CgroupJoin) -> std::io::Result<i32> {
    let Some(fd) = join.v2_fd() else {
        return clone3(flags, None);
    };
    match clone3(flags, Some(fd)) {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EBUSY)
            ) =>
        {
            join.not_born_in_v2();
            clone3(flags, None)
        }
        r => r,
    }
}

/// Runs the child's body; whatever happens (error, panic) it never returns into the
/// parent's frames: it reports and exits.
fn child_exit(error_end: File, body: impl FnOnce(&mut Option<File>) -> ChildError) -> ! {
    let mut end = Some(error_end);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut end)));
    let err = outcome.unwrap_or_else(|_| ChildError::setup("the container's init panicked"));
    if let Some(f) = end.as_mut() {
        ErrorChannel::report(f, &err);
    }
    let code = err.exit_code();
    // SAFETY: _exit skips destructors and atexit handlers that belong to the parent.
    unsafe { libc::_exit(code) }
}

fn kill_and_reap(pid: i32) {
    // SAFETY: signalling and reaping our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        while libc::waitpid(pid, &mut status, 0) < 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
}

/// The namespace and filesystem part of the container's pid 1, in order: cgroup namespace
/// (we are already in our cgroup), network namespace, the root and its mounts, pivot_root,
/// hostname, then `after_pivot` (sysctls, user, cwd: things that read or write the new root
/// before it is locked down), then masked/read-only paths and the read-only root.
pub(crate) fn setup_container(
    sys: &dyn Syscalls,
    spec: &ContainerSpec,
    netns: Option<std::os::fd::BorrowedFd<'_>>,
    cgroups: &[rootfs::CgroupMount],
    after_pivot: &mut dyn FnMut() -> Result<(), ChildError>,
) -> Result<(), ChildError> {
    let fail = |what: &str, e: std::io::Error| ChildError::setup(format!("{what}: {e}"));
    sys.unshare(CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| fail("unshare the cgroup namespace", e))?;
    if let Some(fd) = netns {
        sys.setns(fd, CloneFlags::CLONE_NEWNET)
            .map_err(|e| fail("join the network namespace", e))?;
    }
    let root = rootfs::prepare(sys, spec, cgroups)?;
    rootfs::pivot(sys, &root)?;
    if !spec.namespaces.uts_host {
        if !spec.hostname.is_empty() {
            sys.sethostname(&spec.hostname)
                .map_err(|e| fail(&format!("sethostname {:?}", spec.hostname), e))?;
        }
        if !spec.domainname.is_empty() {
            sys.setdomainname(&spec.domainname)
                .map_err(|e| fail(&format!("setdomainname {:?}", spec.domainname), e))?;
        }
    }
    after_pivot()?;
    rootfs::finalize(sys, spec)
}

/// Everything the container's pid 1 does after the parent released it; returns only on
/// failure.
fn container_init(
    spec: &ContainerSpec,
    netns: Option<File>,
    cgroups: &[rootfs::CgroupMount],
    seccomp: Option<&security::SeccompProgram>,
    stdio: process::Stdio,
    error_end: &mut Option<File>,
) -> ChildError {
    process::reset_signals();
    // SAFETY: umask has no failure mode; device nodes and dirs get exactly their modes.
    unsafe { libc::umask(0) };
    let mut user = None;
    let mut after_pivot = || {
        process::apply_sysctls(spec)?;
        let u = process::resolve_user(&spec.process.user, &spec.process.additional_groups)?;
        process::create_cwd(&spec.process.cwd, &u)?;
        user = Some(u);
        Ok(())
    };
    if let Err(e) = setup_container(
        &Linux,
        spec,
        netns.as_ref().map(|f| f.as_fd()),
        cgroups,
        &mut after_pivot,
    ) {
        return e;
    }
    drop(netns);
    let Some(user) = user else {
        return ChildError::setup("internal: the user was not resolved");
    };
    let plan = process::Plan {
        args: &spec.process.args,
        env: spec.process.env.clone(),
        user,
        cwd: &spec.process.cwd,
        tty: spec.process.tty,
        capabilities: &spec.process.capabilities,
        no_new_privileges: spec.process.no_new_privileges,
        seccomp,
        rlimits: &spec.process.rlimits,
        oom_score_adj: spec.process.oom_score_adj,
    };
    if !spec.init {
        return process::exec(plan, stdio);
    }
    let Some(reaper_end) = error_end.take() else {
        return ChildError::setup("internal: no error channel");
    };
    let child_end = match reaper_end.try_clone() {
        Ok(f) => f,
        Err(e) => return ChildError::setup(format!("dup the error channel: {e}")),
    };
    let caps = spec.process.capabilities.clone();
    let code = init::reap(
        move || {
            let mut end = child_end;
            let err = process::exec(plan, stdio);
            ErrorChannel::report(&mut end, &err);
            err.exit_code()
        },
        reaper_end,
        &caps,
    );
    // SAFETY: pid 1 leaves with its child's status; nothing of the parent's must run.
    unsafe { libc::_exit(code) }
}

fn stdio_of(stdio: ContainerStdio) -> std::io::Result<process::Stdio> {
    Ok(process::Stdio {
        stdin: match stdio.stdin {
            Some(fd) => fd,
            None => process::open_null()?,
        },
        stdout: stdio.stdout,
        stderr: stdio.stderr,
    })
}

/// Forking a multi-threaded process leaves the child with locks held by threads that no
/// longer exist: refuse (the daemon must re-exec `berth shim`).
fn ensure_single_threaded(spec: &ContainerSpec) -> Result<(), RuntimeError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| RuntimeError::setup(spec, format!("read /proc/self/status: {e}")))?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(1);
    if threads > 1 {
        return Err(RuntimeError::setup(
            spec,
            format!(
                "the runtime forks and must run in a single-threaded process (this one has \
                 {threads} threads): run it through `berth shim`"
            ),
        ));
    }
    Ok(())
}

/// Creates the container's cgroup, clones its pid 1 into fresh namespaces, sets it up and
/// waits until the user's process has exec'd (or reports why it could not).
pub fn start(spec: &ContainerSpec, stdio: ContainerStdio) -> Result<Started, RuntimeError> {
    ensure_single_threaded(spec)?;
    let seccomp = seccomp_program(spec, &spec.process.capabilities)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RuntimeError::setup(spec, format!("read /proc/self/mountinfo: {e}")))?;
    let cgroup_mounts = rootfs::cgroup_mounts(&mountinfo);
    // Opened before anything moves, so a later change of the path cannot redirect us.
    let netns = match &spec.namespaces.network {
        NetworkNamespace::Path(p) => Some(File::open(p).map_err(|e| {
            RuntimeError::setup(spec, format!("open network namespace {}: {e}", p.display()))
        })?),
        NetworkNamespace::Host => None,
    };
    let stdio = stdio_of(stdio)
        .map_err(|e| RuntimeError::setup(spec, format!("open /dev/null for stdin: {e}")))?;
    let cgroups = cgroup::Cgroups::probe().map_err(|e| cgroup_error(&spec.cgroup.path, e))?;
    let cg = cgroups
        .create(&spec.cgroup, spec.privileged)
        .map_err(|e| cgroup_error(&spec.cgroup.path, e))?;
    let removal = CgroupRemoval(Some(&cg));

    let errors = ErrorChannel::new()
        .map_err(|e| RuntimeError::setup(spec, format!("create the error pipe: {e}")))?;
    let ns = &spec.namespaces;
    let mut flags = CloneFlags::CLONE_NEWNS;
    for (host, flag) in [
        (ns.pid_host, CloneFlags::CLONE_NEWPID),
        (ns.ipc_host, CloneFlags::CLONE_NEWIPC),
        (ns.uts_host, CloneFlags::CLONE_NEWUTS),
    ] {
        if !host {
            flags |= flag;
        }
    }
    let mut join = join::CgroupJoin::open(&cg).map_err(|e| RuntimeError::Cgroup {
        path: spec.cgroup.path.clone(),
        message: e.to_string(),
    })?;
    let pid = spawn_into(flags, &mut join)
        .map_err(|e| RuntimeError::setup(spec, format!("clone3 into new namespaces: {e}")))?;
    if pid == 0 {
        let ErrorChannel {
            parent,
            child: error_end,
        } = errors;
        drop(parent);
        child_exit(error_end, |end| {
            // First, before anything is charged to the wrong cgroup.
            if let Err(e) = join.join_self() {
                return ChildError::setup(format!("join the container's cgroup: {e}"));
            }
            drop(join);
            container_init(spec, netns, &cgroup_mounts, seccomp.as_ref(), stdio, end)
        });
    }
    drop(stdio);
    drop(netns);
    drop(join);
    let ErrorChannel {
        parent: error_end,
        child,
    } = errors;
    drop(child);

    match ErrorChannel::outcome(error_end) {
        Ok(None) => {}
        Ok(Some(err)) => {
            kill_and_reap(pid);
            return Err(RuntimeError::from_child(spec, err));
        }
        Err(e) => {
            kill_and_reap(pid);
            return Err(e.into());
        }
    }
    let init_start_ticks = match start_ticks(pid) {
        Ok(t) => t,
        Err(e) => {
            kill_and_reap(pid);
            return Err(RuntimeError::setup(
                spec,
                format!("read the start time of pid {pid}: {e}"),
            ));
        }
    };
    removal.disarm();
    Ok(Started {
        init_pid: pid,
        init_start_ticks,
    })
}

/// Removes a half-made container's cgroup on the error paths of [`start`].
struct CgroupRemoval<'a>(Option<&'a cgroup::Cgroup>);

impl CgroupRemoval<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CgroupRemoval<'_> {
    fn drop(&mut self) {
        if let Some(cg) = self.0 {
            let _ = cg.kill_all();
            let _ = cg.remove();
        }
    }
}

/// After the caller reaped pid 1: whether the cgroup recorded an OOM kill; then removes the
/// cgroup (retrying while the kernel finishes tearing the namespace down).
pub fn finish(spec: &ContainerSpec) -> Result<bool, RuntimeError> {
    let path = &spec.cgroup.path;
    let cg = cgroup::Cgroups::probe()
        .map_err(|e| cgroup_error(path, e))?
        .open(path);
    // Idempotent: a second call (or one after a crash mid-cleanup) finds nothing to do.
    if cg.dirs().iter().all(|d| !d.exists()) {
        return Ok(false);
    }
    let oom = cg.oom_killed().map_err(|e| cgroup_error(path, e))?;
    // With a private pid namespace the kernel already killed everything; with the host's,
    // stragglers may remain.
    cg.kill_all().map_err(|e| cgroup_error(path, e))?;
    cg.remove().map_err(|e| cgroup_error(path, e))?;
    Ok(oom)
}

/// Starts `exec` inside the running container whose pid 1 is `init_pid`: joins its
/// namespaces and cgroup, applies user, capabilities, no_new_privs and seccomp as the
/// container has them, and returns the new process's host pid (a child of the caller).
pub fn exec(
    spec: &ContainerSpec,
    init_pid: i32,
    exec: &ExecSpec,
    stdio: ContainerStdio,
) -> Result<i32, RuntimeError> {
    enter::enter(spec, init_pid, exec, stdio)
}

/// Host pids of every process in the container's cgroup (for `top`).
pub fn pids(spec: &ContainerSpec) -> Result<Vec<i32>, RuntimeError> {
    let path = &spec.cgroup.path;
    cgroup::Cgroups::probe()
        .map_err(|e| cgroup_error(path, e))?
        .open(path)
        .pids()
        .map_err(|e| cgroup_error(path, e))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use nix::mount::MsFlags;
    use nix::sched::CloneFlags;

    use super::rootfs::CgroupMount;
    use super::spec::*;
    use super::syscalls::{Call, Create, Recording};
    use super::*;

    pub(crate) fn sample_spec() -> ContainerSpec {
        ContainerSpec {
            id: "c0ffee".into(),
            bundle: "/run/b/containers/c0ffee".into(),
            state_dir: "/var/b/containers/c0ffee".into(),
            rootfs: RootfsSpec {
                lower: vec![
                    "/var/b/snapshots/2/diff".into(),
                    "/var/b/snapshots/1/diff".into(),
                ],
                upper: "/var/b/containers/c0ffee/fs/upper".into(),
                work: "/var/b/containers/c0ffee/fs/work".into(),
                read_only: true,
            },
            process: ProcessSpec {
                args: vec!["true".into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/".into(),
                user: String::new(),
                additional_groups: vec![],
                tty: false,
                open_stdin: false,
                stdin_once: false,
                capabilities: vec![],
                no_new_privileges: false,
                seccomp: SeccompSpec::Unconfined,
                rlimits: vec![],
                oom_score_adj: None,
            },
            hostname: "box".into(),
            domainname: String::new(),
            namespaces: NamespacesSpec {
                network: NetworkNamespace::Path("/run/b/netns/c0ffee".into()),
                ipc_host: false,
                pid_host: false,
                uts_host: false,
            },
            mounts: vec![MountSpec {
                target: "/data".into(),
                kind: MountKind::Bind {
                    source: "/srv/data".into(),
                    propagation: None,
                },
                read_only: true,
            }],
            etc_hosts: Some("/var/b/containers/c0ffee/hosts".into()),
            etc_hostname: None,
            etc_resolv_conf: None,
            shm_size: 64 << 20,
            sysctls: BTreeMap::new(),
            cgroup: CgroupSpec {
                path: "berth/c0ffee".into(),
                ..CgroupSpec::default()
            },
            init: false,
            privileged: false,
            masked_paths: vec![
                "/proc/kcore".into(),
                "/sys/firmware".into(),
                "/proc/nope".into(),
            ],
            readonly_paths: vec!["/proc/sys".into()],
            log: LogSpec {
                driver: "json-file".into(),
                path: PathBuf::from("/var/b/containers/c0ffee/log"),
                max_size: None,
                max_file: 1,
            },
        }
    }

    /// The position of the first call matching `f` (panics with the whole list if none).
    fn pos(calls: &[Call], what: &str, f: impl Fn(&Call) -> bool) -> usize {
        calls
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("no {what} in {calls:#?}"))
    }

    fn mount_on(calls: &[Call], target_suffix: &str) -> usize {
        pos(
            calls,
            target_suffix,
            |c| matches!(c, Call::Mount { target, .. } if target.ends_with(target_suffix)),
        )
    }

    #[test]
    fn container_setup_happens_in_runcs_order() {
        let spec = sample_spec();
        let sys = Recording {
            files: vec!["/proc/kcore".into()],
            missing: vec!["/proc/nope".into()],
            ..Recording::default()
        };
        let netns = std::fs::File::open("/dev/null").unwrap();
        let cgroups = vec![
            CgroupMount {
                name: "memory".into(),
                fstype: "cgroup".into(),
                options: "memory".into(),
            },
            CgroupMount {
                name: "unified".into(),
                fstype: "cgroup2".into(),
                options: String::new(),
            },
        ];
        let mut hook_ran_at = None;
        let calls_len = |s: &Recording| s.calls.borrow().len();
        let mut after = || {
            hook_ran_at = Some(calls_len(&sys));
            Ok(())
        };
        setup_container(&sys, &spec, Some(netns.as_fd()), &cgroups, &mut after).unwrap();
        let calls = sys.calls();
        let hook = hook_ran_at.unwrap();

        let cgroupns = pos(&calls, "unshare", |c| {
            *c == Call::Unshare(CloneFlags::CLONE_NEWCGROUP)
        });
        let net = pos(&calls, "setns", |c| {
            *c == Call::Setns(CloneFlags::CLONE_NEWNET)
        });
        let private = pos(&calls, "rprivate", |c| {
            matches!(c, Call::Mount { target, flags, .. }
                if target == "/" && *flags == MsFlags::MS_REC | MsFlags::MS_PRIVATE)
        });
        let overlay = pos(&calls, "overlay", |c| {
            matches!(c, Call::Mount { fstype: Some(t), data: Some(d), .. }
                if t == "overlay" && d.starts_with("lowerdir=/var/b/snapshots/2/diff:/var/b/snapshots/1/diff,upperdir="))
        });
        let proc_ = mount_on(&calls, "rootfs/proc");
        let dev = mount_on(&calls, "rootfs/dev");
        let null = pos(
            &calls,
            "mknod null",
            |c| matches!(c, Call::Mknod(p) if p.ends_with("rootfs/dev/null")),
        );
        let pts = mount_on(&calls, "rootfs/dev/pts");
        let shm = mount_on(&calls, "rootfs/dev/shm");
        let mq = mount_on(&calls, "rootfs/dev/mqueue");
        let sysfs = mount_on(&calls, "rootfs/sys");
        let cg_mem = mount_on(&calls, "rootfs/sys/fs/cgroup/memory");
        let hosts = mount_on(&calls, "rootfs/etc/hosts");
        let data = mount_on(&calls, "rootfs/data");
        let pivot = pos(&calls, "pivot_root", |c| {
            *c == Call::PivotRoot(".".into(), ".".into())
        });
        let detach = pos(&calls, "umount", |c| *c == Call::Umount(".".into()));
        let hostname = pos(&calls, "sethostname", |c| {
            *c == Call::Sethostname("box".into())
        });
        let ro_sys = mount_on(&calls, "/proc/sys");
        let kcore = pos(&calls, "mask kcore", |c| {
            matches!(c, Call::Mount { source: Some(s), target, .. }
                if s == "/dev/null" && target == "/proc/kcore")
        });
        let firmware = pos(&calls, "mask firmware", |c| {
            matches!(c, Call::Mount { fstype: Some(t), target, .. }
                if t == "tmpfs" && target == "/sys/firmware")
        });
        let ro_root = pos(&calls, "ro root", |c| {
            matches!(c, Call::Mount { target, flags, .. }
                if target == "/" && flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY))
        });
        let order = [
            cgroupns, net, private, overlay, proc_, dev, null, pts, shm, mq, sysfs, cg_mem, hosts,
            data, pivot, detach, hostname, hook, ro_sys, kcore, firmware, ro_root,
        ];
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "out of order {order:?}: {calls:#?}"
        );
        // Missing masked paths are skipped; targets are resolved inside the new root.
        assert!(!calls
            .iter()
            .any(|c| matches!(c, Call::Mount { target, .. } if target == "/proc/nope")));
        assert!(calls.contains(&Call::Resolve("/data".into(), Create::Dir)));
        // The read-only bind is remounted read-only right after the bind itself.
        assert_eq!(calls[data + 1], Call::Resolve("/data".into(), Create::No));
        assert!(matches!(&calls[data + 2], Call::Mount { flags, .. }
            if flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_BIND)));
    }

    #[test]
    fn long_lower_lists_go_relative_then_layer_by_layer() {
        let mut spec = sample_spec();
        spec.rootfs.lower = (0..50)
            .map(|i| PathBuf::from(format!("/var/lib/berth/snapshots/{:064x}/diff", i)))
            .collect();
        let sys = Recording::default();
        rootfs::prepare(&sys, &spec, &[]).unwrap();
        let calls = sys.calls();
        let chdir = pos(&calls, "chdir", |c| {
            *c == Call::Chdir("/var/lib/berth/snapshots".into())
        });
        assert!(
            matches!(&calls[chdir + 1], Call::Mount { data: Some(d), .. }
            if d.starts_with(&format!("lowerdir={:064x}/diff:", 0)))
        );

        spec.rootfs.lower = (0..200)
            .map(|i| PathBuf::from(format!("/var/lib/berth/snapshots/{:064x}/diff", i)))
            .collect();
        let sys = Recording::default();
        rootfs::prepare(&sys, &spec, &[]).unwrap();
        assert!(sys
            .calls()
            .iter()
            .any(|c| matches!(c, Call::OverlayLayers { lowers: 200, .. })));
    }

    #[test]
    fn shared_namespaces_skip_their_steps() {
        let mut spec = sample_spec();
        spec.namespaces.network = NetworkNamespace::Host;
        spec.namespaces.uts_host = true;
        let sys = Recording::default();
        setup_container(&sys, &spec, None, &[], &mut || Ok(())).unwrap();
        let calls = sys.calls();
        assert!(!calls
            .iter()
            .any(|c| matches!(c, Call::Setns(_) | Call::Sethostname(_))));
        // Host network: the host's /sys bound read-only instead of a new sysfs.
        assert!(calls
            .iter()
            .any(|c| matches!(c, Call::Mount { source: Some(s), target, .. }
            if s == "/sys" && target.ends_with("rootfs/sys"))));
    }

    #[test]
    fn cgroup_mounts_from_a_hybrid_mountinfo() {
        let text = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime shared:7 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw shared:8 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/systemd rw shared:9 - cgroup cgroup rw,xattr,name=systemd
";
        let m = rootfs::cgroup_mounts(text);
        let names: Vec<(&str, &str)> = m
            .iter()
            .map(|c| (c.name.as_str(), c.options.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("unified", ""),
                ("memory", "memory"),
                ("cpu,cpuacct", "cpu,cpuacct"),
                ("systemd", "name=systemd")
            ]
        );
    }

    #[test]
    fn start_ticks_of_ourselves() {
        assert!(start_ticks(std::process::id() as i32).unwrap() > 0);
    }
}
