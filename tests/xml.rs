//! XML ⇄ JSON body transformations on the wire, both drivers, with real-world documents
//! (tests/data/xml: a SOAP 1.1 envelope, an RSS 2.0 feed, a namespaced Atom document): a JSON
//! request becomes XML at the origin (exact bytes, content type, framed by its length), an
//! XML request becomes JSON, an XML response becomes JSON at the client over HTTP/1.1 and
//! HTTP/2; XXE, billion laughs and over-deep documents refused (400 and nothing sent for a
//! request, 502 for a response) with messages naming the problem or the limit; bodies of
//! other types pass; HEAD, 204 and 304 sane; routes without a request transformation keep
//! streaming; config errors name key and line.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::h2client::{H2, H2C};
use common::*;

const SOAP: &str = include_str!("data/xml/soap-1.1-envelope.xml");
const RSS: &str = include_str!("data/xml/rss-2.0-feed.xml");
const NAMESPACED: &str = include_str!("data/xml/namespaced.xml");
const XXE: &str = include_str!("data/xml/xxe.xml");
const LAUGHS: &str = include_str!("data/xml/billion-laughs.xml");
const DEEP: &str = include_str!("data/xml/too-deep.xml");

/// The SOAP envelope as JSON, exactly (members in document order).
const SOAP_JSON: &str = concat!(
    r#"{"soap:Envelope":{"@xmlns:soap":"http://schemas.xmlsoap.org/soap/envelope/","@xmlns:xsi":"http://www.w3.org/2001/XMLSchema-instance","@soap:encodingStyle":"http://schemas.xmlsoap.org/soap/encoding/","#,
    r##""soap:Header":{"t:Transaction":{"@xmlns:t":"urn:example:transactions","@soap:mustUnderstand":"1","#text":"5"}},"##,
    r##""soap:Body":{"m:GetLastTradePriceResponse":{"@xmlns:m":"urn:example:stockquote","m:Symbol":"DIS","m:Price":{"@currency":"USD","#text":"34.5"},"m:Volume":{"@xsi:nil":"true"},"m:Note":"Prices are delayed <15 min> & indicative","m:History":{"m:Day":[{"@date":"2026-11-30","#text":"34.1"},{"@date":"2026-12-01","#text":"34.5"}]}}}}}"##
);

const NAMESPACED_JSON: &str = concat!(
    r##"{"feed":{"@xmlns":"http://www.w3.org/2005/Atom","@xmlns:geo":"http://www.w3.org/2003/01/geo/wgs84_pos#","@xml:lang":"en","title":{"@type":"text","#text":"Harbour sensors"},"##,
    r#""id":"urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6","updated":"2026-12-01T18:30:02Z","#,
    r##""entry":{"title":"Tide gauge № 3 — 1.42 m","link":{"@rel":"alternate","@href":"https://sensors.example.org/tide/3"},"geo:lat":"59.9127","geo:long":"10.7461","content":{"@type":"xhtml","div":{"@xmlns":"http://www.w3.org/1999/xhtml","#text":"Rising ","em":"fast"}}}}}"##
);

fn reply(status: &str, ctype: &str, extra: &str, body: &str) -> Reply {
    Reply::Raw(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\n{extra}content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// The origin: a document per path under `/legacy/`, else `<ok/>`.
fn origin() -> Origin {
    Origin::start(|r| {
        let path = r.target.as_str();
        match path {
            "/legacy/soap" => reply("200 OK", "text/xml; charset=utf-8", "etag: \"s1\"\r\nx-origin: 1\r\n", SOAP),
            "/legacy/rss" => reply("200 OK", "application/rss+xml", "", RSS),
            "/legacy/ns" => reply("200 OK", "application/atom+xml", "", NAMESPACED),
            "/legacy/xxe" => reply("200 OK", "application/xml", "", XXE),
            "/legacy/laughs" => reply("200 OK", "application/xml", "", LAUGHS),
            "/legacy/deep" => reply("200 OK", "application/xml", "", DEEP),
            "/legacy/html" => reply("500 Internal Server Error", "text/html", "", "<h1>oops</h1>"),
            "/legacy/json" => reply("200 OK", "application/json", "", r#"{"already":"json"}"#),
            "/legacy/coded" => reply("200 OK", "application/xml", "content-encoding: gzip\r\n", "\u{1f}not-really-gzip"),
            "/legacy/untyped" => Reply::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n<a>1</a>".to_vec()),
            "/legacy/none" => Reply::Raw(b"HTTP/1.1 204 No Content\r\nx-origin: 1\r\n\r\n".to_vec()),
            "/legacy/same" => Reply::Raw(
                b"HTTP/1.1 304 Not Modified\r\netag: \"s1\"\r\ncontent-type: application/xml\r\n\r\n".to_vec(),
            ),
            "/stream" => Reply::Raw(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ntransfer-encoding: chunked\r\n\r\n3\r\n<a>\r\n4\r\n</a>\r\n0\r\n\r\n".to_vec(),
            ),
            _ if path.starts_with("/legacy/head") => reply("200 OK", "application/xml", "", SOAP),
            _ => reply("200 OK", "application/xml", "", "<ok/>"),
        }
    })
}

fn config(o: &Origin) -> String {
    upstream_toml("soap", &[o.addr], "")
        + r#"
[[route]]
key = "ANY /legacy/{proxy+}"
upstream = "soap"
transform = { request = "json_to_xml", response = "xml_to_json", xml_root = "Request" }

[[route]]
key = "POST /ingest"
upstream = "soap"
transform = { request = "xml_to_json" }

[[route]]
key = "POST /reply-only"
upstream = "soap"
transform = { response = "xml_to_json" }

[[route]]
key = "POST /small"
upstream = "soap"
transform = { request = "json_to_xml", max_depth = 2 }

[[route]]
key = "ANY /{proxy+}"
upstream = "soap"
"#
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

/// The `message` of a JSON error body.
fn message(r: &Response) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["message"].as_str().unwrap().to_string()
}

const ORDER: &str = r#"{"order":{"@id":"7","item":["pen","ink"],"qty":2,"gift":true,"note":null,"memo":"a<b & \"c\""}}"#;
const ORDER_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Request><order id="7"><item>pen</item><item>ink</item><qty>2</qty><gift>true</gift><note/><memo>a&lt;b &amp; "c"</memo></order></Request>"#;

both_drivers! {
    fn a_json_request_reaches_the_origin_as_xml(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let r = roundtrip(g.addr, &post("/legacy/orders/7", "content-type: application/json\r\nx-keep: 1\r\n", ORDER));
        assert_eq!(r.status, 200, "{}", r.head);
        let got = o.requests();
        assert_eq!(got.len(), 1);
        let rec = &got[0];
        assert_eq!(rec.target, "/legacy/orders/7");
        assert_eq!(framed_body(rec), ORDER_XML);
        assert_eq!(rec.header("content-type"), Some("application/xml; charset=utf-8"));
        assert_eq!(rec.header("x-keep"), Some("1"));
        // and the origin's XML answer reaches the client as JSON
        assert_eq!(r.text(), r#"{"ok":""}"#);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-length"), Some("9"));
        // a chunked request body: held, converted, sent framed by its length
        let chunked = format!(
            "POST /legacy/orders/8 HTTP/1.1\r\nHost: a\r\ncontent-type: application/json; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{ORDER}\r\n0\r\n\r\n",
            ORDER.len()
        );
        let r = roundtrip(g.addr, chunked.as_bytes());
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(framed_body(&o.requests()[1]), ORDER_XML);
        // a body that is already XML (or of another type), or none, passes as it is
        let r = roundtrip(g.addr, &post("/legacy/x", "content-type: text/xml\r\n", "<q>1</q>"));
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        assert_eq!(framed_body(&rec), "<q>1</q>");
        assert_eq!(rec.header("content-type"), Some("text/xml"));
        let r = roundtrip(g.addr, b"GET /legacy/x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(o.requests().pop().unwrap().body, b"");
        // a top-level array and a scalar, under the root
        let r = roundtrip(g.addr, &post("/legacy/x", "", r#"[1,"a"]"#));
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(
            framed_body(&o.requests().pop().unwrap()),
            r#"<?xml version="1.0" encoding="UTF-8"?><Request><item>1</item><item>a</item></Request>"#
        );
    }

    fn an_xml_request_reaches_the_origin_as_json(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let r = roundtrip(g.addr, &post("/ingest", "content-type: text/xml; charset=utf-8\r\n", SOAP));
        assert_eq!(r.status, 200, "{}", r.head);
        let rec = o.requests().pop().unwrap();
        assert_eq!(framed_body(&rec), SOAP_JSON);
        assert_eq!(rec.header("content-type"), Some("application/json"));
        // the route converts no response: the origin's XML reaches the client as sent
        assert_eq!(r.text(), "<ok/>");
        assert_eq!(r.header("content-type"), Some("application/xml"));
    }

    fn xml_responses_reach_the_client_as_json(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let r = roundtrip(g.addr, b"GET /legacy/soap HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.text(), SOAP_JSON);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-length"), Some(SOAP_JSON.len().to_string().as_str()));
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.header("etag"), None, "an etag names the XML body");
        assert_eq!(r.header("x-origin"), Some("1"), "the origin's other fields are kept");
        let rec = o.requests().pop().unwrap();
        assert_eq!(rec.header("accept-encoding"), None, "the origin must answer readable XML");
        let r = roundtrip(g.addr, b"GET /legacy/ns HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.text(), NAMESPACED_JSON);
        // the 100 KB RSS feed
        let r = roundtrip(g.addr, b"GET /legacy/rss HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.head);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let ch = &v["rss"]["channel"];
        assert_eq!(v["rss"]["@version"], "2.0");
        assert_eq!(ch["title"], "Tollgate Engineering Blog");
        assert_eq!(ch["description"], "Notes from the people building a thread-per-core API gateway & edge proxy");
        let items = ch["item"].as_array().unwrap();
        assert_eq!(items.len(), RSS.matches("<item>").count());
        assert_eq!(items[0]["title"], "Why we rewrote Zero-copy parsing: part 1");
        assert_eq!(items[0]["guid"], serde_json::json!({"@isPermaLink": "false", "#text": "tollgate-post-10001"}));
        assert_eq!(items[0]["category"].as_array().unwrap().len(), 3);
        assert!(items[0]["content:encoded"].as_str().unwrap().ends_with("<pre><code>let x = a &amp;&amp; b &lt; c;</code></pre>"));
        assert!(items[0]["description"].as_str().unwrap().ends_with("Read more \u{2026} <p>&</p>"));
        assert_eq!(items[4]["enclosure"]["@type"], "audio/mpeg");
        // a body of no type is taken as XML; one of another type passes as it is
        let r = roundtrip(g.addr, b"GET /legacy/untyped HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.text(), r#"{"a":"1"}"#, "{}", r.head);
        let r = roundtrip(g.addr, b"GET /legacy/html HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 500, "{}", r.head);
        assert_eq!(r.text(), "<h1>oops</h1>");
        assert_eq!(r.header("content-type"), Some("text/html"));
        let r = roundtrip(g.addr, b"GET /legacy/json HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.text(), r#"{"already":"json"}"#);
        // a content-coded body (the origin coded without being asked) passes as it is
        let r = roundtrip(g.addr, b"GET /legacy/coded HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.text(), "\u{1f}not-really-gzip");
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("content-type"), Some("application/xml"));
    }

    fn xml_over_http2(d) {
        let o = origin();
        let g = Gateway::start_with(d, 1, H2C, &config(&o));
        let mut c = H2::connect(g.addr);
        let r = c.get("/legacy/soap");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), SOAP_JSON);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-length"), Some(SOAP_JSON.len().to_string().as_str()));
        let req = c.req("POST", "/legacy/orders/9", &[("content-type", "application/json")]);
        let r = c.send(req, Some(ORDER.as_bytes())).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), r#"{"ok":""}"#);
        assert_eq!(framed_body(&o.requests().pop().unwrap()), ORDER_XML);
    }

    fn unsafe_or_deep_requests_are_refused_before_the_origin(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let doctype = "request XML with a DOCTYPE is refused (no DTDs or entity declarations: XXE and entity expansion)";
        for (body, want) in [
            (XXE, doctype),
            (LAUGHS, doctype),
            (DEEP, "request XML nesting deeper than 64 levels (transform.max_depth)"),
            ("<a>&ent;</a>", "request XML refers to the undeclared entity &ent; (only the five predefined entities and character references are known)"),
        ] {
            let r = roundtrip(g.addr, &post("/ingest", "content-type: application/xml\r\n", body));
            assert_eq!(r.status, 400, "{}", r.head);
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(message(&r), want);
        }
        let r = roundtrip(g.addr, &post("/ingest", "", "<a><b></a>"));
        assert_eq!(r.status, 400, "{}", r.head);
        assert!(message(&r).starts_with("request XML is not well-formed: "), "{}", r.text());
        // JSON with no XML form, or not JSON at all
        let r = roundtrip(g.addr, &post("/legacy/x", "content-type: application/json\r\n", r#"{"a b": 1}"#));
        assert_eq!(r.status, 400, "{}", r.head);
        assert_eq!(message(&r), r##"request JSON member name "a b" is not an XML name (nor "@" and one, nor "#text")"##);
        let r = roundtrip(g.addr, &post("/legacy/x", "content-type: application/json\r\n", "{nope"));
        assert_eq!(r.status, 400, "{}", r.head);
        assert!(message(&r).starts_with("request body is not valid JSON: "), "{}", r.text());
        // a route's own limit
        let r = roundtrip(g.addr, &post("/small", "", r#"{"a":{"b":1}}"#));
        assert_eq!(r.status, 400, "{}", r.head);
        assert_eq!(message(&r), "request XML nesting deeper than 2 levels (transform.max_depth)");
        assert!(o.requests().is_empty(), "the origin saw a refused request");
        let r = roundtrip(g.addr, &post("/small", "", r#"{"a":1}"#));
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(framed_body(&o.requests()[0]), r#"<?xml version="1.0" encoding="UTF-8"?><root><a>1</a></root>"#);
    }

    fn unsafe_or_deep_responses_are_a_502(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let doctype = "integration response XML with a DOCTYPE is refused (no DTDs or entity declarations: XXE and entity expansion)";
        for (path, want) in [
            ("/legacy/xxe", doctype),
            ("/legacy/laughs", doctype),
            ("/legacy/deep", "integration response XML nesting deeper than 64 levels (transform.max_depth)"),
        ] {
            let r = roundtrip(g.addr, format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
            assert_eq!(r.status, 502, "{path}: {}", r.head);
            assert_eq!(message(&r), want, "{path}");
        }
    }

    fn head_204_and_304_pass_sanely(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        let mut c = Client::new(g.addr);
        c.send(b"HEAD /legacy/head HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = c.read(true).unwrap();
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.header("content-type"), Some("application/json"), "GET's type");
        assert_eq!(r.header("content-length"), None, "GET's length is not known: left out");
        assert!(r.body.is_empty());
        // the connection stays in step
        c.send(b"GET /legacy/none HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 204, "{}", r.head);
        assert_eq!(r.header("x-origin"), Some("1"));
        assert_eq!(r.header("content-type"), None);
        assert!(r.body.is_empty());
        c.send(b"GET /legacy/same HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"s1\"\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 304, "{}", r.head);
        assert_eq!(r.header("etag"), Some("\"s1\""), "a 304's validator is kept");
        assert_eq!(r.header("content-type"), Some("application/xml"));
        c.send(b"GET /legacy/soap HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.text(), SOAP_JSON);
    }

    fn routes_without_a_request_transformation_stream(d) {
        let o = origin();
        let g = Gateway::start(d, 1, &config(&o));
        for path in ["/plain", "/reply-only"] {
            let req = format!("POST {path} HTTP/1.1\r\nHost: a\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n2\r\n1}}\r\n0\r\n\r\n");
            let r = roundtrip(g.addr, req.as_bytes());
            assert_eq!(r.status, 200, "{}", r.head);
            let rec = o.requests().pop().unwrap();
            assert_eq!(rec.header("transfer-encoding"), Some("chunked"), "{}", rec.head_text());
            assert_eq!(rec.header("content-length"), None);
            assert_eq!(rec.body, br#"{"a":1}"#);
            let want = if path == "/plain" { "<ok/>" } else { r#"{"ok":""}"# };
            assert_eq!(r.text(), want, "{path}");
        }
        let r = roundtrip(g.addr, b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{}", r.head);
        assert_eq!(r.text(), "<a></a>");
    }
}

#[test]
fn bad_transform_tables_are_refused_naming_key_and_line() {
    let text = "[[route]]\nkey = \"GET /a\"\nmock = {}\n\n[[route]]\nkey = \"POST /b\"\nmock = {}\ntransform = { request = \"json_to_yaml\", xml_root = \"1bad\" }\n\n[[route]]\nkey = \"POST /c\"\nmock = {}\ntransform = { xml_root = \"ok\", max_depth = 0 }\n";
    let Err(e) = tollgate::config::from_str(text) else {
        panic!("accepted")
    };
    let got: Vec<(usize, &str, &str)> =
        e.0.iter()
            .map(|e| (e.line, e.key.as_str(), e.message.as_str()))
            .collect();
    assert_eq!(
        got,
        [
            (
                8,
                "route[1].transform.request",
                "unknown transformation \"json_to_yaml\": \"json_to_xml\" or \"xml_to_json\""
            ),
            (
                8,
                "route[1].transform.xml_root",
                "\"1bad\" is not an XML element name (XML 1.0 §2.3: a letter, '_' or ':' first, then letters, digits, '-', '.', '_', ':')"
            ),
            (
                13,
                "route[2].transform",
                "names no transformation: set request and/or response (\"json_to_xml\" or \"xml_to_json\")"
            ),
            (13, "route[2].transform.max_depth", "must be in 1..=128 (got 0)"),
        ]
    );
    // the issue's table, as written
    let ok = "[[upstream]]\nname = \"soap\"\ntargets = [\"127.0.0.1:9\"]\n\n[[route]]\nkey = \"ANY /legacy/{proxy+}\"\nupstream = \"soap\"\ntransform = { request = \"json_to_xml\", response = \"xml_to_json\", xml_root = \"Request\" }\n";
    let c = tollgate::config::from_str(ok).unwrap();
    let t = c.transforms.routes[0].as_ref().unwrap();
    assert_eq!(&*t.xml_root, "Request");
    assert_eq!(
        c.bodies.routes[0],
        Some(10 * 1024 * 1024),
        "the route holds its request body"
    );
}
