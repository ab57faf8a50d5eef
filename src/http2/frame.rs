//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte frame header, the parse of every frame type
//! with the size, flag and stream-id rules that need no connection state, and the encoders of
//! every frame the server sends. [`ErrorCode`] (§7) and the client [`PREFACE`] (§3.4) live
//! here too.
//!
//! Parsing takes a complete frame (header + payload `Bytes`) and returns a [`Frame`] whose
//! byte fields are zero-copy slices of the payload, or a [`FrameError`] saying whether the
//! violation is a connection or a stream error (§5.4). Rules that depend on stream states,
//! windows or the header block in progress belong to [`super::conn`]. Encoders append to a
//! `BytesMut` (the connection's output).

use bytes::{BufMut, Bytes, BytesMut};

/// The client connection preface (§3.4), followed by the client's SETTINGS frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of the frame header (§4.1).
pub const HEADER_LEN: usize = 9;

/// SETTINGS_MAX_FRAME_SIZE's initial value and lower bound (§4.2, §6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// SETTINGS_MAX_FRAME_SIZE's upper bound, 2^24-1 (§6.5.2).
pub const MAX_MAX_FRAME_SIZE: u32 = 16_777_215;
/// The initial flow-control window of streams and the connection (§6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;
/// The largest flow-control window, 2^31-1 (§6.9.1).
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

// Frame types (§6, §11.2).
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

// Flags (§6).
pub const FLAG_END_STREAM: u8 = 0x1;
pub const FLAG_ACK: u8 = 0x1;
pub const FLAG_END_HEADERS: u8 = 0x4;
pub const FLAG_PADDED: u8 = 0x8;
pub const FLAG_PRIORITY: u8 = 0x20;

// Settings identifiers (§6.5.2).
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Error codes (§7). Unknown codes are kept as their raw value (§7: they MUST NOT trigger
/// special behaviour and MAY be treated as INTERNAL_ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NoError,
    ProtocolError,
    InternalError,
    FlowControlError,
    SettingsTimeout,
    StreamClosed,
    FrameSizeError,
    RefusedStream,
    Cancel,
    CompressionError,
    ConnectError,
    EnhanceYourCalm,
    InadequateSecurity,
    Http11Required,
    Unknown(u32),
}

impl ErrorCode {
    pub fn from_u32(code: u32) -> ErrorCode {
        match code {
            0x0 => ErrorCode::NoError,
            0x1 => ErrorCode::ProtocolError,
            0x2 => ErrorCode::InternalError,
            0x3 => ErrorCode::FlowControlError,
            0x4 => ErrorCode::SettingsTimeout,
            0x5 => ErrorCode::StreamClosed,
            0x6 => ErrorCode::FrameSizeError,
            0x7 => ErrorCode::RefusedStream,
            0x8 => ErrorCode::Cancel,
            0x9 => ErrorCode::CompressionError,
            0xa => ErrorCode::ConnectError,
            0xb => ErrorCode::EnhanceYourCalm,
            0xc => ErrorCode::InadequateSecurity,
            0xd => ErrorCode::Http11Required,
            other => ErrorCode::Unknown(other),
        }
    }

    pub fn as_u32(self) -> u32 {
        match self {
            ErrorCode::NoError => 0x0,
            ErrorCode::ProtocolError => 0x1,
            ErrorCode::InternalError => 0x2,
            ErrorCode::FlowControlError => 0x3,
            ErrorCode::SettingsTimeout => 0x4,
            ErrorCode::StreamClosed => 0x5,
            ErrorCode::FrameSizeError => 0x6,
            ErrorCode::RefusedStream => 0x7,
            ErrorCode::Cancel => 0x8,
            ErrorCode::CompressionError => 0x9,
            ErrorCode::ConnectError => 0xa,
            ErrorCode::EnhanceYourCalm => 0xb,
            ErrorCode::InadequateSecurity => 0xc,
            ErrorCode::Http11Required => 0xd,
            ErrorCode::Unknown(code) => code,
        }
    }

    /// The registry name (§7), for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NoError => "NO_ERROR",
            ErrorCode::ProtocolError => "PROTOCOL_ERROR",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::FlowControlError => "FLOW_CONTROL_ERROR",
            ErrorCode::SettingsTimeout => "SETTINGS_TIMEOUT",
            ErrorCode::StreamClosed => "STREAM_CLOSED",
            ErrorCode::FrameSizeError => "FRAME_SIZE_ERROR",
            ErrorCode::RefusedStream => "REFUSED_STREAM",
            ErrorCode::Cancel => "CANCEL",
            ErrorCode::CompressionError => "COMPRESSION_ERROR",
            ErrorCode::ConnectError => "CONNECT_ERROR",
            ErrorCode::EnhanceYourCalm => "ENHANCE_YOUR_CALM",
            ErrorCode::InadequateSecurity => "INADEQUATE_SECURITY",
            ErrorCode::Http11Required => "HTTP_1_1_REQUIRED",
            ErrorCode::Unknown(_) => "UNKNOWN",
        }
    }
}

/// The frame header (§4.1). The reserved bit of the stream identifier is ignored (cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Head {
        Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & MAX_WINDOW,
        }
    }
}

/// A priority signal (§5.3.2, deprecated by RFC 9113 but still parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    pub dependency: u32,
    pub exclusive: bool,
    pub weight: u8,
}

/// The known settings of one SETTINGS frame (§6.5.2), already checked; a setting given twice
/// keeps the last value (they apply in order, §6.5.3). Unknown identifiers are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub header_table_size: Option<u32>,
    pub enable_push: Option<u32>,
    pub max_concurrent_streams: Option<u32>,
    pub initial_window_size: Option<u32>,
    pub max_frame_size: Option<u32>,
    pub max_header_list_size: Option<u32>,
}

/// One parsed frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `flow_len` is the whole payload length, padding included: what flow control counts
    /// (§6.1).
    Data {
        stream: u32,
        data: Bytes,
        end_stream: bool,
        flow_len: u32,
    },
    Headers {
        stream: u32,
        fragment: Bytes,
        end_stream: bool,
        end_headers: bool,
        priority: Option<Priority>,
    },
    Priority {
        stream: u32,
        priority: Priority,
    },
    RstStream {
        stream: u32,
        code: ErrorCode,
    },
    Settings {
        ack: bool,
        settings: Settings,
    },
    PushPromise {
        stream: u32,
    },
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    GoAway {
        last_stream_id: u32,
        code: ErrorCode,
        debug: Bytes,
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    Continuation {
        stream: u32,
        fragment: Bytes,
        end_headers: bool,
    },
    /// An unknown frame type: ignored (§4.1, §5.5).
    Unknown {
        kind: u8,
        stream: u32,
    },
}

/// A frame that breaks a rule of §4–§6 by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Connection error (§5.4.1): GOAWAY with this code.
    Conn(ErrorCode, &'static str),
    /// Stream error (§5.4.2): RST_STREAM on this stream.
    Stream(u32, ErrorCode, &'static str),
}

fn conn(code: ErrorCode, reason: &'static str) -> FrameError {
    FrameError::Conn(code, reason)
}

/// Parses one complete frame. `payload` is exactly `head.len` bytes; the frame size limit
/// (§4.2) is checked by the caller before the payload is even buffered.
pub fn parse(head: Head, payload: Bytes) -> Result<Frame, FrameError> {
    let Head {
        kind,
        flags,
        stream,
        ..
    } = head;
    let len = payload.len();
    // §6.1, §6.2, §6.3, §6.4, §6.10: frames of a stream are never on stream 0;
    // §6.5, §6.7, §6.8: connection frames are never on another stream.
    match kind {
        DATA | HEADERS | PRIORITY | RST_STREAM | CONTINUATION | PUSH_PROMISE if stream == 0 => {
            return Err(conn(ErrorCode::ProtocolError, "stream frame on stream 0"));
        }
        SETTINGS | PING | GOAWAY if stream != 0 => {
            return Err(conn(
                ErrorCode::ProtocolError,
                "connection frame on a stream",
            ));
        }
        _ => {}
    }
    match kind {
        DATA => {
            let data = unpad(flags, payload)?;
            Ok(Frame::Data {
                stream,
                data,
                end_stream: flags & FLAG_END_STREAM != 0,
                flow_len: len as u32,
            })
        }
        HEADERS => {
            let has_priority = flags & FLAG_PRIORITY != 0;
            if has_priority && flags & FLAG_PADDED != 0 {
                // §6.2: padding longer than what the pad length octet and the priority fields
                // leave is PROTOCOL_ERROR (like padding longer than the payload, §6.1)
                let pad = usize::from(payload.first().copied().unwrap_or(0));
                if len >= 6 && pad > len - 6 {
                    return Err(conn(
                        ErrorCode::ProtocolError,
                        "padding exceeds the payload",
                    ));
                }
            }
            let mut fragment = unpad(flags, payload)?;
            let priority = if has_priority {
                // §6.2: the priority fields come before the fragment, inside the padding
                if fragment.len() < 5 {
                    return Err(conn(ErrorCode::FrameSizeError, "HEADERS too short"));
                }
                let p = priority_fields(&fragment[..5]);
                fragment = fragment.slice(5..);
                Some(p)
            } else {
                None
            };
            Ok(Frame::Headers {
                stream,
                fragment,
                end_stream: flags & FLAG_END_STREAM != 0,
                end_headers: flags & FLAG_END_HEADERS != 0,
                priority,
            })
        }
        PRIORITY => {
            // §6.3: a length other than 5 is a stream error FRAME_SIZE_ERROR
            if len != 5 {
                return Err(FrameError::Stream(
                    stream,
                    ErrorCode::FrameSizeError,
                    "PRIORITY length not 5",
                ));
            }
            Ok(Frame::Priority {
                stream,
                priority: priority_fields(&payload),
            })
        }
        RST_STREAM => {
            // §6.4: length other than 4 is a connection error FRAME_SIZE_ERROR
            let code = u32_at(&payload)
                .filter(|_| len == 4)
                .ok_or(conn(ErrorCode::FrameSizeError, "RST_STREAM length not 4"))?;
            Ok(Frame::RstStream {
                stream,
                code: ErrorCode::from_u32(code),
            })
        }
        SETTINGS => parse_settings(flags, &payload),
        PUSH_PROMISE => Ok(Frame::PushPromise { stream }),
        PING => {
            // §6.7: the payload is exactly 8 octets
            let payload: [u8; 8] = payload[..]
                .try_into()
                .map_err(|_| conn(ErrorCode::FrameSizeError, "PING length not 8"))?;
            Ok(Frame::Ping {
                ack: flags & FLAG_ACK != 0,
                payload,
            })
        }
        GOAWAY => {
            // §6.8: last-stream-id and error code, then opaque debug data
            if len < 8 {
                return Err(conn(ErrorCode::FrameSizeError, "GOAWAY shorter than 8"));
            }
            let last = u32_at(&payload).unwrap_or(0) & MAX_WINDOW;
            let code = u32_at(&payload[4..]).unwrap_or(0);
            Ok(Frame::GoAway {
                last_stream_id: last,
                code: ErrorCode::from_u32(code),
                debug: payload.slice(8..),
            })
        }
        WINDOW_UPDATE => {
            // §6.9: length other than 4 is a connection error FRAME_SIZE_ERROR
            let raw = u32_at(&payload).filter(|_| len == 4).ok_or(conn(
                ErrorCode::FrameSizeError,
                "WINDOW_UPDATE length not 4",
            ))?;
            Ok(Frame::WindowUpdate {
                stream,
                increment: raw & MAX_WINDOW,
            })
        }
        CONTINUATION => Ok(Frame::Continuation {
            stream,
            fragment: payload,
            end_headers: flags & FLAG_END_HEADERS != 0,
        }),
        _ => Ok(Frame::Unknown { kind, stream }),
    }
}

fn u32_at(b: &[u8]) -> Option<u32> {
    let b: [u8; 4] = b.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn priority_fields(b: &[u8]) -> Priority {
    let raw = u32_at(b).unwrap_or(0);
    Priority {
        dependency: raw & MAX_WINDOW,
        exclusive: raw & !MAX_WINDOW != 0,
        weight: b.get(4).copied().unwrap_or(0),
    }
}

/// §6.1 / §6.2: strips the Pad Length octet and the padding when PADDED is set. Padding that
/// is as long as the rest of the payload (or longer) is a connection error PROTOCOL_ERROR.
fn unpad(flags: u8, payload: Bytes) -> Result<Bytes, FrameError> {
    if flags & FLAG_PADDED == 0 {
        return Ok(payload);
    }
    let Some(&pad) = payload.first() else {
        return Err(conn(
            ErrorCode::FrameSizeError,
            "padded frame without pad length",
        ));
    };
    let pad = usize::from(pad);
    if pad >= payload.len() {
        return Err(conn(
            ErrorCode::ProtocolError,
            "padding exceeds the payload",
        ));
    }
    Ok(payload.slice(1..payload.len() - pad))
}

/// §6.5: SETTINGS, its length a multiple of 6, empty with ACK; the values of §6.5.2 checked.
fn parse_settings(flags: u8, payload: &[u8]) -> Result<Frame, FrameError> {
    let ack = flags & FLAG_ACK != 0;
    if ack {
        if !payload.is_empty() {
            return Err(conn(ErrorCode::FrameSizeError, "SETTINGS ack with payload"));
        }
        return Ok(Frame::Settings {
            ack,
            settings: Settings::default(),
        });
    }
    if !payload.len().is_multiple_of(6) {
        return Err(conn(
            ErrorCode::FrameSizeError,
            "SETTINGS length not a multiple of 6",
        ));
    }
    let mut s = Settings::default();
    for entry in payload.chunks_exact(6) {
        let id = u16::from_be_bytes([entry[0], entry[1]]);
        let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
        match id {
            SETTINGS_HEADER_TABLE_SIZE => s.header_table_size = Some(value),
            SETTINGS_ENABLE_PUSH => {
                if value > 1 {
                    return Err(conn(ErrorCode::ProtocolError, "ENABLE_PUSH not 0 or 1"));
                }
                s.enable_push = Some(value);
            }
            SETTINGS_MAX_CONCURRENT_STREAMS => s.max_concurrent_streams = Some(value),
            SETTINGS_INITIAL_WINDOW_SIZE => {
                if value > MAX_WINDOW {
                    return Err(conn(
                        ErrorCode::FlowControlError,
                        "INITIAL_WINDOW_SIZE above 2^31-1",
                    ));
                }
                s.initial_window_size = Some(value);
            }
            SETTINGS_MAX_FRAME_SIZE => {
                if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) {
                    return Err(conn(
                        ErrorCode::ProtocolError,
                        "MAX_FRAME_SIZE out of range",
                    ));
                }
                s.max_frame_size = Some(value);
            }
            SETTINGS_MAX_HEADER_LIST_SIZE => s.max_header_list_size = Some(value),
            _ => {} // §6.5.2: unknown settings are ignored
        }
    }
    Ok(Frame::Settings { ack, settings: s })
}

/// Appends a frame header (§4.1).
pub fn put_head(dst: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = len as u32;
    dst.put_slice(&len.to_be_bytes()[1..]);
    dst.put_u8(kind);
    dst.put_u8(flags);
    dst.put_u32(stream & MAX_WINDOW);
}

/// SETTINGS with `(identifier, value)` pairs (§6.5).
pub fn put_settings(dst: &mut BytesMut, params: &[(u16, u32)]) {
    put_head(dst, params.len() * 6, SETTINGS, 0, 0);
    for &(id, value) in params {
        dst.put_u16(id);
        dst.put_u32(value);
    }
}

pub fn put_settings_ack(dst: &mut BytesMut) {
    put_head(dst, 0, SETTINGS, FLAG_ACK, 0);
}

pub fn put_ping(dst: &mut BytesMut, ack: bool, payload: [u8; 8]) {
    put_head(dst, 8, PING, if ack { FLAG_ACK } else { 0 }, 0);
    dst.put_slice(&payload);
}

pub fn put_goaway(dst: &mut BytesMut, last_stream_id: u32, code: ErrorCode, debug: &[u8]) {
    put_head(dst, 8 + debug.len(), GOAWAY, 0, 0);
    dst.put_u32(last_stream_id & MAX_WINDOW);
    dst.put_u32(code.as_u32());
    dst.put_slice(debug);
}

pub fn put_rst_stream(dst: &mut BytesMut, stream: u32, code: ErrorCode) {
    put_head(dst, 4, RST_STREAM, 0, stream);
    dst.put_u32(code.as_u32());
}

pub fn put_window_update(dst: &mut BytesMut, stream: u32, increment: u32) {
    put_head(dst, 4, WINDOW_UPDATE, 0, stream);
    dst.put_u32(increment & MAX_WINDOW);
}

/// One DATA frame carrying all of `data` (the caller splits by the peer's frame size).
pub fn put_data(dst: &mut BytesMut, stream: u32, data: &[u8], end_stream: bool) {
    let flags = if end_stream { FLAG_END_STREAM } else { 0 };
    put_head(dst, data.len(), DATA, flags, stream);
    dst.put_slice(data);
}

/// A header block as HEADERS + as many CONTINUATION frames as `max_frame` requires (§4.3:
/// the frames of one block are contiguous).
pub fn put_header_block(
    dst: &mut BytesMut,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: usize,
) {
    let max_frame = max_frame.max(1);
    let mut chunks = block.chunks(max_frame).peekable();
    let mut kind = HEADERS;
    let mut flags = if end_stream { FLAG_END_STREAM } else { 0 };
    if chunks.peek().is_none() {
        put_head(dst, 0, HEADERS, flags | FLAG_END_HEADERS, stream);
        return;
    }
    while let Some(chunk) = chunks.next() {
        if chunks.peek().is_none() {
            flags |= FLAG_END_HEADERS;
        }
        put_head(dst, chunk.len(), kind, flags, stream);
        dst.put_slice(chunk);
        kind = CONTINUATION;
        flags = 0;
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
