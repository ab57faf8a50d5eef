use std::time::Duration;

use bytes::BytesMut;

use super::*;
use crate::accesslog::Entry;
use crate::http::RequestHead;

fn head(raw: &str) -> RequestHead {
    let mut b = BytesMut::from(raw.as_bytes());
    crate::http::parse_request(&mut b, &crate::http::Limits::default())
        .unwrap()
        .unwrap()
}

fn entry() -> Entry<'static> {
    Entry {
        request_id: b"rid-\"1\"",
        ip: b"10.0.0.1",
        time: 784_111_777,
        method: b"GET",
        route_key: "-",
        path: b"/x",
        status: 0,
        protocol: "HTTP/1.1",
        response_length: 0,
        latency: Duration::from_micros(1500),
        integration_latency: None,
        integration_status: None,
        error: Some("throttled".into()),
        user_agent: b"",
        api_key: None,
        request_length: 0,
        domain_name: b"api.example",
        raw_query: Some(b"q=1"),
        endpoint: None,
        tls: None,
        principal: None,
        authorizer_error: None,
        stage: "$default",
        api_id: "tollgate",
        canary: None,
    }
}

const ERR: ErrorVars<'static> = ErrorVars {
    message: "Too \"Many\" Requests",
    response_type: "THROTTLED",
    validation: "[a, b]",
};

/// `text` rendered for a request with `x-user: a"b\c` and `?q=1&w=x%22y`, as JSON or not.
fn render(text: &str, json: bool) -> String {
    let t = Template::compile(text).unwrap();
    let h = head("GET /x?q=1&w=x%22y HTTP/1.1\r\nhost: a\r\nx-user: a\"b\\c\r\n\r\n");
    let e = entry();
    let vars = Vars {
        head: &h,
        params: &[],
        entry: &e,
        body: None,
    };
    let mut out = Vec::new();
    t.render(&ERR, Some(&vars), json, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn error_variables_plain_and_braced() {
    assert_eq!(
        render("{\"message\":$context.error.messageString}", true),
        r#"{"message":"Too \"Many\" Requests"}"#
    );
    assert_eq!(
        render(
            "$context.error.responseType: ${context.error.message}!",
            false
        ),
        "THROTTLED: Too \"Many\" Requests!"
    );
    assert_eq!(
        render(
            "\"$context.error.message\" $context.error.validationErrorString",
            true
        ),
        r#""Too \"Many\" Requests" [a, b]"#
    );
    // a name followed by a dot or other text ends there
    assert_eq!(
        render("$context.error.responseType.x", false),
        "THROTTLED.x"
    );
    // `$context.errorMessage` is the access log's variable, not one of these
    assert_eq!(render("$context.errorMessage", false), "throttled");
}

#[test]
fn request_variables_are_escaped_in_json_only() {
    assert_eq!(
        render(
            "{\"u\":\"$request.header.x-user\",\"w\":\"$request.querystring.w\"}",
            true
        ),
        r#"{"u":"a\"b\\c","w":"x%22y"}"#
    );
    assert_eq!(render("$request.header.x-user", false), "a\"b\\c");
    assert_eq!(render("${request.path}?", true), "/x?");
    // `$context` values are escaped by the access log's vocabulary already: not twice
    assert_eq!(render("\"$context.requestId\"", true), r#""rid-\"1\"""#);
    // an absent header is empty
    assert_eq!(render("[$request.header.none]", true), "[]");
    // `$` that starts no variable is text
    assert_eq!(
        render("US$5 $$context.error.responseType", true),
        "US$5 $THROTTLED"
    );
}

#[test]
fn without_a_request_only_text_and_the_failure_render() {
    let t = Template::compile("$context.error.responseType $request.header.x").unwrap();
    assert!(t.reads_request());
    assert!(!t.reads_message());
    let mut out = Vec::new();
    t.render(&ERR, None, false, &mut out);
    assert_eq!(out, b"THROTTLED ");
    let t = Template::compile("$context.error.messageString").unwrap();
    assert!(t.reads_message() && !t.reads_request());
}

#[test]
fn unknown_or_unavailable_variables_are_errors_naming_them() {
    let e = |t: &str| Template::compile(t).unwrap_err();
    assert!(
        e("$context.error.nope").contains("$context.error.nope"),
        "{}",
        e("$context.error.nope")
    );
    assert!(e("${context.error.message").contains("unterminated"));
    assert!(e("${context.error.messages}").contains("$context.error.messages"));
    assert!(e("$context.nope").contains("$context.nope"));
    assert!(e("$context.error").contains("$context.error"));
    assert!(e("$request.cookie.a").contains("$request.cookie.a"));
    let p = e("$request.path.id");
    assert!(p.contains("every route") && p.contains("id"), "{p}");
    let b = e("$request.body.a");
    assert!(b.contains("$request.body"), "{b}");
    assert!(e("$stageVariables.x").contains("stage"));
}

#[test]
fn literal_templates_keep_dollars() {
    let t = Template::text("$context.error.nope");
    let mut out = Vec::new();
    t.render(&ERR, None, true, &mut out);
    assert_eq!(out, b"$context.error.nope");
    assert!(!t.reads_request() && !t.reads_message());
}

#[test]
fn field_values_cannot_break_the_line() {
    let t = Template::compile("  $context.error.message\r\nx: y\t ").unwrap();
    let err = ErrorVars {
        message: "a\nb",
        ..ERR
    };
    let mut out = Vec::new();
    t.render_field(&err, None, &mut out);
    assert_eq!(out, b"a b  x: y");
}

#[test]
fn json_escapes_follow_rfc_8259() {
    let mut out = Vec::new();
    push_json_escaped(&mut out, b"q\"\\\n\r\t\x01\x7f \xc3\xa9 \xff");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "q\\\"\\\\\\n\\r\\t\\u0001\u{7f} é \u{fffd}"
    );
}

#[test]
fn json_media_types() {
    assert!(is_json("application/json"));
    assert!(is_json("Application/JSON; charset=utf-8"));
    assert!(is_json("application/problem+json"));
    assert!(!is_json("text/plain"));
    assert!(!is_json("application/xml"));
}
