//! Request validation on the wire, both drivers: a body that satisfies its model reaches the
//! origin byte for byte; one that does not is answered 400 `Invalid request body` with a
//! `details` entry per failing JSON pointer (bounded); missing required headers and query
//! string parameters get AWS's exact message, before any of the body is read; a body that is
//! not JSON is 415 (another media type) or 400 (claims JSON, does not parse); `$ref` between
//! models (by name and by API Gateway's model URI); HTTP/2 clients; the origin sees nothing of
//! a refused request. Config errors at load name the key and its line. The JSON Schema Test
//! Suite's cases (tests/data/jsonschema, draft 4 and 2020-12) run through tollgate's compiled
//! models.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::h2client::{H2, H2C};
use common::*;
use serde_json::Value as Json;
use tollgate::validate::model::Model;

/// An order as API Gateway's docs would model it (draft 4, as its models are).
const NEW_ORDER: &str = r#"{
  "$schema": "http://json-schema.org/draft-04/schema#",
  "title": "NewOrder",
  "type": "object",
  "required": ["customer", "items"],
  "additionalProperties": false,
  "properties": {
    "customer": { "type": "string", "minLength": 1 },
    "items": { "type": "array", "minItems": 1, "items": { "$ref": "Item" } },
    "note": { "type": "string", "maxLength": 20 }
  }
}"#;

/// A line item, referenced by name from `NewOrder`.
const ITEM: &str = r#"{
  "type": "object",
  "required": ["sku", "qty"],
  "properties": {
    "sku": { "type": "string", "pattern": "^[A-Z]{3}-[0-9]+$" },
    "qty": { "type": "integer", "minimum": 1 }
  }
}"#;

/// A 2020-12 model reaching `Item` through API Gateway's absolute model URI.
const BASKET: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "array",
  "items": { "$ref": "https://apigateway.amazonaws.com/restapis/a1b2c3d4/models/Item" },
  "maxItems": 2
}"#;

/// A fresh directory holding `files`.
fn dir_with(files: &[(&str, &str)]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tollgate-validation-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("models")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

fn models_dir() -> PathBuf {
    dir_with(&[
        ("models/new-order.json", NEW_ORDER),
        ("models/item.json", ITEM),
        ("models/basket.json", BASKET),
    ])
}

fn config(o: &Origin, dir: &Path) -> String {
    let d = dir.display();
    upstream_toml("orders", &[o.addr], "")
        + &format!(
            r#"
[[model]]
name = "NewOrder"
schema = "{d}/models/new-order.json"

[[model]]
name = "Item"
schema = "{d}/models/item.json"

[[model]]
name = "Basket"
schema = "{d}/models/basket.json"

[[route]]
key = "POST /orders"
upstream = "orders"
validate = {{ body = "NewOrder", required_headers = ["x-tenant"], required_querystrings = ["v"] }}

[[route]]
key = "POST /baskets"
upstream = "orders"
validate = {{ body = "Basket" }}

[[route]]
key = "GET /reports"
upstream = "orders"
validate = {{ required_headers = ["X-Tenant", "x-region"], required_querystrings = ["from", "to"] }}

[[route]]
key = "POST /free"
upstream = "orders"
"#
        )
}

const GOOD: &str = r#"{"customer":"ada","items":[{"sku":"ABC-1","qty":2}],"note":"ring twice"}"#;

fn post(path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: api.example\r\n{headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn json(r: &Response) -> Json {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

const JSON_TENANT: &str = "content-type: application/json\r\nx-tenant: t1\r\n";

both_drivers! {
    fn a_valid_body_reaches_the_origin_byte_for_byte(d) {
        let o = Origin::echo();
        let dir = models_dir();
        let g = Gateway::start(d, 1, &config(&o, &dir));
        let raw = post("/orders?v=1", JSON_TENANT, GOOD);
        let r = roundtrip(g.addr, &raw);
        assert_eq!(r.status, 200, "{}", r.head);
        let got = o.requests();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, GOOD.as_bytes());
        assert_eq!(got[0].header("content-length"), Some(GOOD.len().to_string().as_str()));
        assert_eq!(got[0].header("x-tenant"), Some("t1"));
        assert_eq!(got[0].target, "/orders?v=1");
        // a chunked body is held, validated and forwarded framed by its length
        let chunked = format!(
            "POST /orders?v=2 HTTP/1.1\r\nHost: a\r\n{JSON_TENANT}transfer-encoding: chunked\r\n\r\n{:x}\r\n{GOOD}\r\n0\r\n\r\n",
            GOOD.len()
        );
        let r = roundtrip(g.addr, chunked.as_bytes());
        assert_eq!(r.status, 200, "{}", r.head);
        let got = o.requests();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].body, GOOD.as_bytes());
        // +json media types and no content type at all (API Gateway assumes JSON) are JSON
        for ctype in ["content-type: application/vnd.order+json; charset=utf-8\r\n", ""] {
            let r = roundtrip(g.addr, &post("/orders?v=1", &format!("{ctype}x-tenant: t\r\n"), GOOD));
            assert_eq!(r.status, 200, "{ctype}: {}", r.head);
        }
        assert_eq!(o.requests().len(), 4);
    }

    fn an_invalid_body_is_refused_naming_each_pointer(d) {
        let o = Origin::echo();
        let dir = models_dir();
        let g = Gateway::start(d, 1, &config(&o, &dir));
        let bad = r#"{"customer":"","items":[{"sku":"abc","qty":0},{"qty":"2"}],"extra":true}"#;
        let r = roundtrip(g.addr, &post("/orders?v=1", JSON_TENANT, bad));
        assert_eq!(r.status, 400, "{}", r.head);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.text(),
            concat!(
                r#"{"message":"Invalid request body","details":["#,
                r#"{"pointer":"/customer","reason":"value is shorter than 1 character"},"#,
                r#"{"pointer":"/items/0/qty","reason":"value is less than the minimum of 1"},"#,
                r#"{"pointer":"/items/0/sku","reason":"value does not match \"^[A-Z]{3}-[0-9]+$\""},"#,
                r#"{"pointer":"/items/1","reason":"\"sku\" is a required property"},"#,
                r#"{"pointer":"/items/1/qty","reason":"value is not of type \"integer\""},"#,
                r#"{"pointer":"","reason":"Additional properties are not allowed ('extra' was unexpected)"}]}"#
            )
        );
        assert!(r.header("x-request-id").is_some());
        // bounded: a body failing in many places names the first ten
        let many: Vec<String> = (0..30).map(|i| format!(r#"{{"sku":"ABC-{i}","qty":0}}"#)).collect();
        let body = format!(r#"{{"customer":"x","items":[{}]}}"#, many.join(","));
        let r = roundtrip(g.addr, &post("/orders?v=1", JSON_TENANT, &body));
        assert_eq!(r.status, 400, "{}", r.head);
        let details = json(&r)["details"].as_array().unwrap().clone();
        assert_eq!(details.len(), 10);
        assert_eq!(details[9]["pointer"], "/items/9/qty");
        // the connection goes on after a refusal
        let mut c = Client::new(g.addr);
        c.send(&post("/orders?v=1", JSON_TENANT, "[]"));
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(json(&r)["details"][0]["reason"], "value is not of type \"object\"");
        c.send(&post("/orders?v=1", JSON_TENANT, GOOD));
        assert_eq!(c.read(false).unwrap().status, 200);
        assert_eq!(o.requests().len(), 1, "the origin saw only the valid request");
    }

    fn missing_parameters_get_aws_message_before_any_body_is_read(d) {
        let o = Origin::echo();
        let dir = models_dir();
        let g = Gateway::start(d, 1, &config(&o, &dir));
        let r = roundtrip(g.addr, &post("/orders", "content-type: application/json\r\n", GOOD));
        assert_eq!(r.status, 400, "{}", r.head);
        assert_eq!(r.text(), r#"{"message":"Missing required request parameters: [x-tenant, v]"}"#);
        // every missing one, headers then query string parameters, in config order; a blank
        // value is missing too; names as configured
        let r = roundtrip(g.addr, b"GET /reports?to=&from=1 HTTP/1.1\r\nHost: a\r\nx-tenant: \r\n\r\n");
        assert_eq!(r.status, 400, "{}", r.head);
        assert_eq!(r.text(), r#"{"message":"Missing required request parameters: [X-Tenant, x-region, to]"}"#);
        let r = roundtrip(g.addr, b"GET /reports?to=2&%66rom=1 HTTP/1.1\r\nHost: a\r\nx-TENANT: t\r\nX-Region: eu\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(o.requests().len(), 1);
        // the head alone is refused: the 400 comes while the body is still unsent (were the
        // body read first, the answer would wait for it and this read would time out)
        let mut c = Client::new(g.addr);
        c.send(b"POST /orders?v=1 HTTP/1.1\r\nHost: a\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n");
        let r = c.read(false).expect("answered before the body was sent");
        assert_eq!(r.status, 400, "{}", r.head);
        assert_eq!(r.text(), r#"{"message":"Missing required request parameters: [x-tenant]"}"#);
        assert_eq!(o.requests().len(), 1, "the origin saw nothing of the refused requests");
    }

    fn a_body_that_is_not_json_is_415_or_400(d) {
        let o = Origin::echo();
        let dir = models_dir();
        let g = Gateway::start(d, 1, &config(&o, &dir));
        // another media type: 415
        let r = roundtrip(g.addr, &post("/orders?v=1", "content-type: text/plain\r\nx-tenant: t\r\n", GOOD));
        assert_eq!(r.status, 415, "{}", r.head);
        assert_eq!(r.text(), r#"{"message":"Unsupported Media Type"}"#);
        // claims JSON, does not parse: 400, the parser's words
        let r = roundtrip(g.addr, &post("/orders?v=1", JSON_TENANT, "{\"customer\": nope}"));
        assert_eq!(r.status, 400, "{}", r.head);
        assert_eq!(
            r.text(),
            r#"{"message":"Invalid request body","details":[{"pointer":"","reason":"not JSON: expected ident at line 1 column 15"}]}"#
        );
        // no body at all
        let r = roundtrip(g.addr, &post("/orders?v=1", JSON_TENANT, ""));
        assert_eq!(r.status, 400, "{}", r.head);
        assert_eq!(
            r.text(),
            r#"{"message":"Invalid request body","details":[{"pointer":"","reason":"empty body; the model needs a JSON document"}]}"#
        );
        assert!(o.requests().is_empty());
        // a route without validation takes anything
        let r = roundtrip(g.addr, &post("/free", "content-type: text/plain\r\n", "hello"));
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(o.requests()[0].body, b"hello");
    }

    fn refs_reach_other_models(d) {
        let o = Origin::echo();
        let dir = models_dir();
        let g = Gateway::start(d, 1, &config(&o, &dir));
        let ok = r#"[{"sku":"XYZ-9","qty":1}]"#;
        let r = roundtrip(g.addr, &post("/baskets", "content-type: application/json\r\n", ok));
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(o.requests()[0].body, ok.as_bytes());
        let bad = r#"[{"sku":"XYZ-9","qty":1},{"sku":"XYZ-9"},{"sku":"XYZ-9","qty":1}]"#;
        let r = roundtrip(g.addr, &post("/baskets", "content-type: application/json\r\n", bad));
        assert_eq!(r.status, 400, "{}", r.head);
        assert_eq!(
            r.text(),
            concat!(
                r#"{"message":"Invalid request body","details":["#,
                r#"{"pointer":"","reason":"value has more than 2 items"},"#,
                r#"{"pointer":"/1","reason":"\"qty\" is a required property"}]}"#
            )
        );
        assert_eq!(o.requests().len(), 1);
    }

    fn validation_over_http2(d) {
        let o = Origin::echo();
        let dir = models_dir();
        let g = Gateway::start_with(d, 1, H2C, &config(&o, &dir));
        let mut c = H2::connect(g.addr);
        let hs = [("content-type", "application/json"), ("x-tenant", "t1")];
        let req = c.req("POST", "/orders?v=1", &hs);
        let r = c.send(req, Some(GOOD.as_bytes())).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(o.requests()[0].body, GOOD.as_bytes());
        let req = c.req("POST", "/orders?v=1", &hs);
        let r = c.send(req, Some(br#"{"customer":"ada","items":[]}"#)).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            r#"{"message":"Invalid request body","details":[{"pointer":"/items","reason":"value has less than 1 item"}]}"#
        );
        let req = c.req("POST", "/orders", &[("content-type", "application/json")]);
        let r = c.send(req, Some(GOOD.as_bytes())).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.text(), r#"{"message":"Missing required request parameters: [x-tenant, v]"}"#);
        assert_eq!(o.requests().len(), 1);
    }

    fn gateway_responses_reshape_validation_refusals(d) {
        let o = Origin::echo();
        let dir = models_dir();
        let text = config(&o, &dir)
            + r#"
[[gateway_response]]
type = "BAD_REQUEST_PARAMETERS"
status = 422
body = '{"error":"$context.error.message"}'
"#;
        let g = Gateway::start(d, 1, &text);
        let r = roundtrip(g.addr, b"GET /reports?from=1&to=2 HTTP/1.1\r\nHost: a\r\nx-region: eu\r\n\r\n");
        assert_eq!(r.status, 422, "{}", r.head);
        assert_eq!(r.text(), r#"{"error":"Missing required request parameters: [X-Tenant]"}"#);
        assert!(o.requests().is_empty());
    }
}

/// Config errors: (line, key, message) of each.
fn load_errors(text: &str, dir: &Path) -> Vec<(usize, String, String)> {
    let Err(e) = tollgate::config::from_str_in(text, dir) else {
        panic!("accepted:\n{text}")
    };
    e.0.iter()
        .map(|e| (e.line, e.key.clone(), e.message.clone()))
        .collect()
}

#[test]
fn schema_paths_are_relative_to_the_config_files_directory() {
    let dir = models_dir();
    let text = "[[model]]\nname = \"Item\"\nschema = \"models/item.json\"\n\n[[route]]\nkey = \"POST /a\"\nmock = {}\nvalidate = { body = \"Item\" }\n";
    let cfg = tollgate::config::from_str_in(text, &dir).unwrap();
    let v = cfg.validation.routes[0].as_ref().unwrap();
    assert!(v.reads_body());
    assert_eq!(
        cfg.bodies.routes[0],
        Some(10 * 1024 * 1024),
        "the route holds its body"
    );
    assert_eq!(v.body.as_ref().unwrap().name(), "Item");
    assert_eq!(
        v.body.as_ref().unwrap().draft(),
        tollgate::validate::model::DEFAULT_DRAFT
    );
}

/// `schema_json`: the schema inline (what `tollgate import` writes), referencing a file model
/// by name; exactly one of `schema` and `schema_json`.
#[test]
fn inline_schemas_and_their_errors() {
    let dir = models_dir();
    let text = r#"[[model]]
name = "Item"
schema = "models/item.json"

[[model]]
name = "Order"
schema_json = '''
{"type": "object", "required": ["items"],
 "properties": {"items": {"type": "array", "items": {"$ref": "Item"}}}}'''

[[route]]
key = "POST /a"
mock = {}
validate = { body = "Order" }
"#;
    let cfg = tollgate::config::from_str_in(text, &dir).unwrap();
    let v = cfg.validation.routes[0].as_ref().unwrap();
    assert_eq!(v.body.as_ref().unwrap().name(), "Order");

    let bad = r#"[[model]]
name = "Neither"

[[model]]
name = "Both"
schema = "models/item.json"
schema_json = "{}"

[[model]]
name = "NotJson"
schema_json = "{\"type\": "

[[model]]
name = "Invalid"
schema_json = '{"type": "widget"}'

[[route]]
key = "GET /"
mock = {}
"#;
    let got = load_errors(bad, &dir);
    let expect = vec![
        (2, "model[0]".to_string(), "needs schema (a JSON Schema file) or schema_json (the schema inline)".to_string()),
        (7, "model[1].schema_json".to_string(), "set either schema (a file) or schema_json (the schema inline), not both".to_string()),
        (11, "model[2].schema_json".to_string(), "is not JSON: EOF while parsing a value at line 1 column 9".to_string()),
        (15, "model[3].schema_json".to_string(), "invalid JSON Schema: \"widget\" is not valid under any of the schemas listed in the 'anyOf' keyword".to_string()),
    ];
    assert_eq!(got, expect);
}

#[test]
fn bad_models_and_validators_are_refused_at_load_naming_key_and_line() {
    let dir = dir_with(&[
        ("models/item.json", ITEM),
        ("models/broken.json", "{\"type\": "),
        ("models/wrong.json", r#"{"type": "widget"}"#),
        ("models/dangling.json", r#"{"$ref": "Nowhere"}"#),
        (
            "models/draft.json",
            r#"{"$schema": "https://example.com/meta"}"#,
        ),
    ]);
    let text = r#"[[model]]
name = "Item"
schema = "models/item.json"

[[model]]
name = "Item"
schema = "models/item.json"

[[model]]
name = "Gone"
schema = "models/missing.json"

[[model]]
name = "Broken"
schema = "models/broken.json"

[[model]]
name = "Wrong"
schema = "models/wrong.json"

[[model]]
name = "Dangling"
schema = "models/dangling.json"

[[model]]
name = "Drafty"
schema = "models/draft.json"

[[model]]
name = "bad name"
schema = "models/item.json"

[[route]]
key = "POST /a"
mock = {}
validate = { body = "Nope", required_headers = ["x tenant", "X-A", "x-a"], required_querystrings = ["a=b", "q", "q"] }

[[route]]
key = "POST /b"
mock = {}
validate = {}
"#;
    let d = dir.display();
    let got = load_errors(text, &dir);
    let expect: Vec<(usize, String, String)> = [
        (6, "model[1].name", "duplicate model \"Item\" (model[0] at line 2)".to_string()),
        (
            11,
            "model[2].schema",
            format!("cannot read {d}/models/missing.json: No such file or directory (os error 2)"),
        ),
        (
            15,
            "model[3].schema",
            format!("{d}/models/broken.json is not JSON: EOF while parsing a value at line 1 column 9"),
        ),
        (
            19,
            "model[4].schema",
            "invalid JSON Schema in \"models/wrong.json\": \"widget\" is not valid under any of the schemas listed in the 'anyOf' keyword".to_string(),
        ),
        (
            23,
            "model[5].schema",
            "invalid JSON Schema in \"models/dangling.json\": Resource 'https://apigateway.amazonaws.com/restapis/tollgate/models/Nowhere' is not present in a registry and retrieving it failed: no model named \"Nowhere\"".to_string(),
        ),
        (
            27,
            "model[6].schema",
            "invalid JSON Schema in \"models/draft.json\": unsupported $schema \"https://example.com/meta\" (known: drafts 4, 6, 7, 2019-09 and 2020-12)".to_string(),
        ),
        (30, "model[7].name", "a model name is 1 to 128 letters, digits, '_' or '-'".to_string()),
        (
            36,
            "route[0].validate.body",
            "unknown model \"Nope\" (models: Broken, Dangling, Drafty, Gone, Item, Wrong)".to_string(),
        ),
        (
            36,
            "route[0].validate.required_headers[0]",
            "\"x tenant\" is not a header name (a token)".to_string(),
        ),
        (
            36,
            "route[0].validate.required_headers[2]",
            "header \"x-a\" is listed twice".to_string(),
        ),
        (
            36,
            "route[0].validate.required_querystrings[0]",
            "\"a=b\" is not a query parameter name (non-empty, no '&', '=', '#')".to_string(),
        ),
        (
            36,
            "route[0].validate.required_querystrings[2]",
            "query parameter \"q\" is listed twice".to_string(),
        ),
        (
            41,
            "route[1].validate",
            "nothing to validate: set body, required_headers or required_querystrings".to_string(),
        ),
    ]
    .into_iter()
    .map(|(l, k, m)| (l, k.to_string(), m))
    .collect();
    assert_eq!(got, expect);
}

/// The JSON Schema Test Suite's cases (its files copied as they are published, see
/// tests/data/jsonschema/README.md) through tollgate's compiled models: each schema compiled
/// as a model, each instance checked, the verdict compared with the suite's. Cases needing
/// the suite's remote server (`http://localhost:1234/...`) are skipped: tollgate fetches
/// nothing.
#[test]
fn json_schema_test_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jsonschema");
    let (mut ran, mut skipped, mut failed) = (0usize, 0usize, Vec::new());
    for draft in ["draft4", "draft2020-12"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(draft))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 20, "{draft}: {} files", files.len());
        for f in files {
            let groups: Vec<Json> = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            let file = f.file_name().unwrap().to_string_lossy().into_owned();
            for g in groups {
                let desc = g["description"].as_str().unwrap();
                let schema = &g["schema"];
                let cases = g["tests"].as_array().unwrap();
                if schema.to_string().contains("localhost:1234") {
                    skipped += cases.len();
                    continue;
                }
                let model = match Model::standalone(schema) {
                    Ok(m) => m,
                    Err(e) => {
                        failed.push(format!("{draft}/{file}: {desc}: schema refused: {e}"));
                        continue;
                    }
                };
                for t in cases {
                    let want = t["valid"].as_bool().unwrap();
                    let got = model.check(&t["data"]).is_ok();
                    assert_eq!(got, model.is_valid(&t["data"]));
                    if got != want {
                        let what = t["description"].as_str().unwrap();
                        failed.push(format!("{draft}/{file}: {desc}: {what}: got {got}"));
                    }
                    ran += 1;
                }
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {ran} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(ran > 1000, "ran {ran}");
    eprintln!("JSON Schema Test Suite: {ran} cases passed, {skipped} skipped (remote refs)");
}
