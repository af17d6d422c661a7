//! Test harness for caje's integration tests: real nodes on temp dirs and loopback ports, real
//! origins with request counters, a small HTTP/1.1 + h2c client, the policy components, a real
//! LiteFS cluster, headless Chromium, and the real `caje` binary as a child process.

pub mod browser;
pub mod client;
pub mod immutable;
pub mod litefs;
pub mod node;
pub mod origin;
pub mod policies;
pub mod process;

use std::time::{Duration, Instant};

pub use client::{Reply, get, get_h2, get_with, open, send, try_get, try_send, x_cache_as};
pub use immutable::Immutable;
pub use node::TestNode;
pub use origin::{TestOrigin, respond};
pub use process::CajeProcess;

/// Polls `check` every 20 ms until it holds; panics naming `what` after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`eventually`] for checks that must await (an HTTP request, a metric scrape).
pub async fn eventually_async<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
