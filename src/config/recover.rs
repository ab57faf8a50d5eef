//! Stage one with recovery: turn TOML text into the [`raw`] structs while collecting *every*
//! structural error (wrong type, unknown key, missing key, unknown variant), not just the first.
//!
//! serde stops at the first error. So: parse the text once into a spanned document
//! ([`toml_edit::ImDocument`], the parser toml itself uses), then deserialize; when that fails
//! at a span, locate the entry the span belongs to, record the error under the entry's dotted key
//! (`route[2].mock.status`), overwrite the entry's bytes with spaces (newlines kept, so every
//! offset and line stays valid, and the text stays valid TOML) and deserialize again — at most
//! [`MAX_RECOVERY_PASSES`] times. A "missing field" that only appears because this module blanked
//! that field is not reported twice. An entry that cannot be set aside (a table missing a
//! required key) is blanked as a whole; when that is an element of an array of tables
//! (`[[route]]`), later elements shift index: it is listed in [`Recovered::removed`], and
//! [`super::shifted`] maps the semantic stage's indices back to the file. The caller runs the
//! semantic stage on what remains and drops its errors about blanked keys
//! ([`Recovered::is_blanked`]), which would only repeat a reported problem.
//!
//! Leaves out: meaning (see [`super::compile`]). A syntax error (text that is not TOML at all)
//! is one error: nothing after it can be trusted. The exception is an integer beyond 64 bits,
//! which the parser refuses though the structure around it is sound: it is reported and set
//! aside like a wrong value, and the rest of the file is checked.

use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike, Value};

use super::raw::{self, RawConfig};
use super::shifted::Removed;
use super::ConfigError;

/// Upper bound on deserialization attempts for one file: each pass sets aside at least one
/// entry, so a file would need this many broken entries to hit it.
pub const MAX_RECOVERY_PASSES: usize = 1_000;

/// The outcome of stage one.
pub struct Recovered {
    /// The structs, when deserialization succeeded after setting aside the bad entries.
    pub raw: Option<RawConfig>,
    /// `false` when recovery stopped early: skip the semantic stage.
    pub complete: bool,
    /// Elements of arrays of tables set aside whole: later elements have moved up one index
    /// in `raw` (see [`super::shifted`]).
    pub removed: Vec<Removed>,
    /// Every structural error, in the order found.
    pub errors: Vec<ConfigError>,
    /// Dotted keys of the entries set aside.
    blanked: Vec<String>,
}

impl Recovered {
    /// Whether `key` names a set-aside entry, something inside one, or a table holding one: an
    /// error about it from a later stage would be a follow-on of an error already reported.
    pub fn is_blanked(&self, key: &str) -> bool {
        self.blanked
            .iter()
            .any(|b| is_within(key, b) || is_within(b, key))
    }
}

/// `inner` is `outer` or a key below it (`route[1].mock.status` is within `route[1]`).
fn is_within(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// Deserializes `text`, collecting every structural error (see the module docs).
pub fn parse(text: &str) -> Recovered {
    let mut out = Recovered {
        raw: None,
        complete: true,
        removed: Vec::new(),
        errors: Vec::new(),
        blanked: Vec::new(),
    };
    let first = match raw::parse(text) {
        Ok(r) => {
            out.raw = Some(r);
            return out;
        }
        Err(e) => e,
    };
    // Integers beyond 64 bits are the one syntax error that leaves the structure intact: each
    // is replaced by a `0` padded with spaces (offsets unchanged) so the document parses, and
    // reported and set aside like a wrong value below.
    let mut patched = text.to_string();
    let mut huge = Vec::new();
    let doc = loop {
        match ImDocument::parse(patched.clone()) {
            Ok(d) => break d,
            Err(e) => match e
                .span()
                .and_then(|s| out_of_range_number(&patched, &e, s.start))
            {
                Some(r) if huge.len() < MAX_RECOVERY_PASSES => {
                    patched.replace_range(r.clone(), &format!("{:<1$}", "0", r.len()));
                    huge.push(r);
                }
                _ => {
                    // not TOML at all: one error, where the parser gave up
                    out.errors.push(syntax_error(text, &first));
                    out.complete = false;
                    return out;
                }
            },
        }
    };
    let mut buf = patched.into_bytes();
    for r in huge {
        // in the document the value is the `0` it was replaced with
        let zero = r.start..r.start + 1;
        let hit = locate(text, doc.as_table(), "", None, false, &zero);
        let key = hit
            .as_ref()
            .map_or_else(|| "toml".to_string(), |h| h.report.clone());
        let number = text.get(r.clone()).unwrap_or_default();
        let message = format!("{number}: TOML integers are 64-bit");
        out.errors.push(ConfigError::at(text, r, key, message));
        if let Some(h) = hit {
            blank(&mut buf, &h.blank);
            out.blanked.push(h.path);
        }
    }
    let mut err = match std::str::from_utf8(&buf).map(raw::parse) {
        Ok(Ok(r)) => {
            out.raw = Some(r);
            return out;
        }
        Ok(Err(e)) => e,
        Err(_) => {
            out.complete = false;
            return out;
        }
    };
    for _ in 0..MAX_RECOVERY_PASSES {
        if !set_aside(text, &doc, &mut buf, &err, &mut out) {
            out.complete = false;
            return out;
        }
        // blanking only writes spaces over whole entries of valid UTF-8 text
        let Ok(now) = std::str::from_utf8(&buf) else {
            out.complete = false;
            return out;
        };
        if ImDocument::parse(now).is_err() {
            // blanking left text that no longer parses (e.g. a `[a.b]` table whose parent
            // `[[a]]` element was set aside): stop rather than report errors about our edit
            out.complete = false;
            return out;
        }
        match raw::parse(now) {
            Ok(r) => {
                out.raw = Some(r);
                return out;
            }
            Err(e) => err = e,
        }
    }
    out.complete = false;
    out
}

fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    // the parser's message may span lines ("invalid string\nexpected ..."): one line per
    // error, so `FILE:LINE:COL: key: message` stays parseable
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    // some parser errors (a control character in a comment) come without a message
    let message = if message.is_empty() {
        let at = e.span().and_then(|s| text.get(s.start..)?.chars().next());
        match at {
            Some(c) => format!("not valid TOML here ({c:?})"),
            None => "not valid TOML here".to_string(),
        }
    } else {
        message
    };
    let key = duplicate_key(&message).unwrap_or_else(|| "toml".to_string());
    // no span: line 1, column 1
    ConfigError::at(text, e.span().unwrap_or_default(), key, message)
}

/// The dotted key a "duplicate key `k` in table `t`" error is about (`t.k`).
fn duplicate_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("duplicate key `")?;
    let (key, rest) = rest.split_once('`')?;
    let table = rest
        .strip_prefix(" in table `")
        .and_then(|t| t.split_once('`'))
        .map(|(t, _)| t);
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

/// Records `err` (unless it is a follow-on of our own blanking) and blanks the entry it is
/// about. Returns `false` when nothing could be blanked (recovery must stop).
fn set_aside(
    text: &str,
    doc: &ImDocument<String>,
    buf: &mut [u8],
    err: &toml::de::Error,
    out: &mut Recovered,
) -> bool {
    let msg = err.message().trim();
    let Some(span) = err.span() else {
        out.errors.push(syntax_error(text, err));
        return false;
    };
    let Some(hit) = locate(text, doc.as_table(), "", None, false, &span) else {
        out.errors.push(syntax_error(text, err));
        return false;
    };
    let missing = msg
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next());
    match missing {
        Some(field) => {
            let key = join(&hit.path, field);
            if !out.blanked.contains(&key) {
                let m = "is required and missing".to_string();
                out.errors.push(ConfigError::at(text, span, key, m));
            }
        }
        None => {
            let key = hit.report.clone();
            out.errors
                .push(ConfigError::at(text, span, key, plain_types(msg)));
        }
    }
    if let Some(r) = hit.element {
        out.removed.push(r);
    }
    let ranges: Vec<Range<usize>> = hit
        .blank
        .iter()
        .map(|r| r.start.min(buf.len())..r.end.min(buf.len()))
        .collect();
    let untouched = |r: &Range<usize>| {
        buf.get(r.clone())
            .is_some_and(|b| b.iter().any(|c| !c.is_ascii_whitespace()))
    };
    if !ranges.iter().any(untouched) {
        return false; // already blank: the error cannot be about this entry, give up
    }
    blank(buf, &ranges);
    out.blanked.push(hit.path);
    true
}

/// Overwrites `ranges` of `buf` with spaces, keeping line breaks (so every offset and line
/// stays valid).
fn blank(buf: &mut [u8], ranges: &[Range<usize>]) {
    for r in ranges {
        if let Some(bytes) = buf.get_mut(r.clone()) {
            for b in bytes.iter_mut().filter(|b| **b != b'\n' && **b != b'\r') {
                *b = b' ';
            }
        }
    }
}

/// The bytes of the integer at `at` that the parser refused as too large or too small for 64
/// bits (its error points at the number's first byte), when that is what `e` says.
fn out_of_range_number(text: &str, e: &toml_edit::TomlError, at: usize) -> Option<Range<usize>> {
    let m = e.message();
    if !(m.starts_with("number too large") || m.starts_with("number too small")) {
        return None;
    }
    let rest = text.as_bytes().get(at..)?;
    let len = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-'))
        .count();
    (len > 0).then_some(at..at + len)
}

/// serde names Rust types (`expected u64`); say what the operator must write instead.
fn plain_types(msg: &str) -> String {
    let mut m = msg.to_string();
    for (rust, plain) in [
        ("expected usize", "expected a whole number >= 0"),
        ("expected u64", "expected a whole number >= 0"),
        ("expected u32", "expected a whole number in 0..=4294967295"),
        ("expected u16", "expected a whole number in 0..=65535"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        if let Some(rest) = m.strip_suffix(rust) {
            m = format!("{rest}{plain}");
        }
    }
    if let Some(at) = m.find("expected struct ") {
        m.replace_range(at.., "expected a table");
    }
    if let Some(rest) = m.strip_suffix("expected a sequence") {
        m = format!("{rest}expected an array");
    }
    m.replace("invalid type: map,", "invalid type: table,")
        .replace("invalid type: sequence,", "invalid type: array,")
}

/// Where an error span lies in the document.
struct Hit {
    /// Dotted key of the entry to blank (an array's key when one element is wrong).
    path: String,
    /// Dotted key to report (the element itself: `upstream[0].targets[1]`).
    report: String,
    /// Bytes to overwrite with spaces (a table defined in several places has several).
    blank: Vec<Range<usize>>,
    /// The whole element of an array of tables is blanked (later elements shift index).
    element: Option<Removed>,
}

fn join(prefix: &str, key: &str) -> String {
    let seg = if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        seg
    } else {
        format!("{prefix}.{seg}")
    }
}

fn contains(outer: &Option<Range<usize>>, s: &Range<usize>) -> bool {
    outer
        .as_ref()
        .is_some_and(|o| o.start <= s.start && s.end <= o.end && o.start < o.end)
}

/// Finds the innermost entry of `table` (keys prefixed by `prefix`) that `s` points into.
/// `dotted_start` is where the enclosing dotted key (`a.b.c = 1`) begins; `inline` says the
/// entries sit inside `{ ... }` (so blanking must also take a separating comma).
fn locate(
    text: &str,
    table: &dyn TableLike,
    prefix: &str,
    dotted_start: Option<usize>,
    inline: bool,
    s: &Range<usize>,
) -> Option<Hit> {
    for (name, _) in table.iter() {
        let Some((key, item)) = table.get_key_value(name) else {
            continue;
        };
        let path = join(prefix, name);
        let key_span = key.span();
        let start = dotted_start.or(key_span.as_ref().map(|k| k.start));
        match item {
            Item::Value(v) => {
                let vspan = v.span();
                let entry = |text: &str| -> Option<Range<usize>> {
                    let start = start?;
                    let end = vspan.as_ref()?.end;
                    Some(entry_range(text, start..end, inline))
                };
                if contains(&key_span, s) {
                    return Some(Hit {
                        report: path.clone(),
                        path,
                        blank: vec![entry(text)?],
                        element: None,
                    });
                }
                if !contains(&vspan, s) {
                    continue;
                }
                if let Value::InlineTable(t) = v {
                    let inner_start = if t.is_dotted() { start } else { None };
                    if let Some(h) = locate(text, t, &path, inner_start, true, s) {
                        return Some(h);
                    }
                }
                let mut report = path.clone();
                if let Value::Array(a) = v {
                    if let Some(j) = a.iter().position(|e| contains(&e.span(), s)) {
                        report = format!("{path}[{j}]");
                        // an inline table in an array (`route = [{ key = 5 }]`): the entry
                        // inside it, as for any inline table
                        if let Some(Value::InlineTable(t)) = a.get(j) {
                            if let Some(h) = locate(text, t, &report, None, true, s) {
                                return Some(h);
                            }
                            // the element itself (a required key missing): that element goes,
                            // and later ones shift index, as for `[[table]]`
                            let span = t.span()?;
                            let name = t.get("name").and_then(Value::as_str).map(String::from);
                            return Some(Hit {
                                blank: vec![entry_range(text, span, true)],
                                path: report.clone(),
                                report,
                                element: Some(Removed {
                                    array: path,
                                    index: j,
                                    name,
                                }),
                            });
                        }
                    }
                }
                return Some(Hit {
                    report,
                    path,
                    blank: vec![entry(text)?],
                    element: None,
                });
            }
            // the key of a table or an array of tables itself (`[servr]`, `[[rout]]`: an unknown
            // field): every place that defines it goes, header and body
            Item::Table(_) | Item::ArrayOfTables(_) if contains(&key_span, s) => {
                let mut blank = Vec::new();
                item_ranges(text, item, start, inline, &mut blank);
                return Some(Hit {
                    report: path.clone(),
                    path,
                    blank,
                    element: None,
                });
            }
            Item::Table(t) => {
                let inner_start = if t.is_dotted() { start } else { None };
                if let Some(h) = locate(text, t, &path, inner_start, inline, s) {
                    return Some(h);
                }
                if !t.is_dotted() && t.span().is_some_and(|h| h.start == s.start) {
                    // the table itself (a required key missing): blank header and body
                    return Some(Hit {
                        report: path.clone(),
                        path,
                        blank: vec![s.clone()],
                        element: None,
                    });
                }
            }
            Item::ArrayOfTables(a) => {
                for (j, t) in a.iter().enumerate() {
                    let elem = format!("{path}[{j}]");
                    if let Some(h) = locate(text, t, &elem, None, false, s) {
                        return Some(h);
                    }
                    if t.span().is_some_and(|h| h.start == s.start) {
                        // with its sub-tables (`[route.mock]`), which would otherwise
                        // attach to the element before it
                        let mut blank = vec![s.clone()];
                        table_ranges(text, t, None, false, &mut blank);
                        return Some(Hit {
                            report: elem.clone(),
                            path: elem,
                            blank,
                            element: Some(Removed {
                                array: path,
                                index: j,
                                name: t.get("name").and_then(Item::as_str).map(String::from),
                            }),
                        });
                    }
                }
            }
            Item::None => {}
        }
    }
    None
}

/// Every byte range that defines `item`: a table's header and body (its span covers both),
/// each of its entries (a dotted table has no header: its entries are its only text), and the
/// same for the tables below it, which have headers of their own. `start`: where the entry's
/// (dotted) key begins.
fn item_ranges(
    text: &str,
    item: &Item,
    start: Option<usize>,
    inline: bool,
    out: &mut Vec<Range<usize>>,
) {
    match item {
        Item::Value(v) => {
            if let (Some(start), Some(end)) = (start, v.span().map(|s| s.end)) {
                out.push(entry_range(text, start..end, inline));
            }
        }
        Item::Table(t) => table_ranges(text, t, start, inline, out),
        Item::ArrayOfTables(a) => {
            for t in a.iter() {
                table_ranges(text, t, None, false, out);
            }
        }
        Item::None => {}
    }
}

fn table_ranges(
    text: &str,
    t: &toml_edit::Table,
    start: Option<usize>,
    inline: bool,
    out: &mut Vec<Range<usize>>,
) {
    if let Some(span) = t.span().filter(|_| !t.is_dotted()) {
        out.push(span);
    }
    for (name, _) in t.iter() {
        let Some((key, item)) = t.get_key_value(name) else {
            continue;
        };
        let dotted = t.is_dotted().then_some(start).flatten();
        let start = dotted.or(key.span().map(|k| k.start));
        item_ranges(text, item, start, inline, out);
    }
}

/// The bytes of one `key = value` entry. On its own line (a table body) that is from the start
/// of the line; inside `{ ... }` it is the entry plus the comma that separates it from a
/// neighbour, so what remains is still a valid inline table.
fn entry_range(text: &str, entry: Range<usize>, inline: bool) -> Range<usize> {
    let b = text.as_bytes();
    let ws = |c: u8| c == b' ' || c == b'\t';
    if !inline {
        let line_start = b
            .get(..entry.start)
            .and_then(|h| h.iter().rposition(|&c| c == b'\n'))
            .map_or(0, |i| i + 1);
        return line_start..entry.end;
    }
    let mut after = entry.end;
    while b.get(after).is_some_and(|&c| ws(c)) {
        after += 1;
    }
    if b.get(after) == Some(&b',') {
        return entry.start..after + 1;
    }
    let mut before = entry.start;
    while before > 0 && b.get(before - 1).is_some_and(|&c| ws(c)) {
        before -= 1;
    }
    if before > 0 && b.get(before - 1) == Some(&b',') {
        return before - 1..entry.end;
    }
    entry
}
