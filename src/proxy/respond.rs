//! Responses tollgate writes itself: errors, mocks and `100 Continue`, plus the headers tollgate
//! adds to every response it sends (`date`, `x-request-id`, `connection`).
//!
//! Owns: serialising those heads into an output buffer. Leaves out: choosing the status (see
//! [`crate::error::GatewayError::status`]) and writing to the socket (the caller flushes).

use bytes::{BufMut, BytesMut};

use crate::config::MockResponse;
// number formatting lives in crate::fmt; re-exported so the rest of proxy compiles unchanged
use crate::error::{reason_phrase, GatewayError};
pub use crate::fmt::{itoa_u64, put_decimal, Digits};
use crate::http::{status_has_content, Version};
use crate::throttle::worker::Throttled;

/// How the response tells the client about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnHeader {
    /// HTTP/1.1 persistent: nothing to say.
    None,
    /// HTTP/1.0 client that asked for keep-alive.
    KeepAlive,
    /// The connection closes after this response.
    Close,
}

impl ConnHeader {
    /// The header for a response to a client of `version`.
    pub fn for_client(version: Version, keep_alive: bool) -> Self {
        match (keep_alive, version) {
            (false, _) => ConnHeader::Close,
            (true, Version::Http10) => ConnHeader::KeepAlive,
            (true, Version::Http11) => ConnHeader::None,
        }
    }
}

/// The headers tollgate adds to every response, ending with the blank line when `end` is set.
pub fn common_headers(out: &mut BytesMut, date: &[u8], request_id: &[u8], conn: ConnHeader) {
    out.put_slice(b"date: ");
    out.put_slice(date);
    out.put_slice(b"\r\nx-request-id: ");
    out.put_slice(request_id);
    out.put_slice(b"\r\n");
    match conn {
        ConnHeader::None => {}
        ConnHeader::KeepAlive => out.put_slice(b"connection: keep-alive\r\n"),
        ConnHeader::Close => out.put_slice(b"connection: close\r\n"),
    }
}

/// Appends `HTTP/1.1 {status} {reason}\r\n`.
pub fn status_line(out: &mut BytesMut, status: u16) {
    out.put_slice(b"HTTP/1.1 ");
    let mut digits = itoa_u64(u64::from(status));
    out.put_slice(digits.as_bytes_mut());
    out.put_u8(b' ');
    out.put_slice(reason_phrase(status).as_bytes());
    out.put_slice(b"\r\n");
}

/// An API Gateway style JSON error response. Returns the length of its head (the status line
/// through the empty line): the rest is payload, which the access log's `responseLength` counts.
pub fn error_response(
    out: &mut BytesMut,
    err: &GatewayError,
    date: &[u8],
    request_id: &[u8],
    conn: ConnHeader,
    head_only: bool,
) -> usize {
    let start = out.len();
    let body = err.body().as_bytes();
    status_line(out, err.status());
    out.put_slice(b"content-type: application/json\r\ncontent-length: ");
    out.put_slice(itoa_u64(body.len() as u64).as_bytes_mut());
    out.put_slice(b"\r\n");
    if let GatewayError::Throttled(t) = err {
        rate_limit_headers(out, t);
    }
    common_headers(out, date, request_id, conn);
    out.put_slice(b"\r\n");
    let head_len = out.len() - start;
    if !head_only {
        out.put_slice(body);
    }
    head_len
}

/// `Retry-After` (RFC 9110 §10.2.3) and the IETF `RateLimit-Policy` / `RateLimit` fields
/// (draft-ietf-httpapi-ratelimit-headers) for the limit that refused the request. A token bucket
/// is described as a quota of `burst` units per window `burst / rate` seconds; `r` is what is left
/// (nothing) and `t` the seconds until a unit is back.
pub fn rate_limit_headers(out: &mut BytesMut, t: &Throttled) {
    let retry = t.retry_after_ns.div_ceil(1_000_000_000).max(1);
    let window = ((t.burst as f64 / t.rate.max(1e-9)).ceil() as u64).max(1);
    let name = t.level.name().as_bytes();
    out.put_slice(b"retry-after: ");
    put_decimal(out, retry);
    out.put_slice(b"\r\nratelimit-policy: \"");
    out.put_slice(name);
    out.put_slice(b"\";q=");
    put_decimal(out, t.burst);
    out.put_slice(b";w=");
    put_decimal(out, window);
    out.put_slice(b"\r\nratelimit: \"");
    out.put_slice(name);
    out.put_slice(b"\";r=0;t=");
    put_decimal(out, retry);
    out.put_slice(b"\r\n");
}

/// A configured mock response. Returns the length of its head, as [`error_response`] does.
pub fn mock_response(
    out: &mut BytesMut,
    mock: &MockResponse,
    date: &[u8],
    request_id: &[u8],
    conn: ConnHeader,
    head_only: bool,
) -> usize {
    let start = out.len();
    out.put_slice(&mock.head);
    common_headers(out, date, request_id, conn);
    out.put_slice(b"\r\n");
    let head_len = out.len() - start;
    // 1xx/204/304 end at the head (RFC 9110 §6.4.1); config refuses such a mock with a body,
    // and the head was rendered without Content-Length.
    if !head_only && status_has_content(mock.status) {
        out.put_slice(&mock.body);
    }
    head_len
}

/// The interim response sent before reading a body the client is holding back (RFC 9110 §10.1.1).
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_is_api_gateway_json() {
        let mut out = BytesMut::new();
        let date = b"Thu, 01 Jan 1970 00:00:00 GMT";
        let head_len = error_response(
            &mut out,
            &GatewayError::NoRoute,
            date,
            b"rid",
            ConnHeader::None,
            false,
        );
        assert_eq!(&out[head_len..], br#"{"message":"Not Found"}"#);
        assert_eq!(
            &out[..],
            &b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 23\r\n\
date: Thu, 01 Jan 1970 00:00:00 GMT\r\nx-request-id: rid\r\n\r\n{\"message\":\"Not Found\"}"[..]
        );
    }
}
