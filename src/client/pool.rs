//! Upstreams as one worker sees them: target choice and a keep-alive connection pool per target.
//!
//! Owns: load balancing (smooth weighted round robin, or least requests by power of two random
//! choices over this worker's in-flight counts, both by target weight; see [`Upstream::pick`]),
//! checking connections out of and back into the per-worker pool, idle expiry, and connecting
//! with the configured timeout. Pools are never shared across cores: each worker has its own
//! `Upstream` values behind `Rc`, so checkout is a `RefCell` pop (and balancing state is `Cell`s).
//! Leaves out: speaking HTTP on the connection (see [`super::exchange`]).
//!
//! TLS upstreams (`tls = { ... }`): each target's client config and server name are taken from
//! [`UpstreamConfig::tls_for`] once, when the upstream is built for a worker, never per request.
//! A connection is a TCP connect then the client handshake ([`TlsStream::connect`]), the two
//! together bounded by the upstream's `connect_timeout`; the stream is `Stream::Tls` with the
//! rustls state boxed (an idle pooled TLS connection keeps several KiB of rustls buffers and
//! keys, see `transport::tls`). A failed handshake is a connect failure of the target (passive
//! health counts it, the next target is tried) answered 502 ([`GatewayError::UpstreamTls`]),
//! and logged on stderr naming the upstream, the target and rustls's reason, at most once a
//! second per target ([`crate::health::TLS_LOG_INTERVAL_MS`]). A reload that changes an
//! upstream's TLS settings (any file's bytes included) never hands the old idle connections to
//! the new upstream ([`Upstream::adopt_idle`]).
//!
//! A pooled connection may have been closed by the origin while idle, or (a misbehaving origin)
//! have received bytes nobody asked for, which would be taken as the next request's response.
//! Nothing reads an idle pooled socket (that would pin a buffer per idle connection); instead
//! every checkout probes it with a non-blocking `MSG_PEEK`: end of stream or any unread byte
//! and the connection is closed, never reused. A connection that dies between the probe and the
//! request is retried once on a fresh connection, for idempotent requests sent whole (RFC 9110
//! §9.2.2).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::net::TcpStream;

use crate::config::Balance;
use crate::config::UpstreamConfig;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rustls::pki_types::ServerName;

use crate::error::{GatewayError, UpstreamTlsFailure};
use crate::health::{clock_ms, TargetHealth};
use crate::metrics::TargetSnapshot;
use crate::tls::UpstreamTls;
use crate::transport::{HandshakeError, Stream, TlsStream};

/// One origin connection checked out for an exchange.
pub struct UpstreamConn {
    pub stream: Stream,
    /// The target's address (the access log's `integration.endpoint`), known without asking
    /// the socket.
    pub addr: SocketAddr,
    pub buf: BytesMut,
    pub target: usize,
    /// Taken from the pool rather than freshly connected.
    pub reused: bool,
}

struct Idle {
    stream: Stream,
    since: Instant,
}

/// What a target's connections speak below HTTP.
enum Wire {
    Plain,
    /// TLS with this client config, sending and verifying this server name (RFC 6066 §3,
    /// RFC 9525 §6).
    Tls {
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    },
    /// A TLS upstream whose target has no valid server name: compiling the config refuses
    /// that, so it cannot occur for a compiled config; connects fail rather than fall back to
    /// plain TCP.
    NoServerName,
}

impl Wire {
    /// Whether connections made with `self` may serve as connections made with `other`.
    fn same(&self, other: &Wire) -> bool {
        match (self, other) {
            (Wire::Plain, Wire::Plain) => true,
            (Wire::Tls { name: a, .. }, Wire::Tls { name: b, .. }) => a == b,
            _ => false,
        }
    }
}

struct Target {
    addr: SocketAddr,
    wire: Wire,
    idle: RefCell<VecDeque<Idle>>,
    in_flight: Cell<u32>,
    connects: Cell<u64>,
    errors: Cell<u64>,
    /// Consecutive failures on this worker (reset by a success).
    failures: Cell<u32>,
    /// Share of requests relative to the other targets (the config's weight, at least 1).
    weight: u32,
    /// Smooth weighted round robin's running value on this worker (nginx's `current_weight`).
    current: Cell<i64>,
    /// Shared with every worker and the health checker.
    health: Arc<TargetHealth>,
}

/// Per-worker state of one `[[upstream]]`.
pub struct Upstream {
    pub name: String,
    balance: Balance,
    connect_timeout: Duration,
    pub response_timeout: Duration,
    max_idle: usize,
    idle_timeout: Duration,
    targets: Vec<Target>,
    /// Plain round robin's next start (every weight equal).
    next: Cell<usize>,
    /// Every target has the same weight: round robin is the plain rotation.
    uniform: bool,
    /// Running sums of the weights (`[i]`: targets `0..=i`): least requests draws its
    /// candidates in proportion to weight by a random point in `0..total`.
    cumulative: Vec<u64>,
    passive_failures: u32,
    passive_cooldown_ms: u64,
    /// The upstream's TLS settings (`None`: plain), to tell whether a reload changed them.
    tls: Option<UpstreamTls>,
}

impl Upstream {
    /// `health` holds the shared health of each target (from the process's health board).
    pub fn new(cfg: &UpstreamConfig, health: &[Arc<TargetHealth>]) -> Self {
        let weights = cfg.weights();
        // one per target, in 1..=1000 for a compiled config; at least 1 whatever it is, so
        // every target can be drawn
        let weight = |i: usize| weights.get(i).map_or(1, |&w| w.max(1));
        let cumulative: Vec<u64> = (0..cfg.targets.len())
            .scan(0u64, |sum, i| {
                *sum = sum.saturating_add(u64::from(weight(i)));
                Some(*sum)
            })
            .collect();
        Upstream {
            passive_failures: cfg.passive_failures,
            passive_cooldown_ms: cfg.passive_cooldown.as_millis() as u64,
            name: cfg.name.clone(),
            balance: cfg.balance,
            connect_timeout: cfg.connect_timeout,
            response_timeout: cfg.response_timeout,
            max_idle: cfg.max_idle_per_worker,
            idle_timeout: cfg.idle_timeout,
            targets: cfg
                .targets
                .iter()
                .enumerate()
                .map(|(i, &addr)| Target {
                    health: health.get(i).cloned().unwrap_or_default(),
                    addr,
                    wire: match (&cfg.tls, cfg.tls_for(i)) {
                        (None, _) => Wire::Plain,
                        (Some(_), Some((config, name))) => Wire::Tls { config, name },
                        (Some(_), None) => Wire::NoServerName,
                    },
                    idle: RefCell::new(VecDeque::new()),
                    in_flight: Cell::new(0),
                    connects: Cell::new(0),
                    errors: Cell::new(0),
                    failures: Cell::new(0),
                    weight: weight(i),
                    current: Cell::new(0),
                })
                .collect(),
            next: Cell::new(0),
            uniform: (0..cfg.targets.len()).all(|i| weight(i) == weight(0)),
            cumulative,
            tls: cfg.tls.clone(),
        }
    }

    /// Whether this upstream's targets use exactly the health cells `health` (a reload kept
    /// them), so the upstream can be carried over as it is.
    pub fn shares_health(&self, health: &[Arc<TargetHealth>]) -> bool {
        self.targets.len() == health.len()
            && self
                .targets
                .iter()
                .zip(health)
                .all(|(t, h)| Arc::ptr_eq(&t.health, h))
    }

    /// Takes over `old`'s idle pooled connections to targets this upstream also has (a reload
    /// changed the upstream's settings, not those origins), within this upstream's pool size.
    /// Only when both speak the same on the wire: plain to plain, or TLS with equal settings
    /// (digest of every file's bytes, server name, verification) and the same server name per
    /// target. A connection verified against an old CA, or made without the client certificate
    /// now configured, is dropped, not reused.
    pub fn adopt_idle(&self, old: &Upstream) {
        if self.tls != old.tls {
            return;
        }
        for t in &self.targets {
            let Some(o) = old
                .targets
                .iter()
                .find(|o| o.addr == t.addr && o.wire.same(&t.wire))
            else {
                continue;
            };
            let mut mine = t.idle.borrow_mut();
            for conn in o.idle.borrow_mut().drain(..) {
                if mine.len() < self.max_idle {
                    mine.push_back(conn);
                }
            }
        }
    }

    /// Number of targets.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether the upstream has no targets (never true for a compiled config).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Chooses the target for a first attempt among the usable ones (healthy by the active check
    /// and not ejected); `None` when every target is down. `random` is a fresh random value.
    ///
    /// Round robin: with every weight equal, the plain rotation (a down target's turn goes to
    /// the next usable one); otherwise smooth weighted round robin ([`Upstream::smooth`]).
    /// Least requests: two candidates drawn in proportion to weight, the one with fewer
    /// requests in flight per unit of weight wins (the first on a tie, so with nothing in flight
    /// the split follows the weights).
    pub fn pick(&self, random: u64) -> Option<usize> {
        let n = self.targets.len();
        let usable = |i: usize| self.targets.get(i).is_some_and(|t| t.health.usable());
        match self.balance {
            Balance::RoundRobin if self.uniform => {
                let start = self.next.get();
                self.next.set((start + 1) % n.max(1));
                (0..n).map(|k| (start + k) % n).find(|&i| usable(i))
            }
            Balance::RoundRobin => self.smooth(),
            Balance::LeastRequests => {
                let a = self.draw(random >> 32);
                let b = self.draw(random & u64::from(u32::MAX));
                match (usable(a), usable(b)) {
                    (true, true) => Some(if self.lighter(b, a) { b } else { a }),
                    (true, false) => Some(a),
                    (false, true) => Some(b),
                    (false, false) => (0..n).find(|&i| usable(i)),
                }
            }
        }
    }

    /// Smooth weighted round robin, as nginx's `ngx_http_upstream_get_peer`
    /// (src/http/ngx_http_upstream_round_robin.c): every usable target's weight is added to its
    /// running value, the largest value wins (the first on a tie), and the sum of the usable
    /// weights is taken off the winner's. While the usable targets stay the same, every run of
    /// `total` picks from a fresh start gives each target exactly its weight, interleaved
    /// (5, 1, 1 gives a a b a c a a) rather than in bursts.
    /// Unusable targets neither take part nor accumulate. Per worker, in `Cell`s: no locks.
    fn smooth(&self) -> Option<usize> {
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for (i, t) in self.targets.iter().enumerate() {
            if !t.health.usable() {
                continue;
            }
            let w = i64::from(t.weight);
            let c = t.current.get().saturating_add(w);
            t.current.set(c);
            total = total.saturating_add(w);
            if best.is_none_or(|(_, b)| c > b) {
                best = Some((i, c));
            }
        }
        let (i, c) = best?;
        if let Some(t) = self.targets.get(i) {
            t.current.set(c.saturating_sub(total));
        }
        Some(i)
    }

    /// The target whose weight range holds a random point in `0..total weight`, the point
    /// taken from `r` (below 2^32) by multiply and shift (no modulo bias worth a division).
    fn draw(&self, r: u64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        let point = ((u128::from(r) * u128::from(total)) >> 32) as u64;
        self.cumulative.partition_point(|&c| c <= point)
    }

    /// Whether target `x` has fewer requests in flight per unit of weight than `y`:
    /// `in_flight(x) / weight(x) < in_flight(y) / weight(y)`, cross-multiplied (no floats, no
    /// overflow in 64 bits).
    fn lighter(&self, x: usize, y: usize) -> bool {
        let (Some(x), Some(y)) = (self.targets.get(x), self.targets.get(y)) else {
            return false;
        };
        u64::from(x.in_flight.get()) * u64::from(y.weight)
            < u64::from(y.in_flight.get()) * u64::from(x.weight)
    }

    /// The next usable target after `after` (failover), if any other is usable.
    pub fn next_usable(&self, after: usize) -> Option<usize> {
        let n = self.targets.len();
        (1..n)
            .map(|k| (after + k) % n)
            .find(|&i| self.targets.get(i).is_some_and(|t| t.health.usable()))
    }

    /// A pooled connection to `target` if one is alive, fresh and silent, else a new one.
    pub async fn checkout(
        &self,
        target: usize,
        buf: BytesMut,
    ) -> Result<UpstreamConn, (GatewayError, BytesMut)> {
        let Some(t) = self.targets.get(target) else {
            return Err((GatewayError::NoTarget, buf));
        };
        if let Some(stream) = self.pooled(t) {
            t.in_flight.set(t.in_flight.get() + 1);
            return Ok(UpstreamConn {
                stream,
                addr: t.addr,
                buf,
                target,
                reused: true,
            });
        }
        self.connect(target, buf).await
    }

    /// A new connection to `target`, bypassing the pool.
    pub async fn connect(
        &self,
        target: usize,
        buf: BytesMut,
    ) -> Result<UpstreamConn, (GatewayError, BytesMut)> {
        let Some(t) = self.targets.get(target) else {
            return Err((GatewayError::NoTarget, buf));
        };
        // one deadline for the TCP connect and the TLS handshake together
        let deadline = Instant::now() + self.connect_timeout;
        let tcp = match monoio::time::timeout(self.connect_timeout, TcpStream::connect_addr(t.addr))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(_)) => {
                self.note_error(target);
                return Err((GatewayError::UpstreamConnect, buf));
            }
            Err(_) => {
                self.note_error(target);
                return Err((GatewayError::UpstreamTimeout, buf));
            }
        };
        let _ = tcp.set_nodelay(true);
        let stream = match &t.wire {
            Wire::Plain => Stream::Plain(tcp),
            Wire::Tls { config, name } => {
                let left = deadline.saturating_duration_since(Instant::now());
                match TlsStream::connect(tcp, config.clone(), name.clone(), left).await {
                    Ok(s) => Stream::Tls(Box::new(s)),
                    Err(e) => {
                        self.note_error(target);
                        self.log_handshake(t, name, &e);
                        return Err((handshake_error(&e), buf));
                    }
                }
            }
            Wire::NoServerName => {
                self.note_error(target);
                return Err((GatewayError::UpstreamConnect, buf));
            }
        };
        t.connects.set(t.connects.get() + 1);
        t.in_flight.set(t.in_flight.get() + 1);
        Ok(UpstreamConn {
            stream,
            addr: t.addr,
            buf,
            target,
            reused: false,
        })
    }

    /// The log line of a failed handshake with `t`, at most one per target per
    /// [`crate::health::TLS_LOG_INTERVAL_MS`] across workers.
    fn log_handshake(&self, t: &Target, name: &ServerName<'static>, e: &HandshakeError) {
        if t.health.tls_log_due(clock_ms()) {
            eprintln!(
                "tollgate: upstream {} target {} (server name {}): {e}",
                self.name,
                t.addr,
                name.to_str()
            );
        }
    }

    fn pooled(&self, t: &Target) -> Option<Stream> {
        let mut idle = t.idle.borrow_mut();
        let now = Instant::now();
        // Oldest connections sit at the front: drop the expired ones.
        while idle
            .front()
            .is_some_and(|c| now.duration_since(c.since) >= self.idle_timeout)
        {
            idle.pop_front();
        }
        // Most recently used at the back (LIFO keeps few connections hot).
        while let Some(mut c) = idle.pop_back() {
            if c.stream.probe_idle() {
                return Some(c.stream);
            }
        }
        None
    }

    /// Ends an exchange on `conn`'s target; the connection is pooled when `reusable`.
    /// Returns the connection's buffer for reuse.
    pub fn release(&self, conn: UpstreamConn, reusable: bool) -> BytesMut {
        let UpstreamConn {
            stream,
            buf,
            target,
            ..
        } = conn;
        if let Some(t) = self.targets.get(target) {
            t.in_flight.set(t.in_flight.get().saturating_sub(1));

            // Bytes left over after a complete response mean the origin sent more than one
            // message: the stream is out of sync, never reuse it.
            if reusable && buf.is_empty() && self.max_idle > 0 {
                let mut idle = t.idle.borrow_mut();
                if idle.len() >= self.max_idle {
                    idle.pop_front();
                }
                idle.push_back(Idle {
                    stream,
                    since: Instant::now(),
                });
            }
        }
        buf
    }

    /// Counts a connect error, protocol error or 5xx against `target`; after
    /// `passive_failures` in a row the target is ejected for every worker for the cool-down.
    pub fn note_error(&self, target: usize) {
        if let Some(t) = self.targets.get(target) {
            t.errors.set(t.errors.get() + 1);
            let f = t.failures.get().saturating_add(1);
            t.failures.set(f);
            if self.passive_failures > 0 && f >= self.passive_failures {
                let until = clock_ms() + self.passive_cooldown_ms;
                t.health.ejected_until.store(until, Ordering::Relaxed);
                t.failures.set(0);
            }
        }
    }

    /// Records a good exchange with `target` (resets its failure streak).
    pub fn note_success(&self, target: usize) {
        if let Some(t) = self.targets.get(target) {
            t.failures.set(0);
        }
    }

    /// This worker's view of every target, for metrics.
    pub fn snapshot(&self) -> Vec<TargetSnapshot> {
        self.targets
            .iter()
            .map(|t| TargetSnapshot {
                idle: t.idle.borrow().len() as u64,
                connects: t.connects.get(),
                errors: t.errors.get(),
                healthy: t.health.usable(),
            })
            .collect()
    }
}

/// The error a failed handshake with an origin answers: 504 for a timeout, as for a TCP connect,
/// else 502 with the kind of failure.
fn handshake_error(e: &HandshakeError) -> GatewayError {
    let kind = match e {
        HandshakeError::Timeout => return GatewayError::UpstreamTimeout,
        HandshakeError::ServerCertificate(_) => UpstreamTlsFailure::Certificate,
        HandshakeError::ProtocolVersion(_) => UpstreamTlsFailure::Version,
        HandshakeError::PeerClosed => UpstreamTlsFailure::Closed,
        // the server-side reasons cannot come from a client handshake; counted as errors
        HandshakeError::NoCertificate
        | HandshakeError::ClientCertificate(_)
        | HandshakeError::Tls(_)
        | HandshakeError::Io(_) => UpstreamTlsFailure::Handshake,
    };
    GatewayError::UpstreamTls(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream `u` over `targets` (TOML array items) with `balance`, and its targets' health
    /// cells (to mark targets down).
    fn upstream(targets: &str, balance: &str) -> (Upstream, Vec<Arc<TargetHealth>>) {
        let toml = format!(
            "[[upstream]]\nname = \"u\"\ntargets = [{targets}]\nbalance = \"{balance}\"\n\n\
             [[route]]\nkey = \"GET /x\"\nupstream = \"u\"\n"
        );
        let cfg = crate::config::from_str(&toml).unwrap();
        let health: Vec<Arc<TargetHealth>> = cfg.upstreams[0]
            .targets
            .iter()
            .map(|_| Arc::new(TargetHealth::default()))
            .collect();
        (Upstream::new(&cfg.upstreams[0], &health), health)
    }

    const A_B_C_5_1_1: &str = r#"{ address = "10.0.0.1:80", weight = 5 }, { address = "10.0.0.2:80", weight = 1 }, "10.0.0.3:80""#;

    /// `k` round-robin picks as letters (`a` = target 0), `-` for none.
    fn picks(up: &Upstream, k: usize) -> String {
        (0..k)
            .map(|_| up.pick(0).map_or('-', |i| char::from(b'a' + i as u8)))
            .collect()
    }

    #[test]
    fn smooth_weighted_round_robin_is_nginx_sequence() {
        let (up, _) = upstream(A_B_C_5_1_1, "round_robin");
        assert!(!up.uniform);
        // nginx's own example for weights 5, 1, 1 (ngx_http_upstream_round_robin.c), twice:
        // the running values are all back at 0 after each 7 picks
        assert_eq!(picks(&up, 14), "aabacaaaabacaa");
        assert!(up.targets.iter().all(|t| t.current.get() == 0));
    }

    #[test]
    fn equal_weights_are_plain_round_robin() {
        for targets in [
            r#""10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80""#,
            r#"{ address = "10.0.0.1:80", weight = 7 }, { address = "10.0.0.2:80", weight = 7 }, { address = "10.0.0.3:80", weight = 7 }"#,
        ] {
            let (up, health) = upstream(targets, "round_robin");
            assert!(up.uniform);
            assert_eq!(picks(&up, 7), "abcabca", "{targets}");
            // exactly as before weights: a down target's turn goes to the next usable one
            health[1].active.store(false, Ordering::Relaxed);
            assert_eq!(picks(&up, 6), "ccacca", "{targets}");
        }
    }

    #[test]
    fn unusable_target_is_skipped_and_does_not_accumulate() {
        let (up, health) = upstream(A_B_C_5_1_1, "round_robin");
        health[2].active.store(false, Ordering::Relaxed);
        // c down: a and b split 5:1, each run of 6 exact
        assert_eq!(picks(&up, 12), "aaabaaaaabaa");
        // c back: its running value stayed 0 (no burst of missed turns), the plain sequence
        health[2].active.store(true, Ordering::Relaxed);
        assert_eq!(picks(&up, 7), "aabacaa");
        // an ejected target counts as unusable too
        health[0]
            .ejected_until
            .store(clock_ms() + 60_000, Ordering::Relaxed);
        assert_eq!(picks(&up, 4), "bcbc");
        for h in &health {
            h.active.store(false, Ordering::Relaxed);
        }
        assert_eq!(up.pick(0), None);
    }

    /// A random value whose high half draws target point `hi` and low half `lo`, each a
    /// fraction of the `u32` range.
    fn random(hi: f64, lo: f64) -> u64 {
        let half = |f: f64| (f * f64::from(u32::MAX)) as u64;
        (half(hi) << 32) | half(lo)
    }

    #[test]
    fn least_requests_draws_in_proportion_to_weight() {
        let targets = r#"{ address = "10.0.0.1:80", weight = 3 }, "10.0.0.2:80""#;
        let (up, _) = upstream(targets, "least_requests");
        assert_eq!(up.cumulative, [3, 1 + 3]);
        // nothing in flight: the first candidate (high half) wins, so evenly spread random
        // values split exactly 3:1
        let mut count = [0usize; 2];
        for k in 0..4_000u64 {
            let hi = (k << 32) / 4_000;
            if let Some(i) = up.pick(hi << 32) {
                count[i] += 1;
            }
        }
        assert_eq!(count, [3_000, 1_000]);
        assert_eq!(up.draw(u64::from(u32::MAX)), 1);
        assert_eq!(up.draw(0), 0);
    }

    #[test]
    fn least_requests_compares_in_flight_per_weight() {
        let targets = r#"{ address = "10.0.0.1:80", weight = 3 }, "10.0.0.2:80""#;
        let (up, health) = upstream(targets, "least_requests");
        let r = random(0.1, 0.9); // candidates a (weight 3) and b (weight 1)
        up.targets[0].in_flight.set(3);
        up.targets[1].in_flight.set(1);
        assert_eq!(up.pick(r), Some(0), "3/3 = 1/1: the first candidate");
        up.targets[0].in_flight.set(4);
        assert_eq!(up.pick(r), Some(1), "4/3 > 1/1");
        up.targets[1].in_flight.set(2);
        assert_eq!(up.pick(r), Some(0), "4/3 < 2/1");
        // an unusable candidate leaves the other
        health[0].active.store(false, Ordering::Relaxed);
        assert_eq!(up.pick(r), Some(1));
        assert_eq!(
            up.pick(random(0.1, 0.2)),
            Some(1),
            "both draws down: first usable"
        );
    }
}
