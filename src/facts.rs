//! What is known about a client connection, from the moment it was accepted: its facts as the
//! layers above the transport see them.
//!
//! Owns: [`ConnFacts`] (peer and local address, [`Scheme`], the negotiated [`TlsFacts`] with
//! the verified [`ClientCert`]), plain data with no behaviour beyond formatting the peer's
//! address ([`PeerIp`]). A neutral leaf: it imports no
//! transport, protocol or lifecycle module, so the lifecycle (`X-Forwarded-Proto`, redirects to
//! https, HSTS), the integrations (forwarding fields), the access log and the sessions read a
//! connection's facts without naming the transport that produced them. ([`ClientCert`] is
//! re-exported from [`crate::tls`], which parses it with the rest of the X.509 handling.)
//! Leaves out: capturing them (the accept loop in [`crate::server`] and
//! [`crate::transport::TlsStream`]'s handshake) and where they are kept (boxed, by the
//! connection).
//!
//! Data flow: accept (and handshake) → [`ConnFacts`], once per connection → read by reference
//! by every later phase; never changed after accept.

use std::net::{IpAddr, SocketAddr};

pub use crate::tls::ClientCert;

/// What a server-side handshake established, captured once at accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    /// "TLSv1.2" or "TLSv1.3".
    pub version: &'static str,
    /// The server name the client asked for (RFC 6066 §3), if any.
    pub sni: Option<Box<str>>,
    /// The application protocol agreed with ALPN (RFC 7301), if any.
    pub alpn: Option<Box<[u8]>>,
    /// The verified client certificate (mutual TLS), parsed once at accept.
    pub client_cert: Option<ClientCert>,
}

/// The scheme a request arrived with (`X-Forwarded-Proto`, redirects, the access log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The HTTP version a client connection speaks, chosen at accept: by ALPN on TLS (RFC 7301,
/// RFC 9113 §3.2), by the client preface on a plain listener with `server.h2c` (RFC 9113 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.0 or HTTP/1.1 (each request's head says which).
    Http1,
    /// HTTP/2.
    Http2,
}

/// What is known about a client connection, captured once at accept and kept (boxed) by the
/// connection, so no later phase asks the socket again.
///
/// Kept compact: every idle keep-alive connection holds one (boxed with its listener flag, 56
/// bytes, the allocator's 56-byte class), so addresses are stored as IP and port (a
/// `SocketAddr` is 32 bytes; an IPv6 flow label and scope id are not kept) and the peer's text
/// form is formatted when a request needs it ([`ConnFacts::peer_ip`], on the stack).
#[derive(Debug, Clone)]
pub struct ConnFacts {
    peer_ip: IpAddr,
    local_ip: IpAddr,
    peer_port: u16,
    local_port: u16,
    pub scheme: Scheme,
    /// HTTP/1 unless the connection was dispatched to the HTTP/2 session.
    pub protocol: Protocol,
    /// The negotiated TLS parameters; `None` on plain connections.
    pub tls: Option<Box<TlsFacts>>,
}

impl ConnFacts {
    /// The facts of a plain TCP connection.
    pub fn plain(peer: SocketAddr, local: SocketAddr) -> ConnFacts {
        ConnFacts {
            peer_ip: peer.ip(),
            local_ip: local.ip(),
            peer_port: peer.port(),
            local_port: local.port(),
            scheme: Scheme::Http,
            protocol: Protocol::Http1,
            tls: None,
        }
    }

    /// The facts of a TLS connection, with what its handshake established.
    pub fn tls(peer: SocketAddr, local: SocketAddr, tls: TlsFacts) -> ConnFacts {
        ConnFacts {
            scheme: Scheme::Https,
            tls: Some(Box::new(tls)),
            ..ConnFacts::plain(peer, local)
        }
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        SocketAddr::new(self.peer_ip, self.peer_port)
    }

    /// The address the client connected to.
    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.local_ip, self.local_port)
    }

    /// The peer's address as text (`X-Forwarded-For`, throttling by IP, the access log),
    /// formatted on the stack.
    pub fn peer_ip(&self) -> PeerIp {
        PeerIp::of(self.peer_ip)
    }
}

/// The textual client address for `X-Forwarded-For`, formatted on the stack.
#[derive(Clone, Copy)]
pub struct PeerIp {
    buf: [u8; 46],
    len: u8,
}

impl std::fmt::Debug for PeerIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl PeerIp {
    pub fn new(addr: SocketAddr) -> Self {
        PeerIp::of(addr.ip())
    }

    /// The text of `ip` (an IPv4-mapped IPv6 address as IPv4).
    pub fn of(ip: IpAddr) -> Self {
        let mut buf = [0u8; 46];
        let len = match ip.to_canonical() {
            // the common case, formatted by hand
            std::net::IpAddr::V4(v4) => {
                let mut n = 0;
                for (i, octet) in v4.octets().iter().enumerate() {
                    if i > 0 {
                        buf[n] = b'.';
                        n += 1;
                    }
                    let mut d = crate::fmt::itoa_u64(u64::from(*octet));
                    for &c in d.as_bytes_mut() {
                        buf[n] = c;
                        n += 1;
                    }
                }
                n
            }
            ip => {
                use std::io::Write;
                let mut cur = std::io::Cursor::new(&mut buf[..]);
                let _ = write!(cur, "{ip}");
                cur.position() as usize
            }
        };
        PeerIp {
            buf,
            len: len as u8,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every idle connection keeps its facts boxed beside its listener flag: that box must stay
    /// in the allocator's 56-byte class (at 128 bytes an idle connection cost 0.75 KiB, over the
    /// 0.7 KiB budget; at 56, 0.68).
    #[test]
    fn facts_stay_compact() {
        assert!(std::mem::size_of::<ConnFacts>() <= 48);
    }

    #[test]
    fn addresses_round_trip() {
        let f = ConnFacts::plain(
            "[2001:db8::1]:4000".parse().unwrap(),
            "10.0.0.1:443".parse().unwrap(),
        );
        assert_eq!(f.peer(), "[2001:db8::1]:4000".parse().unwrap());
        assert_eq!(f.local(), "10.0.0.1:443".parse().unwrap());
        assert_eq!(f.peer_ip().as_bytes(), b"2001:db8::1");
        assert_eq!(f.scheme, Scheme::Http);
        assert_eq!(f.protocol, Protocol::Http1);
    }

    #[test]
    fn peer_ip_text() {
        let t = |s: &str| PeerIp::new(s.parse().unwrap()).as_bytes().to_vec();
        assert_eq!(t("10.0.200.7:1"), b"10.0.200.7");
        assert_eq!(t("255.255.255.255:1"), b"255.255.255.255");
        assert_eq!(t("[::ffff:1.2.3.4]:1"), b"1.2.3.4");
        assert_eq!(t("[2001:db8::1]:1"), b"2001:db8::1");
    }
}
