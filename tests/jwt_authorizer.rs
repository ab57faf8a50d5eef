//! JWT authorizers end to end, on both drivers and real sockets: tokens minted here with keys
//! generated here (`common::jwt`: RSA by the openssl CLI, EC P-256 and Ed25519 by ring), a key set served by
//! an in-test identity provider (the recording origin: it counts fetches, changes its answer
//! and goes down), and the gateway in front of mock routes. Every refusal is checked against a
//! passing twin, so a check that did nothing would fail its test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// The keys and tokens of these tests: `common::jwt`'s, each key with its `kid`.
mod kit {
    use serde_json::{json, Value};

    use super::common::jwt::{self, TestKey};

    /// A signing key, its `kid` and its `alg`.
    pub struct Key {
        pub kid: String,
        pub alg: &'static str,
        key: TestKey,
    }

    impl Key {
        fn new(kid: &str, key: TestKey) -> Key {
            Key {
                kid: kid.into(),
                alg: key.default_alg(),
                key,
            }
        }

        /// The process's 2048-bit RSA key (RS256).
        pub fn rsa(kid: &str) -> Key {
            Key::new(kid, jwt::shared_rsa().clone())
        }

        pub fn es256(kid: &str) -> Key {
            Key::new(kid, jwt::p256())
        }

        pub fn ed25519(kid: &str) -> Key {
            Key::new(kid, jwt::ed25519())
        }

        pub fn es384(kid: &str) -> Key {
            Key::new(kid, jwt::p384())
        }

        /// The process's RSA key signing with `alg` (RS384, PS256...).
        pub fn rsa_as(kid: &str, alg: &'static str) -> Key {
            Key {
                kid: kid.into(),
                alg,
                key: jwt::shared_rsa().clone(),
            }
        }

        /// The public JWK with `kid` and `alg`.
        pub fn jwk(&self) -> Value {
            self.key.jwk(Some(&self.kid), Some(self.alg))
        }

        /// A token with exactly `header`, signed with this key's `alg`.
        pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
            jwt::mint_as(&self.key, self.alg, header, claims)
        }

        /// A token with the usual header (`alg`, `kid`, `typ`).
        pub fn token(&self, claims: &Value) -> String {
            jwt::mint(
                &self.key,
                &json!({ "kid": self.kid, "alg": self.alg }),
                claims,
            )
        }

        /// The RSA public key's DER (the HMAC secret of the key-confusion attack).
        pub fn public_bytes(&self) -> Vec<u8> {
            self.key.rsa_public_der()
        }
    }

    /// A JWKS document of `keys`.
    pub fn jwks(keys: &[&Key]) -> String {
        jwt::jwks(&keys.iter().map(|k| k.jwk()).collect::<Vec<_>>())
    }

    /// An HS256 token keyed with `secret`.
    pub fn hs256(kid: &str, secret: &[u8], claims: &Value) -> String {
        jwt::hmac(256, secret, Some(kid), claims)
    }

    /// `alg: none`.
    pub fn unsecured(kid: &str, claims: &Value) -> String {
        jwt::alg_none(Some(kid), claims)
    }

    /// `token` with its payload replaced (signature kept).
    pub fn tampered(token: &str, claims: &Value) -> String {
        jwt::tamper(token, claims)
    }
}

use kit::Key;

const AUDIENCE: &str = "pets-api";

use common::jwt::now;

/// What the in-test identity provider answers.
struct IdpState {
    jwks: String,
    /// The discovery document (`/.well-known/openid-configuration`).
    discovery: Option<String>,
    /// Answer 503 to everything.
    down: bool,
    /// Wait this long before answering the key set.
    delay: Duration,
}

/// An identity provider on a recording origin.
struct Idp {
    origin: Origin,
    state: Arc<Mutex<IdpState>>,
}

impl Idp {
    fn start(jwks: String) -> Idp {
        let state = Arc::new(Mutex::new(IdpState {
            jwks,
            discovery: None,
            down: false,
            delay: Duration::ZERO,
        }));
        let s = state.clone();
        let origin = Origin::start(move |r| {
            let st = s.lock().unwrap();
            let json = |body: &str| {
                Reply::Raw(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes(),
                )
            };
            if st.down {
                return Reply::Raw(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n".to_vec(),
                );
            }
            // the path, without the query
            match r.target.split('?').next().unwrap_or_default() {
                "/keys" if st.delay.is_zero() => json(&st.jwks),
                "/keys" => Reply::After(st.delay, Box::new(json(&st.jwks))),
                "/.well-known/openid-configuration" => match &st.discovery {
                    Some(d) => json(d),
                    None => {
                        Reply::Raw(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec())
                    }
                },
                _ => Reply::Raw(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec()),
            }
        });
        Idp { origin, state }
    }

    fn issuer(&self) -> String {
        format!("http://{}/", self.origin.addr)
    }

    /// Requests for `target` so far.
    fn count(&self, target: &str) -> usize {
        self.origin
            .requests()
            .iter()
            .filter(|r| r.target == target)
            .count()
    }

    fn set_jwks(&self, jwks: String) {
        self.state.lock().unwrap().jwks = jwks;
    }

    fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Claims this issuer's tokens carry by default: valid for 10 minutes.
    fn claims(&self, sub: &str, scope: &str) -> Value {
        let t = now();
        json!({"iss": self.issuer(), "aud": AUDIENCE, "sub": sub, "scope": scope,
            "iat": t, "exp": t + 600})
    }
}

/// The gateway: `/pets/{id}` needs scope `pets:read`, `/open` any valid token; `keys` is the
/// authorizer's key source lines.
fn gateway(driver: &str, idp_issuer: &str, keys: &str, extra: &str) -> Gateway {
    Gateway::start(driver, 1, &gateway_toml(idp_issuer, keys, extra))
}

/// The routes and authorizers of [`gateway`].
fn gateway_toml(idp_issuer: &str, keys: &str, extra: &str) -> String {
    format!(
        r#"
[[route]]
key = "GET /pets/{{id}}"
mock = {{ body = "pet" }}
authorizer = "users"
scopes = ["pets:read"]

[[route]]
key = "GET /open"
mock = {{ body = "open" }}
authorizer = "users"

[[authorizer]]
name = "users"
type = "jwt"
issuer = "{idp_issuer}"
audience = ["{AUDIENCE}", "other-api"]
{keys}
{extra}
"#
    )
}

/// `/q`: a token in the `access_token` query parameter.
fn query_toml(idp_issuer: &str, keys: &str) -> String {
    format!(
        r#"
[[route]]
key = "GET /q"
mock = {{ body = "q" }}
authorizer = "query"

[[authorizer]]
name = "query"
type = "jwt"
issuer = "{idp_issuer}"
audience = ["{AUDIENCE}"]
identity_source = "$request.querystring.access_token"
{keys}
"#
    )
}

fn jwks_gateway(driver: &str, idp: &Idp, extra: &str) -> Gateway {
    let keys = format!("jwks_uri = \"http://{}/keys\"", idp.origin.addr);
    gateway(driver, &idp.issuer(), &keys, extra)
}

/// `GET path` with `Authorization: Bearer token` when given.
fn call(addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    roundtrip(
        addr,
        format!("GET {path} HTTP/1.1\r\nhost: api\r\n{auth}\r\n").as_bytes(),
    )
}

fn assert_unauthorized(r: &Response, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.head);
    assert_eq!(r.text(), r#"{"message":"Unauthorized"}"#, "{what}");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{what}");
}

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A gateway like [`jwks_gateway`] writing an access log; `lines` reads it after `stop`.
fn logged_gateway(d: &str, idp: &Idp, jwks: &str, extra: &str) -> (Gateway, std::path::PathBuf) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = std::env::temp_dir().join(format!(
        "tollgate-jwtfix-{}-{d}-{n}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&log);
    let keys = format!("jwks_uri = \"http://{}/{jwks}\"", idp.origin.addr);
    let text = format!("[access_log]\npath = \"{}\"\n", log.display())
        + &gateway_toml(&idp.issuer(), &keys, extra);
    (Gateway::start(d, 1, &text), log)
}

/// The access log's lines, once the gateway stopped.
fn lines(gw: Gateway, log: &std::path::Path) -> Vec<String> {
    gw.stop();
    let text = std::fs::read_to_string(log).unwrap();
    let _ = std::fs::remove_file(log);
    text.lines().map(str::to_string).collect()
}

both_drivers! {
    fn rs256_es256_and_eddsa_tokens_pass_a_missing_token_is_401(d) {
        let (rsa, ec, ed) = (Key::rsa("r1"), Key::es256("e1"), Key::ed25519("d1"));
        let idp = Idp::start(kit::jwks(&[&rsa, &ec, &ed]));
        let keys = format!("jwks_uri = \"http://{}/keys\"", idp.origin.addr);
        let text = gateway_toml(&idp.issuer(), &keys, "") + &query_toml(&idp.issuer(), &keys);
        let gw = Gateway::start(d, 1, &text);
        for key in [&rsa, &ec, &ed] {
            let t = key.token(&idp.claims("alice", "pets:read"));
            let r = call(gw.addr, "/pets/1", Some(&t));
            assert_eq!((r.status, r.text().as_str()), (200, "pet"), "{}: {}", key.alg, r.head);
        }
        // the scheme is case-insensitive (RFC 9110 §11.1)
        let t = ec.token(&idp.claims("alice", "pets:read"));
        let r = roundtrip(
            gw.addr,
            format!("GET /open HTTP/1.1\r\nhost: api\r\nauthorization: bEaReR {t}\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.head);
        // the query identity source
        let r = call(gw.addr, &format!("/q?x=1&access_token={t}"), None);
        assert_eq!((r.status, r.text().as_str()), (200, "q"), "{}", r.head);
        assert_unauthorized(&call(gw.addr, "/q?x=1", Some(&t)), "no access_token parameter");
        // no token at all, and an empty or other-scheme one
        assert_unauthorized(&call(gw.addr, "/pets/1", None), "no token");
        let r = roundtrip(gw.addr, b"GET /open HTTP/1.1\r\nhost: api\r\nauthorization: Bearer \r\n\r\n");
        assert_unauthorized(&r, "empty bearer");
        let r = roundtrip(gw.addr, b"GET /open HTTP/1.1\r\nhost: api\r\nauthorization: Basic YTpi\r\n\r\n");
        assert_unauthorized(&r, "basic");
        // one fetch per authorizer (per worker) served all of it
        assert_eq!(idp.count("/keys"), 2);
    }

    fn invalid_tokens_are_refused_with_401(d) {
        let (rsa, ec) = (Key::rsa("r1"), Key::es256("e1"));
        let other = Key::es256("e1"); // same kid, another key
        let idp = Idp::start(kit::jwks(&[&rsa, &ec]));
        let gw = jwks_gateway(d, &idp, "");
        let good = idp.claims("alice", "pets:read");
        assert_eq!(call(gw.addr, "/open", Some(&ec.token(&good))).status, 200);
        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            c
        };
        let t = now();
        let cases: Vec<(&str, String)> = vec![
            ("wrong issuer", ec.token(&with("iss", json!("http://127.0.0.1:1/")))),
            ("wrong audience", ec.token(&with("aud", json!(["someone-else"])))),
            ("expired", ec.token(&with("exp", json!(t - 120)))),
            ("not yet valid", ec.token(&with("nbf", json!(t + 120)))),
            ("tampered", kit::tampered(&ec.token(&good), &with("sub", json!("mallory")))),
            ("signed by another key", other.token(&good)),
            ("alg none", kit::unsecured("e1", &good)),
            ("HS256 keyed with the RSA public key", kit::hs256("r1", &rsa.public_bytes(), &good)),
            (
                "unknown crit header",
                ec.sign_with_header(
                    &json!({"alg": "ES256", "kid": "e1", "crit": ["x-unknown"], "x-unknown": 1}),
                    &good,
                ),
            ),
            ("not a JWT", "abc.def".to_string()),
        ];
        for (what, token) in &cases {
            assert_unauthorized(&call(gw.addr, "/open", Some(token)), what);
        }
        // the audience may come as a list holding one of ours, or as client_id (as AWS)
        let r = call(gw.addr, "/open", Some(&ec.token(&with("aud", json!(["x", "other-api"])))));
        assert_eq!(r.status, 200, "{}", r.head);
    }

    fn a_token_without_the_route_scope_is_403(d) {
        let ec = Key::es256("e1");
        let idp = Idp::start(kit::jwks(&[&ec]));
        let gw = jwks_gateway(d, &idp, "");
        let t = ec.token(&idp.claims("alice", "pets:write orders:read"));
        let r = call(gw.addr, "/pets/1", Some(&t));
        assert_eq!(r.status, 403, "{}", r.head);
        assert_eq!(r.text(), r#"{"message":"Forbidden"}"#);
        // the same (now cached) token on a route needing no scope
        assert_eq!(call(gw.addr, "/open", Some(&t)).status, 200);
        // and the cached token is still checked against the scopes (a hit is no bypass)
        assert_eq!(call(gw.addr, "/pets/1", Some(&t)).status, 403);
        let t = ec.token(&idp.claims("alice", "orders:read pets:read"));
        assert_eq!(call(gw.addr, "/pets/1", Some(&t)).status, 200);
        // `scp` as a list (Okta, Azure AD)
        let mut c = idp.claims("bob", "");
        c.as_object_mut().unwrap().remove("scope");
        c["scp"] = json!(["pets:read"]);
        assert_eq!(call(gw.addr, "/pets/1", Some(&ec.token(&c))).status, 200);
    }

    fn rotation_refetches_on_a_new_kid_at_most_once_per_ten_seconds(d) {
        let (k1, k2, k3) = (Key::es256("k1"), Key::ed25519("k2"), Key::es256("k3"));
        let idp = Idp::start(kit::jwks(&[&k1]));
        let gw = jwks_gateway(d, &idp, "");
        assert_eq!(call(gw.addr, "/open", Some(&k1.token(&idp.claims("a", "")))).status, 200);
        assert_eq!(idp.count("/keys"), 1);
        // the IdP rotates k2 in: a token naming it refetches the set, and passes
        idp.set_jwks(kit::jwks(&[&k1, &k2]));
        assert_eq!(call(gw.addr, "/open", Some(&k2.token(&idp.claims("b", "")))).status, 200);
        assert_eq!(idp.count("/keys"), 2);
        // unknown kids within 10 s of that refetch do not fetch again
        for i in 0..3 {
            let r = call(gw.addr, "/open", Some(&k3.token(&idp.claims(&format!("c{i}"), ""))));
            assert_unauthorized(&r, "unknown kid");
        }
        assert_eq!(idp.count("/keys"), 2);
        // known kids keep passing meanwhile
        assert_eq!(call(gw.addr, "/open", Some(&k1.token(&idp.claims("d", "")))).status, 200);
        assert_eq!(idp.count("/keys"), 2);
    }

    fn verified_tokens_are_cached_until_they_expire(d) {
        let (k1, k2) = (Key::es256("k1"), Key::es256("k2"));
        let idp = Idp::start(kit::jwks(&[&k1]));
        let gw = jwks_gateway(d, &idp, "");
        let cached = k1.token(&idp.claims("alice", ""));
        assert_eq!(call(gw.addr, "/open", Some(&cached)).status, 200);
        // the IdP drops k1; a k2 token makes the worker fetch the set without it
        idp.set_jwks(kit::jwks(&[&k2]));
        assert_eq!(call(gw.addr, "/open", Some(&k2.token(&idp.claims("bob", "")))).status, 200);
        assert_eq!(idp.count("/keys"), 2);
        // the verified k1 token still passes from the cache: it is not verified again...
        assert_eq!(call(gw.addr, "/open", Some(&cached)).status, 200);
        // ...while a k1 token never seen before cannot be verified any more
        assert_unauthorized(&call(gw.addr, "/open", Some(&k1.token(&idp.claims("carol", "")))), "k1 gone");
        // a cached token is kept only until its expiry
        let mut c = idp.claims("dave", "");
        c["exp"] = json!(now() + 2);
        let short = k2.token(&c);
        assert_eq!(call(gw.addr, "/open", Some(&short)).status, 200);
        std::thread::sleep(Duration::from_millis(3_100));
        assert_unauthorized(&call(gw.addr, "/open", Some(&short)), "expired while cached");
    }

    fn the_last_good_key_set_serves_while_the_idp_is_down(d) {
        let (k1, k9) = (Key::rsa("k1"), Key::es256("k9"));
        let idp = Idp::start(kit::jwks(&[&k1]));
        let gw = jwks_gateway(d, &idp, "");
        assert_eq!(call(gw.addr, "/open", Some(&k1.token(&idp.claims("a", "")))).status, 200);
        idp.set_down(true);
        // an unknown kid makes the worker try the IdP, which fails: 401 for that token...
        assert_unauthorized(&call(gw.addr, "/open", Some(&k9.token(&idp.claims("b", "")))), "unknown kid, IdP down");
        assert_eq!(idp.count("/keys"), 2);
        // ...and new tokens of the known key still verify against the last good set
        for i in 0..3 {
            let r = call(gw.addr, "/open", Some(&k1.token(&idp.claims(&format!("c{i}"), ""))));
            assert_eq!(r.status, 200, "{}", r.head);
        }
    }

    fn no_key_set_at_all_is_500(d) {
        let ec = Key::es256("e1");
        // nothing listens where the keys should be
        let issuer = "http://127.0.0.1:9/";
        let keys = format!("jwks_uri = \"http://127.0.0.1:{}/keys\"", unephemeral_port());
        let gw = gateway(d, issuer, &keys, "");
        let mut c = json!({"iss": issuer, "aud": AUDIENCE, "sub": "a", "exp": now() + 600});
        for _ in 0..2 {
            let r = call(gw.addr, "/open", Some(&ec.token(&c)));
            assert_eq!(r.status, 500, "{}", r.head);
            assert_eq!(r.text(), r#"{"message":"Internal Server Error"}"#);
        }
        // a missing token is still the caller's fault: 401 before any key is needed
        assert_unauthorized(&call(gw.addr, "/open", None), "no token");
        drop(gw);
        // an IdP that answers 503 from the start: 500 too; once it is back (after the
        // retry pause), the same kind of token passes
        let idp = Idp::start(kit::jwks(&[&ec]));
        idp.set_down(true);
        let gw = jwks_gateway(d, &idp, "");
        c["iss"] = json!(idp.issuer());
        assert_eq!(call(gw.addr, "/open", Some(&ec.token(&c))).status, 500);
        assert!(idp.count("/keys") >= 1);
        idp.set_down(false);
        eventually("the IdP's key set to be fetched again", || {
            call(gw.addr, "/open", Some(&ec.token(&c))).status == 200
        });
    }

    fn concurrent_first_requests_share_one_fetch(d) {
        let ec = Key::es256("e1");
        let idp = Idp::start(kit::jwks(&[&ec]));
        idp.state.lock().unwrap().delay = Duration::from_millis(300);
        let gw = jwks_gateway(d, &idp, "");
        let addr = gw.addr;
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let t = ec.token(&idp.claims(&format!("u{i}"), ""));
                std::thread::spawn(move || call(addr, "/open", Some(&t)).status)
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 200);
        }
        assert_eq!(idp.count("/keys"), 1);
    }

    fn keys_are_refreshed_in_the_background(d) {
        let (k1, k2) = (Key::es256("k1"), Key::es256("k2"));
        let idp = Idp::start(kit::jwks(&[&k1]));
        let gw = jwks_gateway(d, &idp, "jwks_refresh_s = 10");
        assert_eq!(call(gw.addr, "/open", Some(&k1.token(&idp.claims("a", "")))).status, 200);
        assert_eq!(idp.count("/keys"), 1);
        idp.set_jwks(kit::jwks(&[&k1, &k2]));
        std::thread::sleep(Duration::from_millis(10_500));
        // a stale set still serves the request at once, and a refresh starts behind it
        assert_eq!(call(gw.addr, "/open", Some(&k1.token(&idp.claims("b", "")))).status, 200);
        eventually("the background refresh", || idp.count("/keys") == 2);
        // the refreshed set knows k2 without a refetch for an unknown kid
        assert_eq!(call(gw.addr, "/open", Some(&k2.token(&idp.claims("c", "")))).status, 200);
        assert_eq!(idp.count("/keys"), 2);
    }

    fn oidc_discovery_finds_the_key_set_on_the_issuers_origin(d) {
        let ec = Key::ed25519("d1");
        let idp = Idp::start(kit::jwks(&[&ec]));
        let doc = json!({"issuer": idp.issuer(), "jwks_uri": format!("http://{}/keys", idp.origin.addr)});
        idp.state.lock().unwrap().discovery = Some(doc.to_string());
        let gw = gateway(d, &idp.issuer(), "", "");
        let r = call(gw.addr, "/pets/7", Some(&ec.token(&idp.claims("a", "pets:read"))));
        assert_eq!((r.status, r.text().as_str()), (200, "pet"), "{}", r.head);
        assert_eq!(idp.count("/.well-known/openid-configuration"), 1);
        assert_eq!(idp.count("/keys"), 1);
        drop(gw);
        // a jwks_uri on another origin is not followed: no keys, 500
        let doc = json!({"issuer": idp.issuer(), "jwks_uri": "http://127.0.0.1:9/keys"});
        idp.state.lock().unwrap().discovery = Some(doc.to_string());
        let gw = gateway(d, &idp.issuer(), "", "");
        let r = call(gw.addr, "/open", Some(&ec.token(&idp.claims("a", ""))));
        assert_eq!(r.status, 500, "{}", r.head);
        assert_eq!(idp.count("/keys"), 1);
    }

    fn a_reload_keeps_the_key_set_of_an_unchanged_key_source(d) {
        let k1 = Key::es256("k1");
        let idp = Idp::start(kit::jwks(&[&k1]));
        let keys = format!("jwks_uri = \"http://{}/keys\"", idp.origin.addr);
        let gw = gateway(d, &idp.issuer(), &keys, "");
        assert_eq!(call(gw.addr, "/open", Some(&k1.token(&idp.claims("a", "")))).status, 200);
        assert_eq!(idp.count("/keys"), 1);
        // other settings change, the key source does not: the worker keeps its key set
        gw.write_config(&(server_toml(d, 1, "") + &gateway_toml(&idp.issuer(), &keys, "leeway_s = 5")));
        gw.reload().unwrap();
        assert_eq!(call(gw.addr, "/open", Some(&k1.token(&idp.claims("b", "")))).status, 200);
        assert_eq!(idp.origin.requests().len(), 1);
        // a new jwks_uri is fetched afresh
        let moved = format!("jwks_uri = \"http://{}/keys?v=2\"", idp.origin.addr);
        gw.write_config(&(server_toml(d, 1, "") + &gateway_toml(&idp.issuer(), &moved, "")));
        gw.reload().unwrap();
        assert_eq!(call(gw.addr, "/open", Some(&k1.token(&idp.claims("c", "")))).status, 200);
        assert_eq!(idp.count("/keys?v=2"), 1);
    }

    fn an_http2_reset_stops_the_wait_for_the_first_key_set(d) {
        // the IdP answers the first fetch after a second; a request whose client reset its
        // stream meanwhile stops waiting at once (nothing decided, nothing answered, so no
        // log line), while a later request waits for the set and passes. Without the reset
        // stopping the wait, the first request would be served once the set came, and
        // logged. (An HTTP/1 client's leaving is found only when the gateway reads or writes:
        // `Session::client_gone`.)
        use common::h2raw::H2;
        use common::h2wire::{flag, Block};
        let ec = Key::es256("e1");
        let idp = Idp::start(kit::jwks(&[&ec]));
        idp.state.lock().unwrap().delay = Duration::from_secs(1);
        let log = std::env::temp_dir().join(format!("tollgate-jwt-h2-{}-{d}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let keys = format!("jwks_uri = \"http://{}/keys\"", idp.origin.addr);
        let text = format!("[access_log]\npath = \"{}\"\n", log.display())
            + &gateway_toml(&idp.issuer(), &keys, "");
        let gw = Gateway::start_with(d, 1, common::h2client::H2C, &text);
        eventually("the key set prefetch", || idp.count("/keys") == 1);
        let t = ec.token(&idp.claims("a", ""));
        let mut c = H2::open(gw.addr);
        let bearer = format!("Bearer {t}");
        c.headers(1, &Block::request("GET", "/open").lit("authorization", &bearer), flag::END_STREAM);
        // a PING round trip: the server has read the HEADERS and started the request
        c.ping_barrier();
        c.rst(1, 0x8); // CANCEL (RFC 9113 §7)
        c.ping_barrier();
        // another client waits for the same fetch, and passes
        let r = call(gw.addr, "/open", Some(&t));
        assert_eq!((r.status, r.text().as_str()), (200, "open"), "{}", r.head);
        assert_eq!(idp.count("/keys"), 1);
        let l = lines(gw, &log);
        assert_eq!(l.len(), 1, "only the second request was answered: {l:?}");
        assert!(l[0].contains("\"protocol\":\"HTTP/1.1\""), "{}", l[0]);
    }

    fn tokens_without_sub_throttle_apart_by_jti_or_token(d) {
        // RFC 7519 makes `sub` optional (client-credentials tokens often lack it): with
        // throttle_by = "principal" each such token still gets a bucket of its own, not one
        // shared by every sub-less caller under the empty id
        let ec = Key::es256("e1");
        let idp = Idp::start(kit::jwks(&[&ec]));
        let text = format!(
            "[[route]]\nkey = \"GET /me\"\nmock = {{ body = \"me\" }}\nauthorizer = \"users\"\n\
             throttle = {{ rate = 0.001, burst = 1, throttle_by = \"principal\" }}\n\n\
             [[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"{}\"\n\
             audience = [\"{AUDIENCE}\"]\njwks_uri = \"http://{}/keys\"\n",
            idp.issuer(),
            idp.origin.addr
        );
        let gw = Gateway::start(d, 1, &text);
        let subless = |extra: Value| {
            let mut c = idp.claims("x", "");
            let o = c.as_object_mut().unwrap();
            o.remove("sub");
            for (k, v) in extra.as_object().unwrap() {
                o.insert(k.clone(), v.clone());
            }
            ec.token(&c)
        };
        // two tokens without jti: a bucket per token
        let (a, b) = (subless(json!({"n": 1})), subless(json!({"n": 2})));
        for t in [&a, &b] {
            assert_eq!(call(gw.addr, "/me", Some(t)).status, 200);
            assert_eq!(call(gw.addr, "/me", Some(t)).status, 429);
        }
        // with jti: the bucket follows the jti (two texts of one jti share it)
        let (j1, j1_again) = (subless(json!({"jti": "j1", "n": 1})), subless(json!({"jti": "j1", "n": 2})));
        let j2 = subless(json!({"jti": "j2"}));
        assert_eq!(call(gw.addr, "/me", Some(&j1)).status, 200);
        assert_eq!(call(gw.addr, "/me", Some(&j1_again)).status, 429);
        assert_eq!(call(gw.addr, "/me", Some(&j2)).status, 200);
        // a token with a sub throttles under it, as before
        let s = ec.token(&idp.claims("alice", ""));
        assert_eq!(call(gw.addr, "/me", Some(&s)).status, 200);
        assert_eq!(call(gw.addr, "/me", Some(&s)).status, 429);
    }

    fn key_sets_are_fetched_when_the_worker_starts(d) {
        let ec = Key::es256("e1");
        let idp = Idp::start(kit::jwks(&[&ec]));
        let gw = jwks_gateway(d, &idp, "");
        // no request yet: the worker fetched its key set on its own
        eventually("the key set prefetch", || idp.count("/keys") == 1);
        assert_eq!(call(gw.addr, "/open", Some(&ec.token(&idp.claims("a", "")))).status, 200);
        assert_eq!(idp.count("/keys"), 1);
    }

    fn refusals_say_why_in_the_access_log_never_in_the_body(d) {
        let ec = Key::es256("e1");
        let idp = Idp::start(kit::jwks(&[&ec]));
        let log = std::env::temp_dir().join(format!("tollgate-jwt-{}-{d}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let keys = format!("jwks_uri = \"http://{}/keys\"", idp.origin.addr);
        let text = format!("[access_log]\npath = \"{}\"\n", log.display())
            + &gateway_toml(&idp.issuer(), &keys, "");
        let gw = Gateway::start(d, 1, &text);
        let mut expired = idp.claims("a", "pets:read");
        expired["exp"] = json!(now() - 60);
        let cases = [
            ("/open", None, 401, "no token in the authorization header"),
            ("/open", Some(ec.token(&expired)), 401, "token expired"),
            ("/pets/1", Some(ec.token(&idp.claims("b", "other"))), 403, "none of the scopes"),
        ];
        for (path, token, status, _) in &cases {
            let r = call(gw.addr, path, token.as_deref());
            assert_eq!(r.status, *status, "{}", r.head);
            assert!(
                r.text() == r#"{"message":"Unauthorized"}"# || r.text() == r#"{"message":"Forbidden"}"#,
                "{}", r.text()
            );
        }
        gw.stop();
        let text = std::fs::read_to_string(&log).unwrap();
        let _ = std::fs::remove_file(&log);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), cases.len(), "{text}");
        for (line, (_, _, status, why)) in lines.iter().zip(&cases) {
            assert!(line.contains(&format!("\"status\":{status}")), "{line}");
            assert!(line.contains(why), "{why:?} not in {line}");
        }
    }

    fn a_set_of_only_refused_keys_installs_and_a_token_of_one_is_401_saying_why(d) {
        // before: no usable key made the fetch "fail", no set, 500 for every token
        let weak = common::jwt::rsa(1024);
        let idp = Idp::start(common::jwt::jwks(&[weak.jwk(Some("c"), None)]));
        let (gw, log) = logged_gateway(d, &idp, "keys", "");
        eventually("the key set prefetch", || idp.count("/keys") == 1);
        // ring cannot sign with 1024 bits: a 2048-bit key's token naming kid c
        let t = Key::rsa("c").token(&idp.claims("a", ""));
        assert_unauthorized(&call(gw.addr, "/open", Some(&t)), "kid of a refused key");
        // no refetch for a kid the set holds as refused
        assert_eq!(idp.count("/keys"), 1);
        let l = lines(gw, &log);
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(l[0].contains("\"status\":401"), "{}", l[0]);
        assert!(l[0].contains("key c refused: RSA key of 1024 bits, under 2048"), "{}", l[0]);
    }

    fn an_empty_key_set_revokes_the_last_good_one(d) {
        let k1 = Key::es256("k1");
        let idp = Idp::start(kit::jwks(&[&k1]));
        let gw = jwks_gateway(d, &idp, "");
        assert_eq!(call(gw.addr, "/open", Some(&k1.token(&idp.claims("a", "")))).status, 200);
        idp.set_jwks(r#"{"keys":[]}"#.to_string());
        // an unknown kid makes the worker fetch again: the empty set installs
        let k2 = Key::es256("k2");
        assert_unauthorized(&call(gw.addr, "/open", Some(&k2.token(&idp.claims("b", "")))), "k2");
        assert_eq!(idp.count("/keys"), 2);
        // so k1 is revoked: a new token of it no longer passes
        assert_unauthorized(&call(gw.addr, "/open", Some(&k1.token(&idp.claims("c", "")))), "revoked k1");
    }

    fn an_rsa_key_with_a_zero_padded_modulus_verifies(d) {
        let rsa = common::jwt::shared_rsa();
        let mut jwk = rsa.jwk(Some("pad"), Some("RS256"));
        let mut n = vec![0u8];
        n.extend_from_slice(&rsa.n);
        jwk["n"] = json!(common::jwt::b64(&n));
        let idp = Idp::start(common::jwt::jwks(&[jwk]));
        let gw = jwks_gateway(d, &idp, "");
        let r = call(gw.addr, "/open", Some(&Key::rsa("pad").token(&idp.claims("a", ""))));
        assert_eq!((r.status, r.text().as_str()), (200, "open"), "{}", r.head);
    }

    fn more_than_one_credential_is_401_and_never_reaches_the_origin(d) {
        let ec = Key::es256("e1");
        let idp = Idp::start(kit::jwks(&[&ec]));
        let origin = Origin::echo();
        let extra = format!(
            "\n[[upstream]]\nname = \"o\"\ntargets = [\"{}\"]\n\n[[route]]\nkey = \"GET /up\"\n\
             upstream = \"o\"\nauthorizer = \"users\"\n",
            origin.addr
        );
        let keys = format!("jwks_uri = \"http://{}/keys\"", idp.origin.addr);
        let text = gateway_toml(&idp.issuer(), &keys, &extra) + &query_toml(&idp.issuer(), &keys);
        let gw = Gateway::start(d, 1, &text);
        let good = ec.token(&idp.claims("a", ""));
        let unsigned = kit::unsecured("e1", &idp.claims("mallory", ""));
        let get = |fields: &str, target: &str| {
            roundtrip(gw.addr, format!("GET {target} HTTP/1.1\r\nhost: api\r\n{fields}\r\n").as_bytes())
        };
        // the twin: one good credential passes to the origin
        let r = get(&format!("authorization: Bearer {good}\r\n"), "/up");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(origin.requests().len(), 1);
        for fields in [
            format!("authorization: Bearer {good}\r\nauthorization: Bearer {unsigned}\r\n"),
            format!("authorization: Bearer {unsigned}\r\nAuthorization: Bearer {good}\r\n"),
            format!("authorization: Bearer {good}, Bearer {unsigned}\r\n"),
        ] {
            assert_unauthorized(&get(&fields, "/up"), &fields);
        }
        assert_eq!(origin.requests().len(), 1, "a refused request reached the origin");
        // the query parameter: once passes, twice is refused
        assert_eq!(get("", &format!("/q?access_token={good}")).status, 200);
        let r = get("", &format!("/q?access_token={good}&access_token={unsigned}"));
        assert_unauthorized(&r, "repeated access_token");
    }

    fn client_id_rsa_pss_sha384_sha512_and_es384_tokens_pass(d) {
        let keys = [
            Key::rsa_as("ps256", "PS256"),
            Key::rsa_as("rs384", "RS384"),
            Key::rsa_as("rs512", "RS512"),
            Key::es384("es384"),
        ];
        let idp = Idp::start(kit::jwks(&keys.iter().collect::<Vec<_>>()));
        let gw = jwks_gateway(d, &idp, "");
        for k in &keys {
            let r = call(gw.addr, "/open", Some(&k.token(&idp.claims(&k.kid, ""))));
            assert_eq!(r.status, 200, "{}: {}", k.kid, r.head);
        }
        // an access token without aud: client_id must be one of the audiences (as AWS)
        let mut c = idp.claims("svc", "");
        c.as_object_mut().unwrap().remove("aud");
        c["client_id"] = json!(AUDIENCE);
        let r = call(gw.addr, "/open", Some(&keys[0].token(&c)));
        assert_eq!(r.status, 200, "{}", r.head);
        c["client_id"] = json!("someone-else");
        assert_unauthorized(&call(gw.addr, "/open", Some(&keys[0].token(&c))), "foreign client_id");
    }

    fn leeway_admits_a_token_just_expired(d) {
        let ec = Key::es256("e1");
        let idp = Idp::start(kit::jwks(&[&ec]));
        let mut c = idp.claims("a", "");
        c["exp"] = json!(now() - 5);
        let strict = jwks_gateway(d, &idp, "");
        assert_unauthorized(&call(strict.addr, "/open", Some(&ec.token(&c))), "no leeway");
        drop(strict);
        let lenient = jwks_gateway(d, &idp, "leeway_s = 60");
        let r = call(lenient.addr, "/open", Some(&ec.token(&c)));
        assert_eq!(r.status, 200, "{}", r.head);
    }

    fn hmac_and_repeated_credentials_are_named_in_the_access_log(d) {
        let rsa = Key::rsa("r1");
        let idp = Idp::start(kit::jwks(&[&rsa]));
        let (gw, log) = logged_gateway(d, &idp, "keys", "");
        let good = idp.claims("a", "");
        let hs = kit::hs256("r1", &rsa.public_bytes(), &good);
        assert_unauthorized(&call(gw.addr, "/open", Some(&hs)), "HS256");
        let t = rsa.token(&good);
        let r = roundtrip(gw.addr, format!(
            "GET /open HTTP/1.1\r\nhost: api\r\nauthorization: Bearer {t}\r\nauthorization: Bearer {t}\r\n\r\n"
        ).as_bytes());
        assert_unauthorized(&r, "twice");
        let l = lines(gw, &log);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(l[0].contains("algorithm refused: HMAC with a public key"), "{}", l[0]);
        assert!(l[1].contains("more than one credential in the authorization header"), "{}", l[1]);
    }

    fn two_workers_share_one_fetch_at_start_on_an_unknown_kid_and_on_refresh(d) {
        let (k1, k2, k3) = (Key::es256("k1"), Key::es256("k2"), Key::es256("k3"));
        let idp = Idp::start(kit::jwks(&[&k1]));
        let origin = Origin::echo();
        let extra = format!(
            "jwks_refresh_s = 10\n\n[[upstream]]\nname = \"o\"\ntargets = [\"{}\"]\n\n\
             [[route]]\nkey = \"GET /up\"\nupstream = \"o\"\nauthorizer = \"users\"\n",
            origin.addr
        );
        let keys = format!("jwks_uri = \"http://{}/keys\"", idp.origin.addr);
        let gw = Gateway::start(d, 2, &gateway_toml(&idp.issuer(), &keys, &extra));
        // fresh connections (the kernel spreads them over both workers), distinct tokens (no
        // cache hits): both workers prefetched and verified, one fetch in all
        let burst = |key: &Key, tag: &str, n: usize| -> Vec<u16> {
            (0..n)
                .map(|i| call(gw.addr, "/up", Some(&key.token(&idp.claims(&format!("{tag}{i}"), "")))).status)
                .collect()
        };
        assert_eq!(burst(&k1, "a", 30), vec![200; 30]);
        // both workers served: each has its own pool, so two origin connections at least
        assert!(origin.connections() >= 2, "one worker served everything");
        assert_eq!(idp.count("/keys"), 1, "startup makes one fetch process-wide");
        let start = Instant::now();
        // a new kid on both workers: one refetch, the other worker takes the published set
        idp.set_jwks(kit::jwks(&[&k1, &k2]));
        assert_eq!(burst(&k2, "b", 30), vec![200; 30]);
        assert_eq!(idp.count("/keys"), 2, "an unknown kid makes one refetch process-wide");
        // another unknown kid within 10 s: no refetch on either worker
        assert!(burst(&k3, "c", 20).iter().all(|s| *s == 401));
        assert_eq!(idp.count("/keys"), 2);
        // the background refresh after jwks_refresh_s: one fetch, whichever worker sees it
        std::thread::sleep(Duration::from_secs(10).saturating_sub(start.elapsed()) + Duration::from_millis(500));
        assert_eq!(burst(&k1, "d", 20), vec![200; 20]);
        eventually("the background refresh", || idp.count("/keys") == 3);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(burst(&k2, "e", 20), vec![200; 20]);
        assert_eq!(idp.count("/keys"), 3, "a background refresh is one fetch process-wide");
    }
}
