//! Events against AWS's published examples (tests/data/lambda/) and rule by rule.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use serde_json::{json, Value};

use super::{event, EventInput, PayloadFormat};
use crate::facts::{ClientCert, ConnFacts, Protocol, TlsFacts};
use crate::http::{parse_request, Limits, RequestHead};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/data/lambda/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn head(raw: &str) -> RequestHead {
    let mut buf = BytesMut::from(raw.as_bytes());
    match parse_request(&mut buf, &Limits::default()) {
        Ok(Some(h)) => h,
        other => panic!("not a request head: {other:?}"),
    }
}

fn plain() -> ConnFacts {
    ConnFacts::plain(
        "192.0.2.1:50000".parse().unwrap(),
        "10.0.0.1:8080".parse().unwrap(),
    )
}

/// The certificate of AWS's examples, as the TLS layer would have parsed it.
fn with_cert() -> ConnFacts {
    ConnFacts::tls(
        "192.0.2.1:50000".parse().unwrap(),
        "10.0.0.1:443".parse().unwrap(),
        TlsFacts {
            version: "TLSv1.3",
            sni: None,
            alpn: None,
            client_cert: Some(ClientCert {
                subject_dn: "www.example.com".into(),
                issuer_dn: "Example issuer".into(),
                serial_number: "a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1".into(),
                not_before: "May 28 12:30:02 2019 GMT".into(),
                not_after: "Aug  5 09:36:04 2021 GMT".into(),
            }),
        },
    )
}

fn at_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Common inputs; tests override what they look at.
struct Case<'a> {
    head: RequestHead,
    body: &'a [u8],
    params: &'a [(&'a str, &'a [u8])],
    route_key: &'a str,
    stage_variables: &'a [(&'a str, &'a str)],
    stage: &'a str,
    request_id: &'a [u8],
    facts: ConnFacts,
    client_ip: Option<crate::facts::PeerIp>,
    now: SystemTime,
    api_id: &'a str,
    account_id: &'a str,
    principal: Option<&'a crate::auth::Principal>,
}

impl<'a> Case<'a> {
    fn new(raw: &str) -> Case<'a> {
        Case {
            head: head(raw),
            body: b"",
            params: &[],
            route_key: "$default",
            stage_variables: &[],
            stage: super::DEFAULT_STAGE,
            request_id: b"req-1",
            facts: plain(),
            client_ip: None,
            now: at_millis(1_583_348_638_390),
            api_id: super::DEFAULT_API_ID,
            account_id: super::LOCAL_ACCOUNT_ID,
            principal: None,
        }
    }

    fn build(&self, format: PayloadFormat) -> Value {
        let input = EventInput {
            head: &self.head,
            body: self.body,
            params: self.params,
            route_key: self.route_key,
            stage: self.stage,
            stage_variables: self.stage_variables,
            request_id: self.request_id,
            facts: &self.facts,
            client_ip: self.client_ip,
            now: self.now,
            api_id: self.api_id,
            account_id: self.account_id,
            principal: self.principal,
        };
        let bytes = event(format, &input);
        serde_json::from_slice(&bytes).expect("the event is JSON")
    }
}

/// Removes `keys` from the object at `path` of `v`.
fn remove(v: &mut Value, path: &[&str], keys: &[&str]) {
    let mut at = v;
    for p in path {
        at = at.get_mut(*p).expect("path exists");
    }
    let obj = at.as_object_mut().expect("an object");
    for k in keys {
        obj.remove(*k);
    }
}

/// Fields the example's request must carry (HTTP/1.1 needs `host`; a body needs its length;
/// the user agent is `requestContext.http.userAgent`) or that API Gateway (and tollgate)
/// add (`x-forwarded-*`), which AWS's abridged example does not list.
const UNLISTED: &[&str] = &[
    "host",
    "user-agent",
    "content-type",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-request-id",
];

#[test]
fn payload_2_0_matches_aws_example() {
    let raw = "POST /my/path?parameter1=value1&parameter1=value2&parameter2=value HTTP/1.1\r\n\
               Host: id.execute-api.us-east-1.amazonaws.com\r\n\
               Header1: value1\r\n\
               Header2: value1\r\n\
               Header2: value2\r\n\
               Cookie: cookie1; cookie2\r\n\
               User-Agent: agent\r\n\
               Content-Type: text/plain\r\n\
               Content-Length: 17\r\n\r\n";
    let mut case = Case::new(raw);
    case.body = b"Hello from Lambda";
    case.params = &[("parameter1", b"value1")];
    case.stage_variables = &[("stageVariable1", "value1"), ("stageVariable2", "value2")];
    case.request_id = b"id";
    case.facts = with_cert();
    case.api_id = "api-id";
    case.account_id = "123456789012";
    // the example's JWT authorizer
    let jwt = jwt_principal(
        json!({ "claim1": "value1", "claim2": "value2" }),
        &["scope1", "scope2"],
    );
    case.principal = Some(&jwt);
    let mut got = case.build(PayloadFormat::V2);
    let mut want = fixture("payload-2.0.json");

    remove(&mut got, &["headers"], UNLISTED);
    // tollgate keeps no PEM of the client certificate (see event.rs)
    remove(
        &mut want,
        &["requestContext", "authentication", "clientCert"],
        &["clientCertPem"],
    );
    // AWS's example contradicts itself: its timeEpoch is 04/Mar/2020:19:03:58, not 12/Mar
    want["requestContext"]["time"] = json!("04/Mar/2020:19:03:58 +0000");
    assert_eq!(got, want);
}

#[test]
fn payload_1_0_matches_aws_example() {
    let raw = "GET /my/path?parameter1=value1&parameter1=value2&parameter2=value HTTP/1.1\r\n\
               Host: id.execute-api.us-east-1.amazonaws.com\r\n\
               Header1: value1\r\n\
               Header2: value1\r\n\
               Header2: value2\r\n\
               User-Agent: user-agent\r\n\
               Content-Type: text/plain\r\n\
               Content-Length: 18\r\n\r\n";
    let mut case = Case::new(raw);
    case.body = b"Hello from Lambda!";
    case.route_key = "GET /my/path";
    case.request_id = b"id=";
    case.facts = with_cert();
    case.now = at_millis(1_583_349_317_135);
    case.api_id = "id";
    case.account_id = "123456789012";
    let mut got = case.build(PayloadFormat::V1);
    let mut want = fixture("payload-1.0.json");

    remove(&mut got, &["headers"], UNLISTED);
    remove(&mut got, &["multiValueHeaders"], UNLISTED);
    remove(
        &mut want,
        &["requestContext", "identity", "clientCert"],
        &["clientCertPem"],
    );
    // the extended id is API Gateway's own second id; tollgate has one request id
    want["requestContext"]["extendedRequestId"] = json!("id=");
    // the HTTP API page shows the first of a repeated query parameter, the REST API page
    // (and its worked example, `multivalueName`) the last; tollgate follows the documented rule
    want["queryStringParameters"]["parameter1"] = json!("value2");
    assert_eq!(got, want);
}

#[test]
fn bodies_are_text_or_base64_by_content_type() {
    let post = |ct: Option<&str>, body: &'static [u8]| {
        let ct = ct.map_or(String::new(), |c| format!("Content-Type: {c}\r\n"));
        let raw = format!(
            "POST /b HTTP/1.1\r\nHost: h\r\n{ct}Content-Length: {}\r\n\r\n",
            body.len()
        );
        let mut case = Case::new(&raw);
        case.body = body;
        (case.build(PayloadFormat::V2), case.build(PayloadFormat::V1))
    };
    for ct in [
        "text/plain",
        "text/html; charset=utf-8",
        "Application/JSON",
        "application/problem+json",
        "image/svg+xml",
        "application/xml",
        "application/javascript",
        "application/x-www-form-urlencoded",
    ] {
        let (v2, v1) = post(Some(ct), b"a=1&b=\xc3\xa9");
        assert_eq!(v2["body"], json!("a=1&b=\u{e9}"), "{ct}");
        assert_eq!(v2["isBase64Encoded"], json!(false), "{ct}");
        assert_eq!(v1["body"], json!("a=1&b=\u{e9}"), "{ct}");
        assert_eq!(v1["isBase64Encoded"], json!(false), "{ct}");
    }
    for ct in [Some("application/octet-stream"), Some("image/png"), None] {
        let (v2, v1) = post(ct, b"\x00\x01\xff");
        assert_eq!(v2["body"], json!("AAH/"), "{ct:?}");
        assert_eq!(v2["isBase64Encoded"], json!(true), "{ct:?}");
        assert_eq!(v1["body"], json!("AAH/"), "{ct:?}");
        assert_eq!(v1["isBase64Encoded"], json!(true), "{ct:?}");
    }
    // text-like but not UTF-8: base64 (JSON strings cannot carry the bytes)
    let (v2, _) = post(Some("text/plain"), b"\xff");
    assert_eq!(v2["body"], json!("/w=="));
    assert_eq!(v2["isBase64Encoded"], json!(true));
    // an empty body: 2.0 omits it, 1.0 says null
    let (v2, v1) = post(Some("text/plain"), b"");
    assert!(v2.get("body").is_none());
    assert_eq!(v2["isBase64Encoded"], json!(false));
    assert_eq!(v1["body"], Value::Null);
    assert_eq!(v2["headers"]["content-length"], json!("0"));
}

#[test]
fn absent_parts_are_omitted_in_2_0_and_null_in_1_0() {
    let case = Case::new("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    let v2 = case.build(PayloadFormat::V2);
    for k in [
        "cookies",
        "queryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ] {
        assert!(v2.get(k).is_none(), "2.0 {k}");
    }
    assert_eq!(v2["rawQueryString"], json!(""));
    assert_eq!(v2["routeKey"], json!("$default"));
    assert!(v2["requestContext"].get("authentication").is_none());
    // no body framing: no content-length
    assert!(v2["headers"].get("content-length").is_none());
    let v1 = case.build(PayloadFormat::V1);
    for k in [
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ] {
        assert_eq!(v1[k], Value::Null, "1.0 {k}");
    }
    assert_eq!(v1["resource"], json!("$default"));
    assert_eq!(v1["requestContext"]["resourceId"], Value::Null);
    assert!(v1["requestContext"]["identity"].get("clientCert").is_none());
    // `?` with nothing after it: no parameters either
    let v2 = Case::new("GET /?& HTTP/1.1\r\nHost: h\r\n\r\n").build(PayloadFormat::V2);
    assert!(v2.get("queryStringParameters").is_none());
    assert_eq!(v2["rawQueryString"], json!("&"));
}

#[test]
fn cookies_move_out_of_the_headers_in_2_0_only() {
    let raw = "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2\r\nCookie: c=3;;d=4 \r\n\r\n";
    let case = Case::new(raw);
    let v2 = case.build(PayloadFormat::V2);
    assert_eq!(v2["cookies"], json!(["a=1", "b=2", "c=3", "d=4"]));
    assert!(v2["headers"].get("cookie").is_none());
    let v1 = case.build(PayloadFormat::V1);
    assert!(v1.get("cookies").is_none());
    // one list again (an HTTP/2 client sends a field per cookie: RFC 9113 §8.2.3)
    assert_eq!(v1["headers"]["cookie"], json!("a=1; b=2; c=3;;d=4"));
    assert_eq!(
        v1["multiValueHeaders"]["cookie"],
        json!(["a=1; b=2; c=3;;d=4"])
    );
}

#[test]
fn repeated_headers_are_joined_or_listed() {
    let raw =
        "GET / HTTP/1.1\r\nHost: h\r\nAccept: a/b\r\nX-Tag: 1\r\naccept: c/d\r\nX-TAG: 2\r\n\r\n";
    let case = Case::new(raw);
    let v2 = case.build(PayloadFormat::V2);
    assert_eq!(v2["headers"]["accept"], json!("a/b,c/d"));
    assert_eq!(v2["headers"]["x-tag"], json!("1,2"));
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(v1["headers"]["accept"], json!("c/d"));
    assert_eq!(v1["multiValueHeaders"]["accept"], json!(["a/b", "c/d"]));
    assert_eq!(v1["multiValueHeaders"]["x-tag"], json!(["1", "2"]));
}

#[test]
fn hop_by_hop_fields_are_hidden_and_forwarding_fields_set() {
    let raw = "POST / HTTP/1.1\r\nHost: h:8080\r\nConnection: keep-alive, x-secret\r\n\
               X-Secret: s\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\
               X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n\
               X-Forwarded-Port: 1\r\n\r\n";
    let mut case = Case::new(raw);
    case.body = b"abc";
    let v2 = case.build(PayloadFormat::V2);
    let h = &v2["headers"];
    for gone in ["connection", "x-secret", "transfer-encoding", "te"] {
        assert!(h.get(gone).is_none(), "{gone}");
    }
    // the decoded body's length, as the function sees it
    assert_eq!(h["content-length"], json!("3"));
    assert_eq!(h["x-forwarded-for"], json!("203.0.113.9,192.0.2.1"));
    assert_eq!(h["x-forwarded-proto"], json!("http"));
    assert_eq!(h["x-forwarded-port"], json!("8080"));
    assert_eq!(h["host"], json!("h:8080"));
    assert_eq!(h["x-request-id"], json!("req-1"));
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(
        v1["multiValueHeaders"]["x-forwarded-for"],
        json!(["203.0.113.9", "192.0.2.1"])
    );
    assert_eq!(v1["headers"]["x-forwarded-port"], json!("8080"));
}

#[test]
fn query_strings_are_raw_and_decoded() {
    let raw = "GET /q?a=1&a=2&b=x%20y+z&c&%E2%9C%93=%26&=lost HTTP/1.1\r\nHost: h\r\n\r\n";
    let case = Case::new(raw);
    let v2 = case.build(PayloadFormat::V2);
    assert_eq!(
        v2["rawQueryString"],
        json!("a=1&a=2&b=x%20y+z&c&%E2%9C%93=%26&=lost")
    );
    assert_eq!(
        v2["queryStringParameters"],
        json!({"a": "1,2", "b": "x y z", "c": "", "\u{2713}": "&"})
    );
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(
        v1["queryStringParameters"],
        json!({"a": "2", "b": "x y z", "c": "", "\u{2713}": "&"})
    );
    assert_eq!(
        v1["multiValueQueryStringParameters"],
        json!({"a": ["1", "2"], "b": ["x y z"], "c": [""], "\u{2713}": ["&"]})
    );
}

#[test]
fn path_parameters_are_decoded_and_greedy_names_plain() {
    let raw = "GET /hello/a%20b/c%2Fd+e HTTP/1.1\r\nHost: h\r\n\r\n";
    let mut case = Case::new(raw);
    case.route_key = "ANY /hello/{proxy+}";
    case.params = &[("proxy+", b"a%20b/c%2Fd+e"), ("bad", b"%zz%4%")];
    let v2 = case.build(PayloadFormat::V2);
    // `%` without two hex digits stays as it is
    assert_eq!(
        v2["pathParameters"],
        json!({"proxy": "a b/c/d+e", "bad": "%zz%4%"})
    );
    // 2.0's paths are decoded, as AWS's HTTP APIs deliver them; 1.0's stay as received
    assert_eq!(v2["rawPath"], json!("/hello/a b/c/d+e"));
    assert_eq!(
        v2["requestContext"]["http"]["path"],
        json!("/hello/a b/c/d+e")
    );
    assert_eq!(v2["routeKey"], json!("ANY /hello/{proxy+}"));
    assert_eq!(
        v2["requestContext"]["routeKey"],
        json!("ANY /hello/{proxy+}")
    );
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(
        v1["pathParameters"],
        json!({"proxy": "a b/c/d+e", "bad": "%zz%4%"})
    );
    assert_eq!(v1["resource"], json!("/hello/{proxy+}"));
    assert_eq!(v1["path"], json!("/hello/a%20b/c%2Fd+e"));
    assert_eq!(v1["requestContext"]["path"], json!("/hello/a%20b/c%2Fd+e"));
    assert_eq!(
        v1["requestContext"]["resourcePath"],
        json!("/hello/{proxy+}")
    );
    assert_eq!(v1["path"], json!("/hello/a%20b/c%2Fd+e"));
}

#[test]
fn methods_and_protocols_are_as_received() {
    for (raw, method, proto) in [
        ("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", "HEAD", "HTTP/1.1"),
        (
            "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            "OPTIONS",
            "HTTP/1.1",
        ),
        ("GET /x HTTP/1.0\r\n\r\n", "GET", "HTTP/1.0"),
    ] {
        let case = Case::new(raw);
        let v2 = case.build(PayloadFormat::V2);
        assert_eq!(v2["requestContext"]["http"]["method"], json!(method));
        assert_eq!(v2["requestContext"]["http"]["protocol"], json!(proto));
        let v1 = case.build(PayloadFormat::V1);
        assert_eq!(v1["httpMethod"], json!(method));
        assert_eq!(v1["requestContext"]["httpMethod"], json!(method));
        assert_eq!(v1["requestContext"]["protocol"], json!(proto));
    }
    // an HTTP/2 client (the head was built by the HTTP/2 session)
    let mut case = Case::new("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    case.facts.protocol = Protocol::Http2;
    let v2 = case.build(PayloadFormat::V2);
    assert_eq!(v2["requestContext"]["http"]["protocol"], json!("HTTP/2.0"));
}

#[test]
fn request_context_from_facts_and_input() {
    let raw = "GET / HTTP/1.1\r\nHost: API.Example.com:8443\r\nUser-Agent: curl/8\r\n\r\n";
    let mut case = Case::new(raw);
    case.facts = ConnFacts::plain(
        "[2001:db8::7]:1".parse().unwrap(),
        "[::1]:8443".parse().unwrap(),
    );
    case.now = at_millis(1_700_000_000_123);
    let default = case.build(PayloadFormat::V2);
    assert_eq!(default["requestContext"]["stage"], json!("$default"));
    case.stage = "prod";
    case.api_id = "a1b2c3";
    case.account_id = "123456789012";
    let v2 = case.build(PayloadFormat::V2);
    let rc = &v2["requestContext"];
    assert_eq!(rc["domainName"], json!("API.Example.com"));
    assert_eq!(rc["domainPrefix"], json!("API"));
    assert_eq!(rc["http"]["sourceIp"], json!("2001:db8::7"));
    assert_eq!(rc["http"]["userAgent"], json!("curl/8"));
    assert_eq!(rc["requestId"], json!("req-1"));
    assert_eq!(rc["apiId"], json!("a1b2c3"));
    assert_eq!(rc["accountId"], json!("123456789012"));
    assert_eq!(rc["stage"], json!("prod"));
    assert_eq!(default["requestContext"]["apiId"], json!("tollgate"));
    assert_eq!(
        default["requestContext"]["accountId"],
        json!("000000000000")
    );
    assert_eq!(rc["time"], json!("14/Nov/2023:22:13:20 +0000"));
    assert_eq!(rc["timeEpoch"], json!(1_700_000_000_123u64));
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(
        v1["requestContext"]["requestTime"],
        json!("14/Nov/2023:22:13:20 +0000")
    );
    assert_eq!(
        v1["requestContext"]["requestTimeEpoch"],
        json!(1_700_000_000_123u64)
    );
    assert_eq!(
        v1["requestContext"]["identity"]["sourceIp"],
        json!("2001:db8::7")
    );
    assert_eq!(
        v1["requestContext"]["identity"]["userAgent"],
        json!("curl/8")
    );
    assert_eq!(v1["requestContext"]["domainPrefix"], json!("API"));
    assert_eq!(v1["requestContext"]["stage"], json!("prod"));
    assert_eq!(v1["requestContext"]["apiId"], json!("a1b2c3"));
    assert_eq!(v1["requestContext"]["accountId"], json!("123456789012"));
    // the client behind trusted proxies, as the request filter found it, is the sourceIp in
    // both formats (`x-forwarded-for` still ends with the peer, as the HTTP integration sends)
    case.client_ip = Some(crate::facts::PeerIp::of("198.51.100.9".parse().unwrap()));
    let v2 = case.build(PayloadFormat::V2);
    assert_eq!(
        v2["requestContext"]["http"]["sourceIp"],
        json!("198.51.100.9")
    );
    assert_eq!(v2["headers"]["x-forwarded-for"], json!("2001:db8::7"));
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(
        v1["requestContext"]["identity"]["sourceIp"],
        json!("198.51.100.9")
    );
    // a host without a dot is its own prefix; an IPv6 literal keeps its brackets; no user agent
    let case = Case::new("GET / HTTP/1.1\r\nHost: localhost:1\r\n\r\n");
    let rc = case.build(PayloadFormat::V2)["requestContext"].clone();
    assert_eq!(rc["domainName"], json!("localhost"));
    assert_eq!(rc["domainPrefix"], json!("localhost"));
    assert_eq!(rc["http"]["userAgent"], json!(""));
    let case = Case::new("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    let rc = case.build(PayloadFormat::V2)["requestContext"].clone();
    assert_eq!(rc["domainName"], json!("[::1]"));
    // HTTP/1.0 without a host: the address the client connected to
    let case = Case::new("GET / HTTP/1.0\r\n\r\n");
    let rc = case.build(PayloadFormat::V2)["requestContext"].clone();
    assert_eq!(rc["domainName"], json!("10.0.0.1"));
}

#[test]
fn client_certificates_appear_in_both_formats() {
    let mut case = Case::new("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    case.facts = with_cert();
    let cert = json!({
        "subjectDN": "www.example.com",
        "issuerDN": "Example issuer",
        "serialNumber": "a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1",
        "validity": {"notBefore": "May 28 12:30:02 2019 GMT", "notAfter": "Aug  5 09:36:04 2021 GMT"}
    });
    let v2 = case.build(PayloadFormat::V2);
    assert_eq!(v2["requestContext"]["authentication"]["clientCert"], cert);
    assert_eq!(v2["headers"]["x-forwarded-proto"], json!("https"));
    assert_eq!(v2["headers"]["x-forwarded-port"], json!("443"));
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(v1["requestContext"]["identity"]["clientCert"], cert);
    // TLS without a client certificate: none
    let mut case = Case::new("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    let mut facts = with_cert();
    if let Some(tls) = facts.tls.as_mut() {
        tls.client_cert = None;
    }
    case.facts = facts;
    assert!(case.build(PayloadFormat::V2)["requestContext"]
        .get("authentication")
        .is_none());
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    // obs-text in a field value (RFC 9110 §5.5 allows it), a percent-encoded invalid sequence
    let raw = b"GET /p/%FF?k%FF=v%C3 HTTP/1.1\r\nHost: h\r\nX-Bin: a\xffb\r\n\r\n";
    let mut case = Case::new(std::str::from_utf8(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap());
    case.head = {
        let mut buf = BytesMut::from(&raw[..]);
        parse_request(&mut buf, &Limits::default())
            .expect("valid")
            .expect("complete")
    };
    case.params = &[("id", b"%FF")];
    case.request_id = b"r\xff";
    for format in [PayloadFormat::V2, PayloadFormat::V1] {
        let v = case.build(format);
        assert_eq!(v["pathParameters"]["id"], json!("\u{fffd}"));
        let h = if format == PayloadFormat::V2 {
            "headers"
        } else {
            "multiValueHeaders"
        };
        let got = &v[h]["x-bin"];
        let want = if format == PayloadFormat::V2 {
            json!("a\u{fffd}b")
        } else {
            json!(["a\u{fffd}b"])
        };
        assert_eq!(got, &want);
        assert_eq!(v["queryStringParameters"]["k\u{fffd}"], json!("v\u{fffd}"));
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Field lines, request targets and bodies the parser accepts, mixed with awkward bytes.
    fn field() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "Cookie",
                "Host",
                "Content-Type",
                "User-Agent",
                "X-Forwarded-For",
                "X-A",
                "Accept",
                "Connection",
                "X-Forwarded-Port",
            ]),
            "[ -~\u{80}-\u{ff}]{0,24}",
        )
            .prop_map(|(n, v)| format!("{n}: {v}\r\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Any head the parser accepts, any body and any parameters make a JSON event in both
        /// formats, without a panic.
        #[test]
        fn event_never_panics(
            method in prop::sample::select(vec!["GET", "POST", "HEAD", "OPTIONS", "DELETE"]),
            path in "/[a-zA-Z0-9%+._~!$&'()*,;=:@/-]{0,30}",
            query in proptest::option::of("[a-zA-Z0-9%+=&._~-]{0,30}"),
            fields in prop::collection::vec(field(), 0..8),
            body in prop::collection::vec(any::<u8>(), 0..64),
            param in prop::collection::vec(any::<u8>(), 0..16),
            h2 in any::<bool>(),
        ) {
            let target = match &query {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            };
            let mut raw: Vec<u8> = format!("{method} {target} HTTP/1.1\r\nHost: h\r\n").into_bytes();
            for f in &fields {
                // the strategy's chars above 0x7f stand for single obs-text bytes
                raw.extend(f.chars().map(|c| c as u32 as u8));
            }
            raw.extend_from_slice(b"\r\n");
            let mut buf = BytesMut::from(&raw[..]);
            let Ok(Some(head)) = parse_request(&mut buf, &Limits::default()) else {
                return Ok(());
            };
            let mut facts = with_cert();
            if h2 {
                facts.protocol = Protocol::Http2;
            }
            let params = [("proxy+", &param[..])];
            let input = EventInput {
                head: &head,
                body: &body,
                params: &params,
                route_key: "ANY /{proxy+}",
                stage: "$default",
                stage_variables: &[("a", "b")],
                request_id: &param,
                facts: &facts,
                client_ip: None,
                now: SystemTime::now(),
                api_id: "x",
                account_id: "y",
                principal: None,
            };
            for format in [PayloadFormat::V2, PayloadFormat::V1] {
                let bytes = event(format, &input);
                let v: Value = serde_json::from_slice(&bytes).expect("JSON");
                prop_assert!(v.is_object());
            }
        }
    }
}

fn jwt_principal(claims: Value, scopes: &[&str]) -> crate::auth::Principal {
    crate::auth::Principal {
        authorizer: 0,
        id: claims["sub"].as_str().unwrap_or_default().into(),
        identity: crate::auth::Identity::Jwt {
            claims: claims.as_object().cloned().unwrap_or_default(),
            scopes: scopes.iter().map(|s| Box::from(*s)).collect(),
        },
        throttle: None,
    }
}

fn lambda_principal() -> crate::auth::Principal {
    crate::auth::Principal {
        authorizer: 1,
        id: "user-7".into(),
        identity: crate::auth::Identity::Lambda {
            context: json!({ "tenant": "t-42", "tier": 3, "admin": true, "groups": ["a"] })
                .as_object()
                .cloned()
                .unwrap_or_default(),
        },
        throttle: None,
    }
}

fn iam_principal() -> crate::auth::Principal {
    crate::auth::Principal {
        authorizer: 2,
        id: "arn:aws:iam::123456789012:user/bob".into(),
        identity: crate::auth::Identity::Iam {
            access_key: "AKIDEXAMPLE".into(),
            user_arn: "arn:aws:iam::123456789012:user/bob".into(),
            account_id: "123456789012".into(),
        },
        throttle: None,
    }
}

const GET: &str = "GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n";

#[test]
fn jwt_claims_and_scopes_in_both_formats() {
    let p = jwt_principal(
        json!({
            "sub": "alice", "exp": 1_900_000_000u64, "email_verified": true,
            "cognito:groups": ["admin", "ops"], "address": { "country": "NZ" }, "gone": null,
        }),
        &["read", "write"],
    );
    let mut case = Case::new(GET);
    case.principal = Some(&p);
    // AWS renders every claim as a string, arrays as `[a b]`
    let claims = json!({
        "sub": "alice", "exp": "1900000000", "email_verified": "true",
        "cognito:groups": "[admin ops]", "address": "{\"country\":\"NZ\"}",
    });
    let v2 = case.build(PayloadFormat::V2);
    assert_eq!(
        v2["requestContext"]["authorizer"],
        json!({ "jwt": { "claims": claims, "scopes": ["read", "write"] } })
    );
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(
        v1["requestContext"]["authorizer"],
        json!({ "claims": claims, "scopes": ["read", "write"] })
    );
    // a token without scopes
    let p = jwt_principal(json!({ "sub": "bob" }), &[]);
    case.principal = Some(&p);
    let v2 = case.build(PayloadFormat::V2);
    assert_eq!(
        v2["requestContext"]["authorizer"],
        json!({ "jwt": { "claims": { "sub": "bob" }, "scopes": null } })
    );
    // the identity stays as without an authorizer
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(v1["requestContext"]["identity"]["userArn"], Value::Null);
}

#[test]
fn request_authorizer_context_in_both_formats() {
    let p = lambda_principal();
    let mut case = Case::new(GET);
    case.principal = Some(&p);
    let v2 = case.build(PayloadFormat::V2);
    assert_eq!(
        v2["requestContext"]["authorizer"],
        json!({ "lambda": { "tenant": "t-42", "tier": 3, "admin": true, "groups": ["a"] } })
    );
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(
        v1["requestContext"]["authorizer"],
        json!({ "tenant": "t-42", "tier": 3, "admin": true, "groups": ["a"], "principalId": "user-7" })
    );
}

#[test]
fn iam_caller_in_both_formats() {
    let p = iam_principal();
    let arn = "arn:aws:iam::123456789012:user/bob";
    let mut case = Case::new(GET);
    case.principal = Some(&p);
    let v2 = case.build(PayloadFormat::V2);
    assert_eq!(
        v2["requestContext"]["authorizer"],
        json!({ "iam": {
            "accessKey": "AKIDEXAMPLE", "accountId": "123456789012", "callerId": arn,
            "cognitoIdentity": null, "principalOrgId": null, "userArn": arn, "userId": arn,
        } })
    );
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(
        v1["requestContext"]["authorizer"],
        json!({ "claims": null, "scopes": null })
    );
    let id = &v1["requestContext"]["identity"];
    assert_eq!(id["accessKey"], "AKIDEXAMPLE");
    assert_eq!(id["accountId"], "123456789012");
    assert_eq!(id["caller"], arn);
    assert_eq!(id["user"], arn);
    assert_eq!(id["userArn"], arn);
    assert_eq!(id["cognitoIdentityId"], Value::Null);
}

#[test]
fn without_a_principal_the_authorizer_is_absent_in_2_0_and_null_in_1_0() {
    let case = Case::new(GET);
    let v2 = case.build(PayloadFormat::V2);
    assert!(v2["requestContext"].get("authorizer").is_none(), "{v2}");
    let v1 = case.build(PayloadFormat::V1);
    assert_eq!(
        v1["requestContext"]["authorizer"],
        json!({ "claims": null, "scopes": null })
    );
    for k in ["accessKey", "accountId", "caller", "user", "userArn"] {
        assert_eq!(v1["requestContext"]["identity"][k], Value::Null, "{k}");
    }
}
