//! `type = "aws_iam"` authorizers, compiled (see [`super::auth`]).
//!
//! Owns: checking an IAM authorizer's keys (`region`, `service`, at least one credential,
//! access key ids unique, each secret present in the environment at load, `allow` patterns)
//! and reading the secrets. Leaves out: verifying signatures (see `crate::auth::iam`).

use super::auth::IamAuthorizer;
use super::compile::Ctx;
use super::raw::RawAuthorizer;

/// Compiles authorizer `i` (its `type` is `aws_iam`).
pub(super) fn compile(i: usize, a: &RawAuthorizer, cx: &mut Ctx<'_>) -> Option<IamAuthorizer> {
    cx.err(
        &a.kind,
        format!("authorizer[{i}].type"),
        "aws_iam: not built yet",
    );
    None
}
