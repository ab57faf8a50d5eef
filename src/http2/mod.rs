//! HTTP/2 (RFC 9113) building blocks for the downstream HTTP/2 session (issue 10). So far only
//! [`hpack`], header compression (RFC 7541), written here rather than taken from a crate: the
//! available HPACK crates are unmaintained or panic on bad input (see the issue 10 research note).

pub mod hpack;
mod huffman;
