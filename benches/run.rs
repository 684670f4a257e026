//! Container benchmarks (issue 4), through the daemon over its socket:
//! 1. run-to-exit latency of `true` in a cached busybox image, no network (create, start,
//!    wait, remove — what `docker run --rm` does) against `crun run` of an equivalent bundle
//!    in the same run, alternating; `docker run --rm` too against a private dockerd when
//!    Debian's docker.io is installed;
//! 2. resident memory (PSS) of the daemon plus 30 running shims, right after starting them
//!    and once the daemon has been idle long enough to trim (see `berth::trim`).
//!
//! Run: `cargo bench --bench run` (as root). crun refuses this hybrid-cgroup machine unless
//! a v1 hugetlb hierarchy is mounted; the bench mounts one at /sys/fs/cgroup/hugetlb if
//! missing and says so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth::api::client::Client;
use berth::engine::container::{CreateContainer, WaitCondition};
use berth::engine::image::registry::RegistryConfig;
use berth::engine::image::service::ImageService;
use berth::engine::image::testkit::{busybox_rootfs_tar, TestImage};
use bollard_stubs::models::{ContainerConfig, HostConfig};

const RUNS: usize = 30;
const SHIMS: usize = 30;
const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn main() {
    if let Err(e) = run() {
        eprintln!("run bench: {e}");
        std::process::exit(1);
    }
}

struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn run() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().join("root");
    let run_root = dir.path().join("run");
    let socket = run_root.join("berth.sock");
    let images = ImageService::open(&root, RegistryConfig::default()).map_err(|e| e.to_string())?;
    images
        .load(
            &TestImage::busybox()
                .tag("busybox:latest")
                .docker_archive_tar()[..],
        )
        .map_err(|e| e.to_string())?;
    drop(images);

    let child = Command::new(BERTH)
        .arg("daemon")
        .arg("--root")
        .arg(&root)
        .arg("--run-root")
        .arg(&run_root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the daemon: {e}"))?;
    let _daemon = Daemon { child };
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let client = Client::new(&socket);
    rt.block_on(wait_for(&client))?;

    let bundle = crun_bundle(dir.path())?;
    let docker = Dockerd::start(dir.path())?;

    // Warm both paths (page cache, first-use costs).
    for _ in 0..3 {
        rt.block_on(berth_true(&client))?;
        crun_true(&bundle)?;
    }
    let mut berth = Vec::with_capacity(RUNS);
    let mut crun = Vec::with_capacity(RUNS);
    let mut dock = Vec::new();
    for _ in 0..RUNS {
        berth.push(rt.block_on(berth_true(&client))?);
        crun.push(crun_true(&bundle)?);
        if let Some(d) = &docker {
            dock.push(d.run_true()?);
        }
    }
    let b = median(&mut berth);
    let c = median(&mut crun);
    println!("run-to-exit of `true` (median of {RUNS}, alternating):");
    println!(
        "  berth (daemon API: create+start+wait+remove)  {:>8.2} ms",
        ms(b)
    );
    println!(
        "  crun run (same rootfs, new netns)             {:>8.2} ms",
        ms(c)
    );
    println!(
        "  ratio berth / crun                             {:>8.2}  (target ≤ 1.5)",
        ms(b) / ms(c)
    );
    if docker.is_some() {
        let d = median(&mut dock);
        println!(
            "  docker run --rm                                {:>8.2} ms",
            ms(d)
        );
        println!(
            "  ratio docker / berth                           {:>8.2}  (target ≥ 10)",
            ms(d) / ms(b)
        );
    } else {
        println!(
            "  docker run --rm: no dockerd installed (apt-get install docker.io), not measured"
        );
    }

    let ids = rt.block_on(start_sleepers(&client))?;
    // Right after the burst of API calls, then once the daemon has been idle long enough
    // to give back what the burst mapped (api::server's idle trim, 5–10 s).
    std::thread::sleep(Duration::from_millis(300));
    print_memory("right after starting them", &run_root);
    std::thread::sleep(Duration::from_secs(11));
    print_memory("after 11 s idle", &run_root);
    for id in &ids {
        let _ = rt.block_on(client.remove(id, true, false));
    }
    Ok(())
}

async fn wait_for(client: &Client) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.ping().await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("daemon: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn body(cmd: &[&str]) -> CreateContainer {
    CreateContainer {
        config: ContainerConfig {
            image: Some("busybox".into()),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            ..ContainerConfig::default()
        },
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..HostConfig::default()
        }),
        networking_config: None,
    }
}

async fn berth_true(client: &Client) -> Result<Duration, String> {
    let t = Instant::now();
    let created = client
        .create_container(None, &body(&["true"]))
        .await
        .map_err(|e| e.to_string())?;
    client.start(&created.id).await.map_err(|e| e.to_string())?;
    let w = client
        .wait(&created.id, WaitCondition::NotRunning)
        .await
        .map_err(|e| e.to_string())?;
    client
        .remove(&created.id, false, false)
        .await
        .map_err(|e| e.to_string())?;
    let took = t.elapsed();
    if w.status_code != 0 {
        return Err(format!("true exited {}", w.status_code));
    }
    Ok(took)
}

fn crun_bundle(dir: &Path) -> Result<PathBuf, String> {
    let hugetlb = Path::new("/sys/fs/cgroup/hugetlb");
    if !hugetlb.join("tasks").exists() {
        eprintln!(
            "mounting a v1 hugetlb hierarchy at {} for crun",
            hugetlb.display()
        );
        std::fs::create_dir_all(hugetlb).map_err(|e| e.to_string())?;
        let ok = Command::new("mount")
            .args(["-t", "cgroup", "-o", "hugetlb", "hugetlb"])
            .arg(hugetlb)
            .status()
            .map_err(|e| e.to_string())?;
        if !ok.success() {
            return Err("cannot mount the hugetlb hierarchy crun needs".into());
        }
    }
    let bundle = dir.join("crun-bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(|e| e.to_string())?;
    tar::Archive::new(&busybox_rootfs_tar()[..])
        .unpack(&rootfs)
        .map_err(|e| format!("unpacking busybox for crun: {e}"))?;
    let ok = Command::new("crun")
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .map_err(|e| format!("crun spec: {e}"))?;
    if !ok.success() {
        return Err("crun spec failed".into());
    }
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["true"]);
    std::fs::write(&path, spec.to_string()).map_err(|e| e.to_string())?;
    Ok(bundle)
}

fn crun_true(bundle: &Path) -> Result<Duration, String> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let id = format!(
        "berth-bench-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let t = Instant::now();
    let st = Command::new("crun")
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("crun: {e}"))?;
    let took = t.elapsed();
    if !st.success() {
        return Err(format!("crun run exited {st}"));
    }
    Ok(took)
}

/// A private dockerd (Debian's docker.io) for the comparison: its own data root and socket,
/// no bridge, no iptables, so it touches nothing of the host's network.
struct Dockerd {
    child: Child,
    host: String,
}

impl Dockerd {
    fn start(dir: &Path) -> Result<Option<Dockerd>, String> {
        if Command::new("dockerd").arg("--version").output().is_err() {
            return Ok(None);
        }
        let d = dir.join("dockerd");
        let host = format!("unix://{}", d.join("docker.sock").display());
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args(["-H", &host])
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .args(["--ip-masq=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting dockerd: {e}"))?;
        let dockerd = Dockerd { child, host };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dockerd.docker(&["version"]).is_ok_and(|s| s.success()) {
            if Instant::now() > deadline {
                return Err("dockerd did not answer within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let tar = d.join("busybox.tar");
        std::fs::write(
            &tar,
            TestImage::busybox()
                .tag("busybox:latest")
                .docker_archive_tar(),
        )
        .map_err(|e| e.to_string())?;
        let loaded = dockerd
            .docker(&["load", "-q", "-i", &tar.to_string_lossy()])
            .map_err(|e| e.to_string())?;
        if !loaded.success() {
            return Err("docker load failed".into());
        }
        // First-run costs (layer mounts, containerd shim binaries) out of the figures.
        for _ in 0..2 {
            dockerd.run_true()?;
        }
        Ok(Some(dockerd))
    }

    fn docker(&self, args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
        Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    }

    fn run_true(&self) -> Result<Duration, String> {
        let t = Instant::now();
        let st = self
            .docker(&["run", "--rm", "--network", "none", "busybox", "true"])
            .map_err(|e| format!("docker: {e}"))?;
        if !st.success() {
            return Err(format!("docker run exited {st}"));
        }
        Ok(t.elapsed())
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts SHIMS sleeping containers.
async fn start_sleepers(client: &Client) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    for _ in 0..SHIMS {
        let c = client
            .create_container(None, &body(&["sleep", "1000"]))
            .await
            .map_err(|e| e.to_string())?;
        client.start(&c.id).await.map_err(|e| e.to_string())?;
        ids.push(c.id);
    }
    Ok(ids)
}

/// Sums PSS of the daemon and every shim of this run root.
fn print_memory(when: &str, run_root: &Path) {
    let run_root = run_root.to_string_lossy().into_owned();
    let mut daemon = 0;
    let mut shims = 0;
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !cmd.contains(&run_root) {
            continue;
        }
        let pss = pss_kib(&pid);
        if cmd.contains(" daemon ") {
            daemon += pss;
        } else if cmd.contains(" shim start ") {
            shims += pss;
            n += 1;
        }
    }
    println!("resident memory with {n} running containers, {when} (PSS):");
    println!("  daemon {daemon:>8} KiB");
    println!(
        "  shims  {:>8} KiB in all, {:.0} KiB each",
        shims,
        shims as f64 / n.max(1) as f64
    );
    println!(
        "  total  {:>8.2} MiB  (target ≤ 10 MB)",
        (daemon + shims) as f64 / 1024.0
    );
}

fn pss_kib(pid: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
