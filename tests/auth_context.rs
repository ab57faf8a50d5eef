//! What an authorizer tells the rest of the gateway, end to end on both drivers, with a JWT
//! authorizer (tokens minted by `common::jwt`, the key set served by an in-test identity
//! provider): the access log's `$context.authorizer.*` variables and the JSON line's
//! `principalId`, the refusal's words in `$context.authorizer.error`, the Lambda events'
//! `requestContext.authorizer` (a local function echoing its event), and `throttle_by =
//! "principal"` (a bucket per token subject, whatever the address).
//!
//! These need the JWT authorizer (branch i12-jwtrt) to run: before it is merged its config
//! is refused and every test here fails at startup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::jwt::{self, now, TestKey};
use common::lambda::*;
use common::*;
use serde_json::{json, Value};

const AUDIENCE: &str = "ctx-api";

/// An identity provider serving one key set at `/keys`.
struct Idp {
    origin: Origin,
    key: TestKey,
}

impl Idp {
    fn start() -> Idp {
        let key = jwt::p256();
        let doc = jwt::jwks(&[key.jwk(Some("k1"), Some("ES256"))]);
        let origin = Origin::start(move |r| {
            if r.target == "/keys" {
                Reply::Raw(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{doc}",
                        doc.len()
                    )
                    .into_bytes(),
                )
            } else {
                Reply::Raw(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec())
            }
        });
        Idp { origin, key }
    }

    fn issuer(&self) -> String {
        format!("http://{}/", self.origin.addr)
    }

    fn token(&self, sub: &str, extra: Value) -> String {
        let t = now();
        let mut claims = json!({
            "iss": self.issuer(), "aud": AUDIENCE, "sub": sub,
            "iat": t, "exp": t + 600, "scope": "read write",
        });
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        jwt::mint(&self.key, &json!({ "kid": "k1" }), &claims)
    }

    fn authorizer_toml(&self) -> String {
        format!(
            "[[authorizer]]\nname = \"users\"\ntype = \"jwt\"\nissuer = \"{}\"\naudience = [\"{AUDIENCE}\"]\njwks_uri = \"http://{}/keys\"\n\n",
            self.issuer(),
            self.origin.addr
        )
    }
}

/// `GET path` with a request id and, when given, the bearer token.
fn call(g: &Gateway, path: &str, rid: &str, token: Option<&str>) -> Response {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    roundtrip(
        g.addr,
        format!("GET {path} HTTP/1.1\r\nHost: api\r\nx-request-id: {rid}\r\n{auth}\r\n").as_bytes(),
    )
}

/// The line of `rid` in a custom-format log whose lines start with the request id and a `|`.
fn custom_line(path: &Path, rid: &str) -> String {
    let mut found = None;
    eventually(&format!("a log line for {rid}"), || {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        found = log
            .lines()
            .find(|l| l.starts_with(&format!("{rid}|")))
            .map(str::to_string);
        found.is_some()
    });
    found.unwrap()
}

both_drivers! {
    fn the_access_log_names_the_principal_and_the_refusal(d) {
        let idp = Idp::start();
        let log = log_path(&format!("auth-context-custom-{d}"));
        let fmt = "$context.requestId|$context.status|$context.authorizer.principalId|$context.authorizer.claims.email|$context.authorizer.claims.cognito:groups|$context.authorizer.claims.sub|$context.identity.userArn|$context.authorizer.error";
        let g = Gateway::start(d, 1, &format!(
            "[access_log]\npath = \"{}\"\nformat = \"{fmt}\"\nflush_ms = 1\n\n{}[[route]]\nkey = \"GET /me\"\nmock = {{ body = \"me\" }}\nauthorizer = \"users\"\n\n[[route]]\nkey = \"GET /open\"\nmock = {{ body = \"open\" }}\n",
            log.display(),
            idp.authorizer_toml()
        ));
        let token = idp.token("alice", json!({ "email": "alice@example.com", "cognito:groups": ["admin", "ops"] }));
        assert_eq!(call(&g, "/me", "ctx-1", Some(&token)).status, 200);
        assert_eq!(
            custom_line(&log, "ctx-1"),
            // (a claim that is no string is its JSON text, escaped like any logged text)
            "ctx-1|200|alice|alice@example.com|[\\\"admin\\\",\\\"ops\\\"]|alice|-|-"
        );
        // refused: no principal, the authorizer's words
        assert_eq!(call(&g, "/me", "ctx-2", None).status, 401);
        let line = custom_line(&log, "ctx-2");
        let (head, error) = line.rsplit_once('|').unwrap();
        assert_eq!(head, "ctx-2|401|-|-|-|-|-");
        assert_ne!(error, "-", "{line}");
        let expired = {
            let t = now();
            jwt::mint(&idp.key, &json!({ "kid": "k1" }), &json!({
                "iss": idp.issuer(), "aud": AUDIENCE, "sub": "alice", "iat": t - 7200, "exp": t - 3600,
            }))
        };
        assert_eq!(call(&g, "/me", "ctx-3", Some(&expired)).status, 401);
        let line = custom_line(&log, "ctx-3");
        assert!(!line.ends_with("|-"), "an expired token's refusal has words: {line}");
        // a route without an authorizer: nothing to say
        assert_eq!(call(&g, "/open", "ctx-4", Some(&token)).status, 200);
        assert_eq!(custom_line(&log, "ctx-4"), "ctx-4|200|-|-|-|-|-|-");
    }

    fn the_json_line_carries_the_principal_id(d) {
        let idp = Idp::start();
        let log = log_path(&format!("auth-context-json-{d}"));
        let g = Gateway::start(d, 1, &format!(
            "{}{}[[route]]\nkey = \"GET /me\"\nmock = {{ body = \"me\" }}\nauthorizer = \"users\"\n",
            access_log_toml(&log),
            idp.authorizer_toml()
        ));
        let token = idp.token("bob", json!({}));
        assert_eq!(call(&g, "/me", "json-1", Some(&token)).status, 200);
        assert_eq!(field(&log_line(&log, "json-1"), "principalId"), json!("bob"));
        assert_eq!(call(&g, "/me", "json-2", None).status, 401);
        assert_eq!(field(&log_line(&log, "json-2"), "principalId"), json!("-"));
    }

    fn throttle_by_principal_gives_each_subject_its_own_bucket(d) {
        let idp = Idp::start();
        let g = Gateway::start(d, 1, &format!(
            "{}[[route]]\nkey = \"GET /me\"\nmock = {{ body = \"me\" }}\nauthorizer = \"users\"\nthrottle = {{ rate = 0.001, burst = 2, throttle_by = \"principal\" }}\n",
            idp.authorizer_toml()
        ));
        let alice = idp.token("alice", json!({}));
        let alice2 = idp.token("alice", json!({ "jti": "another token, the same subject" }));
        let bob = idp.token("bob", json!({}));
        assert_eq!(call(&g, "/me", "t-1", Some(&alice)).status, 200);
        assert_eq!(call(&g, "/me", "t-2", Some(&alice2)).status, 200);
        // alice's bucket is empty, whichever of her tokens she sends
        assert_eq!(call(&g, "/me", "t-3", Some(&alice)).status, 429);
        assert_eq!(call(&g, "/me", "t-4", Some(&alice2)).status, 429);
        // bob, from the same address, has his own
        assert_eq!(call(&g, "/me", "t-5", Some(&bob)).status, 200);
        assert_eq!(call(&g, "/me", "t-6", Some(&bob)).status, 200);
        assert_eq!(call(&g, "/me", "t-7", Some(&bob)).status, 429);
        // refused requests spend nothing: the authorizer runs first
        assert_eq!(call(&g, "/me", "t-8", None).status, 401);
    }

    fn lambda_events_carry_the_jwt_claims_and_scopes(d) {
        let idp = Idp::start();
        let rec = Record::new(&format!("auth-context-{d}"));
        let g = Gateway::from_toml(&(server_toml(d, 1, "") + &idp.authorizer_toml()
            + &Func::new("echo", "echo").toml(&rec)
            + &route("GET /v2/me", "echo", "2.0") + "authorizer = \"users\"\n\n"
            + &route("GET /v1/me", "echo", "1.0") + "authorizer = \"users\"\n\n"
            + &route("GET /v2/open", "echo", "2.0")));
        let token = idp.token("carol", json!({ "email": "carol@example.com", "n": 7 }));
        let r = call(&g, "/v2/me", "ev-1", Some(&token));
        assert_eq!(r.status, 200, "{r:?}");
        let ev: Value = serde_json::from_slice(&r.body).unwrap();
        let a = &ev["requestContext"]["authorizer"]["jwt"];
        assert_eq!(a["claims"]["sub"], "carol", "{ev}");
        assert_eq!(a["claims"]["email"], "carol@example.com");
        // AWS renders every claim as a string
        assert_eq!(a["claims"]["n"], "7");
        assert_eq!(a["scopes"], json!(["read", "write"]));
        let r = call(&g, "/v1/me", "ev-2", Some(&token));
        assert_eq!(r.status, 200, "{r:?}");
        let ev: Value = serde_json::from_slice(&r.body).unwrap();
        let a = &ev["requestContext"]["authorizer"];
        assert_eq!(a["claims"]["sub"], "carol", "{ev}");
        assert_eq!(a["scopes"], json!(["read", "write"]));
        // no authorizer on the route: no authorizer in the event
        let r = call(&g, "/v2/open", "ev-3", None);
        assert_eq!(r.status, 200, "{r:?}");
        let ev: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(ev["requestContext"].get("authorizer").is_none(), "{ev}");
    }
}
