//! The HTTP/2 session (RFC 9113): one client connection's task, driving the sans-IO protocol
//! machine ([`crate::http2::Connection`]) over the connection's [`Stream`].
//!
//! Owns: [`serve`], the connection task: it waits for the socket's readiness without a buffer
//! (an idle HTTP/2 connection holds no read buffer, like an idle HTTP/1 one), OR for a stream
//! task's notification that it queued output, OR, while streams are active, for one
//! state-check timer (a periodic look at draining / a closed listener; re-armed when it fires,
//! dropped when the connection goes idle); reads what is there into a
//! pooled buffer (given back as soon as no partial frame is left), feeds
//! `Connection::recv`, turns events into stream tasks (one per request, spawned through the
//! [`StreamTask`] the server passes in, on the generation current at that moment: a reload's
//! new config applies to new streams) and into the streams' inboxes, and writes all output
//! within `server.timeouts.write_ms`. Connection errors (the protocol layer already queued the
//! GOAWAY) and the driver's own endings are counted in `tollgate_http2_goaway_total{reason}`.
//! Drain (worker draining, or the listener removed by a reload): GOAWAY(NO_ERROR), in-flight
//! streams finish, then the connection closes; idle longer than `keepalive_idle_ms` (before
//! the first request: `header_read_ms`): GOAWAY(NO_ERROR) and close; that deadline is in the
//! worker's [`crate::worker::idle::IdleTable`] (no timer per idle connection): its sweep shuts
//! the reading side down, the wait wakes, and the expired registration tells the timeout from
//! the client's own close. Memory: an idle connection keeps its task (the parked future: the
//! write and the timer are boxed only while in use), `Shared` (its tables' capacity freed on
//! going idle) and nothing else; see `tests/h2_idle_memory.rs`. Leaves out: a stream's
//! request and response (`super::h2_stream`: the [`super::Session`] of one stream), the
//! translations (`super::h2_head`, `super::h2_response`), and what a request does (the
//! lifecycle, reached only through [`StreamTask`]: sessions never import `proxy`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::time::Sleep;

use super::h2_conn::{BodyEnd, Inbox, Shared, SharedRef};
use super::h2_head::{request_head, H2Request};
use super::h2_stream::H2Stream;
use crate::error::GatewayError;
use crate::facts::{ConnFacts, Protocol};
use crate::http::RequestHead;
use crate::http2::{ConnError, Connection, ErrorCode, Event};
use crate::transport::Stream;
use crate::worker::{Generation, Worker};

/// How often a connection with streams in flight looks at the worker's draining flag and its
/// listener's closed flag (an idle one is not woken for it: it closes with the runtime or its
/// idle timeout, as an idle HTTP/1 connection does).
pub const STATE_CHECK: Duration = Duration::from_millis(100);

/// Runs one stream: the server's glue to the lifecycle (`proxy`), given the worker, the
/// generation current when the request arrived, the stream, and its head (or why it was
/// refused). The future is boxed: one allocation per stream, beside the task's own.
pub type StreamTask = fn(
    Rc<Worker>,
    Rc<Generation>,
    H2Stream,
    Result<RequestHead, GatewayError>,
) -> Pin<Box<dyn Future<Output = ()>>>;

/// Why the connection task ended the connection (the `reason` label of
/// `tollgate_http2_goaway_total`, with [`crate::http2::Abuse::as_str`] for abuse).
pub fn goaway_reason(e: &ConnError) -> &'static str {
    if let Some(a) = &e.abuse {
        return a.as_str();
    }
    match e.code {
        ErrorCode::ProtocolError => "protocol_error",
        ErrorCode::FlowControlError => "flow_control_error",
        ErrorCode::FrameSizeError => "frame_size_error",
        ErrorCode::CompressionError => "compression_error",
        ErrorCode::StreamClosed => "stream_closed",
        ErrorCode::SettingsTimeout => "settings_timeout",
        ErrorCode::EnhanceYourCalm => "enhance_your_calm",
        _ => "other",
    }
}

/// The driver's own reasons for a GOAWAY.
pub const REASON_IDLE: &str = "idle_timeout";
/// Draining worker or closed listener.
pub const REASON_DRAIN: &str = "drain";
/// Our SETTINGS not acknowledged within [`SETTINGS_ACK_TIMEOUT`] (RFC 9113 §6.5.3).
pub const REASON_SETTINGS: &str = "settings_timeout";
/// A header block (HEADERS without END_HEADERS) not completed within `header_read_ms`.
pub const REASON_HEADER_BLOCK: &str = "header_block_timeout";

/// How long a client may leave our SETTINGS unacknowledged (RFC 9113 §6.5.3: then a
/// connection error SETTINGS_TIMEOUT). A client acknowledges in one round trip; this bounds a
/// peer that never does (it would keep us on settings it has not agreed to).
pub const SETTINGS_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Every active stream waited `zero_window_timeout_ms` for send room with no progress.
pub const REASON_ZERO_WINDOW: &str = "zero_window_stall";

/// What woke the connection task.
enum Wake {
    Readable(std::io::Result<()>),
    Notified,
    Timer,
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// GOAWAY(NO_ERROR) sent: in-flight streams finish, then close.
    GoingAway,
    /// A connection error: flush the GOAWAY, then close.
    Failed,
}

/// However the connection task ends (returns, is dropped by the runtime's shutdown, or unwinds
/// from a panic): closes the shared state, so every stream task parked on it (an inbox, send
/// room, written output, [`crate::session::Session::client_gone`]) is woken and ends, and
/// uncounts the connection from the worker's open and HTTP/2 counts.
struct ConnGuard<'a>(&'a Worker, SharedRef);

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        // the connection task holds no borrow across an await, and drops run between polls
        match self.1.try_borrow_mut() {
            Ok(mut sh) => sh.close(),
            Err(_) => debug_assert!(
                false,
                "the shared state is borrowed at the connection's end"
            ),
        }
        let c = &self.0.open_connections;
        c.set(c.get().saturating_sub(1));
        let h = &self.0.h2_connections;
        h.set(h.get().saturating_sub(1));
    }
}

/// Serves an HTTP/2 connection (already counted in `open_connections`; uncounted here however
/// it ends) until it closes. `input`: bytes already read (the client preface, or part of it).
/// The facts go behind their `Rc` before the task's future is made, so it has no slot for the
/// moved-from value (rustc does not reuse it): an idle connection parks this future.
pub fn serve(
    stream: Stream,
    mut facts: ConnFacts,
    closed: Rc<Cell<bool>>,
    input: BytesMut,
    w: Rc<Worker>,
    task: StreamTask,
) -> impl Future<Output = ()> {
    facts.protocol = Protocol::Http2;
    run(stream, Rc::new(facts), closed, input, w, task)
}

/// [`serve`]'s task.
async fn run(
    mut stream: Stream,
    facts: Rc<ConnFacts>,
    closed: Rc<Cell<bool>>,
    mut input: BytesMut,
    w: Rc<Worker>,
    task: StreamTask,
) {
    let _ = stream.set_nodelay(true);
    let limits = w.with_current(|g| g.config.server.http2.limits);
    let mut shared = Shared::new(Connection::new(limits), limits.initial_window_size);
    shared.max_streams = limits.max_concurrent_streams;
    let shared: SharedRef = Rc::new(RefCell::new(shared));
    w.h2_connections.set(w.h2_connections.get() + 1);
    let _guard = ConnGuard(&w, shared.clone());
    shared.borrow_mut().collect(); // our SETTINGS (and the connection WINDOW_UPDATE)
    let mut events = Vec::new();
    let mut phase = Phase::Serving;
    let mut idle_since = Instant::now();
    let mut served_any = false;
    // the handshake bounds' clocks, boxed and dropped once none runs (an idle connection
    // parks no space for them)
    let mut clocks = Some(Box::new(Clocks {
        settings_sent: Instant::now(),
        block_since: None,
    }));
    // the state-check timer while streams are active or a handshake bound runs (boxed: an
    // idle connection has none)
    let mut ticker: Option<Pin<Box<Sleep>>> = None;
    loop {
        if !input.is_empty() && phase != Phase::Failed {
            let mut r = shared.borrow_mut().conn.recv(&mut input, &mut events);
            for ev in events.drain(..) {
                if let Event::Request { .. } = ev {
                    // a connection that failed starts no request (the events before the error
                    // only stop the streams already running)
                    if r.is_err() {
                        continue;
                    }
                    served_any = true;
                }
                if let Err(e) = dispatch(ev, &shared, &facts, &closed, &w, task) {
                    r = Err(e);
                }
            }
            let silent = shared.borrow_mut().conn.take_silent_resets();
            if silent > 0 {
                w.with_current(|g| (0..silent).for_each(|_| g.metrics.http2_stream_reset()));
            }
            if let Err(e) = r {
                w.with_current(|g| g.metrics.http2_goaway(goaway_reason(&e)));
                phase = Phase::Failed;
            }
        }
        if input.is_empty() && input.capacity() != 0 {
            w.buffers.give(std::mem::take(&mut input));
        }
        shared.borrow_mut().collect();
        if phase != Phase::Failed && shared.borrow().conn.error().is_some() {
            // a stream task ended the connection (a zero-window stall, the reset limit): it
            // counted the GOAWAY; flush it and close
            phase = Phase::Failed;
        }
        // one batch, then back to reading: streams adding output all the time must not keep
        // the connection from reading (PINGs, window updates, resets); the rest goes next turn
        // (the streams' notification wakes the wait at once). A failed connection writes all.
        if !flush(&shared, &mut stream, &w, phase == Phase::Failed).await || phase == Phase::Failed
        {
            break;
        }
        let active = shared.borrow().streams.len();
        if phase == Phase::Serving && (w.draining.get() || closed.get()) {
            shared.borrow_mut().conn.go_away(ErrorCode::NoError);
            w.with_current(|g| g.metrics.http2_goaway(REASON_DRAIN));
            phase = Phase::GoingAway;
            continue; // flush it
        }
        if phase == Phase::GoingAway && active == 0 {
            break;
        }
        // (in a block: only what the wait needs lives across it, an idle connection parks it)
        let bounded = {
            let header_read = w.with_current(|g| g.config.server.timeouts.header_read);
            let (late, due) = handshake_deadlines(&shared.borrow().conn, &mut clocks, header_read);
            if let Some((code, reason)) = late {
                let _ = shared.borrow_mut().conn.abort(code, reason);
                w.with_current(|g| g.metrics.http2_goaway(reason));
                phase = Phase::Failed;
                continue; // flush the GOAWAY, then close
            }
            due.is_some()
        };
        let (wake, expired) = if active > 0 || bounded {
            if active > 0 {
                idle_since = Instant::now();
            }
            // one timer per busy period, re-armed when it fires (not one per wake); it also
            // checks the handshake bounds (SETTINGS ack, an unfinished header block)
            let t = ticker.get_or_insert_with(|| Box::pin(monoio::time::sleep(STATE_CHECK)));
            let wake = wait(&stream, &shared, Some(t.as_mut())).await;
            if let Wake::Timer = wake {
                t.as_mut().reset(monoio::time::Instant::now() + STATE_CHECK);
            }
            (wake, false)
        } else {
            // idle: no timer, no retained capacity; the worker's idle table holds the
            // deadline and shuts the reading side down when it passes
            ticker = None;
            events = Vec::new();
            shared.borrow_mut().shrink_idle();
            let idle_limit = w.with_current(|g| {
                let t = &g.config.server.timeouts;
                if served_any {
                    t.keepalive_idle
                } else {
                    t.header_read
                }
            });
            let left = (idle_since + idle_limit).saturating_duration_since(Instant::now());
            // the drain ends this wait too (the sweep's shutdown, as a timeout), and the
            // connection says GOAWAY at once
            let guard = w.idle.register_until_drain(stream.raw_fd(), left);
            let wake = wait(&stream, &shared, None).await;
            (wake, guard.expired())
        };
        let ended = match wake {
            Wake::Readable(Err(_)) => true,
            Wake::Readable(Ok(())) => {
                if input.capacity() == 0 {
                    input = w.buffers.take();
                }
                match stream.try_read(&mut input, w.buffers.size()) {
                    Ok(0) => true, // the client closed the connection, or the idle sweep did
                    Ok(_) => false,
                    Err(e) => !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ),
                }
            }
            Wake::Notified | Wake::Timer => false,
        };
        if ended {
            if expired {
                // idle longer than allowed, or the drain: say goodbye on the sending side,
                // still open
                shared.borrow_mut().conn.go_away(ErrorCode::NoError);
                let reason = if w.draining.get() {
                    REASON_DRAIN
                } else {
                    REASON_IDLE
                };
                w.with_current(|g| g.metrics.http2_goaway(reason));
                shared.borrow_mut().collect();
                let _ = flush(&shared, &mut stream, &w, true).await;
            }
            break;
        }
    }
    shared.borrow_mut().close();
    stream.notify_close();
    if input.capacity() != 0 {
        w.buffers.give(input);
    }
}

/// The bounds on the client's side of the protocol's bookkeeping: its acknowledgment of our
/// SETTINGS ([`SETTINGS_ACK_TIMEOUT`], RFC 9113 §6.5.3) and a header block's CONTINUATION
/// frames (`header_read_ms`, as for an HTTP/1 head). Returns the code and metric reason of the
/// one passed, if any, and the earliest time one will pass otherwise.
fn handshake_deadlines(
    conn: &Connection,
    clocks: &mut Option<Box<Clocks>>,
    header_read: Duration,
) -> (Option<(ErrorCode, &'static str)>, Option<Instant>) {
    let now = Instant::now();
    let (settings, block) = (conn.settings_pending(), conn.header_block_pending());
    if !settings && !block {
        *clocks = None;
        return (None, None);
    }
    let c = clocks.get_or_insert_with(|| {
        Box::new(Clocks {
            settings_sent: now,
            block_since: None,
        })
    });
    let mut due: Option<Instant> = None;
    if settings {
        let at = c.settings_sent + SETTINGS_ACK_TIMEOUT;
        if now >= at {
            return (Some((ErrorCode::SettingsTimeout, REASON_SETTINGS)), None);
        }
        due = Some(at);
    }
    if block {
        let at = *c.block_since.get_or_insert(now) + header_read;
        if now >= at {
            return (Some((ErrorCode::ProtocolError, REASON_HEADER_BLOCK)), None);
        }
        due = Some(due.map_or(at, |d| d.min(at)));
    } else {
        c.block_since = None;
    }
    (None, due)
}

/// When our SETTINGS went (the client must acknowledge them) and since when a header block
/// waits for its CONTINUATION: see [`handshake_deadlines`].
struct Clocks {
    settings_sent: Instant,
    block_since: Option<Instant>,
}

/// Writes the output queued so far: one batch (streams may add more meanwhile: the rest goes
/// next turn), or with `whole` until nothing is left. False: the client is gone (or too slow).
/// The write (its operation and timer) lives in a box only while output is pending, so the
/// connection task's own future, which an idle connection parks, does not carry its space.
async fn flush(shared: &SharedRef, stream: &mut Stream, w: &Worker, whole: bool) -> bool {
    if shared.borrow().out.is_empty() {
        return true;
    }
    let limit = w.with_current(|g| g.config.server.timeouts.write);
    Box::pin(write_out(shared, stream, limit, whole)).await
}

/// [`flush`]'s loop.
async fn write_out(shared: &SharedRef, stream: &mut Stream, limit: Duration, whole: bool) -> bool {
    loop {
        let mut out = std::mem::take(&mut shared.borrow_mut().out);
        if out.is_empty() {
            return true;
        }
        let n = out.len();
        if stream.flush(&mut out, limit).await.is_err() {
            return false;
        }
        // the written buffer is dropped, not kept: an idle connection holds no output buffer
        shared.borrow_mut().wrote(n);
        if !whole {
            return true;
        }
    }
}

/// Waits for the socket, a stream's notification or the state-check timer (while streams are
/// active), whichever comes first. The readiness wait lends no buffer, so dropping it (when
/// another branch wins) loses nothing.
fn wait<'a>(
    stream: &'a Stream,
    shared: &'a SharedRef,
    timer: Option<Pin<&'a mut Sleep>>,
) -> Wait<'a, impl Future<Output = std::io::Result<()>> + 'a> {
    Wait {
        readable: stream.readable(),
        shared,
        timer,
    }
}

/// [`wait`]'s future, written out: an `async fn` over `poll_fn` keeps each part twice (the
/// pinned futures and the closure's references to them), and an idle connection parks it.
struct Wait<'a, R> {
    readable: R,
    shared: &'a SharedRef,
    timer: Option<Pin<&'a mut Sleep>>,
}

impl<R: Future<Output = std::io::Result<()>>> Future for Wait<'_, R> {
    type Output = Wake;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Wake> {
        // SAFETY: `readable` is structurally pinned: it is only ever used through the `Pin`
        // below, never moved out (no method hands it out, `Wait` has no `Drop` and is only
        // `Unpin` when `R` is). The other fields are `Unpin` and not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above: `this` lives pinned, so does its `readable`.
        let readable = unsafe { Pin::new_unchecked(&mut this.readable) };
        // the socket first: output that keeps coming must not starve reading
        if let Poll::Ready(r) = readable.poll(cx) {
            return Poll::Ready(Wake::Readable(r));
        }
        if this.shared.borrow_mut().poll_notified(cx).is_ready() {
            return Poll::Ready(Wake::Notified);
        }
        if let Some(t) = this.timer.as_mut() {
            if t.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
        }
        Poll::Pending
    }
}

/// Applies one protocol event: a new stream task, or news for a stream's inbox. Err: refusing
/// a stream passed the reset limit (the connection failed, its GOAWAY queued).
fn dispatch(
    ev: Event,
    shared: &SharedRef,
    facts: &Rc<ConnFacts>,
    closed: &Rc<Cell<bool>>,
    w: &Rc<Worker>,
    task: StreamTask,
) -> Result<(), ConnError> {
    match ev {
        Event::Request {
            id,
            fields,
            end_stream,
        } => {
            // The protocol counts open streams; a reset stream's task may still run (until
            // its origin exchange notices): every live task holds an inbox. Past the cap, the
            // stream is refused and nothing is spawned, so resetting streams cannot multiply
            // the work in flight (rapid reset, CVE-2023-44487).
            let mut sh = shared.borrow_mut();
            if sh.streams.len() >= sh.max_streams as usize {
                let r = sh.conn.refuse(id);
                drop(sh);
                w.with_current(|g| g.metrics.http2_stream_reset());
                return r;
            }
            drop(sh);
            let g = w.current();
            let r = H2Request {
                method: &fields.method,
                authority: fields.authority.as_deref(),
                path: &fields.path,
                fields: &fields.fields,
                content_length: fields.content_length,
                end_stream,
            };
            let head = request_head(&r, &g.config.server.limits).map_err(GatewayError::Http);
            let inbox = Inbox::new(end_stream);
            shared.borrow_mut().streams.insert(id, inbox);
            let s = H2Stream::new(id, shared.clone(), facts.clone(), closed.clone(), &fields);
            monoio::spawn(task(w.clone(), g, s, head));
        }
        Event::Data {
            id,
            data,
            end_stream,
        } => {
            let mut sh = shared.borrow_mut();
            let n = data.len();
            match sh.streams.get_mut(&id) {
                Some(ib) if ib.end == BodyEnd::Open => {
                    if n > 0 {
                        ib.buffered += n;
                        ib.data.push_back(data);
                    }
                    if end_stream {
                        ib.end = BodyEnd::Ended;
                    }
                    ib.wake();
                }
                // nobody will read it: credit the window at once
                _ => sh.conn.release_capacity(id, n),
            }
        }
        // RFC 9110 §6.5.1: a recipient may discard trailers; the request's end is what counts
        Event::Trailers { id, .. } => {
            if let Some(ib) = shared.borrow_mut().streams.get_mut(&id) {
                if ib.end == BodyEnd::Open {
                    ib.end = BodyEnd::Ended;
                }
                ib.wake();
            }
        }
        Event::Reset { id, code } | Event::StreamError { id, code, .. } => {
            let mut sh = shared.borrow_mut();
            let dropped = match sh.streams.get_mut(&id) {
                Some(ib) => {
                    ib.end = BodyEnd::Reset;
                    ib.reset = Some(code);
                    ib.data.clear();
                    ib.cancel();
                    std::mem::take(&mut ib.buffered)
                }
                None => 0,
            };
            sh.conn.release_capacity(id, dropped);
            drop(sh);
            w.with_current(|g| g.metrics.http2_stream_reset());
        }
        Event::WindowUpdate { id: 0 } => {
            let mut sh = shared.borrow_mut();
            sh.last_send_progress = Instant::now();
            sh.wake_all();
        }
        Event::WindowUpdate { id } => {
            let mut sh = shared.borrow_mut();
            sh.last_send_progress = Instant::now();
            if let Some(ib) = sh.streams.get_mut(&id) {
                ib.wake();
            }
        }
        // the client is going away: the streams it still waits for go on, then the connection
        // ends when it closes its side
        Event::GoAway { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A stream task that answers nothing (the stream is freed, CANCEL): enough for tests of
    /// the connection itself.
    pub(super) fn drop_stream(
        _w: Rc<Worker>,
        _g: Rc<Generation>,
        _s: H2Stream,
        _h: Result<RequestHead, GatewayError>,
    ) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(async {})
    }

    /// An HTTP/2 connection that has exchanged its prefaces and has no stream holds no read
    /// buffer: it went back to the worker's pool, as an idle HTTP/1 connection's does.
    async fn idle_connection_gives_its_buffer_back() {
        let w = Rc::new(crate::testkit::worker(
            "[[route]]\nkey = \"GET /x\"\nmock = {}\n",
        ));
        let (mut client, s, facts) = crate::testkit::accepted();
        w.open_connections.set(1);
        let closed = Rc::new(Cell::new(false));
        let task = serve(
            Stream::Plain(s),
            facts,
            closed,
            BytesMut::new(),
            w.clone(),
            drop_stream,
        );
        let handle = monoio::spawn(task);
        client.write_all(crate::http2::PREFACE).unwrap();
        client.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap(); // empty SETTINGS
        assert_eq!(w.buffers.free_len(), 0);
        // let the connection task read, answer and go idle
        monoio::time::sleep(Duration::from_millis(200)).await;
        client.set_nonblocking(true).unwrap();
        let mut got = [0u8; 256];
        let n = client.read(&mut got).unwrap_or(0);
        assert!(
            n >= 9 && got[3] == 4,
            "the server's SETTINGS came: {:?}",
            &got[..n]
        );
        assert_eq!(
            w.buffers.free_len(),
            1,
            "the read buffer went back to the pool"
        );
        assert_eq!(w.open_connections.get(), 1);
        drop(client); // the client leaves: the connection ends and is uncounted
        monoio::time::sleep(Duration::from_millis(100)).await;
        handle.await;
        assert_eq!(w.open_connections.get(), 0);
    }

    /// A stream task that ignores its stream's reset for a while (as a task deep in some work
    /// would), holding the stream.
    fn stubborn_stream(
        _w: Rc<Worker>,
        _g: Rc<Generation>,
        s: H2Stream,
        _h: Result<RequestHead, GatewayError>,
    ) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(async move {
            let _s = s;
            monoio::time::sleep(Duration::from_millis(1500)).await;
        })
    }

    /// Frames (type, stream, first payload word) in `b`.
    fn frames(b: &[u8]) -> Vec<(u8, u32, u32)> {
        let all = crate::testkit::h2_frames(b).into_iter();
        all.map(|(t, _, s, w)| (t, s, w)).collect()
    }
    /// The concurrent-stream cap counts the tasks of reset streams still running: a client
    /// resetting its streams cannot start more work than the cap (rapid reset). Stream 1 is
    /// reset but its task goes on; stream 3 is refused (REFUSED_STREAM), nothing spawned.
    async fn reset_streams_still_running_count_toward_the_cap() {
        let w = Rc::new(crate::testkit::worker(
            "[server.http2]\nmax_concurrent_streams = 1\n[[route]]\nkey = \"GET /x\"\nmock = {}\n",
        ));
        let (mut client, s, facts) = crate::testkit::accepted();
        w.open_connections.set(1);
        let closed = Rc::new(Cell::new(false));
        let task = serve(
            Stream::Plain(s),
            facts,
            closed,
            BytesMut::new(),
            w.clone(),
            stubborn_stream,
        );
        let handle = monoio::spawn(task);
        client.write_all(crate::http2::PREFACE).unwrap();
        client.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap(); // empty SETTINGS
        client.write_all(&crate::testkit::h2_get_frame(1)).unwrap();
        monoio::time::sleep(Duration::from_millis(100)).await;
        client
            .write_all(&[0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 8])
            .unwrap(); // RST_STREAM(1, CANCEL)
        client.write_all(&crate::testkit::h2_get_frame(3)).unwrap();
        monoio::time::sleep(Duration::from_millis(200)).await;
        client.set_nonblocking(true).unwrap();
        let mut got = vec![0u8; 4096];
        let n = client.read(&mut got).unwrap_or(0);
        let f = frames(&got[..n]);
        // RST_STREAM (type 3) on stream 3 with REFUSED_STREAM (7)
        assert!(f.contains(&(3, 3, 7)), "stream 3 refused: {f:?}");
        drop(client);
        handle.await;
        assert_eq!(w.open_connections.get(), 0);
    }

    #[test]
    fn reset_streams_count_toward_the_cap_epoll() {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(reset_streams_still_running_count_toward_the_cap());
    }

    #[test]
    fn reset_streams_count_toward_the_cap_io_uring() {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(reset_streams_still_running_count_toward_the_cap());
    }

    thread_local! {
        static GONE_SEEN: Cell<bool> = const { Cell::new(false) };
    }

    /// A stream task that waits for its client to be gone, then says so.
    fn waits_for_gone(
        _w: Rc<Worker>,
        _g: Rc<Generation>,
        s: H2Stream,
        _h: Result<RequestHead, GatewayError>,
    ) -> Pin<Box<dyn Future<Output = ()>>> {
        use crate::session::Session;
        Box::pin(async move {
            s.client_gone().await;
            GONE_SEEN.with(|g| g.set(true));
        })
    }

    /// The connection task dropped mid-way (as the runtime's shutdown or a contained panic
    /// does) still closes the shared state: its stream tasks are woken and end.
    async fn a_dropped_connection_task_ends_its_streams() {
        GONE_SEEN.with(|g| g.set(false));
        let w = Rc::new(crate::testkit::worker(
            "[[route]]\nkey = \"GET /x\"\nmock = {}\n",
        ));
        let (mut client, s, facts) = crate::testkit::accepted();
        w.open_connections.set(1);
        let conn = serve(
            Stream::Plain(s),
            facts,
            Rc::new(Cell::new(false)),
            BytesMut::new(),
            w.clone(),
            waits_for_gone,
        );
        client.write_all(crate::http2::PREFACE).unwrap();
        client.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap(); // empty SETTINGS
        client.write_all(&crate::testkit::h2_get_frame(1)).unwrap();
        // the connection task runs for a while, then is dropped
        let r = monoio::time::timeout(Duration::from_millis(200), conn).await;
        assert!(r.is_err(), "the connection task was still running");
        monoio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            GONE_SEEN.with(|g| g.get()),
            "the stream task saw its connection end"
        );
        assert_eq!(w.open_connections.get(), 0);
    }

    #[test]
    fn a_dropped_connection_task_ends_its_streams_epoll() {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(a_dropped_connection_task_ends_its_streams());
    }

    #[test]
    fn a_dropped_connection_task_ends_its_streams_io_uring() {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(a_dropped_connection_task_ends_its_streams());
    }

    #[test]
    fn idle_connection_holds_no_buffer_epoll() {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(idle_connection_gives_its_buffer_back());
    }

    #[test]
    fn idle_connection_holds_no_buffer_io_uring() {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(idle_connection_gives_its_buffer_back());
    }
}

#[cfg(test)]
mod footprint {
    /// The future an idle HTTP/2 connection's task parks (plus the task header, one allocation)
    /// and [`Shared`] (behind its `Rc`) are most of what the connection costs in memory (see
    /// the module docs and `tests/h2_idle_memory.rs`); these keep them from creeping up. The
    /// write and the state-check timer are boxed only while in use, the wait is written out.
    const SERVE_FUTURE_MAX: usize = 536; // 520 before the handshake clocks (boxed, 8 bytes) and the close-on-drop guard (8)
    const SHARED_MAX: usize = 656;

    async fn serve_future_size() -> usize {
        let w = std::rc::Rc::new(crate::testkit::worker(
            "[[route]]\nkey = \"GET /x\"\nmock = {}\n",
        ));
        let (_c, s, facts) = crate::testkit::accepted();
        let f = super::serve(
            super::Stream::Plain(s),
            facts,
            std::rc::Rc::new(std::cell::Cell::new(false)),
            bytes::BytesMut::new(),
            w,
            super::tests::drop_stream,
        );
        std::mem::size_of_val(&f)
    }

    #[test]
    fn idle_connection_state_stays_small() {
        let size = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(serve_future_size());
        assert!(size <= SERVE_FUTURE_MAX, "serve() future is {size} bytes");
        let shared = std::mem::size_of::<super::Shared>();
        assert!(shared <= SHARED_MAX, "Shared is {shared} bytes");
    }
}
