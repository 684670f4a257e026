//! The last steps of a container process, shared by a container's pid 1 and by exec: sysctls,
//! rlimits, oom_score_adj, stdio, the user switch with capabilities, cwd, signals reset,
//! no_new_privs, seccomp, then execve with Docker's exit codes on failure.
//!
//! Runs in a freshly cloned/forked child of a single-threaded process.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::security::{self, SeccompProgram};
use super::spec::{ContainerSpec, NetworkNamespace, RlimitSpec};
use super::sync::ChildError;
use super::user::{self, ExecUser};

/// Docker's rule for sysctls: only keys the container's own namespaces isolate.
pub fn check_sysctl(key: &str, spec: &ContainerSpec) -> Result<(), String> {
    let ipc = matches!(
        key,
        "kernel.msgmax" | "kernel.msgmnb" | "kernel.msgmni" | "kernel.sem"
    ) || key.starts_with("kernel.shm")
        || key.starts_with("fs.mqueue.");
    if ipc {
        if spec.namespaces.ipc_host {
            return Err(format!("sysctl {key:?} not allowed in host IPC namespace"));
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if spec.namespaces.network == NetworkNamespace::Host {
            return Err(format!(
                "sysctl {key:?} not allowed in host network namespace"
            ));
        }
        return Ok(());
    }
    if matches!(key, "kernel.domainname" | "kernel.hostname") {
        if spec.namespaces.uts_host {
            return Err(format!("sysctl {key:?} not allowed in host UTS namespace"));
        }
        return Ok(());
    }
    Err(format!(
        "sysctl {key:?} is not in a separate kernel namespace"
    ))
}

/// Writes the spec's sysctls under the container's /proc/sys (after pivot_root).
pub fn apply_sysctls(spec: &ContainerSpec) -> Result<(), ChildError> {
    for (key, value) in &spec.sysctls {
        check_sysctl(key, spec).map_err(ChildError::setup)?;
        if key.contains('/') || key.split('.').any(|p| p.is_empty() || p == "..") {
            return Err(ChildError::setup(format!("sysctl {key:?}: invalid name")));
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes())
            .map_err(|e| ChildError::setup(format!("sysctl {key}={value}: write {path}: {e}")))?;
    }
    Ok(())
}

/// A file of the image that must be a regular file: a FIFO or device planted there must not
/// block (or feed) the container's setup.
fn read_regular(path: &str) -> io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut s = String::new();
    f.read_to_string(&mut s)?;
    Ok(s)
}

/// Resolves the user in the container's /etc/passwd and /etc/group (after pivot_root).
pub fn resolve_user(user_spec: &str, additional: &[String]) -> Result<ExecUser, ChildError> {
    let read = |p: &str| match read_regular(p) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ChildError::exec(format!("read {p}: {e}"), 128)),
    };
    let passwd = read("/etc/passwd")?;
    let group = read("/etc/group")?;
    user::resolve(user_spec, additional, passwd.as_deref(), group.as_deref())
        .map_err(|m| ChildError::exec(m, 128))
}

/// Docker creates a missing working directory, its new parts owned by the user.
pub fn create_cwd(cwd: &str, user: &ExecUser) -> Result<(), ChildError> {
    let path = Path::new(cwd);
    if path.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut p = path;
    while !p.exists() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for dir in missing.iter().rev() {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(dir)
            .or_else(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| ChildError::exec(format!("create working directory {cwd}: {e}"), 128))?;
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).map_err(|e| {
            ChildError::exec(
                format!("chown working directory {}: {e}", dir.display()),
                128,
            )
        })?;
    }
    Ok(())
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "as" => libc::RLIMIT_AS,
        "core" => libc::RLIMIT_CORE,
        "cpu" => libc::RLIMIT_CPU,
        "data" => libc::RLIMIT_DATA,
        "fsize" => libc::RLIMIT_FSIZE,
        "locks" => libc::RLIMIT_LOCKS,
        "memlock" => libc::RLIMIT_MEMLOCK,
        "msgqueue" => libc::RLIMIT_MSGQUEUE,
        "nice" => libc::RLIMIT_NICE,
        "nofile" => libc::RLIMIT_NOFILE,
        "nproc" => libc::RLIMIT_NPROC,
        "rss" => libc::RLIMIT_RSS,
        "rtprio" => libc::RLIMIT_RTPRIO,
        "rttime" => libc::RLIMIT_RTTIME,
        "sigpending" => libc::RLIMIT_SIGPENDING,
        "stack" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

pub fn apply_rlimits(rlimits: &[RlimitSpec]) -> Result<(), ChildError> {
    for r in rlimits {
        let res = rlimit_resource(&r.name).ok_or_else(|| {
            ChildError::exec(format!("ulimit {:?}: unknown resource", r.name), 128)
        })?;
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid resource and a pointer to a local struct.
        unsafe { libc::getrlimit(res, &mut current) };
        let want = libc::rlimit {
            rlim_cur: r.soft,
            rlim_max: r.hard,
        };
        // SAFETY: a valid resource and a pointer to a local struct.
        if unsafe { libc::setrlimit(res, &want) } != 0 {
            let e = io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                format!(
                    " (the current hard limit is {}; raising it needs CAP_SYS_RESOURCE, which this host does not grant)",
                    show_limit(current.rlim_max)
                )
            } else {
                String::new()
            };
            return Err(ChildError::exec(
                format!(
                    "setrlimit {} (soft {}, hard {}): {e}{hint}",
                    r.name,
                    show_limit(r.soft),
                    show_limit(r.hard)
                ),
                128,
            ));
        }
    }
    Ok(())
}

fn show_limit(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

pub fn apply_oom_score_adj(adj: Option<i32>) -> Result<(), ChildError> {
    let Some(adj) = adj else { return Ok(()) };
    std::fs::write("/proc/self/oom_score_adj", adj.to_string())
        .map_err(|e| ChildError::exec(format!("write oom_score_adj {adj}: {e}"), 128))
}

/// The standard streams of the process about to exec (the parent's copies are separate).
pub struct Stdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

fn sys_err(what: &str) -> ChildError {
    ChildError::exec(format!("{what}: {}", io::Error::last_os_error()), 128)
}

/// New session, stdio on 0/1/2, the pty as controlling terminal when `tty`.
fn install_stdio(stdio: Stdio, tty: bool) -> Result<(), ChildError> {
    // SAFETY: plain syscalls on descriptors we own.
    unsafe {
        // Already a session leader only if the caller made us one; both are fine.
        libc::setsid();
        let mut high: [RawFd; 3] = [-1; 3];
        for (i, fd) in [&stdio.stdin, &stdio.stdout, &stdio.stderr]
            .iter()
            .enumerate()
        {
            // Above 2 first, so a source sitting on 0..2 is not clobbered by another dup2.
            high[i] = libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3);
            if high[i] < 0 {
                return Err(sys_err("dup stdio"));
            }
        }
        drop(stdio);
        for (i, fd) in high.iter().enumerate() {
            if libc::dup2(*fd, i as RawFd) < 0 {
                return Err(sys_err("dup2 stdio"));
            }
            libc::close(*fd);
        }
        if tty && libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
            return Err(sys_err("set the controlling terminal"));
        }
    }
    Ok(())
}

fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
    })
}

/// `args[0]` as Docker finds it: in the container's `PATH` unless it names a path.
pub fn lookup(arg0: &str, env: &[String]) -> Result<PathBuf, ChildError> {
    if arg0.contains('/') {
        return match std::fs::metadata(arg0) {
            Ok(m) if m.is_dir() || m.permissions().mode() & 0o111 == 0 => Err(ChildError::exec(
                format!("exec: {arg0:?}: permission denied"),
                126,
            )),
            Ok(_) => Ok(PathBuf::from(arg0)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ChildError::exec(
                format!("exec: {arg0:?}: stat {arg0}: no such file or directory"),
                127,
            )),
            Err(e) => Err(ChildError::exec(
                format!("exec: {arg0:?}: stat {arg0}: {e}"),
                126,
            )),
        };
    }
    if !arg0.is_empty() {
        for dir in env_value(env, "PATH").unwrap_or("").split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let candidate = Path::new(dir).join(arg0);
            if let Ok(m) = std::fs::metadata(&candidate) {
                if !m.is_dir() && m.mode() & 0o111 != 0 {
                    return Ok(candidate);
                }
            }
        }
    }
    Err(ChildError::exec(
        format!("exec: {arg0:?}: executable file not found in $PATH"),
        127,
    ))
}

/// Default dispositions and an empty mask, as a fresh process expects (Rust ignores SIGPIPE,
/// the shim blocks what it forwards; ignored signals would survive execve).
pub fn reset_signals() {
    // SAFETY: sigaction/sigprocmask with valid arguments; errors (reserved signals) ignored.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Everything [`exec`] needs, resolved by the caller.
pub struct Plan<'a> {
    pub args: &'a [String],
    pub env: Vec<String>,
    pub user: ExecUser,
    pub cwd: &'a str,
    pub tty: bool,
    pub capabilities: &'a [String],
    pub no_new_privileges: bool,
    pub seccomp: Option<&'a SeccompProgram>,
    pub rlimits: &'a [RlimitSpec],
    pub oom_score_adj: Option<i32>,
}

fn cstrings(v: &[String], what: &str) -> Result<Vec<CString>, ChildError> {
    v.iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| ChildError::exec(format!("{what} contains a NUL byte: {s:?}"), 128))
        })
        .collect()
}

fn install_filter(program: &SeccompProgram) -> Result<(), ChildError> {
    security::install_seccomp(program)
        .map_err(|e| ChildError::exec(format!("install the seccomp filter: {e}"), 128))
}

/// Becomes the user's process; returns only on failure.
pub fn exec(plan: Plan<'_>, stdio: Stdio) -> ChildError {
    match exec_inner(plan, stdio) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn exec_inner(plan: Plan<'_>, stdio: Stdio) -> Result<std::convert::Infallible, ChildError> {
    if plan.args.is_empty() {
        return Err(ChildError::exec("no command specified", 128));
    }
    apply_rlimits(plan.rlimits)?;
    apply_oom_score_adj(plan.oom_score_adj)?;
    install_stdio(stdio, plan.tty)?;
    let mut env = plan.env;
    if env_value(&env, "HOME").is_none() {
        env.push(format!("HOME={}", plan.user.home));
    }
    let path = lookup(&plan.args[0], &env)?;
    let argv = cstrings(plan.args, "an argument")?;
    let envp = cstrings(&env, "an environment variable")?;
    let prog = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| ChildError::exec("the executable path contains a NUL byte", 128))?;

    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it while we still
    // hold it (runc's order); with it, as late as possible.
    if let (Some(p), false) = (plan.seccomp, plan.no_new_privileges) {
        install_filter(p)?;
    }
    switch_user(&plan.user, plan.capabilities)?;
    std::env::set_current_dir(plan.cwd).map_err(|e| {
        ChildError::exec(
            format!(
                "chdir to cwd ({:?}) set in config.json failed: {e}",
                plan.cwd
            ),
            128,
        )
    })?;
    reset_signals();
    // SAFETY: plain syscalls.
    unsafe {
        libc::umask(0o022);
        // Nothing of ours may leak into the container: everything above 2 closes on exec.
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    if plan.no_new_privileges {
        // SAFETY: prctl with constant arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(sys_err("set no_new_privs"));
        }
        if let Some(p) = plan.seccomp {
            install_filter(p)?;
        }
    }
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: NUL-terminated strings and NULL-terminated arrays that outlive the call.
    unsafe { libc::execve(prog.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    let e = io::Error::last_os_error();
    let code = match e.raw_os_error() {
        Some(libc::ENOENT) => 127,
        Some(libc::EACCES) | Some(libc::EISDIR) => 126,
        _ => 128,
    };
    Err(ChildError::exec(
        format!("exec {}: {}", plan.args[0], errno_text(&e)),
        code,
    ))
}

/// Go's wording (`no such file or directory`), which Docker's users grep for.
fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

/// setgroups/setresgid/setresuid keeping the permitted set, then the final capabilities.
pub fn switch_user(user: &ExecUser, caps: &[String]) -> Result<(), ChildError> {
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        if libc::setgroups(user.groups.len(), user.groups.as_ptr()) != 0 {
            return Err(sys_err("setgroups"));
        }
        if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
            return Err(sys_err("set keepcaps"));
        }
        if libc::setresgid(user.gid, user.gid, user.gid) != 0 {
            return Err(sys_err(&format!("setresgid {}", user.gid)));
        }
        if libc::setresuid(user.uid, user.uid, user.uid) != 0 {
            return Err(sys_err(&format!("setresuid {}", user.uid)));
        }
        libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }
    security::apply_capabilities(caps, user.uid)
        .map_err(|e| ChildError::exec(format!("apply capabilities: {e}"), 128))
}

/// The host's /dev/null, for a container without stdin.
pub fn open_null() -> io::Result<OwnedFd> {
    Ok(OwnedFd::from(
        File::options().read(true).write(true).open("/dev/null")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::runtime::spec::*;

    pub(crate) fn spec_with(net: NetworkNamespace, ipc_host: bool) -> ContainerSpec {
        let mut s = crate::engine::runtime::tests::sample_spec();
        s.namespaces.network = net;
        s.namespaces.ipc_host = ipc_host;
        s
    }

    #[test]
    fn sysctls_follow_dockers_namespace_rules() {
        let private = spec_with(NetworkNamespace::Path("/x".into()), false);
        for k in [
            "net.ipv4.ip_forward",
            "kernel.shmmax",
            "kernel.msgmax",
            "kernel.sem",
            "fs.mqueue.msg_max",
        ] {
            assert!(check_sysctl(k, &private).is_ok(), "{k}");
        }
        assert_eq!(
            check_sysctl("kernel.pid_max", &private).unwrap_err(),
            "sysctl \"kernel.pid_max\" is not in a separate kernel namespace"
        );
        assert!(check_sysctl("vm.swappiness", &private).is_err());
        let host = spec_with(NetworkNamespace::Host, true);
        assert_eq!(
            check_sysctl("net.ipv4.ip_forward", &host).unwrap_err(),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        assert!(check_sysctl("kernel.shmmax", &host).is_err());
    }

    #[test]
    fn lookup_uses_the_env_path_with_dockers_errors() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        let env = vec![format!("PATH=/nonexistent:{}", dir.path().display())];
        assert_eq!(lookup("tool", &env).unwrap(), exe);
        let e = lookup("missing", &env).unwrap_err();
        assert_eq!(
            e,
            ChildError::exec("exec: \"missing\": executable file not found in $PATH", 127)
        );
        assert_eq!(lookup("plain", &env).unwrap_err().exit_code(), 127);
        assert_eq!(
            lookup(plain.to_str().unwrap(), &env)
                .unwrap_err()
                .exit_code(),
            126
        );
        assert_eq!(lookup("/nonexistent/x", &env).unwrap_err().exit_code(), 127);
        assert_eq!(lookup("tool", &[]).unwrap_err().exit_code(), 127);
    }

    #[test]
    fn errno_text_is_gos_wording() {
        assert_eq!(
            errno_text(&io::Error::from_raw_os_error(libc::ENOENT)),
            "no such file or directory"
        );
    }
}
