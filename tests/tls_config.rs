//! TLS configuration on a running gateway, both drivers: certificate expiry on `/metrics`, a
//! reload with a key that does not match its certificate rejected with the file named (the old
//! certificates stay in service), and a reload with a new certificate taking effect.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::Path;

use common::*;

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

/// A self-signed ECDSA P-256 certificate for `name`, valid for about `days` more days, written
/// to `dir` as `STEM.pem` and `STEM.key`.
fn certificate(dir: &Path, stem: &str, name: &str, days: i32) -> (String, String) {
    let mut p = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    let (y, m, d) = tollgate::fmt::civil_from_days(today + i64::from(days));
    p.not_after = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    let c = dir.join(format!("{stem}.pem"));
    let k = dir.join(format!("{stem}.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c.display().to_string(), k.display().to_string())
}

/// `tollgate_tls_certificate_expiry_seconds` by name.
fn expiries(admin: std::net::SocketAddr) -> Vec<(String, i64)> {
    let text = get(admin, "/metrics").text();
    let prefix = "tollgate_tls_certificate_expiry_seconds{name=\"";
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|l| {
            let (name, v) = l.split_once("\"} ")?;
            Some((name.to_string(), v.parse().ok()?))
        })
        .collect()
}

both_drivers! {
    fn expiry_gauge_and_certificate_reload(d) {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-tls-config-{}-{d}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = certificate(&dir, "api", "api.example.com", 20);
        let text = format!(
            "{}{ADMIN}[tls]\nlisten = [\"127.0.0.1:0\"]\n[[tls.certificate]]\ncert = {cert:?}\nkey = {key:?}\n\
             [[route]]\nkey = \"GET /v\"\nmock = {{ body = \"v\" }}\n",
            server_toml(d, 1, "")
        );
        let g = Gateway::from_toml(&text);
        let admin = g.handle().admin_addr().expect("admin listener");
        let e = expiries(admin);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "api.example.com");
        assert!((18 * 86_400..=21 * 86_400).contains(&e[0].1), "{e:?}");

        // a key that does not match the certificate: the reload is rejected, naming the file
        let (_, other_key) = certificate(&dir, "other", "other.example.com", 90);
        std::fs::copy(&other_key, &key).unwrap();
        let err = g.reload().expect_err("a mismatched pair is rejected");
        assert!(err.contains("tls.certificate[0].key"), "{err}");
        assert!(err.contains(&format!("{key} does not match")), "{err}");
        assert_eq!(get(g.addr, "/v").text(), "v");
        assert_eq!(expiries(admin)[0].0, "api.example.com", "the old certificate serves on");

        // a new pair under the same paths: the reload applies it
        let (new_cert, new_key) = certificate(&dir, "next", "next.example.com", 300);
        std::fs::copy(&new_cert, &cert).unwrap();
        std::fs::copy(&new_key, &key).unwrap();
        g.reload().expect("a valid pair reloads");
        let e = expiries(admin);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "next.example.com");
        assert!(e[0].1 > 290 * 86_400, "{e:?}");
        drop(g);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `tollgate check` on a valid config with a certificate about to expire (found by a path
/// relative to the config file) and an upstream with `verify = false`: exit 0, `ok` on stdout,
/// one warning line for each on stderr.
#[test]
fn check_warns_about_expiring_certificates_and_verify_false() {
    let dir = std::env::temp_dir().join(format!("tollgate-tls-check-{}", std::process::id()));
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    certificate(&certs, "api", "api.example.com", 5);
    let text = "[tls]\nlisten = [\"127.0.0.1:0\"]\n[[tls.certificate]]\ncert = \"certs/api.pem\"\n\
                key = \"certs/api.key\"\n[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:9\"]\n\
                tls = { verify = false }\n[[route]]\nkey = \"GET /x\"\nupstream = \"u\"\n";
    let file = dir.join("tollgate.toml");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check")
        .arg("-c")
        .arg(&file)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(": ok (1 route, 1 upstream)"), "{stdout}");
    let f = file.display();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{f}:4:8: warning: tls.certificate[0].cert: certificate \"api.example.com\" expires in ")),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{f}:9:18: warning: upstream[0].tls.verify: verify = false"
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
