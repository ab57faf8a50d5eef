//! Parsing a mapping template into its parts, at load.
//!
//! Owns: the grammar (a subset of the Velocity Template Language, VTL 1.7's rules where this
//! subset has them): text; references `$root...`, quiet `$!root...` and formal `${root...}`
//! whose roots are `input` (`.body`, `.json('PATH')`, `.path('PATH')` with `.member`s after,
//! `.params('NAME')`, `.params().header|querystring|path.get('NAME')`), `context`,
//! `stageVariables` and `util` (`.FUNCTION(ARGUMENT)`: a reference, a `'single-quoted'`
//! literal, or a `"double-quoted"` one with references inside), each optionally followed by
//! `.replace('a', 'b')` / `.replaceAll('a', 'b')`; `##` line and `#* *#` block comments
//! (dropped); `#[[ ]]#` unparsed text; `\$` and `\#` for a literal `$` or `#`. Any other `$`
//! is text (`$5`, `"$ref"`: VTL renders a reference it does not know as written). Every
//! directive (`#if`, `#foreach`, `#set`, `#macro`...) is refused: full VTL is out of scope.
//! Errors carry the byte offset where the fault starts. Leaves out: rendering (the parent
//! module) and where the template's text is in the config file (the config's).

use super::{util, ParamIn, Part, Ref, Replacement, Source, TemplateError, MAX_NESTING};
use crate::mapping::jsonpath::JsonPath;
use crate::mapping::value::{Scope, Value};

/// Velocity's directives: every one is refused.
const DIRECTIVES: &[&str] = &[
    "if", "elseif", "else", "end", "foreach", "set", "macro", "parse", "include", "evaluate",
    "define", "stop", "break",
];

/// What `$util.` offers, for error messages.
const FUNCTIONS: &str = "escapeJavaScript, base64Encode, base64Decode, urlEncode, urlDecode";

/// The parts of `text`, adjacent text merged.
pub(super) fn parse(text: &str, scope: &Scope<'_>) -> Result<Vec<Part>, TemplateError> {
    let mut p = Parser {
        text,
        pos: 0,
        end: text.len(),
        scope,
        depth: 0,
    };
    p.parts()
}

struct Parser<'t, 's, 'c> {
    text: &'t str,
    pos: usize,
    /// Where the text being parsed ends (a double-quoted argument's closing quote).
    end: usize,
    scope: &'s Scope<'c>,
    /// `$util` calls open around the current position.
    depth: usize,
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError {
        offset,
        message: message.into(),
    })
}

fn ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Collects text and parts, merging adjacent text.
#[derive(Default)]
struct Parts {
    parts: Vec<Part>,
    text: Vec<u8>,
}

impl Parts {
    fn text(&mut self, t: &[u8]) {
        self.text.extend_from_slice(t);
    }

    fn part(&mut self, p: Part) {
        self.flush();
        self.parts.push(p);
    }

    fn flush(&mut self) {
        if !self.text.is_empty() {
            let t = std::mem::take(&mut self.text);
            self.parts.push(Part::Text(t.into()));
        }
    }

    fn done(mut self) -> Vec<Part> {
        self.flush();
        self.parts
    }
}

impl<'t> Parser<'t, '_, '_> {
    fn byte(&self, at: usize) -> Option<u8> {
        (at < self.end).then(|| self.text.as_bytes().get(at).copied())?
    }

    fn rest(&self) -> &'t [u8] {
        self.text
            .as_bytes()
            .get(self.pos..self.end)
            .unwrap_or_default()
    }

    fn slice(&self, from: usize, to: usize) -> &'t str {
        self.text.get(from..to).unwrap_or_default()
    }

    /// Where `needle` next starts at or after `from` (within the text being parsed).
    fn find(&self, from: usize, needle: &[u8]) -> Option<usize> {
        let hay = self.text.as_bytes().get(from..self.end)?;
        hay.windows(needle.len())
            .position(|w| w == needle)
            .map(|i| from + i)
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.byte(self.pos) == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn ws(&mut self) {
        while self.byte(self.pos).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), TemplateError> {
        self.ws();
        if self.eat(b) {
            return Ok(());
        }
        fail(self.pos, format!("expected {} {what}", b as char))
    }

    /// An identifier (a letter, then letters, digits, `_`) at the position.
    fn ident(&mut self) -> Option<&'t str> {
        let start = self.pos;
        if !self.byte(start).is_some_and(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        let mut i = start + 1;
        while self.byte(i).is_some_and(ident_char) {
            i += 1;
        }
        self.pos = i;
        Some(self.slice(start, i))
    }

    /// A `'...'` or `"..."` literal at the position: where its text starts, and the text
    /// (VTL 1.7 string literals have no escapes).
    fn string(&mut self) -> Result<(usize, &'t str), TemplateError> {
        self.ws();
        let start = self.pos;
        let Some(q @ (b'\'' | b'"')) = self.byte(start) else {
            return fail(start, "expected a string literal ('...')");
        };
        let Some(close) = self.find(start + 1, &[q]) else {
            return fail(start, "unterminated string literal");
        };
        self.pos = close + 1;
        Ok((start + 1, self.slice(start + 1, close)))
    }

    /// `( 'literal' )` after a method name.
    fn literal_argument(&mut self, method: &str) -> Result<(usize, &'t str), TemplateError> {
        self.expect(b'(', &format!("after {method}"))?;
        let lit = self.string()?;
        self.expect(b')', &format!("to close {method}("))?;
        Ok(lit)
    }

    fn parts(&mut self) -> Result<Vec<Part>, TemplateError> {
        let mut out = Parts::default();
        while let Some(b) = self.byte(self.pos) {
            match b {
                b'#' => self.hash(&mut out)?,
                b'\\' if matches!(self.byte(self.pos + 1), Some(b'$' | b'#')) => {
                    out.text(self.slice(self.pos + 1, self.pos + 2).as_bytes());
                    self.pos += 2;
                }
                b'$' => match self.reference()? {
                    Some(r) => out.part(Part::Ref(r)),
                    None => {
                        out.text(b"$");
                        self.pos += 1;
                    }
                },
                _ => {
                    let run = self
                        .rest()
                        .iter()
                        .skip(1)
                        .position(|c| matches!(c, b'#' | b'\\' | b'$'))
                        .map_or(self.end, |i| self.pos + 1 + i);
                    out.text(self.slice(self.pos, run).as_bytes());
                    self.pos = run;
                }
            }
        }
        Ok(out.done())
    }

    /// At `#`: a comment, unparsed text, a directive (refused), or a `#` of text.
    fn hash(&mut self, out: &mut Parts) -> Result<(), TemplateError> {
        let at = self.pos;
        let rest = self.rest();
        if rest.starts_with(b"##") {
            // to the end of the line, its line break included (VTL's line comment)
            self.pos = self.find(at, b"\n").map_or(self.end, |nl| nl + 1);
        } else if rest.starts_with(b"#*") {
            let Some(close) = self.find(at + 2, b"*#") else {
                return fail(at, "unterminated comment: #* needs its *#");
            };
            self.pos = close + 2;
        } else if rest.starts_with(b"#[[") {
            let Some(close) = self.find(at + 3, b"]]#") else {
                return fail(at, "unterminated unparsed text: #[[ needs its ]]#");
            };
            out.text(self.slice(at + 3, close).as_bytes());
            self.pos = close + 3;
        } else {
            let braced = self.byte(at + 1) == Some(b'{');
            let from = at + 1 + usize::from(braced);
            let mut i = from;
            while self.byte(i).is_some_and(|b| b.is_ascii_alphabetic()) {
                i += 1;
            }
            let name = self.slice(from, i);
            let whole = match braced {
                true => self.byte(i) == Some(b'}'),
                false => !self.byte(i).is_some_and(ident_char),
            };
            if whole && DIRECTIVES.contains(&name) {
                return fail(
                    at,
                    format!(
                        "mapping templates support no directives (#{name}): full VTL is out of scope"
                    ),
                );
            }
            out.text(b"#");
            self.pos += 1;
        }
        Ok(())
    }

    /// A reference at `$`, or `None` (the position unchanged) when the `$` starts none this
    /// subset knows: it is text.
    fn reference(&mut self) -> Result<Option<Ref>, TemplateError> {
        let start = self.pos;
        let mut i = start + 1;
        if self.byte(i) == Some(b'!') {
            i += 1; // quiet: what is absent renders empty, as it always does here
        }
        let formal = self.byte(i) == Some(b'{');
        if formal {
            i += 1;
        }
        self.pos = i;
        let root = self.ident();
        let source = match root {
            Some("input") => self.input(start)?,
            Some("context") => self.context(start, formal)?,
            Some("stageVariables") => self.stage_variable(start)?,
            Some("util") => self.util(start)?,
            _ => {
                self.pos = start;
                return Ok(None);
            }
        };
        let replace = self.methods()?;
        if formal && !self.eat(b'}') {
            return fail(start, "unterminated ${: the reference needs its }");
        }
        Ok(Some(Ref {
            source,
            replace: replace.into(),
        }))
    }

    fn input(&mut self, start: usize) -> Result<Source, TemplateError> {
        let members =
            "$input.body, $input.json('$.a'), $input.path('$.a') or $input.params('name')";
        if !self.eat(b'.') {
            return fail(start, format!("$input needs a member: {members}"));
        }
        let at = self.pos;
        match self.ident().unwrap_or_default() {
            "body" => Ok(Source::Body),
            m @ ("json" | "path") => {
                let (lit_at, lit) = self.literal_argument(m)?;
                let mut path = lit.to_string();
                if m == "path" {
                    // `$input.path('$.a').b.c`: members of the selection
                    while let Some(member) = self.member() {
                        path.push('.');
                        path.push_str(member);
                    }
                }
                let jp = JsonPath::parse(&path).map_err(|e| TemplateError {
                    offset: lit_at,
                    message: format!("$input.{m}: {e}"),
                })?;
                Ok(match m {
                    "json" => Source::Json(jp),
                    _ => Source::Path(jp),
                })
            }
            "params" => self.params(start),
            "" => fail(at, format!("$input needs a member: {members}")),
            other => fail(
                at,
                format!("unknown member $input.{other} (supported: {members})"),
            ),
        }
    }

    /// `.name` not followed by `(` (a member of `$input.path(...)`), consumed.
    fn member(&mut self) -> Option<&'t str> {
        let save = self.pos;
        if self.eat(b'.') {
            if let Some(name) = self.ident() {
                if self.byte(self.pos) != Some(b'(') {
                    return Some(name);
                }
            }
        }
        self.pos = save;
        None
    }

    fn params(&mut self, start: usize) -> Result<Source, TemplateError> {
        self.expect(b'(', "after $input.params")?;
        self.ws();
        if self.byte(self.pos) != Some(b')') {
            let (at, name) = self.string()?;
            self.expect(b')', "to close $input.params(")?;
            return self.param_source(at, name, None);
        }
        self.pos += 1;
        // `$input.params().header.get('name')`, `.querystring.`, `.path.`
        let map = "$input.params() without a name is every parameter as a map, which needs #foreach (full VTL is out of scope): use $input.params('name') or $input.params().header.get('name')";
        let save = self.pos;
        if !self.eat(b'.') {
            return fail(start, map);
        }
        let only = match self.ident() {
            Some("header") => ParamIn::Header,
            Some("querystring") => ParamIn::Query,
            Some("path") => ParamIn::Path,
            _ => return fail(save, map),
        };
        let at = self.pos;
        if !(self.eat(b'.') && self.ident() == Some("get")) {
            return fail(at, map);
        }
        let (lit_at, name) = self.literal_argument("get")?;
        self.param_source(lit_at, name, Some(only))
    }

    fn param_source(
        &self,
        at: usize,
        name: &str,
        only: Option<ParamIn>,
    ) -> Result<Source, TemplateError> {
        if name.is_empty() {
            return fail(at, "$input.params needs a parameter name");
        }
        let path = self.scope.params.iter().position(|p| *p == name);
        if only == Some(ParamIn::Path) && path.is_none() {
            return fail(
                at,
                format!("$input.params().path.get('{name}'): the route has no path parameter {{{name}}}"),
            );
        }
        Ok(Source::Param {
            name: name.into(),
            header: name.to_ascii_lowercase().into(),
            path,
            only,
        })
    }

    /// `$context.NAME`: the access log's vocabulary, compiled by the value module.
    fn context(&mut self, start: usize, formal: bool) -> Result<Source, TemplateError> {
        if !self.eat(b'.') {
            return fail(start, "$context needs a variable name ($context.requestId)");
        }
        let rest = self.slice(self.pos, self.end);
        let (_, n) = crate::accesslog::parse_var(rest).map_err(|e| TemplateError {
            offset: start,
            message: e,
        })?;
        let name = rest.get(..n).unwrap_or_default();
        if formal && self.byte(self.pos + n) != Some(b'}') {
            let end = rest.find('}').unwrap_or(rest.len());
            let what = rest.get(..end).unwrap_or_default();
            return fail(start, format!("unknown variable $context.{what}"));
        }
        let v = Value::compile(&format!("${{context.{name}}}"), self.scope).map_err(|e| {
            TemplateError {
                offset: start,
                message: e,
            }
        })?;
        self.pos += n;
        Ok(Source::Value(v))
    }

    fn stage_variable(&mut self, start: usize) -> Result<Source, TemplateError> {
        if !self.eat(b'.') {
            return fail(start, "$stageVariables needs a variable name");
        }
        let from = self.pos;
        while self.byte(self.pos).is_some_and(ident_char) {
            self.pos += 1;
        }
        let name = self.slice(from, self.pos);
        if name.is_empty() {
            return fail(start, "$stageVariables needs a variable name");
        }
        Value::compile(&format!("${{stageVariables.{name}}}"), self.scope)
            .map(Source::Value)
            .map_err(|e| TemplateError {
                offset: start,
                message: e,
            })
    }

    fn util(&mut self, start: usize) -> Result<Source, TemplateError> {
        if !self.eat(b'.') {
            return fail(start, format!("$util needs a function ({FUNCTIONS})"));
        }
        let at = self.pos;
        let name = self.ident().unwrap_or_default();
        let Some(f) = util::Function::named(name) else {
            if name == "parseJson" {
                return fail(at, "$util.parseJson returns an object, which needs #set (full VTL is out of scope)");
            }
            return fail(
                at,
                format!("unknown function $util.{name} (supported: {FUNCTIONS})"),
            );
        };
        if self.depth >= MAX_NESTING {
            return fail(
                start,
                format!("$util calls nested more than {MAX_NESTING} deep"),
            );
        }
        self.depth += 1;
        self.expect(b'(', &format!("after $util.{name}"))?;
        let arg = self.argument()?;
        self.expect(b')', &format!("to close $util.{name}("))?;
        self.depth -= 1;
        Ok(Source::Util(f, arg.into()))
    }

    /// A function's argument: a reference, a `'literal'`, or a `"literal"` with references.
    fn argument(&mut self) -> Result<Vec<Part>, TemplateError> {
        self.ws();
        let at = self.pos;
        match self.byte(at) {
            Some(b'\'') => {
                let (_, lit) = self.string()?;
                Ok(vec![Part::Text(lit.as_bytes().into())])
            }
            Some(b'"') => {
                let (from, lit) = self.string()?;
                let (after, end) = (self.pos, self.end);
                self.pos = from;
                self.end = from + lit.len();
                let parts = self.parts();
                self.pos = after;
                self.end = end;
                parts
            }
            Some(b'$') => match self.reference()? {
                Some(r) => Ok(vec![Part::Ref(r)]),
                None => fail(at, "expected a reference ($input, $context, $stageVariables, $util) or a string literal"),
            },
            _ => fail(at, "expected a reference or a string literal as the argument"),
        }
    }

    /// `.replace('a', 'b')` / `.replaceAll('a', 'b')` after a reference; any other method is
    /// refused; `.name` without `(` is left as text.
    fn methods(&mut self) -> Result<Vec<Replacement>, TemplateError> {
        let mut out = Vec::new();
        loop {
            let save = self.pos;
            if !self.eat(b'.') {
                break;
            }
            let name = self.ident();
            let (Some(name), Some(b'(')) = (name, self.byte(self.pos)) else {
                self.pos = save;
                break;
            };
            if !matches!(name, "replace" | "replaceAll") {
                return fail(
                    save + 1,
                    format!(".{name}() is not supported (a reference may end with .replace('a', 'b') or .replaceAll('a', 'b'))"),
                );
            }
            self.pos += 1;
            let (from_at, from) = self.string()?;
            self.expect(b',', &format!("between the arguments of .{name}("))?;
            let (to_at, to) = self.string()?;
            self.expect(b')', &format!("to close .{name}("))?;
            let pair = match name {
                "replace" => (from.as_bytes().to_vec(), to.as_bytes().to_vec()),
                _ => {
                    let literal = |r: Result<Vec<u8>, String>, at: usize| {
                        r.map_err(|e| TemplateError {
                            offset: at,
                            message: format!(
                                ".replaceAll takes literal text only, not a {e} (full regular expressions are out of scope)"
                            ),
                        })
                    };
                    (
                        literal(util::literal_pattern(from), from_at)?,
                        literal(util::literal_replacement(to), to_at)?,
                    )
                }
            };
            out.push((pair.0.into(), pair.1.into()));
        }
        Ok(out)
    }
}
