//! Request authorizers end to end, on both drivers, over real sockets: a LOCAL function
//! authorizer (tests/fixtures/lambda/authorizer.py with its own stdlib runtime client, run by
//! the functions service; it records every payload it gets) and a `url` authorizer (a
//! recording origin that answers per test). Covered: allow → the route's answer; deny → 403;
//! a missing identity source → 401 without a call; an authorizer error, timeout or malformed
//! answer → 500 `{"message":"Internal Server Error"}`; IAM-policy answers on the route ARN
//! with wildcards and an explicit Deny; the result cache (a hit makes no call, another token
//! does, ttl 0 calls every time, a cached policy is evaluated again per route ARN);
//! coalescing of concurrent identical lookups on one worker and across workers, their
//! failures included (a hanging endpoint is called once, every lookup gets its 500, a
//! forwarded 401 reaches every waiter); the 2.0 and 1.0 payloads' shape; a URL authorizer's
//! 401 / 403 passing through.

// Test helpers outside #[test] functions panic to fail the test; the crate-wide deny of
// unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::lambda::{
    access_log_toml, assert_metrics_contain, fixtures_dir, log_line, log_path, python_exe, Record,
};
use common::*;
use serde_json::{json, Value};

const UNAUTHORIZED: &str = r#"{"message":"Unauthorized"}"#;
const FORBIDDEN: &str = r#"{"message":"Forbidden"}"#;
const FAILED: &str = r#"{"message":"Internal Server Error"}"#;

/// A `[[function]]` running the test authorizer in `mode` (`simple` or `policy`).
fn authz_function(name: &str, mode: &str, rec: &Record, env: &str) -> String {
    format!(
        "[[function]]\nname = \"{name}\"\ncommand = [\"{}\", \"authorizer.py\"]\ncwd = \"{}\"\n\
         env = {{ RECORD_DIR = \"{}\", AUTHZ_MODE = \"{mode}\"{env} }}\ntimeout_ms = 5000\n\
         concurrency = 4\n\n",
        python_exe(),
        fixtures_dir().display(),
        rec.dir.display()
    )
}

/// The payloads the function authorizer recorded so far.
fn payloads(rec: &Record) -> Vec<Value> {
    std::fs::read_to_string(rec.path("payloads"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A GET with optional `authorization` and extra header lines (each ending in CRLF).
fn get_with(addr: SocketAddr, target: &str, auth: Option<&str>, extra: &str) -> Response {
    let auth = auth.map_or(String::new(), |a| format!("authorization: {a}\r\n"));
    let raw = format!("GET {target} HTTP/1.1\r\nhost: api.example\r\n{auth}{extra}\r\n");
    roundtrip(addr, raw.as_bytes())
}

fn assert_answer(r: &Response, status: u16, body: &str) {
    assert_eq!((r.status, r.text().as_str()), (status, body), "{}", r.head);
}

/// `[[route]]`s answering `pets` / `orders` behind `authorizer`.
fn routes(authorizer: &str) -> String {
    format!(
        "[[route]]\nkey = \"GET /pets/{{id}}\"\nmock = {{ body = \"pet\" }}\nauthorizer = \"{authorizer}\"\n\n\
         [[route]]\nkey = \"GET /orders\"\nmock = {{ body = \"orders\" }}\nauthorizer = \"{authorizer}\"\n\n\
         [[route]]\nkey = \"GET /open\"\nmock = {{ body = \"open\" }}\n\n"
    )
}

/// A resolver answering `svc.test` with the addresses the test sets (and IP literals as
/// they are).
struct Names(std::sync::Mutex<Vec<SocketAddr>>);

impl tollgate::config::resolve::Resolver for Names {
    fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
            Err(_) if host == "svc.test" => Ok(self.0.lock().unwrap().clone()),
            Err(_) => Err(std::io::Error::other("NXDOMAIN (test)")),
        }
    }
}

both_drivers! {
    fn throttle_by_principal_keys_simple_answers_by_identity(d) {
        // a simple response names no principal: each identity still gets its own bucket
        let origin = Origin::start(|_| Reply::Raw(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 21\r\n\r\n{\"isAuthorized\":true}".to_vec(),
        ));
        let url = format!("http://{}/authorize", origin.addr);
        let text = server_toml(d, 1, "")
            + &format!("[[authorizer]]\nname = \"ext\"\ntype = \"request\"\nurl = \"{url}\"\n\
               simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n\n")
            + "[[route]]\nkey = \"GET /me\"\nmock = { body = \"me\" }\nauthorizer = \"ext\"\n\
               throttle = { rate = 0.001, burst = 1, throttle_by = \"principal\" }\n";
        let g = Gateway::from_toml(&text);
        assert_eq!(get_with(g.addr, "/me", Some("tok-a"), "").status, 200);
        assert_eq!(get_with(g.addr, "/me", Some("tok-a"), "").status, 429);
        // another caller, same address: a bucket of its own
        assert_eq!(get_with(g.addr, "/me", Some("tok-b"), "").status, 200);
        assert_eq!(get_with(g.addr, "/me", Some("tok-b"), "").status, 429);
    }

    fn a_reload_keeps_the_cache_of_an_unchanged_authorizer_and_empties_a_changed_one(d) {
        // two workers, new connections: both cache levels must survive a generation that
        // changes nothing about the authorizer (the resolver thread's new addresses for any
        // upstream make such generations too), and start afresh when its settings change
        let origin = Origin::start(|_| Reply::Raw(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 21\r\n\r\n{\"isAuthorized\":true}".to_vec(),
        ));
        let url = format!("http://{}/authorize", origin.addr);
        let text = |ttl: u64, more: &str| {
            server_toml(d, 2, "")
                + &format!("[[authorizer]]\nname = \"ext\"\ntype = \"request\"\nurl = \"{url}\"\n\
                   simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n\
                   ttl_s = {ttl}\n\n")
                + &routes("ext")
                + more
        };
        let g = Gateway::from_toml(&text(300, ""));
        for i in 0..6 {
            assert_answer(&get_with(g.addr, &format!("/pets/{i}"), Some("tok"), ""), 200, "pet");
        }
        assert_eq!(origin.requests().len(), 1);
        // an unrelated route and upstream (it moves the hidden upstream's index)
        let unrelated = "[[upstream]]\nname = \"other\"\ntargets = [\"127.0.0.1:9\"]\n\n\
                         [[route]]\nkey = \"GET /new\"\nmock = { body = \"new\" }\n";
        g.write_config(&text(300, unrelated));
        g.reload().unwrap();
        assert_answer(&get_with(g.addr, "/new", None, ""), 200, "new");
        for i in 0..6 {
            assert_answer(&get_with(g.addr, &format!("/pets/{i}"), Some("tok"), ""), 200, "pet");
        }
        assert_eq!(origin.requests().len(), 1, "the reload kept the cached answer");
        // the ttl changes: the answer is asked for again, once for both workers
        g.write_config(&text(200, unrelated));
        g.reload().unwrap();
        for i in 0..6 {
            assert_answer(&get_with(g.addr, &format!("/pets/{i}"), Some("tok"), ""), 200, "pet");
        }
        assert_eq!(origin.requests().len(), 2, "a changed authorizer starts afresh");
    }

    fn new_dns_answers_for_another_upstream_keep_the_authorizers_cache(d) {
        // the resolver thread's new addresses for any upstream make a new generation (the
        // served config compiled again): not a change of the authorizer, so no new call
        let origin = Origin::start(|_| Reply::Raw(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 21\r\n\r\n{\"isAuthorized\":true}".to_vec(),
        ));
        let (one, two) = (Origin::start(|_| Reply::ok("one")), Origin::start(|_| Reply::ok("two")));
        let names = Arc::new(Names(std::sync::Mutex::new(vec![one.addr])));
        let url = format!("http://{}/authorize", origin.addr);
        let text = server_toml(d, 2, "")
            + &format!("[[authorizer]]\nname = \"ext\"\ntype = \"request\"\nurl = \"{url}\"\n\
               simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n\n")
            + &routes("ext")
            + "[[upstream]]\nname = \"svc\"\ntargets = [\"svc.test:80\"]\nresolve_interval_ms = 1000\n\n\
               [[route]]\nkey = \"GET /who\"\nupstream = \"svc\"\n";
        let g = Gateway::from_toml_with(&text, names.clone());
        for i in 0..6 {
            assert_answer(&get_with(g.addr, &format!("/pets/{i}"), Some("tok"), ""), 200, "pet");
        }
        assert_eq!(origin.requests().len(), 1);
        *names.0.lock().unwrap() = vec![two.addr];
        let until = std::time::Instant::now() + Duration::from_secs(15);
        while two.requests().is_empty() {
            assert!(std::time::Instant::now() < until, "the new address was never served");
            assert_eq!(get_with(g.addr, "/who", None, "").status, 200);
            std::thread::sleep(Duration::from_millis(25));
        }
        for i in 0..6 {
            assert_answer(&get_with(g.addr, &format!("/pets/{i}"), Some("tok"), ""), 200, "pet");
        }
        assert_eq!(origin.requests().len(), 1, "the new generation kept the cached answer");
    }

    fn the_cache_and_coalescing_are_process_wide(d) {
        // two workers, a new connection per request (the kernel spreads them over both):
        // one call for N sequential and for N concurrent identical lookups
        let origin = Origin::start(|r| {
            let p: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let allow = Reply::Raw(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 21\r\n\r\n{\"isAuthorized\":true}".to_vec(),
            );
            match p["identitySource"][0].as_str() {
                Some("slow-same") => Reply::After(Duration::from_millis(400), Box::new(allow)),
                _ => allow,
            }
        });
        let url = format!("http://{}/authorize", origin.addr);
        let text = server_toml(d, 2, "")
            + &format!("[[authorizer]]\nname = \"ext\"\ntype = \"request\"\nurl = \"{url}\"\n\
               simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n\
               timeout_ms = 5000\n\n")
            + &routes("ext");
        let g = Gateway::from_toml(&text);
        for i in 0..16 {
            assert_answer(&get_with(g.addr, &format!("/pets/{i}"), Some("seq-same"), ""), 200, "pet");
        }
        assert_eq!(origin.requests().len(), 1, "16 sequential lookups on new connections, one call");
        let addr = g.addr;
        let threads: Vec<_> = (0..12)
            .map(|i| std::thread::spawn(move || get_with(addr, &format!("/pets/{i}"), Some("slow-same"), "")))
            .collect();
        for t in threads {
            assert_answer(&t.join().unwrap(), 200, "pet");
        }
        assert_eq!(origin.requests().len(), 2, "12 concurrent lookups over two workers, one call");
        // a large identity is fine: the key is its digest
        let big = "b".repeat(16 * 1024);
        for _ in 0..3 {
            assert_answer(&get_with(g.addr, "/orders", Some(&big), ""), 200, "orders");
        }
        assert_eq!(origin.requests().len(), 3);
    }

    fn a_function_authorizer_with_simple_responses(d) {
        let rec = Record::new("authz-simple");
        let log = log_path(&format!("authz-simple-{d}"));
        let text = server_toml(d, 2, "")
            + "[admin]\nlisten = \"127.0.0.1:0\"\n\n"
            + &access_log_toml(&log)
            + &authz_function("authz", "simple", &rec, ", AUTHZ_SLEEP_MS = \"5000\"")
            + "[[authorizer]]\nname = \"custom\"\ntype = \"request\"\nfunction = \"authz\"\n\
               simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n\
               ttl_s = 0\ntimeout_ms = 2500\n\n"
            + &routes("custom");
        let g = Gateway::from_toml(&text);

        // allowed: the route answers; the payload has AWS's 2.0 shape
        let r = get_with(g.addr, "/pets/7?q=1&q=2&x=a%20b", Some("allow-1"),
            "cookie: c1=v1; c2=v2\r\nx-request-id: authz-allow\r\n");
        assert_answer(&r, 200, "pet");
        let p = payloads(&rec);
        assert_eq!(p.len(), 1, "{p:?}");
        let p = &p[0];
        assert_eq!(p["version"], "2.0");
        assert_eq!(p["type"], "REQUEST");
        assert_eq!(p["routeArn"], "arn:aws:execute-api:us-east-1:000000000000:tollgate/$default/GET/pets/7");
        assert_eq!(p["identitySource"], json!(["allow-1"]));
        assert_eq!(p["routeKey"], "GET /pets/{id}");
        assert_eq!(p["rawPath"], "/pets/7");
        assert_eq!(p["rawQueryString"], "q=1&q=2&x=a%20b");
        assert_eq!(p["cookies"], json!(["c1=v1", "c2=v2"]));
        assert_eq!(p["headers"]["authorization"], "allow-1");
        assert_eq!(p["headers"]["host"], "api.example");
        assert_eq!(p["queryStringParameters"], json!({"q": "1,2", "x": "a b"}));
        assert_eq!(p["pathParameters"], json!({"id": "7"}));
        assert_eq!(p["requestContext"]["http"]["method"], "GET");
        assert_eq!(p["requestContext"]["http"]["path"], "/pets/7");
        assert_eq!(p["requestContext"]["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(p["requestContext"]["requestId"], "authz-allow");
        assert_eq!(p["requestContext"]["routeKey"], "GET /pets/{id}");
        assert_eq!(p["requestContext"]["accountId"], "000000000000");
        assert!(p.get("body").is_none() && p.get("isBase64Encoded").is_none(), "{p}");

        // ttl 0: the same token calls again
        assert_answer(&get_with(g.addr, "/orders", Some("allow-1"), ""), 200, "orders");
        assert_eq!(payloads(&rec).len(), 2);

        // denied
        assert_answer(&get_with(g.addr, "/pets/1", Some("deny-1"), ""), 403, FORBIDDEN);
        assert_eq!(payloads(&rec).len(), 3);

        // no identity source (absent, or empty): 401 and no call; the log says which
        let r = get_with(g.addr, "/pets/1", None, "x-request-id: authz-missing\r\n");
        assert_answer(&r, 401, UNAUTHORIZED);
        let r = get_with(g.addr, "/pets/1", Some(""), "");
        assert_answer(&r, 401, UNAUTHORIZED);
        assert_eq!(payloads(&rec).len(), 3, "a missing identity source makes no call");
        let line = log_line(&log, "authz-missing");
        assert!(line.contains("identity source $request.header.authorization is missing or empty"), "{line}");

        // a route without the authorizer is not called for
        assert_answer(&get_with(g.addr, "/open", None, ""), 200, "open");

        // the authorizer fails: a function error, a malformed answer, past its timeout
        let r = get_with(g.addr, "/pets/1", Some("error"), "x-request-id: authz-error\r\n");
        assert_answer(&r, 500, FAILED);
        let line = log_line(&log, "authz-error");
        assert!(line.contains("authorizer function error: ValueError"), "{line}");
        let r = get_with(g.addr, "/pets/1", Some("malformed"), "x-request-id: authz-malformed\r\n");
        assert_answer(&r, 500, FAILED);
        let line = log_line(&log, "authz-malformed");
        assert!(line.contains("authorizer answer malformed: a simple response needs isAuthorized"), "{line}");
        let r = get_with(g.addr, "/pets/1", Some("sleep"), "x-request-id: authz-slow\r\n");
        assert_answer(&r, 500, FAILED);
        assert_eq!(payloads(&rec).len(), 6);
        // the authorizer's invocations count as the function's
        let admin = g.handle().admin_addr().expect("admin listener");
        assert_metrics_contain(admin, &[
            "tollgate_function_invocations_total{function=\"authz\"} 6\n",
            "tollgate_function_errors_total{function=\"authz\"} 2\n",
            "tollgate_function_timeouts_total{function=\"authz\"} 1\n",
        ]);
    }

    fn a_function_authorizer_with_policies_payload_1_0_and_a_cache(d) {
        let rec = Record::new("authz-policy");
        let text = server_toml(d, 1, "")
            + &authz_function("authz", "policy", &rec, "")
            + "[[authorizer]]\nname = \"custom\"\ntype = \"request\"\nfunction = \"authz\"\n\
               payload_format = \"1.0\"\nidentity_sources = [\"$request.header.Authorization\", \"$request.querystring.k\"]\n\
               ttl_s = 300\n\n"
            + &routes("custom");
        let g = Gateway::from_toml(&text);
        let pets = "x-allow: arn:aws:execute-api:*:*:tollgate/*/GET/pets/*\r\n";

        // an Allow on GET /pets/* with wildcards
        let r = get_with(g.addr, "/pets/7?k=v1", Some("tok-a"), &format!("{pets}x-request-id: authz-v1\r\n"));
        assert_answer(&r, 200, "pet");
        let p = payloads(&rec);
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!(p["version"], "1.0");
        assert_eq!(p["type"], "REQUEST");
        assert_eq!(p["methodArn"], "arn:aws:execute-api:us-east-1:000000000000:tollgate/$default/GET/pets/7");
        assert_eq!(p["identitySource"], "tok-a,v1");
        assert_eq!(p["authorizationToken"], "tok-a,v1");
        assert_eq!(p["resource"], "/pets/{id}");
        assert_eq!(p["path"], "/pets/7");
        assert_eq!(p["httpMethod"], "GET");
        assert_eq!(p["headers"]["authorization"], "tok-a");
        assert_eq!(p["multiValueHeaders"]["authorization"], json!(["tok-a"]));
        assert_eq!(p["queryStringParameters"], json!({"k": "v1"}));
        assert_eq!(p["pathParameters"], json!({"id": "7"}));
        assert_eq!(p["requestContext"]["requestId"], "authz-v1");
        assert_eq!(p["requestContext"]["resourcePath"], "/pets/{id}");
        assert!(p.get("body").is_none(), "{p}");

        // a cache hit: same identity values, no call (another pet, even without x-allow: the
        // cached policy decides)
        assert_answer(&get_with(g.addr, "/pets/8?k=v1", Some("tok-a"), ""), 200, "pet");
        // the cached policy is evaluated again on another route's ARN: not allowed there
        assert_answer(&get_with(g.addr, "/orders?k=v1", Some("tok-a"), ""), 403, FORBIDDEN);
        assert_eq!(payloads(&rec).len(), 1, "cache hits make no call");

        // other identity values call again
        assert_answer(&get_with(g.addr, "/pets/8?k=v2", Some("tok-a"), pets), 200, "pet");
        assert_eq!(payloads(&rec).len(), 2);
        // a missing query identity source: 401, no call
        assert_answer(&get_with(g.addr, "/pets/8", Some("tok-a"), pets), 401, UNAUTHORIZED);
        assert_eq!(payloads(&rec).len(), 2);

        // an explicit Deny wins over the Allow
        let deny = format!("{pets}x-deny: arn:aws:execute-api:*:*:tollgate/$default/GET/pets/?\r\n");
        assert_answer(&get_with(g.addr, "/pets/7?k=v3", Some("tok-b"), &deny), 403, FORBIDDEN);
        assert_answer(&get_with(g.addr, "/pets/77?k=v3", Some("tok-b"), ""), 200, "pet");
        // an Allow for another method only
        let post = "x-allow: arn:aws:execute-api:*:*:tollgate/*/POST/*\r\n";
        assert_answer(&get_with(g.addr, "/pets/7?k=v4", Some("tok-c"), post), 403, FORBIDDEN);
        assert_eq!(payloads(&rec).len(), 4);
    }

    fn concurrent_identical_lookups_make_one_call(d) {
        let rec = Record::new("authz-coalesce");
        let text = server_toml(d, 1, "")
            + &authz_function("authz", "simple", &rec, ", AUTHZ_SLEEP_MS = \"500\"")
            + "[[authorizer]]\nname = \"custom\"\ntype = \"request\"\nfunction = \"authz\"\n\
               simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n\
               ttl_s = 60\n\n"
            + &routes("custom");
        let g = Gateway::from_toml(&text);
        // warm the function's process (a cold start is not what is measured here)
        assert_answer(&get_with(g.addr, "/pets/1", Some("allow-warm"), ""), 200, "pet");
        let addr = g.addr;
        let threads: Vec<_> = (0..6)
            .map(|i| std::thread::spawn(move || get_with(addr, &format!("/pets/{i}"), Some("sleep-same"), "")))
            .collect();
        for t in threads {
            assert_answer(&t.join().unwrap(), 200, "pet");
        }
        let sleeps = payloads(&rec).iter().filter(|p| p["identitySource"][0] == "sleep-same").count();
        assert_eq!(sleeps, 1, "six concurrent identical lookups, one call");
        // and the answer is cached now
        assert_answer(&get_with(g.addr, "/orders", Some("sleep-same"), ""), 200, "orders");
        assert_eq!(payloads(&rec).len(), 2);
    }

    fn a_failed_call_ends_every_identical_lookup_on_every_worker(d) {
        // two workers, a new connection per request (the kernel spreads them over both): an
        // endpoint that hangs gets one call, and every request its 500 within about one
        // timeout (the workers that polled the call take its failure rather than call again)
        let origin = Origin::start(|_| Reply::After(
            Duration::from_secs(10),
            Box::new(Reply::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 21\r\n\r\n{\"isAuthorized\":true}".to_vec())),
        ));
        let url = format!("http://{}/authorize", origin.addr);
        let timeout = Duration::from_millis(1_000);
        let text = server_toml(d, 2, "")
            + &format!("[[authorizer]]\nname = \"ext\"\ntype = \"request\"\nurl = \"{url}\"\n\
               simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n\
               timeout_ms = {}\n\n", timeout.as_millis())
            + &routes("ext");
        let g = Gateway::from_toml(&text);
        let addr = g.addr;
        let threads: Vec<_> = (0..12)
            .map(|i| std::thread::spawn(move || {
                let started = std::time::Instant::now();
                let r = get_with(addr, &format!("/pets/{i}"), Some("hang-same"), "");
                (r, started.elapsed())
            }))
            .collect();
        for t in threads {
            let (r, took) = t.join().unwrap();
            assert_answer(&r, 500, FAILED);
            // liveness: one call's timeout, not one per worker
            assert!(took < timeout * 2, "answered after {took:?}");
        }
        assert_eq!(origin.requests().len(), 1, "12 identical lookups over two workers, one call");
    }

    fn every_identical_lookup_gets_a_forwarded_refusal(d) {
        // a URL endpoint's 401 with its body and challenge reaches every coalesced request,
        // on the calling worker (its waiters) and on the other (its pollers)
        let origin = Origin::start(|_| Reply::After(
            Duration::from_millis(400),
            Box::new(Reply::Raw(b"HTTP/1.1 401 X\r\ncontent-type: text/plain\r\nwww-authenticate: Basic realm=\"pets\"\r\ncontent-length: 12\r\n\r\nlog in first".to_vec())),
        ));
        let url = format!("http://{}/authorize", origin.addr);
        let text = server_toml(d, 2, "")
            + &format!("[[authorizer]]\nname = \"ext\"\ntype = \"request\"\nurl = \"{url}\"\n\
               simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n\
               timeout_ms = 5000\n\n")
            + &routes("ext");
        let g = Gateway::from_toml(&text);
        let addr = g.addr;
        let threads: Vec<_> = (0..12)
            .map(|i| std::thread::spawn(move || get_with(addr, &format!("/pets/{i}"), Some("unauth-same"), "")))
            .collect();
        for t in threads {
            let r = t.join().unwrap();
            assert_answer(&r, 401, "log in first");
            assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"pets\""), "{}", r.head);
            assert_eq!(r.header("content-type"), Some("text/plain"), "{}", r.head);
        }
        assert_eq!(origin.requests().len(), 1, "12 identical lookups over two workers, one call");
        // a refusal is not cached: a later request asks again
        assert_answer(&get_with(g.addr, "/orders", Some("unauth-same"), ""), 401, "log in first");
        assert_eq!(origin.requests().len(), 2);
    }

    fn a_url_authorizer(d) {
        let origin = Origin::start(|r| {
            let p: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let token = p["identitySource"][0].as_str().unwrap_or("").to_string();
            let json = |body: &str| Reply::Raw(format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()).into_bytes());
            let status = |code: u16| Reply::Raw(format!(
                "HTTP/1.1 {code} X\r\ncontent-length: 4\r\n\r\nnope").into_bytes());
            let refuse = |code: u16, extra: &str, body: &str| Reply::Raw(format!(
                "HTTP/1.1 {code} X\r\n{extra}content-length: {}\r\n\r\n{body}", body.len()).into_bytes());
            match token.as_str() {
                t if t.starts_with("allow") => json(r#"{"isAuthorized":true,"context":{"user":"ann"}}"#),
                "unauth-said" => refuse(401, "content-type: text/plain\r\nwww-authenticate: Basic realm=\"pets\"\r\n", "log in first"),
                "forbid-said" => refuse(403, "content-type: application/problem+json\r\n", r#"{"title":"no pets for you"}"#),
                "deny" => json(r#"{"isAuthorized":false}"#),
                "unauth" => status(401),
                "forbid" => status(403),
                "boom" => status(500),
                "garbage" => json("not json"),
                "slow" => Reply::After(Duration::from_millis(2_000), Box::new(json(r#"{"isAuthorized":true}"#))),
                _ => status(400),
            }
        });
        let url = format!("http://{}/authorize?v=1", origin.addr);
        let text = server_toml(d, 2, "")
            + &format!("[[authorizer]]\nname = \"ext\"\ntype = \"request\"\nurl = \"{url}\"\n\
               simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n\
               ttl_s = 0\ntimeout_ms = 500\n\n")
            + &format!("[[authorizer]]\nname = \"cached\"\ntype = \"request\"\nurl = \"{url}\"\n\
               simple_responses = true\nidentity_sources = [\"$request.header.Authorization\", \"$context.identity.sourceIp\"]\n\n")
            + &routes("ext")
            + "[[route]]\nkey = \"GET /cached\"\nmock = { body = \"cached\" }\nauthorizer = \"cached\"\n";
        let g = Gateway::from_toml(&text);

        let r = get_with(g.addr, "/pets/3", Some("allow-1"), "x-request-id: url-allow\r\n");
        assert_answer(&r, 200, "pet");
        let reqs = origin.requests();
        assert_eq!(reqs.len(), 1);
        let q = &reqs[0];
        assert_eq!((q.method.as_str(), q.target.as_str()), ("POST", "/authorize?v=1"));
        assert_eq!(q.header("content-type"), Some("application/json"));
        assert_eq!(q.header("host"), Some(origin.addr.to_string().as_str()));
        assert_eq!(q.header("x-request-id"), Some("url-allow"));
        let p: Value = serde_json::from_slice(&q.body).unwrap();
        assert_eq!(p["type"], "REQUEST");
        assert_eq!(p["version"], "2.0");
        assert_eq!(p["identitySource"], json!(["allow-1"]));
        assert_eq!(p["routeArn"], "arn:aws:execute-api:us-east-1:000000000000:tollgate/$default/GET/pets/3");

        assert_answer(&get_with(g.addr, "/pets/3", Some("deny"), ""), 403, FORBIDDEN);
        // the endpoint's 401 and 403 pass through, with its body, type and challenge
        let r = get_with(g.addr, "/pets/3", Some("unauth"), "");
        assert_answer(&r, 401, "nope");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{}", r.head);
        assert_eq!(r.header("content-type"), None, "{}", r.head);
        assert_answer(&get_with(g.addr, "/pets/3", Some("forbid"), ""), 403, "nope");
        let r = get_with(g.addr, "/pets/3", Some("unauth-said"), "");
        assert_answer(&r, 401, "log in first");
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"pets\""), "{}", r.head);
        assert_eq!(r.header("content-type"), Some("text/plain"), "{}", r.head);
        let r = get_with(g.addr, "/pets/3", Some("forbid-said"), "");
        assert_answer(&r, 403, r#"{"title":"no pets for you"}"#);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(r.header("www-authenticate"), None);
        // anything else, a malformed answer, or no answer in time: 500
        assert_answer(&get_with(g.addr, "/pets/3", Some("boom"), ""), 500, FAILED);
        assert_answer(&get_with(g.addr, "/pets/3", Some("garbage"), ""), 500, FAILED);
        assert_answer(&get_with(g.addr, "/pets/3", Some("slow"), ""), 500, FAILED);
        assert_eq!(origin.requests().len(), 9);
        // no identity source: no call
        assert_answer(&get_with(g.addr, "/pets/3", None, ""), 401, UNAUTHORIZED);
        assert_eq!(origin.requests().len(), 9);

        // the cached authorizer (default ttl 300): once per token on a worker; two workers may
        // each ask once, so one connection keeps the requests on one worker
        let mut c = Client::new(g.addr);
        for _ in 0..3 {
            c.send(b"GET /cached HTTP/1.1\r\nhost: a\r\nauthorization: allow-c\r\n\r\n");
            let r = c.read(false).unwrap();
            assert_eq!((r.status, r.text().as_str()), (200, "cached"));
        }
        let reqs = origin.requests();
        assert_eq!(reqs.len(), 10, "two cache hits");
        let p: Value = serde_json::from_slice(&reqs[9].body).unwrap();
        assert_eq!(p["identitySource"], json!(["allow-c", "127.0.0.1"]));
        c.send(b"GET /cached HTTP/1.1\r\nhost: a\r\nauthorization: allow-d\r\n\r\n");
        assert_eq!(c.read(false).unwrap().status, 200);
        assert_eq!(origin.requests().len(), 11, "another token asks");
    }
}
