//! `POST /containers/create`: the body and the image config merged by Docker's rules into a
//! [`Record`] whose [`ContainerSpec`] leaves the shim nothing to decide. Pure apart from
//! the capability resolver; the host files (hosts, hostname, resolv.conf) are written by
//! [`write_etc_files`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use bollard_stubs::models::{
    ContainerConfig, HealthConfig, HostConfig, HostConfigLogConfig,
    MountBindOptionsPropagationEnum, MountPoint, MountTypeEnum, RestartPolicy,
    RestartPolicyNameEnum,
};

use crate::engine::runtime::security;
use crate::engine::runtime::spec::{
    CgroupSpec, ContainerSpec, LogSpec, MountKind, MountSpec, NamespacesSpec, NetworkNamespace,
    ProcessSpec, RlimitSpec, RootfsSpec, SeccompSpec,
};

use super::store::{NetworkChoice, Record, RunState, Status};
use super::{CreateContainer, EngineError};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;

/// Docker's masked paths for non-privileged containers.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths for non-privileged containers.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const ULIMIT_NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidParameter(msg.into())
}

/// Everything `resolve` needs besides the body.
pub struct Input<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub body: CreateContainer,
    /// `sha256:<hex>`.
    pub image_id: String,
    /// The image's `config` object.
    pub image_config: ContainerConfig,
    /// Overlay lower dirs of the image, top first.
    pub lower: Vec<PathBuf>,
    pub root: &'a Path,
    pub run_root: &'a Path,
    /// The host's hostname (a host-network container takes it, as in Docker).
    pub host_hostname: String,
    /// The container `container:<x>` names (its id, hostname and /etc files are shared).
    pub lookup: &'a dyn Fn(&str) -> Result<Record, EngineError>,
}

/// The record of a new container, plus Docker's warnings.
pub fn resolve(input: Input<'_>) -> Result<(Record, Vec<String>), EngineError> {
    let Input {
        id,
        name,
        body,
        image_id,
        image_config,
        lower,
        root,
        run_root,
        host_hostname,
        lookup,
    } = input;
    let mut warnings = Vec::new();
    let image = body
        .config
        .image
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("Config.Image is required"))?;
    let mut config = merge_config(body.config, &image_config)?;
    let mut hc = body.host_config.unwrap_or_default();

    let argv: Vec<String> = config
        .entrypoint
        .iter()
        .flatten()
        .chain(config.cmd.iter().flatten())
        .cloned()
        .collect();
    if argv.is_empty() {
        return Err(invalid("No command specified"));
    }

    // Network and the other namespaces.
    let network_mode = hc.network_mode.clone().unwrap_or_default();
    let mut joined: Option<Record> = None;
    let network = match network_mode.as_str() {
        "" | "default" | "bridge" | "none" => NetworkChoice::Own,
        "host" => NetworkChoice::Host,
        m => match m.strip_prefix("container:") {
            Some(other) if !other.is_empty() => {
                let o = lookup(other)?;
                let id = o.id.clone();
                joined = Some(o);
                NetworkChoice::Container(id)
            }
            _ => {
                return Err(invalid(format!(
                    "network {m} not found (user-defined networks arrive with issue 5)"
                )))
            }
        },
    };
    if hc.network_mode.as_deref().unwrap_or("").is_empty() {
        hc.network_mode = Some("default".into());
    }
    let ns_flag = |what: &str, v: &Option<String>, allowed: &[&str]| -> Result<bool, EngineError> {
        let v = v.as_deref().unwrap_or("");
        if v == "host" {
            Ok(true)
        } else if allowed.contains(&v) {
            Ok(false)
        } else {
            Err(invalid(format!("invalid {what} mode: {v}")))
        }
    };
    let ipc_host = ns_flag("IPC", &hc.ipc_mode, &["", "private", "shareable", "none"])?;
    let pid_host = ns_flag("PID", &hc.pid_mode, &[""])?;
    let uts_host = ns_flag("UTS", &hc.uts_mode, &[""])?;
    ns_flag("userns", &hc.userns_mode, &[""])?;
    if hc.ipc_mode.as_deref().unwrap_or("").is_empty() {
        hc.ipc_mode = Some("private".into());
    }
    if hc.devices.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(invalid("device mappings (Devices) are not supported"));
    }

    // Joining another container's network also takes its names and /etc files (Docker).
    if let Some(o) = &joined {
        if !config.hostname.as_deref().unwrap_or("").is_empty() {
            return Err(invalid(
                "conflicting options: hostname and the network mode",
            ));
        }
        if hc.dns.as_ref().is_some_and(|d| !d.is_empty())
            || hc.extra_hosts.as_ref().is_some_and(|d| !d.is_empty())
        {
            return Err(invalid("conflicting options: dns and the network mode"));
        }
        config.hostname = o.config.hostname.clone();
        config.domainname = o.config.domainname.clone();
    }
    // Hostname: given, the host's for host networking, else the short id (Docker's rules).
    if config.hostname.as_deref().unwrap_or("").is_empty() {
        config.hostname = Some(if network == NetworkChoice::Host {
            host_hostname
        } else {
            id[..12].to_string()
        });
    }
    if let Some(h) = &config.hostname {
        if h.len() > 63 || h.contains(['/', ' ']) {
            return Err(invalid(format!("invalid hostname format: {h}")));
        }
    }
    let hostname = config.hostname.clone().unwrap_or_default();
    let domainname = config.domainname.clone().unwrap_or_default();

    let state_dir = super::store::containers_dir(root).join(id);
    let bundle = run_root.join("containers").join(id);

    // Process.
    let tty = config.tty.unwrap_or(false);
    let env = process_env(&hostname, tty, config.env.as_deref().unwrap_or(&[]));
    let cwd = match config.working_dir.as_deref().unwrap_or("") {
        "" => "/".to_string(),
        d if d.starts_with('/') => clean_path(d),
        d => {
            return Err(invalid(format!(
                "the working directory '{d}' is invalid, it needs to be an absolute path"
            )))
        }
    };
    let privileged = hc.privileged.unwrap_or(false);
    let capabilities = security::resolve_capabilities(
        privileged,
        hc.cap_add.as_deref().unwrap_or(&[]),
        hc.cap_drop.as_deref().unwrap_or(&[]),
    )
    .map_err(|e| invalid(e.to_string()))?;
    let (no_new_privileges, seccomp_unconfined) =
        security_opts(hc.security_opt.as_deref().unwrap_or(&[]))?;
    let seccomp = if privileged || seccomp_unconfined {
        SeccompSpec::Unconfined
    } else {
        SeccompSpec::Default
    };
    let rlimits = ulimits(&hc)?;
    let oom_score_adj = match hc.oom_score_adj {
        Some(v) if !(-1000..=1000).contains(&v) => {
            return Err(invalid(format!(
                "Invalid value {v}, range for oom score adj is [-1000, 1000]"
            )))
        }
        Some(0) | None => None,
        Some(v) => Some(v as i32),
    };

    // Resources.
    let cgroup = cgroup_spec(id, &hc)?;
    let sysctls = sysctls(&hc, network == NetworkChoice::Host, ipc_host)?;
    let shm_size = match hc.shm_size {
        None | Some(0) => DEFAULT_SHM_SIZE,
        Some(n) => n as u64,
    };
    hc.shm_size = Some(shm_size as usize);

    // Mounts.
    let (mounts, mount_points) = mounts(&hc)?;
    let has_target = |t: &str| mounts.iter().any(|m| m.target == t);
    let etc_dir = joined
        .as_ref()
        .map_or(state_dir.clone(), |o| o.state_dir().to_path_buf());
    let etc_hosts = (!has_target("/etc/hosts")).then(|| etc_dir.join("hosts"));
    let etc_hostname = (!has_target("/etc/hostname")).then(|| etc_dir.join("hostname"));
    let etc_resolv_conf = (!has_target("/etc/resolv.conf")).then(|| etc_dir.join("resolv.conf"));

    let (masked_paths, readonly_paths) = if privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            hc.masked_paths
                .clone()
                .unwrap_or_else(|| MASKED_PATHS.iter().map(|s| s.to_string()).collect()),
            hc.readonly_paths
                .clone()
                .unwrap_or_else(|| READONLY_PATHS.iter().map(|s| s.to_string()).collect()),
        )
    };
    hc.masked_paths = Some(masked_paths.clone());
    hc.readonly_paths = Some(readonly_paths.clone());

    let log = log_spec(id, &state_dir, &mut hc)?;
    validate_restart(&mut hc)?;
    if hc
        .memory_swappiness
        .is_some_and(|s| s != -1 && !(0..=100).contains(&s))
    {
        return Err(invalid(format!(
            "Invalid value: {:?}, valid memory swappiness range is 0-100",
            hc.memory_swappiness
        )));
    }
    if !hc.port_bindings.as_ref().is_none_or(|p| p.is_empty()) {
        warnings.push("Published ports are discarded until networks arrive (issue 5)".to_string());
    }
    if config.volumes.as_ref().is_some_and(|v| !v.is_empty()) {
        warnings
            .push("The image's VOLUMEs are not created until volumes arrive (issue 5)".to_string());
    }

    let spec = ContainerSpec {
        id: id.to_string(),
        bundle,
        state_dir: state_dir.clone(),
        rootfs: RootfsSpec {
            lower,
            upper: state_dir.join("fs").join("upper"),
            work: state_dir.join("fs").join("work"),
            read_only: hc.readonly_rootfs.unwrap_or(false),
        },
        process: ProcessSpec {
            args: argv.clone(),
            env,
            cwd,
            user: config.user.clone().unwrap_or_default(),
            additional_groups: hc.group_add.clone().unwrap_or_default(),
            tty,
            open_stdin: config.open_stdin.unwrap_or(false),
            stdin_once: config.stdin_once.unwrap_or(false),
            capabilities,
            no_new_privileges,
            seccomp,
            rlimits,
            oom_score_adj,
        },
        hostname,
        domainname,
        namespaces: NamespacesSpec {
            network: match &network {
                NetworkChoice::Host => NetworkNamespace::Host,
                _ => NetworkNamespace::Path(run_root.join("netns").join(id)),
            },
            ipc_host,
            pid_host,
            uts_host,
        },
        mounts,
        etc_hosts,
        etc_hostname,
        etc_resolv_conf,
        shm_size,
        sysctls,
        cgroup,
        init: hc.init.unwrap_or(false),
        privileged,
        masked_paths,
        readonly_paths,
        log,
    };

    config.image = Some(image.clone());
    let record = Record {
        id: id.to_string(),
        name: name.to_string(),
        created: super::store::now_rfc3339(),
        image,
        image_id,
        path: argv[0].clone(),
        args: argv[1..].to_vec(),
        config,
        host_config: hc,
        network,
        spec,
        state: RunState {
            status: Status::Created,
            ..RunState::default()
        },
        restart_count: 0,
        manually_stopped: false,
        health: None,
        shim: None,
        mounts: mount_points,
    };
    Ok((record, warnings))
}

/// Docker's `merge(userConf, imageConf)` plus its entrypoint/cmd rule.
pub fn merge_config(
    mut user: ContainerConfig,
    image: &ContainerConfig,
) -> Result<ContainerConfig, EngineError> {
    if user.user.as_deref().unwrap_or("").is_empty() {
        user.user = image.user.clone();
    }
    match (&mut user.exposed_ports, &image.exposed_ports) {
        (Some(u), Some(i)) => {
            for (k, v) in i {
                u.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (u @ None, Some(i)) => *u = Some(i.clone()),
        _ => {}
    }
    // User env first; image entries whose key the user did not set follow.
    let mut env = user.env.take().unwrap_or_default();
    for e in image.env.iter().flatten() {
        let key = env_key(e);
        if !env.iter().any(|u| env_key(u) == key) {
            env.push(e.clone());
        }
    }
    user.env = Some(env);
    let mut labels = user.labels.take().unwrap_or_default();
    for (k, v) in image.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    user.labels = Some(labels);
    // `--entrypoint ""` arrives as [""]: it clears the image's entrypoint.
    if user.entrypoint.as_deref() == Some(&[String::new()][..]) {
        user.entrypoint = Some(Vec::new());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = image.cmd.clone();
            user.args_escaped = image.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = image.entrypoint.clone();
        }
    }
    if user.entrypoint.as_ref().is_some_and(|e| e.is_empty()) {
        user.entrypoint = None;
    }
    user.healthcheck = merge_health(user.healthcheck.take(), image.healthcheck.as_ref())?;
    if user.working_dir.as_deref().unwrap_or("").is_empty() {
        user.working_dir = image.working_dir.clone();
    }
    match (&mut user.volumes, &image.volumes) {
        (Some(u), Some(i)) => {
            for (k, v) in i {
                u.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (u @ None, Some(i)) => *u = Some(i.clone()),
        _ => {}
    }
    if user.stop_signal.as_deref().unwrap_or("").is_empty() {
        user.stop_signal = image.stop_signal.clone();
    }
    if let Some(s) = &user.stop_signal {
        super::signal::parse(s)?;
    }
    if user.on_build.is_none() {
        user.on_build = image.on_build.clone();
    }
    if user.shell.is_none() {
        user.shell = image.shell.clone();
    }
    Ok(user)
}

fn merge_health(
    user: Option<HealthConfig>,
    image: Option<&HealthConfig>,
) -> Result<Option<HealthConfig>, EngineError> {
    let merged = match (user, image) {
        (None, i) => i.cloned(),
        (Some(u), None) => Some(u),
        (Some(mut u), Some(i)) => {
            if u.test.as_ref().is_none_or(|t| t.is_empty()) {
                u.test = i.test.clone();
            }
            let fill = |u: &mut Option<i64>, i: Option<i64>| {
                if u.unwrap_or(0) == 0 {
                    *u = i;
                }
            };
            fill(&mut u.interval, i.interval);
            fill(&mut u.timeout, i.timeout);
            fill(&mut u.start_period, i.start_period);
            fill(&mut u.retries, i.retries);
            Some(u)
        }
    };
    if let Some(h) = &merged {
        for (what, v) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
        ] {
            if let Some(v) = v {
                if v != 0 && v < 1_000_000 {
                    return Err(invalid(format!(
                        "{what} in Healthcheck cannot be less than 1ms"
                    )));
                }
            }
        }
        if h.retries.is_some_and(|r| r < 0) {
            return Err(invalid("Retries in Healthcheck cannot be negative"));
        }
        if let Some(kind) = h.test.as_ref().and_then(|t| t.first()) {
            if !matches!(kind.as_str(), "NONE" | "CMD" | "CMD-SHELL") {
                return Err(invalid(format!(
                    "unknown healthcheck type {kind:?} (Test must start with NONE, CMD or CMD-SHELL)"
                )));
            }
        }
    }
    Ok(merged)
}

pub fn env_key(kv: &str) -> &str {
    kv.split_once('=').map_or(kv, |(k, _)| k)
}

/// Docker's CreateDaemonEnvironment: PATH, HOSTNAME (and TERM with a tty), then the
/// container's env replacing or appending by key.
pub fn process_env(hostname: &str, tty: bool, config_env: &[String]) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    for e in config_env {
        let key = env_key(e);
        match env.iter_mut().find(|x| env_key(x) == key) {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    env
}

/// `/a/./b//c/../d` → `/a/b/d`.
pub fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => out.push(s.to_str().unwrap_or("")),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    format!("/{}", out.join("/"))
}

fn security_opts(opts: &[String]) -> Result<(bool, bool), EngineError> {
    let mut nnp = false;
    let mut unconfined = false;
    for opt in opts {
        let (k, v) = opt
            .split_once(['=', ':'])
            .map_or((opt.as_str(), ""), |(k, v)| (k, v));
        match (k, v) {
            ("no-new-privileges", "" | "true") => nnp = true,
            ("no-new-privileges", "false") => nnp = false,
            ("seccomp", "unconfined") => unconfined = true,
            // No LSM here: disabling one is a no-op.
            ("label", "disable") | ("apparmor", "unconfined") => {}
            ("seccomp", _) => {
                return Err(invalid(format!(
                    "Invalid --security-opt: custom seccomp profiles are not supported (only seccomp=unconfined): {opt:?}"
                )))
            }
            _ => return Err(invalid(format!("Invalid --security-opt: {opt:?}"))),
        }
    }
    Ok((nnp, unconfined))
}

fn ulimits(hc: &HostConfig) -> Result<Vec<RlimitSpec>, EngineError> {
    let mut out: Vec<RlimitSpec> = Vec::new();
    for u in hc.ulimits.iter().flatten() {
        let name = u.name.clone().unwrap_or_default().to_ascii_lowercase();
        if !ULIMIT_NAMES.contains(&name.as_str()) {
            return Err(invalid(format!("invalid ulimit type: {name}")));
        }
        let soft = u.soft.unwrap_or(0);
        let hard = u.hard.unwrap_or(soft);
        let conv = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        let (soft, hard) = (conv(soft), conv(hard));
        if soft > hard {
            return Err(invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
        out.retain(|r| r.name != name);
        out.push(RlimitSpec { name, soft, hard });
    }
    Ok(out)
}

fn cgroup_spec(id: &str, hc: &HostConfig) -> Result<CgroupSpec, EngineError> {
    let memory = hc.memory.filter(|m| *m != 0);
    if let Some(m) = memory {
        if m > 0 && m < 6 * 1024 * 1024 {
            return Err(invalid("Minimum memory limit allowed is 6MB"));
        }
    }
    let memory_swap = hc.memory_swap.filter(|m| *m != 0);
    if let Some(s) = memory_swap {
        if memory.is_none() && s > 0 {
            return Err(invalid(
                "You should always set the Memory limit when using Memoryswap limit, see usage",
            ));
        }
        if s > 0 && memory.is_some_and(|m| s < m) {
            return Err(invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
    }
    let memory_reservation = hc.memory_reservation.filter(|m| *m != 0);
    if let (Some(r), Some(m)) = (memory_reservation, memory) {
        if m > 0 && r > m {
            return Err(invalid(
                "Minimum memory limit can not be less than memory reservation limit, see usage",
            ));
        }
    }
    let nano = hc.nano_cpus.unwrap_or(0);
    let (mut quota, mut period) = (
        hc.cpu_quota.filter(|q| *q != 0),
        hc.cpu_period.filter(|p| *p != 0),
    );
    if nano != 0 {
        if quota.is_some() || period.is_some() {
            return Err(invalid(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
            ));
        }
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        if nano < 0 || nano > ncpu * 1_000_000_000 {
            return Err(invalid(format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )));
        }
        period = Some(100_000);
        quota = Some(nano * 100_000 / 1_000_000_000);
    }
    if let Some(p) = period {
        if !(1000..=1_000_000).contains(&p) {
            return Err(invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"));
        }
    }
    if let Some(q) = quota {
        if q > 0 && q < 1000 {
            return Err(invalid(
                "CPU cfs quota can not be less than 1ms (i.e. 1000)",
            ));
        }
    }
    let cpu_shares = match hc.cpu_shares {
        Some(s) if s < 0 => return Err(invalid(format!("invalid CPU shares: {s}"))),
        Some(0) | None => None,
        Some(s) => Some(s as u64),
    };
    let pids_limit = hc.pids_limit.filter(|p| *p > 0);
    Ok(CgroupSpec {
        path: format!("berth/{id}"),
        memory,
        memory_swap,
        memory_reservation,
        cpu_quota: quota,
        cpu_period: period.map(|p| p as u64),
        cpu_shares,
        cpuset_cpus: hc.cpuset_cpus.clone().filter(|s| !s.is_empty()),
        pids_limit,
    })
}

/// Docker's ValidateSysctl: only namespaced sysctls.
fn sysctls(
    hc: &HostConfig,
    host_net: bool,
    host_ipc: bool,
) -> Result<BTreeMap<String, String>, EngineError> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let mut out = BTreeMap::new();
    for (k, v) in hc.sysctls.iter().flatten() {
        let ipc = IPC.contains(&k.as_str()) || k.starts_with("fs.mqueue.");
        if k.starts_with("net.") {
            if host_net {
                return Err(invalid(format!(
                    "sysctl '{k}' not allowed in host network namespace"
                )));
            }
        } else if ipc {
            if host_ipc {
                return Err(invalid(format!(
                    "sysctl '{k}' not allowed in host IPC namespace"
                )));
            }
        } else {
            return Err(invalid(format!("sysctl '{k}' is not whitelisted")));
        }
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

/// Docker's units.RAMInBytes: `64m`, `1.5g`, `1024`, `10kb` (binary multiples).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        "p" | "pb" | "pib" => 1 << 50,
        _ => return None,
    };
    if num < 0.0 {
        return None;
    }
    Some((num * mult as f64) as u64)
}

fn parse_tmpfs_options(
    target: &str,
    opts: &str,
) -> Result<(Option<u64>, Option<u32>, bool), EngineError> {
    let (mut size, mut mode, mut ro) = (None, None, false);
    for o in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if let Some(v) = o.strip_prefix("size=") {
            size = Some(
                parse_bytes(v)
                    .ok_or_else(|| invalid(format!("invalid tmpfs size for {target}: {v:?}")))?,
            );
        } else if let Some(v) = o.strip_prefix("mode=") {
            mode = Some(
                u32::from_str_radix(v, 8)
                    .map_err(|_| invalid(format!("invalid tmpfs mode for {target}: {v:?}")))?,
            );
        } else if o == "ro" {
            ro = true;
        } else if o == "rw" {
            ro = false;
        }
        // noexec, nosuid, nodev, exec, ...: the runtime mounts tmpfs nosuid,nodev as Docker.
    }
    Ok((size, mode, ro))
}

fn check_target(kind: &str, target: &str) -> Result<String, EngineError> {
    if !target.starts_with('/') {
        return Err(invalid(format!(
            "invalid mount config for type \"{kind}\": invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    let clean = clean_path(target);
    if clean == "/" {
        return Err(invalid(format!(
            "invalid mount config for type \"{kind}\": invalid specification: destination can't be '/'"
        )));
    }
    Ok(clean)
}

fn volume_error(what: &str) -> EngineError {
    invalid(format!(
        "invalid mount config: named and anonymous volumes ({what}) arrive with issue 5"
    ))
}

/// Binds, Mounts and Tmpfs → the shim's mounts (parents before children) and inspect's
/// `Mounts`.
fn mounts(hc: &HostConfig) -> Result<(Vec<MountSpec>, Vec<MountPoint>), EngineError> {
    let mut specs: Vec<MountSpec> = Vec::new();
    let mut points: Vec<MountPoint> = Vec::new();
    let mut push = |spec: MountSpec, point: Option<MountPoint>| -> Result<(), EngineError> {
        if specs.iter().any(|m| m.target == spec.target) {
            return Err(invalid(format!("Duplicate mount point: {}", spec.target)));
        }
        specs.push(spec);
        points.extend(point);
        Ok(())
    };
    for bind in hc.binds.iter().flatten() {
        let parts: Vec<&str> = bind.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [dst] => return Err(volume_error(&format!("anonymous volume {dst}"))),
            [src, dst] => (*src, *dst, ""),
            [src, dst, mode] => (*src, *dst, *mode),
            _ => return Err(invalid(format!("invalid volume specification: '{bind}'"))),
        };
        if !src.starts_with('/') {
            return Err(volume_error(&format!("volume {src:?}")));
        }
        if !dst.starts_with('/') {
            return Err(invalid(format!("invalid volume specification: '{bind}'")));
        }
        let target = check_target("bind", dst)?;
        let mut read_only = false;
        let mut propagation = None;
        for m in mode.split(',').filter(|m| !m.is_empty()) {
            match m {
                "ro" => read_only = true,
                "rw" => read_only = false,
                "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
                "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                    propagation = Some(m.to_string())
                }
                _ => return Err(invalid(format!("invalid mode: {m}"))),
            }
        }
        // Docker creates a missing bind source for -v (not for --mount).
        let source = PathBuf::from(clean_path(src));
        if !source.exists() {
            std::fs::create_dir_all(&source).map_err(|e| {
                invalid(format!(
                    "error while creating mount source path '{}': {e}",
                    source.display()
                ))
            })?;
        }
        push(
            MountSpec {
                target: target.clone(),
                kind: MountKind::Bind {
                    source: source.clone(),
                    propagation: propagation.clone(),
                },
                read_only,
            },
            Some(MountPoint {
                typ: Some("bind".into()),
                source: Some(source.display().to_string()),
                destination: Some(target),
                mode: Some(mode.to_string()),
                rw: Some(!read_only),
                propagation: Some(propagation.unwrap_or_else(|| "rprivate".into())),
                ..MountPoint::default()
            }),
        )?;
    }
    for m in hc.mounts.iter().flatten() {
        let target = m.target.clone().unwrap_or_default();
        let read_only = m.read_only.unwrap_or(false);
        match m.typ {
            Some(MountTypeEnum::BIND) => {
                let target = check_target("bind", &target)?;
                let src = m.source.clone().unwrap_or_default();
                if src.is_empty() {
                    return Err(invalid(
                        "invalid mount config for type \"bind\": field Source must not be empty",
                    ));
                }
                if !src.starts_with('/') {
                    return Err(invalid(format!(
                        "invalid mount config for type \"bind\": invalid mount path: '{src}' mount path must be absolute"
                    )));
                }
                if !Path::new(&src).exists() {
                    return Err(invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                    )));
                }
                let propagation = m
                    .bind_options
                    .as_ref()
                    .and_then(|b| b.propagation)
                    .and_then(|p| match p {
                        MountBindOptionsPropagationEnum::EMPTY => None,
                        p => Some(p.to_string()),
                    });
                push(
                    MountSpec {
                        target: target.clone(),
                        kind: MountKind::Bind {
                            source: PathBuf::from(clean_path(&src)),
                            propagation: propagation.clone(),
                        },
                        read_only,
                    },
                    Some(MountPoint {
                        typ: Some("bind".into()),
                        source: Some(clean_path(&src)),
                        destination: Some(target),
                        mode: Some(String::new()),
                        rw: Some(!read_only),
                        propagation: Some(propagation.unwrap_or_else(|| "rprivate".into())),
                        ..MountPoint::default()
                    }),
                )?;
            }
            Some(MountTypeEnum::TMPFS) => {
                let target = check_target("tmpfs", &target)?;
                if m.source.as_deref().is_some_and(|s| !s.is_empty()) {
                    return Err(invalid(
                        "invalid mount config for type \"tmpfs\": field Source must not be specified",
                    ));
                }
                let opts = m.tmpfs_options.as_ref();
                let size = opts
                    .and_then(|o| o.size_bytes)
                    .filter(|s| *s > 0)
                    .map(|s| s as u64);
                let mode = opts.and_then(|o| o.mode).map(|m| m as u32);
                push(
                    MountSpec {
                        target: target.clone(),
                        kind: MountKind::Tmpfs { size, mode },
                        read_only,
                    },
                    Some(MountPoint {
                        typ: Some("tmpfs".into()),
                        source: Some(String::new()),
                        destination: Some(target),
                        mode: Some(String::new()),
                        rw: Some(!read_only),
                        propagation: Some(String::new()),
                        ..MountPoint::default()
                    }),
                )?;
            }
            Some(MountTypeEnum::VOLUME) => {
                return Err(volume_error(&format!(
                    "volume {:?} at {target}",
                    m.source.clone().unwrap_or_default()
                )))
            }
            other => {
                return Err(invalid(format!(
                    "mount type {} is not supported",
                    other.map(|t| t.to_string()).unwrap_or_default()
                )))
            }
        }
    }
    let mut tmpfs: Vec<(&String, &String)> = hc.tmpfs.iter().flatten().collect();
    tmpfs.sort();
    for (target, opts) in tmpfs {
        let target = check_target("tmpfs", target)?;
        let (size, mode, read_only) = parse_tmpfs_options(&target, opts)?;
        push(
            MountSpec {
                target,
                kind: MountKind::Tmpfs { size, mode },
                read_only,
            },
            None,
        )?;
    }
    // Parents before children, as Docker sorts them.
    specs.sort_by_key(|m| m.target.split('/').filter(|s| !s.is_empty()).count());
    Ok((specs, points))
}

fn log_spec(id: &str, state_dir: &Path, hc: &mut HostConfig) -> Result<LogSpec, EngineError> {
    let lc = hc
        .log_config
        .get_or_insert_with(HostConfigLogConfig::default);
    let driver = match lc.typ.as_deref().unwrap_or("") {
        "" | "json-file" => "json-file",
        "none" => "none",
        other => {
            return Err(invalid(format!(
                "logger: no log driver named '{other}' is registered (berth has json-file and none)"
            )))
        }
    };
    lc.typ = Some(driver.to_string());
    let opts: HashMap<String, String> = lc.config.get_or_insert_with(HashMap::new).clone();
    let mut max_size = None;
    let mut max_file = 1u32;
    for (k, v) in &opts {
        match (driver, k.as_str()) {
            ("json-file", "max-size") => {
                max_size = if v == "-1" {
                    None
                } else {
                    match parse_bytes(v) {
                        Some(n) if n > 0 => Some(n),
                        _ => {
                            return Err(invalid(format!(
                                "invalid max-size for json-file log driver: {v}"
                            )))
                        }
                    }
                }
            }
            ("json-file", "max-file") => {
                max_file = match v.parse::<u32>() {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        return Err(invalid(format!(
                            "invalid value for max-file: {v}: max-file must be a positive integer"
                        )))
                    }
                }
            }
            ("json-file", "compress" | "labels" | "labels-regex" | "env" | "env-regex" | "tag") => {
            }
            _ => {
                return Err(invalid(format!(
                    "unknown log opt '{k}' for {driver} log driver"
                )))
            }
        }
    }
    if max_file > 1 && max_size.is_none() {
        return Err(invalid("max-file cannot be set without max-size"));
    }
    Ok(LogSpec {
        driver: driver.to_string(),
        path: state_dir.join(format!("{id}-json.log")),
        max_size,
        max_file,
    })
}

fn validate_restart(hc: &mut HostConfig) -> Result<(), EngineError> {
    let policy = hc.restart_policy.get_or_insert_with(RestartPolicy::default);
    let name = policy.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
    let retries = policy.maximum_retry_count.unwrap_or(0);
    if retries < 0 {
        return Err(invalid("maximum retry count cannot be negative"));
    }
    match name {
        RestartPolicyNameEnum::ON_FAILURE => {}
        _ if retries != 0 => {
            return Err(invalid(format!(
                "maximum retry count cannot be used with restart policy '{name}'"
            )))
        }
        _ => {}
    }
    if name == RestartPolicyNameEnum::EMPTY {
        policy.name = Some(RestartPolicyNameEnum::NO);
    }
    policy.maximum_retry_count = Some(retries);
    let restarting = !matches!(
        policy.name,
        Some(RestartPolicyNameEnum::NO) | Some(RestartPolicyNameEnum::EMPTY) | None
    );
    if hc.auto_remove.unwrap_or(false) && restarting {
        return Err(invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    Ok(())
}

/// `hosts`, `hostname`, `resolv.conf` in the state directory.
pub fn write_etc_files(record: &Record) -> Result<(), EngineError> {
    if matches!(record.network, NetworkChoice::Container(_)) {
        // The joined container's files are used.
        return Ok(());
    }
    let dir = record.state_dir();
    let hc = &record.host_config;
    let io = |what: &str, e: std::io::Error| {
        EngineError::Internal(format!("container {}: writing {what}: {e}", record.id))
    };
    let host = record.network == NetworkChoice::Host;
    let mut hosts = if host {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string()
    };
    if !hosts.is_empty() && !hosts.ends_with('\n') {
        hosts.push('\n');
    }
    for extra in hc.extra_hosts.iter().flatten() {
        let (name, ip) = extra
            .split_once(':')
            .ok_or_else(|| invalid(format!("invalid ExtraHosts entry {extra:?} (want host:ip)")))?;
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    std::fs::write(dir.join("hosts"), hosts).map_err(|e| io("hosts", e))?;
    std::fs::write(dir.join("hostname"), format!("{}\n", record.spec.hostname))
        .map_err(|e| io("hostname", e))?;
    let resolv = resolv_conf(
        host,
        hc.dns.as_deref().unwrap_or(&[]),
        hc.dns_search.as_deref().unwrap_or(&[]),
        hc.dns_options.as_deref().unwrap_or(&[]),
    );
    std::fs::write(dir.join("resolv.conf"), resolv).map_err(|e| io("resolv.conf", e))?;
    Ok(())
}

fn is_loopback_ns(line: &str) -> bool {
    line.split_whitespace()
        .nth(1)
        .is_some_and(|ip| ip.starts_with("127.") || ip == "::1")
}

/// Docker's resolv.conf: the host's (systemd-resolved's upstream file when the host's only
/// names the stub), loopback nameservers dropped outside the host namespace, Google's when
/// none is left; Dns/DnsSearch/DnsOptions replace the corresponding lines.
pub fn resolv_conf(
    host_net: bool,
    dns: &[String],
    search: &[String],
    options: &[String],
) -> String {
    let mut src = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let only_loopback = |s: &str| {
        let ns: Vec<&str> = s
            .lines()
            .filter(|l| l.trim_start().starts_with("nameserver"))
            .collect();
        !ns.is_empty() && ns.iter().all(|l| is_loopback_ns(l))
    };
    if !host_net && only_loopback(&src) {
        if let Ok(s) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
            src = s;
        }
    }
    let mut out = String::new();
    for line in src.lines() {
        let t = line.trim_start();
        let drop = (t.starts_with("nameserver")
            && (!dns.is_empty() || (!host_net && is_loopback_ns(t))))
            || (t.starts_with("search") && !search.is_empty())
            || (t.starts_with("options") && !options.is_empty());
        if !drop {
            out.push_str(line);
            out.push('\n');
        }
    }
    for d in dns {
        out.push_str(&format!("nameserver {d}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    if !out
        .lines()
        .any(|l| l.trim_start().starts_with("nameserver"))
    {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::Mount;

    fn cfg(entry: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerConfig {
        ContainerConfig {
            entrypoint: entry.map(|e| e.iter().map(|s| s.to_string()).collect()),
            cmd: cmd.map(|e| e.iter().map(|s| s.to_string()).collect()),
            ..ContainerConfig::default()
        }
    }

    fn argv(c: &ContainerConfig) -> Vec<String> {
        c.entrypoint
            .iter()
            .flatten()
            .chain(c.cmd.iter().flatten())
            .cloned()
            .collect()
    }

    #[test]
    fn entrypoint_and_cmd_follow_docker() {
        let image = cfg(Some(&["/ep"]), Some(&["default"]));
        // Nothing given: the image's both.
        assert_eq!(
            argv(&merge_config(cfg(None, None), &image).unwrap()),
            ["/ep", "default"]
        );
        // Cmd given: image entrypoint + the given cmd.
        assert_eq!(
            argv(&merge_config(cfg(None, Some(&["x"])), &image).unwrap()),
            ["/ep", "x"]
        );
        // Entrypoint given: it and the given cmd only.
        assert_eq!(
            argv(&merge_config(cfg(Some(&["/other"]), None), &image).unwrap()),
            ["/other"]
        );
        assert_eq!(
            argv(&merge_config(cfg(Some(&["/other"]), Some(&["a"])), &image).unwrap()),
            ["/other", "a"]
        );
        // `--entrypoint ""`: the image's entrypoint is cleared, its cmd kept.
        assert_eq!(
            argv(&merge_config(cfg(Some(&[""]), None), &image).unwrap()),
            ["default"]
        );
        let none = cfg(None, None);
        assert!(argv(&merge_config(cfg(None, None), &none).unwrap()).is_empty());
    }

    #[test]
    fn env_labels_and_health_merge() {
        let image = ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=image".into()]),
            labels: Some(HashMap::from([
                ("l".into(), "image".into()),
                ("m".into(), "image".into()),
            ])),
            healthcheck: Some(HealthConfig {
                test: Some(vec!["CMD".into(), "true".into()]),
                interval: Some(2_000_000_000),
                ..HealthConfig::default()
            }),
            stop_signal: Some("SIGQUIT".into()),
            ..ContainerConfig::default()
        };
        let user = ContainerConfig {
            env: Some(vec!["A=user".into(), "B=1".into()]),
            labels: Some(HashMap::from([("l".into(), "user".into())])),
            healthcheck: Some(HealthConfig {
                retries: Some(5),
                ..HealthConfig::default()
            }),
            ..ContainerConfig::default()
        };
        let m = merge_config(user, &image).unwrap();
        assert_eq!(m.env.unwrap(), ["A=user", "B=1", "PATH=/bin"]);
        let labels = m.labels.unwrap();
        assert_eq!(labels["l"], "user");
        assert_eq!(labels["m"], "image");
        let h = m.healthcheck.unwrap();
        assert_eq!(h.test.unwrap(), ["CMD", "true"]);
        assert_eq!(h.interval, Some(2_000_000_000));
        assert_eq!(h.retries, Some(5));
        assert_eq!(m.stop_signal.as_deref(), Some("SIGQUIT"));
    }

    #[test]
    fn process_env_fills_path_and_hostname() {
        let env = process_env("abc", true, &["PATH=/x".into(), "FOO=1".into()]);
        assert_eq!(env, ["PATH=/x", "HOSTNAME=abc", "TERM=xterm", "FOO=1"]);
        let env = process_env("abc", false, &[]);
        assert_eq!(env, [format!("PATH={DEFAULT_PATH}"), "HOSTNAME=abc".into()]);
    }

    #[test]
    fn sizes_and_paths() {
        assert_eq!(parse_bytes("10m"), Some(10 << 20));
        assert_eq!(parse_bytes("1.5k"), Some(1536));
        assert_eq!(parse_bytes("42"), Some(42));
        assert_eq!(parse_bytes("1GB"), Some(1 << 30));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(clean_path("/a/./b//c/../d/"), "/a/b/d");
        assert_eq!(clean_path("/"), "/");
    }

    #[test]
    fn mounts_parse_binds_tmpfs_and_refuse_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("made");
        let hc = HostConfig {
            binds: Some(vec![format!("{}:/data/sub:ro", src.display())]),
            tmpfs: Some(HashMap::from([(
                "/data".into(),
                "size=1m,mode=1777".into(),
            )])),
            ..HostConfig::default()
        };
        let (specs, points) = mounts(&hc).unwrap();
        assert!(src.is_dir(), "-v creates a missing source");
        assert_eq!(specs[0].target, "/data");
        assert_eq!(
            specs[0].kind,
            MountKind::Tmpfs {
                size: Some(1 << 20),
                mode: Some(0o1777)
            }
        );
        assert_eq!(specs[1].target, "/data/sub");
        assert!(specs[1].read_only);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].mode.as_deref(), Some("ro"));

        let vol = HostConfig {
            binds: Some(vec!["data:/x".into()]),
            ..HostConfig::default()
        };
        assert!(mounts(&vol).unwrap_err().to_string().contains("issue 5"));
        let dup = HostConfig {
            binds: Some(vec!["/tmp:/x".into(), "/tmp:/x/".into()]),
            ..HostConfig::default()
        };
        assert!(mounts(&dup)
            .unwrap_err()
            .to_string()
            .contains("Duplicate mount point"));
        let missing = HostConfig {
            mounts: Some(vec![Mount {
                typ: Some(MountTypeEnum::BIND),
                source: Some("/no/such/berth/path".into()),
                target: Some("/x".into()),
                ..Mount::default()
            }]),
            ..HostConfig::default()
        };
        assert!(mounts(&missing)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
    }

    #[test]
    fn resources_validate_like_docker() {
        let hc = HostConfig {
            nano_cpus: Some(500_000_000),
            ..HostConfig::default()
        };
        let c = cgroup_spec("x", &hc).unwrap();
        assert_eq!((c.cpu_quota, c.cpu_period), (Some(50_000), Some(100_000)));
        let hc = HostConfig {
            memory: Some(1024),
            ..HostConfig::default()
        };
        assert!(cgroup_spec("x", &hc).is_err());
        let hc = HostConfig {
            nano_cpus: Some(500_000_000),
            cpu_quota: Some(1000),
            ..HostConfig::default()
        };
        assert!(cgroup_spec("x", &hc).is_err());
        let hc = HostConfig {
            sysctls: Some(HashMap::from([("kernel.hostname".into(), "x".into())])),
            ..HostConfig::default()
        };
        assert!(sysctls(&hc, false, false).is_err());
        let hc = HostConfig {
            sysctls: Some(HashMap::from([("net.ipv4.ip_forward".into(), "1".into())])),
            ..HostConfig::default()
        };
        assert!(sysctls(&hc, false, false).is_ok());
        assert!(sysctls(&hc, true, false).is_err());
    }

    #[test]
    fn log_and_restart_options() {
        let mut hc = HostConfig {
            log_config: Some(HostConfigLogConfig {
                typ: None,
                config: Some(HashMap::from([
                    ("max-size".into(), "10m".into()),
                    ("max-file".into(), "3".into()),
                ])),
            }),
            ..HostConfig::default()
        };
        let l = log_spec("id", Path::new("/s"), &mut hc).unwrap();
        assert_eq!(
            (l.driver.as_str(), l.max_size, l.max_file),
            ("json-file", Some(10 << 20), 3)
        );
        assert_eq!(l.path, Path::new("/s/id-json.log"));
        let mut bad = HostConfig {
            log_config: Some(HostConfigLogConfig {
                typ: Some("syslog".into()),
                config: None,
            }),
            ..HostConfig::default()
        };
        assert!(log_spec("id", Path::new("/s"), &mut bad).is_err());

        let mut hc = HostConfig {
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: Some(3),
            }),
            ..HostConfig::default()
        };
        assert!(validate_restart(&mut hc).is_err());
        let mut hc = HostConfig {
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: None,
            }),
            auto_remove: Some(true),
            ..HostConfig::default()
        };
        assert!(validate_restart(&mut hc).is_err());
    }

    #[test]
    fn resolv_conf_drops_loopback_outside_host() {
        let r = resolv_conf(false, &["1.1.1.1".into()], &["example.com".into()], &[]);
        assert!(r.contains("nameserver 1.1.1.1\n"));
        assert!(r.contains("search example.com\n"));
        assert!(!r.contains("nameserver 127."));
    }
}
