//! A worker's key set for one JWT authorizer: fetched through the worker's own pools
//! (`crate::client`, the hidden upstream `jwks:NAME`), refreshed in the background, refetched
//! on an unknown `kid` at most once per [`crate::config::auth::UNKNOWN_KID_REFETCH`], and kept
//! (the last good one) when the identity provider is down.
//!
//! Owns: [`KeyStore`] (the current set, when it was fetched, the fetch in flight and who waits
//! for it, the failure streak) and the fetch itself (a GET of `jwks_uri`, or of the issuer's
//! OpenID Connect discovery document and then of the `jwks_uri` it names). Leaves out: parsing
//! key sets (see [`super::jwks`]), verifying tokens (see [`super::jwt`]), and what a missing key
//! set means for the request (see [`super::jwt_authorizer`]: 500).
//!
//! Data flow and concurrency: everything is per worker (`Rc`/`Cell`/`RefCell`, no lock). A fetch
//! always runs as its own spawned task ([`monoio::spawn`]) owning what it needs (the store's
//! `Rc`, the generation's `Rc<Upstream>` and `Arc<Config>`, a private empty buffer pool), so a
//! request that gave up (its client went away) cannot strand it half done. At most one fetch is
//! in flight per store: requests that need its result (no set yet, or an unknown `kid`) register
//! a waker and wait for the completion counter to move — one fetch, many waiters. The worker
//! starts the first fetch itself when it begins serving and after a reload
//! ([`KeyStore::prefetch`], through `super::jwt_authorizer::prefetch`). A request
//! that holds a usable set never waits: a set older than `jwks_refresh_s` starts a background
//! fetch and the request goes on with the old set. The fetch ends within
//! [`JWKS_FETCH_TIMEOUT`] per GET (so a task never outlives its generation by more than that),
//! and it returns its connection to the pool before it ends (it never holds one while idle).
//! A failed fetch keeps the last good set, logs one stderr line per failure streak, and no new
//! fetch starts for [`RETRY_AFTER_FAILURE`], so a dead identity provider is not hammered.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::jwks::KeySet;
use crate::client::{self, BodyReader, ClientCx, OutboundHead, Upstream, Whole};
use crate::config::auth::{parse_url, HttpTarget, KeySource, UNKNOWN_KID_REFETCH};
use crate::config::auth_jwt::JWKS_FETCH_TIMEOUT;
use crate::config::Config;
use crate::transport::bufpool::BufPool;
use crate::worker::Cx;

/// The largest key set or discovery document read; a larger one fails the fetch.
pub const MAX_KEY_SET_BYTES: usize = 1024 * 1024;
/// After a failed fetch, no new one starts for this long (requests without any key set get
/// 500 meanwhile; requests with the last good set are not affected).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// A worker's key set of one JWT authorizer (cheap to clone: a reference to the shared state,
/// so that a reloaded generation whose key source is unchanged keeps it).
#[derive(Clone)]
pub struct KeyStore {
    inner: Rc<Inner>,
}

struct Inner {
    /// The authorizer's name, for log lines.
    name: Box<str>,
    /// The last good set (`None` until a fetch succeeded).
    set: RefCell<Option<Rc<KeySet>>>,
    /// When `set` was fetched.
    fetched: Cell<Option<Instant>>,
    /// Whether a fetch task runs.
    fetch: Cell<Fetch>,
    /// Fetches completed (successfully or not); waiters wait for it to move.
    completed: Cell<u64>,
    /// Wakers of the requests waiting for the fetch in flight.
    waiters: RefCell<Vec<Waker>>,
    /// When the last fetch failed, while the failure streak lasts.
    failed_at: Cell<Option<Instant>>,
    /// When the last refetch for an unknown `kid` started.
    kid_refetch_at: Cell<Option<Instant>>,
    /// Fetches started (tests, diagnostics).
    started: Cell<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    Idle,
    InFlight,
}

/// Why the store gave no new set after an unknown `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refetch {
    /// A fetch completed: verify again with this set.
    Fetched,
    /// The last refetch for an unknown `kid` was less than [`UNKNOWN_KID_REFETCH`] ago.
    TooSoon,
    /// The fetch failed (the last good set stays).
    Failed,
}

impl KeyStore {
    /// An empty store of authorizer `name`.
    pub fn new(name: &str) -> KeyStore {
        KeyStore {
            inner: Rc::new(Inner {
                name: name.into(),
                set: RefCell::new(None),
                fetched: Cell::new(None),
                fetch: Cell::new(Fetch::Idle),
                completed: Cell::new(0),
                waiters: RefCell::new(Vec::new()),
                failed_at: Cell::new(None),
                kid_refetch_at: Cell::new(None),
                started: Cell::new(0),
            }),
        }
    }

    /// The current set, if any.
    pub fn set(&self) -> Option<Rc<KeySet>> {
        self.inner.set.borrow().clone()
    }

    /// Fetches started so far by this store (on this worker).
    pub fn fetches(&self) -> u64 {
        self.inner.started.get()
    }

    /// The set to verify with. With a set, it is returned at once (older than `refresh`, a
    /// background fetch starts). Without one, the request waits for a fetch (started now, or
    /// the one in flight); `None` when there is still no set (the fetch failed, or failed less
    /// than [`RETRY_AFTER_FAILURE`] ago).
    pub async fn current(
        &self,
        w: &Cx<'_>,
        source: &KeySource,
        issuer: &str,
        refresh: Duration,
    ) -> Option<Rc<KeySet>> {
        let inner = &self.inner;
        let now = Instant::now();
        if let Some(set) = self.set() {
            let stale = inner
                .fetched
                .get()
                .is_none_or(|at| now.saturating_duration_since(at) >= refresh);
            if stale && !self.failed_recently(now) {
                self.start(w, source, issuer);
            }
            return Some(set);
        }
        if inner.fetch.get() == Fetch::Idle {
            if self.failed_recently(now) {
                return None;
            }
            self.start(w, source, issuer);
        }
        self.wait().await;
        self.set()
    }

    /// Starts a fetch when there is no set yet and no fetch in flight or failed just now
    /// (nothing waits for it).
    pub fn prefetch(&self, w: &Cx<'_>, source: &KeySource, issuer: &str) {
        let idle = self.inner.fetch.get() == Fetch::Idle;
        if idle && self.set().is_none() && !self.failed_recently(Instant::now()) {
            self.start(w, source, issuer);
        }
    }

    /// After a token named a `kid` the set lacks: the request waits for a fetch (the one in
    /// flight, or a new one when the last refetch for an unknown `kid` on this worker was at
    /// least [`UNKNOWN_KID_REFETCH`] ago and no fetch failed in the last
    /// [`RETRY_AFTER_FAILURE`]).
    pub async fn refetch_for_kid(&self, w: &Cx<'_>, source: &KeySource, issuer: &str) -> Refetch {
        let inner = &self.inner;
        if inner.fetch.get() == Fetch::Idle {
            let now = Instant::now();
            if self.failed_recently(now) {
                return Refetch::Failed;
            }
            let recent = inner
                .kid_refetch_at
                .get()
                .is_some_and(|at| now.saturating_duration_since(at) < UNKNOWN_KID_REFETCH);
            if recent {
                return Refetch::TooSoon;
            }
            inner.kid_refetch_at.set(Some(now));
            self.start(w, source, issuer);
        }
        self.wait().await;
        if inner.failed_at.get().is_some() {
            Refetch::Failed
        } else {
            Refetch::Fetched
        }
    }

    fn failed_recently(&self, now: Instant) -> bool {
        self.inner
            .failed_at
            .get()
            .is_some_and(|at| now.saturating_duration_since(at) < RETRY_AFTER_FAILURE)
    }

    /// Waits for the fetch in flight to complete (at once when none is).
    async fn wait(&self) {
        if self.inner.fetch.get() == Fetch::Idle {
            return;
        }
        Completion {
            inner: &self.inner,
            seen: self.inner.completed.get(),
        }
        .await
    }

    /// Starts a fetch task unless one is in flight. Its data is owned (`'static`): the store,
    /// the generation's upstream and config; it ends within two [`JWKS_FETCH_TIMEOUT`]s.
    fn start(&self, w: &Cx<'_>, source: &KeySource, issuer: &str) {
        let inner = self.inner.clone();
        if inner.fetch.get() == Fetch::InFlight {
            return;
        }
        let target = match source {
            KeySource::Jwks(t) | KeySource::Discovery(t) => t,
        };
        let Some(up) = w.g.upstreams.get(target.upstream).cloned() else {
            inner.finish(Err("the key set's upstream is missing".into()));
            return;
        };
        inner.fetch.set(Fetch::InFlight);
        inner.started.set(inner.started.get() + 1);
        let job = Job {
            up,
            config: w.g.config.clone(),
            source: source.clone(),
            issuer: issuer.into(),
            random: w.ids.random(),
            buffer_size: w.buffers.size(),
        };
        drop(monoio::spawn(async move {
            let got = job.run().await;
            inner.finish(got);
        }));
    }
}

impl Inner {
    /// Records a fetch's outcome and wakes its waiters.
    fn finish(&self, got: Result<KeySet, String>) {
        match got {
            Ok(set) => {
                *self.set.borrow_mut() = Some(Rc::new(set));
                self.fetched.set(Some(Instant::now()));
                if self.failed_at.take().is_some() {
                    eprintln!(
                        "tollgate: jwt authorizer {}: key set fetched again",
                        self.name
                    );
                }
            }
            Err(why) => {
                // one line per failure streak (per worker), not one per attempt
                if self.failed_at.get().is_none() {
                    let kept = if self.set.borrow().is_some() {
                        "the last good key set keeps serving"
                    } else {
                        "no key set yet: its routes answer 500"
                    };
                    eprintln!(
                        "tollgate: jwt authorizer {}: key set fetch failed: {why} ({kept})",
                        self.name
                    );
                }
                self.failed_at.set(Some(Instant::now()));
            }
        }
        self.fetch.set(Fetch::Idle);
        self.completed.set(self.completed.get() + 1);
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

/// Resolves once the completion counter moved past `seen`.
struct Completion<'a> {
    inner: &'a Inner,
    seen: u64,
}

impl Future for Completion<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.completed.get() != self.seen {
            return Poll::Ready(());
        }
        // the list is drained on completion, so a waiter is polled again only once woken (or
        // spuriously, then it registers again): no scan of the list, O(1) per waiter
        self.inner.waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

/// One fetch, owning what it needs.
struct Job {
    up: Rc<Upstream>,
    config: Arc<Config>,
    source: KeySource,
    issuer: Box<str>,
    random: u64,
    buffer_size: usize,
}

impl Job {
    async fn run(self) -> Result<KeySet, String> {
        // a private pool: empty until the exchange takes a buffer, freed when the task ends
        let buffers = BufPool::new(self.buffer_size);
        let ccx = ClientCx {
            buffers: &buffers,
            limits: &self.config.server.limits,
            write: self.config.server.timeouts.write,
            random: self.random,
        };
        let body = match &self.source {
            KeySource::Jwks(t) => get(&ccx, &self.up, &t.authority, &t.path, &t.url).await?,
            KeySource::Discovery(t) => {
                let doc = get(&ccx, &self.up, &t.authority, &t.path, &t.url).await?;
                let path = discovered_jwks_path(&doc, &self.issuer, t)?;
                let url = format!("{} (from {})", path.1, t.url);
                get(&ccx, &self.up, &t.authority, &path.0, &url).await?
            }
        };
        KeySet::parse(&body).map_err(|e| e.to_string())
    }
}

/// `GET path` on `up` within [`JWKS_FETCH_TIMEOUT`]: the body of a 2xx answer, at most
/// [`MAX_KEY_SET_BYTES`].
async fn get(
    ccx: &ClientCx<'_>,
    up: &Upstream,
    host: &str,
    path: &str,
    url: &str,
) -> Result<Bytes, String> {
    let fields = [("accept", "application/json")];
    let out = OutboundHead {
        method: "GET",
        target: path,
        host,
        fields: &fields,
        body: None,
    }
    .encode()
    .map_err(|e| format!("GET {url}: cannot encode the request: {e:?}"))?;
    let deadline = Instant::now() + JWKS_FETCH_TIMEOUT;
    let (mut endpoint, mut whole) = (None, Whole);
    let sent = client::exchange(ccx, up, &out, &mut whole, JWKS_FETCH_TIMEOUT, &mut endpoint);
    let (mut uc, rh) = match monoio::time::timeout(JWKS_FETCH_TIMEOUT, sent).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return Err(format!("GET {url}: {e}")),
        Err(_) => {
            return Err(format!(
                "GET {url}: no answer within {JWKS_FETCH_TIMEOUT:?}"
            ))
        }
    };
    // RFC 9110 §15.3: only a 2xx answer carries the resource
    if !(200..300).contains(&rh.status) {
        ccx.buffers.give(up.release(uc, false));
        return Err(format!("GET {url}: status {}", rh.status));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let read = async {
        let mut reader = BodyReader::new(&mut uc, &rh, left, ccx.buffers.size());
        monoio::time::timeout(left, reader.read_to_end(MAX_KEY_SET_BYTES)).await
    };
    let got = read.await;
    let reusable = matches!(got, Ok(Ok(_))) && rh.keep_alive;
    ccx.buffers.give(up.release(uc, reusable));
    match got {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(format!("GET {url}: {e}")),
        Err(_) => Err(format!(
            "GET {url}: body not read within {JWKS_FETCH_TIMEOUT:?}"
        )),
    }
}

/// The path (and the URL, for messages) of the `jwks_uri` an OpenID Connect discovery document
/// names. The document's `issuer` must be the configured one (OpenID Connect Discovery 1.0
/// §4.3), and `jwks_uri` must be on the issuer's scheme, host and port: the hidden upstream
/// that fetched the document is the only one this authorizer has.
pub fn discovered_jwks_path(
    doc: &[u8],
    issuer: &str,
    target: &HttpTarget,
) -> Result<(String, String), String> {
    let v: serde_json::Value = serde_json::from_slice(doc)
        .map_err(|e| format!("{}: the discovery document is not JSON: {e}", target.url))?;
    let field = |name: &str| v.get(name).and_then(serde_json::Value::as_str);
    match field("issuer") {
        Some(i) if i == issuer => {}
        Some(i) => {
            return Err(format!(
                "{}: the discovery document's issuer {i:?} is not the configured {issuer:?}",
                target.url
            ))
        }
        None => {
            return Err(format!(
                "{}: the discovery document has no issuer",
                target.url
            ))
        }
    }
    let Some(uri) = field("jwks_uri") else {
        return Err(format!(
            "{}: the discovery document has no jwks_uri",
            target.url
        ));
    };
    let (ep, path) = parse_url(uri).map_err(|m| format!("{}: jwks_uri {m}", target.url))?;
    let same = parse_url(&target.url).is_ok_and(|(own, _)| own == ep);
    if !same {
        return Err(format!(
            "the discovered jwks_uri {uri:?} is not on the issuer's origin (scheme, host and \
             port of {:?}): set jwks_uri in the authorizer",
            target.url
        ));
    }
    Ok((path, uri.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> HttpTarget {
        HttpTarget {
            upstream: 0,
            authority: "127.0.0.1:9000".into(),
            path: "/t/.well-known/openid-configuration".into(),
            url: "http://127.0.0.1:9000/t/.well-known/openid-configuration".into(),
        }
    }

    #[test]
    fn discovery_takes_a_same_origin_jwks_uri() {
        let doc = br#"{"issuer":"http://127.0.0.1:9000/t","jwks_uri":"http://127.0.0.1:9000/t/keys?v=1"}"#;
        let got = discovered_jwks_path(doc, "http://127.0.0.1:9000/t", &target());
        assert_eq!(
            got,
            Ok((
                "/t/keys?v=1".to_string(),
                "http://127.0.0.1:9000/t/keys?v=1".to_string()
            ))
        );
    }

    #[test]
    fn discovery_refuses_another_origin_a_wrong_issuer_and_garbage() {
        let iss = "http://127.0.0.1:9000/t";
        for (doc, needle) in [
            (
                r#"{"issuer":"http://127.0.0.1:9000/t","jwks_uri":"http://127.0.0.1:9001/keys"}"#,
                "set jwks_uri",
            ),
            (
                r#"{"issuer":"http://127.0.0.1:9000/t","jwks_uri":"https://127.0.0.1:9000/keys"}"#,
                "set jwks_uri",
            ),
            (
                r#"{"issuer":"http://evil/","jwks_uri":"http://127.0.0.1:9000/keys"}"#,
                "is not the configured",
            ),
            (r#"{"issuer":"http://127.0.0.1:9000/t"}"#, "no jwks_uri"),
            (r#"{"jwks_uri":"http://127.0.0.1:9000/keys"}"#, "no issuer"),
            ("not json", "not JSON"),
        ] {
            let got = discovered_jwks_path(doc.as_bytes(), iss, &target());
            assert!(
                got.as_ref().is_err_and(|m| m.contains(needle)),
                "{doc}: {got:?}"
            );
        }
    }
}
