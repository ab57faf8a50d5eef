//! HTTP/2 to clients, end to end on real sockets: the `h2` crate as the client, over TLS (ALPN
//! `h2`) and over h2c (prior knowledge), on both drivers ([`h2_modes!`]). Mock routes, the
//! recording origin (the exact HTTP/1.1 bytes an HTTP/2 request becomes), concurrent streams
//! on one connection, bodies both ways with flow control (a slow reader back-pressures the
//! origin), the gateway's refusals (403, 429, 404, 413), the access log, reload and drain.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::h2client::{fetch, H2, H2C};
use common::*;

fn routes(o: &Origin) -> String {
    upstream_toml("u", &[o.addr], "response_timeout_ms = 10000")
        + r#"
[[route]]
key = "ANY /api/{proxy+}"
upstream = "u"

[[route]]
key = "GET /hello"
mock = { status = 200, body = "hi", headers = { "content-type" = "text/plain" } }

[[route]]
key = "GET /keyed"
mock = { status = 200, body = "keyed" }
api_key_required = true

[[route]]
key = "GET /limited"
mock = { status = 200, body = "ok" }
throttle = { rate = 1, burst = 1 }

[[api_key]]
name = "k"
value = "secret-0123456789abcdef"
"#
}

fn start(d: &str, o: &Origin, extra: &str) -> Gateway {
    Gateway::start_with(d, 1, &format!("{H2C}\n{extra}"), &routes(o))
}

/// The value of a Prometheus series (`name{labels}`) at the admin listener (0 when absent).
fn metric(admin: std::net::SocketAddr, series: &str) -> u64 {
    let prefix = format!("{series} ");
    get(admin, "/metrics")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0)
}

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

h2_modes! {
    fn mock_routes_and_errors_over_one_connection(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        let mut c = H2::connect(g.addr);
        let r = c.get("/hello");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "hi");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("content-length"), Some("2"));
        assert_eq!(r.header("x-request-id").map(str::len), Some(36));
        assert!(r.header("date").is_some());
        assert!(r.header("connection").is_none());
        // HEAD: the same head, no DATA (RFC 9110 §9.3.2)
        let head = c.req("HEAD", "/nope", &[]);
        let r = c.send(head, None).unwrap();
        assert_eq!((r.status, r.body.len()), (404, 0));
        assert_eq!(r.header("content-length"), Some("23"));
        let r = c.get("/nope");
        assert_eq!(r.status, 404);
        assert_eq!(r.text(), r#"{"message":"Not Found"}"#);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(o.requests().is_empty());
    }

    fn an_http2_get_reaches_the_origin_as_exact_http11_bytes(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        let mut c = H2::connect(g.addr);
        let req = c.req(
            "GET",
            "/api/x?q=1",
            &[("user-agent", "t"), ("cookie", "a=1"), ("cookie", "b=2")],
        );
        let r = c.send(req, None).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "GET /api/x?q=1");
        let rid = r.header("x-request-id").unwrap();
        let q = &o.requests()[0];
        let proto = proto();
        // :authority → Host, cookie crumbs joined (RFC 9113 §8.2.3), no framing for a GET
        // that ended with its HEADERS, Via naming the version received (RFC 9110 §7.6.3)
        let expected = format!(
            "GET /api/x?q=1 HTTP/1.1\r\nhost: localhost\r\nuser-agent: t\r\ncookie: a=1; b=2\r\n\
x-forwarded-for: 127.0.0.1\r\nvia: 2 tollgate\r\nx-forwarded-proto: {proto}\r\nx-forwarded-host: localhost\r\n\
x-request-id: {rid}\r\n\r\n"
        );
        assert_eq!(String::from_utf8_lossy(&q.raw), expected);
    }

    fn post_bodies_are_framed_by_length_or_chunked(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        let mut c = H2::connect(g.addr);
        let req = c.req("POST", "/api/len", &[("content-length", "5")]);
        assert_eq!(c.send(req, Some(b"hello")).unwrap().status, 200);
        let req = c.req("POST", "/api/chunked", &[]);
        assert_eq!(c.send(req, Some(b"world!")).unwrap().status, 200);
        let reqs = o.requests();
        let by_len = reqs.iter().find(|q| q.target == "/api/len").unwrap();
        assert_eq!(by_len.header("content-length"), Some("5"));
        assert_eq!(by_len.header("transfer-encoding"), None);
        assert_eq!(by_len.body, b"hello");
        assert!(by_len.raw.ends_with(b"\r\n\r\nhello"), "{}", by_len.head_text());
        let chunked = reqs.iter().find(|q| q.target == "/api/chunked").unwrap();
        assert_eq!(chunked.header("content-length"), None);
        assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
        assert_eq!(chunked.body, b"world!");
        assert!(chunked.raw.ends_with(b"0\r\n\r\n"));
    }

    fn fifty_streams_are_served_concurrently_on_one_connection(d) {
        // the origin answers only once all 50 requests are in flight at once: streams served
        // one after another would never get there (each would fail after the wait)
        let inflight = Arc::new(AtomicUsize::new(0));
        let seen = inflight.clone();
        let o = Origin::start(move |r| {
            seen.fetch_add(1, Ordering::AcqRel);
            let until = Instant::now() + Duration::from_secs(15);
            while seen.load(Ordering::Acquire) < 50 && Instant::now() < until {
                thread::sleep(Duration::from_millis(5));
            }
            if seen.load(Ordering::Acquire) < 50 {
                return Reply::Raw(b"HTTP/1.1 500 Serial\r\ncontent-length: 0\r\n\r\n".to_vec());
            }
            Reply::ok(&r.target)
        });
        let g = start(d, &o, "");
        let c = H2::connect(g.addr);
        let reqs: Vec<_> = (0..50).map(|i| c.req("GET", &format!("/api/s{i}"), &[])).collect();
        let send = c.send.clone();
        let results = c.rt.block_on(async move {
            let tasks: Vec<_> = reqs
                .into_iter()
                .map(|r| tokio::spawn(fetch(send.clone(), r, None)))
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap().unwrap());
            }
            out
        });
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.status, 200, "stream {i}");
            assert_eq!(r.text(), format!("/api/s{i}"));
        }
        assert_eq!(inflight.load(Ordering::Acquire), 50);
    }

    fn a_large_request_body_streams_through(d) {
        let o = Origin::start(|r| Reply::ok(&r.body_len.to_string()));
        let g = start(d, &o, "[server.limits]\nmax_body_bytes = 10000000");
        let mut c = H2::connect(g.addr);
        let body: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
        let len = body.len().to_string();
        let req = c.req("PUT", "/api/big", &[("content-length", &len)]);
        let r = c.send(req, Some(&body)).unwrap();
        assert_eq!((r.status, r.text()), (200, len.clone()));
        let q = &o.requests()[0];
        assert_eq!(q.body_len, body.len() as u64);
        assert!(q.body == body, "the body arrived intact");
        // without a declared length: chunked to the origin, same bytes
        let req = c.req("PUT", "/api/big2", &[]);
        let r = c.send(req, Some(&body)).unwrap();
        assert_eq!((r.status, r.text()), (200, len));
        assert!(o.requests()[1].body == body);
    }

    fn a_slow_reader_back_pressures_the_origin(d) {
        // the origin writes a large body and counts what its socket accepted
        const TOTAL: u64 = 48 << 20;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let w2 = written.clone();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = Vec::new();
            read_head(&mut s, &mut buf).unwrap();
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {TOTAL}\r\n\r\n");
            s.write_all(head.as_bytes()).unwrap();
            let chunk: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
            let mut sent = 0u64;
            while sent < TOTAL {
                if s.write_all(&chunk).is_err() {
                    return;
                }
                sent += chunk.len() as u64;
                w2.store(sent, Ordering::Release);
            }
        });
        let text = upstream_toml("slow", &[addr], "response_timeout_ms = 20000")
            + "[[route]]\nkey = \"GET /big\"\nupstream = \"slow\"\n";
        let g = Gateway::start_with(d, 1, H2C, &text);
        let c = H2::connect(g.addr);
        let req = c.req("GET", "/big", &[]);
        let send = c.send.clone();
        let (status, mut recv) = c.rt.block_on(async move {
            let mut send = send.ready().await.unwrap();
            let (resp, _) = send.send_request(req, true).unwrap();
            let resp = resp.await.unwrap();
            (resp.status().as_u16(), resp.into_body())
        });
        assert_eq!(status, 200);
        // the client reads nothing (releases no window): once the gateway's window is spent
        // the origin's writes must stall well short of the body (kernel buffers hold a few
        // MiB; without back-pressure the gateway would read all of it)
        let mut last = u64::MAX;
        let mut steady = 0;
        eventually("the origin's writes to stall", || {
            thread::sleep(Duration::from_millis(100));
            let now = written.load(Ordering::Acquire);
            steady = if now == last { steady + 1 } else { 0 };
            last = now;
            steady >= 5 || now >= TOTAL
        });
        assert!(last < TOTAL / 2, "origin wrote {last} of {TOTAL}: not back-pressured");
        // then the reader goes on: the stream resumes where it stopped, every byte in order
        // (the first READ_ON bytes: the harness's TLS relay is slow for the whole body)
        const READ_ON: u64 = 8 << 20;
        let got = c.rt.block_on(async move {
            let mut n = 0u64;
            let mut ok = true;
            while n < READ_ON {
                let Some(chunk) = recv.data().await else { break };
                let chunk = chunk.unwrap();
                for (i, b) in chunk.iter().enumerate() {
                    ok &= *b == ((n as usize + i) % 65_536 % 251) as u8;
                }
                n += chunk.len() as u64;
                let _ = recv.flow_control().release_capacity(chunk.len());
            }
            (n >= READ_ON, ok)
        });
        assert_eq!(got, (true, true));
        assert!(written.load(Ordering::Acquire) > last, "the origin went on");
    }

    fn a_body_shorter_than_its_content_length_never_reaches_the_origin(d) {
        let o = Origin::echo();
        // bodies are streamed at once (no buffering before the origin is chosen)
        let g = start(d, &o, "[server.limits]\nrequest_buffer_bytes = 0");
        let mut c = H2::connect(g.addr);
        // RFC 9113 §8.1.1: malformed; the body fits one window, so it is held until its end
        // and the stream error is found before the origin sees a byte
        let req = c.req("POST", "/api/short", &[("content-length", "10")]);
        let e = c.send(req, Some(b"12345")).expect_err("the stream is reset");
        assert_eq!(e.reason(), Some(h2::Reason::PROTOCOL_ERROR), "{e}");
        assert_eq!(c.get("/hello").status, 200, "the connection goes on");
        assert!(o.requests().is_empty(), "{:?}", o.requests());
        assert_eq!(o.connections(), 0);
    }

    fn a_large_body_shorter_than_declared_never_completes_upstream(d) {
        let o = Origin::echo();
        let g = start(d, &o, "[server.limits]\nrequest_buffer_bytes = 0");
        let mut c = H2::connect(g.addr);
        // past one window the body streams to the origin; the stream error at its end aborts
        // the origin connection: the origin never gets a complete request
        let req = c.req("POST", "/api/short", &[("content-length", "300000")]);
        let e = c.send(req, Some(&[b'x'; 200_000])).expect_err("the stream is reset");
        assert_eq!(e.reason(), Some(h2::Reason::PROTOCOL_ERROR), "{e}");
        assert_eq!(c.get("/hello").status, 200, "the connection goes on");
        assert!(o.requests().is_empty(), "a complete request reached the origin");
    }

    fn a_client_expecting_100_continue_gets_it_before_sending_its_body(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        let c = H2::connect(g.addr);
        let req = c.req(
            "POST",
            "/api/cont",
            &[("content-length", "5"), ("expect", "100-continue")],
        );
        let send = c.send.clone();
        let (interim, status) = c.rt.block_on(async move {
            let mut send = send.ready().await.unwrap();
            let (mut resp, mut body) = send.send_request(req, false).unwrap();
            // the body waits for the 100 (a gateway that sent none would leave it waiting)
            let interim = tokio::time::timeout(
                common::h2client::LIVE,
                std::future::poll_fn(|cx| resp.poll_informational(cx)),
            )
            .await
            .expect("100 Continue in time")
            .expect("an informational response")
            .unwrap();
            body.send_data(bytes::Bytes::from_static(b"hello"), true).unwrap();
            let r = resp.await.unwrap();
            (interim.status().as_u16(), r.status().as_u16())
        });
        assert_eq!((interim, status), (100, 200));
        assert_eq!(o.requests()[0].body, b"hello");
        assert_eq!(o.requests()[0].header("expect"), None, "Expect is hop-by-hop here");
    }

    fn a_body_slower_than_the_minimum_rate_is_a_408(d) {
        // body_read_ms is far beyond the client's liveness bound: only the rate can end it
        let o = Origin::echo();
        let extra = "[server.limits]\nmin_body_rate = 1000\n\
                     [server.timeouts]\nbody_rate_grace_ms = 200\nbody_read_ms = 3600000";
        let g = start(d, &o, extra);
        for len in [None, Some("100")] {
            let c = H2::connect(g.addr);
            let headers: Vec<(&str, &str)> = len.map(|l| ("content-length", l)).into_iter().collect();
            let req = c.req("POST", "/api/slow", &headers);
            let send = c.send.clone();
            let status = c.rt.block_on(async move {
                let mut send = send.ready().await.unwrap();
                let (resp, mut body) = send.send_request(req, false).unwrap();
                body.send_data(bytes::Bytes::from_static(b"0123456789"), false).unwrap();
                // ... and nothing more
                let r = tokio::time::timeout(common::h2client::LIVE, resp).await;
                let r = r.expect("answered before the client's liveness bound").unwrap();
                drop(body);
                r.status().as_u16()
            });
            assert_eq!(status, 408, "{len:?}");
        }
        assert!(o.requests().is_empty());
    }

    fn refusals_are_answered_on_the_stream(d) {
        let o = Origin::echo();
        let g = start(d, &o, "[server.limits]\nmax_body_bytes = 1000");
        let mut c = H2::connect(g.addr);
        assert_eq!(c.get("/keyed").status, 403);
        let req = c.req("GET", "/keyed", &[("x-api-key", "secret-0123456789abcdef")]);
        assert_eq!(c.send(req, None).unwrap().text(), "keyed");
        assert_eq!(c.get("/limited").status, 200);
        let r = c.get("/limited");
        assert_eq!(r.status, 429);
        assert!(r.header("retry-after").is_some());
        assert_eq!(c.get("/missing").status, 404);
        // 413 from the declared length, and from a body that grows past the limit
        let req = c.req("POST", "/api/x", &[("content-length", "2000")]);
        assert_eq!(c.send(req, Some(&[b'a'; 2000])).unwrap().status, 413);
        let req = c.req("POST", "/api/y", &[]);
        assert_eq!(c.send(req, Some(&[b'a'; 2000])).unwrap().status, 413);
        // the connection goes on
        assert_eq!(c.get("/hello").status, 200);
        assert!(o.requests().is_empty(), "nothing reached the origin");
    }

    fn the_access_log_says_http2(d) {
        let o = Origin::echo();
        let path = std::env::temp_dir().join(format!(
            "tollgate-h2-log-{}-{d}-{:?}.log",
            std::process::id(),
            transport()
        ));
        let _ = std::fs::remove_file(&path);
        let extra = format!("[access_log]\npath = \"{}\"\nformat = \"json\"\n", path.display());
        let g = Gateway::start_with(d, 1, H2C, &(extra + &routes(&o)));
        let mut c = H2::connect(g.addr);
        assert_eq!(c.get("/hello").status, 200);
        drop(c);
        g.stop();
        let log = std::fs::read_to_string(&path).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(log.contains("\"protocol\":\"HTTP/2.0\""), "{log}");
        assert!(log.contains("\"path\":\"/hello\""), "{log}");
        let _ = std::fs::remove_file(&path);
    }

    fn a_reload_applies_to_new_streams_on_the_same_connection(d) {
        let o = Origin::echo();
        let g = start(d, &o, "");
        let mut c = H2::connect(g.addr);
        assert_eq!(c.get("/new").status, 404);
        let text = server_toml(d, 1, H2C)
            + &routes(&o)
            + "\n[[route]]\nkey = \"GET /new\"\nmock = { status = 200, body = \"new\" }\n";
        g.write_config(&text);
        g.reload().unwrap();
        let r = c.get("/new");
        assert_eq!((r.status, r.text().as_str()), (200, "new"));
    }

    fn drain_sends_goaway_and_the_in_flight_stream_completes(d) {
        let o = Origin::start(|_| Reply::After(Duration::from_millis(600), Box::new(Reply::ok("late"))));
        let g = start(d, &o, "");
        let mut c = H2::connect(g.addr);
        let req = c.req("GET", "/api/slow", &[]);
        let send = c.send.clone();
        let pending = c.rt.spawn(fetch(send, req, None));
        // run the client until the origin has the request, then drain
        c.rt.block_on(async {
            while o.requests().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let stopper = thread::spawn(move || g.stop());
        let r = c.rt.block_on(pending).unwrap().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "late"));
        // the GOAWAY(NO_ERROR) came before the response ended: the client itself refuses a new
        // stream because of it (a plain close, without GOAWAY, would give an I/O error)
        let req = c.req("GET", "/hello", &[]);
        let e = c
            .send(req, None)
            .expect_err("no new stream after the GOAWAY");
        assert!(e.is_go_away() && e.is_remote(), "a GOAWAY from the gateway: {e:?}");
        assert_eq!(e.reason(), Some(h2::Reason::NO_ERROR), "{e:?}");
        assert!(c.closed().is_ok());
        stopper.join().unwrap();
    }

    fn a_connection_stalled_on_a_zero_window_gets_goaway(d) {
        let o = Origin::start(|_| Reply::Stream(1 << 20));
        let g = start(d, &o, &format!("[server.http2]\nzero_window_timeout_ms = 300\n{ADMIN}"));
        let c = H2::connect(g.addr);
        let req = c.req("GET", "/api/big", &[]);
        let send = c.send.clone();
        let (got, err) = c.rt.block_on(async move {
            let mut send = send.ready().await.unwrap();
            let (resp, _) = send.send_request(req, true).unwrap();
            let mut body = resp.await.unwrap().into_body();
            // read what the window let through, releasing nothing
            let mut got = 0usize;
            loop {
                match body.data().await {
                    Some(Ok(chunk)) => got += chunk.len(),
                    Some(Err(e)) => return (got, Some(e)),
                    None => return (got, None),
                }
            }
        });
        assert!(got <= 65_535, "no more than the client's window: {got}");
        // the only stream waits on a window the client never opens: a connection-level
        // defence (a client starving every stream holds responses and origin connections)
        assert!(err.is_some(), "the response did not complete");
        let mut c = c;
        let e = c.closed().expect_err("the connection ended with an error code");
        assert!(e.is_go_away() && e.is_remote(), "{e:?}");
        assert_eq!(e.reason(), Some(h2::Reason::ENHANCE_YOUR_CALM), "{e}");
        let admin = g.handle().admin_addr().unwrap();
        let series = "tollgate_http2_goaway_total{reason=\"zero_window_stall\"}";
        eventually("the GOAWAY counted", || metric(admin, series) == 1);
    }

    fn a_stalled_stream_beside_a_busy_one_is_reset_alone(d) {
        let o = Origin::start(|r| {
            if r.target.contains("slow") {
                Reply::After(Duration::from_millis(1500), Box::new(Reply::ok("late")))
            } else {
                Reply::Stream(1 << 20)
            }
        });
        let g = start(d, &o, &format!("[server.http2]\nzero_window_timeout_ms = 300\n{ADMIN}"));
        let mut c = H2::connect(g.addr);
        let slow = c.req("GET", "/api/slow", &[]);
        let pending = c.rt.spawn(fetch(c.send.clone(), slow, None));
        let req = c.req("GET", "/api/big", &[]);
        let send = c.send.clone();
        let err = c.rt.block_on(async move {
            let mut send = send.ready().await.unwrap();
            let (resp, _) = send.send_request(req, true).unwrap();
            let mut body = resp.await.unwrap().into_body();
            loop {
                match body.data().await {
                    Some(Ok(_)) => {} // releasing nothing
                    Some(Err(e)) => return Some(e),
                    None => return None,
                }
            }
        });
        // the other stream waits on its origin, not on the client: only this one is reset
        let e = err.expect("the stream was reset");
        assert!(!e.is_go_away(), "{e:?}");
        assert_eq!(e.reason(), Some(h2::Reason::CANCEL), "{e}");
        let r = c.rt.block_on(pending).unwrap().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "late"));
        assert_eq!(c.get("/hello").status, 200, "the connection goes on");
        let admin = g.handle().admin_addr().unwrap();
        eventually("the reset counted", || {
            metric(admin, "tollgate_http2_streams_reset_total") >= 1
        });
        let series = "tollgate_http2_goaway_total{reason=\"zero_window_stall\"}";
        assert_eq!(metric(admin, series), 0);
    }

    fn an_idle_connection_gets_goaway_and_closes(d) {
        let o = Origin::echo();
        let g = start(d, &o, &format!("[server.timeouts]\nkeepalive_idle_ms = 200\n{ADMIN}"));
        let mut c = H2::connect(g.addr);
        assert_eq!(c.get("/hello").status, 200);
        assert!(c.closed().is_ok());
        let admin = g.handle().admin_addr().unwrap();
        let series = "tollgate_http2_goaway_total{reason=\"idle_timeout\"}";
        eventually("the GOAWAY counted", || metric(admin, series) == 1);
    }
}

/// Dispatch on a plain listener, with and without `server.h2c`.
mod plain_listener {
    use super::*;

    both_drivers! {
        fn h2c_off_an_http2_preface_is_an_http1_error(d) {
            let o = Origin::echo();
            let g = Gateway::start(d, 1, &routes(&o));
            let mut s = connect(g.addr);
            s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
            let mut buf = Vec::new();
            let head = read_head(&mut s, &mut buf).unwrap();
            assert!(head.starts_with("HTTP/1.1 4") || head.starts_with("HTTP/1.1 505"), "{head}");
        }

        fn a_silent_connection_on_an_h2c_listener_closes_after_header_read(d) {
            let o = Origin::echo();
            let g = Gateway::start_with(
                d,
                1,
                &format!("{H2C}\n[server.timeouts]\nheader_read_ms = 200"),
                &routes(&o),
            );
            // nothing sent: closed without an answer (as HTTP/1 closes a silent connection)
            let mut s = connect(g.addr);
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let t = Instant::now();
            let mut b = [0u8; 64];
            assert_eq!(s.read(&mut b).unwrap(), 0, "closed without an answer");
            assert!(t.elapsed() >= Duration::from_millis(150), "not before the deadline");
            // part of a preface, then silence: HTTP/1 answers what it got (a 4xx)
            let mut s = connect(g.addr);
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"PRI * HT").unwrap();
            let mut buf = Vec::new();
            let head = read_head(&mut s, &mut buf).unwrap();
            assert!(head.starts_with("HTTP/1.1 4"), "{head}");
        }

        fn h2c_on_http1_still_works_and_a_preface_in_pieces_is_http2(d) {
            let o = Origin::echo();
            let g = Gateway::start_with(d, 1, H2C, &routes(&o));
            // HTTP/1.1, also one starting with "P" like the preface
            assert_eq!(get(g.addr, "/hello").text(), "hi");
            let r = roundtrip(g.addr, b"POST /api/p HTTP/1.1\r\nHost: h\r\ncontent-length: 1\r\n\r\nx");
            assert_eq!(r.text(), "POST /api/p");
            // the preface split over writes, then SETTINGS: the server's SETTINGS come back
            let mut s = connect(g.addr);
            s.write_all(b"PRI * HT").unwrap();
            thread::sleep(Duration::from_millis(50));
            s.write_all(b"TP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
            s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut frame = [0u8; 9];
            s.read_exact(&mut frame).unwrap();
            assert_eq!(frame[3], 4, "a SETTINGS frame: {frame:?}");
            // and a real client on the same listener
            let mut c = H2::connect(g.addr);
            assert_eq!(c.get("/hello").text(), "hi");
        }
    }
}
