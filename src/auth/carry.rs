//! What a new generation keeps of the authorizers' state.
//!
//! Owns: the decision, authorizer by authorizer, whether a new generation — a reload, or the
//! resolver thread's new addresses for some upstream (which compiles the served config again)
//! — takes over the state the generation before built: the process-wide state
//! ([`keep_shared`]: a JWT authorizer's `SharedKeys`, a request authorizer's `SharedAnswers`,
//! on the control thread before the config is published) and each worker's state
//! ([`jwt_state`], [`request_state`]: the token cache and the worker's copy of the key set, the
//! request authorizer's result cache and its in-flight lookups). Leaves out: the state itself
//! (see [`super::key_share`], [`super::keys`], [`super::token_cache`], [`super::request`]).
//!
//! The rule: an authorizer of the same name and kind whose compiled settings that shape its
//! state are equal ([`JwtView`], [`RequestView`]: `derive(PartialEq)` on a view of the settings,
//! never on the shared `Arc`s; hidden-upstream indices, which move when an unrelated upstream is
//! added, are compared by the URL they reach) keeps its state; any other change empties it.
//! The process-wide state is carried first, from the config being served to the new one, so
//! every worker finds the same `Arc` in the config it takes — also a worker that lagged and
//! skipped a generation (it compares with its own older generation, and carries its state only
//! when that state already holds the new config's `Arc`: otherwise the shared state moved on
//! and the worker starts a fresh view of it).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::jwt_authorizer::JwtState;
use super::request::RequestState;
use crate::config::auth::{
    IdentitySource, JwtAuthorizer, KeySource, RequestAuthorizer, RequestTarget,
};
use crate::config::functions::{FunctionConfig, FunctionKind};
use crate::config::{AuthorizerKind, Config};

/// What a JWT authorizer's key set depends on: where it is fetched from (the URL as written)
/// and, for OpenID Connect discovery, the issuer the document must name.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyView<'a> {
    discovery: bool,
    url: &'a str,
    issuer: Option<&'a str>,
}

impl<'a> KeyView<'a> {
    pub fn of(j: &'a JwtAuthorizer) -> KeyView<'a> {
        match &j.keys {
            KeySource::Jwks(t) => KeyView {
                discovery: false,
                url: &t.url,
                issuer: None,
            },
            KeySource::Discovery(t) => KeyView {
                discovery: true,
                url: &t.url,
                issuer: Some(&j.issuer),
            },
        }
    }
}

/// What a worker's JWT state (its token cache of verified principals, its copy of the key
/// set) depends on: a token verified under these settings stays valid under equal ones.
/// `jwks_refresh_s` is left out: it is read on each request.
#[derive(Debug, PartialEq, Eq)]
pub struct JwtView<'a> {
    keys: KeyView<'a>,
    issuer: &'a str,
    audience: &'a [String],
    identity: &'a IdentitySource,
    leeway: Duration,
    cache_entries: usize,
    cache_bytes: usize,
}

impl<'a> JwtView<'a> {
    pub fn of(j: &'a JwtAuthorizer) -> JwtView<'a> {
        JwtView {
            keys: KeyView::of(j),
            issuer: &j.issuer,
            audience: &j.audience,
            identity: &j.identity,
            leeway: j.leeway,
            cache_entries: j.cache_entries,
            cache_bytes: j.cache_bytes,
        }
    }
}

/// What a request authorizer's answers depend on: who answers (the function's name and what
/// runs it, or the URL as written), how it is asked and answers (payload format, simple
/// responses), what the cache is keyed by (the identity sources), how long and how much it
/// keeps (ttl, sizes). `timeout_ms` is left out: it bounds calls, not answers.
#[derive(Debug, PartialEq)]
pub struct RequestView<'a> {
    target: TargetView<'a>,
    payload: crate::config::functions::PayloadFormat,
    simple_responses: bool,
    identity_sources: &'a [IdentitySource],
    ttl: Duration,
    cache_entries: usize,
    cache_bytes: usize,
}

/// Who answers a request authorizer.
#[derive(Debug, PartialEq)]
enum TargetView<'a> {
    /// A local function: its name and what runs (command, directory, environment, handler).
    Local {
        name: &'a str,
        command: &'a [String],
        cwd: &'a std::path::Path,
        env: &'a [(String, String)],
        handler: &'a str,
    },
    /// A remote function: its name, ARN and endpoint.
    Remote {
        name: &'a str,
        arn: &'a str,
        host: &'a str,
    },
    /// `url`, as written.
    Url(&'a str),
    /// A function index the config does not hold (never compiled so): equal to nothing.
    Unknown,
}

impl<'a> RequestView<'a> {
    /// `functions`: the config's `[[function]]`s, which `function = NAME` indexes.
    pub fn of(r: &'a RequestAuthorizer, functions: &'a [FunctionConfig]) -> RequestView<'a> {
        let target = match &r.target {
            RequestTarget::Url(t) => TargetView::Url(&t.url),
            RequestTarget::Function(ix) => match functions.get(*ix) {
                Some(f) => match &f.kind {
                    FunctionKind::Local(l) => TargetView::Local {
                        name: &f.name,
                        command: &l.command,
                        cwd: &l.cwd,
                        env: &l.env,
                        handler: &l.handler,
                    },
                    FunctionKind::Remote(rf) => TargetView::Remote {
                        name: &f.name,
                        arn: &rf.arn,
                        host: &rf.host,
                    },
                },
                None => TargetView::Unknown,
            },
        };
        RequestView {
            target,
            payload: r.payload,
            simple_responses: r.simple_responses,
            identity_sources: &r.identity_sources,
            ttl: r.ttl,
            cache_entries: r.cache_entries,
            cache_bytes: r.cache_bytes,
        }
    }
}

/// Makes `new` (compiled, not yet published) share the process-wide state of `old` (the config
/// being served) for every authorizer whose state would be the same: the JWT key set when the
/// key source is unchanged, a request authorizer's answers when its [`RequestView`] is equal.
/// Control thread only; called once per new generation, before any worker can see `new`.
pub fn keep_shared(new: &mut Config, old: &Config) {
    for a in &mut new.authorizers {
        let Some(o) = old.authorizers.iter().find(|o| o.name == a.name) else {
            continue;
        };
        match (&mut a.kind, &o.kind) {
            (AuthorizerKind::Jwt(n), AuthorizerKind::Jwt(p))
                if KeyView::of(n) == KeyView::of(p) =>
            {
                n.shared_keys = p.shared_keys.clone();
            }
            (AuthorizerKind::Request(n), AuthorizerKind::Request(p))
                if RequestView::of(n, &new.functions) == RequestView::of(p, &old.functions) =>
            {
                n.shared = p.shared.clone();
            }
            _ => {}
        }
    }
}

/// The worker's previous state of JWT authorizer `config`, when it may serve on: equal
/// settings, and already a view of the (carried) process-wide key set.
pub fn jwt_state(
    config: &JwtAuthorizer,
    old: Option<(&JwtAuthorizer, &Rc<JwtState>)>,
) -> Option<Rc<JwtState>> {
    let (oc, os) = old?;
    let same = JwtView::of(oc) == JwtView::of(config)
        && Arc::ptr_eq(os.keys.shared(), &config.shared_keys);
    same.then(|| os.clone())
}

/// A request authorizer and its config's `[[function]]`s (which `function = NAME` indexes).
pub type RequestSide<'a> = (&'a RequestAuthorizer, &'a [FunctionConfig]);

/// The worker's previous state of request authorizer `config` (with `functions`, its
/// config's), when it may serve on: equal settings, and already backed by the (carried)
/// process-wide answers.
pub fn request_state(
    (config, functions): RequestSide<'_>,
    old: Option<(RequestSide<'_>, &Rc<RequestState>)>,
) -> Option<Rc<RequestState>> {
    let ((oc, ofs), os) = old?;
    let same = RequestView::of(oc, ofs) == RequestView::of(config, functions)
        && Arc::ptr_eq(os.shared(), &config.shared);
    same.then(|| os.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::auth::{AuthorizerState, Identity, Principal, WorkerAuth};

    const API: &str = "\"api\"";
    const API_WEB: &str = "\"api\", \"web\"";

    /// A config with a jwt authorizer (`jwks`: its key set's query, `aud`: its audience
    /// list) and a url request authorizer (`req_extra`: more of its keys), plus `more`
    /// (routes, upstreams).
    fn config(jwks: &str, aud: &str, req_extra: &str, more: &str) -> Config {
        let text = format!(
            "[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"https://idp.example\"\n\
             audience = [{aud}]\njwks_uri = \"http://127.0.0.1:9/keys{jwks}\"\n\n\
             [[authorizer]]\nname = \"ext\"\ntype = \"request\"\nurl = \"http://127.0.0.1:9/authz\"\n\
             simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n{req_extra}\n\n\
             [[route]]\nkey = \"GET /a\"\nmock = {{ body = \"a\" }}\nauthorizer = \"users\"\n\n\
             [[route]]\nkey = \"GET /b\"\nmock = {{ body = \"b\" }}\nauthorizer = \"ext\"\n\n{more}"
        );
        crate::config::from_str(&text).expect("the test config compiles")
    }

    /// What a new generation is built from: `new` carries `old`'s shared state first, as the
    /// control thread does.
    fn next(old: &Config, mut new: Config) -> Config {
        keep_shared(&mut new, old);
        new
    }

    fn jwt(w: &WorkerAuth) -> &Rc<JwtState> {
        match w.states.first() {
            Some(AuthorizerState::Jwt(s)) => s,
            _ => panic!("authorizer 0 is the jwt one"),
        }
    }

    fn req(w: &WorkerAuth) -> &Rc<RequestState> {
        match w.states.get(1) {
            Some(AuthorizerState::Request(s)) => s,
            _ => panic!("authorizer 1 is the request one"),
        }
    }

    fn jwt_cfg(c: &Config) -> &JwtAuthorizer {
        match &c.authorizers[0].kind {
            AuthorizerKind::Jwt(j) => j,
            _ => panic!("jwt"),
        }
    }

    fn req_cfg(c: &Config) -> &RequestAuthorizer {
        match &c.authorizers[1].kind {
            AuthorizerKind::Request(r) => r,
            _ => panic!("request"),
        }
    }

    /// Caches a verified token in `w`'s jwt state.
    fn cache_token(w: &WorkerAuth) {
        let p = Principal {
            authorizer: 0,
            id: "alice".into(),
            identity: Identity::Jwt {
                claims: Default::default(),
                scopes: Vec::new(),
            },
            throttle: None,
        };
        jwt(w).tokens.insert(b"tok", Rc::new(p), u64::MAX);
        assert_eq!(jwt(w).tokens.len(), 1);
    }

    #[test]
    fn an_unrelated_change_keeps_every_authorizers_state_a_changed_one_empties_its_own() {
        let c1 = config("", API, "", "");
        let w1 = WorkerAuth::new(&c1, None);
        cache_token(&w1);
        // a new route and a new user upstream (which moves the hidden upstreams' indices)
        let more = "[[route]]\nkey = \"GET /c\"\nmock = { body = \"c\" }\n\n\
                    [[upstream]]\nname = \"other\"\ntargets = [\"127.0.0.1:8\"]\n";
        let c2 = next(&c1, config("", API, "", more));
        assert!(Arc::ptr_eq(
            &jwt_cfg(&c2).shared_keys,
            &jwt_cfg(&c1).shared_keys
        ));
        assert!(Arc::ptr_eq(&req_cfg(&c2).shared, &req_cfg(&c1).shared));
        let w2 = WorkerAuth::new(&c2, Some((&c1, &w1)));
        assert!(Rc::ptr_eq(jwt(&w2), jwt(&w1)), "the jwt state serves on");
        assert!(
            Rc::ptr_eq(req(&w2), req(&w1)),
            "the request state serves on"
        );
        assert_eq!(jwt(&w2).tokens.len(), 1);

        // the jwt authorizer's audience changes: its token cache empties, its key set (same
        // source) and the request authorizer's state stay
        let c3 = next(&c2, config("", API_WEB, "", more));
        let w3 = WorkerAuth::new(&c3, Some((&c2, &w2)));
        assert!(!Rc::ptr_eq(jwt(&w3), jwt(&w2)));
        assert_eq!(jwt(&w3).tokens.len(), 0);
        assert!(Arc::ptr_eq(
            jwt(&w3).keys.shared(),
            &jwt_cfg(&c1).shared_keys
        ));
        assert!(Rc::ptr_eq(req(&w3), req(&w1)));

        // the request authorizer's ttl changes: both of its levels start afresh
        let c4 = next(&c3, config("", API_WEB, "ttl_s = 60", more));
        assert!(!Arc::ptr_eq(&req_cfg(&c4).shared, &req_cfg(&c3).shared));
        let w4 = WorkerAuth::new(&c4, Some((&c3, &w3)));
        assert!(!Rc::ptr_eq(req(&w4), req(&w3)));
        assert!(Arc::ptr_eq(req(&w4).shared(), &req_cfg(&c4).shared));
        assert!(Rc::ptr_eq(jwt(&w4), jwt(&w3)));

        // a new key source: a new process-wide key set
        let c5 = next(&c4, config("?v=2", API_WEB, "ttl_s = 60", more));
        assert!(!Arc::ptr_eq(
            &jwt_cfg(&c5).shared_keys,
            &jwt_cfg(&c4).shared_keys
        ));
    }

    #[test]
    fn a_worker_that_skipped_a_generation_shares_the_current_key_set() {
        // generation 1 → 2 changes the key source, 2 → 3 changes it back: generation 3's set
        // is generation 2's successor, not generation 1's
        let c1 = config("", API, "", "");
        let c2 = next(&c1, config("?v=2", API, "", ""));
        let c3 = next(&c2, config("", API, "", ""));
        let on_time = WorkerAuth::new(&c2, Some((&c1, &WorkerAuth::new(&c1, None))));
        let on_time = WorkerAuth::new(&c3, Some((&c2, &on_time)));
        let lagging = WorkerAuth::new(&c1, None);
        cache_token(&lagging);
        let lagging = WorkerAuth::new(&c3, Some((&c1, &lagging)));
        assert!(Arc::ptr_eq(
            jwt(&lagging).keys.shared(),
            jwt(&on_time).keys.shared()
        ));
        assert!(Arc::ptr_eq(
            jwt(&lagging).keys.shared(),
            &jwt_cfg(&c3).shared_keys
        ));
        assert!(Arc::ptr_eq(req(&lagging).shared(), req(&on_time).shared()));
    }
}
