//! OpenAPI import and export: API Gateway definitions (OpenAPI 3.0 / 3.1 and Swagger 2.0, YAML
//! or JSON, with the `x-amazon-apigateway-*` extensions) ⇄ an API file (the TOML of
//! [`RawApiFile`]: `[[route]]`, `[[authorizer]]`, `[[model]]`, `[[gateway_response]]`, `[cors]`).
//!
//! Owns: reading a definition ([`parse`]: text → JSON value, `$ref`s, pointers), mapping each
//! operation and extension to the API file's keys ([`import`]'s driver in `paths`, with
//! [`integration`], [`security`], [`models`]), the report of what has no equivalent
//! ([`Unsupported`], each with its RFC 6901 pointer: nothing that changes behaviour on AWS is
//! dropped without a word), writing the TOML ([`toml_out`]), and the way back ([`export`]: an
//! API file → OpenAPI 3.0 with the same extensions, tollgate-only keys under `x-tollgate`).
//! Leaves out: what the keys mean and whether their values are valid (the config's compile
//! stage, which checks an imported API as any API file), stages, stage variables (kept as
//! written, `${stageVariables.NAME}`, and substituted at load) and where an API is served.
//! Documentation-only parts (info, descriptions, tags, examples, response schemas, other
//! vendors' `x-` extensions) are ignored without a report.
//!
//! Data flow: text → [`parse::parse`] (a `serde_json::Value`) → the driver walks `paths`,
//! building the API file as a JSON map (one object per `[[route]]`, ...) and the report →
//! [`toml_out::write`] → TOML text, checked to parse as [`RawApiFile`] before it is returned.
//! Export: [`RawApiFile`] → its JSON form (serde) → an OpenAPI document.

mod api;
mod export;
mod export_api;
mod integration;
mod mock;
mod models;
mod parse;
mod paths;
mod security;
mod toml_out;

use std::fmt;

use serde_json::Value;

use crate::config::raw::RawApiFile;

pub use export::export;

/// What [`import`] made of a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The API file: TOML that parses as [`RawApiFile`].
    pub toml: String,
    /// Everything in the definition that tollgate cannot do as API Gateway would.
    pub unsupported: Vec<Unsupported>,
    /// The JSON pointer of the operation each `[[route]]` came from, in order.
    pub routes: Vec<String>,
}

/// One part of a definition tollgate does not run as API Gateway would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// RFC 6901 pointer: `/paths/~1pets/get/x-amazon-apigateway-integration/contentHandling`.
    pub pointer: String,
    /// What it is and what tollgate does instead.
    pub what: String,
}

/// A definition that cannot be read at all (not YAML or JSON, not OpenAPI, a value of the
/// wrong type where the structure needs one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// RFC 6901 pointer to the offending value (`""`: the document).
    pub pointer: String,
    pub message: String,
}

impl ImportError {
    pub(crate) fn new(pointer: &str, message: impl Into<String>) -> Self {
        ImportError {
            pointer: pointer.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

impl std::error::Error for ImportError {}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.what)
    }
}

/// Reads an OpenAPI 3.0 / 3.1 or Swagger 2.0 definition (YAML or JSON) into an API file.
pub fn import(text: &str) -> Result<Imported, ImportError> {
    let root = parse::parse(text)?;
    let mut imported = paths::import(&root.value)?;
    let mut early = root.unsupported;
    early.append(&mut imported.unsupported);
    imported.unsupported = early;
    // what is written must be what the config reads: a mapping that produced a key of the
    // wrong shape is a bug, reported as an error rather than a file that does not load
    if let Err(e) = toml::from_str::<RawApiFile>(&imported.toml) {
        return Err(ImportError::new(
            "",
            format!("internal error: the API file written does not parse: {e}"),
        ));
    }
    Ok(imported)
}

/// A document as YAML (what `tollgate export` prints); JSON, which is YAML too, if the YAML
/// writer refuses it.
pub fn to_yaml(value: &Value) -> String {
    match yaml_serde::to_string(value) {
        Ok(s) => s,
        Err(_) => serde_json::to_string_pretty(value).unwrap_or_default(),
    }
}

/// `a/b~c` → `a~1b~0c` (RFC 6901 §3).
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `ptr` + `/token`.
pub(crate) fn child(ptr: &str, token: &str) -> String {
    format!("{ptr}/{}", escape(token))
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod import_tests;

#[cfg(test)]
#[path = "roundtrip_tests.rs"]
mod roundtrip_tests;
