//! Connection management on both drivers: idle keep-alive timeout, body read timeout, the
//! per-worker connection cap, absolute-form targets, and many concurrent clients over two workers.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn routes(o: &Origin) -> String {
    upstream_toml("u", &[o.addr], "") + "[[route]]\nkey = \"$default\"\nupstream = \"u\"\n"
}

all_transports! {
    fn idle_keep_alive_connection_is_closed_after_its_timeout(d) {
        let o = Origin::echo();
        let g = Gateway::start_with(d, 1, "[server.timeouts]\nkeepalive_idle_ms = 200\n", &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().status, 200);
        // the next read blocks until the gateway closes the idle connection (10 s client timeout)
        assert!(c.is_closed(), "idle connection closed by the gateway");
        // a connection that keeps talking stays open past the idle timeout
        let mut c = Client::new(g.addr);
        for i in 0..5 {
            c.send(format!("GET /b{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            assert_eq!(c.read(false).unwrap().status, 200);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stalled_request_body_gets_408(d) {
        let o = Origin::echo();
        let g = Gateway::start_with(d, 1, "[server.timeouts]\nbody_read_ms = 300\n", &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
        let r = c.read(false).expect("a response before close");
        assert_eq!(r.status, 408);
        assert!(c.is_closed());
        assert!(o.requests().is_empty(), "the origin never sees a complete request");
    }

    fn client_vanishing_mid_body_does_not_complete_at_origin(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        {
            let mut c = Client::new(g.addr);
            c.send(b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(o.requests().is_empty());
        // and the gateway still serves
        assert_eq!(get(g.addr, "/after").status, 200);
    }

    // Plain only: the third connection waits in the kernel's backlog, where no TLS handshake
    // can complete, so a TLS client could not even send its request.
    plain_only fn accept_pauses_at_max_connections(d) {
        let o = Origin::echo();
        let g = Gateway::start_with(d, 1, "max_connections = 2", &routes(&o));
        let mut a = Client::new(g.addr);
        let mut b = Client::new(g.addr);
        a.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
        b.send(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(a.read(false).unwrap().status, 200);
        assert_eq!(b.read(false).unwrap().status, 200);
        // the third connection completes in the kernel's backlog but is not served ...
        let mut c = Client::new(g.addr);
        c.stream.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
        c.send(b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(c.read(false).is_none(), "served beyond max_connections");
        // ... until one of the others closes
        drop(a);
        c.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(c.read(false).unwrap().status, 200);
    }

    fn absolute_form_and_asterisk_form(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let r = roundtrip(g.addr, b"GET http://api.example.com/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(r.status, 200);
        let q = &o.requests()[0];
        assert_eq!(q.target, "/x?y=1", "origin-form towards the origin");
        assert_eq!(q.header("host"), Some("api.example.com"), "the target's authority wins");
        let r = roundtrip(g.addr, b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.status, 200, "$default takes OPTIONS *");
        assert_eq!(o.requests()[1].target, "*");
    }

    fn many_concurrent_clients_over_two_workers(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 2, &routes(&o));
        let addr = g.addr;
        let threads: Vec<_> = (0..16)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut c = Client::new(addr);
                    for i in 0..50 {
                        let body = format!("{t}-{i}");
                        c.send(format!(
                            "POST /t/{t}/{i} HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        ).as_bytes());
                        let r = c.read(false).unwrap();
                        assert_eq!(r.status, 200);
                        assert_eq!(r.text(), format!("POST /t/{t}/{i}"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let reqs = o.requests();
        assert_eq!(reqs.len(), 800);
        for r in &reqs {
            let parts: Vec<&str> = r.target.split('/').collect();
            assert_eq!(String::from_utf8_lossy(&r.body), format!("{}-{}", parts[2], parts[3]));
        }
        // both workers served: every worker has its own pool, so at least two origin connections
        assert!(o.connections() >= 2);
    }

    fn large_chunked_upload_streams_exactly(d) {
        let o = Origin::start_opts(true, |r| Reply::ok(&r.body_len.to_string()));
        let g = Gateway::start(d, 1, &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        let mut expected = Vec::new();
        for i in 0..200u32 {
            let chunk: Vec<u8> = (0..(1000 + i * 37)).map(|j| (j % 251) as u8).collect();
            write!(c.stream, "{:x}\r\n", chunk.len()).unwrap();
            c.stream.write_all(&chunk).unwrap();
            c.stream.write_all(b"\r\n").unwrap();
            expected.extend_from_slice(&chunk);
        }
        c.send(b"0\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.text(), expected.len().to_string());
        assert_eq!(o.requests()[0].body, expected);
    }
}
