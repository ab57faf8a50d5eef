//! Frame parsing and encoding (RFC 9113 §4.1, §6) from byte slices.

use bytes::{Bytes, BytesMut};

use super::*;

fn head(len: usize, kind: u8, flags: u8, stream: u32) -> Head {
    Head {
        len: len as u32,
        kind,
        flags,
        stream,
    }
}

fn parse_raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Result<Frame, FrameError> {
    parse(
        head(payload.len(), kind, flags, stream),
        Bytes::copy_from_slice(payload),
    )
}

#[test]
fn header_round_trip_and_reserved_bit() {
    let mut b = BytesMut::new();
    put_head(&mut b, 0x01_02_03, 0xfa, 0x5a, 7);
    assert_eq!(&b[..], &[1, 2, 3, 0xfa, 0x5a, 0, 0, 0, 7]);
    let raw: [u8; 9] = [0, 0, 4, 8, 0, 0x80, 0, 0, 1];
    assert_eq!(Head::parse(&raw), head(4, WINDOW_UPDATE, 0, 1));
}

#[test]
fn stream_frames_on_stream_zero_and_connection_frames_on_streams() {
    for kind in [
        DATA,
        HEADERS,
        PRIORITY,
        RST_STREAM,
        CONTINUATION,
        PUSH_PROMISE,
    ] {
        assert_eq!(
            parse_raw(kind, 0, 0, &[0; 5]),
            Err(FrameError::Conn(
                ErrorCode::ProtocolError,
                "stream frame on stream 0"
            )),
            "type {kind}"
        );
    }
    for kind in [SETTINGS, PING, GOAWAY] {
        assert!(matches!(
            parse_raw(kind, 0, 3, &[0; 8]),
            Err(FrameError::Conn(ErrorCode::ProtocolError, _))
        ));
    }
}

#[test]
fn sizes_of_fixed_frames() {
    let fse = |r: Result<Frame, FrameError>| {
        assert!(
            matches!(r, Err(FrameError::Conn(ErrorCode::FrameSizeError, _))),
            "{r:?}"
        )
    };
    fse(parse_raw(PING, 0, 0, &[0; 9]));
    fse(parse_raw(RST_STREAM, 0, 1, &[0; 5]));
    fse(parse_raw(WINDOW_UPDATE, 0, 1, &[0; 5]));
    fse(parse_raw(SETTINGS, 0, 0, &[0; 7]));
    fse(parse_raw(SETTINGS, FLAG_ACK, 0, &[0; 6]));
    fse(parse_raw(GOAWAY, 0, 0, &[0; 4]));
    fse(parse_raw(HEADERS, FLAG_PRIORITY, 1, &[0; 4]));
    fse(parse_raw(DATA, FLAG_PADDED, 1, &[]));
    assert_eq!(
        parse_raw(PRIORITY, 0, 5, &[0; 6]),
        Err(FrameError::Stream(
            5,
            ErrorCode::FrameSizeError,
            "PRIORITY length not 5"
        ))
    );
}

#[test]
fn data_and_headers_padding() {
    assert_eq!(
        parse_raw(DATA, FLAG_PADDED | FLAG_END_STREAM | 0xf0, 1, b"\x02ab\0\0"),
        Ok(Frame::Data {
            stream: 1,
            data: Bytes::from_static(b"ab"),
            end_stream: true,
            flow_len: 5,
        })
    );
    // pad length 0 is fine; pad length = rest of payload is not
    assert!(parse_raw(DATA, FLAG_PADDED, 1, b"\x00").is_ok());
    assert!(matches!(
        parse_raw(DATA, FLAG_PADDED, 1, b"\x01\0"),
        Ok(Frame::Data { flow_len: 2, .. })
    ));
    assert_eq!(
        parse_raw(DATA, FLAG_PADDED, 1, b"\x02\0"),
        Err(FrameError::Conn(
            ErrorCode::ProtocolError,
            "padding exceeds the payload"
        ))
    );
    // HEADERS with priority: padding eating into the priority fields is PROTOCOL_ERROR; a
    // payload too short for them at all is FRAME_SIZE_ERROR
    assert_eq!(
        parse_raw(
            HEADERS,
            FLAG_PADDED | FLAG_PRIORITY,
            1,
            b"\x02\0\0\0\x03\x10\0"
        ),
        Err(FrameError::Conn(
            ErrorCode::ProtocolError,
            "padding exceeds the payload"
        ))
    );
    assert!(parse_raw(
        HEADERS,
        FLAG_PADDED | FLAG_PRIORITY,
        1,
        b"\x01\0\0\0\x03\x10\0"
    )
    .is_ok());
    assert!(matches!(
        parse_raw(HEADERS, FLAG_PADDED | FLAG_PRIORITY, 1, b"\x00\0\0"),
        Err(FrameError::Conn(ErrorCode::FrameSizeError, _))
    ));
    // HEADERS: pad length, priority, fragment, padding
    let payload = b"\x01\x80\0\0\x03\x10\x82\0";
    assert_eq!(
        parse_raw(
            HEADERS,
            FLAG_PADDED | FLAG_PRIORITY | FLAG_END_HEADERS,
            5,
            payload
        ),
        Ok(Frame::Headers {
            stream: 5,
            fragment: Bytes::from_static(b"\x82"),
            end_stream: false,
            end_headers: true,
            priority: Some(Priority {
                dependency: 3,
                exclusive: true,
                weight: 0x10
            }),
        })
    );
}

#[test]
fn settings_values() {
    let mut b = BytesMut::new();
    put_settings(
        &mut b,
        &[
            (SETTINGS_HEADER_TABLE_SIZE, 0),
            (SETTINGS_ENABLE_PUSH, 1),
            (SETTINGS_MAX_CONCURRENT_STREAMS, 9),
            (SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW),
            (SETTINGS_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE),
            (SETTINGS_MAX_HEADER_LIST_SIZE, 7),
            (0x99, 1234),
            (SETTINGS_MAX_CONCURRENT_STREAMS, 10),
        ],
    );
    let h = Head::parse(b[..9].try_into().unwrap());
    let f = parse(h, b.freeze().slice(9..)).unwrap();
    assert_eq!(
        f,
        Frame::Settings {
            ack: false,
            settings: Settings {
                header_table_size: Some(0),
                enable_push: Some(1),
                max_concurrent_streams: Some(10),
                initial_window_size: Some(MAX_WINDOW),
                max_frame_size: Some(MAX_MAX_FRAME_SIZE),
                max_header_list_size: Some(7),
            }
        }
    );
    let one = |id: u16, v: u32| {
        let mut p = id.to_be_bytes().to_vec();
        p.extend(v.to_be_bytes());
        parse_raw(SETTINGS, 0, 0, &p)
    };
    assert!(matches!(
        one(SETTINGS_ENABLE_PUSH, 2),
        Err(FrameError::Conn(ErrorCode::ProtocolError, _))
    ));
    assert!(matches!(
        one(SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW + 1),
        Err(FrameError::Conn(ErrorCode::FlowControlError, _))
    ));
    assert!(matches!(
        one(SETTINGS_MAX_FRAME_SIZE, 16_383),
        Err(FrameError::Conn(ErrorCode::ProtocolError, _))
    ));
    assert!(matches!(
        one(SETTINGS_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE + 1),
        Err(FrameError::Conn(ErrorCode::ProtocolError, _))
    ));
}

#[test]
fn control_frames_round_trip() {
    let mut b = BytesMut::new();
    put_ping(&mut b, true, *b"abcdefgh");
    put_goaway(&mut b, 7, ErrorCode::EnhanceYourCalm, b"calm");
    put_rst_stream(&mut b, 3, ErrorCode::Unknown(0x99));
    put_window_update(&mut b, 0, 1000);
    put_settings_ack(&mut b);
    let mut bytes = b.freeze();
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let h = Head::parse(bytes[..9].try_into().unwrap());
        let payload = bytes.slice(9..9 + h.len as usize);
        bytes = bytes.slice(9 + h.len as usize..);
        frames.push(parse(h, payload).unwrap());
    }
    assert_eq!(
        frames,
        vec![
            Frame::Ping {
                ack: true,
                payload: *b"abcdefgh"
            },
            Frame::GoAway {
                last_stream_id: 7,
                code: ErrorCode::EnhanceYourCalm,
                debug: Bytes::from_static(b"calm")
            },
            Frame::RstStream {
                stream: 3,
                code: ErrorCode::Unknown(0x99)
            },
            Frame::WindowUpdate {
                stream: 0,
                increment: 1000
            },
            Frame::Settings {
                ack: true,
                settings: Settings::default()
            },
        ]
    );
}

#[test]
fn header_block_split_into_continuations() {
    let mut b = BytesMut::new();
    put_header_block(&mut b, 1, &[7; 10], true, 4);
    assert_eq!(
        &b[..],
        &[
            0,
            0,
            4,
            HEADERS,
            FLAG_END_STREAM,
            0,
            0,
            0,
            1,
            7,
            7,
            7,
            7, //
            0,
            0,
            4,
            CONTINUATION,
            0,
            0,
            0,
            0,
            1,
            7,
            7,
            7,
            7, //
            0,
            0,
            2,
            CONTINUATION,
            FLAG_END_HEADERS,
            0,
            0,
            0,
            1,
            7,
            7,
        ][..]
    );
    let mut b = BytesMut::new();
    put_header_block(&mut b, 3, &[], false, 4);
    assert_eq!(&b[..], &[0, 0, 0, HEADERS, FLAG_END_HEADERS, 0, 0, 0, 3]);
}

#[test]
fn error_codes_round_trip() {
    for code in 0..=0xe {
        assert_eq!(ErrorCode::from_u32(code).as_u32(), code);
    }
    assert_eq!(ErrorCode::from_u32(0xe), ErrorCode::Unknown(0xe));
    assert_eq!(ErrorCode::from_u32(0xb).as_str(), "ENHANCE_YOUR_CALM");
}

#[test]
fn unknown_types_are_kept_as_unknown() {
    assert_eq!(
        parse_raw(0x20, 0xff, 0, b"xyz"),
        Ok(Frame::Unknown {
            kind: 0x20,
            stream: 0
        })
    );
}
