//! HTTP/2 to clients: `server.h2c` and `[server.http2]`, from TOML to an immutable
//! [`Http2Config`].
//!
//! Owns: the serde struct of `[server.http2]` (one key per protocol limit of
//! [`Limits`], plus the driver's `zero_window_timeout_ms`), each key's named
//! accepted range, and checking them (errors name the key and its line like every config
//! error). Leaves out: what the limits mean on the wire (see [`crate::http2`]) and how the
//! connection task applies them (see `crate::session::h2`). Data flow: `RawServer.http2` →
//! [`compile`] → `ServerConfig.http2`; a reload compiles a new one, which applies to HTTP/2
//! connections accepted after it (a connection keeps the settings it advertised in its
//! SETTINGS frame for its life: RFC 9113 §6.5 makes changing them a round trip per peer).

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::compile::Ctx;
use crate::http2::limits as d;
use crate::http2::Limits;

/// `max_concurrent_streams`: at least one stream; beyond 10 000 a single connection could hold
/// a worker's whole memory budget in stream state.
pub const MAX_CONCURRENT_STREAMS: RangeInclusive<u32> = 1..=10_000;
/// `max_header_list_size` (decoded bytes, RFC 9113 §6.5.2): room for a request line's worth of
/// fields up to 16 MiB.
pub const MAX_HEADER_LIST_SIZE: RangeInclusive<u32> = 1024..=16 << 20;
/// `header_table_size` (RFC 7541 §4.2): 0 (no dynamic table) up to 64 KiB.
pub const HEADER_TABLE_SIZE: RangeInclusive<u32> = 0..=64 * 1024;
/// `initial_window_size` (RFC 9113 §6.5.2 / §6.9.2): at most 2^31-1; at least one max-size
/// frame's worth, so a body moves without a WINDOW_UPDATE per frame.
pub const INITIAL_WINDOW_SIZE: RangeInclusive<u32> = 16_384..=(1 << 31) - 1;
/// `connection_window_size` (RFC 9113 §6.9.1): never below the protocol's initial 65 535.
pub const CONNECTION_WINDOW_SIZE: RangeInclusive<u32> = 65_535..=(1 << 31) - 1;
/// `max_frame_size` (RFC 9113 §6.5.2: 2^14 ..= 2^24-1).
pub const MAX_FRAME_SIZE: RangeInclusive<u32> = 16_384..=(1 << 24) - 1;
/// `max_resets_per_window`: resets per `reset_window_ms` before the connection is closed.
pub const MAX_RESETS_PER_WINDOW: RangeInclusive<u32> = 1..=1_000_000;
/// `reset_window_ms`.
pub const RESET_WINDOW_MS: RangeInclusive<u64> = 100..=3_600_000;
/// `max_continuation_frames` per header block (0: a header block must fit one frame).
pub const MAX_CONTINUATION_FRAMES: RangeInclusive<u32> = 0..=10_000;
/// `max_control_frames_per_sec`.
pub const MAX_CONTROL_FRAMES_PER_SEC: RangeInclusive<u32> = 10..=1_000_000;
/// `max_empty_frames` per second.
pub const MAX_EMPTY_FRAMES: RangeInclusive<u32> = 0..=1_000_000;
/// `max_pending_output_bytes`: acks and resets queued for a peer that does not read.
pub const MAX_PENDING_OUTPUT_BYTES: RangeInclusive<u32> = 4096..=16 * 1024 * 1024;
/// `zero_window_timeout_ms`.
pub const ZERO_WINDOW_TIMEOUT_MS: RangeInclusive<u64> = 100..=3_600_000;
/// Default `zero_window_timeout_ms`: a response waiting this long on a client that opens no
/// window is reset (the same as the default write timeout: a stalled window is a stalled write).
pub const DEFAULT_ZERO_WINDOW_TIMEOUT_MS: u64 = 30_000;

/// `[server.http2]`: limits of HTTP/2 connections from clients; defaults in
/// [`crate::http2::limits`].
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp2 {
    pub max_concurrent_streams: Spanned<u32>,
    pub max_header_list_size: Spanned<u32>,
    pub header_table_size: Spanned<u32>,
    pub initial_window_size: Spanned<u32>,
    pub connection_window_size: Spanned<u32>,
    pub max_frame_size: Spanned<u32>,
    pub max_resets_per_window: Spanned<u32>,
    pub reset_window_ms: Spanned<u64>,
    pub max_continuation_frames: Spanned<u32>,
    pub max_control_frames_per_sec: Spanned<u32>,
    pub max_empty_frames: Spanned<u32>,
    pub max_pending_output_bytes: Spanned<u32>,
    pub zero_window_timeout_ms: Spanned<u64>,
}

impl Default for RawHttp2 {
    fn default() -> Self {
        let s = |v| Spanned::new(0..0, v);
        RawHttp2 {
            max_concurrent_streams: s(d::DEFAULT_MAX_CONCURRENT_STREAMS),
            max_header_list_size: s(d::DEFAULT_MAX_HEADER_LIST_SIZE),
            header_table_size: s(d::DEFAULT_HEADER_TABLE_SIZE),
            initial_window_size: s(d::DEFAULT_INITIAL_WINDOW_SIZE),
            connection_window_size: s(d::DEFAULT_CONNECTION_WINDOW_SIZE),
            max_frame_size: s(d::DEFAULT_MAX_FRAME_SIZE),
            max_resets_per_window: s(d::DEFAULT_MAX_RESETS_PER_WINDOW),
            reset_window_ms: Spanned::new(0..0, d::DEFAULT_RESET_WINDOW_MS),
            max_continuation_frames: s(d::DEFAULT_MAX_CONTINUATION_FRAMES),
            max_control_frames_per_sec: s(d::DEFAULT_MAX_CONTROL_FRAMES_PER_SEC),
            max_empty_frames: s(d::DEFAULT_MAX_EMPTY_FRAMES),
            max_pending_output_bytes: s(d::DEFAULT_MAX_PENDING_OUTPUT_BYTES as u32),
            zero_window_timeout_ms: Spanned::new(0..0, DEFAULT_ZERO_WINDOW_TIMEOUT_MS),
        }
    }
}

/// `server.h2c` and `[server.http2]`, checked.
#[derive(Debug, Clone)]
pub struct Http2Config {
    /// Plain listeners also accept HTTP/2 with prior knowledge (RFC 9113 §3.3).
    pub h2c: bool,
    /// The protocol limits a new HTTP/2 connection advertises and enforces.
    pub limits: Limits,
    /// A response waiting longer than this on a zero send window is reset.
    pub zero_window_timeout: Duration,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            h2c: false,
            limits: Limits::default(),
            zero_window_timeout: Duration::from_millis(DEFAULT_ZERO_WINDOW_TIMEOUT_MS),
        }
    }
}

/// Checks `server.h2c` and `[server.http2]` (every key against its range).
pub(super) fn compile(h2c: bool, r: &RawHttp2, cx: &mut Ctx<'_>) -> Http2Config {
    let k = |name: &str| format!("server.http2.{name}");
    let limits = Limits {
        max_concurrent_streams: cx.range(
            &r.max_concurrent_streams,
            k("max_concurrent_streams"),
            &MAX_CONCURRENT_STREAMS,
        ),
        max_header_list_size: cx.range(
            &r.max_header_list_size,
            k("max_header_list_size"),
            &MAX_HEADER_LIST_SIZE,
        ),
        header_table_size: cx.range(
            &r.header_table_size,
            k("header_table_size"),
            &HEADER_TABLE_SIZE,
        ),
        initial_window_size: cx.range(
            &r.initial_window_size,
            k("initial_window_size"),
            &INITIAL_WINDOW_SIZE,
        ),
        connection_window_size: cx.range(
            &r.connection_window_size,
            k("connection_window_size"),
            &CONNECTION_WINDOW_SIZE,
        ),
        max_frame_size: cx.range(&r.max_frame_size, k("max_frame_size"), &MAX_FRAME_SIZE),
        max_resets_per_window: cx.range(
            &r.max_resets_per_window,
            k("max_resets_per_window"),
            &MAX_RESETS_PER_WINDOW,
        ),
        reset_window_ms: cx.range(&r.reset_window_ms, k("reset_window_ms"), &RESET_WINDOW_MS),
        max_continuation_frames: cx.range(
            &r.max_continuation_frames,
            k("max_continuation_frames"),
            &MAX_CONTINUATION_FRAMES,
        ),
        max_control_frames_per_sec: cx.range(
            &r.max_control_frames_per_sec,
            k("max_control_frames_per_sec"),
            &MAX_CONTROL_FRAMES_PER_SEC,
        ),
        max_empty_frames: cx.range(
            &r.max_empty_frames,
            k("max_empty_frames"),
            &MAX_EMPTY_FRAMES,
        ),
        max_pending_output_bytes: cx.range(
            &r.max_pending_output_bytes,
            k("max_pending_output_bytes"),
            &MAX_PENDING_OUTPUT_BYTES,
        ) as usize,
    };
    let zero_window_timeout = cx.millis(
        &r.zero_window_timeout_ms,
        k("zero_window_timeout_ms"),
        &ZERO_WINDOW_TIMEOUT_MS,
    );
    Http2Config {
        h2c,
        limits,
        zero_window_timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::super::from_str;

    const ROUTE: &str = "[[route]]\nkey = \"GET /p\"\nmock = {}\n";

    #[test]
    fn defaults_are_the_protocol_defaults() {
        let c = from_str(ROUTE).unwrap();
        let h = &c.server.http2;
        assert!(!h.h2c);
        let d = super::Limits::default();
        assert_eq!(h.limits.max_concurrent_streams, d.max_concurrent_streams);
        assert_eq!(h.limits.max_header_list_size, d.max_header_list_size);
        assert_eq!(h.limits.header_table_size, d.header_table_size);
        assert_eq!(h.limits.initial_window_size, d.initial_window_size);
        assert_eq!(h.limits.connection_window_size, d.connection_window_size);
        assert_eq!(h.limits.max_frame_size, d.max_frame_size);
        assert_eq!(h.limits.max_resets_per_window, d.max_resets_per_window);
        assert_eq!(h.limits.reset_window_ms, d.reset_window_ms);
        assert_eq!(h.limits.max_continuation_frames, d.max_continuation_frames);
        assert_eq!(
            h.limits.max_control_frames_per_sec,
            d.max_control_frames_per_sec
        );
        assert_eq!(h.limits.max_empty_frames, d.max_empty_frames);
        assert_eq!(
            h.zero_window_timeout.as_millis(),
            u128::from(super::DEFAULT_ZERO_WINDOW_TIMEOUT_MS)
        );
    }

    #[test]
    fn every_key_is_read() {
        let text = format!(
            "[server]\nh2c = true\n[server.http2]\nmax_concurrent_streams = 7\n\
             max_header_list_size = 2048\nheader_table_size = 0\ninitial_window_size = 20000\n\
             connection_window_size = 70000\nmax_frame_size = 32768\n\
             max_resets_per_window = 9\nreset_window_ms = 500\nmax_continuation_frames = 0\n\
             max_control_frames_per_sec = 11\nmax_empty_frames = 3\n\
             max_pending_output_bytes = 8192\nzero_window_timeout_ms = 1500\n{ROUTE}"
        );
        let c = from_str(&text).unwrap_or_else(|e| panic!("{}", e.render("t")));
        let h = &c.server.http2;
        assert!(h.h2c);
        let l = &h.limits;
        assert_eq!(
            (
                l.max_concurrent_streams,
                l.max_header_list_size,
                l.header_table_size
            ),
            (7, 2048, 0)
        );
        assert_eq!(
            (
                l.initial_window_size,
                l.connection_window_size,
                l.max_frame_size
            ),
            (20_000, 70_000, 32_768)
        );
        assert_eq!((l.max_resets_per_window, l.reset_window_ms), (9, 500));
        assert_eq!(
            (
                l.max_continuation_frames,
                l.max_control_frames_per_sec,
                l.max_empty_frames
            ),
            (0, 11, 3)
        );
        assert_eq!(l.max_pending_output_bytes, 8192);
        assert_eq!(h.zero_window_timeout.as_millis(), 1500);
    }

    #[test]
    fn out_of_range_values_name_key_and_line() {
        let bad = [
            ("max_concurrent_streams = 0", "max_concurrent_streams"),
            ("max_header_list_size = 100", "max_header_list_size"),
            ("header_table_size = 100000", "header_table_size"),
            ("initial_window_size = 2147483648", "initial_window_size"),
            ("connection_window_size = 1000", "connection_window_size"),
            ("max_frame_size = 16383", "max_frame_size"),
            ("max_frame_size = 16777216", "max_frame_size"),
            ("max_resets_per_window = 0", "max_resets_per_window"),
            ("reset_window_ms = 0", "reset_window_ms"),
            ("max_continuation_frames = 10001", "max_continuation_frames"),
            (
                "max_control_frames_per_sec = 1",
                "max_control_frames_per_sec",
            ),
            ("max_empty_frames = 1000001", "max_empty_frames"),
            ("max_pending_output_bytes = 100", "max_pending_output_bytes"),
            ("zero_window_timeout_ms = 5", "zero_window_timeout_ms"),
        ];
        for (line, key) in bad {
            let text = format!("[server]\n[server.http2]\n\n{line}\n{ROUTE}");
            let e = from_str(&text).unwrap_err();
            assert_eq!(e.0.len(), 1, "{line}: {}", e.render("t"));
            assert_eq!(e.0[0].key, format!("server.http2.{key}"), "{line}");
            assert_eq!(e.0[0].line, 4, "{line}");
            assert!(e.0[0].message.contains("must be in"), "{line}");
        }
        let e = from_str(&format!("[server.http2]\nmax_streams = 3\n{ROUTE}")).unwrap_err();
        assert!(e.render("t").contains("max_streams"), "{}", e.render("t"));
        let e = from_str(&format!("[server]\nh2c = \"yes\"\n{ROUTE}")).unwrap_err();
        assert!(e.render("t").contains("t:2:"), "{}", e.render("t"));
    }
}
