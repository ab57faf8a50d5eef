//! An exchange that may switch protocols (RFC 9110 §7.8, §15.2.2): a WebSocket opening
//! handshake (RFC 6455) forwarded to an origin.
//!
//! Owns: [`exchange`], which sends an upgrade request on a FRESH connection (never one from
//! the pool: a connection that may become a tunnel must start clean) and reads the origin's
//! final answer, a `101` included. The caller never hands such a connection back to the pool:
//! after a 101 it carries another protocol, after any other answer to an upgrade request its
//! state is the origin's to know (it may have switched anyway). Leaves out: what the request
//! says and checking the 101 (the integration's), relaying the tunnel (the session's).
//!
//! Data flow: `Outbound.first` (the whole head, no body) → a fresh [`UpstreamConn`] → the
//! response head parsed from its read buffer, which keeps what the origin sent after it.

use std::net::SocketAddr;
use std::time::Duration;

use super::{read_response_head, ClientCx, HeadFail, Outbound, Switch, Upstream, UpstreamConn};
use crate::error::GatewayError;
use crate::http::ResponseHead;

/// Connects a fresh connection (moving on to the next usable target when connecting fails:
/// nothing was sent), sends `req` and reads the final response head within `timeout`, a 101
/// included. `endpoint` is set to the target last tried. No replay: an upgrade is sent once.
pub async fn exchange(
    cx: &ClientCx<'_>,
    up: &Upstream,
    req: &Outbound,
    timeout: Duration,
    endpoint: &mut Option<SocketAddr>,
) -> Result<(UpstreamConn, ResponseHead), GatewayError> {
    let mut target = up.pick(cx.random).ok_or(GatewayError::NoTarget)?;
    let mut connect_failures = 0;
    let mut uc = loop {
        match up.connect(target, cx.buffers.take()).await {
            Ok(c) => break c,
            Err((e, buf)) => {
                cx.buffers.give(buf);
                connect_failures += 1;
                match up.next_usable(target) {
                    Some(next) if connect_failures < up.len() => target = next,
                    _ => return Err(e),
                }
            }
        }
    };
    *endpoint = Some(uc.addr);
    if uc
        .stream
        .write_all(req.first.clone(), cx.write)
        .await
        .is_err()
    {
        cx.buffers.give(up.release(uc, false));
        return Err(GatewayError::UpstreamProtocol("upstream write failed"));
    }
    match read_response_head(cx, &mut uc, false, timeout, Switch::Accepted).await {
        Ok(rh) => {
            if rh.status >= 500 {
                up.note_error(uc.target);
            } else {
                up.note_success(uc.target);
            }
            Ok((uc, rh))
        }
        Err(f) => {
            up.note_error(uc.target);
            cx.buffers.give(up.release(uc, false));
            Err(match f {
                HeadFail::Timeout => GatewayError::UpstreamTimeout,
                HeadFail::Stale => GatewayError::UpstreamProtocol("upstream closed"),
                HeadFail::Bad(m) => GatewayError::UpstreamProtocol(m),
            })
        }
    }
}
