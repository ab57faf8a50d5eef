//! Lambda proxy integration formats: the event a function receives and what its answer means.
//!
//! Owns three pure translations over bytes and structs, shared by local and remote functions
//! (one code path in the worker: build event → Invoke API call → classify → reply):
//! - [`event`] (in `event.rs`, 1.0's shapes in `event_v1.rs`): a request (its parsed head, the whole decoded body, the route's
//!   path parameters, the connection's facts, the arrival time) → the event JSON of payload
//!   format 2.0 (HTTP APIs) or 1.0 (REST API proxy format), field for field as AWS documents
//!   them.
//! - [`classify`] (in `invoke.rs`): an Invoke API answer (status, `X-Amz-Function-Error`,
//!   `x-amzn-ErrorType`, body) → [`Invoked`]: the function's payload, or why there is none
//!   (function error, timeout, throttling, too large, service error).
//! - [`reply`] (in `reply.rs`): a function's payload → the [`MockResponse`] to send (status line,
//!   validated field lines, `content-length`, body), or [`ReplyError`] (→ 502).
//!
//! Leaves out everything with I/O or state: reading the body, calling the Invoke API, timeouts,
//! metrics, the access log (see `crate::integration::lambda`), running functions (see
//! `crate::functions`). Nothing here touches a socket, a runtime or the configuration files;
//! `tests/architecture.rs` holds it to that.

use std::time::SystemTime;

use crate::facts::ConnFacts;
use crate::http::RequestHead;

mod event;
mod event_auth;
mod event_v1;
mod invoke;
mod reply;

use crate::config::PayloadFormat;

pub(crate) use event::parse_query;
pub use invoke::{classify, Invoked};
pub use reply::{reply, ReplyError};

/// `requestContext.apiId` (until stages and API ids arrive with a later issue).
pub const DEFAULT_API_ID: &str = "tollgate";
/// `requestContext.accountId` for local functions (a remote function's account is its ARN's).
pub const LOCAL_ACCOUNT_ID: &str = "000000000000";
/// `requestContext.stage` without stages.
pub const DEFAULT_STAGE: &str = "$default";

/// What an event is built from.
pub struct EventInput<'a> {
    pub head: &'a RequestHead,
    /// The whole request body (already decoded from its transfer coding).
    pub body: &'a [u8],
    /// The route's path parameters: (name as in the route key, raw matched value).
    pub params: &'a [(&'a str, &'a [u8])],
    /// The route key as configured (`ANY /hello/{proxy+}`, `$default`).
    pub route_key: &'a str,
    pub stage: &'a str,
    pub stage_variables: &'a [(&'a str, &'a str)],
    /// The gateway's request id (`x-request-id`): `requestContext.requestId`.
    pub request_id: &'a [u8],
    pub facts: &'a ConnFacts,
    /// The client behind trusted proxies (`ExchangeState::client_ip`): `sourceIp` (2.0's
    /// `requestContext.http.sourceIp`, 1.0's `requestContext.identity.sourceIp`); `None`: the
    /// socket's peer.
    pub client_ip: Option<crate::facts::PeerIp>,
    /// Arrival time of the request (`requestContext.time`, `timeEpoch`).
    pub now: SystemTime,
    pub api_id: &'a str,
    pub account_id: &'a str,
    /// Who the route's authorizer admitted: `requestContext.authorizer` (and 1.0's
    /// `requestContext.identity` of an IAM caller); `None`: no authorizer ran.
    pub principal: Option<&'a crate::auth::Principal>,
}

/// The event JSON for `format`.
pub fn event(format: PayloadFormat, input: &EventInput<'_>) -> Vec<u8> {
    match format {
        PayloadFormat::V2 => event::v2(input),
        PayloadFormat::V1 => event_v1::v1(input),
    }
}

#[cfg(test)]
mod event_tests;
#[cfg(test)]
mod reply_tests;
