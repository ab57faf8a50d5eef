//! The JSONPath subset API Gateway's mappings use: `$request.body.a.b[0]`, `$input.json('$.a')`,
//! `$input.path('$.items[*].id')`.
//!
//! Owns: compiling a path ([`JsonPath::parse`]) and selecting from a parsed document
//! ([`JsonPath::select`]). Supported (RFC 9535 names): the root `$`; member names as `.name`
//! or `['name']` / `["name"]`; array indices `[n]` (negative from the end, `[-1]`); the
//! wildcard `.*` / `[*]` (members of an object, elements of an array). Filters, slices,
//! unions and recursive descent (`..`) are refused when the config is loaded. Leaves out:
//! parsing JSON (serde_json) and what becomes of a selection (the callers').

use serde_json::Value as Json;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Member(Box<str>),
    Index(i64),
    Wildcard,
}

/// A compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    steps: Box<[Step]>,
    /// Some step is a wildcard: the selection is a list.
    multi: bool,
}

/// What a path selected.
#[derive(Debug, PartialEq)]
pub enum Selected<'a> {
    /// Nothing there.
    None,
    /// One value (a path without wildcards).
    One(&'a Json),
    /// Every match of a path with a wildcard, in document order.
    Many(Vec<&'a Json>),
}

impl JsonPath {
    /// Parses `$...` (the leading `$` may be omitted: `a.b` is `$.a.b`, as `$request.body.a.b`
    /// writes it).
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let t = text.trim();
        let mut rest = t.strip_prefix('$').unwrap_or(t);
        if !t.starts_with('$') && !rest.is_empty() {
            // `a.b` as written after `$request.body.`: a first member without its dot
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let (name, after) = rest.split_at(end);
            let mut p = JsonPath::parse(&format!("$.{name}{after}"))?;
            p.multi = p.steps.contains(&Step::Wildcard);
            return Ok(p);
        }
        let mut steps = Vec::new();
        let bad = |why: &str| format!("JSONPath {text:?}: {why}");
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("..") {
                let _ = r;
                return Err(bad("recursive descent (..) is not supported"));
            } else if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() {
                    return Err(bad("empty member name"));
                }
                steps.push(if name == "*" {
                    Step::Wildcard
                } else {
                    Step::Member(name.into())
                });
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let close = if r.starts_with(['\'', '"']) {
                    let q = &r[..1];
                    let end = r[1..]
                        .find(q)
                        .ok_or_else(|| bad("unterminated quoted name"))?;
                    let name = &r[1..1 + end];
                    let after = &r[2 + end..];
                    let after = after
                        .strip_prefix(']')
                        .ok_or_else(|| bad("expected ] after a quoted name"))?;
                    steps.push(Step::Member(name.into()));
                    rest = after;
                    continue;
                } else {
                    r.find(']').ok_or_else(|| bad("unterminated ["))?
                };
                let inner = r[..close].trim();
                if inner == "*" {
                    steps.push(Step::Wildcard);
                } else {
                    let n: i64 = inner.parse().map_err(|_| {
                        bad("only [n], [*] and ['name'] are supported (no filters, slices or unions)")
                    })?;
                    steps.push(Step::Index(n));
                }
                rest = &r[close + 1..];
            } else {
                return Err(bad("expected . or ["));
            }
        }
        let multi = steps.contains(&Step::Wildcard);
        Ok(JsonPath {
            steps: steps.into(),
            multi,
        })
    }

    /// Whether the path is `$` itself.
    pub fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    /// Selects from `doc`.
    pub fn select<'a>(&self, doc: &'a Json) -> Selected<'a> {
        if !self.multi {
            let mut at = doc;
            for s in self.steps.iter() {
                match step_one(at, s) {
                    Some(v) => at = v,
                    None => return Selected::None,
                }
            }
            return Selected::One(at);
        }
        let mut current = vec![doc];
        for s in self.steps.iter() {
            let mut next = Vec::new();
            for v in current {
                match s {
                    Step::Wildcard => match v {
                        Json::Array(a) => next.extend(a.iter()),
                        Json::Object(o) => next.extend(o.values()),
                        _ => {}
                    },
                    s => next.extend(step_one(v, s)),
                }
            }
            current = next;
        }
        Selected::Many(current)
    }
}

fn step_one<'a>(v: &'a Json, s: &Step) -> Option<&'a Json> {
    match (s, v) {
        (Step::Member(n), Json::Object(o)) => o.get(&**n),
        (Step::Index(i), Json::Array(a)) => {
            let len = i64::try_from(a.len()).ok()?;
            let at = if *i < 0 { len + i } else { *i };
            a.get(usize::try_from(at).ok()?)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_indices_and_wildcards() {
        let doc =
            json!({"a": {"b": [1, {"c": "x"}, 3]}, "it": [{"id": 1}, {"id": 2}], "k y": true});
        let one = |p: &str| match JsonPath::parse(p).unwrap().select(&doc) {
            Selected::One(v) => Some(v.clone()),
            Selected::None => None,
            Selected::Many(_) => panic!("many"),
        };
        assert_eq!(one("$.a.b[1].c"), Some(json!("x")));
        assert_eq!(one("a.b[-1]"), Some(json!(3)));
        assert_eq!(one("$['k y']"), Some(json!(true)));
        assert_eq!(one("$[\"a\"].b[0]"), Some(json!(1)));
        assert_eq!(one("$.a.nope"), None);
        assert_eq!(one("$.a.b[7]"), None);
        assert_eq!(one("$"), Some(doc.clone()));
        let many = JsonPath::parse("$.it[*].id").unwrap();
        assert_eq!(
            many.select(&doc),
            Selected::Many(vec![&json!(1), &json!(2)])
        );
    }

    #[test]
    fn unsupported_syntax_is_refused() {
        for p in ["$..a", "$.a[?(@.b)]", "$.a[1:2]", "$.a[0,1]", "$.", "$['a"] {
            assert!(JsonPath::parse(p).is_err(), "{p}");
        }
    }
}
