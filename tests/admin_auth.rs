//! The admin listener's bearer token on both drivers: with `admin.token_sha256` set, every
//! endpoint (GET and POST, the dashboard page and its data, the Lambda Invoke relay, unknown
//! paths) answers 401 with the challenge without the token or with a wrong one, and serves with
//! it; `metrics_public` opens exactly `GET /metrics`; a reload changes the token for the next
//! request on a connection that is already open; the dashboard page carries the token logic.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::*;

const TOKEN: &str = "correct-horse-battery-staple";
const ROUTES: &str = "[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";
const CHALLENGE: &str = "Bearer realm=\"tollgate admin\"";

fn sha256_hex(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn admin_toml(token: &str, metrics_public: bool) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_sha256 = \"{}\"\nmetrics_public = {metrics_public}\n{ROUTES}",
        sha256_hex(token)
    )
}

fn gateway(d: &str, token: &str, metrics_public: bool) -> (Gateway, SocketAddr) {
    let g = Gateway::start_with(d, 1, "", &admin_toml(token, metrics_public));
    let admin = g.handle().admin_addr().expect("admin listener");
    (g, admin)
}

/// `METHOD path` with an optional `Authorization` field value, on a fresh connection.
fn call(admin: SocketAddr, method: &str, path: &str, auth: Option<&str>) -> Response {
    let field = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let body = if method == "POST" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    roundtrip(
        admin,
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{field}{body}\r\n").as_bytes(),
    )
}

fn assert_refused(r: &Response, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    assert_eq!(r.header("www-authenticate"), Some(CHALLENGE), "{what}");
}

/// Every admin endpoint, by method and path, with the status it answers with the token.
const ENDPOINTS: &[(&str, &str, u16)] = &[
    ("GET", "/metrics", 200),
    ("HEAD", "/metrics", 200),
    ("GET", "/stats", 200),
    ("GET", "/history", 200),
    ("GET", "/status", 200),
    ("GET", "/config", 200),
    ("GET", "/", 200),
    ("POST", "/reload", 200),
    ("GET", "/nope", 404),
    ("POST", "/stats", 405),
];

both_drivers! {
    fn every_admin_endpoint_needs_the_token(d) {
        let (_g, admin) = gateway(d, TOKEN, false);
        let good = format!("Bearer {TOKEN}");
        for &(m, p, ok) in ENDPOINTS {
            let what = format!("{m} {p}");
            assert_refused(&call(admin, m, p, None), &format!("{what} without a token"));
            for wrong in [
                format!("Bearer {TOKEN}x"),
                "Bearer x".to_string(),
                format!("Basic {TOKEN}"),
                format!("Bearer  {}", &TOKEN[1..]),
                sha256_hex(TOKEN),
                format!("Bearer {}", sha256_hex(TOKEN)), // the hash is not the token
            ] {
                assert_refused(&call(admin, m, p, Some(&wrong)), &format!("{what} with {wrong}"));
            }
            let r = call(admin, m, p, Some(&good));
            assert_eq!(r.status, ok, "{what} with the token: {}", r.text());
            assert_eq!(r.header("www-authenticate"), None, "{what}");
            let r = call(admin, m, p, Some(&format!("bearer {TOKEN}")));
            assert_eq!(r.status, ok, "{what}: the scheme is case-insensitive");
        }
        // a JSON 401 for data, the static page (which asks for the token) for the dashboard
        let r = call(admin, "GET", "/stats", None);
        assert_eq!(r.text(), r#"{"message":"Unauthorized"}"#);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let r = call(admin, "GET", "/", None);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r.text().contains("id=\"token-form\""), "{}", r.text());
        // the data is not in the refused page: the page is the embedded static file
        assert_eq!(r.text(), tollgate::admin::DASHBOARD);
        // the Host rule still answers first
        let r = roundtrip(admin, b"GET /stats HTTP/1.1\r\nHost: evil.example\r\n\r\n");
        assert_eq!(r.status, 403);
    }

    fn a_refusal_keeps_the_connection_and_the_next_request_with_the_token_is_served(d) {
        let (_g, admin) = gateway(d, TOKEN, false);
        let mut c = Client::new(admin);
        c.send(b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let r = c.read(false).unwrap();
        assert_refused(&r, "no token");
        c.send(format!("GET /status HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").as_bytes());
        let r = c.read(false).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.text().contains("\"config_hash\""), "{}", r.text());
        // a refused request with a body is answered, then the connection closes (the body was
        // not read, so the stream would be out of step)
        c.send(b"POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello");
        let r = c.read(false).unwrap();
        assert_refused(&r, "a body without the token");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed());
    }

    fn the_lambda_invoke_relay_needs_the_token_too(d) {
        let (_g, admin) = gateway(d, TOKEN, false);
        let raw = |auth: &str| format!(
            "POST /2015-03-31/functions/hello/invocations HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        );
        let r = roundtrip(admin, raw("").as_bytes());
        assert_refused(&r, "invoke without a token");
        assert_eq!(r.text(), r#"{"message":"Unauthorized"}"#);
        let r = roundtrip(admin, raw("Authorization: Bearer nope\r\n").as_bytes());
        assert_refused(&r, "invoke with a wrong token");
        // with the token the relay answers as it does without one configured (no functions
        // service here: the function is not found)
        let r = roundtrip(admin, raw(&format!("Authorization: Bearer {TOKEN}\r\n")).as_bytes());
        assert_ne!(r.status, 401, "{}", r.text());
        let g = Gateway::start_with(d, 1, "", &format!("[admin]\nlisten = \"127.0.0.1:0\"\n{ROUTES}"));
        let open = g.handle().admin_addr().unwrap();
        let r2 = roundtrip(open, raw("").as_bytes());
        assert_eq!(r.status, r2.status, "{} / {}", r.text(), r2.text());
    }

    fn metrics_public_opens_exactly_get_metrics(d) {
        let (_g, admin) = gateway(d, TOKEN, true);
        let r = call(admin, "GET", "/metrics", None);
        assert_eq!(r.status, 200);
        assert!(r.text().contains("tollgate_"), "{}", r.text());
        assert_eq!(call(admin, "HEAD", "/metrics", None).status, 200);
        assert_refused(&call(admin, "POST", "/metrics", None), "POST /metrics");
        for &(m, p, _) in ENDPOINTS.iter().filter(|e| e.1 != "/metrics") {
            assert_refused(&call(admin, m, p, None), &format!("{m} {p}"));
        }
        // the path is what counts: a query does not make it another resource
        assert_eq!(call(admin, "GET", "/metrics?name=x", None).status, 200);
    }

    fn without_a_token_nothing_asks(d) {
        let g = Gateway::start_with(d, 1, "", &format!("[admin]\nlisten = \"127.0.0.1:0\"\n{ROUTES}"));
        let admin = g.handle().admin_addr().unwrap();
        for &(m, p, ok) in ENDPOINTS {
            let r = call(admin, m, p, None);
            assert_eq!(r.status, ok, "{m} {p}");
            assert_eq!(r.header("www-authenticate"), None);
        }
    }

    fn a_reload_changes_the_token(d) {
        let (g, admin) = gateway(d, TOKEN, false);
        // one connection across the reload: the token is read per request, not per connection
        let mut c = Client::new(admin);
        let ask = |c: &mut Client, token: &str| {
            c.send(format!("GET /status HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n").as_bytes());
            c.read(false).unwrap()
        };
        assert_eq!(ask(&mut c, TOKEN).status, 200);
        assert_refused(&ask(&mut c, "new-token-2"), "the new token before the reload");
        g.write_config(&(server_toml(d, 1, "") + &admin_toml("new-token-2", false)));
        g.reload().expect("reload applies");
        assert_refused(&ask(&mut c, TOKEN), "the old token after the reload");
        assert_eq!(ask(&mut c, "new-token-2").status, 200);
        // and a reload that removes the token opens the listener
        g.write_config(&(server_toml(d, 1, "") + &format!("[admin]\nlisten = \"127.0.0.1:0\"\n{ROUTES}")));
        let r = call(admin, "POST", "/reload", Some("Bearer new-token-2"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(call(admin, "GET", "/stats", None).status, 200);
    }

    fn the_dashboard_asks_for_the_token_keeps_it_and_sends_it(d) {
        let (_g, admin) = gateway(d, TOKEN, false);
        let page = call(admin, "GET", "/", Some(&format!("Bearer {TOKEN}")));
        assert_eq!(page.status, 200);
        let t = page.text();
        // the form it shows on a 401, where the token is kept, and that every fetch sends it
        for needle in [
            "<form id=\"token-form\" hidden",
            "type=\"password\" id=\"token-input\"",
            "res.status === 401",
            "sessionStorage.setItem(TOKEN_KEY, t)",
            "sessionStorage.removeItem(TOKEN_KEY)",
            "headers[\"Authorization\"] = \"Bearer \" + t",
            "return api(url)",
            "api(\"/stats\"",
        ] {
            assert!(t.contains(needle), "{needle} missing in the dashboard");
        }
        // no fetch goes around the token helper
        assert_eq!(t.matches("fetch(").count(), 1, "one fetch call, in api()");
    }
}

/// Headless Chromium (installed with apt-get when missing; failing loudly if that fails).
fn chromium() -> &'static str {
    const CHROMIUM: &str = "/usr/bin/chromium";
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        common::apt::install(&["chromium"], || std::path::Path::new(CHROMIUM).exists());
    });
    CHROMIUM
}

/// The page at `url` as headless Chromium leaves its DOM after a few seconds of virtual time
/// (timers run fast, fetches are real: the page polls several times).
fn dashboard_dom(url: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let profile = std::env::temp_dir().join(format!(
        "tollgate-admin-auth-chromium-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let out = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=5000", "--dump-dom", url])
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The opening tag of the element with `id` in `dom`.
fn tag_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} missing in {dom}"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    &dom[start..=end]
}

mod browser {
    use super::*;

    both_drivers! {
        fn in_a_browser_the_dashboard_asks_only_when_a_token_is_configured(d) {
            // a token configured: the page (served with the 401) finds its data refused and shows
            // the token form; it has polled nothing successfully
            let (_g, admin) = gateway(d, TOKEN, false);
            let dom = dashboard_dom(&format!("http://{admin}/"));
            let form = tag_of(&dom, "token-form");
            assert!(!form.contains("hidden"), "the token form is shown: {form}");
            assert!(dom.contains("this admin listener needs a token"), "{dom}");
            assert!(!tag_of(&dom, "conn-status").contains("live"), "{dom}");
            let body = tag_of_body(&dom);
            assert!(!body.contains("data-polls"), "no poll succeeded: {body}");
            // no token configured: it never asks, and the numbers come
            let g = Gateway::start_with(d, 1, "", &format!("[admin]\nlisten = \"127.0.0.1:0\"\n{ROUTES}"));
            let open = g.handle().admin_addr().unwrap();
            let dom = dashboard_dom(&format!("http://{open}/"));
            let form = tag_of(&dom, "token-form");
            assert!(form.contains("hidden"), "the token form stays hidden: {form}");
            let body = tag_of_body(&dom);
            assert!(body.contains("data-polls=\""), "the page polled: {body}");
        }
    }
}

/// The `<body ...>` tag of `dom`.
fn tag_of_body(dom: &str) -> &str {
    let start = dom.find("<body").expect("a body");
    let end = start + dom[start..].find('>').unwrap();
    &dom[start..=end]
}
