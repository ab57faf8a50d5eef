//! The mock integration: a configured response, answered from memory.
//!
//! Owns: skipping the request body (a mock does not read it) and handing back the mock's
//! [`Response`]: the bytes rendered at config load (see [`crate::config::MockResponse`]), or,
//! for a mock whose body or headers hold variables (`$request.path.id`, `$context.requestId`),
//! those rendered for this request (see [`crate::mapping::mock`]). Leaves out: the fields
//! every response gets (the lifecycle's response filter) and serialising (the session).

use super::{Handled, RequestCtx};
use crate::config::MockResponse;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::response::Response;
use crate::session::Session;
use crate::worker::Cx;

/// Answers with `mock`, or with its values rendered for this request.
pub async fn run<'a, S: Session>(
    w: &Cx<'_>,
    conn: &mut S,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    mock: &'a MockResponse,
) -> Result<Handled<'a>, GatewayError> {
    conn.skip_body(req.head, st);
    let rendered =
        crate::mapping::mock::respond(w, conn.facts(), req.head, req.params, st, req.route);
    Ok(Handled::Respond(match rendered {
        Some(m) => Response::held(m),
        None => Response::mock(mock),
    }))
}
