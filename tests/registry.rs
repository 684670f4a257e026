//! Registry client against a real CNCF distribution registry on loopback (Debian's
//! docker-registry) and against a fake one that misbehaves on purpose.

use std::io::Write;
use std::time::Duration;

use berth::engine::image::digest::{Digest, HashingWriter};
use berth::engine::image::imagespec::media::{
    self, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG,
    OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST,
};
use berth::engine::image::imagespec::{Descriptor, Platform};
use berth::engine::image::reference::Reference;
use berth::engine::image::registry::testsupport::{
    token_server, BearerAuth, FakeRegistry, TestRegistry,
};
use berth::engine::image::registry::{
    transport_for, BlobBody, BlobFetch, PushOutcome, RegistryClient, RegistryConfig, RegistryError,
    SyncSink, Transport,
};

/// A tiny image: one gzip'd tar layer, an OCI config naming its diff_id, a manifest.
struct TinyImage {
    layer: Vec<u8>,
    layer_desc: Descriptor,
    config: Vec<u8>,
    config_desc: Descriptor,
    manifest: Vec<u8>,
    manifest_type: &'static str,
}

/// Deterministic pseudo-random bytes (xorshift), so the gzip layer is not tiny.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn tar_gz(files: &[(&str, Vec<u8>)]) -> (Vec<u8>, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let diff_id = Digest::of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

fn build_image(arch: &str, oci: bool, payload: usize) -> TinyImage {
    let (layer, diff_id) = tar_gz(&[
        ("etc/hostname", format!("berth-{arch}\n").into_bytes()),
        (
            "data/blob.bin",
            noise(payload, arch.len() as u64 + payload as u64),
        ),
    ]);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    }))
    .unwrap();
    let (mt, ct, lt) = if oci {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    } else {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
    };
    let layer_desc = Descriptor::of(lt, &layer);
    let config_desc = Descriptor::of(ct, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": config_desc,
        "layers": [layer_desc],
    }))
    .unwrap();
    TinyImage {
        layer,
        layer_desc,
        config,
        config_desc,
        manifest,
        manifest_type: mt,
    }
}

fn index_of(media_type: &str, entries: &[(&TinyImage, &str, Option<&str>)]) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(img, arch, variant)| {
            let mut p = serde_json::json!({"os": "linux", "architecture": arch});
            if let Some(v) = variant {
                p["variant"] = serde_json::json!(v);
            }
            serde_json::json!({
                "mediaType": img.manifest_type,
                "digest": Digest::of(&img.manifest).to_string(),
                "size": img.manifest.len(),
                "platform": p,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": manifests,
    }))
    .unwrap()
}

fn quick_config(docker_config: &std::path::Path) -> RegistryConfig {
    RegistryConfig {
        docker_config_path: Some(docker_config.to_path_buf()),
        max_retries: 3,
        retry_base_delay: Duration::from_millis(5),
        max_retry_delay: Duration::from_millis(50),
        read_timeout: Duration::from_secs(10),
        ..RegistryConfig::default()
    }
}

fn client(dir: &tempfile::TempDir) -> RegistryClient {
    RegistryClient::new(quick_config(&dir.path().join("config.json"))).unwrap()
}

fn reference(host: &str, repo_tag: &str) -> Reference {
    Reference::parse(&format!("{host}/{repo_tag}")).unwrap()
}

async fn push_image(c: &RegistryClient, r: &Reference, img: &TinyImage) -> Digest {
    for (desc, bytes) in [
        (&img.layer_desc, &img.layer),
        (&img.config_desc, &img.config),
    ] {
        c.push_blob(r, desc, BlobBody::Bytes(bytes.clone().into()))
            .await
            .unwrap();
    }
    c.push_manifest(r, img.manifest_type, &img.manifest)
        .await
        .unwrap()
}

/// Fetches a whole blob through a hashing sink; returns the bytes and their digest.
async fn fetch_all(c: &RegistryClient, r: &Reference, desc: &Descriptor) -> (Vec<u8>, Digest) {
    let mut sink = SyncSink(HashingWriter::new(Vec::new()));
    let mut last = 0;
    let outcome = c
        .fetch_blob(r, desc, 0, &mut sink, |n| {
            assert!(n >= last, "progress goes forward");
            last = n;
        })
        .await
        .unwrap();
    assert_eq!(outcome, BlobFetch::Complete { size: desc.size });
    assert_eq!(last, desc.size);
    let (bytes, digest, _) = sink.0.finish();
    (bytes, digest)
}

#[tokio::test]
async fn push_then_resolve_docker_v2_and_oci_images() {
    let reg = TestRegistry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    let amd64 = Platform::parse("linux/amd64").unwrap();
    for (oci, tag) in [(false, "docker"), (true, "oci")] {
        let img = build_image("amd64", oci, 50_000);
        let r = reference(&reg.host(), &format!("tiny/app:{tag}"));
        let pushed = push_image(&c, &r, &img).await;
        assert_eq!(pushed, Digest::of(&img.manifest));
        // Pushing again finds the blobs there.
        let again = c
            .push_blob(
                &r,
                &img.layer_desc,
                BlobBody::Bytes(img.layer.clone().into()),
            )
            .await
            .unwrap();
        assert_eq!(again, PushOutcome::AlreadyExists);
        assert_eq!(
            c.blob_exists(&r, &img.layer_desc.digest).await.unwrap(),
            Some(img.layer.len() as u64)
        );

        let by_tag = c.resolve(&r, &amd64).await.unwrap();
        assert_eq!(by_tag.manifest_digest, pushed, "{tag}");
        assert_eq!(by_tag.media_type, img.manifest_type, "{tag}");
        assert_eq!(by_tag.manifest_bytes.as_ref(), img.manifest.as_slice());
        assert_eq!(by_tag.config, img.config_desc);
        assert_eq!(by_tag.layers, vec![img.layer_desc.clone()]);
        assert_eq!(by_tag.index_digest, None);

        let by_digest = c
            .resolve(&r.with_digest(pushed.clone()), &amd64)
            .await
            .unwrap();
        assert_eq!(by_digest.manifest_digest, pushed);

        let (bytes, digest) = fetch_all(&c, &r, &img.layer_desc).await;
        assert_eq!(digest, img.layer_desc.digest);
        assert_eq!(bytes, img.layer);
        let config = c
            .fetch_blob_verified(&r, &img.config_desc, 1 << 20)
            .await
            .unwrap();
        assert_eq!(config, img.config);
        let too_small = c.fetch_blob_verified(&r, &img.config_desc, 10).await;
        assert!(matches!(too_small, Err(RegistryError::Blob { .. })));
    }

    // A missing tag and a missing blob are "not found", naming what is missing.
    let r = reference(&reg.host(), "tiny/app:nope");
    let e = c.resolve(&r, &amd64).await.unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("tiny/app:nope"), "{e}");
    let ghost = Descriptor::of(OCI_LAYER_GZIP, b"not pushed");
    let mut sink = Vec::new();
    let e = c
        .fetch_blob(&r, &ghost, 0, &mut sink, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains(&ghost.digest.to_string()), "{e}");
}

#[tokio::test]
async fn push_from_a_file_and_refuse_inconsistent_pushes() {
    let reg = TestRegistry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    let img = build_image("amd64", true, 300_000);
    let r = reference(&reg.host(), "files/app:1");
    let path = dir.path().join("layer.tar.gz");
    std::fs::write(&path, &img.layer).unwrap();
    let out = c
        .push_blob(&r, &img.layer_desc, BlobBody::File(path.clone()))
        .await
        .unwrap();
    assert_eq!(out, PushOutcome::Uploaded);
    let (_, digest) = fetch_all(&c, &r, &img.layer_desc).await;
    assert_eq!(digest, img.layer_desc.digest);

    // The manifest names a config that was never pushed: the registry says so.
    let e = c
        .push_manifest(&r, img.manifest_type, &img.manifest)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("MANIFEST_BLOB_UNKNOWN"), "{e}");

    // A file whose content is not what the descriptor says is refused by the registry.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, vec![0u8; img.config.len()]).unwrap();
    let e = c
        .push_blob(&r, &img.config_desc, BlobBody::File(wrong))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&img.config_desc.digest.to_string()),
        "{e}"
    );
    // Sizes and in-memory digests are checked before sending anything.
    let e = c
        .push_blob(&r, &img.config_desc, BlobBody::Bytes(vec![1, 2].into()))
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Blob { .. }), "{e}");
    let e = c
        .push_manifest(
            &r.with_digest(Digest::of(b"other")),
            OCI_MANIFEST,
            &img.manifest,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
}

#[tokio::test]
async fn an_index_with_two_platforms_resolves_per_platform() {
    let reg = TestRegistry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    for (index_type, oci, tag) in [
        (OCI_INDEX, true, "multi-oci"),
        (DOCKER_MANIFEST_LIST, false, "multi-docker"),
    ] {
        let amd = build_image("amd64", oci, 1000);
        let arm = build_image("arm64", oci, 2000);
        // Children are pushed by digest only, as buildx does.
        for img in [&amd, &arm] {
            let by_digest =
                reference(&reg.host(), "multi/app").with_digest(Digest::of(&img.manifest));
            push_image(&c, &by_digest, img).await;
        }
        let index = index_of(
            index_type,
            &[(&amd, "amd64", None), (&arm, "arm64", Some("v8"))],
        );
        let r = reference(&reg.host(), &format!("multi/app:{tag}"));
        let index_digest = c.push_manifest(&r, index_type, &index).await.unwrap();

        let on_amd = c
            .resolve(&r, &Platform::parse("linux/amd64").unwrap())
            .await
            .unwrap();
        assert_eq!(on_amd.manifest_digest, Digest::of(&amd.manifest), "{tag}");
        assert_eq!(on_amd.index_digest.as_ref(), Some(&index_digest));
        assert_eq!(on_amd.config, amd.config_desc);
        let on_arm = c
            .resolve(&r, &Platform::parse("linux/aarch64").unwrap())
            .await
            .unwrap();
        assert_eq!(on_arm.manifest_digest, Digest::of(&arm.manifest), "{tag}");
        assert_eq!(on_arm.layers, vec![arm.layer_desc.clone()]);
        let (_, d) = fetch_all(&c, &r, &on_arm.layers[0]).await;
        assert_eq!(d, arm.layer_desc.digest);
        // The host default picks amd64 here.
        if cfg!(target_arch = "x86_64") {
            let host = c.resolve(&r, &Platform::host()).await.unwrap();
            assert_eq!(host.manifest_digest, on_amd.manifest_digest);
        }
        // By the index's digest, the same selection happens.
        let pinned = c
            .resolve(
                &r.with_digest(index_digest.clone()),
                &Platform::parse("linux/arm64/v8").unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(pinned.manifest_digest, on_arm.manifest_digest);

        let e = c
            .resolve(&r, &Platform::parse("linux/s390x").unwrap())
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, RegistryError::NoMatchingPlatform { .. }),
            "{msg}"
        );
        assert!(
            msg.contains("linux/s390x") && msg.contains("linux/amd64, linux/arm64/v8"),
            "{msg}"
        );
        assert!(msg.contains(&format!("multi/app:{tag}")), "{msg}");
    }
}

#[tokio::test]
async fn range_resume_from_the_middle() {
    let reg = TestRegistry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    let img = build_image("amd64", true, 400_000);
    let r = reference(&reg.host(), "range/app:1");
    push_image(&c, &r, &img).await;

    let half = img.layer.len() / 2;
    let mut sink = img.layer[..half].to_vec();
    let mut first_progress = None;
    let out = c
        .fetch_blob(&r, &img.layer_desc, half as u64, &mut sink, |n| {
            first_progress.get_or_insert(n);
        })
        .await
        .unwrap();
    assert_eq!(
        out,
        BlobFetch::Complete {
            size: img.layer_desc.size
        }
    );
    assert!(
        first_progress.unwrap() > half as u64,
        "progress counts the offset"
    );
    assert_eq!(Digest::of(&sink), img.layer_desc.digest);
    // Offsets at or past the end.
    let mut done = img.layer.clone();
    let out = c
        .fetch_blob(
            &r,
            &img.layer_desc,
            img.layer.len() as u64,
            &mut done,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        BlobFetch::Complete {
            size: img.layer_desc.size
        }
    );
    assert_eq!(done, img.layer, "nothing more written");
    let out = c
        .fetch_blob(
            &r,
            &img.layer_desc,
            img.layer.len() as u64 + 1,
            &mut done,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(out, BlobFetch::RestartFromZero);

    // A server ignoring Range: the caller is told to start over, and nothing is written.
    let fake = FakeRegistry::start().unwrap();
    fake.add_blob(&img.layer);
    fake.state().ignore_range = true;
    let fr = reference(&fake.host(), "range/app:1");
    let mut sink = img.layer[..half].to_vec();
    let out = c
        .fetch_blob(&fr, &img.layer_desc, half as u64, &mut sink, |_| {})
        .await
        .unwrap();
    assert_eq!(out, BlobFetch::RestartFromZero);
    assert_eq!(sink.len(), half);
    let ranged = fake
        .requests()
        .into_iter()
        .filter(|q| q.path().contains("/blobs/"))
        .collect::<Vec<_>>();
    assert_eq!(
        ranged.last().unwrap().header("range"),
        Some(format!("bytes={half}-").as_str())
    );
    sink.clear();
    let out = c
        .fetch_blob(&fr, &img.layer_desc, 0, &mut sink, |_| {})
        .await
        .unwrap();
    assert_eq!(
        out,
        BlobFetch::Complete {
            size: img.layer_desc.size
        }
    );
    assert_eq!(Digest::of(&sink), img.layer_desc.digest);
}

#[tokio::test]
async fn anonymous_bearer_token_flow() {
    let tokens = token_server("tok-123", None).unwrap();
    let fake = FakeRegistry::start().unwrap();
    let img = build_image("amd64", true, 10_000);
    let digest = fake.add_manifest("lib/app", "1", OCI_MANIFEST, &img.manifest);
    fake.add_blob(&img.layer);
    fake.add_blob(&img.config);
    fake.state().bearer = Some(BearerAuth {
        realm: format!("{}/token", tokens.url()),
        service: "fake-registry".into(),
        token: "tok-123".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    let r = reference(&fake.host(), "lib/app:1");
    let res = c
        .resolve(&r, &Platform::parse("linux/amd64").unwrap())
        .await
        .unwrap();
    assert_eq!(res.manifest_digest.to_string(), digest);
    let (_, d) = fetch_all(&c, &r, &img.layer_desc).await;
    assert_eq!(d, img.layer_desc.digest);
    c.fetch_blob_verified(&r, &img.config_desc, 1 << 20)
        .await
        .unwrap();

    // One token for the repository, asked for with the challenge's service and our scope,
    // anonymously; then reused.
    let asked = tokens.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].query("service"), vec!["fake-registry"]);
    assert_eq!(asked[0].query("scope"), vec!["repository:lib/app:pull"]);
    assert_eq!(asked[0].header("authorization"), None);
    let seen = fake.requests();
    let unauth = seen
        .iter()
        .filter(|q| q.header("authorization").is_none())
        .count();
    assert_eq!(unauth, 1, "only the first request goes without the token");
    assert!(seen
        .iter()
        .skip(1)
        .all(|q| q.header("authorization") == Some("Bearer tok-123")));

    // Another repository on the same registry: the known challenge is used up front.
    fake.add_manifest("lib/other", "1", OCI_MANIFEST, &img.manifest);
    fake.clear_requests();
    let r2 = reference(&fake.host(), "lib/other:1");
    c.fetch_manifest(&r2, "1").await.unwrap();
    assert_eq!(
        fake.requests().len(),
        1,
        "no 401 round trip for a new scope"
    );
    assert_eq!(
        tokens.requests().last().unwrap().query("scope"),
        vec!["repository:lib/other:pull"]
    );

    // A token the registry does not accept ends in a clear denial, not a loop.
    fake.state().bearer.as_mut().unwrap().token = "something-else".into();
    let e = c
        .fetch_manifest(&reference(&fake.host(), "lib/third:1"), "1")
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{msg}");
    assert!(
        msg.contains("repository:lib/third:pull") && msg.contains("berth login"),
        "{msg}"
    );
}

#[tokio::test]
async fn bearer_token_with_stored_credentials() {
    let tokens = token_server("tok-cred", Some(("bob", "pw"))).unwrap();
    let fake = FakeRegistry::start().unwrap();
    let img = build_image("amd64", false, 100);
    fake.add_manifest("team/app", "1", DOCKER_MANIFEST, &img.manifest);
    fake.state().bearer = Some(BearerAuth {
        realm: format!("{}/token", tokens.url()),
        service: "svc".into(),
        token: "tok-cred".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let c = client(&dir);
    let r = reference(&fake.host(), "team/app:1");
    let e = c.fetch_manifest(&r, "1").await.unwrap_err();
    assert!(e.to_string().contains("anonymous"), "{e}");

    // login verifies against the token server, then the stored credentials are used.
    let e = c.login(&fake.host(), "bob", "wrong").await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(!cfg.exists(), "a failed login stores nothing");
    c.login(&fake.host(), "bob", "pw").await.unwrap();
    c.fetch_manifest(&r, "1").await.unwrap();
    let last = tokens.requests().pop().unwrap();
    assert_eq!(last.query("account"), vec!["bob"]);
    assert!(last.header("authorization").unwrap().starts_with("Basic "));

    // Credentials kept by a helper are reported, not run.
    std::fs::write(&cfg, r#"{"credsStore":"desktop"}"#).unwrap();
    let c = client(&dir);
    let e = c.fetch_manifest(&r, "1").await.unwrap_err().to_string();
    assert!(
        e.contains("docker-credential-desktop") && e.contains("does not run"),
        "{e}"
    );
}

#[tokio::test]
async fn basic_auth_login_and_logout_against_a_real_registry() {
    let reg = TestRegistry::start_with_basic_auth("alice", "s3cret").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("docker/config.json");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        r#"{"auths":{"other.example":{"auth":"eDp5"}},"detachKeys":"ctrl-e"}"#,
    )
    .unwrap();
    let c = RegistryClient::new(quick_config(&cfg)).unwrap();
    let img = build_image("amd64", true, 5000);
    let r = reference(&reg.host(), "private/app:1");

    let e = c
        .push_blob(
            &r,
            &img.layer_desc,
            BlobBody::Bytes(img.layer.clone().into()),
        )
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{msg}");
    assert!(
        msg.contains("basic authentication")
            && msg.contains(&format!("berth login {}", reg.host())),
        "{msg}"
    );

    let e = c.login(&reg.host(), "alice", "nope").await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    let key = c.login(&reg.host(), "alice", "s3cret").await.unwrap();
    assert_eq!(key, reg.host());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert_eq!(v["auths"][reg.host()]["auth"], "YWxpY2U6czNjcmV0");
    assert_eq!(
        v["auths"]["other.example"]["auth"], "eDp5",
        "other entries kept"
    );
    assert_eq!(v["detachKeys"], "ctrl-e", "other keys kept");

    let pushed = push_image(&c, &r, &img).await;
    let res = c
        .resolve(&r, &Platform::parse("linux/amd64").unwrap())
        .await
        .unwrap();
    assert_eq!(res.manifest_digest, pushed);

    assert!(c.logout(&format!("http://{}/", reg.host())).unwrap());
    assert!(!c.logout(&reg.host()).unwrap());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert!(v["auths"].get(reg.host()).is_none());
    assert_eq!(v["auths"]["other.example"]["auth"], "eDp5");
    let e = c
        .resolve(&r, &Platform::parse("linux/amd64").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
}

/// A fake registry serving one tiny image under `lib/app:1`.
fn fake_with_image(oci: bool) -> (FakeRegistry, TinyImage) {
    let fake = FakeRegistry::start().unwrap();
    let img = build_image("amd64", oci, 200_000);
    fake.add_manifest("lib/app", "1", img.manifest_type, &img.manifest);
    fake.add_blob(&img.layer);
    fake.add_blob(&img.config);
    (fake, img)
}

#[tokio::test]
async fn schema1_manifests_are_refused_clearly() {
    let fake = FakeRegistry::start().unwrap();
    let s1 = serde_json::json!({
        "schemaVersion": 1, "name": "lib/old", "tag": "1", "architecture": "amd64",
        "fsLayers": [{"blobSum": Digest::of(b"x").to_string()}], "history": [],
        "signatures": [{"header": {}, "signature": "abc", "protected": "def"}],
    });
    let bytes = serde_json::to_vec_pretty(&s1).unwrap();
    fake.add_manifest("lib/old", "1", media::DOCKER_SCHEMA1_SIGNED, &bytes);
    fake.add_manifest("lib/old", "json", "application/json", &bytes);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    for tag in ["1", "json"] {
        let r = reference(&fake.host(), &format!("lib/old:{tag}"));
        let e = c.resolve(&r, &Platform::host()).await.unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, RegistryError::Schema1 { .. }), "{msg}");
        assert!(
            msg.contains("schema 1") && msg.contains(&format!("lib/old:{tag}")),
            "{msg}"
        );
    }
    // The Accept header offered every current type.
    let accept = fake.requests()[0].header("accept").unwrap().to_string();
    for t in [
        OCI_INDEX,
        OCI_MANIFEST,
        DOCKER_MANIFEST_LIST,
        DOCKER_MANIFEST,
    ] {
        assert!(accept.contains(t), "{accept}");
    }
}

#[tokio::test]
async fn a_corrupt_blob_is_caught_by_its_digest() {
    let (fake, img) = fake_with_image(true);
    fake.state()
        .corrupt
        .insert(img.layer_desc.digest.to_string());
    fake.state()
        .corrupt
        .insert(img.config_desc.digest.to_string());
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    let r = reference(&fake.host(), "lib/app:1");
    let mut sink = SyncSink(HashingWriter::new(Vec::new()));
    let out = c
        .fetch_blob(&r, &img.layer_desc, 0, &mut sink, |_| {})
        .await
        .unwrap();
    assert_eq!(
        out,
        BlobFetch::Complete {
            size: img.layer_desc.size
        }
    );
    let (_, digest, n) = sink.0.finish();
    assert_eq!(n, img.layer_desc.size);
    assert_ne!(
        digest, img.layer_desc.digest,
        "the sink's digest exposes the corruption"
    );
    let e = c
        .fetch_blob_verified(&r, &img.config_desc, 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");

    // A manifest fetched by digest must hash to it.
    let fake2 = FakeRegistry::start().unwrap();
    let wanted = Digest::of(&img.manifest);
    let mut other = img.manifest.clone();
    other.push(b'\n');
    fake2.state().manifests.insert(
        format!("lib/app/{wanted}"),
        (OCI_MANIFEST.to_string(), other),
    );
    let r2 = reference(&fake2.host(), "lib/app").with_digest(wanted.clone());
    let e = c.resolve(&r2, &Platform::host()).await.unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&wanted.to_string()), "{e}");

    // A blob longer than its descriptor says is cut off, not written on and on.
    let mut short = img.layer_desc.clone();
    short.size -= 10;
    let mut sink = Vec::new();
    let e = c
        .fetch_blob(&r, &short, 0, &mut sink, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Blob { .. }), "{e}");
    assert!(sink.len() as u64 <= short.size);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let (fake, img) = fake_with_image(false);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir); // max_retries 3
    let r = reference(&fake.host(), "lib/app:1");
    fake.state().fail_next = 3;
    let res = c.resolve(&r, &Platform::host()).await.unwrap();
    assert_eq!(res.manifest_digest, Digest::of(&img.manifest));
    assert_eq!(fake.requests().len(), 4, "three 500s, then the answer");

    fake.state().fail_next = 2;
    fake.state().fail_status = 503;
    let (_, d) = fetch_all(&c, &r, &img.layer_desc).await;
    assert_eq!(d, img.layer_desc.digest);

    fake.clear_requests();
    fake.state().fail_next = 10;
    fake.state().fail_status = 500;
    let e = c.resolve(&r, &Platform::host()).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, RegistryError::Status { status: 500, .. }),
        "{msg}"
    );
    assert!(msg.contains("injected failure"), "{msg}");
    assert_eq!(fake.requests().len(), 4, "1 try + 3 retries");

    // Client errors are not retried.
    fake.clear_requests();
    fake.state().fail_next = 1;
    fake.state().fail_status = 400;
    assert!(c.resolve(&r, &Platform::host()).await.is_err());
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_body_cut_short_is_resumed_with_range() {
    let (fake, img) = fake_with_image(true);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    let r = reference(&fake.host(), "lib/app:1");
    fake.state().cut_next = 2;
    fake.state().cut_at = 50_000;
    let (bytes, d) = fetch_all(&c, &r, &img.layer_desc).await;
    assert_eq!(d, img.layer_desc.digest);
    assert_eq!(bytes, img.layer);
    let ranges: Vec<Option<String>> = fake
        .requests()
        .iter()
        .filter(|q| q.path().contains("/blobs/"))
        .map(|q| q.header("range").map(str::to_string))
        .collect();
    assert_eq!(
        ranges,
        vec![
            None,
            Some("bytes=50000-".into()),
            Some("bytes=100000-".into())
        ]
    );

    // A server that never gets anywhere is given up on after max_retries.
    fake.clear_requests();
    fake.state().cut_next = 100;
    fake.state().cut_at = 0;
    let mut sink = Vec::new();
    let e = c
        .fetch_blob(&r, &img.layer_desc, 0, &mut sink, |_| {})
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("0 of {} bytes", img.layer_desc.size)),
        "{msg}"
    );
    assert_eq!(fake.requests().len(), 4);
}

#[tokio::test]
async fn redirects_are_followed_without_leaking_the_token() {
    let storage = FakeRegistry::start().unwrap();
    let (fake, img) = fake_with_image(true);
    storage.add_blob(&img.layer);
    let tokens = token_server("secret-token", None).unwrap();
    fake.state().redirect_blobs = Some(storage.url());
    fake.state().bearer = Some(BearerAuth {
        realm: format!("{}/token", tokens.url()),
        service: "svc".into(),
        token: "secret-token".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    let r = reference(&fake.host(), "lib/app:1");
    let (_, d) = fetch_all(&c, &r, &img.layer_desc).await;
    assert_eq!(d, img.layer_desc.digest);
    let at_storage = storage.requests();
    assert_eq!(at_storage.len(), 1);
    assert!(at_storage[0]
        .path()
        .ends_with(&img.layer_desc.digest.to_string()));
    assert_eq!(
        at_storage[0].header("authorization"),
        None,
        "token dropped cross-port"
    );
    assert!(fake
        .requests()
        .iter()
        .any(|q| q.header("authorization") == Some("Bearer secret-token")));

    // Resume through the redirect keeps the Range header.
    let half = img.layer.len() / 2;
    let mut sink = img.layer[..half].to_vec();
    let out = c
        .fetch_blob(&r, &img.layer_desc, half as u64, &mut sink, |_| {})
        .await
        .unwrap();
    assert_eq!(
        out,
        BlobFetch::Complete {
            size: img.layer_desc.size
        }
    );
    assert_eq!(Digest::of(&sink), img.layer_desc.digest);
    assert_eq!(
        storage.requests()[1].header("range"),
        Some(format!("bytes={half}-").as_str())
    );
}

#[tokio::test]
async fn mirrors_are_tried_first_and_fall_back_to_the_registry() {
    let (origin, img) = fake_with_image(true);
    let mirror = FakeRegistry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = RegistryConfig {
        mirrors: vec![(origin.host(), vec![format!("http://{}", mirror.host())])],
        ..quick_config(&dir.path().join("config.json"))
    };
    let c = RegistryClient::new(cfg).unwrap();
    let r = reference(&origin.host(), "lib/app:1");

    // The mirror has nothing: everything comes from the registry after asking it.
    let res = c.resolve(&r, &Platform::host()).await.unwrap();
    assert_eq!(res.manifest_digest, Digest::of(&img.manifest));
    assert_eq!(mirror.requests().len(), 1);
    assert_eq!(origin.requests().len(), 1);

    // The mirror has it: the registry is not asked.
    mirror.add_manifest("lib/app", "1", img.manifest_type, &img.manifest);
    mirror.add_blob(&img.layer);
    origin.clear_requests();
    c.resolve(&r, &Platform::host()).await.unwrap();
    let (_, d) = fetch_all(&c, &r, &img.layer_desc).await;
    assert_eq!(d, img.layer_desc.digest);
    assert!(origin.requests().is_empty(), "{:?}", origin.requests());

    // A mirror that breaks mid-blob (cut short, then the blob is gone) hands over to the
    // registry, which resumes where the mirror stopped.
    origin.clear_requests();
    mirror.state().cut_next = 1;
    mirror.state().cut_at = 30_000;
    let (_, d) = fetch_all_after_mirror_breaks(&c, &r, &img, &mirror).await;
    assert_eq!(d, img.layer_desc.digest);
    let from_origin: Vec<_> = origin
        .requests()
        .into_iter()
        .filter(|q| q.path().contains("/blobs/"))
        .collect();
    assert_eq!(from_origin.len(), 1);
    assert_eq!(from_origin[0].header("range"), Some("bytes=30000-"));
}

/// Starts a fetch on a mirror that cuts the body once, and makes every later mirror
/// request fail with 404, so the fetch must move to the registry.
async fn fetch_all_after_mirror_breaks(
    c: &RegistryClient,
    r: &Reference,
    img: &TinyImage,
    mirror: &FakeRegistry,
) -> (Vec<u8>, Digest) {
    let mut sink = SyncSink(HashingWriter::new(Vec::new()));
    let mut broke = false;
    let out = c
        .fetch_blob(r, &img.layer_desc, 0, &mut sink, |n| {
            if n >= 30_000 && !broke {
                broke = true;
                mirror.state().blobs.clear();
            }
        })
        .await
        .unwrap();
    assert_eq!(
        out,
        BlobFetch::Complete {
            size: img.layer_desc.size
        }
    );
    let (bytes, digest, _) = sink.0.finish();
    (bytes, digest)
}

#[tokio::test]
async fn oversized_manifests_are_refused() {
    let fake = FakeRegistry::start().unwrap();
    let mut big = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024));
    big.extend_from_slice(br#""}}"#);
    fake.add_manifest("lib/big", "1", OCI_MANIFEST, &big);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    let e = c
        .resolve(&reference(&fake.host(), "lib/big:1"), &Platform::host())
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::ManifestTooLarge { .. }), "{e}");
}

#[test]
fn plain_http_is_only_for_loopback_and_listed_insecure_registries() {
    let none: Vec<String> = Vec::new();
    assert_eq!(transport_for("127.0.0.1:5000", &none), Transport::Insecure);
    assert_eq!(transport_for("localhost:5000", &none), Transport::Insecure);
    assert_eq!(
        transport_for("registry.example:5000", &none),
        Transport::Https
    );
    let listed = vec!["registry.example:5000".to_string()];
    assert_eq!(
        transport_for("registry.example:5000", &listed),
        Transport::Insecure
    );
    assert_eq!(
        transport_for("registry.example:443", &listed),
        Transport::Https
    );
    // A plain-HTTP mirror elsewhere is a configuration error, found when the client is made.
    let cfg = RegistryConfig {
        mirrors: vec![("docker.io".into(), vec!["http://mirror.example".into()])],
        ..RegistryConfig::default()
    };
    assert!(matches!(
        RegistryClient::new(cfg),
        Err(RegistryError::Config(_))
    ));
}

/// Throughput of push (from a file) and fetch (to a file, hashing) against the real
/// registry. Manual: `cargo test --test registry -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn measure_blob_throughput() {
    let reg = TestRegistry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    let r = reference(&reg.host(), "bench/blob:1");
    let data = noise(128 << 20, 42);
    let desc = Descriptor::of(OCI_LAYER_GZIP, &data);
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    drop(data);
    let t = std::time::Instant::now();
    c.push_blob(&r, &desc, BlobBody::File(src)).await.unwrap();
    let push = t.elapsed();
    let dst = std::fs::File::create(dir.path().join("dst.bin")).unwrap();
    let mut sink = SyncSink(HashingWriter::new(std::io::BufWriter::with_capacity(
        1 << 20,
        dst,
    )));
    let t = std::time::Instant::now();
    let out = c.fetch_blob(&r, &desc, 0, &mut sink, |_| {}).await.unwrap();
    let fetch = t.elapsed();
    assert_eq!(out, BlobFetch::Complete { size: desc.size });
    assert_eq!(sink.0.finish().1, desc.digest);
    let mib = desc.size as f64 / (1 << 20) as f64;
    println!(
        "blob {mib:.0} MiB: push {:.2} s ({:.0} MiB/s), fetch+sha256+write {:.2} s ({:.0} MiB/s)",
        push.as_secs_f64(),
        mib / push.as_secs_f64(),
        fetch.as_secs_f64(),
        mib / fetch.as_secs_f64()
    );
    println!(
        "curl: http://{}/v2/bench/blob/blobs/{}",
        reg.host(),
        desc.digest
    );
    if let Ok(wait) = std::env::var("BERTH_BENCH_HOLD") {
        tokio::time::sleep(Duration::from_secs(wait.parse().unwrap_or(30))).await;
    }
}

#[tokio::test]
async fn an_unreachable_registry_is_a_clear_transport_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&dir);
    let r = reference(&format!("127.0.0.1:{port}"), "lib/app:1");
    let t = std::time::Instant::now();
    let e = c.resolve(&r, &Platform::host()).await.unwrap_err();
    assert!(matches!(e, RegistryError::Transport { .. }), "{e}");
    assert!(e.is_transient());
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("refused"),
        "{msg}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "retries are bounded: {:?}",
        t.elapsed()
    );
}
