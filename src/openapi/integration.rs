//! `x-amazon-apigateway-integration` → a route's integration keys.
//!
//! `http_proxy` / `http` → `upstream` (the URI's scheme and authority: an implicit upstream,
//! `${stageVariables.NAME}` kept) and `path` (the URI's path, its `{name}`s mapped to the
//! route's parameters through `integration.request.path.*`); `aws_proxy` → `function` (the
//! Lambda ARN inside API Gateway's invocation URI) and `payload_format` (`payloadFormatVersion`,
//! else `1.0`: REST APIs' only format; HTTP APIs always write it); `mock` → see
//! [`super::mock`]. `requestParameters` (REST's `integration.request.*` and HTTP APIs'
//! `append:` / `overwrite:` / `remove:`) → `request_parameters`; `timeoutInMillis` →
//! `timeout_ms`; non-proxy `http`'s templates and responses → [`super::mock`]. What API
//! Gateway does that tollgate cannot (AWS service integrations, VPC links, content handling,
//! an origin method other than the route's) is reported; an integration tollgate cannot run
//! at all leaves its operation out.

use serde_json::{Map, Value};

use super::parse::{self, object, scalar_text, string};
use super::paths::{Cx, Operation};
use super::{child, ImportError};

/// The fields of an integration object read here (or harmless: caching, descriptions).
const FIELDS: [&str; 20] = [
    "type",
    "uri",
    "httpMethod",
    "payloadFormatVersion",
    "timeoutInMillis",
    "requestParameters",
    "responseParameters",
    "requestTemplates",
    "responses",
    "connectionType",
    "connectionId",
    "passthroughBehavior",
    "contentHandling",
    "credentials",
    "cacheKeyParameters",
    "cacheNamespace",
    "tlsConfig",
    "integrationSubtype",
    "description",
    "x-tollgate-upstream",
];

/// tollgate's accepted `timeout_ms` (see [`crate::config::raw::ROUTE_TIMEOUT_MS_RANGE`]).
const TIMEOUT: std::ops::RangeInclusive<u64> = crate::config::raw::ROUTE_TIMEOUT_MS_RANGE;

/// Maps the integration at `ptr` into `route`; `false`: the operation is left out (reported).
pub(super) fn map(
    cx: &mut Cx<'_>,
    o: &Operation<'_>,
    integ: &Map<String, Value>,
    ptr: &str,
    route: &mut Map<String, Value>,
) -> Result<bool, ImportError> {
    for k in integ.keys() {
        let foreign = k.starts_with("x-") && !k.starts_with("x-amazon-apigateway-");
        if !FIELDS.contains(&k.as_str()) && !foreign {
            cx.report(
                &child(ptr, k),
                format!("unknown integration field {k}: ignored"),
            );
        }
    }
    let Some(kind) = integ.get("type") else {
        return Err(ImportError::new(ptr, "an integration needs a type"));
    };
    let kind = string(kind, &child(ptr, "type"))?.to_ascii_lowercase();
    common(cx, integ, ptr)?;
    if integ.contains_key("integrationSubtype") {
        cx.report(
            &child(ptr, "integrationSubtype"),
            "AWS service integration (integrationSubtype): not supported; the operation is not imported",
        );
        return Ok(false);
    }
    match kind.as_str() {
        "http_proxy" | "http" => http(cx, o, integ, ptr, kind == "http", route),
        "aws_proxy" => lambda(cx, integ, ptr, route),
        "mock" => super::mock::mock(cx, integ, ptr, route),
        "aws" => {
            cx.report(
                &child(ptr, "type"),
                "integration type aws (an AWS service, or Lambda without proxy): not supported; the operation is not imported",
            );
            Ok(false)
        }
        other => {
            cx.report(
                &child(ptr, "type"),
                format!("unknown integration type {other:?}: the operation is not imported"),
            );
            Ok(false)
        }
    }
}

/// Fields every integration type may have.
fn common(cx: &mut Cx<'_>, integ: &Map<String, Value>, ptr: &str) -> Result<(), ImportError> {
    if let Some(v) = integ.get("connectionType") {
        let at = child(ptr, "connectionType");
        let t = string(v, &at)?;
        if !t.eq_ignore_ascii_case("INTERNET") {
            cx.report(
                &at,
                format!("connection type {t}: tollgate connects to the URI directly"),
            );
        }
    }
    if let Some(v) = integ.get("contentHandling") {
        let at = child(ptr, "contentHandling");
        if !string(v, &at)?.is_empty() {
            cx.report(
                &at,
                "content handling (CONVERT_TO_TEXT / CONVERT_TO_BINARY): bodies pass as they are",
            );
        }
    }
    if integ.contains_key("credentials") {
        cx.report(
            &child(ptr, "credentials"),
            "integration credentials (an IAM role): tollgate calls with its own configuration",
        );
    }
    if let Some(v) = integ.get("tlsConfig") {
        let at = child(ptr, "tlsConfig");
        for (k, item) in object(v, &at)? {
            let skip = k == "insecureSkipVerification" && !parse::boolean(item, &child(&at, k))?;
            if !skip {
                cx.report(
                    &child(&at, k),
                    format!("TLS setting {k}: origins from an integration URI are verified against the system's roots"),
                );
            }
        }
    }
    Ok(())
}

/// `http_proxy` and `http`.
fn http(
    cx: &mut Cx<'_>,
    o: &Operation<'_>,
    integ: &Map<String, Value>,
    ptr: &str,
    plain: bool,
    route: &mut Map<String, Value>,
) -> Result<bool, ImportError> {
    let (mut upstream, uri_path) = match integ.get("uri") {
        Some(uri) => {
            let at = child(ptr, "uri");
            let uri = string(uri, &at)?;
            let Some((origin, path, query)) = split_url(uri) else {
                cx.report(
                    &at,
                    format!("{uri:?} is not an http(s) URL with a host (a VPC link, or a stage variable holding the whole URL): the operation is not imported"),
                );
                return Ok(false);
            };
            if let Some(q) = query {
                cx.report(
                    &at,
                    format!(
                        "the URI's query string (?{q}) is not sent: the request's own query is"
                    ),
                );
            }
            (origin, Some((path, at)))
        }
        None => return Err(ImportError::new(ptr, "an http integration needs a uri")),
    };
    if let Some(named) = integ.get("x-tollgate-upstream") {
        // tollgate's export: a named [[upstream]] (the URI's host is its name)
        upstream = string(named, &child(ptr, "x-tollgate-upstream"))?.to_string();
    }
    let mut path_map = Vec::new();
    if let Some(params) = integ.get("requestParameters") {
        let at = child(ptr, "requestParameters");
        let ops = request_parameters(cx, params, &at, &mut path_map)?;
        if !ops.is_empty() {
            route.insert("request_parameters".into(), Value::Object(ops));
        }
    }
    route.insert("upstream".into(), Value::String(upstream));
    if let Some((path, at)) = uri_path {
        if !path.is_empty() {
            match map_path(&path, &path_map, &o.path_params) {
                Ok(p) => {
                    route.insert("path".into(), Value::String(p));
                }
                Err(why) => {
                    cx.report(&at, format!("{why}: the operation is not imported"));
                    return Ok(false);
                }
            }
        }
    }
    if let Some(m) = integ.get("httpMethod") {
        let at = child(ptr, "httpMethod");
        let m = string(m, &at)?.to_ascii_uppercase();
        if m != "ANY" && m != o.method {
            cx.report(
                &at,
                format!("the origin's method {m} differs from the route's ({}): tollgate forwards the request's own method", o.method),
            );
        }
    }
    timeout(cx, integ, ptr, route)?;
    response_parameters(cx, integ, ptr, route)?;
    if plain {
        super::mock::http_templates(cx, o, integ, ptr, route)?;
    }
    Ok(true)
}

/// `aws_proxy`: a Lambda function.
fn lambda(
    cx: &mut Cx<'_>,
    integ: &Map<String, Value>,
    ptr: &str,
    route: &mut Map<String, Value>,
) -> Result<bool, ImportError> {
    let Some(uri) = integ.get("uri") else {
        return Err(ImportError::new(
            ptr,
            "an aws_proxy integration needs a uri",
        ));
    };
    let at = child(ptr, "uri");
    let uri = string(uri, &at)?;
    let Some(function) = lambda_function(uri) else {
        cx.report(
            &at,
            format!(
                "{uri:?} is not a Lambda function's invocation URI: the operation is not imported"
            ),
        );
        return Ok(false);
    };
    route.insert("function".into(), Value::String(function));
    let format = match integ.get("payloadFormatVersion") {
        Some(v) => {
            let at = child(ptr, "payloadFormatVersion");
            match scalar_text(v).as_deref() {
                Some(f @ ("1.0" | "2.0")) => f.to_string(),
                _ => {
                    cx.report(&at, "payload format version: 1.0 or 2.0; 1.0 used");
                    "1.0".to_string()
                }
            }
        }
        None => "1.0".to_string(),
    };
    route.insert("payload_format".into(), Value::String(format));
    if let Some(p) = integ.get("requestParameters") {
        if !object(p, &child(ptr, "requestParameters"))?.is_empty() {
            cx.report(
                &child(ptr, "requestParameters"),
                "parameter mapping into a Lambda event: not supported (the function gets the request as sent)",
            );
        }
    }
    timeout(cx, integ, ptr, route)?;
    response_parameters(cx, integ, ptr, route)?;
    Ok(true)
}

/// `timeoutInMillis` → `timeout_ms`, when tollgate accepts the value.
fn timeout(
    cx: &mut Cx<'_>,
    integ: &Map<String, Value>,
    ptr: &str,
    route: &mut Map<String, Value>,
) -> Result<(), ImportError> {
    if let Some(v) = integ.get("timeoutInMillis") {
        let at = child(ptr, "timeoutInMillis");
        let ms = parse::integer(v, &at)?;
        if TIMEOUT.contains(&ms) {
            route.insert("timeout_ms".into(), Value::from(ms));
        } else {
            cx.report(
                &at,
                format!("timeout {ms} ms: tollgate's route timeout is {}..={} ms; the upstream's applies", TIMEOUT.start(), TIMEOUT.end()),
            );
        }
    }
    Ok(())
}

/// HTTP APIs' `responseParameters` (by status code) → `response_parameters`.
fn response_parameters(
    cx: &mut Cx<'_>,
    integ: &Map<String, Value>,
    ptr: &str,
    route: &mut Map<String, Value>,
) -> Result<(), ImportError> {
    let Some(v) = integ.get("responseParameters") else {
        return Ok(());
    };
    let at = child(ptr, "responseParameters");
    let mut out = Map::new();
    for (status, ops) in object(v, &at)? {
        let sptr = child(&at, status);
        let mut kept = Map::new();
        for (k, value) in object(ops, &sptr)? {
            let vptr = child(&sptr, k);
            let value = string(value, &vptr)?;
            if value.contains("$response.") {
                cx.report(
                    &vptr,
                    "$response values (the integration's headers and body) are not supported",
                );
            } else if !is_http_api_key(k) {
                cx.report(
                    &vptr,
                    format!("{k}: not a parameter mapping (OPERATION:TARGET)"),
                );
            } else if let Some(why) = k
                .split_once(':')
                .and_then(|(_, t)| reserved_target(t, true))
            {
                cx.report(&vptr, format!("{k}: {why}; not mapped"));
            } else {
                kept.insert(k.clone(), Value::String(value.to_string()));
            }
        }
        if !kept.is_empty() {
            out.insert(status.clone(), Value::Object(kept));
        }
    }
    if !out.is_empty() {
        route.insert("response_parameters".into(), Value::Object(out));
    }
    Ok(())
}

/// `requestParameters` of an HTTP integration → `request_parameters`; `path_map` gets the
/// integration's path parameters (`integration.request.path.X`) and what they render.
fn request_parameters(
    cx: &mut Cx<'_>,
    v: &Value,
    ptr: &str,
    path_map: &mut Vec<(String, String)>,
) -> Result<Map<String, Value>, ImportError> {
    let mut out = Map::new();
    for (k, source) in object(v, ptr)? {
        let at = child(ptr, k);
        let source = string(source, &at)?;
        if let Some(rest) = k.strip_prefix("integration.request.") {
            let Some((place, name)) = rest.split_once('.') else {
                cx.report(
                    &at,
                    format!("{k}: not a parameter of the integration request"),
                );
                continue;
            };
            if place == "path" {
                match path_source(source) {
                    Some(text) => path_map.push((name.to_string(), text)),
                    None => cx.report(&at, format!("path parameter from {source:?}: only a route parameter, a stage variable or 'text' can fill the origin's path")),
                }
                continue;
            }
            if place != "header" && place != "querystring" {
                cx.report(
                    &at,
                    format!("{k}: only header, querystring and path parameters can be mapped"),
                );
                continue;
            }
            if let Some(why) = reserved_target(&format!("{place}.{name}"), false) {
                cx.report(&at, format!("header {name}: {why}; not mapped"));
                continue;
            }
            match rest_value(source) {
                Some(value) => {
                    out.insert(format!("overwrite:{place}.{name}"), Value::String(value));
                }
                None => cx.report(
                    &at,
                    format!(
                        "value {source:?}: not supported (multi-value parameters, the whole body)"
                    ),
                ),
            }
        } else if is_http_api_key(k) {
            let target = k.split_once(':').map(|(_, t)| t).unwrap_or_default();
            if source.contains("$response.") {
                cx.report(
                    &at,
                    "$response values are not supported in request mappings",
                );
            } else if let Some(why) = reserved_target(target, false) {
                cx.report(&at, format!("{target}: {why}; not mapped"));
            } else {
                out.insert(k.clone(), Value::String(source.to_string()));
            }
        } else {
            cx.report(&at, format!("{k}: not a parameter mapping"));
        }
    }
    Ok(out)
}

/// Why a mapping may not write `target` (`header.NAME`; others are fine), if it may not.
pub(super) fn reserved_target(target: &str, response: bool) -> Option<&'static str> {
    let name = target.strip_prefix("header.")?.to_ascii_lowercase();
    crate::config::mapping::reserved_header(&name, response)
}

/// HTTP APIs' mapping keys: `append:`, `overwrite:` or `remove:` and a target.
pub(super) fn is_http_api_key(k: &str) -> bool {
    ["append:", "overwrite:", "remove:"]
        .iter()
        .any(|op| k.strip_prefix(op).is_some_and(|t| !t.is_empty()))
}

/// A REST mapping source as tollgate's value: `'text'` → text, `method.request.header.X` →
/// `$request.header.X`, `context.X` → `$context.X`, ...; `None`: no equivalent.
pub(super) fn rest_value(source: &str) -> Option<String> {
    if let Some(text) = source
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .filter(|_| source.len() >= 2)
    {
        return Some(if text.is_empty() {
            "''".into()
        } else {
            text.into()
        });
    }
    for (aws, ours) in [
        ("method.request.header.", "$request.header."),
        ("method.request.querystring.", "$request.querystring."),
        ("method.request.path.", "$request.path."),
        ("context.", "$context."),
        ("stageVariables.", "$stageVariables."),
    ] {
        if let Some(name) = source.strip_prefix(aws).filter(|n| !n.is_empty()) {
            return Some(format!("{ours}{name}"));
        }
    }
    let body = source.strip_prefix("method.request.body.")?;
    let body = body.strip_prefix("$.").unwrap_or(body);
    (!body.is_empty()).then(|| format!("$request.body.{body}"))
}

/// What an origin path parameter renders as in `path`: `{name}` of a route parameter,
/// `${stageVariables.NAME}`, or static text.
fn path_source(source: &str) -> Option<String> {
    if let Some(name) = source.strip_prefix("method.request.path.") {
        return Some(format!("{{{name}}}"));
    }
    if let Some(name) = source.strip_prefix("stageVariables.") {
        return Some(format!("${{stageVariables.{name}}}"));
    }
    let text = source.strip_prefix('\'')?.strip_suffix('\'')?;
    (!text.contains(['{', '}'])).then(|| text.to_string())
}

/// The integration URI's path with each `{name}` replaced by what it is mapped from (a
/// route parameter of the same name when nothing maps it); `${...}` is kept as written.
fn map_path(path: &str, map: &[(String, String)], params: &[String]) -> Result<String, String> {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let (before, after) = rest.split_at(open);
        let Some(close) = after.find('}') else {
            return Err(format!("unbalanced {{ in the URI path {path:?}"));
        };
        let (inner, tail) = after.split_at(close + 1);
        out.push_str(before);
        if before.ends_with('$') {
            out.push_str(inner); // ${stageVariables.x}
        } else {
            let name = inner.trim_start_matches('{').trim_end_matches('}');
            let name = name.trim_end_matches('+');
            match map.iter().find(|(n, _)| n == name) {
                Some((_, text)) => out.push_str(text),
                None if params.iter().any(|p| p == name) => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
                None => {
                    return Err(format!(
                        "the URI's {{{name}}} is mapped from no route parameter"
                    ))
                }
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    // a route parameter the path names must be the route's
    for name in super::paths::path_params(&out) {
        if !params.contains(&name) {
            return Err(format!("{{{name}}} is not a parameter of the route"));
        }
    }
    Ok(out)
}

/// `http(s)://authority/path?query` → (`http(s)://authority`, `/path`, query); `None` for
/// anything else.
pub(super) fn split_url(uri: &str) -> Option<(String, String, Option<String>)> {
    let (scheme, rest) = uri.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.contains('#') {
        return None;
    }
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (tail, None),
    };
    let origin = format!("{}://{authority}", scheme.to_ascii_lowercase());
    Some((origin, path.to_string(), query.filter(|q| !q.is_empty())))
}

/// The function of a Lambda integration URI: API Gateway's
/// `arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/FUNCTION/invocations`, or
/// (HTTP APIs) a Lambda ARN itself.
pub(super) fn lambda_function(uri: &str) -> Option<String> {
    if uri.starts_with("arn:") && uri.contains(":lambda:path/") {
        let (_, rest) = uri.split_once("/functions/")?;
        let function = rest.strip_suffix("/invocations")?;
        return (!function.is_empty()).then(|| function.to_string());
    }
    let is_lambda_arn = uri.starts_with("arn:") && uri.split(':').nth(2) == Some("lambda");
    is_lambda_arn.then(|| uri.to_string())
}

#[cfg(test)]
#[path = "integration_tests.rs"]
mod tests;
