//! One client connection's loop: wait without a buffer, let the session read a head, hand it
//! to the lifecycle, repeat.
//!
//! Owns: the connection's states between requests ([`ConnState`]), the keep-alive idle timeout
//! and the head-read timeout of a silent connection, the open/busy counts ([`OpenGuard`],
//! [`BusyGuard`]) and the read buffer's lifetime. An idle connection holds no read buffer: it
//! waits for readiness (`readable`, a poll op on io_uring, epoll readiness otherwise) and only
//! then lets the HTTP/1 session borrow a buffer from the worker's pool, returning it once
//! nothing is pipelined. Its deadline lives in the worker's [`crate::worker::idle::IdleTable`],
//! not in a timer of its own. The per-request work is boxed, so the future an idle connection
//! parks is small; the connection's facts are boxed with it for the same reason. Leaves out:
//! every HTTP/1 decision (reading heads and their deadline, persistence, pipelining, framing,
//! lingering or not: [`crate::session::h1`]) and what a request does ([`super::lifecycle`]).

use std::rc::Rc;

use super::lifecycle;
// the entry points the accept loop uses: `Downstream::new` and [`serve`]
pub use crate::session::h1::{Accepted, Downstream};
use crate::session::h1::{Between, HeadRead, Outcome};
use crate::worker::{Cx, Worker};

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
    // bytes the accept side already read (a plain listener with h2c looked at them) are a
    // request to serve at once
    let mut state = if conn.buf.is_empty() {
        ConnState::New
    } else {
        ConnState::Pipelined
    };
    loop {
        if state != ConnState::Pipelined && !wait_readable(&w, &conn, state).await {
            break;
        }
        // Only the wait above lives in this (long-lived) future; a request's work is boxed so
        // an idle connection parks a small task.
        if Box::pin(serve_one(&w, &mut conn)).await != Outcome::KeepAlive {
            break;
        }
        state = match conn.between_requests(&w.buffers) {
            Between::Pipelined => ConnState::Pipelined,
            Between::Idle => ConnState::Idle,
        };
    }
    conn.stream.notify_close();
    conn.release_buffer(&w.buffers);
}

/// Lets the session read one request head, and serves it.
async fn serve_one(w: &Worker, conn: &mut Downstream) -> Outcome {
    // The request runs on the generation current when its head starts to be read, to the end.
    let g = w.current();
    let cx = Cx { w, g: &g };
    let outcome = match conn.read_head(&cx).await {
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
    conn.release_buffer(&w.buffers);
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
            let w = std::rc::Rc::new(crate::testkit::worker(
                "[[route]]\nkey = \"GET /x\"\nmock = {}\n",
            ));
            let (_c, conn) = crate::testkit::downstream();
            let f = super::serve(conn, w);
            std::mem::size_of_val(&f)
        });
        assert!(size <= SERVE_FUTURE_MAX, "serve() future is {size} bytes");
    }
}
