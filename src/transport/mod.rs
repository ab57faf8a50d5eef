//! Client and origin streams: plain TCP or TLS.

pub mod tls;
