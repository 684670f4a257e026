//! Deterministic test images for integration tests, benches and later issues (no internet):
//! a rootfs of Debian's busybox-static (`/bin/busybox`) plus applet symlinks, and builders
//! that wrap layers into an OCI layout, a docker-archive, or the parts a registry push needs.
//!
//! Same inputs, same bytes: tar entries are sorted with mtime 0 and uid/gid 0, gzip has
//! mtime 0 and a fixed level, JSON keys are written in a fixed order.
//!
//! This is test support: functions panic with a clear message when the machine lacks what
//! they need (e.g. `/bin/busybox`), instead of threading errors through every test.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::archive::{named_in_layout, split_tag};
use super::digest::Digest;
use super::imagespec::{self, media, Compression, Descriptor, Index, Manifest, Platform};

pub const BUSYBOX: &str = "/bin/busybox";
/// `created` of every test image and history entry: the epoch, for stable config digests.
pub const EPOCH: &str = "1970-01-01T00:00:00Z";

/// One tar entry of a test layer or archive.
#[derive(Clone, Debug)]
pub enum TarItem {
    Dir(u32),
    File(Vec<u8>, u32),
    Symlink(String),
    Hardlink(String),
}

/// A tar of `entries`, sorted by path, mtime 0, uid/gid 0, ustar headers (GNU long-name
/// records for paths over 100 bytes). Directory paths should end in `/`.
pub fn tar_of(entries: &[(String, TarItem)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, TarItem)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut b = tar::Builder::new(Vec::new());
    for (path, item) in sorted {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let r = match item {
            TarItem::Dir(mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, path, io::empty())
            }
            TarItem::File(data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())
            }
            TarItem::Symlink(target) | TarItem::Hardlink(target) => {
                h.set_entry_type(if matches!(item, TarItem::Symlink(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)
            }
        };
        r.unwrap_or_else(|e| panic!("testkit: cannot add {path:?} to a tar: {e}"));
    }
    b.into_inner()
        .unwrap_or_else(|e| panic!("testkit: cannot finish a tar: {e}"))
}

/// Gzip with fixed settings (level 6, mtime 0, OS "unknown") so output is reproducible.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data)
        .and_then(|()| enc.finish())
        .unwrap_or_else(|e| panic!("testkit: gzip failed: {e}"))
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap_or_else(|e| panic!("testkit: zstd failed: {e}"))
}

/// The applets `/bin/busybox --list` reports.
pub fn busybox_applets() -> Vec<String> {
    let out = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap_or_else(|e| {
            panic!("testkit: cannot run {BUSYBOX} --list (install busybox-static): {e}")
        });
    assert!(
        out.status.success(),
        "testkit: {BUSYBOX} --list failed: {}",
        out.status
    );
    let mut applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(String::from)
        .collect();
    applets.sort();
    applets.dedup();
    applets
}

/// The busybox rootfs as an uncompressed layer tar. Same bytes every time (cached).
pub fn busybox_rootfs_tar() -> Vec<u8> {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(build_busybox_rootfs).clone()
}

fn build_busybox_rootfs() -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX).unwrap_or_else(|e| {
        panic!("testkit: cannot read {BUSYBOX} (Debian package busybox-static): {e}")
    });
    let mut entries: Vec<(String, TarItem)> = [
        ("bin/", 0o755),
        ("dev/", 0o755),
        ("etc/", 0o755),
        ("proc/", 0o555),
        ("root/", 0o700),
        ("sys/", 0o555),
        ("tmp/", 0o1777),
        ("usr/", 0o755),
        ("usr/bin/", 0o755),
        ("var/", 0o755),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_string(), TarItem::Dir(m)))
    .collect();
    entries.push(("bin/busybox".into(), TarItem::File(busybox, 0o755)));
    for applet in busybox_applets() {
        entries.push((format!("bin/{applet}"), TarItem::Symlink("busybox".into())));
    }
    entries.push((
        "etc/passwd".into(),
        TarItem::File(
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                .to_vec(),
            0o644,
        ),
    ));
    entries.push((
        "etc/group".into(),
        TarItem::File(b"root:x:0:\nnobody:x:65534:\n".to_vec(), 0o644),
    ));
    tar_of(&entries)
}

/// A layer tar from `(path, bytes, mode)`: a path ending in `/` is a directory; a mode with
/// the symlink type bits (`0o120000`) makes a symlink whose target is `bytes`. Parent
/// directories are not added implicitly.
pub fn layer_tar_from_files(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let entries: Vec<(String, TarItem)> = files
        .iter()
        .map(|(path, bytes, mode)| {
            let item = if path.ends_with('/') {
                TarItem::Dir(mode & 0o7777)
            } else if mode & 0o170000 == 0o120000 {
                TarItem::Symlink(String::from_utf8_lossy(bytes).into_owned())
            } else {
                TarItem::File(bytes.to_vec(), mode & 0o7777)
            };
            (path.to_string(), item)
        })
        .collect();
    tar_of(&entries)
}

/// A gzip layer blob from files (see [`layer_tar_from_files`]).
pub fn gzip_layer_from_files(files: &[(&str, &[u8], u32)]) -> LayerBlob {
    LayerBlob::new(&layer_tar_from_files(files), Compression::Gzip, false)
}

/// A layer as pushed or archived.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    /// The blob bytes (compressed as `media_type` says).
    pub data: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    pub uncompressed_size: u64,
}

impl LayerBlob {
    pub fn new(tar: &[u8], compression: Compression, docker_types: bool) -> LayerBlob {
        let data = match compression {
            Compression::None => tar.to_vec(),
            Compression::Gzip => gzip(tar),
            Compression::Zstd => zstd(tar),
        };
        let media_type = match (docker_types, compression) {
            (true, Compression::Gzip) => media::DOCKER_LAYER_GZIP,
            (true, Compression::None) => media::DOCKER_LAYER,
            (_, c) => c.oci_layer_media_type(),
        };
        LayerBlob {
            digest: Digest::of(&data),
            data,
            media_type: media_type.to_string(),
            diff_id: Digest::of(tar),
            uncompressed_size: tar.len() as u64,
        }
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.data.len() as u64,
        )
    }
}

fn busybox_gzip_layer() -> LayerBlob {
    static GZ: OnceLock<LayerBlob> = OnceLock::new();
    GZ.get_or_init(|| LayerBlob::new(&busybox_rootfs_tar(), Compression::Gzip, false))
        .clone()
}

/// The runtime part of an image config (Docker's `config` object).
#[derive(Clone, Debug, Default)]
pub struct ImageConfig {
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `80/tcp`
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
    /// Docker's `Healthcheck` object, written as given.
    pub healthcheck: Option<Value>,
}

#[derive(Clone, Debug)]
enum LayerSource {
    Busybox,
    Tar(Vec<u8>),
}

/// Builder of a deterministic test image.
#[derive(Clone, Debug)]
pub struct TestImage {
    tags: Vec<String>,
    layers: Vec<LayerSource>,
    config: ImageConfig,
    platform: Platform,
    compression: Compression,
    docker_types: bool,
}

/// Everything a registry push needs: the blobs and their descriptors.
#[derive(Clone, Debug)]
pub struct ImageParts {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub config_media_type: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub layers: Vec<LayerBlob>,
    /// The tags the builder was given.
    pub tags: Vec<String>,
    pub platform: Platform,
}

impl ImageParts {
    pub fn config_descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.config_media_type,
            self.config_digest.clone(),
            self.config.len() as u64,
        )
    }

    pub fn manifest_descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.manifest_media_type,
            self.manifest_digest.clone(),
            self.manifest.len() as u64,
        )
    }

    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// Every blob: config, manifest, layers.
    pub fn blobs(&self) -> Vec<(Digest, &[u8])> {
        let mut out = vec![
            (self.config_digest.clone(), self.config.as_slice()),
            (self.manifest_digest.clone(), self.manifest.as_slice()),
        ];
        out.extend(
            self.layers
                .iter()
                .map(|l| (l.digest.clone(), l.data.as_slice())),
        );
        out
    }
}

impl TestImage {
    /// The busybox rootfs layer, `Cmd ["sh"]`, the usual PATH, host platform, gzip layers,
    /// OCI media types.
    pub fn busybox() -> TestImage {
        TestImage {
            layers: vec![LayerSource::Busybox],
            ..TestImage::scratch()
        }
    }

    /// No layers at all (add some with [`extra_layer`](Self::extra_layer)).
    pub fn scratch() -> TestImage {
        TestImage {
            tags: Vec::new(),
            layers: Vec::new(),
            config: ImageConfig {
                cmd: Some(vec!["sh".into()]),
                env: vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ],
                ..ImageConfig::default()
            },
            platform: Platform::host(),
            compression: Compression::Gzip,
            docker_types: false,
        }
    }

    /// A name for the image (as written into archives; e.g. `busybox:latest` or
    /// `docker.io/library/busybox:latest`).
    pub fn tag(mut self, name: &str) -> Self {
        self.tags.push(name.to_string());
        self
    }

    /// Adds a layer from `(path, bytes, mode)` (see [`layer_tar_from_files`]).
    pub fn extra_layer(mut self, files: &[(&str, &[u8], u32)]) -> Self {
        self.layers
            .push(LayerSource::Tar(layer_tar_from_files(files)));
        self
    }

    /// Adds a layer from an uncompressed tar as given.
    pub fn layer_tar(mut self, tar: Vec<u8>) -> Self {
        self.layers.push(LayerSource::Tar(tar));
        self
    }

    pub fn config(mut self, config: ImageConfig) -> Self {
        self.config = config;
        self
    }

    pub fn cmd(mut self, cmd: &[&str]) -> Self {
        self.config.cmd = Some(cmd.iter().map(|s| s.to_string()).collect());
        self
    }

    pub fn entrypoint(mut self, entrypoint: &[&str]) -> Self {
        self.config.entrypoint = Some(entrypoint.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Adds `KEY=value` to the environment.
    pub fn env(mut self, kv: &str) -> Self {
        self.config.env.push(kv.to_string());
        self
    }

    pub fn workdir(mut self, dir: &str) -> Self {
        self.config.workdir = Some(dir.to_string());
        self
    }

    pub fn user(mut self, user: &str) -> Self {
        self.config.user = Some(user.to_string());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.config
            .labels
            .insert(key.to_string(), value.to_string());
        self
    }

    pub fn platform(mut self, os: &str, arch: &str) -> Self {
        self.platform = Platform {
            architecture: arch.to_string(),
            os: os.to_string(),
            ..Platform::default()
        };
        self
    }

    pub fn variant(mut self, variant: &str) -> Self {
        self.platform.variant = Some(variant.to_string());
        self
    }

    /// Layer compression for `parts()` and the OCI layout (default gzip).
    pub fn layer_compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    /// Docker v2 schema 2 media types instead of OCI ones.
    pub fn docker_media_types(mut self) -> Self {
        self.docker_types = true;
        self
    }

    fn layer_blobs(&self, compression: Compression) -> Vec<LayerBlob> {
        self.layers
            .iter()
            .map(|l| match (l, compression, self.docker_types) {
                (LayerSource::Busybox, Compression::Gzip, false) => busybox_gzip_layer(),
                (LayerSource::Busybox, c, d) => LayerBlob::new(&busybox_rootfs_tar(), c, d),
                (LayerSource::Tar(t), c, d) => LayerBlob::new(t, c, d),
            })
            .collect()
    }

    /// The config JSON, keys in a fixed order (Docker's field names).
    pub fn config_json(&self, diff_ids: &[Digest]) -> Vec<u8> {
        let c = &self.config;
        let mut rc = Map::new();
        if let Some(user) = &c.user {
            rc.insert("User".into(), json!(user));
        }
        if !c.exposed_ports.is_empty() {
            let ports: Map<String, Value> = c
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            rc.insert("ExposedPorts".into(), Value::Object(ports));
        }
        if !c.env.is_empty() {
            rc.insert("Env".into(), json!(c.env));
        }
        if let Some(ep) = &c.entrypoint {
            rc.insert("Entrypoint".into(), json!(ep));
        }
        if let Some(cmd) = &c.cmd {
            rc.insert("Cmd".into(), json!(cmd));
        }
        if let Some(hc) = &c.healthcheck {
            rc.insert("Healthcheck".into(), hc.clone());
        }
        if !c.volumes.is_empty() {
            let vols: Map<String, Value> =
                c.volumes.iter().map(|v| (v.clone(), json!({}))).collect();
            rc.insert("Volumes".into(), Value::Object(vols));
        }
        if let Some(wd) = &c.workdir {
            rc.insert("WorkingDir".into(), json!(wd));
        }
        if !c.labels.is_empty() {
            rc.insert("Labels".into(), json!(c.labels));
        }
        if let Some(sig) = &c.stop_signal {
            rc.insert("StopSignal".into(), json!(sig));
        }
        let history: Vec<Value> = (0..diff_ids.len())
            .map(|i| json!({"created": EPOCH, "created_by": format!("berth testkit: layer {i}")}))
            .collect();
        let mut top = Map::new();
        top.insert("architecture".into(), json!(self.platform.architecture));
        top.insert("config".into(), Value::Object(rc));
        top.insert("created".into(), json!(EPOCH));
        top.insert("history".into(), Value::Array(history));
        top.insert("os".into(), json!(self.platform.os));
        top.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        if let Some(v) = &self.platform.variant {
            top.insert("variant".into(), json!(v));
        }
        to_json(&Value::Object(top))
    }

    fn parts_with(&self, compression: Compression) -> ImageParts {
        let layers = self.layer_blobs(compression);
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let config = self.config_json(&diff_ids);
        let config_digest = Digest::of(&config);
        let (manifest_type, config_type) = if self.docker_types {
            (media::DOCKER_MANIFEST, media::DOCKER_CONFIG)
        } else {
            (media::OCI_MANIFEST, media::OCI_CONFIG)
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(manifest_type.to_string()),
            config: Descriptor::new(config_type, config_digest.clone(), config.len() as u64),
            layers: layers.iter().map(LayerBlob::descriptor).collect(),
            annotations: BTreeMap::new(),
        };
        let manifest = to_json(&manifest);
        ImageParts {
            manifest_digest: Digest::of(&manifest),
            manifest,
            manifest_media_type: manifest_type.to_string(),
            config,
            config_digest,
            config_media_type: config_type.to_string(),
            layers,
            tags: self.tags.clone(),
            platform: self.platform.clone(),
        }
    }

    /// Config, manifest and layer blobs, as a registry push needs them.
    pub fn parts(&self) -> ImageParts {
        self.parts_with(self.compression)
    }

    /// Writes an OCI image layout into `dir` (created if needed).
    pub fn oci_layout_dir(&self, dir: &Path) -> io::Result<ImageParts> {
        let parts = self.parts();
        for (path, data) in oci_layout_files(std::slice::from_ref(&parts)) {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, data)?;
        }
        Ok(parts)
    }

    /// An OCI image layout as a tar (what `docker save` ≥25 and `skopeo copy oci-archive:`
    /// write, minus Docker's manifest.json).
    pub fn oci_layout_tar(&self) -> Vec<u8> {
        oci_layout_tar_of(&[self])
    }

    /// A classic docker-archive (`docker save` before 25): `<config hex>.json`,
    /// `<layer id>/layer.tar` uncompressed, `manifest.json`, `repositories`.
    pub fn docker_archive_tar(&self) -> Vec<u8> {
        docker_archive_tar_of(&[self], false)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|e| panic!("testkit: cannot serialize JSON: {e}"))
}

fn oci_layout_files(images: &[ImageParts]) -> Vec<(String, Vec<u8>)> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests: Vec::new(),
        annotations: BTreeMap::new(),
    };
    for p in images {
        for (d, data) in p.blobs() {
            files.insert(format!("blobs/sha256/{}", d.hex()), data.to_vec());
        }
        let mut desc = p.manifest_descriptor();
        desc.platform = Some(p.platform.clone());
        if p.tags.is_empty() {
            index.manifests.push(desc.clone());
        }
        for tag in &p.tags {
            index.manifests.push(named_in_layout(&desc, tag));
        }
    }
    files.insert("index.json".into(), to_json(&index));
    files.insert(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    files.into_iter().collect()
}

fn archive_tar(files: Vec<(String, Vec<u8>)>) -> Vec<u8> {
    let mut entries: Vec<(String, TarItem)> = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for (path, data) in files {
        let mut p = path.as_str();
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            dirs.insert(format!("{p}/"));
        }
        entries.push((path, TarItem::File(data, 0o644)));
    }
    entries.extend(dirs.into_iter().map(|d| (d, TarItem::Dir(0o755))));
    tar_of(&entries)
}

/// An OCI layout tar holding several images.
pub fn oci_layout_tar_of(images: &[&TestImage]) -> Vec<u8> {
    let parts: Vec<ImageParts> = images.iter().map(|i| i.parts()).collect();
    archive_tar(oci_layout_files(&parts))
}

/// A classic docker-archive holding several images; `gzip_layers` stores the layer.tar
/// files gzip-compressed (which `docker load` also accepts).
pub fn docker_archive_tar_of(images: &[&TestImage], gzip_layers: bool) -> Vec<u8> {
    let compression = if gzip_layers {
        Compression::Gzip
    } else {
        Compression::None
    };
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let parts = image.parts_with(compression);
        let chain = imagespec::chain_ids(&parts.diff_ids());
        let mut layer_paths = Vec::new();
        for (i, (layer, id)) in parts.layers.iter().zip(&chain).enumerate() {
            let dir = id.hex();
            let parent = if i > 0 { chain[i - 1].hex() } else { "" };
            files.insert(format!("{dir}/VERSION"), b"1.0".to_vec());
            files.insert(
                format!("{dir}/json"),
                to_json(&json!({"id": dir, "parent": parent, "created": EPOCH})),
            );
            files.insert(format!("{dir}/layer.tar"), layer.data.clone());
            layer_paths.push(format!("{dir}/layer.tar"));
        }
        let config_path = format!("{}.json", parts.config_digest.hex());
        files.insert(config_path.clone(), parts.config.clone());
        manifest
            .push(json!({"Config": config_path, "RepoTags": parts.tags, "Layers": layer_paths}));
        if let Some(top) = chain.last() {
            for tag in &parts.tags {
                let (repo, t) = split_tag(tag);
                repositories
                    .entry(repo.to_string())
                    .or_default()
                    .insert(t.to_string(), top.hex().to_string());
            }
        }
    }
    files.insert("manifest.json".into(), to_json(&manifest));
    files.insert("repositories".into(), to_json(&repositories));
    archive_tar(files.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, u32, Option<String>, u64)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.entry_type(),
                    h.mode().unwrap(),
                    e.link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned()),
                    h.mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn busybox_rootfs_is_deterministic_and_complete() {
        let a = build_busybox_rootfs();
        let b = build_busybox_rootfs();
        assert_eq!(a, b);
        let es = entries(&a);
        let names: Vec<&str> = es.iter().map(|e| e.0.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let find = |n: &str| es.iter().find(|e| e.0 == n).unwrap().clone();
        assert_eq!(find("bin/busybox").2, 0o755);
        assert_eq!(find("tmp/").2, 0o1777);
        let sh = find("bin/sh");
        assert_eq!(sh.1, tar::EntryType::Symlink);
        assert_eq!(sh.3.as_deref(), Some("busybox"));
        assert!(es.iter().all(|e| e.4 == 0));
        assert!(names.contains(&"etc/passwd") && names.contains(&"usr/bin/"));
        assert!(es.len() > 100, "only {} entries", es.len());
    }

    #[test]
    fn gzip_layers_are_reproducible_and_decompress_to_their_diff_id() {
        let files: &[(&str, &[u8], u32)] = &[
            ("etc/", b"", 0o755),
            ("etc/motd", b"hi\n", 0o644),
            ("etc/link", b"motd", 0o120777),
        ];
        let a = gzip_layer_from_files(files);
        let b = gzip_layer_from_files(files);
        assert_eq!(a.data, b.data);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(a.data.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(Digest::of(&tar), a.diff_id);
        let es = entries(&tar);
        assert_eq!(es[1].1, tar::EntryType::Symlink);
        assert_eq!(es[1].3.as_deref(), Some("motd"));
    }

    #[test]
    fn image_outputs_are_stable_and_consistent() {
        let img = TestImage::busybox()
            .tag("busybox:latest")
            .extra_layer(&[("hello.txt", b"hello", 0o644)])
            .cmd(&["echo", "hi"]);
        let p = img.parts();
        assert_eq!(p.layers.len(), 2);
        assert_eq!(Digest::of(&p.manifest), p.manifest_digest);
        let m: Manifest = serde_json::from_slice(&p.manifest).unwrap();
        assert_eq!(m.config.digest, p.config_digest);
        let cfg: imagespec::ConfigSubset = serde_json::from_slice(&p.config).unwrap();
        assert_eq!(cfg.rootfs.diff_ids, p.diff_ids());
        assert_eq!(img.oci_layout_tar(), img.clone().oci_layout_tar());
        assert_eq!(img.docker_archive_tar(), img.docker_archive_tar());
        let names: Vec<String> = entries(&img.docker_archive_tar())
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert!(names.contains(&"manifest.json".to_string()));
        assert!(names.contains(&"repositories".to_string()));
        assert!(names.contains(&format!("{}.json", p.config_digest.hex())));
        let dir = tempfile::tempdir().unwrap();
        img.oci_layout_dir(dir.path()).unwrap();
        let index: Index =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index.manifests[0].digest, p.manifest_digest);
        assert_eq!(
            index.manifests[0].annotations[media::ANNOTATION_REF_NAME],
            "latest"
        );
        assert!(dir
            .path()
            .join("blobs/sha256")
            .join(p.layers[0].digest.hex())
            .is_file());
    }
}
