//! Reading a definition: YAML or JSON text → a `serde_json::Value`, and the document's
//! structure: its version, `$ref` resolution, typed access that fails with a pointer.
//!
//! YAML mapping keys that are not strings (`200:` in `responses`, `true:`) become their text;
//! merge keys (`<<`) are applied; a tag (`!Sub`, CloudFormation's) is dropped with a report
//! and its value used as written. Non-finite numbers have no JSON form and are an error.
//! Nesting is bounded by the parsers (128 levels), which bounds every recursion here too.

use serde_json::{Map, Number, Value};

use super::{child, ImportError, Unsupported};

/// A parsed document and what reading it noticed.
pub(super) struct Parsed {
    pub value: Value,
    pub unsupported: Vec<Unsupported>,
}

/// Most `$ref` hops followed to reach one value (a chain longer than this is a cycle).
const MAX_REF_HOPS: usize = 32;

/// Text → value: JSON when it looks like JSON (starts with `{`), else YAML.
pub(super) fn parse(text: &str) -> Result<Parsed, ImportError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.is_empty() {
        return Err(ImportError::new("", "the definition is empty"));
    }
    if trimmed.starts_with('{') {
        if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
            return Ok(Parsed {
                value,
                unsupported: Vec::new(),
            });
        }
        // not JSON after all (a YAML flow mapping, or broken): YAML says what is wrong
    }
    // the YAML parser is third-party code: a panic in it must not take the caller down
    let parsed = std::panic::catch_unwind(|| {
        let mut v: yaml_serde::Value = yaml_serde::from_str(trimmed)?;
        v.apply_merge()?;
        Ok::<_, yaml_serde::Error>(v)
    });
    let yaml = match parsed {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return Err(ImportError::new("", format!("not YAML or JSON: {e}"))),
        Err(_) => {
            return Err(ImportError::new(
                "",
                "not YAML or JSON (the YAML reader failed)",
            ))
        }
    };
    let mut unsupported = Vec::new();
    let value = from_yaml(yaml, "", &mut unsupported)?;
    Ok(Parsed { value, unsupported })
}

fn from_yaml(
    v: yaml_serde::Value,
    ptr: &str,
    notes: &mut Vec<Unsupported>,
) -> Result<Value, ImportError> {
    use yaml_serde::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => number(&n, ptr)?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| from_yaml(item, &child(ptr, &i.to_string()), notes))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, item) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    _ => {
                        return Err(ImportError::new(
                            ptr,
                            "a mapping key that is a sequence, mapping or tagged value",
                        ))
                    }
                };
                let p = child(ptr, &key);
                let value = from_yaml(item, &p, notes)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            notes.push(Unsupported {
                pointer: ptr.to_string(),
                what: format!(
                    "YAML tag {} (a template language's function): the value is used as written",
                    t.tag
                ),
            });
            from_yaml(t.value, ptr, notes)?
        }
    })
}

fn number(n: &yaml_serde::Number, ptr: &str) -> Result<Value, ImportError> {
    if let Some(u) = n.as_u64() {
        return Ok(Value::Number(u.into()));
    }
    if let Some(i) = n.as_i64() {
        return Ok(Value::Number(i.into()));
    }
    n.as_f64()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| ImportError::new(ptr, format!("{n} has no JSON form")))
}

/// The definition's dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    Swagger2,
    OpenApi30,
    OpenApi31,
}

/// The version from `swagger: "2.0"` or `openapi: "3.0.x"` / `"3.1.x"`.
pub(super) fn version(root: &Value) -> Result<Version, ImportError> {
    let obj = root
        .as_object()
        .ok_or_else(|| ImportError::new("", "the definition is not a mapping (an object)"))?;
    if let Some(v) = obj.get("openapi") {
        let s = scalar_text(v).unwrap_or_default();
        return if s.starts_with("3.0") {
            Ok(Version::OpenApi30)
        } else if s.starts_with("3.1") {
            Ok(Version::OpenApi31)
        } else {
            Err(ImportError::new(
                "/openapi",
                format!("OpenAPI {s:?} is not supported (3.0 and 3.1 are, and Swagger 2.0)"),
            ))
        };
    }
    if let Some(v) = obj.get("swagger") {
        let s = scalar_text(v).unwrap_or_default();
        return if s == "2.0" || s == "2" {
            Ok(Version::Swagger2)
        } else {
            Err(ImportError::new(
                "/swagger",
                format!("Swagger {s:?} is not supported (2.0 is, and OpenAPI 3.0 and 3.1)"),
            ))
        };
    }
    Err(ImportError::new(
        "",
        "not an OpenAPI definition: no `openapi` (3.x) or `swagger` (2.0) field",
    ))
}

/// A string, or a number / boolean as its text (YAML writes `2.0` and `"2.0"` alike).
pub(super) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_f64() => n.as_f64().map(|f| {
            if f.fract() == 0.0 {
                format!("{f:.1}")
            } else {
                f.to_string()
            }
        }),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Follows `$ref`s from `v` (at `ptr`) to the value they name: the value and its pointer.
/// Only references within the document (`#/...`) are followed.
pub(super) fn deref<'a>(
    root: &'a Value,
    mut v: &'a Value,
    ptr: &str,
) -> Result<(&'a Value, String), ImportError> {
    let mut at = ptr.to_string();
    for _ in 0..MAX_REF_HOPS {
        let Some(r) = v.as_object().and_then(|o| o.get("$ref")) else {
            return Ok((v, at));
        };
        let here = child(&at, "$ref");
        let Some(target) = r.as_str() else {
            return Err(ImportError::new(&here, "$ref must be a string"));
        };
        let Some(fragment) = target.strip_prefix('#') else {
            return Err(ImportError::new(
                &here,
                format!(
                    "{target:?} is in another document: only references within the definition \
                     (#/...) are followed; bundle it into one file first"
                ),
            ));
        };
        let pointer = percent_decode(fragment);
        v = root.pointer(&pointer).ok_or_else(|| {
            ImportError::new(&here, format!("{target:?} names nothing in the definition"))
        })?;
        at = pointer;
    }
    Err(ImportError::new(
        ptr,
        format!("more than {MAX_REF_HOPS} $ref hops: a reference cycle"),
    ))
}

/// Percent-decoding of a URI fragment (`%7BpetId%7D` → `{petId}`); a malformed escape is
/// kept as written.
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(x) = hex {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The object at `ptr`, or an error naming it.
pub(super) fn object<'a>(v: &'a Value, ptr: &str) -> Result<&'a Map<String, Value>, ImportError> {
    v.as_object()
        .ok_or_else(|| ImportError::new(ptr, format!("must be an object, not {}", kind(v))))
}

/// The string at `ptr`, or an error naming it.
pub(super) fn string<'a>(v: &'a Value, ptr: &str) -> Result<&'a str, ImportError> {
    v.as_str()
        .ok_or_else(|| ImportError::new(ptr, format!("must be a string, not {}", kind(v))))
}

/// The array at `ptr`, or an error naming it.
pub(super) fn array<'a>(v: &'a Value, ptr: &str) -> Result<&'a Vec<Value>, ImportError> {
    v.as_array()
        .ok_or_else(|| ImportError::new(ptr, format!("must be an array, not {}", kind(v))))
}

/// A list of strings (an array of them, or one string) at `ptr`.
pub(super) fn strings(v: &Value, ptr: &str) -> Result<Vec<String>, ImportError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, s)| string(s, &child(ptr, &i.to_string())).map(str::to_string))
            .collect(),
        _ => Err(ImportError::new(
            ptr,
            format!("must be a list of strings, not {}", kind(v)),
        )),
    }
}

/// A boolean, also written as a string (`"true"`), at `ptr`.
pub(super) fn boolean(v: &Value, ptr: &str) -> Result<bool, ImportError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ImportError::new(
            ptr,
            format!("must be true or false, not {}", kind(v)),
        )),
    }
}

/// A non-negative integer, also written as a string (`"200"`), at `ptr`.
pub(super) fn integer(v: &Value, ptr: &str) -> Result<u64, ImportError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| ImportError::new(ptr, format!("must be a whole number, not {}", kind(v))))
}

/// `an object`, `a string`, ... for messages.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
