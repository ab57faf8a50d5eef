//! The lifecycle over a session that is not HTTP/1: an in-memory one, with its request body in
//! chunks (some "already received", the rest "read" one by one). It proves the lifecycle and
//! the integrations know no protocol: a mock and a proxied POST (its body streamed through the
//! session's body API to a real origin socket) are served through it, and every response,
//! held in memory or relayed, passed the response filter first.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use super::*;
use crate::config::BodyPolicy;
use crate::http::BodyChunk;
use crate::response::ResponseBody;
use crate::worker::REQUEST_ID_LEN;

/// A response as the session got it.
#[derive(Debug)]
struct Seen {
    status: u16,
    request_id: Option<Vec<u8>>,
    date: bool,
    /// The body: in memory, or read from the origin through its `ResponseBody`.
    body: Vec<u8>,
    relayed: bool,
}

struct MemSession {
    facts: ConnFacts,
    /// Body chunks the client already sent (`buffered_chunk` gives them).
    buffered: VecDeque<Bytes>,
    /// Body chunks that arrive only when read (`next_chunk`).
    later: VecDeque<Bytes>,
    reads: usize,
    seen: Vec<Seen>,
}

impl MemSession {
    fn new(buffered: &[&'static [u8]], later: &[&'static [u8]]) -> Self {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        MemSession {
            facts: ConnFacts::plain(a, b),
            buffered: buffered.iter().map(|c| Bytes::from_static(c)).collect(),
            later: later.iter().map(|c| Bytes::from_static(c)).collect(),
            reads: 0,
            seen: Vec::new(),
        }
    }

    fn end(st: &mut ExchangeState) -> BodyChunk {
        st.body = BodyState::Done;
        BodyChunk::End {
            trailers: Bytes::new(),
        }
    }
}

impl Session for MemSession {
    type Body = ();
    type Outcome = bool;

    fn facts(&self) -> &ConnFacts {
        &self.facts
    }

    fn begin(&mut self, _head: &RequestHead, _st: &mut ExchangeState) {}

    async fn open_body(
        &mut self,
        _w: &Cx<'_>,
        _head: &RequestHead,
        st: &mut ExchangeState,
        _policy: &BodyPolicy,
    ) -> Result<(), GatewayError> {
        if st.body == BodyState::Unread {
            st.body = BodyState::Partial;
        }
        Ok(())
    }

    async fn next_chunk(
        &mut self,
        _w: &Cx<'_>,
        body: &mut (),
        st: &mut ExchangeState,
    ) -> Result<BodyChunk, GatewayError> {
        if let Some(c) = self.buffered_chunk(body, st)? {
            return Ok(c);
        }
        self.reads += 1;
        Ok(match self.later.pop_front() {
            Some(d) => BodyChunk::Data(d),
            None => Self::end(st),
        })
    }

    fn buffered_chunk(
        &mut self,
        _body: &mut (),
        st: &mut ExchangeState,
    ) -> Result<Option<BodyChunk>, GatewayError> {
        Ok(match self.buffered.pop_front() {
            Some(d) => Some(BodyChunk::Data(d)),
            None if self.later.is_empty() => Some(Self::end(st)),
            None => None,
        })
    }

    async fn read_body(
        &mut self,
        _w: &Cx<'_>,
        _head: &RequestHead,
        _st: &mut ExchangeState,
        _policy: &BodyPolicy,
        _max: usize,
    ) -> Result<Bytes, GatewayError> {
        unreachable!("no integration here reads the body whole")
    }

    fn skip_body(&mut self, _head: &RequestHead, st: &mut ExchangeState) {
        self.buffered.clear();
        self.later.clear();
        st.body = BodyState::Done;
    }

    async fn send(
        &mut self,
        _w: &Cx<'_>,
        _head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
    ) -> Result<(), GatewayError> {
        st.status = r.status;
        st.response = ResponseState::Complete;
        self.seen.push(Seen {
            status: r.status,
            request_id: r.added.request_id.map(<[u8]>::to_vec),
            date: r.added.date.is_some(),
            body: r.static_body().to_vec(),
            relayed: false,
        });
        Ok(())
    }

    async fn relay(
        &mut self,
        _w: &Cx<'_>,
        _head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
        body: &mut impl ResponseBody,
    ) -> Result<bool, GatewayError> {
        let mut bytes = Vec::new();
        while let BodyChunk::Data(d) = body.next_chunk().await? {
            bytes.extend_from_slice(&d);
        }
        st.status = r.status;
        st.response = ResponseState::Complete;
        self.seen.push(Seen {
            status: r.status,
            request_id: r.added.request_id.map(<[u8]>::to_vec),
            date: r.added.date.is_some(),
            body: bytes.to_vec(),
            relayed: true,
        });
        Ok(true)
    }

    fn finish(&mut self, _w: &Cx<'_>, st: &ExchangeState) -> bool {
        st.keep_alive && st.body == BodyState::Done && st.response == ResponseState::Complete
    }

    async fn refuse(&mut self, _w: &Cx<'_>, _r: Response<'_>) -> Refused<bool> {
        unreachable!("no head is refused here")
    }
}

/// An origin on a thread: reads one request with an 11-byte body, answers `ok`.
fn origin() -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let end = got.windows(4).position(|w| w == b"\r\n\r\n");
            if end.is_some_and(|e| got.len() >= e + 4 + 11) {
                break;
            }
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the gateway closed before a whole request");
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .unwrap();
        got
    });
    (addr, t)
}

fn head(bytes: &[u8]) -> RequestHead {
    let mut b = BytesMut::from(bytes);
    crate::http::parse_request(&mut b, &crate::http::Limits::default())
        .unwrap()
        .unwrap()
}

async fn served_through_any_session() {
    let (addr, origin) = origin();
    let toml = format!(
        "[[upstream]]\nname = \"o\"\ntargets = [\"{addr}\"]\n\n\
         [[route]]\nkey = \"GET /m\"\nmock = {{}}\n\n\
         [[route]]\nkey = \"POST /p\"\nupstream = \"o\"\nrequest_buffer_bytes = 4\n"
    );
    let w = crate::testkit::worker(&toml);
    let g = w.current();
    let cx = Cx { w: &w, g: &g };

    // a mock: answered from memory, through the response filter
    let mut s = MemSession::new(&[], &[]);
    let h = head(b"GET /m HTTP/1.1\r\nhost: a\r\nx-request-id: rid-1\r\n\r\n");
    assert!(handle(&cx, &mut s, h).await, "the session may go on");
    let seen = s.seen.pop().unwrap();
    assert_eq!((seen.status, seen.relayed), (200, false));
    assert_eq!(seen.request_id.as_deref(), Some(&b"rid-1"[..]));
    assert!(seen.date, "the response filter added date");

    // a proxied POST: the body comes from the session chunk by chunk, part of it "already
    // received", the rest read; beyond request_buffer_bytes it is streamed to the origin
    let mut s = MemSession::new(&[b"hel"], &[b"lo ", b"world"]);
    let h =
        head(b"POST /p HTTP/1.1\r\nhost: a\r\nx-request-id: rid-2\r\ncontent-length: 11\r\n\r\n");
    assert!(handle(&cx, &mut s, h).await, "the session may go on");
    let seen = s.seen.pop().unwrap();
    assert_eq!((seen.status, seen.relayed), (200, true));
    assert_eq!(seen.body, b"ok");
    assert_eq!(seen.request_id.as_deref(), Some(&b"rid-2"[..]));
    assert!(
        seen.date,
        "the relayed response passed the response filter too"
    );
    assert_eq!(s.reads, 2, "the two chunks not received yet were read");
    let got = origin.join().unwrap();
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("POST /p HTTP/1.1\r\n"), "{text}");
    assert!(text.contains("\r\nx-request-id: rid-2\r\n"), "{text}");
    assert!(text.contains("\r\ncontent-length: 11\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello world"), "{text}");

    // no route: the error is mapped and sent through the same filter
    let mut s = MemSession::new(&[], &[]);
    let h = head(b"GET /nowhere HTTP/1.1\r\nhost: a\r\n\r\n");
    assert!(handle(&cx, &mut s, h).await);
    let seen = s.seen.pop().unwrap();
    assert_eq!(seen.status, 404);
    assert_eq!(seen.body, br#"{"message":"Not Found"}"#);
    assert_eq!(seen.request_id.map(|r| r.len()), Some(REQUEST_ID_LEN));
}

#[test]
fn lifecycle_serves_any_session_epoll() {
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(served_through_any_session());
}

#[test]
fn lifecycle_serves_any_session_io_uring() {
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(served_through_any_session());
}

/// A session that cannot switch protocols (the trait's default `can_tunnel`, as an HTTP/2
/// stream): a WebSocket handshake on a `websocket = true` route goes to the origin as a plain
/// GET, its upgrade fields stripped, and the origin's answer is relayed as any response.
async fn upgrades_are_plain_http_on_a_session_that_cannot_tunnel() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let origin = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the gateway closed before a whole head");
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .unwrap();
        String::from_utf8(got).unwrap()
    });
    let toml = format!(
        "[[upstream]]\nname = \"o\"\ntargets = [\"{addr}\"]\n\n\
         [[route]]\nkey = \"GET /ws\"\nupstream = \"o\"\nwebsocket = true\n"
    );
    let w = crate::testkit::worker(&toml);
    let g = w.current();
    let cx = Cx { w: &w, g: &g };
    let mut s = MemSession::new(&[], &[]);
    let h = head(
        b"GET /ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
          sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
    );
    assert!(!s.can_tunnel(&h), "the default refuses");
    assert!(handle(&cx, &mut s, h).await);
    let seen = s.seen.pop().unwrap();
    assert_eq!((seen.status, seen.relayed), (200, true));
    let text = origin.join().unwrap();
    assert!(text.starts_with("GET /ws HTTP/1.1\r\n"), "{text}");
    assert!(
        !text.contains("upgrade"),
        "upgrade fields were forwarded: {text}"
    );
}

#[test]
fn upgrades_are_plain_http_without_tunnel_epoll() {
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(upgrades_are_plain_http_on_a_session_that_cannot_tunnel());
}

#[test]
fn upgrades_are_plain_http_without_tunnel_io_uring() {
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(upgrades_are_plain_http_on_a_session_that_cannot_tunnel());
}
