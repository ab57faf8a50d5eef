//! Request head parsing (RFC 9112 2-3, 5-6, 9.3; RFC 9110 7, 9, 10.1.1).
//!
//! Owns [`parse_request`]: it finds and validates a complete request head at
//! the front of the connection buffer, splits exactly those bytes off as a
//! frozen `Bytes`, and describes them in a [`RequestHead`]: method, target
//! parts, host, classified headers, body framing, persistence and
//! `Expect: 100-continue`. It leaves out the body (see `body.rs`), routing,
//! and any rewriting: the proxy builds the upstream head from the spans.
//!
//! Data flow: leading CRLFs are dropped, `fields::scan_head` pre-scans the
//! bytes (bare CR/LF, CTLs, obs-fold, size limits), httparse (strict default
//! config, on-stack uninitialised header array) tokenises the head, then the
//! rules below turn its borrowed slices into spans and reject anything the
//! RFCs call invalid or ambiguous. Only when everything passed is the head
//! split off; on error the buffer is left as is (the caller closes).

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;

use super::fields::{
    self, hex_val, parse_decimal, span_in, Coding, ConnectionOpts, ContentLength, Field,
    TransferCodings,
};
use super::{BodyKind, Header, HttpError, Limits, Span, Version, MAX_HEADERS_CAPACITY};

/// Slack added to `max_uri_bytes` for method, spaces and version when
/// bounding a request line that has not ended yet: a method of up to 48
/// bytes plus ` ` and ` HTTP/1.1\r\n`.
pub const REQUEST_LINE_SLACK: usize = 64;

/// Request method (RFC 9110 9). Methods are case-sensitive; unknown (or
/// lowercase) tokens are `Other`. CONNECT is rejected with 501 at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
    Trace,
    Other,
}

impl Method {
    /// Idempotent methods (RFC 9110 9.2.2): the safe ones plus PUT and DELETE.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Put
                | Method::Delete
                | Method::Options
                | Method::Trace
        )
    }

    /// Safe methods (RFC 9110 9.2.1).
    pub fn is_safe(self) -> bool {
        matches!(
            self,
            Method::Get | Method::Head | Method::Options | Method::Trace
        )
    }

    fn from_token(m: &[u8]) -> Result<Method, HttpError> {
        Ok(match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"PATCH" => Method::Patch,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            // RFC 9110 9.3.6: tunnelling is not something this proxy does.
            b"CONNECT" => return Err(HttpError::NotImplemented("CONNECT is not supported")),
            _ => Method::Other,
        })
    }
}

/// A validated request head. All spans index into `buf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Exactly the head bytes incl. the final CRLFCRLF.
    pub buf: Bytes,
    pub method: Span,
    pub method_kind: Method,
    /// The request-target as received.
    pub target: Span,
    /// Origin-form: the path up to '?'. Absolute-form: the path after the
    /// authority; if that is empty the span covers the second '/' of the
    /// scheme's "//", so it still reads "/". OPTIONS *: the "*".
    pub path: Span,
    /// After '?', without the '?'; `None` if there is no '?'.
    pub query: Option<Span>,
    pub version: Version,
    pub headers: SmallVec<[Header; 24]>,
    /// The Host value, or for absolute-form the target's authority
    /// (RFC 9112 3.2.2). `None` only for HTTP/1.0 without Host.
    pub host: Option<Span>,
    /// The first X-Request-Id value.
    pub request_id: Option<Span>,
    /// Empty, Length or Chunked; never CloseDelimited (RFC 9112 6.3 item 7).
    pub body: BodyKind,
    /// RFC 9112 9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive"
    /// and no "close".
    pub keep_alive: bool,
    /// HTTP/1.1 request with a body and `Expect: 100-continue`.
    pub expect_continue: bool,
}

impl RequestHead {
    /// The bytes of a span (empty if out of range).
    pub fn slice(&self, s: Span) -> &[u8] {
        s.get(&self.buf)
    }

    pub fn method_bytes(&self) -> &[u8] {
        self.slice(self.method)
    }

    pub fn target_bytes(&self) -> &[u8] {
        self.slice(self.target)
    }

    pub fn path_bytes(&self) -> &[u8] {
        self.slice(self.path)
    }

    pub fn query_bytes(&self) -> Option<&[u8]> {
        self.query.map(|q| self.slice(q))
    }

    pub fn host_bytes(&self) -> Option<&[u8]> {
        self.host.map(|h| self.slice(h))
    }

    /// The value of the first header with this name (case-insensitive).
    pub fn header(&self, name_lowercase: &str) -> Option<&[u8]> {
        let name = name_lowercase.as_bytes();
        self.headers
            .iter()
            .find(|h| h.name.len() == name.len() && self.slice(h.name).eq_ignore_ascii_case(name))
            .map(|h| self.slice(h.value))
    }

    /// Length of the head in bytes.
    pub fn head_len(&self) -> usize {
        self.buf.len()
    }
}

/// Parse a request head from the front of `buf`.
///
/// `Ok(None)`: incomplete, read more (leading empty lines may have been
/// dropped from `buf` already). `Ok(Some(head))`: the head bytes were split
/// off the front of `buf` (`buf.split_to(n).freeze()`), leaving any body or
/// pipelined bytes in `buf`. `Err`: respond with `err.status()` and close.
pub fn parse_request(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, HttpError> {
    // RFC 9112 2.2: a server SHOULD ignore at least one empty line (CRLF)
    // received before the request-line. Bare LF is not an empty line here.
    while buf.starts_with(b"\r\n") {
        buf.advance(2);
    }
    let first_line_max = limits.max_uri_bytes.saturating_add(REQUEST_LINE_SLACK);
    let Some(len) = fields::scan_head(
        buf,
        limits.max_head_bytes,
        first_line_max,
        HttpError::BadRequest,
    )?
    else {
        return Ok(None);
    };
    let mut head = parse_head(buf.get(..len).unwrap_or_default(), limits)?;
    head.buf = buf.split_to(len).freeze();
    Ok(Some(head))
}

fn bad(msg: &'static str) -> HttpError {
    HttpError::BadRequest(msg)
}

/// Validate a complete head (`head` ends with CRLFCRLF). Returns everything
/// but `buf`, which the caller fills in once the bytes are split off.
fn parse_head(head: &[u8], limits: &Limits) -> Result<RequestHead, HttpError> {
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_CAPACITY];
    let slots = slots
        .get_mut(..limits.max_headers.min(MAX_HEADERS_CAPACITY))
        .unwrap_or_default();
    let mut req = httparse::Request::new(&mut []);
    match fields::strict_httparse().parse_request_with_uninit_headers(&mut req, head, slots) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(bad("malformed request head")),
        Err(e) => return Err(fields::map_httparse_error(e, bad)),
    }
    let malformed = || bad("malformed request head");

    // RFC 9112 2.3: only HTTP/1.0 and 1.1 (httparse rejects any other).
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(bad("unsupported HTTP version")),
    };
    // RFC 9112 3.1: method = token (httparse checks tchar).
    let method_str = req.method.ok_or_else(malformed)?;
    let method = span_in(head, method_str.as_bytes()).ok_or_else(malformed)?;
    let method_kind = Method::from_token(method_str.as_bytes())?;

    // RFC 9112 3: 414 for a request-target longer than we parse.
    let target_str = req.path.ok_or_else(malformed)?;
    if target_str.len() > limits.max_uri_bytes {
        return Err(HttpError::UriTooLong);
    }
    let target = span_in(head, target_str.as_bytes()).ok_or_else(malformed)?;
    let parts = parse_target(head, target, method_kind)?;

    let mut headers: SmallVec<[Header; 24]> = SmallVec::new();
    let (mut host, mut host_count, mut request_id) = (None, 0usize, None);
    let mut cl = ContentLength::default();
    let mut te = TransferCodings::default();
    let mut conn = ConnectionOpts::default();
    let (mut expect_continue, mut expect_other) = (false, false);
    for h in req.headers.iter() {
        let name = span_in(head, h.name.as_bytes()).ok_or_else(malformed)?;
        let value = span_in(head, h.value).ok_or_else(malformed)?;
        let field = Field::classify(h.name.as_bytes());
        match field {
            Field::Host => {
                host_count += 1;
                host = host.or(Some(value));
            }
            Field::RequestId => request_id = request_id.or(Some(value)),
            Field::ContentLength => cl.add(h.value),
            Field::TransferEncoding => te.add(h.value),
            Field::Connection => conn.add(h.value),
            // RFC 9110 10.1.1: Expect = #expectation; only 100-continue is known.
            Field::Expect => {
                for e in fields::list_elements(h.value) {
                    if e.eq_ignore_ascii_case(b"100-continue") {
                        expect_continue = true;
                    } else {
                        expect_other = true;
                    }
                }
            }
            _ => {}
        }
        headers.push(Header {
            name,
            value,
            kind: field.request_kind(),
        });
    }

    // RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, for more than
    // one Host field line, and for an invalid Host value.
    if host_count > 1 {
        return Err(bad("multiple Host headers"));
    }
    if let Some(h) = host {
        if !is_valid_authority(h.get(head)) {
            return Err(bad("invalid Host header"));
        }
    } else if version == Version::Http11 {
        return Err(bad("missing Host header"));
    }
    // RFC 9112 3.2.2: for absolute-form the target's authority wins over Host.
    if parts.authority.is_some() {
        host = parts.authority;
    }

    let body = request_framing(version, &cl, &te, limits)?;

    // RFC 9110 10.1.1: 417 for an unknown expectation; a 100-continue in an
    // HTTP/1.0 request MUST be ignored; it only matters with content.
    if expect_other {
        return Err(HttpError::ExpectationFailed);
    }
    let has_content =
        matches!(body, BodyKind::Chunked) || matches!(body, BodyKind::Length(n) if n > 0);
    let expect_continue = expect_continue && version == Version::Http11 && has_content;

    // RFC 9110 7.6.1: connection options are tokens.
    if conn.invalid {
        return Err(bad("invalid Connection header"));
    }
    // RFC 9112 9.3: persistence.
    let keep_alive = !conn.close && (version == Version::Http11 || conn.keep_alive);
    if conn.listed {
        fields::mark_connection_listed(head, &mut headers);
    }

    Ok(RequestHead {
        buf: Bytes::new(),
        method,
        method_kind,
        target,
        path: parts.path,
        query: parts.query,
        version,
        headers,
        host,
        request_id,
        body,
        keep_alive,
        expect_continue,
    })
}

/// Request message body length (RFC 9112 6.3). Ambiguous framing is never
/// repaired: it is rejected, closing the door on request smuggling.
fn request_framing(
    version: Version,
    cl: &ContentLength,
    te: &TransferCodings,
    limits: &Limits,
) -> Result<BodyKind, HttpError> {
    if te.present {
        // RFC 9112 6.1: Transfer-Encoding in a 1.0 message means faulty framing.
        if version == Version::Http10 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        // RFC 9112 6.1 / 6.3 item 3: both present -> reject, do not repair.
        if cl.fields > 0 {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        return match te.outcome() {
            Coding::Chunked => Ok(BodyKind::Chunked),
            // RFC 9112 6.1: 501 for a transfer coding the server does not understand.
            Coding::Unsupported => Err(HttpError::NotImplemented("unsupported transfer coding")),
            // RFC 9112 6.3 item 4: final coding not chunked -> 400.
            Coding::Invalid(msg) => Err(bad(msg)),
        };
    }
    if cl.fields == 0 {
        // RFC 9112 6.3 item 7: no framing fields -> no body.
        return Ok(BodyKind::Empty);
    }
    // RFC 9110 8.6: Content-Length = 1*DIGIT. RFC 9112 6.3 item 5: a list or
    // repeated field is invalid framing; we reject even equal duplicates.
    if cl.invalid {
        return Err(bad("invalid Content-Length"));
    }
    if cl.fields > 1 || cl.elements > 1 {
        return Err(bad("multiple Content-Length values"));
    }
    match cl.value {
        Some(n) if n > limits.max_body_bytes => Err(HttpError::BodyTooLarge),
        Some(n) => Ok(BodyKind::Length(n)),
        None => Err(bad("invalid Content-Length")),
    }
}

struct TargetParts {
    path: Span,
    query: Option<Span>,
    authority: Option<Span>,
}

/// Bytes allowed in a path or query besides pct-encoded (RFC 3986 3.3/3.4):
/// unreserved / sub-delims / ":" / "@" / "/" / "?".
const fn is_target_char(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~'
        | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        | b':' | b'@' | b'/' | b'?')
}

/// [`is_target_char`] as a lookup table.
static TARGET_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = is_target_char(i as u8);
        i += 1;
    }
    t
};

/// Validate `path [ "?" query ]`; returns the index of the first '?'.
fn check_path_query(t: &[u8]) -> Result<Option<usize>, HttpError> {
    let mut query = None;
    let mut i = 0;
    while let Some(&b) = t.get(i) {
        if TARGET_CHARS[usize::from(b)] {
            if b == b'?' && query.is_none() {
                query = Some(i);
            }
            i += 1;
            continue;
        }
        if b == b'%' {
            // RFC 3986 2.1: pct-encoded = "%" HEXDIG HEXDIG
            let hex = |j: usize| t.get(j).is_some_and(|&h| hex_val(h).is_some());
            if !(hex(i + 1) && hex(i + 2)) {
                return Err(bad("invalid percent-encoding in request-target"));
            }
            i += 3;
            continue;
        }
        if b == b'#' {
            // RFC 9112 3.2: the request-target has no fragment.
            return Err(bad("fragment in request-target"));
        }
        return Err(bad("invalid character in request-target"));
    }
    let path = t.get(..query.unwrap_or(t.len())).unwrap_or_default();
    if has_dot_segment(path) {
        return Err(bad("dot-segment in request-target"));
    }
    Ok(query)
}

/// RFC 3986 5.2.4: an origin resolves "." and ".." segments, so a path like
/// `/public/../admin` matched on its raw bytes would escape the route prefix
/// it matched. Such paths are rejected, not normalised: a segment made only of
/// one or two dots, literal or percent-encoded (`%2e`), between separators that
/// may be literal or percent-encoded (`/`, `%2f`, `%5c`).
fn has_dot_segment(path: &[u8]) -> bool {
    enum Unit {
        Sep,
        Dot,
        Other,
    }
    let (mut i, mut dots, mut other) = (0usize, 0u32, false);
    loop {
        let (unit, len) = match path.get(i) {
            None => (Unit::Sep, 0),
            Some(b'/') => (Unit::Sep, 1),
            Some(b'.') => (Unit::Dot, 1),
            Some(b'%') => {
                let code = [
                    path.get(i + 1).map_or(0, u8::to_ascii_lowercase),
                    path.get(i + 2).map_or(0, u8::to_ascii_lowercase),
                ];
                match &code {
                    b"2e" => (Unit::Dot, 3),
                    b"2f" | b"5c" => (Unit::Sep, 3),
                    _ => (Unit::Other, 3),
                }
            }
            Some(_) => (Unit::Other, 1),
        };
        match unit {
            Unit::Sep => {
                if !other && (dots == 1 || dots == 2) {
                    return true;
                }
                if len == 0 {
                    return false;
                }
                dots = 0;
                other = false;
            }
            Unit::Dot => dots += 1,
            Unit::Other => other = true,
        }
        i += len;
    }
}

/// The sub-span `from..to` of `t` (clamped to `t`).
fn sub_span(t: Span, from: usize, to: usize) -> Span {
    let at = |i: usize| {
        t.start
            .saturating_add(u32::try_from(i).unwrap_or(u32::MAX))
            .min(t.end)
    };
    Span {
        start: at(from),
        end: at(to),
    }
}

/// Path and query spans of `pq` (a validated `path [ "?" query ]` that
/// starts at offset `at` of target `t`); `slash` is used as path if empty.
fn split_path_query(
    t: Span,
    at: usize,
    pq_len: usize,
    q: Option<usize>,
    slash: Span,
) -> (Span, Option<Span>) {
    let path_end = q.unwrap_or(pq_len);
    let path = if path_end == 0 {
        slash
    } else {
        sub_span(t, at, at + path_end)
    };
    (path, q.map(|q| sub_span(t, at + q + 1, at + pq_len)))
}

/// RFC 9112 3.2: request-target = origin-form / absolute-form /
/// authority-form / asterisk-form.
fn parse_target(head: &[u8], t: Span, method: Method) -> Result<TargetParts, HttpError> {
    let tb = t.get(head);
    if tb == b"*" {
        // RFC 9112 3.2.4: asterisk-form is only used for OPTIONS.
        if method != Method::Options {
            return Err(bad("asterisk-form request-target requires OPTIONS"));
        }
        return Ok(TargetParts {
            path: t,
            query: None,
            authority: None,
        });
    }
    if tb.first() == Some(&b'/') {
        // RFC 9112 3.2.1: origin-form = absolute-path [ "?" query ]
        let q = check_path_query(tb)?;
        let (path, query) = split_path_query(t, 0, tb.len(), q, Span::default());
        return Ok(TargetParts {
            path,
            query,
            authority: None,
        });
    }
    // RFC 9112 3.2.2: absolute-form; RFC 9110 4.2: only http and https,
    // scheme case-insensitive (RFC 3986 3.1). Authority-form (RFC 9112
    // 3.2.3) is only for CONNECT, which was refused earlier.
    let starts_ci = |p: &[u8]| tb.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p));
    let scheme_len = if starts_ci(b"http://") {
        7
    } else if starts_ci(b"https://") {
        8
    } else {
        return Err(bad("invalid request-target"));
    };
    let rest = tb.get(scheme_len..).unwrap_or_default();
    let auth_len = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let (authority, pq) = rest.split_at(auth_len);
    // RFC 9110 4.2.1 (non-empty host), 4.2.4 (userinfo is an error).
    if !is_valid_authority(authority) {
        return Err(bad("invalid authority in request-target"));
    }
    let q = check_path_query(pq)?;
    let slash = sub_span(t, scheme_len - 1, scheme_len);
    let (path, query) = split_path_query(t, scheme_len + auth_len, pq.len(), q, slash);
    Ok(TargetParts {
        path,
        query,
        authority: Some(sub_span(t, scheme_len, scheme_len + auth_len)),
    })
}

/// `uri-host [ ":" port ]` (RFC 9112 3.2, RFC 3986 3.2.2/3.2.3), strict:
/// - IP-literal: "[" HEXDIG / ":" / "." "]" (IPv6, optionally v4-suffixed);
/// - otherwise a non-empty reg-name / IPv4 of unreserved / pct-encoded only.
///   RFC 3986 also allows sub-delims ("!$&'()*+,;="), which no DNS name
///   uses and which make Host-based routing ambiguous, so we reject them;
/// - port, if ':' is present: 1 to 5 digits, at most 65535 (an empty port
///   is legal in RFC 3986 but pointless, so rejected);
/// - empty, userinfo ('@'), '/', whitespace, etc. are rejected.
pub fn is_valid_authority(a: &[u8]) -> bool {
    let (host_ok, port) = if let Some(lit) = a.strip_prefix(b"[") {
        let Some(close) = lit.iter().position(|&b| b == b']') else {
            return false;
        };
        let (ip, rest) = lit.split_at(close);
        let ok = !ip.is_empty()
            && ip
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        match rest.get(1..).unwrap_or_default() {
            [] => (ok, None),
            [b':', p @ ..] => (ok, Some(p)),
            _ => return false,
        }
    } else {
        let (host, port) = match a.iter().position(|&b| b == b':') {
            Some(c) => (a.get(..c).unwrap_or_default(), a.get(c + 1..)),
            None => (a, None),
        };
        (!host.is_empty() && is_reg_name(host), port)
    };
    host_ok && port.is_none_or(|p| p.len() <= 5 && parse_decimal(p).is_some_and(|n| n <= 65535))
}

fn is_reg_name(h: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = h.get(i) {
        if b == b'%' {
            let hex = |j: usize| h.get(j).is_some_and(|&x| hex_val(x).is_some());
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HeaderKind;
    use proptest::prelude::*;

    fn parse_with(b: &[u8], limits: &Limits) -> Result<Option<RequestHead>, HttpError> {
        let mut buf = BytesMut::from(b);
        parse_request(&mut buf, limits)
    }
    fn parse(b: &[u8]) -> Result<Option<RequestHead>, HttpError> {
        parse_with(b, &Limits::default())
    }
    fn ok(b: &[u8]) -> RequestHead {
        parse(b).expect("valid").expect("complete")
    }
    fn err(b: &[u8]) -> HttpError {
        parse(b).expect_err("must be rejected")
    }
    fn req_with(header: &str) -> Vec<u8> {
        format!("POST /x HTTP/1.1\r\nHost: h\r\n{header}\r\n\r\n").into_bytes()
    }
    fn b400(m: &'static str) -> HttpError {
        HttpError::BadRequest(m)
    }

    #[test]
    fn simple_get() {
        let raw = b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nX-Forwarded-For: 1.2.3.4\r\nX-Request-Id: abc\r\n\r\n";
        let h = ok(raw);
        assert_eq!(h.method_bytes(), b"GET");
        assert_eq!(h.method_kind, Method::Get);
        assert_eq!(h.target_bytes(), b"/a/b?x=1&y=%20");
        assert_eq!(h.path_bytes(), b"/a/b");
        assert_eq!(h.query_bytes(), Some(&b"x=1&y=%20"[..]));
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.host_bytes(), Some(&b"example.com"[..]));
        assert_eq!(h.request_id.map(|s| h.slice(s)), Some(&b"abc"[..]));
        assert_eq!(h.body, BodyKind::Empty);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert_eq!(h.head_len(), raw.len());
        assert_eq!(&h.buf[..], &raw[..]);
        let kinds: Vec<_> = h.headers.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                HeaderKind::Host,
                HeaderKind::Regular,
                HeaderKind::XForwardedFor,
                HeaderKind::RequestId
            ]
        );
        assert_eq!(h.header("user-agent"), Some(&b"t"[..]));
        assert_eq!(h.header("USER-AGENT"), Some(&b"t"[..]));
        assert_eq!(h.header("missing"), None);
        assert_eq!(h.slice(h.headers[1].name), b"User-Agent");
    }

    #[test]
    fn header_value_ows_trimmed_and_first_wins() {
        let h = ok(b"GET / HTTP/1.1\r\nHost:h\r\nA: \t one two \t\r\nA: 2\r\nB:\r\n\r\n");
        assert_eq!(h.header("a"), Some(&b"one two"[..]));
        assert_eq!(h.header("b"), Some(&b""[..]));
    }

    #[test]
    fn pipelined_requests() {
        let raw = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c";
        let mut buf = BytesMut::from(&raw[..]);
        let l = Limits::default();
        let a = parse_request(&mut buf, &l).unwrap().unwrap();
        assert_eq!(a.path_bytes(), b"/a");
        assert_eq!(a.body, BodyKind::Length(3));
        assert_eq!(&buf[..3], b"abc");
        let _ = buf.split_to(3);
        let b = parse_request(&mut buf, &l).unwrap().unwrap();
        assert_eq!(b.path_bytes(), b"/b");
        assert_eq!(&buf[..], b"GET /c");
        assert_eq!(parse_request(&mut buf, &l), Ok(None));
    }

    #[test]
    fn byte_by_byte_matches_one_shot() {
        let raw = b"\r\n\r\nPUT /up?z HTTP/1.1\r\nHost: h:8080\r\nTransfer-Encoding: chunked\r\nConnection: x-a\r\nX-A: 1\r\n\r\n5\r\nhello";
        let mut whole = BytesMut::from(&raw[..]);
        let expected = parse_request(&mut whole, &Limits::default())
            .unwrap()
            .unwrap();
        let rest_expected = whole.clone();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in raw.iter() {
            buf.extend_from_slice(&[b]);
            if got.is_none() {
                got = parse_request(&mut buf, &Limits::default()).unwrap();
            }
        }
        let got = got.expect("complete");
        assert_eq!(got, expected);
        assert_eq!(buf, rest_expected);
        assert_eq!(got.body, BodyKind::Chunked);
        assert_eq!(got.headers[3].kind, HeaderKind::Skip);
    }

    #[test]
    fn partial_heads_return_none() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        for i in 0..raw.len() {
            assert_eq!(parse(&raw[..i]), Ok(None), "prefix {i}");
        }
        assert!(parse(raw).unwrap().is_some());
    }

    #[test]
    fn leading_empty_lines() {
        assert_eq!(
            ok(b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").path_bytes(),
            b"/"
        );
        assert_eq!(
            err(b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("bare LF in message head")
        );
        assert_eq!(
            err(b" GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("invalid request line")
        );
    }

    #[test]
    fn http10_persistence() {
        let h = ok(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(h.version, Version::Http10);
        assert_eq!(h.host, None);
        assert!(!h.keep_alive);
        assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n").keep_alive);
        assert!(
            !ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: a\r\nConnection: close\r\n\r\n")
                .keep_alive
        );
        assert!(ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: ,keep-alive,\r\n\r\n").keep_alive);
    }

    #[test]
    fn absolute_form() {
        let h = ok(b"GET hTTp://Example.com:8080/a/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(h.host_bytes(), Some(&b"Example.com:8080"[..]));
        assert_eq!(h.path_bytes(), b"/a/b");
        assert_eq!(h.query_bytes(), Some(&b"x=1"[..]));
        let h = ok(b"GET https://h HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!((h.path_bytes(), h.query), (&b"/"[..], None));
        let h = ok(b"GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(h.path_bytes(), b"/");
        assert_eq!(h.query_bytes(), Some(&b"q=1"[..]));
        let h = ok(b"GET http://[::1]:80/ HTTP/1.0\r\n\r\n");
        assert_eq!(h.host_bytes(), Some(&b"[::1]:80"[..]));
        assert_eq!(h.path_bytes(), b"/");
        let bad = b400("invalid authority in request-target");
        assert_eq!(err(b"GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n"), bad);
        assert_eq!(err(b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), bad);
        assert_eq!(err(b"GET http://h:99999/ HTTP/1.1\r\nHost: h\r\n\r\n"), bad);
        assert_eq!(
            err(b"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("invalid request-target")
        );
        assert_eq!(
            err(b"GET http://h/#f HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("fragment in request-target")
        );
        assert_eq!(
            err(b"GET http://h#f HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("fragment in request-target")
        );
        // Host is still required (and validated) with absolute-form in 1.1.
        assert_eq!(
            err(b"GET http://h/ HTTP/1.1\r\n\r\n"),
            b400("missing Host header")
        );
        assert_eq!(
            err(b"GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n"),
            b400("invalid Host header")
        );
    }

    #[test]
    fn asterisk_form() {
        let h = ok(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(h.method_kind, Method::Options);
        assert_eq!(h.path_bytes(), b"*");
        assert_eq!(h.query, None);
        assert_eq!(
            err(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("asterisk-form request-target requires OPTIONS")
        );
    }

    #[test]
    fn connect_and_authority_form() {
        let e = HttpError::NotImplemented("CONNECT is not supported");
        assert_eq!(err(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"), e);
        assert_eq!(
            err(b"GET h:443 HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("invalid request-target")
        );
        assert_eq!(
            err(b"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("invalid request-target")
        );
    }

    #[test]
    fn methods() {
        for (m, k) in [
            ("GET", Method::Get),
            ("HEAD", Method::Head),
            ("POST", Method::Post),
            ("PUT", Method::Put),
            ("DELETE", Method::Delete),
            ("PATCH", Method::Patch),
            ("OPTIONS", Method::Options),
            ("TRACE", Method::Trace),
            ("PROPFIND", Method::Other),
            ("get", Method::Other),
        ] {
            let h = ok(format!("{m} / HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            assert_eq!(h.method_kind, k);
            assert_eq!(h.method_bytes(), m.as_bytes());
        }
        assert!(Method::Put.is_idempotent() && Method::Delete.is_idempotent());
        assert!(!Method::Post.is_idempotent() && !Method::Patch.is_idempotent());
        assert!(!Method::Other.is_idempotent());
        assert!(Method::Get.is_safe() && !Method::Put.is_safe());
        assert_eq!(
            err(b"GE(T / HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("invalid request line")
        );
    }

    #[test]
    fn header_kinds() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nTE: trailers\r\nTrailer: x\r\nUpgrade: h2c\r\nProxy-Authorization: x\r\nProxy-Connection: x\r\nExpect: 100-continue\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\nContent-Length: 0\r\nX-Forwarded-For: a\r\nx-request-id: r\r\nAccept: */*\r\n\r\n";
        let h = ok(raw);
        let kinds: Vec<_> = h.headers.iter().map(|x| x.kind).collect();
        let mut want = vec![HeaderKind::Host];
        want.extend([HeaderKind::Skip; 11]);
        want.extend([
            HeaderKind::XForwardedFor,
            HeaderKind::RequestId,
            HeaderKind::Regular,
        ]);
        assert_eq!(kinds, want);
        assert_eq!(h.body, BodyKind::Length(0));
        // Expect without content does not ask for 100 Continue.
        assert!(!h.expect_continue);
    }

    #[test]
    fn connection_listed_headers_skipped() {
        let h = ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Foo\r\nx-foo: 1\r\nX-Bar: 2\r\nX-FOO: 3\r\n\r\n");
        let kinds: Vec<_> = h.headers.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                HeaderKind::Host,
                HeaderKind::Skip,
                HeaderKind::Skip,
                HeaderKind::Regular,
                HeaderKind::Skip
            ]
        );
        assert!(!h.keep_alive);
        // Proxy-managed fields cannot be stripped through Connection.
        let h = ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: host, x-forwarded-for, x-request-id\r\nX-Forwarded-For: a\r\nX-Request-Id: r\r\n\r\n");
        let kinds: Vec<_> = h.headers.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                HeaderKind::Host,
                HeaderKind::Skip,
                HeaderKind::XForwardedFor,
                HeaderKind::RequestId
            ]
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: a b\r\n\r\n"),
            b400("invalid Connection header")
        );
    }

    #[test]
    fn framing_rules() {
        assert_eq!(ok(&req_with("Content-Length: 5")).body, BodyKind::Length(5));
        assert_eq!(
            ok(&req_with("Content-Length: 007")).body,
            BodyKind::Length(7)
        );
        assert_eq!(
            ok(&req_with("Transfer-Encoding: chunked")).body,
            BodyKind::Chunked
        );
        assert_eq!(
            ok(&req_with("Transfer-Encoding: ChUnKeD")).body,
            BodyKind::Chunked
        );
        assert_eq!(
            ok(&req_with("Transfer-Encoding: ,chunked ,")).body,
            BodyKind::Chunked
        );
        assert_eq!(
            err(&req_with("Content-Length: 5\r\nTransfer-Encoding: chunked")),
            b400("both Content-Length and Transfer-Encoding")
        );
        assert_eq!(
            err(&req_with("Transfer-Encoding: chunked\r\nContent-Length: 5")),
            b400("both Content-Length and Transfer-Encoding")
        );
        let multi = b400("multiple Content-Length values");
        assert_eq!(
            err(&req_with("Content-Length: 5\r\nContent-Length: 5")),
            multi
        );
        assert_eq!(err(&req_with("Content-Length: 5, 5")), multi);
        assert_eq!(
            err(&req_with("Content-Length: 5\r\nContent-Length: 6")),
            multi
        );
        let inv = b400("invalid Content-Length");
        for v in [
            "abc",
            "-1",
            "+5",
            "5 5",
            "0x10",
            "",
            "5,",
            "1.0",
            "18446744073709551616",
        ] {
            assert_eq!(
                err(&req_with(&format!("Content-Length: {v}"))),
                inv,
                "{v:?}"
            );
        }
        assert_eq!(
            err(&req_with("Transfer-Encoding: gzip")),
            b400("final transfer coding is not chunked")
        );
        let not_last = b400("chunked must be the final transfer coding, applied once");
        assert_eq!(err(&req_with("Transfer-Encoding: chunked, gzip")), not_last);
        assert_eq!(
            err(&req_with("Transfer-Encoding: chunked, chunked")),
            not_last
        );
        assert_eq!(
            err(&req_with(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
            )),
            not_last
        );
        let unsupported = HttpError::NotImplemented("unsupported transfer coding");
        assert_eq!(
            err(&req_with("Transfer-Encoding: gzip, chunked")),
            unsupported
        );
        assert_eq!(
            err(&req_with(
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked"
            )),
            unsupported
        );
        assert_eq!(
            err(&req_with("Transfer-Encoding: x;q=1, chunked")),
            unsupported
        );
        assert_eq!(
            err(&req_with("Transfer-Encoding: ")),
            b400("empty Transfer-Encoding")
        );
        assert_eq!(
            err(&req_with("Transfer-Encoding: chu\"nked")),
            b400("invalid Transfer-Encoding")
        );
        assert_eq!(
            err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            b400("Transfer-Encoding in an HTTP/1.0 request")
        );
        assert_eq!(
            ok(b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n").body,
            BodyKind::Length(2)
        );
    }

    #[test]
    fn body_size_limit() {
        let max = crate::http::DEFAULT_MAX_BODY_BYTES;
        assert_eq!(
            ok(&req_with(&format!("Content-Length: {max}"))).body,
            BodyKind::Length(max)
        );
        assert_eq!(
            err(&req_with(&format!("Content-Length: {}", max + 1))),
            HttpError::BodyTooLarge
        );
        let l = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            parse_with(&req_with("Content-Length: 11"), &l),
            Err(HttpError::BodyTooLarge)
        );
    }

    #[test]
    fn control_characters_and_line_endings() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"),
            b400("control character in message head")
        );
        assert_eq!(
            err(b"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("control character in message head")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n"),
            b400("control character in message head")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"),
            b400("bare CR in message head")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\nHost: h\r\n\r\n"),
            b400("bare LF in message head")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\n\n"),
            b400("bare LF in message head")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\n\n"),
            b400("bare LF in message head")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"),
            b400("obsolete line folding is not allowed")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n"),
            b400("obsolete line folding is not allowed")
        );
        // HTAB inside a value is fine.
        assert_eq!(
            ok(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\r\n\r\n").header("x"),
            Some(&b"a\tb"[..])
        );
        // obs-text in a value is fine (RFC 9110 5.5).
        assert!(
            parse(b"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn header_name_rules() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n"),
            b400("invalid header name")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n"),
            b400("invalid header name")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nFo(o: x\r\n\r\n"),
            b400("invalid header name")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n"),
            b400("invalid header name")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"),
            b400("invalid header name")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nX\xc3: x\r\n\r\n"),
            b400("invalid header name")
        );
    }

    #[test]
    fn host_rules() {
        assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), b400("missing Host header"));
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
            b400("multiple Host headers")
        );
        assert_eq!(
            err(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
            b400("multiple Host headers")
        );
        for good in [
            "h",
            "example.com",
            "h:1",
            "h:65535",
            "[::1]",
            "[2001:db8::1]:443",
            "a-b.c_d~e",
            "1.2.3.4:80",
            "ex%41mple",
        ] {
            let h = ok(format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n").as_bytes());
            assert_eq!(h.host_bytes(), Some(good.as_bytes()), "{good}");
        }
        for badh in [
            "", "a b", "a@b", "a/b", "h:", "h:65536", "h:abc", "h:123456", "[::1", "[]", "[::1]x",
            "a,b", "h:1:2", "a%zz", "\"h\"",
        ] {
            assert_eq!(
                err(format!("GET / HTTP/1.1\r\nHost: {badh}\r\n\r\n").as_bytes()),
                b400("invalid Host header"),
                "{badh:?}"
            );
        }
        assert_eq!(
            err(b"GET / HTTP/1.0\r\nHost: a/b\r\n\r\n"),
            b400("invalid Host header")
        );
    }

    #[test]
    fn versions() {
        let v = b400("unsupported HTTP version");
        assert_eq!(err(b"GET / HTTP/1.2\r\nHost: h\r\n\r\n"), v);
        assert_eq!(err(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"), v);
        assert_eq!(err(b"GET / http/1.1\r\nHost: h\r\n\r\n"), v);
        assert_eq!(err(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), v);
        assert_eq!(
            err(b"GET / HTTP/1.1x\r\nHost: h\r\n\r\n"),
            b400("invalid line ending")
        );
        assert_eq!(err(b"GET /\r\n\r\n"), b400("invalid request line"));
        assert_eq!(
            err(b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("invalid request line")
        );
    }

    #[test]
    fn dot_segments_are_rejected() {
        for p in [
            &b"/a/../b"[..],
            b"/a/./b",
            b"/a/..",
            b"/..",
            b"/a/%2e%2e/b",
            b"/a/%2E./b",
            b"/a/..%2fb",
            b"/a/%2e%2e%5cb",
        ] {
            assert!(has_dot_segment(p), "{}", String::from_utf8_lossy(p));
        }
        for p in [
            &b"/"[..],
            b"/a/b",
            b"/a/...",
            b"/a/.b",
            b"/a/b..",
            b"/a%2fb",
            b"/v1.2/x",
        ] {
            assert!(!has_dot_segment(p), "{}", String::from_utf8_lossy(p));
        }
        let mut buf = BytesMut::from(&b"GET /public/../admin HTTP/1.1\r\nHost: h\r\n\r\n"[..]);
        assert_eq!(
            parse_request(&mut buf, &Limits::default()),
            Err(bad("dot-segment in request-target"))
        );
    }

    #[test]
    fn origin_form_characters() {
        let inv = b400("invalid character in request-target");
        for c in ["\"", "<", ">", "\\", "^", "`", "{", "|", "}", "\u{e9}"] {
            let raw = format!("GET /a{c}b HTTP/1.1\r\nHost: h\r\n\r\n");
            assert!(
                matches!(err(raw.as_bytes()), HttpError::BadRequest(_)),
                "{c:?}"
            );
        }
        assert_eq!(err(b"GET /a\"b HTTP/1.1\r\nHost: h\r\n\r\n"), inv);
        assert_eq!(err(b"GET /a{b HTTP/1.1\r\nHost: h\r\n\r\n"), inv);
        assert!(matches!(
            err(b"GET /a\xffb HTTP/1.1\r\nHost: h\r\n\r\n"),
            HttpError::BadRequest(_)
        ));
        assert!(matches!(
            err(b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"),
            HttpError::BadRequest(_)
        ));
        let pct = b400("invalid percent-encoding in request-target");
        assert_eq!(err(b"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n"), pct);
        assert_eq!(err(b"GET /%4 HTTP/1.1\r\nHost: h\r\n\r\n"), pct);
        assert_eq!(err(b"GET /?%4g HTTP/1.1\r\nHost: h\r\n\r\n"), pct);
        assert_eq!(
            err(b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"),
            b400("fragment in request-target")
        );
        let h = ok(b"GET //a/%2F:@!$&'()*+,;=-._~?q=/?x HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(h.path_bytes(), b"//a/%2F:@!$&'()*+,;=-._~");
        assert_eq!(h.query_bytes(), Some(&b"q=/?x"[..]));
        assert_eq!(
            ok(b"GET /? HTTP/1.1\r\nHost: h\r\n\r\n").query_bytes(),
            Some(&b""[..])
        );
    }

    #[test]
    fn expect_rules() {
        let h = ok(&req_with("Content-Length: 5\r\nExpect: 100-Continue"));
        assert!(h.expect_continue);
        assert!(
            ok(&req_with(
                "Transfer-Encoding: chunked\r\nExpect: 100-continue"
            ))
            .expect_continue
        );
        assert!(!ok(&req_with("Expect: 100-continue")).expect_continue);
        assert!(
            !ok(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
                .expect_continue
        );
        assert_eq!(err(&req_with("Expect: foo")), HttpError::ExpectationFailed);
        assert_eq!(
            err(&req_with("Expect: 100-continue, foo")),
            HttpError::ExpectationFailed
        );
        assert_eq!(
            err(&req_with("Expect: 100-continue\r\nExpect: x=1")),
            HttpError::ExpectationFailed
        );
    }

    #[test]
    fn header_count_limit() {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
        for i in 0..99 {
            raw.push_str(&format!("X-{i}: v\r\n"));
        }
        let h = ok(format!("{raw}\r\n").as_bytes());
        assert_eq!(h.headers.len(), 100);
        raw.push_str("X-last: v\r\n");
        assert_eq!(
            err(format!("{raw}\r\n").as_bytes()),
            HttpError::HeadTooLarge
        );
        let l = Limits {
            max_headers: 1,
            ..Limits::default()
        };
        assert!(parse_with(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &l)
            .unwrap()
            .is_some());
        assert_eq!(
            parse_with(b"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n", &l),
            Err(HttpError::HeadTooLarge)
        );
        // Configured values beyond the stack capacity are clamped.
        let l = Limits {
            max_headers: 10_000,
            ..Limits::default()
        };
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
        for i in 0..MAX_HEADERS_CAPACITY {
            raw.push_str(&format!("X-{i}: v\r\n"));
        }
        assert_eq!(
            parse_with(format!("{raw}\r\n").as_bytes(), &l),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn head_size_limit() {
        let l = Limits {
            max_head_bytes: 64,
            ..Limits::default()
        };
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(parse_with(raw, &l).unwrap().is_some());
        let big = format!("GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n", "a".repeat(40));
        assert_eq!(parse_with(big.as_bytes(), &l), Err(HttpError::HeadTooLarge));
        // Incomplete but already over the limit.
        assert_eq!(
            parse_with(&big.as_bytes()[..64], &l),
            Err(HttpError::HeadTooLarge)
        );
        assert_eq!(parse_with(&big.as_bytes()[..63], &l), Ok(None));
        // Exactly at the limit is accepted.
        let exact = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "a".repeat(64 - 32)
        );
        assert_eq!(exact.len(), 64);
        assert!(parse_with(exact.as_bytes(), &l).unwrap().is_some());
        let default_big = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "a".repeat(40_000)
        );
        assert_eq!(err(default_big.as_bytes()), HttpError::HeadTooLarge);
    }

    #[test]
    fn uri_length_limit() {
        let max = crate::http::DEFAULT_MAX_URI_BYTES;
        let at = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(max - 1));
        assert_eq!(ok(at.as_bytes()).target.len(), max);
        let over = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(max));
        assert_eq!(err(over.as_bytes()), HttpError::UriTooLong);
        // Detected while the request line is still incomplete.
        let partial = format!("GET /{}", "a".repeat(max + REQUEST_LINE_SLACK));
        assert_eq!(err(partial.as_bytes()), HttpError::UriTooLong);
        let partial = format!("GET /{}", "a".repeat(max));
        assert_eq!(parse(partial.as_bytes()), Ok(None));
        let l = Limits {
            max_uri_bytes: 4,
            ..Limits::default()
        };
        assert_eq!(
            parse_with(b"GET /abcd HTTP/1.1\r\nHost: h\r\n\r\n", &l),
            Err(HttpError::UriTooLong)
        );
        assert!(parse_with(b"GET /abc HTTP/1.1\r\nHost: h\r\n\r\n", &l)
            .unwrap()
            .is_some());
    }

    #[test]
    fn error_leaves_buffer_untouched() {
        let raw = b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n";
        let mut buf = BytesMut::from(&raw[..]);
        assert!(parse_request(&mut buf, &Limits::default()).is_err());
        assert_eq!(&buf[..], &raw[..]);
    }

    fn valid_request() -> impl Strategy<Value = Vec<u8>> {
        prop::sample::select(vec![
            &b"GET /a?b=c HTTP/1.1\r\nHost: h\r\nConnection: x-y\r\nX-Y: 1\r\n\r\n"[..],
            b"POST http://h:1/p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
            b"PUT /u HTTP/1.1\r\nHost: [::1]\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ])
        .prop_map(|s| s.to_vec())
    }

    fn check_invariants(res: Result<Option<RequestHead>, HttpError>, limits: &Limits) {
        if let Ok(Some(h)) = res {
            assert!(h.head_len() <= limits.max_head_bytes);
            assert!(h.headers.len() <= limits.max_headers);
            for s in [h.method, h.target, h.path]
                .into_iter()
                .chain(h.query)
                .chain(h.host)
                .chain(h.headers.iter().flat_map(|x| [x.name, x.value]))
            {
                assert!(s.start <= s.end && s.end as usize <= h.buf.len());
            }
            assert_ne!(h.body, BodyKind::CloseDelimited);
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
            let limits = Limits { max_head_bytes: 256, max_uri_bytes: 32, max_headers: 4, ..Limits::default() };
            for l in [&Limits::default(), &limits] {
                let mut buf = BytesMut::from(&data[..]);
                check_invariants(parse_request(&mut buf, l), l);
            }
        }

        #[test]
        fn never_panics_on_mutated_requests(
            base in valid_request(),
            muts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        ) {
            let mut data = base;
            for (idx, byte, op) in muts {
                let i = idx.index(data.len() + 1);
                match op {
                    0 if i < data.len() => data[i] = byte,
                    1 => data.insert(i, byte),
                    _ if i < data.len() => { data.remove(i); }
                    _ => {}
                }
            }
            let l = Limits::default();
            let mut buf = BytesMut::from(&data[..]);
            let one_shot = parse_request(&mut buf, &l);
            check_invariants(one_shot.clone(), &l);
            // Feeding in two pieces gives the same verdict.
            let mut split = BytesMut::from(&data[..data.len() / 2]);
            let first = parse_request(&mut split, &l);
            if let Ok(None) = first {
                split.extend_from_slice(&data[data.len() / 2..]);
                prop_assert_eq!(parse_request(&mut split, &l), one_shot);
            }
        }
    }
}
