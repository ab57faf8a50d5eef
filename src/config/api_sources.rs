//! Reading the files APIs name (`routes = "apis/pets.toml"`, `openapi = "apis/pets.yaml"`) and
//! placing errors in them.
//!
//! Owns: reading each API's file (relative to the config file's directory), parsing it into a
//! [`RawApiFile`] (an OpenAPI definition through [`crate::openapi::import`] first), and the
//! *virtual text* compilation runs on: the config text followed by every API file's TOML, so
//! that a span in any of them is a place in one text and every existing check reports its line
//! as usual. [`Sources::place`] then turns a line in the virtual text back into the file and
//! its own line. Leaves out: what the routes mean (see [`super::apis`]).
//!
//! How a file's spans land in the virtual text: its TOML is parsed after a prefix of spaces and
//! newlines as long as everything before it (newlines where the text before has them), so the
//! parser's byte offsets are already the virtual text's.

use std::path::Path;

use super::raw::{RawApiFile, RawConfig};
use super::ConfigError;

/// Where one API file sits in the virtual text.
#[derive(Debug)]
struct Placed {
    /// As the config names it (`apis/pets.toml`).
    name: String,
    /// Its first line in the virtual text (1-based).
    first_line: usize,
    /// Lines mean something to the operator: `false` for an OpenAPI definition, whose TOML
    /// was generated (its errors name the operation's JSON pointer instead).
    lines: bool,
}

/// What an `[[api]]` takes its routes from, read.
#[derive(Debug)]
pub(super) enum ApiBody {
    /// Inline `[[api.route]]` (or none).
    Inline,
    /// A routes file or an OpenAPI definition, parsed; `None` when it could not be (the error
    /// is in [`Sources::errors`]).
    File(Option<Box<RawApiFile>>, Origin),
}

/// Where a file-based API came from.
#[derive(Debug, Clone)]
pub(super) enum Origin {
    Toml,
    /// An OpenAPI definition: the JSON pointer of the operation each route came from, and the
    /// parts tollgate does not understand.
    OpenApi {
        pointers: Vec<String>,
        unsupported: Vec<crate::openapi::Unsupported>,
    },
}

/// The virtual text and every API's body.
#[derive(Debug)]
pub(super) struct Sources {
    pub text: String,
    files: Vec<Placed>,
    /// `apis[i]` is `raw.api[i]`'s.
    pub apis: Vec<ApiBody>,
    /// Files that could not be read or parsed, placed in their files.
    pub errors: Vec<ConfigError>,
}

impl Sources {
    /// Reads the files `raw.api` names (relative paths against `base`).
    pub(super) fn read(raw: &RawConfig, text: &str, base: Option<&Path>) -> Sources {
        let mut s = Sources {
            text: text.to_string(),
            files: Vec::new(),
            apis: Vec::with_capacity(raw.api.len()),
            errors: Vec::new(),
        };
        for (i, api) in raw.api.iter().enumerate() {
            let (path, openapi) = match (&api.routes, &api.openapi) {
                (Some(p), None) => (p, false),
                (None, Some(p)) => (p, true),
                _ => {
                    // none or both: refused by `apis::expand`, naming the keys
                    s.apis.push(ApiBody::Inline);
                    continue;
                }
            };
            let name = path.get_ref().clone();
            let full = match base {
                Some(b) => b.join(&name),
                None => Path::new(&name).to_path_buf(),
            };
            let key = format!("api[{i}].{}", if openapi { "openapi" } else { "routes" });
            let body = match std::fs::read_to_string(&full) {
                Err(e) => {
                    let m = format!("cannot read {}: {e}", full.display());
                    s.errors
                        .push(ConfigError::at(text, path.span(), key.clone(), m));
                    None
                }
                Ok(file) if openapi => match crate::openapi::import(&file) {
                    Ok(imp) => {
                        let origin = Origin::OpenApi {
                            pointers: imp.routes,
                            unsupported: imp.unsupported,
                        };
                        s.add(&name, &imp.toml, origin)
                    }
                    Err(e) => {
                        s.errors.push(ConfigError {
                            line: 0,
                            column: 0,
                            key: if e.pointer.is_empty() {
                                "openapi".into()
                            } else {
                                e.pointer
                            },
                            message: e.message,
                            file: Some(name),
                        });
                        None
                    }
                },
                Ok(file) => s.add(&name, &file, Origin::Toml),
            };
            s.apis.push(match body {
                Some((f, o)) => ApiBody::File(Some(Box::new(f)), o),
                None => ApiBody::File(None, Origin::Toml),
            });
        }
        s
    }

    /// Appends `file` to the virtual text and parses it there.
    fn add(&mut self, name: &str, file: &str, origin: Origin) -> Option<(RawApiFile, Origin)> {
        self.text.push('\n');
        let start = self.text.len();
        let first_line = self.text.bytes().filter(|&b| b == b'\n').count() + 1;
        // spaces and newlines as long as everything before: offsets become the virtual text's
        let mut padded: String = self
            .text
            .bytes()
            .map(|b| if b == b'\n' { '\n' } else { ' ' })
            .collect();
        padded.push_str(file);
        self.text.push_str(file);
        self.files.push(Placed {
            name: name.to_string(),
            first_line,
            lines: matches!(origin, Origin::Toml),
        });
        match toml::from_str::<RawApiFile>(&padded) {
            Ok(f) => Some((f, origin)),
            Err(e) => {
                let span = e.span().unwrap_or(start..start);
                let msg = e.message().lines().map(str::trim).collect::<Vec<_>>();
                let mut err = ConfigError::at(&self.text, span, "toml".into(), msg.join("; "));
                self.place(&mut err);
                self.errors.push(err);
                None
            }
        }
    }

    /// Puts `e` (a line of the virtual text) in its file, with the file's own line.
    pub(super) fn place(&self, e: &mut ConfigError) {
        if e.file.is_some() {
            return;
        }
        if let Some(f) = self.files.iter().rev().find(|f| e.line >= f.first_line) {
            e.line = e.line + 1 - f.first_line;
            e.file = Some(f.name.clone());
            if !f.lines {
                (e.line, e.column) = (0, 0);
            }
        }
    }
}

/// The API `name` of the config `text` (relative files against `dir`) as one API file: its
/// routes file, its OpenAPI definition converted, or its inline routes (for
/// `tollgate export`).
pub fn api_file(text: &str, dir: Option<&Path>, name: &str) -> Result<RawApiFile, String> {
    let raw: RawConfig = super::raw::parse(text).map_err(|e| e.message().to_string())?;
    let names: Vec<&str> = raw.api.iter().map(|a| a.name.get_ref().as_str()).collect();
    let i = names.iter().position(|n| *n == name).ok_or_else(|| {
        format!(
            "no [[api]] named {name:?} (the config has: {})",
            names.join(", ")
        )
    })?;
    let api = raw.api.into_iter().nth(i).ok_or("no such API")?;
    let read = |p: &str| {
        let full = dir.map_or_else(|| Path::new(p).to_path_buf(), |d| d.join(p));
        std::fs::read_to_string(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
    };
    let toml_text = match (&api.routes, &api.openapi) {
        (Some(p), _) => read(p.get_ref())?,
        (None, Some(p)) => {
            let imported = crate::openapi::import(&read(p.get_ref())?)
                .map_err(|e| format!("{}: {} {}", p.get_ref(), e.pointer, e.message))?;
            imported.toml
        }
        (None, None) => {
            return Ok(RawApiFile {
                route: api.route,
                cors: api.cors,
                ..RawApiFile::default()
            })
        }
    };
    toml::from_str(&toml_text).map_err(|e| e.message().to_string())
}
