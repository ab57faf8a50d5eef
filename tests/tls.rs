//! TLS termination on the wire, both drivers: requests over TLS 1.2 and 1.3 to a mock and
//! through an origin, SNI certificate choice, refused handshakes (TLS 1.1, strict SNI, missing
//! client certificate), ALPN, mutual TLS in the access log, a certificate reload under an open
//! keep-alive connection, the handshake timeout, handshake metrics, `redirect_https` and HSTS.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::SocketAddr;

use common::tls_client::*;
use common::*;

const MOCK: &str = "[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";

/// `[tls]` on a port-0 listener with `certs` in order and `extra` lines.
fn tls_toml(certs: &[&Issued], extra: &str) -> String {
    let mut s = format!("[tls]\nlisten = [\"127.0.0.1:0\"]\n{extra}\n");
    for c in certs {
        let (cert, key) = c.toml_pair();
        s += &format!("[[tls.certificate]]\ncert = {cert}\nkey = {key}\n");
    }
    s
}

/// A gateway with one worker on `d`, `[tls]` as [`tls_toml`] and `rest`.
fn gateway(d: &str, certs: &[&Issued], extra: &str, rest: &str) -> Gateway {
    Gateway::from_toml(&(server_toml(d, 1, "") + &tls_toml(certs, extra) + rest))
}

fn tls_addr(g: &Gateway) -> SocketAddr {
    g.handle().tls_addrs()[0]
}

both_drivers! {
    fn mock_over_tls12_and_tls13(d) {
        let dir = CertDir::new("mock");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let g = gateway(d, &[&leaf], "", MOCK);
        for v in [Versions::Tls12, Versions::Tls13] {
            let mut c =
                TlsClient::connect(tls_addr(&g), &ClientOpts::new(&ca, "api.example.com").versions(v))
                    .unwrap();
            assert_eq!(c.version(), if v == Versions::Tls12 { "TLSv1.2" } else { "TLSv1.3" });
            for _ in 0..2 {
                let r = c.get("api.example.com", "/hello");
                assert_eq!(r.status, 200, "{}", r.head);
                assert_eq!(r.text(), "hi");
            }
        }
        // the plain listener serves plain HTTP beside it
        assert_eq!(get(g.addr, "/hello").text(), "hi");
    }

    fn origin_sees_x_forwarded_proto_https(d) {
        let dir = CertDir::new("origin");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let o = Origin::echo();
        let rest = upstream_toml("o", &[o.addr], "")
            + "[[route]]\nkey = \"GET /up\"\nupstream = \"o\"\n";
        let g = gateway(d, &[&leaf], "", &rest);
        for v in [Versions::Tls12, Versions::Tls13] {
            let mut c =
                TlsClient::connect(tls_addr(&g), &ClientOpts::new(&ca, "api.example.com").versions(v))
                    .unwrap();
            let r = c.get("api.example.com", "/up?q=1");
            assert_eq!(r.status, 200, "{}", r.head);
            assert_eq!(r.text(), "GET /up?q=1");
        }
        assert_eq!(get(g.addr, "/up").status, 200);
        let seen = o.requests();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].header("x-forwarded-proto"), Some("https"), "{}", seen[0].head_text());
        assert_eq!(seen[1].header("x-forwarded-proto"), Some("https"));
        assert_eq!(seen[2].header("x-forwarded-proto"), Some("http"));
    }
}
