//! The TOML schema, exactly as an operator writes it.
//!
//! Owns: the serde structs for `tollgate.toml`, every default value (as a named constant) and the
//! first stage of loading (text → structs). Unknown keys are rejected (`deny_unknown_fields`) so a
//! typo is an error naming the key and its line, never a silently ignored setting. Leaves out:
//! meaning. Cross-references (a route naming an upstream), address resolution and route conflicts
//! are checked by [`super::compile`], which turns these structs into the immutable
//! [`super::Config`]. Values that later stages must report errors about are kept `Spanned` so the
//! error can name their line.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Default listen address when `server.listen` is absent.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// io_uring submission queue entries per worker (`server.ring_entries`).
pub const DEFAULT_RING_ENTRIES: u32 = 1024;
/// Open client connections per worker before accept pauses (`server.max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Size of a connection's read buffer while it is busy (`server.read_buffer_bytes`).
pub const DEFAULT_READ_BUFFER_BYTES: usize = 16 * 1024;
/// Listen backlog of each worker's socket (`server.backlog`).
pub const DEFAULT_BACKLOG: u32 = 4096;
/// Time allowed for a client to send a complete request head (`server.timeouts.header_read_ms`).
pub const DEFAULT_HEADER_READ_MS: u64 = 10_000;
/// Time allowed between two reads of a request body (`server.timeouts.body_read_ms`).
pub const DEFAULT_BODY_READ_MS: u64 = 30_000;
/// Time a keep-alive client connection may stay idle (`server.timeouts.keepalive_idle_ms`).
pub const DEFAULT_KEEPALIVE_IDLE_MS: u64 = 75_000;
/// Time allowed for a write to a client to make progress (`server.timeouts.write_ms`).
pub const DEFAULT_WRITE_MS: u64 = 30_000;
/// Grace period for in-flight requests on SIGTERM/SIGINT (`server.timeouts.shutdown_ms`).
pub const DEFAULT_SHUTDOWN_MS: u64 = 10_000;
/// Longest a closing client connection keeps reading (and discarding) what the client still
/// sends after an error response, so the client can read the response instead of getting a
/// reset (`server.timeouts.linger_ms`; RFC 9112 §9.6). nginx's `lingering_timeout`.
pub const DEFAULT_LINGER_MS: u64 = 5_000;
/// Upper bound of `server.timeouts.linger_ms`.
pub const MAX_LINGER_MS: u64 = 60_000;
/// Idle timeout of an upgraded WebSocket connection (`server.timeouts.websocket_idle_ms`, per
/// route `websocket_idle_ms`): 10 minutes, as AWS API Gateway's WebSocket APIs.
pub const DEFAULT_WEBSOCKET_IDLE_MS: u64 = 600_000;
/// Range of `websocket_idle_ms`: zero would close every tunnel at once; a day is the most a
/// silent tunnel is worth keeping (API Gateway caps a connection at 2 hours).
pub const WEBSOCKET_IDLE_MS: RangeInclusive<u64> = 1..=86_400_000;
/// Most bytes a lingering close discards before it closes anyway
/// (`server.limits.max_linger_bytes`): about what a 100 Mbit/s client sends in `linger_ms`.
pub const DEFAULT_MAX_LINGER_BYTES: u64 = 64 * 1024 * 1024;
/// Upper bound of `server.limits.max_linger_bytes`.
pub const MAX_LINGER_BYTES: u64 = 1 << 30;
/// Upstream connect timeout (`upstream.connect_timeout_ms`).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// Upstream response timeout: AWS API Gateway's 29 s integration timeout.
pub const DEFAULT_RESPONSE_TIMEOUT_MS: u64 = 29_000;
/// Idle upstream connections kept per worker and upstream (`upstream.max_idle_per_worker`).
pub const DEFAULT_MAX_IDLE_PER_WORKER: usize = 64;
/// Lifetime of an idle pooled upstream connection (`upstream.idle_timeout_ms`).
pub const DEFAULT_UPSTREAM_IDLE_MS: u64 = 60_000;
/// Request body bytes read into memory before an origin is chosen
/// (`server.limits.request_buffer_bytes`, overridable per upstream and route), as nginx reads a
/// body before it picks an upstream; larger bodies are streamed once this much is buffered.
pub const DEFAULT_REQUEST_BUFFER_BYTES: usize = 64 * 1024;
/// Largest accepted `request_buffer_bytes` (memory per in-flight request).
pub const MAX_REQUEST_BUFFER_BYTES: usize = 16 << 20;
/// Slowest accepted average request body rate in bytes per second once the grace period is
/// over (`server.limits.min_body_rate`, overridable per upstream and route; 0 = off). Apache's
/// mod_reqtimeout uses the same 500 B/s.
pub const DEFAULT_MIN_BODY_RATE: u64 = 500;
/// Largest accepted `min_body_rate` (1 GiB/s: anything higher is a typo).
pub const MAX_MIN_BODY_RATE: u64 = 1 << 30;
/// Time a request body may take before `min_body_rate` is enforced
/// (`server.timeouts.body_rate_grace_ms`).
pub const DEFAULT_BODY_RATE_GRACE_MS: u64 = 10_000;
/// Accepted `server.timeouts.body_rate_grace_ms` (zero would judge a body before it started).
pub const BODY_RATE_GRACE_MS_RANGE: std::ops::RangeInclusive<u64> = 1..=3_600_000;
/// Accepted route `timeout_ms`: API Gateway's default integration timeout limits.
pub const ROUTE_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 50..=29_000;

// Accepted ranges. `compile` refuses a value outside its range with `FILE:LINE:COL: key: must
// be in A..=B`; nothing is clamped silently. README's configuration reference lists them.

/// `server.workers` above 0 (0 means one per core) is at most this. A fixed cap, not a multiple
/// of this machine's cores, so `tollgate check` gives the same answer on the machine that checks
/// a config and on the one that runs it; more workers than cores only adds contention.
pub const MAX_WORKERS: usize = 1024;
/// `server.ring_entries`.
pub const RING_ENTRIES: RangeInclusive<u32> = 8..=32_768;
/// `server.max_connections` (per worker).
pub const MAX_CONNECTIONS: RangeInclusive<usize> = 1..=1 << 20;
/// `server.read_buffer_bytes`.
pub const READ_BUFFER_BYTES: RangeInclusive<usize> = 1024..=16 << 20;
/// `server.backlog` (the kernel further caps it at `net.core.somaxconn`).
pub const BACKLOG: RangeInclusive<u32> = 16..=65_535;
/// `server.limits.max_head_bytes`.
pub const HEAD_BYTES: RangeInclusive<usize> = 1024..=1 << 20;
/// `server.limits.max_uri_bytes` is at least this, and below `max_head_bytes`.
pub const MIN_URI_BYTES: usize = 16;
/// `server.limits.max_body_bytes` (0 refuses every request body).
pub const BODY_BYTES: RangeInclusive<u64> = 0..=1 << 40;
/// Every timeout and interval in milliseconds unless a narrower range is given: zero would
/// expire at once (every request would fail), more than an hour is a typo.
pub const TIMEOUT_MS: RangeInclusive<u64> = 1..=3_600_000;
/// `server.timeouts.shutdown_ms`: 0 is allowed and means stop at once, without waiting for
/// requests in flight.
pub const SHUTDOWN_MS: RangeInclusive<u64> = 0..=3_600_000;
/// `upstream.max_idle_per_worker` (0 keeps no idle connection: one per request).
pub const MAX_IDLE_PER_WORKER: RangeInclusive<usize> = 0..=65_536;
/// `upstream.passive_failures` (0 turns passive ejection off).
pub const PASSIVE_FAILURES: RangeInclusive<u32> = 0..=1_000;
/// `upstream.health.interval_ms`.
pub const HEALTH_INTERVAL_MS: RangeInclusive<u64> = 10..=3_600_000;
/// `upstream.health.healthy` and `.unhealthy`: consecutive results that flip a target.
pub const HEALTH_THRESHOLD: RangeInclusive<u32> = 1..=100;
/// `throttle.sync_interval_ms`.
pub const SYNC_INTERVAL_MS: RangeInclusive<u64> = 1..=1_000;
/// `api_keys.flush_ms`.
pub const QUOTA_FLUSH_MS: RangeInclusive<u64> = 10..=3_600_000;
/// `max_clients` of a per-client limit.
pub const MAX_CLIENTS: RangeInclusive<usize> = 16..=1 << 24;
/// `access_log.buffer_bytes`.
pub const LOG_BUFFER_BYTES: RangeInclusive<usize> = 512..=16 << 20;
/// `access_log.flush_ms`.
pub const LOG_FLUSH_MS: RangeInclusive<u64> = 1..=60_000;

/// The whole file.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Unsupported parts of OpenAPI definitions are errors, not warnings (an `[[api]]` may
    /// override it). First: a plain value is written before every table.
    #[serde(default, skip_serializing_if = "is_false")]
    pub strict_openapi: bool,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub upstream: Vec<RawUpstream>,
    #[serde(default)]
    pub route: Vec<RawRoute>,
    /// Gateway-wide default limit (API Gateway's account/stage level).
    pub throttle: Option<RawGatewayThrottle>,
    #[serde(default)]
    pub api_keys: RawApiKeys,
    #[serde(default)]
    pub usage_plan: Vec<RawPlan>,
    #[serde(default)]
    pub api_key: Vec<RawApiKey>,
    /// The admin listener (metrics, status, dashboard); absent: none.
    pub admin: Option<RawAdmin>,
    /// The access log; absent: none.
    pub access_log: Option<RawAccessLog>,
    /// TLS termination; absent: plain listeners only.
    pub tls: Option<RawTls>,
    /// Functions routes can invoke (`[[function]]`).
    #[serde(default)]
    pub function: Vec<RawFunction>,
    /// Authorizers routes can name (`[[authorizer]]`).
    #[serde(default)]
    pub authorizer: Vec<RawAuthorizer>,
    /// CORS for every route (a route may override or disable it); absent: none.
    pub cors: Option<RawCors>,
    /// JSON Schema models routes validate request bodies against (`[[model]]`).
    #[serde(default)]
    pub model: Vec<super::validation::RawModel>,
    /// Customised gateway errors (`[[gateway_response]]`).
    #[serde(default)]
    pub gateway_response: Vec<super::gateway_responses::RawGatewayResponse>,
    /// Response compression for every route (a route may override or disable it); absent: none.
    pub compression: Option<super::compression::RawCompression>,
    /// Named APIs (`[[api]]`): routes served through stages and mappings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api: Vec<RawApi>,
    /// Deployed APIs (`[[stage]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stage: Vec<RawStage>,
    /// Where stages are served (`[[mapping]]`: host, base path, header).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mapping: Vec<RawApiMapping>,
}

pub use super::raw_apis::{RawApi, RawApiFile, RawApiMapping, RawCanary, RawStage};

pub use super::raw_auth::{RawAuthorizer, RawCors, RawCredential, RawRouteCors};

pub use super::raw_functions::RawFunction;

pub use super::raw_targets::{RawTarget, DEFAULT_WEIGHT, WEIGHT};

pub use super::raw_tls::{RawCertificate, RawTls, RawUpstreamTls, DEFAULT_TLS_MIN_VERSION};

/// `[access_log]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    /// A file, or `"-"` for stdout.
    pub path: Spanned<String>,
    /// `"json"` or a custom format with `$context.NAME` variables.
    #[serde(default = "d_format")]
    pub format: Spanned<String>,
    #[serde(default = "d_log_buffer")]
    pub buffer_bytes: Spanned<usize>,
    #[serde(default = "d_log_flush")]
    pub flush_ms: Spanned<u64>,
}

fn d_format() -> Spanned<String> {
    Spanned::new(0..0, "json".to_string())
}
fn d_log_buffer() -> Spanned<usize> {
    Spanned::new(0..0, crate::accesslog::DEFAULT_BUFFER_BYTES)
}
fn d_log_flush() -> Spanned<u64> {
    Spanned::new(0..0, crate::accesslog::DEFAULT_FLUSH_MS)
}

/// `[admin]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Spanned<String>,
    #[serde(default = "d_admin_conns")]
    pub max_connections: Spanned<u64>,
    #[serde(default = "d_admin_request")]
    pub max_request_bytes: Spanned<u64>,
    #[serde(default = "d_admin_idle")]
    pub idle_timeout_ms: Spanned<u64>,
    /// Hex SHA-256 of the bearer token every admin request must carry; absent: no token.
    pub token_sha256: Option<Spanned<String>>,
    /// Leave `GET /metrics` open without the token (for scrapers).
    #[serde(default)]
    pub metrics_public: bool,
}

fn d_admin_conns() -> Spanned<u64> {
    Spanned::new(0..0, super::types::DEFAULT_MAX_CONNECTIONS as u64)
}
fn d_admin_request() -> Spanned<u64> {
    Spanned::new(0..0, super::types::DEFAULT_MAX_REQUEST_BYTES as u64)
}
fn d_admin_idle() -> Spanned<u64> {
    Spanned::new(0..0, super::types::DEFAULT_IDLE_TIMEOUT_MS)
}

// The runtime-side types and defaults these raw tables deserialise into; they live with the code
// that runs them (throttle, upstream pools, runtime) and are re-exported here for the schema.
pub use super::upstreams::Balance;
pub use crate::runtime::DriverChoice;
pub use crate::throttle::spec::{
    Period, DEFAULT_API_KEY_HEADER, DEFAULT_MAX_CLIENTS, DEFAULT_QUOTA_FLUSH_MS,
    DEFAULT_SYNC_INTERVAL_MS,
};

/// `[throttle]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayThrottle {
    pub rate: Option<Spanned<f64>>,
    pub burst: Option<u64>,
    #[serde(default = "d_true")]
    pub enforce: bool,
    #[serde(default = "d_sync")]
    pub sync_interval_ms: Spanned<u64>,
}

fn d_true() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn d_sync() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_SYNC_INTERVAL_MS)
}

/// A limit on a route or in a usage plan: `{ rate, burst, enforce, throttle_by, max_clients }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub rate: f64,
    pub burst: u64,
    /// `false`: shadow mode, counted and reported but never rejected.
    #[serde(default = "d_true")]
    pub enforce: bool,
    /// `"ip" | "api_key" | "header:NAME"`: a bucket per client instead of one for all.
    pub throttle_by: Option<String>,
    #[serde(default = "d_max_clients")]
    pub max_clients: usize,
}

fn d_routes() -> Spanned<BTreeMap<String, RawLimit>> {
    Spanned::new(0..0, BTreeMap::new())
}

fn d_max_clients() -> usize {
    DEFAULT_MAX_CLIENTS
}

/// `[api_keys]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApiKeys {
    /// Request header carrying the key.
    pub header: String,
    /// How often quota usage is written to `server.state_dir`.
    pub flush_ms: Spanned<u64>,
}

impl Default for RawApiKeys {
    fn default() -> Self {
        RawApiKeys {
            header: DEFAULT_API_KEY_HEADER.to_string(),
            flush_ms: Spanned::new(0..0, DEFAULT_QUOTA_FLUSH_MS),
        }
    }
}

/// `quota = { limit, period, offset, utc_offset, enforce }`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    pub limit: u64,
    pub period: Period,
    /// As API Gateway: the day the period starts on (week: 0 = Sunday .. 6; month: 0 = the
    /// 1st .. 27 = the 28th; day: 0).
    #[serde(default)]
    pub offset: u32,
    /// Where periods start relative to UTC, `"+HH:MM"` or `"-HH:MM"` (default UTC).
    pub utc_offset: Option<String>,
    #[serde(default = "d_true")]
    pub enforce: bool,
}

/// `[[usage_plan]]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    pub name: Spanned<String>,
    /// Per-key limit on every route.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub throttle: Option<Spanned<RawLimit>>,
    /// Per-key quota.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub quota: Option<Spanned<RawQuota>>,
    /// Per-key limits on given routes, by route key: `{ "GET /keyed" = { rate, burst } }`.
    #[serde(default = "d_routes", deserialize_with = "super::spanned::table")]
    // dotted keys too
    pub routes: Spanned<BTreeMap<String, RawLimit>>,
}

/// `[[api_key]]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    pub name: Spanned<String>,
    pub value: Option<Spanned<String>>,
    /// Hex SHA-256 of the key, so the secret need not sit in the file.
    pub value_sha256: Option<Spanned<String>>,
    pub plan: Option<Spanned<String>>,
    #[serde(default = "d_true")]
    pub enabled: bool,
}

/// `[server]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: Vec<Spanned<String>>,
    pub workers: Spanned<usize>,
    pub pin_cores: bool,
    pub driver: DriverChoice,
    pub ring_entries: Spanned<u32>,
    pub max_connections: Spanned<usize>,
    pub read_buffer_bytes: Spanned<usize>,
    pub backlog: Spanned<u32>,
    pub limits: RawLimits,
    pub timeouts: RawTimeouts,
    /// Where state that must survive a restart (quota usage) is kept.
    pub state_dir: Option<String>,
    /// Answer plain-HTTP requests with 308 to the https URL (needs a `[tls]` listener).
    pub redirect_https: Spanned<bool>,
    /// Plain listeners also accept HTTP/2 with prior knowledge (RFC 9113 §3.3).
    pub h2c: Spanned<bool>,
    /// `[server.http2]`: HTTP/2 limits.
    pub http2: super::http2::RawHttp2,
    /// Senders (CIDRs) whose `X-Forwarded-For` is believed: the client address is the
    /// right-most entry not in this list.
    pub trusted_proxies: Vec<Spanned<String>>,
    /// Only these client addresses (CIDRs) are served (403 otherwise); empty: all.
    pub allow_ips: Vec<Spanned<String>>,
    /// These client addresses (CIDRs) are refused (403); checked before `allow_ips`.
    pub deny_ips: Vec<Spanned<String>>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: Vec::new(),
            workers: Spanned::new(0..0, 0),
            pin_cores: false,
            driver: DriverChoice::Auto,
            ring_entries: Spanned::new(0..0, DEFAULT_RING_ENTRIES),
            max_connections: Spanned::new(0..0, DEFAULT_MAX_CONNECTIONS),
            read_buffer_bytes: Spanned::new(0..0, DEFAULT_READ_BUFFER_BYTES),
            backlog: Spanned::new(0..0, DEFAULT_BACKLOG),
            limits: RawLimits::default(),
            timeouts: RawTimeouts::default(),
            state_dir: None,
            redirect_https: Spanned::new(0..0, false),
            h2c: Spanned::new(0..0, false),
            http2: super::http2::RawHttp2::default(),
            trusted_proxies: Vec::new(),
            allow_ips: Vec::new(),
            deny_ips: Vec::new(),
        }
    }
}

/// `[server.limits]`: protocol limits, defaults in [`crate::http`].
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub max_head_bytes: Spanned<usize>,
    pub max_uri_bytes: Spanned<usize>,
    pub max_headers: Spanned<usize>,
    pub max_body_bytes: Spanned<u64>,
    /// Body bytes buffered before the origin is chosen (route and upstream may override).
    pub request_buffer_bytes: Spanned<usize>,
    /// Minimum average body rate, bytes/s, after `timeouts.body_rate_grace_ms`; 0 = off.
    pub min_body_rate: Spanned<u64>,
    pub max_linger_bytes: Spanned<u64>,
}

impl Default for RawLimits {
    fn default() -> Self {
        let d = crate::http::Limits::default();
        RawLimits {
            max_head_bytes: Spanned::new(0..0, d.max_head_bytes),
            max_uri_bytes: Spanned::new(0..0, d.max_uri_bytes),
            max_headers: Spanned::new(0..0, d.max_headers),
            max_body_bytes: Spanned::new(0..0, d.max_body_bytes),
            request_buffer_bytes: Spanned::new(0..0, DEFAULT_REQUEST_BUFFER_BYTES),
            min_body_rate: Spanned::new(0..0, DEFAULT_MIN_BODY_RATE),
            max_linger_bytes: Spanned::new(0..0, DEFAULT_MAX_LINGER_BYTES),
        }
    }
}

/// `[server.timeouts]`, all in milliseconds.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    pub header_read_ms: Spanned<u64>,
    pub body_read_ms: Spanned<u64>,
    pub keepalive_idle_ms: Spanned<u64>,
    pub write_ms: Spanned<u64>,
    pub shutdown_ms: Spanned<u64>,
    /// How long a request body may take before `limits.min_body_rate` applies.
    pub body_rate_grace_ms: Spanned<u64>,
    pub linger_ms: Spanned<u64>,
    /// Idle timeout of an upgraded (WebSocket) connection: no byte either way for this long
    /// closes both sides. Routes may override it.
    pub websocket_idle_ms: Spanned<u64>,
}

impl Default for RawTimeouts {
    fn default() -> Self {
        RawTimeouts {
            header_read_ms: Spanned::new(0..0, DEFAULT_HEADER_READ_MS),
            body_read_ms: Spanned::new(0..0, DEFAULT_BODY_READ_MS),
            keepalive_idle_ms: Spanned::new(0..0, DEFAULT_KEEPALIVE_IDLE_MS),
            write_ms: Spanned::new(0..0, DEFAULT_WRITE_MS),
            shutdown_ms: Spanned::new(0..0, DEFAULT_SHUTDOWN_MS),
            body_rate_grace_ms: Spanned::new(0..0, DEFAULT_BODY_RATE_GRACE_MS),
            linger_ms: Spanned::new(0..0, DEFAULT_LINGER_MS),
            websocket_idle_ms: Spanned::new(0..0, DEFAULT_WEBSOCKET_IDLE_MS),
        }
    }
}

/// `[[upstream]]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub name: Spanned<String>,
    /// `"host:port"` or `{ address = "host:port", weight = N }` each.
    pub targets: Spanned<Vec<Spanned<RawTarget>>>,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default = "d_connect")]
    pub connect_timeout_ms: Spanned<u64>,
    #[serde(default = "d_response")]
    pub response_timeout_ms: Spanned<u64>,
    #[serde(default = "d_max_idle")]
    pub max_idle_per_worker: Spanned<usize>,
    #[serde(default = "d_idle")]
    pub idle_timeout_ms: Spanned<u64>,
    /// Active health checks, run once per process.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub health: Option<Spanned<RawHealth>>,
    /// Consecutive failures (connect, protocol, 5xx) that eject a target; 0 disables.
    #[serde(default = "d_passive_failures")]
    pub passive_failures: Spanned<u32>,
    /// How long an ejected target is skipped.
    #[serde(default = "d_passive_cooldown")]
    pub passive_cooldown_ms: Spanned<u64>,
    /// Overrides `server.limits.request_buffer_bytes` for routes to this upstream.
    pub request_buffer_bytes: Option<Spanned<usize>>,
    /// Overrides `server.limits.min_body_rate` for routes to this upstream.
    pub min_body_rate: Option<Spanned<u64>>,
    /// How often host-name targets are looked up again (IP literals never are).
    #[serde(default = "d_resolve_interval")]
    pub resolve_interval_ms: Spanned<u64>,
    /// TLS to the targets; absent: plain TCP.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub tls: Option<Spanned<RawUpstreamTls>>,
}

/// Default re-resolution interval of host-name targets (`upstream.resolve_interval_ms`).
pub const DEFAULT_RESOLVE_INTERVAL_MS: u64 = 30_000;

fn d_resolve_interval() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_RESOLVE_INTERVAL_MS)
}

/// Default consecutive failures before passive ejection (`upstream.passive_failures`).
pub const DEFAULT_PASSIVE_FAILURES: u32 = 5;
/// Default ejection time (`upstream.passive_cooldown_ms`).
pub const DEFAULT_PASSIVE_COOLDOWN_MS: u64 = 10_000;

fn d_passive_failures() -> Spanned<u32> {
    Spanned::new(0..0, DEFAULT_PASSIVE_FAILURES)
}
fn d_passive_cooldown() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_PASSIVE_COOLDOWN_MS)
}

/// `health = { path, interval_ms, timeout_ms, healthy, unhealthy }`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub path: String,
    #[serde(default = "d_h_interval")]
    pub interval_ms: Spanned<u64>,
    #[serde(default = "d_h_timeout")]
    pub timeout_ms: Spanned<u64>,
    #[serde(default = "d_h_healthy")]
    pub healthy: Spanned<u32>,
    #[serde(default = "d_h_unhealthy")]
    pub unhealthy: Spanned<u32>,
}

/// Default time between two checks of a target (`upstream.health.interval_ms`).
pub const DEFAULT_HEALTH_INTERVAL_MS: u64 = 5_000;
/// Default time a check may take (`upstream.health.timeout_ms`).
pub const DEFAULT_HEALTH_TIMEOUT_MS: u64 = 1_000;
/// Default consecutive passes that make a target healthy (`upstream.health.healthy`).
pub const DEFAULT_HEALTHY: u32 = 2;
/// Default consecutive failures that make a target unhealthy (`upstream.health.unhealthy`).
pub const DEFAULT_UNHEALTHY: u32 = 3;

fn d_h_interval() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_HEALTH_INTERVAL_MS)
}
fn d_h_timeout() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_HEALTH_TIMEOUT_MS)
}
fn d_h_healthy() -> Spanned<u32> {
    Spanned::new(0..0, DEFAULT_HEALTHY)
}
fn d_h_unhealthy() -> Spanned<u32> {
    Spanned::new(0..0, DEFAULT_UNHEALTHY)
}

fn d_connect() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_CONNECT_TIMEOUT_MS)
}
fn d_response() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_RESPONSE_TIMEOUT_MS)
}
fn d_max_idle() -> Spanned<usize> {
    Spanned::new(0..0, DEFAULT_MAX_IDLE_PER_WORKER)
}
fn d_idle() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_UPSTREAM_IDLE_MS)
}

/// `[[route]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub key: Spanned<String>,
    pub host: Option<Spanned<String>>,
    pub upstream: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub mock: Option<Spanned<RawMock>>,
    pub path: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub throttle: Option<Spanned<RawLimit>>,
    #[serde(default)]
    pub api_key_required: bool,
    /// Overrides the upstream's (or the server's) `request_buffer_bytes`.
    pub request_buffer_bytes: Option<Spanned<usize>>,
    /// Overrides the upstream's (or the server's) `min_body_rate`.
    pub min_body_rate: Option<Spanned<u64>>,
    /// Integration timeout (API Gateway's `timeoutInMillis`): overrides the upstream's
    /// `response_timeout_ms` for this route.
    pub timeout_ms: Option<Spanned<u64>>,
    /// Do not forward the API key header (`api_keys.header`) to the origin (default: forwarded).
    pub strip_api_key: Option<Spanned<bool>>,
    /// Honour WebSocket opening handshakes (RFC 6455) on this HTTP route: forwarded with their
    /// upgrade fields, the connection relayed both ways after the origin's 101 (default false:
    /// the upgrade fields are stripped and the request proceeds as plain HTTP).
    pub websocket: Option<Spanned<bool>>,
    /// Idle timeout of this route's upgraded connections (overrides
    /// `server.timeouts.websocket_idle_ms`).
    pub websocket_idle_ms: Option<Spanned<u64>>,
    /// Invoke this `[[function]]` with the request as an event (a Lambda proxy integration).
    pub function: Option<Spanned<String>>,
    /// The event and response format of a function route: `"2.0"` (default) or `"1.0"`.
    pub payload_format: Option<Spanned<String>>,
    /// The `[[authorizer]]` that must admit requests to this route.
    pub authorizer: Option<Spanned<String>>,
    /// JWT authorizers: `scope` / `scp` must contain one of them (403 otherwise).
    pub scopes: Option<Spanned<Vec<Spanned<String>>>>,
    /// Require a verified TLS client certificate (403 otherwise).
    pub mtls: Option<Spanned<bool>>,
    /// With `mtls`: subject DN patterns (`*` matches any run of characters) one of which the
    /// certificate's subject must match.
    pub allow_subjects: Option<Spanned<Vec<Spanned<String>>>>,
    /// Client addresses (CIDRs) this route serves, besides the server's rules.
    pub allow_ips: Option<Spanned<Vec<Spanned<String>>>>,
    /// Client addresses (CIDRs) this route refuses.
    pub deny_ips: Option<Spanned<Vec<Spanned<String>>>>,
    /// `false`: no CORS on this route; a table: this route's own CORS policy.
    pub cors: Option<Spanned<RawRouteCors>>,
    /// Parameter mapping of the request (`"append:header.x-user" = "$context..."`).
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub request_parameters: Option<Spanned<super::mapping::RawRequestParameters>>,
    /// Parameter mapping of responses, by status code.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub response_parameters: Option<Spanned<super::mapping::RawResponseParameters>>,
    /// XML ⇄ JSON body transformation.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub transform: Option<Spanned<super::transform::RawTransform>>,
    /// Mapping template(s) for the request body.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub request_template: Option<Spanned<super::templates::RawTemplates>>,
    /// Mapping template(s) for the response body.
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub response_template: Option<Spanned<super::templates::RawTemplates>>,
    /// Request validation (a model for the body, required parameters).
    #[serde(default, deserialize_with = "super::spanned::opt")] // dotted keys too
    pub validate: Option<Spanned<super::validation::RawValidate>>,
    /// This route's compression (`false`: none), overriding `[compression]`.
    pub compression: Option<Spanned<super::compression::RawRouteCompression>>,
    /// The largest request body held in memory for a body transformation, template,
    /// validation or body mapping (413 beyond; default [`super::bodies::DEFAULT_MAX_BODY_BYTES`]).
    pub max_body_bytes: Option<Spanned<usize>>,
}

/// `mock = { status, body, headers }`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMock {
    #[serde(default = "d_status")]
    pub status: u16,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn d_status() -> u16 {
    200
}

/// Parses TOML text into the raw structs (stage one).
pub fn parse(text: &str) -> Result<RawConfig, toml::de::Error> {
    toml::from_str(text)
}
