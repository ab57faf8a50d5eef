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

/// The CORS fields of one response on which a policy applies (the route's, else `[cors]`):
/// whatever the request's `Origin`, the origin's (or a mock's) own `access-control-*` fields
/// are dropped (API Gateway ignores an integration's CORS headers when CORS is configured),
/// and the gateway's own grant is added only for an allowed origin.
#[derive(Debug, Clone, Copy)]
pub struct CorsFields<'a> {
    /// The request's `Origin` when the policy allows it, echoed in
    /// `access-control-allow-origin` (or `*`, see [`CorsFields::allow_origin`]); `None`: no
    /// `Origin`, or one the policy refuses — no grant.
    pub origin: Option<&'a [u8]>,
    pub policy: &'a CorsPolicy,
}

impl CorsFields<'_> {
    /// The `access-control-allow-origin` value: `*` whenever the policy allows any origin
    /// without credentials (then the answer is the same for every request, with or without
    /// `Origin`, and no cache needs to key on it), else the allowed request origin (the Fetch
    /// standard §3.2.3: with credentials the value must be the origin, `*` does not match);
    /// `None`: no grant.
    pub fn allow_origin(&self) -> Option<&[u8]> {
        if any_origin(self.policy) {
            Some(b"*")
        } else {
            self.origin
        }
    }

    /// Whether the answer depends on the request's `Origin`, so caches must key on it
    /// (`vary: origin`, the Fetch standard §3.2.5 "CORS protocol and HTTP caches"): every
    /// policy but `*` without credentials, on every response — without an `Origin` or with a
    /// refused one too, or a cache would serve the grantless answer to an allowed origin.
    pub fn varies(&self) -> bool {
        !any_origin(self.policy)
    }

    /// The fields of an actual response, in order: for a grant `access-control-allow-origin`,
    /// `access-control-allow-credentials`, `access-control-expose-headers`; then `vary: origin`
    /// when the answer [varies](Self::varies) unless `vary_done` (the response's own `vary`
    /// already names `origin` or `*`).
    pub fn each(&self, vary_done: bool, mut f: impl FnMut(&[u8], &[u8])) {
        if let Some(o) = self.allow_origin() {
            f(b"access-control-allow-origin", o);
            if self.policy.allow_credentials {
                f(b"access-control-allow-credentials", b"true");
            }
            if let Some(e) = &self.policy.expose_headers {
                f(b"access-control-expose-headers", e.as_bytes());
            }
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
    let served = crate::exchange::served::select_main(config, head);
    let path = crate::exchange::served::path(head, served);
    let policy = match config
        .router
        .lookup_in(served.deployment, method, host, path)
    {
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
    let fields = CorsFields {
        origin: Some(origin),
        policy,
    };
    // every value is the config's, or a request's token / allowed origin (checked above)
    let mut put = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    put(
        "access-control-allow-origin",
        fields.allow_origin().unwrap_or(origin),
    );
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

/// The CORS part of an actual (non-preflight) response: `None` when no policy applies to it
/// (`route`: the matched one, whose `cors` decides; `None`: no route matched, the global
/// policy applies), else the policy with the request's `Origin` when it is allowed (see
/// [`CorsFields`]: with a policy, the producer's own CORS fields go whatever the `Origin`). A
/// preflight-shaped request gets none here: the gateway's answer carries its own, and one it
/// left to routing (no policy for it) is the route's to answer.
pub fn fields<'a>(
    config: &'a Config,
    route: Option<usize>,
    head: &'a RequestHead,
) -> Option<CorsFields<'a>> {
    if config.access.cors_policies.is_empty() || is_preflight(head) {
        return None; // no CORS anywhere: not even a field lookup
    }
    let ix = match route {
        Some(r) => config.access.routes.get(r)?.cors?,
        None => config.access.cors?,
    };
    let policy = config.access.cors_policies.get(ix)?;
    let origin = head.header("origin").filter(|o| allows_origin(policy, o));
    Some(CorsFields { origin, policy })
}

/// The CORS part of a response to a head that could not be parsed (400, 431, 408): the global
/// policy (no route was found), with the origin of a single `Origin` field found by a lenient
/// scan of the bytes `received` (a line starting with the exact name, ASCII case-insensitively,
/// its value up to the line's end, trimmed), echoed only when the policy allows it — which
/// only a well-formed origin can be (see `OriginPattern::matches`). Two `Origin` lines, or
/// none: no grant, only `vary: origin`. `None` without a global policy.
pub fn rejected_head<'a>(config: &'a Config, received: &'a [u8]) -> Option<CorsFields<'a>> {
    let policy = config.access.cors_policies.get(config.access.cors?)?;
    let mut found = None;
    let mut count = 0;
    // the request line first, then field lines up to the empty line (RFC 9112 §2.1)
    for line in received.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(name) = line.get(..7) else { continue };
        if name.eq_ignore_ascii_case(b"origin:") {
            count += 1;
            found = line.get(7..).map(<[u8]>::trim_ascii);
        }
    }
    let origin = found.filter(|o| count == 1 && allows_origin(policy, o));
    Some(CorsFields { origin, policy })
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
            origin: Some(b"https://a.example"),
            policy: &any,
        };
        assert_eq!(f.allow_origin(), Some(&b"*"[..]));
        let mut out = Vec::new();
        f.each(false, |n, v| out.push((n.to_vec(), v.to_vec())));
        assert_eq!(out.len(), 2, "no vary, no credentials: {out:?}");
        let exact = policy(&[OriginPattern::Exact("https://a.example".into())], true);
        let f = CorsFields {
            origin: Some(b"https://a.example"),
            policy: &exact,
        };
        assert_eq!(f.allow_origin(), Some(&b"https://a.example"[..]));
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
        // no grant (no or a refused Origin): only the vary, as the answer depends on it
        let refused = CorsFields {
            origin: None,
            policy: &exact,
        };
        let mut out = Vec::new();
        refused.each(false, |n, v| out.push((n.to_vec(), v.to_vec())));
        assert_eq!(out, [(b"vary".to_vec(), b"origin".to_vec())]);
        // `*` without credentials: the same grant for every request, Origin or not
        let star = CorsFields {
            origin: None,
            policy: &any,
        };
        assert_eq!(star.allow_origin(), Some(&b"*"[..]));
        let mut names = Vec::new();
        star.each(false, |n, _| names.push(n.to_vec()));
        assert_eq!(
            names,
            [
                b"access-control-allow-origin".to_vec(),
                b"access-control-expose-headers".to_vec()
            ]
        );
    }

    #[test]
    fn a_rejected_heads_origin_is_read_leniently_and_only_once() {
        let text = "[cors]\nallow_origins = [\"https://a.example\"]\n[[route]]\nkey = \"GET /x\"\nmock = {}\n";
        let config = crate::config::from_str(text).unwrap_or_else(|e| panic!("{e:?}"));
        let origin = |raw: &'static [u8]| rejected_head(&config, raw).and_then(|f| f.origin);
        assert_eq!(
            origin(b"GET / HTTP/1.1\r\nORIGIN:\t https://a.example \r\nbad line\r\n"),
            Some(&b"https://a.example"[..])
        );
        // bare LF line ends; a head cut short
        assert!(origin(b"GET / HTTP/1.1\nOrigin: https://a.example\nx").is_some());
        assert!(origin(b"GET / HTTP/1.1\r\nOrigin: https://a.exam").is_none());
        // refused, twice, past the empty line (a body), on the request line, a longer name
        assert!(origin(b"GET / HTTP/1.1\r\nOrigin: https://b.example\r\n").is_none());
        assert!(origin(
            b"GET / HTTP/1.1\r\nOrigin: https://a.example\r\norigin: https://a.example\r\n"
        )
        .is_none());
        assert!(origin(b"GET / HTTP/1.1\r\n\r\nOrigin: https://a.example\r\n").is_none());
        assert!(origin(b"Origin: https://a.example\r\n").is_none());
        assert!(origin(b"GET / HTTP/1.1\r\nOrigins: https://a.example\r\n").is_none());
        // the policy still applies (vary) without a grant; no [cors]: nothing
        assert!(rejected_head(&config, b"GET / HTTP/1.1\r\n").is_some());
        let none = crate::config::from_str("[[route]]\nkey = \"GET /x\"\nmock = {}\n")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(rejected_head(&none, b"GET / HTTP/1.1\r\nOrigin: https://a.example\r\n").is_none());
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
