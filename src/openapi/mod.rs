//! OpenAPI definitions with API Gateway's extensions ⇄ an API's file (placeholder until the
//! converter lands: every definition is refused with a clear error).

/// A part of a definition tollgate does not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// RFC 6901 JSON pointer.
    pub pointer: String,
    pub what: String,
}

/// A definition converted to an API file.
#[derive(Debug, Clone)]
pub struct Imported {
    pub toml: String,
    pub unsupported: Vec<Unsupported>,
    pub routes: Vec<String>,
}

/// Why a definition could not be converted.
#[derive(Debug, Clone)]
pub struct ImportError {
    pub pointer: String,
    pub message: String,
}

/// Converts an OpenAPI definition.
pub fn import(_text: &str) -> Result<Imported, ImportError> {
    Err(ImportError {
        pointer: String::new(),
        message: "OpenAPI import is not available in this build".into(),
    })
}
