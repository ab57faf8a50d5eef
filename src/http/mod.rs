//! Strict, zero-copy HTTP/1.1 codec (RFC 9110 / RFC 9112) working on bytes only.
//!
//! This module owns the shared vocabulary of the codec: the error type, the
//! protocol version, byte [`Span`]s into a head's buffer, classified
//! [`Header`]s, message framing ([`BodyKind`]) and the configurable [`Limits`].
//! The submodules do the work: [`request`] parses request heads, [`response`]
//! parses response heads, [`body`] decodes and encodes message bodies, and the
//! private `fields` module holds the character classes and field-value rules
//! both directions share. It leaves out everything about I/O: no sockets, no
//! timers, no routing, no header rewriting; the proxy does those.
//!
//! Data flow: the proxy reads into a `BytesMut`; [`parse_request`] /
//! [`parse_response`] validate the head in place and split exactly the head
//! bytes off the front of that buffer into a frozen `Bytes` that the returned
//! head refers to with [`Span`]s (no copies, no per-header allocation). The
//! head's [`BodyKind`] then seeds a [`BodyDecoder`] that splits body bytes off
//! the same buffer, and a [`BodyEncoder`] re-frames them on the way out.

pub mod body;
mod fields;
pub mod request;
pub mod response;

pub use body::{BodyChunk, BodyDecoder, BodyEncoder, ChunkedDecoder};
pub(crate) use fields::{
    allowed_in_trailer, is_field_octet, is_tchar, is_token, list_elements, trim_ows,
};
pub use request::{parse_request, Method, RequestHead};
pub use response::{parse_response, status_has_content, Present, ResponseHead};

/// True for a header field the codec interprets or sets itself (framing, `Host`, `Expect`,
/// hop-by-hop fields of RFC 9110 §7.6.1, `x-request-id`, `x-forwarded-*`), false for one it
/// forwards as it is. Config uses it to refuse such names where a plain field is meant.
pub fn is_interpreted_field(name: &[u8]) -> bool {
    fields::Field::classify(name) != fields::Field::Other
}

/// Default bound on a message head (start line + header section, including
/// the final empty line). Like nginx's `large_client_header_buffers` (4 x 8k),
/// but as a single budget.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 32 * 1024;
/// Default bound on the request-target (RFC 9112 3: "a server that receives a
/// request-target longer than any URI it wishes to parse MUST respond with a
/// 414"). RFC 9110 4.1 recommends supporting at least 8000 octets.
pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;
/// Default bound on the number of header field lines in a head.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default bound on a request body (the AWS API Gateway payload limit).
/// Response bodies are not capped (see [`BodyDecoder::new_response`]).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Default bound on one chunk-size line, chunk extensions and CRLF included.
pub const DEFAULT_MAX_CHUNK_LINE_BYTES: usize = 4096;
/// Hard ceiling on [`Limits::max_headers`]: the size of the on-stack header
/// array handed to httparse. Larger configured values are clamped to this.
pub const MAX_HEADERS_CAPACITY: usize = 256;
const _: () = assert!(MAX_HEADERS_CAPACITY >= DEFAULT_MAX_HEADERS);

/// A protocol error. Each variant maps to one status code, see
/// [`HttpError::status`]; on any error the connection must be closed, because
/// the framing of the stream can no longer be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Malformed request or body framing -> 400, close.
    #[error("{0}")]
    BadRequest(&'static str),
    /// Head or trailer section over `max_head_bytes`, or too many fields -> 431.
    #[error("Request Header Fields Too Large")]
    HeadTooLarge,
    /// Request-target over `max_uri_bytes` -> 414.
    #[error("URI Too Long")]
    UriTooLong,
    /// Body over `max_body_bytes` -> 413.
    #[error("Payload Too Large")]
    BodyTooLarge,
    /// Unknown transfer coding, CONNECT -> 501.
    #[error("{0}")]
    NotImplemented(&'static str),
    /// Expect other than 100-continue -> 417.
    #[error("Expectation Failed")]
    ExpectationFailed,
    /// Upstream protocol error -> 502.
    #[error("{0}")]
    BadResponse(&'static str),
    /// The peer closed the connection in the middle of a message.
    #[error("unexpected end of message")]
    UnexpectedEof,
}

impl HttpError {
    /// The status code to answer a client with. `UnexpectedEof` maps to 400
    /// (there is usually nobody left to answer).
    pub fn status(self) -> u16 {
        match self {
            HttpError::BadRequest(_) | HttpError::UnexpectedEof => 400,
            HttpError::HeadTooLarge => 431,
            HttpError::UriTooLong => 414,
            HttpError::BodyTooLarge => 413,
            HttpError::NotImplemented(_) => 501,
            HttpError::ExpectationFailed => 417,
            HttpError::BadResponse(_) => 502,
        }
    }
}

/// HTTP version of a message; only 1.0 and 1.1 are accepted (RFC 9112 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The version as it appears on the wire.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Version::Http10 => b"HTTP/1.0",
            Version::Http11 => b"HTTP/1.1",
        }
    }
}

/// Byte range into a head's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// Length in bytes (0 for an inverted span, which the codec never makes).
    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The bytes this span covers in `buf`; empty if out of range (never panics).
    pub fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// What the proxy must do with a header when forwarding the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// Forward as is.
    Regular,
    /// Not forwarded: hop-by-hop (Connection, Keep-Alive, TE, Trailer,
    /// Upgrade, Proxy-*, Transfer-Encoding, Content-Length, every field named
    /// by a Connection token), Expect, X-Forwarded-Proto, X-Forwarded-Host.
    /// The proxy re-emits framing and sets those itself.
    Skip,
    /// Request only: the Host field.
    Host,
    /// Request only: X-Forwarded-For (the proxy appends to it).
    XForwardedFor,
    /// Request only: X-Request-Id.
    RequestId,
}

/// One field line of a head: name and value as spans into the head buffer
/// (value without surrounding OWS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub name: Span,
    pub value: Span,
    pub kind: HeaderKind,
}

/// How the body of a message is delimited (RFC 9112 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all.
    Empty,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// Transfer-Encoding: chunked.
    Chunked,
    /// Until the connection closes (responses only).
    CloseDelimited,
}

/// Parser limits; every field has a `DEFAULT_*` constant and config may
/// override any of them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Max bytes of a head incl. the final CRLFCRLF; also bounds a chunked
    /// trailer section. Exceeding it -> [`HttpError::HeadTooLarge`].
    pub max_head_bytes: usize,
    /// Max bytes of a request-target -> [`HttpError::UriTooLong`].
    pub max_uri_bytes: usize,
    /// Max number of field lines in a head (clamped to
    /// [`MAX_HEADERS_CAPACITY`]) -> [`HttpError::HeadTooLarge`].
    pub max_headers: usize,
    /// Max request body bytes -> [`HttpError::BodyTooLarge`].
    pub max_body_bytes: u64,
    /// Max bytes of one chunk-size line incl. extensions and CRLF.
    pub max_chunk_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_chunk_line_bytes: DEFAULT_MAX_CHUNK_LINE_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let l = Limits::default();
        assert_eq!(l.max_head_bytes, 32768);
        assert_eq!(l.max_uri_bytes, 8192);
        assert_eq!(l.max_headers, 100);
        assert_eq!(l.max_body_bytes, 10 << 20);
        assert_eq!(l.max_chunk_line_bytes, 4096);
    }

    #[test]
    fn span_get_never_panics() {
        let buf = b"abc";
        assert_eq!(Span { start: 1, end: 3 }.get(buf), b"bc");
        assert_eq!(Span { start: 2, end: 9 }.get(buf), b"");
        assert_eq!(Span { start: 3, end: 1 }.get(buf), b"");
        assert_eq!(Span { start: 3, end: 1 }.len(), 0);
    }

    #[test]
    fn status_codes() {
        assert_eq!(HttpError::BadRequest("x").status(), 400);
        assert_eq!(HttpError::HeadTooLarge.status(), 431);
        assert_eq!(HttpError::UriTooLong.status(), 414);
        assert_eq!(HttpError::BodyTooLarge.status(), 413);
        assert_eq!(HttpError::NotImplemented("x").status(), 501);
        assert_eq!(HttpError::ExpectationFailed.status(), 417);
        assert_eq!(HttpError::BadResponse("x").status(), 502);
        assert_eq!(HttpError::BadRequest("boom").to_string(), "boom");
    }
}
