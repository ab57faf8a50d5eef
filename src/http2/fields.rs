//! Request header validation (RFC 9113 §8.1.1, §8.2, §8.3) and its translation into
//! [`RequestFields`], the neutral request head the session turns into the gateway's request.
//!
//! A [`Block`] takes the decoded fields of one header block one at a time (straight from the
//! HPACK decoder, no intermediate list) and [`Block::finish`]es into either a request head or
//! trailers. Every violation is "malformed" (§8.1.1): the connection answers it with a stream
//! error PROTOCOL_ERROR, never a connection error; the `&'static str` says why, for logs.
//! Left to the gateway: what a valid request means (methods, routes, Host rules of RFC 9110 —
//! a CONNECT request is accepted in shape here and answered 501 like over HTTP/1).

use bytes::{Bytes, BytesMut};

use super::hpack::Field;
use crate::http::request::is_valid_authority;
use crate::http::{allowed_in_trailer, is_field_octet};

/// A validated request head (design.md, the session contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFields {
    pub method: Bytes,
    /// None only for CONNECT (§8.5).
    pub scheme: Option<Bytes>,
    /// `:authority`, else the `host` field (§8.3.1).
    pub authority: Option<Bytes>,
    /// "/..." or "*" (OPTIONS only); empty for CONNECT.
    pub path: Bytes,
    /// `:protocol` (RFC 8441): we do not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL, so a
    /// request carrying it is malformed and this is always None for now.
    pub protocol: Option<Bytes>,
    /// Regular fields in order, names lowercase, cookie crumbs joined with "; " into one field
    /// where the first crumb was (§8.2.3); `host` removed (it is in `authority`);
    /// connection-specific fields absent (they are malformed).
    pub fields: Vec<(Bytes, Bytes)>,
    /// The content-length all `content-length` fields agree on (§8.1.1, RFC 9110 §8.6); one
    /// `content-length` field stays in `fields` (equal duplicates are dropped, as the HTTP/1
    /// parser does).
    pub content_length: Option<u64>,
}

/// What a header block is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// The first HEADERS of a stream: pseudo-headers required.
    Request,
    /// HEADERS after the body (§8.1): no pseudo-headers.
    Trailers,
}

/// The fields of one block, validated as they arrive.
#[derive(Debug)]
pub struct Block {
    kind: BlockKind,
    error: Option<&'static str>,
    method: Option<Bytes>,
    scheme: Option<Bytes>,
    authority: Option<Bytes>,
    path: Option<Bytes>,
    host: Option<Bytes>,
    /// A regular field was seen: pseudo-headers may no longer follow (§8.3).
    regular_seen: bool,
    fields: Vec<(Bytes, Bytes)>,
    /// Index in `fields` of the joined cookie, with the crumbs joined so far.
    cookie: Option<(usize, BytesMut)>,
    content_length: Option<u64>,
}

/// The result of a finished block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Request(RequestFields),
    Trailers(Vec<(Bytes, Bytes)>),
}

impl Block {
    pub fn new(kind: BlockKind) -> Block {
        Block {
            kind,
            error: None,
            method: None,
            scheme: None,
            authority: None,
            path: None,
            host: None,
            regular_seen: false,
            fields: Vec::with_capacity(if kind == BlockKind::Request { 16 } else { 0 }),
            cookie: None,
            content_length: None,
        }
    }

    /// Adds one decoded field. After the first error the rest are only dropped (the block
    /// must still be decoded to the end to keep the HPACK table in step).
    pub fn push(&mut self, field: Field) {
        if self.error.is_some() {
            return;
        }
        if let Err(reason) = self.add(field) {
            self.error = Some(reason);
            self.fields = Vec::new();
            self.cookie = None;
        }
    }

    fn add(&mut self, field: Field) -> Result<(), &'static str> {
        let Field { name, value, .. } = field;
        check_value(&value)?;
        if let Some(pseudo) = name.strip_prefix(b":") {
            return self.pseudo(pseudo, value);
        }
        check_name(&name)?;
        self.regular_seen = true;
        // §8.2.2: connection-specific fields are malformed; TE only as "trailers";
        // HTTP2-Settings only means something in an HTTP/1.1 upgrade (RFC 7540 §3.2)
        match &name[..] {
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" | b"http2-settings" => return Err("connection-specific field"),
            b"te" if &value[..] != b"trailers" => return Err("te other than trailers"),
            _ => {}
        }
        if self.kind == BlockKind::Trailers && !allowed_in_trailer(&name) {
            // RFC 9110 §6.5.1: fields needed for framing, routing, authentication, ... are not
            // taken from trailers: dropped, as the HTTP/1 side does
            return Ok(());
        }
        match &name[..] {
            b"content-length" => {
                let n = parse_content_length(&value)?;
                match self.content_length {
                    Some(m) if m != n => return Err("content-length values disagree"),
                    // RFC 9110 §8.6: equal duplicates mean one value; one field is kept
                    Some(_) => return Ok(()),
                    None => self.content_length = Some(n),
                }
            }
            b"host" if self.kind == BlockKind::Request => {
                if self.host.is_some() {
                    return Err("more than one host field");
                }
                self.host = Some(value);
                return Ok(());
            }
            b"cookie" if self.kind == BlockKind::Request => {
                // §8.2.3: crumbs are joined with "; " before going to an HTTP/1.1 origin
                match &mut self.cookie {
                    Some((_, joined)) => {
                        joined.extend_from_slice(b"; ");
                        joined.extend_from_slice(&value);
                    }
                    None => {
                        self.cookie = Some((self.fields.len(), BytesMut::from(&value[..])));
                        self.fields.push((name, Bytes::new()));
                    }
                }
                return Ok(());
            }
            _ => {}
        }
        self.fields.push((name, value));
        Ok(())
    }

    /// §8.3: only the request pseudo-headers, each once, all before the regular fields, none
    /// in trailers.
    fn pseudo(&mut self, name: &[u8], value: Bytes) -> Result<(), &'static str> {
        if self.kind == BlockKind::Trailers {
            return Err("pseudo-header in trailers");
        }
        if self.regular_seen {
            return Err("pseudo-header after a regular field");
        }
        let slot = match name {
            b"method" => &mut self.method,
            b"scheme" => &mut self.scheme,
            b"authority" => &mut self.authority,
            b"path" => &mut self.path,
            // RFC 8441 §4: only when SETTINGS_ENABLE_CONNECT_PROTOCOL was advertised (it is not)
            b"protocol" => return Err(":protocol without extended CONNECT"),
            _ => return Err("unknown pseudo-header"),
        };
        if slot.is_some() {
            return Err("duplicate pseudo-header");
        }
        *slot = Some(value);
        Ok(())
    }

    /// Completes the block: the required pseudo-headers (§8.3.1, §8.5), :authority against
    /// host, and the joined cookie.
    pub fn finish(mut self) -> Result<Finished, &'static str> {
        if let Some(reason) = self.error {
            return Err(reason);
        }
        if let Some((at, joined)) = self.cookie.take() {
            if let Some(slot) = self.fields.get_mut(at) {
                slot.1 = joined.freeze();
            }
        }
        if self.kind == BlockKind::Trailers {
            return Ok(Finished::Trailers(self.fields));
        }
        let method = self.method.ok_or("missing :method")?;
        check_token(&method).map_err(|_| "invalid :method")?;
        if let (Some(a), Some(h)) = (&self.authority, &self.host) {
            // §8.3.1: a client MUST NOT generate a host field that differs from :authority
            if a != h {
                return Err(":authority and host differ");
            }
        }
        let authority = self.authority.or(self.host);
        if let Some(a) = &authority {
            // §8.3.1: no userinfo in :authority; the rest is the HTTP/1 Host rule (RFC 9112
            // §3.2: uri-host [ ":" port ]), so both protocols accept the same authorities
            if !is_valid_authority(a) {
                return Err("invalid :authority");
            }
        }
        let (scheme, path) = if &method[..] == b"CONNECT" {
            // §8.5: CONNECT carries :method and :authority only
            if self.scheme.is_some() || self.path.is_some() {
                return Err("CONNECT with :scheme or :path");
            }
            if authority.is_none() {
                return Err("CONNECT without :authority");
            }
            (None, Bytes::new())
        } else {
            let scheme = self.scheme.ok_or("missing :scheme")?;
            check_scheme(&scheme)?;
            // §8.3.1: a scheme with a mandatory authority (http, https) needs :authority or
            // host
            let web = scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https");
            if web && authority.is_none() {
                return Err("http(s) request without :authority or host");
            }
            let path = self.path.ok_or("missing :path")?;
            // §8.3.1: non-empty; origin-form, or "*" for OPTIONS (asterisk-form)
            let valid = uri_chars(&path)
                && match path.first() {
                    Some(b'/') => true,
                    Some(b'*') => path.len() == 1 && &method[..] == b"OPTIONS",
                    _ => false,
                };
            if !valid {
                return Err("invalid :path");
            }
            (Some(scheme), path)
        };
        Ok(Finished::Request(RequestFields {
            method,
            scheme,
            authority,
            path,
            protocol: None,
            fields: self.fields,
            content_length: self.content_length,
        }))
    }
}

/// §8.2.1: a field name is a token with no uppercase letters (and never empty).
fn check_name(name: &[u8]) -> Result<(), &'static str> {
    if name.iter().any(u8::is_ascii_uppercase) {
        return Err("uppercase field name");
    }
    check_token(name).map_err(|_| "invalid field name")
}

/// RFC 9110 §5.6.2 tchar.
fn check_token(s: &[u8]) -> Result<(), ()> {
    let tchar = |c: &u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(c);
    if s.is_empty() || !s.iter().all(tchar) {
        return Err(());
    }
    Ok(())
}

/// §8.2.1 and RFC 9110 §5.5 field-value: no control character but HTAB (NUL, CR, LF
/// included) and no DEL anywhere in a value (the HTTP/1 parser's field-octet rule), no leading
/// or trailing space or tab.
fn check_value(value: &[u8]) -> Result<(), &'static str> {
    if !value.iter().all(|&c| is_field_octet(c)) {
        return Err("control character in a field value");
    }
    let ws = |c: &u8| *c == b' ' || *c == b'\t';
    if value.first().is_some_and(ws) || value.last().is_some_and(ws) {
        return Err("whitespace around a field value");
    }
    Ok(())
}

/// RFC 3986 §2: a URI component is visible ASCII (no space, control or non-ASCII byte; those
/// arrive percent-encoded), and is never empty. Keeps the HTTP/1 request line built from it
/// a single, well-formed line.
fn uri_chars(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| c > b' ' && c < 0x7f)
}

/// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
fn check_scheme(s: &[u8]) -> Result<(), &'static str> {
    let ok = s.first().is_some_and(u8::is_ascii_alphabetic)
        && s.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err("invalid :scheme")
    }
}

/// RFC 9110 §8.6: Content-Length = 1*DIGIT (a list is not accepted over HTTP/2: one value per
/// field, and every field must agree).
fn parse_content_length(v: &[u8]) -> Result<u64, &'static str> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err("invalid content-length");
    }
    Ok(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
