//! The admin listener on both drivers: exact counters over two workers, a well-formed Prometheus
//! exposition, the dashboard's JSON, status, redacted config, and the dashboard page itself.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

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
        assert_eq!(roundtrip(admin, b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").status, 405);
    }
}
