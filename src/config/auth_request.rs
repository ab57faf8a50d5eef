//! `type = "request"` authorizers (API Gateway's Lambda REQUEST authorizer, or an HTTP
//! endpoint), compiled (see [`super::auth`]).
//!
//! Owns: checking a request authorizer's keys (exactly one of `function` and `url`, the
//! function known, `payload_format`, `simple_responses` only with 2.0, identity sources,
//! ranges) and building a `url` authorizer's hidden upstream `authorizer:NAME`. Leaves out:
//! calling it (see `crate::auth::request`).

use super::auth::RequestAuthorizer;
use super::compile::Ctx;
use super::raw::{RawAuthorizer, RawFunction};
use super::upstreams::UpstreamConfig;

/// Compiles authorizer `i` (its `type` is `request`).
pub(super) fn compile(
    i: usize,
    a: &RawAuthorizer,
    functions: &[RawFunction],
    upstreams: &mut Vec<UpstreamConfig>,
    cx: &mut Ctx<'_>,
) -> Option<RequestAuthorizer> {
    let _ = (functions, upstreams);
    cx.err(
        &a.kind,
        format!("authorizer[{i}].type"),
        "request: not built yet",
    );
    None
}
