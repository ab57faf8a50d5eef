//! `mock` integrations: a static response, rendered once at load.
//!
//! Owns: validating a route's `mock = { status, body, headers }` (status range, header names
//! and values, fields tollgate sets itself, no content for 204/304 per RFC 9110 §6.4.1) and
//! pre-rendering its status line and header lines into one [`MockResponse`], so the hot path
//! copies bytes and adds only `date`, `x-request-id` and `connection`. Leaves out: writing it
//! (see [`crate::session::h1`]).

use bytes::Bytes;
use toml::Spanned;

use super::compile::{is_tchar, Ctx};
use super::raw;
use crate::error::reason_phrase;

/// A pre-rendered static response: status line and configured headers, then the body.
#[derive(Debug, Clone)]
pub struct MockResponse {
    pub status: u16,
    /// `HTTP/1.1 200 OK\r\n` + configured header lines + `content-length: N\r\n` (no final CRLF;
    /// no content-length, and an empty body, for 204 and 304).
    pub head: Bytes,
    pub body: Bytes,
    /// Which of the fields the response filter adds when absent are among `head`'s (noted as
    /// it is rendered): a mock's or a function's own `strict-transport-security` is sent
    /// instead of `tls.hsts`, never beside it.
    pub present: crate::http::Present,
}

impl MockResponse {
    /// A JSON error rendered while serving: `status` with `{"message": MESSAGE}` (the message
    /// JSON-escaped), in API Gateway's shape, for refusals whose words depend on the request.
    pub fn json_message(status: u16, message: &str) -> MockResponse {
        let body = serde_json::json!({ "message": message }).to_string();
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            reason_phrase(status),
            body.len()
        );
        MockResponse {
            status,
            head: Bytes::from(head),
            body: Bytes::from(body),
            present: crate::http::Present::default(),
        }
    }
}

impl MockResponse {
    /// A response rendered while serving from its parts: `status`, the fields in order (the
    /// caller's: names must be tokens and values free of CR, LF and NUL, as a parsed head's
    /// are; `content-length` and framing fields are never among them, they are written here),
    /// then the body (dropped for 204 and 304, RFC 9110 §6.4.1). Used by whatever replaces a
    /// body while serving (transformations, templates, compression, gateway responses).
    pub fn build<'f>(
        status: u16,
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
        body: Bytes,
    ) -> MockResponse {
        use bytes::BufMut;
        let mut head = bytes::BytesMut::with_capacity(128);
        head.put_slice(b"HTTP/1.1 ");
        crate::fmt::put_decimal(&mut head, u64::from(status));
        head.put_u8(b' ');
        head.put_slice(reason_phrase(status).as_bytes());
        head.put_slice(b"\r\n");
        let mut present = crate::http::Present::default();
        for (name, value) in fields {
            present.note(name);
            head.put_slice(name);
            head.put_slice(b": ");
            head.put_slice(value);
            head.put_slice(b"\r\n");
        }
        let content = crate::http::status_has_content(status);
        if content {
            head.put_slice(b"content-length: ");
            crate::fmt::put_decimal(&mut head, body.len() as u64);
            head.put_slice(b"\r\n");
        }
        MockResponse {
            status,
            head: head.freeze(),
            body: if content { body } else { Bytes::new() },
            present,
        }
    }

    /// The fields of the rendered head (after its status line, without `content-length`), in
    /// order: what a body replacement keeps of a response held in memory.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or_default();
            let value = value.strip_prefix(b" ").unwrap_or(value);
            (!name.eq_ignore_ascii_case(b"content-length")).then_some((name, value))
        })
    }
}

pub(super) fn compile_mock(
    i: usize,
    m: &Spanned<raw::RawMock>,
    cx: &mut Ctx<'_>,
) -> Option<MockResponse> {
    let mock = m.get_ref();
    if !(200..=599).contains(&mock.status) {
        let msg = format!("must be in 200..=599 (got {})", mock.status);
        cx.err(m, format!("route[{i}].mock.status"), msg);
        return None;
    }
    // RFC 9110 §15.3.5, §15.4.5: 204 and 304 end at the head; a body would be read by the
    // client (or a front proxy) as the start of the next response.
    let has_content = crate::http::status_has_content(mock.status);
    // every header is checked before giving up, so one run reports all of a mock's errors
    let mut ok = true;
    if !has_content && !mock.body.is_empty() {
        let msg = format!("must be empty: status {} has no content", mock.status);
        cx.err(m, format!("route[{i}].mock.body"), msg);
        ok = false;
    }
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        mock.status,
        reason_phrase(mock.status)
    );
    let mut has_type = false;
    let mut present = crate::http::Present::default();
    for (name, value) in &mock.headers {
        let lower = name.to_ascii_lowercase();
        let bad_name = name.is_empty() || !name.bytes().all(is_tchar);
        let bad_value = value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f);
        // framing and connection fields are tollgate's (RFC 9112 §6, RFC 9110 §7.6.1), as are
        // `date` and `x-request-id`, which every response gets once
        let reserved = matches!(
            lower.as_str(),
            "content-length"
                | "transfer-encoding"
                | "connection"
                | "keep-alive"
                | "upgrade"
                | "te"
                | "trailer"
                | "proxy-connection"
                | "date"
                | "x-request-id"
        );
        let why = if bad_name || bad_value {
            "is not a valid field name or value"
        } else if reserved {
            "is set by tollgate (framing, hop-by-hop, date, x-request-id)"
        } else {
            ""
        };
        if !why.is_empty() {
            let msg = format!("header {name:?} {why}");
            cx.err(m, format!("route[{i}].mock.headers"), msg);
            ok = false;
            continue;
        }
        has_type |= lower == "content-type";
        present.note(name.as_bytes());
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has_type && !mock.body.is_empty() {
        let t = mock.body.trim_start();
        let ct = if t.starts_with('{') || t.starts_with('[') {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    if has_content {
        head.push_str(&format!("content-length: {}\r\n", mock.body.len()));
    }
    if !ok {
        return None;
    }
    Some(MockResponse {
        status: mock.status,
        head: Bytes::from(head),
        body: Bytes::from(mock.body.clone()),
        present,
    })
}

/// A mock's body and header values compiled as values (see [`crate::mapping::mock`]), when
/// any holds a variable (`$request.path.id`); `None` for a mock of static text (answered from
/// the bytes [`compile_mock`] rendered) and for one with errors (reported here, naming the
/// variable). Only text with a `$` is compiled, so a static body stays as written (`''`
/// included).
pub(super) fn compile_values(
    i: usize,
    m: &Spanned<raw::RawMock>,
    params: &[&str],
    cx: &mut Ctx<'_>,
) -> Option<crate::mapping::mock::MockValues> {
    use crate::mapping::value::{Scope, Value};
    let mock = m.get_ref();
    let dynamic = mock.body.contains('$') || mock.headers.values().any(|v| v.contains('$'));
    if !dynamic {
        return None;
    }
    // a mock does not read the request body, and stages do not exist yet
    let scope = Scope {
        params,
        body: false,
        stage: None,
    };
    let mut ok = true;
    let mut compile = |text: &str, key: String, cx: &mut Ctx<'_>| {
        if !text.contains('$') {
            return Some(Value::text(text));
        }
        match Value::compile(text, &scope) {
            Ok(v) => Some(v),
            Err(e) => {
                cx.err(m, key, e);
                ok = false;
                None
            }
        }
    };
    let mut headers: Vec<(Box<str>, Value)> = Vec::with_capacity(mock.headers.len() + 1);
    let mut has_type = false;
    for (name, value) in &mock.headers {
        has_type |= name.eq_ignore_ascii_case("content-type");
        let key = format!("route[{i}].mock.headers.{name:?}");
        if let Some(v) = compile(value, key, cx) {
            headers.push((name.as_str().into(), v));
        }
    }
    let body = compile(&mock.body, format!("route[{i}].mock.body"), cx);
    let t = mock.body.trim_start();
    let mut json = t.starts_with('{') || t.starts_with('[');
    if let Some((_, ct)) = mock
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        json = ct.to_ascii_lowercase().contains("json");
    }
    if !has_type && !mock.body.is_empty() {
        let ct = if json {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        headers.push(("content-type".into(), Value::text(ct)));
    }
    if !ok {
        return None;
    }
    Some(crate::mapping::mock::MockValues {
        status: mock.status,
        headers,
        body: body?.split(),
        json,
    })
}
