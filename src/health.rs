//! Upstream health: active checks run once per process, passive ejection shared by all workers.
//!
//! Owns: [`HealthBoard`], one [`TargetHealth`] per upstream target, which is the only health
//! state that crosses cores, and the checker thread. Active checks (`health = { path, ... }` on
//! an upstream) run on one background thread for the whole process, not per worker: every
//! `interval_ms` it sends `GET path` on a fresh connection (blocking I/O off the workers; for a
//! TLS upstream over TLS with `Host` the verified server name, see [`probe`]), counts
//! consecutive successes (2xx/3xx) and failures, and flips the target's `active` flag after
//! `healthy` successes or `unhealthy` failures. Passive ejection: a worker that sees
//! `passive_failures` consecutive connect errors, protocol errors or 5xx from a target sets its
//! `ejected_until` (milliseconds on the process clock) `passive_cooldown_ms` ahead; every worker
//! skips the target until then. Workers read both with `Relaxed` loads: a flag seen a moment late
//! only sends one more request to a target that is going down or up, and no other memory is
//! published through them. Leaves out: choosing among healthy targets (see `client::pool`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::config::{CheckSpec, Config};

/// Health of one target as every worker sees it.
#[derive(Debug)]
pub struct TargetHealth {
    /// The active check's verdict (true until a check says otherwise).
    pub active: AtomicBool,
    /// Passive ejection: skip the target until this time (ms on [`clock_ms`]); 0 = not ejected.
    pub ejected_until: AtomicU64,
    /// When a worker last logged a failed TLS handshake with the target (ms on [`clock_ms`]; 0:
    /// never): one line per [`TLS_LOG_INTERVAL_MS`] for all workers together.
    tls_logged: AtomicU64,
}

/// Least time between two log lines about failed TLS handshakes with one target, whichever
/// worker saw them: an origin with a bad certificate fails every connect, and one line a second
/// says so as well as thousands. (The access log keeps one error per request.)
pub const TLS_LOG_INTERVAL_MS: u64 = 1000;

impl Default for TargetHealth {
    fn default() -> Self {
        TargetHealth {
            active: AtomicBool::new(true),
            ejected_until: AtomicU64::new(0),
            tls_logged: AtomicU64::new(0),
        }
    }
}

impl TargetHealth {
    /// Whether requests may go to the target now. Reads the clock only while the target is (or
    /// was recently) ejected, so the common path costs two relaxed loads.
    pub fn usable(&self) -> bool {
        if !self.active.load(Ordering::Relaxed) {
            return false;
        }
        let until = self.ejected_until.load(Ordering::Relaxed);
        until == 0 || until <= clock_ms()
    }
}

impl TargetHealth {
    /// Whether a failed TLS handshake seen at `now_ms` is to be logged: true for the first one
    /// of each [`TLS_LOG_INTERVAL_MS`], for one worker only (the compare-exchange elects it).
    /// `Relaxed`: the timestamp publishes no other memory, and a worker that sees it late at
    /// worst logs one line more.
    pub fn tls_log_due(&self, now_ms: u64) -> bool {
        let last = self.tls_logged.load(Ordering::Relaxed);
        if last != 0 && now_ms < last.saturating_add(TLS_LOG_INTERVAL_MS) {
            return false;
        }
        self.tls_logged
            .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// Milliseconds on the process-wide monotonic clock.
pub fn clock_ms() -> u64 {
    crate::throttle::clock_ns() / 1_000_000
}

/// Health of every target, by upstream then target.
#[derive(Debug, Default)]
pub struct HealthBoard {
    pub upstreams: Vec<Vec<Arc<TargetHealth>>>,
}

impl HealthBoard {
    pub fn new(config: &Config) -> Self {
        HealthBoard {
            upstreams: config
                .upstreams
                .iter()
                .map(|u| {
                    u.targets
                        .iter()
                        .map(|_| Arc::new(TargetHealth::default()))
                        .collect()
                })
                .collect(),
        }
    }

    /// The shared health of upstream `i`'s targets (empty for an unknown index).
    pub fn upstream(&self, i: usize) -> &[Arc<TargetHealth>] {
        self.upstreams.get(i).map_or(&[][..], |v| v)
    }

    /// The board for a reloaded config: a target keeps its health (active verdict and passive
    /// ejection, as the same shared cell) when its upstream's name and its address are
    /// unchanged and its upstream had and has active checks; otherwise it keeps only a passive
    /// ejection in progress.
    pub fn reloaded(config: &Config, prev_config: &Config, prev: &HealthBoard) -> Self {
        let mut b = HealthBoard::new(config);
        for (u, up) in config.upstreams.iter().enumerate() {
            let Some(j) = prev_config.upstreams.iter().position(|o| o.name == up.name) else {
                continue;
            };
            let Some(old) = prev_config.upstreams.get(j) else {
                continue;
            };
            for (t, addr) in up.targets.iter().enumerate() {
                let k = old.targets.iter().position(|a| a == addr);
                let found = k.and_then(|k| prev.upstreams.get(j)?.get(k));
                let (Some(slot), Some(h)) =
                    (b.upstreams.get_mut(u).and_then(|v| v.get_mut(t)), found)
                else {
                    continue;
                };
                if up.health.is_some() && old.health.is_some() {
                    *slot = h.clone();
                } else {
                    // no active check any more (or a new one): the active verdict starts fresh,
                    // or a target marked down by a check that was removed would stay down
                    let until = h.ejected_until.load(Ordering::Relaxed);
                    slot.ejected_until.store(until, Ordering::Relaxed);
                }
            }
        }
        b
    }

    /// Starts the checker thread if any upstream has active checks. It stops once `stop` says so.
    pub fn spawn_checker(
        self: &Arc<Self>,
        config: Arc<Config>,
        stop: impl Fn() -> bool + Send + 'static,
    ) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
        if config.upstreams.iter().all(|u| u.health.is_none()) {
            return Ok(None);
        }
        let board = self.clone();
        let t = std::thread::Builder::new()
            .name("tollgate-health".into())
            .spawn(move || checker(&board, &config, &stop))?;
        Ok(Some(t))
    }
}

fn checker(board: &HealthBoard, config: &Config, stop: &dyn Fn() -> bool) {
    struct State {
        next: Instant,
        ok: u32,
        bad: u32,
    }
    let mut state: Vec<Vec<State>> = config
        .upstreams
        .iter()
        .map(|u| {
            u.targets
                .iter()
                .map(|_| State {
                    next: Instant::now(),
                    ok: 0,
                    bad: 0,
                })
                .collect()
        })
        .collect();
    while !stop() {
        let now = Instant::now();
        for (u, up) in config.upstreams.iter().enumerate() {
            let Some(spec) = &up.health else { continue };
            for (t, addr) in up.targets.iter().enumerate() {
                let (Some(st), Some(h)) = (
                    state.get_mut(u).and_then(|v| v.get_mut(t)),
                    board.upstreams.get(u).and_then(|v| v.get(t)),
                ) else {
                    continue;
                };
                if now < st.next {
                    continue;
                }
                st.next = now + spec.interval;
                if probe(*addr, spec, up.tls_for(t).as_ref()) {
                    st.ok += 1;
                    st.bad = 0;
                    if st.ok >= spec.healthy && !h.active.load(Ordering::Relaxed) {
                        h.active.store(true, Ordering::Relaxed);
                        eprintln!("tollgate: upstream {} target {addr} is healthy", up.name);
                    }
                } else {
                    st.bad += 1;
                    st.ok = 0;
                    if st.bad >= spec.unhealthy && h.active.load(Ordering::Relaxed) {
                        h.active.store(false, Ordering::Relaxed);
                        eprintln!("tollgate: upstream {} target {addr} is unhealthy", up.name);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One check: a fresh connection (TLS for a TLS upstream, verified as requests are), `GET
/// path`, a 2xx or 3xx status line within the timeout.
pub fn probe(
    addr: SocketAddr,
    spec: &CheckSpec,
    tls: Option<&(Arc<rustls::ClientConfig>, ServerName<'static>)>,
) -> bool {
    let Ok(s) = TcpStream::connect_timeout(&addr, spec.timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(spec.timeout));
    let _ = s.set_write_timeout(Some(spec.timeout));
    let host = host_header(addr, tls.map(|(_, name)| name));
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tollgate-health\r\nConnection: close\r\n\r\n",
        spec.path
    );
    match tls {
        None => exchange(s, req.as_bytes()),
        Some((config, name)) => {
            // the handshake runs inside the first write/read, under the same timeouts
            let Ok(conn) = rustls::ClientConnection::new(config.clone(), name.clone()) else {
                return false;
            };
            exchange(rustls::StreamOwned::new(conn, s), req.as_bytes())
        }
    }
}

/// The `Host` of a check (RFC 9110 §7.2, RFC 9112 §3.2): for a TLS upstream, the server name
/// the handshake verifies (`tls.server_name`, or the target's host as written), since a
/// virtual-hosted origin routes by it and its certificate names it, with the port unless it
/// is https's default 443 (RFC 9110 §4.2.2); an IP server name as an address literal, IPv6 in
/// brackets (RFC 3986 §3.2.2). For a plain upstream, the address checked, `ip:port`, as before.
fn host_header(addr: SocketAddr, tls: Option<&ServerName<'static>>) -> String {
    let host = match tls {
        None => return addr.to_string(),
        Some(ServerName::DnsName(n)) => n.as_ref().to_string(),
        Some(ServerName::IpAddress(ip)) => match std::net::IpAddr::from(*ip) {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        },
        // rustls's ServerName is non-exhaustive: the address is what we know
        Some(_) => addr.ip().to_string(),
    };
    match addr.port() {
        443 => host,
        port => format!("{host}:{port}"),
    }
}

/// Sends the check request and reads enough of the status line to judge it.
fn exchange(mut s: impl Read + Write, req: &[u8]) -> bool {
    if s.write_all(req).and_then(|()| s.flush()).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match buf.get_mut(n..).map(|b| s.read(b)) {
            Some(Ok(k)) if k > 0 => n += k,
            _ => return false,
        }
    }
    let line = buf.get(..n).unwrap_or_default();
    line.starts_with(b"HTTP/1.") && matches!(line.get(9), Some(b'2' | b'3'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_host_is_the_tls_server_name_with_its_port() {
        let a: SocketAddr = "10.0.0.7:8443".parse().unwrap();
        let dns = ServerName::try_from("origin.internal").unwrap();
        assert_eq!(host_header(a, Some(&dns)), "origin.internal:8443");
        let a443: SocketAddr = "10.0.0.7:443".parse().unwrap();
        assert_eq!(host_header(a443, Some(&dns)), "origin.internal");
        let ip = ServerName::try_from("10.0.0.7").unwrap();
        assert_eq!(host_header(a, Some(&ip)), "10.0.0.7:8443");
        let v6 = ServerName::try_from("::1").unwrap();
        let a6: SocketAddr = "[::1]:9443".parse().unwrap();
        assert_eq!(host_header(a6, Some(&v6)), "[::1]:9443");
        // plain upstreams: the address checked, as before
        assert_eq!(host_header(a, None), "10.0.0.7:8443");
        assert_eq!(host_header(a6, None), "[::1]:9443");
    }

    #[test]
    fn tls_failures_are_logged_once_per_interval() {
        let h = TargetHealth::default();
        assert!(h.tls_log_due(5));
        assert!(!h.tls_log_due(5));
        assert!(!h.tls_log_due(5 + TLS_LOG_INTERVAL_MS - 1));
        assert!(h.tls_log_due(5 + TLS_LOG_INTERVAL_MS));
        assert!(!h.tls_log_due(6 + TLS_LOG_INTERVAL_MS));
        // the process clock may read 0 at its very start: that is a logged time too
        let z = TargetHealth::default();
        assert!(z.tls_log_due(0));
        assert!(!z.tls_log_due(1));
    }
}
