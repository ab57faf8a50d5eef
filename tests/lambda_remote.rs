//! Remote Lambda functions end to end, on both drivers: routes invoking `[[function]]`s with an
//! `arn` through an in-test Lambda Invoke API endpoint (the recording origin of the harness,
//! answering canned Invoke API responses and checking each request's SigV4 signature with
//! `tollgate::aws::sigv4::verify`). Covered: the Invoke request (path with the ARN
//! percent-encoded, invocation type, content type, request id, signature over exactly what is
//! sent), the event's key fields (payload 2.0 and 1.0), every answer shape and failure with its
//! status and body, the access log's `integrationStatus` / `errorMessage`, the 6 MB request
//! limit, an HTTP/2 client, the function metrics, a function's own HSTS over TLS (not doubled
//! by `tls.hsts`), the replay of an Invoke request on a stale pooled connection, and the event
//! time being the request's arrival.
//!
//! Credentials come from the process environment when the config is loaded: every test here
//! sets the same values (tests of one binary share the environment) before starting a gateway.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Once;
use std::time::{Duration, Instant, SystemTime};

use common::h2client::{H2, H2C, LIVE};
use common::lambda::{access_log_toml, assert_metrics_contain, function_stats, log_line, log_path};
use common::tls_client::{Ca, CertDir, ClientOpts, TlsClient};
use common::*;
use serde_json::Value;
use tollgate::aws::sigv4::{self, Scope, SigningRequest};
use tollgate::aws::Credentials;

const AKID: &str = "AKIDLAMBDAREMOTETEST";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYLAMBDATEST";
const TOKEN: &str = "FQoGZXIvYXdzEXAMPLEsessiontoken";
const REGION: &str = "eu-west-1";
const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:orders";
/// The ARN as a path segment: `:` percent-encoded, as the AWS SDKs send it.
const ARN_PATH: &str = "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Aorders";

/// Sets the AWS credentials in the environment, once for the whole binary (same values for
/// every test, before any config is loaded).
fn credentials() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", AKID);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
        std::env::set_var("AWS_SESSION_TOKEN", TOKEN);
    });
}

/// Checks a recorded Invoke request's SigV4 signature the way AWS would.
fn verify(r: &Recorded) -> Result<String, String> {
    let auth = r.header("authorization").ok_or("no authorization")?;
    let date = r.header("x-amz-date").ok_or("no x-amz-date")?;
    let token = r.header("x-amz-security-token");
    let (path, query) = r.target.split_once('?').unwrap_or((&r.target, ""));
    let headers: Vec<(&str, &[u8])> = r
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let req = SigningRequest {
        method: &r.method,
        path,
        query,
        headers: &headers,
        body: &r.body,
    };
    let lookup = |k: &str| {
        (k == AKID).then(|| Credentials {
            access_key_id: AKID.into(),
            secret_access_key: SECRET.into(),
            session_token: Some(TOKEN.into()),
        })
    };
    let scope = Scope {
        region: REGION,
        service: "lambda",
    };
    sigv4::verify(
        &req,
        auth,
        date,
        token,
        lookup,
        scope,
        SystemTime::now(),
        Duration::from_secs(900),
    )
    .map(|v| v.access_key_id)
    .map_err(|e| e.to_string())
}

/// An Invoke API answer.
fn invoke_answer(status: &str, extra: &str, body: &str) -> Reply {
    Reply::Raw(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-amzn-requestid: 6bc28136-c6b1-4c5b-9cd6-0f3a9a6b1e42\r\n{extra}content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// The event's request path (2.0 `rawPath`, 1.0 `path`).
fn event_path(r: &Recorded) -> String {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    v.get("rawPath")
        .or_else(|| v.get("path"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The in-test Invoke endpoint: refuses a bad signature as AWS does (403), else answers by the
/// event's path.
fn endpoint() -> Origin {
    Origin::start(|r| {
        if let Err(e) = verify(r) {
            let body = format!("{{\"message\":\"{e}\"}}");
            return invoke_answer(
                "403 Forbidden",
                "x-amzn-errortype: InvalidSignatureException\r\n",
                &body,
            );
        }
        let path = event_path(r);
        let tail = path.rsplit('/').next().unwrap_or("");
        match tail {
            "ok" => invoke_answer(
                "200 OK",
                "x-amz-executed-version: $LATEST\r\n",
                r#"{"statusCode":201,"headers":{"content-type":"text/plain","x-fn":"yes"},"cookies":["a=1; Path=/","b=2"],"body":"aGVsbG8gbGFtYmRh","isBase64Encoded":true}"#,
            ),
            "bare" => invoke_answer("200 OK", "", r#"{"orders":[1,2]}"#),
            // fields the gateway adds when absent: HSTS is the function's, date and request id
            // are tollgate's
            "hsts" => invoke_answer(
                "200 OK",
                "",
                r#"{"statusCode":200,"headers":{"Strict-Transport-Security":"max-age=5","date":"Thu, 01 Jan 1970 00:00:00 GMT","x-request-id":"fn-id"},"body":"own"}"#,
            ),
            "v1ok" => invoke_answer(
                "200 OK",
                "",
                r#"{"statusCode":200,"multiValueHeaders":{"x-multi":["1","2"]},"body":"v1 body"}"#,
            ),
            "fnerror" => invoke_answer(
                "200 OK",
                "x-amz-function-error: Unhandled\r\n",
                r#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#,
            ),
            "timedout" => invoke_answer(
                "200 OK",
                "x-amz-function-error: Unhandled\r\n",
                r#"{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: 6bc28136 Error: Task timed out after 3.00 seconds"}"#,
            ),
            "throttle" => invoke_answer(
                "429 Too Many Requests",
                "x-amzn-errortype: TooManyRequestsException\r\n",
                r#"{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#,
            ),
            // 1.0 needs statusCode: without it the answer is no response
            "malformed" => invoke_answer("200 OK", "", r#"{"body":"no status"}"#),
            "hang" => Reply::After(
                Duration::from_secs(7),
                Box::new(invoke_answer("200 OK", "", "{}")),
            ),
            _ => invoke_answer(
                "404 Not Found",
                "x-amzn-errortype: ResourceNotFoundException\r\n",
                r#"{"Type":"User","message":"Function not found"}"#,
            ),
        }
    })
}

/// A gateway with the remote functions `orders` (the endpoint), `slow` (the endpoint, 300 ms
/// timeout) and `gone` (nobody listening), their routes (`/bounded` with a 200 ms route timeout), the admin listener and a JSON access
/// log.
fn gateway(d: &str, ep: &Origin, log: &std::path::Path) -> Gateway {
    Gateway::from_toml(&gateway_text(d, ep, log))
}

/// The config text of [`gateway`].
fn gateway_text(d: &str, ep: &Origin, log: &std::path::Path) -> String {
    credentials();
    let dead = unephemeral_port();
    server_toml(d, 1, H2C)
        + "[admin]\nlisten = \"127.0.0.1:0\"\n\n"
        + &access_log_toml(log)
        + &format!(
            "[[function]]\nname = \"orders\"\narn = \"{ARN}\"\nendpoint = \"http://{}\"\ntimeout_ms = 5000\n\n",
            ep.addr
        )
        + &format!(
            "[[function]]\nname = \"slow\"\narn = \"arn:aws:lambda:eu-west-1:123456789012:function:slow\"\nendpoint = \"http://{}\"\ntimeout_ms = 300\n\n",
            ep.addr
        )
        + &format!(
            "[[function]]\nname = \"gone\"\narn = \"arn:aws:lambda:eu-west-1:123456789012:function:gone\"\nendpoint = \"http://127.0.0.1:{dead}\"\n\n"
        )
        + "[[route]]\nkey = \"ANY /orders/{proxy+}\"\nfunction = \"orders\"\n\n"
        + "[[route]]\nkey = \"ANY /v1/{proxy+}\"\nfunction = \"orders\"\npayload_format = \"1.0\"\n\n"
        + "[[route]]\nkey = \"ANY /slow/{proxy+}\"\nfunction = \"slow\"\n\n"
        + "[[route]]\nkey = \"ANY /bounded/{proxy+}\"\nfunction = \"orders\"\ntimeout_ms = 200\n\n"
        + "[[route]]\nkey = \"GET /gone\"\nfunction = \"gone\"\n"
}

fn send(g: &Gateway, raw: &str) -> Response {
    roundtrip(g.addr, raw.as_bytes())
}

fn get_path(g: &Gateway, path: &str) -> Response {
    send(
        g,
        &format!("GET {path} HTTP/1.1\r\nHost: api.example\r\n\r\n"),
    )
}

both_drivers! {
    // The Invoke request as sent, the 2.0 and 1.0 events' key fields, and the successful
    // answer shapes.
    fn invokes_signed_and_turns_payloads_into_responses(d) {
        let ep = endpoint();
        let log = log_path(&format!("ok-{d}"));
        let g = gateway(d, &ep, &log);

        let r = send(&g, "POST /orders/ok?a=1&b=x%20y HTTP/1.1\r\nHost: api.example\r\nx-custom: one\r\nCookie: s=1; t=2\r\ncontent-type: text/plain\r\nx-request-id: req-ok-1\r\ncontent-length: 5\r\n\r\nhello");
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.header("x-fn"), Some("yes"));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        let cookies: Vec<&str> = r.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.as_str()).collect();
        assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
        assert_eq!(r.text(), "hello lambda");
        assert_eq!(r.header("x-request-id"), Some("req-ok-1"));

        let reqs = ep.requests();
        assert_eq!(reqs.len(), 1);
        let inv = &reqs[0];
        assert_eq!(inv.method, "POST");
        assert_eq!(inv.target, format!("/2015-03-31/functions/{ARN_PATH}/invocations"));
        assert_eq!(inv.header("host"), Some(ep.addr.to_string().as_str()));
        assert_eq!(inv.header("x-amz-invocation-type"), Some("RequestResponse"));
        assert_eq!(inv.header("content-type"), Some("application/json"));
        assert_eq!(inv.header("x-request-id"), Some("req-ok-1"));
        assert_eq!(inv.header("x-amz-security-token"), Some(TOKEN));
        assert_eq!(verify(inv), Ok(AKID.to_string()), "the endpoint accepts the signature");
        assert_eq!(inv.header("content-length"), Some(inv.body.len().to_string().as_str()));
        let ev: Value = serde_json::from_slice(&inv.body).unwrap();
        assert_eq!(ev["version"], "2.0");
        assert_eq!(ev["routeKey"], "ANY /orders/{proxy+}");
        assert_eq!(ev["rawPath"], "/orders/ok");
        assert_eq!(ev["rawQueryString"], "a=1&b=x%20y");
        assert_eq!(ev["queryStringParameters"]["b"], "x y");
        assert_eq!(ev["headers"]["x-custom"], "one");
        assert_eq!(ev["cookies"], serde_json::json!(["s=1", "t=2"]));
        assert_eq!(ev["pathParameters"]["proxy"], "ok");
        assert_eq!(ev["body"], "hello");
        assert_eq!(ev["isBase64Encoded"], false);
        assert_eq!(ev["requestContext"]["http"]["method"], "POST");
        assert_eq!(ev["requestContext"]["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(ev["requestContext"]["requestId"], "req-ok-1");
        assert_eq!(ev["requestContext"]["accountId"], "123456789012");

        // a bare JSON value: 200 application/json, the payload as the body
        let r = get_path(&g, "/orders/bare");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.text(), r#"{"orders":[1,2]}"#);

        // payload 1.0: the event's shape, multiValueHeaders in the answer
        let r = send(&g, "PUT /v1/v1ok?k=1&k=2 HTTP/1.1\r\nHost: api.example\r\nx-rep: a\r\nx-rep: b\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.text(), "v1 body");
        let multi: Vec<&str> = r.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("x-multi")).map(|(_, v)| v.as_str()).collect();
        assert_eq!(multi, ["1", "2"]);
        let reqs = ep.requests();
        let ev: Value = serde_json::from_slice(&reqs.last().unwrap().body).unwrap();
        assert_eq!(ev["version"], "1.0");
        assert_eq!(ev["resource"], "/v1/{proxy+}");
        assert_eq!(ev["path"], "/v1/v1ok");
        assert_eq!(ev["httpMethod"], "PUT");
        assert_eq!(ev["headers"]["x-rep"], "b");
        assert_eq!(ev["multiValueHeaders"]["x-rep"], serde_json::json!(["a", "b"]));
        assert_eq!(ev["multiValueQueryStringParameters"]["k"], serde_json::json!(["1", "2"]));
        assert_eq!(ev["pathParameters"]["proxy"], "v1ok");
        for r in &reqs {
            assert_eq!(verify(r), Ok(AKID.to_string()));
        }

        // the access log: the Invoke API's status, no error
        let line = log_line(&log, "req-ok-1");
        assert_eq!(raw_field(&line, "integrationStatus"), "200", "{line}");
        assert_eq!(raw_field(&line, "errorMessage"), "\"-\"", "{line}");
        assert_eq!(raw_field(&line, "integration.endpoint"), format!("\"{}\"", ep.addr), "{line}");
    }

    // Every failure: its status, body, and what the access log and the metrics say.
    fn failures_map_to_api_gateway_statuses(d) {
        let ep = endpoint();
        let log = log_path(&format!("fail-{d}"));
        let g = gateway(d, &ep, &log);
        let internal = r#"{"message":"Internal Server Error"}"#;
        let cases: [(&str, u16, Option<&str>, &str); 7] = [
            ("/orders/fnerror", 502, Some(internal), "\"function error: ValueError\""),
            ("/orders/timedout", 504, None, "\"function timed out after 5000 ms\""),
            ("/orders/throttle", 429, None, "\"function throttled\""),
            ("/v1/malformed", 502, Some(internal), ""),
            ("/slow/hang", 504, None, "\"no answer from the function within 1300 ms\""),
            // the route's timeout_ms bounds the whole invocation
            ("/bounded/hang", 504, None, "\"no answer from the function within 200 ms\""),
            ("/gone", 502, Some(internal), ""),
        ];
        for (i, (path, status, body, error)) in cases.iter().enumerate() {
            let rid = format!("req-fail-{i}");
            let mut c = Client::new(g.addr);
            c.send(format!("GET {path} HTTP/1.1\r\nHost: api.example\r\nx-request-id: {rid}\r\n\r\n").as_bytes());
            let r = c.read(false).expect("a response");
            assert_eq!(r.status, *status, "{path}: {r:?}");
            assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
            if let Some(b) = body {
                assert_eq!(r.text(), *b, "{path}");
            } else {
                assert!(r.text().starts_with("{\"message\":"), "{path}: {}", r.text());
            }
            // a failed invocation leaves the client connection usable
            c.send(b"GET /orders/bare HTTP/1.1\r\nHost: api.example\r\n\r\n");
            assert_eq!(c.read(false).expect("keep-alive after a failure").status, 200, "{path}");
            let line = log_line(&log, &rid);
            if !error.is_empty() {
                assert_eq!(raw_field(&line, "errorMessage"), *error, "{path}: {line}");
            }
            match *path {
                "/orders/fnerror" | "/orders/timedout" | "/v1/malformed" => {
                    assert_eq!(raw_field(&line, "integrationStatus"), "200", "{path}: {line}")
                }
                "/orders/throttle" => assert_eq!(raw_field(&line, "integrationStatus"), "429", "{line}"),
                _ => assert_eq!(raw_field(&line, "integrationStatus"), "\"-\"", "{path}: {line}"),
            }
            if *path == "/v1/malformed" {
                let e = raw_field(&line, "errorMessage");
                assert!(e.starts_with("\"function response malformed: "), "{line}");
            }
            if *path == "/gone" {
                let e = raw_field(&line, "errorMessage");
                assert!(e.starts_with("\"function service unreachable: "), "{line}");
            }
        }

        // the function metrics
        let admin = g.handle().admin_addr().expect("admin listener");
        assert_metrics_contain(admin, &[
            "tollgate_function_invocations_total{function=\"orders\"} 12",
            "tollgate_function_errors_total{function=\"orders\"} 2",
            "tollgate_function_throttles_total{function=\"orders\"} 1",
            "tollgate_function_timeouts_total{function=\"orders\"} 2",
            "tollgate_function_timeouts_total{function=\"slow\"} 1",
            "tollgate_function_errors_total{function=\"gone\"} 1",
            "tollgate_function_duration_seconds_count{function=\"orders\"} 12",
        ]);
        let orders = function_stats(admin, "orders");
        assert_eq!(orders["kind"], "remote");
        assert_eq!(orders["invocations"], 12);
        assert!(get(admin, "/").text().contains("id=\"function-table\""));
    }

    // A request body over Lambda's 6 MB payload limit is refused with 413 at its head, the
    // function is not invoked, and the connection is closed (its body was not read); an event
    // over the limit (a binary body, base64 in the event) is refused too.
    fn a_body_over_the_payload_limit_is_413(d) {
        let ep = endpoint();
        let log = log_path(&format!("large-{d}"));
        let g = gateway(d, &ep, &log);
        let mut c = Client::new(g.addr);
        let len = 6 * 1024 * 1024 + 1;
        c.send(format!("POST /orders/ok HTTP/1.1\r\nHost: api.example\r\ncontent-type: application/octet-stream\r\ncontent-length: {len}\r\n\r\n").as_bytes());
        c.send(&vec![b'x'; 16 * 1024]);
        let r = c.read(false).expect("a response");
        assert_eq!(r.status, 413);
        assert_eq!(r.text(), r#"{"message":"Request Entity Too Large"}"#);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed(), "the unread body leaves the connection unusable");
        assert!(ep.requests().is_empty(), "the function was not invoked");
        // a binary body under the limit whose event (base64: 4/3 of it) is over it: 413 too,
        // after reading the body whole, so the connection goes on
        let mut c = Client::new(g.addr);
        let big = vec![0xCD_u8; 5 * 1024 * 1024];
        c.send(format!("POST /orders/ok HTTP/1.1\r\nHost: api.example\r\ncontent-type: application/octet-stream\r\nx-request-id: big-event\r\ncontent-length: {}\r\n\r\n", big.len()).as_bytes());
        c.send(&big);
        let r = c.read(false).expect("a response");
        assert_eq!(r.status, 413);
        assert_eq!(r.text(), r#"{"message":"Request Entity Too Large"}"#);
        c.send(b"GET /orders/bare HTTP/1.1\r\nHost: api.example\r\n\r\n");
        assert_eq!(c.read(false).expect("keep-alive after the 413").status, 200);
        let line = log_line(&log, "big-event");
        assert!(raw_field(&line, "errorMessage").ends_with(" bytes over Lambda's payload limit\""), "{line}");
        assert_eq!(ep.requests().len(), 1, "only the bare request reached the endpoint");
        // a body at the limit's side that fits is invoked (base64 in the event)
        let body = vec![0xAB_u8; 1024 * 1024];
        let mut c = Client::new(g.addr);
        c.send(format!("POST /orders/ok HTTP/1.1\r\nHost: api.example\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
        c.send(&body);
        assert_eq!(c.read(false).expect("a response").status, 201);
        let reqs = ep.requests();
        assert_eq!(reqs.len(), 2);
        let ev: Value = serde_json::from_slice(&reqs[1].body).unwrap();
        assert_eq!(ev["isBase64Encoded"], true);
        assert_eq!(ev["body"].as_str().unwrap().len(), 4 * body.len().div_ceil(3));
        assert_eq!(verify(&reqs[1]), Ok(AKID.to_string()));
    }

    // An HTTP/2 client gets the same response as an HTTP/1.1 one, and the event says HTTP/2.
    fn an_http2_client_gets_the_same_response(d) {
        let ep = endpoint();
        let log = log_path(&format!("h2-{d}"));
        let g = gateway(d, &ep, &log);
        let mut c = H2::connect(g.addr);
        let req = c.req("POST", "/orders/ok", &[("content-type", "text/plain"), ("cookie", "s=1")]);
        let r = c.send(req, Some(b"hello")).expect("a response over HTTP/2");
        assert_eq!(r.status, 201);
        assert_eq!(r.header("x-fn"), Some("yes"));
        let cookies: Vec<&str> = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
        assert_eq!(r.body, b"hello lambda");
        let reqs = ep.requests();
        let ev: Value = serde_json::from_slice(&reqs[0].body).unwrap();
        assert_eq!(ev["requestContext"]["http"]["protocol"], "HTTP/2.0");
        assert_eq!(ev["body"], "hello");
        assert_eq!(ev["cookies"], serde_json::json!(["s=1"]));
        assert_eq!(verify(&reqs[0]), Ok(AKID.to_string()));
        let r = c.get("/orders/fnerror");
        assert_eq!(r.status, 502);
        assert_eq!(r.body, br#"{"message":"Internal Server Error"}"#);
    }

    // An HTTP/2 client that resets its stream stops the wait for the function: the invocation
    // ends then (counted, neither an error nor a timeout, its duration far below the endpoint's
    // 7 s hang and the 6 s the gateway would wait), and the connection goes on.
    fn an_http2_reset_stops_the_wait(d) {
        let ep = endpoint();
        let log = log_path(&format!("reset-{d}"));
        let g = gateway(d, &ep, &log);
        let admin = g.handle().admin_addr().expect("admin listener");
        let mut c = H2::connect(g.addr);
        let req = c.req("GET", "/orders/hang", &[]);
        let send = c.send.clone();
        let (resp, mut stream) = c.rt.block_on(async move {
            let mut send = send.ready().await.unwrap();
            send.send_request(req, true).unwrap()
        });
        let until = Instant::now() + LIVE;
        while ep.requests().is_empty() {
            assert!(Instant::now() < until, "the invocation reached the endpoint");
            // drive the client connection (its task runs on the test's runtime)
            c.rt.block_on(async { tokio::time::sleep(Duration::from_millis(5)).await });
        }
        stream.send_reset(h2::Reason::CANCEL);
        drop(resp);
        assert_eq!(c.get("/orders/bare").status, 200, "the connection goes on");
        let until = Instant::now() + LIVE;
        let m = loop {
            let m = get(admin, "/metrics").text();
            if m.contains("tollgate_function_invocations_total{function=\"orders\"} 2\n") {
                break m;
            }
            assert!(Instant::now() < until, "the reset invocation was not counted:\n{m}");
            std::thread::sleep(Duration::from_millis(20));
        };
        for line in [
            "tollgate_function_errors_total{function=\"orders\"} 0\n",
            "tollgate_function_timeouts_total{function=\"orders\"} 0\n",
            "tollgate_function_duration_seconds_bucket{function=\"orders\",le=\"5\"} 2\n",
        ] {
            assert!(m.contains(line), "{line} missing in\n{m}");
        }
    }

    // A reload keeps a function's numbers by name: invocations before and after add up; a
    // function the new config drops is no longer shown.
    fn function_metrics_survive_a_reload(d) {
        let ep = endpoint();
        let log = log_path(&format!("reload-{d}"));
        let text = gateway_text(d, &ep, &log);
        let g = Gateway::from_toml(&text);
        let admin = g.handle().admin_addr().expect("admin listener");
        assert_eq!(get_path(&g, "/orders/bare").status, 200);
        assert_eq!(get_path(&g, "/gone").status, 502);
        // the same functions but `gone` and its route, and one more route
        let next = text.replace("[[route]]\nkey = \"GET /gone\"\nfunction = \"gone\"\n", "")
            .replace("name = \"gone\"", "name = \"gone2\"")
            + "\n[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";
        g.write_config(&next);
        g.reload().expect("reload applies");
        assert_eq!(get_path(&g, "/hello").status, 200, "the new config serves");
        assert_eq!(get_path(&g, "/orders/bare").status, 200);
        let m = get(admin, "/metrics").text();
        assert!(m.contains("tollgate_function_invocations_total{function=\"orders\"} 2\n"), "{m}");
        assert!(m.contains("tollgate_function_invocations_total{function=\"gone2\"} 0\n"), "{m}");
        assert!(!m.contains("function=\"gone\""), "{m}");
    }

    // Over TLS with `tls.hsts`, a function's own strict-transport-security is sent once (its
    // value, not the gateway's beside it); its date and x-request-id are replaced by the
    // gateway's, once each; a function that sets none gets the gateway's HSTS.
    fn a_functions_own_hsts_is_not_doubled(d) {
        let ep = endpoint();
        let log = log_path(&format!("hsts-{d}"));
        let dir = CertDir::new("lambda-hsts");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let (cert, key) = leaf.toml_pair();
        let text = gateway_text(d, &ep, &log)
            + &format!("\n[tls]\nlisten = [\"127.0.0.1:0\"]\nhsts = \"max-age=99\"\n[[tls.certificate]]\ncert = {cert}\nkey = {key}\n");
        let g = Gateway::from_toml(&text);
        let addr = g.handle().tls_addrs()[0];
        let mut t = TlsClient::connect(addr, &ClientOpts::new(&ca, "api.example.com")).unwrap();
        let count = |r: &Response, name: &str| r.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count();
        let r = t.roundtrip(b"GET /orders/hsts HTTP/1.1\r\nHost: api.example.com\r\nx-request-id: req-hsts-1\r\n\r\n");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.text(), "own");
        assert_eq!(count(&r, "strict-transport-security"), 1, "{}", r.head);
        assert_eq!(r.header("strict-transport-security"), Some("max-age=5"), "{}", r.head);
        assert_eq!(count(&r, "date"), 1, "{}", r.head);
        assert_ne!(r.header("date"), Some("Thu, 01 Jan 1970 00:00:00 GMT"), "{}", r.head);
        assert_eq!(count(&r, "x-request-id"), 1, "{}", r.head);
        assert_eq!(r.header("x-request-id"), Some("req-hsts-1"), "{}", r.head);
        let r = t.get("api.example.com", "/orders/bare");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(count(&r, "strict-transport-security"), 1, "{}", r.head);
        assert_eq!(r.header("strict-transport-security"), Some("max-age=99"), "{}", r.head);
    }

    // An Invoke endpoint that closes a kept-alive connection as the next request arrives (the
    // idle-close race of any pooled connection): the Invoke request is sent once more on a
    // fresh connection, and the client gets the function's answer, not a 502.
    fn a_stale_pooled_connection_is_replayed(d) {
        let per_conn = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<usize, usize>::new()));
        let seen = per_conn.clone();
        let ep = Origin::start(move |r| {
            let mut m = seen.lock().unwrap();
            let n = m.entry(r.conn).or_insert(0);
            *n += 1;
            if *n == 1 {
                invoke_answer("200 OK", "", r#"{"orders":[1,2]}"#)
            } else {
                Reply::Close
            }
        });
        let log = log_path(&format!("stale-{d}"));
        let g = gateway(d, &ep, &log);
        for i in 0..3 {
            let r = get_path(&g, "/orders/bare");
            assert_eq!(r.status, 200, "request {i}: {r:?}");
            assert_eq!(r.text(), r#"{"orders":[1,2]}"#);
        }
        // each later request: sent on the pooled connection, closed unanswered, sent again
        let reqs = ep.requests();
        assert_eq!(reqs.len(), 5, "{reqs:?}");
        assert_eq!(ep.connections(), 3);
        assert_eq!(reqs[1].body, reqs[2].body, "the same Invoke request is sent again");
        assert_ne!(reqs[1].conn, reqs[2].conn);
    }

    // `requestContext.timeEpoch` is when the request arrived, not when its body was read.
    fn the_event_time_is_the_arrival_time(d) {
        let ep = endpoint();
        let log = log_path(&format!("arrival-{d}"));
        let g = gateway(d, &ep, &log);
        let ms = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
        let mut c = Client::new(g.addr);
        let before = ms(SystemTime::now());
        c.send(b"POST /orders/bare HTTP/1.1\r\nHost: api.example\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n");
        std::thread::sleep(Duration::from_millis(1500));
        let body_sent = ms(SystemTime::now());
        c.send(b"hello");
        let r = c.read(false).expect("a response");
        assert_eq!(r.status, 200, "{r:?}");
        let reqs = ep.requests();
        let ev: Value = serde_json::from_slice(&reqs[0].body).unwrap();
        let epoch = ev["requestContext"]["timeEpoch"].as_u64().expect("timeEpoch");
        assert!(before <= epoch && epoch < body_sent, "{before} <= {epoch} < {body_sent}");
        assert_eq!(ev["body"], "hello");
    }
}
