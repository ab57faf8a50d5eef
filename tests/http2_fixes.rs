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
