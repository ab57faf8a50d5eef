//! JSON Web Tokens (RFC 7519) signed with JWS (RFC 7515), verified against a key set: sans-IO.
//!
//! Owns: taking a token apart (compact serialization, RFC 7515 §7.1, at most
//! [`MAX_TOKEN_BYTES`]), refusing what API Gateway refuses (`alg` `none`, an `alg` other than
//! its key's, HMAC with a public key, unknown `crit` headers: RFC 7515 §4.1.11, unencoded
//! payloads: RFC 7797), the signature (RS256/384/512, PS256/384/512, ES256/384, EdDSA, through
//! `jsonwebtoken` on ring), and the claims (`exp`/`nbf`/`iat` with leeway, `iss`, `aud` or
//! `client_id`, scopes from `scope` or `scp`). Leaves out: where keys come from (see
//! [`super::keys`]), caching (see [`super::token_cache`]), statuses (see
//! [`super::jwt_authorizer`]), and the clock (the caller passes `now`).
//!
//! Data flow: token text → three base64url parts → header object (parsed here with serde_json,
//! not by `jsonwebtoken`, so that every member is seen) → candidate keys from the [`KeySet`]
//! (by `kid`, else by type) → `jsonwebtoken::crypto::verify` over `header.payload` → claims
//! object → [`Verified`]. Errors are [`JwtError`]s, whose text goes to the access log only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;

use super::jwks::{self, KeySet};
use super::{Identity, JsonObject, Principal};

/// What a token is checked against besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// `iss` must equal it.
    pub issuer: &'a str,
    /// `aud` (a string or a list) or `client_id` must hold one of them.
    pub audience: &'a [String],
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway_s: u64,
}

/// A token that verified.
#[derive(Debug)]
pub struct Verified {
    pub claims: JsonObject,
    /// `scope` (space-separated) or `scp` (a list or a string).
    pub scopes: Vec<Box<str>>,
    /// `sub` (empty when absent).
    pub subject: Box<str>,
    /// `exp`, Unix seconds.
    pub expires: u64,
}

impl Verified {
    /// The principal this token proves to authorizer `authorizer` (index in
    /// `Config::authorizers`): its `sub` as the id, its claims and scopes as the identity.
    pub fn into_principal(self, authorizer: usize) -> Principal {
        Principal {
            authorizer,
            id: self.subject,
            identity: Identity::Jwt {
                claims: self.claims,
                scopes: self.scopes,
            },
            throttle: None,
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// No key in the set has the token's `kid` (the key set may be refetched).
    #[error("no key for kid {0:?}")]
    UnknownKid(String),
    /// The set has the token's `kid` only as a key it set aside (not refetched: the identity
    /// provider published it that way).
    #[error("key {0} refused: {1}")]
    RefusedKey(String, jwks::Skip),
    /// The set holds no usable key at all (an identity provider that revoked them all).
    #[error("the key set holds no usable key")]
    NoKeys,
    #[error("algorithm refused: {0}")]
    Algorithm(&'static str),
    #[error("signature does not verify")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("issuer does not match")]
    Issuer,
    #[error("audience does not match")]
    Audience,
    #[error("unknown critical header {0:?}")]
    Crit(String),
}

/// Tokens longer than this are refused before any decoding: a bearer token is a header value
/// (the head's own limits bound it too), and a JWT of tens of kilobytes is an attack, not an
/// identity.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Verifies `token` (compact JWS) with `keys` at `now` (Unix seconds).
///
/// In order: size, the three parts (RFC 7515 §7.1), the header (RFC 7515 §4: `alg`, `crit`,
/// `b64`, `kid`), the key (by `kid`, else by type), the signature, then the claims (RFC 7519
/// §4.1). The first failure is the answer.
pub fn verify(
    token: &str,
    keys: &KeySet,
    rules: &Rules<'_>,
    now: u64,
) -> Result<Verified, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed("token too long"));
    }
    // RFC 7515 §7.1: BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature); a JWE
    // (five parts, RFC 7516 §7.1) or anything else is not a JWS we verify
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not three dot-separated parts"));
    };
    // RFC 7515 §2: base64url "with all trailing '=' characters omitted" and no other
    // characters (no line breaks, whitespace or padding); the signature may be empty only in
    // an unsecured JWS (RFC 7515 Appendix A.5), which the `alg` check then refuses
    if !is_b64url(h64) || !is_b64url(p64) || !(s64.is_empty() || is_b64url(s64)) {
        return Err(JwtError::Malformed("not base64url"));
    }
    let header = decode_object(h64).ok_or(JwtError::Malformed("header is not a JSON object"))?;
    let head = parse_header(&header)?;
    let message = token.get(..h64.len() + 1 + p64.len()).unwrap_or_default();
    choose_and_verify(keys, &head, message, s64)?;
    // RFC 7519 §7.2 step 10: the payload of a JWT is a JSON object
    let claims = decode_object(p64).ok_or(JwtError::Malformed("claims are not a JSON object"))?;
    check_claims(claims, rules, now)
}

/// base64url alphabet only (RFC 4648 §5), not empty.
fn is_b64url(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A base64url part holding a JSON object. Duplicate member names keep the last one, as RFC
/// 7515 §4 and RFC 7519 §4 allow ("use a JSON parser that returns only the lexically last
/// duplicate member name").
fn decode_object(part: &str) -> Option<JsonObject> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// What the header says that verification needs.
struct Header<'a> {
    alg: Algorithm,
    kid: Option<&'a str>,
}

fn parse_header(h: &JsonObject) -> Result<Header<'_>, JwtError> {
    // RFC 7515 §4.1.11: a recipient that does not understand an extension listed in `crit`
    // MUST reject the JWS; we understand none
    if let Some(crit) = h.get("crit") {
        let names = match crit.as_array() {
            Some(list) => list
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            None => crit.to_string(),
        };
        return Err(JwtError::Crit(names));
    }
    // RFC 7797 §3: `b64: false` means an unencoded payload, which changes the signing input;
    // we verify only the standard (encoded) form
    if h.get("b64")
        .is_some_and(|b| b != &serde_json::Value::Bool(true))
    {
        return Err(JwtError::Malformed(
            "unencoded payload (b64) is not supported",
        ));
    }
    // RFC 7515 §4.1.1: `alg` is required
    let alg = match h.get("alg") {
        Some(serde_json::Value::String(a)) => a.as_str(),
        Some(_) => return Err(JwtError::Malformed("alg is not a string")),
        None => return Err(JwtError::Malformed("no alg")),
    };
    let alg = match alg {
        // RFC 7518 §3.6: an unsecured JWS proves nothing
        "none" => return Err(JwtError::Algorithm("alg none")),
        // RFC 7518 §3.2: HMAC needs a shared secret; a key set holds public keys, and taking
        // one as an HMAC secret is the classic key-confusion attack
        "HS256" | "HS384" | "HS512" => return Err(JwtError::Algorithm("HMAC with a public key")),
        other => jwks::algorithm(other).ok_or(JwtError::Algorithm("unsupported alg"))?,
    };
    // RFC 7515 §4.1.4: `kid` is a case-sensitive string
    let kid = match h.get("kid") {
        None => None,
        Some(serde_json::Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(JwtError::Malformed("kid is not a string")),
    };
    Ok(Header { alg, kid })
}

/// Picks the keys the header allows; one of them must verify the signature.
fn choose_and_verify(
    keys: &KeySet,
    head: &Header<'_>,
    message: &str,
    signature: &str,
) -> Result<(), JwtError> {
    if let Some(kid) = head.kid {
        if let Some(why) = keys.refused(kid) {
            return Err(JwtError::RefusedKey(kid.to_string(), why));
        }
        if !keys.has_kid(kid) {
            return Err(JwtError::UnknownKid(kid.to_string()));
        }
    } else if keys.is_empty() {
        return Err(JwtError::NoKeys);
    }
    let mut tried = false;
    // with a `kid`, only that key; without, every key whose type and `alg` fit (RFC 7515
    // §6: "the recipient MUST be able to determine the key": here by trying each)
    for key in keys.find(head.kid).filter(|k| k.fits(head.alg)) {
        tried = true;
        // `fits` keeps `jsonwebtoken` from ever being asked for an algorithm of another key
        // family (which it does not support, e.g. ES256 over an RSA modulus)
        if let Ok(true) =
            jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.key, head.alg)
        {
            return Ok(());
        }
    }
    if tried {
        Err(JwtError::Signature)
    } else {
        Err(JwtError::Algorithm("alg does not fit the key"))
    }
}

/// A NumericDate (RFC 7519 §2: seconds, integer or not) as whole seconds: fractions floored,
/// negatives as 0. `None` when absent; anything but a number is malformed.
fn numeric_date(claims: &JsonObject, name: &'static str) -> Result<Option<u64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(Some(match n.as_u64() {
            Some(u) => u,
            // a float or a negative integer; `as` saturates (NaN cannot come from JSON)
            None => n.as_f64().map_or(0, |f| f.floor().max(0.0) as u64),
        })),
        Some(_) => Err(JwtError::Malformed(match name {
            "exp" => "exp is not a number",
            "nbf" => "nbf is not a number",
            _ => "iat is not a number",
        })),
    }
}

fn check_claims(claims: JsonObject, rules: &Rules<'_>, now: u64) -> Result<Verified, JwtError> {
    use serde_json::Value;
    let leeway = rules.leeway_s;
    // RFC 7519 §4.1.4: "the current date/time MUST be before the expiration date/time";
    // API Gateway requires `exp`
    let exp = numeric_date(&claims, "exp")?.ok_or(JwtError::Malformed("no exp"))?;
    if now >= exp.saturating_add(leeway) {
        return Err(JwtError::Expired);
    }
    // RFC 7519 §4.1.5: "the current date/time MUST be after or equal to the not-before"
    if let Some(nbf) = numeric_date(&claims, "nbf")? {
        if now.saturating_add(leeway) < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    // RFC 7519 §4.1.6 only says when a token was issued; one issued in the future is refused
    // like an early `nbf`
    if let Some(iat) = numeric_date(&claims, "iat")? {
        if now.saturating_add(leeway) < iat {
            return Err(JwtError::NotYetValid);
        }
    }
    // RFC 7519 §4.1.1: compared as case-sensitive strings, exactly
    if claims.get("iss").and_then(Value::as_str) != Some(rules.issuer) {
        return Err(JwtError::Issuer);
    }
    let wanted = |s: &str| rules.audience.iter().any(|a| a == s);
    // RFC 7519 §4.1.3: a string or an array of strings, one of which must identify us; without
    // `aud`, API Gateway takes `client_id` (OAuth access tokens)
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => wanted(a),
        Some(Value::Array(list)) => {
            let mut ok = false;
            for a in list {
                let a = a
                    .as_str()
                    .ok_or(JwtError::Malformed("aud holds a non-string"))?;
                ok |= wanted(a);
            }
            ok
        }
        Some(_) => return Err(JwtError::Malformed("aud is neither a string nor a list")),
        None => claims
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(wanted),
    };
    if !audience_ok {
        return Err(JwtError::Audience);
    }
    let scopes = scopes(&claims)?;
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .map(Box::from)
        .unwrap_or_default();
    Ok(Verified {
        claims,
        scopes,
        subject,
        expires: exp,
    })
}

/// `scope` (RFC 8693 §4.2, RFC 9068 §2.2.3: space-separated) or else `scp` (a list of
/// strings, or a space-separated string as some providers send).
fn scopes(claims: &JsonObject) -> Result<Vec<Box<str>>, JwtError> {
    use serde_json::Value;
    let split = |s: &str| s.split_ascii_whitespace().map(Box::from).collect();
    match claims.get("scope").or_else(|| claims.get("scp")) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(split(s)),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(Box::from))
            .collect::<Option<Vec<_>>>()
            .ok_or(JwtError::Malformed("scp holds a non-string")),
        Some(_) => Err(JwtError::Malformed("scope is neither a string nor a list")),
    }
}

/// Whether `scopes` holds one of `needed` (an empty `needed` needs none).
pub fn has_scope(scopes: &[Box<str>], needed: &[String]) -> bool {
    needed.is_empty() || needed.iter().any(|n| scopes.iter().any(|s| **s == **n))
}

/// The token in an `Authorization` value: after `Bearer ` (scheme case-insensitive, RFC 9110
/// §11.1), or the whole value when it has no scheme (API Gateway accepts both).
pub fn bearer(value: &[u8]) -> Option<&str> {
    let v = std::str::from_utf8(value).ok()?.trim();
    let token = match v.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim_start(),
        Some(_) => return None,
        // `Bearer` alone is a scheme without its token (RFC 6750 §2.1), not a token
        None if v.eq_ignore_ascii_case("bearer") => return None,
        None => v,
    };
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
pub(crate) mod tests;
