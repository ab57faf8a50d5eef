//! TLS to origins: one `Arc<rustls::ClientConfig>` per TLS upstream and the server name sent.
//!
//! Owns: [`build`] (trust roots from a `ca` PEM bundle or the system's, an optional client
//! certificate (always presented when the origin asks), the intermediate cipher suites of [`super::provider`], TLS 1.2 and 1.3, ALPN
//! `http/1.1`), [`UpstreamTls`] (what a compiled upstream carries: the config, the server name
//! choice, whether the certificate is verified) and [`NoVerification`], the verifier behind
//! `verify = false`. Leaves out: reading files ([`super::certs`]), the TOML keys (the config
//! stage) and connecting (the pools wrap a TCP connection with this config). Built on the
//! control thread; shared by every worker through `Arc`, and rustls's client session cache in
//! it lets pooled connections to the same origin resume.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::resolve::Target;

/// Whether an origin's certificate is verified (`tls.verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Chain to a trust root, validity and the server name (RFC 5280 §6, RFC 9525 §6): always,
    /// unless `verify = false` is written out.
    On,
    /// [`NoVerification`]: any certificate is accepted (`verify = false`; `check` warns).
    Off,
}

/// The name sent in SNI (RFC 6066 §3) and checked against the origin's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerNameChoice {
    /// `tls.server_name`, for every target.
    Fixed(ServerName<'static>),
    /// The host of each target as written: its DNS name, or for an IP literal the address as
    /// an IP server name (no SNI is sent for it; the certificate needs an iPAddress SAN).
    TargetHost,
}

/// What a TLS upstream connects with.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerNameChoice,
    pub verify: Verify,
    /// SHA-256 of the settings and every file's bytes: two compiles of the same upstream TLS
    /// compare equal (a reload keeps the pools), a changed file does not.
    pub digest: [u8; 32],
}

impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
            && self.server_name == other.server_name
            && self.verify == other.verify
    }
}

impl UpstreamTls {
    /// The server name for a connection to `target`. `None` only for a host name that is not
    /// a valid DNS name, which compiling the config refuses (see [`target_server_name`]).
    pub fn server_name_for(&self, target: &Target) -> Option<ServerName<'static>> {
        match &self.server_name {
            ServerNameChoice::Fixed(n) => Some(n.clone()),
            ServerNameChoice::TargetHost => target_server_name(target).ok(),
        }
    }
}

/// The server name of a target without `tls.server_name`: its host name, or its IP address.
pub fn target_server_name(target: &Target) -> Result<ServerName<'static>, String> {
    match target {
        Target::Literal(a) => Ok(ServerName::IpAddress(a.ip().into())),
        Target::Name { host, .. } => ServerName::try_from(host.clone())
            .map_err(|_| format!("{host:?} is not a valid TLS server name")),
    }
}

/// Where an origin's certificate must chain to.
pub enum Roots {
    /// The `ca` PEM bundle.
    Custom(RootCertStore),
    /// The system's trust store (rustls-native-certs: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else
    /// `/etc/ssl/certs` and the distribution's bundle).
    System,
}

/// The system trust roots; an error when none can be loaded.
pub fn system_roots() -> Result<RootCertStore, String> {
    load_system_roots().map_err(|why| {
        format!("no system trust roots could be loaded ({why}); set `ca` to a PEM bundle")
    })
}

/// The system trust roots; when none can be loaded, why (the first loading error, or "none
/// installed"), for callers whose advice differs (a setting without `ca`).
pub fn load_system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(found
            .errors
            .first()
            .map_or_else(|| "none installed".to_string(), |e| e.to_string()));
    }
    Ok(roots)
}

/// A verifier that accepts any certificate chain and name, but still checks that the
/// handshake is signed by the key of the certificate presented (so the session is at least
/// bound to that certificate). Only `verify = false` selects it.
#[derive(Debug)]
pub struct NoVerification {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls client config for an origin: `roots` (ignored with `Verify::Off`), an optional
/// client certificate chain with its key (already checked to match), `provider`'s suites.
pub fn build(
    roots: Roots,
    verify: Verify,
    client_cert: Option<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(super::MinVersion::Tls12.versions())
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match verify {
        Verify::Off => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification { provider })),
        Verify::On => {
            let roots = match roots {
                Roots::Custom(r) => r,
                Roots::System => system_roots()?,
            };
            builder.with_root_certificates(roots)
        }
    };
    let mut config = match client_cert {
        Some(ck) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(ck))),
        None => builder.with_no_client_auth(),
    };
    // what tollgate speaks to origins (RFC 7301 §3.1); an origin without ALPN ignores it
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
