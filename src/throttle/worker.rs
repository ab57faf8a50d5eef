//! One worker's side of traffic management: its leased tokens and reserved quota units, the
//! per-request decision, and the periodic reconciliation.
//!
//! Owns: [`WorkerThrottle`], reached only from its worker thread (`Cell`s, no locks). The
//! decision walks the levels that apply, most specific first, making sure each holds a token
//! (leasing on the slow path), then takes a quota unit, and only then spends the tokens, so a
//! rejected request costs no level anything. Leaves out: API key lookup and the HTTP responses
//! (see `proxy::lifecycle`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use smallvec::SmallVec;

use super::bucket::LocalBucket;
use super::quota::{LocalQuota, Take};
use super::spec::{ClientBy, LimitSpec};
use super::{clock_ns, wall_secs, KeyCounters, Level, SharedLimit, Throttle};

/// Who is asking, for per-client limits.
pub struct Identity<'a> {
    /// The client's address as text (as in `X-Forwarded-For`).
    pub ip: &'a [u8],
    /// The API key's index, when one was presented and found.
    pub key: Option<usize>,
    /// Looks up a request header by lowercase name.
    pub header: &'a dyn Fn(&str) -> Option<&'a [u8]>,
    /// The id of the principal the route's authorizer admitted (`None`: no authorizer ran).
    pub principal: Option<&'a str>,
}

/// A request refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttled {
    pub level: Level,
    pub rate: f64,
    pub burst: u64,
    pub retry_after_ns: u64,
}

/// Why a request may not proceed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Denied {
    Throttled(Throttled),
    QuotaExceeded,
    /// The quota is fully committed but another worker holds unspent units: try again after
    /// the next reconciliation.
    QuotaWait,
}

/// A worker's leases and reservations.
pub struct WorkerThrottle {
    pub shared: Arc<Throttle>,
    id: usize,
    gateway: Rc<LocalBucket>,
    routes: Vec<Rc<LocalBucket>>,
    key_plan: Vec<Rc<LocalBucket>>,
    key_routes: Vec<Vec<Rc<LocalBucket>>>,
    quotas: Vec<Rc<LocalQuota>>,
    /// Wall-clock seconds, refreshed at each reconciliation (quota periods).
    wall: Cell<i64>,
}

/// For each new shared object in `new`, takes the local half (`old_locals`, parallel to `old`)
/// that the previous generation kept for the very same object, into `locals` (parallel to
/// `new`); other slots keep their fresh value.
fn carry_locals<S, L>(
    new: &[Option<Arc<S>>],
    old: &[Option<Arc<S>>],
    old_locals: &[Rc<L>],
    locals: &mut [Rc<L>],
) {
    for (slot, n) in locals.iter_mut().zip(new) {
        let Some(n) = n else { continue };
        let j = old
            .iter()
            .position(|o| o.as_ref().is_some_and(|o| Arc::ptr_eq(o, n)));
        if let Some(l) = j.and_then(|j| old_locals.get(j)) {
            *slot = l.clone();
        }
    }
}

struct Check<'a> {
    level: Level,
    spec: &'a LimitSpec,
    shared: &'a SharedLimit,
    local: Option<&'a LocalBucket>,
}

impl WorkerThrottle {
    pub fn new(shared: Arc<Throttle>, id: usize) -> Self {
        fn locals<T: Default>(n: usize) -> Vec<Rc<T>> {
            (0..n).map(|_| Rc::default()).collect()
        }
        WorkerThrottle {
            gateway: Rc::default(),
            routes: locals(shared.routes.len()),
            key_plan: locals(shared.key_plan.len()),
            key_routes: shared.key_routes.iter().map(|r| locals(r.len())).collect(),
            quotas: locals(shared.key_quota.len()),
            wall: Cell::new(wall_secs()),
            id,
            shared,
        }
    }

    /// This worker's half of a reloaded [`Throttle`]: wherever the new shared state is the very
    /// object `prev` used (carried over by [`Throttle::reloaded`]), the lease or reservation
    /// carries over too, so both generations spend from one lease and sync it once. Matching
    /// goes through the shared objects themselves, so no name lookup is needed here.
    pub fn reloaded(shared: Arc<Throttle>, prev: &WorkerThrottle) -> Self {
        let mut w = WorkerThrottle::new(shared, prev.id);
        let (t, p) = (w.shared.clone(), &*prev.shared);
        carry_locals(
            std::slice::from_ref(&t.gateway),
            std::slice::from_ref(&p.gateway),
            std::slice::from_ref(&prev.gateway),
            std::slice::from_mut(&mut w.gateway),
        );
        carry_locals(&t.routes, &p.routes, &prev.routes, &mut w.routes);
        carry_locals(&t.key_plan, &p.key_plan, &prev.key_plan, &mut w.key_plan);
        carry_locals(&t.key_quota, &p.key_quota, &prev.quotas, &mut w.quotas);
        // per-route plan limits: one flat list of every key's, on either side
        let flat = |lists: &[Vec<(usize, Arc<SharedLimit>)>]| -> Vec<Option<Arc<SharedLimit>>> {
            lists
                .iter()
                .flatten()
                .map(|(_, l)| Some(l.clone()))
                .collect()
        };
        let old_locals: Vec<Rc<LocalBucket>> = prev.key_routes.iter().flatten().cloned().collect();
        let (new_shared, old_shared) = (flat(&t.key_routes), flat(&p.key_routes));
        let mut locals: Vec<Rc<LocalBucket>> = w.key_routes.iter().flatten().cloned().collect();
        carry_locals(&new_shared, &old_shared, &old_locals, &mut locals);
        let mut it = locals.into_iter();
        for list in &mut w.key_routes {
            for (slot, l) in list.iter_mut().zip(&mut it) {
                *slot = l;
            }
        }
        w
    }

    /// Whether any limit or quota could apply to requests on `route` from `key`.
    #[inline]
    pub fn applies(&self, route: usize, key: Option<usize>) -> bool {
        let t = &*self.shared;
        t.gateway.is_some() || t.routes.get(route).is_some_and(Option::is_some) || key.is_some()
    }

    fn levels(&self, route: usize, key: Option<usize>) -> SmallVec<[Check<'_>; 4]> {
        let t = &*self.shared;
        let mut v = SmallVec::new();
        if let Some(k) = key {
            if let (Some(list), Some(locals)) = (t.key_routes.get(k), self.key_routes.get(k)) {
                for ((r, shared), local) in list.iter().zip(locals) {
                    let plan = t.spec.keys.get(k).and_then(|ks| ks.plan);
                    let spec = plan
                        .and_then(|p| t.spec.plans.get(p))
                        .and_then(|p| p.routes.iter().find(|(pr, _)| pr == r))
                        .map(|(_, s)| s);
                    if let (true, Some(spec)) = (*r == route, spec) {
                        v.push(Check {
                            level: Level::KeyRoute,
                            spec,
                            shared,
                            local: Some(local),
                        });
                    }
                }
            }
            let plan_spec = t
                .spec
                .keys
                .get(k)
                .and_then(|ks| ks.plan)
                .and_then(|p| t.spec.plans.get(p))
                .and_then(|p| p.throttle.as_ref());
            if let (Some(Some(shared)), Some(spec)) = (t.key_plan.get(k), plan_spec) {
                v.push(Check {
                    level: Level::Key,
                    spec,
                    shared,
                    local: self.key_plan.get(k).map(|l| &**l),
                });
            }
        }
        let route_spec = t.spec.routes.get(route).and_then(|r| r.limit.as_ref());
        if let (Some(Some(shared)), Some(spec)) = (t.routes.get(route), route_spec) {
            v.push(Check {
                level: Level::Route,
                spec,
                shared,
                local: self.routes.get(route).map(|l| &**l),
            });
        }
        if let (Some(shared), Some(spec)) = (&t.gateway, &t.spec.gateway) {
            v.push(Check {
                level: Level::Gateway,
                spec,
                shared,
                local: Some(&*self.gateway),
            });
        }
        v
    }

    fn client_hash(&self, by: &ClientBy, who: &Identity<'_>) -> u64 {
        let h = &self.shared.hasher;
        match by {
            ClientBy::Ip => h.hash_one(who.ip),
            // by name, not index: a reload may reorder keys while per-client tables carry over
            ClientBy::ApiKey => {
                let name = who.key.and_then(|k| self.shared.spec.keys.get(k));
                h.hash_one(name.map_or("", |k| k.name.as_str()))
            }
            ClientBy::Header(name) => h.hash_one((who.header)(name).unwrap_or_default()),
            // the id alone (as the API key's name): the same principal keeps its bucket across
            // a reload; principals without an id share the empty one
            ClientBy::Principal => h.hash_one(who.principal.unwrap_or_default().as_bytes()),
        }
    }

    /// Decides whether the request may proceed; spends tokens and a quota unit when it may.
    pub fn admit(&self, route: usize, who: &Identity<'_>) -> Result<(), Denied> {
        let t = &*self.shared;
        let levels = self.levels(route, who.key);
        let mut now = 0u64;
        let mut passed: SmallVec<[bool; 4]> = SmallVec::new();
        let mut taken: SmallVec<[(usize, u64); 2]> = SmallVec::new();
        let refund = |taken: &[(usize, u64)], now: u64| {
            for &(i, id) in taken {
                if let Some(SharedLimit::PerClient(table)) = levels.get(i).map(|c| c.shared) {
                    table.refund(id, now);
                }
            }
        };
        for (i, c) in levels.iter().enumerate() {
            let result = match (c.shared, c.local) {
                (SharedLimit::Bucket(b), Some(local)) => {
                    if local.has_token() {
                        Ok(())
                    } else {
                        if now == 0 {
                            now = clock_ns();
                        }
                        local
                            .refill(b, now, t.workers as u64)
                            .map_err(|e| e.retry_after_ns)
                    }
                }
                (SharedLimit::PerClient(table), _) => {
                    if now == 0 {
                        now = clock_ns();
                    }
                    let id = c.spec.by.as_ref().map_or(0, |by| self.client_hash(by, who));
                    let r = table.take(id, now);
                    if r.is_ok() {
                        taken.push((i, id));
                    }
                    r
                }
                (SharedLimit::Bucket(_), None) => Ok(()),
            };
            match result {
                Ok(()) => passed.push(true),
                Err(retry_after_ns) => {
                    self.count(route, who.key, |k| {
                        if c.spec.enforce {
                            &k.throttled
                        } else {
                            &k.shadow_throttled
                        }
                    });
                    if c.spec.enforce {
                        refund(&taken, now);
                        return Err(Denied::Throttled(Throttled {
                            level: c.level,
                            rate: c.spec.rate.rate,
                            burst: c.spec.rate.burst,
                            retry_after_ns,
                        }));
                    }
                    passed.push(false);
                }
            }
        }
        if let Some(k) = who.key {
            if let (Some(Some(q)), Some(local)) = (t.key_quota.get(k), self.quotas.get(k)) {
                match q.take(local, self.id, self.wall.get()) {
                    Take::Granted => {}
                    Take::Wait => {
                        refund(&taken, now);
                        return Err(Denied::QuotaWait);
                    }
                    Take::Exhausted if q.enforced() => {
                        refund(&taken, now);
                        self.count(route, who.key, |c| &c.quota_rejected);
                        return Err(Denied::QuotaExceeded);
                    }
                    Take::Exhausted => self.count(route, who.key, |c| &c.shadow_throttled),
                }
            }
            if let Some(c) = t.counters.get(self.id).and_then(|w| w.get(k)) {
                KeyCounters::bump(&c.requests);
            }
        }
        for (c, ok) in levels.iter().zip(&passed) {
            if let (true, SharedLimit::Bucket(_), Some(local)) = (*ok, c.shared, c.local) {
                local.spend();
            }
        }
        Ok(())
    }

    /// Counts a request refused after waiting too long for quota units held elsewhere.
    pub fn count_quota_rejected(&self, route: usize, key: Option<usize>) {
        self.count(route, key, |c| &c.quota_rejected);
    }

    fn count(
        &self,
        route: usize,
        key: Option<usize>,
        f: impl Fn(&KeyCounters) -> &std::sync::atomic::AtomicU64,
    ) {
        let t = &*self.shared;
        if let Some(c) = t.route_counters.get(self.id).and_then(|w| w.get(route)) {
            KeyCounters::bump(f(c));
        }
        if let Some(c) = key.and_then(|k| t.counters.get(self.id).and_then(|w| w.get(k))) {
            KeyCounters::bump(f(c));
        }
    }

    /// Periodic reconciliation: resize and return leases, answer quota return requests,
    /// refresh the wall clock.
    pub fn sync(&self) {
        let t = &*self.shared;
        let now = clock_ns();
        self.wall.set(wall_secs());
        let pairs = std::iter::once((&t.gateway, &self.gateway))
            .chain(t.routes.iter().zip(&self.routes))
            .chain(t.key_plan.iter().zip(&self.key_plan));
        for (shared, local) in pairs {
            if let Some(SharedLimit::Bucket(b)) = shared.as_deref() {
                local.sync(b, now);
            }
        }
        for (list, locals) in t.key_routes.iter().zip(&self.key_routes) {
            for ((_, shared), local) in list.iter().zip(locals) {
                if let SharedLimit::Bucket(b) = &**shared {
                    local.sync(b, now);
                }
            }
        }
        for (q, local) in t.key_quota.iter().zip(&self.quotas) {
            if let Some(q) = q {
                q.sync(local, self.id, self.wall.get());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::bucket::Rate;
    use crate::throttle::spec::{RouteLimits, ThrottleConfig};

    fn by_principal() -> WorkerThrottle {
        let spec = ThrottleConfig {
            routes: vec![RouteLimits {
                name: "GET /me".into(),
                limit: Some(LimitSpec {
                    // one request per principal, refilled after ~3 hours: no refill in a test
                    rate: Rate {
                        rate: 0.0001,
                        burst: 1,
                    },
                    enforce: true,
                    by: Some(ClientBy::Principal),
                    max_clients: 1024,
                }),
                key_required: false,
            }],
            ..ThrottleConfig::default()
        };
        WorkerThrottle::new(Arc::new(Throttle::new(spec, 1)), 0)
    }

    fn admit(w: &WorkerThrottle, principal: Option<&str>, ip: &[u8]) -> bool {
        let header = |_: &str| None;
        let who = Identity {
            ip,
            key: None,
            header: &header,
            principal,
        };
        match w.admit(0, &who) {
            Ok(()) => true,
            Err(Denied::Throttled(_)) => false,
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_principal_has_its_own_bucket_whatever_its_address() {
        let w = by_principal();
        assert!(admit(&w, Some("alice"), b"10.0.0.1"));
        // alice again, from another address: her bucket is empty
        assert!(!admit(&w, Some("alice"), b"10.0.0.2"));
        // bob from alice's first address: his own bucket
        assert!(admit(&w, Some("bob"), b"10.0.0.1"));
        assert!(!admit(&w, Some("bob"), b"10.0.0.1"));
        // ids are compared exactly
        assert!(admit(&w, Some("Alice"), b"10.0.0.1"));
    }

    #[test]
    fn principals_without_an_id_share_one_bucket() {
        let w = by_principal();
        assert!(admit(&w, Some(""), b"10.0.0.1"));
        assert!(!admit(&w, None, b"10.0.0.2"));
    }
}
