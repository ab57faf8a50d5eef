//! Which io driver a worker runs: the configured choice and the driver it actually got.
//!
//! Owns the two small enums both sides of the runtime boundary need: [`DriverChoice`] (what
//! `server.driver` asks for; the TOML schema deserialises straight into it) and [`DriverKind`]
//! (what a worker's runtime really is, after `auto` fell back or not), and [`CatchUnwind`], which
//! keeps a task's panic from ending its worker, and [`build_runtime`] (a runtime on the chosen
//! driver, for the workers and the functions thread). Leaves out starting threads (see
//! [`crate::server`]). It sits below both `server` and `proxy`
//! so that dependencies point one way: `server` → `proxy` → `runtime`, never back.

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use monoio::time::TimeDriver;
use monoio::{FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};
use serde::{Deserialize, Serialize};

/// Which io driver workers run (`server.driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DriverChoice {
    /// io_uring when the kernel allows it, epoll otherwise.
    #[default]
    Auto,
    IoUring,
    Epoll,
}

/// The io driver a worker actually runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    IoUring,
    Epoll,
}

impl DriverKind {
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::IoUring => "io_uring",
            DriverKind::Epoll => "epoll",
        }
    }
}

/// Runs a task's future (a connection's, an HTTP/2 stream's) and stops a panic inside it from
/// unwinding into the runtime, which would end the worker and every connection on it: the task
/// ends as if it returned, and dropping it frees what it held (its socket closed, its counts
/// released by their guards). The future is stored inline (no extra box per task).
pub struct CatchUnwind<F>(pub F);

impl<F: Future<Output = ()>> Future for CatchUnwind<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: structural pinning of the only field: `CatchUnwind` never moves `F` out, has
        // no Drop impl and no `Unpin` impl that could expose it, so `F` stays pinned.
        let fut = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(p) => p,
            Err(_) => Poll::Ready(()),
        }
    }
}

/// Optional io_uring setup flags; older kernels reject them and the ring is built without.
/// COOP_TASKRUN is the default: measured here it cut proxy CPU per request by a third against a
/// plain ring (the kernel no longer interrupts the worker to run completion task work), and
/// beat DEFER_TASKRUN slightly. `TOLLGATE_RING_FLAGS=plain|coop|defer` overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RingFlags {
    /// IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (6.1+): completions are processed only when
    /// the worker enters the ring, so the kernel never interrupts it to run task work.
    DeferTaskrun,
    /// IORING_SETUP_COOP_TASKRUN | TASKRUN_FLAG (5.19+).
    CoopTaskrun,
    Plain,
}

fn ring_flags() -> RingFlags {
    match std::env::var("TOLLGATE_RING_FLAGS").as_deref() {
        Ok("plain") => RingFlags::Plain,
        Ok("defer") => RingFlags::DeferTaskrun,
        _ => RingFlags::CoopTaskrun,
    }
}

/// A runtime on either driver.
pub type Runtime = FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// Builds a monoio runtime on `choice` (`auto`: io_uring, else epoll) with the timer enabled:
/// the workers' and the functions thread's. `entries`: the io_uring submission queue size.
pub fn build_runtime(choice: DriverChoice, entries: u32) -> io::Result<(Runtime, DriverKind)> {
    let uring_with = |flags: RingFlags| {
        let mut urb = io_uring::IoUring::builder();
        match flags {
            RingFlags::DeferTaskrun => {
                urb.setup_single_issuer().setup_defer_taskrun();
            }
            RingFlags::CoopTaskrun => {
                urb.setup_coop_taskrun().setup_taskrun_flag();
            }
            RingFlags::Plain => {}
        }
        RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(entries)
            .uring_builder(urb)
            .enable_timer()
            .build()
            .map(|rt| (Runtime::from(rt), DriverKind::IoUring))
    };
    let flags = ring_flags();
    let uring = || uring_with(flags).or_else(|_| uring_with(RingFlags::Plain));
    let epoll = || {
        RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()
            .map(|rt| (Runtime::from(rt), DriverKind::Epoll))
    };
    match choice {
        DriverChoice::IoUring => uring(),
        DriverChoice::Epoll => epoll(),
        DriverChoice::Auto => uring().or_else(|_| epoll()),
    }
}
