//! Which deployment serves a request: the stage a `[[mapping]]` selects (or the top-level
//! routes), and the side of its canary; chosen once, by the route phase, before the route
//! lookup.
//!
//! Owns: [`Served`] (kept in the exchange state, so every later phase that looks the route up
//! again or labels the request sees the same choice), the canary decision and the path the
//! routes of a stage see (the base path stripped). Leaves out: the mapping rules themselves
//! ([`crate::router::front`]) and what a stage is ([`crate::config::apis`]).
//!
//! # The canary decision
//! A stage with a canary sends `share` millionths of its requests to the canary side. A
//! request carrying the canary's `sticky` cookie or field is placed by a hash of that value
//! (FNV-1a, the same on every worker, process and restart), so a client presenting the same
//! value never switches side while the share is unchanged; any other request is placed by the
//! worker's random generator (so 5,000 requests at 10 % land within a fraction of a point).

use crate::config::apis::{Canary, Sticky, CANARY_SCALE};
use crate::config::Config;
use crate::http::RequestHead;
use crate::router::RouteMatch;

/// The deployment serving an exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    /// Index in `config.apis.deployments` (0: the top-level routes).
    pub deployment: u32,
    /// Bytes of the request path that are the mapping's base path.
    pub strip: usize,
}

/// Chooses the deployment for `head`; `random` is asked only for a canary split.
pub fn select(cfg: &Config, head: &RequestHead, random: impl FnOnce() -> u64) -> Served {
    let Some(sel) = pick_stage(cfg, head) else {
        return Served::default();
    };
    let Some(stage) = cfg.apis.stages.get(sel.stage as usize) else {
        return Served::default();
    };
    let deployment = match &stage.canary {
        Some(c) if on_canary(c, head, random) => c.deployment,
        _ => stage.deployment,
    };
    Served {
        deployment,
        strip: sel.strip,
    }
}

/// The stage side that answers a CORS preflight (no canary draw: the stage's own).
pub fn select_main(cfg: &Config, head: &RequestHead) -> Served {
    match pick_stage(cfg, head) {
        Some(sel) => Served {
            deployment: cfg
                .apis
                .stages
                .get(sel.stage as usize)
                .map_or(0, |s| s.deployment),
            strip: sel.strip,
        },
        None => Served::default(),
    }
}

fn pick_stage(cfg: &Config, head: &RequestHead) -> Option<crate::router::front::Selected> {
    if cfg.apis.front.is_empty() {
        return None;
    }
    let host = head.host.map(|s| head.slice(s));
    cfg.apis
        .front
        .select(host, head.path_bytes(), |name| head.header(name))
}

/// The path the routes of the serving deployment see: the request path without the base
/// path (`/` when nothing is left).
pub fn path(head: &RequestHead, served: Served) -> &[u8] {
    match head.path_bytes().get(served.strip..) {
        Some(p) if !p.is_empty() => p,
        _ => b"/",
    }
}

/// The route lookup for `head` in the deployment serving it.
pub fn lookup<'h>(cfg: &Config, head: &'h RequestHead, served: Served) -> Option<RouteMatch<'h>> {
    let host = head.host.map(|s| head.slice(s));
    cfg.router.lookup_in(
        served.deployment,
        head.method_bytes(),
        host,
        path(head, served),
    )
}

/// On a stage with a canary: the response field naming the side and whether the canary
/// served (`None`: no canary, or its `header = ""`).
pub fn canary_field(cfg: &Config, served: Served) -> Option<(&str, bool)> {
    let d = cfg.apis.deployments.get(served.deployment as usize)?;
    let stage = cfg.apis.stages.get(d.stage? as usize)?;
    let c = stage.canary.as_ref()?;
    Some((c.header.as_deref()?, d.canary))
}

fn on_canary(c: &Canary, head: &RequestHead, random: impl FnOnce() -> u64) -> bool {
    if c.share == 0 {
        return false;
    }
    if c.share >= CANARY_SCALE {
        return true;
    }
    let sticky = match &c.sticky {
        Some(Sticky::Cookie(name)) => cookie(head, name),
        Some(Sticky::Header(name)) => head.header(name).filter(|v| !v.is_empty()),
        None => None,
    };
    let draw = match sticky {
        Some(v) => fnv1a(v),
        None => random(),
    };
    draw % u64::from(CANARY_SCALE) < u64::from(c.share)
}

/// The value of cookie `name` in the request's `cookie` fields (RFC 6265 §5.4: `name=value`
/// pairs separated by `;`).
fn cookie<'h>(head: &'h RequestHead, name: &str) -> Option<&'h [u8]> {
    let name = name.as_bytes();
    head.headers
        .iter()
        .filter(|h| head.slice(h.name).eq_ignore_ascii_case(b"cookie"))
        .flat_map(|h| head.slice(h.value).split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            let (n, v) = (pair.get(..eq)?, pair.get(eq + 1..)?);
            (n == name && !v.is_empty()).then_some(v)
        })
}

/// FNV-1a 64: stable across processes (a client's side must not change on restart).
fn fnv1a(v: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in v {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV's low bits mix poorly for short inputs: fold the high half in
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_values_split_near_the_share_and_never_move() {
        let c = Canary {
            deployment: 2,
            share: 100_000, // 10 %
            sticky: None,
            header: None,
        };
        let mut on = 0;
        for i in 0..20_000u32 {
            let v = format!("client-{i}");
            let a = fnv1a(v.as_bytes()) % u64::from(CANARY_SCALE) < u64::from(c.share);
            let b = fnv1a(v.as_bytes()) % u64::from(CANARY_SCALE) < u64::from(c.share);
            assert_eq!(a, b);
            on += u32::from(a);
        }
        // 10 % of 20,000 is 2,000; the binomial standard deviation is 42
        assert!((1_800..=2_200).contains(&on), "{on}");
    }
}
