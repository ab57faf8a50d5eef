//! The access log on both drivers: one JSON line per request with API Gateway's `$context`
//! names, custom formats, and nothing lost at shutdown.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

fn temp(name: &str) -> std::path::PathBuf {
    // per transport too: a test's plain and TLS variants run at the same time
    let p = std::env::temp_dir().join(format!(
        "tollgate-log-{}-{:?}-{name}",
        std::process::id(),
        transport()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

fn line_of<'a>(log: &'a str, rid: &str) -> &'a str {
    let pat = format!("\"requestId\":\"{rid}\"");
    let mut found = log.lines().filter(|l| l.contains(&pat));
    let l = found
        .next()
        .unwrap_or_else(|| panic!("no line for {rid} in {log}"));
    assert!(found.next().is_none(), "one line per request");
    l
}

const KEYS: &str = r#"
[[route]]
key = "GET /keyed"
mock = { body = "k" }
api_key_required = true

[[api_key]]
name = "alice"
value = "alice-key-0123456789abcdef"

[[api_key]]
name = "carol"
value = "carol-key-0123456789abcdef"
enabled = false
"#;

all_transports! {
    fn a_request_outliving_the_drain_does_not_hold_up_exit(d) {
        let o = Origin::start(|_| Reply::After(Duration::from_secs(4), Box::new(Reply::ok("late"))));
        let path = temp(&format!("late-{d}.log"));
        let text = server_toml(d, 1, "[server.timeouts]\nshutdown_ms = 200\n")
            + &format!("[access_log]\npath = \"{}\"\n", path.display())
            + &upstream_toml("u", &[o.addr], "response_timeout_ms = 10000")
            + "[[route]]\nkey = \"GET /slow\"\nupstream = \"u\"\n\n[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";
        let g = Gateway::from_toml(&text);
        assert_eq!(get(g.addr, "/hello").status, 200);
        let addr = g.addr;
        let _slow = std::thread::spawn(move || {
            let mut c = Client::new(addr);
            c.send(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
            c.read(false)
        });
        while o.requests().is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
        // the slow request is still running when the 200 ms drain ends: exit must not wait
        // for it (nor for the access-log writer, which it would otherwise keep alive)
        let t = std::time::Instant::now();
        g.stop();
        assert!(t.elapsed() < Duration::from_secs(3), "exit took {:?}", t.elapsed());
        let log = std::fs::read_to_string(&path).unwrap();
        assert_eq!(log.lines().count(), 1, "the finished request was logged: {log}");
    }

    fn every_request_gets_one_json_line(d) {
        let o = Origin::echo();
        let path = temp(&format!("json-{d}.log"));
        let text = server_toml(d, 2, "")
            + &format!("[access_log]\npath = \"{}\"\nformat = \"json\"\n", path.display())
            + &upstream_toml("u", &[o.addr], "")
            + "[[route]]\nkey = \"GET /api/{proxy+}\"\nupstream = \"u\"\n\n[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";
        let g = Gateway::from_toml(&text);
        let r = roundtrip(g.addr, b"GET /api/x?q=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: test-agent\r\n\r\n");
        let rid = r.header("x-request-id").unwrap().to_string();
        for _ in 0..49 {
            assert_eq!(get(g.addr, "/hello").status, 200);
        }
        assert_eq!(get(g.addr, "/missing").status, 404);
        g.stop(); // drains; the writer writes everything queued
        let log = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 51, "{log}");
        let proxied = lines.iter().find(|l| l.contains(&rid)).expect("the proxied request's line");
        for part in [
            "\"ip\":\"127.0.0.1\"", "\"httpMethod\":\"GET\"", "\"routeKey\":\"GET /api/{proxy+}\"",
            "\"path\":\"/api/x\"", "\"status\":200", "\"protocol\":\"HTTP/1.1\"",
            "\"integrationStatus\":200", "\"userAgent\":\"test-agent\"", "\"errorMessage\":\"-\"",
        ] {
            assert!(proxied.contains(part), "{part} in {proxied}");
        }
        let missing = lines.iter().find(|l| l.contains("\"status\":404")).unwrap();
        assert!(missing.contains("\"routeKey\":\"-\"") && missing.contains("\"errorMessage\":\"no route matched\""), "{missing}");
        let _ = std::fs::remove_file(&path);
    }

    fn custom_format(d) {
        let path = temp(&format!("custom-{d}.log"));
        let text = server_toml(d, 1, "")
            + &format!("[access_log]\npath = \"{}\"\nformat = '$context.httpMethod $context.path $context.status $context.routeKey'\n", path.display())
            + "[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";
        let g = Gateway::from_toml(&text);
        get(g.addr, "/hello");
        g.stop();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "GET /hello 200 GET /hello\n");
        let _ = std::fs::remove_file(&path);
    }

    fn new_fields_are_exact_for_proxied_mock_error_and_key_requests(d) {
        let o = Origin::start(|r| {
            if r.target.starts_with("/api/chunked") {
                Reply::Raw(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec())
            } else {
                Reply::ok("hello world")
            }
        });
        let path = temp(&format!("fields-{d}.log"));
        let text = server_toml(d, 2, "")
            + &format!("[access_log]\npath = \"{}\"\n", path.display())
            + &upstream_toml("u", &[o.addr], "")
            + "[[route]]\nkey = \"ANY /api/{proxy+}\"\nupstream = \"u\"\n\n[[route]]\nkey = \"ANY /hello\"\nmock = { body = \"hi\" }\n"
            + KEYS;
        let g = Gateway::from_toml(&text);
        // proxied, with a query and a body
        let proxied = "POST /api/x?q=1&r=%20 HTTP/1.1\r\nHost: api.example:8080\r\nX-Request-Id: t-proxied\r\nContent-Length: 5\r\n\r\n";
        let r = roundtrip(g.addr, format!("{proxied}hello").as_bytes());
        assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
        // proxied, the origin's body chunked: the payload is the chunks' data
        let chunked = "GET /api/chunked HTTP/1.1\r\nHost: h\r\nX-Request-Id: t-chunked\r\n\r\n";
        let r = roundtrip(g.addr, chunked.as_bytes());
        assert_eq!(r.text(), "hello world");
        // a mock, with a body it does not read, and an empty query
        let mock = "POST /hello? HTTP/1.1\r\nHost: h\r\nX-Request-Id: t-mock\r\nContent-Length: 3\r\n\r\n";
        let r = roundtrip(g.addr, format!("{mock}abc").as_bytes());
        assert_eq!(r.text(), "hi");
        // HEAD: no payload at all
        let head = "HEAD /hello HTTP/1.1\r\nHost: h\r\nX-Request-Id: t-head\r\n\r\n";
        assert_eq!(roundtrip(g.addr, head.as_bytes()).status, 200);
        // an error: its JSON body is the payload; HTTP/1.0 without Host has no domain name
        let missing = "GET /missing HTTP/1.0\r\nX-Request-Id: t-404\r\n\r\n";
        let r = roundtrip(g.addr, missing.as_bytes());
        assert_eq!(r.status, 404);
        let not_found = r.body.len();
        // keys: disabled (known, named in the log), unknown, accepted
        let key = |rid: &str, k: &str| format!("GET /keyed HTTP/1.1\r\nHost: h\r\nX-Request-Id: {rid}\r\nx-api-key: {k}\r\n\r\n");
        let r = roundtrip(g.addr, key("t-disabled", "carol-key-0123456789abcdef").as_bytes());
        assert_eq!((r.status, r.text().as_str()), (403, r#"{"message":"Forbidden"}"#));
        let r = roundtrip(g.addr, key("t-unknown", "nobody-0123456789abcdef00").as_bytes());
        assert_eq!((r.status, r.text().as_str()), (403, r#"{"message":"Forbidden"}"#));
        assert_eq!(roundtrip(g.addr, key("t-alice", "alice-key-0123456789abcdef").as_bytes()).status, 200);
        g.stop();
        let log = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);

        let l = line_of(&log, "t-proxied");
        assert_eq!(raw_field(l, "responseLength"), "11", "payload only: {l}");
        assert_eq!(raw_field(l, "requestLength"), (proxied.len() + 5).to_string(), "{l}");
        assert_eq!(raw_field(l, "domainName"), "\"api.example:8080\"");
        assert_eq!(raw_field(l, "rawQueryString"), "\"q=1&r=%20\"");
        assert_eq!(raw_field(l, "integration.endpoint"), format!("\"{}\"", o.addr));
        assert_eq!(raw_field(l, "path"), "\"/api/x\"");
        let l = line_of(&log, "t-chunked");
        assert_eq!(raw_field(l, "responseLength"), "11", "{l}");
        assert_eq!(raw_field(l, "requestLength"), chunked.len().to_string());
        assert_eq!(raw_field(l, "rawQueryString"), "\"-\"");
        let l = line_of(&log, "t-mock");
        assert_eq!(raw_field(l, "responseLength"), "2", "{l}");
        assert_eq!(raw_field(l, "requestLength"), (mock.len() + 3).to_string(), "{l}");
        assert_eq!(raw_field(l, "rawQueryString"), "\"\"", "a '?' with nothing after it");
        assert_eq!(raw_field(l, "integration.endpoint"), "\"-\"");
        assert_eq!(raw_field(l, "domainName"), "\"h\"");
        let l = line_of(&log, "t-head");
        assert_eq!(raw_field(l, "responseLength"), "0", "{l}");
        let l = line_of(&log, "t-404");
        assert_eq!(raw_field(l, "responseLength"), not_found.to_string(), "{l}");
        assert_eq!(raw_field(l, "domainName"), "\"-\"");
        assert_eq!(raw_field(l, "protocol"), "\"HTTP/1.0\"");
        let l = line_of(&log, "t-disabled");
        assert_eq!(raw_field(l, "status"), "403");
        assert_eq!(raw_field(l, "apiKeyName"), "\"carol\"", "{l}");
        assert_eq!(raw_field(l, "errorMessage"), "\"API key disabled\"", "{l}");
        let l = line_of(&log, "t-unknown");
        assert_eq!(raw_field(l, "apiKeyName"), "\"-\"", "{l}");
        assert_eq!(raw_field(l, "errorMessage"), "\"missing or invalid API key\"", "{l}");
        let l = line_of(&log, "t-alice");
        assert_eq!(raw_field(l, "apiKeyName"), "\"alice\"");
        assert_eq!(raw_field(l, "errorMessage"), "\"-\"");
    }

    fn custom_format_has_the_new_variables(d) {
        let o = Origin::start(|_| Reply::ok("hello world"));
        let path = temp(&format!("custom-new-{d}.log"));
        let text = server_toml(d, 1, "")
            + &format!("[access_log]\npath = \"{}\"\nformat = '$context.domainName $context.rawQueryString $context.requestLength $context.responseLength $context.integration.endpoint.'\n", path.display())
            + &upstream_toml("u", &[o.addr], "")
            + "[[route]]\nkey = \"GET /api/{proxy+}\"\nupstream = \"u\"\n";
        let g = Gateway::from_toml(&text);
        let req = "GET /api/x?a=b HTTP/1.1\r\nHost: example.test\r\n\r\n";
        assert_eq!(roundtrip(g.addr, req.as_bytes()).text(), "hello world");
        g.stop();
        let log = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(log, format!("example.test a=b {} 11 {}.\n", req.len(), o.addr));
    }
}

#[test]
fn unknown_format_variable_is_a_config_error() {
    let e = tollgate::config::from_str(
        "[access_log]\npath = \"-\"\nformat = \"$context.bogus\"\n[[route]]\nkey = \"GET /\"\nmock = {}\n",
    )
    .unwrap_err();
    assert_eq!(e.0[0].key, "access_log.format");
    assert_eq!(e.0[0].line, 3);
}

mod review {
    use super::*;

    all_transports! {
        fn requests_refused_at_the_head_are_logged_and_counted(d) {
            // a malformed head (a smuggling probe), an oversized one and a slow one get their
            // 400 / 431 / 408, and each leaves a log line and a count like any other answer
            let path = temp(&format!("rejected-{d}.log"));
            let text = server_toml(d, 1, "")
                + "[server.limits]\nmax_head_bytes = 2048\nmax_uri_bytes = 1024\n"
                + "[server.timeouts]\nheader_read_ms = 300\n"
                + &format!("[access_log]\npath = \"{}\"\n", path.display())
                + "[admin]\nlisten = \"127.0.0.1:0\"\n"
                + "[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";
            let g = Gateway::from_toml(&text);
            let bad = b"GET /hello HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
            assert_eq!(roundtrip(g.addr, bad).status, 400);
            let big = format!("GET /hello HTTP/1.1\r\nHost: h\r\nX-Pad: {}\r\n\r\n", "a".repeat(3000));
            assert_eq!(roundtrip(g.addr, big.as_bytes()).status, 431);
            let mut slow = Client::new(g.addr);
            slow.send(b"GET /hello HTTP/1.1\r\nHo");
            assert_eq!(slow.read(false).unwrap().status, 408);
            assert_eq!(get(g.addr, "/hello").status, 200);
            let admin = g.handle().admin_addr().unwrap();
            let m = get(admin, "/metrics").text();
            for status in [400, 408, 431] {
                let line = format!("tollgate_requests_total{{route=\"$none\",method=\"OTHER\",status=\"{status}\"}} 1\n");
                assert!(m.contains(&line), "{line} missing in\n{m}");
            }
            g.stop();
            let log = std::fs::read_to_string(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            let lines: Vec<&str> = log.lines().collect();
            assert_eq!(lines.len(), 4, "{log}");
            for (l, status) in lines.iter().zip(["400", "431", "408"]) {
                assert_eq!(raw_field(l, "status"), status, "{l}");
                assert_eq!(raw_field(l, "httpMethod"), "\"-\"", "{l}");
                assert_eq!(raw_field(l, "path"), "\"-\"", "{l}");
                assert_eq!(raw_field(l, "routeKey"), "\"-\"", "{l}");
                assert_ne!(raw_field(l, "requestLength"), "0", "{l}");
                assert_ne!(raw_field(l, "errorMessage"), "\"-\"", "{l}");
                assert_eq!(raw_field(l, "requestId").len(), 38, "a generated id: {l}");
            }
            assert_eq!(raw_field(lines[3], "status"), "200");
        }

        fn client_text_cannot_forge_fields_of_a_custom_format(d) {
            // README's quoted style: a `"` in a client's User-Agent or request id must not end
            // its field and forge the ones after it; control bytes and invalid UTF-8 are escaped
            let path = temp(&format!("forge-{d}.log"));
            let text = server_toml(d, 1, "")
                + &format!("[access_log]\npath = \"{}\"\nformat = '$context.status \"$context.userAgent\" $context.requestId'\n", path.display())
                + "[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";
            let g = Gateway::from_toml(&text);
            for raw in [
                &b"GET /hello HTTP/1.1\r\nHost: h\r\nUser-Agent: x\" 999 \"forged\r\nX-Request-Id: r1\r\n\r\n"[..],
                &b"GET /hello HTTP/1.1\r\nHost: h\r\nUser-Agent: a\\\xff\tb\r\nX-Request-Id: q\"q\r\n\r\n"[..],
            ] {
                assert_eq!(roundtrip(g.addr, raw).status, 200);
            }
            g.stop();
            let log = std::fs::read(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            assert_eq!(
                String::from_utf8(log).expect("the log is UTF-8"),
                "200 \"x\\\" 999 \\\"forged\" r1\n200 \"a\\\\\\u00ff\\u0009b\" q\\\"q\n"
            );
        }
    }
}
