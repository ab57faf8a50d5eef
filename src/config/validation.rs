//! Request validation, compiled: `[[model]]` (JSON Schema documents, draft 4 through 2020-12,
//! `$ref` within a file and to other models) and each route's `validate = { body = "MODEL",
//! required_headers = [...], required_querystrings = [...] }` (API Gateway REST API's models
//! and request validators).
//!
//! Owns: the raw tables ([`RawModel`], [`RawValidate`]), reading the schema files (relative
//! to the config file's directory, at most [`MAX_SCHEMA_BYTES`]) or inline schemas
//! (`schema_json`, exactly one of the two) and compiling them once at
//! load, every model with every other reachable by `$ref`. Every problem is an error naming
//! its key and line: an unreadable file, invalid JSON, an invalid schema or `$ref`, a bad or
//! duplicate model name, an unknown model, a header that is not a token, a duplicate
//! parameter, a `validate` with nothing to check. Leaves out: checking requests (see
//! [`crate::validate`]); the draft and `$ref` rules (see [`crate::validate::model`]).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use toml::Spanned;

use super::compile::{is_tchar, Ctx};
use super::raw::RawConfig;
use crate::validate::model::{Documents, Model};
use crate::validate::params::Required;
use crate::validate::RouteValidation;

/// Largest schema file read (a model is a document of rules, not data).
pub const MAX_SCHEMA_BYTES: u64 = 1024 * 1024;

/// Longest model name (API Gateway's models are named by short alphanumeric names).
pub const MAX_MODEL_NAME: usize = 128;

/// `[[model]] name = "NewOrder"; schema = "models/new-order.json"` (or the schema inline:
/// `schema_json = '''{...}'''`; exactly one of the two).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: Spanned<String>,
    /// A JSON Schema file, relative to the config file's directory.
    pub schema: Option<Spanned<String>>,
    /// The JSON Schema itself, as JSON text (what `tollgate import` writes for an OpenAPI
    /// definition's schemas).
    pub schema_json: Option<Spanned<String>>,
}

impl RawModel {
    /// Where the schema comes from: the key that gives it and its value (`None`: neither or
    /// both are set, which [`compile`] refuses).
    fn source(&self) -> Option<(&'static str, &Spanned<String>)> {
        match (&self.schema, &self.schema_json) {
            (Some(path), None) => Some(("schema", path)),
            (None, Some(json)) => Some(("schema_json", json)),
            _ => None,
        }
    }
}

/// `validate = { body, required_headers, required_querystrings }`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidate {
    /// A `[[model]]` the JSON body must satisfy.
    pub body: Option<Spanned<String>>,
    #[serde(default)]
    pub required_headers: Vec<Spanned<String>>,
    #[serde(default)]
    pub required_querystrings: Vec<Spanned<String>>,
}

/// Every route's validation, by route index (`None`: nothing to check).
#[derive(Debug, Default)]
pub struct ValidationConfig {
    /// The compiled models, by name.
    pub models: HashMap<String, Arc<Model>>,
    pub routes: Vec<Option<RouteValidation>>,
}

/// Compiles `[[model]]` and every route's `validate`.
pub(super) fn compile(raw: &RawConfig, cx: &mut Ctx<'_>) -> ValidationConfig {
    let docs = read_models(raw, cx);
    let all: Documents = Arc::new(
        docs.iter()
            .map(|(name, (_, doc))| (name.clone(), doc.clone()))
            .collect(),
    );
    let mut models = HashMap::with_capacity(docs.len());
    for (name, (i, doc)) in &docs {
        let Some((key, source)) = raw.model.get(*i).and_then(RawModel::source) else {
            continue;
        };
        match Model::compile(name, doc, &all) {
            Ok(c) => {
                models.insert(name.clone(), Arc::new(c));
            }
            Err(e) => {
                let msg = if key == "schema" {
                    format!("invalid JSON Schema in {:?}: {e}", source.get_ref())
                } else {
                    format!("invalid JSON Schema: {e}")
                };
                cx.err(source, format!("model[{i}].{key}"), msg);
            }
        }
    }
    // every model declared, read or not (a route naming one that failed is not told twice)
    let mut declared: Vec<&str> = raw
        .model
        .iter()
        .map(|m| m.name.get_ref().as_str())
        .filter(|n| check_model_name(n).is_ok())
        .collect();
    declared.sort_unstable();
    declared.dedup();
    let routes = raw
        .route
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let v = r.validate.as_ref()?;
            compile_route(i, v, &declared, &models, cx)
        })
        .collect();
    ValidationConfig { models, routes }
}

/// Every model's document by name, with its index (duplicates and unreadable files reported).
fn read_models(raw: &RawConfig, cx: &mut Ctx<'_>) -> HashMap<String, (usize, Json)> {
    let mut docs: HashMap<String, (usize, Json)> = HashMap::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, m) in raw.model.iter().enumerate() {
        let name = m.name.get_ref();
        if let Err(e) = check_model_name(name) {
            cx.err(&m.name, format!("model[{i}].name"), e);
            continue;
        }
        if let Some(first) = seen.insert(name, i) {
            let line = raw
                .model
                .get(first)
                .map_or(0, |f| super::line_col(cx.text(), f.name.span().start).0);
            let msg = format!("duplicate model {name:?} (model[{first}] at line {line})");
            cx.err(&m.name, format!("model[{i}].name"), msg);
            continue;
        }
        let read = match (&m.schema, &m.schema_json) {
            (Some(path), None) => {
                read_schema(cx.base(), path.get_ref()).map_err(|e| (path, "schema", e))
            }
            (None, Some(json)) => {
                inline_schema(json.get_ref()).map_err(|e| (json, "schema_json", e))
            }
            (Some(_), Some(json)) => Err((
                json,
                "schema_json",
                "set either schema (a file) or schema_json (the schema inline), not both".into(),
            )),
            (None, None) => {
                let msg = "needs schema (a JSON Schema file) or schema_json (the schema inline)";
                cx.err(&m.name, format!("model[{i}]"), msg);
                continue;
            }
        };
        match read {
            Ok(doc) => {
                docs.insert(name.clone(), (i, doc));
            }
            Err((at, key, e)) => cx.err(at, format!("model[{i}].{key}"), e),
        }
    }
    docs
}

/// A model name: 1 to [`MAX_MODEL_NAME`] letters, digits, `_` or `-`; an API's own model is
/// known as `API/NAME` (see [`super::deploy`]).
fn check_model_name(name: &str) -> Result<(), String> {
    let name = match name.split_once('/') {
        Some((api, own))
            if !api.is_empty()
                && api
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            own
        }
        _ => name,
    };
    let ok = !name.is_empty()
        && name.len() <= MAX_MODEL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a model name is 1 to {MAX_MODEL_NAME} letters, digits, '_' or '-'"
        ))
    }
}

/// Reads and parses the schema file `path` (relative to `base`).
fn read_schema(base: Option<&std::path::Path>, path: &str) -> Result<Json, String> {
    if path.is_empty() {
        return Err("must be a JSON Schema file path".to_owned());
    }
    let full = super::tls::resolve_path(base, path);
    let size = std::fs::metadata(&full)
        .map_err(|e| format!("cannot read {}: {e}", full.display()))?
        .len();
    if size > MAX_SCHEMA_BYTES {
        return Err(format!(
            "{} is {size} bytes, more than the {MAX_SCHEMA_BYTES} a schema may be",
            full.display()
        ));
    }
    let text = std::fs::read(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{} is not JSON: {e}", full.display()))
}

/// Parses an inline schema (`schema_json`), at most [`MAX_SCHEMA_BYTES`] as a file.
fn inline_schema(text: &str) -> Result<Json, String> {
    if text.len() as u64 > MAX_SCHEMA_BYTES {
        return Err(format!(
            "is {} bytes, more than the {MAX_SCHEMA_BYTES} a schema may be",
            text.len()
        ));
    }
    serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))
}

/// One route's `validate`.
fn compile_route(
    i: usize,
    v: &Spanned<RawValidate>,
    declared: &[&str],
    models: &HashMap<String, Arc<Model>>,
    cx: &mut Ctx<'_>,
) -> Option<RouteValidation> {
    let key = format!("route[{i}].validate");
    let raw = v.get_ref();
    if raw.body.is_none() && raw.required_headers.is_empty() && raw.required_querystrings.is_empty()
    {
        cx.err(
            v,
            key,
            "nothing to validate: set body, required_headers or required_querystrings",
        );
        return None;
    }
    let body = raw.body.as_ref().and_then(|b| {
        let name = b.get_ref();
        match models.get(name) {
            Some(m) => Some(Arc::clone(m)),
            // a model declared but refused is reported at the model
            None if declared.contains(&name.as_str()) => None,
            None => {
                let msg = if declared.is_empty() {
                    format!("unknown model {name:?} (no [[model]] is defined)")
                } else {
                    format!("unknown model {name:?} (models: {})", declared.join(", "))
                };
                cx.err(b, format!("{key}.body"), msg);
                None
            }
        }
    });
    let mut required = Required::default();
    for (j, h) in raw.required_headers.iter().enumerate() {
        let name = h.get_ref();
        let k = format!("{key}.required_headers[{j}]");
        if name.is_empty() || !name.bytes().all(is_tchar) {
            // RFC 9110 §5.1: a field name is a token
            cx.err(h, k, format!("{name:?} is not a header name (a token)"));
        } else if required
            .headers
            .iter()
            .any(|(_, l)| l.eq_ignore_ascii_case(name))
        {
            cx.err(h, k, format!("header {name:?} is listed twice"));
        } else {
            required
                .headers
                .push((name.clone(), name.to_ascii_lowercase()));
        }
    }
    for (j, q) in raw.required_querystrings.iter().enumerate() {
        let name = q.get_ref();
        let k = format!("{key}.required_querystrings[{j}]");
        if name.is_empty()
            || name
                .bytes()
                .any(|b| matches!(b, b'&' | b'=' | b'#') || b.is_ascii_control())
        {
            cx.err(
                q,
                k,
                format!("{name:?} is not a query parameter name (non-empty, no '&', '=', '#')"),
            );
        } else if required.querystrings.contains(name) {
            cx.err(q, k, format!("query parameter {name:?} is listed twice"));
        } else {
            required.querystrings.push(name.clone());
        }
    }
    Some(RouteValidation { body, required })
}
