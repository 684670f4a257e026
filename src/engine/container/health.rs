//! Health checks as Docker runs them: a probe every interval through the exec path, the last
//! five results, starting → healthy / unhealthy, failures inside the start period not
//! counted, a `health_status: <status>` event on each change.

use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{Health, HealthStatusEnum, HealthcheckResult};

use super::lifecycle::active_healthcheck;
use super::store::{self, Status};
use super::{lock, Container, Engine};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
const MAX_LOG_ENTRIES: usize = 5;
const MAX_OUTPUT: usize = 4096;

fn nanos_or(v: Option<i64>, default: Duration) -> Duration {
    match v {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// Go's `time.Duration.String()`, as Docker's messages print durations.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let trim = |whole: u128, frac: u128, digits: usize, unit: &str| {
        let f = format!("{frac:0digits$}");
        let f = f.trim_end_matches('0');
        if f.is_empty() {
            format!("{whole}{unit}")
        } else {
            format!("{whole}.{f}{unit}")
        }
    };
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return trim(ns / 1_000, ns % 1_000, 3, "µs");
    }
    if ns < 1_000_000_000 {
        return trim(ns / 1_000_000, ns % 1_000_000, 6, "ms");
    }
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let s = trim(s, frac, 9, "s");
    if h > 0 {
        format!("{h}h{m}m{s}")
    } else if m > 0 {
        format!("{m}m{s}")
    } else {
        s
    }
}

impl Engine {
    /// Starts the health monitor of the run `generation` (replacing any earlier one).
    pub(super) fn start_health(&self, c: &Arc<Container>, generation: u64) {
        let rec = c.snapshot();
        let Some(hc) = active_healthcheck(&rec.config).cloned() else {
            return;
        };
        let test = hc.test.clone().unwrap_or_default();
        let args: Vec<String> = if test.first().map(String::as_str) == Some("CMD-SHELL") {
            let shell = rec
                .config
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            shell
                .into_iter()
                .chain(test.iter().skip(1).cloned())
                .collect()
        } else {
            test.iter().skip(1).cloned().collect()
        };
        let interval = nanos_or(hc.interval, DEFAULT_INTERVAL);
        let timeout = nanos_or(hc.timeout, DEFAULT_TIMEOUT);
        let start_period = nanos_or(hc.start_period, Duration::ZERO);
        let retries = match hc.retries {
            Some(r) if r > 0 => r,
            _ => DEFAULT_RETRIES,
        };
        let weak = self.me.clone();
        let c2 = c.clone();
        let handle = self.spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(engine) = weak.upgrade() else {
                    return;
                };
                let rec = c2.snapshot();
                if lock(&c2.rt).generation != generation || rec.state.status != Status::Running {
                    return;
                }
                let start = chrono::Utc::now();
                let (code, output) = engine
                    .run_probe(&rec, args.clone(), timeout, MAX_OUTPUT)
                    .await;
                let end = chrono::Utc::now();
                let result = HealthcheckResult {
                    start: Some(start),
                    end: Some(end),
                    exit_code: Some(code),
                    output: Some(output),
                };
                engine.record_health(&c2, generation, result, start_period, retries);
            }
        });
        if let Some(old) = lock(&c.rt).health.replace(handle) {
            old.abort();
        }
    }

    fn record_health(
        &self,
        c: &Arc<Container>,
        generation: u64,
        result: HealthcheckResult,
        start_period: Duration,
        retries: i64,
    ) {
        if lock(&c.rt).generation != generation {
            return;
        }
        let changed = c.update(|r| {
            if r.state.status != Status::Running {
                return None;
            }
            let started = r.state.started_at.as_deref().and_then(store::parse_time);
            let h = r.health.get_or_insert_with(Health::default);
            let old = h.status.unwrap_or(HealthStatusEnum::STARTING);
            let mut streak = h.failing_streak.unwrap_or(0);
            let mut status = old;
            if result.exit_code == Some(0) {
                streak = 0;
                status = HealthStatusEnum::HEALTHY;
            } else {
                let in_start_period = old == HealthStatusEnum::STARTING
                    && match (result.start, started) {
                        (Some(s), Some(st)) => (s - st).to_std().unwrap_or_default() < start_period,
                        _ => false,
                    };
                if !in_start_period {
                    streak += 1;
                    if streak >= retries {
                        status = HealthStatusEnum::UNHEALTHY;
                    }
                }
            }
            let log = h.log.get_or_insert_with(Vec::new);
            log.push(result.clone());
            if log.len() > MAX_LOG_ENTRIES {
                let excess = log.len() - MAX_LOG_ENTRIES;
                log.drain(..excess);
            }
            h.failing_streak = Some(streak);
            h.status = Some(status);
            (old != status).then_some(status)
        });
        if let Some(status) = changed {
            self.events
                .container(&c.snapshot(), &format!("health_status: {status}"), &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}
