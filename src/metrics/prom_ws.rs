//! The WebSocket metric families of the Prometheus exposition (a part of [`super`]).
//!
//! Owns: `tollgate_websocket_connections` (gauge: tunnels open now),
//! `tollgate_websocket_upgrades_total` (counter: origin 101s relayed) and
//! `tollgate_websocket_duration_seconds_total` (counter: the summed life of the tunnels that
//! ended; kept out of the request latency histogram), each by route, for the routes with
//! `websocket = true`. Leaves out: counting (the worker shards, [`crate::metrics::Shard`]) and
//! the text format's helpers (the parent's).
//!
//! Data flow: merged [`RouteStats`] + the config's routes → the families' lines.

use std::fmt::Write as _;

use super::{family, route_labels, Context};
use crate::metrics::RouteStats;

/// One family: its name, type, help, and its value for a route.
type WsFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&RouteStats) -> String,
);

/// Open WebSocket connections (gauge), upgrades and tunnel time (counters), for the routes
/// with `websocket = true`.
pub(super) fn websocket_families(out: &mut String, cx: &Context<'_>, routes: &[RouteStats]) {
    let ws = |i: usize| {
        cx.config.routes.get(i).is_some_and(|r| {
            matches!(
                &r.integration,
                crate::config::Integration::Http { forwarding, .. }
                    if forwarding.websocket != crate::config::WebSocket::Off
            )
        })
    };
    let families: [WsFamily; 3] = [
        (
            "tollgate_websocket_connections",
            "gauge",
            "WebSocket connections open now, by route.",
            |r| r.websocket_open.to_string(),
        ),
        (
            "tollgate_websocket_upgrades_total",
            "counter",
            "WebSocket connections upgraded (origin's 101 relayed), by route.",
            |r| r.websocket_upgrades.to_string(),
        ),
        (
            "tollgate_websocket_duration_seconds_total",
            "counter",
            "Summed duration of the WebSocket connections that ended, by route.",
            |r| format!("{}", r.websocket_duration_us as f64 / 1e6),
        ),
    ];
    let none = RouteStats::default();
    for (name, kind, help, value) in families {
        family(out, name, kind, help);
        for i in (0..cx.config.routes.len()).filter(|&i| ws(i)) {
            let v = value(routes.get(i).unwrap_or(&none));
            let route = route_labels(cx, i);
            let _ = writeln!(out, "{name}{{route=\"{route}\"}} {v}");
        }
    }
}
