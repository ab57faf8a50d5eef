//! The client side of one worker's data path: connections, the request lifecycle, and the
//! per-core state they share.
//!
//! Data flow: `conn` (a client [`crate::transport::Stream`], heads parsed, keep-alive and
//! pipelining) → `lifecycle` (named phases: request filter → route → auth → throttle →
//! [`crate::integration`] → response filter → send via [`crate::session::h1`] → log) →
//! back to `conn` for the next request. `intake` reads request bodies (buffered within limits
//! before an origin is chosen, or whole under a limit); the HTTP integration talks to origins
//! through [`crate::client`] (per-worker pools, one exchange). `worker` holds the per-core state
//! all of these share through `Rc`; `respond` formats numbers on the stack; `idle` keeps idle
//! connections' deadlines; `https` holds the redirect to HTTPS and HSTS; `linger` ends a connection whose client may still be sending
//! (lingering close). A connection's peer, local address and scheme are the
//! [`crate::transport::ConnFacts`] captured at accept.

pub mod conn;
pub mod https;
pub mod idle;
pub mod intake;
pub mod lifecycle;
pub mod linger;
pub mod worker;
