//! Parameter mapping on the wire, both drivers, a recording origin asserting the exact bytes
//! it got: the issue's example as written (with a JWT authorizer's `$context.authorizer.claims.sub`,
//! one `x-request-id` whoever set it); each header and query operation and value source
//! (`$request.header`, `.querystring`, `.path`, `.path.NAME`, `.body.*`, `$context`, mixed
//! text), the other query parameters' bytes kept; responses by code and by class (status
//! overwrite, header operations), gateway errors left alone, over HTTP/1 and HTTP/2; a mock
//! echoing its path parameter; conflicts and reserved headers refused at load naming key
//! and line.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::h2client::{H2, H2C};
use common::jwt::{self, now, TestKey};
use common::*;
use serde_json::json;

const AUDIENCE: &str = "orders-api";

/// An identity provider serving one key set at `/keys`.
struct Idp {
    origin: Origin,
    key: TestKey,
}

impl Idp {
    fn start() -> Idp {
        let key = jwt::p256();
        let doc = jwt::jwks(&[key.jwk(Some("k1"), Some("ES256"))]);
        let origin = Origin::start(move |_| {
            Reply::Raw(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{doc}",
                    doc.len()
                )
                .into_bytes(),
            )
        });
        Idp { origin, key }
    }

    fn token(&self, sub: &str) -> String {
        let t = now();
        let claims = json!({
            "iss": format!("http://{}/", self.origin.addr), "aud": AUDIENCE, "sub": sub,
            "iat": t, "exp": t + 600,
        });
        jwt::mint(&self.key, &json!({ "kid": "k1" }), &claims)
    }

    fn authorizer_toml(&self) -> String {
        format!(
            "[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"http://{a}/\"\naudience = [\"{AUDIENCE}\"]\njwks_uri = \"http://{a}/keys\"\n\n",
            a = self.origin.addr
        )
    }
}

/// The origin: `/status/NNN` answers NNN with `server: origin` and `x-origin: 1`; anything
/// else `200 ok` with the same fields.
fn origin() -> Origin {
    Origin::start(|r| {
        let status: u16 = r
            .target
            .strip_prefix("/status/")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        Reply::Raw(
            format!("HTTP/1.1 {status} Whatever\r\nserver: origin\r\nx-origin: 1\r\ncontent-length: 2\r\n\r\nok")
                .into_bytes(),
        )
    })
}

fn config(o: &Origin, idp: &Idp) -> String {
    let closed = unephemeral_port();
    upstream_toml("orders", &[o.addr], "")
        + &upstream_toml(
            "gone",
            &[format!("127.0.0.1:{closed}").parse().unwrap()],
            "",
        )
        + &idp.authorizer_toml()
        + r#"
[[route]]
key = "POST /orders/{id}"
upstream = "orders"
authorizer = "users"
request_parameters = { "append:header.x-user" = "$context.authorizer.claims.sub", "overwrite:path" = "/v2/orders/$request.path.id", "remove:querystring.debug" = "''", "overwrite:header.x-request-id" = "$context.requestId" }
response_parameters = { "500" = { "overwrite:statuscode" = "503", "append:header.retry-after" = "5" }, "200" = { "remove:header.server" = "''" } }

[[route]]
key = "GET /items/{id}"
upstream = "orders"
request_parameters = { "remove:header.x-secret" = "''", "overwrite:header.x-mode" = "fixed", "append:header.x-who" = "$request.querystring.who", "overwrite:querystring.page" = "$request.header.x-page", "append:querystring.tag" = "t-${request.path.id}", "remove:querystring.debug" = "''", "overwrite:header.x-seen" = "${request.path} by $context.httpMethod on $context.routeKey", "append:header.x-none" = "$request.header.x-absent" }

[[route]]
key = "POST /bodies"
upstream = "orders"
request_parameters = { "overwrite:header.x-name" = "$request.body.pet.name", "append:header.x-tags" = "${request.body.tags}", "overwrite:querystring.age" = "$request.body.pet.age" }

[[route]]
key = "GET /status/{code}"
upstream = "orders"
response_parameters = { "500" = { "overwrite:statuscode" = "503", "append:header.retry-after" = "5" }, "200" = { "remove:header.server" = "''", "overwrite:header.x-origin" = "mapped-$request.path.code" }, "404" = { "append:header.x-exact" = "1" }, "4XX" = { "append:header.x-class" = "client-$request.path.code", "overwrite:statuscode" = "400" } }

[[route]]
key = "GET /gone"
upstream = "gone"
response_parameters = { "5XX" = { "overwrite:statuscode" = "200", "append:header.x-mapped" = "1" } }

[[route]]
key = "GET /pets/{id}"
mock = { body = '{"id": "$request.path.id", "q": "$request.querystring.q", "h": "$request.header.x-h"}', headers = { "x-pet" = "pet-$request.path.id", "x-static" = "US$5" } }
response_parameters = { "200" = { "overwrite:statuscode" = "201", "append:header.x-rid" = "$context.requestId" } }
"#
}

/// How many fields named `name` a response has.
fn count(r: &Response, name: &str) -> usize {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .count()
}

fn start(d: &str, extra: &str) -> (Origin, Idp, Gateway) {
    let o = origin();
    let idp = Idp::start();
    let g = Gateway::start_with(d, 1, extra, &config(&o, &idp));
    (o, idp, g)
}

both_drivers! {
    fn the_issue_example_reaches_the_origin_exactly(d) {
        let (o, idp, g) = start(d, "");
        let token = idp.token("user-9");
        let req = format!(
            "POST /orders/17?debug=1&keep=a%20b&debug HTTP/1.1\r\nHost: api.example\r\nx-user: spoof\r\nAuthorization: Bearer {token}\r\ncontent-length: 2\r\n\r\n{{}}"
        );
        let r = roundtrip(g.addr, req.as_bytes());
        assert_eq!(r.status, 200, "{}", r.head);
        let rid = r.header("x-request-id").unwrap().to_string();
        let rec = o.requests().pop().unwrap();
        let want = format!(
            "POST /v2/orders/17?keep=a%20b HTTP/1.1\r\nHost: api.example\r\nx-user: spoof\r\nAuthorization: Bearer {token}\r\nx-forwarded-for: 127.0.0.1\r\nvia: 1.1 tollgate\r\nx-forwarded-proto: http\r\nx-forwarded-host: api.example\r\nx-user: user-9\r\nx-request-id: {rid}\r\ncontent-length: 2\r\n\r\n"
        );
        assert_eq!(rec.head_text(), want);
        assert_eq!(rec.body, b"{}");
        // "200": the origin's `server` removed, its other fields kept
        assert_eq!(r.header("server"), None, "{}", r.head);
        assert_eq!(r.header("x-origin"), Some("1"));
        // the client's own id: still one x-request-id, the mapped one (the same id)
        let req = format!(
            "POST /orders/18 HTTP/1.1\r\nHost: api.example\r\nx-request-id: client-id-1\r\nAuthorization: Bearer {token}\r\ncontent-length: 0\r\n\r\n"
        );
        let r = roundtrip(g.addr, req.as_bytes());
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        assert_eq!(rec.header_count("x-request-id"), 1, "{}", rec.head_text());
        assert_eq!(rec.header("x-request-id"), Some("client-id-1"));
        assert_eq!(rec.target, "/v2/orders/18");
    }

    fn each_header_and_query_operation_and_value_source(d) {
        let (o, _idp, g) = start(d, "");
        let r = roundtrip(
            g.addr,
            b"GET /items/5?a=1&debug=x&page=old&who=me&b=%41+c&page=dup&debug HTTP/1.1\r\nHost: h\r\nX-Secret: s\r\nx-secret: t\r\nX-Mode: client\r\nX-Page: 9 9\r\n\r\n",
        );
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        // the others' bytes as sent; page overwritten in place (the duplicate dropped, the
        // value's space encoded); tag appended
        assert_eq!(rec.target, "/items/5?a=1&page=9%209&who=me&b=%41+c&tag=t-5");
        assert_eq!(rec.header_count("x-secret"), 0, "{}", rec.head_text());
        assert_eq!(rec.header_count("x-mode"), 1);
        assert_eq!(rec.header("x-mode"), Some("fixed"));
        assert_eq!(rec.header("x-who"), Some("me"));
        assert_eq!(rec.header("x-seen"), Some("/items/5 by GET on GET /items/{id}"));
        assert_eq!(rec.header_count("x-none"), 0, "an empty value adds nothing");
        // without a query: the appended parameter alone; the overwritten one from its header
        let r = roundtrip(g.addr, b"GET /items/6 HTTP/1.1\r\nHost: h\r\nX-Page: 2\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        assert_eq!(rec.target, "/items/6?page=2&tag=t-6");
        assert_eq!(rec.header_count("x-who"), 0);
    }

    fn body_values_read_the_json_body(d) {
        let (o, _idp, g) = start(d, "");
        let body = r#"{"pet":{"name":"Rex\nthe dog","age":3},"tags":["a","b"]}"#;
        let req = format!(
            "POST /bodies?x=1 HTTP/1.1\r\nHost: h\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let r = roundtrip(g.addr, req.as_bytes());
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        assert_eq!(rec.header("x-name"), Some("Rex the dog"), "a newline cannot end the field");
        assert_eq!(rec.header("x-tags"), Some(r#"["a","b"]"#));
        assert_eq!(rec.target, "/bodies?x=1&age=3");
        assert_eq!(rec.body, body.as_bytes(), "the body itself is forwarded as sent");
        assert_eq!(rec.header("content-length"), Some(body.len().to_string().as_str()));
        // not JSON: the values are empty
        let req = "POST /bodies HTTP/1.1\r\nHost: h\r\ncontent-length: 5\r\n\r\nhello";
        let r = roundtrip(g.addr, req.as_bytes());
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        assert_eq!(rec.header_count("x-name"), 0);
        assert_eq!(rec.target, "/bodies");
        assert_eq!(rec.body, b"hello");
    }

    fn responses_are_mapped_by_code_and_by_class(d) {
        let (_o, _idp, g) = start(d, "");
        let r = roundtrip(g.addr, b"GET /status/500 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(r.head.starts_with("HTTP/1.1 503 Service Unavailable\r\nserver: origin\r\nx-origin: 1\r\ncontent-length: 2\r\n"), "{}", r.head);
        assert_eq!(r.header("retry-after"), Some("5"));
        assert_eq!(r.text(), "ok");
        let r = roundtrip(g.addr, b"GET /status/200 HTTP/1.1\r\nHost: h\r\n\r\n");
        // the origin's `server` and `x-origin` left out, the mapped `x-origin` after the gateway's
        assert!(r.head.starts_with("HTTP/1.1 200 Whatever\r\ncontent-length: 2\r\n"), "{}", r.head);
        assert_eq!(count(&r, "x-origin"), 1);
        assert!(r.head.contains("\r\nx-origin: mapped-200\r\n"), "{}", r.head);
        assert_eq!(count(&r, "server"), 0);
        // the exact code wins over its class
        let r = roundtrip(g.addr, b"GET /status/404 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.status, 404, "{}", r.head);
        assert_eq!(r.header("x-exact"), Some("1"));
        assert_eq!(r.header("x-class"), None);
        let r = roundtrip(g.addr, b"GET /status/418 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(r.head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{}", r.head);
        assert_eq!(r.header("x-class"), Some("client-418"));
        // a status no rule names passes as it is
        let r = roundtrip(g.addr, b"GET /status/302 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(r.head.starts_with("HTTP/1.1 302 Whatever\r\nserver: origin\r\n"), "{}", r.head);
        // a gateway error is not mapped (its [[gateway_response]] would be)
        let r = roundtrip(g.addr, b"GET /gone HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.status, 502, "{}", r.head);
        assert_eq!(r.header("x-mapped"), None);
    }

    fn a_mock_echoes_its_values_and_its_response_is_mapped(d) {
        let (_o, _idp, g) = start(d, "");
        // what the client sent stays one JSON string: quotes and backslashes escaped
        let r = roundtrip(g.addr, b"GET /pets/42?q=a%22b HTTP/1.1\r\nHost: h\r\nx-h: say \"hi\" \\ ok\r\n\r\n");
        let body = r#"{"id": "42", "q": "a%22b", "h": "say \"hi\" \\ ok"}"#;
        assert!(r.head.starts_with(&format!("HTTP/1.1 201 Created\r\nx-pet: pet-42\r\nx-static: US$5\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len())), "{}", r.head);
        assert_eq!(r.text(), body);
        assert_eq!(serde_json::from_str::<serde_json::Value>(body).unwrap()["h"], "say \"hi\" \\ ok");
        let rid = r.header("x-request-id").unwrap();
        assert_eq!(r.header("x-rid"), Some(rid));
    }

    fn responses_are_mapped_over_http2(d) {
        let (o, idp, g) = start(d, H2C);
        let mut c = H2::connect(g.addr);
        let r = c.get("/status/500");
        assert_eq!(r.status, 503);
        assert_eq!(r.header("retry-after"), Some("5"));
        assert_eq!(r.header("server"), Some("origin"));
        assert_eq!(r.text(), "ok");
        let r = c.get("/status/200");
        assert_eq!(r.status, 200);
        assert_eq!(r.headers.get_all("x-origin").iter().count(), 1);
        assert_eq!(r.header("x-origin"), Some("mapped-200"));
        assert_eq!(r.header("server"), None);
        let r = c.get("/status/418");
        assert_eq!(r.status, 400);
        assert_eq!(r.header("x-class"), Some("client-418"));
        let r = c.get("/pets/7");
        assert_eq!(r.status, 201);
        assert_eq!(r.text(), r#"{"id": "7", "q": "", "h": ""}"#);
        assert_eq!(r.header("x-pet"), Some("pet-7"));
        // request operations from an HTTP/2 client
        let token = idp.token("h2-user");
        let auth = format!("Bearer {token}");
        let req = c.req("POST", "/orders/3?debug=1&k=v", &[("authorization", auth.as_str()), ("x-user", "spoof")]);
        let r = c.send(req, Some(b"{}")).unwrap();
        assert_eq!(r.status, 200);
        let rec = o.requests().pop().unwrap();
        assert_eq!(rec.target, "/v2/orders/3?k=v");
        let users: Vec<&str> = rec.headers.iter().filter(|(n, _)| n == "x-user").map(|(_, v)| v.as_str()).collect();
        assert_eq!(users, ["spoof", "h2-user"]);
        assert_eq!(rec.header_count("x-request-id"), 1, "{}", rec.head_text());
        assert_eq!(rec.header("x-request-id"), r.header("x-request-id"));
    }
}

#[test]
fn conflicts_and_reserved_headers_are_refused_at_load_naming_key_and_line() {
    let text = "[[upstream]]\nname = \"o\"\ntargets = [\"127.0.0.1:9\"]\n\n[[route]]\nkey = \"GET /a\"\nupstream = \"o\"\nrequest_parameters = { \"append:header.x-a\" = \"1\", \"remove:header.X-A\" = \"''\" }\n\n[[route]]\nkey = \"GET /b\"\nupstream = \"o\"\nrequest_parameters = { \"overwrite:header.host\" = \"evil\" }\nresponse_parameters = { \"200\" = { \"remove:header.content-length\" = \"''\" } }\n";
    let Err(e) = tollgate::config::from_str(text) else {
        panic!("accepted")
    };
    let got: Vec<(usize, String, String)> =
        e.0.into_iter()
            .map(|e| (e.line, e.key, e.message))
            .collect();
    assert_eq!(
        got,
        [
            (
                8,
                "route[0].request_parameters.\"remove:header.X-A\"".to_string(),
                "conflicts with \"append:header.x-a\" (line 8): one operation per target"
                    .to_string()
            ),
            (
                13,
                "route[1].request_parameters.\"overwrite:header.host\"".to_string(),
                "header \"host\" frames the message (RFC 9112 §6): tollgate writes it".to_string()
            ),
            (
                14,
                "route[1].response_parameters.\"200\".\"remove:header.content-length\"".to_string(),
                "header \"content-length\" frames the message (RFC 9112 §6): tollgate writes it"
                    .to_string()
            ),
        ]
    );
}
