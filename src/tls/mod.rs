//! TLS configuration: turning certificates, keys and settings into rustls objects.
//!
//! Owns: the crypto provider (ring, with the cipher suites of Mozilla's "intermediate" profile),
//! reading PEM certificates, keys and trust roots ([`certs`]), the edge's
//! `Arc<rustls::ServerConfig>` with its SNI certificate resolver, session tickets and client
//! certificate verifier ([`server`]), the per-upstream `Arc<rustls::ClientConfig>` and the
//! server name sent to an origin ([`client`]), and the facts of a client certificate that later
//! phases and the access log show ([`certs::client_cert_facts`]). Leaves out: socket I/O (the
//! transport drives rustls over monoio) and the TOML schema (see [`crate::config`], whose
//! compile stage calls into this module on the control thread, so every file is read there and
//! never on a worker). Data flows: config file paths → [`certs`] (DER) → [`server`] /
//! [`client`] (rustls configs, shared by every worker through `Arc`) → the compiled config.

pub mod certs;
pub mod client;
pub mod server;

use std::ops::RangeInclusive;
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};

pub use certs::{client_cert_facts, CertExpiry, ClientCert};
pub use client::{ServerNameChoice, UpstreamTls, Verify};
pub use server::{SniResolver, TlsConfig, UnknownSni};

/// Default time a client has to complete its TLS handshake (`tls.handshake_timeout_ms`):
/// nginx's `ssl_handshake_timeout` default is 60 s, but a handshake is a few round trips, and a
/// client that takes longer is more likely a slowloris than a slow network.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Accepted `tls.handshake_timeout_ms`: at least a few round trips on a slow link, at most a
/// minute (a pending handshake holds a connection slot).
pub const HANDSHAKE_TIMEOUT_MS: RangeInclusive<u64> = 100..=60_000;
/// Default number of TLS sessions kept for resumption by session ID
/// (`tls.session_cache_entries`): about 1 MiB at rustls's few hundred bytes per entry. Clients
/// that accept tickets resume by ticket and need no entry.
pub const DEFAULT_SESSION_CACHE_ENTRIES: usize = 4096;
/// Accepted `tls.session_cache_entries` (0: no stateful resumption, tickets only).
pub const SESSION_CACHE_ENTRIES: RangeInclusive<usize> = 0..=1 << 20;
/// `tollgate check` warns about a certificate expiring within this many days.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The oldest TLS version accepted (`tls.min_version`). rustls implements neither TLS 1.1 nor
/// older, so a ClientHello offering only those is refused either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 (RFC 5246) and TLS 1.3 (RFC 8446).
    Tls12,
    /// TLS 1.3 (RFC 8446) only.
    Tls13,
}

impl MinVersion {
    /// The versions rustls may negotiate.
    pub fn versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static BOTH: [&rustls::SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static ONLY_13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            MinVersion::Tls12 => &BOTH,
            MinVersion::Tls13 => &ONLY_13,
        }
    }

    /// As written in the config (`"1.2"`, `"1.3"`).
    pub fn as_str(self) -> &'static str {
        match self {
            MinVersion::Tls12 => "1.2",
            MinVersion::Tls13 => "1.3",
        }
    }
}

/// Whether clients must present a certificate (`tls.client_auth`, with `tls.client_ca`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No `client_ca`: no certificate is asked for.
    Off,
    /// A certificate is asked for and verified when sent; clients without one are let in.
    Optional,
    /// A handshake without a verified client certificate is refused.
    Required,
}

/// The cipher suites of Mozilla's "intermediate" server-side TLS profile (version 5.7,
/// <https://wiki.mozilla.org/Security/Server_Side_TLS>), in its order, as far as rustls
/// implements them (it has no DHE suites). TLS 1.3 (RFC 8446 §B.4): AES-128-GCM, AES-256-GCM,
/// ChaCha20-Poly1305. TLS 1.2 (RFC 5289 for ECDHE with AES-GCM, RFC 7905 for ChaCha20): ECDHE
/// key exchange only (forward secrecy), AEAD ciphers only, ECDSA and RSA certificates.
pub const INTERMEDIATE_SUITES: [rustls::SupportedCipherSuite; 9] = [
    ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The crypto provider every tollgate TLS config uses: ring, restricted to
/// [`INTERMEDIATE_SUITES`] (key exchange groups: ring's X25519, P-256, P-384, as Mozilla's
/// profile lists them).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: INTERMEDIATE_SUITES.to_vec(),
        ..ring::default_provider()
    })
}

/// The ALPN protocol identifiers (RFC 7301 §6, IANA registry) tollgate can serve: HTTP/2
/// over TLS (RFC 9113 §3.2) and HTTP/1.1.
pub const SUPPORTED_ALPN: [&str; 2] = ["h2", "http/1.1"];
