//! The mock integration: a configured static response, answered from memory.
//!
//! Owns: skipping the request body (a mock does not read it) and handing back the mock's
//! [`Response`], whose status line, fields and `content-length` were rendered at config load
//! (see [`crate::config::MockResponse`]). Leaves out: the fields every response gets (the
//! lifecycle's response filter) and serialising (the session).

use super::{Handled, RequestCtx};
use crate::config::MockResponse;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::response::Response;
use crate::session::Session;
use crate::worker::Cx;

/// Answers with `mock`.
pub async fn run<'a, S: Session>(
    _w: &Cx<'_>,
    conn: &mut S,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    mock: &'a MockResponse,
) -> Result<Handled<'a>, GatewayError> {
    conn.skip_body(req.head, st);
    Ok(Handled::Respond(Response::mock(mock)))
}
