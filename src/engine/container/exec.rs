//! `docker exec`: records, and `berth shim exec` helpers spawned per exec (the helper joins
//! the container and relays a pty itself when asked for a tty). Health checks use the same
//! path.

use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use bollard_stubs::models::{ExecInspectResponse, ProcessConfig};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::engine::runtime::ExecSpec;

use super::store::{self, Record, Status};
use super::{
    lock, Container, Engine, EngineError, ExecConfig, ExecStartOptions, OutputChunk, OutputStream,
    Session, StdStream,
};

pub(crate) struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub state: StdMutex<ExecState>,
}

#[derive(Debug, Default)]
pub(crate) struct ExecState {
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

/// The Docker event action for an exec: `exec_create: sh -c true`.
fn action(kind: &str, cmd: &[String]) -> String {
    format!("{kind}: {}", cmd.join(" "))
}

/// Docker's exit code of a finished helper: its code, or 128 + the signal that killed it.
fn exit_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => i64::from(c),
        (None, Some(s)) => 128 + i64::from(s),
        _ => -1,
    }
}

pub(super) fn receiver_stream(rx: mpsc::Receiver<OutputChunk>) -> OutputStream {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }))
}

/// Copies a pipe into the channel; keeps draining when nobody listens any more, so the
/// process never blocks on a full pipe.
async fn pump(mut r: impl AsyncRead + Unpin, stream: StdStream, tx: mpsc::Sender<OutputChunk>) {
    let mut buf = vec![0u8; 32 * 1024];
    let mut listening = true;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if listening {
                    let chunk = OutputChunk {
                        stream,
                        data: Bytes::copy_from_slice(&buf[..n]),
                    };
                    listening = tx.send(chunk).await.is_ok();
                }
            }
        }
    }
}

impl Engine {
    pub(super) fn create_exec(
        &self,
        c: &Arc<Container>,
        config: ExecConfig,
    ) -> Result<String, EngineError> {
        let rec = c.snapshot();
        check_running(&rec)?;
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(EngineError::InvalidParameter(
                "No exec command specified".into(),
            ));
        }
        let id = store::random_id()?;
        let cmd = config.cmd.clone().unwrap_or_default();
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: rec.id.clone(),
            config,
            state: StdMutex::new(ExecState::default()),
        });
        lock(&self.reg).execs.insert(id.clone(), exec);
        self.events.container(
            &rec,
            &action("exec_create", &cmd),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    fn find_exec(&self, exec_id: &str) -> Result<Arc<Exec>, EngineError> {
        lock(&self.reg)
            .execs
            .get(exec_id)
            .cloned()
            .ok_or_else(|| EngineError::NoSuchExec(exec_id.to_string()))
    }

    pub(super) async fn start_exec(
        &self,
        exec_id: &str,
        options: &ExecStartOptions,
    ) -> Result<Session, EngineError> {
        let exec = self.find_exec(exec_id)?;
        let c = self.find(&exec.container_id)?;
        let rec = c.snapshot();
        check_running(&rec)?;
        {
            let mut st = lock(&exec.state);
            if st.running {
                return Err(EngineError::Conflict(format!(
                    "Error: Exec command {exec_id} is already running"
                )));
            }
            if st.started {
                return Err(EngineError::Conflict(format!(
                    "Error: Exec command {exec_id} has already run"
                )));
            }
            st.started = true;
            st.running = true;
        }
        let cfg = &exec.config;
        let tty = options.tty || cfg.tty.unwrap_or(false);
        let cmd = cfg.cmd.clone().unwrap_or_default();
        let spec = ExecSpec {
            args: cmd.clone(),
            env: cfg.env.clone().unwrap_or_default(),
            user: cfg.user.clone().unwrap_or_default(),
            cwd: cfg.working_dir.clone().unwrap_or_default(),
            tty,
            privileged: cfg.privileged.unwrap_or(false),
        };
        let want_stdin = cfg.attach_stdin.unwrap_or(false) && !options.detach;
        let capture = !options.detach;
        let mut child = match self.spawn_exec_helper(&rec, &spec, want_stdin, capture) {
            Ok(child) => child,
            Err(e) => {
                let mut st = lock(&exec.state);
                st.running = false;
                st.exit_code = Some(126);
                return Err(e);
            }
        };
        lock(&exec.state).pid = child.id().map_or(0, i64::from);
        self.events.container(
            &rec,
            &action("exec_start", &cmd),
            &[("execID", exec.id.clone())],
        );

        let stdin = child
            .stdin
            .take()
            .map(|s| Box::pin(s) as std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>);
        let (tx, rx) = mpsc::channel(64);
        let out = child.stdout.take();
        let err = child.stderr.take();
        let weak = self.me.clone();
        let exec2 = exec.clone();
        self.spawn(async move {
            // With a tty the helper relays the pty on stdout; stderr stays empty. `tx` itself
            // lives until the exit code is recorded: a client that inspects the exec when
            // its output ends (the docker CLI does) must see it.
            let (tx_out, tx_err) = (tx.clone(), tx.clone());
            let a = async move {
                if let Some(o) = out {
                    pump(o, StdStream::Stdout, tx_out).await;
                }
            };
            let b = async move {
                if let Some(e) = err {
                    pump(e, StdStream::Stderr, tx_err).await;
                }
            };
            tokio::join!(a, b);
            let code = match child.wait().await {
                Ok(status) => exit_code(status),
                Err(_) => -1,
            };
            {
                let mut st = lock(&exec2.state);
                st.running = false;
                st.exit_code = Some(code);
            }
            drop(tx);
            if let Some(engine) = weak.upgrade() {
                if let Ok(c) = engine.find(&exec2.container_id) {
                    engine.events.container(
                        &c.snapshot(),
                        "exec_die",
                        &[("execID", exec2.id.clone()), ("exitCode", code.to_string())],
                    );
                }
            }
        });
        Ok(Session {
            tty,
            stdin,
            output: receiver_stream(rx),
        })
    }

    pub(super) fn inspect_exec(&self, exec_id: &str) -> Result<ExecInspectResponse, EngineError> {
        let exec = self.find_exec(exec_id)?;
        let st = lock(&exec.state);
        let cfg = &exec.config;
        let cmd = cfg.cmd.clone().unwrap_or_default();
        Ok(ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: Some(cfg.detach_keys.clone().unwrap_or_default()),
            id: Some(exec.id.clone()),
            running: Some(st.running),
            exit_code: st.exit_code,
            process_config: Some(ProcessConfig {
                privileged: Some(cfg.privileged.unwrap_or(false)),
                user: Some(cfg.user.clone().unwrap_or_default()),
                tty: Some(cfg.tty.unwrap_or(false)),
                entrypoint: cmd.first().cloned(),
                arguments: Some(cmd.iter().skip(1).cloned().collect()),
            }),
            open_stdin: Some(cfg.attach_stdin.unwrap_or(false)),
            open_stderr: Some(cfg.attach_stderr.unwrap_or(false)),
            open_stdout: Some(cfg.attach_stdout.unwrap_or(false)),
            container_id: Some(exec.container_id.clone()),
            pid: Some(st.pid),
        })
    }

    /// `berth shim exec --bundle B --spec JSON` for the container's current run.
    pub(super) fn spawn_exec_helper(
        &self,
        rec: &Record,
        spec: &ExecSpec,
        stdin: bool,
        capture: bool,
    ) -> Result<Child, EngineError> {
        let json = serde_json::to_string(spec)
            .map_err(|e| EngineError::Internal(format!("exec spec: {e}")))?;
        let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        Command::new(&self.config.exe)
            .arg("shim")
            .arg("exec")
            .arg("--bundle")
            .arg(rec.bundle())
            .arg("--spec")
            .arg(json)
            .stdin(pipe(stdin))
            .stdout(pipe(capture))
            .stderr(pipe(capture))
            .spawn()
            .map_err(|e| {
                EngineError::Internal(format!(
                    "starting {} shim exec: {e}",
                    self.config.exe.display()
                ))
            })
    }

    /// Runs a health probe: exit code and the first `limit` bytes of output; -1 and Docker's
    /// message on timeout.
    pub(super) async fn run_probe(
        &self,
        rec: &Record,
        args: Vec<String>,
        timeout: Duration,
        limit: usize,
    ) -> (i64, String) {
        let spec = ExecSpec {
            args: args.clone(),
            env: Vec::new(),
            user: String::new(),
            cwd: String::new(),
            tty: false,
            privileged: false,
        };
        let exec_id = store::random_id().unwrap_or_default();
        self.events.container(
            rec,
            &action("exec_create", &args),
            &[("execID", exec_id.clone())],
        );
        let mut child = match self.spawn_exec_helper(rec, &spec, false, true) {
            Ok(c) => c,
            Err(e) => return (-1, e.to_string()),
        };
        self.events.container(
            rec,
            &action("exec_start", &args),
            &[("execID", exec_id.clone())],
        );
        let out = child.stdout.take();
        let err = child.stderr.take();
        let collect = async {
            let (tx, mut rx) = mpsc::channel(16);
            let (tx_out, tx_err) = (tx.clone(), tx);
            let a = async move {
                if let Some(o) = out {
                    pump(o, StdStream::Stdout, tx_out).await;
                }
            };
            let b = async move {
                if let Some(e) = err {
                    pump(e, StdStream::Stderr, tx_err).await;
                }
            };
            let mut buf = Vec::new();
            let gather = async {
                while let Some(chunk) = rx.recv().await {
                    let room = limit.saturating_sub(buf.len());
                    buf.extend_from_slice(&chunk.data[..chunk.data.len().min(room)]);
                }
            };
            tokio::join!(a, b, gather);
            let code = match child.wait().await {
                Ok(s) => exit_code(s),
                Err(_) => -1,
            };
            (code, String::from_utf8_lossy(&buf).into_owned())
        };
        let result = tokio::time::timeout(timeout, collect).await;
        let (code, output) = match result {
            Ok(r) => r,
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                (
                    -1,
                    format!(
                        "Health check exceeded timeout ({})",
                        super::health::go_duration(timeout)
                    ),
                )
            }
        };
        self.events.container(
            rec,
            "exec_die",
            &[("execID", exec_id), ("exitCode", code.to_string())],
        );
        (code, output)
    }
}

fn check_running(rec: &Record) -> Result<(), EngineError> {
    match rec.state.status {
        Status::Running => Ok(()),
        Status::Restarting => Err(EngineError::Conflict(format!(
            "Container {} is restarting, wait until the container is running",
            rec.id
        ))),
        _ => Err(EngineError::Conflict(format!(
            "Container {} is not running",
            rec.id
        ))),
    }
}
