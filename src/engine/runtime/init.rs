//! `init: true`: pid 1 is this reaper (tini's job). It forks the user's process, forwards
//! every catchable signal to it, reaps every zombie the namespace hands it, and exits with
//! the process's status (128 + signal when it was killed).

use std::fs::File;

use super::security;

/// Exit status in Docker's convention from a wait status.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        128
    }
}

/// Forks `child` (which execs the user's process, or returns its failure's exit code) and
/// supervises it; returns the exit code pid 1 should exit with. `error_end` is this
/// process's copy of the error channel: closed once the child has its own.
pub fn reap(child: impl FnOnce() -> i32, error_end: File, capabilities: &[String]) -> i32 {
    // SAFETY: signal-mask and fork syscalls in a single-threaded process.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        // Blocked before the fork so nothing is lost; the child resets its mask before exec.
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        let pid = libc::fork();
        if pid < 0 {
            return 128;
        }
        if pid == 0 {
            libc::_exit(child());
        }
        // The child's stdio and error channel are its own: the reaper keeps no copy.
        drop(child);
        drop(error_end);
        // The reaper keeps only the container's own capabilities (it never execs).
        let _ = security::apply_capabilities(capabilities, 0);
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&all, &mut info);
            if sig < 0 {
                continue;
            }
            if sig != libc::SIGCHLD {
                libc::kill(pid, sig);
                continue;
            }
            loop {
                let mut status = 0;
                let r = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if r <= 0 {
                    break;
                }
                if r == pid {
                    // Collect whatever else already died, then leave: the kernel kills
                    // the rest of the namespace with us.
                    while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
                    return exit_code(status);
                }
            }
        }
    }
}
