//! Test helpers (test builds only): a client that builds frames from parts (header blocks via
//! our own HPACK encoder), and a parse of the connection's output into frames, so each test
//! states the bytes it sends and the exact frames it expects back.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::conn::{ConnError, Connection, Event};
use super::frame::{self, ErrorCode};
use super::hpack;
use super::limits::Limits;

/// One frame of the server's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Bytes,
}

impl Out {
    /// The error code of an RST_STREAM or GOAWAY.
    pub fn code(&self) -> ErrorCode {
        let at = if self.kind == frame::GOAWAY { 4 } else { 0 };
        let b: [u8; 4] = self.payload[at..at + 4].try_into().unwrap();
        ErrorCode::from_u32(u32::from_be_bytes(b))
    }

    pub fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }
}

/// Splits output bytes into frames (panics on a partial frame: output is always whole).
pub fn frames(mut out: &[u8]) -> Vec<Out> {
    let mut v = Vec::new();
    while !out.is_empty() {
        let head = frame::Head::parse(out[..9].try_into().unwrap());
        let end = 9 + head.len as usize;
        v.push(Out {
            kind: head.kind,
            flags: head.flags,
            stream: head.stream,
            payload: Bytes::copy_from_slice(&out[9..end]),
        });
        out = &out[end..];
    }
    v
}

pub fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    frame::put_head(&mut b, payload.len(), kind, flags, stream);
    b.put_slice(payload);
    b.to_vec()
}

pub fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut b = BytesMut::new();
    frame::put_settings(&mut b, params);
    b.to_vec()
}

pub fn settings_ack() -> Vec<u8> {
    raw(frame::SETTINGS, frame::FLAG_ACK, 0, b"")
}

pub fn ping(ack: bool, payload: [u8; 8]) -> Vec<u8> {
    raw(
        frame::PING,
        if ack { frame::FLAG_ACK } else { 0 },
        0,
        &payload,
    )
}

pub fn data(stream: u32, payload: &[u8], end_stream: bool) -> Vec<u8> {
    let flags = if end_stream {
        frame::FLAG_END_STREAM
    } else {
        0
    };
    raw(frame::DATA, flags, stream, payload)
}

pub fn rst(stream: u32, code: ErrorCode) -> Vec<u8> {
    raw(frame::RST_STREAM, 0, stream, &code.as_u32().to_be_bytes())
}

pub fn window_update(stream: u32, inc: u32) -> Vec<u8> {
    raw(frame::WINDOW_UPDATE, 0, stream, &inc.to_be_bytes())
}

pub fn priority(stream: u32, dependency: u32) -> Vec<u8> {
    let mut p = dependency.to_be_bytes().to_vec();
    p.push(15);
    raw(frame::PRIORITY, 0, stream, &p)
}

/// A plain GET's fields.
pub fn get(path: &str) -> Vec<(String, String)> {
    [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "example.com"),
        (":path", path),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

pub fn post(path: &str, len: Option<u64>) -> Vec<(String, String)> {
    let mut f = get(path);
    f[0].1 = "POST".into();
    if let Some(len) = len {
        f.push(("content-length".into(), len.to_string()));
    }
    f
}

/// Events without their payloads, for assertion messages.
pub fn summary(events: &[Event]) -> String {
    let short: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Data {
                id,
                data,
                end_stream,
            } => {
                format!("Data({id}, {} bytes, end={end_stream})", data.len())
            }
            Event::Request { id, end_stream, .. } => format!("Request({id}, end={end_stream})"),
            other => format!("{other:?}"),
        })
        .collect();
    short.join(", ")
}

/// A client side: its HPACK encoder, the connection under test, a clock.
pub struct Peer {
    pub conn: Connection,
    pub enc: hpack::Encoder,
    pub events: Vec<Event>,
    pub now: Instant,
}

impl Peer {
    /// A connection with `limits` after the handshake: preface, empty SETTINGS, our SETTINGS
    /// acknowledged; its output and events drained.
    pub fn new(limits: Limits) -> Peer {
        let mut p = Peer::fresh(limits);
        let mut hello = frame::PREFACE.to_vec();
        hello.extend(settings(&[]));
        hello.extend(settings_ack());
        p.send(&hello).unwrap();
        p.out();
        p
    }

    pub fn fresh(limits: Limits) -> Peer {
        let now = Instant::now();
        Peer {
            conn: Connection::new_at(limits, now),
            enc: hpack::Encoder::new(hpack::DEFAULT_TABLE_SIZE),
            events: Vec::new(),
            now,
        }
    }

    pub fn default() -> Peer {
        Peer::new(Limits::default())
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
    }

    /// Feeds bytes; the input must be consumed entirely (whole frames).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        let mut input = BytesMut::from(bytes);
        let r = self.conn.recv_at(&mut input, &mut self.events, self.now);
        if r.is_ok() {
            assert!(input.is_empty(), "{} bytes left unconsumed", input.len());
        }
        r
    }

    /// The frames queued since the last call.
    pub fn out(&mut self) -> Vec<Out> {
        frames(&self.conn.take_output())
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// A header block for `fields`.
    pub fn block(&mut self, fields: &[(String, String)]) -> Vec<u8> {
        let mut b = BytesMut::new();
        self.enc.encode(
            fields
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false)),
            &mut b,
        );
        b.to_vec()
    }

    /// HEADERS (END_HEADERS) with `fields`.
    pub fn headers(
        &mut self,
        stream: u32,
        fields: &[(String, String)],
        end_stream: bool,
    ) -> Vec<u8> {
        let block = self.block(fields);
        let mut flags = frame::FLAG_END_HEADERS;
        if end_stream {
            flags |= frame::FLAG_END_STREAM;
        }
        raw(frame::HEADERS, flags, stream, &block)
    }

    /// Opens stream `id` with a GET (END_STREAM) and checks the Request event.
    pub fn open_get(&mut self, id: u32) {
        let h = self.headers(id, &get("/"), true);
        self.send(&h).unwrap();
        let ev = self.take_events();
        assert!(
            matches!(ev.as_slice(), [Event::Request { id: i, end_stream: true, .. }] if *i == id),
            "{}",
            summary(&ev)
        );
    }

    /// Opens stream `id` with a POST whose body follows.
    pub fn open_post(&mut self, id: u32, len: Option<u64>) {
        let h = self.headers(id, &post("/up", len), false);
        self.send(&h).unwrap();
        let ev = self.take_events();
        assert!(
            matches!(ev.as_slice(), [Event::Request { id: i, end_stream: false, .. }] if *i == id),
            "{}",
            summary(&ev)
        );
    }

    /// Expects exactly one RST_STREAM on `stream` with `code` in the output.
    pub fn expect_rst(&mut self, stream: u32, code: ErrorCode) {
        let out = self.out();
        assert!(
            matches!(out.as_slice(), [f] if f.kind == frame::RST_STREAM && f.stream == stream && f.code() == code),
            "expected RST_STREAM({stream}, {code:?}), got {out:?}"
        );
    }

    /// Expects `r` to be a connection error with `code` and a GOAWAY with it as the last frame.
    pub fn expect_goaway(&mut self, r: Result<(), ConnError>, code: ErrorCode) -> ConnError {
        let e = match r {
            Err(e) => e,
            Ok(()) => panic!("expected a connection error {code:?}, got Ok"),
        };
        assert_eq!(e.code, code, "{e:?}");
        let out = self.out();
        let last = out.last().expect("a GOAWAY");
        assert_eq!((last.kind, last.stream), (frame::GOAWAY, 0), "{out:?}");
        assert_eq!(last.code(), code);
        e
    }
}
