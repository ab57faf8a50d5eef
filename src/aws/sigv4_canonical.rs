//! The canonical forms of SigV4's canonical request: the path (normalised, encoded again),
//! the query (decoded, re-encoded, sorted; `+` read literally or as a space) and field values
//! (trimmed, whitespace folded), with RFC 3986 percent-encoding and -decoding.
//!
//! Owns only these text transformations (sans-IO, no keys). Leaves out: assembling the
//! canonical request and signing it (see `super::sigv4`, which calls these in that order).

use super::sigv4::Plus;

/// The path normalised (RFC 3986 §5.2.4 dot segments, empty segments collapsed; a path
/// ending in `/`, `.` or `..` keeps a trailing `/`) and encoded once more.
pub(crate) fn canonical_path(path: &str, out: &mut Vec<u8>) {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing = false;
    for segment in path.split('/') {
        trailing = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    out.push(b'/');
    for (n, segment) in segments.iter().enumerate() {
        if n > 0 {
            out.push(b'/');
        }
        encode(segment.as_bytes(), out);
    }
    if trailing && !segments.is_empty() {
        out.push(b'/');
    }
}

/// `name=value` pairs decoded, re-encoded and sorted, joined by `&`; a parameter named `skip`
/// (decoded) is left out; `plus`: whether a `+` decodes to a space.
pub(crate) fn canonical_query(query: &str, skip: Option<&str>, plus: Plus, out: &mut Vec<u8>) {
    let decode = |s: &str| match plus {
        Plus::Literal => percent_decode(s),
        // form decoding (WHATWG URL, application/x-www-form-urlencoded parsing): `+` is a
        // space; a `%2B` stays a `+`
        Plus::Space => percent_decode(&s.replace('+', "%20")),
    };
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            let name = decode(name);
            if skip.is_some_and(|s| s.as_bytes() == name.as_slice()) {
                return None;
            }
            let (mut n, mut v) = (Vec::new(), Vec::new());
            encode(&name, &mut n);
            encode(&decode(value), &mut v);
            Some((n, v))
        })
        .collect();
    pairs.sort();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

/// A field value trimmed, each run of whitespace (SP, HTAB, and the CR LF of an obsolete
/// line fold, RFC 9112 §5.2) folded to one space.
pub(crate) fn canonical_value(value: &[u8], out: &mut Vec<u8>) {
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            pending_space = started;
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        started = true;
        out.push(b);
    }
}

/// Percent-encodes every byte outside RFC 3986 §2.3's unreserved set with upper-case hex
/// (callers pass one path segment or one query name or value: a `/` there is data).
pub(crate) fn encode(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
    }
}

/// `%XX` decoded (either case of hex); a `%` not followed by two hex digits stays literal.
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|&h| (h as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|&l| (l as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi << 4 | lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}
