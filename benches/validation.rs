//! What request validation costs a worker per request, without I/O: a typical 2 KB JSON order
//! against a realistic draft-4 order model (nested objects, an items array through `$ref` to
//! another model, patterns, enums, bounds, `additionalProperties: false`). Three cases: parse
//! and check (what a route with a body model adds over holding the body), the check alone (the
//! body already parsed for another phase), and a refused body (the check plus the `details`
//! list and the 400's body). Reading the body and the answer's I/O are not in here.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value as Json};
use tollgate::validate::body::invalid_body;
use tollgate::validate::model::Model;

/// A line item, its own model (as API Gateway users split them).
fn item() -> Json {
    json!({
        "type": "object",
        "required": ["sku", "qty", "unit_price"],
        "additionalProperties": false,
        "properties": {
            "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4,8}$"},
            "name": {"type": "string", "maxLength": 120},
            "qty": {"type": "integer", "minimum": 1, "maximum": 1000},
            "unit_price": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
            "currency": {"enum": ["EUR", "USD", "GBP"]},
            "gift": {"type": "boolean"}
        }
    })
}

/// The order model.
fn order() -> Json {
    let address = json!({
        "type": "object",
        "required": ["line1", "city", "postcode", "country"],
        "properties": {
            "line1": {"type": "string", "minLength": 1, "maxLength": 200},
            "line2": {"type": "string", "maxLength": 200},
            "city": {"type": "string", "minLength": 1},
            "postcode": {"type": "string", "pattern": "^[A-Z0-9 -]{3,10}$"},
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"}
        }
    });
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "NewOrder",
        "type": "object",
        "required": ["order_id", "customer", "shipping", "items", "payment"],
        "additionalProperties": false,
        "definitions": {"address": address},
        "properties": {
            "order_id": {"type": "string", "pattern": "^ord_[a-z0-9]{12}$"},
            "created": {"type": "string", "format": "date-time"},
            "customer": {
                "type": "object",
                "required": ["id", "email"],
                "properties": {
                    "id": {"type": "string"},
                    "email": {"type": "string", "maxLength": 254},
                    "name": {"type": "string"},
                    "tier": {"enum": ["standard", "plus", "business"]}
                }
            },
            "shipping": {"$ref": "#/definitions/address"},
            "billing": {"$ref": "#/definitions/address"},
            "items": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"$ref": "Item"}},
            "payment": {
                "type": "object",
                "required": ["method"],
                "properties": {
                    "method": {"enum": ["card", "paypal", "invoice"]},
                    "card_last4": {"type": "string", "pattern": "^[0-9]{4}$"}
                },
                "oneOf": [
                    {"properties": {"method": {"enum": ["card"]}}, "required": ["card_last4"]},
                    {"properties": {"method": {"enum": ["paypal", "invoice"]}}}
                ]
            },
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "note": {"type": "string", "maxLength": 500}
        }
    })
}

/// A ~2 KB order that satisfies the model.
fn body() -> String {
    let items: Vec<Json> = (0..12)
        .map(|i| {
            json!({"sku": format!("ABC-{:05}", 1000 + i), "name": format!("Widget model {i}"),
                   "qty": 1 + i % 4, "unit_price": 9.99 + f64::from(i), "currency": "EUR",
                   "gift": i % 5 == 0})
        })
        .collect();
    let address = json!({"line1": "12 Rue de la Paix", "line2": "3e étage", "city": "Paris",
                         "postcode": "75002", "country": "FR"});
    json!({
        "order_id": "ord_a1b2c3d4e5f6", "created": "2026-12-01T10:00:00Z",
        "customer": {"id": "cus_12345", "email": "ada@example.com", "name": "Ada Lovelace",
                     "tier": "plus"},
        "shipping": address, "billing": address, "items": items,
        "payment": {"method": "card", "card_last4": "4242"},
        "tags": ["web", "promo-winter", "first-order"],
        "note": "Leave the parcel with the concierge if nobody answers."
    })
    .to_string()
}

fn bench(c: &mut Criterion) {
    let docs = Arc::new(HashMap::from([
        ("Item".to_string(), item()),
        ("NewOrder".to_string(), order()),
    ]));
    let model = Model::compile("NewOrder", &order(), &docs).unwrap_or_else(|e| panic!("{e}"));
    let body = body();
    println!("body: {} bytes", body.len());
    let parsed: Json = serde_json::from_str(&body).unwrap_or_default();
    assert!(model.check(&parsed).is_ok());
    // the same order with three faults: a bad sku, a zero quantity, an unknown field
    let bad = body
        .replacen("ABC-01000", "abc", 1)
        .replacen(r#""qty":1"#, r#""qty":0"#, 1)
        .replacen(r#"{"billing""#, r#"{"coupon":"X","billing""#, 1);
    let bad: Json = serde_json::from_str(&bad).unwrap_or_default();
    assert_eq!(model.check(&bad).map_err(|d| d.len()), Err(3));

    let mut g = c.benchmark_group("validation");
    g.bench_function("parse_and_check_2kb", |b| {
        b.iter(|| {
            let doc: Json = serde_json::from_slice(black_box(body.as_bytes())).unwrap_or_default();
            black_box(model.check(&doc).is_ok())
        })
    });
    g.bench_function("check_2kb", |b| {
        b.iter(|| black_box(model.check(black_box(&parsed)).is_ok()))
    });
    g.bench_function("refuse_2kb", |b| {
        b.iter(|| match model.check(black_box(&bad)) {
            Ok(()) => 0,
            Err(d) => black_box(invalid_body(&d)).body.len(),
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
