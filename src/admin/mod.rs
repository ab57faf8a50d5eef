//! The admin listener: operators' view of the gateway, separate from the data plane.
//!
//! Owns: one accept thread plus one thread per admin connection (admin traffic is a handful of
//! scrapers and browsers), bounded by [`AdminLimits`]: at most `max_connections` at once (the
//! next one gets a 503 from the accept thread and is closed without a thread), a request head of
//! at most `max_request_bytes` (431), and one deadline, `idle_timeout`, for the whole next head
//! (an idle connection and a slow-loris that trickles bytes are both closed when it passes).
//! Limits are read from the current config when a connection is accepted, so a reload changes
//! them for new connections. The accept thread ends, closing the listener, when the server is
//! joined ([`AdminHandle::stop`]); a failed `accept(2)` (out of file descriptors) is retried
//! after [`ACCEPT_ERROR_BACKOFF`], not in a loop. Serves `GET /metrics` (Prometheus text), `GET /stats` (the
//! dashboard's JSON), `GET /history` (the last 15 minutes of per-second aggregates, see
//! [`history`]), `GET /status`, `GET /config` (the effective config text, API key values
//! redacted) and `GET /` (the live dashboard, embedded in the binary). Requests are parsed with
//! the data plane's strict codec. Every request must name the admin host by IP address or
//! `localhost` (403 otherwise: a page on another site that rebinds its DNS name to the admin
//! address sends that name). `POST /reload` runs a hot reload on this thread (see
//! [`crate::server::reload`]) and answers with its result. `POST
//! /2015-03-31/functions/NAME/invocations` is the Lambda Invoke API for local functions, relayed
//! to the functions service (see [`invoke`]). With `admin.token_sha256` set, every request
//! (after the Host rule) must carry the bearer token, read from the current config for each
//! request; otherwise 401 with `www-authenticate` (see [`auth`]; `GET /` answers that 401 with
//! the static dashboard page, which then asks for the token). Nothing here runs on a worker:
//! metrics are gathered through the scrape board (see [`crate::metrics`]), under the
//! controller's lock so that a scrape and the config it is labelled with always belong together.

pub mod auth;
pub mod history;
pub mod invoke;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::config::AdminLimits;
use crate::error::GatewayError;
use crate::http::{parse_request, BodyKind, Limits, Method};
use crate::metrics::prom::{render, stats_json, Context};
use crate::metrics::ScrapeBoard;
use crate::server::reload::{Controller, Current, LastReload, ReloadError};
use crate::server::Shared;

/// The dashboard page.
pub const DASHBOARD: &str = include_str!("dashboard.html");
/// How long a scrape waits for the workers.
pub const SCRAPE_WAIT: Duration = Duration::from_millis(500);
/// How long the accept thread may spend writing the 503 to a connection over the limit (a
/// few bytes into a fresh socket's empty send buffer: this bound is only for a broken peer).
pub const REFUSE_WRITE_TIMEOUT: Duration = Duration::from_millis(200);

/// How long the accept thread waits after an `accept(2)` that failed for lack of resources
/// (file descriptors, memory) before trying again: the pending connection stays queued, so an
/// immediate retry fails the same way and would spin a core for as long as the shortage lasts.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// After an error answer, how long the connection keeps reading (and discarding) what the
/// client still sends before closing, so that the client reads the answer instead of a reset
/// (RFC 9112 §9.6), and how much it reads at most.
pub const LINGER_TIME: Duration = Duration::from_millis(500);
pub const LINGER_BYTES: usize = 64 * 1024;

/// Shared state the admin handlers read.
pub struct Admin {
    pub control: Arc<Controller>,
    pub board: Arc<ScrapeBoard>,
    pub shared: Arc<Shared>,
    pub started: Instant,
    pub drivers: Vec<&'static str>,
    /// The local functions' live numbers (empty without the functions service).
    pub functions: crate::functions::StatsList,
    /// The functions service's internal Invoke API (loopback), which `POST
    /// /2015-03-31/functions/NAME/invocations` is relayed to (see [`invoke`]).
    pub functions_addr: Option<SocketAddr>,
}

/// One admin connection's place under `max_connections`; given back when dropped (the
/// connection's thread ended, or could not be spawned).
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A place if fewer than `max` are taken. The count publishes no data (each connection
    /// thread owns its socket), so `Relaxed` is enough: the read-modify-write alone makes two
    /// accepts never both take the last place.
    fn take(active: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(active.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The running admin listener: its bound address and its accept thread.
pub struct AdminHandle {
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
    accept: std::thread::JoinHandle<()>,
}

impl AdminHandle {
    /// Ends the accept thread, which closes the listener, once the server drains (its
    /// `draining` flag must be set): one connection to the listener wakes the blocked
    /// `accept(2)`, the thread sees the flag and returns. Without this an in-process server
    /// kept its admin address bound after it stopped (a new one could not bind it).
    /// Connections already being served end on their own threads (each bounded by
    /// `idle_timeout`). If the wake-up cannot connect, the thread is left to end at the next
    /// connection rather than waited for.
    pub fn stop(self) {
        let ip = match self.addr.ip() {
            IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let wake = SocketAddr::new(ip, self.addr.port());
        if TcpStream::connect_timeout(&wake, WAKE_TIMEOUT).is_ok() {
            let _ = self.accept.join();
        }
    }
}

/// How long [`AdminHandle::stop`] tries to connect to its own listener to wake the accept
/// thread.
pub const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Binds the admin address now (so errors surface at startup), serves it on a thread, and
/// starts the history sampler.
pub fn spawn(addr: SocketAddr, admin: Arc<Admin>) -> std::io::Result<AdminHandle> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let history = Arc::new(history::History::default());
    history::spawn_sampler(admin.clone(), history.clone())?;
    let accept = std::thread::Builder::new()
        .name("tollgate-admin".into())
        .spawn(move || {
            let active = Arc::new(AtomicUsize::new(0));
            for conn in listener.incoming() {
                if admin.shared.draining() {
                    break;
                }
                let s = match conn {
                    Ok(s) => s,
                    // the peer gave up before accept, or a signal: nothing is short
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                        ) =>
                    {
                        continue
                    }
                    // EMFILE/ENFILE/ENOBUFS: the connection stays queued and accept fails
                    // again at once; retrying in a loop would spin a core until fds free up
                    Err(_) => {
                        std::thread::sleep(ACCEPT_ERROR_BACKOFF);
                        continue;
                    }
                };
                let limits = admin.control.current().config.admin_limits;
                let Some(slot) = Slot::take(&active, limits.max_connections) else {
                    refuse(s);
                    continue;
                };
                let (admin, history) = (admin.clone(), history.clone());
                // if the thread cannot be spawned, the closure (and the slot) is dropped
                let _ = std::thread::Builder::new()
                    .name("tollgate-admin-conn".into())
                    .spawn(move || {
                        let _slot = slot;
                        serve(s, &admin, &history, limits);
                    });
            }
        })?;
    Ok(AdminHandle {
        addr: local,
        accept,
    })
}

/// Over the connection limit: a 503 written by the accept thread, then the connection closes.
fn refuse(mut s: TcpStream) {
    let _ = s.set_write_timeout(Some(REFUSE_WRITE_TIMEOUT));
    let body = crate::error::json_message(503).as_bytes();
    let _ = respond(&mut s, 503, "application/json", body, false, false);
    let _ = s.shutdown(std::net::Shutdown::Write);
}

fn serve(mut s: TcpStream, admin: &Admin, history: &history::History, lim: AdminLimits) {
    let _ = s.set_nodelay(true);
    // a client that stops reading cannot hold the thread either
    let _ = s.set_write_timeout(Some(lim.idle_timeout));
    let limits = Limits {
        max_head_bytes: lim.max_request_bytes,
        ..Limits::default()
    };
    let mut buf = BytesMut::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // One deadline for the wait and the whole head: a per-read timeout alone would let a
        // client that sends a byte now and then keep the thread forever.
        let deadline = Instant::now() + lim.idle_timeout;
        let head = loop {
            match parse_request(&mut buf, &limits) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(e) => {
                    // 431 for an oversized head, 414, 400... as the data plane words them
                    fail(&mut s, GatewayError::Http(e).status());
                    return;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if !buf.is_empty() {
                    fail(&mut s, 408); // part of a head arrived, too slowly (RFC 9110 §15.5.9)
                }
                return;
            }
            let _ = s.set_read_timeout(Some(left));
            match s.read(&mut chunk) {
                Ok(n) if n > 0 => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                // the deadline passed: the loop answers (or closes) at the top
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Ok(_) | Err(_) => return,
            }
        };
        // the token, read from the current config for each request (a reload changes it for
        // the next request on any connection); the Host rule answers first
        let gate = auth::check(&admin.control.current().config.access.admin, &head);
        // the Invoke API for local functions: the one admin request with a body
        if let Some(name) = invoke::target(head.path_bytes()) {
            if !host_allowed(&head) || cross_site(&head) {
                fail(&mut s, 403);
                return;
            }
            if !gate.admits() {
                // the body was not read: answer, then close
                fail_with(&mut s, 401, auth::CHALLENGE);
                return;
            }
            let keep = head.keep_alive && !admin.shared.draining();
            if !invoke::serve(
                &mut s,
                &mut buf,
                &head,
                &name,
                admin,
                (lim.idle_timeout, keep),
            ) {
                return;
            }
            continue;
        }
        if host_allowed(&head) && !gate.admits() {
            if !matches!(head.body, BodyKind::Empty | BodyKind::Length(0)) {
                fail_with(&mut s, 401, auth::CHALLENGE);
                return;
            }
            let keep = head.keep_alive && !admin.shared.draining();
            let head_only = head.method_kind == Method::Head;
            let (ctype, body) = auth::refused(&head);
            let r = respond_with(&mut s, 401, ctype, body, (keep, head_only), auth::CHALLENGE);
            if r.is_err() || !keep {
                return;
            }
            continue;
        }
        // admin requests carry no body we use; refuse any so the stream stays in sync
        if !matches!(head.body, BodyKind::Empty | BodyKind::Length(0)) {
            fail(&mut s, 400);
            return;
        }
        let keep = head.keep_alive && !admin.shared.draining();
        let head_only = head.method_kind == Method::Head;
        let get = matches!(head.method_kind, Method::Get | Method::Head);
        let post = head.method_kind == Method::Post;
        let (status, ctype, body) = match (get, head.path_bytes()) {
            _ if !host_allowed(&head) => (
                403,
                "application/json",
                br#"{"message":"Forbidden"}"#.to_vec(),
            ),
            (false, b"/reload") if post && cross_site(&head) => (
                403,
                "application/json",
                br#"{"message":"Forbidden"}"#.to_vec(),
            ),
            (false, b"/reload") if post => {
                let (status, body) = reload(admin);
                (status, "application/json", body.into_bytes())
            }
            (true, b"/") => (
                200,
                "text/html; charset=utf-8",
                DASHBOARD.as_bytes().to_vec(),
            ),
            (true, b"/metrics") => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics(admin).into_bytes(),
            ),
            (true, b"/stats") => (200, "application/json", stats(admin).into_bytes()),
            (true, b"/history") => (
                200,
                "application/json",
                history
                    .json(history::since(head.query_bytes()))
                    .into_bytes(),
            ),
            (true, b"/status") => (200, "application/json", status(admin).into_bytes()),
            (true, b"/config") => (
                200,
                "text/plain; charset=utf-8",
                admin.control.effective_config().into_bytes(),
            ),
            (
                _,
                b"/" | b"/metrics" | b"/stats" | b"/history" | b"/status" | b"/config" | b"/reload",
            ) => (
                405,
                "application/json",
                br#"{"message":"Method Not Allowed"}"#.to_vec(),
            ),
            _ => (
                404,
                "application/json",
                br#"{"message":"Not Found"}"#.to_vec(),
            ),
        };
        if respond(&mut s, status, ctype, &body, keep, head_only).is_err() || !keep {
            return;
        }
    }
}

/// An error answer, then a graceful close: shut down writing, read and discard what the
/// client still sends for at most [`LINGER_TIME`] and [`LINGER_BYTES`] (closing with unread
/// bytes would send a reset, which may destroy the answer before the client reads it).
fn fail(s: &mut TcpStream, status: u16) {
    fail_with(s, status, "");
}

/// [`fail`] with extra header fields (each ending in CRLF).
fn fail_with(s: &mut TcpStream, status: u16, extra: &str) {
    let body = crate::error::json_message(status).as_bytes();
    if respond_with(s, status, "application/json", body, (false, false), extra).is_err() {
        return;
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + LINGER_TIME;
    let mut left = LINGER_BYTES;
    let mut chunk = [0u8; 4096];
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || s.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn respond(
    s: &mut TcpStream,
    status: u16,
    ctype: &str,
    body: &[u8],
    keep: bool,
    head_only: bool,
) -> std::io::Result<()> {
    respond_with(s, status, ctype, body, (keep, head_only), "")
}

/// [`respond`] with extra header fields (`extra`: each field ending in CRLF).
fn respond_with(
    s: &mut TcpStream,
    status: u16,
    ctype: &str,
    body: &[u8],
    (keep, head_only): (bool, bool),
    extra: &str,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\ncache-control: no-store\r\n{extra}{}\r\n",
        crate::error::reason_phrase(status),
        body.len(),
        if keep { "" } else { "connection: close\r\n" }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    s.write_all(&out)
}

/// Every worker's snapshot together with the state they were taken under (reloads wait).
fn scrape(admin: &Admin) -> (Arc<Current>, Vec<crate::metrics::Snapshot>) {
    let _hold = admin.control.hold();
    let cur = admin.control.current();
    let snaps = admin
        .board
        .collect(SCRAPE_WAIT)
        .into_iter()
        .filter(|s| s.generation == cur.number)
        .collect();
    (cur, snaps)
}

fn context<'a>(admin: &'a Admin, cur: &'a Current) -> Context<'a> {
    Context {
        config: &cur.config,
        throttle: &cur.throttle,
        uptime_s: admin.started.elapsed().as_secs_f64(),
        version: env!("CARGO_PKG_VERSION"),
        log_dropped: admin.control.log_dropped(),
        generation: cur.number,
        functions: crate::functions::snapshot(&admin.functions),
        reloads: [
            admin
                .control
                .reloads_ok
                .load(std::sync::atomic::Ordering::Relaxed),
            admin
                .control
                .reloads_failed
                .load(std::sync::atomic::Ordering::Relaxed),
        ],
    }
}

fn metrics(admin: &Admin) -> String {
    let (cur, snaps) = scrape(admin);
    render(&context(admin, &cur), &snaps) + &admin.control.dns().prometheus()
}

fn stats(admin: &Admin) -> String {
    let (cur, snaps) = scrape(admin);
    let last = match admin.control.last_reload() {
        None => "ok at startup".to_string(),
        Some(LastReload { result: Ok(r), .. }) => format!("ok (generation {})", r.generation),
        Some(LastReload { result: Err(e), .. }) => {
            format!(
                "failed: {}",
                e.to_string().lines().next().unwrap_or_default()
            )
        }
    };
    stats_json(&context(admin, &cur), &snaps, &cur.config.hash, &last)
}

/// `POST /reload`: 200 with the new generation; 400 with the errors when the config was
/// rejected (the old one stays); 503 when it applied on only some workers in time.
fn reload(admin: &Admin) -> (u16, String) {
    let (status, e) = match admin.control.reload() {
        Ok(r) => return (200, report_json(&r)),
        Err(ReloadError::Rejected(e)) => (400, e),
        Err(ReloadError::Partial(e)) => (503, e),
    };
    let mut out = String::from("{\"message\":");
    crate::metrics::prom::json_str(&mut out, e.trim_end());
    out.push('}');
    (status, out)
}

/// Every admin request must name the admin host by IP address or as `localhost`: a page that
/// rebinds its own DNS name to 127.0.0.1 sends that name as `Host` (RFC 9110 §7.2), and is
/// refused, so it can neither read the admin views nor reload.
fn host_allowed(head: &crate::http::RequestHead) -> bool {
    host_is_local_or_ip(head.host_bytes().unwrap_or_default())
}

/// A browser page on another site may POST to a loopback admin address (a "simple" request
/// needs no preflight), but it cannot hide its `Origin`, nor the name it used for the admin
/// host ([`host_allowed`] checks that one for every request, before this). A reload is also
/// refused when the request carries an `Origin` whose host is not the `Host` it was sent to.
fn cross_site(head: &crate::http::RequestHead) -> bool {
    let host = head.host_bytes().unwrap_or_default();
    let Some(origin) = head.header("origin") else {
        return false;
    };
    let origin_host = origin.split(|&b| b == b'/').nth(2).unwrap_or_default();
    !origin_host.eq_ignore_ascii_case(host)
}

/// `Host` is an IP literal (`127.0.0.1:9901`, `[::1]:9901`) or `localhost`, with any port.
fn host_is_local_or_ip(host: &[u8]) -> bool {
    let Ok(h) = std::str::from_utf8(host) else {
        return false;
    };
    let name = match h.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((n, _)) => n,
            None => return false,
        },
        None => h.rsplit_once(':').map_or(h, |(n, _)| n),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

fn report_json(r: &crate::server::reload::ReloadReport) -> String {
    let mut out = format!(
        "{{\"result\":\"ok\",\"generation\":{},\"config_hash\":\"{}\",\"notes\":[",
        r.generation, r.config_hash
    );
    for (i, n) in r.notes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::metrics::prom::json_str(&mut out, n);
    }
    out.push_str("],\"changes\":");
    out.push_str(&r.changes.json());
    out.push('}');
    out
}

/// The latest reload as a JSON object.
fn last_reload_json(last: Option<&LastReload>) -> String {
    match last {
        None => "{\"result\":\"ok\",\"at\":null,\"generation\":0,\"message\":\"ok at startup\"}"
            .to_string(),
        Some(LastReload { at, result: Ok(r) }) => format!(
            "{{\"result\":\"ok\",\"at\":{at},\"generation\":{},\"message\":\"ok\"}}",
            r.generation
        ),
        Some(LastReload { at, result: Err(e) }) => {
            let kind = match e {
                ReloadError::Rejected(_) => "error",
                ReloadError::Partial(_) => "partial",
            };
            let mut out = format!("{{\"result\":\"{kind}\",\"at\":{at},\"message\":");
            crate::metrics::prom::json_str(&mut out, e.to_string().trim_end());
            out.push('}');
            out
        }
    }
}

fn status(admin: &Admin) -> String {
    let cur = admin.control.current();
    let drivers: Vec<String> = admin.drivers.iter().map(|d| format!("\"{d}\"")).collect();
    let listen: Vec<String> = cur
        .config
        .server
        .listen
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    let tls_listen: Vec<String> = cur
        .config
        .tls
        .iter()
        .flat_map(|t| t.listen.iter().map(|a| format!("\"{a}\"")))
        .collect();
    format!(
        "{{\"version\":\"{}\",\"workers\":{},\"drivers\":[{}],\"uptime_s\":{:.3},\"config_hash\":\"{}\",\"generation\":{},\"listen\":[{}],\"tls_listen\":[{}],\"last_reload\":{},\"draining\":{},\"upstreams\":{}}}",
        env!("CARGO_PKG_VERSION"),
        admin.drivers.len(),
        drivers.join(","),
        admin.started.elapsed().as_secs_f64(),
        cur.config.hash,
        cur.number,
        listen.join(","),
        tls_listen.join(","),
        last_reload_json(admin.control.last_reload().as_ref()),
        admin.shared.draining(),
        admin.control.dns().status_json()
    )
}

/// The config as TOML with every `[[api_key]]` `value` replaced, so secrets never leave the
/// process (`value_sha256` stays: a hash is not the secret). Re-serialised from the parsed
/// document, so however a key was written (array of tables or inline), its value is caught.
pub fn redacted(source: &str) -> String {
    let Ok(mut doc) = source.parse::<toml::Table>() else {
        return "# the config text could not be re-read\n".to_string();
    };
    if let Some(toml::Value::Array(keys)) = doc.get_mut("api_key") {
        for k in keys.iter_mut() {
            if let Some(t) = k.as_table_mut() {
                if t.contains_key("value") {
                    t.insert("value".into(), toml::Value::String("<redacted>".into()));
                }
            }
        }
    }
    let body = toml::to_string_pretty(&doc).unwrap_or_default();
    format!("# effective configuration; API key values redacted\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_needs_a_local_or_ip_host() {
        for ok in [
            "127.0.0.1:9901",
            "[::1]:9901",
            "localhost:9901",
            "LOCALHOST",
            "10.0.0.7",
        ] {
            assert!(host_is_local_or_ip(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "evil.example:9901",
            "evil.example",
            "",
            "[::1",
            "127.0.0.1.nip.io:9901",
        ] {
            assert!(!host_is_local_or_ip(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn api_key_values_are_redacted() {
        let src = "api_key = [{ name = \"c\", value = \"inline-secret-0123456789\" }]\n[[route]]\nkey = \"GET /x\"\nmock = { body = \"value = 1\" }\n";
        let r = redacted(src);
        assert!(!r.contains("secret"), "{r}");
        assert!(r.contains("<redacted>"), "{r}");
        assert!(r.contains("value = 1"), "{r}");
        let src = "[[api_key]]\nname = \"a\"\nvalue = \"secret-0123456789abcdef\"\n[[api_key]]\nname = \"b\"\nvalue_sha256 = \"00\"\n";
        let r = redacted(src);
        assert!(!r.contains("secret-0123"), "{r}");
        assert!(r.contains("value_sha256 = \"00\""), "{r}");
    }
}
