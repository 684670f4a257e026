//! Capabilities and seccomp: Docker's default capability set, cap_add/cap_drop/privileged
//! resolution, and a seccomp filter equivalent to Docker's default profile (seccompiler).
//!
//! Capability sets follow Docker 23+ (`oci.SetCapabilities` since CVE-2022-24769): bounding =
//! the set; effective = permitted = the set for root; inheritable and ambient always empty, so
//! a non-root process ends up with no capabilities after execve (unless a file grants them,
//! within the bounding set), as under Docker.
//!
//! The seccomp table is Docker's default profile (moby `profiles/seccomp/default.json`, with
//! the kernel 6.5–6.7 additions of Docker 26) restated for x86_64 as our own data: the
//! always-allowed syscalls, the capability-gated groups and the argument filters.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A name in cap_add/cap_drop that is not a capability.
    #[error("unknown capability: {0}")]
    UnknownCapability(String),
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("capabilities: {0}")]
    Caps(String),
    /// A capability syscall failed (no allocation: usable between fork and exec).
    #[error("capabilities: {op} failed: {source}")]
    CapsSyscall { op: &'static str, source: io::Error },
    #[error("seccomp: cannot install the filter: {0}")]
    SeccompInstall(io::Error),
}

/// A compiled BPF program, ready to install in the child before exec (allocation-free).
/// Each u64 holds one `struct sock_filter` in its native memory layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProgram(pub Vec<u64>);

/// Docker's default capabilities, in Docker's order.
const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's default set (`CAP_CHOWN`, `CAP_DAC_OVERRIDE`, ...), as `CAP_*` names.
pub fn default_capabilities() -> Vec<String> {
    DOCKER_DEFAULT.iter().map(|c| (*c).to_owned()).collect()
}

/// Every capability the caps crate knows and the running kernel supports, by number.
fn all_capabilities() -> Vec<caps::Capability> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .unwrap_or(u8::MAX);
    let mut all: Vec<_> = caps::all()
        .into_iter()
        .filter(|c| c.index() <= last)
        .collect();
    all.sort_by_key(|c| c.index());
    all
}

/// `chown`, `CAP_CHOWN`, `cap_chown` → `CAP_CHOWN`; `all` → `ALL`.
fn normalize(name: &str) -> Result<String, SecurityError> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    match full.parse::<caps::Capability>() {
        Ok(_) => Ok(full),
        Err(_) => Err(SecurityError::UnknownCapability(name.to_owned())),
    }
}

/// The final set from Docker's rules: privileged → all; else default, minus cap_drop, plus
/// cap_add (`ALL` allowed in both; names with or without `CAP_`, any case).
pub fn resolve_capabilities(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
) -> Result<Vec<String>, SecurityError> {
    let all = || all_capabilities().into_iter().map(|c| c.to_string());
    if privileged {
        return Ok(all().collect());
    }
    let add = cap_add
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drop = cap_drop
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    let has = |list: &[String], c: &str| list.iter().any(|x| x == c);
    let mut result: Vec<String> = if has(&add, "ALL") {
        all().filter(|c| !has(&drop, c)).collect()
    } else if has(&drop, "ALL") {
        add
    } else {
        default_capabilities()
            .into_iter()
            .filter(|c| !has(&drop, c))
            .chain(add)
            .collect()
    };
    let mut seen = Vec::with_capacity(result.len());
    result.retain(|c| {
        let fresh = c != "ALL" && !seen.contains(c);
        if fresh {
            seen.push(c.clone());
        }
        fresh
    });
    Ok(result)
}

#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn capget() -> Result<[CapUserData; 2], SecurityError> {
    let mut header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapUserData::default(); 2];
    // SAFETY: header and a two-element data array, as capget(2) v3 expects.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(SecurityError::CapsSyscall {
            op: "capget",
            source: io::Error::last_os_error(),
        });
    }
    Ok(data)
}

fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), SecurityError> {
    let mut header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| [v as u32, (v >> 32) as u32];
    let (e, p, i) = (split(effective), split(permitted), split(inheritable));
    let data = [
        CapUserData {
            effective: e[0],
            permitted: p[0],
            inheritable: i[0],
        },
        CapUserData {
            effective: e[1],
            permitted: p[1],
            inheritable: i[1],
        },
    ];
    // SAFETY: header and a two-element data array, as capset(2) v3 expects.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(SecurityError::CapsSyscall {
            op: "capset",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Sets bounding, permitted, effective, inheritable and ambient sets for a process about to
/// exec as `uid` (Docker: non-root users get empty inheritable/ambient).
///
/// Allocation-free (safe between fork and exec). Call it as root, either before switching
/// user or after (with `PR_SET_KEEPCAPS`), last before exec: it needs CAP_SETPCAP in the
/// permitted set to shrink the bounding set. Capabilities the caller itself lacks (this VM
/// has no CAP_SYS_RESOURCE) are silently left out, as a privileged container cannot get
/// more than its runtime holds.
///
/// Effective = permitted = the set whatever `uid` is: for root that is Docker's spec; for a
/// non-root user execve then empties both (inheritable and ambient are empty), which is what
/// Docker's spec (effective = permitted = empty for non-root) yields, while still letting the
/// runtime call setuid after this.
pub fn apply_capabilities(caps: &[String], uid: u32) -> Result<(), SecurityError> {
    let _ = uid;
    let mut wanted: u64 = 0;
    for name in caps {
        match name.parse::<caps::Capability>() {
            Ok(cap) => wanted |= cap.bitmask(),
            Err(_) => return Err(SecurityError::UnknownCapability(name.clone())),
        }
    }
    let current = capget()?;
    let permitted = u64::from(current[0].permitted) | (u64::from(current[1].permitted) << 32);
    let inheritable = u64::from(current[0].inheritable) | (u64::from(current[1].inheritable) << 32);
    // Everything we hold becomes effective, so CAP_SETPCAP can shrink the bounding set.
    capset(permitted, permitted, inheritable)?;
    for cap in 0..64u32 {
        if wanted & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            // EINVAL: past the kernel's last capability.
            if err.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(SecurityError::CapsSyscall {
                op: "PR_CAPBSET_DROP",
                source: err,
            });
        }
    }
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        // Kernels before 4.3 have no ambient set: nothing to clear.
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(SecurityError::CapsSyscall {
                op: "PR_CAP_AMBIENT_CLEAR_ALL",
                source: err,
            });
        }
    }
    let keep = wanted & permitted;
    capset(keep, keep, 0)
}

/// `(name, x86_64 number)`.
type Syscall = (&'static str, i64);

/// Allowed for every container.
#[cfg(target_arch = "x86_64")]
const ALWAYS: &[Syscall] = &[
    ("read", 0),
    ("write", 1),
    ("open", 2),
    ("close", 3),
    ("stat", 4),
    ("fstat", 5),
    ("lstat", 6),
    ("poll", 7),
    ("lseek", 8),
    ("mmap", 9),
    ("mprotect", 10),
    ("munmap", 11),
    ("brk", 12),
    ("rt_sigaction", 13),
    ("rt_sigprocmask", 14),
    ("rt_sigreturn", 15),
    ("ioctl", 16),
    ("pread64", 17),
    ("pwrite64", 18),
    ("readv", 19),
    ("writev", 20),
    ("access", 21),
    ("pipe", 22),
    ("select", 23),
    ("sched_yield", 24),
    ("mremap", 25),
    ("msync", 26),
    ("mincore", 27),
    ("madvise", 28),
    ("shmget", 29),
    ("shmat", 30),
    ("shmctl", 31),
    ("dup", 32),
    ("dup2", 33),
    ("pause", 34),
    ("nanosleep", 35),
    ("getitimer", 36),
    ("alarm", 37),
    ("setitimer", 38),
    ("getpid", 39),
    ("sendfile", 40),
    ("connect", 42),
    ("accept", 43),
    ("sendto", 44),
    ("recvfrom", 45),
    ("sendmsg", 46),
    ("recvmsg", 47),
    ("shutdown", 48),
    ("bind", 49),
    ("listen", 50),
    ("getsockname", 51),
    ("getpeername", 52),
    ("socketpair", 53),
    ("setsockopt", 54),
    ("getsockopt", 55),
    ("fork", 57),
    ("vfork", 58),
    ("execve", 59),
    ("exit", 60),
    ("wait4", 61),
    ("kill", 62),
    ("uname", 63),
    ("semget", 64),
    ("semop", 65),
    ("semctl", 66),
    ("shmdt", 67),
    ("msgget", 68),
    ("msgsnd", 69),
    ("msgrcv", 70),
    ("msgctl", 71),
    ("fcntl", 72),
    ("flock", 73),
    ("fsync", 74),
    ("fdatasync", 75),
    ("truncate", 76),
    ("ftruncate", 77),
    ("getdents", 78),
    ("getcwd", 79),
    ("chdir", 80),
    ("fchdir", 81),
    ("rename", 82),
    ("mkdir", 83),
    ("rmdir", 84),
    ("creat", 85),
    ("link", 86),
    ("unlink", 87),
    ("symlink", 88),
    ("readlink", 89),
    ("chmod", 90),
    ("fchmod", 91),
    ("chown", 92),
    ("fchown", 93),
    ("lchown", 94),
    ("umask", 95),
    ("gettimeofday", 96),
    ("getrlimit", 97),
    ("getrusage", 98),
    ("sysinfo", 99),
    ("times", 100),
    ("getuid", 102),
    ("getgid", 104),
    ("setuid", 105),
    ("setgid", 106),
    ("geteuid", 107),
    ("getegid", 108),
    ("setpgid", 109),
    ("getppid", 110),
    ("getpgrp", 111),
    ("setsid", 112),
    ("setreuid", 113),
    ("setregid", 114),
    ("getgroups", 115),
    ("setgroups", 116),
    ("setresuid", 117),
    ("getresuid", 118),
    ("setresgid", 119),
    ("getresgid", 120),
    ("getpgid", 121),
    ("setfsuid", 122),
    ("setfsgid", 123),
    ("getsid", 124),
    ("capget", 125),
    ("capset", 126),
    ("rt_sigpending", 127),
    ("rt_sigtimedwait", 128),
    ("rt_sigqueueinfo", 129),
    ("rt_sigsuspend", 130),
    ("sigaltstack", 131),
    ("utime", 132),
    ("mknod", 133),
    ("statfs", 137),
    ("fstatfs", 138),
    ("getpriority", 140),
    ("setpriority", 141),
    ("sched_setparam", 142),
    ("sched_getparam", 143),
    ("sched_setscheduler", 144),
    ("sched_getscheduler", 145),
    ("sched_get_priority_max", 146),
    ("sched_get_priority_min", 147),
    ("sched_rr_get_interval", 148),
    ("mlock", 149),
    ("munlock", 150),
    ("mlockall", 151),
    ("munlockall", 152),
    ("prctl", 157),
    ("setrlimit", 160),
    ("sync", 162),
    ("gettid", 186),
    ("readahead", 187),
    ("setxattr", 188),
    ("lsetxattr", 189),
    ("fsetxattr", 190),
    ("getxattr", 191),
    ("lgetxattr", 192),
    ("fgetxattr", 193),
    ("listxattr", 194),
    ("llistxattr", 195),
    ("flistxattr", 196),
    ("removexattr", 197),
    ("lremovexattr", 198),
    ("fremovexattr", 199),
    ("tkill", 200),
    ("time", 201),
    ("futex", 202),
    ("sched_setaffinity", 203),
    ("sched_getaffinity", 204),
    ("set_thread_area", 205),
    ("io_setup", 206),
    ("io_destroy", 207),
    ("io_getevents", 208),
    ("io_submit", 209),
    ("io_cancel", 210),
    ("get_thread_area", 211),
    ("epoll_create", 213),
    ("epoll_ctl_old", 214),
    ("epoll_wait_old", 215),
    ("remap_file_pages", 216),
    ("getdents64", 217),
    ("set_tid_address", 218),
    ("restart_syscall", 219),
    ("semtimedop", 220),
    ("fadvise64", 221),
    ("timer_create", 222),
    ("timer_settime", 223),
    ("timer_gettime", 224),
    ("timer_getoverrun", 225),
    ("timer_delete", 226),
    ("clock_gettime", 228),
    ("clock_getres", 229),
    ("clock_nanosleep", 230),
    ("exit_group", 231),
    ("epoll_wait", 232),
    ("epoll_ctl", 233),
    ("tgkill", 234),
    ("utimes", 235),
    ("mq_open", 240),
    ("mq_unlink", 241),
    ("mq_timedsend", 242),
    ("mq_timedreceive", 243),
    ("mq_notify", 244),
    ("mq_getsetattr", 245),
    ("waitid", 247),
    ("ioprio_set", 251),
    ("ioprio_get", 252),
    ("inotify_init", 253),
    ("inotify_add_watch", 254),
    ("inotify_rm_watch", 255),
    ("openat", 257),
    ("mkdirat", 258),
    ("mknodat", 259),
    ("fchownat", 260),
    ("futimesat", 261),
    ("newfstatat", 262),
    ("unlinkat", 263),
    ("renameat", 264),
    ("linkat", 265),
    ("symlinkat", 266),
    ("readlinkat", 267),
    ("fchmodat", 268),
    ("faccessat", 269),
    ("pselect6", 270),
    ("ppoll", 271),
    ("set_robust_list", 273),
    ("get_robust_list", 274),
    ("splice", 275),
    ("tee", 276),
    ("sync_file_range", 277),
    ("vmsplice", 278),
    ("utimensat", 280),
    ("epoll_pwait", 281),
    ("signalfd", 282),
    ("timerfd_create", 283),
    ("eventfd", 284),
    ("fallocate", 285),
    ("timerfd_settime", 286),
    ("timerfd_gettime", 287),
    ("accept4", 288),
    ("signalfd4", 289),
    ("eventfd2", 290),
    ("epoll_create1", 291),
    ("dup3", 292),
    ("pipe2", 293),
    ("inotify_init1", 294),
    ("preadv", 295),
    ("pwritev", 296),
    ("rt_tgsigqueueinfo", 297),
    ("recvmmsg", 299),
    ("fanotify_mark", 301),
    ("prlimit64", 302),
    ("name_to_handle_at", 303),
    ("clock_adjtime", 305),
    ("syncfs", 306),
    ("sendmmsg", 307),
    ("getcpu", 309),
    ("sched_setattr", 314),
    ("sched_getattr", 315),
    ("renameat2", 316),
    ("seccomp", 317),
    ("getrandom", 318),
    ("memfd_create", 319),
    ("execveat", 322),
    ("membarrier", 324),
    ("mlock2", 325),
    ("copy_file_range", 326),
    ("preadv2", 327),
    ("pwritev2", 328),
    ("pkey_mprotect", 329),
    ("pkey_alloc", 330),
    ("pkey_free", 331),
    ("statx", 332),
    ("io_pgetevents", 333),
    ("rseq", 334),
    ("pidfd_send_signal", 424),
    ("io_uring_setup", 425),
    ("io_uring_enter", 426),
    ("io_uring_register", 427),
    ("pidfd_open", 434),
    ("close_range", 436),
    ("openat2", 437),
    ("faccessat2", 439),
    ("epoll_pwait2", 441),
    ("landlock_create_ruleset", 444),
    ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446),
    ("memfd_secret", 447),
    ("process_mrelease", 448),
    ("futex_waitv", 449),
    // Docker 26 (kernel 6.5–6.7 syscalls).
    ("cachestat", 451),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    // Docker allows these from kernel 4.8 on (seccomp is checked after ptrace since then).
    ("ptrace", 101),
    ("process_vm_readv", 310),
    ("process_vm_writev", 311),
    // x86_64-only.
    ("modify_ldt", 154),
    ("arch_prctl", 158),
    // Docker's "adjtimex": allowed (read-only without CAP_SYS_TIME).
    ("adjtimex", 159),
];

/// Allowed only when the container holds the capability.
#[cfg(target_arch = "x86_64")]
const BY_CAPABILITY: &[(&str, &[Syscall])] = &[
    ("CAP_DAC_READ_SEARCH", &[("open_by_handle_at", 304)]),
    (
        "CAP_SYS_ADMIN",
        &[
            ("bpf", 321),
            ("clone", 56),
            ("clone3", 435),
            ("fanotify_init", 300),
            ("fsconfig", 431),
            ("fsmount", 432),
            ("fsopen", 430),
            ("fspick", 433),
            ("lookup_dcookie", 212),
            ("mount", 165),
            ("mount_setattr", 442),
            ("move_mount", 429),
            ("open_tree", 428),
            ("perf_event_open", 298),
            ("quotactl", 179),
            ("quotactl_fd", 443),
            ("setdomainname", 171),
            ("sethostname", 170),
            ("setns", 308),
            ("syslog", 103),
            ("umount2", 166),
            ("unshare", 272),
        ],
    ),
    ("CAP_SYS_BOOT", &[("reboot", 169)]),
    ("CAP_SYS_CHROOT", &[("chroot", 161)]),
    (
        "CAP_SYS_MODULE",
        &[
            ("init_module", 175),
            ("delete_module", 176),
            ("finit_module", 313),
        ],
    ),
    ("CAP_SYS_PACCT", &[("acct", 163)]),
    (
        "CAP_SYS_PTRACE",
        &[
            ("kcmp", 312),
            ("pidfd_getfd", 438),
            ("process_madvise", 440),
        ],
    ),
    ("CAP_SYS_RAWIO", &[("iopl", 172), ("ioperm", 173)]),
    (
        "CAP_SYS_TIME",
        &[("settimeofday", 164), ("clock_settime", 227)],
    ),
    ("CAP_SYS_TTY_CONFIG", &[("vhangup", 153)]),
    (
        "CAP_SYS_NICE",
        &[
            ("mbind", 237),
            ("set_mempolicy", 238),
            ("get_mempolicy", 239),
            ("set_mempolicy_home_node", 450),
        ],
    ),
    ("CAP_SYSLOG", &[("syslog", 103)]),
    ("CAP_BPF", &[("bpf", 321)]),
    ("CAP_PERFMON", &[("perf_event_open", 298)]),
];

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const SOCKET: i64 = 41;
    pub const CLONE: i64 = 56;
    pub const PERSONALITY: i64 = 135;
    pub const CLONE3: i64 = 435;
    pub const AUDIT_ARCH: u32 = 0xC000_003E;
}

/// clone flags that create namespaces (NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET):
/// without CAP_SYS_ADMIN, clone is allowed only when none is set.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
/// personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
/// and 0xffffffff (query).
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];
const AF_VSOCK: u64 = 40;

fn holds(caps: &[String], cap: &str) -> bool {
    caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
}

/// The syscalls allowed unconditionally or through a capability (not the argument-filtered
/// ones), for reports and tests.
#[cfg(target_arch = "x86_64")]
pub fn seccomp_allowed_syscalls(caps: &[String]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ALWAYS.iter().map(|(n, _)| *n).collect();
    for (cap, group) in BY_CAPABILITY {
        if holds(caps, cap) {
            names.extend(group.iter().map(|(n, _)| *n));
        }
    }
    names.sort_unstable();
    names.dedup();
    names
}

fn condition(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompRule, SecurityError> {
    let cond = SeccompCondition::new(arg, len, op, value)
        .map_err(|e| SecurityError::Seccomp(e.to_string()))?;
    SeccompRule::new(vec![cond]).map_err(|e| SecurityError::Seccomp(e.to_string()))
}

/// Docker's default seccomp profile for a container holding `caps`.
#[cfg(target_arch = "x86_64")]
pub fn default_seccomp(caps: &[String]) -> Result<SeccompProgram, SecurityError> {
    use SeccompCmpArgLen::{Dword, Qword};
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, number) in ALWAYS {
        rules.insert(*number, Vec::new());
    }
    for (cap, group) in BY_CAPABILITY {
        if holds(caps, cap) {
            for (_, number) in *group {
                rules.insert(*number, Vec::new());
            }
        }
    }
    // An int argument: compare its low 32 bits, the ones the kernel reads.
    rules.insert(
        nr::SOCKET,
        vec![condition(0, Dword, SeccompCmpOp::Ne, AF_VSOCK)?],
    );
    rules.insert(
        nr::PERSONALITY,
        PERSONALITIES
            .iter()
            .map(|p| condition(0, Dword, SeccompCmpOp::Eq, *p))
            .collect::<Result<_, _>>()?,
    );
    let sys_admin = holds(caps, "CAP_SYS_ADMIN");
    if !sys_admin {
        rules.insert(
            nr::CLONE,
            vec![condition(
                0,
                Qword,
                SeccompCmpOp::MaskedEq(CLONE_NAMESPACE_FLAGS),
                0,
            )?],
        );
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| SecurityError::Seccomp(e.to_string()))?;
    let compiled: seccompiler::BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| SecurityError::Seccomp(e.to_string()))?;

    let mut program = Vec::with_capacity(compiled.len() + 5);
    if !sys_admin {
        // clone3's flags live in memory BPF cannot read: Docker answers ENOSYS so libcs
        // fall back to clone, whose flags are filtered above. seccompiler has one action
        // per filter, so this prelude returns ENOSYS before its program runs.
        const LD_W_ABS: u16 = 0x20;
        const JEQ_K: u16 = 0x15;
        const RET_K: u16 = 0x06;
        program.push(pack(LD_W_ABS, 0, 0, 4)); // seccomp_data.arch
        program.push(pack(JEQ_K, 0, 3, nr::AUDIT_ARCH));
        program.push(pack(LD_W_ABS, 0, 0, 0)); // seccomp_data.nr
        program.push(pack(JEQ_K, 0, 1, nr::CLONE3 as u32));
        program.push(pack(
            RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ));
    }
    program.extend(compiled.iter().map(|i| pack(i.code, i.jt, i.jf, i.k)));
    if program.len() > usize::from(u16::MAX) {
        return Err(SecurityError::Seccomp(format!(
            "filter too long: {} instructions",
            program.len()
        )));
    }
    Ok(SeccompProgram(program))
}

/// Docker's default seccomp profile for a container holding `caps`.
#[cfg(not(target_arch = "x86_64"))]
pub fn default_seccomp(caps: &[String]) -> Result<SeccompProgram, SecurityError> {
    let _ = caps;
    Err(SecurityError::Seccomp(format!(
        "the default profile is only written for x86_64, not {}",
        std::env::consts::ARCH
    )))
}

/// One `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }` in its native memory layout,
/// so the program's buffer can be handed to the kernel as is.
fn pack(code: u16, jt: u8, jf: u8, k: u32) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[0..2].copy_from_slice(&code.to_ne_bytes());
    bytes[2] = jt;
    bytes[3] = jf;
    bytes[4..8].copy_from_slice(&k.to_ne_bytes());
    u64::from_ne_bytes(bytes)
}

/// Installs `program` on the calling thread (no_new_privs must already be set unless the
/// caller holds CAP_SYS_ADMIN). Async-signal-safe: no allocation.
pub fn install_seccomp(program: &SeccompProgram) -> Result<(), SecurityError> {
    let len = match u16::try_from(program.0.len()) {
        Ok(len) if len > 0 => len,
        _ => {
            return Err(SecurityError::SeccompInstall(io::Error::from_raw_os_error(
                libc::EINVAL,
            )))
        }
    };
    let prog = libc::sock_fprog {
        len,
        // The u64s hold sock_filters in their native layout (see `pack`); u64 alignment
        // exceeds sock_filter's.
        filter: program.0.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `len` valid instructions that outlive the call; the kernel
    // copies them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(SecurityError::SeccompInstall(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn default_is_dockers_fourteen() {
        let d = default_capabilities();
        assert_eq!(d.len(), 14);
        for c in &d {
            c.parse::<caps::Capability>().unwrap();
        }
        assert_eq!(resolve_capabilities(false, &[], &[]).unwrap(), d);
    }

    #[test]
    fn drop_then_add_any_spelling() {
        let r = resolve_capabilities(
            false,
            &s(&["sys_admin", "CAP_NET_ADMIN"]),
            &s(&["chown", "Cap_Kill"]),
        )
        .unwrap();
        assert!(r.contains(&"CAP_SYS_ADMIN".to_owned()));
        assert!(r.contains(&"CAP_NET_ADMIN".to_owned()));
        assert!(!r.contains(&"CAP_CHOWN".to_owned()));
        assert!(!r.contains(&"CAP_KILL".to_owned()));
        assert_eq!(r.len(), 14);
        // Adding one already there does not duplicate it.
        let r = resolve_capabilities(false, &s(&["CHOWN"]), &[]).unwrap();
        assert_eq!(r.len(), 14);
    }

    #[test]
    fn all_in_add_or_drop() {
        let all = resolve_capabilities(true, &[], &[]).unwrap();
        assert!(all.len() >= 38, "{all:?}");
        let r = resolve_capabilities(false, &s(&["all"]), &s(&["SYS_ADMIN"])).unwrap();
        assert_eq!(r.len(), all.len() - 1);
        assert!(!r.contains(&"CAP_SYS_ADMIN".to_owned()));
        let r = resolve_capabilities(false, &s(&["NET_ADMIN"]), &s(&["ALL"])).unwrap();
        assert_eq!(r, s(&["CAP_NET_ADMIN"]));
        let r = resolve_capabilities(false, &[], &s(&["ALL"])).unwrap();
        assert!(r.is_empty());
    }

    #[test]
    fn unknown_names_the_capability() {
        let err = resolve_capabilities(false, &s(&["CAP_FLY"]), &[]).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: CAP_FLY");
        let err = resolve_capabilities(false, &[], &s(&["nope"])).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn pack_matches_sock_filter_layout() {
        let word = pack(0x15, 1, 2, 0xC000_003E);
        let f: libc::sock_filter = unsafe { std::mem::transmute(word) };
        assert_eq!((f.code, f.jt, f.jf, f.k), (0x15, 1, 2, 0xC000_003E));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn table_has_no_duplicates_and_gates_admin_calls() {
        let mut numbers: Vec<i64> = ALWAYS.iter().map(|(_, n)| *n).collect();
        numbers.sort_unstable();
        let before = numbers.len();
        numbers.dedup();
        assert_eq!(before, numbers.len());
        let default = seccomp_allowed_syscalls(&default_capabilities());
        for denied in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "swapon",
            "reboot",
            "bpf",
            "kexec_load",
        ] {
            assert!(!default.contains(&denied), "{denied}");
        }
        assert!(default.contains(&"chroot"));
        let admin = seccomp_allowed_syscalls(&s(&["CAP_SYS_ADMIN"]));
        assert!(admin.contains(&"mount") && admin.contains(&"clone3"));
    }
}
