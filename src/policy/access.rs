//! A route's access rules: the client's address against IP rules, and a verified client
//! certificate for `mtls` routes.
//!
//! Owns: the client address ([`client_ip`]: the socket's peer, or, when that peer is a
//! trusted proxy (`server.trusted_proxies`), the right-most `X-Forwarded-For` entry that is not
//! one), and the phase [`check`]: the server's and the route's `allow_ips` / `deny_ips`, then
//! `mtls` / `allow_subjects`; a refusal is 403 ([`crate::error::Denial`]). Leaves out: the TLS
//! handshake that verified the certificate (see `crate::tls`), compiling the rules (see
//! `crate::config::access`).

use std::net::IpAddr;

use crate::config::access::{Cidr, MtlsRule};
use crate::config::Config;
use crate::error::{Denial, GatewayError};
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::RequestHead;

/// The client's address as the rules and logs see it (see the module doc). Only a trusted
/// peer's `X-Forwarded-For` is read: every field line, comma-separated (RFC 9110 §5.3),
/// walked from the right (the entry the nearest proxy appended) past trusted proxies; the
/// first untrusted entry is the client. An entry that is not an address stops the walk at the
/// last trusted hop: whatever is left of it was written by someone no proxy vouches for.
pub fn client_ip(config: &Config, facts: &ConnFacts, head: &RequestHead) -> IpAddr {
    let peer = facts.peer().ip().to_canonical();
    let trusted = &config.access.trusted_proxies;
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let mut client = peer;
    let lines = head
        .headers
        .iter()
        .rev()
        .filter(|h| head.slice(h.name).eq_ignore_ascii_case(b"x-forwarded-for"));
    for h in lines {
        for entry in head.slice(h.value).rsplit(|&b| b == b',') {
            let Some(ip) = parse_entry(entry.trim_ascii()) else {
                return client;
            };
            client = ip;
            if !is_trusted(trusted, ip) {
                return ip;
            }
        }
    }
    client
}

/// [`client_ip`] when it differs from the socket's peer (what `ExchangeState::client_ip`
/// holds); `None` without trusted proxies (no header read at all) or when the peer is the
/// client.
pub fn forwarded_client(config: &Config, facts: &ConnFacts, head: &RequestHead) -> Option<IpAddr> {
    if config.access.trusted_proxies.is_empty() {
        return None;
    }
    let ip = client_ip(config, facts, head);
    (ip != facts.peer().ip().to_canonical()).then_some(ip)
}

fn is_trusted(trusted: &[Cidr], ip: IpAddr) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

/// An `X-Forwarded-For` entry: an address, maybe with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`, as some proxies write), IPv4-mapped IPv6 as IPv4.
fn parse_entry(e: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(e).ok()?;
    let ip = if let Ok(ip) = s.parse::<IpAddr>() {
        ip
    } else if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        sa.ip()
    } else {
        s.strip_prefix('[')?.strip_suffix(']')?.parse().ok()?
    };
    Some(ip.to_canonical())
}

/// The access phase for a routed request: IP rules on the client address the request filter
/// found (`st.client_ip`, else the peer), then the client-certificate requirement.
pub fn check(
    config: &Config,
    facts: &ConnFacts,
    st: &mut ExchangeState,
    route: usize,
) -> Result<(), GatewayError> {
    let access = &config.access;
    let ra = access.routes.get(route);
    let route_ip = ra.map(|r| &r.ip).filter(|r| !r.is_empty());
    if !access.ip.is_empty() || route_ip.is_some() {
        let ip = st
            .client_ip
            .unwrap_or_else(|| facts.peer().ip().to_canonical());
        if !access.ip.admits(ip) || route_ip.is_some_and(|r| !r.admits(ip)) {
            st.detail = Some(format!("source address {ip} refused").into());
            return Err(GatewayError::Denied(Denial::SourceIp));
        }
    }
    if let Some(rule) = ra.and_then(|r| r.mtls.as_ref()) {
        mtls(rule, facts, st)?;
    }
    Ok(())
}

/// A route's `mtls`: the handshake verified the certificate against `tls.client_ca` (RFC 5280
/// §6 path validation, in rustls); here it must be present, and its subject must match one of
/// `allow_subjects` when set, attribute by attribute (see [`super::subject`]; RFC 5280 §4.1.2.6
/// subject, read back from its RFC 4514 rendering).
fn mtls(rule: &MtlsRule, facts: &ConnFacts, st: &mut ExchangeState) -> Result<(), GatewayError> {
    let Some(cert) = facts.tls.as_ref().and_then(|t| t.client_cert.as_ref()) else {
        st.detail = Some("no client certificate".into());
        return Err(GatewayError::Denied(Denial::ClientCert));
    };
    if rule.allow_subjects.is_empty() {
        return Ok(());
    }
    let dn = cert.subject_dn.as_str();
    let admitted = super::subject::attributes(dn)
        .is_some_and(|attrs| rule.allow_subjects.iter().any(|p| p.matches(&attrs)));
    if !admitted {
        st.detail = Some(format!("client certificate subject {dn:?} not allowed").into());
        return Err(GatewayError::Denied(Denial::ClientCert));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xff_entries() {
        assert_eq!(parse_entry(b"192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(parse_entry(b"192.0.2.1:80"), "192.0.2.1".parse().ok());
        assert_eq!(parse_entry(b"[2001:db8::1]:80"), "2001:db8::1".parse().ok());
        assert_eq!(parse_entry(b"[2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(parse_entry(b"::ffff:10.0.0.1"), "10.0.0.1".parse().ok());
        assert_eq!(parse_entry(b"unknown"), None);
        assert_eq!(parse_entry(b""), None);
    }
}
