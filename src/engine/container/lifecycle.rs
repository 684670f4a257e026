//! create, start, stop, kill, wait, remove; the monitor that learns of each exit from the
//! shim's pidfd; Docker's restart manager; re-adopting shims when the daemon starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{
    ContainerConfig, ContainerCreateResponse, ContainerWaitResponse, ContainerWaitResponseError,
    Health, HealthStatusEnum, RestartPolicyNameEnum,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::engine::runtime::spec::{ExitState, NetworkNamespace, ShimState};
use crate::engine::shim::{self, ShimError};
use crate::net::netns;

use super::store::{self, same_process, NetworkChoice, Record, RunState, Status};
use super::{
    create, image_error, lock, signal, Container, CreateContainer, Engine, EngineError,
    WaitCondition,
};

/// Longest wait for a SIGKILLed container to be reported gone.
const KILL_GRACE: Duration = Duration::from_secs(30);
/// Docker's restart manager: first delay, cap, and the run time that resets the delay.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

fn internal(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(e.to_string())
}

impl Engine {
    pub(super) async fn create_container(
        &self,
        name: Option<&str>,
        body: CreateContainer,
    ) -> Result<ContainerCreateResponse, EngineError> {
        let image_ref = body
            .config
            .image
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| EngineError::InvalidParameter("Config.Image is required".into()))?;
        let image = self
            .images
            .get(&image_ref)
            .map_err(|e| match image_error(e) {
                EngineError::NoSuchImage(_) => EngineError::NoSuchImage(image_ref.clone()),
                e => e,
            })?;
        let image_config: ContainerConfig = match self
            .images
            .config_json(&image)
            .map_err(image_error)?
            .get("config")
        {
            Some(v) if !v.is_null() => serde_json::from_value(v.clone()).map_err(|e| {
                EngineError::Internal(format!("image {image_ref}: its config: {e}"))
            })?,
            _ => ContainerConfig::default(),
        };
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => Some(store::validate_name(n)?),
            None => None,
        };
        let id = store::random_id()?;
        let host_hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        let lookup = |other: &str| self.find(other).map(|c| c.snapshot());
        let (record, warnings) = create::resolve(create::Input {
            id: &id,
            name: name.as_deref().unwrap_or(""),
            body,
            image_id: format!("sha256:{}", image.id.hex()),
            image_config,
            lower: self.images.lower_dirs(&image),
            root: &self.config.root,
            run_root: &self.config.run_root,
            host_hostname,
            lookup: &lookup,
        })?;

        // Claim the name, then write the state; give the name back if that fails.
        let name = {
            let mut reg = lock(&self.reg);
            let name = match name {
                Some(n) => {
                    if let Some(other) = reg.names.get(&n) {
                        return Err(EngineError::Conflict(format!(
                            "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                        )));
                    }
                    n
                }
                None => (0..)
                    .map(store::generate_name)
                    .find(|n| !reg.names.contains_key(n))
                    .unwrap_or_else(|| id[..12].to_string()),
            };
            reg.names.insert(name.clone(), id.clone());
            name
        };
        let mut record = record;
        record.name = name.clone();
        let written = std::fs::create_dir_all(record.state_dir())
            .map_err(|e| internal(format!("creating {}: {e}", record.state_dir().display())))
            .and_then(|()| create::write_etc_files(&record))
            .and_then(|()| record.save());
        if let Err(e) = written {
            lock(&self.reg).names.remove(&name);
            let _ = std::fs::remove_dir_all(record.state_dir());
            return Err(e);
        }
        let c = Container::new(record.clone());
        lock(&self.reg).by_id.insert(id.clone(), c);
        self.events.container(&record, "create", &[]);
        Ok(ContainerCreateResponse { id, warnings })
    }

    /// Starts the container (the caller holds its `op` lock). `explicit`: a user's start,
    /// which resets the restart manager; otherwise a restart-policy start.
    pub(super) async fn start_locked(
        &self,
        c: &Arc<Container>,
        explicit: bool,
    ) -> Result<(), EngineError> {
        let rec = c.snapshot();
        match rec.state.status {
            Status::Running => return Err(EngineError::NotModified),
            Status::Restarting if explicit => return Err(EngineError::NotModified),
            Status::Removing | Status::Dead => {
                return Err(EngineError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    rec.id
                )))
            }
            _ => {}
        }
        let generation = {
            let mut rt = lock(&c.rt);
            if explicit {
                rt.no_restart = false;
                rt.backoff = Duration::ZERO;
                rt.retries = 0;
                if let Some(t) = rt.restart_timer.take() {
                    t.abort();
                }
            }
            rt.generation += 1;
            rt.generation
        };

        let netns = match &rec.network {
            NetworkChoice::Own => {
                let path = self.netns_path(&rec.id);
                if path.exists() {
                    // Left by a run whose cleanup failed: the container is not running.
                    netns_remove(path.clone()).await?;
                }
                netns_create(path.clone()).await?;
                NetworkNamespace::Path(path)
            }
            NetworkChoice::Host => NetworkNamespace::Host,
            NetworkChoice::Container(other) => {
                let not_running = || {
                    EngineError::Conflict(format!(
                        "cannot join network of a non running container: {other}"
                    ))
                };
                let o = self.find(other).map_err(|_| not_running())?;
                let orec = o.snapshot();
                if orec.state.status != Status::Running {
                    return Err(not_running());
                }
                orec.spec.namespaces.network.clone()
            }
        };
        let mut spec = rec.spec.clone();
        spec.namespaces.network = netns.clone();
        let prepared = prepare_bundle(&rec, &spec);
        let launched = match prepared {
            Ok(()) => {
                let exe = self.config.exe.clone();
                let bundle = spec.bundle.clone();
                match tokio::task::spawn_blocking(move || shim::launch(&exe, &bundle)).await {
                    Ok(r) => r,
                    Err(e) => Err(ShimError::Protocol {
                        bundle: spec.bundle.display().to_string(),
                        message: e.to_string(),
                    }),
                }
            }
            Err(e) => Err(ShimError::Io(e)),
        };
        match launched {
            Ok(state) => {
                let health = active_healthcheck(&rec.config).is_some();
                c.update(|r| {
                    r.spec.namespaces.network = netns;
                    r.state = RunState {
                        status: Status::Running,
                        pid: i64::from(state.init_pid),
                        exit_code: 0,
                        error: String::new(),
                        oom_killed: false,
                        started_at: Some(state.started_at.clone()),
                        finished_at: r.state.finished_at.clone(),
                    };
                    r.shim = Some(state.clone());
                    if explicit {
                        r.manually_stopped = false;
                    }
                    if health {
                        let h = r.health.get_or_insert_with(Health::default);
                        h.status = Some(HealthStatusEnum::STARTING);
                        h.failing_streak = Some(0);
                        h.log.get_or_insert_with(Vec::new);
                    }
                });
                self.events.container(&c.snapshot(), "start", &[]);
                self.watch_shim(c, generation, state);
                if health {
                    self.start_health(c, generation);
                }
                Ok(())
            }
            Err(e) => {
                let (message, code) = match e {
                    ShimError::Start { message, exit_code } => (message, exit_code),
                    other => (other.to_string(), 128),
                };
                let message = if message.starts_with("OCI runtime") {
                    message
                } else {
                    format!("OCI runtime create failed: {message}")
                };
                self.cleanup_run(&rec).await;
                c.update(|r| {
                    r.state.exit_code = i64::from(code);
                    r.state.error = message.clone();
                    r.state.pid = 0;
                    r.state.status = if r.state.started_at.is_some() {
                        Status::Exited
                    } else {
                        Status::Created
                    };
                });
                self.events
                    .container(&c.snapshot(), "die", &[("exitCode", code.to_string())]);
                c.wake.send_modify(|w| {
                    w.exits += 1;
                    w.exit_code = i64::from(code);
                    w.error = Some(message.clone());
                });
                if rec.host_config.auto_remove.unwrap_or(false) {
                    self.auto_remove(c);
                }
                Err(if code == 126 || code == 127 {
                    EngineError::InvalidParameter(message)
                } else {
                    EngineError::Internal(message)
                })
            }
        }
    }

    /// Stops the container (the caller holds its `op` lock): its stop signal, then SIGKILL
    /// after `timeout_secs` (negative: wait forever).
    pub(super) async fn stop_locked(
        &self,
        c: &Arc<Container>,
        timeout_secs: Option<i64>,
        sig: Option<i32>,
    ) -> Result<(), EngineError> {
        let rec = c.snapshot();
        match rec.state.status {
            Status::Running => {}
            Status::Restarting => {
                self.cancel_restart(c);
                return Ok(());
            }
            _ => return Err(EngineError::NotModified),
        }
        let sig = match sig {
            Some(s) => s,
            None => stop_signal(&rec.config),
        };
        let timeout = timeout_secs
            .or(rec.config.stop_timeout)
            .unwrap_or(create::DEFAULT_STOP_TIMEOUT);
        lock(&c.rt).no_restart = true;
        c.update(|r| r.manually_stopped = true);
        let mut rx = c.wake.subscribe();
        let base = rx.borrow().exits;
        self.signal_init(c, sig)?;
        let grace = (timeout >= 0).then(|| Duration::from_secs(timeout as u64));
        if !wait_exit(&mut rx, base, grace).await {
            self.signal_init(c, libc::SIGKILL)?;
            if !wait_exit(&mut rx, base, Some(KILL_GRACE)).await {
                return Err(EngineError::Internal(format!(
                    "container {} did not exit within {}s of SIGKILL",
                    rec.id,
                    KILL_GRACE.as_secs()
                )));
            }
        }
        self.events.container(&c.snapshot(), "stop", &[]);
        Ok(())
    }

    pub(super) fn kill_container(&self, c: &Arc<Container>, sig: i32) -> Result<(), EngineError> {
        let rec = c.snapshot();
        match rec.state.status {
            Status::Running => {}
            Status::Restarting => {
                self.cancel_restart(c);
                return Ok(());
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "Cannot kill container: {0}: Container {0} is not running",
                    rec.id
                )))
            }
        }
        if sig == libc::SIGKILL || sig == stop_signal(&rec.config) {
            lock(&c.rt).no_restart = true;
        }
        c.update(|r| r.manually_stopped = true);
        self.signal_init(c, sig)
    }

    /// Sends `sig` to the container's pid 1 (never to a process that reused its pid).
    fn signal_init(&self, c: &Arc<Container>, sig: i32) -> Result<(), EngineError> {
        let rec = c.snapshot();
        self.events
            .container(&rec, "kill", &[("signal", sig.to_string())]);
        if let Some(s) = &rec.shim {
            signal::send(s.init_pid, s.init_start_ticks, sig)?;
        }
        Ok(())
    }

    /// A container waiting to be restarted stays stopped instead.
    fn cancel_restart(&self, c: &Arc<Container>) {
        {
            let mut rt = lock(&c.rt);
            rt.no_restart = true;
            if let Some(t) = rt.restart_timer.take() {
                t.abort();
            }
        }
        c.update(|r| {
            r.manually_stopped = true;
            if r.state.status == Status::Restarting {
                r.state.status = Status::Exited;
            }
        });
    }

    pub(super) async fn wait_container(
        &self,
        c: &Arc<Container>,
        condition: WaitCondition,
    ) -> Result<ContainerWaitResponse, EngineError> {
        let mut rx = c.wake.subscribe();
        let base = rx.borrow().exits;
        let rec = c.snapshot();
        let done = |w: &super::Wake| match condition {
            WaitCondition::Removed => w.removed,
            _ => w.removed || w.exits > base,
        };
        if condition != WaitCondition::NotRunning || rec.state.status.is_active() {
            loop {
                if done(&rx.borrow_and_update()) {
                    break;
                }
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
        let code = if condition == WaitCondition::NotRunning && !rec.state.status.is_active() {
            rec.state.exit_code
        } else {
            rx.borrow().exit_code
        };
        let error = c.snapshot().state.error;
        Ok(ContainerWaitResponse {
            status_code: code,
            error: (!error.is_empty()).then_some(ContainerWaitResponseError {
                message: Some(error),
            }),
        })
    }

    pub(super) async fn remove_container(
        &self,
        c: &Arc<Container>,
        force: bool,
    ) -> Result<(), EngineError> {
        let _op = c.op.lock().await;
        if c.wake.borrow().removed {
            return Err(EngineError::NoSuchContainer(c.id.clone()));
        }
        if lock(&c.rt).removing {
            return Err(EngineError::Conflict(format!(
                "removal of container {} is already in progress",
                c.id
            )));
        }
        let rec = c.snapshot();
        if rec.state.status.is_active() {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    rec.id
                )));
            }
            lock(&c.rt).no_restart = true;
            if rec.state.status == Status::Running {
                let mut rx = c.wake.subscribe();
                let base = rx.borrow().exits;
                self.signal_init(c, libc::SIGKILL)?;
                if !wait_exit(&mut rx, base, Some(KILL_GRACE)).await {
                    return Err(EngineError::Internal(format!(
                        "could not kill running container {}, cannot remove",
                        rec.id
                    )));
                }
            }
        }
        {
            let mut rt = lock(&c.rt);
            rt.removing = true;
            rt.no_restart = true;
            for t in [rt.restart_timer.take(), rt.health.take()]
                .into_iter()
                .flatten()
            {
                t.abort();
            }
        }
        c.update(|r| r.state.status = Status::Removing);
        let rec = c.snapshot();
        self.cleanup_run(&rec).await;
        let dir = rec.state_dir().to_path_buf();
        let removed = tokio::task::spawn_blocking(move || remove_tree(&dir))
            .await
            .map_err(internal)
            .and_then(|r| r.map_err(internal));
        if let Err(e) = removed {
            lock(&c.rt).removing = false;
            c.update(|r| r.state.status = Status::Dead);
            return Err(EngineError::Internal(format!(
                "unable to remove filesystem for {}: {e}",
                rec.id
            )));
        }
        {
            let mut reg = lock(&self.reg);
            reg.by_id.remove(&rec.id);
            if reg.names.get(&rec.name) == Some(&rec.id) {
                reg.names.remove(&rec.name);
            }
            reg.execs.retain(|_, e| e.container_id != rec.id);
        }
        self.events.container(&rec, "destroy", &[]);
        c.wake.send_modify(|w| w.removed = true);
        Ok(())
    }

    /// Watches the shim of the run `generation` and handles its exit.
    pub(super) fn watch_shim(&self, c: &Arc<Container>, generation: u64, shim: ShimState) {
        let weak = self.me.clone();
        let c = c.clone();
        self.spawn(async move {
            wait_process_exit(shim.shim_pid, shim.shim_start_ticks).await;
            if let Some(engine) = weak.upgrade() {
                engine.on_exit(&c, generation).await;
            }
        });
    }

    async fn on_exit(&self, c: &Arc<Container>, generation: u64) {
        if lock(&c.rt).generation != generation {
            return;
        }
        let rec = c.snapshot();
        if rec.state.status != Status::Running {
            return;
        }
        let exit = read_exit(&rec);
        let (code, oom, finished, error) = match exit {
            Some(e) => (
                i64::from(e.exit_code),
                e.oom_killed,
                e.finished_at,
                e.error.unwrap_or_default(),
            ),
            None => (
                255,
                false,
                store::now_rfc3339(),
                "the container's shim exited without recording an exit status".to_string(),
            ),
        };
        self.cleanup_run(&rec).await;
        let ran = match (
            rec.state.started_at.as_deref().and_then(store::parse_time),
            store::parse_time(&finished),
        ) {
            (Some(s), Some(f)) => (f - s).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let auto_remove = rec.host_config.auto_remove.unwrap_or(false);
        let delay = {
            let mut rt = lock(&c.rt);
            if let Some(h) = rt.health.take() {
                h.abort();
            }
            if auto_remove || rt.removing {
                None
            } else {
                should_restart(&rec, code, ran, &mut rt)
            }
        };
        c.update(|r| {
            r.state.status = if delay.is_some() {
                Status::Restarting
            } else {
                Status::Exited
            };
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.oom_killed = oom;
            r.state.finished_at = Some(finished.clone());
            r.state.error = error.clone();
            // Docker: a stopped health monitor reads unhealthy.
            if let Some(h) = r.health.as_mut() {
                h.status = Some(HealthStatusEnum::UNHEALTHY);
            }
        });
        let rec = c.snapshot();
        if oom {
            self.events.container(&rec, "oom", &[]);
        }
        self.events
            .container(&rec, "die", &[("exitCode", code.to_string())]);
        c.wake.send_modify(|w| {
            w.exits += 1;
            w.exit_code = code;
            w.error = (!error.is_empty()).then_some(error.clone());
        });
        if auto_remove {
            self.auto_remove(c);
        } else if let Some(delay) = delay {
            self.schedule_restart(c, generation, delay);
        }
    }

    /// `--rm`: removes the container once the current operation lets go of it.
    fn auto_remove(&self, c: &Arc<Container>) {
        let weak = self.me.clone();
        let c = c.clone();
        self.spawn(async move {
            if lock(&c.rt).removing {
                return;
            }
            if let Some(engine) = weak.upgrade() {
                match engine.remove_container(&c, true).await {
                    Ok(()) | Err(EngineError::NoSuchContainer(_)) => {}
                    Err(e) => eprintln!("berth: auto-removing container {}: {e}", c.id),
                }
            }
        });
    }

    fn schedule_restart(&self, c: &Arc<Container>, generation: u64, delay: Duration) {
        let weak = self.me.clone();
        let c2 = c.clone();
        let handle = self.spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(engine) = weak.upgrade() else {
                return;
            };
            let _op = c2.op.lock().await;
            {
                let rt = lock(&c2.rt);
                if rt.generation != generation || rt.no_restart || rt.removing {
                    return;
                }
            }
            if c2.status() != Status::Restarting {
                return;
            }
            c2.update(|r| r.restart_count += 1);
            if let Err(e) = engine.start_locked(&c2, false).await {
                eprintln!("berth: restarting container {}: {e}", c2.id);
            }
        });
        lock(&c.rt).restart_timer = Some(handle);
    }

    /// Removes what a run leaves on the host: the netns file, the bundle, the cgroup.
    pub(super) async fn cleanup_run(&self, rec: &Record) {
        let netns = (rec.network == NetworkChoice::Own).then(|| self.netns_path(&rec.id));
        let bundle = rec.bundle().to_path_buf();
        let cgroup = rec.spec.cgroup.path.clone();
        let id = rec.id.clone();
        // One blocking hop for the three: this sits between an exit and its waiters.
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(path) = netns {
                if let Err(e) = netns::remove(&path) {
                    eprintln!("berth: container {id}: {e}");
                }
            }
            if let Err(e) = remove_tree(&bundle) {
                eprintln!("berth: removing {}: {e}", bundle.display());
            }
            remove_cgroup(&cgroup);
        })
        .await;
    }

    pub(super) fn netns_path(&self, id: &str) -> PathBuf {
        self.config.run_root.join("netns").join(id)
    }

    /// Loads every container record, re-adopts the running ones, records the exits that
    /// happened meanwhile, and restarts what Docker restarts at daemon start.
    pub(super) async fn adopt_all(&self) {
        let dir = store::containers_dir(self.root());
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("berth: reading {}: {e}", dir.display());
                return;
            }
        };
        let mut all = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.join(store::CONFIG_FILE).is_file() {
                continue;
            }
            match Record::load(&path) {
                Ok(rec) => {
                    let c = Container::new(rec.clone());
                    let mut reg = lock(&self.reg);
                    reg.names.insert(rec.name.clone(), rec.id.clone());
                    reg.by_id.insert(rec.id.clone(), c.clone());
                    all.push(c);
                }
                Err(e) => eprintln!("berth: skipping container: {e}"),
            }
        }
        for c in &all {
            self.adopt(c).await;
        }
        for c in &all {
            let rec = c.snapshot();
            if rec.state.status != Status::Exited || rec.state.started_at.is_none() {
                continue;
            }
            let policy = rec
                .host_config
                .restart_policy
                .as_ref()
                .and_then(|p| p.name)
                .unwrap_or(RestartPolicyNameEnum::NO);
            let restart = match policy {
                RestartPolicyNameEnum::ALWAYS => true,
                RestartPolicyNameEnum::UNLESS_STOPPED => !rec.manually_stopped,
                _ => false,
            };
            if restart {
                let weak = self.me.clone();
                let c = c.clone();
                self.spawn(async move {
                    let Some(engine) = weak.upgrade() else {
                        return;
                    };
                    let _op = c.op.lock().await;
                    if let Err(e) = engine.start_locked(&c, true).await {
                        eprintln!("berth: restarting container {} at daemon start: {e}", c.id);
                    }
                });
            }
        }
    }

    async fn adopt(&self, c: &Arc<Container>) {
        let rec = c.snapshot();
        match rec.state.status {
            Status::Removing => {
                if let Err(e) = self.remove_container(c, true).await {
                    eprintln!("berth: finishing the removal of {}: {e}", rec.id);
                }
            }
            Status::Running | Status::Restarting => {
                let shim: Option<ShimState> = std::fs::read(rec.bundle().join("shim.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .or(rec.shim.clone());
                let alive = shim
                    .clone()
                    .filter(|s| same_process(s.shim_pid, s.shim_start_ticks));
                if let Some(s) = alive {
                    let generation = {
                        let mut rt = lock(&c.rt);
                        rt.generation += 1;
                        rt.generation
                    };
                    let health = active_healthcheck(&rec.config).is_some();
                    c.update(|r| {
                        r.state.status = Status::Running;
                        r.state.pid = i64::from(s.init_pid);
                        r.state.started_at = Some(s.started_at.clone());
                        r.shim = Some(s.clone());
                        if health {
                            let h = r.health.get_or_insert_with(Health::default);
                            if h.status.is_none() {
                                h.status = Some(HealthStatusEnum::STARTING);
                            }
                        }
                    });
                    self.watch_shim(c, generation, s);
                    if health {
                        self.start_health(c, generation);
                    }
                    return;
                }
                let exit = read_exit(&rec);
                self.cleanup_run(&rec).await;
                c.update(|r| {
                    r.state.status = Status::Exited;
                    r.state.pid = 0;
                    match &exit {
                        Some(e) => {
                            r.state.exit_code = i64::from(e.exit_code);
                            r.state.oom_killed = e.oom_killed;
                            r.state.finished_at = Some(e.finished_at.clone());
                            r.state.error = e.error.clone().unwrap_or_default();
                        }
                        None => {
                            r.state.exit_code = 255;
                            r.state.finished_at = Some(store::now_rfc3339());
                            r.state.error =
                                "the container's shim is gone and left no exit status".into();
                        }
                    }
                    if let Some(h) = r.health.as_mut() {
                        h.status = Some(HealthStatusEnum::UNHEALTHY);
                    }
                });
                let rec = c.snapshot();
                c.wake.send_modify(|w| {
                    w.exits += 1;
                    w.exit_code = rec.state.exit_code;
                });
            }
            _ => {}
        }
    }
}

/// The healthcheck to run, if any (`NONE` and an empty test disable it).
pub(super) fn active_healthcheck(
    config: &ContainerConfig,
) -> Option<&bollard_stubs::models::HealthConfig> {
    let h = config.healthcheck.as_ref()?;
    match h.test.as_ref()?.first()?.as_str() {
        "CMD" | "CMD-SHELL" => Some(h),
        _ => None,
    }
}

fn stop_signal(config: &ContainerConfig) -> i32 {
    config
        .stop_signal
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| signal::parse(s).ok())
        .unwrap_or(libc::SIGTERM)
}

/// Docker's RestartManager.ShouldRestart: the delay before restarting, or None.
fn should_restart(
    rec: &Record,
    exit_code: i64,
    ran: Duration,
    rt: &mut super::Live,
) -> Option<Duration> {
    let policy = rec.host_config.restart_policy.clone().unwrap_or_default();
    let name = policy.name.unwrap_or(RestartPolicyNameEnum::NO);
    if matches!(
        name,
        RestartPolicyNameEnum::NO | RestartPolicyNameEnum::EMPTY
    ) || rt.no_restart
    {
        return None;
    }
    if ran >= BACKOFF_RESET_AFTER {
        rt.backoff = Duration::ZERO;
    }
    rt.backoff = if rt.backoff.is_zero() {
        BACKOFF_START
    } else {
        (rt.backoff * 2).min(BACKOFF_MAX)
    };
    let max = policy.maximum_retry_count.unwrap_or(0);
    let restart = match name {
        RestartPolicyNameEnum::ALWAYS => true,
        RestartPolicyNameEnum::UNLESS_STOPPED => !rec.manually_stopped,
        RestartPolicyNameEnum::ON_FAILURE => (max == 0 || rt.retries < max) && exit_code != 0,
        _ => false,
    };
    if !restart {
        return None;
    }
    rt.retries += 1;
    Some(rt.backoff)
}

/// Waits until a waiter sees an exit after `base` (or removal); false on timeout.
pub(super) async fn wait_exit(
    rx: &mut tokio::sync::watch::Receiver<super::Wake>,
    base: u64,
    timeout: Option<Duration>,
) -> bool {
    let fut = async {
        loop {
            {
                let w = rx.borrow_and_update();
                if w.exits > base || w.removed {
                    return;
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, fut).await.is_ok(),
        None => {
            fut.await;
            true
        }
    }
}

/// Resolves when the process (identified by pid and start time) is gone.
pub(super) async fn wait_process_exit(pid: i32, start_ticks: u64) {
    let Some(fd) = signal::pidfd_for(pid, start_ticks) else {
        return;
    };
    // SAFETY: the pidfd is an owned, valid descriptor that AsyncFd keeps open until dropped.
    match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
        // A pidfd polls readable once the process has exited.
        Ok(afd) => {
            let _ = afd.readable().await;
        }
        Err(_) => {
            while same_process(pid, start_ticks) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn read_exit(rec: &Record) -> Option<ExitState> {
    let bytes = std::fs::read(rec.state_dir().join("exit.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `<bundle>/spec.json` for this run; stale files of the previous run removed.
fn prepare_bundle(
    rec: &Record,
    spec: &crate::engine::runtime::spec::ContainerSpec,
) -> std::io::Result<()> {
    std::fs::create_dir_all(&spec.bundle)?;
    let _ = std::fs::remove_file(spec.bundle.join("shim.json"));
    let _ = std::fs::remove_file(rec.state_dir().join("exit.json"));
    let bytes = serde_json::to_vec(spec).map_err(std::io::Error::other)?;
    // Atomic for the shim, but not synced: the run root does not survive a reboot anyway.
    let tmp = spec.bundle.join(".spec.json.tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
    }
    std::fs::rename(&tmp, spec.bundle.join("spec.json"))
}

/// remove_dir_all that is fine with a missing directory.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes `<hierarchy>/<path>` under every cgroup mount (the shim normally already did).
fn remove_cgroup(path: &str) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if !matches!(post.split_whitespace().next(), Some("cgroup" | "cgroup2")) {
            continue;
        }
        let Some(mount_point) = pre.split_whitespace().nth(4) else {
            continue;
        };
        let dir = Path::new(mount_point).join(path);
        for _ in 0..20 {
            match std::fs::remove_dir(&dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break,
            }
        }
    }
}

async fn netns_create(path: PathBuf) -> Result<(), EngineError> {
    tokio::task::spawn_blocking(move || netns::create(&path))
        .await
        .map_err(internal)?
        .map_err(internal)
}

async fn netns_remove(path: PathBuf) -> Result<(), EngineError> {
    tokio::task::spawn_blocking(move || netns::remove(&path))
        .await
        .map_err(internal)?
        .map_err(internal)
}
