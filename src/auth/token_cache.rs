//! Verified tokens, kept per worker until they expire: a cache hit skips the signature
//! (tens of µs for RSA) for a hash and a comparison.
//!
//! Owns: [`TokenCache`], bounded by entries and by bytes (oldest evicted first, against
//! whichever bound is reached; an entry's bytes are [`entry_cost`]: the token, its claims and
//! bookkeeping, estimated from the token's length); an entry is the whole
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

/// What an entry costs besides its token and claims: the map's and queue's slots, the `Rc`s,
/// the principal's fixed part and the claims map's nodes.
pub const ENTRY_OVERHEAD_BYTES: usize = 256;
/// The token's bytes are counted this many times: once as the key, and its claims (the
/// decoded payload, three quarters of the token at most) parsed into a JSON map, about twice
/// their text.
pub const TOKEN_BYTES_FACTOR: usize = 3;

/// The bytes an entry for a token of `token_len` bytes is counted as (an estimate from above:
/// the header and signature are not in the claims).
pub fn entry_cost(token_len: usize) -> usize {
    token_len
        .saturating_mul(TOKEN_BYTES_FACTOR)
        .saturating_add(ENTRY_OVERHEAD_BYTES)
}

/// A worker's verified tokens of one authorizer.
pub struct TokenCache {
    capacity: usize,
    /// Most bytes the entries may be counted as (see [`entry_cost`]).
    budget: usize,
    inner: RefCell<Inner>,
}

struct Entry {
    /// [`entry_cost`] of the token.
    cost: usize,
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
    /// Sum of the live entries' costs.
    bytes: usize,
}

impl Inner {
    fn remove(&mut self, token: &[u8]) {
        if let Some(e) = self.map.remove(token) {
            self.bytes = self.bytes.saturating_sub(e.cost);
        }
    }
}

impl TokenCache {
    /// A cache of at most `capacity` tokens counted as at most `budget` bytes (either 0:
    /// nothing is kept).
    pub fn new(capacity: usize, budget: usize) -> TokenCache {
        TokenCache {
            capacity,
            budget,
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
        inner.remove(token);
        None
    }

    /// Keeps `token` until `expires` (Unix seconds), evicting the oldest entries beyond the
    /// capacity or the byte budget. A token already kept is replaced in place (it keeps its
    /// age). A token that alone exceeds the budget is not kept.
    pub fn insert(&self, token: &[u8], principal: Rc<Principal>, expires: u64) {
        let cost = entry_cost(token.len());
        if self.capacity == 0 || cost > self.budget {
            return;
        }
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        if let Some(e) = inner.map.get_mut(token) {
            e.principal = principal;
            e.expires = expires;
            return;
        }
        while inner.map.len() >= self.capacity || inner.bytes.saturating_add(cost) > self.budget {
            let Some((old, seq)) = inner.order.pop_front() else {
                break;
            };
            if inner.map.get(&old).is_some_and(|e| e.seq == seq) {
                inner.remove(&old);
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
        inner.bytes = inner.bytes.saturating_add(cost);
        inner.map.insert(
            key,
            Entry {
                cost,
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

    /// The bytes the kept entries are counted as (see [`entry_cost`]).
    pub fn bytes(&self) -> usize {
        self.inner.borrow().bytes
    }
}

#[cfg(test)]
#[path = "token_cache_tests.rs"]
mod tests;
