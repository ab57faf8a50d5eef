//! Client certificates per route on the wire, both drivers: with `tls.client_auth =
//! "optional"`, a route with `mtls = true` refuses a connection without a verified client
//! certificate (403) and serves one with; `allow_subjects` patterns admit matching subjects
//! only; routes without `mtls` serve everyone; a plain listener's requests have no
//! certificate.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::tls_client::*;
use common::*;

const ROUTES: &str = r#"
[[route]]
key = "GET /open"
mock = { body = "open" }

[[route]]
key = "GET /secure"
mock = { body = "secure" }
mtls = true

[[route]]
key = "GET /alice"
mock = { body = "alice only" }
mtls = true
allow_subjects = ["CN=alice,O=Example Corp"]

[[route]]
key = "GET /corp"
mock = { body = "corp" }
mtls = true
allow_subjects = ["CN=*,O=Example Corp", "CN=admin"]
"#;

fn status_and_body(c: &mut TlsClient, path: &str) -> (u16, String) {
    let r = c.roundtrip(
        format!("GET {path} HTTP/1.1\r\nHost: api.example.com\r\nx-request-id: {path}\r\n\r\n")
            .as_bytes(),
    );
    (r.status, r.text())
}

both_drivers! {
    fn mtls_routes_need_a_verified_certificate_with_an_allowed_subject(d) {
        let dir = CertDir::new("mtls-routes");
        let ca = Ca::new(&dir, "ca", "Test CA");
        let clients = Ca::new(&dir, "clients", "Clients CA");
        let leaf = ca.leaf(&dir, "api", &["api.example.com"]);
        let alice = clients.client(&dir, "alice", "alice", "Example Corp");
        let carol = clients.client(&dir, "carol", "carol", "Example Corp");
        let bob = clients.client(&dir, "bob", "bob", "Other Inc");
        let admin = clients.client(&dir, "admin", "admin", "Ops Ltd");
        // the escaped-comma attack: a subject of one CN "mallory,O=Example Corp" renders as
        // `CN=mallory\,O=Example Corp` (a glob over the string took it for Example Corp)
        let mallory = clients.client_dn(&dir, "mallory", &[("CN", "mallory,O=Example Corp")]);
        // the same attributes in the other order: O first, then CN
        let dave = clients.client_dn(&dir, "dave", &[("O", "Example Corp"), ("CN", "alice")]);
        let orgless = clients.client_dn(&dir, "orgless", &[("CN", "alice")]);
        let log = dir.file("access.log");
        let (cert, key) = leaf.toml_pair();
        let text = format!(
            "{}[tls]\nlisten = [\"127.0.0.1:0\"]\nclient_ca = {:?}\nclient_auth = \"optional\"\n\
             [[tls.certificate]]\ncert = {cert}\nkey = {key}\n\
             [access_log]\npath = {:?}\nformat = '$context.requestId $context.status $context.errorMessage'\n{ROUTES}",
            server_toml(d, 1, ""),
            clients.pem.display().to_string(),
            log.display().to_string(),
        );
        let g = Gateway::from_toml(&text);
        let tls = g.handle().tls_addrs()[0];
        let forbidden = (403, r#"{"message":"Forbidden"}"#.to_string());

        // no certificate: open routes only
        let mut bare = TlsClient::connect(tls, &ClientOpts::new(&ca, "api.example.com")).unwrap();
        assert_eq!(status_and_body(&mut bare, "/open"), (200, "open".into()));
        for path in ["/secure", "/alice", "/corp"] {
            assert_eq!(status_and_body(&mut bare, path), forbidden, "{path}");
        }
        // the plain listener: never a certificate
        assert_eq!(get(g.plain_addr(), "/secure").status, 403);
        assert_eq!(get(g.plain_addr(), "/open").status, 200);

        let cases: [(&Issued, [bool; 3]); 7] = [
            // (client, [/secure, /alice, /corp] served)
            (&alice, [true, true, true]),
            (&carol, [true, false, true]),
            (&bob, [true, false, false]),
            (&admin, [true, false, true]),
            (&mallory, [true, false, false]),
            (&dave, [true, true, true]),
            // every attribute of the pattern must be there: no O, no match
            (&orgless, [true, false, false]),
        ];
        for (who, served) in cases {
            let opts = ClientOpts::new(&ca, "api.example.com").client_cert(who);
            let mut c = TlsClient::connect(tls, &opts).unwrap();
            for (path, ok) in ["/secure", "/alice", "/corp"].into_iter().zip(served) {
                let got = status_and_body(&mut c, path);
                if ok {
                    assert_eq!(got.0, 200, "{path}: {got:?}");
                } else {
                    assert_eq!(got, forbidden, "{path}");
                }
            }
            assert_eq!(status_and_body(&mut c, "/open"), (200, "open".into()));
        }
        g.stop();
        // the refusal's reason is in the log, not in the body
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.lines().any(|l| l == "/secure 403 no client certificate"), "{text}");
        assert!(
            text.lines()
                .any(|l| l == r#"/alice 403 client certificate subject \"CN=bob,O=Other Inc\" not allowed"#),
            "{text}"
        );
        assert!(
            text.contains(r#"403 client certificate subject \"CN=mallory\\\\,O=Example Corp\" not allowed"#),
            "{text}"
        );
    }
}

#[test]
fn mtls_without_a_client_ca_is_a_config_error() {
    let text = "[[route]]\nkey = \"GET /x\"\nmock = {}\nmtls = true\n";
    let Err(e) = tollgate::config::from_str(text) else {
        panic!("accepted: {text}")
    };
    let e = e.render("gw.toml");
    assert!(
        e.contains("gw.toml:4:8: route[0].mtls:") && e.contains("client_ca"),
        "{e}"
    );
}
