//! Mapping templates on the wire, both drivers: a request template reshaping a JSON body (the
//! origin gets the exact bytes, framed by their length) from `$input.json` / `.path` /
//! `.params` (path, query, header), `$context` and `$util`; templates chosen by the request's
//! content type (no match: the body passes as it is); a response template reshaping an
//! origin's JSON (chosen by `Accept`, `content-length` right, the origin's other fields kept;
//! also over HTTP/2) and a mock's held response; refusals (a body that is not JSON: 400, an
//! origin answer that is not: 502, output over `max_body_bytes`: 413); routes without
//! templates still stream both ways; directives refused at load naming key and line.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::h2client::{H2, H2C};
use common::*;

const PET: &str = r#"{"pet":{"name":"Rex","age":3},"note":"it's \"quoted\"","tags":["a","b"]}"#;

/// The origin: JSON under `/pets/`, HTML at `/html`, a chunked body at `/stream`, else `ok`.
fn origin() -> Origin {
    Origin::start(|r| {
        let (ctype, body) = if r.target.starts_with("/pets/") {
            ("application/json", PET.to_string())
        } else if r.target == "/html" {
            ("text/html", "<html>".to_string())
        } else if r.target == "/stream" {
            let raw = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n";
            return Reply::Raw(raw.as_bytes().to_vec());
        } else {
            ("text/plain", "ok".to_string())
        };
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\nx-origin: 1\r\netag: \"v1\"\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
}

const REQUEST_TEMPLATE: &str = r#"{"name": $input.json('$.pet.name'), "age": $input.path('$.pet.age'), "tags": $input.json('$.tags'), "id": "$input.params('id')", "q": "$input.params('q')", "trace": "$input.params('x-trace')", "method": "$context.httpMethod", "rid": "$context.requestId", "b64": "$util.base64Encode($input.path('$.pet.name'))", "note": "$util.escapeJavaScript($input.path('$.note')).replaceAll("\\'", "'")", "url": "$util.urlEncode($input.params('q'))"}"#;

fn config(o: &Origin) -> String {
    upstream_toml("origin", &[o.addr], "")
        + &format!(
            r#"
[[route]]
key = "POST /pets/{{id}}"
upstream = "origin"
request_template = '''{REQUEST_TEMPLATE}'''

[[route]]
key = "POST /typed"
upstream = "origin"
request_template = {{ "application/json" = "json:$input.json('$.a')", "application/xml" = "xml:$input.body" }}

[[route]]
key = "GET /pets/{{id}}"
upstream = "origin"

[route.response_template]
"application/json" = '''{{"name": $input.json('$.pet.name'), "id": "$input.params('id')"}}'''
"application/xml" = "<pet><name>$input.path('$.pet.name')</name></pet>"

[[route]]
key = "GET /mocked"
mock = {{ status = 201, body = '{{"a": {{"b": "deep"}}}}', headers = {{ "content-type" = "text/plain", "x-mock" = "1" }} }}
response_template = '{{"b": $input.json("$.a.b"), "rid": "$context.requestId"}}'

[[route]]
key = "GET /html"
upstream = "origin"
response_template = "$input.json('$')"

[[route]]
key = "POST /big"
upstream = "origin"
request_template = "$input.body$input.body$input.body"
max_body_bytes = 10

[[route]]
key = "POST /plain"
upstream = "origin"

[[route]]
key = "GET /stream"
upstream = "origin"
"#
        )
}

fn post(path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: api.example\r\n{headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The body the origin got, after checking it was framed by its length alone.
fn framed_body(r: &Recorded) -> String {
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert_eq!(r.header_count("content-length"), 1, "{}", r.head_text());
    assert_eq!(
        r.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(r.header("transfer-encoding"), None, "{}", r.head_text());
    body
}

both_drivers! {
    fn a_request_template_reshapes_a_json_body(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let r = roundtrip(
            g.addr,
            &post("/pets/7?q=a+b%26c", "content-type: application/json\r\nx-trace: t-1\r\n", PET),
        );
        assert_eq!(r.status, 200, "{}", r.head);
        let got = o.requests();
        assert_eq!(got.len(), 1);
        let rec = &got[0];
        let rid = rec.header("x-request-id").unwrap();
        assert_eq!(r.header("x-request-id"), Some(rid));
        let expected = format!(
            r#"{{"name": "Rex", "age": 3, "tags": ["a","b"], "id": "7", "q": "a b&c", "trace": "t-1", "method": "POST", "rid": "{rid}", "b64": "UmV4", "note": "it's \"quoted\"", "url": "a+b%26c"}}"#
        );
        assert_eq!(framed_body(rec), expected);
        assert_eq!(rec.header("content-type"), Some("application/json"));
        assert_eq!(rec.target, "/pets/7?q=a+b%26c");
        // a chunked request body: held, templated, sent framed by its length
        let chunked = format!(
            "POST /pets/8 HTTP/1.1\r\nHost: a\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{PET}\r\n0\r\n\r\n",
            PET.len()
        );
        let r = roundtrip(g.addr, chunked.as_bytes());
        assert_eq!(r.status, 200, "{}", r.head);
        let body = framed_body(&o.requests()[1]);
        assert!(body.contains(r#""id": "8""#), "{body}");
    }

    fn templates_are_chosen_by_content_type_and_none_passes_the_body(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        for (ctype, body, want) in [
            ("application/json", r#"{"a":[1,2]}"#, "json:[1,2]"),
            ("Application/XML; charset=utf-8", "<a/>", "xml:<a/>"),
            ("text/plain", "just text", "just text"),
        ] {
            let r = roundtrip(g.addr, &post("/typed", &format!("content-type: {ctype}\r\n"), body));
            assert_eq!(r.status, 200, "{ctype}: {}", r.head);
            let rec = o.requests().pop().unwrap();
            assert_eq!(framed_body(&rec), want, "{ctype}");
            assert_eq!(rec.header("content-type"), Some(ctype), "the client's type is kept");
        }
        // no content type: taken as application/json, and the origin is told so
        let r = roundtrip(g.addr, &post("/typed", "", r#"{"a":"x"}"#));
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        assert_eq!(framed_body(&rec), r#"json:"x""#);
        assert_eq!(rec.header("content-type"), Some("application/json"));
    }

    fn a_response_template_reshapes_the_origins_json(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let r = roundtrip(g.addr, b"GET /pets/42 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.text(), r#"{"name": "Rex", "id": "42"}"#);
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-origin"), Some("1"), "the origin's other fields are kept");
        assert_eq!(r.header("etag"), None, "an etag names the old body");
        assert!(r.header("x-request-id").is_some() && r.header("date").is_some());
        // Accept chooses among the route's templates
        let r = roundtrip(g.addr, b"GET /pets/42 HTTP/1.1\r\nHost: a\r\nAccept: text/html;q=0.2, application/xml\r\n\r\n");
        assert_eq!(r.text(), "<pet><name>Rex</name></pet>");
        assert_eq!(r.header("content-type"), Some("application/xml"));
        assert_eq!(r.header("content-length"), Some("27"));
        // the origin must answer in a form the template can read: not content-coded
        let r = roundtrip(g.addr, b"GET /pets/43 HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip, br\r\nX-Keep: 1\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        assert_eq!(rec.header("accept-encoding"), None, "{}", rec.head_text());
        assert_eq!(rec.header("x-keep"), Some("1"));
        // a route without response templates forwards it as sent
        let r = roundtrip(g.addr, &post("/plain", "Accept-Encoding: gzip\r\n", "x"));
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        assert_eq!(rec.header("accept-encoding"), Some("gzip"), "{}", rec.head_text());
    }

    fn a_mocks_held_response_is_reshaped(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let r = roundtrip(g.addr, b"GET /mocked HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 201, "{}", r.head);
        let rid = r.header("x-request-id").unwrap();
        assert_eq!(r.text(), format!(r#"{{"b": "deep", "rid": "{rid}"}}"#));
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-mock"), Some("1"));
        assert!(o.requests().is_empty());
    }

    fn refusals_carry_their_reason(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        // a body the template reads as JSON that is not: 400, the origin sees nothing
        let r = roundtrip(g.addr, &post("/pets/7", "content-type: application/json\r\n", "{not json"));
        assert_eq!(r.status, 400, "{}", r.head);
        let msg: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(msg["message"].as_str().unwrap().contains("not valid JSON"), "{}", r.text());
        assert!(o.requests().is_empty());
        // output over the route's max_body_bytes: 413
        let r = roundtrip(g.addr, &post("/big", "", "12345"));
        assert_eq!(r.status, 413, "{}", r.head);
        assert!(r.text().contains("max_body_bytes"), "{}", r.text());
        assert!(o.requests().is_empty());
        let r = roundtrip(g.addr, &post("/big", "", "123"));
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(framed_body(&o.requests()[0]), "123123123");
        // an origin answer the response template cannot read: 502
        let r = roundtrip(g.addr, b"GET /html HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 502, "{}", r.head);
        assert!(r.text().contains("not valid JSON"), "{}", r.text());
    }

    fn routes_without_templates_stream_both_ways(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let req = b"POST /plain HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let r = roundtrip(g.addr, req);
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        assert_eq!(rec.header("transfer-encoding"), Some("chunked"), "{}", rec.head_text());
        assert_eq!(rec.header("content-length"), None);
        assert_eq!(rec.body, b"hello");
        let r = roundtrip(g.addr, b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{}", r.head);
        assert_eq!(r.text(), r#"{"a":1}"#);
    }

    fn response_templates_over_http2(d) {
        let o = origin();
        let g = Gateway::start_with(d, 1, H2C, &config(&o));
        let mut c = H2::connect(g.addr);
        let r = c.get("/pets/5");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), r#"{"name": "Rex", "id": "5"}"#);
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let req = c.req("POST", "/typed", &[("content-type", "application/json")]);
        let r = c.send(req, Some(br#"{"a":true}"#)).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(framed_body(&o.requests().pop().unwrap()), "json:true");
    }
}

#[test]
fn directives_are_refused_at_load_naming_key_and_line() {
    let text = "[[route]]\nkey = \"GET /a\"\nmock = {}\n\n[[route]]\nkey = \"POST /b\"\nmock = {}\nrequest_template = \"\"\"\n{\n  #if($input.params('x'))\n}\n\"\"\"\nresponse_template = { \"application/json\" = \"#set($a = 1)\" }\n";
    let Err(e) = tollgate::config::from_str(text) else {
        panic!("accepted")
    };
    let e = e.0;
    let got: Vec<(usize, &str, &str)> = e
        .iter()
        .map(|e| (e.line, e.key.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                8,
                "route[1].request_template",
                "mapping templates support no directives (#if): full VTL is out of scope (line 10)"
            ),
            (
                13,
                "route[1].response_template.\"application/json\"",
                "mapping templates support no directives (#set): full VTL is out of scope"
            ),
        ]
    );
}
