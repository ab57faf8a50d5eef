//! The TOML schema of APIs, stages and API mappings (`[[api]]`, `[[stage]]`, `[[mapping]]`) and
//! of an API's own file (`routes = "apis/pets.toml"`, also what `tollgate import` prints).
//!
//! Owns: the serde structs as an operator writes them, part of [`super::raw`] (which holds
//! them) kept apart so the schema file stays small. Leaves out: meaning. Expanding the APIs of
//! each stage into routes, stage variables and the front door that picks a stage are
//! [`super::apis`]'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::raw::{RawCors, RawRoute};

/// `[[api]]`: a named set of routes, from exactly one of inline `[[api.route]]`, a TOML file of
/// routes (`routes`) or an OpenAPI definition (`openapi`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub name: Spanned<String>,
    /// A TOML file with the API's `[[route]]`s (and its authorizers, models, CORS, ...), relative
    /// to the config file's directory; the shape of [`RawApiFile`].
    pub routes: Option<Spanned<String>>,
    /// An OpenAPI 3.0/3.1 or Swagger 2.0 definition (YAML or JSON) with API Gateway's
    /// `x-amazon-apigateway-*` extensions, relative to the config file's directory.
    pub openapi: Option<Spanned<String>>,
    /// What the definition has that tollgate does not understand is an error (default: a
    /// warning, listed by `tollgate check` with its JSON pointer). Overrides the top-level
    /// `strict_openapi`.
    pub strict_openapi: Option<Spanned<bool>>,
    /// Inline routes (`[[api.route]]`), same keys as `[[route]]`.
    #[serde(default)]
    pub route: Vec<RawRoute>,
    /// CORS for every route of the API that does not set its own (inline form of the file's
    /// `[cors]`).
    pub cors: Option<RawCors>,
}

/// An API's own file (`routes = "..."`): its routes and what only they use. Authorizer and
/// model names are the API's own (they may repeat another API's names); routes of the API
/// name them as written.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiFile {
    /// Informational: the base path the definition was published under (OpenAPI `servers`,
    /// Swagger `basePath`); `[[mapping]]` decides where the API is served.
    pub base_path: Option<Spanned<String>>,
    /// Media types whose bodies are binary (`x-amazon-apigateway-binary-media-types`): Lambda
    /// events carry them base64-encoded.
    #[serde(default)]
    pub binary_media_types: Vec<Spanned<String>>,
    /// Where routes with `api_key_required` read the key: `"HEADER"` (default) or
    /// `"AUTHORIZER"` (`x-amazon-apigateway-api-key-source`).
    pub api_key_source: Option<Spanned<String>>,
    /// CORS for every route of the API that does not set its own.
    pub cors: Option<RawCors>,
    #[serde(default)]
    pub route: Vec<RawRoute>,
    #[serde(default)]
    pub authorizer: Vec<super::raw::RawAuthorizer>,
    #[serde(default)]
    pub model: Vec<super::validation::RawModel>,
    #[serde(default)]
    pub gateway_response: Vec<super::gateway_responses::RawGatewayResponse>,
}

/// `[[stage]]`: an API deployed under a name, with its variables, a default limit and an
/// optional canary.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    /// The `[[api]]` this stage serves.
    pub api: Spanned<String>,
    pub name: Spanned<String>,
    /// `$stageVariables.NAME` values.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub variables: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    /// The limit of every route of the stage that sets none (API Gateway's default route
    /// throttling): each route gets its own bucket of this size.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub throttle: Option<Spanned<super::raw::RawLimit>>,
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub canary: Option<Spanned<RawCanary>>,
}

/// `canary = { percent, api, variables, sticky, header }`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    /// Share of requests (or of clients, with `sticky`) the canary serves, 0.0 ..= 100.0.
    pub percent: Spanned<f64>,
    /// The API the canary serves (default: the stage's).
    pub api: Option<Spanned<String>>,
    /// Variables the canary overrides or adds (the stage's apply otherwise).
    #[serde(default)]
    pub variables: BTreeMap<String, Spanned<String>>,
    /// `"cookie:NAME"` or `"header:NAME"`: a client presenting it is kept on one side (by a
    /// hash of its value); without it a request is split by `percent`.
    pub sticky: Option<Spanned<String>>,
    /// The response field telling which side served (`1` canary, `0` the stage); `""`: none.
    pub header: Option<Spanned<String>>,
}

/// `[[mapping]]`: where a stage is served (API Gateway's custom-domain API mappings).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiMapping {
    /// `api.example.com` or `*.example.com`; absent: any host.
    pub host: Option<Spanned<String>>,
    /// Path prefix (whole segments), stripped before routing; absent: `/`.
    pub base_path: Option<Spanned<String>>,
    /// Only requests carrying this field value (`{ name = "accept-version", value = "2" }`).
    pub header: Option<Spanned<RawHeaderMatch>>,
    /// `"API/STAGE"`.
    pub stage: Spanned<String>,
}

/// `header = { name, value }` of a `[[mapping]]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMatch {
    pub name: String,
    pub value: String,
}
