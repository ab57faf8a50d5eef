//! Stage two of loading: validate the raw structs and compile them into the immutable [`Config`].
//!
//! Owns: every semantic check (addresses resolve, names are unique and referenced names exist,
//! each route has exactly one integration, limits are sane, route keys are well formed and do not
//! conflict) and the precomputation the hot path relies on: the route trie, path templates and
//! pre-rendered mock responses. All errors are collected, each naming its key and line, so
//! `tollgate check` can print them all at once. Leaves out: runtime state (pools, sockets); a
//! reload compiles a fresh `Config` and workers swap to it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use toml::Spanned;

use super::raw::{self, Balance, DriverChoice, RawConfig};
use super::{ConfigError, ConfigErrors};
use crate::accesslog::{Format, LogConfig};
use crate::error::reason_phrase;
use crate::health::CheckSpec;
use crate::http::Limits;
use crate::router::{PathTemplate, RouteSpec, Router};
use crate::throttle::spec::ThrottleConfig;

/// The compiled, immutable configuration shared (read-only) by all workers.
#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub upstreams: Vec<UpstreamConfig>,
    pub routes: Vec<RouteConfig>,
    pub router: Router,
    /// Limits, usage plans, quotas and API keys.
    pub throttle: ThrottleConfig,
    /// The admin listener's address.
    pub admin: Option<SocketAddr>,
    /// The text this config was compiled from (served by `GET /config`, secrets redacted).
    pub source: String,
    /// FNV-1a hash of `source`, hex (`GET /status`).
    pub hash: String,
    /// The access log.
    pub access_log: Option<LogConfig>,
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
}

/// `[server.timeouts]`, as durations.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub body_read: Duration,
    pub keepalive_idle: Duration,
    pub write: Duration,
    pub shutdown: Duration,
}

/// One `[[upstream]]`, with its targets resolved to socket addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    pub name: String,
    /// Every address of every target, in `names` order (what workers balance over).
    pub targets: Vec<SocketAddr>,
    /// The targets as written, each with the addresses it stands for.
    pub names: Vec<TargetName>,
    /// How often host-name targets are looked up again.
    pub resolve_interval: Duration,
    pub balance: Balance,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub max_idle_per_worker: usize,
    pub idle_timeout: Duration,
    pub health: Option<CheckSpec>,
    pub passive_failures: u32,
    pub passive_cooldown: Duration,
}

/// One entry of an upstream's `targets` and the addresses it resolved to (one for an IP
/// literal; every address the name had at load, or at its latest re-resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetName {
    /// As written, `host:port`.
    pub target: String,
    pub kind: super::resolve::Target,
    pub addrs: Vec<SocketAddr>,
}

/// One `[[route]]`.
#[derive(Debug)]
pub struct RouteConfig {
    pub key: String,
    /// What identifies the route across reloads and in metrics: the key, plus ` @HOST` for a
    /// host-specific route (the same key may exist once per host).
    pub id: String,
    pub integration: Integration,
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
    },
    /// Answer with a static response.
    Mock(MockResponse),
}

/// A pre-rendered static response: status line and configured headers, then the body.
#[derive(Debug, Clone)]
pub struct MockResponse {
    pub status: u16,
    /// `HTTP/1.1 200 OK\r\n` + configured header lines + `content-length: N\r\n` (no final CRLF).
    pub head: Bytes,
    pub body: Bytes,
}

pub(super) struct Ctx<'a> {
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    pub(super) fn err<T>(
        &mut self,
        span: &Spanned<T>,
        key: impl Into<String>,
        msg: impl Into<String>,
    ) {
        let e = ConfigError::at(self.text, span.span(), key.into(), msg.into());
        self.errors.push(e);
    }
}

/// Validates `raw` (parsed from `text`) into a [`Config`], collecting every error.
pub fn compile(raw: RawConfig, text: &str) -> Result<Config, ConfigErrors> {
    let mut cx = Ctx {
        text,
        errors: Vec::new(),
    };
    let server = compile_server(&raw.server, &mut cx);
    let upstreams = compile_upstreams(&raw.upstream, &mut cx);
    let specs: Vec<RouteSpec<'_>> = raw
        .route
        .iter()
        .map(|r| RouteSpec {
            key: r.key.get_ref().as_str(),
            host: r.host.as_ref().map(|h| h.get_ref().as_str()),
        })
        .collect();
    let router = match Router::build(&specs) {
        Ok(r) => Some(r),
        Err(errs) => {
            for e in errs {
                if let Some(r) = raw.route.get(e.index) {
                    cx.err(&r.key, format!("route[{}].key", e.index), e.message);
                }
            }
            None
        }
    };
    let mut routes = Vec::with_capacity(raw.route.len());
    for (i, r) in raw.route.iter().enumerate() {
        if let Some(rc) = compile_route(i, r, router.as_ref(), &raw.upstream, &mut cx) {
            routes.push(rc);
        }
    }
    let throttle = super::limits::compile(&raw, &mut cx);
    let admin = raw
        .admin
        .as_ref()
        .and_then(|a| match resolve(a.listen.get_ref()) {
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
                let m = format!("cannot resolve {:?} as host:port", a.listen.get_ref());
                cx.err(&a.listen, "admin.listen", m);
                None
            }
        });
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
        Some(LogConfig {
            path: (p != "-").then(|| std::path::PathBuf::from(p)),
            format,
            buffer_bytes: l.buffer_bytes.clamp(512, 16 << 20),
            flush: Duration::from_millis(l.flush_ms.clamp(1, 60_000)),
        })
    });
    match (server, router) {
        (Some(server), Some(router)) if cx.errors.is_empty() => Ok(Config {
            access_log,
            server,
            upstreams,
            routes,
            router,
            throttle,
            admin,
            source: text.to_string(),
            hash: fnv1a_hex(text),
        }),
        _ => Err(ConfigErrors(cx.errors)),
    }
}

fn compile_server(s: &raw::RawServer, cx: &mut Ctx<'_>) -> Option<ServerConfig> {
    let mut listen = Vec::new();
    if s.listen.is_empty() {
        listen.extend(resolve(raw::DEFAULT_LISTEN));
    }
    for (i, l) in s.listen.iter().enumerate() {
        match resolve(l.get_ref()) {
            Some(addr) if !listen.contains(&addr) => listen.push(addr),
            Some(_) => cx.err(l, format!("server.listen[{i}]"), "duplicate listen address"),
            None => cx.err(
                l,
                format!("server.listen[{i}]"),
                format!("cannot resolve {:?} as host:port", l.get_ref()),
            ),
        }
    }
    let workers = if s.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        s.workers
    };
    let entries = *s.ring_entries.get_ref();
    if !(8..=32_768).contains(&entries) {
        cx.err(
            &s.ring_entries,
            "server.ring_entries",
            "must be in 8..=32768",
        );
    }
    if *s.max_connections.get_ref() == 0 {
        cx.err(
            &s.max_connections,
            "server.max_connections",
            "must be at least 1",
        );
    }
    let rb = *s.read_buffer_bytes.get_ref();
    if !(1024..=16 << 20).contains(&rb) {
        cx.err(
            &s.read_buffer_bytes,
            "server.read_buffer_bytes",
            "must be in 1024..=16777216",
        );
    }
    let l = &s.limits;
    let limits = Limits {
        max_head_bytes: *l.max_head_bytes.get_ref(),
        max_uri_bytes: *l.max_uri_bytes.get_ref(),
        max_headers: *l.max_headers.get_ref(),
        max_body_bytes: l.max_body_bytes,
        ..Limits::default()
    };
    if !(1024..=1 << 20).contains(&limits.max_head_bytes) {
        let m = "must be in 1024..=1048576";
        cx.err(&l.max_head_bytes, "server.limits.max_head_bytes", m);
    }
    if limits.max_uri_bytes < 16 || limits.max_uri_bytes >= limits.max_head_bytes {
        let m = "must be at least 16 and below server.limits.max_head_bytes";
        cx.err(&l.max_uri_bytes, "server.limits.max_uri_bytes", m);
    }
    if !(1..=crate::http::MAX_HEADERS_CAPACITY).contains(&limits.max_headers) {
        let m = format!("must be in 1..={}", crate::http::MAX_HEADERS_CAPACITY);
        cx.err(&l.max_headers, "server.limits.max_headers", m);
    }
    let t = &s.timeouts;
    let ms = Duration::from_millis;
    let timeouts = Timeouts {
        header_read: ms(t.header_read_ms.max(1)),
        body_read: ms(t.body_read_ms.max(1)),
        keepalive_idle: ms(t.keepalive_idle_ms.max(1)),
        write: ms(t.write_ms.max(1)),
        shutdown: ms(t.shutdown_ms),
    };
    Some(ServerConfig {
        listen,
        workers,
        pin_cores: s.pin_cores,
        driver: s.driver,
        ring_entries: entries,
        max_connections: *s.max_connections.get_ref(),
        read_buffer_bytes: rb,
        backlog: s.backlog.clamp(16, 65_535),
        limits,
        timeouts,
    })
}

fn resolve(s: &str) -> Option<SocketAddr> {
    s.to_socket_addrs().ok()?.next()
}

/// Bounds of `upstream.resolve_interval_ms`: at least a second (a name is not looked up in a
/// busy loop), at most a day.
pub const RESOLVE_INTERVAL_RANGE_MS: std::ops::RangeInclusive<u64> = 1_000..=86_400_000;

/// One `targets` entry with every address it stands for now (see [`super::resolve`]).
pub fn resolve_target(s: &str) -> Result<TargetName, String> {
    let kind = super::resolve::Target::parse(s)
        .ok_or_else(|| format!("cannot resolve {s:?} as host:port"))?;
    let addrs = super::resolve::addresses(&kind)
        .map_err(|e| format!("cannot resolve {s:?} as host:port: {e}"))?;
    Ok(TargetName {
        target: s.to_string(),
        kind,
        addrs,
    })
}

fn compile_upstreams(ups: &[raw::RawUpstream], cx: &mut Ctx<'_>) -> Vec<UpstreamConfig> {
    let mut out: Vec<UpstreamConfig> = Vec::with_capacity(ups.len());
    for (i, u) in ups.iter().enumerate() {
        let name = u.name.get_ref();
        if name.is_empty() {
            cx.err(&u.name, format!("upstream[{i}].name"), "must not be empty");
        } else if ups[..i].iter().any(|p| p.name.get_ref() == name) {
            cx.err(
                &u.name,
                format!("upstream[{i}].name"),
                format!("duplicate upstream {name:?}"),
            );
        }
        let mut targets = Vec::new();
        if u.targets.get_ref().is_empty() {
            cx.err(
                &u.targets,
                format!("upstream[{i}].targets"),
                "needs at least one target",
            );
        }
        let mut names = Vec::new();
        for (j, t) in u.targets.get_ref().iter().enumerate() {
            match resolve_target(t.get_ref()) {
                Ok(name) => {
                    targets.extend(name.addrs.iter().copied());
                    names.push(name);
                }
                Err(m) => cx.err(t, format!("upstream[{i}].targets[{j}]"), m),
            }
        }
        let resolve_ms = *u.resolve_interval_ms.get_ref();
        if !RESOLVE_INTERVAL_RANGE_MS.contains(&resolve_ms) {
            let m = format!(
                "must be in {}..={}",
                RESOLVE_INTERVAL_RANGE_MS.start(),
                RESOLVE_INTERVAL_RANGE_MS.end()
            );
            cx.err(
                &u.resolve_interval_ms,
                format!("upstream[{i}].resolve_interval_ms"),
                m,
            );
        }
        let ms = |v: u64| Duration::from_millis(v.max(1));
        let health = u.health.as_ref().and_then(|h| {
            let r = h.get_ref();
            if !r.path.starts_with('/') || r.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                let m = "must be an origin-form path such as \"/health\"";
                cx.err(h, format!("upstream[{i}].health.path"), m);
                return None;
            }
            Some(CheckSpec {
                path: r.path.clone(),
                interval: ms(r.interval_ms.max(10)),
                timeout: ms(r.timeout_ms),
                healthy: r.healthy.max(1),
                unhealthy: r.unhealthy.max(1),
            })
        });
        out.push(UpstreamConfig {
            health,
            passive_failures: u.passive_failures,
            passive_cooldown: Duration::from_millis(u.passive_cooldown_ms),
            name: name.clone(),
            targets,
            names,
            resolve_interval: Duration::from_millis(resolve_ms),
            balance: u.balance,
            connect_timeout: ms(u.connect_timeout_ms),
            response_timeout: ms(u.response_timeout_ms),
            max_idle_per_worker: u.max_idle_per_worker,
            idle_timeout: ms(u.idle_timeout_ms),
        });
    }
    out
}

fn compile_route(
    i: usize,
    r: &raw::RawRoute,
    router: Option<&Router>,
    ups: &[raw::RawUpstream],
    cx: &mut Ctx<'_>,
) -> Option<RouteConfig> {
    let key = r.key.get_ref().clone();
    let integration = match (&r.upstream, &r.mock) {
        (Some(u), None) => {
            let Some(idx) = ups.iter().position(|x| x.name.get_ref() == u.get_ref()) else {
                let m = format!("unknown upstream {:?}", u.get_ref());
                cx.err(u, format!("route[{i}].upstream"), m);
                return None;
            };
            let path = match (&r.path, router) {
                (Some(p), Some(router)) => {
                    match PathTemplate::parse(p.get_ref(), router.param_names(i)) {
                        Ok(t) => Some(t),
                        Err(m) => {
                            cx.err(p, format!("route[{i}].path"), m);
                            return None;
                        }
                    }
                }
                _ => None,
            };
            Integration::Http {
                upstream: idx,
                path,
            }
        }
        (None, Some(m)) => {
            if let Some(p) = &r.path {
                let msg = "only routes with an upstream can rewrite the path";
                cx.err(p, format!("route[{i}].path"), msg);
            }
            Integration::Mock(compile_mock(i, m, cx)?)
        }
        (Some(u), Some(_)) => {
            cx.err(
                u,
                format!("route[{i}]"),
                "set either upstream or mock, not both",
            );
            return None;
        }
        (None, None) => {
            cx.err(
                &r.key,
                format!("route[{i}]"),
                "needs an integration: upstream or mock",
            );
            return None;
        }
    };
    let id = route_id(&key, r.host.as_ref().map(|h| h.get_ref().as_str()));
    Some(RouteConfig {
        key,
        id,
        integration,
    })
}

fn compile_mock(i: usize, m: &Spanned<raw::RawMock>, cx: &mut Ctx<'_>) -> Option<MockResponse> {
    let mock = m.get_ref();
    if !(200..=599).contains(&mock.status) {
        cx.err(m, format!("route[{i}].mock.status"), "must be in 200..=599");
        return None;
    }
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        mock.status,
        reason_phrase(mock.status)
    );
    let mut has_type = false;
    for (name, value) in &mock.headers {
        let lower = name.to_ascii_lowercase();
        let bad_name = name.is_empty() || !name.bytes().all(is_tchar);
        let bad_value = value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f);
        let reserved = matches!(
            lower.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "date"
        );
        if bad_name || bad_value || reserved {
            let msg = format!("header {name:?} is not allowed (invalid, or set by tollgate)");
            cx.err(m, format!("route[{i}].mock.headers"), msg);
            return None;
        }
        has_type |= lower == "content-type";
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has_type && !mock.body.is_empty() {
        let t = mock.body.trim_start();
        let ct = if t.starts_with('{') || t.starts_with('[') {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n", mock.body.len()));
    Some(MockResponse {
        status: mock.status,
        head: Bytes::from(head),
        body: Bytes::from(mock.body.clone()),
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
