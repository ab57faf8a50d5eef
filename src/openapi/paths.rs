//! The import's driver: the document's root (through [`super::api`]), then each path and
//! operation into a `[[route]]`, the API file assembled and written.
//!
//! An operation becomes a route keyed `"METHOD /path"` (`x-amazon-apigateway-any-method` is
//! `ANY`, HTTP APIs' `/$default` path is the `$default` route); path-level parameters apply
//! to each operation (an operation's own of the same name and place win); `$ref`s to path
//! items, parameters and integrations are followed. An operation tollgate cannot run safely
//! (no integration, an integration it cannot express, an authorizer it could not map) is left
//! out with a report, never imported open or half-done.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::parse::{self, deref, object, Version};
use super::{child, ImportError, Imported, Unsupported};

/// OpenAPI's operation keys, and the route method each stands for.
const METHODS: [(&str, &str); 9] = [
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
    ("trace", "TRACE"),
    ("x-amazon-apigateway-any-method", "ANY"),
];

/// API Gateway extensions an operation may carry.
const OPERATION_EXTENSIONS: [&str; 4] = [
    "x-amazon-apigateway-integration",
    "x-amazon-apigateway-request-validator",
    "x-amazon-apigateway-auth",
    "x-amazon-apigateway-documentation",
];

/// What the import has learned so far, and its report.
pub(super) struct Cx<'a> {
    pub root: &'a Value,
    pub version: Version,
    pub unsupported: Vec<Unsupported>,
    /// Security schemes by name (see [`super::security`]).
    pub schemes: BTreeMap<String, super::security::Scheme>,
    /// `[[authorizer]]` tables, in the order of the schemes.
    pub authorizers: Vec<Map<String, Value>>,
    /// Request validators by name, and the default one (see [`super::models`]).
    pub validators: super::models::Validators,
    /// `[[model]]`s collected from validated bodies.
    pub models: super::models::Models,
}

impl Cx<'_> {
    /// Adds `what` at `pointer` to the report.
    pub fn report(&mut self, pointer: &str, what: impl Into<String>) {
        self.unsupported.push(Unsupported {
            pointer: pointer.to_string(),
            what: what.into(),
        });
    }

    /// Reports the `x-amazon-apigateway-*` keys of `obj` (at `ptr`) that are not in `known`.
    pub fn unknown_extensions(&mut self, obj: &Map<String, Value>, ptr: &str, known: &[&str]) {
        for k in obj.keys() {
            if k.starts_with("x-amazon-apigateway-") && !known.contains(&k.as_str()) {
                self.report(
                    &child(ptr, k),
                    format!("unknown API Gateway extension {k}: ignored"),
                );
            }
        }
    }
}

/// One parameter of an operation (after `$ref`s): its object and pointer.
pub(super) type Param<'a> = (&'a Map<String, Value>, String);

/// The whole import, from the parsed document.
pub(super) fn import(root: &Value) -> Result<Imported, ImportError> {
    let version = parse::version(root)?;
    let top = object(root, "")?;
    let mut cx = Cx {
        root,
        version,
        unsupported: Vec::new(),
        schemes: BTreeMap::new(),
        authorizers: Vec::new(),
        validators: super::models::Validators::default(),
        models: super::models::Models::default(),
    };
    let mut file = Map::new();
    super::api::root(&mut cx, top, &mut file)?;
    super::security::schemes(&mut cx)?;
    super::models::validators(&mut cx, top)?;
    let mut routes = Vec::new();
    let mut pointers = Vec::new();
    if let Some(paths) = top.get("paths") {
        for (path, item) in object(paths, "/paths")? {
            if path.starts_with("x-") {
                continue; // the Paths Object's own extensions
            }
            path_item(&mut cx, path, item, &mut routes, &mut pointers)?;
        }
    }
    let authorizers = std::mem::take(&mut cx.authorizers);
    let models = std::mem::take(&mut cx.models).into_tables();
    put_tables(&mut file, "route", routes);
    put_tables(&mut file, "authorizer", authorizers);
    put_tables(&mut file, "model", models);
    Ok(Imported {
        toml: super::toml_out::write(&file),
        unsupported: cx.unsupported,
        routes: pointers,
    })
}

fn put_tables(file: &mut Map<String, Value>, key: &str, tables: Vec<Map<String, Value>>) {
    if !tables.is_empty() {
        let list = tables.into_iter().map(Value::Object).collect();
        file.insert(key.to_string(), Value::Array(list));
    }
}

fn path_item(
    cx: &mut Cx<'_>,
    path: &str,
    item: &Value,
    routes: &mut Vec<Map<String, Value>>,
    pointers: &mut Vec<String>,
) -> Result<(), ImportError> {
    let root = cx.root;
    let (item, item_ptr) = deref(root, item, &child("/paths", path))?;
    let item = object(item, &item_ptr)?;
    cx.unknown_extensions(item, &item_ptr, &["x-amazon-apigateway-any-method"]);
    if !path.starts_with('/') {
        cx.report(&item_ptr, "a path must start with '/': not imported");
        return Ok(());
    }
    let shared = match item.get("parameters") {
        Some(p) => params(root, p, &child(&item_ptr, "parameters"))?,
        None => Vec::new(),
    };
    for (field, method) in METHODS {
        let Some(op) = item.get(field) else { continue };
        let (op, op_ptr) = deref(root, op, &child(&item_ptr, field))?;
        let op = object(op, &op_ptr)?;
        let key = if path == "/$default" && method == "ANY" {
            "$default".to_string()
        } else {
            format!("{method} {path}")
        };
        let mut all = shared.clone();
        if let Some(p) = op.get("parameters") {
            for (param, ptr) in params(root, p, &child(&op_ptr, "parameters"))? {
                let same = |(q, _): &Param<'_>| {
                    q.get("name") == param.get("name") && q.get("in") == param.get("in")
                };
                all.retain(|p| !same(p));
                all.push((param, ptr));
            }
        }
        let route = Operation {
            key,
            method,
            path_params: path_params(path),
            op,
            ptr: op_ptr.clone(),
            params: all,
            cors_hint: cors_hint(root, item),
        };
        if let Some(r) = operation(cx, &route)? {
            routes.push(r);
            pointers.push(op_ptr);
        }
    }
    Ok(())
}

/// The parameters of a path item or operation, each after its `$ref`s.
fn params<'a>(root: &'a Value, v: &'a Value, ptr: &str) -> Result<Vec<Param<'a>>, ImportError> {
    let mut out = Vec::new();
    for (i, p) in parse::array(v, ptr)?.iter().enumerate() {
        let (p, at) = deref(root, p, &child(ptr, &i.to_string()))?;
        out.push((object(p, &at)?, at));
    }
    Ok(out)
}

/// `/pets/{id}/{proxy+}` → `["id", "proxy"]`.
pub(super) fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_end_matches('+').to_string())
        .collect()
}

/// One operation, as the mappings see it.
pub(super) struct Operation<'a> {
    /// The route key: `GET /pets/{id}`, `ANY /{proxy+}`, `$default`.
    pub key: String,
    /// `GET`, ..., `ANY`.
    pub method: &'a str,
    /// The route's path parameter names (`proxy` for `{proxy+}`).
    pub path_params: Vec<String>,
    pub op: &'a Map<String, Value>,
    pub ptr: String,
    /// Path-level and operation parameters, merged.
    pub params: Vec<Param<'a>>,
    /// The methods and headers the path's `OPTIONS` mock allows (REST APIs' CORS).
    pub cors_hint: CorsHint,
}

/// `Access-Control-Allow-Methods` and `-Headers` of a path's `OPTIONS` mock.
#[derive(Debug, Default, Clone)]
pub(super) struct CorsHint {
    pub methods: Vec<String>,
    pub headers: Vec<String>,
}

/// The CORS answer of the path's `OPTIONS` mock, if it has one.
fn cors_hint(root: &Value, item: &Map<String, Value>) -> CorsHint {
    let params = item
        .get("options")
        .and_then(|o| o.get("x-amazon-apigateway-integration"))
        .and_then(|i| deref(root, i, "").ok())
        .and_then(|(i, _)| i.get("responses"))
        .and_then(|r| r.get("default").or_else(|| r.get("200")))
        .and_then(|d| d.get("responseParameters"))
        .and_then(Value::as_object);
    let list = |name: &str| -> Vec<String> {
        params
            .and_then(|p| {
                p.iter().find(|(k, _)| {
                    k.eq_ignore_ascii_case(&format!("method.response.header.{name}"))
                })
            })
            .and_then(|(_, v)| v.as_str())
            .and_then(|v| v.strip_prefix('\'')?.strip_suffix('\''))
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    CorsHint {
        methods: list("Access-Control-Allow-Methods"),
        headers: list("Access-Control-Allow-Headers"),
    }
}

/// One operation → one route (`None`: left out, with a report).
fn operation(
    cx: &mut Cx<'_>,
    o: &Operation<'_>,
) -> Result<Option<Map<String, Value>>, ImportError> {
    cx.unknown_extensions(o.op, &o.ptr, &OPERATION_EXTENSIONS);
    let mut route = Map::new();
    route.insert("key".into(), Value::String(o.key.clone()));
    let Some(integration) = o.op.get("x-amazon-apigateway-integration") else {
        cx.report(
            &o.ptr,
            "no x-amazon-apigateway-integration: the operation is not imported",
        );
        return Ok(None);
    };
    let iptr = child(&o.ptr, "x-amazon-apigateway-integration");
    let (integration, iptr) = deref(cx.root, integration, &iptr)?;
    let integration = object(integration, &iptr)?;
    if !super::integration::map(cx, o, integration, &iptr, &mut route)? {
        return Ok(None);
    }
    if !super::security::route(cx, o, &mut route)? {
        return Ok(None);
    }
    super::models::validate(cx, o, &mut route)?;
    if let Some(extra) = o.op.get("x-tollgate") {
        let at = child(&o.ptr, "x-tollgate");
        super::export::merge_extra(cx, extra, &at, &mut route, &super::export::ROUTE_KEYS)?;
    }
    Ok(Some(route))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_of_a_template() {
        assert_eq!(path_params("/pets/{id}/x/{proxy+}"), ["id", "proxy"]);
        assert!(path_params("/").is_empty());
    }
}
