//! The admin listener's bearer token: who may read the operators' views and reload.
//!
//! Owns: the decision for one admin request ([`check`]): with `admin.token_sha256` set, every
//! request (every path and method, the Lambda Invoke relay included) must carry
//! `Authorization: Bearer TOKEN` (RFC 6750 §2.1) whose SHA-256 equals the configured hash; the
//! one exception is `GET /metrics` (and its `HEAD`) with `admin.metrics_public = true`, for
//! scrapers. The hashes are compared in constant time, so the time an answer takes says nothing
//! about how much of a guess was right; only the hash is configured, so the config file (and
//! `GET /config`) never holds the token itself. Leaves out: compiling the settings (see
//! `crate::config::access`, [`AdminAuth`]), reading the current config (the caller reads it for
//! each request, so a reload changes the token for the next request on any connection), and
//! writing the 401 (the caller, with [`CHALLENGE`]).

use crate::config::AdminAuth;
use crate::http::{Method, RequestHead};

/// The challenge of a 401 (RFC 9110 §11.6.1, RFC 6750 §3): the scheme and a realm naming what
/// the token is for.
pub const CHALLENGE: &str = "www-authenticate: Bearer realm=\"tollgate admin\"\r\n";

/// What [`check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// No token configured, or a public `GET /metrics`.
    Open,
    /// The right token was presented.
    Granted,
    /// A token is configured and the request has none, a wrong one, or a malformed
    /// `Authorization` field: 401.
    Refused,
}

impl Gate {
    pub fn admits(self) -> bool {
        !matches!(self, Gate::Refused)
    }
}

/// The 401's content type and body for `head`. The dashboard page is static (its data is behind
/// the token): a browser that opens it without the token gets the 401 with the page, which
/// then asks for the token and sends it with every request for data. Everything else gets
/// the JSON message.
pub fn refused(head: &RequestHead) -> (&'static str, &'static [u8]) {
    if head.path_bytes() == b"/" && head.method_kind == Method::Get {
        ("text/html; charset=utf-8", super::DASHBOARD.as_bytes())
    } else {
        (
            "application/json",
            crate::error::json_message(401).as_bytes(),
        )
    }
}

/// Whether `head` may be served under `auth`.
pub fn check(auth: &AdminAuth, head: &RequestHead) -> Gate {
    let Some(want) = &auth.token_sha256 else {
        return Gate::Open;
    };
    // HEAD is GET without the body (RFC 9110 §9.3.2): it reveals no more
    let get = matches!(head.method_kind, Method::Get | Method::Head);
    if auth.metrics_public && get && head.path_bytes() == b"/metrics" {
        return Gate::Open;
    }
    match bearer(head) {
        Some(token) if token_matches(want, token) => Gate::Granted,
        _ => Gate::Refused,
    }
}

/// The token of the request's one `Authorization: Bearer TOKEN` field. Several
/// `Authorization` fields are refused (the field is a singleton: RFC 9110 §11.6.2 gives it one
/// credentials value, and which one a proxy would pick is anyone's guess).
fn bearer(head: &RequestHead) -> Option<&[u8]> {
    let mut found = head
        .headers
        .iter()
        .filter(|h| head.slice(h.name).eq_ignore_ascii_case(b"authorization"));
    let field = found.next()?;
    if found.next().is_some() {
        return None;
    }
    parse_bearer(head.slice(field.value))
}

/// `Bearer 1*SP b64token` (RFC 6750 §2.1); the scheme is case-insensitive (RFC 9110 §11.1).
/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub fn parse_bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let rest = value.get(6..)?;
    let token = rest.strip_prefix(b" ")?;
    let token = trim_leading_spaces(token);
    let body_len = token
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)))
        .unwrap_or(token.len());
    if body_len == 0 || !token.get(body_len..)?.iter().all(|&b| b == b'=') {
        return None;
    }
    Some(token)
}

fn trim_leading_spaces(mut v: &[u8]) -> &[u8] {
    while let Some(rest) = v.strip_prefix(b" ") {
        v = rest;
    }
    v
}

/// SHA-256 of `token` equals `want`, compared in constant time.
fn token_matches(want: &[u8; 32], token: &[u8]) -> bool {
    let got = ring::digest::digest(&ring::digest::SHA256, token);
    // both sides are 32 bytes: the comparison's time depends on neither's contents
    let diff = got
        .as_ref()
        .iter()
        .zip(want.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    got.as_ref().len() == want.len() && std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Limits};
    use bytes::BytesMut;

    fn head(raw: &str) -> RequestHead {
        let mut b = BytesMut::from(raw.as_bytes());
        parse_request(&mut b, &Limits::default()).unwrap().unwrap()
    }

    fn hash(token: &str) -> [u8; 32] {
        let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    fn auth(token: Option<&str>, metrics_public: bool) -> AdminAuth {
        AdminAuth {
            token_sha256: token.map(hash),
            metrics_public,
        }
    }

    fn req(method: &str, path: &str, fields: &str) -> RequestHead {
        head(&format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{fields}\r\n"
        ))
    }

    #[test]
    fn without_a_token_everything_is_open() {
        let a = auth(None, false);
        for p in ["/", "/metrics", "/reload", "/config"] {
            assert_eq!(check(&a, &req("GET", p, "")), Gate::Open);
        }
    }

    #[test]
    fn the_token_is_required_on_every_path_and_method() {
        let a = auth(Some("s3cret-token"), false);
        for (m, p) in [
            ("GET", "/"),
            ("GET", "/metrics"),
            ("HEAD", "/metrics"),
            ("GET", "/stats"),
            ("GET", "/history"),
            ("GET", "/status"),
            ("GET", "/config"),
            ("POST", "/reload"),
            ("GET", "/nope"),
        ] {
            assert_eq!(check(&a, &req(m, p, "")), Gate::Refused, "{m} {p}");
            let wrong = "Authorization: Bearer s3cret-tokeN\r\n";
            assert_eq!(check(&a, &req(m, p, wrong)), Gate::Refused, "{m} {p}");
            let right = "Authorization: Bearer s3cret-token\r\n";
            assert_eq!(check(&a, &req(m, p, right)), Gate::Granted, "{m} {p}");
        }
    }

    #[test]
    fn metrics_public_opens_only_get_metrics() {
        let a = auth(Some("tok"), true);
        assert_eq!(check(&a, &req("GET", "/metrics", "")), Gate::Open);
        assert_eq!(check(&a, &req("HEAD", "/metrics", "")), Gate::Open);
        assert_eq!(check(&a, &req("POST", "/metrics", "")), Gate::Refused);
        assert_eq!(check(&a, &req("GET", "/metrics/", "")), Gate::Refused);
        assert_eq!(check(&a, &req("GET", "/stats", "")), Gate::Refused);
        // metrics_public without a token changes nothing: all open
        assert_eq!(
            check(&auth(None, true), &req("GET", "/stats", "")),
            Gate::Open
        );
    }

    #[test]
    fn malformed_or_repeated_authorization_is_refused() {
        let a = auth(Some("tok"), false);
        for f in [
            "Authorization: Basic dG9rOg==\r\n",
            "Authorization: Bearertok\r\n",
            "Authorization: Bearer\r\n",
            "Authorization: Bearer tok extra\r\n",
            "Authorization: Bearer tok=x\r\n",
            "Authorization: tok\r\n",
            "Authorization: Bearer tok\r\nAuthorization: Bearer tok\r\n",
        ] {
            assert_eq!(check(&a, &req("GET", "/stats", f)), Gate::Refused, "{f}");
        }
        for f in [
            "authorization: bearer tok\r\n",
            "Authorization: BEARER   tok\r\n",
        ] {
            assert_eq!(check(&a, &req("GET", "/stats", f)), Gate::Granted, "{f}");
        }
        // trailing `=` are part of a b64token
        let a = auth(Some("dG9r=="), false);
        let f = "Authorization: Bearer dG9r==\r\n";
        assert_eq!(check(&a, &req("GET", "/stats", f)), Gate::Granted);
    }
}
