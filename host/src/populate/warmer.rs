//! What every pass shares: the cache and the manifest, the proxy whose miss path fetches, the
//! slots that bound fetches in flight, the origins' gates, and the status book.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::PopulateConfig;
use super::gates::{Gates, Ticket};
use super::status::{Book, PopulateStatus};
use crate::cache::Cache;
use crate::key::Key;
use crate::manifest::{Manifest, ManifestRow};
use crate::proxy::{Proxy, Warmed};
use crate::sync::lock;

pub(crate) struct Warmer {
    pub(crate) cache: Cache,
    pub(crate) manifest: Manifest,
    /// Warming fetches take its miss path, as a client's GET would.
    proxy: Arc<Proxy>,
    pub(crate) config: PopulateConfig,
    /// One permit per warming fetch: `concurrency` in all, whoever runs the pass.
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) gates: Gates,
    book: Mutex<Book>,
}

/// A finished warming fetch.
pub(crate) struct Done {
    pub(crate) url: String,
    pub(crate) change_seq: u64,
    pub(crate) warmed: Warmed,
}

impl Warmer {
    pub(crate) fn new(
        config: &PopulateConfig,
        cache: Cache,
        manifest: Manifest,
        proxy: Arc<Proxy>,
    ) -> Warmer {
        Warmer {
            cache,
            manifest,
            proxy,
            config: config.clone(),
            slots: Arc::new(Semaphore::new(config.concurrency)),
            gates: Gates::new(config),
            book: Mutex::default(),
        }
    }

    pub(crate) fn book(&self) -> MutexGuard<'_, Book> {
        lock(&self.book)
    }

    pub(crate) fn status(&self) -> PopulateStatus {
        let book = self.book();
        PopulateStatus {
            enabled: self.config.enabled,
            concurrency: self.config.concurrency,
            in_flight: self.config.concurrency - self.slots.available_permits(),
            seen_seq: book.seen_seq,
            last_pass: book.last_pass.clone(),
            fetched_total: book.fetched_total,
            failed_total: book.failed_total,
            backoff: self.gates.failing(tokio::time::Instant::now()),
            purges: book.purges.clone(),
            error: book.error.clone(),
        }
    }

    /// Until when this node's copy of each row is fresh (`None`: it holds none), read from the
    /// files' heads off the async threads.
    pub(crate) async fn held_until(&self, rows: &[ManifestRow]) -> Vec<Option<SystemTime>> {
        let keys: Vec<Key> = rows.iter().map(|row| row.record.key.clone()).collect();
        let count = keys.len();
        let cache = self.cache.clone();
        crate::sync::blocking(move || {
            Ok::<_, std::io::Error>(
                keys.iter()
                    // A head that cannot be read is as good as none: the miss path decides.
                    .map(|key| cache.fresh_until(key).ok().flatten())
                    .collect(),
            )
        })
        .await
        .unwrap_or_else(|_| vec![None; count])
    }

    /// Warms one row through the proxy's miss path, then books the outcome with the origin's
    /// gate before the slot is given back, so that the next admission sees a failure.
    pub(crate) async fn fetch(
        self: Arc<Self>,
        row: ManifestRow,
        ticket: Ticket,
        slot: OwnedSemaphorePermit,
    ) -> Done {
        let warmed = self.proxy.warm(&row).await;
        let failure = match &warmed {
            Warmed::Failed(reason) => Some(reason.as_str()),
            _ => None,
        };
        self.gates.settle(&row.record.origin, ticket, failure);
        drop(slot);
        Done {
            url: row.record.url,
            change_seq: row.change_seq,
            warmed,
        }
    }
}
