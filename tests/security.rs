//! Real seccomp and capabilities (run as root), applied in a child between fork and exec with
//! only allocation-free calls, as the runtime does.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use berth::engine::runtime::security::{
    apply_capabilities, default_capabilities, default_seccomp, install_seccomp,
    resolve_capabilities, seccomp_allowed_syscalls, SeccompProgram, SecurityError,
};

fn to_io(e: SecurityError) -> io::Error {
    match e {
        SecurityError::SeccompInstall(e) | SecurityError::CapsSyscall { source: e, .. } => e,
        _ => io::Error::from_raw_os_error(libc::EINVAL),
    }
}

/// Runs busybox `args` with `program` installed (after no_new_privs), if any.
fn run_filtered(program: Option<&SeccompProgram>, args: &[&str]) -> Output {
    let program = program.cloned();
    let mut cmd = Command::new("/bin/busybox");
    cmd.args(args);
    // SAFETY: only prctl and the allocation-free install between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(program) = &program {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                install_seccomp(program).map_err(to_io)?;
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// Installs `program` in a child and reports the errno of `probe` there (0: it succeeded).
fn errno_under(program: Option<&SeccompProgram>, probe: fn() -> libc::c_long) -> i32 {
    let program = program.cloned();
    let mut cmd = Command::new("/bin/true");
    // SAFETY: only syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(program) = &program {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                install_seccomp(program).map_err(to_io)?;
            }
            if probe() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(mut child) => {
            child.wait().unwrap();
            0
        }
        Err(e) => e.raw_os_error().unwrap(),
    }
}

#[test]
fn program_compiles_for_default_and_all_caps() {
    let start = std::time::Instant::now();
    let default = default_seccomp(&default_capabilities()).unwrap();
    eprintln!("compiled the default profile in {:?}", start.elapsed());
    let all_caps = resolve_capabilities(true, &[], &[]).unwrap();
    let all = default_seccomp(&all_caps).unwrap();
    let n_default = seccomp_allowed_syscalls(&default_capabilities()).len();
    let n_all = seccomp_allowed_syscalls(&all_caps).len();
    eprintln!(
        "default caps: {n_default} syscalls + 3 filtered, {} BPF instructions; \
         all caps: {n_all} syscalls, {} instructions",
        default.0.len(),
        all.0.len()
    );
    assert!(n_default > 290 && n_all > n_default);
    assert!(default.0.len() < 4096 && all.0.len() < 4096);
    // Serializes for the shim's spec.json and comes back intact.
    let json = serde_json::to_string(&default).unwrap();
    assert_eq!(
        serde_json::from_str::<SeccompProgram>(&json).unwrap(),
        default
    );
}

#[test]
fn blocked_syscall_is_denied_with_eperm() {
    let program = default_seccomp(&default_capabilities()).unwrap();
    // busybox swapon stats its argument first: give it a real (non-swap) file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-swap");
    std::fs::write(&file, [0u8; 4096]).unwrap();
    let file = file.to_str().unwrap();
    let free = run_filtered(None, &["swapon", file]);
    let free_err = String::from_utf8_lossy(&free.stderr);
    assert!(!free.status.success());
    assert!(free_err.contains("Invalid argument"), "{free_err}");
    let filtered = run_filtered(Some(&program), &["swapon", file]);
    let err = String::from_utf8_lossy(&filtered.stderr);
    assert!(!filtered.status.success());
    assert!(err.contains("Operation not permitted"), "{err}");
}

#[test]
fn normal_programs_work_under_the_filter() {
    let program = default_seccomp(&default_capabilities()).unwrap();
    let out = run_filtered(
        Some(&program),
        &[
            "sh",
            "-c",
            "echo ok; ls / >/dev/null; cat /proc/self/status | grep Seccomp:",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.starts_with("ok\n"), "{stdout}");
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
}

#[test]
fn argument_and_capability_rules() {
    let default = default_seccomp(&default_capabilities()).unwrap();
    let mut with_admin_caps = default_capabilities();
    with_admin_caps.push("CAP_SYS_ADMIN".into());
    let admin = default_seccomp(&with_admin_caps).unwrap();

    // clone3: ENOSYS without CAP_SYS_ADMIN (libc falls back to clone); the kernel's own
    // EINVAL for a null argument otherwise.
    fn clone3() -> libc::c_long {
        unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) }
    }
    assert_eq!(errno_under(Some(&default), clone3), libc::ENOSYS);
    assert_eq!(errno_under(Some(&admin), clone3), libc::EINVAL);
    assert_eq!(errno_under(None, clone3), libc::EINVAL);

    // unshare needs CAP_SYS_ADMIN in Docker's profile.
    fn unshare_ns() -> libc::c_long {
        unsafe { libc::unshare(libc::CLONE_NEWUTS) as libc::c_long }
    }
    assert_eq!(errno_under(Some(&default), unshare_ns), libc::EPERM);
    assert_eq!(errno_under(Some(&admin), unshare_ns), 0);

    // clone with a namespace flag is refused, a plain fork-like clone is not.
    fn clone_newns() -> libc::c_long {
        // Flags only (no child stack): returns in both processes like fork; the child
        // exits at once.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_NEWNS | libc::SIGCHLD) as libc::c_ulong,
                0,
                0,
                0,
                0,
            )
        };
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        pid
    }
    assert_eq!(errno_under(Some(&default), clone_newns), libc::EPERM);
    assert_eq!(errno_under(Some(&admin), clone_newns), 0);

    // socket: AF_VSOCK only is refused.
    fn vsock() -> libc::c_long {
        unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) as libc::c_long }
    }
    fn unix() -> libc::c_long {
        unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) as libc::c_long }
    }
    assert_eq!(errno_under(Some(&default), vsock), libc::EPERM);
    assert_eq!(errno_under(Some(&default), unix), 0);

    // personality: the query and Docker's few values only.
    fn query() -> libc::c_long {
        unsafe { libc::personality(0xffff_ffff) as libc::c_long }
    }
    fn read_implies_exec() -> libc::c_long {
        unsafe { libc::personality(0x0040_0000) as libc::c_long }
    }
    assert_eq!(errno_under(Some(&default), query), 0);
    assert_eq!(errno_under(Some(&default), read_implies_exec), libc::EPERM);
}

fn cap_mask(caps: &[String]) -> u64 {
    caps.iter()
        .map(|c| c.parse::<caps::Capability>().unwrap().bitmask())
        .fold(0, |a, b| a | b)
}

/// Runs busybox `args` after apply_capabilities(`caps`, `uid`) (and then setuid to `uid`).
fn run_with_caps(caps: &[String], uid: u32, args: &[&str]) -> Output {
    let caps = caps.to_vec();
    let mut cmd = Command::new("/bin/busybox");
    cmd.args(args);
    // SAFETY: allocation-free syscalls only between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            apply_capabilities(&caps, uid).map_err(to_io)?;
            if uid != 0 && (libc::setgid(uid) != 0 || libc::setuid(uid) != 0) {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

fn status_field(out: &Output, field: &str) -> u64 {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in {text}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn dropped_capability_denies_and_kept_one_allows() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let file = file.to_str().unwrap();

    let without: Vec<String> = resolve_capabilities(false, &[], &["CHOWN".into()]).unwrap();
    let denied = run_with_caps(&without, 0, &["chown", "1", file]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Operation not permitted"),
        "{denied:?}"
    );

    let allowed = run_with_caps(&default_capabilities(), 0, &["chown", "1", file]);
    assert!(allowed.status.success(), "{allowed:?}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(file).unwrap().uid(), 1);
}

#[test]
fn sets_match_docker_for_root_and_non_root() {
    let caps = default_capabilities();
    let mask = cap_mask(&caps);
    let root = run_with_caps(&caps, 0, &["grep", "^Cap", "/proc/self/status"]);
    assert!(root.status.success(), "{root:?}");
    assert_eq!(status_field(&root, "CapBnd:"), mask);
    assert_eq!(status_field(&root, "CapEff:"), mask);
    assert_eq!(status_field(&root, "CapPrm:"), mask);
    assert_eq!(status_field(&root, "CapInh:"), 0);
    assert_eq!(status_field(&root, "CapAmb:"), 0);

    // A non-root user keeps only the bounding set, as under Docker.
    let user = run_with_caps(&caps, 1000, &["grep", "^Cap", "/proc/self/status"]);
    assert!(user.status.success(), "{user:?}");
    assert_eq!(status_field(&user, "CapBnd:"), mask);
    assert_eq!(status_field(&user, "CapEff:"), 0);
    assert_eq!(status_field(&user, "CapPrm:"), 0);
}

#[test]
fn privileged_set_applies_despite_missing_host_caps() {
    // This VM lacks CAP_SYS_RESOURCE: the full set must still apply, minus what we lack.
    let all = resolve_capabilities(true, &[], &[]).unwrap();
    let out = run_with_caps(&all, 0, &["grep", "^Cap", "/proc/self/status"]);
    assert!(out.status.success(), "{out:?}");
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let our_eff = ours
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .and_then(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .unwrap();
    assert_eq!(status_field(&out, "CapEff:"), cap_mask(&all) & our_eff);
}
