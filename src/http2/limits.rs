//! The limits one HTTP/2 connection enforces: what we advertise in SETTINGS (RFC 9113 §6.5.2),
//! the flow-control windows we grant (§5.2, §6.9), and the abuse defences (rapid reset,
//! CONTINUATION, control-frame and empty-frame floods, unread output). Each is a named
//! `DEFAULT_*` constant; config (`[server.http2]`, owned by the session slice) overrides them
//! field by field. This module only holds values: [`super::conn`] applies them.

use super::frame;

/// SETTINGS_MAX_CONCURRENT_STREAMS we advertise (§5.1.2): streams a client may have open at
/// once; beyond it a new stream is refused (RST_STREAM REFUSED_STREAM). 128 is what browsers
/// expect (nginx, Envoy and h2o default to 100–128) and bounds the per-connection stream tasks.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 128;

/// SETTINGS_MAX_HEADER_LIST_SIZE we advertise (§6.5.2): the decoded size of one header list
/// (name + value + 32 per field). Also the cap on the encoded bytes of one header block while
/// it arrives (HEADERS + CONTINUATION), so a block never holds more memory than this.
/// 64 KiB: far above real requests (browsers' cookies + headers stay under 16 KiB), far below
/// the 16 MiB other stacks allow.
pub const DEFAULT_MAX_HEADER_LIST_SIZE: u32 = 64 * 1024;

/// SETTINGS_HEADER_TABLE_SIZE we advertise: our HPACK decoder's dynamic table (RFC 7541 §4.2).
/// 4096 is the protocol default, so the table never grows beyond what every peer assumes.
pub const DEFAULT_HEADER_TABLE_SIZE: u32 = 4096;

/// The largest header table [`Limits::clamped`] lets through: the dynamic table is per
/// connection and a client fills it at will, so it is bounded here whatever config says (the
/// config range should end here too).
pub const MAX_HEADER_TABLE_SIZE: u32 = 64 * 1024;

/// SETTINGS_INITIAL_WINDOW_SIZE we advertise: each stream's receive window (§6.9.2), i.e. the
/// request body bytes a client may send ahead of the gateway consuming them. 65 535 is the
/// protocol default: one window per stream is what a slow origin can make us hold.
pub const DEFAULT_INITIAL_WINDOW_SIZE: u32 = 65_535;

/// The connection's receive window (§6.9.1), raised from 65 535 by a WINDOW_UPDATE on stream 0
/// right after our SETTINGS: the request body bytes in flight over all streams together.
/// 8 MiB covers every stream's window at the defaults (128 × 65 535): a driver that holds a
/// request's data until a window's worth is buffered must not starve other uploads of
/// connection window ([`Limits::clamped`] raises a smaller value to that product anyway). The
/// memory it allows is not more than the stream windows allow: DATA beyond a stream's window
/// is a flow-control error, so at most the sum of the stream windows is ever buffered.
pub const DEFAULT_CONNECTION_WINDOW_SIZE: u32 = 8 * 1024 * 1024;

/// Request body payloads (DATA) of at least this many bytes reach the application as zero-copy
/// slices of the driver's read buffer; smaller ones are copied. A slice keeps its whole read
/// buffer alive, so a 1-byte payload could otherwise pin a buffer whose other bytes cost no
/// flow-control window (padding, unknown frames, DATA on reset streams): with the copy, a
/// retained buffer is always paid for by at least this much window (the bound is in
/// `conn.rs`). 4 KiB: a copy that small is cheap, and bulk uploads come in 16 KiB frames.
pub const ZERO_COPY_MIN_BYTES: usize = 4096;

/// The largest frame payload we accept (SETTINGS_MAX_FRAME_SIZE, §4.2), advertised only when
/// it differs from the protocol's 16 384, which is also what we keep to bound one frame.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = frame::DEFAULT_MAX_FRAME_SIZE;

/// Rapid reset (CVE-2023-44487): streams reset within [`DEFAULT_RESET_WINDOW_MS`] — by the
/// client (RST_STREAM before our response ended) or by us (refused over the concurrency limit,
/// malformed) — before the connection is closed with GOAWAY ENHANCE_YOUR_CALM. Each such
/// stream costs a request's parsing (and possibly an origin connection) for no response. A
/// browser cancels a few streams per navigation; 200 per 10 s (20/s sustained) stays well
/// above that and orders of magnitude below an attack's hundreds of thousands per second.
pub const DEFAULT_MAX_RESETS_PER_WINDOW: u32 = 200;

/// The window over which resets are counted (two buckets of half this length slide over it).
pub const DEFAULT_RESET_WINDOW_MS: u64 = 10_000;

/// CONTINUATION flood (CVE-2024-27316): CONTINUATION frames allowed in one header block. With
/// the byte cap (max_header_list_size) this bounds both the memory and the frames spent on a
/// block that never ends. Real clients send at most a few (one per 16 KiB of headers).
pub const DEFAULT_MAX_CONTINUATION_FRAMES: u32 = 16;

/// Control-frame floods (SETTINGS, PING, PRIORITY, GOAWAY, unknown frame types, RST_STREAM or
/// WINDOW_UPDATE on closed streams, DATA on streams we reset, a WINDOW_UPDATE that neither
/// follows DATA we sent nor opens a closed window): frames per second before GOAWAY ENHANCE_YOUR_CALM. Each costs us work (and
/// SETTINGS / PING an ack) without a request; a client sends a handful per connection.
pub const DEFAULT_MAX_CONTROL_FRAMES_PER_SEC: u32 = 1000;

/// Empty frames (DATA without payload nor END_STREAM, header fragments without bytes nor
/// END_HEADERS, empty DATA on a stream we reset) per second, like the control frames: they
/// cost a frame's processing and carry nothing, so a legitimate client never sends many at
/// once, while a long streaming upload with an occasional empty frame is never cut off.
pub const DEFAULT_MAX_EMPTY_FRAMES: u32 = 100;

/// Output we queue on our own (SETTINGS / PING acks, RST_STREAM, WINDOW_UPDATE) that the
/// driver has not taken yet because the peer does not read: beyond it the connection is
/// closed (GOAWAY ENHANCE_YOUR_CALM), so a peer that only writes cannot make us buffer acks.
pub const DEFAULT_MAX_PENDING_OUTPUT_BYTES: usize = 64 * 1024;

/// The limits of one connection. `Default` holds the `DEFAULT_*` constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_concurrent_streams: u32,
    pub max_header_list_size: u32,
    pub header_table_size: u32,
    pub initial_window_size: u32,
    pub connection_window_size: u32,
    pub max_frame_size: u32,
    pub max_resets_per_window: u32,
    pub reset_window_ms: u64,
    pub max_continuation_frames: u32,
    pub max_control_frames_per_sec: u32,
    pub max_empty_frames: u32,
    pub max_pending_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
            header_table_size: DEFAULT_HEADER_TABLE_SIZE,
            initial_window_size: DEFAULT_INITIAL_WINDOW_SIZE,
            connection_window_size: DEFAULT_CONNECTION_WINDOW_SIZE,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_resets_per_window: DEFAULT_MAX_RESETS_PER_WINDOW,
            reset_window_ms: DEFAULT_RESET_WINDOW_MS,
            max_continuation_frames: DEFAULT_MAX_CONTINUATION_FRAMES,
            max_control_frames_per_sec: DEFAULT_MAX_CONTROL_FRAMES_PER_SEC,
            max_empty_frames: DEFAULT_MAX_EMPTY_FRAMES,
            max_pending_output_bytes: DEFAULT_MAX_PENDING_OUTPUT_BYTES,
        }
    }
}

impl Limits {
    /// The limits with protocol bounds applied (config validates ranges; this keeps a value
    /// the protocol forbids from ever reaching the wire): the windows within 1..=2^31-1
    /// (§6.9.1; a stream window of 0 would stall every request body), the connection window
    /// at least `max_concurrent_streams` × `initial_window_size` (so streams never wait on
    /// each other for connection window: memory stays bounded by the sum of the stream
    /// windows, as DATA beyond a stream's window is a flow-control error), the frame size
    /// within 16 384..=16 777 215 (§4.2), the reset window non-zero, the header table at most
    /// [`MAX_HEADER_TABLE_SIZE`].
    pub fn clamped(self) -> Limits {
        let initial_window_size = self.initial_window_size.clamp(1, frame::MAX_WINDOW);
        let all_streams = u64::from(self.max_concurrent_streams) * u64::from(initial_window_size);
        let all_streams = u32::try_from(all_streams).unwrap_or(frame::MAX_WINDOW);
        Limits {
            header_table_size: self.header_table_size.min(MAX_HEADER_TABLE_SIZE),
            initial_window_size,
            connection_window_size: self
                .connection_window_size
                .max(all_streams)
                .clamp(frame::DEFAULT_WINDOW, frame::MAX_WINDOW),
            max_frame_size: self
                .max_frame_size
                .clamp(frame::DEFAULT_MAX_FRAME_SIZE, frame::MAX_MAX_FRAME_SIZE),
            reset_window_ms: self.reset_window_ms.max(2),
            ..self
        }
    }
}
