//! Gateway responses: API Gateway's customisation of its own errors (`[[gateway_response]]`
//! with `type`, `status`, `headers` and a body template), with AWS's response type names and
//! fallbacks (a specific type, else `DEFAULT_4XX` / `DEFAULT_5XX`).
//!
//! Owns: the compiled [`GatewayResponses`], the type of each failure
//! ([`response_type`]: `THROTTLED`, `UNAUTHORIZED`, ...) and rendering a customised response
//! for one. Leaves out: choosing the status of a failure (see
//! [`crate::error::GatewayError::status`]); the lifecycle's error mapping calls this, and stays
//! the one place errors become responses.

/// Every configured gateway response.
#[derive(Debug, Default)]
pub struct GatewayResponses {}

/// The response error mapping sends for failure `e`: `r` (the standard one), or the
/// `[[gateway_response]]` configured for the failure's type, rendered for this request.
pub fn customise<'a>(
    _w: &crate::worker::Cx<'_>,
    _facts: &crate::facts::ConnFacts,
    _head: &crate::http::RequestHead,
    _st: &crate::exchange::ExchangeState,
    _e: &crate::error::GatewayError,
    r: crate::response::Response<'a>,
) -> crate::response::Response<'a> {
    r
}
