//! The TOML schema of TLS: `[tls]`, `[[tls.certificate]]` and an upstream's `tls = { ... }`.
//!
//! Owns: the serde structs for those keys and their defaults (as named constants or in
//! [`crate::tls`]), part of [`super::raw`] (which re-exports them) kept apart so the schema file
//! stays small. Leaves out: meaning and file reading (see [`super::tls`]). File paths are kept as
//! written; relative ones resolve against the config file's directory when compiled.

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Default `tls.min_version`.
pub const DEFAULT_TLS_MIN_VERSION: &str = "1.2";

/// `[tls]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// TLS listen addresses, beside the plain `server.listen`.
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    /// `"1.2"` or `"1.3"`.
    #[serde(default = "d_tls_min_version")]
    pub min_version: Spanned<String>,
    /// ALPN protocols offered, in the server's preference order (RFC 7301 §3.2: the server
    /// picks the first of these the client offers). Default `["h2", "http/1.1"]`.
    #[serde(default = "d_alpn")]
    pub alpn: Spanned<Vec<Spanned<String>>>,
    /// PEM bundle of the CAs client certificates must chain to (mutual TLS).
    pub client_ca: Option<Spanned<String>>,
    /// `"required"` or `"optional"` (the default with `client_ca`).
    pub client_auth: Option<Spanned<String>>,
    /// Refuse handshakes whose SNI matches no certificate (or that send none).
    #[serde(default)]
    pub strict_sni: bool,
    #[serde(default = "d_handshake_timeout")]
    pub handshake_timeout_ms: Spanned<u64>,
    /// `Strict-Transport-Security` value sent on responses over TLS.
    pub hsts: Option<Spanned<String>>,
    /// Sessions kept for resumption by session ID (tickets need none).
    #[serde(default = "d_session_cache")]
    pub session_cache_entries: Spanned<usize>,
    /// `[[tls.certificate]]`: one or more; SNI picks by SAN names, the first is the default.
    #[serde(default)]
    pub certificate: Vec<RawCertificate>,
}

/// `[[tls.certificate]]`: file paths, relative ones against the config file's directory.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    /// PEM chain, leaf first.
    pub cert: Spanned<String>,
    /// PEM private key (PKCS#8, RSA or SEC1).
    pub key: Spanned<String>,
}

fn d_tls_min_version() -> Spanned<String> {
    Spanned::new(0..0, DEFAULT_TLS_MIN_VERSION.to_string())
}
fn d_alpn() -> Spanned<Vec<Spanned<String>>> {
    let p = |v: &str| Spanned::new(0..0, v.to_string());
    Spanned::new(0..0, vec![p("h2"), p("http/1.1")])
}
fn d_handshake_timeout() -> Spanned<u64> {
    Spanned::new(0..0, crate::tls::DEFAULT_HANDSHAKE_TIMEOUT_MS)
}
fn d_session_cache() -> Spanned<usize> {
    Spanned::new(0..0, crate::tls::DEFAULT_SESSION_CACHE_ENTRIES)
}

/// An upstream's `tls = { server_name, ca, cert, key, verify }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    /// Name sent in SNI and verified; default: each target's host.
    pub server_name: Option<Spanned<String>>,
    /// PEM bundle the origin's certificate must chain to; default: the system's roots.
    pub ca: Option<Spanned<String>>,
    /// Client certificate chain (PEM) presented to the origin, with `key`.
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    /// `false` accepts any origin certificate (`tollgate check` warns).
    #[serde(default = "d_verify")]
    pub verify: Spanned<bool>,
}

fn d_verify() -> Spanned<bool> {
    Spanned::new(0..0, true)
}
