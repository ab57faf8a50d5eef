//! Taking a request body in from the client on its way to an origin.
//!
//! Owns: the buffering phase and the minimum body rate. Before an origin is chosen (so before
//! any origin connection is checked out), [`buffer_body`] reads the body into the request's
//! output buffer, decoded and re-encoded, up to the route's `request_buffer_bytes`, as nginx
//! does by default: a slow client then holds only its own memory, never an origin connection
//! (an origin with a fixed number of threads would otherwise be starved by a few clients
//! dripping bodies). A body that fits is sent whole in one write and is replayable like a
//! bodiless request; a larger one is streamed from there by [`crate::integration::http`]. Every read of
//! the body, buffered or streamed, goes through [`read_paced`]: each read is bounded by
//! `body_read_ms`, and once `body_rate_grace_ms` is over a body arriving on average slower than
//! `min_body_rate` ends with 408 ([`GatewayError::BodyTooSlow`]; the connection closes, the
//! body's end being unknown). The average counts only the time spent waiting for the client:
//! time the origin takes to accept a streamed body is not the client's fault. Leaves out: the
//! request head, choosing and talking to the origin, the response (see [`crate::integration::http`]).
//!
//! Data flow: client socket → `conn.buf` → [`BodyDecoder`] → [`BodyEncoder`] → the output
//! buffer that already holds the rewritten head; memory stays bounded by the route's
//! `request_buffer_bytes` plus one read.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::conn::Downstream;
use super::lifecycle::{BodyState, ExchangeState};
use super::worker::Cx;
use crate::config::BodyPolicy;
use crate::error::GatewayError;
use crate::http::{BodyChunk, BodyDecoder, BodyEncoder, BodyKind, HttpError, RequestHead};
use crate::integration::http::FLUSH_BYTES;
use crate::transport::{IoFail, Stream};

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
}

/// What is left of a request body that did not fit the buffer: the framings, the output buffer
/// and the rate rule the streaming phase goes on with.
pub struct Rest<'a> {
    pub dec: &'a mut BodyDecoder,
    pub enc: &'a mut BodyEncoder,
    pub out: BytesMut,
    pub pace: &'a mut Pace,
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

/// The buffering phase: moves the body into `out` (after the head already there) until it is
/// complete or `limit` bytes of it are buffered. True: the whole body is in `out`. `moved`
/// counts payload bytes (the access log's and metrics' request length).
#[allow(clippy::too_many_arguments)] // the client, both framings, the output and the rule
pub async fn buffer_body(
    w: &Cx<'_>,
    conn: &mut Downstream,
    dec: &mut BodyDecoder,
    enc: &mut BodyEncoder,
    out: &mut BytesMut,
    moved: &mut u64,
    limit: usize,
    pace: &mut Pace,
) -> Result<bool, GatewayError> {
    let head_len = out.len();
    if let BodyDecoder::Length { remaining } = dec {
        if *remaining <= limit as u64 {
            out.reserve(*remaining as usize); // it fits: one allocation for head and body
        }
    }
    // What the client sent with its head is taken even past a small limit (it is in memory
    // already), up to the usual flush size.
    let cap = head_len.saturating_add(limit.max(FLUSH_BYTES));
    let per_read = w.g.config.server.timeouts.body_read;
    loop {
        if drain_buffered(&mut conn.buf, dec, enc, out, moved, cap)? {
            return Ok(true);
        }
        if out.len().saturating_sub(head_len) >= limit {
            return Ok(false); // larger than the buffer: streamed from here
        }
        let want = w.buffers.size();
        match read_paced(&mut conn.stream, &mut conn.buf, want, per_read, Some(pace)).await {
            Ok(0) | Err(ReadFail::Closed) => return Err(GatewayError::ClientGone),
            Ok(_) => {}
            Err(ReadFail::Timeout) => return Err(GatewayError::BodyTimeout),
            Err(ReadFail::TooSlow) => return Err(GatewayError::BodyTooSlow),
        }
    }
}

/// A request body being read chunk by chunk ([`next_chunk`]): its decoder and its rate rule.
pub struct BodyStream {
    dec: BodyDecoder,
    pace: Pace,
}

/// Starts reading the request body: the client gets its `100 Continue` first when it waits for
/// one (RFC 9110 §10.1.1). From here on the body's end is known only to the returned stream:
/// the connection is reused only if it is read to its end.
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
        BodyState::Unread | BodyState::Partial => head.body,
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

/// The next decoded chunk of the request body (never empty), or `None` at its end; reads as
/// needed, each read under `body_read_ms` and the minimum body rate.
pub async fn next_chunk(
    w: &Cx<'_>,
    conn: &mut Downstream,
    body: &mut BodyStream,
    st: &mut ExchangeState,
) -> Result<Option<Bytes>, GatewayError> {
    loop {
        match body.dec.decode(&mut conn.buf)? {
            Some(BodyChunk::Data(d)) => {
                st.bytes_in += d.len() as u64;
                return Ok(Some(d));
            }
            Some(BodyChunk::End { .. }) => {
                st.body = BodyState::Done;
                return Ok(None);
            }
            None => {
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
    let mut body = BytesMut::new();
    if let BodyKind::Length(n) = head.body {
        body.reserve(n as usize); // at most `max`, checked above
    }
    while let Some(d) = next_chunk(w, conn, &mut stream, st).await? {
        if body.len().saturating_add(d.len()) > max {
            return Err(too_large);
        }
        body.extend_from_slice(&d);
    }
    Ok(body.freeze())
}

/// Moves already-buffered body bytes into `out` until it holds `cap` bytes. True when the
/// whole body was there. Once `cap` is reached the decoder still takes one step: a body whose
/// end follows right at `cap` (a Content-Length body exactly that long, or a chunked body's
/// last-chunk and trailers) is whole; if that step is data instead, `out` grows by at most what
/// was already read, and the body is streamed from there.
fn drain_buffered(
    buf: &mut BytesMut,
    dec: &mut BodyDecoder,
    enc: &mut BodyEncoder,
    out: &mut BytesMut,
    moved: &mut u64,
    cap: usize,
) -> Result<bool, HttpError> {
    if dec.is_done() {
        enc.finish(&[], out)?;
        return Ok(true);
    }
    loop {
        let full = out.len() >= cap;
        match dec.decode(buf)? {
            Some(BodyChunk::Data(d)) => {
                *moved += d.len() as u64;
                enc.encode(&d, out)?;
                if full {
                    return Ok(false);
                }
            }
            Some(BodyChunk::End { trailers }) => {
                enc.finish(&trailers, out)?;
                return Ok(true);
            }
            None => return Ok(false),
        }
    }
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
        use crate::proxy::worker::{Cx, Worker};
        use std::io::Write;
        let cfg = std::sync::Arc::new(
            crate::config::from_str("[[route]]\nkey = \"POST /x\"\nmock = {}\n").unwrap(),
        );
        let throttle = std::sync::Arc::new(crate::throttle::Throttle::new(cfg.throttle.clone(), 1));
        let health = crate::health::HealthBoard::new(&cfg);
        let g = crate::proxy::worker::Generation::first(0, cfg, throttle, None, &health);
        let w = Worker::new(0, crate::runtime::DriverKind::Epoll, g);
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
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, peer) = l.accept().unwrap();
            s.set_nonblocking(true).unwrap();
            let local = s.local_addr().unwrap();
            let mut conn = Downstream::new(
                crate::transport::Stream::Plain(monoio::net::TcpStream::from_std(s).unwrap()),
                crate::transport::ConnFacts::plain(peer, local),
                std::rc::Rc::new(std::cell::Cell::new(false)),
            );
            let mut hb = BytesMut::from(head_bytes);
            let head = crate::http::parse_request(&mut hb, &limits)
                .unwrap()
                .unwrap();
            let mut st = super::super::lifecycle::request_filter(&cx, &head);
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
        use crate::proxy::worker::{Cx, Worker};
        use std::io::{Read, Write};
        let cfg = std::sync::Arc::new(
            crate::config::from_str("[[route]]\nkey = \"POST /x\"\nmock = {}\n").unwrap(),
        );
        let throttle = std::sync::Arc::new(crate::throttle::Throttle::new(cfg.throttle.clone(), 1));
        let health = crate::health::HealthBoard::new(&cfg);
        let g = crate::proxy::worker::Generation::first(0, cfg, throttle, None, &health);
        let w = Worker::new(0, crate::runtime::DriverKind::Epoll, g);
        let g = w.current();
        let cx = Cx { w: &w, g: &g };
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let local = s.local_addr().unwrap();
        let mut conn = Downstream::new(
            crate::transport::Stream::Plain(monoio::net::TcpStream::from_std(s).unwrap()),
            crate::transport::ConnFacts::plain(peer, local),
            std::rc::Rc::new(std::cell::Cell::new(false)),
        );
        let mut hb = BytesMut::from(
            &b"POST /x HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n"[..],
        );
        let head = crate::http::parse_request(&mut hb, &crate::http::Limits::default())
            .unwrap()
            .unwrap();
        let mut st = super::super::lifecycle::request_filter(&cx, &head);
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
    }

    #[test]
    fn read_to_end_io_uring() {
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(read_whole_cases());
        rt.block_on(read_after_continue());
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
