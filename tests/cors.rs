//! CORS on the wire, both drivers: preflights answered 204 before routing and before the API
//! key check (any path, the requested method's route policy or the global one), refused
//! origins, methods and headers answered without the CORS fields, a route's own policy and
//! `cors = false`, the fields on actual responses (200, 403, 404, 429, 502), credentials and
//! exposed headers, an origin's own `access-control-*` fields replaced, and HTTP/2.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::{SocketAddr, TcpListener};

use common::h2client::{H2, H2C};
use common::*;

const APP: &str = "https://app.example.com";

fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// The origin: `200 "{method} {target}"`; for `?own=1` with its own CORS fields and `vary`.
fn origin() -> Origin {
    Origin::start(|r| {
        let body = format!("{} {}", r.method, r.target);
        let own = if r.target.ends_with("own=1") {
            "Access-Control-Allow-Origin: *\r\naccess-control-max-age: 5\r\nVary: Accept-Encoding, Origin\r\n".to_string()
        } else if r.target.ends_with("reflect=1") {
            // a backend that grants whatever Origin it is sent, with credentials
            match r.header("origin") {
                Some(o) => format!("Access-Control-Allow-Origin: {o}\r\nAccess-Control-Allow-Credentials: true\r\n"),
                None => String::new(),
            }
        } else {
            String::new()
        };
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n{own}content-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
}

fn config(o: &Origin) -> String {
    upstream_toml("origin", &[o.addr], "")
        + &upstream_toml("dead", &[dead_addr()], "")
        + r#"
[cors]
allow_origins = ["https://app.example.com", "https://*.example.org"]
allow_methods = ["GET", "POST"]
allow_headers = ["Authorization", "content-type", "x-api-key"]
expose_headers = ["x-request-id", "x-total"]
max_age = 600
allow_credentials = true

[[route]]
key = "GET /pets"
upstream = "origin"

[[route]]
key = "POST /pets"
upstream = "origin"

[[route]]
key = "GET /keyed"
mock = { body = "secret" }
api_key_required = true

[[route]]
key = "GET /limited"
mock = { body = "once" }
throttle = { rate = 1, burst = 1 }

[[route]]
key = "GET /dead"
upstream = "dead"

[[route]]
key = "GET /public"
mock = { body = "public" }
cors = { allow_origins = ["*"], allow_methods = ["GET"], allow_headers = ["*"] }

[[route]]
key = "GET /private"
mock = { body = "private" }
cors = false

[[route]]
key = "ANY /scheme"
mock = { body = "scheme" }
cors = { allow_origins = ["https://*"], allow_methods = ["*"], allow_headers = ["*"], allow_credentials = true }

[[route]]
key = "GET /own-cors"
upstream = "origin"
cors = false

[[route]]
key = "OPTIONS /private"
mock = { status = 200, body = "own options" }
"#
}

fn request(addr: SocketAddr, method: &str, path: &str, fields: &[(&str, &str)]) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: api.example.com\r\n");
    for (n, v) in fields {
        raw += &format!("{n}: {v}\r\n");
    }
    raw += "\r\n";
    roundtrip(addr, raw.as_bytes())
}

fn preflight(
    addr: SocketAddr,
    path: &str,
    origin: &str,
    method: &str,
    headers: Option<&str>,
) -> Response {
    let mut f = vec![
        ("Origin", origin),
        ("Access-Control-Request-Method", method),
    ];
    if let Some(h) = headers {
        f.push(("Access-Control-Request-Headers", h));
    }
    request(addr, "OPTIONS", path, &f)
}

fn count(r: &Response, name: &str) -> usize {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .count()
}

/// The response's `access-control-*` fields, lower-cased names, in order.
fn cors_fields(r: &Response) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("access-control-"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect()
}

/// The fields an allowed `APP` origin's actual response carries.
fn assert_actual_fields(r: &Response, what: &str) {
    assert_eq!(
        cors_fields(r),
        [
            ("access-control-allow-origin".to_string(), APP.to_string()),
            ("access-control-allow-credentials".into(), "true".into()),
            (
                "access-control-expose-headers".into(),
                "x-request-id, x-total".into()
            ),
        ],
        "{what}: {}",
        r.head
    );
    assert_eq!(r.header("vary"), Some("origin"), "{what}: {}", r.head);
}

both_drivers! {
    fn preflight_is_answered_before_routing_and_before_the_api_key(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        // a path with no OPTIONS route: the requested method's route has the global policy
        let r = preflight(g.addr, "/pets", APP, "POST", Some("Content-Type, Authorization"));
        assert_eq!(r.status, 204, "{}", r.head);
        assert_eq!(
            cors_fields(&r),
            [
                ("access-control-allow-origin".to_string(), APP.to_string()),
                ("access-control-allow-credentials".into(), "true".into()),
                ("access-control-allow-methods".into(), "GET, POST".into()),
                ("access-control-allow-headers".into(), "content-type, authorization".into()),
                ("access-control-max-age".into(), "600".into()),
            ],
            "{}",
            r.head
        );
        assert_eq!(r.header("vary"), Some("origin"));
        assert_eq!(r.header("content-length"), None, "RFC 9110 §8.6: none on a 204");
        assert!(r.body.is_empty());
        // the response filter's fields are there, the CORS ones not twice
        assert!(r.header("date").is_some() && r.header("x-request-id").is_some());
        assert_eq!(count(&r, "access-control-allow-origin"), 1);
        // an api_key_required route: the preflight needs no key (the key check would be 403)
        let r = preflight(g.addr, "/keyed", APP, "GET", Some("x-api-key"));
        assert_eq!(r.status, 204, "{}", r.head);
        assert_eq!(r.header("access-control-allow-origin"), Some(APP));
        assert_eq!(r.header("access-control-allow-headers"), Some("x-api-key"));
        assert_eq!(request(g.addr, "GET", "/keyed", &[("Origin", APP)]).status, 403);
        // no route for the path at all: the global policy answers
        let r = preflight(g.addr, "/nowhere/at/all", "https://x.example.org", "GET", None);
        assert_eq!(r.status, 204, "{}", r.head);
        assert_eq!(r.header("access-control-allow-origin"), Some("https://x.example.org"));
        assert_eq!(r.header("access-control-allow-headers"), None, "none requested");
        // nothing reached the origin
        assert!(o.requests().is_empty());
        // an OPTIONS without Access-Control-Request-Method is no preflight: routed (404)
        let r = request(g.addr, "OPTIONS", "/pets", &[("Origin", APP)]);
        assert_eq!(r.status, 404, "{}", r.head);
    }

    fn refused_preflights_get_204_without_cors_fields(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        for (origin, method, headers, what) in [
            ("https://evil.example", "GET", None, "origin"),
            ("https://app.example.com.evil.example", "GET", None, "suffix origin"),
            ("http://app.example.com", "GET", None, "scheme"),
            ("https://example.org", "GET", None, "bare wildcard domain"),
            (APP, "DELETE", None, "method"),
            (APP, "post", None, "method case"),
            (APP, "POST", Some("content-type, x-secret"), "header"),
        ] {
            let r = preflight(g.addr, "/pets", origin, method, headers);
            assert_eq!(r.status, 204, "{what}: {}", r.head);
            assert!(cors_fields(&r).is_empty(), "{what}: {}", r.head);
            assert_eq!(r.header("vary"), Some("origin"), "{what}");
        }
        // the same requests allowed, to show the refusals are the check's
        let r = preflight(g.addr, "/pets", "https://a.b.example.org", "POST", Some("AUTHORIZATION"));
        assert_eq!(r.header("access-control-allow-origin"), Some("https://a.b.example.org"));
        assert_eq!(r.header("access-control-allow-headers"), Some("authorization"));
        assert!(o.requests().is_empty());
    }

    fn a_route_policy_overrides_and_cors_false_disables(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        // the route's own policy: any origin without credentials → `*`, no vary
        let r = preflight(g.addr, "/public", "https://other.example", "GET", Some("x-anything"));
        assert_eq!(r.status, 204);
        assert_eq!(
            cors_fields(&r),
            [
                ("access-control-allow-origin".to_string(), "*".to_string()),
                ("access-control-allow-methods".into(), "GET".into()),
                ("access-control-allow-headers".into(), "x-anything".into()),
            ],
            "{}",
            r.head
        );
        assert_eq!(r.header("vary"), None);
        // `*` without credentials: the same answer for any request, with or without Origin
        for with in [&[("Origin", "https://other.example")][..], &[]] {
            let r = request(g.addr, "GET", "/public", with);
            assert_eq!(r.text(), "public");
            assert_eq!(cors_fields(&r), [("access-control-allow-origin".to_string(), "*".to_string())]);
            assert_eq!(r.header("vary"), None);
        }
        // `*` allows any header name, but only names: anything else is refused, never echoed
        let r = preflight(g.addr, "/public", "https://other.example", "GET", Some("x-ok, x{bad}"));
        assert_eq!(r.status, 204);
        assert!(cors_fields(&r).is_empty(), "{}", r.head);
        // its policy allows GET only
        let r = preflight(g.addr, "/public", "https://other.example", "POST", None);
        assert!(cors_fields(&r).is_empty(), "{}", r.head);
        // cors = false: the preflight is routed to the route's own OPTIONS answer
        let r = preflight(g.addr, "/private", APP, "GET", None);
        assert_eq!((r.status, r.text().as_str()), (200, "own options"), "{}", r.head);
        assert!(cors_fields(&r).is_empty(), "{}", r.head);
        let r = request(g.addr, "GET", "/private", &[("Origin", APP)]);
        assert_eq!(r.text(), "private");
        assert!(cors_fields(&r).is_empty(), "{}", r.head);
        assert_eq!(r.header("vary"), None);
    }

    fn actual_responses_carry_the_fields_errors_included(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let with = [("Origin", APP)];
        let r = request(g.addr, "GET", "/pets", &with);
        assert_eq!((r.status, r.text().as_str()), (200, "GET /pets"));
        assert_actual_fields(&r, "200");
        // the origin gets the request as sent (Origin passes through)
        let seen = o.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].header("origin"), Some(APP));
        let r = request(g.addr, "GET", "/nowhere", &with);
        assert_eq!(r.status, 404);
        assert_actual_fields(&r, "404");
        let r = request(g.addr, "GET", "/keyed", &with);
        assert_eq!(r.status, 403);
        assert_actual_fields(&r, "403");
        let r = request(g.addr, "GET", "/dead", &with);
        assert_eq!(r.status, 502);
        assert_actual_fields(&r, "502");
        let mut limited = Vec::new();
        for _ in 0..3 {
            limited.push(request(g.addr, "GET", "/limited", &with));
        }
        let r = limited.iter().find(|r| r.status == 429).expect("a 429 past the burst");
        assert_actual_fields(r, "429");
        assert!(r.header("retry-after").is_some());
        // no Origin, or an origin not allowed: no grant, but `vary: origin` (the Fetch
        // standard §3.2.5: the answer depends on Origin, a cache must not serve it to another)
        let r = request(g.addr, "GET", "/pets", &[]);
        assert!(cors_fields(&r).is_empty(), "{}", r.head);
        assert_eq!(r.header("vary"), Some("origin"), "{}", r.head);
        for path in ["/pets", "/nowhere", "/keyed"] {
            let r = request(g.addr, "GET", path, &[("Origin", "https://evil.example")]);
            assert!(cors_fields(&r).is_empty(), "{path}: {}", r.head);
            assert_eq!(r.header("vary"), Some("origin"), "{path}: {}", r.head);
            assert_eq!(count(&r, "vary"), 1, "{path}: {}", r.head);
        }
    }

    fn the_origins_own_cors_fields_are_replaced(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let r = request(g.addr, "GET", "/pets?own=1", &[("Origin", APP)]);
        assert_eq!(r.status, 200);
        // the origin's `*` and max-age are gone; its vary already names origin: not repeated
        assert_actual_fields_but_vary(&r);
        assert_eq!(count(&r, "vary"), 1, "{}", r.head);
        assert_eq!(r.header("vary"), Some("Accept-Encoding, Origin"));
        // without an Origin the origin's fields are dropped too (a policy applies: API
        // Gateway ignores an integration's CORS headers), its vary kept, not doubled
        let r = request(g.addr, "GET", "/pets?own=1", &[]);
        assert!(cors_fields(&r).is_empty(), "{}", r.head);
        assert_eq!(count(&r, "vary"), 1, "{}", r.head);
        // a backend reflecting any Origin with credentials: a refused origin gets no grant
        let evil = [("Origin", "https://evil.example")];
        let r = request(g.addr, "GET", "/pets?reflect=1", &evil);
        assert_eq!(r.status, 200);
        assert!(cors_fields(&r).is_empty(), "{}", r.head);
        assert_eq!(r.header("vary"), Some("origin"), "{}", r.head);
        // (the origin did send them: the gateway took them out)
        let seen = o.requests();
        assert_eq!(seen.last().and_then(|q| q.header("origin")), Some("https://evil.example"));
        // the allowed origin gets the gateway's grant, once
        let r = request(g.addr, "GET", "/pets?reflect=1", &[("Origin", APP)]);
        assert_actual_fields(&r, "reflected");
        // `cors = false`: no policy, the origin's fields are its own
        let r = request(g.addr, "GET", "/own-cors?reflect=1", &evil);
        assert_eq!(r.header("access-control-allow-origin"), Some("https://evil.example"), "{}", r.head);
    }

    fn http2_preflight_and_actual_responses(d) {
        let o = origin();
        let g = Gateway::start_with(d, 1, H2C, &config(&o));
        let mut c = H2::connect(g.addr);
        let req = c.req(
            "OPTIONS",
            "/pets",
            &[
                ("origin", APP),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization"),
            ],
        );
        let r = c.send(req, None).unwrap();
        assert_eq!(r.status, 204);
        assert_eq!(r.header("access-control-allow-origin"), Some(APP));
        assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST"));
        assert_eq!(r.header("access-control-allow-headers"), Some("authorization"));
        assert_eq!(r.header("access-control-max-age"), Some("600"));
        assert_eq!(r.headers.get_all("access-control-allow-origin").iter().count(), 1);
        for (path, status) in [("/pets?own=1", 200), ("/nowhere", 404), ("/keyed", 403)] {
            let req = c.req("GET", path, &[("origin", APP)]);
            let r = c.send(req, None).unwrap();
            assert_eq!(r.status, status, "{path}");
            assert_eq!(r.header("access-control-allow-origin"), Some(APP), "{path}");
            assert_eq!(r.header("access-control-allow-credentials"), Some("true"), "{path}");
            assert_eq!(
                r.header("access-control-expose-headers"),
                Some("x-request-id, x-total"),
                "{path}"
            );
            assert_eq!(r.headers.get_all("access-control-allow-origin").iter().count(), 1, "{path}");
            assert_eq!(r.headers.get("access-control-max-age"), None, "{path}");
            assert_eq!(r.headers.get_all("vary").iter().count(), 1, "{path}");
        }
    }

    fn rejected_heads_carry_the_global_policys_fields(d) {
        let o = origin();
        let text = config(&o).replace("[cors]", "[server.limits]\nmax_head_bytes = 2048\nmax_uri_bytes = 256\n\n[cors]");
        let g = Gateway::start(d, 1, &text);
        // 400: a field line without a colon; the Origin before it is read leniently
        let bad = format!("GET /pets HTTP/1.1\r\nHost: a\r\norigin:  {APP} \r\nno colon here\r\n\r\n");
        let r = roundtrip(g.addr, bad.as_bytes());
        assert_eq!(r.status, 400, "{}", r.head);
        assert_actual_fields(&r, "400");
        // 431: the head is too large
        let big = format!("GET /pets HTTP/1.1\r\nHost: a\r\nOrigin: {APP}\r\nx-big: {}\r\n\r\n", "b".repeat(4096));
        let r = roundtrip(g.addr, big.as_bytes());
        assert_eq!(r.status, 431, "{}", r.head);
        assert_actual_fields(&r, "431");
        // an origin not allowed, two Origin lines, or a near-miss name: no grant, only vary
        for (what, fields) in [
            ("refused", "Origin: https://evil.example\r\n".to_string()),
            ("twice", format!("Origin: {APP}\r\nOrigin: https://evil.example\r\n")),
            ("name", format!("x-origin: {APP}\r\nOrigins: {APP}\r\n")),
        ] {
            let raw = format!("GET /pets HTTP/1.1\r\nHost: a\r\n{fields}no colon\r\n\r\n");
            let r = roundtrip(g.addr, raw.as_bytes());
            assert_eq!(r.status, 400, "{what}: {}", r.head);
            assert!(cors_fields(&r).is_empty(), "{what}: {}", r.head);
            assert_eq!(r.header("vary"), Some("origin"), "{what}: {}", r.head);
        }
        assert!(o.requests().is_empty());
    }

    fn authorizer_refusals_carry_the_fields(d) {
        std::env::set_var("TOLLGATE_CORS_TEST_IAM_SECRET", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let dead = dead_addr();
        let text = format!(
            r#"
[cors]
allow_origins = ["{APP}"]
allow_credentials = true

[[authorizer]]
name = "users"
type = "jwt"
issuer = "https://idp.example"
audience = ["api"]
jwks_uri = "http://{dead}/jwks.json"

[[authorizer]]
name = "iam"
type = "aws_iam"
region = "eu-west-1"

[[authorizer.credential]]
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret_env = "TOLLGATE_CORS_TEST_IAM_SECRET"
principal = "arn:aws:iam::123456789012:user/alice"
allow = ["*"]

[[route]]
key = "GET /jwt"
mock = {{ body = "jwt" }}
authorizer = "users"

[[route]]
key = "GET /iam"
mock = {{ body = "iam" }}
authorizer = "iam"
"#
        );
        let g = Gateway::start(d, 1, &text);
        let with = [("Origin", APP)];
        // the JWT authorizer's 401 for a missing token
        let r = request(g.addr, "GET", "/jwt", &with);
        assert_eq!(r.status, 401, "{}", r.head);
        assert_eq!(r.text(), r#"{"message":"Unauthorized"}"#);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(cors_fields(&r)[..2], [
            ("access-control-allow-origin".to_string(), APP.to_string()),
            ("access-control-allow-credentials".into(), "true".into()),
        ], "{}", r.head);
        assert_eq!(r.header("vary"), Some("origin"));
        // the IAM 403 with AWS's words: a fixed body...
        let r = request(g.addr, "GET", "/iam", &with);
        assert_eq!(r.status, 403, "{}", r.head);
        assert_eq!(r.text(), r#"{"message":"Missing Authentication Token"}"#);
        assert_eq!(r.header("access-control-allow-origin"), Some(APP), "{}", r.head);
        assert_eq!(r.header("vary"), Some("origin"));
        // ...and one naming the request (a held JSON body built while serving)
        let date = tollgate_amz_date();
        let day = &date[..8];
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/{day}/us-east-1/execute-api/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={}",
            "0".repeat(64)
        );
        let r = request(g.addr, "GET", "/iam", &[("Origin", APP), ("x-amz-date", &date), ("Authorization", &auth)]);
        assert_eq!(r.status, 403, "{}", r.head);
        assert_eq!(
            r.text(),
            r#"{"message":"Credential should be scoped to a valid region, not 'us-east-1'. "}"#
        );
        assert_eq!(r.header("access-control-allow-origin"), Some(APP), "{}", r.head);
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(r.header("vary"), Some("origin"));
        // a refused origin: no grant on the refusals either
        let r = request(g.addr, "GET", "/jwt", &[("Origin", "https://evil.example")]);
        assert_eq!(r.status, 401);
        assert!(cors_fields(&r).is_empty(), "{}", r.head);
    }

    fn scheme_wildcards_and_star_lists_with_credentials_echo_the_request(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let who = "https://any.thing.example:8443";
        let r = preflight(g.addr, "/scheme", who, "PATCH", Some("X-Custom, Authorization"));
        assert_eq!(r.status, 204, "{}", r.head);
        // never a literal `*` with credentials: the origin, method and headers echoed
        assert_eq!(
            cors_fields(&r),
            [
                ("access-control-allow-origin".to_string(), who.to_string()),
                ("access-control-allow-credentials".into(), "true".into()),
                ("access-control-allow-methods".into(), "PATCH".into()),
                ("access-control-allow-headers".into(), "x-custom, authorization".into()),
            ],
            "{}",
            r.head
        );
        assert_eq!(r.header("vary"), Some("origin"));
        let r = request(g.addr, "DELETE", "/scheme", &[("Origin", who)]);
        assert_eq!(r.text(), "scheme");
        assert_eq!(r.header("access-control-allow-origin"), Some(who), "{}", r.head);
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        // another scheme is not allowed by `https://*`
        let r = preflight(g.addr, "/scheme", "http://any.thing.example", "GET", None);
        assert!(cors_fields(&r).is_empty(), "{}", r.head);
        let r = request(g.addr, "GET", "/scheme", &[("Origin", "http://any.thing.example")]);
        assert!(cors_fields(&r).is_empty(), "{}", r.head);
        assert_eq!(r.header("vary"), Some("origin"));
    }
}

/// Now as SigV4's `x-amz-date` (`YYYYMMDDTHHMMSSZ`, UTC), from `date(1)`.
fn tollgate_amz_date() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y%m%dT%H%M%SZ"])
        .output()
        .expect("date(1) runs");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn assert_actual_fields_but_vary(r: &Response) {
    assert_eq!(
        cors_fields(r),
        [
            ("access-control-allow-origin".to_string(), APP.to_string()),
            ("access-control-allow-credentials".into(), "true".into()),
            (
                "access-control-expose-headers".into(),
                "x-request-id, x-total".into()
            ),
        ],
        "{}",
        r.head
    );
}

#[test]
fn star_with_credentials_is_a_config_error_naming_the_key_and_line() {
    let text = "[cors]\nallow_origins = [\"*\"]\nallow_credentials = true\n[[route]]\nkey = \"GET /x\"\nmock = {}\n";
    let Err(e) = tollgate::config::from_str(text) else {
        panic!("accepted: {text}")
    };
    let e = e.render("gw.toml");
    assert!(
        e.contains("gw.toml:2:18: cors.allow_origins[0]:") && e.contains("allow_credentials"),
        "{e}"
    );
}
