//! `[tls]` and upstream `tls` from config text to working rustls configs: certificates made by
//! rcgen in a temporary directory, and every handshake driven in memory between a rustls
//! client and server (no sockets: this module owns no I/O; the transport's tests cover the
//! wire on both drivers).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ProtocolVersion, RootCertStore, ServerConnection};

use super::*;
use crate::tls::client::{self, Roots};
use crate::tls::{ClientAuth, MinVersion, ServerNameChoice, Verify};

/// A directory of its own under the system's temp dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "tollgate-tlsconf-{}-{name}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn write(&self, file: &str, text: &str) -> String {
        let p = self.0.join(file);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A generated certificate with its key.
struct Made {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Made {
    /// Writes `STEM.pem` and `STEM.key`, returning their paths.
    fn save(&self, dir: &Dir, stem: &str) -> (String, String) {
        (
            dir.write(&format!("{stem}.pem"), &self.cert.pem()),
            dir.write(&format!("{stem}.key"), &self.key.serialize_pem()),
        )
    }

    fn der(&self) -> rustls::pki_types::CertificateDer<'static> {
        self.cert.der().clone()
    }
}

fn ca(cn: &str) -> Made {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().unwrap();
    Made {
        cert: p.self_signed(&key).unwrap(),
        key,
    }
}

/// A leaf for `names`, signed by `issuer` (self-signed without one), with key algorithm `alg`.
fn leaf_with(
    names: &[&str],
    issuer: Option<&Made>,
    alg: &'static rcgen::SignatureAlgorithm,
    validity: Option<(i64, i64)>,
) -> Made {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut p = rcgen::CertificateParams::new(names).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, "leaf");
    if let Some((from, to)) = validity {
        let (y, m, d) = day(from);
        p.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = day(to);
        p.not_after = rcgen::date_time_ymd(y, m, d);
    }
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let cert = match issuer {
        Some(i) => p.signed_by(&key, &i.cert, &i.key).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    Made { cert, key }
}

fn leaf(names: &[&str], issuer: Option<&Made>) -> Made {
    leaf_with(names, issuer, &rcgen::PKCS_ECDSA_P256_SHA256, None)
}

fn compile(text: &str) -> Config {
    from_str(text).unwrap_or_else(|e| panic!("{}", e.render("t.toml")))
}

fn errors(text: &str) -> Vec<ConfigError> {
    match from_str(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.0,
    }
}

const ROUTE: &str = "[[route]]\nkey = \"GET /x\"\nmock = {}\n";

/// A `[tls]` config on port 0 with `extra` lines and one `[[tls.certificate]]` per pair.
fn tls_text(extra: &str, pairs: &[(String, String)]) -> String {
    let mut t = format!("[tls]\nlisten = [\"127.0.0.1:0\"]\n{extra}\n");
    for (c, k) in pairs {
        t.push_str(&format!("[[tls.certificate]]\ncert = {c:?}\nkey = {k:?}\n"));
    }
    t.push_str(ROUTE);
    t
}

/// Drives a handshake between `client` (asking for `name`) and `server` in memory.
fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    name: &str,
) -> Result<(ServerConnection, ClientConnection), rustls::Error> {
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut c = ClientConnection::new(client, name)?;
    let mut s = ServerConnection::new(server)?;
    for _ in 0..16 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        s.process_new_packets()?;
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
        }
        c.process_new_packets()?;
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok((s, c));
        }
    }
    Err(rustls::Error::General("handshake made no progress".into()))
}

/// A client that trusts `roots`, speaks `versions`, offers `alpn`.
fn client_trusting(
    roots: &[&Made],
    versions: &[&'static rustls::SupportedProtocolVersion],
    cert: Option<&Made>,
) -> Arc<rustls::ClientConfig> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store.add(r.der()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(store);
    let mut c = match cert {
        Some(m) => {
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(m.key.serialize_der().into());
            b.with_client_auth_cert(vec![m.der()], key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(c)
}

/// A client that accepts any certificate (to see which one the server picked).
fn client_any() -> Arc<rustls::ClientConfig> {
    client::build(
        Roots::Custom(RootCertStore::empty()),
        Verify::Off,
        None,
        crate::tls::provider(),
    )
    .unwrap()
}

fn served(s: &ServerConnection, c: &ClientConnection) -> Vec<u8> {
    assert!(s.protocol_version().is_some());
    c.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn sni_picks_by_san_exact_before_wildcard_and_defaults_to_the_first() {
    let dir = Dir::new("sni");
    let api = leaf(&["api.example.com"], None);
    let wild = leaf(&["*.example.com"], None);
    let www = leaf(&["www.example.com"], None);
    let pairs = vec![
        api.save(&dir, "api"),
        wild.save(&dir, "wild"),
        www.save(&dir, "www"),
    ];
    let cfg = compile(&tls_text("", &pairs));
    let tls = cfg.tls.as_ref().expect("[tls] compiled");
    let cases = [
        ("api.example.com", &api),
        ("API.Example.COM", &api),
        ("www.example.com", &www),
        ("shop.example.com", &wild),
        ("a.b.example.com", &api), // one label only: unknown, so the first
        ("unknown.test", &api),
    ];
    for (name, want) in cases {
        let (s, c) = handshake(tls.server.clone(), client_any(), name).unwrap();
        assert_eq!(served(&s, &c), want.der().to_vec(), "{name}");
    }
    assert_eq!(
        tls.certificates
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["api.example.com", "*.example.com", "www.example.com"]
    );
    // strict_sni: an unknown name is refused
    let strict = compile(&tls_text("strict_sni = true", &pairs));
    let server = strict.tls.as_ref().unwrap().server.clone();
    assert!(handshake(server.clone(), client_any(), "unknown.test").is_err());
    assert!(handshake(server, client_any(), "shop.example.com").is_ok());
}

#[test]
fn versions_suites_and_alpn() {
    let dir = Dir::new("versions");
    let ca = ca("Test CA");
    let api = leaf(&["api.example.com"], Some(&ca));
    let pairs = vec![api.save(&dir, "api")];
    let only12 = [&rustls::version::TLS12];
    let only13 = [&rustls::version::TLS13];
    // default "1.2": both versions, chosen by the client
    let cfg = compile(&tls_text("", &pairs));
    let tls = cfg.tls.as_ref().unwrap();
    assert_eq!(tls.min_version, MinVersion::Tls12);
    let (s, _) = handshake(
        tls.server.clone(),
        client_trusting(&[&ca], &only12, None),
        "api.example.com",
    )
    .unwrap();
    assert_eq!(s.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    let suite = s.negotiated_cipher_suite().unwrap();
    assert!(
        crate::tls::INTERMEDIATE_SUITES.contains(&suite),
        "{suite:?}"
    );
    // ALPN: the server's choice among what the client offers (RFC 7301 §3.2); the default
    // prefers HTTP/2 (RFC 9113 §3.2)
    assert_eq!(s.alpn_protocol(), Some(&b"h2"[..]));
    for (alpn, chosen) in [
        ("alpn = [\"http/1.1\"]", &b"http/1.1"[..]),
        ("alpn = [\"http/1.1\", \"h2\"]", &b"http/1.1"[..]),
        ("alpn = [\"h2\"]", &b"h2"[..]),
    ] {
        let cfg = compile(&tls_text(alpn, &pairs));
        let server = cfg.tls.as_ref().unwrap().server.clone();
        let c = client_trusting(&[&ca], &only12, None);
        let (s, _) = handshake(server, c, "api.example.com").unwrap();
        assert_eq!(s.alpn_protocol(), Some(chosen), "{alpn}");
    }
    // "1.3": a TLS 1.2-only client is refused, TLS 1.3 works
    let cfg = compile(&tls_text("min_version = \"1.3\"", &pairs));
    let server = cfg.tls.as_ref().unwrap().server.clone();
    let refused = handshake(
        server.clone(),
        client_trusting(&[&ca], &only12, None),
        "api.example.com",
    );
    assert!(refused.is_err());
    let (s, _) = handshake(
        server,
        client_trusting(&[&ca], &only13, None),
        "api.example.com",
    )
    .unwrap();
    assert_eq!(s.protocol_version(), Some(ProtocolVersion::TLSv1_3));
}

#[test]
fn ecdsa_p384_and_ed25519_keys_are_served() {
    let dir = Dir::new("algs");
    for (i, alg) in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519]
        .into_iter()
        .enumerate()
    {
        let m = leaf_with(&["k.example.com"], None, alg, None);
        let pairs = vec![m.save(&dir, &format!("k{i}"))];
        let cfg = compile(&tls_text("", &pairs));
        let server = cfg.tls.as_ref().unwrap().server.clone();
        let (s, c) = handshake(server, client_any(), "k.example.com").unwrap();
        assert_eq!(served(&s, &c), m.der().to_vec());
    }
}

#[test]
fn rsa_pkcs1_and_ec_sec1_keys_are_served() {
    // (PKCS#8 form for rcgen to sign with, the form tollgate is given, the suite family)
    let keys = [
        (
            include_str!("../../tests/data/tls/rsa2048.pkcs8.pem"),
            include_str!("../../tests/data/tls/rsa2048.pkcs1.pem"),
            "RSA PRIVATE KEY",
        ),
        (
            include_str!("../../tests/data/tls/p256.pkcs8.pem"),
            include_str!("../../tests/data/tls/p256.sec1.pem"),
            "EC PRIVATE KEY",
        ),
    ];
    let dir = Dir::new("formats");
    for (i, (pkcs8, given, label)) in keys.into_iter().enumerate() {
        assert!(given.contains(label));
        let key = rcgen::KeyPair::from_pem(pkcs8).unwrap();
        let p = rcgen::CertificateParams::new(vec!["k.example.com".to_string()]).unwrap();
        let made = Made {
            cert: p.self_signed(&key).unwrap(),
            key,
        };
        let c = dir.write(&format!("f{i}.pem"), &made.cert.pem());
        let k = dir.write(&format!("f{i}.key"), given);
        let cfg = compile(&tls_text("", &[(c, k)]));
        let server = cfg.tls.as_ref().unwrap().server.clone();
        // TLS 1.2 too: the ECDHE-RSA or ECDHE-ECDSA suites of the profile
        for versions in [
            &[&rustls::version::TLS12][..],
            &[&rustls::version::TLS13][..],
        ] {
            // the self-signed certificate is its own trust anchor
            let client = client_trusting(&[&made], versions, None);
            let (s, c) = handshake(server.clone(), client, "k.example.com").unwrap();
            assert_eq!(served(&s, &c), made.der().to_vec(), "{label}");
        }
    }
}

#[test]
fn mutual_tls_required_and_optional() {
    let dir = Dir::new("mtls");
    let server_ca = ca("Server CA");
    let clients_ca = ca("Clients CA");
    let api = leaf(&["api.example.com"], Some(&server_ca));
    let pairs = vec![api.save(&dir, "api")];
    let ca_path = dir.write("clients-ca.pem", &clients_ca.cert.pem());
    let client_cert = leaf(&["client.example"], Some(&clients_ca));
    let stranger = leaf(&["client.example"], Some(&ca("Other CA")));
    let all = [&rustls::version::TLS13, &rustls::version::TLS12];

    let required = compile(&tls_text(
        &format!("client_ca = {ca_path:?}\nclient_auth = \"required\""),
        &pairs,
    ));
    let tls = required.tls.as_ref().unwrap();
    assert_eq!(tls.client_auth, ClientAuth::Required);
    let without = handshake(
        tls.server.clone(),
        client_trusting(&[&server_ca], &all, None),
        "api.example.com",
    );
    assert!(
        without.is_err(),
        "required refuses a client without a certificate"
    );
    let foreign = handshake(
        tls.server.clone(),
        client_trusting(&[&server_ca], &all, Some(&stranger)),
        "api.example.com",
    );
    assert!(foreign.is_err(), "a certificate from another CA is refused");
    let (s, _) = handshake(
        tls.server.clone(),
        client_trusting(&[&server_ca], &all, Some(&client_cert)),
        "api.example.com",
    )
    .unwrap();
    let presented = &s.peer_certificates().unwrap()[0];
    let facts = crate::tls::client_cert_facts(presented).unwrap();
    assert_eq!(facts.subject_dn, "CN=leaf");
    assert_eq!(facts.issuer_dn, "CN=Clients CA");

    // client_ca alone: optional
    let optional = compile(&tls_text(&format!("client_ca = {ca_path:?}"), &pairs));
    let tls = optional.tls.as_ref().unwrap();
    assert_eq!(tls.client_auth, ClientAuth::Optional);
    let (s, _) = handshake(
        tls.server.clone(),
        client_trusting(&[&server_ca], &all, None),
        "api.example.com",
    )
    .unwrap();
    assert!(s.peer_certificates().is_none());
}

#[test]
fn key_not_matching_its_certificate_names_key_file_and_line() {
    let dir = Dir::new("mismatch");
    let a = leaf(&["a.example.com"], None);
    let b = leaf(&["b.example.com"], None);
    let (ac, ak) = a.save(&dir, "a");
    let (bc, _) = b.save(&dir, "b");
    let text = tls_text("", &[(ac, ak.clone()), (bc.clone(), ak.clone())]);
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].key, "tls.certificate[1].key");
    assert_eq!(e[0].line, 9, "{e:?}"); // the second pair's `key =` line
    assert!(e[0].message.contains(&ak), "{}", e[0].message);
    assert!(e[0].message.contains(&bc), "{}", e[0].message);
    assert!(e[0].message.contains("does not match"), "{}", e[0].message);
}

#[test]
fn an_unsupported_key_type_is_an_error_naming_the_key_file() {
    let dir = Dir::new("unsupported");
    let (c, _) = leaf(&["a.example.com"], None).save(&dir, "a");
    let k = dir.write(
        "p521.key",
        include_str!("../../tests/data/tls/p521.sec1.pem"),
    );
    let e = errors(&tls_text("", &[(c, k.clone())]));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].key.as_str(), e[0].line),
        ("tls.certificate[0].key", 6)
    );
    assert!(
        e[0].message
            .starts_with(&format!("{k}: unsupported private key")),
        "{e:?}"
    );
}

#[test]
fn unreadable_or_wrong_pem_files_are_errors_naming_the_file() {
    let dir = Dir::new("files");
    let a = leaf(&["a.example.com"], None);
    let (ac, ak) = a.save(&dir, "a");
    let missing = dir.0.join("missing.pem").display().to_string();
    let garbage = dir.write("garbage.pem", "not pem at all\n");
    let text = tls_text(
        &format!("client_ca = {garbage:?}"),
        &[(missing.clone(), ak.clone()), (ak.clone(), ac.clone())],
    );
    let e = errors(&text);
    let got: Vec<(&str, usize)> = e.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("tls.client_ca", 3),
            ("tls.certificate[0].cert", 5),
            ("tls.certificate[1].cert", 8),
            ("tls.certificate[1].key", 9),
        ],
        "{e:?}"
    );
    assert!(e[0].message.contains("holds no certificate"), "{e:?}");
    assert!(e[1].message.contains(&missing) && e[1].message.contains("cannot read"));
    assert!(e[2].message.contains("holds no certificate"), "{e:?}");
    assert!(e[3].message.contains("holds no private key"), "{e:?}");
}

#[test]
fn relative_paths_resolve_against_the_config_files_directory() {
    let dir = Dir::new("relative");
    std::fs::create_dir_all(dir.0.join("certs")).unwrap();
    let a = leaf(&["a.example.com"], None);
    a.save(&dir, "certs/a");
    let text = tls_text("", &[("certs/a.pem".into(), "certs/a.key".into())]);
    let file = dir.write("tollgate.toml", &text);
    let cfg = load(Path::new(&file)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.base_dir.as_deref(), Some(dir.0.as_path()));
    assert!(from_str_in(&text, &dir.0).is_ok());
    // without a base directory the path is the working directory's: not found there
    let e = errors(&text);
    assert!(e[0].message.contains("cannot read certs/a.pem"), "{e:?}");
}

#[test]
fn a_mismatched_pair_rejects_a_load_with_the_file_named() {
    // what a reload does (`ConfigSource::load`): the rendered error names file, line and key
    let dir = Dir::new("reload");
    let a = leaf(&["a.example.com"], None);
    let b = leaf(&["b.example.com"], None);
    let (ac, _) = a.save(&dir, "a");
    let (_, bk) = b.save(&dir, "b");
    let file = dir.write("t.toml", &tls_text("", &[(ac, bk.clone())]));
    let e = load(Path::new(&file)).unwrap_err();
    assert!(
        e.starts_with(&format!(
            "{file}:6:7: tls.certificate[0].key: {bk} does not match"
        )),
        "{e}"
    );
}

/// The UTC date `days` from today, as (year, month, day).
fn day(days: i64) -> (i32, u8, u8) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (y, m, d) = crate::fmt::civil_from_days(secs / 86_400 + days);
    (y as i32, m as u8, d as u8)
}

#[test]
fn expired_and_expiring_certificates_are_warnings() {
    let dir = Dir::new("expiry");
    let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
    let soon = leaf_with(&["soon.example.com"], None, alg, Some((-60, 10)));
    let gone = leaf_with(&["gone.example.com"], None, alg, Some((-60, -2)));
    let fine = leaf_with(&["fine.example.com"], None, alg, Some((-60, 90)));
    let pairs = vec![
        fine.save(&dir, "fine"),
        soon.save(&dir, "soon"),
        gone.save(&dir, "gone"),
    ];
    let cfg = compile(&tls_text("", &pairs));
    let w: Vec<(&str, usize, &str)> = cfg
        .warnings
        .iter()
        .map(|w| (w.key.as_str(), w.line, w.message.as_str()))
        .collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!((w[0].0, w[0].1), ("tls.certificate[1].cert", 8));
    assert!(w[0].2.contains("\"soon.example.com\" expires in"), "{w:?}");
    assert_eq!((w[1].0, w[1].1), ("tls.certificate[2].cert", 11));
    assert!(w[1].2.contains("\"gone.example.com\" EXPIRED"), "{w:?}");
    let shown = render_warnings(&cfg.warnings, "t.toml");
    assert!(
        shown.starts_with("t.toml:8:8: warning: tls.certificate[1].cert: certificate"),
        "{shown}"
    );
    // the metrics gauge: seconds left, negative once expired
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut out = String::new();
    crate::metrics::prom::tls_certificates(&mut out, &cfg, now);
    assert!(out.contains("# TYPE tollgate_tls_certificate_expiry_seconds gauge"));
    let value = |name: &str| -> i64 {
        let p = format!("tollgate_tls_certificate_expiry_seconds{{name=\"{name}\"}} ");
        let line = out.lines().find(|l| l.starts_with(&p)).unwrap();
        line[p.len()..].parse().unwrap()
    };
    assert!(
        (9 * 86_400..=11 * 86_400).contains(&value("soon.example.com")),
        "{out}"
    );
    assert!(value("gone.example.com") < 0, "{out}");
    assert!(value("fine.example.com") > 80 * 86_400, "{out}");
}

#[test]
fn tls_settings_are_checked_with_key_and_line() {
    let dir = Dir::new("settings");
    let pairs = vec![leaf(&["a.example.com"], None).save(&dir, "a")];
    let bad = [
        ("min_version = \"1.1\"", "tls.min_version", "RFC 8996"),
        (
            "min_version = \"2\"",
            "tls.min_version",
            "\"1.2\" or \"1.3\"",
        ),
        ("alpn = [\"h2\", \"h2\"]", "tls.alpn[1]", "duplicate"),
        ("alpn = [\"spdy/3\"]", "tls.alpn[0]", "unsupported ALPN"),
        ("alpn = []", "tls.alpn", "at least one"),
        (
            "client_auth = \"required\"",
            "tls.client_auth",
            "needs tls.client_ca",
        ),
        ("hsts = \"includeSubDomains\"", "tls.hsts", "max-age"),
        ("hsts = \"max-age=abc\"", "tls.hsts", "max-age"),
        ("hsts = \"max-age=1; bad dir\"", "tls.hsts", "tokens"),
        (
            "handshake_timeout_ms = 0",
            "tls.handshake_timeout_ms",
            "100..=60000",
        ),
        (
            "session_cache_entries = 99999999",
            "tls.session_cache_entries",
            "must be in",
        ),
        (
            "listen = [\"127.0.0.1:8080\"]",
            "tls.listen[0]",
            "duplicate",
        ),
    ];
    for (line, key, msg) in bad {
        let mut text = format!(
            "[server]\nlisten = [\"127.0.0.1:8080\"]\n{}",
            tls_text(line, &pairs)
        );
        let mut at = 5;
        if line.starts_with("listen") {
            // in place of the port-0 listen line
            text = text.replacen("listen = [\"127.0.0.1:0\"]\n", "", 1);
            at = 4;
        }
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{line}: {e:?}");
        assert_eq!(e[0].key, key, "{line}");
        assert_eq!(e[0].line, at, "{line}");
        assert!(e[0].message.contains(msg), "{line}: {}", e[0].message);
    }
    let ok = compile(&tls_text(
        "hsts = \"max-age=31536000; includeSubDomains; preload\"\nhandshake_timeout_ms = 5000",
        &pairs,
    ));
    let tls = ok.tls.as_ref().unwrap();
    assert_eq!(
        tls.hsts.as_deref(),
        Some("max-age=31536000; includeSubDomains; preload")
    );
    assert_eq!(tls.handshake_timeout.as_millis(), 5000);
    // defaults
    let d = compile(&tls_text("", &pairs));
    let tls = d.tls.as_ref().unwrap();
    assert_eq!(tls.handshake_timeout.as_millis(), 10_000);
    assert_eq!(tls.client_auth, ClientAuth::Off);
    assert_eq!(tls.hsts, None);
    // nor the admin listener's address
    let e = errors(&format!(
        "[admin]\nlisten = \"127.0.0.1:9901\"\n{}",
        tls_text("", &pairs).replace("127.0.0.1:0", "127.0.0.1:9901")
    ));
    assert_eq!(
        (e[0].key.as_str(), e[0].line),
        ("tls.listen[0]", 4),
        "{e:?}"
    );
    // no certificate at all
    let e = errors("[tls]\nlisten = [\"127.0.0.1:0\"]\n[[route]]\nkey = \"GET /x\"\nmock = {}\n");
    assert_eq!(e[0].key, "tls.certificate", "{e:?}");
}

#[test]
fn redirect_https_needs_a_tls_listener() {
    let e = errors(&format!("[server]\nredirect_https = true\n{ROUTE}"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].key.as_str(), e[0].line), ("server.redirect_https", 2));
    let dir = Dir::new("redirect");
    let pairs = vec![leaf(&["a.example.com"], None).save(&dir, "a")];
    let cfg = compile(&format!(
        "[server]\nredirect_https = true\n{}",
        tls_text("", &pairs)
    ));
    assert!(cfg.server.redirect_https);
    assert!(!compile(ROUTE).server.redirect_https);
}

fn upstream_text(tls: &str) -> String {
    format!(
        "[[upstream]]\nname = \"secure\"\ntargets = [\"127.0.0.1:9443\"]\ntls = {tls}\n\
         [[route]]\nkey = \"GET /x\"\nupstream = \"secure\"\n"
    )
}

/// An origin's rustls server: `m` for every name, client certificates from `clients` required.
fn origin(m: &Made, clients: Option<&Made>) -> Arc<rustls::ServerConfig> {
    let b = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let b = match clients {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.der()).unwrap();
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                crate::tls::provider(),
            )
            .build()
            .unwrap();
            b.with_client_cert_verifier(v)
        }
        None => b.with_no_client_auth(),
    };
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(m.key.serialize_der().into());
    Arc::new(b.with_single_cert(vec![m.der()], key).unwrap())
}

#[test]
fn upstream_tls_with_a_ca_and_a_client_certificate() {
    let dir = Dir::new("upstream");
    let origin_ca = ca("Origin CA");
    let ca_path = dir.write("origin-ca.pem", &origin_ca.cert.pem());
    let good = leaf(&["origin.internal"], Some(&origin_ca));
    let wrong_ca = leaf(&["origin.internal"], Some(&ca("Wrong CA")));
    let cfg = compile(&upstream_text(&format!(
        "{{ server_name = \"origin.internal\", ca = {ca_path:?} }}"
    )));
    let tls = cfg.upstreams[0].tls.as_ref().expect("upstream tls");
    assert_eq!(tls.verify, Verify::On);
    let target = &cfg.upstreams[0].names[0].kind;
    let name = tls.server_name_for(target).unwrap();
    assert_eq!(name, ServerName::try_from("origin.internal").unwrap());
    assert!(handshake(origin(&good, None), tls.config.clone(), "origin.internal").is_ok());
    let refused = handshake(
        origin(&wrong_ca, None),
        tls.config.clone(),
        "origin.internal",
    );
    assert!(
        refused.is_err(),
        "an origin certificate from another CA is refused"
    );
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);

    // a client certificate for an origin that requires one
    let clients_ca = ca("Gateway CA");
    let gw = leaf(&["gateway.internal"], Some(&clients_ca));
    let (gc, gk) = gw.save(&dir, "gw");
    let with_cert = compile(&upstream_text(&format!(
        "{{ server_name = \"origin.internal\", ca = {ca_path:?}, cert = {gc:?}, key = {gk:?} }}"
    )));
    let client_cfg = with_cert.upstreams[0].tls.as_ref().unwrap().config.clone();
    let (s, _) = handshake(
        origin(&good, Some(&clients_ca)),
        client_cfg,
        "origin.internal",
    )
    .unwrap();
    assert_eq!(s.peer_certificates().unwrap()[0], gw.der());
    let without = handshake(
        origin(&good, Some(&clients_ca)),
        tls.config.clone(),
        "origin.internal",
    );
    assert!(without.is_err(), "the origin requires a client certificate");
    // the same files compile to an equal upstream (a reload keeps the pools)
    let again = compile(&upstream_text(&format!(
        "{{ server_name = \"origin.internal\", ca = {ca_path:?} }}"
    )));
    assert_eq!(again.upstreams[0], cfg.upstreams[0]);
    assert_ne!(with_cert.upstreams[0], cfg.upstreams[0]);
    // cert without key, bad server name
    let e = errors(&upstream_text(&format!("{{ cert = {gc:?} }}")));
    assert_eq!(e[0].key, "upstream[0].tls.cert", "{e:?}");
    let e = errors(&upstream_text("{ server_name = \"bad name!\" }"));
    assert_eq!(e[0].key, "upstream[0].tls.server_name", "{e:?}");
}

#[test]
fn upstream_tls_defaults_to_system_roots_and_the_target_host() {
    let text = upstream_text("{ }");
    match client::system_roots() {
        Ok(_) => {
            let cfg = compile(&text);
            let tls = cfg.upstreams[0].tls.as_ref().unwrap();
            assert_eq!(tls.server_name, ServerNameChoice::TargetHost);
            assert_eq!(tls.verify, Verify::On);
            // an IP-literal target: the IP as the server name
            let name = tls
                .server_name_for(&cfg.upstreams[0].names[0].kind)
                .unwrap();
            assert_eq!(
                name,
                ServerName::IpAddress("127.0.0.1".parse::<std::net::IpAddr>().unwrap().into())
            );
            // a host-name target: its name
            let host = crate::config::resolve::Target::Name {
                host: "origin.example".into(),
                port: 443,
            };
            assert_eq!(
                tls.server_name_for(&host).unwrap(),
                ServerName::try_from("origin.example").unwrap()
            );
        }
        Err(_) => {
            let e = errors(&text);
            assert_eq!(e[0].key, "upstream[0].tls", "{e:?}");
            assert!(e[0].message.contains("set `ca`"), "{e:?}");
        }
    }
}

/// Answers every name with 127.0.0.1.
struct Loopback;

impl resolve::Resolver for Loopback {
    fn lookup(&self, _: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
        Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
    }
}

#[test]
fn a_target_host_that_is_no_server_name_needs_an_explicit_one() {
    let text = "[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:1\", \"bad..name:443\"]\n\
                tls = { verify = false }\n[[route]]\nkey = \"GET /x\"\nupstream = \"u\"\n";
    let e = from_str_with(text, Arc::new(Loopback)).unwrap_err().0;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].key.as_str(), e[0].line),
        ("upstream[0].targets[1]", 3)
    );
    assert!(
        e[0].message.contains("set upstream[0].tls.server_name"),
        "{e:?}"
    );
    let fixed = text.replace(
        "verify = false",
        "verify = false, server_name = \"origin.test\"",
    );
    let cfg = from_str_with(&fixed, Arc::new(Loopback)).unwrap();
    let tls = cfg.upstreams[0].tls.as_ref().unwrap();
    let name = tls
        .server_name_for(&cfg.upstreams[0].names[1].kind)
        .unwrap();
    assert_eq!(name, ServerName::try_from("origin.test").unwrap());
}

#[test]
fn verify_false_is_a_warning_and_accepts_any_certificate() {
    let cfg = compile(&upstream_text("{ verify = false }"));
    let tls = cfg.upstreams[0].tls.as_ref().unwrap();
    assert_eq!(tls.verify, Verify::Off);
    assert_eq!(cfg.warnings.len(), 1, "{:?}", cfg.warnings);
    assert_eq!(cfg.warnings[0].key, "upstream[0].tls.verify");
    assert_eq!(cfg.warnings[0].line, 4);
    let stranger = leaf(&["somewhere.else"], None);
    assert!(handshake(
        origin(&stranger, None),
        tls.config.clone(),
        "origin.internal"
    )
    .is_ok());
    // spelled out `verify = true` is the default and warns about nothing
    assert!(compile(&upstream_text(
        "{ verify = true, server_name = \"x.test\" }"
    ))
    .warnings
    .is_empty());
}

#[test]
fn effective_config_shows_tls_sections_and_paths_never_key_contents() {
    let dir = Dir::new("effective");
    let a = leaf(&["a.example.com"], None);
    let pairs = vec![a.save(&dir, "a")];
    let text = format!(
        "{}[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:9\"]\ntls = {{ verify = false }}\n",
        tls_text("", &pairs)
    );
    compile(&text);
    let shown = effective::render(&text, &[]);
    assert!(shown.contains("[tls]"), "{shown}");
    assert!(shown.contains("[[tls.certificate]]"), "{shown}");
    assert!(shown.contains(&pairs[0].1), "{shown}");
    assert!(shown.contains("min_version = \"1.2\""), "{shown}");
    assert!(shown.contains("handshake_timeout_ms = 10000"), "{shown}");
    assert!(shown.contains("verify = false"), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    // and it is a config that compiles to the same TLS settings
    let again = compile(&shown);
    assert_eq!(
        again.tls.as_ref().unwrap().certificates,
        compile(&text).tls.unwrap().certificates
    );
    assert_eq!(again.upstreams[0].tls, compile(&text).upstreams[0].tls);
}

#[test]
fn a_wildcard_over_a_top_level_domain_is_refused_naming_the_key() {
    let dir = Dir::new("tld-wildcard");
    let ok = leaf(&["api.example.com"], None);
    let tld = leaf(&["www.example.com", "*.com"], None);
    let (oc, ok_key) = ok.save(&dir, "ok");
    let (tc, tk) = tld.save(&dir, "tld");
    let e = errors(&tls_text("", &[(oc.clone(), ok_key.clone()), (tc, tk)]));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].key, "tls.certificate[1].cert");
    assert_eq!(e[0].line, 8, "{e:?}"); // the second pair's `cert =` line
    assert!(e[0].message.contains("\"*.com\""), "{}", e[0].message);
    assert!(
        e[0].message.contains("top-level domain"),
        "{}",
        e[0].message
    );
    // two labels after "*." are fine
    let two = leaf(&["*.example.com"], None);
    let (wc, wk) = two.save(&dir, "two");
    compile(&tls_text("", &[(oc, ok_key), (wc, wk)]));
}
