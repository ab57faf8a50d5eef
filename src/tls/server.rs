//! The edge's TLS server config: certificates chosen by SNI, versions, ALPN, resumption and
//! client certificate verification, as one `Arc<rustls::ServerConfig>` per compiled config.
//!
//! Owns: [`SniResolver`] (the certificate for a ClientHello's server name: exact SAN name before
//! a wildcard, RFC 6125 §6.4.3 / RFC 9525 §6.3, case-insensitively, RFC 4343; no or an unknown
//! name gets the first certificate or, with `strict_sni`, a refused handshake), [`build`] (the
//! rustls `ServerConfig`: versions, the intermediate cipher suites of [`super::provider`],
//! ALPN, session tickets with rotating keys, one ticketer per client-certificate policy so a
//! stricter mTLS policy is not bypassed by resuming, a bounded session-ID cache, mTLS) and
//! [`TlsConfig`], what the compiled config carries for the transport. Leaves out: reading files
//! ([`super::certs`]) and the handshake itself (the transport). The ServerConfig is built on
//! the control thread and shared by all workers through `Arc` (rustls's types are `Send +
//! Sync`; its session cache locks a mutex per lookup, the ticketer an `RwLock` per rotation
//! check); a reload builds a new one, so new handshakes use new certificates while established
//! connections keep theirs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use sha2::{Digest, Sha256};

use super::{CertExpiry, ClientAuth, MinVersion};

/// What a handshake whose server name matches no certificate (or that sends none) gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSni {
    /// The first `[[tls.certificate]]` (nginx's default server).
    FirstCertificate,
    /// No certificate: the handshake is refused (`tls.strict_sni = true`), so a scanner that
    /// connects by IP address learns no host name from a certificate.
    Refuse,
}

/// The TLS side of a compiled config: what the transport needs to accept TLS connections.
#[derive(Debug)]
pub struct TlsConfig {
    /// TLS listeners (`tls.listen`), beside the plain `server.listen`.
    pub listen: Vec<SocketAddr>,
    /// Shared by every worker; handshakes on a reloaded config use the new one.
    pub server: Arc<rustls::ServerConfig>,
    /// Longest time a client may take to complete its handshake.
    pub handshake_timeout: Duration,
    /// `Strict-Transport-Security` value for responses over TLS (RFC 6797 §6.1), if any.
    pub hsts: Option<String>,
    pub min_version: MinVersion,
    pub client_auth: ClientAuth,
    pub unknown_sni: UnknownSni,
    /// One per `[[tls.certificate]]`, in order (metrics, `check` warnings).
    pub certificates: Vec<CertExpiry>,
}

/// Picks the certificate for a ClientHello by its SNI host name (RFC 6066 §3).
#[derive(Debug)]
pub struct SniResolver {
    /// In config order; the first is the default.
    keys: Vec<Arc<CertifiedKey>>,
    /// Lowercased exact SAN dNSName → index into `keys` (the first certificate naming it).
    exact: HashMap<String, usize>,
    /// Lowercased parent of a `*.parent` SAN → index into `keys`.
    wildcard: HashMap<String, usize>,
    unknown: UnknownSni,
}

impl SniResolver {
    /// A resolver over `certs` (each key with its SAN dNSNames), in config order.
    pub fn new(certs: Vec<(Arc<CertifiedKey>, Vec<String>)>, unknown: UnknownSni) -> Self {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let mut keys = Vec::with_capacity(certs.len());
        for (i, (key, names)) in certs.into_iter().enumerate() {
            for n in names {
                let n = n.to_ascii_lowercase();
                match n.strip_prefix("*.") {
                    Some(parent) if !parent.is_empty() => {
                        wildcard.entry(parent.to_string()).or_insert(i);
                    }
                    // a wildcard anywhere else (`f*.example.com`, `*`) matches nothing:
                    // RFC 9525 §6.3 leaves partial wildcards out
                    _ if n.contains('*') => {}
                    _ => {
                        exact.entry(n).or_insert(i);
                    }
                }
            }
            keys.push(key);
        }
        SniResolver {
            keys,
            exact,
            wildcard,
            unknown,
        }
    }

    /// The index of the certificate for server name `sni` (`None`: no SNI), or `None` when the
    /// handshake is to be refused.
    pub fn pick(&self, sni: Option<&str>) -> Option<usize> {
        let found = sni.and_then(|name| {
            // DNS names compare case-insensitively (RFC 4343); an absolute name's final dot is
            // not part of SNI (RFC 6066 §3), tolerated anyway
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(&i) = self.exact.get(&name) {
                return Some(i);
            }
            // `*.example.com` stands for exactly one whole leftmost label (RFC 6125 §6.4.3,
            // RFC 9525 §6.3): `a.example.com`, never `example.com` or `a.b.example.com`
            let (label, parent) = name.split_once('.')?;
            if label.is_empty() {
                return None;
            }
            self.wildcard.get(parent).copied()
        });
        match (found, self.unknown) {
            (Some(i), _) => Some(i),
            (None, UnknownSni::FirstCertificate) if !self.keys.is_empty() => Some(0),
            (None, _) => None,
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let i = self.pick(hello.server_name())?;
        self.keys.get(i).cloned()
    }
}

/// What [`build`] makes a server config from (files already read and checked).
pub struct ServerSettings {
    /// Each certificate chain with its key, and its SAN dNSNames, in config order.
    pub certs: Vec<(Arc<CertifiedKey>, Vec<String>)>,
    pub min_version: MinVersion,
    /// ALPN protocol identifiers in preference order (RFC 7301 §3.2: the server chooses).
    pub alpn: Vec<Vec<u8>>,
    /// Trust roots for client certificates and how they are required (`Off`: no roots).
    pub client_auth: ClientAuth,
    pub client_roots: Option<RootCertStore>,
    pub unknown_sni: UnknownSni,
    /// Stateful session-ID cache size (0: none).
    pub session_cache_entries: usize,
}

/// Most ticketers kept at once (one per distinct client-certificate policy seen in the
/// process's life); past it the map is emptied, which only costs resumption (clients fall back
/// to a full handshake), never security.
pub const MAX_TICKETERS: usize = 64;

/// A digest of what decides whether a resumed session may skip client certificate
/// verification: `client_auth` and every trust anchor of `client_ca` (subject, key, name
/// constraints, length-prefixed so no two inputs run together).
fn client_policy_digest(auth: ClientAuth, roots: Option<&RootCertStore>) -> [u8; 32] {
    let mut d = Sha256::new();
    d.update(match auth {
        ClientAuth::Off => b"off".as_slice(),
        ClientAuth::Optional => b"optional",
        ClientAuth::Required => b"required",
    });
    for anchor in roots.map_or(&[][..], |r| r.roots.as_slice()) {
        let parts: [&[u8]; 3] = [
            anchor.subject.as_ref(),
            anchor.subject_public_key_info.as_ref(),
            anchor
                .name_constraints
                .as_ref()
                .map_or(&[][..], |n| n.as_ref()),
        ];
        for part in parts {
            d.update((part.len() as u64).to_be_bytes());
            d.update(part);
        }
    }
    d.finalize().into()
}

/// The session ticket encrypter for a client-certificate policy (`policy`, from
/// [`client_policy_digest`]): keys are random, rotate every 6 hours and are accepted for 12
/// (rustls's `Ticketer`).
///
/// Why one per policy: rustls resumes a session (TLS 1.3 PSK, RFC 8446 §2.2; TLS 1.2 ticket,
/// RFC 5077) by copying the client certificate chain stored in the ticket, without running the
/// current client verifier again. A ticketer shared across every config generation would let a
/// client that got a ticket while `client_auth` was optional (or under a CA since removed)
/// resume after a reload that requires a certificate from the new CA. Keying the ticketer by
/// the policy makes a changed policy reject every older ticket (it cannot decrypt them: a full
/// handshake follows, verified by the new rules), while a reload that leaves the policy alone
/// (new server certificates, other settings) keeps tickets valid. Disabling resumption while
/// client auth is on was the alternative; it would cost every mTLS client a full handshake on
/// every connection for a case (a policy change) that is rare. The stateful session-ID cache
/// needs no such key: [`build`] makes a new one per config generation.
///
/// Shared by every worker and every config generation with the same policy (the ticketer's own
/// `RwLock` guards rotation); the map is consulted only on the control thread, at build.
fn ticketer(policy: [u8; 32]) -> Result<Arc<dyn ProducesTickets>, String> {
    static TICKETERS: OnceLock<Mutex<HashMap<[u8; 32], Arc<dyn ProducesTickets>>>> =
        OnceLock::new();
    let map = TICKETERS.get_or_init(|| Mutex::new(HashMap::new()));
    // a panic while holding the lock cannot leave the map inconsistent (one insert or clear)
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = map.get(&policy) {
        return Ok(t.clone());
    }
    let fresh: Arc<dyn ProducesTickets> = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| format!("cannot create session ticket keys: {e}"))?;
    if map.len() >= MAX_TICKETERS {
        map.clear();
    }
    map.insert(policy, fresh.clone());
    Ok(fresh)
}

/// The rustls server config of `s`, with `provider`'s cipher suites.
pub fn build(
    s: ServerSettings,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(s.min_version.versions())
        .map_err(|e| format!("TLS versions: {e}"))?;
    let policy = client_policy_digest(s.client_auth, s.client_roots.as_ref());
    let builder = match (s.client_auth, s.client_roots) {
        (ClientAuth::Off, _) => builder.with_no_client_auth(),
        // never silently without the verification asked for
        (_, None) => return Err("client certificates required without a client CA".into()),
        (auth, Some(roots)) => {
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = match auth {
                ClientAuth::Optional => v.allow_unauthenticated(),
                _ => v,
            };
            let v = v
                .build()
                .map_err(|e| format!("client certificate CA: {e}"))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let resolver = SniResolver::new(s.certs, s.unknown_sni);
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = s.alpn;
    config.ticketer = ticketer(policy)?;
    config.session_storage = if s.session_cache_entries == 0 {
        Arc::new(rustls::server::NoServerSessionStorage {})
    } else {
        rustls::server::ServerSessionMemoryCache::new(s.session_cache_entries)
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Arc<CertifiedKey> {
        let k = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&k)
            .unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(k.serialize_der().into());
        let signer = super::super::provider()
            .key_provider
            .load_private_key(der)
            .unwrap();
        Arc::new(CertifiedKey::new(vec![c.der().clone()], signer))
    }

    fn resolver(unknown: UnknownSni) -> SniResolver {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        SniResolver::new(
            vec![
                (key(), names(&["api.example.com"])),
                (key(), names(&["*.example.com", "Other.Example.ORG"])),
                (key(), names(&["www.example.com", "f*.example.net"])),
            ],
            unknown,
        )
    }

    #[test]
    fn exact_names_then_wildcard_case_insensitive() {
        let r = resolver(UnknownSni::FirstCertificate);
        assert_eq!(r.pick(Some("api.example.com")), Some(0));
        assert_eq!(r.pick(Some("other.example.org")), Some(1));
        // exact before wildcard, although the wildcard certificate comes first
        assert_eq!(r.pick(Some("www.example.com")), Some(2));
        assert_eq!(r.pick(Some("WWW.Example.Com")), Some(2));
        assert_eq!(r.pick(Some("API.EXAMPLE.COM")), Some(0));
        assert_eq!(r.pick(Some("shop.example.com")), Some(1));
        assert_eq!(r.pick(Some("Shop.EXAMPLE.com")), Some(1));
    }

    #[test]
    fn wildcard_covers_one_label_only() {
        let r = resolver(UnknownSni::Refuse);
        assert_eq!(r.pick(Some("a.example.com")), Some(1));
        assert_eq!(r.pick(Some("a.b.example.com")), None);
        assert_eq!(r.pick(Some("example.com")), None);
        assert_eq!(r.pick(Some(".example.com")), None);
        // partial wildcards match nothing
        assert_eq!(r.pick(Some("foo.example.net")), None);
    }

    #[test]
    fn unknown_or_missing_name_gets_first_certificate_or_refusal() {
        let r = resolver(UnknownSni::FirstCertificate);
        assert_eq!(r.pick(Some("unknown.test")), Some(0));
        assert_eq!(r.pick(None), Some(0));
        let strict = resolver(UnknownSni::Refuse);
        assert_eq!(strict.pick(Some("unknown.test")), None);
        assert_eq!(strict.pick(None), None);
        assert_eq!(strict.pick(Some("api.example.com")), Some(0));
    }

    #[test]
    fn ticketer_is_kept_per_client_policy() {
        let roots = |der: &rustls::pki_types::CertificateDer<'static>| {
            let mut r = RootCertStore::empty();
            r.add(der.clone()).unwrap();
            r
        };
        let (ca1, ca2) = (key().cert[0].clone(), key().cert[0].clone());
        let p = |auth, r: Option<&RootCertStore>| ticketer(client_policy_digest(auth, r)).unwrap();
        let a = p(ClientAuth::Optional, Some(&roots(&ca1)));
        // the same policy, built again (a reload changing other settings): the same ticketer
        assert!(Arc::ptr_eq(
            &a,
            &p(ClientAuth::Optional, Some(&roots(&ca1)))
        ));
        assert!(a.enabled());
        // optional -> required, another CA, or no client auth: another ticketer
        assert!(!Arc::ptr_eq(
            &a,
            &p(ClientAuth::Required, Some(&roots(&ca1)))
        ));
        assert!(!Arc::ptr_eq(
            &a,
            &p(ClientAuth::Optional, Some(&roots(&ca2)))
        ));
        assert!(!Arc::ptr_eq(&a, &p(ClientAuth::Off, None)));
    }
}
