//! HTTP/1.1 serialisation of a [`Response`] (RFC 9112): the one place response heads are
//! written for HTTP/1 clients.
//!
//! Owns: the status line (RFC 9112 §4), the fields in a fixed order (the producer's, then the
//! framing, then the fields the response filter added, then `connection`), the framing chosen
//! for this client (`content-length`, `transfer-encoding: chunked`, or none for a
//! close-delimited body or a status without content, RFC 9112 §6), the connection header
//! ([`ConnHeader`], RFC 9112 §9.3/§9.6), and whole responses held in memory (errors, mocks)
//! with their body unless the request was HEAD (RFC 9110 §9.3.2). Leaves out: the decision to
//! keep the connection (the lifecycle's), and writing to the socket (the caller flushes
//! through its [`crate::transport::Stream`]).

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use super::Session;
use crate::client::BodyReader;
use crate::config::BodyPolicy;
use crate::error::{reason_phrase, GatewayError};
use crate::fmt::{itoa_u64, put_decimal};
use crate::http::{BodyEncoder, BodyKind, HeaderKind, Method, RequestHead, Version};
use crate::integration::http::{pump, PumpFail};
use crate::proxy::conn::Downstream;
use crate::proxy::intake::{self, BodyStream};
use crate::proxy::lifecycle::{BodyState, ExchangeState, ResponseState};
use crate::proxy::worker::Cx;
use crate::response::{Response, Source};
use crate::throttle::worker::Throttled;
use crate::transport::ConnFacts;

/// The HTTP/1 session: a client connection with its buffered input.
impl Session for Downstream {
    fn facts(&self) -> &ConnFacts {
        &self.accepted.facts
    }

    async fn open_body(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        policy: &BodyPolicy,
    ) -> Result<BodyStream, GatewayError> {
        intake::open_body(w, self, head, st, policy).await
    }

    async fn next_chunk(
        &mut self,
        w: &Cx<'_>,
        body: &mut BodyStream,
        st: &mut ExchangeState,
    ) -> Result<Option<Bytes>, GatewayError> {
        intake::next_chunk(w, self, body, st).await
    }

    async fn read_body(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        policy: &BodyPolicy,
        max: usize,
    ) -> Result<Bytes, GatewayError> {
        intake::read_to_end(w, self, head, st, policy, max).await
    }

    /// Discards a body that is already buffered whole; anything else means the connection
    /// cannot be reused (its remaining bytes would be taken for a new request, RFC 9112 §9.3).
    fn skip_body(&mut self, head: &RequestHead, st: &mut ExchangeState) {
        match st.body {
            BodyState::Done => return,
            BodyState::Partial => {
                st.keep_alive = false;
                return;
            }
            BodyState::Unread => {}
        }
        if let BodyKind::Length(n) = head.body {
            if (self.buf.len() as u64) >= n {
                let _ = self.buf.split_to(n as usize);
                st.bytes_in += n; // received, though not used: the log's requestLength counts it
                st.body = BodyState::Done;
                return;
            }
        }
        st.keep_alive = false;
    }

    /// Head and body in one buffer, one write.
    async fn send(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        r: &Response<'_>,
    ) -> Result<(), GatewayError> {
        let body = r.static_body().len();
        let rendered = match &r.source {
            Source::Mock(m) => m.head.len(),
            _ => 0,
        };
        let mut out = BytesMut::with_capacity(body + 256 + rendered);
        let conn = ConnHeader::for_client(head.version, st.keep_alive);
        let head_only = head.method_kind == Method::Head;
        let head_len = write_whole(&mut out, r, conn, head_only);
        st.status = r.status;
        st.response = ResponseState::Started;
        st.bytes_out += out.len() as u64;
        st.head_out += head_len as u64;
        match self
            .stream
            .flush(&mut out, w.g.config.server.timeouts.write)
            .await
        {
            Ok(()) => {
                st.response = ResponseState::Complete;
                Ok(())
            }
            Err(_) => {
                st.keep_alive = false;
                Err(GatewayError::ClientGone)
            }
        }
    }
}

impl Downstream {
    /// Sends `100 Continue` (RFC 9110 §10.1.1) when the client waits for it before sending a
    /// body we are about to read: it asked (`Expect: 100-continue`), and none of the body has
    /// arrived yet.
    pub async fn continue_if_expected(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
    ) -> Result<(), GatewayError> {
        if !head.expect_continue || !self.buf.is_empty() {
            return Ok(());
        }
        let cont = Bytes::from_static(CONTINUE_100);
        self.stream
            .write_all(cont, w.g.config.server.timeouts.write)
            .await
            .map_err(|_| GatewayError::ClientGone)
    }

    /// Writes response bytes already serialised for this client: a streamed response's head
    /// with the first part of its body. Its failure means the client is gone.
    pub async fn write_part(&mut self, w: &Cx<'_>, out: &mut BytesMut) -> Result<(), GatewayError> {
        let limit = w.g.config.server.timeouts.write;
        self.stream
            .flush(out, limit)
            .await
            .map_err(|_| GatewayError::ClientGone)
    }

    /// Streams the rest of an origin's response body to this client, re-framed by `enc`
    /// (chosen for this client when the head was serialised) through `out`; `moved` counts the
    /// payload bytes. Memory stays bounded by the buffers.
    pub(crate) async fn stream_body(
        &mut self,
        w: &Cx<'_>,
        body: &mut BodyReader<'_>,
        out: &mut BytesMut,
        enc: &mut BodyEncoder,
        read_limit: Duration,
        moved: &mut u64,
    ) -> Result<(), PumpFail> {
        let limits = (
            read_limit,
            w.g.config.server.timeouts.write,
            w.buffers.size(),
        );
        let (src, src_buf, dec) = body.parts();
        pump(
            src,
            src_buf,
            dec,
            &mut self.stream,
            out,
            enc,
            limits,
            moved,
            None,
        )
        .await
    }

    /// Sends the answer to a request whose head was refused (it did not parse, or came too
    /// slowly), then the connection closes. A HEAD request still gets no content (RFC 9110
    /// §9.3.2): the buffer holds what was received of its head, also after a timeout. Returns
    /// (bytes sent, of which payload); `Err` when the client is gone.
    pub async fn send_rejection(
        &mut self,
        w: &Cx<'_>,
        r: &Response<'_>,
    ) -> Result<(u64, u64), (u64, u64)> {
        let mut out = BytesMut::with_capacity(256);
        let head_only = self.buf.starts_with(b"HEAD ");
        let head_len = write_whole(&mut out, r, ConnHeader::Close, head_only);
        let counts = (out.len() as u64, (out.len() - head_len) as u64);
        match self
            .stream
            .flush(&mut out, w.g.config.server.timeouts.write)
            .await
        {
            Ok(()) => Ok(counts),
            Err(_) => Err(counts),
        }
    }
}

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

/// The interim response sent before reading a body the client is holding back (RFC 9110 §10.1.1).
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Appends `HTTP/1.1 {status} {reason}\r\n`.
pub fn status_line(out: &mut BytesMut, status: u16) {
    out.put_slice(b"HTTP/1.1 ");
    let mut digits = itoa_u64(u64::from(status));
    out.put_slice(digits.as_bytes_mut());
    out.put_u8(b' ');
    out.put_slice(reason_phrase(status).as_bytes());
    out.put_slice(b"\r\n");
}

/// Appends `name: value\r\n`.
pub fn put_line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Appends the response head, through its empty line. Returns its length.
pub fn write_head(out: &mut BytesMut, r: &Response<'_>, conn: ConnHeader) -> usize {
    let start = out.len();
    match &r.source {
        Source::Error(e) => {
            status_line(out, r.status);
            out.put_slice(b"content-type: application/json\r\ncontent-length: ");
            put_decimal(out, e.body().len() as u64);
            out.put_slice(b"\r\n");
        }
        // status line, configured fields and content-length, rendered at config load
        Source::Mock(m) => out.put_slice(&m.head),
        Source::Origin {
            head,
            framing,
            meta_length,
        } => {
            let reason = head.slice(head.reason);
            if reason.is_empty() {
                status_line(out, r.status);
            } else {
                out.put_slice(b"HTTP/1.1 ");
                put_decimal(out, u64::from(r.status));
                out.put_u8(b' ');
                out.put_slice(reason);
                out.put_slice(b"\r\n");
            }
            for h in &head.headers {
                if h.kind == HeaderKind::Regular {
                    put_line(out, head.slice(h.name), head.slice(h.value));
                }
            }
            match framing {
                BodyEncoder::Length { remaining } => {
                    out.put_slice(b"content-length: ");
                    put_decimal(out, *remaining);
                    out.put_slice(b"\r\n");
                }
                BodyEncoder::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
                BodyEncoder::Empty | BodyEncoder::CloseDelimited => {
                    if let Some(n) = meta_length {
                        out.put_slice(b"content-length: ");
                        put_decimal(out, *n);
                        out.put_slice(b"\r\n");
                    }
                }
            }
        }
    }
    let added = &r.added;
    if let Some(t) = &added.rate_limit {
        rate_limit_fields(out, t);
    }
    if let Some(date) = &added.date {
        put_line(out, b"date", date);
    }
    if let Some(id) = added.request_id {
        put_line(out, b"x-request-id", id);
    }
    if let Some(v) = added.hsts {
        put_line(out, b"strict-transport-security", v.as_bytes());
    }
    match conn {
        ConnHeader::None => {}
        ConnHeader::KeepAlive => out.put_slice(b"connection: keep-alive\r\n"),
        ConnHeader::Close => out.put_slice(b"connection: close\r\n"),
    }
    out.put_slice(b"\r\n");
    out.len() - start
}

/// Appends a response held in memory: its head, then its body unless `head_only` (a HEAD
/// request). Returns the length of the head: the rest is payload, which the access log's
/// `responseLength` counts.
pub fn write_whole(
    out: &mut BytesMut,
    r: &Response<'_>,
    conn: ConnHeader,
    head_only: bool,
) -> usize {
    let head_len = write_head(out, r, conn);
    if !head_only {
        out.put_slice(r.static_body());
    }
    head_len
}

/// `Retry-After` (RFC 9110 §10.2.3) and the IETF `RateLimit-Policy` / `RateLimit` fields
/// (draft-ietf-httpapi-ratelimit-headers) for the limit that refused the request. A token bucket
/// is described as a quota of `burst` units per window `burst / rate` seconds; `r` is what is left
/// (nothing) and `t` the seconds until a unit is back.
fn rate_limit_fields(out: &mut BytesMut, t: &Throttled) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::GatewayError;

    #[test]
    fn error_response_is_api_gateway_json() {
        let mut out = BytesMut::new();
        let mut r = Response::error(GatewayError::NoRoute);
        r.added.date = Some(*b"Thu, 01 Jan 1970 00:00:00 GMT");
        r.added.request_id = Some(b"rid");
        let head_len = write_whole(&mut out, &r, ConnHeader::None, false);
        assert_eq!(&out[head_len..], br#"{"message":"Not Found"}"#);
        assert_eq!(
            &out[..],
            &b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 23\r\n\
date: Thu, 01 Jan 1970 00:00:00 GMT\r\nx-request-id: rid\r\n\r\n{\"message\":\"Not Found\"}"[..]
        );
        // a HEAD request gets the same head, no content
        let mut head_only = BytesMut::new();
        let n = write_whole(&mut head_only, &r, ConnHeader::Close, true);
        assert_eq!(n, head_only.len());
        assert!(head_only.ends_with(b"x-request-id: rid\r\nconnection: close\r\n\r\n"));
    }
}
