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
/// Upstream connect timeout (`upstream.connect_timeout_ms`).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// Upstream response timeout: AWS API Gateway's 29 s integration timeout.
pub const DEFAULT_RESPONSE_TIMEOUT_MS: u64 = 29_000;
/// Idle upstream connections kept per worker and upstream (`upstream.max_idle_per_worker`).
pub const DEFAULT_MAX_IDLE_PER_WORKER: usize = 64;
/// Lifetime of an idle pooled upstream connection (`upstream.idle_timeout_ms`).
pub const DEFAULT_UPSTREAM_IDLE_MS: u64 = 60_000;

/// The whole file.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
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
}

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
    pub buffer_bytes: usize,
    #[serde(default = "d_log_flush")]
    pub flush_ms: u64,
}

fn d_format() -> Spanned<String> {
    Spanned::new(0..0, "json".to_string())
}
fn d_log_buffer() -> usize {
    crate::accesslog::DEFAULT_BUFFER_BYTES
}
fn d_log_flush() -> u64 {
    crate::accesslog::DEFAULT_FLUSH_MS
}

/// `[admin]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Spanned<String>,
}

/// Default reconciliation interval of per-core token buckets (`throttle.sync_interval_ms`).
pub const DEFAULT_SYNC_INTERVAL_MS: u64 = 10;
/// Default header carrying the API key (`api_keys.header`).
pub const DEFAULT_API_KEY_HEADER: &str = "x-api-key";
/// Default capacity of a per-client limit's table (`max_clients`).
pub const DEFAULT_MAX_CLIENTS: usize = 65_536;
/// Default interval between quota-state flushes to `server.state_dir` (`api_keys.flush_ms`).
pub const DEFAULT_QUOTA_FLUSH_MS: u64 = 1_000;

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
    pub flush_ms: u64,
}

impl Default for RawApiKeys {
    fn default() -> Self {
        RawApiKeys {
            header: DEFAULT_API_KEY_HEADER.to_string(),
            flush_ms: DEFAULT_QUOTA_FLUSH_MS,
        }
    }
}

/// Quota period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
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
    pub throttle: Option<Spanned<RawLimit>>,
    /// Per-key quota.
    pub quota: Option<Spanned<RawQuota>>,
    /// Per-key limits on given routes, by route key: `{ "GET /keyed" = { rate, burst } }`.
    #[serde(default = "d_routes")]
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

/// Which io driver workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DriverChoice {
    /// io_uring when the kernel allows it, epoll otherwise.
    #[default]
    Auto,
    IoUring,
    Epoll,
}

/// `[server]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: Vec<Spanned<String>>,
    pub workers: usize,
    pub pin_cores: bool,
    pub driver: DriverChoice,
    pub ring_entries: Spanned<u32>,
    pub max_connections: Spanned<usize>,
    pub read_buffer_bytes: Spanned<usize>,
    pub backlog: u32,
    pub limits: RawLimits,
    pub timeouts: RawTimeouts,
    /// Where state that must survive a restart (quota usage) is kept.
    pub state_dir: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: Vec::new(),
            workers: 0,
            pin_cores: false,
            driver: DriverChoice::Auto,
            ring_entries: Spanned::new(0..0, DEFAULT_RING_ENTRIES),
            max_connections: Spanned::new(0..0, DEFAULT_MAX_CONNECTIONS),
            read_buffer_bytes: Spanned::new(0..0, DEFAULT_READ_BUFFER_BYTES),
            backlog: DEFAULT_BACKLOG,
            limits: RawLimits::default(),
            timeouts: RawTimeouts::default(),
            state_dir: None,
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
    pub max_body_bytes: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        let d = crate::http::Limits::default();
        RawLimits {
            max_head_bytes: Spanned::new(0..0, d.max_head_bytes),
            max_uri_bytes: Spanned::new(0..0, d.max_uri_bytes),
            max_headers: Spanned::new(0..0, d.max_headers),
            max_body_bytes: d.max_body_bytes,
        }
    }
}

/// `[server.timeouts]`, all in milliseconds.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    pub header_read_ms: u64,
    pub body_read_ms: u64,
    pub keepalive_idle_ms: u64,
    pub write_ms: u64,
    pub shutdown_ms: u64,
}

impl Default for RawTimeouts {
    fn default() -> Self {
        RawTimeouts {
            header_read_ms: DEFAULT_HEADER_READ_MS,
            body_read_ms: DEFAULT_BODY_READ_MS,
            keepalive_idle_ms: DEFAULT_KEEPALIVE_IDLE_MS,
            write_ms: DEFAULT_WRITE_MS,
            shutdown_ms: DEFAULT_SHUTDOWN_MS,
        }
    }
}

/// Load-balancing policy of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    /// Power of two random choices on in-flight requests.
    LeastRequests,
}

/// `[[upstream]]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub name: Spanned<String>,
    pub targets: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default = "d_connect")]
    pub connect_timeout_ms: u64,
    #[serde(default = "d_response")]
    pub response_timeout_ms: u64,
    #[serde(default = "d_max_idle")]
    pub max_idle_per_worker: usize,
    #[serde(default = "d_idle")]
    pub idle_timeout_ms: u64,
    /// Active health checks, run once per process.
    pub health: Option<Spanned<RawHealth>>,
    /// Consecutive failures (connect, protocol, 5xx) that eject a target; 0 disables.
    #[serde(default = "d_passive_failures")]
    pub passive_failures: u32,
    /// How long an ejected target is skipped.
    #[serde(default = "d_passive_cooldown")]
    pub passive_cooldown_ms: u64,
    /// How often host-name targets are looked up again (IP literals never are).
    #[serde(default = "d_resolve_interval")]
    pub resolve_interval_ms: Spanned<u64>,
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

fn d_passive_failures() -> u32 {
    DEFAULT_PASSIVE_FAILURES
}
fn d_passive_cooldown() -> u64 {
    DEFAULT_PASSIVE_COOLDOWN_MS
}

/// `health = { path, interval_ms, timeout_ms, healthy, unhealthy }`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub path: String,
    #[serde(default = "d_h_interval")]
    pub interval_ms: u64,
    #[serde(default = "d_h_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "d_h_healthy")]
    pub healthy: u32,
    #[serde(default = "d_h_unhealthy")]
    pub unhealthy: u32,
}

fn d_h_interval() -> u64 {
    5_000
}
fn d_h_timeout() -> u64 {
    1_000
}
fn d_h_healthy() -> u32 {
    2
}
fn d_h_unhealthy() -> u32 {
    3
}

fn d_connect() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}
fn d_response() -> u64 {
    DEFAULT_RESPONSE_TIMEOUT_MS
}
fn d_max_idle() -> usize {
    DEFAULT_MAX_IDLE_PER_WORKER
}
fn d_idle() -> u64 {
    DEFAULT_UPSTREAM_IDLE_MS
}

/// `[[route]]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub key: Spanned<String>,
    pub host: Option<Spanned<String>>,
    pub upstream: Option<Spanned<String>>,
    pub mock: Option<Spanned<RawMock>>,
    pub path: Option<Spanned<String>>,
    pub throttle: Option<Spanned<RawLimit>>,
    #[serde(default)]
    pub api_key_required: bool,
}

/// `mock = { status, body, headers }`
#[derive(Debug, Deserialize, Serialize)]
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
