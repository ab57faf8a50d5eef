//! The definition's root: what applies to the whole API.
//!
//! `servers` (3.x, the URL's path with its variables' defaults) / `basePath` (2.0) →
//! `base_path`; `x-amazon-apigateway-binary-media-types` → `binary_media_types`;
//! `x-amazon-apigateway-api-key-source` → `api_key_source`; `x-amazon-apigateway-cors` →
//! `[cors]`; `x-amazon-apigateway-gateway-responses` → `[[gateway_response]]`. Extensions that
//! configure what tollgate decides elsewhere (a resource policy, endpoint types, compression
//! size) are reported; the request validators are [`super::models`]'.

use serde_json::{Map, Value};

use super::parse::{self, object, scalar_text, string};
use super::paths::Cx;
use super::{child, ImportError};

/// Root extensions this module or another one reads, or that change nothing tollgate does.
const ROOT_EXTENSIONS: [&str; 11] = [
    "x-amazon-apigateway-binary-media-types",
    "x-amazon-apigateway-api-key-source",
    "x-amazon-apigateway-cors",
    "x-amazon-apigateway-gateway-responses",
    "x-amazon-apigateway-request-validators",
    "x-amazon-apigateway-request-validator",
    "x-amazon-apigateway-importexport-version",
    "x-amazon-apigateway-documentation",
    "x-amazon-apigateway-policy",
    "x-amazon-apigateway-endpoint-configuration",
    "x-amazon-apigateway-minimum-compression-size",
];

/// Reads the root's settings into `file`.
pub(super) fn root(
    cx: &mut Cx<'_>,
    top: &Map<String, Value>,
    file: &mut Map<String, Value>,
) -> Result<(), ImportError> {
    cx.unknown_extensions(top, "", &ROOT_EXTENSIONS);
    if let Some(base) = base_path(top)? {
        file.insert("base_path".into(), Value::String(base));
    }
    if let Some(v) = top.get("x-amazon-apigateway-binary-media-types") {
        let ptr = "/x-amazon-apigateway-binary-media-types";
        let types: Vec<Value> = parse::strings(v, ptr)?
            .into_iter()
            // API Gateway's own settings escape `/` as `~1`; OpenAPI writes the type as is
            .map(|t| Value::String(t.replace("~1", "/")))
            .collect();
        if !types.is_empty() {
            file.insert("binary_media_types".into(), Value::Array(types));
        }
    }
    if let Some(v) = top.get("x-amazon-apigateway-api-key-source") {
        let ptr = "/x-amazon-apigateway-api-key-source";
        let source = string(v, ptr)?.to_ascii_uppercase();
        if source == "HEADER" || source == "AUTHORIZER" {
            file.insert("api_key_source".into(), Value::String(source));
        } else {
            cx.report(
                ptr,
                format!("API key source {source:?}: HEADER or AUTHORIZER"),
            );
        }
    }
    if let Some(v) = top.get("x-amazon-apigateway-cors") {
        let cors = cors(cx, v, "/x-amazon-apigateway-cors")?;
        file.insert("cors".into(), Value::Object(cors));
    }
    if let Some(v) = top.get("x-amazon-apigateway-gateway-responses") {
        let list = gateway_responses(cx, v, "/x-amazon-apigateway-gateway-responses")?;
        if !list.is_empty() {
            file.insert("gateway_response".into(), Value::Array(list));
        }
    }
    if top.contains_key("x-amazon-apigateway-policy") {
        cx.report(
            "/x-amazon-apigateway-policy",
            "resource policy: not enforced (use IP rules, authorizers and API keys)",
        );
    }
    if let Some(v) = top.get("x-amazon-apigateway-endpoint-configuration") {
        let ptr = "/x-amazon-apigateway-endpoint-configuration";
        let ids = object(v, ptr)?.get("vpcEndpointIds");
        if ids.and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
            cx.report(
                &child(ptr, "vpcEndpointIds"),
                "private API (VPC endpoints): [[mapping]] and IP rules decide who reaches it",
            );
        }
    }
    if let Some(v) = top.get("x-amazon-apigateway-minimum-compression-size") {
        let n = scalar_text(v).unwrap_or_default();
        cx.report(
            "/x-amazon-apigateway-minimum-compression-size",
            format!("compression is the gateway's [compression] (min_bytes = {n})"),
        );
    }
    Ok(())
}

/// The base path the definition was published under: Swagger's `basePath`, or the path of
/// the first server's URL with its variables' defaults.
fn base_path(top: &Map<String, Value>) -> Result<Option<String>, ImportError> {
    let raw = if let Some(b) = top.get("basePath") {
        string(b, "/basePath")?.to_string()
    } else if let Some(servers) = top.get("servers") {
        let Some(first) = parse::array(servers, "/servers")?.first() else {
            return Ok(None);
        };
        let server = object(first, "/servers/0")?;
        let Some(url) = server.get("url") else {
            return Ok(None);
        };
        let mut url = string(url, "/servers/0/url")?.to_string();
        if let Some(vars) = server.get("variables") {
            for (name, var) in object(vars, "/servers/0/variables")? {
                let default = var.get("default").and_then(scalar_text).unwrap_or_default();
                url = url.replace(&format!("{{{name}}}"), &default);
            }
        }
        match url.split_once("://") {
            Some((_, rest)) => rest
                .split_once('/')
                .map_or(String::new(), |(_, path)| format!("/{path}")),
            None => url,
        }
    } else {
        return Ok(None);
    };
    let trimmed = raw.split(['?', '#']).next().unwrap_or_default();
    let trimmed = trimmed.trim_matches('/');
    // a path from an unsubstituted variable stays out: it says nothing
    if trimmed.is_empty() || trimmed.contains(['{', '}']) {
        return Ok(None);
    }
    Ok(Some(format!("/{trimmed}")))
}

/// `x-amazon-apigateway-cors` → `[cors]`.
fn cors(cx: &mut Cx<'_>, v: &Value, ptr: &str) -> Result<Map<String, Value>, ImportError> {
    let mut out = Map::new();
    for (k, item) in object(v, ptr)? {
        let at = child(ptr, k);
        let key = match k.as_str() {
            "allowOrigins" => "allow_origins",
            "allowMethods" => "allow_methods",
            "allowHeaders" => "allow_headers",
            "exposeHeaders" => "expose_headers",
            "maxAge" => {
                match item.as_i64() {
                    Some(n) if n >= 0 => {
                        out.insert("max_age".into(), Value::from(n));
                    }
                    _ => cx.report(&at, "maxAge must be 0 or more: not set"),
                }
                continue;
            }
            "allowCredentials" => {
                let b = parse::boolean(item, &at)?;
                if b {
                    out.insert("allow_credentials".into(), Value::Bool(true));
                }
                continue;
            }
            _ => {
                if !k.starts_with("x-") || k.starts_with("x-amazon-apigateway-") {
                    cx.report(&at, format!("unknown CORS setting {k}: ignored"));
                }
                continue;
            }
        };
        let list: Vec<Value> = parse::strings(item, &at)?
            .into_iter()
            .map(Value::String)
            .collect();
        if !list.is_empty() {
            out.insert(key.into(), Value::Array(list));
        }
    }
    Ok(out)
}

/// `x-amazon-apigateway-gateway-responses` → `[[gateway_response]]` tables.
fn gateway_responses(cx: &mut Cx<'_>, v: &Value, ptr: &str) -> Result<Vec<Value>, ImportError> {
    let mut out = Vec::new();
    for (kind, item) in object(v, ptr)? {
        let at = child(ptr, kind);
        if crate::gateway_response::ResponseType::from_name(kind).is_none() {
            cx.report(
                &at,
                format!("unknown gateway response type {kind}: ignored"),
            );
            continue;
        }
        let mut table = Map::new();
        table.insert("type".into(), Value::String(kind.clone()));
        for (k, field) in object(item, &at)? {
            let fptr = child(&at, k);
            match k.as_str() {
                "statusCode" => {
                    let status = parse::integer(field, &fptr)?;
                    table.insert("status".into(), Value::from(status));
                }
                "responseParameters" => {
                    let mut headers = Map::new();
                    for (target, source) in object(field, &fptr)? {
                        let pptr = child(&fptr, target);
                        let source = string(source, &pptr)?;
                        let name = target.strip_prefix("gatewayresponse.header.");
                        match name {
                            Some(name) if gateway_value(source) => {
                                headers.insert(name.to_string(), Value::String(source.into()));
                            }
                            Some(_) => cx.report(
                                &pptr,
                                format!("value {source:?}: a gateway response's header takes 'text', method.request.header/querystring, context or stageVariables values"),
                            ),
                            None => cx.report(
                                &pptr,
                                format!("{target}: a gateway response sets headers only (gatewayresponse.header.NAME)"),
                            ),
                        }
                    }
                    if !headers.is_empty() {
                        table.insert("headers".into(), Value::Object(headers));
                    }
                }
                "responseTemplates" => {
                    let chosen = super::mock::one_template(cx, field, &fptr)?;
                    if let Some((content_type, body)) = chosen {
                        if super::mock::directive(&body).is_some() {
                            cx.report(
                                &child(&fptr, &content_type),
                                "the template uses VTL directives (#if, #set, ...): tollgate's templates have none; the standard body is sent",
                            );
                        } else {
                            table.insert("body".into(), Value::String(body));
                            if !content_type.eq_ignore_ascii_case("application/json") {
                                table.insert("content_type".into(), Value::String(content_type));
                            }
                        }
                    }
                }
                _ if k.starts_with("x-") && !k.starts_with("x-amazon-apigateway-") => {}
                _ => cx.report(
                    &fptr,
                    format!("unknown gateway response field {k}: ignored"),
                ),
            }
        }
        out.push(Value::Object(table));
    }
    Ok(out)
}

/// A gateway response header value tollgate reads: `'text'`, `method.request.header.X`,
/// `method.request.querystring.X`, `context.X`, `stageVariables.X`.
fn gateway_value(v: &str) -> bool {
    (v.len() >= 2 && v.starts_with('\'') && v.ends_with('\''))
        || [
            "method.request.header.",
            "method.request.querystring.",
            "context.",
            "stageVariables.",
        ]
        .iter()
        .any(|p| v.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
}
