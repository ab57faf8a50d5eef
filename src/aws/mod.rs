//! AWS protocol pieces shared by integrations and authorizers: credentials and Signature
//! Version 4 ([`sigv4`]).
//!
//! Owns: [`Credentials`] (from the environment, never printed) and SigV4 in [`sigv4`]: signing
//! an outgoing request ([`sigv4::sign`] gives the `authorization`, `x-amz-date` and
//! `x-amz-security-token` fields to add) and verifying an incoming one ([`sigv4::verify`]
//! recomputes the signature over exactly the fields its `SignedHeaders` lists; [`presigned`]
//! verifies the query-string form). Leaves out:
//! sending requests (see `crate::client`), deciding what to sign (the Lambda integration signs
//! its Invoke calls; the authorizers issue verifies incoming requests with the same module)
//! and where a verifier's keys come from (a lookup closure). Nothing here imports the server
//! side, config or the runtime (tests/architecture.rs): a request goes in as method, path,
//! query, fields and body, text or a verdict comes out, no clock is read and no I/O is done,
//! so a worker may call it per request (a handful of SHA-256 and HMAC computations over the
//! request, on `ring`).

pub mod presigned;
pub mod sigv4;
mod sigv4_canonical;
mod sigv4_parse;

/// AWS credentials. `Debug` never prints the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (both non-empty), with
    /// `AWS_SESSION_TOKEN` when set; `None` without a key pair.
    pub fn from_env() -> Option<Credentials> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(Credentials {
            access_key_id: get("AWS_ACCESS_KEY_ID")?,
            secret_access_key: get("AWS_SECRET_ACCESS_KEY")?,
            session_token: get("AWS_SESSION_TOKEN"),
        })
    }
}
