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

use serde::Deserialize;
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub upstream: Vec<RawUpstream>,
    #[serde(default)]
    pub route: Vec<RawRoute>,
}

/// Which io driver workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DriverChoice {
    /// io_uring when the kernel allows it, epoll otherwise.
    #[default]
    Auto,
    IoUring,
    Epoll,
}

/// `[server]`
#[derive(Debug, Deserialize)]
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
        }
    }
}

/// `[server.limits]`: protocol limits, defaults in [`crate::http`].
#[derive(Debug, Deserialize)]
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
#[derive(Debug, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    /// Power of two random choices on in-flight requests.
    LeastRequests,
}

/// `[[upstream]]`
#[derive(Debug, Deserialize)]
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub key: Spanned<String>,
    pub host: Option<Spanned<String>>,
    pub upstream: Option<Spanned<String>>,
    pub mock: Option<Spanned<RawMock>>,
    pub path: Option<Spanned<String>>,
}

/// `mock = { status, body, headers }`
#[derive(Debug, Deserialize)]
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
