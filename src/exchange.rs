//! The state of one request/response exchange, shared by the lifecycle, the client sessions
//! and the integrations.
//!
//! Owns: [`ExchangeState`] (request id, persistence, where the request body and the response
//! stand, byte counts, what the upstream did, the deciding failure) and how an exchange starts
//! ([`ExchangeState::new`]: the request id and the persistence the worker allows), and its
//! `$context` ([`context`]: the exchange as an access-log entry, read by the access log,
//! parameter mapping, templates and gateway responses). Leaves out:
//! what the phases do with it (see [`crate::proxy::lifecycle`]) and how a protocol reads or
//! writes (see [`crate::session`]). It sits below all of them so that none imports another's
//! types: the lifecycle calls integrations and sessions, never the other way round.

pub mod context;
pub mod served;

use crate::error::GatewayError;
use crate::http::{BodyKind, RequestHead, Span};
use crate::worker::{Cx, REQUEST_ID_LEN};

/// The request id of an exchange: the client's `x-request-id`, or one tollgate generated.
#[derive(Debug, Clone, Copy)]
pub enum RequestId {
    Client(Span),
    Generated([u8; REQUEST_ID_LEN]),
}

impl RequestId {
    pub fn bytes<'a>(&'a self, head: &'a RequestHead) -> &'a [u8] {
        match self {
            RequestId::Client(s) => head.slice(*s),
            RequestId::Generated(g) => g,
        }
    }
}

/// Where the request body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyState {
    /// Not touched yet: can still be skipped as a whole if it is buffered.
    Unread,
    /// Partly consumed (forwarded or decoded): its end is unknown to anything but the decoder
    /// that was reading it, so the connection must close unless that decoder finishes it.
    Partial,
    /// Fully read (or there was none).
    Done,
}

/// Where the response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseState {
    NotStarted,
    /// Bytes reached the client; an error now can only close the connection.
    Started,
    Complete,
}

/// Mutable state of one request/response exchange.
pub struct ExchangeState {
    pub request_id: RequestId,
    /// The client wants, and we allow, another request on this connection.
    pub keep_alive: bool,
    pub body: BodyState,
    pub response: ResponseState,
    pub status: u16,
    /// Request bytes: the head and the body's payload.
    pub bytes_in: u64,
    /// Response bytes sent: heads and payload (the metrics' `sent_bytes` count all of it).
    pub bytes_out: u64,
    /// The part of `bytes_out` that was the response head: the access log's `responseLength`
    /// is the payload alone, `bytes_out - head_out`, as API Gateway documents it.
    pub head_out: u64,
    /// The origin address an HTTP integration connected to (the last one tried).
    pub endpoint: Option<std::net::SocketAddr>,
    /// Time spent on the upstream (request sent → response relayed), HTTP integrations only.
    pub integration: Option<std::time::Duration>,
    /// The origin's status, HTTP integrations only.
    pub upstream_status: Option<u16>,
    /// The failure that decided the response, if any.
    pub error: Option<GatewayError>,
    /// What failed, in words, when the integration knows more than `error` says (a Lambda
    /// invocation: "function error: Runtime.ExitError"): the access log's `errorMessage`.
    pub detail: Option<Box<str>>,
    /// The API key that was presented and is known: accepted, or refused as disabled (then
    /// auth failed and only the log reads it).
    pub key: Option<usize>,
    /// When the exchange started (its head parsed): the latency the log reports, and a Lambda
    /// event's `requestContext.time` and `timeEpoch` (wall time now minus the time since), so
    /// one monotonic clock read per request serves both.
    pub started: std::time::Instant,
    /// The matched route (phase 2), for the response filter (the route's CORS policy).
    pub route: Option<usize>,
    /// The deployment (stage and canary side) serving the request, chosen before the route
    /// lookup; the top-level routes' until then.
    pub served: served::Served,
    /// Who the route's authorizer admitted (see [`crate::auth`]).
    pub principal: Option<std::rc::Rc<crate::auth::Principal>>,
    /// The client's address when trusted proxies made it differ from the socket's peer (see
    /// [`crate::policy::access::client_ip`]), set once by the request filter (phase 1) and read
    /// by every consumer: IP rules, throttle keys, access log, Lambda events, authorizers.
    pub client_ip: Option<std::net::IpAddr>,
    /// The request body, when a phase before the integration had to read it whole (an
    /// `aws_iam` route hashing the payload): the integration gets it from here (see the
    /// lifecycle's `Filtered`), not from the connection.
    pub held_body: Option<bytes::Bytes>,
    /// A refusal's response prepared by the phase that refused (a `url` request authorizer's
    /// 401 / 403 with the endpoint's body, as Envoy's ext_authz forwards it): `finish` sends it
    /// instead of the error's standard body when its status is the error's.
    pub refusal: Option<crate::config::MockResponse>,
    /// How the request the integration sends differs from the client's beyond parameter
    /// mapping (a replaced body), set by the request-mapping phase; `None`: it does not.
    pub edits: Option<Box<crate::mapping::RequestEdits>>,
    /// The held body parsed as JSON, once (see [`crate::transform::hold::json`]).
    pub body_json: crate::transform::hold::BodyJson,
}

impl ExchangeState {
    /// The state an exchange starts in: the client's request id (or a generated one), and
    /// persistence unless the worker drains (the session narrows it to what its protocol and
    /// the client allow, see [`crate::session::Session::begin`]).
    pub fn new(w: &Cx<'_>, head: &RequestHead) -> ExchangeState {
        let request_id = match head.request_id {
            Some(s) if s.end > s.start => RequestId::Client(s),
            _ => RequestId::Generated(w.ids.generate()),
        };
        ExchangeState {
            request_id,
            keep_alive: !w.draining.get(),
            body: match head.body {
                BodyKind::Empty => BodyState::Done,
                _ => BodyState::Unread,
            },
            response: ResponseState::NotStarted,
            status: 0,
            bytes_in: head.head_len() as u64,
            bytes_out: 0,
            head_out: 0,
            endpoint: None,
            integration: None,
            upstream_status: None,
            error: None,
            detail: None,
            key: None,
            started: std::time::Instant::now(),
            route: None,
            served: served::Served::default(),
            principal: None,
            client_ip: None,
            held_body: None,
            refusal: None,
            edits: None,
            body_json: crate::transform::hold::BodyJson::Unparsed,
        }
    }

    /// The request edits, created empty on first use.
    pub fn edits_mut(&mut self) -> &mut crate::mapping::RequestEdits {
        self.edits.get_or_insert_with(Box::default)
    }
}
