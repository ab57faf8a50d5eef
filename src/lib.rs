//! tollgate: a self-hosted, thread-per-core API gateway and edge proxy.
//!
//! Layout, in the order a request meets it: [`server`] (threads, runtimes, listeners, signals)
//! accepts a connection into a [`transport::Stream`] with its [`facts::ConnFacts`] →
//! [`proxy`] (the connection loop, and the request lifecycle's named phases, generic over a
//! [`session::Session`]) → [`session`] (the client's protocol: [`session::h1`] reads heads and
//! bodies with [`http`], the strict HTTP/1.1 codec, and owns every HTTP/1 decision; [`http2`]
//! holds the HTTP/2 building blocks, so far [`http2::hpack`]) →
//! [`router`] (the precompiled route trie) → [`integration`] (mock, HTTP; an origin through
//! [`client`], the per-worker pools and one HTTP/1 exchange, reusable without the proxy) → a
//! [`response::Response`], filtered by the lifecycle and serialised by the session → written
//! through the same `Stream`. Per-core state is [`worker`], one exchange's state [`exchange`].
//! All of it is configured by [`config`] (TOML → validated → immutable); [`openapi`] converts
//! API Gateway's OpenAPI definitions to and from the config's API files; [`error`] maps every
//! failure to its status. [`tls`] turns `[tls]` and upstream `tls` settings into rustls configs.
//! [`runtime`] (the driver choice), [`fmt`] (time and number formatting) and [`facts`] (a
//! connection's facts, which every layer reads without naming the transport) sit below
//! everything, so dependencies point one way: `server` → `proxy` → `integration` → `session` →
//! `client` → the rest, never back.

pub mod accesslog;
pub mod admin;
pub mod auth;
pub mod aws;
pub mod client;
pub mod compress;
pub mod config;
pub mod error;
pub mod exchange;
pub mod facts;
pub mod fmt;
pub mod functions;
pub mod gateway_response;
pub mod health;
pub mod http;
pub mod http2;
pub mod integration;
pub mod lambda;
pub mod mapping;
pub mod metrics;
pub mod openapi;
pub mod policy;
pub mod proxy;
pub mod response;
pub mod router;
pub mod runtime;
pub mod server;
pub mod session;
#[cfg(test)]
mod testkit;
pub mod throttle;
pub mod tls;
pub mod transform;
pub mod transport;
pub mod validate;
pub mod worker;
