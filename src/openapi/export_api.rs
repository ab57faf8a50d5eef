//! The API-wide parts of the export: authorizers → `components.securitySchemes`, models →
//! `components.schemas` (references between models as references between schemas), and the
//! root extensions (binary media types, API key source, CORS, gateway responses, request
//! validators). See [`super::export`].

use serde_json::{json, Map, Value};

use super::export::{empty, extra, tables, text};

/// An authorizer → a security scheme.
pub(super) fn scheme(a: &Map<String, Value>) -> Value {
    let kind = text(a, "type").unwrap_or_default();
    let (mut scheme, mapped): (Map<String, Value>, &[&str]) = match kind {
        "jwt" => {
            let mut auth = Map::new();
            auth.insert("type".into(), json!("jwt"));
            let mut conf = Map::new();
            if let Some(i) = a.get("issuer").filter(|v| !v.is_null()) {
                conf.insert("issuer".into(), i.clone());
            }
            if let Some(aud) = a.get("audience").filter(|v| !v.is_null()) {
                conf.insert("audience".into(), aud.clone());
            }
            auth.insert("jwtConfiguration".into(), Value::Object(conf));
            if let Some(s) = text(a, "identity_source") {
                auth.insert("identitySource".into(), json!(s));
            }
            let mut s = Map::new();
            s.insert("type".into(), json!("oauth2"));
            s.insert("flows".into(), json!({}));
            s.insert("x-amazon-apigateway-authorizer".into(), Value::Object(auth));
            (
                s,
                &["name", "type", "issuer", "audience", "identity_source"],
            )
        }
        "request" => {
            let mut auth = Map::new();
            auth.insert("type".into(), json!("request"));
            if let Some(f) = text(a, "function") {
                let region = f
                    .strip_prefix("arn:aws:lambda:")
                    .and_then(|rest| rest.split(':').next())
                    .filter(|r| !r.is_empty())
                    .unwrap_or("us-east-1");
                auth.insert("authorizerUri".into(), json!(format!("arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{f}/invocations")));
            } else if let Some(u) = text(a, "url") {
                auth.insert("authorizerUri".into(), json!(u));
            }
            auth.insert(
                "authorizerPayloadFormatVersion".into(),
                json!(text(a, "payload_format").unwrap_or("2.0")),
            );
            if a.get("simple_responses") == Some(&Value::Bool(true)) {
                auth.insert("enableSimpleResponses".into(), json!(true));
            }
            if let Some(list) = a.get("identity_sources").and_then(Value::as_array) {
                let joined: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                if !joined.is_empty() {
                    auth.insert("identitySource".into(), json!(joined.join(", ")));
                }
            }
            if let Some(ttl) = a.get("ttl_s").filter(|v| !v.is_null()) {
                auth.insert("authorizerResultTtlInSeconds".into(), ttl.clone());
            }
            let mut s = Map::new();
            s.insert("type".into(), json!("apiKey"));
            s.insert("name".into(), json!("Authorization"));
            s.insert("in".into(), json!("header"));
            s.insert("x-amazon-apigateway-authtype".into(), json!("custom"));
            s.insert("x-amazon-apigateway-authorizer".into(), Value::Object(auth));
            let mapped: &[&str] = &[
                "name",
                "type",
                "function",
                "url",
                "payload_format",
                "simple_responses",
                "identity_sources",
                "ttl_s",
            ];
            (s, mapped)
        }
        _ => {
            let s = json!({ "type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4" });
            (
                s.as_object().cloned().unwrap_or_default(),
                &["name", "type"],
            )
        }
    };
    if let Some(x) = extra(a, mapped) {
        scheme.insert("x-tollgate".into(), x);
    }
    Value::Object(scheme)
}

/// `[[model]]`s → `components.schemas`, references between models as references between
/// schemas.
pub(super) fn models(file: &Map<String, Value>) -> Map<String, Value> {
    let names: Vec<&str> = tables(file, "model")
        .filter_map(|m| text(m, "name"))
        .collect();
    let mut out = Map::new();
    for m in tables(file, "model") {
        let Some(name) = text(m, "name") else {
            continue;
        };
        let schema = match (text(m, "schema_json"), text(m, "schema")) {
            (Some(json), _) => serde_json::from_str::<Value>(json)
                .map(|s| to_components(&s, &names))
                .unwrap_or_else(|_| json!({ "description": "tollgate: schema_json is not JSON" })),
            (None, Some(file)) => {
                json!({ "description": format!("tollgate: JSON Schema in {file} (not embedded)") })
            }
            _ => json!({}),
        };
        out.insert(name.to_string(), schema);
    }
    out
}

fn to_components(schema: &Value, models: &[&str]) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        let (model, inner) = r.split_once('#').unwrap_or((r, ""));
                        let v = if models.contains(&model) {
                            json!(format!(
                                "#/components/schemas/{}{}",
                                super::escape(model),
                                inner
                            ))
                        } else {
                            v.clone()
                        };
                        (k.clone(), v)
                    }
                    _ => (k.clone(), to_components(v, models)),
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| to_components(v, models)).collect())
        }
        other => other.clone(),
    }
}

pub(super) fn root_extensions(
    file: &Map<String, Value>,
    doc: &mut Map<String, Value>,
    validators: Map<String, Value>,
) {
    if let Some(types) = file.get("binary_media_types").filter(|v| !empty(v)) {
        doc.insert(
            "x-amazon-apigateway-binary-media-types".into(),
            types.clone(),
        );
    }
    if let Some(source) = text(file, "api_key_source") {
        doc.insert("x-amazon-apigateway-api-key-source".into(), json!(source));
    }
    if let Some(c) = file.get("cors").and_then(Value::as_object) {
        let mut cors = Map::new();
        for (ours, aws) in [
            ("allow_origins", "allowOrigins"),
            ("allow_methods", "allowMethods"),
            ("allow_headers", "allowHeaders"),
            ("expose_headers", "exposeHeaders"),
            ("max_age", "maxAge"),
            ("allow_credentials", "allowCredentials"),
        ] {
            if let Some(v) = c.get(ours).filter(|v| !empty(v)) {
                cors.insert(aws.into(), v.clone());
            }
        }
        doc.insert("x-amazon-apigateway-cors".into(), Value::Object(cors));
    }
    let mut responses = Map::new();
    for g in tables(file, "gateway_response") {
        let Some(kind) = text(g, "type") else {
            continue;
        };
        let mut r = Map::new();
        if let Some(s) = g.get("status").filter(|v| !v.is_null()) {
            r.insert("statusCode".into(), json!(s.to_string()));
        }
        if let Some(h) = g
            .get("headers")
            .and_then(Value::as_object)
            .filter(|h| !h.is_empty())
        {
            let params: Map<String, Value> = h
                .iter()
                .map(|(k, v)| (format!("gatewayresponse.header.{k}"), v.clone()))
                .collect();
            r.insert("responseParameters".into(), Value::Object(params));
        }
        if let Some(body) = text(g, "body") {
            let ct = text(g, "content_type").unwrap_or("application/json");
            r.insert("responseTemplates".into(), json!({ ct: body }));
        }
        responses.insert(kind.to_string(), Value::Object(r));
    }
    if !responses.is_empty() {
        doc.insert(
            "x-amazon-apigateway-gateway-responses".into(),
            Value::Object(responses),
        );
    }
    if !validators.is_empty() {
        doc.insert(
            "x-amazon-apigateway-request-validators".into(),
            Value::Object(validators),
        );
    }
}
