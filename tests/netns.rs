//! Real network namespaces (run as root): a created namespace is distinct from the host's,
//! holds only an `lo` that is up, and removal leaves neither file nor mount.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use berth::net::netns;

/// Runs busybox `args` inside the namespace at `ns` (setns between fork and exec).
fn run_in(ns: &Path, args: &[&str]) -> String {
    let file = std::fs::File::open(ns).unwrap();
    let fd = file.as_raw_fd();
    let mut cmd = Command::new("/bin/busybox");
    cmd.args(args);
    // SAFETY: only setns(2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn mounted(path: &Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_str().unwrap();
    mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(path))
}

/// Removes the namespace even when the test fails.
struct Guard<'a>(&'a Path);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = netns::remove(self.0);
    }
}

#[test]
fn create_gives_a_fresh_namespace_with_lo_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netns").join("c1");
    let start = std::time::Instant::now();
    netns::create(&path).unwrap();
    eprintln!("netns create: {:?}", start.elapsed());
    let _guard = Guard(&path);
    assert!(mounted(&path));

    // A namespace other than ours, still alive after the creating thread ended.
    let host = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), host);

    let dev = run_in(&path, &["cat", "/proc/net/dev"]);
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{dev}");
    let lo = run_in(&path, &["ifconfig", "lo"]);
    assert!(lo.contains("UP"), "{lo}");
    assert!(lo.contains("127.0.0.1"), "{lo}");

    // Our own thread's namespace did not change.
    assert_eq!(std::fs::metadata("/proc/self/ns/net").unwrap().ino(), host);

    netns::remove(&path).unwrap();
    assert!(!path.exists());
    assert!(!mounted(&path));
    // Removing again is fine.
    netns::remove(&path).unwrap();
}

#[test]
fn create_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c2");
    netns::create(&path).unwrap();
    let _guard = Guard(&path);
    let err = netns::create(&path).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    // The first namespace is untouched.
    assert!(mounted(&path));
}
