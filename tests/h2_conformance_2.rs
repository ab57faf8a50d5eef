//! HTTP/2 conformance, part 2: the ground of h2spec's `http2` sections 6.9 to 8 and its
//! `hpack` suite, from RFC 9113 and RFC 7541: WINDOW_UPDATE and flow control both ways
//! (the server never sends beyond the client's windows, SETTINGS_INITIAL_WINDOW_SIZE changes
//! apply to open streams, window overflow), CONTINUATION, request semantics (bodies and
//! trailers, content-length vs DATA, field validity, connection-specific fields, pseudo-header
//! fields, cookie crumbs, `:authority` → Host) and HPACK decoding errors. Same frame as part 1:
//! four runs per test (io_uring/epoll × h2c/TLS); exact frames asserted; the origin proven
//! untouched by every refused request; a fresh connection served after every connection error.

// test helpers panic to fail the test (the deny is for runtime code)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::h2env::{post, Env};
use common::h2raw::*;
use common::Reply;

/// Reads the response to `stream` checking the server never exceeds the windows we granted
/// (RFC 9113 §6.9.1): `stream_window` and `conn_window` are what the server may send now;
/// each DATA frame is credited back on both. Returns the response.
fn read_flow_checked(
    h: &mut H2,
    stream: u32,
    mut stream_window: i64,
    mut conn_window: i64,
) -> H2Response {
    let mut r = H2Response::default();
    let max_frame = 16_384usize;
    loop {
        match h.next_significant() {
            In::Headers {
                stream: s,
                fields,
                end_stream,
            } if s == stream => {
                r.status = fields
                    .iter()
                    .find(|(n, _)| n == ":status")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                r.headers = fields;
                if end_stream {
                    return r;
                }
            }
            In::Frame(f) if f.ty == ty::DATA && f.stream == stream => {
                let n = f.payload.len() as i64;
                assert!(
                    f.payload.len() <= max_frame,
                    "DATA beyond our SETTINGS_MAX_FRAME_SIZE: {f:?}"
                );
                stream_window -= n;
                conn_window -= n;
                assert!(
                    stream_window >= 0 && conn_window >= 0,
                    "server exceeded our window: {f:?}"
                );
                r.body.extend_from_slice(data_payload(&f).unwrap());
                r.data_frames.push(f.payload.len());
                if f.has(flag::END_STREAM) {
                    return r;
                }
                if n > 0 {
                    h.window_update(0, n as u32);
                    h.window_update(stream, n as u32);
                    stream_window += n;
                    conn_window += n;
                }
            }
            other => panic!("unexpected {other:?}; seen {:#?}", h.seen),
        }
    }
}

/// DATA payload bytes for `stream` among frames read (by [`H2::ping_barrier`] etc.).
fn data_bytes(ins: &[In], stream: u32) -> usize {
    ins.iter()
        .map(|i| match i {
            In::Frame(f) if f.ty == ty::DATA && f.stream == stream => f.payload.len(),
            _ => 0,
        })
        .sum()
}

/// Reads until DATA on `stream` brought `want` bytes in total (counting `have`), returning
/// the frames; fails on END_STREAM before, or on errors.
fn read_data_until(h: &mut H2, stream: u32, mut have: usize, want: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    while have < want {
        match h.next_significant() {
            In::Frame(f) if f.ty == ty::DATA && f.stream == stream => {
                have += f.payload.len();
                frames.push(f);
            }
            In::Headers { stream: s, .. } if s == stream => {}
            other => panic!("waiting for DATA: {other:?}; seen {:#?}", h.seen),
        }
    }
    assert!(
        have == want,
        "more DATA than the window allowed; seen {:#?}",
        h.seen
    );
    frames
}

all_transports! {
    // §6.9: WINDOW_UPDATE with increment 0 on the connection → connection error PROTOCOL_ERROR
    fn http2_6_9_window_update_zero_connection(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.window_update(0, 0);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
    }

    // §6.9: increment 0 on a stream → stream error PROTOCOL_ERROR
    fn http2_6_9_window_update_zero_stream(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.window_update(1, 0);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
    }

    // §6.9: a WINDOW_UPDATE length other than 4 → connection error FRAME_SIZE_ERROR
    fn http2_6_9_window_update_wrong_length(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.send_frame(ty::WINDOW_UPDATE, 0, 0, &[0, 0, 1]);
        h.expect_connection_error(code::FRAME_SIZE_ERROR);
        env.assert_serves();
    }

    // §6.9.1: with SETTINGS_INITIAL_WINDOW_SIZE = 1 the server sends 1-byte DATA frames, and
    // only as far as WINDOW_UPDATEs allow
    fn http2_6_9_1_initial_window_1_byte(d) {
        let env = Env::start(d, "");
        let mut h = H2::open_with(env.addr, &[(setting::INITIAL_WINDOW_SIZE, 1)]);
        h.get(1, "/mock");
        let first = read_data_until(&mut h, 1, 0, 1);
        assert!(first.iter().all(|f| !f.has(flag::END_STREAM)));
        let before = h.ping_barrier();
        assert_eq!(data_bytes(&before, 1), 0, "DATA beyond a window of 1: {before:?}");
        h.window_update(1, 2);
        let next = read_data_until(&mut h, 1, 1, 3);
        assert!(next.iter().all(|f| f.payload.len() <= 2));
        let before = h.ping_barrier();
        assert_eq!(data_bytes(&before, 1), 0, "DATA beyond the window: {before:?}");
        h.window_update(1, 100);
        let r = read_flow_checked(&mut h, 1, 97, 65_535 - 3);
        let mut body: Vec<u8> = first.iter().chain(next.iter()).flat_map(|f| f.payload.clone()).collect();
        body.extend_from_slice(&r.body);
        assert_eq!(body, b"mocked");
    }

    // §6.9.1: a connection window beyond 2^31-1 → connection error FLOW_CONTROL_ERROR
    fn http2_6_9_1_connection_window_overflow(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.window_update(0, 0x7fff_ffff);
        h.expect_connection_error(code::FLOW_CONTROL_ERROR);
        env.assert_serves();
    }

    // §6.9.1: a stream window beyond 2^31-1 → stream error FLOW_CONTROL_ERROR
    fn http2_6_9_1_stream_window_overflow(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.window_update(1, 0x7fff_ffff);
        h.expect_rst(1, code::FLOW_CONTROL_ERROR);
        h.expect_alive();
    }

    // §6.9.2: a change of SETTINGS_INITIAL_WINDOW_SIZE applies to open streams: a stream stalled
    // on window 0 goes on when it is raised
    fn http2_6_9_2_initial_window_change_applies_to_open_streams(d) {
        let env = Env::start(d, "");
        let mut h = H2::open_with(env.addr, &[(setting::INITIAL_WINDOW_SIZE, 0)]);
        h.get(1, "/mock");
        let before = h.ping_barrier();
        if !before.iter().any(|i| matches!(i, In::Headers { stream: 1, .. })) {
            // HEADERS are not flow controlled, but may come after the barrier
            let next = h.next_significant();
            assert!(matches!(next, In::Headers { stream: 1, .. }), "{next:?}");
        }
        assert_eq!(data_bytes(&before, 1), 0, "DATA with a window of 0: {before:?}");
        h.settings(&[(setting::INITIAL_WINDOW_SIZE, 100)]);
        let r = read_flow_checked(&mut h, 1, 100, 65_535);
        assert_eq!(r.body, b"mocked");
    }

    // §6.9.2: a smaller SETTINGS_INITIAL_WINDOW_SIZE can make a window negative: the server
    // waits until WINDOW_UPDATEs bring it above zero
    fn http2_6_9_2_negative_window(d) {
        let env = Env::start(d, "");
        let mut h = H2::open_with(env.addr, &[(setting::INITIAL_WINDOW_SIZE, 3)]);
        h.get(1, "/mock");
        read_data_until(&mut h, 1, 0, 3);
        h.settings(&[(setting::INITIAL_WINDOW_SIZE, 1)]); // window 1 - 3 = -2
        h.window_update(1, 2); // 0
        let before = h.ping_barrier();
        assert_eq!(data_bytes(&before, 1), 0, "DATA on a window of -2 + 2 = 0: {before:?}");
        h.window_update(1, 1); // 1
        read_data_until(&mut h, 1, 3, 4);
        let before = h.ping_barrier();
        assert_eq!(data_bytes(&before, 1), 0, "DATA beyond the window: {before:?}");
        h.window_update(1, 100);
        read_flow_checked(&mut h, 1, 100, 65_535 - 4);
    }

    // §6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change that pushes an open stream's window past
    // 2^31-1 → connection error FLOW_CONTROL_ERROR
    fn http2_6_9_2_initial_window_change_overflows_stream(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.window_update(1, 0x7fff_ffff - 65_535); // the stream window is now exactly 2^31-1
        h.expect_alive();
        h.settings(&[(setting::INITIAL_WINDOW_SIZE, 65_536)]);
        h.expect_connection_error(code::FLOW_CONTROL_ERROR);
        env.release();
        env.assert_serves();
    }

    // §6.9: a large response is streamed within our windows and frame size, and a large
    // request body within the server's (both ways, the client reading as it goes)
    fn http2_6_9_large_bodies_both_ways(d) {
        let env = Env::with_origin(d, "", common::Origin::start(|r| {
            if r.method == "POST" {
                Reply::ok(&r.body.len().to_string())
            } else {
                Reply::Stream(1 << 20)
            }
        }), false);
        let mut h = env.h2();
        h.get(1, "/api/large");
        let r = read_flow_checked(&mut h, 1, 65_535, 65_535);
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 1 << 20);
        // Reply::Stream repeats a 64 KiB chunk of the pattern i % 251
        assert!(r.body.iter().enumerate().all(|(i, b)| *b == ((i % 65_536) % 251) as u8), "body bytes intact");
        let body: Vec<u8> = (0..(1u32 << 20) + 7).map(|i| (i % 241) as u8).collect();
        h.headers(3, &post("/api/upload", body.len()), 0);
        h.send_body(3, &body, true);
        let r = h.response(3);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), body.len().to_string());
        let reqs = env.o.requests();
        assert_eq!(reqs[1].body, body, "the origin got the body intact");
    }

    // §6.10: a field block split over HEADERS and several CONTINUATION frames
    fn http2_6_10_multiple_continuation_ok(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let b = Block::request("GET", "/api/cont").lit("x-one", "1").lit("x-two", "2");
        let bytes = b.bytes();
        let (a, rest) = bytes.split_at(10);
        let (m, z) = rest.split_at(10);
        h.send_frame(ty::HEADERS, flag::END_STREAM, 1, a);
        h.send_frame(ty::CONTINUATION, 0, 1, m);
        h.send_frame(ty::CONTINUATION, flag::END_HEADERS, 1, z);
        assert_eq!(h.response(1).status, 200);
        let reqs = env.o.requests();
        assert_eq!(reqs[0].target, "/api/cont");
        assert_eq!(reqs[0].header("x-one"), Some("1"));
        assert_eq!(reqs[0].header("x-two"), Some("2"));
    }

    // §6.10: a frame other than CONTINUATION inside a field block → PROTOCOL_ERROR
    fn http2_6_10_continuation_interleaved_with_other_frame(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let b = Block::request("GET", "/api/x");
        let (a, z) = b.bytes().split_at(5);
        h.send_frame(ty::HEADERS, flag::END_STREAM, 1, a);
        h.ping(*b"between!");
        h.send_frame(ty::CONTINUATION, flag::END_HEADERS, 1, z);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §6.10: CONTINUATION on stream 0 → PROTOCOL_ERROR
    fn http2_6_10_continuation_on_stream_0(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let b = Block::request("GET", "/api/x");
        let (a, z) = b.bytes().split_at(5);
        h.send_frame(ty::HEADERS, flag::END_STREAM, 1, a);
        h.send_frame(ty::CONTINUATION, flag::END_HEADERS, 0, z);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §6.10: CONTINUATION of another stream → PROTOCOL_ERROR
    fn http2_6_10_continuation_other_stream(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let b = Block::request("GET", "/api/x");
        let (a, z) = b.bytes().split_at(5);
        h.send_frame(ty::HEADERS, flag::END_STREAM, 1, a);
        h.send_frame(ty::CONTINUATION, flag::END_HEADERS, 3, z);
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // §6.10: CONTINUATION after a HEADERS that had END_HEADERS → PROTOCOL_ERROR
    fn http2_6_10_continuation_after_end_headers(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        h.send_frame(ty::CONTINUATION, flag::END_HEADERS, 1, Block::new().lit("x", "y").bytes());
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.release();
        env.assert_serves();
    }

    // §6.10: CONTINUATION after a CONTINUATION with END_HEADERS → PROTOCOL_ERROR
    fn http2_6_10_continuation_after_continuation_end_headers(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        let b = Block::request("GET", "/api/held");
        let (a, z) = b.bytes().split_at(5);
        h.send_frame(ty::HEADERS, flag::END_STREAM, 1, a);
        h.send_frame(ty::CONTINUATION, flag::END_HEADERS, 1, z);
        h.send_frame(ty::CONTINUATION, flag::END_HEADERS, 1, Block::new().lit("x", "y").bytes());
        h.expect_connection_error(code::PROTOCOL_ERROR);
        env.release();
        env.assert_serves();
    }

    // §8.1: a request body in several DATA frames reaches the origin intact, with the length
    fn http2_8_1_post_body_forwarded(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/post", 11).lit("content-type", "text/plain"), 0);
        h.data(1, b"hello ", false);
        h.data(1, b"world", true);
        let r = h.response(1);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "POST /api/post");
        let reqs = env.o.requests();
        assert_eq!(reqs[0].body, b"hello world");
        assert_eq!(reqs[0].header("content-type"), Some("text/plain"));
    }

    // §8.1: without content-length the body ends with END_STREAM; the origin gets it whole
    fn http2_8_1_post_without_content_length(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("POST", "/api/post"), 0);
        h.data(1, b"abc", false);
        h.data(1, b"def", true);
        assert_eq!(h.response(1).status, 200);
        assert_eq!(env.o.requests()[0].body, b"abcdef");
    }

    // §8.1: trailers (HEADERS with END_STREAM after the body) end the request
    fn http2_8_1_trailers(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("POST", "/api/trailers").lit("te", "trailers"), 0);
        h.data(1, b"abc", false);
        h.headers(1, &Block::new().lit("x-checksum", "42"), flag::END_STREAM);
        assert_eq!(h.response(1).status, 200);
        assert_eq!(env.o.requests()[0].body, b"abc");
    }

    // §8.1: a second HEADERS that does not end the stream → stream error PROTOCOL_ERROR
    fn http2_8_1_second_headers_without_end_stream(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("POST", "/api/x"), 0);
        h.data(1, b"abc", false);
        h.headers(1, &Block::new().lit("x-trailer", "1"), 0);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.1: pseudo-header fields in trailers → stream error PROTOCOL_ERROR
    fn http2_8_1_trailers_with_pseudo_header(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("POST", "/api/x"), 0);
        h.data(1, b"abc", false);
        h.headers(1, &Block::new().lit(":method", "GET"), flag::END_STREAM);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.1.1: more DATA than content-length → stream error PROTOCOL_ERROR, nothing forwarded
    fn http2_8_1_1_content_length_more_data(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/x", 4), 0);
        h.data(1, b"abcde", true);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.1.1: more DATA than content-length over several frames
    fn http2_8_1_1_content_length_more_data_multiple_frames(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/x", 6), 0);
        h.data(1, b"abc", false);
        h.data(1, b"defg", true);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.1.1: less DATA than content-length at END_STREAM → stream error PROTOCOL_ERROR
    fn http2_8_1_1_content_length_less_data(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/x", 10), 0);
        h.data(1, b"abcd", true);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.1.1: a content-length on a request that ends with its HEADERS
    fn http2_8_1_1_content_length_without_data(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/x", 5), flag::END_STREAM);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.1.1 with a body larger than the stream window (so the gateway must start streaming
    // it upstream before it ends): a shortfall at END_STREAM resets the stream and the origin
    // never gets a complete request (its connection is aborted mid-body)
    fn http2_8_1_1_content_length_less_data_large_body(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/short", 200_000), 0);
        h.send_body(1, &vec![b's'; 150_000], true);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        assert_eq!(h.get_response(3, "/api/probe").status, 200);
        let reqs = env.o.requests();
        let targets: Vec<&str> = reqs.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(targets, ["/api/probe"], "no complete request of the short body reached the origin");
    }

    // §8.1.1, larger than the window: the DATA frame crossing the declared length is refused
    // whole, so the origin never gets the declared length (nor anything past it)
    fn http2_8_1_1_content_length_more_data_large_body(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &post("/api/long", 100_000), 0);
        h.send_body(1, &vec![b'l'; 16_384 * 7], true);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        assert_eq!(h.get_response(3, "/api/probe").status, 200);
        let reqs = env.o.requests();
        let targets: Vec<&str> = reqs.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(targets, ["/api/probe"], "no complete request of the long body reached the origin");
    }

    // §8.2: uppercase field names → stream error PROTOCOL_ERROR
    fn http2_8_2_uppercase_field_name(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/x").lit("X-Upper", "1"), flag::END_STREAM);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.2.1: names with characters outside the token set (space, colon, empty) are malformed
    fn http2_8_2_1_invalid_field_names(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let mut id = 1;
        for name in [&b"x y"[..], b"x:y", b"", b"x\x7f"] {
            let b = Block::request("GET", "/api/x").lit_bytes(name, b"1");
            h.headers(id, &b, flag::END_STREAM);
            h.expect_rst(id, code::PROTOCOL_ERROR);
            id += 2;
        }
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.2.1: CR, LF or NUL in a value → stream error PROTOCOL_ERROR (never a smuggled line
    // in the HTTP/1.1 request upstream)
    fn http2_8_2_1_cr_lf_nul_in_value(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let mut id = 1;
        for value in [&b"a\rb"[..], b"a\nb", b"a\0b", b"a\r\nx-injected: 1"] {
            let b = Block::request("GET", "/api/x").lit_bytes(b"x-value", value);
            h.headers(id, &b, flag::END_STREAM);
            h.expect_rst(id, code::PROTOCOL_ERROR);
            id += 2;
        }
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.2.1: a value starting or ending with whitespace is malformed
    fn http2_8_2_1_whitespace_around_value(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let mut id = 1;
        for value in [" a", "a ", "\ta"] {
            h.headers(id, &Block::request("GET", "/api/x").lit("x-value", value), flag::END_STREAM);
            h.expect_rst(id, code::PROTOCOL_ERROR);
            id += 2;
        }
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.2.2: connection-specific fields → stream error PROTOCOL_ERROR, each one; nothing
    // reaches the origin
    fn http2_8_2_2_connection_specific_fields(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let mut id = 1;
        for (name, value) in [
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "gzip"),
            ("te", "trailers, gzip"),
        ] {
            h.headers(id, &Block::request("GET", "/api/x").lit(name, value), flag::END_STREAM);
            h.expect_rst(id, code::PROTOCOL_ERROR);
            id += 2;
        }
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.2.2: TE: trailers is the one allowed TE
    fn http2_8_2_2_te_trailers_allowed(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/te").lit("te", "trailers"), flag::END_STREAM);
        assert_eq!(h.response(1).status, 200);
        assert_eq!(env.o.requests()[0].target, "/api/te");
    }

    // §8.2.3: cookie crumbs are joined with "; " into one field for HTTP/1.1; §8.3.1:
    // :authority becomes Host
    fn http2_8_2_3_cookie_crumbs_joined_and_authority_to_host(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let b = Block::request("GET", "/api/c").lit("cookie", "a=1").lit("x-mid", "m").lit("cookie", "b=2");
        h.headers(1, &b, flag::END_STREAM);
        assert_eq!(h.response(1).status, 200);
        let req = &env.o.requests()[0];
        assert_eq!(req.header_count("cookie"), 1, "{}", req.head_text());
        assert_eq!(req.header("cookie"), Some("a=1; b=2"));
        assert_eq!(req.header_count("host"), 1);
        assert_eq!(req.header("host"), Some("localhost"));
        assert_eq!(req.version, 1);
    }

    // §8.3: an unknown pseudo-header field → stream error PROTOCOL_ERROR
    fn http2_8_3_unknown_pseudo_header(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/x").lit(":unknown", "1"), flag::END_STREAM);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.3: a response pseudo-header (:status) in a request → stream error PROTOCOL_ERROR
    fn http2_8_3_response_pseudo_header_in_request(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/x").lit(":status", "200"), flag::END_STREAM);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.3: a pseudo-header after a regular field → stream error PROTOCOL_ERROR
    fn http2_8_3_pseudo_header_after_regular(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let b = Block::new()
            .lit(":method", "GET")
            .lit(":scheme", common::proto())
            .lit("x-regular", "1")
            .lit(":authority", "localhost")
            .lit(":path", "/api/x");
        h.headers(1, &b, flag::END_STREAM);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.3.1: an empty :path → stream error PROTOCOL_ERROR
    fn http2_8_3_1_empty_path(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", ""), flag::END_STREAM);
        h.expect_rst(1, code::PROTOCOL_ERROR);
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.3.1: each of :method, :scheme, :path missing → stream error PROTOCOL_ERROR
    fn http2_8_3_1_missing_pseudo_headers(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let all = [(":method", "GET"), (":scheme", common::proto()), (":authority", "localhost"), (":path", "/api/x")];
        let mut id = 1;
        for missing in [":method", ":scheme", ":path"] {
            let mut b = Block::new();
            for (n, v) in all.iter().filter(|(n, _)| *n != missing) {
                b = b.lit(n, v);
            }
            h.headers(id, &b, flag::END_STREAM);
            h.expect_rst(id, code::PROTOCOL_ERROR);
            id += 2;
        }
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // §8.3.1: each of :method, :scheme, :path duplicated → stream error PROTOCOL_ERROR
    fn http2_8_3_1_duplicate_pseudo_headers(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let mut id = 1;
        for (n, v) in [(":method", "GET"), (":scheme", common::proto()), (":path", "/api/y")] {
            h.headers(id, &Block::request("GET", "/api/x").lit(n, v), flag::END_STREAM);
            h.expect_rst(id, code::PROTOCOL_ERROR);
            id += 2;
        }
        h.expect_alive();
        env.assert_origin_untouched();
    }

    // RFC 7541 §2.3.3: an indexed field beyond both tables → COMPRESSION_ERROR
    fn hpack_2_3_3_index_out_of_range(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/x").indexed(70), flag::END_STREAM);
        h.expect_connection_error(code::COMPRESSION_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // RFC 7541 §2.3.3: a literal whose name index is beyond both tables → COMPRESSION_ERROR
    fn hpack_2_3_3_name_index_out_of_range(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/x").lit_indexed_name(70, "v"), flag::END_STREAM);
        h.expect_connection_error(code::COMPRESSION_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // RFC 7541 §6.1: index 0 is not used → COMPRESSION_ERROR
    fn hpack_6_1_index_zero(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/x").indexed(0), flag::END_STREAM);
        h.expect_connection_error(code::COMPRESSION_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // RFC 7541 §4.2 / §6.3: a table size update above SETTINGS_HEADER_TABLE_SIZE (4096 by
    // default) → COMPRESSION_ERROR
    fn hpack_4_2_size_update_above_limit(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let b = Block::new().size_update(4097).raw(Block::request("GET", "/api/x").bytes());
        h.headers(1, &b, flag::END_STREAM);
        h.expect_connection_error(code::COMPRESSION_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // RFC 7541 §4.2: a size update after the first field of a block → COMPRESSION_ERROR
    fn hpack_4_2_size_update_after_field(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/x").size_update(0), flag::END_STREAM);
        h.expect_connection_error(code::COMPRESSION_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // RFC 7541 §5.2: Huffman padding longer than 7 bits → COMPRESSION_ERROR
    fn hpack_5_2_huffman_padding_too_long(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        // 'a' = 00011, then 11 bits of 1s
        h.headers(1, &Block::request("GET", "/api/x").huffman_value("x-h", &[0x1f, 0xff]), flag::END_STREAM);
        h.expect_connection_error(code::COMPRESSION_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // RFC 7541 §5.2: padding that is not the EOS prefix (zeros) → COMPRESSION_ERROR
    fn hpack_5_2_huffman_padding_not_eos_prefix(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        // 'a' = 00011, then 000
        h.headers(1, &Block::request("GET", "/api/x").huffman_value("x-h", &[0x18]), flag::END_STREAM);
        h.expect_connection_error(code::COMPRESSION_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // RFC 7541 §5.2: the EOS symbol inside a string → COMPRESSION_ERROR
    fn hpack_5_2_huffman_eos_in_string(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/x").huffman_value("x-h", &[0xff, 0xff, 0xff, 0xff]), flag::END_STREAM);
        h.expect_connection_error(code::COMPRESSION_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // RFC 7541 §5.1: an integer beyond the decoder's limit (here a header index of about
    // 2^35) → COMPRESSION_ERROR, not a wrap-around or a panic
    fn hpack_5_1_integer_overflow(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        let b = Block::request("GET", "/api/x").raw(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        h.headers(1, &b, flag::END_STREAM);
        h.expect_connection_error(code::COMPRESSION_ERROR);
        env.assert_serves();
        env.assert_origin_untouched();
    }

    // RFC 9113 §6.5.2 / RFC 7541 §4.2: a client advertising SETTINGS_HEADER_TABLE_SIZE 0 gets
    // responses it can decode with no dynamic table at all
    fn hpack_header_table_size_0_respected(d) {
        let env = Env::start(d, "");
        let mut h = H2::open_with(env.addr, &[(setting::HEADER_TABLE_SIZE, 0)]);
        h.decoder = tollgate::http2::hpack::Decoder::new(0, 1 << 20);
        for id in [1, 3, 5, 7] {
            let r = h.get_response(id, "/api/t");
            assert_eq!(r.status, 200);
            assert_eq!(r.text(), "GET /api/t");
        }
        assert_eq!(h.decoder.table_size(), 0);
    }

    // RFC 7541 §2.3.2 / §6.2.1: the dynamic table spans blocks of a connection: an entry
    // added by one request is used by index (62) in the next; also valid Huffman
    fn hpack_dynamic_table_across_requests(d) {
        let env = Env::start(d, "");
        let mut h = env.h2();
        h.headers(1, &Block::request("GET", "/api/one").incremental("x-tag", "abc"), flag::END_STREAM);
        assert_eq!(h.response(1).status, 200);
        // Huffman "abc" (Appendix B): 00011 100011 00100 = 0x1c 0x64, no padding
        h.headers(3, &Block::request("GET", "/api/two").indexed(62).huffman_value("x-huff", &[0x1c, 0x64]), flag::END_STREAM);
        assert_eq!(h.response(3).status, 200);
        let reqs = env.o.requests();
        assert_eq!(reqs[0].header("x-tag"), Some("abc"));
        assert_eq!(reqs[1].target, "/api/two");
        assert_eq!(reqs[1].header("x-tag"), Some("abc"));
        assert_eq!(reqs[1].header("x-huff"), Some("abc"));
    }
}
