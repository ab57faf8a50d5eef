//! XML ⇄ JSON throughput, without I/O: the ~100 KB RSS 2.0 feed of the tests
//! (tests/data/xml/rss-2.0-feed.xml) converted to JSON, and that JSON converted back to XML,
//! with the default limits. Criterion reports bytes of input per second (`Throughput::Bytes`).
//! The allocator is the shipped binary's (mimalloc, see src/main.rs): the conversions allocate
//! per element. Holding the body and the phases around the conversion are not in here.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tollgate::transform::xml::XmlLimits;
use tollgate::transform::{json_to_xml, xml_to_json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RSS: &[u8] = include_bytes!("../tests/data/xml/rss-2.0-feed.xml");

fn bench(c: &mut Criterion) {
    let limits = XmlLimits::default();
    let json = match xml_to_json::convert(RSS, &limits) {
        Ok(j) => j,
        Err(e) => panic!("the feed converts: {e}"),
    };
    let mut g = c.benchmark_group("xml");
    g.throughput(Throughput::Bytes(RSS.len() as u64));
    g.bench_function("xml_to_json_rss_100k", |b| {
        b.iter(|| xml_to_json::convert(black_box(RSS), &limits))
    });
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("json_to_xml_rss_100k", |b| {
        b.iter(|| json_to_xml::convert(black_box(&json), "root", &limits))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
