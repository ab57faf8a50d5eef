//! WebSocket proxying (RFC 6455) for HTTP routes with `websocket = true`: the integration's
//! side of an upgrade.
//!
//! Owns: forwarding a well-formed opening handshake ([`super::ws_handshake::classify`] said
//! so) to the origin on a fresh connection, with the usual rewrite (hop-by-hop fields dropped,
//! `X-Forwarded-*`, `Via`, `x-request-id`, path template, `strip_api_key`) plus
//! `connection: upgrade` and `upgrade: websocket` (the Sec-WebSocket-* fields, `Origin`, the
//! subprotocol and extension offers go as the client sent them); checking the origin's 101
//! against the client's key (a wrong `Sec-WebSocket-Accept` is a 502, the origin connection
//! closed: a gateway must not connect a client to something that did not accept its key);
//! handing the connection over to [`Session::tunnel`]; the open-connections gauge
//! ([`OpenGuard`]). Any other answer of the origin is relayed as a normal response; the
//! origin connection is never pooled, and the client connection closes after it (the client
//! may have sent frames behind its handshake, which must not be read as a request). Leaves
//! out: the relay itself and its timeouts (the session's, see `session::h1_tunnel`), auth,
//! keys and throttling (the lifecycle applied them to the upgrade request: one token per
//! connection), the access log line (the lifecycle writes it when the tunnel ended: status 101,
//! bytes both ways, latency = the connection's duration).
//!
//! Data flow: request head → rewritten head + upgrade fields → [`crate::client::upgrade`]
//! (fresh connection, final head, 101 included) → 101: [`check_switch`] → filtered 101 →
//! [`Session::tunnel`] until the tunnel ends → origin connection closed. Other status:
//! [`super::relay::relay_response`] → origin connection closed.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::http::HttpCall;
use super::rewrite::{listener_authority, write_request_fields};
use super::ws_handshake::{check_switch, Key};
use super::RequestCtx;
use crate::client::{self, ClientCx, Outbound};
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::metrics::Shard;
use crate::response::Response;
use crate::session::{Session, TunnelEnd, TunnelOrigin};
use crate::worker::Cx;

/// Counts a WebSocket connection as open on its route for as long as it lives, however the
/// tunnel ends (the gauge `tollgate_websocket_connections`).
struct OpenGuard<'a> {
    shard: &'a Shard,
    route: usize,
}

impl<'a> OpenGuard<'a> {
    fn new(w: &'a Cx<'_>, route: usize) -> Option<Self> {
        let shard = &w.g.metrics;
        w.g.record_metrics.then(|| {
            shard.websocket_opened(route);
            OpenGuard { shard, route }
        })
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.shard.websocket_closed(self.route);
    }
}

/// The access log's reason for a tunnel that did not end by both sides closing.
fn ended_why(end: TunnelEnd) -> Option<&'static str> {
    match end {
        TunnelEnd::Closed => None,
        TunnelEnd::HalfClosed => Some("half-closed side did not finish"),
        TunnelEnd::Idle => Some("idle timeout (websocket_idle_ms)"),
        TunnelEnd::Drained => Some("closed by shutdown"),
        TunnelEnd::ClientBroken => Some("client connection broken"),
        TunnelEnd::OriginBroken => Some("origin connection broken"),
    }
}

/// Forwards the opening handshake with `key` and, on the origin's 101, tunnels the
/// connection until it ends (`idle`: the route's `websocket_idle_ms`).
pub async fn run<S: Session>(
    w: &Cx<'_>,
    conn: &mut S,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    call: &HttpCall<'_>,
    key: Key,
    idle: Duration,
) -> Result<(), GatewayError> {
    let head = req.head;
    let up =
        w.g.upstreams
            .get(call.upstream)
            .ok_or(GatewayError::NoTarget)?;
    // a handshake has no content (classify checked): a `content-length: 0` is consumed
    conn.skip_body(head, st);
    // whatever the origin answers, this client connection ends with this exchange
    st.keep_alive = false;
    let strip = call
        .forwarding
        .strip_api_key
        .then_some(w.g.config.throttle.api_key_header.as_bytes());
    let mut out = BytesMut::with_capacity(head.head_len() + 512);
    let local = listener_authority(head, conn.facts());
    let rewrite = call.path.map(|t| (t, req.params));
    let facts = conn.facts();
    super::rewrite::with_mapping(w, facts, head, st, req.params, |mapped| {
        let how = super::rewrite::Outgoing {
            rewrite,
            strip,
            edits: st.edits.as_deref(),
            mapped,
            body_len: None,
            base: st.served.strip,
        };
        write_request_fields(
            &mut out,
            head,
            &st.request_id,
            facts,
            local.as_deref(),
            &how,
        );
    });
    // RFC 9110 §7.8: Upgrade with the `upgrade` connection option (both hop-by-hop, so the
    // rewrite dropped the client's); RFC 6455 §4.1 items 5-6
    out.extend_from_slice(b"upgrade: websocket\r\nconnection: upgrade\r\n\r\n");
    let outbound = Outbound {
        first: out.freeze(),
        whole: true,
        idempotent: false,
        replay_on_stale: false,
        is_head: false,
    };
    let ccx = ClientCx {
        buffers: &w.buffers,
        limits: &w.g.config.server.limits,
        write: w.g.config.server.timeouts.write,
        random: w.ids.random(),
    };
    let timeout = call.forwarding.timeout.unwrap_or(up.response_timeout);
    let mut endpoint = None;
    let sent_at = Instant::now();
    let answered = client::upgrade::exchange(&ccx, up, &outbound, timeout, &mut endpoint).await;
    st.endpoint = endpoint;
    st.integration = Some(sent_at.elapsed());
    let (mut uc, rh) = answered?;
    st.upstream_status = Some(rh.status);
    let switched = rh.status == 101;
    let result = if switched {
        match check_switch(&rh, head, &key) {
            Ok(()) => {
                // the 101's head in an allocation of its own: the head split from the
                // connection's pooled read buffer would pin all of it for the tunnel's life
                let mut own = rh.clone();
                own.buf = bytes::Bytes::copy_from_slice(&rh.buf);
                drop(rh);
                let rh = own;
                let _open = OpenGuard::new(w, req.route);
                let origin = TunnelOrigin {
                    stream: &mut uc.stream,
                    early: &mut uc.buf,
                    idle,
                };
                let r = Response::origin(&rh, None);
                // kept, not returned early: the origin connection is released below whatever
                // happened (its target's in-flight count, least_requests)
                match conn.tunnel(w, head, st, r, origin).await {
                    Ok(end) => {
                        st.error = ended_why(end).map(GatewayError::TunnelEnded);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Err(m) => Err(GatewayError::UpstreamProtocol(m)),
        }
    } else {
        // refused (403, 404, a plain 200...): relayed as any response
        super::relay::relay_response(w, conn, head, st, &mut uc, &rh, timeout)
            .await
            .map(|_| ())
    };
    if !switched {
        st.integration = Some(sent_at.elapsed()); // a tunnel's is its handshake, set above
    }
    // never pooled: after a 101 it carried another protocol; after a refusal, the origin may
    // still have switched or be mid-way. A TLS origin gets close_notify however the tunnel
    // ended (idle, drain, the client's side broken; RFC 8446 §6.1), unless its end was
    // already passed on
    uc.stream.notify_close();
    let buf = up.release(uc, false);
    if buf.capacity() != 0 {
        w.buffers.give(buf); // (a tunnel gave it back already)
    }
    result
}
