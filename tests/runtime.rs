//! The runtime for real (as root): containers run through `berth shim run` (a
//! single-threaded re-exec, never a fork of this multi-threaded harness) from a busybox image
//! loaded into a per-test root. Every test cleans up its cgroup and processes, even on
//! failure, and ends by checking nothing is left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth::engine::image::registry::RegistryConfig;
use berth::engine::image::service::ImageService;
use berth::engine::image::testkit::TestImage;
use berth::engine::runtime::cgroup::Cgroups;
use berth::engine::runtime::rootfs::{DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS};
use berth::engine::runtime::spec::*;
use berth::engine::runtime::ExecSpec;

/// The binary under test; `BERTH_TEST_BIN` overrides it (e.g. a private copy when several
/// worktrees share one cargo target directory and could swap the binary mid-run).
fn berth() -> String {
    std::env::var("BERTH_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth").to_string())
}

fn unique_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{:08x}{:08x}{:048x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// One container's world: its image root, run root, spec; cleans up on drop.
struct Ctr {
    spec: ContainerSpec,
    _root: tempfile::TempDir,
    _run: tempfile::TempDir,
}

impl Ctr {
    /// A Docker-like default container of the busybox image running `args`.
    fn new(args: &[&str]) -> Ctr {
        let root = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        let images = ImageService::open(root.path(), RegistryConfig::default()).unwrap();
        let tar = TestImage::busybox().docker_archive_tar();
        let record = images.load(&tar[..]).unwrap().remove(0);
        let id = unique_id();
        let bundle = run.path().join("containers").join(&id);
        let state_dir = root.path().join("containers").join(&id);
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::create_dir_all(&state_dir).unwrap();
        let spec = ContainerSpec {
            id: id.clone(),
            bundle,
            state_dir: state_dir.clone(),
            rootfs: RootfsSpec {
                lower: images.lower_dirs(&record),
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
            masked_paths: DOCKER_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            readonly_paths: DOCKER_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            log: LogSpec {
                driver: "json-file".into(),
                path: state_dir.join(format!("{id}-json.log")),
                max_size: None,
                max_file: 1,
            },
        };
        Ctr {
            spec,
            _root: root,
            _run: run,
        }
    }

    fn write_spec(&self) {
        std::fs::write(
            self.spec.bundle.join("spec.json"),
            serde_json::to_vec(&self.spec).unwrap(),
        )
        .unwrap();
    }

    fn command(&self) -> Command {
        self.write_spec();
        let mut c = Command::new(berth());
        c.args(["shim", "run", "--bundle"]).arg(&self.spec.bundle);
        c
    }

    /// Runs to completion: (exit code, stdout, stderr).
    fn run(&self) -> (i32, String, String) {
        let out: Output = self.command().stdin(Stdio::null()).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self) -> String {
        let (code, out, err) = self.run();
        assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
        out
    }

    fn spawn(&self) -> Child {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits for the running container's shim.json.
    fn wait_started(&self) -> ShimState {
        let path = self.spec.bundle.join("shim.json");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(b) = std::fs::read(&path) {
                if let Ok(s) = serde_json::from_slice::<ShimState>(&b) {
                    return s;
                }
            }
            assert!(Instant::now() < deadline, "the container did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn exec(&self, exec: &ExecSpec) -> (i32, String, String) {
        let out = Command::new(berth())
            .args(["shim", "exec", "--bundle"])
            .arg(&self.spec.bundle)
            .arg("--spec")
            .arg(serde_json::to_string(exec).unwrap())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        ["memory", "pids", "cpu", "unified"]
            .iter()
            .map(|h| {
                Path::new("/sys/fs/cgroup")
                    .join(h)
                    .join(&self.spec.cgroup.path)
            })
            .collect()
    }

    /// Nothing of the container is left on the host.
    fn assert_gone(&self) {
        for d in self.cgroup_dirs() {
            assert!(!d.exists(), "cgroup left behind: {}", d.display());
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = self.spec.bundle.to_string_lossy().into_owned();
        assert!(
            !mountinfo.contains(&bundle),
            "a mount mentions the bundle:\n{mountinfo}"
        );
        let upper = self.spec.rootfs.upper.to_string_lossy().into_owned();
        assert!(!mountinfo.contains(&upper), "the overlay is still mounted");
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        if let Ok(cgs) = Cgroups::probe() {
            let cg = cgs.open(&self.spec.cgroup.path);
            let _ = cg.kill_all();
            let _ = cg.remove();
        }
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

#[test]
fn pid_1_is_the_entrypoint_and_the_hostname_is_the_specs() {
    let c = Ctr::new(&[
        "sh",
        "-c",
        "echo $$; hostname; cat /etc/hostname 2>/dev/null; true",
    ]);
    let out = c.ok();
    let l = lines(&out);
    assert_eq!(l[0], "1");
    assert_eq!(l[1], c.spec.hostname);
    c.assert_gone();
}

#[test]
fn host_processes_and_mounts_are_invisible() {
    let c = Ctr::new(&["sh", "-c", "ps -o pid,comm; echo ---; cat /proc/mounts"]);
    let out = c.ok();
    let (ps, mounts) = out.split_once("---").unwrap();
    let pids = lines(ps);
    // A header, sh and ps.
    assert!(pids.len() <= 3, "{ps}");
    // Only the root's overlay options name host directories (as with Docker).
    let others: Vec<&str> = mounts
        .lines()
        .filter(|l| !l.starts_with("overlay / "))
        .collect();
    for host_path in ["/work", "/tmp", "/root", "/home"] {
        assert!(
            !others.iter().any(|l| l.contains(host_path)),
            "{host_path} visible:\n{mounts}"
        );
    }
    for expected in [
        "overlay / overlay",
        "proc /proc proc",
        "tmpfs /dev tmpfs",
        "devpts /dev/pts devpts",
        "shm /dev/shm tmpfs",
        "mqueue /dev/mqueue mqueue",
    ] {
        assert!(mounts.contains(expected), "{expected} missing:\n{mounts}");
    }
    c.assert_gone();
}

#[test]
fn standard_devices_and_links_exist() {
    let c = Ctr::new(&[
        "sh",
        "-c",
        "for d in null zero full random urandom tty; do test -c /dev/$d || echo missing $d; done; \
         readlink /dev/fd; readlink /dev/ptmx; readlink /dev/stdout; \
         echo x > /dev/null && head -c 4 /dev/zero | wc -c; stat -c %a /dev; wc -c < /proc/interrupts",
    ]);
    let out = c.ok();
    assert!(!out.contains("missing"), "{out}");
    let l = lines(&out);
    assert_eq!(&l[..3], ["/proc/self/fd", "pts/ptmx", "/proc/self/fd/1"]);
    assert_eq!(l[3], "4");
    assert_eq!(l[4], "755");
    assert_eq!(l[5], "0", "/proc/interrupts is masked with /dev/null");
}

#[test]
fn memory_limit_oom_kills() {
    let mut c = Ctr::new(&["sh", "-c", "head -c 200m /dev/zero | tail"]);
    c.spec.cgroup.memory = Some(32 << 20);
    let (code, _, err) = c.run();
    assert_eq!(code, 137, "{err}");
    assert!(err.contains("OOM"), "finish() reports the OOM kill: {err}");
    c.assert_gone();
    // finish() again (a daemon cleaning up after a crash): nothing left, no error.
    assert!(!berth::engine::runtime::finish(&c.spec).unwrap());
}

#[test]
fn dropped_capabilities_deny() {
    let mut c = Ctr::new(&["sh", "-c", "chown 65534 /tmp && echo chowned"]);
    c.spec.process.capabilities.retain(|cap| cap != "CAP_CHOWN");
    let (code, out, _) = c.run();
    assert_ne!(code, 0);
    assert!(!out.contains("chowned"));

    let c = Ctr::new(&[
        "sh",
        "-c",
        "mkdir -p /mnt/x && mount -t tmpfs none /mnt/x && echo mounted",
    ]);
    let (code, out, _) = c.run();
    assert_ne!(code, 0, "mount without CAP_SYS_ADMIN must fail: {out}");

    let c = Ctr::new(&["sh", "-c", "chown 65534 /tmp && echo chowned"]);
    assert!(c.ok().contains("chowned"), "the default set has CAP_CHOWN");
}

#[test]
fn read_only_root_denies_writes() {
    let mut c = Ctr::new(&[
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo wrote; touch /dev/shm/ok && echo shm-ok",
    ]);
    c.spec.rootfs.read_only = true;
    let out = c.ok();
    assert!(!out.contains("wrote"), "{out}");
    assert!(out.contains("shm-ok"), "{out}");
}

#[test]
fn user_cwd_and_env() {
    let mut c = Ctr::new(&["sh", "-c", "id -u; id -g; pwd; echo $GREETING; echo $HOME"]);
    c.spec.process.user = "nobody".into();
    c.spec.process.cwd = "/work/dir".into();
    c.spec.process.env.push("GREETING=hello there".into());
    let out = c.ok();
    assert_eq!(
        lines(&out),
        ["65534", "65534", "/work/dir", "hello there", "/nonexistent"]
    );
    let mut c = Ctr::new(&["sh", "-c", "stat -c %u /app/data"]);
    c.spec.process.user = "1234:5678".into();
    c.spec.process.cwd = "/app/data".into();
    assert_eq!(lines(&c.ok()), ["1234"]);
}

#[test]
fn unknown_user_and_missing_executable_are_dockers_errors() {
    let mut c = Ctr::new(&["true"]);
    c.spec.process.user = "ghost".into();
    let (code, _, err) = c.run();
    assert_eq!(code, 128, "{err}");
    assert!(
        err.contains("unable to find user ghost: no matching entries in passwd file"),
        "{err}"
    );
    c.assert_gone();

    let c = Ctr::new(&["no-such-tool"]);
    let (code, _, err) = c.run();
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains("exec: \"no-such-tool\": executable file not found in $PATH"),
        "{err}"
    );
    c.assert_gone();

    let c = Ctr::new(&["/etc/passwd"]);
    let (code, _, err) = c.run();
    assert_eq!(code, 126, "{err}");

    let mut c = Ctr::new(&["true"]);
    c.spec.mounts.push(MountSpec {
        target: "/data".into(),
        kind: MountKind::Bind {
            source: "/nonexistent/berth-source".into(),
            propagation: None,
        },
        read_only: false,
    });
    let (code, _, err) = c.run();
    assert_eq!(code, 128, "{err}");
    assert!(
        err.contains("bind source path does not exist: /nonexistent/berth-source"),
        "{err}"
    );
    c.assert_gone();

    // A hostile image's /etc/passwd cannot hang the setup.
    let root = tempfile::tempdir().unwrap();
    let images = ImageService::open(root.path(), RegistryConfig::default()).unwrap();
    let fifo_layer = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Fifo);
        h.set_mode(0o644);
        h.set_size(0);
        b.append_data(&mut h, "etc/passwd", std::io::empty())
            .unwrap();
        b.into_inner().unwrap()
    };
    let img = TestImage::busybox().layer_tar(fifo_layer);
    let record = images
        .load(&img.docker_archive_tar()[..])
        .unwrap()
        .remove(0);
    let mut c = Ctr::new(&["true"]);
    c.spec.rootfs.lower = images.lower_dirs(&record);
    c.spec.process.user = "nobody".into();
    let (code, _, err) = c.run();
    assert_eq!(code, 128, "{err}");
    assert!(err.contains("/etc/passwd: not a regular file"), "{err}");
    c.assert_gone();

    // Under init: true the failure still comes back, with the same code.
    let mut c = Ctr::new(&["no-such-tool"]);
    c.spec.init = true;
    let (code, _, err) = c.run();
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    c.assert_gone();
}

#[test]
fn exit_codes_and_signals_follow_docker() {
    let c = Ctr::new(&["sh", "-c", "exit 42"]);
    assert_eq!(c.run().0, 42);
    // pid 1 without a handler ignores SIGTERM from inside its namespace (as in Docker).
    let c = Ctr::new(&["sh", "-c", "kill -TERM $$; echo survived"]);
    assert!(c.ok().contains("survived"));
}

#[test]
fn init_makes_sleep_die_on_sigterm() {
    let mut c = Ctr::new(&["sleep", "300"]);
    c.spec.init = true;
    let mut child = c.spawn();
    let state = c.wait_started();
    let started = Instant::now();
    // SAFETY: signalling the shim we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(143), "128 + SIGTERM");
    assert!(!Path::new(&format!("/proc/{}", state.init_pid)).exists());
    c.assert_gone();
}

#[test]
fn init_reaps_and_reports_the_childs_status() {
    let mut c = Ctr::new(&["sh", "-c", "echo $$; (sleep 0.1 &); exit 3"]);
    c.spec.init = true;
    let (code, out, err) = c.run();
    assert_eq!(code, 3, "{err}");
    assert_ne!(lines(&out)[0], "1", "the user's process is pid 1's child");
}

#[test]
fn exec_joins_the_running_container() {
    let c = Ctr::new(&["sleep", "300"]);
    let mut child = c.spawn();
    let state = c.wait_started();
    assert_eq!(
        berth::engine::runtime::pids(&c.spec).unwrap(),
        vec![state.init_pid]
    );
    let (code, out, err) = c.exec(&ExecSpec {
        args: vec![
            "sh".into(),
            "-c".into(),
            "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/self/cgroup | grep memory; echo $FOO; id -u".into(),
        ],
        env: vec!["FOO=bar".into()],
        user: "nobody".into(),
        cwd: String::new(),
        tty: false,
        privileged: false,
    });
    assert_eq!(code, 0, "{err}");
    let l = lines(&out);
    assert_eq!(l[0], c.spec.hostname);
    assert_eq!(l[1], "sleep 300");
    assert!(l[2].ends_with(":/"), "cgroup namespace root: {}", l[2]);
    assert_eq!(l[3], "bar");
    assert_eq!(l[4], "65534");
    let (code, _, err) = c.exec(&ExecSpec {
        args: vec!["nope".into()],
        env: vec![],
        user: String::new(),
        cwd: String::new(),
        tty: false,
        privileged: false,
    });
    assert_eq!(code, 127, "{err}");
    // SAFETY: ending the container we started.
    unsafe { libc::kill(state.init_pid, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    c.assert_gone();
}

#[test]
fn bind_mounts_tmpfs_and_etc_files() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f.txt"), "from host\n").unwrap();
    let hosts = host.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n10.0.0.9 peer\n").unwrap();
    let mut c = Ctr::new(&[
        "sh",
        "-c",
        "cat /data/f.txt; echo new > /data/new.txt; touch /ro/x 2>/dev/null || echo ro-denied; \
         grep peer /etc/hosts; grep ' /scratch ' /proc/mounts; echo ok > /scratch/f",
    ]);
    c.spec.etc_hosts = Some(hosts);
    c.spec.mounts = vec![
        MountSpec {
            target: "/data".into(),
            kind: MountKind::Bind {
                source: host.path().to_path_buf(),
                propagation: None,
            },
            read_only: false,
        },
        MountSpec {
            target: "/ro".into(),
            kind: MountKind::Bind {
                source: host.path().to_path_buf(),
                propagation: Some("rslave".into()),
            },
            read_only: true,
        },
        MountSpec {
            target: "/scratch".into(),
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
                mode: Some(0o750),
            },
            read_only: false,
        },
    ];
    let out = c.ok();
    let l = lines(&out);
    assert_eq!(l[0], "from host");
    assert_eq!(l[1], "ro-denied");
    assert_eq!(l[2], "10.0.0.9 peer");
    assert!(
        l[3].contains("size=1024k") && l[3].contains("mode=750"),
        "{}",
        l[3]
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("new.txt")).unwrap(),
        "new\n"
    );
    c.assert_gone();
}

#[test]
fn masked_and_readonly_paths() {
    let c = Ctr::new(&[
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo sys-ro; ls /sys/firmware | wc -l; \
         echo x > /proc/sysrq-trigger 2>/dev/null || echo sysrq-ro",
    ]);
    let out = c.ok();
    assert_eq!(lines(&out), ["sys-ro", "0", "sysrq-ro"]);
}

#[test]
fn sysctls_and_rlimits() {
    let mut c = Ctr::new(&["sh", "-c", "cat /proc/sys/kernel/shmmni; ulimit -n"]);
    c.spec.sysctls.insert("kernel.shmmni".into(), "1234".into());
    c.spec.process.rlimits = vec![RlimitSpec {
        name: "nofile".into(),
        soft: 512,
        hard: 1024,
    }];
    assert_eq!(lines(&c.ok()), ["1234", "512"]);

    let mut c = Ctr::new(&["true"]);
    c.spec.sysctls.insert("kernel.pid_max".into(), "1".into());
    let (code, _, err) = c.run();
    assert_ne!(code, 0);
    assert!(
        err.contains("is not in a separate kernel namespace"),
        "{err}"
    );
    c.assert_gone();

    let mut c = Ctr::new(&["true"]);
    c.spec.process.rlimits = vec![RlimitSpec {
        name: "nofile".into(),
        soft: 1 << 20,
        hard: 1 << 20,
    }];
    let (code, _, err) = c.run();
    assert_ne!(code, 0);
    assert!(err.contains("setrlimit nofile"), "{err}");
    c.assert_gone();
}

#[test]
fn the_runtime_refuses_a_multi_threaded_caller() {
    // This test harness has threads: start() must refuse rather than fork it.
    let c = Ctr::new(&["true"]);
    let (r, w) = (
        std::fs::File::open("/dev/null").unwrap(),
        std::fs::File::create("/dev/null").unwrap(),
    );
    let _other_thread = std::thread::spawn(|| std::thread::sleep(Duration::from_secs(2)));
    let err = berth::engine::runtime::start(
        &c.spec,
        berth::engine::runtime::ContainerStdio {
            stdin: Some(r.into()),
            stdout: w.try_clone().unwrap().into(),
            stderr: w.into(),
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("single-threaded"), "{err}");
    c.assert_gone();
}

#[test]
fn stdin_is_passed_through() {
    let c = Ctr::new(&["sh", "-c", "read line; echo got:$line"]);
    let mut child = c
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "got:hello");
}

#[test]
fn seccomp_denies_what_dockers_profile_blocks() {
    // Creating a user namespace needs no capability; Docker's profile still blocks unshare
    // without CAP_SYS_ADMIN.
    let c = Ctr::new(&["sh", "-c", "unshare -U true && echo unshared"]);
    let (_, out, _) = c.run();
    assert!(!out.contains("unshared"), "{out}");
    let mut c = Ctr::new(&["sh", "-c", "unshare -U true && echo unshared"]);
    c.spec.process.seccomp = SeccompSpec::Unconfined;
    assert!(c.ok().contains("unshared"));
    // no_new_privs, as asked.
    let mut c = Ctr::new(&[
        "sh",
        "-c",
        "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status",
    ]);
    c.spec.process.no_new_privileges = true;
    let out = c.ok();
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

#[test]
fn capabilities_and_oom_score_adj_as_given() {
    let mut c = Ctr::new(&[
        "sh",
        "-c",
        "grep -E '^Cap(Eff|Bnd)' /proc/self/status; cat /proc/self/oom_score_adj",
    ]);
    c.spec.process.oom_score_adj = Some(500);
    let out = c.ok();
    // Docker's default set: 0x00000000a80425fb.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("500"), "{out}");
    let mut c = Ctr::new(&["sh", "-c", "grep -E '^CapEff' /proc/self/status"]);
    c.spec.process.user = "nobody".into();
    assert!(c.ok().contains("CapEff:\t0000000000000000"));
}

#[test]
fn privileged_gets_every_capability_and_writable_sys() {
    let mut c = Ctr::new(&[
        "sh",
        "-c",
        "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && echo mounted; grep ' /sys ' /proc/mounts",
    ]);
    c.spec.privileged = true;
    c.spec.process.capabilities =
        berth::engine::runtime::security::resolve_capabilities(true, &[], &[]).unwrap();
    c.spec.process.seccomp = SeccompSpec::Unconfined;
    c.spec.masked_paths.clear();
    c.spec.readonly_paths.clear();
    let out = c.ok();
    assert!(out.contains("mounted"), "{out}");
    assert!(out.contains(" rw,"), "{out}");
}

#[test]
fn joins_a_prepared_network_namespace() {
    let run = tempfile::tempdir().unwrap();
    let ns = run.path().join("netns").join("test");
    berth::net::netns::create(&ns).unwrap();
    struct NsGuard(PathBuf);
    impl Drop for NsGuard {
        fn drop(&mut self) {
            let _ = berth::net::netns::remove(&self.0);
        }
    }
    let _g = NsGuard(ns.clone());
    let mut c = Ctr::new(&["sh", "-c", "ls /sys/class/net; readlink /proc/self/ns/net"]);
    c.spec.namespaces.network = NetworkNamespace::Path(ns.clone());
    let out = c.ok();
    let l = lines(&out);
    assert_eq!(l[0], "lo", "only lo in a fresh namespace: {out}");
    let ino = std::fs::metadata(&ns).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(l[1], format!("net:[{}]", ino.ino()));
    c.assert_gone();
}

#[test]
fn host_namespaces_when_asked() {
    let mut c = Ctr::new(&[
        "sh",
        "-c",
        "hostname; readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; cat /dev/shm/$SHMFILE",
    ]);
    let shm_name = format!("berth-test-{}", &c.spec.id[..24]);
    let shm_file = Path::new("/dev/shm").join(&shm_name);
    std::fs::write(&shm_file, "shared\n").unwrap();
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rm = Rm(shm_file);
    c.spec.process.env.push(format!("SHMFILE={shm_name}"));
    c.spec.namespaces.uts_host = true;
    c.spec.namespaces.ipc_host = true;
    c.spec.namespaces.pid_host = true;
    let out = c.ok();
    let l = lines(&out);
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(l[0], host_name.trim());
    for (i, ns) in ["ipc", "pid"].iter().enumerate() {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_eq!(l[i + 1], host.to_string_lossy());
    }
    assert_eq!(l[3], "shared", "the host's /dev/shm with ipc: host");
    c.assert_gone();
}

#[test]
fn exec_with_a_tty_uses_the_containers_devpts() {
    let c = Ctr::new(&["sleep", "300"]);
    let mut child = c.spawn();
    let state = c.wait_started();
    assert_eq!(
        berth::engine::runtime::pids(&c.spec).unwrap(),
        vec![state.init_pid]
    );
    let (code, out, err) = c.exec(&ExecSpec {
        args: vec![
            "sh".into(),
            "-c".into(),
            "tty; test -t 0 && echo interactive".into(),
        ],
        env: vec![],
        user: String::new(),
        cwd: String::new(),
        tty: true,
        privileged: false,
    });
    assert_eq!(code, 0, "{err}");
    let l = lines(&out);
    assert_eq!(l[0], "/dev/pts/0", "{out}");
    assert_eq!(l[1], "interactive");
    // SAFETY: ending the container we started.
    unsafe { libc::kill(state.init_pid, libc::SIGKILL) };
    child.wait().unwrap();
    c.assert_gone();
}

#[test]
fn run_with_a_tty() {
    let mut c = Ctr::new(&["sh", "-c", "test -t 1 && echo on-a-tty; exit 7"]);
    c.spec.process.tty = true;
    let (code, out, err) = c.run();
    assert_eq!(code, 7, "{err}");
    assert!(out.contains("on-a-tty"), "{out}");
}

#[test]
fn a_long_lower_list_still_mounts() {
    // 60 layers: the absolute lowerdir string is over a page.
    let root = tempfile::tempdir().unwrap();
    let images = ImageService::open(root.path(), RegistryConfig::default()).unwrap();
    let mut img = TestImage::busybox();
    for i in 0..60 {
        img = img.extra_layer(&[(&format!("layer{i}.txt"), format!("{i}\n").as_bytes(), 0o644)]);
    }
    let record = images
        .load(&img.docker_archive_tar()[..])
        .unwrap()
        .remove(0);
    let mut c = Ctr::new(&["sh", "-c", "cat /layer0.txt /layer59.txt"]);
    c.spec.rootfs.lower = images.lower_dirs(&record);
    let total: usize = c
        .spec
        .rootfs
        .lower
        .iter()
        .map(|l| l.as_os_str().len() + 1)
        .sum();
    assert!(total > 4096, "{total}");
    assert_eq!(lines(&c.ok()), ["0", "59"]);
    c.assert_gone();
}

fn children_cpu() -> Duration {
    // SAFETY: getrusage fills a local struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// `BERTH_TEST_BIN=<release berth> cargo test --test runtime bench_ -- --ignored --nocapture`:
/// wall time of `berth shim run` of /bin/true in busybox (median of 21 runs), and the CPU
/// time of the shim and the container per run.
#[test]
#[ignore]
fn bench_shim_run_true() {
    let c = Ctr::new(&["/bin/true"]);
    c.write_spec();
    let mut times = Vec::new();
    let cpu0 = children_cpu();
    for _ in 0..21 {
        let t = Instant::now();
        let status = Command::new(berth())
            .args(["shim", "run", "--bundle"])
            .arg(&c.spec.bundle)
            .status()
            .unwrap();
        times.push(t.elapsed());
        assert!(status.success());
    }
    let cpu = (children_cpu() - cpu0) / 21;
    times.sort();
    eprintln!(
        "berth shim run /bin/true: median {:?}, min {:?}, max {:?}; CPU {:?} per run",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        cpu
    );
    c.assert_gone();
}
