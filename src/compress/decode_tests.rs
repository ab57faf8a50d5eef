//! Request decoding: each coding, lists, the two bomb limits (the message naming the one that
//! stopped it), corrupt and truncated bodies, unknown codings.

use super::*;
use std::io::Write;

fn gzip(b: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    Bytes::from(e.finish().unwrap())
}

fn zlib(b: &[u8]) -> Bytes {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    Bytes::from(e.finish().unwrap())
}

fn raw_deflate(b: &[u8]) -> Bytes {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    Bytes::from(e.finish().unwrap())
}

fn br(b: &[u8]) -> Bytes {
    let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 20);
    w.write_all(b).unwrap();
    Bytes::from(w.into_inner())
}

const BODY: &[u8] = br#"{"order": {"id": 7, "items": ["a", "b", "c"]}}"#;
const MAX: usize = 1 << 20;

fn decode(coding: &str, body: &Bytes) -> Result<Bytes, Refusal> {
    request_body(coding.as_bytes(), body, MAX, &DecodeLimits::default())
}

#[test]
fn each_coding_and_lists() {
    assert_eq!(decode("gzip", &gzip(BODY)).unwrap(), BODY);
    assert_eq!(decode("X-GZIP", &gzip(BODY)).unwrap(), BODY);
    assert_eq!(decode("deflate", &zlib(BODY)).unwrap(), BODY);
    assert_eq!(decode("deflate", &raw_deflate(BODY)).unwrap(), BODY);
    assert_eq!(decode("br", &br(BODY)).unwrap(), BODY);
    assert_eq!(decode("identity", &Bytes::from_static(BODY)).unwrap(), BODY);
    // applied in order: gzip first, then br; undone br first
    assert_eq!(decode("gzip, br", &br(&gzip(BODY))).unwrap(), BODY);
    // two gzip members are one body (RFC 1952 §2.2)
    let two = [gzip(b"{\"a\":"), gzip(b"1}")].concat();
    assert_eq!(
        decode("gzip", &Bytes::from(two)).unwrap(),
        &b"{\"a\":1}"[..]
    );
}

#[test]
fn bombs_stop_at_the_limit_that_applies() {
    let zeros = vec![0u8; 10 << 20];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < 20_000, "{}", bomb.len());
    // by ratio: 10 MiB from ~10 KB is far past 100:1
    let e = request_body(b"gzip", &bomb, 64 << 20, &DecodeLimits::default()).unwrap_err();
    assert_eq!(e.error, GatewayError::DecodedTooLarge);
    assert_eq!(
        e.message,
        "Decoded request body expands more than max_decoded_ratio (100) times"
    );
    // by size: a generous ratio, max_body_bytes stops it
    let e = request_body(
        b"gzip",
        &bomb,
        1 << 20,
        &DecodeLimits { max_ratio: 100_000 },
    )
    .unwrap_err();
    assert_eq!(e.error, GatewayError::DecodedTooLarge);
    assert_eq!(
        e.message,
        "Decoded request body exceeds max_body_bytes (1048576)"
    );
    // exactly at the limit is fine
    let exact = gzip(&vec![b'a'; 1000]);
    let limits = DecodeLimits { max_ratio: 100_000 };
    assert_eq!(
        request_body(b"gzip", &exact, 1000, &limits).unwrap().len(),
        1000
    );
    assert!(request_body(b"gzip", &exact, 999, &limits).is_err());
    let e = request_body(b"br", &br(&zeros), 64 << 20, &DecodeLimits::default()).unwrap_err();
    assert_eq!(e.error, GatewayError::DecodedTooLarge);
}

#[test]
fn corrupt_truncated_and_unknown() {
    let gz = gzip(BODY);
    let e = decode("gzip", &gz.slice(..gz.len() - 6)).unwrap_err();
    assert_eq!(
        (e.error, e.message.as_str()),
        (
            GatewayError::BadRequestBody,
            "Request body is not valid gzip data"
        )
    );
    let e = decode("gzip", &Bytes::from_static(BODY)).unwrap_err();
    assert_eq!(e.error, GatewayError::BadRequestBody);
    let e = decode("br", &Bytes::from_static(b"\xff\xff\xff\xff not brotli")).unwrap_err();
    assert_eq!(e.error, GatewayError::BadRequestBody);
    let b = br(BODY);
    let e = decode("br", &b.slice(..b.len() / 2)).unwrap_err();
    assert_eq!(e.error, GatewayError::BadRequestBody);
    let e = decode("compress", &gz).unwrap_err();
    assert_eq!(
        (e.error, e.message.as_str()),
        (
            GatewayError::UnsupportedMediaType,
            "Unsupported content encoding: compress"
        )
    );
    let e = decode("gzip, gzip, gzip", &gz).unwrap_err();
    assert_eq!(e.error, GatewayError::UnsupportedMediaType);
}
