//! An API file → OpenAPI 3.0 with API Gateway's extensions (the way back of the import: a
//! definition exported here imports to the same API file).
//!
//! Works on the file's JSON form (serde's view of [`RawApiFile`]). Routes → `paths` with an
//! `x-amazon-apigateway-integration` each (`upstream` → `http_proxy`, or `http` with
//! templates; `function` → `aws_proxy` on API Gateway's Lambda invocation URI; `mock` →
//! `mock` with its status, headers and body); parameter mappings in HTTP APIs' syntax;
//! authorizers → `securitySchemes`; `validate` → request validators, parameters and a
//! `requestBody` on `components.schemas`. What API Gateway has no word for (throttling, IP
//! rules, client certificates, a JWT authorizer's `jwks_uri`, an IAM authorizer's
//! credentials, ...) is kept under `x-tollgate` on the operation or scheme, which the import
//! reads back. A model with a schema file (not inline) is exported as a description naming
//! the file: the export does not read files.

use serde_json::{json, Map, Value};

use super::paths::Cx;
use super::{child, ImportError};
use crate::config::raw::RawApiFile;

/// Every key of a `[[route]]` (kept in step with `RawRoute` by a test).
pub(super) const ROUTE_KEYS: [&str; 30] = [
    "key",
    "host",
    "upstream",
    "mock",
    "path",
    "throttle",
    "api_key_required",
    "request_buffer_bytes",
    "min_body_rate",
    "timeout_ms",
    "strip_api_key",
    "websocket",
    "websocket_idle_ms",
    "function",
    "payload_format",
    "authorizer",
    "scopes",
    "mtls",
    "allow_subjects",
    "allow_ips",
    "deny_ips",
    "cors",
    "request_parameters",
    "response_parameters",
    "transform",
    "request_template",
    "response_template",
    "validate",
    "compression",
    "max_body_bytes",
];

/// Every key of an `[[authorizer]]` (kept in step with `RawAuthorizer` by a test).
pub(super) const AUTHORIZER_KEYS: [&str; 25] = [
    "name",
    "type",
    "issuer",
    "audience",
    "jwks_uri",
    "identity_source",
    "leeway_s",
    "jwks_refresh_s",
    "token_cache_entries",
    "token_cache_bytes",
    "function",
    "url",
    "payload_format",
    "simple_responses",
    "identity_sources",
    "ttl_s",
    "timeout_ms",
    "cache_entries",
    "cache_bytes",
    "region",
    "service",
    "max_body_bytes",
    "unverified_body_budget_bytes",
    "unverified_body_timeout_ms",
    "credential",
];

/// Route keys the export expresses in API Gateway's terms.
const ROUTE_MAPPED: [&str; 15] = [
    "key",
    "upstream",
    "path",
    "mock",
    "function",
    "payload_format",
    "timeout_ms",
    "authorizer",
    "scopes",
    "api_key_required",
    "request_parameters",
    "response_parameters",
    "request_template",
    "response_template",
    "validate",
];

/// The API file `api` as an OpenAPI 3.0 definition titled `name`.
pub fn export(api: &RawApiFile, name: &str) -> Value {
    let file = match serde_json::to_value(api) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut doc = Map::new();
    doc.insert("openapi".into(), json!("3.0.1"));
    doc.insert("info".into(), json!({ "title": name, "version": "1.0" }));
    if let Some(base) = file.get("base_path").and_then(Value::as_str) {
        let base = base.trim_start_matches('/');
        doc.insert(
            "servers".into(),
            json!([{ "url": "/{basePath}", "variables": { "basePath": { "default": base } } }]),
        );
    }
    let mut schemes = Map::new();
    for a in tables(&file, "authorizer") {
        if let Some(n) = a.get("name").and_then(Value::as_str) {
            schemes.insert(n.to_string(), super::export_api::scheme(a));
        }
    }
    let key_scheme = ["api_key", "tollgate_api_key"]
        .into_iter()
        .find(|k| !schemes.contains_key(*k))
        .unwrap_or("tollgate_api_key");
    let mut validators = Map::new();
    let mut paths = Map::new();
    for r in tables(&file, "route") {
        let Some(key) = r.get("key").and_then(Value::as_str) else {
            continue;
        };
        let (method, path) = match key.split_once(' ') {
            Some((m, p)) => (m.to_ascii_uppercase(), p.to_string()),
            None => ("ANY".to_string(), "/$default".to_string()),
        };
        let field = if method == "ANY" {
            "x-amazon-apigateway-any-method".to_string()
        } else {
            method.to_ascii_lowercase()
        };
        let op = operation(r, &method, &path, key_scheme, &mut validators);
        if let Value::Object(item) = paths.entry(path).or_insert_with(|| json!({})) {
            item.insert(field, op);
        }
    }
    if tables(&file, "route").any(|r| r.get("api_key_required") == Some(&Value::Bool(true))) {
        schemes.insert(
            key_scheme.into(),
            json!({ "type": "apiKey", "name": "x-api-key", "in": "header" }),
        );
    }
    doc.insert("paths".into(), Value::Object(paths));
    let mut components = Map::new();
    let models = super::export_api::models(&file);
    if !models.is_empty() {
        components.insert("schemas".into(), Value::Object(models));
    }
    if !schemes.is_empty() {
        components.insert("securitySchemes".into(), Value::Object(schemes));
    }
    if !components.is_empty() {
        doc.insert("components".into(), Value::Object(components));
    }
    super::export_api::root_extensions(&file, &mut doc, validators);
    Value::Object(doc)
}

/// The array of tables `key` of the file.
pub(super) fn tables<'a>(
    file: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    file.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// Whether a value says nothing (absent, `false`, empty).
pub(super) fn empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// The keys of `table` not in `mapped`, for `x-tollgate` (`false` kept: at this level it was
/// written, an absent value being `null`).
pub(super) fn extra(table: &Map<String, Value>, mapped: &[&str]) -> Option<Value> {
    let rest: Map<String, Value> = table
        .iter()
        .filter(|(k, _)| !mapped.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.clone(), prune(v)?)))
        .collect();
    (!rest.is_empty()).then_some(Value::Object(rest))
}

/// `v` without what serde wrote for defaults: `null`s, empty lists and tables, and
/// `allow_credentials = false` (CORS's default); `None` when nothing is left.
fn prune(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(items) if items.is_empty() => None,
        Value::Object(m) => {
            let kept: Map<String, Value> = m
                .iter()
                .filter(|(k, v)| !(k.as_str() == "allow_credentials" && **v == Value::Bool(false)))
                .filter_map(|(k, v)| Some((k.clone(), prune(v)?)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other.clone()),
    }
}

pub(super) fn text<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// One route → an operation.
fn operation(
    r: &Map<String, Value>,
    method: &str,
    path: &str,
    key_scheme: &str,
    validators: &mut Map<String, Value>,
) -> Value {
    let mut op = Map::new();
    let mut params: Vec<Value> = super::paths::path_params(path)
        .into_iter()
        .map(|n| json!({ "name": n, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    let mut requirement = Map::new();
    if let Some(a) = text(r, "authorizer") {
        let scopes = r
            .get("scopes")
            .filter(|s| !s.is_null())
            .cloned()
            .unwrap_or(json!([]));
        requirement.insert(a.to_string(), scopes);
    }
    if r.get("api_key_required") == Some(&Value::Bool(true)) {
        requirement.insert(key_scheme.to_string(), json!([]));
    }
    if !requirement.is_empty() {
        op.insert("security".into(), json!([requirement]));
    }
    if let Some(v) = r.get("validate").and_then(Value::as_object) {
        let mut params_checked = false;
        for (k, place) in [
            ("required_headers", "header"),
            ("required_querystrings", "query"),
        ] {
            for n in v.get(k).and_then(Value::as_array).into_iter().flatten() {
                params_checked = true;
                params.push(json!({ "name": n, "in": place, "required": true, "schema": { "type": "string" } }));
            }
        }
        let body = text(v, "body");
        if let Some(model) = body {
            op.insert(
                "requestBody".into(),
                json!({ "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{model}") } } }, "required": true }),
            );
        }
        let (name, flags) = match (body.is_some(), params_checked) {
            (true, true) => ("all", (true, true)),
            (true, false) => ("body-only", (true, false)),
            _ => ("params-only", (false, true)),
        };
        validators.insert(
            name.into(),
            json!({ "validateRequestBody": flags.0, "validateRequestParameters": flags.1 }),
        );
        op.insert("x-amazon-apigateway-request-validator".into(), json!(name));
    }
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    op.insert(
        "responses".into(),
        json!({ "default": { "description": "Default response" } }),
    );
    if let Some(i) = integration(r, method) {
        op.insert("x-amazon-apigateway-integration".into(), i);
    }
    // templates and request mappings are API Gateway's only on HTTP and mock integrations
    let function = r.get("function").is_some_and(|f| !f.is_null());
    let mock = r.get("mock").is_some_and(|m| !m.is_null());
    let mapped: Vec<&str> = ROUTE_MAPPED
        .into_iter()
        .filter(|k| match *k {
            "request_template" | "request_parameters" => !function && !mock,
            "response_template" => !function,
            _ => true,
        })
        .collect();
    if let Some(x) = extra(r, &mapped) {
        op.insert("x-tollgate".into(), x);
    }
    Value::Object(op)
}

/// The route's integration.
fn integration(r: &Map<String, Value>, method: &str) -> Option<Value> {
    let mut i = Map::new();
    if let Some(f) = text(r, "function") {
        let region = f
            .strip_prefix("arn:aws:lambda:")
            .and_then(|rest| rest.split(':').next())
            .filter(|r| !r.is_empty())
            .unwrap_or("us-east-1");
        i.insert("type".into(), json!("aws_proxy"));
        i.insert("httpMethod".into(), json!("POST"));
        let uri =
            format!("arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{f}/invocations");
        i.insert("uri".into(), json!(uri));
        i.insert(
            "payloadFormatVersion".into(),
            json!(text(r, "payload_format").unwrap_or("2.0")),
        );
    } else if let Some(u) = text(r, "upstream") {
        let templates = !empty(r.get("request_template").unwrap_or(&Value::Null))
            || !empty(r.get("response_template").unwrap_or(&Value::Null));
        i.insert(
            "type".into(),
            json!(if templates { "http" } else { "http_proxy" }),
        );
        i.insert("httpMethod".into(), json!(method));
        let path = text(r, "path").unwrap_or_default();
        if u.contains("://") {
            i.insert("uri".into(), json!(format!("{u}{path}")));
        } else {
            i.insert("uri".into(), json!(format!("http://{u}{path}")));
            i.insert("x-tollgate-upstream".into(), json!(u));
        }
        if let Some(p) = r.get("request_parameters").filter(|v| !empty(v)) {
            i.insert("requestParameters".into(), p.clone());
        }
        if let Some(t) = r.get("request_template").filter(|v| !empty(v)) {
            i.insert("requestTemplates".into(), by_type(t));
        }
        if let Some(t) = r.get("response_template").filter(|v| !empty(v)) {
            i.insert(
                "responses".into(),
                json!({ "default": { "statusCode": "200", "responseTemplates": by_type(t) } }),
            );
        }
        i.insert("passthroughBehavior".into(), json!("when_no_match"));
    } else if let Some(m) = r.get("mock").and_then(Value::as_object) {
        i = mock(m, r.get("response_template"));
    } else {
        return None;
    }
    if let Some(ms) = r.get("timeout_ms").filter(|v| !v.is_null()) {
        i.insert("timeoutInMillis".into(), ms.clone());
    }
    if let Some(p) = r.get("response_parameters").filter(|v| !empty(v)) {
        i.insert("responseParameters".into(), p.clone());
    }
    Some(Value::Object(i))
}

/// A template value (one string, or a table by content type) as `{type: template}`.
fn by_type(t: &Value) -> Value {
    match t {
        Value::String(s) => json!({ "application/json": s }),
        other => other.clone(),
    }
}

fn mock(m: &Map<String, Value>, template: Option<&Value>) -> Map<String, Value> {
    let status = m.get("status").and_then(Value::as_u64).unwrap_or(200);
    let headers = m.get("headers").and_then(Value::as_object);
    let content_type = headers
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        })
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("application/json");
    let mut response = Map::new();
    response.insert("statusCode".into(), json!(status.to_string()));
    let params: Map<String, Value> = headers
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            Some((
                format!("method.response.header.{k}"),
                json!(format!("'{}'", v.as_str()?)),
            ))
        })
        .collect();
    if !params.is_empty() {
        response.insert("responseParameters".into(), Value::Object(params));
    }
    let body = m.get("body").and_then(Value::as_str).unwrap_or_default();
    match template.filter(|t| !empty(t)) {
        Some(t) => {
            response.insert("responseTemplates".into(), by_type(t));
        }
        None if !body.is_empty() => {
            response.insert("responseTemplates".into(), json!({ content_type: body }));
        }
        None => {}
    }
    let mut i = Map::new();
    i.insert("type".into(), json!("mock"));
    i.insert(
        "requestTemplates".into(),
        json!({ "application/json": format!("{{\"statusCode\": {status}}}") }),
    );
    i.insert("responses".into(), json!({ "default": response }));
    i.insert("passthroughBehavior".into(), json!("when_no_match"));
    i
}

/// `x-tollgate` of an operation or security scheme → its keys on the table (tollgate's own
/// keys, which API Gateway has no word for); they win over what the import derived (an IAM
/// authorizer's region guessed from the definition's ARNs).
pub(super) fn merge_extra(
    cx: &mut Cx<'_>,
    extra: &Value,
    ptr: &str,
    table: &mut Map<String, Value>,
    allowed: &[&str],
) -> Result<(), ImportError> {
    for (k, v) in super::parse::object(extra, ptr)? {
        if !allowed.contains(&k.as_str()) {
            cx.report(&child(ptr, k), format!("unknown tollgate key {k}: ignored"));
        } else if !v.is_null() {
            table.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
