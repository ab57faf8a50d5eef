//! Local functions through a route, on both drivers: the worker's pool to the functions
//! service's loopback Invoke API, the same code path as a remote function (event, Invoke
//! request, classify, reply). A standard-library Python runtime client
//! (tests/fixtures/lambda/fake_runtime.py) runs as the function. Covered: the event reaches the
//! process and its answer becomes the response, a warm process is reused, a function that fails
//! to start is a 502 with the error in the access log, and the function metrics (workers' counts
//! and the service's cold starts and processes).

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::lambda::{
    access_log_toml, assert_metrics_contain, fake_function, function_stats, log_line, log_path,
};
use common::*;
use serde_json::Value;

both_drivers! {
    fn a_route_invokes_a_local_function(d) {
        let log = log_path(d);
        let text = server_toml(d, 2, "")
            + "[admin]\nlisten = \"127.0.0.1:0\"\n\n"
            + &access_log_toml(&log)
            + &fake_function("hello", "TABLE = \"pets\"", 3000)
            + &fake_function("broken", "FAKE_INIT = \"error\"", 3000)
            + "[[route]]\nkey = \"ANY /hello/{proxy+}\"\nfunction = \"hello\"\n\n"
            + "[[route]]\nkey = \"GET /broken\"\nfunction = \"broken\"\n";
        let g = Gateway::from_toml(&text);
        let admin = g.handle().admin_addr().expect("admin listener");

        let mut pids = Vec::new();
        for i in 0..3 {
            let mut c = Client::new(g.addr);
            c.send(format!("POST /hello/x?q={i} HTTP/1.1\r\nHost: api.example\r\nx-request-id: local-{i}\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{{\"a\":1}}").as_bytes());
            let r = c.read(false).expect("a response");
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.header("content-type"), Some("application/json"));
            // the fake runtime answers a bare JSON object: the event it got, and its pid
            let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()));
            let ev = &v["event"];
            assert_eq!(ev["version"], "2.0");
            assert_eq!(ev["rawPath"], "/hello/x");
            assert_eq!(ev["rawQueryString"], format!("q={i}"));
            assert_eq!(ev["body"], "{\"a\":1}");
            assert_eq!(ev["requestContext"]["requestId"], format!("local-{i}"));
            assert_eq!(ev["requestContext"]["accountId"], "000000000000");
            assert!(
                v["fields"]["Lambda-Runtime-Invoked-Function-Arn"].as_str().unwrap().ends_with(":function:hello"),
                "{v}"
            );
            pids.push(v["pid"].as_u64().unwrap());
        }
        assert!(pids.iter().all(|p| *p == pids[0]), "one warm process served them all: {pids:?}");
        let line = log_line(&log, "local-0");
        assert!(line.contains("\"integrationStatus\":200,"), "{line}");
        assert!(line.contains("\"errorMessage\":\"-\""), "{line}");

        // a function whose process fails to start: 502, the error's type in the log
        let r = roundtrip(g.addr, b"GET /broken HTTP/1.1\r\nHost: api.example\r\nx-request-id: local-broken\r\n\r\n");
        assert_eq!(r.status, 502, "{}", r.text());
        assert_eq!(r.text(), r#"{"message":"Internal Server Error"}"#);
        let line = log_line(&log, "local-broken");
        assert!(line.contains("\"errorMessage\":\"function error: "), "{line}");
        assert!(line.contains("\"integrationStatus\":200,"), "{line}");

        assert_metrics_contain(admin, &[
            "tollgate_function_invocations_total{function=\"hello\"} 3\n",
            "tollgate_function_errors_total{function=\"hello\"} 0\n",
            "tollgate_function_invocations_total{function=\"broken\"} 1\n",
            "tollgate_function_errors_total{function=\"broken\"} 1\n",
            "tollgate_function_cold_starts_total{function=\"hello\"} 1\n",
            "tollgate_function_processes{function=\"hello\"} 1\n",
            "tollgate_function_concurrent_executions{function=\"hello\"} 0\n",
            "tollgate_function_queue_depth{function=\"hello\"} 0\n",
        ]);
        let hello = function_stats(admin, "hello");
        assert_eq!(hello["kind"], "local");
        assert_eq!(hello["invocations"], 3);
        assert_eq!(hello["cold_starts"], 1);
        assert_eq!(hello["processes"], 1);
    }
}
