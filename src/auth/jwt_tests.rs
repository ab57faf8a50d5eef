//! `jwt::verify` against real keys and tokens from the test kit (tests/common/jwt.rs, included
//! here so the library's tests and the integration tests mint tokens the same way).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};

use super::*;

#[path = "../../tests/common/jwt.rs"]
pub(crate) mod kit;

const ISS: &str = "https://issuer.example.com";

fn aud() -> Vec<String> {
    vec!["api-1".to_string(), "api-2".to_string()]
}

fn set(jwks: &[Value]) -> KeySet {
    KeySet::parse(kit::jwks(jwks).as_bytes()).unwrap()
}

fn check(token: &str, keys: &KeySet, leeway_s: u64, now: u64) -> Result<Verified, JwtError> {
    let audience = aud();
    let rules = Rules {
        issuer: ISS,
        audience: &audience,
        leeway_s,
    };
    verify(token, keys, &rules, now)
}

fn good(claims: &Value) -> (kit::TestKey, KeySet, String) {
    let key = kit::p256();
    let keys = set(&[key.jwk(Some("k1"), Some("ES256"))]);
    let token = kit::mint(&key, &json!({"kid": "k1"}), claims);
    (key, keys, token)
}

fn claims() -> Value {
    kit::claims(ISS, "api-1")
}

#[test]
fn every_algorithm_verifies() {
    let rsa = kit::shared_rsa();
    let cases: Vec<(kit::TestKey, &str)> = vec![
        (rsa.clone(), "RS256"),
        (rsa.clone(), "RS384"),
        (rsa.clone(), "RS512"),
        (rsa.clone(), "PS256"),
        (rsa.clone(), "PS384"),
        (rsa.clone(), "PS512"),
        (kit::p256(), "ES256"),
        (kit::p384(), "ES384"),
        (kit::ed25519(), "EdDSA"),
    ];
    for (key, alg) in cases {
        // with the JWK's alg and kid
        let keys = set(&[key.jwk(Some("k"), Some(alg))]);
        let token = kit::mint(&key, &json!({"alg": alg, "kid": "k"}), &claims());
        let v = check(&token, &keys, 0, kit::now()).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(&*v.subject, "user-1");
        assert_eq!(v.scopes, vec![Box::from("read"), Box::from("write")]);
        // without either: the key is found by its type
        let keys = set(&[key.jwk(None, None)]);
        let token = kit::mint(&key, &json!({"alg": alg}), &claims());
        check(&token, &keys, 0, kit::now()).unwrap_or_else(|e| panic!("{alg} no kid: {e}"));
    }
}

#[test]
fn a_3072_bit_rsa_key_verifies() {
    let key = kit::rsa(3072);
    let keys = set(&[key.jwk(Some("big"), Some("RS256"))]);
    let token = kit::mint(&key, &json!({"kid": "big"}), &claims());
    check(&token, &keys, 0, kit::now()).unwrap();
}

#[test]
fn a_tampered_payload_or_another_keys_signature_fails() {
    let (_, keys, token) = good(&claims());
    let mut c = claims();
    c["sub"] = json!("admin");
    assert_eq!(
        check(&kit::tamper(&token, &c), &keys, 0, kit::now()).unwrap_err(),
        JwtError::Signature
    );
    // same kid, another key
    let other = kit::p256();
    let forged = kit::mint(&other, &json!({"kid": "k1"}), &claims());
    assert_eq!(
        check(&forged, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Signature
    );
    // no kid: every fitting key is tried, none verifies
    let forged = kit::mint(&other, &json!({}), &claims());
    assert_eq!(
        check(&forged, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Signature
    );
    // a flipped bit in the signature
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[3] ^= 1;
    let flipped = format!("{head}.{}", kit::b64(&raw));
    assert_eq!(
        check(&flipped, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Signature
    );
}

#[test]
fn kid_selects_the_key_and_an_unknown_kid_is_reported() {
    let a = kit::p256();
    let b = kit::ed25519();
    let keys = set(&[a.jwk(Some("a"), None), b.jwk(Some("b"), None)]);
    let tb = kit::mint(&b, &json!({"kid": "b"}), &claims());
    check(&tb, &keys, 0, kit::now()).unwrap();
    let ta = kit::mint(&a, &json!({"kid": "a"}), &claims());
    check(&ta, &keys, 0, kit::now()).unwrap();
    // kid a, signed by a but claiming kid b: b's key does not fit ES256
    let lie = kit::mint(&a, &json!({"kid": "b"}), &claims());
    assert!(matches!(
        check(&lie, &keys, 0, kit::now()),
        Err(JwtError::Algorithm(_))
    ));
    let unknown = kit::mint(&a, &json!({"kid": "rotated"}), &claims());
    assert_eq!(
        check(&unknown, &keys, 0, kit::now()).unwrap_err(),
        JwtError::UnknownKid("rotated".into())
    );
    // a kid is looked up exactly (case-sensitive, RFC 7515 §4.1.4)
    let upper = kit::mint(&a, &json!({"kid": "A"}), &claims());
    assert_eq!(
        check(&upper, &keys, 0, kit::now()).unwrap_err(),
        JwtError::UnknownKid("A".into())
    );
}

#[test]
fn alg_none_and_hmac_are_refused() {
    let rsa = kit::shared_rsa();
    let keys = set(&[rsa.jwk(Some("r"), None)]);
    let none = kit::alg_none(Some("r"), &claims());
    assert_eq!(
        check(&none, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Algorithm("alg none")
    );
    // alg none with a (meaningless) signature part: refused for its alg all the same
    let none_sig = format!("{none}AAAA");
    assert_eq!(
        check(&none_sig, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Algorithm("alg none")
    );
    for bits in [256, 384, 512] {
        let confused = kit::hmac(bits, &rsa.rsa_public_der(), Some("r"), &claims());
        assert_eq!(
            check(&confused, &keys, 0, kit::now()).unwrap_err(),
            JwtError::Algorithm("HMAC with a public key")
        );
    }
    let unknown = kit::mint_as(rsa, "RS256", &json!({"alg": "RS1", "kid": "r"}), &claims());
    assert_eq!(
        check(&unknown, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Algorithm("unsupported alg")
    );
}

#[test]
fn the_alg_must_fit_the_key_type_and_the_jwks_alg() {
    let rsa = kit::shared_rsa();
    let ec = kit::p256();
    // an RSA key and an ES256 header (signed with an EC key): refused before any signature
    let keys = set(&[rsa.jwk(Some("r"), None)]);
    let t = kit::mint_as(
        &ec,
        "ES256",
        &json!({"alg": "ES256", "kid": "r"}),
        &claims(),
    );
    assert_eq!(
        check(&t, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Algorithm("alg does not fit the key")
    );
    // without a kid, no key fits
    let t = kit::mint_as(&ec, "ES256", &json!({"alg": "ES256"}), &claims());
    assert!(matches!(
        check(&t, &keys, 0, kit::now()),
        Err(JwtError::Algorithm(_))
    ));
    // the JWK says RS256: a PS256 token from the very same key is refused
    let keys = set(&[rsa.jwk(Some("r"), Some("RS256"))]);
    let t = kit::mint(rsa, &json!({"alg": "PS256", "kid": "r"}), &claims());
    assert_eq!(
        check(&t, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Algorithm("alg does not fit the key")
    );
    let t = kit::mint(rsa, &json!({"alg": "RS256", "kid": "r"}), &claims());
    check(&t, &keys, 0, kit::now()).unwrap();
    // a P-384 key does not verify ES256
    let p384 = kit::p384();
    let keys = set(&[p384.jwk(Some("p"), None)]);
    let t = kit::mint_as(
        &ec,
        "ES256",
        &json!({"alg": "ES256", "kid": "p"}),
        &claims(),
    );
    assert!(matches!(
        check(&t, &keys, 0, kit::now()),
        Err(JwtError::Algorithm(_))
    ));
}

#[test]
fn crit_and_unencoded_payloads_are_refused() {
    let (key, keys, _) = good(&claims());
    let t = kit::with_crit(&key, Some("k1"), &["exp"], &claims());
    assert_eq!(
        check(&t, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Crit("exp".into())
    );
    let t = kit::with_crit(&key, Some("k1"), &["b64", "x-custom"], &claims());
    assert_eq!(
        check(&t, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Crit("b64, x-custom".into())
    );
    // an empty or malformed crit is still a crit
    let t = kit::mint(&key, &json!({"kid": "k1", "crit": []}), &claims());
    assert!(matches!(
        check(&t, &keys, 0, kit::now()),
        Err(JwtError::Crit(_))
    ));
    let t = kit::mint(&key, &json!({"kid": "k1", "b64": false}), &claims());
    assert!(matches!(
        check(&t, &keys, 0, kit::now()),
        Err(JwtError::Malformed(_))
    ));
    let t = kit::mint(&key, &json!({"kid": "k1", "b64": true}), &claims());
    check(&t, &keys, 0, kit::now()).unwrap();
}

#[test]
fn malformed_tokens_are_refused() {
    let (key, keys, token) = good(&claims());
    let now = kit::now();
    let bad = |t: &str| check(t, &keys, 0, now).unwrap_err();
    assert!(matches!(bad(""), JwtError::Malformed(_)));
    assert!(matches!(bad("a.b"), JwtError::Malformed(_)));
    assert!(matches!(
        bad(&format!("{token}.x.y")),
        JwtError::Malformed(_)
    ));
    // padding and whitespace are not base64url (RFC 7515 §2)
    let (h, rest) = token.split_once('.').unwrap();
    assert!(matches!(
        bad(&format!("{h}=.{rest}")),
        JwtError::Malformed(_)
    ));
    assert!(matches!(
        bad(&format!("{h} .{rest}")),
        JwtError::Malformed(_)
    ));
    assert!(matches!(
        bad(&format!("{h}+.{rest}")),
        JwtError::Malformed(_)
    ));
    // a header that is not a JSON object
    let t = format!("{}.{rest}", kit::b64(b"[1]"));
    assert_eq!(bad(&t), JwtError::Malformed("header is not a JSON object"));
    let t = format!("{}.{rest}", kit::b64(b"{\"alg\":"));
    assert_eq!(bad(&t), JwtError::Malformed("header is not a JSON object"));
    // no alg / alg not a string / kid not a string
    let t = kit::mint_as(&key, "ES256", &json!({"kid": "k1"}), &claims());
    assert_eq!(bad(&t), JwtError::Malformed("no alg"));
    let t = kit::mint_as(&key, "ES256", &json!({"alg": 1}), &claims());
    assert_eq!(bad(&t), JwtError::Malformed("alg is not a string"));
    let t = kit::mint(&key, &json!({"kid": 7}), &claims());
    assert_eq!(bad(&t), JwtError::Malformed("kid is not a string"));
    // claims that are not an object, with a valid signature
    let t = kit::mint_as(
        &key,
        "ES256",
        &json!({"alg": "ES256", "kid": "k1"}),
        &json!("text"),
    );
    assert_eq!(bad(&t), JwtError::Malformed("claims are not a JSON object"));
    // too long, refused before decoding
    let long = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(bad(&long), JwtError::Malformed("token too long"));
    let mut c = claims();
    c["pad"] = json!("x".repeat(MAX_TOKEN_BYTES));
    let t = kit::mint(&key, &json!({"kid": "k1"}), &c);
    assert_eq!(bad(&t), JwtError::Malformed("token too long"));
}

#[test]
fn exp_is_required_and_checked_with_leeway() {
    let now = 1_800_000_000;
    let mut c = claims();
    c["iat"] = json!(now - 100);
    c["exp"] = json!(now + 10);
    let (_, keys, t) = good(&c);
    check(&t, &keys, 0, now).unwrap();
    check(&t, &keys, 0, now + 9).unwrap();
    // RFC 7519 §4.1.4: at exp it is expired
    assert_eq!(
        check(&t, &keys, 0, now + 10).unwrap_err(),
        JwtError::Expired
    );
    check(&t, &keys, 5, now + 14).unwrap();
    assert_eq!(
        check(&t, &keys, 5, now + 15).unwrap_err(),
        JwtError::Expired
    );
    let v = check(&t, &keys, 0, now).unwrap();
    assert_eq!(v.expires, now + 10);
    // missing / not a number
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    let (_, keys, t) = good(&c);
    assert_eq!(
        check(&t, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Malformed("no exp")
    );
    let mut c = claims();
    c["exp"] = json!("2099-01-01");
    let (_, keys, t) = good(&c);
    assert_eq!(
        check(&t, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Malformed("exp is not a number")
    );
}

#[test]
fn numeric_dates_may_be_floats_and_are_floored() {
    let now = 1_800_000_000;
    let mut c = claims();
    c["iat"] = json!(now as f64 - 0.5);
    c["exp"] = json!(now as f64 + 10.9);
    let (_, keys, t) = good(&c);
    assert_eq!(check(&t, &keys, 0, now).unwrap().expires, now + 10);
    assert_eq!(
        check(&t, &keys, 0, now + 10).unwrap_err(),
        JwtError::Expired
    );
    // a negative exp is long past
    c["exp"] = json!(-5);
    let (_, keys, t) = good(&c);
    assert_eq!(check(&t, &keys, 0, now).unwrap_err(), JwtError::Expired);
}

#[test]
fn nbf_and_iat_in_the_future_are_refused_beyond_leeway() {
    let now = 1_800_000_000;
    for claim in ["nbf", "iat"] {
        let mut c = claims();
        c["exp"] = json!(now + 3600);
        c["iat"] = json!(now - 10);
        c[claim] = json!(now + 30);
        let (_, keys, t) = good(&c);
        assert_eq!(
            check(&t, &keys, 0, now).unwrap_err(),
            JwtError::NotYetValid,
            "{claim}"
        );
        assert_eq!(
            check(&t, &keys, 29, now).unwrap_err(),
            JwtError::NotYetValid,
            "{claim}"
        );
        check(&t, &keys, 30, now).unwrap();
        check(&t, &keys, 0, now + 30).unwrap();
        c[claim] = json!(true);
        let (_, keys, t) = good(&c);
        assert!(
            matches!(check(&t, &keys, 0, now), Err(JwtError::Malformed(_))),
            "{claim}"
        );
    }
}

#[test]
fn the_issuer_must_match_exactly() {
    for iss in [
        json!("https://issuer.example.com/"),
        json!("HTTPS://issuer.example.com"),
        json!(1),
    ] {
        let mut c = claims();
        c["iss"] = iss;
        let (_, keys, t) = good(&c);
        assert_eq!(
            check(&t, &keys, 0, kit::now()).unwrap_err(),
            JwtError::Issuer
        );
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iss");
    let (_, keys, t) = good(&c);
    assert_eq!(
        check(&t, &keys, 0, kit::now()).unwrap_err(),
        JwtError::Issuer
    );
}

#[test]
fn audience_as_string_list_or_client_id() {
    let cases = [
        (json!({"aud": "api-2"}), Ok(())),
        (json!({"aud": "api-3"}), Err(JwtError::Audience)),
        (json!({"aud": ["x", "api-1"]}), Ok(())),
        (json!({"aud": ["x", "y"]}), Err(JwtError::Audience)),
        (json!({"aud": []}), Err(JwtError::Audience)),
        (
            json!({"aud": [1]}),
            Err(JwtError::Malformed("aud holds a non-string")),
        ),
        (
            json!({"aud": 1}),
            Err(JwtError::Malformed("aud is neither a string nor a list")),
        ),
        (json!({"aud": null, "client_id": "api-1"}), Ok(())),
        (
            json!({"aud": null, "client_id": "other"}),
            Err(JwtError::Audience),
        ),
        (json!({"aud": null}), Err(JwtError::Audience)),
        // `aud` present decides; `client_id` is not a fallback for a wrong `aud`
        (
            json!({"aud": "other", "client_id": "api-1"}),
            Err(JwtError::Audience),
        ),
    ];
    for (patch, want) in cases {
        let mut c = claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let (_, keys, t) = good(&c);
        assert_eq!(check(&t, &keys, 0, kit::now()).map(|_| ()), want, "{patch}");
    }
}

#[test]
fn scopes_from_scope_or_scp() {
    let cases = [
        (
            json!({"scope": " read  pets:write "}),
            vec!["read", "pets:write"],
        ),
        (json!({"scope": null, "scp": ["a", "b"]}), vec!["a", "b"]),
        (json!({"scope": null, "scp": "a b"}), vec!["a", "b"]),
        (json!({"scope": null}), vec![]),
        (json!({"scope": "x", "scp": ["y"]}), vec!["x"]),
    ];
    for (patch, want) in cases {
        let mut c = claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let (_, keys, t) = good(&c);
        let v = check(&t, &keys, 0, kit::now()).unwrap();
        let got: Vec<&str> = v.scopes.iter().map(|s| &**s).collect();
        assert_eq!(got, want, "{patch}");
    }
    let mut c = claims();
    c["scope"] = json!(["a", 2]);
    let (_, keys, t) = good(&c);
    assert!(matches!(
        check(&t, &keys, 0, kit::now()),
        Err(JwtError::Malformed(_))
    ));
    assert!(has_scope(
        &[Box::from("a"), Box::from("b")],
        &["b".to_string()]
    ));
    assert!(!has_scope(&[Box::from("a")], &["b".to_string()]));
    assert!(has_scope(&[], &[]));
}

#[test]
fn the_subject_and_claims_are_returned() {
    let mut c = claims();
    c["email"] = json!("a@example.com");
    let (_, keys, t) = good(&c);
    let v = check(&t, &keys, 0, kit::now()).unwrap();
    assert_eq!(&*v.subject, "user-1");
    assert_eq!(v.claims.get("email"), Some(&json!("a@example.com")));
    let p = v.into_principal(3);
    assert_eq!((p.authorizer, &*p.id), (3, "user-1"));
    assert_eq!(
        p.authorizer_var("claims.email").as_deref(),
        Some("a@example.com")
    );
    assert!(matches!(&p.identity, Identity::Jwt { scopes, .. } if scopes.len() == 2));
    c["sub"] = json!(42);
    let (_, keys, t) = good(&c);
    assert_eq!(&*check(&t, &keys, 0, kit::now()).unwrap().subject, "");
}

#[test]
fn bearer_values() {
    assert_eq!(bearer(b"Bearer abc"), Some("abc"));
    assert_eq!(bearer(b"bearer   abc "), Some("abc"));
    assert_eq!(bearer(b"abc"), Some("abc"));
    assert_eq!(bearer(b"Basic abc"), None);
    assert_eq!(bearer(b"Bearer "), None);
    assert_eq!(bearer(b"\xff"), None);
}

#[test]
fn an_rsa_key_with_zero_padded_n_and_e_verifies() {
    // Java's BigInteger.toByteArray writes a leading 0x00 before a modulus whose top bit is set
    let key = kit::shared_rsa();
    let mut jwk = key.jwk(Some("pad"), Some("RS256"));
    let mut n = vec![0u8];
    n.extend_from_slice(&key.n);
    let mut e = vec![0u8, 0u8];
    e.extend_from_slice(&key.e);
    jwk["n"] = json!(kit::b64(&n));
    jwk["e"] = json!(kit::b64(&e));
    let keys = set(&[jwk]);
    let token = kit::mint(key, &json!({"kid": "pad"}), &claims());
    check(&token, &keys, 0, kit::now()).unwrap();
}

#[test]
fn a_token_naming_a_refused_key_says_why_and_an_empty_set_has_no_key() {
    let weak = kit::rsa(1024);
    let keys = set(&[weak.jwk(Some("c"), None)]);
    let token = kit::mint(kit::shared_rsa(), &json!({"kid": "c"}), &claims());
    let err = check(&token, &keys, 0, kit::now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "key c refused: RSA key of 1024 bits, under 2048"
    );
    // an unknown kid is still unknown (it may be refetched)
    let token = kit::mint(kit::shared_rsa(), &json!({"kid": "d"}), &claims());
    assert_eq!(
        check(&token, &keys, 0, kit::now()).unwrap_err(),
        JwtError::UnknownKid("d".into())
    );
    // no kid against a set without usable keys
    let empty = KeySet::parse(br#"{"keys":[]}"#).unwrap();
    let token = kit::mint(kit::shared_rsa(), &json!({}), &claims());
    assert_eq!(
        check(&token, &empty, 0, kit::now()).unwrap_err(),
        JwtError::NoKeys
    );
}
