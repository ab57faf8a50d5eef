//! A gateway response's template (its body, or one of its header values): text with
//! `$context.error.*` (the failure: `message`, `messageString`, `responseType`,
//! `validationErrorString`) and the value vocabulary of [`crate::mapping::value`]
//! (`$context.*`, `$request.header.*`, `$request.querystring.*`, `$request.path`; `${...}`
//! braces).
//!
//! Owns: compiling a template at load ([`Template::compile`]: the `$context.error.*` variables
//! are split out here, everything between them is compiled by [`Value::compile`] and kept
//! variable by variable; an unknown variable is an error naming it) and rendering it for one
//! failure ([`Template::render`]: in a JSON body what a variable renders is JSON-escaped,
//! RFC 8259 §7, so `"$request.header.x"` stays one string whatever the client sent;
//! [`Template::render_field`] for a header value). Leaves out: which template applies and
//! where its output goes (see [`super`]). Sans-IO: bytes in, bytes out.
//!
//! A gateway response answers for every route, before or without a match: the route's path
//! parameters (`$request.path.NAME`) and its body (`$request.body`) are not available.

use crate::mapping::value::{Scope, Value, Vars};

/// The largest body template accepted (bytes of config text): a gateway response is a short
/// error document, not a page.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// A `$context.error.*` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorVar {
    /// `$context.error.message`: the failure's message text.
    Message,
    /// `$context.error.messageString`: the message as a quoted JSON string.
    MessageString,
    /// `$context.error.responseType`: the failure's type (`THROTTLED`).
    ResponseType,
    /// `$context.error.validationErrorString`: what request validation found (a refused
    /// body's details, the missing parameters); empty for other failures.
    ValidationErrorString,
}

/// The names after `$context.error.`.
const ERROR_VARS: [(&str, ErrorVar); 4] = [
    ("message", ErrorVar::Message),
    ("messageString", ErrorVar::MessageString),
    ("responseType", ErrorVar::ResponseType),
    ("validationErrorString", ErrorVar::ValidationErrorString),
];

/// One part of a template.
#[derive(Debug)]
enum Part {
    Text(Box<[u8]>),
    /// One `$context.*` variable: the access log's vocabulary renders it JSON-escaped already.
    Context(Value),
    /// One `$request.*` variable: what the client sent, as sent.
    Request(Value),
    Error(ErrorVar),
}

/// A compiled template.
#[derive(Debug)]
pub struct Template {
    parts: Box<[Part]>,
}

/// What a failure offers a template besides the request.
#[derive(Debug, Clone, Copy)]
pub struct ErrorVars<'a> {
    pub message: &'a str,
    pub response_type: &'a str,
    pub validation: &'a str,
}

impl Template {
    /// Compiles `text`. Errors name the variable that is unknown or not available here.
    pub fn compile(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some((at, var, len)) = find_error_var(rest)? {
            push_value(rest.get(..at).unwrap_or_default(), &mut parts)?;
            parts.push(Part::Error(var));
            rest = rest.get(at + len..).unwrap_or_default();
        }
        push_value(rest, &mut parts)?;
        Ok(Template {
            parts: parts.into(),
        })
    }

    /// A template of literal text (no variable, `$` included).
    pub fn text(text: &str) -> Template {
        let parts = match text.is_empty() {
            true => Vec::new(),
            false => vec![Part::Text(text.as_bytes().into())],
        };
        Template {
            parts: parts.into(),
        }
    }

    /// Whether rendering reads the failure's message or validation details (the caller then
    /// finds them).
    pub fn reads_message(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(
                p,
                Part::Error(
                    ErrorVar::Message | ErrorVar::MessageString | ErrorVar::ValidationErrorString
                )
            )
        })
    }

    /// Whether rendering reads the request or `$context` (the caller then builds them).
    pub fn reads_request(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Context(_) | Part::Request(_)))
    }

    /// Appends the template for this failure and request. `json`: the output is a JSON
    /// document (see the module doc): what a `$request` variable or `$context.error.message`
    /// renders is JSON-escaped (without quotes: the template has them).
    pub fn render(&self, err: &ErrorVars<'_>, v: Option<&Vars<'_>>, json: bool, out: &mut Vec<u8>) {
        for p in self.parts.iter() {
            match p {
                Part::Text(t) => out.extend_from_slice(t),
                Part::Context(val) => {
                    if let Some(v) = v {
                        val.render(v, out);
                    }
                }
                Part::Request(val) => {
                    if let Some(v) = v {
                        let start = out.len();
                        val.render(v, out);
                        if json {
                            let raw = out.split_off(start);
                            push_json_escaped(out, &raw);
                        }
                    }
                }
                Part::Error(e) => render_error(*e, err, json, out),
            }
        }
    }

    /// [`Template::render`] for a field value (RFC 9110 §5.5): control characters become
    /// spaces and surrounding whitespace is trimmed, so a value can never end a field line.
    pub fn render_field(&self, err: &ErrorVars<'_>, v: Option<&Vars<'_>>, out: &mut Vec<u8>) {
        let start = out.len();
        self.render(err, v, false, out);
        let value = out.split_off(start);
        let trimmed = value.trim_ascii();
        out.extend(trimmed.iter().map(|&b| match b {
            b'\t' => b,
            0..=0x1f | 0x7f => b' ',
            _ => b,
        }));
    }
}

/// The first `$context.error.NAME` (or `${context.error.NAME}`) in `s`: where it starts, which
/// it is, and its length; an unknown name is an error naming it.
fn find_error_var(s: &str) -> Result<Option<(usize, ErrorVar, usize)>, String> {
    const PREFIX: &str = "context.error.";
    for (at, _) in s.match_indices('$') {
        let after = s.get(at + 1..).unwrap_or_default();
        let (name, len) = if let Some(r) = after.strip_prefix(PREFIX) {
            let end = r
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(r.len());
            let name = r.get(..end).unwrap_or_default();
            (name, 1 + PREFIX.len() + end)
        } else if let Some(r) = after.strip_prefix('{').and_then(|b| b.strip_prefix(PREFIX)) {
            let close = r
                .find('}')
                .ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
            let name = r.get(..close).unwrap_or_default();
            (name, 2 + PREFIX.len() + close + 1)
        } else {
            continue;
        };
        let var = ERROR_VARS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                format!(
                    "unknown variable $context.error.{name} (a gateway response knows \
                     $context.error.message, messageString, responseType and \
                     validationErrorString)"
                )
            })?;
        return Ok(Some((at, var, len)));
    }
    Ok(None)
}

/// Compiles `text` (no `$context.error.*` in it) with the value vocabulary, variable by
/// variable, onto `parts`.
fn push_value(text: &str, parts: &mut Vec<Part>) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    // every route's failures, and those before a route: no path parameters, no body
    let scope = Scope {
        params: &[],
        body: false,
        stage: None,
    };
    let value = Value::compile(text, &scope).map_err(|e| explain(&e))?;
    for one in value.split() {
        if let Some(t) = one.static_text() {
            parts.push(Part::Text(t.into()));
        } else if one.reads_context() {
            parts.push(Part::Context(one));
        } else {
            parts.push(Part::Request(one));
        }
    }
    Ok(())
}

/// The value vocabulary's error, worded for a gateway response.
fn explain(e: &str) -> String {
    if e.contains("path parameter") {
        format!("{e}: a gateway response answers for every route, $request.path.NAME is not available (use $request.path)")
    } else if e.contains("$request.body") {
        "$request.body is not available in a gateway response (the failure may come before \
         the body is read)"
            .to_string()
    } else {
        e.to_string()
    }
}

fn render_error(e: ErrorVar, err: &ErrorVars<'_>, json: bool, out: &mut Vec<u8>) {
    let text = |t: &str, out: &mut Vec<u8>| match json {
        true => push_json_escaped(out, t.as_bytes()),
        false => out.extend_from_slice(t.as_bytes()),
    };
    match e {
        ErrorVar::Message => text(err.message, out),
        ErrorVar::ValidationErrorString => text(err.validation, out),
        ErrorVar::ResponseType => out.extend_from_slice(err.response_type.as_bytes()),
        ErrorVar::MessageString => {
            out.push(b'"');
            push_json_escaped(out, err.message.as_bytes());
            out.push(b'"');
        }
    }
}

/// Appends `raw` as the content of a JSON string (RFC 8259 §7): `"` and `\` escaped, control
/// characters as `\n`-style or `\u00XX` escapes, bytes that are not UTF-8 as U+FFFD.
pub fn push_json_escaped(out: &mut Vec<u8>, raw: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let text = String::from_utf8_lossy(raw);
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                let b = u32::from(c) as usize;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[b >> 4]);
                out.push(HEX[b & 0xf]);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// Whether `content_type` is a JSON media type: `application/json`, or any `+json` structured
/// syntax suffix (RFC 6839 §3.1).
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
