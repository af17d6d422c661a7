//! The background job: every `interval` it reads the manifest's change counter and, when it
//! moved, applies the purges logged since, then warms the rows written since.
//!
//! Reading the counter is one small query, cheap enough to run often. Rows it had to leave
//! (origin paused, fetch failed) are tried again once an origin's pause is over. While a pass
//! runs (the first one after start may take long), purges are still applied every `interval`.
//!
//! Why polling: on a LiteFS replica, changes replicated from the primary reach the database
//! file without any inotify event (checked on a real cluster: a watch on the replica's mount
//! sees nothing, while the primary's own writes do show), so a file watch cannot tell a replica
//! that something changed; the counter works everywhere.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::pass::{PassOutcome, Scope};
use super::purges::Replay;
use super::warmer::Warmer;

pub(crate) struct Follower {
    warmer: Arc<Warmer>,
    replay: Replay,
    ticks: Interval,
    /// Every row written up to this change number has been looked at.
    seen: u64,
    /// Rows written after this change number include every one left for later.
    retry_after: Option<u64>,
}

impl Follower {
    /// Must run inside the runtime (it starts the job's clock).
    pub(crate) fn new(warmer: Arc<Warmer>, replay: Replay) -> Follower {
        let mut ticks = tokio::time::interval(warmer.config.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Follower {
            warmer,
            replay,
            ticks,
            seen: 0,
            retry_after: None,
        }
    }

    /// Runs until `stopped` says stop (or its sender is gone). A pass in progress is dropped
    /// then; fills it started finish on their own.
    pub(crate) async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                biased;
                _ = stopped.wait_for(|stop| *stop) => return,
                () = async {
                    self.ticks.tick().await;
                    self.step().await;
                } => {}
            }
        }
    }

    async fn step(&mut self) {
        let seq = match self.warmer.manifest.change_seq().await {
            Ok(seq) => seq,
            Err(err) => return self.note_error(Some(err.to_string())),
        };
        if seq < self.seen {
            // The counter never goes back in one file: this is another file.
            if let Err(err) = self.replay.check_instance().await {
                return self.note_error(Some(err.to_string()));
            }
            self.seen = 0;
            self.retry_after = None;
        }
        if seq > self.seen {
            // Purges first: a page purged and stored again since must be fetched afresh.
            if let Err(err) = self.replay.catch_up().await {
                return self.note_error(Some(err.to_string()));
            }
            if self.warmer.config.enabled {
                let trigger = if self.seen == 0 { "start" } else { "change" };
                let outcome = self.pass(self.changed_since(self.seen)).await;
                if let Some(err) = self.book(trigger, outcome) {
                    // Look at the same changes again next time.
                    return self.note_error(Some(err));
                }
            }
            self.seen = seq;
            self.warmer.book().seen_seq = seq;
        }
        if let Some(after) = self.retry_after
            && self.warmer.gates.retry_due(Instant::now())
        {
            self.retry_after = None;
            let outcome = self.pass(self.changed_since(after)).await;
            if let Some(err) = self.book("retry", outcome) {
                self.retry_after = Some(after);
                return self.note_error(Some(err));
            }
        }
        self.note_error(None);
    }

    /// Runs a pass, applying new purges every tick while it runs (their errors are kept for
    /// the health report, and the next step retries).
    async fn pass(&mut self, scope: Scope) -> PassOutcome {
        let warmer = Arc::clone(&self.warmer);
        let pass = warmer.pass(&scope);
        tokio::pin!(pass);
        loop {
            tokio::select! {
                outcome = &mut pass => return outcome,
                _ = self.ticks.tick() => {
                    let _ = self.replay.catch_up().await;
                }
            }
        }
    }

    fn changed_since(&self, seq: u64) -> Scope {
        Scope::changed_since(seq, self.warmer.manifest.session())
    }

    /// Records a pass and keeps what it left for later; returns the manifest error that cut
    /// it short, if one did.
    fn book(&mut self, trigger: &'static str, outcome: PassOutcome) -> Option<String> {
        if let Some(after) = outcome.retry_after {
            self.retry_after = Some(self.retry_after.map_or(after, |known| known.min(after)));
        }
        self.warmer.book().record_pass(trigger, &outcome.report);
        outcome.report.error
    }

    /// Keeps the job's last manifest error for the health report, logging each new one once.
    fn note_error(&self, error: Option<String>) {
        let mut book = self.warmer.book();
        if let Some(error) = &error
            && book.error.as_ref() != Some(error)
        {
            tracing::warn!("populate cannot read the manifest, trying again: {error}");
        }
        book.error = error;
    }
}
