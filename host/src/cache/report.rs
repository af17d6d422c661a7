//! Store failures as the operator sees them: each one counted in
//! `caje_cache_store_errors_total{op}`, and logged with what to do about it.
//!
//! Logged at most once per interval: a full or read-only disk fails every miss, and the log
//! must stay readable.

use std::io;
use std::time::Instant;

use super::Cache;
use crate::sync::lock;

impl Cache {
    /// Counts a failed store operation (`op`: create, write, commit, revalidate, read) and
    /// warns about it unless a warning went out recently. The response is served regardless.
    pub fn store_failed(&self, op: &'static str, url: &str, err: &io::Error) {
        metrics::counter!("caje_cache_store_errors_total", "op" => op).increment(1);
        let admitted = lock(&self.inner.warnings).admit(Instant::now());
        if let Some(skipped) = admitted {
            tracing::warn!(
                op,
                url,
                cache_dir = %self.inner.store.root().display(),
                skipped_warnings = skipped,
                "the cache store failed; responses are served from the origin without being \
                 stored until it works again (free space in cache_dir, or make it writable): {err}"
            );
        }
    }
}
