//! The real docker CLI (Docker 28, /usr/local/bin/docker) against berth's socket: the
//! commands the issue names work and print what Docker would.

mod api_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use api_support::{unique, Daemon};

const DOCKER: &str = "/usr/local/bin/docker";

fn docker_present() -> bool {
    Path::new(DOCKER).exists()
}

fn docker(d: &Daemon, args: &[&str]) -> Command {
    let mut cmd = Command::new(DOCKER);
    cmd.arg("-H")
        .arg(format!("unix://{}", d.socket.display()))
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"));
    cmd
}

fn run(d: &Daemon, args: &[&str]) -> Output {
    docker(d, args).output().expect("running docker")
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = run(d, args);
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}): {}\nstdout: {}\ndaemon log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        d.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn docker_version_images_and_image_inspect() {
    if !docker_present() {
        eprintln!("skipped: {DOCKER} is not installed");
        return;
    }
    let d = Daemon::start();
    let version = ok(&d, &["version"]);
    assert!(version.contains("Server: berth"), "{version}");
    assert!(
        version.contains(&format!("Version:          {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(
        version.contains("API version:      1.41 (minimum version 1.12)"),
        "{version}"
    );
    let server_api = ok(&d, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(server_api.trim(), "1.41");

    let images = ok(&d, &["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert_eq!(lines.len(), 2, "{images}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..2], ["busybox", "latest"], "{images}");
    assert_eq!(row[2].len(), 12);
    let ids = ok(&d, &["images", "-q", "--no-trunc"]);
    assert!(ids.trim().starts_with("sha256:"), "{ids}");
    let filtered = ok(&d, &["images", "busybox"]);
    assert_eq!(filtered.lines().count(), 2, "{filtered}");

    let inspect = ok(&d, &["inspect", "busybox"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["Id"], ids.trim());
    assert_eq!(v[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(v[0]["Config"]["Cmd"][0], "sh");
    let t = ok(
        &d,
        &[
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.RootFS.Type}}",
            "busybox",
        ],
    );
    assert_eq!(t.trim(), "linux/layers");
    let missing = run(&d, &["inspect", "nothing-here"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("No such object: nothing-here"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[test]
fn docker_ps_inspect_logs_exec_stop_rm() {
    if !docker_present() {
        eprintln!("skipped: {DOCKER} is not installed");
        return;
    }
    let d = Daemon::start();
    let name = unique("dk");
    let id = ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "berth.test=docker",
            "busybox",
            "sh",
            "-c",
            "echo hello; echo oops >&2; exec sleep 300",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");

    let ps = ok(&d, &["ps"]);
    let header: Vec<&str> = ps.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "CONTAINER",
            "ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
    let row = ps
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains("busybox") && row.contains("Up "), "{row}");
    let q = ok(&d, &["ps", "-q", "--filter", "label=berth.test=docker"]);
    assert_eq!(q.trim(), &id[..12]);

    let inspect = ok(&d, &["inspect", &name]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["Name"], format!("/{name}"));
    assert_eq!(v[0]["State"]["Running"], true);
    assert_eq!(v[0]["Config"]["Labels"]["berth.test"], "docker");
    let status = ok(&d, &["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(status.trim(), "running");

    // Output may lag the start by a moment: retry briefly.
    let mut logs = run(&d, &["logs", &name]);
    for _ in 0..50 {
        if String::from_utf8_lossy(&logs.stdout) == "hello\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        logs = run(&d, &["logs", &name]);
    }
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "hello\n");
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "oops\n");

    assert_eq!(ok(&d, &["exec", &name, "echo", "from exec"]), "from exec\n");
    let failing = run(&d, &["exec", &name, "sh", "-c", "echo err >&2; exit 3"]);
    assert_eq!(failing.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&failing.stderr), "err\n");
    let mut child = docker(&d, &["exec", "-i", &name, "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped through docker exec -i\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "piped through docker exec -i\n"
    );
    let top = ok(&d, &["top", &name]);
    assert!(top.contains("sleep 300"), "{top}");

    assert_eq!(ok(&d, &["stop", "-t", "1", &name]).trim(), name);
    assert!(!ok(&d, &["ps"]).contains(&name));
    let all = ok(&d, &["ps", "-a"]);
    let row = all
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(row.contains("Exited ("), "{row}");
    assert_eq!(ok(&d, &["rm", &name]).trim(), name);
    assert!(!ok(&d, &["ps", "-a"]).contains(&name));
    let gone = run(&d, &["rm", &name]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("No such container"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
}

#[test]
fn docker_run_attached_with_stdin_and_pull_rmi() {
    use berth::engine::image::reference::Reference;
    use berth::engine::image::registry::testsupport::TestRegistry;
    use berth::engine::image::registry::RegistryConfig;
    use berth::engine::image::service::{ImageService, Quiet};
    use berth::engine::image::testkit::TestImage;

    if !docker_present() {
        eprintln!("skipped: {DOCKER} is not installed");
        return;
    }
    let d = Daemon::start();
    // docker run: create, attach (hijacked), wait, start; the exit code comes back.
    let out = run(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo to-stdout; echo to-stderr >&2; exit 4",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to-stdout\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stderr\n");
    let mut child = docker(&d, &["run", "-i", "--rm", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through run -i\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through run -i\n");
    assert!(
        !ok(&d, &["ps", "-a"]).contains("busybox"),
        "--rm removed them"
    );

    // docker pull from a loopback registry, then docker rmi.
    let registry = TestRegistry::start().unwrap();
    let target = format!("{}/t/bb:1", registry.host());
    let publisher =
        ImageService::open(&d.dir.path().join("pub"), RegistryConfig::default()).unwrap();
    publisher
        .load(
            &TestImage::busybox()
                .tag("busybox:latest")
                .docker_archive_tar()[..],
        )
        .unwrap();
    publisher.tag("busybox", &target).unwrap();
    api_support::rt()
        .block_on(publisher.push(&Reference::parse(&target).unwrap(), &Quiet))
        .unwrap();
    let pulled = ok(&d, &["pull", &target]);
    assert!(pulled.contains("1: Pulling from t/bb"), "{pulled}");
    // The layer is busybox's, already unpacked for the local image.
    assert!(pulled.contains(": Already exists"), "{pulled}");
    assert!(pulled.contains("Digest: sha256:"), "{pulled}");
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {target}")),
        "{pulled}"
    );
    assert!(pulled.trim_end().ends_with(&target), "{pulled}");
    let missing = run(&d, &["pull", &format!("{}/t/none:1", registry.host())]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let removed = ok(&d, &["rmi", &target]);
    assert!(
        removed.contains(&format!("Untagged: {target}")),
        "{removed}"
    );
    let images = ok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!images.contains(&target), "{images}");
}
