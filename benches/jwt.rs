//! What a JWT authorizer costs a worker per request, without I/O: a token-cache MISS (the key
//! chosen by `kid` in the set, the signature verified, the claims decoded and checked) per
//! algorithm, and a cache HIT (a lookup of a ~800-byte token). Keys and tokens come from the
//! test kit (tests/common/jwt.rs; RSA keys from the `openssl` CLI). Fetching key sets and the
//! phase around them are not in here.

use std::hint::black_box;
use std::rc::Rc;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tollgate::auth::jwks::KeySet;
use tollgate::auth::jwt::{self, Rules};
use tollgate::auth::token_cache::TokenCache;
use tollgate::auth::{Identity, Principal};

#[path = "../tests/common/jwt.rs"]
mod kit;

const ISS: &str = "https://idp.example.com/realms/main";

/// Typical access-token claims: the registered ones, a scope list and a few custom claims.
fn claims() -> serde_json::Value {
    let mut c = kit::claims(ISS, "orders-api");
    c["exp"] = json!(kit::now() + 365 * 24 * 3600);
    c["client_id"] = json!("orders-web");
    c["email"] = json!("alice@example.com");
    c["groups"] = json!(["staff", "orders-admin"]);
    c["jti"] = json!("6f1c5d2e-0a4b-4e0b-9f3e-3b8d2a1c7e55");
    c
}

fn bench(c: &mut Criterion) {
    let audience = vec!["orders-api".to_string()];
    let rules = Rules {
        issuer: ISS,
        audience: &audience,
        leeway_s: 0,
    };
    let rsa = kit::rsa(2048);
    let cases = [
        (rsa.clone(), "RS256"),
        (rsa.clone(), "RS384"),
        (rsa.clone(), "RS512"),
        (rsa, "PS256"),
        (kit::p256(), "ES256"),
        (kit::p384(), "ES384"),
        (kit::ed25519(), "EdDSA"),
    ];
    // a set of four keys, as identity providers publish during a rotation: the token's
    // `kid` picks its own
    let others = [
        kit::p256().jwk(Some("old-1"), None),
        kit::ed25519().jwk(Some("old-2"), None),
    ];
    for (key, alg) in &cases {
        let mut jwks = others.to_vec();
        jwks.push(key.jwk(Some("current"), Some(alg)));
        let keys = KeySet::parse(kit::jwks(&jwks).as_bytes()).unwrap_or_default();
        let token = kit::mint(key, &json!({"alg": alg, "kid": "current"}), &claims());
        let now = kit::now();
        assert!(jwt::verify(&token, &keys, &rules, now).is_ok(), "{alg}");
        c.bench_function(&format!("jwt_verify_miss_{alg}"), |b| {
            b.iter(|| jwt::verify(black_box(&token), &keys, &rules, now))
        });
    }

    let cache = TokenCache::new(10_000, tollgate::config::auth::DEFAULT_TOKEN_CACHE_BYTES);
    let mut token = kit::mint(&kit::p256(), &json!({"kid": "current"}), &claims()).into_bytes();
    token.resize(800, b'A');
    for i in 0..1_000u32 {
        let mut other = token.clone();
        other[..4].copy_from_slice(&i.to_be_bytes());
        cache.insert(&other, principal(), u64::MAX);
    }
    cache.insert(&token, principal(), u64::MAX);
    c.bench_function("jwt_token_cache_hit_800b", |b| {
        b.iter(|| cache.get(black_box(&token), 1))
    });
}

fn principal() -> Rc<Principal> {
    Rc::new(Principal {
        authorizer: 0,
        id: "user-1".into(),
        identity: Identity::Jwt {
            claims: Default::default(),
            scopes: Vec::new(),
        },
        throttle: None,
    })
}

criterion_group!(benches, bench);
criterion_main!(benches);
