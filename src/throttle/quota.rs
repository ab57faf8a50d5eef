//! Exact quotas across workers: `limit` requests per period, never one more or one fewer.
//!
//! Shared state per quota is one `AtomicU64` packing the current period id (high 24 bits) with
//! the units *committed* in that period (low 40 bits), plus one `held` cell per worker. Workers
//! reserve units in chunks and spend them locally; the chunk is a quarter of the remainder's
//! fair share (`remaining / 4·workers`, at most [`MAX_CHUNK`]), so it shrinks to one unit near the
//! limit. Committing is a CAS on the packed word that never exceeds `limit`, and a new period is
//! started by the CAS that replaces the period id (resetting the count), so no increment can
//! land in the wrong period.
//!
//! Exactness: units a worker reserved but has not spent are published in its `held` cell,
//! written only by that worker (a plain atomic store after each spend: no read-modify-write on
//! the request path). A worker that finds the quota fully committed checks the other workers'
//! cells: if any units are still held it asks for them back (`return_requested`) and the request
//! waits for the next reconciliation (`sync`, every `throttle.sync_interval_ms`), when holders
//! return what they have; only when nothing is held anywhere is the request rejected. So a
//! rejection means every unit was spent. Ordering: a worker stores its `held` cell *before* the
//! committing CAS, both `SeqCst`, and the checker loads the packed word then the cells with
//! `SeqCst`: if the checker sees a commitment it also sees the matching held count (the single
//! total order of `SeqCst` operations), so it can never miss units that exist.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::spec::Period;
use super::spec::QuotaSpec;
use crate::fmt::civil_from_days;

/// Largest chunk a worker reserves at once.
pub const MAX_CHUNK: u64 = 64;
const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const PERIOD_MASK: u64 = (1 << 24) - 1;

fn pack(pid: u64, count: u64) -> u64 {
    ((pid & PERIOD_MASK) << COUNT_BITS) | (count & COUNT_MASK)
}

fn unpack(v: u64) -> (u64, u64) {
    (v >> COUNT_BITS, v & COUNT_MASK)
}

/// Outcome of asking for one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Granted,
    /// Fully committed, but other workers still hold unspent units: retry after a sync.
    Wait,
    Exhausted,
}

/// The shared half of one quota.
#[derive(Debug)]
pub struct SharedQuota {
    /// The period definition (fixed for the object's life; `spec.limit` and `spec.enforce` are
    /// the values it was created with: the live ones are [`SharedQuota::limit`] and
    /// [`SharedQuota::enforced`], which a reload may change in place).
    pub spec: QuotaSpec,
    limit: AtomicU64,
    enforce: AtomicBool,
    state: AtomicU64,
    held: Box<[AtomicU64]>,
    return_requested: AtomicBool,
}

/// A worker's reserved, unspent units of one quota.
#[derive(Debug, Default)]
pub struct LocalQuota {
    units: Cell<u64>,
    pid: Cell<u64>,
}

impl SharedQuota {
    pub fn new(spec: QuotaSpec, workers: usize, wall_secs: i64) -> Self {
        let pid = period_id(&spec, wall_secs);
        SharedQuota {
            limit: AtomicU64::new(spec.limit),
            enforce: AtomicBool::new(spec.enforce),
            spec,
            state: AtomicU64::new(pack(pid, 0)),
            held: (0..workers.max(1)).map(|_| AtomicU64::new(0)).collect(),
            return_requested: AtomicBool::new(false),
        }
    }

    /// The live limit.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Whether exhaustion rejects requests (false: shadow mode).
    pub fn enforced(&self) -> bool {
        self.enforce.load(Ordering::Relaxed)
    }

    /// A reload changed the limit or enforcement but not the periods: the same object (and
    /// every worker's reservation in it) stays, so usage is neither lost nor counted twice.
    /// `Relaxed`: a worker that reads the old limit a moment longer decides as it would have
    /// just before the reload; the committed count itself is only changed by CAS.
    pub fn set_limits(&self, limit: u64, enforce: bool) {
        self.limit.store(limit, Ordering::Relaxed);
        self.enforce.store(enforce, Ordering::Relaxed);
    }

    /// The current period id and the units used in it (committed minus held), for reports and
    /// persistence.
    pub fn usage(&self) -> (u64, u64) {
        let (pid, committed) = unpack(self.state.load(Ordering::SeqCst));
        let held: u64 = self.held.iter().map(|h| h.load(Ordering::SeqCst)).sum();
        (pid, committed.saturating_sub(held))
    }

    /// Restores usage saved by an earlier run, if it belongs to the current period.
    pub fn restore(&self, pid: u64, used: u64, wall_secs: i64) {
        if pid & PERIOD_MASK == period_id(&self.spec, wall_secs) {
            self.state
                .store(pack(pid, used.min(self.limit())), Ordering::SeqCst);
        }
    }

    /// Takes one unit for worker `w` at wall-clock time `wall_secs`.
    pub fn take(&self, local: &LocalQuota, w: usize, wall_secs: i64) -> Take {
        let pid = period_id(&self.spec, wall_secs);
        let Some(cell) = self.held.get(w) else {
            return Take::Exhausted;
        };
        if local.pid.get() != pid {
            // a new period: units reserved in the old one are void
            local.pid.set(pid);
            local.units.set(0);
            cell.store(0, Ordering::SeqCst);
        }
        if local.units.get() > 0 {
            let left = local.units.get() - 1;
            local.units.set(left);
            cell.store(left, Ordering::Relaxed);
            return Take::Granted;
        }
        let n = self.held.len() as u64;
        let mut cur = self.state.load(Ordering::SeqCst);
        loop {
            let (p, committed) = unpack(cur);
            let committed = if p == pid { committed } else { 0 };
            let remaining = self.limit().saturating_sub(committed);
            if remaining == 0 {
                match self.exhausted(w, cur) {
                    Some(t) => return t,
                    None => {
                        // units came back while we looked: try again
                        cur = self.state.load(Ordering::SeqCst);
                        continue;
                    }
                }
            }
            let chunk = (remaining / (4 * n)).clamp(1, MAX_CHUNK);
            // publish the intended holding before committing it (see module doc)
            cell.store(chunk - 1, Ordering::SeqCst);
            match self.state.compare_exchange(
                cur,
                pack(pid, committed + chunk),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    local.units.set(chunk - 1);
                    return Take::Granted;
                }
                Err(actual) => {
                    cell.store(0, Ordering::SeqCst);
                    cur = actual;
                }
            }
        }
    }

    /// The quota looked fully committed (`seen` is the word that said so). `None`: it changed
    /// meanwhile (a holder returned units between our reads), so the caller must look again;
    /// without this re-check, a return racing with the check could refuse a unit that exists.
    fn exhausted(&self, w: usize, seen: u64) -> Option<Take> {
        let others: u64 = self
            .held
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != w)
            .map(|(_, h)| h.load(Ordering::SeqCst))
            .sum();
        if others > 0 {
            self.return_requested.store(true, Ordering::SeqCst);
            return Some(Take::Wait);
        }
        if self.state.load(Ordering::SeqCst) != seen {
            return None;
        }
        self.return_requested.store(false, Ordering::Relaxed);
        Some(Take::Exhausted)
    }

    /// Reconciliation for worker `w`: return held units when another worker asked for them.
    pub fn sync(&self, local: &LocalQuota, w: usize, wall_secs: i64) {
        if !self.return_requested.load(Ordering::SeqCst) || local.units.get() == 0 {
            return;
        }
        let units = local.units.replace(0);
        let pid = local.pid.get();
        let _ = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                let (p, c) = unpack(v);
                (p == pid).then(|| pack(p, c.saturating_sub(units)))
            });
        if let Some(cell) = self.held.get(w) {
            cell.store(0, Ordering::SeqCst);
        }
        let _ = wall_secs;
    }
}

/// The period containing `wall_secs` (seconds since the Unix epoch), as a number that grows by
/// one per period, modulo 2^24.
pub fn period_id(spec: &QuotaSpec, wall_secs: i64) -> u64 {
    let t = wall_secs + spec.utc_offset_secs;
    let days = t.div_euclid(86_400);
    let id = match spec.period {
        Period::Day => days,
        // 1970-01-01 was a Thursday: day 0 is weekday 4 counting from Sunday = 0.
        Period::Week => (days + 4 - i64::from(spec.offset_days)).div_euclid(7),
        Period::Month => {
            let (y, m, d) = civil_from_days(days);
            let index = y * 12 + (m - 1);
            if d > i64::from(spec.offset_days) {
                index
            } else {
                index - 1
            }
        }
    };
    (id as u64) & PERIOD_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(limit: u64, period: Period) -> QuotaSpec {
        QuotaSpec {
            limit,
            period,
            offset_days: 0,
            utc_offset_secs: 0,
            enforce: true,
        }
    }

    #[test]
    fn periods_follow_the_calendar() {
        let day = spec(1, Period::Day);
        assert_eq!(period_id(&day, 86_399), 0);
        assert_eq!(period_id(&day, 86_400), 1);
        // 2024-02-29 12:00 UTC is a Thursday
        let t = 1_709_208_000;
        let mut week = spec(1, Period::Week);
        let sunday_start = period_id(&week, t);
        assert_eq!(
            period_id(&week, t - 4 * 86_400),
            sunday_start,
            "Sunday 25th"
        );
        assert_eq!(
            period_id(&week, t - 5 * 86_400),
            sunday_start - 1,
            "Saturday 24th"
        );
        week.offset_days = 1; // weeks start on Monday
        assert_eq!(period_id(&week, t - 3 * 86_400), period_id(&week, t));
        assert_ne!(period_id(&week, t - 4 * 86_400), period_id(&week, t));
        let mut month = spec(1, Period::Month);
        assert_eq!(period_id(&month, t), (2024 * 12 + 1) & PERIOD_MASK);
        assert_eq!(
            period_id(&month, t + 86_400),
            (2024 * 12 + 2) & PERIOD_MASK,
            "March 1st"
        );
        month.offset_days = 14; // periods start on the 15th
        assert_eq!(period_id(&month, t), (2024 * 12 + 1) & PERIOD_MASK);
        assert_eq!(
            period_id(&month, t - 15 * 86_400),
            (2024 * 12) & PERIOD_MASK,
            "Feb 14th"
        );
        let mut tz = spec(1, Period::Day);
        tz.utc_offset_secs = 2 * 3600; // UTC+2: the day starts at 22:00 UTC
        assert_eq!(period_id(&tz, 86_400 - 7200), 1);
    }

    #[test]
    fn exactly_limit_units_across_workers() {
        let q = SharedQuota::new(spec(1000, Period::Day), 4, 0);
        let locals: Vec<LocalQuota> = (0..4).map(|_| LocalQuota::default()).collect();
        let mut granted = 0;
        let mut i = 0usize;
        loop {
            // traffic lands unevenly; workers reconcile every 50 requests
            let w = if i.is_multiple_of(7) { 3 } else { i % 3 };
            match q.take(&locals[w], w, 10) {
                Take::Granted => granted += 1,
                Take::Wait => {}
                Take::Exhausted => break,
            }
            i += 1;
            if i.is_multiple_of(50) {
                for (w, l) in locals.iter().enumerate() {
                    q.sync(l, w, 10);
                }
            }
            assert!(i < 100_000);
        }
        assert_eq!(granted, 1000);
        assert_eq!(q.usage().1, 1000);
    }

    #[test]
    fn traffic_moving_to_another_worker_still_gets_every_unit() {
        let q = SharedQuota::new(spec(100, Period::Day), 2, 0);
        let (a, b) = (LocalQuota::default(), LocalQuota::default());
        // worker 0 reserves a chunk and then sees no more traffic
        assert_eq!(q.take(&a, 0, 0), Take::Granted);
        let mut granted = 1;
        loop {
            match q.take(&b, 1, 0) {
                Take::Granted => granted += 1,
                Take::Wait => q.sync(&a, 0, 0), // worker 0's periodic sync
                Take::Exhausted => break,
            }
        }
        assert_eq!(granted, 100);
    }

    #[test]
    fn a_new_period_starts_from_zero_and_restore_applies_only_to_the_same_period() {
        let q = SharedQuota::new(spec(2, Period::Day), 1, 0);
        let l = LocalQuota::default();
        assert_eq!(q.take(&l, 0, 10), Take::Granted);
        assert_eq!(q.take(&l, 0, 10), Take::Granted);
        assert_eq!(q.take(&l, 0, 10), Take::Exhausted);
        assert_eq!(q.take(&l, 0, 86_400 + 10), Take::Granted, "next day");
        let r = SharedQuota::new(spec(5, Period::Day), 1, 86_400);
        r.restore(1, 4, 86_400);
        assert_eq!(r.usage(), (1, 4));
        r.restore(0, 1, 86_400);
        assert_eq!(r.usage(), (1, 4), "usage of another period is ignored");
    }
}
