//! The TOML schema of the security settings: `[[authorizer]]` (with `[[authorizer.credential]]`),
//! `[cors]`, and the route's, server's and admin's security keys.
//!
//! Owns: the serde structs as an operator writes them, part of [`super::raw`] (which re-exports
//! them) kept apart so the schema file stays small. Every key of `[[authorizer]]` is optional
//! here whatever its `type`, so that a key of another type (`jwks_uri` on a `request`
//! authorizer) reaches [`super::auth`], which refuses it naming the key and its line, and so
//! that the effective config (`GET /config`) shows only the keys that were written. Defaults
//! are named constants in [`super::auth`]. Leaves out: meaning (see [`super::auth`]).

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[[authorizer]]`: `type = "jwt" | "request" | "aws_iam"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorizer {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,

    // ---- jwt ----
    /// `iss` must equal it; also where OIDC discovery starts when `jwks_uri` is absent.
    pub issuer: Option<Spanned<String>>,
    /// `aud` (or `client_id`) must contain one of them.
    pub audience: Option<Spanned<Vec<Spanned<String>>>>,
    /// Where the signing keys are (default: OIDC discovery from `issuer`).
    pub jwks_uri: Option<Spanned<String>>,
    /// Where the token is (default `$request.header.Authorization`, `Bearer ` stripped).
    pub identity_source: Option<Spanned<String>>,
    /// Clock skew allowed on `exp` / `nbf` / `iat`, seconds (default 0).
    pub leeway_s: Option<Spanned<u64>>,
    /// How often each worker fetches the key set again in the background, seconds.
    pub jwks_refresh_s: Option<Spanned<u64>>,
    /// Verified tokens each worker keeps (until their expiry).
    pub token_cache_entries: Option<Spanned<usize>>,
    /// Bytes of verified tokens (and their claims) each worker keeps.
    pub token_cache_bytes: Option<Spanned<usize>>,

    // ---- request ----
    /// A `[[function]]` (local or remote) to invoke with the authorizer payload...
    pub function: Option<Spanned<String>>,
    /// ...or an HTTP endpoint that gets the same JSON payload.
    pub url: Option<Spanned<String>>,
    /// `"2.0"` (default) or `"1.0"`.
    pub payload_format: Option<Spanned<String>>,
    /// `{"isAuthorized": bool, "context": {...}}` (payload 2.0 only); false: an IAM policy.
    pub simple_responses: Option<Spanned<bool>>,
    /// `$request.header.NAME`, `$request.querystring.NAME`, `$context.NAME`, `$stageVariables.NAME`.
    pub identity_sources: Option<Spanned<Vec<Spanned<String>>>>,
    /// Result cache lifetime, seconds (0 = off; default 300, AWS's).
    pub ttl_s: Option<Spanned<u64>>,
    /// Longest wait for the authorizer's answer (default 10000).
    pub timeout_ms: Option<Spanned<u64>>,
    /// Results each worker caches at most.
    pub cache_entries: Option<Spanned<usize>>,
    /// Most bytes of answers the cache keeps, per worker and again process-wide (default
    /// 16 MiB).
    pub cache_bytes: Option<Spanned<usize>>,

    // ---- aws_iam ----
    /// The SigV4 credential scope's region.
    pub region: Option<Spanned<String>>,
    /// The SigV4 credential scope's service (default `execute-api`).
    pub service: Option<Spanned<String>>,
    /// Largest request body read to check its payload hash, bytes (default 10 MiB, API
    /// Gateway's payload limit).
    pub max_body_bytes: Option<Spanned<usize>>,
    /// Most bytes of not yet verified bodies read at once on one worker, to hash them
    /// (default 64 MiB); beyond it a request is refused with 503.
    pub unverified_body_budget_bytes: Option<Spanned<usize>>,
    /// Longest whole read of a not yet verified body, milliseconds (default 30 s); beyond it
    /// the request is refused with 408.
    pub unverified_body_timeout_ms: Option<Spanned<u64>>,
    /// The principals that may sign requests.
    #[serde(default)]
    pub credential: Vec<RawCredential>,
}

/// `[[authorizer.credential]]` of an `aws_iam` authorizer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    pub access_key_id: Spanned<String>,
    /// The environment variable holding the secret access key (the secret never sits in the
    /// file).
    pub secret_env: Spanned<String>,
    /// The environment variable holding the session token that requests signed with temporary
    /// credentials carry (`x-amz-security-token`).
    pub session_token_env: Option<Spanned<String>>,
    /// The principal's ARN (`$context.identity.userArn`).
    pub principal: Spanned<String>,
    /// Route keys this principal may call: `"GET /pets/*"`, `"POST /orders"`, `"*"`; `*` matches
    /// any run of characters.
    pub allow: Spanned<Vec<Spanned<String>>>,
}

/// `[cors]`, and a route's `cors = { ... }` override.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// `"https://app.example.com"`, `"https://*.example.com"`, or `"*"`.
    #[serde(default = "d_list")]
    pub allow_origins: Spanned<Vec<Spanned<String>>>,
    /// Methods, or `"*"`.
    #[serde(default = "d_list")]
    pub allow_methods: Spanned<Vec<Spanned<String>>>,
    /// Request field names, or `"*"`.
    #[serde(default = "d_list")]
    pub allow_headers: Spanned<Vec<Spanned<String>>>,
    /// Response field names the browser may read.
    #[serde(default = "d_list")]
    pub expose_headers: Spanned<Vec<Spanned<String>>>,
    /// Seconds a browser may cache a preflight's answer.
    pub max_age: Option<Spanned<u64>>,
    #[serde(default = "d_false")]
    pub allow_credentials: Spanned<bool>,
}

fn d_list() -> Spanned<Vec<Spanned<String>>> {
    Spanned::new(0..0, Vec::new())
}

fn d_false() -> Spanned<bool> {
    Spanned::new(0..0, false)
}

/// A route's `cors`: `false` turns the global `[cors]` off for the route, a table replaces it.
/// (Deserialised by hand, on the value's type: serde's `untagged` buffers the value, which
/// loses the spans `RawCors` keeps for its errors.)
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RawRouteCors {
    Enabled(bool),
    Policy(Box<RawCors>),
}

impl<'de> Deserialize<'de> for RawRouteCors {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawRouteCors;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("false, true or a table of CORS settings")
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawRouteCors, E> {
                Ok(RawRouteCors::Enabled(v))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawRouteCors, A::Error> {
                let d = serde::de::value::MapAccessDeserializer::new(map);
                RawCors::deserialize(d).map(|c| RawRouteCors::Policy(Box::new(c)))
            }
        }
        d.deserialize_any(V)
    }
}
