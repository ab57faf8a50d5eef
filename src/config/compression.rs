//! Compression, compiled: `[compression]` (every route) and a route's `compression = { ... }`
//! (its own settings) or `compression = false` (none), plus the request-decompression limits.
//!
//! Owns: the raw tables ([`RawCompression`], [`RawRouteCompression`]), their validation
//! (ranges, media types; errors name the key and its line) and the compiled per-route
//! [`crate::compress::Policy`]. A route's table takes what it does not set from
//! `[compression]`, then from the defaults; `compression = true` on a route is
//! `[compression]`'s settings (or the defaults without one). Without `[compression]`, only
//! routes that ask for it compress. Request decoding (`max_decoded_ratio`) applies to every
//! route that holds its body, whether or not it compresses responses. Leaves out: encoding
//! and decoding (see [`crate::compress`]).

use std::fmt;
use std::sync::Arc;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use toml::Spanned;

use super::compile::Ctx;
use super::raw::RawConfig;
use crate::compress::decode::DecodeLimits;
use crate::compress::{Policy, TypePattern};

/// Accepted `min_bytes`.
pub const MIN_BYTES: std::ops::RangeInclusive<u64> = 0..=1 << 30;
/// Accepted `max_decoded_ratio`.
pub const MAX_DECODED_RATIO: std::ops::RangeInclusive<u64> = 1..=100_000;

/// `[compression]` or a route's `compression = { min_bytes, types, max_decoded_ratio }`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompression {
    /// Responses smaller than this (when their length is known) are sent as they are.
    pub min_bytes: Option<Spanned<u64>>,
    /// Media types compressed (`text/*` style wildcards allowed); default: text, JSON, XML,
    /// JavaScript, SVG.
    pub types: Option<Spanned<Vec<Spanned<String>>>>,
    /// A compressed request body may decode to at most this many times its size.
    pub max_decoded_ratio: Option<Spanned<u64>>,
}

/// A route's `compression`: its own table, or `true` / `false`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RawRouteCompression {
    Enabled(bool),
    Table(RawCompression),
}

impl<'de> Deserialize<'de> for RawRouteCompression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RouteCompressionVisitor)
    }
}

/// Reads `true` / `false` or a table, keeping the table's spans (an untagged enum would buffer
/// the value and lose them).
struct RouteCompressionVisitor;

impl<'de> Visitor<'de> for RouteCompressionVisitor {
    type Value = RawRouteCompression;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`false`, `true`, or a table { min_bytes, types, max_decoded_ratio }")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawRouteCompression, E> {
        Ok(RawRouteCompression::Enabled(v))
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<RawRouteCompression, M::Error> {
        RawCompression::deserialize(MapAccessDeserializer::new(map)).map(RawRouteCompression::Table)
    }
}

/// Every route's compression policy, by route index (`None`: responses go as they are).
#[derive(Debug, Default)]
pub struct CompressionConfig {
    /// `[compression]`'s policy: responses without a route (a 404) and routes that do not say.
    pub global: Option<Arc<Policy>>,
    pub routes: Vec<Option<Arc<Policy>>>,
    /// Request decoding limits, by route index.
    pub decode: Vec<DecodeLimits>,
}

impl CompressionConfig {
    /// The policy responses of `route` are compressed under (`None` route: no route matched).
    pub fn policy(&self, route: Option<usize>) -> Option<&Policy> {
        match route {
            Some(i) => self.routes.get(i).and_then(|p| p.as_deref()),
            None => self.global.as_deref(),
        }
    }

    /// The request-decoding limits of `route`.
    pub fn decode_limits(&self, route: usize) -> DecodeLimits {
        self.decode.get(route).copied().unwrap_or_default()
    }
}

/// Compiles `[compression]` and every route's `compression`.
pub(super) fn compile(raw: &RawConfig, cx: &mut Ctx<'_>) -> CompressionConfig {
    let base = Settings::default();
    let global = raw
        .compression
        .as_ref()
        .map(|g| settings(g, &base, "compression", cx));
    let inherited = global.clone().unwrap_or_default();
    let mut out = CompressionConfig {
        global: global.as_ref().map(|s| Arc::new(s.policy.clone())),
        ..CompressionConfig::default()
    };
    let shared = out.global.clone();
    for (i, r) in raw.route.iter().enumerate() {
        let (policy, limits) = match r.compression.as_ref().map(|c| c.get_ref()) {
            None => (shared.clone(), inherited.limits),
            Some(RawRouteCompression::Enabled(false)) => (None, inherited.limits),
            Some(RawRouteCompression::Enabled(true)) => (
                Some(
                    shared
                        .clone()
                        .unwrap_or_else(|| Arc::new(inherited.policy.clone())),
                ),
                inherited.limits,
            ),
            Some(RawRouteCompression::Table(t)) => {
                let s = settings(t, &inherited, &format!("route[{i}].compression"), cx);
                (Some(Arc::new(s.policy)), s.limits)
            }
        };
        out.routes.push(policy);
        out.decode.push(limits);
    }
    out
}

/// One table's settings, compiled.
#[derive(Debug, Clone, Default)]
struct Settings {
    policy: Policy,
    limits: DecodeLimits,
}

/// `t`'s settings, what it does not set taken from `base`; errors name `key.<field>`.
fn settings(t: &RawCompression, base: &Settings, key: &str, cx: &mut Ctx<'_>) -> Settings {
    let mut s = base.clone();
    if let Some(m) = &t.min_bytes {
        s.policy.min_bytes = cx.range(m, format!("{key}.min_bytes"), &MIN_BYTES);
    }
    if let Some(types) = &t.types {
        if types.get_ref().is_empty() {
            let msg = "must list at least one media type (`compression = false` turns \
                       compression off)";
            cx.err(types, format!("{key}.types"), msg);
        }
        let mut patterns = Vec::with_capacity(types.get_ref().len());
        for (j, ty) in types.get_ref().iter().enumerate() {
            match TypePattern::parse(ty.get_ref()) {
                Ok(p) => patterns.push(p),
                Err(m) => cx.err(ty, format!("{key}.types[{j}]"), m),
            }
        }
        s.policy.types = patterns;
    }
    if let Some(r) = &t.max_decoded_ratio {
        let ratio = cx.range(r, format!("{key}.max_decoded_ratio"), &MAX_DECODED_RATIO);
        s.limits.max_ratio = usize::try_from(ratio).unwrap_or(usize::MAX);
    }
    s
}

#[cfg(test)]
#[path = "compression_tests.rs"]
mod tests;
