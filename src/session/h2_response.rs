//! A [`Response`] as an HTTP/2 response head: `:status` and lowercase fields (RFC 9113 §8.3.2,
//! §8.2.1), and what body follows.
//!
//! Owns: [`response_head`], which lists the fields of an error (JSON), a mock (its head rendered
//! at config load, read back line by line) or an origin's response (its end-to-end fields),
//! then the framing (`content-length` only when it is right for what follows) and the fields
//! the response filter added, in the same order as the HTTP/1 serialiser, minus the
//! connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2: `connection`, `keep-alive`,
//! `proxy-connection`, `transfer-encoding`, `upgrade`); [`BodyPlan`], whether DATA follows (none
//! for HEAD, RFC 9110 §9.3.2, nor for 1xx/204/304, RFC 9110 §6.4.1); and [`trailer_fields`],
//! an origin's chunked trailer lines as HTTP/2 trailer fields. Leaves out: HPACK and frames
//! (`crate::http2`), and writing (the stream, `super::h2`). Data flow: lifecycle → `Response`
//! → [`ResponseFields`] (one buffer, one span list) → `Connection::send_headers`.

use crate::compress::field_value;
use crate::fmt::put_decimal;
use crate::http::{status_has_content, BodyEncoder, HeaderKind};
use crate::policy::cors;
use crate::response::{Response, Source};
use crate::throttle::worker::Throttled;
use bytes::BytesMut;

/// Fields that are never sent over HTTP/2 (RFC 9113 §8.2.2).
const CONNECTION_SPECIFIC: &[&[u8]] = &[
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// A response's fields, lowercase, in one buffer (two allocations per response, not one per
/// field).
#[derive(Debug, Default)]
pub struct ResponseFields {
    buf: BytesMut,
    /// (name start, name end, value end) into `buf`; the value starts at the name's end.
    spans: Vec<(usize, usize, usize)>,
}

impl ResponseFields {
    /// Appends a field, its name lowercased (RFC 9113 §8.2.1), unless it is connection-specific.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        if CONNECTION_SPECIFIC
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
        {
            return;
        }
        let start = self.buf.len();
        self.buf.extend(name.iter().map(u8::to_ascii_lowercase));
        let name_end = self.buf.len();
        self.buf.extend_from_slice(value);
        self.spans.push((start, name_end, self.buf.len()));
    }

    /// The fields in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(|&(s, n, e)| {
            (
                self.buf.get(s..n).unwrap_or_default(),
                self.buf.get(n..e).unwrap_or_default(),
            )
        })
    }

    /// The value of the first field named `name` (lowercase).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Bytes of names and values (the access log's head size, without HPACK).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Appends `name: value` lines (`\r\n` ended, as a rendered head or a trailer section),
    /// skipping a status line and anything that is not a field line.
    fn push_lines(&mut self, lines: &[u8]) {
        self.push_lines_except(lines, |_| false);
    }

    /// [`ResponseFields::push_lines`] without the fields `skip` names.
    fn push_lines_except(&mut self, lines: &[u8], skip: impl Fn(&[u8]) -> bool) {
        for line in lines.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            if line.starts_with(b"HTTP/") {
                continue;
            }
            let (name, rest) = line.split_at(colon);
            let value = rest.get(1..).unwrap_or_default();
            let value = value.trim_ascii();
            if !skip(name) {
                self.push(name, value);
            }
        }
    }
}

/// Whether DATA frames follow the response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// The head ends the stream: HEAD, 1xx/204/304, or an empty body.
    None,
    /// The body held in memory ([`Response::static_body`]).
    Static,
    /// The body streams from the response's source (relay).
    Streamed,
}

/// A response head for HTTP/2 (see the module docs).
#[derive(Debug)]
pub struct H2ResponseHead {
    pub status: u16,
    pub fields: ResponseFields,
    pub body: BodyPlan,
}

/// The HTTP/2 head of `r`. `head_only`: the request was HEAD. For an origin's response, the
/// framing the relay chose is in its `Source::Origin::framing` (`Length` keeps the
/// `content-length`; anything else is delimited by END_STREAM).
pub fn response_head(r: &Response<'_>, head_only: bool) -> H2ResponseHead {
    let mut f = ResponseFields::default();
    let content = status_has_content(r.status) && !head_only;
    let body = match &r.source {
        Source::Error(e) => {
            f.push(b"content-type", b"application/json");
            let mut n = BytesMut::new();
            put_decimal(&mut n, e.body().len() as u64);
            f.push(b"content-length", &n);
            // the error's own fields, as HTTP/1 writes them (a 401's `www-authenticate`)
            f.push_lines(e.fields());
            if content && !r.static_body().is_empty() {
                BodyPlan::Static
            } else {
                BodyPlan::None
            }
        }
        Source::Mock(&ref m) | Source::Held(ref m) => {
            // status line, configured fields and content-length (none for 204/304), as
            // rendered at config load (or while serving: a held response)
            // (without their own `access-control-*` when the gateway's CORS fields replace them)
            // (nor the fields the route's response mapping removes)
            let edits = r.added.edits.as_ref();
            match (&r.added.cors, edits) {
                (None, None) => f.push_lines(&m.head),
                (cors, edits) => f.push_lines_except(&m.head, |n| {
                    (cors.is_some() && cors::is_cors_field(n))
                        || edits.is_some_and(|e| e.removes(n))
                }),
            }
            if content && !r.static_body().is_empty() {
                BodyPlan::Static
            } else {
                BodyPlan::None
            }
        }
        Source::Origin {
            head,
            framing,
            meta_length,
        } => {
            let cors = r.added.cors.is_some();
            let edits = r.added.edits.as_ref();
            for h in &head.headers {
                let name = head.slice(h.name);
                if h.kind == HeaderKind::Regular
                    && !(cors && cors::is_cors_field(name))
                    && !edits.is_some_and(|e| e.removes(name))
                {
                    f.push(
                        name,
                        &field_value(&r.added.encoding, name, head.slice(h.value)),
                    );
                }
            }
            let length = match framing {
                Some(BodyEncoder::Length { remaining }) => Some(*remaining),
                _ => *meta_length,
            };
            // RFC 9110 §8.6: no content-length on 1xx/204; on 304 it describes the selected
            // representation, as the origin said
            if let Some(n) = length.filter(|_| r.status != 204 && r.status >= 200) {
                let mut v = BytesMut::new();
                put_decimal(&mut v, n);
                f.push(b"content-length", &v);
            }
            let empty = matches!(
                framing,
                None | Some(BodyEncoder::Empty) | Some(BodyEncoder::Length { remaining: 0 })
            );
            if content && !empty {
                BodyPlan::Streamed
            } else {
                BodyPlan::None
            }
        }
    };
    let added = &r.added;
    if let Some(t) = &added.rate_limit {
        rate_limit_fields(&mut f, t);
    }
    if let Some(date) = &added.date {
        f.push(b"date", date);
    }
    if let Some(id) = added.request_id {
        f.push(b"x-request-id", id);
    }
    if let Some(v) = added.hsts {
        f.push(b"strict-transport-security", v.as_bytes());
    }
    if let Some((name, on)) = added.canary {
        f.push(name.as_bytes(), if on { b"1" } else { b"0" });
    }
    if let Some(e) = &added.edits {
        e.each(|n, v| f.push(n, v));
    }
    if let Some(c) = &added.cors {
        let vary_done = f
            .iter()
            .any(|(n, v)| n == b"vary" && cors::vary_covers_origin(v));
        c.each(vary_done, |n, v| f.push(n, v));
    }
    crate::compress::each_field(&added.encoding, |n, v| f.push(n, v));
    H2ResponseHead {
        status: r.status,
        fields: f,
        body,
    }
}

/// An origin's chunked trailer section (validated `name: value\r\n` lines, see
/// [`crate::http::BodyChunk::End`]) as HTTP/2 trailer fields (RFC 9113 §8.1).
pub fn trailer_fields(trailers: &[u8]) -> ResponseFields {
    let mut f = ResponseFields::default();
    f.push_lines(trailers);
    f
}

/// `retry-after`, `ratelimit-policy`, `ratelimit`, as the HTTP/1 serialiser writes them.
fn rate_limit_fields(f: &mut ResponseFields, t: &Throttled) {
    let mut lines = BytesMut::new();
    super::h1::rate_limit_fields(&mut lines, t);
    f.push_lines(&lines);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MockResponse;
    use crate::error::GatewayError;
    use crate::http::{parse_response, BodyKind};
    use bytes::Bytes;

    fn pairs(f: &ResponseFields) -> Vec<(String, String)> {
        f.iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn an_error_is_json_with_its_length() {
        let mut r = Response::error(GatewayError::NoRoute);
        r.added.date = Some(*b"Thu, 01 Jan 1970 00:00:00 GMT");
        r.added.request_id = Some(b"rid");
        let h = response_head(&r, false);
        assert_eq!(h.status, 404);
        assert_eq!(h.body, BodyPlan::Static);
        assert_eq!(
            pairs(&h.fields),
            [
                ("content-type", "application/json"),
                ("content-length", "23"),
                ("date", "Thu, 01 Jan 1970 00:00:00 GMT"),
                ("x-request-id", "rid"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        // HEAD: same fields, no DATA
        let h = response_head(&r, true);
        assert_eq!(h.body, BodyPlan::None);
        assert_eq!(h.fields.get(b"content-length"), Some(&b"23"[..]));
    }

    #[test]
    fn an_error_carries_its_own_fields_as_http1_does() {
        let h = response_head(&Response::error(GatewayError::Unauthorized), false);
        assert_eq!(h.status, 401);
        assert_eq!(h.fields.get(b"www-authenticate"), Some(&b"Bearer"[..]));
    }

    #[test]
    fn cors_fields_replace_a_mocks_own_and_merge_vary() {
        use crate::config::access::{CorsPolicy, OriginPattern};
        let policy = CorsPolicy {
            allow_origins: vec![OriginPattern::Exact("https://a.example".into())],
            allow_methods: vec![],
            any_method: false,
            allow_headers: vec![],
            any_header: false,
            expose_headers: None,
            max_age: None,
            allow_credentials: false,
        };
        let m = MockResponse {
            status: 200,
            head: Bytes::from_static(
                b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nvary: Origin\r\ncontent-length: 2\r\n",
            ),
            body: Bytes::from_static(b"ok"),
            present: Default::default(),
        };
        let mut r = Response::mock(&m);
        r.added.cors = Some(crate::policy::cors::CorsFields {
            origin: Some(b"https://a.example"),
            policy: &policy,
        });
        let h = response_head(&r, false);
        assert_eq!(
            pairs(&h.fields),
            [
                ("vary", "Origin"),
                ("content-length", "2"),
                ("access-control-allow-origin", "https://a.example")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        // and HTTP/1 alike
        let mut out = BytesMut::new();
        crate::session::h1::write_head(&mut out, &r, crate::session::h1::ConnHeader::None);
        assert_eq!(
            &out[..],
            &b"HTTP/1.1 200 OK\r\nvary: Origin\r\ncontent-length: 2\r\naccess-control-allow-origin: https://a.example\r\n\r\n"[..]
        );
    }

    #[test]
    fn a_mock_head_is_read_back_lowercase_without_connection_fields() {
        let m = MockResponse {
            status: 201,
            head: Bytes::from_static(
                b"HTTP/1.1 201 Created\r\nX-Custom: a: b\r\nConnection: keep-alive\r\ncontent-length: 2\r\n",
            ),
            body: Bytes::from_static(b"ok"),
            present: Default::default(),
        };
        let h = response_head(&Response::mock(&m), false);
        assert_eq!(h.status, 201);
        assert_eq!(h.body, BodyPlan::Static);
        assert_eq!(
            pairs(&h.fields),
            [("x-custom", "a: b"), ("content-length", "2")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let m = MockResponse {
            status: 204,
            head: Bytes::from_static(b"HTTP/1.1 204 No Content\r\n"),
            body: Bytes::new(),
            present: Default::default(),
        };
        let h = response_head(&Response::mock(&m), false);
        assert_eq!((h.body, h.fields.len()), (BodyPlan::None, 0));
    }

    #[test]
    fn an_origin_response_keeps_end_to_end_fields_and_a_right_length() {
        let mut raw = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nKeep-Alive: 5\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"[..],
        );
        let head = parse_response(&mut raw, false, &crate::http::Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.body, BodyKind::Chunked);
        let mut r = Response::origin(&head, None);
        if let Source::Origin { framing, .. } = &mut r.source {
            *framing = Some(BodyEncoder::Chunked);
        }
        let h = response_head(&r, false);
        assert_eq!(h.body, BodyPlan::Streamed);
        assert_eq!(
            pairs(&h.fields),
            [
                ("content-type", "text/plain"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        // a length-delimited body keeps its content-length
        if let Source::Origin { framing, .. } = &mut r.source {
            *framing = Some(BodyEncoder::Length { remaining: 7 });
        }
        let h = response_head(&r, false);
        assert_eq!(h.fields.get(b"content-length"), Some(&b"7"[..]));
        // HEAD: the length as metadata, no DATA
        let r = Response::origin(&head, Some(9));
        let h = response_head(&r, true);
        assert_eq!(h.body, BodyPlan::None);
        assert_eq!(h.fields.get(b"content-length"), Some(&b"9"[..]));
    }

    #[test]
    fn no_content_statuses_send_no_data_and_204_no_length() {
        let mut raw = BytesMut::from(&b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"[..]);
        let head = parse_response(&mut raw, false, &crate::http::Limits::default())
            .unwrap()
            .unwrap();
        let mut r = Response::origin(&head, Some(5));
        if let Source::Origin { framing, .. } = &mut r.source {
            *framing = Some(BodyEncoder::Empty);
        }
        let h = response_head(&r, false);
        assert_eq!(h.body, BodyPlan::None);
        assert_eq!(h.fields.get(b"content-length"), None);
    }

    #[test]
    fn trailers_become_fields() {
        let f = trailer_fields(b"Grpc-Status: 0\r\nx-checksum: abc\r\n");
        assert_eq!(
            pairs(&f),
            [("grpc-status", "0"), ("x-checksum", "abc")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }
}
