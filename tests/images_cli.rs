//! The image commands end to end, through the real `berth` binary, against a real registry
//! (Debian's docker-registry on loopback) and, for faults, a scripted hostile server.
//! Every test has its own state root; nothing touches /var/lib/berth.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::engine::image::digest::Digest;
use berth::engine::image::registry::testsupport::{
    FakeRegistry, Request, Response, ScriptedServer, TestRegistry,
};
use berth::engine::image::testkit::{ImageParts, TarItem, TestImage};

fn berth(root: &Path, args: &[&str]) -> Output {
    berth_in(root, args, None)
}

fn berth_in(root: &Path, args: &[&str], cwd: Option<&Path>) -> Output {
    let mut cmd = berth_command(root, args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.output().expect("running berth")
}

/// `berth --root ROOT ARGS`, isolated from the machine's berth and Docker settings. Image
/// commands go through a daemon the CLI starts on demand; each root gets its own run root
/// (`ROOT-run`), so its own daemon, stopped when the test's [`Scratch`] goes.
fn berth_command(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    let run_root = format!("{}-run", root.display());
    cmd.arg("--root")
        .arg(root)
        .arg("--run-root")
        .arg(run_root)
        .args(args);
    cmd.env_remove("BERTH_ROOT");
    cmd.env_remove("BERTH_RUN_ROOT");
    cmd.env_remove("BERTH_HOST");
    // Credentials must never come from the machine's ~/.docker.
    cmd.env("DOCKER_CONFIG", root.join("docker-config"));
    cmd
}

/// A test's scratch directory; the daemons its CLIs started are stopped when it goes.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.path()) else {
            return;
        };
        let pids: Vec<i32> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with("-run"))
            .filter_map(|e| std::fs::read_to_string(e.path().join("daemon.pid")).ok())
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        for &pid in &pids {
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn scratch() -> Scratch {
    Scratch(tempfile::tempdir().unwrap())
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "berth failed: {}\nstdout: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "berth should have failed; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Image ids as `berth images -q --no-trunc` lists them.
fn image_ids(root: &Path) -> Vec<String> {
    ok(&berth(root, &["images", "-q", "--no-trunc"]))
        .lines()
        .map(String::from)
        .collect()
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    }
}

fn snapshot_dirs(root: &Path) -> Vec<PathBuf> {
    entries(&root.join("snapshots"))
        .into_iter()
        .filter(|p| p.join("diff").is_dir())
        .collect()
}

fn blobs(root: &Path) -> Vec<PathBuf> {
    entries(&root.join("content/blobs/sha256"))
}

/// Loads `image` into `root` from a docker-archive written by testkit.
fn load(root: &Path, image: &TestImage) -> String {
    let archive = root.with_extension("tar");
    std::fs::write(&archive, image.docker_archive_tar()).unwrap();
    ok(&berth(root, &["load", "-i", archive.to_str().unwrap()]))
}

/// Publishes `image` to `registry` as `name` with berth itself (load, tag, push).
fn publish(scratch: &Path, registry: &str, image: &TestImage, name: &str) -> String {
    let root = scratch.join(format!("publisher-{}", name.replace(['/', ':'], "_")));
    load(&root, image);
    let local = &image.parts().tags[0];
    let target = format!("{registry}/{name}");
    ok(&berth(&root, &["tag", local, &target]));
    let out = ok(&berth(&root, &["push", &target]));
    assert!(out.contains("digest: sha256:"), "{out}");
    target
}

#[test]
fn load_tag_push_pull_save_rmi_round_trip() {
    let t = scratch();
    let registry = TestRegistry::start().unwrap();
    let image = TestImage::busybox().tag("busybox:latest");
    let id = image.parts().config_digest.to_string();

    let a = t.path().join("a");
    let out = load(&a, &image);
    assert_eq!(out, "Loaded image: busybox:latest\n");
    let listing = ok(&berth(&a, &["images"]));
    assert!(listing.starts_with("REPOSITORY"), "{listing}");
    assert!(
        listing.contains("busybox") && listing.contains("latest"),
        "{listing}"
    );
    assert_eq!(image_ids(&a), vec![id.clone()]);
    let snaps = snapshot_dirs(&a);
    assert_eq!(snaps.len(), 1);
    assert!(snaps[0].join("diff/bin/busybox").is_file());
    assert!(std::fs::symlink_metadata(snaps[0].join("diff/bin/sh"))
        .unwrap()
        .file_type()
        .is_symlink());

    let target = format!("{}/test/busybox:1", registry.host());
    ok(&berth(&a, &["tag", "busybox", &target]));
    let pushed = ok(&berth(&a, &["push", &target]));
    assert!(pushed.contains("1: digest: sha256:"), "{pushed}");

    // A fresh machine pulls it back: same image id, same files.
    let b = t.path().join("b");
    let pulled = ok(&berth(&b, &["pull", &target]));
    assert!(
        pulled.contains("Status: Downloaded newer image for"),
        "{pulled}"
    );
    assert!(pulled.trim_end().ends_with(&target), "{pulled}");
    assert_eq!(image_ids(&b), vec![id.clone()]);
    assert!(snapshot_dirs(&b)[0].join("diff/bin/busybox").is_file());
    let again = ok(&berth(&b, &["pull", &target]));
    assert!(again.contains("Status: Image is up to date for"), "{again}");

    let json = ok(&berth(&b, &["images", "--format", "json"]));
    let row: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(row["Tag"], "1");
    assert_eq!(
        row["Repository"],
        format!("{}/test/busybox", registry.host())
    );
    assert!(row["Digest"].as_str().unwrap().starts_with("sha256:"));

    // save → load on a third machine keeps the id.
    let saved = t.path().join("saved.tar");
    ok(&berth(
        &b,
        &["save", "-o", saved.to_str().unwrap(), &target],
    ));
    let c = t.path().join("c");
    let loaded = ok(&berth(&c, &["load", "-i", saved.to_str().unwrap()]));
    assert!(
        loaded.contains(&format!("Loaded image: {target}")),
        "{loaded}"
    );
    assert_eq!(image_ids(&c), vec![id.clone()]);

    // rmi removes the image, its blobs and its snapshots.
    let removed = ok(&berth(&b, &["rmi", &target]));
    assert!(
        removed.contains("Untagged: ") && removed.contains(&format!("Deleted: {id}")),
        "{removed}"
    );
    assert!(image_ids(&b).is_empty());
    assert!(blobs(&b).is_empty(), "{:?}", blobs(&b));
    assert!(snapshot_dirs(&b).is_empty());
    let err = failed(&berth(&b, &["rmi", &target]));
    assert!(
        err.contains("No such image") || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn project_pull_fetches_every_service_image_and_shared_layers_once() {
    let t = scratch();
    let registry = TestRegistry::start().unwrap();
    let base = TestImage::busybox().tag("busybox:latest");
    let app =
        TestImage::busybox()
            .tag("app:latest")
            .extra_layer(&[("app/hello.txt", b"hello\n", 0o644)]);
    let base_ref = publish(t.path(), &registry.host(), &base, "lib/base:1");
    let app_ref = publish(t.path(), &registry.host(), &app, "lib/app:1");
    let project = t.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: {app_ref}\n  cache:\n    image: {base_ref}\n  built:\n    build: .\n"
        ),
    )
    .unwrap();
    let log_before = registry.log().len();
    let root = t.path().join("root");
    ok(&berth_in(&root, &["pull", "-q"], Some(&project)));
    assert_eq!(image_ids(&root).len(), 2);
    // The busybox layer is in both images; it crossed the wire once. (Published from a
    // docker-archive, layers travel as the archive holds them: uncompressed, named by
    // their diff_id.)
    let shared = base.parts().layers[0].diff_id.to_string();
    let log = &registry.log()[log_before..];
    let gets = log
        .lines()
        .filter(|l| l.contains(&format!("/blobs/{shared}")) && l.contains("GET"))
        .count();
    assert_eq!(gets, 1, "{log}");
    let snaps = snapshot_dirs(&root);
    assert_eq!(snaps.len(), 2);
    assert!(snaps.iter().any(|s| s.join("diff/app/hello.txt").is_file()));
}

#[test]
fn concurrent_pulls_of_one_image_download_and_unpack_once() {
    let t = scratch();
    let registry = TestRegistry::start().unwrap();
    let image =
        TestImage::busybox()
            .tag("big:latest")
            .extra_layer(&[("big.bin", &noise(8 << 20), 0o644)]);
    let name = publish(t.path(), &registry.host(), &image, "x/big:1");
    let log_before = registry.log().len();
    let root = t.path().join("root");
    let spawn = || {
        berth_command(&root, &["pull", "-q", &name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = (0..3).map(|_| spawn()).collect();
    for c in children {
        ok(&c.wait_with_output().unwrap());
    }
    let log = &registry.log()[log_before..];
    for layer in &image.parts().layers {
        let gets = log
            .lines()
            .filter(|l| l.contains(&format!("/blobs/{}", layer.diff_id)) && l.contains("GET"))
            .count();
        assert_eq!(gets, 1, "layer {} fetched {gets} times", layer.diff_id);
    }
    assert_eq!(snapshot_dirs(&root).len(), 2);
    assert_eq!(image_ids(&root).len(), 1);
}

/// Serves `parts` under `repo:tag` on a fake registry.
fn serve(fake: &FakeRegistry, repo: &str, tag: &str, parts: &ImageParts) {
    fake.add_manifest(repo, tag, &parts.manifest_media_type, &parts.manifest);
    fake.add_blob(&parts.config);
    for l in &parts.layers {
        fake.add_blob(&l.data);
    }
}

#[test]
fn a_corrupt_blob_fails_the_pull_naming_it_and_leaves_nothing_usable() {
    let t = scratch();
    let fake = FakeRegistry::start().unwrap();
    let image = TestImage::busybox().tag("c:latest");
    let parts = image.parts();
    serve(&fake, "bad/img", "1", &parts);
    let layer = parts.layers[0].digest.to_string();
    fake.state().corrupt.insert(layer.clone());
    let root = t.path().join("root");
    let name = format!("{}/bad/img:1", fake.host());
    let err = failed(&berth(&root, &["pull", &name]));
    assert!(err.contains(&layer), "{err}");
    assert!(image_ids(&root).is_empty());
    assert!(!blobs(&root)
        .iter()
        .any(|b| b.ends_with(Digest::from_hex(&layer[7..]).unwrap().hex())));
    assert!(snapshot_dirs(&root).is_empty());

    fake.state().corrupt.clear();
    ok(&berth(&root, &["pull", &name]));
    assert_eq!(image_ids(&root), vec![parts.config_digest.to_string()]);
}

#[test]
fn a_pull_killed_mid_blob_resumes_where_it_stopped() {
    let t = scratch();
    let big = noise(6 << 20);
    let image = TestImage::busybox()
        .tag("k:latest")
        .extra_layer(&[("big.bin", &big, 0o644)]);
    let parts = image.parts();
    let slow = parts.layers[1].clone();
    let half = slow.data.len() / 2;
    let stall = Arc::new(AtomicBool::new(true));
    let server = {
        let parts = parts.clone();
        let stall = Arc::clone(&stall);
        ScriptedServer::start(move |req: &Request| scripted(&parts, req, &stall, half)).unwrap()
    };
    let root = t.path().join("root");
    let name = format!("{}/k/img:1", server.host());
    let mut child = berth_command(&root, &["pull", "-q", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = root.join("content/ingest").join(slow.digest.hex());
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < half as u64 {
        assert!(
            Instant::now() < deadline,
            "the pull never wrote half the blob"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(image_ids(&root).is_empty());

    stall.store(false, Ordering::SeqCst);
    ok(&berth(&root, &["pull", "-q", &name]));
    assert_eq!(image_ids(&root), vec![parts.config_digest.to_string()]);
    let resumed = server
        .requests()
        .iter()
        .any(|r| r.header("range") == Some(&format!("bytes={half}-")));
    assert!(
        resumed,
        "the second pull did not resume with a Range request"
    );
    let snap = snapshot_dirs(&root)
        .into_iter()
        .find(|s| s.join("diff/big.bin").is_file())
        .expect("the big layer is unpacked");
    assert_eq!(std::fs::read(snap.join("diff/big.bin")).unwrap(), big);
}

/// A registry that cuts the big blob at `half` and, while `stall` is set, hangs on the
/// resume request.
fn scripted(parts: &ImageParts, req: &Request, stall: &AtomicBool, half: usize) -> Response {
    let path = req.path();
    if path == "/v2/" {
        return Response::json(200, &serde_json::json!({}));
    }
    if path.contains("/manifests/") {
        return Response::new(200)
            .header("Content-Type", &parts.manifest_media_type)
            .body(parts.manifest.clone());
    }
    let Some((_, digest)) = path.rsplit_once("/blobs/") else {
        return Response::new(404);
    };
    let blob = if digest == parts.config_digest.to_string() {
        parts.config.clone()
    } else {
        match parts.layers.iter().find(|l| l.digest.to_string() == digest) {
            Some(l) => l.data.clone(),
            None => return Response::new(404),
        }
    };
    let big = parts.layers[1].digest.to_string() == digest;
    let range = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match range {
        Some(start) if start < blob.len() => {
            if big && stall.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(60));
                return Response::new(503);
            }
            Response::new(206)
                .header(
                    "Content-Range",
                    &format!("bytes {start}-{}/{}", blob.len() - 1, blob.len()),
                )
                .body(blob[start..].to_vec())
        }
        _ if big && stall.load(Ordering::SeqCst) => Response::new(200).body(blob).cut_after(half),
        _ => Response::new(200).body(blob),
    }
}

#[test]
fn a_hostile_layer_cannot_touch_anything_outside_the_snapshot() {
    let t = scratch();
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let sentinel = outside.join("sentinel");
    std::fs::write(&sentinel, b"untouched").unwrap();
    let rel = |p: &Path| p.to_str().unwrap().trim_start_matches('/').to_string();
    let layer = berth::engine::image::testkit::tar_of(&[
        (
            "evil".into(),
            TarItem::Symlink(outside.to_str().unwrap().into()),
        ),
        (
            "evil/sentinel".into(),
            TarItem::File(b"owned".to_vec(), 0o644),
        ),
        ("up".into(), TarItem::Symlink("../../../../../../..".into())),
        (
            format!("up/{}", rel(&outside.join("new"))),
            TarItem::File(b"x".to_vec(), 0o644),
        ),
        (
            "hl".into(),
            TarItem::Hardlink(sentinel.to_str().unwrap().into()),
        ),
    ]);
    let image = TestImage::scratch().tag("evil:latest").layer_tar(layer);
    let root = t.path().join("root");
    let archive = t.path().join("evil.tar");
    std::fs::write(&archive, image.docker_archive_tar()).unwrap();
    // Contained or refused: either is acceptable, escaping is not.
    let _ = berth(&root, &["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(std::fs::read(&sentinel).unwrap(), b"untouched");
    assert!(!outside.join("new").exists());
    assert_eq!(entries(&outside).len(), 1);
}

#[test]
fn bad_references_and_unknown_images_are_clear_errors() {
    let t = scratch();
    let root = t.path().join("root");
    let err = failed(&berth(&root, &["pull", "library/UPPER"]));
    assert!(
        err.contains("library/UPPER") && err.contains("lowercase"),
        "{err}"
    );
    let err = failed(&berth(&root, &["save", "-o", "/dev/null", "nothing:here"]));
    assert!(err.contains("nothing"), "{err}");
    let bogus = t.path().join("bogus.tar");
    std::fs::File::create(&bogus)
        .unwrap()
        .write_all(b"not a tar at all")
        .unwrap();
    let err = failed(&berth(&root, &["load", "-i", bogus.to_str().unwrap()]));
    assert!(!err.is_empty());
    assert!(image_ids(&root).is_empty());
}

/// Incompressible bytes from a fixed seed (xorshift), so layers are big on the wire.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
