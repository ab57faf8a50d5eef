//! The internal Lambda Invoke API: how workers (and the admin relay) invoke local functions.
//!
//! Owns the loopback listener's connections (HTTP/1.1 keep-alive: each worker keeps pooled
//! connections here as it does to an origin) and the Invoke API's answers, exactly as AWS
//! Lambda gives them, so one classifier reads local and remote answers alike:
//! `POST /2015-03-31/functions/{name}/invocations` (the name, or an ARN ending in it,
//! percent-encoded as the SDKs send it), `X-Amz-Invocation-Type` `RequestResponse` (or absent)
//! runs it, `DryRun` answers 204, `Event` (asynchronous) is refused with 400; `x-request-id`
//! labels the invocation's log lines. Answers carry `x-amzn-RequestId` (a fresh UUID v4):
//! 200 with the payload (`X-Amz-Executed-Version: $LATEST`); 200 with `X-Amz-Function-Error:
//! Unhandled` and `{errorMessage, errorType, ...}` for a function error, a crash (`Runtime.ExitError`), a
//! failed start (`Runtime.InitError`) or a timeout (`Sandbox.Timedout`); 429
//! `TooManyRequestsException` (concurrency and queue full), 413
//! `RequestEntityTooLargeException`, 404 `ResourceNotFoundException`, 400
//! `InvalidRequestContentException` (not JSON), 503 `ServiceException` (stopping). Leaves out
//! scheduling (see [`super::service`]).

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::http::{Conn, ReadError, Reply, Request};
use super::scheduler::Failure;
use super::service::{Outcome, Refusal, Service};
use super::signal::{race, First};
use super::INVOKE_PREFIX;
use crate::config::functions::MAX_PAYLOAD_BYTES;
use crate::http::{HttpError, Method};
use crate::runtime::CatchUnwind;

/// How long a connection may sit idle here between requests: no limit. The workers' pools own
/// the lifetime of their connections (they close idle ones after the pool's `idle_timeout`);
/// if the service closed one instead, a request sent on it at that moment would fail, and an
/// invocation (a POST) is never replayed. Only loopback clients reach this listener.
pub const INVOKE_IDLE: Option<Duration> = None;
/// Longest `x-request-id` kept as an invocation's log label.
const MAX_LABEL: usize = 200;
/// How long accept backs off after an error (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Connections the internal Invoke API holds open at once (the workers' pools and the admin
/// relay); beyond, the listener stops accepting until one ends.
pub const MAX_CONNECTIONS: usize = 4096;

/// Accepts connections until the thread ends.
pub async fn serve(listener: monoio::net::TcpListener, svc: Rc<Service>) {
    let open = Rc::new(super::signal::Count::default());
    loop {
        if open.get() >= MAX_CONNECTIONS {
            match race(open.changed(), svc.closed.wait()).await {
                First::Left(()) => continue,
                First::Right(()) => return,
            }
        }
        match race(listener.accept(), svc.closed.wait()).await {
            First::Left(Ok((tcp, _))) => {
                let conn = Conn::new(tcp, MAX_PAYLOAD_BYTES);
                let held = open.hold();
                let task = connection(conn, svc.clone());
                monoio::spawn(CatchUnwind(async move {
                    task.await;
                    drop(held);
                }));
            }
            First::Left(Err(_)) => monoio::time::sleep(ACCEPT_BACKOFF).await,
            First::Right(()) => return,
        }
    }
}

async fn connection(mut conn: Conn, svc: Rc<Service>) {
    loop {
        // Dropping a read on close loses nothing: it waits for readiness and reads
        // synchronously, and the connection closes anyway.
        let read = match race(conn.read_request(INVOKE_IDLE), svc.closed.wait()).await {
            First::Left(r) => r,
            First::Right(()) => return,
        };
        let req = match read {
            Ok(r) => r,
            Err(ReadError::Closed) => return,
            Err(ReadError::Http(HttpError::BodyTooLarge)) => {
                let r = aws_error(
                    413,
                    "RequestEntityTooLargeException",
                    &format!("Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation"),
                    &super::ids::uuid_v4(),
                );
                conn.write(&Reply { close: true, ..r }).await;
                return;
            }
            Err(ReadError::Http(e)) => {
                conn.write(&Reply::for_error(e)).await;
                return;
            }
        };
        let mut reply = answer(&req, &svc).await;
        reply.close |= !req.head.keep_alive;
        if !conn.write(&reply).await {
            return;
        }
    }
}

/// An AWS error answer: `x-amzn-ErrorType` and `{"Type":"User","message":...}`.
fn aws_error(status: u16, error_type: &'static str, message: &str, request_id: &str) -> Reply {
    let kind = if status >= 500 { "Service" } else { "User" };
    let body = serde_json::json!({ "Type": kind, "message": message }).to_string();
    Reply::json(status, body)
        .field("x-amzn-RequestId", request_id)
        .field("x-amzn-ErrorType", error_type)
}

/// The function name in an Invoke API path: `{name}` or an ARN ending in `function:{name}`
/// (percent-decoded); `None` when the path is not an invocation.
pub fn function_name(path: &[u8]) -> Option<String> {
    let rest = path.strip_prefix(INVOKE_PREFIX.as_bytes())?;
    let raw = rest.strip_suffix(b"/invocations")?;
    let decoded = super::percent_decode(raw)?;
    let name = match decoded.rsplit_once("function:") {
        Some((_, tail)) => tail.split(':').next().unwrap_or_default().to_string(),
        None => decoded,
    };
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The answer to one Invoke API request.
async fn answer(req: &Request, svc: &Rc<Service>) -> Reply {
    let head = &req.head;
    let id = super::ids::uuid_v4();
    let Some(name) = function_name(head.path_bytes()) else {
        return aws_error(404, "ResourceNotFoundException", "Unknown operation", &id);
    };
    if head.method_kind != Method::Post {
        return aws_error(405, "MethodNotAllowedException", "Use POST to invoke", &id);
    }
    match head.header("x-amz-invocation-type") {
        None | Some(b"RequestResponse") => {}
        Some(b"DryRun") => {
            return match svc.has_function(&name) {
                true => Reply::json(204, "").field("x-amzn-RequestId", id),
                false => not_found(&name, &id),
            }
        }
        Some(b"Event") => {
            return aws_error(
                400,
                "InvalidParameterValueException",
                "Asynchronous invocation (Event) is not supported for local functions",
                &id,
            )
        }
        Some(_) => {
            return aws_error(
                400,
                "InvalidParameterValueException",
                "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun",
                &id,
            )
        }
    }
    let event = if req.body.is_empty() {
        Bytes::from_static(b"{}")
    } else if serde_json::from_slice::<serde::de::IgnoredAny>(&req.body).is_err() {
        return aws_error(
            400,
            "InvalidRequestContentException",
            "Could not parse request body into json",
            &id,
        );
    } else {
        req.body.clone()
    };
    let label = head
        .request_id
        .map(|s| head.slice(s))
        .map(|v| String::from_utf8_lossy(v.get(..MAX_LABEL).unwrap_or(v)).into_owned())
        .unwrap_or_default();
    let (request_id, rx) = match svc.invoke(&name, event, label) {
        Ok(x) => x,
        Err(Refusal::NotFound) => return not_found(&name, &id),
        Err(Refusal::Throttled) => {
            let body = r#"{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#;
            return Reply::json(429, body)
                .field("x-amzn-RequestId", id)
                .field("x-amzn-ErrorType", "TooManyRequestsException");
        }
        Err(Refusal::Draining) => {
            return aws_error(
                503,
                "ServiceException",
                "The functions service is stopping",
                &id,
            )
        }
    };
    match rx.recv().await {
        Some(Outcome::Payload(p)) => Reply::json(200, p)
            .field("x-amzn-RequestId", request_id)
            .field("X-Amz-Executed-Version", "$LATEST"),
        Some(Outcome::FunctionError { body, error_type }) => {
            let body = if is_json_object(&body) {
                body
            } else {
                let msg = String::from_utf8_lossy(&body).into_owned();
                Bytes::from(
                    serde_json::json!({ "errorMessage": msg, "errorType": error_type }).to_string(),
                )
            };
            unhandled(body, &request_id)
        }
        Some(Outcome::Failed(f)) => unhandled(failure_body(&f, &request_id), &request_id),
        Some(Outcome::Stopped) | None => aws_error(
            503,
            "ServiceException",
            "The functions service stopped before the function ran",
            &request_id,
        ),
    }
}

fn not_found(name: &str, id: &str) -> Reply {
    let msg = format!(
        "Function not found: arn:aws:lambda:{}:{}:function:{name}",
        super::LOCAL_REGION,
        crate::lambda::LOCAL_ACCOUNT_ID
    );
    aws_error(404, "ResourceNotFoundException", &msg, id)
}

fn unhandled(body: Bytes, request_id: &str) -> Reply {
    Reply::json(200, body)
        .field("x-amzn-RequestId", request_id)
        .field("X-Amz-Executed-Version", "$LATEST")
        .field("X-Amz-Function-Error", "Unhandled")
}

fn is_json_object(b: &[u8]) -> bool {
    matches!(
        serde_json::from_slice::<serde_json::Value>(b),
        Ok(serde_json::Value::Object(_))
    )
}

/// The error document of an invocation the function did not answer, as Lambda words it.
pub fn failure_body(f: &Failure, request_id: &str) -> Bytes {
    let doc = match f {
        Failure::TimedOut { timeout, waited } => {
            let mut msg = format!(
                "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                timeout.as_secs_f64()
            );
            if *waited {
                msg.push_str(" (waited for a free process)");
            }
            serde_json::json!({ "errorType": "Sandbox.Timedout", "errorMessage": msg })
        }
        Failure::ExitError => serde_json::json!({
            "errorType": "Runtime.ExitError",
            "errorMessage": format!("RequestId: {request_id} Error: Runtime exited without providing a reason"),
        }),
        Failure::InitError(why) => match serde_json::from_str::<serde_json::Value>(why) {
            Ok(v @ serde_json::Value::Object(_)) if v.get("errorType").is_some() => v,
            _ => serde_json::json!({ "errorType": "Runtime.InitError", "errorMessage": why }),
        },
    };
    Bytes::from(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_paths() {
        let n = |p: &str| function_name(p.as_bytes());
        assert_eq!(
            n("/2015-03-31/functions/hello/invocations").as_deref(),
            Some("hello")
        );
        assert_eq!(
            n("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahello/invocations")
                .as_deref(),
            Some("hello")
        );
        assert_eq!(
            n("/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:hello:$LATEST/invocations")
                .as_deref(),
            Some("hello")
        );
        assert_eq!(n("/2015-03-31/functions//invocations"), None);
        assert_eq!(n("/2015-03-31/functions/a%zz/invocations"), None);
        assert_eq!(n("/2015-03-31/functions/hello"), None);
        assert_eq!(n("/other"), None);
    }

    #[test]
    fn failure_documents() {
        let t = failure_body(
            &Failure::TimedOut {
                timeout: Duration::from_millis(3000),
                waited: false,
            },
            "id-1",
        );
        assert_eq!(
            &t[..],
            br#"{"errorMessage":"RequestId: id-1 Error: Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}"#
        );
        let e = failure_body(&Failure::ExitError, "id-2");
        assert!(String::from_utf8_lossy(&e).contains(r#""errorType":"Runtime.ExitError""#));
        let i = failure_body(&Failure::InitError("no module".into()), "x");
        assert_eq!(
            &i[..],
            br#"{"errorMessage":"no module","errorType":"Runtime.InitError"}"#
        );
        let posted = r#"{"errorMessage":"bad import","errorType":"Runtime.ImportModuleError"}"#;
        let i = failure_body(&Failure::InitError(posted.into()), "x");
        assert_eq!(&i[..], posted.as_bytes());
    }
}
