//! Placing errors that carry no span.
//!
//! Owns: pointing an error the semantic stage could only place at line 1, column 1 (a value
//! read without a span, such as a table written with dotted keys, see [`super::spanned`]) at
//! its key in the file, by walking the spanned document along the error's dotted key
//! (`route[1].throttle.burst`). Leaves out: the errors themselves (see [`super::compile`]) and
//! the structural stage (see [`super::recover`]).

use toml_edit::{ImDocument, Item, TableLike, Value};

use super::{line_col, ConfigError};

/// Points errors that carry no place in the file (line 1, column 1: a value read without a
/// span, such as a table written with dotted keys, see [`super::spanned`]) at their key, when
/// the file has it.
pub fn relocate(text: &str, errors: &mut [ConfigError]) {
    if !errors.iter().any(|e| (e.line, e.column) == (1, 1)) {
        return;
    }
    let Ok(doc) = ImDocument::parse(text) else {
        return;
    };
    for e in errors.iter_mut().filter(|e| (e.line, e.column) == (1, 1)) {
        if let Some(at) = find_key(doc.as_table(), &e.key) {
            (e.line, e.column) = line_col(text, at);
        }
    }
}

/// Where the deepest part of a dotted key (`route[1].throttle.burst`, as
/// `recover::join` writes them) that the document has begins.
fn find_key(root: &dyn TableLike, key: &str) -> Option<usize> {
    let mut table = root;
    let mut best = None;
    for (name, index) in segments(key) {
        let Some((k, item)) = table.get_key_value(&name) else {
            break;
        };
        best = k.span().map(|s| s.start).or(best);
        match (item, index) {
            (Item::Table(t), None) => table = t,
            (Item::Value(Value::InlineTable(t)), None) => table = t,
            (Item::ArrayOfTables(a), Some(j)) => match a.get(j) {
                Some(t) => {
                    best = t.span().map(|s| s.start).or(best);
                    table = t;
                }
                None => break,
            },
            (Item::Value(Value::Array(a)), Some(j)) => {
                best = a.get(j).and_then(|v| v.span()).map(|s| s.start).or(best);
                break;
            }
            _ => break,
        }
    }
    best
}

/// `a[1]."x y".b` → `("a", Some(1)), ("x y", None), ("b", None)`.
fn segments(key: &str) -> Vec<(String, Option<usize>)> {
    let mut out = Vec::new();
    let mut rest = key;
    while !rest.is_empty() {
        let (name, after) = match rest.strip_prefix('"') {
            Some(q) => {
                // a quoted segment, as `{:?}` wrote it
                let mut name = String::new();
                let mut chars = q.char_indices();
                let mut end = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => name.extend(chars.next().map(|(_, c)| c)),
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => name.push(c),
                    }
                }
                (name, q.get(end..).unwrap_or_default())
            }
            None => {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                let (n, a) = rest.split_at(end);
                (n.to_string(), a)
            }
        };
        let mut after = after;
        let mut index = None;
        while let Some(r) = after.strip_prefix('[') {
            let close = r.find(']').unwrap_or(r.len());
            index = r.get(..close).and_then(|n| n.parse().ok());
            after = r.get(close + 1..).unwrap_or_default();
        }
        out.push((name, index));
        rest = after.strip_prefix('.').unwrap_or(after);
        if rest.len() == after.len() && !after.is_empty() && !after.starts_with('"') {
            break; // not a key this module wrote
        }
    }
    out
}
