//! Verified tokens, kept per worker until they expire: a cache hit skips the signature
//! (tens of µs for RSA) for a hash and a comparison.
//!
//! Owns: [`TokenCache`], bounded by entries (oldest evicted first); an entry is the whole
//! token (compared byte for byte, so a hash collision cannot admit another token) and the
//! [`Principal`] it proved. Leaves out: verifying (see [`super::jwt`]); route scopes are
//! checked on every hit by the caller.
//!
//! Data flow: the JWT phase asks [`TokenCache::get`] first (a hit clones an `Rc`, nothing is
//! allocated); on a miss it verifies and calls [`TokenCache::insert`] with the token's expiry
//! (its `exp` plus the leeway). Eviction is FIFO by insertion, not LRU: a hit then touches no
//! bookkeeping, and a token is re-verified at most once per eviction. Expired entries go when a
//! `get` meets them or when eviction reaches them. Per core: `RefCell`, never shared.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use super::Principal;

/// A worker's verified tokens of one authorizer.
pub struct TokenCache {
    capacity: usize,
    inner: RefCell<Inner>,
}

struct Entry {
    principal: Rc<Principal>,
    /// Unix seconds from which the entry is dead.
    expires: u64,
    /// Insertion number, matched against [`Inner::order`] to tell live slots from stale ones.
    seq: u64,
}

#[derive(Default)]
struct Inner {
    /// Keyed by the token's bytes; `Rc<[u8]>` so the insertion queue shares them.
    map: HashMap<Rc<[u8]>, Entry, ahash::RandomState>,
    /// Tokens in insertion order with their insertion number; a slot whose entry was since
    /// removed (expired) or replaced (another `seq`) is stale and skipped by eviction.
    order: VecDeque<(Rc<[u8]>, u64)>,
    next_seq: u64,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (0: nothing is kept).
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            inner: RefCell::new(Inner::default()),
        }
    }

    /// The principal `token` proved, while `now` (Unix seconds) is before its expiry. An
    /// expired entry is removed.
    pub fn get(&self, token: &[u8], now: u64) -> Option<Rc<Principal>> {
        let mut inner = self.inner.borrow_mut();
        let entry = inner.map.get(token)?;
        if now < entry.expires {
            return Some(Rc::clone(&entry.principal));
        }
        inner.map.remove(token);
        None
    }

    /// Keeps `token` until `expires` (Unix seconds), evicting the oldest entries beyond the
    /// capacity. A token already kept is replaced in place (it keeps its age).
    pub fn insert(&self, token: &[u8], principal: Rc<Principal>, expires: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        if let Some(e) = inner.map.get_mut(token) {
            e.principal = principal;
            e.expires = expires;
            return;
        }
        while inner.map.len() >= self.capacity {
            let Some((old, seq)) = inner.order.pop_front() else {
                break;
            };
            if inner.map.get(&old).is_some_and(|e| e.seq == seq) {
                inner.map.remove(&old);
            }
        }
        // stale slots (entries that expired) pile up only until they are a capacity's worth
        if inner.order.len() >= self.capacity.saturating_mul(2) {
            let map = &inner.map;
            inner
                .order
                .retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
        }
        let key: Rc<[u8]> = Rc::from(token);
        let seq = inner.next_seq;
        inner.next_seq = seq.wrapping_add(1);
        inner.order.push_back((Rc::clone(&key), seq));
        inner.map.insert(
            key,
            Entry {
                principal,
                expires,
                seq,
            },
        );
    }

    /// Tokens kept (live or not yet found expired).
    pub fn len(&self) -> usize {
        self.inner.borrow().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
#[path = "token_cache_tests.rs"]
mod tests;
