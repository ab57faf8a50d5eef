//! What a request authorizer is sent (API Gateway's REQUEST authorizer payloads 2.0 and 1.0)
//! and what it answers (simple responses, IAM policies with `principalId` and `context`):
//! sans-IO.
//!
//! Owns: [`payload`] (the request, as the Lambda event of the same format describes it —
//! headers, query, cookies, path parameters and `requestContext` come from
//! `crate::lambda::event`, so an authorizer and a function see the same values — less the
//! body, plus the authorizer's own members), [`route_arn`] (the ARN a policy is evaluated
//! against), [`parse_answer`] (an answer → [`Answer`], or what is malformed), and
//! [`forwarded`] (a `url` endpoint's 401 / 403 as the client gets it). Leaves out:
//! reading the identity sources and calling anything (see [`super::request`]) and evaluating
//! policies (see [`super::iam_policy`]).
//!
//! Shapes, as AWS documents them ("Working with AWS Lambda authorizers for HTTP APIs"):
//! - 2.0: `version: "2.0"`, `type: "REQUEST"`, `routeArn`, `identitySource` (an array of the
//!   values, in `identity_sources` order), `routeKey`, `rawPath`, `rawQueryString`, `cookies`,
//!   `headers`, `queryStringParameters`, `requestContext`, `pathParameters`, `stageVariables`.
//! - 1.0: `version: "1.0"`, `type: "REQUEST"`, `methodArn`, `identitySource` (the values
//!   joined with `,`), `authorizationToken` (the same), `resource`, `path`, `httpMethod`,
//!   `headers` / `multiValueHeaders`, `queryStringParameters` /
//!   `multiValueQueryStringParameters`, `requestContext`, `pathParameters`, `stageVariables`.
//! - The body is never sent (API Gateway does not send it to authorizers); `content-length`
//!   among the headers is the request's own field, as received.
//! - Answers: with simple responses, `{"isAuthorized": bool, "context": {...}}`; otherwise an
//!   IAM policy `{"principalId": "...", "policyDocument": {...}, "context": {...}}`. `context`
//!   is optional (an object; `null` counts as absent); 1.0 context values must be strings,
//!   numbers or booleans (REST APIs' rule). Anything else is malformed (→ 500).

use bytes::Bytes;
use serde_json::Value;

use super::iam_policy::Policy;
use super::JsonObject;
use crate::config::PayloadFormat;
use crate::lambda::EventInput;

/// The region in ARNs tollgate builds (there is no AWS region for a self-hosted gateway; the
/// ARNs keep AWS's shape so that policies written for API Gateway match).
pub const DEFAULT_REGION: &str = "us-east-1";
/// The most bytes of an authorizer's answer read.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// `arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/METHOD/PATH`: the route's ARN for the
/// request (`PATH` is the request path without its leading `/`).
pub fn route_arn(account: &str, api_id: &str, stage: &str, method: &str, path: &str) -> String {
    let path = path.strip_prefix('/').unwrap_or(path);
    format!("arn:aws:execute-api:{DEFAULT_REGION}:{account}:{api_id}/{stage}/{method}/{path}")
}

/// The JSON payload an authorizer of `format` gets for the request `event` describes
/// (`event.body` is not read: pass an empty one), with the route's ARN and the identity
/// source values.
pub fn payload(
    format: PayloadFormat,
    event: &EventInput<'_>,
    arn: &str,
    identity: &[String],
) -> Vec<u8> {
    let bytes = crate::lambda::event(format, event);
    let Ok(Value::Object(mut p)) = serde_json::from_slice::<Value>(&bytes) else {
        return bytes;
    };
    p.remove("body");
    p.remove("isBase64Encoded");
    // the request's own content-length, not the length of the (unsent) body
    let length = event
        .head
        .header("content-length")
        .map(|v| String::from_utf8_lossy(v).into_owned());
    for key in ["headers", "multiValueHeaders"] {
        if let Some(Value::Object(h)) = p.get_mut(key) {
            h.remove("content-length");
            if let Some(len) = &length {
                let v = match key {
                    "headers" => Value::String(len.clone()),
                    _ => Value::Array(vec![Value::String(len.clone())]),
                };
                h.insert("content-length".into(), v);
            }
        }
    }
    p.insert("type".into(), Value::String("REQUEST".into()));
    match format {
        PayloadFormat::V2 => {
            p.insert("routeArn".into(), Value::String(arn.into()));
            let values = identity.iter().cloned().map(Value::String).collect();
            p.insert("identitySource".into(), Value::Array(values));
        }
        PayloadFormat::V1 => {
            p.insert("methodArn".into(), Value::String(arn.into()));
            let joined = Value::String(identity.join(","));
            p.insert("identitySource".into(), joined.clone());
            p.insert("authorizationToken".into(), joined);
        }
    }
    serde_json::to_vec(&Value::Object(p)).unwrap_or(bytes)
}

/// What an authorizer decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A simple response's `isAuthorized`: it holds for every route of the authorizer.
    Simple(bool),
    /// An IAM policy, evaluated against each request's route ARN.
    Policy(Policy),
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `principalId` (empty for simple responses).
    pub principal_id: String,
    pub context: JsonObject,
    pub decision: Decision,
}

/// Reads an answer (`simple`: the authorizer has `simple_responses`); `Err` says what is
/// malformed (for the access log).
pub fn parse_answer(body: &[u8], format: PayloadFormat, simple: bool) -> Result<Answer, String> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    let Value::Object(mut a) = v else {
        return Err("answer is not a JSON object".into());
    };
    let context = match a.remove("context") {
        None | Some(Value::Null) => JsonObject::new(),
        Some(Value::Object(c)) => c,
        Some(_) => return Err("context is not an object".into()),
    };
    if format == PayloadFormat::V1 {
        if let Some((k, _)) = context
            .iter()
            .find(|(_, v)| !(v.is_string() || v.is_number() || v.is_boolean()))
        {
            return Err(format!(
                "context.{k}: payload format 1.0 context values are strings, numbers or booleans"
            ));
        }
    }
    if simple {
        let Some(Value::Bool(ok)) = a.get("isAuthorized") else {
            return Err("a simple response needs isAuthorized: true or false".into());
        };
        return Ok(Answer {
            principal_id: String::new(),
            context,
            decision: Decision::Simple(*ok),
        });
    }
    let principal_id = match a.get("principalId") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err("an IAM policy response needs principalId (a string)".into()),
    };
    let doc = a
        .get("policyDocument")
        .ok_or("an IAM policy response needs policyDocument")?;
    let policy = Policy::parse(doc)?;
    Ok(Answer {
        principal_id,
        context,
        decision: Decision::Policy(policy),
    })
}

/// A `url` endpoint's 401 / 403 as the client gets it: the status, the endpoint's body (at most
/// `MAX_ANSWER_BYTES`, read like an answer; a larger one fails the read: 500) with its
/// `content-type` (API Gateway's JSON body when it sent none), and on a 401 its `www-authenticate` (RFC 9110 §11.6.1: a 401
/// carries the challenge; tollgate's own is `Bearer`). Field values come from a parsed
/// response head: no CR, LF or NUL can be in them.
pub fn forwarded(rh: &crate::http::ResponseHead, body: &[u8]) -> crate::config::MockResponse {
    let status = rh.status;
    let text = |name| {
        rh.header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .filter(|v| !v.is_empty())
    };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\n",
        crate::error::reason_phrase(status)
    );
    let body = if body.is_empty() {
        // nothing to forward: API Gateway's body for the status
        let m = if status == 401 {
            "Unauthorized"
        } else {
            "Forbidden"
        };
        head.push_str("content-type: application/json\r\n");
        Bytes::from(serde_json::json!({ "message": m }).to_string())
    } else {
        // its type as sent; none when it sent none (RFC 9110 §8.3: the recipient may sniff
        // or assume application/octet-stream, as it would from the endpoint itself)
        if let Some(ct) = text("content-type") {
            head.push_str(&format!("content-type: {ct}\r\n"));
        }
        Bytes::copy_from_slice(body)
    };
    if status == 401 {
        let challenge = text("www-authenticate").unwrap_or("Bearer");
        head.push_str(&format!("www-authenticate: {challenge}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n", body.len()));
    crate::config::MockResponse {
        status,
        head: Bytes::from(head),
        body,
        present: crate::http::Present::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, format: PayloadFormat, simple: bool) -> Result<Answer, String> {
        parse_answer(v.to_string().as_bytes(), format, simple)
    }

    /// A POST with a body: the body is not sent, `content-length` is the request's own,
    /// and each format has its authorizer members beside the event's.
    #[test]
    fn payloads_leave_the_body_out_and_add_the_authorizer_members() {
        let raw = "POST /pets/7?a=1 HTTP/1.1\r\nhost: api.example\r\nauthorization: tok\r\n\
                   content-type: application/json\r\ncontent-length: 11\r\n\r\n";
        let mut buf = bytes::BytesMut::from(raw.as_bytes());
        let head = match crate::http::parse_request(&mut buf, &crate::http::Limits::default()) {
            Ok(Some(h)) => h,
            other => panic!("{other:?}"),
        };
        let facts = crate::facts::ConnFacts::plain(
            "192.0.2.1:50000".parse().unwrap(),
            "10.0.0.1:8080".parse().unwrap(),
        );
        let params: [(&str, &[u8]); 1] = [("id", b"7")];
        let event = EventInput {
            head: &head,
            body: &[],
            params: &params,
            route_key: "POST /pets/{id}",
            stage: "$default",
            stage_variables: &[],
            request_id: b"rid-1",
            facts: &facts,
            client_ip: None,
            now: std::time::UNIX_EPOCH,
            api_id: "tollgate",
            account_id: "000000000000",
            principal: None,
        };
        let arn = route_arn("000000000000", "tollgate", "$default", "POST", "/pets/7");
        let ids = ["tok".to_string(), "1".to_string()];
        let v2: Value =
            serde_json::from_slice(&payload(PayloadFormat::V2, &event, &arn, &ids)).unwrap();
        assert_eq!(v2["version"], "2.0");
        assert_eq!(v2["type"], "REQUEST");
        assert_eq!(v2["routeArn"], arn);
        assert_eq!(v2["identitySource"], json!(["tok", "1"]));
        assert_eq!(v2["headers"]["content-length"], "11");
        assert_eq!(v2["pathParameters"], json!({"id": "7"}));
        assert_eq!(v2["requestContext"]["requestId"], "rid-1");
        assert!(v2.get("body").is_none() && v2.get("isBase64Encoded").is_none());
        assert!(v2.get("methodArn").is_none());
        let v1: Value =
            serde_json::from_slice(&payload(PayloadFormat::V1, &event, &arn, &ids)).unwrap();
        assert_eq!(v1["version"], "1.0");
        assert_eq!(v1["type"], "REQUEST");
        assert_eq!(v1["methodArn"], arn);
        assert_eq!(v1["identitySource"], "tok,1");
        assert_eq!(v1["authorizationToken"], "tok,1");
        assert_eq!(v1["headers"]["content-length"], "11");
        assert_eq!(v1["multiValueHeaders"]["content-length"], json!(["11"]));
        assert_eq!(v1["resource"], "/pets/{id}");
        assert!(v1.get("body").is_none() && v1.get("routeArn").is_none());
    }

    #[test]
    fn arns_have_aws_shape() {
        assert_eq!(
            route_arn("000000000000", "tollgate", "$default", "GET", "/pets/7"),
            "arn:aws:execute-api:us-east-1:000000000000:tollgate/$default/GET/pets/7"
        );
        assert_eq!(
            route_arn("1", "a", "s", "POST", "/"),
            "arn:aws:execute-api:us-east-1:1:a/s/POST/"
        );
    }

    #[test]
    fn simple_answers() {
        let a = parse(
            json!({"isAuthorized": true, "context": {"user": "ann", "n": 3, "o": {"x": 1}}}),
            PayloadFormat::V2,
            true,
        )
        .unwrap();
        assert_eq!(a.decision, Decision::Simple(true));
        assert_eq!(a.context["user"], "ann");
        assert_eq!(a.principal_id, "");
        let a = parse(json!({"isAuthorized": false}), PayloadFormat::V2, true).unwrap();
        assert_eq!(a.decision, Decision::Simple(false));
        assert!(a.context.is_empty());
        for bad in [
            json!({"isAuthorized": "true"}),
            json!({}),
            json!({"isAuthorized": true, "context": [1]}),
            json!([true]),
        ] {
            assert!(
                parse(bad.clone(), PayloadFormat::V2, true).is_err(),
                "{bad}"
            );
        }
        assert!(parse_answer(b"not json", PayloadFormat::V2, true).is_err());
        assert!(parse_answer(&vec![b' '; MAX_ANSWER_BYTES + 1], PayloadFormat::V2, true).is_err());
    }

    #[test]
    fn policy_answers() {
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]});
        let a = parse(
            json!({"principalId": "u-1", "policyDocument": doc, "context": {"k": "v", "b": true}}),
            PayloadFormat::V1,
            false,
        )
        .unwrap();
        assert_eq!(a.principal_id, "u-1");
        assert!(matches!(&a.decision, Decision::Policy(p) if p.allows("arn:x")));
        // a simple answer where a policy is expected, no principal, a bad document
        for bad in [
            json!({"isAuthorized": true}),
            json!({"policyDocument": doc}),
            json!({"principalId": 1, "policyDocument": doc}),
            json!({"principalId": "u", "policyDocument": {"Statement": "x"}}),
        ] {
            assert!(
                parse(bad.clone(), PayloadFormat::V2, false).is_err(),
                "{bad}"
            );
        }
        // 1.0 context values are scalars
        let nested = json!({"principalId": "u", "policyDocument": doc, "context": {"o": {"x": 1}}});
        assert!(parse(nested.clone(), PayloadFormat::V1, false).is_err());
        assert!(parse(nested, PayloadFormat::V2, false).is_ok());
    }
}
