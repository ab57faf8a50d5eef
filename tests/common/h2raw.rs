//! A raw-frame HTTP/2 client for conformance and abuse tests (RFC 9113): it connects by prior
//! knowledge over plain TCP (h2c, §3.3) or over TLS offering ALPN `h2` (§3.2) — whichever the
//! thread's [`super::Transport`] gives the gateway address — and sends any frame at all (any
//! type, flags, stream id, length, payload; malformed on purpose when a test wants it).
//! Frames, codes and request header blocks ([`Block`], a minimal HPACK encoder of our own) come
//! from tests/common/h2wire.rs, re-exported here. Response header blocks are decoded with the server's
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
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tollgate::http2::hpack::Decoder;

use super::conn::{self, Conn};
pub use super::h2wire::*;

/// Liveness bound for every read (not a performance threshold).
pub const LIVE: Duration = Duration::from_secs(10);

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

/// How [`H2::responses`] gives back receive window for the DATA it reads (`auto_window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    /// As curl, nghttp2 and browsers do: a WINDOW_UPDATE once [`CREDIT_BATCH`] bytes are owed
    /// (half the default 65 535-byte window), on the connection and on each stream.
    Batched,
    /// A WINDOW_UPDATE on the connection and the stream after every DATA frame (legal per
    /// RFC 9113 §6.9, chatty).
    PerFrame,
}

/// Bytes owed before a [`Credit::Batched`] WINDOW_UPDATE.
pub const CREDIT_BATCH: u32 = 32_768;

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
    /// Give back receive window for the DATA frames [`H2::response`] reads, as `credit` says.
    pub auto_window: bool,
    pub credit: Credit,
    owed_conn: u32,
    owed_streams: BTreeMap<u32, u32>,
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
            credit: Credit::Batched,
            owed_conn: 0,
            owed_streams: BTreeMap::new(),
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
                        self.credit_back(f.stream, f.payload.len() as u32, f.has(flag::END_STREAM));
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

    /// Gives back `n` bytes of receive window for DATA read on `stream` (see [`Credit`]);
    /// nothing for the stream once it ended.
    fn credit_back(&mut self, stream: u32, n: u32, ended: bool) {
        match self.credit {
            Credit::PerFrame => {
                self.window_update(0, n);
                if !ended {
                    self.window_update(stream, n);
                }
            }
            Credit::Batched => {
                self.owed_conn += n;
                if self.owed_conn >= CREDIT_BATCH {
                    let owed = std::mem::take(&mut self.owed_conn);
                    self.window_update(0, owed);
                }
                if ended {
                    self.owed_streams.remove(&stream);
                    return;
                }
                let owed = self.owed_streams.entry(stream).or_default();
                *owed += n;
                if *owed >= CREDIT_BATCH {
                    let owed = std::mem::take(owed);
                    self.window_update(stream, owed);
                }
            }
        }
    }

    /// A GET on `stream`, its whole response.
    pub fn get_response(&mut self, stream: u32, path: &str) -> H2Response {
        self.get(stream, path);
        self.response(stream)
    }
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
