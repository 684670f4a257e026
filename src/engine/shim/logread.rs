//! Reading a container's json-file log (for `logs`, attach and `logs -f`): entries across the
//! rotated files oldest first, `tail` / `since` / `until` as Docker applies them, and a
//! follower that keeps yielding entries the shim appends, across rotations, until the
//! container has exited and everything is read, or it is cancelled. Blocking code: the daemon
//! runs it on a blocking thread.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde::Deserialize;

use super::logfile::{rotated_path, LogStream};

/// One log entry as written: the raw `log` bytes (with their `\n` unless a split piece), the
/// stream, and the `time` string exactly as stored (for `--timestamps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: LogStream,
    pub log: Vec<u8>,
    pub time: String,
    /// `time` as Unix nanoseconds.
    pub unix_nanos: i64,
}

/// Which entries to read, as `docker logs` takes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOptions {
    /// The last N entries over all files (applied before `since`/`until`, as Docker does).
    pub tail: Option<usize>,
    /// Unix seconds: entries before this are skipped.
    pub since: Option<f64>,
    /// Unix seconds: reading stops at the first entry after this.
    pub until: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    #[error("log file {}: cannot {op}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("following log file {}: {message}", path.display())]
    Watch { path: PathBuf, message: String },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogReadError {
    let path = path.to_path_buf();
    move |source| LogReadError::Io { op, path, source }
}

/// Tells a follower (possibly on another thread) to stop: [`FollowControl::container_exited`]
/// once everything the container wrote has been read, [`FollowControl::cancel`] at once. Both
/// are final; one control may be shared by several followers.
pub struct FollowControl {
    wake: EventFd,
    exited: AtomicBool,
    cancelled: AtomicBool,
}

impl FollowControl {
    pub fn new() -> io::Result<FollowControl> {
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        Ok(FollowControl {
            wake,
            exited: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        })
    }

    /// The container has exited (its shim wrote `exit.json`, so the log is complete).
    pub fn container_exited(&self) {
        self.exited.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn wake(&self) {
        // Never drained: the event stays readable so every follower sharing it wakes up.
        let _ = self.wake.write(1);
    }
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    log: String,
    stream: String,
    time: String,
}

fn parse_entry(line: &[u8]) -> Option<LogEntry> {
    let raw: RawEntry = serde_json::from_slice(line).ok()?;
    let stream = LogStream::parse(&raw.stream)?;
    let unix_nanos = chrono::DateTime::parse_from_rfc3339(&raw.time)
        .ok()?
        .timestamp_nanos_opt()?;
    Some(LogEntry {
        stream,
        log: raw.log.into_bytes(),
        time: raw.time,
        unix_nanos,
    })
}

fn secs_to_nanos(s: f64) -> i64 {
    // Saturating float-to-int conversion: absurd values just select everything / nothing.
    (s * 1e9).round() as i64
}

/// What the sink is told to do after each entry.
struct Filter<'a, F> {
    since: Option<i64>,
    until: Option<i64>,
    sink: &'a mut F,
}

enum Flow {
    Continue,
    Stop,
}

impl<F: FnMut(LogEntry) -> bool> Filter<'_, F> {
    /// Parses one line (unparsable lines, e.g. torn by a crash, are skipped) and hands it on.
    fn line(&mut self, line: &[u8]) -> Flow {
        let Some(e) = parse_entry(line) else {
            return Flow::Continue;
        };
        if self.until.is_some_and(|u| e.unix_nanos > u) {
            return Flow::Stop;
        }
        if self.since.is_some_and(|s| e.unix_nanos < s) {
            return Flow::Continue;
        }
        if (self.sink)(e) {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }
}

/// Reads the entries of the log at `path` (and its rotated files) selected by `opts`, handing
/// each to `sink` (which returns false to stop). With `follow`, then waits for new entries
/// until the control says the container exited (and the log is read to its end) or cancels.
/// A log that does not exist (yet) has no entries; a follower waits for it.
pub fn read_logs<F: FnMut(LogEntry) -> bool>(
    path: &Path,
    opts: &ReadOptions,
    follow: Option<&FollowControl>,
    mut sink: F,
) -> Result<(), LogReadError> {
    let mut filter = Filter {
        since: opts.since.map(secs_to_nanos),
        until: opts.until.map(secs_to_nanos),
        sink: &mut sink,
    };
    // Open everything first, so a rotation while reading cannot make us skip a file.
    let current = match File::open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut files = Vec::new();
    let mut seen = Vec::new();
    let mut end = 0;
    if let Some(f) = &current {
        let meta = f.metadata().map_err(io_err("stat", path))?;
        seen.push((meta.dev(), meta.ino()));
        end = complete_end(f, meta.len()).map_err(io_err("read", path))?;
    }
    for n in 1.. {
        let p = rotated_path(path, n);
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(io_err("open", &p)(e)),
        };
        let meta = f.metadata().map_err(io_err("stat", &p))?;
        if seen.contains(&(meta.dev(), meta.ino())) {
            continue;
        }
        seen.push((meta.dev(), meta.ino()));
        files.push((p, f, meta.len()));
    }
    // Oldest first; the current file last, up to its last complete line.
    files.reverse();
    if let Some(f) = &current {
        files.push((
            path.to_path_buf(),
            f.try_clone().map_err(io_err("open", path))?,
            end,
        ));
    }

    let stopped = match opts.tail {
        Some(n) => {
            let mut lines = Vec::new();
            for (p, f, len) in files.iter().rev() {
                if lines.len() >= n {
                    break;
                }
                tail_lines(f, *len, n, &mut lines).map_err(io_err("read", p))?;
            }
            lines
                .iter()
                .rev()
                .any(|l| matches!(filter.line(l), Flow::Stop))
        }
        None => {
            let mut stopped = false;
            for (p, f, len) in &files {
                if forward_lines(f, *len, &mut filter).map_err(io_err("read", p))? {
                    stopped = true;
                    break;
                }
            }
            stopped
        }
    };
    let Some(ctl) = follow else {
        return Ok(());
    };
    if stopped {
        return Ok(());
    }
    let cur = current.map(|f| (f, end));
    Follower::new(path, cur)?.run(ctl, &mut filter)
}

/// Convenience for callers that want the entries in memory (no follow).
pub fn read_all(path: &Path, opts: &ReadOptions) -> Result<Vec<LogEntry>, LogReadError> {
    let mut out = Vec::new();
    read_logs(path, opts, None, |e| {
        out.push(e);
        true
    })?;
    Ok(out)
}

/// The offset just past the last `\n` at or before `len` (a line still being written is not
/// read yet).
fn complete_end(f: &File, len: u64) -> io::Result<u64> {
    let mut pos = len;
    let mut buf = [0u8; 4096];
    while pos > 0 {
        let start = pos.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(pos - start) as usize];
        f.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        pos = start;
    }
    Ok(0)
}

/// Pushes the lines of `f[..len]` newest first onto `out` until it holds `n`.
fn tail_lines(f: &File, len: u64, n: usize, out: &mut Vec<Vec<u8>>) -> io::Result<()> {
    const CHUNK: u64 = 64 * 1024;
    let mut pos = len;
    // Bytes after the last newline seen so far, i.e. the end of the line being assembled.
    let mut carry: Vec<u8> = Vec::new();
    while pos > 0 && out.len() < n {
        let start = pos.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (pos - start) as usize];
        f.read_exact_at(&mut chunk, start)?;
        chunk.extend_from_slice(&carry);
        let mut rest = chunk.as_slice();
        while let Some(i) = rest.iter().rposition(|&b| b == b'\n') {
            let line = &rest[i + 1..];
            if !line.is_empty() {
                out.push(line.to_vec());
                if out.len() >= n {
                    return Ok(());
                }
            }
            rest = &rest[..i];
        }
        carry = rest.to_vec();
        pos = start;
    }
    if !carry.is_empty() && out.len() < n {
        out.push(carry);
    }
    Ok(())
}

/// Feeds the lines of `f[..len]` to the filter; true when it said stop.
fn forward_lines<F: FnMut(LogEntry) -> bool>(
    f: &File,
    len: u64,
    filter: &mut Filter<'_, F>,
) -> io::Result<bool> {
    let mut r = BufReader::with_capacity(64 * 1024, ReadAt { f, pos: 0 }.take(len));
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(false);
        }
        if matches!(filter.line(&line), Flow::Stop) {
            return Ok(true);
        }
    }
}

/// Positional reads, so a shared fd's offset is never involved.
struct ReadAt<'a> {
    f: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.f.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Follows the current log file from an offset; on rotation (the path names another inode)
/// finishes the old file and continues at the start of the new one.
struct Follower {
    path: PathBuf,
    /// The file being read and its inode.
    cur: Option<(File, u64)>,
    pos: u64,
    /// An incomplete last line, completed by a later read.
    partial: Vec<u8>,
    inotify: Inotify,
}

impl Follower {
    fn new(path: &Path, cur: Option<(File, u64)>) -> Result<Follower, LogReadError> {
        let watch_err = |e: nix::Error| LogReadError::Watch {
            path: path.to_path_buf(),
            message: format!("inotify: {e}"),
        };
        let inotify =
            Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(watch_err)?;
        // Watch the directory: it sees writes to the file, the rename and the new file.
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        inotify
            .add_watch(
                dir,
                AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_FROM
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_DELETE
                    | AddWatchFlags::IN_DELETE_SELF,
            )
            .map_err(watch_err)?;
        let (cur, pos) = match cur {
            Some((f, pos)) => {
                let ino = f.metadata().map_err(io_err("stat", path))?.ino();
                (Some((f, ino)), pos)
            }
            None => (None, 0),
        };
        Ok(Follower {
            path: path.to_path_buf(),
            cur,
            pos,
            partial: Vec::new(),
            inotify,
        })
    }

    fn run<F: FnMut(LogEntry) -> bool>(
        mut self,
        ctl: &FollowControl,
        filter: &mut Filter<'_, F>,
    ) -> Result<(), LogReadError> {
        loop {
            if ctl.cancelled.load(Ordering::SeqCst) {
                return Ok(());
            }
            // Read before acting on `exited`: what the shim wrote before it is all there.
            let exited = ctl.exited.load(Ordering::SeqCst);
            if self.drain(filter)? {
                return Ok(());
            }
            match std::fs::metadata(&self.path) {
                Ok(meta) => {
                    let same = self.cur.as_ref().is_some_and(|(_, ino)| *ino == meta.ino());
                    if !same {
                        // Rotated (or created): the old file gets no more writes once renamed;
                        // finish it, then start the new one from its beginning.
                        if self.drain(filter)? {
                            return Ok(());
                        }
                        match File::open(&self.path) {
                            Ok(f) => {
                                let ino = f.metadata().map(|m| m.ino()).unwrap_or(meta.ino());
                                self.cur = Some((f, ino));
                                self.pos = 0;
                                self.partial.clear();
                                continue;
                            }
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(io_err("open", &self.path)(e)),
                        }
                    } else if meta.len() < self.pos {
                        // Truncated in place (not by berth): start over.
                        self.pos = 0;
                        self.partial.clear();
                        continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("stat", &self.path)(e)),
            }
            if exited {
                return Ok(());
            }
            self.wait(ctl)?;
        }
    }

    /// Reads the current file to its end; true when the filter said stop.
    fn drain<F: FnMut(LogEntry) -> bool>(
        &mut self,
        filter: &mut Filter<'_, F>,
    ) -> Result<bool, LogReadError> {
        let Some((f, _)) = &self.cur else {
            return Ok(false);
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f
                .read_at(&mut buf, self.pos)
                .map_err(io_err("read", &self.path))?;
            if n == 0 {
                return Ok(false);
            }
            self.pos += n as u64;
            let mut data = &buf[..n];
            while let Some(i) = data.iter().position(|&b| b == b'\n') {
                let flow = if self.partial.is_empty() {
                    filter.line(&data[..=i])
                } else {
                    self.partial.extend_from_slice(&data[..=i]);
                    let line = std::mem::take(&mut self.partial);
                    filter.line(&line)
                };
                if matches!(flow, Flow::Stop) {
                    return Ok(true);
                }
                data = &data[i + 1..];
            }
            self.partial.extend_from_slice(data);
        }
    }

    fn wait(&self, ctl: &FollowControl) -> Result<(), LogReadError> {
        let mut fds = [
            PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(ctl.wake.as_fd(), PollFlags::POLLIN),
        ];
        // The timeout is a safety net only (e.g. a log directory replaced under us).
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => {
                return Err(LogReadError::Watch {
                    path: self.path.clone(),
                    message: format!("poll: {e}"),
                })
            }
        }
        // Only whether something happened matters, not what.
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::logfile::{LogWriter, MAX_LINE};
    use super::*;
    use crate::engine::runtime::spec::LogSpec;
    use std::sync::Arc;
    use std::time::Duration;

    fn spec(dir: &Path, max_size: Option<u64>, max_file: u32) -> LogSpec {
        LogSpec {
            driver: "json-file".into(),
            path: dir.join("c-json.log"),
            max_size,
            max_file,
        }
    }

    /// Entry i at Unix time 1000 + i seconds.
    fn write(w: &mut LogWriter, range: std::ops::Range<i64>) {
        for i in range {
            let stream = if i % 2 == 0 {
                LogStream::Stdout
            } else {
                LogStream::Stderr
            };
            let t = super::super::logfile::format_unix(1000 + i, 0);
            w.write_entry(stream, format!("e{i}\n").as_bytes(), &t)
                .unwrap();
        }
    }

    fn names(v: &[LogEntry]) -> Vec<String> {
        v.iter()
            .map(|e| {
                String::from_utf8(e.log.clone())
                    .unwrap()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn expect(range: std::ops::Range<i64>) -> Vec<String> {
        range.map(|i| format!("e{i}")).collect()
    }

    /// 30 entries rotated over 3 files of 4 entries each: e18..e29 survive.
    fn rotated_log() -> (tempfile::TempDir, LogSpec) {
        let dir = tempfile::tempdir().unwrap();
        let one = {
            let mut v = Vec::new();
            super::super::logfile::encode_entry(
                &mut v,
                LogStream::Stdout,
                b"e10\n",
                "1970-01-01T00:16:50Z",
            );
            v.len() as u64
        };
        let spec = spec(dir.path(), Some(4 * one), 3);
        let mut w = LogWriter::open(&spec).unwrap();
        write(&mut w, 10..30);
        (dir, spec)
    }

    #[test]
    fn reads_all_files_oldest_first() {
        let (_dir, spec) = rotated_log();
        let all = read_all(&spec.path, &ReadOptions::default()).unwrap();
        assert_eq!(names(&all), expect(18..30));
        assert_eq!(all[0].stream, LogStream::Stdout);
        assert_eq!(all[1].stream, LogStream::Stderr);
        assert_eq!(all[0].time, "1970-01-01T00:16:58Z");
        assert_eq!(all[0].unix_nanos, 1018 * 1_000_000_000);
    }

    #[test]
    fn tail_counts_over_all_files() {
        let (_dir, spec) = rotated_log();
        let tail = |n| {
            let opts = ReadOptions {
                tail: Some(n),
                ..Default::default()
            };
            names(&read_all(&spec.path, &opts).unwrap())
        };
        assert_eq!(tail(0), Vec::<String>::new());
        assert_eq!(tail(3), expect(27..30));
        assert_eq!(tail(6), expect(24..30));
        assert_eq!(tail(9), expect(21..30));
        assert_eq!(tail(100), expect(18..30));
    }

    #[test]
    fn since_and_until_filter_across_files() {
        let (_dir, spec) = rotated_log();
        let read = |since: Option<f64>, until: Option<f64>, tail| {
            let opts = ReadOptions { tail, since, until };
            names(&read_all(&spec.path, &opts).unwrap())
        };
        assert_eq!(read(Some(1020.0), None, None), expect(20..30));
        assert_eq!(read(Some(1019.5), Some(1025.0), None), expect(20..26));
        assert_eq!(read(None, Some(1021.0), None), expect(18..22));
        // Tail first, then since (Docker's order).
        assert_eq!(read(Some(1020.0), None, Some(12)), expect(20..30));
        assert_eq!(read(Some(1028.0), None, Some(5)), expect(28..30));
        assert_eq!(read(Some(2000.0), None, None), Vec::<String>::new());
    }

    #[test]
    fn missing_log_has_no_entries_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.log");
        assert!(read_all(&path, &ReadOptions::default()).unwrap().is_empty());
        std::fs::write(
            &path,
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2025-01-02T03:04:05.5Z\"}\n\
             garbage\n\
             {\"log\":\"b\\u003c\\ufffd\",\"stream\":\"stderr\",\"time\":\"2025-01-02T03:04:06Z\"}\n\
             {\"log\":\"torn",
        )
        .unwrap();
        let all = read_all(&path, &ReadOptions::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].log, b"a\n");
        assert_eq!(all[0].unix_nanos, 1_735_787_045_500_000_000);
        assert_eq!(all[1].log, "b<\u{fffd}".as_bytes());
        assert_eq!(all[1].stream, LogStream::Stderr);
        let tail = ReadOptions {
            tail: Some(1),
            ..Default::default()
        };
        assert_eq!(
            read_all(&path, &tail).unwrap()[0].time,
            "2025-01-02T03:04:06Z"
        );
    }

    #[test]
    fn tail_reads_long_lines_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), None, 1);
        let mut w = LogWriter::open(&spec).unwrap();
        let big = vec![b'q'; MAX_LINE];
        for i in 0..10 {
            w.write_entry(LogStream::Stdout, &big, &format!("2025-01-01T00:00:0{i}Z"))
                .unwrap();
        }
        let opts = ReadOptions {
            tail: Some(7),
            ..Default::default()
        };
        let got = read_all(&spec.path, &opts).unwrap();
        assert_eq!(got.len(), 7);
        assert_eq!(got[0].time, "2025-01-01T00:00:03Z");
        assert!(got.iter().all(|e| e.log == big));
    }

    #[test]
    fn follow_survives_rotation_and_stops_after_exit() {
        let dir = tempfile::tempdir().unwrap();
        let one = {
            let mut v = Vec::new();
            super::super::logfile::encode_entry(
                &mut v,
                LogStream::Stdout,
                b"e10\n",
                "1970-01-01T00:16:50Z",
            );
            v.len() as u64
        };
        let spec = spec(dir.path(), Some(3 * one), 2);
        let mut w = LogWriter::open(&spec).unwrap();
        write(&mut w, 10..12);
        let ctl = Arc::new(FollowControl::new().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let ctl = ctl.clone();
            let path = spec.path.clone();
            std::thread::spawn(move || {
                let opts = ReadOptions {
                    tail: Some(1),
                    ..Default::default()
                };
                read_logs(&path, &opts, Some(&ctl), |e| tx.send(e).is_ok())
            })
        };
        let recv = || rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(names(&[recv()]), ["e11"]);
        // Each group of writes forces a rotation; a follower sees every entry exactly once,
        // in order (max_file 2, so the renamed file is still there to be finished).
        for k in 0..5 {
            let from = 12 + k * 3;
            write(&mut w, from..from + 3);
            for i in from..from + 3 {
                assert_eq!(names(&[recv()]), [format!("e{i}")]);
            }
        }
        // A line being written is not handed out half; the exit lets the follower finish.
        write(&mut w, 27..28);
        ctl.container_exited();
        assert_eq!(names(&[recv()]), ["e27"]);
        reader.join().unwrap().unwrap();
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn follow_waits_for_the_log_and_cancels() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), None, 1);
        let ctl = Arc::new(FollowControl::new().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let ctl = ctl.clone();
            let path = spec.path.clone();
            std::thread::spawn(move || {
                read_logs(&path, &ReadOptions::default(), Some(&ctl), |e| {
                    tx.send(e).is_ok()
                })
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let mut w = LogWriter::open(&spec).unwrap();
        write(&mut w, 0..2);
        let recv = || rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(names(&[recv(), recv()]), expect(0..2));
        ctl.cancel();
        reader.join().unwrap().unwrap();
    }

    #[test]
    fn follow_with_until_stops_at_the_first_later_entry() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), None, 1);
        let mut w = LogWriter::open(&spec).unwrap();
        write(&mut w, 0..2);
        let ctl = FollowControl::new().unwrap();
        let mut got = Vec::new();
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                let opts = ReadOptions {
                    until: Some(1002.0),
                    ..Default::default()
                };
                read_logs(&spec.path, &opts, Some(&ctl), |e| {
                    got.push(e);
                    true
                })
            });
            std::thread::sleep(Duration::from_millis(50));
            write(&mut w, 2..5);
            h.join().unwrap().unwrap();
        });
        assert_eq!(names(&got), expect(0..3));
    }
}
