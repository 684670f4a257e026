//! Filesystem helpers shared by the image store, the content store and the registry's
//! credential file, so that "atomic replace" means the same thing everywhere.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A filesystem step that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}: {source}", path.display())]
pub struct FsError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn fs_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FsError {
    let path = path.to_path_buf();
    move |source| FsError { op, path, source }
}

/// Replaces `path` with `bytes` so that readers and crashes see the old file or the new one,
/// never a torn one: a temporary file beside it (`.<name>.tmp-*`, created with `mode`),
/// fsync, rename over `path`, fsync the directory. The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // tempfile creates 0600; the explicit chmod makes `mode` exact whatever the umask.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempfile_in(dir)
        .map_err(fs_err("create temporary file in", dir))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| tmp.write_all(bytes))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(fs_err("write", tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| fs_err("replace", path)(e.error))?;
    fsync_dir(dir)
}

/// Makes a rename or unlink in `dir` durable.
pub fn fsync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fs_err("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn write_atomic_replaces_with_the_mode_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"old").unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        write_atomic(&path, b"newer", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"newer");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);

        let missing = dir.path().join("no/such/dir/file");
        let e = write_atomic(&missing, b"x", 0o600).unwrap_err();
        assert_eq!(e.op, "create temporary file in");
        assert!(e.to_string().contains("no/such/dir"), "{e}");
    }
}
