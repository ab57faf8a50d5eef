//! Gateway responses on the wire, both drivers: `[[gateway_response]]` for a type (THROTTLED
//! with its status changed, INVALID_API_KEY, RESOURCE_NOT_FOUND as XML, INTEGRATION_TIMEOUT),
//! the `DEFAULT_4XX` / `DEFAULT_5XX` fallbacks (an IP refusal, an origin that cannot be
//! reached), `$context.requestId` equal to the `x-request-id` sent, `$context.error.*`, request
//! values escaped in JSON bodies, HEAD and keep-alive after a customised answer, CORS fields
//! still added, HTTP/2; and config errors naming the key and line.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::h2client::{H2, H2C};
use common::*;

const APP: &str = "https://app.example.com";

fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// An origin that answers after the gateway gave up on it.
fn slow_origin() -> Origin {
    Origin::start(|_| Reply::After(Duration::from_millis(1500), Box::new(Reply::ok("late"))))
}

const ROUTES: &str = r#"
[cors]
allow_origins = ["https://app.example.com"]
allow_methods = ["GET"]

[[route]]
key = "GET /limited"
mock = { body = "once" }
throttle = { rate = 1, burst = 1 }

[[route]]
key = "GET /keyed"
mock = { body = "secret" }
api_key_required = true

[[route]]
key = "GET /denied"
mock = { body = "never" }
deny_ips = ["127.0.0.0/8"]

[[route]]
key = "GET /dead"
upstream = "dead"
cors = false

[[route]]
key = "GET /slow"
upstream = "slow"

[[route]]
key = "GET /ok"
mock = { body = "ok" }

[[gateway_response]]
type = "THROTTLED"
status = 503
headers = { "x-gateway-error" = "$context.error.responseType", "cache-control" = "'no-store'" }
body = '{"error":$context.error.messageString,"requestId":"$context.requestId","user":"$request.header.x-user"}'

[[gateway_response]]
type = "INVALID_API_KEY"
headers = { "x-api-hint" = "'send x-api-key'" }
body = '{"message":"an API key is required","type":"$context.error.responseType"}'

[[gateway_response]]
type = "RESOURCE_NOT_FOUND"
headers = { "x-user" = "method.request.header.x-user" }
body = "<error>$context.error.message: ${request.path}</error>"
content_type = "application/xml"

[[gateway_response]]
type = "INTEGRATION_TIMEOUT"
body = '{"timeout":true,"requestId":"$context.requestId"}'

[[gateway_response]]
type = "DEFAULT_4XX"
body = '{"fallback":"4xx","type":"$context.error.responseType","message":$context.error.messageString}'

[[gateway_response]]
type = "DEFAULT_5XX"
headers = { "Access-Control-Allow-Origin" = "'*'" }
body = '{"fallback":"5xx","type":"$context.error.responseType","message":$context.error.messageString}'
"#;

fn config(slow: &Origin) -> String {
    upstream_toml("dead", &[dead_addr()], "")
        + &upstream_toml("slow", &[slow.addr], "response_timeout_ms = 300")
        + ROUTES
}

fn request(addr: SocketAddr, method: &str, path: &str, fields: &[(&str, &str)]) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: api.example.com\r\n");
    for (n, v) in fields {
        raw += &format!("{n}: {v}\r\n");
    }
    raw += "\r\n";
    roundtrip(addr, raw.as_bytes())
}

fn count(r: &Response, name: &str) -> usize {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .count()
}

both_drivers! {
    fn throttled_gets_its_status_fields_and_body_with_the_request_id(d) {
        let slow = slow_origin();
        let g = Gateway::start(d, 1, &config(&slow));
        let mut refused = None;
        for i in 0..3 {
            let id = format!("req-{i}-abc");
            let r = request(g.addr, "GET", "/limited", &[("x-request-id", &id), ("x-user", "a\"b")]);
            if r.status != 200 {
                refused = Some((id, r));
                break;
            }
        }
        let (id, r) = refused.expect("a refusal past the burst");
        assert_eq!(r.status, 503, "{}", r.head);
        assert_eq!(
            r.text(),
            format!(r#"{{"error":"Too Many Requests","requestId":"{id}","user":"a\"b"}}"#)
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        assert_eq!(r.header("x-gateway-error"), Some("THROTTLED"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("x-request-id"), Some(id.as_str()), "{}", r.head);
        // the rate-limit fields of the refusal are still there, once
        assert!(r.header("retry-after").is_some(), "{}", r.head);
        assert_eq!(count(&r, "retry-after"), 1);
        assert!(r.header("ratelimit-policy").is_some(), "{}", r.head);
        assert!(r.header("date").is_some());
    }

    fn a_missing_api_key_and_an_unknown_path(d) {
        let slow = slow_origin();
        let g = Gateway::start(d, 1, &config(&slow));
        let r = request(g.addr, "GET", "/keyed", &[]);
        assert_eq!(r.status, 403, "the type's status when none is configured");
        assert_eq!(r.text(), r#"{"message":"an API key is required","type":"INVALID_API_KEY"}"#);
        assert_eq!(r.header("x-api-hint"), Some("send x-api-key"));
        let r = request(g.addr, "GET", "/no/such/thing", &[("x-user", "carol")]);
        assert_eq!(r.status, 404);
        assert_eq!(r.text(), "<error>Not Found: /no/such/thing</error>");
        assert_eq!(r.header("content-type"), Some("application/xml"));
        assert_eq!(r.header("x-user"), Some("carol"));
        // a header whose value renders empty is left out
        let r = request(g.addr, "GET", "/nowhere", &[]);
        assert_eq!(r.status, 404);
        assert_eq!(r.header("x-user"), None, "{}", r.head);
    }

    fn fallbacks_answer_types_without_their_own(d) {
        let slow = slow_origin();
        let g = Gateway::start(d, 1, &config(&slow));
        // ACCESS_DENIED has none: DEFAULT_4XX, with the failure's status and words
        let r = request(g.addr, "GET", "/denied", &[]);
        assert_eq!(r.status, 403);
        assert_eq!(
            r.text(),
            r#"{"fallback":"4xx","type":"ACCESS_DENIED","message":"Forbidden"}"#
        );
        // INTEGRATION_FAILURE has none: DEFAULT_5XX (the AWS-style CORS header of its own on a
        // route without a CORS policy)
        let r = request(g.addr, "GET", "/dead", &[("Origin", APP)]);
        assert_eq!(r.status, 502);
        assert_eq!(
            r.text(),
            r#"{"fallback":"5xx","type":"INTEGRATION_FAILURE","message":"Bad Gateway"}"#
        );
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{}", r.head);
        // INTEGRATION_TIMEOUT has its own
        let r = request(g.addr, "GET", "/slow", &[("x-request-id", "slow-1")]);
        assert_eq!(r.status, 504);
        assert_eq!(r.text(), r#"{"timeout":true,"requestId":"slow-1"}"#);
        assert_eq!(slow.requests().len(), 1, "the origin was asked");
    }

    fn cors_fields_are_added_to_customised_errors(d) {
        let slow = slow_origin();
        let g = Gateway::start(d, 1, &config(&slow));
        for path in ["/nowhere", "/keyed", "/denied"] {
            let r = request(g.addr, "GET", path, &[("Origin", APP)]);
            assert!(r.status >= 400, "{path}");
            assert_eq!(r.header("access-control-allow-origin"), Some(APP), "{path}: {}", r.head);
            assert_eq!(count(&r, "access-control-allow-origin"), 1, "{path}");
            assert_eq!(r.header("vary"), Some("origin"), "{path}");
        }
    }

    fn head_and_keep_alive_after_a_customised_answer(d) {
        let slow = slow_origin();
        let g = Gateway::start(d, 1, &config(&slow));
        let mut c = Client::new(g.addr);
        c.send(b"HEAD /nowhere HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = c.read(true).expect("a response");
        assert_eq!(r.status, 404);
        let whole = "<error>Not Found: /nowhere</error>";
        assert_eq!(r.header("content-length"), Some(whole.len().to_string().as_str()));
        c.send(b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = c.read(false).expect("the connection goes on");
        assert_eq!((r.status, r.text().as_str()), (404, whole));
        c.send(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = c.read(false).expect("the connection goes on");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    }

    fn customised_errors_over_http2(d) {
        let slow = slow_origin();
        let g = Gateway::start_with(d, 1, H2C, &config(&slow));
        let mut c = H2::connect(g.addr);
        let req = c.req("GET", "/nowhere/h2", &[("x-user", "dave"), ("origin", APP)]);
        let r = c.send(req, None).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"<error>Not Found: /nowhere/h2</error>");
        let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok());
        assert_eq!(h("content-type"), Some("application/xml"));
        assert_eq!(h("x-user"), Some("dave"));
        assert_eq!(h("access-control-allow-origin"), Some(APP));
        assert_eq!(h("content-length"), Some("37"));
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let req = c.req("GET", "/limited", &[("x-request-id", "h2-id")]);
            let r = c.send(req, None).unwrap();
            statuses.push(r.status);
            if r.status == 503 {
                assert_eq!(
                    r.body,
                    br#"{"error":"Too Many Requests","requestId":"h2-id","user":""}"#
                );
                assert!(r.headers.get("retry-after").is_some());
                assert_eq!(r.headers.get("x-gateway-error").unwrap(), "THROTTLED");
            }
        }
        assert!(statuses.contains(&503), "{statuses:?}");
    }
}

#[test]
fn config_errors_name_the_key_and_line() {
    let text = r#"[[route]]
key = "GET /x"
mock = {}

[[gateway_response]]
type = "TOO_MANY_REQUESTS"

[[gateway_response]]
type = "THROTTLED"
status = 200

[[gateway_response]]
type = "THROTTLED"
body = '{"m":"$context.error.text"}'

[[gateway_response]]
type = "DEFAULT_4XX"
headers = { "x-a" = "$request.header.x", "connection" = "close" }
body = "$context.requestTime $context.nope"
"#;
    let Err(e) = tollgate::config::from_str(text) else {
        panic!("accepted: {text}")
    };
    let e = e.render("gw.toml");
    for (at, words) in [
        (
            "gw.toml:6:8: gateway_response[0].type:",
            "unknown gateway response type \"TOO_MANY_REQUESTS\"",
        ),
        ("gw.toml:10:10: gateway_response[1].status:", "400..=599"),
        (
            "gw.toml:13:8: gateway_response[2].type:",
            "customised twice",
        ),
        (
            "gw.toml:14:8: gateway_response[2].body:",
            "$context.error.text",
        ),
        (
            "gw.toml:18:57: gateway_response[3].headers.\"connection\":",
            "set by tollgate",
        ),
        ("gw.toml:19:8: gateway_response[3].body:", "$context.nope"),
    ] {
        let line = e
            .lines()
            .find(|l| l.starts_with(at))
            .unwrap_or_else(|| panic!("no {at}:\n{e}"));
        assert!(line.contains(words), "{line}");
    }
    assert_eq!(e.lines().count(), 6, "{e}");
    assert!(
        e.contains("ACCESS_DENIED, API_CONFIGURATION_ERROR"),
        "the valid names are listed: {e}"
    );
}
