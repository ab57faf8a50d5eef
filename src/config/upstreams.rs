//! `[[upstream]]` sections: validation and target resolution.
//!
//! Owns: the compiled [`UpstreamConfig`] and its targets ([`TargetName`]: each `host:port` as
//! written with its weight and every address it stands for), the checks of a target's form (a
//! missing port is named as such), and the ranges of upstream settings (a target's `weight` in
//! [`raw::WEIGHT`]; each address of a host-name target carries the target's weight). Leaves
//! out: looking names up again at run time (see [`crate::server::dns`]) and the per-worker pools
//! built from this (see [`crate::client::pool`]). Data flows raw `[[upstream]]` →
//! [`compile_upstreams`] → `Config::upstreams`, which routes reference by index.

use std::net::SocketAddr;
use std::time::Duration;

use super::compile::Ctx;
use super::forwarding;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::raw;

/// Load-balancing policy of an upstream (`upstream.balance`; the TOML schema deserialises
/// straight into it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    /// Power of two random choices on in-flight requests.
    LeastRequests,
}

/// Active check settings of an upstream (`upstream.health`), run by [`crate::health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes that mark a target healthy.
    pub healthy: u32,
    /// Consecutive failures that mark a target unhealthy.
    pub unhealthy: u32,
}

/// One `[[upstream]]`, with its targets resolved to socket addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    pub name: String,
    /// Every address of every target, in `names` order (what workers balance over; each with
    /// its name's weight, see [`UpstreamConfig::weights`]).
    pub targets: Vec<SocketAddr>,
    /// The targets as written, each with the addresses it stands for.
    pub names: Vec<TargetName>,
    /// How often host-name targets are looked up again.
    pub resolve_interval: Duration,
    pub balance: Balance,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub max_idle_per_worker: usize,
    pub idle_timeout: Duration,
    pub health: Option<CheckSpec>,
    pub passive_failures: u32,
    pub passive_cooldown: Duration,
    /// TLS to the targets (`tls = { ... }`); `None`: plain TCP.
    pub tls: Option<crate::tls::UpstreamTls>,
}

impl UpstreamConfig {
    /// How to speak TLS to `targets[index]`: the client config and the server name to send and
    /// verify (from the target as written, unless `tls.server_name` fixes one). `None`: plain
    /// TCP, or an index out of range, or a target whose host is no valid server name (compile
    /// refuses those, so that cannot happen for a compiled config).
    pub fn tls_for(
        &self,
        index: usize,
    ) -> Option<(
        std::sync::Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )> {
        let tls = self.tls.as_ref()?;
        let addr = self.targets.get(index)?;
        // `targets` is every name's addresses in `names` order: find the name this one is of
        let mut seen = 0;
        let name = self.names.iter().find(|n| {
            seen += n.addrs.len();
            index < seen && n.addrs.contains(addr)
        })?;
        Some((tls.config.clone(), tls.server_name_for(&name.kind)?))
    }

    /// The weight of each of `targets`, one per entry in its order: every address of a name
    /// carries the name's weight (a host name resolving to three addresses with weight 2 is
    /// three targets of weight 2 each, as nginx treats a `server` name with several addresses).
    pub fn weights(&self) -> Vec<u32> {
        let mut w: Vec<u32> = self
            .names
            .iter()
            .flat_map(|n| n.addrs.iter().map(move |_| n.weight))
            .collect();
        // `targets` is `names`' addresses in order, so this changes nothing for a compiled
        // config; it makes the length a promise rather than an assumption
        w.resize(self.targets.len(), raw::DEFAULT_WEIGHT);
        w
    }
}

/// One entry of an upstream's `targets` and the addresses it resolved to (one for an IP
/// literal; every address the name had at load, or at its latest re-resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetName {
    /// As written, `host:port`.
    pub target: String,
    pub kind: super::resolve::Target,
    pub addrs: Vec<SocketAddr>,
    /// `weight` as written ([`raw::DEFAULT_WEIGHT`] for the string form), within
    /// [`raw::WEIGHT`] for a compiled config.
    pub weight: u32,
}

/// What is wrong with the port of an upstream target (`host:port`), if anything: a name
/// without a port would otherwise only say "cannot resolve". A port is required because an
/// upstream target has no scheme to default one from.
fn target_port_problem(t: &str) -> Option<String> {
    port_problem(t, 80)
}

/// Why listen address `s` (`server.listen`, `admin.listen`) did not resolve: a missing port is
/// said so, as for targets, rather than only "cannot resolve" (port 0, any free port, is fine).
pub(super) fn listen_problem(s: &str) -> String {
    match port_problem(s, 8080) {
        Some(m) if !m.contains("port 0") => m,
        _ => format!("cannot resolve {s:?} as host:port"),
    }
}

/// What is wrong with the port of `t` (`host:port`), if anything; `example` is the port a
/// suggested fix uses.
fn port_problem(t: &str, example: u16) -> Option<String> {
    if t.parse::<SocketAddr>().is_ok() {
        return None;
    }
    let no_port = || Some(format!("{t:?} has no port; write \"{t}:{example}\""));
    if t.ends_with(']') {
        return no_port(); // "[::1]"
    }
    let Some((host, port)) = t.rsplit_once(':') else {
        return no_port();
    };
    if host.contains(':') && !host.starts_with('[') {
        return Some(format!(
            "{t:?}: an IPv6 address needs brackets and a port, as \"[::1]:80\""
        ));
    }
    match port.parse::<u16>() {
        _ if host.is_empty() => Some(format!("{t:?} has no host")),
        Ok(0) => Some(format!("{t:?}: port 0 cannot be connected to")),
        Ok(_) => None,
        Err(_) => Some(format!("{t:?}: port {port:?} is not a number in 1..=65535")),
    }
}

/// Bounds of `upstream.resolve_interval_ms`: at least a second (a name is not looked up in a
/// busy loop), at most a day.
pub const RESOLVE_INTERVAL_RANGE_MS: std::ops::RangeInclusive<u64> = 1_000..=86_400_000;

/// One `targets` entry with every address it stands for now (see [`super::resolve`]), weight
/// [`raw::DEFAULT_WEIGHT`].
pub fn resolve_target(s: &str) -> Result<TargetName, String> {
    let kind = super::resolve::Target::parse(s)
        .ok_or_else(|| format!("cannot resolve {s:?} as host:port"))?;
    let addrs = super::resolve::addresses(&kind)
        .map_err(|e| format!("cannot resolve {s:?} as host:port: {e}"))?;
    Ok(TargetName {
        target: s.to_string(),
        kind,
        addrs,
        weight: raw::DEFAULT_WEIGHT,
    })
}

/// Where a problem with the address of `upstream[i].targets[j]` is reported: the element for
/// the string form (`upstream[0].targets[1]`), the `address` key for the table form
/// (`upstream[0].targets[1].address`).
pub(super) fn address_at(i: usize, j: usize, t: &Spanned<raw::RawTarget>) -> (Spanned<()>, String) {
    let r = t.get_ref();
    if r.table {
        let key = format!("upstream[{i}].targets[{j}].address");
        (Spanned::new(r.address.span(), ()), key)
    } else {
        (
            Spanned::new(t.span(), ()),
            format!("upstream[{i}].targets[{j}]"),
        )
    }
}

pub(super) fn compile_upstreams(ups: &[raw::RawUpstream], cx: &mut Ctx<'_>) -> Vec<UpstreamConfig> {
    let mut out: Vec<UpstreamConfig> = Vec::with_capacity(ups.len());
    for (i, u) in ups.iter().enumerate() {
        let name = u.name.get_ref();
        if name.is_empty() {
            cx.err(&u.name, format!("upstream[{i}].name"), "must not be empty");
        } else if ups[..i].iter().any(|p| p.name.get_ref() == name) {
            cx.err(
                &u.name,
                format!("upstream[{i}].name"),
                format!("duplicate upstream {name:?}"),
            );
        }
        let mut targets = Vec::new();
        if u.targets.get_ref().is_empty() {
            cx.err(
                &u.targets,
                format!("upstream[{i}].targets"),
                "needs at least one target",
            );
        }
        let mut names = Vec::new();
        for (j, t) in u.targets.get_ref().iter().enumerate() {
            let weight = cx.range(
                &t.get_ref().weight,
                format!("upstream[{i}].targets[{j}].weight"),
                &raw::WEIGHT,
            );
            let address = t.get_ref().address.get_ref();
            let (at, key) = address_at(i, j, t);
            if let Some(m) = target_port_problem(address) {
                cx.err(&at, key, m);
                continue;
            }
            match resolve_target(address) {
                Ok(name) => {
                    targets.extend(name.addrs.iter().copied());
                    names.push(TargetName { weight, ..name });
                }
                Err(m) => cx.err(&at, key, m),
            }
        }
        let resolve_ms = cx.range(
            &u.resolve_interval_ms,
            format!("upstream[{i}].resolve_interval_ms"),
            &RESOLVE_INTERVAL_RANGE_MS,
        );
        forwarding::check_upstream(i, u, cx);
        let key = |k: &str| format!("upstream[{i}].{k}");
        let health = u.health.as_ref().and_then(|h| {
            let r = h.get_ref();
            // the numbers are checked too before giving up, so one run reports them all
            let bad_path =
                !r.path.starts_with('/') || r.path.bytes().any(|b| b <= b' ' || b == 0x7f);
            if bad_path {
                let m = "must be an origin-form path such as \"/health\"";
                cx.err(h, key("health.path"), m);
            }
            let spec = CheckSpec {
                path: r.path.clone(),
                interval: cx.millis(
                    &r.interval_ms,
                    key("health.interval_ms"),
                    &raw::HEALTH_INTERVAL_MS,
                ),
                timeout: cx.millis(&r.timeout_ms, key("health.timeout_ms"), &raw::TIMEOUT_MS),
                healthy: cx.range(&r.healthy, key("health.healthy"), &raw::HEALTH_THRESHOLD),
                unhealthy: cx.range(
                    &r.unhealthy,
                    key("health.unhealthy"),
                    &raw::HEALTH_THRESHOLD,
                ),
            };
            (!bad_path).then_some(spec)
        });
        let tls = super::tls::upstream(i, u, cx);
        out.push(UpstreamConfig {
            tls,
            health,
            passive_failures: cx.range(
                &u.passive_failures,
                key("passive_failures"),
                &raw::PASSIVE_FAILURES,
            ),
            passive_cooldown: cx.millis(
                &u.passive_cooldown_ms,
                key("passive_cooldown_ms"),
                &raw::TIMEOUT_MS,
            ),
            name: name.clone(),
            targets,
            names,
            resolve_interval: Duration::from_millis(resolve_ms),
            balance: u.balance,
            connect_timeout: cx.millis(
                &u.connect_timeout_ms,
                key("connect_timeout_ms"),
                &raw::TIMEOUT_MS,
            ),
            response_timeout: cx.millis(
                &u.response_timeout_ms,
                key("response_timeout_ms"),
                &raw::TIMEOUT_MS,
            ),
            max_idle_per_worker: cx.range(
                &u.max_idle_per_worker,
                key("max_idle_per_worker"),
                &raw::MAX_IDLE_PER_WORKER,
            ),
            idle_timeout: cx.millis(&u.idle_timeout_ms, key("idle_timeout_ms"), &raw::TIMEOUT_MS),
        });
    }
    out
}
