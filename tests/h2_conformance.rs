//! HTTP/2 conformance, part 1: the ground of h2spec's `http2` suite sections 3 to 6.8
//! (connection preface, frame format and size, header blocks, stream states and ids,
//! concurrency, priority self-dependency, error handling, extension frames, DATA, HEADERS,
//! PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY), each named after its h2spec section, written
//! from RFC 9113 with the raw-frame client (tests/common/h2raw.rs). Every test runs four times:
//! io_uring and epoll, over h2c (prior knowledge) and over TLS with ALPN h2. Each asserts the
//! exact frame (type, code, stream) the RFC requires; after a connection error, that the same
//! (single) worker serves a fresh connection; where a request could have been forwarded, that
//! the recording origin received nothing. Part 2 (h2_conformance_2.rs): flow control,
//! CONTINUATION, HTTP semantics (§8) and HPACK.

// test helpers panic to fail the test (the deny is for runtime code)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::h2env::{post, Env};
use common::h2raw::*;

all_transports! {
    // §3.4: a valid preface and SETTINGS exchange, then a request is served
    fn http2_3_5_valid_preface(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let r = h.get_response(1, "/mock");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "mocked");
        assert_eq!(r.header("content-type"), Some("text/plain"));
    }

    // §3.4: an invalid preface is a connection error PROTOCOL_ERROR (GOAWAY may be omitted).
    // Over h2c a non-preface is not HTTP/2 at all: the HTTP/1 side refuses it. Either way the
    // connection closes without serving anything.
    fn http2_3_5_invalid_preface(d) {
        let env = Env::start(d, "");
        let mut h = H2::connect(env.addr);
        h.send(b"INVALID CONNECTION PREFACE\r\n\r\n");
        if h.conn.is_tls() {
            loop {
                match h.next() {
                    In::Frame(f) if f.ty == ty::SETTINGS || f.ty == ty::WINDOW_UPDATE => {}
                    In::Frame(f) if f.ty == ty::GOAWAY => {
                        assert_eq!(f.error_code(), Some(code::PROTOCOL_ERROR), "{:?}", h.seen);
                        h.expect_closed();
                        break;
                    }
                    In::Closed(_) => break,
                    other => panic!("after an invalid preface: {other:?}; seen {:?}", h.seen),
                }
            }
        } else {
            let mut all = Vec::new();
            let mut b = [0u8; 4096];
            loop {
                match std::io::Read::read(&mut h.conn, &mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => all.extend_from_slice(&b[..n]),
                }
            }
            let text = String::from_utf8_lossy(&all);
            assert!(
                text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.1 5"),
                "h2c invalid preface must get an HTTP/1 error: {text:?}"
            );
        }
        env.assert_serves();
    }

    // §4.1: frames of unknown type are ignored
    fn http2_4_1_unknown_frame_type_ignored(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(0x16, 0, 0, b"hello");
        h.expect_alive();
        assert_eq!(h.get_response(1, "/mock").status, 200);
    }

    // §4.1: undefined flags are ignored (PING with flags other than ACK is still answered)
    fn http2_4_1_undefined_flags_ignored(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::PING, 0x16, 0, b"flags!!!");
        match h.next_non_window() {
            In::Frame(f) if f.ty == ty::PING => {
                assert!(f.has(flag::ACK));
                assert_eq!(f.payload, b"flags!!!");
            }
            other => panic!("expected PING ACK, got {other:?}"),
        }
    }

    // §4.1: the reserved bit of the stream identifier is ignored on receipt
    fn http2_4_1_reserved_bit_ignored(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let b = Block::request("GET", "/mock");
        h.send_frame(ty::HEADERS, flag::END_HEADERS | flag::END_STREAM, 0x8000_0001, b.bytes());
        let r = h.response(1);
        assert_eq!(r.status, 200);
    }

    // §4.2: a DATA frame of exactly the default SETTINGS_MAX_FRAME_SIZE (2^14) is accepted
    fn http2_4_2_data_at_max_frame_size(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/big", 16_384), 0);
        let body: Vec<u8> = (0..16_384u32).map(|i| (i % 251) as u8).collect();
        h.data(1, &body, true);
        let r = h.response(1);
        assert_eq!(r.status, 200);
        let reqs = env.o.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].body, body);
    }

    // §4.2: DATA larger than SETTINGS_MAX_FRAME_SIZE → FRAME_SIZE_ERROR (stream or connection
    // error; DATA cannot alter connection state); nothing reaches the origin
    fn http2_4_2_data_frame_too_large(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/big", 16_385), 0);
        h.data(1, &vec![b'x'; 16_385], true);
        if h.expect_error(1, code::FRAME_SIZE_ERROR) == ErrorFrame::Stream {
            h.expect_alive();
        }
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §4.2: a HEADERS frame larger than SETTINGS_MAX_FRAME_SIZE → connection error
    // FRAME_SIZE_ERROR (a frame carrying a field block MUST be one)
    fn http2_4_2_headers_frame_too_large(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let b = Block::request("GET", "/api/x").lit("x-pad", &"a".repeat(16_500));
        assert!(b.bytes().len() > 16_384);
        h.headers(1, &b, flag::END_STREAM);
        h.expect_connection_error(code::FRAME_SIZE_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §4.3: a header block that does not decode → connection error COMPRESSION_ERROR
    fn http2_4_3_invalid_header_block(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        // a literal whose name claims 5 bytes but the block ends after 1
        let b = Block::request("GET", "/api/x").raw(&[0x00, 0x05, b'a']);
        h.headers(1, &b, flag::END_STREAM);
        h.expect_connection_error(code::COMPRESSION_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §4.3 / §6.2: a field block is contiguous: PRIORITY inside it → PROTOCOL_ERROR
    fn http2_4_3_priority_inside_header_block(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::HEADERS, flag::END_STREAM, 1, Block::request("GET", "/api/x").bytes());
        h.priority(1, 0, 16);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §4.3: HEADERS of another stream inside a field block → PROTOCOL_ERROR
    fn http2_4_3_headers_other_stream_inside_header_block(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::HEADERS, flag::END_STREAM, 1, Block::request("GET", "/api/x").bytes());
        h.headers(3, &Block::request("GET", "/api/y"), flag::END_STREAM);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §5.1 idle: DATA → connection error PROTOCOL_ERROR
    fn http2_5_1_idle_data(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.data(1, b"x", true);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §5.1 idle / §6.4: RST_STREAM on an idle stream → connection error PROTOCOL_ERROR
    fn http2_5_1_idle_rst_stream(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.rst(1, code::CANCEL);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §5.1 idle: WINDOW_UPDATE → connection error PROTOCOL_ERROR
    fn http2_5_1_idle_window_update(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.window_update(1, 100);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §5.1 idle / §6.10: CONTINUATION without a HEADERS before → PROTOCOL_ERROR
    fn http2_5_1_idle_continuation(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::CONTINUATION, flag::END_HEADERS, 1, Block::request("GET", "/").bytes());
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §5.1 half-closed (remote): DATA → stream error STREAM_CLOSED
    fn http2_5_1_half_closed_remote_data(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.data(1, b"late", false);
        h.expect_rst(1, code::STREAM_CLOSED);
        h.expect_alive();
    }

    // §5.1 half-closed (remote): HEADERS → stream error STREAM_CLOSED
    fn http2_5_1_half_closed_remote_headers(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.headers(1, &Block::new().lit("x-trailer", "late"), flag::END_STREAM);
        h.expect_rst(1, code::STREAM_CLOSED);
        h.expect_alive();
    }

    // §5.1 half-closed (remote): WINDOW_UPDATE, PRIORITY and RST_STREAM are allowed
    fn http2_5_1_half_closed_remote_window_update_priority_ok(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.window_update(1, 1000);
        h.priority(1, 0, 200);
        h.expect_alive();
        env.release();
        let r = h.response(1);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "held");
    }

    fn http2_5_1_half_closed_remote_rst_stream_ok(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.rst(1, code::CANCEL);
        h.expect_alive();
        h.get(3, "/mock");
        assert_eq!(h.response(3).status, 200);
    }

    // §5.1 closed: DATA after the client's RST_STREAM → STREAM_CLOSED (stream or connection
    // error, §5.4.1 lets a server escalate)
    fn http2_5_1_closed_data_after_rst(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/held", 4), 0);
        h.rst(1, code::CANCEL);
        h.data(1, b"late", true);
        if h.expect_error(1, code::STREAM_CLOSED) == ErrorFrame::Stream {
            h.expect_alive();
        }
        env.assert_serves();
    }

    // §5.1 closed: DATA after both sides ended the stream → STREAM_CLOSED
    fn http2_5_1_closed_data_after_end_stream(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        assert_eq!(h.get_response(1, "/mock").status, 200);
        h.data(1, b"late", true);
        if h.expect_error(1, code::STREAM_CLOSED) == ErrorFrame::Stream {
            h.expect_alive();
        }
        env.assert_serves();
    }

    // §5.1 closed: HEADERS on a stream the client reset → STREAM_CLOSED (stream or
    // connection error)
    fn http2_5_1_closed_headers_after_rst(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/held", 4), 0);
        h.rst(1, code::CANCEL);
        h.headers(1, &Block::new().lit("x-trailer", "late"), flag::END_STREAM);
        if h.expect_error(1, code::STREAM_CLOSED) == ErrorFrame::Stream {
            h.expect_alive();
        }
        env.assert_serves();
    }

    // §5.1 closed / §6.10: CONTINUATION on a reset stream (no header block open) →
    // connection error PROTOCOL_ERROR
    fn http2_5_1_closed_continuation_after_rst(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.rst(1, code::CANCEL);
        h.send_frame(ty::CONTINUATION, flag::END_HEADERS, 1, Block::new().lit("x", "y").bytes());
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §5.1.1: a client-initiated stream with an even id → connection error PROTOCOL_ERROR
    fn http2_5_1_1_even_stream_id(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.get(2, "/api/x");
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §5.1.1: a new stream id lower than one already used → connection error PROTOCOL_ERROR
    fn http2_5_1_1_decreasing_stream_id(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        assert_eq!(h.get_response(5, "/mock").status, 200);
        h.get(3, "/api/x");
        let g = h.expect_goaway(code::PROTOCOL_ERROR);
        assert_eq!(g.last_stream_id(), Some(5), "GOAWAY names the last stream processed");
        h.expect_closed();
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §5.1.2: SETTINGS_MAX_CONCURRENT_STREAMS from config is advertised; a stream beyond it
    // → RST_STREAM REFUSED_STREAM (never processed, §8.7), the others are served
    fn http2_5_1_2_exceeding_max_concurrent_streams(d) {
        let env = Env::held(d, "max_concurrent_streams = 2");
        let mut h = env.h2();
        assert_eq!(h.server_setting(setting::MAX_CONCURRENT_STREAMS), Some(2));
        h.get(1, "/api/one");
        h.get(3, "/api/two");
        h.get(5, "/api/three");
        h.expect_rst(5, code::REFUSED_STREAM);
        env.release();
        let rs = h.responses(&[1, 3]);
        assert!(rs.values().all(|r| r.status == 200), "{rs:?}");
        let mut targets: Vec<String> = env.o.requests().into_iter().map(|r| r.target).collect();
        targets.sort();
        assert_eq!(targets, ["/api/one", "/api/two"], "the refused stream was not forwarded");
        // the connection goes on: a new stream now fits
        assert_eq!(h.get_response(7, "/mock").status, 200);
    }

    // §5.3.1: HEADERS depending on its own stream → stream error PROTOCOL_ERROR
    fn http2_5_3_1_headers_self_dependency(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let mut p = 1u32.to_be_bytes().to_vec();
        p.push(16);
        p.extend_from_slice(Block::request("GET", "/api/x").bytes());
        h.send_frame(ty::HEADERS, flag::END_HEADERS | flag::END_STREAM | flag::PRIORITY, 1, &p);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §5.3.1: PRIORITY making an open stream depend on itself → stream error PROTOCOL_ERROR
    fn http2_5_3_1_priority_self_dependency(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.priority(1, 1, 16);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
    }

    // §5.3.1 on an idle stream: a stream error, but RST_STREAM may not be sent on an idle
    // stream (§5.1), so a connection error PROTOCOL_ERROR is as right (§5.4.1)
    fn http2_5_3_1_priority_self_dependency_idle(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.priority(1, 1, 16);
        if h.expect_error(1, code::PROTOCOL_ERROR) == ErrorFrame::Stream {
            h.expect_alive();
        }
        env.assert_serves();
    }

    // §5.4.1: after a connection error the server sends GOAWAY naming the last stream it
    // processed, then closes
    fn http2_5_4_1_goaway_then_close(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        assert_eq!(h.get_response(1, "/mock").status, 200);
        h.data(0, b"x", false);
        let g = h.expect_goaway(code::PROTOCOL_ERROR);
        assert_eq!(g.last_stream_id(), Some(1));
        h.expect_closed();
        env.assert_serves();
    }

    // §5.5: unknown extension frames on a stream are ignored
    fn http2_5_5_unknown_extension_frame_ignored(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(0xfa, 0xff, 1, b"extension");
        h.expect_alive();
        assert_eq!(h.get_response(1, "/mock").status, 200);
    }

    // §5.5: an unknown frame inside a field block → connection error PROTOCOL_ERROR
    fn http2_5_5_unknown_extension_inside_header_block(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::HEADERS, flag::END_STREAM, 1, Block::request("GET", "/api/x").bytes());
        h.send_frame(0xfa, 0, 1, b"extension");
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §6.1: DATA on stream 0 → connection error PROTOCOL_ERROR
    fn http2_6_1_data_on_stream_0(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.data(0, b"x", true);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §6.1: padding as long as the payload → connection error PROTOCOL_ERROR
    fn http2_6_1_data_invalid_pad_length(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/x", 4), 0);
        // pad length 5 in a 5-byte payload (1 + 4 data): the padding does not fit
        h.send_frame(ty::DATA, flag::PADDED | flag::END_STREAM, 1, &[5, b'a', b'b', b'c', b'd']);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §6.1: padded DATA: the padding is not body
    fn http2_6_1_data_padded_ok(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/x", 4), 0);
        h.send_frame(ty::DATA, flag::PADDED | flag::END_STREAM, 1, &[3, b'a', b'b', b'c', b'd', 0, 0, 0]);
        assert_eq!(h.response(1).status, 200);
        assert_eq!(env.o.requests()[0].body, b"abcd");
    }

    // §6.2: HEADERS on stream 0 → connection error PROTOCOL_ERROR
    fn http2_6_2_headers_on_stream_0(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(0, &Block::request("GET", "/api/x"), flag::END_STREAM);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §6.2: HEADERS padding longer than the payload → connection error PROTOCOL_ERROR
    fn http2_6_2_headers_invalid_pad_length(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let block = Block::request("GET", "/api/x");
        let mut p = vec![(block.bytes().len() + 1) as u8];
        p.extend_from_slice(block.bytes());
        h.send_frame(ty::HEADERS, flag::END_HEADERS | flag::END_STREAM | flag::PADDED, 1, &p);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §6.2: HEADERS with padding and priority fields is a valid request
    fn http2_6_2_headers_padded_with_priority_ok(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let block = Block::request("GET", "/mock");
        let mut p = vec![4u8];
        p.extend_from_slice(&0u32.to_be_bytes());
        p.push(255);
        p.extend_from_slice(block.bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        h.send_frame(
            ty::HEADERS,
            flag::END_HEADERS | flag::END_STREAM | flag::PADDED | flag::PRIORITY,
            1,
            &p,
        );
        let r = h.response(1);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "mocked");
    }

    // §6.3: PRIORITY on stream 0 → connection error PROTOCOL_ERROR
    fn http2_6_3_priority_on_stream_0(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.priority(0, 1, 16);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §6.3: PRIORITY with a length other than 5 → stream error FRAME_SIZE_ERROR
    fn http2_6_3_priority_wrong_length(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.send_frame(ty::PRIORITY, 0, 1, &[0, 0, 0, 0]);
        h.expect_rst(1, code::FRAME_SIZE_ERROR);
        h.expect_alive();
    }

    // §6.4: RST_STREAM on stream 0 → connection error PROTOCOL_ERROR
    fn http2_6_4_rst_stream_on_stream_0(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.rst(0, code::CANCEL);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §6.4: RST_STREAM with a length other than 4 → connection error FRAME_SIZE_ERROR
    fn http2_6_4_rst_stream_wrong_length(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.send_frame(ty::RST_STREAM, 0, 1, &[0, 0, 0, 8, 0]);
        h.expect_connection_error(code::FRAME_SIZE_ERROR);
        env.release();
        env.assert_serves();
    }

    // §6.5: SETTINGS with ACK and a payload → connection error FRAME_SIZE_ERROR
    fn http2_6_5_settings_ack_with_payload(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::SETTINGS, flag::ACK, 0, &settings_payload(&[(setting::ENABLE_PUSH, 0)]));
        h.expect_connection_error(code::FRAME_SIZE_ERROR);
        env.assert_serves();
    }

    // §6.5: SETTINGS on a stream → connection error PROTOCOL_ERROR
    fn http2_6_5_settings_on_stream(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::SETTINGS, 0, 1, &settings_payload(&[(setting::ENABLE_PUSH, 0)]));
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §6.5: a SETTINGS length not a multiple of 6 → connection error FRAME_SIZE_ERROR
    fn http2_6_5_settings_length_not_multiple_of_6(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::SETTINGS, 0, 0, &[0, 2, 0, 0, 0]);
        h.expect_connection_error(code::FRAME_SIZE_ERROR);
        env.assert_serves();
    }

    // §6.5.2: SETTINGS_ENABLE_PUSH other than 0 or 1 → PROTOCOL_ERROR
    fn http2_6_5_2_enable_push_invalid(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.settings(&[(setting::ENABLE_PUSH, 2)]);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §6.5.2: SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1 → FLOW_CONTROL_ERROR
    fn http2_6_5_2_initial_window_size_too_large(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 31)]);
        h.expect_connection_error(code::FLOW_CONTROL_ERROR);
        env.assert_serves();
    }

    // §6.5.2: SETTINGS_MAX_FRAME_SIZE below 2^14 → PROTOCOL_ERROR
    fn http2_6_5_2_max_frame_size_too_small(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.settings(&[(setting::MAX_FRAME_SIZE, 16_383)]);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §6.5.2: SETTINGS_MAX_FRAME_SIZE above 2^24-1 → PROTOCOL_ERROR
    fn http2_6_5_2_max_frame_size_too_large(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.settings(&[(setting::MAX_FRAME_SIZE, 1 << 24)]);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §6.5.2: unknown settings are ignored (and the SETTINGS acknowledged)
    fn http2_6_5_2_unknown_setting_ignored(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.settings(&[(0xff, 1)]);
        match h.next_non_window() {
            In::Frame(f) => assert!(f.ty == ty::SETTINGS && f.has(flag::ACK) && f.payload.is_empty(), "{f:?}"),
            other => panic!("expected SETTINGS ACK, got {other:?}"),
        }
        assert_eq!(h.get_response(1, "/mock").status, 200);
    }

    // §6.5.3: every SETTINGS is acknowledged with an empty ACK
    fn http2_6_5_3_settings_ack_sent(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.settings(&[(setting::ENABLE_PUSH, 0), (setting::MAX_FRAME_SIZE, 20_000)]);
        match h.next_non_window() {
            In::Frame(f) => assert!(f.ty == ty::SETTINGS && f.has(flag::ACK) && f.payload.is_empty(), "{f:?}"),
            other => panic!("expected SETTINGS ACK, got {other:?}"),
        }
    }

    // §6.7: PING is answered with an ACK carrying the same 8 bytes
    fn http2_6_7_ping_ack_echoes(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.ping(*b"h2spec!!");
        match h.next_non_window() {
            In::Frame(f) => {
                assert!(f.ty == ty::PING && f.has(flag::ACK) && f.stream == 0, "{f:?}");
                assert_eq!(f.payload, b"h2spec!!");
            }
            other => panic!("expected PING ACK, got {other:?}"),
        }
    }

    // §6.7: a PING with ACK is not answered
    fn http2_6_7_ping_ack_not_answered(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::PING, flag::ACK, 0, b"unasked!");
        h.ping(*b"second!!");
        match h.next_non_window() {
            In::Frame(f) => {
                assert!(f.ty == ty::PING && f.has(flag::ACK), "{f:?}");
                assert_eq!(f.payload, b"second!!", "the ACK'd PING must not be answered");
            }
            other => panic!("expected PING ACK, got {other:?}"),
        }
    }

    // §6.7: PING on a stream → connection error PROTOCOL_ERROR
    fn http2_6_7_ping_on_stream(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::PING, 0, 1, b"stream!!");
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §6.7: PING with a length other than 8 → connection error FRAME_SIZE_ERROR
    fn http2_6_7_ping_wrong_length(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::PING, 0, 0, b"short");
        h.expect_connection_error(code::FRAME_SIZE_ERROR);
        env.assert_serves();
    }

    // §6.8: GOAWAY on a stream → connection error PROTOCOL_ERROR
    fn http2_6_8_goaway_on_stream(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::GOAWAY, 0, 1, &[0, 0, 0, 0, 0, 0, 0, 0]);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §8.4: a client must not send PUSH_PROMISE → connection error PROTOCOL_ERROR
    fn http2_8_4_client_push_promise(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        assert_eq!(h.get_response(1, "/mock").status, 200);
        let mut p = 2u32.to_be_bytes().to_vec();
        p.extend_from_slice(Block::request("GET", "/api/x").bytes());
        h.send_frame(ty::PUSH_PROMISE, flag::END_HEADERS, 1, &p);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }
}
