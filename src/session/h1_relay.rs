//! Relaying an origin's response to an HTTP/1 client: the session's side of the HTTP
//! integration's response.
//!
//! Owns: the framing for this client (chunked for HTTP/1.1 clients when the origin delimits by
//! close or chunks; close-delimited for HTTP/1.0 clients, which then lose persistence, RFC 9112
//! §6.3/§9.3), holding the head back until the body's buffered start decodes (so an origin
//! whose body is broken from the start is still a 502), and the copy loop ([`pump`]) that
//! streams the rest re-framed through bounded buffers. Leaves out: what the response says
//! (built by the integration, filtered by the lifecycle) and the origin connection's fate
//! (the integration releases it).
//!
//! Data flow: the body's decoded steps from a [`ResponseBody`] (an origin's: its buffer
//! through the outbound client's decoder; nothing here knows where they come from) →
//! [`BodyEncoder`] → one output buffer → the client's [`Stream`]: the head with every buffered
//! step in one write, then the rest as it arrives.

use std::time::Duration;

use bytes::BytesMut;

use super::h1::{write_head, ConnHeader, Downstream};
use super::FLUSH_BYTES;
use crate::error::GatewayError;
use crate::exchange::{ExchangeState, ResponseState};
use crate::http::{BodyChunk, BodyEncoder, BodyKind, HttpError, RequestHead, Version};
use crate::response::{Response, ResponseBody, Source};
use crate::transport::Stream;
use crate::worker::Cx;

/// Sends the response head and body to the client. Ok(true): the origin's message was read to
/// its end.
///
/// The head is held back until the body's first step (first data bytes, or its end) and every
/// further step already buffered have decoded: as long as no byte reached the client, a broken
/// origin body (a malformed first chunk, a close before the first byte) is still answered with
/// a 502 instead of an empty close.
pub(super) async fn relay(
    conn: &mut Downstream,
    w: &Cx<'_>,
    head: &RequestHead,
    st: &mut ExchangeState,
    mut r: Response<'_>,
    body: &mut impl ResponseBody,
) -> Result<bool, GatewayError> {
    let (kind, cap) = match &r.source {
        Source::Origin { head: rh, .. } => (rh.body, rh.buf.len()),
        _ => (BodyKind::Empty, 0),
    };
    // a body compressed for this client is re-framed as one of unknown length
    let (kind, mut body) = crate::compress::encode::relayed(&mut r, kind, body);
    let body = &mut body;
    let client_11 = head.version == Version::Http11;
    let mut enc = match kind {
        BodyKind::Empty => BodyEncoder::Empty,
        BodyKind::Length(n) => BodyEncoder::Length { remaining: n },
        BodyKind::Chunked | BodyKind::CloseDelimited if client_11 => BodyEncoder::Chunked,
        BodyKind::Chunked | BodyKind::CloseDelimited => BodyEncoder::CloseDelimited,
    };
    if let Source::Origin { framing, .. } = &mut r.source {
        *framing = Some(enc);
    }
    // Every failure up to here is still answerable: 502, or 504 when the origin goes quiet.
    let first = body.next_chunk().await?;
    let broken = |_: HttpError| GatewayError::UpstreamProtocol("upstream body broken");
    if enc == BodyEncoder::CloseDelimited || w.draining.get() {
        st.keep_alive = false; // HTTP/1.0 client: the close delimits the body
    }
    let mut out = BytesMut::with_capacity(cap + 256);
    write_head(
        &mut out,
        &r,
        ConnHeader::for_client(head.version, st.keep_alive),
    );
    st.bytes_out += out.len() as u64;
    st.head_out += out.len() as u64; // the head alone: the access log's responseLength excludes it
    st.status = r.status;
    let mut ended = false;
    let mut step = Some(first);
    // The first step, and every further one already buffered (up to FLUSH_BYTES), is decoded
    // before the head leaves: a framing error in any of them is still a 502.
    while let Some(chunk) = step.take() {
        match chunk {
            BodyChunk::Data(d) => {
                st.bytes_out += d.len() as u64;
                enc.encode(&d, &mut out).map_err(broken)?;
            }
            BodyChunk::End { trailers } => {
                enc.finish(&trailers, &mut out).map_err(broken)?;
                ended = true;
                break;
            }
        }
        if out.len() < FLUSH_BYTES {
            step = body.next_buffered()?;
        }
    }
    // From here on bytes reach the client: an error can only close the connection.
    st.response = ResponseState::Started;
    let write = w.g.config.server.timeouts.write;
    conn.stream
        .flush(&mut out, write)
        .await
        .map_err(|_| GatewayError::ClientGone)?;
    if !ended {
        match pump(body, &mut conn.stream, &mut out, &mut enc, write).await {
            Ok(n) => st.bytes_out += n,
            Err((n, e)) => {
                st.bytes_out += n;
                return Err(e);
            }
        }
    }
    st.response = ResponseState::Complete;
    Ok(true)
}

/// Copies the rest of a body from `src` to `dst`: take what is at hand, encode into `out`,
/// flush when `out` is large or the source has to wait for more. Memory stays bounded by the
/// buffers (the source's and `out`, flushed at [`FLUSH_BYTES`]). Returns the payload bytes
/// moved (also on failure). Failures: [`GatewayError::ClientGone`] when writing to the client
/// fails, [`GatewayError::UpstreamTimeout`] when the source went quiet, else the body is
/// broken (malformed, cut short, or truncated) — the client connection then closes without a
/// proper end of the body.
async fn pump(
    src: &mut impl ResponseBody,
    dst: &mut Stream,
    out: &mut BytesMut,
    enc: &mut BodyEncoder,
    write_limit: Duration,
) -> Result<u64, (u64, GatewayError)> {
    let mut moved = 0u64;
    let broken = |_: HttpError| GatewayError::UpstreamProtocol("upstream body broken");
    let failed = |e: GatewayError| match e {
        GatewayError::UpstreamTimeout => e,
        _ => GatewayError::UpstreamProtocol("upstream body broken"),
    };
    let r: Result<(), GatewayError> = async {
        loop {
            let step = match src.next_buffered().map_err(failed)? {
                Some(step) => step,
                None => {
                    let f = dst.flush(out, write_limit).await;
                    f.map_err(|_| GatewayError::ClientGone)?;
                    src.next_chunk().await.map_err(failed)?
                }
            };
            match step {
                BodyChunk::Data(d) => {
                    moved += d.len() as u64;
                    enc.encode(&d, out).map_err(broken)?;
                    if out.len() >= FLUSH_BYTES {
                        let f = dst.flush(out, write_limit).await;
                        f.map_err(|_| GatewayError::ClientGone)?;
                    }
                }
                BodyChunk::End { trailers } => {
                    enc.finish(&trailers, out).map_err(broken)?;
                    let f = dst.flush(out, write_limit).await;
                    return f.map_err(|_| GatewayError::ClientGone);
                }
            }
        }
    }
    .await;
    match r {
        Ok(()) => Ok(moved),
        Err(e) => Err((moved, e)),
    }
}
