//! Validation of how an HTTP integration forwards a request: request-body buffering and the
//! minimum body rate (`[server.limits]` → `[[upstream]]` → `[[route]]`, the most specific wins),
//! the per-route integration timeout (`timeout_ms`), `strip_api_key`, and WebSocket proxying
//! (`websocket`, `websocket_idle_ms`, defaulting to `server.timeouts.websocket_idle_ms`).
//!
//! Owns: the ranges of these keys (errors name the key and the line) and resolving them into one
//! [`Forwarding`] per route at load, so the hot path reads a single precomputed value. Leaves
//! out: applying them (see [`crate::session::h1_body`] and [`crate::integration::http`]).

use std::time::Duration;

use toml::Spanned;

use super::compile::Ctx;
use super::raw::{self, RawRoute, RawUpstream};

/// How a request body is read from the client, resolved for one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPolicy {
    /// Body bytes read into memory before an origin is chosen; a body that fits is sent whole
    /// (and is replayable), a larger one is streamed once this much is buffered.
    pub buffer_bytes: usize,
    /// Slowest accepted average body rate, bytes per second, once the grace period
    /// (`server.timeouts.body_rate_grace_ms`) is over; 0 = not enforced.
    pub min_rate: u64,
}

impl Default for BodyPolicy {
    fn default() -> Self {
        BodyPolicy {
            buffer_bytes: raw::DEFAULT_REQUEST_BUFFER_BYTES,
            min_rate: raw::DEFAULT_MIN_BODY_RATE,
        }
    }
}

/// Everything an HTTP route decides about forwarding, resolved at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding {
    pub body: BodyPolicy,
    /// The route's `timeout_ms`, overriding the upstream's `response_timeout_ms` (until the
    /// response head, and between reads of the response body).
    pub timeout: Option<Duration>,
    /// The API key header (`api_keys.header`) is not forwarded to the origin.
    pub strip_api_key: bool,
    /// WebSocket opening handshakes are honoured on this route (`websocket = true`).
    pub websocket: WebSocket,
}

/// Whether a route honours WebSocket opening handshakes (RFC 6455), and how long its upgraded
/// connections may stay idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebSocket {
    /// `websocket = false` (the default): upgrade fields are stripped, plain HTTP.
    Off,
    /// `websocket = true`: no byte either way for `idle` closes the tunnel.
    On { idle: Duration },
}

/// `[server.limits]` `request_buffer_bytes` / `min_body_rate`, validated.
pub(super) fn server_policy(l: &raw::RawLimits, cx: &mut Ctx<'_>) -> BodyPolicy {
    check_buffer(
        &l.request_buffer_bytes,
        "server.limits.request_buffer_bytes",
        cx,
    );
    check_rate(&l.min_body_rate, "server.limits.min_body_rate", cx);
    BodyPolicy {
        buffer_bytes: *l.request_buffer_bytes.get_ref(),
        min_rate: *l.min_body_rate.get_ref(),
    }
}

/// `[server.timeouts]` `body_rate_grace_ms`, validated.
pub(super) fn grace(t: &raw::RawTimeouts, cx: &mut Ctx<'_>) -> Duration {
    let key = "server.timeouts.body_rate_grace_ms";
    cx.millis(&t.body_rate_grace_ms, key, &raw::BODY_RATE_GRACE_MS_RANGE)
}

/// An upstream's overrides, validated once (routes only read them).
pub(super) fn check_upstream(i: usize, u: &RawUpstream, cx: &mut Ctx<'_>) {
    if let Some(b) = &u.request_buffer_bytes {
        check_buffer(b, &format!("upstream[{i}].request_buffer_bytes"), cx);
    }
    if let Some(r) = &u.min_body_rate {
        check_rate(r, &format!("upstream[{i}].min_body_rate"), cx);
    }
}

/// A route's own forwarding settings, validated whatever else is wrong with the route (so one
/// run reports everything); on a mock route they are refused.
pub(super) fn check_route(i: usize, r: &RawRoute, cx: &mut Ctx<'_>) {
    if r.function.is_some() && r.upstream.is_none() && r.mock.is_none() {
        super::functions::check_route(i, r, cx);
        return;
    }
    if r.upstream.is_none() && r.mock.is_some() {
        refuse_on_mock(i, r, cx);
        return;
    }
    if let Some(b) = &r.request_buffer_bytes {
        check_buffer(b, &format!("route[{i}].request_buffer_bytes"), cx);
    }
    if let Some(m) = &r.min_body_rate {
        check_rate(m, &format!("route[{i}].min_body_rate"), cx);
    }
    if let Some(t) = &r.timeout_ms {
        cx.range(
            t,
            format!("route[{i}].timeout_ms"),
            &raw::ROUTE_TIMEOUT_MS_RANGE,
        );
    }
    if let Some(t) = &r.websocket_idle_ms {
        let key = format!("route[{i}].websocket_idle_ms");
        if r.websocket.as_ref().is_some_and(|w| *w.get_ref()) {
            cx.range(t, key, &raw::WEBSOCKET_IDLE_MS);
        } else {
            cx.err(t, key, "has no effect without websocket = true");
        }
    }
}

/// The route's forwarding settings (checked by [`check_route`]): its own values, else its
/// upstream's, else the server's.
pub(super) fn route(
    r: &RawRoute,
    up: &RawUpstream,
    server: BodyPolicy,
    ws_idle: Duration,
) -> Forwarding {
    let timeout = r
        .timeout_ms
        .as_ref()
        .map(|t| Duration::from_millis(*t.get_ref()));
    let pick = |route: &Option<Spanned<usize>>, up: &Option<Spanned<usize>>, d: usize| {
        route.as_ref().or(up.as_ref()).map_or(d, |v| *v.get_ref())
    };
    let buffer_bytes = pick(
        &r.request_buffer_bytes,
        &up.request_buffer_bytes,
        server.buffer_bytes,
    );
    let min_rate = r
        .min_body_rate
        .as_ref()
        .or(up.min_body_rate.as_ref())
        .map_or(server.min_rate, |v| *v.get_ref());
    Forwarding {
        body: BodyPolicy {
            buffer_bytes,
            min_rate,
        },
        timeout,
        strip_api_key: r.strip_api_key.as_ref().is_some_and(|s| *s.get_ref()),
        websocket: match &r.websocket {
            Some(w) if *w.get_ref() => WebSocket::On {
                idle: r
                    .websocket_idle_ms
                    .as_ref()
                    .map_or(ws_idle, |t| Duration::from_millis(*t.get_ref())),
            },
            _ => WebSocket::Off,
        },
    }
}

/// A mock route forwards nothing: forwarding settings on it are mistakes, reported as such.
fn refuse_on_mock(i: usize, r: &RawRoute, cx: &mut Ctx<'_>) {
    let msg = "only routes with an upstream forward requests";
    if let Some(v) = &r.request_buffer_bytes {
        cx.err(v, format!("route[{i}].request_buffer_bytes"), msg);
    }
    if let Some(v) = &r.min_body_rate {
        cx.err(v, format!("route[{i}].min_body_rate"), msg);
    }
    if let Some(v) = &r.timeout_ms {
        cx.err(v, format!("route[{i}].timeout_ms"), msg);
    }
    if let Some(v) = &r.websocket {
        // RFC 6455 needs an origin that answers the handshake: a mock cannot
        let m = "WebSocket proxying needs an HTTP integration (upstream), not a mock";
        cx.err(v, format!("route[{i}].websocket"), m);
    }
    if let Some(v) = &r.websocket_idle_ms {
        cx.err(v, format!("route[{i}].websocket_idle_ms"), msg);
    }
    if let Some(v) = &r.strip_api_key {
        cx.err(v, format!("route[{i}].strip_api_key"), msg);
    }
}

fn check_buffer(v: &Spanned<usize>, key: &str, cx: &mut Ctx<'_>) {
    cx.range(v, key, &(0..=raw::MAX_REQUEST_BUFFER_BYTES));
}

fn check_rate(v: &Spanned<u64>, key: &str, cx: &mut Ctx<'_>) {
    // bytes per second; 0 = off
    cx.range(v, key, &(0..=raw::MAX_MIN_BODY_RATE));
}

#[cfg(test)]
mod tests {
    use crate::config::from_str;

    const UP: &str = "[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:1\"]\n";

    fn fwd(c: &crate::config::Config, route: usize) -> super::Forwarding {
        match c.routes.get(route).map(|r| &r.integration) {
            Some(crate::config::Integration::Http { forwarding, .. }) => *forwarding,
            _ => panic!("route {route} is not an HTTP route"),
        }
    }

    #[test]
    fn route_overrides_upstream_overrides_server() {
        let text = format!(
            "[server.limits]\nrequest_buffer_bytes = 1000\nmin_body_rate = 10\n\
             {UP}request_buffer_bytes = 2000\n\
             [[upstream]]\nname = \"v\"\ntargets = [\"127.0.0.1:2\"]\n\
             [[route]]\nkey = \"GET /a\"\nupstream = \"u\"\nrequest_buffer_bytes = 3000\n\
             min_body_rate = 0\ntimeout_ms = 50\nstrip_api_key = true\n\
             [[route]]\nkey = \"GET /b\"\nupstream = \"u\"\n\
             [[route]]\nkey = \"GET /c\"\nupstream = \"v\"\n"
        );
        let c = from_str(&text).unwrap();
        let (a, b, v) = (fwd(&c, 0), fwd(&c, 1), fwd(&c, 2));
        assert_eq!((a.body.buffer_bytes, a.body.min_rate), (3000, 0));
        assert_eq!(a.timeout, Some(std::time::Duration::from_millis(50)));
        assert!(a.strip_api_key);
        assert_eq!((b.body.buffer_bytes, b.body.min_rate), (2000, 10));
        assert_eq!((b.timeout, b.strip_api_key), (None, false));
        assert_eq!((v.body.buffer_bytes, v.body.min_rate), (1000, 10));
        assert_eq!(
            c.server.body,
            super::BodyPolicy {
                buffer_bytes: 1000,
                min_rate: 10
            }
        );
    }

    #[test]
    fn defaults() {
        let c = from_str(&format!(
            "{UP}[[route]]\nkey = \"GET /a\"\nupstream = \"u\"\n"
        ))
        .unwrap();
        let f = fwd(&c, 0);
        assert_eq!(f.body, super::BodyPolicy::default());
        assert_eq!(f.body.buffer_bytes, 65_536);
        assert_eq!((f.timeout, f.strip_api_key), (None, false));
        assert_eq!(c.server.timeouts.body_rate_grace.as_millis(), 10_000);
    }

    #[test]
    fn out_of_range_values_name_key_and_line() {
        let text = format!(
            "[server.limits]\nrequest_buffer_bytes = 16777217\nmin_body_rate = 1073741825\n\
             [server.timeouts]\nbody_rate_grace_ms = 0\n\
             {UP}min_body_rate = 1073741825\n\
             [[route]]\nkey = \"GET /a\"\nupstream = \"u\"\ntimeout_ms = 49\n\
             [[route]]\nkey = \"GET /b\"\nupstream = \"u\"\ntimeout_ms = 29001\n\
             request_buffer_bytes = 16777217\n\
             [[route]]\nkey = \"GET /m\"\nmock = {{}}\nstrip_api_key = true\n"
        );
        let e = from_str(&text).unwrap_err();
        let mut got: Vec<_> = e.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
        got.sort_by_key(|&(_, l)| l);
        assert_eq!(
            got,
            vec![
                ("server.limits.request_buffer_bytes", 2),
                ("server.limits.min_body_rate", 3),
                ("server.timeouts.body_rate_grace_ms", 5),
                ("upstream[0].min_body_rate", 9),
                ("route[0].timeout_ms", 13),
                ("route[1].timeout_ms", 17),
                ("route[1].request_buffer_bytes", 18),
                ("route[2].strip_api_key", 22),
            ],
            "{}",
            e.render("t")
        );
        // reported also on a route whose upstream is unknown
        let e = from_str("[[route]]\nkey = \"GET /a\"\nupstream = \"nope\"\ntimeout_ms = 1\n")
            .unwrap_err();
        let keys: Vec<_> = e.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert!(keys.contains(&("route[0].timeout_ms", 4)), "{keys:?}");
        // the bounds themselves are accepted
        let ok = format!(
            "{UP}[[route]]\nkey = \"GET /a\"\nupstream = \"u\"\ntimeout_ms = 50\n\
             request_buffer_bytes = 0\nmin_body_rate = 0\n\
             [[route]]\nkey = \"GET /b\"\nupstream = \"u\"\ntimeout_ms = 29000\n\
             request_buffer_bytes = 16777216\nmin_body_rate = 1073741824\n"
        );
        from_str(&ok).unwrap();
    }

    /// `websocket` defaults to off; `websocket_idle_ms` comes from the route, else
    /// `server.timeouts.websocket_idle_ms`, else 10 minutes; a mock route refuses both, and
    /// an out-of-range or orphan idle timeout is an error naming its key and line.
    #[test]
    fn websocket_keys() {
        use super::WebSocket;
        use std::time::Duration;
        let text = format!(
            "{UP}[[route]]\nkey = \"GET /a\"\nupstream = \"u\"\nwebsocket = true\n\
             [[route]]\nkey = \"GET /b\"\nupstream = \"u\"\nwebsocket = true\n\
             websocket_idle_ms = 1500\n\
             [[route]]\nkey = \"GET /c\"\nupstream = \"u\"\n"
        );
        let c = from_str(&text).unwrap();
        let idle = |ms| WebSocket::On {
            idle: Duration::from_millis(ms),
        };
        assert_eq!(fwd(&c, 0).websocket, idle(600_000));
        assert_eq!(fwd(&c, 1).websocket, idle(1500));
        assert_eq!(fwd(&c, 2).websocket, WebSocket::Off);
        let c = from_str(&format!(
            "[server.timeouts]\nwebsocket_idle_ms = 2000\n{text}"
        ))
        .unwrap();
        assert_eq!(fwd(&c, 0).websocket, idle(2000));
        assert_eq!(fwd(&c, 1).websocket, idle(1500));
        assert_eq!(
            c.server.timeouts.websocket_idle,
            Duration::from_millis(2000)
        );

        let bad = format!(
            "[server.timeouts]\nwebsocket_idle_ms = 0\n\
             {UP}[[route]]\nkey = \"GET /a\"\nmock = {{}}\nwebsocket = true\n\
             [[route]]\nkey = \"GET /b\"\nupstream = \"u\"\nwebsocket = true\n\
             websocket_idle_ms = 86400001\n\
             [[route]]\nkey = \"GET /c\"\nupstream = \"u\"\nwebsocket_idle_ms = 5\n"
        );
        let e = from_str(&bad).unwrap_err();
        let mut got: Vec<_> = e.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
        got.sort_by_key(|&(_, l)| l);
        assert_eq!(
            got,
            vec![
                ("server.timeouts.websocket_idle_ms", 2),
                ("route[0].websocket", 9),
                ("route[1].websocket_idle_ms", 14),
                ("route[2].websocket_idle_ms", 18),
            ],
            "{}",
            e.render("t")
        );
        let r = e.render("gw.toml");
        assert!(
            r.contains("gw.toml:9:")
                && r.contains("route[0].websocket: WebSocket proxying needs an HTTP integration"),
            "{r}"
        );
    }
}
