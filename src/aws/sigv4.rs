//! AWS Signature Version 4: signing outgoing requests and verifying incoming ones.
//!
//! SKELETON (issue 11 contract): signatures are final; the sigv4 slice fills in the bodies.

use std::time::SystemTime;

use super::Credentials;

/// A request as SigV4 sees it. `path` is the absolute path as sent on the wire (already
/// percent-encoded), `query` the raw query without `?` (empty when none). `headers` are every
/// field to sign besides those the signer adds (`host` must be among them); names in any case.
pub struct SigningRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

/// Where a signature is valid: region and service (`lambda`).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// The fields a signature adds to the request: `authorization`, `x-amz-date`, and
/// `x-amz-security-token` with a session token, each (lower-case name, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub fields: Vec<(&'static str, String)>,
}

/// Why a request could not be signed or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("cannot sign: {0}")]
    Sign(String),
    #[error("malformed authorization: {0}")]
    Malformed(&'static str),
    #[error("unknown access key")]
    UnknownKey,
    #[error("request time too far from now")]
    Expired,
    #[error("signature does not match")]
    Mismatch,
}

/// Signs `req` for `scope` at `time` with `creds`.
pub fn sign(
    req: &SigningRequest<'_>,
    creds: &Credentials,
    scope: Scope<'_>,
    time: SystemTime,
) -> Result<Signed, SigV4Error> {
    let _ = (req, creds, scope, time);
    Err(SigV4Error::Sign("not built yet".into()))
}
