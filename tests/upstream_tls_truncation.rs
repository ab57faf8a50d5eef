//! A TLS origin's close-delimited response body ends only with close_notify (RFC 5246 §7.2.1,
//! RFC 8446 §6.1): a bare TCP close could be a truncation by an attacker, so it is an
//! "upstream body broken", never a complete body. Against the TLS recording origin of
//! `common::tls_origin`, on both drivers: the same response ended by close_notify and by a bare
//! TCP close, with a body (the client's chunked re-framing gets no last chunk, the connection
//! closes) and without one (a 502 before any byte); a Content-Length body carries its own end,
//! so a bare close after it is harmless.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::net::SocketAddr;

use common::tls_origin::*;
use common::*;

const ROUTE: &str = "[[route]]\nkey = \"ANY /api/{proxy+}\"\nupstream = \"u\"\n";

/// A gateway with upstream `u` over TLS to an origin that answers every request with `reply`
/// and then closes: with close_notify, or (`bare_close`) without it.
fn setup(d: &str, test: &str, reply: &'static str, bare_close: bool) -> (Gateway, TlsOrigin) {
    let dir = cert_dir(&format!("otls-trunc-{test}-{d}"));
    let pki = Pki::new("origin CA");
    let opts = TlsOptions {
        bare_close,
        ..Default::default()
    };
    let o = TlsOrigin::start(&pki.server(&["origin.internal"]), opts, move |_| {
        Reply::RawThenClose(reply.as_bytes().to_vec())
    });
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let tls = format!(
        "tls = {{ server_name = \"origin.internal\", ca = {:?} }}\n",
        ca.display().to_string()
    );
    let g = Gateway::start(d, 1, &(upstream_toml("u", &[o.addr], &tls) + ROUTE));
    (g, o)
}

/// Everything the gateway sends on one connection for one GET, up to its close.
fn raw_until_close(addr: SocketAddr) -> String {
    let mut s = connect(addr);
    std::io::Write::write_all(
        &mut s,
        b"GET /api/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

const CLOSE_DELIMITED: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nhello world";
const CLOSE_DELIMITED_EMPTY: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n";
const WITH_LENGTH: &str = "HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world";

both_drivers! {
    fn a_close_delimited_body_ended_by_close_notify_is_complete(d) {
        let (g, o) = setup(d, "notify", CLOSE_DELIMITED, false);
        // keep-alive: the re-framed body's proper end lets the client connection go on
        let mut c = Client::new(g.addr);
        for _ in 0..2 {
            c.send(b"GET /api/x HTTP/1.1\r\nHost: h\r\n\r\n");
            let r = c.read(false).expect("a whole response");
            assert_eq!(r.status, 200);
            assert_eq!(r.header("transfer-encoding"), Some("chunked"));
            assert_eq!(r.text(), "hello world");
        }
        assert_eq!(o.requests().len(), 2);
        let raw = raw_until_close(g.addr);
        assert!(raw.ends_with("\r\nb\r\nhello world\r\n0\r\n\r\n"), "{raw:?}");
    }

    fn a_close_delimited_body_ended_by_a_bare_tcp_close_is_broken(d) {
        let (g, o) = setup(d, "bare", CLOSE_DELIMITED, true);
        let raw = raw_until_close(g.addr);
        // the head and the data that came went out; the close without close_notify is not
        // the body's end, so the client gets no last chunk, only the connection's close
        assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw:?}");
        assert!(raw.contains("transfer-encoding: chunked\r\n"), "{raw:?}");
        assert!(raw.ends_with("\r\n\r\nb\r\nhello world\r\n"), "{raw:?}");
        assert!(!raw.contains("\r\n0\r\n\r\n"), "{raw:?}");
        // on a keep-alive connection, the client sees the connection end mid-body
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/y HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(c.read(false).is_none(), "no complete response");
        assert_eq!(o.requests().len(), 2);
    }

    fn an_empty_close_delimited_body_ended_by_a_bare_tcp_close_is_a_502(d) {
        let (g, _o) = setup(d, "bare-empty", CLOSE_DELIMITED_EMPTY, true);
        let r = get(g.addr, "/api/x");
        assert_eq!(r.status, 502, "{}", r.text());
        assert_eq!(r.text(), r#"{"message":"Bad Gateway"}"#);
        let (g, _o) = setup(d, "notify-empty", CLOSE_DELIMITED_EMPTY, false);
        let r = get(g.addr, "/api/x");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), "");
    }

    fn a_content_length_body_needs_no_close_notify(d) {
        let (g, _o) = setup(d, "length", WITH_LENGTH, true);
        let mut c = Client::new(g.addr);
        for _ in 0..2 {
            c.send(b"GET /api/x HTTP/1.1\r\nHost: h\r\n\r\n");
            let r = c.read(false).expect("a whole response");
            assert_eq!(r.status, 200);
            assert_eq!(r.text(), "hello world");
        }
    }
}
