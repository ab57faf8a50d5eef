//! One client connection: wait, read a head, hand it to the lifecycle, repeat.
//!
//! Owns: the connection's states ([`ConnState`]), the head-read deadline (slow clients), the
//! keep-alive idle timeout, and the read buffer's lifetime. An idle connection holds no read
//! buffer: it waits for readiness (`readable`, a poll op on io_uring, epoll readiness otherwise)
//! and only then borrows a buffer from the worker's pool, returning it once nothing is pipelined.
//! Its deadline lives in the worker's [`super::idle::IdleTable`], not in a timer of its own.
//! The rest of a head that needs more than one read is taken the same way (readiness, then a
//! synchronous `recv(2)`), so when the head deadline passes the bytes received are still there.
//! Pipelined requests stay in the buffer and are served in order. The per-request work is boxed,
//! so the future an idle connection parks is small; the connection's facts (peer, local address,
//! scheme, TLS) are boxed with it for the same reason. All socket I/O goes through the
//! connection's [`Stream`] (plain or TLS alike). Leaves out: what a request does (see
//! [`super::lifecycle`]) and the HTTP/1 session operations on a connection (bodies, sending a
//! response: [`crate::session::h1`]).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;

use super::lifecycle::{self, Outcome};
use super::worker::{Cx, Worker};
use crate::error::GatewayError;
use crate::http::{parse_request, HttpError};
use crate::transport::{ConnFacts, IoFail, Stream};

/// A client connection and its buffered, not yet consumed bytes.
pub struct Downstream {
    pub stream: Stream,
    /// Unconsumed input; capacity 0 while the connection is idle.
    pub buf: BytesMut,
    /// What the accept loop knew (boxed, one allocation per connection: the parked idle
    /// future stays small).
    pub accepted: Box<Accepted>,
}

/// What a connection is given at accept, kept for its lifetime.
pub struct Accepted {
    /// Peer, local address, scheme and TLS parameters.
    pub facts: ConnFacts,
    /// Set when a reload removed the address this connection was accepted on: finish the
    /// current request, then close.
    pub listener_closed: Rc<Cell<bool>>,
}

impl Downstream {
    pub fn new(stream: Stream, facts: ConnFacts, listener_closed: Rc<Cell<bool>>) -> Downstream {
        Downstream {
            stream,
            buf: BytesMut::new(),
            accepted: Box::new(Accepted {
                facts,
                listener_closed,
            }),
        }
    }

    /// The connection's facts, captured at accept.
    pub fn facts(&self) -> &ConnFacts {
        &self.accepted.facts
    }
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Accepted, no request yet: waits up to the head-read timeout.
    New,
    /// Between requests: waits up to the keep-alive idle timeout.
    Idle,
    /// Bytes of a next request are already buffered (pipelining).
    Pipelined,
}

/// Decrements the worker's open-connection count however the connection ends.
struct OpenGuard<'a>(&'a Worker);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        let c = &self.0.open_connections;
        c.set(c.get().saturating_sub(1));
    }
}

/// Decrements the worker's busy count when a request ends, even by a panic.
struct BusyGuard<'a>(&'a Worker);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let c = &self.0.busy;
        c.set(c.get().saturating_sub(1));
    }
}

/// Serves a client connection until it closes, times out or breaks protocol. The accept loop
/// has already counted it in `open_connections` (so the cap holds before this task first runs);
/// this function uncounts it however it ends. The connection is taken as built (not assembled
/// here from its parts), so the parked future holds the socket once, not also as an argument.
pub async fn serve(mut conn: Downstream, w: Rc<Worker>) {
    let _guard = OpenGuard(&w);
    let _ = conn.stream.set_nodelay(true);
    let mut state = ConnState::New;
    loop {
        if state != ConnState::Pipelined && !wait_readable(&w, &conn, state).await {
            break;
        }
        // Only the wait above lives in this (long-lived) future; a request's work is boxed so
        // an idle connection parks a small task.
        if Box::pin(serve_one(&w, &mut conn)).await != Outcome::KeepAlive {
            break;
        }
        if conn.buf.is_empty() {
            w.buffers.give(std::mem::take(&mut conn.buf));
            state = ConnState::Idle;
        } else {
            state = ConnState::Pipelined;
        }
    }
    if conn.buf.capacity() != 0 {
        w.buffers.give(std::mem::take(&mut conn.buf));
    }
    conn.stream.notify_close();
}

/// Reads one request head and serves it.
async fn serve_one(w: &Worker, conn: &mut Downstream) -> Outcome {
    if conn.buf.is_empty() {
        if conn.buf.capacity() == 0 {
            conn.buf = w.buffers.take();
        }
        // The readiness wait said bytes (or the end) are there: take them synchronously.
        match conn.stream.try_read(&mut conn.buf, w.buffers.size()) {
            Ok(0) => return Outcome::Close,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return Outcome::Close,
        }
    }
    // The request runs on the generation current when its head starts to be read, to the end.
    let g = w.current();
    let cx = Cx { w, g: &g };
    let outcome = match read_head(&cx, conn).await {
        HeadRead::Head(head) => {
            w.busy.set(w.busy.get() + 1);
            let _busy = BusyGuard(w);
            lifecycle::handle(&cx, conn, head).await
        }
        HeadRead::Reject(e) => lifecycle::reject_head(&cx, conn, e).await,
        HeadRead::Closed => Outcome::Close,
    };
    if outcome != Outcome::CloseLingering {
        return outcome;
    }
    // The request is over (logged, not busy: shutdown does not wait for this); the buffered
    // rest of it is garbage, and the linger holds no buffer.
    w.buffers.give(std::mem::take(&mut conn.buf));
    let s = &g.config.server;
    let (limit, max_bytes) = (s.timeouts.linger, s.max_linger_bytes);
    drop(g); // a generation a reload replaced is not kept alive by a linger
    super::linger::linger(&mut conn.stream, limit, max_bytes, &w.draining).await;
    Outcome::Close
}

/// How long a connection in `state` may stay silent.
fn idle_limit(w: &Worker, state: ConnState) -> std::time::Duration {
    w.with_current(|g| {
        let t = &g.config.server.timeouts;
        if state == ConnState::New {
            t.header_read
        } else {
            t.keepalive_idle
        }
    })
}

/// Waits, without a buffer, until the client sends something. False: close the connection.
async fn wait_readable(w: &Worker, conn: &Downstream, state: ConnState) -> bool {
    if w.draining.get() || conn.accepted.listener_closed.get() {
        return false;
    }
    let _idle = w.idle.register(conn.stream.raw_fd(), idle_limit(w, state));
    // Bytes that arrived are a request the client already sent: it is served (with
    // `Connection: close` when draining or the listener is gone), not cut off.
    conn.stream.readable().await.is_ok()
}

#[allow(clippy::large_enum_variant)] // moved once per request; boxing would cost an allocation
enum HeadRead {
    Head(crate::http::RequestHead),
    Reject(GatewayError),
    /// The client closed or broke the connection (or went quiet) before a complete head; a
    /// connection that never sent a byte is closed without a response.
    Closed,
}

/// Reads until a complete head is parsed, within the head-read deadline (RFC 9112 §2.2 allows
/// leading empty lines, handled by the parser).
async fn read_head(w: &Cx<'_>, conn: &mut Downstream) -> HeadRead {
    let limits = &w.g.config.server.limits;
    let deadline = Instant::now() + w.g.config.server.timeouts.header_read;
    loop {
        match parse_request(&mut conn.buf, limits) {
            Ok(Some(head)) => return HeadRead::Head(head),
            Ok(None) => {}
            Err(e) => return HeadRead::Reject(GatewayError::Http(e)),
        }
        let had_bytes = !conn.buf.is_empty();
        match read_head_more(&mut conn.stream, &mut conn.buf, w.buffers.size(), deadline).await {
            Ok(0) if had_bytes => {
                return HeadRead::Reject(GatewayError::Http(HttpError::UnexpectedEof))
            }
            Ok(0) | Err(IoFail::Io(_)) => return HeadRead::Closed,
            Ok(_) => {}
            Err(IoFail::Timeout) if had_bytes => {
                return HeadRead::Reject(GatewayError::HeadTimeout)
            }
            Err(IoFail::Timeout) => return HeadRead::Closed,
        }
    }
}

/// Reads more of a head, bounded by `deadline`: waits for readiness, then takes what is there
/// with a synchronous `recv(2)`, so the buffer is never lent to a pending read. When the
/// deadline passes, the bytes received so far are still in `buf` (a timed-out owned-buffer
/// read would take them with it): the 408 must know whether it answers a HEAD request (no
/// content, RFC 9110 §9.3.2), and the log how much was received. Heads that need more than the
/// first read are rare (slow or large ones), so the extra readiness step costs little.
async fn read_head_more(
    stream: &mut Stream,
    buf: &mut BytesMut,
    want: usize,
    deadline: Instant,
) -> Result<usize, IoFail> {
    loop {
        stream.readable_by(deadline).await?;
        match stream.try_read(buf, want) {
            Ok(n) => return Ok(n),
            // a spurious wake-up, or a signal: wait again
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(IoFail::Io(e)),
        }
    }
}

#[cfg(test)]
mod footprint {
    /// The future an idle keep-alive connection parks (inside its task) is most of what the
    /// connection costs in memory; this keeps it from creeping up unnoticed. With the task's
    /// own header the allocation must stay within the allocator's 512-byte size class: at 472
    /// bytes it spilled into the next one and an idle connection cost 0.77 instead of 0.64 KiB.
    const SERVE_FUTURE_MAX: usize = 448;

    #[test]
    fn idle_connection_future_stays_small() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let size = rt.block_on(async {
            let cfg = std::sync::Arc::new(
                crate::config::from_str("[[route]]\nkey = \"GET /x\"\nmock = {}\n").unwrap(),
            );
            let throttle =
                std::sync::Arc::new(crate::throttle::Throttle::new(cfg.throttle.clone(), 1));
            let health = crate::health::HealthBoard::new(&cfg);
            let g = crate::proxy::worker::Generation::first(0, cfg, throttle, None, &health);
            let w = std::rc::Rc::new(super::Worker::new(0, crate::runtime::DriverKind::Epoll, g));
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, peer) = l.accept().unwrap();
            s.set_nonblocking(true).unwrap();
            let local = s.local_addr().unwrap();
            let s = monoio::net::TcpStream::from_std(s).unwrap();
            let conn = super::Downstream::new(
                crate::transport::Stream::Plain(s),
                crate::transport::ConnFacts::plain(peer, local),
                std::rc::Rc::new(std::cell::Cell::new(false)),
            );
            let f = super::serve(conn, w);
            std::mem::size_of_val(&f)
        });
        assert!(size <= SERVE_FUTURE_MAX, "serve() future is {size} bytes");
    }
}
