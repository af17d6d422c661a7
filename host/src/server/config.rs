//! The `[server]` config section: what a client connection may hold (head size, header count,
//! time, connections open at once) and how long shutdown waits. Every key has a default.

use std::time::Duration;

use serde::Deserialize;

use crate::units::{self, ByteSize};

/// `[server]`: the client-facing listener's limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Largest request head (request line + headers) accepted; larger gets 431/400.
    pub max_header_size: ByteSize,
    /// Most request headers accepted.
    pub max_headers: usize,
    /// A client must send its whole request head within this time (slowloris defence).
    #[serde(deserialize_with = "units::duration")]
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing them.
    #[serde(deserialize_with = "units::duration")]
    pub shutdown_grace: Duration,
    /// Most client connections open at once (each costs a file descriptor); connections beyond
    /// it get a 503 and are closed at once.
    pub max_connections: usize,
    /// A connection with no request in progress and no bytes moving either way for this long
    /// is closed (idle keep-alive, h2 and silent connections alike).
    #[serde(deserialize_with = "units::duration")]
    pub idle_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_header_size: ByteSize(64 << 10),
            max_headers: 100,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(60),
        }
    }
}
