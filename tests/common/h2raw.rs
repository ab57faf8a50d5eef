//! A raw-frame HTTP/2 client for conformance and abuse tests (RFC 9113): it connects by prior
//! knowledge over plain TCP (h2c, §3.3) or over TLS offering ALPN `h2` (§3.2) — whichever the
//! thread's [`super::Transport`] gives the gateway address — and sends any frame at all (any
//! type, flags, stream id, length, payload; malformed on purpose when a test wants it).
//! Request header blocks come from [`Block`], a minimal HPACK encoder of our own: literal
//! fields without indexing and without Huffman (RFC 7541 §6.2.2: `0x00`, length, name, length,
//! value), trivially correct, plus indexed fields, incremental indexing, size updates and raw
//! Huffman strings for the HPACK tests. Response header blocks are decoded with the server's
//! own `tollgate::http2::hpack::Decoder` (an independent client check is tests/h2_clients.rs:
//! curl, nghttp and the Python `h2` package).
//!
//! Reading: [`H2::next`] returns one [`In`] — a frame, or a whole decoded header block
//! (HEADERS + CONTINUATION) — or tells the connection ended or the liveness timeout passed.
//! The `expect_*` helpers read until the frame they want, skipping the connection's
//! housekeeping (SETTINGS, WINDOW_UPDATE, PING acks), and panic with every frame seen so a
//! failure names the evidence. Server SETTINGS are acknowledged automatically.
//! Left out: server push (we never enable it), priorities beyond sending PRIORITY frames.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tollgate::http2::hpack::Decoder;

use super::conn::{self, Conn};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Liveness bound for every read (not a performance threshold).
pub const LIVE: Duration = Duration::from_secs(10);

/// Frame types (RFC 9113 §6).
pub mod ty {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6).
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Error codes (RFC 9113 §7).
pub mod code {
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const INTERNAL_ERROR: u32 = 0x2;
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub const SETTINGS_TIMEOUT: u32 = 0x4;
    pub const STREAM_CLOSED: u32 = 0x5;
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const CONNECT_ERROR: u32 = 0xa;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
    pub const INADEQUATE_SECURITY: u32 = 0xc;
    pub const HTTP_1_1_REQUIRED: u32 = 0xd;
}

/// SETTINGS identifiers (RFC 9113 §6.5.2).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

pub fn type_name(t: u8) -> String {
    match t {
        ty::DATA => "DATA".into(),
        ty::HEADERS => "HEADERS".into(),
        ty::PRIORITY => "PRIORITY".into(),
        ty::RST_STREAM => "RST_STREAM".into(),
        ty::SETTINGS => "SETTINGS".into(),
        ty::PUSH_PROMISE => "PUSH_PROMISE".into(),
        ty::PING => "PING".into(),
        ty::GOAWAY => "GOAWAY".into(),
        ty::WINDOW_UPDATE => "WINDOW_UPDATE".into(),
        ty::CONTINUATION => "CONTINUATION".into(),
        other => format!("type{other:#x}"),
    }
}

pub fn code_name(c: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES
        .get(c as usize)
        .map_or_else(|| format!("code{c:#x}"), |n| n.to_string())
}

/// One frame as read off the wire (or to be written).
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.ty {
            ty::RST_STREAM => 0,
            ty::GOAWAY => 4,
            _ => return None,
        };
        self.payload.get(at..at + 4).map(be32)
    }

    /// A GOAWAY's last stream id.
    pub fn last_stream_id(&self) -> Option<u32> {
        (self.ty == ty::GOAWAY)
            .then(|| self.payload.get(..4).map(|b| be32(b) & 0x7fff_ffff))
            .flatten()
    }

    /// A WINDOW_UPDATE's increment.
    pub fn increment(&self) -> Option<u32> {
        (self.ty == ty::WINDOW_UPDATE)
            .then(|| self.payload.get(..4).map(|b| be32(b) & 0x7fff_ffff))
            .flatten()
    }

    /// A SETTINGS frame's (id, value) pairs.
    pub fn settings(&self) -> Vec<(u16, u32)> {
        self.payload
            .chunks_exact(6)
            .map(|c| (u16::from_be_bytes([c[0], c[1]]), be32(&c[2..6])))
            .collect()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}(stream={}, flags={:#x}, len={}",
            type_name(self.ty),
            self.stream,
            self.flags,
            self.payload.len()
        )?;
        if let Some(c) = self.error_code() {
            write!(f, ", code={}", code_name(c))?;
        }
        if let Some(l) = self.last_stream_id() {
            let debug = String::from_utf8_lossy(self.payload.get(8..).unwrap_or(&[]));
            write!(f, ", last={l}, debug={debug:?}")?;
        }
        if let Some(i) = self.increment() {
            write!(f, ", increment={i}")?;
        }
        if self.ty == ty::SETTINGS {
            write!(f, ", {:?}", self.settings())?;
        }
        write!(f, ")")
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A frame's bytes with the length taken from the payload (RFC 9113 §4.1). The reserved bit
/// of the stream id is whatever `stream` has.
pub fn frame(t: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    frame_with_len(payload.len() as u32, t, flags, stream, payload)
}

/// A frame whose length field says `len` whatever the payload (for malformed frames).
pub fn frame_with_len(len: u32, t: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(9 + payload.len());
    b.extend_from_slice(&len.to_be_bytes()[1..]);
    b.push(t);
    b.push(flags);
    b.extend_from_slice(&stream.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

/// A SETTINGS payload.
pub fn settings_payload(s: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in s {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    p
}

/// A header block, HPACK-encoded by hand (RFC 7541). Builder style:
/// `Block::request("GET", "/x").lit("accept", "*/*")`.
#[derive(Debug, Default, Clone)]
pub struct Block(pub Vec<u8>);

impl Block {
    pub fn new() -> Block {
        Block(Vec::new())
    }

    /// The four request pseudo-header fields (RFC 9113 §8.3.1), `:scheme` from the thread's
    /// transport and `:authority` `localhost`.
    pub fn request(method: &str, path: &str) -> Block {
        Block::new()
            .lit(":method", method)
            .lit(":scheme", conn::proto())
            .lit(":authority", "localhost")
            .lit(":path", path)
    }

    /// An integer with an N-bit prefix (RFC 7541 §5.1); `high` holds the first byte's bits
    /// above the prefix.
    fn int(&mut self, high: u8, prefix: u8, mut v: usize) {
        let max = (1usize << prefix) - 1;
        if v < max {
            self.0.push(high | v as u8);
            return;
        }
        self.0.push(high | max as u8);
        v -= max;
        while v >= 128 {
            self.0.push((v % 128) as u8 | 0x80);
            v /= 128;
        }
        self.0.push(v as u8);
    }

    /// A string literal without Huffman (RFC 7541 §5.2, H = 0).
    fn string(&mut self, s: &[u8]) {
        self.int(0, 7, s.len());
        self.0.extend_from_slice(s);
    }

    /// Literal header field without indexing, new name (RFC 7541 §6.2.2).
    pub fn lit(self, name: &str, value: &str) -> Block {
        self.lit_bytes(name.as_bytes(), value.as_bytes())
    }

    /// [`Block::lit`] with arbitrary bytes (CR, LF, NUL, uppercase...).
    pub fn lit_bytes(mut self, name: &[u8], value: &[u8]) -> Block {
        self.0.push(0x00);
        self.string(name);
        self.string(value);
        self
    }

    /// Indexed header field (RFC 7541 §6.1).
    pub fn indexed(mut self, index: usize) -> Block {
        self.int(0x80, 7, index);
        self
    }

    /// Literal without indexing, indexed name (RFC 7541 §6.2.2).
    pub fn lit_indexed_name(mut self, index: usize, value: &str) -> Block {
        self.int(0x00, 4, index);
        self.string(value.as_bytes());
        self
    }

    /// Literal with incremental indexing, new name (RFC 7541 §6.2.1).
    pub fn incremental(mut self, name: &str, value: &str) -> Block {
        self.0.push(0x40);
        self.string(name.as_bytes());
        self.string(value.as_bytes());
        self
    }

    /// Dynamic table size update (RFC 7541 §6.3).
    pub fn size_update(mut self, size: usize) -> Block {
        self.int(0x20, 5, size);
        self
    }

    /// A literal (no indexing) whose value is the given Huffman-coded bytes, taken as they
    /// are (RFC 7541 §5.2, H = 1), for bad-padding / EOS tests.
    pub fn huffman_value(mut self, name: &str, huffman: &[u8]) -> Block {
        self.0.push(0x00);
        self.string(name.as_bytes());
        self.int(0x80, 7, huffman.len());
        self.0.extend_from_slice(huffman);
        self
    }

    /// Raw bytes appended to the block.
    pub fn raw(mut self, b: &[u8]) -> Block {
        self.0.extend_from_slice(b);
        self
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What [`H2::next`] read.
#[derive(Debug, Clone)]
pub enum In {
    /// Any frame other than HEADERS/CONTINUATION.
    Frame(Frame),
    /// A whole header block (HEADERS + CONTINUATION), decoded.
    Headers {
        stream: u32,
        fields: Vec<(String, String)>,
        end_stream: bool,
    },
    /// EOF, or a reset / TLS error: the server closed the connection.
    Closed(String),
    /// Nothing arrived within [`LIVE`].
    Timeout,
}

impl In {
    fn is_housekeeping(&self) -> bool {
        match self {
            In::Frame(f) => {
                f.ty == ty::SETTINGS
                    || f.ty == ty::WINDOW_UPDATE
                    || (f.ty == ty::PING && f.has(flag::ACK))
            }
            _ => false,
        }
    }
}

/// A response as [`H2::response`] collected it.
#[derive(Debug, Clone, Default)]
pub struct H2Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// DATA frames received (their payload sizes), for flow-control tests.
    pub data_frames: Vec<usize>,
}

impl H2Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Which error frame [`H2::expect_error`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFrame {
    /// RST_STREAM on the stream: a stream error.
    Stream,
    /// GOAWAY: a connection error.
    Connection,
}

/// A raw HTTP/2 client connection.
pub struct H2 {
    pub conn: Conn,
    buf: Vec<u8>,
    pub decoder: Decoder,
    /// Our send windows (RFC 9113 §6.9): the connection's, and per stream the credit the
    /// server granted by WINDOW_UPDATE (the initial size is added on first use).
    pub send_conn_window: i64,
    send_stream_credit: BTreeMap<u32, i64>,
    /// The server's SETTINGS values, in the order received.
    pub server_settings: Vec<(u16, u32)>,
    /// Acknowledge the server's SETTINGS as they arrive (RFC 9113 §6.5.3).
    pub auto_ack: bool,
    /// Give back receive window for every DATA frame [`H2::response`] reads.
    pub auto_window: bool,
    /// Every frame read so far (the evidence in panic messages).
    pub seen: Vec<String>,
}

impl H2 {
    /// Connects to `addr` without sending anything: TLS with ALPN `h2` when `addr` is a TLS
    /// gateway address (asserting the server selected `h2`), else plain TCP.
    pub fn connect(addr: SocketAddr) -> H2 {
        let c = if conn::is_tls(addr) {
            Conn::connect_alpn(addr, &[b"h2"])
        } else {
            Conn::connect(addr)
        }
        .expect("connect to gateway");
        if c.is_tls() {
            assert_eq!(
                c.alpn().as_deref(),
                Some(&b"h2"[..]),
                "the server must select ALPN h2 (RFC 9113 §3.2)"
            );
        }
        c.set_read_timeout(Some(LIVE)).unwrap();
        c.set_write_timeout(Some(LIVE)).unwrap();
        c.set_nodelay(true).unwrap();
        H2 {
            conn: c,
            buf: Vec::new(),
            decoder: Decoder::new(4096, 1 << 20),
            server_settings: Vec::new(),
            send_conn_window: 65_535,
            send_stream_credit: BTreeMap::new(),
            auto_ack: true,
            auto_window: true,
            seen: Vec::new(),
        }
    }

    /// Connects, sends the preface and an empty SETTINGS, and completes the SETTINGS exchange.
    pub fn open(addr: SocketAddr) -> H2 {
        H2::open_with(addr, &[])
    }

    /// [`H2::open`] with our SETTINGS values.
    pub fn open_with(addr: SocketAddr, settings: &[(u16, u32)]) -> H2 {
        let mut h = H2::connect(addr);
        h.settings_handshake(settings);
        h
    }

    /// Sends the preface and SETTINGS, then reads until both the server's SETTINGS arrived
    /// (acknowledged by us) and ours was acknowledged (RFC 9113 §3.4, §6.5.3).
    pub fn settings_handshake(&mut self, settings: &[(u16, u32)]) {
        self.send(PREFACE);
        self.send_frame(ty::SETTINGS, 0, 0, &settings_payload(settings));
        let (mut theirs, mut acked) = (false, false);
        while !(theirs && acked) {
            match self.next() {
                In::Frame(f) if f.ty == ty::SETTINGS && f.has(flag::ACK) => acked = true,
                In::Frame(f) if f.ty == ty::SETTINGS => {
                    assert!(!theirs || acked, "second server SETTINGS before our ack");
                    theirs = true
                }
                In::Frame(f) if f.ty == ty::WINDOW_UPDATE && f.stream == 0 => {}
                other => panic!(
                    "during the SETTINGS exchange: {other:?}; seen {:?}",
                    self.seen
                ),
            }
        }
    }

    /// The server's last value for a setting.
    pub fn server_setting(&self, id: u16) -> Option<u32> {
        self.server_settings
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| *v)
    }

    pub fn try_send(&mut self, b: &[u8]) -> io::Result<()> {
        self.conn.write_all(b)
    }

    pub fn send(&mut self, b: &[u8]) {
        self.try_send(b).expect("client write");
    }

    pub fn send_frame(&mut self, t: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.send(&frame(t, flags, stream, payload));
    }

    /// HEADERS with END_HEADERS (plus `flags`) carrying `block`.
    pub fn headers(&mut self, stream: u32, block: &Block, flags: u8) {
        self.send_frame(
            ty::HEADERS,
            flag::END_HEADERS | flags,
            stream,
            block.bytes(),
        );
    }

    /// A request without a body: HEADERS with END_HEADERS | END_STREAM.
    pub fn get(&mut self, stream: u32, path: &str) {
        self.headers(stream, &Block::request("GET", path), flag::END_STREAM);
    }

    pub fn data(&mut self, stream: u32, body: &[u8], end_stream: bool) {
        let flags = if end_stream { flag::END_STREAM } else { 0 };
        self.send_frame(ty::DATA, flags, stream, body);
    }

    pub fn rst(&mut self, stream: u32, code: u32) {
        self.send_frame(ty::RST_STREAM, 0, stream, &code.to_be_bytes());
    }

    pub fn window_update(&mut self, stream: u32, increment: u32) {
        self.send_frame(ty::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes());
    }

    pub fn settings(&mut self, s: &[(u16, u32)]) {
        self.send_frame(ty::SETTINGS, 0, 0, &settings_payload(s));
    }

    pub fn ping(&mut self, data: [u8; 8]) {
        self.send_frame(ty::PING, 0, 0, &data);
    }

    /// PRIORITY (RFC 9113 §6.3, deprecated but still a valid frame).
    pub fn priority(&mut self, stream: u32, depends_on: u32, weight: u8) {
        let mut p = depends_on.to_be_bytes().to_vec();
        p.push(weight);
        self.send_frame(ty::PRIORITY, 0, stream, &p);
    }

    /// Reads one frame (raw, HEADERS not decoded), or how the connection ended.
    fn read_frame(&mut self) -> Result<Frame, In> {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let f = Frame {
                        ty: self.buf[3],
                        flags: self.buf[4],
                        stream: be32(&self.buf[5..9]) & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    self.seen.push(format!("{f:?}"));
                    return Ok(f);
                }
            }
            let mut tmp = [0u8; 65_536];
            match self.conn.read(&mut tmp) {
                Ok(0) => return Err(self.ended(In::Closed("EOF".into()))),
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(self.ended(In::Timeout))
                }
                Err(e) => return Err(self.ended(In::Closed(e.to_string()))),
            }
        }
    }

    fn ended(&mut self, how: In) -> In {
        self.seen.push(format!("{how:?}"));
        how
    }

    /// The next frame or decoded header block; SETTINGS from the server are recorded and
    /// (with `auto_ack`) acknowledged.
    pub fn next(&mut self) -> In {
        let f = match self.read_frame() {
            Ok(f) => f,
            Err(end) => return end,
        };
        if f.ty == ty::SETTINGS && !f.has(flag::ACK) {
            self.server_settings.extend(f.settings());
            if self.auto_ack {
                let _ = self.try_send(&frame(ty::SETTINGS, flag::ACK, 0, &[]));
            }
        }
        if f.ty == ty::WINDOW_UPDATE {
            let inc = i64::from(f.increment().unwrap_or(0));
            match f.stream {
                0 => self.send_conn_window += inc,
                s => *self.send_stream_credit.entry(s).or_default() += inc,
            }
        }
        if f.ty != ty::HEADERS {
            return In::Frame(f);
        }
        let end_stream = f.has(flag::END_STREAM);
        let stream = f.stream;
        let mut block = header_fragment(&f).unwrap_or_else(|| panic!("bad HEADERS {f:?}"));
        let mut end_headers = f.has(flag::END_HEADERS);
        while !end_headers {
            match self.read_frame() {
                Ok(c) if c.ty == ty::CONTINUATION && c.stream == stream => {
                    block.extend_from_slice(&c.payload);
                    end_headers = c.has(flag::END_HEADERS);
                }
                Ok(other) => panic!("server interleaved {other:?} in a header block (§6.10)"),
                Err(end) => return end,
            }
        }
        let fields = self
            .decoder
            .decode(&Bytes::from(block))
            .unwrap_or_else(|e| panic!("server header block does not decode: {e}"))
            .into_iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(&f.name).into_owned(),
                    String::from_utf8_lossy(&f.value).into_owned(),
                )
            })
            .collect::<Vec<_>>();
        self.seen.push(format!("  fields {fields:?}"));
        In::Headers {
            stream,
            fields,
            end_stream,
        }
    }

    /// Like [`H2::next`], skipping SETTINGS, WINDOW_UPDATE and PING acks.
    pub fn next_significant(&mut self) -> In {
        loop {
            let i = self.next();
            if !i.is_housekeeping() {
                return i;
            }
        }
    }

    /// Like [`H2::next`], skipping only WINDOW_UPDATE frames (for tests about SETTINGS and
    /// PING acks).
    pub fn next_non_window(&mut self) -> In {
        loop {
            match self.next() {
                In::Frame(f) if f.ty == ty::WINDOW_UPDATE => {}
                other => return other,
            }
        }
    }

    /// Sends `body` on `stream` as DATA frames within the server's flow-control windows and
    /// its SETTINGS_MAX_FRAME_SIZE, reading WINDOW_UPDATEs as needed (§6.9.1); END_STREAM on
    /// the last frame when `end`. Anything but housekeeping arriving meanwhile fails.
    pub fn send_body(&mut self, stream: u32, body: &[u8], end: bool) {
        let initial = i64::from(
            self.server_setting(setting::INITIAL_WINDOW_SIZE)
                .unwrap_or(65_535),
        );
        let max_frame = self
            .server_setting(setting::MAX_FRAME_SIZE)
            .unwrap_or(16_384) as usize;
        let mut sent: i64 = 0;
        let mut rest = body;
        loop {
            let stream_window =
                initial + self.send_stream_credit.get(&stream).copied().unwrap_or(0) - sent;
            let room = stream_window.min(self.send_conn_window).max(0) as usize;
            if rest.is_empty() {
                if end {
                    self.data(stream, &[], true);
                }
                return;
            }
            if room == 0 {
                match self.next() {
                    In::Frame(f) if f.ty == ty::WINDOW_UPDATE || f.ty == ty::SETTINGS => {}
                    In::Frame(f) if f.ty == ty::PING => {}
                    other => panic!("while sending a body: {other:?}; seen {:#?}", self.seen),
                }
                continue;
            }
            let n = room.min(max_frame).min(rest.len());
            let last = end && n == rest.len();
            self.data(stream, &rest[..n], last);
            rest = &rest[n..];
            sent += n as i64;
            self.send_conn_window -= n as i64;
            if last {
                return;
            }
        }
    }

    /// Sends a PING and returns everything that arrived before its ACK (the server handles
    /// frames in order, §6.7). Fails if the connection ends first.
    pub fn ping_barrier(&mut self) -> Vec<In> {
        let data = *b"barrier!";
        self.ping(data);
        let mut before = Vec::new();
        loop {
            match self.next() {
                In::Frame(f) if f.ty == ty::PING && f.has(flag::ACK) && f.payload == data => {
                    return before
                }
                i @ (In::Closed(_) | In::Timeout) => {
                    panic!(
                        "connection ended before the PING ACK: {i:?}; seen {:#?}",
                        self.seen
                    )
                }
                i => before.push(i),
            }
        }
    }

    /// Reads until a GOAWAY and asserts its code (a connection error, RFC 9113 §5.4.1); stream
    /// frames before it are allowed (responses to earlier requests). Returns the GOAWAY.
    pub fn expect_goaway(&mut self, code: u32) -> Frame {
        loop {
            match self.next() {
                In::Frame(f) if f.ty == ty::GOAWAY => {
                    assert_eq!(
                        code_name(f.error_code().expect("GOAWAY carries a code")),
                        code_name(code),
                        "GOAWAY code; seen {:#?}",
                        self.seen
                    );
                    return f;
                }
                In::Closed(_) | In::Timeout => {
                    panic!("expected GOAWAY {}; seen {:#?}", code_name(code), self.seen)
                }
                In::Frame(f) if f.ty == ty::RST_STREAM => panic!(
                    "expected a connection error GOAWAY {}, got a stream error; seen {:#?}",
                    code_name(code),
                    self.seen
                ),
                _ => {}
            }
        }
    }

    /// Reads until the server closes the connection (after a GOAWAY); frames still arriving
    /// are allowed, a timeout is not.
    pub fn expect_closed(&mut self) {
        loop {
            match self.next() {
                In::Closed(_) => return,
                In::Timeout => panic!("connection not closed; seen {:#?}", self.seen),
                _ => {}
            }
        }
    }

    /// [`H2::expect_goaway`] then [`H2::expect_closed`]: a connection error as §5.4.1 says.
    pub fn expect_connection_error(&mut self, code: u32) {
        self.expect_goaway(code);
        self.expect_closed();
    }

    /// Reads until RST_STREAM on `stream` and asserts its code (a stream error, §5.4.2).
    /// Fails on a response (HEADERS or DATA) on that stream, a GOAWAY or the end first.
    pub fn expect_rst(&mut self, stream: u32, code: u32) {
        loop {
            match self.next_significant() {
                In::Frame(f) if f.ty == ty::RST_STREAM && f.stream == stream => {
                    assert_eq!(
                        code_name(f.error_code().expect("RST_STREAM carries a code")),
                        code_name(code),
                        "RST_STREAM code on stream {stream}; seen {:#?}",
                        self.seen
                    );
                    return;
                }
                In::Frame(f) if f.stream != stream && f.ty != ty::GOAWAY => {}
                In::Headers { stream: s, .. } if s != stream => {}
                _ => panic!(
                    "expected RST_STREAM {} on stream {stream}; seen {:#?}",
                    code_name(code),
                    self.seen
                ),
            }
        }
    }

    /// Where RFC 9113 lets the server choose a stream or a connection error (e.g. §4.2 for
    /// DATA, §5.1 for frames on closed streams): RST_STREAM(`stream`, `code`) or
    /// GOAWAY(`code`) followed by the close. Anything else fails.
    pub fn expect_error(&mut self, stream: u32, code: u32) -> ErrorFrame {
        loop {
            match self.next_significant() {
                In::Frame(f) if f.ty == ty::RST_STREAM && f.stream == stream => {
                    assert_eq!(
                        code_name(f.error_code().unwrap_or(u32::MAX)),
                        code_name(code),
                        "RST_STREAM code; seen {:#?}",
                        self.seen
                    );
                    return ErrorFrame::Stream;
                }
                In::Frame(f) if f.ty == ty::GOAWAY => {
                    assert_eq!(
                        code_name(f.error_code().unwrap_or(u32::MAX)),
                        code_name(code),
                        "GOAWAY code; seen {:#?}",
                        self.seen
                    );
                    self.expect_closed();
                    return ErrorFrame::Connection;
                }
                In::Frame(f) if f.stream != stream => {}
                In::Headers { stream: s, .. } if s != stream => {}
                _ => panic!(
                    "expected RST_STREAM or GOAWAY {} (stream {stream}); seen {:#?}",
                    code_name(code),
                    self.seen
                ),
            }
        }
    }

    /// Sends a PING and reads until its ACK: proves the connection is alive and everything
    /// sent before was processed without an error (the server answers in order, §6.7).
    /// Fails on any GOAWAY or RST_STREAM, or the end, first.
    pub fn expect_alive(&mut self) {
        let data = *b"alive?!\x01";
        self.ping(data);
        loop {
            match self.next() {
                In::Frame(f) if f.ty == ty::PING && f.has(flag::ACK) && f.payload == data => return,
                In::Frame(f) if f.ty == ty::GOAWAY || f.ty == ty::RST_STREAM => {
                    panic!("expected the connection alive; seen {:#?}", self.seen)
                }
                In::Closed(_) | In::Timeout => {
                    panic!("expected the connection alive; seen {:#?}", self.seen)
                }
                _ => {}
            }
        }
    }

    /// Reads the whole response on `stream` (HEADERS [DATA...] [trailers] to END_STREAM).
    /// Frames of other streams fail the test (use [`H2::responses`] for several).
    pub fn response(&mut self, stream: u32) -> H2Response {
        self.responses(&[stream]).remove(&stream).unwrap()
    }

    /// Reads the responses of all `streams`, interleaved in any order.
    pub fn responses(&mut self, streams: &[u32]) -> BTreeMap<u32, H2Response> {
        let mut out: BTreeMap<u32, H2Response> = BTreeMap::new();
        let mut open: Vec<u32> = streams.to_vec();
        while !open.is_empty() {
            let (stream, end) = match self.next_significant() {
                In::Headers {
                    stream,
                    fields,
                    end_stream,
                } if open.contains(&stream) => {
                    let r = out.entry(stream).or_default();
                    if r.status == 0 {
                        let status = fields
                            .iter()
                            .find(|(n, _)| n == ":status")
                            .and_then(|(_, v)| v.parse().ok())
                            .unwrap_or_else(|| panic!("no :status in {fields:?}"));
                        if (100..200).contains(&status) {
                            continue; // an interim response (§8.1)
                        }
                        r.status = status;
                        r.headers = fields;
                    } else {
                        assert!(end_stream, "trailers must end the stream (§8.1)");
                        r.trailers = fields;
                    }
                    (stream, end_stream)
                }
                In::Frame(f) if f.ty == ty::DATA && open.contains(&f.stream) => {
                    let r = out.entry(f.stream).or_default();
                    assert!(r.status != 0, "DATA before HEADERS on {}", f.stream);
                    let body = data_payload(&f).expect("valid DATA padding");
                    r.body.extend_from_slice(body);
                    r.data_frames.push(body.len());
                    if self.auto_window && !f.payload.is_empty() {
                        let n = f.payload.len() as u32;
                        self.window_update(0, n);
                        if !f.has(flag::END_STREAM) {
                            self.window_update(f.stream, n);
                        }
                    }
                    (f.stream, f.has(flag::END_STREAM))
                }
                other => panic!(
                    "reading responses on {open:?}: unexpected {other:?}; seen {:#?}",
                    self.seen
                ),
            };
            if end {
                open.retain(|s| *s != stream);
            }
        }
        out
    }

    /// A GET on `stream`, its whole response.
    pub fn get_response(&mut self, stream: u32, path: &str) -> H2Response {
        self.get(stream, path);
        self.response(stream)
    }
}

/// The header block fragment of a HEADERS frame: padding and priority fields removed
/// (RFC 9113 §6.2). None when the padding does not fit.
pub fn header_fragment(f: &Frame) -> Option<Vec<u8>> {
    let mut p: &[u8] = &f.payload;
    let mut pad = 0usize;
    if f.has(flag::PADDED) {
        pad = usize::from(*p.first()?);
        p = &p[1..];
    }
    if f.has(flag::PRIORITY) {
        p = p.get(5..)?;
    }
    Some(p.get(..p.len().checked_sub(pad)?)?.to_vec())
}

/// A DATA frame's data without padding (RFC 9113 §6.1).
pub fn data_payload(f: &Frame) -> Option<&[u8]> {
    if !f.has(flag::PADDED) {
        return Some(&f.payload);
    }
    let pad = usize::from(*f.payload.first()?);
    f.payload.get(1..f.payload.len().checked_sub(pad)?)
}

/// The sum of a counter's samples in a Prometheus text exposition whose labels contain every
/// `name="value"` of `labels` (0 when there are none).
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
