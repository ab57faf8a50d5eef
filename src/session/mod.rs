//! Sessions: a client connection's protocol, between the transport and the lifecycle.
//!
//! Owns: turning a [`crate::response::Response`] into a protocol's bytes ([`h1`] for HTTP/1.x:
//! status line, fields, the framing chosen for this client, the connection header). Leaves
//! out: the bytes' transport ([`crate::transport`]) and what a request does (the lifecycle in
//! [`crate::proxy`]).
//!
//! Data flow: a producer builds a `Response` → the lifecycle's response filter adds the common
//! fields → `h1` serialises it into the connection's output buffer → the connection's
//! [`crate::transport::Stream`] writes it. Reading requests (heads, persistence, bodies,
//! 100-continue, pipelining) is still done by [`crate::proxy::conn`], [`crate::proxy::intake`]
//! and [`crate::integration::http`]; it moves here behind a session interface that an HTTP/2
//! session implements too.

pub mod h1;
