//! A request authorizer's memory, in two levels: each worker's answers and lookups in flight
//! (the first level, lock-free), and the process-wide answers and flights every worker
//! consults on a miss of its own (the second level, behind a `Mutex`).
//!
//! Owns: [`Cache`] (a map of values that expire, bounded in entries and in bytes: at either
//! bound, expired and oldest entries go first), [`key`] (identity values → a SHA-256 key of 32
//! bytes, whatever their size), the worker's in-flight map ([`Flights`]) with its [`Lead`]
//! (the lookup that calls; it ends the flight with its result, or as abandoned when dropped,
//! waking every waiter) and [`wait`], and [`SharedAnswers`] (answers as the authorizer sent
//! them, the keys some worker is calling for, and how each such call ended when it got no
//! answer to keep: [`SharedAnswers::lookup`] returns a [`SharedLead`] to the worker that
//! claims a key; [`SharedLead::finish`] shares an answer, [`SharedLead::fail`] a failure (a
//! timeout, an error, a URL's 401/403 with the response to forward) kept for the workers that
//! polled that very call (not for later lookups, which call again) until the call's deadline
//! and [`SHARED_FAILURE_GRACE`]; its drop withdraws the claim). Leaves out: what is cached and
//! when, and how a waiting worker polls (see `super::request`).
//!
//! What crosses cores: only [`SharedAnswers`] (an `Arc` in the compiled config), its state in
//! one `Mutex` (the lock's acquire/release orders every read after the write it sees; nothing
//! is read outside it). It holds bytes, instants and failures' words (a forwarded response's
//! `Bytes` are `Send`), never an `Rc` or a waker: a worker
//! parses an answer it finds there into its own `Rc`s, and waits for another worker's call by
//! polling. The first level is one worker's: `Rc` and `RefCell`, no borrow held across an
//! await (a waiter's future only borrows while it is polled).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Instant;

use ahash::AHashMap;

use super::Refusal;
use crate::config::auth::CACHE_ENTRY_OVERHEAD;
use crate::config::MockResponse;

/// How long after its deadline a claimed call still counts as in flight, and its failure is
/// kept for the workers that polled it: a claimer whose call times out publishes the failure
/// just after the claim's deadline (its call's own deadline is computed a little later), and
/// a poller must not take that moment for a vanished claimer and call again. A claimer that
/// really vanished (its worker stuck) is taken over this much later.
pub(super) const SHARED_FAILURE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// A cache key: SHA-256 of the length-prefixed identity values.
pub(super) type Key = [u8; 32];

/// A map of values that expire, bounded in entries and in bytes.
pub(super) struct Cache<V> {
    map: AHashMap<Key, Entry<V>>,
    /// Insertion order (key, its expiry then), for eviction; entries whose key was inserted
    /// again since are stale and skipped. Never longer than `cap`.
    order: VecDeque<(Key, Instant)>,
    cap: usize,
    /// Bytes held (each entry's weight), at most `max_bytes`.
    bytes: usize,
    max_bytes: usize,
}

struct Entry<V> {
    expires: Instant,
    value: V,
    weight: usize,
}

impl<V: Clone> Cache<V> {
    /// At most `cap` entries weighing at most `max_bytes` together.
    pub(super) fn new(cap: usize, max_bytes: usize) -> Cache<V> {
        Cache {
            map: AHashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
            bytes: 0,
            max_bytes,
        }
    }

    /// Entries held now.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// The value of `key` unless it expired by `now` (an expired one is dropped).
    pub(super) fn get(&mut self, key: &Key, now: Instant) -> Option<V> {
        match self.map.get(key) {
            Some(e) if e.expires > now => Some(e.value.clone()),
            Some(_) => {
                self.remove(key);
                None
            }
            None => None,
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.map.remove(key) {
            self.bytes = self.bytes.saturating_sub(e.weight);
        }
    }

    /// Keeps `v` (weighing `bytes` besides [`CACHE_ENTRY_OVERHEAD`]) for `key` until
    /// `expires`, making room first; a value heavier than the whole budget is not kept.
    pub(super) fn insert(&mut self, key: Key, expires: Instant, v: V, bytes: usize, now: Instant) {
        let weight = bytes.saturating_add(CACHE_ENTRY_OVERHEAD);
        self.remove(&key);
        if weight > self.max_bytes {
            return;
        }
        // every entry has an order entry, so `order` bounded at cap bounds the map too
        while self.order.len() >= self.cap || self.bytes.saturating_add(weight) > self.max_bytes {
            let Some((k, at)) = self.order.pop_front() else {
                break;
            };
            // the key's current entry goes when this order entry is its own, or it expired
            if self
                .map
                .get(&k)
                .is_some_and(|e| e.expires == at || e.expires <= now)
            {
                self.remove(&k);
            }
        }
        self.order.push_back((key, expires));
        self.bytes = self.bytes.saturating_add(weight);
        self.map.insert(
            key,
            Entry {
                expires,
                value: v,
                weight,
            },
        );
    }
}

/// The cache key of identity values: SHA-256 over each value length-prefixed, so no two lists
/// share a key and a key is 32 bytes however large the values.
pub(super) fn key(values: &[String]) -> Key {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for v in values {
        ctx.update(&u64::try_from(v.len()).unwrap_or(u64::MAX).to_le_bytes());
        ctx.update(v.as_bytes());
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(ctx.finish().as_ref());
    k
}

/// Lookups in flight on one worker, by cache key.
pub(super) type Flights<V> = Rc<RefCell<AHashMap<Key, Rc<Flight<V>>>>>;

/// A call in flight: its end, once known, and the lookups waiting for it.
pub(super) struct Flight<V> {
    end: RefCell<Option<FlightEnd<V>>>,
    /// One slot per waiter (its index kept by the waiter: registering again is O(1)).
    waiters: RefCell<Vec<Waker>>,
}

/// How a flight ended.
#[derive(Clone)]
pub(super) enum FlightEnd<V> {
    Done(V),
    /// The leading lookup was dropped, or gave up without a result to share: waiters look
    /// up again.
    Abandoned,
}

/// The leading lookup of a flight.
pub(super) struct Lead<V> {
    flights: Flights<V>,
    key: Key,
    flight: Rc<Flight<V>>,
}

impl<V> Lead<V> {
    /// Starts the flight of `key` (no other may be in flight for it).
    pub(super) fn start(flights: &Flights<V>, key: Key) -> Lead<V> {
        let flight = Rc::new(Flight {
            end: RefCell::new(None),
            waiters: RefCell::new(Vec::new()),
        });
        flights.borrow_mut().insert(key, flight.clone());
        Lead {
            flights: flights.clone(),
            key,
            flight,
        }
    }

    /// Ends the flight with `v` for every waiter.
    pub(super) fn finish(&self, v: V) {
        self.end(FlightEnd::Done(v));
    }

    fn end(&self, end: FlightEnd<V>) {
        if self.flight.end.borrow().is_some() {
            return;
        }
        *self.flight.end.borrow_mut() = Some(end);
        self.flights.borrow_mut().remove(&self.key);
        for w in self.flight.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

impl<V> Drop for Lead<V> {
    fn drop(&mut self) {
        self.end(FlightEnd::Abandoned);
    }
}

/// The flight in progress for `key`, if any.
pub(super) fn flying<V>(flights: &Flights<V>, key: &Key) -> Option<Rc<Flight<V>>> {
    flights.borrow().get(key).cloned()
}

/// Waits for `flight` to end. The waiter takes one slot on its first poll and only replaces
/// its own waker after: O(1) per poll, however many wait.
pub(super) async fn wait<V: Clone>(flight: &Flight<V>) -> FlightEnd<V> {
    let mut slot: Option<usize> = None;
    std::future::poll_fn(|cx| match &*flight.end.borrow() {
        Some(end) => Poll::Ready(end.clone()),
        None => {
            let mut waiters = flight.waiters.borrow_mut();
            match slot.and_then(|i| waiters.get_mut(i)) {
                Some(w) => {
                    if !w.will_wake(cx.waker()) {
                        *w = cx.waker().clone();
                    }
                }
                None => {
                    slot = Some(waiters.len());
                    waiters.push(cx.waker().clone());
                }
            }
            Poll::Pending
        }
    })
    .await
}

/// A request authorizer's process-wide answers: what some worker's call got (the answer's
/// bytes, as the authorizer sent them), and which keys a worker is calling for now.
pub struct SharedAnswers {
    state: Mutex<SharedState>,
}

struct SharedState {
    /// Answers and when each expires.
    answers: Cache<(Arc<[u8]>, Instant)>,
    /// Keys some worker is calling for: the call's flight number and deadline.
    calling: AHashMap<Key, Claim>,
    /// Calls that ended without an answer to keep, by key: what their pollers get.
    failed: AHashMap<Key, Failed>,
    /// The flight number of the next claim (numbers tell a poller's call from a later one).
    next_flight: u64,
}

/// A worker's call in flight for a key.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Claim {
    flight: u64,
    deadline: Instant,
}

/// A call that ended without an answer: its flight, until when it is kept, how it failed.
struct Failed {
    flight: u64,
    keep_until: Instant,
    failure: SharedFailure,
}

/// How a worker's call ended without an answer to keep, as every worker that polled it answers
/// its own request: the refusal, its words (for the access log), and a URL authorizer's
/// 401/403 response as forwarded.
#[derive(Clone)]
pub(super) struct SharedFailure {
    pub(super) refusal: Refusal,
    pub(super) why: Box<str>,
    pub(super) forwarded: Option<MockResponse>,
}

/// What the process-wide level says about a key.
pub(super) enum Shared {
    /// An answer, unexpired, and when it expires.
    Answer(Arc<[u8]>, Instant),
    /// Another worker is calling for it (this flight): poll again, naming the flight.
    Calling { flight: u64 },
    /// The call this lookup polled (the flight it named) ended so.
    Failed(SharedFailure),
    /// None of these: this worker now holds the claim to call.
    Claimed(SharedLead),
}

impl std::fmt::Debug for SharedAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedAnswers")
    }
}

impl SharedAnswers {
    /// At most `cap` answers weighing at most `max_bytes` (their bytes plus
    /// [`CACHE_ENTRY_OVERHEAD`] each); the keys being called for are at most `cap` too.
    pub fn new(cap: usize, max_bytes: usize) -> SharedAnswers {
        SharedAnswers {
            state: Mutex::new(SharedState {
                answers: Cache::new(cap, max_bytes),
                calling: AHashMap::new(),
                failed: AHashMap::new(),
                next_flight: 0,
            }),
        }
    }

    /// The state; a worker that panicked while holding the lock left it consistent (each
    /// operation is one map update), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, SharedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers held now (for tests and the curious).
    pub fn len(&self) -> usize {
        self.lock().answers.len()
    }

    /// Whether no answer is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The answer for `key`, or another worker's call in flight for it, or how the call this
    /// lookup polled (`polled`: its flight) ended without an answer, or the claim to call for
    /// it until `deadline` (a claim [`SHARED_FAILURE_GRACE`] past its deadline is taken over).
    pub(super) fn lookup(
        self: &Arc<Self>,
        key: &Key,
        now: Instant,
        deadline: Instant,
        polled: Option<u64>,
    ) -> Shared {
        let mut s = self.lock();
        if let Some((a, expires)) = s.answers.get(key, now) {
            return Shared::Answer(a, expires);
        }
        if let Some(c) = s.calling.get(key) {
            if c.deadline + SHARED_FAILURE_GRACE > now {
                return Shared::Calling { flight: c.flight };
            }
        }
        if let Some(f) = s.failed.get(key) {
            if Some(f.flight) == polled && f.keep_until > now {
                return Shared::Failed(f.failure.clone());
            }
        }
        if s.calling.len() >= s.answers.cap {
            // bounded: claims past their deadline go (a worker that lost its own claim only
            // misses the chance to share its end)
            s.calling
                .retain(|_, c| c.deadline + SHARED_FAILURE_GRACE > now);
        }
        let flight = s.next_flight;
        s.next_flight = flight.wrapping_add(1);
        let claim = Claim { flight, deadline };
        s.calling.insert(*key, claim);
        Shared::Claimed(SharedLead {
            shared: self.clone(),
            key: *key,
            claim,
        })
    }
}

/// A worker's claim to call for a key: withdrawn when dropped, with or without an answer.
pub(super) struct SharedLead {
    shared: Arc<SharedAnswers>,
    key: Key,
    claim: Claim,
}

impl SharedLead {
    /// Shares `answer` until `expires`, for every worker.
    pub(super) fn finish(&self, answer: Arc<[u8]>, expires: Instant) {
        let now = Instant::now();
        let bytes = answer.len();
        self.shared
            .lock()
            .answers
            .insert(self.key, expires, (answer, expires), bytes, now);
    }

    /// Tells the workers polling this call how it ended without an answer to keep, and
    /// withdraws the claim (one step under the lock: a poller sees the call in flight or its
    /// end, never neither). Kept until the call's deadline and [`SHARED_FAILURE_GRACE`].
    pub(super) fn fail(self, failure: SharedFailure) {
        let now = Instant::now();
        let mut s = self.shared.lock();
        if s.failed.len() >= s.answers.cap {
            // bounded like the claims: ends no poller can take any more go first
            s.failed.retain(|_, f| f.keep_until > now);
        }
        if s.failed.len() < s.answers.cap || s.failed.contains_key(&self.key) {
            let keep_until = self.claim.deadline.max(now) + SHARED_FAILURE_GRACE;
            let flight = self.claim.flight;
            let f = Failed {
                flight,
                keep_until,
                failure,
            };
            s.failed.insert(self.key, f);
        }
        if s.calling.get(&self.key) == Some(&self.claim) {
            s.calling.remove(&self.key);
        }
    }
}

impl Drop for SharedLead {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        // only this claim's: one that took over after our deadline stays
        if s.calling.get(&self.key) == Some(&self.claim) {
            s.calling.remove(&self.key);
        }
    }
}

#[cfg(test)]
#[path = "request_cache_tests.rs"]
mod tests;
