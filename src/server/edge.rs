//! TLS termination on an accepted connection: the handshake, then the same connection serving
//! as on a plain listener.
//!
//! Owns: [`handshake_then_serve`], the task a TLS listener's accept loop spawns per connection,
//! and the names of handshake outcomes in `tollgate_tls_handshakes_total`. Leaves out: the
//! handshake's mechanics (see [`crate::transport::tls`]), the rustls config (see
//! [`crate::tls::server`]) and HTTP (see [`crate::proxy::conn`]).
//!
//! Data flow: the accept loop counts the connection in `open_connections` and spawns this task
//! at once, so a slow handshake never holds up accepting. The task reads the TLS settings of
//! the generation current at accept (its `ServerConfig`, so a reload with new certificates
//! applies to new handshakes while established connections keep theirs, and its handshake
//! timeout), runs the handshake under that timeout, counts the outcome in the worker's metrics
//! shard, and on success hands the stream with its facts (scheme https, the negotiated TLS
//! parameters) to [`crate::proxy::conn::serve`]. A refused handshake closes the connection
//! (rustls already queued the alert and the transport sent it); it is not a request, so the
//! access log does not see it.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use monoio::net::TcpStream;

use crate::facts::{ConnFacts, PeerIp, Scheme};
use crate::proxy::conn::{serve, Downstream};
use crate::proxy::worker::Worker;
use crate::transport::{HandshakeError, Refused, Stream, TlsStream};

/// The `version` label of a handshake that failed before a protocol version was chosen.
pub const UNKNOWN_VERSION: &str = "unknown";

/// The `result` label of a handshake that failed (RFC 8446 §6.2 alerts, grouped by what an
/// operator does about them).
pub fn reason(e: &HandshakeError) -> &'static str {
    match e {
        HandshakeError::Timeout => "timeout",
        HandshakeError::PeerClosed => "peer_closed",
        HandshakeError::ProtocolVersion(_) => "protocol_version",
        HandshakeError::NoCertificate => "no_certificate",
        HandshakeError::ClientCertificate(_) => "client_certificate",
        HandshakeError::ServerCertificate(_) | HandshakeError::Tls(_) | HandshakeError::Io(_) => {
            "error"
        }
    }
}

/// Uncounts the connection from `open_connections` if the task ends before `serve` takes over
/// (a refused handshake, or a panic inside it).
struct Handshaking<'a>(&'a Worker);

impl Drop for Handshaking<'_> {
    fn drop(&mut self) {
        let c = &self.0.open_connections;
        c.set(c.get().saturating_sub(1));
    }
}

/// Runs the TLS handshake on an accepted connection (already counted in `open_connections`),
/// then serves it like a plain one; see the module docs.
pub async fn handshake_then_serve(
    tcp: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    closed: Rc<Cell<bool>>,
    w: Rc<Worker>,
) {
    let guard = Handshaking(&w);
    // the settings of the generation current at accept; a reload that removed `[tls]` between
    // the accept and now leaves nothing to handshake with: the connection closes
    let Some((cfg, limit)) = w.with_current(|g| {
        let t = g.config.tls.as_ref()?;
        Some((t.server.clone(), t.handshake_timeout))
    }) else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let (tls, facts) = match TlsStream::accept_versioned(tcp, cfg, limit).await {
        Ok(ok) => ok,
        Err(Refused { error, version }) => {
            let version = version.unwrap_or(UNKNOWN_VERSION);
            w.with_current(|g| g.metrics.handshake(version, reason(&error)));
            return; // dropping the stream closes the socket; `guard` uncounts it
        }
    };
    w.with_current(|g| g.metrics.handshake(facts.version, "ok"));
    let facts = ConnFacts {
        peer,
        local,
        peer_ip: PeerIp::new(peer),
        scheme: Scheme::Https,
        tls: Some(Box::new(facts)),
    };
    let conn = Downstream::new(Stream::Tls(Box::new(tls)), facts, closed);
    // `serve` uncounts the connection from here on (its own guard)
    std::mem::forget(guard);
    serve(conn, w.clone()).await;
}
