//! The compiled, immutable description of every limit, plan, quota and API key.
//!
//! Built by `config::limits` from the TOML; read by [`super::Throttle`] to size its shared state.
//! Nothing here changes at run time.

use std::path::PathBuf;
use std::time::Duration;

use ahash::AHashMap;

use serde::{Deserialize, Serialize};

use super::bucket::Rate;

/// Default reconciliation interval of per-core token buckets (`throttle.sync_interval_ms`).
pub const DEFAULT_SYNC_INTERVAL_MS: u64 = 10;
/// Default header carrying the API key (`api_keys.header`).
pub const DEFAULT_API_KEY_HEADER: &str = "x-api-key";
/// Default capacity of a per-client limit's table (`max_clients`).
pub const DEFAULT_MAX_CLIENTS: usize = 65_536;
/// Default interval between quota-state flushes to `server.state_dir` (`api_keys.flush_ms`).
pub const DEFAULT_QUOTA_FLUSH_MS: u64 = 1_000;

/// Quota period (`quota.period`; the TOML schema deserialises straight into it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
}

/// Where a per-client limit takes the client's identity from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientBy {
    Ip,
    ApiKey,
    /// A request header, by lowercase name.
    Header(String),
    /// The principal the route's authorizer admitted (its id: a JWT's `sub`, a request
    /// authorizer's `principalId`, an IAM caller's ARN). Only on routes with an `authorizer`
    /// (refused at load elsewhere), so every request it counts has been admitted by one.
    Principal,
}

/// One token-bucket limit.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSpec {
    pub rate: Rate,
    /// `false`: shadow mode.
    pub enforce: bool,
    /// `Some`: one bucket per client.
    pub by: Option<ClientBy>,
    pub max_clients: usize,
}

/// A usage-plan quota.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaSpec {
    pub limit: u64,
    pub period: Period,
    /// API Gateway's offset: the day a period starts on.
    pub offset_days: u32,
    /// Seconds east of UTC where periods begin.
    pub utc_offset_secs: i64,
    pub enforce: bool,
}

impl QuotaSpec {
    /// Whether both quotas count in the same periods (so usage can carry from one to the other).
    pub fn same_periods(&self, other: &QuotaSpec) -> bool {
        self.period == other.period
            && self.offset_days == other.offset_days
            && self.utc_offset_secs == other.utc_offset_secs
    }
}

/// A usage plan: per-key limits and quota.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    pub name: String,
    pub throttle: Option<LimitSpec>,
    pub quota: Option<QuotaSpec>,
    /// Per-key limits on particular routes, by route index.
    pub routes: Vec<(usize, LimitSpec)>,
}

/// An API key.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub name: String,
    pub plan: Option<usize>,
    pub enabled: bool,
}

/// Finds a key from the presented header value: plain values by exact match, `value_sha256`
/// keys by the SHA-256 of the presented value (computed only when such keys exist).
#[derive(Debug, Default, Clone)]
pub struct KeyIndex {
    pub plain: AHashMap<Vec<u8>, usize>,
    pub hashed: AHashMap<[u8; 32], usize>,
}

impl KeyIndex {
    pub fn find(&self, presented: &[u8]) -> Option<usize> {
        if let Some(&i) = self.plain.get(presented) {
            return Some(i);
        }
        if self.hashed.is_empty() {
            return None;
        }
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(presented).into();
        self.hashed.get(&digest).copied()
    }
}

/// Limits of one route.
#[derive(Debug, Clone, Default)]
pub struct RouteLimits {
    /// The route's identity (`GET /pets/{id}`, plus ` @HOST` for a host route): what
    /// identifies it across reloads.
    pub name: String,
    pub limit: Option<LimitSpec>,
    pub key_required: bool,
}

/// Everything about traffic management.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    pub sync_interval: Duration,
    /// Lowercase header name carrying the API key.
    pub api_key_header: String,
    pub flush_interval: Duration,
    pub state_dir: Option<PathBuf>,
    pub gateway: Option<LimitSpec>,
    /// By route index.
    pub routes: Vec<RouteLimits>,
    pub plans: Vec<PlanSpec>,
    pub keys: Vec<KeySpec>,
    pub key_index: KeyIndex,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            sync_interval: Duration::from_millis(DEFAULT_SYNC_INTERVAL_MS),
            api_key_header: DEFAULT_API_KEY_HEADER.to_string(),
            flush_interval: Duration::from_millis(DEFAULT_QUOTA_FLUSH_MS),
            state_dir: None,
            gateway: None,
            routes: Vec::new(),
            plans: Vec::new(),
            keys: Vec::new(),
            key_index: KeyIndex::default(),
        }
    }
}

impl ThrottleConfig {
    /// The usage plan of key `k`, if it has one.
    pub fn plan_of(&self, k: &KeySpec) -> Option<&PlanSpec> {
        k.plan.and_then(|p| self.plans.get(p))
    }

    /// Whether any limit, key or quota is configured at all.
    pub fn is_active(&self) -> bool {
        self.gateway.is_some()
            || self
                .routes
                .iter()
                .any(|r| r.limit.is_some() || r.key_required)
    }
}
