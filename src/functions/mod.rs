//! Local functions: tollgate as a Lambda service on the edge host.
//!
//! SKELETON (issue 11 contract): the handle's signatures are final; the runtime slice fills in
//! the service (scheduler, Runtime API, internal Invoke API) and the sandbox slice
//! [`sandbox`] (processes).

pub mod sandbox;
pub mod scheduler;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;

/// The Invoke API path prefix (`POST /2015-03-31/functions/NAME/invocations`).
pub const INVOKE_PREFIX: &str = "/2015-03-31/functions/";

/// The Invoke API path of function `name` (percent-encoded where the name needs it).
pub fn invoke_path(name: &str) -> String {
    format!("{INVOKE_PREFIX}{name}/invocations")
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

/// The running functions service.
pub struct FunctionsHandle {
    addr: SocketAddr,
    stats: StatsList,
}

impl FunctionsHandle {
    /// Binds the internal Invoke API on loopback and starts the functions thread for
    /// `config`'s local functions (on `config.server.driver`).
    pub fn start(config: &Arc<Config>) -> io::Result<FunctionsHandle> {
        let _ = config;
        Err(io::Error::other("not built yet"))
    }

    /// Where the internal Invoke API listens (loopback): workers' pools and the admin relay.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The functions of a reloaded config: added ones start on first use, removed ones stop
    /// after their invocations in flight, changed ones replace their processes after theirs.
    pub fn apply(&self, config: Arc<Config>) {
        let _ = config;
    }

    /// The live numbers of every local function (see [`StatsList`]).
    pub fn stats(&self) -> StatsList {
        self.stats.clone()
    }

    /// Stops taking invocations, lets those in flight finish (up to `grace`), then stops every
    /// process (SIGTERM, then SIGKILL) and joins the thread.
    pub fn stop(self, grace: Duration) {
        let _ = grace;
    }
}
