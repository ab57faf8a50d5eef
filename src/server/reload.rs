//! Hot reload, the control-plane half: read, validate and compile a new config off the request
//! path, build what it shares between workers, hand it to every worker, and wait until each one
//! serves it.
//!
//! Owns: [`Controller`] (the process's current shared state: config, throttle, health board,
//! access-log sink, and the reload history `GET /status` shows), publishing on the
//! [`ReloadBoard`] (in `super::board`), the only place a reload crosses cores. Leaves out: what a
//! worker does with a new config (see [`super::worker`] and
//! [`crate::worker::Generation::next`]).
//!
//! # Flow
//! 1. `SIGHUP` or `POST /reload` calls [`Controller::reload`] on the signal or admin thread.
//!    Reloads are serialised with each other by one mutex (`reloading`); what they swap is
//!    serialised with scrapes (which must see one config) and the resolver thread by another
//!    (`serial`), taken after the file is compiled.
//! 2. The file is read and compiled exactly as at startup. Any error (the file, a key, a line)
//!    ends the reload here: it is returned and logged, and nothing changes. Upstream host names
//!    are looked up again here (a name that fails keeps the addresses it is served with), before
//!    `serial` is taken: DNS that hangs holds off no scrape and no re-resolution.
//! 3. Shared parts are built: the [`Throttle`] carrying over unchanged limits, quotas and
//!    counters by name, the health board carrying over target health by upstream name and
//!    address, a new access-log writer if the log's path changed, and SO_REUSEPORT sockets for
//!    every *added* listen address (one per worker, bound here so a bind error fails the reload
//!    before anything is swapped).
//! 4. The result is published as a [`Published`] under the next generation number
//!    (`generation.store(Release)`). Each worker sees the number in its housekeeping loop
//!    (`Acquire`, so it also sees the `Published` behind it), builds its next generation,
//!    swaps it in between requests, starts accept loops for configured addresses it lacks,
//!    stops those no longer configured, and acknowledges by storing the number in its
//!    `applied` slot (`Release`). The published config stays on the board until the next
//!    reload replaces it, so a worker that fell behind (a housekeeping loop stalled longer than
//!    [`RELOAD_APPLY_WAIT`]) catches up with the latest one, diffing against what it has.
//!    Just before, the config is handed to the local functions service
//!    ([`crate::functions::FunctionsHandle::apply`], which waits until the service has
//!    applied it, up to [`crate::functions::APPLY_ACK_WAIT`]; late: [`ReloadError::Partial`]):
//!    added functions start on first use, removed ones stop after their invocations in
//!    flight.
//! 5. The controller waits for every worker's acknowledgement, then makes the new state
//!    current (admin views, health checker). A worker that did not answer in time makes the
//!    result [`ReloadError::Partial`], reported as such (HTTP 503), not as a rejection.
//!
//! The resolver thread ([`super::dns`]) publishes the same way when a host name's addresses
//! change (`Controller::apply_resolved`): the config being served, compiled again with the new
//! answers, becomes the next generation; that is not a reload (no history, no counters).
//!
//! Requests already running finish on the generation they started on; nothing is cut off.
//! Settings that only take effect at startup (worker count, driver, ring size, pinning, read
//! buffer size, the admin address, the usage state directory, the backlog of kept addresses) are
//! not applied: they are compared with what the process runs (not with the previous file) and
//! reported as notes on every reload while they differ (see [`super::changes`]). Every result
//! carries a summary of what changed (routes, upstreams, API keys, limits, other settings), or
//! "no changes", and the log line says the same.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use super::board::{Published, ReloadBoard};
use super::changes::{Changes, Running};
use super::dns::{self, Answer, DnsBoard, Known, LastGood, Outcome};
use super::{endpoint_addrs, endpoints, listener, Endpoint, Shared};
use crate::accesslog::{LineQueue, LogSink, Writer};
use crate::config::resolve::{with_resolver, Resolver};
use crate::config::{self, Config};
use crate::functions::FunctionsHandle;
use crate::health::HealthBoard;
use crate::throttle::Throttle;

/// How long a reload waits for every worker to take the new config before it reports failure
/// (the workers that did take it keep it; the others take it as soon as they can).
pub const RELOAD_APPLY_WAIT: Duration = Duration::from_secs(10);

/// Where the config comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// The demo config compiled into the binary (a reload re-applies it).
    Embedded,
}

impl ConfigSource {
    fn load(&self) -> Result<Config, String> {
        match self {
            ConfigSource::File(p) => config::load(p),
            ConfigSource::Embedded => {
                config::from_str(config::EMBEDDED_CONFIG).map_err(|e| e.render("<embedded config>"))
            }
        }
    }
}

/// The shared state of the config being served.
pub struct Current {
    pub number: u64,
    pub config: Arc<Config>,
    pub throttle: Arc<Throttle>,
    pub health: Arc<HealthBoard>,
    pub log: Option<Arc<LogSink>>,
    /// Stops this generation's health checker thread when set.
    checker_stop: Arc<AtomicBool>,
}

/// What a reload did.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    pub generation: u64,
    pub config_hash: String,
    /// Restart-only settings where the file differs from what the process runs (on every
    /// reload while they differ), and similar remarks.
    pub notes: Vec<String>,
    /// What this reload changed, against the config served before it.
    pub changes: Changes,
}

/// The outcome of the latest reload, for `GET /status`.
#[derive(Debug, Clone)]
pub struct LastReload {
    /// Unix seconds.
    pub at: u64,
    pub result: Result<ReloadReport, ReloadError>,
}

/// The process's control plane: the current shared state and reloads.
pub struct Controller {
    source: ConfigSource,
    shared: Arc<Shared>,
    workers: usize,
    current: Mutex<Arc<Current>>,
    /// Restart-only settings as the process runs them (reload notes compare against these).
    running: Mutex<Running>,
    /// Looks up upstream host names (reloads and the resolver thread).
    resolver: Arc<dyn Resolver>,
    /// Upstream targets' addresses and lookups (`GET /status`, metrics).
    dns: DnsBoard,
    /// Serialises reloads with each other, from reading the file to the end (taken before
    /// `serial`, never after it).
    reloading: Mutex<()>,
    /// Serialises applying a config (reloads, the resolver thread) with scrapes.
    serial: Mutex<()>,
    last: Mutex<Option<LastReload>>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// The current access-log writer's queue, handed to workers in each published config.
    log_tx: Mutex<Option<LineQueue>>,
    /// Access-log writers replaced by reloads; each ends once the workers let go of its queue.
    retired_writers: Mutex<Vec<JoinHandle<()>>>,
    /// Their sinks: dropped-line counts keep adding up, and SIGUSR1 reaches every writer.
    retired_sinks: Mutex<Vec<Arc<LogSink>>>,
    /// The local functions service: each applied config is handed to it; taken to stop it.
    functions: Mutex<Option<FunctionsHandle>>,
}

/// Why a reload did not fully apply.
#[derive(Debug, Clone)]
pub enum ReloadError {
    /// Nothing changed (a config error, an unreadable file, a port that cannot be bound, ...).
    Rejected(String),
    /// The new config is current and served by some workers; others did not take it in time.
    Partial(String),
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Rejected(m) | ReloadError::Partial(m) => f.write_str(m),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Controller {
    /// The controller for the config the process started with (generation 0), reloading from
    /// `source` with host names looked up by `resolver`.
    pub(super) fn new(
        (source, resolver): (ConfigSource, Arc<dyn Resolver>),
        shared: Arc<Shared>,
        workers: usize,
        config: Arc<Config>,
        throttle: Arc<Throttle>,
        health: Arc<HealthBoard>,
        log: Option<(Arc<LogSink>, LineQueue)>,
    ) -> io::Result<Self> {
        let (log, log_tx) = match log {
            Some((sink, tx)) => (Some(sink), Some(tx)),
            None => (None, None),
        };
        let checker_stop = Arc::new(AtomicBool::new(false));
        spawn_checker(&health, &config, &shared, &checker_stop)?;
        let dns = DnsBoard::default();
        dns.follow(&config);
        Ok(Controller {
            source,
            workers,
            running: Mutex::new(Running::of(&config)),
            resolver,
            dns,
            current: Mutex::new(Arc::new(Current {
                number: 0,
                config,
                throttle,
                health,
                log,
                checker_stop,
            })),
            shared,
            reloading: Mutex::new(()),
            serial: Mutex::new(()),
            last: Mutex::new(None),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            log_tx: Mutex::new(log_tx),
            retired_writers: Mutex::new(Vec::new()),
            retired_sinks: Mutex::new(Vec::new()),
            functions: Mutex::new(None),
        })
    }

    /// The state being served.
    pub fn current(&self) -> Arc<Current> {
        lock(&self.current).clone()
    }

    /// The effective configuration being served, as TOML (`GET /config`): defaults filled in,
    /// secrets redacted, restart-only settings at the values the process runs, marked where
    /// the file differs.
    pub fn effective_config(&self) -> String {
        let cur = self.current();
        let mut notes = lock(&self.running).annotations(&cur.config);
        notes.extend(DnsBoard::annotations(&cur.config));
        crate::config::effective::render(&cur.config.source, &notes)
    }

    /// Upstream targets' addresses and lookups.
    pub fn dns(&self) -> &DnsBoard {
        &self.dns
    }

    /// The server drains or has stopped (background threads end).
    pub fn shutting_down(&self) -> bool {
        self.shared.draining() || self.shared.stopped()
    }

    /// Serves new addresses for host-name targets (the resolver thread's good answers that
    /// differ from what is served): the config being served is compiled again with them and
    /// handed to the workers as the next generation, as a reload would. Not a reload: the
    /// reload history and counters are left alone. `started` is when the lookups began: a name
    /// a reload looked up since then keeps the reload's (newer) answer.
    pub(super) fn apply_resolved(&self, mut fresh: Vec<Answer>, started: Instant) {
        let _serial = lock(&self.serial);
        if self.shutting_down() {
            return;
        }
        fresh.retain(|a| !self.dns.reloaded_since(&a.host, a.port, started));
        if fresh.is_empty() {
            return;
        }
        let cur = self.current();
        let names: Vec<String> = fresh
            .iter()
            .map(|a| {
                let addrs: Vec<String> = a.addrs.iter().map(|x| x.to_string()).collect();
                format!("{}:{} -> {}", a.host, a.port, addrs.join(", "))
            })
            .collect();
        let known = Arc::new(Known {
            answers: dns::merged(&cur.config, fresh),
            listen: Known::bound(&cur.config),
            fallback: None,
        });
        // relative certificate paths resolve as they did when the text was loaded
        let base = cur.config.base_dir.clone();
        let config = match config::in_dir(base.as_deref(), || {
            config::from_str_with(&cur.config.source, known)
        }) {
            Ok(c) => c,
            Err(e) => {
                // cannot happen: the text compiled, and every name it has is answered by
                // `known`; reported rather than assumed
                eprintln!("tollgate: dns: cannot apply new addresses: {e}");
                return;
            }
        };
        let moved = config
            .upstreams
            .iter()
            .zip(&cur.config.upstreams)
            .any(|(n, o)| n.targets != o.targets);
        if !moved {
            self.dns.follow(&cur.config);
            return;
        }
        match self.apply_locked(&cur, config, Vec::new()) {
            Ok(r) => eprintln!(
                "tollgate: dns: {}; generation {} applied: {}",
                names.join("; "),
                r.generation,
                r.changes.summary()
            ),
            Err(e) => eprintln!("tollgate: dns: {}: {e}", names.join("; ")),
        }
    }

    /// Holds off reloads while the caller reads workers' snapshots, so they and
    /// [`Controller::current`] describe one config.
    pub fn hold(&self) -> MutexGuard<'_, ()> {
        lock(&self.serial)
    }

    /// The latest reload's outcome (None: no reload since startup).
    pub fn last_reload(&self) -> Option<LastReload> {
        lock(&self.last).clone()
    }

    /// Access-log lines dropped so far, by every writer this process had (None: no access log
    /// now).
    pub fn log_dropped(&self) -> Option<u64> {
        let cur = self.current().log.as_ref()?.dropped.load(Ordering::Relaxed);
        let old: u64 = lock(&self.retired_sinks)
            .iter()
            .map(|s| s.dropped.load(Ordering::Relaxed))
            .sum();
        Some(cur + old)
    }

    /// Asks every access-log writer still running to reopen its file (SIGUSR1).
    pub fn reopen_logs(&self) {
        if let Some(sink) = &self.current().log {
            sink.reopen.store(true, Ordering::Release);
        }
        for s in lock(&self.retired_sinks).iter() {
            s.reopen.store(true, Ordering::Release);
        }
    }

    /// Lets go of the access-log queues the controller and the board hold, so writers can end
    /// once the workers have exited (shutdown).
    pub(super) fn release(&self) {
        // after any reload still running: it sees `stopped` and finishes (or, if it had not
        // started yet, finds `draining` and does nothing), so nothing is published after this
        let _serial = lock(&self.serial);
        *lock(&self.log_tx) = None;
        *lock(&self.shared.reload.pending) = None;
    }

    /// Joins access-log writers that reloads replaced (at shutdown, after the workers exited).
    pub(super) fn join_retired(&self) {
        let writers = std::mem::take(&mut *lock(&self.retired_writers));
        for w in writers {
            super::join_writer(w);
        }
    }

    /// Hands the functions service to the controller (startup): from now on every config it
    /// applies is applied to the service too.
    pub(super) fn set_functions(&self, f: FunctionsHandle) {
        *lock(&self.functions) = Some(f);
    }

    /// Stops the functions service (shutdown, or a failed startup), letting its invocations
    /// in flight finish within `grace`. Later calls do nothing.
    pub(super) fn stop_functions(&self, grace: Duration) {
        let taken = lock(&self.functions).take();
        if let Some(f) = taken {
            f.stop(grace);
        }
    }

    /// Stops the current health checker (shutdown).
    pub(super) fn stop_checker(&self) {
        self.current().checker_stop.store(true, Ordering::Release);
    }

    /// Reads, validates and applies the config again. On error nothing changes and the error
    /// (with the file, key and line for config errors) is returned.
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let _one = lock(&self.reloading);
        // read, compile and look names up before taking `serial`: a slow or hanging DNS
        // server must not hold off scrapes (metrics, the history sampler) or the resolver thread
        let loaded = self.load();
        let _serial = lock(&self.serial);
        let result = self.reload_locked(loaded);
        match &result {
            Err(ReloadError::Partial(e)) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("tollgate: reload: {e}");
            }
            Ok(r) => {
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "tollgate: reload: generation {} (config {}) applied: {}{}",
                    r.generation,
                    r.config_hash,
                    r.changes.summary(),
                    r.notes.iter().map(|n| format!("; {n}")).collect::<String>()
                );
            }
            Err(ReloadError::Rejected(e)) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "tollgate: reload rejected, still serving the previous config:\n{}",
                    e.trim_end()
                );
            }
        }
        *lock(&self.last) = Some(LastReload {
            at: unix_now(),
            result: result.clone(),
        });
        result
    }

    /// Reads and compiles the config (names looked up here, off the workers; a failed lookup
    /// keeps the last good answer), with how each lookup went.
    fn load(&self) -> (Result<Config, String>, Vec<Outcome>) {
        if self.shared.draining() {
            return (Err("the server is shutting down".into()), Vec::new());
        }
        let resolver = Arc::new(LastGood::new(self.resolver.clone(), &self.current().config));
        let loaded = with_resolver(resolver.clone(), || self.source.load());
        if let Ok(c) = &loaded {
            // e.g. a certificate about to expire: the reload goes on, the operator is told
            let origin = match &self.source {
                ConfigSource::File(p) => p.display().to_string(),
                ConfigSource::Embedded => "<embedded config>".to_string(),
            };
            eprint!("{}", config::render_warnings(&c.warnings, &origin));
        }
        (loaded, resolver.outcomes())
    }

    fn reload_locked(
        &self,
        (loaded, outcomes): (Result<Config, String>, Vec<Outcome>),
    ) -> Result<ReloadReport, ReloadError> {
        use ReloadError::Rejected;
        if self.shared.draining() {
            return Err(Rejected("the server is shutting down".into()));
        }
        let cur = self.current();
        let result = match loaded {
            Ok(config) => {
                let notes = lock(&self.running).notes(&config);
                self.apply_locked(&cur, config, notes)
            }
            Err(e) => Err(Rejected(e)),
        };
        // after the board follows the new config: its lookups are the latest of their names
        self.dns.looked_up(&outcomes);
        result
    }

    /// Hands `config` to the workers as the generation after `cur` and makes it current.
    fn apply_locked(
        &self,
        cur: &Current,
        mut config: Config,
        notes: Vec<String>,
    ) -> Result<ReloadReport, ReloadError> {
        use ReloadError::Rejected;
        // authorizers whose state would not change keep the process-wide part of it (key
        // sets, cached answers), so every worker finds it in the config it takes
        crate::auth::carry::keep_shared(&mut config, &cur.config);
        let config = Arc::new(config);
        let changes = Changes::between(&cur.config, &config);
        let n = self.workers;
        // Everything that can fail comes first, before any shared state is touched.
        // New listen addresses: bind now, so a taken port fails the reload before any swap.
        let mut added: Vec<Vec<(Endpoint, std::net::TcpListener)>> =
            (0..n).map(|_| Vec::new()).collect();
        let (was, now) = (endpoints(&cur.config), endpoints(&config));
        let was_addrs = endpoint_addrs(&cur.config);
        for &(addr, kind) in &now {
            if was.contains(&(addr, kind)) {
                continue;
            }
            let own = &self.shared.own;
            let ls = listener::bind_reuseport_beside(addr, n, config.server.backlog, own).map_err(
                |e| {
                    own.retain(&was_addrs); // forget what this reload bound
                    Rejected(format!("cannot listen on {addr}: {e}"))
                },
            )?;
            for (i, l) in ls.into_iter().enumerate() {
                if let Some(v) = added.get_mut(i) {
                    v.push(((addr, kind), l));
                }
            }
        }
        let (log, writer) = match (&config.access_log, &cur.config.access_log) {
            (Some(c), Some(old)) if c.path == old.path => {
                let tx = lock(&self.log_tx).clone();
                (cur.log.clone().zip(tx), None)
            }
            (Some(c), _) => {
                let Writer { sink, tx, thread } = LogSink::start(c).map_err(|e| {
                    self.shared.own.retain(&was_addrs);
                    Rejected(format!("cannot open the access log: {e}"))
                })?;
                (Some((sink, tx)), Some(thread))
            }
            (None, _) => (None, None),
        };
        // Sockets a lagging worker has not taken yet stay offered while still configured.
        if let Some(prev) = lock(&self.shared.reload.pending).as_ref() {
            for (w, slot) in prev.added.iter().enumerate() {
                for (ep, l) in std::mem::take(&mut *lock(slot)) {
                    let keep = now.contains(&ep);
                    if let (true, Some(v)) = (keep, added.get_mut(w)) {
                        v.push((ep, l));
                    }
                }
            }
        }
        let throttle = Arc::new(Throttle::reloaded(config.throttle.clone(), &cur.throttle));
        let health = Arc::new(HealthBoard::reloaded(&config, &cur.config, &cur.health));
        let number = cur.number + 1;
        *lock(&self.log_tx) = log.as_ref().map(|(_, tx)| tx.clone());
        let log_sink = log.as_ref().map(|(s, _)| s.clone());
        let published = Arc::new(Published {
            number,
            config: config.clone(),
            throttle: throttle.clone(),
            health: health.clone(),
            log,
            added: added.into_iter().map(Mutex::new).collect(),
        });
        // the functions service first: a route added by this config may be invoked as soon
        // as a worker takes it (removed functions finish their invocations in flight)
        // (waited for: once the reload returns, the service serves the new config)
        let functions_late = lock(&self.functions)
            .as_ref()
            .is_some_and(|f| !f.apply(config.clone()));
        *lock(&self.shared.reload.pending) = Some(published);
        self.shared
            .reload
            .generation
            .store(number, Ordering::Release);
        let applied = self.wait_applied(number);
        let checker_stop = Arc::new(AtomicBool::new(false));
        if let Err(e) = spawn_checker(&health, &config, &self.shared, &checker_stop) {
            eprintln!("tollgate: reload: cannot start health checks: {e}");
        }
        cur.checker_stop.store(true, Ordering::Release);
        if let Some(w) = writer {
            lock(&self.retired_writers).push(w);
        }
        // a writer no longer current (replaced or removed) may still take lagging workers'
        // lines: its drops keep counting and SIGUSR1 keeps reaching it
        if let Some(old) = cur.log.clone() {
            if !log_sink.as_ref().is_some_and(|s| Arc::ptr_eq(s, &old)) {
                lock(&self.retired_sinks).push(old);
            }
        }
        lock(&self.running).applied(&config);
        // sockets of removed addresses are closed by the workers that took this generation; a
        // worker that has not may still listen on one, so they stay known as the server's
        if applied == n {
            self.shared.own.retain(&endpoint_addrs(&config));
        }
        self.dns.follow(&config);
        *lock(&self.current) = Arc::new(Current {
            number,
            config: config.clone(),
            throttle,
            health,
            log: log_sink,
            checker_stop,
        });
        if self.shared.stopped() && applied < n {
            return Err(Rejected("the server shut down during the reload".into()));
        }
        if applied < n {
            return Err(ReloadError::Partial(format!(
                "generation {number} is current but only {applied} of {n} workers took it within {} ms; the others take it as soon as they can",
                RELOAD_APPLY_WAIT.as_millis()
            )));
        }
        if functions_late {
            return Err(ReloadError::Partial(format!(
                "generation {number} is current but the local functions service did not take it within {} ms; it takes it as soon as it can",
                crate::functions::APPLY_ACK_WAIT.as_millis()
            )));
        }
        Ok(ReloadReport {
            generation: number,
            config_hash: config.hash.clone(),
            notes,
            changes,
        })
    }

    /// Waits until every worker serves `number` (or the workers have exited); returns how
    /// many do.
    fn wait_applied(&self, number: u64) -> usize {
        let deadline = Instant::now() + RELOAD_APPLY_WAIT;
        let board = &self.shared.reload;
        loop {
            let done = board
                .applied
                .iter()
                .filter(|a| a.load(Ordering::Acquire) >= number)
                .count();
            if done == board.applied.len() || self.shared.stopped() || Instant::now() >= deadline {
                return done;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn spawn_checker(
    health: &Arc<HealthBoard>,
    config: &Arc<Config>,
    shared: &Arc<Shared>,
    stop: &Arc<AtomicBool>,
) -> io::Result<()> {
    let (shared, stop) = (shared.clone(), stop.clone());
    health.spawn_checker(config.clone(), move || {
        shared.draining() || stop.load(Ordering::Acquire)
    })?;
    Ok(())
}
