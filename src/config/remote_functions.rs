//! Remote functions (`arn`): compiled into a [`RemoteFunction`] and the hidden upstream
//! `function:NAME` that holds its endpoint's pools.
//!
//! Owns: refusing a local function's keys on a remote one, the endpoint (written, or AWS's for
//! the ARN's region), the hidden upstream's shape (see [`hidden_upstream`]), the warnings
//! `check` prints (an endpoint that does not resolve now, requests that will go unsigned) and
//! the credentials read from the environment at load. Leaves out: parsing ARNs and URLs (see
//! [`super::arn`]) and signing (see `crate::aws`). Runs on the control thread (DNS).

use std::time::Duration;

use toml::Spanned;

use super::arn::{function_path, parse_arn, parse_endpoint, Endpoint};
use super::compile::Ctx;
use super::functions::{refuse, RemoteFunction, HIDDEN_UPSTREAM_PREFIX, REMOTE_RESPONSE_MARGIN};
use super::raw::RawFunction;
use super::resolve::Target;
use super::upstreams::{TargetName, UpstreamConfig};

/// A function in AWS Lambda, or behind anything speaking its Invoke API (`arn`).
pub(super) fn remote(
    i: usize,
    f: &RawFunction,
    arn: &Spanned<String>,
    timeout: Duration,
    upstreams: &mut Vec<UpstreamConfig>,
    cx: &mut Ctx<'_>,
) -> Option<RemoteFunction> {
    let key = |k: &str| format!("function[{i}].{k}");
    let only_local = "only a local function (command) has this key";
    refuse(&f.cwd, key("cwd"), only_local, cx);
    refuse(&f.env, key("env"), only_local, cx);
    refuse(&f.concurrency, key("concurrency"), only_local, cx);
    refuse(&f.idle_ms, key("idle_ms"), only_local, cx);
    refuse(&f.queue, key("queue"), only_local, cx);
    refuse(&f.handler, key("handler"), only_local, cx);
    refuse(&f.memory_mb, key("memory_mb"), only_local, cx);
    refuse(&f.user, key("user"), only_local, cx);
    let parsed = match parse_arn(arn.get_ref()) {
        Ok(a) => a,
        Err(m) => {
            cx.err(arn, key("arn"), m);
            return None;
        }
    };
    let endpoint = match &f.endpoint {
        Some(e) => match parse_endpoint(e.get_ref()) {
            Ok(ep) => ep,
            Err(m) => {
                cx.err(e, key("endpoint"), m);
                return None;
            }
        },
        None => Endpoint::aws(&parsed),
    };
    // problems with the endpoint point at `endpoint`, or at `arn` that implied it
    let (at, at_key) = match &f.endpoint {
        Some(e) => (e.span(), key("endpoint")),
        None => (arn.span(), key("arn")),
    };
    let at = Spanned::new(at, ());
    let hidden = format!("{HIDDEN_UPSTREAM_PREFIX}{}", f.name.get_ref());
    let upstream = hidden_upstream(hidden, &endpoint, timeout, (&at, &at_key), cx)?;
    let credentials = crate::aws::Credentials::from_env();
    if credentials.is_none() {
        let m = "no AWS credentials in the environment (AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY): requests will be unsigned";
        cx.warn(arn, key("arn"), m);
    }
    upstreams.push(upstream);
    Some(RemoteFunction {
        arn: arn.get_ref().clone(),
        region: parsed.region.to_string(),
        account: parsed.account.to_string(),
        function_path: function_path(arn.get_ref()),
        upstream: upstreams.len() - 1,
        host: endpoint.authority(),
        credentials,
    })
}

/// What fails while a hidden upstream's host does not resolve, by the upstream's kind (its
/// name's prefix).
fn what_fails(hidden: &str) -> &'static str {
    if hidden.starts_with(super::auth::JWKS_UPSTREAM_PREFIX) {
        "its key set cannot be fetched and the authorizer's routes answer 500"
    } else if hidden.starts_with(super::auth::AUTHORIZER_UPSTREAM_PREFIX) {
        "calls to the authorizer fail and its routes answer 500"
    } else {
        "its invocations fail (502)"
    }
}

/// The trust roots of a hidden upstream's TLS.
#[derive(Debug)]
pub(super) enum HiddenRoots {
    /// The system's.
    System(rustls::RootCertStore),
    /// None could be loaded, for an authorizer's upstream (`jwks:NAME`, `authorizer:NAME`):
    /// a warning (these words), and the upstream verifies against no roots, so its fetches
    /// fail at run time (the authorizer's routes answer 500, each failure logged) until the
    /// host has a trust store and the config is reloaded. An authorizer has no `ca` key, so
    /// refusing the whole config would leave no way to serve its other routes.
    Missing(String),
    /// None could be loaded, for a remote function's upstream: a config error (these words).
    Refused(String),
}

/// Which [`HiddenRoots`] upstream `name` gets, given what loading the system's roots gave.
pub(super) fn hidden_roots(
    name: &str,
    system: Result<rustls::RootCertStore, String>,
) -> HiddenRoots {
    let why = match system {
        Ok(r) => return HiddenRoots::System(r),
        Err(why) => why,
    };
    let authorizer = name.starts_with(super::auth::JWKS_UPSTREAM_PREFIX)
        || name.starts_with(super::auth::AUTHORIZER_UPSTREAM_PREFIX);
    if authorizer {
        HiddenRoots::Missing(format!(
            "no system trust roots could be loaded ({why}): {} until the host has a trust \
             store (the ca-certificates package, or SSL_CERT_FILE naming a PEM bundle) and \
             the config is reloaded",
            what_fails(name)
        ))
    } else {
        HiddenRoots::Refused(format!(
            "no system trust roots could be loaded ({why}); set `ca` to a PEM bundle"
        ))
    }
}

/// The upstream `function:NAME` holding a remote function's pools (and, named `jwks:NAME` or
/// `authorizer:NAME`, an authorizer's: see `super::auth`): its endpoint's address
/// (looked up now; a name that does not resolve is a warning, its requests fail until the
/// resolver thread finds it), TLS with the system's trust roots for https (SNI and the
/// certificate's name: the endpoint's host), the default connect timeout and pools, a response
/// timeout of the function's plus [`REMOTE_RESPONSE_MARGIN`], no health checks and no passive
/// ejection (one target: ejecting it would fail every invocation for the cooldown).
pub(super) fn hidden_upstream(
    name: String,
    ep: &Endpoint,
    timeout: Duration,
    (at, key): (&Spanned<()>, &str),
    cx: &mut Ctx<'_>,
) -> Option<UpstreamConfig> {
    use crate::tls::client::{self, Roots};
    let target = ep.target();
    let Some(kind) = Target::parse(&target) else {
        cx.err(at, key, format!("{target:?} is not host:port"));
        return None;
    };
    let addrs = match super::resolve::addresses(&kind) {
        Ok(a) => a,
        Err(e) => {
            let m = format!(
                "cannot resolve {target} now ({e}): {} until the resolver thread finds it",
                what_fails(&name)
            );
            cx.warn(at, key, m);
            Vec::new()
        }
    };
    let tls = if ep.tls {
        if let Err(m) = client::target_server_name(&kind) {
            cx.err(at, key, m);
            return None;
        }
        let (roots, digest) = match hidden_roots(&name, client::load_system_roots()) {
            HiddenRoots::System(r) => (Roots::Custom(r), &b""[..]),
            HiddenRoots::Missing(m) => {
                cx.warn(at, key, m);
                (
                    Roots::Custom(rustls::RootCertStore::empty()),
                    &b"no roots"[..],
                )
            }
            HiddenRoots::Refused(m) => {
                cx.err(at, key, m);
                return None;
            }
        };
        let provider = crate::tls::provider();
        match client::build(roots, crate::tls::Verify::On, None, provider) {
            Ok(config) => Some(crate::tls::UpstreamTls {
                config,
                server_name: crate::tls::ServerNameChoice::TargetHost,
                verify: crate::tls::Verify::On,
                // no file and no setting: the system's roots, as an upstream without `ca`
                // (without any, a digest of its own: roots found later make a change)
                digest: <sha2::Sha256 as sha2::Digest>::digest(digest).into(),
            }),
            Err(m) => {
                cx.err(at, key, m);
                return None;
            }
        }
    } else {
        None
    };
    Some(UpstreamConfig {
        name,
        targets: addrs.clone(),
        names: vec![TargetName {
            target,
            kind,
            addrs,
            weight: super::raw::DEFAULT_WEIGHT,
        }],
        resolve_interval: Duration::from_millis(super::raw::DEFAULT_RESOLVE_INTERVAL_MS),
        balance: super::Balance::RoundRobin,
        connect_timeout: Duration::from_millis(super::raw::DEFAULT_CONNECT_TIMEOUT_MS),
        response_timeout: timeout + REMOTE_RESPONSE_MARGIN,
        max_idle_per_worker: super::raw::DEFAULT_MAX_IDLE_PER_WORKER,
        idle_timeout: Duration::from_millis(super::raw::DEFAULT_UPSTREAM_IDLE_MS),
        health: None,
        passive_failures: 0,
        passive_cooldown: Duration::from_millis(super::raw::DEFAULT_PASSIVE_COOLDOWN_MS),
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_system_roots_warn_for_authorizers_and_refuse_for_functions() {
        for name in ["jwks:users", "authorizer:ext"] {
            match hidden_roots(name, Err("none installed".into())) {
                HiddenRoots::Missing(m) => {
                    assert!(m.contains("none installed") && m.contains("500"), "{m}");
                    assert!(!m.contains("`ca`"), "an authorizer has no ca key: {m}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        match hidden_roots("function:f", Err("none installed".into())) {
            HiddenRoots::Refused(m) => assert!(m.contains("set `ca`"), "{m}"),
            other => panic!("function: {other:?}"),
        }
        let some = rustls::RootCertStore::empty();
        assert!(matches!(
            hidden_roots("jwks:users", Ok(some)),
            HiddenRoots::System(_)
        ));
    }
}
