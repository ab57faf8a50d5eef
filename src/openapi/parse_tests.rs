use super::*;
use serde_json::json;

#[test]
fn yaml_keys_that_are_numbers_or_booleans_become_text() {
    let p = parse("responses:\n  200: {description: ok}\n  4.5: x\n  true: y\n  ~: z\n").unwrap();
    assert_eq!(
        p.value,
        json!({"responses": {"200": {"description": "ok"}, "4.5": "x", "true": "y", "null": "z"}})
    );
}

#[test]
fn json_and_yaml_read_alike() {
    let json = parse(r#"{"a": [1, "two", {"b": null}], "c": 2.5}"#).unwrap();
    let yaml = parse("a: [1, two, {b: null}]\nc: 2.5\n").unwrap();
    assert_eq!(json.value, yaml.value);
    assert!(json.unsupported.is_empty() && yaml.unsupported.is_empty());
}

#[test]
fn merge_keys_are_applied_and_tags_reported() {
    let p = parse("base: &b {x: 1}\nitem:\n  <<: *b\n  y: !Sub 'text'\n").unwrap();
    assert_eq!(p.value["item"], json!({"x": 1, "y": "text"}));
    assert_eq!(p.unsupported.len(), 1);
    assert_eq!(p.unsupported[0].pointer, "/item/y");
}

#[test]
fn what_is_not_a_document_is_an_error() {
    for bad in [
        "",
        "   \n",
        "a: [1, 2",
        "{\"a\": ",
        "key: value\n  bad indent: [",
        "a: .inf\n",
        "[[]]: 1\n",
    ] {
        let r = parse(bad);
        assert!(r.is_err(), "{bad:?} parsed");
    }
}

#[test]
fn versions() {
    assert_eq!(
        version(&json!({"swagger": "2.0"})).unwrap(),
        Version::Swagger2
    );
    assert_eq!(
        version(&json!({"openapi": "3.0.3"})).unwrap(),
        Version::OpenApi30
    );
    assert_eq!(
        version(&json!({"openapi": "3.1.0"})).unwrap(),
        Version::OpenApi31
    );
    assert_eq!(
        version(&json!({"openapi": "4.0"})).unwrap_err().pointer,
        "/openapi"
    );
    assert_eq!(
        version(&json!({"swagger": 1.2})).unwrap_err().pointer,
        "/swagger"
    );
    assert_eq!(version(&json!({"info": {}})).unwrap_err().pointer, "");
    assert!(version(&json!([1])).is_err());
}

#[test]
fn references_are_followed_within_the_document() {
    let root = json!({
        "a": {"$ref": "#/b"},
        "b": {"$ref": "#/c~1d/%7Bx%7D"},
        "c/d": {"{x}": {"found": true}},
        "loop": {"$ref": "#/loop"},
        "away": {"$ref": "other.yaml#/x"},
        "nowhere": {"$ref": "#/missing"}
    });
    let (v, at) = deref(&root, &root["a"], "/a").unwrap();
    assert_eq!(v, &json!({"found": true}));
    assert_eq!(at, "/c~1d/{x}");
    assert!(deref(&root, &root["loop"], "/loop")
        .unwrap_err()
        .message
        .contains("cycle"));
    assert_eq!(
        deref(&root, &root["away"], "/away").unwrap_err().pointer,
        "/away/$ref"
    );
    assert_eq!(
        deref(&root, &root["nowhere"], "/nowhere")
            .unwrap_err()
            .pointer,
        "/nowhere/$ref"
    );
}

#[test]
fn percent_decoding_keeps_malformed_escapes() {
    assert_eq!(percent_decode("/a%7Bb%7D%zz%4"), "/a{b}%zz%4");
}
