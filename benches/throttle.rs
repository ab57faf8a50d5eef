//! The per-request throttle decision (target: under 50 ns, no atomic read-modify-write in the
//! common path). Levels: gateway default, a route limit and a key's plan limit, all with rates
//! far above the benchmark's pace so decisions take the common path (leased tokens), plus the
//! slow path measured separately: every decision leases from the shared bucket.

// A benchmark harness, not runtime code: its setup panicking on a broken fixture is the
// report, so the crate-wide deny of unwrap/expect (Cargo.toml [lints]) does not apply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tollgate::throttle::worker::{Identity, WorkerThrottle};
use tollgate::throttle::Throttle;

const CONFIG: &str = r#"
[throttle]
rate = 1e9
burst = 1000000000

[[route]]
key = "GET /limited"
mock = {}
throttle = { rate = 1e9, burst = 1000000000 }

[[route]]
key = "GET /keyed"
mock = {}
api_key_required = true
throttle = { rate = 1e9, burst = 1000000000 }

[[usage_plan]]
name = "gold"
throttle = { rate = 1e9, burst = 1000000000 }

[[api_key]]
name = "alice"
value = "key-one-0123456789abcdef"
plan = "gold"
"#;

fn bench(c: &mut Criterion) {
    let cfg = tollgate::config::from_str(CONFIG).expect("bench config");
    let t = Arc::new(Throttle::new(cfg.throttle.clone(), 1));
    let w = WorkerThrottle::new(t, 0);
    let no_header = |_: &str| None;
    let anon = Identity {
        ip: b"127.0.0.1",
        key: None,
        header: &no_header,
        principal: None,
    };
    let keyed = Identity {
        ip: b"127.0.0.1",
        key: Some(0),
        header: &no_header,
        principal: None,
    };
    // Let the leases size themselves as the 10 ms reconciliation does under steady traffic.
    for _ in 0..100_000 {
        let _ = w.admit(0, &anon);
        let _ = w.admit(1, &keyed);
    }
    w.sync();
    c.bench_function("throttle/route_and_gateway", |b| {
        b.iter(|| w.admit(black_box(0), black_box(&anon)))
    });
    c.bench_function("throttle/key_route_and_gateway", |b| {
        b.iter(|| w.admit(black_box(1), black_box(&keyed)))
    });
    // the slow path: a fresh worker leases one token per decision (its lease size grows only
    // at reconciliation), so every decision is a CAS on the shared bucket and a clock read
    let fresh = WorkerThrottle::new(Arc::new(Throttle::new(cfg.throttle.clone(), 1)), 0);
    c.bench_function("throttle/lease_from_shared_bucket", |b| {
        b.iter(|| fresh.admit(black_box(0), black_box(&anon)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
