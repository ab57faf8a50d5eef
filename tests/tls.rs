//! TLS termination on the wire, both drivers: requests over TLS 1.2 and 1.3 to a mock and
//! through an origin, SNI certificate choice, refused handshakes (TLS 1.1, strict SNI, missing
//! client certificate), ALPN, mutual TLS in the access log, a certificate reload under an open
//! keep-alive connection, the handshake timeout, handshake metrics, `redirect_https` and HSTS.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::io::{Read, Write};
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

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

/// The value of the `tollgate_tls_handshakes_total` series with these labels (0 when absent).
fn handshakes(admin: SocketAddr, version: &str, result: &str) -> u64 {
    let series =
        format!("tollgate_tls_handshakes_total{{version=\"{version}\",result=\"{result}\"}} ");
    get(admin, "/metrics")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(&series)?.parse().ok())
        .unwrap_or(0)
}

/// Waits (up to a liveness bound) until the series reaches `want`, and returns what it shows.
fn wait_handshakes(admin: SocketAddr, version: &str, result: &str, want: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let n = handshakes(admin, version, result);
        if n >= want || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A minimal TLS 1.1-only ClientHello (RFC 4346 §7.4.1.2): client_version 0x0302, no
/// supported_versions or signature_algorithms extension.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x11; 32]); // random
    body.push(0); // session_id: empty
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two cipher suites
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let mut hs = vec![0x01, 0x00, 0x00, body.len() as u8]; // ClientHello, u24 length
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, 0x00, hs.len() as u8]; // handshake record
    rec.extend_from_slice(&hs);
    rec
}

/// Whether a TLS connection was refused: the handshake failed, or (TLS 1.3, where the client
/// finishes first) the first request gets no response because the server closed instead.
fn refused(addr: SocketAddr, opts: &ClientOpts<'_>) -> bool {
    let Ok(mut c) = TlsClient::connect(addr, opts) else {
        return true;
    };
    if c.tls
        .write_all(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        .is_err()
    {
        return true;
    }
    let mut b = [0u8; 1];
    !matches!(c.tls.read(&mut b), Ok(1))
}

/// The access log's lines, after the gateway stopped (everything is written by then).
fn log_after_stop(g: Gateway, path: &std::path::Path) -> String {
    g.stop();
    std::fs::read_to_string(path).unwrap()
}

/// A port nobody listens on right now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

    fn sni_picks_the_certificate(d) {
        let dir = CertDir::new("sni");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let one = ca.leaf(&dir, "one", &["one.example.org"]);
        let two = ca.leaf(&dir, "two", &["two.example.org"]);
        let wild = ca.leaf(&dir, "wild", &["*.example.com"]);
        let exact = ca.leaf(&dir, "exact", &["api.example.com"]);
        let g = gateway(d, &[&one, &two, &wild, &exact], "", MOCK);
        let presented = |opts: ClientOpts<'_>| {
            let mut c = TlsClient::connect(tls_addr(&g), &opts).unwrap();
            assert_eq!(c.get("x", "/hello").text(), "hi");
            c.peer_cert().unwrap()
        };
        assert_eq!(presented(ClientOpts::new(&ca, "one.example.org")), one.der);
        assert_eq!(presented(ClientOpts::new(&ca, "two.example.org")), two.der);
        // names compare case-insensitively (RFC 4343)
        assert_eq!(presented(ClientOpts::new(&ca, "TWO.Example.ORG")), two.der);
        assert_eq!(presented(ClientOpts::new(&ca, "www.example.com")), wild.der);
        // an exact name wins over a wildcard listed before it (RFC 9525 §6.3)
        assert_eq!(presented(ClientOpts::new(&ca, "api.example.com")), exact.der);
        // no SNI, or a name no certificate has: the first certificate
        assert_eq!(presented(ClientOpts::new(&ca, "one.example.org").no_sni()), one.der);
        let unknown = ClientOpts::new(&ca, "nobody.test").accept_any_certificate();
        assert_eq!(presented(unknown), one.der);
        // a wildcard covers one label only
        let deeper = ClientOpts::new(&ca, "a.b.example.com").accept_any_certificate();
        assert_eq!(presented(deeper), one.der);
    }

    fn sni_serves_rsa_to_an_rsa_only_client(d) {
        let dir = CertDir::new("sni-rsa");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let ecdsa = ca.leaf(&dir, "ecdsa", &["api.example.com"]);
        let rsa_pem = include_str!("data/tls/rsa2048.pkcs8.pem");
        let rsa = ca.leaf_with_key(&dir, "rsa", &["api.example.com"], rsa_pem);
        let g = gateway(d, &[&ecdsa, &rsa], "", MOCK);
        let presented = |opts: ClientOpts<'_>| {
            let mut c = TlsClient::connect(tls_addr(&g), &opts).unwrap();
            assert_eq!(c.get("api.example.com", "/hello").text(), "hi");
            c.peer_cert().unwrap()
        };
        // a modern client gets the first certificate for the name
        assert_eq!(presented(ClientOpts::new(&ca, "api.example.com")), ecdsa.der);
        let v12 = ClientOpts::new(&ca, "api.example.com").versions(Versions::Tls12);
        assert_eq!(presented(v12), ecdsa.der);
        // an RSA-only TLS 1.2 client gets the RSA one instead of a failed handshake
        assert_eq!(presented(ClientOpts::new(&ca, "api.example.com").rsa_only()), rsa.der);
        // as the default certificate too (no SNI)
        let no_sni = ClientOpts::new(&ca, "api.example.com").rsa_only().no_sni();
        assert_eq!(presented(no_sni), rsa.der);
    }

    fn strict_sni_refuses_unknown_names(d) {
        let dir = CertDir::new("strict");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let g = Gateway::from_toml(
            &(server_toml(d, 1, "") + ADMIN + &tls_toml(&[&leaf], "strict_sni = true") + MOCK),
        );
        let admin = g.handle().admin_addr().unwrap();
        let mut c = TlsClient::connect(tls_addr(&g), &ClientOpts::new(&ca, "api.example.com")).unwrap();
        assert_eq!(c.get("api.example.com", "/hello").text(), "hi");
        let unknown = ClientOpts::new(&ca, "nobody.test").accept_any_certificate();
        let e = TlsClient::connect(tls_addr(&g), &unknown).err().expect("refused");
        assert!(e.contains("UnrecognisedName") || e.contains("alert"), "{e}");
        let by_ip = ClientOpts::new(&ca, "api.example.com").no_sni();
        assert!(TlsClient::connect(tls_addr(&g), &by_ip).is_err());
        // the version was agreed before the certificate was looked for
        assert_eq!(
            wait_handshakes(admin, "TLSv1.3", "no_certificate", 2),
            2,
            "{}",
            get(admin, "/metrics").text()
        );
    }

    fn tls11_client_hello_refused(d) {
        let dir = CertDir::new("tls11");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let g = Gateway::from_toml(&(server_toml(d, 1, "") + ADMIN + &tls_toml(&[&leaf], "") + MOCK));
        let admin = g.handle().admin_addr().unwrap();
        let mut tcp = connect(tls_addr(&g));
        tcp.write_all(&tls11_client_hello()).unwrap();
        let mut got = Vec::new();
        let _ = tcp.read_to_end(&mut got); // the alert, then the close
        // a fatal alert record (RFC 8446 §6.2: content type 21, level 2), then end of stream
        assert_eq!(got.first(), Some(&0x15), "{got:02x?}");
        assert_eq!(got.get(5), Some(&0x02), "{got:02x?}");
        assert_eq!(got.len(), 7, "{got:02x?}");
        assert_eq!(wait_handshakes(admin, "unknown", "protocol_version", 1), 1);
        // min_version = "1.3": a TLS 1.2-only client is refused too
        drop(g);
        let g = gateway(d, &[&leaf], "min_version = \"1.3\"", MOCK);
        let only12 = ClientOpts::new(&ca, "api.example.com").versions(Versions::Tls12);
        assert!(TlsClient::connect(tls_addr(&g), &only12).is_err());
        let c = TlsClient::connect(tls_addr(&g), &ClientOpts::new(&ca, "api.example.com")).unwrap();
        assert_eq!(c.version(), "TLSv1.3");
    }

    fn alpn_prefers_h2_and_serves_http11_to_the_rest(d) {
        let dir = CertDir::new("alpn");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        // the default `tls.alpn` prefers HTTP/2 (RFC 9113 §3.2; the server chooses, RFC 7301
        // §3.2): the connection is then served as HTTP/2 (tests/http2.rs)
        let g = gateway(d, &[&leaf], "", MOCK);
        let offer = ClientOpts::new(&ca, "api.example.com").alpn(&["h2", "http/1.1"]);
        let c = TlsClient::connect(tls_addr(&g), &offer).unwrap();
        assert_eq!(c.alpn().as_deref(), Some(&b"h2"[..]));
        // a client offering only HTTP/1.1 gets it
        let h1 = ClientOpts::new(&ca, "api.example.com").alpn(&["http/1.1"]);
        let mut c = TlsClient::connect(tls_addr(&g), &h1).unwrap();
        assert_eq!(c.alpn().as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(c.get("api.example.com", "/hello").text(), "hi");
        // no ALPN at all: HTTP/1.1 all the same
        let none = ClientOpts::new(&ca, "api.example.com").alpn(&[]);
        let mut c = TlsClient::connect(tls_addr(&g), &none).unwrap();
        assert_eq!(c.alpn(), None);
        assert_eq!(c.get("api.example.com", "/hello").text(), "hi");
        // only protocols tollgate does not speak: refused (RFC 7301 §3.2)
        let spdy = ClientOpts::new(&ca, "api.example.com").alpn(&["spdy/3"]);
        let e = TlsClient::connect(tls_addr(&g), &spdy).err().expect("refused");
        assert!(e.contains("NoApplicationProtocol"), "{e}");
        // `alpn = ["http/1.1"]` turns HTTP/2 over TLS off
        drop(g);
        let g = gateway(d, &[&leaf], "alpn = [\"http/1.1\"]", MOCK);
        let mut c = TlsClient::connect(tls_addr(&g), &offer).unwrap();
        assert_eq!(c.alpn().as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(c.get("api.example.com", "/hello").text(), "hi");
        let h2 = ClientOpts::new(&ca, "api.example.com").alpn(&["h2"]);
        let e = TlsClient::connect(tls_addr(&g), &h2).err().expect("refused");
        assert!(e.contains("NoApplicationProtocol"), "{e}");
    }

    fn mutual_tls_required(d) {
        let dir = CertDir::new("mtls-req");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let clients = Ca::new(&dir, "clients", "Clients CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let alice = clients.client(&dir, "alice", "alice", "Example Corp");
        let stranger_ca = Ca::new(&dir, "stranger", "Stranger CA");
        let stranger = stranger_ca.client(&dir, "mallory", "mallory", "Nobody");
        let log = dir.file("access.log");
        let extra = format!(
            "client_ca = {:?}\nclient_auth = \"required\"",
            clients.pem.display().to_string()
        );
        let g = Gateway::from_toml(
            &(server_toml(d, 1, "")
                + ADMIN
                + &tls_toml(&[&leaf], &extra)
                + &format!("[access_log]\npath = {:?}\nformat = \"json\"\n", log.display().to_string())
                + MOCK),
        );
        let admin = g.handle().admin_addr().unwrap();
        for v in [Versions::Tls12, Versions::Tls13] {
            let bare = ClientOpts::new(&ca, "api.example.com").versions(v);
            assert!(refused(tls_addr(&g), &bare), "no certificate: refused ({v:?})");
            let wrong = ClientOpts::new(&ca, "api.example.com").versions(v).client_cert(&stranger);
            assert!(refused(tls_addr(&g), &wrong), "unknown issuer: refused ({v:?})");
        }
        assert_eq!(wait_handshakes(admin, "TLSv1.3", "client_certificate", 2), 2);
        assert_eq!(wait_handshakes(admin, "TLSv1.2", "client_certificate", 2), 2);
        let opts = ClientOpts::new(&ca, "api.example.com").client_cert(&alice);
        let mut c = TlsClient::connect(tls_addr(&g), &opts).unwrap();
        let r = c.roundtrip(b"GET /hello HTTP/1.1\r\nHost: api.example.com\r\nx-request-id: mtls-1\r\n\r\n");
        assert_eq!(r.text(), "hi");
        let text = log_after_stop(g, &log);
        let line = text.lines().find(|l| l.contains("\"requestId\":\"mtls-1\"")).expect(&text);
        assert!(line.contains("\"tlsVersion\":\"TLSv1.3\""), "{line}");
        assert!(line.contains("\"sni\":\"api.example.com\""), "{line}");
        assert!(
            line.contains("\"identity.clientCert.subjectDN\":\"CN=alice,O=Example Corp\""),
            "{line}"
        );
        assert!(
            line.contains("\"identity.clientCert.issuerDN\":\"CN=Clients CA,O=Tollgate Tests\""),
            "{line}"
        );
        // serial 0x0abcde
        assert!(line.contains("\"identity.clientCert.serialNumber\":\"703710\""), "{line}");
        assert!(line.contains("\"identity.clientCert.validity.notAfter\":\""), "{line}");
        assert!(line.contains(" GMT\""), "{line}");
        // refused handshakes are not requests: the access log has only the one line
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    fn mutual_tls_optional(d) {
        let dir = CertDir::new("mtls-opt");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let clients = Ca::new(&dir, "clients", "Clients CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let alice = clients.client(&dir, "alice", "alice", "Example Corp");
        let log = dir.file("access.log");
        let extra = format!("client_ca = {:?}", clients.pem.display().to_string());
        let format = "$context.requestId $context.tlsVersion sni=$context.sni dn=$context.identity.clientCert.subjectDN";
        let g = Gateway::from_toml(
            &(server_toml(d, 1, "")
                + &tls_toml(&[&leaf], &extra)
                + &format!("[access_log]\npath = {:?}\nformat = '{format}'\n", log.display().to_string())
                + MOCK),
        );
        let bare = ClientOpts::new(&ca, "api.example.com").versions(Versions::Tls12);
        let mut c = TlsClient::connect(tls_addr(&g), &bare).unwrap();
        let r = c.roundtrip(b"GET /hello HTTP/1.1\r\nHost: a\r\nx-request-id: bare\r\n\r\n");
        assert_eq!(r.text(), "hi");
        let with = ClientOpts::new(&ca, "api.example.com").client_cert(&alice);
        let mut c = TlsClient::connect(tls_addr(&g), &with).unwrap();
        let r = c.roundtrip(b"GET /hello HTTP/1.1\r\nHost: a\r\nx-request-id: alice\r\n\r\n");
        assert_eq!(r.text(), "hi");
        let r = roundtrip(g.addr, b"GET /hello HTTP/1.1\r\nHost: a\r\nx-request-id: plain\r\n\r\n");
        assert_eq!(r.text(), "hi");
        let text = log_after_stop(g, &log);
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "alice TLSv1.3 sni=api.example.com dn=CN=alice,O=Example Corp",
                "bare TLSv1.2 sni=api.example.com dn=-",
                "plain  sni= dn=-",
            ],
            "{text}"
        );
    }

    fn certificate_reload_keeps_open_connections(d) {
        let dir = CertDir::new("reload");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let first = ca.leaf(&dir, "api", &["api.example.com"]);
        let g = gateway(d, &[&first], "", MOCK);
        let opts = ClientOpts::new(&ca, "api.example.com");
        let mut old = TlsClient::connect(tls_addr(&g), &opts).unwrap();
        assert_eq!(old.get("a", "/hello").text(), "hi");
        // a new key and certificate under the same paths
        let next = ca.leaf(&dir, "next", &["api.example.com"]);
        std::fs::copy(&next.cert, &first.cert).unwrap();
        std::fs::copy(&next.key, &first.key).unwrap();
        g.reload().expect("reload with the new certificate");
        // the established connection goes on, on its handshake's certificate
        for _ in 0..3 {
            assert_eq!(old.get("a", "/hello").text(), "hi");
        }
        assert_eq!(old.peer_cert().unwrap(), first.der);
        // a new connection gets the new certificate
        let mut fresh = TlsClient::connect(tls_addr(&g), &opts).unwrap();
        assert_eq!(fresh.peer_cert().unwrap(), next.der);
        assert_ne!(next.der, first.der);
        assert_eq!(fresh.get("a", "/hello").text(), "hi");
        assert_eq!(old.get("a", "/hello").text(), "hi");
    }

    fn resumption_cannot_bypass_a_stricter_client_auth_after_reload(d) {
        let dir = CertDir::new("resume-mtls");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let clients = Ca::new(&dir, "clients", "Clients CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let alice = clients.client(&dir, "alice", "alice", "Example Corp");
        let port = free_port();
        let (cert, key) = leaf.toml_pair();
        let config = |tls_extra: &str| {
            format!(
                "{}[tls]\nlisten = [\"127.0.0.1:{port}\"]\nclient_ca = {:?}\n{tls_extra}\n\
                 [[tls.certificate]]\ncert = {cert}\nkey = {key}\n{MOCK}",
                server_toml(d, 1, ""),
                clients.pem.display().to_string()
            )
        };
        let g = Gateway::from_toml(&config("client_auth = \"optional\""));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        for v in [Versions::Tls13, Versions::Tls12] {
            // one client config for every connection: it keeps (and offers) its tickets
            let bare = ClientOpts::new(&ca, "api.example.com").versions(v).config();
            let connect = || TlsClient::connect_config(addr, bare.clone(), "api.example.com");
            // a ticket while a client certificate is optional (read a response: TLS 1.3
            // tickets come after the handshake)
            let mut c = connect().unwrap();
            assert!(!c.resumed());
            assert_eq!(c.get("a", "/hello").text(), "hi");
            let mut c = connect().unwrap();
            assert!(c.resumed(), "{v:?}: the ticket resumes");
            assert_eq!(c.get("a", "/hello").text(), "hi");
            // a reload leaving the client policy alone keeps tickets valid
            g.write_config(&config("client_auth = \"optional\"\nhsts = \"max-age=60\""));
            g.reload().expect("reload, same client policy");
            let mut c = connect().unwrap();
            assert!(c.resumed(), "{v:?}: still resumes after an unrelated reload");
            assert_eq!(c.get("a", "/hello").text(), "hi");
            // now a certificate is required: the ticket must not let the bare client in
            g.write_config(&config("client_auth = \"required\""));
            g.reload().expect("reload, client_auth required");
            let refused = match connect() {
                Err(_) => true,
                // TLS 1.3: the client finishes first; the server refuses by closing
                Ok(mut c) => {
                    let sent = c.tls.write_all(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
                    let mut b = [0u8; 1];
                    sent.is_err() || !matches!(c.tls.read(&mut b), Ok(1))
                }
            };
            assert!(refused, "{v:?}: resumed past client_auth = required");
            let with = ClientOpts::new(&ca, "api.example.com").versions(v).client_cert(&alice);
            let mut c = TlsClient::connect(addr, &with).unwrap();
            assert_eq!(c.get("a", "/hello").text(), "hi");
            // back to optional for the next version's round
            g.write_config(&config("client_auth = \"optional\""));
            g.reload().expect("reload, client_auth optional");
        }
    }

    fn handshake_timeout_closes_a_silent_client(d) {
        let dir = CertDir::new("silent");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let g = Gateway::from_toml(
            &(server_toml(d, 1, "")
                + ADMIN
                + &tls_toml(&[&leaf], "handshake_timeout_ms = 200")
                + MOCK),
        );
        let admin = g.handle().admin_addr().unwrap();
        let mut silent = connect(tls_addr(&g));
        // a partial ClientHello: the handshake started, the rest never comes
        silent.write_all(&tls11_client_hello()[..3]).unwrap();
        let mut b = [0u8; 64];
        let n = silent.read(&mut b); // closed by the server (within the 10 s read timeout)
        assert!(matches!(n, Ok(0)) || n.is_err(), "{n:?}");
        assert_eq!(wait_handshakes(admin, "unknown", "timeout", 1), 1);
        // a client that connects and leaves at once
        drop(connect(tls_addr(&g)));
        assert_eq!(wait_handshakes(admin, "unknown", "peer_closed", 1), 1);
        // the slot of a refused handshake is given back: the worker's connection count drops
        let metrics = get(admin, "/metrics").text();
        let active = metrics
            .lines()
            .find(|l| l.starts_with("tollgate_worker_active_connections{"))
            .unwrap();
        assert!(active.ends_with(" 0"), "{active}");
        // and TLS clients are still served
        let mut c = TlsClient::connect(tls_addr(&g), &ClientOpts::new(&ca, "api.example.com")).unwrap();
        assert_eq!(c.get("a", "/hello").text(), "hi");
    }

    fn a_stalled_handshake_does_not_hold_up_accepting(d) {
        let dir = CertDir::new("stalled");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        // one worker, and a handshake limit longer than the test client's 10 s read timeout:
        // a handshake run by the accept loop would keep the next client waiting past it
        let g = gateway(d, &[&leaf], "handshake_timeout_ms = 60000", MOCK);
        let mut stalled = Vec::new();
        for _ in 0..3 {
            let mut s = connect(tls_addr(&g));
            s.write_all(&tls11_client_hello()[..3]).unwrap();
            stalled.push(s);
        }
        let opts = ClientOpts::new(&ca, "api.example.com");
        let mut c = TlsClient::connect(tls_addr(&g), &opts).unwrap();
        assert_eq!(c.get("a", "/hello").text(), "hi");
        assert_eq!(get(g.addr, "/hello").text(), "hi");
        drop(stalled);
    }

    fn handshake_metrics_count_versions(d) {
        let dir = CertDir::new("metrics");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let g = Gateway::from_toml(&(server_toml(d, 2, "") + ADMIN + &tls_toml(&[&leaf], "") + MOCK));
        let admin = g.handle().admin_addr().unwrap();
        let status = get(admin, "/status").text();
        assert!(status.contains("\"tls_listen\":[\"127.0.0.1:0\"]"), "{status}");
        assert!(get(admin, "/metrics").text().contains("# TYPE tollgate_tls_handshakes_total counter"));
        assert_eq!(handshakes(admin, "TLSv1.3", "ok"), 0);
        for (v, n) in [(Versions::Tls12, 2), (Versions::Tls13, 3)] {
            for _ in 0..n {
                let opts = ClientOpts::new(&ca, "api.example.com").versions(v);
                let mut c = TlsClient::connect(tls_addr(&g), &opts).unwrap();
                assert_eq!(c.get("a", "/hello").text(), "hi");
            }
        }
        // an untrusting client refuses the server: the server sees the client's alert
        let other = Ca::new(&dir, "other", "Other CA");
        assert!(TlsClient::connect(tls_addr(&g), &ClientOpts::new(&other, "api.example.com")).is_err());
        // summed over both workers
        assert_eq!(wait_handshakes(admin, "TLSv1.2", "ok", 2), 2);
        assert_eq!(wait_handshakes(admin, "TLSv1.3", "ok", 3), 3);
        // the client's alert reaches its worker after the client gave up: wait for it
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let failed = loop {
            let failed = get(admin, "/metrics")
                .text()
                .lines()
                .filter(|l| {
                    l.starts_with("tollgate_tls_handshakes_total") && !l.contains("result=\"ok\"")
                })
                .map(str::to_string)
                .collect::<Vec<_>>();
            if !failed.is_empty() || std::time::Instant::now() > deadline {
                break failed;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].contains("result=\"error\""), "{failed:?}");
        assert!(failed[0].ends_with(" 1"), "{failed:?}");
    }

    fn redirect_https_answers_plain_requests_with_308(d) {
        let dir = CertDir::new("redirect");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (cert, key) = leaf.toml_pair();
        let g = Gateway::from_toml(&format!(
            "{}[tls]\nlisten = [\"127.0.0.1:{port}\"]\nhsts = \"max-age=63072000\"\n\
             [[tls.certificate]]\ncert = {cert}\nkey = {key}\n{MOCK}",
            server_toml(d, 1, "redirect_https = true")
        ));
        let r = roundtrip(
            g.addr,
            b"GET /hello/a%20b?x=1&y=2 HTTP/1.1\r\nHost: api.example.com:8080\r\n\r\n",
        );
        assert_eq!(r.status, 308, "{}", r.head);
        assert!(r.head.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"), "{}", r.head);
        assert_eq!(
            r.header("location"),
            Some(format!("https://api.example.com:{port}/hello/a%20b?x=1&y=2").as_str())
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.text().starts_with("{\"message\":\""), "{}", r.text());
        // its Location comes from the request's Host: never stored by a shared cache
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("strict-transport-security"), None, "not over plain HTTP");
        // any method and path, routed or not; the connection stays usable
        let mut c = Client::new(g.addr);
        c.send(b"POST /nowhere HTTP/1.1\r\nHost: api.example.com\r\ncontent-length: 3\r\n\r\nabc");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 308);
        assert_eq!(
            r.header("location"),
            Some(format!("https://api.example.com:{port}/nowhere").as_str())
        );
        c.send(b"HEAD /hello HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
        let r = c.read(true).unwrap();
        assert_eq!(r.status, 308);
        assert_eq!(r.header("location"), Some(format!("https://[::1]:{port}/hello").as_str()));
        // over TLS the request is served
        let mut t = TlsClient::connect(tls_addr(&g), &ClientOpts::new(&ca, "api.example.com")).unwrap();
        let r = t.get("api.example.com", "/hello");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "hi");
        assert_eq!(r.header("strict-transport-security"), Some("max-age=63072000"));
    }

    fn hsts_over_tls_only(d) {
        let dir = CertDir::new("hsts");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let o = Origin::start(|r| {
            if r.target == "/own" {
                Reply::Raw(b"HTTP/1.1 200 OK\r\nstrict-transport-security: max-age=5\r\ncontent-length: 3\r\n\r\nown".to_vec())
            } else {
                Reply::ok("up")
            }
        });
        let rest = upstream_toml("o", &[o.addr], "")
            + "[[route]]\nkey = \"GET /up\"\nupstream = \"o\"\n[[route]]\nkey = \"GET /own\"\nupstream = \"o\"\n"
            + MOCK;
        let hsts = "max-age=31536000; includeSubDomains";
        let g = gateway(d, &[&leaf], &format!("hsts = \"{hsts}\""), &rest);
        let mut t = TlsClient::connect(tls_addr(&g), &ClientOpts::new(&ca, "api.example.com")).unwrap();
        for path in ["/hello", "/up", "/missing"] {
            let r = t.get("a", path);
            assert_eq!(r.header("strict-transport-security"), Some(hsts), "{path}: {}", r.head);
            let p = get(g.addr, path);
            assert_eq!(p.header("strict-transport-security"), None, "{path}: {}", p.head);
        }
        // the origin's own value is kept, not doubled
        let r = t.get("a", "/own");
        assert_eq!(r.text(), "own");
        let values: Vec<_> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("strict-transport-security"))
            .collect();
        assert_eq!(values.len(), 1, "{}", r.head);
        assert_eq!(values[0].1, "max-age=5");
    }

    fn reload_adds_and_removes_tls_listeners(d) {
        let dir = CertDir::new("listeners");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let plain = server_toml(d, 2, "") + MOCK;
        let g = Gateway::from_toml(&plain);
        assert!(g.handle().tls_addrs().is_empty());
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let (cert, key) = leaf.toml_pair();
        let with_tls = format!(
            "{plain}[tls]\nlisten = [\"{addr}\"]\n[[tls.certificate]]\ncert = {cert}\nkey = {key}\n"
        );
        g.write_config(&with_tls);
        let report = g.reload().expect("reload adding a TLS listener");
        assert!(report.changes.summary().contains("tls"), "{}", report.changes.summary());
        let opts = ClientOpts::new(&ca, "api.example.com");
        for _ in 0..4 {
            // both workers accept on it (the kernel spreads connections over their sockets)
            let mut c = TlsClient::connect(addr, &opts).unwrap();
            assert_eq!(c.get("a", "/hello").text(), "hi");
        }
        assert_eq!(get(g.addr, "/hello").text(), "hi");
        let mut open = TlsClient::connect(addr, &opts).unwrap();
        assert_eq!(open.get("a", "/hello").text(), "hi");
        g.write_config(&plain);
        let report = g.reload().expect("reload removing it");
        assert!(report.changes.summary().contains("tls"), "{}", report.changes.summary());
        // the listener is gone; the connection it accepted answers its next request, then closes
        assert!(std::net::TcpStream::connect(addr).is_err(), "nobody listens on {addr}");
        let r = open.get("a", "/hello");
        assert_eq!(r.text(), "hi");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(open.closed_by_peer());
        assert_eq!(get(g.addr, "/hello").text(), "hi");
    }
}
