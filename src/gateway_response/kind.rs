//! Gateway response types: API Gateway's names for the ways it fails a request
//! (`THROTTLED`, `UNAUTHORIZED`, ..., and the fallbacks `DEFAULT_4XX` / `DEFAULT_5XX`), their
//! default statuses, and which type each tollgate failure is.
//!
//! Owns: [`ResponseType`] (names, AWS's default statuses, whether tollgate ever produces a
//! type) and [`response_type`] (every [`GatewayError`] to its type: the one place this
//! mapping lives). Leaves out: the status a failure is sent with (see
//! [`GatewayError::status`]; a customised response may change it) and the responses
//! themselves (see [`super`]). Sans-IO: names and enums only.

use crate::error::{FunctionFailure, GatewayError, IamFailure};
use crate::http::HttpError;

/// A gateway response type, as API Gateway names it (see the "Gateway response types" table
/// of AWS's developer guide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseType {
    AccessDenied,
    ApiConfigurationError,
    AuthorizerConfigurationError,
    AuthorizerFailure,
    BadRequestParameters,
    BadRequestBody,
    Default4xx,
    Default5xx,
    ExpiredToken,
    IntegrationFailure,
    IntegrationTimeout,
    InvalidApiKey,
    InvalidSignature,
    MissingAuthenticationToken,
    QuotaExceeded,
    RequestTooLarge,
    ResourceNotFound,
    Throttled,
    Unauthorized,
    UnsupportedMediaType,
    WafFiltered,
}

/// How many types there are (the length of a table indexed by [`ResponseType::index`]).
pub const TYPE_COUNT: usize = 21;

impl ResponseType {
    /// Every type, in AWS's (alphabetical) order; `ALL[t.index()] == t`.
    pub const ALL: [ResponseType; TYPE_COUNT] = [
        ResponseType::AccessDenied,
        ResponseType::ApiConfigurationError,
        ResponseType::AuthorizerConfigurationError,
        ResponseType::AuthorizerFailure,
        ResponseType::BadRequestParameters,
        ResponseType::BadRequestBody,
        ResponseType::Default4xx,
        ResponseType::Default5xx,
        ResponseType::ExpiredToken,
        ResponseType::IntegrationFailure,
        ResponseType::IntegrationTimeout,
        ResponseType::InvalidApiKey,
        ResponseType::InvalidSignature,
        ResponseType::MissingAuthenticationToken,
        ResponseType::QuotaExceeded,
        ResponseType::RequestTooLarge,
        ResponseType::ResourceNotFound,
        ResponseType::Throttled,
        ResponseType::Unauthorized,
        ResponseType::UnsupportedMediaType,
        ResponseType::WafFiltered,
    ];

    /// The type's position in [`ResponseType::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// AWS's name (`"THROTTLED"`), as `[[gateway_response]] type` and
    /// `$context.error.responseType` spell it.
    pub fn name(self) -> &'static str {
        match self {
            ResponseType::AccessDenied => "ACCESS_DENIED",
            ResponseType::ApiConfigurationError => "API_CONFIGURATION_ERROR",
            ResponseType::AuthorizerConfigurationError => "AUTHORIZER_CONFIGURATION_ERROR",
            ResponseType::AuthorizerFailure => "AUTHORIZER_FAILURE",
            ResponseType::BadRequestParameters => "BAD_REQUEST_PARAMETERS",
            ResponseType::BadRequestBody => "BAD_REQUEST_BODY",
            ResponseType::Default4xx => "DEFAULT_4XX",
            ResponseType::Default5xx => "DEFAULT_5XX",
            ResponseType::ExpiredToken => "EXPIRED_TOKEN",
            ResponseType::IntegrationFailure => "INTEGRATION_FAILURE",
            ResponseType::IntegrationTimeout => "INTEGRATION_TIMEOUT",
            ResponseType::InvalidApiKey => "INVALID_API_KEY",
            ResponseType::InvalidSignature => "INVALID_SIGNATURE",
            ResponseType::MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            ResponseType::QuotaExceeded => "QUOTA_EXCEEDED",
            ResponseType::RequestTooLarge => "REQUEST_TOO_LARGE",
            ResponseType::ResourceNotFound => "RESOURCE_NOT_FOUND",
            ResponseType::Throttled => "THROTTLED",
            ResponseType::Unauthorized => "UNAUTHORIZED",
            ResponseType::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ResponseType::WafFiltered => "WAF_FILTERED",
        }
    }

    /// The type named `name` (exactly, as AWS spells it).
    pub fn from_name(name: &str) -> Option<ResponseType> {
        ResponseType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Every name, comma-separated (for an error listing the valid ones).
    pub fn names() -> String {
        let names: Vec<&str> = ResponseType::ALL.iter().map(|t| t.name()).collect();
        names.join(", ")
    }

    /// AWS's default status for the type; `None` for `DEFAULT_4XX` / `DEFAULT_5XX`, which
    /// keep the failure's own.
    pub fn default_status(self) -> Option<u16> {
        Some(match self {
            ResponseType::Default4xx | ResponseType::Default5xx => return None,
            ResponseType::BadRequestParameters | ResponseType::BadRequestBody => 400,
            ResponseType::Unauthorized => 401,
            ResponseType::AccessDenied
            | ResponseType::ExpiredToken
            | ResponseType::InvalidApiKey
            | ResponseType::InvalidSignature
            | ResponseType::MissingAuthenticationToken
            | ResponseType::WafFiltered => 403,
            ResponseType::ResourceNotFound => 404,
            ResponseType::RequestTooLarge => 413,
            ResponseType::UnsupportedMediaType => 415,
            ResponseType::QuotaExceeded | ResponseType::Throttled => 429,
            ResponseType::ApiConfigurationError
            | ResponseType::AuthorizerConfigurationError
            | ResponseType::AuthorizerFailure => 500,
            ResponseType::IntegrationFailure | ResponseType::IntegrationTimeout => 504,
        })
    }

    /// Whether some tollgate failure is of this type. `API_CONFIGURATION_ERROR` (a bad
    /// deployment: tollgate refuses such a config at load), `EXPIRED_TOKEN` (an expired STS
    /// session token: tollgate's IAM credentials have none) and `WAF_FILTERED` (no WAF) are
    /// accepted, as in an OpenAPI export, but never sent.
    pub fn produced(self) -> bool {
        !matches!(
            self,
            ResponseType::ApiConfigurationError
                | ResponseType::ExpiredToken
                | ResponseType::WafFiltered
        )
    }

    /// The fallback for a failure sent with `status`: `DEFAULT_4XX` below 500, else
    /// `DEFAULT_5XX` (AWS: "the default gateway response for an unspecified response type
    /// with the status code of 4XX").
    pub fn fallback(status: u16) -> ResponseType {
        if status < 500 {
            ResponseType::Default4xx
        } else {
            ResponseType::Default5xx
        }
    }
}

/// The `message` of the JWT authorizer's failure to fetch its key set (an authorizer that
/// could not be reached: `AUTHORIZER_CONFIGURATION_ERROR`).
const JWT_KEYS_UNAVAILABLE: &str = "jwt keys unavailable";

/// The type of failure `e` (its fallback when API Gateway has no type for it: a malformed
/// body framing, a timeout reading the request, a WebSocket handshake, a bug).
///
/// AWS's types, and where tollgate departs from a REST API:
/// - no route: `RESOURCE_NOT_FOUND` (404, as HTTP APIs answer; a REST API answers
///   `MISSING_AUTHENTICATION_TOKEN` 403 there);
/// - a SigV4 signature that is missing: `MISSING_AUTHENTICATION_TOKEN`; malformed, of an
///   unknown key, not matching, or expired (`x-amz-date` too far from now, AWS's
///   `InvalidSignatureException`): `INVALID_SIGNATURE`; a principal not allowed the route:
///   `ACCESS_DENIED`;
/// - every integration failure (connect, protocol, TLS, no target, a function's error, a
///   response body that could not be transformed): `INTEGRATION_FAILURE`, sent with
///   tollgate's status for it (502 mostly), not AWS's 504.
pub fn response_type(e: &GatewayError) -> ResponseType {
    use ResponseType as T;
    match e {
        GatewayError::NoRoute => T::ResourceNotFound,
        GatewayError::Throttled(_) => T::Throttled,
        GatewayError::QuotaExceeded => T::QuotaExceeded,
        GatewayError::Forbidden | GatewayError::KeyDisabled => T::InvalidApiKey,
        GatewayError::Unauthorized => T::Unauthorized,
        GatewayError::Denied(_) => T::AccessDenied,
        GatewayError::AuthorizerFailed(why) if *why == JWT_KEYS_UNAVAILABLE => {
            T::AuthorizerConfigurationError
        }
        GatewayError::AuthorizerFailed(_) => T::AuthorizerFailure,
        GatewayError::Iam(f) => match f {
            IamFailure::Missing => T::MissingAuthenticationToken,
            IamFailure::Malformed
            | IamFailure::UnknownKey
            | IamFailure::Mismatch
            | IamFailure::PayloadHash
            | IamFailure::Expired => T::InvalidSignature,
            IamFailure::NotAllowed => T::AccessDenied,
            IamFailure::Busy => T::fallback(e.status()),
        },
        GatewayError::InvalidBody | GatewayError::BadRequestBody => T::BadRequestBody,
        GatewayError::MissingParameters => T::BadRequestParameters,
        GatewayError::UnsupportedMediaType => T::UnsupportedMediaType,
        GatewayError::Http(HttpError::BodyTooLarge) | GatewayError::DecodedTooLarge => {
            T::RequestTooLarge
        }
        GatewayError::UpstreamTimeout => T::IntegrationTimeout,
        GatewayError::Function(f) => match f {
            FunctionFailure::Timeout => T::IntegrationTimeout,
            FunctionFailure::TooLarge => T::RequestTooLarge,
            FunctionFailure::Error
            | FunctionFailure::BadResponse
            | FunctionFailure::Service
            | FunctionFailure::Throttled => T::IntegrationFailure,
        },
        GatewayError::UpstreamConnect
        | GatewayError::UpstreamProtocol(_)
        | GatewayError::UpstreamTls(_)
        | GatewayError::NoTarget
        | GatewayError::TransformFailed => T::IntegrationFailure,
        GatewayError::Http(_)
        | GatewayError::HeadTimeout
        | GatewayError::BodyTimeout
        | GatewayError::BodyTooSlow
        | GatewayError::ClientGone
        | GatewayError::WebSocketHandshake(_)
        | GatewayError::WebSocketVersion
        | GatewayError::TunnelEnded(_)
        | GatewayError::Internal(_) => T::fallback(e.status()),
    }
}

#[cfg(test)]
#[path = "kind_tests.rs"]
mod tests;
