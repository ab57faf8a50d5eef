//! Validation and compilation of traffic management: `[throttle]`, route `throttle` and
//! `api_key_required`, `[[usage_plan]]`, `[[api_key]]`, `[api_keys]` and `server.state_dir`,
//! into a [`ThrottleConfig`]. Errors name the key and the line like every config error. Two API
//! keys with one secret are an error however each gives it (`value` or `value_sha256`): both are
//! compared by SHA-256.

use std::path::PathBuf;
use std::time::Duration;

use ahash::AHashMap;
use sha2::Digest;
use toml::Spanned;

use super::compile::Ctx;
use super::raw::{self, Period, RawConfig, RawLimit};
use crate::throttle::bucket::Rate;
use crate::throttle::spec::{
    ClientBy, KeyIndex, KeySpec, LimitSpec, PlanSpec, QuotaSpec, RouteLimits, ThrottleConfig,
};

/// Largest accepted rate (tokens per second) and burst.
pub const MAX_RATE: f64 = 1e9;
/// A quota's `limit` is below this (requests per period).
pub const MAX_QUOTA: u64 = 1 << 40;

pub(super) fn compile(raw: &RawConfig, cx: &mut Ctx<'_>) -> ThrottleConfig {
    let mut tc = ThrottleConfig::default();
    if let Some(t) = &raw.throttle {
        let every = cx.range(
            &t.sync_interval_ms,
            "throttle.sync_interval_ms",
            &raw::SYNC_INTERVAL_MS,
        );
        // the value only matters when the config is accepted, i.e. in range
        tc.sync_interval = Duration::from_millis(every.max(1));
        match (&t.rate, t.burst) {
            (Some(rate), Some(burst)) => {
                let l = RawLimit {
                    rate: *rate.get_ref(),
                    burst,
                    enforce: t.enforce,
                    throttle_by: None,
                    max_clients: raw::DEFAULT_MAX_CLIENTS,
                };
                tc.gateway = limit(&l, rate, "throttle", cx);
            }
            (Some(rate), None) => cx.err(rate, "throttle.burst", "is required with rate"),
            (None, Some(_)) => {
                let s = &t.sync_interval_ms;
                cx.err(s, "throttle.rate", "is required with burst");
            }
            (None, None) => {}
        }
    }
    let header = raw.api_keys.header.trim().to_ascii_lowercase();
    if header.is_empty() || !header.bytes().all(super::compile::is_tchar) {
        let s = Spanned::new(0..0, ());
        cx.err(&s, "api_keys.header", "must be a header name");
    } else if crate::http::is_interpreted_field(header.as_bytes()) {
        // such a field is framing, hop-by-hop, or forwarded in a form of its own (Host,
        // X-Forwarded-For, x-request-id, which is also logged and echoed to the client):
        // `strip_api_key` could not keep the key from the origin, nor the log from the key
        let s = Spanned::new(0..0, ());
        let m = "must not be a field tollgate interprets or sets (framing, hop-by-hop, \
                 host, x-forwarded-*, x-request-id)";
        cx.err(&s, "api_keys.header", m);
    }
    tc.api_key_header = header;
    tc.flush_interval = Duration::from_millis(cx.range(
        &raw.api_keys.flush_ms,
        "api_keys.flush_ms",
        &raw::QUOTA_FLUSH_MS,
    ));
    tc.state_dir = raw.server.state_dir.as_ref().map(PathBuf::from);

    for (i, r) in raw.route.iter().enumerate() {
        let limit = r
            .throttle
            .as_ref()
            .and_then(|t| limit(t.get_ref(), t, &format!("route[{i}].throttle"), cx));
        if let (Some(t), None) = (&r.throttle, &r.authorizer) {
            let key = format!("route[{i}].throttle.throttle_by");
            principal_needs_authorizer(limit.as_ref(), t, &key, NO_AUTHORIZER, cx);
        }
        tc.routes.push(RouteLimits {
            name: super::compile::route_id(
                r.key.get_ref(),
                r.host.as_ref().map(|h| h.get_ref().as_str()),
            ),
            limit,
            key_required: r.api_key_required,
        });
    }
    for (i, p) in raw.usage_plan.iter().enumerate() {
        let key = format!("usage_plan[{i}]");
        let name = p.name.get_ref();
        if name.is_empty() || raw.usage_plan[..i].iter().any(|q| q.name.get_ref() == name) {
            cx.err(
                &p.name,
                format!("{key}.name"),
                "must be a unique, non-empty name",
            );
        }
        let throttle = p
            .throttle
            .as_ref()
            .and_then(|t| limit(t.get_ref(), t, &format!("{key}.throttle"), cx));
        if let Some(t) = &p.throttle {
            // a plan's limit spans routes, some of which may have no authorizer
            let k = format!("{key}.throttle.throttle_by");
            let m = "\"principal\" is for a route's own limit, or a plan's limit on a route \
                     with an `authorizer` (`routes`): a plan's `throttle` spans routes";
            principal_needs_authorizer(throttle.as_ref(), t, &k, m, cx);
        }
        let quota = p.quota.as_ref().and_then(|q| quota(q, &key, cx));
        let mut routes = Vec::new();
        for (route_key, l) in p.routes.get_ref() {
            match raw.route.iter().position(|r| r.key.get_ref() == route_key) {
                Some(ri) => {
                    let spec = limit(l, &p.routes, &format!("{key}.routes"), cx);
                    if raw.route.get(ri).is_some_and(|r| r.authorizer.is_none()) {
                        let k = format!("{key}.routes.{route_key:?}.throttle_by");
                        principal_needs_authorizer(spec.as_ref(), &p.routes, &k, NO_AUTHORIZER, cx);
                    }
                    if let Some(spec) = spec {
                        routes.push((ri, spec));
                    }
                }
                None => cx.err(
                    &p.routes,
                    format!("{key}.routes"),
                    format!("no route has key {route_key:?}"),
                ),
            }
        }
        tc.plans.push(PlanSpec {
            name: name.clone(),
            throttle,
            quota,
            routes,
        });
    }
    compile_keys(raw, &mut tc, cx);
    tc
}

fn compile_keys(raw: &RawConfig, tc: &mut ThrottleConfig, cx: &mut Ctx<'_>) {
    let mut index = KeyIndex::default();
    // every secret by its SHA-256, whichever way it was given: a `value` on one key and the
    // same secret's `value_sha256` on another would make the second key unreachable
    let mut secrets: Secrets<'_> = AHashMap::new();
    for (i, k) in raw.api_key.iter().enumerate() {
        let key = format!("api_key[{i}]");
        let name = k.name.get_ref();
        if name.is_empty() || raw.api_key[..i].iter().any(|q| q.name.get_ref() == name) {
            cx.err(
                &k.name,
                format!("{key}.name"),
                "must be a unique, non-empty name",
            );
        }
        let plan = match &k.plan {
            Some(p) => match raw
                .usage_plan
                .iter()
                .position(|q| q.name.get_ref() == p.get_ref())
            {
                Some(pi) => Some(pi),
                None => {
                    let m = format!("unknown usage plan {:?}", p.get_ref());
                    cx.err(p, format!("{key}.plan"), m);
                    None
                }
            },
            None => None,
        };
        match (&k.value, &k.value_sha256) {
            (Some(v), None) => {
                let bytes = v.get_ref().as_bytes();
                if bytes.len() < 16 || !bytes.iter().all(|b| b.is_ascii_graphic()) {
                    let m = "must be at least 16 visible ASCII characters";
                    cx.err(v, format!("{key}.value"), m);
                } else {
                    let d = sha2::Sha256::digest(bytes).into();
                    same_secret(&mut secrets, (i, &k.name), d, v, "value", cx);
                    index.plain.entry(bytes.to_vec()).or_insert(i);
                }
            }
            (None, Some(h)) => match parse_sha256(h.get_ref()) {
                Some(d) => {
                    same_secret(&mut secrets, (i, &k.name), d, h, "value_sha256", cx);
                    index.hashed.entry(d).or_insert(i);
                }
                None => {
                    let m = "must be 64 hex digits (SHA-256)";
                    cx.err(h, format!("{key}.value_sha256"), m);
                }
            },
            _ => cx.err(
                &k.name,
                key.clone(),
                "needs exactly one of value or value_sha256",
            ),
        }
        tc.keys.push(KeySpec {
            name: name.clone(),
            plan,
            enabled: k.enabled,
        });
    }
    tc.key_index = index;
}

/// Each API key secret seen so far, by SHA-256: the key's index and name.
type Secrets<'r> = AHashMap<[u8; 32], (usize, &'r Spanned<String>)>;

/// Records the secret (`digest`) of key `this`; when an earlier key has the same secret, the
/// error names that key and its line.
fn same_secret<'r>(
    seen: &mut Secrets<'r>,
    this: (usize, &'r Spanned<String>),
    digest: [u8; 32],
    at: &Spanned<String>,
    field: &str,
    cx: &mut Ctx<'_>,
) {
    match seen.get(&digest) {
        Some(&(first, name)) => {
            let (line, _) = super::line_col(cx.text(), name.span().start);
            let m = format!(
                "the same secret is used by api_key[{first}] {:?} (line {line})",
                name.get_ref()
            );
            cx.err(at, format!("api_key[{}].{field}", this.0), m);
        }
        None => {
            seen.insert(digest, this);
        }
    }
}

fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    // only hex digits: `from_str_radix` alone would also take a sign ("+f")
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let hex = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

/// `throttle_by = "principal"` keys buckets by what a route's authorizer admitted: refused
/// where no authorizer runs (a route without `authorizer`, a usage plan's limit spanning routes).
fn principal_needs_authorizer<T>(
    spec: Option<&LimitSpec>,
    at: &Spanned<T>,
    key: &str,
    why: &str,
    cx: &mut Ctx<'_>,
) {
    if spec.is_some_and(|s| s.by == Some(ClientBy::Principal)) {
        cx.err(at, key.to_string(), why);
    }
}

const NO_AUTHORIZER: &str = "\"principal\" needs the route's `authorizer` (only requests an \
                             authorizer admitted have a principal)";

fn limit<T>(l: &RawLimit, at: &Spanned<T>, key: &str, cx: &mut Ctx<'_>) -> Option<LimitSpec> {
    // every setting is checked before giving up, so one run reports all of a limit's errors
    let mut ok = true;
    if !(l.rate > 0.0 && l.rate <= MAX_RATE) {
        let m = format!(
            "must be in (0, {MAX_RATE}] per second, above 0 (got {})",
            l.rate
        );
        cx.err(at, format!("{key}.rate"), m);
        ok = false;
    }
    if l.burst == 0 || l.burst > MAX_RATE as u64 {
        let m = format!("must be in 1..={} (got {})", MAX_RATE as u64, l.burst);
        cx.err(at, format!("{key}.burst"), m);
        ok = false;
    }
    let by = match l.throttle_by.as_deref() {
        None => None,
        Some("ip") => Some(ClientBy::Ip),
        Some("api_key") => Some(ClientBy::ApiKey),
        // where it may be used is checked by the caller (a route with an authorizer)
        Some("principal") => Some(ClientBy::Principal),
        Some(h) if h.starts_with("header:") && h.len() > 7 => {
            let name = h[7..].trim().to_ascii_lowercase();
            if !name.bytes().all(super::compile::is_tchar) {
                cx.err(at, format!("{key}.throttle_by"), "invalid header name");
                ok = false;
            }
            Some(ClientBy::Header(name))
        }
        Some(other) => {
            let m = format!(
                "{other:?}: expected \"ip\", \"api_key\", \"principal\" or \"header:NAME\""
            );
            cx.err(at, format!("{key}.throttle_by"), m);
            ok = false;
            None
        }
    };
    if !raw::MAX_CLIENTS.contains(&l.max_clients) {
        let m = format!(
            "must be in {}..={} (got {})",
            raw::MAX_CLIENTS.start(),
            raw::MAX_CLIENTS.end(),
            l.max_clients
        );
        cx.err(at, format!("{key}.max_clients"), m);
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(LimitSpec {
        rate: Rate {
            rate: l.rate,
            burst: l.burst,
        },
        enforce: l.enforce,
        by,
        max_clients: l.max_clients,
    })
}

fn quota(q: &Spanned<raw::RawQuota>, key: &str, cx: &mut Ctx<'_>) -> Option<QuotaSpec> {
    let r = q.get_ref();
    // every setting is checked before giving up, so one run reports all of a quota's errors
    let mut ok = true;
    if r.limit == 0 || r.limit >= MAX_QUOTA {
        let m = format!("must be in 1..{} (below 2^40; got {})", MAX_QUOTA, r.limit);
        cx.err(q, format!("{key}.quota.limit"), m);
        ok = false;
    }
    let (max_offset, period) = match r.period {
        Period::Day => (0, "day"),
        Period::Week => (6, "week"),
        Period::Month => (27, "month"),
    };
    if r.offset > max_offset {
        let m = format!(
            "must be in 0..={max_offset} for period = \"{period}\" (got {})",
            r.offset
        );
        cx.err(q, format!("{key}.quota.offset"), m);
        ok = false;
    }
    let utc_offset_secs = match r.utc_offset.as_deref() {
        None => 0,
        Some(s) => parse_utc_offset(s).unwrap_or_else(|| {
            cx.err(
                q,
                format!("{key}.quota.utc_offset"),
                "expected \"+HH:MM\" or \"-HH:MM\"",
            );
            ok = false;
            0
        }),
    };
    if !ok {
        return None;
    }
    Some(QuotaSpec {
        limit: r.limit,
        period: r.period,
        offset_days: r.offset,
        utc_offset_secs,
        enforce: r.enforce,
    })
}

fn parse_utc_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 || h < 0 || m < 0 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}
