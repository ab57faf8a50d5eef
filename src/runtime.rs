//! Which io driver a worker runs: the configured choice and the driver it actually got.
//!
//! Owns the two small enums both sides of the runtime boundary need: [`DriverChoice`] (what
//! `server.driver` asks for; the TOML schema deserialises straight into it) and [`DriverKind`]
//! (what a worker's runtime really is, after `auto` fell back or not). Leaves out building the
//! runtimes and starting threads (see [`crate::server`]). It sits below both `server` and `proxy`
//! so that dependencies point one way: `server` → `proxy` → `runtime`, never back.

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
