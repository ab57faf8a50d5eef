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

use super::compile::Ctx;
use super::raw::RawConfig;

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
    /// Subject DN patterns (`*` matches any run of characters); empty: any verified
    /// certificate.
    pub allow_subjects: Vec<String>,
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
/// (`routes` in the same order as `raw.route`) and the admin token.
pub(super) fn compile(raw: &RawConfig, tls_client_ca: bool, cx: &mut Ctx<'_>) -> AccessConfig {
    let _ = tls_client_ca;
    let routes = raw
        .route
        .iter()
        .enumerate()
        .map(|(i, r)| RouteAccess {
            auth: super::auth::route(i, r, &raw.authorizer, cx),
            ..RouteAccess::default()
        })
        .collect();
    AccessConfig {
        routes,
        ..AccessConfig::default()
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
