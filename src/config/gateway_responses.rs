//! Gateway responses, compiled: `[[gateway_response]]` (API Gateway's customisation of its own
//! errors: `type`, `status`, `headers`, a body template and its `content_type`).
//!
//! Owns: the raw table ([`RawGatewayResponse`]), its validation (AWS's response type names,
//! one table per type, the status range, header names and reserved headers, the templates'
//! variables, the body's size) and the compiled
//! [`crate::gateway_response::GatewayResponses`]. Header values are templates, or API
//! Gateway's REST forms (`'static text'`, `method.request.header.NAME`,
//! `method.request.querystring.NAME`, `context.NAME`), read as the equivalent template.
//! Leaves out: choosing and rendering a response for a failure (see
//! [`crate::gateway_response`]).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::compile::{is_tchar, Ctx};
use super::raw::RawConfig;
use crate::gateway_response::template::{is_json, MAX_TEMPLATE_BYTES};
use crate::gateway_response::{GatewayResponse, GatewayResponses, ResponseType, Template};

/// The statuses a gateway response may be sent with: it answers a failure, so it stays an
/// error (a 2xx or 3xx would tell clients and caches the request succeeded).
pub const STATUS_RANGE: RangeInclusive<u16> = 400..=599;

/// The body's media type when `content_type` is not set (AWS's `application/json` template).
pub const DEFAULT_CONTENT_TYPE: &str = "application/json";

/// Fields tollgate sets itself (framing and connection fields, RFC 9112 §6 and RFC 9110
/// §7.6.1; `date` and `x-request-id`, which every response gets once), and `content-type`,
/// which `content_type` sets.
const RESERVED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "date",
    "x-request-id",
    "content-type",
];

/// `[[gateway_response]] type = "THROTTLED"; status = 429; headers = {...}; body = "..."`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayResponse {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub status: Option<Spanned<u16>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// The body template (`$context.error.message`, `$context.requestId`, ...); absent: the
    /// standard body.
    pub body: Option<Spanned<String>>,
    /// The body's media type (default `application/json`).
    pub content_type: Option<Spanned<String>>,
}

/// Compiles every `[[gateway_response]]`.
pub(super) fn compile(raw: &RawConfig, cx: &mut Ctx<'_>) -> GatewayResponses {
    compile_list(&raw.gateway_response, "gateway_response", cx)
}

/// Compiles a list of gateway responses (the config's, or an API's own, keyed `prefix[i]`).
pub(super) fn compile_list(
    list: &[RawGatewayResponse],
    prefix: &str,
    cx: &mut Ctx<'_>,
) -> GatewayResponses {
    let mut out = GatewayResponses::default();
    let mut seen: Vec<(ResponseType, usize)> = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let key = |k: &str| format!("{prefix}[{i}].{k}");
        let kind = ResponseType::from_name(r.kind.get_ref());
        match kind {
            None => {
                let msg = format!(
                    "unknown gateway response type {:?}; one of: {}",
                    r.kind.get_ref(),
                    ResponseType::names()
                );
                cx.err(&r.kind, key("type"), msg);
            }
            Some(t) => {
                if let Some((_, j)) = seen.iter().find(|(s, _)| *s == t) {
                    let msg = format!("{} is customised twice ({prefix}[{j}])", t.name());
                    cx.err(&r.kind, key("type"), msg);
                }
                seen.push((t, i));
                if !t.produced() {
                    let msg = format!(
                        "tollgate never sends {} (accepted for API Gateway exports)",
                        t.name()
                    );
                    cx.warn(&r.kind, key("type"), msg);
                }
            }
        }
        let compiled = compile_one(&format!("{prefix}[{i}]"), r, cx);
        if let (Some(t), Some(c)) = (kind, compiled) {
            out.insert(t, c);
        }
    }
    out
}

/// One table's status, headers and body (`None` when something is wrong: every error is
/// reported first).
fn compile_one(at: &str, r: &RawGatewayResponse, cx: &mut Ctx<'_>) -> Option<GatewayResponse> {
    let key = |k: &str| format!("{at}.{k}");
    let mut ok = true;
    let status = r.status.as_ref().map(|s| {
        let v = *s.get_ref();
        if !STATUS_RANGE.contains(&v) {
            let msg = format!(
                "must be in {}..={} (got {v}): a gateway response answers a failure",
                STATUS_RANGE.start(),
                STATUS_RANGE.end()
            );
            cx.err(s, key("status"), msg);
            ok = false;
        }
        v
    });
    let content_type = match &r.content_type {
        Some(ct) => {
            if let Err(why) = check_media_type(ct.get_ref()) {
                cx.err(ct, key("content_type"), why);
                ok = false;
            }
            ct.get_ref().trim().to_string()
        }
        None => DEFAULT_CONTENT_TYPE.to_string(),
    };
    let mut headers = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (name, value) in &r.headers {
        let hkey = key(&format!("headers.{name:?}"));
        let lower = name.to_ascii_lowercase();
        let why = if name.is_empty() || !name.bytes().all(is_tchar) {
            Some("is not a valid field name (RFC 9110 §5.1: a token)".to_string())
        } else if lower == "content-type" {
            Some("is set by content_type".to_string())
        } else if RESERVED.contains(&lower.as_str()) {
            Some("is set by tollgate (framing, hop-by-hop, date, x-request-id)".to_string())
        } else if names.contains(&lower) {
            Some("is set twice (names are case-insensitive)".to_string())
        } else if value
            .get_ref()
            .bytes()
            .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            Some("has a control character (RFC 9110 §5.5)".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            cx.err(value, hkey, format!("header {name:?} {why}"));
            ok = false;
            continue;
        }
        names.push(lower);
        match header_value(value.get_ref()) {
            Ok(t) => headers.push((name.as_str().into(), t)),
            Err(why) => {
                cx.err(value, hkey, why);
                ok = false;
            }
        }
    }
    let body = match &r.body {
        Some(b) if b.get_ref().len() > MAX_TEMPLATE_BYTES => {
            let msg = format!(
                "is {} bytes, more than {MAX_TEMPLATE_BYTES} (gateway_response body templates)",
                b.get_ref().len()
            );
            cx.err(b, key("body"), msg);
            ok = false;
            None
        }
        Some(b) => match Template::compile(b.get_ref()) {
            Ok(t) => Some(t),
            Err(why) => {
                cx.err(b, key("body"), why);
                ok = false;
                None
            }
        },
        None => None,
    };
    if let (Some(ct), None) = (&r.content_type, &r.body) {
        cx.warn(
            ct,
            key("content_type"),
            "has no effect without a body (the standard body keeps its own)",
        );
    }
    ok.then(|| GatewayResponse {
        status,
        headers,
        body,
        json: is_json(&content_type),
        content_type: content_type.into(),
    })
}

/// A header value: API Gateway's REST forms (`'text'`, `method.request.header.NAME`,
/// `method.request.querystring.NAME`, `context.NAME`, `stageVariables.NAME`), else a
/// template.
fn header_value(v: &str) -> Result<Template, String> {
    if let Some(text) = v
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .filter(|_| v.len() >= 2)
    {
        return Ok(Template::text(text));
    }
    let single = !v.is_empty() && !v.contains(|c: char| c == '$' || c.is_ascii_whitespace());
    if single {
        for (aws, ours) in [
            ("method.request.header.", "$request.header."),
            ("method.request.querystring.", "$request.querystring."),
            ("method.request.path.", "$request.path."),
            ("context.", "$context."),
            ("stageVariables.", "$stageVariables."),
        ] {
            if let Some(rest) = v.strip_prefix(aws) {
                return Template::compile(&format!("{ours}{rest}"));
            }
        }
    }
    Template::compile(v)
}

/// Checks a `content_type`: `type/subtype` (tokens, RFC 9110 §8.3.1), then any parameters.
fn check_media_type(ct: &str) -> Result<(), String> {
    if ct.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err("has a control character (RFC 9110 §5.5)".into());
    }
    let essence = ct.split(';').next().unwrap_or_default().trim();
    let mut halves = essence.splitn(2, '/');
    let (t, s) = (halves.next().unwrap_or_default(), halves.next());
    let token = |x: &str| !x.is_empty() && x.bytes().all(is_tchar);
    match s {
        Some(s) if token(t) && token(s) => Ok(()),
        _ => Err(format!(
            "{ct:?} is not a media type (type/subtype, e.g. \"application/json\")"
        )),
    }
}

#[cfg(test)]
#[path = "gateway_responses_tests.rs"]
mod tests;
