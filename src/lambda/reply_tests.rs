//! Every response shape of both payload formats, and what makes one malformed.

use super::{reply, PayloadFormat, ReplyError};
use crate::config::MockResponse;

fn ok(format: PayloadFormat, payload: &str) -> MockResponse {
    match reply(format, payload.as_bytes()) {
        Ok(m) => m,
        Err(e) => panic!("{payload}: {e}"),
    }
}

fn v2(payload: &str) -> MockResponse {
    ok(PayloadFormat::V2, payload)
}

fn v1(payload: &str) -> MockResponse {
    ok(PayloadFormat::V1, payload)
}

fn head(m: &MockResponse) -> &str {
    std::str::from_utf8(&m.head).expect("the head is text")
}

fn err(format: PayloadFormat, payload: &[u8]) -> String {
    match reply(format, payload) {
        Err(ReplyError::Malformed(why)) => why,
        Ok(m) => panic!("accepted: {}", head(&m)),
    }
}

#[test]
fn bare_values_are_200_json_with_the_payload_as_body() {
    for payload in [
        r#""Hello from Lambda!""#,
        r#"{ "message": "Hello from Lambda!" }"#,
        "42",
        "[1, 2]",
        "null",
        "true",
        // an object without statusCode, whatever else it has
        r#"{"body": "x", "headers": {"a": "b"}}"#,
    ] {
        let m = v2(payload);
        assert_eq!(m.status, 200);
        assert_eq!(
            head(&m),
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                payload.len()
            )
        );
        assert_eq!(&m.body[..], payload.as_bytes());
    }
}

#[test]
fn structured_2_0() {
    let m = v2(
        r#"{"statusCode": 201, "headers": {"X-A": "1", "x-n": 5, "x-b": true, "x-null": null,
            "Content-Type": "text/plain"}, "cookies": ["a=1; Path=/", "b=2"],
            "body": "created", "isBase64Encoded": false}"#,
    );
    assert_eq!(m.status, 201);
    let h = head(&m);
    assert!(h.starts_with("HTTP/1.1 201 Created\r\n"), "{h}");
    for line in [
        "X-A: 1\r\n",
        "x-n: 5\r\n",
        "x-b: true\r\n",
        "Content-Type: text/plain\r\n",
        "set-cookie: a=1; Path=/\r\n",
        "set-cookie: b=2\r\n",
        "content-length: 7\r\n",
    ] {
        assert!(h.contains(line), "{line:?} in {h}");
    }
    assert!(!h.contains("x-null"), "{h}");
    assert!(!h.contains("application/json"), "{h}");
    assert_eq!(&m.body[..], b"created");
    // the statusCode as a string, no headers, no body
    let m = v2(r#"{"statusCode": "404"}"#);
    assert_eq!(m.status, 404);
    assert_eq!(head(&m), "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n");
    assert!(m.body.is_empty());
    // body null, cookies null
    let m = v2(r#"{"statusCode": 200, "body": null, "cookies": null, "headers": null}"#);
    assert_eq!(head(&m), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n");
}

#[test]
fn a_body_without_content_type_is_json() {
    for format in [PayloadFormat::V2, PayloadFormat::V1] {
        let m = ok(format, r#"{"statusCode": 200, "body": "{\"a\":1}"}"#);
        assert_eq!(
            head(&m),
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n"
        );
        assert_eq!(&m.body[..], br#"{"a":1}"#);
    }
}

#[test]
fn base64_bodies_are_decoded() {
    let payload = r#"{"statusCode": 200, "headers": {"content-type": "image/png"},
                      "body": "iVBORw0KGgo=", "isBase64Encoded": true}"#;
    for format in [PayloadFormat::V2, PayloadFormat::V1] {
        let m = ok(format, payload);
        assert_eq!(&m.body[..], b"\x89PNG\r\n\x1a\n");
        assert!(head(&m).ends_with("content-length: 8\r\n"));
    }
    // padding is optional
    let m = v2(r#"{"statusCode": 200, "body": "AAH/AA", "isBase64Encoded": true}"#);
    assert_eq!(&m.body[..], b"\x00\x01\xff\x00");
    assert_eq!(
        err(
            PayloadFormat::V2,
            br#"{"statusCode": 200, "body": "!!", "isBase64Encoded": true}"#
        ),
        "body is not valid base64"
    );
}

#[test]
fn structured_1_0_merges_multi_value_headers() {
    let m = v1(r#"{"statusCode": 200,
        "headers": {"X-One": "h", "X-Both": "from-headers", "content-type": "text/plain"},
        "multiValueHeaders": {"x-both": ["m1", "m2"], "X-Many": ["a", 2, null]},
        "body": "hi"}"#);
    let h = head(&m);
    assert!(h.contains("X-One: h\r\n"), "{h}");
    assert!(!h.contains("from-headers"), "{h}");
    assert!(h.contains("x-both: m1\r\nx-both: m2\r\n"), "{h}");
    assert!(h.contains("X-Many: a\r\nX-Many: 2\r\n"), "{h}");
    assert_eq!(&m.body[..], b"hi");
    // 1.0 has no cookies member: ignored, as any unknown member
    let m = v1(r#"{"statusCode": 200, "cookies": ["a=1"], "extra": {}}"#);
    assert!(!head(&m).contains("set-cookie"));
    // 2.0 has no multiValueHeaders: ignored
    let m = v2(r#"{"statusCode": 200, "multiValueHeaders": {"x": ["1"]}}"#);
    assert!(!head(&m).contains("x: 1"));
}

#[test]
fn format_1_0_needs_a_status_code() {
    assert_eq!(
        err(PayloadFormat::V1, br#"{"body": "x"}"#),
        "statusCode missing"
    );
    assert_eq!(err(PayloadFormat::V1, br#""hello""#), "not a JSON object");
    assert_eq!(err(PayloadFormat::V1, b"[]"), "not a JSON object");
}

#[test]
fn statuses_outside_200_to_599_are_malformed() {
    for (payload, why) in [
        (
            r#"{"statusCode": 100}"#,
            "statusCode 100 is not in 200..=599",
        ),
        (
            r#"{"statusCode": 199}"#,
            "statusCode 199 is not in 200..=599",
        ),
        (
            r#"{"statusCode": 600}"#,
            "statusCode 600 is not in 200..=599",
        ),
        (
            r#"{"statusCode": 70000}"#,
            "statusCode 70000 is not in 200..=599",
        ),
        (r#"{"statusCode": -1}"#, "statusCode is not an integer"),
        (r#"{"statusCode": 200.5}"#, "statusCode is not an integer"),
        (r#"{"statusCode": "2OO"}"#, "statusCode is not an integer"),
        (r#"{"statusCode": null}"#, "statusCode missing"),
        (r#"{"statusCode": [200]}"#, "statusCode is not an integer"),
    ] {
        for format in [PayloadFormat::V2, PayloadFormat::V1] {
            assert_eq!(err(format, payload.as_bytes()), why, "{payload}");
        }
    }
    assert_eq!(v2(r#"{"statusCode": 599}"#).status, 599);
    assert_eq!(v2(r#"{"statusCode": 200}"#).status, 200);
}

#[test]
fn statuses_without_content_drop_the_body() {
    for status in [204, 304] {
        let payload = format!(
            r#"{{"statusCode": {status}, "body": "dropped", "headers": {{"etag": "\"x\""}}}}"#
        );
        let m = v2(&payload);
        assert_eq!(m.status, status);
        let h = head(&m);
        assert!(!h.contains("content-length"), "{h}");
        assert!(!h.contains("content-type"), "{h}");
        assert!(h.contains("etag: \"x\"\r\n"), "{h}");
        assert!(m.body.is_empty());
    }
}

#[test]
fn invalid_fields_make_the_reply_malformed() {
    for headers in [
        r#"{"bad name": "v"}"#,
        r#"{"": "v"}"#,
        r#"{"x(y)": "v"}"#,
        r#"{"x": "a\r\nInjected: 1"}"#,
        r#"{"x": "a\nb"}"#,
        r#"{"x": "a\u0000b"}"#,
        r#"{"x": "a\u007fb"}"#,
        r#"{"x\u00e9": "v"}"#,
    ] {
        let payload = format!(r#"{{"statusCode": 200, "headers": {headers}}}"#);
        for format in [PayloadFormat::V2, PayloadFormat::V1] {
            let why = err(format, payload.as_bytes());
            assert!(why.contains("is not a valid field"), "{headers}: {why}");
        }
    }
    for (payload, why) in [
        (
            r#"{"statusCode": 200, "headers": {"x": [1]}}"#,
            "headers.x must be a string",
        ),
        (
            r#"{"statusCode": 200, "headers": {"x": {}}}"#,
            "headers.x must be a string",
        ),
        (
            r#"{"statusCode": 200, "headers": []}"#,
            "headers must be an object",
        ),
        (
            r#"{"statusCode": 200, "cookies": "a=1"}"#,
            "cookies must be an array",
        ),
        (
            r#"{"statusCode": 200, "cookies": [1]}"#,
            "cookies must be strings",
        ),
        (
            r#"{"statusCode": 200, "body": {"a": 1}}"#,
            "body must be a string",
        ),
        (
            r#"{"statusCode": 200, "isBase64Encoded": "yes"}"#,
            "isBase64Encoded must be a boolean",
        ),
    ] {
        assert_eq!(err(PayloadFormat::V2, payload.as_bytes()), why, "{payload}");
    }
    for (payload, why) in [
        (
            r#"{"statusCode": 200, "multiValueHeaders": {"x": "1"}}"#,
            "multiValueHeaders.x must be a string",
        ),
        (
            r#"{"statusCode": 200, "multiValueHeaders": {"x": [[1]]}}"#,
            "multiValueHeaders.x must be a string",
        ),
        (
            r#"{"statusCode": 200, "multiValueHeaders": 3}"#,
            "multiValueHeaders must be an object",
        ),
    ] {
        assert_eq!(err(PayloadFormat::V1, payload.as_bytes()), why, "{payload}");
    }
    // a CR in a cookie is a field value like any other
    let why = err(
        PayloadFormat::V2,
        br#"{"statusCode": 200, "cookies": ["a=1\r\nx: y"]}"#,
    );
    assert!(why.contains("set-cookie"), "{why}");
}

#[test]
fn framing_and_tollgate_fields_are_dropped() {
    let m = v2(r#"{"statusCode": 200, "body": "abc", "headers": {
        "Content-Length": "999", "Transfer-Encoding": "chunked", "Connection": "close",
        "Keep-Alive": "timeout=5", "Upgrade": "h2c", "TE": "trailers", "Trailer": "x",
        "Proxy-Connection": "close", "Date": "Thu, 01 Jan 1970 00:00:00 GMT",
        "X-Request-Id": "forged", "X-Kept": " padded\t"}}"#);
    assert_eq!(
        head(&m),
        "HTTP/1.1 200 OK\r\nX-Kept: padded\r\ncontent-type: application/json\r\ncontent-length: 3\r\n"
    );
}

#[test]
fn not_json_is_malformed() {
    for format in [PayloadFormat::V2, PayloadFormat::V1] {
        assert_eq!(err(format, b""), "not JSON");
        assert_eq!(err(format, b"{"), "not JSON");
        assert_eq!(err(format, b"\xff"), "not JSON");
        assert_eq!(err(format, br#"{"statusCode": 200} trailing"#), "not JSON");
    }
}

#[test]
fn unknown_statuses_have_an_empty_reason() {
    let m = v2(r#"{"statusCode": 299}"#);
    assert!(head(&m).starts_with("HTTP/1.1 299 \r\n"), "{}", head(&m));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Arbitrary bytes never panic, and whatever is accepted is a well-formed head.
        #[test]
        fn reply_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            for format in [PayloadFormat::V2, PayloadFormat::V1] {
                if let Ok(m) = reply(format, &bytes) {
                    prop_assert!((200..=599).contains(&m.status));
                    prop_assert!(m.head.starts_with(b"HTTP/1.1 "));
                }
            }
        }

        /// Structured replies built from awkward parts: never a panic; an accepted head has
        /// only valid field lines and the body's length.
        #[test]
        fn reply_never_panics_on_shapes(
            status in prop::sample::select(vec!["0", "99", "100", "200", "204", "304", "599", "600", "\"201\"", "2e2", "null", "18446744073709551616"]),
            names in prop::collection::vec("[ -~\u{80}-\u{ff}]{0,6}", 0..4),
            values in prop::collection::vec("[\u{0}-\u{7f}\u{80}-\u{ff}]{0,8}", 0..4),
            body in "[ -~]{0,12}",
            base64 in any::<bool>(),
        ) {
            let mut headers = serde_json::Map::new();
            for (n, v) in names.iter().zip(values.iter()) {
                headers.insert(n.clone(), serde_json::Value::String(v.clone()));
            }
            let payload = format!(
                r#"{{"statusCode": {status}, "headers": {}, "multiValueHeaders": {{"m": {}}}, "cookies": {}, "body": {}, "isBase64Encoded": {base64}}}"#,
                serde_json::Value::Object(headers),
                serde_json::to_string(&values).unwrap(),
                serde_json::to_string(&values).unwrap(),
                serde_json::to_string(&body).unwrap(),
            );
            for format in [PayloadFormat::V2, PayloadFormat::V1] {
                if let Ok(m) = reply(format, payload.as_bytes()) {
                    let text = String::from_utf8_lossy(&m.head).into_owned();
                    for line in text.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
                        let (name, value) = line.split_once(": ").expect("a field line");
                        prop_assert!(crate::http::is_token(name.as_bytes()), "{}", line);
                        prop_assert!(value.bytes().all(crate::http::is_field_octet), "{}", line);
                    }
                    if crate::http::status_has_content(m.status) {
                        let length = format!("content-length: {}\r\n", m.body.len());
                        prop_assert!(text.ends_with(&length), "{}", text);
                    }
                }
            }
        }
    }
}

/// The fields the response filter adds when absent: a function's own
/// `strict-transport-security` is noted (so `tls.hsts` is not sent beside it), its `date` and
/// `x-request-id` are dropped (tollgate's own follow), and the held response reports it.
#[test]
fn the_fields_a_function_set_are_noted_for_the_response_filter() {
    let m = v2(
        r#"{"statusCode":200,"headers":{"Strict-Transport-Security":"max-age=5","date":"x","x-request-id":"mine"}}"#,
    );
    assert_eq!(
        head(&m),
        "HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=5\r\ncontent-length: 0\r\n"
    );
    let want = crate::http::Present {
        date: false,
        request_id: false,
        hsts: true,
    };
    assert_eq!(m.present, want);
    assert_eq!(crate::response::Response::held(m).present(), want);
    let plain = v1(r#"{"statusCode":200,"multiValueHeaders":{"x-a":["1"]}}"#);
    assert_eq!(plain.present, crate::http::Present::default());
    assert_eq!(v2(r#"{"a":1}"#).present, crate::http::Present::default());
}

/// A rendered head over `MAX_REPLY_HEAD_BYTES` is malformed; one just within it is sent.
#[test]
fn response_heads_are_bounded() {
    use super::reply::MAX_REPLY_HEAD_BYTES;
    let payload = |len: usize| {
        format!(
            r#"{{"statusCode":204,"headers":{{"x-big":"{}"}}}}"#,
            "a".repeat(len)
        )
    };
    // "HTTP/1.1 204 No Content\r\n" + "x-big: " + value + "\r\n"
    let fixed = "HTTP/1.1 204 No Content\r\n".len() + "x-big: \r\n".len();
    let fits = v2(&payload(MAX_REPLY_HEAD_BYTES - fixed));
    assert_eq!(fits.head.len(), MAX_REPLY_HEAD_BYTES);
    let why = err(
        PayloadFormat::V2,
        payload(MAX_REPLY_HEAD_BYTES - fixed + 1).as_bytes(),
    );
    assert_eq!(
        why,
        format!("response head larger than {MAX_REPLY_HEAD_BYTES} bytes")
    );
    // many cookies count as well
    let cookies = vec![format!("\"{}\"", "c".repeat(1000)); 70].join(",");
    let why = err(
        PayloadFormat::V2,
        format!(r#"{{"statusCode":200,"cookies":[{cookies}]}}"#).as_bytes(),
    );
    assert!(why.starts_with("response head larger than"), "{why}");
}

/// A payload over Lambda's 6 MB is no response, even though the Invoke answer is read with
/// some slack (for error documents); one of exactly 6 MB is.
#[test]
fn payloads_over_the_limit_are_refused() {
    use crate::config::functions::MAX_PAYLOAD_BYTES;
    let exact = format!("\"{}\"", "x".repeat(MAX_PAYLOAD_BYTES - 2));
    assert_eq!(v2(&exact).body.len(), MAX_PAYLOAD_BYTES);
    let over = format!("\"{}\"", "x".repeat(MAX_PAYLOAD_BYTES - 1));
    let why = err(PayloadFormat::V2, over.as_bytes());
    assert!(why.contains("over Lambda's"), "{why}");
}

/// 1.0 `multiValueHeaders` whose names differ only in case keep every value, and still replace
/// `headers`' entries of that name.
#[test]
fn multi_value_names_differing_in_case_keep_all_values() {
    let m = v1(
        r#"{"statusCode":200,"headers":{"set-cookie":"h=0","x-k":"kept"},"multiValueHeaders":{"Set-Cookie":["a=1"],"set-cookie":["b=2","c=3"],"SET-COOKIE":null}}"#,
    );
    assert_eq!(
        head(&m),
        "HTTP/1.1 200 OK\r\nx-k: kept\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nset-cookie: c=3\r\ncontent-length: 0\r\n"
    );
}
