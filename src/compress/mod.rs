//! Compression: responses compressed for clients that accept it (gzip, brotli), streaming; and
//! compressed request bodies decoded for routes that read them, with bomb limits.
//!
//! Owns: the compiled [`Policy`] (minimum size, media types), the decision for one response
//! ([`apply`], called by the lifecycle's response filter): the client's `Accept-Encoding`
//! q-values ([`accept`], RFC 9110 §12.5.3), then every reason a response is sent as produced
//! (HEAD, 1xx/204/304, a range, an encoded body, `Cache-Control: no-transform`, a type not
//! listed, a known length under `min_bytes`), the `Vary: Accept-Encoding` the answer needs,
//! and the field edits a compressed response gets ([`field_value`]: a strong `ETag` made weak;
//! [`each_field`]: `content-encoding`, `vary`); the encoders ([`encode`]: a body held in
//! memory compressed at once, here, into a [`Source::Held`]; a relayed body through the
//! streaming [`encode::Compressing`] the sessions wrap it in) and request decoding
//! ([`decode`]). Leaves out: framing (the sessions re-frame a compressed relayed body: chunked
//! for HTTP/1.1, close-delimited for HTTP/1.0, END_STREAM for HTTP/2) and the settings' syntax
//! ([`crate::config::compression`]).
//!
//! Data flow: response filter → [`apply`] → `r.added.encoding` ([`Encoding`]) → a held body is
//! replaced by its compressed rendering at once; a relayed one is compressed chunk by chunk by
//! the session that relays it, which writes the head with [`field_value`] / [`each_field`].

pub mod accept;
pub mod decode;
pub mod encode;
pub mod types;

use std::borrow::Cow;

use crate::http::{status_has_content, BodyKind, HeaderKind, Method, RequestHead};
use crate::response::{Response, Source};

pub use types::TypePattern;

/// Default `min_bytes`: bodies smaller than this gain too little (a gzip header and trailer
/// are 18 bytes; brotli's gains start around a few hundred bytes) to be worth the CPU.
pub const DEFAULT_MIN_BYTES: u64 = 1024;

/// A route's compression settings, compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A body whose length is known and below this is sent as it is.
    pub min_bytes: u64,
    /// The media types compressed.
    pub types: Vec<TypePattern>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_bytes: DEFAULT_MIN_BYTES,
            types: types::defaults(),
        }
    }
}

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

/// What compression does to one response (set by [`apply`] in the response filter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Encoding {
    /// The coding the session compresses a relayed body with (`None`: sent as produced; a
    /// body held in memory is compressed by [`apply`] itself and leaves this `None`).
    pub coding: Option<Coding>,
    /// Whether the response gets `vary: accept-encoding` (RFC 9110 §12.5.5): whether it is
    /// compressed depended on the request's `Accept-Encoding`, and the producer's own `vary`
    /// does not say so already.
    pub vary: bool,
}

/// Phase 13's compression step: decides whether `r` is compressed for this request, and how
/// (see the module doc); compresses a body held in memory at once.
pub fn apply(
    cfg: &crate::config::Config,
    route: Option<usize>,
    head: &RequestHead,
    r: &mut Response<'_>,
) {
    r.added.encoding = choose(cfg, route, head, r);
    if let Some(coding) = r.added.encoding.coding {
        if !matches!(r.source, Source::Origin { .. }) {
            if let Some(held) = encode::held(r, coding) {
                r.source = Source::Held(held);
            }
            // compressed now (or, should that fail, sent as produced)
            r.added.encoding.coding = None;
        }
    }
}

/// The compression decision for `r` (see [`Encoding`]): the route's policy, what the response
/// allows, then the client's `Accept-Encoding`.
pub fn choose(
    cfg: &crate::config::Config,
    route: Option<usize>,
    head: &RequestHead,
    r: &Response<'_>,
) -> Encoding {
    let Some(policy) = cfg.compression.policy(route) else {
        return Encoding::default();
    };
    if !eligible(policy, head, r) {
        return Encoding::default();
    }
    let coding = accept::choose(head.headers.iter().filter_map(|h| {
        let name = head.slice(h.name);
        (name.len() == 15 && name.eq_ignore_ascii_case(b"accept-encoding"))
            .then(|| head.slice(h.value))
    }));
    let mut vary_done = false;
    each_producer_field(r, |name, value| {
        if name.eq_ignore_ascii_case(b"vary") && vary_covers(value) {
            vary_done = true;
        }
    });
    Encoding {
        coding,
        vary: !vary_done,
    }
}

/// Whether `r`'s body may be compressed for this request, whatever the client accepts: none of
/// the never-compress cases holds (see the module doc).
fn eligible(policy: &Policy, head: &RequestHead, r: &Response<'_>) -> bool {
    // HEAD: no content (RFC 9110 §9.3.2); 1xx/204/304: none either (RFC 9110 §6.4.1); 206 and
    // any `content-range`: the range is of the identity representation (RFC 9110 §14.4)
    if head.method_kind == Method::Head || !status_has_content(r.status) || r.status == 206 {
        return false;
    }
    let length = match &r.source {
        Source::Origin { head: rh, .. } => match rh.body {
            BodyKind::Empty => return false,
            BodyKind::Length(n) => Some(n),
            BodyKind::Chunked | BodyKind::CloseDelimited => None,
        },
        Source::Error(_) | Source::Mock(_) | Source::Held(_) => Some(r.static_body().len() as u64),
    };
    if length.is_some_and(|n| n == 0 || n < policy.min_bytes) {
        return false;
    }
    let mut ok = true;
    let mut typed = false;
    each_producer_field(r, |name, value| match name.len() {
        // already encoded (any coding, RFC 9110 §8.4): never twice
        16 if name.eq_ignore_ascii_case(b"content-encoding") => ok = false,
        13 if name.eq_ignore_ascii_case(b"content-range") => ok = false,
        // RFC 9111 §5.2.2.6: no-transform forbids changing the content coding
        13 if name.eq_ignore_ascii_case(b"cache-control") => {
            ok &= !list_has(value, b"no-transform");
        }
        12 if name.eq_ignore_ascii_case(b"content-type") => {
            typed = true;
            ok &= policy.types.iter().any(|t| t.matches(value));
        }
        _ => {}
    });
    ok && typed
}

/// Calls `f` with each field the producer of `r` set (an origin's end-to-end fields, a
/// rendered response's, an error's), in order.
pub fn each_producer_field(r: &Response<'_>, mut f: impl FnMut(&[u8], &[u8])) {
    match &r.source {
        Source::Origin { head, .. } => {
            for h in head
                .headers
                .iter()
                .filter(|h| h.kind == HeaderKind::Regular)
            {
                f(head.slice(h.name), head.slice(h.value));
            }
        }
        Source::Mock(m) => m.fields().for_each(|(n, v)| f(n, v)),
        Source::Held(m) => m.fields().for_each(|(n, v)| f(n, v)),
        Source::Error(e) => {
            f(b"content-type", b"application/json");
            for (n, v) in field_lines(e.fields()) {
                f(n, v);
            }
        }
    }
}

/// `name: value\r\n` lines as (name, value), values without surrounding whitespace.
pub(crate) fn field_lines(lines: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    lines.split(|&b| b == b'\n').filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = line.split_at(colon);
        Some((name, value.get(1..).unwrap_or_default().trim_ascii()))
    })
}

/// Whether the comma-separated list `value` holds `token` (case-insensitive, parameters and
/// whitespace ignored: RFC 9110 §5.6.1).
fn list_has(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|item| {
        let item = item.split(|&b| b == b'=').next().unwrap_or_default();
        item.trim_ascii().eq_ignore_ascii_case(token)
    })
}

/// Whether a `vary` value already covers `accept-encoding` (or is `*`, RFC 9110 §12.5.5).
pub fn vary_covers(value: &[u8]) -> bool {
    list_has(value, b"accept-encoding") || list_has(value, b"*")
}

/// The value a producer's field is sent with when the body is compressed with `enc`'s coding:
/// a strong `ETag` becomes weak (`W/"..."`, as nginx does: the compressed bytes differ from the
/// identity representation's, RFC 9110 §8.8.3, §8.8.1); every other field is unchanged.
pub fn field_value<'v>(enc: &Encoding, name: &[u8], value: &'v [u8]) -> Cow<'v, [u8]> {
    if enc.coding.is_some()
        && name.eq_ignore_ascii_case(b"etag")
        && !value.starts_with(b"W/")
        && !value.is_empty()
    {
        let mut weak = Vec::with_capacity(value.len() + 2);
        weak.extend_from_slice(b"W/");
        weak.extend_from_slice(value);
        return Cow::Owned(weak);
    }
    Cow::Borrowed(value)
}

/// The fields compression adds to a response head: `content-encoding` for a body the session
/// compresses, and `vary: accept-encoding` when the answer depended on it.
pub fn each_field(enc: &Encoding, mut f: impl FnMut(&[u8], &[u8])) {
    if let Some(c) = enc.coding {
        f(b"content-encoding", c.token().as_bytes());
    }
    if enc.vary {
        f(b"vary", b"accept-encoding");
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
