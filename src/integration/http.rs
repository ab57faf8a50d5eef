//! The HTTP integration: forward a request to an upstream and stream the response back.
//!
//! Data flow: the request head is rewritten into an output buffer (hop-by-hop headers dropped,
//! `X-Forwarded-*` and `x-request-id` added, the API key header dropped when the route says
//! `strip_api_key`, framing re-emitted), followed by the body as [`crate::proxy::intake`] buffers it
//! *before an origin is chosen*: up to the route's `request_buffer_bytes`. If that is the whole
//! request it is sent in one write and can be replayed once on a fresh connection when a pooled
//! one turns out dead; otherwise the rest of the body is streamed (decode → encode through
//! bounded buffers, never whole in memory), its reads still under the minimum-rate rule. The
//! route's `timeout_ms`, when set, replaces the upstream's `response_timeout_ms`. The response head
//! is parsed here and handed to [`super::relay`], which filters and re-frames it for the client
//! (chunked for HTTP/1.1 clients when the origin delimits by close; close-delimited for HTTP/1.0
//! clients) and streams its body the same way, through `pump`.
//! Connect failures move to the next target (nothing was sent, so any method is safe to retry).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::rewrite::{listener_authority, write_request_head};
use super::{Handled, RequestCtx};
use crate::client::{self, BodySource, ClientCx, Outbound};
use crate::config::Forwarding;
use crate::error::GatewayError;
use crate::http::{BodyChunk, BodyDecoder, BodyEncoder, BodyKind, HttpError, Method, RequestHead};
use crate::proxy::conn::Downstream;
use crate::proxy::intake::{self, read_paced, Pace, ReadFail, Rest};
use crate::proxy::lifecycle::{BodyState, ExchangeState};
use crate::proxy::worker::Cx;
use crate::router::PathTemplate;
use crate::transport::Stream;

/// Output is flushed once this many bytes are pending, bounding memory per streamed body.
pub const FLUSH_BYTES: usize = 64 * 1024;

/// A path rewrite: the route's template and the matched parameter values.
pub type Rewrite<'a> = (&'a PathTemplate, &'a [&'a [u8]]);

/// Which side of a body copy failed.
pub(crate) enum PumpFail {
    /// Reading or decoding the source failed.
    Source(SourceFail),
    /// Writing to the destination failed.
    Sink,
}

pub(crate) enum SourceFail {
    Framing(HttpError),
    Timeout,
    /// Below the minimum body rate (request bodies only).
    TooSlow,
    Closed,
}

/// The route's HTTP integration config.
pub struct HttpCall<'a> {
    /// Index into the worker's upstreams.
    pub upstream: usize,
    /// The path template, when the route rewrites the path.
    pub path: Option<&'a PathTemplate>,
    pub forwarding: &'a Forwarding,
}

/// Forwards the request and streams the origin's response to the client.
pub async fn run<'a>(
    w: &Cx<'_>,
    conn: &mut Downstream,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    call: HttpCall<'_>,
) -> Result<Handled<'a>, GatewayError> {
    let rewrite = call.path.map(|t| (t, req.params));
    forward(
        w,
        conn,
        req.head,
        st,
        call.upstream,
        rewrite,
        call.forwarding,
    )
    .await?;
    Ok(Handled::Sent)
}

/// Forwards the request to `upstreams[index]` and streams the response to the client.
async fn forward(
    w: &Cx<'_>,
    conn: &mut Downstream,
    head: &RequestHead,
    st: &mut ExchangeState,
    index: usize,
    rewrite: Option<Rewrite<'_>>,
    fwd: &Forwarding,
) -> Result<(), GatewayError> {
    let up = w.g.upstreams.get(index).ok_or(GatewayError::NoTarget)?;
    let limits = &w.g.config.server.limits;
    let timeouts = &w.g.config.server.timeouts;
    let strip = fwd
        .strip_api_key
        .then_some(w.g.config.throttle.api_key_header.as_bytes());

    // Request head, then whatever of the body is already buffered.
    let mut out = BytesMut::with_capacity(head.head_len() + 512);
    let local = listener_authority(head, conn.facts());
    write_request_head(
        &mut out,
        head,
        &st.request_id,
        conn.facts(),
        local.as_deref(),
        rewrite,
        strip,
    );
    let mut dec = BodyDecoder::new(head.body, limits);
    let mut enc = match head.body {
        BodyKind::Length(n) => BodyEncoder::Length { remaining: n },
        BodyKind::Chunked => BodyEncoder::Chunked,
        BodyKind::Empty | BodyKind::CloseDelimited => BodyEncoder::Empty,
    };
    if !dec.is_done() {
        conn.continue_if_expected(w, head).await?;
    }
    if st.body == BodyState::Unread {
        st.body = BodyState::Partial; // from here on, only this decoder knows where it ends
    }
    // The buffering phase: no origin connection is held while the client sends this part.
    let buffer = fwd.body.buffer_bytes;
    let mut pace = Pace::new(&fwd.body, timeouts.body_rate_grace, conn.buf.len());
    let moved = &mut st.bytes_in;
    let buffered = intake::buffer_body(
        w, conn, &mut dec, &mut enc, &mut out, moved, buffer, &mut pace,
    );
    let whole = buffered.await?;
    if whole {
        st.body = BodyState::Done;
    }
    let first: Bytes = out.split().freeze();

    let timeout = fwd.timeout.unwrap_or(up.response_timeout);
    let req = Outbound {
        first,
        whole,
        idempotent: head.method_kind.is_idempotent(),
        is_head: head.method_kind == Method::Head,
    };
    let mut rest = ClientBody {
        conn,
        rest: Rest {
            dec: &mut dec,
            enc: &mut enc,
            out,
            pace: &mut pace,
        },
        bytes_in: &mut st.bytes_in,
        state: &mut st.body,
        limits: (timeouts.body_read, timeouts.write, w.buffers.size()),
    };
    let ccx = ClientCx {
        buffers: &w.buffers,
        limits,
        write: timeouts.write,
        random: w.ids.random(),
    };
    let sent_at = Instant::now();
    let sent = client::exchange(&ccx, up, &req, &mut rest, timeout, &mut st.endpoint).await;
    st.integration = Some(sent_at.elapsed());
    let (mut uc, rh) = sent?;
    let result = super::relay::relay_response(w, conn, head, st, &mut uc, &rh, timeout).await;
    st.integration = Some(sent_at.elapsed());
    let reusable = result.as_ref().is_ok_and(|&done| done) && rh.keep_alive;
    let buf = up.release(uc, reusable);
    w.buffers.give(buf);
    result.map(|_| ())
}

/// The rest of a client's request body, streamed to the origin after the buffered part (its
/// reads still under the minimum-rate rule).
struct ClientBody<'a, 'r> {
    conn: &'a mut Downstream,
    rest: Rest<'r>,
    bytes_in: &'a mut u64,
    state: &'a mut BodyState,
    /// Per-read and per-write bounds, read size.
    limits: (Duration, Duration, usize),
}

impl BodySource for ClientBody<'_, '_> {
    async fn send_rest(&mut self, dst: &mut Stream) -> Result<(), GatewayError> {
        let r = &mut self.rest;
        let pumped = pump(
            &mut self.conn.stream,
            &mut self.conn.buf,
            r.dec,
            dst,
            &mut r.out,
            r.enc,
            self.limits,
            self.bytes_in,
            Some(&mut *r.pace),
        )
        .await;
        match pumped {
            Ok(()) => {
                *self.state = BodyState::Done;
                Ok(())
            }
            Err(f) => Err(match f {
                PumpFail::Source(SourceFail::Framing(e)) => GatewayError::Http(e),
                PumpFail::Source(SourceFail::Timeout) => GatewayError::BodyTimeout,
                PumpFail::Source(SourceFail::TooSlow) => GatewayError::BodyTooSlow,
                PumpFail::Source(SourceFail::Closed) => GatewayError::ClientGone,
                PumpFail::Sink => GatewayError::UpstreamProtocol("upstream write failed"),
            }),
        }
    }
}

/// Copies a body from `src` to `dst`: decode what is buffered, encode into `out`, flush when
/// `out` is large or the decoder needs input, read more. Memory stays bounded by the buffers.
/// `moved` counts payload bytes. With `pace`, the reads of `src` are also under a minimum-rate
/// rule (a client's request body).
#[allow(clippy::too_many_arguments)] // both ends, both framings, the limits, the pace: distinct
pub(crate) async fn pump(
    src: &mut Stream,
    src_buf: &mut BytesMut,
    dec: &mut BodyDecoder,
    dst: &mut Stream,
    out: &mut BytesMut,
    enc: &mut BodyEncoder,
    (read_limit, write_limit, want): (Duration, Duration, usize),
    moved: &mut u64,
    mut pace: Option<&mut Pace>,
) -> Result<(), PumpFail> {
    let framing = |e: HttpError| PumpFail::Source(SourceFail::Framing(e));
    loop {
        let step = match dec.decode(src_buf) {
            Ok(s) => s,
            Err(e) => return Err(framing(e)),
        };
        match step {
            Some(BodyChunk::Data(d)) => {
                *moved += d.len() as u64;
                enc.encode(&d, out).map_err(framing)?;
                if out.len() >= FLUSH_BYTES {
                    dst.flush(out, write_limit)
                        .await
                        .map_err(|_| PumpFail::Sink)?;
                }
            }
            Some(BodyChunk::End { trailers }) => {
                enc.finish(&trailers, out).map_err(framing)?;
                return dst
                    .flush(out, write_limit)
                    .await
                    .map_err(|_| PumpFail::Sink);
            }
            None => {
                dst.flush(out, write_limit)
                    .await
                    .map_err(|_| PumpFail::Sink)?;
                match read_paced(src, src_buf, want, read_limit, pace.as_deref_mut()).await {
                    Ok(0) => match dec.eof() {
                        Ok(BodyChunk::End { trailers }) => {
                            enc.finish(&trailers, out).map_err(framing)?;
                            return dst
                                .flush(out, write_limit)
                                .await
                                .map_err(|_| PumpFail::Sink);
                        }
                        _ => return Err(PumpFail::Source(SourceFail::Closed)),
                    },
                    Ok(_) => {}
                    Err(ReadFail::Timeout) => return Err(PumpFail::Source(SourceFail::Timeout)),
                    Err(ReadFail::TooSlow) => return Err(PumpFail::Source(SourceFail::TooSlow)),
                    Err(ReadFail::Closed) => return Err(PumpFail::Source(SourceFail::Closed)),
                }
            }
        }
    }
}
