//! The shim end to end, as root: real busybox containers started through
//! `launch(berth, bundle)`, their logs, stdin over attach.sock, exit records, and the shim's
//! independence from whoever launched it.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth::engine::image::registry::RegistryConfig;
use berth::engine::image::service::ImageService;
use berth::engine::image::testkit::TestImage;
use berth::engine::runtime::spec::*;
use berth::engine::shim::logfile::LogStream;
use berth::engine::shim::logread::{read_all, LogEntry, ReadOptions};
use berth::engine::shim::{launch, ShimError};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A root and run root with busybox loaded; dropped after its containers.
struct Fixture {
    root: tempfile::TempDir,
    run_root: tempfile::TempDir,
    lower: Vec<PathBuf>,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let run_root = tempfile::tempdir().unwrap();
        let images = ImageService::open(root.path(), RegistryConfig::default()).unwrap();
        let tar = TestImage::busybox().docker_archive_tar();
        let record = images.load(&tar[..]).unwrap().remove(0);
        let lower = images.lower_dirs(&record);
        Fixture {
            root,
            run_root,
            lower,
        }
    }

    fn spec(&self, args: &[&str]) -> ContainerSpec {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let id = format!(
            "{:08x}{:08x}{:048x}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            nanos
        );
        let bundle = self.run_root.path().join("containers").join(&id);
        let state_dir = self.root.path().join("containers").join(&id);
        std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
        std::fs::create_dir_all(state_dir.join("fs/upper")).unwrap();
        std::fs::create_dir_all(state_dir.join("fs/work")).unwrap();
        ContainerSpec {
            id: id.clone(),
            bundle,
            state_dir: state_dir.clone(),
            rootfs: RootfsSpec {
                lower: self.lower.clone(),
                upper: state_dir.join("fs/upper"),
                work: state_dir.join("fs/work"),
                read_only: false,
            },
            process: ProcessSpec {
                args: args.iter().map(|s| s.to_string()).collect(),
                env: vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                    format!("HOSTNAME={}", &id[..12]),
                ],
                cwd: "/".into(),
                user: String::new(),
                additional_groups: vec![],
                tty: false,
                open_stdin: false,
                stdin_once: false,
                capabilities: berth::engine::runtime::security::default_capabilities(),
                no_new_privileges: false,
                seccomp: SeccompSpec::Default,
                rlimits: vec![],
                oom_score_adj: None,
            },
            hostname: id[..12].to_string(),
            domainname: String::new(),
            namespaces: NamespacesSpec {
                network: NetworkNamespace::Host,
                ipc_host: false,
                pid_host: false,
                uts_host: false,
            },
            mounts: vec![],
            etc_hosts: None,
            etc_hostname: None,
            etc_resolv_conf: None,
            shm_size: 64 << 20,
            sysctls: BTreeMap::new(),
            cgroup: CgroupSpec {
                path: format!("berth/{id}"),
                ..CgroupSpec::default()
            },
            init: false,
            privileged: false,
            masked_paths: vec![],
            readonly_paths: vec![],
            log: LogSpec {
                driver: "json-file".into(),
                path: state_dir.join(format!("{id}-json.log")),
                max_size: None,
                max_file: 1,
            },
        }
    }
}

/// A launched container; dropping it kills whatever is left (container, then shim) and its
/// cgroups, even when the test failed.
struct Running {
    spec: ContainerSpec,
    state: Option<ShimState>,
}

impl Running {
    /// Writes the spec and launches; the guard is returned whatever happened.
    fn launch(spec: ContainerSpec) -> (Running, Result<(), ShimError>) {
        std::fs::write(
            spec.bundle.join("spec.json"),
            serde_json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        let mut r = Running { spec, state: None };
        let res = launch(Path::new(BERTH), &r.spec.bundle).map(|state| r.state = Some(state));
        (r, res)
    }

    fn start(spec: ContainerSpec) -> Running {
        match Running::launch(spec) {
            (r, Ok(())) => r,
            (_, Err(e)) => panic!("launch failed: {e}"),
        }
    }

    fn state(&self) -> &ShimState {
        self.state.as_ref().unwrap()
    }

    fn wait_exit(&self) -> ExitState {
        let path = self.spec.state_dir.join("exit.json");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(b) = std::fs::read(&path) {
                return serde_json::from_slice(&b).unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no exit.json after 20 s");
    }

    /// The shim process is gone (it exits right after writing exit.json).
    fn wait_shim_gone(&self) {
        let pid = self.state().shim_pid;
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid, self.state().shim_start_ticks) {
            assert!(Instant::now() < deadline, "shim {pid} still running");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn logs(&self) -> Vec<LogEntry> {
        read_all(&self.spec.log.path, &ReadOptions::default()).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = &self.state {
            if alive(s.init_pid, s.init_start_ticks) {
                unsafe { libc::kill(s.init_pid, libc::SIGKILL) };
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive(s.shim_pid, s.shim_start_ticks) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if alive(s.shim_pid, s.shim_start_ticks) {
                unsafe { libc::kill(s.shim_pid, libc::SIGKILL) };
            }
        }
        for dir in cgroup_dirs(&self.spec) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // Zombies count as gone.
    if rest.split_whitespace().next()? == "Z" {
        return None;
    }
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn alive(pid: i32, ticks: u64) -> bool {
    start_ticks(pid) == Some(ticks)
}

fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn cgroup_dirs(spec: &ContainerSpec) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return vec![];
    };
    entries
        .flatten()
        .map(|e| e.path().join(&spec.cgroup.path))
        .chain([Path::new("/sys/fs/cgroup").join(&spec.cgroup.path)])
        .filter(|p| p.exists())
        .collect()
}

fn text(entries: &[LogEntry]) -> Vec<(LogStream, String)> {
    entries
        .iter()
        .map(|e| (e.stream, String::from_utf8_lossy(&e.log).into_owned()))
        .collect()
}

#[test]
fn exit_code_and_both_streams_in_order() {
    let fx = Fixture::new();
    let c = Running::start(fx.spec(&[
        "sh",
        "-c",
        "echo out1; sleep 0.05; echo err1 >&2; sleep 0.05; echo out2; sleep 0.05; \
         printf 'no newline' >&2; exit 3",
    ]));
    let exit = c.wait_exit();
    assert_eq!(exit.exit_code, 3);
    assert!(!exit.oom_killed);
    assert_eq!(exit.error, None);
    assert_eq!(exit.started_at, c.state().started_at);
    assert!(exit.finished_at >= exit.started_at, "{exit:?}");
    assert_eq!(
        text(&c.logs()),
        [
            (LogStream::Stdout, "out1\n".to_string()),
            (LogStream::Stderr, "err1\n".to_string()),
            (LogStream::Stdout, "out2\n".to_string()),
            (LogStream::Stderr, "no newline".to_string()),
        ]
    );
    c.wait_shim_gone();
    assert!(!c.spec.bundle.join("attach.sock").exists());
    assert!(cgroup_dirs(&c.spec).is_empty());
}

#[test]
fn shim_outlives_its_launcher_and_forwards_sigterm() {
    let fx = Fixture::new();
    let c = Running::start(fx.spec(&[
        "sh",
        "-c",
        "trap 'echo bye; exit 7' TERM; echo ready; while true; do sleep 0.05; done",
    ]));
    let s = c.state().clone();
    assert!(alive(s.shim_pid, s.shim_start_ticks));
    assert!(alive(s.init_pid, s.init_start_ticks));
    // The launching process's child exited; the monitor is nobody's child here.
    assert_ne!(ppid(s.shim_pid), std::process::id() as i32);
    assert_eq!(ppid(s.init_pid), s.shim_pid);
    let on_disk: ShimState =
        serde_json::from_slice(&std::fs::read(c.spec.bundle.join("shim.json")).unwrap()).unwrap();
    assert_eq!(on_disk, s);
    assert!(c.spec.bundle.join("attach.sock").exists());
    // Wait for the trap to be set before signalling.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.logs().is_empty() {
        assert!(Instant::now() < deadline, "no output");
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe { libc::kill(s.shim_pid, libc::SIGTERM) };
    let exit = c.wait_exit();
    assert_eq!(exit.exit_code, 7);
    assert_eq!(
        text(&c.logs()),
        [
            (LogStream::Stdout, "ready\n".to_string()),
            (LogStream::Stdout, "bye\n".to_string())
        ]
    );
    c.wait_shim_gone();
}

#[test]
fn stdin_through_attach_socket_reaches_cat() {
    let fx = Fixture::new();
    let mut spec = fx.spec(&["cat"]);
    spec.process.open_stdin = true;
    spec.process.stdin_once = true;
    let c = Running::start(spec);
    let mut sock = UnixStream::connect(c.spec.bundle.join("attach.sock")).unwrap();
    sock.write_all(b"hello\n").unwrap();
    // A big write exercises back-pressure (more than a pipe holds).
    let big = "z".repeat(200_000) + "\n";
    sock.write_all(big.as_bytes()).unwrap();
    sock.write_all(b"world").unwrap();
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    let exit = c.wait_exit();
    assert_eq!(exit.exit_code, 0);
    let logs = c.logs();
    let all: Vec<u8> = logs.iter().flat_map(|e| e.log.clone()).collect();
    assert_eq!(
        String::from_utf8(all).unwrap(),
        format!("hello\n{big}world")
    );
    assert!(logs.iter().all(|e| e.stream == LogStream::Stdout));
    assert_eq!(logs[0].log, b"hello\n");
    // hello, 200 001 bytes as 12 pieces of 16 KiB and the rest with its newline, world.
    assert_eq!(logs.len(), 1 + 12 + 1 + 1);
    assert_eq!(logs[1].log.len(), 16 * 1024);
}

#[test]
fn stdin_stays_open_across_clients_without_stdin_once() {
    let fx = Fixture::new();
    let mut spec = fx.spec(&["cat"]);
    spec.process.open_stdin = true;
    let c = Running::start(spec);
    for word in ["first\n", "second\n"] {
        let mut sock = UnixStream::connect(c.spec.bundle.join("attach.sock")).unwrap();
        sock.write_all(word.as_bytes()).unwrap();
        // The client's EOF detaches it; cat keeps running.
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.logs().len() < 2 {
        assert!(Instant::now() < deadline, "logs: {:?}", text(&c.logs()));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(alive(c.state().init_pid, c.state().init_start_ticks));
    unsafe { libc::kill(c.state().init_pid, libc::SIGKILL) };
    assert_eq!(c.wait_exit().exit_code, 137);
    assert_eq!(
        text(&c.logs()),
        [
            (LogStream::Stdout, "first\n".to_string()),
            (LogStream::Stdout, "second\n".to_string())
        ]
    );
}

#[test]
fn an_oom_kill_is_recorded() {
    let fx = Fixture::new();
    // dd's 64 MiB buffer cannot fit in 16 MiB.
    let mut spec = fx.spec(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
    spec.cgroup.memory = Some(16 << 20);
    spec.cgroup.memory_swap = Some(16 << 20);
    let c = Running::start(spec);
    let exit = c.wait_exit();
    assert_eq!(exit.exit_code, 137, "{exit:?}");
    assert!(exit.oom_killed, "{exit:?}");
    c.wait_shim_gone();
    assert!(cgroup_dirs(&c.spec).is_empty());
}

#[test]
fn tty_output_is_all_stdout() {
    let fx = Fixture::new();
    let mut spec = fx.spec(&["sh", "-c", "echo out; echo err >&2; stty size; exit 2"]);
    spec.process.tty = true;
    let c = Running::start(spec);
    let exit = c.wait_exit();
    assert_eq!(exit.exit_code, 2);
    assert_eq!(
        text(&c.logs()),
        [
            (LogStream::Stdout, "out\r\n".to_string()),
            (LogStream::Stdout, "err\r\n".to_string()),
            (LogStream::Stdout, "24 80\r\n".to_string()),
        ]
    );
}

#[test]
fn sigkill_of_the_container_is_137() {
    let fx = Fixture::new();
    let c = Running::start(fx.spec(&["sleep", "30"]));
    unsafe { libc::kill(c.state().init_pid, libc::SIGKILL) };
    let exit = c.wait_exit();
    assert_eq!(exit.exit_code, 137);
    c.wait_shim_gone();
}

#[test]
fn bad_executable_fails_with_127_and_leaves_nothing() {
    let fx = Fixture::new();
    let spec = fx.spec(&["/no/such/program"]);
    let (c, res) = Running::launch(spec);
    let Err(err) = res else {
        panic!("a missing executable started");
    };
    match err {
        ShimError::Start { exit_code, message } => {
            assert_eq!(exit_code, 127, "{message}");
            assert!(message.contains("/no/such/program"), "{message}");
        }
        e => panic!("unexpected error: {e}"),
    }
    let exit: ExitState =
        serde_json::from_slice(&std::fs::read(c.spec.state_dir.join("exit.json")).unwrap())
            .unwrap();
    assert_eq!(exit.exit_code, 127);
    assert!(exit.error.is_some());
    assert!(!c.spec.bundle.join("attach.sock").exists());
    assert!(!c.spec.bundle.join("shim.json").exists());
    assert!(cgroup_dirs(&c.spec).is_empty());
    // No process still works on this bundle.
    let bundle = c.spec.bundle.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let holders: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&bundle))
                    .unwrap_or(false)
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if holders.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left: {holders:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_shim_dying_before_its_report_is_a_protocol_error() {
    let dir = tempfile::tempdir().unwrap();
    match launch(Path::new(BERTH), dir.path()) {
        Err(ShimError::Protocol { message, .. }) => {
            assert!(message.contains("spec.json"), "{message}")
        }
        other => panic!("unexpected: {other:?}"),
    }
    match launch(Path::new("/no/such/berth"), dir.path()) {
        Err(ShimError::Protocol { message, .. }) => {
            assert!(message.contains("cannot run"), "{message}")
        }
        other => panic!("unexpected: {other:?}"),
    }
}

#[test]
fn many_lines_rotate_without_loss() {
    let fx = Fixture::new();
    let mut spec = fx.spec(&["seq", "1", "30000"]);
    spec.log.max_size = Some(256 * 1024);
    spec.log.max_file = 10;
    let c = Running::start(spec);
    assert_eq!(c.wait_exit().exit_code, 0);
    let logs = c.logs();
    let nums: Vec<u32> = logs
        .iter()
        .map(|e| String::from_utf8_lossy(&e.log).trim().parse().unwrap())
        .collect();
    assert_eq!(nums, (1..=30000).collect::<Vec<u32>>());
    let rotated = berth::engine::shim::logfile::rotated_path(&c.spec.log.path, 1);
    assert!(std::fs::metadata(&rotated).unwrap().len() <= 256 * 1024);
}

#[test]
fn a_running_shim_is_small() {
    let fx = Fixture::new();
    let c = Running::start(fx.spec(&["sleep", "30"]));
    let pid = c.state().shim_pid;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let field = |name: &str| -> u64 {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (pss, anon, huge) = (field("Pss:"), field("Pss_Anon:"), field("AnonHugePages:"));
    eprintln!("shim {pid}: Pss {pss} kB, of which anonymous {anon} kB");
    // The private part is what every shim pays (file pages are shared by all shims); an
    // unoptimized build's relocated data alone is ~1 MB. No huge pages from the allocator.
    assert_eq!(huge, 0, "shim uses transparent huge pages");
    assert!(anon < 3 * 1024, "shim private memory {anon} kB");
}

/// `cargo test --release --test shim -- --ignored --nocapture`: the PSS of 30 idle shims
/// running at once (file pages are shared among them, as in production).
#[test]
#[ignore]
fn pss_of_thirty_shims() {
    let fx = Fixture::new();
    let running: Vec<Running> = (0..30)
        .map(|_| Running::start(fx.spec(&["sleep", "60"])))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (mut pss, mut anon) = (0u64, 0u64);
    for c in &running {
        let rollup =
            std::fs::read_to_string(format!("/proc/{}/smaps_rollup", c.state().shim_pid)).unwrap();
        let field = |name: &str| -> u64 {
            rollup
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap()
                .parse()
                .unwrap()
        };
        pss += field("Pss:");
        anon += field("Pss_Anon:");
    }
    let smaps =
        std::fs::read_to_string(format!("/proc/{}/smaps", running[0].state().shim_pid)).unwrap();
    let mut mapping = String::new();
    for line in smaps.lines() {
        if line.contains('-') && !line.ends_with("kB") {
            mapping = line.to_string();
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            let kb: u64 = kb.trim().trim_end_matches(" kB").parse().unwrap();
            if kb >= 16 {
                eprintln!("  {kb:>5} kB anonymous in {mapping}");
            }
        }
    }
    eprintln!(
        "30 shims: Pss {pss} kB in total, {} kB each ({} kB anonymous each)",
        pss / 30,
        anon / 30
    );
}
