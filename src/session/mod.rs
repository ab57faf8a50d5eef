//! Sessions: a client connection's protocol, between the transport and the lifecycle.
//!
//! Owns: the [`Session`] interface the lifecycle and the integrations use for a client's
//! request and response, with nothing HTTP/1-specific in it (an HTTP/2 stream implements it
//! too): the connection's facts, the request body (streamed chunk by chunk, read whole under a
//! limit, or skipped), sending a [`Response`] held in memory, relaying a response whose body
//! arrives while it is sent (any [`ResponseBody`]: an origin's through the outbound client, a
//! Lambda's stream later; the session never sees the origin's connection), and what becomes of the connection after the exchange. [`h1`] is the
//! HTTP/1.x implementation ([`h1::Downstream`]) and owns every HTTP/1 decision: reading heads
//! under their deadline, persistence (`connection`, RFC 9112 §9.3), pipelining, framing and
//! `100 Continue` ([`h1_body`]), lingering close, and the HEAD/1xx/204/304 body rules when
//! serialising; [`h1_relay`] streams an origin's body to an HTTP/1 client. Leaves out: the
//! bytes' transport ([`crate::transport`]) and what a request does (the lifecycle in
//! `proxy`, which this module never imports).
//!
//! Data flow: the connection loop asks the session for a head → the lifecycle runs its phases,
//! an integration reads the body through [`Session::open_body`] / [`Session::next_chunk`] →
//! a response goes through the lifecycle's response filter → [`Session::send`] or
//! [`Session::relay`] serialises it for this client and writes it through the connection's
//! [`crate::transport::Stream`] → [`Session::finish`] decides whether the connection goes on.
//! Every write of response bytes to a client is in the session.

pub mod h1;
pub mod h1_body;
mod h1_relay;
pub mod h2;
mod h2_conn;
pub mod h2_head;
pub mod h2_response;
pub mod h2_stream;

use bytes::Bytes;

use crate::config::BodyPolicy;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::{BodyChunk, RequestHead};
use crate::response::{Response, ResponseBody};
use crate::worker::Cx;

/// Output for a streamed body is flushed once this many bytes are pending, bounding memory per
/// streamed body (request bodies to an origin, origin bodies to a client).
pub const FLUSH_BYTES: usize = 64 * 1024;

/// What answering a refused request head did: bytes sent (of which payload), bytes received
/// of the head, and what becomes of the connection.
#[derive(Debug, Clone, Copy)]
pub struct Refused<O> {
    pub outcome: O,
    pub sent: u64,
    pub payload: u64,
    pub received: u64,
}

/// A client's protocol session as the request lifecycle sees it. Static dispatch only: the
/// lifecycle is generic over it, so nothing here costs an allocation or an indirect call.
#[allow(async_fn_in_trait)] // monoio is single-threaded: nothing needs the futures to be Send
pub trait Session {
    /// A request body being read: its framing and rate rule.
    type Body;
    /// What becomes of the connection (or stream) after an exchange.
    type Outcome;

    /// The connection's facts (peer, local address, scheme, TLS), captured at accept.
    fn facts(&self) -> &ConnFacts;

    /// The session's part of the request filter: narrows `st.keep_alive` to what the protocol
    /// and the client allow for this request.
    fn begin(&mut self, head: &RequestHead, st: &mut ExchangeState);

    /// Starts reading the request body (sending `100 Continue` when the client waits for it).
    /// From here on the body's end is known only to the returned reader.
    async fn open_body(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        policy: &BodyPolicy,
    ) -> Result<Self::Body, GatewayError>;

    /// The next decoded step of the request body: data (never empty), or its end with the
    /// trailers that may be forwarded; reads as needed (timeouts and the minimum body rate
    /// applied inside).
    async fn next_chunk(
        &mut self,
        w: &Cx<'_>,
        body: &mut Self::Body,
        st: &mut ExchangeState,
    ) -> Result<BodyChunk, GatewayError>;

    /// The next step from what was already received, without waiting: `None` when more has
    /// to be read (a caller batching writes flushes then).
    fn buffered_chunk(
        &mut self,
        body: &mut Self::Body,
        st: &mut ExchangeState,
    ) -> Result<Option<BodyChunk>, GatewayError>;

    /// The whole request body, at most `max` bytes of payload (413 when larger).
    async fn read_body(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        policy: &BodyPolicy,
        max: usize,
    ) -> Result<Bytes, GatewayError>;

    /// A body answered without reading: discarded when it is already buffered, else the
    /// connection will not be reused.
    fn skip_body(&mut self, head: &RequestHead, st: &mut ExchangeState);

    /// Sends a response held in memory (already through the response filter): serialised for
    /// this client and written; its status and byte counts go to `st`.
    async fn send(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
    ) -> Result<(), GatewayError>;

    /// Relays a response (already through the response filter) whose body comes from `body`:
    /// the head is held until the body's start decodes, so a body broken from the start is
    /// still answered with an error. Ok(true): the body was read to its end.
    async fn relay(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
        body: &mut impl ResponseBody,
    ) -> Result<bool, GatewayError>;

    /// What becomes of the connection after the exchange described by `st`.
    fn finish(&mut self, w: &Cx<'_>, st: &ExchangeState) -> Self::Outcome;

    /// Answers a request whose head was refused (it did not parse, or came too slowly); the
    /// connection then ends.
    async fn refuse(&mut self, w: &Cx<'_>, r: Response<'_>) -> Refused<Self::Outcome>;
}
