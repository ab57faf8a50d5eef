//! The request lifecycle: every request goes through these named phases, in this order, here,
//! over any client [`Session`] (generic, statically dispatched: the HTTP/1 session today, an
//! HTTP/2 stream later). Nothing here knows the transport or the protocol: persistence,
//! framing, `100 Continue` and what becomes of the connection are the session's.
//!
//! 1. **request filter** ([`request_filter`]): the request id, persistence (the worker's
//!    draining, then [`Session::begin`]) and the client address behind trusted proxies
//!    (`st.client_ip`, see [`crate::policy::access::client_ip`]), found once for every phase
//!    after.
//! 2. **HTTPS redirect** ([`super::https::redirect`]): a plain request where only HTTPS is
//!    served (`server.redirect_https`) gets its 308.
//! 3. **CORS preflight** ([`crate::policy::cors::preflight`]): an `OPTIONS` with `Origin` and
//!    `Access-Control-Request-Method` under a CORS policy is answered 204, for any path, before
//!    routing and before any authorizer or key check.
//! 4. **route** ([`route`]): the precompiled trie picks the route (`st.route`) or it is a 404.
//! 5. **access** ([`crate::policy::access::check`]): the server's and the route's IP rules on
//!    the client address, then the route's `mtls` / `allow_subjects` (403).
//! 6. **authorizer** ([`crate::auth::authorize`]): the route's `[[authorizer]]` (JWT, request,
//!    IAM) admits a principal (`st.principal`) or refuses (401/403/500).
//! 7. **API key** ([`api_key`]): routes with `api_key_required` need a known, enabled key (403).
//! 8. **throttle** ([`throttle`]): rate limits at every level (keyed by client address, key,
//!    field or principal), then the key's quota (429).
//! 9. **body** ([`crate::transform::hold`]): a route that needs its request body whole (a
//!    body transformation, a request template, a model, a mapping reading `$request.body`)
//!    reads it here, once, decoding a compressed one (`st.held_body`); others keep streaming.
//! 10. **validation** ([`crate::validate::phase`]): required headers and query parameters
//!     (checked on the head just before phase 9, [`crate::validate::parameters`], so a refusal
//!     costs no body read), the body against its model (400 / 415; the origin sees nothing of
//!     a refused request).
//! 11. **request mapping** ([`crate::transform::request`]): the body transformation or
//!     template (`st.held_body`, `st.edits`); the route's `request_parameters` are rendered by
//!     the HTTP integration's head rewrite as it writes the origin's head
//!     ([`crate::mapping::request::Mapped`]), from the same values.
//! 12. **integration** ([`crate::integration::run`]): given the session wrapped in [`Filtered`](super::filtered::Filtered)
//!     (phases 13 and 14 in front of every response it sends, the body a phase held served from
//!     memory, a response body the route reshapes read whole and reshaped,
//!     [`crate::transform::response`]) and the request context; a mock hands back a
//!     [`Response`]; the HTTP integration reads the body through the session, forwards through
//!     [`crate::client`] and hands the origin's response to [`Session::relay`].
//! 13. **response filter** ([`response_filter`]): the fields every response gets when its
//!     producer did not set them (`date`, `x-request-id`, HSTS), a refused request's rate-limit
//!     fields, the CORS fields of the policy that applies (errors included), the route's
//!     `response_parameters` for the status ([`crate::mapping::response`]), and the coding the
//!     body is compressed with ([`crate::compress::apply`]).
//! 14. **send** ([`send`]): the session serialises the response for this client and writes it.
//!     **Error mapping** ([`finish`]) is the one place a failure becomes a status
//!     ([`GatewayError::status`]), or the `[[gateway_response]]` configured for its type
//!     ([`crate::gateway_response::customise`]): before the response started it is sent
//!     through phases 13 and 14; after it started, the connection is closed (the only honest
//!     signal left); then the session decides what becomes of the connection
//!     ([`Session::finish`]).
//! 15. **log** ([`log`]): the request is recorded in the worker's metrics shard and access log
//!     (the entry built by [`crate::exchange::context::with_entry`], which mapping, templates and gateway
//!     responses read `$context` from); a request refused at its head ([`reject_head`]) is
//!     recorded too ([`log_rejected`]).
//!
//! Phases 2 and 3 answer by themselves (then 4 to 12 do not run); a failure in 4 to 12 skips the
//! rest and goes to error mapping. Every phase takes the same `(&RequestHead, &mut
//! ExchangeState)` pair: the parsed head is kept apart from the mutable exchange state
//! ([`crate::exchange`]) so route parameters can borrow the head while state changes. The
//! connection's facts (peer, scheme, TLS) come from [`Session::facts`], captured at accept.

use std::time::Instant;

use crate::accesslog::Entry;
use crate::config::RouteConfig;
use crate::error::GatewayError;
// the exchange's state types, named here by their old paths for code written against them
pub use crate::exchange::{BodyState, ExchangeState, RequestId, ResponseState};
use crate::facts::ConnFacts;
use crate::http::{Method, RequestHead};
use crate::integration::{self, Handled, RequestCtx};
use crate::metrics::Record;
use crate::response::{Response, Source};
use crate::router::RouteMatch;
use crate::session::{Refused, Session};
use crate::throttle::worker::{Denied, Identity};
use crate::worker::Cx;

use super::filtered::Filtered;

/// Serves one parsed request head to completion, over any client session.
pub async fn handle<S: Session>(w: &Cx<'_>, sess: &mut S, head: RequestHead) -> S::Outcome {
    let mut st = request_filter(w, sess, &head);
    // The request filter may answer by itself: a plain request where only HTTPS is served
    // (`server.redirect_https`) gets its 308 before routing.
    let (matched, result) = match super::https::redirect(&w.g.config, sess.facts(), &head) {
        Some(m) => {
            sess.skip_body(&head, &mut st);
            (
                None,
                send(w, sess, &head, &mut st, Response::mock(&m)).await,
            )
        }
        None => match crate::policy::cors::preflight(&w.g.config, &head) {
            // a CORS preflight is the gateway's to answer, before routing and authorizers
            Some(r) => {
                sess.skip_body(&head, &mut st);
                (None, send(w, sess, &head, &mut st, r).await)
            }
            None => routed(w, sess, &head, &mut st).await,
        },
    };
    let outcome = finish(w, sess, &head, &mut st, result).await;
    let started = st.started;
    log(w, sess.facts(), &head, &st, matched, started);
    outcome
}

/// Phases 4 to 12 for a request not answered by the redirect or a preflight: route it, then
/// admit and serve it.
async fn routed<S: Session>(
    w: &Cx<'_>,
    sess: &mut S,
    head: &RequestHead,
    st: &mut ExchangeState,
) -> (Option<usize>, Result<(), GatewayError>) {
    {
        {
            // the stage a mapping selects and its canary side, then the route in it
            st.served = crate::exchange::served::select(&w.g.config, head, || w.ids.random());
            let routed = route(w, head, st.served);
            let matched = routed.as_ref().ok().map(|(_, m)| m.route);
            st.route = matched;
            let result = match routed {
                Ok((rc, m)) => match admit_and_serve(w, sess, head, st, rc, &m).await {
                    Ok(Handled::Respond(r)) => match reshape_held(w, sess.facts(), head, &m, st, r)
                    {
                        Ok(r) => send(w, sess, head, st, r).await,
                        Err(e) => Err(e),
                    },
                    Ok(Handled::Sent) => Ok(()),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            (matched, result)
        }
    }
}

/// Phases 5 to 12 for a routed request.
async fn admit_and_serve<'a, S: Session>(
    w: &Cx<'_>,
    sess: &mut S,
    head: &RequestHead,
    st: &mut ExchangeState,
    rc: &'a RouteConfig,
    m: &RouteMatch<'_>,
) -> Result<Handled<'a>, GatewayError> {
    // phases 5 to 8: access rules (IP, client certificate), the route's authorizer, its API
    // key, throttling
    crate::policy::access::check(&w.g.config, sess.facts(), st, m.route)?;
    crate::auth::authorize(w, sess, head, st, m.route).await?;
    api_key(w, head, st, m.route)?;
    throttle(w, sess.facts(), head, m.route, st).await?;
    // phases 9 to 11: the body a route needs whole (held, decoded), validation, request
    // mapping (a body transformation or template, then parameter mapping)
    crate::validate::parameters(w, head, st, m.route)?; // required ones cost no body read
    crate::transform::hold::hold(w, sess, head, st, m.route).await?;
    crate::validate::phase(w, head, st, m.route)?;
    crate::transform::request::apply(w, sess.facts(), head, &m.params, st, m.route)?;
    // phase 12: the route's integration, answering through the session with phases 13 and 14
    // in front (an integration that streams its response sends it through them too)
    let req = RequestCtx {
        head,
        params: &m.params,
        route: m.route,
    };
    integration::run(w, &mut Filtered(sess), &req, st, &rc.integration).await
}

/// Phase 15: account for the request: the worker's metrics shard and access-log buffer.
fn log(
    w: &Cx<'_>,
    facts: &ConnFacts,
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
        crate::exchange::context::with_entry(w, facts, head, st, route, total, |e| l.log(e));
    }
}

/// Phase 7: API key. Only routes with `api_key_required` look at the key (as API Gateway:
/// usage plans apply where keys are required); a missing, unknown or disabled key is a 403. A
/// known key is kept in `st.key` even when disabled, so the log names it (the client gets the
/// same 403 either way: it learns nothing about which keys exist).
fn api_key(
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

/// Phase 8: rate limits and quota (see `throttle`). Costs nothing when no limit applies.
async fn throttle(
    w: &Cx<'_>,
    facts: &ConnFacts,
    head: &RequestHead,
    route: usize,
    st: &ExchangeState,
) -> Result<(), GatewayError> {
    let key = st.key;
    let wt = &w.g.throttle;
    if !wt.applies(route, key) {
        return Ok(());
    }
    let header = |name: &str| head.header(name);
    // formatted only when some limit is keyed by client IP
    let peer_ip = wt.shared.needs_ip.then(|| {
        st.client_ip
            .map_or_else(|| facts.peer_ip(), crate::facts::PeerIp::of)
    });
    let who = Identity {
        ip: peer_ip.as_ref().map_or(&[][..], |p| p.as_bytes()),
        key,
        header: &header,
        principal: st.principal.as_deref().map(|p| p.throttle_key()),
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

/// Phase 1: the request id, persistence (what the worker allows while draining, narrowed by
/// the session to what its protocol and the client allow), the client address.
fn request_filter<S: Session>(w: &Cx<'_>, sess: &mut S, head: &RequestHead) -> ExchangeState {
    let mut st = ExchangeState::new(w, head);
    // the client behind trusted proxies, once, for every phase after (404s and preflights
    // are logged with it too)
    st.client_ip = crate::policy::access::forwarded_client(&w.g.config, sess.facts(), head);
    sess.begin(head, &mut st);
    st
}

/// Phase 4: route lookup on method, host and path (the query is not part of the match), in
/// the deployment serving the request (the base path of its mapping stripped).
fn route<'h>(
    w: &'h Cx<'h>,
    head: &'h RequestHead,
    served: crate::exchange::served::Served,
) -> Result<(&'h RouteConfig, RouteMatch<'h>), GatewayError> {
    let cfg = &*w.g.config;
    let m = crate::exchange::served::lookup(cfg, head, served).ok_or(GatewayError::NoRoute)?;
    let rc = cfg.routes.get(m.route).ok_or(GatewayError::NoRoute)?;
    Ok((rc, m))
}

/// Phase 13: the response filter: the fields every response gets that its producer did not
/// set (`date`, RFC 9110 §6.6.1; `x-request-id`; on TLS connections
/// `strict-transport-security`, see [`super::https::hsts`]), a refused request's rate-limit
/// fields, and CORS ([`crate::policy::cors::fields`]: where a policy applies to the route, or
/// the global one without a route, the producer's own `access-control-*` fields are dropped
/// and the gateway's added for an allowed origin, `vary: origin` where the answer depends on
/// it; a head that could not be parsed gets them from the session, see
/// [`crate::policy::cors::rejected_head`]).
pub(crate) fn response_filter<'a>(
    w: &Cx<'a>,
    facts: &ConnFacts,
    head: Option<&'a RequestHead>,
    st: Option<&ExchangeState>,
    request_id: &'a [u8],
    r: &mut Response<'a>,
) {
    let route = st.and_then(|st| st.route);
    // CORS: the policy's fields on every response, errors included (a head that could not be
    // parsed: the session adds them from the received bytes)
    if let Some(head) = head {
        r.added.cors = crate::policy::cors::fields(&w.g.config, route, head);
    }
    // which side of a stage's canary served (`x-tollgate-canary`), errors included
    let g = w.g;
    r.added.canary = st.and_then(|st| crate::exchange::served::canary_field(&g.config, st.served));
    if let (Some(head), Some(st)) = (head, st) {
        // the route's `response_parameters` for this status (integrations' responses)
        crate::mapping::response::filter(w, facts, head, st, r);
        // compression for a client that accepts it
        crate::compress::apply(&w.g.config, route, head, r);
    }
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

/// Phase 14 for a response held in memory: filter it, then the session serialises it for this
/// client (framing, connection header; no content for HEAD) and writes it.
pub(super) async fn send<S: Session>(
    w: &Cx<'_>,
    sess: &mut S,
    head: &RequestHead,
    st: &mut ExchangeState,
    r: Response<'_>,
) -> Result<(), GatewayError> {
    let rid = st.request_id; // a copy: the response borrows it while `st` is updated
    let mut r = r;
    response_filter(
        w,
        sess.facts(),
        Some(head),
        Some(st),
        rid.bytes(head),
        &mut r,
    );
    sess.send(w, head, st, r).await
}

/// A held response (a mock's, a function's) reshaped when its route transforms response
/// bodies (see [`crate::transform::response`]); any other passes as it is.
fn reshape_held<'a>(
    w: &Cx<'_>,
    facts: &ConnFacts,
    head: &RequestHead,
    m: &RouteMatch<'_>,
    st: &mut ExchangeState,
    r: Response<'a>,
) -> Result<Response<'a>, GatewayError> {
    if !crate::transform::response::applies(w, st.route, &r) {
        return Ok(r);
    }
    let Some(held) = r.rendered() else {
        return Ok(r);
    };
    let produced = crate::transform::response::Produced {
        status: r.status,
        fields: held.fields().collect(),
        body: &held.body,
    };
    let reshaped = crate::transform::response::reshape(w, facts, (head, &m.params), st, produced)?;
    Ok(Response::held(reshaped))
}

/// Error mapping: map a failure to its response (the single place errors become statuses);
/// then the session decides whether the connection goes on.
async fn finish<S: Session>(
    w: &Cx<'_>,
    sess: &mut S,
    head: &RequestHead,
    st: &mut ExchangeState,
    result: Result<(), GatewayError>,
) -> S::Outcome {
    if let Err(e) = result {
        st.error = Some(e);
        if e.must_close() {
            st.keep_alive = false;
        }
        if st.response == ResponseState::NotStarted && e != GatewayError::ClientGone {
            sess.skip_body(head, st);
            // a refusal prepared by its phase (status the error's), or whose words name the
            // request (see `detail_is_message`), carries them
            let prepared = st.refusal.take().filter(|m| m.status == e.status());
            let r = match (prepared, &st.detail, e.detail_is_message()) {
                (Some(m), _, _) => Response::held(m),
                (None, Some(d), true) => {
                    Response::held(crate::config::MockResponse::json_message(e.status(), d))
                }
                _ => Response::error(e),
            };
            // a `[[gateway_response]]` for the failure's type replaces the standard answer
            let r = crate::gateway_response::customise(w, sess.facts(), head, st, &e, r);
            let _ = send(w, sess, head, st, r).await;
        } else {
            st.keep_alive = false;
        }
    }
    sess.finish(w, st)
}

/// Answers a request whose head could not be parsed (or came too slowly), through phases 10
/// and 11; the session then ends the connection.
pub async fn reject_head<S: Session>(w: &Cx<'_>, sess: &mut S, e: GatewayError) -> S::Outcome {
    let started = Instant::now();
    let rid = w.ids.generate();
    let mut r = Response::error(e);
    response_filter(w, sess.facts(), None, None, &rid, &mut r);
    let refused = sess.refuse(w, r).await;
    log_rejected(w, sess.facts(), &e, &rid, &refused, started);
    refused.outcome
}

/// Phase 12 for a request whose head was refused (malformed, too large, too slow): it is
/// counted and logged like any answered request (under no route, method `OTHER` in metrics;
/// `-` for what the head would have told), so smuggling probes, 431s and slow-loris 408s are
/// visible in the metrics and the access log. `requestLength` is what was received of it.
fn log_rejected<O>(
    w: &Cx<'_>,
    facts: &ConnFacts,
    e: &GatewayError,
    rid: &[u8],
    refused: &Refused<O>,
    started: Instant,
) {
    let total = started.elapsed();
    let status = e.status();
    let (sent, payload, received) = (refused.sent, refused.payload, refused.received);
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
        let peer_ip = facts.peer_ip();
        l.log(&Entry {
            request_id: rid,
            ip: peer_ip.as_bytes(),
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
            tls: facts.tls.as_deref(),
            principal: None,
            authorizer_error: None,
            stage: "-",
            api_id: "-",
            canary: None,
        });
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
