use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use super::*;

fn docs(pairs: &[(&str, Json)]) -> Documents {
    Arc::new(
        pairs
            .iter()
            .map(|(n, d)| ((*n).to_owned(), d.clone()))
            .collect::<HashMap<_, _>>(),
    )
}

#[test]
fn draft_comes_from_schema_else_draft4() {
    assert_eq!(draft_of(&json!({"type": "object"})), Ok(Draft::Draft4));
    let d7 = json!({"$schema": "http://json-schema.org/draft-07/schema#"});
    assert_eq!(draft_of(&d7), Ok(Draft::Draft7));
    let d2020 = json!({"$schema": "https://json-schema.org/draft/2020-12/schema"});
    assert_eq!(draft_of(&d2020), Ok(Draft::Draft202012));
    let unknown = json!({"$schema": "https://example.com/my-meta"});
    assert!(draft_of(&unknown)
        .unwrap_err()
        .contains("unsupported $schema"));
}

#[test]
fn draft4_exclusive_maximum_is_a_boolean() {
    // draft 4: `exclusiveMaximum` qualifies `maximum`; draft 2020-12: it is the bound itself
    let d4 = Model::standalone(&json!({"maximum": 3, "exclusiveMaximum": true})).unwrap();
    assert!(!d4.is_valid(&json!(3)));
    assert!(d4.is_valid(&json!(2)));
    let d2020 = Model::standalone(&json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "exclusiveMaximum": 3
    }))
    .unwrap();
    assert!(!d2020.is_valid(&json!(3)));
}

#[test]
fn details_name_pointers_without_the_clients_values() {
    let m = Model::standalone(&json!({
        "type": "object",
        "required": ["id"],
        "properties": {"qty": {"type": "integer", "minimum": 1}}
    }))
    .unwrap();
    let d = m.check(&json!({"qty": 0})).unwrap_err();
    assert_eq!(
        d,
        vec![
            Detail {
                pointer: "".into(),
                reason: "\"id\" is a required property".into()
            },
            Detail {
                pointer: "/qty".into(),
                reason: "value is less than the minimum of 1".into()
            },
        ]
    );
    assert_eq!(m.check(&json!({"id": 1, "qty": 2})), Ok(()));
}

#[test]
fn details_are_bounded() {
    let m = Model::standalone(&json!({"type": "array", "items": {"type": "string"}})).unwrap();
    let d = m.check(&json!((0..50).collect::<Vec<u32>>())).unwrap_err();
    assert_eq!(d.len(), MAX_DETAILS);
    assert_eq!(d[0].pointer, "/0");
    assert_eq!(d[9].pointer, "/9");
    let long = "é".repeat(400); // a `const` the reason quotes: cut on a character
    let d7 = "http://json-schema.org/draft-07/schema#"; // `const` came with draft 6
    let m = Model::standalone(&json!({ "$schema": d7, "const": long })).unwrap();
    let d = m.check(&json!("x")).unwrap_err();
    assert!(d[0].reason.ends_with('…'));
    assert_eq!(d[0].reason.chars().count(), MAX_REASON_CHARS + 1);
}

#[test]
fn refs_reach_other_models_by_name_and_by_aws_uri() {
    let item = json!({"type": "object", "required": ["sku"]});
    let all = docs(&[("Item", item.clone())]);
    for r in [
        "Item",
        "https://apigateway.amazonaws.com/restapis/a1b2c3/models/Item",
    ] {
        let m = Model::compile("Order", &json!({"items": {"$ref": r}}), &all).unwrap();
        assert!(m.is_valid(&json!([{"sku": "x"}])), "{r}");
        assert!(!m.is_valid(&json!([{}])), "{r}");
    }
    let e = Model::compile("Order", &json!({"$ref": "Missing"}), &all).unwrap_err();
    assert!(e.contains("no model named \"Missing\""), "{e}");
    let e = Model::compile(
        "Order",
        &json!({"$ref": "https://example.com/x.json"}),
        &all,
    )
    .unwrap_err();
    assert!(e.contains("is not a model"), "{e}");
}

#[test]
fn refs_within_a_document_and_invalid_schemas() {
    let m = Model::standalone(&json!({
        "definitions": {"pos": {"type": "integer", "minimum": 1}},
        "properties": {"qty": {"$ref": "#/definitions/pos"}}
    }))
    .unwrap();
    assert!(!m.is_valid(&json!({"qty": 0})));
    assert!(Model::standalone(&json!({"type": "widget"})).is_err());
    assert!(Model::standalone(&json!({"minimum": "one"})).is_err());
}

#[test]
fn format_is_an_annotation_and_patterns_are_linear() {
    let m = Model::standalone(&json!({"format": "email"})).unwrap();
    assert!(m.is_valid(&json!("not an email")));
    let m = Model::standalone(&json!({"pattern": "^(a+)+$"})).unwrap();
    let evil = format!("{}!", "a".repeat(10_000));
    assert!(!m.is_valid(&json!(evil)));
    // look-around needs backtracking: refused at load, not run
    assert!(Model::standalone(&json!({"pattern": "^(?!admin).*$"})).is_err());
}

#[test]
fn model_names_are_uri_segments() {
    assert_eq!(uri_segment("New Order/x"), "New%20Order%2Fx");
    assert_eq!(
        segment_name("New%20Order%2Fx").as_deref(),
        Some("New Order/x")
    );
}
