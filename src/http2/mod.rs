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

#[cfg(test)]
#[path = "testkit.rs"]
mod testkit;

#[cfg(test)]
#[path = "interop_tests.rs"]
mod interop_tests;
