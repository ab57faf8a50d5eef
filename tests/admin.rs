//! The admin listener on both drivers: exact counters over two workers, a well-formed Prometheus
//! exposition, the dashboard's JSON, status, redacted config, and the dashboard page itself;
//! the Host rule on every endpoint, the connection, head-size and head-time limits, and the
//! dashboard's server-side history and per-key view.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

fn admin_get(addr: SocketAddr, path: &str) -> Response {
    get(addr, path)
}

/// Checks the text exposition format: HELP/TYPE before a family's samples, every sample line
/// `name{labels} value` with a numeric value, histogram buckets cumulative and ending in +Inf
/// equal to _count. Returns samples by their full name-and-labels.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    let mut last_bucket: HashMap<String, f64> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "sample before its TYPE: {line}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        if name.ends_with("_bucket") {
            let key = series.split(",le=").next().unwrap().to_string();
            let prev = last_bucket.insert(key, v).unwrap_or(0.0);
            assert!(v >= prev, "buckets must be cumulative: {line}");
        }
        samples.insert(series.to_string(), v);
    }
    samples
}

const ROUTES: &str = r#"
[[route]]
key = "GET /hello"
mock = { status = 200, body = "hi" }

[[route]]
key = "GET /boom"
mock = { status = 503, body = "no" }

[[api_key]]
name = "k"
value = "very-secret-key-0123456789"
"#;

/// `GET path` on the admin listener with the given `Host`.
fn get_host(admin: SocketAddr, path: &str, host: &str) -> Response {
    roundtrip(
        admin,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    )
}

fn admin_gateway(d: &str, workers: usize, admin_extra: &str, rest: &str) -> (Gateway, SocketAddr) {
    let text = format!("[admin]\nlisten = \"127.0.0.1:0\"\n{admin_extra}\n{rest}");
    let g = Gateway::start_with(d, workers, "", &text);
    let admin = g.handle().admin_addr().expect("admin listener");
    (g, admin)
}

/// Reads until the peer closes (Ok(0)) or the read times out / fails; the bytes and whether it
/// was a clean close.
fn read_to_close(s: &mut Conn) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(_) => return (got, false),
        }
    }
}

/// A JSON number field's value in `text` (the first occurrence after `from`).
fn field_after(text: &str, from: usize, name: &str) -> Option<f64> {
    let pat = format!("\"{name}\":");
    let at = text[from..].find(&pat)? + from + pat.len();
    let end = text[at..].find([',', '}'])? + at;
    text[at..end].parse().ok()
}

/// Sums a numeric field over every sample of a `/history` answer.
fn history_sum(text: &str, name: &str) -> f64 {
    let pat = format!("\"{name}\":");
    let mut sum = 0.0;
    let mut from = 0;
    while let Some(i) = text[from..].find(&pat) {
        let at = from + i + pat.len();
        let end = text[at..].find([',', '}']).unwrap() + at;
        sum += text[at..end].parse::<f64>().unwrap_or(0.0);
        from = end;
    }
    sum
}

const DASH_ROUTES: &str = r#"
[[route]]
key = "GET /hello"
mock = { status = 200, body = "hi" }

[[route]]
key = "GET /moved"
mock = { status = 301, body = "" }

[[route]]
key = "GET /boom"
mock = { status = 503, body = "no" }

[[route]]
key = "GET /keyed"
mock = { status = 200, body = "k" }
api_key_required = true

[[usage_plan]]
name = "gold"
throttle = { rate = 1, burst = 2 }
quota = { limit = 100, period = "day" }

[[api_key]]
name = "alice"
value = "alice-key-0123456789abcdef"
plan = "gold"
"#;

both_drivers! {
    fn counters_are_exact_across_two_workers_and_the_exposition_is_well_formed(d) {
        let g = Gateway::start_with(d, 2, "", &(String::from("[admin]\nlisten = \"127.0.0.1:0\"\n") + ROUTES));
        let admin = g.handle().admin_addr().expect("admin listener");
        for i in 0..300 {
            // a fresh connection each time: the kernel spreads them over both workers
            let r = get(g.addr, if i % 3 == 0 { "/boom" } else { "/hello" });
            assert!(r.status == 200 || r.status == 503);
        }
        assert_eq!(get(g.addr, "/nope").status, 404);
        let m = admin_get(admin, "/metrics");
        assert_eq!(m.status, 200);
        assert!(m.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
        let s = parse_exposition(&m.text());
        assert_eq!(s["tollgate_requests_total{route=\"GET /hello\",method=\"GET\",status=\"200\"}"], 200.0);
        assert_eq!(s["tollgate_requests_total{route=\"GET /boom\",method=\"GET\",status=\"503\"}"], 100.0);
        assert_eq!(s["tollgate_requests_total{route=\"$none\",method=\"GET\",status=\"404\"}"], 1.0);
        assert_eq!(s["tollgate_5xx_errors_total{route=\"GET /boom\"}"], 100.0);
        assert_eq!(s["tollgate_4xx_errors_total{route=\"$none\"}"], 1.0);
        assert_eq!(s["tollgate_request_duration_seconds_count{route=\"GET /hello\"}"], 200.0);
        assert_eq!(s["tollgate_request_duration_seconds_bucket{route=\"GET /hello\",le=\"+Inf\"}"], 200.0);
        let per_worker: f64 = s.iter().filter(|(k, _)| k.starts_with("tollgate_worker_requests_total")).map(|(_, v)| v).sum();
        assert_eq!(per_worker, 301.0);
        assert_eq!(s.keys().filter(|k| k.starts_with("tollgate_worker_active_connections")).count(), 2);
    }

    fn stats_status_config_and_dashboard(d) {
        let g = Gateway::start_with(d, 2, "", &(String::from("[admin]\nlisten = \"127.0.0.1:0\"\n") + ROUTES));
        let admin = g.handle().admin_addr().unwrap();
        for _ in 0..10 {
            get(g.addr, "/hello");
        }
        let st = admin_get(admin, "/stats");
        assert_eq!(st.header("content-type"), Some("application/json"));
        let t = st.text();
        for k in ["\"version\"", "\"uptime_s\"", "\"workers\"", "\"totals\":{\"requests\":10,", "\"routes\"", "\"upstreams\"", "\"route\":\"GET /hello\",\"requests\":10,"] {
            assert!(t.contains(k), "{k} missing in {t}");
        }
        let status = admin_get(admin, "/status").text();
        assert!(status.contains("\"workers\":2") && status.contains("\"config_hash\":\""), "{status}");
        assert!(status.contains(&format!("\"{d}\"")), "{status}");
        let cfg = admin_get(admin, "/config");
        assert_eq!(cfg.status, 200);
        assert!(!cfg.text().contains("very-secret-key"), "{}", cfg.text());
        assert!(cfg.text().contains("<redacted>"));
        let page = admin_get(admin, "/");
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(page.text().contains("id=\"total-rps\""));
        assert_eq!(admin_get(admin, "/nope").status, 404);
        assert_eq!(roundtrip(admin, b"POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n").status, 405);
    }

    fn every_admin_endpoint_needs_a_local_or_ip_host(d) {
        let (_g, admin) = admin_gateway(d, 1, "", ROUTES);
        for path in ["/", "/metrics", "/stats", "/history", "/status", "/config"] {
            for host in ["evil.example", "evil.example:80", "127.0.0.1.nip.io"] {
                let r = get_host(admin, path, host);
                assert_eq!(r.status, 403, "{path} with Host {host}");
                assert_eq!(r.text(), r#"{"message":"Forbidden"}"#);
                assert_eq!(r.header("content-type"), Some("application/json"));
            }
            for host in [admin.to_string(), "localhost".into(), format!("localhost:{}", admin.port()), "[::1]".into()] {
                assert_eq!(get_host(admin, path, &host).status, 200, "{path} with Host {host}");
            }
        }
        // whatever the method or path: the Host rule comes first
        let r = roundtrip(admin, b"POST /metrics HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.status, 403);
        assert_eq!(get_host(admin, "/nope", "evil.example").status, 403);
        // HTTP/1.0 without Host names no admin host either
        let r = roundtrip(admin, b"GET /metrics HTTP/1.0\r\n\r\n");
        assert_eq!(r.status, 403);
    }

    fn connections_beyond_the_limit_are_refused_and_the_others_keep_working(d) {
        let (_g, admin) = admin_gateway(d, 1, "max_connections = 2", ROUTES);
        let req = format!("GET /status HTTP/1.1\r\nHost: {admin}\r\n\r\n");
        let mut held: Vec<Client> = (0..2).map(|_| Client::new(admin)).collect();
        for c in held.iter_mut() {
            c.send(req.as_bytes()); // answered: each connection has its thread
            assert_eq!(c.read(false).unwrap().status, 200);
        }
        let started = Instant::now();
        let mut extra = connect(admin);
        let (bytes, closed) = read_to_close(&mut extra);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        assert!(text.ends_with(r#"{"message":"Service Unavailable"}"#), "{text}");
        assert!(closed, "the refused connection is closed");
        assert!(started.elapsed() < Duration::from_secs(5), "refused at once, not after a timeout");
        // the two admitted connections still work
        for c in held.iter_mut() {
            c.send(req.as_bytes());
            assert_eq!(c.read(false).unwrap().status, 200);
        }
        // a place is given back when a connection ends
        drop(held.pop());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut c = Client::new(admin);
            c.send(req.as_bytes());
            match c.read(false) {
                Some(r) if r.status == 200 => break,
                other => assert!(Instant::now() < deadline, "no place freed: {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn an_oversized_admin_head_gets_431(d) {
        let (_g, admin) = admin_gateway(d, 1, "max_request_bytes = 1024", ROUTES);
        let big = format!("GET /status HTTP/1.1\r\nHost: {admin}\r\nX-Pad: {}\r\n\r\n", "a".repeat(2000));
        let mut c = connect(admin);
        c.write_all(big.as_bytes()).unwrap();
        let (bytes, _) = read_to_close(&mut c);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(text.ends_with(r#"{"message":"Request Header Fields Too Large"}"#), "{text}");
        let fits = format!("GET /status HTTP/1.1\r\nHost: {admin}\r\nX-Pad: {}\r\n\r\n", "a".repeat(800));
        assert_eq!(roundtrip(admin, fits.as_bytes()).status, 200);
    }

    fn idle_and_trickling_admin_connections_are_closed_at_the_deadline(d) {
        let (_g, admin) = admin_gateway(d, 1, "idle_timeout_ms = 300", ROUTES);
        // idle: closed (EOF) well before the client's own 10 s read timeout
        let mut idle = connect(admin);
        let (bytes, closed) = read_to_close(&mut idle);
        assert!(bytes.is_empty() && closed, "idle connection closed silently: {bytes:?}");
        // idle after a response too
        let mut c = Client::new(admin);
        c.send(format!("GET /status HTTP/1.1\r\nHost: {admin}\r\n\r\n").as_bytes());
        assert_eq!(c.read(false).unwrap().status, 200);
        let (bytes, closed) = read_to_close(&mut c.stream);
        assert!(bytes.is_empty() && closed, "closed after the idle time: {bytes:?}");
        // a slow-loris: one byte every 20 ms never completes a head. Each byte would renew a
        // per-read timeout; the head's deadline closes it anyway (with a 408), long before all
        // 250 bytes (5 s) are sent.
        let mut s = connect(admin);
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let head = format!("GET /status HTTP/1.1\r\nHost: {admin}\r\nX-Slow: {}", "a".repeat(250));
        let mut got = Vec::new();
        let mut closed = false;
        for b in head.as_bytes() {
            if s.write_all(std::slice::from_ref(b)).is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 256];
            match s.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        assert!(closed, "the trickling connection was never closed");
        let text = String::from_utf8_lossy(&got).into_owned();
        assert!(text.starts_with("HTTP/1.1 408 ") && text.contains("connection: close"), "{text}");
    }

    fn a_new_page_gets_the_last_seconds_by_status_class_and_the_keys(d) {
        let (g, admin) = admin_gateway(d, 2, "", DASH_ROUTES);
        for _ in 0..20 {
            assert_eq!(get(g.addr, "/hello").status, 200);
        }
        for _ in 0..2 {
            assert_eq!(get(g.addr, "/moved").status, 301);
        }
        for _ in 0..7 {
            assert_eq!(get(g.addr, "/boom").status, 503);
        }
        for _ in 0..3 {
            assert_eq!(get(g.addr, "/nope").status, 404);
        }
        // one connection (one worker): burst 2, then throttled; a disabled or unknown key is a 403
        let mut c = Client::new(g.addr);
        let mut statuses = Vec::new();
        for _ in 0..3 {
            c.send(b"GET /keyed HTTP/1.1\r\nHost: h\r\nx-api-key: alice-key-0123456789abcdef\r\n\r\n");
            statuses.push(c.read(false).unwrap().status);
        }
        assert_eq!(statuses, vec![200, 200, 429]);
        let sent = 20 + 2 + 7 + 3 + 3;
        // a page opened now: wait (bounded) until the sampler has taken in every request
        let deadline = Instant::now() + Duration::from_secs(10);
        let h = loop {
            let h = get(admin, "/history");
            assert_eq!(h.status, 200);
            assert_eq!(h.header("content-type"), Some("application/json"));
            let t = h.text();
            if history_sum(&t, "requests") as u64 == sent {
                break t;
            }
            assert!(Instant::now() < deadline, "history never reached {sent}: {t}");
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(h.starts_with("{\"interval_s\":1,\"now\":"), "{h}");
        assert_eq!(history_sum(&h, "status_1xx"), 0.0);
        assert_eq!(history_sum(&h, "status_2xx"), 22.0, "{h}");
        assert_eq!(history_sum(&h, "status_3xx"), 2.0, "{h}");
        assert_eq!(history_sum(&h, "status_4xx"), 4.0, "{h}");
        assert_eq!(history_sum(&h, "status_5xx"), 7.0, "{h}");
        assert_eq!(history_sum(&h, "throttled"), 1.0, "{h}");
        assert_eq!(history_sum(&h, "GET /hello"), 20.0, "{h}");
        assert_eq!(history_sum(&h, "GET /keyed"), 3.0, "{h}");
        assert_eq!(history_sum(&h, "$none"), 3.0, "{h}");
        // the seconds are in the past, in order, and carry latencies where there was traffic
        let now = field_after(&h, 0, "now").unwrap();
        let mut from = 0;
        let mut last_t = 0.0;
        let mut samples = 0;
        while let Some(i) = h[from..].find("{\"t\":") {
            from += i + 1;
            let t = field_after(&h, from, "t").unwrap();
            assert!(t > last_t && t <= now, "{t} after {last_t}, now {now}");
            last_t = t;
            samples += 1;
            if field_after(&h, from, "requests").unwrap() > 0.0 {
                assert!(field_after(&h, from, "p99_ms").is_some(), "{h}");
            }
        }
        assert!(samples >= 1);
        // later samples only add what came later (nothing): no second counted twice
        std::thread::sleep(Duration::from_millis(1200));
        let again = get(admin, "/history").text();
        assert_eq!(history_sum(&again, "requests") as u64, sent, "{again}");
        // ?since=T: only the samples taken after T (the page's follow-up polls)
        let later = get(admin, &format!("/history?since={last_t:.3}")).text();
        let mut from = 0;
        while let Some(i) = later[from..].find("{\"t\":") {
            from += i + 1;
            let t = field_after(&later, from, "t").unwrap();
            assert!(t > last_t, "{t} is not after {last_t}: {later}");
        }
        assert!(
            get(admin, &format!("/history?since={:.3}", last_t - 0.001)).text().contains(&format!("{{\"t\":{last_t:.3},")),
            "the last sample is after a moment before it"
        );
        // the dashboard's JSON: status classes and the per-key view
        let st = get(admin, "/stats").text();
        assert!(st.contains("\"totals\":{\"requests\":35,\"status_2xx\":22,\"status_3xx\":2,\"status_4xx\":4,\"status_5xx\":7,\"throttled\":1}"), "{st}");
        assert!(st.contains("\"keys\":[{\"name\":\"alice\",\"plan\":\"gold\",\"period\":\"day\",\"enabled\":true,\"requests\":2,\"throttled\":1,\"quota_rejected\":0,\"quota_used\":2,\"quota_limit\":100}]"), "{st}");
        // the page loads the history on open and shows the class breakdown and the keys
        let page = get(admin, "/").text();
        for id in ["pollHistory(true)", "\"/history\"", "id=\"class-chart\"", "id=\"key-table\""] {
            assert!(page.contains(id), "{id} missing in the dashboard");
        }
    }
}

#[test]
fn admin_limits_out_of_range_name_the_key_and_line() {
    let text = "[admin]\nlisten = \"127.0.0.1:0\"\nmax_connections = 0\nmax_request_bytes = 10\nidle_timeout_ms = 0\n[[route]]\nkey = \"GET /x\"\nmock = {}\n";
    let e = tollgate::config::from_str(text).unwrap_err();
    let got: Vec<(&str, usize, &str)> =
        e.0.iter()
            .map(|e| (e.key.as_str(), e.line, e.message.as_str()))
            .collect();
    // the same wording as every other range in the config (Ctx::range)
    for want in [
        ("admin.max_connections", 3, "must be in 1..=4096 (got 0)"),
        (
            "admin.max_request_bytes",
            4,
            "must be in 1024..=1048576 (got 10)",
        ),
        (
            "admin.idle_timeout_ms",
            5,
            "must be in 100..=3600000 (got 0)",
        ),
    ] {
        assert!(got.contains(&want), "{want:?} in {got:?}");
    }
    let ok = tollgate::config::from_str(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nkey = \"GET /x\"\nmock = {}\n",
    )
    .unwrap();
    assert_eq!(ok.admin_limits, tollgate::config::AdminLimits::default());
}

mod review {
    use super::*;

    both_drivers! {
        fn history_stays_exact_across_a_reload_that_renumbers_routes(d) {
            // two workers; a reload inserts a route before the counted ones, so every index
            // moves: the history's per-second differences are taken by route key, so nothing is
            // lost and nothing counted twice, throttled requests included
            let routes = |extra: &str| {
                format!("[admin]\nlisten = \"127.0.0.1:0\"\n{extra}\n[[route]]\nkey = \"GET /hello\"\nmock = {{ body = \"hi\" }}\n\n[[route]]\nkey = \"GET /t\"\nmock = {{ body = \"t\" }}\nthrottle = {{ rate = 0.001, burst = 1 }}\n")
            };
            let g = Gateway::start_with(d, 2, "", &routes(""));
            let admin = g.handle().admin_addr().expect("admin listener");
            for _ in 0..10 {
                assert_eq!(get(g.addr, "/hello").status, 200);
            }
            let t: Vec<u16> = (0..3).map(|_| get(g.addr, "/t").status).collect();
            let throttled_before = t.iter().filter(|&&s| s == 429).count();
            assert!(throttled_before >= 1, "{t:?}");
            // let the sampler see the first traffic before the reload
            std::thread::sleep(Duration::from_millis(1500));
            let text = server_toml(d, 2, "") + &routes("[[route]]\nkey = \"GET /first\"\nmock = { body = \"f\" }\n");
            g.write_config(&text);
            g.reload().expect("reload applies");
            for _ in 0..5 {
                assert_eq!(get(g.addr, "/hello").status, 200);
                assert_eq!(get(g.addr, "/first").status, 200);
            }
            let t: Vec<u16> = (0..3).map(|_| get(g.addr, "/t").status).collect();
            let throttled = throttled_before + t.iter().filter(|&&s| s == 429).count();
            let sent = 10 + 3 + 10 + 3;
            let deadline = Instant::now() + Duration::from_secs(10);
            let h = loop {
                let h = get(admin, "/history").text();
                if history_sum(&h, "requests") as u64 >= sent {
                    break h;
                }
                assert!(Instant::now() < deadline, "history never reached {sent}: {h}");
                std::thread::sleep(Duration::from_millis(200));
            };
            std::thread::sleep(Duration::from_millis(1200)); // and nothing more comes
            let h2 = get(admin, "/history").text();
            for h in [&h, &h2] {
                assert_eq!(history_sum(h, "requests") as u64, sent, "{h}");
                assert_eq!(history_sum(h, "GET /hello"), 15.0, "{h}");
                assert_eq!(history_sum(h, "GET /first"), 5.0, "{h}");
                assert_eq!(history_sum(h, "GET /t"), 6.0, "{h}");
                assert_eq!(history_sum(h, "throttled") as usize, throttled, "{h}");
            }
        }

        fn stopping_the_server_releases_the_admin_listener(d) {
            let (g, admin) = admin_gateway(d, 1, "", ROUTES);
            assert_eq!(get(admin, "/status").status, 200);
            // a connection still open at shutdown does not keep the listener either
            let mut open = Client::new(admin);
            open.send(format!("GET /status HTTP/1.1\r\nHost: {admin}\r\n\r\n").as_bytes());
            assert_eq!(open.read(false).unwrap().status, 200);
            g.stop();
            // the address is free again: a server started anew in this process can bind it
            let l = std::net::TcpListener::bind(admin);
            assert!(l.is_ok(), "the admin address is still taken after stop: {l:?}");
        }

        fn every_way_an_admin_connection_ends_gives_its_place_back(d) {
            // two places; each round fills both with connections that end differently (an
            // error answer (400, 431), a head timeout (408), a refused body, a client that
            // shuts its socket), then both places must be free again for two new clients
            let (_g, admin) = admin_gateway(d, 1, "max_connections = 2\nidle_timeout_ms = 300\nmax_request_bytes = 1024", ROUTES);
            let ok = format!("GET /status HTTP/1.1\r\nHost: {admin}\r\n\r\n");
            let endings: [&dyn Fn() -> Client; 5] = [
                &|| { let mut c = Client::new(admin); c.send(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"); c },
                &|| { let mut c = Client::new(admin); c.send(format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000)).as_bytes()); c },
                &|| { let mut c = Client::new(admin); c.send(b"GET /status HTTP/1.1\r\nHo"); c },
                &|| { let mut c = Client::new(admin); c.send(b"POST /reload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"); c },
                &|| { let c = Client::new(admin); let _ = c.stream.shutdown(std::net::Shutdown::Both); c },
            ];
            for (round, end) in endings.iter().enumerate() {
                let held: Vec<Client> = (0..2).map(|_| end()).collect();
                std::thread::sleep(Duration::from_millis(800)); // past idle_timeout and the linger
                drop(held);
                let deadline = Instant::now() + Duration::from_secs(5);
                let mut served = 0;
                while served < 2 {
                    let mut clients: Vec<Client> = (0..2).map(|_| Client::new(admin)).collect();
                    served = 0;
                    for c in clients.iter_mut() {
                        c.send(ok.as_bytes());
                        if c.read(false).is_some_and(|r| r.status == 200) {
                            served += 1;
                        }
                    }
                    assert!(Instant::now() < deadline, "round {round}: a place was never given back");
                }
            }
        }

        fn the_host_rule_has_no_bypass(d) {
            let (_g, admin) = admin_gateway(d, 1, "", ROUTES);
            let status = |raw: &str| roundtrip(admin, raw.as_bytes()).status;
            let get = |host: &str| status(&format!("GET /status HTTP/1.1\r\nHost: {host}\r\n\r\n"));
            // absolute-form: the target's authority is the host (RFC 9112 §3.2.2), both ways
            assert_eq!(status("GET http://evil.example/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 403);
            assert_eq!(status("GET http://127.0.0.1/status HTTP/1.1\r\nHost: evil.example\r\n\r\n"), 200);
            // names that resolve to loopback but are not the literal `localhost`, and numeric
            // forms a resolver (not an IP parser) accepts
            for host in ["localhost.", "127.0.0.1.", "127.1", "2130706433", "0x7f.1", "localhost.evil.example"] {
                assert_eq!(get(host), 403, "{host}");
            }
            // malformed: userinfo, a zone id, an empty or bad port, two Host lines (RFC 9112 §3.2)
            for host in ["a@127.0.0.1", "[fe80::1%25eth0]", "localhost:", "localhost:abc"] {
                assert_eq!(get(host), 400, "{host}");
            }
            assert_eq!(status("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil\r\n\r\n"), 400);
            // case does not matter for the name; IP literals of any form are addresses
            for host in ["LOCALHOST", "LocalHost:9", "[::ffff:127.0.0.1]", "[::1]:1"] {
                assert_eq!(get(host), 200, "{host}");
            }
        }
    }
}
