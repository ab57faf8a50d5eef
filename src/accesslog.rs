//! The access log: one line per request, written without ever blocking a worker.
//!
//! Owns: formatting lines (JSON with API Gateway's `$context` names, or a custom format string
//! with `$context.NAME` variables), each worker's line buffer, and the writer thread. A worker
//! appends to its own buffer (`RefCell<Vec<u8>>`) and hands a full buffer (by size, or by age at
//! its housekeeping tick) to the writer through a bounded channel with `try_send`; if the channel
//! is full — the disk cannot keep up — the buffer's lines are counted as dropped
//! (`tollgate_access_log_dropped_total`), never silently lost and never waited for. The writer
//! thread owns the file; `SIGUSR1` sets a flag it checks before each write and reopens the path
//! (logrotate). `path = "-"` writes to stdout. Crossing cores: the buffer's ownership moves
//! through the channel; the dropped counter is an atomic written with `Relaxed` (a statistic).
//! The JSON line's fast writer is in [`json`]; the TLS variables (version, SNI, the client
//! certificate) are in [`tls_fields`]; the authorizer's (`$context.authorizer.*`,
//! `$context.identity.*` of an IAM caller) in [`auth_fields`].

mod auth_fields;
mod json;
mod needs;
mod tls_fields;

pub use needs::Needs;

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Principal;
use crate::facts::TlsFacts;
use crate::fmt::{clf_time, itoa_u64};
pub use auth_fields::AuthField;
pub use tls_fields::TlsField;

/// Per-worker buffer size that triggers a hand-off (`access_log.buffer_bytes`).
pub const DEFAULT_BUFFER_BYTES: usize = 256 * 1024;
/// Longest a line waits in a worker buffer (`access_log.flush_ms`).
pub const DEFAULT_FLUSH_MS: u64 = 1000;
/// Buffers queued for the writer before new ones are dropped.
pub const QUEUE_DEPTH: usize = 64;

/// The line format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Json,
    /// Literal text and `$context.NAME` variables.
    Custom(Vec<Piece>),
}

/// One piece of a custom format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Var(Field),
    /// `$context.authorizer.NAME` / `$context.authorizer.claims.NAME`: the path
    /// `Principal::authorizer_var` reads (any name, so not a [`Field`]).
    Authorizer(Box<str>),
}

/// The `$context` variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    RequestId,
    Ip,
    RequestTime,
    HttpMethod,
    RouteKey,
    Path,
    Status,
    Protocol,
    ResponseLength,
    ResponseLatency,
    IntegrationLatency,
    IntegrationStatus,
    ErrorMessage,
    UserAgent,
    ApiKeyName,
    DomainName,
    RequestLength,
    RawQueryString,
    IntegrationEndpoint,
    /// The stage's name, its API, and whether its canary served (`true`/`false`; `-` where
    /// the stage has no canary).
    Stage,
    ApiId,
    IsCanaryRequest,
    /// The connection's TLS parameters and client certificate.
    Tls(TlsField),
    /// The authorizer's principal id and refusal, an IAM caller's identity.
    Auth(AuthField),
}

const FIELDS: &[(&str, Field)] = &[
    ("requestId", Field::RequestId),
    ("ip", Field::Ip),
    ("requestTime", Field::RequestTime),
    ("httpMethod", Field::HttpMethod),
    ("routeKey", Field::RouteKey),
    ("path", Field::Path),
    ("status", Field::Status),
    ("protocol", Field::Protocol),
    ("responseLength", Field::ResponseLength),
    ("responseLatency", Field::ResponseLatency),
    ("integrationLatency", Field::IntegrationLatency),
    ("integrationStatus", Field::IntegrationStatus),
    ("errorMessage", Field::ErrorMessage),
    ("userAgent", Field::UserAgent),
    ("apiKeyName", Field::ApiKeyName),
    ("domainName", Field::DomainName),
    ("requestLength", Field::RequestLength),
    ("rawQueryString", Field::RawQueryString),
    ("integration.endpoint", Field::IntegrationEndpoint),
    // as in tls_fields::TLS_FIELDS, which the JSON line writes in this order
    ("tlsVersion", Field::Tls(TlsField::Version)),
    ("sni", Field::Tls(TlsField::Sni)),
    (
        "identity.clientCert.subjectDN",
        Field::Tls(TlsField::SubjectDn),
    ),
    (
        "identity.clientCert.issuerDN",
        Field::Tls(TlsField::IssuerDn),
    ),
    (
        "identity.clientCert.serialNumber",
        Field::Tls(TlsField::SerialNumber),
    ),
    (
        "identity.clientCert.validity.notBefore",
        Field::Tls(TlsField::NotBefore),
    ),
    (
        "identity.clientCert.validity.notAfter",
        Field::Tls(TlsField::NotAfter),
    ),
];

/// Variables of the stage that served (and an alias); not in [`FIELDS`] (whose order is the JSON line's):
/// the JSON line writes `stage` and `canary` at its end.
const STAGE_FIELDS: &[(&str, Field)] = &[
    ("stage", Field::Stage),
    ("apiId", Field::ApiId),
    ("isCanaryRequest", Field::IsCanaryRequest),
    // API Gateway's REST name of the client address (`$context.ip` in HTTP APIs)
    ("identity.sourceIp", Field::Ip),
];

impl Format {
    /// `"json"`, or a custom format; unknown variables are an error naming them.
    pub fn parse(s: &str) -> Result<Format, String> {
        if s == "json" {
            return Ok(Format::Json);
        }
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(at) = rest.find("$context.") {
            if at > 0 {
                pieces.push(Piece::Text(rest[..at].to_string()));
            }
            let after = &rest[at + "$context.".len()..];
            let (piece, end) = parse_var(after)?;
            pieces.push(piece);
            rest = &after[end..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Format::Custom(pieces))
    }
}

/// The `$context` variable `after` (the text after `$context.`) starts with: the longest name
/// it starts with that ends where a name cannot go on (names may hold dots:
/// `$context.integration.endpoint`; `$context.path.` is the path followed by a dot), or any
/// `authorizer.NAME` (a claim or a request authorizer's context key). Returns the piece and
/// the name's length; an unknown name is an error naming it. Parameter mapping, templates
/// and gateway responses use the same vocabulary (see [`crate::mapping::value`]).
pub fn parse_var(after: &str) -> Result<(Piece, usize), String> {
    let auth = auth_fields::AUTH_FIELDS
        .iter()
        .map(|&(n, f)| (n, Field::Auth(f)));
    let found = FIELDS
        .iter()
        .chain(STAGE_FIELDS)
        .copied()
        .chain(auth)
        .filter(|(n, _)| {
            after.starts_with(n)
                && !after[n.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
        })
        .max_by_key(|(n, _)| n.len());
    match (found, auth_fields::authorizer_path(after)) {
        (Some((name, field)), _) => Ok((Piece::Var(field), name.len())),
        (None, Some((len, path))) => Ok((Piece::Authorizer(path), len)),
        (None, None) => {
            let end = after
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '.')
                .unwrap_or(after.len());
            let name = after[..end].trim_end_matches('.');
            Err(format!("unknown variable $context.{name}"))
        }
    }
}

/// Appends one variable's text for `e`, as a custom log line writes it (JSON string escapes
/// for anything a client sent, `-` for a value that is absent).
pub fn render_piece(p: &Piece, e: &Entry<'_>, out: &mut Vec<u8>) {
    match p {
        Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
        Piece::Var(f) => {
            // the date is formatted only for the variable that shows it (a mapping renders
            // `$context.requestId` on every request)
            let clf = match f {
                Field::RequestTime => clf_time(e.time),
                _ => [b'-'; 26],
            };
            value(*f, e, &clf, out, false)
        }
        Piece::Authorizer(path) => push_escaped(out, &auth_fields::path_text(path, e.principal)),
    }
}

/// What one request contributes to its line.
pub struct Entry<'a> {
    pub request_id: &'a [u8],
    pub ip: &'a [u8],
    /// Unix seconds when the request started.
    pub time: u64,
    pub method: &'a [u8],
    pub route_key: &'a str,
    pub path: &'a [u8],
    pub status: u16,
    pub protocol: &'a str,
    /// Response payload bytes (the body as framed by content-length or the chunks' data; not
    /// the head), as API Gateway documents `responseLength`.
    pub response_length: u64,
    /// Request bytes as received: the head and the body's payload.
    pub request_length: u64,
    /// The `Host` the client named (empty: none).
    pub domain_name: &'a [u8],
    /// The query without `?` (None: the target had no `?`).
    pub raw_query: Option<&'a [u8]>,
    /// The origin address an HTTP integration sent the request to.
    pub endpoint: Option<std::net::SocketAddr>,
    pub latency: Duration,
    pub integration_latency: Option<Duration>,
    pub integration_status: Option<u16>,
    pub error: Option<String>,
    pub user_agent: &'a [u8],
    pub api_key: Option<&'a str>,
    /// The connection's TLS parameters (`None`: plain HTTP).
    pub tls: Option<&'a TlsFacts>,
    /// Who the route's authorizer admitted.
    pub principal: Option<&'a Principal>,
    /// The authorizer's words when it refused the request (`$context.authorizer.error`).
    pub authorizer_error: Option<&'a str>,
    /// The stage that served (`$default` for the top-level routes; `-` for a refused head).
    pub stage: &'a str,
    /// The API of that stage (`$context.apiId`; `$default` for the top-level routes).
    pub api_id: &'a str,
    /// On a stage with a canary: whether the canary served (`None`: the stage has none).
    pub canary: Option<bool>,
}

/// Whether `v` is printable ASCII without `"` or `\\`, so it goes into a JSON string as it is.
/// Eight bytes at a time (this scans every text field of every logged request): a byte needs
/// escaping when it is below 0x20, has its high bit set, or is `"`, `\\` or DEL (0x7f). The
/// borrow tricks tell exactly whether any byte matches (not which), which is all this needs.
fn is_plain(v: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // bytes of `x` that are zero have their high bit set in the result (and none other, for
    // bytes below 0x80, which is all that reaches these checks)
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        if x & HIGH != 0 {
            return false;
        }
        let control = x.wrapping_sub(0x20 * ONES) & HIGH; // a byte below 0x20 borrows
        let quote = zero_bytes(x ^ (u64::from(b'"') * ONES));
        let backslash = zero_bytes(x ^ (u64::from(b'\\') * ONES));
        let delete = zero_bytes(x ^ (0x7f * ONES));
        if control | quote | backslash | delete != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

fn push_escaped(out: &mut Vec<u8>, v: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if is_plain(v) {
        out.extend_from_slice(v); // the common case: nothing to escape
        return;
    }
    // valid UTF-8 text keeps its characters; anything else is escaped byte by byte
    let utf8 = std::str::from_utf8(v).is_ok();
    for &b in v {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(b),
            0x80.. if utf8 => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
    }
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa_u64(v).as_bytes_mut());
}

/// Milliseconds with three decimals, from whole microseconds, without floating point.
fn push_ms(out: &mut Vec<u8>, d: Duration) {
    let us = d.as_micros() as u64;
    push_u64(out, us / 1000);
    out.push(b'.');
    let frac = us % 1000;
    out.extend_from_slice(&[
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// Seconds since the Unix epoch from the coarse real-time clock (CLOCK_REALTIME_COARSE: the
/// last tick's time, read without touching the TSC): a log line's time has one-second
/// resolution, and this is read once per logged request.
pub fn wall_secs_coarse() -> u64 {
    // SAFETY: timespec is plain data and clock_gettime only writes into it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and a valid out pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
        u64::try_from(ts.tv_sec).unwrap_or(0)
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

fn value(f: Field, e: &Entry<'_>, clf: &[u8; 26], out: &mut Vec<u8>, quote: bool) {
    // escaped in custom formats too (JSON's escapes): a client's `"` must not end a quoted
    // field and forge the ones after it, nor control bytes or invalid UTF-8 reach the file
    let text = |out: &mut Vec<u8>, v: &[u8]| {
        if quote {
            out.push(b'"');
            push_escaped(out, v);
            out.push(b'"');
        } else {
            push_escaped(out, v);
        }
    };
    match f {
        Field::RequestId => text(out, e.request_id),
        Field::Ip => text(out, e.ip),
        Field::RequestTime => text(out, clf),
        Field::HttpMethod => text(out, e.method),
        Field::RouteKey => text(out, e.route_key.as_bytes()),
        Field::Path => text(out, e.path),
        Field::Status => push_u64(out, u64::from(e.status)),
        Field::Protocol => text(out, e.protocol.as_bytes()),
        Field::ResponseLength => push_u64(out, e.response_length),
        Field::ResponseLatency => push_ms(out, e.latency),
        Field::IntegrationLatency => match e.integration_latency {
            Some(d) => push_ms(out, d),
            None => text(out, b"-"),
        },
        Field::IntegrationStatus => match e.integration_status {
            Some(s) => push_u64(out, u64::from(s)),
            None => text(out, b"-"),
        },
        Field::ErrorMessage => text(out, e.error.as_deref().unwrap_or("-").as_bytes()),
        Field::UserAgent => text(
            out,
            if e.user_agent.is_empty() {
                b"-"
            } else {
                e.user_agent
            },
        ),
        Field::ApiKeyName => text(out, e.api_key.unwrap_or("-").as_bytes()),
        Field::DomainName => text(out, or_dash(e.domain_name)),
        Field::Stage => text(out, e.stage.as_bytes()),
        Field::ApiId => text(out, e.api_id.as_bytes()),
        Field::IsCanaryRequest => out.extend_from_slice(match e.canary {
            Some(true) => b"true",
            Some(false) => b"false",
            None => b"-",
        }),
        Field::RequestLength => push_u64(out, e.request_length),
        Field::RawQueryString => text(out, e.raw_query.unwrap_or(b"-")),
        Field::IntegrationEndpoint => text(out, endpoint(e.endpoint, &mut [0; 64])),
        Field::Tls(f) => text(out, tls_fields::text(f, e.tls)),
        Field::Auth(f) => text(out, &auth_fields::text(f, e.principal, e.authorizer_error)),
    }
}

fn or_dash(v: &[u8]) -> &[u8] {
    if v.is_empty() {
        b"-"
    } else {
        v
    }
}

/// `ip:port` (`[v6]:port`, at most 47 bytes: only digits, hex, dots, colons and brackets,
/// nothing to escape) formatted into `buf`, or `-`.
fn endpoint(a: Option<std::net::SocketAddr>, buf: &mut [u8; 64]) -> &[u8] {
    use std::io::Write as _;
    let Some(a) = a else { return b"-" };
    let mut c = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(c, "{a}");
    let n = usize::try_from(c.position()).unwrap_or(0);
    buf.get(..n).unwrap_or_default()
}

/// Appends one line for `e` in `fmt` to `out`; `clf` is `e.time` as [`clf_time`] formats it.
pub fn format_line(fmt: &Format, e: &Entry<'_>, clf: &[u8; 26], out: &mut Vec<u8>) {
    match fmt {
        Format::Json => json::json_line(e, clf, out),
        Format::Custom(pieces) => {
            for p in pieces {
                match p {
                    Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                    Piece::Var(f) => value(*f, e, clf, out, false),
                    Piece::Authorizer(p) => {
                        push_escaped(out, &auth_fields::path_text(p, e.principal))
                    }
                }
            }
        }
    }
    out.push(b'\n');
}

/// The compiled `[access_log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `None`: stdout.
    pub path: Option<PathBuf>,
    pub format: Format,
    pub buffer_bytes: usize,
    pub flush: Duration,
}

/// What workers and the control thread share with the writer thread.
#[derive(Debug, Default)]
pub struct LogSink {
    pub dropped: AtomicU64,
    pub reopen: AtomicBool,
}

/// The running writer: its shared counters, the sender workers clone, and the thread, which
/// ends (after writing everything queued) once every sender is dropped.
pub struct Writer {
    pub sink: Arc<LogSink>,
    pub tx: SyncSender<(Vec<u8>, u64)>,
    pub thread: std::thread::JoinHandle<()>,
}

impl LogSink {
    /// Opens the log and starts the writer thread.
    pub fn start(cfg: &LogConfig) -> std::io::Result<Writer> {
        let (tx, rx) = sync_channel(QUEUE_DEPTH);
        let sink = Arc::new(LogSink::default());
        let out = open(cfg.path.as_ref())?;
        let path = cfg.path.clone();
        let s = sink.clone();
        let thread = std::thread::Builder::new()
            .name("tollgate-log".into())
            .spawn(move || writer(rx, out, path, &s))?;
        Ok(Writer { sink, tx, thread })
    }
}

fn open(path: Option<&PathBuf>) -> std::io::Result<Box<dyn Write + Send>> {
    match path {
        None => Ok(Box::new(std::io::stdout())),
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?;
            Ok(Box::new(f))
        }
    }
}

fn writer(
    rx: Receiver<(Vec<u8>, u64)>,
    mut out: Box<dyn Write + Send>,
    path: Option<PathBuf>,
    sink: &LogSink,
) {
    // ends when every worker dropped its sender (shutdown), after writing what was queued
    while let Ok((buf, lines)) = rx.recv() {
        if sink.reopen.swap(false, Ordering::AcqRel) {
            match open(path.as_ref()) {
                Ok(f) => out = f,
                Err(e) => eprintln!("tollgate: cannot reopen the access log: {e}"),
            }
        }
        if out.write_all(&buf).and_then(|_| out.flush()).is_err() {
            sink.dropped.fetch_add(lines, Ordering::Relaxed);
        }
    }
}

/// The writer's queue: a buffer of lines and how many lines it holds.
pub type LineQueue = SyncSender<(Vec<u8>, u64)>;

/// A worker's side: its buffer and when it last handed one off.
pub struct WorkerLog {
    pub cfg: LogConfig,
    sink: Arc<LogSink>,
    /// Taken by [`WorkerLog::finish`]: after it, the writer may end even if a task that
    /// outlived the drain still holds this buffer (its lines then count as dropped).
    tx: RefCell<Option<LineQueue>>,
    buf: RefCell<Vec<u8>>,
    lines: Cell<u64>,
    since: Cell<Instant>,
    /// The request time of the last line, formatted (changes once a second).
    clf: Cell<(u64, [u8; 26])>,
}

impl WorkerLog {
    pub fn new(cfg: LogConfig, sink: Arc<LogSink>, tx: LineQueue) -> Self {
        WorkerLog::with_queue(cfg, sink, Some(tx))
    }

    fn with_queue(cfg: LogConfig, sink: Arc<LogSink>, tx: Option<LineQueue>) -> Self {
        WorkerLog {
            tx: RefCell::new(tx),
            buf: RefCell::new(Vec::with_capacity(cfg.buffer_bytes + 1024)),
            cfg,
            sink,
            lines: Cell::new(0),
            since: Cell::new(Instant::now()),
            clf: Cell::new((u64::MAX, [0; 26])),
        }
    }

    /// Whether this buffer goes to the writer behind `sink`.
    pub fn writes_to(&self, sink: &Arc<LogSink>) -> bool {
        Arc::ptr_eq(&self.sink, sink)
    }

    /// The settings this buffer was made for.
    pub fn config(&self) -> &LogConfig {
        &self.cfg
    }

    /// A buffer with new settings that writes to the same file (a reload changed only the
    /// format, buffer size or flush interval).
    pub fn reformatted(&self, cfg: LogConfig) -> WorkerLog {
        WorkerLog::with_queue(cfg, self.sink.clone(), self.tx.borrow().clone())
    }

    /// Appends one line; hands the buffer off when full.
    pub fn log(&self, e: &Entry<'_>) {
        let full = {
            let mut b = self.buf.borrow_mut();
            let (sec, clf) = self.clf.get();
            let clf = if sec == e.time {
                clf
            } else {
                let c = clf_time(e.time); // once per second per worker
                self.clf.set((e.time, c));
                c
            };
            format_line(&self.cfg.format, e, &clf, &mut b);
            b.len() >= self.cfg.buffer_bytes
        };
        self.lines.set(self.lines.get() + 1);
        if full {
            self.hand_off();
        }
    }

    /// Hands the buffer to the writer if it is old enough (the housekeeping tick).
    pub fn tick(&self) {
        if self.lines.get() > 0 && self.since.get().elapsed() >= self.cfg.flush {
            self.hand_off();
        }
    }

    /// At shutdown: hands the last lines to the writer, waiting for room if the queue is full
    /// (the workers are done serving, so nothing is held up), and lets go of the queue.
    pub fn finish(&self) {
        let Some(tx) = self.tx.borrow_mut().take() else {
            return;
        };
        let lines = self.lines.replace(0);
        if lines == 0 {
            return;
        }
        let buf = std::mem::take(&mut *self.buf.borrow_mut());
        if tx.send((buf, lines)).is_err() {
            self.sink.dropped.fetch_add(lines, Ordering::Relaxed);
        }
    }

    /// Hands whatever is buffered to the writer now; never blocks.
    pub fn hand_off(&self) {
        let lines = self.lines.replace(0);
        self.since.set(Instant::now());
        if lines == 0 {
            return;
        }
        let buf = std::mem::replace(
            &mut *self.buf.borrow_mut(),
            Vec::with_capacity(self.cfg.buffer_bytes + 1024),
        );
        let sent = match &*self.tx.borrow() {
            Some(tx) => tx.try_send((buf, lines)).is_ok(),
            None => false, // finished: a request that outlived the drain
        };
        if !sent {
            self.sink.dropped.fetch_add(lines, Ordering::Relaxed);
        }
    }

    /// Lines dropped so far (all workers).
    pub fn dropped(&self) -> u64 {
        self.sink.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generic JSON rendering: every field of [`FIELDS`] by name, through [`value`].
    fn generic_json(e: &Entry<'_>, clf: &[u8; 26]) -> Vec<u8> {
        let mut out = vec![b'{'];
        for (i, (name, f)) in FIELDS.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(format!("\"{name}\":").as_bytes());
            value(*f, e, clf, &mut out, true);
        }
        out.extend_from_slice(b",\"principalId\":");
        value(Field::Auth(AuthField::PrincipalId), e, clf, &mut out, true);
        out.extend_from_slice(b",\"stage\":");
        value(Field::Stage, e, clf, &mut out, true);
        let canary = e.canary.map_or("null".to_string(), |c| c.to_string());
        out.extend_from_slice(format!(",\"canary\":{canary}}}\n").as_bytes());
        out
    }

    #[test]
    fn plain_scan_agrees_with_the_byte_rule() {
        let rule = |v: &[u8]| {
            v.iter()
                .all(|&b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        };
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..40 {
            for _ in 0..400 {
                let mut v: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // mostly printable, sometimes one of the bytes that need escaping
                        match x % 16 {
                            0 => [0x00, 0x1f, b'"', b'\\', 0x7f, 0x80, 0xff, 0x20]
                                [(x >> 8) as usize % 8],
                            _ => 0x20 + (x >> 8) as u8 % 0x5f,
                        }
                    })
                    .collect();
                assert_eq!(is_plain(&v), rule(&v), "{v:?}");
                v.reverse();
                assert_eq!(is_plain(&v), rule(&v), "{v:?}");
            }
        }
    }

    #[test]
    fn json_line_is_the_generic_rendering() {
        let mut quiet = entry();
        quiet.integration_latency = None;
        quiet.integration_status = None;
        quiet.error = Some("Bad \"Gateway\"".into());
        quiet.user_agent = b"";
        quiet.api_key = None;
        quiet.domain_name = b"";
        quiet.raw_query = None;
        quiet.endpoint = None;
        let mut empty_query = entry();
        empty_query.raw_query = Some(b"");
        let facts = crate::facts::TlsFacts {
            version: "TLSv1.3",
            sni: Some("api.example.com".into()),
            alpn: None,
            client_cert: Some(crate::tls::ClientCert {
                subject_dn: "O=Example \"Co\",CN=client".into(),
                issuer_dn: "CN=CA".into(),
                serial_number: "703710".into(),
                not_before: "Aug 29 00:28:21 2020 GMT".into(),
                not_after: "Aug 29 00:28:21 2030 GMT".into(),
            }),
        };
        let mut mutual = entry();
        mutual.tls = Some(&facts);
        let mut tls_only = entry();
        let no_cert = crate::facts::TlsFacts {
            client_cert: None,
            sni: None,
            ..facts.clone()
        };
        tls_only.tls = Some(&no_cert);
        let alice = auth_fields::tests::jwt_principal();
        let mut authorized = entry();
        authorized.principal = Some(&alice);
        for e in [entry(), quiet, empty_query, mutual, tls_only, authorized] {
            let clf = clf_time(e.time);
            let mut out = Vec::new();
            format_line(&Format::Json, &e, &clf, &mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&generic_json(&e, &clf))
            );
        }
    }

    pub(super) fn entry() -> Entry<'static> {
        Entry {
            request_id: b"rid-1",
            ip: b"10.0.0.1",
            time: 784_111_777,
            method: b"GET",
            route_key: "GET /pets/{id}",
            path: b"/pets/\"7\"",
            status: 200,
            protocol: "HTTP/1.1",
            response_length: 12,
            latency: Duration::from_micros(1500),
            integration_latency: Some(Duration::from_micros(900)),
            integration_status: Some(200),
            error: None,
            user_agent: b"curl/8\x01",
            api_key: Some("alice"),
            request_length: 120,
            domain_name: b"api.example",
            raw_query: Some(b"a=1&b=\"2\""),
            endpoint: Some(std::net::SocketAddr::from(([10, 0, 0, 9], 8080))),
            tls: None,
            principal: None,
            authorizer_error: None,
            stage: "$default",
            api_id: "tollgate",
            canary: None,
        }
    }

    #[test]
    fn json_line_has_api_gateway_names_and_escapes() {
        let mut out = Vec::new();
        format_line(&Format::Json, &entry(), &clf_time(entry().time), &mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(line.starts_with("{\"requestId\":\"rid-1\",\"ip\":\"10.0.0.1\",\"requestTime\":\"06/Nov/1994:08:49:37 +0000\",\"httpMethod\":\"GET\",\"routeKey\":\"GET /pets/{id}\",\"path\":\"/pets/\\\"7\\\"\",\"status\":200,"), "{line}");
        assert!(line.contains("\"responseLatency\":1.500,\"integrationLatency\":0.900,\"integrationStatus\":200,\"errorMessage\":\"-\",\"userAgent\":\"curl/8\\u0001\",\"apiKeyName\":\"alice\",\"domainName\":\"api.example\",\"requestLength\":120,\"rawQueryString\":\"a=1&b=\\\"2\\\"\",\"integration.endpoint\":\"10.0.0.9:8080\",\"tlsVersion\":\"\",\"sni\":\"\",\"identity.clientCert.subjectDN\":\"-\",\"identity.clientCert.issuerDN\":\"-\",\"identity.clientCert.serialNumber\":\"-\",\"identity.clientCert.validity.notBefore\":\"-\",\"identity.clientCert.validity.notAfter\":\"-\",\"principalId\":\"-\",\"stage\":\"$default\",\"canary\":null}\n"), "{line}");
    }

    #[test]
    fn tls_variables_in_a_custom_format() {
        let facts = crate::facts::TlsFacts {
            version: "TLSv1.2",
            sni: Some("api.example.com".into()),
            alpn: None,
            client_cert: Some(crate::tls::ClientCert {
                subject_dn: "CN=client".into(),
                issuer_dn: "CN=CA".into(),
                serial_number: "7".into(),
                not_before: "Aug 29 00:28:21 2020 GMT".into(),
                not_after: "Aug 29 00:28:21 2030 GMT".into(),
            }),
        };
        let f = Format::parse(
            "$context.tlsVersion|$context.sni|$context.identity.clientCert.subjectDN|$context.identity.clientCert.issuerDN|$context.identity.clientCert.serialNumber|$context.identity.clientCert.validity.notBefore|$context.identity.clientCert.validity.notAfter",
        )
        .unwrap();
        let mut e = entry();
        let mut out = Vec::new();
        format_line(&f, &e, &clf_time(e.time), &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "||-|-|-|-|-\n");
        e.tls = Some(&facts);
        out.clear();
        format_line(&f, &e, &clf_time(e.time), &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "TLSv1.2|api.example.com|CN=client|CN=CA|7|Aug 29 00:28:21 2020 GMT|Aug 29 00:28:21 2030 GMT\n"
        );
    }

    #[test]
    fn utf8_text_is_kept_and_invalid_bytes_escaped() {
        let mut out = Vec::new();
        push_escaped(&mut out, "café \"x\"".as_bytes());
        assert_eq!(String::from_utf8(out).unwrap(), "café \\\"x\\\"");
        let mut out = Vec::new();
        push_escaped(&mut out, b"a\xff\x01");
        assert_eq!(out, b"a\\u00ff\\u0001");
    }

    #[test]
    fn custom_format_substitutes_variables() {
        let f = Format::parse("$context.ip - [$context.requestTime] \"$context.httpMethod $context.path\" $context.status $context.responseLength").unwrap();
        let mut out = Vec::new();
        format_line(&f, &entry(), &clf_time(entry().time), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "10.0.0.1 - [06/Nov/1994:08:49:37 +0000] \"GET /pets/\\\"7\\\"\" 200 12\n"
        );
        assert_eq!(
            Format::parse("$context.nope"),
            Err("unknown variable $context.nope".into())
        );
        assert_eq!(
            Format::parse("$context.integration.nope x"),
            Err("unknown variable $context.integration.nope".into())
        );
        let f = Format::parse("$context.path. $context.integration.endpoint $context.domainName?$context.rawQueryString $context.requestLength/$context.responseLength").unwrap();
        let mut out = Vec::new();
        format_line(&f, &entry(), &clf_time(entry().time), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "/pets/\\\"7\\\". 10.0.0.9:8080 api.example?a=1&b=\\\"2\\\" 120/12\n"
        );
    }

    #[test]
    fn full_queue_counts_dropped_lines_instead_of_blocking() {
        let (tx, _rx) = sync_channel(1);
        let sink = Arc::new(LogSink::default());
        let cfg = LogConfig {
            path: None,
            format: Format::Json,
            buffer_bytes: 1,
            flush: Duration::from_secs(1),
        };
        let w = WorkerLog::new(cfg, sink, tx);
        for _ in 0..5 {
            w.log(&entry()); // each line fills the 1-byte buffer: one hand-off per line
        }
        assert_eq!(
            w.dropped(),
            4,
            "one buffer queued, four lines dropped and counted"
        );
    }
}
