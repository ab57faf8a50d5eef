//! The server side of one HTTP/2 connection as a state machine over bytes (RFC 9113): no
//! socket, no runtime, no clock of its own beyond `Instant::now()` in [`Connection::recv`].
//!
//! Data flow: the driver feeds received bytes to [`Connection::recv`], which consumes every
//! complete frame (the client preface first, §3.4), updates the stream table (§5.1), flow
//! control (§5.2, §6.9) and settings (§6.5), pushes [`Event`]s for the application, and queues
//! what the protocol answers by itself (SETTINGS/PING acks, RST_STREAM, WINDOW_UPDATE, GOAWAY)
//! into the output the driver takes with [`Connection::take_output`]. The application answers
//! a request with [`Connection::send_headers`] / [`Connection::send_data`] /
//! [`Connection::send_trailers`] within [`Connection::send_capacity`], and credits consumed
//! request body bytes with [`Connection::release_capacity`].
//!
//! Split by concern: this file holds the state and the connection-level API (streams'
//! lifetime, GOAWAY, connection errors); `conn_recv.rs` the receive side frame by frame,
//! `conn_headers.rs` its header blocks, `conn_send.rs` the send side and window credits,
//! `conn_abuse.rs` the abuse counters.
//! Header validation is [`super::fields`], framing [`super::frame`], compression
//! [`super::hpack`]. What is left to the driver: timers (idle, SETTINGS ack, zero-window
//! stalls), the socket, and what a request means.
//!
//! Idle memory: `size_of::<Connection>()` is 496 bytes (x86-64), and no buffer is held between
//! frames: the output `BytesMut` is moved out by `take_output`, a header block in progress is
//! boxed and freed when complete, the stream table is freed with its last stream once grown
//! past its smallest allocation. What an idle connection keeps on the heap is the HPACK state
//! the protocol requires (each dynamic table at most its 4096-byte default) and the last
//! which closed stream ids ended how (`conn_closed.rs`: two bits per id over at least
//! [`REMEMBERED_MIN`] ids, 64 bytes by default, allocated with the first stream).
//!
//! Memory bound of request bodies: DATA beyond a stream's receive window is a flow-control
//! error, so what the application can be holding is at most the sum of the stream windows
//! (`max_concurrent_streams` × `initial_window_size`, with `connection_window_size` raised to
//! at least that by [`Limits::clamped`] so uploads never wait on each other). Payloads are
//! zero-copy slices of the driver's read buffer only from
//! [`super::limits::ZERO_COPY_MIN_BYTES`] up: a smaller payload is copied, so bytes that cost
//! no window (padding, unknown frames, DATA on reset streams) cannot be kept alive by a tiny
//! slice of the buffer they came in; a zero-copy payload pins at most one read buffer while
//! costing at least that constant in window, so with read buffers of R bytes what is pinned
//! stays under (sum of the stream windows) × R / `ZERO_COPY_MIN_BYTES` (R = one 16 KiB frame:
//! at most 4× the windows). A header block is copied out of the read buffer
//! once (its field values are slices of that copy, bounded by max_header_list_size).
//!
//! On `Err` from `recv` the events pushed before the error are still in the list; the
//! connection is closing, so the driver only needs them to stop the streams' tasks.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::fields::RequestFields;
use super::frame::{self, ErrorCode};
use super::hpack;
use super::limits::Limits;

#[path = "conn_abuse.rs"]
mod abuse;
#[path = "conn_closed.rs"]
mod closed;
#[path = "conn_headers.rs"]
mod headers;
#[path = "conn_recv.rs"]
mod recv;
#[path = "conn_send.rs"]
mod send;

use abuse::Counters;
use closed::{ClosedIds, Remembered};

/// Closed streams are remembered over a window of stream ids below the highest one the client
/// used: at least this many ids, or twice max_concurrent_streams when larger. Within it, frames
/// the client sent before it saw our RST_STREAM are ignored (§5.1 "closed"), a frame on a
/// stream that ended normally is told apart from one on a stream id that was never used
/// (STREAM_CLOSED vs PROTOCOL_ERROR, §5.1.1); below it a stream is treated as closed (one
/// RST_STREAM STREAM_CLOSED, counted as a control frame), never as a connection error: late
/// trailers of a request answered early must not kill the connection.
pub const REMEMBERED_MIN: u32 = 256;

/// Bound on the WINDOW_UPDATE credit the DATA we sent earns the peer (see `wu_credit`): a
/// client that saved credit over a long download can spend at most this many WINDOW_UPDATEs
/// for nothing before they count as control frames again.
pub const WINDOW_UPDATE_CREDIT_MAX: u32 = 4096;

/// The capacity of the smallest stream table allocation (4 buckets): kept when idle.
const SMALL_STREAM_TABLE: usize = 3;

/// What the application is told (design.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Request {
        id: u32,
        /// Boxed: the other events stay small.
        fields: Box<RequestFields>,
        end_stream: bool,
    },
    Data {
        id: u32,
        data: Bytes,
        end_stream: bool,
    },
    Trailers {
        id: u32,
        fields: Vec<(Bytes, Bytes)>,
    },
    Reset {
        id: u32,
        code: ErrorCode,
    },
    StreamError {
        id: u32,
        code: ErrorCode,
        reason: &'static str,
    },
    WindowUpdate {
        id: u32,
    },
    GoAway {
        last_stream_id: u32,
        code: ErrorCode,
    },
}

impl Event {
    /// The stream the event is about (0 for the connection: `GoAway`, a connection
    /// `WindowUpdate`).
    pub fn stream_id(&self) -> u32 {
        match self {
            Event::Request { id, .. }
            | Event::Data { id, .. }
            | Event::Trailers { id, .. }
            | Event::Reset { id, .. }
            | Event::StreamError { id, .. }
            | Event::WindowUpdate { id } => *id,
            Event::GoAway { .. } => 0,
        }
    }
}

/// Which abuse defence closed the connection (the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abuse {
    RapidReset,
    ContinuationFlood,
    ControlFlood,
    EmptyFrames,
    OutputFlood,
    TooManyStreams,
    HeaderListTooLarge,
}

impl Abuse {
    pub fn as_str(&self) -> &'static str {
        match self {
            Abuse::RapidReset => "rapid_reset",
            Abuse::ContinuationFlood => "continuation_flood",
            Abuse::ControlFlood => "control_flood",
            Abuse::EmptyFrames => "empty_frames",
            Abuse::OutputFlood => "output_flood",
            Abuse::TooManyStreams => "too_many_streams",
            Abuse::HeaderListTooLarge => "header_list_too_large",
        }
    }
}

/// A connection error (§5.4.1): GOAWAY with `code` is queued; the driver flushes the output
/// and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnError {
    pub code: ErrorCode,
    pub reason: &'static str,
    pub abuse: Option<Abuse>,
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP/2 {}: {}", self.code.as_str(), self.reason)
    }
}

impl std::error::Error for ConnError {}

/// The stream is gone (reset or closed): nothing more may be sent on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamGone;

/// The connection's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) the 24-byte client preface.
    Preface,
    /// Preface received; the next frame must be the client's SETTINGS (§3.4).
    FirstSettings,
    Open,
    /// A connection error was raised: nothing more is processed.
    Failed(ConnError),
}

/// How a remembered stream was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// We reset it: the client's frames in flight are ignored.
    ByUs,
    /// Both sides ended, or the client reset it: further frames are STREAM_CLOSED errors.
    Ended,
}

/// One side of a stream (§5.1): open until its END_STREAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Open,
    Closed,
}

/// An open or half-closed stream (§5.1). Idle streams are not stored (ids above
/// `last_peer_stream`), nor closed ones (below it, absent from the table).
#[derive(Debug)]
struct Stream {
    /// The client's side: `Closed` after its END_STREAM (half-closed (remote)).
    remote: Half,
    /// Our side: `Closed` after our END_STREAM (half-closed (local)).
    local: Half,
    /// What we may still send (§6.9.1); negative after a SETTINGS lowering the window
    /// (§6.9.2).
    send_window: i64,
    /// What the client may still send before our next WINDOW_UPDATE.
    recv_window: i64,
    /// Bytes the application consumed that we have not credited yet.
    recv_owed: u32,
    /// Request body bytes delivered in `Event::Data` and not released yet: credited to the
    /// connection window when the stream goes, so a driver that misses a `release_capacity`
    /// cannot stall the connection.
    unreleased: u32,
    /// Whether our final response head went (for the debug checks of `send_headers`).
    head: Head,
    /// The `recv` call (its sequence number) that last pushed a `WindowUpdate` for the stream:
    /// at most one per stream per call.
    woken_in: u64,
    /// Declared content-length minus the DATA received so far (§8.1.1).
    remaining: Option<u64>,
}

/// Our response head on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// None yet, or only interim (1xx) ones.
    Pending,
    Final,
}

/// The peer's settings that shape what we send (§6.5.2).
#[derive(Debug, Clone, Copy)]
struct PeerSettings {
    initial_window: u32,
    max_frame_size: u32,
}

/// A header block in progress (HEADERS without END_HEADERS, then CONTINUATION, §6.10).
#[derive(Debug)]
struct PendingBlock {
    stream: u32,
    end_stream: bool,
    /// What the block is for, decided at its HEADERS.
    target: headers::Target,
    buf: BytesMut,
    continuations: u32,
}

/// One HTTP/2 server connection.
#[derive(Debug)]
pub struct Connection {
    limits: Limits,
    phase: Phase,
    /// Preface bytes matched so far (0..=24).
    preface_seen: u8,
    decoder: hpack::Decoder,
    encoder: hpack::Encoder,
    streams: super::StreamMap<Stream>,
    /// The highest stream id the client opened (or tried to): ids up to it are not idle.
    last_peer_stream: u32,
    /// The last stream id of the GOAWAY we sent (§6.8): later streams are refused.
    goaway_last: Option<u32>,
    closed: ClosedIds,
    peer: PeerSettings,
    /// Our SETTINGS frames the peer has not acknowledged yet.
    settings_unacked: u8,
    /// The effective initial receive window of new streams: 65 535 until the peer acknowledges
    /// our SETTINGS when ours is smaller (the peer may use the default until then, §6.5.3).
    recv_initial: u32,
    send_window: i64,
    recv_window: i64,
    recv_owed: u32,
    /// WINDOW_UPDATEs the peer may send without waking a sender before they count as control
    /// frames: two per DATA frame we sent (one for its stream, one for the connection), so a
    /// client crediting every frame, even after a stream closed, is flow control at work,
    /// while WINDOW_UPDATEs that follow no data of ours cost work for nothing (a flood).
    /// Capped at [`WINDOW_UPDATE_CREDIT_MAX`].
    wu_credit: u32,
    /// Sequence number of the current `recv` call (for `Stream::woken_in`).
    recv_seq: u64,
    /// The `recv` call that last pushed `WindowUpdate { id: 0 }`.
    conn_woken_in: u64,
    /// Boxed: a block in progress is rare, the idle connection stays small.
    pending: Option<Box<PendingBlock>>,
    counters: Counters,
    /// Streams reset for a stream error before any event announced them (a malformed
    /// request head), not yet taken by [`Connection::take_silent_resets`].
    silent_resets: u32,
    out: BytesMut,
    /// Bytes of `out` we queued on our own since the last `take_output` (acks, resets).
    control_out: usize,
}

impl Connection {
    /// Queues the server preface (SETTINGS from `limits`, then a connection WINDOW_UPDATE).
    pub fn new(limits: Limits) -> Connection {
        Connection::new_at(limits, Instant::now())
    }

    /// [`Connection::new`] with the clock of the rate limits starting at `now`.
    pub fn new_at(limits: Limits, now: Instant) -> Connection {
        let limits = limits.clamped();
        let mut out = BytesMut::new();
        let mut params = vec![
            (frame::SETTINGS_ENABLE_PUSH, 0),
            (
                frame::SETTINGS_MAX_CONCURRENT_STREAMS,
                limits.max_concurrent_streams,
            ),
            (
                frame::SETTINGS_INITIAL_WINDOW_SIZE,
                limits.initial_window_size,
            ),
            (
                frame::SETTINGS_MAX_HEADER_LIST_SIZE,
                limits.max_header_list_size,
            ),
        ];
        if limits.header_table_size != hpack::DEFAULT_TABLE_SIZE as u32 {
            params.push((frame::SETTINGS_HEADER_TABLE_SIZE, limits.header_table_size));
        }
        if limits.max_frame_size != frame::DEFAULT_MAX_FRAME_SIZE {
            params.push((frame::SETTINGS_MAX_FRAME_SIZE, limits.max_frame_size));
        }
        frame::put_settings(&mut out, &params);
        if limits.connection_window_size > frame::DEFAULT_WINDOW {
            frame::put_window_update(
                &mut out,
                0,
                limits.connection_window_size - frame::DEFAULT_WINDOW,
            );
        }
        // Until the ACK the peer's encoder may assume a 4096-byte table (§6.5.3, RFC 7541 §4.2)
        let table = (limits.header_table_size as usize).max(hpack::DEFAULT_TABLE_SIZE);
        Connection {
            decoder: hpack::Decoder::new(table, limits.max_header_list_size as usize),
            // responses are never indexed (see `hpack::Indexing::LiteralOnly`): no table memory
            // per connection, a few bytes per repeated field on the wire (as nginx does)
            encoder: hpack::Encoder::literal_only(),
            phase: Phase::Preface,
            preface_seen: 0,
            streams: super::StreamMap::default(),
            last_peer_stream: 0,
            goaway_last: None,
            closed: ClosedIds::new(
                limits
                    .max_concurrent_streams
                    .saturating_mul(2)
                    .max(REMEMBERED_MIN),
            ),
            peer: PeerSettings {
                initial_window: frame::DEFAULT_WINDOW,
                max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            },
            settings_unacked: 1,
            recv_initial: limits.initial_window_size.max(frame::DEFAULT_WINDOW),
            send_window: i64::from(frame::DEFAULT_WINDOW),
            recv_window: i64::from(limits.connection_window_size),
            recv_owed: 0,
            wu_credit: 0,
            recv_seq: 0,
            conn_woken_in: 0,
            pending: None,
            counters: Counters::new(now),
            silent_resets: 0,
            out,
            control_out: 0,
            limits,
        }
    }

    /// Output ready to write (moved out; empty when none).
    pub fn take_output(&mut self) -> BytesMut {
        self.control_out = 0;
        std::mem::take(&mut self.out)
    }

    /// The driver's connection is idle: frees the capacity the stream table and the output
    /// buffer kept from busier moments (when empty). The decoder's dynamic table stays: its
    /// entries are the peer's to reference (RFC 7541 §2.3.2).
    pub fn shrink_idle(&mut self) {
        if self.streams.is_empty() && self.streams.capacity() != 0 {
            self.streams = super::StreamMap::default();
        }
        if self.out.is_empty() && self.out.capacity() != 0 {
            self.out = BytesMut::new();
        }
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// The connection error that ended this connection, if any.
    pub fn error(&self) -> Option<ConnError> {
        match self.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Open (not closed) streams, for the driver's idle/drain decisions.
    pub fn active_streams(&self) -> usize {
        self.streams.len()
    }

    /// Our SETTINGS are not acknowledged yet (the driver may enforce a SETTINGS timeout,
    /// §6.5.3, and close with SETTINGS_TIMEOUT).
    pub fn settings_pending(&self) -> bool {
        self.settings_unacked > 0
    }

    /// A header block (HEADERS without END_HEADERS) is waiting for its CONTINUATION (the
    /// driver may bound the time it waits).
    pub fn header_block_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The highest stream id the client opened so far.
    pub fn last_stream_id(&self) -> u32 {
        self.last_peer_stream
    }

    /// Graceful shutdown (§6.8): GOAWAY(`code`, last = highest stream id accepted so far);
    /// later HEADERS are refused (RST_STREAM REFUSED_STREAM), open streams go on. Once only.
    pub fn go_away(&mut self, code: ErrorCode) {
        if self.goaway_last.is_some() || matches!(self.phase, Phase::Failed(_)) {
            return;
        }
        frame::put_goaway(&mut self.out, self.last_peer_stream, code, b"");
        self.goaway_last = Some(self.last_peer_stream);
    }

    /// Resets a stream (RST_STREAM queued); later frames for it are ignored per §5.1.
    pub fn reset(&mut self, id: u32, code: ErrorCode) {
        if matches!(self.phase, Phase::Failed(_)) {
            // after the GOAWAY of a connection error nothing more is sent (§5.4.1): the
            // streams end with the connection
            self.remove_stream(id);
            return;
        }
        if self.remove_stream(id).is_some() {
            frame::put_rst_stream(&mut self.out, id, code);
            self.remember(id, Closed::ByUs);
        }
    }

    /// [`Connection::reset`] for a stream the driver gives up on because of the client (its
    /// response stalled on a window it never opens), counted toward the reset limit like the
    /// client's own resets. Err: the limit was passed, the connection failed (GOAWAY queued).
    pub fn reset_counted(&mut self, id: u32, code: ErrorCode) -> Result<(), ConnError> {
        self.reset(id, code);
        self.count_reset(Abuse::RapidReset)
    }

    /// Streams reset for a stream error that no event announced (a malformed request head is
    /// reset before any `Event::Request`) since the last call: the driver counts them.
    pub fn take_silent_resets(&mut self) -> u32 {
        std::mem::take(&mut self.silent_resets)
    }

    /// The driver refuses a stream the protocol accepted (its own resources for streams are
    /// spent, e.g. the tasks of reset streams still run): RST_STREAM REFUSED_STREAM (§8.7, the
    /// client may retry it), counted toward the reset limit like the protocol's own refusals.
    /// Err: that limit was passed, the connection failed (GOAWAY queued).
    pub fn refuse(&mut self, id: u32) -> Result<(), ConnError> {
        if self.remove_stream(id).is_some() {
            self.queue_control(|out| frame::put_rst_stream(out, id, ErrorCode::RefusedStream));
            self.remember(id, Closed::ByUs);
        }
        self.count_reset(Abuse::TooManyStreams)
    }

    /// The driver ends the connection for a reason of its own (§5.4.1): GOAWAY(`code`,
    /// `reason` as debug data) queued, nothing more processed. The first error wins.
    pub fn abort(&mut self, code: ErrorCode, reason: &'static str) -> ConnError {
        self.fail(code, reason, None)
    }

    /// A stream finished on our side (response complete or abandoned): frees its state. A
    /// request body still arriving is stopped with RST_STREAM NO_ERROR after a complete
    /// response (§8.1), CANCEL when the response was abandoned.
    pub fn close_stream(&mut self, id: u32) {
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        let code = match (s.local, s.remote) {
            (Half::Closed, Half::Closed) => {
                self.remove_stream(id);
                self.remember(id, Closed::Ended);
                return;
            }
            (Half::Closed, Half::Open) => ErrorCode::NoError,
            (Half::Open, _) => ErrorCode::Cancel,
        };
        self.reset(id, code);
    }

    /// Takes a stream out of the table. A table grown past the smallest allocation is freed
    /// with its last stream, so a connection that had many streams holds none of it once idle
    /// (the smallest one stays: one request at a time does not allocate per request).
    /// The request body bytes delivered and not released are credited to the connection
    /// window: they are gone with the stream.
    fn remove_stream(&mut self, id: u32) -> Option<Stream> {
        let s = self.streams.remove(&id);
        if self.streams.is_empty() && self.streams.capacity() > SMALL_STREAM_TABLE {
            self.streams = super::StreamMap::default();
        }
        if let Some(s) = &s {
            self.credit_conn(s.unreleased);
        }
        s
    }

    /// Remembers how a stream closed (while its id stays within the remembered window).
    fn remember(&mut self, id: u32, how: Closed) {
        self.closed.closed(id, self.last_peer_stream, how);
    }

    /// What is known about stream `id` (not in the table, not idle).
    fn closed_how(&self, id: u32) -> Remembered {
        self.closed.get(id, self.last_peer_stream)
    }

    /// Raises a connection error: GOAWAY queued, nothing more processed.
    fn fail(&mut self, code: ErrorCode, reason: &'static str, abuse: Option<Abuse>) -> ConnError {
        let e = ConnError {
            code,
            reason,
            abuse,
        };
        if let Phase::Failed(first) = self.phase {
            return first;
        }
        // §6.8: the last stream id never grows after a first GOAWAY
        let last = match self.goaway_last {
            Some(last) => last.min(self.last_peer_stream),
            None => self.last_peer_stream,
        };
        frame::put_goaway(&mut self.out, last, code, reason.as_bytes());
        self.phase = Phase::Failed(e);
        e
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "conn_review_tests.rs"]
mod review_tests;
