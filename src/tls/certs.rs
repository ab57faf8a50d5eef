//! Certificates, keys and trust roots: read from PEM, checked, and described.
//!
//! Owns: reading a PEM certificate chain, a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) and
//! a PEM bundle of trust roots, each failure as one message naming the file; pairing a chain
//! with its key and checking that they match (the key's public half against the certificate's
//! SubjectPublicKeyInfo, RFC 5280 §4.1.2.7); the facts of a certificate (SAN dNSNames, subject
//! CN, validity, RFC 5280 §4.1.2) the SNI resolver, `tollgate check` and the metrics need; and
//! the facts of a verified client certificate in API Gateway's form ([`client_cert_facts`]).
//! Leaves out: which files to read (the config stage resolves paths) and building rustls
//! configs ([`super::server`], [`super::client`]). Runs on the control thread only: every
//! function here that takes a path blocks on the file system.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

/// Reads `path` whole, the error naming the file.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The CERTIFICATE blocks of PEM `pem` (read from `path`), in order: leaf first for a chain.
pub fn parse_chain(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{} holds no certificate (a PEM \"BEGIN CERTIFICATE\" block)",
            path.display()
        ));
    }
    for (i, der) in chain.iter().enumerate() {
        if X509Certificate::from_der(der).is_err() {
            return Err(format!(
                "{}: certificate {} is not a valid X.509 certificate (RFC 5280)",
                path.display(),
                i + 1
            ));
        }
    }
    Ok(chain)
}

/// The first private key of PEM `pem` (read from `path`): PKCS#8 (`BEGIN PRIVATE KEY`),
/// PKCS#1 RSA (`BEGIN RSA PRIVATE KEY`) or SEC1 EC (`BEGIN EC PRIVATE KEY`).
pub fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "{} holds no private key (a PEM PKCS#8, RSA or EC private key block)",
            path.display()
        ),
        e => format!("{} is not valid PEM: {e}", path.display()),
    })
}

/// Pairs `chain` with `key` for signing by `provider`: the key must be of a supported type
/// (RSA, ECDSA P-256/P-384, Ed25519) and its public half must be the leaf certificate's.
/// `cert` and `key` are the paths, for the messages.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
    cert: &Path,
    key_path: &Path,
) -> Result<Arc<CertifiedKey>, String> {
    let signer = provider.key_provider.load_private_key(key).map_err(|e| {
        format!(
            "{}: unsupported private key ({e}); use RSA or ECDSA P-256/P-384",
            key_path.display()
        )
    })?;
    let ck = CertifiedKey::new(chain, signer);
    match ck.keys_match() {
        Ok(()) => Ok(Arc::new(ck)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(format!(
                "{} does not match the certificate in {} (different public keys)",
                key_path.display(),
                cert.display()
            ))
        }
        Err(e) => Err(format!(
            "{} cannot be checked against {}: {e}",
            key_path.display(),
            cert.display()
        )),
    }
}

/// Every certificate of PEM bundle `pem` (read from `path`) as a trust anchor.
pub fn parse_roots(pem: &[u8], path: &Path) -> Result<RootCertStore, String> {
    let certs = parse_chain(pem, path)?;
    let mut roots = RootCertStore::empty();
    for (i, c) in certs.into_iter().enumerate() {
        roots.add(c).map_err(|e| {
            format!(
                "{}: certificate {} cannot be a trust anchor: {e}",
                path.display(),
                i + 1
            )
        })?;
    }
    Ok(roots)
}

/// What a certificate is for and until when (`tollgate_tls_certificate_expiry_seconds`,
/// `tollgate check`'s expiry warnings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertExpiry {
    /// The first SAN dNSName, else the subject CN, else the file name.
    pub name: String,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
}

/// The facts of a leaf certificate the SNI resolver and the metrics use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafFacts {
    /// SAN dNSNames (RFC 5280 §4.2.1.6), lowercased: exact names and `*.` wildcards.
    pub dns_names: Vec<String>,
    pub expiry: CertExpiry,
}

/// The SAN names and expiry of `der` (a certificate already parsed once by [`parse_chain`]).
/// `fallback` names a certificate without SAN dNSName or CN.
pub fn leaf_facts(der: &[u8], fallback: &str) -> Option<LeafFacts> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut dns_names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                dns_names.push(d.to_ascii_lowercase());
            }
        }
    }
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok());
    let name = dns_names
        .first()
        .map(String::as_str)
        .or(cn)
        .unwrap_or(fallback)
        .to_string();
    Some(LeafFacts {
        dns_names,
        expiry: CertExpiry {
            name,
            not_after: cert.validity().not_after.timestamp(),
        },
    })
}

/// A verified client certificate as API Gateway shows it (`$context.identity.clientCert.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// `subjectDN`: the subject's attributes in certificate order, `TYPE=value` joined by `,`
    /// (RFC 4514 string escaping), as in `C=US,O=Example,CN=client`.
    pub subject_dn: String,
    /// `issuerDN`, in the same form.
    pub issuer_dn: String,
    /// `serialNumber`: the serial as a decimal number (API Gateway's examples show `"1"`).
    pub serial_number: String,
    /// `validity.notBefore`, as `Aug 29 00:28:21 2020 GMT` (OpenSSL's form, which API Gateway
    /// uses: day padded with a space).
    pub not_before: String,
    /// `validity.notAfter`, in the same form.
    pub not_after: String,
}

/// The facts of client certificate `der`, or `None` when it is not an X.509 certificate.
pub fn client_cert_facts(der: &[u8]) -> Option<ClientCert> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(ClientCert {
        subject_dn: dn_string(cert.subject()),
        issuer_dn: dn_string(cert.issuer()),
        serial_number: cert.tbs_certificate.serial.to_string(),
        not_before: crate::fmt::gmt_time(cert.validity().not_before.timestamp()),
        not_after: crate::fmt::gmt_time(cert.validity().not_after.timestamp()),
    })
}

/// `name` as `TYPE=value` pairs joined by `,` (multi-valued RDNs by `+`), in certificate order
/// as API Gateway shows them; values escaped per RFC 4514 §2.4, non-string values as `#` and
/// the hex of their DER (RFC 4514 §2.4 too).
fn dn_string(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    for (i, rdn) in name.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            out.push_str(&attr_type(atv.attr_type()));
            out.push('=');
            match atv.as_str() {
                Ok(v) => escape_dn_value(&mut out, v),
                Err(_) => {
                    out.push('#');
                    for b in atv.as_slice() {
                        out.push_str(&format!("{b:02X}"));
                    }
                }
            }
        }
    }
    out
}

/// The short name of an attribute type (RFC 4514 §3 and OpenSSL's names, as API Gateway prints
/// them), else its dotted OID.
fn attr_type(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    let dotted = oid.to_id_string();
    let short = match dotted.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "2.5.4.5" => "serialNumber",
        _ => return dotted,
    };
    short.to_string()
}

/// RFC 4514 §2.4: `"+,;<>\` anywhere, `#` or a space first, a space last, and NUL are escaped.
fn escape_dn_value(out: &mut String, v: &str) {
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_cert_facts_of_a_generated_certificate() {
        let mut p = rcgen::CertificateParams::new(vec!["client.example".to_string()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CountryName, "US");
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example, Inc");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "client");
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x01, 0x00]));
        p.not_before = rcgen::date_time_ymd(2020, 8, 29);
        p.not_after = rcgen::date_time_ymd(2120, 8, 5);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let facts = client_cert_facts(cert.der()).expect("a certificate");
        assert_eq!(facts.subject_dn, "C=US,O=Example\\, Inc,CN=client");
        assert_eq!(facts.issuer_dn, facts.subject_dn, "self-signed");
        assert_eq!(facts.serial_number, "256");
        assert_eq!(facts.not_before, "Aug 29 00:00:00 2020 GMT");
        assert_eq!(facts.not_after, "Aug  5 00:00:00 2120 GMT");
        assert_eq!(client_cert_facts(b"not a certificate"), None);
    }

    #[test]
    fn dn_escaping_follows_rfc_4514() {
        let mut s = String::new();
        escape_dn_value(&mut s, "#a b+c ");
        assert_eq!(s, "\\#a b\\+c\\ ");
    }
}
