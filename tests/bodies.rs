//! Request bodies on their way to the origin, on both drivers: buffered whole before an origin is
//! chosen up to `request_buffer_bytes` (route → upstream → server) and then replayable like a
//! bodiless request (idempotent methods only), streamed beyond it, bodies
//! slower than `min_body_rate` after the grace period ended with 408, slow clients unable to
//! starve an origin that has a fixed number of threads; the per-route integration timeout
//! (`timeout_ms`) and `strip_api_key`.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// An upstream `u` for `o` that pools nothing (every request opens a connection the origin
/// counts), with `extra` lines, and the route `ANY /api/{proxy+}` with `route_extra` lines.
fn api(o: &Origin, extra: &str, route_extra: &str) -> String {
    upstream_toml("u", &[o.addr], &format!("max_idle_per_worker = 0\n{extra}"))
        + &format!("[[route]]\nkey = \"ANY /api/{{proxy+}}\"\nupstream = \"u\"\n{route_extra}\n")
}

/// `n` body bytes, a pattern that shows reordering or loss.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Polls `cond` until it holds or `limit` passes (a liveness bound, not a measurement).
fn eventually(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// How a body is expected to reach the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Buffered whole: no origin connection while the client is still sending.
    Buffered,
    /// Streamed: the origin is contacted while the client is still sending.
    Streamed,
}

/// Sends a POST of `total` body bytes to `path`, `first` of them with the head and the rest once
/// it is clear whether the origin was contacted meanwhile, which must match `expect`; then
/// asserts the request completed and arrived intact.
fn post_in_two_parts(
    g: &Gateway,
    o: &Origin,
    path: &str,
    total: usize,
    first: usize,
    expect: Expect,
) {
    let body = pattern(total);
    let (before, seen) = (o.connections(), o.requests().len());
    let mut c = Client::new(g.addr);
    let mut raw =
        format!("POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: {total}\r\n\r\n").into_bytes();
    raw.extend_from_slice(&body[..first]);
    c.send(&raw);
    let contacted = || o.connections() > before;
    match expect {
        // a liveness bound: the gateway has the first part and connects as soon as it can
        Expect::Streamed => {
            let streamed = eventually(Duration::from_secs(5), contacted);
            assert!(streamed, "{path}: not streamed");
        }
        Expect::Buffered => {
            thread::sleep(Duration::from_millis(300));
            assert!(
                !contacted(),
                "{path}: origin contacted before the body was complete"
            );
        }
    }
    c.send(&body[first..]);
    let r = c.read(false).expect("a response");
    assert_eq!(r.status, 200, "{}", r.text());
    let reqs = o.requests();
    assert_eq!(reqs.len(), seen + 1);
    assert_eq!(reqs[seen].body, body, "body arrived intact");
}

/// An origin with a fixed pool of `threads` handler threads, like a threaded application
/// server: a connection occupies a thread until it closes; the others wait in the backlog.
/// Answers every request `200 ok`.
struct ThreadedOrigin {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl ThreadedOrigin {
    fn start(threads: usize) -> ThreadedOrigin {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<TcpStream>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..threads {
            let rx = rx.clone();
            thread::spawn(move || loop {
                let Ok(s) = rx.lock().unwrap().recv() else {
                    return;
                };
                serve_threaded(s);
            });
        }
        let st = stop.clone();
        thread::spawn(move || {
            for s in l.incoming() {
                if st.load(Ordering::Acquire) {
                    return;
                }
                if let Ok(s) = s {
                    let _ = tx.send(s);
                }
            }
        });
        ThreadedOrigin { addr, stop }
    }
}

impl Drop for ThreadedOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves keep-alive requests with Content-Length bodies on `s` until it closes.
fn serve_threaded(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    while read_request(&mut s, &mut buf, false).is_some() {
        if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// An origin whose connections each answer one request (echoing its body), then close on the
/// next one without answering, as a keep-alive connection the origin dropped just as it was
/// reused. Returns the address and the bodies of the requests it answered.
fn one_answer_per_connection() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let answered = Arc::new(Mutex::new(Vec::new()));
    let bodies = answered.clone();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let bodies = bodies.clone();
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let Some(req) = read_request(&mut s, &mut buf, true) else {
                    return;
                };
                let body = req.body;
                let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                bodies.lock().unwrap().push(body.clone());
                let _ = s.write_all(reply.as_bytes());
                let _ = s.write_all(&body);
                // the next request's first bytes, then gone without a word
                let _ = s.read(&mut [0u8; 16384]);
            });
        }
    });
    (addr, answered)
}

/// A client dripping a body one byte per `every` from its own thread until stopped, the
/// socket fails, or `limit` passes. `ran_out()` tells whether it stopped because `limit` passed.
struct Dripper {
    stop: Arc<AtomicBool>,
    ran_out: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Dripper {
    fn start(mut s: Conn, every: Duration, limit: Duration) -> Dripper {
        let stop = Arc::new(AtomicBool::new(false));
        let ran_out = Arc::new(AtomicBool::new(false));
        let (st, out) = (stop.clone(), ran_out.clone());
        let thread = thread::spawn(move || {
            let end = Instant::now() + limit;
            while !st.load(Ordering::Acquire) {
                if Instant::now() >= end {
                    out.store(true, Ordering::Release);
                    return;
                }
                if s.write_all(b"x").is_err() {
                    return;
                }
                thread::sleep(every);
            }
        });
        Dripper {
            stop,
            ran_out,
            thread: Some(thread),
        }
    }

    fn ran_out(&self) -> bool {
        self.ran_out.load(Ordering::Acquire)
    }
}

impl Drop for Dripper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

all_transports! {
    // A body within request_buffer_bytes sent slowly in pieces (Content-Length, then chunked):
    // no origin connection exists until the body is complete, and the origin then gets exactly
    // one complete request, byte for byte.
    fn small_body_is_buffered_whole_before_the_origin_is_chosen(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &api(&o, "", ""));
        let body = pattern(1000);
        let mut c = Client::new(g.addr);
        c.send(b"POST /api/up HTTP/1.1\r\nHost: h\r\nx-request-id: rid-1\r\nContent-Length: 1000\r\n\r\n");
        for part in body[..900].chunks(300) {
            c.send(part);
            thread::sleep(Duration::from_millis(100));
        }
        thread::sleep(Duration::from_millis(200));
        assert_eq!(o.connections(), 0, "an origin connection was opened before the body was complete");
        c.send(&body[900..]);
        let r = c.read(false).expect("a response");
        assert_eq!(r.status, 200);
        let proto = proto();
        let mut want = format!("POST /api/up HTTP/1.1\r\nHost: h\r\nx-request-id: rid-1\r\n\
x-forwarded-for: 127.0.0.1\r\nvia: 1.1 tollgate\r\nx-forwarded-proto: {proto}\r\nx-forwarded-host: h\r\n\
content-length: 1000\r\n\r\n").into_bytes();
        want.extend_from_slice(&body);
        let reqs = o.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(String::from_utf8_lossy(&reqs[0].raw), String::from_utf8_lossy(&want));
        assert_eq!(o.connections(), 1);

        // chunked, on the same client connection
        c.send(b"POST /api/up HTTP/1.1\r\nHost: h\r\nx-request-id: rid-2\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        thread::sleep(Duration::from_millis(150));
        c.send(b"6\r\n world\r\n");
        thread::sleep(Duration::from_millis(150));
        assert_eq!(o.connections(), 1, "an origin connection was opened before the chunked body was complete");
        c.send(b"0\r\n\r\n");
        assert_eq!(c.read(false).expect("a response").status, 200);
        let reqs = o.requests();
        assert_eq!(reqs.len(), 2);
        assert_eq!(
            String::from_utf8_lossy(&reqs[1].raw),
            format!("POST /api/up HTTP/1.1\r\nHost: h\r\nx-request-id: rid-2\r\n\
x-forwarded-for: 127.0.0.1\r\nvia: 1.1 tollgate\r\nx-forwarded-proto: {proto}\r\nx-forwarded-host: h\r\n\
transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        );
    }

    // Beyond request_buffer_bytes the body is streamed: the origin is contacted while the client
    // is still sending, and the body arrives intact (Content-Length and chunked).
    fn larger_body_is_streamed_and_arrives_intact(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &api(&o, "", "request_buffer_bytes = 1024"));
        post_in_two_parts(&g, &o, "/api/big", 100_000, 4000, Expect::Streamed);
        let mut c = Client::new(g.addr);
        c.send(b"POST /api/chunks HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        let body = pattern(50_000);
        for part in body.chunks(5000) {
            c.send(format!("{:x}\r\n", part.len()).as_bytes());
            c.send(part);
            c.send(b"\r\n");
        }
        assert!(eventually(Duration::from_secs(5), || o.connections() == 2), "the chunked body was not streamed");
        c.send(b"0\r\n\r\n");
        assert_eq!(c.read(false).expect("a response").status, 200);
        assert_eq!(o.requests()[1].body, body);
    }

    // request_buffer_bytes: the route's value wins over its upstream's, which wins over
    // [server.limits]. The same bodies are buffered or streamed accordingly.
    fn buffer_size_route_overrides_upstream_overrides_server(d) {
        let o = Origin::echo();
        let rest = upstream_toml("u1", &[o.addr], "max_idle_per_worker = 0\nrequest_buffer_bytes = 4096")
            + &upstream_toml("u2", &[o.addr], "max_idle_per_worker = 0")
            + "[[route]]\nkey = \"POST /a\"\nupstream = \"u1\"\nrequest_buffer_bytes = 16384\n\
               [[route]]\nkey = \"POST /b\"\nupstream = \"u1\"\n\
               [[route]]\nkey = \"POST /c\"\nupstream = \"u2\"\n";
        let g = Gateway::start_with(d, 1, "[server.limits]\nrequest_buffer_bytes = 1024", &rest);
        // 8000 bytes: within the route's 16384, beyond the upstream's 4096
        post_in_two_parts(&g, &o, "/a", 8000, 6000, Expect::Buffered); // the route's value
        post_in_two_parts(&g, &o, "/b", 8000, 6000, Expect::Streamed); // the upstream's
        // 2000 bytes: within the upstream's 4096, beyond the server's 1024
        post_in_two_parts(&g, &o, "/b", 2000, 1500, Expect::Buffered); // the upstream's
        post_in_two_parts(&g, &o, "/c", 2000, 1500, Expect::Streamed); // the server's
    }

    // A client dripping its body below min_body_rate gets 408 once the grace period is over,
    // while it is still dripping (each byte would reset body_read_ms), and the connection
    // closes; the origin never sees the request. Both while buffering and while streaming.
    fn body_below_min_rate_gets_408_after_the_grace_period(d) {
        let o = Origin::echo();
        let server = "[server.limits]\nmin_body_rate = 200\n[server.timeouts]\nbody_rate_grace_ms = 300";
        let rest = api(&o, "", "") + "[[route]]\nkey = \"POST /streamed\"\nupstream = \"u\"\nrequest_buffer_bytes = 0\n";
        let g = Gateway::start_with(d, 1, server, &rest);
        for path in ["/api/slow", "/streamed"] {
            let mut c = Client::new(g.addr);
            c.send(format!("POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\nxx").as_bytes());
            // 1 byte per 20 ms: 50 B/s, a quarter of the minimum
            let drip = Dripper::start(c.stream.try_clone().unwrap(), Duration::from_millis(20), Duration::from_secs(6));
            let r = c.read(false).expect("a 408 while the client is still sending");
            assert!(!drip.ran_out(), "{path}: the answer came only after the client stopped");
            assert_eq!(r.status, 408, "{path}");
            assert_eq!(r.text(), r#"{"message":"Request Timeout"}"#);
            assert_eq!(r.header("connection"), Some("close"));
            drop(drip);
            assert!(c.is_closed(), "{path}: connection closed");
        }
        assert!(o.requests().is_empty(), "the origin never gets an incomplete request");
        // the streamed one did reach the origin (its body was cut): one connection, none else
        assert_eq!(o.connections(), 1);
    }

    // A body that keeps above min_body_rate is served, also when it takes longer than the grace
    // period; min_body_rate = 0 on a route switches the rule off there.
    fn body_above_min_rate_is_served(d) {
        let o = Origin::echo();
        let server = "[server.limits]\nmin_body_rate = 200\n[server.timeouts]\nbody_rate_grace_ms = 100";
        let rest = api(&o, "", "") + "[[route]]\nkey = \"POST /off\"\nupstream = \"u\"\nmin_body_rate = 0\n";
        let g = Gateway::start_with(d, 1, server, &rest);
        let mut c = Client::new(g.addr);
        let body = pattern(3000);
        c.send(b"POST /api/ok HTTP/1.1\r\nHost: h\r\nContent-Length: 3000\r\n\r\n");
        // 300 bytes per 50 ms: ~6000 B/s for about half a second
        for part in body.chunks(300) {
            c.send(part);
            thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(c.read(false).expect("a response").status, 200);
        assert_eq!(o.requests()[0].body, body);
        // rule off: 10 bytes over 400 ms (25 B/s) pass
        let mut c = Client::new(g.addr);
        c.send(b"POST /off HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n");
        for _ in 0..10 {
            c.send(b"y");
            thread::sleep(Duration::from_millis(40));
        }
        assert_eq!(c.read(false).expect("a response").status, 200);
        assert_eq!(o.requests()[1].body, b"yyyyyyyyyy");
    }

    // The attack in miniature: an origin with 4 threads, 8 clients dripping 100 KB bodies at a
    // few bytes a second (rate rule off, to show buffering alone protects the origin), and
    // meanwhile another client's proxied requests are all served, none times out.
    fn slow_bodies_do_not_starve_a_threaded_origin(d) {
        let o = ThreadedOrigin::start(4);
        let rest = upstream_toml("u", &[o.addr], "response_timeout_ms = 2000")
            + "[[route]]\nkey = \"ANY /api/{proxy+}\"\nupstream = \"u\"\n";
        let g = Gateway::start_with(d, 1, "[server.limits]\nmin_body_rate = 0", &rest);
        let mut slow = Vec::new();
        for _ in 0..8 {
            let mut c = Client::new(g.addr);
            c.send(b"POST /api/upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n0123456789");
            let drip = Dripper::start(c.stream.try_clone().unwrap(), Duration::from_millis(200), Duration::from_secs(30));
            slow.push((c, drip));
        }
        thread::sleep(Duration::from_millis(500)); // the slow requests are all in by now
        let mut c = Client::new(g.addr);
        for i in 0..10 {
            c.send(format!("GET /api/normal{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            let r = c.read(false).expect("a response");
            assert_eq!(r.status, 200, "request {i}: {}", r.text());
            assert_eq!(r.text(), "ok");
        }
        assert!(!slow.iter().any(|(_, d)| d.ran_out()), "the slow clients were still sending");
        drop(slow); // stop and disconnect them before the gateway drains
    }

    // A body that fits the buffer is sent whole, so it is replayable like a bodiless request:
    // an idempotent PUT whose pooled connection turns out dead is sent again on a fresh one,
    // although the client sent the body in pieces; a POST is not (RFC 9110 §9.2.2), it gets 502.
    fn buffered_idempotent_body_is_replayed_on_a_dead_pooled_connection(d) {
        let (addr, answered) = one_answer_per_connection();
        let g = Gateway::start(d, 1, &(upstream_toml("u", &[addr], "") + "[[route]]\nkey = \"ANY /api/{proxy+}\"\nupstream = \"u\"\n"));
        assert_eq!(get(g.addr, "/api/warm").status, 200); // leaves a pooled connection
        let body = pattern(1000);
        let mut c = Client::new(g.addr);
        c.send(b"PUT /api/put HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n");
        c.send(&body[..600]);
        thread::sleep(Duration::from_millis(100));
        c.send(&body[600..]);
        let r = c.read(false).expect("a response");
        assert_eq!(r.status, 200, "the PUT was not replayed: {}", r.text());
        assert_eq!(r.body, body);
        // the PUT's fresh connection is pooled now, and dies on its next request
        let mut c = Client::new(g.addr);
        c.send(b"POST /api/post HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nonce");
        assert_eq!(c.read(false).expect("a response").status, 502);
        let answered = answered.lock().unwrap().clone();
        assert_eq!(answered, vec![Vec::new(), body], "the POST was sent once and not repeated");
    }

    // A body exactly request_buffer_bytes long (the default 64 KiB) fits the buffer: it is sent
    // whole, so an idempotent PUT on a dead pooled connection is replayed on a fresh one; so is
    // a chunked body whose last chunk follows right at the limit. One byte more, arriving after
    // the rest, is streamed.
    fn body_exactly_the_buffer_size_is_whole_and_replayable(d) {
        let (addr, answered) = one_answer_per_connection();
        let g = Gateway::start(d, 1, &(upstream_toml("u", &[addr], "") + "[[route]]\nkey = \"ANY /api/{proxy+}\"\nupstream = \"u\"\n"));
        assert_eq!(get(g.addr, "/api/warm").status, 200); // leaves a pooled connection
        let body = pattern(65_536);
        let mut c = Client::new(g.addr);
        c.send(b"PUT /api/exact HTTP/1.1\r\nHost: h\r\nContent-Length: 65536\r\n\r\n");
        c.send(&body[..40_000]);
        thread::sleep(Duration::from_millis(100));
        c.send(&body[40_000..]);
        let r = c.read(false).expect("a response");
        assert_eq!(r.status, 200, "a body of exactly request_buffer_bytes was not replayed: {}", r.text());
        assert_eq!(r.body, body);
        assert_eq!(answered.lock().unwrap().clone(), vec![Vec::new(), body.clone()]);

        // chunked, 65 536 bytes as framed up to the end of the data: its last chunk follows
        let mut chunked = b"fff8\r\n".to_vec();
        chunked.extend_from_slice(&pattern(0xfff8));
        chunked.extend_from_slice(b"\r\n");
        assert_eq!(chunked.len(), 65_536);
        chunked.extend_from_slice(b"0\r\n\r\n");
        let mut c = Client::new(g.addr);
        c.send(b"PUT /api/chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        c.send(&chunked[..30_000]);
        thread::sleep(Duration::from_millis(100));
        c.send(&chunked[30_000..]);
        let r = c.read(false).expect("a response");
        assert_eq!(r.status, 200, "a chunked body ending at request_buffer_bytes was not replayed: {}", r.text());
        assert!(r.body == pattern(0xfff8), "the chunked body arrived intact");

        let o = Origin::echo();
        let g = Gateway::start(d, 1, &api(&o, "", ""));
        post_in_two_parts(&g, &o, "/api/exact", 65_536, 60_000, Expect::Buffered);
        post_in_two_parts(&g, &o, "/api/over", 65_537, 65_536, Expect::Streamed);
    }

    // Pipelined requests after a body, buffered or streamed, Content-Length or chunked (with
    // extensions and trailers), all in one write: each reaches the origin as its own request,
    // none is forwarded as part of the body before it, none is lost.
    fn pipelined_requests_after_a_body_stay_separate(d) {
        let o = Origin::echo();
        let rest = api(&o, "", "") + "[[route]]\nkey = \"ANY /s/{proxy+}\"\nupstream = \"u\"\nrequest_buffer_bytes = 0\n";
        let g = Gateway::start(d, 1, &rest);
        for prefix in ["/api", "/s"] {
            let seen = o.requests().len();
            let mut c = Client::new(g.addr);
            let wire = format!(
                "POST {prefix}/a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
                 POST {prefix}/b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5;ext=\"v\"\r\nworld\r\n0\r\nx-sum: 1\r\n\r\n\
                 GET {prefix}/c HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n\
                 PUT {prefix}/d HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nend"
            );
            c.send(wire.as_bytes());
            for p in ["a", "b", "c", "d"] {
                let r = c.read(false).expect("a response");
                assert_eq!(r.status, 200, "{prefix}/{p}");
                assert!(r.text().ends_with(&format!("{prefix}/{p}")), "{prefix}/{p}: {}", r.text());
            }
            let reqs = o.requests();
            let got: Vec<(String, String)> = reqs[seen..].iter().map(|r| (r.target.clone(), String::from_utf8_lossy(&r.body).into_owned())).collect();
            let want: Vec<(String, String)> = [("a", "hello"), ("b", "world"), ("c", ""), ("d", "end")]
                .iter().map(|(p, b)| (format!("{prefix}/{p}"), b.to_string())).collect();
            assert_eq!(got, want, "{prefix}");
        }
    }

    // Expect: 100-continue: the client gets 100 before it sends the body, the origin is not
    // contacted before the body is complete, and the request then arrives whole.
    fn expect_100_continue_comes_before_the_body(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &api(&o, "", ""));
        let mut c = Client::new(g.addr);
        c.send(b"POST /api/e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
        let r = c.read(false).expect("100 Continue");
        assert_eq!(r.status, 100);
        assert_eq!(o.connections(), 0, "the origin was contacted before the body");
        c.send(b"0123456789");
        assert_eq!(c.read(false).expect("the final response").status, 200);
        let reqs = o.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].body, b"0123456789");
    }

    // max_body_bytes holds while a chunked body is streamed beyond request_buffer_bytes: 413
    // with a JSON body, the connection closes, and the origin never gets a complete request.
    fn max_body_bytes_holds_while_streaming(d) {
        let o = Origin::echo();
        let server = "[server.limits]\nmax_body_bytes = 10000\nrequest_buffer_bytes = 1024";
        let g = Gateway::start_with(d, 1, server, &api(&o, "", ""));
        let mut c = Client::new(g.addr);
        c.send(b"POST /api/big HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("7d0\r\n{}\r\n", "z".repeat(2000));
        c.send(chunk.as_bytes()); // beyond the buffer: streamed from here
        assert!(eventually(Duration::from_secs(5), || o.connections() == 1), "not streamed");
        for _ in 0..5 {
            c.send(chunk.as_bytes());
        }
        let r = c.read(false).expect("a response");
        assert_eq!(r.status, 413);
        assert_eq!(r.text(), r#"{"message":"Request Entity Too Large"}"#);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed());
        assert!(o.requests().is_empty(), "a cut body never completes at the origin");
    }

    // Time the origin takes to accept a streamed body is not the client's: a client sending
    // 48 MB as fast as it can to an origin that reads nothing for 4 s (longer than the grace
    // period, at a minimum rate only a fast client keeps up) is served, not cut with 408.
    fn waiting_for_the_origin_is_not_blamed_on_the_client(d) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            for s in l.incoming().flatten() {
                thread::spawn(move || {
                    thread::sleep(Duration::from_secs(4));
                    serve_threaded(s);
                });
            }
        });
        let server = "[server.limits]\nmin_body_rate = 1073741824\nrequest_buffer_bytes = 0\n\
                      max_body_bytes = 67108864\n\
                      [server.timeouts]\nbody_rate_grace_ms = 2000";
        let rest = upstream_toml("u", &[addr], "") + "[[route]]\nkey = \"POST /up\"\nupstream = \"u\"\n";
        let g = Gateway::start_with(d, 1, server, &rest);
        let body = pattern(48 << 20);
        let mut c = Client::new(g.addr);
        c.stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut wire = format!("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        wire.extend_from_slice(&body);
        let writer = {
            let mut s = c.stream.try_clone().unwrap();
            thread::spawn(move || s.write_all(&wire).is_ok())
        };
        let r = c.read(false).expect("a response");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{}", r.text());
        assert!(writer.join().unwrap(), "the whole body was taken");
    }

    // timeout_ms on a route replaces the upstream's response_timeout_ms for that route only.
    fn route_timeout_ms_overrides_the_upstream_response_timeout(d) {
        let o = Origin::start(|_| Reply::After(Duration::from_millis(1000), Box::new(Reply::ok("late"))));
        let rest = upstream_toml("u", &[o.addr], "response_timeout_ms = 10000")
            + "[[route]]\nkey = \"GET /short\"\nupstream = \"u\"\ntimeout_ms = 200\n\
               [[route]]\nkey = \"GET /long\"\nupstream = \"u\"\n";
        let g = Gateway::start(d, 1, &rest);
        let r = get(g.addr, "/short");
        assert_eq!(r.status, 504);
        assert_eq!(r.text(), r#"{"message":"Gateway Timeout"}"#);
        let r = get(g.addr, "/long");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "late");
    }

    // The API key header reaches the origin unless the route says strip_api_key (whatever case
    // the client wrote it in, and for a configured api_keys.header); the key still authenticates.
    fn api_key_header_is_forwarded_unless_strip_api_key(d) {
        let o = Origin::echo();
        let keys = "[[api_key]]\nname = \"k\"\nvalue = \"secret-0123456789abcdef\"\n";
        let routes = upstream_toml("u", &[o.addr], "")
            + "[[route]]\nkey = \"GET /keep\"\nupstream = \"u\"\n\
               [[route]]\nkey = \"GET /strip\"\nupstream = \"u\"\nstrip_api_key = true\napi_key_required = true\n"
            + keys;
        let g = Gateway::start(d, 1, &routes);
        let send = |path: &str, name: &str| {
            let raw = format!("GET {path} HTTP/1.1\r\nHost: h\r\n{name}: secret-0123456789abcdef\r\nx-request-id: r\r\n\r\n");
            assert_eq!(roundtrip(g.addr, raw.as_bytes()).status, 200);
        };
        let tail = format!("x-request-id: r\r\nx-forwarded-for: 127.0.0.1\r\nvia: 1.1 tollgate\r\n\
                    x-forwarded-proto: {}\r\nx-forwarded-host: h\r\n\r\n", proto());
        send("/keep", "x-api-key");
        send("/strip", "X-Api-Key");
        let reqs = o.requests();
        assert_eq!(
            String::from_utf8_lossy(&reqs[0].raw),
            format!("GET /keep HTTP/1.1\r\nHost: h\r\nx-api-key: secret-0123456789abcdef\r\n{tail}")
        );
        assert_eq!(String::from_utf8_lossy(&reqs[1].raw), format!("GET /strip HTTP/1.1\r\nHost: h\r\n{tail}"));

        // a configured header: that one is stripped, an x-api-key is just another header
        let g = Gateway::start(d, 1, &(routes.clone() + "[api_keys]\nheader = \"X-Tenant-Key\"\n"));
        let raw = "GET /strip HTTP/1.1\r\nHost: h\r\nx-tenant-key: secret-0123456789abcdef\r\n\
                   x-api-key: other\r\nx-request-id: r\r\n\r\n";
        assert_eq!(roundtrip(g.addr, raw.as_bytes()).status, 200);
        assert_eq!(
            String::from_utf8_lossy(&o.requests()[2].raw),
            format!("GET /strip HTTP/1.1\r\nHost: h\r\nx-api-key: other\r\n{tail}")
        );
    }
}
