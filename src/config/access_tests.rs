//! `[cors]`, IP rules, trusted proxies, a route's `cors` / `mtls` / `allow_subjects` and the
//! admin token, compiled: what each turns into, and every refusal with its key and line.

use super::access::{parse_origin, Cidr, OriginPattern};
use super::check_tests::{errors, keys_and_lines};
use super::*;

fn ok(text: &str) -> Config {
    from_str(text).unwrap_or_else(|e| panic!("{}\n{text}", e.render("t")))
}

const ROUTE: &str = "[[route]]\nkey = \"GET /x\"\nmock = {}\n";

#[test]
fn cors_compiles_normalised() {
    let text = format!(
        r#"[cors]
allow_origins = ["https://App.Example.com", "https://*.example.org:8443"]
allow_methods = ["get", "POST"]
allow_headers = ["Authorization", "content-type"]
expose_headers = ["X-Request-Id", "x-b"]
max_age = 600
allow_credentials = true
{ROUTE}"#
    );
    let c = ok(&text);
    assert_eq!(c.access.cors, Some(0));
    let p = &c.access.cors_policies[0];
    assert_eq!(
        p.allow_origins,
        [
            OriginPattern::Exact("https://app.example.com".into()),
            OriginPattern::Wildcard {
                prefix: "https://".into(),
                suffix: ".example.org:8443".into()
            }
        ]
    );
    assert_eq!(p.allow_methods, ["GET", "POST"]);
    assert_eq!(p.allow_headers, ["authorization", "content-type"]);
    assert_eq!(p.expose_headers.as_deref(), Some("x-request-id, x-b"));
    assert_eq!(p.max_age, Some(600));
    assert!(p.allow_credentials);
    assert_eq!(c.access.routes[0].cors, Some(0), "routes inherit [cors]");
}

#[test]
fn route_cors_false_and_override() {
    let text = r#"[cors]
allow_origins = ["*"]
[[route]]
key = "GET /a"
mock = {}
cors = false
[[route]]
key = "GET /b"
mock = {}
cors = { allow_origins = ["https://b.example"], allow_methods = ["*"] }
[[route]]
key = "GET /c"
mock = {}
"#;
    let c = ok(text);
    let r: Vec<Option<usize>> = c.access.routes.iter().map(|r| r.cors).collect();
    assert_eq!(r, [None, Some(1), Some(0)]);
    assert!(c.access.cors_policies[1].any_method);
    assert!(c.access.cors_policies[1].allow_methods.is_empty());
}

#[test]
fn star_origins_with_credentials_are_refused() {
    let text = r#"[cors]
allow_origins = ["*"]
allow_methods = ["*"]
allow_headers = ["*"]
expose_headers = ["*"]
allow_credentials = true
[[route]]
key = "GET /x"
mock = {}
cors = { allow_origins = ["*"], allow_credentials = true }
"#;
    let e = errors(text);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "cors.allow_origins[0]"),
            (10, "route[0].cors.allow_origins[0]"),
        ],
        "{e:?}"
    );
    assert!(e[0].2.contains("allow_credentials"), "{e:?}");
    // `*` methods, headers and exposed headers with credentials are accepted (AWS refuses
    // only `*` origins), and so are scheme wildcards
    let c = ok(&format!(
        "[cors]\nallow_origins = [\"https://*\", \"http://*\"]\nallow_methods = [\"*\"]\n\
         allow_headers = [\"*\"]\nexpose_headers = [\"*\"]\nallow_credentials = true\n{ROUTE}"
    ));
    let p = &c.access.cors_policies[0];
    assert!(p.any_method && p.any_header && p.allow_credentials);
    assert_eq!(
        p.allow_origins,
        [
            OriginPattern::Scheme("https://".into()),
            OriginPattern::Scheme("http://".into())
        ]
    );
    // without credentials `*` is fine
    ok(&format!(
        "[cors]\nallow_origins = [\"*\"]\nallow_methods = [\"*\"]\n{ROUTE}"
    ));
}

#[test]
fn malformed_cors_values_are_refused() {
    let text = format!(
        r#"[cors]
allow_origins = ["https://a.example/", "app.example.com", "https://a.*.example", "https://a.example:99999"]
allow_methods = ["GE T"]
allow_headers = ["x:y"]
max_age = 86401
{ROUTE}"#
    );
    let got = keys_and_lines(&text);
    assert_eq!(
        got,
        [
            (2, "cors.allow_origins[0]".to_string()),
            (2, "cors.allow_origins[1]".to_string()),
            (2, "cors.allow_origins[2]".to_string()),
            (2, "cors.allow_origins[3]".to_string()),
            (3, "cors.allow_methods[0]".to_string()),
            (4, "cors.allow_headers[0]".to_string()),
            (5, "cors.max_age".to_string()),
        ]
    );
}

#[test]
fn origin_patterns() {
    let w = parse_origin("https://*.example.com").unwrap();
    assert!(w.matches(b"https://app.example.com"));
    assert!(w.matches(b"HTTPS://a.b.Example.com"));
    assert!(!w.matches(b"https://example.com"));
    assert!(!w.matches(b"http://app.example.com"));
    assert!(!w.matches(b"https://app.example.com:8443"));
    assert!(!w.matches(b"https://evil.com/.example.com"));
    let e = parse_origin("http://[::1]:8080").unwrap();
    assert!(e.matches(b"http://[::1]:8080"));
    assert!(!e.matches(b"http://[::1]:8081"));
    let s = parse_origin("HTTPS://*").unwrap();
    assert!(s.matches(b"https://anything.example"));
    assert!(s.matches(b"https://a.example:8443"));
    assert!(s.matches(b"https://[::1]:8443"));
    assert!(!s.matches(b"http://a.example"));
    assert!(!s.matches(b"https://"));
    assert!(!s.matches(b"https://a.example/path"));
    assert!(!s.matches(b"https://u@a.example"));
    assert!(parse_origin("https://*:8443").is_err());
    assert!(parse_origin("null").is_err());
    assert!(parse_origin("https://u@a.example").is_err());
    assert!(parse_origin("https://a.example?x").is_err());
}

#[test]
fn ip_rules_and_trusted_proxies_compile_and_refuse_naming_the_entry() {
    let text = r#"[server]
trusted_proxies = ["10.0.0.0/8", "::1"]
allow_ips = ["192.0.2.0/24"]
deny_ips = ["192.0.2.7"]
[[route]]
key = "GET /x"
mock = {}
allow_ips = ["2001:db8::/32"]
deny_ips = ["127.0.0.1"]
"#;
    let c = ok(text);
    assert_eq!(c.access.trusted_proxies.len(), 2);
    assert_eq!(c.access.ip.allow, [Cidr::parse("192.0.2.0/24").unwrap()]);
    assert_eq!(c.access.ip.deny, [Cidr::parse("192.0.2.7/32").unwrap()]);
    assert_eq!(
        c.access.routes[0].ip.deny,
        [Cidr::parse("127.0.0.1").unwrap()]
    );
    let bad = r#"[server]
trusted_proxies = ["10.0.0.1/8"]
allow_ips = ["192.0.2.0/24", "nope"]
deny_ips = ["1.2.3.4/40"]
[[route]]
key = "GET /x"
mock = {}
allow_ips = ["2001:db8::/200"]
deny_ips = ["127.0.0.1", ""]
"#;
    let e = errors(bad);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "server.trusted_proxies[0]"),
            (3, "server.allow_ips[1]"),
            (4, "server.deny_ips[0]"),
            (8, "route[0].allow_ips[0]"),
            (9, "route[0].deny_ips[1]"),
        ],
        "{e:?}"
    );
    assert!(e[0].2.contains("did you mean 10.0.0.0/8"), "{e:?}");
}

#[test]
fn mtls_needs_a_client_ca_and_allow_subjects_needs_mtls() {
    let text = r#"[[route]]
key = "GET /a"
mock = {}
mtls = true
[[route]]
key = "GET /b"
mock = {}
allow_subjects = ["CN=alice"]
[[route]]
key = "GET /c"
mock = {}
mtls = false
allow_subjects = [""]
[[route]]
key = "GET /d"
mock = {}
mtls = true
allow_subjects = ["CN=alice", "CN=admin,*", "CN=a\\"]
"#;
    let e = errors(text);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        [
            (4, "route[0].mtls"),
            (8, "route[1].allow_subjects"),
            (13, "route[2].allow_subjects"),
            (13, "route[2].allow_subjects[0]"),
            (17, "route[3].mtls"),
            (18, "route[3].allow_subjects[1]"),
            (18, "route[3].allow_subjects[2]"),
        ],
        "{e:?}"
    );
    assert!(e[0].2.contains("client_ca"), "{e:?}");
    assert!(e[1].2.contains("mtls = true"), "{e:?}");
    // `*` is a wildcard inside a value only: a bare `*` is no attribute
    assert!(e[5].2.contains("TYPE=VALUE"), "{e:?}");
}

#[test]
fn admin_token() {
    let hash = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
    let c = ok(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_sha256 = \"{hash}\"\nmetrics_public = true\n{ROUTE}"
    ));
    let t = c.access.admin.token_sha256.expect("a token");
    assert_eq!(t[0], 0x9f);
    assert_eq!(t[31], 0x08);
    assert!(c.access.admin.metrics_public);
    let none = ok(ROUTE);
    assert_eq!(none.access.admin.token_sha256, None);
    for bad in ["abc", &hash[..63], &format!("{}g", &hash[..63])] {
        let text = format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken_sha256 = \"{bad}\"\n{ROUTE}");
        assert_eq!(
            keys_and_lines(&text),
            [(3, "admin.token_sha256".to_string())],
            "{bad}"
        );
    }
}

#[test]
fn the_effective_config_shows_the_access_settings_and_reads_back_the_same() {
    let text = r#"[server]
listen = ["127.0.0.1:0"]
trusted_proxies = ["10.0.0.0/8"]
deny_ips = ["192.0.2.7"]
[cors]
allow_origins = ["https://app.example.com"]
allow_credentials = true
max_age = 60
[[route]]
key = "GET /a"
mock = {}
cors = false
allow_ips = ["::1"]
[[route]]
key = "GET /b"
mock = {}
cors = { allow_origins = ["*"], allow_headers = ["x-a"] }
"#;
    let rendered = effective::render(text, &[]);
    assert!(rendered.contains("[cors]"), "{rendered}");
    assert!(rendered.contains("cors = false"), "{rendered}");
    let first = ok(text);
    let again = ok(&rendered);
    assert_eq!(first.access.cors_policies, again.access.cors_policies);
    assert_eq!(first.access.routes, again.access.routes);
    assert_eq!(first.access.ip, again.access.ip);
    assert_eq!(first.access.trusted_proxies, again.access.trusted_proxies);
}

#[test]
fn cors_true_needs_a_global_policy() {
    let text = "[[route]]\nkey = \"GET /a\"\nmock = {}\ncors = true\n";
    let e = errors(text);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(got, [(4, "route[0].cors")], "{e:?}");
    assert!(e[0].2.contains("[cors]"), "{e:?}");
    // with a [cors] table it is that policy
    let c = ok("[cors]\nallow_origins = [\"https://a.example\"]\n[[route]]\nkey = \"GET /a\"\nmock = {}\ncors = true\n");
    assert_eq!(c.access.routes[0].cors, Some(0));
}
