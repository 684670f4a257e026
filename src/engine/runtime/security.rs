//! Capabilities and seccomp: Docker's default capability set, cap_add/cap_drop/privileged
//! resolution, and a seccomp filter equivalent to Docker's default profile (seccompiler).

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A name in cap_add/cap_drop that is not a capability.
    #[error("unknown capability: {0}")]
    UnknownCapability(String),
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("capabilities: {0}")]
    Caps(String),
}

/// A compiled BPF program, ready to install in the child before exec (allocation-free).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProgram(pub Vec<u64>);

/// Docker's default set (`CAP_CHOWN`, `CAP_DAC_OVERRIDE`, ...), as `CAP_*` names.
pub fn default_capabilities() -> Vec<String> {
    todo!("issue 4 security")
}

/// The final set from Docker's rules: privileged → all; else default, minus cap_drop, plus
/// cap_add (`ALL` allowed in both; names with or without `CAP_`, any case).
pub fn resolve_capabilities(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
) -> Result<Vec<String>, SecurityError> {
    let _ = (privileged, cap_add, cap_drop);
    todo!("issue 4 security")
}

/// Sets bounding, permitted, effective, inheritable and ambient sets for a process about to
/// exec as `uid` (Docker: non-root users get empty inheritable/ambient).
pub fn apply_capabilities(caps: &[String], uid: u32) -> Result<(), SecurityError> {
    let _ = (caps, uid);
    todo!("issue 4 security")
}

/// Docker's default seccomp profile for a container holding `caps`.
pub fn default_seccomp(caps: &[String]) -> Result<SeccompProgram, SecurityError> {
    let _ = caps;
    todo!("issue 4 security")
}

/// Installs `program` on the calling thread (no_new_privs must already be set unless the
/// caller holds CAP_SYS_ADMIN). Async-signal-safe: no allocation.
pub fn install_seccomp(program: &SeccompProgram) -> Result<(), SecurityError> {
    let _ = program;
    todo!("issue 4 security")
}
