//! `KeySet::parse`: which keys are kept, which skipped, when the set fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};

use super::*;
use crate::auth::jwt::tests::kit;

fn skip(jwk: Value) -> Skip {
    parse_key(jwk.as_object().unwrap()).unwrap_err()
}

fn kept(jwk: Value) -> Key {
    parse_key(jwk.as_object().unwrap()).unwrap()
}

#[test]
fn each_key_type_is_kept_with_kid_and_alg() {
    let rsa = kit::shared_rsa();
    let doc = kit::jwks(&[
        rsa.jwk(Some("r"), Some("PS256")),
        kit::p256().jwk(Some("e1"), None),
        kit::p384().jwk(None, Some("ES384")),
        kit::ed25519().jwk(Some("o"), Some("EdDSA")),
    ]);
    let set = KeySet::parse(doc.as_bytes()).unwrap();
    assert_eq!(set.len(), 4);
    let got: Vec<_> = set
        .keys()
        .iter()
        .map(|k| (k.kid.as_deref(), k.alg, k.kind))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("r"), Some(Algorithm::PS256), KeyKind::Rsa),
            (Some("e1"), None, KeyKind::P256),
            (None, Some(Algorithm::ES384), KeyKind::P384),
            (Some("o"), Some(Algorithm::EdDSA), KeyKind::Ed25519),
        ]
    );
    assert!(set.has_kid("e1"));
    assert!(!set.has_kid("E1"));
    assert_eq!(set.find(Some("o")).count(), 1);
    assert_eq!(set.find(None).count(), 4);
}

#[test]
fn rsa_under_2048_bits_is_skipped_by_counted_bits() {
    let weak = kit::rsa(1024);
    let strong = kit::shared_rsa();
    let set = KeySet::parse(
        kit::jwks(&[weak.jwk(Some("weak"), None), strong.jwk(Some("ok"), None)]).as_bytes(),
    )
    .unwrap();
    assert_eq!(set.len(), 1);
    assert!(!set.has_kid("weak"));
    // the weak key stays in the set as a refusal with its reason
    assert_eq!(set.refused("weak"), Some(Skip::Weak(1024)));
    assert_eq!(
        Skip::Weak(1024).to_string(),
        "RSA key of 1024 bits, under 2048"
    );
    assert_eq!(set.refused("ok"), None);
    assert_eq!(skip(weak.jwk(None, None)), Skip::Weak(1024));
    // leading zero bytes do not count: 2047 significant bits padded to 257 bytes is weak
    let mut n = vec![0u8, 0u8];
    n.push(0x7f);
    n.extend(std::iter::repeat_n(0xff, 255));
    assert_eq!(modulus_bits(&n), 2047);
    let e = kit::b64(&[1, 0, 1]);
    assert_eq!(
        skip(json!({"kty": "RSA", "n": kit::b64(&n), "e": e})),
        Skip::Weak(2047)
    );
    // exactly 2048 bits behind a leading zero is kept
    let mut n = vec![0u8, 0x80];
    n.extend(std::iter::repeat_n(0x01, 255));
    assert_eq!(modulus_bits(&n), 2048);
    kept(json!({"kty": "RSA", "n": kit::b64(&n), "e": e}));
    assert_eq!(modulus_bits(&[]), 0);
    assert_eq!(modulus_bits(&[0, 0]), 0);
    assert_eq!(modulus_bits(&[1]), 1);
    // and oversized moduli are skipped too
    let n = vec![0xffu8; MAX_RSA_BITS / 8 + 1];
    assert_eq!(
        skip(json!({"kty": "RSA", "n": kit::b64(&n), "e": e})),
        Skip::Huge(MAX_RSA_BITS + 8)
    );
}

#[test]
fn keys_not_for_verifying_are_skipped() {
    let k = kit::p256();
    let mut j = k.jwk(None, None);
    j["use"] = json!("enc");
    assert_eq!(skip(j.clone()), Skip::NotForVerifying);
    j["use"] = json!("sig");
    j["key_ops"] = json!(["encrypt", "sign"]);
    assert_eq!(skip(j.clone()), Skip::NotForVerifying);
    j["key_ops"] = json!(["verify"]);
    kept(j.clone());
    j.as_object_mut().unwrap().remove("use");
    kept(j.clone());
    j["key_ops"] = json!("verify");
    assert_eq!(skip(j), Skip::Malformed);
}

#[test]
fn unsupported_types_curves_and_algs_are_skipped() {
    let ec = kit::p256();
    assert_eq!(
        skip(json!({"kty": "oct", "k": "c2VjcmV0"})),
        Skip::Unsupported
    );
    let mut j = ec.jwk(None, None);
    j["crv"] = json!("P-521");
    assert_eq!(skip(j), Skip::Unsupported);
    let mut j = kit::ed25519().jwk(None, None);
    j["crv"] = json!("X25519");
    assert_eq!(skip(j), Skip::Unsupported);
    // alg we do not support, or that does not fit the key
    for alg in ["HS256", "none", "ES512", "RS256"] {
        assert_eq!(skip(ec.jwk(None, Some(alg))), Skip::Unsupported, "{alg}");
    }
    assert_eq!(
        skip(kit::p384().jwk(None, Some("ES256"))),
        Skip::Unsupported
    );
    assert_eq!(
        skip(kit::shared_rsa().jwk(None, Some("EdDSA"))),
        Skip::Unsupported
    );
    assert_eq!(
        skip(kit::ed25519().jwk(None, Some("ES256"))),
        Skip::Unsupported
    );
}

#[test]
fn malformed_members_are_skipped() {
    let ec = kit::p256();
    let j = ec.jwk(None, None);
    let mut no_y = j.clone();
    no_y.as_object_mut().unwrap().remove("y");
    assert_eq!(skip(no_y), Skip::Malformed);
    let mut short_x = j.clone();
    short_x["x"] = json!(kit::b64(&[1; 31]));
    assert_eq!(skip(short_x), Skip::Malformed);
    let mut padded = j.clone();
    padded["x"] = json!(format!("{}=", j["x"].as_str().unwrap()));
    assert_eq!(skip(padded), Skip::Malformed);
    let mut num_kid = j.clone();
    num_kid["kid"] = json!(1);
    assert_eq!(skip(num_kid), Skip::Malformed);
    let mut no_kty = j.clone();
    no_kty.as_object_mut().unwrap().remove("kty");
    assert_eq!(skip(no_kty), Skip::Malformed);
    let mut ed = kit::ed25519().jwk(None, None);
    ed["x"] = json!(kit::b64(&[7; 33]));
    assert_eq!(skip(ed), Skip::Malformed);
    let rsa = kit::shared_rsa();
    let mut r = rsa.jwk(None, None);
    r["e"] = json!(kit::b64(&[0]));
    assert_eq!(skip(r.clone()), Skip::Malformed);
    r["e"] = json!("AQAB!");
    assert_eq!(skip(r), Skip::Malformed);
}

#[test]
fn the_set_fails_only_as_a_whole() {
    assert!(matches!(
        KeySet::parse(b"not json"),
        Err(JwksError::Json(_))
    ));
    assert_eq!(KeySet::parse(b"{}").err(), Some(JwksError::NoKeys));
    assert_eq!(KeySet::parse(b"[]").err(), Some(JwksError::NoKeys));
    assert_eq!(
        KeySet::parse(br#"{"keys": {}}"#).err(),
        Some(JwksError::NoKeys)
    );
    // a valid document with no usable key is a set (an empty one: the IdP revoked its keys)
    assert!(KeySet::parse(br#"{"keys": []}"#).unwrap().is_empty());
    let only_bad = json!({"keys": [1, "x", {"kty": "oct", "k": "AA", "kid": "h"}, {"kty": "EC", "crv": "P-256", "use": "enc"}]});
    let set = KeySet::parse(only_bad.to_string().as_bytes()).unwrap();
    assert!(set.is_empty());
    assert_eq!(set.refused("h"), Some(Skip::Unsupported));
    // one good key among bad ones is enough
    let good = kit::ed25519().jwk(Some("g"), None);
    let mixed = json!({"keys": [1, {"kty": "oct", "k": "AA"}, good]});
    let set = KeySet::parse(mixed.to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.has_kid("g"));
}
