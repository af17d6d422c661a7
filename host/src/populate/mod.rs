//! Warming this node from the shared manifest: rows another node stored, still fresh, whose
//! files this node lacks, fetched through the proxy's own miss path ([`Proxy::warm`]).
//! [`run_pass`] is one sequential pass; a background job can call it on a schedule.

use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::cache::Key;
use crate::manifest::{ListOrder, ListQuery, Manifest};
use crate::proxy::{Proxy, Warmed};

/// Rows read from the manifest per query.
const PAGE_ROWS: u32 = 500;
/// Failures described in a report (the rest are only counted).
const FAILURES_SHOWN: usize = 20;

/// What one pass covers.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    /// Only rows whose URL starts with this.
    pub prefix: Option<String>,
    /// Stop after this many origin fetches.
    pub max_fetches: Option<u64>,
}

/// What a pass did, row by row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    /// Live (not soft-purged) rows looked at.
    pub examined: u64,
    /// Rows fetched from the origin and stored (or revalidated) on this node.
    pub fetched: u64,
    /// Rows whose file this node already holds.
    pub present: u64,
    /// Rows no longer fresh: left for a client request to refetch.
    pub expired: u64,
    /// Rows the origin answered for but whose response was not stored (no longer cacheable).
    pub not_stored: u64,
    pub failed: u64,
    /// The first failures, with their URL and reason.
    pub failures: Vec<WarmFailure>,
    /// The pass stopped at `max_fetches`.
    pub stopped_early: bool,
    /// The manifest read that ended the pass early, if one failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WarmFailure {
    pub url: String,
    pub reason: String,
}

/// Walks the manifest in URL order and warms every fresh row this node lacks, one at a time.
pub async fn run_pass(proxy: &Arc<Proxy>, manifest: &Manifest, pass: &Pass) -> PassReport {
    let mut report = PassReport::default();
    let mut query = ListQuery {
        prefix: pass.prefix.clone(),
        order: ListOrder::Url,
        limit: Some(PAGE_ROWS),
        ..ListQuery::default()
    };
    loop {
        let page = match manifest.list(&query).await {
            Ok(page) => page,
            Err(err) => {
                report.error = Some(err.to_string());
                return report;
            }
        };
        for row in &page.rows {
            if pass
                .max_fetches
                .is_some_and(|max| report.fetched + report.failed >= max)
            {
                report.stopped_early = true;
                return report;
            }
            report.examined += 1;
            if row.record.expires_at <= SystemTime::now() {
                report.expired += 1;
            } else if Key::from_file_name(&row.record.key)
                .is_some_and(|k| proxy.cache().has_key(&k))
            {
                report.present += 1;
            } else {
                match proxy.warm(row).await {
                    Warmed::Stored | Warmed::Revalidated => report.fetched += 1,
                    Warmed::Present => report.present += 1,
                    Warmed::NotStored(_) => report.not_stored += 1,
                    Warmed::Failed(reason) => {
                        report.failed += 1;
                        if report.failures.len() < FAILURES_SHOWN {
                            report.failures.push(WarmFailure {
                                url: row.record.url.clone(),
                                reason,
                            });
                        }
                    }
                }
            }
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return report,
        }
    }
}
