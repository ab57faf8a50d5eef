//! CORS (the Fetch standard's CORS protocol, API Gateway HTTP API's `CorsConfiguration`).
//!
//! Owns: recognising and answering a preflight ([`preflight`]: `OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`, answered 204 before routing and before authorizers, for any
//! path), and choosing the fields an allowed origin's actual response gets ([`fields`], put in
//! [`crate::response::Added::cors`] by the response filter, errors included), with the lines
//! they become ([`CorsFields::each`]) and the test for the origin's own CORS fields the
//! gateway's replace ([`is_cors_field`]). Leaves out: compiling policies (see
//! `crate::config::access`) and serialising the fields (the sessions, through
//! [`CorsFields::each`]). Data flow: request head → policy (the route's, else `[cors]`) →
//! 204 held response (preflight) or `CorsFields` in the response's `Added` (actual request) →
//! the session's writer.

use bytes::Bytes;

use crate::config::access::{CorsPolicy, OriginPattern};
use crate::config::{Config, MockResponse};
use crate::http::{Method, RequestHead};
use crate::response::{Response, Source};

/// The CORS fields of one response: the policy that allowed `origin`.
#[derive(Debug, Clone, Copy)]
pub struct CorsFields<'a> {
    /// The request's `Origin`, echoed in `access-control-allow-origin` (or `*`, see the
    /// policy).
    pub origin: &'a [u8],
    pub policy: &'a CorsPolicy,
}

impl CorsFields<'_> {
    /// The `access-control-allow-origin` value: `*` when the policy allows any origin without
    /// credentials, else the request's origin (the Fetch standard §3.2.3: with credentials
    /// the value must be the origin, `*` does not match).
    pub fn allow_origin(&self) -> &[u8] {
        if any_origin(self.policy) {
            b"*"
        } else {
            self.origin
        }
    }

    /// Whether the answer depends on the request's `Origin`, so caches must key on it
    /// (`vary: origin`, the Fetch standard §3.2.5 "CORS protocol and HTTP caches").
    pub fn varies(&self) -> bool {
        !any_origin(self.policy)
    }

    /// The fields of an actual response, in order: `access-control-allow-origin`,
    /// `access-control-allow-credentials`, `access-control-expose-headers`, and `vary: origin`
    /// unless `vary_done` (the response's own `vary` already names `origin` or `*`).
    pub fn each(&self, vary_done: bool, mut f: impl FnMut(&[u8], &[u8])) {
        f(b"access-control-allow-origin", self.allow_origin());
        if self.policy.allow_credentials {
            f(b"access-control-allow-credentials", b"true");
        }
        if let Some(e) = &self.policy.expose_headers {
            f(b"access-control-expose-headers", e.as_bytes());
        }
        if self.varies() && !vary_done {
            f(b"vary", b"origin");
        }
    }
}

/// `*` is the answer: any origin is allowed and no credentials are (see
/// [`CorsFields::allow_origin`]).
fn any_origin(p: &CorsPolicy) -> bool {
    !p.allow_credentials && p.allow_origins.contains(&OriginPattern::Any)
}

/// Whether a response field is one of the CORS response fields (`access-control-*`) that the
/// gateway's replace when it adds its own (API Gateway ignores an integration's CORS headers
/// when CORS is configured).
pub fn is_cors_field(name: &[u8]) -> bool {
    name.get(..15)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"access-control-"))
}

/// Whether a `vary` value already covers `origin` (RFC 9110 §12.5.5: a list of field names,
/// case-insensitive, or `*`).
pub fn vary_covers_origin(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|v| {
        let v = v.trim_ascii();
        v == b"*" || v.eq_ignore_ascii_case(b"origin")
    })
}

/// Whether a response's own `vary` already names `origin` (or `*`), so the CORS fields add no
/// second one (an origin's fields, or a mock's rendered head).
pub fn vary_done(r: &Response<'_>) -> bool {
    match &r.source {
        Source::Origin { head, .. } => head.headers.iter().any(|h| {
            head.slice(h.name).eq_ignore_ascii_case(b"vary")
                && vary_covers_origin(head.slice(h.value))
        }),
        Source::Mock(&ref m) | Source::Held(ref m) => m.head.split(|&b| b == b'\n').any(|l| {
            l.iter().position(|&b| b == b':').is_some_and(|i| {
                let (n, v) = l.split_at(i);
                n.eq_ignore_ascii_case(b"vary")
                    && vary_covers_origin(v.get(1..).unwrap_or_default())
            })
        }),
        Source::Error(_) => false,
    }
}

/// Whether `head` is a CORS-preflight request (the Fetch standard §3.2.2): `OPTIONS` with
/// `Origin` and `Access-Control-Request-Method`.
fn is_preflight(head: &RequestHead) -> bool {
    head.method_kind == Method::Options
        && head.header("origin").is_some()
        && head.header("access-control-request-method").is_some()
}

/// A preflight's answer, when `head` is one and CORS applies to its path: 204 with the
/// allowed methods and headers (an origin or method not allowed gets the 204 without them, so
/// the browser refuses; nothing reaches routing or an authorizer). `None`: not a preflight,
/// or no CORS for it; the request is routed as usual.
pub fn preflight<'a>(config: &'a Config, head: &'a RequestHead) -> Option<Response<'a>> {
    if config.access.cors_policies.is_empty() || !is_preflight(head) {
        return None;
    }
    let origin = head.header("origin")?;
    let method = head.header("access-control-request-method")?.trim_ascii();
    // the policy of the route the actual request would take, else the global one
    let host = head.host.map(|s| head.slice(s));
    let policy = match config.router.lookup(method, host, head.path_bytes()) {
        Some(m) => config.access.routes.get(m.route)?.cors?,
        None => config.access.cors?,
    };
    let policy = config.access.cors_policies.get(policy)?;
    let mut lines = b"HTTP/1.1 204 No Content\r\n".to_vec();
    let allowed = allows_origin(policy, origin)
        && allows_method(policy, method)
        && requested_headers(head).all(|h| allows_header(policy, h));
    if allowed {
        answer(policy, origin, method, head, &mut lines);
    } else if !any_origin(policy) {
        // the refusal depends on the origin too
        lines.extend_from_slice(b"vary: origin\r\n");
    }
    Some(Response::held(MockResponse {
        status: 204,
        head: Bytes::from(lines),
        body: Bytes::new(),
        present: crate::http::Present::default(),
    }))
}

/// The CORS fields of an allowed preflight (the Fetch standard §3.2.3, "HTTP responses" to a
/// CORS-preflight request).
fn answer(
    policy: &CorsPolicy,
    origin: &[u8],
    method: &[u8],
    head: &RequestHead,
    out: &mut Vec<u8>,
) {
    let fields = CorsFields { origin, policy };
    // every value is the config's, or a request's token / allowed origin (checked above)
    let mut put = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    put("access-control-allow-origin", fields.allow_origin());
    if policy.allow_credentials {
        put("access-control-allow-credentials", b"true");
    }
    // the configured list, or with `*` the requested method (a `*` answer is no wildcard
    // with credentials)
    if policy.any_method {
        put("access-control-allow-methods", method);
    } else {
        put(
            "access-control-allow-methods",
            policy.allow_methods.join(", ").as_bytes(),
        );
    }
    let requested: Vec<Vec<u8>> = requested_headers(head)
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if !requested.is_empty() {
        put(
            "access-control-allow-headers",
            requested.join(&b", "[..]).as_slice(),
        );
    }
    if let Some(age) = policy.max_age {
        put("access-control-max-age", age.to_string().as_bytes());
    }
    if fields.varies() {
        put("vary", b"origin");
    }
}

/// The names in every `Access-Control-Request-Headers` line (a comma-separated list, RFC 9110
/// §5.3 combines field lines), empty entries skipped.
fn requested_headers(head: &RequestHead) -> impl Iterator<Item = &[u8]> + '_ {
    head.headers
        .iter()
        .filter(|h| {
            head.slice(h.name)
                .eq_ignore_ascii_case(b"access-control-request-headers")
        })
        .flat_map(move |h| head.slice(h.value).split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|v| !v.is_empty())
}

fn allows_origin(p: &CorsPolicy, origin: &[u8]) -> bool {
    p.allow_origins.iter().any(|o| o.matches(origin))
}

/// Methods are case-sensitive (RFC 9110 §9.1); browsers upper-case the standard ones (the
/// Fetch standard's "normalize"), and the config holds them upper case.
fn allows_method(p: &CorsPolicy, method: &[u8]) -> bool {
    is_token(method) && (p.any_method || p.allow_methods.iter().any(|m| m.as_bytes() == method))
}

/// A token (RFC 9110 §5.6.2): what a method or a field name is; anything else requested is
/// refused (and so never echoed).
fn is_token(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Field names are case-insensitive (RFC 9110 §5.1); the config holds them lower case.
fn allows_header(p: &CorsPolicy, name: &[u8]) -> bool {
    is_token(name)
        && (p.any_header
            || p.allow_headers
                .iter()
                .any(|h| h.as_bytes().eq_ignore_ascii_case(name)))
}

/// The fields an actual (non-preflight) response gets: `None` without an `Origin`, without a
/// policy for the route (`route`: the matched one; `None`: no route matched, the global
/// policy applies), or for an origin the policy does not allow. A preflight-shaped request
/// gets none here: the gateway's answer carries its own, and one it left to routing (no
/// policy) is the route's to answer.
pub fn fields<'a>(
    config: &'a Config,
    route: Option<usize>,
    head: &'a RequestHead,
) -> Option<CorsFields<'a>> {
    if config.access.cors_policies.is_empty() {
        return None; // no CORS anywhere: not even a field lookup
    }
    let origin = head.header("origin")?;
    if is_preflight(head) {
        return None;
    }
    let ix = match route {
        Some(r) => config.access.routes.get(r)?.cors?,
        None => config.access.cors?,
    };
    let policy = config.access.cors_policies.get(ix)?;
    allows_origin(policy, origin).then_some(CorsFields { origin, policy })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[OriginPattern], credentials: bool) -> CorsPolicy {
        CorsPolicy {
            allow_origins: origins.to_vec(),
            allow_methods: vec!["GET".into()],
            any_method: false,
            allow_headers: vec![],
            any_header: false,
            expose_headers: Some("x-request-id".into()),
            max_age: None,
            allow_credentials: credentials,
        }
    }

    #[test]
    fn fields_echo_or_star() {
        let any = policy(&[OriginPattern::Any], false);
        let f = CorsFields {
            origin: b"https://a.example",
            policy: &any,
        };
        assert_eq!(f.allow_origin(), b"*");
        let mut out = Vec::new();
        f.each(false, |n, v| out.push((n.to_vec(), v.to_vec())));
        assert_eq!(out.len(), 2, "no vary, no credentials: {out:?}");
        let exact = policy(&[OriginPattern::Exact("https://a.example".into())], true);
        let f = CorsFields {
            origin: b"https://a.example",
            policy: &exact,
        };
        assert_eq!(f.allow_origin(), b"https://a.example");
        let mut names = Vec::new();
        f.each(false, |n, _| {
            names.push(String::from_utf8_lossy(n).into_owned())
        });
        assert_eq!(
            names,
            [
                "access-control-allow-origin",
                "access-control-allow-credentials",
                "access-control-expose-headers",
                "vary"
            ]
        );
        let mut n = 0;
        f.each(true, |_, _| n += 1);
        assert_eq!(n, 3, "vary already covered");
    }

    #[test]
    fn vary_and_cors_field_names() {
        assert!(vary_covers_origin(b"accept-encoding, Origin"));
        assert!(vary_covers_origin(b"*"));
        assert!(!vary_covers_origin(b"accept-encoding, origins"));
        assert!(is_cors_field(b"Access-Control-Allow-Origin"));
        assert!(!is_cors_field(b"access-control"));
        assert!(!is_cors_field(b"x-access-control-allow-origin"));
    }
}
