//! What an Invoke API answer means: the function's payload, or why there is none.
//!
//! Owns reading the answer of `POST /2015-03-31/functions/{name}/invocations` (AWS Lambda's,
//! or tollgate's own functions service, which answers the same way) into [`Invoked`]:
//! - 2xx without `X-Amz-Function-Error`: the payload.
//! - 2xx with `X-Amz-Function-Error` (`Unhandled`, `Handled`): the function failed; the body is
//!   `{"errorMessage", "errorType", ...}`. A timeout is such an error too, recognised by
//!   `errorType: "Sandbox.Timedout"`, or, when there is no `errorType` (older runtimes send
//!   only the message), an `errorMessage` containing `Task timed out after`. Otherwise the error type (the body's
//!   `errorType`, else the header's value) is kept for the access log.
//! - 429 (`TooManyRequestsException`: concurrency, or a local function's full queue):
//!   throttled. 413 (`RequestEntityTooLargeException`): too large.
//! - Anything else: a service error with its status and error type (`x-amzn-ErrorType`, up to
//!   its first `:` as AWS appends a URL there; else the body's `__type` or `Type`).
//!
//! Leaves out the exchange itself and what each outcome becomes for the client (see
//! `crate::integration::lambda` and `GatewayError::Function`).

use bytes::Bytes;
use serde_json::Value;

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

/// `errorType` of a function that ran past its deadline.
pub const TIMEOUT_ERROR_TYPE: &str = "Sandbox.Timedout";
/// What a timed-out function's `errorMessage` says.
pub const TIMEOUT_MESSAGE: &str = "Task timed out after";
/// The most of an error type kept for the log (a function chooses its `errorType`).
pub const MAX_ERROR_TYPE_BYTES: usize = 256;

/// Classifies an Invoke API response: its status, `X-Amz-Function-Error` and
/// `x-amzn-ErrorType` fields, and body.
pub fn classify(
    status: u16,
    function_error: Option<&[u8]>,
    error_type: Option<&[u8]>,
    body: Bytes,
) -> Invoked {
    match status {
        200..=299 => match function_error {
            None => Invoked::Payload(body),
            Some(header) => function_failure(header, &body),
        },
        429 => Invoked::Throttled,
        413 => Invoked::TooLarge,
        _ => {
            let kind = error_type
                .map(|t| {
                    let t = t.split(|&b| b == b':').next().unwrap_or_default();
                    text(t)
                })
                .filter(|t| !t.is_empty())
                .or_else(|| {
                    let v: Value = serde_json::from_slice(&body).ok()?;
                    let t = v.get("__type").or_else(|| v.get("Type"))?.as_str()?;
                    Some(text(t.as_bytes()))
                })
                .unwrap_or_else(|| "unknown".to_owned());
            Invoked::ServiceError(status, kind)
        }
    }
}

/// A 2xx with `X-Amz-Function-Error`: a timeout, or the function's error type.
fn function_failure(header: &[u8], body: &[u8]) -> Invoked {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| v.as_ref().and_then(|v| v.get(name)).and_then(Value::as_str);
    let error_type = field("errorType");
    // the message alone counts only from a runtime that sends no type: a function's own
    // error whose message mentions a timeout (an HTTP call it made) stays a function error
    let timed_out = match error_type {
        Some(t) => t == TIMEOUT_ERROR_TYPE,
        None => field("errorMessage").is_some_and(|m| m.contains(TIMEOUT_MESSAGE)),
    };
    if timed_out {
        return Invoked::TimedOut;
    }
    let kind = match error_type {
        Some(t) if !t.is_empty() => text(t.as_bytes()),
        _ => text(header),
    };
    Invoked::FunctionError(kind)
}

/// Log text: lossy UTF-8, controls replaced, at most [`MAX_ERROR_TYPE_BYTES`].
fn text(b: &[u8]) -> String {
    let b = b.get(..MAX_ERROR_TYPE_BYTES).unwrap_or(b);
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16, fe: Option<&str>, et: Option<&str>, body: &str) -> Invoked {
        classify(
            status,
            fe.map(str::as_bytes),
            et.map(str::as_bytes),
            Bytes::copy_from_slice(body.as_bytes()),
        )
    }

    #[test]
    fn success_is_the_payload() {
        assert_eq!(
            c(200, None, None, r#"{"statusCode":201}"#),
            Invoked::Payload(Bytes::from_static(br#"{"statusCode":201}"#))
        );
        // an empty payload is still a payload (reply decides it is malformed)
        assert_eq!(c(200, None, None, ""), Invoked::Payload(Bytes::new()));
    }

    #[test]
    fn function_errors_carry_their_type() {
        let body = r#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#;
        assert_eq!(
            c(200, Some("Unhandled"), None, body),
            Invoked::FunctionError("ValueError".into())
        );
        let crash = r#"{"errorType":"Runtime.ExitError","errorMessage":"exit status 1"}"#;
        assert_eq!(
            c(200, Some("Unhandled"), None, crash),
            Invoked::FunctionError("Runtime.ExitError".into())
        );
        // no usable body: the header's value
        assert_eq!(
            c(200, Some("Handled"), None, "not json"),
            Invoked::FunctionError("Handled".into())
        );
        assert_eq!(
            c(200, Some("Unhandled"), None, r#"{"errorType":""}"#),
            Invoked::FunctionError("Unhandled".into())
        );
    }

    #[test]
    fn timeouts_are_recognised_by_type_or_message() {
        let local = r#"{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: 1 Error: Task timed out after 3.00 seconds"}"#;
        assert_eq!(c(200, Some("Unhandled"), None, local), Invoked::TimedOut);
        let old =
            r#"{"errorMessage":"2024-01-01T00:00:00.000Z 1 Task timed out after 3.00 seconds"}"#;
        assert_eq!(c(200, Some("Unhandled"), None, old), Invoked::TimedOut);
        // the same text without the error header is the function's own payload
        assert!(matches!(c(200, None, None, old), Invoked::Payload(_)));
        // with a type of its own, the message is the function's: an error, not a timeout
        let own = r#"{"errorType":"UpstreamError","errorMessage":"Task timed out after 5 s calling the bank"}"#;
        assert_eq!(
            c(200, Some("Unhandled"), None, own),
            Invoked::FunctionError("UpstreamError".into())
        );
    }

    #[test]
    fn service_answers() {
        let throttled = r#"{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#;
        assert_eq!(
            c(429, None, Some("TooManyRequestsException"), throttled),
            Invoked::Throttled
        );
        assert_eq!(
            c(413, None, Some("RequestEntityTooLargeException"), "{}"),
            Invoked::TooLarge
        );
        assert_eq!(
            c(
                404,
                None,
                Some("ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.lambda/"),
                "{}"
            ),
            Invoked::ServiceError(404, "ResourceNotFoundException".into())
        );
        assert_eq!(
            c(503, None, None, r#"{"__type":"ServiceException"}"#),
            Invoked::ServiceError(503, "ServiceException".into())
        );
        assert_eq!(
            c(502, None, None, "<html>"),
            Invoked::ServiceError(502, "unknown".into())
        );
        // a 3xx is no success either
        assert_eq!(
            c(302, None, Some("\r\nX"), ""),
            Invoked::ServiceError(302, "??X".into())
        );
    }

    #[test]
    fn error_types_are_bounded_and_lossy() {
        let long = "E".repeat(10_000);
        let body = format!(r#"{{"errorType":"{long}"}}"#);
        let Invoked::FunctionError(t) = c(200, Some("Unhandled"), None, &body) else {
            panic!("not a function error");
        };
        assert_eq!(t.len(), MAX_ERROR_TYPE_BYTES);
        let Invoked::ServiceError(_, t) = classify(500, None, Some(b"Bad\xffType"), Bytes::new())
        else {
            panic!("not a service error");
        };
        assert_eq!(t, "Bad\u{fffd}Type");
    }
}
