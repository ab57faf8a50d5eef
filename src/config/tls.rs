//! `[tls]`, `server.redirect_https` and upstream `tls = { ... }`: validation and the rustls
//! objects they compile to.
//!
//! Owns: checking every TLS key (versions, ALPN, client auth, HSTS, ranges), resolving file
//! paths (relative ones against the config file's directory, see [`super::from_str_in`]),
//! reading the certificate, key and CA files, pairing each certificate with its key, and the
//! warnings `tollgate check` prints (certificates expired or expiring within
//! [`crate::tls::EXPIRY_WARNING_DAYS`], `verify = false`). Every error names its key and line
//! and, for a file, the file. Leaves out: building the rustls configs themselves
//! ([`crate::tls`]); this module reads files and so runs on the control thread only (startup,
//! `check`, reload), never on a worker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use toml::Spanned;

use super::compile::Ctx;
use super::raw::{RawTls, RawUpstream};
use super::resolve::listen_address;
use super::resolve::Target;
use crate::tls::client::{self, Roots};
use crate::tls::server::{self, ServerSettings};
use crate::tls::{
    certs, ClientAuth, MinVersion, ServerNameChoice, TlsConfig, UnknownSni, UpstreamTls, Verify,
};

/// `path` as written in the config, against `base` (the config file's directory) when relative.
pub(super) fn resolve_path(base: Option<&Path>, path: &str) -> PathBuf {
    let p = Path::new(path);
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    }
}

/// Reads the file `v` names (key `key`), reporting an unreadable or empty path.
fn read(cx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<(PathBuf, Vec<u8>)> {
    if v.get_ref().is_empty() {
        cx.err(v, key, "must be a file path");
        return None;
    }
    let path = resolve_path(cx.base(), v.get_ref());
    match certs::read(&path) {
        Ok(bytes) => Some((path, bytes)),
        Err(m) => {
            cx.err(v, key, m);
            None
        }
    }
}

/// Seconds since the Unix epoch, now.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Warns about a certificate (`key`) that expired or expires within
/// [`crate::tls::EXPIRY_WARNING_DAYS`]. An expired certificate is a warning, not an error: one
/// stale certificate must not stop a gateway serving others from starting or reloading, and
/// the clients that refuse it say why. `check` prints both loudly.
fn expiry_warning(cx: &mut Ctx<'_>, at: &Spanned<String>, key: &str, e: &certs::CertExpiry) {
    let left = e.not_after - now();
    let when = crate::fmt::gmt_time(e.not_after);
    if left <= 0 {
        let m = format!(
            "certificate {:?} EXPIRED on {when}; clients will refuse it",
            e.name
        );
        cx.warn(at, key, m);
    } else if left < crate::tls::EXPIRY_WARNING_DAYS * 86_400 {
        let days = left / 86_400;
        let m = format!(
            "certificate {:?} expires in {days} days ({when}), within {} days",
            e.name,
            crate::tls::EXPIRY_WARNING_DAYS
        );
        cx.warn(at, key, m);
    }
}

/// A certificate chain and its key, read, parsed and paired; errors name `cert_key` or
/// `key_key` (the chain's or the key's problem).
fn pair(
    cx: &mut Ctx<'_>,
    (cert, cert_key): (&Spanned<String>, &str),
    (key, key_key): (&Spanned<String>, &str),
    digest: &mut Sha256,
) -> Option<(std::sync::Arc<rustls::sign::CertifiedKey>, certs::LeafFacts)> {
    let chain = read(cx, cert, cert_key).and_then(|(path, bytes)| {
        digest.update(&bytes);
        match certs::parse_chain(&bytes, &path) {
            Ok(c) => Some((path, c)),
            Err(m) => {
                cx.err(cert, cert_key, m);
                None
            }
        }
    });
    let private = read(cx, key, key_key).and_then(|(path, bytes)| {
        digest.update(&bytes);
        match certs::parse_key(&bytes, &path) {
            Ok(k) => Some((path, k)),
            Err(m) => {
                cx.err(key, key_key, m);
                None
            }
        }
    });
    let ((cert_path, chain), (key_path, private)) = (chain?, private?);
    let fallback = cert_path.display().to_string();
    let facts = chain
        .first()
        .and_then(|leaf| certs::leaf_facts(leaf, &fallback))?;
    let provider = crate::tls::provider();
    match certs::certified_key(chain, private, &provider, &cert_path, &key_path) {
        Ok(ck) => {
            expiry_warning(cx, cert, cert_key, &facts.expiry);
            Some((ck, facts))
        }
        Err(m) => {
            cx.err(key, key_key, m);
            None
        }
    }
}

/// `[tls]`: `None` without it, or when it has errors (reported).
pub(super) fn compile(
    t: Option<&RawTls>,
    taken: &[SocketAddr],
    cx: &mut Ctx<'_>,
) -> Option<TlsConfig> {
    let t = t?;
    let mut ok = true;
    let mut listen = Vec::new();
    if t.listen.is_empty() {
        let at = Spanned::new(0..0, ());
        cx.err(&at, "tls.listen", "needs at least one address");
        ok = false;
    }
    for (i, l) in t.listen.iter().enumerate() {
        let key = format!("tls.listen[{i}]");
        match listen_address(l.get_ref()) {
            Some(a) if a.port() != 0 && (taken.contains(&a) || listen.contains(&a)) => {
                cx.err(
                    l,
                    key,
                    "duplicate listen address (server.listen, admin.listen or tls.listen)",
                );
                ok = false;
            }
            Some(a) => listen.push(a),
            None => {
                cx.err(l, key, super::upstreams::listen_problem(l.get_ref()));
                ok = false;
            }
        }
    }
    let min_version = match t.min_version.get_ref().as_str() {
        "1.2" => MinVersion::Tls12,
        "1.3" => MinVersion::Tls13,
        v => {
            let m = if matches!(v, "1.0" | "1.1") {
                "TLS 1.0 and 1.1 are not supported (RFC 8996); use \"1.2\" or \"1.3\""
            } else {
                "must be \"1.2\" or \"1.3\""
            };
            cx.err(&t.min_version, "tls.min_version", m);
            ok = false;
            MinVersion::Tls12
        }
    };
    let alpn = alpn(t, cx);
    ok &= alpn.is_some();
    let handshake_timeout = cx.millis(
        &t.handshake_timeout_ms,
        "tls.handshake_timeout_ms",
        &crate::tls::HANDSHAKE_TIMEOUT_MS,
    );
    let session_cache_entries = cx.range(
        &t.session_cache_entries,
        "tls.session_cache_entries",
        &crate::tls::SESSION_CACHE_ENTRIES,
    );
    let hsts = t
        .hsts
        .as_ref()
        .and_then(|h| match hsts_problem(h.get_ref()) {
            None => Some(h.get_ref().clone()),
            Some(m) => {
                cx.err(h, "tls.hsts", m);
                ok = false;
                None
            }
        });
    let (client_auth, client_roots) = client_auth(t, cx, &mut ok);
    if t.certificate.is_empty() {
        let at = Spanned::new(0..0, ());
        cx.err(
            &at,
            "tls.certificate",
            "needs at least one [[tls.certificate]]",
        );
        ok = false;
    }
    let mut pairs = Vec::new();
    let mut certificates = Vec::new();
    let mut ignored = Sha256::new();
    for (i, c) in t.certificate.iter().enumerate() {
        let ck = format!("tls.certificate[{i}].cert");
        let kk = format!("tls.certificate[{i}].key");
        match pair(cx, (&c.cert, &ck), (&c.key, &kk), &mut ignored) {
            Some((key, facts)) => {
                // `*.com`: every name under a top-level domain (RFC 9525 §6.3 leaves such
                // wildcards to policy; CA/Browser Forum rules forbid issuing them)
                for n in &facts.dns_names {
                    if n.strip_prefix("*.")
                        .is_some_and(|p| !server::wildcard_parent_ok(p))
                    {
                        let m = format!(
                            "wildcard SAN name {n:?} covers a whole top-level domain; a \
                             wildcard needs at least two labels after \"*.\""
                        );
                        cx.err(&c.cert, ck.clone(), m);
                        ok = false;
                    }
                }
                certificates.push(facts.expiry);
                pairs.push((key, facts.dns_names));
            }
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    let unknown_sni = if t.strict_sni {
        UnknownSni::Refuse
    } else {
        UnknownSni::FirstCertificate
    };
    let settings = ServerSettings {
        certs: pairs,
        min_version,
        alpn: alpn?,
        client_auth,
        client_roots,
        unknown_sni,
        session_cache_entries,
    };
    match server::build(settings, crate::tls::provider()) {
        Ok(config) => Some(TlsConfig {
            listen,
            server: config,
            handshake_timeout,
            hsts,
            min_version,
            client_auth,
            unknown_sni,
            certificates,
        }),
        Err(m) => {
            let at = Spanned::new(0..0, ());
            cx.err(&at, "tls", m);
            None
        }
    }
}

/// `tls.alpn` as wire identifiers (RFC 7301 §3.1), or `None` after reporting a problem.
fn alpn(t: &RawTls, cx: &mut Ctx<'_>) -> Option<Vec<Vec<u8>>> {
    let list = t.alpn.get_ref();
    if list.is_empty() {
        cx.err(
            &t.alpn,
            "tls.alpn",
            "needs at least one protocol: [\"h2\", \"http/1.1\"]",
        );
        return None;
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut ok = true;
    for (i, p) in list.iter().enumerate() {
        let key = format!("tls.alpn[{i}]");
        let v = p.get_ref();
        if !crate::tls::SUPPORTED_ALPN.contains(&v.as_str()) {
            let m = format!(
                "unsupported ALPN protocol {v:?}; supported: {:?}",
                crate::tls::SUPPORTED_ALPN
            );
            cx.err(p, key, m);
            ok = false;
        } else if out.iter().any(|o| o == v.as_bytes()) {
            cx.err(p, key, format!("duplicate protocol {v:?}"));
            ok = false;
        } else {
            out.push(v.as_bytes().to_vec());
        }
    }
    ok.then_some(out)
}

/// `tls.client_ca` and `tls.client_auth`.
fn client_auth(
    t: &RawTls,
    cx: &mut Ctx<'_>,
    ok: &mut bool,
) -> (ClientAuth, Option<rustls::RootCertStore>) {
    let auth = match t.client_auth.as_ref().map(|a| (a, a.get_ref().as_str())) {
        None => ClientAuth::Optional,
        Some((_, "optional")) => ClientAuth::Optional,
        Some((_, "required")) => ClientAuth::Required,
        Some((a, _)) => {
            cx.err(a, "tls.client_auth", "must be \"required\" or \"optional\"");
            *ok = false;
            ClientAuth::Optional
        }
    };
    let Some(ca) = &t.client_ca else {
        if let Some(a) = &t.client_auth {
            cx.err(
                a,
                "tls.client_auth",
                "needs tls.client_ca, the CA client certificates are verified against",
            );
            *ok = false;
        }
        return (ClientAuth::Off, None);
    };
    let roots = read(cx, ca, "tls.client_ca").and_then(|(path, bytes)| {
        match certs::parse_roots(&bytes, &path) {
            Ok(r) => Some(r),
            Err(m) => {
                cx.err(ca, "tls.client_ca", m);
                None
            }
        }
    });
    *ok &= roots.is_some();
    (auth, roots)
}

/// What is wrong with a `Strict-Transport-Security` value (RFC 6797 §6.1), if anything: the
/// first directive must be `max-age=SECONDS`, the others `token` or `token=value`, all of it
/// visible ASCII (a field value, RFC 9110 §5.5).
fn hsts_problem(v: &str) -> Option<&'static str> {
    if !v
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return Some("must be visible ASCII, as \"max-age=31536000; includeSubDomains\"");
    }
    let mut parts = v.split(';').map(str::trim);
    let first = parts.next().unwrap_or_default();
    let age = first
        .split_once('=')
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("max-age"))
        .map(|(_, n)| n.trim().trim_matches('"'));
    if !age.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
        return Some("must start with max-age=SECONDS, as \"max-age=31536000; includeSubDomains\"");
    }
    for p in parts {
        let name = p.split_once('=').map_or(p, |(k, _)| k).trim();
        if name.is_empty() || !name.bytes().all(super::compile::is_tchar) {
            return Some(
                "directives after max-age must be tokens, as includeSubDomains or preload",
            );
        }
    }
    None
}

/// `server.redirect_https` needs somewhere to redirect to.
pub(super) fn check_redirect(s: &super::raw::RawServer, tls: bool, cx: &mut Ctx<'_>) {
    if *s.redirect_https.get_ref() && !tls {
        cx.err(
            &s.redirect_https,
            "server.redirect_https",
            "needs a [tls] section with tls.listen: there is no https listener to redirect to",
        );
    }
}

/// An upstream's `tls = { ... }`: `None` without it, or when it has errors (reported).
pub(super) fn upstream(i: usize, u: &RawUpstream, cx: &mut Ctx<'_>) -> Option<UpstreamTls> {
    let spanned = u.tls.as_ref()?;
    let t = spanned.get_ref();
    let key = |k: &str| format!("upstream[{i}].tls.{k}");
    let mut digest = Sha256::new();
    let mut ok = true;
    let server_name = match &t.server_name {
        Some(n) => match rustls::pki_types::ServerName::try_from(n.get_ref().clone()) {
            Ok(sn) => {
                digest.update(n.get_ref().as_bytes());
                ServerNameChoice::Fixed(sn)
            }
            Err(_) => {
                let m = "must be a DNS name or an IP address";
                cx.err(n, key("server_name"), m);
                ok = false;
                ServerNameChoice::TargetHost
            }
        },
        None => {
            // each target's host must be usable as the name to verify
            // (a target that does not parse is reported by the upstream's own checks)
            for (j, t) in u.targets.get_ref().iter().enumerate() {
                let Some(target) = Target::parse(t.get_ref().address.get_ref()) else {
                    continue;
                };
                if let Err(m) = client::target_server_name(&target) {
                    let m = format!("{m}; set upstream[{i}].tls.server_name");
                    let (at, key) = super::upstreams::address_at(i, j, t);
                    cx.err(&at, key, m);
                    ok = false;
                }
            }
            ServerNameChoice::TargetHost
        }
    };
    let verify = if *t.verify.get_ref() {
        Verify::On
    } else {
        let m = "verify = false: any certificate is accepted, so connections to this upstream \
                 can be intercepted; use `ca` for a private CA instead";
        cx.warn(&t.verify, key("verify"), m);
        digest.update(b"verify=false");
        Verify::Off
    };
    let roots = match &t.ca {
        Some(ca) => read(cx, ca, &key("ca")).and_then(|(path, bytes)| {
            digest.update(&bytes);
            match certs::parse_roots(&bytes, &path) {
                Ok(r) => Some(Roots::Custom(r)),
                Err(m) => {
                    cx.err(ca, key("ca"), m);
                    None
                }
            }
        }),
        None => Some(Roots::System),
    };
    ok &= roots.is_some();
    let client_cert = match (&t.cert, &t.key) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            let ck = key("cert");
            let kk = key("key");
            let p = pair(cx, (c, &ck), (k, &kk), &mut digest);
            ok &= p.is_some();
            p.map(|(certified, _)| certified)
        }
        (Some(c), None) => {
            cx.err(c, key("cert"), format!("needs {} too", key("key")));
            return None;
        }
        (None, Some(k)) => {
            cx.err(k, key("key"), format!("needs {} too", key("cert")));
            return None;
        }
    };
    if !ok {
        return None;
    }
    match client::build(roots?, verify, client_cert, crate::tls::provider()) {
        Ok(config) => Some(UpstreamTls {
            config,
            server_name,
            verify,
            digest: digest.finalize().into(),
        }),
        Err(m) => {
            cx.err(spanned, format!("upstream[{i}].tls"), m);
            None
        }
    }
}
