//! What observability adds to each request on the worker: formatting one JSON access-log line
//! (API Gateway's `$context` fields, a typical proxied GET) into the worker's buffer, and
//! recording the request in the metrics shard (a status count and two latency histograms).
//! The writer thread's file I/O is not in here: `loadtest/overhead.sh obs` measures the whole.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tollgate::accesslog::{format_line, Entry, Format};
use tollgate::fmt::clf_time;
use tollgate::http::Method;
use tollgate::metrics::{Record, Shard};

fn entry() -> Entry<'static> {
    Entry {
        request_id: b"5f0c6a8e-6b1e-4c47-9d1a-2f3b4c5d6e7f",
        ip: b"127.0.0.1",
        time: 1_795_000_000,
        method: b"GET",
        route_key: "$default",
        path: b"/pets/42",
        status: 200,
        protocol: "HTTP/1.1",
        response_length: 171,
        latency: Duration::from_micros(612),
        integration_latency: Some(Duration::from_micros(433)),
        integration_status: Some(200),
        error: None,
        user_agent: b"Mozilla/5.0 (X11; Linux x86_64) curl/8.5.0",
        api_key: None,
        request_length: 143,
        domain_name: b"api.example.com",
        raw_query: Some(b"expand=owner"),
        endpoint: Some(std::net::SocketAddr::from(([10, 0, 0, 12], 8080))),
        tls: None,
        principal: None,
        authorizer_error: None,
        stage: "$default",
        api_id: "tollgate",
        canary: None,
    }
}

fn bench(c: &mut Criterion) {
    let e = entry();
    let clf = clf_time(e.time);
    let json = Format::Json;
    let mut buf = Vec::with_capacity(1 << 20);
    c.bench_function("access_log_json_line", |b| {
        b.iter(|| {
            if buf.len() > (1 << 20) - 1024 {
                buf.clear();
            }
            format_line(black_box(&json), black_box(&e), &clf, &mut buf);
        })
    });
    let shard = Shard::new(4);
    let rec = Record {
        method: Method::Get,
        status: 200,
        total: Duration::from_micros(612),
        integration: Some(Duration::from_micros(433)),
        bytes_in: 120,
        bytes_out: 171,
    };
    c.bench_function("metrics_record", |b| {
        b.iter(|| shard.record(black_box(Some(2)), black_box(&rec)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
