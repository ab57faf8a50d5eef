//! Mapping templates, compiled: a route's `request_template` / `response_template`, one
//! template for any content type or a table of them by content type (API Gateway REST API's
//! `requestTemplates` / `responseTemplates`).
//!
//! Owns: the raw value ([`RawTemplates`]: a string, or a table kept in the order written),
//! compiling each template (see [`crate::transform::template`]: the subset of VTL without
//! control flow; `#if`, `#foreach` and every other directive refused here with a message
//! naming the key, its line, and the line of the directive when it is further down a
//! multi-line string), the table's keys (media types, RFC 9110 §8.3.1), and the route-level
//! rules: a template and a body transformation (`transform.request` / `.response`) cannot both
//! replace the same body, and WebSocket routes take no templates (a handshake has no body to
//! reshape and the tunnel after it is not HTTP). Leaves out: rendering (see
//! [`crate::transform::template`]) and when bodies are held (see [`crate::transform::hold`]).
//!
//! Data flow: `route[i].request_template` / `response_template` → [`compile`] →
//! [`TemplateConfig::routes`]`[i]`; the request's output is bounded by the route's
//! `max_body_bytes`, a response's by [`crate::transform::response::MAX_RESPONSE_BYTES`].

use std::fmt;
use std::ops::Range;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

use super::compile::Ctx;
use super::raw::{RawConfig, RawRoute};
use crate::mapping::value::Scope;
use crate::transform::template::{Template, TemplateSet};

/// `request_template = "..."` or `request_template = { "application/json" = "...", ... }`
/// (the table in the order written: the first entry is a response's default when there is
/// no `application/json`).
#[derive(Debug, Clone)]
pub enum RawTemplates {
    Any(String),
    ByType(Vec<(String, Spanned<String>)>),
}

impl<'de> Deserialize<'de> for RawTemplates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TemplatesVisitor)
    }
}

struct TemplatesVisitor;

impl<'de> Visitor<'de> for TemplatesVisitor {
    type Value = RawTemplates;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a template (a string), or a table of templates by content type")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawTemplates, E> {
        Ok(RawTemplates::Any(v.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawTemplates, E> {
        Ok(RawTemplates::Any(v))
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<RawTemplates, M::Error> {
        let mut list = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            list.push((key, map.next_value::<Spanned<String>>()?));
        }
        Ok(RawTemplates::ByType(list))
    }
}

impl Serialize for RawTemplates {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RawTemplates::Any(t) => s.serialize_str(t),
            RawTemplates::ByType(list) => {
                let mut m = s.serialize_map(Some(list.len()))?;
                for (k, v) in list {
                    m.serialize_entry(k, v.get_ref())?;
                }
                m.end()
            }
        }
    }
}

/// A route's compiled templates.
#[derive(Debug, Default)]
pub struct RouteTemplates {
    pub request: Option<TemplateSet>,
    pub response: Option<TemplateSet>,
}

/// Every route's templates, by route index.
#[derive(Debug, Default)]
pub struct TemplateConfig {
    pub routes: Vec<RouteTemplates>,
}

/// Compiles every route's `request_template` and `response_template`.
pub(super) fn compile(raw: &RawConfig, cx: &mut Ctx<'_>) -> TemplateConfig {
    TemplateConfig {
        routes: raw
            .route
            .iter()
            .enumerate()
            .map(|(i, r)| compile_route(i, r, cx))
            .collect(),
    }
}

fn compile_route(i: usize, r: &RawRoute, cx: &mut Ctx<'_>) -> RouteTemplates {
    let names = param_names(r.key.get_ref());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let vars = cx.stage_vars(i);
    let scope = Scope {
        params: &names,
        body: true,
        stage: vars.as_deref(),
    };
    let max_body = r
        .max_body_bytes
        .as_ref()
        .map_or(super::bodies::DEFAULT_MAX_BODY_BYTES, |m| *m.get_ref());
    let max_response = crate::transform::response::MAX_RESPONSE_BYTES;
    let transform = r.transform.as_ref().map(Spanned::get_ref);
    let websocket = r.websocket.as_ref().is_some_and(|w| *w.get_ref());
    let mut set = |raw: Option<&Spanned<RawTemplates>>,
                   which: &str,
                   transform: Option<&Spanned<String>>,
                   max: usize| {
        let t = raw?;
        let key = format!("route[{i}].{which}_template");
        if let Some(other) = transform {
            let (line, _) = super::line_col(cx.text(), other.span().start);
            let m = format!(
                "route[{i}].{which}_template and route[{i}].transform.{which} (line {line}) both replace the {which} body: keep one"
            );
            cx.err(t, key.clone(), m);
        }
        if websocket {
            cx.err(
                t,
                key.clone(),
                "mapping templates do not apply to a WebSocket route (websocket = true): its handshake has no body and its tunnel is not HTTP",
            );
        }
        compile_set(t, &key, &scope, max, cx)
    };
    let request = set(
        r.request_template.as_ref(),
        "request",
        transform.and_then(|t| t.request.as_ref()),
        max_body,
    );
    let response = set(
        r.response_template.as_ref(),
        "response",
        transform.and_then(|t| t.response.as_ref()),
        max_response,
    );
    RouteTemplates { request, response }
}

/// One direction's templates (errors reported, and `None`, when any is wrong).
fn compile_set(
    raw: &Spanned<RawTemplates>,
    key: &str,
    scope: &Scope<'_>,
    max: usize,
    cx: &mut Ctx<'_>,
) -> Option<TemplateSet> {
    match raw.get_ref() {
        RawTemplates::Any(text) => {
            let t = compile_one(text, raw.span(), key, scope, cx)?;
            Some(TemplateSet::any(t, max))
        }
        RawTemplates::ByType(list) if list.is_empty() => {
            let m = "an empty table: give templates by content type, or one string for any type";
            cx.err(raw, key, m);
            None
        }
        RawTemplates::ByType(list) => {
            let mut ok = true;
            let mut compiled = Vec::with_capacity(list.len());
            for (n, (media, text)) in list.iter().enumerate() {
                let entry_key = format!("{key}.{media:?}");
                if let Err(m) = check_media_type(media) {
                    cx.err(text, &entry_key, m);
                    ok = false;
                } else if list
                    .iter()
                    .take(n)
                    .any(|(m, _)| m.eq_ignore_ascii_case(media))
                {
                    let m = format!("{media:?} is given twice (media types are case-insensitive)");
                    cx.err(text, &entry_key, m);
                    ok = false;
                }
                match compile_one(text.get_ref(), text.span(), &entry_key, scope, cx) {
                    Some(t) => compiled.push((media.as_str().into(), t)),
                    None => ok = false,
                }
            }
            ok.then(|| TemplateSet::by_type(compiled, max))
        }
    }
}

/// Compiles one template; an error is reported at the value's line, naming the line of the
/// fault when a multi-line string puts it further down.
fn compile_one(
    text: &str,
    span: Range<usize>,
    key: &str,
    scope: &Scope<'_>,
    cx: &mut Ctx<'_>,
) -> Option<Template> {
    match Template::compile(text, scope) {
        Ok(t) => Some(t),
        Err(e) => {
            let (line, _) = super::line_col(cx.text(), span.start);
            let at = source_offset(cx.text(), &span, e.offset);
            let (fault, _) = super::line_col(cx.text(), at);
            let m = match fault > line {
                true => format!("{} (line {fault})", e.message),
                false => e.message,
            };
            cx.err(&Spanned::new(span, ()), key, m);
            None
        }
    }
}

/// A table key: `type/subtype` (RFC 9110 §8.3.1: tokens), without parameters or wildcards.
fn check_media_type(media: &str) -> Result<(), String> {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    match media.split_once('/') {
        Some((t, s)) if token(t) && token(s) && t != "*" && s != "*" => Ok(()),
        _ => Err(format!(
            "{media:?} is not a media type: keys are type/subtype (\"application/json\"), without parameters or wildcards"
        )),
    }
}

/// The path parameters of a route key (`"GET /pets/{id}/{rest+}"` → `id`, `rest`), in path
/// order, as the router names them.
pub(super) fn param_names(key: &str) -> Vec<String> {
    let path = key.split_once(' ').map_or(key, |(_, p)| p);
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_end_matches('+').to_string())
        .collect()
}

/// Where in the file byte `offset` of a TOML string's value is, the string's literal being at
/// `span` of `text` (basic `"…"`, literal `'…'`, and their multi-line forms with the first
/// line break trimmed and, in basic ones, escapes and line-ending backslashes, TOML 1.0
/// §String). Best effort, for error positions: anything unexpected stops where it is.
fn source_offset(text: &str, span: &Range<usize>, offset: usize) -> usize {
    let Some(lit) = text.get(span.clone()) else {
        return span.start;
    };
    let (delim, basic) = match lit {
        l if l.starts_with("\"\"\"") => (3, true),
        l if l.starts_with("'''") => (3, false),
        l if l.starts_with('"') => (1, true),
        l if l.starts_with('\'') => (1, false),
        _ => return span.start,
    };
    let mut src = delim;
    if delim == 3 {
        if lit.get(src..).is_some_and(|r| r.starts_with("\r\n")) {
            src += 2;
        } else if lit.get(src..).is_some_and(|r| r.starts_with('\n')) {
            src += 1;
        }
    }
    let mut value = 0;
    while value < offset {
        let Some(rest) = lit.get(src..) else { break };
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        if !(basic && c == '\\') {
            src += c.len_utf8();
            value += c.len_utf8();
            continue;
        }
        match chars.next() {
            // a line-ending backslash: the line break and the whitespace after it vanish
            Some(w) if delim == 3 && w.is_whitespace() => {
                let skipped = rest.get(1..).unwrap_or_default();
                let kept = skipped.trim_start_matches(char::is_whitespace);
                src += 1 + skipped.len() - kept.len();
            }
            Some(u @ ('u' | 'U')) => {
                let digits = if u == 'u' { 4 } else { 8 };
                let hex = rest.get(2..2 + digits).unwrap_or_default();
                let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                src += 2 + digits;
                value += ch.map_or(1, char::len_utf8);
            }
            Some(_) => {
                src += 2;
                value += 1;
            }
            None => break,
        }
    }
    span.start + src.min(lit.len())
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
