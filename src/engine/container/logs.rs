//! `docker logs` and `attach`: the shim's json-file reader (rotated files oldest first,
//! tail/since/until) run on a blocking thread, streams and timestamps applied here, and a
//! follow that ends once the container has exited and the log is drained.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use crate::engine::shim::logfile::LogStream;
use crate::engine::shim::logread::{self, FollowControl, LogEntry, ReadOptions};

use super::exec::receiver_stream;
use super::lifecycle::wait_exit;
use super::store::Status;
use super::{Container, Engine, EngineError, Logs, LogsOptions, OutputChunk, Session, StdStream};

/// Which streams, and whether each line gets Docker's fixed-width timestamp.
#[derive(Clone, Copy)]
struct Streams {
    stdout: bool,
    stderr: bool,
    timestamps: bool,
}

impl Streams {
    fn chunk(&self, e: LogEntry) -> Option<OutputChunk> {
        let stream = match e.stream {
            LogStream::Stdout if self.stdout => StdStream::Stdout,
            LogStream::Stderr if self.stderr => StdStream::Stderr,
            _ => return None,
        };
        let data = if self.timestamps {
            let mut line = fixed_nanos(e.unix_nanos).into_bytes();
            line.push(b' ');
            line.extend_from_slice(&e.log);
            Bytes::from(line)
        } else {
            Bytes::from(e.log)
        };
        Some(OutputChunk { stream, data })
    }
}

/// Go's RFC3339NanoFixed in UTC (`docker logs -t` pads the fraction to 9 digits).
fn fixed_nanos(unix_nanos: i64) -> String {
    let secs = unix_nanos.div_euclid(1_000_000_000);
    let nanos = unix_nanos.rem_euclid(1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Follow {
    No,
    /// `logs -f`: follows a running container until it exits; a stopped one's log is read.
    WhileRunning,
    /// attach: until the next exit, even if the container has not started yet.
    UntilNextExit,
}

/// Cancels a follower whose watcher went away without the container having exited (the
/// consumer left, or the engine was dropped), so its blocking thread ends.
struct CancelOnDrop(Option<Arc<FollowControl>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.cancel();
        }
    }
}

impl Engine {
    pub(super) fn container_logs(
        &self,
        c: &Arc<Container>,
        options: &LogsOptions,
    ) -> Result<Logs, EngineError> {
        if !options.stdout && !options.stderr {
            return Err(EngineError::InvalidParameter(
                "Bad parameters: you must choose at least one stream".into(),
            ));
        }
        let streams = Streams {
            stdout: options.stdout,
            stderr: options.stderr,
            timestamps: options.timestamps,
        };
        let opts = ReadOptions {
            tail: options.tail,
            since: options.since.filter(|s| *s > 0.0),
            until: options.until.filter(|u| *u > 0.0),
        };
        let follow = if options.follow {
            Follow::WhileRunning
        } else {
            Follow::No
        };
        self.read_log(c, streams, opts, follow)
    }

    fn read_log(
        &self,
        c: &Arc<Container>,
        streams: Streams,
        opts: ReadOptions,
        follow: Follow,
    ) -> Result<Logs, EngineError> {
        let rec = c.snapshot();
        if rec.spec.log.driver == "none" {
            return Err(EngineError::InvalidParameter(
                "configured logging driver does not support reading".into(),
            ));
        }
        let tty = rec.config.tty.unwrap_or(false);
        let path = rec.spec.log.path.clone();
        // Subscribed before reading: an exit after this point ends the follow.
        let mut rx = c.wake.subscribe();
        let base = rx.borrow().exits;
        let following = match follow {
            Follow::No => false,
            Follow::WhileRunning => rec.state.status.is_active(),
            Follow::UntilNextExit => true,
        };
        let control = if following {
            Some(Arc::new(FollowControl::new().map_err(|e| {
                EngineError::Internal(format!("following {}: {e}", path.display()))
            })?))
        } else {
            None
        };
        let (tx, out) = mpsc::channel::<OutputChunk>(64);
        let (done_tx, done_rx) = oneshot::channel::<()>();
        if let Some(ctl) = &control {
            let mut guard = CancelOnDrop(Some(ctl.clone()));
            let watch_tx = tx.clone();
            self.spawn(async move {
                tokio::select! {
                    _ = wait_exit(&mut rx, base, None) => {
                        if let Some(c) = guard.0.take() {
                            c.container_exited();
                        }
                    }
                    _ = watch_tx.closed() => {}
                    _ = done_rx => {}
                }
                drop(guard);
            });
        }
        let id = rec.id.clone();
        tokio::task::spawn_blocking(move || {
            let r = logread::read_logs(&path, &opts, control.as_deref(), |e| {
                match streams.chunk(e) {
                    Some(chunk) => tx.blocking_send(chunk).is_ok(),
                    None => true,
                }
            });
            if let Err(e) = r {
                eprintln!("berth: logs of {id}: {e}");
            }
            drop(done_tx);
        });
        Ok(Logs {
            tty,
            output: receiver_stream(out),
        })
    }

    /// Output from now until the container's next exit (a created container may be
    /// attached before it starts, as `docker run` does); stdin reaches the shim's
    /// `attach.sock` once the container runs.
    pub(super) async fn attach_container(
        &self,
        c: &Arc<Container>,
        stdin: bool,
    ) -> Result<Session, EngineError> {
        let rec = c.snapshot();
        match rec.state.status {
            Status::Restarting => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is restarting, wait until the container is running",
                    rec.id
                )))
            }
            Status::Removing | Status::Dead => {
                return Err(EngineError::Conflict(format!(
                    "container {} is being removed or is dead",
                    rec.id
                )))
            }
            _ => {}
        }
        let streams = Streams {
            stdout: true,
            stderr: true,
            timestamps: false,
        };
        // Live output only: nothing from before, then follow.
        let opts = ReadOptions {
            tail: Some(0),
            ..ReadOptions::default()
        };
        let logs = if rec.spec.log.driver == "none" {
            Logs {
                tty: rec.config.tty.unwrap_or(false),
                output: Box::pin(futures_util::stream::empty()),
            }
        } else {
            self.read_log(c, streams, opts, Follow::UntilNextExit)?
        };
        let stdin = if stdin && rec.config.open_stdin.unwrap_or(false) {
            let (writer, mut reader) = tokio::io::duplex(64 * 1024);
            let sock = rec.bundle().join("attach.sock");
            let rx = c.wake.subscribe();
            let base = rx.borrow().exits;
            self.spawn(async move {
                let mut stream = loop {
                    if let Ok(s) = tokio::net::UnixStream::connect(&sock).await {
                        break s;
                    }
                    {
                        let w = rx.borrow();
                        if w.exits > base || w.removed {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                };
                let _ = tokio::io::copy(&mut reader, &mut stream).await;
                // The client's EOF is the container's (with StdinOnce, the shim closes it).
                let _ = stream.shutdown().await;
            });
            Some(Box::pin(writer) as std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>)
        } else {
            None
        };
        self.events.container(&rec, "attach", &[]);
        Ok(Session {
            tty: logs.tty,
            stdin,
            output: logs.output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_fixed_timestamps() {
        let s = Streams {
            stdout: true,
            stderr: false,
            timestamps: true,
        };
        let e = LogEntry {
            stream: LogStream::Stdout,
            log: b"hi\n".to_vec(),
            time: "2023-11-14T22:13:20.5Z".into(),
            unix_nanos: 1_700_000_000_500_000_000,
        };
        let c = s.chunk(e.clone()).unwrap();
        assert_eq!(&c.data[..], b"2023-11-14T22:13:20.500000000Z hi\n");
        let err = LogEntry {
            stream: LogStream::Stderr,
            ..e
        };
        assert!(s.chunk(err).is_none());
    }
}
