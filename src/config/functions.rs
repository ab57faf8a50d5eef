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
//! Data flows raw `[[function]]` ([`super::raw::RawFunction`]) → [`compile`] →
//! `Config::functions`, which routes name by index ([`LambdaRoute::function`]). A remote
//! function also gets a hidden upstream, `function:NAME`, appended to `Config::upstreams`
//! after the user's (so their indices do not move): the endpoint's address, TLS with the
//! system's roots for https, and the ordinary per-worker pools; its host name is re-resolved by
//! the resolver thread like any upstream target's. A route's `function` and `payload_format`
//! are checked in [`check_route`] and compiled in [`route`]. ARNs and endpoint URLs are parsed
//! in [`super::arn`], remote functions and their hidden upstreams compiled in
//! `super::remote_functions`.
//!
//! What runs on which thread: compiling reads the file system (`cwd`), the password database
//! (`user`) and DNS (the endpoint), so it runs on the control thread only (startup, `check`,
//! reload), never on a worker.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

pub use super::arn::{function_path, parse_arn, parse_endpoint, Arn, Endpoint, MAX_ALIAS};
use super::compile::Ctx;
use super::forwarding::BodyPolicy;
use super::raw::{RawFunction, RawRoute, RawUpstream};
use super::resolve::Target;
use super::upstreams::{TargetName, UpstreamConfig};

/// A function's timeout when `timeout_ms` is absent: Lambda's default of 3 seconds.
/// How long a new local function process may take to call `invocation/next` for the first
/// time before it is killed: Lambda's init phase limit (the functions scheduler's
/// `INIT_TIMEOUT`).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest the local functions service takes to answer an invocation of a function with
/// this `timeout`: a wait in the queue (bounded in total by the timeout plus two starts, the
/// first of which may fail and is retried once) and then the run (bounded by the timeout).
/// Whoever waits for the service (the workers, the admin relay) waits this plus a margin, so
/// the service always answers first.
pub fn local_answer_bound(timeout: Duration) -> Duration {
    let queue_wait = timeout.saturating_add(INIT_TIMEOUT.saturating_mul(2));
    timeout.saturating_add(queue_wait)
}

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

// Accepted ranges (README, "Accepted ranges"): refused outside, never clamped.

/// `timeout_ms` of a function: Lambda's own bounds, 1 ms to 15 minutes.
pub const FUNCTION_TIMEOUT_MS: RangeInclusive<u64> = 1..=900_000;
/// `concurrency`: processes of one local function.
pub const CONCURRENCY: RangeInclusive<u32> = 1..=1024;
/// `idle_ms`: at least a second (a process is not stopped between two close requests), at
/// most a day. Scale to zero is the only policy (no minimum of warm processes).
pub const FUNCTION_IDLE_MS: RangeInclusive<u64> = 1_000..=86_400_000;
/// `queue`: 0 answers 429 as soon as every process is busy.
pub const FUNCTION_QUEUE: RangeInclusive<u32> = 0..=100_000;
/// `memory_mb`: Lambda's bounds (only reported to the function, not enforced).
pub const MEMORY_MB: RangeInclusive<u32> = 128..=10_240;
/// Longest function name (Lambda's rule: `[A-Za-z0-9_-]{1,64}`).
pub const MAX_FUNCTION_NAME: usize = 64;
/// Name prefix of the hidden upstream of a remote function (`function:NAME`); user upstreams
/// may not use it.
pub const HIDDEN_UPSTREAM_PREFIX: &str = "function:";
/// What a remote function's hidden upstream waits for an answer beyond the function's timeout
/// (AWS answers at the timeout; this covers the network).
pub const REMOTE_RESPONSE_MARGIN: Duration = Duration::from_secs(1);
/// The variable a local function's `env` may not set: it is the process's own Runtime API.
pub const RESERVED_ENV: &str = "AWS_LAMBDA_RUNTIME_API";

/// Name of the per-worker upstream to the local functions service (see [`service_upstream`]).
pub const SERVICE_UPSTREAM: &str = "functions";
/// Connect timeout of the pool to the functions service (loopback: a connect that takes this
/// long means the service is gone).
pub const SERVICE_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Response timeout of the pool to the functions service when an invocation does not set its
/// own: the longest a local invocation can take (twice the largest function timeout, plus
/// Lambda's 10 s init limit and a second).
pub const SERVICE_RESPONSE_TIMEOUT: Duration = Duration::from_millis(2 * 900_000 + 11_000);

/// The synthetic upstream a worker reaches the local functions service through (its internal
/// Invoke API on loopback at `addr`): plain, one target, never ejected or health-checked.
pub fn service_upstream(addr: SocketAddr) -> UpstreamConfig {
    UpstreamConfig {
        name: SERVICE_UPSTREAM.to_string(),
        targets: vec![addr],
        names: vec![TargetName {
            target: addr.to_string(),
            kind: Target::Literal(addr),
            addrs: vec![addr],
            weight: super::raw::DEFAULT_WEIGHT,
        }],
        resolve_interval: Duration::from_millis(super::raw::DEFAULT_RESOLVE_INTERVAL_MS),
        balance: super::Balance::RoundRobin,
        connect_timeout: SERVICE_CONNECT_TIMEOUT,
        response_timeout: SERVICE_RESPONSE_TIMEOUT,
        max_idle_per_worker: super::raw::DEFAULT_MAX_IDLE_PER_WORKER,
        idle_timeout: Duration::from_millis(super::raw::DEFAULT_UPSTREAM_IDLE_MS),
        health: None,
        passive_failures: 0,
        passive_cooldown: Duration::from_millis(super::raw::DEFAULT_PASSIVE_COOLDOWN_MS),
        tls: None,
    }
}

/// A function name as Lambda accepts it: `[A-Za-z0-9_-]{1,64}`.
pub fn valid_name(s: &str) -> bool {
    (1..=MAX_FUNCTION_NAME).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
thread_local! {
    /// Tests compile as if tollgate ran as root (`Some(true)`) or not.
    pub(super) static AS_ROOT: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Whether the process runs as root (only then can `user` drop privileges).
pub fn running_as_root() -> bool {
    #[cfg(test)]
    if let Some(r) = AS_ROOT.with(|c| c.get()) {
        return r;
    }
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and primary gid of user `name` (the sandbox's `getpwnam_r(3)` lookup: files,
/// LDAP... as nsswitch.conf says); `Ok(None)` when there is no such user.
pub fn lookup_user(name: &str) -> Result<Option<RunAs>, String> {
    match crate::functions::sandbox::lookup_user(name) {
        Ok((uid, gid)) => Ok(Some(RunAs { uid, gid })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Compiles every `[[function]]` (errors and warnings go to `cx`), appending the hidden
/// upstream of each remote function to `upstreams`. `user_upstreams` are the file's
/// `[[upstream]]` tables (their names may not take the hidden prefix). Only valid functions
/// are returned: with any error the config is refused as a whole, so indices only matter
/// when every one compiled.
pub(super) fn compile(
    funcs: &[RawFunction],
    user_upstreams: &[RawUpstream],
    upstreams: &mut Vec<UpstreamConfig>,
    cx: &mut Ctx<'_>,
) -> Vec<FunctionConfig> {
    for (i, u) in user_upstreams.iter().enumerate() {
        if u.name.get_ref().starts_with(HIDDEN_UPSTREAM_PREFIX) {
            let m = format!(
                "names starting with {HIDDEN_UPSTREAM_PREFIX:?} are reserved for functions"
            );
            cx.err(&u.name, format!("upstream[{i}].name"), m);
        }
    }
    let root = running_as_root();
    let mut out = Vec::with_capacity(funcs.len());
    for (i, f) in funcs.iter().enumerate() {
        let key = |k: &str| format!("function[{i}].{k}");
        let name = f.name.get_ref();
        if !valid_name(name) {
            let m = format!(
                "{name:?} must be 1 to {MAX_FUNCTION_NAME} of A-Z a-z 0-9 - _ (Lambda's rule)"
            );
            cx.err(&f.name, key("name"), m);
        } else if funcs[..i].iter().any(|p| p.name.get_ref() == name) {
            cx.err(&f.name, key("name"), format!("duplicate function {name:?}"));
        }
        let timeout = f
            .timeout_ms
            .as_ref()
            .map_or(Duration::from_millis(DEFAULT_FUNCTION_TIMEOUT_MS), |t| {
                cx.millis(t, key("timeout_ms"), &FUNCTION_TIMEOUT_MS)
            });
        let kind = match (&f.command, &f.arn) {
            (Some(c), None) => local(i, f, c, root, cx).map(FunctionKind::Local),
            (None, Some(a)) => super::remote_functions::remote(i, f, a, timeout, upstreams, cx)
                .map(FunctionKind::Remote),
            (Some(_), Some(a)) => {
                let m = "set either command (a function tollgate runs) or arn (a function in \
                         AWS Lambda), not both";
                cx.err(a, format!("function[{i}]"), m);
                None
            }
            (None, None) => {
                let m = "needs command (a function tollgate runs) or arn (a function in AWS \
                         Lambda)";
                cx.err(&f.name, format!("function[{i}]"), m);
                None
            }
        };
        if let Some(kind) = kind {
            out.push(FunctionConfig {
                name: name.clone(),
                timeout,
                kind,
            });
        }
    }
    out
}

/// Refuses `v` (a key of the other kind of function) naming the key and the line.
pub(super) fn refuse<T>(v: &Option<Spanned<T>>, key: String, msg: &str, cx: &mut Ctx<'_>) {
    if let Some(v) = v {
        cx.err(v, key, msg);
    }
}

/// A function tollgate runs (`command`).
fn local(
    i: usize,
    f: &RawFunction,
    command: &Spanned<Vec<Spanned<String>>>,
    root: bool,
    cx: &mut Ctx<'_>,
) -> Option<LocalFunction> {
    let key = |k: &str| format!("function[{i}].{k}");
    let only_remote = "only a remote function (arn) has an endpoint";
    refuse(&f.endpoint, key("endpoint"), only_remote, cx);
    let mut ok = true;
    if command.get_ref().is_empty() {
        let m = "must name the program to run and its arguments, e.g. \
                 [\"python3\", \"-m\", \"awslambdaric\", \"app.handler\"]";
        cx.err(command, key("command"), m);
        ok = false;
    }
    for (j, a) in command.get_ref().iter().enumerate() {
        if a.get_ref().contains('\0') || (j == 0 && a.get_ref().is_empty()) {
            let m = if j == 0 {
                "must be a program name or path (no NUL byte)"
            } else {
                "must not contain a NUL byte"
            };
            cx.err(a, format!("function[{i}].command[{j}]"), m);
            ok = false;
        }
    }
    let cwd = function_cwd(i, f, cx);
    let env = function_env(i, f, cx);
    let handler = match &f.handler {
        Some(h) if h.get_ref().is_empty() || h.get_ref().contains('\0') => {
            cx.err(h, key("handler"), "must be a non-empty handler name");
            None
        }
        Some(h) => Some(h.get_ref().clone()),
        None => command.get_ref().last().map(|l| l.get_ref().clone()),
    };
    let range = |cx: &mut Ctx<'_>, v: &Option<Spanned<u32>>, k: &str, r, d| {
        v.as_ref().map_or(d, |v| cx.range(v, key(k), r))
    };
    let concurrency = range(
        cx,
        &f.concurrency,
        "concurrency",
        &CONCURRENCY,
        DEFAULT_CONCURRENCY,
    );
    let queue = range(
        cx,
        &f.queue,
        "queue",
        &FUNCTION_QUEUE,
        DEFAULT_FUNCTION_QUEUE,
    );
    let memory_mb = range(cx, &f.memory_mb, "memory_mb", &MEMORY_MB, DEFAULT_MEMORY_MB);
    let idle = f
        .idle_ms
        .as_ref()
        .map_or(Duration::from_millis(DEFAULT_FUNCTION_IDLE_MS), |v| {
            cx.millis(v, key("idle_ms"), &FUNCTION_IDLE_MS)
        });
    let user = match &f.user {
        None => Some(None),
        Some(u) => function_user(i, u, root, cx),
    };
    Some(LocalFunction {
        command: command
            .get_ref()
            .iter()
            .map(|a| a.get_ref().clone())
            .collect(),
        cwd: cwd?,
        env: env?,
        handler: handler?,
        concurrency,
        idle,
        queue,
        memory_mb,
        user: user?,
    })
    .filter(|_| ok)
}

/// `cwd`: absolute, resolved against the config file's directory (which is also the
/// default), and an existing directory.
fn function_cwd(i: usize, f: &RawFunction, cx: &mut Ctx<'_>) -> Option<PathBuf> {
    let key = format!("function[{i}].cwd");
    let base = match cx.base() {
        Some(b) => b.to_path_buf(),
        None => PathBuf::from("."),
    };
    let path = match &f.cwd {
        Some(c) if c.get_ref().is_empty() => {
            cx.err(c, key, "must be a directory path");
            return None;
        }
        Some(c) => super::tls::resolve_path(Some(&base), c.get_ref()),
        None => base,
    };
    let problem = match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!("{} is not a directory", path.display())),
        Err(e) => Some(format!("{}: {e}", path.display())),
    };
    let absolute = std::path::absolute(&path).ok();
    match (problem, &f.cwd) {
        (None, _) if absolute.is_some() => absolute,
        (p, Some(c)) => {
            let m = p.unwrap_or_else(|| format!("{} cannot be made absolute", path.display()));
            cx.err(c, key, m);
            None
        }
        (p, None) => {
            let m = p.unwrap_or_else(|| format!("{} cannot be made absolute", path.display()));
            cx.err(
                &f.name,
                key,
                format!("the default (the config's directory): {m}"),
            );
            None
        }
    }
}

/// `env`: names that `execve(2)` can carry (no `=`, no NUL), values without NUL, and not the
/// Runtime API address, which is the process's own.
fn function_env(i: usize, f: &RawFunction, cx: &mut Ctx<'_>) -> Option<Vec<(String, String)>> {
    let Some(env) = &f.env else {
        return Some(Vec::new());
    };
    let map: &BTreeMap<String, String> = env.get_ref();
    let mut ok = true;
    for (k, v) in map {
        let key = format!("function[{i}].env");
        if k.is_empty() || k.contains(['=', '\0']) {
            cx.err(
                env,
                key,
                format!("{k:?} is not a variable name (no \"=\" or NUL)"),
            );
            ok = false;
        } else if k == RESERVED_ENV {
            let m = format!("{RESERVED_ENV} is set by tollgate (each process's own Runtime API)");
            cx.err(env, key, m);
            ok = false;
        } else if v.contains('\0') {
            cx.err(env, key, format!("the value of {k} contains a NUL byte"));
            ok = false;
        }
    }
    ok.then(|| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// `user`: known to the password database (else an error); applied only when tollgate runs
/// as root, so otherwise a warning and `None`.
fn function_user(
    i: usize,
    u: &Spanned<String>,
    root: bool,
    cx: &mut Ctx<'_>,
) -> Option<Option<RunAs>> {
    let key = format!("function[{i}].user");
    match lookup_user(u.get_ref()) {
        Ok(Some(_)) if !root => {
            let m = "ignored: tollgate does not run as root, so its function processes run as \
                     its own user";
            cx.warn(u, key, m);
            Some(None)
        }
        Ok(Some(run_as)) => Some(Some(run_as)),
        Ok(None) => {
            cx.err(u, key, format!("unknown user {:?}", u.get_ref()));
            None
        }
        Err(e) => {
            cx.err(
                u,
                key,
                format!("cannot look up user {:?}: {e}", u.get_ref()),
            );
            None
        }
    }
}

/// A function route's own keys: forwarding settings that mean nothing without an origin are
/// refused; `timeout_ms` and `min_body_rate` are checked as on any route.
pub(super) fn check_route(i: usize, r: &RawRoute, cx: &mut Ctx<'_>) {
    let key = |k: &str| format!("route[{i}].{k}");
    let whole = "a function route reads the whole body (up to the 6 MB payload limit): \
                 request_buffer_bytes does not apply";
    refuse(
        &r.request_buffer_bytes,
        key("request_buffer_bytes"),
        whole,
        cx,
    );
    let strip = "only routes with an upstream forward headers to an origin; a function gets \
                 them in its event";
    refuse(&r.strip_api_key, key("strip_api_key"), strip, cx);
    let ws = "WebSocket proxying needs an HTTP integration (upstream), not a function";
    refuse(&r.websocket, key("websocket"), ws, cx);
    refuse(&r.websocket_idle_ms, key("websocket_idle_ms"), ws, cx);
    let path = "only routes with an upstream can rewrite the path";
    refuse(&r.path, key("path"), path, cx);
    if let Some(m) = &r.min_body_rate {
        cx.range(
            m,
            key("min_body_rate"),
            &(0..=super::raw::MAX_MIN_BODY_RATE),
        );
    }
    if let Some(t) = &r.timeout_ms {
        cx.range(t, key("timeout_ms"), &super::raw::ROUTE_TIMEOUT_MS_RANGE);
    }
}

/// `payload_format`: `"2.0"` (default) or `"1.0"`.
fn payload_format(i: usize, r: &RawRoute, cx: &mut Ctx<'_>) -> Option<PayloadFormat> {
    match r.payload_format.as_ref().map(|p| (p, p.get_ref().as_str())) {
        None | Some((_, "2.0")) => Some(PayloadFormat::V2),
        Some((_, "1.0")) => Some(PayloadFormat::V1),
        Some((p, other)) => {
            let m = format!(
                "must be \"2.0\" (HTTP API format) or \"1.0\" (REST API proxy format), got {other:?}"
            );
            cx.err(p, format!("route[{i}].payload_format"), m);
            None
        }
    }
}

/// A route's Lambda integration (`function = "NAME"`, checked by [`check_route`]).
pub(super) fn route(
    i: usize,
    r: &RawRoute,
    function: &Spanned<String>,
    funcs: &[RawFunction],
    server: BodyPolicy,
    cx: &mut Ctx<'_>,
) -> Option<LambdaRoute> {
    let payload = payload_format(i, r, cx);
    let Some(index) = funcs
        .iter()
        .position(|f| f.name.get_ref() == function.get_ref())
    else {
        let m = format!("unknown function {:?}", function.get_ref());
        cx.err(function, format!("route[{i}].function"), m);
        return None;
    };
    Some(LambdaRoute {
        function: index,
        payload: payload?,
        body: BodyPolicy {
            buffer_bytes: MAX_PAYLOAD_BYTES,
            min_rate: r
                .min_body_rate
                .as_ref()
                .map_or(server.min_rate, |v| *v.get_ref()),
        },
        timeout: r
            .timeout_ms
            .as_ref()
            .map(|t| Duration::from_millis(*t.get_ref())),
    })
}

/// Fills the defaults of each `[[function]]` of effective table `t` (see
/// [`super::effective`]): the raw keys are optional so that each kind refuses the other's, so
/// serde leaves them out. `cwd` stays as written (its default is the config file's directory).
pub(super) fn fill_defaults(t: &mut toml::Table) {
    use toml::Value;
    let Some(Value::Array(fs)) = t.get_mut("function") else {
        return;
    };
    for f in fs.iter_mut().filter_map(Value::as_table_mut) {
        let int = |n: u64| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        f.entry("timeout_ms".to_string())
            .or_insert(int(DEFAULT_FUNCTION_TIMEOUT_MS));
        if f.contains_key("command") {
            let local = [
                ("concurrency", u64::from(DEFAULT_CONCURRENCY)),
                ("idle_ms", DEFAULT_FUNCTION_IDLE_MS),
                ("queue", u64::from(DEFAULT_FUNCTION_QUEUE)),
                ("memory_mb", u64::from(DEFAULT_MEMORY_MB)),
            ];
            for (k, v) in local {
                f.entry(k.to_string()).or_insert(int(v));
            }
        }
    }
}

/// The functions' part of `tollgate check`'s summary: `, 2 functions (1 local, 1 remote)`, or
/// nothing without any.
pub fn summary(functions: &[FunctionConfig]) -> String {
    if functions.is_empty() {
        return String::new();
    }
    let local = functions
        .iter()
        .filter(|f| matches!(f.kind, FunctionKind::Local(_)))
        .count();
    let n = functions.len();
    format!(
        ", {n} function{} ({local} local, {} remote)",
        if n == 1 { "" } else { "s" },
        n - local
    )
}
