//! The mock integration: a configured static response, answered from memory.
//!
//! Owns: skipping the request body (a mock does not read it) and handing back the mock's
//! [`Response`], whose status line, fields and `content-length` were rendered at config load
//! (see [`crate::config::MockResponse`]). Leaves out: the fields every response gets (the
//! lifecycle's response filter) and serialising (the session).

use super::{Handled, RequestCtx};
use crate::config::MockResponse;
use crate::error::GatewayError;
use crate::proxy::conn::Downstream;
use crate::proxy::lifecycle::ExchangeState;
use crate::proxy::worker::Cx;
use crate::response::Response;
use crate::session::Session;

/// Answers with `mock`.
pub async fn run<'a>(
    _w: &Cx<'_>,
    conn: &mut Downstream,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    mock: &'a MockResponse,
) -> Result<Handled<'a>, GatewayError> {
    conn.skip_body(req.head, st);
    Ok(Handled::Respond(Response::mock(mock)))
}
