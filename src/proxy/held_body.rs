//! A request body a phase before the integration had to read whole (an `aws_iam` route hashing
//! the payload, see `crate::auth::iam`), served to the integration as if it came from the
//! connection.
//!
//! Owns: [`HeldBody`], the body reader the lifecycle's `Filtered` session hands integrations
//! (either the bytes held in `ExchangeState::held_body` or the session's live reader), and the
//! four reads that honour it ([`open`], [`next`], [`buffered`], [`read`]). A held body yields
//! its bytes as one data step, then its end without trailers; the request's framing is not
//! replayed: the HTTP integration re-encodes what it gets for the origin from the head's
//! framing (RFC 9112 §6: a `content-length` body is exactly these bytes, a chunked one is sent
//! as a fresh chunk and last-chunk, §7.1), so the origin receives the same content. Leaves out:
//! reading the body (the session's `read_body`, already done: the connection's body state is
//! `Done`, so skipping it is a no-op) and deciding when a body must be held (the authorizer's).

use bytes::Bytes;

use crate::config::BodyPolicy;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::{BodyChunk, HttpError, RequestHead};
use crate::session::Session;
use crate::worker::Cx;

/// The request body an integration reads: held in memory, or the session's live reader.
pub enum HeldBody<B> {
    /// The session's own reader: nothing was read before the integration.
    Live(B),
    /// The held bytes, not yet handed out (`None` once they were, or when empty).
    Held(Option<Bytes>),
}

impl<B> HeldBody<B> {
    /// The next step of a held body: its bytes, then its end (no trailers: they were
    /// consumed with the body, and a held body has none to forward).
    fn step(held: &mut Option<Bytes>) -> BodyChunk {
        match held.take() {
            Some(data) => BodyChunk::Data(data),
            None => BodyChunk::End {
                trailers: Bytes::new(),
            },
        }
    }
}

/// Starts the body: the held bytes when a phase read them, else the session's reader.
pub(super) async fn open<S: Session>(
    sess: &mut S,
    w: &Cx<'_>,
    head: &RequestHead,
    st: &mut ExchangeState,
    policy: &BodyPolicy,
) -> Result<HeldBody<S::Body>, GatewayError> {
    match &st.held_body {
        // a cheap clone (reference counted): the state keeps its copy for `read`
        Some(b) => Ok(HeldBody::Held(Some(b.clone()).filter(|b| !b.is_empty()))),
        None => Ok(HeldBody::Live(sess.open_body(w, head, st, policy).await?)),
    }
}

/// The next step of the body (see [`Session::next_chunk`]).
pub(super) async fn next<S: Session>(
    sess: &mut S,
    w: &Cx<'_>,
    body: &mut HeldBody<S::Body>,
    st: &mut ExchangeState,
) -> Result<BodyChunk, GatewayError> {
    match body {
        HeldBody::Live(b) => sess.next_chunk(w, b, st).await,
        HeldBody::Held(h) => Ok(HeldBody::<S::Body>::step(h)),
    }
}

/// The next step without waiting (see [`Session::buffered_chunk`]): a held body is all there.
pub(super) fn buffered<S: Session>(
    sess: &mut S,
    body: &mut HeldBody<S::Body>,
    st: &mut ExchangeState,
) -> Result<Option<BodyChunk>, GatewayError> {
    match body {
        HeldBody::Live(b) => sess.buffered_chunk(b, st),
        HeldBody::Held(h) => Ok(Some(HeldBody::<S::Body>::step(h))),
    }
}

/// The whole body under `max` (see [`Session::read_body`]): the held bytes (413 beyond `max`,
/// as the session would answer), else read from the session.
pub(super) async fn read<S: Session>(
    sess: &mut S,
    w: &Cx<'_>,
    head: &RequestHead,
    st: &mut ExchangeState,
    policy: &BodyPolicy,
    max: usize,
) -> Result<Bytes, GatewayError> {
    match &st.held_body {
        Some(b) if b.len() > max => Err(GatewayError::Http(HttpError::BodyTooLarge)),
        Some(b) => Ok(b.clone()),
        None => sess.read_body(w, head, st, policy, max).await,
    }
}
