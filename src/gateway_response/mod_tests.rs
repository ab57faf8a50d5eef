//! `customise` on a worker: which response applies (the type's, its fallback, none), the
//! status, the fields kept and added, the body, and the failure's words in it.

use bytes::BytesMut;

use super::*;
use crate::throttle::worker::Throttled;

fn head(raw: &str) -> RequestHead {
    let mut b = BytesMut::from(raw.as_bytes());
    crate::http::parse_request(&mut b, &crate::http::Limits::default())
        .unwrap()
        .unwrap()
}

const ROUTE: &str = "[[route]]\nkey = \"GET /x\"\nmock = {}\n";

/// What the client would get: status, fields (lower-case names, in order), body; and whether
/// the rate-limit fields are to be added.
struct Sent {
    status: u16,
    fields: Vec<(String, String)>,
    body: String,
    rate_limit: bool,
}

impl Sent {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `e` answered on a gateway configured with `gateway_responses`, for `GET /x` with
/// `x-request-id: rid-7` (and `prepared` as the phase's own refusal, if any).
fn answer(
    gateway_responses: &str,
    e: GatewayError,
    detail: Option<&str>,
    prepared: Option<MockResponse>,
) -> Sent {
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .build()
        .unwrap();
    rt.block_on(async move {
        let w = crate::testkit::worker(&format!("{ROUTE}{gateway_responses}"));
        let g = w.current();
        let cx = Cx { w: &w, g: &g };
        let h = head("GET /x HTTP/1.1\r\nhost: a\r\nx-request-id: rid-7\r\nx-user: u\"1\r\n\r\n");
        let mut st = ExchangeState::new(&cx, &h);
        st.error = Some(e);
        st.detail = detail.map(Into::into);
        let facts = ConnFacts::plain(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let r = match prepared {
            Some(m) => Response::held(m),
            None => match (detail, e.detail_is_message()) {
                (Some(d), true) => Response::held(MockResponse::json_message(e.status(), d)),
                _ => Response::error(e),
            },
        };
        let out = customise(&cx, &facts, &h, &st, &e, r);
        let (fields, body) = match &out.source {
            Source::Error(e) => (Vec::new(), e.body().to_string()),
            Source::Held(m) => (
                m.fields()
                    .map(|(n, v)| {
                        (
                            String::from_utf8_lossy(n).to_ascii_lowercase(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect(),
                String::from_utf8_lossy(&m.body).into_owned(),
            ),
            _ => panic!("an error answered by an origin"),
        };
        Sent {
            status: out.status,
            fields,
            body,
            rate_limit: out.added.rate_limit.is_some(),
        }
    })
}

fn throttled() -> GatewayError {
    GatewayError::Throttled(Throttled {
        level: crate::throttle::Level::Route,
        rate: 1.0,
        burst: 1,
        retry_after_ns: 2_000_000_000,
    })
}

#[test]
fn without_gateway_responses_the_standard_answer_goes() {
    let s = answer("", throttled(), None, None);
    assert_eq!(s.status, 429);
    assert_eq!(s.body, r#"{"message":"Too Many Requests"}"#);
    assert!(s.fields.is_empty(), "still the standard error");
    // configured for another type, without a fallback: standard too
    let s = answer(
        "[[gateway_response]]\ntype = \"UNAUTHORIZED\"\nstatus = 403\n",
        throttled(),
        None,
        None,
    );
    assert_eq!((s.status, s.fields.len()), (429, 0));
}

#[test]
fn the_type_s_own_response_status_headers_and_body() {
    let cfg = r#"
[[gateway_response]]
type = "THROTTLED"
status = 503
headers = { "x-why" = "$context.error.responseType", "x-id" = "method.request.header.x-request-id", "x-static" = "'a $b'" }
body = '{"error":"$context.error.message","id":"$context.requestId","user":"$request.header.x-user"}'
"#;
    let s = answer(cfg, throttled(), None, None);
    assert_eq!(s.status, 503);
    assert_eq!(
        s.body,
        r#"{"error":"Too Many Requests","id":"rid-7","user":"u\"1"}"#
    );
    assert_eq!(s.field("content-type"), Some("application/json"));
    assert_eq!(s.field("x-why"), Some("THROTTLED"));
    assert_eq!(s.field("x-id"), Some("rid-7"));
    assert_eq!(s.field("x-static"), Some("a $b"));
    assert!(
        s.rate_limit,
        "the throttled response keeps its rate-limit fields"
    );
    // a response naming one of them replaces tollgate's
    let s = answer(
        "[[gateway_response]]\ntype = \"THROTTLED\"\nheaders = { \"Retry-After\" = \"'60'\" }\n",
        throttled(),
        None,
        None,
    );
    assert_eq!(
        s.status, 429,
        "the failure's status when none is configured"
    );
    assert!(!s.rate_limit);
    assert_eq!(s.field("retry-after"), Some("60"));
    // no body configured: the standard one, with its content-type
    assert_eq!(s.body, r#"{"message":"Too Many Requests"}"#);
    assert_eq!(s.field("content-type"), Some("application/json"));
}

#[test]
fn the_fallback_is_by_status_and_keeps_the_failure_s_own_fields() {
    let cfg = r#"
[[gateway_response]]
type = "DEFAULT_4XX"
body = "$context.error.responseType: $context.error.message"
content_type = "text/plain"

[[gateway_response]]
type = "DEFAULT_5XX"
status = 500
"#;
    let s = answer(cfg, GatewayError::Unauthorized, Some("jwt expired"), None);
    assert_eq!(s.status, 401);
    assert_eq!(
        s.body, "UNAUTHORIZED: Unauthorized",
        "the log's detail stays in the log"
    );
    assert_eq!(
        s.field("www-authenticate"),
        Some("Bearer"),
        "RFC 9110 §15.5.2"
    );
    assert_eq!(s.field("content-type"), Some("text/plain"));
    assert_eq!(
        s.fields.iter().filter(|(n, _)| n == "content-type").count(),
        1
    );
    let s = answer(cfg, GatewayError::NoRoute, None, None);
    assert_eq!(
        (s.status, s.body.as_str()),
        (404, "RESOURCE_NOT_FOUND: Not Found")
    );
    let s = answer(cfg, GatewayError::WebSocketVersion, None, None);
    assert_eq!(s.status, 426);
    assert_eq!(s.field("upgrade"), Some("websocket"), "RFC 9110 §15.5.22");
    assert_eq!(s.body, "DEFAULT_4XX: Upgrade Required");
    // DEFAULT_5XX: its status for every 5xx without a type of its own
    let s = answer(cfg, GatewayError::UpstreamConnect, None, None);
    assert_eq!(
        (s.status, s.body.as_str()),
        (500, r#"{"message":"Bad Gateway"}"#)
    );
    let s = answer(cfg, GatewayError::UpstreamTimeout, None, None);
    assert_eq!(s.status, 500);
}

#[test]
fn the_failure_s_words_and_validation_details() {
    let cfg = r#"
[[gateway_response]]
type = "BAD_REQUEST_BODY"
status = 422
body = '{"m":$context.error.messageString,"v":"$context.error.validationErrorString"}'

[[gateway_response]]
type = "BAD_REQUEST_PARAMETERS"
body = '{"m":$context.error.messageString,"v":"$context.error.validationErrorString"}'

[[gateway_response]]
type = "REQUEST_TOO_LARGE"
body = '$context.error.messageString'
"#;
    // a body the validation phase refused: its details
    let prepared = MockResponse::build(
        400,
        [(&b"content-type"[..], &b"application/json"[..])],
        bytes::Bytes::from_static(
            br#"{"message":"Invalid request body","details":["name is required","age: \"x\" is not an integer"]}"#,
        ),
    );
    let s = answer(cfg, GatewayError::InvalidBody, None, Some(prepared));
    assert_eq!(s.status, 422);
    assert_eq!(
        s.body,
        r#"{"m":"Invalid request body","v":"[name is required, age: \"x\" is not an integer]"}"#
    );
    // a body that could not be read as JSON: the reason is the message
    let s = answer(
        cfg,
        GatewayError::BadRequestBody,
        Some("malformed JSON at 1:2"),
        None,
    );
    assert_eq!(
        (s.status, s.body.as_str()),
        (422, r#"{"m":"malformed JSON at 1:2","v":""}"#)
    );
    let why = "Missing required request parameters: [x-key]";
    let s = answer(cfg, GatewayError::MissingParameters, Some(why), None);
    assert_eq!(s.status, 400);
    assert_eq!(s.body, format!(r#"{{"m":"{why}","v":"{why}"}}"#));
    let s = answer(
        cfg,
        GatewayError::Http(crate::http::HttpError::BodyTooLarge),
        None,
        None,
    );
    assert_eq!(
        (s.status, s.body.as_str()),
        (413, r#""Request Entity Too Large""#)
    );
}
