//! Compiled models: a JSON Schema document (draft 4, API Gateway's, through 2020-12) compiled
//! once at load into a [`Model`] that checks a parsed JSON body and names what fails.
//!
//! Owns: which draft a schema is (its `$schema`; none: draft 4, as API Gateway's models),
//! how `$ref` reaches other models (the [`ModelRetriever`]: every model lives at
//! `https://apigateway.amazonaws.com/restapis/tollgate/models/NAME`, so a relative
//! `{"$ref": "OtherModel"}` and API Gateway's absolute
//! `https://apigateway.amazonaws.com/restapis/{restapi_id}/models/OtherModel` both name model
//! `OtherModel`; nothing is ever fetched), the regex engine (linear time: a client's string can
//! never make a `pattern` backtrack), `format` kept as an annotation, and turning the
//! validator's errors into bounded [`Detail`]s (at most [`MAX_DETAILS`], each reason at most
//! [`MAX_REASON_CHARS`], the client's values masked out of the words). Leaves out: reading
//! schema files and naming config keys (see [`crate::config::validation`]) and the HTTP
//! answer (see [`super::body`]).

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::{Draft, PatternOptions, Retrieve, Uri, Validator};
use serde_json::Value as Json;

/// Most failing locations a refused body's `details` names (the rest are not reported: a
/// body with a thousand bad items costs ten lines, not a thousand).
pub const MAX_DETAILS: usize = 10;

/// Longest reason, in characters (an `enum` of many options is cut, with `…`).
pub const MAX_REASON_CHARS: usize = 160;

/// Where models live, as URIs: `{MODEL_BASE}{name}`. API Gateway's own form
/// (`https://apigateway.amazonaws.com/restapis/{restapi_id}/models/{name}`) with tollgate as
/// the API id, so relative references between models resolve as they do on AWS.
pub const MODEL_BASE: &str = "https://apigateway.amazonaws.com/restapis/tollgate/models/";

/// The host and path prefix API Gateway's model URIs share (any API id).
const AWS_MODEL_HOST: &str = "apigateway.amazonaws.com";

/// The draft of a schema without `$schema`: API Gateway's models are draft 4.
pub const DEFAULT_DRAFT: Draft = Draft::Draft4;

/// One failing location of a refused body: its JSON pointer (RFC 6901; `""` is the whole
/// body) and what is wrong there, in words that do not repeat the client's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub pointer: String,
    pub reason: String,
}

/// A compiled model.
pub struct Model {
    name: String,
    validator: Validator,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("draft", &self.validator.draft())
            .finish()
    }
}

/// Every model's schema document by name, for `$ref` between models.
pub type Documents = Arc<HashMap<String, Json>>;

impl Model {
    /// Compiles model `name`'s `schema`; `others` are every model's documents (itself
    /// included), reachable through `$ref`. The error says what is wrong (an unknown draft,
    /// a schema its draft's meta-schema refuses, a `$ref` to nothing).
    pub fn compile(name: &str, schema: &Json, others: &Documents) -> Result<Model, String> {
        let draft = draft_of(schema)?;
        let retriever = ModelRetriever {
            models: Arc::clone(others),
        };
        let validator = jsonschema::options()
            .with_draft(draft)
            .with_base_uri(format!("{MODEL_BASE}{}", uri_segment(name)))
            .with_retriever(retriever)
            .with_pattern_options(PatternOptions::regex())
            .should_validate_formats(false)
            .build(schema)
            .map_err(|e| e.to_string())?;
        Ok(Model {
            name: name.to_owned(),
            validator,
        })
    }

    /// Compiles a standalone schema document (no other models), as the JSON Schema test
    /// suite's cases are.
    pub fn standalone(schema: &Json) -> Result<Model, String> {
        Model::compile("standalone", schema, &Documents::default())
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The draft the schema was compiled as.
    pub fn draft(&self) -> Draft {
        self.validator.draft()
    }

    /// Whether `body` satisfies the model (no error list built).
    pub fn is_valid(&self, body: &Json) -> bool {
        self.validator.is_valid(body)
    }

    /// `Ok` when `body` satisfies the model, else the first [`MAX_DETAILS`] failing
    /// locations, in the validator's order (keyword by keyword, depth first).
    pub fn check(&self, body: &Json) -> Result<(), Vec<Detail>> {
        if self.validator.is_valid(body) {
            return Ok(());
        }
        let details: Vec<Detail> = self
            .validator
            .iter_errors(body)
            .take(MAX_DETAILS)
            .map(|e| Detail {
                pointer: e.instance_path().as_str().to_owned(),
                reason: bounded(&e.masked_with("value").to_string()),
            })
            .collect();
        Err(details)
    }
}

/// The draft `schema` declares with `$schema` (RFC-style URIs of drafts 4, 6, 7, 2019-09 and
/// 2020-12, with or without the trailing `#`), [`DEFAULT_DRAFT`] without one.
pub fn draft_of(schema: &Json) -> Result<Draft, String> {
    match DEFAULT_DRAFT.detect(schema) {
        Draft::Unknown => {
            let uri = schema
                .get("$schema")
                .and_then(Json::as_str)
                .unwrap_or_default();
            Err(format!(
                "unsupported $schema {uri:?} (known: drafts 4, 6, 7, 2019-09 and 2020-12)"
            ))
        }
        d => Ok(d),
    }
}

/// `reason` cut to [`MAX_REASON_CHARS`] characters.
fn bounded(reason: &str) -> String {
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((at, _)) => format!("{}…", &reason[..at]),
        None => reason.to_owned(),
    }
}

/// A model name as one URI path segment: unreserved characters kept, the rest
/// percent-encoded (RFC 3986 §2.3, §2.1), so any name gives a valid base URI.
fn uri_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`uri_segment`] for one segment (`None`: not UTF-8 after decoding).
fn segment_name(seg: &str) -> Option<String> {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |k: usize| b.get(k).and_then(|h| char::from(*h).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(0));
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Resolves `$ref`s that leave a model's own document: an API Gateway model URI (any API id)
/// whose last segment names a model gives that model's document; anything else is refused
/// (tollgate fetches nothing at load or while serving).
struct ModelRetriever {
    models: Documents,
}

/// Why a `$ref` could not be resolved.
#[derive(Debug)]
struct NotAModel(String);

impl std::fmt::Display for NotAModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotAModel {}

impl Retrieve for ModelRetriever {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Json, Box<dyn std::error::Error + Send + Sync>> {
        let host = uri.authority().map(|a| a.host().to_ascii_lowercase());
        let path = uri.path().as_str();
        let mut segs = path.trim_start_matches('/').split('/');
        let mut id = "";
        let aws = host.as_deref() == Some(AWS_MODEL_HOST)
            && segs.next() == Some("restapis")
            && segs.next().is_some_and(|i| {
                id = i;
                !i.is_empty()
            })
            && segs.next() == Some("models");
        let name = segs.next().and_then(segment_name);
        // an API's own models are `API/NAME` (see `config::deploy`): by the URI's API id, else
        // the one API's model of that name
        let scoped = |name: &str| {
            self.models.get(&format!("{id}/{name}")).or_else(|| {
                let suffix = format!("/{name}");
                let mut own = self.models.iter().filter(|(k, _)| k.ends_with(&suffix));
                match (own.next(), own.next()) {
                    (Some((_, doc)), None) => Some(doc),
                    _ => None,
                }
            })
        };
        match (aws, name, segs.next()) {
            (true, Some(name), None) => match self.models.get(&name).or_else(|| scoped(&name)) {
                Some(doc) => Ok(doc.clone()),
                None => Err(Box::new(NotAModel(format!("no model named {name:?}")))),
            },
            _ => Err(Box::new(NotAModel(format!(
                "{uri} is not a model (a $ref names a model, \"OtherModel\", or API Gateway's \
                 https://apigateway.amazonaws.com/restapis/ID/models/OtherModel; nothing is fetched)"
            )))),
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
