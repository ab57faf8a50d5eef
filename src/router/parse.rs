//! Config-time parsing and validation of route keys, route hosts and the
//! character rules shared with [`super::PathTemplate`]. Nothing here runs on
//! the request path except [`strip_port`].

/// One segment of a route path. Parameter names are kept separately (they do
/// not take part in matching or in conflict detection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Lit(Box<[u8]>),
    Param,
    Greedy,
}

/// Which request methods a route accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MethodSel {
    Any,
    Exact(Box<[u8]>),
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Key {
    Default,
    Route {
        method: MethodSel,
        segs: Vec<Seg>,
        names: Vec<Box<str>>,
    },
}

/// A parsed, lowercased route host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HostSel {
    None,
    Exact(Box<[u8]>),
    /// The suffix including its leading dot: `*.example.com` -> `.example.com`.
    Wildcard(Box<[u8]>),
}

/// Longest host (after port stripping) that can ever match a host route.
pub(super) const MAX_HOST: usize = 255;

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(super) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Characters never allowed in literal path text (route keys and templates).
pub(super) fn bad_literal_char(c: char) -> bool {
    matches!(c, '{' | '}' | '?' | '#') || c.is_whitespace() || c.is_control()
}

/// Parses `"$default"` or `"METHOD /path"`. The error is a bare reason; the
/// caller prefixes the route description.
pub(super) fn parse_key(key: &str) -> Result<Key, String> {
    if key == "$default" {
        return Ok(Key::Default);
    }
    let Some((method, path)) = key.split_once(' ') else {
        return Err("expected \"METHOD /path\" or \"$default\"".into());
    };
    if method.is_empty() {
        return Err("missing method before the path".into());
    }
    if !method.bytes().all(is_tchar) {
        return Err(format!("method {method:?} is not a valid HTTP token"));
    }
    // RFC 9110 §9.1: methods are case-sensitive, so "get" would never match a client's GET;
    // a standard method (or ANY) in another case is a typo, not a custom method
    const STANDARD: [&str; 10] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "ANY",
    ];
    let upper = method.to_ascii_uppercase();
    if upper != method && STANDARD.contains(&upper.as_str()) {
        return Err(format!(
            "method {method:?} never matches {upper}: methods are case-sensitive; write {upper:?}"
        ));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!(
            "path {path:?} must start with '/' (exactly one space after the method)"
        ));
    };
    let method = if method == "ANY" {
        MethodSel::Any
    } else {
        MethodSel::Exact(method.as_bytes().into())
    };
    let (segs, names) = parse_path_segments(rest)?;
    Ok(Key::Route {
        method,
        segs,
        names,
    })
}

fn parse_path_segments(rest: &str) -> Result<(Vec<Seg>, Vec<Box<str>>), String> {
    let count = rest.split('/').count();
    let mut segs = Vec::with_capacity(count);
    let mut names: Vec<Box<str>> = Vec::new();
    for (i, seg) in rest.split('/').enumerate() {
        if !seg.contains(['{', '}']) {
            if let Some(c) = seg.chars().find(|&c| bad_literal_char(c)) {
                return Err(format!(
                    "literal segment {seg:?} contains invalid character {c:?}"
                ));
            }
            segs.push(Seg::Lit(seg.as_bytes().into()));
            continue;
        }
        let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            return Err(format!(
                "segment {seg:?}: a parameter must span a whole segment ({{name}} or {{name+}})"
            ));
        };
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(n) => (n, true),
            None => (inner, false),
        };
        if name.is_empty() {
            return Err(format!("segment {seg:?}: empty parameter name"));
        }
        if !name.bytes().all(is_name_byte) {
            return Err(format!(
                "segment {seg:?}: invalid parameter name {name:?} (allowed: A-Z a-z 0-9 _)"
            ));
        }
        if greedy && i + 1 != count {
            return Err(format!(
                "greedy parameter {seg:?} must be the last segment of the path"
            ));
        }
        if names.iter().any(|n| &**n == name) {
            return Err(format!("duplicate parameter name {name:?}"));
        }
        names.push(name.into());
        segs.push(if greedy { Seg::Greedy } else { Seg::Param });
    }
    Ok((segs, names))
}

/// Validates and lowercases a route host: `api.example.com`, `*.example.com`
/// or a bracketed IPv6 literal. Ports are rejected (they never match, since
/// the request host's port is ignored).
pub(super) fn parse_host(host: Option<&str>) -> Result<HostSel, String> {
    let Some(host) = host else {
        return Ok(HostSel::None);
    };
    if host.is_empty() {
        return Err("host is empty".into());
    }
    if host.len() > MAX_HOST {
        return Err(format!("host is longer than {MAX_HOST} bytes"));
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        check_host_name(host, suffix)?;
        let mut out = Vec::with_capacity(suffix.len() + 1);
        out.push(b'.');
        out.extend(suffix.bytes().map(|b| b.to_ascii_lowercase()));
        return Ok(HostSel::Wildcard(out.into()));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(format!("host {host:?} is not a valid IPv6 literal"));
        }
    } else {
        check_host_name(host, host)?;
    }
    Ok(HostSel::Exact(
        host.to_ascii_lowercase().into_bytes().into(),
    ))
}

fn check_host_name(full: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("host {full:?} has nothing after \"*.\""));
    }
    if name.contains('*') {
        return Err(format!(
            "host {full:?}: '*' is only allowed as the whole first label (\"*.example.com\")"
        ));
    }
    if name.contains(':') {
        return Err(format!("host {full:?} must not include a port"));
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(format!("host {full:?} has an empty label"));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'))
    {
        return Err(format!("host {full:?} contains invalid character {c:?}"));
    }
    Ok(())
}

/// Removes a `:port` suffix from a request `Host` (handles `[v6]:port`).
pub(super) fn strip_port(host: &[u8]) -> &[u8] {
    let end = if host.first() == Some(&b'[') {
        host.iter().position(|&b| b == b']').map(|i| i + 1)
    } else {
        host.iter().position(|&b| b == b':')
    };
    match end {
        Some(end) => host.get(..end).unwrap_or(host),
        None => host,
    }
}
