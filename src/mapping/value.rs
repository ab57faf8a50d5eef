//! The value vocabulary shared by parameter mapping, mock integrations, mapping templates and
//! gateway responses: static text mixed with `$request.header.NAME`,
//! `$request.querystring.NAME`, `$request.path.NAME`, `$request.path`,
//! `$request.body.JSONPATH`, `$context.NAME` (the access log's vocabulary, authorizer results
//! included) and `$stageVariables.NAME`; `${...}` braces delimit a variable inside text
//! (`id-${request.path.id}-x`). `''` is the empty value (API Gateway's `remove:` operand).
//!
//! Owns: compiling a value at load ([`Value::compile`], against a [`Scope`] that says which
//! path parameters exist and whether the body may be read: an unknown variable is an error
//! naming it) and rendering it for one request ([`Value::render`], into the caller's buffer,
//! nothing else allocated for header, query, path and `$context` parts). Leaves out: where a
//! rendered value goes (a header, a query parameter, a path, a body: the callers', which also
//! decide what bytes are acceptable there, see [`Value::render_field`]).

use serde_json::Value as Json;

use super::jsonpath::{JsonPath, Selected};
use crate::accesslog::{Entry, Needs, Piece};
use crate::http::RequestHead;

/// What a value may refer to, known where it is compiled.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// The route's path parameters, in path order (`{id}` → `"id"`; `{proxy+}` → `"proxy"`).
    pub params: &'a [&'a str],
    /// `$request.body.*` is allowed (the route holds its body; JSON bodies only).
    pub body: bool,
    /// The stage's variables; `None` until stages exist (`$stageVariables.*` is an error).
    pub stage: Option<&'a [(String, String)]>,
}

/// One part of a value.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(Box<[u8]>),
    /// `$request.header.NAME` (lowercase).
    Header(Box<str>),
    /// `$request.querystring.NAME`, as sent (percent-encoded).
    Query(Box<str>),
    /// `$request.path.NAME`: the route's parameter at this index, as matched.
    Param(usize),
    /// `$request.path`: the request's path, as sent.
    Path,
    /// `$request.body.PATH`: a string as its text, anything else as JSON.
    Body(JsonPath),
    Context(Piece),
}

/// A compiled value.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    parts: Box<[Part]>,
}

/// What one request offers to a value.
pub struct Vars<'a> {
    pub head: &'a RequestHead,
    /// The route's path parameters, in path order.
    pub params: &'a [&'a [u8]],
    /// The exchange's `$context` (see `crate::exchange::context::with_entry`).
    pub entry: &'a Entry<'a>,
    /// The request body parsed as JSON, when the route holds it and it is JSON.
    pub body: Option<&'a Json>,
}

/// Characters of a header or query parameter name after `$request.header.` (RFC 9110 §5.6.2
/// token characters, less those that read as punctuation in mixed text).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '_' | '!' | '#' | '%' | '&' | '\'' | '*' | '+' | '^' | '`' | '|' | '~'
        )
}

impl Value {
    /// Compiles `text`. Errors name the variable that is unknown or not allowed here.
    pub fn compile(text: &str, scope: &Scope<'_>) -> Result<Value, String> {
        let mut parts = Vec::new();
        if text == "''" {
            return Ok(Value {
                parts: parts.into(),
            });
        }
        let mut rest = text;
        let mut lit = String::new();
        while let Some(at) = rest.find('$') {
            lit.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (inner, braced) = match after.strip_prefix('{') {
                Some(b) => {
                    let close = b
                        .find('}')
                        .ok_or_else(|| format!("unterminated ${{ in {text:?}"))?;
                    (&b[..close], Some(close + 2))
                }
                None => (after, None),
            };
            match parse_var(inner, scope, braced.is_some())? {
                Some((part, len)) => {
                    if let Some(full) = braced {
                        if len != inner.len() {
                            return Err(format!("unknown variable ${{{inner}}}"));
                        }
                        rest = &after[full..];
                    } else {
                        rest = &after[len..];
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit).into_bytes().into()));
                    }
                    parts.push(part);
                }
                None => {
                    // a `$` that starts no variable is text (`$5`, `US$`)
                    lit.push('$');
                    rest = after;
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Text(lit.into_bytes().into()));
        }
        Ok(Value {
            parts: parts.into(),
        })
    }

    /// A value of `text` as written (no variable, `$` and `''` included).
    pub fn text(text: &str) -> Value {
        let parts = match text.is_empty() {
            true => Vec::new(),
            false => vec![Part::Text(text.as_bytes().into())],
        };
        Value {
            parts: parts.into(),
        }
    }

    /// A value of text only (no variable).
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The empty value (`''`).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Whether rendering reads `$request.body`.
    pub fn reads_body(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Body(_)))
    }

    /// Whether rendering reads the route's path parameters (`$request.path.NAME`).
    pub fn reads_params(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Param(_)))
    }

    /// Whether rendering reads `$context` (the caller then builds the entry).
    pub fn reads_context(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Context(_)))
    }

    /// What of the `$context` entry rendering reads (see [`Needs`]).
    pub fn needs(&self) -> Needs {
        self.parts.iter().fold(Needs::NONE, |n, p| match p {
            Part::Context(piece) => n.and(Needs::of(piece)),
            _ => n,
        })
    }

    /// Each part as a value of its own (a run of text, or one variable), in order: for a
    /// caller that treats what variables render apart from the text around them (a gateway
    /// response's JSON body escapes the former, see `crate::gateway_response`).
    pub fn split(self) -> Vec<Value> {
        self.parts
            .into_vec()
            .into_iter()
            .map(|p| Value {
                parts: Box::new([p]),
            })
            .collect()
    }

    /// The text of a static value.
    pub fn static_text(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for p in self.parts.iter() {
            match p {
                Part::Text(t) => out.extend_from_slice(t),
                _ => return None,
            }
        }
        Some(out)
    }

    /// Appends the value for this request. What is absent (a header not sent, a body member
    /// not there, a `$context` value that is `-`) is empty.
    pub fn render(&self, v: &Vars<'_>, out: &mut Vec<u8>) {
        for p in self.parts.iter() {
            match p {
                Part::Text(t) => out.extend_from_slice(t),
                Part::Header(n) => out.extend_from_slice(v.head.header(n).unwrap_or_default()),
                Part::Query(n) => {
                    out.extend_from_slice(query_param(v.head.query_bytes(), n).unwrap_or_default())
                }
                Part::Param(i) => {
                    out.extend_from_slice(v.params.get(*i).copied().unwrap_or_default())
                }
                Part::Path => out.extend_from_slice(v.head.path_bytes()),
                Part::Body(path) => {
                    if let Some(doc) = v.body {
                        match path.select(doc) {
                            Selected::None => {}
                            Selected::One(Json::String(s)) => out.extend_from_slice(s.as_bytes()),
                            Selected::One(j) => json_text(j, out),
                            Selected::Many(list) => {
                                let arr = Json::Array(list.into_iter().cloned().collect());
                                json_text(&arr, out);
                            }
                        }
                    }
                }
                Part::Context(piece) => {
                    let start = out.len();
                    crate::accesslog::render_piece(piece, v.entry, out);
                    if out.get(start..) == Some(b"-") {
                        out.truncate(start);
                    }
                }
            }
        }
    }

    /// [`Value::render`] for a field value (RFC 9110 §5.5): control characters (a body
    /// string's newline) become spaces and surrounding whitespace is trimmed, so a value can
    /// never end a field line or the head early.
    pub fn render_field(&self, v: &Vars<'_>, out: &mut Vec<u8>) {
        let start = out.len();
        self.render(v, out);
        for b in out.get_mut(start..).unwrap_or_default() {
            if (*b < 0x20 && *b != b'\t') || *b == 0x7f {
                *b = b' ';
            }
        }
        let tail = out
            .iter()
            .rev()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        out.truncate(out.len().saturating_sub(tail).max(start));
        let lead = out
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        if lead > 0 {
            out.drain(start..start + lead);
        }
    }
}

/// A variable at the start of `s` (the text after `$`, or inside `${}`): the part and the
/// length of its name; `None` when `s` starts no variable (`$` as text).
fn parse_var(s: &str, scope: &Scope<'_>, braced: bool) -> Result<Option<(Part, usize)>, String> {
    let name_end = |r: &str, ok: fn(char) -> bool| r.find(|c: char| !ok(c)).unwrap_or(r.len());
    if let Some(r) = s.strip_prefix("request.header.") {
        let n = name_end(r, name_char);
        if n == 0 {
            return Err("$request.header. needs a header name".into());
        }
        let name = r[..n].to_ascii_lowercase();
        return Ok(Some((
            Part::Header(name.into()),
            "request.header.".len() + n,
        )));
    }
    if let Some(r) = s.strip_prefix("request.querystring.") {
        let n = name_end(r, name_char);
        if n == 0 {
            return Err("$request.querystring. needs a parameter name".into());
        }
        return Ok(Some((
            Part::Query(r[..n].into()),
            "request.querystring.".len() + n,
        )));
    }
    if let Some(r) = s.strip_prefix("request.path.") {
        let n = name_end(r, |c| c.is_ascii_alphanumeric() || c == '_');
        let name = &r[..n];
        let i = scope
            .params
            .iter()
            .position(|p| *p == name)
            .ok_or_else(|| {
                format!("$request.path.{name}: the route has no path parameter {{{name}}}")
            })?;
        return Ok(Some((Part::Param(i), "request.path.".len() + n)));
    }
    if let Some(r) = s.strip_prefix("request.body") {
        if !scope.body {
            return Err("$request.body is not available here".into());
        }
        // the path runs to the end of the braces, or to the first character no path has
        let n = if braced {
            r.len()
        } else {
            r.find(|c: char| {
                !(c.is_ascii_alphanumeric()
                    || matches!(c, '_' | '.' | '[' | ']' | '*' | '-' | '\''))
            })
            .unwrap_or(r.len())
        };
        let path = r[..n].trim_end_matches('.');
        let jp = JsonPath::parse(&format!("${path}"))?;
        return Ok(Some((Part::Body(jp), "request.body".len() + path.len())));
    }
    if let Some(after) = s.strip_prefix("request.path") {
        if !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            return Ok(Some((Part::Path, "request.path".len())));
        }
    }
    if let Some(r) = s.strip_prefix("context.") {
        let (piece, n) = crate::accesslog::parse_var(r)?;
        return Ok(Some((Part::Context(piece), "context.".len() + n)));
    }
    if let Some(r) = s.strip_prefix("stageVariables.") {
        let n = name_end(r, |c| c.is_ascii_alphanumeric() || c == '_');
        let name = &r[..n];
        return match scope.stage {
            None => Err(format!(
                "$stageVariables.{name}: stage variables exist in routes of an [[api]] deployed by a [[stage]]"
            )),
            Some(vars) => match vars.iter().find(|(k, _)| k == name) {
                Some((_, v)) => Ok(Some((
                    Part::Text(v.as_bytes().into()),
                    "stageVariables.".len() + n,
                ))),
                None => Err(format!("unknown stage variable $stageVariables.{name}")),
            },
        };
    }
    if s.starts_with("request.") || s.starts_with("context") || s.starts_with("stageVariables") {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
            .unwrap_or(s.len());
        return Err(format!("unknown variable ${}", &s[..end]));
    }
    Ok(None)
}

/// The first value of query parameter `name` in `query` (`a=1&b=2`), as sent.
pub fn query_param<'q>(query: Option<&'q [u8]>, name: &str) -> Option<&'q [u8]> {
    query?.split(|&b| b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let k = kv.next()?;
        (k == name.as_bytes()).then(|| kv.next().unwrap_or_default())
    })
}

fn json_text(j: &Json, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, j);
}

#[cfg(test)]
#[path = "value_tests.rs"]
mod tests;
