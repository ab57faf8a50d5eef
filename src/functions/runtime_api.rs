//! The Lambda Runtime API (2018-06-01) one function process talks to.
//!
//! Owns the per-process listener (`AWS_LAMBDA_RUNTIME_API`, loopback, one per process so the
//! address alone says which process calls) and its connections: `GET
//! /2018-06-01/runtime/invocation/next` long-polls until the service hands the process an
//! invocation (the `Lambda-Runtime-*` fields and the event), `POST
//! .../invocation/{id}/response` and `.../invocation/{id}/error` answer it (202; an id that is
//! not the one it runs now: 400 `InvalidRequestID`, which is also what a response after the
//! deadline gets: that invocation was answered already), `POST /2018-06-01/runtime/init/error`
//! reports a failed start (202; the process is then killed). Unknown paths get 404, bodies over
//! [`MAX_PAYLOAD_BYTES`] 413. Leaves out what the answers mean (see [`super::service`]).
//!
//! Data flow: the service creates the listener before the process, spawns [`serve`] with the
//! process's [`Mailbox`]; the mailbox carries the handed-out invocation and wakes a parked
//! `next`; closing it (the process was killed or reaped) ends `next` and the accept loop.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::http::{Conn, ReadError, Reply, Request};
use super::scheduler::SandboxId;
use super::service::{Outcome, Service};
use super::signal::{race, First, Wake};
use crate::config::functions::MAX_PAYLOAD_BYTES;
use crate::http::{HttpError, Method};
use crate::runtime::CatchUnwind;

/// The Runtime API's path prefix.
pub const PREFIX: &str = "/2018-06-01/runtime/";
/// How long accept backs off after an error (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// Connections one process may hold open to its Runtime API at once (a runtime uses one or
/// two); beyond, the listener stops accepting until one ends.
pub const MAX_CONNECTIONS: usize = 4;
/// How long a Runtime API connection may sit idle between requests before it is closed (a
/// parked `next` is not idle).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The answer to a runtime posting a response over [`MAX_PAYLOAD_BYTES`], as AWS's Runtime
/// API gives it (the limit it names is Lambda's, counted with its envelope).
pub const TOO_LARGE_BODY: &str = r#"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#;
/// The function error an invocation is answered with when its response was too large.
pub const RESPONSE_TOO_LARGE_TYPE: &str = "Function.ResponseSizeTooLarge";

/// An invocation handed to a process, as its `invocation/next` returns it.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub request_id: String,
    pub deadline_ms: u64,
    pub event: Bytes,
    pub function_arn: String,
    pub trace_id: String,
}

/// What a process's Runtime API connections share with the service.
#[derive(Default)]
pub struct Mailbox {
    /// The invocation handed out and not yet taken by `next`.
    pub assigned: RefCell<Option<Assigned>>,
    /// Woken on assignment and on close.
    pub work: Wake,
    /// Woken on close (the accept loop).
    pub gone: Wake,
    closed: Cell<bool>,
    /// `next` has been called at least once.
    pub started: Cell<bool>,
}

impl Mailbox {
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub fn close(&self) {
        self.closed.set(true);
        self.work.wake();
        self.gone.wake();
    }
}

/// Accepts the process's connections until its mailbox closes.
pub async fn serve(
    listener: monoio::net::TcpListener,
    svc: Rc<Service>,
    sb: SandboxId,
    mailbox: Rc<Mailbox>,
) {
    let open = Rc::new(super::signal::Count::default());
    while !mailbox.is_closed() {
        if open.get() >= MAX_CONNECTIONS {
            // full: accept again once one ends (or the process is gone)
            let _ = race(open.changed(), gone(&mailbox)).await;
            continue;
        }
        match race(listener.accept(), gone(&mailbox)).await {
            First::Left(Ok((tcp, _))) => {
                let conn = Conn::new(tcp, MAX_PAYLOAD_BYTES);
                let held = open.hold();
                let task = connection(conn, svc.clone(), sb, mailbox.clone());
                monoio::spawn(CatchUnwind(async move {
                    task.await;
                    drop(held);
                }));
            }
            First::Left(Err(_)) => monoio::time::sleep(ACCEPT_BACKOFF).await,
            First::Right(()) => {}
        }
    }
}

/// Returns once the mailbox is closed (the process was killed or reaped).
async fn gone(mailbox: &Mailbox) {
    while !mailbox.is_closed() {
        mailbox.gone.wait().await;
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Call<'a> {
    Next,
    Response(&'a str),
    Error(&'a str),
    InitError,
    NotFound,
    WrongMethod,
}

fn route(method: Method, path: &[u8]) -> Call<'_> {
    let Some(rest) = std::str::from_utf8(path)
        .ok()
        .and_then(|p| p.strip_prefix(PREFIX))
    else {
        return Call::NotFound;
    };
    let call = if rest == "invocation/next" {
        Call::Next
    } else if rest == "init/error" {
        Call::InitError
    } else if let Some(id) = rest
        .strip_prefix("invocation/")
        .and_then(|r| r.strip_suffix("/response"))
    {
        Call::Response(id)
    } else if let Some(id) = rest
        .strip_prefix("invocation/")
        .and_then(|r| r.strip_suffix("/error"))
    {
        Call::Error(id)
    } else {
        return Call::NotFound;
    };
    let want = if call == Call::Next {
        Method::Get
    } else {
        Method::Post
    };
    if method == want {
        call
    } else {
        Call::WrongMethod
    }
}

async fn connection(mut conn: Conn, svc: Rc<Service>, sb: SandboxId, mailbox: Rc<Mailbox>) {
    loop {
        // the service stopping or the process gone ends the connection; dropping a read
        // loses nothing (it waits for readiness, then reads synchronously)
        let ending = race(svc.closed.wait(), gone(&mailbox));
        let read = match race(read_routed(&mut conn), ending).await {
            First::Left(r) => r,
            First::Right(_) => return,
        };
        let req = match read {
            Ok(r) => r,
            Err((_, ReadError::Closed)) => return,
            Err((Some(id), ReadError::Http(HttpError::BodyTooLarge))) => {
                // the invocation is answered as a function error, the runtime gets AWS's 413
                let body = serde_json::json!({
                    "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                    "errorType": RESPONSE_TOO_LARGE_TYPE,
                })
                .to_string();
                let outcome = Outcome::FunctionError {
                    body: Bytes::from(body),
                    error_type: RESPONSE_TOO_LARGE_TYPE.into(),
                };
                svc.respond(sb, &id, outcome);
                let reply = Reply {
                    close: true,
                    ..Reply::json(413, TOO_LARGE_BODY)
                };
                conn.write(&reply).await;
                return;
            }
            Err((_, ReadError::Http(e))) => {
                conn.write(&Reply::for_error(e)).await;
                return;
            }
        };
        let mut handed = None;
        let Some(mut reply) = answer(&req, &svc, sb, &mailbox, &mut handed).await else {
            return;
        };
        reply.close |= !req.head.keep_alive;
        if !conn.write(&reply).await {
            // a `next` whose runtime hung up before it got its invocation: the invocation is
            // still the process's to run (unless answered meanwhile), so it goes back to the
            // mailbox for the runtime's next `next`
            if let Some(a) = handed.filter(|_| reply.status == 200) {
                if !mailbox.is_closed() && svc.runs(sb, &a.request_id) {
                    *mailbox.assigned.borrow_mut() = Some(a);
                    mailbox.work.wake();
                }
            }
            return;
        }
    }
}

/// Reads one request: the head (after up to [`IDLE_TIMEOUT`] idle), then its body. A body
/// that fails after the head said it posts an invocation's response names that invocation.
async fn read_routed(conn: &mut Conn) -> Result<Request, (Option<String>, ReadError)> {
    let head = conn
        .read_head(Some(IDLE_TIMEOUT))
        .await
        .map_err(|e| (None, e))?;
    match conn.read_body(&head).await {
        Ok(body) => Ok(Request { head, body }),
        Err(e) => {
            let id = match route(head.method_kind, head.path_bytes()) {
                Call::Response(id) => Some(id.to_owned()),
                _ => None,
            };
            Err((id, e))
        }
    }
}

fn accepted() -> Reply {
    Reply::json(202, r#"{"status":"OK"}"#)
}

/// The answer to one request; `None`: close without one (the process is gone).
/// `handed`: the invocation a `next` returned, kept in case the reply cannot be written.
async fn answer(
    req: &Request,
    svc: &Rc<Service>,
    sb: SandboxId,
    mb: &Mailbox,
    handed: &mut Option<Assigned>,
) -> Option<Reply> {
    let head = &req.head;
    let invalid_id = || {
        Reply::json(
            400,
            r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
        )
    };
    Some(match route(head.method_kind, head.path_bytes()) {
        Call::Next => {
            // every call: the first ends the process's start, each makes it dispatchable
            // again after its previous answer
            mb.started.set(true);
            svc.next_called(sb);
            loop {
                if mb.is_closed() {
                    return None;
                }
                let taken = mb.assigned.borrow_mut().take();
                if let Some(a) = taken {
                    let reply = Reply::json(200, a.event.clone())
                        .field("lambda-runtime-aws-request-id", a.request_id.clone())
                        .field("lambda-runtime-deadline-ms", a.deadline_ms.to_string())
                        .field(
                            "lambda-runtime-invoked-function-arn",
                            a.function_arn.clone(),
                        )
                        .field("lambda-runtime-trace-id", a.trace_id.clone());
                    *handed = Some(a);
                    break reply;
                }
                mb.work.wait().await;
            }
        }
        Call::Response(id) => {
            if svc.respond(sb, id, Outcome::Payload(req.body.clone())) {
                accepted()
            } else {
                invalid_id()
            }
        }
        Call::Error(id) => {
            let error_type = head
                .header("lambda-runtime-function-error-type")
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_else(|| "Unhandled".into());
            let outcome = Outcome::FunctionError {
                body: req.body.clone(),
                error_type,
            };
            if svc.respond(sb, id, outcome) {
                accepted()
            } else {
                invalid_id()
            }
        }
        Call::InitError => {
            svc.init_error(sb, &req.body);
            accepted()
        }
        Call::NotFound => Reply::json(
            404,
            r#"{"errorMessage":"Not found","errorType":"NotFound"}"#,
        ),
        Call::WrongMethod => Reply::json(
            405,
            r#"{"errorMessage":"Method not allowed","errorType":"MethodNotAllowed"}"#,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        fn r(m: Method, p: &str) -> Call<'_> {
            route(m, p.as_bytes())
        }
        assert_eq!(
            r(Method::Get, "/2018-06-01/runtime/invocation/next"),
            Call::Next
        );
        assert_eq!(
            r(
                Method::Post,
                "/2018-06-01/runtime/invocation/abc-1/response"
            ),
            Call::Response("abc-1")
        );
        assert_eq!(
            r(Method::Post, "/2018-06-01/runtime/invocation/abc-1/error"),
            Call::Error("abc-1")
        );
        assert_eq!(
            r(Method::Post, "/2018-06-01/runtime/init/error"),
            Call::InitError
        );
        assert_eq!(
            r(Method::Post, "/2018-06-01/runtime/invocation/next"),
            Call::WrongMethod
        );
        assert_eq!(r(Method::Get, "/2018-06-01/runtime/other"), Call::NotFound);
        assert_eq!(r(Method::Get, "/"), Call::NotFound);
    }
}
