//! The access settings that are not authorizers, compiled: CORS (`[cors]`, a route's `cors`),
//! IP rules (`server.allow_ips` / `deny_ips`, a route's), trusted proxies
//! (`server.trusted_proxies`), a route's client-certificate requirement (`mtls`,
//! `allow_subjects`) and the admin token (`admin.token_sha256`, `admin.metrics_public`).
//!
//! Owns: their compiled shapes ([`AccessConfig`], [`CorsPolicy`], [`IpRules`], [`Cidr`],
//! [`MtlsRule`], [`AdminAuth`]), parsing CIDRs, and the checks with errors naming the key and
//! the line (`*` origins with `allow_credentials` refused, as the Fetch standard forbids it;
//! `mtls` without `tls.client_ca`; malformed CIDRs and hashes). Leaves out: applying them (see
//! `crate::policy`) and the admin listener (see `crate::admin`).

use std::net::IpAddr;

use toml::Spanned;

use super::compile::Ctx;
use super::raw::{RawConfig, RawCors, RawRoute, RawRouteCors};

/// Everything this module compiles, in `Config::access`.
#[derive(Debug, Default)]
pub struct AccessConfig {
    /// `[cors]`: the policy of routes without their own (index 0 of `cors_policies` when set).
    pub cors: Option<usize>,
    /// Every CORS policy: the global one and routes' own (routes name them by index).
    pub cors_policies: Vec<CorsPolicy>,
    /// `server.allow_ips` / `deny_ips`.
    pub ip: IpRules,
    /// `server.trusted_proxies`.
    pub trusted_proxies: Vec<Cidr>,
    /// By route index (as `Config::routes`).
    pub routes: Vec<RouteAccess>,
    /// The admin listener's token.
    pub admin: AdminAuth,
}

/// A route's access settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteAccess {
    /// The route's CORS policy (index in `cors_policies`): its own, the global one, or none
    /// (`cors = false`, or no CORS anywhere).
    pub cors: Option<usize>,
    /// The route's own IP rules (the server's apply first).
    pub ip: IpRules,
    /// `mtls = true`.
    pub mtls: Option<MtlsRule>,
    /// The route's `authorizer` and `scopes`.
    pub auth: super::auth::RouteAuth,
}

/// A CORS policy (API Gateway HTTP API's `CorsConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    pub allow_origins: Vec<OriginPattern>,
    /// Upper case; empty with `any_method`.
    pub allow_methods: Vec<String>,
    pub any_method: bool,
    /// Lower case; empty with `any_header`.
    pub allow_headers: Vec<String>,
    pub any_header: bool,
    /// `access-control-expose-headers`, joined (`None`: not sent).
    pub expose_headers: Option<String>,
    pub max_age: Option<u64>,
    pub allow_credentials: bool,
}

/// An allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`.
    Any,
    /// `scheme://*` (API Gateway's `https://*` / `http://*`): any host and port of that scheme
    /// (the text before the `*`, `https://`). Not `*`: the request's origin is echoed, so it
    /// may be used with credentials.
    Scheme(String),
    /// An exact origin, `scheme://host[:port]`, compared case-insensitively (lower case here).
    Exact(String),
    /// `scheme://*.domain[:port]`: any subdomain (the text before and after the `*`).
    Wildcard { prefix: String, suffix: String },
}

/// Accepted `max_age` (API Gateway's maximum is 86400).
pub const CORS_MAX_AGE: std::ops::RangeInclusive<u64> = 0..=86_400;

/// Allow and deny CIDR lists. An empty `allow` allows all; `deny` wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRules {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
}

impl IpRules {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `ip` passes: not denied, and allowed when an allow list is set.
    pub fn admits(&self, ip: IpAddr) -> bool {
        if self.deny.iter().any(|c| c.contains(ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip))
    }
}

/// An address block, `ADDR/PREFIX` (a bare address is `/32` or `/128`). IPv4-mapped IPv6
/// addresses (`::ffff:a.b.c.d`) match IPv4 blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub net: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDR[/PREFIX]`; host bits set below the prefix are refused (a typo's sign).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address or ADDRESS/PREFIX block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(format!("{s:?}: the prefix must be 0..={max}")),
            },
        };
        let c = Cidr { net, prefix };
        if !c.contains(net) || c.masked(net) != bits(net) {
            return Err(format!(
                "{s:?} has bits set past /{prefix}: did you mean {}/{prefix}?",
                c.network()
            ));
        }
        Ok(c)
    }

    fn masked(&self, ip: IpAddr) -> u128 {
        let (v, width) = match ip {
            IpAddr::V4(a) => (u32::from(a) as u128, 32u32),
            IpAddr::V6(a) => (u128::from(a), 128u32),
        };
        let keep = u32::from(self.prefix).min(width);
        if keep == 0 {
            return 0;
        }
        let drop = width - keep;
        (v >> drop) << drop
    }

    fn network(&self) -> IpAddr {
        match self.net {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(self.masked(self.net) as u32)),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(self.masked(self.net))),
        }
    }

    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => ip,
            },
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                self.masked(ip) == self.masked(self.net)
            }
            _ => false,
        }
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// `mtls = true` (with `allow_subjects`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MtlsRule {
    /// Subject patterns (attribute by attribute, `*` inside a value, see
    /// [`crate::policy::subject`]); empty: any verified certificate.
    pub allow_subjects: Vec<crate::policy::subject::SubjectPattern>,
}

/// `admin.token_sha256` / `admin.metrics_public`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminAuth {
    /// SHA-256 of the bearer token; `None`: the admin listener is open.
    pub token_sha256: Option<[u8; 32]>,
    /// `GET /metrics` needs no token.
    pub metrics_public: bool,
}

/// Compiles `[cors]`, the server's IP rules and trusted proxies, every route's access settings
/// (`routes` in the same order as `raw.route`) and the admin token. `tls_client_ca`: a `[tls]`
/// listener verifies client certificates (`client_ca`), which `mtls` routes need.
pub(super) fn compile(raw: &RawConfig, tls_client_ca: bool, cx: &mut Ctx<'_>) -> AccessConfig {
    let mut cors_policies = Vec::new();
    let cors = raw.cors.as_ref().map(|c| {
        cors_policies.push(cors_policy(c, "cors", cx));
        0
    });
    let s = &raw.server;
    let ip = IpRules {
        allow: cidrs(&s.allow_ips, "server.allow_ips", cx),
        deny: cidrs(&s.deny_ips, "server.deny_ips", cx),
    };
    let trusted_proxies = cidrs(&s.trusted_proxies, "server.trusted_proxies", cx);
    let routes = raw
        .route
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let cors = match r.cors.as_ref().map(|c| (c, c.get_ref())) {
                None => cors,
                // `true` asks for the `[cors]` policy: without one it would silently be none
                Some((c, RawRouteCors::Enabled(true))) => {
                    if cors.is_none() {
                        let m = "cors = true needs a [cors] policy (or give the route its own: cors = { allow_origins = [...] })";
                        cx.err(c, format!("route[{i}].cors"), m);
                    }
                    cors
                }
                Some((_, RawRouteCors::Enabled(false))) => None,
                Some((_, RawRouteCors::Policy(p))) => {
                    cors_policies.push(cors_policy(p, &format!("route[{i}].cors"), cx));
                    Some(cors_policies.len() - 1)
                }
            };
            let ip = IpRules {
                allow: cidrs(list(&r.allow_ips), &format!("route[{i}].allow_ips"), cx),
                deny: cidrs(list(&r.deny_ips), &format!("route[{i}].deny_ips"), cx),
            };
            RouteAccess {
                cors,
                ip,
                mtls: mtls(i, r, tls_client_ca, cx),
                auth: super::auth::route(i, r, &raw.authorizer, cx),
            }
        })
        .collect();
    AccessConfig {
        cors,
        cors_policies,
        ip,
        trusted_proxies,
        routes,
        admin: admin(raw, cx),
    }
}

/// The entries of an optional list (none when absent).
fn list(v: &Option<Spanned<Vec<Spanned<String>>>>) -> &[Spanned<String>] {
    v.as_ref().map_or(&[], |l| l.get_ref().as_slice())
}

/// A list of CIDRs; a malformed entry is an error naming `key[index]` and its line.
fn cidrs(list: &[Spanned<String>], key: &str, cx: &mut Ctx<'_>) -> Vec<Cidr> {
    let mut out = Vec::with_capacity(list.len());
    for (j, c) in list.iter().enumerate() {
        match Cidr::parse(c.get_ref().trim()) {
            Ok(c) => out.push(c),
            Err(m) => cx.err(c, format!("{key}[{j}]"), m),
        }
    }
    out
}

/// A route's `mtls` / `allow_subjects`: client certificates are verified by the TLS handshake,
/// so `mtls` needs a `[tls]` listener with `client_ca`; `allow_subjects` needs `mtls = true`.
fn mtls(i: usize, r: &RawRoute, tls_client_ca: bool, cx: &mut Ctx<'_>) -> Option<MtlsRule> {
    let on = r.mtls.as_ref().is_some_and(|m| *m.get_ref());
    if let (Some(m), true, false) = (&r.mtls, on, tls_client_ca) {
        cx.err(
            m,
            format!("route[{i}].mtls"),
            "needs a [tls] listener with client_ca (client certificates are verified by the handshake)",
        );
    }
    let mut subjects = Vec::new();
    if let Some(list) = &r.allow_subjects {
        if !on {
            cx.err(
                list,
                format!("route[{i}].allow_subjects"),
                "needs mtls = true",
            );
        }
        for (j, p) in list.get_ref().iter().enumerate() {
            let text = p.get_ref();
            let parsed = match text.chars().any(char::is_control) {
                true => Err("control characters"),
                false => crate::policy::subject::SubjectPattern::parse(text),
            };
            match parsed {
                Ok(pattern) => subjects.push(pattern),
                Err(why) => {
                    let m = format!("{why}: a subject pattern is TYPE=VALUE attributes such as \"CN=alice,O=Example\" (`*` inside a value matches any run of its characters)");
                    cx.err(p, format!("route[{i}].allow_subjects[{j}]"), m);
                }
            }
        }
    }
    on.then_some(MtlsRule {
        allow_subjects: subjects,
    })
}

/// `admin.token_sha256` (64 hex digits) and `admin.metrics_public`.
fn admin(raw: &RawConfig, cx: &mut Ctx<'_>) -> AdminAuth {
    let Some(a) = &raw.admin else {
        return AdminAuth::default();
    };
    let token_sha256 = a.token_sha256.as_ref().and_then(|t| match parse_sha256(t.get_ref()) {
        Some(h) => Some(h),
        None => {
            let m = "must be the SHA-256 of the token as 64 hex digits (e.g. `printf %s TOKEN | sha256sum`)";
            cx.err(t, "admin.token_sha256", m);
            None
        }
    });
    AdminAuth {
        token_sha256,
        metrics_public: a.metrics_public,
    }
}

/// 64 hex digits (either case) as 32 bytes.
pub fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let s = s.trim().as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hex = |b: u8| (b as char).to_digit(16);
        let (hi, lo) = (hex(*pair.first()?)?, hex(*pair.get(1)?)?);
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// One CORS policy (`[cors]` or a route's `cors = { ... }`, named by `key`), checked as the
/// Fetch standard requires of a response (§3.2.3, "CORS protocol and credentials": with
/// credentials, `*` is not a wildcard in `Access-Control-Allow-Origin`, so a `*` origin with
/// credentials is refused, as API Gateway does). `*` methods or headers with credentials are
/// accepted: the preflight answer echoes the requested method and header names, never a
/// literal `*`. `*` in `expose_headers` is sent as is: with credentials a browser reads it as
/// the field name `*` (the Fetch standard §3.2.3), exposing nothing beyond the safelisted
/// fields (documented in README).
fn cors_policy(c: &RawCors, key: &str, cx: &mut Ctx<'_>) -> CorsPolicy {
    let credentials = *c.allow_credentials.get_ref();
    let star_with_credentials = |cx: &mut Ctx<'_>, v: &Spanned<String>, k: String| {
        if credentials {
            let m = "\"*\" cannot be used with allow_credentials = true (the Fetch standard: \
                     with credentials `*` is not a wildcard); list the origins, or use \
                     \"https://*\"";
            cx.err(v, k, m);
        }
    };
    let mut allow_origins = Vec::new();
    for (j, o) in c.allow_origins.get_ref().iter().enumerate() {
        let k = format!("{key}.allow_origins[{j}]");
        match parse_origin(o.get_ref()) {
            Ok(OriginPattern::Any) => {
                star_with_credentials(cx, o, k);
                allow_origins.push(OriginPattern::Any);
            }
            Ok(p) => allow_origins.push(p),
            Err(m) => cx.err(o, k, m),
        }
    }
    let (allow_methods, any_method) = tokens(
        &c.allow_methods,
        &format!("{key}.allow_methods"),
        TokenCase::Upper,
        cx,
    );
    let (allow_headers, any_header) = tokens(
        &c.allow_headers,
        &format!("{key}.allow_headers"),
        TokenCase::Lower,
        cx,
    );
    let (expose, any_expose) = tokens(
        &c.expose_headers,
        &format!("{key}.expose_headers"),
        TokenCase::Lower,
        cx,
    );
    let expose_headers = match (any_expose, expose.is_empty()) {
        (true, _) => Some("*".to_string()),
        (false, true) => None,
        (false, false) => Some(expose.join(", ")),
    };
    let max_age = c
        .max_age
        .as_ref()
        .map(|m| cx.range(m, format!("{key}.max_age"), &CORS_MAX_AGE));
    CorsPolicy {
        allow_origins,
        allow_methods,
        any_method,
        allow_headers,
        any_header,
        expose_headers,
        max_age,
        allow_credentials: credentials,
    }
}

/// How a token list is normalised: methods are case-sensitive and conventionally upper case
/// (RFC 9110 §9.1; the Fetch standard upper-cases the standard ones), field names are
/// case-insensitive (RFC 9110 §5.1) and compared lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenCase {
    Upper,
    Lower,
}

/// A list of tokens (RFC 9110 §5.6.2) or `*`: the normalised tokens, and whether `*` was in it
/// (see [`cors_policy`] for `*` with credentials).
fn tokens(
    list: &Spanned<Vec<Spanned<String>>>,
    key: &str,
    case: TokenCase,
    cx: &mut Ctx<'_>,
) -> (Vec<String>, bool) {
    let mut out: Vec<String> = Vec::new();
    let mut any = false;
    for (j, t) in list.get_ref().iter().enumerate() {
        let text = t.get_ref().trim();
        let k = format!("{key}[{j}]");
        if text == "*" {
            any = true;
        } else if text.is_empty() || !text.bytes().all(super::compile::is_tchar) {
            cx.err(t, k, format!("{text:?} is not a token (RFC 9110 §5.6.2)"));
        } else {
            let v = match case {
                TokenCase::Upper => text.to_ascii_uppercase(),
                TokenCase::Lower => text.to_ascii_lowercase(),
            };
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    if any {
        out.clear();
    }
    (out, any)
}

/// An `allow_origins` entry: `*`, `scheme://*`, `scheme://host[:port]` or
/// `scheme://*.domain[:port]`
/// (lower-cased: scheme and host are case-insensitive, RFC 3986 §3.1, §3.2.2). A path, a
/// trailing slash, user info or a query is refused: an origin (the Fetch standard's
/// serialisation, as browsers send it in `Origin`) has none.
pub fn parse_origin(s: &str) -> Result<OriginPattern, String> {
    if s == "*" {
        return Ok(OriginPattern::Any);
    }
    let bad = || {
        format!(
            "{s:?} is not an origin: \"*\", \"scheme://*\", \"scheme://host[:port]\" or \
             \"scheme://*.domain[:port]\" (no path, not even a trailing slash)"
        )
    };
    let lower = s.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(bad)?;
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok || rest.is_empty() {
        return Err(bad());
    }
    if rest == "*" {
        return Ok(OriginPattern::Scheme(format!("{scheme}://")));
    }
    // an IPv6 literal `[..]` keeps its colons: only a `:port` after `]` is a port
    let (host, port) = if rest.starts_with('[') {
        let end = rest.find(']').ok_or_else(bad)?;
        let (h, after) = rest.split_at(end + 1);
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad()),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err(bad());
        }
    }
    let host_ok = |h: &str| {
        !h.is_empty()
            && (h.starts_with('[') && h.ends_with(']')
                || h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)))
    };
    match host.strip_prefix("*.") {
        Some(domain) if host_ok(domain) && !domain.starts_with('[') => {
            Ok(OriginPattern::Wildcard {
                prefix: format!("{scheme}://"),
                suffix: match port {
                    Some(p) => format!(".{domain}:{p}"),
                    None => format!(".{domain}"),
                },
            })
        }
        Some(_) => Err(bad()),
        None if host_ok(host) => Ok(OriginPattern::Exact(lower.clone())),
        None => Err(bad()),
    }
}

impl OriginPattern {
    /// Whether the request's `Origin` (compared case-insensitively) matches.
    pub fn matches(&self, origin: &[u8]) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(o) => origin.eq_ignore_ascii_case(o.as_bytes()),
            // the scheme, then a host[:port] (a bracketed IPv6 literal included): nothing
            // else an origin serialises to (the Fetch standard's "serialization of an origin")
            OriginPattern::Scheme(prefix) => {
                let p = prefix.as_bytes();
                origin.len() > p.len()
                    && origin
                        .get(..p.len())
                        .is_some_and(|x| x.eq_ignore_ascii_case(p))
                    && origin.get(p.len()..).is_some_and(|rest| {
                        rest.iter()
                            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(b))
                    })
            }
            OriginPattern::Wildcard { prefix, suffix } => {
                let (p, s) = (prefix.as_bytes(), suffix.as_bytes());
                origin.len() > p.len() + s.len()
                    && origin
                        .get(..p.len())
                        .is_some_and(|x| x.eq_ignore_ascii_case(p))
                    && origin
                        .get(origin.len() - s.len()..)
                        .is_some_and(|x| x.eq_ignore_ascii_case(s))
                    // the subdomain labels between: no port, path or scheme sneaking in
                    && origin
                        .get(p.len()..origin.len() - s.len())
                        .is_some_and(|mid| {
                            mid.iter()
                                .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(b))
                        })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_matches() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(Cidr::parse("10.1.0.1/16").is_err());
        assert!(Cidr::parse("10.1.0.0/33").is_err());
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert_eq!(
            Cidr::parse("192.0.2.7").unwrap(),
            Cidr {
                net: "192.0.2.7".parse().unwrap(),
                prefix: 32
            }
        );
    }
}
