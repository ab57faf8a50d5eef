//! End-to-end forwarding through real sockets, on both drivers: what the origin receives byte for
//! byte, what the client gets back, keep-alive on both sides, pipelining, HTTP/1.0, bodies.

mod common;

use std::time::Duration;

use common::*;

fn routes(origin: &Origin) -> String {
    upstream_toml("pets", &[origin.addr], "response_timeout_ms = 2000")
        + r#"
[[route]]
key = "GET /pets/{id}"
upstream = "pets"
path = "/v1/pets/{id}"

[[route]]
key = "ANY /api/{proxy+}"
upstream = "pets"

[[route]]
key = "GET /hello"
mock = { status = 200, body = "hi", headers = { "content-type" = "text/plain" } }

[[route]]
key = "ANY /any-mock"
mock = { status = 200, body = "ok" }
"#
}

all_transports! {
    // The harness itself: in TLS mode `g.addr` is the TLS listener and the client helpers speak
    // TLS to it (the gateway says so in X-Forwarded-Proto); the plain listener stays plain.
    fn the_client_helpers_speak_the_mode_s_transport(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let tls = transport() == Transport::Tls;
        assert_eq!(Client::new(g.addr).stream.is_tls(), tls);
        assert_eq!(g.addr != g.plain_addr(), tls);
        assert!(!Client::new(g.plain_addr()).stream.is_tls());
        assert_eq!(get(g.addr, "/api/a").status, 200);
        assert_eq!(get(g.plain_addr(), "/api/b").status, 200);
        let reqs = o.requests();
        assert_eq!(reqs[0].header("x-forwarded-proto"), Some(if tls { "https" } else { "http" }));
        assert_eq!(reqs[1].header("x-forwarded-proto"), Some("http"));
    }

    fn mock_route_answers(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let r = get(g.addr, "/hello");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "hi");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("x-request-id").map(str::len), Some(36));
        assert!(r.header("date").is_some());
        assert!(o.requests().is_empty());
    }

    fn unknown_route_is_json_404(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let r = get(g.addr, "/nope");
        assert_eq!(r.status, 404);
        assert_eq!(r.text(), r#"{"message":"Not Found"}"#);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(o.requests().is_empty());
    }

    fn forwards_with_rewrite_and_forwarding_headers(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let r = roundtrip(
            g.addr,
            b"GET /pets/42?x=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: t\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "GET /v1/pets/42?x=1");
        let reqs = o.requests();
        assert_eq!(reqs.len(), 1);
        let q = &reqs[0];
        let rid = r.header("x-request-id").expect("request id returned");
        let proto = proto();
        let expected = format!(
            "GET /v1/pets/42?x=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: t\r\n\
x-forwarded-for: 127.0.0.1\r\nvia: 1.1 tollgate\r\nx-forwarded-proto: {proto}\r\nx-forwarded-host: api.example.com\r\n\
x-request-id: {rid}\r\n\r\n"
        );
        assert_eq!(String::from_utf8_lossy(&q.raw), expected);
    }

    fn greedy_route_forwards_original_target(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let r = get(g.addr, "/api/a/b/c?q=%20x");
        assert_eq!(r.text(), "GET /api/a/b/c?q=%20x");
        let r = roundtrip(g.addr, b"DELETE /api/x HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.text(), "DELETE /api/x");
        // {proxy+} needs at least one segment
        assert_eq!(get(g.addr, "/api/").status, 404);
        assert_eq!(get(g.addr, "/api").status, 404);
    }

    fn hop_by_hop_headers_are_removed(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let r = roundtrip(
            g.addr,
            b"GET /api/x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\
Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\n\
Proxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        let q = &o.requests()[0];
        for h in ["connection", "x-secret", "keep-alive", "te", "trailer", "upgrade",
                  "proxy-authorization", "proxy-connection"] {
            assert_eq!(q.header(h), None, "{h} must not be forwarded:\n{}", q.head_text());
        }
        assert_eq!(q.header("x-kept"), Some("yes"));
    }

    fn forwarded_for_is_appended_and_request_id_kept(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        // the client claims the other scheme: the gateway's own replaces it
        let claimed = if proto() == "http" { "https" } else { "http" };
        let r = roundtrip(
            g.addr,
            format!("GET /api/x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.1.1.1\r\n\
X-Forwarded-Proto: {claimed}\r\nX-Forwarded-Host: evil\r\nx-request-id: abc-123\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.header("x-request-id"), Some("abc-123"));
        let q = &o.requests()[0];
        assert_eq!(q.header("x-forwarded-for"), Some("10.1.1.1, 127.0.0.1"));
        assert_eq!(q.header_count("x-forwarded-proto"), 1);
        assert_eq!(q.header("x-forwarded-proto"), Some(proto()));
        assert_eq!(q.header("x-forwarded-host"), Some("h"));
        assert_eq!(q.header("x-request-id"), Some("abc-123"));
        assert_eq!(q.header_count("x-request-id"), 1);
    }

    fn keep_alive_reuses_both_sides(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let mut c = Client::new(g.addr);
        for i in 0..5 {
            c.send(format!("GET /api/{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            let r = c.read(false).unwrap();
            assert_eq!(r.text(), format!("GET /api/{i}"));
        }
        assert_eq!(o.requests().len(), 5);
        assert_eq!(o.connections(), 1, "the pooled upstream connection is reused");
    }

    fn pipelined_requests_are_answered_in_order(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/1 HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n\
POST /api/3 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /api/4 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "GET /api/1");
        assert_eq!(c.read(false).unwrap().text(), "hi");
        assert_eq!(c.read(false).unwrap().text(), "POST /api/3");
        assert_eq!(c.read(false).unwrap().text(), "GET /api/4");
        assert_eq!(o.requests()[1].body, b"abc");
    }

    fn http10_closes_unless_keep_alive(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/a HTTP/1.0\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "GET /api/a");
        assert!(c.is_closed());
        // the origin still gets HTTP/1.1
        assert_eq!(o.requests()[0].version, 1);

        let mut c = Client::new(g.addr);
        c.send(b"GET /api/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.header("connection"), Some("keep-alive"));
        c.send(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "hi");
    }

    fn content_length_body_is_forwarded_exactly(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let r = roundtrip(
            g.addr,
            b"POST /api/items HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n\
Content-Length: 13\r\n\r\n{\"name\":\"x\"}\n",
        );
        assert_eq!(r.status, 200);
        let q = &o.requests()[0];
        assert_eq!(q.body, b"{\"name\":\"x\"}\n");
        assert!(q.head_text().contains("content-length: 13\r\n"));
        assert_eq!(q.header_count("content-length"), 1);
    }

    fn chunked_body_is_streamed_with_trailers(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"POST /api/up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n");
        std::thread::sleep(Duration::from_millis(50));
        c.send(b"6\r\n world\r\n0\r\nX-Checksum: 42\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200);
        let q = &o.requests()[0];
        assert_eq!(q.body, b"hello world");
        assert_eq!(q.header("transfer-encoding"), Some("chunked"));
        let raw = String::from_utf8_lossy(&q.raw);
        assert!(raw.ends_with("0\r\nX-Checksum: 42\r\n\r\n"), "{raw}");
        assert!(!raw.contains("ext=1"), "chunk extensions are not forwarded");
    }

    fn expect_100_continue(d) {
        let o = Origin::echo();
        let g = Gateway::start(d, 1, &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"PUT /api/x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
        let interim = c.read(false).unwrap();
        assert_eq!(interim.status, 100);
        c.send(b"data");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200);
        let q = &o.requests()[0];
        assert_eq!(q.body, b"data");
        assert_eq!(q.header("expect"), None);
    }

    fn head_request_has_no_body(d) {
        let o = Origin::start(|_| Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n".to_vec()));
        let g = Gateway::start(d, 1, &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"HEAD /api/x HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(true).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("1234"));
        // the connection stays in sync: the next response is parsed correctly
        c.send(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "hi");
        // a mock answers HEAD with its headers only (GET routes do not match HEAD, as in API
        // Gateway; ANY does)
        let mut c = Client::new(g.addr);
        c.send(b"HEAD /any-mock HTTP/1.1\r\nHost: h\r\n\r\nGET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(true).unwrap();
        assert_eq!(r.header("content-length"), Some("2"));
        assert_eq!(c.read(false).unwrap().text(), "hi");
    }

    fn no_body_statuses(d) {
        let o = Origin::start(|r| match r.target.as_str() {
            "/api/204" => Reply::Raw(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
            _ => Reply::Raw(b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n".to_vec()),
        });
        let g = Gateway::start(d, 1, &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/204 HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 204);
        assert!(r.header("transfer-encoding").is_none() && r.header("content-length").is_none());
        c.send(b"GET /api/304 HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 304);
        assert_eq!(r.header("etag"), Some("\"a\""));
        c.send(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "hi");
    }

    fn origin_chunked_and_close_delimited_are_reframed(d) {
        let o = Origin::start(|r| match r.target.as_str() {
            "/api/chunked" => Reply::Raw(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n".to_vec(),
            ),
            _ => Reply::RawThenClose(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close".to_vec()),
        });
        let g = Gateway::start(d, 1, &routes(&o));
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/chunked HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.text(), "abcde");
        c.send(b"GET /api/close HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_eq!(r.header("transfer-encoding"), Some("chunked"), "re-framed for 1.1");
        assert_eq!(r.text(), "until close");
        // the client connection stays usable
        c.send(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "hi");

        // HTTP/1.0 client: close-delimited
        let mut c = Client::new(g.addr);
        c.send(b"GET /api/chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read(false).unwrap();
        assert!(r.header("transfer-encoding").is_none());
        assert_eq!(r.text(), "abcde");
    }

    fn interim_responses_are_skipped(d) {
        let o = Origin::start(|_| Reply::Raw(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ));
        let g = Gateway::start(d, 1, &routes(&o));
        let r = roundtrip(g.addr, b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nz");
        assert_eq!(r.status, 201);
        assert_eq!(r.text(), "ok");
    }
}

mod response_headers {
    use super::*;

    all_transports! {
        fn hop_by_hop_response_headers_are_removed(d) {
            let o = Origin::start(|_| Reply::Raw(
                b"HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\n\
    Upgrade: h2c\r\nProxy-Connection: keep-alive\r\nTrailer: X-T\r\nX-Public: yes\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            ));
            let g = Gateway::start(d, 1, &routes(&o));
            let r = get(g.addr, "/api/x");
            assert_eq!(r.text(), "ok");
            for h in ["x-internal", "keep-alive", "upgrade", "proxy-connection", "trailer"] {
                assert_eq!(r.header(h), None, "{h} must not reach the client:\n{}", r.head);
            }
            assert_eq!(r.header("x-public"), Some("yes"));
            assert_eq!(r.header("connection"), None, "1.1 keep-alive needs no Connection header");
        }
    }
}

mod response_date {
    use super::*;

    all_transports! {
        fn a_response_without_date_gets_one_and_the_origin_s_is_kept(d) {
            let o = Origin::start(|r| if r.target == "/api/dated" {
                Reply::Raw(b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n".to_vec())
            } else {
                Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec())
            });
            let g = Gateway::start(d, 1, &routes(&o));
            let r = get(g.addr, "/api/undated");
            let date = r.header("date").expect("RFC 9110 6.6.1: a forwarded response carries Date");
            assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
            let r = get(g.addr, "/api/dated");
            assert_eq!(r.header("date"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
            assert_eq!(r.head.matches("ate: ").count(), 1, "{}", r.head);
        }
    }
}
