//! The TOML schema of `[[function]]` and a route's `function` / `payload_format`.
//!
//! Owns: the serde struct of one `[[function]]` as an operator writes it, part of
//! [`super::raw`] (which re-exports it) kept apart so the schema file stays small. Every key is
//! optional here, so that a key of the other kind of function (`arn` beside `command`,
//! `concurrency` on a remote one) reaches [`super::functions`], which refuses it naming the key
//! and its line, and so that the effective config (`GET /config`) shows only the keys of the
//! function's kind; the defaults are named constants in [`super::functions`]. Leaves out:
//! meaning (see [`super::functions`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[[function]]`: a local function (`command`) or a remote one (`arn`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFunction {
    pub name: Spanned<String>,
    /// Local: argv of the process tollgate runs (`command[0]` looked up in `PATH`).
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    /// Remote: `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
    pub arn: Option<Spanned<String>>,
    /// Remote: where the Invoke API is (default `https://lambda.REGION.amazonaws.com`).
    pub endpoint: Option<Spanned<String>>,
    /// Per invocation, both kinds (default 3000).
    pub timeout_ms: Option<Spanned<u64>>,
    /// Local: working directory (default: the config file's directory).
    pub cwd: Option<Spanned<String>>,
    /// Local: the function's environment besides the Lambda variables.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub env: Option<Spanned<BTreeMap<String, String>>>,
    /// Local: processes at most.
    pub concurrency: Option<Spanned<u32>>,
    /// Local: an idle process is stopped after this long.
    pub idle_ms: Option<Spanned<u64>>,
    /// Local: invocations waiting for a free process.
    pub queue: Option<Spanned<u32>>,
    /// Local: `_HANDLER` (default: the last element of `command`).
    pub handler: Option<Spanned<String>>,
    /// Local: `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_mb: Option<Spanned<u32>>,
    /// Local: the user the processes run as when tollgate runs as root.
    pub user: Option<Spanned<String>>,
}
