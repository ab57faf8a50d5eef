//! Tests of the review fixes: frames on streams we reset or refused are counted, request bodies
//! and header blocks do not pin the read buffer, WINDOW_UPDATE/SETTINGS cannot amplify into
//! events, closed streams are remembered well beyond the concurrency limit, unreleased body
//! bytes come back with their stream, and the limits' clamps.

use std::mem::size_of;

use bytes::BytesMut;

use super::*;
use crate::http2::frame::{self as f, ErrorCode as E};
use crate::http2::testkit::*;

fn calm(r: Result<(), ConnError>, p: &mut Peer, abuse: Abuse) {
    let e = p.expect_goaway(r, E::EnhanceYourCalm);
    assert_eq!(e.abuse, Some(abuse), "{e:?}");
}

/// Sends `frame()` until the connection fails (at most `max` times).
fn flood(
    p: &mut Peer,
    max: usize,
    mut frame: impl FnMut(&mut Peer, usize) -> Vec<u8>,
) -> Result<(), ConnError> {
    for i in 0..max {
        let b = frame(p, i);
        p.send(&b)?;
        p.out();
    }
    Ok(())
}

// ---- MUST 1: frames on streams we reset or refuse cost work: counted

#[test]
fn headers_on_a_stream_we_reset_count_as_resets() {
    let mut p = Peer::new(Limits {
        max_resets_per_window: 10,
        ..Limits::default()
    });
    p.open_post(1, None);
    p.conn.reset(1, E::Cancel);
    p.out();
    let trailers = [("x-t".to_string(), "1".to_string())];
    let r = flood(&mut p, 50, |p, _| p.headers(1, &trailers, true));
    calm(r, &mut p, Abuse::RapidReset);
}

#[test]
fn headers_after_our_goaway_count_as_resets() {
    let mut p = Peer::new(Limits {
        max_resets_per_window: 10,
        ..Limits::default()
    });
    p.conn.go_away(E::NoError);
    p.out();
    let r = flood(&mut p, 50, |p, i| {
        p.headers(2 * i as u32 + 1, &get("/"), true)
    });
    calm(r, &mut p, Abuse::RapidReset);
    // the refusals before it were REFUSED_STREAM, no request reached the application
    assert!(p.take_events().is_empty());
}

#[test]
fn data_on_a_stream_we_reset_counts_as_control_and_empty_data_as_empty() {
    let setup = || {
        let mut p = Peer::new(Limits {
            max_control_frames_per_sec: 20,
            max_empty_frames: 20,
            ..Limits::default()
        });
        p.open_post(1, None);
        p.conn.reset(1, E::Cancel);
        p.out();
        p
    };
    let mut p = setup();
    let r = flood(&mut p, 100, |_, _| data(1, b"x", false));
    calm(r, &mut p, Abuse::ControlFlood);
    let mut p = setup();
    let r = flood(&mut p, 100, |_, _| data(1, b"", false));
    calm(r, &mut p, Abuse::EmptyFrames);
}

// ---- MUST 2: what the application keeps does not pin the read buffer

#[test]
fn header_values_are_not_slices_of_the_read_buffer() {
    let mut p = Peer::default();
    let mut fields = get("/");
    // "{" is longer in Huffman: sent as a plain literal, a zero-copy candidate
    fields.push(("x-plain".into(), "{".repeat(40)));
    let mut input = BytesMut::from(&p.headers(1, &fields, true)[..]);
    input.extend_from_slice(&[0; 8192]); // a read buffer holding more than the block
    input.truncate(input.len() - 8192);
    let base = input.as_ptr() as usize;
    let end = base + input.capacity();
    p.conn.recv_at(&mut input, &mut p.events, p.now).unwrap();
    let ev = p.take_events();
    let [Event::Request { fields, .. }] = ev.as_slice() else {
        panic!("{}", summary(&ev))
    };
    let (_, v) = fields
        .fields
        .iter()
        .find(|(n, _)| &n[..] == b"x-plain")
        .expect("x-plain");
    let at = v.as_ptr() as usize;
    assert!(at < base || at >= end, "the value pins the read buffer");
    assert_eq!(&v[..], "{".repeat(40).as_bytes());
}

// ---- MUST 3: no event amplification

#[test]
fn event_is_small() {
    assert!(size_of::<Event>() <= 48, "{}", size_of::<Event>());
}

/// 128 streams whose responses have started (so they may be woken).
fn many_responding_streams() -> Peer {
    let mut p = Peer::default();
    for id in (1..=255).step_by(2) {
        p.open_get(id);
        p.conn
            .send_headers(id, 200, std::iter::empty(), false)
            .unwrap();
    }
    p.out();
    p
}

#[test]
fn settings_churn_does_not_wake_every_stream_per_frame() {
    let mut p = many_responding_streams();
    // raising open windows wakes nothing
    let mut churn = Vec::new();
    for w in [70_000, 80_000, 90_000] {
        churn.extend(settings(&[(f::SETTINGS_INITIAL_WINDOW_SIZE, w)]));
    }
    p.send(&churn).unwrap();
    assert!(p.take_events().is_empty());
    // closing and reopening them ten times in one read: at most one event per stream
    let mut churn = Vec::new();
    for _ in 0..10 {
        churn.extend(settings(&[(f::SETTINGS_INITIAL_WINDOW_SIZE, 0)]));
        churn.extend(settings(&[(f::SETTINGS_INITIAL_WINDOW_SIZE, 65_535)]));
    }
    p.send(&churn).unwrap();
    let ev = p.take_events();
    assert_eq!(ev.len(), 128, "one per stream, not one per SETTINGS");
    let mut ids: Vec<u32> = ev.iter().map(Event::stream_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 128);
}

#[test]
fn window_update_flood_on_an_open_window_is_a_control_flood() {
    let mut p = many_responding_streams();
    let r = flood(&mut p, 2_000, |_, _| window_update(1, 1));
    calm(r, &mut p, Abuse::ControlFlood);
    let mut p = many_responding_streams();
    let r = flood(&mut p, 2_000, |_, _| window_update(0, 1));
    calm(r, &mut p, Abuse::ControlFlood);
}

#[test]
fn window_updates_following_sent_data_are_flow_control_not_a_flood() {
    // a fast download: a WINDOW_UPDATE for every DATA we send, far more than the control
    // limit per second, never trips it
    let mut p = Peer::new(Limits {
        max_control_frames_per_sec: 10,
        ..Limits::default()
    });
    p.open_get(1);
    p.conn
        .send_headers(1, 200, std::iter::empty(), false)
        .unwrap();
    for _ in 0..100 {
        let mut body = Bytes::from(vec![0u8; 1_000]);
        assert_eq!(p.conn.send_data(1, &mut body, false), Ok(1_000));
        let mut wu = window_update(0, 1_000);
        wu.extend(window_update(1, 1_000));
        p.send(&wu).unwrap();
        p.out();
    }
    // the windows never closed: no event either
    assert!(p.take_events().is_empty());
}

#[test]
fn a_window_that_opens_wakes_its_stream_once() {
    let mut p = Peer::default();
    p.open_get(1);
    p.conn
        .send_headers(1, 200, std::iter::empty(), false)
        .unwrap();
    let mut body = Bytes::from(vec![0u8; 70_000]);
    p.conn.send_data(1, &mut body, false).unwrap();
    assert_eq!(p.conn.send_capacity(1), 0);
    let mut wu = window_update(1, 10);
    wu.extend(window_update(1, 10));
    wu.extend(window_update(0, 10));
    p.send(&wu).unwrap();
    assert_eq!(
        p.take_events(),
        vec![Event::WindowUpdate { id: 1 }, Event::WindowUpdate { id: 0 }]
    );
}

// ---- SHOULD 4: late trailers after an early answer

/// Answers stream 1 (a POST whose body is still coming) early and closes it, then opens and
/// completes `others` more streams.
fn early_answer_then(others: u32) -> Peer {
    let mut p = Peer::default();
    p.open_post(1, None);
    p.conn
        .send_headers(1, 413, std::iter::empty(), true)
        .unwrap();
    p.conn.close_stream(1);
    for id in (3..).step_by(2).take(others as usize) {
        p.open_get(id);
        p.conn
            .send_headers(id, 204, std::iter::empty(), true)
            .unwrap();
    }
    p.out();
    p
}

#[test]
fn late_trailers_after_many_closed_streams_are_ignored() {
    // 200 streams later (well beyond the 32 the first version remembered)
    let mut p = early_answer_then(200);
    let trailers = [("x-t".to_string(), "1".to_string())];
    let h = p.headers(1, &trailers, true);
    p.send(&h).unwrap();
    assert!(p.out().is_empty() && p.take_events().is_empty());
    p.open_get(403); // HPACK in step, connection alive
}

#[test]
fn late_trailers_beyond_memory_get_stream_closed_not_a_connection_error() {
    let mut p = early_answer_then(600);
    let trailers = [("x-t".to_string(), "1".to_string())];
    let h = p.headers(1, &trailers, true);
    p.send(&h).unwrap();
    p.expect_rst(1, E::StreamClosed);
    p.open_get(1203);
}

#[test]
fn a_skipped_stream_id_is_still_a_protocol_error() {
    // h2spec 5.1.1/2: a new stream id below one already used
    let mut p = Peer::default();
    p.open_get(5);
    let h = p.headers(3, &get("/"), true);
    let r = p.send(&h);
    p.expect_goaway(r, E::ProtocolError);
}

// ---- SHOULD 5: a missed release_capacity does not stall the connection

#[test]
fn unreleased_bytes_are_credited_when_the_stream_goes() {
    let mut p = Peer::new(Limits {
        max_concurrent_streams: 1,
        connection_window_size: 65_535,
        ..Limits::default()
    });
    p.open_post(1, None);
    for _ in 0..4 {
        p.send(&data(1, &[0; 15_000], false)).unwrap();
    }
    p.take_events();
    // the application never releases; closing the stream gives the window back
    p.conn.close_stream(1);
    let out = p.out();
    assert!(
        out.iter()
            .any(|o| o.kind == f::WINDOW_UPDATE && o.stream == 0 && o.u32_at(0) == 60_000),
        "{out:?}"
    );
    // a release afterwards is a no-op (no double credit)
    p.conn.release_capacity(1, 60_000);
    p.conn.release_capacity(99, 60_000);
    assert_eq!(p.conn.recv_owed, 0);
    assert!(p.out().is_empty());
    // and the next upload has the whole window
    p.open_post(3, None);
    for _ in 0..4 {
        p.send(&data(3, &[0; 16_000], false)).unwrap();
    }
}

// ---- SHOULD 6, 9: clamps

#[test]
fn clamped_connection_window_covers_every_stream_window() {
    let l = Limits {
        max_concurrent_streams: 128,
        initial_window_size: 65_535,
        connection_window_size: 65_535,
        ..Limits::default()
    }
    .clamped();
    assert_eq!(l.connection_window_size, 128 * 65_535);
    let l = Limits {
        max_concurrent_streams: 10_000,
        initial_window_size: 1 << 20,
        ..Limits::default()
    }
    .clamped();
    assert_eq!(l.connection_window_size, f::MAX_WINDOW);
    let l = Limits {
        initial_window_size: 0,
        ..Limits::default()
    }
    .clamped();
    assert_eq!(l.initial_window_size, 1);
    assert!(Limits::default().connection_window_size >= 128 * 65_535);
}

// ---- SHOULD 7: empty frames are a rate

#[test]
fn occasional_empty_frames_on_a_long_stream_are_fine() {
    let mut p = Peer::new(Limits {
        max_empty_frames: 10,
        ..Limits::default()
    });
    p.open_post(1, None);
    for _ in 0..100 {
        p.send(&data(1, b"", false)).unwrap();
        p.advance(200);
    }
    // but a burst within a second is a flood
    let r = flood(&mut p, 20, |_, _| data(1, b"", false));
    calm(r, &mut p, Abuse::EmptyFrames);
}

// ---- SHOULD 9

#[test]
fn goaway_and_rst_stream_floods_are_control_floods() {
    let limits = Limits {
        max_control_frames_per_sec: 20,
        ..Limits::default()
    };
    let mut p = Peer::new(limits);
    let goaway = raw(f::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0]);
    let r = flood(&mut p, 100, |_, _| goaway.clone());
    calm(r, &mut p, Abuse::ControlFlood);
    let mut p = Peer::new(limits);
    p.open_get(1);
    p.conn
        .send_headers(1, 204, std::iter::empty(), true)
        .unwrap();
    let r = flood(&mut p, 100, |_, _| rst(1, E::Cancel));
    calm(r, &mut p, Abuse::ControlFlood);
}

#[test]
fn a_single_headers_frame_is_held_to_the_encoded_byte_cap() {
    let mut p = Peer::new(Limits {
        max_header_list_size: 1_000,
        ..Limits::default()
    });
    // 1 500 encoded bytes in one frame: refused on the encoded size, before any decoding
    // (the first version decoded it and answered 431)
    let mut block = p.block(&get("/"));
    block.extend(std::iter::repeat_n(0x82u8, 1_500)); // ":method GET" again and again
    let r = p.send(&raw(f::HEADERS, f::FLAG_END_HEADERS, 1, &block));
    calm(r, &mut p, Abuse::HeaderListTooLarge);
}

#[test]
fn header_block_pending_tells_a_block_is_open() {
    let mut p = Peer::default();
    assert!(!p.conn.header_block_pending());
    let block = p.block(&get("/"));
    let (a, b) = block.split_at(3);
    p.send(&raw(f::HEADERS, f::FLAG_END_STREAM, 1, a)).unwrap();
    assert!(p.conn.header_block_pending());
    p.send(&raw(f::CONTINUATION, f::FLAG_END_HEADERS, 1, b))
        .unwrap();
    assert!(!p.conn.header_block_pending());
    assert_eq!(p.take_events().len(), 1);
}

#[test]
fn a_jump_in_stream_ids_forgets_the_old_ones_and_knows_the_skipped_ones() {
    let mut p = Peer::default();
    p.open_post(1, None);
    p.conn.reset(1, E::Cancel);
    p.out();
    // far beyond the remembered window (and onto stream 1's slot modulo the window)
    p.open_get(1 + 2 * 256 * 4);
    let trailers = [("x-t".to_string(), "1".to_string())];
    let h = p.headers(1, &trailers, true);
    p.send(&h).unwrap();
    p.expect_rst(1, E::StreamClosed);
    // an id skipped by the jump, still within the window: never opened
    let h = p.headers(1 + 2 * 256 * 4 - 2, &get("/"), true);
    let r = p.send(&h);
    p.expect_goaway(r, E::ProtocolError);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "a second final response head")]
fn a_second_final_head_is_a_driver_bug() {
    let mut p = Peer::default();
    p.open_get(1);
    let _ = p.conn.send_headers(1, 103, std::iter::empty(), false);
    let _ = p.conn.send_headers(1, 200, std::iter::empty(), false);
    let _ = p.conn.send_headers(1, 200, std::iter::empty(), false);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "1xx with END_STREAM")]
fn an_interim_head_ending_the_stream_is_a_driver_bug() {
    let mut p = Peer::default();
    p.open_get(1);
    let _ = p.conn.send_headers(1, 100, std::iter::empty(), true);
}

#[test]
fn a_client_crediting_every_frame_even_after_the_stream_closed_is_not_a_flood() {
    // per-frame crediting (RFC 9113 §6.9 allows it): a WINDOW_UPDATE for the stream and one
    // for the connection after every DATA frame, including the last one of a stream that has
    // closed since; many small responses far beyond the control limit never trip it
    let mut p = Peer::new(Limits {
        max_control_frames_per_sec: 10,
        ..Limits::default()
    });
    for i in 0..200u32 {
        let id = 2 * i + 1;
        p.open_get(id);
        p.conn
            .send_headers(id, 200, std::iter::empty(), false)
            .unwrap();
        let mut body = Bytes::from(vec![0u8; 100]);
        assert_eq!(p.conn.send_data(id, &mut body, true), Ok(100));
        p.conn.close_stream(id);
        let mut wu = window_update(id, 100);
        wu.extend(window_update(0, 100));
        p.send(&wu).unwrap();
        p.out();
    }
    // credit is earned by DATA only: the same updates with nothing sent are a flood
    let r = flood(&mut p, 2_000, |_, _| window_update(0, 1));
    calm(r, &mut p, Abuse::ControlFlood);
}

/// The driver's refusal (its stream tasks are all busy): REFUSED_STREAM, the stream forgotten,
/// and counted toward the reset limit: past it the connection fails (ENHANCE_YOUR_CALM).
#[test]
fn a_driver_refusal_is_a_reset_counted_toward_the_limit() {
    let mut p = Peer::new(Limits {
        max_resets_per_window: 2,
        ..Limits::default()
    });
    p.open_get(1);
    assert!(p.conn.refuse(1).is_ok());
    p.expect_rst(1, E::RefusedStream);
    assert_eq!(p.conn.active_streams(), 0);
    p.open_get(3);
    assert!(p.conn.refuse(3).is_ok());
    p.expect_rst(3, E::RefusedStream);
    p.open_get(5);
    let r = p.conn.refuse(5);
    calm(r, &mut p, Abuse::TooManyStreams);
}

/// A stream the driver resets for the client's sake counts toward the reset limit.
#[test]
fn a_driver_reset_for_a_stall_is_counted() {
    let mut p = Peer::new(Limits {
        max_resets_per_window: 1,
        ..Limits::default()
    });
    p.open_get(1);
    assert!(p.conn.reset_counted(1, E::Cancel).is_ok());
    p.expect_rst(1, E::Cancel);
    p.open_get(3);
    let r = p.conn.reset_counted(3, E::Cancel);
    let e = match r {
        Err(e) => e,
        Ok(()) => panic!("the second reset passes the limit"),
    };
    assert_eq!(
        (e.code, e.abuse),
        (E::EnhanceYourCalm, Some(Abuse::RapidReset))
    );
    let out = p.out();
    assert_eq!(out.last().map(|f| f.kind), Some(f::GOAWAY), "{out:?}");
}

/// A malformed request head is reset without an event: the driver learns of it by the count.
#[test]
fn a_malformed_head_is_a_silent_reset_the_driver_can_count() {
    let mut p = Peer::default();
    let mut fields = get("/");
    fields.retain(|(n, _)| n != ":path");
    let h = p.headers(1, &fields, true);
    assert!(p.send(&h).is_ok());
    p.expect_rst(1, E::ProtocolError);
    assert!(p.take_events().is_empty());
    assert_eq!(p.conn.take_silent_resets(), 1);
    assert_eq!(p.conn.take_silent_resets(), 0, "taken");
}

/// The driver's own connection error: GOAWAY with its code, the connection failed, once.
#[test]
fn a_driver_abort_sends_one_goaway() {
    let mut p = Peer::default();
    p.open_get(1);
    let e = p.conn.abort(E::EnhanceYourCalm, "zero window stall");
    assert_eq!((e.code, e.abuse), (E::EnhanceYourCalm, None));
    let r = Err(e);
    p.expect_goaway(r, E::EnhanceYourCalm);
    assert_eq!(p.conn.error(), Some(e));
    let again = p.conn.abort(E::NoError, "later");
    assert_eq!(again.code, E::EnhanceYourCalm, "the first error stays");
    assert!(!p.conn.has_output());
}
