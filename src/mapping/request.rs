//! A route's `request_parameters` applied to one request: header, query string and path
//! operations, rendered straight into the head the origin gets ([`Mapped`]).
//!
//! Owns: what each operation means for the request the integration gets. Headers: `remove`
//! drops every field of the name, `overwrite` drops them and adds one with the value,
//! `append` adds a field after the client's (RFC 9110 §5.3: a list field's lines are one
//! comma-joined value); a value that renders empty adds nothing. The query string is rebuilt
//! once, keeping every other parameter's bytes as sent: `remove` drops each `NAME=...` pair,
//! `overwrite` replaces the first in place (dropping the rest; absent: added at the end),
//! `append` adds `NAME=VALUE` at the end. `overwrite:path` replaces the path. Leaves out:
//! compiling them (see [`crate::config::mapping`]) and the rest of the head (the HTTP
//! integration's rewrite, [`crate::integration::rewrite`], which asks [`Mapped`] while it
//! writes: which client fields it drops, what request line and fields it writes instead).
//!
//! Data flow: nothing is kept between the phases; the rewrite holds a [`Mapped`] (the route's
//! operations and the request's [`Vars`]) while it writes the head, and each value is
//! rendered once, where it goes: a static value is copied from the config, a variable's
//! bytes through one scratch buffer per request (a header value must be checked before it is
//! written, a query or path value encoded).
//!
//! What a value renders is made safe for where it goes: a field value has no control
//! characters ([`Value::render_field`]); a query value or path gets every byte that would end
//! or restructure it percent-encoded (RFC 3986 §3.3, §3.4), `%` and a query's `+` kept as
//! they are, so a value taken from the request (already encoded) passes unchanged.

use bytes::{BufMut, BytesMut};

use super::value::{Value, Vars};
use super::{Op, Operation, RouteMapping, Target};

/// The room the scratch buffer starts with: a request id (36 bytes), a user name or a short
/// claim fits without growing.
pub const VALUE_CAPACITY: usize = 64;

/// A route's request operations over one request, asked by the head rewrite (see the module
/// doc).
pub struct Mapped<'a> {
    pub mapping: &'a RouteMapping,
    pub vars: &'a Vars<'a>,
}

impl Mapped<'_> {
    /// Whether the client's field `name` (any case) is not forwarded: a header `overwrite:`
    /// or `remove:` names it.
    pub fn removes(&self, name: &[u8]) -> bool {
        self.mapping.request.iter().any(|o| match &o.target {
            Target::Header(n) => o.op != Op::Append && n.as_bytes().eq_ignore_ascii_case(name),
            _ => false,
        })
    }

    /// Whether the request line changes: an `overwrite:path` or a query operation.
    pub fn changes_target(&self) -> bool {
        self.mapping
            .request
            .iter()
            .any(|o| !matches!(o.target, Target::Header(_)))
    }

    /// Writes `overwrite:path`'s path; `false` when the route has none.
    pub fn write_path(&self, out: &mut BytesMut) -> bool {
        let Some(o) = self
            .mapping
            .request
            .iter()
            .find(|o| o.target == Target::Path)
        else {
            return false;
        };
        let mut raw = Vec::with_capacity(VALUE_CAPACITY);
        o.value.render(self.vars, &mut raw);
        path_bytes(&raw, out);
        true
    }

    /// Writes `?QUERY`: the client's `query` with the query operations applied (nothing
    /// when that leaves no parameter).
    pub fn write_query(&self, query: Option<&[u8]>, out: &mut BytesMut) {
        let ops = &self.mapping.request;
        if !ops.iter().any(|o| matches!(o.target, Target::Query(_))) {
            if let Some(q) = query {
                out.put_u8(b'?');
                out.put_slice(q);
            }
            return;
        }
        let mut q = Vec::with_capacity(query.map_or(0, <[u8]>::len) + VALUE_CAPACITY);
        rebuild_query(query, ops, self.vars, &mut q);
        if !q.is_empty() {
            out.put_u8(b'?');
            out.put_slice(&q);
        }
    }

    /// Calls `line` with each field the operations add (appended, or the overwriting
    /// value), in order; a value that renders empty adds nothing.
    pub fn each_field(&self, mut line: impl FnMut(&[u8], &[u8])) {
        let mut scratch = Vec::new();
        for o in &self.mapping.request {
            let Target::Header(name) = &o.target else {
                continue;
            };
            if o.op == Op::Remove {
                continue;
            }
            let v = match &o.fixed {
                Some(f) => &f[..],
                None => {
                    if scratch.capacity() == 0 {
                        scratch.reserve(VALUE_CAPACITY);
                    }
                    scratch.clear();
                    o.value.render_field(self.vars, &mut scratch);
                    &scratch[..]
                }
            };
            if !v.is_empty() {
                line(name.as_bytes(), v);
            }
        }
    }
}

/// `query` (without `?`) with the query operations of `ops` applied (see the module doc),
/// appended to `out`.
pub fn rebuild_query(query: Option<&[u8]>, ops: &[Operation], vars: &Vars<'_>, out: &mut Vec<u8>) {
    let base = out.len();
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
            None => push_pair_raw(out, base, pair),
            Some(o) if o.op == Op::Append => push_pair_raw(out, base, pair),
            Some(o) if o.op == Op::Remove => {}
            Some(o) => {
                let i = ops.iter().position(|x| std::ptr::eq(x, o)).unwrap_or(0);
                if !done.contains(&i) {
                    done.push(i);
                    push_param(out, base, name, &o.value, vars);
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
            push_param(out, base, name.as_bytes(), &o.value, vars);
        }
    }
}

/// Appends a parameter as sent, after a `&` unless it is the first since `base`.
fn push_pair_raw(out: &mut Vec<u8>, base: usize, pair: &[u8]) {
    if out.len() > base {
        out.push(b'&');
    }
    out.extend_from_slice(pair);
}

/// Appends `name=VALUE` (nothing when the value renders empty), after a `&` unless it is the
/// first since `base`.
fn push_param(out: &mut Vec<u8>, base: usize, name: &[u8], value: &Value, vars: &Vars<'_>) {
    let start = out.len();
    if start > base {
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
    // a value taken from the request is usually already safe: encoded only when it is not
    if out
        .get(at..)
        .unwrap_or_default()
        .iter()
        .all(|&b| query_byte(b))
    {
        return;
    }
    let raw = out.split_off(at);
    percent_encode_into(out, &raw, query_byte);
}

/// A rendered path made an origin-form path, appended to `out`: a leading `/`, and bytes a
/// path may not hold percent-encoded (see the module doc).
pub fn path_bytes(raw: &[u8], out: &mut impl BufMut) {
    if raw.first() != Some(&b'/') {
        out.put_u8(b'/');
    }
    percent_encode_into(out, raw, path_byte);
}

fn percent_encode_into(out: &mut impl BufMut, raw: &[u8], keep: fn(u8) -> bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw {
        if keep(b) {
            out.put_u8(b);
        } else {
            out.put_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
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
        let path = |raw: &[u8]| {
            let mut out = Vec::new();
            path_bytes(raw, &mut out);
            out
        };
        assert_eq!(path(b"/v2/a b"), b"/v2/a%20b");
        assert_eq!(path(b"x?y#z"), b"/x%3Fy%23z");
        assert_eq!(path(b"/ok%2F"), b"/ok%2F");
    }

    #[test]
    fn query_values_cannot_split_the_parameter() {
        let mut out = Vec::new();
        percent_encode_into(&mut out, b"a&b=c+d e%20#", query_byte);
        assert_eq!(out, b"a%26b%3Dc+d%20e%20%23");
    }
}
