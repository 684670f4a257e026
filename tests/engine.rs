//! The engine end to end, as root: real containers from the busybox test image, supervised
//! by `Engine` in this process, their shims re-exec'd from the berth binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::engine::container::{
    CreateContainer, Engine, EngineConfig, EngineError, ExecStartOptions, LogsOptions, StdStream,
    WaitCondition,
};
use berth::engine::image::registry::RegistryConfig;
use berth::engine::image::testkit::{ImageConfig, TestImage};
use bollard_stubs::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ExecConfig, HealthStatusEnum,
};
use futures_util::StreamExt;
use serde_json::json;

/// Temp roots for one test; on drop, kills whatever the test left running and removes its
/// cgroups and netns mounts, so a failing test leaves nothing behind.
struct Env {
    root: tempfile::TempDir,
    run_root: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            root: tempfile::tempdir().unwrap(),
            run_root: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> EngineConfig {
        EngineConfig {
            root: self.root.path().to_path_buf(),
            run_root: self.run_root.path().to_path_buf(),
            registry: RegistryConfig::default(),
            // BERTH_TEST_EXE: a copy of this tree's binary when the target dir is shared.
            exe: std::env::var_os("BERTH_TEST_EXE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth"))),
        }
    }

    /// Opens an engine with the busybox image loaded as `busybox:latest`.
    async fn engine(&self) -> Arc<Engine> {
        let engine = Engine::open(self.config()).await.unwrap();
        if engine.images().get("busybox").is_err() {
            let tar = TestImage::busybox()
                .tag("busybox:latest")
                .docker_archive_tar();
            engine.images().load(&tar[..]).unwrap();
        }
        engine
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let bundles = self.run_root.path().join("containers");
        for entry in std::fs::read_dir(&bundles).into_iter().flatten().flatten() {
            let Ok(bytes) = std::fs::read(entry.path().join("shim.json")) else {
                continue;
            };
            let Ok(state) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            for key in ["init_pid", "shim_pid"] {
                if let Some(pid) = state[key].as_i64().filter(|p| *p > 1) {
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }
        let ids: Vec<String> = std::fs::read_dir(self.root.path().join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        for id in &ids {
            for dir in cgroup_dirs(id) {
                for _ in 0..50 {
                    if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                        break;
                    }
                    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                        for pid in procs.lines().filter_map(|p| p.parse::<i32>().ok()) {
                            unsafe { libc::kill(pid, libc::SIGKILL) };
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        for entry in std::fs::read_dir(self.run_root.path().join("netns"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = nix::mount::umount2(&entry.path(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// `berth/<id>` under every cgroup hierarchy that has it.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if !matches!(post.split_whitespace().next(), Some("cgroup" | "cgroup2")) {
            continue;
        }
        if let Some(mp) = pre.split_whitespace().nth(4) {
            let d = Path::new(mp).join("berth").join(id);
            if d.exists() {
                out.push(d);
            }
        }
    }
    out
}

fn body(v: serde_json::Value) -> CreateContainer {
    serde_json::from_value(v).unwrap()
}

async fn run(engine: &Engine, v: serde_json::Value) -> String {
    let id = engine.create(None, body(v)).await.unwrap().id;
    engine.start(&id).await.unwrap();
    id
}

async fn inspect(engine: &Engine, id: &str) -> ContainerInspectResponse {
    engine.inspect(id).await.unwrap()
}

fn status(i: &ContainerInspectResponse) -> ContainerStateStatusEnum {
    i.state.as_ref().unwrap().status.unwrap()
}

async fn logs(engine: &Engine, id: &str, follow: bool) -> (String, String) {
    let mut out = engine
        .logs(
            id,
            &LogsOptions {
                follow,
                stdout: true,
                stderr: true,
                ..LogsOptions::default()
            },
        )
        .await
        .unwrap()
        .output;
    let (mut o, mut e) = (String::new(), String::new());
    while let Some(chunk) = out.next().await {
        let s = String::from_utf8_lossy(&chunk.data).into_owned();
        match chunk.stream {
            StdStream::Stderr => e.push_str(&s),
            _ => o.push_str(&s),
        }
    }
    (o, e)
}

/// Polls `inspect` until `pred` holds (or panics after `secs`).
async fn until(
    engine: &Engine,
    id: &str,
    secs: u64,
    what: &str,
    pred: impl Fn(&ContainerInspectResponse) -> bool,
) -> ContainerInspectResponse {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let i = inspect(engine, id).await;
        if pred(&i) {
            return i;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            i.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_echo_and_keeps_its_logs() {
    let env = Env::new();
    let engine = env.engine().await;
    let mut events = engine.events();
    let id = engine
        .create(
            Some("echo-test"),
            body(json!({"Image": "busybox", "Cmd": ["sh", "-c", "echo hello; echo oops >&2"]})),
        )
        .await
        .unwrap()
        .id;
    assert_eq!(id.len(), 64);
    let i = inspect(&engine, "echo-test").await;
    assert_eq!(status(&i), ContainerStateStatusEnum::CREATED);
    assert_eq!(i.name.as_deref(), Some("/echo-test"));
    assert_eq!(i.path.as_deref(), Some("sh"));
    assert_eq!(
        i.config.as_ref().unwrap().hostname.as_deref(),
        Some(&id[..12])
    );

    let waiter = {
        let engine = engine.clone();
        let id = id.clone();
        tokio::spawn(async move { engine.wait(&id, WaitCondition::NextExit).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    engine.start(&id).await.unwrap();
    let w = waiter.await.unwrap().unwrap();
    assert_eq!(w.status_code, 0);
    let i = inspect(&engine, &id).await;
    assert_eq!(status(&i), ContainerStateStatusEnum::EXITED);
    assert_eq!(i.state.as_ref().unwrap().exit_code, Some(0));
    let (out, err) = logs(&engine, &id, false).await;
    assert_eq!(out, "hello\n");
    assert_eq!(err, "oops\n");
    // Following a stopped container's log returns what there is.
    assert_eq!(logs(&engine, &id, true).await.0, "hello\n");

    let mut actions = Vec::new();
    while let Ok(ev) = events.try_recv() {
        actions.push(ev.action.unwrap_or_default());
    }
    assert_eq!(actions, ["create", "start", "die"], "{actions:?}");
    let list = engine
        .list(&berth::engine::container::ListOptions {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0]
        .status
        .as_deref()
        .unwrap()
        .starts_with("Exited (0) "));
    engine.remove(&id, false, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn create_refuses_bad_input_like_docker() {
    let env = Env::new();
    let engine = env.engine().await;
    let e = engine
        .create(None, body(json!({"Image": "nosuch"})))
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::NoSuchImage(_)), "{e}");
    assert!(e.to_string().starts_with("No such image: nosuch"), "{e}");
    let nocmd = TestImage::busybox()
        .config(ImageConfig::default())
        .tag("nocmd:latest")
        .docker_archive_tar();
    engine.images().load(&nocmd[..]).unwrap();
    let e = engine
        .create(None, body(json!({"Image": "nocmd"})))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("No command specified"), "{e}");
    // `--entrypoint ""` clears the image's entrypoint but keeps its cmd (Docker's rule).
    let id = engine
        .create(
            None,
            body(json!({"Image": "busybox", "Entrypoint": [""], "Cmd": []})),
        )
        .await
        .unwrap()
        .id;
    let i = inspect(&engine, &id).await;
    assert_eq!(i.path.as_deref(), Some("sh"));
    engine
        .create(Some("dup"), body(json!({"Image": "busybox"})))
        .await
        .unwrap();
    let e = engine
        .create(Some("dup"), body(json!({"Image": "busybox"})))
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Conflict(_)), "{e}");
    let e = engine
        .create(
            None,
            body(json!({"Image": "busybox", "HostConfig": {"Binds": ["data:/data"]}})),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::InvalidParameter(_)), "{e}");

    // A missing executable: start fails with Docker's 127 and the container stays created.
    let id = engine
        .create(None, body(json!({"Image": "busybox", "Cmd": ["nosuch"]})))
        .await
        .unwrap()
        .id;
    let e = engine.start(&id).await.unwrap_err();
    assert!(e.to_string().contains("nosuch"), "{e}");
    let i = inspect(&engine, &id).await;
    assert_eq!(status(&i), ContainerStateStatusEnum::CREATED);
    assert_eq!(i.state.as_ref().unwrap().exit_code, Some(127));
    assert!(!i
        .state
        .as_ref()
        .unwrap()
        .error
        .as_deref()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_falls_back_to_sigkill_after_the_timeout() {
    let env = Env::new();
    let engine = env.engine().await;
    let id = run(
        &engine,
        json!({"Image": "busybox", "Cmd": ["sleep", "1000"]}),
    )
    .await;
    let i = inspect(&engine, &id).await;
    assert_eq!(status(&i), ContainerStateStatusEnum::RUNNING);
    assert!(i.state.as_ref().unwrap().pid.unwrap() > 1);
    let t = Instant::now();
    engine.stop(&id, Some(1), None).await.unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "stop took {took:?}"
    );
    eprintln!("stop with a 1 s timeout took {took:?}");
    let i = inspect(&engine, &id).await;
    assert_eq!(status(&i), ContainerStateStatusEnum::EXITED);
    assert_eq!(i.state.as_ref().unwrap().exit_code, Some(137));
    assert!(matches!(
        engine.stop(&id, None, None).await,
        Err(EngineError::NotModified)
    ));
    assert!(matches!(
        engine.kill(&id, None).await,
        Err(EngineError::Conflict(_))
    ));
    engine.remove(&id, false, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn on_failure_restarts_a_crashing_container_twice() {
    let env = Env::new();
    let engine = env.engine().await;
    let id = run(
        &engine,
        json!({
            "Image": "busybox",
            "Cmd": ["sh", "-c", "echo run; exit 3"],
            "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}
        }),
    )
    .await;
    let i = until(&engine, &id, 20, "two restarts then exited", |i| {
        i.restart_count == Some(2) && status(i) == ContainerStateStatusEnum::EXITED
    })
    .await;
    assert_eq!(i.state.as_ref().unwrap().exit_code, Some(3));
    // No third restart.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let i = inspect(&engine, &id).await;
    assert_eq!(i.restart_count, Some(2));
    assert_eq!(status(&i), ContainerStateStatusEnum::EXITED);
    assert_eq!(logs(&engine, &id, false).await.0, "run\nrun\nrun\n");
    engine.remove(&id, false, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn health_goes_starting_healthy_unhealthy() {
    let env = Env::new();
    let engine = env.engine().await;
    let id = run(
        &engine,
        json!({
            "Image": "busybox",
            "Cmd": ["sleep", "1000"],
            "Healthcheck": {
                "Test": ["CMD-SHELL", "cat /tmp/ok"],
                "Interval": 200_000_000i64,
                "Timeout": 5_000_000_000i64,
                "Retries": 2
            }
        }),
    )
    .await;
    let health = |i: &ContainerInspectResponse| {
        i.state
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
    };
    let i = inspect(&engine, &id).await;
    assert_eq!(health(&i), Some(HealthStatusEnum::STARTING));
    let exec = |cmd: &'static str| {
        let engine = engine.clone();
        let id = id.clone();
        async move {
            let e = engine
                .exec_create(
                    &id,
                    ExecConfig {
                        cmd: Some(vec!["sh".into(), "-c".into(), cmd.into()]),
                        attach_stdout: Some(true),
                        ..ExecConfig::default()
                    },
                )
                .await
                .unwrap();
            let mut s = engine
                .exec_start(&e, &ExecStartOptions::default())
                .await
                .unwrap();
            while s.output.next().await.is_some() {}
        }
    };
    exec("echo fine > /tmp/ok").await;
    let i = until(&engine, &id, 10, "healthy", |i| {
        health(i) == Some(HealthStatusEnum::HEALTHY)
    })
    .await;
    let log = i.state.unwrap().health.unwrap().log.unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.exit_code, Some(0));
    assert_eq!(last.output.as_deref(), Some("fine\n"));
    exec("rm /tmp/ok").await;
    let i = until(&engine, &id, 10, "unhealthy", |i| {
        health(i) == Some(HealthStatusEnum::UNHEALTHY)
    })
    .await;
    let h = i.state.unwrap().health.unwrap();
    assert!(h.failing_streak.unwrap() >= 2);
    assert!(h.log.unwrap().len() <= 5);
    let list = engine
        .list(&berth::engine::container::ListOptions::default())
        .await
        .unwrap();
    assert!(list[0].status.as_deref().unwrap().ends_with("(unhealthy)"));
    let actions: Vec<String> = engine
        .past_events()
        .into_iter()
        .filter_map(|e| e.action)
        .filter(|a| a.starts_with("health_status"))
        .collect();
    assert_eq!(
        actions,
        ["health_status: healthy", "health_status: unhealthy"]
    );
    engine.remove(&id, true, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_returns_output_and_exit_code() {
    let env = Env::new();
    let engine = env.engine().await;
    let id = run(
        &engine,
        json!({"Image": "busybox", "Cmd": ["sleep", "1000"]}),
    )
    .await;
    let exec_id = engine
        .exec_create(
            &id,
            ExecConfig {
                cmd: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "echo out; echo err >&2; echo $FOO; exit 7".into(),
                ]),
                env: Some(vec!["FOO=bar".into()]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..ExecConfig::default()
            },
        )
        .await
        .unwrap();
    let mut s = engine
        .exec_start(&exec_id, &ExecStartOptions::default())
        .await
        .unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    while let Some(c) = s.output.next().await {
        let t = String::from_utf8_lossy(&c.data).into_owned();
        match c.stream {
            StdStream::Stderr => err.push_str(&t),
            _ => out.push_str(&t),
        }
    }
    assert_eq!(out, "out\nbar\n");
    assert_eq!(err, "err\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    let info = loop {
        let info = engine.exec_inspect(&exec_id).await.unwrap();
        if info.running == Some(false) || Instant::now() > deadline {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(info.running, Some(false));
    assert_eq!(info.exit_code, Some(7));
    assert_eq!(info.container_id.as_deref(), Some(id.as_str()));
    engine.remove(&id, true, false).await.unwrap();
    assert!(matches!(
        engine.exec_inspect(&exec_id).await,
        Err(EngineError::NoSuchExec(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_engine_readopts_running_containers_and_sees_exits() {
    let env = Env::new();
    let engine = env.engine().await;
    let long = run(
        &engine,
        json!({"Image": "busybox", "Cmd": ["sh", "-c", "echo started; exec sleep 1000"]}),
    )
    .await;
    let short = run(
        &engine,
        json!({"Image": "busybox", "Cmd": ["sh", "-c", "sleep 1; exit 5"]}),
    )
    .await;
    let pid = inspect(&engine, &long).await.state.unwrap().pid.unwrap();
    drop(engine);
    tokio::time::sleep(Duration::from_millis(1800)).await;

    let engine = env.engine().await;
    let i = inspect(&engine, &long).await;
    assert_eq!(status(&i), ContainerStateStatusEnum::RUNNING);
    assert_eq!(i.state.as_ref().unwrap().pid, Some(pid));
    let i = inspect(&engine, &short).await;
    assert_eq!(status(&i), ContainerStateStatusEnum::EXITED);
    assert_eq!(i.state.as_ref().unwrap().exit_code, Some(5));
    assert_eq!(logs(&engine, &long, false).await.0, "started\n");
    let e = engine
        .exec_create(
            &long,
            ExecConfig {
                cmd: Some(vec!["sh".into(), "-c".into(), "echo adopted".into()]),
                attach_stdout: Some(true),
                ..ExecConfig::default()
            },
        )
        .await
        .unwrap();
    let mut s = engine
        .exec_start(&e, &ExecStartOptions::default())
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.output.next().await {
        out.extend_from_slice(&c.data);
    }
    assert_eq!(out, b"adopted\n");
    let top = engine.top(&long, None).await.unwrap();
    let procs = top.processes.unwrap();
    assert_eq!(procs.len(), 1, "{procs:?}");
    assert!(procs[0][7].contains("sleep 1000"), "{procs:?}");

    // The adopted container's exit is still noticed, and stop works.
    let follow = {
        let engine = engine.clone();
        let long = long.clone();
        tokio::spawn(async move { logs(&engine, &long, true).await })
    };
    engine.stop(&long, Some(1), None).await.unwrap();
    let i = inspect(&engine, &long).await;
    assert_eq!(status(&i), ContainerStateStatusEnum::EXITED);
    assert_eq!(i.state.as_ref().unwrap().exit_code, Some(137));
    let followed = tokio::time::timeout(Duration::from_secs(5), follow)
        .await
        .expect("a follower ends when the container stops")
        .unwrap();
    assert_eq!(followed.0, "started\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_leaves_nothing_behind() {
    let env = Env::new();
    let engine = env.engine().await;
    let id = run(
        &engine,
        json!({"Image": "busybox", "Cmd": ["sleep", "1000"]}),
    )
    .await;
    let pid = inspect(&engine, &id).await.state.unwrap().pid.unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let netns = env.run_root.path().join("netns").join(&id);
    assert!(netns.exists());
    assert!(!cgroup_dirs(&id).is_empty());

    let e = engine.remove(&id, false, false).await.unwrap_err();
    assert!(matches!(e, EngineError::Conflict(_)), "{e}");
    let waiter = {
        let engine = engine.clone();
        let id = id.clone();
        tokio::spawn(async move { engine.wait(&id, WaitCondition::Removed).await })
    };
    engine.remove(&id, true, false).await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap().status_code, 137);

    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process left");
    assert!(!netns.exists(), "netns file left");
    assert!(cgroup_dirs(&id).is_empty(), "cgroup left");
    assert!(!env.root.path().join("containers").join(&id).exists());
    assert!(!env.run_root.path().join("containers").join(&id).exists());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&id), "mount left");
    assert!(matches!(
        engine.inspect(&id).await,
        Err(EngineError::NoSuchContainer(_))
    ));
}

/// Run-to-exit latency of `true` through the engine (create, start, wait, remove); prints
/// the median. `cargo test --test engine -- --ignored --nocapture run_to_exit`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn run_to_exit_latency() {
    let env = Env::new();
    let engine = env.engine().await;
    let mut runs = Vec::new();
    let mut phases = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let id = engine
            .create(None, body(json!({"Image": "busybox", "Cmd": ["true"]})))
            .await
            .unwrap()
            .id;
        let created = t.elapsed();
        let waiter = {
            let engine = engine.clone();
            let id = id.clone();
            tokio::spawn(async move { engine.wait(&id, WaitCondition::NextExit).await })
        };
        tokio::task::yield_now().await;
        engine.start(&id).await.unwrap();
        let started = t.elapsed();
        assert_eq!(waiter.await.unwrap().unwrap().status_code, 0);
        let exited = t.elapsed();
        engine.remove(&id, false, false).await.unwrap();
        runs.push(exited);
        phases.push((created, started, exited, t.elapsed()));
    }
    let mut sorted = runs.clone();
    sorted.sort();
    eprintln!("phases (create, start, exit, removed): {phases:?}");
    eprintln!("run-to-exit median {:?}", sorted[sorted.len() / 2]);
}

/// Output of `sh -c cmd` run in a fresh container (waits for its exit).
async fn output_of(engine: &Engine, v: serde_json::Value) -> (i64, String) {
    let id = engine.create(None, body(v)).await.unwrap().id;
    engine.start(&id).await.unwrap();
    let code = engine
        .wait(&id, WaitCondition::NotRunning)
        .await
        .unwrap()
        .status_code;
    let out = logs(engine, &id, false).await.0;
    engine.remove(&id, true, false).await.unwrap();
    (code, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_before_start_carries_stdin_and_output() {
    use tokio::io::AsyncWriteExt;
    let env = Env::new();
    let engine = env.engine().await;
    let id = engine
        .create(
            None,
            body(json!({
                "Image": "busybox",
                "Cmd": ["sh", "-c", "read line; echo got $line"],
                "OpenStdin": true,
                "StdinOnce": true,
                "AttachStdin": true
            })),
        )
        .await
        .unwrap()
        .id;
    let mut session = engine.attach(&id, true).await.unwrap();
    engine.start(&id).await.unwrap();
    let mut stdin = session.stdin.take().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    stdin.shutdown().await.unwrap();
    drop(stdin);
    let mut out = String::new();
    let collect = async {
        while let Some(c) = session.output.next().await {
            out.push_str(&String::from_utf8_lossy(&c.data));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("attach output ends when the container exits");
    assert_eq!(out, "got hello\n");
    let w = engine.wait(&id, WaitCondition::NotRunning).await.unwrap();
    assert_eq!(w.status_code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_remove_removes_after_exit() {
    let env = Env::new();
    let engine = env.engine().await;
    let id = engine
        .create(
            None,
            body(json!({"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"], "HostConfig": {"AutoRemove": true}})),
        )
        .await
        .unwrap()
        .id;
    let waiter = {
        let engine = engine.clone();
        let id = id.clone();
        tokio::spawn(async move { engine.wait(&id, WaitCondition::Removed).await })
    };
    tokio::task::yield_now().await;
    engine.start(&id).await.unwrap();
    let w = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(w.status_code, 3);
    assert!(matches!(
        engine.inspect(&id).await,
        Err(EngineError::NoSuchContainer(_))
    ));
    assert!(!env.root.path().join("containers").join(&id).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn network_modes_none_host_and_container() {
    let env = Env::new();
    let engine = env.engine().await;
    // Own namespace: only lo, and it is up.
    let (code, out) = output_of(
        &engine,
        json!({"Image": "busybox", "Cmd": ["sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1; cat /sys/class/net/lo/operstate; hostname"],
               "Hostname": "boxy", "HostConfig": {"NetworkMode": "none"}}),
    )
    .await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[0], "lo", "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[2], "boxy");

    // Host: the host's hostname and the host's network namespace.
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let host_name = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let (_, out) = output_of(
        &engine,
        json!({"Image": "busybox", "Cmd": ["sh", "-c", "readlink /proc/self/ns/net; hostname"],
               "HostConfig": {"NetworkMode": "host"}}),
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [host_ns.to_str().unwrap(), host_name.as_str()]);

    // container:<name> joins the other's namespace.
    let first = engine
        .create(
            Some("netowner"),
            body(json!({"Image": "busybox", "Cmd": ["sleep", "1000"], "Hostname": "owner"})),
        )
        .await
        .unwrap()
        .id;
    engine.start(&first).await.unwrap();
    let (_, a) = {
        let e = engine
            .exec_create(
                &first,
                ExecConfig {
                    cmd: Some(vec!["readlink".into(), "/proc/self/ns/net".into()]),
                    attach_stdout: Some(true),
                    ..ExecConfig::default()
                },
            )
            .await
            .unwrap();
        let mut s = engine
            .exec_start(&e, &ExecStartOptions::default())
            .await
            .unwrap();
        let mut out = String::new();
        while let Some(c) = s.output.next().await {
            out.push_str(&String::from_utf8_lossy(&c.data));
        }
        (0, out)
    };
    let (_, b) = output_of(
        &engine,
        json!({"Image": "busybox", "Cmd": ["sh", "-c", "readlink /proc/self/ns/net; hostname; cat /etc/hostname"],
               "HostConfig": {"NetworkMode": "container:netowner"}}),
    )
    .await;
    assert_eq!(b, format!("{a}owner\nowner\n"));
    assert_ne!(a.trim(), host_ns.to_str().unwrap());
    engine.remove(&first, true, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_limit_oom_kills_and_inspect_says_so() {
    let env = Env::new();
    let engine = env.engine().await;
    let mut events = engine.events();
    let id = run(
        &engine,
        json!({"Image": "busybox", "Cmd": ["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
               "HostConfig": {"Memory": 16777216, "MemorySwap": 16777216}}),
    )
    .await;
    let w = engine.wait(&id, WaitCondition::NotRunning).await.unwrap();
    assert_eq!(w.status_code, 137);
    let i = inspect(&engine, &id).await;
    assert_eq!(i.state.as_ref().unwrap().oom_killed, Some(true));
    let mut actions = Vec::new();
    while let Ok(ev) = events.try_recv() {
        actions.push(ev.action.unwrap_or_default());
    }
    assert!(actions.contains(&"oom".to_string()), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_start_restarts_always_but_not_stopped_unless_stopped() {
    let env = Env::new();
    let engine = env.engine().await;
    let always = run(
        &engine,
        json!({"Image": "busybox", "Cmd": ["sleep", "1000"], "HostConfig": {"RestartPolicy": {"Name": "always"}}}),
    )
    .await;
    let stopped = run(
        &engine,
        json!({"Image": "busybox", "Cmd": ["sleep", "1000"], "HostConfig": {"RestartPolicy": {"Name": "unless-stopped"}}}),
    )
    .await;
    engine.kill(&stopped, None).await.unwrap();
    engine
        .wait(&stopped, WaitCondition::NotRunning)
        .await
        .unwrap();
    let pid = inspect(&engine, &always).await.state.unwrap().pid.unwrap();
    drop(engine);
    // The always container dies while no daemon watches it.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let engine = env.engine().await;
    let i = until(&engine, &always, 10, "restarted at daemon start", |i| {
        status(i) == ContainerStateStatusEnum::RUNNING && i.state.as_ref().unwrap().pid != Some(pid)
    })
    .await;
    assert!(i.state.unwrap().pid.unwrap() > 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let i = inspect(&engine, &stopped).await;
    assert_eq!(status(&i), ContainerStateStatusEnum::EXITED);
    assert_eq!(i.state.unwrap().exit_code, Some(137));
    // A kill through the API is final for `always` too (Docker's ExitOnNext).
    engine.kill(&always, None).await.unwrap();
    engine
        .wait(&always, WaitCondition::NotRunning)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let i = inspect(&engine, &always).await;
    assert_eq!(status(&i), ContainerStateStatusEnum::EXITED);
    engine.remove(&always, false, false).await.unwrap();
    engine.remove(&stopped, false, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rmi_is_refused_while_a_container_uses_the_image() {
    let env = Env::new();
    let engine = env.engine().await;
    let id = engine
        .create(None, body(json!({"Image": "busybox", "Cmd": ["true"]})))
        .await
        .unwrap()
        .id;
    let e = engine.remove_image("busybox", false).await.unwrap_err();
    assert!(matches!(e, EngineError::Conflict(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container "
        ) && msg.contains(&id[..12]),
        "{msg}"
    );
    engine.remove(&id, false, false).await.unwrap();
    let removed = engine.remove_image("busybox", false).await.unwrap();
    assert_eq!(removed.deleted.len(), 1);
    assert!(matches!(
        engine.create(None, body(json!({"Image": "busybox"}))).await,
        Err(EngineError::NoSuchImage(_))
    ));
}
