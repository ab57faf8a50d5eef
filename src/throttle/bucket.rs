//! One token bucket, split into a shared part (the only state that crosses cores) and a
//! per-worker part (plain arithmetic on the request path).
//!
//! The shared part is GCRA: a single `AtomicU64` holding the bucket's *theoretical arrival time*
//! (TAT, nanoseconds on the process clock). With emission interval `T = 1/rate` and tolerance
//! `tau = burst·T`, the tokens available at `now` are `(now + tau - max(tat, now)) / T`, capped at
//! `burst` — a full token bucket in one word, so leasing `n` tokens is one CAS that advances TAT by
//! `n·T`, and giving `n` back moves it back (never below `now`: a bucket holds at most `burst`).
//!
//! The per-worker part, [`LocalBucket`], holds tokens leased from the shared bucket and admits a
//! request by decrementing a `Cell`. All time-dependent work happens in the shared bucket, on
//! lease and return, so the common path reads no clock and does no atomic read-modify-write.
//! Every function takes `now` explicitly, so the deterministic simulation in `sim.rs` drives the
//! exact code that runs in production with a virtual clock.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// A token bucket's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens per second.
    pub rate: f64,
    /// Bucket size.
    pub burst: u64,
}

/// Whole tokens a GCRA bucket holds at `now`: `(now + tau - max(tat, now)) / T`. Nanosecond
/// rounding of `tau` and of TAT advances (at most half a nanosecond per lease) must never cost a
/// whole token, so a thousandth of a token of slack absorbs them before the caller floors the
/// result; no rounding can accumulate to an extra token because every lease advances TAT by the
/// rounded full cost of what it took.
pub fn tokens(tat: u64, now: u64, tau: u64, interval: f64) -> f64 {
    let base = tat.max(now);
    let room = (now + tau).saturating_sub(base);
    room as f64 / interval + 1e-3
}

/// The shared (cross-core) half of a bucket: GCRA state in one atomic.
///
/// Memory ordering: every operation is a CAS loop on the one word; `Relaxed` suffices because the
/// word is the whole state (no other memory is published through it) and a CAS loop on a single
/// location is linearizable regardless of ordering.
#[derive(Debug)]
pub struct SharedBucket {
    tat: AtomicU64,
    /// Emission interval, ns per token (fractional part kept for accuracy at high rates).
    interval: f64,
    /// Tolerance `burst·T` in ns.
    tau: u64,
    burst: u64,
}

impl SharedBucket {
    /// A full bucket at time `now`.
    pub fn new(r: Rate, now: u64) -> Self {
        let interval = 1e9 / r.rate.max(1e-9);
        let tau = (interval * r.burst as f64)
            .min(u64::MAX as f64 / 4.0)
            .round() as u64;
        SharedBucket {
            tat: AtomicU64::new(now),
            interval,
            tau,
            burst: r.burst,
        }
    }

    fn tokens_at(&self, tat: u64, now: u64) -> f64 {
        tokens(tat, now, self.tau, self.interval)
    }

    /// Whole tokens available at `now` (for headers and tests).
    pub fn available(&self, now: u64) -> u64 {
        self.tokens_at(self.tat.load(Ordering::Relaxed), now)
            .floor() as u64
    }

    /// Takes up to `want` tokens; returns how many were granted (0 when the bucket is empty).
    pub fn lease(&self, now: u64, want: u64) -> u64 {
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let avail = self.tokens_at(tat, now).floor() as u64;
            let grant = avail.min(want);
            if grant == 0 {
                return 0;
            }
            let next = tat.max(now) + (grant as f64 * self.interval).round() as u64;
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return grant,
                Err(actual) => tat = actual,
            }
        }
    }

    /// Returns `n` unused tokens (capped: the bucket never holds more than `burst`).
    pub fn give_back(&self, now: u64, n: u64) {
        if n == 0 {
            return;
        }
        let back = (n as f64 * self.interval).round() as u64;
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            if tat <= now {
                return; // already full
            }
            let next = tat.saturating_sub(back).max(now);
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => tat = actual,
            }
        }
    }

    /// Nanoseconds from `now` until one token is available (0 if one is).
    pub fn wait_for_one(&self, now: u64) -> u64 {
        let tat = self.tat.load(Ordering::Relaxed);
        // one token is available once now + tau >= tat + T
        (tat + self.interval.ceil() as u64).saturating_sub(now + self.tau)
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }
}

/// Why a local bucket could not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Empty {
    /// Nanoseconds until a token is expected.
    pub retry_after_ns: u64,
}

/// The per-worker half of a bucket: tokens leased from the shared bucket, spent with plain
/// arithmetic. Sizes its leases from its own recent demand.
#[derive(Debug, Default)]
pub struct LocalBucket {
    tokens: Cell<u64>,
    /// Requests admitted since the last sync.
    demand: Cell<u64>,
    /// Lease size for the next refill.
    lease: Cell<u64>,
    /// The shared bucket was empty; reject without asking it again until this time.
    dry_until: Cell<u64>,
}

impl LocalBucket {
    /// Whether a token is held (the common path: no clock, no atomics).
    #[inline]
    pub fn has_token(&self) -> bool {
        self.tokens.get() > 0
    }

    /// Spends a held token. Call only after `has_token` or a successful `refill`.
    #[inline]
    pub fn spend(&self) {
        self.tokens.set(self.tokens.get().saturating_sub(1));
        self.demand.set(self.demand.get() + 1);
    }

    /// Slow path: lease more tokens from `shared`. Ok when at least one token is now held.
    pub fn refill(&self, shared: &SharedBucket, now: u64, workers: u64) -> Result<(), Empty> {
        if self.has_token() {
            return Ok(());
        }
        if now < self.dry_until.get() {
            return Err(Empty {
                retry_after_ns: self.dry_until.get() - now,
            });
        }
        let want = self.lease_size(shared, workers);
        let got = shared.lease(now, want);
        if got == 0 {
            let wait = shared.wait_for_one(now).max(1);
            self.dry_until.set(now + wait);
            return Err(Empty {
                retry_after_ns: wait,
            });
        }
        self.tokens.set(self.tokens.get() + got);
        Ok(())
    }

    fn lease_size(&self, shared: &SharedBucket, workers: u64) -> u64 {
        // At most a fair share of the burst, so one worker cannot hoard the bucket, and at
        // least one token.
        let cap = (shared.burst() / workers.max(1)).max(1);
        self.lease.get().clamp(1, cap)
    }

    /// Periodic reconciliation (every `sync_interval`): size the next lease to about a quarter of
    /// the last interval's demand, and give back what is held beyond it — everything, when the
    /// worker saw no demand, so tokens follow the traffic to other workers.
    pub fn sync(&self, shared: &SharedBucket, now: u64) {
        let demand = self.demand.replace(0);
        let lease = (demand / 4).max(1);
        self.lease.set(lease);
        let keep = if demand == 0 { 0 } else { lease };
        let held = self.tokens.get();
        if held > keep {
            shared.give_back(now, held - keep);
            self.tokens.set(keep);
        }
    }

    /// Tokens currently held.
    pub fn held(&self) -> u64 {
        self.tokens.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn gcra_starts_full_and_refills_at_rate() {
        let b = SharedBucket::new(
            Rate {
                rate: 10.0,
                burst: 5,
            },
            0,
        );
        assert_eq!(b.available(0), 5);
        assert_eq!(b.lease(0, 100), 5);
        assert_eq!(b.lease(0, 1), 0);
        assert_eq!(b.available(S / 10), 1);
        assert_eq!(b.lease(S, 100), 5, "capped at burst after a long pause");
        assert_eq!(b.wait_for_one(S), S / 10);
    }

    #[test]
    fn burst_survives_rounding_of_non_integral_intervals() {
        for (rate, burst) in [(3.0, 1), (7.0, 1), (3.0, 10), (300.0, 50), (1e9 / 3.0, 2)] {
            let b = SharedBucket::new(Rate { rate, burst }, 0);
            assert_eq!(b.available(0), burst, "rate {rate} burst {burst}");
            assert_eq!(b.lease(0, u64::MAX), burst);
            assert_eq!(
                b.lease(0, 1),
                0,
                "rate {rate} burst {burst}: no more than the burst"
            );
        }
        // over time, exactly rate·t + burst with a request every millisecond
        let b = SharedBucket::new(
            Rate {
                rate: 3.0,
                burst: 3,
            },
            0,
        );
        let admitted: u64 = (0..=3000).map(|ms| b.lease(ms * 1_000_000, 1)).sum();
        assert_eq!(admitted, 12, "rate 3 over 3 s plus a burst of 3");
    }

    #[test]
    fn give_back_restores_but_never_beyond_burst() {
        let b = SharedBucket::new(
            Rate {
                rate: 10.0,
                burst: 5,
            },
            0,
        );
        assert_eq!(b.lease(0, 3), 3);
        b.give_back(0, 2);
        assert_eq!(b.available(0), 4);
        b.give_back(0, 100);
        assert_eq!(b.available(0), 5);
    }

    #[test]
    fn local_bucket_spends_leased_tokens_without_touching_shared() {
        let shared = SharedBucket::new(
            Rate {
                rate: 1000.0,
                burst: 100,
            },
            0,
        );
        let local = LocalBucket::default();
        local.lease.set(10);
        assert!(!local.has_token());
        local.refill(&shared, 0, 1).unwrap();
        assert_eq!(local.held(), 10);
        assert_eq!(shared.available(0), 90);
        for _ in 0..10 {
            assert!(local.has_token());
            local.spend();
        }
        assert!(!local.has_token());
    }

    #[test]
    fn dry_bucket_rejects_locally_until_the_next_token() {
        let shared = SharedBucket::new(
            Rate {
                rate: 10.0,
                burst: 1,
            },
            0,
        );
        let local = LocalBucket::default();
        local.refill(&shared, 0, 1).unwrap();
        local.spend();
        let e = local.refill(&shared, 0, 1).unwrap_err();
        assert_eq!(e.retry_after_ns, S / 10);
        // still dry a bit later, without asking the shared bucket
        assert!(local.refill(&shared, S / 20, 1).is_err());
        assert!(local.refill(&shared, S / 10, 1).is_ok());
    }

    #[test]
    fn idle_worker_returns_its_tokens_at_sync() {
        let shared = SharedBucket::new(
            Rate {
                rate: 100.0,
                burst: 50,
            },
            0,
        );
        let local = LocalBucket::default();
        local.lease.set(20);
        local.refill(&shared, 0, 1).unwrap();
        assert_eq!(shared.available(0), 30);
        local.sync(&shared, 0); // demand 0 since last sync
        assert_eq!(local.held(), 0);
        assert_eq!(shared.available(0), 50);
    }
}
