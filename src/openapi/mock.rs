//! REST APIs' integration requests and responses: mocks, and non-proxy `http`'s templates
//! and response mappings.
//!
//! A `mock` → `mock = { status, body, headers }`: the status is the one the request template
//! (`{"statusCode": 200}`) selects among `responses` (by selection pattern, else `default`),
//! written as that response's `statusCode`; its static `responseParameters` become headers, its
//! response template the body (a template that reads `$input` / `$util` becomes the route's
//! `response_template` over an empty mock body). Non-proxy `http`: `requestTemplates` →
//! `request_template` (by content type), each `responses` entry whose selection pattern is
//! `default`, a status code or a class (`4\d{2}`) → `response_parameters` for that status
//! (`overwrite:statuscode` when it maps to another one), the default's templates →
//! `response_template`. Templates with VTL directives (tollgate's have none) are reported and
//! left out.

use serde_json::{Map, Value};

use super::integration::{reserved_target, rest_value};
use super::parse::{self, object, string};
use super::paths::{Cx, Operation};
use super::{child, ImportError};

/// Velocity directives tollgate's templates refuse.
const DIRECTIVES: [&str; 14] = [
    "if", "elseif", "else", "end", "foreach", "set", "macro", "parse", "include", "evaluate",
    "define", "stop", "break", "return",
];

/// Fields a mock may not set (tollgate writes them, or they are hop-by-hop).
const MOCK_RESERVED: [&str; 10] = [
    "content-length",
    "transfer-encoding",
    "date",
    "x-request-id",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// A `responses` key: which integration statuses it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selection {
    Default,
    Code(u16),
    /// `4\d{2}`: the first digit.
    Class(u16),
}

/// `default`, `404`, `4\d{2}`, `4..`, `4[0-9]{2}`; `None` for other patterns.
fn selection(pattern: &str) -> Option<Selection> {
    if pattern == "default" {
        return Some(Selection::Default);
    }
    if pattern.len() == 3 && pattern.bytes().all(|b| b.is_ascii_digit()) {
        return pattern.parse().ok().map(Selection::Code);
    }
    let mut chars = pattern.chars();
    let first = chars.next()?.to_digit(10).filter(|d| (1..=5).contains(d))?;
    let rest = chars.as_str();
    let class = ["\\d{2}", "\\d\\d", "..", "[0-9]{2}", "[0-9][0-9]"].contains(&rest);
    class.then_some(Selection::Class(first as u16))
}

impl Selection {
    fn matches(self, status: u16) -> bool {
        match self {
            Selection::Default => false,
            Selection::Code(c) => c == status,
            Selection::Class(d) => status / 100 == d,
        }
    }
}

/// The `mock` integration.
pub(super) fn mock(
    cx: &mut Cx<'_>,
    integ: &Map<String, Value>,
    ptr: &str,
    route: &mut Map<String, Value>,
) -> Result<bool, ImportError> {
    let mut selected = None;
    if let Some(t) = integ.get("requestTemplates") {
        let at = child(ptr, "requestTemplates");
        let templates = object(t, &at)?;
        let chosen = templates
            .iter()
            .find(|(ct, _)| ct.eq_ignore_ascii_case("application/json"))
            .or_else(|| templates.iter().next());
        if let Some((ct, text)) = chosen {
            let tptr = child(&at, ct);
            let text = string(text, &tptr)?;
            let status = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("statusCode").and_then(|s| parse::integer(s, "").ok()));
            match status.and_then(|s| u16::try_from(s).ok()) {
                Some(s) => selected = Some(s),
                None => cx.report(
                    &tptr,
                    "a mock request template other than {\"statusCode\": N} (VTL): the default response is sent",
                ),
            }
        }
    }
    let mut status = selected.unwrap_or(200);
    let mut headers = Map::new();
    let mut body = String::new();
    if let Some(responses) = integ.get("responses") {
        let at = child(ptr, "responses");
        let responses = object(responses, &at)?;
        let entry = responses
            .iter()
            .find(|(k, _)| selection(k).is_some_and(|s| s.matches(status)))
            .or_else(|| responses.iter().find(|(k, _)| k.as_str() == "default"));
        if let Some((key, entry)) = entry {
            let eptr = child(&at, key);
            let entry = object(entry, &eptr)?;
            if let Some(s) = entry.get("statusCode") {
                let s = parse::integer(s, &child(&eptr, "statusCode"))?;
                status = u16::try_from(s).unwrap_or(500);
            }
            headers = response_headers(cx, entry, &eptr)?;
            headers.retain(|name, _| !MOCK_RESERVED.contains(&name.to_ascii_lowercase().as_str()));
            if let Some(t) = entry.get("responseTemplates") {
                let tptr = child(&eptr, "responseTemplates");
                if let Some((ct, text)) = one_template(cx, t, &tptr)? {
                    if let Some(d) = directive(&text) {
                        cx.report(&child(&tptr, &ct), format!("the template uses the VTL directive #{d}: tollgate's templates have no control flow; the mock's body is empty"));
                    } else if text.contains("$input") || text.contains("$util") {
                        let mut by_type = Map::new();
                        by_type.insert(ct.clone(), Value::String(text));
                        route.insert("response_template".into(), Value::Object(by_type));
                    } else {
                        body = text;
                    }
                    let has_type = headers
                        .keys()
                        .any(|h| h.eq_ignore_ascii_case("content-type"));
                    if !ct.eq_ignore_ascii_case("application/json") && !has_type {
                        headers.insert("content-type".into(), Value::String(ct));
                    }
                }
            }
            content_handling(cx, entry, &eptr);
        }
    }
    let mut mock = Map::new();
    mock.insert("status".into(), Value::from(status));
    if !body.is_empty() {
        mock.insert("body".into(), Value::String(body));
    }
    if !headers.is_empty() {
        mock.insert("headers".into(), Value::Object(headers));
    }
    route.insert("mock".into(), Value::Object(mock));
    Ok(true)
}

/// `responseParameters` of an integration response (`method.response.header.X`) → header
/// values.
fn response_headers(
    cx: &mut Cx<'_>,
    entry: &Map<String, Value>,
    ptr: &str,
) -> Result<Map<String, Value>, ImportError> {
    let mut out = Map::new();
    let Some(params) = entry.get("responseParameters") else {
        return Ok(out);
    };
    let at = child(ptr, "responseParameters");
    for (target, source) in object(params, &at)? {
        let pptr = child(&at, target);
        let source = string(source, &pptr)?;
        let Some(name) = target.strip_prefix("method.response.header.") else {
            cx.report(&pptr, format!("{target}: only response headers can be set"));
            continue;
        };
        match rest_value(source) {
            Some(v) => {
                out.insert(name.to_string(), Value::String(v));
            }
            None => cx.report(
                &pptr,
                format!(
                    "value {source:?}: the integration's response headers and body cannot be read"
                ),
            ),
        }
    }
    Ok(out)
}

fn content_handling(cx: &mut Cx<'_>, entry: &Map<String, Value>, ptr: &str) {
    if entry
        .get("contentHandling")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty())
    {
        cx.report(
            &child(ptr, "contentHandling"),
            "content handling (CONVERT_TO_TEXT / CONVERT_TO_BINARY): bodies pass as they are",
        );
    }
}

/// Non-proxy `http`: request templates, passthrough behaviour, integration responses.
pub(super) fn http_templates(
    cx: &mut Cx<'_>,
    o: &Operation<'_>,
    integ: &Map<String, Value>,
    ptr: &str,
    route: &mut Map<String, Value>,
) -> Result<(), ImportError> {
    if let Some(t) = integ.get("requestTemplates") {
        let at = child(ptr, "requestTemplates");
        let mut by_type = Map::new();
        for (ct, text) in object(t, &at)? {
            let tptr = child(&at, ct);
            let text = string(text, &tptr)?;
            match directive(text) {
                Some(d) => cx.report(&tptr, format!("the template uses the VTL directive #{d}: tollgate's templates have no control flow; not imported (the body passes unchanged)")),
                None => {
                    by_type.insert(ct.clone(), Value::String(text.to_string()));
                }
            }
        }
        if !by_type.is_empty() {
            route.insert("request_template".into(), Value::Object(by_type));
        }
    }
    if let Some(p) = integ.get("passthroughBehavior") {
        let at = child(ptr, "passthroughBehavior");
        let p = string(p, &at)?.to_ascii_lowercase();
        let templates = route.contains_key("request_template");
        if p == "never" || (p == "when_no_templates" && templates) {
            cx.report(&at, format!("passthrough behaviour {p}: a body no template matches passes unchanged (API Gateway: 415)"));
        }
    }
    let Some(responses) = integ.get("responses") else {
        return Ok(());
    };
    let at = child(ptr, "responses");
    let mut rules = match route.remove("response_parameters") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut cors = Map::new();
    for (pattern, entry) in object(responses, &at)? {
        let eptr = child(&at, pattern);
        let entry = object(entry, &eptr)?;
        let Some(sel) = selection(pattern) else {
            cx.report(&eptr, format!("selection pattern {pattern:?}: only default, a status code or a class (4\\d{{2}}) select responses"));
            continue;
        };
        let status = match entry.get("statusCode") {
            Some(s) => parse::integer(s, &child(&eptr, "statusCode"))?,
            None => 200,
        };
        let (key, rewrite) = match sel {
            Selection::Default => {
                if status != 200 {
                    cx.report(&child(&eptr, "statusCode"), format!("the default response answers every origin status with {status}: tollgate passes the origin's status"));
                }
                (status.to_string(), None)
            }
            Selection::Code(c) => (c.to_string(), (u64::from(c) != status).then_some(status)),
            Selection::Class(d) => (format!("{d}XX"), Some(status)),
        };
        let mut ops = match rules.remove(&key) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if let Some(s) = rewrite {
            ops.insert("overwrite:statuscode".into(), Value::String(s.to_string()));
        }
        let pptr = child(&eptr, "responseParameters");
        for (name, value) in response_headers(cx, entry, &eptr)? {
            let hptr = child(&pptr, &format!("method.response.header.{name}"));
            if name.to_ascii_lowercase().starts_with("access-control-") {
                cors_header(cx, &name, &value, &hptr, &mut cors);
            } else if let Some(why) = reserved_target(&format!("header.{name}"), true) {
                cx.report(&hptr, format!("header {name}: {why}; not mapped"));
            } else {
                ops.insert(format!("overwrite:header.{name}"), value);
            }
        }
        if !ops.is_empty() {
            rules.insert(key, Value::Object(ops));
        }
        if let Some(t) = entry.get("responseTemplates") {
            let tptr = child(&eptr, "responseTemplates");
            if sel != Selection::Default {
                if !object(t, &tptr)?.is_empty() {
                    cx.report(&tptr, "templates of a response other than the default: tollgate's response template applies to every status; not imported");
                }
            } else {
                let mut by_type = Map::new();
                for (ct, text) in object(t, &tptr)? {
                    let text = string(text, &child(&tptr, ct))?;
                    match directive(text) {
                        Some(d) => cx.report(&child(&tptr, ct), format!("the template uses the VTL directive #{d}: not imported (the response passes unchanged)")),
                        None => {
                            by_type.insert(ct.clone(), Value::String(text.to_string()));
                        }
                    }
                }
                if !by_type.is_empty() {
                    route.insert("response_template".into(), Value::Object(by_type));
                }
            }
        }
        content_handling(cx, entry, &eptr);
    }
    if !rules.is_empty() {
        route.insert("response_parameters".into(), Value::Object(rules));
    }
    if cors.contains_key("allow_origins") {
        let hint = &o.cors_hint;
        for (key, from) in [
            ("allow_methods", &hint.methods),
            ("allow_headers", &hint.headers),
        ] {
            if !cors.contains_key(key) {
                let list = if from.is_empty() {
                    vec!["*".to_string()]
                } else {
                    from.clone()
                };
                cors.insert(key.into(), list.into());
            }
        }
        route.insert("cors".into(), Value::Object(cors));
    }
    Ok(())
}

/// An integration response's `Access-Control-*` header → the route's CORS policy (tollgate
/// writes those fields itself, and answers preflights before routing).
fn cors_header(
    cx: &mut Cx<'_>,
    name: &str,
    value: &Value,
    ptr: &str,
    cors: &mut Map<String, Value>,
) {
    let text = value.as_str().unwrap_or_default();
    if text.starts_with('$') || text == "''" {
        cx.report(ptr, format!("header {name} from a request value: CORS headers are tollgate's ([cors] or the route's cors); not mapped"));
        return;
    }
    let list = || -> Value {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_string()))
            .collect::<Vec<_>>()
            .into()
    };
    let lower = name.to_ascii_lowercase();
    let (key, v) = match lower.as_str() {
        "access-control-allow-origin" => {
            cx.report(ptr, "CORS response headers: imported as the route's cors policy (tollgate answers preflights itself, with the methods and headers of the path's OPTIONS mock)");
            ("allow_origins", list())
        }
        "access-control-allow-methods" => ("allow_methods", list()),
        "access-control-allow-headers" => ("allow_headers", list()),
        "access-control-expose-headers" => ("expose_headers", list()),
        "access-control-max-age" => match text.parse::<u64>() {
            Ok(n) => ("max_age", Value::from(n)),
            Err(_) => {
                return cx.report(ptr, format!("{name}: not a number of seconds; not mapped"))
            }
        },
        "access-control-allow-credentials" => (
            "allow_credentials",
            Value::Bool(text.eq_ignore_ascii_case("true")),
        ),
        _ => return cx.report(ptr, format!("header {name}: CORS's; not mapped")),
    };
    cors.entry(key).or_insert(v);
}

/// One template of a `responseTemplates` table: `application/json`'s, else the first; the
/// others are reported.
pub(super) fn one_template(
    cx: &mut Cx<'_>,
    v: &Value,
    ptr: &str,
) -> Result<Option<(String, String)>, ImportError> {
    let templates = object(v, ptr)?;
    let chosen = templates
        .keys()
        .find(|ct| ct.eq_ignore_ascii_case("application/json"))
        .or_else(|| templates.keys().next())
        .cloned();
    let Some(chosen) = chosen else {
        return Ok(None);
    };
    let mut out = None;
    for (ct, text) in templates {
        let at = child(ptr, ct);
        let text = string(text, &at)?;
        if *ct == chosen {
            out = Some((ct.clone(), text.to_string()));
        } else {
            cx.report(
                &at,
                format!("a second template ({ct}): one body per response; {chosen}'s is used"),
            );
        }
    }
    Ok(out)
}

/// The first Velocity directive in `template` (`#if`, `#{set}`, ...), if any.
pub(super) fn directive(template: &str) -> Option<&'static str> {
    let mut rest = template;
    while let Some(i) = rest.find('#') {
        let after = rest.get(i + 1..).unwrap_or_default();
        let word = after.strip_prefix('{').unwrap_or(after);
        let len = word
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(word.len());
        let name = word.get(..len).unwrap_or_default();
        if let Some(d) = DIRECTIVES.iter().find(|d| **d == name) {
            return Some(d);
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_patterns() {
        assert_eq!(selection("default"), Some(Selection::Default));
        assert_eq!(selection("404"), Some(Selection::Code(404)));
        assert_eq!(selection("4\\d{2}"), Some(Selection::Class(4)));
        assert_eq!(selection("5.."), Some(Selection::Class(5)));
        assert_eq!(selection(".*error.*"), None);
        assert_eq!(selection("9\\d{2}"), None);
    }

    #[test]
    fn directives_are_found_and_colours_are_not() {
        assert_eq!(directive("#set($a = 1)"), Some("set"));
        assert_eq!(directive("x #{if}(y)"), Some("if"));
        assert_eq!(directive("color: #352; ## comment"), None);
        assert_eq!(directive("$input.json('$')"), None);
    }
}
