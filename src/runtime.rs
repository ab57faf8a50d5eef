//! Which io driver a worker runs: the configured choice and the driver it actually got.
//!
//! Owns the two small enums both sides of the runtime boundary need: [`DriverChoice`] (what
//! `server.driver` asks for; the TOML schema deserialises straight into it) and [`DriverKind`]
//! (what a worker's runtime really is, after `auto` fell back or not), and [`CatchUnwind`], which
//! keeps a task's panic from ending its worker. Leaves out building the
//! runtimes and starting threads (see [`crate::server`]). It sits below both `server` and `proxy`
//! so that dependencies point one way: `server` → `proxy` → `runtime`, never back.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

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
