//! Reading an HTTP/1 request body from the client (RFC 9112 §6-7).
//!
//! Owns: the body's framing on the client side (Content-Length or chunked, decoded by
//! [`BodyDecoder`]), `100 Continue` before the first read of a body the client holds back
//! (RFC 9110 §10.1.1), and the minimum body rate: every read of the body goes through
//! [`read_paced`], each read bounded by `body_read_ms`, and once `body_rate_grace_ms` is over a
//! body arriving on average slower than `min_body_rate` ends with 408
//! ([`GatewayError::BodyTooSlow`]; the connection closes, the body's end being unknown). The
//! average counts only the time spent waiting for the client: time a consumer (an origin
//! accepting a streamed body) takes between reads is not the client's fault. The session
//! exposes it as [`crate::session::Session::open_body`], `next_chunk`, `buffered_chunk` and
//! `read_body`. Leaves out: what the body is used for (the HTTP integration buffers up to
//! `request_buffer_bytes` before it chooses an origin, then streams; see
//! [`crate::integration::http`]).
//!
//! Data flow: client socket → `conn.buf` → [`BodyDecoder`] → decoded chunks (split off the
//! buffer, not copied) → the caller.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::h1::Downstream;
use crate::config::BodyPolicy;
use crate::error::GatewayError;
use crate::exchange::{BodyState, ExchangeState};
use crate::http::{BodyChunk, BodyDecoder, BodyKind, HttpError, RequestHead};
use crate::transport::{IoFail, Stream};
use crate::worker::Cx;

/// The minimum-rate rule for one request body: how long the client has waited to be read and
/// how much it has sent. Per exchange, on one worker.
#[derive(Debug)]
pub struct Pace {
    /// Bytes per second; 0 = the rule is off.
    min_rate: u64,
    grace: Duration,
    /// Time spent waiting for the client's body bytes.
    waited: Duration,
    /// Body bytes received from the client (as framed on the wire).
    received: u64,
}

impl Pace {
    /// Starts measuring a body of which `already` bytes arrived with the head.
    pub fn new(policy: &BodyPolicy, grace: Duration, already: usize) -> Pace {
        Pace {
            min_rate: policy.min_rate,
            grace,
            waited: Duration::ZERO,
            received: already as u64,
        }
    }

    /// How much longer the client may keep us waiting before its average rate falls below
    /// `min_rate` (the grace period, or the time its bytes so far earn at `min_rate`, whichever
    /// is longer, minus the time already waited). None: the rule is off.
    fn allowance(&self) -> Option<Duration> {
        if self.min_rate == 0 {
            return None;
        }
        let earned = Duration::from_millis(self.received.saturating_mul(1000) / self.min_rate);
        Some(self.grace.max(earned).saturating_sub(self.waited))
    }

    /// The longest next wait for body bytes: `per_read`, or less when the minimum rate allows
    /// less (`true`: the rate decides; its end is [`GatewayError::BodyTooSlow`]). For sessions
    /// that wait on something other than [`read_paced`]'s socket (an HTTP/2 stream's inbox).
    pub(super) fn next_wait(&self, per_read: Duration) -> (Duration, bool) {
        match self.allowance() {
            Some(left) if left < per_read => (left, true),
            _ => (per_read, false),
        }
    }

    /// Accounts for a wait of `waited` that brought `n` body bytes. False: they came too late
    /// to keep the average at the minimum rate (the body ends with 408, as over HTTP/1).
    pub(super) fn account(&mut self, waited: Duration, n: usize) -> bool {
        self.waited += waited;
        self.received = self.received.saturating_add(n as u64);
        !(n > 0 && self.allowance().is_some_and(|left| left.is_zero()))
    }
}

/// Why reading a request body stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFail {
    /// No byte within the per-read limit (`body_read_ms`).
    Timeout,
    /// The average rate fell below `min_body_rate` after the grace period.
    TooSlow,
    /// The connection broke.
    Closed,
}

/// One read of body bytes into `buf`, bounded by `per_read` and, with a [`Pace`], by the
/// minimum rate. `Ok(0)`: the client closed its side.
pub async fn read_paced(
    stream: &mut Stream,
    buf: &mut BytesMut,
    want: usize,
    per_read: Duration,
    pace: Option<&mut Pace>,
) -> Result<usize, ReadFail> {
    let Some(pace) = pace else {
        return match stream.read_within(buf, want, per_read).await {
            Ok(n) => Ok(n),
            Err(IoFail::Timeout) => Err(ReadFail::Timeout),
            Err(IoFail::Io(_)) => Err(ReadFail::Closed),
        };
    };
    let (limit, paced) = match pace.allowance() {
        Some(left) if left < per_read => (left, true),
        _ => (per_read, false),
    };
    if paced && limit.is_zero() {
        return Err(ReadFail::TooSlow);
    }
    let started = Instant::now();
    let got = stream.read_within(buf, want, limit).await;
    pace.waited += started.elapsed();
    match got {
        Ok(n) => {
            pace.received = pace.received.saturating_add(n as u64);
            // bytes that came, but too late to keep the average up, still end the body
            if n > 0 && pace.allowance().is_some_and(|left| left.is_zero()) {
                return Err(ReadFail::TooSlow);
            }
            Ok(n)
        }
        Err(IoFail::Timeout) if paced => Err(ReadFail::TooSlow),
        Err(IoFail::Timeout) => Err(ReadFail::Timeout),
        Err(IoFail::Io(_)) => Err(ReadFail::Closed),
    }
}

/// A request body being read chunk by chunk ([`next_chunk`]): its decoder and its rate rule.
/// Per exchange, on one worker; it lives on the request's (boxed) future, no allocation.
pub struct BodyStream {
    dec: BodyDecoder,
    pace: Pace,
}

/// Largest buffer [`read_to_end`] reserves before the body's bytes arrive: a declared
/// Content-Length is a promise, not bytes, so a client declaring `max` and sending nothing
/// must not make the worker allocate `max` up front; past this the buffer grows as data comes.
pub const READ_TO_END_RESERVE: usize = 64 * 1024;

/// The capacity [`read_to_end`] starts with for a body framed as `kind`, at most `max` bytes:
/// the declared length, capped at [`READ_TO_END_RESERVE`] (chunked: unknown, nothing).
fn initial_capacity(kind: BodyKind, max: usize) -> usize {
    match kind {
        BodyKind::Length(n) => usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(max)
            .min(READ_TO_END_RESERVE),
        _ => 0,
    }
}

/// Starts reading the request body: the client gets its `100 Continue` first when it waits for
/// one (RFC 9110 §10.1.1). From here on the body's end is known only to the returned stream:
/// the connection is reused only if it is read to its end. A body already opened (and so
/// perhaps partly read) is refused with [`GatewayError::Internal`] (500, the connection
/// closes): a second decoder would start in the middle of the body and take payload bytes for
/// chunk sizes or count a Content-Length twice (RFC 9112 §6.3, §7.1), misframing everything
/// after it.
pub async fn open_body(
    w: &Cx<'_>,
    conn: &mut Downstream,
    head: &RequestHead,
    st: &mut ExchangeState,
    policy: &BodyPolicy,
) -> Result<BodyStream, GatewayError> {
    let timeouts = &w.g.config.server.timeouts;
    let kind = match st.body {
        BodyState::Done => BodyKind::Empty, // nothing (more) to read
        BodyState::Unread => head.body,
        BodyState::Partial => return Err(GatewayError::Internal("request body opened twice")),
    };
    let dec = BodyDecoder::new(kind, &w.g.config.server.limits);
    if !dec.is_done() {
        conn.continue_if_expected(w, head).await?;
    }
    if st.body == BodyState::Unread {
        st.body = BodyState::Partial;
    }
    let pace = Pace::new(policy, timeouts.body_rate_grace, conn.buf.len());
    Ok(BodyStream { dec, pace })
}

/// The next decoded step of the request body (data never empty, or its end with the trailers
/// that may be forwarded); reads as needed, each read under `body_read_ms` and the minimum
/// body rate.
pub async fn next_chunk(
    w: &Cx<'_>,
    conn: &mut Downstream,
    body: &mut BodyStream,
    st: &mut ExchangeState,
) -> Result<BodyChunk, GatewayError> {
    loop {
        if let Some(step) = buffered_chunk(conn, body, st)? {
            return Ok(step);
        }
        let (want, per_read) = (w.buffers.size(), w.g.config.server.timeouts.body_read);
        let pace = Some(&mut body.pace);
        let got = read_paced(&mut conn.stream, &mut conn.buf, want, per_read, pace);
        match got.await {
            Ok(0) | Err(ReadFail::Closed) => return Err(GatewayError::ClientGone),
            Ok(_) => {}
            Err(ReadFail::Timeout) => return Err(GatewayError::BodyTimeout),
            Err(ReadFail::TooSlow) => return Err(GatewayError::BodyTooSlow),
        }
    }
}

/// The next step decoded from what is already buffered, without reading (`None`: more must be
/// read). The decoded payload is counted in `st.bytes_in`; the end marks the body done.
pub fn buffered_chunk(
    conn: &mut Downstream,
    body: &mut BodyStream,
    st: &mut ExchangeState,
) -> Result<Option<BodyChunk>, GatewayError> {
    if body.dec.is_done() {
        // no body, or its end was already taken
        st.body = BodyState::Done;
        return Ok(Some(BodyChunk::End {
            trailers: Bytes::new(),
        }));
    }
    match body.dec.decode(&mut conn.buf)? {
        Some(BodyChunk::Data(d)) => {
            st.bytes_in += d.len() as u64;
            Ok(Some(BodyChunk::Data(d)))
        }
        Some(end @ BodyChunk::End { .. }) => {
            st.body = BodyState::Done;
            Ok(Some(end))
        }
        None => Ok(None),
    }
}

/// Reads the whole request body into memory, at most `max` bytes of payload, for work that
/// needs it whole (Lambda payloads, authorizers and transformations that read the body),
/// through [`open_body`] and [`next_chunk`]. A body larger than `max` is a 413
/// ([`HttpError::BodyTooLarge`]): refused from its declared length before a byte of it is
/// read, or as soon as the decoded payload passes `max`; what the client still sends is not
/// read (the lifecycle then closes the connection, lingering).
pub async fn read_to_end(
    w: &Cx<'_>,
    conn: &mut Downstream,
    head: &RequestHead,
    st: &mut ExchangeState,
    policy: &BodyPolicy,
    max: usize,
) -> Result<Bytes, GatewayError> {
    let too_large = GatewayError::Http(HttpError::BodyTooLarge);
    match (st.body, head.body) {
        (BodyState::Done, _) | (_, BodyKind::Empty) => return Ok(Bytes::new()),
        (_, BodyKind::Length(n)) if n > max as u64 => return Err(too_large),
        _ => {}
    }
    let mut stream = open_body(w, conn, head, st, policy).await?;
    let mut body = BytesMut::with_capacity(initial_capacity(head.body, max));
    while let BodyChunk::Data(d) = next_chunk(w, conn, &mut stream, st).await? {
        if body.len().saturating_add(d.len()) > max {
            return Err(too_large);
        }
        body.extend_from_slice(&d);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(rate: u64, grace_ms: u64, received: u64, waited_ms: u64) -> Pace {
        Pace {
            min_rate: rate,
            grace: Duration::from_millis(grace_ms),
            waited: Duration::from_millis(waited_ms),
            received,
        }
    }

    /// `read_to_end` on a real socket: the body arrives in two parts after the head, or is
    /// larger than the limit (declared, or only found out while decoding chunks).
    async fn read_whole_cases() {
        use crate::worker::Cx;
        use std::io::Write;
        let w = crate::testkit::worker("[[route]]\nkey = \"POST /x\"\nmock = {}\n");
        let g = w.current();
        let cx = Cx { w: &w, g: &g };
        let limits = crate::http::Limits::default();
        let policy = BodyPolicy::default();
        // (head, body parts, limit, expected)
        type Case = (
            &'static [u8],
            [&'static [u8]; 2],
            usize,
            Result<&'static [u8], GatewayError>,
        );
        let too_large = Err(GatewayError::Http(HttpError::BodyTooLarge));
        let cases: [Case; 4] = [
            (
                b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 11\r\n\r\n",
                [b"hello", b" world"],
                64,
                Ok(b"hello world"),
            ),
            (
                b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n",
                [b"5\r\nhello\r\n", b"6\r\n world\r\n0\r\n\r\n"],
                64,
                Ok(b"hello world"),
            ),
            (
                b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 11\r\n\r\n",
                [b"hello", b" world"],
                10,
                too_large,
            ),
            (
                b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n",
                [b"5\r\nhello\r\n", b"6\r\n world\r\n0\r\n\r\n"],
                10,
                too_large,
            ),
        ];
        for (head_bytes, parts, max, expected) in cases {
            let (mut client, mut conn) = crate::testkit::downstream();
            let mut hb = BytesMut::from(head_bytes);
            let head = crate::http::parse_request(&mut hb, &limits)
                .unwrap()
                .unwrap();
            let mut st = ExchangeState::new(&cx, &head);
            let sender = std::thread::spawn(move || {
                for p in parts {
                    client.write_all(p).unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                }
                client
            });
            // through the session interface, as an integration would
            let got =
                crate::session::Session::read_body(&mut conn, &cx, &head, &mut st, &policy, max)
                    .await;
            let _client = sender.join().unwrap();
            match expected {
                Ok(b) => {
                    assert_eq!(&got.unwrap()[..], b);
                    assert_eq!(st.body, BodyState::Done);
                }
                Err(e) => {
                    assert_eq!(got.unwrap_err(), e);
                    assert_ne!(st.body, BodyState::Done);
                }
            }
        }
    }

    /// A client that sent `Expect: 100-continue` gets the interim response before it sends
    /// the body that `read_body` then reads.
    async fn read_after_continue() {
        use crate::worker::Cx;
        use std::io::{Read, Write};
        let w = crate::testkit::worker("[[route]]\nkey = \"POST /x\"\nmock = {}\n");
        let g = w.current();
        let cx = Cx { w: &w, g: &g };
        let (mut client, mut conn) = crate::testkit::downstream();
        let mut hb = BytesMut::from(
            &b"POST /x HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n"[..],
        );
        let head = crate::http::parse_request(&mut hb, &crate::http::Limits::default())
            .unwrap()
            .unwrap();
        let mut st = ExchangeState::new(&cx, &head);
        let sender = std::thread::spawn(move || {
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut got = [0u8; 25];
            client.read_exact(&mut got).unwrap();
            assert_eq!(&got[..], b"HTTP/1.1 100 Continue\r\n\r\n");
            client.write_all(b"ok").unwrap();
            client
        });
        let policy = BodyPolicy::default();
        let got = crate::session::Session::read_body(&mut conn, &cx, &head, &mut st, &policy, 64);
        let got = got.await;
        let _client = sender.join().unwrap();
        assert_eq!(&got.unwrap()[..], b"ok");
    }

    #[test]
    fn read_to_end_epoll() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(read_whole_cases());
        rt.block_on(read_after_continue());
        rt.block_on(open_twice_is_refused());
    }

    #[test]
    fn read_to_end_io_uring() {
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(read_whole_cases());
        rt.block_on(read_after_continue());
        rt.block_on(open_twice_is_refused());
    }

    /// Opening a body that is already open (partly read) is an internal error that closes
    /// the connection, never a second decoder starting mid-body.
    async fn open_twice_is_refused() {
        use crate::worker::Cx;
        use std::io::Write;
        let w = crate::testkit::worker("[[route]]\nkey = \"POST /x\"\nmock = {}\n");
        let g = w.current();
        let cx = Cx { w: &w, g: &g };
        let (mut client, mut conn) = crate::testkit::downstream();
        let mut hb = BytesMut::from(
            &b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"[..],
        );
        let head = crate::http::parse_request(&mut hb, &crate::http::Limits::default())
            .unwrap()
            .unwrap();
        let mut st = ExchangeState::new(&cx, &head);
        // "5\r\nhello\r\n" then "5\r\n" of the next chunk: a fresh decoder would read "wo"
        // as a chunk size
        client.write_all(b"5\r\nhello\r\n5\r\nworld\r\n").unwrap();
        let policy = BodyPolicy::default();
        use crate::session::Session;
        let mut body = conn.open_body(&cx, &head, &mut st, &policy).await.unwrap();
        let first = conn.next_chunk(&cx, &mut body, &mut st).await.unwrap();
        assert!(
            matches!(first, BodyChunk::Data(ref d) if &d[..] == b"hello"),
            "{first:?}"
        );
        assert_eq!(st.body, BodyState::Partial);
        let again = conn.open_body(&cx, &head, &mut st, &policy).await;
        let e = again.err().expect("a second open is refused");
        assert_eq!(e, GatewayError::Internal("request body opened twice"));
        assert_eq!(e.status(), 500);
        assert!(e.must_close());
        // read_body (through the same open) refuses too
        let whole = conn.read_body(&cx, &head, &mut st, &policy, 64).await;
        assert_eq!(whole.err(), Some(e));
        drop(client);
    }

    #[test]
    fn read_to_end_reserves_at_most_its_cap_up_front() {
        // a declared length is not bytes: the up-front buffer is capped
        assert_eq!(
            initial_capacity(BodyKind::Length(10 << 20), 16 << 20),
            READ_TO_END_RESERVE
        );
        assert_eq!(
            initial_capacity(BodyKind::Length(u64::MAX), usize::MAX),
            READ_TO_END_RESERVE
        );
        // small bodies get exactly their length, never more than max
        assert_eq!(initial_capacity(BodyKind::Length(11), 64), 11);
        assert_eq!(initial_capacity(BodyKind::Length(100), 10), 10);
        assert_eq!(initial_capacity(BodyKind::Chunked, 1 << 20), 0);
    }

    #[test]
    fn allowance_is_grace_then_earned_by_bytes() {
        // off
        assert_eq!(pace(0, 100, 0, 1_000_000).allowance(), None);
        // within the grace period nothing has to arrive
        let ms = Duration::from_millis;
        assert_eq!(pace(500, 10_000, 0, 4_000).allowance(), Some(ms(6_000)));
        // 10 000 bytes at 500 B/s earn 20 s of waiting
        assert_eq!(
            pace(500, 10_000, 10_000, 15_000).allowance(),
            Some(ms(5_000))
        );
        // behind: 1 000 bytes in 11 s is below 500 B/s
        assert_eq!(pace(500, 10_000, 1_000, 11_000).allowance(), Some(ms(0)));
        // no overflow on absurd counts
        assert!(pace(1, 0, u64::MAX, 0).allowance().is_some());
    }
}
