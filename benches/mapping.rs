//! What parameter mapping costs a worker per request, without I/O: the request head as the
//! origin gets it (the HTTP integration's rewrite, `integration::rewrite::write_request_head`)
//! from a parsed head, with 0, 1 and 3 header and query mappings rendered into it as it is
//! written (`mapping::request::Mapped`). The 3 are the loadtest's (`loadtest/overhead.sh mapping`): append `x-user` from a
//! client header, overwrite `x-request-id` from `$context.requestId`, remove the `debug`
//! query parameter. Mappings are compiled from TOML by the crate's own config loader.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use tollgate::accesslog::Entry;
use tollgate::exchange::RequestId;
use tollgate::facts::ConnFacts;
use tollgate::integration::rewrite::{write_request_head, Outgoing};
use tollgate::mapping::request::Mapped;
use tollgate::mapping::value::Vars;

const REQUEST: &[u8] = b"GET /orders/17?debug=1&page=2 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\nAccept: application/json\r\nAccept-Encoding: gzip, br\r\nx-client: alice\r\nCookie: session=0123456789abcdef\r\n\r\n";

const ONE: &str = r#"{ "append:header.x-user" = "$request.header.x-client" }"#;
const THREE: &str = r#"{ "append:header.x-user" = "$request.header.x-client", "overwrite:header.x-request-id" = "$context.requestId", "remove:querystring.debug" = "''" }"#;

fn config() -> tollgate::config::Config {
    let text = format!(
        "[[upstream]]\nname = \"o\"\ntargets = [\"127.0.0.1:9\"]\n\n[[route]]\nkey = \"GET /none/{{id}}\"\nupstream = \"o\"\n\n[[route]]\nkey = \"GET /one/{{id}}\"\nupstream = \"o\"\nrequest_parameters = {ONE}\n\n[[route]]\nkey = \"GET /three/{{id}}\"\nupstream = \"o\"\nrequest_parameters = {THREE}\n"
    );
    match tollgate::config::from_str(&text) {
        Ok(c) => c,
        Err(e) => panic!("{}", e.render("bench")),
    }
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let mut raw = BytesMut::from(REQUEST);
    let head = tollgate::http::parse_request(&mut raw, &tollgate::http::Limits::default())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("the request parses"));
    let facts = ConnFacts::plain(
        "192.0.2.7:5000".parse().unwrap_or_else(|_| panic!()),
        "127.0.0.1:8080".parse().unwrap_or_else(|_| panic!()),
    );
    let id = RequestId::Generated([b'r'; tollgate::worker::REQUEST_ID_LEN]);
    let params: [&[u8]; 1] = [b"17"];
    let entry = Entry {
        request_id: id.bytes(&head),
        ip: b"192.0.2.7",
        time: 0,
        method: head.method_bytes(),
        route_key: "GET /three/{id}",
        path: head.path_bytes(),
        status: 0,
        protocol: "HTTP/1.1",
        response_length: 0,
        request_length: 0,
        domain_name: b"api.example.com",
        raw_query: head.query_bytes(),
        endpoint: None,
        latency: std::time::Duration::ZERO,
        integration_latency: None,
        integration_status: None,
        error: None,
        user_agent: b"bench/1.0",
        api_key: None,
        tls: None,
        principal: None,
        authorizer_error: None,
        stage: "$default",
        api_id: "tollgate",
        canary: None,
    };
    let mut out = BytesMut::with_capacity(1024);
    for (name, route) in [("0", 0usize), ("1", 1), ("3", 2)] {
        let m = &cfg.mapping.routes[route];
        c.bench_function(&format!("mapping_request_head_{name}_mappings"), |b| {
            b.iter(|| {
                out.clear();
                let vars = Vars {
                    head: &head,
                    params: &params,
                    entry: &entry,
                    body: None,
                };
                let mapped = Mapped {
                    mapping: m,
                    vars: &vars,
                };
                let how = Outgoing {
                    mapped: m.has_request().then_some(&mapped),
                    ..Outgoing::default()
                };
                write_request_head(&mut out, black_box(&head), &id, &facts, None, &how);
                black_box(out.len())
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
