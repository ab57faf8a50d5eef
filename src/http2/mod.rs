//! HTTP/2 (RFC 9113) for the downstream HTTP/2 session (issue 10), sans-IO: bytes in, events
//! and bytes out, no socket, no runtime, no config (the session slice drives it over a
//! transport stream and maps config onto [`Limits`]).
//!
//! - [`frame`]: the frame header, every frame type's parse and encode, [`ErrorCode`],
//!   [`PREFACE`];
//! - [`hpack`] (with the private `huffman`): header compression (RFC 7541), written here
//!   rather than taken from a crate: the available HPACK crates are unmaintained or panic on
//!   bad input (see the issue 10 research note);
//! - [`fields`]: request header validation and translation into [`RequestFields`];
//! - [`conn`]: the connection state machine ([`Connection`], [`Event`]): stream states, flow
//!   control, settings, and the abuse defences whose limits are in [`limits`].
//!
//! The driver's contract: `Connection::new(limits)` queues the server preface; then, for each
//! read, `recv(&mut input, &mut events)` consumes whole frames (a partial one stays in
//! `input`), pushes events in wire order and queues what the protocol answers itself; the
//! driver dispatches the events, writes `take_output()` (all of it, before reading on, or
//! the unread-output defence fires), and on `Err(ConnError)` writes the output (it ends with
//! the GOAWAY) and closes. Per stream: `Event::Request` starts it; the application answers
//! with `send_headers`, `send_data` within `send_capacity` (waiting for
//! `Event::WindowUpdate` when 0: it is pushed only when a send window opens, i.e. goes from
//! ≤ 0 to > 0, at most once per stream per `recv`; `id: 0`, the connection window, wakes every
//! waiting stream) and possibly `send_trailers`; it calls `release_capacity` for
//! every request body byte it consumed (or dropped) and `close_stream` when done with the
//! stream (bytes delivered and never released are credited when the stream goes, so a missed
//! release cannot stall the connection; a release after that is a no-op); `Event::Reset` / `Event::StreamError` mean the stream is gone. `go_away` starts a
//! graceful shutdown; `active_streams() == 0` after it means the connection may close.

pub mod conn;
pub mod fields;
pub mod frame;
pub mod hpack;
mod huffman;
pub mod limits;

pub use conn::{Abuse, ConnError, Connection, Event, StreamGone};
pub use fields::RequestFields;
pub use frame::{ErrorCode, PREFACE};
pub use limits::Limits;

/// A table keyed by stream id (the protocol's streams, a session's per-stream state). Its
/// hasher's keys are random per process (ahash's default `AHasher`), not per table: a table
/// then carries no 32-byte `RandomState` (an idle connection holds two), while a client,
/// choosing ids of at most `max_concurrent_streams` live entries, still cannot predict
/// collisions.
pub type StreamMap<V> =
    std::collections::HashMap<u32, V, std::hash::BuildHasherDefault<ahash::AHasher>>;

#[cfg(test)]
#[path = "testkit.rs"]
mod testkit;

#[cfg(test)]
#[path = "interop_tests.rs"]
mod interop_tests;
