//! The tunnel of an HTTP/1 connection that switched protocols (a WebSocket upgrade, RFC 6455;
//! RFC 9110 §7.8, §15.2.2): from the `101` on, a two-way byte relay between the client and
//! the origin.
//!
//! Owns: sending the 101 with what the origin already sent after it, passing on what the
//! client sent after its request, and the relay loop ([`relay`]): full duplex, each direction
//! on its own ([`Dir`]: [`Transit::Idle`], [`Transit::Pending`] with a buffer and an offset,
//! or [`Transit::Queued`] in TLS records), so a side that writes a lot before it reads (while
//! the other does too) cannot deadlock the tunnel; its ends (both sides' data ended, each end
//! passed on as a half-close, a TLS end without close_notify as a bare TCP end; the half-close
//! bound; the idle timeout; the worker draining; a broken side), all seen while a write is
//! pending too; and its memory rule: an open tunnel holds NO buffer while nothing moves. It
//! waits without a buffer for readiness: the source of an idle direction to be readable, the
//! destination of a pending one to be writable (as an idle keep-alive connection does, see
//! `proxy::conn`); then, for an idle direction, it borrows a pooled buffer, takes what is there
//! with a synchronous read, and writes it without blocking as far as the destination takes it;
//! the buffer goes back to the pool as soon as all of it was taken. A pending direction's
//! source is not read meanwhile: TCP flow control slows that sender, not the other direction.
//! Leaves out: the handshake's rules and the choice to tunnel (the integration's), and
//! WebSocket framing: the bytes are relayed as they come, never parsed, and nothing is ever
//! sent of our own (no close frame: a tunnel the gateway ends is closed at the TCP/TLS level,
//! which each endpoint reports as close code 1006, "closed abnormally", RFC 6455 §7.1.5,
//! §7.4.1).
//!
//! Data flow: client [`Stream`] ⇄ pooled buffer per direction (only while its bytes are on
//! their way) ⇄ origin [`Stream`]; counts of each direction go to the caller.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::h1::{write_head, ConnHeader, Downstream};
use super::{TunnelEnd, TunnelOrigin};
use crate::error::GatewayError;
use crate::exchange::{ExchangeState, ResponseState};
use crate::http::{HeaderKind, RequestHead};
use crate::response::Response;
use crate::transport::Stream;
use crate::worker::Cx;

/// How often, at most, an open tunnel looks whether its worker drains: a quarter of
/// `server.timeouts.shutdown_ms` (nothing else wakes a tunnel parked on readiness), but not
/// more often than this (a tunnel costs one timer wake-up per period, its readiness waits
/// stay armed across it).
pub const MIN_DRAIN_POLL: Duration = Duration::from_millis(10);
/// ... and at least this often.
pub const MAX_DRAIN_POLL: Duration = Duration::from_secs(1);
/// The least time a half-closed tunnel waits for the other side's end: the bound is
/// `server.timeouts.linger_ms` when longer (the existing bound on how long a closing connection
/// keeps reading its peer), never less than this, so `linger_ms = 0` (no lingering close) does
/// not tear down every half-close at once (RFC 6455 §7.1.1 has the server close TCP first and
/// the client follow).
pub const MIN_HALF_CLOSE: Duration = Duration::from_secs(1);

/// Bytes relayed each way.
#[derive(Debug, Default, Clone, Copy)]
pub struct Moved {
    /// Client → origin.
    pub up: u64,
    /// Origin → client.
    pub down: u64,
}

/// Whether data may still come from one direction's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Data may come from the source.
    Open,
    /// The source ended its data; the end was passed on to the other side (half-close).
    Ended,
}

/// The bytes of one direction on their way.
#[derive(Debug)]
enum Transit {
    /// Nothing read and not yet written: the source is waited on (while its data is open). No
    /// buffer is held.
    Idle,
    /// Bytes read from the source that the destination has not all taken: the pooled buffer,
    /// and how much of it was taken. The destination is waited on for writability, and the
    /// source is not read meanwhile (its own flow control then slows it down).
    Pending(BytesMut, usize),
    /// The destination took all of it, but holds part as TLS records its socket has not taken
    /// yet (rustls's queue; no buffer of ours): waits for writability.
    Queued,
}

/// One direction of the tunnel.
#[derive(Debug)]
struct Dir {
    flow: Flow,
    transit: Transit,
}

/// What a direction waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interest {
    /// Its source to be readable.
    Read,
    /// Its destination to be writable.
    Write,
}

impl Dir {
    const fn new() -> Dir {
        Dir {
            flow: Flow::Open,
            transit: Transit::Idle,
        }
    }

    /// What it waits for; `None`: its source ended and nothing is on its way.
    fn interest(&self) -> Option<Interest> {
        match (&self.transit, self.flow) {
            (Transit::Idle, Flow::Open) => Some(Interest::Read),
            (Transit::Idle, Flow::Ended) => None,
            (Transit::Pending(..) | Transit::Queued, _) => Some(Interest::Write),
        }
    }
}

/// What a wait gave: a direction that can make progress, or a drain check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// Client → origin.
    Up,
    /// Origin → client.
    Down,
    /// A drain check passed, nothing else.
    Deadline,
}

/// What a step of one direction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Moved what it could (maybe nothing: a spurious wake-up).
    Went,
    /// The source ended its data: the end is to be passed on.
    SourceEnded,
    /// The source's read failed.
    SourceBroken,
    /// The destination's write failed.
    DestinationBroken,
}

/// The deadlines a tunnel lives under.
struct Clock {
    idle: Duration,
    /// A half-closed tunnel waits this long for the other side's end.
    half_close: Duration,
    shutdown: Duration,
    poll: Duration,
    /// The last byte moved, read or written (or the tunnel opened).
    last: Instant,
    /// One side's data ended at.
    half_closed_at: Option<Instant>,
    /// The worker drains: the tunnel closes at this instant.
    drain_at: Option<Instant>,
}

impl Clock {
    fn new(idle: Duration, linger: Duration, shutdown: Duration) -> Clock {
        Clock {
            idle,
            half_close: linger.max(MIN_HALF_CLOSE),
            shutdown,
            poll: (shutdown / 4).clamp(MIN_DRAIN_POLL, MAX_DRAIN_POLL),
            last: Instant::now(),
            half_closed_at: None,
            drain_at: None,
        }
    }

    /// The next instant the tunnel must act at, and why: an end, or just a drain check.
    fn next(&mut self, w: &Cx<'_>, now: Instant) -> (Instant, Option<TunnelEnd>) {
        if self.drain_at.is_none() && w.draining.get() {
            // noticed at most one poll after the drain began: closing two polls before the
            // grace period ends leaves the worker one poll to see this request finish
            let left = self.shutdown.saturating_sub(self.poll * 2);
            self.drain_at = Some(now + left);
        }
        let mut at = (self.last + self.idle, Some(TunnelEnd::Idle));
        if let Some(h) = self.half_closed_at {
            let end = h + self.half_close;
            if end < at.0 {
                at = (end, Some(TunnelEnd::HalfClosed));
            }
        }
        match self.drain_at {
            // the drain's end wins over any other at the same instant: a write still pending
            // then is cut by the shutdown, not by a broken side
            Some(d) if d <= at.0 => at = (d, Some(TunnelEnd::Drained)),
            Some(_) => {}
            None if now + self.poll < at.0 => at = (now + self.poll, None),
            None => {}
        }
        at
    }
}

/// Relays bytes both ways, each direction on its own (full duplex: a side that writes a lot
/// before it reads cannot block the other direction), until the tunnel ends. `idle`: no byte
/// moved either way for this long closes both sides (a destination that takes nothing of what
/// is pending for that long included).
pub(super) async fn relay(
    w: &Cx<'_>,
    client: &mut Stream,
    origin: &mut Stream,
    idle: Duration,
    moved: &mut Moved,
) -> TunnelEnd {
    let t = &w.g.config.server.timeouts;
    let mut clock = Clock::new(idle, t.linger, t.shutdown);
    let (mut up, mut down) = (Dir::new(), Dir::new());
    let mut turn = Wake::Up;
    let end = loop {
        if up.flow == Flow::Ended && down.flow == Flow::Ended {
            break TunnelEnd::Closed;
        }
        let wake = wait(
            w,
            &mut clock,
            (client, origin),
            (up.interest(), down.interest()),
            turn,
        )
        .await;
        // the other direction is looked at first next time: a side that is always ready (a
        // client flooding its origin) cannot starve the other
        let (dir, src, dst, count, src_broken, dst_broken) = match wake {
            Ok(Wake::Up) => {
                turn = Wake::Down;
                let (src, dst) = (&mut *client, &mut *origin);
                let ends = (TunnelEnd::ClientBroken, TunnelEnd::OriginBroken);
                (&mut up, src, dst, &mut moved.up, ends.0, ends.1)
            }
            Ok(Wake::Down) => {
                turn = Wake::Up;
                let (src, dst) = (&mut *origin, &mut *client);
                let ends = (TunnelEnd::OriginBroken, TunnelEnd::ClientBroken);
                (&mut down, src, dst, &mut moved.down, ends.0, ends.1)
            }
            Ok(Wake::Deadline) => continue,
            Err(end) => break end,
        };
        match step(w, dir, src, dst, count, &mut clock) {
            Step::Went => {}
            Step::SourceEnded => {
                // pass the end on, keep the other direction (RFC 9112 §9.6 half-close; RFC
                // 6455 §7.1.1 has the server close first). A TLS end without close_notify
                // goes on as a bare TCP end: a truncation must stay one (RFC 8446 §6.1)
                if src.ended_cleanly() {
                    dst.shutdown_write().await;
                } else {
                    dst.shutdown_write_bare().await;
                }
                dir.flow = Flow::Ended;
                clock.half_closed_at.get_or_insert_with(Instant::now);
            }
            Step::SourceBroken => break src_broken,
            Step::DestinationBroken => break dst_broken,
        }
    };
    // what is still on its way is dropped with the tunnel; the buffers go back to the pool
    for d in [up, down] {
        if let Transit::Pending(buf, _) = d.transit {
            w.buffers.give(buf);
        }
    }
    end
}

/// Moves what one direction can move now, without waiting: when idle, reads what its source
/// has (into a buffer borrowed from the pool), then writes what is pending as far as the
/// destination takes it; the buffer goes back to the pool once all of it was taken.
fn step(
    w: &Cx<'_>,
    d: &mut Dir,
    src: &mut Stream,
    dst: &mut Stream,
    count: &mut u64,
    clock: &mut Clock,
) -> Step {
    if matches!(d.transit, Transit::Idle) {
        if d.flow == Flow::Ended {
            return Step::Went;
        }
        let mut buf = w.buffers.take();
        match src.try_read(&mut buf, w.buffers.size()) {
            Ok(0) => {
                w.buffers.give(buf);
                return Step::SourceEnded;
            }
            Ok(n) => {
                *count += n as u64;
                clock.last = Instant::now();
                d.transit = Transit::Pending(buf, 0);
            }
            // a spurious wake-up, or only TLS records without data (a session ticket)
            Err(e) if would_block(&e) => {
                w.buffers.give(buf);
                return Step::Went;
            }
            Err(_) => {
                w.buffers.give(buf);
                return Step::SourceBroken;
            }
        }
    }
    loop {
        let wrote = match &mut d.transit {
            Transit::Idle => return Step::Went,
            Transit::Pending(buf, at) => {
                let rest = buf.get(*at..).unwrap_or_default();
                match dst.try_write(rest) {
                    // (a non-empty write takes at least a byte or fails)
                    Ok(0) => return Step::DestinationBroken,
                    Ok(n) => {
                        *at += n;
                        clock.last = Instant::now();
                        *at >= buf.len()
                    }
                    Err(e) if would_block(&e) => return Step::Went,
                    Err(_) => return Step::DestinationBroken,
                }
            }
            Transit::Queued => match dst.try_write(&[]) {
                Ok(_) if dst.write_queued() => return Step::Went,
                Ok(_) => {
                    d.transit = Transit::Idle;
                    return Step::Went;
                }
                Err(e) if would_block(&e) => return Step::Went,
                Err(_) => return Step::DestinationBroken,
            },
        };
        if wrote {
            // all taken: the buffer goes back at once, an idle direction holds none
            let next = if dst.write_queued() {
                Transit::Queued
            } else {
                Transit::Idle
            };
            if let Transit::Pending(buf, _) = std::mem::replace(&mut d.transit, next) {
                w.buffers.give(buf);
            }
        }
    }
}

fn would_block(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// Waits for `s` to be readable or writable, lending no buffer: one future type for both, so
/// both directions' waits are alike.
async fn ready(s: &Stream, i: Interest) -> std::io::Result<()> {
    match i {
        Interest::Read => s.readable().await,
        Interest::Write => s.writable().await,
    }
}

/// Waits, holding no buffer, until a direction can make progress (its source readable while
/// it is idle, its destination writable while it has bytes pending), or the clock says the
/// tunnel ends (`Err`). The readiness waits stay armed across the drain checks, and the
/// deadlines (idle, half-close, drain) are seen while a write is pending too.
async fn wait(
    w: &Cx<'_>,
    clock: &mut Clock,
    (client, origin): (&Stream, &Stream),
    (up, down): (Option<Interest>, Option<Interest>),
    turn: Wake,
) -> Result<Wake, TunnelEnd> {
    let (first, end) = clock.next(w, Instant::now());
    if first <= Instant::now() {
        return end.map_or(Ok(Wake::Deadline), Err);
    }
    // a direction reads its source and writes its destination
    let mut up_ready = pin!(up.map(|i| match i {
        Interest::Read => ready(client, i),
        Interest::Write => ready(origin, i),
    }));
    let mut down_ready = pin!(down.map(|i| match i {
        Interest::Read => ready(origin, i),
        Interest::Write => ready(client, i),
    }));
    let mut timer = pin!(monoio::time::sleep_until(monoio::time::Instant::from_std(
        first
    )));
    let mut end = end;
    std::future::poll_fn(|cx| {
        // a readiness error (the socket broke) is also "ready": the read or write then says
        // how. Both are polled (each registers its waker); `turn` only decides which wins
        // when both are ready
        let u = up_ready
            .as_mut()
            .as_pin_mut()
            .is_some_and(|f| f.poll(cx).is_ready());
        let d = down_ready
            .as_mut()
            .as_pin_mut()
            .is_some_and(|f| f.poll(cx).is_ready());
        match (u, d) {
            (true, true) => return Poll::Ready(Ok(turn)),
            (true, false) => return Poll::Ready(Ok(Wake::Up)),
            (false, true) => return Poll::Ready(Ok(Wake::Down)),
            (false, false) => {}
        }
        loop {
            if Pin::as_mut(&mut timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some(e) = end {
                return Poll::Ready(Err(e));
            }
            // a drain check: re-arm for the next instant the clock names
            let now = Instant::now();
            let (at, e) = clock.next(w, now);
            if at <= now {
                return Poll::Ready(e.map_or(Ok(Wake::Deadline), Err));
            }
            end = e;
            timer.as_mut().reset(monoio::time::Instant::from_std(at));
        }
    })
    .await
}

/// The HTTP/1 session's [`super::Session::tunnel`]: the 101 (with the origin's `Upgrade`
/// lines and `connection: upgrade`, RFC 9110 §7.8) and whatever the origin sent after it in
/// one write, the client's pipelined bytes to the origin, then the relay. The client's read
/// buffer goes back to the pool first: an idle tunnel holds none.
pub(super) async fn tunnel(
    conn: &mut Downstream,
    w: &Cx<'_>,
    st: &mut ExchangeState,
    r: Response<'_>,
    origin: TunnelOrigin<'_>,
) -> Result<TunnelEnd, GatewayError> {
    st.keep_alive = false; // the connection is the tunnel's now, and ends with it
                           // the 101 and the origin's early bytes in a pooled buffer, back to the pool once written
                           // (open() takes it): an open tunnel holds no buffer of its opening
    let mut out = w.buffers.take();
    let head_len = write_head(&mut out, &r, ConnHeader::Upgrade);
    out.extend_from_slice(origin.early);
    let early = origin.early.len() as u64;
    // the origin's read buffer goes back to the pool now: an idle tunnel holds none
    w.buffers.give(std::mem::take(origin.early));
    st.status = r.status;
    st.response = ResponseState::Started;
    st.bytes_out += head_len as u64 + early;
    st.head_out += head_len as u64;
    let pipelined_len = conn.buf.len() as u64;
    let pipelined = std::mem::take(&mut conn.buf);
    let write = w.g.config.server.timeouts.write;
    let opened = open(w, &mut conn.stream, origin.stream, out, pipelined, write).await;
    match opened {
        Ok(()) => st.bytes_in += pipelined_len,
        Err(TunnelEnd::ClientBroken) => return Err(GatewayError::ClientGone),
        Err(e) => {
            st.response = ResponseState::Complete;
            return Ok(e);
        }
    }
    st.response = ResponseState::Complete;
    let mut moved = Moved::default();
    let end = relay(w, &mut conn.stream, origin.stream, origin.idle, &mut moved).await;
    st.bytes_in += moved.up;
    st.bytes_out += moved.down;
    Ok(end)
}

/// A request that may switch protocols (it carries `Upgrade`, RFC 9110 §7.8) keeps its head in
/// an allocation of its own: its connection may become a long-lived tunnel, and the head (kept
/// to log the request when the tunnel ends) would otherwise pin the whole pooled read buffer it
/// was split from. Other requests keep the zero-copy head; the check is a length comparison
/// per hop-by-hop field.
pub(super) fn own_head_if_upgrade(mut head: RequestHead) -> RequestHead {
    let upgrade = head.headers.iter().any(|h| {
        h.kind == HeaderKind::Skip
            && h.name.len() == 7
            && head.slice(h.name).eq_ignore_ascii_case(b"upgrade")
    });
    if upgrade {
        head.buf = bytes::Bytes::copy_from_slice(&head.buf);
    }
    head
}

/// Writes `out` (the 101 head and what the origin sent after it) to the client, then what the
/// client sent after its request (`pipelined`) to the origin, before the relay starts: none of
/// it may be lost. (RFC 6455 §4.1 has a client wait for the 101 before it sends more, but a
/// relay must not lose what an eager one sent; an origin may send its first frames with the
/// 101.)
pub(super) async fn open(
    w: &Cx<'_>,
    client: &mut Stream,
    origin: &mut Stream,
    mut out: BytesMut,
    mut pipelined: BytesMut,
    write: Duration,
) -> Result<(), TunnelEnd> {
    let sent = client.flush(&mut out, write).await;
    w.buffers.give(out);
    if sent.is_err() {
        w.buffers.give(pipelined);
        return Err(TunnelEnd::ClientBroken);
    }
    let sent = origin.flush(&mut pipelined, write).await;
    w.buffers.give(pipelined);
    sent.map_err(|_| TunnelEnd::OriginBroken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// When both directions are ready, the turn decides which is served (the relay gives the
    /// other the next turn, so neither can starve the other); when one is, that one; a
    /// direction whose source ended with nothing pending is not waited on; a direction with
    /// bytes pending waits for its destination's writability; the idle deadline ends a wait,
    /// and the idle and drain deadlines are seen while a write is pending (the destination
    /// takes nothing).
    async fn turns() {
        use Interest::{Read, Write};
        let w = crate::testkit::worker("[[route]]\nkey = \"GET /x\"\nmock = {}\n");
        let g = w.current();
        let cx = Cx { w: &w, g: &g };
        let (mut cp, c, _) = crate::testkit::accepted();
        let (mut op, o, _) = crate::testkit::accepted();
        let (c, mut o) = (Stream::Plain(c), Stream::Plain(o));
        let mut clock = Clock::new(Duration::from_millis(100), Duration::ZERO, Duration::ZERO);
        let both = (Some(Read), Some(Read));
        cp.write_all(b"from client").unwrap();
        c.readable().await.unwrap();
        assert_eq!(
            wait(&cx, &mut clock, (&c, &o), both, Wake::Down).await,
            Ok(Wake::Up)
        );
        op.write_all(b"from origin").unwrap();
        o.readable().await.unwrap();
        assert_eq!(
            wait(&cx, &mut clock, (&c, &o), both, Wake::Down).await,
            Ok(Wake::Down)
        );
        assert_eq!(
            wait(&cx, &mut clock, (&c, &o), both, Wake::Up).await,
            Ok(Wake::Up)
        );
        let origin_only = (None, Some(Read));
        assert_eq!(
            wait(&cx, &mut clock, (&c, &o), origin_only, Wake::Up).await,
            Ok(Wake::Down)
        );
        // up has bytes pending: it waits for the origin to take more, which it can
        let pending = (Some(Write), None);
        assert_eq!(
            wait(&cx, &mut clock, (&c, &o), pending, Wake::Down).await,
            Ok(Wake::Up)
        );
        let ended = (None, None);
        assert_eq!(
            wait(&cx, &mut clock, (&c, &o), ended, Wake::Up).await,
            Err(TunnelEnd::Idle)
        );
        // the origin's peer reads nothing: fill its socket until it takes no more
        let chunk = vec![0u8; 1 << 16];
        let t = Instant::now();
        while o.try_write(&chunk).is_ok() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the socket never filled"
            );
        }
        let mut clock = Clock::new(Duration::from_millis(100), Duration::ZERO, Duration::ZERO);
        assert_eq!(
            wait(&cx, &mut clock, (&c, &o), pending, Wake::Up).await,
            Err(TunnelEnd::Idle),
            "a pending write hid the idle deadline"
        );
        let mut clock = Clock::new(
            Duration::from_secs(30),
            Duration::ZERO,
            Duration::from_millis(100),
        );
        w.draining.set(true);
        assert_eq!(
            wait(&cx, &mut clock, (&c, &o), pending, Wake::Up).await,
            Err(TunnelEnd::Drained),
            "a pending write hid the drain"
        );
        drop(op);
    }

    #[test]
    fn turns_epoll() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(turns());
    }

    #[test]
    fn turns_io_uring() {
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(turns());
    }

    /// Reads what `s` (non-blocking) has until `want` was seen, within 10 s.
    async fn read_until(s: &mut std::net::TcpStream, got: &mut Vec<u8>, want: &[u8]) {
        use std::io::Read;
        let t = Instant::now();
        let mut b = [0u8; 4096];
        while !got.windows(want.len()).any(|x| x == want) {
            assert!(t.elapsed() < Duration::from_secs(10), "got {got:?}");
            match s.read(&mut b) {
                Ok(0) => panic!("closed after {got:?}"),
                Ok(n) => got.extend_from_slice(&b[..n]),
                Err(_) => monoio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }

    /// Once open (the 101 and the origin's early bytes at the client, the client's pipelined
    /// bytes at the origin), an idle tunnel holds no pooled buffer: not the 101's, not the
    /// client's read buffer, not the origin's, not the relay's. Then both sides' ends make
    /// the tunnel end as closed.
    async fn an_open_tunnel_holds_no_buffer() {
        let w = crate::testkit::worker("[[route]]\nkey = \"GET /x\"\nmock = {}\n");
        let g = w.current();
        let cx = Cx { w: &w, g: &g };
        // the pool starts with 4 buffers; the test's own two come from it
        let warm: Vec<BytesMut> = (0..4).map(|_| w.buffers.take()).collect();
        warm.into_iter().for_each(|b| w.buffers.give(b));
        let (mut cp, mut conn) = crate::testkit::downstream();
        let (mut op, o, _) = crate::testkit::accepted();
        let mut o = Stream::Plain(o);
        conn.buf = w.buffers.take();
        conn.buf.extend_from_slice(b"piped");
        let mut early = w.buffers.take();
        early.extend_from_slice(b"early");
        let limits = crate::http::Limits::default();
        let mut raw =
            BytesMut::from(&b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"[..]);
        let rh = crate::http::parse_response(&mut raw, false, &limits)
            .unwrap()
            .unwrap();
        let mut raw = BytesMut::from(&b"GET /ws HTTP/1.1\r\nHost: h\r\n\r\n"[..]);
        let head = crate::http::parse_request(&mut raw, &limits)
            .unwrap()
            .unwrap();
        let mut st = ExchangeState::new(&cx, &head);
        let origin = TunnelOrigin {
            stream: &mut o,
            early: &mut early,
            idle: Duration::from_secs(20),
        };
        let r = Response::origin(&rh, None);
        cp.set_nonblocking(true).unwrap();
        op.set_nonblocking(true).unwrap();
        let run = tunnel(&mut conn, &cx, &mut st, r, origin);
        let check = async {
            let (mut at_client, mut at_origin) = (Vec::new(), Vec::new());
            read_until(&mut cp, &mut at_client, b"\r\n\r\nearly").await;
            read_until(&mut op, &mut at_origin, b"piped").await;
            // one more byte each way, relayed and the buffers given back
            op.write_all(b"!").unwrap();
            read_until(&mut cp, &mut at_client, b"early!").await;
            monoio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(
                w.buffers.free_len(),
                4,
                "an open, idle tunnel holds a buffer"
            );
            cp.shutdown(std::net::Shutdown::Write).unwrap();
            op.shutdown(std::net::Shutdown::Write).unwrap();
        };
        let (end, ()) = monoio::join!(run, check);
        assert_eq!(end.unwrap(), TunnelEnd::Closed);
        assert_eq!(w.buffers.free_len(), 4);
    }

    #[test]
    fn an_open_tunnel_holds_no_buffer_epoll() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(an_open_tunnel_holds_no_buffer());
    }

    #[test]
    fn an_open_tunnel_holds_no_buffer_io_uring() {
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(an_open_tunnel_holds_no_buffer());
    }

    /// The connection's read buffer can be reclaimed whole (no head pins it) after a request
    /// that may switch protocols; an ordinary request's head stays a zero-copy view.
    #[test]
    fn an_upgrade_requests_head_does_not_pin_the_read_buffer() {
        let limits = crate::http::Limits::default();
        let parse = |raw: &[u8]| {
            let mut b = BytesMut::with_capacity(16 * 1024);
            b.extend_from_slice(raw);
            let start = b.as_ptr();
            let head = own_head_if_upgrade(
                crate::http::parse_request(&mut b, &limits)
                    .unwrap()
                    .unwrap(),
            );
            b.clear();
            b.reserve(16 * 1024); // reclaims in place only when nothing else shares it
            (head, b.as_ptr() == start)
        };
        let (head, reclaimed) = parse(
            b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        );
        assert!(reclaimed, "the head pins the read buffer");
        assert_eq!(head.path_bytes(), b"/ws");
        let (head, reclaimed) = parse(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(!reclaimed, "an ordinary head is no copy");
        assert_eq!(head.path_bytes(), b"/a");
    }
}
