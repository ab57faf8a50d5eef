//! `type = "jwt"` authorizers, compiled (see [`super::auth`]).
//!
//! Owns: checking a JWT authorizer's keys (`issuer` any non-empty string when `jwks_uri` is
//! given — RFC 7519 §4.1.1 StringOrURI, compared verbatim —, else an https URL used for
//! discovery, http allowed on loopback or an IP literal; `audience` not empty, `jwks_uri` or discovery from the issuer, the identity
//! source, ranges) and building its hidden upstream `jwks:NAME`; refusing user upstream names
//! that take that prefix. Leaves out: verifying tokens (see `crate::auth::jwt`) and fetching
//! keys (see `crate::auth::keys`).
//!
//! Data flow: raw keys → checks (every error collected, each naming its key and line) →
//! [`JwtAuthorizer`], whose [`KeySource`] holds the hidden upstream's index in
//! `Config::upstreams`: `jwks_uri`'s endpoint, or the issuer's for OIDC discovery (the
//! discovered `jwks_uri` must be on that same origin, checked when it is fetched).

use std::time::Duration;

use toml::Spanned;

use super::auth::{
    http_target, parse_identity_source, refuse, JwtAuthorizer, KeySource, DEFAULT_JWKS_REFRESH_S,
    DEFAULT_JWT_IDENTITY, DEFAULT_LEEWAY_S, DEFAULT_TOKEN_CACHE_BYTES, DEFAULT_TOKEN_CACHE_ENTRIES,
    JWKS_REFRESH_S, JWKS_UPSTREAM_PREFIX, LEEWAY_S, TOKEN_CACHE_BYTES, TOKEN_CACHE_ENTRIES,
};
use super::compile::Ctx;
use super::raw::{RawAuthorizer, RawUpstream};
use super::upstreams::UpstreamConfig;

/// How long a key set or discovery document fetch may take (connect, head and body) before it
/// counts as failed.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// What OpenID Connect Discovery 1.0 §4 appends to the issuer (after removing a trailing `/`).
pub const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";

/// Compiles authorizer `i` (its `type` is `jwt`).
pub(super) fn compile(
    i: usize,
    a: &RawAuthorizer,
    upstreams: &mut Vec<UpstreamConfig>,
    cx: &mut Ctx<'_>,
) -> Option<JwtAuthorizer> {
    let key = |k: &str| format!("authorizer[{i}].{k}");
    const KIND: &str = "jwt";
    refuse(&a.function, i, "function", KIND, cx);
    refuse(&a.url, i, "url", KIND, cx);
    refuse(&a.payload_format, i, "payload_format", KIND, cx);
    refuse(&a.simple_responses, i, "simple_responses", KIND, cx);
    refuse(&a.identity_sources, i, "identity_sources", KIND, cx);
    refuse(&a.ttl_s, i, "ttl_s", KIND, cx);
    refuse(&a.timeout_ms, i, "timeout_ms", KIND, cx);
    refuse(&a.cache_entries, i, "cache_entries", KIND, cx);
    refuse(&a.region, i, "region", KIND, cx);
    refuse(&a.service, i, "service", KIND, cx);
    if !a.credential.is_empty() {
        // the tables carry no span of their own: point at the authorizer's name
        let m = "a jwt authorizer has no credential";
        cx.err(&a.name, key("credential"), m);
    }

    let issuer = match &a.issuer {
        Some(iss) => check_issuer(iss, a.jwks_uri.is_none(), &key("issuer"), cx),
        None => {
            cx.err(&a.name, key("issuer"), "a jwt authorizer needs an issuer");
            None
        }
    };
    let audience = match &a.audience {
        Some(aud) => {
            let mut out = Vec::with_capacity(aud.get_ref().len());
            for (j, v) in aud.get_ref().iter().enumerate() {
                if v.get_ref().is_empty() {
                    cx.err(
                        v,
                        format!("authorizer[{i}].audience[{j}]"),
                        "must not be empty",
                    );
                }
                out.push(v.get_ref().clone());
            }
            if out.is_empty() {
                let m = "must name at least one audience (`aud` or `client_id` must hold one)";
                cx.err(aud, key("audience"), m);
            }
            out
        }
        None => {
            let m = "a jwt authorizer needs an audience (a list)";
            cx.err(&a.name, key("audience"), m);
            Vec::new()
        }
    };
    let identity = match &a.identity_source {
        Some(s) => match parse_identity_source(s.get_ref()) {
            Ok(src @ super::auth::IdentitySource::Header(_))
            | Ok(src @ super::auth::IdentitySource::Query(_)) => Some(src),
            Ok(_) => {
                let m = "a jwt token is read from $request.header.NAME or \
                         $request.querystring.NAME";
                cx.err(s, key("identity_source"), m);
                None
            }
            Err(m) => {
                cx.err(s, key("identity_source"), m);
                None
            }
        },
        None => parse_identity_source(DEFAULT_JWT_IDENTITY).ok(),
    };
    let leeway = match &a.leeway_s {
        Some(v) => cx.range(v, key("leeway_s"), &LEEWAY_S),
        None => DEFAULT_LEEWAY_S,
    };
    let refresh = match &a.jwks_refresh_s {
        Some(v) => cx.range(v, key("jwks_refresh_s"), &JWKS_REFRESH_S),
        None => DEFAULT_JWKS_REFRESH_S,
    };
    let cache_entries = match &a.token_cache_entries {
        Some(v) => cx.range(v, key("token_cache_entries"), &TOKEN_CACHE_ENTRIES),
        None => DEFAULT_TOKEN_CACHE_ENTRIES,
    };
    let cache_bytes = match &a.token_cache_bytes {
        Some(v) => cx.range(v, key("token_cache_bytes"), &TOKEN_CACHE_BYTES),
        None => DEFAULT_TOKEN_CACHE_BYTES,
    };

    // the hidden upstream only once the rest holds (it resolves the host now)
    let issuer = issuer?;
    let hidden = format!("{JWKS_UPSTREAM_PREFIX}{}", a.name.get_ref());
    let keys = match &a.jwks_uri {
        Some(uri) => {
            check_scheme(uri, &key("jwks_uri"), cx)?;
            let t = http_target(
                hidden,
                uri,
                uri.get_ref(),
                JWKS_FETCH_TIMEOUT,
                &key("jwks_uri"),
                upstreams,
                cx,
            )?;
            KeySource::Jwks(t)
        }
        None => {
            let iss = a.issuer.as_ref()?;
            let url = discovery_url(&issuer);
            let t = http_target(
                hidden,
                iss,
                &url,
                JWKS_FETCH_TIMEOUT,
                &key("issuer"),
                upstreams,
                cx,
            )?;
            KeySource::Discovery(t)
        }
    };
    Some(JwtAuthorizer {
        name: a.name.get_ref().clone(),
        issuer,
        audience,
        keys,
        identity: identity?,
        leeway: Duration::from_secs(leeway),
        refresh: Duration::from_secs(refresh),
        cache_entries,
        cache_bytes,
        shared_keys: std::sync::Arc::new(crate::auth::key_share::SharedKeys::new(a.name.get_ref())),
    })
}

/// Where OIDC discovery finds the issuer's metadata: OpenID Connect Discovery 1.0 §4 — any
/// terminating `/` of the issuer is removed before `/.well-known/openid-configuration` is
/// appended.
pub fn discovery_url(issuer: &str) -> String {
    format!("{}{DISCOVERY_SUFFIX}", issuer.trim_end_matches('/'))
}

/// The issuer, compared verbatim with `iss` (RFC 7519 §4.1.1: a case-sensitive StringOrURI).
/// With a `jwks_uri` it is only that: any non-empty string. Used for discovery (`discovery`),
/// it is where the keys come from, so an https URL without query or fragment (OpenID Connect
/// Discovery 1.0 §3), http only on a loopback or IP-literal host.
fn check_issuer(
    iss: &Spanned<String>,
    discovery: bool,
    key: &str,
    cx: &mut Ctx<'_>,
) -> Option<String> {
    let s = iss.get_ref();
    if s.is_empty() {
        cx.err(iss, key, "must not be empty");
        return None;
    }
    if !discovery {
        return Some(s.clone());
    }
    check_scheme(iss, key, cx)?;
    if s.contains(['?', '#']) {
        cx.err(iss, key, format!("{s:?} must not have a query or fragment"));
        return None;
    }
    if let Err(m) = super::auth::parse_url(s) {
        cx.err(iss, key, m);
        return None;
    }
    Some(s.clone())
}

/// Keys travel over https; plain http is allowed only to a loopback name or an IP literal
/// (a test identity provider, or one on the host's private network), where a DNS answer cannot
/// redirect the fetch.
fn check_scheme(url: &Spanned<String>, key: &str, cx: &mut Ctx<'_>) -> Option<()> {
    let s = url.get_ref();
    let lower = s.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    if lower.starts_with("https://") {
        return Some(());
    }
    if !lower.starts_with("http://") {
        cx.err(url, key, format!("{s:?} must be an https:// URL"));
        return None;
    }
    let ok = match super::auth::parse_url(s) {
        Ok((ep, _)) => {
            let host = ep.host.trim_start_matches('[').trim_end_matches(']');
            host == "localhost" || host.parse::<std::net::IpAddr>().is_ok()
        }
        Err(m) => {
            cx.err(url, key, m);
            return None;
        }
    };
    if !ok {
        let m =
            format!("{s:?} must be an https:// URL (http:// only for localhost or an IP address)");
        cx.err(url, key, m);
        return None;
    }
    Some(())
}

/// Refuses user `[[upstream]]` names taking the hidden prefix `jwks:`.
pub(super) fn refuse_reserved_upstreams(user: &[RawUpstream], cx: &mut Ctx<'_>) {
    for (i, u) in user.iter().enumerate() {
        if u.name.get_ref().starts_with(JWKS_UPSTREAM_PREFIX) {
            let m = format!(
                "names starting with {JWKS_UPSTREAM_PREFIX:?} are reserved for jwt authorizers"
            );
            cx.err(&u.name, format!("upstream[{i}].name"), m);
        }
    }
}
