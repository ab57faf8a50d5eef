//! `request_parameters` / `response_parameters` in the config: the issue's example compiles as
//! written; keys, targets, status keys and values parsed; reserved headers, conflicts, bad
//! operations and values refused naming the key and its line; which routes hold their body;
//! mock values compiled only where a `$` is.

use super::super::check_tests::errors;
use super::*;

fn config(text: &str) -> super::super::Config {
    super::super::from_str(text).unwrap_or_else(|e| panic!("{}\n{text}", e.render("t")))
}

const UPSTREAM: &str = "[[upstream]]\nname = \"orders\"\ntargets = [\"127.0.0.1:9\"]\n\n";

fn route(extra: &str) -> String {
    format!("{UPSTREAM}[[route]]\nkey = \"POST /orders/{{id}}\"\nupstream = \"orders\"\n{extra}\n")
}

#[test]
fn the_issue_example_compiles_as_written() {
    let c = config(&route(
        r#"request_parameters = { "append:header.x-user" = "$context.authorizer.claims.sub", "overwrite:path" = "/v2/orders/$request.path.id", "remove:querystring.debug" = "''", "overwrite:header.x-request-id" = "$context.requestId" }
response_parameters = { "500" = { "overwrite:statuscode" = "503", "append:header.retry-after" = "5" }, "200" = { "remove:header.server" = "''" } }"#,
    ));
    let m = &c.mapping.routes[0];
    // in the order written
    let targets: Vec<(Op, &Target)> = m.request.iter().map(|o| (o.op, &o.target)).collect();
    assert_eq!(
        targets,
        [
            (Op::Append, &Target::Header("x-user".into())),
            (Op::Overwrite, &Target::Path),
            (Op::Remove, &Target::Query("debug".into())),
            (Op::Overwrite, &Target::Header("x-request-id".into())),
        ]
    );
    assert!(!m.reads_body());
    assert_eq!(
        c.bodies.routes,
        vec![None],
        "no body value: the route streams"
    );
    let r500 = m.rule_for(500).unwrap();
    assert_eq!(r500.status, Some(503));
    assert_eq!(r500.headers.len(), 1);
    assert_eq!(r500.headers[0].fixed.as_deref(), Some(&b"5"[..]));
    assert_eq!(m.rule_for(200).unwrap().headers[0].op, Op::Remove);
    assert!(m.rule_for(404).is_none());
}

#[test]
fn exact_codes_win_over_classes() {
    let c = config(&route(
        r#"response_parameters = { "4xx" = { "append:header.x-class" = "4" }, "404" = { "append:header.x-exact" = "1" }, "5XX" = { "overwrite:statuscode" = "502" } }"#,
    ));
    let m = &c.mapping.routes[0];
    assert_eq!(m.rule_for(404).unwrap().key, StatusKey::Exact(404));
    assert_eq!(m.rule_for(418).unwrap().key, StatusKey::Class(4));
    assert_eq!(m.rule_for(504).unwrap().status, Some(502));
    assert!(m.rule_for(200).is_none());
}

#[test]
fn a_body_value_holds_the_body() {
    let c = config(&route(
        r#"request_parameters = { "overwrite:header.x-name" = "$request.body.pet.name" }"#,
    ));
    assert!(c.mapping.routes[0].reads_body());
    assert_eq!(
        c.bodies.routes,
        vec![Some(super::super::bodies::DEFAULT_MAX_BODY_BYTES)]
    );
}

#[test]
fn bad_keys_and_values_are_refused_naming_key_and_line() {
    let text = route(
        r#"request_parameters = { "prepend:header.a" = "x", "append:cookie.a" = "x", "append:header.bad name" = "x", "overwrite:querystring.a&b" = "x" }
response_parameters = { "600" = { "remove:header.a" = "''" }, "2XY" = { "remove:header.a" = "''" } }"#,
    );
    let got = errors(&text);
    let want: Vec<(usize, String, String)> = vec![
        (
            8,
            r#"route[0].request_parameters."prepend:header.a""#.into(),
            r#"unknown operation "prepend": append, overwrite or remove"#.into(),
        ),
        (
            8,
            r#"route[0].request_parameters."append:cookie.a""#.into(),
            r#"unknown target "cookie.a": header.NAME, querystring.NAME, path or statuscode"#
                .into(),
        ),
        (
            8,
            r#"route[0].request_parameters."append:header.bad name""#.into(),
            r#""bad name" is not a header name (RFC 9110 §5.1)"#.into(),
        ),
        (
            8,
            r#"route[0].request_parameters."overwrite:querystring.a&b""#.into(),
            r#""a&b" is not a query parameter name (no `&`, `=`, `#`, spaces or controls)"#.into(),
        ),
        (
            9,
            r#"route[0].response_parameters."2XY""#.into(),
            r#""2XY" is not a status code (200..=599) or class (2XX..5XX)"#.into(),
        ),
        (
            9,
            r#"route[0].response_parameters."600""#.into(),
            r#""600" is not a status code (200..=599) or class (2XX..5XX)"#.into(),
        ),
    ];
    let mut got = got;
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn reserved_headers_are_refused() {
    for (name, side) in [
        ("host", "request"),
        ("content-length", "request"),
        ("transfer-encoding", "response"),
        ("connection", "request"),
        ("te", "request"),
        ("upgrade", "response"),
        ("x-forwarded-for", "request"),
        ("x-amzn-trace-id", "request"),
        ("date", "response"),
        ("access-control-allow-origin", "response"),
    ] {
        let extra = match side {
            "request" => format!("request_parameters = {{ \"overwrite:header.{name}\" = \"x\" }}"),
            _ => format!(
                "response_parameters = {{ \"200\" = {{ \"overwrite:header.{name}\" = \"x\" }} }}"
            ),
        };
        let got = errors(&route(&extra));
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        assert_eq!(got[0].0, 8, "{name}");
        assert!(
            got[0].2.starts_with(&format!("header {name:?} ")),
            "{name}: {got:?}"
        );
    }
    // the gateway's own response fields are the client's business on requests
    config(&route(
        r#"request_parameters = { "overwrite:header.date" = "x", "remove:header.x-request-id" = "''" }"#,
    ));
}

#[test]
fn conflicting_operations_on_one_target_are_refused() {
    let text = route(
        "request_parameters = { \"append:header.X-User\" = \"a\", \"overwrite:header.x-user\" = \"b\", \"remove:querystring.q\" = \"''\", \"append:querystring.q\" = \"c\", \"append:querystring.Q\" = \"d\" }",
    );
    let got = errors(&text);
    // the header names are one (case-insensitive), the query names are not
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter()
            .all(|(l, _, m)| *l == 8 && m.contains("(line 8): one operation per target")),
        "{got:?}"
    );
    let keys: Vec<&str> = got.iter().map(|(_, k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&r#"route[0].request_parameters."overwrite:header.x-user""#),
        "{keys:?}"
    );
    assert!(
        keys.contains(&r#"route[0].request_parameters."append:querystring.q""#),
        "{keys:?}"
    );
}

#[test]
fn values_are_checked() {
    let cases = [
        (r#"request_parameters = { "remove:header.a" = "x" }"#, "remove takes no value: write '' (got \"x\")"),
        (r#"request_parameters = { "overwrite:header.a" = "''" }"#, "an empty value ('') adds nothing: use remove: to drop it"),
        (r#"request_parameters = { "append:path" = "/x" }"#, "path and statuscode take overwrite: only"),
        (r#"request_parameters = { "overwrite:statuscode" = "200" }"#, "statuscode is a response's: put it under response_parameters"),
        (r#"request_parameters = { "overwrite:header.a" = "$request.path.nope" }"#, "$request.path.nope: the route has no path parameter {nope}"),
        (r#"request_parameters = { "overwrite:header.a" = "$context.nope" }"#, "unknown variable $context.nope"),
        (r#"request_parameters = { "overwrite:header.a" = "$stageVariables.backend" }"#, "$stageVariables.backend: stage variables exist in routes of an [[api]] deployed by a [[stage]]"),
        (r#"request_parameters = { "append:header.x-request-id" = "a" }"#, "x-request-id has one value: use overwrite: or remove:"),
        (r#"response_parameters = { "200" = { "overwrite:statuscode" = "204" } }"#, "204 has no content (RFC 9110 §6.4.1): the response's framing would lie"),
        (r#"response_parameters = { "200" = { "overwrite:statuscode" = "99" } }"#, "must be in 200..=599 (got 99)"),
        (r#"response_parameters = { "200" = { "overwrite:statuscode" = "$context.status" } }"#, "\"$context.status\" is not a status code (a number, 200..=599)"),
        (r#"response_parameters = { "200" = { "append:querystring.a" = "1" } }"#, "a response has no path or query string: header.NAME or statuscode"),
        (r#"response_parameters = { "200" = { "append:header.a" = "$request.body.a" } }"#, "$request.body is not available here"),
        (r#"response_parameters = { "200" = { "append:header.a" = "$response.header.b" } }"#, "$response.* values are not supported: use static text, $context.* or $request.header / querystring / path"),
        (r#"response_parameters = { "304" = { "overwrite:statuscode" = "200" } }"#, "a 304 has no content (RFC 9110 §6.4.1): its status cannot be overwritten"),
    ];
    for (extra, want) in cases {
        let got = errors(&route(extra));
        assert_eq!(got.len(), 1, "{extra}: {got:?}");
        assert_eq!((got[0].0, got[0].2.as_str()), (8, want), "{extra}");
    }
}

#[test]
fn request_operations_need_an_upstream() {
    let text = "[[route]]\nkey = \"GET /m\"\nmock = {}\nrequest_parameters = { \"append:header.a\" = \"b\" }\n";
    let got = errors(text);
    assert_eq!(
        got,
        [(
            4,
            "route[0].request_parameters".to_string(),
            "request parameters apply to routes with an upstream (a mock or a function gets the request as sent)".to_string()
        )]
    );
    // responses of a mock are mapped
    config("[[route]]\nkey = \"GET /m\"\nmock = {}\nresponse_parameters = { \"200\" = { \"append:header.a\" = \"b\" } }\n");
}

#[test]
fn mock_values_compile_only_where_a_dollar_is() {
    let c = config("[[route]]\nkey = \"GET /pets/{id}\"\nmock = { body = '{\"id\": \"$request.path.id\"}', headers = { \"x-a\" = \"''\" } }\n\n[[route]]\nkey = \"GET /s\"\nmock = { body = \"''\" }\n");
    let v = c.mapping.routes[0].mock.as_ref().unwrap();
    assert!(v.json);
    // the static header value is kept as written, content-type added as for a static mock
    let names: Vec<&str> = v.headers.iter().map(|(n, _)| &**n).collect();
    assert_eq!(names, ["x-a", "content-type"]);
    assert_eq!(v.headers[0].1.static_text().unwrap(), b"''");
    assert!(c.mapping.routes[1].mock.is_none());
    let got =
        errors("[[route]]\nkey = \"GET /pets/{id}\"\nmock = { body = \"$request.path.nope\" }\n");
    assert_eq!(
        got,
        [(
            3,
            "route[0].mock.body".to_string(),
            "$request.path.nope: the route has no path parameter {nope}".to_string()
        )]
    );
}

#[test]
fn dotted_keys_and_header_tables_work_too() {
    let c = config(&format!(
        "{UPSTREAM}[[route]]\nkey = \"GET /a\"\nupstream = \"orders\"\nrequest_parameters.\"append:header.x-a\" = \"1\"\n\n[route.response_parameters.\"5XX\"]\n\"overwrite:statuscode\" = \"503\"\n"
    ));
    let m = &c.mapping.routes[0];
    assert_eq!(m.request.len(), 1);
    assert_eq!(m.rule_for(500).unwrap().status, Some(503));
}
