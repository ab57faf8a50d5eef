//! Traffic management through real sockets with two workers, on both drivers: route, key and
//! gateway limits, 403s, exact quotas under concurrency, shadow mode, per-client limits, and
//! quota usage surviving a restart.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const ALICE: &str = "key-one-0123456789abcdef";
const BOB: &str = "key-two-0123456789abcdef";

fn keyed(path: &str, key: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: h\r\nx-api-key: {key}\r\n\r\n").into_bytes()
}

/// Hammers `path` from `threads` keep-alive connections for `secs`; returns (2xx, 429, elapsed).
/// The rate-accuracy tests measure admitted requests against rate·t + burst within 1 %: each
/// saturates both cores, so two running at once (their io_uring/epoll × plain/TLS variants
/// share this test binary) starve each other's clients and the gateway's timers. They take
/// this lock to run one at a time (a poisoned lock is fine: it guards no data).
static RATE_MEASUREMENT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_measurement_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    RATE_MEASUREMENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn hammer(addr: SocketAddr, path: &str, threads: usize, secs: f64) -> (u64, u64, f64) {
    let ok = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (ok, limited, stop) = (ok.clone(), limited.clone(), stop.clone());
            let req = format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes();
            std::thread::spawn(move || {
                let mut c = Client::new(addr);
                while !stop.load(Ordering::Relaxed) {
                    c.send(&req);
                    match c.read(false).map(|r| r.status) {
                        Some(200) => ok.fetch_add(1, Ordering::Relaxed),
                        Some(429) => limited.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected {other:?}"),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        h.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    (
        ok.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
        elapsed,
    )
}

fn plan_config(state_dir: Option<&str>) -> String {
    let state = state_dir.map_or(String::new(), |d| format!("state_dir = \"{d}\"\n"));
    format!(
        r#"{state}
[[route]]
key = "GET /limited"
mock = {{ status = 200, body = "ok" }}
throttle = {{ rate = 400, burst = 40 }}

[[route]]
key = "GET /keyed"
mock = {{ status = 200, body = "keyed" }}
api_key_required = true

[[route]]
key = "GET /quota"
mock = {{ status = 200, body = "q" }}
api_key_required = true

[[route]]
key = "GET /shadow"
mock = {{ status = 200, body = "s" }}
throttle = {{ rate = 1, burst = 1, enforce = false }}

[[route]]
key = "GET /per-client"
mock = {{ status = 200, body = "c" }}
throttle = {{ rate = 1, burst = 2, throttle_by = "header:x-client" }}

[[usage_plan]]
name = "gold"
throttle = {{ rate = 1, burst = 5 }}

[[usage_plan]]
name = "metered"
quota = {{ limit = 300, period = "day" }}

[[api_key]]
name = "alice"
value = "{ALICE}"
plan = "gold"

[[api_key]]
name = "bob"
value_sha256 = "{bob_hash}"
plan = "metered"

[[api_key]]
name = "carol"
value = "key-three-0123456789abc"
enabled = false
"#,
        bob_hash = sha256_hex(BOB)
    )
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

all_transports! {
    fn route_limit_admits_rate_times_t_plus_burst_within_one_percent(d) {
        let _one = one_measurement_at_a_time();
        let g = Gateway::start(d, 2, &plan_config(None));
        let (ok, limited, secs) = hammer(g.addr, "/limited", 6, 3.0);
        let expected = 400.0 * secs + 40.0;
        let err = (ok as f64 - expected) / expected;
        eprintln!("route limit: {ok} admitted, {limited} throttled in {secs:.3}s, expected {expected:.0} ({:+.2}%)", err * 100.0);
        assert!(limited > ok, "the load must exceed the limit for the test to mean anything");
        assert!(err.abs() <= 0.01, "admitted {ok}, expected {expected:.0} ({:+.2}%)", err * 100.0);
    }

    fn route_limit_holds_for_one_connection_and_for_reconnecting_clients(d) {
        let _one = one_measurement_at_a_time();
        let g = Gateway::start(d, 2, &plan_config(None));
        // all traffic on one connection, hence on one worker
        let (ok, _, secs) = hammer(g.addr, "/limited", 1, 2.0);
        let expected = 400.0 * secs + 40.0;
        let err = (ok as f64 - expected) / expected;
        eprintln!("one worker: {ok} admitted in {secs:.3}s, expected {expected:.0} ({:+.2}%)", err * 100.0);
        assert!(err.abs() <= 0.01, "one worker: admitted {ok}, expected {expected:.0}");
        // clients reconnecting every 20 requests: traffic keeps moving between the workers
        std::thread::sleep(Duration::from_millis(200)); // the bucket refills 80 of its 40: full
        let addr = g.addr;
        let ok = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (ok, stop) = (ok.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let mut c = Client::new(addr);
                        for _ in 0..20 {
                            if stop.load(Ordering::Relaxed) {
                                break; // end promptly: the window closes when `stop` is set
                            }
                            c.send(b"GET /limited HTTP/1.1\r\nHost: h\r\n\r\n");
                            if c.read(false).unwrap().status == 200 {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        for h in hs {
            h.join().unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let ok = ok.load(Ordering::Relaxed);
        let expected = 400.0 * secs + 40.0;
        let err = (ok as f64 - expected) / expected;
        eprintln!("moving: {ok} admitted in {secs:.3}s, expected {expected:.0} ({:+.2}%)", err * 100.0);
        assert!(err.abs() <= 0.01, "moving traffic: admitted {ok}, expected {expected:.0}");
    }

    fn key_plan_limit_gives_429_with_rate_limit_headers(d) {
        let g = Gateway::start(d, 2, &plan_config(None));
        let mut c = Client::new(g.addr);
        for i in 0..5 {
            c.send(&keyed("/keyed", ALICE));
            assert_eq!(c.read(false).unwrap().status, 200, "request {i} within the burst");
        }
        c.send(&keyed("/keyed", ALICE));
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 429);
        assert_eq!(r.text(), r#"{"message":"Too Many Requests"}"#);
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.header("ratelimit-policy"), Some("\"key\";q=5;w=5"));
        assert_eq!(r.header("ratelimit"), Some("\"key\";r=0;t=1"));
        // the connection stays usable after a 429
        c.send(b"GET /shadow HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().status, 200);
    }

    fn missing_unknown_or_disabled_key_is_403(d) {
        let g = Gateway::start(d, 2, &plan_config(None));
        let r = get(g.addr, "/keyed");
        assert_eq!((r.status, r.text().as_str()), (403, r#"{"message":"Forbidden"}"#));
        assert_eq!(roundtrip(g.addr, &keyed("/keyed", "key-unknown-0123456789")).status, 403);
        assert_eq!(roundtrip(g.addr, &keyed("/keyed", "key-three-0123456789abc")).status, 403);
        // a key stored only as its SHA-256 works
        assert_eq!(roundtrip(g.addr, &keyed("/keyed", BOB)).status, 200);
    }

    fn quota_is_exact_under_concurrency(d) {
        let g = Gateway::start(d, 2, &plan_config(None));
        let addr = g.addr;
        let ok = Arc::new(AtomicU64::new(0));
        let exceeded = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let (ok, exceeded) = (ok.clone(), exceeded.clone());
                std::thread::spawn(move || {
                    let mut c = Client::new(addr);
                    for _ in 0..60 {
                        c.send(&keyed("/quota", BOB));
                        let r = c.read(false).unwrap();
                        match r.status {
                            200 => ok.fetch_add(1, Ordering::Relaxed),
                            429 => {
                                assert_eq!(r.text(), r#"{"message":"Limit Exceeded"}"#);
                                exceeded.fetch_add(1, Ordering::Relaxed)
                            }
                            s => panic!("status {s}"),
                        };
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(ok.load(Ordering::Relaxed), 300, "exactly the quota");
        assert_eq!(exceeded.load(Ordering::Relaxed), 180);
    }

    fn shadow_mode_counts_but_never_rejects(d) {
        let g = Gateway::start(d, 2, &plan_config(None));
        let mut c = Client::new(g.addr);
        for _ in 0..20 {
            c.send(b"GET /shadow HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(c.read(false).unwrap().status, 200);
        }
        let t = g.handle().throttle();
        let shadow = t.route_total(3, |c| &c.shadow_throttled);
        assert!(shadow >= 18, "{shadow} shadow rejections counted");
        assert_eq!(t.route_total(3, |c| &c.throttled), 0);
    }

    fn per_client_limits_are_independent(d) {
        let g = Gateway::start(d, 2, &plan_config(None));
        let req = |who: &str| format!("GET /per-client HTTP/1.1\r\nHost: h\r\nx-client: {who}\r\n\r\n").into_bytes();
        let statuses = |who: &str| -> Vec<u16> {
            (0..3).map(|_| roundtrip(g.addr, &req(who)).status).collect()
        };
        // fresh connections land on either worker: the client's bucket is shared by both
        assert_eq!(statuses("a"), vec![200, 200, 429]);
        assert_eq!(statuses("b"), vec![200, 200, 429]);
    }

    fn gateway_default_limit_applies_to_every_route(d) {
        let text = server_toml(d, 2, "")
            + "[throttle]\nrate = 1\nburst = 3\n\n[[route]]\nkey = \"GET /a\"\nmock = {}\n\n[[route]]\nkey = \"GET /b\"\nmock = {}\n";
        let g = Gateway::from_toml(&text);
        let s: Vec<u16> = ["/a", "/b", "/a", "/b"].iter().map(|p| get(g.addr, p).status).collect();
        assert_eq!(s, vec![200, 200, 200, 429]);
        let r = get(g.addr, "/a");
        assert_eq!(r.header("ratelimit-policy"), Some("\"gateway\";q=3;w=3"));
    }

    fn quota_usage_survives_a_restart(d) {
        let dir = std::env::temp_dir().join(format!("tollgate-state-{}-{d}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let text = server_toml(d, 2, &plan_config(Some(dir.to_str().unwrap())));
        let g = Gateway::from_toml(&text);
        let mut c = Client::new(g.addr);
        for _ in 0..280 {
            c.send(&keyed("/quota", BOB));
            assert_eq!(c.read(false).unwrap().status, 200);
        }
        drop(c);
        g.stop(); // drains and writes the state
        let saved = std::fs::read_to_string(dir.join("usage.tsv")).unwrap();
        assert!(saved.lines().any(|l| l.starts_with("bob\tmetered\tday\t") && l.contains("\t280\t300\t")), "{saved}");
        let g = Gateway::from_toml(&text);
        let mut c = Client::new(g.addr);
        let mut ok = 0;
        for _ in 0..30 {
            c.send(&keyed("/quota", BOB));
            if c.read(false).unwrap().status == 200 {
                ok += 1;
            }
        }
        assert_eq!(ok, 20, "only the rest of the quota after the restart");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
