//! HTTP/2 connection lifecycle on both drivers over h2c and TLS: reload (new streams of an open
//! connection use the new config), drain (GOAWAY NO_ERROR naming the last stream, new streams
//! refused, the in-flight stream finishes, then the close — RFC 9113 §6.8), and the h2c
//! listener's HTTP/1.1 side (a plain HTTP/1.1 request still works; `Upgrade: h2c` is never
//! honoured, §3.1).

// test helpers panic to fail the test (the deny is for runtime code)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::h2env::Env;
use common::h2raw::*;
use common::*;

fn mock_config(d: &str, body: &str) -> String {
    server_toml(d, 1, "h2c = true")
        + &format!("[[route]]\nkey = \"GET /v\"\nmock = {{ status = 200, body = \"{body}\" }}\n")
}

all_transports! {
    fn reload_new_streams_use_the_new_config(d) {
        let g = Gateway::from_toml(&mock_config(d, "one"));
        let mut h = H2::open(g.addr);
        assert_eq!(h.get_response(1, "/v").text(), "one");
        g.write_config(&mock_config(d, "two"));
        g.reload().expect("reload applies");
        assert_eq!(h.get_response(3, "/v").text(), "two", "same connection, new stream, new config");
    }

    fn drain_goaway_in_flight_stream_finishes(d) {
        let env = Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        // the request is in flight once the origin has it
        let deadline = Instant::now() + Duration::from_secs(10);
        while env.o.requests().is_empty() {
            assert!(Instant::now() < deadline, "request never reached the origin");
            std::thread::sleep(Duration::from_millis(10));
        }
        env.g.handle().shutdown();
        match h.next_significant() {
            In::Frame(f) if f.ty == ty::GOAWAY => {
                assert_eq!(f.error_code(), Some(code::NO_ERROR), "{f:?}");
                assert!(f.last_stream_id() >= Some(1), "stream 1 must be covered: {f:?}");
            }
            other => panic!("expected GOAWAY NO_ERROR on drain, got {other:?}; seen {:#?}", h.seen),
        }
        // a stream opened after the GOAWAY is not processed (§6.8)
        h.get(3, "/mock");
        env.release();
        let mut done = false;
        let mut refused = false;
        let mut body = Vec::new();
        while !(done && refused) {
            match h.next_significant() {
                In::Frame(f) if f.ty == ty::RST_STREAM && f.stream == 3 => {
                    assert_eq!(f.error_code(), Some(code::REFUSED_STREAM), "{f:?}");
                    refused = true;
                }
                In::Headers { stream: 1, fields, end_stream } => {
                    assert!(fields.contains(&(":status".into(), "200".into())), "{fields:?}");
                    done |= end_stream;
                }
                In::Frame(f) if f.ty == ty::DATA && f.stream == 1 => {
                    body.extend_from_slice(&f.payload);
                    done |= f.has(flag::END_STREAM);
                }
                In::Frame(f) if f.ty == ty::GOAWAY => {}
                // a server may also just ignore stream 3 (§6.8) and close once stream 1 ended
                In::Closed(_) if done => break,
                other => panic!("during drain: {other:?}; seen {:#?}", h.seen),
            }
        }
        assert_eq!(body, b"held", "the in-flight response is complete");
        h.expect_closed();
    }

    // streams of one connection are served concurrently: a fast one completes while another
    // waits on its origin; ten interleaved streams of 1 MiB each get their own response
    fn streams_are_served_concurrently(d) {
        let env = common::h2env::Env::held(d, "");
        let mut h = env.h2();
        h.get(1, "/api/held");
        assert_eq!(h.get_response(3, "/mock").text(), "mocked", "not blocked behind stream 1");
        let ids: Vec<u32> = (0..10).map(|i| 5 + 2 * i).collect();
        for id in &ids {
            h.get(*id, &format!("/api/large?{id}"));
        }
        env.release();
        let mut all = ids.clone();
        all.push(1);
        let rs = h.responses(&all);
        assert_eq!(rs[&1].text(), "held");
        for id in &ids {
            assert_eq!(rs[id].status, 200);
            assert_eq!(rs[id].body.len(), 1 << 20, "stream {id}");
        }
    }

    // the access log writes one line per stream with protocol HTTP/2.0 and the request id
    // the client got (the lifecycle is the same as over HTTP/1)
    fn access_log_says_http2(d) {
        let o = Origin::echo();
        let path = std::env::temp_dir().join(format!("tollgate-h2log-{}-{:?}-{d}.log", std::process::id(), transport()));
        let _ = std::fs::remove_file(&path);
        let text = format!("[access_log]\npath = \"{}\"\nformat = \"json\"\n", path.display()) + &common::h2env::routes(&o);
        let g = Gateway::start_with(d, 1, "h2c = true", &text);
        let mut h = H2::open(g.addr);
        let rs = {
            h.get(1, "/mock");
            h.get(3, "/api/logged");
            h.responses(&[1, 3])
        };
        let ids: Vec<String> = rs.values().map(|r| r.header("x-request-id").expect("x-request-id").to_string()).collect();
        drop(h);
        g.stop();
        let log = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(log.lines().count(), 2, "{log}");
        for id in &ids {
            let line = log.lines().find(|l| l.contains(id.as_str())).unwrap_or_else(|| panic!("{id} in {log}"));
            assert!(line.contains("\"protocol\":\"HTTP/2.0\""), "{line}");
            assert!(line.contains("\"status\":200"), "{line}");
        }
        assert!(log.contains("\"path\":\"/api/logged\""), "{log}");
    }

    // §3.1: with h2c on, HTTP/1.1 still works on the plain listener and an Upgrade: h2c is
    // not honoured (answered as HTTP/1.1, no 101)
    plain_only fn h2c_listener_still_speaks_http1(d) {
        let env = Env::start(d, "");
        assert_eq!(get(env.addr, "/mock").text(), "mocked");
        let r = roundtrip(
            env.addr,
            b"GET /mock HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        );
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.version, 1);
        assert_eq!(r.text(), "mocked");
    }
}
