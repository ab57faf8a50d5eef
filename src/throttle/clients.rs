//! Per-client buckets (`throttle_by`): one GCRA bucket per client in a fixed-size table shared
//! by all workers.
//!
//! A client's bucket must hold whichever worker its connections land on, so it lives in shared
//! memory: a slot is two atomics, the client's 64-bit identity hash and its TAT (see
//! `bucket.rs`), and admitting a request is one CAS on the TAT. Unlike the global buckets there
//! is no lease, because a client's traffic is small and usually on one core: leasing would
//! strand tokens per client and worker. Memory is bounded by `max_clients` slots (16 bytes each),
//! fixed at load; a million distinct clients reuse slots instead of growing anything.
//!
//! Slot reuse: a bucket whose TAT is in the past is full, i.e. indistinguishable from a client
//! never seen, so its slot may be taken by another client (the idle expiry). A client probes 8
//! slots; if all are held by clients with non-full buckets, it takes over the one closest to
//! full and inherits that bucket's state (it can be throttled early, never admitted beyond a
//! burst). Ordering: the identity word is claimed with an `AcqRel` CAS; the TAT is a
//! single-word state updated by CAS loops, for which `Relaxed` is enough.

use std::sync::atomic::{AtomicU64, Ordering};

use super::bucket::{tokens, Rate};

/// Slots probed per lookup.
pub const PROBES: usize = 8;

struct Slot {
    key: AtomicU64,
    tat: AtomicU64,
}

/// The shared table of one per-client limit.
pub struct ClientTable {
    slots: Box<[Slot]>,
    mask: usize,
    interval: f64,
    tau: u64,
}

impl std::fmt::Debug for ClientTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientTable({} slots)", self.slots.len())
    }
}

impl ClientTable {
    pub fn new(r: Rate, max_clients: usize) -> Self {
        let cap = max_clients.next_power_of_two().max(PROBES);
        let interval = 1e9 / r.rate.max(1e-9);
        ClientTable {
            slots: (0..cap)
                .map(|_| Slot {
                    key: AtomicU64::new(0),
                    tat: AtomicU64::new(0),
                })
                .collect(),
            mask: cap - 1,
            interval,
            tau: (interval * r.burst as f64).round() as u64,
        }
    }

    fn slot_for(&self, id: u64, now: u64) -> &Slot {
        let id = id | 1; // 0 marks an empty slot
        let start = (id >> 7) as usize;
        let probe = |i: usize| self.slots.get((start + i) & self.mask);
        // the client's own slot first, wherever it is among the probes: claiming a free slot
        // before it would hand the client a second, full bucket
        for i in 0..PROBES {
            if let Some(s) = probe(i).filter(|s| s.key.load(Ordering::Acquire) == id) {
                return s;
            }
        }
        let mut fullest: Option<(&Slot, u64)> = None;
        for i in 0..PROBES {
            let Some(s) = probe(i) else { continue };
            let k = s.key.load(Ordering::Acquire);
            let tat = s.tat.load(Ordering::Relaxed);
            let free = k == 0 || tat <= now;
            if free
                && s.key
                    .compare_exchange(k, id, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return s;
            }
            if fullest.is_none_or(|(_, t)| tat < t) {
                fullest = Some((s, tat));
            }
        }
        // Table pressure: take over the probed slot whose bucket is closest to full.
        let (s, _) = fullest.unwrap_or((&self.slots[start & self.mask], 0));
        s.key.store(id, Ordering::Release);
        s
    }

    /// Takes one token for client `id` at `now`; `Err` carries the ns until one is available.
    pub fn take(&self, id: u64, now: u64) -> Result<(), u64> {
        let s = self.slot_for(id, now);
        let t = self.interval.round() as u64;
        let mut tat = s.tat.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now);
            let next = base + t;
            if tokens(tat, now, self.tau, self.interval) < 1.0 {
                return Err(next.saturating_sub(now + self.tau).max(1));
            }
            match s
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(a) => tat = a,
            }
        }
    }

    /// Returns a token taken for a request another level then rejected.
    pub fn refund(&self, id: u64, now: u64) {
        let s = self.slot_for(id, now);
        let t = self.interval.round() as u64;
        let _ = s
            .tat
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tat| {
                (tat > now).then(|| tat.saturating_sub(t).max(now))
            });
    }

    /// Slots (the memory bound).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn each_client_has_its_own_bucket() {
        let t = ClientTable::new(
            Rate {
                rate: 1.0,
                burst: 2,
            },
            64,
        );
        assert!(t.take(11, 0).is_ok());
        assert!(t.take(11, 0).is_ok());
        assert_eq!(t.take(11, 0), Err(S));
        assert!(t.take(22, 0).is_ok(), "another client is unaffected");
        assert!(t.take(11, S).is_ok(), "refilled after 1/rate");
    }

    #[test]
    fn rounding_never_costs_a_client_its_burst() {
        for rate in [3.0, 7.0, 9.0] {
            let t = ClientTable::new(Rate { rate, burst: 1 }, 64);
            assert!(t.take(9, 0).is_ok(), "rate {rate}");
            assert!(t.take(9, 0).is_err(), "rate {rate}");
        }
    }

    #[test]
    fn a_client_keeps_its_slot_when_an_earlier_probe_frees_up() {
        let t = ClientTable::new(
            Rate {
                rate: 1.0,
                burst: 2,
            },
            64,
        );
        // find two ids that probe the same start: b occupies it, x lands one further
        let (b, x) = (0x102u64, 0x104u64); // same `id >> 7`, different ids
        assert!(t.take(b, 0).is_ok()); // b's bucket is partly used: its slot is not free
        assert!(t.take(x, 0).is_ok());
        assert!(t.take(x, 0).is_ok());
        assert!(t.take(x, 0).is_err(), "x used its burst");
        // b's bucket refills and its slot becomes reusable; x must still find its own slot
        let later = 1_500_000_000; // b full again, x has 1.5 tokens back
        assert!(t.take(x, later).is_ok());
        assert!(
            t.take(x, later).is_err(),
            "x is not handed a second, full bucket"
        );
    }

    #[test]
    fn refund_gives_the_token_back() {
        let t = ClientTable::new(
            Rate {
                rate: 1.0,
                burst: 1,
            },
            64,
        );
        assert!(t.take(5, 0).is_ok());
        t.refund(5, 0);
        assert!(t.take(5, 0).is_ok());
    }

    #[test]
    fn a_million_clients_stay_in_bounded_memory_and_fresh_clients_get_a_full_bucket() {
        let t = ClientTable::new(
            Rate {
                rate: 10.0,
                burst: 3,
            },
            1024,
        );
        let cap = t.capacity();
        for c in 1..1_000_000u64 {
            // each client arrives once, a millisecond apart: earlier buckets refill and their
            // slots are reused
            let now = c * 1_000_000;
            assert!(t.take(c.wrapping_mul(0x9E37_79B9_7F4A_7C15), now).is_ok());
        }
        assert_eq!(t.capacity(), cap);
        // a heavy client is still limited under churn
        let heavy = 0xDEAD_BEEF_u64;
        let now = 2_000_000 * 1_000_000;
        let admitted = (0..10).filter(|_| t.take(heavy, now).is_ok()).count();
        assert_eq!(admitted, 3);
    }
}
