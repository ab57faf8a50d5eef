//! Request authorizers: API Gateway's Lambda REQUEST authorizer (a `[[function]]`, local or
//! remote, invoked through the Lambda integration's invoker) or an HTTP endpoint (`url`,
//! through `crate::client`) that gets the same JSON payload.
//!
//! Owns: [`RequestState`] (per worker: results cached for `ttl_s` by the digest of the
//! identity-source values, bounded in entries and bytes; identical lookups in flight coalesced
//! into one call; on a miss, the process-wide [`SharedAnswers`] of the authorizer, whose
//! answers and in-flight calls every worker sees) and [`authorize`] (a missing
//! identity source → 401 without a call; deny → 403; an error, timeout or malformed answer →
//! 500); the cache and the in-flight map themselves are `request_cache.rs` (module `cache`).
//! Leaves out: the payload and answer formats (see [`super::request_payload`],
//! [`super::iam_policy`]), invoking a function (`crate::integration::lambda::invoke_function`)
//! and mapping a refusal to its status and body (`crate::error`).
//!
//! Data flow: identity-source values (each header's fields joined with `,`, a query
//! parameter's values joined with `,`, a `$context` variable; any missing or empty → 401,
//! `st.detail` says which) → with a cache (`ttl > 0`): the worker's cached answer for those
//! values, or the answer of the worker's call in flight for them, or the process-wide answer
//! (parsed into this worker's cache), or the end another worker's call in flight gets
//! (polled every [`SHARED_POLL`], until this request's own deadline: its answer, or its failure
//! with a URL's forwarded 401/403), or a new call whose answer both
//! levels keep → the decision for this request: a simple answer holds for every route of the
//! authorizer; an IAM policy is evaluated again against each request's route ARN, as API
//! Gateway does with a cached policy → [`Principal`] (`Identity::Lambda`, id = `principalId`).
//! A call: the payload (see [`super::request_payload`]) to the function (an error, timeout or
//! malformed answer → 500) or POSTed to the URL (2xx → its body is the answer; 401 / 403 →
//! the same status with the endpoint's body, type and challenge, prepared in `st.refusal`;
//! anything else or a timeout → 500). Refusals, failures and the words of each go
//! to `st.detail` (the access log's `errorMessage`), never to the client. Only answers are
//! cached: a URL's 401/403 and failures are not; they end only the call's own flight, on
//! this worker (its waiters) and on the others (the workers that polled it), each waiter
//! answering its client as the leader does (the same status, words and forwarded response).
//!
//! Per worker, on one thread: `Rc`, `Cell`, `RefCell`; no borrow is held across an await. The
//! one thing shared across cores is the authorizer's `SharedAnswers` (an `Arc` in the compiled
//! config, a `Mutex` inside, taken only on a worker's miss; see `request_cache.rs`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ahash::AHashMap;
use bytes::Bytes;

#[path = "request_cache.rs"]
mod cache;
#[path = "request_identity.rs"]
mod identity;

pub use self::cache::SharedAnswers;
use self::cache::{Cache, FlightEnd, Flights, Key, Lead, Shared, SharedFailure};
use self::identity::identity_values;
use super::request_payload::{self, forwarded, Answer, Decision};
use super::{Identity, Principal};
use crate::client::{self, BodyReader, ClientCx, OutboundHead};
use crate::config::auth::{HttpTarget, RequestAuthorizer, RequestTarget};
use crate::config::{Config, FunctionKind};
use crate::error::{Denial, FunctionFailure, GatewayError};
use crate::exchange::ExchangeState;
use crate::http::RequestHead;
use crate::integration::lambda::{invoke_function, Waiting};
use crate::lambda::{EventInput, Invoked};
use crate::metrics::functions::Outcome as Invocation;
use crate::session::Session;
use crate::worker::Cx;

/// One request authorizer's state on one worker.
pub struct RequestState {
    cache: RefCell<Cache<Rc<Outcome>>>,
    /// Lookups in flight, by cache key: later identical lookups wait for their end.
    flights: Flights<Ended>,
    /// The process-wide level, consulted on a miss of this worker's (see the module doc).
    shared: Arc<SharedAnswers>,
}

/// How long a worker waits between looks at another worker's call for the same identity
/// (bounded by its own request's deadline, the authorizer's `timeout_ms`).
pub const SHARED_POLL: Duration = Duration::from_millis(2);

impl RequestState {
    pub fn new(config: &RequestAuthorizer) -> RequestState {
        RequestState {
            cache: RefCell::new(Cache::new(config.cache_entries, config.cache_bytes)),
            flights: Rc::new(RefCell::new(AHashMap::new())),
            shared: config.shared.clone(),
        }
    }

    /// The process-wide level this state consults.
    pub fn shared(&self) -> &Arc<SharedAnswers> {
        &self.shared
    }

    /// Answers cached now (for tests and the curious).
    pub fn cached(&self) -> usize {
        self.cache.borrow().len()
    }
}

/// An authorizer's answer as kept: who it admitted and what it decided, and the answer as
/// sent (what the process-wide level shares, and what an entry weighs).
struct Outcome {
    principal: Rc<Principal>,
    decision: Decision,
    raw: Arc<[u8]>,
}

/// Why a lookup admitted nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A URL authorizer's 401.
    Unauthorized,
    /// A URL authorizer's 403.
    Denied,
    /// The authorizer failed (500): error, timeout, malformed answer, unreachable.
    Failed,
    /// The client of the request that made the call went away: nothing was decided.
    Gone,
}

/// A lookup's end: the answer, or the refusal and its words.
type Lookup = Result<Rc<Outcome>, (Refusal, Box<str>)>;

/// A lookup's end as every request waiting for it gets it: with a URL authorizer's 401/403,
/// the response forwarded (each waiter answers its own client with it, as the leader does).
type Ended = (Lookup, Option<crate::config::MockResponse>);

/// Admits the request as the authorizer answers (see the module doc).
#[allow(clippy::too_many_arguments)]
pub async fn authorize<S: Session>(
    w: &Cx<'_>,
    sess: &S,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
    authorizer: usize,
    config: &RequestAuthorizer,
    state: &Rc<RequestState>,
) -> Result<Rc<Principal>, GatewayError> {
    let cfg = &*w.g.config;
    let values = match identity_values(cfg, config, sess, head, st, route) {
        Ok(v) => v,
        Err(which) => {
            let m = format!("identity source {which} is missing or empty");
            st.detail = Some(m.into_boxed_str());
            return Err(GatewayError::Unauthorized);
        }
    };
    let method = String::from_utf8_lossy(head.method_bytes());
    let path = String::from_utf8_lossy(head.path_bytes());
    let arn = request_payload::route_arn(
        account(cfg, config),
        crate::lambda::DEFAULT_API_ID,
        crate::lambda::DEFAULT_STAGE,
        &method,
        &path,
    );
    let call = Call {
        w,
        sess,
        head,
        route,
        authorizer,
        config,
        values: &values,
        arn: &arn,
    };
    let lookup = if config.ttl.is_zero() || values.is_empty() {
        call.run(st).await
    } else {
        cached(&call, st, state).await
    };
    decide(lookup, &arn, st)
}

/// The answer for `call`'s identity values: cached, or of the identical call in flight, or of
/// a new call (cached when it is an answer).
async fn cached<S: Session>(
    call: &Call<'_, '_, S>,
    st: &mut ExchangeState,
    state: &Rc<RequestState>,
) -> Lookup {
    let key = cache::key(call.values);
    loop {
        if let Some(o) = state.cache.borrow_mut().get(&key, Instant::now()) {
            return Ok(o);
        }
        if let Some(flight) = cache::flying(&state.flights, &key) {
            match client::unless(cache::wait(&flight), call.sess.client_gone()).await {
                None => return Err((Refusal::Gone, "client gone".into())),
                Some(FlightEnd::Done((lookup, forwarded))) => {
                    // a URL's 401/403 reaches every waiter's client, not only the leader's
                    if forwarded.is_some() {
                        st.refusal = forwarded;
                    }
                    return lookup;
                }
                Some(FlightEnd::Abandoned) => continue,
            }
        }
        // dropped before it finishes (this request's client gone), the lead abandons the
        // flight and its waiters look up again
        let lead = Lead::start(&state.flights, key);
        let (lookup, expires) = shared_or_call(call, st, state, &key).await;
        if let Ok(o) = &lookup {
            let now = Instant::now();
            let bytes = o.raw.len();
            let mut cache = state.cache.borrow_mut();
            cache.insert(key, expires, o.clone(), bytes, now);
        }
        if !matches!(lookup, Err((Refusal::Gone, _))) {
            lead.finish((lookup.clone(), refusal_of(&lookup, st)));
        }
        return lookup;
    }
}

/// The response a URL authorizer's 401/403 left in `st.refusal` for this lookup's end.
fn refusal_of(lookup: &Lookup, st: &ExchangeState) -> Option<crate::config::MockResponse> {
    match lookup {
        Err((Refusal::Unauthorized | Refusal::Denied, _)) => st.refusal.clone(),
        _ => None,
    }
}

/// On a miss of this worker's: the process-wide answer, or (polling every [`SHARED_POLL`])
/// the end of another worker's call in flight (its answer, or its failure: timeout, error,
/// 401/403 with the response forwarded), or a call of this worker's whose end every worker
/// then shares. With the answer's expiry. A poller gives up at its own request's deadline
/// (the authorizer's `timeout_ms` from its start), so no request waits much beyond one
/// timeout for another's call; it calls itself only when the call it polled vanished without
/// an end (its client went away: nothing was decided).
async fn shared_or_call<S: Session>(
    call: &Call<'_, '_, S>,
    st: &mut ExchangeState,
    state: &Rc<RequestState>,
    key: &Key,
) -> (Lookup, Instant) {
    let own_deadline = Instant::now() + call.config.timeout;
    let mut polled = None;
    loop {
        let now = Instant::now();
        match state
            .shared
            .lookup(key, now, now + call.config.timeout, polled)
        {
            Shared::Answer(raw, expires) => {
                let lookup = call
                    .parse(&raw)
                    .map(|answer| call.outcome(answer, raw.clone()));
                return (lookup, expires);
            }
            Shared::Failed(f) => {
                if f.forwarded.is_some() {
                    st.refusal = f.forwarded;
                }
                return (Err((f.refusal, f.why)), now);
            }
            Shared::Calling { flight } => {
                polled = Some(flight);
                if now >= own_deadline {
                    let m = format!(
                        "another worker's authorizer call did not end within {} ms",
                        call.config.timeout.as_millis()
                    );
                    return (Err(failed(m)), now);
                }
                let nap = SHARED_POLL.min(own_deadline.saturating_duration_since(now));
                let slept = client::unless(monoio::time::sleep(nap), call.sess.client_gone());
                if slept.await.is_none() {
                    return (Err((Refusal::Gone, "client gone".into())), now);
                }
            }
            Shared::Claimed(lead) => {
                let lookup = call.run(st).await;
                let expires = Instant::now() + call.config.ttl;
                match &lookup {
                    Ok(o) => lead.finish(o.raw.clone(), expires),
                    // nothing decided: the pollers look up again (and one calls)
                    Err((Refusal::Gone, _)) => {}
                    Err((refusal, why)) => lead.fail(SharedFailure {
                        refusal: *refusal,
                        why: why.clone(),
                        forwarded: refusal_of(&lookup, st),
                    }),
                }
                return (lookup, expires);
            }
        }
    }
}

/// This request's fate under a lookup's end.
fn decide(
    lookup: Lookup,
    arn: &str,
    st: &mut ExchangeState,
) -> Result<Rc<Principal>, GatewayError> {
    let outcome = match lookup {
        Ok(o) => o,
        Err((refusal, why)) => {
            st.detail = Some(why);
            return Err(match refusal {
                Refusal::Unauthorized => GatewayError::Unauthorized,
                Refusal::Denied => GatewayError::Denied(Denial::Authorizer),
                Refusal::Failed => GatewayError::AuthorizerFailed("request authorizer failed"),
                Refusal::Gone => GatewayError::ClientGone,
            });
        }
    };
    let allowed = match &outcome.decision {
        Decision::Simple(ok) => *ok,
        Decision::Policy(p) => p.allows(arn),
    };
    if !allowed {
        let m = match &outcome.decision {
            Decision::Simple(_) => "authorizer answered isAuthorized: false".to_string(),
            Decision::Policy(_) => format!("authorizer policy does not allow {arn}"),
        };
        st.detail = Some(m.into_boxed_str());
        return Err(GatewayError::Denied(Denial::Authorizer));
    }
    Ok(outcome.principal.clone())
}

/// The account in route ARNs: a remote function's, else the local one.
fn account<'c>(cfg: &'c Config, config: &RequestAuthorizer) -> &'c str {
    match &config.target {
        RequestTarget::Function(f) => match cfg.functions.get(*f).map(|f| &f.kind) {
            Some(FunctionKind::Remote(r)) => &r.account,
            _ => crate::lambda::LOCAL_ACCOUNT_ID,
        },
        RequestTarget::Url(_) => crate::lambda::LOCAL_ACCOUNT_ID,
    }
}

/// One call to the authorizer, for one request.
struct Call<'a, 'w, S> {
    w: &'a Cx<'w>,
    sess: &'a S,
    head: &'a RequestHead,
    route: usize,
    authorizer: usize,
    config: &'a RequestAuthorizer,
    values: &'a [String],
    arn: &'a str,
}

impl<S: Session> Call<'_, '_, S> {
    /// Sends the payload and reads the answer.
    async fn run(&self, st: &mut ExchangeState) -> Lookup {
        let payload = Bytes::from(self.payload(st));
        // the authorizer's exchange is not the integration's: the log's integration fields
        // stay the integration's
        let (endpoint, upstream_status) = (st.endpoint, st.upstream_status);
        let got = match &self.config.target {
            RequestTarget::Function(f) => self.function(*f, st, payload).await,
            RequestTarget::Url(t) => self.url(t, st, payload).await,
        };
        st.endpoint = endpoint;
        st.upstream_status = upstream_status;
        let (answer, raw) = got?;
        Ok(self.outcome(answer, raw))
    }

    /// The outcome of an answer (`raw`: as the authorizer sent it).
    fn outcome(&self, answer: Answer, raw: Arc<[u8]>) -> Rc<Outcome> {
        // no principalId (simple responses): each caller throttles under its identity's
        // digest, not all under ""
        let throttle = answer.principal_id.is_empty().then(|| {
            let digest = cache::key(self.values);
            let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("identity:{hex}").into_boxed_str()
        });
        Rc::new(Outcome {
            principal: Rc::new(Principal {
                authorizer: self.authorizer,
                id: answer.principal_id.into_boxed_str(),
                identity: Identity::Lambda {
                    context: answer.context,
                },
                throttle,
            }),
            decision: answer.decision,
            raw,
        })
    }

    /// The payload for this request (its path parameters found again by the router: only
    /// a call pays for them).
    fn payload(&self, st: &ExchangeState) -> Vec<u8> {
        let cfg = &*self.w.g.config;
        let head = self.head;
        let matched =
            crate::exchange::served::lookup(cfg, head, st.served).filter(|m| m.route == self.route);
        let names = cfg.router.param_names(self.route);
        let params: Vec<(&str, &[u8])> = match &matched {
            Some(m) => names
                .iter()
                .zip(m.params.iter())
                .map(|(n, v)| (&**n, *v))
                .collect(),
            None => Vec::new(),
        };
        let route_key = cfg.routes.get(self.route).map_or("$default", |r| &r.key);
        let event = EventInput {
            head,
            body: &[],
            params: &params,
            route_key,
            stage: crate::lambda::DEFAULT_STAGE,
            stage_variables: &[],
            request_id: st.request_id.bytes(head),
            facts: self.sess.facts(),
            client_ip: st.client_ip.map(crate::facts::PeerIp::of),
            now: std::time::SystemTime::now()
                .checked_sub(st.started.elapsed())
                .unwrap_or(std::time::UNIX_EPOCH),
            api_id: crate::lambda::DEFAULT_API_ID,
            account_id: account(cfg, self.config),
            // the authorizer decides who the caller is: there is none yet
            principal: None,
        };
        request_payload::payload(self.config.payload, &event, self.arn, self.values)
    }

    fn parse(&self, body: &[u8]) -> Result<Answer, (Refusal, Box<str>)> {
        request_payload::parse_answer(body, self.config.payload, self.config.simple_responses)
            .map_err(|m| failed(format!("authorizer answer malformed: {m}")))
    }

    /// A function authorizer: the Lambda integration's invoker, bounded by the authorizer's
    /// timeout.
    async fn function(
        &self,
        f: usize,
        st: &mut ExchangeState,
        payload: Bytes,
    ) -> Result<(Answer, Arc<[u8]>), (Refusal, Box<str>)> {
        let Some(fc) = self.w.g.config.functions.get(f) else {
            return Err(failed("authorizer names an unknown function".into()));
        };
        let started = Instant::now();
        let got = invoke_function(
            self.w,
            self.sess,
            self.head,
            st,
            fc,
            payload,
            self.config.timeout,
        )
        .await;
        let outcome = match &got {
            Ok((_, Invoked::TimedOut)) | Err(GatewayError::Function(FunctionFailure::Timeout)) => {
                Invocation::TimedOut
            }
            Ok((_, Invoked::Throttled)) => Invocation::Throttled,
            Err(GatewayError::ClientGone) => Invocation::Abandoned,
            _ => Invocation::Error,
        };
        let answer = match got {
            Ok((_, Invoked::Payload(p))) => self.parse(&p).map(|a| (a, Arc::from(&p[..]))),
            Ok((status, other)) => Err(failed(format!(
                "authorizer function {}",
                match other {
                    Invoked::FunctionError(kind) => format!("error: {kind}"),
                    Invoked::TimedOut => "timed out".into(),
                    Invoked::Throttled => "throttled".into(),
                    Invoked::TooLarge => "payload too large".into(),
                    Invoked::ServiceError(_, kind) => format!("service error: {status} {kind}"),
                    Invoked::Payload(_) => "answered".into(),
                }
            ))),
            Err(GatewayError::ClientGone) => Err((Refusal::Gone, "client gone".into())),
            Err(_) => {
                let inner = st.detail.take().unwrap_or_default();
                Err(failed(format!("authorizer function failed: {inner}")))
            }
        };
        if self.w.g.record_metrics {
            // an authorizer's invocation is one of the function's, as a route's: a success
            // when its answer was read, an error when it was malformed (as a route's reply)
            let outcome = if answer.is_ok() {
                Invocation::Success
            } else {
                outcome
            };
            self.w.g.metrics.function(f, outcome, started.elapsed());
        }
        answer
    }

    /// A URL authorizer: POST the payload; 2xx → the answer, 401 / 403 pass through.
    async fn url(
        &self,
        t: &HttpTarget,
        st: &mut ExchangeState,
        payload: Bytes,
    ) -> Result<(Answer, Arc<[u8]>), (Refusal, Box<str>)> {
        let w = self.w;
        let Some(up) = w.g.upstreams.get(t.upstream) else {
            return Err(failed("authorizer upstream missing".into()));
        };
        let rid = std::str::from_utf8(st.request_id.bytes(self.head))
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        let mut fields: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        if let Some(rid) = rid {
            fields.push(("x-request-id", rid));
        }
        let mut outbound = OutboundHead {
            method: "POST",
            target: &t.path,
            host: &t.authority,
            fields: &fields,
            body: Some(payload),
        }
        .encode()
        .map_err(|e| failed(format!("cannot encode the authorizer request: {e:?}")))?;
        // a pooled connection the endpoint closed while idle fails before any answer byte:
        // nothing was decided, so it is sent once more on a fresh one (as the Lambda invoker)
        outbound.replay_on_stale = true;
        let timeout = self.config.timeout;
        let ccx = ClientCx {
            buffers: &w.buffers,
            limits: &w.g.config.server.limits,
            write: w.g.config.server.timeouts.write,
            random: w.ids.random(),
        };
        let deadline = Instant::now() + timeout;
        let mut endpoint = None;
        let mut waiting = Waiting(self.sess);
        let sent =
            client::exchange(&ccx, up, &outbound, &mut waiting, timeout, &mut endpoint).await;
        let (mut uc, rh) = match sent {
            Ok(v) => v,
            Err(GatewayError::ClientGone) => return Err((Refusal::Gone, "client gone".into())),
            Err(e) => return Err(unreachable(&t.url, e, timeout)),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let read = async {
            let mut reader = BodyReader::new(&mut uc, &rh, left, w.buffers.size());
            monoio::time::timeout(left, reader.read_to_end(request_payload::MAX_ANSWER_BYTES)).await
        };
        let got = client::unless(read, self.sess.client_gone()).await;
        let reusable = matches!(got, Some(Ok(Ok(_)))) && rh.keep_alive;
        w.buffers.give(up.release(uc, reusable));
        let body = match got {
            None => return Err((Refusal::Gone, "client gone".into())),
            Some(Err(_)) => {
                return Err(unreachable(&t.url, GatewayError::UpstreamTimeout, timeout))
            }
            Some(Ok(Err(e))) => return Err(unreachable(&t.url, e, timeout)),
            Some(Ok(Ok(body))) => body,
        };
        match rh.status {
            200..=299 => self.parse(&body).map(|a| (a, Arc::from(&body[..]))),
            401 | 403 => {
                // passed on as the endpoint said it (Envoy's ext_authz does the same)
                st.refusal = Some(forwarded(&rh, &body));
                let refusal = match rh.status {
                    401 => Refusal::Unauthorized,
                    _ => Refusal::Denied,
                };
                let m = format!("authorizer {} answered {}", t.url, rh.status);
                Err((refusal, m.into()))
            }
            s => Err(failed(format!("authorizer {} answered {s}", t.url))),
        }
    }
}

fn failed(why: String) -> (Refusal, Box<str>) {
    (Refusal::Failed, why.into_boxed_str())
}

/// A URL authorizer that did not answer in time or at all.
fn unreachable(url: &str, e: GatewayError, timeout: Duration) -> (Refusal, Box<str>) {
    match e {
        GatewayError::UpstreamTimeout => failed(format!(
            "authorizer {url} did not answer within {} ms",
            timeout.as_millis()
        )),
        e => failed(format!("authorizer {url} unreachable: {e}")),
    }
}
