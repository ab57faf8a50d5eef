//! CORS in a real browser, both drivers: a page served from one origin (an in-test server)
//! calls tollgate on another port with `fetch(..., {credentials: "include"})`, a custom header
//! and `POST` with a JSON body — a request that needs a preflight. Headless Chromium runs the
//! page and dumps the DOM the script wrote: with the page origin in `[cors]` the call
//! succeeds (and reads an exposed header, not an unexposed one); from an origin not allowed
//! the browser refuses it. The access log shows what the gateway saw: the preflight (answered
//! 204) and the actual request, or the preflight alone.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;

/// Upper bound for one browser run (liveness only).
const BROWSER_LIVENESS: Duration = Duration::from_secs(120);

/// The Chromium binary, installed when missing (failing loudly if that fails).
fn chromium() -> &'static str {
    const BIN: &str = "/usr/bin/chromium";
    if std::path::Path::new(BIN).exists() {
        return BIN;
    }
    common::apt::install(&["chromium"], || std::path::Path::new(BIN).exists());
    BIN
}

/// Runs headless Chromium on `url` and returns the DOM it dumped.
fn dump_dom(url: &str, profile: &std::path::Path) -> String {
    let mut child = Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + BROWSER_LIVENESS;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within {BROWSER_LIVENESS:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// A server for the page: `/page` is HTML whose script calls the gateway at `api` (set once
/// the gateway runs); anything else is 404.
fn page_server(api: Arc<OnceLock<SocketAddr>>) -> Origin {
    Origin::start(move |r| {
        if r.target != "/page" {
            return Reply::Raw(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec());
        }
        let api = api.get().expect("gateway address set");
        let html = format!(
            r#"<!doctype html><html><head><title>cors</title></head><body><div id="out">pending</div>
<script>
fetch("http://{api}/api/items", {{
  method: "POST",
  credentials: "include",
  headers: {{ "x-custom": "1", "content-type": "application/json" }},
  body: JSON.stringify({{ name: "rex" }})
}}).then(r => r.text().then(t => {{
  document.getElementById("out").textContent =
    "OK " + r.status + " " + t + " total=" + r.headers.get("x-total") + " hidden=" + r.headers.get("x-hidden");
}})).catch(e => {{
  document.getElementById("out").textContent = "FAILED " + e;
}});
</script></body></html>"#
        );
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\r\n{html}",
                html.len()
            )
            .into_bytes(),
        )
    })
}

/// The text the page's script left in `<div id="out">`.
fn outcome(dom: &str) -> String {
    let start = dom
        .find("<div id=\"out\">")
        .map(|i| i + 14)
        .unwrap_or_else(|| panic!("{dom}"));
    let end = dom[start..].find("</div>").map(|i| i + start).unwrap();
    dom[start..end].to_string()
}

struct Setup {
    _g: Gateway,
    api_origin: Origin,
    page: Origin,
    log: std::path::PathBuf,
    dir: std::path::PathBuf,
}

/// The API origin, the page server and the gateway with `[cors]` allowing `allowed` (an
/// origin text, or `None`: the page's own origin).
fn setup(d: &str, tag: &str, allowed: Option<&str>) -> Setup {
    let api_origin = Origin::start(|r| {
        let body = format!("created {}", String::from_utf8_lossy(&r.body));
        Reply::Raw(
            format!(
                "HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nx-total: 42\r\nx-hidden: 1\r\n\
                 access-control-allow-origin: https://wrong.example\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    });
    let api = Arc::new(OnceLock::new());
    let page = page_server(api.clone());
    let page_origin = format!("http://127.0.0.1:{}", page.addr.port());
    let dir = std::env::temp_dir().join(format!(
        "tollgate-cors-browser-{}-{d}-{tag}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let allowed = allowed.map_or(page_origin, str::to_string);
    let rest = upstream_toml("items", &[api_origin.addr], "")
        + &format!(
            r#"
[access_log]
path = {:?}
format = '$context.httpMethod $context.path $context.status'
flush_ms = 10

[cors]
allow_origins = ["{allowed}"]
allow_methods = ["GET", "POST"]
allow_headers = ["content-type", "x-custom"]
expose_headers = ["x-total"]
max_age = 60
allow_credentials = true

[[route]]
key = "POST /api/items"
upstream = "items"
"#,
            log.display().to_string()
        );
    // the browser talks plain HTTP to the gateway's plain listener
    let g = Gateway::start(d, 1, &rest);
    api.set(g.plain_addr()).unwrap();
    Setup {
        _g: g,
        api_origin,
        page,
        log,
        dir,
    }
}

/// The access log's lines, once it shows `want` of them (bounded wait).
fn log_lines(log: &std::path::Path, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= want || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

both_drivers! {
    fn a_browser_calls_the_gateway_cross_origin_with_credentials(d) {
        let s = setup(d, "ok", None);
        let url = format!("http://127.0.0.1:{}/page", s.page.addr.port());
        let dom = dump_dom(&url, &s.dir.join("profile"));
        assert_eq!(
            outcome(&dom),
            r#"OK 201 created {"name":"rex"} total=42 hidden=null"#,
            "{dom}"
        );
        // the gateway answered the preflight and served the actual request
        let lines = log_lines(&s.log, 2);
        assert_eq!(lines, ["OPTIONS /api/items 204", "POST /api/items 201"], "{lines:?}");
        // the origin got the actual request only, with the page's origin and custom header
        let seen = s.api_origin.requests();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].header("x-custom"), Some("1"));
        let page_origin = format!("http://127.0.0.1:{}", s.page.addr.port());
        assert_eq!(seen[0].header("origin"), Some(page_origin.as_str()));
        let _ = std::fs::remove_dir_all(&s.dir);
    }

    fn a_browser_refuses_the_answer_for_an_origin_not_allowed(d) {
        let s = setup(d, "refused", Some("https://app.example.com"));
        let url = format!("http://127.0.0.1:{}/page", s.page.addr.port());
        let dom = dump_dom(&url, &s.dir.join("profile"));
        let out = outcome(&dom);
        assert!(out.starts_with("FAILED TypeError"), "{out}\n{dom}");
        // the preflight got its 204 without CORS fields: the browser stopped there
        let lines = log_lines(&s.log, 1);
        assert_eq!(lines, ["OPTIONS /api/items 204"], "{lines:?}");
        assert!(s.api_origin.requests().is_empty());
        let _ = std::fs::remove_dir_all(&s.dir);
    }
}
