//! Stage two of loading: validate the raw structs and compile them into the immutable [`Config`].
//!
//! Owns: every semantic check (addresses resolve, targets carry a port, names are unique and
//! referenced names exist, each route has exactly one integration, every numeric setting lies in
//! its range from [`raw`] (refused, never clamped), there is at least one route, route keys are
//! well formed and do not conflict) and the precomputation the hot path relies on: the route trie, path templates and
//! pre-rendered mock responses. All errors are collected, each naming its key and line, so
//! `tollgate check` can print them all at once. Leaves out: runtime state (pools, sockets); a
//! reload compiles a fresh `Config` and workers swap to it.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use toml::Spanned;

use super::forwarding::{self, BodyPolicy, Forwarding};
use super::mock::compile_mock;
pub use super::mock::MockResponse;
use super::raw::{self, RawConfig};
use super::resolve::listen_address;
use super::upstreams::compile_upstreams;
pub use super::upstreams::{resolve_target, TargetName, UpstreamConfig, RESOLVE_INTERVAL_RANGE_MS};
use super::{ConfigError, ConfigErrors};
use crate::accesslog::{Format, LogConfig};
use crate::http::Limits;
use crate::router::{PathTemplate, RouteSpec, Routers};
use crate::runtime::DriverChoice;
use crate::throttle::spec::ThrottleConfig;

/// The compiled, immutable configuration shared (read-only) by all workers.
#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub upstreams: Vec<UpstreamConfig>,
    pub routes: Vec<RouteConfig>,
    /// One route trie per deployment (the top-level routes, each side of every stage).
    pub router: Routers,
    /// APIs, stages, canaries and the mappings that pick a stage.
    pub apis: super::apis::ApisConfig,
    /// `[[function]]`, in file order (routes name them by index).
    pub functions: Vec<super::functions::FunctionConfig>,
    /// `[[authorizer]]`, in file order (routes name them by index: `access.routes[i].auth`).
    pub authorizers: Vec<super::auth::AuthorizerConfig>,
    /// CORS, IP rules, trusted proxies, routes' client-certificate and authorizer settings, the
    /// admin token.
    pub access: super::access::AccessConfig,
    /// Limits, usage plans, quotas and API keys.
    pub throttle: ThrottleConfig,
    /// The admin listener's address.
    pub admin: Option<SocketAddr>,
    /// The admin listener's connection and request limits (defaults without `[admin]`).
    pub admin_limits: super::AdminLimits,
    /// The text this config was compiled from (served by `GET /config`, secrets redacted).
    pub source: String,
    /// FNV-1a hash of `source`, hex (`GET /status`).
    pub hash: String,
    /// The access log.
    pub access_log: Option<LogConfig>,
    /// TLS termination (`[tls]`); `None`: plain listeners only.
    pub tls: Option<crate::tls::TlsConfig>,
    /// What `tollgate check` warns about (certificates expiring, `verify = false`), in the
    /// shape of errors (key and line); the config runs as it is.
    pub warnings: Vec<ConfigError>,
    /// The directory relative file paths (certificates, keys) were resolved against: the
    /// config file's (`None`: the process's working directory).
    pub base_dir: Option<std::path::PathBuf>,
    /// Routes' parameter mappings (`request_parameters`, `response_parameters`).
    pub mapping: super::mapping::MappingConfig,
    /// Routes' XML ⇄ JSON body transformations.
    pub transforms: super::transform::TransformConfig,
    /// Routes' mapping templates.
    pub templates: super::templates::TemplateConfig,
    /// Models and routes' request validation.
    pub validation: super::validation::ValidationConfig,
    /// Routes' response compression (and request decompression limits).
    pub compression: super::compression::CompressionConfig,
    /// Customised gateway errors.
    pub gateway_responses: crate::gateway_response::GatewayResponses,
    /// Which routes read their request body whole before the integration.
    pub bodies: super::bodies::BodyHolds,
}

/// `[server]`, resolved.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    /// Resolved worker count (never 0).
    pub workers: usize,
    pub pin_cores: bool,
    pub driver: DriverChoice,
    pub ring_entries: u32,
    pub max_connections: usize,
    pub read_buffer_bytes: usize,
    pub backlog: u32,
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// `request_buffer_bytes` and `min_body_rate` of `[server.limits]`: what routes and
    /// upstreams without their own values use.
    pub body: BodyPolicy,
    /// Lingering close: most client bytes discarded before closing anyway.
    pub max_linger_bytes: u64,
    /// Answer plain-HTTP requests with 308 to the https URL (only with a `[tls]` listener).
    pub redirect_https: bool,
    /// `server.h2c` and `[server.http2]`.
    pub http2: super::http2::Http2Config,
}

/// `[server.timeouts]`, as durations.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub body_read: Duration,
    pub keepalive_idle: Duration,
    pub write: Duration,
    pub shutdown: Duration,
    /// Time a request body may take before its route's `min_body_rate` applies.
    pub body_rate_grace: Duration,
    /// Lingering close: longest time to keep discarding a client's bytes (zero: no lingering).
    pub linger: Duration,
    /// Idle timeout of upgraded (WebSocket) connections, for routes without their own.
    pub websocket_idle: Duration,
}

/// One `[[route]]`.
#[derive(Debug)]
pub struct RouteConfig {
    pub key: String,
    /// What identifies the route across reloads and in metrics: the key, plus ` @HOST` for a
    /// host-specific route (the same key may exist once per host).
    pub id: String,
    /// The route as metrics and logs name it: its key (` @HOST` for a host route); the stage
    /// and side of a stage's route are labels of their own.
    pub label: String,
    pub integration: Integration,
}

impl RouteConfig {
    /// How the route reads request bodies (buffering, minimum rate): its integration's.
    pub fn body_policy(&self) -> BodyPolicy {
        match &self.integration {
            Integration::Http { forwarding, .. } => forwarding.body,
            Integration::Lambda(l) => l.body,
            Integration::Mock(_) => BodyPolicy::default(),
        }
    }
}

/// A route's identity (see [`RouteConfig::id`]).
pub fn route_id(key: &str, host: Option<&str>) -> String {
    match host {
        Some(h) => format!("{key} @{}", h.to_ascii_lowercase()),
        None => key.to_string(),
    }
}

/// What a matched route does with the request.
#[derive(Debug)]
pub enum Integration {
    /// Proxy to `upstreams[upstream]`, optionally rewriting the path.
    Http {
        upstream: usize,
        path: Option<PathTemplate>,
        /// Body buffering and rate, integration timeout, API key stripping.
        forwarding: Forwarding,
    },
    /// Answer with a static response.
    Mock(MockResponse),
    /// Invoke `functions[function]` with the request as an event (`function = "NAME"`).
    Lambda(super::functions::LambdaRoute),
}

pub(super) struct Ctx<'a> {
    text: &'a str,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    base: Option<std::path::PathBuf>,
    /// Each route's stage variables (`None`: a top-level route), once stages are expanded.
    stage_vars: Vec<Option<super::apis::Vars>>,
}

impl Ctx<'_> {
    /// Route `route`'s stage variables (`None`: a top-level route, where `$stageVariables`
    /// is an error).
    pub(super) fn stage_vars(&self, route: usize) -> Option<super::apis::Vars> {
        self.stage_vars.get(route).cloned().flatten()
    }

    /// The text being compiled (to turn another entry's span into a line).
    pub(super) fn text(&self) -> &str {
        self.text
    }

    /// The directory relative file paths resolve against (see [`super::from_str_in`]).
    pub(super) fn base(&self) -> Option<&std::path::Path> {
        self.base.as_deref()
    }

    /// A warning: the config is valid, but `tollgate check` reports this.
    pub(super) fn warn<T>(
        &mut self,
        span: &Spanned<T>,
        key: impl Into<String>,
        msg: impl Into<String>,
    ) {
        let w = ConfigError::at(self.text, span.span(), key.into(), msg.into());
        self.warnings.push(w);
    }

    pub(super) fn err<T>(
        &mut self,
        span: &Spanned<T>,
        key: impl Into<String>,
        msg: impl Into<String>,
    ) {
        let e = ConfigError::at(self.text, span.span(), key.into(), msg.into());
        self.errors.push(e);
    }

    /// The value of a numeric setting; outside `range` it is refused with an error naming the
    /// key, its line and the range (the value is still returned so checking can go on).
    pub(super) fn range<T: PartialOrd + Copy + Display>(
        &mut self,
        v: &Spanned<T>,
        key: impl Into<String>,
        range: &RangeInclusive<T>,
    ) -> T {
        let x = *v.get_ref();
        if !range.contains(&x) {
            let m = format!("must be in {}..={} (got {x})", range.start(), range.end());
            self.err(v, key, m);
        }
        x
    }

    /// A setting in milliseconds (see [`Ctx::range`]), as a duration.
    pub(super) fn millis(
        &mut self,
        v: &Spanned<u64>,
        key: impl Into<String>,
        range: &RangeInclusive<u64>,
    ) -> Duration {
        Duration::from_millis(self.range(v, key, range))
    }
}

/// Validates `raw` (parsed from `text`) into a [`Config`], collecting every error.
pub fn compile(raw: RawConfig, text: &str) -> Result<Config, ConfigErrors> {
    let mut raw = raw;
    let base = super::base_dir();
    // the files APIs name, after the config text: one text every span is a place in
    let mut sources = super::api_sources::Sources::read(&raw, text, base.as_deref());
    let vtext = std::mem::take(&mut sources.text);
    let mut cx = Ctx {
        text: &vtext,
        errors: std::mem::take(&mut sources.errors),
        warnings: Vec::new(),
        base,
        stage_vars: Vec::new(),
    };
    // stages deploy their APIs' routes after the top-level ones (see `apis`)
    let expanded = super::apis::expand(&mut raw, &mut sources, &mut cx);
    cx.stage_vars = expanded.vars;
    let mut apis = expanded.apis;
    // an API's own gateway responses, per deployment of it (the config's fill the gaps)
    apis.gateway_responses = (0..apis.deployments.len()).map(|_| None).collect();
    for (d, name, list) in &expanded.gateway {
        let table = super::gateway_responses::compile_list(
            list,
            &format!("api[{name}].gateway_response"),
            &mut cx,
        );
        if let Some(slot) = apis.gateway_responses.get_mut(*d as usize) {
            *slot = Some(table);
        }
    }
    let result = compile_expanded(raw, text, &vtext, apis, &mut cx);
    let mut errors = std::mem::take(&mut cx.errors);
    let mut warnings = std::mem::take(&mut cx.warnings);
    for e in errors.iter_mut().chain(warnings.iter_mut()) {
        super::apis::name_route(e, &expanded.labels);
        sources.place(e);
    }
    // an API deployed on several stages repeats the same problem once per stage
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| {
        seen.insert((
            e.file.clone(),
            e.line,
            e.column,
            e.key.clone(),
            e.message.clone(),
        ))
    });
    match result {
        Some(mut cfg) if errors.is_empty() => {
            cfg.warnings = warnings;
            Ok(cfg)
        }
        _ => Err(ConfigErrors(errors)),
    }
}

/// [`compile`] once the APIs' routes are routes of `raw`.
fn compile_expanded(
    raw: RawConfig,
    text: &str,
    vtext: &str,
    apis: super::apis::ApisConfig,
    cx: &mut Ctx<'_>,
) -> Option<Config> {
    let cx = &mut *cx;
    let server = compile_server(&raw.server, cx);
    // TLS listeners may repeat neither a plain nor the admin listener
    let mut taken = server.as_ref().map_or_else(Vec::new, |s| s.listen.clone());
    taken.extend(
        raw.admin
            .as_ref()
            .and_then(|a| listen_address(a.listen.get_ref())),
    );
    let tls = super::tls::compile(raw.tls.as_ref(), &taken, cx);
    super::tls::check_redirect(&raw.server, raw.tls.is_some(), cx);
    if raw.route.is_empty() && raw.api.is_empty() {
        // an empty file, or one without [[route]]: the gateway would answer 404 to everything
        let at = Spanned::new(0..0, ());
        cx.err(&at, "route", "no routes: add at least one [[route]]");
    }
    let mut upstreams = compile_upstreams(&raw.upstream, cx);
    // remote functions' hidden upstreams go after the user's: routes' indices do not move
    let functions = super::functions::compile(&raw.function, &raw.upstream, &mut upstreams, cx);
    super::auth_request::reserved_upstream_names(&raw.upstream, cx);
    // authorizers' hidden upstreams (`jwks:NAME`, `authorizer:NAME`) go after those too
    let authorizers = super::auth::compile(&raw.authorizer, &raw.function, &mut upstreams, cx);
    super::auth_jwt::refuse_reserved_upstreams(&raw.upstream, cx);
    let client_ca = tls
        .as_ref()
        .is_some_and(|t| t.client_auth != crate::tls::ClientAuth::Off);
    let access = super::access::compile(&raw, client_ca, cx);
    let specs: Vec<RouteSpec<'_>> = raw
        .route
        .iter()
        .map(|r| RouteSpec {
            key: r.key.get_ref().as_str(),
            host: r.host.as_ref().map(|h| h.get_ref().as_str()),
        })
        .collect();
    let router = match Routers::build(&specs, &apis.ranges()) {
        Ok(r) => Some(r),
        Err(errs) => {
            for e in errs {
                if let Some(r) = raw.route.get(e.index) {
                    // a conflict names the other route's index and line too
                    let other = e.other.and_then(|o| Some((o, raw.route.get(o)?)));
                    let m = match other {
                        Some((o, other)) => {
                            let (line, _) = super::line_col(vtext, other.key.span().start);
                            format!("{}; route[{o}] is at line {line}", e.message)
                        }
                        None => e.message,
                    };
                    cx.err(&r.key, format!("route[{}].key", e.index), m);
                }
            }
            None
        }
    };
    let mut routes = Vec::with_capacity(raw.route.len());
    let body = server.as_ref().map_or_else(BodyPolicy::default, |s| s.body);
    let ws_idle = server
        .as_ref()
        .map_or(Duration::from_millis(raw::DEFAULT_WEBSOCKET_IDLE_MS), |s| {
            s.timeouts.websocket_idle
        });
    let server_fwd = (body, ws_idle);
    for (i, r) in raw.route.iter().enumerate() {
        let raws = (&raw.upstream[..], &raw.function[..]);
        if let Some(rc) = compile_route(i, r, router.as_ref(), raws, server_fwd, cx) {
            routes.push(rc);
        }
    }
    // a stage's route is the same route once per stage and side: its identity says which
    for (i, rc) in routes.iter_mut().enumerate() {
        if let Some((stage, canary)) = apis.stage_of(i) {
            let side = if canary { " canary" } else { "" };
            rc.id = format!("{} [{}{side}]", rc.label, stage.id);
        }
    }
    let mut throttle = super::limits::compile(&raw, cx);
    // limits carry over a reload by route identity: a stage's route's includes its stage
    for (limits, rc) in throttle.routes.iter_mut().zip(&routes) {
        limits.name.clone_from(&rc.id);
    }
    // transformations (issue 13): each feature compiles its own part of every route
    let mapping = super::mapping::compile(&raw, cx);
    let transforms = super::transform::compile(&raw, cx);
    let templates = super::templates::compile(&raw, cx);
    let validation = super::validation::compile(&raw, cx);
    let compression = super::compression::compile(&raw, cx);
    let gateway_responses = super::gateway_responses::compile(&raw, cx);
    let needs: Vec<bool> = (0..raw.route.len())
        .map(|i| {
            mapping.routes.get(i).is_some_and(|m| m.reads_body())
                || transforms
                    .routes
                    .get(i)
                    .is_some_and(|t| t.as_ref().is_some_and(|t| t.request.is_some()))
                || templates.routes.get(i).is_some_and(|t| t.request.is_some())
                || validation
                    .routes
                    .get(i)
                    .is_some_and(|v| v.as_ref().is_some_and(|v| v.reads_body()))
        })
        .collect();
    let bodies = super::bodies::compile(&raw, &needs, cx);
    let admin = raw
        .admin
        .as_ref()
        .and_then(|a| match listen_address(a.listen.get_ref()) {
            Some(addr)
                if addr.port() == 0
                    || !server.as_ref().is_some_and(|s| s.listen.contains(&addr)) =>
            {
                Some(addr)
            }
            Some(_) => {
                cx.err(
                    &a.listen,
                    "admin.listen",
                    "must differ from every server.listen address",
                );
                None
            }
            None => {
                let m = super::upstreams::listen_problem(a.listen.get_ref());
                cx.err(&a.listen, "admin.listen", m);
                None
            }
        });
    let admin_limits = raw
        .admin
        .as_ref()
        .map_or_else(Default::default, |a| compile_admin_limits(a, cx));
    let access_log = raw.access_log.as_ref().and_then(|l| {
        let format = match Format::parse(l.format.get_ref()) {
            Ok(f) => f,
            Err(m) => {
                cx.err(&l.format, "access_log.format", m);
                return None;
            }
        };
        let p = l.path.get_ref();
        if p.is_empty() {
            cx.err(
                &l.path,
                "access_log.path",
                "must be a file path or \"-\" for stdout",
            );
            return None;
        }
        let buffer_bytes = cx.range(
            &l.buffer_bytes,
            "access_log.buffer_bytes",
            &raw::LOG_BUFFER_BYTES,
        );
        let flush = cx.millis(&l.flush_ms, "access_log.flush_ms", &raw::LOG_FLUSH_MS);
        Some(LogConfig {
            path: (p != "-").then(|| std::path::PathBuf::from(p)),
            format,
            buffer_bytes,
            flush,
        })
    });
    match (server, router) {
        (Some(server), Some(router)) if cx.errors.is_empty() => Some(Config {
            access_log,
            server,
            upstreams,
            routes,
            router,
            functions,
            authorizers,
            access,
            throttle,
            admin,
            admin_limits,
            source: text.to_string(),
            // the API files count: changing one is a change of config
            hash: fnv1a_hex(vtext),
            tls,
            warnings: Vec::new(), // set by `compile`, once placed in their files
            base_dir: cx.base.clone(),
            apis,
            mapping,
            transforms,
            templates,
            validation,
            compression,
            gateway_responses,
            bodies,
        }),
        _ => None,
    }
}

fn compile_server(s: &raw::RawServer, cx: &mut Ctx<'_>) -> Option<ServerConfig> {
    let mut listen = Vec::new();
    if s.listen.is_empty() {
        listen.extend(listen_address(raw::DEFAULT_LISTEN));
    }
    for (i, l) in s.listen.iter().enumerate() {
        match listen_address(l.get_ref()) {
            Some(addr) if !listen.contains(&addr) => listen.push(addr),
            Some(_) => cx.err(l, format!("server.listen[{i}]"), "duplicate listen address"),
            None => cx.err(
                l,
                format!("server.listen[{i}]"),
                super::upstreams::listen_problem(l.get_ref()),
            ),
        }
    }
    let workers = match *s.workers.get_ref() {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => {
            if n > raw::MAX_WORKERS {
                let m = format!(
                    "must be 0 (one per core) or in 1..={} (got {n})",
                    raw::MAX_WORKERS
                );
                cx.err(&s.workers, "server.workers", m);
            }
            n
        }
    };
    let entries = cx.range(&s.ring_entries, "server.ring_entries", &raw::RING_ENTRIES);
    let max_connections = cx.range(
        &s.max_connections,
        "server.max_connections",
        &raw::MAX_CONNECTIONS,
    );
    let rb = cx.range(
        &s.read_buffer_bytes,
        "server.read_buffer_bytes",
        &raw::READ_BUFFER_BYTES,
    );
    let backlog = cx.range(&s.backlog, "server.backlog", &raw::BACKLOG);
    let l = &s.limits;
    let limits = Limits {
        max_head_bytes: cx.range(
            &l.max_head_bytes,
            "server.limits.max_head_bytes",
            &raw::HEAD_BYTES,
        ),
        max_uri_bytes: *l.max_uri_bytes.get_ref(),
        max_headers: cx.range(
            &l.max_headers,
            "server.limits.max_headers",
            &(1..=crate::http::MAX_HEADERS_CAPACITY),
        ),
        max_body_bytes: cx.range(
            &l.max_body_bytes,
            "server.limits.max_body_bytes",
            &raw::BODY_BYTES,
        ),
        ..Limits::default()
    };
    // (compared with max_head_bytes only when that one is valid: no follow-on error)
    let head_ok = raw::HEAD_BYTES.contains(&limits.max_head_bytes);
    if limits.max_uri_bytes < raw::MIN_URI_BYTES
        || (head_ok && limits.max_uri_bytes >= limits.max_head_bytes)
    {
        let m = format!(
            "must be in {}..{} (below server.limits.max_head_bytes; got {})",
            raw::MIN_URI_BYTES,
            limits.max_head_bytes,
            limits.max_uri_bytes
        );
        cx.err(&l.max_uri_bytes, "server.limits.max_uri_bytes", m);
    }
    let t = &s.timeouts;
    let key = |k: &str| format!("server.timeouts.{k}");
    let timeouts = Timeouts {
        header_read: cx.millis(&t.header_read_ms, key("header_read_ms"), &raw::TIMEOUT_MS),
        body_read: cx.millis(&t.body_read_ms, key("body_read_ms"), &raw::TIMEOUT_MS),
        keepalive_idle: cx.millis(
            &t.keepalive_idle_ms,
            key("keepalive_idle_ms"),
            &raw::TIMEOUT_MS,
        ),
        write: cx.millis(&t.write_ms, key("write_ms"), &raw::TIMEOUT_MS),
        shutdown: cx.millis(&t.shutdown_ms, key("shutdown_ms"), &raw::SHUTDOWN_MS),
        body_rate_grace: forwarding::grace(t, cx),
        linger: cx.millis(&t.linger_ms, key("linger_ms"), &(0..=raw::MAX_LINGER_MS)),
        websocket_idle: cx.millis(
            &t.websocket_idle_ms,
            key("websocket_idle_ms"),
            &raw::WEBSOCKET_IDLE_MS,
        ),
    };
    let body = forwarding::server_policy(l, cx);
    let max_linger_bytes = cx.range(
        &l.max_linger_bytes,
        "server.limits.max_linger_bytes",
        &(0..=raw::MAX_LINGER_BYTES),
    );
    Some(ServerConfig {
        listen,
        workers,
        pin_cores: s.pin_cores,
        driver: s.driver,
        ring_entries: entries,
        max_connections,
        read_buffer_bytes: rb,
        backlog,
        limits,
        timeouts,
        body,
        max_linger_bytes,
        redirect_https: *s.redirect_https.get_ref(),
        http2: super::http2::compile(*s.h2c.get_ref(), &s.http2, cx),
    })
}

fn compile_route(
    i: usize,
    r: &raw::RawRoute,
    router: Option<&Routers>,
    (ups, funcs): (&[raw::RawUpstream], &[raw::RawFunction]),
    (server_body, ws_idle): (BodyPolicy, Duration),
    cx: &mut Ctx<'_>,
) -> Option<RouteConfig> {
    let key = r.key.get_ref().clone();
    forwarding::check_route(i, r, cx);
    let integration = match (&r.upstream, &r.mock, &r.function) {
        (Some(u), None, None) => {
            // the rewrite is checked whether or not the upstream is known: one run reports both
            let path = match (&r.path, router) {
                (Some(p), Some(router)) => {
                    match PathTemplate::parse(p.get_ref(), router.param_names(i)) {
                        Ok(t) => Ok(Some(t)),
                        Err(m) => {
                            cx.err(p, format!("route[{i}].path"), m);
                            Err(())
                        }
                    }
                }
                _ => Ok(None),
            };
            let Some((idx, up)) = ups
                .iter()
                .enumerate()
                .find(|(_, x)| x.name.get_ref() == u.get_ref())
            else {
                let m = format!("unknown upstream {:?}", u.get_ref());
                cx.err(u, format!("route[{i}].upstream"), m);
                return None;
            };
            let path = path.ok()?;
            Integration::Http {
                upstream: idx,
                path,
                forwarding: forwarding::route(r, up, server_body, ws_idle),
            }
        }
        (None, Some(m), None) => {
            if let Some(p) = &r.path {
                let msg = "only routes with an upstream can rewrite the path";
                cx.err(p, format!("route[{i}].path"), msg);
            }
            Integration::Mock(compile_mock(i, m, cx)?)
        }
        (None, None, Some(f)) => {
            let l = super::functions::route(i, r, f, funcs, server_body, cx)?;
            Integration::Lambda(l)
        }
        (None, None, None) => {
            cx.err(
                &r.key,
                format!("route[{i}]"),
                "needs an integration: upstream, mock or function",
            );
            return None;
        }
        (u, m, f) => {
            let set: Vec<&str> = [("upstream", u.is_some()), ("mock", m.is_some())]
                .into_iter()
                .chain([("function", f.is_some())])
                .filter_map(|(k, on)| on.then_some(k))
                .collect();
            let msg = format!(
                "set one of upstream, mock or function, not several (this route sets {})",
                set.join(" and ")
            );
            cx.err(&r.key, format!("route[{i}]"), msg);
            return None;
        }
    };
    if let (None, Some(p)) = (&r.function, &r.payload_format) {
        let msg = "only function routes have a payload format";
        cx.err(p, format!("route[{i}].payload_format"), msg);
    }
    let id = route_id(&key, r.host.as_ref().map(|h| h.get_ref().as_str()));
    Some(RouteConfig {
        key,
        label: id.clone(),
        id,
        integration,
    })
}

/// `tchar` of RFC 9110 §5.6.2.
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// FNV-1a 64 of `text`, as 16 hex digits: a stable identity of a config's text.
pub fn fnv1a_hex(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Ranges of the `[admin]` limits: a connection at least, a head that holds a request line
/// and a few fields, an idle time long enough to type a request.
pub const ADMIN_MAX_CONNECTIONS: std::ops::RangeInclusive<u64> = 1..=4096;
pub const ADMIN_MAX_REQUEST_BYTES: std::ops::RangeInclusive<u64> = 1024..=1_048_576;
pub const ADMIN_IDLE_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;

/// `[admin]` limits, each checked against its range (errors name the key and its line).
fn compile_admin_limits(a: &raw::RawAdmin, cx: &mut Ctx<'_>) -> super::AdminLimits {
    let conns = cx.range(
        &a.max_connections,
        "admin.max_connections",
        &ADMIN_MAX_CONNECTIONS,
    );
    let bytes = cx.range(
        &a.max_request_bytes,
        "admin.max_request_bytes",
        &ADMIN_MAX_REQUEST_BYTES,
    );
    let idle = cx.millis(
        &a.idle_timeout_ms,
        "admin.idle_timeout_ms",
        &ADMIN_IDLE_TIMEOUT_MS,
    );
    super::AdminLimits {
        max_connections: usize::try_from(conns).unwrap_or(super::types::DEFAULT_MAX_CONNECTIONS),
        max_request_bytes: usize::try_from(bytes)
            .unwrap_or(super::types::DEFAULT_MAX_REQUEST_BYTES),
        idle_timeout: idle,
    }
}

#[cfg(test)]
mod tests {
    use super::super::from_str;
    use super::Integration;

    fn mock_head(text: &str) -> String {
        let c = from_str(text).unwrap_or_else(|e| panic!("{}", e.render("t")));
        match &c.routes[0].integration {
            Integration::Mock(m) => String::from_utf8_lossy(&m.head).into_owned(),
            _ => panic!("not a mock"),
        }
    }

    #[test]
    fn bodiless_mock_with_body_is_refused_with_key_and_line() {
        for status in [204, 304] {
            let text = format!(
                "[[route]]\nkey = \"GET /a\"\nmock = {{ status = 200 }}\n[[route]]\nkey = \"GET /p\"\n\nmock = {{ status = {status}, body = \"x\" }}\n"
            );
            let e = from_str(&text).unwrap_err();
            assert_eq!(e.0.len(), 1, "{status}");
            assert_eq!(e.0[0].key, "route[1].mock.body", "{status}");
            assert_eq!(e.0[0].line, 7, "{status}");
            assert!(e.render("t.toml").starts_with("t.toml:7:"), "{status}");
        }
    }

    #[test]
    fn linger_bounds_are_checked_with_key_and_line() {
        let text = "[server]\nlisten = [\"127.0.0.1:0\"]\n[server.limits]\nmax_linger_bytes = 2000000000\n\
[server.timeouts]\nlinger_ms = 60001\n[[route]]\nkey = \"GET /p\"\nmock = {}\n";
        let e = from_str(text).unwrap_err();
        let got: Vec<_> = e.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert!(
            got.contains(&("server.limits.max_linger_bytes", 4)),
            "{got:?}"
        );
        assert!(got.contains(&("server.timeouts.linger_ms", 6)), "{got:?}");
        let ok = "[server]\nlisten = [\"127.0.0.1:0\"]\n[server.limits]\nmax_linger_bytes = 0\n\
[server.timeouts]\nlinger_ms = 0\n[[route]]\nkey = \"GET /p\"\nmock = {}\n";
        let c = from_str(ok).unwrap_or_else(|e| panic!("{}", e.render("t")));
        assert!(c.server.timeouts.linger.is_zero());
        assert_eq!(c.server.max_linger_bytes, 0);
        let c = from_str("[[route]]\nkey = \"GET /p\"\nmock = {}\n").unwrap();
        assert_eq!(c.server.timeouts.linger.as_millis(), 5000);
        assert_eq!(c.server.max_linger_bytes, 64 << 20);
    }

    #[test]
    fn mock_headers_tollgate_sets_are_refused() {
        for name in [
            "x-request-id",
            "Upgrade",
            "te",
            "trailer",
            "proxy-connection",
        ] {
            let text = format!(
                "[[route]]\nkey = \"GET /p\"\nmock = {{ headers = {{ \"{name}\" = \"x\" }} }}\n"
            );
            let e = from_str(&text).unwrap_err();
            assert_eq!(e.0.len(), 1, "{name}");
            assert_eq!(e.0[0].key, "route[0].mock.headers", "{name}");
            assert_eq!(e.0[0].line, 3, "{name}");
        }
    }

    #[test]
    fn bodiless_mock_has_no_framing_or_content_type() {
        for status in [204, 304] {
            let head = mock_head(&format!(
                "[[route]]\nkey = \"GET /p\"\nmock = {{ status = {status}, headers = {{ \"x-a\" = \"1\" }} }}\n"
            ));
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
            assert!(head.contains("x-a: 1\r\n"), "{head}");
            let lower = head.to_ascii_lowercase();
            assert!(!lower.contains("content-length"), "{head}");
            assert!(!lower.contains("content-type"), "{head}");
        }
        // a 200 mock keeps its framing, even with an empty body
        let head = mock_head("[[route]]\nkey = \"GET /p\"\nmock = { status = 200 }\n");
        assert!(head.contains("content-length: 0\r\n"), "{head}");
    }
}
