//! Dashboard history: the last [`HISTORY_SECONDS`] seconds of per-second aggregates, kept on
//! the admin side so that a page opened now starts with the last 15 minutes, not an empty chart.
//!
//! Owns: the sampler thread, the ring of [`Sample`]s and its JSON (`GET /history`). Data flow:
//! once a second the sampler scrapes every worker through the scrape board, exactly as
//! `GET /stats` does (a worker pays one copy of its shard per second, nothing per request), and
//! reads the shared throttle counters; it subtracts the previous scrape's cumulative numbers,
//! kept here per worker and per route key, and pushes one [`Sample`] into the ring. The ring sits
//! behind a mutex written once a second by the sampler and read by admin connections. Leaves
//! out: drawing (the page does), and anything on a worker.
//!
//! Exactness: differences are taken per worker and per route key, so a worker that missed a
//! scrape (busy, or still on the previous config generation) adds its requests to the next
//! sample instead of losing them, and routes renumbered by a reload keep their counts. A reload
//! that removes a route loses at most that route's requests since the previous sample.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::Admin;
use crate::metrics::prom::{class_counts, json_str};
use crate::metrics::Snapshot;

/// Samples kept: 15 minutes of seconds.
pub const HISTORY_SECONDS: usize = 900;
/// Time between two samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Routes listed per sample, busiest first (bounds the ring's memory with many routes).
pub const ROUTES_PER_SAMPLE: usize = 50;

/// One second of traffic, over all workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Unix time in milliseconds when the sample was taken (it covers the second before).
    /// Milliseconds, not seconds: two samples may fall in one wall-clock second when a scrape
    /// was slow, and `since` must still tell them apart.
    pub at_ms: u64,
    /// Requests answered, by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub classes: [u64; 5],
    /// Requests refused by a rate limit.
    pub throttled: u64,
    /// Latency quantiles of the second's requests, µs (None: no request).
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// Requests by route key (busiest [`ROUTES_PER_SAMPLE`], only routes that had any).
    pub routes: Vec<(String, u64)>,
}

impl Sample {
    pub fn requests(&self) -> u64 {
        self.classes.iter().sum()
    }
}

/// The ring of samples, oldest first.
#[derive(Debug, Default)]
pub struct History {
    ring: Mutex<VecDeque<Sample>>,
}

impl History {
    fn push(&self, s: Sample) {
        if let Ok(mut r) = self.ring.lock() {
            if r.len() >= HISTORY_SECONDS {
                r.pop_front();
            }
            r.push_back(s);
        }
    }

    /// Samples taken after Unix millisecond `since` (all of them: None).
    pub fn samples(&self, since: Option<u64>) -> Vec<Sample> {
        let Ok(r) = self.ring.lock() else {
            return Vec::new();
        };
        r.iter()
            .filter(|s| since.is_none_or(|t| s.at_ms > t))
            .cloned()
            .collect()
    }

    /// `GET /history`: `{"interval_s":1,"now":T,"samples":[...]}` (times in Unix seconds with
    /// millisecond decimals), each sample
    /// `{"t","requests","status_1xx".."status_5xx","throttled","p50_ms","p99_ms","routes":{}}`.
    pub fn json(&self, since: Option<u64>) -> String {
        let samples = self.samples(since);
        let mut out = String::with_capacity(128 + samples.len() * 160);
        let _ = write!(
            out,
            "{{\"interval_s\":{},\"now\":{:.3},\"samples\":[",
            SAMPLE_INTERVAL.as_secs(),
            wall_now().as_secs_f64()
        );
        let ms = |v: Option<u64>| {
            v.map_or_else(
                || "null".to_string(),
                |us| format!("{:.3}", us as f64 / 1000.0),
            )
        };
        for (i, s) in samples.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let [c1, c2, c3, c4, c5] = s.classes;
            let _ = write!(
                out,
                "{{\"t\":{}.{:03},\"requests\":{},\"status_1xx\":{c1},\"status_2xx\":{c2},\"status_3xx\":{c3},\"status_4xx\":{c4},\"status_5xx\":{c5},\"throttled\":{},\"p50_ms\":{},\"p99_ms\":{},\"routes\":{{",
                s.at_ms / 1000,
                s.at_ms % 1000,
                s.requests(),
                s.throttled,
                ms(s.p50_us),
                ms(s.p99_us)
            );
            for (j, (k, n)) in s.routes.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                json_str(&mut out, k);
                let _ = write!(out, ":{n}");
            }
            out.push_str("}}");
        }
        out.push_str("]}");
        out
    }
}

/// `since=T` (Unix seconds, decimals allowed, as `t` is written) from a query string, in
/// milliseconds (other parameters ignored; a bad value means "everything").
pub fn since(query: Option<&[u8]>) -> Option<u64> {
    let q = std::str::from_utf8(query?).ok()?;
    let secs: f64 = q
        .split('&')
        .find_map(|p| p.strip_prefix("since="))
        .and_then(|v| v.parse().ok())
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    // rounded: "12.345" is 12344.999... ms as a float
    Some((secs * 1000.0).round() as u64)
}

fn wall_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A worker's cumulative numbers at the previous sample.
struct WorkerBase {
    /// By route key: requests by status class.
    routes: HashMap<String, [u64; 5]>,
    /// All routes' latencies merged.
    latency: Histogram<u64>,
}

/// What the sampler remembers between two samples.
#[derive(Default)]
struct Baseline {
    workers: HashMap<usize, WorkerBase>,
    /// Throttled requests by route key.
    throttled: HashMap<String, u64>,
}

fn empty_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, crate::metrics::MAX_LATENCY_US, crate::metrics::SIGFIG).ok()
}

impl Baseline {
    /// The sample for the scrape `snaps` (taken under `config`), updating the baseline.
    fn sample(
        &mut self,
        at_ms: u64,
        config: &crate::config::Config,
        throttle: &crate::throttle::Throttle,
        snaps: &[Snapshot],
    ) -> Sample {
        let key = |i: usize| {
            config
                .routes
                .get(i)
                .map_or_else(|| "$none".to_string(), |r| r.id.clone())
        };
        let mut s = Sample {
            at_ms,
            ..Sample::default()
        };
        let mut by_route: HashMap<String, u64> = HashMap::new();
        let mut latency = empty_histogram();
        for snap in snaps {
            let prev = self.workers.remove(&snap.worker);
            let mut now = WorkerBase {
                routes: HashMap::with_capacity(snap.routes.len()),
                latency: match empty_histogram() {
                    Some(h) => h,
                    None => continue,
                },
            };
            for (i, r) in snap.routes.iter().enumerate() {
                let k = key(i);
                let c = class_counts(r);
                let before = prev.as_ref().and_then(|p| p.routes.get(&k));
                let mut total = 0;
                for (j, n) in c.iter().enumerate() {
                    let was = before.and_then(|b| b.get(j)).copied().unwrap_or(0);
                    let d = n.saturating_sub(was);
                    if let Some(slot) = s.classes.get_mut(j) {
                        *slot += d;
                    }
                    total += d;
                }
                if total > 0 {
                    *by_route.entry(k.clone()).or_insert(0) += total;
                }
                let _ = now.latency.add(&r.latency);
                now.routes.insert(k, c);
            }
            // this second's latencies: the cumulative histogram minus the previous one (which
            // fails only if a reload removed a route: that worker's second is left out)
            let mut d = now.latency.clone();
            let ok = match &prev {
                Some(p) => d.subtract(&p.latency).is_ok(),
                None => true,
            };
            if let (true, Some(l)) = (ok, latency.as_mut()) {
                let _ = l.add(&d);
            }
            self.workers.insert(snap.worker, now);
        }
        if let Some(l) = latency.filter(|l| !l.is_empty()) {
            s.p50_us = Some(l.value_at_quantile(0.5));
            s.p99_us = Some(l.value_at_quantile(0.99));
        }
        let mut throttled = HashMap::with_capacity(config.routes.len());
        for i in 0..config.routes.len() {
            let k = key(i);
            let n = throttle.route_total(i, |c| &c.throttled);
            s.throttled += n.saturating_sub(self.throttled.get(&k).copied().unwrap_or(0));
            throttled.insert(k, n);
        }
        self.throttled = throttled;
        let mut routes: Vec<(String, u64)> = by_route.into_iter().collect();
        routes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        routes.truncate(ROUTES_PER_SAMPLE);
        s.routes = routes;
        s
    }
}

/// Starts the sampler: one scrape a second until the server drains.
pub fn spawn_sampler(admin: Arc<Admin>, history: Arc<History>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tollgate-history".into())
        .spawn(move || {
            let mut base = Baseline::default();
            let mut next = Instant::now() + SAMPLE_INTERVAL;
            loop {
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                next += SAMPLE_INTERVAL;
                if admin.shared.draining() {
                    break;
                }
                let (cur, snaps) = super::scrape(&admin);
                let at_ms = u64::try_from(wall_now().as_millis()).unwrap_or(u64::MAX);
                history.push(base.sample(at_ms, &cur.config, &cur.throttle, &snaps));
                // a scrape that overran (a stalled worker): skip the missed ticks, don't burst
                let now = Instant::now();
                if next < now {
                    next = now + SAMPLE_INTERVAL;
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_the_parameter() {
        assert_eq!(since(Some(b"since=17")), Some(17_000));
        assert_eq!(since(Some(b"x=1&since=5.123")), Some(5_123));
        assert_eq!(
            since(Some(b"since=1764528000.345")),
            Some(1_764_528_000_345)
        );
        assert_eq!(since(Some(b"since=nope")), None);
        assert_eq!(since(Some(b"since=-1")), None);
        assert_eq!(since(None), None);
    }

    #[test]
    fn the_ring_keeps_the_last_fifteen_minutes() {
        let h = History::default();
        for at in 0..(HISTORY_SECONDS as u64 + 10) {
            h.push(Sample {
                at_ms: at * 1000 + 5,
                classes: [0, 1, 0, 0, 0],
                ..Sample::default()
            });
        }
        let all = h.samples(None);
        assert_eq!(all.len(), HISTORY_SECONDS);
        assert_eq!(all.first().map(|s| s.at_ms), Some(10_005));
        assert_eq!(h.samples(Some(907_005)).len(), 2);
        let j = h.json(Some(908_005));
        assert!(
            j.contains(
                "\"samples\":[{\"t\":909.005,\"requests\":1,\"status_1xx\":0,\"status_2xx\":1,"
            ),
            "{j}"
        );
        assert!(j.contains("\"p50_ms\":null"), "{j}");
    }
}
