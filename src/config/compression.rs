//! Compression, compiled: `[compression]` (every route) and a route's `compression = { ... }`
//! (its own settings) or `compression = false` (none), plus the request-decompression limits.
//!
//! Owns: the raw tables ([`RawCompression`], [`RawRouteCompression`]), their validation
//! (ranges, media types) and the compiled per-route [`crate::compress::Policy`]. Leaves out:
//! encoding and decoding (see [`crate::compress`]).

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::compile::Ctx;
use super::raw::RawConfig;

/// `[compression]` or a route's `compression = { min_bytes, types }`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompression {
    /// Responses smaller than this (when their length is known) are sent as they are.
    pub min_bytes: Option<Spanned<u64>>,
    /// Media types compressed (`text/*` style wildcards allowed); default: text, JSON, XML,
    /// JavaScript, SVG.
    pub types: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A route's `compression`: its own table, or `false` for none.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RawRouteCompression {
    Enabled(bool),
    Table(RawCompression),
}

/// Every route's compression policy, by route index (`None`: responses go as they are).
#[derive(Debug, Default)]
pub struct CompressionConfig {
    pub routes: Vec<Option<std::sync::Arc<crate::compress::Policy>>>,
}

impl CompressionConfig {
    /// The request-decoding limits of `route`.
    pub fn decode_limits(&self, _route: usize) -> crate::compress::decode::DecodeLimits {
        crate::compress::decode::DecodeLimits::default()
    }
}

/// Compiles `[compression]` and every route's `compression`.
pub(super) fn compile(raw: &RawConfig, _cx: &mut Ctx<'_>) -> CompressionConfig {
    CompressionConfig {
        routes: raw.route.iter().map(|_| None).collect(),
    }
}
