//! What the shim needs to run one container, fully resolved by the daemon: no image lookups,
//! no Docker defaults left to apply. Written by the daemon as `<bundle>/spec.json` and read by
//! `berth shim`; the only contract between the two (so it is plain serde data).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// 64-hex container id.
    pub id: String,
    /// Run-time directory of this container (`<run_root>/containers/<id>`): `spec.json`,
    /// `shim.json`, `attach.sock`, and `rootfs/` (the overlay is mounted there inside the
    /// container's own mount namespace only, so nothing is left on the host).
    pub bundle: PathBuf,
    /// Persistent directory (`<root>/containers/<id>`): the json-file log, `exit.json`,
    /// `fs/upper` + `fs/work`, and the daemon's `hosts`, `hostname`, `resolv.conf`.
    pub state_dir: PathBuf,
    pub rootfs: RootfsSpec,
    pub process: ProcessSpec,
    pub hostname: String,
    pub domainname: String,
    pub namespaces: NamespacesSpec,
    /// Bind mounts and tmpfs from the options, applied in order after the standard ones.
    pub mounts: Vec<MountSpec>,
    /// Host files bind-mounted over `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`
    /// (absent: the image's own file is left alone).
    pub etc_hosts: Option<PathBuf>,
    pub etc_hostname: Option<PathBuf>,
    pub etc_resolv_conf: Option<PathBuf>,
    /// `/dev/shm` size in bytes (Docker: 64 MiB).
    pub shm_size: u64,
    pub sysctls: BTreeMap<String, String>,
    pub cgroup: CgroupSpec,
    /// `init: true`: pid 1 is berth's reaper, which forwards signals to the process it forks.
    pub init: bool,
    pub privileged: bool,
    /// Paths made inaccessible (Docker's list unless privileged).
    pub masked_paths: Vec<String>,
    /// Paths remounted read-only (Docker's list unless privileged).
    pub readonly_paths: Vec<String>,
    pub log: LogSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsSpec {
    /// Overlay lower dirs, top-most first (snapshot `diff` dirs of the image's layers).
    /// Empty for an image with no layers (a scratch image): an empty lower is then used.
    pub lower: Vec<PathBuf>,
    /// `<state_dir>/fs/upper` and `<state_dir>/fs/work`; created if missing and kept across
    /// restarts (as Docker keeps a container's writable layer).
    pub upper: PathBuf,
    pub work: PathBuf,
    /// `read_only: true`: the root is remounted read-only after setup.
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// argv after Docker's entrypoint/cmd rules; `args[0]` is looked up in the container's
    /// `PATH` (from `env`) when it has no `/`, as Docker does.
    pub args: Vec<String>,
    /// `KEY=value`, image env overlaid by the container's; `PATH` and `HOSTNAME` filled in as
    /// Docker does when absent.
    pub env: Vec<String>,
    /// Absolute; created (owned by the user) if it does not exist, as Docker does.
    pub cwd: String,
    /// Docker's `User`: `""` (root), `name`, `uid`, `name:group`, `uid:gid`; names resolved
    /// in the container's /etc/passwd and /etc/group after the root is mounted.
    pub user: String,
    /// Docker's `GroupAdd`.
    pub additional_groups: Vec<String>,
    pub tty: bool,
    /// Keep stdin open for an attach (`docker run -i`); otherwise stdin is /dev/null.
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client detaches.
    pub stdin_once: bool,
    /// The final capability set (bounding = permitted = effective; inheritable and ambient
    /// empty for non-root users, as Docker does). Names as `CAP_CHOWN`.
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub seccomp: SeccompSpec,
    pub rlimits: Vec<RlimitSpec>,
    /// `oom_score_adj`, when set.
    pub oom_score_adj: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompSpec {
    /// Docker's default profile, computed against `ProcessSpec::capabilities`.
    Default,
    Unconfined,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlimitSpec {
    /// Docker's name without `RLIMIT_`, lower case: `nofile`, `nproc`, `core`, ...
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacesSpec {
    pub network: NetworkNamespace,
    /// `ipc: host` / `pid: host` / `uts: host` share the host's; otherwise private.
    pub ipc_host: bool,
    pub pid_host: bool,
    pub uts_host: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkNamespace {
    /// Join the namespace bind-mounted at this path (`<run_root>/netns/<id>`, or another
    /// container's for `network_mode: service:x` / `container:x`). The daemon created it.
    Path(PathBuf),
    /// `network_mode: host`.
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute path inside the container.
    pub target: String,
    pub kind: MountKind,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A host path (file or directory); `recursive` = rbind (Docker's default).
    Bind {
        source: PathBuf,
        propagation: Option<String>,
    },
    /// `size` in bytes (None: kernel default); `mode` as octal bits.
    Tmpfs {
        size: Option<u64>,
        mode: Option<u32>,
    },
}

/// `Default`: no limits (and an empty path, which callers always set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupSpec {
    /// Relative path under each hierarchy's root: `berth/<id>`.
    pub path: String,
    /// Bytes; None = unlimited.
    pub memory: Option<i64>,
    /// memory + swap in bytes (-1 = unlimited swap); None = Docker's default (2× memory).
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// CFS quota/period in microseconds (from `cpus` / `NanoCpus`).
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    /// cgroup v1 shares (v2 weight is derived from it).
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSpec {
    /// `json-file` (Docker's default) or `none`.
    pub driver: String,
    /// `<state_dir>/<id>-json.log`.
    pub path: PathBuf,
    /// Bytes; None = never rotate.
    pub max_size: Option<u64>,
    /// Files kept including the current one (Docker: 1).
    pub max_file: u32,
}

/// Written by the shim as `<bundle>/shim.json` once the container's process has started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimState {
    pub shim_pid: i32,
    /// The container's pid 1, as the host sees it.
    pub init_pid: i32,
    /// Field 22 of /proc/<pid>/stat: lets a later daemon tell a reused pid from ours.
    pub init_start_ticks: u64,
    pub shim_start_ticks: u64,
    /// RFC 3339 with nanoseconds, UTC.
    pub started_at: String,
}

/// Written by the shim as `<state_dir>/exit.json` (atomically) when the container's pid 1
/// has been reaped; the only record of how a container ended that survives a reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitState {
    /// Docker's convention: the exit status, or 128 + signal.
    pub exit_code: i32,
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
    /// Set when the process never ran (bad executable, mount failure, ...).
    pub error: Option<String>,
}
