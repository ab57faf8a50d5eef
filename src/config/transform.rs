//! Body transformations, compiled: a route's `transform = { request = "json_to_xml", response
//! = "xml_to_json", xml_root = "Request" }`, with optional bounds `max_depth`, `max_elements`
//! and `max_output_bytes`.
//!
//! Owns: the raw table ([`RawTransform`]), its validation (known directions, at least one of
//! them, an XML root name that is a valid XML name, the limits within their ranges, no
//! WebSocket route) and the compiled [`RouteTransform`]. Each error names the key and its
//! line. Leaves out: the conversions (see [`crate::transform::xml`]) and when bodies are held
//! (see [`crate::transform::hold`]: a route with `transform.request` holds its request body;
//! `transform.response` makes [`crate::transform::response::applies`] reshape its responses).

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::compile::Ctx;
use super::raw::RawConfig;
use crate::transform::xml::{Direction, XmlLimits};

/// Accepted `transform.max_depth` (serde_json reads JSON no deeper than 128).
pub const MAX_DEPTH_RANGE: RangeInclusive<usize> = 1..=128;
/// Accepted `transform.max_elements`.
pub const MAX_ELEMENTS_RANGE: RangeInclusive<usize> = 1..=10_000_000;
/// Accepted `transform.max_output_bytes`.
pub const MAX_OUTPUT_RANGE: RangeInclusive<usize> = 1..=128 * 1024 * 1024;
/// The root element JSON → XML writes when `xml_root` is not set.
pub const DEFAULT_XML_ROOT: &str = "root";

/// `transform = { request, response, xml_root, max_depth, max_elements, max_output_bytes }`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransform {
    /// `"json_to_xml"` or `"xml_to_json"`: the request body as the origin gets it.
    pub request: Option<Spanned<String>>,
    /// `"json_to_xml"` or `"xml_to_json"`: the response body as the client gets it.
    pub response: Option<Spanned<String>>,
    /// The root element JSON → XML wraps the document in (default `"root"`).
    pub xml_root: Option<Spanned<String>>,
    /// Deepest element nesting (default [`crate::transform::xml::MAX_DEPTH`]).
    pub max_depth: Option<Spanned<usize>>,
    /// Most elements in one document (default [`crate::transform::xml::MAX_ELEMENTS`]).
    pub max_elements: Option<Spanned<usize>>,
    /// Largest converted body (default [`crate::transform::xml::MAX_OUTPUT_BYTES`]).
    pub max_output_bytes: Option<Spanned<usize>>,
}

/// A route's compiled body transformation.
#[derive(Debug, Clone)]
pub struct RouteTransform {
    pub request: Option<Direction>,
    pub response: Option<Direction>,
    pub xml_root: Box<str>,
    pub limits: XmlLimits,
}

/// Every route's transformation, by route index (`None`: the route has none).
#[derive(Debug, Default)]
pub struct TransformConfig {
    pub routes: Vec<Option<RouteTransform>>,
}

/// Compiles every route's `transform`.
pub(super) fn compile(raw: &RawConfig, cx: &mut Ctx<'_>) -> TransformConfig {
    let routes = raw
        .route
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let t = r.transform.as_ref()?;
            let websocket = r.websocket.as_ref().is_some_and(|w| *w.get_ref());
            compile_one(i, t, websocket, cx)
        })
        .collect();
    TransformConfig { routes }
}

fn direction(v: &Spanned<String>, key: String, cx: &mut Ctx<'_>) -> Option<Direction> {
    match v.get_ref().as_str() {
        "json_to_xml" => Some(Direction::JsonToXml),
        "xml_to_json" => Some(Direction::XmlToJson),
        other => {
            let m = format!("unknown transformation {other:?}: \"json_to_xml\" or \"xml_to_json\"");
            cx.err(v, key, m);
            None
        }
    }
}

fn compile_one(
    i: usize,
    t: &Spanned<RawTransform>,
    websocket: bool,
    cx: &mut Ctx<'_>,
) -> Option<RouteTransform> {
    let key = format!("route[{i}].transform");
    let raw = t.get_ref();
    if raw.request.is_none() && raw.response.is_none() {
        cx.err(
            t,
            key.clone(),
            "names no transformation: set request and/or response (\"json_to_xml\" or \"xml_to_json\")",
        );
    }
    if websocket {
        cx.err(
            t,
            key.clone(),
            "body transformations do not apply to a WebSocket route (websocket = true): its handshake has no body and its tunnel is not HTTP",
        );
    }
    let request = raw
        .request
        .as_ref()
        .map(|v| direction(v, format!("{key}.request"), cx));
    let response = raw
        .response
        .as_ref()
        .map(|v| direction(v, format!("{key}.response"), cx));
    let xml_root = match &raw.xml_root {
        Some(v) if crate::transform::json_to_xml::is_name(v.get_ref()) => v.get_ref().as_str(),
        Some(v) => {
            let m = format!(
                "{:?} is not an XML element name (XML 1.0 §2.3: a letter, '_' or ':' first, then letters, digits, '-', '.', '_', ':')",
                v.get_ref()
            );
            cx.err(v, format!("{key}.xml_root"), m);
            DEFAULT_XML_ROOT
        }
        None => DEFAULT_XML_ROOT,
    };
    let mut limits = XmlLimits::default();
    let mut bound = |v: &Option<Spanned<usize>>,
                     name: &str,
                     range: &RangeInclusive<usize>,
                     slot: &mut usize| {
        if let Some(v) = v {
            *slot = cx.range(v, format!("{key}.{name}"), range);
        }
    };
    bound(
        &raw.max_depth,
        "max_depth",
        &MAX_DEPTH_RANGE,
        &mut limits.max_depth,
    );
    bound(
        &raw.max_elements,
        "max_elements",
        &MAX_ELEMENTS_RANGE,
        &mut limits.max_elements,
    );
    bound(
        &raw.max_output_bytes,
        "max_output_bytes",
        &MAX_OUTPUT_RANGE,
        &mut limits.max_output_bytes,
    );
    Some(RouteTransform {
        request: request.flatten(),
        response: response.flatten(),
        xml_root: xml_root.into(),
        limits,
    })
}
