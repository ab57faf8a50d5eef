//! Metrics: per-worker shards of plain counters and HDR histograms, merged only when scraped.
//!
//! Owns: [`Shard`], which a worker updates on every request with no atomics and no sharing
//! (`RefCell`, one per worker), the [`Snapshot`] a shard produces, and [`merge`]. Scraping crosses
//! cores explicitly through a [`ScrapeBoard`]: the admin thread raises the board's epoch
//! (`Release`), each worker notices it in its housekeeping loop (`Acquire`, within
//! `DRAIN_POLL`), copies its shard into its own mutex-guarded slot, and the admin thread waits
//! until every slot carries the new epoch. The mutex is uncontended and off the request path.
//! Counters are exact: every request is recorded by exactly one worker and every shard is read
//! at every scrape. Leaves out: the exposition formats (see [`prom`]).

pub mod functions;
pub mod prom;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ahash::AHashMap;
use hdrhistogram::Histogram;

use crate::http::Method;
pub use functions::{FunctionCounts, Outcome};

/// Highest latency a histogram records (longer ones saturate), in microseconds.
pub const MAX_LATENCY_US: u64 = 600_000_000;
/// Significant figures of latency histograms (1 % resolution).
pub const SIGFIG: u8 = 2;

/// A method as a metric label.
pub fn method_label(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Patch => "PATCH",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Other => "OTHER",
    }
}

pub(crate) fn histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGFIG).expect("constant bounds are valid")
}

/// One route's numbers on one worker.
#[derive(Debug, Clone)]
pub struct RouteStats {
    /// Requests by (method label, status).
    pub counts: AHashMap<(&'static str, u16), u64>,
    /// Whole-request latency, µs.
    pub latency: Histogram<u64>,
    pub latency_sum_us: u64,
    /// Upstream time (request sent → response complete), µs.
    pub integration: Histogram<u64>,
    pub integration_sum_us: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// WebSocket connections open now (a gauge: up at the 101, down when the tunnel ends).
    pub websocket_open: u64,
    /// WebSocket connections upgraded so far (origin's 101 relayed).
    pub websocket_upgrades: u64,
    /// Summed duration of the WebSocket connections that ended, µs (kept out of `latency`: a
    /// tunnel's life is not a request's latency).
    pub websocket_duration_us: u64,
}

impl Default for RouteStats {
    fn default() -> Self {
        RouteStats {
            counts: AHashMap::new(),
            latency: histogram(),
            latency_sum_us: 0,
            integration: histogram(),
            integration_sum_us: 0,
            bytes_in: 0,
            bytes_out: 0,
            websocket_open: 0,
            websocket_upgrades: 0,
            websocket_duration_us: 0,
        }
    }
}

/// What one request contributes.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub method: Method,
    pub status: u16,
    pub total: Duration,
    pub integration: Option<Duration>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A worker's metrics. Route index `routes.len()` collects requests that matched no route.
///
/// Each route's numbers sit in their own `Rc<RefCell<_>>` so that a reload can give the new
/// generation's shard the very same cells for routes whose key did not change
/// ([`Shard::reloaded`]): requests finishing on the old config and new ones add up in one place,
/// and counters stay exact across the swap.
#[derive(Debug)]
pub struct Shard {
    routes: Vec<Rc<RefCell<RouteStats>>>,
    requests: Rc<Cell<u64>>,
    /// TLS handshakes on client connections, shared by every generation of the worker (a
    /// handshake belongs to no route).
    handshakes: Rc<RefCell<HandshakeCounts>>,
    /// HTTP/2 connection endings and stream resets, shared like `handshakes`.
    http2: Rc<RefCell<Http2Counts>>,
    /// By function index of the config: Lambda invocations (carried over by name).
    functions: functions::Cells,
}

/// HTTP/2 counters of one worker: GOAWAYs by reason (an abuse defence's name, a protocol
/// error's code, or the driver's `idle_timeout` / `drain`) and streams reset (by the client,
/// for a stream error, or by us).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Http2Counts {
    pub goaway: AHashMap<&'static str, u64>,
    pub streams_reset: u64,
}

/// TLS handshakes by (version, result) label: version "TLSv1.2", "TLSv1.3" or "unknown" (failed
/// before one was chosen), result "ok" or the reason it failed.
pub type HandshakeCounts = AHashMap<(&'static str, &'static str), u64>;

impl Shard {
    pub fn new(routes: usize) -> Self {
        Shard {
            routes: (0..=routes).map(|_| Rc::default()).collect(),
            requests: Rc::default(),
            handshakes: Rc::default(),
            http2: Rc::default(),
            functions: Vec::new(),
        }
    }

    /// This shard with a cell for each of `functions` functions.
    pub fn with_functions(mut self, functions: usize) -> Self {
        self.functions = (0..functions).map(|_| Rc::default()).collect();
        self
    }

    /// This shard with cells for the functions named `names`, keeping `prev`'s cell of each
    /// function whose name was in `prev_names` (see [`functions::carried`]).
    pub fn functions_reloaded(mut self, names: &[&str], prev_names: &[&str], prev: &Shard) -> Self {
        self.functions = functions::carried(names, prev_names, &prev.functions);
        self
    }

    /// Counts one invocation of function `index`.
    pub fn function(&self, index: usize, outcome: Outcome, took: Duration) {
        if let Some(c) = self.functions.get(index) {
            c.borrow_mut().record(outcome, took);
        }
    }

    /// A copy of the functions' numbers.
    pub fn functions(&self) -> Vec<FunctionCounts> {
        self.functions.iter().map(|c| c.borrow().clone()).collect()
    }

    /// The shard for a reloaded config whose routes have the keys `keys`, carrying over the
    /// numbers of every route whose key was in `prev_keys` (the keys `prev` was built for),
    /// and those of unmatched requests.
    pub fn reloaded(keys: &[&str], prev_keys: &[&str], prev: &Shard) -> Self {
        let mut s = Shard::new(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let old = prev_keys
                .iter()
                .position(|p| p == k)
                .and_then(|j| prev.routes.get(j));
            if let (Some(slot), Some(old)) = (s.routes.get_mut(i), old) {
                slot.clone_from(old);
            }
        }
        if let (Some(slot), Some(old)) = (s.routes.last_mut(), prev.routes.last()) {
            slot.clone_from(old);
        }
        s.requests = prev.requests.clone();
        s.handshakes = prev.handshakes.clone();
        s.http2 = prev.http2.clone();
        s
    }

    /// Counts one TLS handshake on a client connection.
    pub fn handshake(&self, version: &'static str, result: &'static str) {
        *self
            .handshakes
            .borrow_mut()
            .entry((version, result))
            .or_insert(0) += 1;
    }

    /// Counts a GOAWAY we sent, by `reason` (see [`Http2Counts`]).
    pub fn http2_goaway(&self, reason: &'static str) {
        *self.http2.borrow_mut().goaway.entry(reason).or_insert(0) += 1;
    }

    /// Counts an HTTP/2 stream reset.
    pub fn http2_stream_reset(&self) {
        self.http2.borrow_mut().streams_reset += 1;
    }

    /// A copy of the HTTP/2 counters.
    pub fn http2(&self) -> Http2Counts {
        self.http2.borrow().clone()
    }

    /// A copy of the handshake counters.
    pub fn handshakes(&self) -> HandshakeCounts {
        self.handshakes.borrow().clone()
    }

    /// Records one finished request (`route` None: it matched no route).
    pub fn record(&self, route: Option<usize>, r: &Record) {
        let last = self.routes.len().saturating_sub(1);
        let Some(s) = self.routes.get(route.unwrap_or(last).min(last)) else {
            return;
        };
        let mut s = s.borrow_mut();
        *s.counts
            .entry((method_label(r.method), r.status))
            .or_insert(0) += 1;
        let us = r.total.as_micros() as u64;
        if r.status == 101 {
            // an upgraded connection (RFC 9110 §15.2.2): its total is the tunnel's whole life,
            // which would swamp the route's request latency; the WebSocket metrics have it
            s.websocket_duration_us += us;
        } else {
            s.latency.saturating_record(us.max(1));
            s.latency_sum_us += us;
        }
        if let Some(i) = r.integration {
            let us = i.as_micros() as u64;
            s.integration.saturating_record(us.max(1));
            s.integration_sum_us += us;
        }
        s.bytes_in += r.bytes_in;
        s.bytes_out += r.bytes_out;
        self.requests.set(self.requests.get() + 1);
    }

    /// A WebSocket connection of `route` was upgraded and is open.
    pub fn websocket_opened(&self, route: usize) {
        if let Some(s) = self.routes.get(route) {
            let mut s = s.borrow_mut();
            s.websocket_open += 1;
            s.websocket_upgrades += 1;
        }
    }

    /// A WebSocket connection of `route` ended (paired with [`Shard::websocket_opened`] on
    /// the same shard, so the gauge never goes below zero).
    pub fn websocket_closed(&self, route: usize) {
        if let Some(s) = self.routes.get(route) {
            let mut s = s.borrow_mut();
            s.websocket_open = s.websocket_open.saturating_sub(1);
        }
    }

    /// Requests recorded so far.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// A copy of the routes' numbers.
    pub fn routes(&self) -> Vec<RouteStats> {
        self.routes.iter().map(|r| r.borrow().clone()).collect()
    }
}

/// An upstream target as one worker sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSnapshot {
    pub idle: u64,
    pub connects: u64,
    pub errors: u64,
    pub healthy: bool,
}

/// Everything a worker reports at a scrape.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub worker: usize,
    /// The config generation the worker served when it answered (see `server::reload`).
    pub generation: u64,
    pub driver: &'static str,
    pub active_connections: u64,
    pub requests: u64,
    pub routes: Vec<RouteStats>,
    /// By upstream, then target.
    pub upstreams: Vec<Vec<TargetSnapshot>>,
    /// TLS handshakes on client connections.
    pub handshakes: HandshakeCounts,
    /// HTTP/2 GOAWAYs and stream resets.
    pub http2: Http2Counts,
    /// By function index: Lambda invocations.
    pub functions: Vec<FunctionCounts>,
}

/// The scrape rendezvous between the admin thread and the workers.
#[derive(Debug)]
pub struct ScrapeBoard {
    epoch: AtomicU64,
    slots: Vec<Mutex<Option<(u64, Snapshot)>>>,
}

impl ScrapeBoard {
    pub fn new(workers: usize) -> Self {
        ScrapeBoard {
            epoch: AtomicU64::new(0),
            slots: (0..workers).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The epoch workers must answer (read by each worker's housekeeping loop).
    pub fn wanted(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// A worker's answer for `epoch`.
    pub fn answer(&self, worker: usize, epoch: u64, snap: Snapshot) {
        if let Some(slot) = self.slots.get(worker) {
            if let Ok(mut g) = slot.lock() {
                *g = Some((epoch, snap));
            }
        }
    }

    /// Asks every worker for a snapshot and waits (up to `limit`) for all of them. Workers
    /// that did not answer in time are missing from the result.
    pub fn collect(&self, limit: Duration) -> Vec<Snapshot> {
        let e = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        let deadline = Instant::now() + limit;
        loop {
            let done = self.slots.iter().all(|s| {
                s.lock()
                    .map(|g| g.as_ref().is_some_and(|(se, _)| *se >= e))
                    .unwrap_or(true)
            });
            if done || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.slots
            .iter()
            .filter_map(|s| {
                s.lock()
                    .ok()
                    .and_then(|g| g.as_ref().map(|(_, s)| s.clone()))
            })
            .collect()
    }
}

/// Per-route totals over all workers.
pub fn merge(snaps: &[Snapshot]) -> Vec<RouteStats> {
    let mut out: Vec<RouteStats> = Vec::new();
    for s in snaps {
        for (i, r) in s.routes.iter().enumerate() {
            if out.len() <= i {
                out.resize_with(i + 1, RouteStats::default);
            }
            let m = &mut out[i];
            for (k, v) in &r.counts {
                *m.counts.entry(*k).or_insert(0) += v;
            }
            let _ = m.latency.add(&r.latency);
            let _ = m.integration.add(&r.integration);
            m.latency_sum_us += r.latency_sum_us;
            m.integration_sum_us += r.integration_sum_us;
            m.bytes_in += r.bytes_in;
            m.bytes_out += r.bytes_out;
            m.websocket_open += r.websocket_open;
            m.websocket_upgrades += r.websocket_upgrades;
            m.websocket_duration_us += r.websocket_duration_us;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: u16, ms: u64) -> Record {
        Record {
            method: Method::Get,
            status,
            total: Duration::from_millis(ms),
            integration: Some(Duration::from_millis(ms / 2)),
            bytes_in: 100,
            bytes_out: 200,
        }
    }

    #[test]
    fn shards_merge_exactly() {
        let a = Shard::new(2);
        let b = Shard::new(2);
        for _ in 0..150 {
            a.record(Some(0), &rec(200, 1));
            b.record(Some(0), &rec(200, 3));
        }
        b.record(None, &rec(404, 1));
        let snap = |w: usize, s: &Shard| Snapshot {
            worker: w,
            generation: 0,
            driver: "epoll",
            active_connections: 0,
            requests: s.requests(),
            routes: s.routes(),
            upstreams: vec![],
            handshakes: s.handshakes(),
            http2: s.http2(),
            functions: s.functions(),
        };
        let m = merge(&[snap(0, &a), snap(1, &b)]);
        assert_eq!(m[0].counts[&("GET", 200)], 300);
        assert_eq!(m[0].latency.len(), 300);
        assert_eq!(
            m[2].counts[&("GET", 404)],
            1,
            "unmatched requests have their own slot"
        );
        assert_eq!(m[0].bytes_out, 60_000);
        let p50 = m[0].latency.value_at_quantile(0.5);
        assert!((990..=3010).contains(&p50), "{p50}");
    }

    /// A 101 (a WebSocket connection, recorded when its tunnel ended) counts by status and
    /// in the WebSocket duration, not in the request latency histogram.
    #[test]
    fn an_upgraded_connection_stays_out_of_the_latency_histogram() {
        let s = Shard::new(1);
        s.record(Some(0), &rec(200, 2));
        s.record(Some(0), &rec(101, 600_000));
        let r = &s.routes()[0];
        assert_eq!(r.counts[&("GET", 101)], 1);
        assert_eq!(r.counts[&("GET", 200)], 1);
        assert_eq!(
            r.latency.len(),
            1,
            "the tunnel's duration is in the latency histogram"
        );
        assert_eq!(r.latency_sum_us, 2_000);
        assert_eq!(r.websocket_duration_us, 600_000_000);
        assert_eq!(
            r.integration.len(),
            2,
            "the handshake's upstream time still counts"
        );
    }

    #[test]
    fn scrape_board_collects_every_worker() {
        let board = std::sync::Arc::new(ScrapeBoard::new(2));
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let board = board.clone();
                std::thread::spawn(move || {
                    let mut seen = 0;
                    for _ in 0..2000 {
                        let e = board.wanted();
                        if e > seen {
                            let s = Shard::new(0);
                            s.record(Some(0), &rec(200, 1));
                            board.answer(
                                w,
                                e,
                                Snapshot {
                                    worker: w,
                                    generation: 0,
                                    driver: "epoll",
                                    active_connections: 1,
                                    requests: s.requests(),
                                    routes: s.routes(),
                                    upstreams: vec![],
                                    handshakes: HandshakeCounts::default(),
                                    http2: Http2Counts::default(),
                                    functions: Vec::new(),
                                },
                            );
                            seen = e;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        let snaps = board.collect(Duration::from_secs(2));
        assert_eq!(snaps.len(), 2);
        assert_eq!(merge(&snaps)[0].counts[&("GET", 200)], 2);
        for w in workers {
            w.join().unwrap();
        }
    }
}
