//! A route's `response_parameters` applied to one response: the operations for its status
//! (`overwrite:statuscode`, header operations), rendered into a status and
//! [`ResponseEdits`] the serialisers apply.

use super::value::Vars;
use super::{ResponseEdits, RouteMapping};

/// The operations for `status`: the new status, if overwritten, and the header edits.
pub fn apply<'a>(
    _m: &'a RouteMapping,
    _status: u16,
    _vars: &Vars<'_>,
) -> (Option<u16>, Option<ResponseEdits<'a>>) {
    (None, None)
}

/// The response filter's part (see `crate::proxy::lifecycle::response_filter`): when `r`'s
/// route maps responses of its status, overwrite the status and set the header edits the
/// serialisers apply. Gateway errors are not mapped (see [`crate::gateway_response`]).
pub fn filter<'a>(
    _w: &crate::worker::Cx<'a>,
    _facts: &crate::facts::ConnFacts,
    _head: &'a crate::http::RequestHead,
    _st: &crate::exchange::ExchangeState,
    _r: &mut crate::response::Response<'a>,
) {
}
