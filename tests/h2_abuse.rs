//! HTTP/2 abuse defences, end to end on both drivers over h2c and TLS: rapid reset
//! (CVE-2023-44487), CONTINUATION floods (CVE-2024-27316, with and without bytes), SETTINGS,
//! PING and empty-DATA floods, a client that opens no window (zero-window stall), a client
//! that stops reading, header lists beyond the advertised limit, and the advertised
//! SETTINGS_MAX_CONCURRENT_STREAMS. Each flood must end in GOAWAY (ENHANCE_YOUR_CALM where
//! RFC 9113 §7 names it for excessive load) and a close, be counted in
//! `tollgate_http2_goaway_total{reason}` on the admin `/metrics`, and leave another
//! connection of the same (single) worker served. Floods are sent by a writer thread with a
//! byte cap far above any limit while the main thread reads, so a server without the defence
//! fails the test (no GOAWAY) instead of hanging it.

// test helpers panic to fail the test (the deny is for runtime code)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use common::h2env::{post, Env};
use common::h2raw::*;

const GOAWAY_TOTAL: &str = "tollgate_http2_goaway_total";

/// What a flood ended with.
struct Flooded {
    /// Frames the server sent during the flood, in order.
    frames: Vec<Frame>,
    /// Bytes the writer got into the socket before it stopped.
    written: usize,
}

impl Flooded {
    fn goaway(&self) -> &Frame {
        self.frames
            .iter()
            .find(|f| f.ty == ty::GOAWAY)
            .unwrap_or_else(|| panic!("no GOAWAY after the flood; frames {:?}", self.frames))
    }
}

/// Writes `block` again and again (after `prefix` once) from a second thread until the
/// server closes, a write fails, or `cap` bytes went; meanwhile reads every frame until the
/// connection ends. Fails if the connection is still open after the cap was sent and the
/// liveness timeout passed.
fn flood(h: &mut H2, prefix: &[u8], block: &[u8], cap: usize) -> Flooded {
    h.auto_ack = false; // the writer thread owns the write side
    let mut w = h.conn.try_clone().expect("clone");
    let stop = Arc::new(AtomicBool::new(false));
    let (prefix, block) = (prefix.to_vec(), block.to_vec());
    let stop2 = stop.clone();
    let writer = thread::spawn(move || {
        let mut written = 0;
        if std::io::Write::write_all(&mut w, &prefix).is_err() {
            return written;
        }
        written += prefix.len();
        while written < cap && !stop2.load(Ordering::Acquire) {
            if std::io::Write::write_all(&mut w, &block).is_err() {
                break;
            }
            written += block.len();
        }
        written
    });
    let mut frames = Vec::new();
    loop {
        match h.next() {
            In::Frame(f) => {
                let goaway = f.ty == ty::GOAWAY;
                frames.push(f);
                if goaway {
                    stop.store(true, Ordering::Release);
                }
            }
            In::Headers { .. } => {}
            In::Closed(_) => break,
            In::Timeout => panic!("connection still open after the flood; seen {:#?}", h.seen),
        }
    }
    stop.store(true, Ordering::Release);
    let written = writer.join().unwrap();
    Flooded { frames, written }
}

fn assert_goaway(f: &Flooded, code: u32) {
    let g = f.goaway();
    assert_eq!(
        code_name(g.error_code().unwrap()),
        code_name(code),
        "{:?}",
        f.frames
    );
}

all_transports! {
    // Rapid reset (CVE-2023-44487): streams opened and reset at once, beyond
    // max_resets_per_window → GOAWAY ENHANCE_YOUR_CALM, closed, counted as rapid_reset; a
    // second connection on the same worker is served before and after
    fn rapid_reset_goaway(d) {
        let env = Env::held_with(d, "max_resets_per_window = 20\nreset_window_ms = 60000", true);
        let mut other = env.h2();
        let mut h = env.h2();
        let mut batch = Vec::new();
        let mut id = 1u32;
        for _ in 0..2_000 {
            batch.extend(frame(ty::HEADERS, flag::END_HEADERS | flag::END_STREAM, id, Block::request("GET", "/api/held").bytes()));
            batch.extend(frame(ty::RST_STREAM, 0, id, &code::CANCEL.to_be_bytes()));
            id += 2;
        }
        let f = flood(&mut h, &batch, &[], 0);
        assert_goaway(&f, code::ENHANCE_YOUR_CALM);
        env.wait_metric(GOAWAY_TOTAL, &[("reason", "rapid_reset")], 1.0);
        assert_eq!(other.get_response(1, "/mock").status, 200, "the other connection goes on");
        env.assert_serves();
        // nothing of the reset requests needs to reach the origin; at most the first ones did
        assert!(env.o.requests().len() <= 40, "{} requests reached the origin", env.o.requests().len());
    }

    // Clients resetting their own streams at a normal pace stay within the limit
    fn resets_below_the_limit_are_fine(d) {
        let env = Env::held(d, "max_resets_per_window = 20\nreset_window_ms = 60000");
        let mut h = env.h2();
        let mut id = 1;
        for _ in 0..10 {
            h.get(id, "/api/held");
            h.rst(id, code::CANCEL);
            id += 2;
        }
        h.expect_alive();
        assert_eq!(h.get_response(id, "/mock").status, 200);
    }

    // CONTINUATION flood (CVE-2024-27316): a field block that never ends, in 1 KiB fragments
    // of valid fields → GOAWAY and close long before the flood cap; counted; others served
    fn continuation_flood_with_bytes(d) {
        let env = Env::with_origin(d, "max_continuation_frames = 16", common::Origin::echo(), true);
        let mut other = env.h2();
        let mut h = env.h2();
        let head = frame(ty::HEADERS, flag::END_STREAM, 1, Block::request("GET", "/api/x").bytes());
        let fragment = Block::new().lit("x-flood", &"f".repeat(1000));
        let cont = frame(ty::CONTINUATION, 0, 1, fragment.bytes());
        let f = flood(&mut h, &head, &cont.repeat(16), 64 << 20);
        let g = f.goaway();
        assert_ne!(g.error_code(), Some(code::NO_ERROR), "{g:?}");
        assert!(f.written < 64 << 20, "the server read the whole 64 MiB flood");
        env.wait_metric(GOAWAY_TOTAL, &[("reason", "continuation_flood")], 1.0);
        assert_eq!(other.get_response(1, "/mock").status, 200);
        env.assert_origin_untouched();
    }

    // CONTINUATION flood of empty frames: no bytes accumulate, only the frame count can stop it
    fn continuation_flood_empty_frames(d) {
        let env = Env::with_origin(d, "max_continuation_frames = 16", common::Origin::echo(), true);
        let mut h = env.h2();
        let head = frame(ty::HEADERS, flag::END_STREAM, 1, Block::request("GET", "/api/x").bytes());
        let cont = frame(ty::CONTINUATION, 0, 1, &[]);
        let f = flood(&mut h, &head, &cont.repeat(1000), 64 << 20);
        let g = f.goaway();
        assert_ne!(g.error_code(), Some(code::NO_ERROR), "{g:?}");
        env.wait_metric(GOAWAY_TOTAL, &[("reason", "continuation_flood")], 1.0);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // A field block of max_continuation_frames fragments is still a request
    fn continuation_within_the_limit_is_served(d) {
        let env = Env::start(d, "max_continuation_frames = 16");
        let mut h = env.h2();
        let b = Block::request("GET", "/api/c").lit("x-long", &"v".repeat(160));
        let bytes = b.bytes().to_vec();
        let parts: Vec<&[u8]> = bytes.chunks(bytes.len() / 16 + 1).collect();
        assert!(parts.len() <= 17);
        h.send_frame(ty::HEADERS, flag::END_STREAM, 1, parts[0]);
        for (i, p) in parts[1..].iter().enumerate() {
            let last = i + 2 == parts.len();
            h.send_frame(ty::CONTINUATION, if last { flag::END_HEADERS } else { 0 }, 1, p);
        }
        assert_eq!(h.response(1).status, 200);
        assert_eq!(env.o.requests()[0].header("x-long").map(str::len), Some(160));
    }

    // SETTINGS flood: more than max_control_frames_per_sec → GOAWAY ENHANCE_YOUR_CALM
    fn settings_flood(d) {
        let env = Env::with_origin(d, "max_control_frames_per_sec = 100", common::Origin::echo(), true);
        let mut other = env.h2();
        let mut h = env.h2();
        let one = frame(ty::SETTINGS, 0, 0, &settings_payload(&[(setting::ENABLE_PUSH, 0)]));
        let f = flood(&mut h, &[], &one.repeat(1000), 64 << 20);
        assert_goaway(&f, code::ENHANCE_YOUR_CALM);
        env.wait_metric(GOAWAY_TOTAL, &[("reason", "control_flood")], 1.0);
        assert_eq!(other.get_response(1, "/mock").status, 200);
    }

    // PING flood: more than max_control_frames_per_sec → GOAWAY ENHANCE_YOUR_CALM
    fn ping_flood(d) {
        let env = Env::with_origin(d, "max_control_frames_per_sec = 100", common::Origin::echo(), true);
        let mut other = env.h2();
        let mut h = env.h2();
        let one = frame(ty::PING, 0, 0, b"floodpng");
        let f = flood(&mut h, &[], &one.repeat(1000), 64 << 20);
        assert_goaway(&f, code::ENHANCE_YOUR_CALM);
        env.wait_metric(GOAWAY_TOTAL, &[("reason", "control_flood")], 1.0);
        assert_eq!(other.get_response(1, "/mock").status, 200);
    }

    // A few PINGs and SETTINGS are fine
    fn control_frames_below_the_limit_are_fine(d) {
        let env = Env::start(d, "max_control_frames_per_sec = 100");
        let mut h = env.h2();
        for _ in 0..10 {
            h.settings(&[]);
            h.expect_alive();
        }
        assert_eq!(h.get_response(1, "/mock").status, 200);
    }

    // Empty DATA frames without END_STREAM beyond max_empty_frames → GOAWAY
    // ENHANCE_YOUR_CALM, counted as empty_frames; nothing of the request is forwarded
    fn empty_data_flood(d) {
        let env = Env::with_origin(d, "max_empty_frames = 50", common::Origin::echo(), true);
        let mut other = env.h2();
        let mut h = env.h2();
        let head = frame(ty::HEADERS, flag::END_HEADERS, 1, post("/api/x", 10).bytes());
        let empty = frame(ty::DATA, 0, 1, &[]);
        let f = flood(&mut h, &head, &empty.repeat(1000), 64 << 20);
        assert_goaway(&f, code::ENHANCE_YOUR_CALM);
        env.wait_metric(GOAWAY_TOTAL, &[("reason", "empty_frames")], 1.0);
        assert_eq!(other.get_response(1, "/mock").status, 200);
        env.assert_origin_untouched();
    }

    // A client that opens no window for a large response: after zero_window_timeout_ms the
    // stream is reset or the connection closed (GOAWAY counted as zero_window_stall);
    // another connection downloads the same response meanwhile
    fn zero_window_stall(d) {
        let env = Env::held_with(d, "zero_window_timeout_ms = 300", true);
        let mut h = H2::open_with(env.addr, &[(setting::INITIAL_WINDOW_SIZE, 0)]);
        h.auto_window = false;
        h.get(1, "/api/large");
        let mut other = env.h2();
        let r = other.get_response(1, "/api/large");
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 1 << 20);
        let mut ended = false;
        while !ended {
            match h.next() {
                In::Frame(f) if f.ty == ty::RST_STREAM && f.stream == 1 => ended = true,
                In::Frame(f) if f.ty == ty::GOAWAY => {
                    h.expect_closed();
                    env.wait_metric(GOAWAY_TOTAL, &[("reason", "zero_window_stall")], 1.0);
                    ended = true;
                }
                In::Frame(f) if f.ty == ty::DATA => {
                    assert!(f.payload.is_empty(), "DATA on a zero window: {f:?}");
                }
                In::Closed(_) | In::Timeout => panic!("stalled stream neither reset nor closed: {:#?}", h.seen),
                _ => {}
            }
        }
        env.assert_serves();
    }

    // A client that stops reading the socket while asking for large responses: the
    // gateway does not fail the others, and when the client reads again every byte arrives
    // (the stall is back-pressure, not loss)
    fn stalled_reader_does_not_affect_others(d) {
        let env = Env::held(d, "");
        let mut h = H2::open_with(env.addr, &[(setting::INITIAL_WINDOW_SIZE, 0x7fff_ffff)]);
        h.window_update(0, 0x7fff_ffff - 65_535);
        for id in [1, 3, 5, 7] {
            h.get(id, "/api/large");
        }
        // not reading h: meanwhile others are served
        for _ in 0..3 {
            let mut o = env.h2();
            assert_eq!(o.get_response(1, "/mock").status, 200);
            let r = o.get_response(3, "/api/large");
            assert_eq!(r.body.len(), 1 << 20);
        }
        h.auto_window = false;
        let rs = h.responses(&[1, 3, 5, 7]);
        assert!(rs.values().all(|r| r.status == 200 && r.body.len() == 1 << 20));
    }

    // A client that sends PINGs and never reads their ACKs: the gateway stops reading it
    // (TCP back-pressure) instead of queueing acks without bound — the writer blocks long
    // before the 64 MiB cap — and closes it once a write has waited write_ms (or with GOAWAY
    // output_flood); another connection of the worker is served meanwhile
    fn unread_ping_acks_are_bounded(d) {
        let env = Env::with_tables(
            d,
            "max_control_frames_per_sec = 1000000",
            "write_ms = 300",
            common::Origin::echo(),
            true,
        );
        let mut h = env.h2();
        h.auto_ack = false;
        let mut w = h.conn.try_clone().unwrap();
        w.set_write_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let batch = frame(ty::PING, 0, 0, b"unread!!").repeat(1000);
        let cap = 64usize << 20;
        let mut written = 0;
        while written < cap {
            // a write blocked for 2 s: the gateway stopped reading us
            if std::io::Write::write_all(&mut w, &batch).is_err() {
                break;
            }
            written += batch.len();
        }
        assert!(written < cap, "the gateway read {written} bytes of PINGs it could not answer");
        let mut other = env.h2();
        assert_eq!(other.get_response(1, "/mock").status, 200, "the worker serves others");
        let mut acks = 0usize;
        loop {
            match h.next() {
                In::Frame(f) if f.ty == ty::PING => acks += 1,
                In::Frame(f) if f.ty == ty::GOAWAY => {
                    assert_eq!(f.error_code(), Some(code::ENHANCE_YOUR_CALM), "{f:?}");
                    env.wait_metric(GOAWAY_TOTAL, &[("reason", "output_flood")], 1.0);
                }
                In::Closed(_) => break,
                In::Timeout => panic!("a client that stopped reading was never closed ({acks} acks read)"),
                _ => {}
            }
        }
    }

    // tollgate_http2_streams_reset_total counts the streams reset either way: by the gateway
    // (a content-length mismatch) and by the client (RST_STREAM on a request in flight);
    // a connection error is counted by its reason (protocol_error)
    fn resets_and_protocol_errors_are_counted(d) {
        let env = Env::held_with(d, "", true);
        let mut h = env.h2();
        h.headers(1, &post("/api/x", 4), 0);
        h.data(1, b"abcde", true);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        env.wait_metric("tollgate_http2_streams_reset_total", &[], 1.0);
        h.get(3, "/api/held");
        h.rst(3, code::CANCEL);
        h.expect_alive();
        env.wait_metric("tollgate_http2_streams_reset_total", &[], 2.0);
        h.data(0, b"x", false);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.wait_metric(GOAWAY_TOTAL, &[("reason", "protocol_error")], 1.0);
    }

    // A decoded header list beyond max_header_list_size (advertised) from a small block (an
    // entry indexed by one request, referenced twice by the next: RFC 7541 §6.1) is refused
    // on its stream — 431 or RST_STREAM — without reaching the origin, and the connection
    // stays usable with its HPACK state in step (RFC 9113 §10.5.1)
    fn header_list_too_large(d) {
        let env = Env::start(d, "max_header_list_size = 4096");
        let mut h = env.h2();
        assert_eq!(h.server_setting(setting::MAX_HEADER_LIST_SIZE), Some(4096));
        let big = "b".repeat(2500);
        h.headers(1, &Block::request("GET", "/mock").incremental("x-big", &big), flag::END_STREAM);
        assert_eq!(h.response(1).status, 200, "one 2.5 KB field fits the 4 KiB list");
        h.headers(3, &Block::request("GET", "/api/x").indexed(62).indexed(62), flag::END_STREAM);
        match h.next_significant() {
            In::Headers { stream: 3, fields, end_stream } => {
                assert!(fields.contains(&(":status".into(), "431".into())), "{fields:?}");
                // the rest of the 431 response
                let mut ended = end_stream;
                while !ended {
                    match h.next_significant() {
                        In::Frame(f) if f.stream == 3 && (f.ty == ty::DATA || f.ty == ty::RST_STREAM) => {
                            ended = f.has(flag::END_STREAM) || f.ty == ty::RST_STREAM;
                        }
                        other => panic!("after 431: {other:?}"),
                    }
                }
            }
            In::Frame(f) if f.ty == ty::RST_STREAM && f.stream == 3 => {}
            other => panic!("expected 431 or RST_STREAM, got {other:?}; seen {:#?}", h.seen),
        }
        h.expect_alive();
        // the table still holds x-big: one reference is fine
        h.headers(5, &Block::request("GET", "/api/y").indexed(62), flag::END_STREAM);
        assert_eq!(h.response(5).status, 200, "the HPACK state stayed in step");
        let reqs = env.o.requests();
        assert_eq!(reqs.len(), 1, "only the request within the limit reached the origin");
        assert_eq!(reqs[0].target, "/api/y");
        assert_eq!(reqs[0].header("x-big").map(str::len), Some(2500));
    }

    // A single header block larger than max_header_list_size: design.md caps a block's bytes
    // at max_header_list_size, so the server may refuse the stream (431 / RST_STREAM) or
    // close the connection (GOAWAY ENHANCE_YOUR_CALM); either way nothing reaches the origin
    // and another connection is served
    fn header_block_beyond_the_byte_cap(d) {
        let env = Env::start(d, "max_header_list_size = 4096");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/x").lit("x-big", &"b".repeat(8000)), flag::END_STREAM);
        match h.next_significant() {
            In::Headers { stream: 1, fields, .. } => {
                assert!(fields.contains(&(":status".into(), "431".into())), "{fields:?}")
            }
            In::Frame(f) if f.ty == ty::RST_STREAM && f.stream == 1 => {}
            In::Frame(f) if f.ty == ty::GOAWAY => {
                assert_eq!(f.error_code(), Some(code::ENHANCE_YOUR_CALM), "{f:?}");
                h.expect_closed();
            }
            other => panic!("expected 431, RST_STREAM or GOAWAY, got {other:?}; seen {:#?}", h.seen),
        }
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // SETTINGS_MAX_CONCURRENT_STREAMS: the configured value is advertised; the default is 128
    fn max_concurrent_streams_advertised(d) {
        let env = Env::start(d, "max_concurrent_streams = 7");
        let h = env.h2();
        assert_eq!(h.server_setting(setting::MAX_CONCURRENT_STREAMS), Some(7));
        let env = Env::start(d, "");
        let h = env.h2();
        assert_eq!(h.server_setting(setting::MAX_CONCURRENT_STREAMS), Some(128));
    }
}

/// RFC 9113 §6.9 lets a client send WINDOW_UPDATE after every DATA frame: such a client
/// downloading 10 MiB (about 640 frames, 1 280 WINDOW_UPDATEs) is not a control-frame flood.
/// (Each DATA frame sent earns the client two WINDOW_UPDATEs that count as flow control,
/// src/http2/conn_recv.rs `window_update_credit`.)
mod per_frame_window_updates {
    use super::*;
    use common::conn::{enter, Transport};

    const WHY: &str = "per-frame WINDOW_UPDATEs must not count as a control flood";

    fn run(d: &str, t: Transport) {
        let _t = enter(t);
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.credit = Credit::PerFrame;
        let ids: Vec<u32> = (0..10).map(|i| 1 + 2 * i).collect();
        for id in &ids {
            h.get(*id, &format!("/api/large?{id}"));
        }
        let rs = h.responses(&ids);
        for id in &ids {
            assert_eq!(rs[id].status, 200, "{WHY}");
            assert_eq!(rs[id].body.len(), 1 << 20, "stream {id}");
        }
    }

    #[test]
    fn io_uring_plain() {
        run("io_uring", Transport::Plain)
    }

    #[test]
    fn io_uring_tls() {
        run("io_uring", Transport::Tls)
    }

    #[test]
    fn epoll_plain() {
        run("epoll", Transport::Plain)
    }

    #[test]
    fn epoll_tls() {
        run("epoll", Transport::Tls)
    }
}
