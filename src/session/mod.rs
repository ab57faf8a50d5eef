//! Sessions: a client connection's protocol, between the transport and the lifecycle.
//!
//! Owns: the [`Session`] interface the lifecycle and integrations use for a client's request
//! and response, with nothing HTTP/1-specific in it (an HTTP/2 stream implements it too): the
//! connection's facts, the request body (streamed chunk by chunk, read whole under a limit, or
//! skipped), and sending a [`Response`]. [`h1`] is the HTTP/1.x implementation (over
//! [`crate::proxy::conn::Downstream`]) and serialiser: status line, fields, the framing chosen
//! for this client, the connection header. Leaves out: the bytes' transport
//! ([`crate::transport`]) and what a request does (the lifecycle in [`crate::proxy`]).
//!
//! Data flow: a producer builds a `Response` → the lifecycle's response filter adds the common
//! fields → [`Session::send`] serialises it and writes it through the connection's
//! [`crate::transport::Stream`]. Every write of response bytes to a client is in [`h1`]: whole
//! responses ([`Session::send`]), `100 Continue`, the answer to a refused head, and an origin's
//! relayed response (`write_part`, `stream_body`: the relay's fast path, which copies encoded
//! bytes and holds the head back until the body's start decodes). Still outside the interface:
//! reading heads, keep-alive and pipelining ([`crate::proxy::conn`]).

pub mod h1;

use bytes::Bytes;

use crate::config::BodyPolicy;
use crate::error::GatewayError;
use crate::http::RequestHead;
use crate::proxy::intake::BodyStream;
use crate::proxy::lifecycle::ExchangeState;
use crate::proxy::worker::Cx;
use crate::response::Response;
use crate::transport::ConnFacts;

/// A client's protocol session as the request lifecycle sees it.
#[allow(async_fn_in_trait)] // monoio is single-threaded: nothing needs the futures to be Send
pub trait Session {
    /// The connection's facts (peer, local address, scheme, TLS), captured at accept.
    fn facts(&self) -> &ConnFacts;

    /// Starts reading the request body (sending `100 Continue` when the client waits for it).
    async fn open_body(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        policy: &BodyPolicy,
    ) -> Result<BodyStream, GatewayError>;

    /// The next decoded chunk of the request body, `None` at its end (timeouts and the minimum
    /// body rate applied inside).
    async fn next_chunk(
        &mut self,
        w: &Cx<'_>,
        body: &mut BodyStream,
        st: &mut ExchangeState,
    ) -> Result<Option<Bytes>, GatewayError>;

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

    /// Sends a response (already through the response filter): serialised for this client and
    /// written; its status and byte counts go to `st`.
    async fn send(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        r: &Response<'_>,
    ) -> Result<(), GatewayError>;
}
