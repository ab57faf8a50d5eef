//! The connection state machine from byte slices, grouped by the RFC 9113 sections (and the
//! h2spec groups of the same numbers): each test sends frames and asserts the exact frames
//! queued or the events pushed.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::http2::frame::{self as f, ErrorCode as E};
use crate::http2::testkit::*;

fn limits() -> Limits {
    Limits::default()
}

// ---- 3.4 (h2spec 3.5) connection preface

#[test]
fn server_preface_is_settings_then_connection_window() {
    let mut p = Peer::fresh(limits());
    let out = p.out();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        (out[0].kind, out[0].flags, out[0].stream),
        (f::SETTINGS, 0, 0)
    );
    let params: Vec<(u16, u32)> = out[0]
        .payload
        .chunks(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect();
    assert_eq!(
        params,
        vec![
            (f::SETTINGS_ENABLE_PUSH, 0),
            (f::SETTINGS_MAX_CONCURRENT_STREAMS, 128),
            (f::SETTINGS_INITIAL_WINDOW_SIZE, 65_535),
            (f::SETTINGS_MAX_HEADER_LIST_SIZE, 65_536),
        ]
    );
    assert_eq!((out[1].kind, out[1].stream), (f::WINDOW_UPDATE, 0));
    assert_eq!(out[1].u32_at(0), 8 * 1024 * 1024 - 65_535);
}

#[test]
fn preface_then_settings_is_acknowledged() {
    let mut p = Peer::fresh(limits());
    p.out();
    let mut hello = f::PREFACE.to_vec();
    hello.extend(settings(&[(f::SETTINGS_INITIAL_WINDOW_SIZE, 100)]));
    // byte by byte: a partial preface or frame is kept until complete
    let mut input = BytesMut::new();
    for b in hello {
        input.extend_from_slice(&[b]);
        p.conn.recv_at(&mut input, &mut p.events, p.now).unwrap();
    }
    assert!(input.is_empty());
    let out = p.out();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].kind, out[0].flags), (f::SETTINGS, f::FLAG_ACK));
    assert!(out[0].payload.is_empty());
}

#[test]
fn invalid_preface_is_a_protocol_error() {
    let mut p = Peer::fresh(limits());
    p.out();
    let r = p.send(b"GET / HTTP/1.1\r\n");
    p.expect_goaway(r, E::ProtocolError);
    // nothing more is processed once failed
    assert!(p.send(&settings(&[])).is_err());
    assert!(p.out().is_empty());
}

#[test]
fn first_frame_must_be_settings() {
    for first in [ping(false, [0; 8]), settings_ack(), window_update(0, 1)] {
        let mut p = Peer::fresh(limits());
        p.out();
        let mut hello = f::PREFACE.to_vec();
        hello.extend(first);
        let r = p.send(&hello);
        p.expect_goaway(r, E::ProtocolError);
    }
}

// ---- 4.1 frame format, 4.2 frame size

#[test]
fn unknown_flags_and_the_reserved_bit_are_ignored() {
    let mut p = Peer::default();
    // PING with every flag but ACK set and the reserved stream bit... on stream 0
    let mut frame = raw(f::PING, 0xfe, 0, &[1; 8]);
    frame[5] |= 0x80;
    p.send(&frame).unwrap();
    let out = p.out();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].kind, out[0].flags), (f::PING, f::FLAG_ACK));
    assert_eq!(&out[0].payload[..], &[1; 8]);
}

#[test]
fn frame_over_max_frame_size_is_a_frame_size_error() {
    let mut p = Peer::default();
    p.open_post(1, None);
    let r = p.send(&data(1, &[0; 16_385], false));
    p.expect_goaway(r, E::FrameSizeError);
}

#[test]
fn frame_size_errors_of_fixed_size_frames() {
    for frame in [
        raw(f::PING, 0, 0, &[0; 7]),
        raw(f::SETTINGS, 0, 0, &[0; 5]),
        raw(f::SETTINGS, f::FLAG_ACK, 0, &[0; 6]),
        raw(f::RST_STREAM, 0, 1, &[0; 3]),
        raw(f::WINDOW_UPDATE, 0, 0, &[0; 3]),
        raw(f::GOAWAY, 0, 0, &[0; 7]),
    ] {
        let mut p = Peer::default();
        p.open_get(1);
        let r = p.send(&frame);
        p.expect_goaway(r, E::FrameSizeError);
    }
}

#[test]
fn priority_of_wrong_length_is_a_stream_error() {
    let mut p = Peer::default();
    p.send(&raw(f::PRIORITY, 0, 1, &[0; 4])).unwrap();
    p.expect_rst(1, E::FrameSizeError);
}

// ---- 4.3 header compression

#[test]
fn undecodable_header_block_is_a_compression_error() {
    let mut p = Peer::default();
    // literal with incremental indexing, new name, missing the strings
    let r = p.send(&raw(
        f::HEADERS,
        f::FLAG_END_HEADERS | f::FLAG_END_STREAM,
        1,
        &[0x40],
    ));
    p.expect_goaway(r, E::CompressionError);
    let mut p = Peer::default();
    // index 0 is invalid (RFC 7541 §6.1); an index past the table too (§2.3.3)
    let r = p.send(&raw(f::HEADERS, f::FLAG_END_HEADERS, 1, &[0x80]));
    p.expect_goaway(r, E::CompressionError);
    let mut p = Peer::default();
    let r = p.send(&raw(f::HEADERS, f::FLAG_END_HEADERS, 1, &[0xff, 0x10]));
    p.expect_goaway(r, E::CompressionError);
}

#[test]
fn table_size_update_above_our_setting_is_a_compression_error() {
    let mut p = Peer::default();
    // size update to 4097 (§6.3: above SETTINGS_HEADER_TABLE_SIZE) then :method GET
    let r = p.send(&raw(
        f::HEADERS,
        f::FLAG_END_HEADERS,
        1,
        &[0x3f, 0xe2, 0x1f, 0x82],
    ));
    p.expect_goaway(r, E::CompressionError);
}

// ---- 5.1 stream states

#[test]
fn request_and_response_on_one_stream() {
    let mut p = Peer::default();
    let h = p.headers(1, &get("/hello"), true);
    p.send(&h).unwrap();
    let ev = p.take_events();
    let [Event::Request {
        id: 1,
        fields,
        end_stream: true,
    }] = ev.as_slice()
    else {
        panic!("{ev:?}")
    };
    assert_eq!(&fields.method[..], b"GET");
    assert_eq!(&fields.path[..], b"/hello");
    assert_eq!(fields.authority.as_deref(), Some(&b"example.com"[..]));
    assert_eq!(fields.scheme.as_deref(), Some(&b"https"[..]));
    assert_eq!(p.conn.active_streams(), 1);
    let fields = [(&b"content-type"[..], &b"text/plain"[..])];
    p.conn
        .send_headers(1, 200, fields.into_iter(), false)
        .unwrap();
    let mut body = Bytes::from_static(b"hello");
    assert_eq!(p.conn.send_data(1, &mut body, true), Ok(5));
    let out = p.out();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        (out[0].kind, out[0].flags, out[0].stream),
        (f::HEADERS, f::FLAG_END_HEADERS, 1)
    );
    let mut dec = crate::http2::hpack::Decoder::default();
    let head = dec.decode(&out[0].payload).unwrap();
    assert_eq!(
        (&head[0].name[..], &head[0].value[..]),
        (&b":status"[..], &b"200"[..])
    );
    assert_eq!(
        (&head[1].name[..], &head[1].value[..]),
        (&b"content-type"[..], &b"text/plain"[..])
    );
    assert_eq!(
        (out[1].kind, out[1].flags, &out[1].payload[..]),
        (f::DATA, f::FLAG_END_STREAM, &b"hello"[..])
    );
    // both sides ended: the stream is closed and gone
    assert_eq!(p.conn.active_streams(), 0);
    assert_eq!(
        p.conn.send_data(1, &mut Bytes::new(), true),
        Err(StreamGone)
    );
}

#[test]
fn idle_stream_accepts_only_headers_and_priority() {
    for frame in [
        data(1, b"x", true),
        rst(1, E::Cancel),
        window_update(1, 1),
        raw(f::CONTINUATION, f::FLAG_END_HEADERS, 1, b""),
    ] {
        let mut p = Peer::default();
        let r = p.send(&frame);
        p.expect_goaway(r, E::ProtocolError);
    }
    let mut p = Peer::default();
    p.send(&priority(1, 3)).unwrap();
    assert!(p.out().is_empty());
    p.open_get(1); // PRIORITY left it idle: it can still be opened
}

#[test]
fn half_closed_remote_rejects_data_and_headers_with_stream_closed() {
    let mut p = Peer::default();
    p.open_get(1);
    p.send(&data(1, b"late", false)).unwrap();
    p.expect_rst(1, E::StreamClosed);
    assert!(matches!(
        p.take_events().as_slice(),
        [Event::StreamError {
            id: 1,
            code: E::StreamClosed,
            ..
        }]
    ));

    let mut p = Peer::default();
    p.open_get(3);
    let h = p.headers(3, &[("x-t".into(), "1".into())], true);
    p.send(&h).unwrap();
    p.expect_rst(3, E::StreamClosed);
    // half-closed (remote) still takes WINDOW_UPDATE, PRIORITY and RST_STREAM
    let mut p = Peer::default();
    p.open_get(5);
    p.send(&window_update(5, 10)).unwrap();
    p.send(&priority(5, 0)).unwrap();
    assert!(p.out().is_empty());
    p.send(&rst(5, E::Cancel)).unwrap();
    assert!(p.take_events().contains(&Event::Reset {
        id: 5,
        code: E::Cancel
    }));
}

#[test]
fn closed_stream_after_both_ends_rejects_frames() {
    let mut p = Peer::default();
    p.open_get(1);
    p.conn
        .send_headers(1, 204, std::iter::empty(), true)
        .unwrap();
    p.out();
    // §5.1 closed (h2spec 5.1 "closed: Sends a DATA frame"): connection error STREAM_CLOSED
    let r = p.send(&data(1, b"x", true));
    p.expect_goaway(r, E::StreamClosed);
    let mut p = Peer::default();
    p.open_get(1);
    p.conn
        .send_headers(1, 204, std::iter::empty(), true)
        .unwrap();
    p.out();
    let h = p.headers(1, &get("/"), true);
    let r = p.send(&h);
    p.expect_goaway(r, E::StreamClosed);
}

#[test]
fn frames_after_the_clients_rst_stream() {
    let mut p = Peer::default();
    p.open_post(1, None);
    p.send(&rst(1, E::Cancel)).unwrap();
    assert_eq!(
        p.take_events(),
        vec![Event::Reset {
            id: 1,
            code: E::Cancel
        }]
    );
    assert_eq!(p.conn.send_capacity(1), 0);
    assert_eq!(
        p.conn.send_headers(1, 200, std::iter::empty(), true),
        Err(StreamGone)
    );
    // RST_STREAM and WINDOW_UPDATE on a closed stream are ignored
    p.send(&rst(1, E::Cancel)).unwrap();
    p.send(&window_update(1, 1)).unwrap();
    assert!(p.out().is_empty());
    // DATA after its own RST_STREAM: STREAM_CLOSED (h2spec 5.1 accepts it as a connection
    // error)
    let r = p.send(&data(1, b"x", false));
    p.expect_goaway(r, E::StreamClosed);
}

#[test]
fn frames_in_flight_after_our_reset_are_ignored() {
    let mut p = Peer::default();
    p.open_post(1, None);
    p.conn.reset(1, E::Cancel);
    p.expect_rst(1, E::Cancel);
    p.send(&data(1, b"in flight", false)).unwrap();
    let h = p.headers(1, &[("x-trailer".into(), "1".into())], true);
    p.send(&h).unwrap();
    assert!(p.out().is_empty());
    assert!(p.take_events().is_empty());
    // the trailer block was decoded anyway: the HPACK table is still in step
    p.open_get(3);
}

// ---- 5.1.1 stream identifiers

#[test]
fn even_or_decreasing_stream_ids_are_protocol_errors() {
    let mut p = Peer::default();
    let h = p.headers(2, &get("/"), true);
    let r = p.send(&h);
    p.expect_goaway(r, E::ProtocolError);
    let mut p = Peer::default();
    p.open_get(5);
    let h = p.headers(3, &get("/"), true);
    let r = p.send(&h);
    p.expect_goaway(r, E::ProtocolError);
}

// ---- 5.1.2 concurrency

#[test]
fn streams_over_the_limit_are_refused() {
    let mut p = Peer::new(Limits {
        max_concurrent_streams: 2,
        ..limits()
    });
    p.open_get(1);
    p.open_get(3);
    let h = p.headers(5, &get("/"), true);
    p.send(&h).unwrap();
    p.expect_rst(5, E::RefusedStream);
    assert!(p.take_events().is_empty());
    p.conn
        .send_headers(1, 200, std::iter::empty(), true)
        .unwrap();
    p.out();
    p.open_get(7); // room again
}

// ---- 5.3.1 self-dependency

#[test]
fn a_stream_depending_on_itself_is_a_stream_error() {
    let mut p = Peer::default();
    p.open_post(1, None);
    p.send(&priority(1, 1)).unwrap();
    p.expect_rst(1, E::ProtocolError);
    // on an idle stream no RST_STREAM may be sent (§6.4): a connection error (h2spec 5.3.1/2
    // accepts either)
    let r = p.send(&priority(9, 9));
    p.expect_goaway(r, E::ProtocolError);
    let mut p = Peer::default();
    let mut block = vec![0, 0, 0, 3, 15];
    block.extend(p.block(&get("/")));
    let flags = f::FLAG_END_HEADERS | f::FLAG_END_STREAM | f::FLAG_PRIORITY;
    p.send(&raw(f::HEADERS, flags, 3, &block)).unwrap();
    p.expect_rst(3, E::ProtocolError);
    assert!(p.take_events().is_empty());
    p.open_get(5); // the block was decoded: HPACK in step
}

#[test]
fn headers_with_a_priority_on_another_stream_open_normally() {
    let mut p = Peer::default();
    let mut block = vec![0x80, 0, 0, 1, 200]; // exclusive on stream 1, weight 201
    block.extend(p.block(&get("/p")));
    let flags = f::FLAG_END_HEADERS | f::FLAG_END_STREAM | f::FLAG_PRIORITY;
    p.send(&raw(f::HEADERS, flags, 3, &block)).unwrap();
    let ev = p.take_events();
    assert!(
        matches!(&ev[..], [Event::Request { id: 3, .. }]),
        "{}",
        summary(&ev)
    );
    assert_eq!(ev[0].stream_id(), 3);
    assert!(p.out().is_empty());
}

// ---- 5.5 extensions

#[test]
fn unknown_frames_are_ignored_but_not_inside_a_header_block() {
    let mut p = Peer::default();
    p.send(&raw(0x42, 0xff, 0, b"whatever")).unwrap();
    p.send(&raw(0x42, 0, 1, b"")).unwrap();
    assert!(p.out().is_empty());
    let block = p.block(&get("/"));
    p.send(&raw(f::HEADERS, f::FLAG_END_STREAM, 1, &block))
        .unwrap();
    let r = p.send(&raw(0x42, 0, 1, b""));
    p.expect_goaway(r, E::ProtocolError);
}

// ---- 6.1 DATA

#[test]
fn request_body_with_padding_and_content_length() {
    let mut p = Peer::default();
    p.open_post(1, Some(5));
    // PADDED: pad length 3, "hel", 3 bytes of padding
    p.send(&raw(f::DATA, f::FLAG_PADDED, 1, b"\x03hel\0\0\0"))
        .unwrap();
    p.send(&data(1, b"lo", true)).unwrap();
    assert_eq!(
        p.take_events(),
        vec![
            Event::Data {
                id: 1,
                data: Bytes::from_static(b"hel"),
                end_stream: false
            },
            Event::Data {
                id: 1,
                data: Bytes::from_static(b"lo"),
                end_stream: true
            },
        ]
    );
}

#[test]
fn padding_as_long_as_the_payload_is_a_protocol_error() {
    let mut p = Peer::default();
    p.open_post(1, None);
    let r = p.send(&raw(f::DATA, f::FLAG_PADDED, 1, b"\x03ab"));
    p.expect_goaway(r, E::ProtocolError);
    let mut p = Peer::default();
    let block = p.block(&get("/"));
    let mut payload = vec![200u8];
    payload.extend(block);
    let r = p.send(&raw(
        f::HEADERS,
        f::FLAG_PADDED | f::FLAG_END_HEADERS,
        1,
        &payload,
    ));
    p.expect_goaway(r, E::ProtocolError);
}

#[test]
fn data_on_stream_zero_is_a_protocol_error() {
    let mut p = Peer::default();
    let r = p.send(&data(0, b"x", false));
    p.expect_goaway(r, E::ProtocolError);
}

// ---- 8.1 request framing: content-length both ways, trailers

#[test]
fn body_longer_than_content_length_is_a_stream_error() {
    let mut p = Peer::default();
    p.open_post(1, Some(3));
    p.send(&data(1, b"ab", false)).unwrap();
    p.send(&data(1, b"cd", false)).unwrap();
    p.expect_rst(1, E::ProtocolError);
    let ev = p.take_events();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(
        ev[0],
        Event::Data {
            id: 1,
            data: Bytes::from_static(b"ab"),
            end_stream: false
        }
    );
    assert!(matches!(
        ev[1],
        Event::StreamError {
            id: 1,
            code: E::ProtocolError,
            ..
        }
    ));
}

#[test]
fn body_shorter_than_content_length_is_a_stream_error() {
    let mut p = Peer::default();
    p.open_post(1, Some(3));
    p.send(&data(1, b"ab", true)).unwrap();
    p.expect_rst(1, E::ProtocolError);
    assert!(matches!(
        p.take_events().as_slice(),
        [Event::StreamError { id: 1, .. }]
    ));
    // content-length with END_STREAM on the HEADERS: no Request at all
    let h = p.headers(3, &post("/", Some(1)), true);
    p.send(&h).unwrap();
    p.expect_rst(3, E::ProtocolError);
    assert!(p.take_events().is_empty());
}

#[test]
fn trailers_end_the_request() {
    let mut p = Peer::default();
    p.open_post(1, None);
    p.send(&data(1, b"x", false)).unwrap();
    let h = p.headers(1, &[("x-checksum".into(), "abc".into())], true);
    p.send(&h).unwrap();
    let ev = p.take_events();
    assert_eq!(
        ev[1],
        Event::Trailers {
            id: 1,
            fields: vec![(
                Bytes::from_static(b"x-checksum"),
                Bytes::from_static(b"abc")
            )]
        }
    );
    // trailers without END_STREAM, or with a pseudo-header: stream error PROTOCOL_ERROR
    p.open_post(3, None);
    let h = p.headers(3, &[("x-a".into(), "1".into())], false);
    p.send(&h).unwrap();
    p.expect_rst(3, E::ProtocolError);
    assert!(matches!(
        p.take_events().as_slice(),
        [Event::StreamError { id: 3, .. }]
    ));
    p.open_post(5, None);
    let h = p.headers(5, &[(":path".into(), "/".into())], true);
    p.send(&h).unwrap();
    p.expect_rst(5, E::ProtocolError);
}

#[test]
fn malformed_requests_are_stream_errors_not_connection_errors() {
    let cases: Vec<Vec<(String, String)>> = vec![
        vec![("Host".into(), "x".into())],
        vec![("connection".into(), "close".into())],
        vec![("te".into(), "gzip".into())],
        vec![("x-a".into(), "a\r\nb".into())],
    ];
    let mut p = Peer::default();
    let mut id = 1;
    for extra in cases {
        let mut fields = get("/");
        fields.extend(extra);
        let h = p.headers(id, &fields, true);
        p.send(&h).unwrap();
        p.expect_rst(id, E::ProtocolError);
        assert!(p.take_events().is_empty());
        id += 2;
    }
    p.open_get(id);
}

// ---- 6.4 RST_STREAM

#[test]
fn rst_stream_on_an_open_stream_emits_reset() {
    let mut p = Peer::default();
    p.open_post(1, None);
    p.send(&rst(1, E::Cancel)).unwrap();
    assert_eq!(
        p.take_events(),
        vec![Event::Reset {
            id: 1,
            code: E::Cancel
        }]
    );
    assert_eq!(p.conn.active_streams(), 0);
    assert!(p.out().is_empty());
}

// ---- 6.5 SETTINGS

#[test]
fn settings_values_are_checked() {
    for (params, code) in [
        (vec![(f::SETTINGS_ENABLE_PUSH, 2)], E::ProtocolError),
        (
            vec![(f::SETTINGS_INITIAL_WINDOW_SIZE, 1 << 31)],
            E::FlowControlError,
        ),
        (vec![(f::SETTINGS_MAX_FRAME_SIZE, 16_383)], E::ProtocolError),
        (
            vec![(f::SETTINGS_MAX_FRAME_SIZE, 1 << 24)],
            E::ProtocolError,
        ),
    ] {
        let mut p = Peer::default();
        let r = p.send(&settings(&params));
        p.expect_goaway(r, code);
    }
    let mut p = Peer::default();
    p.send(&settings(&[
        (0xff, 7),
        (f::SETTINGS_MAX_FRAME_SIZE, 16_777_215),
    ]))
    .unwrap();
    let out = p.out();
    assert_eq!(
        (out.len(), out[0].kind, out[0].flags),
        (1, f::SETTINGS, f::FLAG_ACK)
    );
}

#[test]
fn settings_on_a_stream_is_a_protocol_error() {
    let mut p = Peer::default();
    let r = p.send(&raw(f::SETTINGS, 0, 1, b""));
    p.expect_goaway(r, E::ProtocolError);
}

#[test]
fn peer_max_frame_size_splits_our_frames() {
    let mut p = Peer::default();
    p.open_get(1);
    let big = "v".repeat(20_000);
    let fields = [(&b"x-big"[..], big.as_bytes())];
    p.conn
        .send_headers(1, 200, fields.into_iter(), false)
        .unwrap();
    let out = p.out();
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].kind, out[0].flags, out[0].payload.len()),
        (f::HEADERS, 0, 16_384)
    );
    assert_eq!(
        (out[1].kind, out[1].flags),
        (f::CONTINUATION, f::FLAG_END_HEADERS)
    );
    let mut body = Bytes::from(vec![7u8; 20_000]);
    assert_eq!(p.conn.send_data(1, &mut body, true), Ok(20_000));
    let out = p.out();
    assert_eq!(
        out.iter()
            .map(|o| (o.payload.len(), o.flags))
            .collect::<Vec<_>>(),
        vec![(16_384, 0), (3_616, f::FLAG_END_STREAM)]
    );
    // a larger peer max frame size
    let mut p = Peer::default();
    p.send(&settings(&[(f::SETTINGS_MAX_FRAME_SIZE, 32_768)]))
        .unwrap();
    p.open_get(1);
    p.out();
    let mut body = Bytes::from(vec![7u8; 20_000]);
    p.conn.send_data(1, &mut body, false).unwrap();
    assert_eq!(p.out().len(), 1);
}

// ---- 6.7 PING

#[test]
fn ping_is_answered_and_ping_ack_is_not() {
    let mut p = Peer::default();
    p.send(&ping(false, *b"12345678")).unwrap();
    p.send(&ping(true, *b"abcdefgh")).unwrap();
    let out = p.out();
    assert_eq!(
        out,
        vec![Out {
            kind: f::PING,
            flags: f::FLAG_ACK,
            stream: 0,
            payload: Bytes::from_static(b"12345678")
        }]
    );
    let r = p.send(&raw(f::PING, 0, 1, &[0; 8]));
    p.expect_goaway(r, E::ProtocolError);
}

// ---- 6.8 GOAWAY

#[test]
fn peer_goaway_is_an_event_and_ours_refuses_new_streams() {
    let mut p = Peer::default();
    p.send(&raw(f::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0]))
        .unwrap();
    assert_eq!(
        p.take_events(),
        vec![Event::GoAway {
            last_stream_id: 0,
            code: E::NoError
        }]
    );
    p.open_post(1, None);
    p.conn.go_away(E::NoError);
    let out = p.out();
    assert_eq!(
        (out[0].kind, out[0].u32_at(0), out[0].code()),
        (f::GOAWAY, 1, E::NoError)
    );
    let h = p.headers(3, &get("/"), true);
    p.send(&h).unwrap();
    p.expect_rst(3, E::RefusedStream);
    // the stream accepted before goes on
    p.send(&data(1, b"x", true)).unwrap();
    assert_eq!(
        p.take_events(),
        vec![Event::Data {
            id: 1,
            data: Bytes::from_static(b"x"),
            end_stream: true
        }]
    );
}

// ---- 6.9 WINDOW_UPDATE, flow control

#[test]
fn window_update_rules() {
    let mut p = Peer::default();
    let r = p.send(&window_update(0, 0));
    p.expect_goaway(r, E::ProtocolError);
    let mut p = Peer::default();
    p.open_get(1);
    p.send(&window_update(1, 0)).unwrap();
    p.expect_rst(1, E::ProtocolError);
    let mut p = Peer::default();
    let r = p.send(&window_update(0, f::MAX_WINDOW));
    p.expect_goaway(r, E::FlowControlError);
    let mut p = Peer::default();
    p.open_get(1);
    p.send(&window_update(1, f::MAX_WINDOW)).unwrap();
    p.expect_rst(1, E::FlowControlError);
}

#[test]
fn send_windows_limit_and_resume_data() {
    let mut p = Peer::default();
    p.open_get(1);
    p.conn
        .send_headers(1, 200, std::iter::empty(), false)
        .unwrap();
    assert_eq!(p.conn.send_capacity(1), 65_535);
    let mut body = Bytes::from(vec![1u8; 70_000]);
    assert_eq!(p.conn.send_data(1, &mut body, true), Ok(65_535));
    assert_eq!(body.len(), 4_465);
    assert_eq!(p.conn.send_capacity(1), 0);
    assert_eq!(p.conn.send_data(1, &mut body, true), Ok(0));
    p.out();
    p.send(&window_update(1, 10_000)).unwrap();
    assert_eq!(p.take_events(), vec![Event::WindowUpdate { id: 1 }]);
    assert_eq!(
        p.conn.send_capacity(1),
        0,
        "the connection window is still empty"
    );
    p.send(&window_update(0, 3_000)).unwrap();
    assert_eq!(p.take_events(), vec![Event::WindowUpdate { id: 0 }]);
    assert_eq!(p.conn.send_capacity(1), 3_000);
    assert_eq!(p.conn.send_data(1, &mut body, true), Ok(3_000));
    let out = p.out();
    assert_eq!((out.len(), out[0].flags), (1, 0));
}

#[test]
fn initial_window_change_applies_to_open_streams_even_below_zero() {
    let mut p = Peer::default();
    p.open_get(1);
    p.conn
        .send_headers(1, 200, std::iter::empty(), false)
        .unwrap();
    let mut body = Bytes::from(vec![1u8; 1_000]);
    p.conn.send_data(1, &mut body, false).unwrap();
    p.out();
    // 65 535 - 1 000 sent; the window shrinks to 100: now 100 - 1 000 = -900
    p.send(&settings(&[(f::SETTINGS_INITIAL_WINDOW_SIZE, 100)]))
        .unwrap();
    assert_eq!(p.conn.send_capacity(1), 0);
    // the window opens: the stream is woken
    p.send(&window_update(1, 1_000)).unwrap();
    assert_eq!(p.conn.send_capacity(1), 100);
    assert_eq!(p.take_events(), vec![Event::WindowUpdate { id: 1 }]);
    // growing an open window wakes nothing (the sender was not waiting)
    p.send(&settings(&[(f::SETTINGS_INITIAL_WINDOW_SIZE, 200)]))
        .unwrap();
    assert!(p.take_events().is_empty());
    assert_eq!(p.conn.send_capacity(1), 200);
    // a new value overflowing an open stream's window: FLOW_CONTROL_ERROR
    p.send(&window_update(1, f::MAX_WINDOW - 300)).unwrap();
    let r = p.send(&settings(&[(f::SETTINGS_INITIAL_WINDOW_SIZE, 1_000)]));
    p.expect_goaway(r, E::FlowControlError);
}

#[test]
fn receive_windows_are_enforced_and_credited() {
    let mut p = Peer::new(Limits {
        initial_window_size: 16_384,
        connection_window_size: 65_535,
        ..limits()
    });
    p.open_post(1, None);
    p.send(&data(1, &[0; 16_384], false)).unwrap();
    p.take_events();
    p.send(&data(1, b"x", false)).unwrap();
    p.expect_rst(1, E::FlowControlError);
    assert!(matches!(
        p.take_events().as_slice(),
        [Event::StreamError {
            id: 1,
            code: E::FlowControlError,
            ..
        }]
    ));
    // consumed bytes are credited once half a window is owed
    p.open_post(3, None);
    p.send(&data(3, &[0; 8_000], false)).unwrap();
    p.conn.release_capacity(3, 8_000);
    assert!(p.out().is_empty(), "less than half a window owed");
    p.send(&data(3, &[0; 500], false)).unwrap();
    p.conn.release_capacity(3, 500);
    let out = p.out();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        (out[0].kind, out[0].stream, out[0].u32_at(0)),
        (f::WINDOW_UPDATE, 3, 8_500)
    );
}

#[test]
fn connection_window_overrun_is_a_flow_control_error() {
    // one stream: the connection window may stay at 65 535 (clamped() raises it to the sum
    // of the stream windows); it is checked before the stream's
    let mut p = Peer::new(Limits {
        max_concurrent_streams: 1,
        connection_window_size: 65_535,
        ..limits()
    });
    p.open_post(1, None);
    for _ in 0..4 {
        p.send(&data(1, &[0; 16_000], false)).unwrap();
    }
    p.send(&data(1, &[0; 1_535], false)).unwrap();
    let r = p.send(&data(1, &[0; 1], false));
    p.expect_goaway(r, E::FlowControlError);
}

// ---- 6.10 CONTINUATION

#[test]
fn continuation_completes_a_header_block() {
    let mut p = Peer::default();
    let block = p.block(&get("/split"));
    let (a, b) = block.split_at(3);
    p.send(&raw(f::HEADERS, f::FLAG_END_STREAM, 1, a)).unwrap();
    assert!(p.take_events().is_empty());
    p.send(&raw(f::CONTINUATION, 0, 1, &b[..1])).unwrap();
    p.send(&raw(f::CONTINUATION, f::FLAG_END_HEADERS, 1, &b[1..]))
        .unwrap();
    let ev = p.take_events();
    assert!(
        matches!(&ev[..], [Event::Request { id: 1, end_stream: true, fields, .. }] if &fields.path[..] == b"/split")
    );
}

#[test]
fn continuation_rules() {
    // another stream's frame or another type inside a block
    for next in [
        raw(f::CONTINUATION, f::FLAG_END_HEADERS, 3, b""),
        data(1, b"", true),
        ping(false, [0; 8]),
    ] {
        let mut p = Peer::default();
        let block = p.block(&get("/"));
        p.send(&raw(f::HEADERS, 0, 1, &block)).unwrap();
        let r = p.send(&next);
        p.expect_goaway(r, E::ProtocolError);
    }
    // CONTINUATION after a complete block
    let mut p = Peer::default();
    p.open_get(1);
    let r = p.send(&raw(f::CONTINUATION, f::FLAG_END_HEADERS, 1, b""));
    p.expect_goaway(r, E::ProtocolError);
}

// ---- abuse defences

#[test]
fn rapid_reset_closes_the_connection() {
    let mut p = Peer::new(Limits {
        max_resets_per_window: 10,
        ..limits()
    });
    let mut id = 1;
    let r = loop {
        let h = p.headers(id, &get("/"), false);
        p.send(&h).unwrap();
        if let Err(e) = p.send(&rst(id, E::Cancel)) {
            break Err(e);
        }
        id += 2;
        assert!(id < 100, "never fired");
    };
    assert_eq!(id, 21, "the 11th reset fires");
    let e = p.expect_goaway(r, E::EnhanceYourCalm);
    assert_eq!(e.abuse, Some(Abuse::RapidReset));
}

#[test]
fn resets_spread_over_time_are_fine() {
    let mut p = Peer::new(Limits {
        max_resets_per_window: 10,
        reset_window_ms: 1_000,
        ..limits()
    });
    for i in 0..100u32 {
        let id = 2 * i + 1;
        let h = p.headers(id, &get("/"), false);
        p.send(&h).unwrap();
        p.send(&rst(id, E::Cancel)).unwrap();
        p.advance(200);
    }
}

#[test]
fn refusals_count_toward_the_reset_budget() {
    let mut p = Peer::new(Limits {
        max_concurrent_streams: 1,
        max_resets_per_window: 5,
        ..limits()
    });
    p.open_get(1);
    let mut last = Ok(());
    for id in (3..=13).step_by(2) {
        let h = p.headers(id, &get("/"), true);
        last = p.send(&h);
        if last.is_err() {
            assert_eq!(id, 13);
        }
    }
    let e = p.expect_goaway(last, E::EnhanceYourCalm);
    assert_eq!(e.abuse, Some(Abuse::TooManyStreams));
}

#[test]
fn continuation_flood_closes_the_connection() {
    let mut p = Peer::default();
    let block = p.block(&get("/"));
    p.send(&raw(f::HEADERS, 0, 1, &block)).unwrap();
    let mut r = Ok(());
    for n in 1..=17 {
        r = p.send(&raw(f::CONTINUATION, 0, 1, b"\x82"));
        if n < 17 {
            r.unwrap();
        }
    }
    let e = p.expect_goaway(r, E::EnhanceYourCalm);
    assert_eq!(e.abuse, Some(Abuse::ContinuationFlood));
}

#[test]
fn header_block_bytes_are_capped_as_they_arrive() {
    let mut p = Peer::new(Limits {
        max_header_list_size: 20_000,
        ..limits()
    });
    p.send(&raw(f::HEADERS, 0, 1, &[0x82; 16_000])).unwrap();
    let r = p.send(&raw(f::CONTINUATION, 0, 1, &[0x82; 5_000]));
    let e = p.expect_goaway(r, E::EnhanceYourCalm);
    assert_eq!(e.abuse, Some(Abuse::ContinuationFlood));
}

#[test]
fn control_frame_flood_closes_the_connection() {
    let mut p = Peer::new(Limits {
        max_control_frames_per_sec: 50,
        ..limits()
    });
    // the handshake's SETTINGS and SETTINGS ACK counted too
    for _ in 0..48 {
        p.send(&ping(false, [0; 8])).unwrap();
    }
    p.advance(1_000);
    for _ in 0..50 {
        p.send(&ping(false, [0; 8])).unwrap();
    }
    let r = p.send(&ping(false, [0; 8]));
    let e = p.expect_goaway(r, E::EnhanceYourCalm);
    assert_eq!(e.abuse, Some(Abuse::ControlFlood));
}

#[test]
fn empty_data_flood_closes_the_connection() {
    let mut p = Peer::new(Limits {
        max_empty_frames: 3,
        ..limits()
    });
    p.open_post(1, None);
    for _ in 0..3 {
        p.send(&data(1, b"", false)).unwrap();
    }
    assert!(p.take_events().is_empty());
    let r = p.send(&data(1, b"", false));
    let e = p.expect_goaway(r, E::EnhanceYourCalm);
    assert_eq!(e.abuse, Some(Abuse::EmptyFrames));
}

#[test]
fn unread_acks_close_the_connection() {
    let mut p = Peer::new(Limits {
        max_pending_output_bytes: 170,
        ..limits()
    });
    let ten: Vec<u8> = (0..10).flat_map(|_| ping(false, [0; 8])).collect();
    p.send(&ten).unwrap(); // 10 acks of 17 bytes: at the limit
    let r = p.send(&ping(false, [0; 8]));
    let e = p.expect_goaway(r, E::EnhanceYourCalm);
    assert_eq!(e.abuse, Some(Abuse::OutputFlood));
    // taking the output in between resets the count
    let mut p = Peer::new(Limits {
        max_pending_output_bytes: 170,
        ..limits()
    });
    for _ in 0..5 {
        p.send(&ten).unwrap();
        p.out();
    }
}

#[test]
fn header_list_over_the_limit_gets_431() {
    let mut p = Peer::new(Limits {
        max_header_list_size: 200,
        ..limits()
    });
    // encoded under the limit (Huffman), decoded over it
    let mut fields = get("/");
    fields.push(("x-big".into(), "0".repeat(150)));
    let h = p.headers(1, &fields, true);
    assert!(h.len() - 9 <= 200);
    p.send(&h).unwrap();
    assert!(p.take_events().is_empty());
    let out = p.out();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        (out[0].kind, out[0].flags),
        (f::HEADERS, f::FLAG_END_HEADERS)
    );
    let mut dec = crate::http2::hpack::Decoder::default();
    let head = dec.decode(&out[0].payload).unwrap();
    assert_eq!(&head[0].value[..], b"431");
    assert_eq!((out[1].kind, out[1].flags), (f::DATA, f::FLAG_END_STREAM));
    assert_eq!(
        &out[1].payload[..],
        br#"{"message":"Request Header Fields Too Large"}"#
    );
    // the table stayed in step: the next request decodes
    p.open_get(3);
}

#[test]
fn header_list_over_the_limit_without_window_gets_a_bare_431() {
    let mut p = Peer::new(Limits {
        max_header_list_size: 200,
        ..limits()
    });
    p.send(&settings(&[(f::SETTINGS_INITIAL_WINDOW_SIZE, 10)]))
        .unwrap();
    p.out();
    let mut fields = post("/", None);
    fields.push(("x-big".into(), "0".repeat(150)));
    let h = p.headers(1, &fields, false);
    p.send(&h).unwrap();
    let out = p.out();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        (out[0].kind, out[0].flags),
        (f::HEADERS, f::FLAG_END_HEADERS | f::FLAG_END_STREAM)
    );
    let mut dec = crate::http2::hpack::Decoder::default();
    let head = dec.decode(&out[0].payload).unwrap();
    assert_eq!(head.len(), 1);
    assert_eq!(&head[0].value[..], b"431");
    // the request body is not wanted: RST_STREAM NO_ERROR (§8.1), its DATA then ignored
    assert_eq!(
        (out[1].kind, out[1].stream, out[1].code()),
        (f::RST_STREAM, 1, E::NoError)
    );
    p.send(&data(1, b"body", true)).unwrap();
    assert!(p.out().is_empty() && p.take_events().is_empty());
}

#[test]
fn trailers_of_a_stream_reset_mid_block_are_dropped() {
    let mut p = Peer::default();
    p.open_post(1, None);
    let block = p.block(&[("x-t".into(), "1".into())]);
    p.send(&raw(f::HEADERS, f::FLAG_END_STREAM, 1, &block[..1]))
        .unwrap();
    p.conn.reset(1, E::Cancel);
    p.send(&raw(f::CONTINUATION, f::FLAG_END_HEADERS, 1, &block[1..]))
        .unwrap();
    assert!(p.take_events().is_empty());
    p.open_get(3);
}

#[test]
fn idle_connection_is_small() {
    let mut p = Peer::default();
    for id in (1..=99).step_by(2) {
        p.open_post(id, None);
    }
    for id in (1..=99).step_by(2) {
        p.send(&rst(id, E::Cancel)).unwrap();
    }
    p.take_events();
    p.out();
    assert_eq!(
        p.conn.streams.capacity(),
        0,
        "the stream table is freed when empty"
    );
    p.open_get(101);
    p.conn
        .send_headers(101, 204, std::iter::empty(), true)
        .unwrap();
    assert!(p.conn.streams.is_empty() && p.conn.streams.capacity() <= SMALL_STREAM_TABLE);
    p.out();
    // the output was taken: no buffer held between frames
    assert_eq!(p.conn.out.capacity(), 0);
    assert!(p.conn.streams.is_empty() && p.conn.pending.is_none());
    // 496 bytes measured on x86-64
    assert!(
        std::mem::size_of::<Connection>() <= 512,
        "{}",
        std::mem::size_of::<Connection>()
    );
}

// ---- 5.4.1 connection errors, 6.8 GOAWAY's last stream id

#[test]
fn connection_error_goaway_names_the_last_stream() {
    let mut p = Peer::default();
    p.open_get(1);
    p.open_get(7);
    let r = p.send(&raw(f::PING, 0, 0, &[0; 3]));
    p.expect_goaway(r, E::FrameSizeError);
    // the GOAWAY carries 7 and the reason as debug data
    let mut q = Peer::default();
    q.open_get(1);
    q.open_get(7);
    let _ = q.send(&raw(f::PING, 0, 0, &[0; 3]));
    let out = q.out();
    assert_eq!(out[0].u32_at(0), 7);
    assert_eq!(&out[0].payload[8..], b"PING length not 8");
}

#[test]
fn goaway_last_stream_id_never_grows() {
    let mut p = Peer::default();
    p.open_get(1);
    p.conn.go_away(E::NoError);
    p.conn.go_away(E::NoError); // once only
    assert_eq!(p.out().len(), 1);
    let h = p.headers(3, &get("/"), true);
    p.send(&h).unwrap();
    p.expect_rst(3, E::RefusedStream);
    let r = p.send(&window_update(0, 0));
    let e = p.expect_goaway(r, E::ProtocolError);
    assert_eq!(e.abuse, None);
    let mut q = Peer::default();
    q.open_get(1);
    q.conn.go_away(E::NoError);
    let h = q.headers(3, &get("/"), true);
    q.send(&h).unwrap();
    let _ = q.send(&window_update(0, 0));
    let out = q.out();
    let last = out.last().unwrap();
    assert_eq!((last.kind, last.u32_at(0)), (f::GOAWAY, 1));
}

#[test]
fn go_away_before_the_preface_still_requires_it() {
    let mut p = Peer::fresh(limits());
    p.conn.go_away(E::NoError);
    p.out();
    let r = p.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    p.expect_goaway(r, E::ProtocolError);
}

// ---- hpack/ (RFC 7541) through the connection

#[test]
fn hpack_errors_are_compression_errors() {
    for block in [
        &[0x82, 0x3f, 0xe1, 0x1f][..],       // size update after a field (§4.2)
        &[0xbf, 0x7f][..],                   // index 190: past the table (§2.3.3)
        &[0x0f, 0x7f, 0x01, 0x61][..],       // literal with name index past the table
        &[0x00, 0x81, 0xff, 0x01, 0x61][..], // Huffman name: 8 bits of padding (§5.2)
        &[0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x01, 0x61][..], // Huffman EOS (§5.2)
        &[0x00, 0x81, 0x18, 0x01, 0x61][..], // Huffman padding not all ones
        &[0x82, 0x84, 0x86, 0x41][..],       // literal cut short (§6.2.1)
    ] {
        let mut p = Peer::default();
        let r = p.send(&raw(
            f::HEADERS,
            f::FLAG_END_HEADERS | f::FLAG_END_STREAM,
            1,
            block,
        ));
        p.expect_goaway(r, E::CompressionError);
    }
}

#[test]
fn hpack_dynamic_table_spans_blocks_and_streams() {
    let mut p = Peer::default();
    let mut fields = get("/");
    fields.push(("x-custom".into(), "value".into()));
    p.open_get(1);
    let h = p.headers(3, &fields, true);
    p.send(&h).unwrap();
    let h2 = p.headers(5, &fields, true);
    assert!(
        h2.len() < h.len(),
        "the second block indexes the custom field"
    );
    p.send(&h2).unwrap();
    let ev = p.take_events();
    let Event::Request { fields: last, .. } = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        last.fields,
        vec![(
            Bytes::from_static(b"x-custom"),
            Bytes::from_static(b"value")
        )]
    );
}

#[test]
fn a_smaller_header_table_applies_after_the_ack() {
    let mut p = Peer::fresh(Limits {
        header_table_size: 0,
        ..limits()
    });
    let out = p.out();
    assert!(
        out[0].payload.chunks(6).any(|c| c == [0, 1, 0, 0, 0, 0]),
        "advertised 0"
    );
    let mut hello = f::PREFACE.to_vec();
    hello.extend(settings(&[]));
    p.send(&hello).unwrap();
    // before the ACK the client may still index into 4096 bytes
    let mut fields = get("/");
    fields.push(("x-a".into(), "1".into()));
    let h = p.headers(1, &fields, true);
    p.send(&h).unwrap();
    p.send(&settings_ack()).unwrap();
    // after it, the next block must start with a size update (RFC 7541 §4.2)
    let r = p.send(&raw(
        f::HEADERS,
        f::FLAG_END_HEADERS | f::FLAG_END_STREAM,
        3,
        &[0x82, 0x84, 0x86],
    ));
    p.expect_goaway(r, E::CompressionError);
    let mut q = Peer::fresh(Limits {
        header_table_size: 0,
        ..limits()
    });
    q.send(&hello).unwrap();
    q.send(&settings_ack()).unwrap();
    q.enc.set_table_size(0);
    q.open_get(1);
}

#[test]
fn the_peers_header_table_size_bounds_our_encoder() {
    let mut p = Peer::default();
    p.send(&settings(&[(f::SETTINGS_HEADER_TABLE_SIZE, 0)]))
        .unwrap();
    p.open_get(1);
    p.out();
    let fields = [(&b"x-a"[..], &b"1"[..])];
    p.conn
        .send_headers(1, 200, fields.into_iter(), true)
        .unwrap();
    let out = p.out();
    // a size update to 0 first, then nothing indexed
    assert_eq!(out[0].payload[0], 0x20);
    let mut dec = crate::http2::hpack::Decoder::new(0, 1 << 16);
    dec.decode(&out[0].payload).unwrap();
    assert_eq!(dec.table_size(), 0);
}

// ---- 6.9.1 small peer windows

#[test]
fn a_one_byte_window_sends_one_byte() {
    let mut p = Peer::default();
    p.send(&settings(&[(f::SETTINGS_INITIAL_WINDOW_SIZE, 1)]))
        .unwrap();
    p.open_get(1);
    p.out();
    p.conn
        .send_headers(1, 200, std::iter::empty(), false)
        .unwrap();
    let mut body = Bytes::from_static(b"abc");
    assert_eq!(p.conn.send_data(1, &mut body, true), Ok(1));
    let out = p.out();
    assert_eq!(
        (out[1].kind, out[1].flags, &out[1].payload[..]),
        (f::DATA, 0, &b"a"[..])
    );
    // an empty final frame needs no window
    p.send(&settings(&[(f::SETTINGS_INITIAL_WINDOW_SIZE, 0)]))
        .unwrap();
    p.out();
    let mut rest = Bytes::new();
    assert_eq!(p.conn.send_data(1, &mut rest, true), Ok(0));
    let out = p.out();
    assert_eq!(
        (out[0].kind, out[0].flags, out[0].payload.len()),
        (f::DATA, f::FLAG_END_STREAM, 0)
    );
}

// ---- stream lifecycle on our side

#[test]
fn close_stream_resets_what_is_still_open() {
    // complete response, body still arriving: RST_STREAM NO_ERROR (§8.1)
    let mut p = Peer::default();
    p.open_post(1, None);
    p.conn
        .send_headers(1, 413, std::iter::empty(), true)
        .unwrap();
    p.out();
    p.conn.close_stream(1);
    p.expect_rst(1, E::NoError);
    assert_eq!(p.conn.active_streams(), 0);
    // abandoned response: CANCEL
    p.open_get(3);
    p.conn
        .send_headers(3, 200, std::iter::empty(), false)
        .unwrap();
    p.out();
    p.conn.close_stream(3);
    p.expect_rst(3, E::Cancel);
    // finished both ways: nothing to send
    p.open_get(5);
    p.conn
        .send_headers(5, 200, std::iter::empty(), true)
        .unwrap();
    p.out();
    p.conn.close_stream(5);
    assert!(p.out().is_empty());
    // unknown ids are a no-op
    p.conn.close_stream(99);
    p.conn.reset(99, E::Cancel);
    assert!(p.out().is_empty());
}

#[test]
fn data_for_dropped_streams_is_credited_to_the_connection() {
    let mut p = Peer::new(Limits {
        max_concurrent_streams: 1,
        connection_window_size: 65_535,
        ..limits()
    });
    p.open_post(1, None);
    p.conn.reset(1, E::Cancel);
    p.out();
    // the client had 60 000 bytes in flight on stream 1: all dropped, all credited
    for _ in 0..4 {
        p.send(&data(1, &[0; 15_000], false)).unwrap();
    }
    let out = p.out();
    assert!(
        out.iter()
            .any(|o| o.kind == f::WINDOW_UPDATE && o.stream == 0),
        "{out:?}"
    );
    // 45 000 of them credited so far (15 000 still owed, under half the window): the window
    // is back to 65 535 - 60 000 + 45 000
    p.open_post(3, None);
    p.send(&data(3, &[0; 16_000], false)).unwrap();
    for _ in 0..2 {
        p.send(&data(3, &[0; 16_000], false)).unwrap();
    }
    let r = p.send(&data(3, &[0; 3_000], false));
    p.expect_goaway(r, E::FlowControlError);
}

#[test]
fn release_capacity_credits_the_connection_in_large_steps() {
    // 16 streams × 65 535 < 1 MiB: the connection window stays at 1 MiB
    let mut p = Peer::new(Limits {
        max_concurrent_streams: 16,
        connection_window_size: 1 << 20,
        ..limits()
    });
    let mut owed = 0;
    for id in (1..=19).step_by(2) {
        p.open_post(id, None);
        p.send(&data(id, &[0; 16_000], false)).unwrap();
        p.take_events();
        p.conn.release_capacity(id, 16_000);
        p.conn.close_stream(id);
        owed += 16_000;
    }
    let conn_updates: Vec<u32> = p
        .out()
        .iter()
        .filter(|o| o.kind == f::WINDOW_UPDATE && o.stream == 0)
        .map(|o| o.u32_at(0))
        .collect();
    assert_eq!(owed, 160_000);
    assert!(
        conn_updates.is_empty(),
        "under half of 1 MiB owed: {conn_updates:?}"
    );
    for id in (21..=79).step_by(2) {
        p.open_post(id, None);
        p.send(&data(id, &[0; 16_000], false)).unwrap();
        p.take_events();
        p.conn.release_capacity(id, 16_000);
        p.conn.close_stream(id);
    }
    let conn_updates: Vec<u32> = p
        .out()
        .iter()
        .filter(|o| o.kind == f::WINDOW_UPDATE && o.stream == 0)
        .map(|o| o.u32_at(0))
        .collect();
    assert_eq!(conn_updates, vec![528_000]);
}

#[test]
fn releasing_more_than_was_received_never_overflows_the_windows() {
    let mut p = Peer::new(Limits {
        max_concurrent_streams: 1,
        initial_window_size: 16_384,
        connection_window_size: 20_000,
        ..limits()
    });
    p.open_post(1, None);
    p.send(&data(1, &[0; 10_000], false)).unwrap();
    p.take_events();
    p.conn.release_capacity(1, 10_000_000);
    p.conn.release_capacity(1, usize::MAX);
    let out = p.out();
    let incs: Vec<(u32, u32)> = out.iter().map(|o| (o.stream, o.u32_at(0))).collect();
    // only what was delivered is credited: back to full windows, not beyond (the connection
    // window was clamped up to 65 535)
    assert_eq!(incs, vec![(1, 10_000)]);
    assert_eq!(p.conn.recv_owed, 10_000);
    assert!(p.conn.recv_window <= 65_535);
    assert!(p.conn.streams[&1].recv_window <= 16_384);
}

#[test]
fn a_larger_max_frame_size_is_advertised_and_accepted() {
    let mut p = Peer::fresh(Limits {
        max_frame_size: 65_536,
        initial_window_size: 1 << 20,
        ..limits()
    });
    let out = p.out();
    assert!(out[0].payload.chunks(6).any(|c| c == [0, 5, 0, 1, 0, 0]));
    let mut hello = f::PREFACE.to_vec();
    hello.extend(settings(&[]));
    hello.extend(settings_ack());
    p.send(&hello).unwrap();
    p.open_post(1, None);
    p.send(&data(1, &[0; 65_536], false)).unwrap();
    let r = p.send(&data(1, &[0; 65_537], false));
    p.expect_goaway(r, E::FrameSizeError);
}

#[test]
fn trailers_before_the_content_length_is_complete() {
    let mut p = Peer::default();
    p.open_post(1, Some(4));
    p.send(&data(1, b"ab", false)).unwrap();
    let h = p.headers(1, &[("x-a".into(), "1".into())], true);
    p.send(&h).unwrap();
    p.expect_rst(1, E::ProtocolError);
    let ev = p.take_events();
    assert!(
        matches!(ev.last(), Some(Event::StreamError { id: 1, .. })),
        "{ev:?}"
    );
}

#[test]
fn push_promise_from_a_client_is_a_protocol_error() {
    let mut p = Peer::default();
    p.open_get(1);
    let r = p.send(&raw(
        f::PUSH_PROMISE,
        f::FLAG_END_HEADERS,
        1,
        &[0, 0, 0, 2, 0x82],
    ));
    p.expect_goaway(r, E::ProtocolError);
}

// ---- random input: never a panic, memory within the limits

mod prop {
    use proptest::prelude::*;

    use super::*;

    /// One client action, turned into frame bytes by `bytes`.
    #[derive(Debug, Clone)]
    enum Act {
        Headers {
            id: u32,
            pick: u8,
            flags: u8,
        },
        Data {
            id: u32,
            len: u16,
            flags: u8,
        },
        Rst {
            id: u32,
        },
        Window {
            id: u32,
            inc: u32,
        },
        Settings {
            id: u16,
            value: u32,
        },
        Ping {
            ack: bool,
        },
        Priority {
            id: u32,
            dep: u32,
        },
        Continuation {
            id: u32,
            len: u8,
            flags: u8,
        },
        Raw {
            kind: u8,
            flags: u8,
            id: u32,
            payload: Vec<u8>,
        },
        /// The application's side: answer, send, release, reset, close, go away.
        App {
            id: u32,
            what: u8,
        },
    }

    fn act() -> impl Strategy<Value = Act> {
        let id = 0u32..24;
        prop_oneof![
            (id.clone(), any::<u8>(), any::<u8>()).prop_map(|(id, pick, flags)| Act::Headers {
                id,
                pick,
                flags
            }),
            (id.clone(), 0u16..20_000, any::<u8>()).prop_map(|(id, len, flags)| Act::Data {
                id,
                len,
                flags
            }),
            id.clone().prop_map(|id| Act::Rst { id }),
            (
                id.clone(),
                prop_oneof![Just(0u32), Just(1), 0..100_000u32, Just(f::MAX_WINDOW)]
            )
                .prop_map(|(id, inc)| Act::Window { id, inc }),
            (0u16..8, prop_oneof![0..70_000u32, any::<u32>()])
                .prop_map(|(id, value)| Act::Settings { id, value }),
            any::<bool>().prop_map(|ack| Act::Ping { ack }),
            (id.clone(), 0u32..24).prop_map(|(id, dep)| Act::Priority { id, dep }),
            (id.clone(), any::<u8>(), any::<u8>()).prop_map(|(id, len, flags)| Act::Continuation {
                id,
                len,
                flags
            }),
            (
                0u8..12,
                any::<u8>(),
                id.clone(),
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(kind, flags, id, payload)| Act::Raw {
                    kind,
                    flags,
                    id,
                    payload
                }),
            (id, any::<u8>()).prop_map(|(id, what)| Act::App { id, what }),
        ]
    }

    fn fields(pick: u8) -> Vec<(String, String)> {
        let mut f = match pick % 4 {
            0 => get("/"),
            1 => post("/p", Some(u64::from(pick) * 100)),
            2 => post("/p", None),
            _ => vec![("x-trailer".into(), "1".into())],
        };
        match pick / 4 % 8 {
            1 => f.push(("Bad".into(), "x".into())),
            2 => f.push(("cookie".into(), "a=1".into())),
            3 => f.push(("x-big".into(), "v".repeat(usize::from(pick) * 40))),
            4 => f.push(("te".into(), "trailers".into())),
            5 => f.insert(0, ("x-first".into(), "1".into())),
            _ => {}
        }
        f
    }

    fn bytes(p: &mut Peer, a: &Act) -> Vec<u8> {
        match a.clone() {
            Act::Headers { id, pick, flags } => {
                let block = p.block(&fields(pick));
                raw(
                    f::HEADERS,
                    flags & (f::FLAG_END_STREAM | f::FLAG_END_HEADERS),
                    id,
                    &block,
                )
            }
            Act::Data { id, len, flags } => raw(
                f::DATA,
                flags & f::FLAG_END_STREAM,
                id,
                &vec![0; usize::from(len)],
            ),
            Act::Rst { id } => rst(id, E::Cancel),
            Act::Window { id, inc } => window_update(id, inc),
            Act::Settings { id, value } => settings(&[(id, value)]),
            Act::Ping { ack } => ping(ack, [1; 8]),
            Act::Priority { id, dep } => priority(id, dep),
            Act::Continuation { id, len, flags } => {
                raw(f::CONTINUATION, flags, id, &vec![0x82; usize::from(len)])
            }
            Act::Raw {
                kind,
                flags,
                id,
                payload,
            } => raw(kind, flags, id, &payload),
            Act::App { .. } => Vec::new(),
        }
    }

    fn app(p: &mut Peer, id: u32, what: u8, held: &mut Held) {
        held.update(p);
        let c = &mut p.conn;
        match what % 7 {
            0 => {
                let _ = c.send_headers(
                    id,
                    200,
                    [(&b"x-a"[..], &b"1"[..])].into_iter(),
                    what & 8 != 0,
                );
            }
            1 => {
                let mut body = Bytes::from(vec![0u8; usize::from(what) * 300]);
                let _ = c.send_data(id, &mut body, what & 8 != 0);
            }
            2 => {
                let n = usize::from(what) * 100;
                c.release_capacity(id, n);
                if let Some(h) = held.bytes.get_mut(&id) {
                    *h = h.saturating_sub(n);
                }
            }
            3 => {
                c.reset(id, E::Cancel);
                held.bytes.remove(&id);
            }
            4 => {
                c.close_stream(id);
                held.bytes.remove(&id);
            }
            5 => {
                let _ = c.send_trailers(id, [(&b"x-t"[..], &b"1"[..])].into_iter());
            }
            _ => c.go_away(E::NoError),
        }
    }

    /// What the application holds, seen from outside: request body bytes delivered in
    /// `Event::Data` and not released yet, per stream.
    #[derive(Default)]
    struct Held {
        seen: usize,
        bytes: std::collections::HashMap<u32, usize>,
    }

    impl Held {
        /// Takes in the events pushed since the last call.
        fn update(&mut self, p: &Peer) {
            for ev in p.events.get(self.seen..).unwrap_or_default() {
                match ev {
                    Event::Data { id, data, .. } => {
                        *self.bytes.entry(*id).or_default() += data.len();
                    }
                    Event::Reset { id, .. } | Event::StreamError { id, .. } => {
                        self.bytes.remove(id);
                    }
                    _ => {}
                }
            }
            self.seen = p.events.len();
        }
    }

    /// Externally observable bounds: the request body bytes the application holds stay
    /// within the windows we advertised (per stream the larger of our initial window and the
    /// 65 535 a client may assume before our SETTINGS; in all, that times the concurrency
    /// limit), and the output we queued on our own stays within the unread-output limit plus
    /// the frame that crossed it.
    fn check(p: &Peer, l: &Limits, held: &mut Held) {
        held.update(p);
        let per_stream = l.initial_window_size.max(f::DEFAULT_WINDOW) as usize;
        for (id, &n) in &held.bytes {
            assert!(n <= per_stream, "stream {id} holds {n} bytes");
        }
        let total: usize = held.bytes.values().sum();
        assert!(
            total <= per_stream * l.max_concurrent_streams as usize,
            "{total}"
        );
        if p.conn.error().is_none() {
            assert!(p.conn.control_out <= l.max_pending_output_bytes);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn random_frames_never_panic_and_stay_bounded(acts in proptest::collection::vec(act(), 1..60)) {
            let l = Limits {
                max_concurrent_streams: 4,
                max_header_list_size: 2_000,
                max_continuation_frames: 3,
                max_empty_frames: 5,
                max_pending_output_bytes: 400,
                max_resets_per_window: 20,
                ..Limits::default()
            };
            let mut p = Peer::new(l);
            let mut held = Held::default();
            for a in &acts {
                if let Act::App { id, what } = a {
                    app(&mut p, *id, *what, &mut held);
                    check(&p, &l, &mut held);
                    continue;
                }
                let b = bytes(&mut p, a);
                let failed = p.conn.error().is_some();
                let before = p.conn.out.len();
                let r = p.send(&b);
                if failed {
                    prop_assert!(r.is_err());
                    prop_assert_eq!(p.conn.out.len(), before, "nothing more after a connection error");
                }
                check(&p, &l, &mut held);
                if p.conn.out.len() > 100_000 {
                    p.out();
                }
            }
        }

        #[test]
        fn random_bytes_after_the_handshake_never_panic(input in proptest::collection::vec(any::<u8>(), 0..4096), split in 1usize..64) {
            let mut p = Peer::default();
            let mut buf = BytesMut::new();
            for chunk in input.chunks(split) {
                buf.extend_from_slice(chunk);
                if p.conn.recv_at(&mut buf, &mut p.events, p.now).is_err() {
                    break;
                }
            }
            // every complete frame was consumed: what is left is a strict prefix of one
            if p.conn.error().is_none() {
                if let Some(head) = buf.get(..f::HEADER_LEN) {
                    let head = f::Head::parse(head.try_into().unwrap());
                    prop_assert!(buf.len() < f::HEADER_LEN + head.len as usize);
                }
            }
        }

        /// Well-framed frames of any type, flags, stream and payload after a valid preface and
        /// SETTINGS: the frame parsers themselves see random payloads. Never a panic; the
        /// input is consumed whole unless the connection failed, and a failure ends the
        /// output with a GOAWAY.
        #[test]
        fn random_frames_after_the_handshake_never_panic(
            frames in proptest::collection::vec(
                (
                    prop_oneof![0u8..=10, any::<u8>()],
                    any::<u8>(),
                    prop_oneof![0u32..8, any::<u32>()],
                    proptest::collection::vec(any::<u8>(), 0..64),
                ),
                1..40,
            )
        ) {
            let mut p = Peer::fresh(Limits::default());
            p.out();
            let mut bytes = f::PREFACE.to_vec();
            bytes.extend(settings(&[]));
            for (kind, flags, id, payload) in &frames {
                bytes.extend(raw(*kind, *flags, *id, payload));
            }
            let mut buf = BytesMut::from(&bytes[..]);
            let r = p.conn.recv_at(&mut buf, &mut p.events, p.now);
            let out = p.out();
            match r {
                Ok(()) => prop_assert!(buf.is_empty(), "{} bytes left", buf.len()),
                Err(e) => {
                    let last = out.last().expect("a GOAWAY");
                    prop_assert_eq!((last.kind, last.code()), (f::GOAWAY, e.code));
                }
            }
        }
    }
}

// ---- the remaining h2spec cases, one frame sequence each

/// Sends `frames` after the handshake and expects a connection error `code`.
fn conn_error_after(setup: impl FnOnce(&mut Peer) -> Vec<Vec<u8>>, code: E) {
    let mut p = Peer::default();
    let frames = setup(&mut p);
    let (last, first) = frames.split_last().unwrap();
    for frame in first {
        p.send(frame).unwrap();
    }
    let r = p.send(last);
    p.expect_goaway(r, code);
}

#[test]
fn h2spec_4_2_3_headers_over_max_frame_size() {
    conn_error_after(
        |p| {
            let mut fields = get("/");
            fields.push(("x-a".into(), "{".repeat(17_000))); // {: longer in Huffman, sent plain
            let block = p.block(&fields);
            vec![raw(f::HEADERS, f::FLAG_END_HEADERS, 1, &block)]
        },
        E::FrameSizeError,
    );
}

#[test]
fn h2spec_4_3_and_6_2_frames_inside_a_header_block() {
    // PRIORITY, or HEADERS of another stream, while a block is open
    conn_error_after(
        |p| {
            let block = p.block(&get("/"));
            vec![raw(f::HEADERS, 0, 1, &block), priority(1, 0)]
        },
        E::ProtocolError,
    );
    conn_error_after(
        |p| {
            let b1 = p.block(&get("/"));
            let b3 = p.block(&get("/"));
            vec![
                raw(f::HEADERS, 0, 1, &b1),
                raw(f::HEADERS, f::FLAG_END_HEADERS, 3, &b3),
            ]
        },
        E::ProtocolError,
    );
}

#[test]
fn h2spec_stream_zero_frames() {
    for frame in [
        raw(f::HEADERS, f::FLAG_END_HEADERS, 0, &[0x82]), // 6.2/3
        priority(0, 1),                                   // 6.3/1
        rst(0, E::Cancel),                                // 6.4/1
    ] {
        conn_error_after(|_| vec![frame], E::ProtocolError);
    }
    // 6.8/1: GOAWAY on a stream
    conn_error_after(|_| vec![raw(f::GOAWAY, 0, 1, &[0; 8])], E::ProtocolError);
    // 6.10/3: CONTINUATION on stream 0 inside a block
    conn_error_after(
        |p| {
            let block = p.block(&get("/"));
            vec![
                raw(f::HEADERS, 0, 1, &block),
                raw(f::CONTINUATION, f::FLAG_END_HEADERS, 0, b""),
            ]
        },
        E::ProtocolError,
    );
}

#[test]
fn h2spec_6_10_continuation_out_of_place() {
    // 6.10/5: after a CONTINUATION that ended the block
    conn_error_after(
        |p| {
            let block = p.block(&get("/"));
            vec![
                raw(f::HEADERS, f::FLAG_END_STREAM, 1, &block[..1]),
                raw(f::CONTINUATION, f::FLAG_END_HEADERS, 1, &block[1..]),
                raw(f::CONTINUATION, f::FLAG_END_HEADERS, 1, b""),
            ]
        },
        E::ProtocolError,
    );
    // 6.10/6: after a DATA frame
    conn_error_after(
        |p| {
            let h = p.headers(1, &post("/", None), false);
            vec![
                h,
                data(1, b"x", false),
                raw(f::CONTINUATION, f::FLAG_END_HEADERS, 1, b""),
            ]
        },
        E::ProtocolError,
    );
}

#[test]
fn h2spec_6_5_3_the_last_of_several_values_applies() {
    let mut p = Peer::default();
    p.send(&settings(&[
        (f::SETTINGS_INITIAL_WINDOW_SIZE, 100),
        (f::SETTINGS_INITIAL_WINDOW_SIZE, 1),
    ]))
    .unwrap();
    p.open_get(1);
    assert_eq!(p.conn.send_capacity(1), 1);
}

#[test]
fn h2spec_5_1_idle_priority_then_headers_and_closed_priority() {
    // PRIORITY is allowed on idle and closed streams alike
    let mut p = Peer::default();
    p.send(&priority(9, 0)).unwrap();
    p.open_get(1);
    p.conn
        .send_headers(1, 204, std::iter::empty(), true)
        .unwrap();
    p.out();
    p.send(&priority(1, 0)).unwrap();
    assert!(p.out().is_empty());
    // stream 9 was only prioritised: it is still idle, so 3 may open and then 9
    p.open_get(3);
    p.open_get(9);
}

// ---- a well-behaved client never trips a rule, and gets back exactly what it sent

mod model {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        /// Open the next stream: a GET, or a POST whose body follows.
        Open {
            post: bool,
            with_length: bool,
        },
        /// Body bytes on the n-th open stream (ending it when `end`).
        Body {
            pick: usize,
            len: u16,
            end: bool,
        },
        /// Trailers end the n-th stream.
        Trailers {
            pick: usize,
        },
        /// The client cancels the n-th stream.
        Cancel {
            pick: usize,
        },
        /// The application answers the n-th request (with a body of `len`).
        Answer {
            pick: usize,
            len: u16,
        },
        /// The application consumed everything it got.
        Release,
        /// Trailers (or a little DATA) the client had in flight on a stream we stopped early.
        Late {
            pick: usize,
            trailers: bool,
        },
        Ping,
        Settings,
        /// Time passes.
        Wait {
            ms: u16,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (any::<bool>(), any::<bool>()).prop_map(|(post, with_length)| Step::Open { post, with_length }),
            8 => (any::<usize>(), 0u16..20_000, any::<bool>()).prop_map(|(pick, len, end)| Step::Body { pick, len, end }),
            1 => any::<usize>().prop_map(|pick| Step::Trailers { pick }),
            1 => any::<usize>().prop_map(|pick| Step::Cancel { pick }),
            3 => (any::<usize>(), 0u16..40_000).prop_map(|(pick, len)| Step::Answer { pick, len }),
            1 => Just(Step::Release),
            1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, trailers)| Step::Late { pick, trailers }),
            1 => Just(Step::Ping),
            1 => Just(Step::Settings),
            1 => (0u16..3_000).prop_map(|ms| Step::Wait { ms }),
        ]
    }

    /// What the client knows of a stream it opened.
    struct ClientStream {
        /// Its request side is still open (a POST without END_STREAM yet).
        sending: bool,
        /// Declared content-length still to send, if one was declared.
        declared: Option<u64>,
        sent: u64,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn legitimate_traffic_never_fails(steps in proptest::collection::vec(step(), 1..120)) {
            // four streams of 25 000-byte windows and a connection window of their sum (the
            // least clamped() allows), so both limits are reached; a fifth stream is refused
            let initial = 25_000;
            let mut p = Peer::new(Limits {
                max_concurrent_streams: 4,
                initial_window_size: initial,
                connection_window_size: 100_000,
                ..Limits::default()
            });
            // streams we stopped while the client was still sending (RST_STREAM NO_ERROR)
            let mut stopped: Vec<u32> = Vec::new();
            let mut next_id = 1u32;
            let mut streams: HashMap<u32, ClientStream> = HashMap::new();
            let mut received: HashMap<u32, u64> = HashMap::new();
            let mut unreleased: Vec<(u32, usize)> = Vec::new();
            // the client's view of its send windows, from our SETTINGS and WINDOW_UPDATEs
            let mut conn_window: i64 = 100_000;
            let mut windows: HashMap<u32, i64> = HashMap::new();
            let mut answered: Vec<u32> = Vec::new();
            for s in steps {
                let ids: Vec<u32> = {
                    let mut v: Vec<u32> = streams.keys().copied().collect();
                    v.sort();
                    v
                };
                let pick = |n: usize| ids.get(n % ids.len().max(1)).copied();
                match s {
                    Step::Open { post, with_length } => {
                        if streams.len() >= 100 {
                            continue;
                        }
                        let id = next_id;
                        next_id += 2;
                        let declared = (post && with_length).then_some(100_000u64);
                        let fields = if post { super::post("/u", declared) } else { get("/") };
                        let h = p.headers(id, &fields, !post);
                        p.send(&h).unwrap();
                        streams.insert(id, ClientStream { sending: post, declared, sent: 0 });
                        windows.insert(id, i64::from(initial));
                    }
                    Step::Body { pick: n, len, end } => {
                        let Some(id) = pick(n) else { continue };
                        let cs = &streams[&id];
                        if !cs.sending {
                            continue;
                        }
                        let mut len = u64::from(len);
                        if let Some(d) = cs.declared {
                            len = len.min(d - cs.sent);
                        }
                        let room = windows[&id].min(conn_window).max(0) as u64;
                        let len = len.min(room).min(16_384);
                        let end = end && cs.declared.is_none_or(|d| cs.sent + len == d);
                        p.send(&data(id, &vec![7; len as usize], end)).unwrap();
                        conn_window -= len as i64;
                        *windows.get_mut(&id).unwrap() -= len as i64;
                        let cs = streams.get_mut(&id).unwrap();
                        cs.sent += len;
                        cs.sending = !end;
                    }
                    Step::Trailers { pick: n } => {
                        let Some(id) = pick(n) else { continue };
                        let cs = &streams[&id];
                        if !cs.sending || cs.declared.is_some_and(|d| d != cs.sent) {
                            continue;
                        }
                        let h = p.headers(id, &[("x-sum".into(), "1".into())], true);
                        p.send(&h).unwrap();
                        streams.get_mut(&id).unwrap().sending = false;
                    }
                    Step::Cancel { pick: n } => {
                        let Some(id) = pick(n) else { continue };
                        p.send(&rst(id, E::Cancel)).unwrap();
                        streams.remove(&id);
                    }
                    Step::Answer { pick: n, len } => {
                        let Some(id) = pick(n) else { continue };
                        if answered.contains(&id) {
                            continue;
                        }
                        answered.push(id);
                        p.conn.send_headers(id, 200, std::iter::empty(), false).unwrap();
                        let mut body = Bytes::from(vec![1u8; usize::from(len)]);
                        let n = p.conn.send_data(id, &mut body, true).unwrap();
                        prop_assert!(n <= usize::from(len));
                        if body.is_empty() {
                            // answered in full: done on our side (a request body still being
                            // sent is stopped with RST_STREAM NO_ERROR, checked below)
                            p.conn.close_stream(id);
                            if streams.remove(&id).is_some_and(|cs| cs.sending) {
                                stopped.push(id);
                            }
                        }
                    }
                    Step::Release => {
                        for (id, n) in unreleased.drain(..) {
                            p.conn.release_capacity(id, n);
                        }
                    }
                    Step::Late { pick: n, trailers } => {
                        let Some(&id) = stopped.get(n % stopped.len().max(1)) else { continue };
                        if trailers {
                            let h = p.headers(id, &[("x-sum".into(), "1".into())], true);
                            p.send(&h).unwrap();
                            stopped.retain(|&s| s != id);
                        } else {
                            let len = conn_window.clamp(0, 100) as usize;
                            p.send(&data(id, &vec![7; len], false)).unwrap();
                            conn_window -= len as i64;
                        }
                    }
                    Step::Ping => p.send(&ping(false, [3; 8])).unwrap(),
                    Step::Settings => p.send(&settings(&[(f::SETTINGS_MAX_FRAME_SIZE, 20_000)])).unwrap(),
                    Step::Wait { ms } => p.advance(u64::from(ms)),
                }
                // what the server said: windows credited, streams it ended
                for o in p.out() {
                    match o.kind {
                        f::WINDOW_UPDATE if o.stream == 0 => conn_window += i64::from(o.u32_at(0)),
                        f::WINDOW_UPDATE => {
                            if let Some(w) = windows.get_mut(&o.stream) {
                                *w += i64::from(o.u32_at(0));
                            }
                        }
                        // over max_concurrent_streams: refused, the client may retry (§5.1.2)
                        f::RST_STREAM if o.code() == E::RefusedStream => {
                            prop_assert!(streams.remove(&o.stream).is_some());
                            prop_assert!(!received.contains_key(&o.stream));
                        }
                        f::RST_STREAM => {
                            prop_assert_eq!(o.code(), E::NoError, "only a polite stop, never an error");
                            if streams.remove(&o.stream).is_some_and(|cs| cs.sending) {
                                stopped.push(o.stream);
                            }
                        }
                        f::GOAWAY => prop_assert!(false, "GOAWAY {:?}", o.code()),
                        _ => {}
                    }
                }
                for ev in p.take_events() {
                    match ev {
                        Event::Request { id, end_stream, .. } => {
                            prop_assert!(received.insert(id, 0).is_none());
                            let _ = end_stream;
                        }
                        Event::Data { id, data, .. } => {
                            *received.get_mut(&id).unwrap() += data.len() as u64;
                            unreleased.push((id, data.len()));
                        }
                        Event::StreamError { id, reason, .. } => {
                            prop_assert!(false, "stream {} failed: {}", id, reason);
                        }
                        Event::Trailers { .. } | Event::Reset { .. } | Event::WindowUpdate { .. } => {}
                        Event::GoAway { .. } => prop_assert!(false, "no GOAWAY was sent"),
                    }
                }
                for (id, cs) in &streams {
                    prop_assert_eq!(received.get(id).copied(), Some(cs.sent), "stream {}", id);
                }
            }
        }
    }
}

#[test]
fn data_on_forgotten_closed_streams_costs_one_reset_each_and_counts_as_control() {
    let mut p = Peer::new(Limits {
        max_resets_per_window: 2,
        max_control_frames_per_sec: 20,
        ..limits()
    });
    // more closed streams than are remembered: the oldest are forgotten
    for id in (1..=599).step_by(2) {
        p.open_get(id);
        p.conn
            .send_headers(id, 204, std::iter::empty(), true)
            .unwrap();
    }
    p.out();
    // DATA on a forgotten one: a stream error STREAM_CLOSED, no reset counted
    p.send(&data(1, b"x", false)).unwrap();
    p.expect_rst(1, E::StreamClosed);
    // on a remembered one that ended: the connection error of §5.1 closed
    let mut q = Peer::default();
    q.open_get(1);
    q.conn
        .send_headers(1, 204, std::iter::empty(), true)
        .unwrap();
    let r = q.send(&data(1, b"x", false));
    q.expect_goaway(r, E::StreamClosed);
    // a flood of them is a control-frame flood
    let mut r = Ok(());
    for id in (3..=41).step_by(2) {
        r = p.send(&data(id, b"x", false));
        if r.is_err() {
            break;
        }
    }
    let e = p.expect_goaway(r, E::EnhanceYourCalm);
    assert_eq!(e.abuse, Some(Abuse::ControlFlood));
}

#[test]
fn a_reset_burst_straddling_a_bucket_boundary_is_still_counted() {
    let mut p = Peer::new(Limits {
        max_resets_per_window: 10,
        reset_window_ms: 10_000,
        ..limits()
    });
    // buckets are 5 s: six resets just before a boundary, six just after
    p.advance(4_990);
    let mut id = 1;
    for _ in 0..6 {
        let h = p.headers(id, &get("/"), false);
        p.send(&h).unwrap();
        p.send(&rst(id, E::Cancel)).unwrap();
        id += 2;
    }
    p.advance(20);
    let mut r = Ok(());
    for _ in 0..6 {
        let h = p.headers(id, &get("/"), false);
        p.send(&h).unwrap();
        r = p.send(&rst(id, E::Cancel));
        if r.is_err() {
            break;
        }
        id += 2;
    }
    let e = p.expect_goaway(r, E::EnhanceYourCalm);
    assert_eq!(e.abuse, Some(Abuse::RapidReset));
}

#[test]
fn large_request_bodies_are_slices_of_the_input_small_ones_copies() {
    use crate::http2::limits::ZERO_COPY_MIN_BYTES;
    let mut p = Peer::default();
    p.open_post(1, None);
    let small = vec![7u8; ZERO_COPY_MIN_BYTES - 1];
    let large = vec![8u8; ZERO_COPY_MIN_BYTES];
    let mut input = BytesMut::from(&data(1, &small, false)[..]);
    input.extend_from_slice(&data(1, &large, true));
    let base = input.as_ptr() as usize;
    let len = input.len();
    p.conn.recv_at(&mut input, &mut p.events, p.now).unwrap();
    let ev = p.take_events();
    let [Event::Data { data: a, .. }, Event::Data { data: b, .. }] = ev.as_slice() else {
        panic!("{}", summary(&ev))
    };
    let inside = |d: &Bytes| {
        let at = d.as_ptr() as usize;
        at >= base && at + d.len() <= base + len
    };
    // a small payload must not pin the read buffer; a large one is not copied
    assert!(!inside(a), "a small payload is a copy");
    assert!(inside(b), "a large payload is a slice of the input");
    assert_eq!((&a[..], &b[..]), (&small[..], &large[..]));
}
