//! Deterministic simulation of the cross-core bucket: the production [`SharedBucket`] and
//! [`LocalBucket`] driven by a virtual clock, with 1 to 64 simulated workers and skewed, bursty
//! and shifting arrival patterns. Proves the error bound documented in `throttle/mod.rs` beyond
//! the cores of any test machine.

use super::bucket::{LocalBucket, Rate, SharedBucket};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// Where each request lands.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    /// Round robin over all workers.
    Even,
    /// 90% on worker 0, the rest spread.
    Skewed,
    /// Everything on worker 0.
    OneWorker,
    /// All workers, 50 ms on / 50 ms off.
    Bursty,
    /// The whole load moves to the next worker every 300 ms.
    Shifting,
}

struct Outcome {
    admitted: u64,
    offered: u64,
    expected: f64,
}

/// xorshift64 for deterministic jitter.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn run(workers: usize, r: Rate, offered_per_s: f64, pattern: Pattern, secs: u64) -> Outcome {
    let sync = 10 * MS;
    let shared = SharedBucket::new(r, 0);
    let locals: Vec<LocalBucket> = (0..workers).map(|_| LocalBucket::default()).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ workers as u64);
    let gap = (S as f64 / offered_per_s) as u64;
    let (mut t, mut next_sync, mut i) = (0u64, sync, 0u64);
    let (mut admitted, mut offered) = (0u64, 0u64);
    let end = secs * S;
    while t < end {
        while next_sync <= t {
            for l in &locals {
                l.sync(&shared, next_sync);
            }
            next_sync += sync;
        }
        let on = match pattern {
            Pattern::Bursty => (t / (50 * MS)).is_multiple_of(2),
            _ => true,
        };
        if on {
            let w = match pattern {
                Pattern::Even | Pattern::Bursty => (i as usize) % workers,
                Pattern::Skewed => {
                    if !rng.next().is_multiple_of(10) {
                        0
                    } else {
                        (rng.next() as usize) % workers
                    }
                }
                Pattern::OneWorker => 0,
                Pattern::Shifting => ((t / (300 * MS)) as usize) % workers,
            };
            offered += 1;
            let l = &locals[w];
            if l.has_token() || l.refill(&shared, t, workers as u64).is_ok() {
                l.spend();
                admitted += 1;
            }
            i += 1;
        }
        // jittered arrivals, mean `gap`
        t += gap / 2 + rng.next() % gap.max(1);
    }
    Outcome {
        admitted,
        offered,
        expected: r.rate * secs as f64 + r.burst as f64,
    }
}

/// The documented bound: a worker holds at most a quarter of its last interval's demand (at
/// least one token), so tokens stranded in idle workers total at most `rate·sync/4 + workers`.
fn bound(r: Rate, workers: usize) -> f64 {
    r.rate * 0.010 / 4.0 + workers as f64 + 1.0
}

#[test]
fn overloaded_bucket_admits_within_one_percent_for_every_pattern_and_worker_count() {
    let r = Rate {
        rate: 2000.0,
        burst: 200,
    };
    for &workers in &[1usize, 2, 4, 8, 16, 32, 64] {
        for pattern in [
            Pattern::Even,
            Pattern::Skewed,
            Pattern::OneWorker,
            Pattern::Bursty,
            Pattern::Shifting,
        ] {
            // Bursty traffic is on half the time: offer enough that each on-phase saturates.
            let o = run(workers, r, 6000.0, pattern, 10);
            let expected = match pattern {
                // 100 on-phases of 50 ms: each admits what accrued since the last (rate·0.1 s
                // capped by burst), the first one also the initial burst.
                Pattern::Bursty => {
                    let per_cycle = (r.rate * 0.1).min(r.burst as f64 + r.rate * 0.05);
                    per_cycle * 100.0 + r.burst as f64 - r.rate * 0.05
                }
                _ => o.expected,
            };
            let err = (o.admitted as f64 - expected) / expected;
            eprintln!(
                "sim rate=2000 burst=200 workers={workers:>2} {pattern:<10?} offered={:>6} admitted={:>6} expected={expected:>7.0} error={:+.3}%",
                o.offered,
                o.admitted,
                err * 100.0
            );
            assert!(
                err.abs() <= 0.01,
                "{workers} workers, {pattern:?}: admitted {} of {} offered, expected {expected:.0} ({:+.3}%)",
                o.admitted,
                o.offered,
                err * 100.0
            );
            if !matches!(pattern, Pattern::Bursty) {
                assert!(o.admitted as f64 <= expected + 1.0, "never over the bucket");
                assert!(
                    o.admitted as f64 >= expected - bound(r, workers),
                    "{workers} workers, {pattern:?}: {} below {expected} by more than the bound {}",
                    o.admitted,
                    bound(r, workers)
                );
            }
        }
    }
}

#[test]
fn high_rate_limit_holds_across_many_workers() {
    let r = Rate {
        rate: 10_000.0,
        burst: 5000,
    };
    for &workers in &[1usize, 8, 64] {
        for pattern in [Pattern::Even, Pattern::Shifting, Pattern::Skewed] {
            let o = run(workers, r, 20_000.0, pattern, 10);
            let err = (o.admitted as f64 - o.expected) / o.expected;
            eprintln!(
                "sim rate=10000 burst=5000 workers={workers:>2} {pattern:<10?} admitted={:>6} expected={:>7.0} error={:+.3}%",
                o.admitted,
                o.expected,
                err * 100.0
            );
            assert!(
                err.abs() <= 0.01,
                "{workers} {pattern:?}: {:+.3}%",
                err * 100.0
            );
            assert!(o.admitted as f64 >= o.expected - bound(r, workers));
        }
    }
}

#[test]
fn traffic_under_the_limit_is_never_rejected() {
    let r = Rate {
        rate: 2000.0,
        burst: 200,
    };
    for &workers in &[1usize, 2, 8, 64] {
        for pattern in [Pattern::Even, Pattern::Skewed, Pattern::Shifting] {
            let o = run(workers, r, 1500.0, pattern, 5);
            assert_eq!(
                o.admitted, o.offered,
                "{workers} workers, {pattern:?}: rejected under the limit"
            );
        }
    }
}
