//! Integrations: what a routed, admitted request is answered by.
//!
//! Owns: the integration modules, each with the same entry shape `run(cx, session, req, st,
//! cfg) -> Result<Handled, GatewayError>`, generic over the client's [`Session`] (never a
//! concrete connection: an integration does not know the client's protocol): [`mock`] (a response from memory), [`http`] (forward to
//! an upstream: the head rewrite in [`rewrite`], the exchange through [`crate::client`], the
//! response relayed by [`relay`]; a WebSocket upgrade on a route that allows it: [`websocket`],
//! with the handshake rules in [`ws_handshake`]); [`lambda`] (a function invoked through the
//! Lambda Invoke API with the request as an event, its answer turned into the response). Leaves out: the phases around them
//! (route, auth, throttle, the response filter, error mapping, logging: see
//! the lifecycle in `proxy`, which this module never imports) and the client connection's
//! protocol (the session's).
//!
//! Data flow: the lifecycle calls [`run`] with the request ([`RequestCtx`]) and the route's
//! integration config; a producer that answers from memory returns [`Handled::Respond`] with a
//! [`Response`], which the lifecycle filters and the session sends; the HTTP integration reads
//! the request body through the session, and hands the origin's response to
//! [`Session::relay`] (the session the lifecycle passes in puts its response filter in front),
//! returning [`Handled::Sent`]; the Lambda integration reads the whole body through the session,
//! waits for the function's whole answer and returns it as a held [`Response`].

pub mod http;
pub mod lambda;
pub mod mock;
pub mod relay;
pub mod rewrite;
pub mod websocket;
pub mod ws_handshake;

use crate::config::Integration;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::RequestHead;
use crate::response::Response;
use crate::session::Session;
use crate::worker::Cx;

/// What an integration did with the request.
// Returned once per request and moved straight into `send`: boxing the response would
// allocate for every mock answer, to save a move of ~200 bytes.
#[allow(clippy::large_enum_variant)]
pub enum Handled<'a> {
    /// A response to send (through the response filter and the session).
    Respond(Response<'a>),
    /// The response was streamed to the client (an origin's, relayed; it went through the
    /// response filter and the session's serialiser on its way).
    Sent,
}

/// The request as integrations see it.
pub struct RequestCtx<'r> {
    pub head: &'r RequestHead,
    /// The route's path parameters, in path order.
    pub params: &'r [&'r [u8]],
    /// The route's index in the config (per-route metrics, e.g. open WebSocket connections).
    pub route: usize,
}

/// Runs the route's integration.
pub async fn run<'a, S: Session>(
    w: &Cx<'_>,
    conn: &mut S,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    integration: &'a Integration,
) -> Result<Handled<'a>, GatewayError> {
    match integration {
        Integration::Mock(m) => mock::run(w, conn, req, st, m).await,
        Integration::Lambda(l) => lambda::run(w, conn, req, st, l).await,
        Integration::Http {
            upstream,
            path,
            forwarding,
        } => {
            let call = http::HttpCall {
                upstream: *upstream,
                path: path.as_ref(),
                forwarding,
            };
            http::run(w, conn, req, st, call).await
        }
    }
}
