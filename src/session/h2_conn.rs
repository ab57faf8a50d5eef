//! The state one HTTP/2 connection's task shares with its streams' tasks, and the waits on it.
//!
//! Owns: [`Shared`] (the protocol state machine [`Connection`], one [`Inbox`] per open stream,
//! the output taken from the machine and not yet written, and the wakers), kept in an
//! `Rc<RefCell<..>>` on one core (no task holds the borrow across an await), and the futures
//! tasks park on: the connection task on [`Shared::poll_notified`] (a stream queued output), a
//! stream task on its inbox (request body, reset), on room to send ([`send_room`]: windows
//! and unwritten output) or on its output being written ([`written_past`]). The waker slots are our own: one per stream
//! (a stream task waits on one thing at a time), one for the connection task, a list for
//! tasks waiting on written output. Leaves out: the socket and the loop (`super::h2`) and the
//! request/response logic of a stream (`super::h2_stream`).
//!
//! Data flow: connection task: socket → `Connection::recv` → events → inboxes (wake the
//! stream); stream task: inbox → lifecycle; response → `Connection::send_*` →
//! [`Shared::collect`] into `out` → wake the connection task → socket, `written` advances →
//! wake the tasks waiting on it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::http2::{Connection, ErrorCode, StreamMap};

/// Where a stream's request body stands, as the connection task saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// More DATA may come.
    Open,
    /// END_STREAM was received (after the data still queued).
    Ended,
    /// The stream was reset (by the peer, or by the protocol layer for a stream error): its
    /// task must stop, nothing more of it may be forwarded.
    Reset,
}

/// One stream's inbox: request body bytes received and not yet consumed, how it ends, and
/// the stream task's waker.
#[derive(Debug)]
pub struct Inbox {
    pub data: VecDeque<Bytes>,
    /// Bytes in `data`.
    pub buffered: usize,
    pub end: BodyEnd,
    /// Why the stream was reset (logs).
    pub reset: Option<ErrorCode>,
    waker: Option<Waker>,
    /// The stream's integration waiting for the client to go ([`client_gone`]), beside
    /// whatever the task itself waits on.
    gone_waker: Option<Waker>,
}

impl Inbox {
    pub fn new(ended: bool) -> Inbox {
        Inbox {
            data: VecDeque::new(),
            buffered: 0,
            end: if ended { BodyEnd::Ended } else { BodyEnd::Open },
            reset: None,
            waker: None,
            gone_waker: None,
        }
    }

    /// Wakes the stream's task, if it waits.
    pub fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// The stream is reset (or its connection closed): wakes the task and whoever waits in
    /// [`client_gone`], so the stream's origin exchange stops.
    pub fn cancel(&mut self) {
        self.wake();
        if let Some(w) = self.gone_waker.take() {
            w.wake();
        }
    }
}

/// What a response stalled on send room for `zero_window_timeout` leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Other streams are busy otherwise: reset this one (counted toward the reset limit).
    Stream,
    /// Every active stream waits for room and nothing moved for the whole timeout: the
    /// client is starving the connection (a zero-window attack): GOAWAY ENHANCE_YOUR_CALM.
    Connection,
    /// Every stream waits, but sending moved recently: wait until then, and decide again.
    Wait(Instant),
}

/// Counts a stream in [`Shared::waiting_room`] while it waits for send room, however the wait
/// ends (the wait's future may be dropped).
pub struct WaitingRoom(SharedRef);

impl WaitingRoom {
    pub fn enter(s: &SharedRef) -> WaitingRoom {
        s.borrow_mut().waiting_room += 1;
        WaitingRoom(s.clone())
    }
}

impl Drop for WaitingRoom {
    fn drop(&mut self) {
        // no task holds the borrow across an await, and drops run between polls
        if let Ok(mut sh) = self.0.try_borrow_mut() {
            sh.waiting_room = sh.waiting_room.saturating_sub(1);
        } else {
            debug_assert!(
                false,
                "the shared state is borrowed while a wait is dropped"
            );
        }
    }
}

/// Whether the connection still carries streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Serving.
    Open,
    /// The socket is gone or the connection failed: every stream stops.
    Closed,
}

/// The connection's state shared by its task and its streams' tasks (see the module docs).
pub struct Shared {
    pub conn: Connection,
    /// The per-stream receive window this connection advertised (its SETTINGS, fixed for its
    /// life whatever a reload says).
    pub stream_window: u32,
    pub streams: StreamMap<Inbox>,
    /// At most this many inboxes (live stream tasks, reset ones included): the connection's
    /// `max_concurrent_streams`.
    pub max_streams: u32,
    /// Output taken from `conn`, not yet written.
    pub out: BytesMut,
    /// Bytes ever appended to `out`.
    pub queued: u64,
    /// Bytes ever written to the socket.
    pub written: u64,
    pub life: Life,
    /// Streams waiting in [`send_room`] (on a window or on unwritten output).
    pub waiting_room: u32,
    /// The last time sending made progress: output written, or the client opened a window.
    pub last_send_progress: Instant,
    /// A stream queued output (or finished) since the connection task last looked.
    notified: bool,
    conn_waker: Option<Waker>,
    /// Tasks waiting for `out` to drain.
    out_waiters: Vec<Waker>,
}

impl Shared {
    pub fn new(conn: Connection, stream_window: u32) -> Shared {
        Shared {
            conn,
            stream_window,
            streams: StreamMap::default(),
            max_streams: u32::MAX,
            out: BytesMut::new(),
            queued: 0,
            written: 0,
            life: Life::Open,
            waiting_room: 0,
            last_send_progress: Instant::now(),
            notified: false,
            conn_waker: None,
            out_waiters: Vec::new(),
        }
    }

    /// Moves what the protocol machine queued into `out`.
    pub fn collect(&mut self) {
        if !self.conn.has_output() {
            return;
        }
        let o = self.conn.take_output();
        self.queued += o.len() as u64;
        if self.out.is_empty() {
            self.out = o;
        } else {
            self.out.extend_from_slice(&o);
        }
    }

    /// The connection went idle (no stream): give back what its last streams left behind (the
    /// inbox table's and the waiter list's capacity, and the protocol machine's own), so an
    /// idle connection keeps only its state, never its busiest moment's buffers.
    pub fn shrink_idle(&mut self) {
        if self.streams.is_empty() && self.streams.capacity() != 0 {
            self.streams = StreamMap::default();
        }
        if self.out_waiters.is_empty() && self.out_waiters.capacity() != 0 {
            self.out_waiters = Vec::new();
        }
        if self.out.is_empty() && self.out.capacity() != 0 {
            self.out = BytesMut::new();
        }
        self.conn.shrink_idle();
    }

    /// The connection task's wait for its streams: ready (consuming the notification) when a
    /// stream asked for the connection task, else the task's waker is kept for
    /// [`Shared::notify`].
    pub fn poll_notified(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if self.notified {
            self.notified = false;
            return Poll::Ready(());
        }
        self.conn_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// [`Shared::collect`], then tells the connection task there is work.
    pub fn notify(&mut self) {
        self.collect();
        self.notified = true;
        if let Some(w) = self.conn_waker.take() {
            w.wake();
        }
    }

    /// The connection task took `out` and wrote `n` bytes of it: wake who waits on that.
    pub fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        if n > 0 {
            self.last_send_progress = Instant::now();
        }
        for w in self.out_waiters.drain(..) {
            w.wake();
        }
    }

    /// The connection ended: every stream stops (their tasks see [`Life::Closed`]).
    pub fn close(&mut self) {
        self.life = Life::Closed;
        for ib in self.streams.values_mut() {
            ib.cancel();
        }
        for w in self.out_waiters.drain(..) {
            w.wake();
        }
    }

    /// A stream's wait for send room passed `stall`: what to do about it (see [`Stall`]).
    pub fn stall_verdict(&self, stall: Duration, now: Instant) -> Stall {
        let active = self
            .streams
            .values()
            .filter(|ib| ib.end != BodyEnd::Reset)
            .count();
        if (self.waiting_room as usize) < active {
            return Stall::Stream;
        }
        let until = self.last_send_progress + stall;
        if now >= until {
            Stall::Connection
        } else {
            Stall::Wait(until)
        }
    }

    /// Wakes every stream (the connection's send window grew).
    pub fn wake_all(&mut self) {
        for ib in self.streams.values_mut() {
            ib.wake();
        }
    }
}

/// Shared by the connection's tasks, on one core.
pub type SharedRef = std::rc::Rc<std::cell::RefCell<Shared>>;

/// Whether there is something for stream `id` now: `f` decides from its inbox (and the
/// connection); `Some` ends the wait. A stream whose inbox is gone, or a closed connection,
/// gives `gone`.
pub async fn wait_stream<T>(
    s: &SharedRef,
    id: u32,
    gone: T,
    mut f: impl FnMut(&mut Shared) -> Option<T>,
) -> T
where
    T: Copy,
{
    poll_fn(|cx| {
        let mut sh = s.borrow_mut();
        if sh.life == Life::Closed || !sh.streams.contains_key(&id) {
            return Poll::Ready(gone);
        }
        if let Some(v) = f(&mut sh) {
            return Poll::Ready(v);
        }
        if let Some(ib) = sh.streams.get_mut(&id) {
            ib.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    })
    .await
}

/// Waits until stream `id` may queue DATA: its send window and the connection's are open AND
/// less than `max_out` bytes of output are unwritten. Resolves to how many payload bytes it may
/// queue now (at most the window, and no more than brings the output to `max_out`, so streams
/// woken together cannot pile up more than that between them), `Some(0)` when the stream was
/// reset, `None` when it or the connection is gone. The caller queues synchronously after it
/// resolves (no await in between), so the check still holds.
pub async fn send_room(s: &SharedRef, id: u32, max_out: usize) -> Option<usize> {
    poll_fn(|cx| {
        let mut sh = s.borrow_mut();
        if sh.life == Life::Closed {
            return Poll::Ready(None);
        }
        match sh.streams.get(&id) {
            None => return Poll::Ready(None),
            Some(ib) if ib.end == BodyEnd::Reset => return Poll::Ready(Some(0)),
            Some(_) => {}
        }
        let unwritten = sh.out.len();
        if unwritten >= max_out {
            sh.out_waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        let window = sh.conn.send_capacity(id);
        if window > 0 {
            return Poll::Ready(Some(window.min(max_out - unwritten)));
        }
        if let Some(ib) = sh.streams.get_mut(&id) {
            ib.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    })
    .await
}

/// Waits until less than `max_out` bytes of output are unwritten, so a stream may queue a
/// HEADERS frame (head or trailers; not flow-controlled, RFC 9113 §6.9). False: the stream was
/// reset, its inbox dropped, or the connection closed.
pub async fn out_room(s: &SharedRef, id: u32, max_out: usize) -> bool {
    poll_fn(|cx| {
        let mut sh = s.borrow_mut();
        if sh.life == Life::Closed {
            return Poll::Ready(false);
        }
        match sh.streams.get(&id) {
            Some(ib) if ib.end != BodyEnd::Reset => {}
            _ => return Poll::Ready(false),
        }
        if sh.out.len() < max_out {
            return Poll::Ready(true);
        }
        sh.out_waiters.push(cx.waker().clone());
        Poll::Pending
    })
    .await
}

/// Resolves once stream `id` was reset, its inbox dropped, or the connection closed: the
/// client will not take its response (see [`crate::session::Session::client_gone`]).
pub async fn client_gone(s: &SharedRef, id: u32) {
    poll_fn(|cx| {
        let mut sh = s.borrow_mut();
        if sh.life == Life::Closed {
            return Poll::Ready(());
        }
        match sh.streams.get_mut(&id) {
            Some(ib) if ib.end != BodyEnd::Reset => {
                ib.gone_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => Poll::Ready(()),
        }
    })
    .await
}

/// Waits until the output up to `mark` (a value of [`Shared::queued`]) was written (false: the
/// connection closed first).
pub async fn written_past(s: &SharedRef, mark: u64) -> bool {
    poll_fn(|cx| {
        let mut sh = s.borrow_mut();
        if sh.written >= mark {
            return Poll::Ready(true);
        }
        if sh.life == Life::Closed {
            return Poll::Ready(false);
        }
        sh.out_waiters.push(cx.waker().clone());
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::http2::Limits;

    /// A head (or trailers) waits while the connection's unwritten output is at the bound, and
    /// goes once it was written; a reset stream does not wait.
    #[test]
    fn a_head_waits_for_output_room() {
        let sh = Shared::new(Connection::new(Limits::default()), 65_535);
        let s: SharedRef = Rc::new(RefCell::new(sh));
        s.borrow_mut().streams.insert(1, Inbox::new(true));
        s.borrow_mut().out = BytesMut::from(&[0u8; 100][..]);
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut f = pin!(out_room(&s, 1, 100));
            assert_eq!(
                f.as_mut().poll(&mut cx),
                Poll::Pending,
                "100 bytes unwritten"
            );
            let out = std::mem::take(&mut s.borrow_mut().out);
            s.borrow_mut().wrote(out.len());
            assert_eq!(f.as_mut().poll(&mut cx), Poll::Ready(true));
        }
        s.borrow_mut().out = BytesMut::from(&[0u8; 100][..]);
        if let Some(ib) = s.borrow_mut().streams.get_mut(&1) {
            ib.end = BodyEnd::Reset;
        }
        let mut f = pin!(out_room(&s, 1, 100));
        assert_eq!(
            f.as_mut().poll(&mut cx),
            Poll::Ready(false),
            "reset: no wait"
        );
    }
}
