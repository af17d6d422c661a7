//! The values that go into the manifest and come back out of it.
//! Times are stored as unix milliseconds; these types speak `SystemTime`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;

use super::selector::Selector;
use crate::key::Key;
use crate::purge_mode::PurgeMode;

/// What the cache reports after it stored a response: one row per `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    /// The cache key. Unique.
    pub key: Key,
    pub method: Method,
    /// The canonical absolute URL; purge by URL and by prefix match on it.
    pub url: String,
    /// The name of the origin that served it.
    pub origin: String,
    pub status: u16,
    /// Body size in bytes.
    pub size: u64,
    pub stored_at: SystemTime,
    pub expires_at: SystemTime,
    /// Purge tags; the row's tags are replaced by these on every upsert.
    pub tags: Vec<String>,
}

impl ManifestRecord {
    /// Whether this record should replace `older` for the same key: the same rule as the
    /// upsert (the later `stored_at` wins, a tie goes to the later record).
    pub(crate) fn supersedes(&self, older: &ManifestRecord) -> bool {
        self.stored_at >= older.stored_at
    }
}

/// A row as stored: the last record written for its key (tags sorted), and what the manifest
/// adds to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    pub record: ManifestRecord,
    /// The node that stored the body (`[manifest] node`).
    pub node: String,
    /// When a soft purge marked the row stale; `None` while it is live.
    pub stale_since: Option<SystemTime>,
    /// The change sequence number of the transaction that last wrote the row.
    pub change_seq: u64,
    /// The [`Manifest::session`](super::Manifest::session) that last wrote the row (`""` when
    /// written by a caje that did not record sessions).
    pub session: String,
}

/// A row a purge deleted or marked stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgedRow {
    pub key: Key,
    pub method: Method,
    pub url: String,
    pub node: String,
}

impl PurgedRow {
    /// A row as SQLite returns it; `None` when its key or method is not one caje writes (a row
    /// written by hand: it names no file).
    pub(crate) fn from_sql(
        key: &str,
        method: &str,
        url: String,
        node: String,
    ) -> Option<PurgedRow> {
        Some(PurgedRow {
            key: Key::parse(key)?,
            method: Method::from_bytes(method.as_bytes()).ok()?,
            url,
            node,
        })
    }
}

/// One purge or clear, as logged for nodes that need to catch up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeLogEntry {
    /// The change sequence number of the purge's transaction.
    pub change_seq: u64,
    pub at: SystemTime,
    /// The node that asked for it.
    pub node: String,
    /// What was purged; `None` for a clear.
    pub selector: Option<Selector>,
    pub mode: PurgeMode,
    /// How many rows it touched.
    pub rows: u64,
    /// The [`Manifest::session`](super::Manifest::session) that logged it (`""` when logged
    /// by a caje that did not record sessions).
    pub session: String,
}

/// A page of [`Manifest::purged_pages`](super::Manifest::purged_pages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgedPage {
    pub rows: Vec<PurgedRow>,
    /// Pass as `after` for the next page; `None` when no rows follow (a full page may be
    /// followed by an empty one).
    pub next: Option<u64>,
}

/// Unix milliseconds, clamped to what an SQLite INTEGER holds (times before 1970 become 0).
pub(crate) fn to_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A count or size as an SQLite INTEGER, clamped.
pub(crate) fn to_sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn from_sql_int(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_at_millisecond_precision_and_clamp() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        assert_eq!(from_millis(to_millis(t)), t);
        assert_eq!(to_millis(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(
            to_millis(UNIX_EPOCH + Duration::from_secs(u64::MAX / 2)),
            i64::MAX
        );
        assert_eq!(from_millis(-3), UNIX_EPOCH);
        assert_eq!(to_sql_int(u64::MAX), i64::MAX);
        assert_eq!(from_sql_int(-1), 0);
    }
}
