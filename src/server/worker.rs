//! One worker thread: its runtime, accept loops and housekeeping loop.
//!
//! Owns: building the worker's runtime and first [`Generation`], one accept loop per listen
//! address, plain or TLS (each with its own canceller, so a reload can stop one; a TLS
//! listener's connections start with their handshake, see [`super::edge`]), and the
//! housekeeping loop that runs every few milliseconds between requests: scrape answers,
//! throttle reconciliation, the idle sweep, access-log flushing, taking a reloaded config, and
//! retiring old generations once their last request has ended. Leaves out: serving
//! connections (see [`crate::proxy`]).

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use monoio::io::Canceller;
use monoio::task::JoinHandle;

use super::reload::Published;
use super::{
    build_runtime, edge, endpoints, listener, CatchUnwind, DriverKind, Endpoint, ListenKind,
    Shared, ACCEPT_BACKOFF, DRAIN_POLL,
};
use crate::accesslog::WorkerLog;
use crate::client::Upstream;
use crate::config::Config;
use crate::health::HealthBoard;
use crate::proxy::worker::{Generation, Worker};
use crate::throttle::Throttle;

/// Everything a worker thread starts with.
pub(super) struct WorkerSetup {
    pub id: usize,
    pub config: Arc<Config>,
    /// Sockets by configured listen address and kind.
    pub listeners: Vec<(Endpoint, std::net::TcpListener)>,
    pub shared: Arc<Shared>,
    pub throttle: Arc<Throttle>,
    pub log: Option<WorkerLog>,
    pub health: Arc<HealthBoard>,
    pub ready: mpsc::Sender<(usize, io::Result<DriverKind>)>,
    /// The local functions service's internal Invoke API (loopback), when it runs.
    pub functions: Option<std::net::SocketAddr>,
}

pub(super) fn worker_thread(setup: WorkerSetup) {
    let (id, config, ready) = (setup.id, setup.config.clone(), setup.ready.clone());
    if config.server.pin_cores {
        if let Err(e) = listener::pin_current_thread(id) {
            eprintln!("tollgate: worker {id}: cannot pin to core {id}: {e}");
        }
    }
    let (mut rt, kind) = match build_runtime(config.server.driver, config.server.ring_entries) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send((id, Err(e)));
            return;
        }
    };
    drop(ready);
    rt.block_on(worker_main(setup, kind));
}

/// An accept loop and the means to stop it.
struct Acceptor {
    addr: Endpoint,
    canceller: Canceller,
    closed: Rc<Cell<bool>>,
    task: JoinHandle<()>,
}

/// The worker's accept loops, by configured address and kind.
#[derive(Default)]
struct Acceptors(Vec<Acceptor>);

impl Acceptors {
    fn start(
        &mut self,
        w: &Rc<Worker>,
        addr: Endpoint,
        l: std::net::TcpListener,
    ) -> io::Result<()> {
        let l = monoio::net::TcpListener::from_std(l)?;
        let canceller = Canceller::new();
        let closed = Rc::new(Cell::new(false));
        let task = monoio::spawn(accept_loop(
            l,
            addr.1,
            w.clone(),
            canceller.handle(),
            closed.clone(),
        ));
        self.0.push(Acceptor {
            addr,
            canceller,
            closed,
            task,
        });
        Ok(())
    }

    /// Stops the loops for `addrs` (their sockets close: connections still queued in the
    /// kernel for them are reset, as with any closed listener). Connections they accepted
    /// finish the request in progress (or the next one, for an idle connection), answer it with
    /// `Connection: close`, and close; an idle connection that sends nothing closes at its
    /// keep-alive timeout.
    async fn stop(&mut self, addrs: &[Endpoint]) {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|a| addrs.contains(&a.addr));
        self.0 = kept;
        for a in gone {
            a.closed.set(true);
            let _ = a.canceller.cancel();
            a.task.await;
        }
    }

    fn has(&self, addr: Endpoint) -> bool {
        self.0.iter().any(|a| a.addr == addr)
    }

    fn addrs(&self) -> impl Iterator<Item = Endpoint> + '_ {
        self.0.iter().map(|a| a.addr)
    }

    async fn stop_all(&mut self) {
        let all: Vec<Endpoint> = self.0.iter().map(|a| a.addr).collect();
        self.stop(&all).await;
    }
}

async fn worker_main(setup: WorkerSetup, kind: DriverKind) {
    let WorkerSetup {
        id,
        config,
        listeners,
        shared,
        throttle,
        log,
        health,
        ready,
        functions,
    } = setup;
    let first = Generation::first(id, config, throttle, log, &health);
    let w = Rc::new(Worker::new(id, kind, first));
    if let Some(addr) = functions {
        // this worker's own pool to the service: keep-alive connections over loopback, no
        // lock shared with any other worker (see crate::functions)
        let up = crate::config::functions::service_upstream(addr);
        let _ = w.functions.set(Rc::new(Upstream::new(&up, &[])));
    }
    let mut acceptors = Acceptors::default();
    for (addr, l) in listeners {
        if let Err(e) = acceptors.start(&w, addr, l) {
            let _ = ready.send((id, Err(e)));
            return;
        }
    }
    let _ = ready.send((id, Ok(kind)));
    drop(ready);
    // JWT authorizers' key sets, fetched now so that the first request does not wait
    crate::auth::jwt_authorizer::prefetch(&w);
    // Generations replaced by a reload, kept until their last request ends.
    let mut retiring: Vec<Rc<Generation>> = Vec::new();
    let (mut last_sweep, mut last_sync) = (Instant::now(), Instant::now());
    let mut scraped = 0;
    while !shared.draining() {
        let g = w.current();
        let sync_every = g.config.throttle.sync_interval;
        let poll = w.idle.tick().min(DRAIN_POLL).min(sync_every);
        drop(g);
        monoio::time::sleep(poll).await;
        if let Some(p) = shared.reload.newer_than(w.current().number) {
            apply(&w, &p, &mut acceptors, &mut retiring).await;
            shared.reload.applied(id, p.number);
        }
        let g = w.current();
        let wanted = shared.board.wanted();
        if wanted > scraped {
            shared.board.answer(id, wanted, w.snapshot());
            scraped = wanted;
        }
        let now = Instant::now();
        if g.config.throttle.is_active() && now.duration_since(last_sync) >= sync_every {
            g.throttle.sync();
            last_sync = now;
        }
        if now.duration_since(last_sweep) >= w.idle.tick() {
            w.idle.sweep();
            last_sweep = now;
        }
        if let Some(l) = &g.log {
            l.tick();
        }
        retire(&g, &mut retiring);
    }
    // Drain: stop accepting, tell connections to close after their current request, and give
    // in-flight requests the grace period. Idle HTTP/1 connections close as the runtime drops;
    // HTTP/2 ones (idle too) are woken to send GOAWAY, and waited for like requests.
    w.start_drain();
    acceptors.stop_all().await;
    let g = w.current();
    let deadline = Instant::now() + g.config.server.timeouts.shutdown;
    // HTTP/2 connections too: their GOAWAY is written before the runtime drops them
    while (w.busy.get() > 0 || w.h2_connections.get() > 0) && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(5)).await;
        g.throttle.sync(); // in-flight requests may still wait on quota units
    }
    g.throttle.sync();
    for old in &retiring {
        if let Some(l) = old.log_unshared_with(&g) {
            l.finish();
        }
    }
    if let Some(l) = &g.log {
        l.finish();
    }
}

/// Takes a reloaded config: builds the next generation from the current one, makes it current
/// (requests that already started keep theirs), and brings the accept loops in line with the
/// config's listen addresses.
async fn apply(
    w: &Rc<Worker>,
    p: &Published,
    acceptors: &mut Acceptors,
    retiring: &mut Vec<Rc<Generation>>,
) {
    let cur = w.current();
    let next = cur.next(
        p.number,
        p.config.clone(),
        p.throttle.clone(),
        |prev| {
            let c = p.config.access_log.as_ref()?;
            let (sink, tx) = p.log.as_ref()?;
            match prev {
                Some(l) if l.writes_to(sink) && l.config() == c => Some(l.clone()),
                Some(l) if l.writes_to(sink) => Some(Rc::new(l.reformatted(c.clone()))),
                _ => Some(Rc::new(WorkerLog::new(c.clone(), sink.clone(), tx.clone()))),
            }
        },
        &p.health,
    );
    let old = w.install(Rc::new(next));
    retiring.push(old);
    drop(cur);
    crate::auth::jwt_authorizer::prefetch(w);
    let offered = p
        .added
        .get(w.id)
        .and_then(|m| m.lock().ok().map(|mut v| std::mem::take(&mut *v)))
        .unwrap_or_default();
    for (addr, l) in offered {
        if acceptors.has(addr) {
            continue; // cannot happen for a worker in step; dropping the socket is all there is
        }
        if let Err(e) = acceptors.start(w, addr, l) {
            eprintln!(
                "tollgate: worker {}: cannot accept on {}: {e}",
                w.id, addr.0
            );
        }
    }
    let listen = endpoints(&p.config);
    let gone: Vec<Endpoint> = acceptors.addrs().filter(|a| !listen.contains(a)).collect();
    acceptors.stop(&gone).await;
}

/// Drops generations no request uses any more, handing their unshared log lines to the writer.
fn retire(current: &Generation, retiring: &mut Vec<Rc<Generation>>) {
    retiring.retain(|old| {
        let log = old.log_unshared_with(current);
        if Rc::strong_count(old) > 1 {
            if let Some(l) = log {
                l.tick();
            }
            return true;
        }
        if let Some(l) = log {
            l.hand_off();
        }
        false
    });
}

async fn accept_loop(
    listener: monoio::net::TcpListener,
    kind: ListenKind,
    w: Rc<Worker>,
    cancel: monoio::io::CancelHandle,
    closed: Rc<Cell<bool>>,
) {
    let stop = || w.draining.get() || closed.get();
    // A listener bound to one address is the local address of every connection it accepts;
    // only a wildcard bind (0.0.0.0, [::]) asks each socket (getsockname(2), once).
    let bound = listener
        .local_addr()
        .ok()
        .filter(|a| !a.ip().is_unspecified());
    loop {
        let max = w.with_current(|g| g.config.server.max_connections);
        if w.open_connections.get() >= max {
            monoio::time::sleep(ACCEPT_BACKOFF).await;
            if stop() {
                return;
            }
            continue;
        }
        match listener.cancelable_accept(cancel.clone()).await {
            Ok((stream, peer)) => {
                w.open_connections.set(w.open_connections.get() + 1);
                // the connection's facts, captured once (nothing later asks the socket)
                let local = match bound {
                    Some(a) => a,
                    None => stream.local_addr().unwrap_or(peer),
                };
                match kind {
                    // HTTP/1, or with `server.h2c` a look at the first bytes
                    ListenKind::Plain => {
                        let conn = edge::plain(stream, peer, local, closed.clone(), w.clone());
                        monoio::spawn(CatchUnwind(conn));
                    }
                    // the handshake runs in the connection's own task: accepting goes on
                    ListenKind::Tls => {
                        let conn = edge::handshake_then_serve(
                            stream,
                            peer,
                            local,
                            closed.clone(),
                            w.clone(),
                        );
                        monoio::spawn(CatchUnwind(conn));
                    }
                }
            }
            Err(e) => {
                if stop() {
                    return;
                }
                // EMFILE/ENFILE and friends: back off instead of spinning.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) {
                    monoio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}
