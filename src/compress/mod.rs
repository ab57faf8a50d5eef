//! Compression: responses compressed for clients that accept it (gzip, brotli), streaming; and
//! compressed request bodies decoded for routes that read them, with bomb limits.
//!
//! Owns: the compiled [`Policy`] (minimum size, media types), choosing a coding from
//! `Accept-Encoding` q-values (RFC 9110 §12.5.3), deciding that a response is not compressed
//! (already encoded, `no-transform`, HEAD, 204/304, ranges, too small, a type not listed), the
//! streaming encoder for relayed bodies and the one-shot one for held bodies ([`encode`]), and
//! request decoding ([`decode`]). Leaves out: framing (the sessions re-frame a compressed body:
//! chunked for HTTP/1.1, END_STREAM for HTTP/2).

pub mod decode;
pub mod encode;

/// A route's compression settings.
#[derive(Debug, Default)]
pub struct Policy {}

/// A content coding tollgate compresses with (RFC 9110 §8.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Brotli,
}

impl Coding {
    /// The `content-encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
        }
    }
}

/// The coding `r` is compressed with for this request (`None`: sent as produced): the route's
/// policy, the client's `Accept-Encoding`, and what the response allows.
pub fn choose(
    _cfg: &crate::config::Config,
    _route: Option<usize>,
    _head: &crate::http::RequestHead,
    _r: &crate::response::Response<'_>,
) -> Option<Coding> {
    None
}
