//! Regression tests for issue 8 part A (codec and response hardening), on both drivers over real
//! sockets: responses without content (1xx/204/304, HEAD) carry neither body nor framing and keep
//! pipelined streams in sync; a broken origin body before any byte reached the client is a 502;
//! an error answered while the client is still uploading is read by the client (lingering
//! close); an HTTP/1.0 request without Host reaches the origin with one; trailers are filtered
//! and malformed ones refused.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;

/// An origin that answers each request head with `script(target, connection index)`: pieces
/// written 100 ms apart (so a later piece arrives in a read of its own), on the same connection
/// for as long as the gateway keeps it. Returns the address and the heads received, each with
/// its connection index.
type Heads = Arc<Mutex<Vec<(usize, String)>>>;

fn piecewise_origin(
    script: impl Fn(&str, usize) -> Vec<Vec<u8>> + Send + Sync + 'static,
) -> (SocketAddr, Heads) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let heads: Heads = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let conns = Arc::new(AtomicUsize::new(0));
    let h2 = heads.clone();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let id = conns.fetch_add(1, Ordering::AcqRel);
            let (script, heads) = (script.clone(), h2.clone());
            thread::spawn(move || {
                let mut buf = Vec::new();
                while let Some(head) = read_head(&mut s, &mut buf) {
                    let target = head.split(' ').nth(1).unwrap_or("").to_string();
                    heads.lock().unwrap().push((id, head));
                    for (i, piece) in script(&target, id).into_iter().enumerate() {
                        if i > 0 {
                            thread::sleep(Duration::from_millis(100));
                        }
                        if s.write_all(&piece).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, heads)
}

fn upstream_routes(addr: SocketAddr) -> String {
    upstream_toml("u", &[addr], "")
        + "[[route]]\nkey = \"ANY /api/{proxy+}\"\nupstream = \"u\"\n"
        + "[[route]]\nkey = \"GET /hello\"\nmock = { status = 200, body = \"hi\" }\n"
}

const BODILESS_MOCKS: &str = r#"
[[route]]
key = "ANY /m204"
mock = { status = 204, headers = { "x-a" = "1" } }

[[route]]
key = "ANY /m304"
mock = { status = 304, headers = { "etag" = "\"v1\"" } }

[[route]]
key = "GET /hello"
mock = { status = 200, body = "hi" }
"#;

/// Asserts a response has no content and no framing fields.
fn assert_bodiless(r: &Response, status: u16) {
    assert_eq!(r.status, status, "{}", r.head);
    let h = r.head.to_ascii_lowercase();
    assert!(!h.contains("content-length"), "{status}: {}", r.head);
    assert!(!h.contains("transfer-encoding"), "{status}: {}", r.head);
    assert!(!h.contains("content-type"), "{status}: {}", r.head);
}

/// Sends `head`, then `body_len` bytes of body, and only then reads the response, as a client
/// doing a blocking upload does (curl, most HTTP libraries): the response arrives (and waits in
/// the client's receive buffer) while the client is still sending. If the server closes with
/// unread bytes, its kernel answers them with a reset: the client's send fails and such a
/// client reports the reset instead of the response. Returns the response (None: reset or
/// closed before a complete response), whether the server then ended the stream cleanly (FIN,
/// not a reset), and how many body bytes the client got out before a send failed.
fn upload_then_read(
    addr: SocketAddr,
    head: &[u8],
    body_len: usize,
) -> (Option<Response>, bool, usize) {
    let mut c = Client::new(addr);
    c.send(head);
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < body_len {
        let n = chunk.len().min(body_len - sent);
        if c.stream.write_all(&chunk[..n]).is_err() {
            break;
        }
        sent += n;
    }
    let r = c.read(false);
    // a clean end of stream (FIN), not a reset: `read` gives Ok(0), not ECONNRESET
    let mut b = [0u8; 1];
    let eof = r.is_some() && matches!(c.stream.read(&mut b), Ok(0));
    (r, eof, sent)
}

all_transports! {
    // ------------------------------------------------------------------ A1: no content

    fn a_204_or_304_mock_with_a_body_is_refused(d) {
        for status in [204, 304] {
            let text = server_toml(d, 1, "")
                + &format!("[[route]]\nkey = \"GET /x\"\nmock = {{ status = {status}, body = \"x\" }}\n");
            let e = tollgate::config::from_str(&text).expect_err("must be refused");
            let msg = e.render("t.toml");
            assert!(msg.contains("route[0].mock.body"), "{msg}");
            assert!(msg.starts_with("t.toml:8:"), "{msg}");
        }
    }

    fn bodiless_mocks_keep_pipelined_requests_in_sync(d) {
        let g = Gateway::start(d, 1, BODILESS_MOCKS);
        let mut c = Client::new(g.addr);
        // four requests in one write: a body or a content-length on the 204/304 (or HEAD)
        // would shift every response after it
        c.send(b"GET /m204 HTTP/1.1\r\nHost: h\r\n\r\nGET /m304 HTTP/1.1\r\nHost: h\r\n\r\n\
HEAD /m204 HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_bodiless(&r, 204);
        assert_eq!(r.header("x-a"), Some("1"));
        let r = c.read(false).unwrap();
        assert_bodiless(&r, 304);
        assert_eq!(r.header("etag"), Some("\"v1\""));
        assert_bodiless(&c.read(true).unwrap(), 204);
        let r = c.read(false).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "hi"));
        // and nothing else follows on the connection
        c.stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut extra = [0u8; 64];
        assert!(
            !matches!(c.stream.read(&mut extra), Ok(n) if n > 0),
            "bytes after the last response"
        );
    }

    fn origin_204_and_304_lose_their_framing_and_stray_bytes(d) {
        // the 204 claims Content-Length: 5 and sends five bytes in a later packet (not body:
        // RFC 9112 §6.3); the 304 keeps a Content-Length as metadata, which the client must not
        // see either
        let (addr, heads) = piecewise_origin(|target, _| match target {
            "/api/204" => vec![
                b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n".to_vec(),
                b"hello".to_vec(),
            ],
            "/api/304" => vec![b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 10\r\n\r\n".to_vec()],
            _ => vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()],
        });
        let g = Gateway::start(d, 1, &upstream_routes(addr));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/204 HTTP/1.1\r\nHost: h\r\n\r\nGET /api/304 HTTP/1.1\r\nHost: h\r\n\r\n\
GET /api/x HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_bodiless(&c.read(false).unwrap(), 204);
        thread::sleep(Duration::from_millis(200)); // the stray bytes reach the pooled connection
        let r = c.read(false).unwrap();
        assert_bodiless(&r, 304);
        assert_eq!(r.header("etag"), Some("\"e\""));
        let r = c.read(false).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert_eq!(c.read(false).unwrap().text(), "hi");
        // the 204's connection was not reused (its stray bytes would have been read as the
        // next response); the 304's was
        let conns: Vec<usize> = heads.lock().unwrap().iter().map(|(c, _)| *c).collect();
        assert_eq!(conns.len(), 3);
        assert_ne!(conns[0], conns[1], "{conns:?}");
        assert_eq!(conns[1], conns[2], "{conns:?}");
    }

    fn head_to_an_origin_204_has_no_content_length(d) {
        let (addr, _) = piecewise_origin(|_, _| {
            vec![b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".to_vec()]
        });
        let g = Gateway::start(d, 1, &upstream_routes(addr));
        let mut c = Client::new(g.addr);
        c.send(b"HEAD /api/a HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_bodiless(&c.read(true).unwrap(), 204);
        assert_eq!(c.read(false).unwrap().text(), "hi");
    }

    // ------------------------------------------------------------------ A6: 502 before bytes

    fn a_malformed_first_chunk_is_a_502(d) {
        let (addr, _) = piecewise_origin(|target, _| match target {
            // all in one packet
            "/api/zz" => vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec()],
            // the head first, the broken chunk-size line in a later read
            // a good first chunk, a malformed second one in the same read: nothing has
            // reached the client yet either
            "/api/second" => vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n".to_vec()],
            "/api/overflow" => vec![
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                b"10000000000000001\r\nhello\r\n0\r\n\r\n".to_vec(),
            ],
            _ => vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()],
        });
        let g = Gateway::start(d, 1, &upstream_routes(addr));
        for path in ["/api/zz", "/api/second", "/api/overflow"] {
            let mut c = Client::new(g.addr);
            c.send(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            let r = c.read(false).unwrap_or_else(|| panic!("{path}: no response"));
            assert_eq!(r.status, 502, "{path}");
            assert_eq!(r.text(), "{\"message\":\"Bad Gateway\"}", "{path}");
            // the client connection is still in sync
            c.send(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(c.read(false).unwrap().text(), "hi", "{path}");
        }
    }

    fn a_body_broken_after_bytes_reached_the_client_closes_the_connection(d) {
        let (addr, _) = piecewise_origin(|_, _| vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n".to_vec(),
            b"zz\r\n".to_vec(),
        ]);
        let g = Gateway::start(d, 1, &upstream_routes(addr));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/x HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut raw = Vec::new();
        let _ = c.stream.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw).into_owned();
        // the head and the first chunk went out; then only the close can tell: no last chunk
        assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
        assert!(raw.ends_with("\r\n\r\n3\r\nabc\r\n"), "{raw}");
    }

    fn an_origin_closing_before_the_first_body_byte_is_a_502(d) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut buf = Vec::new();
                if read_head(&mut s, &mut buf).is_some() {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
                    thread::sleep(Duration::from_millis(100));
                }
            }
        });
        let g = Gateway::start(d, 1, &upstream_routes(addr));
        let r = get(g.addr, "/api/x");
        assert_eq!(r.status, 502);
        assert_eq!(r.text(), "{\"message\":\"Bad Gateway\"}");
    }

    // ------------------------------------------------------------------ A5: trailers

    fn request_trailers_are_filtered_and_malformed_ones_refused(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &upstream_routes(o.addr));
        let trailers = "X-Checksum: 42\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\
Host: evil\r\nAuthorization: Bearer x\r\nConnection: close\r\nX-Ok: 1\r\n";
        // whole body in the first read, and streamed (the trailer in a later read)
        for split in [false, true] {
            let mut c = Client::new(g.addr);
            c.send(b"POST /api/t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
            if split {
                thread::sleep(Duration::from_millis(50));
            }
            c.send(format!("0\r\n{trailers}\r\n").as_bytes());
            let r = c.read(false).unwrap();
            assert_eq!(r.status, 200, "split {split}");
            let q = o.requests().pop().unwrap();
            let raw = String::from_utf8_lossy(&q.raw).into_owned();
            let body_start = raw.find("\r\n\r\n").unwrap() + 4;
            assert_eq!(
                &raw[body_start..],
                "5\r\nhello\r\n0\r\nX-Checksum: 42\r\nX-Ok: 1\r\n\r\n",
                "split {split}"
            );
            assert_eq!(q.header_count("host"), 1);
        }
        let seen = o.requests().len();
        // a trailer line that is no field line (a smuggled request line) is a 400, the
        // connection closes, and the origin never gets a complete request
        for split in [false, true] {
            let mut c = Client::new(g.addr);
            c.send(b"POST /api/t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
            if split {
                thread::sleep(Duration::from_millis(50));
            }
            c.send(b"0\r\nGET /api/smuggled HTTP/1.1\r\nHost: h\r\n\r\n");
            let r = c.read(false).unwrap();
            assert_eq!(r.status, 400, "split {split}");
            assert_eq!(r.text(), "{\"message\":\"Bad Request\"}");
            assert!(c.is_closed(), "split {split}");
        }
        thread::sleep(Duration::from_millis(100));
        assert_eq!(o.requests().len(), seen, "nothing forwarded after a malformed trailer");
    }

    fn response_trailers_are_filtered(d) {
        let o = Origin::start(|_| {
            Reply::Raw(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\
Set-Cookie: a=b\r\nX-T: 1\r\nContent-Length: 3\r\nLocation: /x\r\n\r\n"
                    .to_vec(),
            )
        });
        let g = Gateway::start(d, 1, &upstream_routes(o.addr));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/t HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        let mut raw = Vec::new();
        let _ = c.stream.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw).into_owned();
        assert!(raw.ends_with("\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"), "{raw}");
    }

    // ------------------------------------------------------------------ A4: Host for HTTP/1.0

    fn http10_without_host_is_forwarded_with_the_listener_address(d) {
        let o = Origin::echo();
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\nworkers = 1\ndriver = \"{d}\"\n"
        ) + &upstream_routes(o.addr);
        let g = Gateway::from_toml(&text);
        let addrs = g.handle().local_addrs();
        assert_eq!(addrs.len(), 2);
        for &addr in addrs.iter() {
            let r = roundtrip(addr, b"GET /api/x HTTP/1.0\r\n\r\n");
            assert_eq!(r.status, 200);
            let q = o.requests().pop().unwrap();
            assert_eq!(q.version, 1, "forwarded as HTTP/1.1");
            assert_eq!(q.header_count("host"), 1, "{}", q.head_text());
            assert_eq!(q.header("host"), Some(addr.to_string().as_str()), "{}", q.head_text());
        }
        // a client's Host is kept, once
        let r = roundtrip(g.addr, b"GET /api/y HTTP/1.0\r\nHost: c.example\r\n\r\n");
        assert_eq!(r.status, 200);
        let q = o.requests().pop().unwrap();
        assert_eq!(q.header_count("host"), 1);
        assert_eq!(q.header("host"), Some("c.example"));
    }

    // ------------------------------------------------------------------ A3: lingering close

    fn an_error_during_an_upload_is_read_by_the_client(d) {
        let o = Origin::echo();
        let text = server_toml(d, 1, "")
            + "[server.limits]\nmax_body_bytes = 1000\n"
            + &upstream_routes(o.addr)
            + "[[route]]\nkey = \"ANY /mock\"\nmock = { status = 200, body = \"m\" }\n";
        let g = Gateway::from_toml(&text);
        const LEN: usize = 20_000_000;
        // repeated: without a lingering close the reset wins the race most of the time
        for i in 0..4 {
            // a declared body over the limit: 413 from the head, the body still coming
            let head = format!("POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: {LEN}\r\n\r\n");
            let (r, eof, sent) = upload_then_read(g.addr, head.as_bytes(), LEN);
            assert_eq!(sent, LEN, "run {i}: the upload was cut by a reset");
            let r = r.unwrap_or_else(|| panic!("run {i}: the 413 was lost (reset)"));
            assert_eq!(r.status, 413, "run {i}");
            assert_eq!(r.text(), "{\"message\":\"Request Entity Too Large\"}");
            assert_eq!(r.header("connection"), Some("close"));
            assert!(eof, "run {i}: the response must be followed by a clean end of stream");
            // a chunked body that passes the limit while streaming to the origin
            let head = b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n";
            let (r, eof, sent) = upload_then_read(g.addr, head, LEN);
            assert_eq!(sent, LEN, "run {i}: the upload was cut by a reset");
            let r = r.unwrap_or_else(|| panic!("run {i}: the chunked 413 was lost (reset)"));
            assert_eq!(r.status, 413, "run {i}");
            assert!(eof, "run {i}");
        }
        let text = server_toml(d, 1, "")
            + &upstream_routes(o.addr)
            + "[[route]]\nkey = \"ANY /mock\"\nmock = { status = 200, body = \"m\" }\n";
        let g = Gateway::from_toml(&text);
        for i in 0..4 {
            // a mock answers without reading a (permitted) 8 MB body
            let len = 8_000_000;
            let head = format!("POST /mock HTTP/1.1\r\nHost: h\r\nContent-Length: {len}\r\n\r\n");
            let (r, eof, sent) = upload_then_read(g.addr, head.as_bytes(), len);
            assert_eq!(sent, len, "run {i}: the upload was cut by a reset");
            let r = r.unwrap_or_else(|| panic!("run {i}: the mock response was lost (reset)"));
            assert_eq!((r.status, r.text().as_str()), (200, "m"), "run {i}");
            assert!(eof, "run {i}");
        }
        assert!(o.requests().is_empty());
    }

    fn a_lingering_close_is_bounded_in_bytes_and_time(d) {
        let o = Origin::echo();
        // byte cap: the server stops discarding (and closes) long before the upload ends
        let text = server_toml(d, 1, "")
            + "[server.limits]\nmax_body_bytes = 1000\nmax_linger_bytes = 100000\n"
            + "[server.timeouts]\nlinger_ms = 60000\n"
            + &upstream_routes(o.addr);
        let g = Gateway::from_toml(&text);
        const LEN: usize = 256 * 1024 * 1024;
        let head = format!("POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: {LEN}\r\n\r\n");
        let mut c = Client::new(g.addr);
        c.send(head.as_bytes());
        let r = c.read(false).expect("the 413");
        assert_eq!(r.status, 413);
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < LEN && c.stream.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        // what the kernel buffers on both sides is far below the upload
        assert!(sent < LEN / 4, "the server kept reading: {sent} bytes taken");
        // time bound: a client that trickles keeps the connection no longer than linger_ms
        let text = server_toml(d, 1, "")
            + "[server.limits]\nmax_body_bytes = 1000\n"
            + "[server.timeouts]\nlinger_ms = 300\n"
            + &upstream_routes(o.addr);
        let g = Gateway::from_toml(&text);
        let mut c = Client::new(g.addr);
        c.send(b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000000\r\n\r\n");
        assert_eq!(c.read(false).expect("the 413").status, 413);
        let t = std::time::Instant::now();
        let mut broken = false;
        while t.elapsed() < Duration::from_secs(10) {
            if c.stream.write_all(b"abcd").is_err() {
                broken = true;
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        assert!(broken, "the server must close a lingering connection after linger_ms");
        assert!(o.requests().is_empty());
    }


    // ------------------------------------------------------------------ review: desync

    fn head_to_an_origin_that_sends_a_body_anyway_keeps_every_stream_in_sync(d) {
        // a HEAD response ends at its head whatever its framing fields say (RFC 9112 §6.3
        // item 1); body bytes an origin sends anyway, in the same packet or a later one, must
        // reach neither this client nor the next request on that origin connection
        let (addr, heads) = piecewise_origin(|target, _| match target {
            "/api/same" => vec![b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec()],
            "/api/later" => vec![
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged".to_vec(),
            ],
            _ => vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()],
        });
        let g = Gateway::start(d, 1, &upstream_routes(addr));
        for p in ["/api/same", "/api/later"] {
            let mut c = Client::new(g.addr);
            c.send(format!("HEAD {p} HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            let r = c.read(true).unwrap();
            assert_eq!(r.status, 200, "{p}");
            assert!(!r.head.to_ascii_lowercase().contains("transfer-encoding"), "{p}: {}", r.head);
            assert_eq!(c.read(false).unwrap().text(), "hi", "{p}");
            thread::sleep(Duration::from_millis(200)); // the later bytes reach the pooled connection
            c.send(b"GET /api/x HTTP/1.1\r\nHost: h\r\n\r\n");
            let r = c.read(false).unwrap();
            assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{p}");
        }
        // each HEAD's connection was left: both carried bytes after the response
        let conns: Vec<usize> = heads.lock().unwrap().iter().map(|(c, _)| *c).collect();
        assert_eq!(conns.len(), 4, "{conns:?}");
        assert_ne!(conns[0], conns[1], "{conns:?}");
        assert_ne!(conns[2], conns[3], "{conns:?}");
    }

    fn a_head_response_forwards_only_a_valid_content_length(d) {
        // a HEAD response's Content-Length is metadata (RFC 9110 §8.6, §9.3.2): forwarded as
        // one valid value (duplicates "5, 5" collapsed, as §8.6 requires of a recipient that
        // does not refuse them), and not at all when invalid or conflicting
        let (addr, _) = piecewise_origin(|target, _| {
            let cl = match target {
                "/api/dup" => "Content-Length: 5, 5\r\nContent-Length: 5",
                "/api/list" => "Content-Length: 5, 6",
                "/api/two" => "Content-Length: 5\r\nContent-Length: 6",
                "/api/bad" => "Content-Length: abc",
                "/api/neg" => "Content-Length: -1",
                _ => "Content-Length: 5",
            };
            vec![format!("HTTP/1.1 200 OK\r\n{cl}\r\nX-T: {target}\r\n\r\n").into_bytes()]
        });
        let g = Gateway::start(d, 1, &upstream_routes(addr));
        let mut c = Client::new(g.addr);
        for (path, want) in [
            ("/api/ok", Some("5")),
            ("/api/dup", Some("5")),
            ("/api/list", None),
            ("/api/two", None),
            ("/api/bad", None),
            ("/api/neg", None),
        ] {
            c.send(format!("HEAD {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            let r = c.read(true).unwrap();
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(r.header("x-t"), Some(path), "{path}: the stream is in sync");
            let lines = r.head.to_ascii_lowercase().matches("content-length").count();
            assert_eq!(lines, usize::from(want.is_some()), "{path}: {}", r.head);
            assert_eq!(r.header("content-length"), want, "{path}: {}", r.head);
        }
        c.send(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "hi");
    }

    fn a_408_to_a_slow_head_request_has_no_content(d) {
        // the head deadline passes while the client is still sending a HEAD request's head:
        // the 408 must carry no content (RFC 9110 §9.3.2), which the gateway can only know if
        // the bytes received so far survive the timed-out read
        let g = Gateway::start_with(d, 1, "[server.timeouts]\nheader_read_ms = 300\n", BODILESS_MOCKS);
        for (start, head_only) in [(&b"HEAD /hello HTTP/1.1\r\nHo"[..], true), (&b"GET /hello HTTP/1.1\r\nHo"[..], false)] {
            let mut c = Client::new(g.addr);
            c.send(start);
            let mut raw = Vec::new();
            let _ = c.stream.read_to_end(&mut raw);
            let raw = String::from_utf8_lossy(&raw).into_owned();
            assert!(raw.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{raw}");
            let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let want = if head_only { "" } else { "{\"message\":\"Request Timeout\"}" };
            assert_eq!(body, want, "{raw}");
        }
    }

    fn interim_responses_and_bad_framing_keep_the_client_stream_in_sync(d) {
        let (addr, heads) = piecewise_origin(|target, _| match target {
            // 100 and 103 are skipped; the 204 is the answer (one packet)
            "/api/a" => vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_vec()],
            // a 304 with Transfer-Encoding (RFC 9110 §6.4.1: no body, no framing), after a 100
            "/api/b" => vec![
                b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
                b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            ],
            // both Content-Length and Transfer-Encoding (RFC 9112 §6.3 item 3)
            "/api/both" => vec![b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec()],
            _ => vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()],
        });
        let g = Gateway::start(d, 1, &upstream_routes(addr));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/a HTTP/1.1\r\nHost: h\r\n\r\nGET /api/b HTTP/1.1\r\nHost: h\r\n\r\n\
GET /api/x HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_bodiless(&r, 204);
        assert_eq!(r.header("link"), None, "an interim response's fields are not merged");
        assert_bodiless(&c.read(false).unwrap(), 304);
        assert_eq!(c.read(false).unwrap().text(), "ok");
        assert_eq!(c.read(false).unwrap().text(), "hi");
        c.send(b"GET /api/both HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!((r.status, r.text().as_str()), (502, "{\"message\":\"Bad Gateway\"}"));
        assert_eq!(c.read(false).unwrap().text(), "hi");
        c.send(b"GET /api/x HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "ok");
        // the 204 after interim responses left its connection in sync; the 304 with framing and
        // the response with both framings did not
        let conns: Vec<usize> = heads.lock().unwrap().iter().map(|(c, _)| *c).collect();
        assert_eq!(conns.len(), 5, "{conns:?}");
        assert_eq!(conns[0], conns[1], "{conns:?}");
        assert_ne!(conns[1], conns[2], "{conns:?}");
        assert_ne!(conns[3], conns[4], "{conns:?}");
    }

    fn a_late_first_body_byte_still_reaches_the_client(d) {
        // the head is held until the first body step decodes: an origin that sends its head,
        // then the body a second later, is waited for (within the response timeout), not cut
        let mut pieces = vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()];
        pieces.extend(std::iter::repeat_n(Vec::new(), 9)); // nine more 100 ms pauses
        pieces.push(b"5\r\nhello\r\n0\r\n\r\n".to_vec());
        let (addr, _) = piecewise_origin(move |_, _| pieces.clone());
        let g = Gateway::start(d, 1, &upstream_routes(addr));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/slow HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        assert_eq!(c.read(false).unwrap().text(), "hi");
    }

    fn malformed_or_oversized_trailers_are_refused_both_ways(d) {
        let section = |lines: usize| {
            let mut t = b"0\r\n".to_vec();
            for i in 0..lines {
                t.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
            }
            t.extend_from_slice(b"\r\n");
            t
        };
        let mut huge = b"0\r\nX-A: ".to_vec();
        huge.resize(100_000, b'a');
        huge.extend_from_slice(b"\r\n\r\n");
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("obs-fold", b"0\r\nX-A: 1\r\n folded\r\n\r\n".to_vec(), 400),
            ("bare LF", b"0\r\nX-A: 1\n\r\n".to_vec(), 400),
            ("NUL", b"0\r\nX-A: 1\0\r\n\r\n".to_vec(), 400),
            ("no name", b"0\r\n: v\r\n\r\n".to_vec(), 400),
            ("500 fields", section(500), 431),
            ("100 kB", huge, 431),
        ];
        // responses: each is a 502 (nothing reached the client yet), the client stays in sync
        let bodies: Vec<(String, Vec<u8>)> = cases
            .iter()
            .map(|(name, t, _)| {
                let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec();
                r.extend_from_slice(t);
                (format!("/api/{}", name.replace(' ', "-")), r)
            })
            .collect();
        let (addr, _) = piecewise_origin(move |target, _| {
            let found = bodies.iter().find(|(p, _)| p == target);
            vec![found.map_or_else(|| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(), |(_, r)| r.clone())]
        });
        let g = Gateway::start(d, 1, &upstream_routes(addr));
        for (name, _, _) in &cases {
            let mut c = Client::new(g.addr);
            let path = format!("/api/{}", name.replace(' ', "-"));
            if *name == "100 kB" {
                // more than one read: "hello" went out before the trailer failed, so only the
                // close can tell (no last chunk), as for any body broken after bytes went out
                c.send(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
                let mut raw = Vec::new();
                let _ = c.stream.read_to_end(&mut raw);
                let raw = String::from_utf8_lossy(&raw).into_owned();
                assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
                assert!(raw.ends_with("\r\n\r\n5\r\nhello\r\n"), "{raw}");
                continue;
            }
            c.send(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            let r = c.read(false).unwrap();
            assert_eq!((r.status, r.text().as_str()), (502, "{\"message\":\"Bad Gateway\"}"), "{name}");
            assert_eq!(c.read(false).unwrap().text(), "hi", "{name}");
        }
        // requests, buffered whole or streamed past request_buffer_bytes: 400 or 431, the
        // connection closes, and the origin never sees a complete request
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &upstream_routes(o.addr));
        for (name, trailer, status) in &cases {
            for streamed in [false, true] {
                let mut c = Client::new(g.addr);
                c.send(b"POST /api/t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
                if streamed {
                    c.send(format!("{:x}\r\n", 200_000).as_bytes());
                    c.send(&vec![b'b'; 200_000]);
                    c.send(b"\r\n");
                }
                thread::sleep(Duration::from_millis(20));
                let _ = c.stream.write_all(trailer);
                let r = c.read(false).unwrap_or_else(|| panic!("{name}: no answer"));
                assert_eq!(r.status, *status, "{name} streamed {streamed}");
                assert!(c.is_closed(), "{name} streamed {streamed}");
            }
        }
        thread::sleep(Duration::from_millis(100));
        assert!(o.requests().is_empty(), "a request with a bad trailer completed at the origin");
    }

    // ------------------------------------------------------------------ review: lingering

    fn a_lingering_connection_neither_blocks_others_nor_holds_up_shutdown(d) {
        let o = Origin::echo();
        let text = server_toml(d, 1, "")
            + "[server.limits]\nmax_body_bytes = 1000\n"
            + "[server.timeouts]\nlinger_ms = 60000\nshutdown_ms = 1000\n"
            + &upstream_routes(o.addr);
        let g = Gateway::from_toml(&text);
        // a client that got its 413 and neither sends nor closes: the connection lingers
        let mut c = Client::new(g.addr);
        c.send(b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000000\r\n\r\n");
        assert_eq!(c.read(false).expect("the 413").status, 413);
        // the one worker serves others meanwhile
        for _ in 0..3 {
            assert_eq!(get(g.addr, "/hello").text(), "hi");
            assert_eq!(get(g.addr, "/api/y").text(), "GET /api/y");
        }
        // a shutdown does not wait for the linger (60 s); the connection ends with it
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            g.stop();
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("shutdown waited for a lingering connection");
        assert!(c.is_closed());
    }

}
