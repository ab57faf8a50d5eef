//! The session an integration answers through ([`Filtered`]): the client's own, with the
//! response filter and send phases (13 and 14, see [`super::lifecycle`]) in front of every
//! response it gives, held in memory or relayed, and the request body a phase already held
//! served from memory ([`super::held_body`]).
//!
//! Owns: that wrapper, and reading a relayed response whole when its route reshapes response
//! bodies ([`crate::transform::response`]). Leaves out: the phases themselves (the lifecycle)
//! and framing (the wrapped session).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::config::BodyPolicy;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::{BodyChunk, RequestHead};
use crate::response::{Response, ResponseBody, Source};
use crate::session::{Refused, Session, TunnelEnd, TunnelOrigin};
use crate::worker::Cx;

use super::held_body::{self, HeldBody};
use super::lifecycle::{response_filter, send};

/// The session an integration answers through: the client's, with phases 13 and 14 in front of
/// its responses (held in memory or relayed), so nothing reaches a client unfiltered, and the
/// request body a phase held served from memory ([`super::held_body`]). A borrow, no
/// allocation; static dispatch like the session it wraps.
pub(super) struct Filtered<'s, S>(pub(super) &'s mut S);

impl<S: Session> Session for Filtered<'_, S> {
    type Body = HeldBody<S::Body>;
    type Outcome = S::Outcome;

    fn facts(&self) -> &ConnFacts {
        self.0.facts()
    }

    fn client_gone(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        self.0.client_gone()
    }

    fn begin(&mut self, head: &RequestHead, st: &mut ExchangeState) {
        self.0.begin(head, st)
    }

    async fn open_body(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        policy: &BodyPolicy,
    ) -> Result<Self::Body, GatewayError> {
        held_body::open(self.0, w, head, st, policy).await
    }

    async fn next_chunk(
        &mut self,
        w: &Cx<'_>,
        body: &mut Self::Body,
        st: &mut ExchangeState,
    ) -> Result<BodyChunk, GatewayError> {
        held_body::next(self.0, w, body, st).await
    }

    fn buffered_chunk(
        &mut self,
        body: &mut Self::Body,
        st: &mut ExchangeState,
    ) -> Result<Option<BodyChunk>, GatewayError> {
        held_body::buffered(self.0, body, st)
    }

    async fn read_body(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        policy: &BodyPolicy,
        max: usize,
    ) -> Result<Bytes, GatewayError> {
        held_body::read(self.0, w, head, st, policy, max).await
    }

    fn skip_body(&mut self, head: &RequestHead, st: &mut ExchangeState) {
        self.0.skip_body(head, st)
    }

    async fn send(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
    ) -> Result<(), GatewayError> {
        send(w, self.0, head, st, r).await
    }

    async fn relay(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
        body: &mut impl ResponseBody,
    ) -> Result<bool, GatewayError> {
        if crate::transform::response::applies(w, st.route, &r) {
            // a route that reshapes response bodies: read it whole, send the new one
            let held = {
                let whole = crate::transform::response::collect(body).await?;
                let params = route_params(w, head, st);
                let params: Vec<&[u8]> = params.iter().map(|p| &p[..]).collect();
                let produced = crate::transform::response::Produced {
                    status: r.status,
                    fields: origin_fields(&r),
                    body: &whole,
                };
                let facts = self.0.facts();
                crate::transform::response::reshape(w, facts, (head, &params), st, produced)?
            };
            send(w, self.0, head, st, Response::held(held)).await?;
            return Ok(true);
        }
        let rid = st.request_id;
        let mut r = r;
        response_filter(
            w,
            self.0.facts(),
            Some(head),
            Some(st),
            rid.bytes(head),
            &mut r,
        );
        self.0.relay(w, head, st, r, body).await
    }

    fn finish(&mut self, w: &Cx<'_>, st: &ExchangeState) -> S::Outcome {
        self.0.finish(w, st)
    }

    async fn refuse(&mut self, w: &Cx<'_>, r: Response<'_>) -> Refused<S::Outcome> {
        self.0.refuse(w, r).await
    }

    fn can_tunnel(&self, head: &RequestHead) -> bool {
        self.0.can_tunnel(head)
    }

    /// The 101 goes through phase 10 like every response; the tunnel that follows is the
    /// session's.
    async fn tunnel(
        &mut self,
        w: &Cx<'_>,
        head: &RequestHead,
        st: &mut ExchangeState,
        r: Response<'_>,
        origin: TunnelOrigin<'_>,
    ) -> Result<TunnelEnd, GatewayError> {
        let rid = st.request_id;
        let mut r = r;
        response_filter(
            w,
            self.0.facts(),
            Some(head),
            Some(st),
            rid.bytes(head),
            &mut r,
        );
        self.0.tunnel(w, head, st, r, origin).await
    }
}

/// An origin response's end-to-end fields (a reshaped body keeps them), in order.
pub(super) fn origin_fields<'r>(r: &'r Response<'_>) -> Vec<(&'r [u8], &'r [u8])> {
    match &r.source {
        Source::Origin { head, .. } => head
            .headers
            .iter()
            .filter(|h| h.kind == crate::http::HeaderKind::Regular)
            .map(|h| (head.slice(h.name), head.slice(h.value)))
            .collect(),
        _ => r
            .rendered()
            .map(|m| m.fields().collect())
            .unwrap_or_default(),
    }
}

/// The matched route's path parameters, found again for a phase that runs after the route
/// match is gone (a reshaped relayed response); copies, as this is off the streaming path.
fn route_params(w: &Cx<'_>, head: &RequestHead, st: &ExchangeState) -> Vec<Vec<u8>> {
    match crate::exchange::served::lookup(&w.g.config, head, st.served) {
        Some(m) if Some(m.route) == st.route => m.params.iter().map(|p| p.to_vec()).collect(),
        _ => Vec::new(),
    }
}
