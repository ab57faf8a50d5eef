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

use crate::config::Config;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::RequestHead;

/// The client's address as the rules and logs see it (see the module doc).
pub fn client_ip(config: &Config, facts: &ConnFacts, head: &RequestHead) -> IpAddr {
    let _ = (config, head);
    facts.peer().ip()
}

/// The access phase for a routed request: IP rules, then the client-certificate requirement.
/// Sets `st.client_ip` when trusted proxies made it differ from the peer.
pub fn check(
    config: &Config,
    facts: &ConnFacts,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
) -> Result<(), GatewayError> {
    let _ = (config, facts, head, st, route);
    Ok(())
}
