//! Upstream health on both drivers: active checks (once per process) take a failing target out
//! and bring it back, passive ejection after consecutive 5xx, and 503 when every target is down.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn route() -> &'static str {
    "[[route]]\nkey = \"ANY /api/{proxy+}\"\nupstream = \"u\"\n"
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

both_drivers! {
    fn active_checks_take_a_target_out_and_bring_it_back(d) {
        let sick = Arc::new(AtomicBool::new(true));
        let s2 = sick.clone();
        let a = Origin::start(|r| if r.target == "/health" { Reply::ok("up") } else { Reply::ok("a") });
        let b = Origin::start(move |r| {
            if r.target == "/health" && s2.load(Ordering::Relaxed) {
                Reply::Raw(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec())
            } else if r.target == "/health" {
                Reply::ok("up")
            } else {
                Reply::ok("b")
            }
        });
        let ups = upstream_toml("u", &[a.addr, b.addr],
            "health = { path = \"/health\", interval_ms = 50, timeout_ms = 500, healthy = 2, unhealthy = 2 }");
        let g = Gateway::start(d, 2, &(ups + route()));
        let b_health = || b.requests().iter().filter(|r| r.target == "/health").count();
        wait_until("two failed checks of b", || b_health() >= 3);
        let before = b.requests().iter().filter(|r| r.target != "/health").count();
        for i in 0..20 {
            assert_eq!(get(g.addr, &format!("/api/{i}")).text(), "a", "request {i} avoids the sick target");
        }
        assert_eq!(b.requests().iter().filter(|r| r.target != "/health").count(), before);
        // one checker for the whole process: checks arrive at the interval, not once per worker
        let n0 = b_health();
        std::thread::sleep(Duration::from_millis(500));
        let checks = b_health() - n0;
        assert!((3..=15).contains(&checks), "{checks} checks in 500 ms at a 50 ms interval");
        sick.store(false, Ordering::Relaxed);
        wait_until("b back in rotation", || (0..10).any(|i| get(g.addr, &format!("/api/r{i}")).text() == "b"));
    }

    fn every_target_down_is_503(d) {
        let a = Origin::start(|r| if r.target == "/health" {
            Reply::Raw(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_vec())
        } else {
            Reply::ok("a")
        });
        let ups = upstream_toml("u", &[a.addr],
            "health = { path = \"/health\", interval_ms = 30, timeout_ms = 500, unhealthy = 1 }");
        let g = Gateway::start(d, 1, &(ups + route()));
        wait_until("a marked down", || get(g.addr, "/api/x").status == 503);
        let r = get(g.addr, "/api/x");
        assert_eq!(r.text(), r#"{"message":"Service Unavailable"}"#);
    }

    fn consecutive_5xx_eject_a_target_for_every_worker(d) {
        let bad = Origin::start(|_| Reply::Raw(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nbad".to_vec()));
        let good = Origin::echo();
        let ups = upstream_toml("u", &[bad.addr, good.addr], "passive_failures = 2\npassive_cooldown_ms = 60000");
        let g = Gateway::start(d, 1, &(ups + route()));
        let mut c = Client::new(g.addr);
        for i in 0..30 {
            c.send(format!("GET /api/{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            c.read(false).unwrap();
        }
        assert_eq!(bad.requests().len(), 2, "ejected after two 5xx in a row");
        assert_eq!(good.requests().len(), 28);
    }
}
