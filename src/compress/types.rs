//! The media types compression applies to: [`TypePattern`], one entry of `types = [...]`.
//!
//! Owns: the pattern forms (`type/subtype` exactly, `type/*`, `*/*`, and `+suffix` for a
//! structured syntax suffix, RFC 6838 §4.2.8: `+json` matches `application/problem+json`),
//! parsing them at load ([`TypePattern::parse`], an error message for the config) and matching
//! a `Content-Type` value (parameters and case ignored, RFC 9110 §8.3.1), plus the default
//! list: text, JSON, XML, JavaScript, SVG and the `+json` / `+xml` suffixes. Leaves out: where
//! the list comes from (see [`crate::config::compression`]).

/// One media type pattern (lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypePattern {
    /// `type/subtype`.
    Exact(Box<str>),
    /// `type/*`: the type, any subtype.
    AnySubtype(Box<str>),
    /// `*/*`: everything with a content type.
    Any,
    /// `+suffix`: a subtype ending in the suffix (`+json`).
    Suffix(Box<str>),
}

/// The default `types`.
pub const DEFAULT_TYPES: &[&str] = &[
    "text/*",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-javascript",
    "image/svg+xml",
    "+json",
    "+xml",
];

/// The default patterns (see [`DEFAULT_TYPES`]).
pub fn defaults() -> Vec<TypePattern> {
    DEFAULT_TYPES
        .iter()
        .filter_map(|t| TypePattern::parse(t).ok())
        .collect()
}

impl TypePattern {
    /// A pattern from its config text; `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<TypePattern, String> {
        let t = text.trim().to_ascii_lowercase();
        let token = |s: &str| !s.is_empty() && s.bytes().all(is_tchar_no_star);
        if let Some(suffix) = t.strip_prefix('+') {
            return match token(suffix) {
                true => Ok(TypePattern::Suffix(t.into())),
                false => Err(format!("`{text}`: a suffix is `+` and a token, as `+json`")),
            };
        }
        let Some((ty, sub)) = t.split_once('/') else {
            return Err(format!(
                "`{text}` is not a media type (`type/subtype`, `type/*`, `*/*` or `+suffix`)"
            ));
        };
        match (ty, sub) {
            ("*", "*") => Ok(TypePattern::Any),
            (ty, "*") if token(ty) => Ok(TypePattern::AnySubtype(ty.into())),
            (ty, sub) if token(ty) && token(sub) => Ok(TypePattern::Exact(t.as_str().into())),
            _ => Err(format!(
                "`{text}` is not a media type (`type/subtype`, `type/*`, `*/*` or `+suffix`)"
            )),
        }
    }

    /// Whether a `Content-Type` value is of this pattern.
    pub fn matches(&self, content_type: &[u8]) -> bool {
        let essence = content_type
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let Some(slash) = essence.iter().position(|&b| b == b'/') else {
            return false;
        };
        let (ty, sub) = (&essence[..slash], &essence[slash + 1..]);
        match self {
            TypePattern::Any => true,
            TypePattern::Exact(e) => essence.eq_ignore_ascii_case(e.as_bytes()),
            TypePattern::AnySubtype(t) => ty.eq_ignore_ascii_case(t.as_bytes()),
            TypePattern::Suffix(s) => {
                let s = s.as_bytes();
                sub.len() > s.len()
                    && sub
                        .get(sub.len() - s.len()..)
                        .is_some_and(|end| end.eq_ignore_ascii_case(s))
            }
        }
    }
}

/// `tchar` (RFC 9110 §5.6.2) without `*` (a wildcard is only a whole type or subtype).
fn is_tchar_no_star(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'+-.^_`|~".contains(&b)
}
