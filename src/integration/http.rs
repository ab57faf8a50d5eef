//! The HTTP integration: forward a request to an upstream and relay the response back.
//!
//! Data flow: the request head is rewritten into an output buffer (hop-by-hop headers dropped,
//! `X-Forwarded-*` and `x-request-id` added, the API key header dropped when the route says
//! `strip_api_key`, framing re-emitted), followed by the body as the client's session decodes
//! it ([`Session::open_body`], [`Session::buffered_chunk`], [`Session::next_chunk`]),
//! re-encoded for the origin, *before an origin is chosen*: up to the route's
//! `request_buffer_bytes`, as nginx does by default (a slow client then holds only its own
//! memory, never an origin connection). If that is the whole request it is sent in one write
//! and can be replayed once on a fresh connection when a pooled one turns out dead; otherwise
//! the rest of the body is streamed (decode → encode through bounded buffers, never whole in
//! memory), its reads still under the session's minimum-rate rule. The route's `timeout_ms`,
//! when set, replaces the upstream's `response_timeout_ms`. The response head is parsed by
//! [`crate::client`] and handed to [`super::relay`], which gives it to the session to re-frame
//! and stream to the client. Connect failures move to the next target (nothing was sent, so
//! any method is safe to retry). Nothing here knows the client's protocol.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::rewrite::{listener_authority, write_request_head};
use super::ws_handshake::{self, Opening};
use super::{Handled, RequestCtx};
use crate::client::{self, BodySource, ClientCx, Outbound};
use crate::config::{Forwarding, WebSocket};
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::{BodyChunk, BodyEncoder, BodyKind, Method};
use crate::router::PathTemplate;
use crate::session::{Session, FLUSH_BYTES};
use crate::transport::Stream;
use crate::worker::Cx;

/// A path rewrite: the route's template and the matched parameter values.
pub type Rewrite<'a> = (&'a PathTemplate, &'a [&'a [u8]]);

/// The route's HTTP integration config.
pub struct HttpCall<'a> {
    /// Index into the worker's upstreams.
    pub upstream: usize,
    /// The path template, when the route rewrites the path.
    pub path: Option<&'a PathTemplate>,
    pub forwarding: &'a Forwarding,
}

/// Forwards the request and streams the origin's response to the client.
pub async fn run<'a, S: Session>(
    w: &Cx<'_>,
    conn: &mut S,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    call: HttpCall<'_>,
) -> Result<Handled<'a>, GatewayError> {
    // A WebSocket opening on a route that allows it, over a session that can hand its
    // connection over, is an upgrade; anything else (other Upgrade tokens, HTTP/1.0, routes
    // without `websocket`) goes on as plain HTTP, its upgrade fields stripped as hop-by-hop.
    if let WebSocket::On { idle } = call.forwarding.websocket {
        if conn.can_tunnel(req.head) {
            if let Opening::WebSocket(key) = ws_handshake::classify(req.head)? {
                super::websocket::run(w, conn, req, st, &call, key, idle).await?;
                return Ok(Handled::Sent);
            }
        }
    }
    let rewrite = call.path.map(|t| (t, req.params));
    forward(w, conn, req, st, call.upstream, rewrite, call.forwarding).await?;
    Ok(Handled::Sent)
}

/// Forwards the request to `upstreams[index]` and relays the response to the client.
async fn forward<S: Session>(
    w: &Cx<'_>,
    conn: &mut S,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    index: usize,
    rewrite: Option<Rewrite<'_>>,
    fwd: &Forwarding,
) -> Result<(), GatewayError> {
    let (head, params) = (req.head, req.params);
    let up = w.g.upstreams.get(index).ok_or(GatewayError::NoTarget)?;
    let limits = &w.g.config.server.limits;
    let timeouts = &w.g.config.server.timeouts;
    let strip = fwd
        .strip_api_key
        .then_some(w.g.config.throttle.api_key_header.as_bytes());

    // Request head, then whatever of the body the buffering phase takes.
    let mut out = BytesMut::with_capacity(head.head_len() + 512);
    let local = listener_authority(head, conn.facts());
    // a body the request-mapping phase replaced (transformed, templated, decoded) is held:
    // the origin gets it framed by its length
    let replaced = st
        .edits
        .as_ref()
        .filter(|e| e.body_replaced)
        .and(st.held_body.as_ref())
        .map(|b| b.len() as u64);
    super::rewrite::with_mapping(w, conn.facts(), head, st, params, |mapped| {
        let how = super::rewrite::Outgoing {
            rewrite,
            strip,
            edits: st.edits.as_deref(),
            mapped,
            body_len: replaced,
            base: st.served.strip,
        };
        write_request_head(
            &mut out,
            head,
            &st.request_id,
            conn.facts(),
            local.as_deref(),
            &how,
        );
    });
    let mut enc = match (replaced, head.body) {
        (Some(0), _) => BodyEncoder::Empty,
        (Some(n), _) => BodyEncoder::Length { remaining: n },
        (None, BodyKind::Length(n)) => BodyEncoder::Length { remaining: n },
        (None, BodyKind::Chunked) => BodyEncoder::Chunked,
        (None, BodyKind::Empty | BodyKind::CloseDelimited) => BodyEncoder::Empty,
    };
    // From here on, only the session's body reader knows where the body ends.
    let mut body = conn.open_body(w, head, st, &fwd.body).await?;
    // The buffering phase: no origin connection is held while the client sends this part.
    let buffer = fwd.body.buffer_bytes;
    let whole = buffer_body(w, conn, &mut body, st, &mut enc, &mut out, buffer).await?;
    let first: Bytes = out.split().freeze();

    let timeout = fwd.timeout.unwrap_or(up.response_timeout);
    let req = Outbound {
        first,
        whole,
        idempotent: head.method_kind.is_idempotent(),
        replay_on_stale: false,
        is_head: head.method_kind == Method::Head,
    };
    let ccx = ClientCx {
        buffers: &w.buffers,
        limits,
        write: timeouts.write,
        random: w.ids.random(),
    };
    let mut endpoint = None;
    let sent_at = Instant::now();
    let sent = {
        let mut rest = ClientBody {
            w,
            conn: &mut *conn,
            body: &mut body,
            st: &mut *st,
            enc: &mut enc,
            out,
        };
        client::exchange(&ccx, up, &req, &mut rest, timeout, &mut endpoint).await
    };
    st.endpoint = endpoint;
    st.integration = Some(sent_at.elapsed());
    let (mut uc, rh) = sent?;
    // a client gone meanwhile (an HTTP/2 reset) stops the relay's origin reads: the origin
    // connection is released as not reusable below, the lifecycle logs the exchange
    let gone = conn.client_gone();
    let relay = super::relay::relay_response(w, conn, head, st, &mut uc, &rh, timeout);
    let result = client::unless(relay, gone)
        .await
        .unwrap_or(Err(GatewayError::ClientGone));
    st.integration = Some(sent_at.elapsed());
    let reusable = result.as_ref().is_ok_and(|&done| done) && rh.keep_alive;
    let buf = up.release(uc, reusable);
    w.buffers.give(buf);
    result.map(|_| ())
}

/// The buffering phase: moves the body, re-encoded by `enc`, into `out` (after the head
/// already there) until it is complete or `limit` bytes of it are buffered. True: the whole
/// body is in `out`. What the client sent with its head is taken even past a small limit (it
/// is in memory already), up to the usual flush size; once that is reached the decoder still
/// takes one step, so a body whose end follows right there (a Content-Length body exactly that
/// long, or a chunked body's last-chunk and trailers) is whole.
async fn buffer_body<S: Session>(
    w: &Cx<'_>,
    conn: &mut S,
    body: &mut S::Body,
    st: &mut ExchangeState,
    enc: &mut BodyEncoder,
    out: &mut BytesMut,
    limit: usize,
) -> Result<bool, GatewayError> {
    let head_len = out.len();
    if let BodyEncoder::Length { remaining } = enc {
        if *remaining <= limit as u64 {
            out.reserve(*remaining as usize); // it fits: one allocation for head and body
        }
    }
    let cap = head_len.saturating_add(limit.max(FLUSH_BYTES));
    loop {
        loop {
            let full = out.len() >= cap;
            match conn.buffered_chunk(body, st)? {
                Some(BodyChunk::Data(d)) => {
                    enc.encode(&d, out)?;
                    if full {
                        return Ok(false);
                    }
                }
                Some(BodyChunk::End { trailers }) => {
                    enc.finish(&trailers, out)?;
                    return Ok(true);
                }
                None => break,
            }
        }
        if out.len().saturating_sub(head_len) >= limit {
            return Ok(false); // larger than the buffer: streamed from here
        }
        match conn.next_chunk(w, body, st).await? {
            BodyChunk::Data(d) => enc.encode(&d, out)?,
            BodyChunk::End { trailers } => {
                enc.finish(&trailers, out)?;
                return Ok(true);
            }
        }
    }
}

/// The rest of a client's request body, streamed to the origin after the buffered part (its
/// reads still under the session's minimum-rate rule).
struct ClientBody<'a, 'c, S: Session> {
    w: &'a Cx<'c>,
    conn: &'a mut S,
    body: &'a mut S::Body,
    st: &'a mut ExchangeState,
    enc: &'a mut BodyEncoder,
    /// Encoded bytes waiting to be written to the origin.
    out: BytesMut,
}

impl<S: Session> BodySource for ClientBody<'_, '_, S> {
    /// Decodes what the client already sent, encodes it for the origin, and writes once the
    /// output is large or the session must read more (one write per client read, as a copy
    /// loop would).
    async fn send_rest(&mut self, dst: &mut Stream) -> Result<(), GatewayError> {
        let write = self.w.g.config.server.timeouts.write;
        let sink = |_| GatewayError::UpstreamProtocol("upstream write failed");
        loop {
            let step = match self.conn.buffered_chunk(self.body, self.st)? {
                Some(step) => step,
                None => {
                    if !self.out.is_empty() {
                        dst.flush(&mut self.out, write).await.map_err(sink)?;
                    }
                    self.conn.next_chunk(self.w, self.body, self.st).await?
                }
            };
            match step {
                BodyChunk::Data(d) => {
                    self.enc.encode(&d, &mut self.out)?;
                    if self.out.len() >= FLUSH_BYTES {
                        dst.flush(&mut self.out, write).await.map_err(sink)?;
                    }
                }
                BodyChunk::End { trailers } => {
                    self.enc.finish(&trailers, &mut self.out)?;
                    return dst.flush(&mut self.out, write).await.map_err(sink);
                }
            }
        }
    }

    async fn requester_gone(&self) {
        self.conn.client_gone().await
    }
}
