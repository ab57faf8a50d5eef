//! Upstream failure handling on both drivers: dead targets, slow and vanishing origins, stale
//! pooled connections, balancing.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::*;

/// An address where nothing listens (bound then closed).
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn api_route() -> &'static str {
    "[[route]]\nkey = \"ANY /api/{proxy+}\"\nupstream = \"u\"\n"
}

all_transports! {
    fn refused_connect_is_502(d) {
        let g = Gateway::start(d, 1, &(upstream_toml("u", &[dead_addr()], "") + api_route()));
        let r = get(g.addr, "/api/x");
        assert_eq!(r.status, 502);
        assert_eq!(r.text(), r#"{"message":"Bad Gateway"}"#);
        // the client connection survives an upstream failure
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/x HTTP/1.1\r\nHost: h\r\n\r\nGET /api/y HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().status, 502);
        assert_eq!(c.read(false).unwrap().status, 502);
    }

    fn connect_failure_moves_to_next_target(d) {
        let o = Origin::echo();
        let ups = upstream_toml("u", &[dead_addr(), o.addr], "");
        let g = Gateway::start(d, 1, &(ups + api_route()));
        for i in 0..4 {
            let r = get(g.addr, &format!("/api/{i}"));
            assert_eq!(r.status, 200, "request {i}");
        }
        let r = roundtrip(g.addr, b"POST /api/p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(r.status, 200);
        assert_eq!(o.requests().len(), 5);
    }

    fn slow_origin_is_504(d) {
        let o = Origin::start(|_| Reply::After(Duration::from_millis(1500), Box::new(Reply::ok("late"))));
        let ups = upstream_toml("u", &[o.addr], "response_timeout_ms = 300");
        let g = Gateway::start(d, 1, &(ups + api_route()));
        let t = Instant::now();
        let r = get(g.addr, "/api/slow");
        assert_eq!(r.status, 504);
        assert_eq!(r.text(), r#"{"message":"Gateway Timeout"}"#);
        assert!(t.elapsed() < Duration::from_millis(1400), "answered at the timeout, not after the origin");
    }

    fn origin_closing_without_answer_is_502(d) {
        let o = Origin::start(|_| Reply::Close);
        let g = Gateway::start(d, 1, &(upstream_toml("u", &[o.addr], "") + api_route()));
        let r = get(g.addr, "/api/x");
        assert_eq!(r.status, 502);
        // a fresh connection was tried once more: the first was fresh too, so exactly one
        // attempt per request reaches the origin
        assert_eq!(o.requests().len(), 1);
    }

    fn garbage_from_origin_is_502(d) {
        let o = Origin::start(|_| Reply::RawThenClose(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec()));
        let g = Gateway::start(d, 1, &(upstream_toml("u", &[o.addr], "") + api_route()));
        assert_eq!(get(g.addr, "/api/x").status, 502);
        let o2 = Origin::start(|_| Reply::RawThenClose(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()));
        let g2 = Gateway::start(d, 1, &(upstream_toml("u", &[o2.addr], "") + api_route()));
        assert_eq!(get(g2.addr, "/api/x").status, 502);
    }

    fn truncated_origin_body_closes_client(d) {
        let o = Origin::start(|_| Reply::RawThenClose(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this".to_vec()));
        let g = Gateway::start(d, 1, &(upstream_toml("u", &[o.addr], "") + api_route()));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/x HTTP/1.1\r\nHost: h\r\n\r\n");
        // the head was already sent; the only honest signal is closing before the body ends
        assert!(c.read(false).is_none(), "a short body must not look complete");
    }

    fn stale_pooled_connection_is_retried_transparently(d) {
        // the origin answers, then closes its side while the connection sits in the pool
        let o = Origin::start(|_| Reply::RawThenClose(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()));
        let g = Gateway::start(d, 1, &(upstream_toml("u", &[o.addr], "") + api_route()));
        for i in 0..3 {
            let r = get(g.addr, &format!("/api/{i}"));
            assert_eq!(r.status, 200, "request {i}");
            std::thread::sleep(Duration::from_millis(30));
        }
        let r = roundtrip(g.addr, b"POST /api/p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(r.status, 200);
        assert_eq!(o.requests().len(), 4, "each request reached the origin exactly once");
    }

    fn round_robin_spreads_requests(d) {
        let a = Origin::echo();
        let b = Origin::echo();
        let g = Gateway::start(d, 1, &(upstream_toml("u", &[a.addr, b.addr], "") + api_route()));
        let mut c = Client::new(g.addr);
        for i in 0..10 {
            c.send(format!("GET /api/{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            assert_eq!(c.read(false).unwrap().status, 200);
        }
        assert_eq!(a.requests().len(), 5);
        assert_eq!(b.requests().len(), 5);
    }

    fn least_requests_uses_all_targets(d) {
        let a = Origin::echo();
        let b = Origin::echo();
        let ups = upstream_toml("u", &[a.addr, b.addr], "balance = \"least_requests\"");
        let g = Gateway::start(d, 1, &(ups + api_route()));
        for i in 0..40 {
            assert_eq!(get(g.addr, &format!("/api/{i}")).status, 200);
        }
        assert_eq!(a.requests().len() + b.requests().len(), 40);
        assert!(a.requests().len() > 3 && b.requests().len() > 3);
    }

    fn upstream_connections_are_pooled_per_worker(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 2, &(upstream_toml("u", &[o.addr], "") + api_route()));
        for i in 0..20 {
            let mut c = Client::new(g.addr);
            c.send(format!("GET /api/{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            assert_eq!(c.read(false).unwrap().status, 200);
        }
        // sequential requests: at most one origin connection per worker
        assert!(o.connections() <= 2, "{} origin connections", o.connections());
    }
}
