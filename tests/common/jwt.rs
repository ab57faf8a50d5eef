//! The JWT test kit: signing keys, their public JWKs and JWKS documents, and tokens minted
//! with them, good and bad. Plain functions, no runtime: integration tests use it as
//! `common::jwt`, and the library's own unit tests include this very file (`#[path]`), so it
//! names no `tollgate` item.
//!
//! Keys: RSA from the `openssl` CLI (PKCS#8 DER; installed with apt-get when missing, failing
//! loudly), EC P-256/P-384 and Ed25519 from ring. Tokens are signed with ring directly, so a
//! header can say anything (`alg` of another key type, `crit`, `kid`s that exist nowhere)
//! while the signature stays a real one.
#![allow(dead_code)]
// a test helper fails the test by panicking
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Map, Value};

/// The key pair types the kit makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RSA with this many modulus bits.
    Rsa(u32),
    P256,
    P384,
    Ed25519,
}

/// A private key (PKCS#8 DER) and its public parts.
#[derive(Clone)]
pub struct TestKey {
    pub kind: Kind,
    pub pkcs8: Vec<u8>,
    /// RSA: modulus and exponent, big-endian without leading zeros.
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    /// EC: the affine coordinates; Ed25519: the public key in `x`.
    pub x: Vec<u8>,
    pub y: Vec<u8>,
}

/// base64url without padding (RFC 7515 §2).
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let spawn = || {
        Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    let mut child = match spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // (this file is also compiled into the library's unit tests: no `super::apt`)
            let apt = |args: &[&str]| {
                Command::new("apt-get")
                    .args(["-o", "DPkg::Lock::Timeout=600", "-q"])
                    .args(args)
                    .status()
                    .expect("openssl is missing and apt-get cannot run")
                    .success()
            };
            // stale or missing package lists on a fresh machine: update, then retry once
            let ok = apt(&["install", "-y", "openssl"])
                || (apt(&["update"]) && apt(&["install", "-y", "openssl"]));
            assert!(
                ok,
                "openssl is missing and `apt-get install -y openssl` failed"
            );
            spawn().expect("openssl still cannot run after installing it")
        }
        Err(e) => panic!("cannot run openssl: {e}"),
    };
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

/// A fresh RSA key of `bits` (any size openssl makes, 1024 included: only signing needs 2048+).
pub fn rsa(bits: u32) -> TestKey {
    let bits_arg = format!("rsa_keygen_bits:{bits}");
    let der = openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &bits_arg,
            "-outform",
            "DER",
        ],
        b"",
    );
    // OpenSSL 3.0's genpkey writes DER as PKCS#1 `RSAPrivateKey`; ring reads PKCS#8
    let pkcs8 = openssl(
        &[
            "pkcs8", "-topk8", "-nocrypt", "-inform", "DER", "-outform", "DER",
        ],
        &der,
    );
    // the SubjectPublicKeyInfo, read with x509-parser: works for keys ring would refuse
    let spki = openssl(
        &["pkey", "-inform", "DER", "-pubout", "-outform", "DER"],
        &pkcs8,
    );
    use x509_parser::prelude::FromDer;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).unwrap();
    let x509_parser::public_key::PublicKey::RSA(rsa) = info.parsed().unwrap() else {
        panic!("openssl made a non-RSA key");
    };
    TestKey {
        kind: Kind::Rsa(bits),
        n: strip_zeros(rsa.modulus),
        e: strip_zeros(rsa.exponent),
        pkcs8,
        x: Vec::new(),
        y: Vec::new(),
    }
}

/// One RSA 2048 key per test process (generating one takes a while).
pub fn shared_rsa() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| rsa(2048))
}

fn ec(kind: Kind) -> TestKey {
    let (alg, size) = match kind {
        Kind::P256 => (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, 32),
        Kind::P384 => (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, 48),
        _ => unreachable!(),
    };
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    // the uncompressed point: 0x04 || x || y (SEC 1 §2.3.3)
    let point = pair.public_key().as_ref();
    assert_eq!(point.len(), 1 + 2 * size);
    TestKey {
        kind,
        pkcs8: pkcs8.as_ref().to_vec(),
        n: Vec::new(),
        e: Vec::new(),
        x: point[1..1 + size].to_vec(),
        y: point[1 + size..].to_vec(),
    }
}

/// A fresh EC P-256 key (ES256).
pub fn p256() -> TestKey {
    ec(Kind::P256)
}

/// A fresh EC P-384 key (ES384).
pub fn p384() -> TestKey {
    ec(Kind::P384)
}

/// A fresh Ed25519 key (EdDSA, RFC 8037).
pub fn ed25519() -> TestKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    TestKey {
        kind: Kind::Ed25519,
        pkcs8: pkcs8.as_ref().to_vec(),
        n: Vec::new(),
        e: Vec::new(),
        x: pair.public_key().as_ref().to_vec(),
        y: Vec::new(),
    }
}

impl TestKey {
    /// The algorithm tokens of this key use unless told otherwise.
    pub fn default_alg(&self) -> &'static str {
        match self.kind {
            Kind::Rsa(_) => "RS256",
            Kind::P256 => "ES256",
            Kind::P384 => "ES384",
            Kind::Ed25519 => "EdDSA",
        }
    }

    /// The public JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2), with `kid` and `alg` when given
    /// and `use: sig`.
    pub fn jwk(&self, kid: Option<&str>, alg: Option<&str>) -> Value {
        let mut m = match self.kind {
            Kind::Rsa(_) => json!({"kty": "RSA", "n": b64(&self.n), "e": b64(&self.e)}),
            Kind::P256 | Kind::P384 => json!({
                "kty": "EC",
                "crv": if self.kind == Kind::P256 { "P-256" } else { "P-384" },
                "x": b64(&self.x),
                "y": b64(&self.y),
            }),
            Kind::Ed25519 => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&self.x)}),
        };
        let obj = m.as_object_mut().unwrap();
        obj.insert("use".into(), json!("sig"));
        if let Some(kid) = kid {
            obj.insert("kid".into(), json!(kid));
        }
        if let Some(alg) = alg {
            obj.insert("alg".into(), json!(alg));
        }
        m
    }

    /// The RSA public key as PKCS#1 `RSAPublicKey` DER (what an HS256 key-confusion attack
    /// uses as the HMAC secret).
    pub fn rsa_public_der(&self) -> Vec<u8> {
        let pair = RsaKeyPair::from_pkcs8(&self.pkcs8).unwrap();
        pair.public().as_ref().to_vec()
    }

    /// Signs `message` with `alg` (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA); panics
    /// when this key cannot make that signature.
    pub fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match (self.kind, alg) {
            (Kind::Rsa(_), _) => {
                let enc: &'static dyn signature::RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    other => panic!("an RSA key cannot sign {other}"),
                };
                let pair = RsaKeyPair::from_pkcs8(&self.pkcs8)
                    .expect("ring signs with RSA keys of 2048 bits or more only");
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(enc, &rng, message, &mut sig).unwrap();
                sig
            }
            (Kind::P256, "ES256") | (Kind::P384, "ES384") => {
                let a = if self.kind == Kind::P256 {
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pair = EcdsaKeyPair::from_pkcs8(a, &self.pkcs8, &rng).unwrap();
                pair.sign(&rng, message).unwrap().as_ref().to_vec()
            }
            (Kind::Ed25519, "EdDSA") => {
                let pair = Ed25519KeyPair::from_pkcs8(&self.pkcs8).unwrap();
                pair.sign(message).as_ref().to_vec()
            }
            (kind, alg) => panic!("a {kind:?} key cannot sign {alg}"),
        }
    }
}

/// A JWKS document (RFC 7517 §5) holding `keys` (from [`TestKey::jwk`] or hand-made).
pub fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// Claims a JWT authorizer with `issuer` and audience `aud` accepts: `iss`, `aud`, `sub`
/// `user-1`, `iat` now, `exp` in an hour, `scope` `read write`.
pub fn claims(issuer: &str, aud: &str) -> Value {
    let t = now();
    json!({
        "iss": issuer,
        "aud": aud,
        "sub": "user-1",
        "iat": t,
        "exp": t + 3600,
        "scope": "read write",
    })
}

/// `base64url(header) . base64url(claims)`: the JWS signing input (RFC 7515 §5.1).
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// The header `{"alg": key's default, "typ": "JWT"}` with `overrides` applied (an object:
/// each member replaces or adds one; a `null` member removes it).
pub fn header(key: &TestKey, overrides: &Value) -> Value {
    let mut h = Map::new();
    h.insert("alg".into(), json!(key.default_alg()));
    h.insert("typ".into(), json!("JWT"));
    if let Some(o) = overrides.as_object() {
        for (k, v) in o {
            if v.is_null() {
                h.remove(k);
            } else {
                h.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(h)
}

/// A compact JWS (RFC 7515 §7.1) of `claims`, signed by `key` with the header's `alg` (see
/// [`header`] for `overrides`, e.g. `json!({"kid": "k1"})`, `json!({"alg": "PS256"})`).
pub fn mint(key: &TestKey, overrides: &Value, claims: &Value) -> String {
    let h = header(key, overrides);
    let alg = h["alg"].as_str().unwrap_or(key.default_alg()).to_string();
    mint_as(key, &alg, &h, claims)
}

/// A token whose header is exactly `header` but whose signature `key` makes with `alg`
/// (for headers that lie: `alg` of another key type, `crit`, `b64: false`...).
pub fn mint_as(key: &TestKey, alg: &str, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let sig = key.sign(alg, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// An unsecured JWS (RFC 7515 Appendix A.5): `alg: none`, empty signature.
pub fn alg_none(kid: Option<&str>, claims: &Value) -> String {
    let mut h = json!({"alg": "none", "typ": "JWT"});
    if let Some(kid) = kid {
        h["kid"] = json!(kid);
    }
    format!("{}.", signing_input(&h, claims))
}

/// An HS`bits` token whose HMAC secret is `secret` (e.g. [`TestKey::rsa_public_der`], the
/// key-confusion attack on verifiers that take the token's `alg` on trust).
pub fn hmac(bits: u32, secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let (alg, name) = match bits {
        256 => (ring::hmac::HMAC_SHA256, "HS256"),
        384 => (ring::hmac::HMAC_SHA384, "HS384"),
        512 => (ring::hmac::HMAC_SHA512, "HS512"),
        other => panic!("no HS{other}"),
    };
    let mut h = json!({"alg": name, "typ": "JWT"});
    if let Some(kid) = kid {
        h["kid"] = json!(kid);
    }
    let input = signing_input(&h, claims);
    let tag = ring::hmac::sign(&ring::hmac::Key::new(alg, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// A token signed by `key` whose header carries `crit: names` (and each named member set to
/// `true`, as RFC 7515 §4.1.11 requires).
pub fn with_crit(key: &TestKey, kid: Option<&str>, names: &[&str], claims: &Value) -> String {
    let mut o = json!({ "crit": names });
    if let Some(kid) = kid {
        o["kid"] = json!(kid);
    }
    for n in names {
        o[*n] = json!(true);
    }
    mint(key, &o, claims)
}

/// `token` with its payload replaced by `claims` and the old signature kept.
pub fn tamper(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let (h, _, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    format!("{h}.{}.{s}", b64(claims.to_string().as_bytes()))
}
