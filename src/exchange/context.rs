//! The `$context` vocabulary of one exchange: the access log's entry for a request, built from
//! the request head, the exchange state and the connection's facts.
//!
//! Owns: [`with_entry`], the one place an exchange becomes an [`Entry`]: the access log writes
//! it at phase 15, and parameter mapping (in the HTTP integration's head rewrite), mapping
//! templates and gateway responses read
//! `$context.NAME` from it while the request is served (what is not known yet, such as the
//! status before the response, reads as its zero or `-`). Leaves out: formatting (see
//! [`crate::accesslog`]) and the variables' names (`accesslog::parse_var`).

use std::time::Duration;

use crate::accesslog::{Entry, Needs};
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::RequestHead;
use crate::worker::Cx;

/// Builds the exchange's [`Entry`] (no allocation unless the request failed: its error in
/// words) and hands it to `f`. `route` is the matched route, `total` the latency so far.
pub(crate) fn with_entry<R>(
    w: &Cx<'_>,
    facts: &ConnFacts,
    head: &RequestHead,
    st: &ExchangeState,
    route: Option<usize>,
    total: Duration,
    f: impl FnOnce(&Entry<'_>) -> R,
) -> R {
    with_entry_for(Needs::ALL, w, facts, head, st, route, |_| total, f)
}

/// [`with_entry`] with only the costly parts in `needs` filled (see [`Needs`]): the latency
/// so far is asked of `total` only when the clock is needed.
#[allow(clippy::too_many_arguments)] // with_entry's, and what to fill
pub(crate) fn with_entry_for<R>(
    needs: Needs,
    w: &Cx<'_>,
    facts: &ConnFacts,
    head: &RequestHead,
    st: &ExchangeState,
    route: Option<usize>,
    total: impl FnOnce(&ExchangeState) -> Duration,
    f: impl FnOnce(&Entry<'_>) -> R,
) -> R {
    let cfg = &w.g.config;
    let route_key = route
        .and_then(|r| cfg.routes.get(r))
        .map_or("-", |r| r.key.as_str());
    let api_key = st
        .key
        .and_then(|k| cfg.throttle.keys.get(k))
        .map(|k| k.name.as_str());
    let (time, total) = match needs.clock {
        true => (crate::accesslog::wall_secs_coarse(), total(st)),
        false => (0, Duration::ZERO),
    };
    // the client behind trusted proxies when the access phase found one
    let peer_ip = needs.ip.then(|| {
        st.client_ip
            .map_or_else(|| facts.peer_ip(), crate::facts::PeerIp::of)
    });
    let auth_error = authorizer_error(st);
    // the stage that served: its name, its API, the side of its canary
    let stage = cfg
        .apis
        .deployments
        .get(st.served.deployment as usize)
        .and_then(|d| {
            let s = cfg.apis.stages.get(d.stage? as usize)?;
            Some((
                s.name.as_str(),
                s.api.as_str(),
                s.canary.as_ref().map(|_| d.canary),
            ))
        });
    f(&Entry {
        request_id: st.request_id.bytes(head),
        ip: peer_ip.as_ref().map_or(b"-", |p| p.as_bytes()),
        time,
        method: head.method_bytes(),
        route_key,
        path: head.path_bytes(),
        status: st.status,
        // an HTTP/2 request's head is a synthetic HTTP/1.1 one: the connection says
        protocol: match (facts.protocol, head.version) {
            (crate::facts::Protocol::Http2, _) => "HTTP/2.0",
            (_, crate::http::Version::Http10) => "HTTP/1.0",
            (_, crate::http::Version::Http11) => "HTTP/1.1",
        },
        response_length: st.bytes_out.saturating_sub(st.head_out),
        request_length: st.bytes_in,
        domain_name: head.host_bytes().unwrap_or_default(),
        raw_query: head.query_bytes(),
        endpoint: st.endpoint,
        latency: total,
        integration_latency: st.integration,
        integration_status: st.upstream_status,
        // the integration's words when it has them, else the deciding failure's
        error: match (&st.detail, st.error) {
            (Some(d), Some(_)) => Some(d.to_string()),
            (_, e) => e.map(|e| e.to_string()),
        },
        user_agent: match needs.user_agent {
            true => head.header("user-agent").unwrap_or_default(),
            false => b"",
        },
        api_key,
        tls: facts.tls.as_deref(),
        principal: st.principal.as_deref(),
        authorizer_error: auth_error.as_deref(),
        stage: stage.map_or(crate::lambda::DEFAULT_STAGE, |s| s.0),
        api_id: stage.map_or(crate::lambda::DEFAULT_API_ID, |s| s.1),
        canary: stage.and_then(|s| s.2),
    })
}

/// `$context.authorizer.error`: the refusal's words when the route's authorizer refused (or
/// failed); `None` for any other outcome.
pub(crate) fn authorizer_error(st: &ExchangeState) -> Option<std::borrow::Cow<'_, str>> {
    use crate::error::Denial;
    match &st.error {
        Some(
            e @ (GatewayError::Unauthorized
            | GatewayError::Denied(Denial::Scope | Denial::Authorizer)
            | GatewayError::AuthorizerFailed(_)
            | GatewayError::Iam(_)),
        ) => Some(match &st.detail {
            Some(d) => std::borrow::Cow::Borrowed(&**d),
            None => std::borrow::Cow::Owned(e.to_string()),
        }),
        _ => None,
    }
}
