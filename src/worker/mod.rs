//! Per-worker state: everything one core owns and nothing another core touches.
//!
//! Owns: the worker's current [`Generation`] (what one compiled config means on this core: the
//! config, upstream pools, token leases, metrics shard and access-log buffer), a pool of read
//! buffers lent to busy connections, the request-id generator and the cached `Date` header. All
//! of it is reached through `Rc<Worker>` with `Cell`/`RefCell` interior mutability: no locks, no
//! atomics on the request path.
//!
//! Reload: each request takes a clone of the current `Rc<Generation>` when its head arrives
//! ([`Cx`]) and finishes on it, however long it runs. A reload builds the next generation from
//! the previous one ([`Generation::next`]), carrying over by name what did not change, and
//! swaps the pointer between two requests; the old generation is dropped when its last request
//! ends. What crosses cores is only what [`crate::server`] documents.
//!
//! This module sits below the proxy, the sessions and the integrations (all of them run on a
//! worker and reach its state through [`Cx`]); [`idle`] keeps the deadlines of idle client
//! connections, and the read-buffer pool is [`crate::transport::bufpool`]'s.

pub mod idle;

use std::cell::{Cell, RefCell};
use std::ops::Deref;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::accesslog::WorkerLog;
use crate::client::Upstream;
use crate::config::Config;
pub use crate::transport::bufpool::{BufPool, BUFFER_POOL_MAX};
use idle::IdleTable;
// moved to crate::fmt; re-exported so proxy code written against the old path still compiles
pub use crate::fmt::format_http_date;
use crate::health::HealthBoard;
use crate::metrics::{Shard, Snapshot};
use crate::runtime::DriverKind;
use crate::throttle::worker::WorkerThrottle;
use crate::throttle::Throttle;

/// What one compiled config means on one worker.
pub struct Generation {
    /// 0 for the config the process started with, then one more per applied reload.
    pub number: u64,
    pub config: Arc<Config>,
    /// By upstream index of `config`.
    pub upstreams: Vec<Rc<Upstream>>,
    /// This worker's leased tokens and quota reservations.
    pub throttle: WorkerThrottle,
    /// This worker's metrics shard.
    pub metrics: Shard,
    /// Whether requests are recorded in `metrics` (only when the admin listener can read them).
    pub record_metrics: bool,
    /// This worker's access-log buffer.
    pub log: Option<Rc<WorkerLog>>,
    /// This worker's authorizer state (key sets, caches).
    pub auth: crate::auth::WorkerAuth,
}

impl Generation {
    /// The generation a worker starts with.
    pub fn first(
        id: usize,
        config: Arc<Config>,
        throttle: Arc<Throttle>,
        log: Option<WorkerLog>,
        health: &HealthBoard,
    ) -> Self {
        let upstreams = config
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| Rc::new(Upstream::new(u, health.upstream(i))))
            .collect();
        Generation {
            number: 0,
            upstreams,
            throttle: WorkerThrottle::new(throttle, id),
            metrics: Shard::new(config.routes.len()).with_functions(config.functions.len()),
            record_metrics: config.admin.is_some(),
            log: log.map(Rc::new),
            auth: crate::auth::WorkerAuth::new(&config, None),
            config,
        }
    }

    /// The generation after `self` for a reloaded config. Carries over, by name:
    /// - an upstream whose definition is unchanged keeps its pools and counters (the same
    ///   object); a changed one starts afresh but adopts the idle connections of targets whose
    ///   address it still has;
    /// - leases and quota reservations of limits the new [`Throttle`] carried over;
    /// - the metrics of routes whose identity is unchanged, and of functions by name.
    ///
    /// `log` gets this generation's access-log buffer and returns the next one's.
    pub fn next(
        &self,
        number: u64,
        config: Arc<Config>,
        throttle: Arc<Throttle>,
        log: impl FnOnce(Option<&Rc<WorkerLog>>) -> Option<Rc<WorkerLog>>,
        health: &HealthBoard,
    ) -> Self {
        let upstreams = config
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let old = self.config.upstreams.iter().position(|o| o.name == u.name);
                let old_up =
                    old.and_then(|j| Some((self.config.upstreams.get(j)?, self.upstreams.get(j)?)));
                let targets = health.upstream(i);
                match old_up {
                    Some((oc, up)) if oc == u && up.shares_health(targets) => up.clone(),
                    Some((_, up)) => {
                        let fresh = Upstream::new(u, targets);
                        fresh.adopt_idle(up);
                        Rc::new(fresh)
                    }
                    None => Rc::new(Upstream::new(u, targets)),
                }
            })
            .collect();
        let keys: Vec<&str> = config.routes.iter().map(|r| r.id.as_str()).collect();
        let prev_keys: Vec<&str> = self.config.routes.iter().map(|r| r.id.as_str()).collect();
        let names: Vec<&str> = config.functions.iter().map(|f| f.name.as_str()).collect();
        let prev_names: Vec<&str> = self
            .config
            .functions
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        let log = log(self.log.as_ref());
        Generation {
            number,
            upstreams,
            throttle: WorkerThrottle::reloaded(throttle, &self.throttle),
            metrics: Shard::reloaded(&keys, &prev_keys, &self.metrics).functions_reloaded(
                &names,
                &prev_names,
                &self.metrics,
            ),
            // the admin listener, and so whether anyone reads metrics, is fixed at startup
            record_metrics: self.record_metrics,
            log,
            auth: crate::auth::WorkerAuth::new(&config, Some((&self.config, &self.auth))),
            config,
        }
    }

    /// The access log this generation writes and the next one does not: flushed by its last
    /// user (see `server`).
    pub fn log_unshared_with(&self, next: &Generation) -> Option<&WorkerLog> {
        match (&self.log, &next.log) {
            (Some(a), Some(b)) if Rc::ptr_eq(a, b) => None,
            (a, _) => a.as_deref(),
        }
    }
}

/// State of one worker thread.
pub struct Worker {
    pub id: usize,
    pub driver: DriverKind,
    generation: RefCell<Rc<Generation>>,
    pub buffers: BufPool,
    pub ids: RequestIds,
    pub date: DateCache,
    /// Deadlines of idle client connections.
    pub idle: IdleTable,
    /// Client connections currently open on this worker.
    pub open_connections: Cell<usize>,
    /// Requests currently being served (head read, response not finished).
    pub busy: Cell<usize>,
    /// Set when the process drains: finish the current request, then close.
    pub draining: Cell<bool>,
    /// HTTP/2 connections open on this worker: a drain waits for them too (each sends its
    /// GOAWAY and closes; bounded by `shutdown_ms`).
    pub h2_connections: Cell<usize>,
    /// This worker's pool to the local functions service's internal Invoke API (see
    /// `crate::functions`), set once at startup when the service runs.
    pub functions: std::cell::OnceCell<Rc<Upstream>>,
}

impl Worker {
    /// Starts the drain: sets `draining` and ends the idle HTTP/2 connections' waits (their
    /// idle-table entries, [`idle::IdleTable::expire_on_drain`]), which send GOAWAY(NO_ERROR)
    /// and close; busy ones see the flag within their state check (HTTP/1 connections see it
    /// after their request). No registration per connection: an idle one costs nothing more.
    pub fn start_drain(&self) {
        self.draining.set(true);
        self.idle.expire_on_drain();
    }

    pub fn new(id: usize, driver: DriverKind, first: Generation) -> Self {
        let server = &first.config.server;
        Worker {
            id,
            driver,
            buffers: BufPool::new(server.read_buffer_bytes),
            ids: RequestIds::new(seed_for(id)),
            date: DateCache::default(),
            idle: IdleTable::new(
                server
                    .timeouts
                    .header_read
                    .min(server.timeouts.keepalive_idle),
            ),
            open_connections: Cell::new(0),
            busy: Cell::new(0),
            draining: Cell::new(false),
            h2_connections: Cell::new(0),
            functions: std::cell::OnceCell::new(),
            generation: RefCell::new(Rc::new(first)),
        }
    }

    /// The generation new requests start on (a non-atomic `Rc` clone).
    pub fn current(&self) -> Rc<Generation> {
        self.generation.borrow().clone()
    }

    /// Reads something of the current generation without taking a reference to it (no `Rc`
    /// count traffic: for settings read between requests).
    pub fn with_current<R>(&self, f: impl FnOnce(&Generation) -> R) -> R {
        f(&self.generation.borrow())
    }

    /// Makes `next` current and returns the previous generation (still used by the requests
    /// that started on it).
    pub fn install(&self, next: Rc<Generation>) -> Rc<Generation> {
        self.generation.replace(next)
    }

    /// This worker's numbers for a scrape.
    pub fn snapshot(&self) -> Snapshot {
        let g = self.current();
        Snapshot {
            worker: self.id,
            generation: g.number,
            driver: self.driver.name(),
            active_connections: self.open_connections.get() as u64,
            requests: g.metrics.requests(),
            routes: g.metrics.routes(),
            upstreams: g.upstreams.iter().map(|u| u.snapshot()).collect(),
            handshakes: g.metrics.handshakes(),
            http2: g.metrics.http2(),
            functions: g.metrics.functions(),
        }
    }
}

/// What a request works with: its worker and the generation it started on. Derefs to the
/// worker; the generation's parts are `cx.g.config`, `cx.g.upstreams`, ...
pub struct Cx<'a> {
    pub w: &'a Worker,
    pub g: &'a Generation,
}

impl Cx<'_> {
    /// The pool to the local functions service (`None`: the service is not running).
    pub fn functions(&self) -> Option<&Rc<Upstream>> {
        self.w.functions.get()
    }
}

impl Deref for Cx<'_> {
    type Target = Worker;

    fn deref(&self) -> &Worker {
        self.w
    }
}

fn seed_for(id: usize) -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let addr = &t as *const u64 as u64; // ASLR adds entropy between processes
    t ^ addr.rotate_left(32) ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Request ids in the shape API Gateway uses (a UUID v4), from a per-worker xorshift generator.
pub struct RequestIds {
    state: Cell<u64>,
}

/// Length of a generated request id.
pub const REQUEST_ID_LEN: usize = 36;

impl RequestIds {
    pub fn new(seed: u64) -> Self {
        RequestIds {
            state: Cell::new(seed | 1),
        }
    }

    fn next_u64(&self) -> u64 {
        // xorshift64*: fast, non-cryptographic; ids need uniqueness, not secrecy.
        let mut x = self.state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A fresh random value (also used for load-balancing choices).
    pub fn random(&self) -> u64 {
        self.next_u64()
    }

    /// A new id, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
    pub fn generate(&self) -> [u8; REQUEST_ID_LEN] {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&hi.to_be_bytes());
        raw[8..].copy_from_slice(&lo.to_be_bytes());
        raw[6] = (raw[6] & 0x0f) | 0x40;
        raw[8] = (raw[8] & 0x3f) | 0x80;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; REQUEST_ID_LEN];
        let mut o = 0;
        for (i, b) in raw.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                o += 1;
            }
            out[o] = HEX[usize::from(b >> 4)];
            out[o + 1] = HEX[usize::from(b & 0xf)];
            o += 2;
        }
        out
    }
}

/// The `Date` header value (RFC 9110 §5.6.7 IMF-fixdate), formatted once per second.
#[derive(Default)]
pub struct DateCache {
    second: Cell<u64>,
    value: Cell<[u8; 29]>,
}

impl DateCache {
    /// The current date as `Sun, 06 Nov 1994 08:49:37 GMT`.
    pub fn now(&self) -> [u8; 29] {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != self.second.get() || secs == 0 {
            self.second.set(secs);
            self.value.set(format_http_date(secs));
        }
        self.value.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4_shaped_and_distinct() {
        let g = RequestIds::new(42);
        let a = g.generate();
        let b = g.generate();
        assert_ne!(a, b);
        let s = std::str::from_utf8(&a).unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(s.matches('-').count(), 4);
    }

    #[test]
    fn buffer_pool_reuses_allocation() {
        let p = BufPool::new(4096);
        let mut b = p.take();
        b.extend_from_slice(b"abc");
        let ptr = b.as_ptr();
        p.give(b);
        let b2 = p.take();
        assert_eq!(b2.as_ptr(), ptr);
        assert!(b2.is_empty() && b2.capacity() >= 4096);
    }
}
