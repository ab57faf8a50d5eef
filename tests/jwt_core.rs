//! The sans-IO JWT core through the public API, with tokens from the test kit
//! (tests/common/jwt.rs): a kit token verifies against the kit's JWKS, and a token-cache hit
//! (or miss) allocates nothing, counted by this binary's own allocator. No sockets and no
//! runtime are involved, so there is no driver to vary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::rc::Rc;

use common::jwt as kit;
use serde_json::json;
use tollgate::auth::jwks::KeySet;
use tollgate::auth::jwt::{self, JwtError, Rules};
use tollgate::auth::token_cache::TokenCache;
use tollgate::auth::{Identity, Principal};

thread_local! {
    /// Allocations made by this thread (the test harness runs tests on their own threads).
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn count() {
    // `try_with`: the slot may be gone while the thread is being torn down
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is passed on unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; counting touches only a thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's layout
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's layout
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `System` with `l` (every path above forwards to it)
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count();
        // SAFETY: `p` was allocated by `System` with `l`
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

const ISS: &str = "https://idp.example.com";

fn rules(aud: &[String]) -> Rules<'_> {
    Rules {
        issuer: ISS,
        audience: aud,
        leeway_s: 0,
    }
}

#[test]
fn kit_tokens_verify_against_the_kits_key_set() {
    let rsa = kit::shared_rsa();
    let ec = kit::p384();
    let doc = kit::jwks(&[rsa.jwk(Some("r1"), Some("RS256")), ec.jwk(Some("e1"), None)]);
    let keys = KeySet::parse(doc.as_bytes()).unwrap();
    assert_eq!(keys.len(), 2);
    let aud = vec!["client-a".to_string()];
    let claims = kit::claims(ISS, "client-a");
    let t = kit::mint(rsa, &json!({"kid": "r1"}), &claims);
    let v = jwt::verify(&t, &keys, &rules(&aud), kit::now()).unwrap();
    assert_eq!(&*v.subject, "user-1");
    let t = kit::mint(&ec, &json!({"kid": "e1"}), &claims);
    jwt::verify(&t, &keys, &rules(&aud), kit::now()).unwrap();
    // the kit's bad tokens are refused, each for its own reason
    let now = kit::now();
    let none = kit::alg_none(Some("r1"), &claims);
    assert_eq!(
        jwt::verify(&none, &keys, &rules(&aud), now).unwrap_err(),
        JwtError::Algorithm("alg none")
    );
    let hs = kit::hmac(256, &rsa.rsa_public_der(), Some("r1"), &claims);
    assert!(matches!(
        jwt::verify(&hs, &keys, &rules(&aud), now),
        Err(JwtError::Algorithm(_))
    ));
    let crit = kit::with_crit(rsa, Some("r1"), &["x"], &claims);
    assert_eq!(
        jwt::verify(&crit, &keys, &rules(&aud), now).unwrap_err(),
        JwtError::Crit("x".into())
    );
    let t = kit::mint(rsa, &json!({"kid": "r1"}), &claims);
    let tampered = kit::tamper(&t, &kit::claims(ISS, "client-b"));
    assert_eq!(
        jwt::verify(&tampered, &keys, &rules(&aud), now).unwrap_err(),
        JwtError::Signature
    );
}

#[test]
fn a_token_cache_hit_allocates_nothing() {
    let cache = TokenCache::new(1_000, usize::MAX);
    // ~800-byte tokens, as a typical access token with a few custom claims
    let tokens: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let mut t = format!("eyJhbGciOiJSUzI1NiIsImtpZCI6InIxIn0.{i:04}.").into_bytes();
            t.resize(800, b'x');
            t
        })
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        let p = Rc::new(Principal {
            authorizer: 0,
            id: format!("user-{i}").into(),
            identity: Identity::Jwt {
                claims: Default::default(),
                scopes: Vec::new(),
            },
            throttle: None,
        });
        cache.insert(t, p, u64::MAX);
    }
    let miss = vec![b'y'; 800];
    let before = allocs();
    let mut hits = 0;
    for _ in 0..10 {
        for t in &tokens {
            hits += usize::from(cache.get(t, 1).is_some());
        }
        assert!(cache.get(&miss, 1).is_none());
    }
    let after = allocs();
    assert_eq!(hits, 1_000);
    assert_eq!(after - before, 0, "cache lookups allocated");
    // the counter does count (this check would otherwise pass vacuously)
    let v = std::hint::black_box(vec![1u8; 16]);
    assert!(allocs() > after, "{}", v.len());
}
