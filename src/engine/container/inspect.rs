//! inspect, list (`docker ps` with its filters and status strings) and top.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, ContainerSummaryInner,
    ContainerSummaryInnerHostConfig, ContainerSummaryInnerNetworkSettings, ContainerTopResponse,
    GraphDriverData, HealthStatusEnum, NetworkSettings,
};

use super::store::{self, Record, Status, ZERO_TIME};
use super::{lock, Container, Engine, EngineError, ListOptions};

fn state_enum(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Restarting => ContainerStateStatusEnum::RESTARTING,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Dead => ContainerStateStatusEnum::DEAD,
    }
}

/// Go's units.HumanDuration, as `docker ps` prints ages.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = d.num_minutes();
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = ((d.num_milliseconds() as f64) / 3_600_000.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", d.num_hours() / 24 / 365)
}

fn since(t: Option<&str>) -> String {
    let t = t
        .and_then(store::parse_time)
        .unwrap_or_else(chrono::Utc::now);
    human_duration(chrono::Utc::now() - t)
}

/// `docker ps`'s STATUS column.
pub fn status_line(rec: &Record) -> String {
    let s = &rec.state;
    match s.status {
        Status::Running => {
            let health = match rec.health.as_ref().and_then(|h| h.status) {
                Some(HealthStatusEnum::STARTING) => " (health: starting)",
                Some(HealthStatusEnum::HEALTHY) => " (healthy)",
                Some(HealthStatusEnum::UNHEALTHY) => " (unhealthy)",
                _ => "",
            };
            format!("Up {}{health}", since(s.started_at.as_deref()))
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            since(s.finished_at.as_deref())
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited => match s.finished_at.as_deref() {
            Some(f) if f != ZERO_TIME => {
                format!("Exited ({}) {} ago", s.exit_code, since(Some(f)))
            }
            _ => format!("Exited ({})", s.exit_code),
        },
    }
}

fn unix_seconds(t: &str) -> i64 {
    store::parse_time(t).map_or(0, |t| t.timestamp())
}

impl Engine {
    pub(super) fn inspect_container(&self, c: &Arc<Container>) -> ContainerInspectResponse {
        let rec = c.snapshot();
        let s = &rec.state;
        let execs: Vec<String> = lock(&self.reg)
            .execs
            .values()
            .filter(|e| e.container_id == rec.id && lock(&e.state).running)
            .map(|e| e.id.clone())
            .collect();
        let health = rec
            .health
            .clone()
            .filter(|_| super::lifecycle::active_healthcheck(&rec.config).is_some());
        let path_of = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .or(Some(String::new()))
        };
        let mut graph = HashMap::new();
        graph.insert(
            "LowerDir".to_string(),
            rec.spec
                .rootfs
                .lower
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        );
        graph.insert(
            "UpperDir".into(),
            rec.spec.rootfs.upper.display().to_string(),
        );
        graph.insert("WorkDir".into(), rec.spec.rootfs.work.display().to_string());
        ContainerInspectResponse {
            id: Some(rec.id.clone()),
            created: Some(rec.created.clone()),
            path: Some(rec.path.clone()),
            args: Some(rec.args.clone()),
            state: Some(ContainerState {
                status: Some(state_enum(s.status)),
                running: Some(s.status.is_active()),
                paused: Some(false),
                restarting: Some(s.status == Status::Restarting),
                oom_killed: Some(s.oom_killed),
                dead: Some(s.status == Status::Dead),
                pid: Some(s.pid),
                exit_code: Some(s.exit_code),
                error: Some(s.error.clone()),
                started_at: Some(s.started_at.clone().unwrap_or_else(|| ZERO_TIME.into())),
                finished_at: Some(s.finished_at.clone().unwrap_or_else(|| ZERO_TIME.into())),
                health,
            }),
            image: Some(rec.image_id.clone()),
            resolv_conf_path: path_of(&rec.spec.etc_resolv_conf),
            hostname_path: path_of(&rec.spec.etc_hostname),
            hosts_path: path_of(&rec.spec.etc_hosts),
            log_path: Some(if rec.spec.log.driver == "json-file" {
                rec.spec.log.path.display().to_string()
            } else {
                String::new()
            }),
            name: Some(format!("/{}", rec.name)),
            restart_count: Some(rec.restart_count),
            driver: Some("overlay2".into()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            exec_ids: (!execs.is_empty()).then_some(execs),
            host_config: Some(rec.host_config.clone()),
            graph_driver: Some(GraphDriverData {
                name: "overlay2".into(),
                data: graph,
            }),
            size_rw: None,
            size_root_fs: None,
            mounts: Some(rec.mounts.clone()),
            config: Some(rec.config.clone()),
            network_settings: Some(NetworkSettings {
                sandbox_key: Some(match &rec.spec.namespaces.network {
                    crate::engine::runtime::spec::NetworkNamespace::Path(p)
                        if s.status == Status::Running =>
                    {
                        p.display().to_string()
                    }
                    _ => String::new(),
                }),
                networks: Some(HashMap::new()),
                ..NetworkSettings::default()
            }),
        }
    }

    pub(super) fn list_containers(
        &self,
        options: &ListOptions,
    ) -> Result<Vec<ContainerSummaryInner>, EngineError> {
        for key in options.filters.keys() {
            if !matches!(
                key.as_str(),
                "label" | "name" | "id" | "status" | "ancestor" | "exited" | "health"
            ) {
                return Err(EngineError::InvalidParameter(format!(
                    "Invalid filter '{key}'"
                )));
            }
        }
        if let Some(statuses) = options.filters.get("status") {
            for s in statuses {
                if !matches!(
                    s.as_str(),
                    "created"
                        | "restarting"
                        | "running"
                        | "removing"
                        | "paused"
                        | "exited"
                        | "dead"
                ) {
                    return Err(EngineError::InvalidParameter(format!(
                        "Invalid filter 'status={s}'"
                    )));
                }
            }
        }
        let ancestors: Vec<String> = options
            .filters
            .get("ancestor")
            .into_iter()
            .flatten()
            .filter_map(|a| self.images.get(a).ok())
            .map(|r| format!("sha256:{}", r.id.hex()))
            .collect();
        let mut recs: Vec<Record> = self.containers().iter().map(|c| c.snapshot()).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        // A status filter or a limit shows stopped containers too (Docker's rule).
        let all = options.all
            || options.filters.contains_key("status")
            || options.limit.is_some_and(|n| n > 0);
        let mut out = Vec::new();
        for rec in recs {
            if !all && !rec.state.status.is_active() {
                continue;
            }
            if !self.matches(&rec, options, &ancestors) {
                continue;
            }
            out.push(summary(&rec));
            if options.limit.is_some_and(|n| n > 0 && out.len() >= n) {
                break;
            }
        }
        Ok(out)
    }

    fn matches(&self, rec: &Record, options: &ListOptions, ancestors: &[String]) -> bool {
        let f = &options.filters;
        let any = |key: &str, pred: &dyn Fn(&str) -> bool| -> bool {
            match f.get(key) {
                Some(values) if !values.is_empty() => values.iter().any(|v| pred(v)),
                _ => true,
            }
        };
        let labels = rec.config.labels.clone().unwrap_or_default();
        // Every label filter must hold (Docker ANDs labels, ORs the other keys' values).
        let label_ok = f
            .get("label")
            .into_iter()
            .flatten()
            .all(|l| match l.split_once('=') {
                Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
                None => labels.contains_key(l.as_str()),
            });
        label_ok
            && any("name", &|n| name_matches(&rec.name, n))
            && any("id", &|i| rec.id.starts_with(i))
            && any("status", &|s| s == rec.state.status.as_str())
            && any("ancestor", &|a| {
                ancestors.contains(&rec.image_id) || rec.image == a
            })
            && any("exited", &|e| {
                rec.state.status == Status::Exited
                    && e.parse::<i64>().is_ok_and(|e| e == rec.state.exit_code)
            })
            && any("health", &|h| {
                let status = rec
                    .health
                    .as_ref()
                    .and_then(|h| h.status)
                    .filter(|_| super::lifecycle::active_healthcheck(&rec.config).is_some())
                    .map_or("none".to_string(), |s| s.to_string());
                h == status
            })
    }

    pub(super) async fn top_container(
        &self,
        c: &Arc<Container>,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse, EngineError> {
        let _ = ps_args;
        let rec = c.snapshot();
        if rec.state.status != Status::Running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let spec = rec.spec.clone();
        tokio::task::spawn_blocking(move || {
            let mut pids = crate::engine::runtime::pids(&spec)
                .map_err(|e| EngineError::Internal(format!("top: {e}")))?;
            pids.sort_unstable();
            Ok(ContainerTopResponse {
                titles: Some(
                    ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                ),
                processes: Some(pids.into_iter().filter_map(ps_row).collect()),
            })
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
    }
}

/// Docker's name filter is a regular expression on the name; anchors and plain substrings
/// cover what compose and people use.
fn name_matches(name: &str, pattern: &str) -> bool {
    let pattern = pattern.strip_prefix('/').unwrap_or(pattern);
    let (start, pattern) = match pattern.strip_prefix('^') {
        Some(p) => (true, p.strip_prefix('/').unwrap_or(p)),
        None => (false, pattern),
    };
    let (end, pattern) = match pattern.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    match (start, end) {
        (true, true) => name == pattern,
        (true, false) => name.starts_with(pattern),
        (false, true) => name.ends_with(pattern),
        (false, false) => name.contains(pattern),
    }
}

fn summary(rec: &Record) -> ContainerSummaryInner {
    let mut command = rec.path.clone();
    for a in &rec.args {
        command.push(' ');
        command.push_str(a);
    }
    ContainerSummaryInner {
        id: Some(rec.id.clone()),
        names: Some(vec![format!("/{}", rec.name)]),
        image: Some(rec.image.clone()),
        image_id: Some(rec.image_id.clone()),
        command: Some(command),
        created: Some(unix_seconds(&rec.created)),
        ports: Some(Vec::new()),
        size_rw: None,
        size_root_fs: None,
        labels: Some(rec.config.labels.clone().unwrap_or_default()),
        state: Some(rec.state.status.as_str().to_string()),
        status: Some(status_line(rec)),
        host_config: Some(ContainerSummaryInnerHostConfig {
            network_mode: rec.host_config.network_mode.clone(),
        }),
        network_settings: Some(ContainerSummaryInnerNetworkSettings {
            networks: Some(HashMap::new()),
        }),
        mounts: Some(Vec::new()),
    }
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// One `ps -ef` row from /proc: UID PID PPID C STIME TTY TIME CMD.
fn ps_row(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let field = |n| store::stat_field(&stat, n).unwrap_or("0");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    let comm = stat
        .find('(')
        .zip(stat.rfind(')'))
        .map(|(a, b)| stat[a + 1..b].to_string())
        .unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = if cmdline.is_empty() {
        format!("[{comm}]")
    } else {
        cmdline
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let hz = clock_ticks();
    let cpu_ticks: u64 =
        field(14).parse::<u64>().unwrap_or(0) + field(15).parse::<u64>().unwrap_or(0);
    let start_ticks: u64 = field(22).parse().unwrap_or(0);
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0);
    let age = (uptime - start_ticks as f64 / hz as f64).max(0.0);
    let cpu_secs = cpu_ticks / hz;
    let c = if age > 0.0 {
        ((cpu_ticks as f64 / hz as f64) * 100.0 / age) as u64
    } else {
        0
    };
    let started = chrono::Local::now() - chrono::Duration::milliseconds((age * 1000.0) as i64);
    let stime = if started.date_naive() == chrono::Local::now().date_naive() {
        started.format("%H:%M").to_string()
    } else {
        started.format("%b%d").to_string()
    };
    let tty_nr: u64 = field(7).parse().unwrap_or(0);
    let tty = if tty_nr == 0 {
        "?".to_string()
    } else {
        let major = (tty_nr >> 8) & 0xfff;
        let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
        match major {
            136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
            4 => format!("tty{minor}"),
            _ => "?".to_string(),
        }
    };
    Some(vec![
        user_name(uid),
        pid.to_string(),
        field(4).to_string(),
        c.to_string(),
        stime,
        tty,
        format!(
            "{:02}:{:02}:{:02}",
            cpu_secs / 3600,
            (cpu_secs / 60) % 60,
            cpu_secs % 60
        ),
        cmd,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_go_units() {
        let s = chrono::Duration::seconds;
        assert_eq!(human_duration(s(0)), "Less than a second");
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(3)), "3 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(150)), "2 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(3 * 3600)), "3 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
    }

    #[test]
    fn name_filter() {
        assert!(name_matches("web-1", "web"));
        assert!(name_matches("web-1", "^web"));
        assert!(name_matches("web-1", "^/web-1$"));
        assert!(!name_matches("web-1", "^eb"));
    }

    #[test]
    fn ps_row_of_self() {
        let row = ps_row(std::process::id() as i32).unwrap();
        assert_eq!(row.len(), 8);
        assert_eq!(row[1], std::process::id().to_string());
    }
}
