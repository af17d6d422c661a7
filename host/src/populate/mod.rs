//! Keeping this node in step with the fleet through the shared manifest: warming the rows it
//! lacks through the proxy's miss path, and following the purges other nodes made.
//!
//! Warming fetches rows still fresh that this node lacks or holds stale ([`Proxy::warm`]);
//! following purges removes from this node's files what another node purged. The background
//! job leaves the rows this run of the node wrote itself: what it no longer holds of those, it
//! dropped on purpose (invalidated, found corrupt).
//!
//! [`Populator::start`] applies the purges logged while the node was down before it serves,
//! then starts the background job (`follow`): it polls the manifest's change counter every
//! `interval`, applies new purges (`purges`) and warms the rows written since
//! (`pass`). Warming fetches are bounded by `concurrency` (shared with
//! `POST /_caje/populate`), paced per origin by `origin_rate`, and an origin whose fetches fail
//! is left alone for a doubling pause (`gates`). A fetch for a page that a client request is
//! already filling joins that fill (the proxy's coalescing), so it never reaches the origin.

mod config;
mod follow;
mod gates;
mod pass;
mod purges;
mod state;
mod status;
mod warmer;

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{BadValue, PopulateConfig};
pub use gates::OriginBackoff;
pub use pass::Pass;
pub use purges::files_of;
pub use status::{LastPass, PassReport, PopulateStatus, PurgeStatus, WarmFailure};

use crate::cache::Cache;
use crate::manifest::Manifest;
use crate::proxy::Proxy;
use follow::Follower;
use purges::Replay;
use warmer::Warmer;

/// The populate side of a node: a handle for admin passes and the health report. Clones share
/// the same limits and status.
#[derive(Clone)]
pub struct Populator {
    warmer: Arc<Warmer>,
}

impl Populator {
    /// Applies the purges this node has not seen (so that it never serves a page purged while
    /// it was down), then starts the background job, which runs until `stopped` says stop.
    /// Warming fetches go through `proxy`'s miss path. A manifest that cannot be read now does
    /// not stop the node: the job keeps trying, and the health report says so.
    pub async fn start(
        config: &PopulateConfig,
        cache_dir: &Path,
        cache: Cache,
        manifest: Manifest,
        proxy: Arc<Proxy>,
        stopped: watch::Receiver<bool>,
    ) -> (Populator, JoinHandle<()>) {
        let warmer = Arc::new(Warmer::new(config, cache, manifest, proxy));
        let mut replay = Replay::new(Arc::clone(&warmer), cache_dir);
        if let Err(err) = replay.catch_up().await {
            tracing::warn!(
                "purges logged while this node was down are not applied yet (the manifest \
                 cannot be read: {err}); the populate job keeps trying"
            );
        }
        if !config.enabled {
            tracing::info!(
                "[populate] enabled = false: no background warming; purges of other nodes are \
                 still applied here"
            );
        }
        let job = tokio::spawn(Follower::new(Arc::clone(&warmer), replay).run(stopped));
        (Populator { warmer }, job)
    }

    /// Runs one pass over the manifest now, sharing the job's limits, and reports it.
    pub async fn run_pass(&self, pass: &Pass) -> PassReport {
        let outcome = self.warmer.pass(&pass.into()).await;
        self.warmer.book().record_pass("admin", &outcome.report);
        outcome.report
    }

    pub fn status(&self) -> PopulateStatus {
        self.warmer.status()
    }
}
