//! HTTPS policy on client connections: `server.redirect_https` and `tls.hsts`.
//!
//! Owns: the permanent redirect a request on a plain listener gets when `redirect_https` is
//! on ([`redirect`], built as a mock-like [`MockResponse`] so it goes through the one response
//! type, the response filter and the session like any other answer), and the
//! `Strict-Transport-Security` value a response on a TLS connection carries ([`hsts`], added by
//! the lifecycle's response filter). Leaves out: TLS itself (the transport and
//! [`crate::server`]'s TLS accept) and deciding whether the request was plain (the connection's
//! [`ConnFacts`], captured at accept).

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::{Config, MockResponse};
use crate::facts::{ConnFacts, Scheme};
use crate::http::RequestHead;

/// The status of the redirect: 308 keeps the method and body (RFC 9110 §15.4.9), so a POST
/// sent over plain HTTP is repeated as a POST over HTTPS. It is cacheable by default, so the
/// redirect carries `cache-control: no-store` (see [`redirect`]).
pub const REDIRECT_STATUS: u16 = 308;

/// The redirect's JSON body (API Gateway's `{"message": ...}` shape).
const REDIRECT_BODY: &[u8] = b"{\"message\":\"HTTPS required: use the https URL in Location\"}";

/// The port an `https` URL leaves out (RFC 9110 §4.2.2).
const HTTPS_DEFAULT_PORT: u16 = 443;

/// The `308 Permanent Redirect` to the https URL of this request, when `server.redirect_https`
/// is on and the request came over plain HTTP; `None` otherwise. `Location` is
/// `https://HOST[:PORT]/path?query` (RFC 9110 §10.2.2, §4.2.2): HOST is the request's host
/// (RFC 9110 §7.2) without its port (the local address when the request named none, as an
/// HTTP/1.0 request may), PORT the first `tls.listen` port, left out when it is 443. The path
/// and query are the request's, as received (already percent-encoded: RFC 3986 §2.4).
pub fn redirect(cfg: &Config, facts: &ConnFacts, head: &RequestHead) -> Option<MockResponse> {
    if !cfg.server.redirect_https || facts.scheme != Scheme::Http {
        return None;
    }
    let port = cfg.tls.as_ref()?.listen.first()?.port();
    let location = location(
        head.host_bytes(),
        facts.local().ip(),
        port,
        head.path_bytes(),
        head.query_bytes(),
    );
    let mut h = BytesMut::with_capacity(160 + location.len());
    h.put_slice(b"HTTP/1.1 308 Permanent Redirect\r\nlocation: ");
    h.put_slice(&location);
    // `no-store` (RFC 9111 §5.2.2.5): a 308 is cacheable by default (RFC 9110 §15.4.9, RFC 9111
    // §4.2.2), and its Location carries the request's Host; a shared cache that keys on the
    // path alone would serve a redirect to a host one client chose to every other client.
    // Refusing storage is simpler than validating Host against route hosts and certificate
    // names, and costs one round trip per plain-HTTP visit, which HSTS removes anyway.
    h.put_slice(b"\r\ncache-control: no-store");
    h.put_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    h.put_slice(REDIRECT_BODY.len().to_string().as_bytes());
    h.put_slice(b"\r\n");
    Some(MockResponse {
        status: REDIRECT_STATUS,
        head: h.freeze(),
        body: Bytes::from_static(REDIRECT_BODY),
        present: crate::http::Present::default(),
    })
}

/// `https://HOST[:PORT]PATH[?QUERY]` (see [`redirect`]): `host` without its port, or `local`
/// when the request named no host; `:PORT` unless it is 443.
fn location(
    host: Option<&[u8]>,
    local: std::net::IpAddr,
    port: u16,
    path: &[u8],
    query: Option<&[u8]>,
) -> BytesMut {
    let mut location = BytesMut::with_capacity(64 + path.len() + query.map_or(0, <[u8]>::len));
    location.put_slice(b"https://");
    match host {
        Some(h) if !h.is_empty() => location.put_slice(host_without_port(h)),
        _ => match local {
            std::net::IpAddr::V6(ip) => location.put_slice(format!("[{ip}]").as_bytes()),
            ip => location.put_slice(ip.to_string().as_bytes()),
        },
    }
    if port != HTTPS_DEFAULT_PORT {
        location.put_slice(format!(":{port}").as_bytes());
    }
    if !path.starts_with(b"/") {
        location.put_u8(b'/'); // `OPTIONS *` and the like: the site's root
    }
    location.put_slice(path);
    if let Some(q) = query {
        location.put_u8(b'?');
        location.put_slice(q);
    }
    location
}

/// A Host value without its port: `name:port` → `name`, `[v6]:port` → `[v6]` (RFC 9110 §7.2,
/// RFC 3986 §3.2.2). The parser already checked the host's syntax.
fn host_without_port(h: &[u8]) -> &[u8] {
    if h.starts_with(b"[") {
        return match h.iter().position(|&b| b == b']') {
            Some(end) => h.get(..=end).unwrap_or(h),
            None => h,
        };
    }
    match h.iter().rposition(|&b| b == b':') {
        Some(colon) => h.get(..colon).unwrap_or(h),
        None => h,
    }
}

/// The `Strict-Transport-Security` value for a response on this connection: `tls.hsts` on TLS
/// connections only (RFC 6797 §7.2: a host must not send it over plain HTTP).
pub fn hsts<'a>(cfg: &'a Config, facts: &ConnFacts) -> Option<&'a str> {
    match facts.scheme {
        Scheme::Https => cfg.tls.as_ref()?.hsts.as_deref(),
        Scheme::Http => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_off_hosts() {
        assert_eq!(
            host_without_port(b"api.example.com:8080"),
            b"api.example.com"
        );
        assert_eq!(host_without_port(b"api.example.com"), b"api.example.com");
        assert_eq!(host_without_port(b"[::1]:8080"), b"[::1]");
        assert_eq!(host_without_port(b"[::1]"), b"[::1]");
        assert_eq!(host_without_port(b"10.0.0.1:80"), b"10.0.0.1");
    }

    #[test]
    fn locations() {
        let v4: std::net::IpAddr = [10, 0, 0, 1].into();
        let l = |host: Option<&[u8]>, port, path: &[u8], query: Option<&[u8]>| {
            String::from_utf8(location(host, v4, port, path, query).to_vec()).unwrap()
        };
        assert_eq!(
            l(
                Some(b"api.example.com:8080"),
                8443,
                b"/a/b",
                Some(b"x=1&y=%20")
            ),
            "https://api.example.com:8443/a/b?x=1&y=%20"
        );
        // the default port is left out (RFC 9110 §4.2.2)
        assert_eq!(
            l(Some(b"api.example.com"), 443, b"/", None),
            "https://api.example.com/"
        );
        assert_eq!(
            l(Some(b"[::1]:80"), 443, b"/p", Some(b"")),
            "https://[::1]/p?"
        );
        // no Host (HTTP/1.0): the address the client connected to
        assert_eq!(l(None, 8443, b"/p", None), "https://10.0.0.1:8443/p");
        let v6: std::net::IpAddr = "::1".parse().unwrap();
        let no_host = location(None, v6, 443, b"*", None);
        assert_eq!(&no_host[..], b"https://[::1]/*");
    }
}
