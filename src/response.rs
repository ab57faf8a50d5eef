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
//!
//! A relayed response's body comes through [`ResponseBody`]: the steps of a body that arrives
//! while it is sent (an origin's through the outbound client today; a Lambda's streamed
//! response or an HTTP/2 origin stream later). A session relaying it sees only decoded steps,
//! never the connection, buffer or framing they come from; whether the body really ended
//! (a TLS origin's close without close_notify is a truncation, not an end) is the source's
//! decision, made where the transport is known.

use crate::config::MockResponse;
use crate::error::GatewayError;
use crate::http::{status_has_content, BodyChunk, BodyEncoder, ResponseHead};
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
    /// A response built while serving the request and held in memory, in the same rendered
    /// shape as a mock (status line, fields, `content-length`; then the body): a Lambda
    /// function's answer (later: authorizer denials, mapped responses).
    Held(MockResponse),
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

/// The body of a relayed response, step by step (see the module doc). Static dispatch: the
/// session's relay is generic over it, and a step's data is a `Bytes` split off the source's
/// own buffer, so no step allocates.
#[allow(async_fn_in_trait)] // monoio is single-threaded: nothing needs the futures to be Send
pub trait ResponseBody {
    /// The next step: data (never empty), or the end with any trailers, waiting for more as
    /// needed within the source's own read bound ([`GatewayError::UpstreamTimeout`] when it
    /// passes). An end is only returned when the body is known complete: a body cut short,
    /// malformed, or ended by a close that could be a truncation is an error.
    async fn next_chunk(&mut self) -> Result<BodyChunk, GatewayError>;

    /// The next step from what is already at hand, without waiting: `None` when more has to
    /// arrive (a caller batching writes flushes then, and calls
    /// [`ResponseBody::next_chunk`]).
    fn next_buffered(&mut self) -> Result<Option<BodyChunk>, GatewayError>;
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
    /// The CORS policy that applies, with the allowed origin if any: the producer's own
    /// `access-control-*` fields are dropped, the gateway's added (see [`crate::policy::cors`]).
    pub cors: Option<crate::policy::cors::CorsFields<'a>>,
    /// The route's `response_parameters` for this status: producer fields left out, fields
    /// added (see [`crate::mapping::ResponseEdits`]).
    pub edits: Option<Box<crate::mapping::ResponseEdits<'a>>>,
    /// Compression for this client: the coding a relayed body is compressed with (`None`: as
    /// produced) and whether `vary: accept-encoding` is added, chosen by the response filter
    /// (see [`crate::compress::apply`]).
    pub encoding: crate::compress::Encoding,
    /// On a stage with a canary: the field naming the side that served, and whether it was
    /// the canary (`1`) or the stage (`0`) (see [`crate::exchange::served::canary_field`]).
    pub canary: Option<(&'a str, bool)>,
}

/// Fields a producer already set (see [`Response::present`]).
pub use crate::http::Present;

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

    /// A response rendered while serving (see [`Source::Held`]).
    pub fn held(m: MockResponse) -> Self {
        Response {
            status: m.status,
            source: Source::Held(m),
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

    /// The head and body rendered in memory (a mock's, or a held response's), if this is one.
    pub fn rendered(&self) -> Option<&MockResponse> {
        match &self.source {
            Source::Mock(m) => Some(m),
            Source::Held(m) => Some(m),
            Source::Error(_) | Source::Origin { .. } => None,
        }
    }

    /// Which of the fields the response filter adds when absent the producer already set
    /// (names case-insensitive, RFC 9110 §5.1), noted once: by the parser as it classified an
    /// origin's fields, by whoever rendered a mock (at load) or a held response (a function's
    /// answer, by `crate::lambda::reply`). Mocks and functions may not set `date` or
    /// `x-request-id` (refused, dropped), so tollgate's own always follow their fields; a
    /// `strict-transport-security` of theirs replaces `tls.hsts`.
    pub fn present(&self) -> Present {
        match &self.source {
            Source::Origin { head, .. } => head.present,
            Source::Mock(m) => m.present,
            Source::Held(m) => m.present,
            Source::Error(_) => Present::default(),
        }
    }

    /// The body held in memory (errors and mocks), as sent unless the request was HEAD; empty
    /// for an origin's response (streamed) and for statuses without content (RFC 9110
    /// §6.4.1).
    pub fn static_body(&self) -> &[u8] {
        match &self.source {
            Source::Error(e) => e.body().as_bytes(),
            Source::Mock(m) if status_has_content(m.status) => &m.body,
            Source::Held(m) if status_has_content(m.status) => &m.body,
            Source::Mock(_) | Source::Held(_) | Source::Origin { .. } => &[],
        }
    }
}
