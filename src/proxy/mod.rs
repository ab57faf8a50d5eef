//! The client side of one worker's data path: the connection loop and the request lifecycle.
//!
//! Data flow: `conn` (a client connection's loop: idle wait without a buffer, open/busy
//! counts) → the HTTP/1 session ([`crate::session::h1`]: head read, persistence, pipelining) →
//! `lifecycle` (named phases, generic over [`crate::session::Session`]: request filter → route
//! → auth → throttle → [`crate::integration`] → response filter → send → log) → back to
//! `conn` for the next request; `https` holds the redirect to HTTPS and HSTS; `linger` ends a connection whose client may still be sending
//! (lingering close). The per-core state all of these share is [`crate::worker`] (re-exported
//! here as `worker` and `idle` for code written against the old paths); the exchange's state
//! is [`crate::exchange`]. Nothing below this module imports it.

pub mod conn;
mod filtered;
pub mod h2;
mod held_body;
pub mod https;
pub mod lifecycle;
pub mod linger;
pub use crate::worker;
pub use crate::worker::idle;
