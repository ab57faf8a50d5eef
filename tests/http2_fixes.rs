//! HTTP/2 review fixes, end to end on real sockets (both drivers, h2c and TLS via
//! [`h2_modes!`]): a declared-length body never reaches the origin complete before END_STREAM
//! (RFC 9113 §8.1.1), a reset stream stops its origin exchange, the concurrent-stream cap
//! counts streams whose tasks still run, drain sends GOAWAY.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::h2client::{H2, H2C};
use common::*;

/// An origin that accepts one connection, reads the request head and then counts body bytes
/// until the gateway closes the connection; sends the count (never answers).
fn counting_origin() -> (SocketAddr, mpsc::Receiver<(usize, usize)>, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let seen = Arc::new(AtomicUsize::new(0));
    let live = seen.clone();
    thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut all = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut head = None;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
            if head.is_none() {
                head = find(&all, b"\r\n\r\n").map(|i| i + 4);
            }
            live.store(all.len() - head.unwrap_or(all.len()), Ordering::Release);
        }
        let h = head.unwrap_or(all.len());
        let _ = tx.send((h, all.len() - h));
    });
    (addr, rx, seen)
}

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn gateway(d: &str, origin: SocketAddr, extra: &str) -> Gateway {
    let routes = upstream_toml("u", &[origin], "response_timeout_ms = 30000")
        + "\n[[route]]\nkey = \"ANY /api/{proxy+}\"\nupstream = \"u\"\n\n[[route]]\nkey = \"GET /hello\"\nmock = { status = 200, body = \"hi\" }\n";
    Gateway::start_with(
        d,
        1,
        &format!("{H2C}\n[server.limits]\nrequest_buffer_bytes = 0\n{extra}"),
        &routes,
    )
}

const DECLARED: usize = 300_000;

/// What the client does once it sent the whole declared body (without END_STREAM) and the
/// origin holds all the gateway forwards.
#[derive(Clone, Copy)]
enum Then {
    Reset,
    /// One more byte in its own DATA frame: more than declared (§8.1.1).
    ExtraByte,
}

/// Sends a POST declaring [`DECLARED`] bytes, all of them without END_STREAM, then `then`;
/// returns what the origin received before the gateway closed its connection.
fn send_then(d: &str, then: Then) -> usize {
    let sent = DECLARED;
    let (addr, rx, seen) = counting_origin();
    let g = gateway(d, addr, "");
    let c = H2::connect(g.addr);
    let req = c.req(
        "POST",
        "/api/up",
        &[("content-length", &DECLARED.to_string())],
    );
    let send = c.send.clone();
    let mut stream = c.rt.block_on(async move {
        let mut send = send.ready().await.unwrap();
        let (_resp, mut stream) = send.send_request(req, false).unwrap();
        let mut b = Bytes::from(vec![b'x'; sent]);
        while !b.is_empty() {
            stream.reserve_capacity(b.len());
            let cap = tokio::time::timeout(
                Duration::from_secs(20),
                std::future::poll_fn(|cx| stream.poll_capacity(cx)),
            )
            .await
            .expect("window in time");
            let Some(Ok(cap)) = cap else { break };
            let part = b.split_to(cap.min(b.len()));
            if stream.send_data(part, false).is_err() {
                break;
            }
        }
        stream
    });
    {
        // the origin got everything the gateway will forward before the end of the stream
        // (the client's runtime runs meanwhile: it writes what was queued)
        c.rt.block_on(async {
            let until = Instant::now() + Duration::from_secs(20);
            while seen.load(Ordering::Acquire) < DECLARED - 1 {
                assert!(Instant::now() < until, "the body did not reach the origin");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        match then {
            Then::Reset => stream.send_reset(h2::Reason::CANCEL),
            Then::ExtraByte => {
                let _ = stream.send_data(Bytes::from_static(b"y"), true);
            }
        }
    }
    // the client's runtime runs (it writes the reset, the extra byte) until the origin's end
    let done = c.rt.block_on(async {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            match rx.try_recv() {
                Ok(v) => return v,
                Err(mpsc::TryRecvError::Empty) if Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(e) => panic!("the gateway did not close the origin connection: {e}"),
            }
        }
    });
    let (head, body) = done;
    assert!(head > 0, "the origin got the request head");
    drop(c);
    body
}

/// An origin that reads each request head and never answers; reports each connection's close
/// (by the gateway) on the channel.
fn silent_origin() -> (SocketAddr, mpsc::Receiver<&'static str>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let tx = tx.clone();
            thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut all = Vec::new();
                let mut buf = [0u8; 4096];
                let mut told = false;
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => all.extend_from_slice(&buf[..n]),
                        Err(_) => return, // our own timeout: no close to report
                    }
                    if !told && find(&all, b"\r\n\r\n").is_some() {
                        told = true;
                        let _ = tx.send("head");
                    }
                }
                let _ = tx.send("closed");
            });
        }
    });
    (addr, rx)
}

/// Drives the client's runtime until `rx` gives a message (bounded: `within`).
fn next_msg(c: &H2, rx: &mpsc::Receiver<&'static str>, within: Duration) -> Option<&'static str> {
    c.rt.block_on(async {
        let until = Instant::now() + within;
        loop {
            match rx.try_recv() {
                Ok(v) => return Some(v),
                Err(mpsc::TryRecvError::Empty) if Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(_) => return None,
            }
        }
    })
}

h2_modes! {
    fn a_reset_stream_releases_its_origin_connection_at_once(d) {
        // the origin never answers; the response timeout (30 s) is far away
        let (addr, rx) = silent_origin();
        let g = gateway(d, addr, "");
        let mut c = H2::connect(g.addr);
        let req = c.req("GET", "/api/slow", &[]);
        let send = c.send.clone();
        let (resp, mut stream) = c.rt.block_on(async move {
            let mut send = send.ready().await.unwrap();
            send.send_request(req, true).unwrap()
        });
        assert_eq!(next_msg(&c, &rx, Duration::from_secs(20)), Some("head"));
        stream.send_reset(h2::Reason::CANCEL);
        drop(resp);
        // the stream's exchange stops: the gateway closes the origin connection now, not
        // when the response timeout fires
        assert_eq!(
            next_msg(&c, &rx, Duration::from_secs(10)),
            Some("closed"),
            "the origin connection was released when the client reset the stream"
        );
        assert_eq!(c.get("/hello").status, 200, "the connection goes on");
    }


    fn a_declared_body_then_a_reset_never_completes_upstream(d) {
        let got = send_then(d, Then::Reset);
        assert!(got < DECLARED, "the origin got a complete body: {got}");
    }

    fn a_declared_body_with_one_extra_byte_never_completes_upstream(d) {
        let got = send_then(d, Then::ExtraByte);
        assert!(got < DECLARED, "the origin got a complete body: {got}");
    }
}

/// A raw h2c client frame: length, type, flags, stream, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut f = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK literal (never indexed) with an indexed name.
fn lit(index: u8, value: &str) -> Vec<u8> {
    let mut v = vec![0x10 | index, value.len() as u8];
    if index >= 15 {
        v = vec![0x1f, index - 15, value.len() as u8];
    }
    v.extend_from_slice(value.as_bytes());
    v
}

/// A frame read: type, flags, stream, payload.
type RawFrame = (u8, u8, u32, Vec<u8>);

/// Reads frames until one satisfies `f` (bounded by the socket's read timeout); the frames
/// read are returned as (type, flags, stream, payload).
fn read_until(
    s: &mut std::net::TcpStream,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(u8, u8, u32, &[u8]) -> bool,
) -> Option<Vec<RawFrame>> {
    let mut seen = Vec::new();
    loop {
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            let hit = f(kind, flags, stream, &payload);
            seen.push((kind, flags, stream, payload));
            if hit {
                return Some(seen);
            }
        }
        let mut chunk = [0u8; 16384];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

mod raw {
    use super::*;

    both_drivers! {
        fn a_padded_body_within_one_window_is_not_stalled(d) {
            use std::io::Write;
            let o = Origin::echo();
            let g = gateway(d, o.addr, "");
            let mut s = std::net::TcpStream::connect(g.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
            s.write_all(&frame(4, 0, 0, &[])).unwrap();
            // a POST declaring 50 000 bytes (more than half the 65 535-byte window, less than it)
            const LEN: usize = 50_000;
            let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
            block.extend(lit(4, "/api/padded"));
            block.extend(lit(1, "localhost"));
            block.extend(lit(28, &LEN.to_string())); // content-length
            s.write_all(&frame(1, 0x4, 1, &block)).unwrap();
            // 500 data bytes + 255 of padding per frame, within the windows the gateway gives
            let (mut conn_window, mut stream_window) = (65_535i64, 65_535i64);
            let mut buf = Vec::new();
            let mut sent = 0;
            while sent < LEN {
                let n = 500.min(LEN - sent);
                let cost = (n + 256) as i64;
                while conn_window < cost || stream_window < cost {
                    let got = read_until(&mut s, &mut buf, |k, _, _, _| k == 8);
                    let frames = got.expect("a WINDOW_UPDATE: the padded body must not stall");
                    for (k, _, id, p) in frames {
                        if k == 8 && p.len() == 4 {
                            let inc = i64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
                            if id == 0 { conn_window += inc } else if id == 1 { stream_window += inc }
                        }
                    }
                }
                let mut payload = vec![255u8];
                payload.extend(std::iter::repeat_n(b'x', n));
                payload.extend(std::iter::repeat_n(0u8, 255));
                let end = if sent + n == LEN { 0x1 } else { 0 };
                s.write_all(&frame(0, 0x8 | end, 1, &payload)).unwrap();
                conn_window -= cost;
                stream_window -= cost;
                sent += n;
            }
            // the response HEADERS (type 1) on stream 1
            let got = read_until(&mut s, &mut buf, |k, _, id, _| k == 1 && id == 1);
            assert!(got.is_some(), "the response came");
            let r = o.requests();
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].body.len(), LEN);
        }
    }

    /// Connects a raw h2c client: preface, empty SETTINGS, and (when `ack`) the acknowledgment of
    /// the gateway's SETTINGS.
    fn raw_client(addr: SocketAddr, ack: bool) -> std::net::TcpStream {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
        s.write_all(&frame(4, 0, 0, &[])).unwrap();
        if ack {
            s.write_all(&frame(4, 0x1, 0, &[])).unwrap();
        }
        s
    }

    /// The header block of a GET for `path`.
    fn get_block(path: &str) -> Vec<u8> {
        let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
        block.extend(lit(4, path));
        block.extend(lit(1, "localhost"));
        block
    }

    /// The GOAWAY's error code (type 7: last stream id, then the code).
    fn goaway_code(kind: u8, p: &[u8]) -> Option<u32> {
        (kind == 7 && p.len() >= 8).then(|| u32::from_be_bytes([p[4], p[5], p[6], p[7]]))
    }

    mod bounds {
        use super::*;

        both_drivers! {
            fn a_header_block_left_unfinished_gets_goaway(d) {
                use std::io::Write;
                let o = Origin::echo();
                let g = gateway(d, o.addr, "[server.timeouts]\nheader_read_ms = 300\nkeepalive_idle_ms = 60000");
                let mut s = raw_client(g.addr, true);
                let mut buf = Vec::new();
                s.write_all(&frame(1, 0x5, 1, &get_block("/hello"))).unwrap();
                let got = read_until(&mut s, &mut buf, |k, _, id, _| k == 1 && id == 1);
                assert!(got.is_some(), "the first request was answered");
                // HEADERS without END_HEADERS, and no CONTINUATION ever
                s.write_all(&frame(1, 0x1, 3, &get_block("/hello"))).unwrap();
                let started = Instant::now();
                let got = read_until(&mut s, &mut buf, |k, _, _, p| goaway_code(k, p).is_some());
                let frames = got.expect("a GOAWAY for the unfinished header block");
                let (k, _, _, p) = frames.last().unwrap();
                assert_eq!(goaway_code(*k, p), Some(1), "PROTOCOL_ERROR");
                assert!(started.elapsed() < Duration::from_secs(10), "bounded by header_read_ms, not the idle timeout");
            }

            fn a_malformed_request_head_is_counted_as_a_reset(d) {
            use std::io::Write;
            let o = Origin::echo();
            let g = gateway(d, o.addr, "[admin]\nlisten = \"127.0.0.1:0\"");
            let mut s = raw_client(g.addr, true);
            let mut buf = Vec::new();
            // no :path: malformed (RFC 9113 §8.3.1), a stream error before any request
            let mut block = vec![0x82, 0x86];
            block.extend(lit(1, "localhost"));
            s.write_all(&frame(1, 0x5, 1, &block)).unwrap();
            let got = read_until(&mut s, &mut buf, |k, _, id, _| k == 3 && id == 1);
            assert!(got.is_some(), "RST_STREAM for the malformed head");
            let admin = g.handle().admin_addr().unwrap();
            let series = "tollgate_http2_streams_reset_total ";
            let until = Instant::now() + Duration::from_secs(20);
            loop {
                let text = get(admin, "/metrics").text();
                let n: u64 = text
                    .lines()
                    .find_map(|l| l.strip_prefix(series)?.parse().ok())
                    .unwrap_or(0);
                if n == 1 {
                    break;
                }
                assert!(Instant::now() < until, "the reset was not counted: {n}");
                thread::sleep(Duration::from_millis(20));
            }
        }

        fn an_idle_connection_gets_goaway_when_the_gateway_drains(d) {
            use std::io::Write;
            let o = Origin::echo();
            let g = gateway(d, o.addr, "[server.timeouts]\nkeepalive_idle_ms = 60000");
            let mut s = raw_client(g.addr, true);
            let mut buf = Vec::new();
            s.write_all(&frame(1, 0x5, 1, &get_block("/hello"))).unwrap();
            let got = read_until(&mut s, &mut buf, |k, _, id, _| k == 1 && id == 1);
            assert!(got.is_some(), "the request was answered");
            // the connection is idle now; the drain must still say GOAWAY (not just close)
            let stopper = thread::spawn(move || g.stop());
            let got = read_until(&mut s, &mut buf, |k, _, _, p| goaway_code(k, p).is_some());
            let frames = got.expect("a GOAWAY before the close");
            let (k, _, _, p) = frames.last().unwrap();
            assert_eq!(goaway_code(*k, p), Some(0), "NO_ERROR");
            stopper.join().unwrap();
        }

        fn unacknowledged_settings_get_goaway_settings_timeout(d) {
                use std::io::Write;
                let o = Origin::start(|_| Reply::After(Duration::from_secs(30), Box::new(Reply::ok("late"))));
                let g = gateway(d, o.addr, "");
                // the client never acknowledges the gateway's SETTINGS, and keeps a stream open
                let mut s = raw_client(g.addr, false);
                let mut buf = Vec::new();
                s.write_all(&frame(1, 0x5, 1, &get_block("/api/slow"))).unwrap();
                let got = read_until(&mut s, &mut buf, |k, _, _, p| goaway_code(k, p).is_some());
                let frames = got.expect("a GOAWAY");
                let (k, _, _, p) = frames.last().unwrap();
                assert_eq!(goaway_code(*k, p), Some(4), "SETTINGS_TIMEOUT");
            }
        }
    }
}
