//! Threads, runtimes and process lifecycle: one worker per core, each with its own monoio runtime.
//!
//! Owns: starting `server.workers` threads (optionally pinned), building each runtime on the
//! chosen driver (io_uring, falling back to epoll under `auto` when the ring cannot be built),
//! the SO_REUSEPORT listeners (made up front by [`listener`]), panic isolation per connection,
//! draining on shutdown, and the background threads (usage flusher, health checker, access-log
//! writer, admin, upstream name resolver: see [`dns`]), and the local functions service
//! ([`crate::functions`]: started before the workers, each of which builds one pool to its
//! loopback address; reloads are applied to it by the [`reload`] controller; stopped after
//! the workers exit). A worker's own loops are in [`worker`];
//! hot reload in [`reload`].
//!
//! What crosses cores, all through [`Shared`]: the `draining` flag (an `AtomicBool`, written
//! once by the controlling thread with `Release` and read by each worker's housekeeping loop
//! with `Acquire`, so a worker that sees it also sees everything written before it), the scrape
//! board (see [`crate::metrics`]) and the reload board (see [`reload`]). Workers report their
//! driver once at startup through a channel; nothing is shared on the request path.

mod board;
pub mod changes;
pub mod dns;
mod edge;
pub mod listener;
pub mod reload;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::accesslog::{LogSink, WorkerLog};
use crate::config::Config;
use crate::functions::FunctionsHandle;
use crate::health::HealthBoard;
use crate::metrics::ScrapeBoard;
pub use crate::runtime::{CatchUnwind, DriverChoice, DriverKind};
use crate::throttle::Throttle;
use reload::{ConfigSource, Controller, ReloadBoard, ReloadError, ReloadReport};
use worker::{worker_thread, WorkerSetup};

/// How often a worker runs its housekeeping (drain watch, scrapes, reloads) at most apart.
pub const DRAIN_POLL: Duration = Duration::from_millis(20);
/// How long accept backs off when the worker is at `server.max_connections`.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(2);

/// What a listening address serves: plain HTTP (`server.listen`) or HTTPS (`tls.listen`). Part
/// of a listener's identity: with port 0 the same configured address may appear in both lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenKind {
    Plain,
    Tls,
}

/// A configured listen address and what it serves.
pub type Endpoint = (SocketAddr, ListenKind);

/// Every address the workers accept on: `server.listen` (plain), then `tls.listen`.
pub(crate) fn endpoints(c: &Config) -> Vec<Endpoint> {
    let plain = c.server.listen.iter().map(|&a| (a, ListenKind::Plain));
    let tls = c
        .tls
        .iter()
        .flat_map(|t| t.listen.iter().map(|&a| (a, ListenKind::Tls)));
    plain.chain(tls).collect()
}

/// The configured addresses of [`endpoints`] (what [`listener::Owned`] is kept to).
pub(crate) fn endpoint_addrs(c: &Config) -> Vec<SocketAddr> {
    endpoints(c).into_iter().map(|(a, _)| a).collect()
}

/// State shared by all workers and the controlling threads.
pub struct Shared {
    draining: AtomicBool,
    /// Every worker has exited (set by the last one out; the state flusher's cue).
    stopped: AtomicBool,
    running: AtomicUsize,
    /// Where the admin thread asks workers for metric snapshots.
    pub board: Arc<ScrapeBoard>,
    /// Where reloaded configs are handed to the workers.
    pub reload: ReloadBoard,
    /// The workers' listening sockets (so the server's own are not "another process"; behind a
    /// mutex, touched only at startup and by reloads).
    pub own: listener::Owned,
}

impl Shared {
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// Counts a worker thread out of `Shared::running` when dropped; the last one out sets
/// `stopped` (the cue for the usage flusher's last write and for reloads in progress).
struct RunningGuard(Arc<Shared>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.stopped.store(true, Ordering::Release);
        }
    }
}

/// How long `join` waits for an access-log writer to write what is queued and end.
pub const LOG_WRITER_JOIN: Duration = Duration::from_secs(10);

/// Joins a writer thread, but gives up after [`LOG_WRITER_JOIN`] (a disk that hangs must not
/// hang the process's exit).
fn join_writer(t: JoinHandle<()>) {
    let deadline = Instant::now() + LOG_WRITER_JOIN;
    while !t.is_finished() {
        if Instant::now() >= deadline {
            eprintln!("tollgate: the access-log writer did not finish; exiting without it");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = t.join();
}

/// A running server: its bound addresses, drivers, and the means to reload and stop it.
pub struct ServerHandle {
    addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    drivers: Vec<DriverKind>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    control: Arc<Controller>,
    flusher: Option<JoinHandle<()>>,
    admin: Option<crate::admin::AdminHandle>,
    log_writer: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The listen addresses bound at startup (port 0 resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The TLS listen addresses (`tls.listen`) bound at startup (port 0 resolved).
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// The driver of each worker, by worker index.
    pub fn drivers(&self) -> &[DriverKind] {
        &self.drivers
    }

    /// Starts draining: stop accepting, finish in-flight requests (up to
    /// `server.timeouts.shutdown_ms`), then workers exit.
    pub fn shutdown(&self) {
        self.shared.draining.store(true, Ordering::Release);
        self.control.stop_checker();
    }

    /// Reloads the config from where it was first read (SIGHUP): see [`reload`].
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        self.control.reload()
    }

    /// The control plane (to reload from another thread).
    pub fn controller(&self) -> Arc<Controller> {
        self.control.clone()
    }

    /// Asks the access-log writers to reopen their files before their next write (SIGUSR1).
    pub fn reopen_logs(&self) {
        self.control.reopen_logs();
    }

    /// The admin listener's bound address, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
    }

    /// The traffic-management state being served (usage, counters).
    pub fn throttle(&self) -> Arc<Throttle> {
        self.control.current().throttle.clone()
    }

    /// Waits for every worker to exit, then closes the admin listener and writes quota usage a
    /// last time.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
        if let Some(a) = self.admin {
            // the workers are gone, so is the server: the admin listener closes too
            self.shared.draining.store(true, Ordering::Release);
            a.stop();
        }
        if let Some(f) = self.flusher {
            let _ = f.join(); // its last flush runs after the workers stopped
        }
        // every invocation from a route has been answered or abandoned: the functions service
        // finishes the rest (the admin relay's) within the grace period, then stops its
        // processes; its log lines are written before the log writer ends
        let grace = self.control.current().config.server.timeouts.shutdown;
        self.control.stop_functions(grace);
        self.control.release();
        if let Some(writer) = self.log_writer {
            join_writer(writer); // ends once every sender is gone and the queue is written
        }
        self.control.join_retired();
    }
}

/// Writes quota usage every `api_keys.flush_ms` and once more when the server drains, off the
/// workers (file I/O would stall a core). Follows reloads for the state it writes (keys and
/// quotas of the config being served); the directory is the one the process started with.
fn spawn_flusher(
    control: Arc<Controller>,
    shared: Arc<Shared>,
    dir: std::path::PathBuf,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tollgate-state".into())
        .spawn(move || {
            let mut last = Instant::now();
            loop {
                let every = control.current().throttle.spec.flush_interval;
                std::thread::sleep(Duration::from_millis(10).min(every));
                let stop = shared.stopped.load(Ordering::Acquire);
                if stop || last.elapsed() >= every {
                    let t = control.current().throttle.clone();
                    if let Err(e) = crate::throttle::store::flush(&t, &dir) {
                        eprintln!("tollgate: cannot write {}: {e}", dir.display());
                    }
                    last = Instant::now();
                }
                if stop {
                    return;
                }
            }
        })
}

// The runtime builder lives in `crate::runtime` (the functions thread builds one too).
pub(crate) use crate::runtime::build_runtime;

/// Binds every listener and starts the workers; returns once all of them serve. `source` is
/// where a reload reads the config again. Upstream host names are looked up by the system.
pub fn start(config: Arc<Config>, source: ConfigSource) -> io::Result<ServerHandle> {
    start_with(config, source, crate::config::resolve::system())
}

/// [`start`], with upstream host names looked up (by reloads and the resolver thread) by
/// `resolver`; `config` should have been compiled with it too
/// ([`crate::config::from_str_with`]).
pub fn start_with(
    config: Arc<Config>,
    source: ConfigSource,
    resolver: Arc<dyn crate::config::resolve::Resolver>,
) -> io::Result<ServerHandle> {
    let s = &config.server;
    let n = s.workers.max(1);
    let mut per_worker: Vec<Vec<(Endpoint, std::net::TcpListener)>> =
        (0..n).map(|_| Vec::new()).collect();
    let (mut addrs, mut tls_addrs) = (Vec::new(), Vec::new());
    let own = listener::Owned::default();
    for (addr, kind) in endpoints(&config) {
        let ls = listener::bind_reuseport_beside(addr, n, s.backlog, &own)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        if let Some(first) = ls.first() {
            match kind {
                ListenKind::Plain => addrs.push(first.local_addr()?),
                ListenKind::Tls => tls_addrs.push(first.local_addr()?),
            }
        }
        for (i, l) in ls.into_iter().enumerate() {
            per_worker[i].push(((addr, kind), l));
        }
    }
    let shared = Arc::new(Shared {
        draining: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        running: AtomicUsize::new(n),
        board: Arc::new(ScrapeBoard::new(n)),
        reload: ReloadBoard::new(n),
        own,
    });
    let throttle = Arc::new(Throttle::new(config.throttle.clone(), n));
    if let Some(dir) = &config.throttle.state_dir {
        crate::throttle::store::restore(&throttle, dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read state in {}: {e}", dir.display()),
            )
        })?;
    }
    let log_writer =
        match &config.access_log {
            Some(c) => Some(LogSink::start(c).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot open the access log: {e}"))
            })?),
            None => None,
        };
    let health = Arc::new(HealthBoard::new(&config));
    // the local functions service runs before the workers, which reach it over loopback
    // (its address goes into each worker's setup); a service that cannot start is fatal
    let functions = FunctionsHandle::start(&config)?;
    let functions_addr = functions.addr();
    let functions_stats = functions.stats();
    let mut functions = Some(functions);
    // stops the service when startup fails after it started
    let abandon = |f: &mut Option<FunctionsHandle>| {
        if let Some(f) = f.take() {
            f.stop(Duration::ZERO);
        }
    };
    let (tx, rx) = mpsc::channel::<(usize, io::Result<DriverKind>)>();
    let mut threads = Vec::with_capacity(n);
    for (id, listeners) in per_worker.into_iter().enumerate() {
        let config = config.clone();
        let shared = shared.clone();
        let tx = tx.clone();
        let throttle = throttle.clone();
        let health = health.clone();
        let log = match (&config.access_log, &log_writer) {
            (Some(c), Some(wr)) => Some((c.clone(), wr.sink.clone(), wr.tx.clone())),
            _ => None,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("tollgate-w{id}"))
            .spawn(move || {
                let log = log.map(|(c, sink, tx)| WorkerLog::new(c, sink, tx));
                // counts the worker out however its thread ends, a panic included
                let _out = RunningGuard(shared.clone());
                worker_thread(WorkerSetup {
                    id,
                    config,
                    listeners,
                    shared: shared.clone(),
                    throttle,
                    log,
                    health,
                    ready: tx,
                    functions: Some(functions_addr),
                });
            });
        let t = match spawned {
            Ok(t) => t,
            Err(e) => {
                abandon(&mut functions);
                return Err(e);
            }
        };
        threads.push(t);
    }
    drop(tx);
    // the workers and the controller keep senders: the writer ends when the last worker is
    // gone and the controller has let go (`ServerHandle::join`)
    let (log, log_thread) = match log_writer {
        Some(w) => (Some((w.sink, w.tx)), Some(w.thread)),
        None => (None, None),
    };
    let mut drivers = vec![DriverKind::Epoll; n];
    for _ in 0..n {
        match rx.recv() {
            Ok((id, Ok(d))) => drivers[id] = d,
            Ok((id, Err(e))) => {
                shared.draining.store(true, Ordering::Release);
                abandon(&mut functions);
                return Err(io::Error::new(e.kind(), format!("worker {id}: {e}")));
            }
            Err(_) => {
                abandon(&mut functions);
                return Err(io::Error::other("a worker exited during startup"));
            }
        }
    }
    let control = match Controller::new(
        (source, resolver.clone()),
        shared.clone(),
        n,
        config.clone(),
        throttle,
        health,
        log,
    ) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            shared.draining.store(true, Ordering::Release);
            abandon(&mut functions);
            return Err(e);
        }
    };
    // from here the controller holds the service: it applies reloads to it and stops it
    if let Some(f) = functions.take() {
        control.set_functions(f);
    }
    dns::spawn(control.clone(), resolver).inspect_err(|_| {
        shared.draining.store(true, Ordering::Release);
        control.stop_functions(Duration::ZERO);
    })?;
    let admin = match config.admin {
        Some(addr) => {
            let a = Arc::new(crate::admin::Admin {
                control: control.clone(),
                board: shared.board.clone(),
                shared: shared.clone(),
                started: Instant::now(),
                drivers: drivers.iter().map(|d| d.name()).collect(),
                functions: functions_stats,
                functions_addr: Some(functions_addr),
            });
            let bound = crate::admin::spawn(addr, a).map_err(|e| {
                shared.draining.store(true, Ordering::Release);
                control.stop_functions(Duration::ZERO);
                io::Error::new(e.kind(), format!("cannot listen on admin {addr}: {e}"))
            })?;
            Some(bound)
        }
        None => None,
    };
    let flusher = match &config.throttle.state_dir {
        Some(dir) => Some(
            spawn_flusher(control.clone(), shared.clone(), dir.clone()).inspect_err(|_| {
                shared.draining.store(true, Ordering::Release);
                control.stop_functions(Duration::ZERO);
            })?,
        ),
        None => None,
    };
    Ok(ServerHandle {
        addrs,
        tls_addrs,
        drivers,
        shared,
        threads,
        control,
        flusher,
        admin,
        log_writer: log_thread,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panic_is_contained(choice: DriverChoice) {
        let (mut rt, _) = build_runtime(choice, 64).expect("runtime builds");
        let survived = rt.block_on(async {
            let boom = async {
                monoio::time::sleep(Duration::from_millis(1)).await;
                panic!("connection bug");
            };
            monoio::spawn(CatchUnwind(boom)).await;
            monoio::spawn(async { 7 }).await
        });
        assert_eq!(survived, 7);
    }

    #[test]
    fn panic_in_a_connection_spares_the_worker_io_uring() {
        panic_is_contained(DriverChoice::IoUring);
    }

    #[test]
    fn panic_in_a_connection_spares_the_worker_epoll() {
        panic_is_contained(DriverChoice::Epoll);
    }

    #[test]
    fn auto_driver_picks_one() {
        let (_, kind) = build_runtime(DriverChoice::Auto, 64).expect("auto always builds");
        assert!(matches!(kind, DriverKind::IoUring | DriverKind::Epoll));
    }
}
