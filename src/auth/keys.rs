//! A worker's key set for one JWT authorizer: fetched through the worker's own pools
//! (`crate::client`, the hidden upstream `jwks:NAME`), refreshed in the background, refetched
//! on an unknown `kid` at most once per [`crate::config::auth::UNKNOWN_KID_REFETCH`], and kept
//! (the last good one) when the identity provider is down.
//!
//! Owns: [`KeyStore`]. Leaves out: parsing (see [`super::jwks`]).

/// A worker's key set of one JWT authorizer.
#[derive(Default)]
pub struct KeyStore {}
