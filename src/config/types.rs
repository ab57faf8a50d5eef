//! Compiled-side types that runtime modules read but that have no config module of their own.
//!
//! Owns: the compiled `[admin]` limits ([`AdminLimits`]) and their defaults. They live here, not in
//! `crate::admin`, so that `config` never imports the modules it configures (dependencies point
//! one way: admin/health/proxy → config). Leaves out: checking ranges (see `config::compile`)
//! and using the limits (see [`crate::admin`]).

use std::time::Duration;

/// Admin connections served at once (`admin.max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Largest admin request head, request line and fields (`admin.max_request_bytes`).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Time an admin connection may wait for, and take to send, its next request head
/// (`admin.idle_timeout_ms`).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;

/// The `[admin]` limits, compiled (ranges checked in `config::compile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminLimits {
    pub max_connections: usize,
    pub max_request_bytes: usize,
    pub idle_timeout: Duration,
}

impl Default for AdminLimits {
    fn default() -> Self {
        AdminLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            idle_timeout: Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
        }
    }
}
