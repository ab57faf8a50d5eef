//! The outbound HTTP/1 client: per-worker upstream pools and one request/response exchange.
//!
//! Owns: the pools ([`pool`]: target choice, keep-alive connections per target, liveness
//! probes, passive health), and [`exchange`]: send a request (its head and whatever of the body
//! is at hand, then the rest from a [`BodySource`]) on a pooled or fresh connection, with the
//! retry and replay rules, and read the final response head (1xx skipped); the response body is
//! then read through a [`BodyReader`] (chunk by chunk, or to its end under a limit). Leaves
//! out: the client side of the gateway (sessions, the lifecycle), rewriting requests for an
//! origin, relaying responses: the HTTP integration ([`crate::integration::http`]) uses this, and
//! so will authorizers, JWKS fetches and Lambda calls.
//!
//! Data flow: `Outbound.first` (head + buffered body, one write) → [`BodySource::send_rest`]
//! for a body that did not fit → the origin's response head parsed from the connection's read
//! buffer → the caller reads the body from that same buffer and stream (a [`BodyReader`], which
//! is the [`ResponseBody`] a session relays without knowing the connection), then hands the
//! connection back to its [`Upstream`] (`release`), pooled when the exchange left it in sync.
//! The body's end is decided here, where the transport is known: a body delimited by the close
//! ends only with close_notify on a TLS connection ([`BodyReader`]'s `at_close`).
//!
//! Ad-hoc origins (a later issue: authorizers, JWKS fetches, Lambda) reuse [`exchange`] as it
//! is, since it only asks its [`Upstream`] to pick, check out, connect, release and note
//! health. The step is:
//! 1. An origin key, `pool::OriginKey { host, port, wire }` (`wire`: plain, or TLS with an
//!    `Arc<rustls::ClientConfig>` and a `ServerName`; system roots from `crate::tls` built once
//!    per config generation, never per request), and a per-worker, bounded map
//!    `OriginKey → Rc<Upstream>` (least recently used evicted with its idle connections beyond
//!    a named `MAX_AD_HOC_ORIGINS`, overridable in config). An entry is an
//!    `Upstream::single(addr, wire, limits)`: one target whose `TargetHealth` is its own, not on
//!    the health board (no active checks), with connect/idle limits from a `[client]` section
//!    whose defaults are named constants.
//! 2. Name resolution never on a worker (a blocking `getaddrinfo` stalls the core): addresses
//!    come from the control thread's resolver (`server::dns`), resolved at config load as
//!    targets are today, or refreshed there and handed to workers as `Arc<[SocketAddr]>`.
//! 3. (Done: [`request`].) A request-head struct for callers that build a request from
//!    scratch, [`OutboundHead`] `{ method, target, host, fields, body }`, whose
//!    [`OutboundHead::encode`] validates it (nothing passed in can inject a field) and writes
//!    the HTTP/1.1 request (`host` first, RFC 9110 §7.2; `content-length` for a body, RFC 9112
//!    §6.2) into an [`Outbound`], `whole` set, `idempotent` from the method (RFC 9110 §9.2.2).
//!    The HTTP integration keeps writing `first` itself (it forwards the client's fields,
//!    `integration::rewrite`); an HTTP/2 client later encodes the same struct its own way.
//! 4. The caller reads the answer with [`BodyReader::read_to_end`] under its own limit and
//!    releases the connection as the HTTP integration does.

pub mod pool;
pub mod request;
pub mod upgrade;

pub use pool::{Upstream, UpstreamConn};
pub use request::{InvalidHead, OutboundHead};

use std::future::Future;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::error::GatewayError;
use crate::http::{parse_response, BodyChunk, BodyDecoder, HttpError, Limits, ResponseHead};
use crate::response::ResponseBody;
use crate::transport::bufpool::BufPool;
use crate::transport::{IoFail, ReadEnd, Stream};

/// A request ready to go to an origin.
pub struct Outbound {
    /// The request head and as much of its body as is at hand, sent in one write.
    pub first: Bytes,
    /// `first` is the whole request (nothing comes from the [`BodySource`]).
    pub whole: bool,
    /// Repeating the request is harmless (RFC 9110 §9.2.2): with `whole`, it may be sent again
    /// on a fresh connection when a pooled one turns out dead.
    pub idempotent: bool,
    /// The sender's opt-in to one replay of a request sent whole that is not idempotent, only
    /// when a REUSED (pooled) connection failed before a single response byte: the write
    /// failed, or the connection closed or reset before any answer ([`exchange`]'s stale
    /// case). The sender vouches that such a failure means nothing was processed: its service
    /// closes idle keep-alive connections without processing what crosses the close (the
    /// Lambda Invoke API, see `crate::integration::lambda`). Never replayed: a failure after
    /// any response byte, a fresh connection's failure, a timeout.
    pub replay_on_stale: bool,
    /// A HEAD request: the response has no content whatever its framing (RFC 9110 §9.3.2).
    pub is_head: bool,
}

/// Where the rest of a request body comes from, when it did not fit [`Outbound::first`].
#[allow(async_fn_in_trait)] // monoio is single-threaded: nothing needs the future to be Send
pub trait BodySource {
    /// Streams the rest of the body onto `dst`. Called at most once per exchange (a streamed
    /// body cannot be replayed).
    async fn send_rest(&mut self, dst: &mut Stream) -> Result<(), GatewayError>;

    /// Resolves once whoever the request is for is gone (an HTTP/2 stream reset by its
    /// client): the exchange stops waiting for the response head and releases the connection
    /// as not reusable. Default: never.
    async fn requester_gone(&self) {
        std::future::pending::<()>().await
    }
}

/// Runs `work` unless `stop` resolves first (then `None`: `work` is dropped, so it must own
/// nothing that dropping it would lose, e.g. an origin connection the caller releases).
/// `work` is polled first: a result that is ready wins.
pub async fn unless<T>(work: impl Future<Output = T>, stop: impl Future<Output = ()>) -> Option<T> {
    let mut work = std::pin::pin!(work);
    let mut stop = std::pin::pin!(stop);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// The source of a request sent whole.
pub struct Whole;

impl BodySource for Whole {
    async fn send_rest(&mut self, _dst: &mut Stream) -> Result<(), GatewayError> {
        Ok(())
    }
}

/// What an exchange needs from the worker it runs on.
pub struct ClientCx<'a> {
    pub buffers: &'a BufPool,
    pub limits: &'a Limits,
    /// Bound of each write to the origin.
    pub write: Duration,
    /// A random number for target choice.
    pub random: u64,
}

/// Connects (or reuses a pooled connection), sends `req`, and reads the final response head
/// within `timeout`. Connect failures move on to the next usable target (nothing was sent, so
/// any method may); a reused connection that fails before any response byte is replaced by a
/// fresh one once, for a request that is whole and idempotent (RFC 9110 §9.2.2, RFC 9112
/// §9.3.1) or whose sender opted in ([`Outbound::replay_on_stale`]). `endpoint` is set to the target
/// last tried (the access log's `integration.endpoint`), also when the exchange fails.
pub async fn exchange(
    cx: &ClientCx<'_>,
    up: &Upstream,
    req: &Outbound,
    body: &mut impl BodySource,
    timeout: Duration,
    endpoint: &mut Option<SocketAddr>,
) -> Result<(UpstreamConn, ResponseHead), GatewayError> {
    let replayable = req.whole && (req.idempotent || req.replay_on_stale);
    let mut target = up.pick(cx.random).ok_or(GatewayError::NoTarget)?;
    let mut connect_failures = 0;
    let mut fresh_only = false;
    loop {
        let buf = cx.buffers.take();
        let got = if fresh_only {
            up.connect(target, buf).await
        } else {
            up.checkout(target, buf).await
        };
        let mut uc = match got {
            Ok(c) => c,
            Err((e, buf)) => {
                cx.buffers.give(buf);
                connect_failures += 1;
                // nothing was sent: any method may move on to the next usable target
                match up.next_usable(target) {
                    Some(next) if connect_failures < up.len() => {
                        target = next;
                        continue;
                    }
                    _ => return Err(e),
                }
            }
        };
        *endpoint = Some(uc.addr);
        if uc
            .stream
            .write_all(req.first.clone(), cx.write)
            .await
            .is_err()
        {
            let retry = uc.reused && replayable && !fresh_only;
            cx.buffers.give(up.release(uc, false));
            if retry {
                fresh_only = true;
                continue;
            }
            return Err(GatewayError::UpstreamProtocol("upstream write failed"));
        }
        if !req.whole {
            if let Err(e) = body.send_rest(&mut uc.stream).await {
                cx.buffers.give(up.release(uc, false));
                return Err(e);
            }
        }
        let head = read_response_head(cx, &mut uc, req.is_head, timeout, Switch::Refused);
        let Some(head) = unless(head, body.requester_gone()).await else {
            // the response has nobody to go to: the connection is mid-exchange, never reused
            cx.buffers.give(up.release(uc, false));
            return Err(GatewayError::ClientGone);
        };
        match head {
            Ok(rh) => {
                if rh.status >= 500 {
                    up.note_error(uc.target); // passive health: 5xx count as failures
                } else {
                    up.note_success(uc.target);
                }
                return Ok((uc, rh));
            }
            Err(HeadFail::Stale) if uc.reused && replayable && !fresh_only => {
                cx.buffers.give(up.release(uc, false));
                fresh_only = true;
            }
            Err(f) => {
                up.note_error(uc.target);
                cx.buffers.give(up.release(uc, false));
                return Err(match f {
                    HeadFail::Timeout => GatewayError::UpstreamTimeout,
                    HeadFail::Stale => GatewayError::UpstreamProtocol("upstream closed"),
                    HeadFail::Bad(m) => GatewayError::UpstreamProtocol(m),
                });
            }
        }
    }
}

enum HeadFail {
    /// Closed or reset before a single response byte: a dead pooled connection.
    Stale,
    Timeout,
    Bad(&'static str),
}

/// Whether a `101 Switching Protocols` may end the exchange (RFC 9110 §15.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    /// No upgrade was asked for: a 101 is a protocol error.
    Refused,
    /// The request asked for an upgrade ([`upgrade::exchange`]): a 101 is its final answer.
    Accepted,
}

/// Reads the final response head, skipping interim 1xx responses (RFC 9110 §15.2).
async fn read_response_head(
    cx: &ClientCx<'_>,
    uc: &mut UpstreamConn,
    is_head: bool,
    limit: Duration,
    switch: Switch,
) -> Result<ResponseHead, HeadFail> {
    let deadline = Instant::now() + limit;
    let mut received = false;
    loop {
        match parse_response(&mut uc.buf, is_head, cx.limits) {
            Ok(Some(rh)) if rh.status == 101 && switch == Switch::Accepted => return Ok(rh),
            Ok(Some(rh)) if rh.status == 101 => return Err(HeadFail::Bad("unexpected 101")),
            Ok(Some(rh)) if rh.is_informational() => continue,
            Ok(Some(rh)) => return Ok(rh),
            Ok(None) => {}
            Err(HttpError::HeadTooLarge) => return Err(HeadFail::Bad("response head too large")),
            Err(_) => return Err(HeadFail::Bad("invalid response head")),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match uc
            .stream
            .read_within(&mut uc.buf, cx.buffers.size(), left)
            .await
        {
            Ok(0) | Err(IoFail::Io(_)) if !received => return Err(HeadFail::Stale),
            Ok(0) | Err(IoFail::Io(_)) => return Err(HeadFail::Bad("upstream closed mid-head")),
            Ok(_) => received = true,
            Err(IoFail::Timeout) => return Err(HeadFail::Timeout),
        }
    }
}

/// The body of an origin's response, read from the exchange's connection: chunk by chunk
/// ([`BodyReader::next_chunk`]) or whole ([`BodyReader::read_to_end`]).
pub struct BodyReader<'a> {
    uc: &'a mut UpstreamConn,
    dec: BodyDecoder,
    /// Bound of each read (the origin going quiet is a 504).
    read_limit: Duration,
    want: usize,
}

impl ResponseBody for BodyReader<'_> {
    async fn next_chunk(&mut self) -> Result<BodyChunk, GatewayError> {
        BodyReader::next_chunk(self).await
    }

    fn next_buffered(&mut self) -> Result<Option<BodyChunk>, GatewayError> {
        BodyReader::next_buffered(self)
    }
}

impl<'a> BodyReader<'a> {
    pub fn new(
        uc: &'a mut UpstreamConn,
        rh: &ResponseHead,
        read_limit: Duration,
        want: usize,
    ) -> Self {
        BodyReader {
            uc,
            dec: BodyDecoder::new_response(rh.body),
            read_limit,
            want,
        }
    }

    /// The next decoded step of the body: data, or its end (with any trailers), reading as
    /// needed. After the end, the connection's buffer holds only what followed the message.
    pub async fn next_chunk(&mut self) -> Result<BodyChunk, GatewayError> {
        loop {
            match self.dec.decode(&mut self.uc.buf) {
                Ok(Some(step)) => return Ok(step),
                Ok(None) => {}
                Err(_) => return Err(GatewayError::UpstreamProtocol("invalid response body")),
            }
            let (buf, limit) = (&mut self.uc.buf, self.read_limit);
            match self.uc.stream.read_within(buf, self.want, limit).await {
                Ok(0) => return self.at_close(),
                Ok(_) => {}
                Err(IoFail::Timeout) => return Err(GatewayError::UpstreamTimeout),
                Err(IoFail::Io(_)) => {
                    return Err(GatewayError::UpstreamProtocol("upstream body broken"))
                }
            }
        }
    }

    /// The origin's data ended: the body's end when its framing allows it (only a body
    /// delimited by the close does). Over TLS that end must come with close_notify: a TCP end
    /// without it cannot be told from a truncation by an attacker (RFC 5246 §7.2.1, RFC 8446
    /// §6.1), so a close-delimited body ended that way is broken, never complete. (Content-Length
    /// and chunked bodies carry their own end, so a missing close_notify after it is harmless.)
    fn at_close(&mut self) -> Result<BodyChunk, GatewayError> {
        let end = self
            .dec
            .eof()
            .map_err(|_| GatewayError::UpstreamProtocol("upstream closed mid-body"))?;
        // only TLS can tell a clean end from a cut; a plain stream's end is its only end
        let tls = matches!(self.uc.stream, Stream::Tls(_));
        match self.uc.stream.read_end() {
            ReadEnd::Eof if tls => Err(GatewayError::UpstreamProtocol(
                "upstream body truncated (TLS close without close_notify)",
            )),
            ReadEnd::Eof | ReadEnd::CloseNotify | ReadEnd::Open => Ok(end),
        }
    }

    /// Decodes the next step from what is already buffered, without reading: `None` when more
    /// bytes are needed.
    pub fn next_buffered(&mut self) -> Result<Option<BodyChunk>, GatewayError> {
        self.dec
            .decode(&mut self.uc.buf)
            .map_err(|_| GatewayError::UpstreamProtocol("invalid response body"))
    }

    /// Reads the whole body, at most `max` bytes of payload: a larger body is refused
    /// ([`GatewayError::UpstreamProtocol`], the origin's answer being unusable) without reading
    /// it further.
    pub async fn read_to_end(&mut self, max: usize) -> Result<Bytes, GatewayError> {
        let mut body = BytesMut::new();
        loop {
            match self.next_chunk().await? {
                BodyChunk::Data(d) => {
                    if body.len().saturating_add(d.len()) > max {
                        return Err(GatewayError::UpstreamProtocol("upstream body too large"));
                    }
                    body.extend_from_slice(&d);
                }
                BodyChunk::End { .. } => return Ok(body.freeze()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An origin on a thread: answers each connection's request with `reply`, once.
    fn origin(reply: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "client closed before a whole head");
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(reply).unwrap();
            got
        });
        (addr, t)
    }

    fn upstream(addr: SocketAddr) -> Upstream {
        let toml = format!(
            "[[upstream]]\nname = \"o\"\ntargets = [\"{addr}\"]\n\n[[route]]\nkey = \"GET /x\"\nupstream = \"o\"\n"
        );
        let cfg = crate::config::from_str(&toml).unwrap();
        let health = crate::health::HealthBoard::new(&cfg);
        Upstream::new(&cfg.upstreams[0], health.upstream(0))
    }

    const REPLY: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

    /// One exchange: the interim 100 is skipped, the chunked body is read to its end, the
    /// origin received exactly the bytes sent; a limit below the body's size refuses it.
    async fn exchange_and_read(
        max: usize,
    ) -> (Result<Bytes, GatewayError>, Option<SocketAddr>, SocketAddr) {
        let (addr, t) = origin(REPLY);
        let up = upstream(addr);
        let buffers = BufPool::new(4096);
        let limits = Limits::default();
        let cx = ClientCx {
            buffers: &buffers,
            limits: &limits,
            write: Duration::from_secs(5),
            random: 7,
        };
        let req = OutboundHead {
            method: "GET",
            target: "/x",
            host: "o",
            fields: &[],
            body: None,
        }
        .encode()
        .unwrap();
        let mut endpoint = None;
        let (mut uc, rh) = exchange(
            &cx,
            &up,
            &req,
            &mut Whole,
            Duration::from_secs(5),
            &mut endpoint,
        )
        .await
        .unwrap();
        assert_eq!(rh.status, 200);
        let body = BodyReader::new(&mut uc, &rh, Duration::from_secs(5), 4096)
            .read_to_end(max)
            .await;
        buffers.give(up.release(uc, false));
        assert_eq!(t.join().unwrap(), b"GET /x HTTP/1.1\r\nhost: o\r\n\r\n");
        (body, endpoint, addr)
    }

    async fn both_cases() {
        let (body, endpoint, addr) = exchange_and_read(1024).await;
        assert_eq!(&body.unwrap()[..], b"hello world");
        assert_eq!(endpoint, Some(addr));
        let (body, _, _) = exchange_and_read(10).await;
        assert_eq!(
            body.unwrap_err(),
            GatewayError::UpstreamProtocol("upstream body too large")
        );
    }

    #[test]
    fn exchange_then_read_to_end_epoll() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(both_cases());
    }

    #[test]
    fn exchange_then_read_to_end_io_uring() {
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(both_cases());
    }
}
