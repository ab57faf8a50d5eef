//! The Lambda integration: a request as an event, to a function, its answer as the response.
//!
//! SKELETON (issue 11 contract): the integration slice fills this in.

use super::{Handled, RequestCtx};
use crate::config::LambdaRoute;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::session::Session;
use crate::worker::Cx;

/// Invokes the route's function and answers with what it returned.
pub async fn run<'a, S: Session>(
    w: &Cx<'_>,
    conn: &mut S,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    route: &LambdaRoute,
) -> Result<Handled<'a>, GatewayError> {
    let _ = (w, conn, req, st, route);
    Err(GatewayError::Internal("lambda integration not built yet"))
}
