//! `type = "request"` authorizers (API Gateway's Lambda REQUEST authorizer, or an HTTP
//! endpoint), compiled (see [`super::auth`]).
//!
//! Owns: checking a request authorizer's keys (exactly one of `function` and `url`, the
//! function known, `payload_format`, `simple_responses` only with 2.0, identity sources,
//! ranges, a cache only with identity sources) and building a `url` authorizer's hidden
//! upstream `authorizer:NAME`. Leaves out: calling it (see `crate::auth::request`).
//!
//! Data flows: raw `[[authorizer]]` keys → [`compile`] → [`RequestAuthorizer`]; a `function`
//! becomes its index in `[[function]]` (the file's order, as a route's `function`), a `url`
//! becomes an [`super::auth::HttpTarget`] whose hidden upstream is appended to `upstreams`.

use std::time::Duration;

use super::auth::{
    parse_identity_source, refuse, IdentitySource, RequestAuthorizer, RequestTarget,
    AUTHORIZER_CACHE_ENTRIES, AUTHORIZER_TIMEOUT_MS, AUTHORIZER_TTL_S, AUTHORIZER_UPSTREAM_PREFIX,
    DEFAULT_AUTHORIZER_CACHE_ENTRIES, DEFAULT_AUTHORIZER_TIMEOUT_MS, DEFAULT_AUTHORIZER_TTL_S,
};
use super::compile::Ctx;
use super::functions::PayloadFormat;
use super::raw::{RawAuthorizer, RawFunction, RawUpstream};
use super::upstreams::UpstreamConfig;

/// The kind named in refusals of another kind's keys.
const KIND: &str = "request";

/// The `$context.NAME` variables a request authorizer's identity sources may name (what
/// `crate::auth::request` knows at the authorizer phase).
pub const CONTEXT_SOURCES: &[&str] = &[
    "identity.sourceIp",
    "identity.userAgent",
    "requestId",
    "routeKey",
    "httpMethod",
    "path",
    "domainName",
    "stage",
    "apiId",
];

/// Compiles authorizer `i` (its `type` is `request`).
pub(super) fn compile(
    i: usize,
    a: &RawAuthorizer,
    functions: &[RawFunction],
    upstreams: &mut Vec<UpstreamConfig>,
    cx: &mut Ctx<'_>,
) -> Option<RequestAuthorizer> {
    let key = |k: &str| format!("authorizer[{i}].{k}");
    // the keys of the jwt and aws_iam kinds
    refuse(&a.issuer, i, "issuer", KIND, cx);
    refuse(&a.audience, i, "audience", KIND, cx);
    refuse(&a.jwks_uri, i, "jwks_uri", KIND, cx);
    refuse(&a.identity_source, i, "identity_source", KIND, cx);
    refuse(&a.leeway_s, i, "leeway_s", KIND, cx);
    refuse(&a.jwks_refresh_s, i, "jwks_refresh_s", KIND, cx);
    refuse(&a.token_cache_entries, i, "token_cache_entries", KIND, cx);
    refuse(&a.token_cache_bytes, i, "token_cache_bytes", KIND, cx);
    refuse(&a.region, i, "region", KIND, cx);
    refuse(&a.service, i, "service", KIND, cx);
    if !a.credential.is_empty() {
        let m = "a request authorizer has no credential";
        cx.err(&a.kind, key("credential"), m);
    }

    let payload = match a.payload_format.as_ref().map(|p| (p, p.get_ref().as_str())) {
        None | Some((_, "2.0")) => Some(PayloadFormat::V2),
        Some((_, "1.0")) => Some(PayloadFormat::V1),
        Some((p, other)) => {
            let m = format!("must be \"2.0\" or \"1.0\", got {other:?}");
            cx.err(p, key("payload_format"), m);
            None
        }
    };
    let simple_responses = a.simple_responses.as_ref().is_some_and(|s| *s.get_ref());
    if let (Some(s), Some(PayloadFormat::V1)) = (&a.simple_responses, payload) {
        if *s.get_ref() {
            // AWS: "Simple responses are supported only for payload format version 2.0"
            let m = "simple responses need payload_format \"2.0\" (as API Gateway)";
            cx.err(s, key("simple_responses"), m);
        }
    }

    let mut identity_sources = Vec::new();
    if let Some(list) = &a.identity_sources {
        for (j, s) in list.get_ref().iter().enumerate() {
            match parse_identity_source(s.get_ref()) {
                Ok(src) if identity_sources.contains(&src) => {
                    cx.err(s, key(&format!("identity_sources[{j}]")), "listed twice");
                }
                Ok(IdentitySource::Context(n)) if !CONTEXT_SOURCES.contains(&&*n) => {
                    let m = format!(
                        "$context.{n} is not known at the authorizer phase: one of {}",
                        CONTEXT_SOURCES.join(", ")
                    );
                    cx.err(s, key(&format!("identity_sources[{j}]")), m);
                }
                Ok(IdentitySource::StageVariable(_)) => {
                    // every request would miss it: 401 for all
                    let m = "tollgate has no stages yet, so no stage variables";
                    cx.err(s, key(&format!("identity_sources[{j}]")), m);
                }
                Ok(src) => identity_sources.push(src),
                Err(m) => cx.err(s, key(&format!("identity_sources[{j}]")), m),
            }
        }
    }

    // without identity sources there is nothing to key a cache on: the default ttl then
    // means no cache, and a written ttl over 0 is refused (API Gateway: "identity sources are
    // required when caching is enabled")
    let ttl = match &a.ttl_s {
        Some(t) => {
            let s = cx.range(t, key("ttl_s"), &AUTHORIZER_TTL_S);
            if s > 0 && identity_sources.is_empty() {
                let m = "caching (ttl_s > 0) needs at least one identity source: the cache is \
                         keyed by their values";
                cx.err(t, key("ttl_s"), m);
            }
            Duration::from_secs(s)
        }
        None if identity_sources.is_empty() => Duration::ZERO,
        None => Duration::from_secs(DEFAULT_AUTHORIZER_TTL_S),
    };
    let timeout = a
        .timeout_ms
        .as_ref()
        .map_or(Duration::from_millis(DEFAULT_AUTHORIZER_TIMEOUT_MS), |t| {
            cx.millis(t, key("timeout_ms"), &AUTHORIZER_TIMEOUT_MS)
        });
    let cache_entries = a
        .cache_entries
        .as_ref()
        .map_or(DEFAULT_AUTHORIZER_CACHE_ENTRIES, |c| {
            cx.range(c, key("cache_entries"), &AUTHORIZER_CACHE_ENTRIES)
        });
    let cache_bytes = a
        .cache_bytes
        .as_ref()
        .map_or(super::auth::DEFAULT_AUTHORIZER_CACHE_BYTES, |c| {
            cx.range(c, key("cache_bytes"), &super::auth::AUTHORIZER_CACHE_BYTES)
        });

    let target = match (&a.function, &a.url) {
        (Some(f), None) => {
            match functions
                .iter()
                .position(|x| x.name.get_ref() == f.get_ref())
            {
                Some(ix) => Some(RequestTarget::Function(ix)),
                None => {
                    let m = format!("no [[function]] named {:?}", f.get_ref());
                    cx.err(f, key("function"), m);
                    None
                }
            }
        }
        (None, Some(u)) => super::auth::http_target(
            format!("{AUTHORIZER_UPSTREAM_PREFIX}{}", a.name.get_ref()),
            u,
            u.get_ref(),
            timeout,
            &key("url"),
            upstreams,
            cx,
        )
        .map(RequestTarget::Url),
        (Some(_), Some(u)) => {
            let m = "set either function or url, not both";
            cx.err(u, key("url"), m);
            None
        }
        (None, None) => {
            let m = "needs function (a [[function]] name) or url (an HTTP endpoint)";
            cx.err(&a.name, format!("authorizer[{i}]"), m);
            None
        }
    };
    Some(RequestAuthorizer {
        target: target?,
        payload: payload?,
        simple_responses,
        identity_sources,
        ttl,
        timeout,
        cache_entries,
        cache_bytes,
        shared: std::sync::Arc::new(crate::auth::SharedAnswers::new(cache_entries, cache_bytes)),
    })
}

/// Refuses user `[[upstream]]` names that take the prefix of request authorizers' hidden
/// upstreams (`authorizer:NAME`).
pub(super) fn reserved_upstream_names(user: &[RawUpstream], cx: &mut Ctx<'_>) {
    for (i, u) in user.iter().enumerate() {
        if u.name.get_ref().starts_with(AUTHORIZER_UPSTREAM_PREFIX) {
            let m = format!(
                "names starting with {AUTHORIZER_UPSTREAM_PREFIX:?} are reserved for request \
                 authorizers"
            );
            cx.err(&u.name, format!("upstream[{i}].name"), m);
        }
    }
}

#[cfg(test)]
#[path = "auth_request_tests.rs"]
mod tests;
