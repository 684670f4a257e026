//! `docker logs` and `attach`: reading the json-file log the shim writes (rotated files
//! oldest first), with tail/since/until/timestamps, and following it until the container
//! stops and the log is drained.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::exec::receiver_stream;
use super::{Container, Engine, EngineError, Logs, LogsOptions, OutputChunk, Session, StdStream};

const POLL: Duration = Duration::from_millis(50);

#[derive(Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

struct Filter {
    stdout: bool,
    stderr: bool,
    since: Option<f64>,
    until: Option<f64>,
    timestamps: bool,
}

impl Filter {
    /// The chunk to send for one log line, if it passes.
    fn chunk(&self, raw: &[u8]) -> Option<(OutputChunk, f64)> {
        let line: Line = serde_json::from_slice(raw).ok()?;
        let stream = match line.stream.as_str() {
            "stderr" => StdStream::Stderr,
            _ => StdStream::Stdout,
        };
        if (stream == StdStream::Stdout && !self.stdout)
            || (stream == StdStream::Stderr && !self.stderr)
        {
            return None;
        }
        let time = chrono::DateTime::parse_from_rfc3339(&line.time).ok()?;
        let secs = time.timestamp() as f64 + f64::from(time.timestamp_subsec_nanos()) / 1e9;
        if self.since.is_some_and(|s| secs < s) {
            return None;
        }
        let data = if self.timestamps {
            let ts = time
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            Bytes::from(format!("{ts} {}", line.log))
        } else {
            Bytes::from(line.log)
        };
        Some((OutputChunk { stream, data }, secs))
    }

    fn past_until(&self, secs: f64) -> bool {
        self.until.is_some_and(|u| secs > u)
    }
}

/// Complete lines read from an open log file (a partial last line is kept for later).
struct Tail {
    file: File,
    ino: u64,
    pending: Vec<u8>,
}

impl Tail {
    fn open(path: &Path, from_end: bool) -> Option<Tail> {
        let mut file = File::open(path).ok()?;
        let ino = file.metadata().ok()?.ino();
        if from_end {
            file.seek(SeekFrom::End(0)).ok()?;
        }
        Some(Tail {
            file,
            ino,
            pending: Vec::new(),
        })
    }

    fn read_lines(&mut self, out: &mut Vec<Vec<u8>>) {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let rest = self.pending.split_off(pos + 1);
            let mut line = std::mem::replace(&mut self.pending, rest);
            line.pop();
            out.push(line);
        }
    }
}

fn rotated(path: &Path, max_file: u32) -> Vec<PathBuf> {
    (1..max_file.max(1))
        .rev()
        .map(|n| PathBuf::from(format!("{}.{n}", path.display())))
        .filter(|p| p.exists())
        .collect()
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
        let filter = Filter {
            stdout: options.stdout,
            stderr: options.stderr,
            since: options.since.filter(|s| *s > 0.0),
            until: options.until.filter(|u| *u > 0.0),
            timestamps: options.timestamps,
        };
        self.read_log(c, filter, options.tail, options.follow, false)
    }

    fn read_log(
        &self,
        c: &Arc<Container>,
        filter: Filter,
        tail: Option<usize>,
        follow: bool,
        from_end: bool,
    ) -> Result<Logs, EngineError> {
        let rec = c.snapshot();
        if rec.spec.log.driver == "none" {
            return Err(EngineError::InvalidParameter(
                "configured logging driver does not support reading".into(),
            ));
        }
        let tty = rec.config.tty.unwrap_or(false);
        let path = rec.spec.log.path.clone();
        let max_file = rec.spec.log.max_file;
        // Subscribed before reading: an exit after this point ends the follow.
        let mut rx = c.wake.subscribe();
        let base = rx.borrow().exits;
        let follow = follow && rec.state.status.is_active();
        let (tx, out) = mpsc::channel::<OutputChunk>(64);
        self.spawn(async move {
            let path2 = path.clone();
            let initial = tokio::task::spawn_blocking(move || {
                let mut lines = Vec::new();
                if !from_end {
                    for old in rotated(&path2, max_file) {
                        if let Some(mut t) = Tail::open(&old, false) {
                            t.read_lines(&mut lines);
                        }
                    }
                }
                let mut current = Tail::open(&path2, from_end);
                if let Some(t) = current.as_mut() {
                    t.read_lines(&mut lines);
                }
                (lines, current)
            })
            .await;
            let Ok((lines, mut current)) = initial else {
                return;
            };
            let mut chunks: VecDeque<OutputChunk> = VecDeque::new();
            for raw in &lines {
                if let Some((chunk, secs)) = filter.chunk(raw) {
                    if filter.past_until(secs) {
                        break;
                    }
                    chunks.push_back(chunk);
                    if let Some(n) = tail {
                        while chunks.len() > n {
                            chunks.pop_front();
                        }
                    }
                }
            }
            for chunk in chunks {
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            let mut stopping = false;
            loop {
                if !stopping {
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => {}
                        r = rx.changed() => {
                            let w = rx.borrow_and_update().clone();
                            if r.is_err() || w.exits > base || w.removed {
                                stopping = true;
                            }
                        }
                        _ = tx.closed() => return,
                    }
                }
                if current.is_none() {
                    current = Tail::open(&path, false);
                }
                let mut lines = Vec::new();
                if let Some(t) = current.as_mut() {
                    t.read_lines(&mut lines);
                    // Rotated: the old file is drained, continue with the new one.
                    let now = std::fs::metadata(&path).map(|m| m.ino()).ok();
                    if now.is_some_and(|ino| ino != t.ino) {
                        current = Tail::open(&path, false);
                        if let Some(t) = current.as_mut() {
                            t.read_lines(&mut lines);
                        }
                    }
                }
                for raw in &lines {
                    if let Some((chunk, secs)) = filter.chunk(raw) {
                        if filter.past_until(secs) {
                            return;
                        }
                        if tx.send(chunk).await.is_err() {
                            return;
                        }
                    }
                }
                if stopping {
                    return;
                }
            }
        });
        Ok(Logs {
            tty,
            output: receiver_stream(out),
        })
    }

    pub(super) async fn attach_container(
        &self,
        c: &Arc<Container>,
        stdin: bool,
    ) -> Result<Session, EngineError> {
        let rec = c.snapshot();
        if !rec.state.status.is_active() {
            return Err(EngineError::Conflict(
                "You cannot attach to a stopped container, start it first".into(),
            ));
        }
        let filter = Filter {
            stdout: true,
            stderr: true,
            since: None,
            until: None,
            timestamps: false,
        };
        let logs = if rec.spec.log.driver == "none" {
            Logs {
                tty: rec.config.tty.unwrap_or(false),
                output: Box::pin(futures_util::stream::empty()),
            }
        } else {
            self.read_log(c, filter, None, true, true)?
        };
        let stdin = if stdin && rec.config.open_stdin.unwrap_or(false) {
            let sock = rec.bundle().join("attach.sock");
            let stream = tokio::net::UnixStream::connect(&sock).await.map_err(|e| {
                EngineError::Internal(format!("attaching to {}: {e}", sock.display()))
            })?;
            Some(Box::pin(stream) as std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>)
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
    fn filter_applies_streams_since_and_timestamps() {
        let f = Filter {
            stdout: true,
            stderr: false,
            since: Some(1_700_000_000.5),
            until: None,
            timestamps: true,
        };
        let line = br#"{"log":"hi\n","stream":"stdout","time":"2023-11-14T22:13:21.000000001Z"}"#;
        let (c, _) = f.chunk(line).unwrap();
        assert_eq!(&c.data[..], b"2023-11-14T22:13:21.000000001Z hi\n");
        let err = br#"{"log":"x\n","stream":"stderr","time":"2023-11-14T22:13:21Z"}"#;
        assert!(f.chunk(err).is_none());
        let old = br#"{"log":"x\n","stream":"stdout","time":"2023-11-14T22:13:20Z"}"#;
        assert!(f.chunk(old).is_none());
    }

    #[test]
    fn tail_keeps_partial_lines() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        let mut f = File::create(&p).unwrap();
        f.write_all(b"one\ntw").unwrap();
        let mut t = Tail::open(&p, false).unwrap();
        let mut out = Vec::new();
        t.read_lines(&mut out);
        assert_eq!(out, vec![b"one".to_vec()]);
        f.write_all(b"o\n").unwrap();
        out.clear();
        t.read_lines(&mut out);
        assert_eq!(out, vec![b"two".to_vec()]);
    }
}
