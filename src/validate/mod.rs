//! Request validation (API Gateway REST API's request validators): required headers and query
//! string parameters, and the JSON body against a `[[model]]`'s JSON Schema.
//!
//! Owns: the compiled [`RouteValidation`] and its two phases, in the lifecycle's order:
//! [`parameters`] on the head before the body phase (a missing header costs no body read:
//! 400 `{"message": "Missing required request parameters: [x-tenant]"}`), then [`phase`] on
//! the held body (400 `{"message": "Invalid request body", "details": [...]}` naming each
//! failing JSON pointer, bounded; 415 for a body that is not JSON). A refused request never
//! reaches the integration: the origin sees nothing of it. Data flows config → [`model`]
//! (compiled at load, immutable, shared read-only by every worker like the rest of the
//! config) → [`params`] and [`body`] per request. Leaves out: reading the body (see
//! [`crate::transform::hold`]), reading model files and naming config keys (see
//! [`crate::config::validation`]) and the answer's final form (the lifecycle's error mapping
//! and `[[gateway_response]]` types `BAD_REQUEST_PARAMETERS`, `BAD_REQUEST_BODY`,
//! `UNSUPPORTED_MEDIA_TYPE`).

pub mod body;
pub mod model;
pub mod params;

use std::sync::Arc;

use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::RequestHead;

/// A route's compiled validation.
#[derive(Debug, Default)]
pub struct RouteValidation {
    /// The model the JSON body must satisfy (shared by every route naming it).
    pub body: Option<Arc<model::Model>>,
    /// Headers and query string parameters that must be present and not blank.
    pub required: params::Required,
}

impl RouteValidation {
    /// Whether the body is validated (the route then holds it).
    pub fn reads_body(&self) -> bool {
        self.body.is_some()
    }
}

/// The body check: the held body against the route's model (nothing without one).
pub fn check(
    v: &RouteValidation,
    head: &RequestHead,
    st: &mut ExchangeState,
) -> Result<(), GatewayError> {
    match &v.body {
        Some(m) => body::check(m, head, st).map_err(|r| body::refuse(r, st)),
        None => Ok(()),
    }
}

/// The route's validation, if it has one.
fn of<'c>(w: &'c crate::worker::Cx<'_>, route: usize) -> Option<&'c RouteValidation> {
    w.g.config
        .validation
        .routes
        .get(route)
        .and_then(Option::as_ref)
}

/// Before the body phase: the route's required headers and query string parameters (400
/// naming every missing one; the body is left unread).
pub fn parameters(
    w: &crate::worker::Cx<'_>,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
) -> Result<(), GatewayError> {
    match of(w, route).and_then(|v| v.required.missing(head)) {
        Some(message) => {
            st.detail = Some(message.into_boxed_str());
            Err(GatewayError::MissingParameters)
        }
        None => Ok(()),
    }
}

/// Phase 10: the held body against the route's model, if it has one.
pub fn phase(
    w: &crate::worker::Cx<'_>,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
) -> Result<(), GatewayError> {
    match of(w, route) {
        Some(v) => check(v, head, st),
        None => Ok(()),
    }
}
