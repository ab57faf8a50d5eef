//! Lingering close (RFC 9112 §9.6): how a client connection ends while the client may still be
//! sending.
//!
//! Owns: the last phase of a connection that answered before reading the whole request (an
//! error with an unread or partly read body, a 413 for a declared body, a 408, a 400 after a
//! head). Closing such a socket at once makes the kernel answer the client's further bytes with
//! a reset, and a reset discards the response still unread in the client's receive buffer: the
//! client sees "connection reset" instead of the 413. So the connection first half-closes
//! (`shutdown(SHUT_WR)`: the response, then end of stream), then reads and discards what the
//! client still sends until it closes its side, for at most `server.timeouts.linger_ms` and
//! `server.limits.max_linger_bytes`, then closes. Leaves out: the decision to linger (the
//! HTTP/1 session's [`crate::session::h1::Outcome::CloseLingering`]) and the response itself.
//!
//! Data flow: no buffer is held. Each step waits for readiness without a buffer, then drains
//! what is there synchronously with `recv(2)` into a stack array of [`DISCARD_CHUNK`] bytes that
//! lives only for that call. The wait is on the socket's readiness alone
//! ([`Stream::socket_readable_by`]: what TLS already holds is never consumed by a raw read, so
//! waiting on the stream's readiness would spin the core), an ordinary async wait bounded by
//! the deadline, so the core keeps serving other connections. A TLS client that already sent
//! close_notify (RFC 8446 §6.1) sends nothing more: the linger ends at once. A worker that
//! starts draining (shutdown) ends the linger at its next wake-up, and a shutdown drops it
//! with the runtime (it is not counted as a busy request).

use std::cell::Cell;
use std::io;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use crate::transport::{IoFail, ReadEnd, Stream};

/// Bytes discarded per `recv(2)`; a stack array, never kept across an await.
pub const DISCARD_CHUNK: usize = 16 * 1024;
/// `recv(2)` calls per readiness wake-up before waiting again (bounds one step's CPU time).
pub const RECVS_PER_WAKE: usize = 16;

/// Why a lingering close ended (for tests and reasoning; the connection closes either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LingerEnd {
    /// The client closed its side (or reset): nothing more will arrive.
    PeerClosed,
    /// `linger_ms` passed.
    Deadline,
    /// `max_linger_bytes` were discarded.
    ByteCap,
    /// The worker is draining.
    Draining,
}

/// Half-closes `stream`, then discards the client's bytes until it closes, `limit` passes or
/// `max_bytes` were discarded. A zero `limit` only half-closes.
pub async fn linger(
    stream: &mut Stream,
    limit: Duration,
    max_bytes: u64,
    draining: &Cell<bool>,
) -> LingerEnd {
    // RFC 9112 §9.6: close the sending side first; the client reads the response, then EOF.
    // (a failed half-close, the client being gone, shows on the first read below)
    stream.shutdown_write().await;
    // a TLS peer's close_notify ends its data (RFC 8446 §6.1): nothing more can legitimately
    // come, and no byte is left unread to make the close a reset
    if stream.read_end() == ReadEnd::CloseNotify {
        return LingerEnd::PeerClosed;
    }
    let deadline = Instant::now() + limit;
    let mut discarded = 0u64;
    loop {
        if draining.get() {
            return LingerEnd::Draining;
        }
        if discarded >= max_bytes {
            return LingerEnd::ByteCap;
        }
        match stream.socket_readable_by(deadline).await {
            Ok(()) => {}
            Err(IoFail::Io(_)) => return LingerEnd::PeerClosed,
            Err(IoFail::Timeout) => return LingerEnd::Deadline,
        }
        for _ in 0..RECVS_PER_WAKE {
            match discard(stream) {
                Ok(0) => return LingerEnd::PeerClosed,
                Ok(n) => discarded = discarded.saturating_add(n as u64),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return LingerEnd::PeerClosed,
            }
            if discarded >= max_bytes {
                break;
            }
        }
    }
}

/// One non-blocking `recv(2)` into a throw-away stack array (left uninitialised: nothing
/// reads it).
fn discard(stream: &mut Stream) -> io::Result<usize> {
    stream.discard(&mut [MaybeUninit::uninit(); DISCARD_CHUNK])
}
