//! Router lookup benchmarks over a ~3000-route table.

// A benchmark harness, not runtime code: its setup panicking on a broken fixture is the
// report, so the crate-wide deny of unwrap/expect (Cargo.toml [lints]) does not apply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tollgate::router::front::{HostRule, Rule};
use tollgate::router::{Front, RouteSpec, Router, Routers};

const SERVICES: usize = 500;

/// (bench id, method, host, path)
type Case = (
    &'static str,
    &'static [u8],
    Option<&'static [u8]>,
    &'static [u8],
);

/// 6 routes per service (3000 total) plus a few host routes and `$default`.
fn route_keys() -> Vec<(String, Option<&'static str>)> {
    let mut keys = Vec::with_capacity(SERVICES * 6 + 4);
    for i in 0..SERVICES {
        keys.push((format!("GET /svc{i}/v1/items"), None));
        keys.push((format!("POST /svc{i}/v1/items"), None));
        keys.push((format!("GET /svc{i}/v1/items/{{id}}"), None));
        keys.push((format!("DELETE /svc{i}/v1/items/{{id}}"), None));
        keys.push((format!("PUT /svc{i}/v1/items/{{id}}/tags/{{tag}}"), None));
        keys.push((format!("ANY /svc{i}/v1/proxy/{{proxy+}}"), None));
    }
    keys.push(("GET /health".into(), Some("api.example.com")));
    keys.push(("ANY /{proxy+}".into(), Some("*.internal.example.com")));
    keys.push(("GET /svc0/v1/items".into(), Some("*.example.com")));
    keys
}

fn bench_lookup(c: &mut Criterion) {
    let keys = route_keys();
    let specs: Vec<RouteSpec> = keys
        .iter()
        .map(|(key, host)| RouteSpec { key, host: *host })
        .collect();
    let router = Router::build(&specs).expect("bench routes are valid");

    let cases: [Case; 5] = [
        ("router/lookup_literal", b"GET", None, b"/svc250/v1/items"),
        (
            "router/lookup_param",
            b"GET",
            None,
            b"/svc250/v1/items/12345",
        ),
        (
            "router/lookup_greedy",
            b"GET",
            None,
            b"/svc250/v1/proxy/a/b/c.txt",
        ),
        (
            "router/lookup_miss",
            b"GET",
            None,
            b"/svc250/v2/items/12345",
        ),
        (
            "router/lookup_host_param",
            b"GET",
            Some(b"Web.Example.com:443"),
            b"/svc250/v1/items/12345",
        ),
    ];
    for (id, method, host, path) in cases {
        // sanity: hits hit and the miss misses
        assert_eq!(
            router.lookup(method, host, path).is_some(),
            !id.ends_with("miss"),
            "{id}"
        );
        c.bench_function(id, |b| {
            b.iter(|| router.lookup(black_box(method), black_box(host), black_box(path)))
        });
    }

    c.bench_function("router/build_3000", |b| {
        b.iter(|| Router::build(black_box(&specs)).map(|r| r.route_count()))
    });
}

/// 50 APIs × 100 routes, each API on its own stage under `/apiN` of one host (issue 14): the
/// front door's mapping rules, then the stage's router, as the route phase runs them (less the
/// canary draw, which stages without a canary skip).
fn bench_apis(c: &mut Criterion) {
    const APIS: usize = 50;
    let mut keys = Vec::with_capacity(APIS * 100);
    let mut ranges = Vec::with_capacity(APIS + 1);
    ranges.push(0..0); // no top-level routes
    for _ in 0..APIS {
        let start = keys.len();
        for k in 0..20 {
            keys.push(format!("GET /res{k}/items"));
            keys.push(format!("POST /res{k}/items"));
            keys.push(format!("GET /res{k}/items/{{id}}"));
            keys.push(format!("PUT /res{k}/items/{{id}}/tags/{{tag}}"));
            keys.push(format!("ANY /res{k}/proxy/{{proxy+}}"));
        }
        ranges.push(start..keys.len());
    }
    let specs: Vec<RouteSpec> = keys
        .iter()
        .map(|key| RouteSpec { key, host: None })
        .collect();
    let routers = Routers::build(&specs, &ranges).expect("bench routes are valid");
    let rules = (0..APIS)
        .map(|a| Rule {
            host: Some(HostRule::Exact(b"api.example.com".as_slice().into())),
            base: format!("/api{a}").into_bytes().into(),
            header: None,
            stage: a as u32,
        })
        .collect();
    let front = Front::build(rules);
    let lookup = |method: &[u8], host: &[u8], path: &'static [u8]| {
        let sel = front.select(Some(host), path, |_| None)?;
        let rest = path
            .get(sel.strip..)
            .filter(|p| !p.is_empty())
            .unwrap_or(b"/");
        routers.lookup_in(sel.stage + 1, method, Some(host), rest)
    };
    let cases: [(&str, &[u8], &[u8]); 3] = [
        ("router/apis_50x100_literal", b"GET", b"/api25/res10/items"),
        (
            "router/apis_50x100_param",
            b"GET",
            b"/api25/res10/items/12345",
        ),
        (
            "router/apis_50x100_greedy",
            b"GET",
            b"/api25/res10/proxy/a/b/c.txt",
        ),
    ];
    let host: &[u8] = b"API.example.com:443";
    for (id, method, path) in cases {
        let m = lookup(method, host, path).expect("bench requests match");
        assert!(ranges[26].contains(&m.route), "{id}: route {}", m.route);
        c.bench_function(id, |b| {
            b.iter(|| lookup(black_box(method), black_box(host), black_box(path)).map(|m| m.route))
        });
    }
}

criterion_group!(benches, bench_lookup, bench_apis);
criterion_main!(benches);
