//! The body against its model: the held body's media type, its parse (once, shared with
//! every later phase through [`crate::transform::hold::json`]) and the model's verdict, turned
//! into API Gateway's answer.
//!
//! Owns: what is JSON (`application/json` and any `+json` type, RFC 6839 §3.1; no
//! `Content-Type` at all is taken as JSON, as API Gateway assumes `application/json`), and
//! the three refusals: a body of another media type → 415 `{"message":"Unsupported Media
//! Type"}`; a body that claims JSON but is empty or does not parse → 400 `{"message":"Invalid
//! request body","details":[{"pointer":"","reason":"not JSON: ..."}]}`; a document the model
//! refuses → 400 with a `details` entry per failing location (see
//! [`super::model::MAX_DETAILS`]). Leaves out: reading the body (see
//! [`crate::transform::hold`]) and compiling models (see [`super::model`]).

use bytes::Bytes;
use serde_json::Value as Json;

use super::model::{Detail, Model};
use crate::config::MockResponse;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::RequestHead;

/// Why a body was refused (before it becomes a response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not a JSON media type: 415.
    MediaType,
    /// 400 `Invalid request body`, with these details.
    Invalid(Vec<Detail>),
}

/// Whether a `Content-Type` value names JSON: `application/json` or `application/*+json`
/// (RFC 6839 §3.1), parameters ignored, case-insensitive (RFC 9110 §8.3.1).
pub fn is_json_type(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let mut parts = essence.splitn(2, |&b| b == b'/');
    let (ty, sub) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let suffixed = sub.len() > JSON_SUFFIX.len()
        && sub
            .get(sub.len() - JSON_SUFFIX.len()..)
            .is_some_and(|s| s.eq_ignore_ascii_case(JSON_SUFFIX));
    ty.eq_ignore_ascii_case(b"application") && (sub.eq_ignore_ascii_case(b"json") || suffixed)
}

/// The structured syntax suffix of JSON media types (RFC 6839 §3.1).
const JSON_SUFFIX: &[u8] = b"+json";

/// Checks the held body against `model`: its media type, then its parse, then the model.
pub fn check(model: &Model, head: &RequestHead, st: &mut ExchangeState) -> Result<(), Refused> {
    if head
        .header("content-type")
        .is_some_and(|t| !is_json_type(t))
    {
        return Err(Refused::MediaType);
    }
    match crate::transform::hold::json(st) {
        Some(doc) => model.check(doc).map_err(Refused::Invalid),
        None => Err(Refused::Invalid(vec![not_json(st.held_body.as_deref())])),
    }
}

/// The detail for a body that is not a JSON document.
fn not_json(body: Option<&[u8]>) -> Detail {
    let reason = match body {
        None | Some([]) => "empty body; the model needs a JSON document".to_owned(),
        Some(b) => match serde_json::from_slice::<Json>(b) {
            Err(e) => format!("not JSON: {e}"),
            Ok(_) => "not JSON".to_owned(),
        },
    };
    Detail {
        pointer: String::new(),
        reason,
    }
}

/// The refusal as the lifecycle's error mapping sends it: the error, and for a 400 its
/// response (`{"message":"Invalid request body","details":[...]}`) in `st.refusal`.
pub fn refuse(r: Refused, st: &mut ExchangeState) -> GatewayError {
    match r {
        Refused::MediaType => GatewayError::UnsupportedMediaType,
        Refused::Invalid(details) => {
            let first = details
                .first()
                .map(|d| format!("{}: {}", d.pointer, d.reason));
            st.detail = first.map(String::into_boxed_str);
            st.refusal = Some(invalid_body(&details));
            GatewayError::InvalidBody
        }
    }
}

/// The 400 answer naming `details`.
pub fn invalid_body(details: &[Detail]) -> MockResponse {
    let items: Vec<String> = details
        .iter()
        .map(|d| serde_json::json!({ "pointer": d.pointer, "reason": d.reason }).to_string())
        .collect();
    let body = format!(
        r#"{{"message":"Invalid request body","details":[{}]}}"#,
        items.join(",")
    );
    let fields: [(&[u8], &[u8]); 1] = [(b"content-type", b"application/json")];
    MockResponse::build(
        GatewayError::InvalidBody.status(),
        fields,
        Bytes::from(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        assert!(is_json_type(b"application/json"));
        assert!(is_json_type(b"Application/JSON; charset=utf-8"));
        assert!(is_json_type(b"application/vnd.api+json"));
        assert!(is_json_type(b"application/problem+json ; q=1"));
        assert!(!is_json_type(b"application/+json"));
        assert!(!is_json_type(b"text/json"));
        assert!(!is_json_type(b"application/xml"));
        assert!(!is_json_type(b"text/plain"));
        assert!(!is_json_type(b"application/jsonx"));
        assert!(!is_json_type(b"json"));
        assert!(!is_json_type(b""));
    }

    #[test]
    fn the_refusal_names_each_pointer() {
        let r = invalid_body(&[Detail {
            pointer: "/qty".into(),
            reason: "value is less than the minimum of 1".into(),
        }]);
        assert_eq!(r.status, 400);
        assert_eq!(
            &r.body[..],
            br#"{"message":"Invalid request body","details":[{"pointer":"/qty","reason":"value is less than the minimum of 1"}]}"#
        );
    }
}
