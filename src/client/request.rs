//! A request built from scratch for an origin: the outbound client's request-head struct, for
//! callers that do not forward a client's request (later authorizers, JWKS fetches, Lambda).
//!
//! Owns: [`OutboundHead`], its validation (nothing a caller passes can inject a field or a
//! second message: tokens, targets and values are checked, and the framing fields are the
//! encoder's alone) and its HTTP/1.1 encoding into an [`Outbound`] ready for
//! [`super::exchange`]. Leaves out: forwarding a client's request (the HTTP integration writes
//! `Outbound::first` itself, keeping the client's fields, `integration::rewrite`), choosing the
//! origin and its pool (see the module doc of [`super`]), and reading the answer.
//!
//! Data flow: the caller's method, target, host, fields and whole body → [`OutboundHead::encode`]
//! → one `Bytes` (head and body, one write) in an [`Outbound`] marked whole, idempotent by its
//! method.

use bytes::{BufMut, Bytes, BytesMut};

use super::Outbound;
use crate::http::is_token;

/// Fields the encoder owns: the caller may not set them (RFC 9112 §6.3, a second framing field
/// would let an origin read the message differently; `host` is written first, RFC 9110 §7.2;
/// connection options are the client's, RFC 9110 §7.6.1).
const RESERVED_FIELDS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
];

/// A request for an origin, built from parts. Encoded as HTTP/1.1 in origin-form
/// (RFC 9112 §3.2.1).
#[derive(Debug, Clone)]
pub struct OutboundHead<'a> {
    /// The method token (RFC 9110 §9.1), case-sensitive.
    pub method: &'a str,
    /// The origin-form target: an absolute path and optional query (RFC 9112 §3.2.1).
    pub target: &'a str,
    /// The `host` field's value: the origin's authority (RFC 9110 §7.2).
    pub host: &'a str,
    /// Further fields, sent in this order.
    pub fields: &'a [(&'a str, &'a str)],
    /// The whole body, sent with `content-length` (RFC 9112 §6.2); `None`: no body and no
    /// `content-length`.
    pub body: Option<Bytes>,
}

/// Why an [`OutboundHead`] cannot be encoded: which part is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidHead {
    Method,
    Target,
    Host,
    /// The field at this index has an invalid name or value, or is one the encoder owns.
    Field(usize),
}

impl OutboundHead<'_> {
    /// Validates and encodes the request: head and body in one buffer, `whole`, idempotent
    /// when the method is (RFC 9110 §9.2.2).
    pub fn encode(&self) -> Result<Outbound, InvalidHead> {
        if !is_token(self.method.as_bytes()) {
            return Err(InvalidHead::Method);
        }
        // origin-form: "/" then visible characters only, so neither whitespace nor a line
        // break can end the request line early (RFC 9112 §3.2)
        if !self.target.starts_with('/') || !self.target.bytes().all(is_vchar) {
            return Err(InvalidHead::Target);
        }
        // uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2): visible characters, none that
        // would start a path, query, fragment or userinfo
        let host_ok = |b: u8| is_vchar(b) && !matches!(b, b'/' | b'?' | b'#' | b'@');
        if self.host.is_empty() || !self.host.bytes().all(host_ok) {
            return Err(InvalidHead::Host);
        }
        for (i, (name, value)) in self.fields.iter().enumerate() {
            let reserved = RESERVED_FIELDS.iter().any(|r| r.eq_ignore_ascii_case(name));
            if reserved || !is_token(name.as_bytes()) || !is_field_value(value.as_bytes()) {
                return Err(InvalidHead::Field(i));
            }
        }
        let body_len = self.body.as_ref().map_or(0, Bytes::len);
        let fields_len: usize = self.fields.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        let mut out = BytesMut::with_capacity(
            self.method.len() + self.target.len() + self.host.len() + fields_len + body_len + 64,
        );
        out.put_slice(self.method.as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.target.as_bytes());
        out.put_slice(b" HTTP/1.1\r\nhost: ");
        out.put_slice(self.host.as_bytes());
        out.put_slice(b"\r\n");
        for (name, value) in self.fields {
            out.put_slice(name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        if let Some(body) = &self.body {
            out.put_slice(b"content-length: ");
            crate::fmt::put_decimal(&mut out, body.len() as u64);
            out.put_slice(b"\r\n\r\n");
            out.put_slice(body);
        } else {
            out.put_slice(b"\r\n");
        }
        let idempotent = matches!(
            self.method,
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
        );
        Ok(Outbound {
            first: out.freeze(),
            whole: true,
            idempotent,
            replay_on_stale: false,
            is_head: self.method == "HEAD",
        })
    }
}

/// VCHAR (RFC 5234 B.1): a visible US-ASCII character.
fn is_vchar(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// `field-value` (RFC 9110 §5.5) as this encoder sends it: visible characters, spaces and tabs
/// inside, none at either end, no CR, LF, NUL or other control (so no field can be injected),
/// no obs-text.
fn is_field_value(v: &[u8]) -> bool {
    let inner = |b: &u8| is_vchar(*b) || *b == b' ' || *b == b'\t';
    let edge = |b: Option<&u8>| b.is_none_or(|b| is_vchar(*b));
    v.iter().all(inner) && edge(v.first()) && edge(v.last())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head<'a>(fields: &'a [(&'a str, &'a str)], body: Option<&'static [u8]>) -> OutboundHead<'a> {
        OutboundHead {
            method: "POST",
            target: "/token?x=1",
            host: "auth.example:8443",
            fields,
            body: body.map(Bytes::from_static),
        }
    }

    #[test]
    fn encodes_head_fields_and_body_in_one_buffer() {
        let o = head(
            &[("accept", "application/json"), ("x-a", "b\tc")],
            Some(b"k=v"),
        )
        .encode()
        .unwrap();
        assert_eq!(
            &o.first[..],
            b"POST /token?x=1 HTTP/1.1\r\nhost: auth.example:8443\r\naccept: application/json\r\nx-a: b\tc\r\ncontent-length: 3\r\n\r\nk=v"
        );
        assert!(o.whole && !o.idempotent && !o.is_head);
        let get = OutboundHead {
            method: "GET",
            body: None,
            ..head(&[], None)
        };
        let o = get.encode().unwrap();
        assert_eq!(
            &o.first[..],
            b"GET /token?x=1 HTTP/1.1\r\nhost: auth.example:8443\r\n\r\n"
        );
        assert!(o.idempotent && !o.is_head);
        let o = OutboundHead {
            method: "HEAD",
            ..head(&[], None)
        }
        .encode()
        .unwrap();
        assert!(o.idempotent && o.is_head);
    }

    #[test]
    fn nothing_passed_in_can_inject_a_field_or_a_message() {
        let bad = |h: OutboundHead<'_>| match h.encode() {
            Err(e) => e,
            Ok(o) => panic!("encoded {:?}", o.first),
        };
        assert_eq!(
            bad(OutboundHead {
                method: "G T",
                ..head(&[], None)
            }),
            InvalidHead::Method
        );
        assert_eq!(
            bad(OutboundHead {
                method: "",
                ..head(&[], None)
            }),
            InvalidHead::Method
        );
        for t in ["x", "/a b", "/a\r\nx: y", "", "/\u{e9}"] {
            assert_eq!(
                bad(OutboundHead {
                    target: t,
                    ..head(&[], None)
                }),
                InvalidHead::Target,
                "{t:?}"
            );
        }
        for h in ["", "a b", "a\r\nx: y", "u@h", "h/p"] {
            assert_eq!(
                bad(OutboundHead {
                    host: h,
                    ..head(&[], None)
                }),
                InvalidHead::Host,
                "{h:?}"
            );
        }
        let fields: &[&[(&str, &str)]] = &[
            &[("ok", "v"), ("x", "a\r\nevil: 1")],
            &[("ok", "v"), ("bad name", "v")],
            &[("ok", "v"), ("x", "\0")],
            &[("ok", "v"), ("x", " lead")],
            &[("ok", "v"), ("Content-Length", "5")],
            &[("ok", "v"), ("transfer-encoding", "chunked")],
            &[("ok", "v"), ("HOST", "other")],
        ];
        for f in fields {
            assert_eq!(bad(head(f, None)), InvalidHead::Field(1), "{f:?}");
        }
        assert!(
            head(&[("x", "")], None).encode().is_ok(),
            "an empty value is valid"
        );
    }
}
