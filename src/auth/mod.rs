//! Authorizers: who the caller is, decided before the integration runs.
//!
//! Owns: the lifecycle's authorizer phase ([`authorize`]: the route's `[[authorizer]]`, if any,
//! admits the request or refuses it), what an admitted caller is ([`Principal`], kept in the
//! exchange state and read by the access log's `$context.authorizer.*` / `$context.identity.*`,
//! Lambda events' `requestContext.authorizer`, per-principal throttling and the parameter
//! mapping of later work), and each worker's authorizer state ([`WorkerAuth`]: key sets, token
//! and result caches, in-flight lookups; per core, `Rc`/`Cell`, never shared across workers).
//! The three kinds:
//! - **JWT** ([`jwt`] verifies a token against a key set, sans-IO; [`jwks`] parses key sets;
//!   [`token_cache`] keeps verified tokens until they expire; [`keys`] fetches and refreshes a
//!   worker's key set through `crate::client`; [`jwt_authorizer`] runs the phase).
//! - **Request** authorizers (API Gateway's Lambda REQUEST authorizer, or an HTTP endpoint):
//!   [`request_payload`] builds what they are sent and reads what they answer, [`iam_policy`]
//!   evaluates IAM-policy answers, [`request`] calls them (a function through the Lambda
//!   integration's invoker, a URL through `crate::client`) with a per-worker result cache and
//!   coalescing of identical lookups.
//! - **IAM** ([`iam`]): SigV4 on the incoming request, verified with `crate::aws::sigv4`.
//!
//! Leaves out: the API key check (the lifecycle's, which runs after this phase), CORS, IP rules
//! and client certificates (see `crate::policy`), compiling the settings (see
//! `crate::config::auth`), and mapping a refusal to its status (see `crate::error`).

pub mod carry;
pub mod iam;
pub mod iam_policy;
pub mod jwks;
pub mod jwt;
pub mod jwt_authorizer;
pub mod key_share;
pub mod keys;
pub mod request;
pub use request::SharedAnswers;
pub mod request_payload;
pub mod token_cache;

use std::borrow::Cow;
use std::rc::Rc;

use crate::config::{AuthorizerKind, Config};
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::RequestHead;
use crate::session::Session;
use crate::worker::Cx;

/// A JSON object (claims, an authorizer's context).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Who an authorizer admitted, and what it said about them. Shared (`Rc`) between the
/// request's state and the worker's caches, so a cache hit costs a reference count.
#[derive(Debug)]
pub struct Principal {
    /// Index in `Config::authorizers`.
    pub authorizer: usize,
    /// The principal's id: a request authorizer's `principalId`, a JWT's `sub`, the IAM
    /// user's ARN (empty when the authorizer named none).
    pub id: Box<str>,
    pub identity: Identity,
    /// The caller's key for `throttle_by = "principal"` when `id` is empty (a simple-response
    /// request authorizer names no principal; a JWT without `sub`): a digest of what
    /// identified the caller (the identity-source values; the issuer and `jti`, else the
    /// token), so each caller keeps a bucket of its own. `None`: `id` is the key (see
    /// [`Principal::throttle_key`]).
    pub throttle: Option<Box<str>>,
}

/// What each kind of authorizer knows about the caller.
#[derive(Debug)]
pub enum Identity {
    /// `requestContext.authorizer.jwt`: the token's claims and scopes.
    Jwt {
        claims: JsonObject,
        scopes: Vec<Box<str>>,
    },
    /// `requestContext.authorizer.lambda`: the context the authorizer returned.
    Lambda { context: JsonObject },
    /// `requestContext.authorizer.iam` / `$context.identity.*`.
    Iam {
        access_key: Box<str>,
        user_arn: Box<str>,
        account_id: Box<str>,
    },
}

impl Principal {
    /// The key `throttle_by = "principal"` counts under: the id, or when it is empty the
    /// digest the authorizer set (empty only when it set none).
    pub fn throttle_key(&self) -> &str {
        match (&*self.id, &self.throttle) {
            ("", Some(t)) => t,
            (id, _) => id,
        }
    }

    /// `$context.authorizer.PATH` as text: `principalId`; a JWT's `claims.NAME`; a request
    /// authorizer's context `NAME`. Strings as they are, other JSON values as JSON text.
    pub fn authorizer_var(&self, path: &str) -> Option<Cow<'_, str>> {
        if path == "principalId" {
            return Some(Cow::Borrowed(&self.id));
        }
        match &self.identity {
            Identity::Jwt { claims, .. } => json_text(claims.get(path.strip_prefix("claims.")?)?),
            Identity::Lambda { context } => json_text(context.get(path)?),
            Identity::Iam { .. } => None,
        }
    }

    /// `$context.identity.NAME` of an IAM-authorized caller: `userArn`, `user`, `accessKey`,
    /// `accountId`, `caller`.
    pub fn identity_var(&self, name: &str) -> Option<&str> {
        match &self.identity {
            Identity::Iam {
                access_key,
                user_arn,
                account_id,
            } => match name {
                "userArn" | "user" | "caller" => Some(user_arn),
                "accessKey" => Some(access_key),
                "accountId" => Some(account_id),
                _ => None,
            },
            _ => None,
        }
    }
}

fn json_text(v: &serde_json::Value) -> Option<Cow<'_, str>> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(Cow::Borrowed(s)),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// A worker's state of every authorizer, by index in `Config::authorizers`.
pub struct WorkerAuth {
    pub states: Vec<AuthorizerState>,
}

/// One authorizer's per-worker state.
pub enum AuthorizerState {
    Jwt(Rc<jwt_authorizer::JwtState>),
    Request(Rc<request::RequestState>),
    Iam,
}

impl WorkerAuth {
    /// The state for `config`'s authorizers; on a new generation, `prev` is the worker's
    /// generation before (not necessarily the one published just before, when the worker
    /// lagged). An authorizer of the same name, at the same index, with settings that shape its
    /// state unchanged keeps its state (token cache, key set copy, result cache, lookups in
    /// flight): see [`carry`].
    pub fn new(config: &Config, prev: Option<(&Config, &WorkerAuth)>) -> WorkerAuth {
        let states = config
            .authorizers
            .iter()
            .enumerate()
            .map(|(i, a)| {
                // the principals a state caches name their authorizer by index
                let old = prev.and_then(|(pc, pa)| {
                    let oc = pc.authorizers.get(i).filter(|o| o.name == a.name)?;
                    Some((pc, oc, pa.states.get(i)?))
                });
                match &a.kind {
                    AuthorizerKind::Jwt(j) => {
                        let old = old.and_then(|(_, oc, os)| match (&oc.kind, os) {
                            (AuthorizerKind::Jwt(oj), AuthorizerState::Jwt(s)) => Some((oj, s)),
                            _ => None,
                        });
                        let kept = carry::jwt_state(j, old);
                        AuthorizerState::Jwt(
                            kept.unwrap_or_else(|| Rc::new(jwt_authorizer::JwtState::new(j))),
                        )
                    }
                    AuthorizerKind::Request(r) => {
                        let old = old.and_then(|(pc, oc, os)| match (&oc.kind, os) {
                            (AuthorizerKind::Request(or), AuthorizerState::Request(s)) => {
                                Some(((or, &pc.functions[..]), s))
                            }
                            _ => None,
                        });
                        let kept = carry::request_state((r, &config.functions), old);
                        AuthorizerState::Request(
                            kept.unwrap_or_else(|| Rc::new(request::RequestState::new(r))),
                        )
                    }
                    AuthorizerKind::Iam(_) => AuthorizerState::Iam,
                }
            })
            .collect();
        WorkerAuth { states }
    }
}

/// The authorizer phase: the route's authorizer admits the request (its [`Principal`] goes to
/// `st.principal`) or refuses it (401, 403, or 500 when the authorizer itself failed).
/// Routes without an authorizer cost one lookup.
pub async fn authorize<S: Session>(
    w: &Cx<'_>,
    sess: &mut S,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
) -> Result<(), GatewayError> {
    let cfg = &*w.g.config;
    let Some(ra) = cfg.access.routes.get(route) else {
        return Ok(());
    };
    let Some(ix) = ra.auth.authorizer else {
        return Ok(());
    };
    let (Some(a), Some(state)) = (cfg.authorizers.get(ix), w.g.auth.states.get(ix)) else {
        return Err(GatewayError::Internal("route names an unknown authorizer"));
    };
    let principal = match (&a.kind, state) {
        (AuthorizerKind::Jwt(j), AuthorizerState::Jwt(s)) => {
            let gone = || sess.client_gone();
            jwt_authorizer::authorize(w, head, st, ix, j, s, &ra.auth.scopes, gone).await?
        }
        (AuthorizerKind::Request(r), AuthorizerState::Request(s)) => {
            request::authorize(w, &*sess, head, st, route, ix, r, s).await?
        }
        (AuthorizerKind::Iam(i), AuthorizerState::Iam) => {
            iam::authorize(w, sess, head, st, route, ix, i).await?
        }
        _ => return Err(GatewayError::Internal("authorizer state of another kind")),
    };
    st.principal = Some(principal);
    Ok(())
}
