//! `[[function]]`: the functions a route can invoke, compiled.
//!
//! Owns: the compiled shape of a function ([`FunctionConfig`]: a local one that tollgate runs
//! itself through the Lambda Runtime API, or a remote one reached through the Lambda Invoke
//! API), the route side of a Lambda integration ([`LambdaRoute`], [`PayloadFormat`]), their
//! defaults and ranges as named constants, and checking them (names unique, commands present,
//! ARNs well formed, users known) with errors naming the key and the line. Leaves out: running
//! functions (see `crate::functions`), building events and reading answers (see
//! `crate::lambda`), signing (see `crate::aws`).
//!
//! SKELETON (issue 11 contract): the compiled types are final; `compile` is filled in by the
//! config slice.

use std::path::PathBuf;
use std::time::Duration;

use super::forwarding::BodyPolicy;

/// A function's timeout when `timeout_ms` is absent: Lambda's default of 3 seconds.
pub const DEFAULT_FUNCTION_TIMEOUT_MS: u64 = 3_000;
/// Processes a local function runs at most (`concurrency`).
pub const DEFAULT_CONCURRENCY: u32 = 4;
/// Time a local function's process may sit idle before it is stopped (`idle_ms`).
pub const DEFAULT_FUNCTION_IDLE_MS: u64 = 300_000;
/// Invocations of a local function that may wait for a free process (`queue`).
pub const DEFAULT_FUNCTION_QUEUE: u32 = 64;
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` of a local function (`memory_mb`): Lambda's default.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Largest request event and function response: Lambda's 6 MB synchronous payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// One `[[function]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    pub name: String,
    /// Per invocation (`timeout_ms`).
    pub timeout: Duration,
    pub kind: FunctionKind,
}

/// Where a function runs.
#[derive(Debug, Clone, PartialEq)]
pub enum FunctionKind {
    /// A process tollgate starts on this host (`command`).
    Local(LocalFunction),
    /// AWS Lambda, or anything speaking its Invoke API (`arn`).
    Remote(RemoteFunction),
}

/// A function tollgate runs itself.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalFunction {
    /// argv; `command[0]` is looked up in `PATH` as `execvp(3)` does.
    pub command: Vec<String>,
    /// Working directory and `LAMBDA_TASK_ROOT` (absolute: resolved against the config file's
    /// directory).
    pub cwd: PathBuf,
    /// `env`, in key order: the function's environment besides the Lambda variables.
    pub env: Vec<(String, String)>,
    /// `_HANDLER`: `handler`, else the last element of `command`.
    pub handler: String,
    pub concurrency: u32,
    pub idle: Duration,
    pub queue: u32,
    pub memory_mb: u32,
    /// `user`: the process runs as this user when tollgate runs as root.
    pub user: Option<RunAs>,
}

/// A user to run a function's processes as (`user`), looked up at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// A function reached through the Lambda Invoke API.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFunction {
    pub arn: String,
    /// From the ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`).
    pub region: String,
    pub account: String,
    /// The path segment of `POST /2015-03-31/functions/{this}/invocations`: the whole ARN
    /// (percent-encoded where needed), as the AWS SDKs send it.
    pub function_path: String,
    /// Index into `Config::upstreams` of the hidden upstream (`function:NAME`) that holds the
    /// endpoint's pools (TLS for https).
    pub upstream: usize,
    /// The `host` field sent and signed (the endpoint's authority).
    pub host: String,
    /// From the environment at load: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`. `None`: requests go unsigned (a local endpoint that does not check).
    pub credentials: Option<crate::aws::Credentials>,
}

/// The event and response shapes (`payload_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadFormat {
    /// "1.0": REST API proxy integration format.
    V1,
    /// "2.0" (default): HTTP API format.
    #[default]
    V2,
}

/// A route's Lambda integration (`function = "NAME"`).
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaRoute {
    /// Index into `Config::functions`.
    pub function: usize,
    pub payload: PayloadFormat,
    /// How the request body is read (the route's, or the server's, `min_body_rate`; the whole
    /// body is read, up to [`MAX_PAYLOAD_BYTES`]).
    pub body: BodyPolicy,
    /// The route's `timeout_ms` (API Gateway's integration timeout), when set: bounds the
    /// whole invocation as seen from the gateway.
    pub timeout: Option<Duration>,
}
