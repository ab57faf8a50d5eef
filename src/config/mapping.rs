//! Parameter mapping, compiled: `request_parameters` and `response_parameters` of each route
//! (API Gateway HTTP API syntax: `"append:header.x-user" = "$context.authorizer.claims.sub"`),
//! and a mock's values.
//!
//! Owns: parsing each mapping key (`append:` / `overwrite:` / `remove:` on `header.NAME` and
//! `querystring.NAME`, `overwrite:path`; response keys by status code `"200"`..`"599"` or
//! class `"2XX"`..`"5XX"` with `overwrite:statuscode`) and its value (a
//! [`crate::mapping::value::Value`]: static text, `$request.*`, `$context.*`,
//! `$stageVariables.*`, or text mixing them; `''` is empty), refusing with an error naming the
//! key and its line: reserved headers ([`reserved`]: framing and hop-by-hop fields, the ones
//! the gateway writes itself), conflicting operations on one target, a `remove:` with a value,
//! a status overwrite that would change whether the response has content, request operations
//! on a route without an upstream (a mock or a function gets the request as sent). Also
//! compiles a mock's values (see [`super::mock::compile_values`]). Leaves out: applying them
//! (see [`crate::mapping`]).
//!
//! Data flow: `route[i].request_parameters` / `response_parameters` / `mock` (raw TOML) →
//! [`compile`] → [`MappingConfig::routes`]`[i]`, read by the request-mapping phase, the mock
//! integration and the response filter.

use std::collections::BTreeMap;

use toml::Spanned;

use super::compile::{is_tchar, Ctx};
use super::raw::{RawConfig, RawRoute};
use crate::accesslog::Needs;
use crate::mapping::value::{Scope, Value};
use crate::mapping::{Op, Operation, ResponseRule, RouteMapping, StatusKey, Target};

/// `request_parameters = { "OP:TARGET" = "VALUE", ... }`, as written.
pub type RawRequestParameters = BTreeMap<String, Spanned<String>>;
/// `response_parameters = { "STATUS" = { "OP:TARGET" = "VALUE", ... }, ... }`, as written.
pub type RawResponseParameters = BTreeMap<String, Spanned<BTreeMap<String, Spanned<String>>>>;

/// The lowest status a response key or `overwrite:statuscode` may name (API Gateway's
/// range; a 1xx is interim, never a final response, RFC 9110 §15.2).
pub const MIN_STATUS: u16 = 200;
/// The highest status a response key or `overwrite:statuscode` may name.
pub const MAX_STATUS: u16 = 599;

/// Every route's mappings, by route index (same order as `Config::routes`).
#[derive(Debug, Default)]
pub struct MappingConfig {
    pub routes: Vec<RouteMapping>,
}

/// Compiles every route's `request_parameters`, `response_parameters` and mock values.
pub(super) fn compile(raw: &RawConfig, cx: &mut Ctx<'_>) -> MappingConfig {
    MappingConfig {
        routes: raw
            .route
            .iter()
            .enumerate()
            .map(|(i, r)| compile_route(i, r, cx))
            .collect(),
    }
}

fn compile_route(i: usize, r: &RawRoute, cx: &mut Ctx<'_>) -> RouteMapping {
    let names = super::templates::param_names(r.key.get_ref());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut m = RouteMapping::default();
    if let Some(rp) = &r.request_parameters {
        let key = format!("route[{i}].request_parameters");
        if r.upstream.is_none() {
            let msg = "request parameters apply to routes with an upstream (a mock or a function gets the request as sent)";
            cx.err(rp, key, msg);
        } else {
            let vars = cx.stage_vars(i);
            let scope = Scope {
                params: &names,
                body: true,
                stage: vars.as_deref(),
            };
            m.request = compile_ops(&key, rp.get_ref(), &scope, Side::Request, cx).0;
            m.request_needs = m
                .request
                .iter()
                .fold(Needs::NONE, |n, o| n.and(o.value.needs()));
        }
    }
    if let Some(rs) = &r.response_parameters {
        m.responses = compile_responses(i, rs, &names, cx);
    }
    if let Some(mock) = &r.mock {
        m.mock = super::mock::compile_values(i, mock, &names, cx);
    }
    m
}

/// Which side of the exchange a table of operations edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// A parsed mapping key's target.
#[derive(Debug, PartialEq)]
enum KeyTarget {
    Header(String),
    Query(String),
    Path,
    Status,
}

/// Parses `OP:TARGET`.
fn parse_key(k: &str) -> Result<(Op, KeyTarget), String> {
    let (op, target) = k.split_once(':').ok_or_else(|| {
        format!("{k:?} is not OPERATION:TARGET (append:header.NAME, overwrite:querystring.NAME, remove:header.NAME, overwrite:path, overwrite:statuscode)")
    })?;
    let op = match op {
        "append" => Op::Append,
        "overwrite" => Op::Overwrite,
        "remove" => Op::Remove,
        other => {
            return Err(format!(
                "unknown operation {other:?}: append, overwrite or remove"
            ))
        }
    };
    let t = if let Some(n) = target.strip_prefix("header.") {
        if n.is_empty() || !n.bytes().all(is_tchar) {
            return Err(format!("{n:?} is not a header name (RFC 9110 §5.1)"));
        }
        KeyTarget::Header(n.to_ascii_lowercase())
    } else if let Some(n) = target.strip_prefix("querystring.") {
        if n.is_empty() || !n.bytes().all(query_name_byte) {
            let m = format!(
                "{n:?} is not a query parameter name (no `&`, `=`, `#`, spaces or controls)"
            );
            return Err(m);
        }
        KeyTarget::Query(n.to_string())
    } else if target == "path" {
        KeyTarget::Path
    } else if target == "statuscode" {
        KeyTarget::Status
    } else {
        return Err(format!(
            "unknown target {target:?}: header.NAME, querystring.NAME, path or statuscode"
        ));
    };
    Ok((op, t))
}

/// Bytes a query parameter name may hold (RFC 3986 §3.4, less the separators `&` and `=`).
fn query_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'&' | b'=' | b'#')
}

/// Why header `name` (lowercase) cannot be mapped on `side`, if it cannot: framing and
/// hop-by-hop fields (RFC 9112 §6, RFC 9110 §7.6.1) would desync the connection or are the
/// gateway's per hop; the forwarding fields the gateway writes (RFC 9110 §7.6.3,
/// `x-forwarded-*`); API Gateway's own prefixes; on responses, the fields the response filter
/// owns (`date`, `x-request-id`, CORS's `access-control-*`).
/// Why a parameter mapping may not set the header `name` (lower case) on requests
/// (`response` false) or responses; `None`: it may. For tools that write mappings (the OpenAPI
/// import), so they leave out what the config would refuse.
pub fn reserved_header(name: &str, response: bool) -> Option<&'static str> {
    let side = if response {
        Side::Response
    } else {
        Side::Request
    };
    reserved(name, side)
}

fn reserved(name: &str, side: Side) -> Option<&'static str> {
    const FRAMING: &[&str] = &[
        "content-length",
        "transfer-encoding",
        "content-encoding",
        "host",
    ];
    const HOP_BY_HOP: &[&str] = &[
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "expect",
    ];
    const FORWARDING: &[&str] = &[
        "via",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
    ];
    const RESPONSE_OWN: &[&str] = &["date", "x-request-id"];
    if FRAMING.contains(&name) {
        return Some("frames the message (RFC 9112 §6): tollgate writes it");
    }
    if HOP_BY_HOP.contains(&name) {
        return Some("is hop-by-hop (RFC 9110 §7.6.1): tollgate handles it per connection");
    }
    if FORWARDING.contains(&name) {
        return Some("is written by tollgate as it forwards (RFC 9110 §7.6.3)");
    }
    if name.starts_with("x-amzn-") || name.starts_with("apigw-") || name.starts_with("x-amz-apigw-")
    {
        return Some("is reserved (API Gateway's own prefix)");
    }
    if side == Side::Response {
        if RESPONSE_OWN.contains(&name) {
            return Some("is set on every response by tollgate");
        }
        if name.starts_with("access-control-") {
            return Some("is CORS's (configure [cors] or the route's cors)");
        }
    }
    None
}

/// A table of operations (one direction, or one status of responses): the operations in the
/// order written and the `overwrite:statuscode`, if any; errors reported.
fn compile_ops(
    key: &str,
    table: &BTreeMap<String, Spanned<String>>,
    scope: &Scope<'_>,
    side: Side,
    cx: &mut Ctx<'_>,
) -> (Vec<Operation>, Option<u16>) {
    let mut entries: Vec<(&String, &Spanned<String>)> = table.iter().collect();
    entries.sort_by_key(|(_, v)| v.span().start);
    let mut ops: Vec<Operation> = Vec::with_capacity(entries.len());
    // for conflicts: each target's key and value span
    let mut seen: Vec<(KeyTarget, &str, usize)> = Vec::with_capacity(entries.len());
    let mut status = None;
    for (k, v) in entries {
        let entry_key = format!("{key}.{k:?}");
        let (op, target) = match parse_key(k) {
            Ok(p) => p,
            Err(m) => {
                cx.err(v, entry_key, m);
                continue;
            }
        };
        if let Some((_, other, at)) = seen.iter().find(|(t, _, _)| *t == target) {
            let (line, _) = super::line_col(cx.text(), *at);
            let m = format!("conflicts with {other:?} (line {line}): one operation per target");
            cx.err(v, entry_key, m);
            continue;
        }
        let text = v.get_ref().as_str();
        let problem = check_op(op, &target, text, side);
        if let Some(m) = problem {
            cx.err(v, entry_key, m);
            continue;
        }
        let target = match target {
            KeyTarget::Status => {
                match parse_status(text) {
                    Ok(s) => status = Some(s),
                    Err(m) => cx.err(v, entry_key, m),
                }
                seen.push((KeyTarget::Status, k.as_str(), v.span().start));
                continue;
            }
            KeyTarget::Header(n) => Target::Header(n.as_str().into()),
            KeyTarget::Query(n) => Target::Query(n.as_str().into()),
            KeyTarget::Path => Target::Path,
        };
        seen.push((key_target(&target), k.as_str(), v.span().start));
        if op == Op::Remove {
            ops.push(Operation {
                op,
                target,
                value: Value::text(""),
                fixed: Some(Box::new([])),
            });
            continue;
        }
        let value = match compile_value(text, scope, side) {
            Ok(val) => val,
            Err(m) => {
                cx.err(v, entry_key, m);
                continue;
            }
        };
        let fixed = match (&target, value.static_text()) {
            (Target::Header(_), Some(t)) => match field_text(&t) {
                Some(f) => Some(f.into_boxed_slice()),
                None => {
                    let m = "is not a valid field value (control characters, RFC 9110 §5.5)";
                    cx.err(v, entry_key, m);
                    continue;
                }
            },
            _ => None,
        };
        ops.push(Operation {
            op,
            target,
            value,
            fixed,
        });
    }
    (ops, status)
}

fn key_target(t: &Target) -> KeyTarget {
    match t {
        Target::Header(n) => KeyTarget::Header(n.to_string()),
        Target::Query(n) => KeyTarget::Query(n.to_string()),
        Target::Path => KeyTarget::Path,
    }
}

/// What is wrong with `op` on `target` with value `text` on `side`, if anything.
fn check_op(op: Op, target: &KeyTarget, text: &str, side: Side) -> Option<String> {
    let empty = text.is_empty() || text == "''";
    match (target, side) {
        (KeyTarget::Path, Side::Response) | (KeyTarget::Query(_), Side::Response) => {
            return Some("a response has no path or query string: header.NAME or statuscode".into())
        }
        (KeyTarget::Status, Side::Request) => {
            return Some("statuscode is a response's: put it under response_parameters".into())
        }
        (KeyTarget::Path | KeyTarget::Status, _) if op != Op::Overwrite => {
            return Some("path and statuscode take overwrite: only".into())
        }
        (KeyTarget::Header(n), _) => {
            if let Some(why) = reserved(n, side) {
                return Some(format!("header {n:?} {why}"));
            }
            if n == "x-request-id" && op == Op::Append {
                return Some("x-request-id has one value: use overwrite: or remove:".into());
            }
        }
        _ => {}
    }
    match (op, empty) {
        (Op::Remove, false) => Some(format!("remove takes no value: write '' (got {text:?})")),
        (Op::Append | Op::Overwrite, true) => {
            Some("an empty value ('') adds nothing: use remove: to drop it".into())
        }
        _ => None,
    }
}

/// Compiles a value; on responses `$response.*` is refused by name (not supported).
fn compile_value(text: &str, scope: &Scope<'_>, side: Side) -> Result<Value, String> {
    if side == Side::Response && (text.contains("$response.") || text.contains("${response.")) {
        return Err("$response.* values are not supported: use static text, $context.* or $request.header / querystring / path".into());
    }
    Value::compile(text, scope)
}

/// A static header value as sent: no control characters, surrounding whitespace trimmed.
fn field_text(t: &[u8]) -> Option<Vec<u8>> {
    if t.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return None;
    }
    let s = t
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(t.len());
    let e = t
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(s, |e| e + 1);
    Some(t.get(s..e).unwrap_or_default().to_vec())
}

/// `overwrite:statuscode`'s value: a static status in range, with content (see
/// [`compile_responses`] for the other side of that rule).
fn parse_status(text: &str) -> Result<u16, String> {
    let s: u16 = text.trim().parse().map_err(|_| {
        format!("{text:?} is not a status code (a number, {MIN_STATUS}..={MAX_STATUS})")
    })?;
    if !(MIN_STATUS..=MAX_STATUS).contains(&s) {
        return Err(format!("must be in {MIN_STATUS}..={MAX_STATUS} (got {s})"));
    }
    if !crate::http::status_has_content(s) {
        return Err(format!(
            "{s} has no content (RFC 9110 §6.4.1): the response's framing would lie"
        ));
    }
    Ok(s)
}

/// A response key: `"500"` or `"5XX"`.
fn parse_status_key(k: &str) -> Result<StatusKey, String> {
    let b = k.as_bytes();
    let bad =
        || format!("{k:?} is not a status code ({MIN_STATUS}..={MAX_STATUS}) or class (2XX..5XX)");
    if b.len() != 3 || !b[0].is_ascii_digit() {
        return Err(bad());
    }
    if b[1..].eq_ignore_ascii_case(b"xx") {
        let c = u16::from(b[0] - b'0');
        return match (MIN_STATUS / 100..=MAX_STATUS / 100).contains(&c) {
            true => Ok(StatusKey::Class(c)),
            false => Err(bad()),
        };
    }
    match k.parse::<u16>() {
        Ok(s) if (MIN_STATUS..=MAX_STATUS).contains(&s) => Ok(StatusKey::Exact(s)),
        _ => Err(bad()),
    }
}

fn compile_responses(
    i: usize,
    raw: &Spanned<RawResponseParameters>,
    names: &[&str],
    cx: &mut Ctx<'_>,
) -> Vec<ResponseRule> {
    let vars = cx.stage_vars(i);
    let scope = Scope {
        params: names,
        body: false,
        stage: vars.as_deref(),
    };
    let mut rules: Vec<ResponseRule> = Vec::with_capacity(raw.get_ref().len());
    for (k, table) in raw.get_ref() {
        let key = format!("route[{i}].response_parameters.{k:?}");
        let sk = match parse_status_key(k) {
            Ok(s) => s,
            Err(m) => {
                cx.err(table, key, m);
                continue;
            }
        };
        if rules.iter().any(|r| r.key == sk) {
            cx.err(table, key, "the same class is given twice (5XX and 5xx)");
            continue;
        }
        if table.get_ref().is_empty() {
            cx.err(
                table,
                key,
                "an empty table: give operations, or leave the status out",
            );
            continue;
        }
        let (headers, status) = compile_ops(&key, table.get_ref(), &scope, Side::Response, cx);
        if let (Some(_), StatusKey::Exact(c)) = (status, sk) {
            if !crate::http::status_has_content(c) {
                let m = format!(
                    "a {c} has no content (RFC 9110 §6.4.1): its status cannot be overwritten"
                );
                cx.err(table, key, m);
                continue;
            }
        }
        rules.push(ResponseRule {
            key: sk,
            status,
            headers,
        });
    }
    // exact codes before classes: the first match applies
    rules.sort_by_key(|r| matches!(r.key, StatusKey::Class(_)));
    rules
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
