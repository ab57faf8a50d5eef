//! Local functions: tollgate as a Lambda service on the edge host.
//!
//! Owns the functions service: one thread per tollgate process ("the functions thread", its
//! own monoio runtime on `server.driver`) that runs every local function's processes through
//! the Lambda Runtime API and answers the Lambda Invoke API for them on a loopback listener.
//! Leaves out the worker side (building the event, classifying the answer: see
//! `crate::integration::lambda` and `crate::lambda`) and remote functions (reached by the
//! workers directly).
//!
//! The runtime model. Per function, at most `concurrency` processes, each running one
//! invocation at a time; a process starts on demand (a cold start, counted and logged with
//! its duration), stays warm while used, and stops after `idle` without work (scale to zero:
//! no process is kept warm). An invocation that finds no idle process starts one (if under
//! `concurrency`) and waits for it, or waits in a FIFO queue of `queue` places; beyond: 429.
//! Timeouts: a running invocation past `timeout` is answered `Sandbox.Timedout` and its
//! process group killed; one waiting that long is answered the same; a process that does not
//! call `invocation/next` within [`scheduler::INIT_TIMEOUT`] is killed.
//!
//! Why workers share the pool without a lock: the pool lives on the functions thread alone,
//! and the workers reach it over loopback keep-alive connections from their own per-core
//! upstream pools ([`FunctionsHandle::addr`]), exactly as they reach an origin. Admission is
//! decided on that one thread, so "at most N at once across all workers" holds by
//! construction, with no lock or atomic on the request path. Blocking work (fork/exec, reaping)
//! never runs on a worker.
//!
//! Data flow: [`invoke_api`] takes a request → [`service::Service::invoke`] →
//! [`scheduler::Scheduler::arrive`] → a process's parked `next` ([`runtime_api`]) returns the
//! event → the process posts its response → the waiting Invoke API connection answers. The
//! tick loop ([`run`]) reaps, enforces deadlines and applies reloads and the stop
//! that [`FunctionsHandle`] sends from other threads over a channel (and acknowledges). Files:
//! [`scheduler`] (sans-IO state machine; its vocabulary in [`actions`]), [`service`],
//! [`invoke_api`], [`runtime_api`], [`http`] (the shared HTTP/1.1 server side), [`logs`]
//! (stdout/stderr into tollgate's log), [`signal`] (single-threaded oneshot, wake-ups,
//! connection counts), [`sandbox`] (the process).

pub mod actions;
pub mod http;
pub mod ids;
pub mod invoke_api;
pub mod logs;
pub mod runtime_api;
pub mod sandbox;
pub mod scheduler;
pub mod service;
pub mod signal;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Config;

/// `AWS_REGION` of local functions unless their `env` sets it.
pub const LOCAL_REGION: &str = "us-east-1";
/// How long [`FunctionsHandle::apply`] waits for the functions thread to have applied a
/// config (it does on its next [`service::TICK`]; this bounds a stalled thread).
pub const APPLY_ACK_WAIT: Duration = Duration::from_secs(2);
/// The io_uring submission queue size of the functions thread (few connections).
const RING_ENTRIES: u32 = 256;

/// The Invoke API path prefix (`POST /2015-03-31/functions/NAME/invocations`).
pub const INVOKE_PREFIX: &str = "/2015-03-31/functions/";

/// The Invoke API path of function `name` (percent-encoded where the name needs it).
pub fn invoke_path(name: &str) -> String {
    format!("{INVOKE_PREFIX}{name}/invocations")
}

/// RFC 3986 §2.1 percent-decoding of an Invoke API path segment into UTF-8 (the service's
/// and the admin relay's parsers); `None` on a bad escape or bytes that are not UTF-8.
pub fn percent_decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        if b == b'%' {
            let h = (*it.next()? as char).to_digit(16)?;
            let l = (*it.next()? as char).to_digit(16)?;
            out.push((h * 16 + l) as u8);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// Live numbers of one local function, written by the functions thread (`Relaxed` stores:
/// each is an independent gauge or counter read by scrapes, which need no ordering with
/// anything else) and read by the admin listener.
#[derive(Debug, Default)]
pub struct FunctionStats {
    pub name: String,
    pub cold_starts: AtomicU64,
    /// Invocations running in a process now.
    pub concurrent: AtomicU64,
    /// Invocations waiting for a process now.
    pub queued: AtomicU64,
    /// Processes alive now (busy, idle or starting).
    pub processes: AtomicU64,
}

/// The live numbers of every local function: replaced as a whole on reload by the functions
/// thread, read by the admin listener (a lock only the control plane takes, never a worker).
pub type StatsList = Arc<Mutex<Vec<Arc<FunctionStats>>>>;

/// A snapshot of the list (each entry's counters keep moving).
pub fn snapshot(list: &StatsList) -> Vec<Arc<FunctionStats>> {
    list.lock().map(|s| s.clone()).unwrap_or_default()
}

/// What other threads tell the functions thread.
pub(crate) enum Control {
    /// A config to apply; the sender is told once it is.
    Apply(Arc<Config>, mpsc::SyncSender<()>),
    Stop(Duration),
}

/// The thread's main: serve until stopped.
async fn run(svc: Rc<service::Service>, control: mpsc::Receiver<Control>) {
    loop {
        monoio::time::sleep(service::TICK).await;
        loop {
            match control.try_recv() {
                Ok(Control::Apply(c, done)) => {
                    svc.apply(&c);
                    let _ = done.try_send(());
                }
                Ok(Control::Stop(grace)) => svc.begin_stop(grace),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    svc.begin_stop(Duration::ZERO);
                    break;
                }
            }
        }
        if svc.tick() {
            break;
        }
    }
    svc.kill_all();
    svc.closed.set();
    // Let the listeners and connections see it and end (dropping their sockets) before the
    // runtime goes.
    monoio::time::sleep(service::TICK * 3).await;
    // Whatever is left (not reaped within the window) is killed when the state drops.
}

/// The running functions service.
pub struct FunctionsHandle {
    addr: SocketAddr,
    stats: StatsList,
    control: mpsc::Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

impl FunctionsHandle {
    /// Binds the internal Invoke API on loopback and starts the functions thread for
    /// `config`'s local functions (on `config.server.driver`). Works with no local function at
    /// all (the thread idles; a reload may add some).
    pub fn start(config: &Arc<Config>) -> io::Result<FunctionsHandle> {
        Self::start_with_log(config, logs::stderr())
    }

    /// [`FunctionsHandle::start`], with the service's log lines (functions' output, cold
    /// starts, failed starts) going to `log` instead of stderr.
    pub fn start_with_log(config: &Arc<Config>, log: logs::LogSink) -> io::Result<FunctionsHandle> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stats: StatsList = Arc::default();
        let (control, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
        let (cfg, st) = (config.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("tollgate-functions".into())
            .spawn(move || {
                let mut rt = match crate::runtime::build_runtime(cfg.server.driver, RING_ENTRIES) {
                    Ok((rt, _)) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match monoio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let svc = service::Service::new(&cfg, st, log);
                    monoio::spawn(invoke_api::serve(listener, svc.clone()));
                    let _ = ready_tx.send(Ok(()));
                    run(svc, rx).await;
                });
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(FunctionsHandle {
                addr,
                stats,
                control,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(io::Error::new(
                    e.kind(),
                    format!("cannot start the functions service: {e}"),
                ))
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("the functions thread ended at start"))
            }
        }
    }

    /// Where the internal Invoke API listens (loopback): workers' pools and the admin relay.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The functions of a reloaded config: added ones start on first use, removed ones stop
    /// after their invocations in flight, changed ones replace their processes after theirs
    /// (`concurrency`, `queue`, `idle_ms`, `timeout_ms` change in place).
    ///
    /// Returns once the functions thread has applied it (true), or false when it did not
    /// within [`APPLY_ACK_WAIT`] (it still applies it as soon as it can) or is gone.
    pub fn apply(&self, config: Arc<Config>) -> bool {
        let (done, applied) = mpsc::sync_channel(1);
        if self.control.send(Control::Apply(config, done)).is_err() {
            return false;
        }
        applied.recv_timeout(APPLY_ACK_WAIT).is_ok()
    }

    /// The live numbers of every local function (see [`StatsList`]).
    pub fn stats(&self) -> StatsList {
        self.stats.clone()
    }

    /// Stops taking invocations, lets those in flight finish (up to `grace`), then stops every
    /// process (SIGTERM, then SIGKILL) and joins the thread.
    pub fn stop(mut self, grace: Duration) {
        self.shut(grace);
    }

    fn shut(&mut self, grace: Duration) {
        let _ = self.control.send(Control::Stop(grace));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FunctionsHandle {
    /// A handle dropped without [`FunctionsHandle::stop`] stops at once (no grace).
    fn drop(&mut self) {
        self.shut(Duration::ZERO);
    }
}
