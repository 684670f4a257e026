//! Pull benchmark (issue 3): a 5-layer, ~300 MB (uncompressed) gzip image on a real
//! registry (Debian's docker-registry on loopback); `berth pull` into a fresh root against
//! `skopeo copy` + `umoci unpack` of the same image, alternating, several runs each.
//! Run: `cargo bench --bench pull` (needs docker-registry; skopeo and umoci for the peer).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth::engine::image::imagespec::Descriptor;
use berth::engine::image::reference::Reference;
use berth::engine::image::registry::testsupport::TestRegistry;
use berth::engine::image::registry::{BlobBody, RegistryClient, RegistryConfig};
use berth::engine::image::testkit::TestImage;

const LAYERS: usize = 5;
const LAYER_BYTES: usize = 60 << 20;
const RUNS: usize = 5;

fn main() {
    if let Err(e) = run() {
        eprintln!("pull bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let registry = TestRegistry::start().map_err(|e| format!("registry: {e}"))?;
    let mut image = TestImage::scratch().tag("bench:1");
    for i in 0..LAYERS {
        let files = layer_files(i);
        let refs: Vec<(&str, &[u8], u32)> = files
            .iter()
            .map(|(p, d)| (p.as_str(), d.as_slice(), 0o644))
            .collect();
        image = image.extra_layer(&refs);
    }
    let parts = image.parts();
    let compressed: usize = parts.layers.iter().map(|l| l.data.len()).sum();
    let name = format!("{}/bench/big:1", registry.host());
    let reference = Reference::parse(&name).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = RegistryClient::new(RegistryConfig::default()).map_err(|e| e.to_string())?;
        for l in &parts.layers {
            client
                .push_blob(
                    &reference,
                    &l.descriptor(),
                    BlobBody::Bytes(l.data.clone().into()),
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        let cfg: Descriptor = parts.config_descriptor();
        client
            .push_blob(
                &reference,
                &cfg,
                BlobBody::Bytes(parts.config.clone().into()),
            )
            .await
            .map_err(|e| e.to_string())?;
        client
            .push_manifest(&reference, &parts.manifest_media_type, &parts.manifest)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    })?;
    println!(
        "image: {LAYERS} layers, {} MB uncompressed, {} MB gzip",
        (LAYERS * LAYER_BYTES) >> 20,
        compressed >> 20
    );

    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let peers = which("skopeo") && which("umoci");
    let mut berth_times = Vec::new();
    let mut peer_times = Vec::new();
    for run in 0..RUNS {
        let root = scratch.path().join(format!("berth-{run}"));
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(&root)
            .args(["pull", "-q", &name])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        berth_times.push(t.elapsed());
        let _ = std::fs::remove_dir_all(&root);

        if peers {
            let layout = scratch.path().join(format!("oci-{run}"));
            let bundle = scratch.path().join(format!("bundle-{run}"));
            let t = Instant::now();
            sh(Command::new("skopeo").args([
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                &format!("docker://{name}"),
                &format!("oci:{}:1", layout.display()),
            ]))?;
            sh(Command::new("umoci").args([
                "unpack",
                "--image",
                &format!("{}:1", layout.display()),
                &bundle.display().to_string(),
            ]))?;
            peer_times.push(t.elapsed());
            let _ = std::fs::remove_dir_all(&layout);
            let _ = std::fs::remove_dir_all(&bundle);
        }
    }
    let b = median(&mut berth_times);
    println!(
        "berth pull:           median {:.2} s over {RUNS} runs",
        b.as_secs_f64()
    );
    if peers {
        let p = median(&mut peer_times);
        println!(
            "skopeo copy + umoci:  median {:.2} s over {RUNS} runs",
            p.as_secs_f64()
        );
        println!("ratio berth/peer: {:.2}", b.as_secs_f64() / p.as_secs_f64());
    } else {
        println!("skopeo/umoci not installed: no peer figure");
    }
    Ok(())
}

/// A layer of many small files and a few large ones; half random, half text-like, so
/// gzip has real work both ways.
fn layer_files(layer: usize) -> Vec<(String, Vec<u8>)> {
    let mut seed = 0x2545_F491_4F6C_DD1D_u64 ^ (layer as u64 + 1);
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut files = Vec::new();
    let mut total = 0;
    let mut i = 0;
    while total < LAYER_BYTES {
        let size = if i % 50 == 0 {
            4 << 20
        } else {
            4096 + (next() % 60_000) as usize
        };
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            let x = next();
            if i % 2 == 0 {
                data.extend_from_slice(&x.to_le_bytes());
            } else {
                data.extend_from_slice(format!("line {} value {}\n", x % 1000, x % 97).as_bytes());
            }
        }
        data.truncate(size);
        total += size;
        files.push((format!("l{layer}/d{}/f{i}", i % 64), data));
        i += 1;
    }
    files
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| Path::new(&d).join(bin).is_file()))
        .unwrap_or(false)
}

fn sh(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
