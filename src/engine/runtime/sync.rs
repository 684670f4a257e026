//! The child → parent channel of container setup, as a message type with intent-named
//! senders (never raw bytes passed around): [`ErrorChannel`] carries why setup or exec
//! failed; both ends are CLOEXEC, so EOF without a report means the user's process has
//! exec'd. (No parent → child channel is needed: the child joins its cgroup itself.)

use std::fs::File;
use std::io::{self, Read, Write};

use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};

/// What went wrong in the child, as sent to the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildError {
    /// Namespaces, mounts, pivot_root, hostname, sysctls, cgroup: the container itself.
    Setup { message: String },
    /// The user's process: user lookup, rlimits, capabilities, cwd, exec. Docker's exit codes
    /// (127 not found, 126 not executable, 128 other).
    Exec { message: String, exit_code: i32 },
}

impl ChildError {
    pub fn setup(message: impl Into<String>) -> ChildError {
        ChildError::Setup {
            message: message.into(),
        }
    }

    pub fn exec(message: impl Into<String>, exit_code: i32) -> ChildError {
        ChildError::Exec {
            message: message.into(),
            exit_code,
        }
    }

    /// The status the failing child exits with (what a reaper reports for it).
    pub fn exit_code(&self) -> i32 {
        match self {
            ChildError::Setup { .. } => 128,
            ChildError::Exec { exit_code, .. } => *exit_code,
        }
    }
}

fn pipe() -> io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    Ok((File::from(r), File::from(w)))
}

/// Child → parent: a [`ChildError`] as one JSON document, or nothing at all.
pub struct ErrorChannel {
    pub parent: File,
    pub child: File,
}

impl ErrorChannel {
    pub fn new() -> io::Result<ErrorChannel> {
        let (parent, child) = pipe()?;
        Ok(ErrorChannel { parent, child })
    }

    /// Child side; best effort (if the parent is gone nobody is listening).
    pub fn report(child: &mut File, err: &ChildError) {
        if let Ok(bytes) = serde_json::to_vec(err) {
            let _ = child.write_all(&bytes);
        }
    }

    /// Parent side: blocks until every copy of the child end is closed (exec or exit).
    pub fn outcome(mut parent: File) -> io::Result<Option<ChildError>> {
        let mut buf = Vec::new();
        parent.read_to_end(&mut buf)?;
        if buf.is_empty() {
            return Ok(None);
        }
        Ok(Some(serde_json::from_slice(&buf).unwrap_or_else(|_| {
            ChildError::setup(format!(
                "unreadable report from the container's init: {}",
                String::from_utf8_lossy(&buf)
            ))
        })))
    }
}
