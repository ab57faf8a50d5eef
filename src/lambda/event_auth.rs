//! What the route's authorizer said about the caller, as the Lambda events carry it.
//!
//! Owns the authorizer parts of both payload formats, built from the request's [`Principal`]:
//! - 2.0 `requestContext.authorizer` ([`v2`]): `{"jwt": {"claims", "scopes"}}` for a JWT
//!   authorizer, `{"lambda": CONTEXT}` for a request authorizer, `{"iam": {...}}` for IAM; absent
//!   without a principal.
//! - 1.0 `requestContext.authorizer` ([`v1`]): `{"claims", "scopes"}` for a JWT, the context
//!   map with `principalId` for a request authorizer, and `{"claims": null, "scopes": null}`
//!   otherwise (as without an authorizer); 1.0's `requestContext.identity` members of an IAM
//!   caller ([`V1Identity`]).
//!
//! Claims are rendered as API Gateway renders them: every value a string (numbers and booleans
//! as their JSON text, an array as its elements' text between brackets separated by spaces,
//! `[a b]`, an object as its JSON text). A request authorizer's context is passed as it was
//! returned. Leaves out the rest of the events (see `event.rs`, `event_v1.rs`) and where the
//! values come from (`crate::auth`).

use serde_json::{json, Map, Value};

use crate::auth::{Identity, JsonObject, Principal};

/// 2.0's `requestContext.authorizer`, or `None` (no authorizer admitted the request).
pub(super) fn v2(principal: Option<&Principal>) -> Option<Value> {
    let p = principal?;
    Some(match &p.identity {
        Identity::Jwt { claims, scopes } => json!({
            "jwt": { "claims": string_claims(claims), "scopes": scopes_json(scopes) }
        }),
        Identity::Lambda { context } => json!({ "lambda": Value::Object(context.clone()) }),
        Identity::Iam {
            access_key,
            user_arn,
            account_id,
        } => json!({
            "iam": {
                "accessKey": &**access_key,
                "accountId": &**account_id,
                "callerId": p.identity_var("caller"),
                "cognitoIdentity": null,
                "principalOrgId": null,
                "userArn": &**user_arn,
                "userId": p.identity_var("user"),
            }
        }),
    })
}

/// 1.0's `requestContext.authorizer`.
pub(super) fn v1(principal: Option<&Principal>) -> Value {
    let none = || json!({ "claims": null, "scopes": null });
    let Some(p) = principal else {
        return none();
    };
    match &p.identity {
        Identity::Jwt { claims, scopes } => json!({
            "claims": string_claims(claims),
            "scopes": scopes_json(scopes),
        }),
        Identity::Lambda { context } => {
            let mut m = context.clone();
            m.insert("principalId".into(), Value::String(p.id.to_string()));
            Value::Object(m)
        }
        Identity::Iam { .. } => none(),
    }
}

/// 1.0's `requestContext.identity` members an IAM caller fills (`null` otherwise).
#[derive(Default)]
pub(super) struct V1Identity<'a> {
    pub access_key: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub caller: Option<&'a str>,
    pub user: Option<&'a str>,
    pub user_arn: Option<&'a str>,
}

impl<'a> V1Identity<'a> {
    pub(super) fn of(principal: Option<&'a Principal>) -> V1Identity<'a> {
        let Some(p) = principal else {
            return V1Identity::default();
        };
        V1Identity {
            access_key: p.identity_var("accessKey"),
            account_id: p.identity_var("accountId"),
            caller: p.identity_var("caller"),
            user: p.identity_var("user"),
            user_arn: p.identity_var("userArn"),
        }
    }
}

/// The scopes as a JSON array; `null` when the token granted none.
fn scopes_json(scopes: &[Box<str>]) -> Value {
    if scopes.is_empty() {
        return Value::Null;
    }
    Value::Array(
        scopes
            .iter()
            .map(|s| Value::String(s.to_string()))
            .collect(),
    )
}

/// Every claim as a string (`null` claims are left out).
fn string_claims(claims: &JsonObject) -> Value {
    let m: Map<String, Value> = claims
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), Value::String(claim_text(v))))
        .collect();
    Value::Object(m)
}

fn claim_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(claim_text).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
