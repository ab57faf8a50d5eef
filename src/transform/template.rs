//! Mapping templates: the part of API Gateway's VTL that reshapes JSON without control flow
//! (see README "Mapping templates"): `$input.json('$.path')`, `$input.path('$.path')`,
//! `$input.params('name')`, `$input.body`, `$context.NAME`, `$stageVariables.NAME`,
//! `$util.escapeJavaScript()`, `$util.base64Encode()` / `$util.base64Decode()`,
//! `$util.urlEncode()` / `$util.urlDecode()`. Directives (`#if`, `#foreach`, `#set`...) are
//! refused at load: full VTL is out of scope.
//!
//! Owns: the compiled form ([`Template`]: text and references, the grammar in `template_parse.rs`;
//! [`TemplateSet`]: one template for any content type, or one per content type, and the limit
//! on what rendering may produce), choosing a template for a request (by its `Content-Type`,
//! API Gateway's `requestTemplates`; none matching: the body passes through, AWS's
//! `WHEN_NO_MATCH`) or a response (by the client's `Accept`, API Gateway's
//! `responseTemplates`; without a preference, by the integration's own type), and rendering ([`request`], [`response`]). The `$util` functions are
//! in [`util`]. Leaves out: the `$context` and `$stageVariables` vocabulary (see
//! [`crate::mapping::value`], which renders them), JSONPath (see [`crate::mapping::jsonpath`]),
//! compiling the TOML (see `crate::config::templates`) and when bodies are held and sent (see
//! [`super::hold`], [`super::response`]).
//!
//! Data flow: the request-mapping phase calls [`request`] with the held body (parsed as JSON
//! once by [`super::hold::json`], in [`Vars::body`]); the response reshaping calls
//! [`response`] with the integration's whole body, parsed here when the template reads it.
//! Rendering is sans-IO: bytes in, bytes out, at most [`TemplateSet::max_bytes`] of them.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::Value as Json;

use crate::error::GatewayError;
use crate::mapping::jsonpath::{JsonPath, Selected};
use crate::mapping::value::{Value, Vars};

#[path = "template_parse.rs"]
mod parse;
#[path = "template_util.rs"]
pub mod util;

/// How deeply `$util` calls may nest (`$util.urlEncode($util.base64Encode(...))`): the parser
/// recurses once per level, and no real template needs more.
pub const MAX_NESTING: usize = 8;

/// The media type a request without `Content-Type` is taken to have when a template is chosen,
/// and the type of a response rendered by a template written for any type (API Gateway's
/// default).
pub const DEFAULT_MEDIA_TYPE: &str = "application/json";

/// A route's templates for one direction: one for any content type, or one per content type.
#[derive(Debug, Default)]
pub struct TemplateSet {
    /// `request_template = "..."`: used whatever the content type.
    any: Option<Template>,
    /// `request_template = { "application/json" = "...", ... }`: media types (lowercase,
    /// without parameters) in the order written.
    by_type: Vec<(Box<str>, Template)>,
    /// The most a rendering may produce (a request body: the route's `max_body_bytes`; a
    /// response: [`super::response::MAX_RESPONSE_BYTES`]).
    max_bytes: usize,
}

impl TemplateSet {
    /// One template for any content type.
    pub fn any(t: Template, max_bytes: usize) -> TemplateSet {
        TemplateSet {
            any: Some(t),
            by_type: Vec::new(),
            max_bytes,
        }
    }

    /// Templates by media type (`type/subtype`, matched case-insensitively).
    pub fn by_type(list: Vec<(Box<str>, Template)>, max_bytes: usize) -> TemplateSet {
        let by_type = list
            .into_iter()
            .map(|(k, t)| (k.to_ascii_lowercase().into_boxed_str(), t))
            .collect();
        TemplateSet {
            any: None,
            by_type,
            max_bytes,
        }
    }

    /// The most a rendering may produce.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The template for a request body of this `Content-Type` (absent: `application/json`).
    fn for_request(&self, content_type: Option<&[u8]>) -> Option<&Template> {
        if let Some(t) = &self.any {
            return Some(t);
        }
        let media = content_type.map_or(Cow::Borrowed(DEFAULT_MEDIA_TYPE), essence);
        self.by_type
            .iter()
            .find(|(k, _)| **k == *media)
            .map(|(_, t)| t)
    }

    /// The template for a response to a client that sent this `Accept`, and the media type
    /// it renders. Media ranges are tried by preference (RFC 9110 §12.5.1: `q`, then order);
    /// no `Accept`, `*/*`, or nothing acceptable (RFC 9110 §12.5.1 lets a server disregard
    /// the field) take the default: the template for the type the integration answered with
    /// (`produced`), else `application/json`, else the first.
    fn for_response(
        &self,
        accept: Option<&[u8]>,
        produced: Option<&[u8]>,
    ) -> Option<(&Template, &str)> {
        if let Some(t) = &self.any {
            return Some((t, DEFAULT_MEDIA_TYPE));
        }
        let pick = |k: &str| self.by_type.iter().find(|(t, _)| **t == *k);
        let default = || {
            produced
                .and_then(|p| pick(&essence(p)))
                .or_else(|| pick(DEFAULT_MEDIA_TYPE))
                .or_else(|| self.by_type.first())
                .map(|(k, t)| (t, &**k))
        };
        let Some(accept) = accept else {
            return default();
        };
        for range in media_ranges(accept) {
            if range == "*/*" {
                return default();
            }
            let found = match range.strip_suffix("/*") {
                Some(ty) => self.by_type.iter().find(|(k, _)| {
                    k.split_once('/')
                        .is_some_and(|(t, _)| t.eq_ignore_ascii_case(ty))
                }),
                None => pick(&range),
            };
            if let Some((k, t)) = found {
                return Some((t, &**k));
            }
        }
        default()
    }
}

/// A compiled template: text and references, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Box<[Part]>,
    /// Some part reads the body as JSON (`$input.json`, `$input.path`).
    reads_json: bool,
}

/// Why a template does not compile: the message, and where in the template's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset in the template's text.
    pub offset: usize,
    pub message: String,
}

/// One part of a template, or of an argument.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(Box<[u8]>),
    Ref(Ref),
}

/// A reference: where its value comes from, then the string methods applied to it.
#[derive(Debug, Clone, PartialEq)]
struct Ref {
    source: Source,
    /// `.replace('a', 'b')` / `.replaceAll('a', 'b')` (patterns of literal text): applied in
    /// order.
    replace: Box<[Replacement]>,
}

/// What a `.replace` replaces, and with what.
type Replacement = (Box<[u8]>, Box<[u8]>);

#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// `$input.body`: the body as it is (an empty one reads `{}`, as API Gateway).
    Body,
    /// `$input.json('…')`: the selection as JSON text (a string quoted; nothing: `null`).
    Json(JsonPath),
    /// `$input.path('…')`: the selection as a value (a string as its text; an object or array
    /// as JSON text; nothing or `null`: empty).
    Path(JsonPath),
    /// `$input.params('name')`: the path parameter, else the query parameter, else the header;
    /// `$input.params().header.get('name')` (and `.querystring`, `.path`): only that one.
    Param {
        /// As written: a query parameter's name is case-sensitive.
        name: Box<str>,
        /// Lowercase, for the header lookup (field names are case-insensitive, RFC 9110 §5.1).
        header: Box<str>,
        /// The route's path parameter of that name, if it has one.
        path: Option<usize>,
        only: Option<ParamIn>,
    },
    /// `$context.NAME`, `$stageVariables.NAME`.
    Value(Value),
    /// `$util.NAME(argument)`.
    Util(util::Function, Box<[Part]>),
}

/// Where `$input.params().WHERE.get('name')` looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamIn {
    Path,
    Query,
    Header,
}

impl Template {
    /// Compiles `text` (see [`parse`]). `scope` names the route's path parameters and the
    /// stage variables for `$context` and `$stageVariables`.
    pub fn compile(
        text: &str,
        scope: &crate::mapping::value::Scope<'_>,
    ) -> Result<Template, TemplateError> {
        let parts = parse::parse(text, scope)?;
        let reads_json = parts.iter().any(Part::reads_json);
        Ok(Template {
            parts: parts.into(),
            reads_json,
        })
    }

    /// Whether rendering reads the body as JSON.
    pub fn reads_json(&self) -> bool {
        self.reads_json
    }
}

impl Part {
    fn reads_json(&self) -> bool {
        match self {
            Part::Text(_) => false,
            Part::Ref(r) => match &r.source {
                Source::Json(_) | Source::Path(_) => true,
                Source::Util(_, arg) => arg.iter().any(Part::reads_json),
                Source::Body | Source::Param { .. } | Source::Value(_) => false,
            },
        }
    }
}

/// Why a rendering failed (the caller words it for its direction).
#[derive(Debug, Clone, PartialEq, Eq)]
enum RenderError {
    /// The template reads the body as JSON and it is not.
    NotJson,
    /// `$util.base64Decode` / `$util.urlDecode` of text that is not that encoding.
    Decode(&'static str),
    /// The output would be larger than the set's `max_bytes`.
    TooLarge,
}

/// What one rendering reads.
struct Input<'a> {
    vars: &'a Vars<'a>,
    body: &'a [u8],
    /// The body as JSON (an empty body is `{}`), when the template reads it.
    doc: Option<Cow<'a, Json>>,
    max: usize,
}

/// The request body as the integration gets it (`None`: unchanged, no template for its
/// content type). The body keeps the client's `Content-Type`; a request without one gets
/// `application/json`, the type its template was chosen for.
pub fn request(
    t: &TemplateSet,
    vars: &Vars<'_>,
    body: &[u8],
) -> Result<Option<super::request::NewBody>, super::Refusal> {
    let content_type = vars.head.header("content-type");
    let Some(tpl) = t.for_request(content_type) else {
        return Ok(None);
    };
    let doc = match (tpl.reads_json, vars.body) {
        (false, _) => None,
        (true, Some(j)) => Some(Cow::Borrowed(j)),
        (true, None) if is_blank(body) => Some(Cow::Owned(empty_object())),
        (true, None) => {
            return Err(super::Refusal::request(
                "request body is not valid JSON (the mapping template reads it with $input.json or $input.path)",
            ))
        }
    };
    let input = Input {
        vars,
        body,
        doc,
        max: t.max_bytes,
    };
    let out = render(tpl, &input).map_err(|e| match e {
        RenderError::NotJson => super::Refusal::request("request body is not valid JSON"),
        RenderError::Decode(why) => super::Refusal::request(why),
        RenderError::TooLarge => super::Refusal {
            error: GatewayError::DecodedTooLarge,
            message: format!(
                "the mapping template renders more than the route's max_body_bytes ({} bytes)",
                t.max_bytes
            ),
        },
    })?;
    Ok(Some(super::request::NewBody {
        body: Bytes::from(out),
        content_type: content_type.is_none().then(|| DEFAULT_MEDIA_TYPE.into()),
    }))
}

/// The response body as the client gets it, with its media type: the template the client's
/// `Accept` chooses (without a preference: the one for the integration's `content_type`),
/// rendered over the integration's body (a status without content, RFC 9110 §15.3.5 and
/// §15.4.5, passes as it is).
pub fn response(
    t: &TemplateSet,
    vars: &Vars<'_>,
    status: u16,
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<(Bytes, Option<Box<str>>), super::Refusal> {
    let chosen = t.for_response(vars.head.header("accept"), content_type);
    let Some((tpl, media)) = chosen.filter(|_| crate::http::status_has_content(status)) else {
        return Ok((Bytes::copy_from_slice(body), None));
    };
    let not_json = "integration response body is not valid JSON (the mapping template reads it with $input.json or $input.path)";
    let doc = match tpl.reads_json {
        false => None,
        true if is_blank(body) => Some(Cow::Owned(empty_object())),
        true => match serde_json::from_slice::<Json>(body) {
            Ok(j) => Some(Cow::Owned(j)),
            Err(_) => return Err(super::Refusal::response(not_json)),
        },
    };
    let input = Input {
        vars,
        body,
        doc,
        max: t.max_bytes,
    };
    let out = render(tpl, &input).map_err(|e| match e {
        RenderError::NotJson => super::Refusal::response(not_json),
        RenderError::Decode(why) => super::Refusal::response(why),
        RenderError::TooLarge => super::Refusal::response(format!(
            "the response mapping template renders more than {} bytes (MAX_RESPONSE_BYTES)",
            t.max_bytes
        )),
    })?;
    Ok((Bytes::from(out), Some(media.into())))
}

/// Renders `t` for one request or response.
fn render(t: &Template, input: &Input<'_>) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    render_parts(&t.parts, input, &mut out)?;
    Ok(out)
}

fn render_parts(parts: &[Part], input: &Input<'_>, out: &mut Vec<u8>) -> Result<(), RenderError> {
    for p in parts {
        match p {
            Part::Text(t) => out.extend_from_slice(t),
            Part::Ref(r) if r.replace.is_empty() => render_source(&r.source, input, out)?,
            Part::Ref(r) => {
                let mut value = Vec::new();
                render_source(&r.source, input, &mut value)?;
                for (from, to) in r.replace.iter() {
                    value = util::replace(&value, from, to);
                }
                out.extend_from_slice(&value);
            }
        }
        if out.len() > input.max {
            return Err(RenderError::TooLarge);
        }
    }
    Ok(())
}

fn render_source(s: &Source, input: &Input<'_>, out: &mut Vec<u8>) -> Result<(), RenderError> {
    match s {
        Source::Body if input.body.is_empty() => out.extend_from_slice(b"{}"),
        Source::Body => out.extend_from_slice(input.body),
        Source::Json(path) => {
            let doc = input.doc.as_deref().ok_or(RenderError::NotJson)?;
            match path.select(doc) {
                Selected::None => out.extend_from_slice(b"null"),
                Selected::One(j) => json_text(j, out),
                Selected::Many(list) => json_list(&list, out),
            }
        }
        Source::Path(path) => {
            let doc = input.doc.as_deref().ok_or(RenderError::NotJson)?;
            match path.select(doc) {
                Selected::None | Selected::One(Json::Null) => {}
                Selected::One(Json::String(s)) => out.extend_from_slice(s.as_bytes()),
                Selected::One(j) => json_text(j, out),
                Selected::Many(list) => json_list(&list, out),
            }
        }
        Source::Param {
            name,
            header,
            path,
            only,
        } => param(input.vars, (name, header), *path, *only, out),
        Source::Value(v) => v.render(input.vars, out),
        Source::Util(f, arg) => {
            let mut value = Vec::new();
            render_parts(arg, input, &mut value)?;
            f.apply(&value, out).map_err(RenderError::Decode)?;
        }
    }
    Ok(())
}

/// `$input.params(name)`: the route's path parameter, the query parameter, the header, the
/// first of them with a value (percent-decoded: a query value as a form, `+` a space).
fn param(
    vars: &Vars<'_>,
    (name, header): (&str, &str),
    path: Option<usize>,
    only: Option<ParamIn>,
    out: &mut Vec<u8>,
) {
    let wants = |w: ParamIn| only.is_none_or(|o| o == w);
    if wants(ParamIn::Path) {
        if let Some(v) = path
            .and_then(|i| vars.params.get(i))
            .filter(|v| !v.is_empty())
        {
            util::percent_decode(v, false, out);
            return;
        }
    }
    if wants(ParamIn::Query) {
        let q = crate::mapping::value::query_param(vars.head.query_bytes(), name);
        if let Some(v) = q.filter(|v| !v.is_empty()) {
            util::percent_decode(v, true, out);
            return;
        }
    }
    if wants(ParamIn::Header) {
        if let Some(v) = vars.head.header(header) {
            out.extend_from_slice(v);
        }
    }
}

/// A media type without its parameters, lowercase (`Application/JSON; charset=utf-8` →
/// `application/json`; RFC 9110 §8.3.1: type and subtype are case-insensitive).
fn essence(v: &[u8]) -> Cow<'static, str> {
    let text = String::from_utf8_lossy(v);
    let media = text.split(';').next().unwrap_or_default().trim();
    Cow::Owned(media.to_ascii_lowercase())
}

/// The media ranges of an `Accept` value, most preferred first (RFC 9110 §12.5.1: by `q`,
/// then in the order written; `q=0` is "not acceptable" and left out).
fn media_ranges(accept: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(accept);
    let mut ranges: Vec<(u16, String)> = text
        .split(',')
        .filter_map(|item| {
            let mut fields = item.split(';');
            let range = fields.next()?.trim().to_ascii_lowercase();
            if range.is_empty() {
                return None;
            }
            let q = fields
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1000, |(_, v)| qvalue(v.trim()));
            (q > 0).then_some((q, range))
        })
        .collect();
    ranges.sort_by_key(|r| std::cmp::Reverse(r.0)); // stable: ties keep their order
    ranges.into_iter().map(|(_, r)| r).collect()
}

/// A `qvalue` (RFC 9110 §12.4.2) in thousandths; malformed ones count as 1.
fn qvalue(v: &str) -> u16 {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return 1000,
    };
    let mut thousandths = 0u16;
    for (i, c) in frac.chars().take(3).enumerate() {
        let Some(d) = c.to_digit(10) else { return 1000 };
        let scale = [100u16, 10, 1].get(i).copied().unwrap_or(0);
        thousandths += u16::try_from(d).unwrap_or(0) * scale;
    }
    (whole + thousandths).min(1000)
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

fn empty_object() -> Json {
    Json::Object(serde_json::Map::new())
}

fn json_text(j: &Json, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, j);
}

fn json_list(list: &[&Json], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, j) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_text(j, out);
    }
    out.push(b']');
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
