//! APIs, stages, canaries and API mappings, compiled: every stage deploys its API's routes
//! (and its canary's) as routes of their own, with the stage's variables resolved.
//!
//! Owns: [`expand`], run first in [`super::compile`]: for each `[[stage]]`, a copy of its
//! API's routes per side (the stage's, then the canary's) is appended to the config's route
//! list, with `$stageVariables.NAME` / `${stageVariables.NAME}` substituted in `upstream`,
//! `function`, `path` and mock bodies (mapping values and templates resolve them from the
//! route's variables, [`super::compile::Ctx::stage_vars`]), the stage's `throttle` given to
//! routes without one, the API's CORS to routes without theirs, the API's authorizers and
//! models scoped to it (`API/NAME`), an `upstream` written as a URL (`https://host`) made an
//! upstream of its own and a `function` written as a Lambda ARN bound to the `[[function]]`
//! of that name or ARN (else a remote function of its own). Everything after sees plain
//! routes; a route's *deployment* ([`Deployment`]) tells where it belongs. Also the
//! `[[mapping]]` rules ([`crate::router::Front`]) and each stage's canary ([`Canary`]).
//! Leaves out: reading API files ([`super::api_sources`]), the per-request choice of stage and
//! side ([`crate::proxy::lifecycle`]'s route phase) and OpenAPI ([`crate::openapi`]).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use toml::Spanned;

use super::api_sources::{ApiBody, Origin, Sources};
use super::compile::Ctx;
use super::raw::{RawApiFile, RawConfig, RawStage};
use crate::router::front::Rule;
use crate::router::Front;

/// The response field telling which side served a stage with a canary (`1`: the canary).
pub const DEFAULT_CANARY_HEADER: &str = "x-tollgate-canary";
/// Canary shares are kept in millionths (`percent = 12.5` → 125 000).
pub const CANARY_SCALE: u32 = 1_000_000;

/// Stage variables, `(name, value)` sorted by name.
pub type Vars = Arc<[(String, String)]>;

/// A run of routes served together: the top-level routes (deployment 0) or one side of a
/// stage.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub routes: Range<usize>,
    /// `None`: the top-level routes (the implicit `$default` stage).
    pub stage: Option<u32>,
    pub canary: bool,
    pub variables: Vars,
}

/// How a canary keeps a client on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    /// The value of this cookie.
    Cookie(Box<str>),
    /// The value of this request field (lowercase name).
    Header(Box<str>),
}

/// A stage's canary.
#[derive(Debug, Clone)]
pub struct Canary {
    pub deployment: u32,
    /// Share of requests (or clients), in millionths.
    pub share: u32,
    pub sticky: Option<Sticky>,
    /// The response field naming the side (lowercase); `None`: not sent.
    pub header: Option<Box<str>>,
}

/// One `[[stage]]`, compiled.
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// `API/STAGE`, as mappings name it and metrics label it.
    pub id: String,
    pub name: String,
    pub api: String,
    /// The stage's own deployment.
    pub deployment: u32,
    pub canary: Option<Canary>,
}

/// APIs, stages and mappings, compiled.
#[derive(Debug, Default)]
pub struct ApisConfig {
    /// `[0]`: the top-level routes.
    pub deployments: Vec<Deployment>,
    pub stages: Vec<StageConfig>,
    pub front: Front,
    /// Each route's deployment, by route index.
    pub route_deployment: Vec<u32>,
    /// Each deployment's API's own gateway responses (`[[gateway_response]]` of its file;
    /// `None`: the config's apply), by deployment.
    pub gateway_responses: Vec<Option<crate::gateway_response::GatewayResponses>>,
}

impl ApisConfig {
    /// The route ranges of every deployment (for [`crate::router::Routers::build`]).
    pub fn ranges(&self) -> Vec<Range<usize>> {
        self.deployments.iter().map(|d| d.routes.clone()).collect()
    }

    /// Route `i`'s stage and side: `None` for a top-level route.
    pub fn stage_of(&self, route: usize) -> Option<(&StageConfig, bool)> {
        let d = self
            .deployments
            .get(*self.route_deployment.get(route)? as usize)?;
        Some((self.stages.get(d.stage? as usize)?, d.canary))
    }
}

/// What compiling needs to know of each route beyond its raw table: its variables, and how
/// to name it in an error.
#[derive(Debug, Default)]
pub(super) struct Expanded {
    pub apis: ApisConfig,
    /// Each route's stage variables (`None`: a top-level route).
    pub vars: Vec<Option<Vars>>,
    /// `(first route, label, pointers)` of each deployed run: errors about `route[i]` in it are
    /// named `LABEL.route[i - first]` (or by the operation's JSON pointer).
    pub labels: Vec<(usize, String, Option<Vec<String>>)>,
    /// `(deployment, API name, its gateway responses)` for APIs that have their own.
    pub gateway: Vec<(
        u32,
        String,
        Vec<super::gateway_responses::RawGatewayResponse>,
    )>,
}

/// Expands `raw.api` / `raw.stage` / `raw.mapping` into routes of `raw` (see the module docs).
pub(super) fn expand(raw: &mut RawConfig, src: &mut Sources, cx: &mut Ctx<'_>) -> Expanded {
    let top = raw.route.len();
    let mut out = Expanded {
        vars: vec![None; top],
        ..Expanded::default()
    };
    out.apis.deployments.push(Deployment {
        routes: 0..top,
        stage: None,
        canary: false,
        variables: Arc::from([]),
    });
    let mut files = take_files(raw, src, cx);
    let names: Vec<String> = raw.api.iter().map(|a| a.name.get_ref().clone()).collect();
    let mut deployed = vec![false; names.len()];
    let stages = std::mem::take(&mut raw.stage);
    for (si, st) in stages.iter().enumerate() {
        let Some(api) = find_api(&names, &st.api, format!("stage[{si}].api"), cx) else {
            continue;
        };
        let id = format!("{}/{}", st.api.get_ref(), st.name.get_ref());
        check_stage_name(si, st, &out.apis.stages, cx);
        let vars = variables(&st.variables, &BTreeMap::new(), format!("stage[{si}]"), cx);
        let stage_idx = out.apis.stages.len() as u32;
        deployed[api] = true;
        let deployment = deploy(
            raw,
            api,
            &mut files,
            st,
            (stage_idx, false),
            &vars,
            &mut out,
            cx,
        );
        let canary = st.canary.as_ref().and_then(|c| {
            let key = format!("stage[{si}].canary");
            let capi = match &c.get_ref().api {
                Some(a) => find_api(&names, a, format!("{key}.api"), cx)?,
                None => api,
            };
            deployed[capi] = true;
            let base = st.variables.as_ref().map(|v| v.get_ref());
            let cvars = variables_over(base, &c.get_ref().variables, &key, cx);
            let d = deploy(
                raw,
                capi,
                &mut files,
                st,
                (stage_idx, true),
                &cvars,
                &mut out,
                cx,
            );
            super::canary::compile(c, d, &key, cx)
        });
        out.apis.stages.push(StageConfig {
            id,
            name: st.name.get_ref().clone(),
            api: st.api.get_ref().clone(),
            deployment,
            canary,
        });
    }
    for (i, a) in raw.api.iter().enumerate() {
        if !deployed[i] {
            let m = "no [[stage]] deploys this API: its routes are not served";
            cx.warn(&a.name, format!("api[{i}].name"), m);
        }
    }
    raw.stage = stages;
    out.apis.front = mappings(raw, &out.apis.stages, cx);
    for (ri, st) in raw.stage.iter().enumerate() {
        let id = format!("{}/{}", st.api.get_ref(), st.name.get_ref());
        let Some(si) = out.apis.stages.iter().position(|s| s.id == id) else {
            continue;
        };
        if !out.apis.front.rules().iter().any(|r| r.stage == si as u32) {
            let m = format!("stage {id:?} is not served: no [[mapping]] names it");
            cx.warn(&st.name, format!("stage[{ri}].name"), m);
        }
    }
    let mut route_deployment = vec![0u32; raw.route.len()];
    for (d, dep) in out.apis.deployments.iter().enumerate() {
        for i in dep.routes.clone() {
            if let Some(slot) = route_deployment.get_mut(i) {
                *slot = d as u32;
            }
        }
    }
    out.apis.route_deployment = route_deployment;
    out
}

/// Each API's routes and what they use, by `raw.api` index: a file's, or the inline ones.
fn take_files(raw: &mut RawConfig, src: &mut Sources, cx: &mut Ctx<'_>) -> Vec<ApiRoutes> {
    // a strict OpenAPI setting at the top applies where an API says nothing
    let strict_default = raw.strict_openapi;
    let mut files = Vec::with_capacity(raw.api.len());
    let mut seen: Vec<&str> = Vec::new();
    for (i, a) in raw.api.iter_mut().enumerate() {
        let name = a.name.get_ref();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            let m = "must be letters, digits, '-', '_' or '.' (it names the API in stages)";
            cx.err(&a.name, format!("api[{i}].name"), m);
        } else if seen.contains(&name.as_str()) {
            cx.err(&a.name, format!("api[{i}].name"), "duplicate API name");
        }
        seen.push(a.name.get_ref());
        let sources = usize::from(a.routes.is_some())
            + usize::from(a.openapi.is_some())
            + usize::from(!a.route.is_empty());
        if sources > 1 {
            let m = "set one of routes, openapi or inline [[api.route]], not several";
            cx.err(&a.name, format!("api[{i}]"), m);
        }
        let body = std::mem::replace(
            src.apis.get_mut(i).unwrap_or(&mut ApiBody::Inline),
            ApiBody::Inline,
        );
        let strict = a.strict_openapi.as_ref().map(|s| *s.get_ref());
        let (file, pointers) = match body {
            ApiBody::File(Some(f), origin) => {
                let pointers = match origin {
                    Origin::Toml => None,
                    Origin::OpenApi {
                        pointers,
                        unsupported,
                    } => {
                        let strict = strict.unwrap_or(strict_default);
                        report_unsupported(&a.name, i, &unsupported, strict, cx);
                        Some(pointers)
                    }
                };
                (*f, pointers)
            }
            ApiBody::File(None, _) => (RawApiFile::default(), None),
            ApiBody::Inline => {
                if sources == 0 {
                    let m = "an API needs routes: routes = \"FILE\", openapi = \"FILE\" or [[api.route]]";
                    cx.err(&a.name, format!("api[{i}]"), m);
                }
                let f = RawApiFile {
                    route: std::mem::take(&mut a.route),
                    cors: a.cors.take(),
                    ..RawApiFile::default()
                };
                (f, None)
            }
        };
        files.push(ApiRoutes {
            name: a.name.get_ref().clone(),
            at: a.name.span(),
            file,
            pointers,
            scoped: false,
        });
    }
    files
}

/// Each unsupported part of an OpenAPI definition: a warning, or an error when strict.
fn report_unsupported(
    name: &Spanned<String>,
    i: usize,
    unsupported: &[crate::openapi::Unsupported],
    strict: bool,
    cx: &mut Ctx<'_>,
) {
    for u in unsupported {
        let key = format!("api[{i}].openapi {}", u.pointer);
        let m = format!("not supported: {}", u.what);
        if strict {
            cx.err(name, key, format!("{m} (strict_openapi = true)"));
        } else {
            cx.warn(name, key, m);
        }
    }
}

/// An API's routes and what only they use.
pub(super) struct ApiRoutes {
    name: String,
    /// The `[[api]]`'s name in the config (what errors about the API as a whole point at).
    at: Range<usize>,
    file: RawApiFile,
    pointers: Option<Vec<String>>,
    /// Its authorizers and models were added to the config (once, whatever the stages).
    scoped: bool,
}

fn find_api(
    names: &[String],
    api: &Spanned<String>,
    key: String,
    cx: &mut Ctx<'_>,
) -> Option<usize> {
    let found = names.iter().position(|n| n == api.get_ref());
    if found.is_none() {
        let m = format!("unknown API {:?} (no [[api]] has this name)", api.get_ref());
        cx.err(api, key, m);
    }
    found
}

fn check_stage_name(si: usize, st: &RawStage, earlier: &[StageConfig], cx: &mut Ctx<'_>) {
    let name = st.name.get_ref();
    let ok = name == "$default"
        || (!name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)));
    if !ok {
        let m = "must be $default or letters, digits, '-' and '_' (at most 128)";
        cx.err(&st.name, format!("stage[{si}].name"), m);
    }
    if earlier
        .iter()
        .any(|s| &s.api == st.api.get_ref() && &s.name == name)
    {
        cx.err(
            &st.name,
            format!("stage[{si}].name"),
            "duplicate stage of this API",
        );
    }
}

/// A stage's variables, checked (names as API Gateway's: letters, digits, `_`).
fn variables(
    vars: &Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    over: &BTreeMap<String, Spanned<String>>,
    key: String,
    cx: &mut Ctx<'_>,
) -> Vars {
    variables_over(vars.as_ref().map(|v| v.get_ref()), over, &key, cx)
}

fn variables_over(
    base: Option<&BTreeMap<String, Spanned<String>>>,
    over: &BTreeMap<String, Spanned<String>>,
    key: &str,
    cx: &mut Ctx<'_>,
) -> Vars {
    let mut all: BTreeMap<&String, &Spanned<String>> = BTreeMap::new();
    all.extend(base.into_iter().flatten());
    all.extend(over.iter());
    let mut out = Vec::with_capacity(all.len());
    for (name, value) in all {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            let m = format!("variable name {name:?}: letters, digits and '_' only");
            cx.err(value, format!("{key}.variables"), m);
        }
        if value.get_ref().chars().any(char::is_control) {
            let m = format!("variable {name}: control characters are not allowed");
            cx.err(value, format!("{key}.variables.{name}"), m);
        }
        out.push((name.clone(), value.get_ref().clone()));
    }
    Arc::from(out)
}

/// Appends one side of a stage: the API's routes with the stage's settings and variables.
/// Returns the new deployment's index.
#[allow(clippy::too_many_arguments)]
fn deploy(
    raw: &mut RawConfig,
    api: usize,
    files: &mut [ApiRoutes],
    st: &RawStage,
    (stage, canary): (u32, bool),
    vars: &Vars,
    out: &mut Expanded,
    cx: &mut Ctx<'_>,
) -> u32 {
    let start = raw.route.len();
    let d = out.apis.deployments.len() as u32;
    let Some(a) = files.get_mut(api) else {
        return d;
    };
    let scope = super::deploy::Scope {
        api: &a.name,
        at: a.at.clone(),
        file: &a.file,
        vars,
        throttle: st.throttle.as_ref(),
    };
    for r in &a.file.route {
        let r = super::deploy::route(r, &scope, raw, cx);
        raw.route.push(r);
        out.vars.push(Some(vars.clone()));
    }
    if !a.scoped {
        super::deploy::scoped_entries(&a.name, &a.file, raw);
        a.scoped = true;
    }
    if !a.file.gateway_response.is_empty() {
        out.gateway
            .push((d, a.name.clone(), a.file.gateway_response.clone()));
    }
    let side = if canary { " canary" } else { "" };
    let label = format!(
        "api[{}] (stage {}/{}{side})",
        a.name,
        a.name,
        st.name.get_ref()
    );
    out.labels.push((start, label, a.pointers.clone()));
    out.apis.deployments.push(Deployment {
        routes: start..raw.route.len(),
        stage: Some(stage),
        canary,
        variables: vars.clone(),
    });
    d
}

/// `[[mapping]]` → the front door's rules.
fn mappings(raw: &RawConfig, stages: &[StageConfig], cx: &mut Ctx<'_>) -> Front {
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.mapping.len());
    for (i, m) in raw.mapping.iter().enumerate() {
        let key = |k: &str| format!("mapping[{i}].{k}");
        let Some(stage) = stages.iter().position(|s| &s.id == m.stage.get_ref()) else {
            let msg = format!(
                "unknown stage {:?}: write \"API/STAGE\" of a [[stage]]",
                m.stage.get_ref()
            );
            cx.err(&m.stage, key("stage"), msg);
            continue;
        };
        let host = match &m.host {
            None => None,
            Some(h) => match super::api_mapping::host_rule(h.get_ref()) {
                Ok(r) => Some(r),
                Err(msg) => {
                    cx.err(h, key("host"), msg);
                    continue;
                }
            },
        };
        let base = match &m.base_path {
            None => Box::default(),
            Some(b) => match super::api_mapping::base_path(b.get_ref()) {
                Ok(b) => b,
                Err(msg) => {
                    cx.err(b, key("base_path"), msg);
                    continue;
                }
            },
        };
        let header = match &m.header {
            None => None,
            Some(h) => match super::api_mapping::header_match(h.get_ref()) {
                Ok(v) => Some(v),
                Err(msg) => {
                    cx.err(h, key("header"), msg);
                    continue;
                }
            },
        };
        let rule = Rule {
            host,
            base,
            header,
            stage: stage as u32,
        };
        if let Some(j) = rules
            .iter()
            .position(|r| r.host == rule.host && r.base == rule.base && r.header == rule.header)
        {
            let msg = format!("same host, base path and header as mapping[{j}]");
            cx.err(&m.stage, format!("mapping[{i}]"), msg);
            continue;
        }
        rules.push(rule);
    }
    Front::build(rules)
}

/// Names an error about a deployed route by its API (`api[pets] (stage pets/prod).route[2]`,
/// or the OpenAPI operation's pointer) instead of its place in the expanded route list.
pub(super) fn name_route(
    e: &mut super::ConfigError,
    labels: &[(usize, String, Option<Vec<String>>)],
) {
    let Some(rest) = e.key.strip_prefix("route[") else {
        return;
    };
    let Some((n, tail)) = rest.split_once(']') else {
        return;
    };
    let Ok(n) = n.parse::<usize>() else {
        return;
    };
    let Some((start, label, pointers)) = labels.iter().rev().find(|(s, _, _)| *s <= n) else {
        return;
    };
    let j = n - start;
    e.key = match pointers.as_ref().and_then(|p| p.get(j)) {
        Some(p) => format!("{label} {p}{tail}"),
        None => format!("{label}.route[{j}]{tail}"),
    };
}
