//! XML ⇄ JSON, with one lossless convention (see README "XML and JSON"): elements as members;
//! attributes as `"@name"`; text beside attributes or children as `"#text"`; repeated elements
//! as arrays; namespaces kept as prefixes (`"soap:Envelope"`, `"@xmlns:soap"`); all text kept
//! as strings. Safe XML only: a DOCTYPE (and so any entity declaration) is refused, and depth,
//! element count and output size are bounded.
//!
//! Owns: the request and response entry points the transformation phases call (which bodies
//! are converted, by their media type, and the media type they leave with), the limits
//! ([`XmlLimits`]) and the faults both conversions share ([`XmlFault`], whose words name the
//! problem or the limit). The conversions themselves live in [`super::json_to_xml`] and
//! [`super::xml_to_json`], over byte slices (never sockets). Leaves out: when bodies are held
//! and sent (see [`super::hold`], [`super::response`]) and compiling the route's `transform`
//! (see [`crate::config::transform`]).
//!
//! The convention, precisely (both directions):
//! - An XML document is one member named after its root element: `<a>x</a>` ⇄ `{"a": "x"}`.
//!   JSON → XML wraps the whole JSON value in the route's `xml_root` element (default `root`),
//!   so JSON → XML → JSON gives back the value as the `xml_root` member.
//! - An element without attributes or child elements is its text, a string (`<a/>` and
//!   `<a></a>` are `""`); otherwise an object: `"@name"` per attribute (a string), `"#text"`
//!   for its text when it has any, one member per child element name. Children of one name
//!   are an array, in document order, when there are two or more. The order *between*
//!   different names is not kept (JSON objects are unordered, RFC 8259 §4).
//! - Whitespace-only text beside child elements (indentation) is dropped; an element with
//!   only text keeps it exactly. Mixed content (`<p>a <b>b</b> c</p>`): the text pieces are
//!   joined into `"#text"` (`"a  c"`); where they stood among the children is not kept.
//!   CDATA is text. Comments, processing instructions and the XML declaration are dropped.
//!   Character references and the five predefined entities are resolved.
//! - JSON → XML: numbers and booleans are written as their JSON text, `null` as an empty
//!   element (back they come as strings: `"3"`, `"true"`, `""`); an empty array writes
//!   nothing, an array item that is itself an array, or an object or array as an attribute
//!   or `"#text"`, has no XML form and is refused (400). A member name that is not an XML
//!   name (XML 1.0 §2.3), nor `"@"` + one, nor `"#text"`, is refused (400). A top-level array
//!   is written as repeated `<item>` elements inside the root.
//! - The domain on which JSON → XML → JSON is the identity (under the `xml_root` member):
//!   strings as the only scalars; objects that are not empty and whose `"#text"`, if any,
//!   stands beside attributes or children and is not empty (nor whitespace-only beside
//!   children); arrays of two or more items that are not arrays; names as above; attribute
//!   values strings; text of characters XML 1.0 allows (§2.2).

use bytes::Bytes;

use crate::config::transform::RouteTransform;
use crate::http::RequestHead;

/// The deepest element nesting converted (the root is depth 1); deeper is refused.
pub const MAX_DEPTH: usize = 64;
/// The most elements one document may hold, either way.
pub const MAX_ELEMENTS: usize = 200_000;
/// The largest converted body written, either way.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;
/// The element each item of a top-level JSON array becomes (inside the root).
pub const ARRAY_ITEM: &str = "item";
/// The media type of XML written (RFC 7303 §3.2: UTF-8, said so).
pub const XML_TYPE: &str = "application/xml; charset=utf-8";
/// The media type of JSON written (RFC 8259 §11: always UTF-8, no charset parameter).
pub const JSON_TYPE: &str = "application/json";

/// A conversion's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    JsonToXml,
    XmlToJson,
}

/// A route's bounds on a conversion (`transform.max_depth`, `.max_elements`,
/// `.max_output_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    pub max_depth: usize,
    pub max_elements: usize,
    pub max_output_bytes: usize,
}

impl Default for XmlLimits {
    fn default() -> XmlLimits {
        XmlLimits {
            max_depth: MAX_DEPTH,
            max_elements: MAX_ELEMENTS,
            max_output_bytes: MAX_OUTPUT_BYTES,
        }
    }
}

/// Why a document could not be converted; its words name the problem or the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlFault {
    TooDeep(usize),
    TooManyElements(usize),
    TooLarge(usize),
    /// A DOCTYPE: refused whatever it holds (entity declarations live only there).
    DocType,
    /// A reference to an entity that is not predefined (none can be declared).
    UndeclaredEntity(String),
    /// The input is not well-formed XML (what and where).
    Malformed(String),
    /// The input is not valid JSON (what and where).
    NotJson(String),
    /// Not UTF-8 (or a declared encoding other than UTF-8).
    Encoding(String),
    /// A JSON member name with no XML form.
    BadName(String),
    /// A JSON value with no XML form at that place.
    NoXmlForm(String),
    /// A character XML 1.0 cannot carry (§2.2), even as a reference.
    BadChar(u32),
}

impl std::fmt::Display for XmlFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XmlFault::TooDeep(n) => write!(
                f,
                "XML nesting deeper than {n} levels (transform.max_depth)"
            ),
            XmlFault::TooManyElements(n) => {
                write!(f, "more than {n} XML elements (transform.max_elements)")
            }
            XmlFault::TooLarge(n) => write!(
                f,
                "converted body larger than {n} bytes (transform.max_output_bytes)"
            ),
            XmlFault::DocType => f.write_str(
                "XML with a DOCTYPE is refused (no DTDs or entity declarations: XXE and entity expansion)",
            ),
            XmlFault::UndeclaredEntity(name) => write!(
                f,
                "XML refers to the undeclared entity &{name}; (only the five predefined entities and character references are known)"
            ),
            XmlFault::Malformed(why) => write!(f, "XML is not well-formed: {why}"),
            XmlFault::NotJson(why) => write!(f, "body is not valid JSON: {why}"),
            XmlFault::Encoding(why) => write!(f, "{why}"),
            XmlFault::BadName(name) => write!(
                f,
                "JSON member name {name:?} is not an XML name (nor \"@\" and one, nor \"#text\")"
            ),
            XmlFault::NoXmlForm(why) => write!(f, "{why} has no XML form"),
            XmlFault::BadChar(c) => write!(
                f,
                "JSON text holds U+{c:04X}, a character XML 1.0 cannot carry"
            ),
        }
    }
}

/// The media type of `content_type`, lowercase, without parameters.
fn media_type(content_type: Option<&[u8]>) -> Option<String> {
    let ct = content_type?;
    let end = ct.iter().position(|&b| b == b';').unwrap_or(ct.len());
    let t = std::str::from_utf8(ct.get(..end)?).ok()?.trim();
    Some(t.to_ascii_lowercase())
}

/// `application/xml`, `text/xml`, `*/*+xml` (RFC 7303 §4, §9.2).
fn is_xml(t: &str) -> bool {
    t == "application/xml" || t == "text/xml" || t.ends_with("+xml")
}

/// `application/json`, `*/*+json` (RFC 8259 §11, RFC 6839 §3.1).
fn is_json(t: &str) -> bool {
    t == "application/json" || t.ends_with("+json")
}

/// Whether a body of `content_type` is converted in `direction`: a body of the source type,
/// or of no declared type. Any other type (already the target's, or something else: an
/// HTML error page) passes as it is, as API Gateway passes bodies no template matches.
fn converts(direction: Direction, content_type: Option<&[u8]>) -> bool {
    match media_type(content_type) {
        None => true,
        Some(t) if t.is_empty() => true,
        Some(t) => match direction {
            Direction::JsonToXml => is_json(&t),
            Direction::XmlToJson => is_xml(&t),
        },
    }
}

/// The media type a conversion in `direction` writes.
fn target_type(direction: Direction) -> &'static str {
    match direction {
        Direction::JsonToXml => XML_TYPE,
        Direction::XmlToJson => JSON_TYPE,
    }
}

/// Converts `body` in `direction`: the new body and its media type.
pub fn convert(
    direction: Direction,
    t: &RouteTransform,
    body: &[u8],
) -> Result<(Vec<u8>, &'static str), XmlFault> {
    match direction {
        Direction::JsonToXml => {
            let out = super::json_to_xml::convert(body, &t.xml_root, &t.limits)?;
            Ok((out, target_type(direction)))
        }
        Direction::XmlToJson => {
            let out = super::xml_to_json::convert(body, &t.limits)?;
            Ok((out, target_type(direction)))
        }
    }
}

/// The request body as the origin gets it (`None`: unchanged). An empty body, or one whose
/// type is not the conversion's source, passes; a body that cannot be converted is a 400
/// naming the problem or the limit.
pub fn request(
    t: &RouteTransform,
    head: &RequestHead,
    body: &[u8],
) -> Result<Option<super::request::NewBody>, super::Refusal> {
    let Some(direction) = t.request else {
        return Ok(None);
    };
    let content_type = head.header("content-type");
    if body.is_empty() || !converts(direction, content_type) {
        return Ok(None);
    }
    let (out, media) =
        convert(direction, t, body).map_err(|f| super::Refusal::request(format!("request {f}")))?;
    Ok(Some(super::request::NewBody {
        body: Bytes::from(out),
        content_type: Some(media.into()),
    }))
}

/// The response body as the client gets it, with its new media type (`None`: unchanged), from
/// the producer's `fields`. A status without content (1xx, 204, 304: RFC 9110 §6.4.1), a
/// content-coded body (the client's `Accept-Encoding` is not forwarded, but an origin may
/// code anyway, §12.5.3), an empty body or a body whose type is not the conversion's source
/// passes; a HEAD response gets the type GET's body would have (and no length: see
/// [`super::response`]); a body that cannot be converted is a 502 naming the problem or the
/// limit.
pub fn response(
    t: &RouteTransform,
    head: &RequestHead,
    status: u16,
    fields: &[(&[u8], &[u8])],
    body: &[u8],
) -> Result<(Bytes, Option<Box<str>>), super::Refusal> {
    let unchanged = || (Bytes::copy_from_slice(body), None);
    let Some(direction) = t.response else {
        return Ok(unchanged());
    };
    let field = |name: &[u8]| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    };
    let coded = field(b"content-encoding").is_some_and(|c| !c.eq_ignore_ascii_case(b"identity"));
    if coded
        || !crate::http::status_has_content(status)
        || !converts(direction, field(b"content-type"))
    {
        return Ok(unchanged());
    }
    if head.method_kind == crate::http::Method::Head {
        return Ok((Bytes::new(), Some(target_type(direction).into())));
    }
    if body.is_empty() {
        return Ok(unchanged());
    }
    let (out, media) = convert(direction, t, body)
        .map_err(|f| super::Refusal::response(format!("integration response {f}")))?;
    Ok((Bytes::from(out), Some(media.into())))
}

#[cfg(test)]
#[path = "xml_tests.rs"]
mod tests;
