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
use rustls::{RootCertStore, SignatureScheme};
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

/// Picks the certificate for a ClientHello by its SNI host name (RFC 6066 §3) and by what the
/// client can verify: among the certificates for the name (exact SAN names first, then
/// wildcards, then, unless `strict_sni`, every certificate in config order as the default), the
/// first whose key can sign with one of the client's `signature_algorithms` (RFC 8446 §4.2.3,
/// RFC 5246 §7.4.1.4.1). So an RSA and an ECDSA certificate for one name serve both an
/// RSA-only TLS 1.2 client and a modern one, as nginx does. When no candidate can sign for the
/// client, the first candidate is handed to rustls, which refuses the handshake with the
/// proper alert.
#[derive(Debug)]
pub struct SniResolver {
    /// In config order; the first is the default.
    keys: Vec<Arc<CertifiedKey>>,
    /// Lowercased exact SAN dNSName → indexes into `keys` naming it, in config order.
    exact: HashMap<String, Vec<usize>>,
    /// Lowercased parent of a `*.parent` SAN → indexes into `keys`, in config order.
    wildcard: HashMap<String, Vec<usize>>,
    unknown: UnknownSni,
}

/// Whether `parent` (what follows `*.`) may carry a wildcard: it needs at least two labels, so
/// `*.com` (every name under a top-level domain) matches nothing (RFC 9525 §6.3 leaves such
/// wildcards to policy; CAs may not issue them). Config load rejects them too.
pub fn wildcard_parent_ok(parent: &str) -> bool {
    parent
        .split_once('.')
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
}

impl SniResolver {
    /// A resolver over `certs` (each key with its SAN dNSNames), in config order.
    pub fn new(certs: Vec<(Arc<CertifiedKey>, Vec<String>)>, unknown: UnknownSni) -> Self {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<usize>> = HashMap::new();
        let mut keys = Vec::with_capacity(certs.len());
        let add = |list: &mut Vec<usize>, i| {
            if !list.contains(&i) {
                list.push(i);
            }
        };
        for (i, (key, names)) in certs.into_iter().enumerate() {
            for n in names {
                let n = n.to_ascii_lowercase();
                match n.strip_prefix("*.") {
                    Some(parent) if wildcard_parent_ok(parent) && !parent.contains('*') => {
                        add(wildcard.entry(parent.to_string()).or_default(), i);
                    }
                    // a wildcard anywhere else (`f*.example.com`, `*`, `*.com`) matches
                    // nothing: RFC 9525 §6.3 leaves partial wildcards out
                    _ if n.contains('*') => {}
                    _ => add(exact.entry(n).or_default(), i),
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

    /// The index of the certificate for server name `sni` (`None`: no SNI) for a client that
    /// verifies `schemes`, or `None` when the handshake is to be refused.
    pub fn pick(&self, sni: Option<&str>, schemes: &[SignatureScheme]) -> Option<usize> {
        let name = sni.map(|n| {
            // DNS names compare case-insensitively (RFC 4343); an absolute name's final dot
            // is not part of SNI (RFC 6066 §3), tolerated anyway
            n.trim_end_matches('.').to_ascii_lowercase()
        });
        let exact = name.as_ref().and_then(|n| self.exact.get(n));
        // `*.example.com` stands for exactly one whole leftmost label (RFC 6125 §6.4.3,
        // RFC 9525 §6.3): `a.example.com`, never `example.com` or `a.b.example.com`
        let wildcard = name.as_ref().and_then(|n| {
            let (label, parent) = n.split_once('.')?;
            (!label.is_empty()).then(|| self.wildcard.get(parent))?
        });
        let named = exact.into_iter().chain(wildcard).flatten().copied();
        let default = match self.unknown {
            UnknownSni::FirstCertificate => 0..self.keys.len(),
            UnknownSni::Refuse => 0..0,
        };
        let mut candidates = named.chain(default);
        let first = candidates.next()?;
        let can_sign = |i: &usize| {
            self.keys
                .get(*i)
                .is_some_and(|k| k.key.choose_scheme(schemes).is_some())
        };
        if can_sign(&first) {
            return Some(first);
        }
        Some(candidates.find(can_sign).unwrap_or(first))
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let i = self.pick(hello.server_name(), hello.signature_schemes())?;
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

/// The ticketers kept, by client-certificate policy digest.
type Ticketers = HashMap<[u8; 32], Arc<dyn ProducesTickets>>;

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
    static TICKETERS: OnceLock<Mutex<Ticketers>> = OnceLock::new();
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

    /// What a modern client verifies (rustls's defaults, ECDSA and RSA).
    const ALL: &[SignatureScheme] = &[
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PKCS1_SHA256,
    ];
    /// An RSA-only TLS 1.2 client.
    const RSA_ONLY: &[SignatureScheme] = &[SignatureScheme::RSA_PKCS1_SHA256];

    /// A certified key with the RSA test key (tests/data/tls); the certificate is irrelevant to
    /// which schemes the key signs with.
    fn rsa_key() -> Arc<CertifiedKey> {
        use rustls::pki_types::pem::PemObject;
        let pem = include_bytes!("../../tests/data/tls/rsa2048.pkcs8.pem");
        let der = rustls::pki_types::PrivateKeyDer::from_pem_slice(pem).unwrap();
        let signer = super::super::provider()
            .key_provider
            .load_private_key(der)
            .unwrap();
        Arc::new(CertifiedKey::new(key().cert.clone(), signer))
    }

    #[test]
    fn picks_a_key_the_client_can_verify() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = SniResolver::new(
            vec![
                (key(), names(&["other.example.org"])),
                (key(), names(&["api.example.com"])),
                (rsa_key(), names(&["api.example.com"])),
                (rsa_key(), names(&["*.example.net"])),
                (key(), names(&["*.example.net"])),
            ],
            UnknownSni::FirstCertificate,
        );
        // the first usable certificate for the name, in config order
        assert_eq!(r.pick(Some("api.example.com"), ALL), Some(1));
        assert_eq!(r.pick(Some("api.example.com"), RSA_ONLY), Some(2));
        assert_eq!(r.pick(Some("a.example.net"), ALL), Some(3));
        assert_eq!(
            r.pick(
                Some("a.example.net"),
                &[SignatureScheme::ECDSA_NISTP256_SHA256]
            ),
            Some(4)
        );
        // the default: the first certificate the client can use
        assert_eq!(r.pick(None, ALL), Some(0));
        assert_eq!(r.pick(Some("unknown.test"), RSA_ONLY), Some(2));
        // nothing the client can verify: the first candidate (rustls refuses the handshake)
        assert_eq!(r.pick(Some("api.example.com"), &[]), Some(1));
        let strict = SniResolver::new(
            vec![(key(), names(&["api.example.com"]))],
            UnknownSni::Refuse,
        );
        assert_eq!(strict.pick(Some("api.example.com"), RSA_ONLY), Some(0));
        assert_eq!(strict.pick(Some("unknown.test"), ALL), None);
    }

    #[test]
    fn wildcards_over_a_single_label_match_nothing() {
        assert!(!wildcard_parent_ok("com"));
        assert!(!wildcard_parent_ok(""));
        assert!(!wildcard_parent_ok(".com"));
        assert!(!wildcard_parent_ok("example."));
        assert!(wildcard_parent_ok("example.com"));
        let r = SniResolver::new(vec![(key(), vec!["*.com".to_string()])], UnknownSni::Refuse);
        assert_eq!(r.pick(Some("example.com"), ALL), None);
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
        assert_eq!(r.pick(Some("api.example.com"), ALL), Some(0));
        assert_eq!(r.pick(Some("other.example.org"), ALL), Some(1));
        // exact before wildcard, although the wildcard certificate comes first
        assert_eq!(r.pick(Some("www.example.com"), ALL), Some(2));
        assert_eq!(r.pick(Some("WWW.Example.Com"), ALL), Some(2));
        assert_eq!(r.pick(Some("API.EXAMPLE.COM"), ALL), Some(0));
        assert_eq!(r.pick(Some("shop.example.com"), ALL), Some(1));
        assert_eq!(r.pick(Some("Shop.EXAMPLE.com"), ALL), Some(1));
    }

    #[test]
    fn wildcard_covers_one_label_only() {
        let r = resolver(UnknownSni::Refuse);
        assert_eq!(r.pick(Some("a.example.com"), ALL), Some(1));
        assert_eq!(r.pick(Some("a.b.example.com"), ALL), None);
        assert_eq!(r.pick(Some("example.com"), ALL), None);
        assert_eq!(r.pick(Some(".example.com"), ALL), None);
        // partial wildcards match nothing
        assert_eq!(r.pick(Some("foo.example.net"), ALL), None);
    }

    #[test]
    fn unknown_or_missing_name_gets_first_certificate_or_refusal() {
        let r = resolver(UnknownSni::FirstCertificate);
        assert_eq!(r.pick(Some("unknown.test"), ALL), Some(0));
        assert_eq!(r.pick(None, ALL), Some(0));
        let strict = resolver(UnknownSni::Refuse);
        assert_eq!(strict.pick(Some("unknown.test"), ALL), None);
        assert_eq!(strict.pick(None, ALL), None);
        assert_eq!(strict.pick(Some("api.example.com"), ALL), Some(0));
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
