//! Hostile layers: every entry must land inside the unpack root or fail with a clear error,
//! and nothing outside the root (a sandbox with a sentinel beside it, and the host's
//! /etc/passwd) may be created or changed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth::engine::image::unpack::{unpack, UnpackError, UnpackStats};
use tar::{EntryType, Header};

/// Builds tar streams with raw name bytes: `Header::set_path` refuses `..` and absolute
/// names, which are exactly what these tests need.
struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Layer {
    fn new() -> Layer {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn raw(&mut self, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) -> &mut Layer {
        let mut pax: Vec<(&str, &[u8])> = Vec::new();
        if name.len() > 100 {
            pax.push(("path", name));
        }
        if link.len() > 100 {
            pax.push(("linkpath", link));
        }
        if !pax.is_empty() {
            self.b.append_pax_extensions(pax).unwrap();
        }
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name[..n]);
        let n = link.len().min(100);
        old.linkname[..n].copy_from_slice(&link[..n]);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Layer {
        self.raw(EntryType::Regular, name.as_bytes(), b"", data)
    }

    fn dir(&mut self, name: &str) -> &mut Layer {
        self.raw(EntryType::Directory, name.as_bytes(), b"", b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Layer {
        self.raw(EntryType::Symlink, name.as_bytes(), target.as_bytes(), b"")
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Layer {
        self.raw(EntryType::Link, name.as_bytes(), target.as_bytes(), b"")
    }

    fn device(&mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> &mut Layer {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o666);
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        let n = name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&name.as_bytes()[..n]);
        h.set_cksum();
        self.b.append(&h, &b""[..]).unwrap();
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        self.b.finish().unwrap();
        self.b.get_ref().clone()
    }
}

type Tree = BTreeMap<PathBuf, (u32, u64, i64, Vec<u8>)>;

/// Everything under `dir` except the subtree `skip`: mode, size, mtime and content (or
/// symlink target).
fn tree(dir: &Path, skip: &Path, out: &mut Tree) {
    let m = fs::symlink_metadata(dir).unwrap();
    out.insert(
        dir.to_path_buf(),
        (m.mode(), m.size(), m.mtime(), Vec::new()),
    );
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p == skip {
            continue;
        }
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            tree(&p, skip, out);
            continue;
        }
        let content = if m.file_type().is_symlink() {
            fs::read_link(&p)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else if m.is_file() {
            fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        out.insert(p, (m.mode(), m.size(), m.mtime(), content));
    }
}

/// Host paths a successful escape would create.
const HOST_NEVER: &[&str] = &["/escape", "/abs", "/x", "/etc/owned", "/owned", "/pwned"];

struct Sandbox {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    root: PathBuf,
    before: Tree,
    passwd: (u64, i64, Vec<u8>),
}

fn passwd_state() -> (u64, i64, Vec<u8>) {
    let m = fs::metadata("/etc/passwd").unwrap();
    (m.ino(), m.mtime(), fs::read("/etc/passwd").unwrap())
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("berth-unpack-sec-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let root = dir.join("root");
        fs::create_dir(&root).unwrap();
        fs::write(dir.join("sentinel"), b"do not touch").unwrap();
        fs::create_dir(dir.join("etc")).unwrap();
        fs::write(dir.join("etc/passwd"), b"sandbox passwd").unwrap();
        let mut before = Tree::new();
        tree(&dir, &root, &mut before);
        for p in HOST_NEVER {
            assert!(!Path::new(p).exists(), "{p} exists before the test");
        }
        Sandbox {
            _tmp: tmp,
            dir,
            root,
            before,
            passwd: passwd_state(),
        }
    }

    fn unpack(&self, layer: Vec<u8>) -> Result<UnpackStats, UnpackError> {
        let r = unpack(&layer[..], &self.root);
        self.assert_outside_untouched();
        r
    }

    fn assert_outside_untouched(&self) {
        let mut after = Tree::new();
        tree(&self.dir, &self.root, &mut after);
        assert_eq!(self.before, after, "something outside the root changed");
        assert_eq!(self.passwd, passwd_state(), "host /etc/passwd changed");
        for p in HOST_NEVER {
            assert!(!Path::new(p).exists(), "{p} was created on the host");
        }
        let opaque = rustix::fs::lgetxattr(&self.dir, "trusted.overlay.opaque", &mut [0u8; 8]);
        assert!(opaque.is_err(), "the sandbox directory was marked opaque");
    }

    fn inside(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

fn is_file_with(p: &Path, content: &[u8]) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_file()) && fs::read(p).unwrap() == content
}

#[test]
fn dotdot_names_stay_in_the_root() {
    let s = Sandbox::new();
    let layer = Layer::new()
        .file("../escape", b"1")
        .file("../../../../../../escape2", b"2")
        .file("a/../../x", b"3")
        .file("./../sentinel", b"4")
        .finish();
    s.unpack(layer).unwrap();
    assert!(is_file_with(&s.inside("escape"), b"1"));
    assert!(is_file_with(&s.inside("escape2"), b"2"));
    assert!(is_file_with(&s.inside("x"), b"3"));
    assert!(is_file_with(&s.inside("sentinel"), b"4"));
}

#[test]
fn absolute_names_stay_in_the_root() {
    let s = Sandbox::new();
    let sandbox_abs = format!("{}/sentinel", s.dir.display());
    let layer = Layer::new()
        .file("/abs/file", b"1")
        .file("//owned", b"2")
        .file(&sandbox_abs, b"3")
        .finish();
    s.unpack(layer).unwrap();
    assert!(is_file_with(&s.inside("abs/file"), b"1"));
    assert!(is_file_with(&s.inside("owned"), b"2"));
    assert!(is_file_with(&s.inside(&sandbox_abs[1..]), b"3"));
}

#[test]
fn symlink_to_slash_then_write_through_it_stays_in_the_root() {
    let s = Sandbox::new();
    let layer = Layer::new()
        .symlink("evil", "/")
        .file("evil/etc/owned", b"owned")
        .symlink("up", "../..")
        .file("up/etc/owned2", b"owned2")
        .symlink("upabs", "/../../..")
        .file("upabs/pwned", b"pwned")
        .finish();
    s.unpack(layer).unwrap();
    assert!(is_file_with(&s.inside("etc/owned"), b"owned"));
    assert!(is_file_with(&s.inside("etc/owned2"), b"owned2"));
    assert!(is_file_with(&s.inside("pwned"), b"pwned"));
    assert!(fs::symlink_metadata(s.inside("evil"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn symlink_to_the_sandbox_then_write_through_it_stays_in_the_root() {
    let s = Sandbox::new();
    let abs = s.dir.display().to_string();
    let layer = Layer::new()
        .symlink("out", &abs)
        .file("out/pwned", b"1")
        .symlink("rel", "../")
        .file("rel/sentinel", b"2")
        .dir("rel/etc/")
        .file("rel/etc/passwd", b"3")
        .finish();
    s.unpack(layer).unwrap();
    assert!(is_file_with(
        &s.inside(&format!("{}/pwned", &abs[1..])),
        b"1"
    ));
    assert!(is_file_with(&s.inside("sentinel"), b"2"));
    assert!(is_file_with(&s.inside("etc/passwd"), b"3"));
}

#[test]
fn a_file_entry_replaces_a_symlink_instead_of_writing_through_it() {
    let s = Sandbox::new();
    let sentinel = format!("{}/sentinel", s.dir.display());
    let layer = Layer::new()
        .symlink("pw", "/etc/passwd")
        .file("pw", b"replaced")
        .symlink("sent", &sentinel)
        .file("sent", b"replaced too")
        .symlink("rel", "../sentinel")
        .file("rel", b"and this")
        .finish();
    let stats = s.unpack(layer).unwrap();
    assert!(is_file_with(&s.inside("pw"), b"replaced"));
    assert!(is_file_with(&s.inside("sent"), b"replaced too"));
    assert!(is_file_with(&s.inside("rel"), b"and this"));
    assert_eq!(stats.files, 3);
    assert_eq!(stats.symlinks, 3);
}

#[test]
fn a_hardlink_through_a_symlink_links_the_symlink_itself() {
    let s = Sandbox::new();
    let layer = Layer::new()
        .symlink("pw", "/etc/passwd")
        .hardlink("h", "pw")
        .symlink("sent", "../sentinel")
        .hardlink("h2", "sent")
        .finish();
    s.unpack(layer).unwrap();
    let h = fs::symlink_metadata(s.inside("h")).unwrap();
    assert!(h.file_type().is_symlink());
    assert_eq!(h.ino(), fs::symlink_metadata(s.inside("pw")).unwrap().ino());
    assert!(fs::symlink_metadata(s.inside("h2"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_hardlink_to_a_host_file_fails_when_the_layer_lacks_it() {
    for target in [
        "/etc/passwd",
        "../../etc/passwd",
        "../sentinel",
        "/../etc/passwd",
    ] {
        let s = Sandbox::new();
        let layer = Layer::new().hardlink("h", target).finish();
        let err = s.unpack(layer).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, UnpackError::Invalid { .. })
                && msg.contains("does not exist in this layer"),
            "{target}: {msg}"
        );
        assert!(!s.inside("h").exists());
    }
}

#[test]
fn a_hardlink_to_etc_passwd_links_the_layers_own_file() {
    for target in [
        "/etc/passwd",
        "../../etc/passwd",
        "etclink/passwd",
        "rootlink/etc/passwd",
    ] {
        let s = Sandbox::new();
        let layer = Layer::new()
            .dir("etc/")
            .file("etc/passwd", b"layer passwd")
            .symlink("etclink", "/etc")
            .symlink("rootlink", "../../..")
            .hardlink("h", target)
            .finish();
        let stats = s.unpack(layer).unwrap();
        assert_eq!(stats.hardlinks, 1);
        let h = fs::symlink_metadata(s.inside("h")).unwrap();
        assert_eq!(h.ino(), fs::metadata(s.inside("etc/passwd")).unwrap().ino());
        assert_eq!(h.nlink(), 2, "{target}");
        assert!(is_file_with(&s.inside("h"), b"layer passwd"));
    }
}

#[test]
fn device_nodes_stay_in_the_root() {
    let s = Sandbox::new();
    let layer = Layer::new()
        .device("null", EntryType::Char, 1, 3)
        .device("../blk", EntryType::Block, 7, 0)
        .device("/fifo", EntryType::Fifo, 0, 0)
        .symlink("evil", "/")
        .device("evil/escape", EntryType::Char, 1, 5)
        .finish();
    let stats = s.unpack(layer).unwrap();
    assert_eq!(stats.devices, 4);
    let null = fs::symlink_metadata(s.inside("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert!(fs::symlink_metadata(s.inside("blk"))
        .unwrap()
        .file_type()
        .is_block_device());
    assert!(fs::symlink_metadata(s.inside("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(fs::symlink_metadata(s.inside("escape"))
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn whiteouts_and_opaque_markers_stay_in_the_root() {
    let s = Sandbox::new();
    let layer = Layer::new()
        .file("../.wh.sentinel", b"")
        .symlink("evil", "/")
        .file("evil/etc/.wh.passwd", b"")
        .symlink("up", "..")
        .file("up/.wh..wh..opq", b"")
        .finish();
    let stats = s.unpack(layer).unwrap();
    assert_eq!(stats.whiteouts, 3);
    for wh in ["sentinel", "etc/passwd"] {
        let m = fs::symlink_metadata(s.inside(wh)).unwrap();
        assert!(m.file_type().is_char_device(), "{wh}");
        assert_eq!(m.rdev(), 0);
    }
    let mut buf = [0u8; 8];
    let n = rustix::fs::lgetxattr(&s.root, "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
}

#[test]
fn whiteouts_of_dot_and_dotdot_are_refused() {
    for name in ["d/.wh..", "d/.wh...", ".wh..", ".wh..."] {
        let s = Sandbox::new();
        let layer = Layer::new()
            .dir("d/")
            .file("d/keep", b"k")
            .file("keep", b"k")
            .file(name, b"")
            .finish();
        let err = s.unpack(layer).unwrap_err();
        assert!(
            err.to_string().contains("whiteout of an invalid name"),
            "{name}: {err}"
        );
        assert!(is_file_with(&s.inside("d/keep"), b"k"), "{name}");
        assert!(is_file_with(&s.inside("keep"), b"k"), "{name}");
    }
}

#[test]
fn a_directory_entry_replaces_a_symlink_to_outside() {
    let s = Sandbox::new();
    let abs = s.dir.display().to_string();
    let layer = Layer::new()
        .symlink("d", &abs)
        .dir("d/")
        .file("d/sentinel", b"inside")
        .finish();
    s.unpack(layer).unwrap();
    assert!(fs::symlink_metadata(s.inside("d")).unwrap().is_dir());
    assert!(is_file_with(&s.inside("d/sentinel"), b"inside"));
}

#[test]
fn overlong_names_are_clear_errors() {
    let s = Sandbox::new();
    let long = "n".repeat(5000);
    let err = s
        .unpack(Layer::new().file(&long, b"x").finish())
        .unwrap_err();
    assert!(
        matches!(err, UnpackError::NameTooLong { len: 5000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("NAME_MAX"), "{err}");

    let deep = vec!["d"; 2600].join("/");
    let err = s
        .unpack(Layer::new().file(&deep, b"x").finish())
        .unwrap_err();
    assert!(matches!(err, UnpackError::PathTooLong { .. }), "{err}");
    assert!(err.to_string().contains("PATH_MAX"), "{err}");

    let long_target = "t".repeat(5000);
    let err = s
        .unpack(Layer::new().hardlink("h", &long_target).finish())
        .unwrap_err();
    assert!(matches!(err, UnpackError::NameTooLong { .. }), "{err}");
    let err = s
        .unpack(Layer::new().symlink("s", &long_target).finish())
        .unwrap_err();
    assert!(matches!(err, UnpackError::Invalid { .. }), "{err}");
    assert_eq!(fs::read_dir(&s.root).unwrap().count(), 0);
}

#[test]
fn a_dangling_symlink_parent_gets_its_target_made_inside_the_root() {
    let s = Sandbox::new();
    let layer = Layer::new()
        .symlink("gone", "/nowhere")
        .file("gone/f", b"1")
        .dir("sub/")
        .symlink("sub/link", "../made/../made/deeper")
        .file("sub/link/g", b"2")
        .symlink("esc", "../../../pwned")
        .file("esc/h", b"3")
        .finish();
    s.unpack(layer).unwrap();
    assert!(is_file_with(&s.inside("nowhere/f"), b"1"));
    assert!(is_file_with(&s.inside("made/deeper/g"), b"2"));
    assert!(is_file_with(&s.inside("pwned/h"), b"3"));
}

#[test]
fn a_symlink_loop_is_a_clear_error() {
    let s = Sandbox::new();
    let layer = Layer::new()
        .symlink("l1", "l2")
        .symlink("l2", "/l1")
        .file("l1/f", b"x")
        .finish();
    let err = s.unpack(layer).unwrap_err();
    assert!(err.to_string().contains("too many symlinks"), "{err}");
}

#[test]
fn a_file_under_a_file_is_a_clear_error() {
    let s = Sandbox::new();
    let layer = Layer::new().file("f", b"x").file("f/g", b"y").finish();
    let err = s.unpack(layer).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let s = Sandbox::new();
    let mut junk = vec![0x41u8; 4096];
    junk[0] = b'x';
    assert!(matches!(s.unpack(junk), Err(UnpackError::Tar(_))));
    // A truncated entry: the header promises more data than there is.
    let mut layer = Layer::new().file("big", &[7u8; 10_000]).finish();
    layer.truncate(512 + 3000);
    assert!(s.unpack(layer).is_err());
}
