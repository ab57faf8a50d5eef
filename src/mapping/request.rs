//! A route's `request_parameters` applied to one request: header, query string and path
//! operations, rendered into [`RequestEdits`].
//!
//! Owns: what each operation means for the request the integration gets. Headers: `remove`
//! drops every field of the name, `overwrite` drops them and adds one with the value,
//! `append` adds a field after the client's (RFC 9110 §5.3: a list field's lines are one
//! comma-joined value); a value that renders empty adds nothing. The query string is rebuilt
//! once, keeping every other parameter's bytes as sent: `remove` drops each `NAME=...` pair,
//! `overwrite` replaces the first in place (dropping the rest; absent: added at the end),
//! `append` adds `NAME=VALUE` at the end. `overwrite:path` replaces the path. Leaves out:
//! compiling them (see [`crate::config::mapping`]) and writing the head (see
//! [`crate::integration::rewrite`]).
//!
//! What a value renders is made safe for where it goes: a field value has no control
//! characters ([`Value::render_field`]); a query value or path gets every byte that would end
//! or restructure it percent-encoded (RFC 3986 §3.3, §3.4), `%` and a query's `+` kept as
//! they are, so a value taken from the request (already encoded) passes unchanged.

use super::value::{Value, Vars};
use super::{Op, Operation, RequestEdits, RouteMapping, Target};

/// The room a rendered value starts with: a request id (36 bytes), a user name or a short
/// claim fits without growing.
pub const VALUE_CAPACITY: usize = 64;

/// Applies the route's request operations.
pub fn apply(m: &RouteMapping, vars: &Vars<'_>, edits: &mut RequestEdits) {
    let mut query_ops = false;
    for o in &m.request {
        match &o.target {
            Target::Header(name) => {
                if o.op != Op::Append {
                    edits.remove.push(name.clone());
                }
                if o.op != Op::Remove {
                    let v = field_value(o, vars);
                    if !v.is_empty() {
                        edits.add.push((name.clone(), v));
                    }
                }
            }
            Target::Path => {
                let mut raw = Vec::with_capacity(64);
                o.value.render(vars, &mut raw);
                edits.path = Some(path_bytes(&raw));
            }
            Target::Query(_) => query_ops = true,
        }
    }
    if query_ops {
        let current = edits.query.as_deref().or(vars.head.query_bytes());
        let q = rebuild_query(current, &m.request, vars);
        edits.query = Some(q);
    }
}

/// A header operation's value, rendered as a field value (a static one copied).
fn field_value(o: &Operation, vars: &Vars<'_>) -> Vec<u8> {
    match &o.fixed {
        Some(f) => f.to_vec(),
        None => {
            let mut v = Vec::with_capacity(VALUE_CAPACITY);
            o.value.render_field(vars, &mut v);
            v
        }
    }
}

/// `query` (without `?`) with the query operations of `ops` applied (see the module doc).
pub fn rebuild_query(query: Option<&[u8]>, ops: &[Operation], vars: &Vars<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(query.map_or(0, <[u8]>::len) + VALUE_CAPACITY);
    let find = |name: &[u8]| {
        ops.iter().find(|o| match &o.target {
            Target::Query(n) => n.as_bytes() == name,
            _ => false,
        })
    };
    // overwrites done in place (by index into `ops`), at most a few
    let mut done: smallvec::SmallVec<[usize; 4]> = smallvec::SmallVec::new();
    for pair in query.unwrap_or_default().split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
        match find(name) {
            None => push_pair_raw(&mut out, pair),
            Some(o) if o.op == Op::Append => push_pair_raw(&mut out, pair),
            Some(o) if o.op == Op::Remove => {}
            Some(o) => {
                let i = ops.iter().position(|x| std::ptr::eq(x, o)).unwrap_or(0);
                if !done.contains(&i) {
                    done.push(i);
                    push_param(&mut out, name, &o.value, vars);
                }
            }
        }
    }
    for (i, o) in ops.iter().enumerate() {
        let Target::Query(name) = &o.target else {
            continue;
        };
        let add = match o.op {
            Op::Append => true,
            Op::Overwrite => !done.contains(&i),
            Op::Remove => false,
        };
        if add {
            push_param(&mut out, name.as_bytes(), &o.value, vars);
        }
    }
    out
}

fn push_pair_raw(out: &mut Vec<u8>, pair: &[u8]) {
    if !out.is_empty() {
        out.push(b'&');
    }
    out.extend_from_slice(pair);
}

/// Appends `name=VALUE` (nothing when the value renders empty).
fn push_param(out: &mut Vec<u8>, name: &[u8], value: &Value, vars: &Vars<'_>) {
    let start = out.len();
    if start > 0 {
        out.push(b'&');
    }
    out.extend_from_slice(name);
    out.push(b'=');
    let at = out.len();
    value.render(vars, out);
    if out.len() == at {
        out.truncate(start);
        return;
    }
    let raw = out.split_off(at);
    percent_encode_into(out, &raw, query_byte);
}

/// A rendered path made an origin-form path: a leading `/`, and bytes a path may not hold
/// percent-encoded (see the module doc).
pub fn path_bytes(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 8);
    if raw.first() != Some(&b'/') {
        out.push(b'/');
    }
    percent_encode_into(&mut out, raw, path_byte);
    out
}

fn percent_encode_into(out: &mut Vec<u8>, raw: &[u8], keep: fn(u8) -> bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw {
        if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// RFC 3986 §3.3 `pchar` and `/`, with `%` kept (values are taken as already encoded).
fn path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'%'
        )
}

/// RFC 3986 §3.4 query characters less `&` and `=` (which would split the parameter), with
/// `%` and `+` kept (a value taken from the query stays as sent).
fn query_byte(b: u8) -> bool {
    b != b'&' && b != b'=' && (path_byte(b) || b == b'?')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_get_a_slash_and_unsafe_bytes_encoded() {
        assert_eq!(path_bytes(b"/v2/a b"), b"/v2/a%20b");
        assert_eq!(path_bytes(b"x?y#z"), b"/x%3Fy%23z");
        assert_eq!(path_bytes(b"/ok%2F"), b"/ok%2F");
    }

    #[test]
    fn query_values_cannot_split_the_parameter() {
        let mut out = Vec::new();
        percent_encode_into(&mut out, b"a&b=c+d e%20#", query_byte);
        assert_eq!(out, b"a%26b%3Dc+d%20e%20%23");
    }
}
