//! One warming pass: pages through manifest rows, leaves what this node holds fresh, and
//! fetches the rest through the proxy's miss path.
//!
//! At most `concurrency` fetches run at a time, minding each origin's pace and pause; rows of a
//! paused origin are deferred, not fetched.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::task::{JoinError, JoinSet};

use super::status::{PassReport, WarmFailure};
use super::warmer::{Done, Warmer};
use crate::manifest::{ListOrder, ListQuery};
use crate::proxy::Warmed;

/// Rows read from the manifest per query.
const PAGE_ROWS: u32 = 500;
/// Failures described in a report (the rest are only counted).
const FAILURES_SHOWN: usize = 20;

/// What an admin pass covers.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    /// Only rows whose URL starts with this.
    pub prefix: Option<String>,
    /// Stop after starting this many origin fetches.
    pub max_fetches: Option<u64>,
}

/// The rows a pass walks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub(crate) prefix: Option<String>,
    pub(crate) order: ListOrder,
    /// Only rows written after this change number.
    pub(crate) changed_after: Option<u64>,
    pub(crate) max_fetches: Option<u64>,
    /// Leave the rows this manifest session wrote: this node stored them, so a file of them
    /// that is gone was dropped here on purpose (invalidated, purged, found corrupt).
    pub(crate) skip_session: Option<String>,
}

impl Scope {
    /// Every live row another session wrote after change `seq`, oldest change first.
    pub(crate) fn changed_since(seq: u64, own_session: &str) -> Scope {
        Scope {
            order: ListOrder::Changed,
            changed_after: Some(seq),
            skip_session: Some(own_session.to_owned()),
            ..Scope::default()
        }
    }
}

impl From<&Pass> for Scope {
    fn from(pass: &Pass) -> Scope {
        Scope {
            prefix: pass.prefix.clone(),
            order: ListOrder::Url,
            changed_after: None,
            max_fetches: pass.max_fetches,
            skip_session: None,
        }
    }
}

/// A pass's report, and where the rows it left for later start.
pub(crate) struct PassOutcome {
    pub(crate) report: PassReport,
    /// Rows written after this change number include every deferred or failed one.
    pub(crate) retry_after: Option<u64>,
}

impl Warmer {
    /// Runs one pass over `scope`; returns when every fetch it started has finished.
    pub(crate) async fn pass(self: &Arc<Self>, scope: &Scope) -> PassOutcome {
        let mut tally = Tally::default();
        let mut running: JoinSet<Done> = JoinSet::new();
        let mut started = 0u64;
        let mut query = ListQuery {
            prefix: scope.prefix.clone(),
            order: scope.order,
            limit: Some(PAGE_ROWS),
            changed_after: scope.changed_after,
            ..ListQuery::default()
        };
        'pages: loop {
            let page = match self.manifest.list(&query).await {
                Ok(page) => page,
                Err(err) => {
                    tally.report.error = Some(err.to_string());
                    break;
                }
            };
            // This node's own rows are counted and left before their files are looked at.
            let (own, rows): (Vec<_>, Vec<_>) = page
                .rows
                .into_iter()
                .partition(|row| scope.skip_session.as_ref() == Some(&row.session));
            tally.report.examined += own.len() as u64;
            tally.report.own += own.len() as u64;
            let held = self.held_until(&rows).await;
            for (row, held_until) in rows.into_iter().zip(held) {
                tally.report.examined += 1;
                let now = SystemTime::now();
                if row.record.expires_at <= now {
                    tally.report.expired += 1;
                    continue;
                }
                if held_until.is_some_and(|until| until > now) {
                    tally.report.present += 1;
                    continue;
                }
                if scope.max_fetches.is_some_and(|max| started >= max) {
                    tally.report.stopped_early = true;
                    break 'pages;
                }
                let slot = Arc::clone(&self.slots)
                    .acquire_owned()
                    .await
                    .expect("the warming slots are never closed");
                while let Some(done) = running.try_join_next() {
                    tally.add(done);
                }
                match self.gates.admit(&row.record.origin).await {
                    Some(ticket) => {
                        started += 1;
                        running.spawn(Arc::clone(self).fetch(row, ticket, slot));
                    }
                    None => {
                        tally.report.deferred += 1;
                        tally.retry_from(row.change_seq);
                    }
                }
            }
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
        while let Some(done) = running.join_next().await {
            tally.add(done);
        }
        tally.finish()
    }
}

#[derive(Default)]
struct Tally {
    report: PassReport,
    retry_after: Option<u64>,
}

impl Tally {
    fn add(&mut self, done: Result<Done, JoinError>) {
        let done = match done {
            Ok(done) => done,
            Err(err) => {
                // A panicked fetch names no row: count it, and leave its row to the next
                // full pass.
                self.report.failed += 1;
                tracing::error!("a warming fetch panicked: {err}");
                return;
            }
        };
        let report = &mut self.report;
        match done.warmed {
            Warmed::Stored | Warmed::Revalidated => report.fetched += 1,
            Warmed::Present => report.present += 1,
            Warmed::NotStored(_) => report.not_stored += 1,
            Warmed::Failed(reason) => {
                report.failed += 1;
                if report.failures.len() < FAILURES_SHOWN {
                    report.failures.push(WarmFailure {
                        url: done.url,
                        reason,
                    });
                }
                self.retry_from(done.change_seq);
            }
        }
    }

    fn retry_from(&mut self, change_seq: u64) {
        let after = change_seq.saturating_sub(1);
        self.retry_after = Some(self.retry_after.map_or(after, |known| known.min(after)));
    }

    fn finish(mut self) -> PassOutcome {
        let report = &mut self.report;
        report.skipped =
            report.present + report.expired + report.not_stored + report.deferred + report.own;
        PassOutcome {
            report: self.report,
            retry_after: self.retry_after,
        }
    }
}
