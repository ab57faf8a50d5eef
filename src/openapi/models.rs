//! Request validators and models: `x-amazon-apigateway-request-validators` (by name) and
//! `x-amazon-apigateway-request-validator` (the definition's default, an operation's own) →
//! each route's `validate`: the JSON request body's schema (`requestBody`, or 2.0's `in: body`
//! parameter) as a `[[model]]` with its schema inline (`schema_json`), required headers and
//! query string parameters.
//!
//! A schema named in `components.schemas` / `definitions` keeps its name; an inline one is
//! named after the operation. References between schemas (`#/components/schemas/Item`)
//! become references between models (`Item`, which tollgate resolves by name), and every
//! schema they reach becomes a model too. OpenAPI 3.1 schemas are JSON Schema 2020-12 and say
//! so (`$schema`); 3.0's and 2.0's are read as draft 4, API Gateway's. Only what a validator
//! asks for is checked, as in API Gateway.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::parse::{self, object, Version};
use super::paths::{Cx, Operation};
use super::{child, ImportError};

/// JSON Schema 2020-12, OpenAPI 3.1's dialect.
const DIALECT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Request validators by name, and the definition's default.
#[derive(Debug, Default)]
pub(super) struct Validators {
    /// name → (validates the body, validates parameters)
    by_name: BTreeMap<String, (bool, bool)>,
    default: Option<String>,
}

/// The models collected so far: name → schema (references already rewritten).
#[derive(Debug, Default)]
pub(super) struct Models {
    schemas: BTreeMap<String, Value>,
    /// Where each named schema came from (to tell two schemas that would share a name apart).
    origins: BTreeMap<String, String>,
}

impl Models {
    /// The `[[model]]` tables, by name.
    pub fn into_tables(self) -> Vec<Map<String, Value>> {
        self.schemas
            .into_iter()
            .map(|(name, schema)| {
                let mut t = Map::new();
                t.insert("name".into(), Value::String(name));
                let json = serde_json::to_string_pretty(&schema).unwrap_or_default();
                t.insert("schema_json".into(), Value::String(json));
                t
            })
            .collect()
    }
}

/// Reads the definition's validators.
pub(super) fn validators(cx: &mut Cx<'_>, top: &Map<String, Value>) -> Result<(), ImportError> {
    if let Some(v) = top.get("x-amazon-apigateway-request-validators") {
        let ptr = "/x-amazon-apigateway-request-validators";
        for (name, def) in object(v, ptr)? {
            let at = child(ptr, name);
            let mut flags = (false, false);
            for (k, item) in object(def, &at)? {
                let fptr = child(&at, k);
                match k.as_str() {
                    "validateRequestBody" => flags.0 = parse::boolean(item, &fptr)?,
                    "validateRequestParameters" => flags.1 = parse::boolean(item, &fptr)?,
                    _ => cx.report(&fptr, format!("unknown validator field {k}: ignored")),
                }
            }
            cx.validators.by_name.insert(name.clone(), flags);
        }
    }
    if let Some(v) = top.get("x-amazon-apigateway-request-validator") {
        let ptr = "/x-amazon-apigateway-request-validator";
        let name = parse::string(v, ptr)?;
        if cx.validators.by_name.contains_key(name) {
            cx.validators.default = Some(name.to_string());
        } else {
            cx.report(
                ptr,
                format!("no request validator {name:?}: nothing is validated"),
            );
        }
    }
    Ok(())
}

/// The operation's validator → the route's `validate` (and the models it names).
pub(super) fn validate(
    cx: &mut Cx<'_>,
    o: &Operation<'_>,
    route: &mut Map<String, Value>,
) -> Result<(), ImportError> {
    let name = match o.op.get("x-amazon-apigateway-request-validator") {
        Some(v) => {
            let at = child(&o.ptr, "x-amazon-apigateway-request-validator");
            let name = parse::string(v, &at)?;
            if !cx.validators.by_name.contains_key(name) {
                cx.report(
                    &at,
                    format!("no request validator {name:?}: nothing is validated"),
                );
                return Ok(());
            }
            name.to_string()
        }
        None => match &cx.validators.default {
            Some(d) => d.clone(),
            None => return Ok(()),
        },
    };
    let (body, params) = cx
        .validators
        .by_name
        .get(&name)
        .copied()
        .unwrap_or_default();
    let mut validate = Map::new();
    if params {
        let mut headers = Vec::new();
        let mut queries = Vec::new();
        for (p, _) in &o.params {
            let required = p.get("required").and_then(Value::as_bool) == Some(true);
            let name = p.get("name").and_then(Value::as_str);
            match (p.get("in").and_then(Value::as_str), name) {
                (Some("header"), Some(n)) if required => headers.push(Value::String(n.into())),
                (Some("query"), Some(n)) if required => queries.push(Value::String(n.into())),
                _ => {}
            }
        }
        if !headers.is_empty() {
            validate.insert("required_headers".into(), Value::Array(headers));
        }
        if !queries.is_empty() {
            validate.insert("required_querystrings".into(), Value::Array(queries));
        }
    }
    if body {
        if let Some(model) = body_model(cx, o)? {
            validate.insert("body".into(), Value::String(model));
        }
    }
    if !validate.is_empty() {
        route.insert("validate".into(), Value::Object(validate));
    }
    Ok(())
}

/// The model of the operation's JSON request body, if it has a schema.
fn body_model(cx: &mut Cx<'_>, o: &Operation<'_>) -> Result<Option<String>, ImportError> {
    let root = cx.root;
    let (schema, ptr) = if cx.version == Version::Swagger2 {
        let param = o
            .params
            .iter()
            .find(|(p, _)| p.get("in").and_then(Value::as_str) == Some("body"));
        match param.and_then(|(p, at)| Some((p.get("schema")?, child(at, "schema")))) {
            Some(found) => found,
            None => return Ok(None),
        }
    } else {
        let Some(body) = o.op.get("requestBody") else {
            return Ok(None);
        };
        let (body, at) = parse::deref(root, body, &child(&o.ptr, "requestBody"))?;
        let Some(content) = object(body, &at)?.get("content") else {
            return Ok(None);
        };
        let cptr = child(&at, "content");
        let content = object(content, &cptr)?;
        let json = content
            .iter()
            .find(|(ct, _)| ct.eq_ignore_ascii_case("application/json"));
        for (ct, _) in content.iter().filter(|(ct, m)| {
            !ct.eq_ignore_ascii_case("application/json") && m.get("schema").is_some()
        }) {
            cx.report(&child(&cptr, ct), format!("a {ct} body model: tollgate validates JSON bodies (and refuses others with 415 on this route)"));
        }
        let Some((ct, media)) = json else {
            return Ok(None);
        };
        let mptr = child(&cptr, ct);
        match object(media, &mptr)?.get("schema") {
            Some(s) => (s, child(&mptr, "schema")),
            None => return Ok(None),
        }
    };
    let name = match named(schema) {
        Some(target) => model_name(target),
        None => {
            let base =
                o.op.get("operationId")
                    .and_then(Value::as_str)
                    .map(sanitize)
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| sanitize(&format!("{} body", o.key)));
            let mut name = base.clone();
            let mut n = 2;
            while cx.models.origins.get(&name).is_some_and(|p| *p != ptr) {
                name = format!("{base}{n}");
                n += 1;
            }
            cx.models.origins.insert(name.clone(), ptr.clone());
            let rewritten = rewrite(cx, schema, &ptr);
            cx.models
                .schemas
                .insert(name.clone(), with_dialect(cx, rewritten));
            collect(cx, schema, &ptr)?;
            return Ok(Some(name));
        }
    };
    let schema_name = name.clone();
    collect(cx, schema, &ptr)?;
    Ok(Some(schema_name))
}

/// The component a schema is only a reference to (`#/components/schemas/Pet` → `Pet`).
fn named(schema: &Value) -> Option<&str> {
    let r = schema.as_object()?.get("$ref")?.as_str()?;
    let name = r
        .strip_prefix("#/components/schemas/")
        .or_else(|| r.strip_prefix("#/definitions/"))?;
    (!name.contains('/')).then_some(name)
}

/// A model name from a component's name: letters, digits, `_` and `-` (others become `_`).
fn model_name(component: &str) -> String {
    sanitize(&parse::percent_decode(
        &component.replace("~1", "/").replace("~0", "~"),
    ))
}

fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut collapsed = String::with_capacity(out.len());
    for c in out.chars() {
        if !(c == '_' && collapsed.ends_with('_')) {
            collapsed.push(c);
        }
    }
    let out = collapsed.trim_matches('_').to_string();
    out.chars()
        .take(crate::config::validation::MAX_MODEL_NAME)
        .collect()
}

/// Makes a model of every named schema `schema` reaches (itself included when it is one).
fn collect(cx: &mut Cx<'_>, schema: &Value, ptr: &str) -> Result<(), ImportError> {
    let root = cx.root;
    let mut queue = vec![(schema.clone(), ptr.to_string())];
    let mut hops = 0;
    while let Some((s, at)) = queue.pop() {
        hops += 1;
        if hops > 10_000 {
            return Err(ImportError::new(ptr, "too many schemas reached by $ref"));
        }
        let mut refs = Vec::new();
        references(&s, &mut refs);
        if let Some(target) = named(&s) {
            refs.push(format!("#/components/schemas/{target}"));
        }
        for r in refs {
            let Some(component) = r
                .strip_prefix("#/components/schemas/")
                .or_else(|| r.strip_prefix("#/definitions/"))
                .map(|c| c.split('/').next().unwrap_or_default())
            else {
                continue;
            };
            let name = model_name(component);
            if cx.models.schemas.contains_key(&name) {
                continue;
            }
            let holder = if cx.version == Version::Swagger2 {
                "/definitions"
            } else {
                "/components/schemas"
            };
            let target_ptr = format!("{holder}/{}", parse::percent_decode(component));
            let Some(target) = root.pointer(&target_ptr) else {
                return Err(ImportError::new(&at, format!("{r:?} names no schema")));
            };
            let rewritten = rewrite(cx, target, &target_ptr);
            cx.models.origins.insert(name.clone(), target_ptr.clone());
            cx.models.schemas.insert(name, with_dialect(cx, rewritten));
            queue.push((target.clone(), target_ptr));
        }
    }
    Ok(())
}

/// Every `$ref` string inside `schema`.
fn references(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// `schema` with its references to components rewritten as references to models
/// (`#/components/schemas/Item/properties/x` → `Item#/properties/x`); other references
/// outside the schema are reported.
fn rewrite(cx: &mut Cx<'_>, schema: &Value, ptr: &str) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let at = child(ptr, k);
                    let v = match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => Value::String(model_ref(cx, r, &at)),
                        _ => rewrite(cx, v, &at),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| rewrite(cx, v, &child(ptr, &i.to_string())))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn model_ref(cx: &mut Cx<'_>, r: &str, ptr: &str) -> String {
    let Some(rest) = r
        .strip_prefix("#/components/schemas/")
        .or_else(|| r.strip_prefix("#/definitions/"))
    else {
        if r.starts_with("#/") && !r.starts_with("#/definitions") && !r.starts_with("#/$defs") {
            cx.report(
                ptr,
                format!("reference {r:?} outside the schemas: the model cannot resolve it"),
            );
        }
        return r.to_string();
    };
    match rest.split_once('/') {
        Some((component, inner)) => format!("{}#/{inner}", model_name(component)),
        None => model_name(rest),
    }
}

fn with_dialect(cx: &Cx<'_>, mut schema: Value) -> Value {
    if cx.version == Version::OpenApi31 {
        if let Value::Object(m) = &mut schema {
            m.entry("$schema")
                .or_insert_with(|| Value::String(DIALECT_2020_12.into()));
        }
    }
    schema
}
