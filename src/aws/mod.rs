//! AWS protocol pieces shared by integrations and authorizers: credentials and Signature
//! Version 4 ([`sigv4`]).
//!
//! Owns: [`Credentials`] (from the environment, never printed) and the SigV4 signing and
//! verification in [`sigv4`]. Leaves out: sending requests (see `crate::client`) and deciding
//! what to sign (the Lambda integration signs its Invoke calls; the authorizers issue verifies
//! incoming requests with the same module).

pub mod sigv4;

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
