//! The content store, image index and archive load/save on the real filesystem, with the
//! busybox test image from `engine::image::testkit`.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth::engine::image::archive::{self, LoadedImage};
use berth::engine::image::content::{ContentError, ContentStore, Ingest, IngestWriter};
use berth::engine::image::digest::Digest;
use berth::engine::image::imagespec::media;
use berth::engine::image::store::{ImageRecord, ImageStore};
use berth::engine::image::testkit::{self, TestImage};

struct Root {
    dir: tempfile::TempDir,
    content: ContentStore,
    images: ImageStore,
}

fn root() -> Root {
    let dir = tempfile::Builder::new()
        .prefix("berth-image-store-")
        .tempdir_in("/var/tmp")
        .unwrap();
    Root {
        content: ContentStore::open(dir.path()).unwrap(),
        images: ImageStore::open(dir.path()).unwrap(),
        dir,
    }
}

/// What the daemon will do after a load: record each image under normalized names.
fn record(r: &Root, loaded: &LoadedImage, tags: &[&str]) -> ImageRecord {
    let rec = ImageRecord::from_content(
        &r.content,
        &loaded.manifest_digest,
        tags.iter().map(|t| t.to_string()).collect(),
        vec![],
    )
    .unwrap();
    r.images.put(rec).unwrap()
}

fn writer(store: &ContentStore, d: &Digest, size: u64) -> IngestWriter {
    match store.ingest(d, Some(size)).unwrap() {
        Ingest::Writer(w) => *w,
        Ingest::AlreadyPresent(_) => panic!("{d} unexpectedly present"),
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) % 251) as u8).collect()
}

#[test]
fn load_a_docker_archive_and_record_it() {
    let r = root();
    let img = TestImage::busybox().tag("busybox:latest");
    let parts = img.parts();
    let loaded = archive::load(img.docker_archive_tar().as_slice(), &r.content).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].config_digest, parts.config_digest);
    assert_eq!(loaded[0].repo_tags, vec!["busybox:latest".to_string()]);
    let rec = record(&r, &loaded[0], &["docker.io/library/busybox:latest"]);
    assert_eq!(rec.id, parts.config_digest);
    assert_eq!(rec.diff_ids(), parts.diff_ids());
    assert_eq!(rec.layers[0].media_type, media::OCI_LAYER);
    assert_eq!(rec.layers[0].chain_id, parts.layers[0].diff_id);
    assert_eq!(rec.platform, parts.platform);
    for d in rec.blobs() {
        assert!(r.content.has(d), "{d} missing");
        r.content.verify(d).unwrap();
    }
    // The layer blob is the uncompressed rootfs tar, byte for byte.
    assert_eq!(
        r.content.read(&rec.layers[0].digest).unwrap(),
        testkit::busybox_rootfs_tar()
    );
    let got = r
        .images
        .get_by_ref("docker.io/library/busybox:latest")
        .unwrap();
    assert_eq!(got, rec);
    assert_eq!(r.images.get_by_ref(rec.id.short()).unwrap().id, rec.id);
}

#[test]
fn load_an_oci_layout_tar_and_record_it() {
    let r = root();
    let img = TestImage::busybox()
        .tag("docker.io/library/busybox:latest")
        .extra_layer(&[("etc/motd", b"welcome\n", 0o644)])
        .cmd(&["cat", "/etc/motd"]);
    let parts = img.parts();
    let loaded = archive::load(img.oci_layout_tar().as_slice(), &r.content).unwrap();
    assert_eq!(loaded[0].manifest_digest, parts.manifest_digest);
    assert_eq!(
        loaded[0].repo_tags,
        vec!["docker.io/library/busybox:latest".to_string()]
    );
    let rec = record(&r, &loaded[0], &["docker.io/library/busybox:latest"]);
    assert_eq!(rec.layers.len(), 2);
    assert_eq!(rec.layers[1].media_type, media::OCI_LAYER_GZIP);
    assert_eq!(
        rec.compressed_size,
        parts
            .layers
            .iter()
            .map(|l| l.data.len() as u64)
            .sum::<u64>()
    );
    // Blobs stored as shipped: the gzip layer is byte-identical.
    assert_eq!(
        r.content.read(&parts.layers[0].digest).unwrap(),
        parts.layers[0].data
    );
    // Loading the same archive again changes nothing.
    let before = r.content.list().unwrap();
    let again = archive::load(img.oci_layout_tar().as_slice(), &r.content).unwrap();
    assert_eq!(again, loaded);
    assert_eq!(r.content.list().unwrap(), before);
}

#[test]
fn busybox_layer_lists_the_same_in_gnu_tar() {
    // Peer comparison only: GNU tar must read our deterministic layer as we meant it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.tar.gz");
    std::fs::write(&path, &TestImage::busybox().parts().layers[0].data).unwrap();
    let out = Command::new("tar")
        .arg("-tvzf")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains("-rwxr-xr-x 0/0"), "{listing}");
    assert!(listing.contains("bin/sh -> busybox"), "{listing}");
    assert!(listing.contains("drwxrwxrwt 0/0"), "{listing}");
    assert!(listing.contains("1970-01-01"), "{listing}");
}

#[test]
fn save_then_load_round_trips_the_image() {
    let r = root();
    // One image from a classic docker-archive (synthesized manifest, uncompressed layers),
    // one from an OCI layout (original manifest, gzip layers).
    let a = TestImage::busybox().tag("a:1");
    let b = TestImage::busybox()
        .extra_layer(&[("hello", b"hi", 0o644)])
        .tag("b:1");
    let la = archive::load(a.docker_archive_tar().as_slice(), &r.content).unwrap();
    let lb = archive::load(b.oci_layout_tar().as_slice(), &r.content).unwrap();
    let ra = record(&r, &la[0], &["docker.io/library/a:1"]);
    let rb = record(
        &r,
        &lb[0],
        &["docker.io/library/b:1", "registry.local:5000/b:2"],
    );

    let saved = archive::save(Vec::new(), &r.content, &[ra.clone(), rb.clone()]).unwrap();
    assert_eq!(
        saved,
        archive::save(Vec::new(), &r.content, &[ra.clone(), rb.clone()]).unwrap()
    );
    let r2 = root();
    let back = archive::load(saved.as_slice(), &r2.content).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].config_digest, ra.id);
    assert_eq!(back[0].manifest_digest, ra.manifest_digest);
    assert_eq!(back[0].repo_tags, vec!["a:1".to_string()]);
    assert_eq!(back[1].config_digest, rb.id);
    assert_eq!(back[1].manifest_digest, rb.manifest_digest);
    assert_eq!(
        back[1].repo_tags,
        vec!["b:1".to_string(), "registry.local:5000/b:2".to_string()]
    );
    let rb2 = record(&r2, &back[1], &["docker.io/library/b:1"]);
    assert_eq!(rb2.layers, rb.layers);

    // GNU tar reads the saved archive; manifest.json is what `docker load` needs.
    let path = r.dir.path().join("saved.tar");
    std::fs::write(&path, &saved).unwrap();
    let out = Command::new("tar").arg("-tf").arg(&path).output().unwrap();
    assert!(out.status.success());
    let names = String::from_utf8(out.stdout).unwrap();
    for want in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(names.lines().any(|l| l == want), "{want} missing: {names}");
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &tar_entry(&saved, "manifest.json").expect("manifest.json in the archive"),
    )
    .unwrap();
    assert_eq!(
        manifest[0]["Config"],
        format!("blobs/sha256/{}", ra.id.hex())
    );
    assert_eq!(manifest[0]["Layers"].as_array().unwrap().len(), 1);
}

fn tar_entry(tar: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut a = tar::Archive::new(tar);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            return Some(v);
        }
    }
    None
}

#[test]
fn ingest_resumes_after_a_dropped_writer() {
    let r = root();
    let data = pattern(3 << 20);
    let d = Digest::of(&data);
    let half = data.len() / 2;
    let mut w = writer(&r.content, &d, data.len() as u64);
    w.write_all(&data[..half]).unwrap();
    drop(w);
    assert!(!r.content.has(&d));
    let mut w = writer(&r.content, &d, data.len() as u64);
    assert_eq!(w.offset(), half as u64);
    w.write_all(&data[half..]).unwrap();
    assert_eq!(w.commit().unwrap(), d);
    assert_eq!(r.content.read(&d).unwrap(), data);
}

#[test]
fn corrupt_content_is_refused_and_its_partial_removed() {
    let r = root();
    let data = pattern(100_000);
    let d = Digest::of(&data);
    let mut bad = data.clone();
    bad[50_000] ^= 1;
    let mut w = writer(&r.content, &d, data.len() as u64);
    w.write_all(&bad).unwrap();
    match w.commit() {
        Err(ContentError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, d);
            assert_eq!(actual, Digest::of(&bad));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(!r.content.has(&d));
    let ingest = r.dir.path().join("content/ingest");
    assert_eq!(std::fs::read_dir(&ingest).unwrap().count(), 0);
    // A new attempt starts from zero and succeeds.
    let mut w = writer(&r.content, &d, data.len() as u64);
    assert_eq!(w.offset(), 0);
    w.write_all(&data).unwrap();
    w.commit().unwrap();
}

#[test]
fn two_threads_ingesting_one_digest_write_it_once() {
    let r = root();
    let data = pattern(2 << 20);
    let d = Digest::of(&data);
    let barrier = std::sync::Barrier::new(2);
    let outcomes: Vec<bool> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    match r.content.ingest(&d, Some(data.len() as u64)).unwrap() {
                        Ingest::AlreadyPresent(got) => {
                            assert_eq!(got, d);
                            false
                        }
                        Ingest::Writer(mut w) => {
                            for c in data.chunks(128 * 1024) {
                                w.write_all(c).unwrap();
                                std::thread::sleep(Duration::from_millis(3));
                            }
                            w.commit().unwrap();
                            true
                        }
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|w| **w).count(), 1, "{outcomes:?}");
    assert_eq!(r.content.read(&d).unwrap(), data);
}

#[test]
fn gc_removes_only_unreferenced_blobs() {
    let r = root();
    let a = TestImage::busybox()
        .extra_layer(&[("a", b"a", 0o644)])
        .tag("a:1");
    let b = TestImage::busybox()
        .extra_layer(&[("b", b"b", 0o644)])
        .tag("b:1");
    let tar = testkit::oci_layout_tar_of(&[&a, &b]);
    let loaded = archive::load(tar.as_slice(), &r.content).unwrap();
    let ra = record(&r, &loaded[0], &["docker.io/library/a:1"]);
    let rb = record(&r, &loaded[1], &["docker.io/library/b:1"]);
    let stray = r.content.write_blob(b"not referenced").unwrap();

    let report = r.images.gc(&r.content).unwrap();
    assert_eq!(report.removed_blobs, vec![stray]);
    r.images.remove(&ra.id).unwrap();
    let report = r.images.gc(&r.content).unwrap();
    let mut expected: Vec<Digest> = vec![
        ra.manifest_digest.clone(),
        ra.id.clone(),
        ra.layers[1].digest.clone(),
    ];
    expected.sort();
    assert_eq!(report.removed_blobs, expected);
    // The shared busybox layer stays for b; every blob of b is intact.
    for d in rb.blobs() {
        r.content.verify(d).unwrap();
    }
    assert_eq!(
        report.referenced_chain_ids,
        rb.chain_ids().into_iter().collect()
    );
    assert_eq!(r.content.list().unwrap().len(), 4);
}

const SLOW_INGEST_ENV: &str = "BERTH_TEST_SLOW_INGEST_ROOT";
const SLOW_SIZE: usize = 4 << 20;

/// Not a test on its own: the body of the child process `a_killed_ingest_…` spawns.
#[test]
fn slow_ingest_child() {
    let Ok(root) = std::env::var(SLOW_INGEST_ENV) else {
        return;
    };
    let store = ContentStore::open(Path::new(&root)).unwrap();
    let data = pattern(SLOW_SIZE);
    let d = Digest::of(&data);
    let mut w = writer(&store, &d, data.len() as u64);
    for chunk in data.chunks(64 * 1024) {
        w.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(25));
    }
    w.commit().unwrap();
}

#[test]
fn a_killed_ingest_leaves_the_store_consistent() {
    let r = root();
    let data = pattern(SLOW_SIZE);
    let d = Digest::of(&data);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "slow_ingest_child", "--test-threads=1"])
        .env(SLOW_INGEST_ENV, r.dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = r.dir.path().join("content/ingest").join(d.hex());
    let start = Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 512 * 1024 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the child never got going"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    child.wait().unwrap();

    assert!(!r.content.has(&d));
    assert!(r.content.list().unwrap().is_empty());
    let left = std::fs::metadata(&partial).unwrap().len();
    assert!(left > 0 && left < SLOW_SIZE as u64);
    // The dead child's lock is gone with it; the next ingest resumes where it stopped.
    let mut w = writer(&r.content, &d, SLOW_SIZE as u64);
    assert_eq!(w.offset(), left);
    w.write_all(&data[left as usize..]).unwrap();
    w.commit().unwrap();
    r.content.verify(&d).unwrap();
}

/// Peer comparison: skopeo (containers/image) must read what testkit and `save` write, and
/// what skopeo writes must load here. Skipped when skopeo is not installed.
#[test]
fn skopeo_agrees_on_the_archive_formats() {
    if Command::new("skopeo").arg("--version").output().is_err() {
        eprintln!("skopeo not installed; skipping");
        return;
    }
    let r = root();
    let dir = r.dir.path();
    let img = TestImage::busybox()
        .tag("docker.io/library/busybox:latest")
        .extra_layer(&[("hello", b"hi", 0o644)]);
    let parts = img.parts();
    let skopeo = |args: &[&str]| {
        let out = Command::new("skopeo")
            .args(["--insecure-policy", "--override-os", "linux"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let config_of = |json: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["config"]["digest"].as_str().unwrap().to_string()
    };

    // testkit's outputs.
    let oci = dir.join("oci.tar");
    std::fs::write(&oci, img.oci_layout_tar()).unwrap();
    let docker = dir.join("docker.tar");
    std::fs::write(&docker, img.docker_archive_tar()).unwrap();
    let m = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", oci.display()),
    ]);
    assert_eq!(Digest::of(m.as_bytes()), parts.manifest_digest);
    let m = skopeo(&[
        "inspect",
        "--raw",
        &format!("docker-archive:{}", docker.display()),
    ]);
    assert_eq!(config_of(&m), parts.config_digest.to_string());

    // save's output, read as a docker-archive.
    let loaded = archive::load(img.oci_layout_tar().as_slice(), &r.content).unwrap();
    let rec = record(&r, &loaded[0], &["docker.io/library/busybox:latest"]);
    let saved = dir.join("saved.tar");
    std::fs::write(
        &saved,
        archive::save(Vec::new(), &r.content, std::slice::from_ref(&rec)).unwrap(),
    )
    .unwrap();
    let m = skopeo(&[
        "inspect",
        "--raw",
        &format!("docker-archive:{}", saved.display()),
    ]);
    assert_eq!(config_of(&m), rec.id.to_string());

    // skopeo's own docker-archive and OCI archive load here with the same image id.
    for (dest, name) in [
        (
            format!("docker-archive:{}/s1.tar:busybox:latest", dir.display()),
            "s1.tar",
        ),
        (
            format!("oci-archive:{}/s2.tar:busybox:latest", dir.display()),
            "s2.tar",
        ),
    ] {
        skopeo(&[
            "copy",
            "--quiet",
            &format!("oci-archive:{}", oci.display()),
            &dest,
        ]);
        let r2 = root();
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let back = archive::load(bytes.as_slice(), &r2.content).unwrap();
        assert_eq!(back[0].config_digest, rec.id, "{name}");
        assert!(!back[0].repo_tags.is_empty(), "{name}: {:?}", back[0]);
    }
}

/// Timings for the report: `cargo test --test image_store measure -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_throughput() {
    let r = root();
    let mb = |n: usize| n as f64 / (1 << 20) as f64;
    // Ingest: 256 MiB through the verified, fsynced path.
    let data = pattern(256 << 20);
    let d = Digest::of(&data);
    let t = Instant::now();
    let mut w = writer(&r.content, &d, data.len() as u64);
    for c in data.chunks(1 << 20) {
        w.write_all(c).unwrap();
    }
    w.commit().unwrap();
    let s = t.elapsed().as_secs_f64();
    eprintln!("ingest 256 MiB: {s:.2} s ({:.0} MiB/s)", mb(data.len()) / s);
    // A 128 MiB layer: docker-archive (uncompressed) and OCI layout (gzip).
    let big: Vec<u8> = (0..(128usize << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let img =
        TestImage::busybox().layer_tar(testkit::layer_tar_from_files(&[("big.bin", &big, 0o644)]));
    for (kind, tar) in [
        ("docker-archive", img.docker_archive_tar()),
        ("OCI layout, gzip layers", img.oci_layout_tar()),
    ] {
        let r2 = root();
        let t = Instant::now();
        let loaded = archive::load(tar.as_slice(), &r2.content).unwrap();
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "load {kind}, {:.0} MiB archive: {s:.2} s ({:.0} MiB/s)",
            mb(tar.len()),
            mb(tar.len()) / s
        );
        let rec = record(&r2, &loaded[0], &["x:1"]);
        let t = Instant::now();
        let out = archive::save(std::io::sink(), &r2.content, &[rec]);
        out.unwrap();
        eprintln!("save it again: {:.2} s", t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    let small = TestImage::busybox().docker_archive_tar();
    let r3 = root();
    archive::load(small.as_slice(), &r3.content).unwrap();
    eprintln!(
        "load busybox docker-archive ({:.1} MiB): {:.1} ms",
        mb(small.len()),
        t.elapsed().as_secs_f64() * 1000.0
    );
}
