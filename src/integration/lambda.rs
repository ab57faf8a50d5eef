//! The Lambda integration: a request as an event, to a function, its answer as the response.
//!
//! Owns: the worker side of a Lambda route, one code path for local and remote functions:
//! read the whole request body (the only integration that buffers: Lambda takes one JSON
//! document), build the event ([`crate::lambda::event`]), send it as one Lambda Invoke API
//! request (`POST /2015-03-31/functions/{function}/invocations`, built with
//! [`crate::client::OutboundHead`], SigV4-signed for a remote function with credentials) through
//! the function's pool, read the answer whole, classify it ([`crate::lambda::classify`]) and turn
//! a payload into the response ([`crate::lambda::reply`]). The invocation's timeout, the access
//! log's `integrationStatus` (the Invoke API's status: 200 even for a function error, as API
//! Gateway logs it), `errorMessage` (what failed, in words: [`ExchangeState::detail`]) and the
//! per-function worker metrics are set here. Leaves out: the event and answer formats
//! (`crate::lambda`), signing (`crate::aws::sigv4`), running local functions (the functions
//! service, `crate::functions`, which answers exactly as AWS's Invoke API does, so nothing here
//! knows which kind it talks to beyond the pool, the path and the signature), and mapping a
//! [`FunctionFailure`] to its status and body (`crate::error`).
//!
//! Data flow: body (≤ [`MAX_PAYLOAD_BYTES`], 413 from the session beyond) → event (≤ the same
//! limit, else 413 `TooLarge`) → Invoke request → pool: a remote function's hidden upstream
//! `function:NAME` (`w.g.upstreams[f.upstream]`, TLS for https endpoints), or this worker's pool
//! to the local service's loopback listener ([`Cx::functions`]) → response head within the
//! deadline → body ≤ [`MAX_ANSWER_BYTES`] → classify → reply → [`Handled::Respond`] with a
//! [`Response::held`]. The connection is pooled again only when the exchange left it in sync (the
//! whole answer read), as the HTTP integration does; a client that goes away meanwhile (an
//! HTTP/2 stream reset) stops the wait and the connection is dropped, not pooled.
//!
//! The invocation itself (Invoke request, pool, signature, deadline, client-gone race → the
//! answer's status and [`Invoked`]) is one function, [`invoke_function`], which request
//! authorizers (`crate::auth::request`) call too with their own event and timeout.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::{Handled, RequestCtx};
use crate::client::{self, BodyReader, BodySource, ClientCx, OutboundHead, Upstream};
use crate::config::functions::MAX_PAYLOAD_BYTES;
use crate::config::{FunctionConfig, FunctionKind, LambdaRoute};
use crate::error::{FunctionFailure, GatewayError};
use crate::exchange::ExchangeState;
use crate::http::RequestHead;
use crate::lambda::{self, EventInput, Invoked};
use crate::metrics::functions::Outcome;
use crate::response::Response;
use crate::session::Session;
use crate::transport::Stream;
use crate::worker::Cx;

/// Slack over the payload limit allowed to an Invoke API answer's body (an error document
/// wrapping a 6 MB payload is a little larger than it); a larger answer is refused as malformed.
pub const ANSWER_SLACK_BYTES: usize = 64 * 1024;
/// The largest Invoke API answer body read.
pub const MAX_ANSWER_BYTES: usize = MAX_PAYLOAD_BYTES + ANSWER_SLACK_BYTES;
/// Margin over the service's own deadline, so the service (which always answers, with
/// `Sandbox.Timedout` at the function's timeout) answers before the gateway gives up.
pub const ANSWER_MARGIN: Duration = Duration::from_secs(1);
/// The `host` field of requests to the local functions service (it listens on loopback).
pub const LOCAL_SERVICE_HOST: &str = "localhost";
/// SigV4 service name of the Lambda Invoke API.
pub const SIGNING_SERVICE: &str = "lambda";

/// Invokes the route's function and answers with what it returned.
pub async fn run<'a, S: Session>(
    w: &Cx<'_>,
    conn: &mut S,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    route: &LambdaRoute,
) -> Result<Handled<'a>, GatewayError> {
    let config = &w.g.config;
    let f = config
        .functions
        .get(route.function)
        .ok_or(GatewayError::Internal("route names an unknown function"))?;
    // the whole body, under Lambda's payload limit (413 from the session beyond it)
    let body = conn
        .read_body(w, req.head, st, &route.body, MAX_PAYLOAD_BYTES)
        .await?;
    let event = build_event(w, &*conn, req, st, route, f, &body);
    if event.len() > MAX_PAYLOAD_BYTES {
        return Err(fail(
            st,
            FunctionFailure::TooLarge,
            format!("event of {} bytes over Lambda's payload limit", event.len()),
        ));
    }
    let started = Instant::now();
    let result = invoke(w, &*conn, req, st, route, f, Bytes::from(event)).await;
    let elapsed = started.elapsed();
    st.integration = Some(elapsed);
    if w.g.record_metrics {
        w.g.metrics
            .function(route.function, outcome(&result), elapsed);
    }
    let m = result?;
    Ok(Handled::Respond(Response::held(m)))
}

/// The metrics' view of how an invocation ended.
fn outcome<T>(r: &Result<T, GatewayError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Success,
        Err(GatewayError::Function(FunctionFailure::Throttled)) => Outcome::Throttled,
        Err(GatewayError::Function(FunctionFailure::Timeout)) => Outcome::TimedOut,
        Err(GatewayError::ClientGone) => Outcome::Abandoned,
        Err(_) => Outcome::Error,
    }
}

/// The event for the route's payload format.
fn build_event<S: Session>(
    w: &Cx<'_>,
    conn: &S,
    req: &RequestCtx<'_>,
    st: &ExchangeState,
    route: &LambdaRoute,
    f: &FunctionConfig,
    body: &[u8],
) -> Vec<u8> {
    let config = &w.g.config;
    let names = config.router.param_names(req.route);
    let params: Vec<(&str, &[u8])> = names
        .iter()
        .zip(req.params.iter())
        .map(|(n, v)| (&**n, *v))
        .collect();
    let route_key = config.routes.get(req.route).map_or("$default", |r| &r.key);
    let account_id = match &f.kind {
        FunctionKind::Remote(r) => r.account.as_str(),
        FunctionKind::Local(_) => lambda::LOCAL_ACCOUNT_ID,
    };
    // the stage serving the request (its name, API and variables); top-level routes are the
    // `$default` stage's
    let dep = config.apis.deployments.get(st.served.deployment as usize);
    let stage = dep
        .and_then(|d| config.apis.stages.get(d.stage? as usize))
        .map(|s| (s.name.as_str(), s.api.as_str()));
    let vars: Vec<(&str, &str)> = dep
        .map(|d| {
            d.variables
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let input = EventInput {
        head: req.head,
        body,
        params: &params,
        route_key,
        stage: stage.map_or(lambda::DEFAULT_STAGE, |s| s.0),
        stage_variables: &vars,
        request_id: st.request_id.bytes(req.head),
        facts: conn.facts(),
        client_ip: st.client_ip.map(crate::facts::PeerIp::of),
        // the arrival: wall time now, less what the body took since the head was parsed
        now: std::time::SystemTime::now()
            .checked_sub(st.started.elapsed())
            .unwrap_or(std::time::UNIX_EPOCH),
        api_id: stage.map_or(lambda::DEFAULT_API_ID, |s| s.1),
        account_id,
        principal: st.principal.as_deref(),
    };
    lambda::event(route.payload, &input)
}

/// How long the gateway waits for an invocation's answer: the route's `timeout_ms` when set;
/// else a remote function's timeout plus a margin (AWS answers at the function's timeout), or
/// for a local one the longest the service can take to answer
/// ([`crate::config::functions::local_answer_bound`]) plus the margin, so the service always
/// answers first.
pub fn invocation_timeout(route: &LambdaRoute, f: &FunctionConfig) -> Duration {
    route.timeout.unwrap_or_else(|| match &f.kind {
        FunctionKind::Remote(_) => f.timeout.saturating_add(ANSWER_MARGIN),
        FunctionKind::Local(_) => {
            crate::config::functions::local_answer_bound(f.timeout).saturating_add(ANSWER_MARGIN)
        }
    })
}

/// Sends the event as an Invoke API request and turns the answer into the response.
async fn invoke<S: Session>(
    w: &Cx<'_>,
    conn: &S,
    req: &RequestCtx<'_>,
    st: &mut ExchangeState,
    route: &LambdaRoute,
    f: &FunctionConfig,
    event: Bytes,
) -> Result<crate::config::MockResponse, GatewayError> {
    let timeout = invocation_timeout(route, f);
    invoke_function(w, conn, req.head, st, f, event, timeout)
        .await
        .and_then(|(status, answer)| answered(st, route, f, status, answer))
}

/// Sends `event` to function `f` as one Invoke API request (through the function's pool:
/// a remote function's hidden upstream, SigV4-signed when it has credentials, or this
/// worker's pool to the local service) and waits at most `timeout` for the whole answer, or
/// until the client goes away. The answer's status and classification, or the failure
/// (`GatewayError::Function`, its words in `st.detail`; `ClientGone`). The Lambda integration
/// and the request authorizers (`crate::auth::request`) both invoke functions through it.
pub(crate) async fn invoke_function<S: Session>(
    w: &Cx<'_>,
    conn: &S,
    head: &RequestHead,
    st: &mut ExchangeState,
    f: &FunctionConfig,
    event: Bytes,
    timeout: Duration,
) -> Result<(u16, Invoked), GatewayError> {
    let (up, path, host) = match &f.kind {
        FunctionKind::Remote(r) => (
            w.g.upstreams.get(r.upstream),
            format!(
                "{}{}/invocations",
                crate::functions::INVOKE_PREFIX,
                r.function_path
            ),
            r.host.as_str(),
        ),
        FunctionKind::Local(_) => (
            w.functions(),
            crate::functions::invoke_path(&f.name),
            LOCAL_SERVICE_HOST,
        ),
    };
    let Some(up) = up else {
        let why = "the local functions service is not running".to_string();
        return Err(fail(st, FunctionFailure::Service, why));
    };
    // the gateway's request id labels the invocation (a client's id only when it is a plain
    // field value the encoder accepts: RFC 9110 §5.5)
    let rid = std::str::from_utf8(st.request_id.bytes(head))
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    let mut fields: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("x-amz-invocation-type", "RequestResponse"),
    ];
    if let Some(rid) = rid {
        fields.push(("x-request-id", rid));
    }
    let signed = match &f.kind {
        FunctionKind::Remote(r) => match &r.credentials {
            Some(creds) => {
                let mut to_sign: Vec<(&str, &[u8])> = vec![("host", host.as_bytes())];
                to_sign.extend(fields.iter().map(|(n, v)| (*n, v.as_bytes())));
                let sr = crate::aws::sigv4::SigningRequest {
                    method: "POST",
                    path: &path,
                    query: "",
                    headers: &to_sign,
                    body: &event,
                };
                let scope = crate::aws::sigv4::Scope {
                    region: &r.region,
                    service: SIGNING_SERVICE,
                };
                match crate::aws::sigv4::sign(&sr, creds, scope, SystemTime::now()) {
                    Ok(s) => s.fields,
                    Err(e) => return Err(fail(st, FunctionFailure::Service, e.to_string())),
                }
            }
            None => Vec::new(),
        },
        FunctionKind::Local(_) => Vec::new(),
    };
    fields.extend(signed.iter().map(|(n, v)| (*n, v.as_str())));
    let mut outbound = OutboundHead {
        method: "POST",
        target: &path,
        host,
        fields: &fields,
        body: Some(event),
    }
    .encode()
    .map_err(|e| {
        let why = format!("cannot encode the Invoke request: {e:?}");
        fail(st, FunctionFailure::Service, why)
    })?;
    // An Invoke POST is not idempotent, but a pooled connection that fails before a single
    // answer byte is almost always one the service closed while idle (AWS's endpoint, or the
    // local service's keep-alive timeout) as the request crossed that close: nothing was
    // invoked, so it is sent once more on a fresh connection rather than answered with a
    // spurious 502. Only that stale case is replayed: a connection that dies after the answer
    // began, a fresh connection's failure and a timeout are not (the socket cannot tell a
    // service that died mid-invocation without a byte from an idle close; the former is the
    // rare one, and AWS's SDKs retry such connection errors too).
    outbound.replay_on_stale = true;
    exchange(w, conn, st, up, &outbound, timeout).await
}

/// The Invoke API exchange: the answer's status and classification, or why there is none.
async fn exchange<S: Session>(
    w: &Cx<'_>,
    conn: &S,
    st: &mut ExchangeState,
    up: &Upstream,
    outbound: &client::Outbound,
    timeout: Duration,
) -> Result<(u16, Invoked), GatewayError> {
    let ccx = ClientCx {
        buffers: &w.buffers,
        limits: &w.g.config.server.limits,
        write: w.g.config.server.timeouts.write,
        random: w.ids.random(),
    };
    let deadline = Instant::now() + timeout;
    let mut endpoint = None;
    let mut waiting = Waiting(conn);
    let sent = client::exchange(&ccx, up, outbound, &mut waiting, timeout, &mut endpoint).await;
    st.endpoint = endpoint;
    let (mut uc, rh) = sent.map_err(|e| unreachable_service(st, e, timeout))?;
    st.upstream_status = Some(rh.status);
    // the rest of the deadline bounds the body; the connection stays ours whatever happens, so
    // dropping the read (timeout, client gone) loses nothing: it is released, not pooled
    let left = deadline.saturating_duration_since(Instant::now());
    let read = async {
        let mut reader = BodyReader::new(&mut uc, &rh, left, w.buffers.size());
        monoio::time::timeout(left, reader.read_to_end(MAX_ANSWER_BYTES)).await
    };
    let got = client::unless(read, conn.client_gone()).await;
    let reusable = matches!(got, Some(Ok(Ok(_)))) && rh.keep_alive;
    w.buffers.give(up.release(uc, reusable));
    let body = match got {
        None => return Err(GatewayError::ClientGone),
        Some(Err(_)) | Some(Ok(Err(GatewayError::UpstreamTimeout))) => {
            return Err(unreachable_service(
                st,
                GatewayError::UpstreamTimeout,
                timeout,
            ))
        }
        Some(Ok(Err(GatewayError::UpstreamProtocol("upstream body too large")))) => {
            let why = format!("function answer larger than {MAX_ANSWER_BYTES} bytes");
            return Err(fail(st, FunctionFailure::BadResponse, why));
        }
        Some(Ok(Err(e))) => return Err(unreachable_service(st, e, timeout)),
        Some(Ok(Ok(body))) => body,
    };
    let invoked = lambda::classify(
        rh.status,
        rh.header("x-amz-function-error"),
        rh.header("x-amzn-errortype"),
        body,
    );
    Ok((rh.status, invoked))
}

/// An Invoke API answer as the client's response, or the failure it means.
fn answered(
    st: &mut ExchangeState,
    route: &LambdaRoute,
    f: &FunctionConfig,
    status: u16,
    invoked: Invoked,
) -> Result<crate::config::MockResponse, GatewayError> {
    match invoked {
        Invoked::Payload(p) => lambda::reply(route.payload, &p).map_err(|e| {
            let lambda::ReplyError::Malformed(m) = e;
            fail(
                st,
                FunctionFailure::BadResponse,
                format!("function response malformed: {m}"),
            )
        }),
        Invoked::FunctionError(kind) => Err(fail(
            st,
            FunctionFailure::Error,
            format!("function error: {kind}"),
        )),
        Invoked::TimedOut => Err(fail(
            st,
            FunctionFailure::Timeout,
            format!("function timed out after {} ms", f.timeout.as_millis()),
        )),
        Invoked::Throttled => Err(fail(
            st,
            FunctionFailure::Throttled,
            "function throttled".into(),
        )),
        Invoked::TooLarge => Err(fail(
            st,
            FunctionFailure::TooLarge,
            "function payload too large".into(),
        )),
        Invoked::ServiceError(_, kind) => Err(fail(
            st,
            FunctionFailure::Service,
            format!("function service error: {status} {kind}"),
        )),
    }
}

/// A failure to reach the Invoke API or to get its whole answer: timeouts are 504, anything
/// else (connect refused, no address, TLS, a broken answer) a service failure, 502.
fn unreachable_service(st: &mut ExchangeState, e: GatewayError, timeout: Duration) -> GatewayError {
    match e {
        GatewayError::ClientGone => e,
        GatewayError::UpstreamTimeout => fail(
            st,
            FunctionFailure::Timeout,
            format!(
                "no answer from the function within {} ms",
                timeout.as_millis()
            ),
        ),
        e => fail(
            st,
            FunctionFailure::Service,
            format!("function service unreachable: {e}"),
        ),
    }
}

/// Records what failed for the access log and returns the failure.
fn fail(st: &mut ExchangeState, f: FunctionFailure, why: String) -> GatewayError {
    st.detail = Some(why.into_boxed_str());
    GatewayError::Function(f)
}

/// The exchange's view of the client while it waits for the answer: nothing to stream (the
/// request is sent whole), and a client gone ends the wait.
pub(crate) struct Waiting<'a, S>(pub(crate) &'a S);

impl<S: Session> BodySource for Waiting<'_, S> {
    async fn send_rest(&mut self, _dst: &mut Stream) -> Result<(), GatewayError> {
        Ok(())
    }

    async fn requester_gone(&self) {
        self.0.client_gone().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::functions::DEFAULT_CONCURRENCY;
    use crate::config::{LocalFunction, PayloadFormat, RemoteFunction};

    fn function(kind: FunctionKind) -> FunctionConfig {
        FunctionConfig {
            name: "f".into(),
            timeout: Duration::from_millis(3_000),
            kind,
        }
    }

    fn route(timeout: Option<Duration>) -> LambdaRoute {
        LambdaRoute {
            function: 0,
            payload: PayloadFormat::V2,
            body: crate::config::BodyPolicy::default(),
            timeout,
        }
    }

    /// The gateway waits for the service to answer first: a remote function's timeout plus the
    /// margin, a local one's queue wait and run plus its init allowance and the margin; a
    /// route's `timeout_ms` replaces either.
    #[test]
    fn the_wait_outlasts_the_services_own_deadline() {
        let remote = function(FunctionKind::Remote(RemoteFunction {
            arn: "arn:aws:lambda:eu-west-1:123456789012:function:f".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            function_path: "f".into(),
            upstream: 0,
            host: "h".into(),
            credentials: None,
        }));
        let local = function(FunctionKind::Local(LocalFunction {
            command: vec!["true".into()],
            cwd: "/".into(),
            env: vec![],
            handler: "h".into(),
            concurrency: DEFAULT_CONCURRENCY,
            idle: Duration::from_secs(1),
            queue: 1,
            memory_mb: 128,
            user: None,
        }));
        assert_eq!(
            invocation_timeout(&route(None), &remote),
            Duration::from_millis(4_000)
        );
        // 3 s run + a queue wait of 3 s and two 10 s starts + 1 s
        assert_eq!(
            invocation_timeout(&route(None), &local),
            Duration::from_millis(27_000)
        );
        // a long timeout: 30 s + 20 s queue wait + 30 s run + 1 s
        let long = FunctionConfig {
            timeout: Duration::from_secs(30),
            ..local.clone()
        };
        assert_eq!(
            invocation_timeout(&route(None), &long),
            Duration::from_secs(81)
        );
        let bounded = route(Some(Duration::from_millis(250)));
        assert_eq!(
            invocation_timeout(&bounded, &remote),
            Duration::from_millis(250)
        );
        assert_eq!(
            invocation_timeout(&bounded, &local),
            Duration::from_millis(250)
        );
    }
}
