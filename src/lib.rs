//! tollgate: a self-hosted, thread-per-core API gateway and edge proxy.
//!
//! Layout, in the order a request meets it: [`server`] (threads, runtimes, listeners, signals) →
//! [`proxy`] (connections, the request lifecycle, upstream pools) using [`http`] (strict HTTP/1.1
//! codec on bytes) and [`router`] (the precompiled route trie), all configured by [`config`]
//! (TOML → validated → immutable). [`error`] maps every failure to its status.

pub mod accesslog;
pub mod admin;
pub mod client;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod metrics;
pub mod proxy;
pub mod response;
pub mod router;
pub mod server;
pub mod session;
pub mod throttle;
pub mod transport;
