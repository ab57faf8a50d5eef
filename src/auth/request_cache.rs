//! A request authorizer's per-worker memory: answers cached by identity-source values, and
//! the lookups in flight that identical lookups wait for instead of calling again.
//!
//! Owns: [`Cache`] (a bounded map of values that expire: at capacity, expired entries go
//! first, then the oldest inserted), the in-flight map ([`Flights`]) with its [`Lead`] (the
//! lookup that calls; it ends the flight with its result, or as abandoned when it is dropped
//! first, waking every waiter) and [`wait`], and [`key`] (identity values → one cache key).
//! Leaves out: what is cached and when (see `super::request`).
//!
//! One worker, one thread: `Rc` and `RefCell`, no lock; no borrow is held across an await
//! (a waiter's future only borrows while it is polled).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

use ahash::AHashMap;

/// A bounded map of values that expire.
pub(super) struct Cache<V> {
    map: AHashMap<Box<[u8]>, (Instant, V)>,
    /// Insertion order (key, its expiry then), for eviction; entries whose key was inserted
    /// again since are stale and skipped.
    order: VecDeque<(Box<[u8]>, Instant)>,
    cap: usize,
}

impl<V: Clone> Cache<V> {
    pub(super) fn new(cap: usize) -> Cache<V> {
        Cache {
            map: AHashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Entries held now.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// The value of `key` unless it expired by `now` (an expired one is dropped).
    pub(super) fn get(&mut self, key: &[u8], now: Instant) -> Option<V> {
        match self.map.get(key) {
            Some((expires, v)) if *expires > now => Some(v.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `v` for `key` until `expires`, making room first.
    pub(super) fn insert(&mut self, key: Box<[u8]>, expires: Instant, v: V, now: Instant) {
        while self.map.len() >= self.cap || self.order.len() >= self.cap.saturating_mul(2) {
            let Some((k, at)) = self.order.pop_front() else {
                break;
            };
            // the key's current entry goes when this order entry is its own, or it expired
            if self.map.get(&k).is_some_and(|(e, _)| *e == at || *e <= now) {
                self.map.remove(&k);
            }
        }
        self.order.push_back((key.clone(), expires));
        self.map.insert(key, (expires, v));
    }
}

/// The cache key of identity values: each length-prefixed, so no two lists share a key.
pub(super) fn key(values: &[String]) -> Box<[u8]> {
    let mut k = Vec::with_capacity(values.iter().map(|v| v.len() + 4).sum());
    for v in values {
        k.extend_from_slice(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_le_bytes());
        k.extend_from_slice(v.as_bytes());
    }
    k.into_boxed_slice()
}

/// Lookups in flight, by cache key.
pub(super) type Flights<V> = Rc<RefCell<AHashMap<Box<[u8]>, Rc<Flight<V>>>>>;

/// A call in flight: its end, once known, and the lookups waiting for it.
pub(super) struct Flight<V> {
    end: RefCell<Option<FlightEnd<V>>>,
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
    key: Box<[u8]>,
    flight: Rc<Flight<V>>,
}

impl<V> Lead<V> {
    /// Starts the flight of `key` (no other may be in flight for it).
    pub(super) fn start(flights: &Flights<V>, key: Box<[u8]>) -> Lead<V> {
        let flight = Rc::new(Flight {
            end: RefCell::new(None),
            waiters: RefCell::new(Vec::new()),
        });
        flights.borrow_mut().insert(key.clone(), flight.clone());
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
pub(super) fn flying<V>(flights: &Flights<V>, key: &[u8]) -> Option<Rc<Flight<V>>> {
    flights.borrow().get(key).cloned()
}

/// Waits for `flight` to end.
pub(super) async fn wait<V: Clone>(flight: &Flight<V>) -> FlightEnd<V> {
    std::future::poll_fn(|cx| match &*flight.end.borrow() {
        Some(end) => Poll::Ready(end.clone()),
        None => {
            let mut waiters = flight.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_cache_is_bounded_and_values_expire() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut c = Cache::new(3);
        for i in 0..10u8 {
            c.insert(Box::new([i]), later, i, now);
            assert!(c.len() <= 3 && c.order.len() <= 6, "{}", c.len());
        }
        // the oldest went first
        assert_eq!(c.get(&[0], now), None);
        assert_eq!(c.get(&[9], now), Some(9));
        // past its expiry a value is gone
        assert_eq!(c.get(&[9], later), None);
        // a key inserted again keeps one entry, with the new value
        c.insert(Box::new([8]), later, 80, now);
        assert_eq!(c.get(&[8], now), Some(80));
        assert!(c.len() <= 3);
    }

    #[test]
    fn keys_do_not_collide() {
        let a = key(&["ab".into(), "c".into()]);
        let b = key(&["a".into(), "bc".into()]);
        let c = key(&["abc".into()]);
        assert!(a != b && b != c && a != c);
    }

    /// Waiters get the leader's result; a dropped leader abandons the flight; both remove it
    /// from the in-flight map. Run on both drivers.
    #[test]
    fn waiters_get_the_leaders_end() {
        fn run<D: monoio::Driver>(mut rt: monoio::Runtime<D>) {
            rt.block_on(async {
                let flights: Flights<u32> = Rc::new(RefCell::new(AHashMap::new()));
                let lead = Lead::start(&flights, key(&["t".into()]));
                let f = flying(&flights, &key(&["t".into()])).expect("in flight");
                let waiter = monoio::spawn(async move { wait(&f).await });
                monoio::time::sleep(Duration::from_millis(5)).await;
                lead.finish(7);
                assert!(matches!(waiter.await, FlightEnd::Done(7)));
                assert!(flights.borrow().is_empty());

                let lead = Lead::start(&flights, key(&["u".into()]));
                let f = flying(&flights, &key(&["u".into()])).expect("in flight");
                let waiter = monoio::spawn(async move { wait(&f).await });
                monoio::time::sleep(Duration::from_millis(5)).await;
                drop(lead);
                assert!(matches!(waiter.await, FlightEnd::Abandoned));
                assert!(flights.borrow().is_empty());
            });
        }
        let legacy = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("epoll runtime");
        run(legacy);
        let uring = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .expect("io_uring runtime");
        run(uring);
    }
}
