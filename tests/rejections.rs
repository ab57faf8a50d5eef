//! The rejection list through real sockets, on both drivers: every ambiguous or malformed request
//! gets its status and a JSON body, the connection is closed, and the origin sees nothing.

mod common;

use std::time::{Duration, Instant};

use common::*;

const CASES: &[(&str, &[u8], u16)] = &[
    ("CL and TE", b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("TE and CL", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    ("two CL equal", b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    ("two CL differ", b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("CL list", b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
    ("CL sign", b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", 400),
    ("CL hex", b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc", 400),
    ("CL overflow", b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
    ("TE not final chunked", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    ("TE chunked twice", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("TE unknown coding", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ("TE obfuscated (chunked not final: RFC 9112 6.3 MUST 400)", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    ("TE in HTTP/1.0", b"POST /api/x HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("TE space before colon", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    ("space before colon", b"GET /api/x HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n", 400),
    ("obs-fold", b"GET /api/x HTTP/1.1\r\nHost: h\r\nX-A: b\r\n c\r\n\r\n", 400),
    ("bare LF in header", b"GET /api/x HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n", 400),
    ("bare CR in header", b"GET /api/x HTTP/1.1\r\nHost: h\r\nX-A: b\rc\r\n\r\n", 400),
    ("NUL in header", b"GET /api/x HTTP/1.1\r\nHost: h\r\nX-A: b\0c\r\n\r\n", 400),
    ("CTL in header", b"GET /api/x HTTP/1.1\r\nHost: h\r\nX-A: b\x01c\r\n\r\n", 400),
    ("no Host", b"GET /api/x HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("bad Host", b"GET /api/x HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("target without slash", b"GET api/x HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("target with space", b"GET /api/x y HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("target with fragment", b"GET /api/x#f HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("bad percent", b"GET /api/%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("HTTP/1.2", b"GET /api/x HTTP/1.2\r\nHost: h\r\n\r\n", 400),
    ("lowercase version", b"GET /api/x http/1.1\r\nHost: h\r\n\r\n", 400),
    ("CONNECT", b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501),
    ("Expect other", b"POST /api/x HTTP/1.1\r\nHost: h\r\nExpect: 101-whatever\r\nContent-Length: 1\r\n\r\na", 417),
    ("chunk size invalid", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk size overflow", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk size negative", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk data overrun", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk bare LF", b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
];

fn routes(o: &Origin) -> String {
    upstream_toml("u", &[o.addr], "") + "[[route]]\nkey = \"$default\"\nupstream = \"u\"\n"
}

fn check_rejected(g: &Gateway, o: &Origin, name: &str, raw: &[u8], status: u16) {
    let mut c = Client::new(g.addr);
    c.send(raw);
    let r = c
        .read(false)
        .unwrap_or_else(|| panic!("{name}: no response"));
    assert_eq!(r.status, status, "{name}");
    assert!(
        r.text().starts_with("{\"message\":"),
        "{name}: JSON body, got {}",
        r.text()
    );
    assert_eq!(r.header("connection"), Some("close"), "{name}");
    assert!(c.is_closed(), "{name}: connection must be closed");
    assert!(
        o.requests().is_empty(),
        "{name}: the origin must see nothing"
    );
}

all_transports! {
    fn ambiguous_requests_are_rejected_and_never_forwarded(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        for (name, raw, status) in CASES {
            check_rejected(&g, &o, name, raw, *status);
        }
    }

    fn smuggling_after_a_valid_request_is_not_forwarded(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().status, 200);
        assert_eq!(c.read(false).unwrap().status, 400);
        assert!(c.is_closed());
        let targets: Vec<String> = o.requests().iter().map(|r| r.target.clone()).collect();
        assert_eq!(targets, vec!["/a".to_string()]);
    }

    fn limits_give_431_414_413(d) {
        let o = Origin::echo();
        let extra = "[server.limits]\nmax_head_bytes = 2048\nmax_uri_bytes = 256\nmax_body_bytes = 1000\n";
        let text = server_toml(d, 1, "") + extra + &routes(&o);
        let g = Gateway::from_toml(&text);
        let big_header = format!("GET /x HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n", "a".repeat(3000));
        check_rejected(&g, &o, "head too large", big_header.as_bytes(), 431);
        let long_uri = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(300));
        check_rejected(&g, &o, "uri too long", long_uri.as_bytes(), 414);
        let body = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n";
        check_rejected(&g, &o, "declared body too large", body, 413);
        // a chunked body is counted as it streams: the origin may have seen the start, but
        // the client gets 413 and the connection closes
        let mut c = Client::new(g.addr);
        c.send(b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        for _ in 0..3 {
            c.send(format!("190\r\n{}\r\n", "b".repeat(400)).as_bytes());
        }
        c.send(b"0\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 413);
        assert!(c.is_closed());
        assert!(o.requests().is_empty(), "a truncated body must never complete at the origin");
    }

    fn slow_client_head_times_out(d) {
        let o = Origin::echo();
        let g = Gateway::start_with(d, 1, "[server.timeouts]\nheader_read_ms = 300\n", &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"GET /x HTTP/1.1\r\nHost:");
        let t = Instant::now();
        let r = c.read(false).expect("408 before close");
        assert_eq!(r.status, 408);
        assert!(t.elapsed() < Duration::from_secs(3));
        assert!(c.is_closed());
        // a connection that never sends anything is closed silently
        let mut c = Client::new(g.addr);
        assert!(c.is_closed());
        assert!(o.requests().is_empty());
    }

    fn slowloris_drip_does_not_extend_the_deadline(d) {
        // The head deadline runs from the first byte: a client dripping one byte every 50 ms
        // (each read well within 300 ms) must still get its 408 about 300 ms after it started,
        // not when it stops dripping. If each read extended the deadline, the 408 could only
        // come after the drip ends (3 s + 300 ms) and the bounds below fail.
        const DEADLINE: Duration = Duration::from_millis(300);
        const DRIP: Duration = Duration::from_millis(50);
        const DRIP_FOR: Duration = Duration::from_secs(3);
        let o = Origin::echo();
        let g = Gateway::start_with(d, 1, "[server.timeouts]\nheader_read_ms = 300\n", &routes(&o));
        let mut c = Client::new(g.addr);
        let mut w = c.stream.try_clone().unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader_done = done.clone();
        let reader = std::thread::spawn(move || {
            let r = c.read(false);
            let at = Instant::now();
            // the 408 is followed by a clean end of stream, not more bytes and not a reset
            let mut b = [0u8; 1];
            let closed = matches!(std::io::Read::read(&mut c.stream, &mut b), Ok(0));
            reader_done.store(true, std::sync::atomic::Ordering::Release);
            (r, at, closed)
        });
        let first_byte = Instant::now();
        let mut drip = b"GET /x HTTP/1.1\r\nHost: h\r\nX-A: ".iter().copied().chain(std::iter::repeat(b'b'));
        while first_byte.elapsed() < DRIP_FOR && !done.load(std::sync::atomic::Ordering::Acquire) {
            let byte = drip.next().unwrap_or(b'b');
            if std::io::Write::write_all(&mut w, &[byte]).is_err() {
                break;
            }
            std::thread::sleep(DRIP);
        }
        let dripped_for = first_byte.elapsed();
        let (r, answered_at, closed) = reader.join().unwrap();
        let r = r.expect("a 408 while the client is still dripping");
        assert_eq!(r.status, 408);
        assert_eq!(r.text(), "{\"message\":\"Request Timeout\"}");
        assert!(closed, "the connection must end after the 408");
        let answered = answered_at.duration_since(first_byte);
        // generous slack for a loaded machine, still far below what an extended deadline gives
        assert!(
            answered < DEADLINE + Duration::from_millis(1200),
            "408 after {answered:?}: the deadline was extended by the drip"
        );
        assert!(
            dripped_for < DRIP_FOR,
            "the client dripped for {dripped_for:?} without being cut off"
        );
        assert!(o.requests().is_empty());
    }
}
