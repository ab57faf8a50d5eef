use super::*;
use crate::error::{Denial, UpstreamTlsFailure};

#[test]
fn names_round_trip_and_index_the_table() {
    for (i, t) in ResponseType::ALL.iter().enumerate() {
        assert_eq!(t.index(), i, "{t:?}");
        assert_eq!(ResponseType::from_name(t.name()), Some(*t));
    }
    assert_eq!(
        ResponseType::from_name("throttled"),
        None,
        "AWS's spelling only"
    );
    assert_eq!(ResponseType::from_name("DEFAULT_4xx"), None);
    let names = ResponseType::names();
    assert!(
        names.starts_with("ACCESS_DENIED, API_CONFIGURATION_ERROR,"),
        "{names}"
    );
    assert!(
        names.ends_with("UNSUPPORTED_MEDIA_TYPE, WAF_FILTERED"),
        "{names}"
    );
}

#[test]
fn default_statuses_are_aws_s() {
    use ResponseType as T;
    let table = [
        (T::AccessDenied, Some(403)),
        (T::ApiConfigurationError, Some(500)),
        (T::AuthorizerConfigurationError, Some(500)),
        (T::AuthorizerFailure, Some(500)),
        (T::BadRequestParameters, Some(400)),
        (T::BadRequestBody, Some(400)),
        (T::Default4xx, None),
        (T::Default5xx, None),
        (T::ExpiredToken, Some(403)),
        (T::IntegrationFailure, Some(504)),
        (T::IntegrationTimeout, Some(504)),
        (T::InvalidApiKey, Some(403)),
        (T::InvalidSignature, Some(403)),
        (T::MissingAuthenticationToken, Some(403)),
        (T::QuotaExceeded, Some(429)),
        (T::RequestTooLarge, Some(413)),
        (T::ResourceNotFound, Some(404)),
        (T::Throttled, Some(429)),
        (T::Unauthorized, Some(401)),
        (T::UnsupportedMediaType, Some(415)),
        (T::WafFiltered, Some(403)),
    ];
    assert_eq!(table.len(), TYPE_COUNT);
    for (t, s) in table {
        assert_eq!(t.default_status(), s, "{}", t.name());
    }
    assert_eq!(ResponseType::fallback(400), T::Default4xx);
    assert_eq!(ResponseType::fallback(499), T::Default4xx);
    assert_eq!(ResponseType::fallback(500), T::Default5xx);
    assert_eq!(ResponseType::fallback(599), T::Default5xx);
}

fn throttled() -> GatewayError {
    GatewayError::Throttled(crate::throttle::worker::Throttled {
        level: crate::throttle::Level::Route,
        retry_after_ns: 1,
        rate: 1.0,
        burst: 1,
    })
}

/// Every failure tollgate sends, with its type.
fn every_failure() -> Vec<(GatewayError, ResponseType)> {
    use ResponseType as T;
    vec![
        (GatewayError::NoRoute, T::ResourceNotFound),
        (throttled(), T::Throttled),
        (GatewayError::QuotaExceeded, T::QuotaExceeded),
        (GatewayError::Forbidden, T::InvalidApiKey),
        (GatewayError::KeyDisabled, T::InvalidApiKey),
        (GatewayError::Unauthorized, T::Unauthorized),
        (GatewayError::Denied(Denial::Scope), T::AccessDenied),
        (GatewayError::Denied(Denial::Authorizer), T::AccessDenied),
        (GatewayError::Denied(Denial::SourceIp), T::AccessDenied),
        (GatewayError::Denied(Denial::ClientCert), T::AccessDenied),
        (
            GatewayError::AuthorizerFailed("request authorizer failed"),
            T::AuthorizerFailure,
        ),
        (
            GatewayError::AuthorizerFailed(JWT_KEYS_UNAVAILABLE),
            T::AuthorizerConfigurationError,
        ),
        (
            GatewayError::Iam(IamFailure::Missing),
            T::MissingAuthenticationToken,
        ),
        (
            GatewayError::Iam(IamFailure::Malformed),
            T::InvalidSignature,
        ),
        (
            GatewayError::Iam(IamFailure::UnknownKey),
            T::InvalidSignature,
        ),
        (GatewayError::Iam(IamFailure::Mismatch), T::InvalidSignature),
        (
            GatewayError::Iam(IamFailure::PayloadHash),
            T::InvalidSignature,
        ),
        (GatewayError::Iam(IamFailure::Expired), T::InvalidSignature),
        (GatewayError::Iam(IamFailure::NotAllowed), T::AccessDenied),
        (GatewayError::Iam(IamFailure::Busy), T::Default5xx),
        (GatewayError::InvalidBody, T::BadRequestBody),
        (GatewayError::BadRequestBody, T::BadRequestBody),
        (GatewayError::MissingParameters, T::BadRequestParameters),
        (GatewayError::UnsupportedMediaType, T::UnsupportedMediaType),
        (
            GatewayError::Http(HttpError::BodyTooLarge),
            T::RequestTooLarge,
        ),
        (GatewayError::DecodedTooLarge, T::RequestTooLarge),
        (GatewayError::UpstreamTimeout, T::IntegrationTimeout),
        (
            GatewayError::Function(FunctionFailure::Timeout),
            T::IntegrationTimeout,
        ),
        (
            GatewayError::Function(FunctionFailure::TooLarge),
            T::RequestTooLarge,
        ),
        (
            GatewayError::Function(FunctionFailure::Error),
            T::IntegrationFailure,
        ),
        (
            GatewayError::Function(FunctionFailure::BadResponse),
            T::IntegrationFailure,
        ),
        (
            GatewayError::Function(FunctionFailure::Service),
            T::IntegrationFailure,
        ),
        (
            GatewayError::Function(FunctionFailure::Throttled),
            T::IntegrationFailure,
        ),
        (GatewayError::UpstreamConnect, T::IntegrationFailure),
        (GatewayError::UpstreamProtocol("x"), T::IntegrationFailure),
        (
            GatewayError::UpstreamTls(UpstreamTlsFailure::Certificate),
            T::IntegrationFailure,
        ),
        (GatewayError::NoTarget, T::IntegrationFailure),
        (GatewayError::TransformFailed, T::IntegrationFailure),
        (
            GatewayError::Http(HttpError::BadRequest("x")),
            T::Default4xx,
        ),
        (GatewayError::Http(HttpError::UriTooLong), T::Default4xx),
        (
            GatewayError::Http(HttpError::NotImplemented("x")),
            T::Default5xx,
        ),
        (
            GatewayError::Http(HttpError::ExpectationFailed),
            T::Default4xx,
        ),
        (GatewayError::HeadTimeout, T::Default4xx),
        (GatewayError::BodyTimeout, T::Default4xx),
        (GatewayError::BodyTooSlow, T::Default4xx),
        (GatewayError::WebSocketHandshake("x"), T::Default4xx),
        (GatewayError::WebSocketVersion, T::Default4xx),
        (GatewayError::Internal("x"), T::Default5xx),
    ]
}

#[test]
fn every_failure_has_aws_s_type() {
    for (e, t) in every_failure() {
        assert_eq!(response_type(&e), t, "{e:?}");
        assert!(t.produced(), "{e:?}");
    }
}

#[test]
fn a_failure_s_status_is_its_type_s_default_but_for_integration_failures() {
    // INTEGRATION_FAILURE keeps tollgate's status (502 for a broken origin, 503 without a
    // target, 429 for a throttled function); every other specific type is sent with AWS's
    // default status
    for (e, t) in every_failure() {
        match (t, t.default_status()) {
            (ResponseType::IntegrationFailure, _) => {}
            (_, None) => assert_eq!(ResponseType::fallback(e.status()), t, "{e:?}"),
            (_, Some(s)) => assert_eq!(e.status(), s, "{e:?}"),
        }
    }
}

#[test]
fn the_jwt_key_failure_is_worded_as_matched() {
    // `AUTHORIZER_CONFIGURATION_ERROR` is recognised by the JWT phase's words
    let phase = include_str!("../auth/jwt_authorizer.rs");
    assert!(
        phase.contains(&format!("AuthorizerFailed(\"{JWT_KEYS_UNAVAILABLE}\")")),
        "the JWT phase no longer fails with {JWT_KEYS_UNAVAILABLE:?}"
    );
}
