//! One HTTP/2 stream as the lifecycle sees it: [`H2Stream`], a [`Session`].
//!
//! Owns: the request body of a stream, read from its inbox (filled by the connection task),
//! each consumed chunk credited back to the client's windows (`release_capacity`), so a slow
//! consumer (an origin) back-pressures the client by flow control (RFC 9113 §5.2); each wait
//! for body bytes bounded by `body_read_ms` and, as over HTTP/1, by the minimum body rate over
//! the time spent waiting for the client (408 `BodyTooSlow`), the payload by `max_body_bytes`
//! (413). A body
//! with a declared length that fits half a stream window is held back until it ended, so a
//! content-length mismatch (RFC 9113 §8.1.1) is found before the origin sees a byte; a larger
//! one streams, but its last declared byte is handed out only after END_STREAM, so a later
//! reset, stream error or extra DATA fails the read with [`GatewayError::ClientGone`] while the
//! origin still lacks a byte: the integration drops the origin connection (never a complete
//! request upstream) and nothing more is sent on the stream. The response: HEADERS from [`super::h2_response`], then DATA
//! within the stream's send capacity; the origin's body is read only while there is capacity
//! and less than [`FLUSH_BYTES`] of the connection's output is unwritten, so a slow client
//! never makes the gateway buffer a whole response; a response waiting longer than
//! `server.http2.zero_window_timeout_ms` on a window (or on unwritten output) ends the
//! connection (GOAWAY ENHANCE_YOUR_CALM) when every active stream waits so and nothing moved,
//! else is reset (counted toward the reset limit). [`Session::client_gone`]: the stream's reset
//! or the connection's close, raced by integrations around their origin waits.
//! Leaves out: the socket and frames (the connection task, `super::h2`), and what a request
//! does (the lifecycle).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::h1_body::Pace;
use super::h2::{goaway_reason, REASON_ZERO_WINDOW};
use super::h2_conn::{
    client_gone, out_room, send_room, wait_stream, written_past, BodyEnd, SharedRef, Stall,
    WaitingRoom,
};
use super::h2_response::{response_head, trailer_fields, BodyPlan, H2ResponseHead};
use super::{Refused, Session, FLUSH_BYTES};
use crate::config::BodyPolicy;
use crate::error::GatewayError;
use crate::exchange::{BodyState, ExchangeState, ResponseState};
use crate::facts::ConnFacts;
use crate::http::{BodyChunk, BodyEncoder, BodyKind, HttpError, Method, RequestHead};
use crate::http2::{ErrorCode, RequestFields};
use crate::response::{Response, ResponseBody, Source};
use crate::worker::Cx;

/// One stream of an HTTP/2 connection (see the module docs). Dropping it frees the stream.
pub struct H2Stream {
    id: u32,
    shared: SharedRef,
    facts: Rc<ConnFacts>,
    /// Set when a reload removed the listener the connection came from.
    listener_closed: Rc<Cell<bool>>,
    /// The request was HEAD (a refused head still gets no content, RFC 9110 §9.3.2).
    head_request: bool,
    /// Bytes of the request's header block (name + value per field), for a refused head's log.
    head_bytes: u64,
    state: StreamState,
}

/// Whether the stream's state in the protocol machine was freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Open,
    Freed,
}

/// What became of a stream after its exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOutcome {
    /// The response was sent completely.
    Complete,
    /// The response did not complete (client gone, reset, failure after it started).
    Abandoned,
}

/// A request body being read from a stream's inbox.
#[derive(Debug)]
pub struct H2Body {
    /// Payload received so far.
    received: u64,
    /// The declared content-length, if any: the byte that completes it is handed out only
    /// once the stream ended (see [`hold_back`]).
    declared: Option<u64>,
    /// `max_body_bytes`.
    max: u64,
    /// `body_read_ms`: longest wait for the next bytes.
    per_read: Duration,
    /// The minimum body rate (the route's `min_body_rate` after `body_rate_grace_ms`), over
    /// the time spent waiting for the client, as over HTTP/1.
    pace: Pace,
}

impl H2Stream {
    pub(super) fn new(
        id: u32,
        shared: SharedRef,
        facts: Rc<ConnFacts>,
        listener_closed: Rc<Cell<bool>>,
        fields: &RequestFields,
    ) -> H2Stream {
        let head_bytes = fields
            .fields
            .iter()
            .map(|(n, v)| (n.len() + v.len()) as u64)
            .sum::<u64>()
            + (fields.method.len() + fields.path.len()) as u64;
        H2Stream {
            id,
            shared,
            facts,
            listener_closed,
            head_request: &fields.method[..] == b"HEAD",
            head_bytes,
            state: StreamState::Open,
        }
    }

    /// The stream's id (odd, client-initiated).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Request body bytes received and not yet consumed.
    fn buffered(&self) -> usize {
        let sh = self.shared.borrow();
        sh.streams.get(&self.id).map_or(0, |ib| ib.buffered)
    }

    /// Frees the stream in the protocol machine (RST_STREAM NO_ERROR when the request body is
    /// still arriving after a complete response, CANCEL when the response did not complete,
    /// RFC 9113 §8.1) and drops its inbox, crediting what it held.
    fn free(&mut self) {
        if self.state == StreamState::Freed {
            return;
        }
        self.state = StreamState::Freed;
        // no task holds the borrow across an await, and a stream is dropped between polls (or
        // while unwinding, after the frame that borrowed released it): this cannot fail
        let Ok(mut sh) = self.shared.try_borrow_mut() else {
            debug_assert!(
                false,
                "the shared state is borrowed while a stream is freed"
            );
            return;
        };
        if let Some(ib) = sh.streams.remove(&self.id) {
            sh.conn.release_capacity(self.id, ib.buffered);
        }
        sh.conn.close_stream(self.id);
        sh.notify();
    }

    /// Resets the stream (we give up on it) with `code`, counted.
    fn reset(&mut self, w: &Cx<'_>, code: ErrorCode) {
        let mut sh = self.shared.borrow_mut();
        sh.conn.reset(self.id, code);
        if let Some(ib) = sh.streams.get_mut(&self.id) {
            ib.end = BodyEnd::Reset;
            ib.cancel();
        }
        sh.notify();
        drop(sh);
        w.g.metrics.http2_stream_reset();
    }

    /// Queues the response head. `end`: no DATA follows.
    /// Waits first for the connection's unwritten output to fall below [`FLUSH_BYTES`] (as DATA
    /// does): many streams answering a client that reads nothing cannot pile up heads.
    async fn send_head(&mut self, h: &H2ResponseHead, end: bool) -> Result<(), GatewayError> {
        if !out_room(&self.shared, self.id, FLUSH_BYTES).await {
            return Err(GatewayError::ClientGone);
        }
        let mut sh = self.shared.borrow_mut();
        let r = sh
            .conn
            .send_headers(self.id, h.status, h.fields.iter(), end);
        sh.notify();
        r.map_err(|_| GatewayError::ClientGone)
    }

    /// Queues `data` as DATA within the stream's send capacity, waiting for windows and for
    /// the connection's output to drain below [`FLUSH_BYTES`]; END_STREAM with the last of it
    /// when `end`.
    async fn send_data(
        &mut self,
        w: &Cx<'_>,
        mut data: Bytes,
        end: bool,
    ) -> Result<(), GatewayError> {
        let stall = w.g.config.server.http2.zero_window_timeout;
        loop {
            if data.is_empty() {
                if !end {
                    return Ok(());
                }
                let mut sh = self.shared.borrow_mut();
                let r = sh.conn.send_data(self.id, &mut data, true);
                sh.notify();
                return r.map(|_| ()).map_err(|_| GatewayError::ClientGone);
            }
            let n = match self.room(w, stall).await {
                Some(n) => n,
                None => return Err(GatewayError::ClientGone),
            };
            // queued at once, while the room just found still holds
            let mut part = data.split_to(n.min(data.len()));
            let last = end && data.is_empty();
            let mut sh = self.shared.borrow_mut();
            let r = sh.conn.send_data(self.id, &mut part, last);
            sh.notify();
            drop(sh);
            r.map_err(|_| GatewayError::ClientGone)?;
            if !part.is_empty() {
                // cannot happen (`n` was within the window a moment ago): never drop bytes
                self.reset(w, ErrorCode::InternalError);
                return Err(GatewayError::Internal("HTTP/2 DATA not queued"));
            }
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    /// Waits for room to send (see [`send_room`]); None: the stream or the connection is gone.
    /// A wait longer than `stall` (the client opens no window, or reads nothing): when every
    /// active stream of the connection waits likewise and sending made no progress for that
    /// long, the connection ends (GOAWAY ENHANCE_YOUR_CALM, `zero_window_stall`): a client
    /// starving all its streams holds the gateway's responses and origin connections; else
    /// only this stream is reset (CANCEL), counted toward the reset limit.
    async fn room(&mut self, w: &Cx<'_>, stall: Duration) -> Option<usize> {
        let _counted = WaitingRoom::enter(&self.shared);
        let mut ready = std::pin::pin!(send_room(&self.shared, self.id, FLUSH_BYTES));
        let mut limit = stall;
        loop {
            match monoio::time::timeout(limit, ready.as_mut()).await {
                Ok(Some(n)) if n > 0 => return Some(n),
                Ok(_) => return None,
                Err(_) => {}
            }
            let now = Instant::now();
            let verdict = self.shared.borrow().stall_verdict(stall, now);
            match verdict {
                Stall::Wait(until) => limit = until.saturating_duration_since(now),
                Stall::Connection => {
                    let mut sh = self.shared.borrow_mut();
                    sh.conn
                        .abort(ErrorCode::EnhanceYourCalm, "zero window stall");
                    sh.notify();
                    drop(sh);
                    w.g.metrics.http2_goaway(REASON_ZERO_WINDOW);
                    return None;
                }
                Stall::Stream => {
                    let mut sh = self.shared.borrow_mut();
                    let r = sh.conn.reset_counted(self.id, ErrorCode::Cancel);
                    if let Some(ib) = sh.streams.get_mut(&self.id) {
                        ib.end = BodyEnd::Reset;
                        ib.cancel();
                    }
                    sh.notify();
                    drop(sh);
                    w.g.metrics.http2_stream_reset();
                    if let Err(e) = r {
                        w.g.metrics.http2_goaway(goaway_reason(&e));
                    }
                    return None;
                }
            }
        }
    }

    /// Sends `100 Continue` when nothing of the body arrived yet.
    fn continue_if_waiting(&mut self) -> Result<(), GatewayError> {
        let mut sh = self.shared.borrow_mut();
        let waiting = sh
            .streams
            .get(&self.id)
            .is_some_and(|ib| ib.buffered == 0 && ib.end == BodyEnd::Open);
        if !waiting {
            return Ok(());
        }
        let r = sh
            .conn
            .send_headers(self.id, 100, std::iter::empty(), false);
        sh.notify();
        r.map_err(|_| GatewayError::ClientGone)
    }

    /// Waits until the request body ended (or the stream was reset), each wait for more bytes
    /// bounded as [`Session::next_chunk`]'s are (`body_read_ms`, the minimum rate).
    async fn hold_until_end(&mut self, body: &mut H2Body) -> Result<(), GatewayError> {
        let id = self.id;
        loop {
            let before = self.buffered();
            let progress = wait_stream(&self.shared, id, None, |sh| {
                let ib = sh.streams.get(&id)?;
                (ib.end != BodyEnd::Open || ib.buffered > before).then_some(Some(ib.end))
            });
            let (limit, paced) = body.pace.next_wait(body.per_read);
            if paced && limit.is_zero() {
                return Err(GatewayError::BodyTooSlow);
            }
            let started = std::time::Instant::now();
            let end = match monoio::time::timeout(limit, progress).await {
                Ok(Some(end)) => end,
                Ok(None) => return Err(GatewayError::ClientGone),
                Err(_) if paced => return Err(GatewayError::BodyTooSlow),
                Err(_) => return Err(GatewayError::BodyTimeout),
            };
            let came = self.buffered().saturating_sub(before);
            if !body.pace.account(started.elapsed(), came) {
                return Err(GatewayError::BodyTooSlow);
            }
            match end {
                BodyEnd::Open => {}
                BodyEnd::Ended => return Ok(()),
                BodyEnd::Reset => return Err(GatewayError::ClientGone),
            }
        }
    }

    /// Waits until everything queued so far reached the socket: the response is complete only
    /// then (a drain waits for it, like an HTTP/1 write).
    async fn written(&self) -> Result<(), GatewayError> {
        let mark = self.shared.borrow().queued;
        if written_past(&self.shared, mark).await {
            Ok(())
        } else {
            Err(GatewayError::ClientGone)
        }
    }

    /// Sends a response held in memory: head, then its body unless HEAD or a status without
    /// content. Returns (head bytes, payload bytes).
    async fn send_whole(
        &mut self,
        w: &Cx<'_>,
        r: &Response<'_>,
        head_only: bool,
    ) -> Result<(u64, u64), GatewayError> {
        let h = response_head(r, head_only);
        let body = match (h.body, r.rendered()) {
            (BodyPlan::Static, Some(m)) => m.body.clone(),
            (BodyPlan::Static, None) => Bytes::copy_from_slice(r.static_body()),
            _ => Bytes::new(),
        };
        let (head_len, payload) = (h.fields.bytes() as u64, body.len() as u64);
        self.send_head(&h, body.is_empty()).await?;
        if !body.is_empty() {
            self.send_data(w, body, true).await?;
        }
        self.written().await?;
        Ok((head_len, payload))
    }
}

/// How many bytes at the end of the next `n`-byte chunk must stay in the inbox: while the
/// stream is open, a body with a declared length never reaches it before END_STREAM (RFC 9113
/// §8.1.1: a length mismatch, a later reset or extra DATA make the request malformed, and the
/// origin must never get it complete); at least the last declared byte waits.
fn hold_back(body: &H2Body, end: BodyEnd, n: usize) -> usize {
    let Some(declared) = body.declared else {
        return 0;
    };
    if end != BodyEnd::Open {
        return 0;
    }
    let after = body.received.saturating_add(n as u64);
    if after < declared {
        return 0;
    }
    // hand out at most declared - 1 bytes in all
    let allowed = declared.saturating_sub(1).saturating_sub(body.received);
    n.saturating_sub(usize::try_from(allowed).unwrap_or(usize::MAX))
}

impl Drop for H2Stream {
    fn drop(&mut self) {
        self.free();
    }
}

impl Session for H2Stream {
    type Body = H2Body;
    type Outcome = StreamOutcome;

    fn facts(&self) -> &ConnFacts {
        &self.facts
    }

    /// The stream reset (by the client, a stream error or us) or the connection closed.
    fn client_gone(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        let (shared, id) = (self.shared.clone(), self.id);
        Box::pin(async move { client_gone(&shared, id).await })
    }

    /// HTTP/2 has no per-request persistence (RFC 9113 §8.2.2): the connection goes on; a
    /// closed listener or a draining worker ends it with GOAWAY in the connection task.
    fn begin(&mut self, _head: &RequestHead, st: &mut ExchangeState) {
        st.keep_alive &= !self.listener_closed.get();
    }

    async fn open_body(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        policy: &BodyPolicy,
    ) -> Result<H2Body, GatewayError> {
        match st.body {
            BodyState::Partial => return Err(GatewayError::Internal("request body opened twice")),
            BodyState::Unread => st.body = BodyState::Partial,
            BodyState::Done => {}
        }
        let s = &w.g.config.server;
        let buffered = self
            .shared
            .borrow()
            .streams
            .get(&self.id)
            .map_or(0, |ib| ib.buffered);
        let mut body = H2Body {
            received: 0,
            declared: match head.body {
                BodyKind::Length(n) => Some(n),
                _ => None,
            },
            max: s.limits.max_body_bytes,
            per_read: s.timeouts.body_read,
            pace: Pace::new(policy, s.timeouts.body_rate_grace, buffered),
        };
        // RFC 9110 §10.1.1: a client waiting for `100 Continue` before its body gets it (an
        // interim HEADERS, RFC 9113 §8.1) unless some of the body already came
        if head.expect_continue && st.body == BodyState::Partial {
            self.continue_if_waiting()?;
        }
        // A declared length that fits half a stream window: hold the body until it ended, so a
        // length mismatch (a stream error) is found before the origin sees anything. Half: the
        // client's padding (RFC 9113 §6.1) uses the window too and is credited only once it
        // adds up to half a window, so a held body up to half can always arrive whole.
        let window = u64::from(self.shared.borrow().stream_window);
        if let BodyKind::Length(n) = head.body {
            if n > 0 && n <= window / 2 && st.body == BodyState::Partial {
                self.hold_until_end(&mut body).await?;
            }
        }
        Ok(body)
    }

    async fn next_chunk(
        &mut self,
        _w: &Cx<'_>,
        body: &mut H2Body,
        st: &mut ExchangeState,
    ) -> Result<BodyChunk, GatewayError> {
        loop {
            if let Some(step) = self.buffered_chunk(body, st)? {
                return Ok(step);
            }
            let id = self.id;
            // bytes held back (the end of a declared length) do not count as new ones
            let before = self.buffered();
            let more = wait_stream(&self.shared, id, false, |sh| {
                let ib = sh.streams.get(&id)?;
                (ib.buffered > before || ib.end != BodyEnd::Open).then_some(true)
            });
            let (limit, paced) = body.pace.next_wait(body.per_read);
            if paced && limit.is_zero() {
                return Err(GatewayError::BodyTooSlow);
            }
            let started = std::time::Instant::now();
            match monoio::time::timeout(limit, more).await {
                Ok(true) => {}
                Ok(false) => return Err(GatewayError::ClientGone),
                Err(_) if paced => return Err(GatewayError::BodyTooSlow),
                Err(_) => return Err(GatewayError::BodyTimeout),
            }
            if !body
                .pace
                .account(started.elapsed(), self.buffered().saturating_sub(before))
            {
                return Err(GatewayError::BodyTooSlow);
            }
        }
    }

    fn buffered_chunk(
        &mut self,
        body: &mut H2Body,
        st: &mut ExchangeState,
    ) -> Result<Option<BodyChunk>, GatewayError> {
        if st.body == BodyState::Done {
            return Ok(Some(BodyChunk::End {
                trailers: Bytes::new(),
            }));
        }
        let mut sh = self.shared.borrow_mut();
        let id = self.id;
        let Some(ib) = sh.streams.get_mut(&id) else {
            return Err(GatewayError::ClientGone);
        };
        if ib.end == BodyEnd::Reset {
            return Err(GatewayError::ClientGone);
        }
        if let Some(mut d) = ib.data.pop_front() {
            let held = hold_back(body, ib.end, d.len());
            if held > 0 {
                // RFC 9113 §8.1.1: the byte completing the declared length waits for END_STREAM
                let keep = d.split_off(d.len() - held);
                ib.data.push_front(keep);
                if d.is_empty() {
                    return Ok(None);
                }
            }
            ib.buffered -= d.len();
            body.received += d.len() as u64;
            st.bytes_in += d.len() as u64;
            sh.conn.release_capacity(id, d.len());
            if sh.conn.has_output() {
                sh.notify(); // a WINDOW_UPDATE
            }
            if body.received > body.max {
                return Err(GatewayError::Http(HttpError::BodyTooLarge));
            }
            return Ok(Some(BodyChunk::Data(d)));
        }
        if ib.end == BodyEnd::Ended {
            st.body = BodyState::Done;
            return Ok(Some(BodyChunk::End {
                trailers: Bytes::new(),
            }));
        }
        Ok(None)
    }

    async fn read_body(
        &mut self,
        w: &Cx<'_>,
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
        let mut b = self.open_body(w, head, st, policy).await?;
        let mut out = BytesMut::new();
        while let BodyChunk::Data(d) = self.next_chunk(w, &mut b, st).await? {
            if out.len().saturating_add(d.len()) > max {
                return Err(too_large);
            }
            out.extend_from_slice(&d);
        }
        Ok(out.freeze())
    }

    /// Nothing to skip on the connection: what the client still sends for this stream is
    /// stopped (RST_STREAM NO_ERROR) and credited when the stream is freed.
    fn skip_body(&mut self, _head: &RequestHead, _st: &mut ExchangeState) {}

    async fn send(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
    ) -> Result<(), GatewayError> {
        st.status = r.status;
        st.response = ResponseState::Started;
        let head_only = head.method_kind == Method::Head;
        let (head_len, payload) = self.send_whole(w, &r, head_only).await?;
        st.head_out += head_len;
        st.bytes_out += head_len + payload;
        st.response = ResponseState::Complete;
        Ok(())
    }

    async fn relay(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        mut r: Response<'_>,
        body: &mut impl ResponseBody,
    ) -> Result<bool, GatewayError> {
        let kind = match &r.source {
            Source::Origin { head: rh, .. } => rh.body,
            _ => BodyKind::Empty,
        };
        // a body compressed for this client: of unknown length, delimited by END_STREAM
        let (kind, mut body) = crate::compress::encode::relayed(&mut r, kind, body);
        let body = &mut body;
        // END_STREAM delimits the body (RFC 9113 §8.1): a content-length only when known
        let enc = match kind {
            BodyKind::Empty => BodyEncoder::Empty,
            BodyKind::Length(n) => BodyEncoder::Length { remaining: n },
            BodyKind::Chunked | BodyKind::CloseDelimited => BodyEncoder::Chunked,
        };
        if let Source::Origin { framing, .. } = &mut r.source {
            *framing = Some(enc);
        }
        // every failure up to here is still answerable (502, 504)
        let first = body.next_chunk().await?;
        let h = response_head(&r, head.method_kind == Method::Head);
        st.status = r.status;
        st.response = ResponseState::Started;
        let head_len = h.fields.bytes() as u64;
        st.head_out += head_len;
        st.bytes_out += head_len;
        if h.body == BodyPlan::None {
            self.send_head(&h, true).await?;
            self.written().await?;
            st.response = ResponseState::Complete;
            // the origin's message is reusable only if its (empty) body ended here
            return Ok(matches!(first, BodyChunk::End { .. }));
        }
        self.send_head(&h, false).await?;
        let mut step = first;
        loop {
            match step {
                BodyChunk::Data(d) => {
                    st.bytes_out += d.len() as u64;
                    self.send_data(w, d, false).await?;
                }
                BodyChunk::End { trailers } => {
                    if trailers.is_empty() {
                        self.send_data(w, Bytes::new(), true).await?;
                    } else {
                        // trailers wait for output room like the head and DATA
                        if !out_room(&self.shared, self.id, FLUSH_BYTES).await {
                            return Err(GatewayError::ClientGone);
                        }
                        let f = trailer_fields(&trailers);
                        let mut sh = self.shared.borrow_mut();
                        let sent = sh.conn.send_trailers(self.id, f.iter());
                        sh.notify();
                        sent.map_err(|_| GatewayError::ClientGone)?;
                    }
                    break;
                }
            }
            step = match body.next_chunk().await {
                Ok(s) => s,
                Err(e) => {
                    // bytes already reached the client: the stream is reset (RFC 9113 §8.1)
                    self.reset(w, ErrorCode::InternalError);
                    return Err(e);
                }
            };
        }
        self.written().await?;
        st.response = ResponseState::Complete;
        Ok(true)
    }

    fn finish(&mut self, _w: &Cx<'_>, st: &ExchangeState) -> StreamOutcome {
        self.free();
        if st.response == ResponseState::Complete {
            StreamOutcome::Complete
        } else {
            StreamOutcome::Abandoned
        }
    }

    async fn refuse(&mut self, w: &Cx<'_>, r: Response<'_>) -> Refused<StreamOutcome> {
        let head_only = self.head_request;
        let (outcome, sent, payload) = match self.send_whole(w, &r, head_only).await {
            Ok((h, p)) => (StreamOutcome::Complete, h + p, p),
            Err(_) => (StreamOutcome::Abandoned, 0, 0),
        };
        self.free();
        Refused {
            outcome,
            sent,
            payload,
            received: self.head_bytes,
        }
    }
}
