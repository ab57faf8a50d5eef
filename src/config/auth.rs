//! `[[authorizer]]` and the route's `authorizer` / `scopes`, compiled.
//!
//! Owns: the compiled shape of the three kinds of authorizer ([`AuthorizerConfig`]: a JWT
//! authorizer, API Gateway's Lambda REQUEST authorizer calling a function or an HTTP endpoint,
//! an IAM (SigV4) authorizer), the identity sources they read ([`IdentitySource`]), their
//! defaults and ranges as named constants, and the driver that checks them ([`compile`]: names
//! unique, a known `type`, keys of another type refused naming the key and its line); each
//! kind's own checks are in `auth_jwt`, `auth_request` and `auth_iam`. Leaves out: verifying
//! anything (see `crate::auth`) and the other security settings (CORS, IP rules, mTLS, admin
//! token: see [`super::access`]).
//!
//! Data flows raw `[[authorizer]]` ([`super::raw::RawAuthorizer`]) → [`compile`] →
//! `Config::authorizers`, which routes name by index ([`RouteAuth::authorizer`]). An
//! authorizer that fetches over HTTP (a JWT authorizer's key set or discovery document, a
//! `url` request authorizer) gets a hidden upstream, `jwks:NAME` or `authorizer:NAME`, appended
//! to `Config::upstreams` after the user's and the functions' (as a remote function's
//! `function:NAME`), so the worker reaches it through its ordinary pools and `client::exchange`.
//! Compiling reads the environment (IAM secrets) and DNS (hidden upstreams): control thread
//! only.

use std::time::Duration;

use toml::Spanned;

use super::compile::Ctx;
use super::functions::PayloadFormat;
use super::raw::{RawAuthorizer, RawFunction, RawRoute};
use super::upstreams::UpstreamConfig;

/// Prefix of a JWT authorizer's hidden upstream (`jwks:NAME`).
pub const JWKS_UPSTREAM_PREFIX: &str = "jwks:";
/// Prefix of a `url` request authorizer's hidden upstream (`authorizer:NAME`).
pub const AUTHORIZER_UPSTREAM_PREFIX: &str = "authorizer:";

/// One `[[authorizer]]`.
#[derive(Debug)]
pub struct AuthorizerConfig {
    pub name: String,
    pub kind: AuthorizerKind,
}

#[derive(Debug)]
pub enum AuthorizerKind {
    Jwt(JwtAuthorizer),
    Request(RequestAuthorizer),
    Iam(IamAuthorizer),
}

impl AuthorizerKind {
    /// The `type` as written.
    pub fn type_name(&self) -> &'static str {
        match self {
            AuthorizerKind::Jwt(_) => "jwt",
            AuthorizerKind::Request(_) => "request",
            AuthorizerKind::Iam(_) => "aws_iam",
        }
    }
}

/// Where a value comes from (API Gateway's identity source selection expressions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// `$request.header.NAME` (stored lower case).
    Header(Box<str>),
    /// `$request.querystring.NAME`.
    Query(Box<str>),
    /// `$context.NAME` (e.g. `$context.identity.sourceIp`).
    Context(Box<str>),
    /// `$stageVariables.NAME`.
    StageVariable(Box<str>),
}

/// An HTTP resource reached through a hidden upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Index in `Config::upstreams`.
    pub upstream: usize,
    /// The `host` field sent (the URL's authority without the scheme's default port).
    pub authority: String,
    /// Path and query sent (`/` at least).
    pub path: String,
    /// The URL as written (for messages).
    pub url: String,
}

// ---- jwt ----

/// Where a JWT authorizer gets its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `jwks_uri`.
    Jwks(HttpTarget),
    /// No `jwks_uri`: `ISSUER/.well-known/openid-configuration`, whose `jwks_uri` must be on
    /// the issuer's own scheme, host and port (the hidden upstream's).
    Discovery(HttpTarget),
}

/// Default `leeway_s`.
pub const DEFAULT_LEEWAY_S: u64 = 0;
/// Accepted `leeway_s`.
pub const LEEWAY_S: std::ops::RangeInclusive<u64> = 0..=3_600;
/// Default `jwks_refresh_s`: how old a worker's key set may get before it fetches it again in
/// the background.
pub const DEFAULT_JWKS_REFRESH_S: u64 = 3_600;
/// Accepted `jwks_refresh_s`.
pub const JWKS_REFRESH_S: std::ops::RangeInclusive<u64> = 10..=86_400;
/// An unknown `kid` fetches the key set again at most this often per worker and authorizer.
pub const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(10);
/// Default `token_cache_entries` (verified tokens each worker keeps per authorizer).
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 10_000;
/// Accepted `token_cache_entries` (0 turns the cache off).
pub const TOKEN_CACHE_ENTRIES: std::ops::RangeInclusive<usize> = 0..=1_000_000;
/// `token_cache_bytes` default: what each worker's token cache of one jwt authorizer may hold,
/// counted by `crate::auth::token_cache::entry_cost` (token, claims, bookkeeping).
pub const DEFAULT_TOKEN_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// `token_cache_bytes` range (0: no cache).
pub const TOKEN_CACHE_BYTES: std::ops::RangeInclusive<usize> = 0..=1024 * 1024 * 1024;
/// The default identity source of a JWT authorizer.
pub const DEFAULT_JWT_IDENTITY: &str = "$request.header.Authorization";

/// `type = "jwt"`.
#[derive(Debug)]
pub struct JwtAuthorizer {
    /// The authorizer's `name` (for log lines).
    pub name: String,
    pub issuer: String,
    /// `aud` or `client_id` must contain one of them.
    pub audience: Vec<String>,
    pub keys: KeySource,
    /// Where the token is; a `Bearer ` prefix (any case) is stripped.
    pub identity: IdentitySource,
    pub leeway: Duration,
    pub refresh: Duration,
    pub cache_entries: usize,
    /// Most bytes of tokens (and their claims) each worker's token cache keeps.
    pub cache_bytes: usize,
    /// The key set every worker shares, created empty here (runtime state in the compiled
    /// config, so that all workers of a generation reach the same one: see
    /// `crate::auth::key_share`); a new generation with the same key source takes the
    /// served one instead (`crate::auth::carry::keep_shared`).
    pub shared_keys: std::sync::Arc<crate::auth::key_share::SharedKeys>,
}

// ---- request ----

/// What a request authorizer calls.
#[derive(Debug)]
pub enum RequestTarget {
    /// `function = "NAME"`: index in `Config::functions`.
    Function(usize),
    /// `url = "..."`.
    Url(HttpTarget),
}

/// Default `ttl_s` (API Gateway's 300 s).
pub const DEFAULT_AUTHORIZER_TTL_S: u64 = 300;
/// Accepted `ttl_s` (API Gateway's maximum is 3600).
pub const AUTHORIZER_TTL_S: std::ops::RangeInclusive<u64> = 0..=3_600;
/// Default `timeout_ms` (API Gateway's 10 s).
pub const DEFAULT_AUTHORIZER_TIMEOUT_MS: u64 = 10_000;
/// Accepted `timeout_ms`.
pub const AUTHORIZER_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=29_000;
/// Default `cache_entries` (results each worker keeps per authorizer).
pub const DEFAULT_AUTHORIZER_CACHE_ENTRIES: usize = 10_000;
/// Accepted `cache_entries`.
pub const AUTHORIZER_CACHE_ENTRIES: std::ops::RangeInclusive<usize> = 1..=1_000_000;

/// Default `cache_bytes`: the most bytes of answers (as the authorizer sent them, plus
/// [`CACHE_ENTRY_OVERHEAD`] each) a request authorizer's cache keeps on each worker, and again
/// in its process-wide level; beyond it the oldest answers go first.
pub const DEFAULT_AUTHORIZER_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// Accepted `cache_bytes`.
pub const AUTHORIZER_CACHE_BYTES: std::ops::RangeInclusive<usize> = 64 * 1024..=1024 * 1024 * 1024;
/// What one cached answer costs besides its bytes (key, expiry, parsed form's bookkeeping).
pub const CACHE_ENTRY_OVERHEAD: usize = 256;

/// `type = "request"`.
#[derive(Debug)]
pub struct RequestAuthorizer {
    pub target: RequestTarget,
    pub payload: PayloadFormat,
    /// `{"isAuthorized": ...}` answers (2.0 only); false: IAM policy answers.
    pub simple_responses: bool,
    /// Empty: no caching possible and no 401 for a missing source.
    pub identity_sources: Vec<IdentitySource>,
    /// Zero: no cache.
    pub ttl: Duration,
    pub timeout: Duration,
    pub cache_entries: usize,
    /// `cache_bytes`.
    pub cache_bytes: usize,
    /// The cache's second level, shared by every worker (see `crate::auth::request`): made
    /// with the compiled config; a new generation whose authorizer is unchanged takes the
    /// served one instead (`crate::auth::carry::keep_shared`).
    pub shared: std::sync::Arc<crate::auth::SharedAnswers>,
}

// ---- aws_iam ----

/// Default `service` of an `aws_iam` authorizer.
pub const DEFAULT_IAM_SERVICE: &str = "execute-api";
/// How far `x-amz-date` may be from now (API Gateway: 5 minutes).
pub const IAM_MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// Default `max_body_bytes` of an `aws_iam` authorizer: the largest body read to check its
/// payload hash (API Gateway's 10 MiB payload limit); a larger one is a 413.
pub const DEFAULT_IAM_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Accepted `max_body_bytes`.
pub const IAM_MAX_BODY_BYTES: std::ops::RangeInclusive<usize> = 1..=128 * 1024 * 1024;
/// Default `unverified_body_budget_bytes` of an `aws_iam` authorizer: the most bytes of bodies
/// whose signature is not verified yet (the payload hash is the body's own, so the body must be
/// read first) that one worker holds at once; a request that would go beyond is refused with
/// 503 before its body is read. Bounds what unauthenticated clients can make a worker buffer.
pub const DEFAULT_IAM_UNVERIFIED_BODY_BUDGET: usize = 64 * 1024 * 1024;
/// Accepted `unverified_body_budget_bytes` (and never below the authorizer's `max_body_bytes`:
/// a budget smaller than one body would refuse every body of that size).
pub const IAM_UNVERIFIED_BODY_BUDGET: std::ops::RangeInclusive<usize> = 1..=1024 * 1024 * 1024;
/// Default `unverified_body_timeout_ms`: the longest the whole read of a body whose signature is
/// not verified yet may take (from `100 Continue` to its last byte); beyond, 408. Bounds how long
/// a client with no secret holds the worker's unverified budget.
pub const UNVERIFIED_BODY_DEADLINE: Duration = Duration::from_secs(30);
/// Accepted `unverified_body_timeout_ms`.
pub const UNVERIFIED_BODY_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=300_000;
/// Accepted length of an `access_key_id` (AWS: 16 to 128 characters of `A-Z0-9`).
pub const ACCESS_KEY_ID_LEN: std::ops::RangeInclusive<usize> = 16..=128;

/// `type = "aws_iam"`.
#[derive(Debug)]
pub struct IamAuthorizer {
    pub region: String,
    pub service: String,
    /// Largest body read to hash (`max_body_bytes`).
    pub max_body: usize,
    /// Most unverified body bytes one worker holds at once (`unverified_body_budget_bytes`).
    pub unverified_budget: usize,
    /// Longest whole read of an unverified body (`unverified_body_timeout_ms`).
    pub unverified_timeout: Duration,
    pub credentials: Vec<IamCredential>,
}

/// One `[[authorizer.credential]]`, its secret read from the environment at load.
pub struct IamCredential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// The principal's ARN.
    pub principal: String,
    /// The ARN's partition (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
    /// The ARN's 12-digit account (`$context.identity.accountId`).
    pub account_id: String,
    /// Route-key patterns (`*` matches any run of characters).
    pub allow: Vec<String>,
}

impl std::fmt::Debug for IamCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the secret or the token
        f.debug_struct("IamCredential")
            .field("access_key_id", &self.access_key_id)
            .field("principal", &self.principal)
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

// ---- routes ----

/// A route's `authorizer` and `scopes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteAuth {
    /// Index in `Config::authorizers`.
    pub authorizer: Option<usize>,
    /// JWT: one of them must be in `scope` / `scp`; empty: no scope needed.
    pub scopes: Vec<String>,
}

/// Compiles every `[[authorizer]]` (hidden upstreams appended to `upstreams`).
pub(super) fn compile(
    raws: &[RawAuthorizer],
    functions: &[RawFunction],
    upstreams: &mut Vec<UpstreamConfig>,
    cx: &mut Ctx<'_>,
) -> Vec<AuthorizerConfig> {
    let mut out = Vec::with_capacity(raws.len());
    for (i, a) in raws.iter().enumerate() {
        let name = a.name.get_ref();
        if name.is_empty() {
            cx.err(
                &a.name,
                format!("authorizer[{i}].name"),
                "must not be empty",
            );
            continue;
        }
        if raws[..i].iter().any(|o| o.name.get_ref() == name) {
            cx.err(&a.name, format!("authorizer[{i}].name"), "duplicate name");
            continue;
        }
        if a.kind.get_ref() != "aws_iam" {
            // an aws_iam key the other kinds' own checks do not list
            refuse(&a.max_body_bytes, i, "max_body_bytes", a.kind.get_ref(), cx);
            let key = "unverified_body_budget_bytes";
            refuse(
                &a.unverified_body_budget_bytes,
                i,
                key,
                a.kind.get_ref(),
                cx,
            );
            let key = "unverified_body_timeout_ms";
            refuse(&a.unverified_body_timeout_ms, i, key, a.kind.get_ref(), cx);
        }
        if a.kind.get_ref() != "request" {
            refuse(&a.cache_bytes, i, "cache_bytes", a.kind.get_ref(), cx);
        }
        let kind = match a.kind.get_ref().as_str() {
            "jwt" => super::auth_jwt::compile(i, a, upstreams, cx).map(AuthorizerKind::Jwt),
            "request" => super::auth_request::compile(i, a, functions, upstreams, cx)
                .map(AuthorizerKind::Request),
            "aws_iam" => super::auth_iam::compile(i, a, cx).map(AuthorizerKind::Iam),
            other => {
                let m = format!("unknown type {other:?}: \"jwt\", \"request\" or \"aws_iam\"");
                cx.err(&a.kind, format!("authorizer[{i}].type"), m);
                None
            }
        };
        if let Some(kind) = kind {
            out.push(AuthorizerConfig {
                name: name.clone(),
                kind,
            });
        }
    }
    out
}

/// A route's `authorizer` and `scopes` (`authorizers` is `raw.authorizer`: indices are the
/// file's; a name that did not compile is already an error).
pub(super) fn route(
    i: usize,
    r: &RawRoute,
    authorizers: &[RawAuthorizer],
    cx: &mut Ctx<'_>,
) -> RouteAuth {
    let mut out = RouteAuth::default();
    if let Some(name) = &r.authorizer {
        match authorizers
            .iter()
            .position(|a| a.name.get_ref() == name.get_ref())
        {
            Some(ix) => out.authorizer = Some(ix),
            None => cx.err(
                name,
                format!("route[{i}].authorizer"),
                format!("no [[authorizer]] named {:?}", name.get_ref()),
            ),
        }
    }
    if let Some(scopes) = &r.scopes {
        let is_jwt = out
            .authorizer
            .and_then(|ix| authorizers.get(ix))
            .is_some_and(|a| a.kind.get_ref() == "jwt");
        if !is_jwt {
            cx.err(
                scopes,
                format!("route[{i}].scopes"),
                "only a route with a jwt authorizer has scopes",
            );
        }
        out.scopes = scopes
            .get_ref()
            .iter()
            .map(|s| s.get_ref().clone())
            .collect();
    }
    out
}

/// Refuses a key that `kind` authorizers do not have, naming it and its line.
pub(super) fn refuse<T>(v: &Option<Spanned<T>>, i: usize, key: &str, kind: &str, cx: &mut Ctx<'_>) {
    if let Some(v) = v {
        let m = format!("a {kind} authorizer has no {key}");
        cx.err(v, format!("authorizer[{i}].{key}"), m);
    }
}

/// Parses an identity source selection expression.
pub fn parse_identity_source(s: &str) -> Result<IdentitySource, String> {
    let bad = || {
        format!(
            "{s:?} is not an identity source: $request.header.NAME, \
             $request.querystring.NAME, $context.NAME or $stageVariables.NAME"
        )
    };
    let (kind, name) = if let Some(n) = s.strip_prefix("$request.header.") {
        (0, n)
    } else if let Some(n) = s.strip_prefix("$request.querystring.") {
        (1, n)
    } else if let Some(n) = s.strip_prefix("$context.") {
        (2, n)
    } else if let Some(n) = s.strip_prefix("$stageVariables.") {
        (3, n)
    } else {
        return Err(bad());
    };
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'$' | b'{' | b'}'));
    if !ok {
        return Err(bad());
    }
    Ok(match kind {
        0 => {
            // RFC 9110 §5.1: a field name is a token
            if !name.bytes().all(crate::http::is_tchar) {
                return Err(bad());
            }
            IdentitySource::Header(name.to_ascii_lowercase().into())
        }
        1 => IdentitySource::Query(name.into()),
        2 => IdentitySource::Context(name.into()),
        _ => IdentitySource::StageVariable(name.into()),
    })
}

/// Splits `http(s)://HOST[:PORT]/PATH[?QUERY]` into the endpoint and the path and query sent
/// (`/` when none); fragments and user information are refused.
pub fn parse_url(s: &str) -> Result<(super::arn::Endpoint, String), String> {
    let after_scheme = s.find("://").map_or(0, |at| at + 3);
    let rest = s.get(after_scheme..).unwrap_or_default();
    let cut = rest
        .find(['/', '?'])
        .map_or(s.len(), |at| after_scheme + at);
    let (base, path) = (s.get(..cut).unwrap_or(s), s.get(cut..).unwrap_or_default());
    if path.contains('#') {
        return Err(format!("{s:?} must not have a fragment"));
    }
    if path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "{s:?}: the path must be percent-encoded (no spaces or controls)"
        ));
    }
    let ep = super::arn::parse_endpoint(base).map_err(|m| {
        m.replace(
            " must not have a path, query or fragment: the Invoke API path is fixed",
            "",
        )
    })?;
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    Ok((ep, path))
}

/// The hidden upstream for `url` named `hidden` (`jwks:NAME`, `authorizer:NAME`), appended to
/// `upstreams`, with `timeout` as its response timeout; `at`/`key` locate errors.
pub(super) fn http_target<T>(
    hidden: String,
    url: &Spanned<T>,
    text: &str,
    timeout: Duration,
    key: &str,
    upstreams: &mut Vec<UpstreamConfig>,
    cx: &mut Ctx<'_>,
) -> Option<HttpTarget> {
    let (ep, path) = match parse_url(text) {
        Ok(v) => v,
        Err(m) => {
            cx.err(url, key, m);
            return None;
        }
    };
    let at = Spanned::new(url.span(), ());
    let up = super::remote_functions::hidden_upstream(hidden, &ep, timeout, (&at, key), cx)?;
    upstreams.push(up);
    Some(HttpTarget {
        upstream: upstreams.len() - 1,
        authority: ep.authority(),
        path,
        url: text.to_string(),
    })
}
