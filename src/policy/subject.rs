//! Client-certificate subject patterns (`allow_subjects` on `mtls` routes).
//!
//! Owns: reading a subject DN as [`ConnFacts`](crate::facts::ConnFacts) renders it (an RFC 4514
//! string, `TYPE=value` joined by `,` and multi-valued RDNs by `+`, see `crate::tls::certs`)
//! back into its (type, value) attributes, honouring `\` escapes ([`attributes`]), and the
//! patterns matched against them ([`SubjectPattern`]). A pattern is itself a list of
//! `TYPE=VALUE` attributes, where an unescaped `*` inside a value matches any run of
//! characters of that one value (never across attributes: `CN=*,O=Example Corp` does not
//! match `CN=mallory\,O=Example Corp,O=Other`, whose CN is `mallory,O=Example Corp`). Every
//! attribute of the pattern must be present in the subject with a matching value, in any
//! order; the subject may have more. Types compare case-insensitively (RFC 4514 §2.3), values
//! exactly. Leaves out: verifying the certificate (the TLS handshake) and the phase that
//! refuses (see [`super::access`]). Data flow: config text → [`SubjectPattern::parse`] at
//! load; per request the facts' DN → [`attributes`] → [`SubjectPattern::matches`].

/// One pattern from `allow_subjects`: attribute patterns, all of which must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectPattern {
    /// (type upper-cased, value split at its unescaped `*`s: literal pieces in order).
    attrs: Vec<(String, Vec<String>)>,
}

/// One DN attribute read back: its type (upper-cased) and unescaped value.
pub type Attribute = (String, String);

impl SubjectPattern {
    /// Parses `CN=*,O=Example Corp` (RFC 4514 syntax, `,` or `+` between attributes, `\`
    /// escapes, `\*` a literal asterisk). Errors say what is wrong, for the config's message.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        Ok(SubjectPattern {
            attrs: split(text, true)?,
        })
    }

    /// Whether every attribute of the pattern is among `subject`'s (see the module doc).
    pub fn matches(&self, subject: &[Attribute]) -> bool {
        self.attrs
            .iter()
            .all(|(ty, pieces)| subject.iter().any(|(t, v)| t == ty && glob(pieces, v)))
    }
}

/// The attributes of a DN string as `crate::tls::certs` renders it; `None` when it does not
/// parse (a DN the gateway did not write: then nothing matches).
pub fn attributes(dn: &str) -> Option<Vec<Attribute>> {
    let attrs = split(dn, false).ok()?;
    Some(
        attrs
            .into_iter()
            .map(|(t, pieces)| (t, pieces.concat()))
            .collect(),
    )
}

/// Splits an RFC 4514 string (§3) into attributes at unescaped `,` / `+`; each value
/// unescaped (§2.4: `\` before a special character, or two hex digits of a UTF-8 byte). With
/// `wildcards`, an unescaped `*` in a value splits it into pieces; without, it is literal
/// (one piece).
fn split(text: &str, wildcards: bool) -> Result<Vec<(String, Vec<String>)>, &'static str> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        // the type, up to `=`
        let mut ty = String::new();
        loop {
            match chars.next() {
                Some('=') => break,
                Some(c) if c.is_ascii_alphanumeric() || c == '.' || c == '-' => ty.push(c),
                Some(' ') if ty.is_empty() => {}
                Some(_) => return Err("an attribute type is letters, digits, `-` or a dotted OID"),
                None => return Err("each attribute is TYPE=VALUE"),
            }
        }
        if ty.is_empty() {
            return Err("an attribute needs a type before `=`");
        }
        // the value, up to an unescaped `,` / `+` or the end
        let mut pieces = vec![Vec::<u8>::new()];
        let mut end = true;
        while let Some(c) = chars.next() {
            match c {
                ',' | '+' => {
                    end = false;
                    break;
                }
                '\\' => {
                    let e = chars.next().ok_or("a `\\` ends the text")?;
                    let last = pieces.last_mut().ok_or("internal")?;
                    match (e.to_digit(16), chars.peek().and_then(|n| n.to_digit(16))) {
                        (Some(h), Some(l)) => {
                            chars.next();
                            last.push((h * 16 + l) as u8);
                        }
                        _ => push_char(last, e),
                    }
                }
                '*' if wildcards => pieces.push(Vec::new()),
                c => push_char(pieces.last_mut().ok_or("internal")?, c),
            }
        }
        let pieces = pieces
            .into_iter()
            .map(|p| String::from_utf8(p).map_err(|_| "an escaped value is not UTF-8"))
            .collect::<Result<Vec<_>, _>>()?;
        out.push((ty.to_ascii_uppercase(), pieces));
        if end {
            return Ok(out);
        }
    }
}

fn push_char(v: &mut Vec<u8>, c: char) {
    let mut b = [0; 4];
    v.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
}

/// Whether `text` is the `pieces` with any runs between them: the first piece a prefix, the
/// last a suffix, the middle ones in order (one piece: exact).
fn glob(pieces: &[String], text: &str) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return text.is_empty();
    };
    let Some(mut left) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return left.is_empty();
    };
    for part in middle {
        match left.find(part.as_str()) {
            Some(i) => left = left.get(i + part.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    left.len() >= last.len() && left.ends_with(last.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, dn: &str) -> bool {
        let p = SubjectPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        attributes(dn).is_some_and(|a| p.matches(&a))
    }

    #[test]
    fn attribute_by_attribute_in_any_order() {
        assert!(matches("CN=alice,O=Example", "CN=alice,O=Example"));
        assert!(matches("CN=alice,O=Example", "O=Example,CN=alice"), "order");
        assert!(
            matches("o=Example,cn=alice", "C=US,O=Example,CN=alice"),
            "types' case, more attrs"
        );
        assert!(!matches("CN=alice,O=Example", "CN=alice,O=Example2"));
        assert!(
            !matches("CN=alice,O=Example", "CN=alice"),
            "every pattern attribute"
        );
        assert!(matches("CN=*,O=Example", "CN=bob,O=Example"));
        assert!(!matches("CN=*,O=Example", "CN=bob,O=Other"));
        assert!(matches("CN=a*a", "CN=aa"));
        assert!(!matches("CN=a*a", "CN=a"));
        assert!(matches("CN=svc-*", "OU=x+CN=svc-1,O=y"), "multi-valued RDN");
    }

    #[test]
    fn an_escaped_comma_is_part_of_the_value() {
        // CN "mallory,O=Example Corp" as the certificate facts render it
        let dn = "CN=mallory\\,O=Example Corp,O=Other";
        assert_eq!(
            attributes(dn),
            Some(vec![
                ("CN".into(), "mallory,O=Example Corp".into()),
                ("O".into(), "Other".into())
            ])
        );
        assert!(!matches("CN=*,O=Example Corp", dn));
        assert!(!matches(
            "CN=*,O=Example Corp",
            "CN=mallory\\,O=Example Corp"
        ));
        // hex escapes and a literal star
        assert_eq!(
            attributes("CN=caf\\C3\\A9\\00"),
            Some(vec![("CN".into(), "café\0".into())])
        );
        assert!(matches("CN=a\\*", "CN=a*"));
        assert!(!matches("CN=a\\*", "CN=ab"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in ["CN", "=x", "C N=x", "CN=x\\", "CN=x,", "CN*=x", "CN=\\FF"] {
            assert!(SubjectPattern::parse(p).is_err(), "{p}");
        }
    }
}
