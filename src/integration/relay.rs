//! The response side of the HTTP integration: hand an origin's response to the client's
//! session.
//!
//! Owns: turning a parsed origin [`ResponseHead`] into a [`Response`] (its end-to-end fields; a
//! HEAD response's length kept as metadata), and whether the origin connection is still in sync
//! afterwards (a close-delimited body, or framing a 1xx/204/304 must not carry, RFC 9110
//! §6.4.1). Leaves out: connecting, sending the request and reading the head (see
//! [`super::http`] and [`crate::client`]); the framing for the client, holding the head back
//! until the body's start decodes, and streaming the body (the session's
//! [`Session::relay`]); the fields every response gets (the lifecycle's response filter, which
//! the session handed in puts in front).
//!
//! Data flow: origin head → [`Response::origin`] → [`Session::relay`] with the body's
//! [`BodyReader`] → Ok(in sync) back to the integration, which releases the connection.

use std::time::Duration;

use crate::client::{BodyReader, UpstreamConn};
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::{status_has_content, BodyKind, Method, RequestHead, ResponseHead};
use crate::response::Response;
use crate::session::Session;
use crate::worker::Cx;

/// Relays the origin's response through the session. Ok(true): the origin's message was read
/// to its end and nothing suggests the origin connection is out of sync (it may be reused).
pub(super) async fn relay_response<S: Session>(
    w: &Cx<'_>,
    conn: &mut S,
    head: &RequestHead,
    st: &mut ExchangeState,
    uc: &mut UpstreamConn,
    rh: &ResponseHead,
    read_limit: Duration,
) -> Result<bool, GatewayError> {
    let mut body = BodyReader::new(uc, rh, read_limit, w.buffers.size());
    st.upstream_status = Some(rh.status);
    // A HEAD response keeps the origin's Content-Length as metadata (RFC 9110 §8.6), as one
    // valid value: "5, 5" collapsed, an invalid or conflicting one dropped (a strict client or
    // cache downstream must not be handed a malformed length); 1xx/204/304 get none whatever
    // the origin said (RFC 9110 §6.4.1, §15.3.5, §15.4.5).
    let meta = head.method_kind == Method::Head && status_has_content(rh.status);
    let meta_length = rh.declared_length().filter(|_| meta);
    let r = Response::origin(rh, meta_length);
    // 1xx/204/304 end at their head (RFC 9112 §6.3 items 1-2): bytes an origin sent after it
    // (e.g. a 204 with Content-Length: 5 and five bytes) are not body, and would be read as the
    // next response on a reused connection.
    let in_sync = rh.body != BodyKind::CloseDelimited && !stray_framing(rh);
    let ended = conn.relay(w, head, st, r, &mut body).await?;
    Ok(ended && in_sync)
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
