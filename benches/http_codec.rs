//! Codec micro-benchmarks: request head, response head, chunked body decode.

// A benchmark harness, not runtime code: its setup panicking on a broken fixture is the
// report, so the crate-wide deny of unwrap/expect (Cargo.toml [lints]) does not apply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tollgate::http::{
    parse_request, parse_response, BodyChunk, BodyDecoder, BodyEncoder, BodyKind, Limits,
};

const GET_HEAD: &[u8] = b"GET /api/v1/users/12345/orders?limit=20&offset=40&sort=desc HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n\
Accept: application/json\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl\r\n\
X-Request-Id: 7f3c2a9e-1b4d-4e8a-9c6f-2d5e8b1a3c7f\r\n\
Connection: keep-alive\r\n\r\n";

const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Tue, 14 Nov 2023 08:12:31 GMT\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Length: 1234\r\n\
Cache-Control: no-cache, no-store, must-revalidate\r\n\
Server: origin/1.0\r\n\
Vary: Accept-Encoding\r\n\
X-Request-Id: 7f3c2a9e-1b4d-4e8a-9c6f-2d5e8b1a3c7f\r\n\
Connection: keep-alive\r\n\r\n";

fn parse_request_bench(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("parse_request");
    g.throughput(Throughput::Bytes(GET_HEAD.len() as u64));
    g.bench_function("small_get", |b| {
        b.iter_batched_ref(
            || BytesMut::from(GET_HEAD),
            |buf| black_box(parse_request(buf, &limits).unwrap().unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn parse_response_bench(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("parse_response");
    g.throughput(Throughput::Bytes(RESPONSE_HEAD.len() as u64));
    g.bench_function("typical", |b| {
        b.iter_batched_ref(
            || BytesMut::from(RESPONSE_HEAD),
            |buf| black_box(parse_response(buf, false, &limits).unwrap().unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn chunked_decode_bench(c: &mut Criterion) {
    let payload = vec![b'x'; 4096];
    let mut wire = BytesMut::new();
    let mut enc = BodyEncoder::new(BodyKind::Chunked);
    for _ in 0..16 {
        enc.encode(&payload, &mut wire).unwrap();
    }
    enc.finish(b"", &mut wire).unwrap();
    let mut g = c.benchmark_group("chunked_decode");
    g.throughput(Throughput::Bytes(16 * 4096));
    g.bench_function("64k_in_4k_chunks", |b| {
        b.iter_batched_ref(
            || wire.clone(),
            |buf| {
                let mut dec = BodyDecoder::new_response(BodyKind::Chunked);
                let mut n = 0;
                while let Some(c) = dec.decode(buf).unwrap() {
                    match c {
                        BodyChunk::Data(d) => n += d.len(),
                        BodyChunk::End { .. } => break,
                    }
                }
                black_box(n)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    parse_request_bench,
    parse_response_bench,
    chunked_decode_bench
);
criterion_main!(benches);
