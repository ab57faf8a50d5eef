//! A function's answer turned into the response to send: the Lambda proxy response formats.
//!
//! Owns reading the Invoke API payload as AWS's API Gateway does ("Lambda function response
//! format" of both payload versions) and rendering it as a [`MockResponse`] (status line,
//! field lines, `content-length`; then the body), the shape a mock has, so the sessions write
//! it as they write a mock. Leaves out calling the function and deciding that the payload is a
//! payload at all (see [`super::classify`]).
//!
//! The shapes:
//! - 2.0, an object with `statusCode`: that status; `headers` (values: strings, or numbers and
//!   booleans as their JSON text; `null` skipped), `cookies` (one `set-cookie` each), `body`
//!   (a string; `null` or absent: empty), `isBase64Encoded` (the body is base64: decoded).
//!   2.0 has no `multiValueHeaders` (ignored, as other unknown members).
//! - 2.0, anything else (a string, a number, an array, an object without `statusCode`): 200,
//!   `content-type: application/json`, the payload as returned (its JSON text) as the body.
//! - 1.0: an object with `statusCode` (else malformed), `headers`, `multiValueHeaders`
//!   (arrays of values), `body`, `isBase64Encoded`. A name in both maps takes its values from
//!   `multiValueHeaders` only (AWS: "If the same key-value pair is specified in both, only the
//!   values from multiValueHeaders will appear"); names compare case-insensitively (RFC 9110
//!   §5.1).
//! - `statusCode`: an integer (or a string of digits) in 200..=599; 1xx (interim responses,
//!   RFC 9110 §15.2) cannot be a final answer. A structured reply with a body but no
//!   `content-type` gets `application/json`, as API Gateway does.
//! - Field names must be tokens (RFC 9110 §5.1) and values field-value octets (RFC 9110 §5.5:
//!   no CR, LF, NUL or other controls) after trimming OWS; anything else makes the whole reply
//!   malformed (502), never forwarded. Framing and hop-by-hop fields (`content-length`,
//!   `transfer-encoding`, `connection`, ...: RFC 9112 §6, RFC 9110 §7.6.1) and the fields
//!   tollgate sets on every response (`date`, `x-request-id`) are dropped: tollgate frames the
//!   body itself. A function's own `strict-transport-security` is kept and noted in the
//!   response's `present` fields, so the response filter does not add `tls.hsts` beside it.
//! - Limits: a payload over `MAX_PAYLOAD_BYTES` (Lambda's 6 MB) and a rendered head over
//!   [`MAX_REPLY_HEAD_BYTES`] are malformed (502). 204 and 304 have no content (RFC 9110 §6.4.1): a body is dropped and no
//!   `content-length` is written.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::config::functions::MAX_PAYLOAD_BYTES;
use crate::config::{MockResponse, PayloadFormat};
use crate::error::reason_phrase;
use crate::http::{is_field_octet, is_token, status_has_content, trim_ows, Present};

/// Statuses a function may answer with.
pub const REPLY_STATUS: std::ops::RangeInclusive<u16> = 200..=599;

/// The largest response head a function's answer may render to (status line and fields, as
/// sent over HTTP/1.1): 64 KiB, twice the default bound of request and origin response heads
/// (`server.limits.max_head_bytes`, [`crate::http::DEFAULT_MAX_HEAD_BYTES`]), and fixed, so a
/// function's answer is bounded whatever the config allows its clients. Larger: malformed
/// (502), never sent.
pub const MAX_REPLY_HEAD_BYTES: usize = 64 * 1024;

/// Fields a function may not set: framing and hop-by-hop ones, and those tollgate writes on
/// every response. Compared case-insensitively.
pub const DROPPED_FIELDS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "date",
    "x-request-id",
];

/// Why a function's answer is not a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("{0}")]
    Malformed(String),
}

fn malformed(why: impl Into<String>) -> ReplyError {
    ReplyError::Malformed(why.into())
}

/// A function's answer (the Invoke API's payload) turned into the response to send.
pub fn reply(format: PayloadFormat, payload: &[u8]) -> Result<MockResponse, ReplyError> {
    // Lambda's synchronous response limit; the Invoke answer may be read a little beyond it
    // (room for an error document), a payload may not
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(malformed(format!(
            "payload of {} bytes over Lambda's {MAX_PAYLOAD_BYTES}-byte limit",
            payload.len()
        )));
    }
    let value: Value = serde_json::from_slice(payload).map_err(|_| malformed("not JSON"))?;
    match (format, value) {
        (PayloadFormat::V2, Value::Object(o)) if o.contains_key("statusCode") => {
            structured(format, &o)
        }
        (PayloadFormat::V2, _) => {
            let fields = vec![("content-type".to_owned(), "application/json".to_owned())];
            render(200, &fields, Bytes::copy_from_slice(payload))
        }
        (PayloadFormat::V1, Value::Object(o)) => structured(format, &o),
        (PayloadFormat::V1, _) => Err(malformed("not a JSON object")),
    }
}

/// An object with `statusCode`.
fn structured(format: PayloadFormat, o: &Map<String, Value>) -> Result<MockResponse, ReplyError> {
    let status = status(o.get("statusCode"))?;
    let mut fields: Vec<(String, String)> = Vec::new();
    if let Some(headers) = object(o, "headers")? {
        for (name, v) in headers {
            if let Some(text) = scalar_text(v).map_err(|_| bad_value("headers", name))? {
                fields.push((name.clone(), text));
            }
        }
    }
    match format {
        PayloadFormat::V1 => {
            if let Some(multi) = object(o, "multiValueHeaders")? {
                // multiValueHeaders wins over headers for the same name: the headers' entries
                // go once, before any multi value is added, so names differing only in case
                // (`Set-Cookie`, `set-cookie`) keep all their values
                fields.retain(|(n, _)| {
                    !multi
                        .iter()
                        .any(|(m, v)| !v.is_null() && m.eq_ignore_ascii_case(n))
                });
                for (name, v) in multi {
                    let values = match v {
                        Value::Null => continue,
                        Value::Array(values) => values,
                        _ => return Err(bad_value("multiValueHeaders", name)),
                    };
                    for v in values {
                        let text =
                            scalar_text(v).map_err(|_| bad_value("multiValueHeaders", name))?;
                        if let Some(text) = text {
                            fields.push((name.clone(), text));
                        }
                    }
                }
            }
        }
        PayloadFormat::V2 => match o.get("cookies") {
            None | Some(Value::Null) => {}
            Some(Value::Array(cookies)) => {
                for c in cookies {
                    let Value::String(c) = c else {
                        return Err(malformed("cookies must be strings"));
                    };
                    fields.push(("set-cookie".to_owned(), c.clone()));
                }
            }
            Some(_) => return Err(malformed("cookies must be an array")),
        },
    }
    let body = match o.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => return Err(malformed("body must be a string")),
    };
    let base64 = match o.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(malformed("isBase64Encoded must be a boolean")),
    };
    let body = if base64 {
        BASE64
            .decode(&body)
            .map_err(|_| malformed("body is not valid base64"))?
    } else {
        body
    };
    let mut kept = Vec::with_capacity(fields.len() + 1);
    let mut has_type = false;
    for (name, value) in fields {
        let trimmed = trim_ows(value.as_bytes());
        if !is_token(name.as_bytes()) || !trimmed.iter().all(|&b| is_field_octet(b)) {
            return Err(malformed(format!("header {name:?} is not a valid field")));
        }
        if DROPPED_FIELDS.iter().any(|d| d.eq_ignore_ascii_case(&name)) {
            continue;
        }
        has_type |= name.eq_ignore_ascii_case("content-type");
        let value = String::from_utf8_lossy(trimmed).into_owned();
        kept.push((name, value));
    }
    let has_content = status_has_content(status);
    if has_content && !has_type && !body.is_empty() {
        kept.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    let body = if has_content {
        Bytes::from(body)
    } else {
        Bytes::new()
    };
    render(status, &kept, body)
}

/// Base64 as the runtimes write it (RFC 4648 §4), padding optional.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn bad_value(map: &str, name: &str) -> ReplyError {
    malformed(format!("{map}.{name} must be a string"))
}

/// `statusCode`: an integer, or a string of digits, in [`REPLY_STATUS`].
fn status(v: Option<&Value>) -> Result<u16, ReplyError> {
    let n = match v {
        None | Some(Value::Null) => return Err(malformed("statusCode missing")),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().ok()
        }
        Some(_) => None,
    };
    let Some(n) = n else {
        return Err(malformed("statusCode is not an integer"));
    };
    match u16::try_from(n) {
        Ok(s) if REPLY_STATUS.contains(&s) => Ok(s),
        _ => Err(malformed(format!("statusCode {n} is not in 200..=599"))),
    }
}

/// The object member `key`: `None` when absent or `null`.
fn object<'v>(
    o: &'v Map<String, Value>,
    key: &str,
) -> Result<Option<&'v Map<String, Value>>, ReplyError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(malformed(format!("{key} must be an object"))),
    }
}

/// A header value: a string as it is, a number or boolean as its JSON text, `null` skipped;
/// arrays and objects are refused.
fn scalar_text(v: &Value) -> Result<Option<String>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(_) | Value::Object(_) => Err(()),
    }
}

/// The mock-shaped response: status line, `fields`, `content-length` (none for 204/304); a head
/// over [`MAX_REPLY_HEAD_BYTES`] is malformed.
fn render(
    status: u16,
    fields: &[(String, String)],
    body: Bytes,
) -> Result<MockResponse, ReplyError> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason_phrase(status));
    let mut present = Present::default();
    for (name, value) in fields {
        present.note(name.as_bytes());
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    if status_has_content(status) {
        head.push_str("content-length: ");
        head.push_str(&body.len().to_string());
        head.push_str("\r\n");
    }
    if head.len() > MAX_REPLY_HEAD_BYTES {
        return Err(malformed(format!(
            "response head larger than {MAX_REPLY_HEAD_BYTES} bytes"
        )));
    }
    Ok(MockResponse {
        status,
        head: Bytes::from(head),
        body,
        present,
    })
}
