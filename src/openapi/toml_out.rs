//! Writing the API file: its JSON form (a map, as [`super::paths`] builds it) → TOML text.
//!
//! Top-level values first, then tables (`[cors]`), then arrays of tables (`[[route]]`, ...).
//! Inside a table `key`, `name` and `type` come first, the rest by name; values are inline,
//! except a table holding a multi-line string (a template), which gets its own header
//! (`[route.request_template]`) so the text is written as it reads, between `'''`.

use std::fmt::Write;

use serde_json::{Map, Value};

/// The file's arrays of tables, in this order.
const ARRAYS: [&str; 4] = ["route", "authorizer", "model", "gateway_response"];

/// Keys written first in a table, in this order.
const FIRST: [&str; 3] = ["key", "name", "type"];

/// The API file as TOML.
pub(super) fn write(file: &Map<String, Value>) -> String {
    let mut out = String::new();
    for (k, v) in file {
        if !is_table(v) && !is_table_array(v) && !v.is_null() {
            line(&mut out, k, v);
        }
    }
    for (k, v) in file {
        if let Value::Object(m) = v {
            let _ = write!(out, "\n[{}]\n", key(k));
            table(&mut out, k, m);
        }
    }
    let mut arrays: Vec<_> = file.iter().filter(|(_, v)| is_table_array(v)).collect();
    arrays.sort_by_key(|(k, _)| {
        let rank = ARRAYS.iter().position(|a| a == k).unwrap_or(ARRAYS.len());
        (rank, (*k).clone())
    });
    for (k, v) in arrays {
        if let Value::Array(items) = v {
            for item in items.iter().filter_map(Value::as_object) {
                let _ = write!(out, "\n[[{}]]\n", key(k));
                table(&mut out, k, item);
            }
        }
    }
    out
}

fn is_table(v: &Value) -> bool {
    v.is_object()
}

fn is_table_array(v: &Value) -> bool {
    matches!(v, Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object))
}

/// The keys of `m`, `FIRST` ones first.
fn ordered(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut keys: Vec<_> = m.iter().filter(|(_, v)| !v.is_null()).collect();
    keys.sort_by_key(|(k, _)| {
        let rank = FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len());
        (rank, (*k).clone())
    });
    keys
}

/// A table's body; its sub-tables with multi-line text get their own headers after it.
fn table(out: &mut String, path: &str, m: &Map<String, Value>) {
    let mut deferred = Vec::new();
    for (k, v) in ordered(m) {
        match v {
            Value::Object(inner) if has_multiline(v) => deferred.push((k, inner)),
            _ => line(out, k, v),
        }
    }
    for (k, inner) in deferred {
        let _ = write!(out, "\n[{path}.{}]\n", key(k));
        for (ik, iv) in ordered(inner) {
            line(out, ik, iv);
        }
    }
}

fn has_multiline(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\n'),
        Value::Array(items) => items.iter().any(has_multiline),
        Value::Object(m) => m.values().any(has_multiline),
        _ => false,
    }
}

/// `key = value`, a string with newlines as a multi-line literal when it can be one.
fn line(out: &mut String, k: &str, v: &Value) {
    let _ = write!(out, "{} = ", key(k));
    match v {
        Value::String(s) if s.contains('\n') && literal_ok(s) => {
            let _ = writeln!(out, "'''\n{s}'''");
        }
        _ => {
            inline(out, v);
            out.push('\n');
        }
    }
}

/// Whether `s` can be a multi-line literal string: no `'''`, no control characters but
/// newline and tab, and not ending with a quote (which would run into the delimiter).
fn literal_ok(s: &str) -> bool {
    !s.contains("'''")
        && !s.ends_with('\'')
        && !s
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{7f}')
}

/// A key: bare when it can be, else quoted.
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        k.to_string()
    } else {
        let mut s = String::new();
        basic(&mut s, k);
        s
    }
}

/// A value on one line.
fn inline(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("''"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => {
                let _ = write!(out, "{i}");
            }
            (_, Some(u), _) => {
                let _ = write!(out, "{u}");
            }
            (_, _, Some(f)) => {
                let _ = write!(out, "{f:?}");
            }
            _ => out.push('0'),
        },
        Value::String(s) => basic(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                inline(out, item);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let entries = ordered(m);
            if entries.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push_str("{ ");
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{} = ", key(k));
                inline(out, item);
            }
            out.push_str(" }");
        }
    }
}

/// A basic string, escaped (TOML 1.0 §String).
fn basic(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_that_toml_reads_back() {
        let tricky = "a\"b\\c\u{1}d\u{7f}é\ttab";
        let Value::Object(file) = json!({
            "base_path": tricky,
            "route": [{ "key": "GET /x", "mock": { "body": "two\nlines'''", "status": 200 } }],
            "model": [{ "name": "M", "schema_json": "{\n  \"type\": \"object\"\n}" }]
        }) else {
            unreachable!()
        };
        let text = write(&file);
        let back: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(back["base_path"].as_str(), Some(tricky));
        assert_eq!(
            back["route"][0]["mock"]["body"].as_str(),
            Some("two\nlines'''")
        );
        assert_eq!(
            back["model"][0]["schema_json"].as_str(),
            Some("{\n  \"type\": \"object\"\n}")
        );
        assert!(text.contains("schema_json = '''\n{"), "{text}");
    }
}
