//! `type = "jwt"` authorizers, compiled (see [`super::auth`]).
//!
//! Owns: checking a JWT authorizer's keys (`issuer` an https URL — http allowed for tests on
//! loopback —, `audience` not empty, `jwks_uri` or discovery from the issuer, the identity
//! source, ranges) and building its hidden upstream `jwks:NAME`. Leaves out: verifying tokens
//! (see `crate::auth::jwt`).

use super::auth::JwtAuthorizer;
use super::compile::Ctx;
use super::raw::RawAuthorizer;
use super::upstreams::UpstreamConfig;

/// Compiles authorizer `i` (its `type` is `jwt`).
pub(super) fn compile(
    i: usize,
    a: &RawAuthorizer,
    upstreams: &mut Vec<UpstreamConfig>,
    cx: &mut Ctx<'_>,
) -> Option<JwtAuthorizer> {
    let _ = upstreams;
    cx.err(
        &a.kind,
        format!("authorizer[{i}].type"),
        "jwt: not built yet",
    );
    None
}
