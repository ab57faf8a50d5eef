//! The response side of the HTTP integration: relay an origin's response to the client.
//!
//! Owns: turning a parsed origin [`ResponseHead`] into a [`Response`] (end-to-end fields,
//! framing chosen for this client; the lifecycle's response filter adds `date` and
//! `x-request-id`, the session serialises it with the connection decision), holding
//! that head back until the body's buffered start decodes (so an origin whose body is broken
//! from the start is still a 502), the rules for responses without content (1xx/204/304 carry
//! no body and no framing, RFC 9110 §6.4.1) and whether the origin connection is still in sync
//! afterwards. Leaves out: connecting, sending the request and reading the head (see
//! [`super::http`] and [`crate::client`]), and the body copy loop itself (`http::pump`).
//!
//! Data flow: origin buffer → [`crate::http::BodyDecoder`] → [`BodyEncoder`] → one output
//! buffer, written to the client by the session (`write_part`) once everything buffered is
//! decoded, then streamed by the session (`stream_body`) as the body arrives.

use std::time::Duration;

use bytes::BytesMut;

use super::http::{PumpFail, SourceFail, FLUSH_BYTES};
use crate::client::{BodyReader, UpstreamConn};
use crate::error::GatewayError;
use crate::http::{
    status_has_content, BodyChunk, BodyEncoder, BodyKind, Method, RequestHead, ResponseHead,
    Version,
};
use crate::proxy::conn::Downstream;
use crate::proxy::lifecycle::{ExchangeState, ResponseState};
use crate::proxy::worker::Cx;
use crate::response::Response;
use crate::session::h1::{self, ConnHeader};

/// Sends the response head and body to the client. Ok(true): the origin's message was read to
/// its end and nothing suggests the origin connection is out of sync (it may be reused).
///
/// The head is held back until the body's first step (first data bytes, or its end) and every
/// further step already buffered have decoded: as long as no byte reached the client, a broken
/// origin body (a malformed first chunk, a close before the first byte) is still answered with
/// a 502 instead of an empty close.
pub(super) async fn relay_response(
    w: &Cx<'_>,
    conn: &mut Downstream,
    head: &RequestHead,
    st: &mut ExchangeState,
    uc: &mut UpstreamConn,
    rh: &ResponseHead,
    read_limit: Duration,
) -> Result<bool, GatewayError> {
    let client_11 = head.version == Version::Http11;
    let mut enc = match rh.body {
        BodyKind::Empty => BodyEncoder::Empty,
        BodyKind::Length(n) => BodyEncoder::Length { remaining: n },
        BodyKind::Chunked | BodyKind::CloseDelimited if client_11 => BodyEncoder::Chunked,
        BodyKind::Chunked | BodyKind::CloseDelimited => BodyEncoder::CloseDelimited,
    };
    let mut body = BodyReader::new(uc, rh, read_limit, w.buffers.size());
    st.upstream_status = Some(rh.status);
    // Every failure up to here is still answerable: 502, or 504 when the origin goes quiet.
    let first = body.next_chunk().await?;
    let broken = |_| GatewayError::UpstreamProtocol("upstream body broken");
    if enc == BodyEncoder::CloseDelimited {
        st.keep_alive = false; // HTTP/1.0 client: the close delimits the body
    }
    if w.draining.get() {
        st.keep_alive = false;
    }
    let mut out = BytesMut::with_capacity(rh.buf.len() + 256);
    // A HEAD response keeps the origin's Content-Length as metadata (RFC 9110 §8.6), as one
    // valid value: "5, 5" collapsed, an invalid or conflicting one dropped (a strict client or
    // cache downstream must not be handed a malformed length); 1xx/204/304 get none whatever
    // the origin said (RFC 9110 §6.4.1, §15.3.5, §15.4.5).
    let meta = head.method_kind == Method::Head && status_has_content(rh.status);
    let meta_length = rh.declared_length().filter(|_| meta);
    let mut r = Response::origin(rh, &enc, meta_length);
    crate::proxy::lifecycle::response_filter(w, conn.facts(), st.request_id.bytes(head), &mut r);
    h1::write_head(
        &mut out,
        &r,
        ConnHeader::for_client(head.version, st.keep_alive),
    );
    st.bytes_out += out.len() as u64;
    st.head_out += out.len() as u64; // the head alone: the access log's responseLength excludes it
    st.status = rh.status;
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
            step = body.next_buffered().map_err(broken)?;
        }
    }
    // 1xx/204/304 end at their head (RFC 9112 §6.3 items 1-2): bytes an origin sent after it
    // (e.g. a 204 with Content-Length: 5 and five bytes) are not body, and would be read as the
    // next response on a reused connection.
    let in_sync = rh.body != BodyKind::CloseDelimited && !stray_framing(rh);
    // From here on bytes reach the client: an error can only close the connection.
    st.response = ResponseState::Started;
    conn.write_part(w, &mut out).await?;
    if ended {
        st.response = ResponseState::Complete;
        return Ok(in_sync);
    }
    let r = conn
        .stream_body(
            w,
            &mut body,
            &mut out,
            &mut enc,
            read_limit,
            &mut st.bytes_out,
        )
        .await;
    match r {
        Ok(()) => {
            st.response = ResponseState::Complete;
            Ok(in_sync)
        }
        Err(PumpFail::Sink) => Err(GatewayError::ClientGone),
        Err(PumpFail::Source(SourceFail::Timeout)) => Err(GatewayError::UpstreamTimeout),
        Err(PumpFail::Source(_)) => Err(GatewayError::UpstreamProtocol("upstream body broken")),
    }
}

/// A response without content by its status (RFC 9110 §6.4.1) that still carries framing the
/// origin must not send there: Transfer-Encoding on any of them, Content-Length on 1xx/204
/// (RFC 9110 §8.6; a 304 may carry it as metadata). Such an origin may also have sent body
/// bytes after the head, so its connection is not reused.
fn stray_framing(rh: &ResponseHead) -> bool {
    if status_has_content(rh.status) {
        return false;
    }
    rh.header("transfer-encoding").is_some()
        || (rh.status != 304 && rh.header("content-length").is_some())
}
