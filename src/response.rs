//! The one response type every producer builds, before it is sent to a client.
//!
//! Owns: [`Response`]: a status, where its fields and body come from ([`Source`]: a gateway
//! error, a configured mock, an origin's response; Lambda and authorizers join as further
//! sources), and the fields the lifecycle's response filter adds to every response
//! ([`Added`]: `date` and `x-request-id` when absent, the rate-limit fields of a throttled
//! request; later CORS, header mapping, HSTS). Nothing here allocates: an origin's fields stay
//! spans into its head bytes, a mock's head was rendered at config load, an error's body is
//! static. Leaves out: deciding the status (see [`crate::error::GatewayError::status`]),
//! choosing what the filter adds (the lifecycle's response filter), and serialising it for a
//! protocol (see [`crate::session::h1`]), which also chooses the framing and the connection
//! header.

use crate::config::MockResponse;
use crate::error::GatewayError;
use crate::http::{status_has_content, BodyEncoder, HeaderKind, ResponseHead};
use crate::throttle::worker::Throttled;

/// A response on its way to the client.
pub struct Response<'a> {
    pub status: u16,
    pub source: Source<'a>,
    /// Set by the response filter.
    pub added: Added<'a>,
}

/// Where a response's fields and body come from.
pub enum Source<'a> {
    /// A JSON error body (API Gateway's `{"message": ...}`).
    Error(GatewayError),
    /// A configured mock: status line, fields and `content-length` rendered at config load.
    Mock(&'a MockResponse),
    /// An origin's response: its end-to-end fields (hop-by-hop ones are marked `Skip` by the
    /// parser), re-framed for this client by `framing` (`None` until the session chooses it
    /// as it relays the response; its body is streamed from the origin).
    Origin {
        head: &'a ResponseHead,
        framing: Option<BodyEncoder>,
        /// A HEAD response's `content-length` kept as metadata (RFC 9110 §8.6), when the
        /// framing carries none.
        meta_length: Option<u64>,
    },
}

/// The fields the response filter adds (RFC 9110 §6.6.1 `date`; `x-request-id`; the
/// rate-limit fields of a refused request).
#[derive(Default)]
pub struct Added<'a> {
    pub rate_limit: Option<Throttled>,
    pub date: Option<[u8; 29]>,
    pub request_id: Option<&'a [u8]>,
    /// `strict-transport-security` (RFC 6797 §6.1): `tls.hsts`, on TLS connections only.
    pub hsts: Option<&'a str>,
}

/// Fields a producer already set (see [`Response::present`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Present {
    pub date: bool,
    pub request_id: bool,
    pub hsts: bool,
}

impl<'a> Response<'a> {
    pub fn error(e: GatewayError) -> Self {
        Response {
            status: e.status(),
            source: Source::Error(e),
            added: Added::default(),
        }
    }

    pub fn mock(m: &'a MockResponse) -> Self {
        Response {
            status: m.status,
            source: Source::Mock(m),
            added: Added::default(),
        }
    }

    pub fn origin(head: &'a ResponseHead, meta_length: Option<u64>) -> Self {
        Response {
            status: head.status,
            source: Source::Origin {
                head,
                framing: None,
                meta_length,
            },
            added: Added::default(),
        }
    }

    /// Which of the fields the response filter adds when absent the producer already set
    /// (names case-insensitive, RFC 9110 §5.1), in one pass over an origin's fields. A mock's
    /// configured fields are not looked at: tollgate's own `date` and `x-request-id` always
    /// follow them.
    pub fn present(&self) -> Present {
        let mut p = Present::default();
        if let Source::Origin { head, .. } = &self.source {
            for h in head
                .headers
                .iter()
                .filter(|h| h.kind == HeaderKind::Regular)
            {
                let name = head.slice(h.name);
                p.date |= name.eq_ignore_ascii_case(b"date");
                p.request_id |= name.eq_ignore_ascii_case(b"x-request-id");
                p.hsts |= name.eq_ignore_ascii_case(b"strict-transport-security");
            }
        }
        p
    }

    /// The body held in memory (errors and mocks), as sent unless the request was HEAD; empty
    /// for an origin's response (streamed) and for statuses without content (RFC 9110
    /// §6.4.1).
    pub fn static_body(&self) -> &[u8] {
        match &self.source {
            Source::Error(e) => e.body().as_bytes(),
            Source::Mock(m) if status_has_content(m.status) => &m.body,
            Source::Mock(_) | Source::Origin { .. } => &[],
        }
    }
}
