//! Configuration, loaded in stages: TOML text → [`raw`] serde structs (unknown keys rejected;
//! [`recover`] collects every structural error, not just serde's first) → [`compile`]
//! (validation of meaning, collecting every error) → an immutable [`Config`]. All errors of a
//! file come back together, sorted by line and column.
//!
//! Owns: reading the file, the embedded demo config used when no `-c` is given, and error
//! reporting with the key and the line of each problem. Leaves out: applying a config to running
//! workers (see [`crate::server`]); a reload simply builds a new `Config` through the same stages.

pub mod access;
#[cfg(test)]
mod access_tests;
mod api_mapping;
pub mod api_sources;
pub mod apis;
pub mod arn;
pub mod auth;
mod auth_iam;
pub mod auth_jwt;
#[cfg(test)]
mod auth_jwt_tests;
mod auth_request;
pub mod bodies;
mod canary;
#[cfg(test)]
mod check_tests;
pub mod compile;
pub mod compression;
pub mod deploy;
pub mod effective;
mod forwarding;
pub mod functions;
#[cfg(test)]
mod functions_tests;
pub mod gateway_responses;
pub mod http2;
mod limits;
pub mod mapping;
mod mock;
pub mod raw;
mod raw_apis;
mod raw_auth;
mod raw_functions;
mod raw_targets;
mod raw_tls;
mod recover;
mod relocate;
mod remote_functions;
pub mod resolve;
mod shifted;
mod spanned;
#[cfg(test)]
mod targets_tests;
pub mod templates;
#[cfg(test)]
mod throttle_by_tests;
mod tls;
#[cfg(test)]
mod tls_tests;
pub mod transform;
pub mod types;
mod upstreams;
pub mod validation;

use std::cell::RefCell;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use access::{AccessConfig, AdminAuth, CorsPolicy, IpRules};
pub use auth::{AuthorizerConfig, AuthorizerKind};
pub use compile::{Config, Integration, MockResponse, RouteConfig, ServerConfig, UpstreamConfig};
pub use forwarding::{BodyPolicy, Forwarding, WebSocket};
pub use functions::{
    FunctionConfig, FunctionKind, LambdaRoute, LocalFunction, PayloadFormat, RemoteFunction, RunAs,
};
pub use types::AdminLimits;
pub use upstreams::{Balance, CheckSpec};

/// The demo configuration compiled into the binary (same text as `config/tollgate.toml`).
pub const EMBEDDED_CONFIG: &str = include_str!("../../config/tollgate.toml");

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line, 0 when the problem has no location (e.g. an unreadable file).
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `route[2].upstream`.
    pub key: String,
    pub message: String,
    /// The file the problem is in when it is not the config file itself (an API's `routes`
    /// or `openapi` file, relative as the config names it).
    pub file: Option<String>,
}

impl ConfigError {
    /// An error located at byte range `span` of `text`.
    pub fn at(text: &str, span: Range<usize>, key: String, message: String) -> Self {
        let (line, column) = line_col(text, span.start);
        ConfigError {
            line,
            column,
            key,
            message,
            file: None,
        }
    }
}

/// Every problem found in a config, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Formats each error as `origin:line:column: key: message`, one per line.
    pub fn render(&self, origin: &str) -> String {
        let mut out = String::new();
        for e in &self.0 {
            let origin = e.file.as_deref().unwrap_or(origin);
            if e.line == 0 {
                out.push_str(&format!("{origin}: {}: {}\n", e.key, e.message));
            } else {
                out.push_str(&format!(
                    "{origin}:{}:{}: {}: {}\n",
                    e.line, e.column, e.key, e.message
                ));
            }
        }
        out
    }
}

/// Formats warnings as `origin:line:column: warning: key: message`, one per line (the error
/// format with `warning:` before the key, as compilers print them).
pub fn render_warnings(warnings: &[ConfigError], origin: &str) -> String {
    let mut out = String::new();
    for w in warnings {
        let origin = w.file.as_deref().unwrap_or(origin);
        if w.line == 0 {
            out.push_str(&format!("{origin}: warning: {}: {}\n", w.key, w.message));
        } else {
            out.push_str(&format!(
                "{origin}:{}:{}: warning: {}: {}\n",
                w.line, w.column, w.key, w.message
            ));
        }
    }
    out
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render("config").trim_end())
    }
}

impl std::error::Error for ConfigErrors {}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.as_bytes().get(..offset).unwrap_or_default();
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

/// Parses and compiles config text. Errors carry key and line, every one of them: structural
/// errors (types, unknown or missing keys) and, when the structure could be recovered, the
/// semantic ones, sorted by line then column.
pub fn from_str(text: &str) -> Result<Config, ConfigErrors> {
    let mut rec = recover::parse(text);
    let mut errors = std::mem::take(&mut rec.errors);
    if let (Some(raw), true) = (rec.raw.take(), rec.complete) {
        match compile::compile(raw, text) {
            Ok(mut cfg) if errors.is_empty() => {
                relocate::relocate(text, &mut cfg.warnings);
                return Ok(cfg);
            }
            Ok(_) => {}
            // indices as in the file (whole [[table]] elements set aside shift later ones);
            // an error about an entry recovery set aside repeats one already reported
            Err(e) => errors.extend(
                e.0.into_iter()
                    .filter_map(|e| shifted::restore(e, &rec.removed))
                    .filter(|e| !rec.is_blanked(&e.key)),
            ),
        }
    }
    if errors.is_empty() {
        errors.push(ConfigError {
            line: 1,
            column: 1,
            key: "toml".to_string(),
            message: "cannot be read as a tollgate config".to_string(),
            file: None,
        });
    }
    relocate::relocate(text, &mut errors);
    errors.sort_by_key(|e| (e.line, e.column));
    Err(ConfigErrors(errors))
}

thread_local! {
    /// The directory relative file paths of the config being compiled on this thread resolve
    /// against (see [`in_dir`]).
    static BASE_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Runs `f` (which compiles a config) with relative file paths (certificates, keys, CAs)
/// resolving against `dir`, the config file's directory; `None`: the working directory.
pub fn in_dir<R>(dir: Option<&Path>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<PathBuf>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            BASE_DIR.with(|b| *b.borrow_mut() = prev);
        }
    }
    let prev = BASE_DIR.with(|b| b.replace(dir.map(Path::to_path_buf)));
    let _restore = Restore(prev);
    f()
}

/// The directory relative file paths resolve against now (see [`in_dir`]).
fn base_dir() -> Option<PathBuf> {
    BASE_DIR.with(|b| b.borrow().clone())
}

/// Like [`from_str`], with relative file paths resolved against `dir` (as [`load`] does with
/// the config file's directory).
pub fn from_str_in(text: &str, dir: &Path) -> Result<Config, ConfigErrors> {
    in_dir(Some(dir), || from_str(text))
}

/// Like [`from_str`], with upstream host names looked up by `resolver`.
pub fn from_str_with(
    text: &str,
    resolver: std::sync::Arc<dyn resolve::Resolver>,
) -> Result<Config, ConfigErrors> {
    resolve::with_resolver(resolver, || from_str(text))
}

/// Reads and compiles a config file; the error text is ready to print.
pub fn load(path: &Path) -> Result<Config, String> {
    // same shape as every other error (`FILE:LINE:COL: key: message`) so tools can parse it
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{}:1:1: file: cannot read: {e}\n", path.display()))?;
    // TOML is UTF-8 (toml.io, "Spec"): point at the first byte that is not
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or_default();
        let (line, col) = line_col(&String::from_utf8_lossy(good), usize::MAX);
        let byte = e.as_bytes().get(good.len()).copied().unwrap_or(0);
        format!(
            "{}:{line}:{col}: file: not UTF-8 text (byte 0x{byte:02x}); TOML files are UTF-8\n",
            path.display()
        )
    })?;
    // relative certificate and key paths are the config file's neighbours
    in_dir(path.parent(), || from_str(&text)).map_err(|e| e.render(&path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_config_compiles() {
        let c = from_str(EMBEDDED_CONFIG).expect("embedded config must be valid");
        assert!(!c.routes.is_empty());
    }

    #[test]
    fn minimal_issue_config_compiles() {
        let text = r#"
[server]
listen = ["127.0.0.1:8080"]
workers = 0
pin_cores = false

[[upstream]]
name = "pets"
targets = ["127.0.0.1:9000"]
connect_timeout_ms = 500
response_timeout_ms = 1000

[[route]]
key = "GET /pets/{id}"
upstream = "pets"
path = "/v1/pets/{id}"

[[route]]
key = "ANY /api/{proxy+}"
upstream = "pets"

[[route]]
key = "GET /hello"
mock = { status = 200, body = "hi", headers = { "content-type" = "text/plain" } }
"#;
        let c = from_str(text).unwrap();
        assert_eq!(c.routes.len(), 3);
        assert!(c.server.workers >= 1);
        assert_eq!(c.upstreams[0].response_timeout.as_millis(), 1000);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = "[server]\nlisten = [\"127.0.0.1:1\"]\nworkerz = 2\n[[route]]\nkey = \"GET /\"\nmock = {}\n";
        let e = from_str(text).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].line, 3);
        assert_eq!(e.0[0].key, "server.workerz");
    }

    #[test]
    fn semantic_errors_are_all_reported_with_lines() {
        let text = r#"[[upstream]]
name = "a"
targets = ["127.0.0.1:1"]

[[route]]
key = "GET /x"
upstream = "nope"

[[route]]
key = "GET /y/{id}"
upstream = "a"
path = "/v1/{other}"

[[route]]
key = "GET /z"
"#;
        let e = from_str(text).unwrap_err();
        let keys: Vec<_> = e.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(
            keys,
            vec![
                ("route[0].upstream", 7),
                ("route[1].path", 12),
                ("route[2]", 15)
            ]
        );
    }

    #[test]
    fn conflicting_routes_name_both() {
        let text = "[[route]]\nkey = \"GET /p/{id}\"\nmock = {}\n[[route]]\nkey = \"GET /p/{x}\"\nmock = {}\n";
        let e = from_str(text).unwrap_err();
        let msg = e.render("t.toml");
        assert!(
            msg.contains("GET /p/{id}") && msg.contains("GET /p/{x}"),
            "{msg}"
        );
        assert!(msg.starts_with("t.toml:"), "{msg}");
    }

    #[test]
    fn mock_reserved_header_rejected() {
        let text =
            "[[route]]\nkey = \"GET /p\"\nmock = { headers = { \"content-length\" = \"3\" } }\n";
        let e = from_str(text).unwrap_err();
        assert_eq!(e.0[0].key, "route[0].mock.headers");
        assert_eq!(e.0[0].line, 3);
    }
}
