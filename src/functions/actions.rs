//! The scheduler's vocabulary: what it is told and what it asks for. Sans-IO.
//!
//! Owns the types [`super::scheduler::Scheduler`] speaks in (the numbers that bound a
//! function, [`Limits`]; an arrival's [`Admission`]; why an invocation failed without a
//! function answer, [`Failure`]; what the caller must do, [`Action`]) and the named limits of
//! its deadlines. Leaves out the state machine itself (see [`super::scheduler`]) and carrying
//! out the actions (see [`super::service`]).

use std::time::{Duration, Instant};

use crate::config::{FunctionConfig, LocalFunction};

/// How long a new process may take to call `invocation/next` for the first time before it is
/// killed: Lambda's init phase limit (one constant with the waits that depend on it).
pub const INIT_TIMEOUT: Duration = crate::config::functions::INIT_TIMEOUT;
/// How long a process told to stop (SIGTERM) has before it is killed (SIGKILL).
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// An invocation, as the service numbers them.
pub type InvId = u64;
/// A process, as the service numbers them.
pub type SandboxId = u64;

/// The numbers that bound a function; a reload changes them in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub concurrency: u32,
    pub queue: u32,
    pub timeout: Duration,
    pub idle: Duration,
    pub init_timeout: Duration,
}

impl Limits {
    pub fn of(f: &FunctionConfig, local: &LocalFunction) -> Limits {
        Limits {
            concurrency: local.concurrency.max(1),
            queue: local.queue,
            timeout: f.timeout,
            idle: local.idle,
            init_timeout: INIT_TIMEOUT,
        }
    }
}

/// What became of an arriving invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Handed to an idle process.
    Dispatched,
    /// Waiting for a process (a starting one, or one to become free).
    Queued,
    /// Concurrency and queue are full: 429.
    Throttled,
}

/// Why an invocation failed without a function answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It ran `timeout` in a process (`waited: false`), or waited that long for a free
    /// process (`waited: true`).
    TimedOut { timeout: Duration, waited: bool },
    /// Its process exited while running it.
    ExitError,
    /// The processes meant for it failed to start (twice): what went wrong.
    InitError(String),
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a process of generation `generation`; report with [`Scheduler::spawned`].
    /// `cold`: an invocation is waiting for it.
    Spawn {
        sandbox: SandboxId,
        generation: u64,
        cold: bool,
    },
    /// Hand `inv` to the process (its `next` returns it); its deadline is `deadline`.
    Dispatch {
        inv: InvId,
        sandbox: SandboxId,
        deadline: Instant,
    },
    /// Answer `inv` with this failure.
    Fail { inv: InvId, failure: Failure },
    /// SIGKILL the process (group).
    Kill { sandbox: SandboxId },
    /// SIGTERM the process (group).
    Terminate { sandbox: SandboxId },
    /// The process finished starting (its first `next`) after `took`.
    Ready {
        sandbox: SandboxId,
        cold: bool,
        took: Duration,
    },
}
