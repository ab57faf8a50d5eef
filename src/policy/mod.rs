//! Access policies that run before authorizers and need no call out: CORS ([`cors`]: the
//! preflight answered before routing, the fields added to every response of an allowed
//! origin), and the route's access rules ([`access`]: the client's address against IP rules,
//! behind trusted proxies; a verified client certificate for `mtls` routes, its subject matched
//! attribute by attribute by [`subject`]).
//!
//! Owns: applying `crate::config::access`'s compiled settings to a request. Leaves out:
//! compiling them (see `crate::config::access`), authorizers (see `crate::auth`), and writing
//! fields (the sessions serialise what the response filter put in
//! [`crate::response::Added`]).

pub mod access;
pub mod cors;
pub mod subject;
