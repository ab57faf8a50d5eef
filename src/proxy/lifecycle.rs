//! The request lifecycle: every request goes through these named phases, in this order, here.
//!
//! 1. **request filter** ([`request_filter`]): decide persistence and the request id; refuse new
//!    work while draining.
//! 2. **route** ([`route`]): the precompiled trie picks the route or it is a 404.
//! 3. **auth** ([`auth`]): routes with `api_key_required` need a known, enabled API key (403).
//! 4. **throttle** ([`throttle`]): rate limits at every level, then the key's quota (429).
//! 5. **integration** ([`crate::integration::run`]): a mock hands back a
//!    [`Response`]; the HTTP integration forwards through [`crate::client`] and relays the
//!    origin's response itself, through the same filter and serialiser.
//! 6. **response filter** ([`response_filter`]): the fields every response gets when its
//!    producer did not set them (`date`, `x-request-id`), a refused request's rate-limit fields;
//!    later CORS, header mapping, HSTS.
//! 7. **send** ([`send`]): the session serialises the response for this client
//!    ([`crate::session::h1`]: framing, connection header, no content for HEAD) and writes it.
//!    **Error mapping** ([`finish`]) is the one place a failure becomes a status
//!    ([`GatewayError::status`]): before the response started it is sent as a JSON error through
//!    phases 6 and 7; after it started, the connection is closed (the only honest signal left).
//! 8. **log** ([`log`]): the request is recorded in the worker's metrics shard and access log;
//!    a request refused at its head ([`reject_head`]) is recorded too ([`log_rejected`]).
//!
//! Authorizers slot in between these phases in later work; they take the same
//! `(&RequestHead, &mut ExchangeState)` pair. The parsed head is kept apart from
//! the mutable exchange state so route parameters can borrow the head while state changes.
//! The connection's facts (peer, scheme, TLS) come from [`Downstream::facts`], captured at
//! accept.

use std::time::Instant;

use super::conn::Downstream;
use super::worker::{Cx, REQUEST_ID_LEN};
use crate::accesslog::Entry;
use crate::config::RouteConfig;
use crate::error::GatewayError;
use crate::http::{BodyKind, Method, RequestHead, Span};
use crate::integration::{self, Handled, RequestCtx};
use crate::metrics::Record;
use crate::response::{Response, Source};
use crate::router::RouteMatch;
use crate::session::Session;
use crate::throttle::worker::{Denied, Identity};
use crate::transport::ConnFacts;

/// What happens to the client connection after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Read the next request.
    KeepAlive,
    /// Close the connection: nothing more is expected from the client (or it is gone).
    Close,
    /// Close after a response that left request bytes unread (the client may still be
    /// sending): half-close, discard for a bounded time, then close (RFC 9112 §9.6, see
    /// [`super::linger`]).
    CloseLingering,
}

/// The request id of an exchange: the client's `x-request-id`, or one tollgate generated.
#[derive(Debug, Clone, Copy)]
pub enum RequestId {
    Client(Span),
    Generated([u8; REQUEST_ID_LEN]),
}

impl RequestId {
    pub fn bytes<'a>(&'a self, head: &'a RequestHead) -> &'a [u8] {
        match self {
            RequestId::Client(s) => head.slice(*s),
            RequestId::Generated(g) => g,
        }
    }
}

/// Where the request body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyState {
    /// Not touched yet: can still be skipped as a whole if it is buffered.
    Unread,
    /// Partly consumed (forwarded or decoded): its end is unknown to anything but the decoder
    /// that was reading it, so the connection must close unless that decoder finishes it.
    Partial,
    /// Fully read (or there was none).
    Done,
}

/// Where the response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseState {
    NotStarted,
    /// Bytes reached the client; an error now can only close the connection.
    Started,
    Complete,
}

/// Mutable state of one request/response exchange.
pub struct ExchangeState {
    pub request_id: RequestId,
    /// The client wants, and we allow, another request on this connection.
    pub keep_alive: bool,
    pub body: BodyState,
    pub response: ResponseState,
    pub status: u16,
    /// Request bytes: the head and the body's payload.
    pub bytes_in: u64,
    /// Response bytes sent: heads and payload (the metrics' `sent_bytes` count all of it).
    pub bytes_out: u64,
    /// The part of `bytes_out` that was the response head: the access log's `responseLength`
    /// is the payload alone, `bytes_out - head_out`, as API Gateway documents it.
    pub head_out: u64,
    /// The origin address an HTTP integration connected to (the last one tried).
    pub endpoint: Option<std::net::SocketAddr>,
    /// Time spent on the upstream (request sent → response relayed), HTTP integrations only.
    pub integration: Option<std::time::Duration>,
    /// The origin's status, HTTP integrations only.
    pub upstream_status: Option<u16>,
    /// The failure that decided the response, if any.
    pub error: Option<GatewayError>,
    /// The API key that was presented and is known: accepted, or refused as disabled (then
    /// auth failed and only the log reads it).
    pub key: Option<usize>,
}

/// Serves one parsed request head to completion.
pub async fn handle(w: &Cx<'_>, conn: &mut Downstream, head: RequestHead) -> Outcome {
    let started = Instant::now();
    let mut st = request_filter(w, &head);
    st.keep_alive &= !conn.accepted.listener_closed.get();
    if let Some(m) = super::https::redirect(&w.g.config, conn.facts(), &head) {
        conn.skip_body(&head, &mut st);
        let result = send(w, conn, &head, &mut st, Response::mock(&m)).await;
        let outcome = finish(w, conn, &head, &mut st, result).await;
        log(w, conn, &head, &st, None, started);
        return outcome;
    }
    let routed = route(w, &head);
    let matched = routed.as_ref().ok().map(|(_, m)| m.route);
    let result = match routed {
        Ok((rc, m)) => match admit_and_serve(w, conn, &head, &mut st, rc, &m).await {
            Ok(Handled::Respond(r)) => send(w, conn, &head, &mut st, r).await,
            Ok(Handled::Sent) => Ok(()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let outcome = finish(w, conn, &head, &mut st, result).await;
    log(w, conn, &head, &st, matched, started);
    outcome
}

/// Phases 3 to 5 for a routed request.
async fn admit_and_serve<'a>(
    w: &Cx<'_>,
    conn: &mut Downstream,
    head: &RequestHead,
    st: &mut ExchangeState,
    rc: &'a RouteConfig,
    m: &RouteMatch<'_>,
) -> Result<Handled<'a>, GatewayError> {
    auth(w, head, st, m.route)?;
    throttle(w, conn, head, m.route, st.key).await?;
    // phase 5: the route's integration
    let req = RequestCtx {
        head,
        params: &m.params,
    };
    integration::run(w, conn, &req, st, &rc.integration).await
}

/// Phase 7: account for the request: the worker's metrics shard and access-log buffer.
fn log(
    w: &Cx<'_>,
    conn: &Downstream,
    head: &RequestHead,
    st: &ExchangeState,
    route: Option<usize>,
    started: Instant,
) {
    if st.status == 0 {
        return; // the client vanished before any response: nothing was answered
    }
    let total = started.elapsed();
    if w.g.record_metrics {
        w.g.metrics.record(
            route,
            &Record {
                method: head.method_kind,
                status: st.status,
                total,
                integration: st.integration,
                bytes_in: st.bytes_in,
                bytes_out: st.bytes_out,
            },
        );
    }
    if let Some(l) = &w.g.log {
        let cfg = &w.g.config;
        let route_key = route
            .and_then(|r| cfg.routes.get(r))
            .map_or("-", |r| r.key.as_str());
        let api_key = st
            .key
            .and_then(|k| cfg.throttle.keys.get(k))
            .map(|k| k.name.as_str());
        let time = crate::accesslog::wall_secs_coarse();
        l.log(&Entry {
            request_id: st.request_id.bytes(head),
            ip: conn.facts().peer_ip.as_bytes(),
            time,
            method: head.method_bytes(),
            route_key,
            path: head.path_bytes(),
            status: st.status,
            protocol: match head.version {
                crate::http::Version::Http10 => "HTTP/1.0",
                crate::http::Version::Http11 => "HTTP/1.1",
            },
            response_length: st.bytes_out.saturating_sub(st.head_out),
            request_length: st.bytes_in,
            domain_name: head.host_bytes().unwrap_or_default(),
            raw_query: head.query_bytes(),
            endpoint: st.endpoint,
            latency: total,
            integration_latency: st.integration,
            integration_status: st.upstream_status,
            error: st.error.map(|e| e.to_string()),
            user_agent: head.header("user-agent").unwrap_or_default(),
            api_key,
            tls: conn.facts().tls.as_deref(),
        });
    }
}

/// Phase 3: API key. Only routes with `api_key_required` look at the key (as API Gateway:
/// usage plans apply where keys are required); a missing, unknown or disabled key is a 403. A
/// known key is kept in `st.key` even when disabled, so the log names it (the client gets the
/// same 403 either way: it learns nothing about which keys exist).
fn auth(
    w: &Cx<'_>,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
) -> Result<(), GatewayError> {
    let tc = &w.g.config.throttle;
    if !tc.routes.get(route).is_some_and(|r| r.key_required) {
        return Ok(());
    }
    let presented = head
        .header(&tc.api_key_header)
        .ok_or(GatewayError::Forbidden)?;
    let key = tc
        .key_index
        .find(presented)
        .ok_or(GatewayError::Forbidden)?;
    st.key = Some(key);
    match tc.keys.get(key) {
        Some(k) if k.enabled => Ok(()),
        Some(_) => Err(GatewayError::KeyDisabled),
        None => Err(GatewayError::Forbidden),
    }
}

/// How many reconciliation intervals a request waits for quota units held by other workers
/// before it is refused anyway.
pub const QUOTA_WAIT_ROUNDS: u32 = 20;

/// Phase 4: rate limits and quota (see `throttle`). Costs nothing when no limit applies.
async fn throttle(
    w: &Cx<'_>,
    conn: &Downstream,
    head: &RequestHead,
    route: usize,
    key: Option<usize>,
) -> Result<(), GatewayError> {
    let wt = &w.g.throttle;
    if !wt.applies(route, key) {
        return Ok(());
    }
    let header = |name: &str| head.header(name);
    let who = Identity {
        ip: conn.facts().peer_ip.as_bytes(),
        key,
        header: &header,
    };
    for _ in 0..QUOTA_WAIT_ROUNDS {
        match wt.admit(route, &who) {
            Ok(()) => return Ok(()),
            Err(Denied::Throttled(t)) => return Err(GatewayError::Throttled(t)),
            Err(Denied::QuotaExceeded) => return Err(GatewayError::QuotaExceeded),
            Err(Denied::QuotaWait) => {
                monoio::time::sleep(w.g.config.throttle.sync_interval).await;
            }
        }
    }
    wt.count_quota_rejected(route, key);
    Err(GatewayError::QuotaExceeded)
}

/// Phase 1: persistence, request id, draining.
pub(crate) fn request_filter(w: &Cx<'_>, head: &RequestHead) -> ExchangeState {
    let request_id = match head.request_id {
        Some(s) if !s_is_empty(s) => RequestId::Client(s),
        _ => RequestId::Generated(w.ids.generate()),
    };
    ExchangeState {
        request_id,
        keep_alive: head.keep_alive && !w.draining.get(),
        body: match head.body {
            BodyKind::Empty => BodyState::Done,
            _ => BodyState::Unread,
        },
        response: ResponseState::NotStarted,
        status: 0,
        bytes_in: head.head_len() as u64,
        bytes_out: 0,
        head_out: 0,
        endpoint: None,
        integration: None,
        upstream_status: None,
        error: None,
        key: None,
    }
}

fn s_is_empty(s: Span) -> bool {
    s.end <= s.start
}

/// Phase 2: route lookup on method, host and path (the query is not part of the match).
fn route<'h>(
    w: &'h Cx<'h>,
    head: &'h RequestHead,
) -> Result<(&'h RouteConfig, RouteMatch<'h>), GatewayError> {
    let cfg = &*w.g.config;
    let host = head.host.map(|s| head.slice(s));
    let m = cfg
        .router
        .lookup(head.method_bytes(), host, head.path_bytes())
        .ok_or(GatewayError::NoRoute)?;
    let rc = cfg.routes.get(m.route).ok_or(GatewayError::NoRoute)?;
    Ok((rc, m))
}

/// Phase 6: the response filter: the fields every response gets that its producer did not set
/// (`date`, RFC 9110 §6.6.1; `x-request-id`; on TLS connections `strict-transport-security`,
/// see [`super::https::hsts`]), and a refused request's rate-limit fields. Later: CORS, header
/// mapping.
pub(crate) fn response_filter<'a>(
    w: &Cx<'a>,
    facts: &ConnFacts,
    request_id: &'a [u8],
    r: &mut Response<'a>,
) {
    if let Source::Error(GatewayError::Throttled(t)) = &r.source {
        r.added.rate_limit = Some(*t);
    }
    let present = r.present();
    if !present.date {
        r.added.date = Some(w.date.now());
    }
    if !present.request_id {
        r.added.request_id = Some(request_id);
    }
    if !present.hsts {
        r.added.hsts = super::https::hsts(&w.g.config, facts);
    }
}

/// Phase 7 for a response held in memory: filter it, then the session serialises it for this
/// client (framing, connection header; no content for HEAD) and writes it.
async fn send(
    w: &Cx<'_>,
    conn: &mut Downstream,
    head: &RequestHead,
    st: &mut ExchangeState,
    mut r: Response<'_>,
) -> Result<(), GatewayError> {
    let rid = st.request_id; // a copy: the response borrows it while `st` is updated
    response_filter(w, conn.facts(), rid.bytes(head), &mut r);
    conn.send(w, head, st, &r).await
}

/// Error mapping: map a failure to its response (the single place errors become statuses) and decide
/// whether the connection goes on.
async fn finish(
    w: &Cx<'_>,
    conn: &mut Downstream,
    head: &RequestHead,
    st: &mut ExchangeState,
    result: Result<(), GatewayError>,
) -> Outcome {
    if let Err(e) = result {
        st.error = Some(e);
        if e.must_close() {
            st.keep_alive = false;
        }
        if st.response == ResponseState::NotStarted && e != GatewayError::ClientGone {
            conn.skip_body(head, st);
            let _ = send(w, conn, head, st, Response::error(e)).await;
        } else {
            st.keep_alive = false;
        }
    }
    let reusable = st.keep_alive
        && st.body == BodyState::Done
        && st.response == ResponseState::Complete
        && !w.draining.get();
    if reusable {
        Outcome::KeepAlive
    } else if st.response == ResponseState::Complete && st.body != BodyState::Done {
        // answered before the request body was read: the client may still be sending it
        Outcome::CloseLingering
    } else {
        Outcome::Close
    }
}

/// Writes the error for a request whose head could not be parsed (or came too slowly); the
/// connection then closes, lingering: the client may still be sending the rest of its head or
/// a body (a 413 for a declared Content-Length).
pub async fn reject_head(w: &Cx<'_>, conn: &mut Downstream, e: GatewayError) -> Outcome {
    let started = Instant::now();
    let rid = w.ids.generate();
    let mut r = Response::error(e);
    response_filter(w, conn.facts(), &rid, &mut r);
    // (`buf` holds what was received of the head, also after a timeout: see
    // `conn::read_head_more`)
    let (outcome, counts) = match conn.send_rejection(w, &r).await {
        Ok(c) => (Outcome::CloseLingering, c),
        Err(c) => (Outcome::Close, c),
    };
    log_rejected(w, conn, &e, &rid, counts, started);
    outcome
}

/// Phase 7 for a request whose head was refused (malformed, too large, too slow): it is
/// counted and logged like any answered request (under no route, method `OTHER` in metrics;
/// `-` for what the head would have told), so smuggling probes, 431s and slow-loris 408s are
/// visible in the metrics and the access log. `requestLength` is what was received of it.
fn log_rejected(
    w: &Cx<'_>,
    conn: &Downstream,
    e: &GatewayError,
    rid: &[u8],
    (sent, payload): (u64, u64),
    started: Instant,
) {
    let total = started.elapsed();
    let status = e.status();
    let received = conn.buf.len() as u64;
    if w.g.record_metrics {
        let r = Record {
            method: Method::Other,
            status,
            total,
            integration: None,
            bytes_in: received,
            bytes_out: sent,
        };
        w.g.metrics.record(None, &r);
    }
    if let Some(l) = &w.g.log {
        l.log(&Entry {
            request_id: rid,
            ip: conn.facts().peer_ip.as_bytes(),
            time: crate::accesslog::wall_secs_coarse(),
            method: b"-",
            route_key: "-",
            path: b"-",
            status,
            protocol: "-",
            response_length: payload,
            request_length: received,
            domain_name: b"",
            raw_query: None,
            endpoint: None,
            latency: total,
            integration_latency: None,
            integration_status: None,
            error: Some(e.to_string()),
            user_agent: b"",
            api_key: None,
            tls: conn.facts().tls.as_deref(),
        });
    }
}
