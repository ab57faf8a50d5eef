//! The JWT authorizer phase: the token from the identity source, the worker's token cache,
//! else verification against the worker's key set, then the route's scopes.
//!
//! Owns: [`JwtState`] (the key store and token cache of one authorizer on one worker) and
//! [`authorize`] (missing token → 401, invalid → 401, missing scope → 403, keys unavailable →
//! 500). Leaves out: verification (see [`super::jwt`]), fetching keys (see [`super::keys`]).

use std::rc::Rc;

use super::keys::KeyStore;
use super::token_cache::TokenCache;
use super::Principal;
use crate::config::auth::JwtAuthorizer;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::RequestHead;
use crate::worker::Cx;

/// One JWT authorizer's state on one worker.
pub struct JwtState {
    pub keys: KeyStore,
    pub tokens: TokenCache,
}

impl JwtState {
    /// The state for `config`; `old`: the previous generation's state of the authorizer of
    /// the same name (its key set carries over when the key source is unchanged).
    pub fn new(config: &JwtAuthorizer, old: Option<(&JwtAuthorizer, &Rc<JwtState>)>) -> JwtState {
        let _ = old;
        JwtState {
            keys: KeyStore::default(),
            tokens: TokenCache::new(config.cache_entries),
        }
    }
}

/// Admits the request with the principal its token proves (see the module doc).
pub async fn authorize(
    w: &Cx<'_>,
    head: &RequestHead,
    st: &mut ExchangeState,
    authorizer: usize,
    config: &JwtAuthorizer,
    state: &Rc<JwtState>,
    scopes: &[String],
) -> Result<Rc<Principal>, GatewayError> {
    let _ = (w, head, st, authorizer, config, state, scopes);
    Err(GatewayError::AuthorizerFailed(
        "jwt authorizer not built yet",
    ))
}
