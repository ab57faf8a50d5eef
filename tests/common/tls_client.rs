//! TLS for tests: certificates generated with rcgen into a temp dir (a CA, leaves for given
//! names, wildcards, client certificates for mutual TLS), and a blocking rustls client
//! connection (Read + Write) with a chosen SNI, versions, ALPN and optional client certificate,
//! which tells what was negotiated (version, ALPN, the server's certificate) so tests can
//! assert on it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Upper bound for a test TLS connection's reads and writes (liveness, not performance).
pub const TLS_LIVE: Duration = Duration::from_secs(10);

/// A temp directory for one test's certificates, removed on drop.
pub struct CertDir {
    pub path: PathBuf,
}

impl CertDir {
    pub fn new(tag: &str) -> CertDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tollgate-tls-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        CertDir { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A certificate authority that signs leaves and client certificates.
pub struct Ca {
    pub cert: rcgen::Certificate,
    key: KeyPair,
    /// Where its certificate (PEM) was written.
    pub pem: PathBuf,
}

/// A certificate with its key, written as PEM files.
pub struct Issued {
    pub der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
    /// The certificate chain file (leaf, then the CA).
    pub cert: PathBuf,
    /// The PKCS#8 key file.
    pub key: PathBuf,
}

impl Issued {
    /// The certificate and key paths as TOML strings (quoted, escaped).
    pub fn toml_pair(&self) -> (String, String) {
        (
            format!("{:?}", self.cert.display().to_string()),
            format!("{:?}", self.key.display().to_string()),
        )
    }
}

impl Ca {
    /// A new CA named `cn`, its certificate written to `DIR/STEM-ca.pem`.
    pub fn new(dir: &CertDir, stem: &str, cn: &str) -> Ca {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationName, "Tollgate Tests");
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let pem = dir.file(&format!("{stem}-ca.pem"));
        std::fs::write(&pem, cert.pem()).unwrap();
        Ca { cert, key, pem }
    }

    /// A server certificate for `names` (SAN dNSNames; `*.example.com` for a wildcard), with
    /// subject CN the first name, written to `DIR/STEM.pem` (chain) and `DIR/STEM.key`.
    pub fn leaf(&self, dir: &CertDir, stem: &str, names: &[&str]) -> Issued {
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        p.distinguished_name = dn;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(dir, stem, p)
    }

    /// A server certificate like [`Ca::leaf`], for the key `key_pem` (PKCS#8 PEM, e.g. the RSA
    /// key of tests/data/tls, which rcgen cannot generate).
    pub fn leaf_with_key(
        &self,
        dir: &CertDir,
        stem: &str,
        names: &[&str],
        key_pem: &str,
    ) -> Issued {
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        p.distinguished_name = dn;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue_with(dir, stem, p, KeyPair::from_pem(key_pem).unwrap())
    }

    /// A client certificate (mutual TLS) with subject `CN=cn, O=org`, written like
    /// [`Ca::leaf`].
    pub fn client(&self, dir: &CertDir, stem: &str, cn: &str, org: &str) -> Issued {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationName, org);
        p.distinguished_name = dn;
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0xbc, 0xde]));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(dir, stem, p)
    }

    /// A client certificate whose subject has `attrs` in this order (`CN`/`O`/`OU` types).
    pub fn client_dn(&self, dir: &CertDir, stem: &str, attrs: &[(&str, &str)]) -> Issued {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for (ty, v) in attrs {
            let ty = match *ty {
                "CN" => DnType::CommonName,
                "O" => DnType::OrganizationName,
                "OU" => DnType::OrganizationalUnitName,
                other => panic!("no DN type {other}"),
            };
            dn.push(ty, *v);
        }
        p.distinguished_name = dn;
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0xbc, 0xdf]));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(dir, stem, p)
    }

    fn issue(&self, dir: &CertDir, stem: &str, p: CertificateParams) -> Issued {
        self.issue_with(dir, stem, p, KeyPair::generate().unwrap())
    }

    fn issue_with(&self, dir: &CertDir, stem: &str, p: CertificateParams, key: KeyPair) -> Issued {
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let cert_path = dir.file(&format!("{stem}.pem"));
        let key_path = dir.file(&format!("{stem}.key"));
        std::fs::write(&cert_path, cert.pem() + &self.cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Issued {
            der: cert.der().clone(),
            key_der: key.serialize_der(),
            cert: cert_path,
            key: key_path,
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }
}

/// Which TLS versions a test client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    Tls12,
    Tls13,
    Both,
}

/// How a test client connects.
pub struct ClientOpts<'a> {
    /// Trusted roots.
    pub roots: Vec<CertificateDer<'static>>,
    /// The server name: sent as SNI (unless `sni` is `Sni::Omit`) and verified.
    pub name: &'a str,
    pub sni: Sni,
    pub versions: Versions,
    pub alpn: Vec<Vec<u8>>,
    /// A client certificate (mutual TLS).
    pub client_cert: Option<&'a Issued>,
    /// Whether the server's certificate is verified (off: to see which certificate a server
    /// presents for a name it has none for).
    pub verify: Verify,
    /// Offer only the TLS 1.2 ECDHE-RSA cipher suites (an RSA-only TLS 1.2 client: its
    /// signature schemes are narrowed to RSA ones, RFC 5246 §7.4.2).
    pub rsa_only: bool,
}

/// Whether a test client sends SNI (RFC 6066 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sni {
    Send,
    /// As a client connecting by IP address.
    Omit,
}

/// Whether a test client verifies the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    Roots,
    AcceptAny,
}

impl<'a> ClientOpts<'a> {
    /// Trusting `ca`, asking for `sni`, both versions, ALPN `http/1.1`, no client certificate.
    pub fn new(ca: &Ca, sni: &'a str) -> ClientOpts<'a> {
        ClientOpts {
            roots: vec![ca.der()],
            name: sni,
            sni: Sni::Send,
            versions: Versions::Both,
            alpn: vec![b"http/1.1".to_vec()],
            client_cert: None,
            verify: Verify::Roots,
            rsa_only: false,
        }
    }

    /// An RSA-only TLS 1.2 client (see [`ClientOpts::rsa_only`]).
    pub fn rsa_only(mut self) -> Self {
        self.rsa_only = true;
        self.versions = Versions::Tls12;
        self
    }

    /// Sends no SNI (as a client connecting by IP address); the certificate is still verified
    /// for `name`.
    pub fn no_sni(mut self) -> Self {
        self.sni = Sni::Omit;
        self
    }

    pub fn alpn(mut self, protocols: &[&str]) -> Self {
        self.alpn = protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        self
    }

    pub fn accept_any_certificate(mut self) -> Self {
        self.verify = Verify::AcceptAny;
        self
    }

    pub fn versions(mut self, v: Versions) -> Self {
        self.versions = v;
        self
    }

    pub fn client_cert(mut self, c: &'a Issued) -> Self {
        self.client_cert = Some(c);
        self
    }

    /// The rustls client config; one config reused across connections resumes sessions
    /// (rustls resumes only with the same verifier and client credentials).
    pub fn config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for r in &self.roots {
            roots.add(r.clone()).unwrap();
        }
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self.versions {
            Versions::Tls12 => &[&rustls::version::TLS12],
            Versions::Tls13 => &[&rustls::version::TLS13],
            Versions::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let mut provider = rustls::crypto::ring::default_provider();
        if self.rsa_only {
            use rustls::crypto::ring::cipher_suite as cs;
            provider.cipher_suites = vec![
                cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ];
        }
        let provider = Arc::new(provider);
        let b = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut c = match self.client_cert {
            Some(i) => b
                .with_client_auth_cert(
                    vec![i.der.clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(i.key_der.clone())),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        };
        if self.verify == Verify::AcceptAny {
            let provider = c.crypto_provider().clone();
            c.dangerous()
                .set_certificate_verifier(Arc::new(AcceptAny(provider)));
        }
        c.alpn_protocols = self.alpn.clone();
        c.enable_sni = self.sni == Sni::Send;
        Arc::new(c)
    }
}

/// A verifier that accepts any server certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A blocking TLS client connection to the gateway.
pub struct TlsClient {
    pub tls: StreamOwned<ClientConnection, TcpStream>,
}

impl TlsClient {
    /// Connects to `addr` and completes the handshake, or says why it failed.
    pub fn connect(addr: SocketAddr, opts: &ClientOpts<'_>) -> Result<TlsClient, String> {
        TlsClient::connect_config(addr, opts.config(), opts.name)
    }

    /// Connects with a ready `config` (kept across connections: resumption), verifying `name`.
    pub fn connect_config(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        name: &str,
    ) -> Result<TlsClient, String> {
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(TLS_LIVE)).unwrap();
        tcp.set_write_timeout(Some(TLS_LIVE)).unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        let conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(TlsClient { tls })
    }

    /// "TLSv1.2" or "TLSv1.3".
    pub fn version(&self) -> &'static str {
        match self.tls.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        }
    }

    /// Whether the handshake resumed an earlier session (ticket or session ID).
    pub fn resumed(&self) -> bool {
        self.tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.tls.conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The server's end-entity certificate (DER).
    pub fn peer_cert(&self) -> Option<CertificateDer<'static>> {
        self.tls
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned())
    }

    /// Sends `raw` and reads one response (head and a Content-Length body; the connection
    /// stays open for the next request).
    pub fn roundtrip(&mut self, raw: &[u8]) -> super::Response {
        self.tls.write_all(raw).unwrap();
        self.tls.flush().unwrap();
        self.read_response()
    }

    /// GET `path` with `Host: host`, kept alive.
    pub fn get(&mut self, host: &str, path: &str) -> super::Response {
        self.roundtrip(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
    }

    /// Reads one response: the head up to CRLFCRLF, then Content-Length bytes of body.
    pub fn read_response(&mut self) -> super::Response {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            let n = self.tls.read(&mut byte).unwrap();
            assert!(n > 0, "connection closed inside a response head: {buf:?}");
            buf.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buf).to_string();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.tls.read_exact(&mut body).unwrap();
        let mut hs = [httparse::EMPTY_HEADER; 128];
        let mut r = httparse::Response::new(&mut hs);
        r.parse(&buf).expect("valid response head");
        super::Response {
            status: r.code.unwrap(),
            version: r.version.unwrap(),
            headers: super::owned_headers(r.headers),
            body,
            head,
        }
    }

    /// Whether the server ended the connection cleanly (close_notify, RFC 8446 §6.1) within
    /// the read timeout, sending nothing more.
    pub fn closed_by_peer(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.tls.read(&mut b), Ok(0))
    }
}

/// Reads a PEM file's first certificate (to compare with what a handshake presented).
pub fn first_cert(path: &Path) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
}
