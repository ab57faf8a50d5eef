//! Which routes hold their request body in memory, and how much of it.
//!
//! Owns: [`BodyHolds`]: for each route, the largest request body read whole before the
//! integration (`route.max_body_bytes`, default [`DEFAULT_MAX_BODY_BYTES`]) when something
//! needs the whole body — a request body transformation, a request template, a model to
//! validate, a parameter mapping reading `$request.body` — else `None`: the body keeps
//! streaming. Leaves out: reading and decoding the body (see [`crate::transform::hold`]) and
//! what needs it (each feature's compiled config says so).

use super::compile::Ctx;
use super::raw::RawConfig;

/// Default `max_body_bytes`: API Gateway's payload limit (10 MB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Accepted `max_body_bytes`.
pub const MAX_BODY_BYTES: std::ops::RangeInclusive<usize> = 1..=128 * 1024 * 1024;

/// Every route's body hold, by route index.
#[derive(Debug, Default)]
pub struct BodyHolds {
    /// `Some(max)`: the route reads its request body whole, up to `max` bytes (413 beyond).
    pub routes: Vec<Option<usize>>,
}

/// Which routes hold their body: `needs[i]` says whether route `i` has a feature that reads
/// the whole body (its `max_body_bytes` is checked either way).
pub(super) fn compile(raw: &RawConfig, needs: &[bool], cx: &mut Ctx<'_>) -> BodyHolds {
    let routes = raw
        .route
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let max = r
                .max_body_bytes
                .as_ref()
                .map_or(DEFAULT_MAX_BODY_BYTES, |m| {
                    cx.range(m, format!("route[{i}].max_body_bytes"), &MAX_BODY_BYTES)
                });
            needs.get(i).copied().unwrap_or(false).then_some(max)
        })
        .collect();
    BodyHolds { routes }
}
