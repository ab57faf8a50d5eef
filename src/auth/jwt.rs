//! JSON Web Tokens (RFC 7519) signed with JWS (RFC 7515), verified against a key set: sans-IO.
//!
//! Owns: taking a token apart, refusing what API Gateway refuses (`alg` `none`, an `alg` other
//! than its key's, HMAC with a public key, unknown `crit` headers: RFC 7515 §4.1.11), the
//! signature (RS256/384/512, PS256, ES256/384, EdDSA, through `jsonwebtoken` on ring), and the
//! claims (`exp`/`nbf`/`iat` with leeway, `iss`, `aud` or `client_id`, scopes from `scope` or
//! `scp`). Leaves out: where keys come from (see [`super::keys`]), caching (see
//! [`super::token_cache`]), statuses (see [`super::jwt_authorizer`]).

use super::jwks::KeySet;
use super::JsonObject;

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

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// No key in the set has the token's `kid` (the key set may be refetched).
    #[error("no key for kid {0:?}")]
    UnknownKid(String),
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

/// Verifies `token` (compact JWS) with `keys` at `now` (Unix seconds).
pub fn verify(
    token: &str,
    keys: &KeySet,
    rules: &Rules<'_>,
    now: u64,
) -> Result<Verified, JwtError> {
    let _ = (token, keys, rules, now);
    Err(JwtError::Malformed("not built yet"))
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
        None => v,
    };
    (!token.is_empty()).then_some(token)
}
