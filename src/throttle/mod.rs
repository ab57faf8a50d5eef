//! Traffic management: token-bucket throttling at several levels, API keys, usage plans and exact
//! quotas, consistent across cores without a shared atomic or lock per request.
//!
//! # Semantics (as AWS API Gateway)
//! A request must pass every level that applies: the key's plan limit on this route, the key's
//! plan limit, the route's limit, the gateway default; the most specific failing level is the one
//! reported (`429 {"message":"Too Many Requests"}` with `Retry-After`, `RateLimit-Policy` and
//! `RateLimit`). Then the key's quota (`429 {"message":"Limit Exceeded"}`). A route with
//! `api_key_required` answers `403 {"message":"Forbidden"}` to a missing, unknown or disabled key.
//! A level with `enforce = false` is in shadow mode: it spends tokens and counts what it would
//! have rejected, but lets the request through. Tokens of levels a request passed are only spent
//! when every level admits it.
//!
//! # Cross-core algorithm: leased tokens
//! Each limit is one GCRA bucket in shared memory (an `AtomicU64`, see [`bucket`]) that is the
//! single source of truth for how many tokens exist: `rate·t + burst` over any window `t`. Each
//! worker holds a [`bucket::LocalBucket`] of tokens *leased* from it and admits a request by
//! decrementing a `Cell` — no clock read, no atomic. When its lease runs out it leases more (one
//! CAS); if the shared bucket is empty it remembers until when, and rejects locally until then.
//! Every `throttle.sync_interval_ms` (default 10 ms) each worker reconciles: it sizes its next
//! lease to a quarter of its demand in the last interval (capped at `burst / workers`) and gives
//! back everything beyond that — all of it when it had no demand — so tokens follow traffic
//! between workers.
//!
//! Error bound: a token is admitted at most once and only after the shared bucket issued it, so
//! tollgate **never admits more than `rate·t + burst`**. It can admit fewer only by tokens still
//! held in leases when the window ends: at most `Σ leases ≤ rate·sync_interval/4 + workers`. For
//! the default 10 ms and `rate = 2000` that is 5 tokens plus one per worker, against 20 200 in
//! 10 s (0.34 % with 64 workers, 0.03 % with 2). `sim.rs` checks this with 1 to 64 simulated workers and skewed,
//! bursty and shifting traffic; `tests/throttle.rs` through real sockets.
//!
//! Memory ordering: bucket state is one word updated by CAS loops (`Relaxed`: no other data is
//! published through it). Quotas ([`quota`]) and per-client tables ([`clients`]) document theirs.
//! Per-request counters are per-worker cells written only by their worker.

pub mod bucket;
pub mod clients;
pub mod quota;
#[cfg(test)]
mod sim;
pub mod spec;
pub mod store;
pub mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bucket::SharedBucket;
use clients::ClientTable;
use quota::SharedQuota;
use spec::{LimitSpec, ThrottleConfig};

/// Nanoseconds on the process-wide monotonic clock shared by all buckets.
pub fn clock_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // start at one second so "0" is never a valid recent time
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1_000_000_000
}

/// Seconds since the Unix epoch (quota periods are calendar based).
pub fn wall_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Makes entry `i` of every worker's `[worker][i]` counters the same objects as entry `j` of
/// the previous ones (a route or key that kept its identity across a reload).
fn share_counters(
    new: &mut [Vec<Arc<KeyCounters>>],
    old: &[Vec<Arc<KeyCounters>>],
    i: usize,
    j: usize,
) {
    for (counters, prev) in new.iter_mut().zip(old) {
        if let (Some(slot), Some(old)) = (counters.get_mut(i), prev.get(j)) {
            *slot = old.clone();
        }
    }
}

/// The shared state of one limit.
#[derive(Debug)]
pub enum SharedLimit {
    Bucket(SharedBucket),
    PerClient(ClientTable),
}

impl SharedLimit {
    fn new(spec: &LimitSpec, now: u64) -> Self {
        match spec.by {
            None => SharedLimit::Bucket(SharedBucket::new(spec.rate, now)),
            Some(_) => SharedLimit::PerClient(ClientTable::new(spec.rate, spec.max_clients)),
        }
    }
}

/// Which level a limit is, for reports and the `RateLimit-Policy` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    KeyRoute,
    Key,
    Route,
    Gateway,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::KeyRoute => "key-route",
            Level::Key => "key",
            Level::Route => "route",
            Level::Gateway => "gateway",
        }
    }
}

/// Per-key counters, one set per worker (written only by that worker, summed by readers).
#[derive(Debug, Default)]
pub struct KeyCounters {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub shadow_throttled: AtomicU64,
    pub quota_rejected: AtomicU64,
}

impl KeyCounters {
    /// Owner-only increment: a load and a store, not a read-modify-write instruction.
    #[inline]
    pub fn bump(c: &AtomicU64) {
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// Everything shared by the workers: one per compiled config.
///
/// Every piece of state sits behind its own `Arc` so that a reload can hand a limit, a quota or
/// a counter that did not change to the new `Throttle` as the *same object* ([`Throttle::reloaded`]):
/// requests still running on the old config and those on the new one then spend from one bucket,
/// and the never-more-than-`rate·t + burst` bound holds across the swap.
#[derive(Debug)]
pub struct Throttle {
    pub spec: ThrottleConfig,
    pub workers: usize,
    pub gateway: Option<Arc<SharedLimit>>,
    /// By route.
    pub routes: Vec<Option<Arc<SharedLimit>>>,
    /// By key: the plan's limit (each key has its own bucket, as in API Gateway).
    pub key_plan: Vec<Option<Arc<SharedLimit>>>,
    /// By key: the plan's per-route limits, `(route, limit)`.
    pub key_routes: Vec<Vec<(usize, Arc<SharedLimit>)>>,
    /// By key: the plan's quota.
    pub key_quota: Vec<Option<Arc<SharedQuota>>>,
    /// `[worker][key]` counters.
    pub counters: Vec<Vec<Arc<KeyCounters>>>,
    /// Per-route `[worker][route]` counts of shadow-mode rejections and real rejections.
    pub route_counters: Vec<Vec<Arc<KeyCounters>>>,
    /// Identity hashing for per-client limits, the same on every worker.
    pub hasher: ahash::RandomState,
    /// Some per-client limit is keyed by the client's IP (so requests must carry it).
    pub needs_ip: bool,
}

impl Throttle {
    pub fn new(spec: ThrottleConfig, workers: usize) -> Self {
        let now = clock_ns();
        let wall = wall_secs();
        let workers = workers.max(1);
        let arc = |l: &LimitSpec| Arc::new(SharedLimit::new(l, now));
        let key_plan = spec
            .keys
            .iter()
            .map(|k| spec.plan_of(k).and_then(|p| p.throttle.as_ref()).map(arc))
            .collect();
        let key_routes = spec
            .keys
            .iter()
            .map(|k| {
                spec.plan_of(k).map_or_else(Vec::new, |p| {
                    p.routes.iter().map(|(r, l)| (*r, arc(l))).collect()
                })
            })
            .collect();
        let key_quota = spec
            .keys
            .iter()
            .map(|k| {
                spec.plan_of(k)
                    .and_then(|p| p.quota.clone())
                    .map(|q| Arc::new(SharedQuota::new(q, workers, wall)))
            })
            .collect();
        let counters = (0..workers)
            .map(|_| spec.keys.iter().map(|_| Arc::default()).collect())
            .collect();
        let route_counters = (0..workers)
            .map(|_| spec.routes.iter().map(|_| Arc::default()).collect())
            .collect();
        let by_ip = |l: &LimitSpec| l.by == Some(spec::ClientBy::Ip);
        let needs_ip = spec
            .routes
            .iter()
            .filter_map(|r| r.limit.as_ref())
            .any(by_ip)
            || spec.plans.iter().any(|p| {
                p.throttle.as_ref().is_some_and(by_ip) || p.routes.iter().any(|(_, l)| by_ip(l))
            });
        Throttle {
            needs_ip,
            gateway: spec.gateway.as_ref().map(arc),
            routes: spec
                .routes
                .iter()
                .map(|r| r.limit.as_ref().map(arc))
                .collect(),
            key_plan,
            key_routes,
            key_quota,
            counters,
            route_counters,
            hasher: ahash::RandomState::with_seeds(0x7011, 0x6a7e, 0x5eed, 0xc0de),
            workers,
            spec,
        }
    }

    /// The state for a reloaded config, carrying over what did not change from `prev`:
    /// - a limit whose level and name (route key, API key name) are unchanged and whose spec is
    ///   equal keeps its shared bucket or per-client table (tokens spent stay spent);
    /// - a key's quota keeps its shared state (usage and every worker's reservations) when the
    ///   period definition is unchanged; a changed limit or `enforce` is applied to it in place
    ///   (raising a limit does not hand out a fresh quota);
    /// - counters carry over by route key and key name.
    ///
    /// Changed or new limits start full, as at startup.
    pub fn reloaded(spec: ThrottleConfig, prev: &Throttle) -> Self {
        let mut t = Throttle::new(spec, prev.workers);
        let route_in_prev = |i: usize| {
            let name = &t.spec.routes.get(i)?.name;
            prev.spec.routes.iter().position(|r| &r.name == name)
        };
        let route_map: Vec<Option<usize>> = (0..t.spec.routes.len()).map(route_in_prev).collect();
        if t.spec.gateway.is_some() && t.spec.gateway == prev.spec.gateway {
            t.gateway.clone_from(&prev.gateway);
        }
        for (i, j) in route_map.iter().enumerate() {
            let Some(j) = *j else { continue };
            let same =
                t.spec.routes.get(i).map(|r| &r.limit) == prev.spec.routes.get(j).map(|r| &r.limit);
            if let (true, Some(slot), Some(old)) = (same, t.routes.get_mut(i), prev.routes.get(j)) {
                slot.clone_from(old);
            }
            share_counters(&mut t.route_counters, &prev.route_counters, i, j);
        }
        for k in 0..t.spec.keys.len() {
            let Some(ks) = t.spec.keys.get(k) else {
                continue;
            };
            let Some(j) = prev.spec.keys.iter().position(|o| o.name == ks.name) else {
                continue;
            };
            share_counters(&mut t.counters, &prev.counters, k, j);
            let (plan, old_plan) = (
                t.spec.plan_of(ks),
                prev.spec.keys.get(j).and_then(|o| prev.spec.plan_of(o)),
            );
            let (Some(plan), Some(old_plan)) = (plan, old_plan) else {
                continue;
            };
            if plan.throttle.is_some() && plan.throttle == old_plan.throttle {
                if let (Some(slot), Some(old)) = (t.key_plan.get_mut(k), prev.key_plan.get(j)) {
                    slot.clone_from(old);
                }
            }
            if let (Some(list), Some(old_list)) = (t.key_routes.get_mut(k), prev.key_routes.get(j))
            {
                for (r, shared) in list.iter_mut() {
                    let spec = plan.routes.iter().find(|(pr, _)| pr == r).map(|(_, s)| s);
                    let found = old_list.iter().find(|(or, _)| {
                        route_map.get(*r).copied().flatten() == Some(*or)
                            && old_plan
                                .routes
                                .iter()
                                .find(|(pr, _)| pr == or)
                                .map(|(_, s)| s)
                                == spec
                    });
                    if let Some((_, old)) = found {
                        *shared = old.clone();
                    }
                }
            }
            if let (Some(Some(slot)), Some(Some(old))) =
                (t.key_quota.get_mut(k), prev.key_quota.get(j))
            {
                if slot.spec.same_periods(&old.spec) {
                    old.set_limits(slot.spec.limit, slot.spec.enforce);
                    *slot = old.clone();
                }
            }
        }
        t
    }

    /// Sums a per-key counter over workers.
    pub fn key_total(&self, key: usize, f: impl Fn(&KeyCounters) -> &AtomicU64) -> u64 {
        self.counters
            .iter()
            .filter_map(|w| w.get(key))
            .map(|c| f(c).load(Ordering::Relaxed))
            .sum()
    }

    /// Sums a per-route counter over workers.
    pub fn route_total(&self, route: usize, f: impl Fn(&KeyCounters) -> &AtomicU64) -> u64 {
        self.route_counters
            .iter()
            .filter_map(|w| w.get(route))
            .map(|c| f(c).load(Ordering::Relaxed))
            .sum()
    }
}
