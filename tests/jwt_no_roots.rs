//! A host without system trust roots: a JWT authorizer with an `https` key set URL (or a `url`
//! request authorizer) still loads — a warning naming the key and saying what fails — and its
//! routes answer 500 at run time (the fetch cannot verify any certificate), while the other
//! routes serve. Its own test binary: it points `SSL_CERT_FILE` at a file that does not exist
//! and `SSL_CERT_DIR` at an empty directory (rustls-native-certs then loads nothing else),
//! once, before any config is compiled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// Points the trust store at nothing, for the whole process (every test here wants that).
fn no_roots() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let none = std::env::temp_dir().join("tollgate-no-such-bundle.pem");
        let _ = std::fs::remove_file(&none);
        std::env::set_var("SSL_CERT_FILE", none);
        // and no directory of them either (an empty one: the variable may be set already)
        let empty = std::env::temp_dir().join(format!("tollgate-no-roots-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        std::env::set_var("SSL_CERT_DIR", empty);
    });
}

fn rest(idp: std::net::SocketAddr, authz: std::net::SocketAddr) -> String {
    format!(
        "[[route]]\nkey = \"GET /jwt\"\nmock = {{ body = \"jwt\" }}\nauthorizer = \"users\"\n\n\
         [[route]]\nkey = \"GET /req\"\nmock = {{ body = \"req\" }}\nauthorizer = \"ext\"\n\n\
         [[route]]\nkey = \"GET /open\"\nmock = {{ body = \"open\" }}\n\n\
         [[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"https://idp.example\"\n\
         audience = [\"api\"]\njwks_uri = \"https://{idp}/keys\"\n\n\
         [[authorizer]]\nname = \"ext\"\ntype = \"request\"\nurl = \"https://{authz}/authorize\"\n\
         simple_responses = true\nidentity_sources = [\"$request.header.Authorization\"]\n"
    )
}

both_drivers! {
    fn https_authorizers_load_with_a_warning_and_answer_500(d) {
        no_roots();
        // something listening, so that a failure is the certificate's, not the connection's
        let origin = Origin::start(|_| Reply::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec()));
        let text = server_toml(d, 1, "") + &rest(origin.addr, origin.addr);
        let cfg = tollgate::config::from_str(&text).expect("no trust roots is no config error");
        let warned: Vec<_> = cfg.warnings.iter().map(|w| format!("{}: {}", w.key, w.message)).collect();
        for key in ["authorizer[0].jwks_uri", "authorizer[1].url"] {
            let w = warned.iter().find(|w| w.starts_with(key)).unwrap_or_else(|| panic!("{key}: {warned:?}"));
            assert!(w.contains("no system trust roots") && !w.contains("`ca`"), "{w}");
        }
        let gw = Gateway::from_toml(&text);
        let t = "authorization: Bearer a.b.c\r\n";
        for path in ["/jwt", "/req"] {
            let r = roundtrip(gw.addr, format!("GET {path} HTTP/1.1\r\nhost: api\r\n{t}\r\n").as_bytes());
            assert_eq!(r.status, 500, "{path}: {}", r.head);
            assert_eq!(r.text(), r#"{"message":"Internal Server Error"}"#);
        }
        let r = roundtrip(gw.addr, b"GET /open HTTP/1.1\r\nhost: api\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "open"));
        // no handshake got as far as a request
        assert!(origin.requests().is_empty());
    }
}
