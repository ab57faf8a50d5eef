//! The HTTP/2 wire vocabulary of the raw-frame test client (tests/common/h2raw.rs): frame
//! types, flags, error codes and settings (RFC 9113 §6, §7, §6.5.2), [`Frame`] with a readable
//! `Debug` (the evidence tests print), frame encoding that lets a test lie about the length,
//! and [`Block`], a minimal HPACK encoder of our own (RFC 7541): literal fields without
//! indexing and without Huffman (`0x00`, length, name, length, value: trivially correct by
//! §6.2.2), plus indexed fields, incremental indexing, size updates and raw Huffman strings
//! for the HPACK tests. Bytes only: no sockets here.

use std::fmt;

use super::conn;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

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

/// A big-endian u32 from the first four bytes of `b`.
pub fn be32(b: &[u8]) -> u32 {
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
