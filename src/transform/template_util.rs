//! The `$util` functions of mapping templates, and the byte-level helpers rendering needs.
//!
//! Owns: [`Function`] (`escapeJavaScript`, `base64Encode`, `base64Decode`, `urlEncode`,
//! `urlDecode`, applied to an argument's rendered bytes), percent-decoding parameters
//! ([`percent_decode`]), and the string methods a reference may end with (`.replace`,
//! `.replaceAll` with a pattern of literal text: [`literal_pattern`], [`replace`]). Leaves out:
//! parsing templates and choosing what to render (the parent module). Pure functions over
//! bytes.

use base64::Engine as _;

/// A `$util` function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// JavaScript string escapes, as API Gateway's (Apache Commons Lang's `escapeJavaScript`):
    /// `"` `'` `\` `/` escaped with a backslash, `\b` `\t` `\n` `\f` `\r`, other control
    /// characters and every non-ASCII character as `\uXXXX` (UTF-16 units, uppercase hex).
    /// `\'` is not a JSON escape: API Gateway's documentation has templates that embed the
    /// result in JSON turn it back with `.replaceAll("\\'", "'")`.
    EscapeJavaScript,
    /// Standard base64 (RFC 4648 §4) with padding.
    Base64Encode,
    /// Standard base64, padded or not; anything else refuses the request (400) or response
    /// (502).
    Base64Decode,
    /// `application/x-www-form-urlencoded` (Java's `URLEncoder`, UTF-8): letters, digits and
    /// `.` `-` `*` `_` as they are, space as `+`, every other byte `%XX` (uppercase).
    UrlEncode,
    /// The reverse: `+` is a space, `%XX` a byte; a malformed `%` escape is refused.
    UrlDecode,
}

impl Function {
    /// The function called `name` (`escapeJavaScript`...).
    pub fn named(name: &str) -> Option<Function> {
        Some(match name {
            "escapeJavaScript" => Function::EscapeJavaScript,
            "base64Encode" => Function::Base64Encode,
            "base64Decode" => Function::Base64Decode,
            "urlEncode" => Function::UrlEncode,
            "urlDecode" => Function::UrlDecode,
            _ => return None,
        })
    }

    /// Appends the function of `arg`; the error names what `arg` is not.
    pub fn apply(self, arg: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
        match self {
            Function::EscapeJavaScript => escape_javascript(arg, out),
            Function::Base64Encode => {
                let s = base64::engine::general_purpose::STANDARD.encode(arg);
                out.extend_from_slice(s.as_bytes());
            }
            Function::Base64Decode => {
                let text = arg.trim_ascii();
                let bytes = BASE64_ANY_PADDING
                    .decode(text)
                    .map_err(|_| "$util.base64Decode: the argument is not base64")?;
                out.extend_from_slice(&bytes);
            }
            Function::UrlEncode => url_encode(arg, out),
            Function::UrlDecode => {
                if !percent_decode(arg, true, out) {
                    return Err("$util.urlDecode: the argument has a malformed % escape");
                }
            }
        }
        Ok(())
    }
}

/// Standard alphabet, padding optional (what clients send varies).
const BASE64_ANY_PADDING: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn escape_javascript(arg: &[u8], out: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(arg);
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\'' => out.extend_from_slice(b"\\'"),
            '\\' => out.extend_from_slice(b"\\\\"),
            '/' => out.extend_from_slice(b"\\/"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if c < ' ' || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.extend_from_slice(b"\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(HEX[usize::from((*u >> shift) & 0xf)]);
                    }
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

fn url_encode(arg: &[u8], out: &mut Vec<u8>) {
    for &b in arg {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b),
            b' ' => out.push(b'+'),
            b => {
                out.push(b'%');
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends `v` with `%XX` escapes decoded (RFC 3986 §2.1) and, for a form (`plus`), `+` as a
/// space. A malformed escape is kept as it is; the result says whether there was none.
pub fn percent_decode(v: &[u8], plus: bool, out: &mut Vec<u8>) -> bool {
    let mut well_formed = true;
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        match b {
            b'%' => {
                let hi = v.get(i + 1).copied().and_then(hex_digit);
                let lo = v.get(i + 2).copied().and_then(hex_digit);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push((h << 4) | l);
                        i += 3;
                        continue;
                    }
                    _ => {
                        well_formed = false;
                        out.push(b'%');
                    }
                }
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    well_formed
}

/// `value` with every `from` replaced by `to`, left to right (Java's `String.replace`; an
/// empty `from` changes nothing).
pub fn replace(value: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return value.to_vec();
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value.get(i..).is_some_and(|r| r.starts_with(from)) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.extend(value.get(i).copied());
            i += 1;
        }
    }
    out
}

/// The literal text a `.replaceAll` regular expression matches, when it is literal text:
/// characters, and any non-alphanumeric character escaped with `\` (`\\'` matches `\'`).
/// Anything a regular expression means more by (`.`, `*`, `[`, `\d`...) is refused: full
/// regular expressions are out of scope.
pub fn literal_pattern(regex: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut chars = regex.chars();
    while let Some(c) = chars.next() {
        let lit = match c {
            '\\' => match chars.next() {
                Some(e) if !e.is_ascii_alphanumeric() => e,
                Some(e) => return Err(format!("regular expression class \\{e}")),
                None => return Err("a trailing \\".into()),
            },
            '.' | '*' | '+' | '?' | '[' | ']' | '(' | ')' | '{' | '}' | '|' | '^' | '$' => {
                return Err(format!("regular expression operator {c}"))
            }
            c => c,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(lit.encode_utf8(&mut buf).as_bytes());
    }
    Ok(out)
}

/// The literal text of a `.replaceAll` replacement: `\x` is `x`; `$` (a group reference)
/// is refused.
pub fn literal_replacement(repl: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut chars = repl.chars();
    while let Some(c) = chars.next() {
        let lit = match c {
            '\\' => chars.next().ok_or("a trailing \\")?,
            '$' => return Err("group references ($1) in the replacement".into()),
            c => c,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(lit.encode_utf8(&mut buf).as_bytes());
    }
    Ok(out)
}
