//! TLS to origins on both drivers, against the TLS recording origin of `common::tls_origin`:
//! verification with `ca` and `server_name` (and against an IP SAN without `server_name`), pool
//! reuse counted in origin connections and handshakes, a wrong CA answered 502 with its log line
//! and access-log error, `verify = false`, pooled connections the origin closed (close_notify)
//! or wrote stray bytes on while idle not reused, session tickets and a KeyUpdate not preventing
//! reuse, client certificates, TLS 1.2 origins, active health checks over TLS, and a reload that
//! changes the CA dropping the old pooled connections.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tls_origin::*;
use common::*;

const ROUTE: &str = "[[route]]\nkey = \"ANY /api/{proxy+}\"\nupstream = \"u\"\n";
const BAD_GATEWAY: &str = r#"{"message":"Bad Gateway"}"#;

/// An upstream `u` over TLS to `addrs` with these `tls = { ... }` contents.
fn tls_upstream(addrs: &[SocketAddr], tls: &str, extra: &str) -> String {
    upstream_toml("u", addrs, &format!("tls = {{ {tls} }}\n{extra}"))
}

/// Writes `pki`'s CA certificate to `dir/STEM.pem`; the path as a TOML string.
fn write_ca(pki: &Pki, dir: &Path, stem: &str) -> String {
    let p = dir.join(format!("{stem}.pem"));
    std::fs::write(&p, pki.ca_pem()).unwrap();
    format!("{:?}", p.display().to_string())
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `n` GETs on one keep-alive client connection, each asserted to be the origin's echo.
fn keep_alive_gets(addr: SocketAddr, paths: &[&str]) {
    let mut c = Client::new(addr);
    for p in paths {
        c.send(format!("GET /api/{p} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        let r = c.read(false).expect("a response");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), format!("GET /api/{p}"));
    }
}

both_drivers! {
    fn ca_and_server_name_verify_and_the_pool_reuses_one_connection(d) {
        let dir = cert_dir(&format!("otls-reuse-{d}"));
        let pki = Pki::new("origin CA");
        let o = TlsOrigin::echo(&pki.server(&["origin.internal"]), TlsOptions::default());
        let ca = write_ca(&pki, &dir, "ca");
        let ups = tls_upstream(&[o.addr], &format!("server_name = \"origin.internal\", ca = {ca}"), "");
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        keep_alive_gets(g.addr, &["a", "b", "c", "d", "e"]);
        // five sequential requests from separate client connections reuse it too
        for i in 0..5 {
            assert_eq!(get(g.addr, &format!("/api/n{i}")).text(), format!("GET /api/n{i}"));
        }
        assert_eq!(o.requests().len(), 10);
        assert_eq!(o.connections(), 1, "one TCP connection to the origin");
        assert_eq!(o.handshakes(), 1, "one TLS handshake");
        assert!(o.requests().iter().all(|r| r.conn == 0));
        assert_eq!(o.requests()[0].header("host"), Some("h"));
    }

    fn a_wrong_ca_is_502_and_no_request_reaches_the_origin(d) {
        let dir = cert_dir(&format!("otls-wrongca-{d}"));
        let (pki, other) = (Pki::new("origin CA"), Pki::new("another CA"));
        let o = TlsOrigin::echo(&pki.server(&["origin.internal"]), TlsOptions::default());
        let ca = write_ca(&other, &dir, "other-ca");
        let log = dir.join("access.log");
        let text = server_toml(d, 1, "")
            + &format!("[access_log]\npath = \"{}\"\nformat = \"json\"\n", log.display())
            + &tls_upstream(&[o.addr], &format!("server_name = \"origin.internal\", ca = {ca}"), "")
            + ROUTE;
        let g = Gateway::from_toml(&text);
        for _ in 0..3 {
            let r = get(g.addr, "/api/x");
            assert_eq!(r.status, 502);
            assert_eq!(r.text(), BAD_GATEWAY);
        }
        assert!(o.requests().is_empty());
        assert_eq!(o.handshakes(), 0);
        g.stop();
        let log = std::fs::read_to_string(&log).unwrap();
        assert_eq!(log.lines().count(), 3, "{log}");
        assert!(
            log.lines().all(|l| l.contains(
                "\"errorMessage\":\"upstream TLS handshake failed: origin certificate refused\""
            )),
            "{log}"
        );
    }

    fn a_failed_handshake_is_logged_once_naming_upstream_target_and_reason(d) {
        let dir = cert_dir(&format!("otls-logline-{d}"));
        let (pki, other) = (Pki::new("origin CA"), Pki::new("another CA"));
        let o = TlsOrigin::echo(&pki.server(&["origin.internal"]), TlsOptions::default());
        let ca = write_ca(&other, &dir, "other-ca");
        let text = server_toml(d, 1, "")
            + &tls_upstream(&[o.addr], &format!("server_name = \"origin.internal\", ca = {ca}"), "")
            + ROUTE;
        let path = dir.join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("-c")
            .arg(&path)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        let addr: SocketAddr = line
            .rsplit("listening on ")
            .next()
            .and_then(|s| s.trim().split(", ").next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected startup line: {line}"));
        // a burst of failures: one line per second at most
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(get(addr, "/api/x").status, 502);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in err.lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(10)).expect("a log line");
        assert!(first.starts_with(&format!("tollgate: upstream u target {} (server name origin.internal): ", o.addr)), "{first}");
        assert!(first.contains("server certificate refused"), "{first}");
        assert!(first.contains("UnknownIssuer"), "{first}");
        let mut more = 0;
        while rx.recv_timeout(Duration::from_millis(300)).is_ok() {
            more += 1;
        }
        let seconds = t0.elapsed().as_secs();
        assert!(more <= seconds, "{} lines for 5 failures in {seconds} s", more + 1);
        let _ = child.kill();
        let _ = child.wait();
    }

    fn failed_handshakes_count_toward_passive_ejection(d) {
        let dir = cert_dir(&format!("otls-passive-{d}"));
        let (pki, other) = (Pki::new("origin CA"), Pki::new("another CA"));
        let good = TlsOrigin::echo(&pki.server(&["origin.internal"]), TlsOptions::default());
        let bad = TlsOrigin::echo(&other.server(&["origin.internal"]), TlsOptions::default());
        let ca = write_ca(&pki, &dir, "ca");
        let ups = tls_upstream(
            &[bad.addr, good.addr],
            &format!("server_name = \"origin.internal\", ca = {ca}"),
            "passive_failures = 2\npassive_cooldown_ms = 60000",
        );
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        for i in 0..20 {
            // a failed handshake moves on to the next target: the client never sees it
            assert_eq!(get(g.addr, &format!("/api/{i}")).text(), format!("GET /api/{i}"));
        }
        // round robin would have tried the bad target ten times; two failures eject it
        assert_eq!(bad.connections(), 2);
        assert_eq!(bad.handshakes(), 0);
    }

    fn a_handshake_is_bounded_by_the_connect_timeout(d) {
        // accepts TCP connections and never answers a ClientHello
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let held = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while let Ok((s, _)) = silent.accept() {
                conns.push(s);
                if conns.len() == 1 {
                    std::thread::sleep(Duration::from_secs(3));
                    return;
                }
            }
        });
        let ups = tls_upstream(
            &[addr],
            "server_name = \"origin.internal\", verify = false",
            "connect_timeout_ms = 200\nresponse_timeout_ms = 60000",
        );
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        let t = Instant::now();
        let r = get(g.addr, "/api/x");
        assert_eq!(r.status, 504);
        assert_eq!(r.text(), r#"{"message":"Gateway Timeout"}"#);
        // liveness: well before the silent origin gives up on its connection
        assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
        drop(g);
        let _ = held.join();
    }

    fn verify_false_accepts_an_unknown_certificate(d) {
        let pki = Pki::new("unknown CA");
        let o = TlsOrigin::echo(&pki.server(&["somewhere.else"]), TlsOptions::default());
        let ups = tls_upstream(&[o.addr], "server_name = \"origin.internal\", verify = false", "");
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        keep_alive_gets(g.addr, &["a", "b"]);
        assert_eq!(o.handshakes(), 1);
    }

    fn an_origin_that_sent_close_notify_while_idle_is_not_reused(d) {
        let dir = cert_dir(&format!("otls-notify-{d}"));
        let pki = Pki::new("origin CA");
        let opts = TlsOptions { idle: Some((Duration::from_millis(100), IdleAction::CloseNotify)), ..Default::default() };
        let o = TlsOrigin::echo(&pki.server(&["origin.internal"]), opts);
        let ca = write_ca(&pki, &dir, "ca");
        let ups = tls_upstream(&[o.addr], &format!("server_name = \"origin.internal\", ca = {ca}"), "");
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/one HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "GET /api/one");
        wait_until("close_notify sent", || o.idle_actions() == 1);
        // POST: not idempotent, so no retry could hide a reused dead connection
        c.send(b"POST /api/two HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), "POST /api/two");
        assert_eq!(o.handshakes(), 2, "a fresh connection for the second request");
        assert_eq!(o.requests()[1].conn, 1);
    }

    fn an_origin_that_sent_stray_bytes_while_idle_is_not_reused(d) {
        let dir = cert_dir(&format!("otls-stray-{d}"));
        let pki = Pki::new("origin CA");
        let stray = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstray".to_vec();
        let opts = TlsOptions { idle: Some((Duration::from_millis(100), IdleAction::Stray(stray))), ..Default::default() };
        let o = TlsOrigin::echo(&pki.server(&["origin.internal"]), opts);
        let ca = write_ca(&pki, &dir, "ca");
        let ups = tls_upstream(&[o.addr], &format!("server_name = \"origin.internal\", ca = {ca}"), "");
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/one HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "GET /api/one");
        wait_until("stray bytes sent", || o.idle_actions() == 1);
        c.send(b"POST /api/two HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
        let r = c.read(false).unwrap();
        assert_eq!(r.text(), "POST /api/two", "the stray response is never taken for an answer");
        assert_eq!(o.handshakes(), 2);
        assert_eq!(o.requests().len(), 2);
    }

    fn session_tickets_and_a_key_update_do_not_prevent_reuse(d) {
        let dir = cert_dir(&format!("otls-tickets-{d}"));
        let pki = Pki::new("origin CA");
        let opts = TlsOptions {
            tickets: Some(4),
            idle: Some((Duration::from_millis(100), IdleAction::KeyUpdate)),
            ..Default::default()
        };
        let o = TlsOrigin::echo(&pki.server(&["origin.internal"]), opts);
        let ca = write_ca(&pki, &dir, "ca");
        let ups = tls_upstream(&[o.addr], &format!("server_name = \"origin.internal\", ca = {ca}"), "");
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        keep_alive_gets(g.addr, &["a"]);
        wait_until("key update sent", || o.idle_actions() == 1);
        keep_alive_gets(g.addr, &["b", "c"]);
        assert_eq!(o.versions(), vec![rustls::ProtocolVersion::TLSv1_3]);
        assert_eq!(o.handshakes(), 1, "the pooled TLS 1.3 connection was reused");
        assert_eq!(o.connections(), 1);
    }

    fn an_ip_target_without_server_name_verifies_against_an_ip_san(d) {
        let dir = cert_dir(&format!("otls-ip-{d}"));
        let pki = Pki::new("origin CA");
        let good = TlsOrigin::echo(&pki.server(&["127.0.0.1"]), TlsOptions::default());
        let named = TlsOrigin::echo(&pki.server(&["localhost"]), TlsOptions::default());
        let ca = write_ca(&pki, &dir, "ca");
        let ups = tls_upstream(&[good.addr], &format!("ca = {ca}"), "");
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        keep_alive_gets(g.addr, &["a", "b"]);
        assert_eq!(good.handshakes(), 1);
        drop(g);
        // a certificate without the IP address among its SANs does not verify
        let ups = tls_upstream(&[named.addr], &format!("ca = {ca}"), "");
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        assert_eq!(get(g.addr, "/api/a").status, 502);
        assert_eq!(named.handshakes(), 0);
    }

    fn a_client_certificate_is_presented_when_configured(d) {
        let dir = cert_dir(&format!("otls-mtls-{d}"));
        let (pki, clients) = (Pki::new("origin CA"), Pki::new("client CA"));
        let opts = TlsOptions { client_ca: Some(clients.ca_pem()), ..Default::default() };
        let o = TlsOrigin::echo(&pki.server(&["origin.internal"]), opts);
        let ca = write_ca(&pki, &dir, "ca");
        let client = clients.client("gateway.internal");
        let (cert, key) = client.write(&dir, "client");
        let tls = format!("server_name = \"origin.internal\", ca = {ca}, cert = {:?}, key = {:?}", cert.display().to_string(), key.display().to_string());
        let g = Gateway::start(d, 1, &(tls_upstream(&[o.addr], &tls, "") + ROUTE));
        keep_alive_gets(g.addr, &["a", "b"]);
        assert_eq!(o.client_certs(), vec![Some(client.cert_der.to_vec())]);
        drop(g);
        // without it the origin refuses the handshake
        let tls = format!("server_name = \"origin.internal\", ca = {ca}");
        let g = Gateway::start(d, 1, &(tls_upstream(&[o.addr], &tls, "") + ROUTE));
        let r = get(g.addr, "/api/a");
        assert_eq!(r.status, 502);
        assert_eq!(r.text(), BAD_GATEWAY);
        assert_eq!(o.handshakes(), 1, "no second handshake completed");
    }

    fn a_tls12_only_origin_works_and_is_reused(d) {
        let dir = cert_dir(&format!("otls-tls12-{d}"));
        let pki = Pki::new("origin CA");
        let opts = TlsOptions { tls12_only: true, ..Default::default() };
        let o = TlsOrigin::echo(&pki.server(&["origin.internal"]), opts);
        let ca = write_ca(&pki, &dir, "ca");
        let ups = tls_upstream(&[o.addr], &format!("server_name = \"origin.internal\", ca = {ca}"), "");
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        keep_alive_gets(g.addr, &["a", "b", "c"]);
        assert_eq!(o.versions(), vec![rustls::ProtocolVersion::TLSv1_2]);
        assert_eq!(o.handshakes(), 1);
    }

    fn active_health_checks_speak_tls(d) {
        let dir = cert_dir(&format!("otls-health-{d}"));
        let (pki, other) = (Pki::new("origin CA"), Pki::new("another CA"));
        let answer = |name: &'static str| move |r: &Recorded| {
            if r.target == "/health" { Reply::ok("up") } else { Reply::ok(name) }
        };
        let good = TlsOrigin::start(&pki.server(&["origin.internal"]), TlsOptions::default(), answer("good"));
        // answers its checks, but with a certificate the upstream's CA did not sign
        let bad = TlsOrigin::start(&other.server(&["origin.internal"]), TlsOptions::default(), answer("bad"));
        let ca = write_ca(&pki, &dir, "ca");
        let ups = tls_upstream(
            &[good.addr, bad.addr],
            &format!("server_name = \"origin.internal\", ca = {ca}"),
            "health = { path = \"/health\", interval_ms = 50, timeout_ms = 1000, healthy = 1, unhealthy = 2 }",
        );
        let g = Gateway::start(d, 1, &(ups + ROUTE));
        wait_until("checks of the good target over TLS", || {
            good.requests().iter().filter(|r| r.target == "/health").count() >= 3
        });
        wait_until("checks of the bad target refused", || bad.connections() >= 3);
        assert_eq!(bad.handshakes(), 0);
        // the check addresses the origin by the name its certificate has (RFC 9110 §7.2)
        let host = format!("origin.internal:{}", good.addr.port());
        for r in good.requests().iter().filter(|r| r.target == "/health") {
            assert_eq!(r.header("host"), Some(host.as_str()), "{}", r.head_text());
        }
        for i in 0..10 {
            assert_eq!(get(g.addr, &format!("/api/{i}")).text(), "good", "request {i}");
        }
        assert!(bad.requests().is_empty());
    }

    fn a_reload_that_changes_the_ca_drops_pooled_connections(d) {
        let dir = cert_dir(&format!("otls-reload-{d}"));
        let (pki, other) = (Pki::new("origin CA"), Pki::new("another CA"));
        let o = TlsOrigin::echo(&pki.server(&["origin.internal"]), TlsOptions::default());
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, pki.ca_pem()).unwrap();
        let ca = format!("{:?}", ca_path.display().to_string());
        let tls = format!("server_name = \"origin.internal\", ca = {ca}");
        // the response timeout changes with each reload too, so the upstream itself is rebuilt
        let text = |ms: u32| server_toml(d, 1, "")
            + &tls_upstream(&[o.addr], &tls, &format!("response_timeout_ms = {ms}"))
            + ROUTE;
        let g = Gateway::from_toml(&text(5000));
        keep_alive_gets(g.addr, &["a"]);
        assert_eq!(o.handshakes(), 1);

        // other settings change, TLS does not: the idle connection is adopted
        g.write_config(&text(6000));
        g.reload().unwrap();
        keep_alive_gets(g.addr, &["b"]);
        assert_eq!(o.handshakes(), 1, "unchanged TLS keeps the pooled connection");

        // the same CA plus another (the file's bytes changed): a new connection, verified anew
        std::fs::write(&ca_path, pki.ca_pem() + &other.ca_pem()).unwrap();
        g.write_config(&text(7000));
        g.reload().unwrap();
        keep_alive_gets(g.addr, &["c"]);
        assert_eq!(o.handshakes(), 2, "a changed CA drops the pooled connection");

        // a CA that does not sign the origin's certificate: 502, never the old connection
        std::fs::write(&ca_path, other.ca_pem()).unwrap();
        g.write_config(&text(8000));
        g.reload().unwrap();
        let r = get(g.addr, "/api/d");
        assert_eq!(r.status, 502);
        assert_eq!(r.text(), BAD_GATEWAY);
        assert_eq!(o.requests().len(), 3);
    }
}
