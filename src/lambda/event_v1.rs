//! Payload format 1.0 (the REST API proxy format), serialised from the [`Request`] that
//! `event.rs` reads; the rules for every field are in `event.rs`'s module docs.
//!
//! Owns the 1.0 shapes only: `headers` (last value) beside `multiValueHeaders`,
//! `queryStringParameters` (last value) beside `multiValueQueryStringParameters`, `null` for
//! absent maps and body, and the `requestContext` with its `identity` and `authorizer` objects
//! (`null` members where API Gateway would have IAM or Cognito facts). Leaves out reading the
//! request (see `event.rs`).

use std::borrow::Cow;

use super::event::{client_cert, map_or_none, CertJson, Map, Request};
use super::event_auth::V1Identity;
use super::EventInput;

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EventV1<'x> {
    version: &'static str,
    resource: &'x str,
    path: &'x str,
    http_method: &'x str,
    headers: Option<Map<'x, &'x str, &'x str>>,
    multi_value_headers: Option<Map<'x, &'x str, &'x [Cow<'x, str>]>>,
    query_string_parameters: Option<Map<'x, &'x str, &'x str>>,
    multi_value_query_string_parameters: Option<Map<'x, String, Vec<String>>>,
    request_context: ContextV1<'x>,
    path_parameters: Option<Map<'x, &'x str, &'x str>>,
    stage_variables: Option<Map<'x, &'x str, &'x str>>,
    body: Option<&'x str>,
    is_base64_encoded: bool,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ContextV1<'x> {
    account_id: &'x str,
    api_id: &'x str,
    authorizer: serde_json::Value,
    domain_name: &'x str,
    domain_prefix: &'x str,
    extended_request_id: &'x str,
    http_method: &'x str,
    identity: Identity<'x>,
    path: &'x str,
    protocol: &'x str,
    request_id: &'x str,
    request_time: &'x str,
    request_time_epoch: u64,
    resource_id: Option<&'x str>,
    resource_path: &'x str,
    stage: &'x str,
}

/// The caller's identity: only `sourceIp`, `userAgent` (and a client certificate) are known
/// without IAM or Cognito; an IAM caller adds `accessKey`, `accountId`, `caller`, `user` and
/// `userArn`; the rest is `null`, as AWS shows it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'x> {
    access_key: Option<&'x str>,
    account_id: Option<&'x str>,
    caller: Option<&'x str>,
    cognito_authentication_provider: Option<&'x str>,
    cognito_authentication_type: Option<&'x str>,
    cognito_identity_id: Option<&'x str>,
    cognito_identity_pool_id: Option<&'x str>,
    principal_org_id: Option<&'x str>,
    source_ip: &'x str,
    user: Option<&'x str>,
    user_agent: &'x str,
    user_arn: Option<&'x str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_cert: Option<CertJson<'x>>,
}

/// Payload format 1.0.
pub(super) fn v1(input: &EventInput<'_>) -> Vec<u8> {
    let r = Request::read(input, false);
    let last: Vec<(&str, &str)> = r
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.last()?.as_ref())))
        .collect();
    let multi: Vec<(&str, &[Cow<'_, str>])> = r
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let query_last: Vec<(&str, &str)> = r
        .query
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.last()?.as_str())))
        .collect();
    let params = r.path_param_pairs();
    let iam = V1Identity::of(input.principal);
    // `ANY /hello/{proxy+}` → `/hello/{proxy+}`; `$default` stays itself
    let resource = input
        .route_key
        .split_once(' ')
        .map_or(input.route_key, |(_, path)| path);
    let event = EventV1 {
        version: "1.0",
        resource,
        path: &r.raw_path,
        http_method: &r.method,
        headers: map_or_none(&last),
        multi_value_headers: map_or_none(&multi),
        query_string_parameters: map_or_none(&query_last),
        multi_value_query_string_parameters: map_or_none(&r.query),
        request_context: ContextV1 {
            account_id: input.account_id,
            api_id: input.api_id,
            // without an authorizer both `claims` and `scopes` are `null`, as AWS shows it
            authorizer: super::event_auth::v1(input.principal),
            domain_name: &r.domain_name,
            domain_prefix: r.domain_prefix(),
            extended_request_id: &r.request_id,
            http_method: &r.method,
            identity: Identity {
                access_key: iam.access_key,
                account_id: iam.account_id,
                caller: iam.caller,
                cognito_authentication_provider: None,
                cognito_authentication_type: None,
                cognito_identity_id: None,
                cognito_identity_pool_id: None,
                principal_org_id: None,
                source_ip: &r.source_ip,
                user: iam.user,
                user_agent: &r.user_agent,
                user_arn: iam.user_arn,
                client_cert: client_cert(input),
            },
            path: &r.raw_path,
            protocol: r.protocol,
            request_id: &r.request_id,
            request_time: &r.time,
            request_time_epoch: r.time_epoch,
            resource_id: None,
            resource_path: resource,
            stage: input.stage,
        },
        path_parameters: map_or_none(&params),
        stage_variables: map_or_none(input.stage_variables),
        body: r.body.as_deref(),
        is_base64_encoded: r.base64,
    };
    serde_json::to_vec(&event).unwrap_or_default()
}
