//! The HTTP/1.x session (RFC 9112): a client connection, and every HTTP/1 decision on it.
//!
//! Owns: [`Downstream`] (the connection, its buffered input, what the accept loop knew),
//! reading a request head within the head-read deadline ([`Downstream::read_head`]; pipelined
//! heads are already in the buffer), persistence (the client's `connection` field and version,
//! RFC 9112 §9.3, narrowed while the listener closes), the decision after an exchange
//! ([`Outcome`]: keep-alive, close, or lingering close when request bytes are left unread,
//! RFC 9112 §9.6), the answer to a refused head, and the serialisation of a [`Response`]: the
//! status line (RFC 9112 §4), the fields in a fixed order (the producer's, then the framing,
//! then the fields the response filter added, then `connection`), the framing chosen for this
//! client (`content-length`, `transfer-encoding: chunked`, or none for a close-delimited body
//! or a status without content, RFC 9112 §6), and no content for HEAD (RFC 9110 §9.3.2).
//! Request bodies (framing, `100 Continue`, the minimum rate) are in [`super::h1_body`], the
//! relay of an origin's body in [`super::h1_relay`]. Leaves out: waiting for an idle
//! connection and the idle table (`proxy::conn`), and what a request does (the lifecycle).
//!
//! Data flow: socket → `buf` (a pooled buffer, only while busy) → [`crate::http::parse_request`]
//! → the lifecycle → [`Session::send`] / [`Session::relay`] → `stream` → [`Session::finish`].

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::h1_body::{self, BodyStream};
use super::{Refused, Session};
use crate::compress;
use crate::config::BodyPolicy;
use crate::error::{reason_phrase, GatewayError};
use crate::exchange::{BodyState, ExchangeState, ResponseState};
use crate::facts::ConnFacts;
use crate::fmt::{itoa_u64, put_decimal};
use crate::http::{
    parse_request, BodyChunk, BodyEncoder, BodyKind, HeaderKind, HttpError, Method, RequestHead,
    Version,
};
use crate::policy::cors;
use crate::response::{Response, ResponseBody, Source};
use crate::throttle::worker::Throttled;
use crate::transport::bufpool::BufPool;
use crate::transport::{IoFail, Stream};
use crate::worker::Cx;

/// A client connection and its buffered, not yet consumed bytes.
pub struct Downstream {
    pub stream: Stream,
    /// Unconsumed input; capacity 0 while the connection is idle.
    pub buf: BytesMut,
    /// What the accept loop knew (boxed, one allocation per connection: the parked idle
    /// future stays small).
    pub accepted: Box<Accepted>,
}

/// What a connection is given at accept, kept for its lifetime.
pub struct Accepted {
    /// Peer, local address, scheme and TLS parameters.
    pub facts: ConnFacts,
    /// Set when a reload removed the address this connection was accepted on: finish the
    /// current request, then close.
    pub listener_closed: Rc<Cell<bool>>,
}

impl Downstream {
    pub fn new(stream: Stream, facts: ConnFacts, listener_closed: Rc<Cell<bool>>) -> Downstream {
        Downstream {
            stream,
            buf: BytesMut::new(),
            accepted: Box::new(Accepted {
                facts,
                listener_closed,
            }),
        }
    }
}

/// What happens to the client connection after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Read the next request.
    KeepAlive,
    /// Close the connection: nothing more is expected from the client (or it is gone).
    Close,
    /// Close after a response that left request bytes unread (the client may still be
    /// sending): half-close, discard for a bounded time, then close (RFC 9112 §9.6, see
    /// `proxy::linger`).
    CloseLingering,
}

/// Where an HTTP/1 connection stands after an exchange it goes on from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Between {
    /// The next request's bytes are already buffered (pipelining, RFC 9112 §9.3.2): serve
    /// it without waiting; the buffer is kept.
    Pipelined,
    /// Nothing buffered: the read buffer went back to the pool, wait for the client.
    Idle,
}

/// What reading a request head gave.
#[allow(clippy::large_enum_variant)] // moved once per request; boxing would cost an allocation
pub enum HeadRead {
    Head(RequestHead),
    /// A head that cannot be served: answered (see [`Session::refuse`]), then the connection
    /// closes.
    Reject(GatewayError),
    /// The client closed or broke the connection (or went quiet) before a complete head; a
    /// connection that never sent a byte is closed without a response.
    Closed,
}

impl Downstream {
    /// Reads until a complete head is parsed, within the head-read deadline (RFC 9112 §2.2
    /// allows leading empty lines, handled by the parser). Called when the connection is
    /// readable or a pipelined request is buffered: the first read is synchronous, and the
    /// read buffer is borrowed from the worker's pool only now.
    pub async fn read_head(&mut self, w: &Cx<'_>) -> HeadRead {
        if self.buf.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf = w.buffers.take();
            }
            // The readiness wait said bytes (or the end) are there: take them synchronously.
            match self.stream.try_read(&mut self.buf, w.buffers.size()) {
                Ok(0) => return HeadRead::Closed,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return HeadRead::Closed,
            }
        }
        let limits = &w.g.config.server.limits;
        let deadline = Instant::now() + w.g.config.server.timeouts.header_read;
        loop {
            match parse_request(&mut self.buf, limits) {
                Ok(Some(head)) => {
                    return HeadRead::Head(super::h1_tunnel::own_head_if_upgrade(head))
                }
                Ok(None) => {}
                Err(e) => return HeadRead::Reject(GatewayError::Http(e)),
            }
            let had_bytes = !self.buf.is_empty();
            let more = read_head_more(&mut self.stream, &mut self.buf, w.buffers.size(), deadline);
            match more.await {
                Ok(0) if had_bytes => {
                    return HeadRead::Reject(GatewayError::Http(HttpError::UnexpectedEof))
                }
                Ok(0) | Err(IoFail::Io(_)) => return HeadRead::Closed,
                Ok(_) => {}
                Err(IoFail::Timeout) if had_bytes => {
                    return HeadRead::Reject(GatewayError::HeadTimeout)
                }
                Err(IoFail::Timeout) => return HeadRead::Closed,
            }
        }
    }

    /// After an exchange the connection goes on from: a pipelined request already buffered is
    /// served next, in order (RFC 9112 §9.3.2); otherwise the read buffer goes back to the
    /// pool, so an idle connection holds none.
    pub fn between_requests(&mut self, buffers: &BufPool) -> Between {
        if self.buf.is_empty() {
            buffers.give(std::mem::take(&mut self.buf));
            Between::Idle
        } else {
            Between::Pipelined
        }
    }

    /// Gives the read buffer (and whatever unread bytes it holds) back to the pool.
    pub fn release_buffer(&mut self, buffers: &BufPool) {
        if self.buf.capacity() != 0 {
            buffers.give(std::mem::take(&mut self.buf));
        }
    }

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
}

/// Reads more of a head, bounded by `deadline`: waits for readiness, then takes what is there
/// with a synchronous `recv(2)`, so the buffer is never lent to a pending read. When the
/// deadline passes, the bytes received so far are still in `buf` (a timed-out owned-buffer
/// read would take them with it): the 408 must know whether it answers a HEAD request (no
/// content, RFC 9110 §9.3.2), and the log how much was received. Heads that need more than the
/// first read are rare (slow or large ones), so the extra readiness step costs little.
async fn read_head_more(
    stream: &mut Stream,
    buf: &mut BytesMut,
    want: usize,
    deadline: Instant,
) -> Result<usize, IoFail> {
    loop {
        stream.readable_by(deadline).await?;
        match stream.try_read(buf, want) {
            Ok(n) => return Ok(n),
            // a spurious wake-up, or a signal: wait again
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(IoFail::Io(e)),
        }
    }
}

/// The HTTP/1 session: a client connection with its buffered input.
impl Session for Downstream {
    type Body = BodyStream;
    type Outcome = Outcome;

    fn facts(&self) -> &ConnFacts {
        &self.accepted.facts
    }

    /// Persistence (RFC 9112 §9.3): HTTP/1.1 unless `connection: close`, HTTP/1.0 only with
    /// `connection: keep-alive`; never once the listener this connection came from is gone.
    fn begin(&mut self, head: &RequestHead, st: &mut ExchangeState) {
        st.keep_alive &= head.keep_alive && !self.accepted.listener_closed.get();
    }

    async fn open_body(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        policy: &BodyPolicy,
    ) -> Result<BodyStream, GatewayError> {
        h1_body::open_body(w, self, head, st, policy).await
    }

    async fn next_chunk(
        &mut self,
        w: &Cx<'_>,
        body: &mut BodyStream,
        st: &mut ExchangeState,
    ) -> Result<BodyChunk, GatewayError> {
        h1_body::next_chunk(w, self, body, st).await
    }

    fn buffered_chunk(
        &mut self,
        body: &mut BodyStream,
        st: &mut ExchangeState,
    ) -> Result<Option<BodyChunk>, GatewayError> {
        h1_body::buffered_chunk(self, body, st)
    }

    async fn read_body(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        policy: &BodyPolicy,
        max: usize,
    ) -> Result<Bytes, GatewayError> {
        h1_body::read_to_end(w, self, head, st, policy, max).await
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
        r: Response<'_>,
    ) -> Result<(), GatewayError> {
        let body = r.static_body().len();
        let rendered = r.rendered().map_or(0, |m| m.head.len());
        let mut out = BytesMut::with_capacity(body + 256 + rendered);
        let conn = ConnHeader::for_client(head.version, st.keep_alive);
        let head_only = head.method_kind == Method::Head;
        let head_len = write_whole(&mut out, &r, conn, head_only);
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

    async fn relay(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
        body: &mut impl ResponseBody,
    ) -> Result<bool, GatewayError> {
        super::h1_relay::relay(self, w, head, st, r, body).await
    }

    /// Reused only when both messages are complete and persistence was kept; a response sent
    /// before the request body was read, or with bytes of the client's still buffered, ends in
    /// a lingering close (the client may still be sending, RFC 9112 §9.6).
    fn finish(&mut self, w: &Cx<'_>, st: &ExchangeState) -> Outcome {
        let reusable = st.keep_alive
            && st.body == BodyState::Done
            && st.response == ResponseState::Complete
            && !w.draining.get();
        if reusable {
            Outcome::KeepAlive
        } else if st.response == ResponseState::Complete
            && (st.body != BodyState::Done || !self.buf.is_empty())
        {
            // request bytes left unread (a body, pipelined requests, frames behind a refused
            // WebSocket handshake): an immediate close would answer them, or the ones still
            // coming, with a reset that may destroy the response (RFC 9112 §9.6)
            Outcome::CloseLingering
        } else {
            Outcome::Close
        }
    }

    /// A HEAD request still gets no content (RFC 9110 §9.3.2): the buffer holds what was
    /// received of its head, also after a timeout. The connection then closes, lingering: the
    /// client may still be sending the rest of its head or a body (a 413 for a declared
    /// Content-Length).
    async fn refuse(&mut self, w: &Cx<'_>, r: Response<'_>) -> Refused<Outcome> {
        let mut out = BytesMut::with_capacity(256);
        // no parsed head for the response filter: the CORS fields from what was received (a
        // page's failed request still reads its error, see `cors::rejected_head`)
        let mut r = r;
        if r.added.cors.is_none() {
            r.added.cors = cors::rejected_head(&w.g.config, &self.buf);
        }
        let head_only = self.buf.starts_with(b"HEAD ");
        let head_len = write_whole(&mut out, &r, ConnHeader::Close, head_only);
        let (sent, payload) = (out.len() as u64, (out.len() - head_len) as u64);
        let received = self.buf.len() as u64;
        let limit = w.g.config.server.timeouts.write;
        let outcome = match self.stream.flush(&mut out, limit).await {
            Ok(()) => Outcome::CloseLingering,
            Err(_) => Outcome::Close,
        };
        Refused {
            outcome,
            sent,
            payload,
            received,
        }
    }

    /// Only an HTTP/1.1 request can switch protocols (RFC 9110 §7.8: an `Upgrade` received
    /// in an HTTP/1.0 request MUST be ignored).
    fn can_tunnel(&self, head: &RequestHead) -> bool {
        head.version == Version::Http11
    }

    async fn tunnel(
        &mut self,
        w: &Cx<'_>,
        _head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
        origin: super::TunnelOrigin<'_>,
    ) -> Result<super::TunnelEnd, GatewayError> {
        super::h1_tunnel::tunnel(self, w, st, r, origin).await
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
    /// A `101 Switching Protocols`: the origin's `Upgrade` lines and `connection: upgrade`
    /// (RFC 9110 §7.8: a sender of Upgrade sends the upgrade option too).
    Upgrade,
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
            out.put_slice(e.fields());
        }
        // status line, configured fields and content-length, rendered at config load (line
        // by line only when the gateway's CORS fields replace the mock's own)
        // (the status line anew when the route's response mapping overwrote the status)
        Source::Mock(&ref m) | Source::Held(ref m) => {
            let edits = r.added.edits.as_ref();
            match (&r.added.cors, edits) {
                (None, None) if r.status == m.status => out.put_slice(&m.head),
                (cors, edits) => {
                    for (i, line) in m.head.split_inclusive(|&b| b == b'\n').enumerate() {
                        if i == 0 {
                            match r.status == m.status {
                                true => out.put_slice(line),
                                false => status_line(out, r.status),
                            }
                            continue;
                        }
                        let name = line.split(|&b| b == b':').next().unwrap_or_default();
                        let gone = (cors.is_some() && cors::is_cors_field(name))
                            || edits.is_some_and(|e| e.removes(name));
                        if !gone {
                            out.put_slice(line);
                        }
                    }
                }
            }
        }
        Source::Origin {
            head,
            framing,
            meta_length,
        } => {
            let reason = head.slice(head.reason);
            // the origin's reason phrase only for the origin's status (a mapped status gets
            // its standard one)
            if reason.is_empty() || r.status != head.status {
                status_line(out, r.status);
            } else {
                out.put_slice(b"HTTP/1.1 ");
                put_decimal(out, u64::from(r.status));
                out.put_u8(b' ');
                out.put_slice(reason);
                out.put_slice(b"\r\n");
            }
            // where a CORS policy applies, the origin's own `access-control-*` go (whatever the
            // request's Origin: API Gateway ignores an integration's CORS headers)
            let cors = r.added.cors.is_some();
            let edits = r.added.edits.as_ref();
            for h in &head.headers {
                let name = head.slice(h.name);
                if h.kind == HeaderKind::Regular
                    && !(cors && cors::is_cors_field(name))
                    && !edits.is_some_and(|e| e.removes(name))
                {
                    let value = compress::field_value(&r.added.encoding, name, head.slice(h.value));
                    put_line(out, name, &value);
                }
            }
            match framing {
                Some(BodyEncoder::Length { remaining }) => {
                    out.put_slice(b"content-length: ");
                    put_decimal(out, *remaining);
                    out.put_slice(b"\r\n");
                }
                Some(BodyEncoder::Chunked) => out.put_slice(b"transfer-encoding: chunked\r\n"),
                None | Some(BodyEncoder::Empty | BodyEncoder::CloseDelimited) => {
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
    if let Some((name, on)) = added.canary {
        put_line(out, name.as_bytes(), if on { b"1" } else { b"0" });
    }
    if let Some(e) = &added.edits {
        e.each(|n, v| put_line(out, n, v));
    }
    if let Some(c) = &added.cors {
        c.each(cors::vary_done(r), |n, v| put_line(out, n, v));
    }
    compress::each_field(&added.encoding, |n, v| put_line(out, n, v));
    match conn {
        ConnHeader::None => {}
        ConnHeader::KeepAlive => out.put_slice(b"connection: keep-alive\r\n"),
        ConnHeader::Close => out.put_slice(b"connection: close\r\n"),
        ConnHeader::Upgrade => {
            if let Source::Origin { head, .. } = &r.source {
                let upgrade = head.headers.iter().filter(|h| {
                    h.name.len() == 7 && head.slice(h.name).eq_ignore_ascii_case(b"upgrade")
                });
                for h in upgrade {
                    put_line(out, b"upgrade", head.slice(h.value));
                }
            }
            out.put_slice(b"connection: upgrade\r\n");
        }
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
pub(super) fn rate_limit_fields(out: &mut BytesMut, t: &Throttled) {
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
