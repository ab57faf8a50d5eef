//! TLS transport hardening on the wire, both drivers: a TLS client that sends close_notify
//! right behind a request the gateway refuses cannot freeze the worker while its connection
//! lingers; a keep-alive TLS connection closed for idleness ends with close_notify.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::tls_client::*;
use common::*;

const MOCK: &str = "[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";

/// A one-worker gateway on `d` with a TLS listener for "api.example.com", `server` lines under
/// `[server]`-level tables, and the mock route.
fn gateway(d: &str, server: &str) -> (Gateway, CertDir, Ca) {
    let dir = CertDir::new("hardening");
    let ca = Ca::new(&dir, "ca", "Test CA");
    let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
    let (cert, key) = leaf.toml_pair();
    let tls = format!(
        "[tls]\nlisten = [\"127.0.0.1:0\"]\n[[tls.certificate]]\ncert = {cert}\nkey = {key}\n"
    );
    let g = Gateway::from_toml(&(server_toml(d, 1, server) + &tls + MOCK));
    (g, dir, ca)
}

fn tls_addr(g: &Gateway) -> SocketAddr {
    g.handle().tls_addrs()[0]
}

/// Upper bound for the second client's answer (liveness, not performance): far below the
/// linger limit, so a worker stuck in the first connection's linger cannot answer within it.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

both_drivers! {
    fn lingering_after_close_notify_does_not_freeze_the_worker(d) {
        // a linger far longer than the bound below: only a worker free to serve other
        // connections answers the second client in time
        let (g, _dir, ca) = gateway(d, "[server.timeouts]\nlinger_ms = 60000\n");
        let opts = ClientOpts::new(&ca, "api.example.com");
        let mut first = TlsClient::connect(tls_addr(&g), &opts).unwrap();
        // a head the gateway refuses with 400 (and then lingers), and close_notify, in one
        // flight; TCP stays open and the client stops reading
        first.tls.conn.writer().write_all(b"GARBAGE\r\n\r\n").unwrap();
        first.tls.conn.send_close_notify();
        let mut flight = Vec::new();
        while first.tls.conn.wants_write() {
            first.tls.conn.write_tls(&mut flight).unwrap();
        }
        first.tls.sock.write_all(&flight).unwrap();
        // let the worker reach the linger (the 400 is sent before it lingers)
        first.tls.sock.set_read_timeout(Some(TLS_LIVE)).unwrap();
        let mut one = [0u8; 1];
        assert_eq!(first.tls.sock.peek(&mut one).unwrap(), 1, "no response to the garbage");

        let started = Instant::now();
        let answered = std::thread::spawn({
            let addr = tls_addr(&g);
            let opts = ClientOpts::new(&ca, "api.example.com");
            move || {
                let mut second = TlsClient::connect(addr, &opts).unwrap();
                second.get("api.example.com", "/hello")
            }
        });
        while !answered.is_finished() && started.elapsed() < ANSWER_WITHIN {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(answered.is_finished(), "the worker froze while lingering");
        let r = answered.join().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hi");

        // the first client got its 400 and a clean end
        let r = first.read_response();
        assert_eq!(r.status, 400, "{}", r.head);
        let mut rest = Vec::new();
        let _ = first.tls.read_to_end(&mut rest);
        drop(first);
        drop(g);
    }

    fn idle_timeout_ends_a_tls_connection_with_close_notify(d) {
        let (g, _dir, ca) = gateway(d, "[server.timeouts]\nkeepalive_idle_ms = 200\n");
        let mut c =
            TlsClient::connect(tls_addr(&g), &ClientOpts::new(&ca, "api.example.com")).unwrap();
        let r = c.get("api.example.com", "/hello");
        assert_eq!(r.status, 200);
        // idle past keepalive_idle_ms: the gateway closes, telling the end (RFC 8446 §6.1)
        // rather than a bare TCP end, which rustls reports as an unexpected EOF
        let mut b = [0u8; 1];
        let end = c.tls.read(&mut b);
        assert!(matches!(end, Ok(0)), "no close_notify: {end:?}");
    }
}
