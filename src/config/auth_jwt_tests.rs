//! `type = "jwt"` authorizers: what compiles (defaults, hidden upstream, discovery URL) and
//! every refusal with its key and line.

use super::auth::{AuthorizerKind, IdentitySource, KeySource, DEFAULT_TOKEN_CACHE_ENTRIES};
use super::*;

const ROUTE: &str = "[[route]]\nkey = \"GET /x\"\nmock = {}\nauthorizer = \"users\"\n";

fn jwt(text: &str) -> (Config, auth::JwtAuthorizer) {
    let mut c = match from_str(&format!("{ROUTE}{text}")) {
        Ok(c) => c,
        Err(e) => panic!("refused: {e:?}\n{text}"),
    };
    let a = c.authorizers.remove(0);
    match a.kind {
        AuthorizerKind::Jwt(j) => (c, j),
        other => panic!("{other:?}"),
    }
}

/// `(line, key, message)` of every error; lines count from the authorizer text's first line
/// (the route above it takes 4).
fn errors(text: &str) -> Vec<(usize, String, String)> {
    match from_str(&format!("{ROUTE}{text}")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            e.0.into_iter()
                .map(|e| (e.line - 4, e.key, e.message))
                .collect()
        }
    }
}

#[test]
fn a_jwks_uri_authorizer_compiles_with_its_defaults_and_hidden_upstream() {
    let (c, j) = jwt(r#"
[[authorizer]]
name = "users"
type = "jwt"
issuer = "https://127.0.0.1:9443/"
audience = ["pets-api", "other"]
jwks_uri = "http://127.0.0.1:9/keys.json?v=2"
"#);
    assert_eq!(j.name, "users");
    assert_eq!(j.issuer, "https://127.0.0.1:9443/");
    assert_eq!(j.audience, vec!["pets-api", "other"]);
    assert_eq!(j.identity, IdentitySource::Header("authorization".into()));
    assert_eq!(j.leeway.as_secs(), 0);
    assert_eq!(j.refresh.as_secs(), 3_600);
    assert_eq!(j.cache_entries, DEFAULT_TOKEN_CACHE_ENTRIES);
    assert_eq!(j.cache_bytes, 16 * 1024 * 1024);
    let KeySource::Jwks(t) = &j.keys else {
        panic!("{:?}", j.keys)
    };
    assert_eq!(t.path, "/keys.json?v=2");
    assert_eq!(t.authority, "127.0.0.1:9");
    assert_eq!(c.upstreams[t.upstream].name, "jwks:users");
    assert_eq!(c.access.routes[0].auth.authorizer, Some(0));
}

#[test]
fn without_jwks_uri_keys_come_from_oidc_discovery_on_the_issuer() {
    // OpenID Connect Discovery 1.0 §4: a terminating "/" is removed before the suffix
    for (issuer, path) in [
        (
            "http://127.0.0.1:9/tenant/",
            "/tenant/.well-known/openid-configuration",
        ),
        (
            "http://127.0.0.1:9/tenant",
            "/tenant/.well-known/openid-configuration",
        ),
        ("http://127.0.0.1:9", "/.well-known/openid-configuration"),
    ] {
        let (c, j) = jwt(&format!(
            "[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"{issuer}\"\n\
             audience = [\"a\"]\nidentity_source = \"$request.querystring.access_token\"\n\
             leeway_s = 30\njwks_refresh_s = 60\ntoken_cache_entries = 0\n"
        ));
        let KeySource::Discovery(t) = &j.keys else {
            panic!("{:?}", j.keys)
        };
        assert_eq!(t.path, path, "{issuer}");
        assert_eq!(c.upstreams[t.upstream].name, "jwks:users");
        assert_eq!(j.identity, IdentitySource::Query("access_token".into()));
        assert_eq!(
            (j.leeway.as_secs(), j.refresh.as_secs(), j.cache_entries),
            (30, 60, 0)
        );
    }
}

#[test]
fn issuer_and_audience_are_required() {
    let e = errors("[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\n");
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        vec![(2, "authorizer[0].issuer"), (2, "authorizer[0].audience")],
        "{e:?}"
    );
    let e = errors(
        "[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"https://a.example/\"\n\
         audience = []\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1.as_str()), (5, "authorizer[0].audience"));
    assert!(e[0].2.contains("at least one"), "{e:?}");
}

#[test]
fn keys_of_request_and_iam_authorizers_are_refused_by_name_and_line() {
    let e = errors(
        r#"[[authorizer]]
name = "users"
type = "jwt"
issuer = "https://127.0.0.1/"
audience = ["a"]
function = "authz"
ttl_s = 300
identity_sources = ["$request.header.Authorization"]
region = "eu-west-1"
"#,
    );
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (6, "authorizer[0].function"),
            (7, "authorizer[0].ttl_s"),
            (8, "authorizer[0].identity_sources"),
            (9, "authorizer[0].region"),
        ],
        "{e:?}"
    );
    assert!(e[0].2.contains("a jwt authorizer has no function"), "{e:?}");
}

#[test]
fn urls_must_be_https_or_http_on_loopback_or_an_ip() {
    for (line, key, text, needle) in [
        (
            4,
            "authorizer[0].issuer",
            "issuer = \"http://auth.example.com/\"\n",
            "must be an https:// URL",
        ),
        (
            4,
            "authorizer[0].issuer",
            "issuer = \"ftp://127.0.0.1/\"\n",
            "must be an https:// URL",
        ),
        (
            4,
            "authorizer[0].issuer",
            "issuer = \"https://a.example/?tenant=1\"\n",
            "query or fragment",
        ),
        (
            5,
            "authorizer[0].jwks_uri",
            "issuer = \"https://127.0.0.1/\"\njwks_uri = \"http://idp.example/keys\"\n",
            "must be an https:// URL",
        ),
        (
            5,
            "authorizer[0].jwks_uri",
            "issuer = \"https://127.0.0.1/\"\njwks_uri = \"https://127.0.0.1/keys#frag\"\n",
            "fragment",
        ),
        (
            5,
            "authorizer[0].jwks_uri",
            "issuer = \"https://127.0.0.1/\"\njwks_uri = \"https://127.0.0.1:99999/keys\"\n",
            "port",
        ),
        (
            5,
            "authorizer[0].identity_source",
            "issuer = \"https://127.0.0.1/\"\nidentity_source = \"$context.identity.sourceIp\"\n",
            "$request.header.NAME or",
        ),
        (
            5,
            "authorizer[0].identity_source",
            "issuer = \"https://127.0.0.1/\"\nidentity_source = \"Authorization\"\n",
            "is not an identity source",
        ),
    ] {
        let text =
            format!("[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\n{text}audience = [\"a\"]\n");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{text}: {e:?}");
        assert_eq!((e[0].0, e[0].1.as_str()), (line, key), "{text}: {e:?}");
        assert!(e[0].2.contains(needle), "{text}: {e:?}");
    }
    // loopback names and IP literals may use http (test identity providers)
    for issuer in ["http://localhost:9/", "http://[::1]:9/", "http://10.1.2.3/"] {
        jwt(&format!(
            "[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"{issuer}\"\n\
             audience = [\"a\"]\n"
        ));
    }
}

#[test]
fn numeric_settings_outside_their_ranges_are_refused() {
    let e = errors(
        r#"[[authorizer]]
name = "users"
type = "jwt"
issuer = "https://127.0.0.1/"
audience = ["a"]
leeway_s = 3601
jwks_refresh_s = 9
token_cache_entries = 1000001
token_cache_bytes = 1073741825
"#,
    );
    let got: Vec<(usize, &str, &str)> = e
        .iter()
        .map(|(l, k, m)| (*l, k.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                6,
                "authorizer[0].leeway_s",
                "must be in 0..=3600 (got 3601)"
            ),
            (
                7,
                "authorizer[0].jwks_refresh_s",
                "must be in 10..=86400 (got 9)"
            ),
            (
                8,
                "authorizer[0].token_cache_entries",
                "must be in 0..=1000000 (got 1000001)"
            ),
            (
                9,
                "authorizer[0].token_cache_bytes",
                "must be in 0..=1073741824 (got 1073741825)"
            ),
        ],
        "{e:?}"
    );
}

#[test]
fn user_upstreams_may_not_take_the_jwks_prefix() {
    let e = errors(
        r#"[[authorizer]]
name = "users"
type = "jwt"
issuer = "https://127.0.0.1/"
audience = ["a"]

[[upstream]]
name = "jwks:users"
targets = ["127.0.0.1:9"]
"#,
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1.as_str()), (8, "upstream[0].name"), "{e:?}");
    assert!(e[0].2.contains("reserved for jwt authorizers"), "{e:?}");
}

#[test]
fn with_a_jwks_uri_the_issuer_is_any_non_empty_string() {
    // RFC 7519 §4.1.1: `iss` is a StringOrURI, compared verbatim; only discovery fetches it
    for issuer in [
        "http://issuer.test/",
        "my-issuer",
        "urn:example:idp",
        "https://a/?t=1",
    ] {
        let (_, j) = jwt(&format!(
            "[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"{issuer}\"\n\
             audience = [\"a\"]\njwks_uri = \"http://127.0.0.1:9/keys\"\n"
        ));
        assert_eq!(j.issuer, issuer);
    }
    let e = errors(
        "[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"\"\n\
         audience = [\"a\"]\njwks_uri = \"http://127.0.0.1:9/keys\"\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].0, e[0].1.as_str()),
        (4, "authorizer[0].issuer"),
        "{e:?}"
    );
    assert!(e[0].2.contains("must not be empty"), "{e:?}");
    // without jwks_uri the issuer is where discovery goes: still an https URL
    let e = errors(
        "[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"my-issuer\"\n\
         audience = [\"a\"]\n",
    );
    assert_eq!(
        (e[0].0, e[0].1.as_str()),
        (4, "authorizer[0].issuer"),
        "{e:?}"
    );
    assert!(e[0].2.contains("must be an https:// URL"), "{e:?}");
}

#[test]
fn an_unresolvable_jwks_host_warns_that_its_routes_answer_500() {
    let text = format!(
        "{ROUTE}[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"i\"\n\
         audience = [\"a\"]\njwks_uri = \"https://no-such-host.invalid/keys\"\n"
    );
    let c = match from_str(&text) {
        Ok(c) => c,
        Err(e) => panic!("{e:?}"),
    };
    let w: Vec<String> = c
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.key, w.message))
        .collect();
    assert!(
        w.iter().any(|m| m.contains("authorizer[0].jwks_uri")
            && m.contains("the authorizer's routes answer 500")
            && !m.contains("502")),
        "{w:?}"
    );
}
