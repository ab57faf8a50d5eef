//! The tunnel of an HTTP/1 connection that switched protocols (a WebSocket upgrade, RFC 6455;
//! RFC 9110 §7.8, §15.2.2): from the `101` on, a two-way byte relay between the client and
//! the origin.
//!
//! Owns: sending the 101 with what the origin already sent after it, passing on what the
//! client sent after its request, and the relay loop ([`relay`]): its ends (both sides'
//! data ended, each end passed on as a half-close; the idle timeout; the worker draining;
//! a broken side), and its memory rule: an open tunnel holds NO buffer while nothing moves.
//! It waits for readiness on both sides without a buffer (as an idle keep-alive connection
//! does, see `proxy::conn`), then borrows a pooled buffer, takes what is there with a
//! synchronous read, writes it to the other side, and gives the buffer back. Leaves out: the
//! handshake's rules and the choice to tunnel (the integration's), and WebSocket framing: the
//! bytes are relayed as they come, never parsed, and nothing is ever sent of our own (no
//! close frame: a tunnel the gateway ends is closed at the TCP/TLS level, which each endpoint
//! reports as close code 1006, "closed abnormally", RFC 6455 §7.1.5, §7.4.1).
//!
//! Data flow: client [`Stream`] ⇄ pooled buffer (only while a copy is under way) ⇄ origin
//! [`Stream`]; counts of each direction go to the caller.

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

/// Bytes relayed each way.
#[derive(Debug, Default, Clone, Copy)]
pub struct Moved {
    /// Client → origin.
    pub up: u64,
    /// Origin → client.
    pub down: u64,
}

/// One direction of the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Data may come from the source.
    Open,
    /// The source ended its data; the end was passed on to the other side (half-close).
    Ended,
}

/// What a wait gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Client,
    Origin,
    /// The deadline passed (idle, half-close bound, or the drain's close).
    Deadline,
}

/// The deadlines a tunnel lives under.
struct Clock {
    idle: Duration,
    /// A half-closed tunnel waits this long for the other side's end (`server.timeouts.linger_ms`:
    /// the existing bound on how long a closing connection keeps reading its peer).
    half_close: Duration,
    shutdown: Duration,
    poll: Duration,
    /// The last byte moved (or the tunnel opened).
    last: Instant,
    /// One side's data ended at.
    half_closed_at: Option<Instant>,
    /// The worker drains: the tunnel closes at this instant.
    drain_at: Option<Instant>,
}

impl Clock {
    fn new(idle: Duration, half_close: Duration, shutdown: Duration) -> Clock {
        Clock {
            idle,
            half_close,
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
                at = (end, Some(TunnelEnd::Closed));
            }
        }
        match self.drain_at {
            Some(d) if d < at.0 => at = (d, Some(TunnelEnd::Drained)),
            Some(_) => {}
            None if now + self.poll < at.0 => at = (now + self.poll, None),
            None => {}
        }
        at
    }

    /// Bound of one write: nothing moving for the idle timeout is the idle end, and a
    /// draining tunnel's bytes in flight get only what is left of the grace period.
    fn write_limit(&self, now: Instant) -> Duration {
        match self.drain_at {
            Some(d) => self.idle.min(d.saturating_duration_since(now)),
            None => self.idle,
        }
    }
}

/// Relays bytes both ways until the tunnel ends. `idle`: no byte either way for this long
/// closes both sides.
pub(super) async fn relay(
    w: &Cx<'_>,
    client: &mut Stream,
    origin: &mut Stream,
    idle: Duration,
    moved: &mut Moved,
) -> TunnelEnd {
    let t = &w.g.config.server.timeouts;
    let mut clock = Clock::new(idle, t.linger, t.shutdown);
    let (mut up, mut down) = (Flow::Open, Flow::Open);
    let mut turn = Wake::Client;
    loop {
        if up == Flow::Ended && down == Flow::Ended {
            return TunnelEnd::Closed;
        }
        let wake = wait(w, &mut clock, client, origin, (up, down), turn).await;
        // the other direction is looked at first next time: a side that is always readable
        // (a client flooding its origin) cannot starve the other
        turn = match wake {
            Ok(Wake::Client) => Wake::Origin,
            Ok(Wake::Origin) => Wake::Client,
            _ => turn,
        };
        let (src, dst, flow, count, src_broken, dst_broken) = match wake {
            Ok(Wake::Client) => (
                &mut *client,
                &mut *origin,
                &mut up,
                &mut moved.up,
                TunnelEnd::ClientBroken,
                TunnelEnd::OriginBroken,
            ),
            Ok(Wake::Origin) => (
                &mut *origin,
                &mut *client,
                &mut down,
                &mut moved.down,
                TunnelEnd::OriginBroken,
                TunnelEnd::ClientBroken,
            ),
            Ok(Wake::Deadline) => continue,
            Err(end) => return end,
        };
        let mut buf = w.buffers.take();
        let read = src.try_read(&mut buf, w.buffers.size());
        let step = match read {
            Ok(0) => {
                // the source ended its data: pass the end on, keep the other direction
                // (RFC 9112 §9.6 half-close; RFC 6455 §7.1.1 has the server close first)
                dst.shutdown_write().await;
                *flow = Flow::Ended;
                clock.half_closed_at.get_or_insert_with(Instant::now);
                Ok(())
            }
            Ok(n) => {
                *count += n as u64;
                clock.last = Instant::now();
                let limit = clock.write_limit(clock.last);
                match dst.flush(&mut buf, limit).await {
                    Ok(()) => {
                        clock.last = Instant::now();
                        Ok(())
                    }
                    Err(_) => Err(dst_broken),
                }
            }
            // a spurious wake-up, or only TLS records without data (a session ticket)
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                Ok(())
            }
            Err(_) => Err(src_broken),
        };
        w.buffers.give(buf);
        if let Err(end) = step {
            return end;
        }
    }
}

/// Waits, holding no buffer, until a side with open data is readable, or the clock says the
/// tunnel ends (`Err`). The readiness waits stay armed across the drain checks.
async fn wait(
    w: &Cx<'_>,
    clock: &mut Clock,
    client: &Stream,
    origin: &Stream,
    (up, down): (Flow, Flow),
    turn: Wake,
) -> Result<Wake, TunnelEnd> {
    let (first, end) = clock.next(w, Instant::now());
    if first <= Instant::now() {
        return end.map_or(Ok(Wake::Deadline), Err);
    }
    let mut from_client = pin!((up == Flow::Open).then(|| client.readable()));
    let mut from_origin = pin!((down == Flow::Open).then(|| origin.readable()));
    let mut timer = pin!(monoio::time::sleep_until(monoio::time::Instant::from_std(
        first
    )));
    let mut end = end;
    std::future::poll_fn(|cx| {
        // a readiness error (the socket broke) is also "readable": the read then says how
        // both are polled (each registers its waker); `turn` only decides which wins when
        // both are ready
        let c = from_client
            .as_mut()
            .as_pin_mut()
            .is_some_and(|f| f.poll(cx).is_ready());
        let o = from_origin
            .as_mut()
            .as_pin_mut()
            .is_some_and(|f| f.poll(cx).is_ready());
        match (c, o) {
            (true, true) => return Poll::Ready(Ok(turn)),
            (true, false) => return Poll::Ready(Ok(Wake::Client)),
            (false, true) => return Poll::Ready(Ok(Wake::Origin)),
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
    let mut out = BytesMut::with_capacity(512 + origin.early.len());
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
    let mut pipelined = std::mem::take(&mut conn.buf);
    let write = w.g.config.server.timeouts.write;
    let opened = open(
        &mut conn.stream,
        origin.stream,
        &mut out,
        &mut pipelined,
        write,
    )
    .await;
    w.buffers.give(pipelined);
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
    client: &mut Stream,
    origin: &mut Stream,
    out: &mut BytesMut,
    pipelined: &mut BytesMut,
    write: Duration,
) -> Result<(), TunnelEnd> {
    client
        .flush(out, write)
        .await
        .map_err(|_| TunnelEnd::ClientBroken)?;
    origin
        .flush(pipelined, write)
        .await
        .map_err(|_| TunnelEnd::OriginBroken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// When both sides are readable, the turn decides which is served (the relay gives the
    /// other side the next turn, so neither can starve the other); when one is, that one; a
    /// direction whose data ended is not waited on; the idle deadline ends the wait.
    async fn turns() {
        let w = crate::testkit::worker("[[route]]\nkey = \"GET /x\"\nmock = {}\n");
        let g = w.current();
        let cx = Cx { w: &w, g: &g };
        let (mut cp, c, _) = crate::testkit::accepted();
        let (mut op, o, _) = crate::testkit::accepted();
        let (c, o) = (Stream::Plain(c), Stream::Plain(o));
        let mut clock = Clock::new(Duration::from_millis(100), Duration::ZERO, Duration::ZERO);
        let open = (Flow::Open, Flow::Open);
        cp.write_all(b"from client").unwrap();
        c.readable().await.unwrap();
        assert_eq!(
            wait(&cx, &mut clock, &c, &o, open, Wake::Origin).await,
            Ok(Wake::Client)
        );
        op.write_all(b"from origin").unwrap();
        o.readable().await.unwrap();
        assert_eq!(
            wait(&cx, &mut clock, &c, &o, open, Wake::Origin).await,
            Ok(Wake::Origin)
        );
        assert_eq!(
            wait(&cx, &mut clock, &c, &o, open, Wake::Client).await,
            Ok(Wake::Client)
        );
        let origin_only = (Flow::Ended, Flow::Open);
        assert_eq!(
            wait(&cx, &mut clock, &c, &o, origin_only, Wake::Client).await,
            Ok(Wake::Origin)
        );
        let ended = (Flow::Ended, Flow::Ended);
        assert_eq!(
            wait(&cx, &mut clock, &c, &o, ended, Wake::Client).await,
            Err(TunnelEnd::Idle)
        );
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
