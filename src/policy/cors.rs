//! CORS (the Fetch standard's CORS protocol, API Gateway HTTP API's `CorsConfiguration`).
//!
//! Owns: recognising and answering a preflight ([`preflight`]: `OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`, answered 204 before routing and before authorizers, for any
//! path), and choosing the fields an allowed origin's actual response gets ([`fields`], put in
//! [`crate::response::Added::cors`] by the response filter, errors included). Leaves out:
//! compiling policies (see `crate::config::access`) and serialising the fields (the sessions).

use crate::config::access::CorsPolicy;
use crate::config::Config;
use crate::http::RequestHead;
use crate::response::Response;

/// The CORS fields of one response: the policy that allowed `origin`.
#[derive(Debug, Clone, Copy)]
pub struct CorsFields<'a> {
    /// The request's `Origin`, echoed in `access-control-allow-origin` (or `*`, see the
    /// policy).
    pub origin: &'a [u8],
    pub policy: &'a CorsPolicy,
}

/// A preflight's answer, when `head` is one and CORS applies to its path: 204 with the
/// allowed methods and headers (an origin or method not allowed gets the 204 without them, so
/// the browser refuses; nothing reaches routing or an authorizer). `None`: not a preflight,
/// or no CORS for it; the request is routed as usual.
pub fn preflight<'a>(config: &'a Config, head: &'a RequestHead) -> Option<Response<'a>> {
    let _ = (config, head);
    None
}

/// The fields an actual (non-preflight) response gets: `None` without an `Origin`, without a
/// policy for the route (`route`: the matched one; `None`: no route matched, the global
/// policy applies), or for an origin the policy does not allow.
pub fn fields<'a>(
    config: &'a Config,
    route: Option<usize>,
    head: &'a RequestHead,
) -> Option<CorsFields<'a>> {
    let _ = (config, route, head);
    None
}
