//! JSON Web Key Sets (RFC 7517 §5), parsed into verification keys: sans-IO.
//!
//! Owns: turning a JWKS document into [`KeySet`]: RSA (RFC 7518 §6.3, at least
//! [`MIN_RSA_BITS`] bits), EC P-256/P-384 (§6.2), Ed25519 (RFC 8037 §2), each with its `kid`
//! and `alg`; keys for encryption (`use: enc`), of unknown types or curves, too weak or
//! malformed are set aside, not fatal (an identity provider publishing one key we cannot use
//! must not take down the others). A set aside key with a `kid` is kept as a [`Refused`] entry
//! with its reason, so that a token naming it is refused saying why (and does not make the
//! worker fetch the set again). The document as a whole is refused only when it is not JSON or
//! has no `keys` array: a valid document always replaces the last one, even with no usable key
//! (`{"keys":[]}` is how an identity provider revokes every key). Which keys may verify a token
//! of a given `alg` is [`Key::fits`]. Leaves out: fetching (see [`super::keys`]) and verifying (see [`super::jwt`]).
//!
//! Data flow: bytes of the document → `serde_json::Value` → per member checks → one
//! [`jsonwebtoken::DecodingKey`] per usable key, built once per fetch and reused by every
//! verification on the worker.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// RSA moduli shorter than this are skipped (RFC 7518 §3.3: "A key of size 2048 bits or
/// larger MUST be used"; ring refuses them too).
pub const MIN_RSA_BITS: usize = 2048;

/// RSA moduli longer than this are skipped (ring verifies up to 8192 bits).
pub const MAX_RSA_BITS: usize = 8192;

/// A parsed key set.
#[derive(Default, Debug)]
pub struct KeySet {
    pub(crate) keys: Vec<Key>,
    /// The members set aside that had a `kid`, with why.
    pub(crate) refused: Vec<Refused>,
}

/// A JWK of the document that cannot verify anything, kept for the words of the refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub kid: Box<str>,
    pub why: Skip,
}

/// The key types and curves a set may hold (RFC 7518 §6.1, RFC 8037 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `kty: RSA`: RS256/384/512, PS256/384/512.
    Rsa,
    /// `kty: EC`, `crv: P-256`: ES256.
    P256,
    /// `kty: EC`, `crv: P-384`: ES384.
    P384,
    /// `kty: OKP`, `crv: Ed25519`: EdDSA.
    Ed25519,
}

impl KeyKind {
    /// Whether a key of this kind makes `alg` signatures (RFC 7518 §3.1, RFC 8037 §3.1).
    pub fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::P256 => alg == ES256,
            KeyKind::P384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }
}

/// One verification key.
pub struct Key {
    pub kid: Option<Box<str>>,
    /// The JWK's `alg` (RFC 7517 §4.4): when present, the only algorithm it verifies.
    pub alg: Option<jsonwebtoken::Algorithm>,
    pub key: jsonwebtoken::DecodingKey,
    pub kind: KeyKind,
}

impl Key {
    /// Whether this key may verify a token signed with `alg`: the key type makes such
    /// signatures and, when the JWK names an `alg`, it is that one.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why a key set document was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("key set is not JSON: {0}")]
    Json(String),
    #[error("key set has no \"keys\" array")]
    NoKeys,
}

/// The JWS algorithm named `name` if we verify it (RFC 7518 §3.1, RFC 8037 §3.1). `none` and
/// the HMAC algorithms are not among them: a key set holds public keys only.
pub fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

impl KeySet {
    /// Parses a JWKS document (RFC 7517 §5: a JSON object whose `keys` member is an array of
    /// JWKs). Members that are not usable keys are set aside (see the module doc); the set may
    /// hold no key at all.
    pub fn parse(json: &[u8]) -> Result<KeySet, JwksError> {
        let doc: Value =
            serde_json::from_slice(json).map_err(|e| JwksError::Json(e.to_string()))?;
        let members = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NoKeys)?;
        let mut set = KeySet::default();
        for m in members {
            let Some(m) = m.as_object() else {
                continue;
            };
            match parse_key(m) {
                Ok(k) => set.keys.push(k),
                Err(why) => {
                    // a kid of the wrong JSON type is no kid to match a token against
                    if let Some(Value::String(kid)) = m.get("kid") {
                        set.refused.push(Refused {
                            kid: kid.as_str().into(),
                            why,
                        });
                    }
                }
            }
        }
        Ok(set)
    }

    /// Why the member with this `kid` was set aside, when it was and no usable key has that
    /// `kid` (RFC 7517 §4.5 does not make `kid`s unique).
    pub fn refused(&self, kid: &str) -> Option<Skip> {
        if self.has_kid(kid) {
            return None;
        }
        self.refused.iter().find(|r| &*r.kid == kid).map(|r| r.why)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every key, in the document's order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The keys that may verify a token with this `kid` (`None`: the token names none, so
    /// every key is a candidate; `Some`: only keys with exactly that `kid`, RFC 7515 §4.1.4).
    pub fn find<'a>(&'a self, kid: Option<&'a str>) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys
            .iter()
            .filter(move |k| kid.is_none_or(|want| k.kid.as_deref() == Some(want)))
    }

    /// Whether some key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.find(Some(kid)).next().is_some()
    }
}

/// Why one key was set aside (not an error of the set: see [`KeySet::refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// `use` other than `sig` (RFC 7517 §4.2), or `key_ops` without `verify` (§4.3).
    #[error("not a key for verifying signatures (use or key_ops)")]
    NotForVerifying,
    /// `kty`/`crv` we do not verify with, or an `alg` we do not support or that does not fit
    /// the key type.
    #[error("unsupported key type, curve or alg")]
    Unsupported,
    /// RSA modulus of this many bits, under [`MIN_RSA_BITS`] (RFC 7518 §3.3).
    #[error("RSA key of {0} bits, under {MIN_RSA_BITS}")]
    Weak(usize),
    /// RSA modulus of this many bits, over [`MAX_RSA_BITS`].
    #[error("RSA key of {0} bits, over {MAX_RSA_BITS}")]
    Huge(usize),
    /// A member missing, of the wrong JSON type, not base64url, or of the wrong size.
    #[error("malformed JWK")]
    Malformed,
}

fn string<'a>(m: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Skip> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Skip::Malformed),
    }
}

/// A base64url member (RFC 7518 §2 "Base64urlUInt" and the coordinates), decoded.
fn bytes(m: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Skip> {
    let text = string(m, name)?.ok_or(Skip::Malformed)?;
    URL_SAFE_NO_PAD.decode(text).map_err(|_| Skip::Malformed)
}

pub(crate) fn parse_key(m: &Map<String, Value>) -> Result<Key, Skip> {
    // RFC 7517 §4.2: "sig" or "enc"; absent means the key may be used for anything.
    if string(m, "use")?.is_some_and(|u| u != "sig") {
        return Err(Skip::NotForVerifying);
    }
    // RFC 7517 §4.3: an array of operation names; ours is "verify".
    if let Some(ops) = m.get("key_ops") {
        let ops = ops.as_array().ok_or(Skip::Malformed)?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Err(Skip::NotForVerifying);
        }
    }
    let kid = string(m, "kid")?.map(Box::from);
    let alg = match string(m, "alg")? {
        None => None,
        Some(name) => Some(algorithm(name).ok_or(Skip::Unsupported)?),
    };
    let kty = string(m, "kty")?.ok_or(Skip::Malformed)?;
    let (kind, key) = match kty {
        // RFC 7518 §6.3.1: n and e, Base64urlUInt
        "RSA" => {
            let n = bytes(m, "n")?;
            let e = bytes(m, "e")?;
            let bits = modulus_bits(&n);
            if bits < MIN_RSA_BITS {
                return Err(Skip::Weak(bits));
            }
            if bits > MAX_RSA_BITS {
                return Err(Skip::Huge(bits));
            }
            // Base64urlUInt (RFC 7518 §2) is "the minimum number of octets", yet some issuers
            // (Java's BigInteger.toByteArray) prepend a zero byte; ring refuses a modulus or
            // exponent with leading zeros, so they go here
            let (n, e) = (strip_leading_zeros(&n), strip_leading_zeros(&e));
            if e.is_empty() {
                return Err(Skip::Malformed);
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(n, e))
        }
        // RFC 7518 §6.2.1: crv, x and y, each coordinate the full size of the curve
        "EC" => {
            let (kind, size) = match string(m, "crv")?.ok_or(Skip::Malformed)? {
                "P-256" => (KeyKind::P256, 32),
                "P-384" => (KeyKind::P384, 48),
                _ => return Err(Skip::Unsupported),
            };
            let x = bytes(m, "x")?;
            let y = bytes(m, "y")?;
            if x.len() != size || y.len() != size {
                return Err(Skip::Malformed);
            }
            // the uncompressed point, SEC 1 §2.3.3: 0x04 || x || y (ring checks it is on the
            // curve when it verifies)
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (kind, DecodingKey::from_ec_der(&point))
        }
        // RFC 8037 §2: crv and x (32 bytes for Ed25519)
        "OKP" => {
            if string(m, "crv")?.ok_or(Skip::Malformed)? != "Ed25519" {
                return Err(Skip::Unsupported);
            }
            let x = bytes(m, "x")?;
            if x.len() != 32 {
                return Err(Skip::Malformed);
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_der(&x))
        }
        _ => return Err(Skip::Unsupported),
    };
    if alg.is_some_and(|a| !kind.fits(a)) {
        return Err(Skip::Unsupported);
    }
    Ok(Key {
        kid,
        alg,
        key,
        kind,
    })
}

/// A big-endian unsigned integer without its leading zero bytes (empty for zero).
fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or_default()
}

/// Bits of a big-endian unsigned integer, leading zero bytes and bits not counted.
fn modulus_bits(n: &[u8]) -> usize {
    match n.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => {
            let rest = n.len() - i;
            let top = n.get(i).copied().unwrap_or(0);
            (rest - 1) * 8 + (8 - top.leading_zeros() as usize)
        }
    }
}

#[cfg(test)]
#[path = "jwks_tests.rs"]
mod tests;
