//! WebSocket proxying (RFC 6455) over HTTP/1.1 on both drivers, plain and TLS: echo through
//! the gateway with tungstenite as client and origin, close handshakes both ways, refusals
//! (origin 4xx, a wrong accept value, malformed handshakes, routes without `websocket`), the
//! idle timeout, auth and throttling per connection, the access log line and the open
//! connections gauge, drain on shutdown, bytes sent around the 101 kept, and Python's
//! `websockets` as an independent client.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::server::{ErrorResponse, Request, Response as WsResponse};
use tungstenite::{Message, WebSocket};

/// What the tungstenite origin does on each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Echo every text and binary message.
    Echo,
    /// Echo the first message, then start the close handshake itself.
    CloseAfterFirst,
    /// Refuse the handshake with a 403.
    Refuse,
}

/// The handshake heads an origin received, each as (lowercase name, value) pairs.
type Heads = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A WebSocket origin (tungstenite's server) on its own threads, counting what it saw.
struct WsOrigin {
    addr: SocketAddr,
    /// The handshake request heads it received (names lowercase).
    heads: Heads,
    accepted: Arc<AtomicUsize>,
    /// Connections whose TCP stream ended from the gateway's side (EOF read after the close).
    ended: Arc<AtomicUsize>,
}

impl WsOrigin {
    fn start(mode: Mode) -> WsOrigin {
        WsOrigin::start_tls(mode, None)
    }

    /// Over TLS with `tls` (a rustls server config), when given.
    fn start_tls(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> WsOrigin {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let o = WsOrigin {
            addr,
            heads: Arc::default(),
            accepted: Arc::default(),
            ended: Arc::default(),
        };
        let (heads, accepted, ended) = (o.heads.clone(), o.accepted.clone(), o.ended.clone());
        thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                accepted.fetch_add(1, Ordering::AcqRel);
                let (heads, ended, tls) = (heads.clone(), ended.clone(), tls.clone());
                thread::spawn(move || {
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    let raw = s.try_clone().unwrap();
                    match tls {
                        None => serve_ws(s, raw, mode, &heads, &ended),
                        Some(cfg) => {
                            let conn = rustls::ServerConnection::new(cfg).unwrap();
                            let s = rustls::StreamOwned::new(conn, s);
                            serve_ws(s, raw, mode, &heads, &ended)
                        }
                    }
                });
            }
        });
        o
    }

    fn head(&self, i: usize) -> Vec<(String, String)> {
        self.heads.lock().unwrap()[i].clone()
    }

    /// Waits (10 s at most) until `n` connections ended from the gateway's side.
    fn wait_ended(&self, n: usize) {
        let t = Instant::now();
        while self.ended.load(Ordering::Acquire) < n {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "origin connections did not end"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve_ws<S: Read + Write>(
    s: S,
    raw: TcpStream,
    mode: Mode,
    heads: &Mutex<Vec<Vec<(String, String)>>>,
    ended: &AtomicUsize,
) {
    #[allow(clippy::result_large_err)] // tungstenite's callback signature
    let cb = |req: &Request, resp: WsResponse| -> Result<WsResponse, ErrorResponse> {
        let h = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        heads.lock().unwrap().push(h);
        let mut resp = resp;
        if req.headers().contains_key("sec-websocket-protocol") {
            // picks the first subprotocol offered (RFC 6455 §4.2.2 item 5.5.4)
            resp.headers_mut()
                .insert("sec-websocket-protocol", "chat".parse().unwrap());
        }
        if mode == Mode::Refuse {
            let mut e = ErrorResponse::new(Some("no".into()));
            *e.status_mut() = tungstenite::http::StatusCode::FORBIDDEN;
            return Err(e);
        }
        Ok(resp)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(s, cb) else {
        return;
    };
    let mut first = true;
    loop {
        match ws.read() {
            Ok(m) if m.is_text() || m.is_binary() => {
                if ws.send(m).is_err() {
                    break;
                }
                if mode == Mode::CloseAfterFirst && first {
                    let _ = ws.close(None);
                }
                first = false;
            }
            Ok(_) => {} // ping, pong, close (answered by tungstenite)
            Err(_) => break,
        }
    }
    // the close handshake is over (or the connection broke): the server ends TCP first (RFC
    // 6455 §7.1.1), then sees the gateway's end
    let _ = raw.shutdown(Shutdown::Write);
    let mut raw = raw;
    let mut b = [0u8; 64];
    loop {
        match raw.read(&mut b) {
            Ok(0) => {
                ended.fetch_add(1, Ordering::AcqRel);
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// A tungstenite client through the gateway (TLS in TLS mode), with `extra` fields.
fn ws_connect(
    addr: SocketAddr,
    path: &str,
    extra: &[(&'static str, &str)],
) -> Result<WebSocket<Conn>, u16> {
    let conn = connect(addr);
    let mut req = format!("ws://localhost{path}")
        .into_client_request()
        .unwrap();
    for (k, v) in extra {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tungstenite::client(req, conn) {
        Ok((ws, resp)) => {
            assert_eq!(resp.status(), 101);
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            Err(r.status().as_u16())
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// Sends `m` and expects it back.
fn echo(ws: &mut WebSocket<Conn>, m: Message) {
    ws.send(m.clone()).unwrap();
    let back = ws.read().unwrap();
    assert_eq!(back, m);
}

/// Reads until the close handshake completed and the gateway ended the TCP stream.
fn expect_closed(ws: &mut WebSocket<Conn>) {
    loop {
        match ws.read() {
            Ok(m) if m.is_close() => {}
            Ok(m) => panic!("unexpected message {m:?}"),
            Err(_) => break,
        }
    }
    expect_eof(ws.get_mut());
}

/// The peer ended the stream (EOF or reset) within 10 s.
fn expect_eof(c: &mut Conn) {
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 256];
    loop {
        match c.read(&mut b) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("the gateway did not close the connection")
            }
            Err(_) => return, // reset: ended too
        }
    }
}

fn ws_routes(origin: SocketAddr, route_extra: &str) -> String {
    upstream_toml("u", &[origin], "")
        + &format!(
            "[[route]]\nkey = \"GET /chat\"\nupstream = \"u\"\nwebsocket = true\n{route_extra}\n\
             [[route]]\nkey = \"GET /plain\"\nupstream = \"u\"\n"
        )
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

mod echo {
    use super::*;
    all_transports! {
        fn text_binary_and_a_large_message_echo_then_the_client_closes(d) {
            let o = WsOrigin::start(Mode::Echo);
            let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
            let mut ws = ws_connect(g.addr, "/chat", &[("origin", "https://app.example"), ("sec-websocket-protocol", "chat, superchat")]).unwrap();
            echo(&mut ws, Message::text("hello"));
            echo(&mut ws, Message::binary(vec![0u8, 1, 2, 255]));
            let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
            echo(&mut ws, Message::binary(big));
            echo(&mut ws, Message::text("after"));
            // the origin got the handshake forwarded as any request, plus the upgrade fields
            let h = o.head(0);
            assert_eq!(header(&h, "upgrade"), Some("websocket"), "{h:?}");
            assert_eq!(header(&h, "connection"), Some("upgrade"), "{h:?}");
            assert_eq!(header(&h, "sec-websocket-version"), Some("13"));
            assert_eq!(header(&h, "sec-websocket-key").map(str::len), Some(24));
            assert_eq!(header(&h, "origin"), Some("https://app.example"));
            assert_eq!(header(&h, "sec-websocket-protocol"), Some("chat, superchat"));
            assert_eq!(header(&h, "x-forwarded-for"), Some("127.0.0.1"));
            assert_eq!(header(&h, "x-forwarded-proto"), Some(proto()));
            assert_eq!(header(&h, "via"), Some("1.1 tollgate"));
            // the client starts the close handshake: the close frames cross, both TCP streams end
            ws.close(None).unwrap();
            expect_closed(&mut ws);
            o.wait_ended(1);
            drop(ws);
        }

        fn the_origin_starts_the_close_handshake(d) {
            let o = WsOrigin::start(Mode::CloseAfterFirst);
            let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
            let mut ws = ws_connect(g.addr, "/chat", &[]).unwrap();
            echo(&mut ws, Message::text("one"));
            expect_closed(&mut ws);
            drop(ws); // the client's end reaches the origin
            o.wait_ended(1);
        }

        fn an_origin_refusing_the_upgrade_is_relayed(d) {
            // (that its connection is not pooled: release::a_refused_upgrade_is_not_pooled,
            // with an origin that keeps the connection open)
            let o = WsOrigin::start(Mode::Refuse);
            let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
            assert_eq!(ws_connect(g.addr, "/chat", &[]).err(), Some(403));
            assert_eq!(o.accepted.load(Ordering::Acquire), 1);
        }

        fn an_idle_tunnel_is_closed_on_both_sides(d) {
            let o = WsOrigin::start(Mode::Echo);
            let g = Gateway::start(d, 1, &ws_routes(o.addr, "websocket_idle_ms = 500"));
            let mut ws = ws_connect(g.addr, "/chat", &[]).unwrap();
            echo(&mut ws, Message::text("x"));
            let t = Instant::now();
            expect_eof(ws.get_mut());
            assert!(t.elapsed() >= Duration::from_millis(250), "closed before the idle timeout: {:?}", t.elapsed());
            o.wait_ended(1);
        }
    }
}

/// An origin answering every connection's first request with `reply`, then echoing raw bytes;
/// records what it received.
struct RawOrigin {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<u8>>>,
    ended: Arc<AtomicUsize>,
}

impl RawOrigin {
    fn start(reply: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> RawOrigin {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let got: Arc<Mutex<Vec<u8>>> = Arc::default();
        let ended: Arc<AtomicUsize> = Arc::default();
        let (g2, e2) = (got.clone(), ended.clone());
        let reply = Arc::new(reply);
        thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let (got, ended, reply) = (g2.clone(), e2.clone(), reply.clone());
                thread::spawn(move || {
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    let mut buf = Vec::new();
                    let head = read_head(&mut s, &mut buf).unwrap();
                    got.lock().unwrap().extend_from_slice(&buf); // bytes after the head
                    let key = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("sec-websocket-key: ")
                                .or_else(|| l.strip_prefix("Sec-WebSocket-Key: "))
                        })
                        .unwrap_or("")
                        .to_string();
                    s.write_all(&reply(&key)).unwrap();
                    let mut b = [0u8; 4096];
                    loop {
                        match s.read(&mut b) {
                            Ok(0) => {
                                ended.fetch_add(1, Ordering::AcqRel);
                                return;
                            }
                            Ok(n) => got.lock().unwrap().extend_from_slice(&b[..n]),
                            Err(_) => return,
                        }
                    }
                });
            }
        });
        RawOrigin { addr, got, ended }
    }
}

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2), computed by tungstenite.
fn accept_for(key: &str) -> String {
    tungstenite::handshake::derive_accept_key(key.as_bytes())
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn handshake(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A masked client text frame (RFC 6455 §5.2, §5.3), payload under 126 bytes.
fn client_frame(text: &str) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x81, 0x80 | text.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

mod raw {
    use super::*;
    all_transports! {
    fn bytes_around_the_101_are_not_lost(d) {
        // the origin's first frame comes in the same write as its 101
        let o = RawOrigin::start(|key| {
            let mut r = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
                accept_for(key)
            )
            .into_bytes();
            r.extend_from_slice(b"\x81\x05early");
            r
        });
        let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
        let mut c = connect(g.addr);
        // the client's first frame comes in the same write as its handshake
        let mut first = handshake("/chat", "x-request-id: ws1\r\nSec-WebSocket-Protocol: chat\r\n").into_bytes();
        first.extend(client_frame("piped"));
        c.write_all(&first).unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = find(&got, b"\r\n\r\n") {
                if got.len() >= i + 4 + 7 {
                    break i + 4;
                }
            }
            let n = c.read(&mut b).unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&b[..n]);
        };
        let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{head}");
        for line in [
            "\r\nupgrade: websocket\r\n".to_string(),
            "\r\nconnection: upgrade\r\n".to_string(),
            format!("\r\nSec-WebSocket-Accept: {}\r\n", accept_for(KEY)),
            "\r\nSec-WebSocket-Protocol: chat\r\n".to_string(),
            "\r\nx-request-id: ws1\r\n".to_string(),
        ] {
            assert!(head.contains(&line), "{line:?} in {head}");
        }
        assert!(!head.contains("content-length") && !head.contains("transfer-encoding"), "{head}");
        // the origin's early frame follows the head, nothing else
        assert_eq!(&got[head_end..], b"\x81\x05early");
        let want = client_frame("piped");
        let t = Instant::now();
        while o.got.lock().unwrap().as_slice() != want.as_slice() {
            assert!(t.elapsed() < Duration::from_secs(10), "origin got {:?}", o.got.lock().unwrap());
            thread::sleep(Duration::from_millis(5));
        }
        // a half-close from the client reaches the origin as its end
        c.shutdown(Shutdown::Write).unwrap();
        let t = Instant::now();
        while o.ended.load(Ordering::Acquire) < 1 {
            assert!(t.elapsed() < Duration::from_secs(10), "the client's end did not reach the origin");
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn a_wrong_accept_value_is_a_502_and_the_origin_is_closed(d) {
        let o = RawOrigin::start(|_| {
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".to_vec()
        });
        let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
        let r = roundtrip(g.addr, handshake("/chat", "").replace(KEY, "AQIDBAUGBwgJCgsMDQ4PEA==").as_bytes());
        assert_eq!(r.status, 502, "{}", r.head);
        assert_eq!(r.text(), r#"{"message":"Bad Gateway"}"#);
        let t = Instant::now();
        while o.ended.load(Ordering::Acquire) < 1 {
            assert!(t.elapsed() < Duration::from_secs(10), "origin connection not closed");
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn a_101_beyond_the_clients_handshake_is_a_502(d) {
        // RFC 6455 §4.1: Upgrade other than websocket alone (item 2), a subprotocol or an
        // extension the client did not offer (items 5-6)
        for extra in [
            "Upgrade: h2c\r\n",
            "Sec-WebSocket-Protocol: chat\r\n",
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        ] {
            let o = RawOrigin::start(move |key| {
                format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n{extra}Connection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {}\r\n\r\n",
                    accept_for(key)
                )
                .into_bytes()
            });
            let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
            let r = roundtrip(g.addr, handshake("/chat", "").as_bytes());
            assert_eq!(r.status, 502, "{extra}: {}", r.head);
            assert_eq!(r.text(), r#"{"message":"Bad Gateway"}"#);
        }
    }

    fn a_refused_handshake_with_frames_behind_it_closes_lingering(d) {
        // an eager client sends its first frame behind a handshake that is refused (426), and
        // more frames after the answer: the gateway must not reset the connection under its
        // answer (RFC 9112 §9.6), the client reads the whole 426 and then the end
        let g = Gateway::start(d, 1, &ws_routes(RawOrigin::start(|_| Vec::new()).addr, ""));
        let mut c = connect(g.addr);
        let mut first = handshake("/chat", "").replace("Version: 13", "Version: 8").into_bytes();
        first.extend(client_frame("piped"));
        c.write_all(&first).unwrap();
        thread::sleep(Duration::from_millis(200)); // the gateway answered and closed its side
        // the gateway goes on reading (and discarding) them: no reset answers them
        for i in 0..4 {
            if let Err(e) = c.write_all(&client_frame("more")) {
                panic!("frame {i} after the answer: {e} (the gateway closed without lingering)");
            }
            thread::sleep(Duration::from_millis(20));
        }
        thread::sleep(Duration::from_millis(100)); // a reset would have arrived by now
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        loop {
            match c.read(&mut b) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&b[..n]),
                Err(e) => panic!("{e} after {:?}", String::from_utf8_lossy(&got)),
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 426 "), "{text}");
        assert!(text.ends_with(r#"{"message":"Upgrade Required"}"#), "{text}");
    }

    fn a_chunked_handshake_is_a_400_and_its_body_is_not_a_request(d) {
        let o = RawOrigin::start(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec());
        let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
        // the body is a well-formed request: were it read as one, a second response would come
        let inner = "GET /plain HTTP/1.1\r\nHost: h\r\n\r\n";
        let raw = handshake("/chat", "Transfer-Encoding: chunked\r\n")
            + &format!("{:x}\r\n{inner}\r\n0\r\n\r\n", inner.len());
        let mut c = connect(g.addr);
        c.write_all(raw.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        loop {
            match c.read(&mut b) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&b[..n]),
                Err(e) => panic!("{e} after {:?}", String::from_utf8_lossy(&got)),
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "one response only: {text}");
        assert!(text.ends_with(r#"{"message":"Bad Request"}"#), "{text}");
        thread::sleep(Duration::from_millis(100));
        assert!(o.got.lock().unwrap().is_empty(), "the origin got {:?}", o.got.lock().unwrap());
    }

    fn malformed_handshakes_are_refused_before_the_origin(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
        let cases: &[(String, u16)] = &[
            (handshake("/chat", "").replace("Version: 13", "Version: 8"), 426),
            (handshake("/chat", "").replace(KEY, "not-a-key"), 400),
            (handshake("/chat", "").replace(KEY, "AAAAAAAAAAAAAAAAAAAAAAAA"), 400),
            (handshake("/chat", "").replace("Sec-WebSocket-Version: 13\r\n", ""), 400),
            (handshake("/chat", "").replace("Connection: Upgrade", "Connection: keep-alive"), 400),
            (handshake("/chat", "Content-Length: 3\r\n") + "abc", 400),
        ];
        for (raw, status) in cases {
            let r = roundtrip(g.addr, raw.as_bytes());
            assert_eq!(r.status, *status, "{raw}\n{}", r.head);
            assert_eq!(r.header("content-type"), Some("application/json"));
            if *status == 426 {
                assert_eq!(r.header("sec-websocket-version"), Some("13"), "{}", r.head);
                assert_eq!(r.header("upgrade"), Some("websocket"), "{}", r.head);
                assert_eq!(r.text(), r#"{"message":"Upgrade Required"}"#);
            } else {
                assert_eq!(r.text(), r#"{"message":"Bad Request"}"#);
            }
        }
        // on a route for every method, a POST handshake is refused too
        let all = upstream_toml("u", &[o.addr], "")
            + "[[route]]\nkey = \"ANY /any\"\nupstream = \"u\"\nwebsocket = true\n";
        let g2 = Gateway::start(d, 1, &all);
        let r = roundtrip(g2.addr, handshake("/any", "Content-Length: 0\r\n").replace("GET", "POST").as_bytes());
        assert_eq!(r.status, 400, "{}", r.head);
        assert!(o.requests().is_empty(), "a refused handshake reached the origin");
    }

    fn without_websocket_the_upgrade_is_stripped_and_the_request_is_plain(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
        let p = proto();
        // a WebSocket handshake on a route without `websocket`
        let r = roundtrip(g.addr, handshake("/plain", "x-request-id: r1\r\n").as_bytes());
        assert_eq!(r.status, 200);
        // h2c (RFC 9113 §3.1) on a route with `websocket`: not ours to honour
        let h2c = "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                   HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nx-request-id: r2\r\n\r\n";
        assert_eq!(roundtrip(g.addr, h2c.as_bytes()).status, 200);
        // HTTP/1.0: an Upgrade MUST be ignored (RFC 9110 §7.8)
        let old = handshake("/chat", "x-request-id: r3\r\n").replace("HTTP/1.1", "HTTP/1.0");
        assert_eq!(roundtrip(g.addr, old.as_bytes()).status, 200);
        let got: Vec<String> = o.requests().iter().map(|r| r.head_text()).collect();
        let tail = |rid: &str| format!("x-request-id: {rid}\r\nx-forwarded-for: 127.0.0.1\r\nvia: 1.1 tollgate\r\nx-forwarded-proto: {p}\r\nx-forwarded-host: h\r\n\r\n");
        assert_eq!(got, vec![
            format!("GET /plain HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{}", tail("r1")),
            format!("GET /chat HTTP/1.1\r\nHost: h\r\n{}", tail("r2")),
            format!("GET /chat HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{}", tail("r3")),
        ]);
    }
    }
}

const KEYED: &str = "api_key_required = true\n\n[[api_key]]\nname = \"alice\"\nvalue = \"alice-key-0123456789abcdef\"\n";

mod features {
    use super::*;
    both_drivers! {
    fn an_api_key_is_required_for_the_upgrade(d) {
        let o = WsOrigin::start(Mode::Echo);
        let g = Gateway::start(d, 1, &ws_routes(o.addr, KEYED));
        assert_eq!(ws_connect(g.addr, "/chat", &[]).err(), Some(403));
        assert_eq!(ws_connect(g.addr, "/chat", &[("x-api-key", "wrong-key-0123456789abcdef")]).err(), Some(403));
        assert_eq!(o.accepted.load(Ordering::Acquire), 0, "a refused upgrade reached the origin");
        let mut ws = ws_connect(g.addr, "/chat", &[("x-api-key", "alice-key-0123456789abcdef")]).unwrap();
        echo(&mut ws, Message::text("keyed"));
    }

    fn throttling_takes_one_token_per_connection(d) {
        let o = WsOrigin::start(Mode::Echo);
        // two tokens, refilled once in 1000 s: the third connection is refused
        let g = Gateway::start(d, 1, &ws_routes(o.addr, "throttle = { rate = 0.001, burst = 2 }"));
        let mut a = ws_connect(g.addr, "/chat", &[]).unwrap();
        for i in 0..20 {
            echo(&mut a, Message::text(format!("m{i}")));
        }
        let mut b = ws_connect(g.addr, "/chat", &[]).unwrap();
        echo(&mut b, Message::text("b"));
        assert_eq!(ws_connect(g.addr, "/chat", &[]).err(), Some(429));
        // messages on open tunnels are not requests
        echo(&mut a, Message::text("still"));
    }

    fn one_access_log_line_per_connection_when_it_ends(d) {
        let o = WsOrigin::start(Mode::Echo);
        let path = std::env::temp_dir().join(format!("tollgate-ws-{}-{d}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let text = server_toml(d, 1, "")
            + &format!("[access_log]\npath = \"{}\"\n", path.display())
            + &ws_routes(o.addr, "");
        let g = Gateway::from_toml(&text);
        let mut ws = ws_connect(g.addr, "/chat", &[]).unwrap();
        echo(&mut ws, Message::text("0123456789")); // 10 bytes: frames of 16 up, 12 down
        thread::sleep(Duration::from_millis(300));
        ws.close(None).unwrap();
        expect_closed(&mut ws);
        drop(ws);
        o.wait_ended(1);
        g.stop();
        let log = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 1, "{log}");
        let l = lines[0];
        for part in ["\"status\":101", "\"routeKey\":\"GET /chat\"", "\"integrationStatus\":101", "\"errorMessage\":\"-\""] {
            assert!(l.contains(part), "{part} in {l}");
        }
        let num = |name: &str| -> f64 {
            let pat = format!("\"{name}\":");
            let at = l.find(&pat).unwrap_or_else(|| panic!("{name} in {l}")) + pat.len();
            let rest = &l[at..];
            let rest = rest.trim_start_matches('"');
            rest[..rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap()].parse().unwrap()
        };
        // client → origin: the handshake head, a 16-byte frame, a close frame (6 masked);
        // origin → client: a 12-byte frame and the close reply (2)
        let (req, resp) = (num("requestLength"), num("responseLength"));
        assert!(req > 16.0 + 6.0 && req < 1000.0, "requestLength {req} in {l}");
        assert_eq!(resp, 12.0 + 2.0, "responseLength in {l}");
        assert!(num("responseLatency") >= 300.0, "latency (ms) is the connection's: {l}");
    }

    fn the_open_connections_gauge_rises_and_falls(d) {
        let o = WsOrigin::start(Mode::Echo);
        let text = String::from("[admin]\nlisten = \"127.0.0.1:0\"\n") + &ws_routes(o.addr, "");
        let g = Gateway::start(d, 2, &text);
        let admin = g.handle().admin_addr().unwrap();
        let sample = |name: &str| -> String {
            let m = get(admin, "/metrics").text();
            m.lines()
                .find(|l| l.starts_with(&format!("{name}{{route=\"GET /chat\"}}")))
                .unwrap_or_else(|| panic!("{name} missing:\n{m}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(sample("tollgate_websocket_connections"), "0");
        let mut ws = ws_connect(g.addr, "/chat", &[]).unwrap();
        echo(&mut ws, Message::text("x"));
        assert_eq!(sample("tollgate_websocket_connections"), "1");
        assert_eq!(sample("tollgate_websocket_upgrades_total"), "1");
        ws.close(None).unwrap();
        expect_closed(&mut ws);
        drop(ws);
        let t = Instant::now();
        while sample("tollgate_websocket_connections") != "0" {
            assert!(t.elapsed() < Duration::from_secs(10), "the gauge did not fall");
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(sample("tollgate_websocket_upgrades_total"), "1");
        // recorded as one request of status 101 once the tunnel ended, its life in the
        // WebSocket duration and not in the request latency histogram
        let t = Instant::now();
        while !get(admin, "/metrics").text().contains("tollgate_requests_total{route=\"GET /chat\",method=\"GET\",status=\"101\"} 1") {
            assert!(t.elapsed() < Duration::from_secs(10), "the connection was not counted");
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(sample("tollgate_request_duration_seconds_count"), "0");
        let secs: f64 = sample("tollgate_websocket_duration_seconds_total").parse().unwrap();
        assert!(secs > 0.0, "{secs}");
        let m = get(admin, "/metrics").text();
        assert!(!m.contains("tollgate_websocket_connections{route=\"GET /plain\"}"), "only websocket routes: {m}");
    }

    fn a_drain_relays_in_flight_bytes_then_closes_the_tunnel(d) {
        let o = WsOrigin::start(Mode::Echo);
        let path = std::env::temp_dir().join(format!("tollgate-ws-drain-{}-{d}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let text = server_toml(d, 1, "[server.timeouts]\nshutdown_ms = 1500")
            + &format!("[access_log]\npath = \"{}\"\n", path.display())
            + &ws_routes(o.addr, "");
        let g = Gateway::from_toml(&text);
        let mut ws = ws_connect(g.addr, "/chat", &[]).unwrap();
        echo(&mut ws, Message::text("before"));
        let t = Instant::now();
        let stopper = thread::spawn(move || g.stop());
        thread::sleep(Duration::from_millis(200));
        // within the grace period the tunnel still relays
        echo(&mut ws, Message::text("during"));
        expect_eof(ws.get_mut());
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(300), "closed before the grace period: {took:?}");
        stopper.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "shutdown waited {:?}", t.elapsed());
        o.wait_ended(1);
        // the tunnel ended itself within the grace period, so its line was written
        let log = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(log.contains("\"status\":101"), "{log}");
        assert!(log.contains("\"errorMessage\":\"tunnel ended: closed by shutdown\""), "{log}");
    }

    fn python_websockets_client_through_the_gateway(d) {
        let have = std::process::Command::new("python3").args(["-c", "import websockets.sync.client"]).status().map(|s| s.success()).unwrap_or(false);
        if !have {
            let st = std::process::Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "--user", "websockets"])
                .status()
                .expect("python3 runs");
            assert!(st.success(), "pip install websockets failed: this test needs the Python websockets package");
        }
        let o = WsOrigin::start(Mode::Echo);
        let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
        let script = format!(r#"
from websockets.sync.client import connect
with connect("ws://{}/chat", max_size=None) as ws:
    ws.send("hello")
    assert ws.recv() == "hello"
    blob = bytes(i % 251 for i in range(300000))
    ws.send(blob)
    assert ws.recv() == blob
print("ok")
"#, g.addr);
        let out = std::process::Command::new("python3").args(["-c", &script]).output().expect("python3 runs");
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
            "python client failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        o.wait_ended(1);
    }
    }
}

mod origin_tls {
    use super::*;
    use common::tls_origin::{cert_dir, Pki};
    use rustls::pki_types::pem::PemObject;

    both_drivers! {
        fn a_tls_origin_is_tunnelled_too(d) {
            let dir = cert_dir(&format!("ws-otls-{d}"));
            let pki = Pki::new("ws origin CA");
            let leaf = pki.server(&["origin.internal"]);
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf.cert_der.clone()], key)
                .unwrap();
            let o = WsOrigin::start_tls(Mode::Echo, Some(Arc::new(cfg)));
            let ca = dir.join("ca.pem");
            std::fs::write(&ca, pki.ca_pem()).unwrap();
            let ups = upstream_toml(
                "u",
                &[o.addr],
                &format!("tls = {{ server_name = \"origin.internal\", ca = {:?} }}", ca.display().to_string()),
            );
            let g = Gateway::start(d, 1, &(ups + "[[route]]\nkey = \"GET /chat\"\nupstream = \"u\"\nwebsocket = true\n"));
            let mut ws = ws_connect(g.addr, "/chat", &[]).unwrap();
            echo(&mut ws, Message::text("over tls"));
            let big: Vec<u8> = (0..300_000).map(|i| (i % 253) as u8).collect();
            echo(&mut ws, Message::binary(big));
            ws.close(None).unwrap();
            expect_closed(&mut ws);
            drop(ws);
            o.wait_ended(1);
        }
    }
}

mod fairness {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// An origin that accepts one WebSocket handshake, discards whatever comes, and sends one
    /// frame 200 ms after its 101.
    fn late_sender() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut buf = Vec::new();
            let head = read_head(&mut s, &mut buf).unwrap();
            let key = head
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .to_string();
            let r = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                accept_for(&key)
            );
            s.write_all(r.as_bytes()).unwrap();
            let mut w = s.try_clone().unwrap();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(200));
                let _ = w.write_all(b"\x81\x04late");
            });
            let mut b = vec![0u8; 1 << 16];
            while matches!(s.read(&mut b), Ok(n) if n > 0) {}
        });
        addr
    }

    both_drivers! {
        fn a_flooding_client_does_not_starve_the_other_direction(d) {
            let g = Gateway::start(d, 1, &ws_routes(late_sender(), ""));
            let mut c = connect(g.addr);
            c.write_all(handshake("/chat", "").as_bytes()).unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 4096];
            let head_end = loop {
                if let Some(i) = find(&got, b"\r\n\r\n") {
                    break i + 4;
                }
                let n = c.read(&mut b).unwrap();
                assert!(n > 0);
                got.extend_from_slice(&b[..n]);
            };
            assert!(got.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&got));
            got.drain(..head_end);
            // the client writes as fast as it can (one masked binary frame of endless payload)
            let stop = Arc::new(AtomicBool::new(false));
            let mut w = c.try_clone().unwrap();
            let writer = {
                let stop = stop.clone();
                thread::spawn(move || {
                    let _ = w.write_all(&[0x82, 0xff, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4]);
                    let chunk = vec![0x5au8; 1 << 16];
                    while !stop.load(Ordering::Acquire) && w.write_all(&chunk).is_ok() {}
                })
            };
            // the origin's frame still comes through while the client keeps the tunnel busy
            let t = Instant::now();
            while got.len() < 6 {
                let n = c.read(&mut b).unwrap();
                assert!(n > 0, "closed");
                got.extend_from_slice(&b[..n]);
            }
            assert!(!writer.is_finished(), "the flood had already ended");
            stop.store(true, Ordering::Release);
            assert_eq!(&got[..6], b"\x81\x04late");
            assert!(t.elapsed() < Duration::from_secs(10));
            drop(c);
            let _ = writer.join();
        }
    }
}

mod duplex {
    use super::*;
    use std::sync::mpsc;

    /// The kernel's largest TCP receive and send buffers (`net.ipv4.tcp_rmem`/`tcp_wmem`'s
    /// maxima: autotuning may grow a socket's buffer that far).
    fn kernel_buffer_max() -> usize {
        let max = |f: &str| -> usize {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
                .unwrap_or(32 << 20)
        };
        max("/proc/sys/net/ipv4/tcp_rmem") + max("/proc/sys/net/ipv4/tcp_wmem")
    }

    /// Bytes each side sends before it reads: at least 32 MiB, and more than twice what the
    /// gateway's sockets can hold between a side and the relay (a relay that moves one
    /// direction at a time stops reading the origin while it waits on its write to it; the
    /// origin then blocks once the gateway's receive buffer and what was relayed on are full).
    fn bulk_len() -> usize {
        (32 << 20).max(2 * kernel_buffer_max())
    }

    /// Socket buffers of the test's own ends, both ways: small, so the bytes in flight are
    /// held by the gateway's sockets, not absorbed by the test's.
    const SOCKET_BUFFER: libc::c_int = 64 << 10;

    fn small_buffers(s: &TcpStream) {
        use std::os::fd::AsRawFd;
        let size: libc::c_int = SOCKET_BUFFER;
        for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
            // SAFETY: setsockopt(2) reads `size_of::<c_int>()` bytes from the pointer to a
            // live c_int; the fd belongs to `s`, open for the call.
            let r = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    std::ptr::addr_of!(size).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0, "setsockopt");
        }
    }

    /// Byte `i` of the stream a side sends (`seed` tells the two directions apart).
    fn pattern(i: usize, seed: usize) -> u8 {
        ((i * 7 + seed) % 251) as u8
    }

    /// Writes the whole stream in 64 KiB chunks made on the fly.
    fn write_bulk(s: &mut impl Write, seed: usize) -> std::io::Result<()> {
        let total = bulk_len();
        let mut chunk = vec![0u8; 1 << 16];
        let mut at = 0;
        while at < total {
            let n = chunk.len().min(total - at);
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(at + i, seed);
            }
            s.write_all(&chunk[..n])?;
            at += n;
        }
        Ok(())
    }

    /// Reads the whole stream, `got` being its start already read, checking every byte.
    fn read_bulk(s: &mut impl Read, got: Vec<u8>, seed: usize) -> Result<(), String> {
        let total = bulk_len();
        let mut at = 0;
        let check = |data: &[u8], at: &mut usize| -> Result<(), String> {
            for &x in data {
                if *at >= total || x != pattern(*at, seed) {
                    return Err(format!("byte {at} differs (or is one too many)"));
                }
                *at += 1;
            }
            Ok(())
        };
        check(&got, &mut at)?;
        let mut b = vec![0u8; 1 << 16];
        while at < total {
            match s.read(&mut b) {
                Ok(0) => return Err(format!("ended after {at} bytes")),
                Ok(n) => check(&b[..n], &mut at)?,
                Err(e) => return Err(format!("{e} after {at} bytes")),
            }
        }
        Ok(())
    }

    /// A raw origin that, after its 101, writes all of its stream before it reads the
    /// client's: with a relay that moves one direction at a time, both would block on a write.
    fn writes_before_reading(done: mpsc::Sender<Result<(), String>>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            small_buffers(&s);
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
            let mut buf = Vec::new();
            let head = read_head(&mut s, &mut buf).unwrap();
            let key = head
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .to_string();
            let r = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                accept_for(&key)
            );
            s.write_all(r.as_bytes()).unwrap();
            let r = write_bulk(&mut s, 2)
                .map_err(|e| format!("origin write: {e}"))
                .and_then(|()| read_bulk(&mut s, buf, 1).map_err(|e| format!("origin read: {e}")));
            let _ = done.send(r);
        });
        addr
    }

    all_transports! {
        fn both_sides_writing_before_reading_do_not_deadlock(d) {
            let (tx, rx) = mpsc::channel();
            let g = Gateway::start(d, 1, &ws_routes(writes_before_reading(tx.clone()), ""));
            let mut c = connect(g.addr);
            small_buffers(c.tcp());
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            c.write_all(handshake("/chat", "").as_bytes()).unwrap();
            // the client writes its whole stream from one thread ...
            let mut w = c.try_clone().unwrap();
            let wtx = tx.clone();
            thread::spawn(move || {
                let r = write_bulk(&mut w, 1).map_err(|e| format!("client write: {e}"));
                let _ = wtx.send(r);
            });
            // ... and reads the origin's from another
            let rtx = tx;
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut b = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = find(&got, b"\r\n\r\n") {
                        break i + 4;
                    }
                    match c.read(&mut b) {
                        Ok(n) if n > 0 => got.extend_from_slice(&b[..n]),
                        r => {
                            let _ = rtx.send(Err(format!("client read of the 101: {r:?}")));
                            return;
                        }
                    }
                };
                assert!(got.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&got));
                let rest = got.split_off(head_end);
                let r = read_bulk(&mut c, rest, 2).map_err(|e| format!("client read: {e}"));
                let _ = rtx.send(r);
            });
            // origin, client writer and client reader all finish (an upper bound for liveness)
            for _ in 0..3 {
                match rx.recv_timeout(Duration::from_secs(120)) {
                    Ok(r) => r.unwrap(),
                    Err(_) => panic!("the tunnel deadlocked: both sides blocked writing"),
                }
            }
        }
    }
}

/// Origins that answer plain requests with `200 ok` (keep-alive) and upgrade requests as
/// scripted, counting per connection what they saw: for the release of upgrade connections.
mod release {
    use super::*;

    /// What a [`Scripted`] origin does with an upgrade request.
    #[derive(Debug, Clone, Copy)]
    enum OnUpgrade {
        /// Answers 101 after this long, then reads until end of stream.
        Switch(Duration),
        /// Answers `403` with a 2-byte body and keeps the connection open for more requests.
        Refuse,
    }

    #[derive(Default)]
    struct Counts {
        connections: AtomicUsize,
        plain: AtomicUsize,
        upgrades: AtomicUsize,
        /// Connections that carried an upgrade request and then saw end of stream (the
        /// gateway closed them).
        upgrade_ended: AtomicUsize,
    }

    struct Scripted {
        addr: SocketAddr,
        n: Arc<Counts>,
    }

    impl Scripted {
        fn start(on: OnUpgrade) -> Scripted {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let n: Arc<Counts> = Arc::default();
            let n2 = n.clone();
            thread::spawn(move || {
                for s in l.incoming() {
                    let Ok(s) = s else { continue };
                    n2.connections.fetch_add(1, Ordering::AcqRel);
                    let n = n2.clone();
                    thread::spawn(move || serve(s, on, &n));
                }
            });
            Scripted { addr, n }
        }

        fn wait_upgrade_ended(&self, others: &Scripted) {
            let t = Instant::now();
            while self.n.upgrade_ended.load(Ordering::Acquire)
                + others.n.upgrade_ended.load(Ordering::Acquire)
                < 1
            {
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "the upgrade's origin connection was not closed"
                );
                thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn serve(mut s: TcpStream, on: OnUpgrade, n: &Counts) {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = Vec::new();
        let mut b = [0u8; 4096];
        let mut upgraded = false;
        loop {
            let end = loop {
                if let Some(i) = find(&buf, b"\r\n\r\n") {
                    break i + 4;
                }
                match s.read(&mut b) {
                    Ok(0) => {
                        if upgraded {
                            n.upgrade_ended.fetch_add(1, Ordering::AcqRel);
                        }
                        return;
                    }
                    Ok(k) => buf.extend_from_slice(&b[..k]),
                    Err(_) => return,
                }
            };
            let head: String = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            buf.drain(..end);
            if !head.contains("\r\nsec-websocket-key: ") {
                n.plain.fetch_add(1, Ordering::AcqRel);
                if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .is_err()
                {
                    return;
                }
                continue;
            }
            upgraded = true;
            n.upgrades.fetch_add(1, Ordering::AcqRel);
            match on {
                OnUpgrade::Refuse => {
                    if s.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\nno")
                        .is_err()
                    {
                        return;
                    }
                }
                OnUpgrade::Switch(delay) => {
                    thread::sleep(delay);
                    // (the tests' handshakes all carry KEY)
                    let r = format!(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                         Sec-WebSocket-Accept: {}\r\n\r\n",
                        accept_for(KEY)
                    );
                    let _ = s.write_all(r.as_bytes());
                }
            }
        }
    }

    /// Closes `s` with a reset (SO_LINGER of 0): the gateway's next write to it fails.
    fn reset(s: TcpStream) {
        use std::os::fd::AsRawFd;
        let lg = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt(2) reads `size_of::<linger>()` bytes from the pointer to a live
        // linger; the fd belongs to `s`, open for the call.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::addr_of!(lg).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "setsockopt");
        drop(s);
    }

    both_drivers! {
        fn an_upgrade_whose_client_is_gone_releases_its_origin_target(d) {
            // least_requests picks the less loaded of two random targets (a tie: the first
            // drawn). A target whose in-flight count leaked stays "busier": it then gets a
            // quarter of the requests (both draws on it) instead of half
            let (a, b) = (
                Scripted::start(OnUpgrade::Switch(Duration::from_millis(300))),
                Scripted::start(OnUpgrade::Switch(Duration::from_millis(300))),
            );
            let g = Gateway::start(d, 1, &(upstream_toml("u", &[a.addr, b.addr], "balance = \"least_requests\"")
                + "[[route]]\nkey = \"GET /chat\"\nupstream = \"u\"\nwebsocket = true\n\
                   [[route]]\nkey = \"GET /plain\"\nupstream = \"u\"\n"));
            // the client sends its handshake and is gone (reset) before the 101 comes
            let mut c = TcpStream::connect(g.addr).unwrap();
            c.write_all(handshake("/chat", "").as_bytes()).unwrap();
            reset(c);
            a.wait_upgrade_ended(&b);
            let used = if a.n.upgrades.load(Ordering::Acquire) == 1 { &a } else { &b };
            const N: usize = 400;
            let mut client = Client::new(g.addr);
            for _ in 0..N {
                client.send(b"GET /plain HTTP/1.1\r\nHost: h\r\n\r\n");
                assert_eq!(client.read(false).expect("a response").status, 200);
            }
            let on_used = used.n.plain.load(Ordering::Acquire);
            // expected N/2 (released) against N/4 (leaked): 3/8 N is over 5 standard
            // deviations from both
            assert!(on_used > N * 3 / 8, "the upgrade's target got {on_used} of {N}: its in-flight count leaked");
        }

        fn a_refused_upgrade_is_not_pooled(d) {
            let o = Scripted::start(OnUpgrade::Refuse);
            let g = Gateway::start(d, 1, &ws_routes(o.addr, ""));
            let r = roundtrip(g.addr, handshake("/chat", "").as_bytes());
            assert_eq!(r.status, 403, "{}", r.head);
            assert_eq!(r.text(), "no");
            // the origin kept its connection open: tollgate closed it
            let t = Instant::now();
            while o.n.upgrade_ended.load(Ordering::Acquire) < 1 {
                assert!(t.elapsed() < Duration::from_secs(10), "the refused upgrade's origin connection stayed open");
                thread::sleep(Duration::from_millis(5));
            }
            // and a plain request next opens a new one
            assert_eq!(get(g.addr, "/plain").status, 200);
            assert_eq!(o.n.plain.load(Ordering::Acquire), 1);
            assert_eq!(o.n.connections.load(Ordering::Acquire), 2, "the refused upgrade's connection was reused");
        }
    }
}

/// How tunnels end while one side is still busy: the half-close bound and the drain.
mod ends {
    use super::*;

    /// Accepts one handshake with a 101, then runs `then` on the connection (the key read).
    fn origin(then: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut buf = Vec::new();
            let head = read_head(&mut s, &mut buf).unwrap();
            let key = head
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .to_string();
            let r = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                accept_for(&key)
            );
            s.write_all(r.as_bytes()).unwrap();
            then(s);
        });
        addr
    }

    /// Reads the 101's head off `c`, returning what came after it.
    fn read_101(c: &mut Conn) -> Vec<u8> {
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        let end = loop {
            if let Some(i) = find(&got, b"\r\n\r\n") {
                break i + 4;
            }
            let n = c.read(&mut b).unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&b[..n]);
        };
        assert!(
            got.starts_with(b"HTTP/1.1 101 "),
            "{}",
            String::from_utf8_lossy(&got)
        );
        got.split_off(end)
    }

    fn log_path(name: &str, d: &str) -> std::path::PathBuf {
        let p =
            std::env::temp_dir().join(format!("tollgate-ws-{name}-{}-{d}.log", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    both_drivers! {
        fn a_half_closed_tunnel_waits_at_least_a_second_even_without_lingering(d) {
            // the origin reads the client's end, answers 300 ms later and never ends its side
            let o = origin(|mut s| {
                let mut b = [0u8; 1024];
                while matches!(s.read(&mut b), Ok(n) if n > 0) {}
                thread::sleep(Duration::from_millis(300));
                let _ = s.write_all(b"\x81\x04late");
                thread::sleep(Duration::from_secs(10));
            });
            let path = log_path("halfclose", d);
            let text = server_toml(d, 1, "[server.timeouts]\nlinger_ms = 0")
                + &format!("[access_log]\npath = \"{}\"\n", path.display())
                + &ws_routes(o, "");
            let g = Gateway::from_toml(&text);
            let mut c = connect(g.addr);
            c.write_all(handshake("/chat", "").as_bytes()).unwrap();
            let mut got = read_101(&mut c);
            let t = Instant::now();
            c.shutdown(Shutdown::Write).unwrap();
            // the other direction still relays after the half-close ...
            let mut b = [0u8; 64];
            while got.len() < 6 {
                let n = c.read(&mut b).unwrap();
                assert!(n > 0, "the tunnel closed at the half-close (linger_ms = 0)");
                got.extend_from_slice(&b[..n]);
            }
            assert_eq!(got, b"\x81\x04late");
            // ... until the half-close bound: the origin never ended its side
            expect_eof(&mut c);
            assert!(t.elapsed() >= Duration::from_millis(900), "ended after {:?}", t.elapsed());
            g.stop();
            let log = std::fs::read_to_string(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            assert!(log.contains("\"errorMessage\":\"tunnel ended: half-closed side did not finish\""), "{log}");
        }

        fn a_drain_cutting_a_pending_write_is_logged_as_the_shutdown(d) {
            // the origin never reads: the client's bytes stay pending at the gateway
            let o = origin(|s| {
                thread::sleep(Duration::from_secs(10));
                drop(s);
            });
            let path = log_path("drainpending", d);
            let text = server_toml(d, 1, "[server.timeouts]\nshutdown_ms = 1000")
                + &format!("[access_log]\npath = \"{}\"\n", path.display())
                + &ws_routes(o, "");
            let g = Gateway::from_toml(&text);
            let mut c = connect(g.addr);
            c.write_all(handshake("/chat", "").as_bytes()).unwrap();
            read_101(&mut c);
            let mut w = c.try_clone().unwrap();
            w.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
            let writer = thread::spawn(move || {
                let chunk = vec![0x5au8; 1 << 16];
                while w.write_all(&chunk).is_ok() {}
            });
            thread::sleep(Duration::from_millis(300)); // the socket buffers fill up
            g.stop();
            expect_eof(&mut c);
            drop(c);
            let _ = writer.join();
            let log = std::fs::read_to_string(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            assert_eq!(log.lines().count(), 1, "{log}");
            assert!(log.contains("\"errorMessage\":\"tunnel ended: closed by shutdown\""), "{log}");
        }
    }
}

/// TLS on both sides of a tunnel: the bytes around the 101, and how each side's end is passed
/// on (close_notify only when the side sent one, RFC 8446 §6.1).
mod tls_both {
    use super::*;
    use common::conn::{enter, Transport};
    use common::tls_origin::{cert_dir, Pki};
    use rustls::pki_types::pem::PemObject;
    use std::sync::mpsc;

    /// How a side's data ended, as its TLS peer read it.
    #[derive(Debug, PartialEq, Eq)]
    enum End {
        /// close_notify, then the end (a read of 0).
        CloseNotify,
        /// A TCP end without close_notify (rustls: `UnexpectedEof`).
        Bare,
        Other(String),
    }

    /// How a read that returned no data says the stream ended.
    fn end_of(r: std::io::Result<usize>) -> End {
        match r {
            Ok(_) => End::CloseNotify,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => End::Bare,
            Err(e) => End::Other(e.to_string()),
        }
    }

    /// Reads `s` until its end, returning what came and how it ended.
    fn read_to_end(s: &mut impl Read) -> (Vec<u8>, End) {
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        loop {
            match s.read(&mut b) {
                Ok(n) if n > 0 => got.extend_from_slice(&b[..n]),
                r => return (got, end_of(r)),
            }
        }
    }

    /// A TLS origin for `origin.internal`, and the `[[upstream]]` that trusts it. Its n-th
    /// connection (from 0) answers the handshake with a 101 and `early` in one write, reads
    /// to the client's end (sending what it read and how it ended on `seen`), then ends its
    /// own side with close_notify when `clean[n]`, else with a bare TCP end.
    fn tls_origin(d: &str, clean: &'static [bool], seen: mpsc::Sender<(Vec<u8>, End)>) -> String {
        let dir = cert_dir(&format!("ws-tlsboth-{d}"));
        let pki = Pki::new("ws tls-both CA");
        let leaf = pki.server(&["origin.internal"]);
        let key =
            rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf.cert_der.clone()], key)
                .unwrap(),
        );
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            for &clean in clean {
                let (s, _) = l.accept().unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let raw = s.try_clone().unwrap();
                let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
                let mut t = rustls::StreamOwned::new(conn, s);
                let mut buf = Vec::new();
                let head = read_head(&mut t, &mut buf).unwrap();
                let key = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                    .unwrap()
                    .to_string();
                let mut r = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {}\r\n\r\n",
                    accept_for(&key)
                )
                .into_bytes();
                r.extend_from_slice(b"\x81\x05early");
                t.write_all(&r).unwrap();
                let (mut got, end) = read_to_end(&mut t);
                got.splice(0..0, buf);
                seen.send((got, end)).unwrap();
                if clean {
                    t.conn.send_close_notify();
                    let _ = t.flush();
                    while t.conn.wants_write() {
                        let _ = t.conn.write_tls(&mut t.sock);
                    }
                }
                let _ = raw.shutdown(Shutdown::Write);
                thread::sleep(Duration::from_millis(500));
            }
        });
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, pki.ca_pem()).unwrap();
        upstream_toml(
            "u",
            &[addr],
            &format!(
                "tls = {{ server_name = \"origin.internal\", ca = {:?} }}",
                ca.display().to_string()
            ),
        ) + "[[route]]\nkey = \"GET /chat\"\nupstream = \"u\"\nwebsocket = true\n"
    }

    both_drivers! {
        fn bytes_around_the_101_and_each_sides_kind_of_end_cross_tls_on_both_sides(d) {
            let _tls = enter(Transport::Tls);
            let (tx, rx) = mpsc::channel();
            // first tunnel: the client ends bare, the origin with close_notify; second: the
            // other way round
            let g = Gateway::start(d, 1, &tls_origin(d, &[true, false], tx));
            for (client_clean, origin_end) in [(false, End::CloseNotify), (true, End::Bare)] {
                let mut c = connect(g.addr);
                assert!(c.is_tls());
                // the client's first frame in the same write as its handshake
                let mut first = handshake("/chat", "").into_bytes();
                first.extend(client_frame("piped"));
                c.write_all(&first).unwrap();
                let mut got = Vec::new();
                let mut b = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = find(&got, b"\r\n\r\n") {
                        if got.len() >= i + 4 + 7 {
                            break i + 4;
                        }
                    }
                    let n = c.read(&mut b).unwrap();
                    assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
                    got.extend_from_slice(&b[..n]);
                };
                assert!(got.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&got));
                // the origin's early frame follows the head, nothing else
                assert_eq!(&got[head_end..], b"\x81\x05early");
                if client_clean {
                    c.shutdown(Shutdown::Write).unwrap(); // close_notify, then FIN
                } else {
                    c.tcp().shutdown(Shutdown::Write).unwrap(); // FIN alone
                }
                let (at_origin, client_end) = rx.recv_timeout(Duration::from_secs(10)).expect("the origin saw no end");
                assert_eq!(at_origin, client_frame("piped"), "the client's pipelined frame");
                let want = if client_clean { End::CloseNotify } else { End::Bare };
                assert_eq!(client_end, want, "the client's end as the origin saw it");
                let (rest, end) = read_to_end(&mut c);
                assert!(rest.is_empty(), "{rest:?}");
                assert_eq!(end, origin_end, "the origin's end as the client saw it");
            }
        }
    }
}
