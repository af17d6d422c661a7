//! Counting and reporting what the writer does: counters behind [`WriterStats`],
//! `caje_manifest_*` metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{counter, gauge, histogram};
use serde::Serialize;

use crate::sync::lock;

/// A snapshot of the writer's counters, all since the manifest was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriterStats {
    /// Records waiting to be written (queued or in the batch being written).
    pub queued: u64,
    /// Records accepted by `record`.
    pub recorded: u64,
    /// Records that replaced a waiting record for the same key.
    pub coalesced: u64,
    /// Records refused because the queue was full or the manifest closed.
    pub dropped: u64,
    /// Rows committed.
    pub written: u64,
    /// Batches committed.
    pub batches: u64,
    /// Failed write attempts (batches, purges, clears, reconnects).
    pub failures: u64,
    /// Batch attempts that repeated a failed one.
    pub retries: u64,
    /// The error of the last attempt, while the writer is failing; `None` once a write succeeds.
    pub last_error: Option<String>,
}

/// Counters shared by `record` (on the caller's task) and the writer task.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    recorded: AtomicU64,
    coalesced: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    batches: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
    in_flight: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn recorded(&self) {
        self.recorded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn coalesced(&self) {
        self.recorded.fetch_add(1, Ordering::Relaxed);
        self.coalesced.fetch_add(1, Ordering::Relaxed);
        counter!("caje_manifest_coalesced_total").increment(1);
    }

    /// Returns the number dropped so far, for the caller's log limiter.
    pub(crate) fn dropped(&self) -> u64 {
        counter!("caje_manifest_dropped_total").increment(1);
        self.dropped.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn set_in_flight(&self, rows: usize) {
        self.in_flight.store(rows as u64, Ordering::Relaxed);
    }

    pub(crate) fn queue_len(&self, rows: usize) {
        gauge!("caje_manifest_queue_rows").set(rows as f64);
    }

    pub(crate) fn batch_committed(&self, rows: usize, retry: bool) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.written.fetch_add(rows as u64, Ordering::Relaxed);
        counter!("caje_manifest_batches_total").increment(1);
        counter!("caje_manifest_rows_total").increment(rows as u64);
        histogram!("caje_manifest_batch_rows").record(rows as f64);
        self.attempted(retry);
        self.succeeded();
    }

    pub(crate) fn succeeded(&self) {
        *lock(&self.last_error) = None;
    }

    pub(crate) fn failed(&self, op: &'static str, error: String, retry: bool) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        counter!("caje_manifest_errors_total", "op" => op).increment(1);
        self.attempted(retry);
        *lock(&self.last_error) = Some(error);
    }

    fn attempted(&self, retry: bool) {
        if retry {
            self.retries.fetch_add(1, Ordering::Relaxed);
            counter!("caje_manifest_retries_total").increment(1);
        }
    }

    pub(crate) fn snapshot(&self, queued: usize) -> WriterStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WriterStats {
            queued: queued as u64 + get(&self.in_flight),
            recorded: get(&self.recorded),
            coalesced: get(&self.coalesced),
            dropped: get(&self.dropped),
            written: get(&self.written),
            batches: get(&self.batches),
            failures: get(&self.failures),
            retries: get(&self.retries),
            last_error: lock(&self.last_error).clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_adds_the_batch_in_flight_and_clears_the_error_on_success() {
        let counters = Counters::default();
        counters.recorded();
        counters.coalesced();
        counters.set_in_flight(3);
        counters.failed("batch", "disk full".into(), false);
        counters.failed("batch", "disk full".into(), true);
        let failing = counters.snapshot(2);
        assert_eq!(
            (failing.queued, failing.recorded, failing.coalesced),
            (5, 2, 1)
        );
        assert_eq!((failing.failures, failing.retries), (2, 1));
        assert_eq!(failing.last_error.as_deref(), Some("disk full"));

        counters.set_in_flight(0);
        counters.batch_committed(3, true);
        let healthy = counters.snapshot(0);
        assert_eq!(
            (healthy.written, healthy.batches, healthy.retries),
            (3, 1, 2)
        );
        assert_eq!(healthy.last_error, None);
    }
}
