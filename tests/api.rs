//! The daemon's API end to end: a real `berth daemon` per test on tempdir roots, driven
//! through the typed client (and raw HTTP where the wire format itself is the point).
//! Containers really run (root needed).

mod api_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use api_support::{create_body, rt, unique, Daemon};
use berth::api::client::{AttachOptions, EventsOptions};
use berth::api::{Client, ClientError};
use berth::engine::container::{
    ExecConfig, ExecStartOptions, ListOptions, LogsOptions, OutputStream, StdStream, WaitCondition,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// Everything a stream yields within `limit`: (stdout, stderr).
async fn collect(mut output: OutputStream, limit: Duration) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let _ = tokio::time::timeout(limit, async {
        while let Some(c) = output.next().await {
            match c.stream {
                StdStream::Stderr => err.extend_from_slice(&c.data),
                _ => out.extend_from_slice(&c.data),
            }
        }
    })
    .await;
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn all_logs() -> LogsOptions {
    LogsOptions {
        stdout: true,
        stderr: true,
        ..LogsOptions::default()
    }
}

async fn run_to_exit(client: &Client, cmd: &[&str]) -> (String, i64) {
    let id = client
        .create_container(Some(&unique("run")), &create_body(cmd))
        .await
        .unwrap()
        .id;
    client.start(&id).await.unwrap();
    let code = client
        .wait(&id, WaitCondition::NotRunning)
        .await
        .unwrap()
        .status_code;
    (id, code)
}

#[test]
fn ping_version_info_and_the_wire_basics() {
    let d = Daemon::start();
    rt().block_on(async {
        let c = d.client();
        let ping = c.ping().await.unwrap();
        assert_eq!(ping.api_version.as_deref(), Some("1.41"));
        assert_eq!(ping.root, Some(d.root.canonicalize().unwrap()));
        let v = c.version().await.unwrap();
        assert_eq!(v.api_version.as_deref(), Some("1.41"));
        assert_eq!(v.min_api_version.as_deref(), Some("1.12"));
        assert_eq!(v.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(v.os.as_deref(), Some("linux"));
        assert!(!v.kernel_version.unwrap_or_default().is_empty());
        let info = c.info().await.unwrap();
        assert_eq!(info.images, Some(1));
        assert_eq!(info.containers, Some(0));
        assert_eq!(info.driver.as_deref(), Some("overlayfs"));
        assert_eq!(
            info.docker_root_dir.as_deref(),
            Some(d.root.canonicalize().unwrap().to_str().unwrap())
        );
        assert!(info.ncpu.unwrap_or(0) >= 1);
        assert!(info.mem_total.unwrap_or(0) > 0);
    });

    // The daemon runs on glibc's malloc: no huge-page arenas.
    let pid = d.pid().unwrap();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let kb = |key: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    eprintln!(
        "idle daemon: Pss {} kB, AnonHugePages {} kB",
        kb("Pss:"),
        kb("AnonHugePages:")
    );
    assert_eq!(kb("AnonHugePages:"), 0);

    let head = d.raw("HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("api-version: 1.41"), "{head}");
    assert!(lower.contains("ostype: linux"), "{head}");
    assert!(lower.contains("docker-experimental: false"), "{head}");
    assert!(lower.contains("cache-control: no-cache"), "{head}");
    assert!(!head.ends_with("OK"), "HEAD has no body: {head}");
    let get = d.raw("GET /v1.99/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(
        get.starts_with("HTTP/1.1 200") && get.ends_with("OK"),
        "{get}"
    );
    let old = d.raw("GET /v1.24/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(old.contains("\"ApiVersion\":\"1.41\""), "{old}");
    let missing = d.raw("GET /v1.41/nothing/here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(
        missing.contains(r#"{"message":"page not found"}"#),
        "{missing}"
    );
    let gone = d.raw("GET /containers/nope/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(gone.starts_with("HTTP/1.1 404"), "{gone}");
    assert!(gone.contains("No such container: nope"), "{gone}");
}

#[test]
fn images_list_inspect_and_delete_refused_while_used() {
    let d = Daemon::start();
    rt().block_on(async {
        let c = d.client();
        let list = c.list_images(&HashMap::new()).await.unwrap();
        assert_eq!(list.len(), 1);
        let img = &list[0];
        assert!(img.id.starts_with("sha256:"));
        assert_eq!(img.repo_tags, vec!["busybox:latest".to_string()]);
        assert!(img.size > 0);
        assert_eq!(img.containers, -1);
        let filtered = c
            .list_images(&HashMap::from([(
                "reference".to_string(),
                vec!["nothing*".to_string()],
            )]))
            .await
            .unwrap();
        assert!(filtered.is_empty());

        let inspect = c.inspect_image("busybox").await.unwrap();
        assert_eq!(inspect.id, img.id);
        let config = inspect.config.expect("image config");
        assert_eq!(config.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(inspect.root_fs.typ, "layers");
        assert_eq!(inspect.root_fs.layers.map(|l| l.len()), Some(1));
        assert_eq!(inspect.graph_driver.name, "overlayfs");
        let by_id = c.inspect_image(&img.id).await.unwrap();
        assert_eq!(by_id.id, img.id);
        let missing = c.inspect_image("nothing:here").await.unwrap_err();
        assert!(missing.is_not_found(), "{missing}");

        let id = c
            .create_container(Some(&unique("user")), &create_body(&["true"]))
            .await
            .unwrap()
            .id;
        let refused = c.remove_image("busybox", false).await.unwrap_err();
        assert_eq!(refused.status(), Some(409), "{refused}");
        c.remove(&id, true, false).await.unwrap();

        let removed = c.remove_image("busybox:latest", false).await.unwrap();
        assert!(removed
            .iter()
            .any(|r| r.untagged.as_deref() == Some("busybox:latest")));
        assert!(removed
            .iter()
            .any(|r| r.deleted.as_deref() == Some(img.id.as_str())));
        assert!(c.list_images(&HashMap::new()).await.unwrap().is_empty());
        let again = c.remove_image("busybox", false).await.unwrap_err();
        assert!(again.is_not_found(), "{again}");
    });
}

#[test]
fn create_start_wait_and_logs_demultiplexed() {
    let d = Daemon::start();
    rt().block_on(async {
        let c = d.client();
        let name = unique("logs");
        let mut body = create_body(&["sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 3"]);
        body.config.labels = Some(HashMap::from([("test.role".into(), "logs".into())]));
        let created = c.create_container(Some(&name), &body).await.unwrap();
        let dup = c.create_container(Some(&name), &body).await.unwrap_err();
        assert_eq!(dup.status(), Some(409), "{dup}");
        c.start(&created.id).await.unwrap();
        let waited = c.wait(&name, WaitCondition::NotRunning).await.unwrap();
        assert_eq!(waited.status_code, 3);

        let logs = c.logs(&created.id, &all_logs()).await.unwrap();
        assert!(!logs.tty);
        let (out, err) = collect(logs.output, Duration::from_secs(10)).await;
        assert_eq!(out, "out1\nout2\n");
        assert_eq!(err, "err1\n");
        let only_err = LogsOptions {
            stderr: true,
            ..LogsOptions::default()
        };
        let (out, err) = collect(
            c.logs(&name, &only_err).await.unwrap().output,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!((out.as_str(), err.as_str()), ("", "err1\n"));
        let (abc, code) = run_to_exit(&c, &["sh", "-c", "echo a; echo b; echo c"]).await;
        assert_eq!(code, 0);
        let tail = LogsOptions {
            tail: Some(1),
            ..all_logs()
        };
        let (out, _) = collect(
            c.logs(&abc, &tail).await.unwrap().output,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(out, "c\n");

        // The frames on the wire: [stream, 0, 0, 0, len BE] + payload.
        let raw = d.raw(&format!(
            "GET /v1.41/containers/{}/logs?stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            created.id
        ));
        assert!(
            raw.to_ascii_lowercase()
                .contains("content-type: application/vnd.docker.multiplexed-stream"),
            "{raw}"
        );
        assert!(raw.contains("\u{2}\0\0\0\0\0\0\u{5}err1\n"), "{raw:?}");

        let inspect = c.inspect(&name).await.unwrap();
        let state = inspect.state.unwrap();
        assert_eq!(state.exit_code, Some(3));
        assert_eq!(state.running, Some(false));

        let running = c.list(&ListOptions::default()).await.unwrap();
        assert!(!running.iter().any(|s| s.id.as_deref() == Some(created.id.as_str())));
        let labelled = c
            .list(&ListOptions {
                all: true,
                filters: HashMap::from([("label".into(), vec!["test.role=logs".into()])]),
                ..ListOptions::default()
            })
            .await
            .unwrap();
        assert_eq!(labelled.len(), 1);
        assert_eq!(labelled[0].id.as_deref(), Some(created.id.as_str()));

        c.remove(&name, false, false).await.unwrap();
        let gone = c.inspect(&name).await.unwrap_err();
        assert!(gone.is_not_found(), "{gone}");
    });
}

#[test]
fn events_stream_shows_create_start_die() {
    let d = Daemon::start();
    rt().block_on(async {
        let c = d.client();
        let mut events = c
            .events(&EventsOptions {
                filters: HashMap::from([("type".into(), vec!["container".into()])]),
                ..EventsOptions::default()
            })
            .await
            .unwrap();
        let (id, code) = run_to_exit(&c, &["true"]).await;
        assert_eq!(code, 0);
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(e) = events.next().await {
                let e = e.unwrap();
                assert_eq!(e.typ.as_deref(), Some("container"));
                if e.actor.as_ref().and_then(|a| a.id.as_deref()) == Some(id.as_str()) {
                    let action = e.action.clone().unwrap_or_default();
                    seen.push(action.clone());
                    if action == "die" {
                        break;
                    }
                }
            }
        })
        .await;
        for wanted in ["create", "start", "die"] {
            assert!(
                seen.iter().any(|a| a == wanted),
                "{wanted} missing from {seen:?}"
            );
        }
        let pos = |a: &str| seen.iter().position(|s| s == a).unwrap();
        assert!(
            pos("create") < pos("start") && pos("start") < pos("die"),
            "{seen:?}"
        );

        // `since` replays the past, `until` ends the stream.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let past: Vec<_> = c
            .events(&EventsOptions {
                since: Some(now - 60.0),
                until: Some(now),
                filters: HashMap::from([("container".into(), vec![id.clone()])]),
            })
            .await
            .unwrap()
            .collect()
            .await;
        let actions: Vec<String> = past
            .into_iter()
            .map(|e| e.unwrap().action.unwrap_or_default())
            .collect();
        assert!(actions.contains(&"create".to_string()), "{actions:?}");
        assert!(actions.contains(&"die".to_string()), "{actions:?}");
    });
}

#[test]
fn attach_sends_stdin_to_cat_and_returns_its_output() {
    let d = Daemon::start();
    rt().block_on(async {
        let c = d.client();
        let mut body = create_body(&["cat"]);
        body.config.open_stdin = Some(true);
        body.config.stdin_once = Some(true);
        body.config.attach_stdin = Some(true);
        body.config.attach_stdout = Some(true);
        body.config.attach_stderr = Some(true);
        let id = c
            .create_container(Some(&unique("cat")), &body)
            .await
            .unwrap()
            .id;
        let mut session = c
            .attach(
                &id,
                &AttachOptions {
                    stdin: true,
                    stdout: true,
                    stderr: true,
                },
            )
            .await
            .unwrap();
        c.start(&id).await.unwrap();
        let mut stdin = session.stdin.take().expect("stdin");
        stdin.write_all(b"hello through attach\n").await.unwrap();
        stdin.flush().await.unwrap();
        stdin.shutdown().await.unwrap();
        let (out, err) = collect(session.output, Duration::from_secs(15)).await;
        assert_eq!(out, "hello through attach\n");
        assert_eq!(err, "");
        let code = tokio::time::timeout(
            Duration::from_secs(15),
            c.wait(&id, WaitCondition::NotRunning),
        )
        .await
        .expect("cat ends at EOF")
        .unwrap();
        assert_eq!(code.status_code, 0);
    });
}

#[test]
fn exec_with_and_without_tty_and_with_stdin() {
    let d = Daemon::start();
    rt().block_on(async {
        let c = d.client();
        let id = c
            .create_container(Some(&unique("exec")), &create_body(&["sleep", "300"]))
            .await
            .unwrap()
            .id;
        c.start(&id).await.unwrap();

        let exec = |cmd: &[&str], tty: bool, stdin: bool| ExecConfig {
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            attach_stdin: Some(stdin),
            tty: Some(tty),
            ..ExecConfig::default()
        };
        let e = c
            .exec_create(
                &id,
                &exec(
                    &["sh", "-c", "echo hi; echo oops >&2; exit 7"],
                    false,
                    false,
                ),
            )
            .await
            .unwrap();
        let session = c
            .exec_start(
                &e,
                &ExecStartOptions {
                    detach: false,
                    tty: false,
                },
            )
            .await
            .unwrap();
        assert!(!session.tty);
        let (out, err) = collect(session.output, Duration::from_secs(15)).await;
        assert_eq!((out.as_str(), err.as_str()), ("hi\n", "oops\n"));
        let inspected = c.exec_inspect(&e).await.unwrap();
        assert_eq!(inspected.exit_code, Some(7));
        assert_eq!(inspected.running, Some(false));

        let e = c
            .exec_create(
                &id,
                &exec(&["sh", "-c", "echo tty; test -t 1"], true, false),
            )
            .await
            .unwrap();
        let session = c
            .exec_start(
                &e,
                &ExecStartOptions {
                    detach: false,
                    tty: true,
                },
            )
            .await
            .unwrap();
        assert!(session.tty);
        let (out, err) = collect(session.output, Duration::from_secs(15)).await;
        assert_eq!((out.as_str(), err.as_str()), ("tty\r\n", ""));
        assert_eq!(c.exec_inspect(&e).await.unwrap().exit_code, Some(0));

        let e = c
            .exec_create(&id, &exec(&["cat"], false, true))
            .await
            .unwrap();
        let mut session = c
            .exec_start(
                &e,
                &ExecStartOptions {
                    detach: false,
                    tty: false,
                },
            )
            .await
            .unwrap();
        let mut stdin = session.stdin.take().unwrap();
        stdin.write_all(b"fed to exec\n").await.unwrap();
        stdin.shutdown().await.unwrap();
        let (out, _) = collect(session.output, Duration::from_secs(15)).await;
        assert_eq!(out, "fed to exec\n");
        assert_eq!(c.exec_inspect(&e).await.unwrap().exit_code, Some(0));

        let missing = c.exec_inspect("nope").await.unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        c.remove(&id, true, false).await.unwrap();
    });
}

#[test]
fn the_cli_starts_a_daemon_when_none_runs() {
    let mut d = Daemon::new();
    d.load_busybox();
    assert!(!d.socket.exists());
    let started = Instant::now();
    let out = d.berth(&["images"]).output().unwrap();
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(d.run_root.join("daemon.log")).unwrap_or_default()
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(
        table.contains("busybox") && table.contains("latest"),
        "{table}"
    );
    eprintln!("berth images with autostart: {} ms", elapsed.as_millis());
    let pid = d.pid().expect("the daemon wrote its pid file");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // The second CLI finds the running daemon.
    let again = d.berth(&["images", "-q"]).output().unwrap();
    assert!(again.status.success());
    assert_eq!(d.pid(), Some(pid));
    // Several CLIs at once start one daemon between them.
    d.stop();
    let children: Vec<_> = (0..4)
        .map(|_| {
            d.berth(&["images", "-q"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let daemons = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|p| {
            let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            cmd.contains(d.run_root.to_str().unwrap()) && cmd.ends_with("daemon\0")
        })
        .count();
    assert_eq!(daemons, 1);
    // A daemon serving another root is refused, not silently used.
    let other = d.dir.path().join("other-root");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(&other)
        .arg("--run-root")
        .arg(&d.run_root)
        .arg("images")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serves") && err.contains("--root"), "{err}");
}

#[test]
fn a_second_daemon_is_refused_and_a_stale_socket_replaced() {
    let mut d = Daemon::start();
    let out = d.berth(&["daemon"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another berth daemon"), "{err}");
    d.kill9();
    assert!(d.socket.exists(), "kill -9 leaves the socket file");
    d.spawn();
    let mode = std::fs::metadata(&d.socket).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(mode.mode() & 0o777, 0o660);
    assert_eq!((mode.uid(), mode.gid()), (0, 0));
    d.stop();
    assert!(!d.socket.exists(), "a clean stop removes the socket");
}

#[test]
fn kill_9_of_the_daemon_keeps_containers_and_a_new_one_adopts_them() {
    let mut d = Daemon::start();
    let rt = rt();
    let id = rt.block_on(async {
        let c = d.client();
        let id = c
            .create_container(
                Some(&unique("survivor")),
                &create_body(&[
                    "sh",
                    "-c",
                    "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
                ]),
            )
            .await
            .unwrap()
            .id;
        c.start(&id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        id
    });
    d.kill9();
    let log = d
        .root
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    let before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(800));
    let after = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    assert!(
        after > before,
        "the container kept logging without a daemon ({before} → {after})"
    );
    d.spawn();
    rt.block_on(async {
        let c = d.client();
        let state = c.inspect(&id).await.unwrap().state.unwrap();
        assert_eq!(state.running, Some(true), "{state:?}");
        let (out, _) = collect(
            c.logs(&id, &all_logs()).await.unwrap().output,
            Duration::from_secs(10),
        )
        .await;
        assert!(out.lines().count() >= 8, "{out}");
        let e = c
            .exec_create(
                &id,
                &ExecConfig {
                    cmd: Some(vec!["echo".into(), "adopted".into()]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..ExecConfig::default()
                },
            )
            .await
            .unwrap();
        let s = c
            .exec_start(&e, &ExecStartOptions::default())
            .await
            .unwrap();
        let (out, _) = collect(s.output, Duration::from_secs(10)).await;
        assert_eq!(out, "adopted\n");
        c.stop(&id, Some(1), None).await.unwrap();
        let state = c.inspect(&id).await.unwrap().state.unwrap();
        assert_eq!(state.running, Some(false));
        let err = c.start("no-such-container").await.unwrap_err();
        assert!(
            matches!(err, ClientError::Status { status: 404, .. }),
            "{err}"
        );
    });
}

#[test]
fn pull_streams_docker_progress_then_digest_and_status() {
    use berth::engine::image::reference::Reference;
    use berth::engine::image::registry::testsupport::TestRegistry;
    use berth::engine::image::registry::RegistryConfig;
    use berth::engine::image::service::{ImageService, Quiet};
    use berth::engine::image::testkit::TestImage;

    let registry = TestRegistry::start().unwrap();
    let target = format!("{}/t/busybox:1", registry.host());
    let mut d = Daemon::new();
    let rt = rt();
    {
        let publisher =
            ImageService::open(&d.dir.path().join("pub"), RegistryConfig::default()).unwrap();
        let tar = TestImage::busybox()
            .tag("busybox:latest")
            .docker_archive_tar();
        publisher.load(&tar[..]).unwrap();
        publisher.tag("busybox", &target).unwrap();
        rt.block_on(publisher.push(&Reference::parse(&target).unwrap(), &Quiet))
            .unwrap();
    }
    d.spawn();
    rt.block_on(async {
        let c = d.client();
        let reference = Reference::parse(&target).unwrap();
        let messages: Vec<_> = c
            .pull(&reference, None)
            .await
            .unwrap()
            .map(|m| m.unwrap())
            .collect()
            .await;
        let statuses: Vec<String> = messages
            .iter()
            .map(|m| m.status.clone().unwrap_or_default())
            .collect();
        assert_eq!(statuses[0], "Pulling from t/busybox", "{statuses:?}");
        assert_eq!(messages[0].id.as_deref(), Some("1"));
        let pos = |s: &str| statuses.iter().position(|x| x.starts_with(s));
        let (fs, done, digest, status) = (
            pos("Pulling fs layer").expect("Pulling fs layer"),
            pos("Pull complete").expect("Pull complete"),
            pos("Digest: sha256:").expect("Digest"),
            pos("Status: ").expect("Status"),
        );
        assert!(
            fs < done && done < digest && digest < status,
            "{statuses:?}"
        );
        assert_eq!(status, statuses.len() - 1);
        assert_eq!(
            statuses[status],
            format!("Status: Downloaded newer image for {target}")
        );
        let layer_id = messages[fs].id.clone().unwrap();
        assert_eq!(layer_id.len(), 12);

        let again: Vec<_> = c.pull(&reference, None).await.unwrap().collect().await;
        let last = again.last().unwrap().as_ref().unwrap();
        assert_eq!(
            last.status.as_deref(),
            Some(format!("Status: Image is up to date for {target}").as_str())
        );
        let listed = c.list_images(&HashMap::new()).await.unwrap();
        assert_eq!(listed[0].repo_tags, vec![target.clone()]);
        assert_eq!(listed[0].repo_digests.len(), 1);

        let missing = Reference::parse(&format!("{}/t/nothing:1", registry.host())).unwrap();
        let err = match c.pull(&missing, None).await {
            Err(e) => e,
            Ok(_) => panic!("pulling a missing image started a stream"),
        };
        assert_eq!(err.status(), Some(404), "{err}");
        assert!(err.to_string().contains("not found"), "{err}");
    });
}
