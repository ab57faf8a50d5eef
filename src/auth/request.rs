//! Request authorizers: API Gateway's Lambda REQUEST authorizer (a `[[function]]`, local or
//! remote, invoked through the Lambda integration's invoker) or an HTTP endpoint (`url`,
//! through `crate::client`) that gets the same JSON payload.
//!
//! Owns: [`RequestState`] (per worker: results cached for `ttl_s` by identity-source values,
//! bounded; identical lookups in flight coalesced into one call) and [`authorize`] (a missing
//! identity source → 401 without a call; deny → 403; an error, timeout or malformed answer →
//! 500). Leaves out: the payload and answer formats (see [`super::request_payload`],
//! [`super::iam_policy`]).

use std::rc::Rc;

use super::Principal;
use crate::config::auth::RequestAuthorizer;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::RequestHead;
use crate::session::Session;
use crate::worker::Cx;

/// One request authorizer's state on one worker.
pub struct RequestState {}

impl RequestState {
    pub fn new(config: &RequestAuthorizer) -> RequestState {
        let _ = config;
        RequestState {}
    }
}

/// Admits the request as the authorizer answers (see the module doc).
#[allow(clippy::too_many_arguments)]
pub async fn authorize<S: Session>(
    w: &Cx<'_>,
    sess: &S,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
    authorizer: usize,
    config: &RequestAuthorizer,
    state: &Rc<RequestState>,
) -> Result<Rc<Principal>, GatewayError> {
    let _ = (w, sess, head, st, route, authorizer, config, state);
    Err(GatewayError::AuthorizerFailed(
        "request authorizer not built yet",
    ))
}
