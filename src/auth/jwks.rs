//! JSON Web Key Sets (RFC 7517 §5), parsed into verification keys: sans-IO.
//!
//! Owns: turning a JWKS document into [`KeySet`]: RSA (RFC 7518 §6.3, at least 2048 bits),
//! EC P-256/P-384 (§6.2), Ed25519 (RFC 8037), each with its `kid` and `alg`; keys for
//! encryption (`use: enc`), of unknown types or curves, or too weak are skipped, not fatal.
//! Leaves out: fetching (see [`super::keys`]) and verifying (see [`super::jwt`]).

/// A parsed key set.
#[derive(Default)]
pub struct KeySet {
    pub(crate) keys: Vec<Key>,
}

/// One verification key.
pub struct Key {
    pub kid: Option<Box<str>>,
    pub alg: Option<jsonwebtoken::Algorithm>,
    pub key: jsonwebtoken::DecodingKey,
}

/// Why a key set document was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("key set is not JSON: {0}")]
    Json(String),
    #[error("key set has no \"keys\" array")]
    NoKeys,
    #[error("key set has no usable signing key")]
    NoUsableKey,
}

impl KeySet {
    /// Parses a JWKS document.
    pub fn parse(json: &[u8]) -> Result<KeySet, JwksError> {
        let _ = json;
        Err(JwksError::NoKeys)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
