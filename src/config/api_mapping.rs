//! The values of a `[[mapping]]` (API Gateway's custom-domain API mappings), checked: its host,
//! base path and header condition, as the front door ([`crate::router::front`]) compares them.
//!
//! Owns: turning the written values into [`crate::router::front::Rule`] parts, or a message
//! for the error naming the key and line. Leaves out: which stage a rule selects and duplicate
//! rules (see [`super::apis`]).

use super::raw_apis::RawHeaderMatch;
use crate::router::front::HostRule;

/// Longest base path accepted (API Gateway allows 1024 characters of path).
pub const MAX_BASE_PATH: usize = 1024;

/// `host`: as a route's host (`api.example.com`, `*.example.com`, `[::1]`), no port.
pub(super) fn host_rule(host: &str) -> Result<HostRule, String> {
    crate::router::front::host_rule(host)
}

/// `base_path`: `/` or `/seg[/seg...]`, whole literal segments (no parameters, no empty
/// segment, no `?`/`#`, no whitespace or control characters); a trailing `/` is ignored.
/// Returned without the trailing `/` (`""` for `/`).
pub(super) fn base_path(path: &str) -> Result<Box<[u8]>, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("{path:?} must start with '/'"));
    };
    if path.len() > MAX_BASE_PATH {
        return Err(format!("longer than {MAX_BASE_PATH} bytes"));
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Box::default());
    }
    for seg in rest.split('/') {
        if seg.is_empty() {
            return Err(format!("{path:?} has an empty segment"));
        }
        if seg
            .bytes()
            .any(|b| b"{}?#%".contains(&b) || b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(format!(
                "{path:?}: segments are literal text (no '{{', '}}', '?', '#', '%', spaces)"
            ));
        }
    }
    Ok(format!("/{rest}").into_bytes().into())
}

/// `header = { name, value }`: a field name (RFC 9110 §5.1 token, compared lowercased) and the
/// exact value a request must carry (visible ASCII and spaces, RFC 9110 §5.5).
pub(super) fn header_match(h: &RawHeaderMatch) -> Result<(Box<str>, Box<[u8]>), String> {
    if h.name.is_empty() || !h.name.bytes().all(super::compile::is_tchar) {
        return Err(format!("name {:?} is not a field name", h.name));
    }
    if h.value.is_empty() || h.value.bytes().any(|b| b != b' ' && !b.is_ascii_graphic()) {
        return Err(format!(
            "value {:?}: visible ASCII characters (and spaces), not empty",
            h.value
        ));
    }
    Ok((
        h.name.to_ascii_lowercase().into(),
        h.value.trim().as_bytes().into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths() {
        assert_eq!(&*base_path("/").unwrap(), b"");
        assert_eq!(&*base_path("/v1").unwrap(), b"/v1");
        assert_eq!(&*base_path("/v1/pets/").unwrap(), b"/v1/pets");
        for bad in ["v1", "/v1//x", "/{id}", "/a b", "/a?b"] {
            assert!(base_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_conditions() {
        let h = |n: &str, v: &str| RawHeaderMatch {
            name: n.into(),
            value: v.into(),
        };
        let (n, v) = header_match(&h("Accept-Version", "2")).unwrap();
        assert_eq!((&*n, &*v), ("accept-version", &b"2"[..]));
        assert!(header_match(&h("bad name", "2")).is_err());
        assert!(header_match(&h("x", "")).is_err());
        assert!(header_match(&h("x", "a\u{7f}")).is_err());
    }
}
