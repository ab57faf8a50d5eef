//! IP rules on the wire, both drivers: `server.allow_ips` / `deny_ips` and a route's, over
//! IPv4 and IPv6 loopback; `server.trusted_proxies` with `X-Forwarded-For` chains (the
//! right-most untrusted entry is the client, spoofed left-most entries ignored, several field
//! lines, garbage stops the walk), an untrusted sender's `X-Forwarded-For` ignored; the client
//! address in the access log (404s and CORS preflights included: it is found once, in the
//! request filter), as the `throttle_by = "ip"` key and as the Lambda events' `sourceIp`.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::SocketAddr;

use common::*;

/// A gateway listening on IPv4 and IPv6 loopback with `server` lines and `rest`; returns it
/// with its (v4, v6) plain addresses.
fn start(d: &str, server: &str, rest: &str) -> (Gateway, SocketAddr, SocketAddr) {
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\nworkers = 1\ndriver = \"{d}\"\n{server}\n{rest}"
    );
    let g = Gateway::from_toml(&text);
    let addrs = g.handle().local_addrs();
    let v4 = *addrs
        .iter()
        .find(|a| a.is_ipv4())
        .expect("an IPv4 listener");
    let v6 = *addrs
        .iter()
        .find(|a| a.is_ipv6())
        .expect("an IPv6 listener");
    (g, v4, v6)
}

const ROUTES: &str = r#"
[[route]]
key = "GET /open"
mock = { body = "open" }

[[route]]
key = "GET /ten"
mock = { body = "ten" }
allow_ips = ["10.0.0.0/8"]

[[route]]
key = "GET /no-v6"
mock = { body = "no-v6" }
deny_ips = ["::1/128"]
"#;

fn get_with(addr: SocketAddr, path: &str, fields: &str) -> Response {
    roundtrip(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: api.example.com\r\n{fields}\r\n").as_bytes(),
    )
}

/// Remote functions sign their invocations: any credentials will do for a recording endpoint.
fn credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDIPRULESTEST");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "secretipulestest");
    });
}

fn status(addr: SocketAddr, path: &str) -> u16 {
    get_with(addr, path, "").status
}

fn assert_forbidden(r: &Response) {
    assert_eq!(r.status, 403, "{}", r.head);
    assert_eq!(r.text(), r#"{"message":"Forbidden"}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

both_drivers! {
    fn route_rules_on_ipv4_and_ipv6(d) {
        let (_g, v4, v6) = start(d, "", ROUTES);
        assert_eq!(status(v4, "/open"), 200);
        assert_eq!(status(v6, "/open"), 200);
        // allow_ips: loopback is not in 10/8
        assert_forbidden(&get_with(v4, "/ten", ""));
        assert_forbidden(&get_with(v6, "/ten", ""));
        // deny_ips: ::1 refused, 127.0.0.1 served
        assert_forbidden(&get_with(v6, "/no-v6", ""));
        assert_eq!(get_with(v4, "/no-v6", "").text(), "no-v6");
        // an unknown path is still 404 (rules apply to routed requests)
        assert_eq!(status(v4, "/nowhere"), 404);
    }

    fn server_rules_apply_before_the_routes(d) {
        // deny wins over allow; the server's rules before the route's
        let (_g, v4, v6) = start(d, "allow_ips = [\"127.0.0.0/8\", \"::1\"]\ndeny_ips = [\"127.0.0.1/32\"]", ROUTES);
        assert_forbidden(&get_with(v4, "/open", ""));
        assert_eq!(status(v6, "/open"), 200);
        let (_g, v4, v6) = start(d, "allow_ips = [\"::1\"]", ROUTES);
        assert_forbidden(&get_with(v4, "/open", ""));
        assert_eq!(status(v6, "/open"), 200);
        assert_forbidden(&get_with(v6, "/no-v6", ""));
        // an IPv4 block matches an IPv4 client whatever the listener's family
        let (_g, v4, v6) = start(d, "allow_ips = [\"127.0.0.0/8\"]", ROUTES);
        assert_eq!(status(v4, "/open"), 200);
        assert_forbidden(&get_with(v6, "/open", ""));
    }

    fn trusted_proxies_name_the_client_from_x_forwarded_for(d) {
        let dir = std::env::temp_dir().join(format!("tollgate-ip-rules-{}-{d}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("access.log");
        let rest = format!(
            "[access_log]\npath = {:?}\nformat = '$context.requestId $context.ip $context.status'\n\
             [cors]\nallow_origins = [\"https://app.example\"]\n{ROUTES}\n\
             [[route]]\nkey = \"GET /web\"\nmock = {{ body = \"web\" }}\nallow_ips = [\"203.0.113.0/24\"]\n",
            log.display().to_string()
        );
        let (g, v4, v6) = start(
            d,
            "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\ndeny_ips = [\"198.51.100.66\"]",
            &rest,
        );
        let xff = |rid: &str, v: &str| format!("x-request-id: {rid}\r\nX-Forwarded-For: {v}\r\n");
        // one proxy: the entry it appended is the client
        assert_eq!(get_with(v4, "/web", &xff("one", "203.0.113.9")).text(), "web");
        // a spoofed left-most entry is ignored: the right-most untrusted one decides
        assert_forbidden(&get_with(v4, "/web", &xff("spoof", "203.0.113.5, 198.51.100.7")));
        // trusted hops are skipped, from the right
        let r = get_with(v4, "/web", &xff("chain", "198.51.100.7, 203.0.113.9, 10.1.2.3, 10.9.9.9"));
        assert_eq!(r.text(), "web");
        // every field line counts, in order (RFC 9110 §5.3), with ports and spaces
        let two = "x-request-id: lines\r\nX-Forwarded-For: 203.0.113.9:4711\r\nx-forwarded-for:  10.0.0.1 \r\n";
        assert_eq!(get_with(v4, "/web", two).text(), "web");
        // garbage stops the walk at the last trusted hop (10.0.0.1: not in the allow list)
        assert_forbidden(&get_with(v4, "/web", &xff("garbage", "203.0.113.9, unknown, 10.0.0.1")));
        // the server's deny list sees the client too
        assert_forbidden(&get_with(v4, "/open", &xff("denied", "198.51.100.66")));
        // no X-Forwarded-For: the proxy itself is the client
        assert_forbidden(&get_with(v4, "/web", "x-request-id: bare\r\n"));
        // an untrusted sender's X-Forwarded-For is ignored (::1 is not a trusted proxy)
        assert_forbidden(&get_with(v6, "/web", &xff("untrusted", "203.0.113.9")));
        assert_eq!(get_with(v6, "/open", &xff("v6", "198.51.100.66")).text(), "open");
        // answered before or without a route: logged with the client too
        assert_eq!(get_with(v4, "/nowhere", &xff("notfound", "203.0.113.44")).status, 404);
        let pre = roundtrip(
            v4,
            b"OPTIONS /open HTTP/1.1\r\nHost: api.example.com\r\nx-request-id: preflight\r\n\
              Origin: https://app.example\r\nAccess-Control-Request-Method: GET\r\n\
              X-Forwarded-For: 203.0.113.45\r\n\r\n",
        );
        assert_eq!(pre.status, 204, "{}", pre.head);
        g.stop();
        let text = std::fs::read_to_string(&log).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "bare 127.0.0.1 403",
                "chain 203.0.113.9 200",
                "denied 198.51.100.66 403",
                "garbage 10.0.0.1 403",
                "lines 203.0.113.9 200",
                "notfound 203.0.113.44 404",
                "one 203.0.113.9 200",
                "preflight 203.0.113.45 204",
                "spoof 198.51.100.7 403",
                "untrusted ::1 403",
                "v6 ::1 200",
            ],
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn throttle_by_ip_keys_on_the_client_behind_trusted_proxies(d) {
        let rest = "[[route]]\nkey = \"GET /limited\"\nmock = { body = \"ok\" }\n\
                    throttle = { rate = 0.001, burst = 1, throttle_by = \"ip\" }\n";
        let (_g, v4, _v6) = start(d, "trusted_proxies = [\"127.0.0.1\"]", rest);
        let from = |ip: &str| get_with(v4, "/limited", &format!("X-Forwarded-For: {ip}\r\n")).status;
        assert_eq!(from("203.0.113.1"), 200);
        // another client behind the same proxy has its own bucket
        assert_eq!(from("203.0.113.2"), 200);
        assert_eq!(from("203.0.113.1"), 429);
        assert_eq!(from("203.0.113.2"), 429);
    }

    fn lambda_events_name_the_client_behind_trusted_proxies(d) {
        credentials();
        let ep = Origin::start(|_| {
            let body = r#"{"statusCode":200,"body":"ok"}"#;
            Reply::Raw(
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len())
                    .into_bytes(),
            )
        });
        let rest = format!(
            "[[function]]\nname = \"f\"\narn = \"arn:aws:lambda:eu-west-1:123456789012:function:f\"\n\
             endpoint = \"http://{}\"\n\
             [[route]]\nkey = \"GET /v2\"\nfunction = \"f\"\n\
             [[route]]\nkey = \"GET /v1\"\nfunction = \"f\"\npayload_format = \"1.0\"\n",
            ep.addr
        );
        let (_g, v4, _v6) = start(d, "trusted_proxies = [\"127.0.0.1\"]", &rest);
        for path in ["/v2", "/v1"] {
            let r = get_with(v4, path, "X-Forwarded-For: 198.51.100.1, 203.0.113.77\r\n");
            assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{path}: {}", r.head);
        }
        let events: Vec<serde_json::Value> = ep
            .requests()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["version"], "2.0");
        assert_eq!(events[0]["requestContext"]["http"]["sourceIp"], "203.0.113.77");
        assert_eq!(events[1]["version"], "1.0");
        assert_eq!(events[1]["requestContext"]["identity"]["sourceIp"], "203.0.113.77");
    }
}
