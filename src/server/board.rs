//! The reload board: where a new config generation crosses from the control plane to the
//! workers.
//!
//! Owns: [`Published`] (a generation as handed over: config, shared state, sockets for added
//! listen addresses) and [`ReloadBoard`] (the latest one, its number, and each worker's
//! acknowledgement). Leaves out: building a generation (see [`super::reload`]) and taking it
//! (see [`super::worker`]). Data flows one way: the controller sets `pending`, then stores the
//! number with `Release`; a worker that loads the number with `Acquire` sees `pending`, swaps,
//! and stores its `applied` slot with `Release`, which the controller reads with `Acquire`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::accesslog::{LineQueue, LogSink};
use crate::config::Config;
use crate::health::HealthBoard;
use crate::throttle::Throttle;

use super::Endpoint;

/// A new configuration as handed to the workers. It stays on the board until a newer one
/// replaces it, so a worker that fell behind still finds it.
pub struct Published {
    pub number: u64,
    pub config: Arc<Config>,
    pub throttle: Arc<Throttle>,
    pub health: Arc<HealthBoard>,
    /// The access-log writer of this config (sink and queue), when it has an access log.
    pub log: Option<(Arc<LogSink>, LineQueue)>,
    /// By worker: sockets for listen addresses of this config that the worker may not have
    /// yet, keyed by configured address and kind (plain or TLS). A worker takes its own; those
    /// a lagging worker has not taken move on to the next published config while their
    /// address stays configured.
    pub added: Vec<Mutex<Vec<(Endpoint, std::net::TcpListener)>>>,
}

/// The rendezvous between the controller and the workers.
pub struct ReloadBoard {
    /// The latest published generation (`Release` by the controller after `pending` is set).
    pub(super) generation: AtomicU64,
    pub(super) pending: Mutex<Option<Arc<Published>>>,
    /// By worker: the generation it serves (`Release` by the worker, `Acquire` by the
    /// controller waiting for it).
    pub(super) applied: Vec<AtomicU64>,
}

impl ReloadBoard {
    pub fn new(workers: usize) -> Self {
        ReloadBoard {
            generation: AtomicU64::new(0),
            pending: Mutex::new(None),
            applied: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The published generation newer than `have`, if any (a worker's housekeeping check: one
    /// `Acquire` load when nothing is pending).
    pub fn newer_than(&self, have: u64) -> Option<Arc<Published>> {
        if self.generation.load(Ordering::Acquire) <= have {
            return None;
        }
        self.pending.lock().ok()?.clone()
    }

    /// Worker `w` serves generation `number` now.
    pub fn applied(&self, w: usize, number: u64) {
        if let Some(a) = self.applied.get(w) {
            a.store(number, Ordering::Release);
        }
    }
}
