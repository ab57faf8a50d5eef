//! Path rewrite templates (`/v1/pets/{id}`, `/backend/{proxy}`), parsed once
//! at config load against a route's parameter names and rendered per request
//! by plain byte concatenation.

use super::parse::{bad_literal_char, is_name_byte};

/// A parsed path rewrite template, e.g. `"/v1/pets/{id}"` or
/// `"/backend/{proxy}"`.
///
/// Rules: the template starts with `/`; `{name}` references a parameter of the
/// route (a greedy `{proxy+}` is referenced as `{proxy}`); a reference may sit
/// anywhere in the text (`/v1/{id}.json` is fine here, unlike in route keys);
/// literal text follows the route-key literal rules (no `{ } ? #`, whitespace
/// or control characters). Rendering substitutes values verbatim (raw bytes,
/// no encoding or decoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    text: Box<str>,
    pieces: Box<[Piece]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// Byte range of `text`.
    Lit(usize, usize),
    /// Index into the route's parameter values.
    Param(usize),
}

impl PathTemplate {
    /// Parses `template` for a route whose parameters are `param_names` (as
    /// returned by [`super::Router::param_names`]). Errors name the offending
    /// part, e.g. an unknown parameter.
    pub fn parse(template: &str, param_names: &[Box<str>]) -> Result<PathTemplate, String> {
        if !template.starts_with('/') {
            return Err(format!("rewrite path {template:?} must start with '/'"));
        }
        let mut pieces = Vec::new();
        let mut lit_start = 0;
        let mut rest = template;
        let mut offset = 0;
        while let Some(i) = rest.find(|c: char| bad_literal_char(c)) {
            let c = rest[i..].chars().next().unwrap_or('{');
            if c != '{' {
                return Err(format!(
                    "rewrite path {template:?} contains invalid character {c:?}"
                ));
            }
            let after = &rest[i + 1..];
            let Some(close) = after.find('}') else {
                return Err(format!("rewrite path {template:?} has an unclosed '{{'"));
            };
            let name = &after[..close];
            if let Some(base) = name.strip_suffix('+') {
                return Err(format!(
                    "rewrite path {template:?}: reference greedy parameter {{{base}+}} as {{{base}}}"
                ));
            }
            if name.is_empty() || !name.bytes().all(is_name_byte) {
                return Err(format!(
                    "rewrite path {template:?}: invalid parameter reference {{{name}}}"
                ));
            }
            let Some(idx) = param_names.iter().position(|n| &**n == name) else {
                let known: Vec<&str> = param_names.iter().map(|n| &**n).collect();
                return Err(format!(
                    "rewrite path {template:?} references unknown parameter {name:?} (route parameters: [{}])",
                    known.join(", ")
                ));
            };
            let brace = offset + i;
            if brace > lit_start {
                pieces.push(Piece::Lit(lit_start, brace));
            }
            pieces.push(Piece::Param(idx));
            let consumed = i + 1 + close + 1;
            offset += consumed;
            lit_start = offset;
            rest = &rest[consumed..];
        }
        if template.len() > lit_start {
            pieces.push(Piece::Lit(lit_start, template.len()));
        }
        Ok(PathTemplate {
            text: template.into(),
            pieces: pieces.into(),
        })
    }

    /// Appends the rendered path to `out`: literal text as written, each
    /// `{name}` replaced by `params[index]` verbatim (a missing value renders
    /// as empty). The caller appends `?query` itself.
    pub fn render(&self, params: &[&[u8]], out: &mut Vec<u8>) {
        let text = self.text.as_bytes();
        for piece in self.pieces.iter() {
            match *piece {
                Piece::Lit(start, end) => {
                    out.extend_from_slice(text.get(start..end).unwrap_or(&[]))
                }
                Piece::Param(i) => out.extend_from_slice(params.get(i).copied().unwrap_or(&[])),
            }
        }
    }

    /// The template text as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}
