//! `[[gateway_response]]`, compiled: what each turns into, and every refusal with its key and
//! line.

use super::*;
use crate::config::check_tests::{errors, keys_and_lines};
use crate::config::{from_str, Config};

fn ok(text: &str) -> Config {
    from_str(text).unwrap_or_else(|e| panic!("{}\n{text}", e.render("t")))
}

const ROUTE: &str = "[[route]]\nkey = \"GET /x\"\nmock = {}\n";

#[test]
fn tables_compile_by_type() {
    let c = ok(&format!(
        r#"{ROUTE}
[[gateway_response]]
type = "THROTTLED"
status = 503
headers = {{ "Retry-After" = "'30'", "x-id" = "$context.requestId" }}
body = '{{"message":$context.error.messageString}}'

[[gateway_response]]
type = "DEFAULT_4XX"
content_type = "application/problem+json; charset=utf-8"
body = "x"

[[gateway_response]]
type = "UNAUTHORIZED"
body = "nope"
content_type = "text/plain"
"#
    ));
    let g = &c.gateway_responses;
    assert!(!g.is_empty());
    let t = g.get(ResponseType::Throttled).unwrap();
    assert_eq!(t.status, Some(503));
    assert_eq!(t.content_type.as_ref(), "application/json");
    assert!(t.json && t.body.is_some());
    let names: Vec<&str> = t.headers.iter().map(|(n, _)| n.as_ref()).collect();
    assert_eq!(names, ["Retry-After", "x-id"]);
    assert!(t.sets(b"retry-after"));
    let d = g.get(ResponseType::Default4xx).unwrap();
    assert_eq!((d.status, d.json), (None, true));
    assert!(!g.get(ResponseType::Unauthorized).unwrap().json);
    // the lookup falls back by status
    assert!(std::ptr::eq(
        g.find(ResponseType::QuotaExceeded, 429).unwrap(),
        d
    ));
    assert!(g.find(ResponseType::IntegrationFailure, 502).is_none());
    assert!(ok(ROUTE).gateway_responses.is_empty());
}

#[test]
fn unknown_and_duplicate_types_name_the_key_and_line() {
    let text = format!(
        "{ROUTE}[[gateway_response]]\ntype = \"TOO_MANY\"\n\n\
         [[gateway_response]]\ntype = \"THROTTLED\"\n\n\
         [[gateway_response]]\ntype = \"THROTTLED\"\n"
    );
    let e = errors(&text);
    assert_eq!(
        e.iter()
            .map(|(l, k, _)| (*l, k.as_str()))
            .collect::<Vec<_>>(),
        [
            (5, "gateway_response[0].type"),
            (11, "gateway_response[2].type")
        ],
        "{e:?}"
    );
    assert!(
        e[0].2.contains("\"TOO_MANY\"") && e[0].2.contains("THROTTLED, UNAUTHORIZED"),
        "{e:?}"
    );
    assert!(
        e[1].2
            .contains("THROTTLED is customised twice (gateway_response[1])"),
        "{e:?}"
    );
}

#[test]
fn statuses_stay_errors() {
    for (status, good) in [
        (399, false),
        (400, true),
        (503, true),
        (599, true),
        (600, false),
        (200, false),
    ] {
        let text =
            format!("{ROUTE}[[gateway_response]]\ntype = \"DEFAULT_5XX\"\nstatus = {status}\n");
        match good {
            true => assert_eq!(
                ok(&text)
                    .gateway_responses
                    .get(ResponseType::Default5xx)
                    .unwrap()
                    .status,
                Some(status)
            ),
            false => {
                let e = errors(&text);
                assert_eq!(
                    keys_and_lines(&text),
                    [(6, "gateway_response[0].status".to_string())]
                );
                assert!(e[0].2.contains("400..=599"), "{e:?}");
            }
        }
    }
}

#[test]
fn headers_are_checked() {
    let text = format!(
        r#"{ROUTE}[[gateway_response]]
type = "DEFAULT_4XX"
headers = {{ "content-length" = "1", "x bad" = "v", "Content-Type" = "text/plain", "x-a" = "$request.path.id", "X-B" = "1", "x-b" = "2", "x-c" = "$context.nope", "x-d" = "a${{b" }}
"#
    );
    let e = errors(&text);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        [
            (6, "gateway_response[0].headers.\"content-length\""),
            (6, "gateway_response[0].headers.\"x bad\""),
            (6, "gateway_response[0].headers.\"Content-Type\""),
            (6, "gateway_response[0].headers.\"x-a\""),
            (6, "gateway_response[0].headers.\"x-b\""),
            (6, "gateway_response[0].headers.\"x-c\""),
            (6, "gateway_response[0].headers.\"x-d\""),
        ],
        "{e:?}"
    );
    let msg = |k: &str| {
        e.iter()
            .find(|(_, key, _)| key.ends_with(k))
            .map(|(_, _, m)| m.as_str())
            .unwrap()
    };
    assert!(msg("\"Content-Type\"").contains("content_type"));
    assert!(msg("\"content-length\"").contains("set by tollgate"));
    assert!(msg("\"x bad\"").contains("field name"));
    assert!(msg("\"x-a\"").contains("every route"));
    assert!(msg("\"x-b\"").contains("twice"));
    assert!(msg("\"x-c\"").contains("$context.nope"));
    assert!(msg("\"x-d\"").contains("unterminated"));
}

#[test]
fn aws_header_forms_are_read_as_templates() {
    let c = ok(&format!(
        r#"{ROUTE}[[gateway_response]]
type = "DEFAULT_4XX"
headers = {{ "a" = "'static $x'", "b" = "method.request.header.x-user", "c" = "method.request.querystring.q", "d" = "context.requestId", "e" = "plain text", "f" = "''" }}
"#
    ));
    let g = c.gateway_responses.get(ResponseType::Default4xx).unwrap();
    let reads: Vec<bool> = g.headers.iter().map(|(_, t)| t.reads_request()).collect();
    assert_eq!(reads, [false, true, true, true, false, false]);
    let e = errors(&format!(
        "{ROUTE}[[gateway_response]]\ntype = \"DEFAULT_4XX\"\nheaders = {{ a = \"method.request.path.id\" }}\n"
    ));
    assert!(e[0].2.contains("every route"), "{e:?}");
}

#[test]
fn bodies_and_content_types_are_checked() {
    let text = format!(
        r#"{ROUTE}[[gateway_response]]
type = "DEFAULT_4XX"
body = "$context.error.nope"

[[gateway_response]]
type = "DEFAULT_5XX"
body = "$request.body.a"
content_type = "json"

[[gateway_response]]
type = "THROTTLED"
body = "{big}"
"#,
        big = "x".repeat(MAX_TEMPLATE_BYTES + 1)
    );
    let e = errors(&text);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        [
            (6, "gateway_response[0].body"),
            (10, "gateway_response[1].body"),
            (11, "gateway_response[1].content_type"),
            (15, "gateway_response[2].body"),
        ],
        "{e:?}"
    );
    assert!(
        e[0].2.contains("$context.error.nope") && e[0].2.contains("messageString"),
        "{e:?}"
    );
    assert!(e[1].2.contains("$request.body"), "{e:?}");
    assert!(e[2].2.contains("media type"), "{e:?}");
    assert!(e[3].2.contains(&MAX_TEMPLATE_BYTES.to_string()), "{e:?}");
}

#[test]
fn types_tollgate_never_sends_are_accepted_with_a_warning() {
    let c = ok(&format!(
        "{ROUTE}[[gateway_response]]\ntype = \"WAF_FILTERED\"\nstatus = 403\n\n\
         [[gateway_response]]\ntype = \"DEFAULT_5XX\"\ncontent_type = \"text/plain\"\n"
    ));
    let w: Vec<(usize, &str)> = c
        .warnings
        .iter()
        .map(|w| (w.line, w.key.as_str()))
        .collect();
    assert_eq!(
        w,
        [
            (5, "gateway_response[0].type"),
            (10, "gateway_response[1].content_type")
        ],
        "{:?}",
        c.warnings
    );
    assert!(c.warnings[0].message.contains("never sends WAF_FILTERED"));
    assert!(c.gateway_responses.get(ResponseType::WafFiltered).is_some());
}
