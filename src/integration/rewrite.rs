//! The request as the origin sees it: the head rewrite of the HTTP integration.
//!
//! Owns: the request line (path template rewrite, origin-form, RFC 9112 §3.2), hop-by-hop field
//! removal (RFC 9110 §7.6.1), `strip_api_key`, `Host` for HTTP/1.0 requests that named none,
//! `X-Forwarded-For`/`-Proto`/`-Host`, `Via` (RFC 9110 §7.6.3), a generated `x-request-id`, and
//! the request's framing re-emitted; the route's parameter mapping applied as the head is
//! written (its values rendered straight into it, see [`Mapped`]) and the request-mapping
//! phase's edits honoured (a replaced body's framing and media type). Leaves out: the body
//! (see [`crate::session::h1_body`] and [`super::http`]) and sending it (see
//! [`crate::client`]).
//!
//! Data flow: the parsed [`RequestHead`] (spans into the client's bytes) and the connection's
//! [`ConnFacts`] → field lines appended to the output buffer that the body then follows.

use bytes::{BufMut, BytesMut};

use crate::exchange::{ExchangeState, RequestId};
use crate::facts::ConnFacts;
use crate::fmt::put_decimal;
use crate::http::{BodyKind, HeaderKind, RequestHead};
use crate::mapping::request::Mapped;
use crate::mapping::value::Vars;
use crate::worker::Cx;

use super::http::Rewrite;

/// Calls `f` with the route's parameter mapping over this request (`None`: the route has no
/// request operations), its `$context` entry built with just what the values read.
pub fn with_mapping<R>(
    w: &Cx<'_>,
    facts: &ConnFacts,
    head: &RequestHead,
    st: &ExchangeState,
    params: &[&[u8]],
    f: impl FnOnce(Option<&Mapped<'_>>) -> R,
) -> R {
    let mapping = st
        .route
        .and_then(|r| w.g.config.mapping.routes.get(r))
        .filter(|m| m.has_request());
    let Some(mapping) = mapping else {
        return f(None);
    };
    let body = match &st.body_json {
        crate::transform::hold::BodyJson::Parsed(j) => Some(&**j),
        _ => None,
    };
    crate::exchange::context::with_entry_for(
        mapping.request_needs,
        w,
        facts,
        head,
        st,
        st.route,
        |st| st.started.elapsed(),
        |entry| {
            let vars = Vars {
                head,
                params,
                entry,
                body,
            };
            f(Some(&Mapped {
                mapping,
                vars: &vars,
            }))
        },
    )
}

pub fn put_line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// The Host to send for a request that named none (only HTTP/1.0 may omit it, RFC 9112 §3.2):
/// the address the client connected to, `ip:port` (IPv6 in brackets, RFC 3986 §3.2.2). Such a
/// request can only match host-less routes, so the listener address is the authority it
/// addressed. `None` when the request has a Host (the common case: nothing is formatted).
pub fn listener_authority(head: &RequestHead, facts: &ConnFacts) -> Option<String> {
    if head.host.is_some() {
        return None;
    }
    let a = facts.local();
    Some(std::net::SocketAddr::new(a.ip().to_canonical(), a.port()).to_string())
}

/// The request head as the origin sees it (RFC 9110 §7.6: hop-by-hop fields removed; §7.6.3-like
/// `X-Forwarded-*` added). Always HTTP/1.1 towards the origin, so always with exactly one Host
/// (RFC 9112 §3.2): the client's, or `default_host` when an HTTP/1.0 client sent none.
pub fn write_request_head(
    out: &mut BytesMut,
    head: &RequestHead,
    request_id: &RequestId,
    facts: &ConnFacts,
    default_host: Option<&str>,
    how: &Outgoing<'_>,
) {
    write_request_fields(out, head, request_id, facts, default_host, how);
    out.put_slice(b"\r\n");
}

/// What the route changes in the request the origin gets.
#[derive(Default)]
pub struct Outgoing<'a> {
    /// The route's path template and the request's path parameters.
    pub rewrite: Option<Rewrite<'a>>,
    /// A field not forwarded (`strip_api_key`: the API key header).
    pub strip: Option<&'a [u8]>,
    /// The request-mapping phase's edits (a replaced body and the fields it drops).
    pub edits: Option<&'a crate::mapping::RequestEdits>,
    /// The route's parameter mapping over this request, rendered into the head as it is
    /// written (see [`crate::mapping::request`]).
    pub mapped: Option<&'a Mapped<'a>>,
    /// The length of the body the origin gets when it was replaced (framed by length).
    pub body_len: Option<u64>,
    /// Bytes of the path that are the base path of the `[[mapping]]` serving the request:
    /// the origin gets the path the routes saw, without them.
    pub base: usize,
}

/// [`write_request_head`] without the empty line that ends the head: a caller adds fields of
/// its own (a WebSocket upgrade's `upgrade` and `connection`, see [`super::websocket`]).
pub fn write_request_fields(
    out: &mut BytesMut,
    head: &RequestHead,
    request_id: &RequestId,
    facts: &ConnFacts,
    default_host: Option<&str>,
    how: &Outgoing<'_>,
) {
    let (rewrite, strip, edits, mapped) = (how.rewrite, how.strip, how.edits, how.mapped);
    out.put_slice(head.method_bytes());
    out.put_u8(b' ');
    let target = head.slice(head.target);
    // the path the route saw: without the base path of the mapping that selected its stage
    let path = match head.path_bytes().get(how.base..) {
        Some(p) if !p.is_empty() => p,
        _ => b"/",
    };
    // `overwrite:path` / querystring operations (parameter mapping) win over the template
    let template_path = |out: &mut BytesMut, (tpl, params): Rewrite<'_>| {
        let mut path = Vec::with_capacity(64);
        tpl.render(params, &mut path);
        out.put_slice(&path);
    };
    match (mapped.filter(|m| m.changes_target()), rewrite) {
        (Some(m), _) => {
            if !m.write_path(out) {
                match rewrite {
                    Some(r) => template_path(out, r),
                    None => out.put_slice(path),
                }
            }
            m.write_query(head.query.map(|q| head.slice(q)), out);
        }
        (None, Some(r)) => {
            template_path(out, r);
            if let Some(q) = head.query {
                out.put_u8(b'?');
                out.put_slice(head.slice(q));
            }
        }
        (None, None) if how.base == 0 && (target.first() == Some(&b'/') || target == b"*") => {
            out.put_slice(target)
        }
        (None, None) => {
            // absolute-form: the origin gets origin-form (RFC 9112 §3.2.2)
            out.put_slice(path);
            if let Some(q) = head.query {
                out.put_u8(b'?');
                out.put_slice(head.slice(q));
            }
        }
    }
    out.put_slice(b" HTTP/1.1\r\n");
    let mut xff: smallvec::SmallVec<[&[u8]; 2]> = smallvec::SmallVec::new();
    let mut host_written = false;
    for h in &head.headers {
        match h.kind {
            // `strip_api_key`: the key stays at the gateway (field names are case-insensitive,
            // RFC 9110 §5.1)
            HeaderKind::Regular
                if strip.is_some_and(|n| head.slice(h.name).eq_ignore_ascii_case(n)) => {}
            // removed or overwritten by the route's mapping, or dropped with a replaced body
            HeaderKind::Regular | HeaderKind::RequestId
                if mapped.is_some_and(|m| m.removes(head.slice(h.name)))
                    || edits.is_some_and(|e| e.removes(head.slice(h.name))) => {}
            HeaderKind::Regular | HeaderKind::RequestId => {
                put_line(out, head.slice(h.name), head.slice(h.value))
            }
            HeaderKind::Host if !host_written => {
                // the authority the request addressed: the Host value, or for absolute-form
                // the target's authority, which takes precedence (RFC 9112 §3.2.2)
                let v = head.host.map_or(head.slice(h.value), |s| head.slice(s));
                put_line(out, head.slice(h.name), v);
                host_written = true;
            }
            HeaderKind::Host | HeaderKind::Skip => {}
            HeaderKind::XForwardedFor => xff.push(head.slice(h.value)),
        }
    }
    if !host_written {
        match (head.host, default_host) {
            (Some(h), _) => put_line(out, b"host", head.slice(h)),
            (None, Some(d)) => put_line(out, b"host", d.as_bytes()),
            (None, None) => {}
        }
    }
    out.put_slice(b"x-forwarded-for: ");
    for v in &xff {
        out.put_slice(v);
        out.put_slice(b", ");
    }
    out.put_slice(facts.peer_ip().as_bytes());
    // RFC 9110 §7.6.3: a gateway sends Via in every request it forwards (appended after any
    // Via lines the client sent, which keeps the list in order), naming the protocol version
    // it received the request with
    out.put_slice(match facts.protocol {
        crate::facts::Protocol::Http2 => b"\r\nvia: 2 tollgate\r\nx-forwarded-proto: ",
        crate::facts::Protocol::Http1 => b"\r\nvia: 1.1 tollgate\r\nx-forwarded-proto: ",
    });
    out.put_slice(facts.scheme.as_str().as_bytes());
    out.put_slice(b"\r\n");
    if let Some(h) = head.host {
        put_line(out, b"x-forwarded-host", head.slice(h));
    }
    // the gateway's id, unless the route's mapping overwrote or removed it (one value, never
    // two: the mapping's comes with its other fields below)
    if let RequestId::Generated(id) = request_id {
        if !mapped.is_some_and(|m| m.removes(b"x-request-id")) {
            put_line(out, b"x-request-id", id);
        }
    }
    if let Some(m) = mapped {
        m.each_field(|name, value| put_line(out, name, value));
    }
    if let Some(t) = edits.and_then(|e| e.content_type.as_deref()) {
        put_line(out, b"content-type", t.as_bytes());
    }
    if let Some(n) = how.body_len {
        // a replaced body: framed by its length, whatever the client's framing was
        out.put_slice(b"content-length: ");
        put_decimal(out, n);
        out.put_slice(b"\r\n");
        return;
    }
    match head.body {
        BodyKind::Length(n) => {
            out.put_slice(b"content-length: ");
            put_decimal(out, n);
            out.put_slice(b"\r\n");
        }
        BodyKind::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
        BodyKind::Empty | BodyKind::CloseDelimited => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Scheme;

    fn rewritten(facts: &ConnFacts) -> String {
        let mut raw = BytesMut::from(&b"GET /a?b=1 HTTP/1.1\r\nhost: api.example.com\r\nconnection: keep-alive\r\nx-forwarded-for: 10.0.0.1\r\n\r\n"[..]);
        let head = crate::http::parse_request(&mut raw, &crate::http::Limits::default())
            .unwrap()
            .unwrap();
        let mut out = BytesMut::new();
        let id = RequestId::Generated([b'r'; crate::worker::REQUEST_ID_LEN]);
        write_request_head(&mut out, &head, &id, facts, None, &Outgoing::default());
        String::from_utf8(out.to_vec()).unwrap()
    }

    /// `X-Forwarded-For` appends the peer from the connection's facts; `X-Forwarded-Proto` is
    /// the facts' scheme (https for a TLS connection), never a constant.
    #[test]
    fn forwarded_fields_come_from_the_connection_facts() {
        let mut facts = ConnFacts::plain(
            "192.0.2.7:5000".parse().unwrap(),
            "127.0.0.1:8080".parse().unwrap(),
        );
        let plain = rewritten(&facts);
        assert!(
            plain.contains("x-forwarded-for: 10.0.0.1, 192.0.2.7\r\n"),
            "{plain}"
        );
        assert!(plain.contains("x-forwarded-proto: http\r\n"), "{plain}");
        assert!(
            !plain.contains("connection:"),
            "hop-by-hop field forwarded: {plain}"
        );
        facts.scheme = Scheme::Https;
        let tls = rewritten(&facts);
        assert!(tls.contains("x-forwarded-proto: https\r\n"), "{tls}");
        assert_eq!(tls.matches("x-forwarded-proto").count(), 1);
    }
}
