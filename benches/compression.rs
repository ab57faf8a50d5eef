//! What compression costs a worker, without I/O: gzip and brotli at tollgate's levels
//! (`compress::encode::{GZIP_LEVEL, BROTLI_QUALITY}`) on a 100 KB JSON body, compressed whole
//! (a held body: a mock, a template's output) and streamed in 16 KB chunks with a sync flush
//! after each (the relay's worst case: every chunk arrives alone), and a gzip request body
//! decoded under the bomb limits. Throughput is in bytes of the uncompressed body; the ratio
//! each case reaches is printed once before its measurement.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tollgate::compress::decode::{request_body, DecodeLimits};
use tollgate::compress::encode::{whole, Encoder};
use tollgate::compress::Coding;

/// A 100 KB JSON document shaped like an API's list response.
fn body() -> Vec<u8> {
    let mut s = String::from("{\"items\":[");
    let mut i = 0u64;
    while s.len() < 100_000 {
        s.push_str(&format!(
            "{{\"id\":{i},\"sku\":\"SKU-{:06}\",\"name\":\"Item number {i}\",\"price\":{}.{:02},\"tags\":[\"t{}\",\"t{}\"],\"in_stock\":{}}},",
            i * 7919 % 1_000_000,
            i % 500,
            i % 100,
            i % 13,
            i % 29,
            i.is_multiple_of(3)
        ));
        i += 1;
    }
    s.truncate(99_998);
    s.push_str("]}");
    s.into_bytes()
}

/// Compresses `body` in `chunk`-byte pieces, flushing after each; the compressed size.
fn streamed(coding: Coding, body: &[u8], chunk: usize) -> usize {
    let mut e = Encoder::new(coding);
    let mut n = 0;
    for piece in body.chunks(chunk) {
        let _ = e.write(piece);
        n += e.flush().map_or(0, |b| b.len());
    }
    n + e.finish().map_or(0, |b| b.len())
}

fn bench(c: &mut Criterion) {
    let body = body();
    let mut g = c.benchmark_group("compression");
    g.throughput(Throughput::Bytes(body.len() as u64));
    for (coding, name) in [(Coding::Gzip, "gzip"), (Coding::Brotli, "br")] {
        let once = whole(coding, &body).map_or(0, |b| b.len());
        let flushed = streamed(coding, &body, 16 * 1024);
        println!(
            "{name}: whole {} -> {once} bytes (ratio {:.2}), streamed in 16 KB chunks -> {flushed} bytes (ratio {:.2})",
            body.len(),
            body.len() as f64 / once as f64,
            body.len() as f64 / flushed as f64
        );
        g.bench_function(format!("{name}_whole_100k"), |b| {
            b.iter(|| whole(coding, black_box(&body)))
        });
        g.bench_function(format!("{name}_streamed_16k_chunks_100k"), |b| {
            b.iter(|| streamed(coding, black_box(&body), 16 * 1024))
        });
    }
    let encoded = Bytes::from(
        whole(Coding::Gzip, &body)
            .map(|b| b.to_vec())
            .unwrap_or_default(),
    );
    let limits = DecodeLimits::default();
    g.bench_function("gzip_request_decode_100k", |b| {
        b.iter(|| request_body(b"gzip", black_box(&encoded), 10 << 20, &limits).map(|d| d.len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
