//! Local functions end to end, on both drivers: `[[function]]`s that tollgate runs itself, each
//! a REAL Python function run by AWS's own runtime client (`python3 -m awslambdaric app.NAME`,
//! installed with pip by the test when missing; handlers in tests/fixtures/lambda/py/app.py),
//! reached through the gateway's HTTP listener (and once over HTTP/2 h2c) and through the admin
//! listener's Invoke API. Covered here: the events as the function saw them (payload 2.0 and
//! 1.0), every response shape, errors (raise, crash, timeout, init error), cold and warm starts,
//! scale to zero, concurrency and queue limits, the function's environment, reload, the admin
//! Invoke API (and `aws lambda invoke` when the AWS CLI is installed), and the function metrics.
//! Every test stops its gateway and checks that no function process outlives it.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Once;

use common::h2client::{H2, H2C};
use common::lambda::*;
use common::*;
use serde_json::{json, Value};

/// A gateway with two workers (the functions' pools are shared across workers), h2c on the
/// plain listener, an admin listener, and `rest` (functions and routes).
fn gateway(d: &str, rest: &str) -> Gateway {
    Gateway::from_toml(&config(d, rest))
}

fn config(d: &str, rest: &str) -> String {
    server_toml(d, 2, H2C) + "[admin]\nlisten = \"127.0.0.1:0\"\n\n" + rest
}

fn admin(g: &Gateway) -> SocketAddr {
    g.handle().admin_addr().expect("admin listener")
}

fn send(g: &Gateway, raw: &[u8]) -> Response {
    roundtrip(g.addr, raw)
}

fn get_path(g: &Gateway, path: &str) -> Response {
    send(
        g,
        format!("GET {path} HTTP/1.1\r\nHost: api.example\r\n\r\n").as_bytes(),
    )
}

/// `GET path` with `x-request-id: rid` (to find its access-log line).
fn get_id(g: &Gateway, path: &str, rid: &str) -> Response {
    send(
        g,
        format!("GET {path} HTTP/1.1\r\nHost: api.example\r\nx-request-id: {rid}\r\n\r\n")
            .as_bytes(),
    )
}

/// Asserts the access log's `integrationStatus` and `errorMessage` of request `rid`
/// (`error` ending in `*`: a prefix).
fn assert_logged(log: &std::path::Path, rid: &str, status: Value, error: &str) {
    let line = log_line(log, rid);
    assert_eq!(field(&line, "integrationStatus"), status, "{line}");
    let e = field(&line, "errorMessage");
    let e = e.as_str().unwrap_or_else(|| panic!("{line}"));
    match error.strip_suffix('*') {
        Some(prefix) => assert!(e.starts_with(prefix), "{error}: {line}"),
        None => assert_eq!(e, error, "{line}"),
    }
}

fn json_body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

/// The pid a `shape` function reports on `path` (a path ending in `/pid`).
fn pid_of(g: &Gateway, path: &str) -> u32 {
    let r = get_path(g, path);
    assert_eq!(r.status, 200, "{r:?}");
    json_body(&r)["pid"].as_u64().expect("pid") as u32
}

/// Stops the gateway and checks that every function process it started is gone.
fn stop_and_check(g: Gateway, rec: &[&Record]) {
    let pids: Vec<u32> = rec.iter().flat_map(|r| r.pids()).collect();
    assert!(!pids.is_empty(), "the functions started processes");
    g.stop();
    assert_gone(&pids);
}

const INTERNAL: &str = r#"{"message":"Internal Server Error"}"#;

/// The bytes app.py's `structured` shape returns (base64 in its answer).
const BINARY: &[u8] = b"\x00\x01\x02\x80\xfe\xff\r\ntail";

/// A variable of the test process that no function may see.
const SENTINEL: &str = "TOLLGATE_LAMBDA_LOCAL_SENTINEL";

fn set_sentinel() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_var(SENTINEL, "leaked"));
}

both_drivers! {
    // The events as the function saw them: the echo handler answers with the event it got.
    fn events_reach_the_function_as_aws_sends_them(d) {
        let rec = Record::new(&format!("events-{d}"));
        let g = gateway(d, &(Func::new("echo", "echo").toml(&rec)
            + &route("ANY /v2/{proxy+}", "echo", "2.0")
            + &route("ANY /v1/{proxy+}", "echo", "1.0")));

        // payload 2.0, JSON body as text
        let body = r#"{"hello":"world"}"#;
        let r = send(&g, format!("POST /v2/pets/42?a=1&a=2&b=x%20y HTTP/1.1\r\nHost: api.example\r\nUser-Agent: lambda-test/1.0\r\nX-Multi: one\r\nX-Multi: two\r\nCookie: s=1; t=2\r\nContent-Type: application/json\r\nx-request-id: req-ev-2\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("x-request-id"), Some("req-ev-2"));
        let ev = json_body(&r);
        assert_eq!(ev["version"], "2.0");
        assert_eq!(ev["routeKey"], "ANY /v2/{proxy+}");
        assert_eq!(ev["rawPath"], "/v2/pets/42");
        assert_eq!(ev["rawQueryString"], "a=1&a=2&b=x%20y");
        assert_eq!(ev["cookies"], json!(["s=1", "t=2"]));
        assert!(ev["headers"].get("cookie").is_none(), "cookie moved to cookies: {ev}");
        let headers = ev["headers"].as_object().unwrap();
        for name in headers.keys() {
            assert_eq!(name, &name.to_ascii_lowercase(), "lower-case header names");
        }
        assert_eq!(ev["headers"]["x-multi"], "one,two");
        assert_eq!(ev["headers"]["user-agent"], "lambda-test/1.0");
        assert_eq!(ev["headers"]["content-type"], "application/json");
        assert_eq!(ev["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
        assert_eq!(ev["pathParameters"], json!({"proxy": "pets/42"}));
        let http = &ev["requestContext"]["http"];
        assert_eq!(http["method"], "POST");
        assert_eq!(http["path"], "/v2/pets/42");
        assert_eq!(http["protocol"], "HTTP/1.1");
        assert_eq!(http["sourceIp"], "127.0.0.1");
        assert_eq!(http["userAgent"], "lambda-test/1.0");
        assert_eq!(ev["requestContext"]["requestId"], "req-ev-2");
        assert_eq!(ev["requestContext"]["routeKey"], "ANY /v2/{proxy+}");
        assert_eq!(ev["body"], body);
        assert_eq!(ev["isBase64Encoded"], false);
        // the function's own Lambda request id is a fresh one, not the gateway's
        let lambda_id = r.header("x-aws-request-id").expect("context.aws_request_id");
        assert_eq!(lambda_id.len(), 36, "a UUID: {lambda_id}");
        assert_ne!(lambda_id, "req-ev-2");

        // a binary body travels base64; the generated request id is the one the client gets
        let mut raw = format!("PUT /v2/bin HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", BINARY.len()).into_bytes();
        raw.extend_from_slice(BINARY);
        let r = send(&g, &raw);
        assert_eq!(r.status, 200, "{r:?}");
        let ev = json_body(&r);
        assert_eq!(ev["isBase64Encoded"], true);
        assert_eq!(ev["body"], "AAECgP7/DQp0YWls");
        assert!(ev.get("queryStringParameters").is_none(), "absent, as AWS omits it: {ev}");
        assert!(ev.get("cookies").is_none(), "absent, as AWS omits it: {ev}");
        let rid = r.header("x-request-id").expect("a generated request id");
        assert_eq!(ev["requestContext"]["requestId"], rid);

        // payload 1.0
        let r = send(&g, b"GET /v1/pets/7?k=1&k=2&one=x HTTP/1.1\r\nHost: api.example\r\nx-rep: a\r\nx-rep: b\r\nx-request-id: req-ev-1\r\n\r\n");
        assert_eq!(r.status, 200, "{r:?}");
        let ev = json_body(&r);
        assert_eq!(ev["version"], "1.0");
        assert_eq!(ev["resource"], "/v1/{proxy+}");
        assert_eq!(ev["path"], "/v1/pets/7");
        assert_eq!(ev["httpMethod"], "GET");
        assert_eq!(ev["headers"]["x-rep"], "b", "1.0 headers keep the last value");
        assert_eq!(ev["multiValueHeaders"]["x-rep"], json!(["a", "b"]));
        assert_eq!(ev["queryStringParameters"], json!({"k": "2", "one": "x"}));
        assert_eq!(ev["multiValueQueryStringParameters"], json!({"k": ["1", "2"], "one": ["x"]}));
        assert_eq!(ev["pathParameters"], json!({"proxy": "pets/7"}));
        assert_eq!(ev["isBase64Encoded"], false);
        assert!(ev["body"].is_null(), "no body: null in 1.0: {ev}");
        assert!(ev["stageVariables"].is_null(), "{ev}");
        assert_eq!(ev["requestContext"]["requestId"], "req-ev-1");
        assert_eq!(ev["requestContext"]["httpMethod"], "GET");

        // HTTP/2 (h2c): the same function, the event says HTTP/2.0
        let mut c = H2::connect(g.addr);
        let req = c.req("POST", "/v2/h2?q=1", &[("content-type", "text/plain"), ("cookie", "c=3")]);
        let r2 = c.send(req, Some(b"over h2")).expect("a response over HTTP/2");
        assert_eq!(r2.status, 200);
        let ev: Value = serde_json::from_slice(&r2.body).unwrap();
        assert_eq!(ev["requestContext"]["http"]["protocol"], "HTTP/2.0");
        assert_eq!(ev["requestContext"]["http"]["method"], "POST");
        assert_eq!(ev["rawPath"], "/v2/h2");
        assert_eq!(ev["rawQueryString"], "q=1");
        assert_eq!(ev["body"], "over h2");
        assert_eq!(ev["cookies"], json!(["c=3"]));
        assert_eq!(ev["requestContext"]["requestId"], r2.header("x-request-id").unwrap());
        drop(c);

        assert_metric(admin(&g), "tollgate_function_invocations_total{function=\"echo\"}", 4.0);
        assert_metric(admin(&g), "tollgate_function_errors_total{function=\"echo\"}", 0.0);
        stop_and_check(g, &[&rec]);
    }

    // Every response shape the function can return, and the malformed ones.
    fn every_response_shape(d) {
        let rec = Record::new(&format!("shapes-{d}"));
        let log = log_path(&format!("shapes-{d}"));
        let g = gateway(d, &(access_log_toml(&log) + &Func::new("shape", "shape").toml(&rec)
            + &route("ANY /s/{proxy+}", "shape", "2.0")
            + &route("ANY /s1/{proxy+}", "shape", "1.0")));

        // 2.0 structured: status, headers (a number as its text), cookies, base64 body
        let r = get_path(&g, "/s/structured");
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.header("x-fn"), Some("yes"));
        assert_eq!(r.header("x-num"), Some("7"));
        let cookies: Vec<&str> = r.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.as_str()).collect();
        assert_eq!(cookies, ["a=1; Path=/; HttpOnly", "b=2"]);
        assert_eq!(r.body, BINARY, "the decoded bytes, exact");
        assert_eq!(r.header("content-length"), Some(BINARY.len().to_string().as_str()));

        // 2.0 bare JSON value: 200 application/json with the value as the body
        let r = get_path(&g, "/s/bare");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(json_body(&r), json!({"pets": ["cat", "dog"], "n": 2}));
        // 2.0: an object without statusCode is a bare value too
        let r = get_path(&g, "/s/nostatus");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(json_body(&r), json!({"body": "no status code"}));

        // 1.0 with multiValueHeaders
        let r = get_path(&g, "/s1/v1");
        assert_eq!(r.status, 202, "{r:?}");
        assert_eq!(r.text(), "v1 body");
        assert_eq!(r.header("x-single"), Some("s"));
        let multi: Vec<&str> = r.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("x-multi")).map(|(_, v)| v.as_str()).collect();
        assert_eq!(multi, ["m1", "m2"]);

        // malformed: 1.0 without statusCode, a statusCode that is no number
        for (i, path) in ["/s1/nostatus", "/s/badstatus", "/s1/badstatus"].iter().enumerate() {
            let rid = format!("malformed-{i}");
            let r = get_id(&g, path, &rid);
            assert_eq!(r.status, 502, "{path}: {r:?}");
            assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
            assert_eq!(r.text(), INTERNAL, "{path}");
            assert_logged(&log, &rid, json!(200), "function response malformed: *");
        }

        let a = admin(&g);
        assert_metric(a, "tollgate_function_invocations_total{function=\"shape\"}", 7.0);
        assert_metric(a, "tollgate_function_errors_total{function=\"shape\"}", 3.0);
        assert_metric(a, "tollgate_function_timeouts_total{function=\"shape\"}", 0.0);
        // one process did it all: the first call was the only cold start
        assert_metric(a, "tollgate_function_cold_starts_total{function=\"shape\"}", 1.0);
        assert_eq!(rec.pids().len(), 1, "{:?}", rec.pids());
        stop_and_check(g, &[&rec]);
    }

    // A raised exception, a crash, a timeout and an init error: statuses, processes, metrics.
    fn errors_crashes_timeouts_and_init_errors(d) {
        let rec = Record::new(&format!("errors-{d}"));
        let broken = Record::new(&format!("broken-{d}"));
        let log = log_path(&format!("errors-{d}"));
        let mut f = Func::new("shape", "shape");
        f.timeout_ms = 600;
        f.concurrency = 1;
        let g = gateway(d, &(access_log_toml(&log) + &f.toml(&rec)
            + &Func::new("broken", "missing.handler").toml(&broken)
            + &route("ANY /e/{proxy+}", "shape", "2.0")
            + &route("GET /broken", "broken", "2.0")));

        // raise: 502, the process lives on (the runtime client reported the error)
        let p = pid_of(&g, "/e/pid");
        let r = get_id(&g, "/e/raise", "e-raise");
        assert_eq!(r.status, 502, "{r:?}");
        assert_eq!(r.text(), INTERNAL);
        assert_logged(&log, "e-raise", json!(200), "function error: ValueError");
        assert_eq!(pid_of(&g, "/e/pid"), p, "the same process after a handled error");

        // sys.exit(1) mid-invocation: 502, the process is gone, the next call gets a new one
        let r = get_id(&g, "/e/exit", "e-exit");
        assert_eq!(r.status, 502, "{r:?}");
        assert_eq!(r.text(), INTERNAL);
        assert_logged(&log, "e-exit", json!(200), "function error: Runtime.ExitError");
        eventually("the crashed process is gone", || !pid_alive(p));
        let q = pid_of(&g, "/e/pid");
        assert_ne!(q, p, "a new process after the crash");

        // sleeping past timeout_ms: 504, the process is killed
        let r = get_id(&g, "/e/sleep", "e-sleep");
        assert_eq!(r.status, 504, "{r:?}");
        assert_logged(&log, "e-sleep", json!(200), "function timed out after 600 ms");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.text().starts_with("{\"message\":"), "{}", r.text());
        eventually("the hung process is gone", || !pid_alive(q));
        // and the function still works
        let s = pid_of(&g, "/e/pid");
        assert!(s != p && s != q, "a third process: {p} {q} {s}");

        // an init error (the handler's module does not exist): 502
        let r = get_id(&g, "/broken", "e-init");
        assert_eq!(r.status, 502, "{r:?}");
        assert_eq!(r.text(), INTERNAL);
        assert_logged(&log, "e-init", json!(200), "function error: Runtime.*");

        let a = admin(&g);
        // pid x4, raise, exit, sleep
        assert_metric(a, "tollgate_function_invocations_total{function=\"shape\"}", 7.0);
        assert_metric(a, "tollgate_function_errors_total{function=\"shape\"}", 2.0);
        assert_metric(a, "tollgate_function_timeouts_total{function=\"shape\"}", 1.0);
        assert_metric(a, "tollgate_function_cold_starts_total{function=\"shape\"}", 3.0);
        assert_metric(a, "tollgate_function_invocations_total{function=\"broken\"}", 1.0);
        assert_metric(a, "tollgate_function_errors_total{function=\"broken\"}", 1.0);
        assert_metric(a, "tollgate_function_timeouts_total{function=\"broken\"}", 0.0);
        assert_eq!(rec.pids().len(), 3, "{:?}", rec.pids());
        // the broken function's processes never got to app.py: nothing recorded, but the
        // service holds none of them either
        eventually("no broken process left", || {
            metric(&metrics(a), "tollgate_function_processes{function=\"broken\"}") == Some(0.0)
        });
        stop_and_check(g, &[&rec]);
    }

    // Cold first, warm second (same process), scale to zero after idle_ms, cold again.
    fn cold_warm_and_scale_to_zero(d) {
        let rec = Record::new(&format!("cold-{d}"));
        let mut f = Func::new("warm", "shape");
        f.idle_ms = 1000;
        let g = gateway(d, &(f.toml(&rec) + &route("GET /w/{proxy+}", "warm", "2.0")));
        let a = admin(&g);
        let cold = "tollgate_function_cold_starts_total{function=\"warm\"}";

        let p = pid_of(&g, "/w/pid");
        assert_metric(a, cold, 1.0);
        assert_metric(a, "tollgate_function_processes{function=\"warm\"}", 1.0);
        assert_eq!(pid_of(&g, "/w/pid"), p, "warm: the same process");
        assert_metric(a, cold, 1.0);

        // idle past idle_ms: the process exits
        eventually("the idle process stopped", || !pid_alive(p));
        eventually("no process left", || {
            metric(&metrics(a), "tollgate_function_processes{function=\"warm\"}") == Some(0.0)
        });
        let q = pid_of(&g, "/w/pid");
        assert_ne!(q, p);
        assert_metric(a, cold, 2.0);
        assert_metric(a, "tollgate_function_invocations_total{function=\"warm\"}", 3.0);
        stop_and_check(g, &[&rec]);
    }

    // concurrency 2, queue 64: 8 parallel slow calls all succeed, never more than 2 at once;
    // concurrency 1, queue 0: a second call while one runs is throttled (429).
    fn concurrency_and_queue_limits(d) {
        let rec = Record::new(&format!("conc-{d}"));
        let log = log_path(&format!("conc-{d}"));
        let one = Record::new(&format!("one-{d}"));
        let mut slow = Func::new("slow", "slow");
        slow.concurrency = 2;
        slow.queue = 64;
        slow.timeout_ms = 5000;
        slow.env = "SLOW_MS = \"200\"";
        let mut single = Func::new("single", "started");
        single.concurrency = 1;
        single.queue = 0;
        single.timeout_ms = 5000;
        single.env = "SLOW_MS = \"800\"";
        let g = gateway(d, &(access_log_toml(&log) + &slow.toml(&rec) + &single.toml(&one)
            + &route("GET /slow/{proxy+}", "slow", "2.0")
            + &route("GET /one/{proxy+}", "single", "2.0")));

        let addr = g.addr;
        let threads: Vec<_> = (0..8)
            .map(|i| std::thread::spawn(move || {
                roundtrip(addr, format!("GET /slow/{i} HTTP/1.1\r\nHost: api.example\r\n\r\n").as_bytes())
            }))
            .collect();
        for t in threads {
            let r = t.join().unwrap();
            assert_eq!(r.status, 200, "{r:?}");
        }
        let iv = rec.intervals();
        assert_eq!(iv.len(), 8, "{iv:?}");
        let most = iv.iter().map(|(s, _, _)| iv.iter().filter(|(s2, e2, _)| s2 <= s && s < e2).count()).max().unwrap();
        assert!(most <= 2, "{most} ran at once: {iv:?}");
        assert!(rec.pids().len() <= 2, "at most 2 processes: {:?}", rec.pids());

        let t = std::thread::spawn(move || roundtrip(addr, b"GET /one/a HTTP/1.1\r\nHost: api.example\r\n\r\n"));
        eventually("the first call runs", || one.path("started").exists());
        let r = get_id(&g, "/one/b", "throttled");
        assert_eq!(r.status, 429, "{r:?}");
        assert_logged(&log, "throttled", json!(429), "function throttled");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.text().starts_with("{\"message\":"), "{}", r.text());
        assert_eq!(t.join().unwrap().status, 200);

        let a = admin(&g);
        assert_metric(a, "tollgate_function_invocations_total{function=\"slow\"}", 8.0);
        assert_metric(a, "tollgate_function_errors_total{function=\"slow\"}", 0.0);
        assert_metric(a, "tollgate_function_throttles_total{function=\"slow\"}", 0.0);
        assert_metric(a, "tollgate_function_throttles_total{function=\"single\"}", 1.0);
        assert_metric(a, "tollgate_function_invocations_total{function=\"single\"}", 2.0);
        assert_metric(a, "tollgate_function_concurrent_executions{function=\"slow\"}", 0.0);
        assert_metric(a, "tollgate_function_queue_depth{function=\"slow\"}", 0.0);
        stop_and_check(g, &[&rec, &one]);
    }

    // The function's environment: its `env` and Lambda's variables, nothing of tollgate's.
    fn the_function_sees_only_its_environment(d) {
        set_sentinel();
        let rec = Record::new(&format!("env-{d}"));
        let mut f = Func::new("envf", "env");
        f.env = "TABLE = \"pets\"";
        let g = gateway(d, &(f.toml(&rec) + &route("GET /env", "envf", "2.0")));
        let r = get_path(&g, "/env");
        assert_eq!(r.status, 200, "{r:?}");
        let env = json_body(&r);
        assert_eq!(env["TABLE"], "pets");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "envf");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
        assert_eq!(env["AWS_REGION"], "us-east-1");
        assert_eq!(env["_HANDLER"], "app.env");
        assert_eq!(env["LAMBDA_TASK_ROOT"], handlers_dir().display().to_string());
        assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/envf");
        let api = env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap();
        assert!(api.starts_with("127.0.0.1:"), "{api}");
        assert!(std::env::var(SENTINEL).is_ok());
        assert!(env.get(SENTINEL).is_none(), "tollgate's environment leaked: {env}");
        assert!(env.get("HOME").is_none(), "{env}");
        stop_and_check(g, &[&rec]);
    }

    // Reload: a changed env reaches new requests (new processes, the old one stops); a
    // removed function and route are gone (admin POST /reload).
    fn reload_changes_and_removes_functions(d) {
        let rec = Record::new(&format!("reload-{d}"));
        let mut f = Func::new("envf", "env");
        f.env = "TABLE = \"pets\"";
        let keep = Func::new("echo", "echo");
        let rest = |f: &Func| f.toml(&rec) + &route("GET /env", "envf", "2.0");
        let tail = keep.toml(&rec) + &route("GET /echo", "echo", "2.0");
        let g = gateway(d, &(rest(&f) + &tail));
        assert_eq!(json_body(&get_path(&g, "/env"))["TABLE"], "pets");
        let first = rec.pids();
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(get_path(&g, "/echo").status, 200);
        let echo: Vec<u32> = rec.pids().into_iter().filter(|p| !first.contains(p)).collect();
        assert_eq!(echo.len(), 1, "{echo:?}");

        f.env = "TABLE = \"dogs\"";
        g.write_config(&config(d, &(rest(&f) + &tail)));
        g.reload().expect("reload");
        // the functions service has applied it when the reload returns: only the new
        // generation answers from now on
        for _ in 0..3 {
            assert_eq!(json_body(&get_path(&g, "/env"))["TABLE"], "dogs");
        }
        let second: Vec<u32> = rec.pids().into_iter().filter(|p| !first.contains(p) && !echo.contains(p)).collect();
        assert_eq!(second.len(), 1, "a new process for the changed env: {second:?}");
        // the old generation's idle process stops
        eventually("the old process stopped", || !pid_alive(first[0]));
        assert!(pid_alive(echo[0]), "the unchanged function keeps its process");

        // removed through the admin listener's POST /reload
        g.write_config(&config(d, &tail));
        let r = roundtrip(admin(&g), b"POST /reload HTTP/1.1\r\nHost: localhost\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(r.status, 200, "{r:?}");
        let r = get_path(&g, "/env");
        assert_eq!(r.status, 404, "{r:?}");
        eventually("the removed function's process stopped", || !pid_alive(second[0]));
        assert_eq!(get_path(&g, "/echo").status, 200);
        assert!(pid_alive(echo[0]), "the kept function keeps its process");
        assert_eq!(rec.pids().len(), 3, "no other process: {:?}", rec.pids());
        stop_and_check(g, &[&rec]);
    }

    // The admin listener's Invoke API answers as AWS Lambda's does (and `aws lambda invoke`
    // works against it when the AWS CLI is installed).
    fn the_admin_listener_answers_the_invoke_api(d) {
        let rec = Record::new(&format!("invoke-{d}"));
        let g = gateway(d, &(Func::new("shape", "shape").toml(&rec) + &route("GET /s/{proxy+}", "shape", "2.0")));
        let a = admin(&g);
        let invoke = |name: &str, body: &str| {
            roundtrip(a, format!("POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
        };
        let r = invoke("shape", r#"{"shape":"bare"}"#);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(json_body(&r), json!({"pets": ["cat", "dog"], "n": 2}));
        assert!(r.header("x-amz-function-error").is_none());
        assert!(r.header("x-amzn-requestid").is_some_and(|v| v.len() == 36), "{r:?}");
        let r = invoke("shape", r#"{"shape":"raise"}"#);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
        let e = json_body(&r);
        assert_eq!(e["errorType"], "ValueError");
        assert_eq!(e["errorMessage"], "handler failed on purpose");
        let r = invoke("nosuch", "{}");
        assert_eq!(r.status, 404, "{r:?}");
        assert_eq!(r.header("x-amzn-errortype"), Some("ResourceNotFoundException"));

        // aws lambda invoke --endpoint-url, when the CLI is here (optional: not installed by
        // the test; the manual check is in README's "Trying a local function")
        match aws_cli() {
            Some(v2) => {
                let out = rec.path("aws-out.json");
                let mut cmd = std::process::Command::new("timeout");
                cmd.args(["60", "aws", "lambda", "invoke", "--endpoint-url", &format!("http://{a}"), "--region", "us-east-1", "--function-name", "shape", "--payload", r#"{"shape":"bare"}"#]);
                if v2 {
                    cmd.args(["--cli-binary-format", "raw-in-base64-out"]);
                }
                cmd.arg(&out)
                    .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
                    .env("AWS_SECRET_ACCESS_KEY", "secret")
                    .env("AWS_PAGER", "");
                let o = cmd.output().expect("aws runs");
                assert!(o.status.success(), "aws lambda invoke: {}", String::from_utf8_lossy(&o.stderr));
                let meta: Value = serde_json::from_slice(&o.stdout).unwrap();
                assert_eq!(meta["StatusCode"], 200, "{meta}");
                let payload: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
                assert_eq!(payload, json!({"pets": ["cat", "dog"], "n": 2}));
                assert_metric(a, "tollgate_function_cold_starts_total{function=\"shape\"}", 1.0);
            }
            None => eprintln!("aws CLI not installed: `aws lambda invoke --endpoint-url` not checked"),
        }
        assert_eq!(pid_of(&g, "/s/pid"), rec.pids()[0], "routes and the Invoke API share the process");
        stop_and_check(g, &[&rec]);
    }

    // The tollgate binary: function output reaches its log (stderr) with the function's name
    // and the gateway's request id, the cold start is logged, and SIGTERM stops the processes.
    fn the_binary_logs_function_output_and_stops_functions_on_sigterm(d) {
        let rec = Record::new(&format!("binary-{d}"));
        let text = server_toml(d, 1, "") + &Func::new("shape", "shape").toml(&rec)
            + &route("GET /s/{proxy+}", "shape", "2.0");
        let config = rec.path("tollgate.toml");
        std::fs::write(&config, text).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("-c")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tollgate starts");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("listening on ") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let startup = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("a startup line");
        let addr: std::net::SocketAddr = startup
            .rsplit("listening on ")
            .next()
            .and_then(|s| s.trim().split(", ").next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected startup line: {startup}"));

        let r = roundtrip(addr, b"GET /s/log HTTP/1.1\r\nHost: api.example\r\nx-request-id: bin-log-1\r\n\r\n");
        assert_eq!(r.status, 200, "{r:?}");
        let has = |needle: &str| lines.lock().unwrap().iter().any(|l| l.contains(needle));
        eventually("the function's stdout in tollgate's log", || has("tollgate: function shape [bin-log-1] stdout: to stdout from "));
        eventually("the function's stderr in tollgate's log", || has("tollgate: function shape [bin-log-1] stderr: to stderr from "));
        let pid = {
            let r = roundtrip(addr, b"GET /s/pid HTTP/1.1\r\nHost: api.example\r\n\r\n");
            json_body(&r)["pid"].as_u64().unwrap() as u32
        };
        assert!(has(&format!("tollgate: function shape cold start (pid {pid}) ready in ")), "{:?}", lines.lock().unwrap());

        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let mut status = None;
        eventually("tollgate exits on SIGTERM", || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        assert_eq!(status.unwrap().code(), Some(0), "{:?}", lines.lock().unwrap());
        reader.join().unwrap();
        assert_gone(&rec.pids());
        assert_eq!(rec.pids(), [pid]);
    }

    // A function built with AWS's Rust runtime client (`lambda_runtime`) runs behind tollgate
    // unchanged: a 2.0 event in, its structured response out.
    fn a_rust_lambda_runtime_function(d) {
        let bin = rust_hello();
        let toml = format!(
            "[[function]]\nname = \"rusty\"\ncommand = [\"{}\"]\ncwd = \"{}\"\ntimeout_ms = 1000\n\n",
            bin.display(),
            handlers_dir().display()
        ) + &route("GET /rust/{proxy+}", "rusty", "2.0");
        let g = gateway(d, &toml);
        let r = get_id(&g, "/rust/hi", "rust-1");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("x-runtime"), Some("rust"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let b = json_body(&r);
        assert_eq!(b["runtime"], "lambda_runtime");
        assert_eq!(b["rawPath"], "/rust/hi");
        assert_eq!(b["version"], "2.0");
        assert_eq!(b["requestId"].as_str().map(str::len), Some(36), "{b}");
        let pid = b["pid"].as_u64().unwrap() as u32;
        // warm: the same process again
        let again = json_body(&get_path(&g, "/rust/again"));
        assert_eq!(again["pid"].as_u64(), Some(u64::from(pid)));
        assert_metric(admin(&g), "tollgate_function_cold_starts_total{function=\"rusty\"}", 1.0);
        g.stop();
        assert_gone(&[pid]);
    }
}

/// Whether the AWS CLI runs here: Some(true) for v2, Some(false) for v1.
fn aws_cli() -> Option<bool> {
    let o = std::process::Command::new("timeout")
        .args(["30", "aws", "--version"])
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    o.status.success().then(|| text.starts_with("aws-cli/2"))
}
