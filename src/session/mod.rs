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
//!
//! Switching protocols (a WebSocket upgrade, RFC 6455; RFC 9110 §15.2.2): a session that can
//! hand its connection over says so ([`Session::can_tunnel`]); the integration that got an
//! origin's `101` then calls [`Session::tunnel`], which sends the 101 and relays bytes both ways
//! between the client and the origin's [`TunnelOrigin`] until the tunnel ends
//! ([`TunnelEnd`]). The defaults refuse: a session that cannot (an HTTP/2 stream: `Upgrade` is
//! a connection-specific field there, RFC 9113 §8.2.2) never sees an upgrade forwarded, the
//! integration treats the request as plain HTTP. [`h1_tunnel`] is the HTTP/1 relay.

pub mod h1;
pub mod h1_body;
mod h1_relay;
mod h1_tunnel;
pub mod h2;
mod h2_conn;
pub mod h2_head;
pub mod h2_response;
pub mod h2_stream;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::config::BodyPolicy;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::{BodyChunk, RequestHead};
use crate::response::{Response, ResponseBody};
use crate::transport::Stream;
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

/// The origin side of a tunnel (see [`Session::tunnel`]): its connection, fresh and never
/// pooled, after it answered `101 Switching Protocols`.
pub struct TunnelOrigin<'a> {
    pub stream: &'a mut Stream,
    /// What the origin sent after its 101 that was read with it: relayed to the client first.
    pub early: &'a mut BytesMut,
    /// No byte either way for this long closes both sides (`websocket_idle_ms`).
    pub idle: Duration,
}

/// How a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelEnd {
    /// Both sides ended their data (each end passed on to the other as a half-close).
    Closed,
    /// One side ended its data and the other did not follow within the half-close bound.
    HalfClosed,
    /// No byte moved either way for the idle timeout (bytes a side did not take count as not
    /// moving).
    Idle,
    /// The worker drained: closed once its grace period was nearly over.
    Drained,
    /// A read or write on the client's side failed (a reset, an error).
    ClientBroken,
    /// A read or write on the origin's side failed.
    OriginBroken,
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

    /// Resolves once the client can no longer take this exchange's response (HTTP/2: its
    /// stream was reset, or the connection closed), so an integration stops waiting on the
    /// origin and releases its connection. It borrows nothing (`'static`), so it can be raced
    /// against work that holds the session. Default: never (HTTP/1 finds a gone client when it
    /// reads or writes; an `std::future::Pending` is zero-sized: the box allocates nothing).
    fn client_gone(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(std::future::pending())
    }

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

    /// Whether this session can switch the client's connection to another protocol for
    /// `head` ([`Session::tunnel`]). Default: no, and the request is served as plain HTTP
    /// (upgrade fields stripped), exactly as on a route without `websocket`.
    fn can_tunnel(&self, head: &RequestHead) -> bool {
        let _ = head;
        false
    }

    /// Sends `r`, the origin's `101 Switching Protocols` (already through the response filter),
    /// then relays bytes both ways between the client and `origin` until both ended, the
    /// tunnel idled for `origin.idle`, or the worker drained. Bytes the client sent after its
    /// request and bytes the origin sent after its 101 are relayed first. Counts go to `st`:
    /// `bytes_in` grows by what the client sent through the tunnel, `bytes_out` by the 101 and
    /// what the origin sent. The connection ends with the tunnel. Only called when
    /// [`Session::can_tunnel`] said yes; the default refuses.
    async fn tunnel(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
        origin: TunnelOrigin<'_>,
    ) -> Result<TunnelEnd, GatewayError> {
        let _ = (w, head, st, r, origin);
        Err(GatewayError::Internal(
            "this session cannot switch protocols",
        ))
    }
}
