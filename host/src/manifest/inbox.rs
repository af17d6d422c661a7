//! The hand-off from `record` (any task, never waits on I/O) to the writer task:
//! the queue under a short lock, a wake-up, and the counters both sides update.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;
use tracing::warn;

use super::ManifestRecord;
use super::queue::{Pushed, Queue};
use super::stats::Counters;
use crate::warn_limit::WarnLimiter;

pub(crate) struct Inbox {
    state: Mutex<InboxState>,
    /// Woken when the queue becomes non-empty or holds a full batch.
    pub(crate) wake: Notify,
    pub(crate) counters: Counters,
    batch_max_rows: usize,
}

pub(crate) struct InboxState {
    pub(crate) queue: Queue,
    /// Set when the manifest closes; later records are dropped.
    pub(crate) closed: bool,
    dropped_warning: WarnLimiter,
}

impl Inbox {
    pub(crate) fn new(queue_max_rows: usize, batch_max_rows: usize) -> Inbox {
        Inbox {
            state: Mutex::new(InboxState {
                queue: Queue::new(queue_max_rows),
                closed: false,
                dropped_warning: WarnLimiter::default(),
            }),
            wake: Notify::new(),
            counters: Counters::default(),
            batch_max_rows,
        }
    }

    /// Queues a record for the writer. Never blocks on I/O and never fails: a record that
    /// cannot be kept is counted and (rate-limited) logged.
    pub(crate) fn record(&self, record: ManifestRecord) {
        let mut state = self.lock();
        if state.closed {
            return self.drop_record(&mut state, "the manifest is closed");
        }
        match state.queue.push(record, Instant::now()) {
            Pushed::Queued { len } => {
                self.counters.recorded();
                if len == 1 || len == self.batch_max_rows {
                    self.wake.notify_one();
                }
            }
            Pushed::Coalesced => self.counters.coalesced(),
            Pushed::Full => self.drop_record(&mut state, "the write queue is full"),
        }
    }

    /// The lock is only held for queue operations, never across an await; a panic while it
    /// was held cannot leave the queue half-updated (see [`crate::sync::lock`]).
    pub(crate) fn lock(&self) -> MutexGuard<'_, InboxState> {
        crate::sync::lock(&self.state)
    }

    fn drop_record(&self, state: &mut InboxState, why: &str) {
        let total = self.counters.dropped();
        if let Some(skipped) = state.dropped_warning.admit(Instant::now()) {
            warn!(
                dropped_total = total,
                skipped_warnings = skipped,
                "manifest record dropped: {why}; the page stays cached but is missing from the \
                 shared manifest (check the manifest's write errors, or raise \
                 manifest.queue_max_rows)"
            );
        }
    }
}
