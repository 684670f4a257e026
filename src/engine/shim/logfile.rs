//! Docker's `json-file` log format, written by the shim: one JSON object per line,
//! `{"log":"hello\n","stream":"stdout","time":"2025-01-02T03:04:05.123456789Z"}`, byte for byte
//! as dockerd writes it (its hand-rolled escaper, Go's RFC3339Nano time), with rotation per
//! [`LogSpec`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::runtime::spec::LogSpec;

/// Docker's copier buffer: a line longer than this is logged in pieces of exactly this size,
/// without a trailing `\n` (only the last piece has one).
pub const MAX_LINE: usize = 16 * 1024;

/// Which of the container's streams an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }

    pub fn parse(s: &str) -> Option<LogStream> {
        match s {
            "stdout" => Some(LogStream::Stdout),
            "stderr" => Some(LogStream::Stderr),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("log file {}: cannot {op}: {source}", path.display())]
pub struct LogFileError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn log_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogFileError {
    let path = path.to_path_buf();
    move |source| LogFileError { op, path, source }
}

/// Go's `time.RFC3339Nano` of `t` in UTC, as `time.Time.Format` prints it: the fraction has
/// its trailing zeros trimmed, and no `.` at all when it is zero.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            // Before the epoch: floor the seconds so the fraction stays positive.
            let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    };
    format_unix(secs, nanos)
}

/// [`rfc3339_nano`] of a Unix time given as seconds and nanoseconds.
pub fn format_unix(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Appends `s` as a JSON string the way dockerd's json-file escaper does: `"` and `\` escaped,
/// `\n` and `\r` as such, other controls and `<`, `>`, `&` as `\u00XX`, U+2028/U+2029 as
/// `\u2028`/`\u2029`, and each byte that does not start a valid UTF-8 sequence as `\ufffd`.
pub fn escape_json(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            match b {
                b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                0..=0x1f | b'<' | b'>' | b'&' => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                _ => out.push(b),
            }
            i += 1;
            continue;
        }
        // Go's utf8.DecodeRune: one invalid byte at a time becomes U+FFFD.
        let len = match utf8_char_len(&s[i..]) {
            Some(len) => len,
            None => {
                out.extend_from_slice(b"\\ufffd");
                i += 1;
                continue;
            }
        };
        match &s[i..i + len] {
            [0xe2, 0x80, 0xa8] => out.extend_from_slice(b"\\u2028"),
            [0xe2, 0x80, 0xa9] => out.extend_from_slice(b"\\u2029"),
            c => out.extend_from_slice(c),
        }
        i += len;
    }
    out.push(b'"');
}

/// Length of the valid UTF-8 sequence starting `s` (non-ASCII lead byte), if it is one.
fn utf8_char_len(s: &[u8]) -> Option<usize> {
    let len = match s[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let seq = s.get(..len)?;
    std::str::from_utf8(seq).ok().map(|_| len)
}

/// Appends one json-file line (with its `\n`) for an entry.
pub fn encode_entry(out: &mut Vec<u8>, stream: LogStream, log: &[u8], time: &str) {
    out.push(b'{');
    if !log.is_empty() {
        out.extend_from_slice(b"\"log\":");
        escape_json(out, log);
        out.push(b',');
    }
    out.extend_from_slice(b"\"stream\":\"");
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// Appends entries to a container's json-file log, rotating it when it would outgrow
/// `max_size`: `<path>` → `<path>.1` → … → `<path>.<max_file-1>` (the oldest dropped). Each
/// entry is one `write(2)`, so a reader never sees half an entry followed by another.
pub struct LogWriter {
    path: PathBuf,
    /// None: driver `none`, nothing is written.
    file: Option<File>,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    buf: Vec<u8>,
}

impl LogWriter {
    /// Opens (appending to) the log of `spec`; a container restarted keeps its old lines.
    pub fn open(spec: &LogSpec) -> Result<LogWriter, LogFileError> {
        let mut w = LogWriter {
            path: spec.path.clone(),
            file: None,
            size: 0,
            max_size: spec.max_size.filter(|&s| s > 0),
            max_file: spec.max_file.max(1),
            buf: Vec::new(),
        };
        if spec.driver != "none" {
            let file = open_log(&w.path)?;
            w.size = file.metadata().map_err(log_err("stat", &w.path))?.len();
            w.file = Some(file);
        }
        Ok(w)
    }

    /// Whether entries are written at all (driver `json-file`).
    pub fn enabled(&self) -> bool {
        self.file.is_some()
    }

    pub fn write_entry(
        &mut self,
        stream: LogStream,
        log: &[u8],
        time: &str,
    ) -> Result<(), LogFileError> {
        if self.file.is_none() {
            return Ok(());
        }
        self.buf.clear();
        encode_entry(&mut self.buf, stream, log, time);
        let len = self.buf.len() as u64;
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + len > max {
                self.rotate()?;
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.write_all(&self.buf)
            .map_err(log_err("write", &self.path))?;
        self.size += len;
        // A buffer grown by one huge entry is not kept for the container's lifetime.
        if self.buf.capacity() > 4 * MAX_LINE {
            self.buf = Vec::new();
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogFileError> {
        // Close first: the old file must not be written after it is renamed.
        self.file = None;
        if self.max_file < 2 {
            // Replace rather than truncate, so a follower holding the old file reads it to its
            // end and then notices the new inode.
            remove_if_exists(&self.path)?;
        } else {
            let numbered = |n: u32| rotated_path(&self.path, n);
            remove_if_exists(&numbered(self.max_file - 1))?;
            for n in (1..self.max_file - 1).rev() {
                rename_if_exists(&numbered(n), &numbered(n + 1))?;
            }
            rename_if_exists(&self.path, &numbered(1))?;
        }
        self.file = Some(open_log(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

/// `<path>.<n>`: the n-th newest rotated file.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_log(path: &Path) -> Result<File, LogFileError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(log_err("open", path))
}

fn remove_if_exists(path: &Path) -> Result<(), LogFileError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(log_err("remove", path)(e)),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> Result<(), LogFileError> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(log_err("rotate", from)(e)),
        _ => Ok(()),
    }
}

/// Cuts one stream's bytes into log entries exactly as Docker's copier does: each line with
/// its `\n`; a line reaching [`MAX_LINE`] bytes is emitted in [`MAX_LINE`]-byte pieces without
/// `\n`, all pieces of one line stamped with the first piece's time; what is left when the
/// stream ends is emitted as it is.
pub struct LineSplitter {
    stream: LogStream,
    buf: Vec<u8>,
    /// The time of the first piece of a line that is being split.
    partial_time: Option<String>,
}

impl LineSplitter {
    pub fn new(stream: LogStream) -> LineSplitter {
        LineSplitter {
            stream,
            buf: Vec::new(),
            partial_time: None,
        }
    }

    pub fn stream(&self) -> LogStream {
        self.stream
    }

    /// Logs the complete lines in `data` (read at `now`), keeping an incomplete tail.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        now: &str,
        w: &mut LogWriter,
    ) -> Result<(), LogFileError> {
        let mut result = Ok(());
        while !data.is_empty() {
            let take = data.len().min(MAX_LINE - self.buf.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            let r = self.emit_lines(now, w);
            // Keep consuming after a write error: the container's output must keep flowing.
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// The stream ended: logs what is left of an unterminated last line.
    pub fn finish(&mut self, now: &str, w: &mut LogWriter) -> Result<(), LogFileError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let time = self.partial_time.take().unwrap_or_else(|| now.to_string());
        let r = w.write_entry(self.stream, &self.buf, &time);
        self.buf = Vec::new();
        r
    }

    fn emit_lines(&mut self, now: &str, w: &mut LogWriter) -> Result<(), LogFileError> {
        let mut result = Ok(());
        let mut p = 0;
        while let Some(q) = self.buf[p..].iter().position(|&b| b == b'\n') {
            let line = &self.buf[p..p + q + 1];
            let time = self.partial_time.take();
            let r = w.write_entry(self.stream, line, time.as_deref().unwrap_or(now));
            if result.is_ok() {
                result = r;
            }
            p += q + 1;
        }
        if p == 0 && self.buf.len() == MAX_LINE {
            let time = self.partial_time.get_or_insert_with(|| now.to_string());
            let r = w.write_entry(self.stream, &self.buf, time);
            if result.is_ok() {
                result = r;
            }
            self.buf.clear();
        } else {
            self.buf.drain(..p);
        }
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            // Idle containers hold no buffer memory.
            self.buf = Vec::new();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(dir: &Path, max_size: Option<u64>, max_file: u32) -> LogSpec {
        LogSpec {
            driver: "json-file".into(),
            path: dir.join("c-json.log"),
            max_size,
            max_file,
        }
    }

    fn entry(stream: LogStream, log: &[u8], time: &str) -> String {
        let mut v = Vec::new();
        encode_entry(&mut v, stream, log, time);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn entry_is_byte_exact() {
        assert_eq!(
            entry(
                LogStream::Stdout,
                b"hello\n",
                "2025-01-02T03:04:05.123456789Z"
            ),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2025-01-02T03:04:05.123456789Z\"}\n"
        );
        assert_eq!(
            entry(LogStream::Stderr, b"x", "1970-01-01T00:00:00Z"),
            "{\"log\":\"x\",\"stream\":\"stderr\",\"time\":\"1970-01-01T00:00:00Z\"}\n"
        );
    }

    #[test]
    fn go_time_format_trims_the_fraction() {
        assert_eq!(
            format_unix(1_735_787_045, 123_456_789),
            "2025-01-02T03:04:05.123456789Z"
        );
        assert_eq!(
            format_unix(1_735_787_045, 120_000_000),
            "2025-01-02T03:04:05.12Z"
        );
        assert_eq!(
            format_unix(1_735_787_045, 100),
            "2025-01-02T03:04:05.0000001Z"
        );
        assert_eq!(format_unix(1_735_787_045, 0), "2025-01-02T03:04:05Z");
        assert_eq!(format_unix(0, 0), "1970-01-01T00:00:00Z");
        // Leap day, end of a leap year, a century that is not a leap year.
        assert_eq!(
            format_unix(951_782_400, 5),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(format_unix(1_735_689_599, 0), "2024-12-31T23:59:59Z");
        assert_eq!(format_unix(4_107_542_400, 0), "2100-03-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_735_787_045, 500_000_000);
        assert_eq!(rfc3339_nano(t), "2025-01-02T03:04:05.5Z");
        let before = UNIX_EPOCH - Duration::new(0, 250_000_000);
        assert_eq!(rfc3339_nano(before), "1969-12-31T23:59:59.75Z");
    }

    #[test]
    fn time_format_matches_chrono_over_a_range() {
        use chrono::{DateTime, Utc};
        for secs in (-86_400 * 800..86_400 * 365 * 300).step_by(86_400 * 7 + 3_601) {
            let ours = format_unix(secs, 0);
            let theirs = DateTime::<Utc>::from_timestamp(secs, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn escaping_matches_dockerd() {
        let esc = |s: &[u8]| {
            let mut v = Vec::new();
            escape_json(&mut v, s);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(esc(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            esc(b"<a href='x'>&</a>"),
            r#""\u003ca href='x'\u003e\u0026\u003c/a\u003e""#
        );
        assert_eq!(
            esc(b"\t\r\n\x00\x1b\x7f"),
            "\"\\u0009\\r\\n\\u0000\\u001b\x7f\""
        );
        assert_eq!(esc("é€😀\u{fffd}".as_bytes()), "\"é€😀\u{fffd}\"");
        assert_eq!(esc("a\u{2028}b\u{2029}".as_bytes()), r#""a\u2028b\u2029""#);
        // Invalid UTF-8: one \ufffd per byte that does not start a valid sequence (Go's
        // DecodeRune), including truncated sequences, surrogates and overlong forms.
        assert_eq!(esc(b"\xff"), r#""\ufffd""#);
        assert_eq!(esc(b"\xe2\x82A"), r#""\ufffd\ufffdA""#);
        assert_eq!(esc(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#);
        assert_eq!(esc(b"\xc0\xaf"), r#""\ufffd\ufffd""#);
        assert_eq!(esc(b"\xf4\x90\x80\x80"), r#""\ufffd\ufffd\ufffd\ufffd""#);
        assert_eq!(esc(b"ok\xe2\x82"), r#""ok\ufffd\ufffd""#);
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn splitter_logs_lines_pieces_and_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), None, 1);
        let mut w = LogWriter::open(&spec).unwrap();
        let mut out = LineSplitter::new(LogStream::Stdout);
        out.feed(b"one\ntw", "T1", &mut w).unwrap();
        out.feed(b"o\n\nthr", "T2", &mut w).unwrap();
        let long = vec![b'x'; 2 * MAX_LINE + 10];
        out.feed(&long, "T3", &mut w).unwrap();
        out.feed(b"y\nend", "T4", &mut w).unwrap();
        out.finish("T5", &mut w).unwrap();
        let got = lines(&spec.path);
        let logs: Vec<(&str, &str)> = got
            .iter()
            .map(|v| (v["log"].as_str().unwrap_or(""), v["time"].as_str().unwrap()))
            .collect();
        let piece1 = format!("thr{}", "x".repeat(MAX_LINE - 3));
        let piece2 = "x".repeat(MAX_LINE);
        let last = format!("{}y\n", "x".repeat(13));
        assert_eq!(
            logs,
            vec![
                ("one\n", "T1"),
                ("two\n", "T2"),
                ("\n", "T2"),
                (piece1.as_str(), "T3"),
                (piece2.as_str(), "T3"),
                (last.as_str(), "T3"),
                ("end", "T5"),
            ]
        );
        assert!(got.iter().all(|v| v["stream"] == "stdout"));
    }

    #[test]
    fn driver_none_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = spec(dir.path(), Some(10), 3);
        spec.driver = "none".into();
        let mut w = LogWriter::open(&spec).unwrap();
        assert!(!w.enabled());
        w.write_entry(LogStream::Stdout, b"x\n", "T").unwrap();
        assert!(!spec.path.exists());
    }

    fn write_n(w: &mut LogWriter, from: usize, to: usize) {
        for i in from..to {
            w.write_entry(
                LogStream::Stdout,
                format!("line {i:03}\n").as_bytes(),
                "2025-01-01T00:00:00Z",
            )
            .unwrap();
        }
    }

    #[test]
    fn rotation_keeps_max_file_files_each_within_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let one = entry(LogStream::Stdout, b"line 000\n", "2025-01-01T00:00:00Z").len() as u64;
        let spec = spec(dir.path(), Some(3 * one + 1), 3);
        let mut w = LogWriter::open(&spec).unwrap();
        write_n(&mut w, 0, 20);
        drop(w);
        let read = |p: PathBuf| -> Vec<String> {
            lines(&p)
                .iter()
                .map(|v| v["log"].as_str().unwrap().trim_end().to_string())
                .collect()
        };
        assert_eq!(read(spec.path.clone()), ["line 018", "line 019"]);
        assert_eq!(
            read(rotated_path(&spec.path, 1)),
            ["line 015", "line 016", "line 017"]
        );
        assert_eq!(
            read(rotated_path(&spec.path, 2)),
            ["line 012", "line 013", "line 014"]
        );
        assert!(!rotated_path(&spec.path, 3).exists());
        // Reopening appends and keeps counting the existing size.
        let mut w = LogWriter::open(&spec).unwrap();
        write_n(&mut w, 20, 22);
        assert_eq!(read(spec.path.clone()), ["line 021"]);
        assert_eq!(
            read(rotated_path(&spec.path, 1)),
            ["line 018", "line 019", "line 020"]
        );
    }

    #[test]
    fn rotation_with_one_file_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let one = entry(LogStream::Stdout, b"line 000\n", "2025-01-01T00:00:00Z").len() as u64;
        let spec = spec(dir.path(), Some(2 * one), 1);
        let mut w = LogWriter::open(&spec).unwrap();
        write_n(&mut w, 0, 5);
        let got = lines(&spec.path);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["log"], "line 004\n");
        assert!(!rotated_path(&spec.path, 1).exists());
        // An entry bigger than max_size still goes into a file of its own.
        let big = vec![b'z'; 1000];
        w.write_entry(LogStream::Stderr, &big, "T").unwrap();
        let got = lines(&spec.path);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["stream"], "stderr");
    }
}
