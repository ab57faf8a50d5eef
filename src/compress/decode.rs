//! Request bodies sent with `Content-Encoding` (gzip, deflate, br) decoded for routes that read
//! them, with a bomb limit: the decoded size never exceeds the route's `max_body_bytes`, nor
//! [`DecodeLimits::max_ratio`] times the encoded size (413 `DecodedTooLarge` naming the
//! limit; a corrupt body is 400 `BadRequestBody`, an unknown coding 415).
//!
//! Owns: reading the `Content-Encoding` list (RFC 9110 §8.4: codings in the order applied, so
//! decoded last to first; `identity` skipped; at most [`MAX_CODINGS`]), the streaming decoders
//! (gzip with every member, RFC 1952 §2.2; `deflate` as RFC 9110 §8.4.1.2 defines it, the zlib
//! format, and the raw deflate some clients send instead; brotli, RFC 7932), each read
//! [`DECODE_STEP`] at a time into a buffer that may never outgrow the limit, so a bomb is
//! stopped at the limit, never expanded. Leaves out: reading the body (the body phase,
//! [`crate::transform::hold`]) and routes that do not hold bodies (they forward the encoded
//! body untouched).

use std::io::Read;

use bytes::Bytes;

use crate::error::GatewayError;
use crate::transform::Refusal;

/// Default largest decoded-to-encoded size ratio (`[compression] max_decoded_ratio`): text and
/// JSON rarely compress beyond 20:1; a bomb (zeros) reaches 1000:1.
pub const DEFAULT_MAX_RATIO: usize = 100;

/// The most codings a request body may be sent with (`Content-Encoding: gzip, br`).
pub const MAX_CODINGS: usize = 2;

/// Decoded bytes read per step.
pub const DECODE_STEP: usize = 16 * 1024;

/// The limits of a request body's decoding.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_ratio: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_ratio: DEFAULT_MAX_RATIO,
        }
    }
}

/// A coding tollgate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoding {
    Gzip,
    Deflate,
    Brotli,
}

/// Decodes `body` sent with `Content-Encoding: coding`, at most `max` bytes decoded.
pub fn request_body(
    coding: &[u8],
    body: &Bytes,
    max: usize,
    limits: &DecodeLimits,
) -> Result<Bytes, Refusal> {
    let codings = codings(coding)?;
    if codings.is_empty() {
        return Ok(body.clone());
    }
    let by_ratio = body.len().saturating_mul(limits.max_ratio.max(1));
    let limit = max.min(by_ratio);
    let too_large = || Refusal {
        error: GatewayError::DecodedTooLarge,
        message: if by_ratio < max {
            format!(
                "Decoded request body expands more than max_decoded_ratio ({}) times",
                limits.max_ratio
            )
        } else {
            format!("Decoded request body exceeds max_body_bytes ({max})")
        },
    };
    let mut data = body.clone();
    // codings are listed in the order they were applied: the last one is undone first
    for d in codings.iter().rev() {
        data = decode_one(*d, &data, limit).map_err(|e| match e {
            Failure::TooLarge => too_large(),
            Failure::Corrupt => Refusal::request(format!(
                "Request body is not valid {} data",
                match d {
                    Decoding::Gzip => "gzip",
                    Decoding::Deflate => "deflate",
                    Decoding::Brotli => "br",
                }
            )),
        })?;
    }
    Ok(data)
}

/// The `Content-Encoding` list (at most [`MAX_CODINGS`], `identity` skipped); an unknown or
/// excess coding is refused 415 (RFC 9110 §15.5.16).
fn codings(value: &[u8]) -> Result<Vec<Decoding>, Refusal> {
    let mut out = Vec::new();
    for token in value.split(|&b| b == b',') {
        let token = token.trim_ascii();
        let d = if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
            Decoding::Gzip
        } else if token.eq_ignore_ascii_case(b"deflate") {
            Decoding::Deflate
        } else if token.eq_ignore_ascii_case(b"br") {
            Decoding::Brotli
        } else if token.eq_ignore_ascii_case(b"identity") || token.is_empty() {
            continue;
        } else {
            return Err(unsupported(format!(
                "Unsupported content encoding: {}",
                String::from_utf8_lossy(token)
            )));
        };
        out.push(d);
    }
    if out.len() > MAX_CODINGS {
        return Err(unsupported(format!(
            "More than {MAX_CODINGS} content codings"
        )));
    }
    Ok(out)
}

fn unsupported(message: String) -> Refusal {
    Refusal {
        error: GatewayError::UnsupportedMediaType,
        message,
    }
}

/// Why one decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    TooLarge,
    Corrupt,
}

fn decode_one(d: Decoding, input: &[u8], limit: usize) -> Result<Bytes, Failure> {
    match d {
        Decoding::Gzip => read_limited(flate2::read::MultiGzDecoder::new(input), limit),
        Decoding::Brotli => read_limited(brotli::Decompressor::new(input, DECODE_STEP), limit),
        Decoding::Deflate if zlib_header(input) => {
            read_limited(flate2::read::ZlibDecoder::new(input), limit)
        }
        Decoding::Deflate => read_limited(flate2::read::DeflateDecoder::new(input), limit),
    }
}

/// Whether `input` starts with a zlib header (RFC 1950 §2.2: method 8, the check bits).
fn zlib_header(input: &[u8]) -> bool {
    match input {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Reads `r` to its end, [`DECODE_STEP`] at a time, failing as soon as more than `limit`
/// bytes come out (one byte past the limit is asked for to tell).
fn read_limited(mut r: impl Read, limit: usize) -> Result<Bytes, Failure> {
    let mut out: Vec<u8> = Vec::new();
    loop {
        let room = limit.saturating_add(1).saturating_sub(out.len());
        if room == 0 {
            return Err(Failure::TooLarge);
        }
        let start = out.len();
        let step = room.min(DECODE_STEP);
        out.resize(start + step, 0);
        let n = match r.read(out.get_mut(start..).unwrap_or_default()) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                out.truncate(start);
                continue;
            }
            Err(_) => return Err(Failure::Corrupt),
        };
        out.truncate(start + n);
        if n == 0 {
            return Ok(Bytes::from(out));
        }
        if out.len() > limit {
            return Err(Failure::TooLarge);
        }
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
