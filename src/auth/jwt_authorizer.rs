//! The JWT authorizer phase: the token from the identity source, the worker's token cache,
//! else verification against the worker's key set, then the route's scopes.
//!
//! Owns: [`JwtState`] (the key store and token cache of one authorizer on one worker) and
//! [`authorize`] (missing token → 401, invalid → 401, missing scope → 403, keys unavailable →
//! 500). Leaves out: verification (see [`super::jwt`]), fetching keys (see [`super::keys`]).
//!
//! Data flow: identity source (exactly one credential, else 401) → token text → cache hit (a
//! hash and a byte comparison: the principal proved before) or the worker's copy of the
//! process-wide key set ([`KeyStore::current`], which may wait for the first fetch) →
//! [`jwt::verify`]; an unknown `kid` waits for one refetch (rate-limited process-wide, see
//! [`super::key_share`]) and verifies again → `Rc<Principal>` cached until `exp` plus the leeway → scopes. What was
//! wrong with a refused token goes to `st.detail` (the access log's `errorMessage`), never to
//! the client, who gets API Gateway's bodies (RFC 6750 §3: a `Bearer` challenge with the 401).
//!
//! Why 500 when no key set could be fetched: the gateway cannot tell a valid token from an
//! invalid one, so answering 401 would blame the caller for the identity provider's outage;
//! API Gateway likewise answers 5xx when its authorizer cannot run.

use std::future::Future;
use std::rc::Rc;

use super::jwt::{self, JwtError, Rules};
use super::keys::{Current, KeyStore, Refetch};
use super::token_cache::TokenCache;
use super::{AuthorizerState, Identity, Principal};
use crate::config::auth::{IdentitySource, JwtAuthorizer, UNKNOWN_KID_REFETCH};
use crate::config::AuthorizerKind;
use crate::error::{Denial, GatewayError};
use crate::exchange::ExchangeState;
use crate::http::RequestHead;
use crate::worker::{Cx, Worker};

/// One JWT authorizer's state on one worker.
pub struct JwtState {
    pub keys: KeyStore,
    pub tokens: TokenCache,
}

impl JwtState {
    /// A fresh state for `config`: an empty token cache and a view of the config's
    /// process-wide key set (see [`super::key_share`]; a new generation carries the set over
    /// when the key source is unchanged, and the whole state when nothing that shapes it
    /// changed: see [`super::carry`]).
    pub fn new(config: &JwtAuthorizer) -> JwtState {
        JwtState {
            keys: KeyStore::new(config.shared_keys.clone()),
            tokens: TokenCache::new(config.cache_entries, config.cache_bytes),
        }
    }
}

/// Starts the first fetch of every JWT authorizer's key set that has none yet (none in flight,
/// none failed just now), so that the first request does not wait for it: the worker calls
/// it once it serves and after each reload. The fetches run as their own tasks (see
/// [`KeyStore`]); nothing waits for them here.
pub fn prefetch(worker: &Worker) {
    let g = worker.current();
    let w = Cx { w: worker, g: &g };
    for (a, s) in g.config.authorizers.iter().zip(&g.auth.states) {
        if let (AuthorizerKind::Jwt(j), AuthorizerState::Jwt(state)) = (&a.kind, s) {
            state.keys.prefetch(&w, &j.keys, &j.issuer);
        }
    }
}

/// Admits the request with the principal its token proves (see the module doc). `gone`: the
/// session's "the client left" signal (`Session::client_gone`), which ends a wait for the key
/// set (`ClientGone`: nothing was decided; the fetch goes on for the other requests).
#[allow(clippy::too_many_arguments)]
pub async fn authorize<G: Future<Output = ()>>(
    w: &Cx<'_>,
    head: &RequestHead,
    st: &mut ExchangeState,
    authorizer: usize,
    config: &JwtAuthorizer,
    state: &Rc<JwtState>,
    scopes: &[String],
    gone: impl Fn() -> G,
) -> Result<Rc<Principal>, GatewayError> {
    let token = match token(head, &config.identity) {
        Found::One(t) => t,
        Found::Missing => {
            let m = format!("no token in {}", describe(&config.identity));
            return Err(refuse(st, m));
        }
        Found::Several => {
            let m = format!("more than one credential in {}", describe(&config.identity));
            return Err(refuse(st, m));
        }
    };
    // a hit only checks the expiry: one-second-coarse wall time is enough
    if let Some(p) = state
        .tokens
        .get(token.as_bytes(), crate::accesslog::wall_secs_coarse())
    {
        return admit(st, p, scopes);
    }
    let issuer = config.issuer.as_str();
    let source = (&config.keys, issuer);
    let mut keys = match state.keys.current(w, source, config.refresh, &gone).await {
        Current::Set(k) => k,
        Current::Unavailable => {
            st.detail = Some("jwt keys unavailable: the key set could not be fetched".into());
            return Err(GatewayError::AuthorizerFailed("jwt keys unavailable"));
        }
        Current::Gone => {
            st.detail = Some("the client left while the key set was fetched".into());
            return Err(GatewayError::ClientGone);
        }
    };
    let rules = Rules {
        issuer,
        audience: &config.audience,
        leeway_s: config.leeway.as_secs(),
    };
    // verification reads the precise clock: the coarse one lags up to a tick, and a token
    // issued this very second (`iat`, `nbf`) would look issued in the future at a second's
    // boundary (the read costs nothing next to a signature)
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut verified = jwt::verify(token, &keys, &rules, now);
    if let Err(JwtError::UnknownKid(kid)) = &verified {
        // RFC 7517 §4.5: a kid the set lacks may be a rotated-in key: fetch the set again
        match state.keys.refetch_for_kid(w, source, &gone).await {
            Refetch::Fetched => {
                if let Some(fresh) = state.keys.set() {
                    keys = fresh;
                    verified = jwt::verify(token, &keys, &rules, now);
                }
            }
            Refetch::TooSoon => {
                let m = format!(
                    "no key for kid {kid:?} (the key set was fetched again less than {} s ago)",
                    UNKNOWN_KID_REFETCH.as_secs()
                );
                return Err(refuse(st, m));
            }
            Refetch::Failed => {
                let m = format!("no key for kid {kid:?} (fetching the key set again failed)");
                return Err(refuse(st, m));
            }
            Refetch::Gone => {
                st.detail = Some("the client left while the key set was fetched again".into());
                return Err(GatewayError::ClientGone);
            }
        }
    }
    let v = match verified {
        Ok(v) => v,
        Err(e) => return Err(refuse(st, e.to_string())),
    };
    let until = v.expires.saturating_add(rules.leeway_s);
    let mut principal = v.into_principal(authorizer);
    if principal.id.is_empty() {
        principal.throttle = Some(throttle_key(issuer, &principal, token));
    }
    let principal = Rc::new(principal);
    state
        .tokens
        .insert(token.as_bytes(), principal.clone(), until);
    admit(st, principal, scopes)
}

/// The principal, if its scopes hold one of the route's (403 otherwise: RFC 6750 §3.1's
/// `insufficient_scope`, API Gateway's `{"message":"Forbidden"}`).
fn admit(
    st: &mut ExchangeState,
    p: Rc<Principal>,
    needed: &[String],
) -> Result<Rc<Principal>, GatewayError> {
    let has = match &p.identity {
        Identity::Jwt { scopes, .. } => jwt::has_scope(scopes, needed),
        _ => needed.is_empty(),
    };
    if has {
        return Ok(p);
    }
    st.detail = Some(format!("the token has none of the scopes {needed:?}").into_boxed_str());
    Err(GatewayError::Denied(Denial::Scope))
}

/// The `throttle_by = "principal"` key of a token without `sub` (RFC 7519 §4.1.2: it is
/// optional, e.g. client-credentials tokens): a digest of the issuer and the token's `jti`
/// (RFC 7519 §4.1.7: unique per token, so reissuing the same token keeps its bucket) when it
/// has one, else of the token itself — so that such callers do not all share the bucket of
/// the empty id. A digest (16 bytes of SHA-256, hex), not the token: the key may be logged or
/// kept by the throttle.
fn throttle_key(issuer: &str, p: &Principal, token: &str) -> Box<str> {
    let jti = match &p.identity {
        Identity::Jwt { claims, .. } => claims.get("jti").and_then(|v| v.as_str()),
        _ => None,
    };
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    match jti.filter(|j| !j.is_empty()) {
        Some(j) => {
            ctx.update(b"jti\0");
            ctx.update(issuer.as_bytes());
            ctx.update(b"\0");
            ctx.update(j.as_bytes());
        }
        None => {
            ctx.update(b"token\0");
            ctx.update(token.as_bytes());
        }
    }
    let digest = ctx.finish();
    let hex: String = digest
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("jwt:{hex}").into_boxed_str()
}

/// 401, with why in the access log.
fn refuse(st: &mut ExchangeState, why: String) -> GatewayError {
    st.detail = Some(why.into_boxed_str());
    GatewayError::Unauthorized
}

/// What the identity source holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found<'h> {
    /// Nothing (or an empty value, or a header without a bearer token).
    Missing,
    /// One token.
    One(&'h str),
    /// More than one credential: refused, whichever one would verify (a front proxy and the
    /// gateway could each take a different one: the confused deputy).
    Several,
}

/// The token at the identity source: a header's value after `Bearer ` (RFC 6750 §2.1), or a
/// query parameter's value (RFC 6750 §2.3; a token is base64url and dots, so it needs no
/// percent-decoding — an encoded one fails verification like any other malformed token).
///
/// Exactly one credential: the header field must occur once and hold one value (RFC 9110
/// §11.6.2: `Authorization = credentials`, a single value, never a comma-separated list, and
/// §5.3: a field that is not a list must not be repeated), and the query parameter must occur
/// once (RFC 6750 §2.3 names one `access_token`).
fn token<'h>(head: &'h RequestHead, source: &IdentitySource) -> Found<'h> {
    match source {
        IdentitySource::Header(name) => {
            let name = name.as_bytes();
            let mut values = head.headers.iter().filter(|h| {
                h.name.len() == name.len() && head.slice(h.name).eq_ignore_ascii_case(name)
            });
            let Some(first) = values.next() else {
                return Found::Missing;
            };
            let value = head.slice(first.value);
            if values.next().is_some() || value.contains(&b',') {
                return Found::Several;
            }
            jwt::bearer(value).map_or(Found::Missing, Found::One)
        }
        IdentitySource::Query(name) => {
            let Some(q) = head.query_bytes() else {
                return Found::Missing;
            };
            let mut values = q.split(|b| *b == b'&').filter_map(|pair| {
                let mut kv = pair.splitn(2, |b| *b == b'=');
                let k = kv.next()?;
                (k == name.as_bytes()).then(|| kv.next().unwrap_or_default())
            });
            let Some(v) = values.next() else {
                return Found::Missing;
            };
            if values.next().is_some() {
                return Found::Several;
            }
            match std::str::from_utf8(v) {
                Ok(t) if !t.is_empty() => Found::One(t),
                _ => Found::Missing,
            }
        }
        // the config admits only the two above for a jwt authorizer
        IdentitySource::Context(_) | IdentitySource::StageVariable(_) => Found::Missing,
    }
}

/// Where the token was looked for, in words (for the access log).
fn describe(source: &IdentitySource) -> String {
    match source {
        IdentitySource::Header(n) => format!("the {n} header"),
        IdentitySource::Query(n) => format!("the query parameter {n}"),
        IdentitySource::Context(n) => format!("$context.{n}"),
        IdentitySource::StageVariable(n) => format!("$stageVariables.{n}"),
    }
}
