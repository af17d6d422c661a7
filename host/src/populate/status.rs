//! What the warmer and the purge replay did, for `GET /_caje/health`: the last pass and its
//! results, totals since start, origins being left alone, and how far the purge log is applied.

use std::time::SystemTime;

use serde::Serialize;

use super::gates::OriginBackoff;

/// The populate part of the health report.
#[derive(Debug, Clone, Serialize)]
pub struct PopulateStatus {
    /// Background warming is on (`[populate] enabled`); purges are followed either way.
    pub enabled: bool,
    pub concurrency: usize,
    /// Warming fetches running now.
    pub in_flight: usize,
    /// The manifest's change counter the job has acted on.
    pub seen_seq: u64,
    /// The last pass that looked at any row.
    pub last_pass: Option<LastPass>,
    /// Since the node started, every pass together.
    pub fetched_total: u64,
    pub failed_total: u64,
    /// Origins whose warming fetches failed, left alone until `retry_in_ms` passes.
    pub backoff: Vec<OriginBackoff>,
    pub purges: PurgeStatus,
    /// Why the job could not read the manifest on its last look; `null` when it could.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastPass {
    /// `start` (everything, after the node started), `change` (rows changed since the last
    /// look), `retry` (rows left for later), `admin` (`POST /_caje/populate`).
    pub trigger: &'static str,
    /// RFC 3339, UTC.
    pub finished_at: String,
    #[serde(flatten)]
    pub report: PassReport,
}

/// How far this node applied the manifest's purge log to its own files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgeStatus {
    /// The change number of the last purge applied (persisted in `cache_dir`).
    pub applied_seq: u64,
    /// Purges of other nodes applied since start.
    pub applied: u64,
    /// Files removed or expired by them.
    pub files: u64,
    /// Files that could not be removed or expired, since start.
    pub failed_files: u64,
    /// Why the log cannot be followed right now (this node may serve pages purged elsewhere
    /// until it can); `null` when it is followed.
    pub error: Option<String>,
}

/// The mutable record behind [`PopulateStatus`].
#[derive(Debug, Default)]
pub(crate) struct Book {
    pub(crate) seen_seq: u64,
    pub(crate) last_pass: Option<LastPass>,
    pub(crate) fetched_total: u64,
    pub(crate) failed_total: u64,
    pub(crate) purges: PurgeStatus,
    pub(crate) error: Option<String>,
}

impl Book {
    pub(crate) fn record_pass(&mut self, trigger: &'static str, report: &PassReport) {
        self.fetched_total += report.fetched;
        self.failed_total += report.failed;
        for (result, rows) in [
            ("fetched", report.fetched),
            ("present", report.present),
            ("expired", report.expired),
            ("not_stored", report.not_stored),
            ("deferred", report.deferred),
            ("own", report.own),
            ("failed", report.failed),
        ] {
            metrics::counter!("caje_populate_rows_total", "result" => result).increment(rows);
        }
        if report.examined > 0 || report.error.is_some() {
            self.last_pass = Some(LastPass {
                trigger,
                finished_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                report: report.clone(),
            });
        }
    }
}

/// What a pass did, row by row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    /// Live (not soft-purged) rows looked at.
    pub examined: u64,
    /// Rows fetched from the origin and stored (or revalidated) on this node.
    pub fetched: u64,
    /// Rows this node already holds fresh.
    pub present: u64,
    /// Rows no longer fresh: left for a client request to refetch.
    pub expired: u64,
    /// Rows the origin answered for but whose response was not stored (no longer cacheable).
    pub not_stored: u64,
    /// Rows of an origin that is being left alone after failures: tried again later.
    pub deferred: u64,
    /// Rows this node stored itself since it started (the background job leaves those: what
    /// it no longer holds, it dropped on purpose).
    pub own: u64,
    /// Rows not fetched: `present + expired + not_stored + deferred + own`.
    pub skipped: u64,
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
