//! Every way a request can fail, and the one function that maps a failure to its HTTP status.
//!
//! Owns: [`GatewayError`], [`GatewayError::status`] (the single error → status mapping), whether
//! the client connection must be closed afterwards, the JSON body `{"message": ...}` in API
//! Gateway's wording, and the reason phrases of status lines. Leaves out: writing the bytes
//! (see [`crate::session::h1`]).

use crate::http::HttpError;
use crate::throttle::worker::Throttled;

/// A failure while serving one request.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// The client's request broke HTTP/1.1 (framing, syntax, limits).
    #[error("{0}")]
    Http(#[from] HttpError),
    /// The client did not send a complete head in time.
    #[error("request head timed out")]
    HeadTimeout,
    /// The client stopped sending its body.
    #[error("request body timed out")]
    BodyTimeout,
    /// The client sent its body slower than the route's `min_body_rate` once the grace period
    /// was over.
    #[error("request body too slow")]
    BodyTooSlow,
    /// The client closed or broke the connection mid-request.
    #[error("client connection lost")]
    ClientGone,
    /// No route matched.
    #[error("no route matched")]
    NoRoute,
    /// Every attempt to connect to the upstream failed.
    #[error("upstream connect failed")]
    UpstreamConnect,
    /// The upstream's connect or response timed out.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The upstream broke HTTP or the connection.
    #[error("upstream protocol error: {0}")]
    UpstreamProtocol(&'static str),
    /// The TLS handshake with the upstream failed (its certificate, the protocol version, the
    /// peer closing); the detail goes to the gateway's log line, the kind to the access log.
    #[error("upstream TLS handshake failed: {0}")]
    UpstreamTls(UpstreamTlsFailure),
    /// The upstream has no usable target.
    #[error("no upstream target available")]
    NoTarget,
    /// The route requires an API key and none or an unknown one was presented.
    #[error("missing or invalid API key")]
    Forbidden,
    /// The route requires an API key and a known but disabled one was presented (the client
    /// gets the same 403 as for [`GatewayError::Forbidden`]; only the log tells them apart).
    #[error("API key disabled")]
    KeyDisabled,
    /// A rate limit refused the request.
    #[error("throttled by the {} limit", .0.level.name())]
    Throttled(Throttled),
    /// The API key's quota for the period is used up.
    #[error("quota exhausted")]
    QuotaExceeded,
    /// A WebSocket opening handshake (RFC 6455 §4.2.1) on a route with `websocket = true` that
    /// breaks the rules (not GET, a body, no `Connection: upgrade`, a bad or missing
    /// `Sec-WebSocket-Key`, no `Sec-WebSocket-Version`): 400, as RFC 6455 §4.2.2 asks.
    #[error("invalid WebSocket handshake: {0}")]
    WebSocketHandshake(&'static str),
    /// A WebSocket handshake asking for a version other than 13: 426 with
    /// `Sec-WebSocket-Version: 13` (RFC 6455 §4.2.2 item 4, §4.4).
    #[error("unsupported WebSocket version")]
    WebSocketVersion,
    /// How a switched connection's tunnel (after a 101) ended when not by both sides closing:
    /// idle, drained, a side broken. Recorded for the access log only: the response (the 101)
    /// was sent long before, so this status is never sent.
    #[error("tunnel ended: {0}")]
    TunnelEnded(&'static str),
    /// A Lambda invocation failed (see [`FunctionFailure`]).
    #[error("function {0}")]
    Function(FunctionFailure),
    /// The route's authorizer found no credentials where it looks for them, or credentials
    /// that are not valid (a JWT that does not verify, a request authorizer's 401): 401
    /// `{"message":"Unauthorized"}`. What was wrong goes to the access log's `errorMessage`
    /// ([`crate::exchange::ExchangeState::detail`]), never to the client.
    #[error("unauthorized")]
    Unauthorized,
    /// A caller the gateway knows may not call this route: 403 `{"message":"Forbidden"}`.
    #[error("forbidden: {0}")]
    Denied(Denial),
    /// The route's authorizer could not decide (it failed, timed out, answered nonsense, its
    /// keys could not be fetched): 500 `{"message":"Internal Server Error"}`, as API Gateway.
    #[error("authorizer failed: {0}")]
    AuthorizerFailed(&'static str),
    /// An `aws_iam` route's SigV4 signature is missing or does not verify: 403 with AWS's
    /// message (see [`IamFailure`]).
    #[error("IAM authorization failed: {0}")]
    Iam(IamFailure),
    /// Request validation: the body does not satisfy the route's model: 400 `{"message":
    /// "Invalid request body", "details": [...]}` (the response is prepared by the validation
    /// phase in the exchange's `refusal`; gateway response type `BAD_REQUEST_BODY`).
    #[error("invalid request body")]
    InvalidBody,
    /// Request validation: required headers or query parameters are missing: 400 with their
    /// names in the message (kept in the exchange's `detail`; `BAD_REQUEST_PARAMETERS`).
    #[error("missing required request parameters")]
    MissingParameters,
    /// The body is not of a media type the route can read (a model needs JSON; a coding tollgate
    /// cannot decode): 415 (`UNSUPPORTED_MEDIA_TYPE`).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The request body could not be transformed, decoded or templated (malformed XML or JSON,
    /// a DOCTYPE, a depth limit, a corrupt compressed body): 400 with the reason in the message
    /// (kept in the exchange's `detail`, naming the limit; `BAD_REQUEST_BODY`).
    #[error("request body refused")]
    BadRequestBody,
    /// A compressed request body decodes to more than the route's `max_body_bytes`, or expands
    /// past the ratio limit (a decompression bomb): 413, the message naming the limit.
    #[error("decoded request body too large")]
    DecodedTooLarge,
    /// The integration's response body could not be transformed (malformed XML or JSON, a
    /// limit): 502 with the reason in the message (`INTEGRATION_FAILURE`).
    #[error("response transformation failed")]
    TransformFailed,
    /// A bug caught before it could misframe the connection (the detail names it): 500, and
    /// the connection closes, its byte stream no longer trusted.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Why a TLS handshake with an origin failed, as far as the client's answer and the access log
/// tell it (the rustls detail is in the gateway's log line). A handshake that timed out is
/// [`GatewayError::UpstreamTimeout`], as a TCP connect that timed out is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamTlsFailure {
    /// The origin's certificate did not verify: unknown CA, wrong name, expired (RFC 5280 §6,
    /// RFC 9525 §6).
    #[error("origin certificate refused")]
    Certificate,
    /// No protocol version in common (RFC 8446 §4.2.1, RFC 5246 Appendix E).
    #[error("no TLS version in common")]
    Version,
    /// The origin closed the connection during the handshake (e.g. it wanted a client
    /// certificate and got none, or does not speak TLS on that port).
    #[error("origin closed the connection")]
    Closed,
    /// Anything else: an alert from the origin, no cipher suite in common, a malformed message,
    /// a socket error.
    #[error("handshake error")]
    Handshake,
}

/// Why a known caller was refused (403): the log's word for it; the client gets
/// `{"message":"Forbidden"}` whatever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// A JWT without one of the route's `scopes`.
    #[error("scope missing")]
    Scope,
    /// A request authorizer answered deny (or an IAM policy that does not allow the route).
    #[error("authorizer denied")]
    Authorizer,
    /// The client's address is refused by `allow_ips` / `deny_ips`.
    #[error("source address refused")]
    SourceIp,
    /// The route needs a verified client certificate (`mtls`) and there was none, or its
    /// subject matches none of `allow_subjects`.
    #[error("client certificate required")]
    ClientCert,
}

/// Why SigV4 verification refused a request, with API Gateway's message for each (see
/// [`GatewayError::body`]). Messages that name the request (a signature's date, the caller's
/// ARN) are built where the failure is found and kept in the exchange's `detail`, which the
/// error response then carries instead of the static text ([`GatewayError::detail_is_message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IamFailure {
    /// No `Authorization` field and no presigned query.
    #[error("missing authentication token")]
    Missing,
    /// The `Authorization` field or the presigned query is malformed.
    #[error("malformed authorization")]
    Malformed,
    /// The access key id is not a configured credential (or its session token is wrong).
    #[error("unknown access key")]
    UnknownKey,
    /// The signature does not match.
    #[error("signature mismatch")]
    Mismatch,
    /// `x-amz-date` (or `X-Amz-Date` + `X-Amz-Expires`) is too far from now.
    #[error("signature expired")]
    Expired,
    /// The body does not hash to `x-amz-content-sha256`.
    #[error("payload hash mismatch")]
    PayloadHash,
    /// The principal's `allow` patterns do not include the route.
    #[error("principal not allowed")]
    NotAllowed,
    /// The worker holds its budget of unverified bodies already (`unverified_body_budget_bytes`):
    /// 503, the body left unread.
    #[error("unverified body budget exhausted")]
    Busy,
}

/// How a Lambda invocation failed, as API Gateway answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FunctionFailure {
    /// The function raised, crashed, or failed to start (`X-Amz-Function-Error`): 502.
    #[error("error")]
    Error,
    /// The function's answer is no valid response for the payload format: 502.
    #[error("response malformed")]
    BadResponse,
    /// The Invoke API answered with an error of its own (not found, denied, 5xx): 502.
    #[error("service error")]
    Service,
    /// The function ran past its timeout, or the invocation past the route's: 504.
    #[error("timed out")]
    Timeout,
    /// Concurrency and queue are full, or AWS throttled the call: 429.
    #[error("throttled")]
    Throttled,
    /// The event is larger than Lambda's payload limit: 413.
    #[error("payload too large")]
    TooLarge,
}

impl GatewayError {
    /// The status sent to the client for this error: the one place this mapping lives.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::Http(e) => e.status(),
            GatewayError::HeadTimeout | GatewayError::BodyTimeout | GatewayError::BodyTooSlow => {
                408
            }
            GatewayError::ClientGone => 400,
            GatewayError::NoRoute => 404,
            GatewayError::UpstreamConnect
            | GatewayError::UpstreamProtocol(_)
            | GatewayError::UpstreamTls(_) => 502,
            GatewayError::UpstreamTimeout => 504,
            GatewayError::NoTarget => 503,
            GatewayError::Forbidden | GatewayError::KeyDisabled => 403,
            GatewayError::Unauthorized => 401,
            GatewayError::Iam(IamFailure::Busy) => 503,
            GatewayError::Denied(_) | GatewayError::Iam(_) => 403,
            GatewayError::AuthorizerFailed(_) => 500,
            GatewayError::Throttled(_) | GatewayError::QuotaExceeded => 429,
            GatewayError::Internal(_) => 500,
            GatewayError::InvalidBody
            | GatewayError::MissingParameters
            | GatewayError::BadRequestBody => 400,
            GatewayError::UnsupportedMediaType => 415,
            GatewayError::DecodedTooLarge => 413,
            GatewayError::TransformFailed => 502,
            GatewayError::WebSocketHandshake(_) => 400,
            GatewayError::WebSocketVersion => 426,
            GatewayError::TunnelEnded(_) => 502,
            GatewayError::Function(f) => match f {
                FunctionFailure::Error
                | FunctionFailure::BadResponse
                | FunctionFailure::Service => 502,
                FunctionFailure::Timeout => 504,
                FunctionFailure::Throttled => 429,
                FunctionFailure::TooLarge => 413,
            },
        }
    }

    /// Whether the client connection must be closed after the error response. Anything that
    /// leaves the byte stream in doubt (framing, limits, timeouts) closes it (RFC 9112 §9.6).
    pub fn must_close(&self) -> bool {
        !matches!(
            self,
            GatewayError::NoRoute
                | GatewayError::UpstreamConnect
                | GatewayError::UpstreamTimeout
                | GatewayError::UpstreamProtocol(_)
                | GatewayError::UpstreamTls(_)
                | GatewayError::NoTarget
                | GatewayError::Forbidden
                | GatewayError::KeyDisabled
                | GatewayError::Throttled(_)
                | GatewayError::QuotaExceeded
                | GatewayError::Function(_)
                | GatewayError::Unauthorized
                | GatewayError::Denied(_)
                | GatewayError::AuthorizerFailed(_)
                | GatewayError::Iam(_)
                | GatewayError::InvalidBody
                | GatewayError::MissingParameters
                | GatewayError::UnsupportedMediaType
                | GatewayError::BadRequestBody
                | GatewayError::DecodedTooLarge
                | GatewayError::TransformFailed
        )
    }

    /// Whether the exchange's `detail`, when set, is the client's message: the error body is
    /// then `{"message": DETAIL}` instead of [`GatewayError::body`] (SigV4 refusals that name
    /// the request, as AWS words them). For every other error the detail is for the log only.
    pub fn detail_is_message(&self) -> bool {
        matches!(
            self,
            GatewayError::Iam(_)
                | GatewayError::MissingParameters
                | GatewayError::BadRequestBody
                | GatewayError::DecodedTooLarge
                | GatewayError::TransformFailed
        )
    }

    /// The JSON body sent with the status, in API Gateway's words.
    pub fn body(&self) -> &'static str {
        match self {
            GatewayError::QuotaExceeded => r#"{"message":"Limit Exceeded"}"#,
            GatewayError::InvalidBody => r#"{"message":"Invalid request body"}"#,
            GatewayError::UnsupportedMediaType => r#"{"message":"Unsupported Media Type"}"#,
            // API Gateway's words for a Lambda that failed or answered nonsense
            GatewayError::Function(
                FunctionFailure::Error | FunctionFailure::BadResponse | FunctionFailure::Service,
            ) => r#"{"message":"Internal Server Error"}"#,
            GatewayError::Iam(f) => match f {
                IamFailure::Missing => r#"{"message":"Missing Authentication Token"}"#,
                IamFailure::Malformed => {
                    r#"{"message":"Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}"#
                }
                IamFailure::UnknownKey => {
                    r#"{"message":"The security token included in the request is invalid."}"#
                }
                IamFailure::Mismatch | IamFailure::PayloadHash => {
                    r#"{"message":"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}"#
                }
                IamFailure::Expired => r#"{"message":"Signature expired"}"#,
                IamFailure::NotAllowed => r#"{"message":"Forbidden"}"#,
                IamFailure::Busy => r#"{"message":"Service Unavailable"}"#,
            },
            _ => json_message(self.status()),
        }
    }

    /// Field lines (each ending in CRLF) the error response carries besides its framing: a
    /// 426 names the protocol and version it requires (RFC 9110 §15.5.22: a 426 MUST send
    /// `Upgrade`; §7.8: with the `upgrade` connection option; RFC 6455 §4.4:
    /// `Sec-WebSocket-Version` lists the versions the server understands).
    pub fn fields(&self) -> &'static [u8] {
        match self {
            GatewayError::WebSocketVersion => {
                b"sec-websocket-version: 13\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
            }
            // RFC 9110 §15.5.2: a 401 MUST carry a challenge (RFC 6750 §3: Bearer tokens)
            GatewayError::Unauthorized => b"www-authenticate: Bearer\r\n",
            _ => b"",
        }
    }
}

/// `{"message":"..."}` for a status, as AWS API Gateway words it.
pub fn json_message(status: u16) -> &'static str {
    match status {
        400 => r#"{"message":"Bad Request"}"#,
        401 => r#"{"message":"Unauthorized"}"#,
        403 => r#"{"message":"Forbidden"}"#,
        404 => r#"{"message":"Not Found"}"#,
        408 => r#"{"message":"Request Timeout"}"#,
        413 => r#"{"message":"Request Entity Too Large"}"#,
        414 => r#"{"message":"URI Too Long"}"#,
        417 => r#"{"message":"Expectation Failed"}"#,
        426 => r#"{"message":"Upgrade Required"}"#,
        429 => r#"{"message":"Too Many Requests"}"#,
        431 => r#"{"message":"Request Header Fields Too Large"}"#,
        501 => r#"{"message":"Not Implemented"}"#,
        502 => r#"{"message":"Bad Gateway"}"#,
        503 => r#"{"message":"Service Unavailable"}"#,
        504 => r#"{"message":"Gateway Timeout"}"#,
        _ => r#"{"message":"Internal Server Error"}"#,
    }
}

/// Reason phrase for a status line (RFC 9110 §15); unknown codes get an empty phrase, which
/// RFC 9112 §4 allows.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_api_gateway() {
        assert_eq!(GatewayError::NoRoute.status(), 404);
        assert_eq!(GatewayError::NoRoute.body(), r#"{"message":"Not Found"}"#);
        assert_eq!(
            GatewayError::UpstreamTimeout.body(),
            r#"{"message":"Gateway Timeout"}"#
        );
        assert_eq!(
            GatewayError::UpstreamConnect.body(),
            r#"{"message":"Bad Gateway"}"#
        );
        assert_eq!(GatewayError::Http(HttpError::HeadTooLarge).status(), 431);
        assert_eq!(GatewayError::Http(HttpError::UriTooLong).status(), 414);
        assert_eq!(GatewayError::Http(HttpError::BodyTooLarge).status(), 413);
        assert!(GatewayError::Http(HttpError::BadRequest("x")).must_close());
        assert!(!GatewayError::NoRoute.must_close());
        assert_eq!(GatewayError::BodyTooSlow.status(), 408);
        assert_eq!(
            GatewayError::BodyTooSlow.body(),
            r#"{"message":"Request Timeout"}"#
        );
        assert!(GatewayError::BodyTooSlow.must_close());
        let tls = GatewayError::UpstreamTls(UpstreamTlsFailure::Certificate);
        assert_eq!(tls.status(), 502);
        assert_eq!(tls.body(), r#"{"message":"Bad Gateway"}"#);
        assert!(!tls.must_close());
        assert_eq!(
            tls.to_string(),
            "upstream TLS handshake failed: origin certificate refused"
        );
    }
}
