//! Lambda proxy integration formats: the event a function receives and what its answer means.
//!
//! SKELETON (issue 11 contract): signatures are final; the formats slice fills in the bodies.

use std::time::SystemTime;

use bytes::Bytes;

use crate::config::{MockResponse, PayloadFormat};
use crate::facts::ConnFacts;
use crate::http::RequestHead;

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
    /// Arrival time of the request (`requestContext.time`, `timeEpoch`).
    pub now: SystemTime,
    pub api_id: &'a str,
    pub account_id: &'a str,
}

/// The event JSON for `format`.
pub fn event(format: PayloadFormat, input: &EventInput<'_>) -> Vec<u8> {
    let _ = (format, input);
    Vec::new()
}

/// Why a function's answer is not a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("{0}")]
    Malformed(String),
}

/// A function's answer (the Invoke API's payload) turned into the response to send.
pub fn reply(format: PayloadFormat, payload: &[u8]) -> Result<MockResponse, ReplyError> {
    let _ = (format, payload);
    Err(ReplyError::Malformed("not built yet".into()))
}

/// What an Invoke API answer means (local service or AWS alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invoked {
    /// 200 without `X-Amz-Function-Error`: the function's payload.
    Payload(Bytes),
    /// The function failed (`X-Amz-Function-Error`: unhandled exception, init error, crash).
    FunctionError(String),
    /// The function ran past its timeout (`Sandbox.Timedout`, "Task timed out after").
    TimedOut,
    /// 429 `TooManyRequestsException` (concurrency, or a local function's full queue).
    Throttled,
    /// 413 `RequestEntityTooLargeException`.
    TooLarge,
    /// Anything else from the service: its status and error type.
    ServiceError(u16, String),
}

/// Classifies an Invoke API response: its status, `X-Amz-Function-Error` and
/// `x-amzn-ErrorType` fields, and body.
pub fn classify(
    status: u16,
    function_error: Option<&[u8]>,
    error_type: Option<&[u8]>,
    body: Bytes,
) -> Invoked {
    let _ = (function_error, error_type, body);
    Invoked::ServiceError(status, "not built yet".into())
}
