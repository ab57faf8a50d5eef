//! The `aws_iam` authorizer: Signature Version 4 on the incoming request (the `Authorization`
//! field, or a presigned query), verified with `crate::aws::sigv4` against the configured
//! credentials, then the principal's `allow` patterns against the route key.
//!
//! Owns: [`authorize`] (missing → 403 Missing Authentication Token; malformed, unknown key,
//! mismatch, expired (`x-amz-date` within 5 minutes), payload hash, not allowed → 403 with
//! AWS's messages), the payload hash (`x-amz-content-sha256`, or the body read and hashed),
//! and the principal (`$context.identity.userArn` / `.accessKey`). Leaves out: the signature
//! algorithm itself (see `crate::aws::sigv4`).

use std::rc::Rc;

use super::Principal;
use crate::config::auth::IamAuthorizer;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::RequestHead;
use crate::session::Session;
use crate::worker::Cx;

/// Admits a request whose signature verifies and whose principal may call the route.
pub async fn authorize<S: Session>(
    w: &Cx<'_>,
    sess: &mut S,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
    authorizer: usize,
    config: &IamAuthorizer,
) -> Result<Rc<Principal>, GatewayError> {
    let _ = (w, sess, head, st, route, authorizer, config);
    Err(GatewayError::AuthorizerFailed(
        "aws_iam authorizer not built yet",
    ))
}
