//! Response head parsing (RFC 9112 4, 6.3, 9.3; RFC 9110 15).
//!
//! Owns [`parse_response`]: it validates an upstream response head at the
//! front of the origin connection buffer, splits exactly the head bytes off
//! as a frozen `Bytes`, and describes them in a [`ResponseHead`]: status,
//! reason, classified headers, body framing and whether the origin
//! connection can be reused. It leaves out the body (see `body.rs`) and the
//! decision what to send the client: every error here is an upstream
//! protocol error (`BadResponse`, or `HeadTooLarge`), which the proxy turns
//! into a 502.
//!
//! Data flow mirrors `request.rs`: leading CRLFs dropped, `fields::scan_head`
//! pre-scan (bare CR/LF, CTLs, obs-fold, `max_head_bytes`), httparse with the
//! strict default config on an on-stack header array, then the framing rules
//! of RFC 9112 6.3 given the request method (HEAD) and the status code.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;

use super::fields::{self, span_in, Coding, ConnectionOpts, ContentLength, Field, TransferCodings};
use super::{BodyKind, Header, HttpError, Limits, Span, Version, MAX_HEADERS_CAPACITY};

/// A validated response head. All spans index into `buf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Exactly the head bytes incl. the final CRLFCRLF.
    pub buf: Bytes,
    /// 100..=599 (RFC 9110 15).
    pub status: u16,
    /// The reason-phrase (possibly empty; may contain obs-text).
    pub reason: Span,
    pub version: Version,
    /// Hop-by-hop and framing fields are `Skip`, all others `Regular`.
    pub headers: SmallVec<[Header; 24]>,
    pub body: BodyKind,
    /// The origin connection is reusable after this message: false for
    /// CloseDelimited, for "Connection: close", for 1.0 without keep-alive.
    pub keep_alive: bool,
    /// Which of the fields the gateway adds when absent the origin already sent, noted while
    /// the fields are classified (the response filter needs no second pass over them).
    pub present: Present,
}

/// End-to-end fields a gateway adds to a response unless it already has them: `date` (RFC
/// 9110 §6.6.1), `x-request-id`, `strict-transport-security` (RFC 6797 §6.1).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Present {
    pub date: bool,
    pub request_id: bool,
    pub hsts: bool,
}

impl Present {
    /// Notes `name` if it is one of them (names case-insensitive, RFC 9110 §5.1): the parser
    /// for an origin's fields, and whoever renders a response in memory (a mock at load, a
    /// function's answer) for its own.
    pub fn note(&mut self, name: &[u8]) {
        match name.len() {
            4 => self.date |= name.eq_ignore_ascii_case(b"date"),
            12 => self.request_id |= name.eq_ignore_ascii_case(b"x-request-id"),
            25 => self.hsts |= name.eq_ignore_ascii_case(b"strict-transport-security"),
            _ => {}
        }
    }
}

impl ResponseHead {
    /// The bytes of a span (empty if out of range).
    pub fn slice(&self, s: Span) -> &[u8] {
        s.get(&self.buf)
    }

    /// 1xx: the final response is still to come (RFC 9110 15.2).
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    pub fn reason_bytes(&self) -> &[u8] {
        self.slice(self.reason)
    }

    /// The value of the first header with this name (case-insensitive).
    pub fn header(&self, name_lowercase: &str) -> Option<&[u8]> {
        let name = name_lowercase.as_bytes();
        self.headers
            .iter()
            .find(|h| h.name.len() == name.len() && self.slice(h.name).eq_ignore_ascii_case(name))
            .map(|h| self.slice(h.value))
    }

    /// The Content-Length the head declares, as one valid number: every element of every
    /// Content-Length line `1*DIGIT` and all equal (RFC 9110 §8.6: such duplicates may be
    /// replaced by one value). None when absent, invalid or conflicting. For the metadata of a
    /// response without a body (HEAD), whose framing `parse_response` does not check.
    pub fn declared_length(&self) -> Option<u64> {
        let mut cl = ContentLength::default();
        for h in &self.headers {
            if Field::classify(self.slice(h.name)) == Field::ContentLength {
                cl.add(self.slice(h.value));
            }
        }
        cl.value.filter(|_| !cl.invalid && !cl.conflicting)
    }

    /// Length of the head in bytes.
    pub fn head_len(&self) -> usize {
        self.buf.len()
    }
}

fn bad(msg: &'static str) -> HttpError {
    HttpError::BadResponse(msg)
}

/// Whether a response with this status may carry content at all. 1xx, 204 and 304 never do
/// (RFC 9110 §6.4.1, §15.2, §15.3.5, §15.4.5): their message ends at the head (RFC 9112 §6.3
/// items 1-2), so whatever writes such a response must send neither content nor framing fields
/// (Content-Length / Transfer-Encoding; RFC 9110 §8.6: no Content-Length in 1xx and 204).
pub fn status_has_content(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

/// Parse a response head from the front of `buf`.
///
/// `request_was_head`: the request was HEAD, so there is no body whatever the
/// headers say. 1xx/204/304 -> `BodyKind::Empty` (RFC 9112 6.3 items 1-2).
/// `Ok(None)`: incomplete. On `Ok(Some)` the head bytes were split off the
/// front of `buf`. Errors are `BadResponse(..)` or `HeadTooLarge`.
///
/// Stricter than RFC 9112 6.3 where forwarding would be unsafe:
/// - Content-Length and Transfer-Encoding together -> `BadResponse`
///   (item 3 allows treating it as chunked; we refuse the smuggling vector);
/// - any transfer coding other than `chunked` -> `BadResponse`: the proxy
///   drops Transfer-Encoding and re-frames, so it could not forward e.g. a
///   gzip transfer coding faithfully (item 4 would read it close-delimited);
/// - Transfer-Encoding in an HTTP/1.0 response -> `BadResponse` (RFC 9112 6.1);
///
/// A 101 Switching Protocols parses like any 1xx (no content; what follows its head is the
/// new protocol's): whether one is acceptable is the outbound client's decision, which refuses
/// it unless the request asked for an upgrade (RFC 9110 §15.2.2, a WebSocket route).
///
/// Framing fields of bodiless responses (HEAD, 1xx, 204, 304) are ignored.
pub fn parse_response(
    buf: &mut BytesMut,
    request_was_head: bool,
    limits: &Limits,
) -> Result<Option<ResponseHead>, HttpError> {
    // RFC 9112 2.2 robustness: tolerate empty lines before the status-line.
    while buf.starts_with(b"\r\n") {
        buf.advance(2);
    }
    let Some(len) = fields::scan_head(buf, limits.max_head_bytes, usize::MAX, bad)? else {
        return Ok(None);
    };
    let mut head = parse_head(buf.get(..len).unwrap_or_default(), request_was_head, limits)?;
    head.buf = buf.split_to(len).freeze();
    Ok(Some(head))
}

fn parse_head(
    head: &[u8],
    request_was_head: bool,
    limits: &Limits,
) -> Result<ResponseHead, HttpError> {
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_CAPACITY];
    let slots = slots
        .get_mut(..limits.max_headers.min(MAX_HEADERS_CAPACITY))
        .unwrap_or_default();
    let mut res = httparse::Response::new(&mut []);
    match fields::strict_httparse().parse_response_with_uninit_headers(&mut res, head, slots) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(bad("malformed response head")),
        Err(e) => return Err(fields::map_httparse_error(e, bad)),
    }

    // RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    let version = match res.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(bad("unsupported HTTP version")),
    };
    // RFC 9110 15: status codes are 100..=599.
    let status = match res.code {
        Some(c @ 100..=599) => c,
        _ => return Err(bad("invalid status code")),
    };
    // httparse checked the layout "HTTP/1.x SP DDD" (13 bytes with the SP),
    // so the reason-phrase runs from offset 13 to the first CR. We take it
    // from the bytes because httparse blanks reasons containing obs-text.
    let line_end = head.iter().position(|&b| b == b'\r').unwrap_or(0);
    let reason_start = line_end.min(13);
    let reason = Span {
        start: u32::try_from(reason_start).unwrap_or(0),
        end: u32::try_from(line_end).unwrap_or(0),
    };

    let malformed = || bad("malformed response head");
    let mut headers: SmallVec<[Header; 24]> = SmallVec::new();
    let mut cl = ContentLength::default();
    let mut te = TransferCodings::default();
    let mut conn = ConnectionOpts::default();
    let mut present = Present::default();
    for h in res.headers.iter() {
        let field = Field::classify(h.name.as_bytes());
        match field {
            Field::ContentLength => cl.add(h.value),
            Field::TransferEncoding => te.add(h.value),
            Field::Connection => conn.add(h.value),
            Field::RequestId => present.request_id = true,
            Field::Other => present.note(h.name.as_bytes()),
            _ => {}
        }
        headers.push(Header {
            name: span_in(head, h.name.as_bytes()).ok_or_else(malformed)?,
            value: span_in(head, h.value).ok_or_else(malformed)?,
            kind: field.response_kind(),
        });
    }
    // RFC 9110 7.6.1: connection options are tokens.
    if conn.invalid {
        return Err(bad("invalid Connection header"));
    }

    // RFC 9112 6.3 items 1-2: HEAD responses, 1xx, 204 and 304 have no body.
    let bodiless = request_was_head || !status_has_content(status);
    let body = if bodiless {
        BodyKind::Empty
    } else {
        response_framing(version, &cl, &te)?
    };
    // RFC 9112 9.3 persistence; 9.6: a close-delimited body ends the connection.
    let keep_alive = !conn.close
        && (version == Version::Http11 || conn.keep_alive)
        && body != BodyKind::CloseDelimited;
    if conn.listed {
        fields::mark_connection_listed(head, &mut headers);
    }

    Ok(ResponseHead {
        buf: Bytes::new(),
        status,
        reason,
        version,
        headers,
        body,
        keep_alive,
        present,
    })
}

/// Response body length for a response that may have content (RFC 9112 6.3
/// items 3-8); see `parse_response` for where we are stricter.
fn response_framing(
    version: Version,
    cl: &ContentLength,
    te: &TransferCodings,
) -> Result<BodyKind, HttpError> {
    if te.present {
        // RFC 9112 6.1: Transfer-Encoding in a 1.0 message is faulty framing.
        if version == Version::Http10 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 response"));
        }
        // RFC 9112 6.3 item 3: sender error; refuse rather than guess.
        if cl.fields > 0 {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        return match te.outcome() {
            Coding::Chunked => Ok(BodyKind::Chunked),
            Coding::Unsupported => Err(bad("unsupported transfer coding")),
            Coding::Invalid(msg) => Err(bad(msg)),
        };
    }
    if cl.fields == 0 {
        // RFC 9112 6.3 item 8: read until the connection closes.
        return Ok(BodyKind::CloseDelimited);
    }
    // RFC 9112 6.3 item 5: invalid or differing values are unrecoverable;
    // identical repeated values ("5, 5") may be accepted (RFC 9110 8.6).
    if cl.invalid || cl.conflicting {
        return Err(bad("invalid Content-Length"));
    }
    cl.value
        .map(BodyKind::Length)
        .ok_or(bad("invalid Content-Length"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HeaderKind;
    use proptest::prelude::*;

    fn parse(b: &[u8], head_req: bool) -> Result<Option<ResponseHead>, HttpError> {
        let mut buf = BytesMut::from(b);
        parse_response(&mut buf, head_req, &Limits::default())
    }
    fn ok(b: &[u8]) -> ResponseHead {
        parse(b, false).expect("valid").expect("complete")
    }
    #[test]
    fn notes_the_fields_a_gateway_would_add() {
        let h = ok(b"HTTP/1.1 200 OK\r\nDATE: x\r\nX-Request-Id: r\r\n\
Strict-Transport-Security: max-age=1\r\nContent-Length: 0\r\n\r\n");
        let all = Present {
            date: true,
            request_id: true,
            hsts: true,
        };
        assert_eq!(h.present, all);
        let none = ok(b"HTTP/1.1 200 OK\r\nDates: x\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(none.present, Present::default());
    }

    fn err(b: &[u8]) -> HttpError {
        parse(b, false).expect_err("must be rejected")
    }
    fn res_with(header: &str) -> Vec<u8> {
        format!("HTTP/1.1 200 OK\r\n{header}\r\n\r\n").into_bytes()
    }

    #[test]
    fn content_length_response() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\nExpect: x\r\nX-Forwarded-Proto: y\r\n\r\nhello";
        let mut buf = BytesMut::from(&raw[..]);
        let h = parse_response(&mut buf, false, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..], b"hello");
        assert_eq!(h.status, 200);
        assert_eq!(h.reason_bytes(), b"OK");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.body, BodyKind::Length(5));
        assert!(h.keep_alive);
        assert!(!h.is_informational());
        assert_eq!(h.header("content-type"), Some(&b"text/plain"[..]));
        assert_eq!(h.head_len(), raw.len() - 5);
        let kinds: Vec<_> = h.headers.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                HeaderKind::Regular,
                HeaderKind::Skip,
                HeaderKind::Skip,
                HeaderKind::Regular,
                HeaderKind::Regular
            ]
        );
    }

    #[test]
    fn bodiless_responses() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        let h = parse(raw, true).unwrap().unwrap();
        assert_eq!(h.body, BodyKind::Empty);
        assert!(h.keep_alive);
        // HEAD: even broken framing is ignored.
        let h = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.body, BodyKind::Empty);
        for status in [204u16, 304] {
            let h = ok(format!("HTTP/1.1 {status} X\r\nContent-Length: 3\r\n\r\n").as_bytes());
            assert_eq!(h.body, BodyKind::Empty, "{status}");
            assert!(h.keep_alive);
        }
        let h = ok(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert!(h.is_informational());
        assert_eq!(h.body, BodyKind::Empty);
        let h = ok(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
        assert!(h.is_informational());
        assert_eq!(h.body, BodyKind::Empty);
        // a 101 is a head without content; the client decides whether it was asked for
        let h = ok(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\n",
        );
        assert!(h.is_informational());
        assert_eq!((h.status, h.body), (101, BodyKind::Empty));
    }

    #[test]
    fn informational_then_final_in_one_buffer() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
        let mut buf = BytesMut::from(&raw[..]);
        let l = Limits::default();
        let a = parse_response(&mut buf, false, &l).unwrap().unwrap();
        assert_eq!(a.status, 100);
        let b = parse_response(&mut buf, false, &l).unwrap().unwrap();
        assert_eq!((b.status, b.body), (201, BodyKind::Length(0)));
        assert!(buf.is_empty());
    }

    #[test]
    fn chunked_and_close_delimited() {
        let h = ok(&res_with("Transfer-Encoding: chunked"));
        assert_eq!(h.body, BodyKind::Chunked);
        assert!(h.keep_alive);
        let h = ok(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n");
        assert_eq!(h.body, BodyKind::CloseDelimited);
        assert!(!h.keep_alive);
        let h = ok(b"HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(h.body, BodyKind::CloseDelimited);
        assert!(!h.keep_alive);
    }

    #[test]
    fn declared_length_is_one_valid_value() {
        let head = |cl: &str| {
            parse(&res_with(cl), true)
                .expect("valid")
                .expect("complete")
        };
        assert_eq!(head("Content-Length: 5").declared_length(), Some(5));
        assert_eq!(
            head("Content-Length: 5, 5\r\nContent-Length: 5").declared_length(),
            Some(5)
        );
        for cl in [
            "Content-Length: 5, 6",
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: x",
            "Content-Length: 5,",
            "X-A: 1",
        ] {
            assert_eq!(head(cl).declared_length(), None, "{cl}");
        }
    }

    #[test]
    fn framing_errors() {
        let bad = HttpError::BadResponse;
        assert_eq!(
            err(&res_with("Transfer-Encoding: chunked\r\nContent-Length: 5")),
            bad("both Content-Length and Transfer-Encoding")
        );
        assert_eq!(
            err(&res_with("Transfer-Encoding: gzip, chunked")),
            bad("unsupported transfer coding")
        );
        assert_eq!(
            err(&res_with("Transfer-Encoding: gzip")),
            bad("final transfer coding is not chunked")
        );
        assert_eq!(
            err(&res_with("Transfer-Encoding: chunked, chunked")),
            bad("chunked must be the final transfer coding, applied once")
        );
        assert_eq!(
            err(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            bad("Transfer-Encoding in an HTTP/1.0 response")
        );
        assert_eq!(
            ok(&res_with("Content-Length: 5, 5")).body,
            BodyKind::Length(5)
        );
        assert_eq!(
            ok(&res_with("Content-Length: 5\r\nContent-Length: 5")).body,
            BodyKind::Length(5)
        );
        for v in ["5, 6", "abc", "", "-1", "99999999999999999999"] {
            assert_eq!(
                err(&res_with(&format!("Content-Length: {v}"))),
                bad("invalid Content-Length"),
                "{v}"
            );
        }
        assert_eq!(
            err(&res_with("Content-Length: 5\r\nContent-Length: 6")),
            bad("invalid Content-Length")
        );
    }

    #[test]
    fn persistence() {
        assert!(!ok(&res_with("Content-Length: 1\r\nConnection: close")).keep_alive);
        assert!(
            ok(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n")
                .keep_alive
        );
        assert!(!ok(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").keep_alive);
        let h = ok(&res_with(
            "Content-Length: 1\r\nConnection: X-A\r\nX-A: 1\r\nX-B: 2",
        ));
        let kinds: Vec<_> = h.headers.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                HeaderKind::Skip,
                HeaderKind::Skip,
                HeaderKind::Skip,
                HeaderKind::Regular
            ]
        );
        assert_eq!(
            err(&res_with("Connection: a/b")),
            HttpError::BadResponse("invalid Connection header")
        );
    }

    #[test]
    fn status_line() {
        assert_eq!(
            ok(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").reason_bytes(),
            b""
        );
        assert_eq!(
            ok(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n").reason_bytes(),
            b""
        );
        let h = ok(b"HTTP/1.1 404 Not \xe9 Found\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.reason_bytes(), b"Not \xe9 Found");
        assert_eq!(h.status, 404);
        let bad = HttpError::BadResponse;
        assert_eq!(err(b"HTTP/1.1 099 X\r\n\r\n"), bad("invalid status code"));
        assert_eq!(err(b"HTTP/1.1 600 X\r\n\r\n"), bad("invalid status code"));
        assert_eq!(err(b"HTTP/1.1 20 X\r\n\r\n"), bad("invalid status line"));
        assert_eq!(err(b"HTTP/1.1  200 X\r\n\r\n"), bad("invalid status line"));
        assert_eq!(
            err(b"HTTP/2 200 X\r\n\r\n"),
            bad("unsupported HTTP version")
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\nServer: x\r\n\r\n"),
            bad("bare LF in message head")
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nServer: x\r\n y\r\n\r\n"),
            bad("obsolete line folding is not allowed")
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nServer : x\r\n\r\n"),
            bad("invalid header name")
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n"),
            bad("control character in message head")
        );
    }

    #[test]
    fn limits() {
        let l = Limits {
            max_head_bytes: 40,
            max_headers: 1,
            ..Limits::default()
        };
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nA: b\r\nC: d\r\n\r\n"[..]);
        assert_eq!(
            parse_response(&mut buf, false, &l),
            Err(HttpError::HeadTooLarge)
        );
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nA: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"[..]);
        assert_eq!(
            parse_response(&mut buf, false, &l),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn byte_by_byte() {
        let raw = b"\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n0\r\n\r\n";
        let mut whole = BytesMut::from(&raw[..]);
        let expected = parse_response(&mut whole, false, &Limits::default())
            .unwrap()
            .unwrap();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in raw.iter() {
            buf.extend_from_slice(&[b]);
            if got.is_none() {
                got = parse_response(&mut buf, false, &Limits::default()).unwrap();
            }
        }
        assert_eq!(got, Some(expected));
        assert_eq!(buf, whole);
    }

    proptest! {
        #[test]
        fn never_panics(data in prop::collection::vec(any::<u8>(), 0..600), head_req: bool) {
            let small = Limits { max_head_bytes: 128, max_headers: 3, ..Limits::default() };
            for l in [&Limits::default(), &small] {
                let mut buf = BytesMut::from(&data[..]);
                if let Ok(Some(h)) = parse_response(&mut buf, head_req, l) {
                    prop_assert!(h.head_len() <= l.max_head_bytes);
                    prop_assert!((100..=599).contains(&h.status));
                    prop_assert!(h.reason.end as usize <= h.buf.len());
                }
            }
        }

        #[test]
        fn never_panics_on_mutated(
            muts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            head_req: bool,
        ) {
            let mut data = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: a\r\nA: 1\r\n\r\nabc".to_vec();
            for (idx, byte) in muts {
                let i = idx.index(data.len());
                data[i] = byte;
            }
            let mut buf = BytesMut::from(&data[..]);
            let _ = parse_response(&mut buf, head_req, &Limits::default());
        }
    }
}
