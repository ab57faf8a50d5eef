//! A worker's view of one JWT authorizer's key set: the process-wide set
//! ([`super::key_share::SharedKeys`]) copied per worker, fetched through the worker's own pools
//! (`crate::client`, the hidden upstream `jwks:NAME`) by whichever worker claims the fetch,
//! refreshed in the background, refetched on an unknown `kid` at most once per
//! [`crate::config::auth::UNKNOWN_KID_REFETCH`] process-wide, and kept (the last good one)
//! when the identity provider is down.
//!
//! Owns: [`KeyStore`] (the worker's copy of the published set and its generation number) and
//! the fetch (a GET of `jwks_uri`, or of the issuer's OpenID Connect discovery document and
//! then of the `jwks_uri` it names). Leaves out: who may fetch when, and the set all workers
//! share (see [`super::key_share`]), parsing key sets (see [`super::jwks`]), verifying tokens
//! (see [`super::jwt`]), and what a missing key set means for the request (see
//! [`super::jwt_authorizer`]: 500).
//!
//! Data flow: a request reads the shared generation number (one atomic load); when it moved,
//! the worker copies the new `Arc<KeySet>` under the shared lock, else it verifies with its
//! copy — no lock on the hot path. A request that needs a fetch (no set yet, an unknown `kid`)
//! claims it ([`SharedKeys::claim`]): the claiming worker spawns the fetch as its own task
//! ([`monoio::spawn`]) owning what it needs (the shared state's `Arc`, the generation's
//! `Rc<Upstream>` and `Arc<Config>`, a private empty buffer pool), so a request that gave up
//! cannot strand it half done; every other request, on any worker, polls the shared
//! completion counter (a [`WAIT_POLL`] monoio sleep, at most [`FETCH_DEADLINE`]) — one fetch
//! for the whole process, many waiters. Each worker calls [`KeyStore::prefetch`] when it starts
//! serving and after a reload; only the first claims the fetch. A request that holds a usable
//! set never waits: a set older than `jwks_refresh_s` makes it claim a background fetch (at
//! most one process-wide) and it goes on with the old set. The fetch ends within
//! [`JWKS_FETCH_TIMEOUT`] per GET and returns its connection to the pool before it ends (it
//! never holds one while idle); dropped unfinished (its runtime stopping), it ends the claim
//! as failed so no other worker waits for it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::jwks::KeySet;
use super::key_share::{Claim, SharedKeys, Snapshot, Want, FETCH_DEADLINE, RETRY_AFTER_FAILURE};
use crate::client::{self, BodyReader, ClientCx, OutboundHead, Upstream, Whole};
use crate::config::auth::{parse_url, HttpTarget, KeySource};
use crate::config::auth_jwt::JWKS_FETCH_TIMEOUT;
use crate::config::Config;
use crate::transport::bufpool::BufPool;
use crate::worker::Cx;

/// The largest key set or discovery document read; a larger one fails the fetch.
pub const MAX_KEY_SET_BYTES: usize = 1024 * 1024;
/// How often a request waiting for a fetch (on any worker) looks whether it ended.
pub const WAIT_POLL: Duration = Duration::from_millis(5);

/// A worker's view of one JWT authorizer's key set (see the module doc).
pub struct KeyStore {
    shared: Arc<SharedKeys>,
    /// The worker's copy of the published set.
    copy: RefCell<Snapshot>,
    /// No stale-set check (which takes the shared lock) before this.
    quiet_until: Cell<Option<Instant>>,
}

/// Why the store gave no new set after an unknown `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refetch {
    /// A newer set is published (fetched now, or by another worker just before): verify again.
    Fetched,
    /// The last refetch for an unknown `kid` was less than
    /// [`crate::config::auth::UNKNOWN_KID_REFETCH`] ago.
    TooSoon,
    /// The fetch failed (the last good set stays).
    Failed,
    /// The client of the waiting request went away (the fetch goes on for the others).
    Gone,
}

/// The answer of [`KeyStore::current`].
#[derive(Clone)]
pub enum Current {
    /// The set to verify with.
    Set(Arc<KeySet>),
    /// No set: the fetch failed, or failed less than [`RETRY_AFTER_FAILURE`] ago.
    Unavailable,
    /// The client of the waiting request went away (the fetch goes on for the others).
    Gone,
}

impl KeyStore {
    /// The worker's view of `shared`.
    pub fn new(shared: Arc<SharedKeys>) -> KeyStore {
        KeyStore {
            shared,
            copy: RefCell::new(Snapshot::default()),
            quiet_until: Cell::new(None),
        }
    }

    /// The process-wide state this store copies.
    pub fn shared(&self) -> &Arc<SharedKeys> {
        &self.shared
    }

    /// Copies the published set when its generation number moved (one atomic load otherwise).
    fn sync(&self) {
        if self.shared.published() != self.copy.borrow().generation {
            *self.copy.borrow_mut() = self.shared.snapshot();
        }
    }

    /// The current set, if any.
    pub fn set(&self) -> Option<Arc<KeySet>> {
        self.sync();
        self.copy.borrow().set.clone()
    }

    /// The generation number of the worker's copy.
    pub fn generation(&self) -> u64 {
        self.copy.borrow().generation
    }

    /// Fetches started so far, process-wide.
    pub fn fetches(&self) -> u64 {
        self.shared.fetches()
    }

    /// The set to verify with. With a set, it is returned at once (older than `refresh`, a
    /// background fetch is claimed). Without one, the request waits for a fetch (claimed now,
    /// or the one in flight on any worker); `None` when there is still no set (the fetch
    /// failed, or failed less than [`RETRY_AFTER_FAILURE`] ago). `gone` ends the wait when
    /// the request's client leaves (an HTTP/2 reset, a closed connection).
    pub async fn current<G: Future<Output = ()>>(
        &self,
        w: &Cx<'_>,
        (source, issuer): (&KeySource, &str),
        refresh: Duration,
        gone: impl FnOnce() -> G,
    ) -> Current {
        self.sync();
        let now = Instant::now();
        let (set, fetched) = {
            let c = self.copy.borrow();
            (c.set.clone(), c.fetched)
        };
        if let Some(set) = set {
            let stale = fetched.is_none_or(|at| now.saturating_duration_since(at) >= refresh);
            let quiet = self.quiet_until.get().is_some_and(|until| now < until);
            if stale && !quiet {
                match self.shared.claim(Want::Refresh(refresh), now) {
                    Claim::Start { .. } => start(w, &self.shared, source, issuer),
                    // another worker refreshes, or the IdP is down: do not ask again (under
                    // the lock) on every request meanwhile
                    _ => self.quiet_until.set(Some(now + RETRY_AFTER_FAILURE)),
                }
            }
            return Current::Set(set);
        }
        let ticket = match self.shared.claim(Want::First, now) {
            Claim::Start { ticket } => {
                start(w, &self.shared, source, issuer);
                Some(ticket)
            }
            Claim::InFlight { ticket } => Some(ticket),
            Claim::Fresh => None,
            Claim::Failed | Claim::TooSoon => return Current::Unavailable,
        };
        if let Some(ticket) = ticket {
            if client::unless(self.wait(ticket), gone()).await.is_none() {
                return Current::Gone;
            }
        }
        self.set().map_or(Current::Unavailable, Current::Set)
    }

    /// Claims the first fetch when there is no set yet and no fetch in flight or failed just
    /// now, process-wide (nothing waits for it).
    pub fn prefetch(&self, w: &Cx<'_>, source: &KeySource, issuer: &str) {
        if self.set().is_some() {
            return;
        }
        if let Claim::Start { .. } = self.shared.claim(Want::First, Instant::now()) {
            start(w, &self.shared, source, issuer);
        }
    }

    /// After a token named a `kid` the worker's set lacks: the request waits for a fetch (the
    /// one in flight anywhere, or a new one when the last refetch for an unknown `kid` was at
    /// least [`crate::config::auth::UNKNOWN_KID_REFETCH`] ago process-wide and no fetch failed
    /// in the last [`RETRY_AFTER_FAILURE`]), or takes the newer set another worker published.
    /// `gone` ends the wait when the request's client leaves.
    pub async fn refetch_for_kid<G: Future<Output = ()>>(
        &self,
        w: &Cx<'_>,
        (source, issuer): (&KeySource, &str),
        gone: impl FnOnce() -> G,
    ) -> Refetch {
        let have = self.generation();
        let ticket = match self.shared.claim(Want::Kid { have }, Instant::now()) {
            Claim::Start { ticket } => {
                start(w, &self.shared, source, issuer);
                Some(ticket)
            }
            Claim::InFlight { ticket } => Some(ticket),
            Claim::Fresh => None,
            Claim::Failed => return Refetch::Failed,
            Claim::TooSoon => return Refetch::TooSoon,
        };
        if let Some(ticket) = ticket {
            if client::unless(self.wait(ticket), gone()).await.is_none() {
                return Refetch::Gone;
            }
        }
        self.sync();
        if self.generation() != have {
            Refetch::Fetched
        } else {
            Refetch::Failed
        }
    }

    /// Waits (polling, bounded by [`FETCH_DEADLINE`]) until a fetch ended after `ticket`.
    async fn wait(&self, ticket: u64) {
        let until = Instant::now() + FETCH_DEADLINE;
        while self.shared.completed() == ticket && Instant::now() < until {
            monoio::time::sleep(WAIT_POLL).await;
        }
    }
}

/// Starts the fetch this worker claimed, as its own task. Its data is owned (`'static`): the
/// shared state, the generation's upstream and config; it ends within two
/// [`JWKS_FETCH_TIMEOUT`]s, and always ends the claim (see [`Claimed`]).
fn start(w: &Cx<'_>, shared: &Arc<SharedKeys>, source: &KeySource, issuer: &str) {
    let claimed = Claimed(Some(shared.clone()));
    let target = match source {
        KeySource::Jwks(t) | KeySource::Discovery(t) => t,
    };
    let Some(up) = w.g.upstreams.get(target.upstream).cloned() else {
        claimed.end(Err("the key set's upstream is missing".into()));
        return;
    };
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
        claimed.end(got);
    }));
}

/// A claimed fetch: ended with its outcome, or as failed when dropped unfinished (the task
/// dropped by a stopping runtime), so that no worker waits for it.
struct Claimed(Option<Arc<SharedKeys>>);

impl Claimed {
    fn end(mut self, got: Result<KeySet, String>) {
        if let Some(s) = self.0.take() {
            s.finish(got);
        }
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.finish(Err("the fetch was abandoned".into()));
        }
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
