//! Mapping templates: the grammar (references, literals, comments, escapes, directives
//! refused with their offsets), rendering (`$input`, `$util`, `$context`), choosing a template
//! by content type and by `Accept`, and failures (body not JSON, a bad encoding, the size
//! limit); no input makes parsing or rendering panic.

use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::accesslog::Entry;
use crate::http::RequestHead;
use crate::mapping::value::Scope;
use crate::transform::Refusal;

fn head(bytes: &[u8]) -> RequestHead {
    let mut b = BytesMut::from(bytes);
    crate::http::parse_request(&mut b, &crate::http::Limits::default())
        .unwrap()
        .unwrap()
}

fn entry() -> Entry<'static> {
    Entry {
        request_id: b"rid-7",
        ip: b"10.0.0.1",
        time: 784_111_777,
        method: b"POST",
        route_key: "POST /pets/{id}",
        path: b"/pets/7",
        status: 0,
        protocol: "HTTP/1.1",
        response_length: 0,
        latency: Duration::ZERO,
        integration_latency: None,
        integration_status: None,
        error: None,
        user_agent: b"t",
        api_key: None,
        request_length: 0,
        domain_name: b"api.example",
        raw_query: None,
        endpoint: None,
        tls: None,
        principal: None,
        authorizer_error: None,
        stage: "$default",
        api_id: "tollgate",
        canary: None,
    }
}

const PARAMS: &[&str] = &["id"];

fn compile(text: &str) -> Result<Template, TemplateError> {
    let scope = Scope {
        params: PARAMS,
        body: true,
        stage: None,
    };
    Template::compile(text, &scope)
}

fn error(text: &str) -> TemplateError {
    compile(text).expect_err(text)
}

const HEAD: &[u8] = b"POST /pets/a%20b?q=x+y%21&id=from-query&empty= HTTP/1.1\r\nhost: api.example\r\ncontent-type: application/json\r\nx-trace: t-1\r\nid: from-header\r\n\r\n";

/// `request()` of a one-template set over `body`, with the path parameter `id` = `a%20b`.
fn render_request(text: &str, head_bytes: &[u8], body: &[u8]) -> Result<Vec<u8>, Refusal> {
    let set = TemplateSet::any(compile(text).unwrap(), 1 << 20);
    rendered(&set, head_bytes, body)
}

fn rendered(set: &TemplateSet, head_bytes: &[u8], body: &[u8]) -> Result<Vec<u8>, Refusal> {
    let h = head(head_bytes);
    let e = entry();
    let json: Option<Json> = serde_json::from_slice(body).ok();
    let params: [&[u8]; 1] = [b"a%20b"];
    let vars = Vars {
        head: &h,
        params: &params,
        entry: &e,
        body: json.as_ref(),
    };
    request(set, &vars, body).map(|nb| nb.map(|b| b.body.to_vec()).unwrap_or_else(|| body.to_vec()))
}

fn text(template: &str, body: &str) -> String {
    String::from_utf8(render_request(template, HEAD, body.as_bytes()).unwrap()).unwrap()
}

const PET: &str = r#"{"pet":{"name":"Rex \"the\" dog","age":3,"tags":["a","b"],"owner":null},"items":[{"id":1},{"id":2}]}"#;

#[test]
fn input_json_path_and_body() {
    assert_eq!(
        text(
            r#"{"n": $input.json('$.pet.name'), "a": $input.json('$.pet.age')}"#,
            PET
        ),
        r#"{"n": "Rex \"the\" dog", "a": 3}"#
    );
    assert_eq!(text("$input.path('$.pet.name')", PET), r#"Rex "the" dog"#);
    assert_eq!(text("$input.path('$.pet.tags')", PET), r#"["a","b"]"#);
    assert_eq!(text("$input.path('$.pet').age", PET), "3");
    assert_eq!(text("$input.json('$.items[*].id')", PET), "[1,2]");
    assert_eq!(text("$input.path('$.items[*].id')", PET), "[1,2]");
    assert_eq!(text("$input.json(\"$.items[-1]\")", PET), r#"{"id":2}"#);
    // absent: json says null, path says nothing; a JSON null is nothing for path too
    assert_eq!(
        text(
            "[$input.json('$.nope')|$input.path('$.nope')|$input.path('$.pet.owner')]",
            PET
        ),
        "[null||]"
    );
    assert_eq!(text("$input.body", PET), PET);
    // an empty body reads `{}`, as API Gateway
    assert_eq!(
        text("$input.body|$input.json('$')|$input.json('$.a')", ""),
        "{}|{}|null"
    );
}

#[test]
fn members_after_path_stop_at_what_is_not_one() {
    // `.tags` is a member, `[1]` is text after the reference
    assert_eq!(text("$input.path('$').pet.tags[1]", PET), r#"["a","b"][1]"#);
    assert_eq!(text("$input.path('$.pet.age').", PET), "3.");
    assert_eq!(text("$input.body.x", "{}"), "{}.x");
}

#[test]
fn params_search_path_then_query_then_header() {
    let t = |s: &str| text(s, "{}");
    assert_eq!(
        t("$input.params('id')"),
        "a b",
        "the path parameter, decoded"
    );
    assert_eq!(
        t("$input.params('q')"),
        "x y!",
        "a query value, form-decoded"
    );
    assert_eq!(
        t("$input.params('x-trace')|$input.params('X-Trace')"),
        "t-1|t-1"
    );
    assert_eq!(t("[$input.params('nope')|$input.params('empty')]"), "[|]");
    assert_eq!(t("$input.params().querystring.get('id')"), "from-query");
    assert_eq!(t("$input.params().header.get('id')"), "from-header");
    assert_eq!(t("$input.params().path.get('id')"), "a b");
    assert!(error("$input.params().path.get('nope')")
        .message
        .contains("{nope}"));
    assert!(error("$input.params()").message.contains("#foreach"));
}

#[test]
fn context_and_stage_variables_come_from_the_value_vocabulary() {
    assert_eq!(
        text(
            "$context.requestId $context.httpMethod ${context.domainName}x $!context.routeKey",
            "{}"
        ),
        "rid-7 POST api.examplex POST /pets/{id}"
    );
    // absent values are empty, not `-`
    assert_eq!(text("[$context.authorizer.principalId]", "{}"), "[]");
    assert!(error("$context.nope").message.contains("$context.nope"));
    assert!(error("${context.requestIdx}")
        .message
        .contains("requestIdx"));
    assert!(error("$stageVariables.backend").message.contains("backend"));
}

#[test]
fn util_functions() {
    let t = |s: &str| text(s, PET);
    assert_eq!(
        t("$util.escapeJavaScript('say \"hi\" \\ /x\t\r\né😀\u{1}')"),
        "say \\\"hi\\\" \\\\ \\/x\\t\\r\\n\\u00E9\\uD83D\\uDE00\\u0001"
    );
    assert_eq!(t(r#"$util.escapeJavaScript("it's")"#), r"it\'s");
    assert_eq!(
        t("$util.escapeJavaScript($input.path('$.pet.name'))"),
        r#"Rex \"the\" dog"#
    );
    // the documented way back to JSON: `\'` → `'`
    assert_eq!(
        t(r#"$util.escapeJavaScript("it's").replaceAll("\\'","'")"#),
        "it's"
    );
    assert_eq!(t("$util.base64Encode('hello?')"), "aGVsbG8/");
    assert_eq!(
        t("$util.base64Decode('aGVsbG8/')|$util.base64Decode('aGk')"),
        "hello?|hi"
    );
    assert_eq!(
        t("$util.urlEncode('a b&c=d/é*.-_')"),
        "a+b%26c%3Dd%2F%C3%A9*.-_"
    );
    assert_eq!(t("$util.urlDecode('a+b%26c')"), "a b&c");
    // nested, and an interpolating literal
    assert_eq!(
        t(r#"$util.base64Decode($util.base64Encode("id=$input.params('id')"))"#),
        "id=a b"
    );
    assert_eq!(t("$util.urlEncode($context.httpMethod)"), "POST");
    assert_eq!(
        t("$input.path('$.pet.name').replace('Rex', 'Max')"),
        r#"Max "the" dog"#
    );
}

#[test]
fn bad_encodings_refuse_the_request() {
    for tpl in ["$util.base64Decode('%%%')", "$util.urlDecode('50%')"] {
        let r = render_request(tpl, HEAD, b"{}").unwrap_err();
        assert_eq!(r.error, GatewayError::BadRequestBody, "{tpl}");
        assert!(r.message.starts_with("$util."), "{}", r.message);
    }
}

#[test]
fn unknown_roots_are_text_and_escapes_are_literal() {
    let json = r##"{"$ref": "#/a", "p": "US$5", "e": "$"}"##;
    assert_eq!(text(json, "{}"), json);
    assert_eq!(text(r"\$input.body \#if x\y", "{}"), r"$input.body #if x\y");
    assert_eq!(text("#[[$input.body #if]]#!", "{}"), "$input.body #if!");
    assert_eq!(
        text("a ## comment\nb #* block\n *#c #fff #ifx #{iffy}", "{}"),
        "a b c #fff #ifx #{iffy}"
    );
}

#[test]
fn directives_are_refused_where_they_are() {
    for d in DIRECTIVES_SAMPLE {
        let tpl = format!("{{\n  {d}\n}}");
        let e = error(&tpl);
        assert_eq!(e.offset, 4, "{tpl}");
        let name = d.trim_start_matches("#{").trim_start_matches('#');
        let name: String = name.chars().take_while(char::is_ascii_alphabetic).collect();
        assert_eq!(
            e.message,
            format!("mapping templates support no directives (#{name}): full VTL is out of scope")
        );
    }
}

const DIRECTIVES_SAMPLE: &[&str] = &[
    "#if($x) a",
    "#elseif($y)",
    "#else",
    "#end",
    "#{end}",
    "#foreach($i in $list)",
    "#set($x = 1)",
    "#macro(m)",
    "#parse('x')",
    "#include('x')",
    "#evaluate('x')",
    "#define($b)",
    "#stop",
    "#break",
    "#{if}(true)",
];

#[test]
fn malformed_templates_name_the_fault() {
    for (tpl, offset, words) in [
        ("ab $input", 3, "$input needs a member"),
        ("$input.headers", 7, "unknown member $input.headers"),
        ("$input.json($.a)", 12, "expected a string literal"),
        ("$input.json('$.a'", 17, "expected ) to close"),
        ("$input.json('$..a')", 13, "recursive descent"),
        ("$input.path('$[?(@.a)]')", 13, "filters"),
        ("$input.json('$.a", 12, "unterminated string"),
        (
            "$util.toJson($input.body)",
            6,
            "unknown function $util.toJson",
        ),
        ("$util.parseJson($input.body)", 6, "needs #set"),
        (
            "$util.urlEncode()",
            16,
            "expected a reference or a string literal",
        ),
        ("$util.urlEncode($nope)", 16, "expected a reference"),
        ("x ${input.body", 2, "unterminated ${"),
        ("#* never closed", 0, "#* needs its *#"),
        ("#[[ open", 0, "#[[ needs its ]]#"),
        ("$input.path('$.a').size()", 19, ".size() is not supported"),
        ("$input.body.replaceAll('.', 'x')", 24, "operator ."),
        ("$input.body.replaceAll('\\d', 'x')", 24, "class \\d"),
        ("$input.body.replaceAll('a', '$1')", 29, "group references"),
    ] {
        let e = error(tpl);
        assert!(e.message.contains(words), "{tpl}: {}", e.message);
        assert_eq!(e.offset, offset, "{tpl}: {}", e.message);
    }
    let deep = "$util.urlEncode(".repeat(MAX_NESTING + 1) + "'x'" + &")".repeat(MAX_NESTING + 1);
    assert!(error(&deep).message.contains("nested more than"));
    let ok = "$util.urlEncode(".repeat(MAX_NESTING) + "'x'" + &")".repeat(MAX_NESTING);
    assert!(compile(&ok).is_ok());
}

#[test]
fn reads_json_only_when_a_part_does() {
    assert!(!compile("$input.body $input.params('id')")
        .unwrap()
        .reads_json());
    assert!(compile("$util.urlEncode($input.json('$'))")
        .unwrap()
        .reads_json());
}

#[test]
fn a_body_that_is_not_json_is_refused_only_when_read_as_json() {
    let r = render_request("{\"b\": $input.json('$')}", HEAD, b"<xml/>").unwrap_err();
    assert_eq!(r.error, GatewayError::BadRequestBody);
    assert!(r.message.contains("not valid JSON"), "{}", r.message);
    assert_eq!(
        render_request("[$input.body]", HEAD, b"<xml/>").unwrap(),
        b"[<xml/>]"
    );
}

#[test]
fn the_output_limit_is_the_routes_max_body_bytes() {
    let set = TemplateSet::any(compile("$input.body$input.body").unwrap(), 10);
    assert_eq!(rendered(&set, HEAD, b"12345").unwrap(), b"1234512345");
    let r = rendered(&set, HEAD, b"123456").unwrap_err();
    assert_eq!(r.error, GatewayError::DecodedTooLarge);
    assert!(
        r.message.contains("max_body_bytes (10 bytes)"),
        "{}",
        r.message
    );
}

fn by_type(keys: &[&str]) -> TemplateSet {
    let list = keys
        .iter()
        .map(|k| (Box::from(*k), compile(&format!("for {k}")).unwrap()))
        .collect();
    TemplateSet::by_type(list, 1 << 20)
}

#[test]
fn request_templates_by_content_type_pass_through_when_none_matches() {
    let set = by_type(&["application/json", "Application/XML"]);
    let req = |ct: &str| {
        let h = format!("POST /x HTTP/1.1\r\nhost: a\r\n{ct}\r\n");
        String::from_utf8(rendered(&set, h.as_bytes(), b"raw").unwrap()).unwrap()
    };
    assert_eq!(
        req("content-type: application/json\r\n"),
        "for application/json"
    );
    assert_eq!(
        req("content-type: APPLICATION/xml; charset=utf-8\r\n"),
        "for Application/XML"
    );
    assert_eq!(
        req(""),
        "for application/json",
        "no content type: application/json"
    );
    assert_eq!(
        req("content-type: text/plain\r\n"),
        "raw",
        "no match: the body passes"
    );
}

#[test]
fn a_request_without_content_type_gets_application_json() {
    let set = TemplateSet::any(compile("{}").unwrap(), 100);
    let h = head(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n");
    let e = entry();
    let vars = Vars {
        head: &h,
        params: &[],
        entry: &e,
        body: None,
    };
    let nb = request(&set, &vars, b"").unwrap().unwrap();
    assert_eq!(nb.content_type.as_deref(), Some("application/json"));
    let h = head(HEAD);
    let vars = Vars { head: &h, ..vars };
    assert_eq!(
        request(&set, &vars, b"").unwrap().unwrap().content_type,
        None
    );
}

fn respond(
    set: &TemplateSet,
    accept: Option<&str>,
    status: u16,
    body: &[u8],
) -> Result<(String, Option<String>), Refusal> {
    respond_as(set, accept, "application/json", status, body)
}

fn respond_as(
    set: &TemplateSet,
    accept: Option<&str>,
    produced: &str,
    status: u16,
    body: &[u8],
) -> Result<(String, Option<String>), Refusal> {
    let field = accept.map_or(String::new(), |a| format!("accept: {a}\r\n"));
    let h = head(format!("GET /x HTTP/1.1\r\nhost: a\r\n{field}\r\n").as_bytes());
    let e = entry();
    let vars = Vars {
        head: &h,
        params: &[],
        entry: &e,
        body: None,
    };
    response(set, &vars, status, Some(produced.as_bytes()), body).map(|(b, t)| {
        (
            String::from_utf8(b.to_vec()).unwrap(),
            t.map(|t| t.to_string()),
        )
    })
}

#[test]
fn response_templates_by_accept() {
    let set = by_type(&["application/xml", "application/json", "text/html"]);
    let pick = |accept: Option<&str>| respond(&set, accept, 200, b"{}").unwrap().1.unwrap();
    assert_eq!(pick(None), "application/json");
    assert_eq!(pick(Some("*/*")), "application/json");
    assert_eq!(pick(Some("application/xml")), "application/xml");
    assert_eq!(pick(Some("text/*")), "text/html");
    assert_eq!(
        pick(Some("text/html;q=0.5, application/xml;q=0.9")),
        "application/xml"
    );
    assert_eq!(pick(Some("application/xml;q=0, text/html")), "text/html");
    assert_eq!(
        pick(Some("image/png")),
        "application/json",
        "nothing acceptable: the default"
    );
    // no preference: the template for the type the integration answered with
    let as_xml = |accept| {
        respond_as(&set, accept, "application/xml; charset=utf-8", 200, b"{}")
            .unwrap()
            .1
            .unwrap()
    };
    assert_eq!(as_xml(None), "application/xml");
    assert_eq!(as_xml(Some("*/*")), "application/xml");
    assert_eq!(as_xml(Some("text/html")), "text/html");
    let only_xml = by_type(&["application/xml"]);
    assert_eq!(
        respond(&only_xml, None, 200, b"{}").unwrap().1.unwrap(),
        "application/xml"
    );
}

#[test]
fn response_rendering() {
    let set = TemplateSet::any(
        compile("{\"name\": $input.json('$.pet.name')}").unwrap(),
        1 << 20,
    );
    let (body, media) = respond(&set, None, 200, PET.as_bytes()).unwrap();
    assert_eq!(body, r#"{"name": "Rex \"the\" dog"}"#);
    assert_eq!(media.as_deref(), Some("application/json"));
    // no content: as it is
    assert_eq!(
        respond(&set, None, 204, b"").unwrap(),
        (String::new(), None)
    );
    let r = respond(&set, None, 200, b"<html>").unwrap_err();
    assert_eq!(r.error, GatewayError::TransformFailed);
    assert!(r.message.contains("not valid JSON"), "{}", r.message);
    let small = TemplateSet::any(compile("$input.body$input.body").unwrap(), 3);
    let r = respond(&small, None, 200, b"ab").unwrap_err();
    assert_eq!(r.error, GatewayError::TransformFailed);
    assert!(r.message.contains("MAX_RESPONSE_BYTES"), "{}", r.message);
}

#[test]
fn qvalues() {
    assert_eq!(qvalue("1"), 1000);
    assert_eq!(qvalue("0.5"), 500);
    assert_eq!(qvalue("0.125"), 125);
    assert_eq!(qvalue("0"), 0);
    assert_eq!(qvalue("0.000"), 0);
    assert_eq!(qvalue("junk"), 1000);
}

proptest! {
    #[test]
    fn parsing_and_rendering_never_panic(tpl in "[$#{}()'\".!a-z\\\\\\[\\]*\n ]{0,40}", body in "[{}\":a-z0-9\\[\\], ]{0,20}") {
        if let Ok(t) = compile(&tpl) {
            let set = TemplateSet::any(t, 1 << 16);
            let _ = rendered(&set, HEAD, body.as_bytes());
        }
    }

    #[test]
    fn vocabulary_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("$input.json('$.a')"), Just("$input.path('$"), Just("$util.urlEncode("), Just(")"),
        Just("$context."), Just("${"), Just("}"), Just("#"), Just("##"), Just("#*"), Just("*#"),
        Just("'"), Just("\""), Just("$!"), Just(".replace('a','b')"), Just("$input.params("),
        Just("\\"), Just("é"), Just("$util.escapeJavaScript($input.body)"), Just("#[["), Just("]]#"),
    ], 0..12)) {
        let tpl: String = parts.concat();
        if let Ok(t) = compile(&tpl) {
            let set = TemplateSet::any(t, 1 << 16);
            let _ = rendered(&set, HEAD, br#"{"a":"x"}"#);
        }
    }
}
