//! The data path of one worker: client connections, the request lifecycle, and forwarding.
//!
//! Data flows `conn` (bytes from the client, heads parsed) → `lifecycle` (named phases: request
//! filter → route → integration → error mapping) → `intake` (a request body buffered, within
//! limits, before any origin is chosen) → `forward` (upstream exchange through the per-worker
//! pools of `upstream`; `relay` sends the origin's response on) → back to `conn` for the next
//! request. `worker` holds the
//! per-core state all of these share through `Rc`, and `respond` holds the small helpers for
//! writing responses; every byte to and from a socket goes through [`crate::transport::Stream`]
//! (timed I/O, plain or TLS), and a connection's peer, local address and scheme are the
//! [`crate::transport::ConnFacts`] captured at accept; `linger` ends a connection whose client
//! may still be sending (lingering close).

pub mod conn;
pub mod forward;
pub mod idle;
pub mod intake;
pub mod lifecycle;
pub mod linger;
pub mod relay;
pub mod respond;
pub mod worker;
