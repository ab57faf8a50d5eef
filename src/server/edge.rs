//! An accepted connection's task: TLS termination, and the choice of HTTP version.
//!
//! Owns: [`handshake_then_serve`], the task a TLS listener's accept loop spawns per connection,
//! [`plain`], the one a plain listener spawns, the names of handshake outcomes in
//! `tollgate_tls_handshakes_total`, and the dispatch to a session: on TLS, ALPN
//! "h2" (RFC 7301, RFC 9113 §3.2) → the HTTP/2 session, anything else → HTTP/1; on a plain
//! listener with `server.h2c` (RFC 9113 §3.3, prior knowledge), the first bytes decide: the
//! 24-byte client preface → HTTP/2, anything else → HTTP/1 with the bytes already read kept
//! (`Upgrade: h2c` is never honoured, RFC 9113 §3.1 deprecates it). Without `server.h2c` a plain
//! connection goes straight to HTTP/1, as before. Leaves out: the handshake's mechanics (see
//! [`crate::transport::tls`]), the rustls config (see [`crate::tls::server`]) and HTTP (see
//! [`crate::proxy::conn`], [`crate::session::h2`]).
//!
//! Data flow: the accept loop counts the connection in `open_connections` and spawns this task
//! at once, so a slow handshake never holds up accepting. The task reads the TLS settings of
//! the generation current at accept (its `ServerConfig`, so a reload with new certificates
//! applies to new handshakes while established connections keep theirs, and its handshake
//! timeout), runs the handshake under that timeout, counts the outcome in the worker's metrics
//! shard, and on success hands the stream with its facts (scheme https, the negotiated TLS
//! parameters) to [`crate::proxy::conn::serve`]. A refused handshake closes the connection
//! (rustls already queued the alert and the transport sent it); it is not a request, so the
//! access log does not see it.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use monoio::net::TcpStream;

use bytes::BytesMut;

use crate::facts::ConnFacts;
use crate::http2::PREFACE;
use crate::proxy::conn::{serve, Downstream};
use crate::proxy::worker::Worker;
use crate::session::h2;
use crate::transport::{HandshakeError, IoFail, Refused, Stream, TlsStream};

/// The ALPN identifier of HTTP/2 over TLS (RFC 9113 §3.2).
pub const ALPN_H2: &[u8] = b"h2";

/// The `version` label of a handshake that failed before a protocol version was chosen.
pub const UNKNOWN_VERSION: &str = "unknown";

/// The `result` label of a handshake that failed (RFC 8446 §6.2 alerts, grouped by what an
/// operator does about them).
pub fn reason(e: &HandshakeError) -> &'static str {
    match e {
        HandshakeError::Timeout => "timeout",
        HandshakeError::PeerClosed => "peer_closed",
        HandshakeError::ProtocolVersion(_) => "protocol_version",
        HandshakeError::NoCertificate => "no_certificate",
        HandshakeError::ClientCertificate(_) => "client_certificate",
        HandshakeError::ServerCertificate(_) | HandshakeError::Tls(_) | HandshakeError::Io(_) => {
            "error"
        }
    }
}

/// Uncounts the connection from `open_connections` if the task ends before `serve` takes over
/// (a refused handshake, or a panic inside it).
struct Handshaking<'a>(&'a Worker);

impl Drop for Handshaking<'_> {
    fn drop(&mut self) {
        let c = &self.0.open_connections;
        c.set(c.get().saturating_sub(1));
    }
}

/// Runs the TLS handshake on an accepted connection (already counted in `open_connections`),
/// then serves it like a plain one; see the module docs. The returned future is the
/// connection's task: see [`TlsTask`].
pub fn handshake_then_serve(
    tcp: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    closed: Rc<Cell<bool>>,
    w: Rc<Worker>,
) -> impl Future<Output = ()> {
    TlsTask::Handshaking(Box::pin(handshake(tcp, peer, local, closed, w)))
}

/// A plain connection's task (already counted in `open_connections`): HTTP/1 at once, or with
/// `server.h2c` (as the generation current at accept says) first a look at its first bytes;
/// see the module docs. An idle HTTP/1 connection parks the same serve future as before; the
/// look lives in its own box, freed when the session starts.
pub fn plain(
    tcp: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    closed: Rc<Cell<bool>>,
    w: Rc<Worker>,
) -> impl Future<Output = ()> {
    let h2c = w.with_current(|g| g.config.server.http2.h2c);
    if h2c {
        TlsTask::Handshaking(Box::pin(detect(tcp, peer, local, closed, w, serve)))
    } else {
        let facts = ConnFacts::plain(peer, local);
        let conn = Downstream::new(Stream::Plain(tcp), facts, closed);
        TlsTask::Serving(serve(conn, w))
    }
}

/// Starts an HTTP/2 session as a task of its own: the task that chose it (this module's, sized
/// for an idle HTTP/1 connection's serve future) then ends and is freed, so an HTTP/2
/// connection keeps one task, not a box inside another.
fn spawn_h2(
    stream: Stream,
    facts: ConnFacts,
    closed: Rc<Cell<bool>>,
    buf: BytesMut,
    w: Rc<Worker>,
) {
    let h2 = h2::serve(stream, facts, closed, buf, w, crate::proxy::h2::stream_task);
    // its panic ends the connection, not the worker, as any connection task's
    drop(monoio::spawn(super::CatchUnwind(h2)));
}

/// [`detect`]'s wait for bytes by `deadline`. Before the first byte (a connection may stay
/// silent until its head-read timeout, as an idle HTTP/1 one) the deadline is in the worker's
/// idle table, not a timer (a monoio `Sleep` is ~640 bytes; see [`crate::worker::idle`]): the
/// sweep shuts the reading side down and the expired registration says it was the deadline.
/// Once part of a preface is there, an ordinary timer bounds the rest.
async fn wait_first_bytes(
    stream: &Stream,
    buf: &BytesMut,
    deadline: std::time::Instant,
    w: &Worker,
) -> Result<(), IoFail> {
    if !buf.is_empty() {
        // boxed: the timer's space is taken only while part of a preface waits for the rest
        return Box::pin(stream.readable_by(deadline)).await;
    }
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    let guard = w.idle.register(stream.raw_fd(), left);
    let r = stream.readable().await;
    if guard.expired() {
        return Err(IoFail::Timeout);
    }
    r.map_err(IoFail::Io)
}

/// Whether `b` (fewer than 24 bytes) may still become the client preface.
fn preface_so_far(b: &[u8]) -> bool {
    PREFACE.get(..b.len()).is_some_and(|p| p == b)
}

/// With `server.h2c`: reads the first bytes (waiting for readiness without a buffer first, the
/// head-read timeout bounding it) until they are the client preface (RFC 9113 §3.4), or cannot
/// be; then starts the session for them, the bytes kept. A connection that closes or stays
/// silent without a byte is closed, as HTTP/1 closes it. `h1` starts the HTTP/1 session
/// ([`serve`]; a parameter so the task's type names its future).
async fn detect<S, F>(
    tcp: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    closed: Rc<Cell<bool>>,
    w: Rc<Worker>,
    h1: F,
) -> Option<S>
where
    F: FnOnce(Downstream, Rc<Worker>) -> S,
{
    let guard = Handshaking(&w);
    let _ = tcp.set_nodelay(true);
    let mut stream = Stream::Plain(tcp);
    let limit = w.with_current(|g| g.config.server.timeouts.header_read);
    let deadline = std::time::Instant::now() + limit;
    let mut buf = BytesMut::new();
    let give_back = |buf: BytesMut| {
        if buf.capacity() != 0 {
            w.buffers.give(buf);
        }
    };
    loop {
        if w.draining.get() || closed.get() {
            give_back(buf);
            return None;
        }
        match wait_first_bytes(&stream, &buf, deadline, &w).await {
            Ok(()) => {}
            // bytes that are not (yet) a preface: HTTP/1 answers them (408 or 400)
            Err(IoFail::Timeout) if !buf.is_empty() => break,
            Err(_) => {
                give_back(buf);
                return None;
            }
        }
        if buf.capacity() == 0 {
            buf = w.buffers.take();
        }
        match stream.try_read(&mut buf, w.buffers.size()) {
            Ok(0) if buf.is_empty() => {
                give_back(buf);
                return None;
            }
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                give_back(buf);
                return None;
            }
        }
        if buf.len() >= PREFACE.len() || !preface_so_far(&buf) {
            break;
        }
    }
    let facts = ConnFacts::plain(peer, local);
    // the session uncounts the connection from here on
    std::mem::forget(guard);
    if buf.starts_with(PREFACE) {
        spawn_h2(stream, facts, closed, buf, w);
        return None;
    }
    let mut conn = Downstream::new(stream, facts, closed);
    conn.buf = buf;
    Some(h1(conn, w))
}

/// A TLS connection's task, by phase. The handshake's state (the `TlsStream` inline, over a
/// kilobyte, and its futures) is boxed and freed when it ends; what it yields is the serve
/// future, which then takes the task's place inline. So an idle keep-alive connection parks
/// no more than a plain one does (an `async fn` awaiting both would keep the handshake's
/// space beside the serve future, or a moved-from copy of it: rustc does not reuse the slots
/// of moved-from locals).
enum TlsTask<H, S> {
    Handshaking(Pin<Box<H>>),
    Serving(S),
    Done,
}

impl<H, S> Future for TlsTask<H, S>
where
    H: Future<Output = Option<S>>,
    S: Future<Output = ()>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `S` is the only field that is ever pinned in place (`H` is pinned in its
        // own box). It is never moved out once polled: the value is replaced (dropped in
        // place) only by assigning `Done` after it completed, and is never handed out except
        // as the `Pin` below.
        let this = unsafe { self.get_unchecked_mut() };
        loop {
            match this {
                TlsTask::Handshaking(h) => match h.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    // the serve future moves in before it is first polled
                    Poll::Ready(Some(serving)) => *this = TlsTask::Serving(serving),
                    Poll::Ready(None) => {
                        *this = TlsTask::Done;
                        return Poll::Ready(());
                    }
                },
                TlsTask::Serving(s) => {
                    // SAFETY: `s` lives inside the pinned task and stays there until dropped
                    // in place (see above).
                    let s = unsafe { Pin::new_unchecked(s) };
                    if s.poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    *this = TlsTask::Done;
                    return Poll::Ready(());
                }
                TlsTask::Done => return Poll::Ready(()),
            }
        }
    }
}

/// The handshake under the settings current at accept, counted in the metrics; on success the
/// connection's serve future (not yet started), for the session ALPN chose.
async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    closed: Rc<Cell<bool>>,
    w: Rc<Worker>,
) -> Option<impl Future<Output = ()>> {
    let guard = Handshaking(&w);
    // the settings of the generation current at accept; a reload that removed `[tls]` between
    // the accept and now leaves nothing to handshake with: the connection closes
    let (cfg, limit) = w.with_current(|g| {
        let t = g.config.tls.as_ref()?;
        Some((t.server.clone(), t.handshake_timeout))
    })?;
    let _ = tcp.set_nodelay(true);
    let (tls, facts) = match TlsStream::accept_versioned(tcp, cfg, limit).await {
        Ok(ok) => ok,
        Err(Refused { error, version }) => {
            let version = version.unwrap_or(UNKNOWN_VERSION);
            w.with_current(|g| g.metrics.handshake(version, reason(&error)));
            return None; // dropping the stream closes the socket; `guard` uncounts it
        }
    };
    w.with_current(|g| g.metrics.handshake(facts.version, "ok"));
    let h2 = facts.alpn.as_deref() == Some(ALPN_H2);
    let facts = ConnFacts::tls(peer, local, facts);
    let stream = Stream::Tls(Box::new(tls));
    // the session uncounts the connection from here on (its own guard)
    std::mem::forget(guard);
    if h2 {
        spawn_h2(stream, facts, closed, BytesMut::new(), w);
        return None;
    }
    let conn = Downstream::new(stream, facts, closed);
    Some(serve(conn, w))
}

#[cfg(test)]
mod footprint {
    /// The task a TLS connection parks while idle: [`super::handshake_then_serve`]'s future.
    /// The same bound as a plain connection's serve future (`proxy::conn`'s footprint test:
    /// with the task header the allocation stays within the allocator's 512-byte size class);
    /// the TLS state itself is behind the stream's box, and the handshake behind its own.
    const TLS_TASK_FUTURE_MAX: usize = 448;

    async fn future_size() -> usize {
        let w = std::rc::Rc::new(crate::testkit::worker(
            "[[route]]\nkey = \"GET /x\"\nmock = {}\n",
        ));
        let (_c, s, facts) = crate::testkit::accepted();
        let (peer, local) = (facts.peer(), facts.local());
        let closed = std::rc::Rc::new(std::cell::Cell::new(false));
        let f = super::handshake_then_serve(s, peer, local, closed, w);
        eprintln!(
            "TLS connection task future: {} bytes",
            std::mem::size_of_val(&f)
        );
        std::mem::size_of_val(&f)
    }

    /// A plain listener's task ([`super::plain`]): the HTTP/1 serve future inside the
    /// dispatch's enums (without `server.h2c`; with it, the look at the first bytes is boxed
    /// and freed), within the same bound.
    async fn plain_future_size(h2c: bool) -> usize {
        let line = if h2c { "[server]\nh2c = true\n" } else { "" };
        let w = std::rc::Rc::new(crate::testkit::worker(&format!(
            "{line}[[route]]\nkey = \"GET /x\"\nmock = {{}}\n"
        )));
        let (_c, s, facts) = crate::testkit::accepted();
        let (peer, local) = (facts.peer(), facts.local());
        let closed = std::rc::Rc::new(std::cell::Cell::new(false));
        let f = super::plain(s, peer, local, closed, w);
        std::mem::size_of_val(&f)
    }

    #[test]
    fn idle_plain_connection_task_stays_small() {
        for h2c in [false, true] {
            let size = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .unwrap()
                .block_on(plain_future_size(h2c));
            assert!(
                size <= TLS_TASK_FUTURE_MAX,
                "plain task future is {size} bytes"
            );
        }
    }

    #[test]
    fn idle_tls_connection_task_stays_small_epoll() {
        let size = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(future_size());
        assert!(
            size <= TLS_TASK_FUTURE_MAX,
            "TLS task future is {size} bytes"
        );
    }

    #[test]
    fn idle_tls_connection_task_stays_small_io_uring() {
        let size = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(future_size());
        assert!(
            size <= TLS_TASK_FUTURE_MAX,
            "TLS task future is {size} bytes"
        );
    }
}
