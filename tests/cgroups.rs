//! Real cgroups (run as root): limits land in the kernel's files, membership, OOM detection,
//! kill and removal. Each test uses its own `berth/test-<pid>-<name>` cgroup and removes it
//! even when it fails.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use berth::engine::runtime::cgroup::{Cgroup, Cgroups};
use berth::engine::runtime::spec::CgroupSpec;

fn spec(name: &str) -> CgroupSpec {
    CgroupSpec {
        path: format!("berth/test-{}-{name}", std::process::id()),
        ..CgroupSpec::default()
    }
}

/// Kills the members and removes the cgroup on drop.
struct Guard(Cgroup);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill_all();
        let _ = self.0.remove();
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn v1_dir(cgroups: &Cgroups, controller: &str, path: &str) -> Option<PathBuf> {
    match cgroups {
        Cgroups::V1(v1) => v1
            .hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.mountpoint.join(path)),
        Cgroups::V2(_) => None,
    }
}

#[test]
fn limits_land_in_the_files() {
    let cgroups = Cgroups::probe().unwrap();
    let mut spec = spec("limits");
    spec.memory = Some(64 << 20);
    spec.memory_reservation = Some(32 << 20);
    spec.cpu_quota = Some(50_000);
    spec.cpu_period = Some(100_000);
    spec.cpu_shares = Some(512);
    spec.cpuset_cpus = Some("0".into());
    spec.pids_limit = Some(50);
    let cgroup = Guard(cgroups.create(&spec, false).unwrap());
    let dirs = cgroup.0.dirs();
    assert!(dirs.iter().all(|d| d.is_dir()), "{dirs:?}");
    match &cgroups {
        Cgroups::V1(_) => {
            let d = |c| v1_dir(&cgroups, c, &spec.path).unwrap();
            let mem = d("memory");
            assert_eq!(
                read(mem.join("memory.limit_in_bytes")),
                (64u64 << 20).to_string()
            );
            assert_eq!(
                read(mem.join("memory.soft_limit_in_bytes")),
                (32u64 << 20).to_string()
            );
            if mem.join("memory.memsw.limit_in_bytes").exists() {
                // Docker's default: as much swap as memory.
                assert_eq!(
                    read(mem.join("memory.memsw.limit_in_bytes")),
                    (128u64 << 20).to_string()
                );
            }
            assert_eq!(read(d("cpu").join("cpu.cfs_quota_us")), "50000");
            assert_eq!(read(d("cpu").join("cpu.cfs_period_us")), "100000");
            assert_eq!(read(d("cpu").join("cpu.shares")), "512");
            assert_eq!(read(d("cpuset").join("cpuset.cpus")), "0");
            // mems inherited from the parent, or the cgroup could not take tasks.
            assert!(!read(d("cpuset").join("cpuset.mems")).is_empty());
            assert_eq!(read(d("pids").join("pids.max")), "50");
            let devices = read(d("devices").join("devices.list"));
            for rule in [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
            ] {
                assert!(devices.lines().any(|l| l == rule), "{rule} in {devices}");
            }
            assert!(!devices.contains("a *:* rwm"), "{devices}");
        }
        Cgroups::V2(_) => {
            let dir = &dirs[0];
            assert_eq!(read(dir.join("memory.max")), (64u64 << 20).to_string());
            assert_eq!(read(dir.join("memory.low")), (32u64 << 20).to_string());
            assert_eq!(read(dir.join("cpu.max")), "50000 100000");
            assert_eq!(read(dir.join("pids.max")), "50");
        }
    }
    cgroup.0.remove().unwrap();
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    // Removing again is fine.
    cgroup.0.remove().unwrap();
}

#[test]
fn privileged_allows_all_devices_and_swap_unlimited() {
    let cgroups = Cgroups::probe().unwrap();
    let mut spec = spec("privileged");
    spec.memory = Some(64 << 20);
    spec.memory_swap = Some(-1);
    spec.pids_limit = Some(0);
    let cgroup = Guard(cgroups.create(&spec, true).unwrap());
    if let Some(devices) = v1_dir(&cgroups, "devices", &spec.path) {
        assert_eq!(read(devices.join("devices.list")), "a *:* rwm");
    }
    if let Some(pids) = v1_dir(&cgroups, "pids", &spec.path) {
        assert_eq!(read(pids.join("pids.max")), "max");
    }
    if let Some(mem) = v1_dir(&cgroups, "memory", &spec.path) {
        let memsw = mem.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            // -1 reads back as the largest page-aligned value.
            assert!(read(memsw).parse::<u64>().unwrap() > 1 << 60);
        }
    }
    // Creating again re-applies (a restarted container keeps its cgroup path).
    let again = cgroups.create(&spec, true).unwrap();
    assert_eq!(again.dirs(), cgroup.0.dirs());
}

#[test]
fn members_are_listed_and_killed() {
    let cgroups = Cgroups::probe().unwrap();
    let spec = spec("members");
    let cgroup = Guard(cgroups.create(&spec, false).unwrap());
    let mut child = Command::new("/bin/busybox")
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    cgroup.0.add(pid).unwrap();
    assert_eq!(cgroup.0.pids().unwrap(), vec![pid]);
    // Another handle on the same cgroup sees the same members.
    assert_eq!(cgroups.open(&spec.path).pids().unwrap(), vec![pid]);
    assert!(!cgroup.0.oom_killed().unwrap());
    cgroup.0.kill_all().unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(cgroup.0.pids().unwrap().is_empty());
    cgroup.0.remove().unwrap();
    assert!(cgroup.0.dirs().iter().all(|d| !d.exists()));
}

#[test]
fn memory_limit_oom_kills() {
    let cgroups = Cgroups::probe().unwrap();
    let mut spec = spec("oom");
    spec.memory = Some(32 << 20);
    spec.memory_swap = Some(32 << 20);
    let cgroup = Guard(cgroups.create(&spec, false).unwrap());
    // Held behind a read on stdin until it is in the cgroup; `tail` then buffers 200 MB.
    let mut child = Command::new("/bin/busybox")
        .args(["sh", "-c", "read go; head -c 200m /dev/zero | tail"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cgroup.0.add(child.id() as i32).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137), "{status:?}");
    assert!(cgroup.0.oom_killed().unwrap());
    cgroup.0.remove().unwrap();
}

#[test]
fn create_and_remove_are_quick() {
    let cgroups = Cgroups::probe().unwrap();
    let mut spec = spec("timing");
    spec.memory = Some(64 << 20);
    spec.pids_limit = Some(100);
    let mut times = Vec::new();
    for _ in 0..20 {
        let start = std::time::Instant::now();
        let cgroup = Guard(cgroups.create(&spec, false).unwrap());
        cgroup.0.remove().unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    eprintln!(
        "cgroup create+remove ({}): median {:?}",
        cgroups.version(),
        times[10]
    );
    assert!(
        times[10] < std::time::Duration::from_millis(50),
        "{times:?}"
    );
}

#[test]
fn bad_path_is_refused() {
    let cgroups = Cgroups::probe().unwrap();
    let mut spec = spec("bad");
    spec.path = "../escape".into();
    let err = cgroups.create(&spec, false).unwrap_err();
    assert!(err.to_string().contains("../escape"), "{err}");
}
