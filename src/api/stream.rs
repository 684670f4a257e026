//! Wire formats the server and the client share: Docker's multiplexed stdio frames
//! (8-byte header `[stream, 0, 0, 0, len as u32 BE]` then the payload), newline-delimited
//! JSON streams (pull progress, events), and the response body type.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use serde::de::DeserializeOwned;

use crate::engine::container::{OutputChunk, OutputStream, StdStream};

/// `Content-Type` of a multiplexed stdio stream (no tty).
pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
/// `Content-Type` of a raw stdio stream (tty).
pub const RAW: &str = "application/vnd.docker.raw-stream";

/// Every response body the server sends: whole, empty or streamed.
pub type Body = UnsyncBoxBody<Bytes, io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body that sends each item as soon as the stream yields it.
pub fn streaming<S>(stream: S) -> Body
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    StreamBody::new(stream.map(|b| Ok::<_, io::Error>(Frame::data(b)))).boxed_unsync()
}

fn stream_byte(s: StdStream) -> u8 {
    match s {
        StdStream::Stdin => 0,
        StdStream::Stdout => 1,
        StdStream::Stderr => 2,
    }
}

/// One chunk as it goes on the wire: raw with a tty, else framed.
pub fn encode(chunk: &OutputChunk, tty: bool) -> Bytes {
    if tty {
        return chunk.data.clone();
    }
    let mut out = BytesMut::with_capacity(chunk.data.len() + 8);
    // A frame's length is a u32; chunks are pipe-sized, but split anything larger.
    for piece in chunk.data.chunks(u32::MAX as usize) {
        out.extend_from_slice(&[stream_byte(chunk.stream), 0, 0, 0]);
        out.extend_from_slice(&(piece.len() as u32).to_be_bytes());
        out.extend_from_slice(piece);
    }
    out.freeze()
}

/// Incremental parser of multiplexed frames.
#[derive(Default)]
pub struct Demuxer {
    buf: BytesMut,
}

impl Demuxer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_chunk(&mut self) -> Result<Option<OutputChunk>, String> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let stream = match self.buf[0] {
            0 => StdStream::Stdin,
            1 => StdStream::Stdout,
            // 3 is Docker's "system error" stream: shown like stderr.
            2 | 3 => StdStream::Stderr,
            other => return Err(format!("unrecognized stream header byte {other}")),
        };
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        self.buf.advance(8);
        let data = self.buf.split_to(len).freeze();
        Ok(Some(OutputChunk { stream, data }))
    }

    /// Bytes of an unfinished frame left when the stream ended.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Splits a byte stream of multiplexed frames into chunks; a malformed stream ends it.
pub fn demux<S, E>(bytes: S) -> OutputStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
{
    let state = (Box::pin(bytes), Demuxer::default(), false);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut bytes, mut demux, mut done)| async move {
            loop {
                if done {
                    return None;
                }
                match demux.next_chunk() {
                    Ok(Some(chunk)) => return Some((chunk, (bytes, demux, done))),
                    Ok(None) => {}
                    Err(_) => return None,
                }
                match bytes.next().await {
                    Some(Ok(b)) => demux.push(&b),
                    Some(Err(_)) | None => done = true,
                }
            }
        },
    ))
}

/// A raw (tty) byte stream as stdout chunks.
pub fn raw<S, E>(bytes: S) -> OutputStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Send + 'static,
{
    Box::pin(
        bytes
            .take_while(|r| std::future::ready(r.is_ok()))
            .filter_map(|r| async move {
                r.ok().filter(|b| !b.is_empty()).map(|data| OutputChunk {
                    stream: StdStream::Stdout,
                    data,
                })
            }),
    )
}

/// One JSON value and its newline, as JSON streams send them.
pub fn json_line<T: serde::Serialize>(value: &T) -> Bytes {
    let mut v = serde_json::to_vec(value).unwrap_or_else(|e| {
        // Only non-string map keys make serialization fail; say so rather than panic.
        serde_json::to_vec(&serde_json::json!({ "error": e.to_string() })).unwrap_or_default()
    });
    v.push(b'\n');
    Bytes::from(v)
}

/// Parses a stream of newline-delimited JSON values.
pub fn json_lines<T, S, E>(bytes: S) -> impl Stream<Item = Result<T, String>> + Send
where
    T: DeserializeOwned + Send + 'static,
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    let state = (Box::pin(bytes), BytesMut::new(), false);
    futures_util::stream::unfold(state, |(mut bytes, mut buf, mut done)| async move {
        loop {
            if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                let line = buf.split_to(pos + 1);
                let text = line.trim_ascii();
                if text.is_empty() {
                    continue;
                }
                let item = serde_json::from_slice::<T>(text).map_err(|e| {
                    format!(
                        "unreadable JSON from the daemon ({e}): {}",
                        String::from_utf8_lossy(text)
                    )
                });
                return Some((item, (bytes, buf, done)));
            }
            if done {
                if buf.trim_ascii().is_empty() {
                    return None;
                }
                // A last value without its newline.
                buf.extend_from_slice(b"\n");
                continue;
            }
            match bytes.next().await {
                Some(Ok(b)) => buf.extend_from_slice(&b),
                Some(Err(e)) => {
                    done = true;
                    buf.clear();
                    return Some((
                        Err(format!("the daemon's stream broke: {e}")),
                        (bytes, buf, done),
                    ));
                }
                None => done = true,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(stream: StdStream, s: &str) -> OutputChunk {
        OutputChunk {
            stream,
            data: Bytes::copy_from_slice(s.as_bytes()),
        }
    }

    #[test]
    fn frames_round_trip_across_arbitrary_splits() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&encode(&chunk(StdStream::Stdout, "out\n"), false));
        wire.extend_from_slice(&encode(&chunk(StdStream::Stderr, "err\n"), false));
        // An empty chunk puts nothing on the wire.
        assert!(encode(&chunk(StdStream::Stdout, ""), false).is_empty());
        assert_eq!(&wire[..8], &[1, 0, 0, 0, 0, 0, 0, 4]);
        for split in 0..wire.len() {
            let mut d = Demuxer::default();
            let mut got = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                d.push(part);
                while let Some(c) = d.next_chunk().unwrap() {
                    got.push((c.stream, c.data));
                }
            }
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!(got[0], (StdStream::Stdout, Bytes::from_static(b"out\n")));
            assert_eq!(got[1], (StdStream::Stderr, Bytes::from_static(b"err\n")));
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn a_bad_header_is_an_error() {
        let mut d = Demuxer::default();
        d.push(&[9, 0, 0, 0, 0, 0, 0, 1, b'x']);
        assert!(d.next_chunk().is_err());
    }

    #[test]
    fn json_lines_parse_split_values_and_a_last_one_without_newline() {
        let parts: Vec<Result<Bytes, String>> = vec![
            Ok(Bytes::from_static(b"{\"a\":1}\n{\"a\"")),
            Ok(Bytes::from_static(b":2}\n\n{\"a\":3}")),
        ];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got: Vec<serde_json::Value> = rt.block_on(
            json_lines(futures_util::stream::iter(parts))
                .map(|r| r.unwrap())
                .collect(),
        );
        assert_eq!(got.len(), 3);
        assert_eq!(got[2]["a"], 3);
    }
}
