//! Shared by the API tests: a `berth daemon` child process on tempdir roots, stopped and
//! cleaned up (containers removed through the API, then anything left killed) on drop.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth::api::Client;
use berth::engine::container::{CreateContainer, ListOptions};
use berth::engine::image::registry::RegistryConfig;
use berth::engine::image::service::ImageService;
use berth::engine::image::testkit::TestImage;

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Fresh roots (short paths: unix socket paths are limited to 108 bytes), no daemon yet.
    pub fn new() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("bapi")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path().join("root");
        let run_root = dir.path().join("r");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&run_root).unwrap();
        let socket = run_root.join("berth.sock");
        Daemon {
            dir,
            root,
            run_root,
            socket,
            child: None,
        }
    }

    /// Roots with busybox loaded and a daemon serving them.
    pub fn start() -> Daemon {
        let mut d = Daemon::new();
        d.load_busybox();
        d.spawn();
        d
    }

    pub fn load_busybox(&self) -> String {
        let tar = TestImage::busybox()
            .tag("busybox:latest")
            .docker_archive_tar();
        let svc = ImageService::open(&self.root, RegistryConfig::default()).unwrap();
        let loaded = svc.load(&tar[..]).unwrap();
        loaded[0].id.to_string()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `berth --root R --run-root RR ARGS`.
    pub fn berth(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--run-root")
            .arg(&self.run_root)
            .args(args)
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_RUN_ROOT")
            .env_remove("BERTH_HOST")
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        cmd
    }

    /// Starts `berth daemon` and waits until it answers.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = self
            .berth(&["daemon"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = self.client();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        loop {
            if rt.block_on(client.ping()).is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("the daemon exited ({status}):\n{}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not answer:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.socket)
    }

    pub fn pid(&self) -> Option<i32> {
        if let Some(c) = &self.child {
            return Some(c.id() as i32);
        }
        std::fs::read_to_string(self.run_root.join("daemon.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// SIGKILL: the daemon gets no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(pid) = self.pid() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (up to 10 s, then SIGKILL).
    pub fn stop(&mut self) {
        let Some(pid) = self.pid() else {
            return;
        };
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let gone = match self.child.as_mut() {
                Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                None => !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
            };
            if gone {
                break;
            }
            if Instant::now() > deadline {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// A raw HTTP/1.1 request on the socket; returns the whole answer (head and body).
    pub fn raw(&self, request: &str) -> String {
        let mut s = StdUnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Removes every container through the API (best effort, bounded).
    fn remove_all_containers(&self) {
        let client = self.client();
        let work = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let all = ListOptions {
                    all: true,
                    ..ListOptions::default()
                };
                let fut = async {
                    if let Ok(list) = client.list(&all).await {
                        for c in list {
                            if let Some(id) = c.id {
                                let _ = client.remove(&id, true, true).await;
                            }
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(30), fut).await;
            });
        });
        let _ = work.join();
    }

    /// Whatever the engine left: processes of berth's cgroups for our containers, shims
    /// whose command line names our run root, mounts under our tempdir.
    fn sweep(&self) {
        let ids: Vec<String> = std::fs::read_dir(self.root.join("containers"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let hierarchies: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        let needle = self.run_root.to_string_lossy().into_owned();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.filter_map(|e| e.ok()) {
                let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&needle) {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        for id in &ids {
            for h in &hierarchies {
                let cg = h.join("berth").join(id);
                if let Ok(pids) = std::fs::read_to_string(cg.join("cgroup.procs")) {
                    for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        for id in &ids {
            for h in &hierarchies {
                let _ = std::fs::remove_dir(h.join("berth").join(id));
            }
        }
        let prefix = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for m in points {
            if let Ok(c) = std::ffi::CString::new(m) {
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.pid().is_some() {
            self.remove_all_containers();
        }
        self.stop();
        self.sweep();
    }
}

/// A create body: busybox running `cmd`, with labels for filtering.
pub fn create_body(cmd: &[&str]) -> CreateContainer {
    let mut body = CreateContainer::default();
    body.config.image = Some("busybox".into());
    body.config.cmd = Some(cmd.iter().map(|s| s.to_string()).collect());
    body
}

/// A unique container name for this process.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}
