//! An HTTP/2 request's head as the rest of the gateway sees it: a [`RequestHead`] parsed from a
//! synthetic HTTP/1.1 head.
//!
//! Owns: [`request_head`], which writes `METHOD SP path SP HTTP/1.1 CRLF host: authority CRLF
//! fields... framing CRLF CRLF` from a validated HTTP/2 request (RFC 9113 §8.3.1 pseudo-header
//! fields, §8.2 fields) and parses it with [`crate::http::parse_request`] under the configured
//! limits. So every HTTP/1 rule applies unchanged and fails with the same status (a target over
//! `max_uri_bytes` 414, too many or too large fields 431, a bad or missing host 400, CONNECT
//! 501), and the forwarding code reads the same spans it reads for HTTP/1. The framing of the
//! synthetic head is ours, from the HTTP/2 stream (RFC 9113 §8.1): END_STREAM on HEADERS → no
//! body (`content-length: 0` only when the client sent it); a declared `content-length` → that
//! length (the protocol layer checks the DATA against it, §8.1.1); otherwise a body of unknown
//! length → `transfer-encoding: chunked`, so the HTTP integration forwards it chunked (the
//! session's body reader yields decoded data, never chunk syntax). Leaves out: validating the
//! HTTP/2 fields themselves (`crate::http2::fields`); this module checks again, cheaply, that
//! nothing it writes can end a line or the head early or add framing (defence in depth: the
//! HTTP/2 → HTTP/1 downgrade must never produce a smuggled request).

use bytes::{BufMut, Bytes, BytesMut};

use crate::http::{parse_request, HttpError, Limits, RequestHead};

/// A validated HTTP/2 request head, by reference (what the protocol layer's `RequestFields`
/// hold, plus whether HEADERS ended the stream).
#[derive(Debug, Clone, Copy)]
pub struct H2Request<'a> {
    pub method: &'a [u8],
    /// `:authority`, else the `host` field (RFC 9113 §8.3.1).
    pub authority: Option<&'a [u8]>,
    /// `:path` ("/..." or "*" for OPTIONS).
    pub path: &'a [u8],
    /// Regular fields, names lowercase, cookies already joined (RFC 9113 §8.2.3).
    pub fields: &'a [(Bytes, Bytes)],
    /// The declared `content-length`, if any.
    pub content_length: Option<u64>,
    /// HEADERS carried END_STREAM: no body follows.
    pub end_stream: bool,
}

/// Fields a client must not send over HTTP/2 (RFC 9113 §8.2.2 connection-specific fields) or
/// that are framing this module writes itself (`content-length`, from the declared length).
const NOT_COPIED: &[&[u8]] = &[
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A field value's bytes may not end a line or the head: no CR, LF or NUL (RFC 9113 §8.2.1).
fn value_ok(v: &[u8]) -> bool {
    !v.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
}

/// A request-line part (target, authority): visible bytes only, no space that would split the
/// request line (RFC 9112 §3).
fn visible(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// The request as a [`RequestHead`] (see the module docs). Errors carry the status the HTTP/1
/// path gives the same problem; the caller answers them on the stream.
pub fn request_head(r: &H2Request<'_>, limits: &Limits) -> Result<RequestHead, HttpError> {
    if r.method.is_empty() || !r.method.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::BadRequest("invalid method"));
    }
    // RFC 9113 §8.3.1: origin-form, or "*" (OPTIONS): never an absolute-form target, whose
    // authority the HTTP/1 parser would take over the one `:authority` gave
    let origin_form = r.path.first() == Some(&b'/') || r.path == b"*";
    if !visible(r.path) || !origin_form {
        return Err(HttpError::BadRequest("invalid :path"));
    }
    let authority = match r.authority {
        Some(a) if visible(a) => Some(a),
        Some(_) => return Err(HttpError::BadRequest("invalid :authority")),
        None => None,
    };
    let te_trailers_only = |v: &[u8]| v.eq_ignore_ascii_case(b"trailers");
    let mut size = r.method.len() + r.path.len() + authority.map_or(0, <[u8]>::len) + 64;
    for (name, value) in r.fields {
        // RFC 9113 §8.2.1: names are lowercase tokens; §8.2.2: no connection-specific
        // fields, TE only as "trailers"
        let lower_token =
            !name.is_empty() && name.iter().all(|&b| is_tchar(b) && !b.is_ascii_uppercase());
        if !lower_token || !value_ok(value) {
            return Err(HttpError::BadRequest("invalid field"));
        }
        if NOT_COPIED.contains(&&name[..]) || (&name[..] == b"te" && !te_trailers_only(value)) {
            return Err(HttpError::BadRequest("connection-specific field"));
        }
        size += name.len() + value.len() + 4;
    }
    let mut buf = BytesMut::with_capacity(size);
    buf.put_slice(r.method);
    buf.put_u8(b' ');
    buf.put_slice(r.path);
    buf.put_slice(b" HTTP/1.1\r\n");
    if let Some(a) = authority {
        buf.put_slice(b"host: ");
        buf.put_slice(a);
        buf.put_slice(b"\r\n");
    }
    for (name, value) in r.fields {
        if &name[..] == b"content-length" {
            continue; // written below from the declared length (one value, checked)
        }
        buf.put_slice(name);
        buf.put_slice(b": ");
        buf.put_slice(value);
        buf.put_slice(b"\r\n");
    }
    match (r.end_stream, r.content_length) {
        (true, Some(0)) | (false, Some(_)) => {
            buf.put_slice(b"content-length: ");
            crate::fmt::put_decimal(&mut buf, r.content_length.unwrap_or(0));
            buf.put_slice(b"\r\n");
        }
        // RFC 9113 §8.1.1: a declared length the (absent) DATA contradicts is malformed; the
        // protocol layer resets such a stream, this only keeps the head honest
        (true, Some(_)) => return Err(HttpError::BadRequest("content-length without body")),
        (true, None) => {}
        (false, None) => buf.put_slice(b"transfer-encoding: chunked\r\n"),
    }
    buf.put_slice(b"\r\n");
    match parse_request(&mut buf, limits)? {
        // the whole head was written at once: a parsed head took all of it
        Some(head) if buf.is_empty() => Ok(head),
        _ => Err(HttpError::BadRequest("invalid request head")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{BodyKind, Method};

    fn fields(list: &[(&str, &str)]) -> Vec<(Bytes, Bytes)> {
        list.iter()
            .map(|(n, v)| (Bytes::from(n.to_string()), Bytes::from(v.to_string())))
            .collect()
    }

    fn req<'a>(method: &'a str, path: &'a str, f: &'a [(Bytes, Bytes)]) -> H2Request<'a> {
        H2Request {
            method: method.as_bytes(),
            authority: Some(b"api.example.com"),
            path: path.as_bytes(),
            fields: f,
            content_length: None,
            end_stream: true,
        }
    }

    #[test]
    fn a_get_becomes_an_http11_head_with_host_from_authority() {
        let f = fields(&[("accept", "*/*"), ("cookie", "a=1; b=2")]);
        let h = request_head(&req("GET", "/p/x?q=1", &f), &Limits::default()).unwrap();
        assert_eq!(
            &h.buf[..],
            b"GET /p/x?q=1 HTTP/1.1\r\nhost: api.example.com\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n"
        );
        assert_eq!(h.method_kind, Method::Get);
        assert_eq!(h.path_bytes(), b"/p/x");
        assert_eq!(h.query_bytes(), Some(&b"q=1"[..]));
        assert_eq!(h.host_bytes(), Some(&b"api.example.com"[..]));
        assert_eq!(h.body, BodyKind::Empty);
    }

    #[test]
    fn framing_follows_the_stream() {
        let f = fields(&[("content-length", "5"), ("content-type", "text/plain")]);
        let mut r = req("POST", "/u", &f);
        r.content_length = Some(5);
        r.end_stream = false;
        let h = request_head(&r, &Limits::default()).unwrap();
        assert_eq!(h.body, BodyKind::Length(5));
        assert_eq!(
            &h.buf[..],
            b"POST /u HTTP/1.1\r\nhost: api.example.com\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n"
        );
        // no length, body follows: chunked for the origin
        let f = fields(&[]);
        let mut r = req("POST", "/u", &f);
        r.end_stream = false;
        let h = request_head(&r, &Limits::default()).unwrap();
        assert_eq!(h.body, BodyKind::Chunked);
        assert!(h.buf.ends_with(b"transfer-encoding: chunked\r\n\r\n"));
        // END_STREAM with content-length 0: kept; END_STREAM with none: nothing
        let f = fields(&[("content-length", "0")]);
        let mut r = req("POST", "/u", &f);
        r.content_length = Some(0);
        let h = request_head(&r, &Limits::default()).unwrap();
        assert_eq!(h.body, BodyKind::Length(0));
        let f = fields(&[]);
        let h = request_head(&req("POST", "/u", &f), &Limits::default()).unwrap();
        assert_eq!(h.body, BodyKind::Empty);
        assert!(!h.buf.windows(7).any(|w| w == b"content"));
        // END_STREAM with a length that promises a body: malformed
        let mut r = req("POST", "/u", &f);
        r.content_length = Some(3);
        assert!(matches!(
            request_head(&r, &Limits::default()),
            Err(HttpError::BadRequest(_))
        ));
    }

    #[test]
    fn no_field_can_inject_framing_or_lines() {
        let bad: &[(&str, &str)] = &[
            ("transfer-encoding", "chunked"),
            ("connection", "close"),
            ("keep-alive", "5"),
            ("proxy-connection", "x"),
            ("upgrade", "websocket"),
            ("te", "gzip"),
            ("X-Upper", "v"),
            ("a b", "v"),
            ("x", "a\r\nContent-Length: 5"),
            ("x", "a\nb"),
            ("x", "a\0b"),
            ("", "v"),
        ];
        for &(n, v) in bad {
            let f = fields(&[(n, v)]);
            let e = request_head(&req("GET", "/", &f), &Limits::default());
            assert!(matches!(e, Err(HttpError::BadRequest(_))), "{n:?}: {v:?}");
        }
        let f = fields(&[("te", "trailers")]);
        assert!(request_head(&req("GET", "/", &f), &Limits::default()).is_ok());
        let none = fields(&[]);
        for (m, p) in [
            ("GET", "/a b"),
            ("GET", "/a\r\nX: y"),
            ("GE T", "/"),
            ("", "/"),
            ("GET", ""),
            ("GET", "http://other.example/x"),
            ("GET", "other.example:80"),
        ] {
            let e = request_head(&req(m, p, &none), &Limits::default());
            assert!(matches!(e, Err(HttpError::BadRequest(_))), "{m:?} {p:?}");
        }
        for bad in [
            &b"a.example\r\nx: y"[..],
            b"u@a.example",
            b"a.example/x",
            b"a b",
        ] {
            let mut r = req("GET", "/", &none);
            r.authority = Some(bad);
            let e = request_head(&r, &Limits::default());
            assert!(e.is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn http1_limits_and_rules_apply_with_their_statuses() {
        let none = fields(&[]);
        let limits = Limits {
            max_uri_bytes: 32,
            max_headers: 3,
            max_body_bytes: 100,
            ..Limits::default()
        };
        let long = format!("/{}", "a".repeat(100));
        let e = request_head(&req("GET", &long, &none), &limits).unwrap_err();
        assert_eq!(e.status(), 414);
        let many = fields(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
        let e = request_head(&req("GET", "/", &many), &limits).unwrap_err();
        assert_eq!(e.status(), 431);
        let mut r = req("POST", "/", &none);
        r.content_length = Some(101);
        r.end_stream = false;
        assert_eq!(request_head(&r, &limits).unwrap_err().status(), 413);
        // no :authority and no host: HTTP/1.1 needs a Host (RFC 9112 §3.2)
        let mut r = req("GET", "/", &none);
        r.authority = None;
        assert_eq!(request_head(&r, &limits).unwrap_err().status(), 400);
        // a host field that differs from :authority stays beside it: two hosts are a 400
        let other = fields(&[("host", "other.example.com")]);
        let e = request_head(&req("GET", "/", &other), &limits).unwrap_err();
        assert_eq!(e.status(), 400);
        let e = request_head(&req("CONNECT", "/", &none), &limits).unwrap_err();
        assert_eq!(e.status(), 501);
        let h = request_head(&req("OPTIONS", "*", &none), &limits).unwrap();
        assert_eq!(h.method_kind, Method::Options);
    }
}
