//! The `[manifest]` config section: SQLite settings, batching and retry.
//! Every key has a documented default, so an empty (or missing) section is valid.

use std::time::Duration;

use serde::Deserialize;

use super::ManifestError;

/// The `[manifest]` table. The database file itself is the top-level `database` key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManifestConfig {
    /// Record cached pages at all. Default `true`. Read by the code that wires caje together:
    /// with `false` it opens no [`Manifest`](super::Manifest).
    pub enabled: bool,
    /// The name written to each row's `node` column. Default: the `FLY_REGION` environment
    /// variable when set, else the host name.
    pub node: Option<String>,
    /// `"delete"` (rollback journal, default) or `"wal"`. The module docs say why.
    pub journal_mode: JournalMode,
    /// How long a statement waits for another connection's (or LiteFS's) lock. Default `"5s"`.
    #[serde(deserialize_with = "crate::units::duration")]
    pub busy_timeout: Duration,
    /// The most records one write transaction carries. Default `500`, at most `10000`: on a
    /// LiteFS replica a batch holds HALT while it runs.
    pub batch_max_rows: usize,
    /// How long the first record of a batch waits for company before it is written.
    /// Default `"200ms"`.
    #[serde(deserialize_with = "crate::units::duration")]
    pub batch_max_delay: Duration,
    /// The most distinct keys waiting to be written; beyond it new keys are dropped and
    /// counted (a record for a key that is already waiting merges with it). Default `100000`.
    pub queue_max_rows: usize,
    /// First wait after a failed write; doubled after every further failure. Default `"100ms"`.
    #[serde(deserialize_with = "crate::units::duration")]
    pub retry_min: Duration,
    /// The longest wait between two write attempts. Default `"30s"`.
    #[serde(deserialize_with = "crate::units::duration")]
    pub retry_max: Duration,
    /// Read connections for list/get/purge look-ups. Default `4`.
    pub read_connections: u32,
    /// How long a node that does not write the schema itself (a LiteFS replica: the primary
    /// migrates) waits at start for it to arrive. Default `"60s"`.
    #[serde(deserialize_with = "crate::units::duration")]
    pub schema_wait: Duration,
}

/// The largest `batch_max_rows` accepted. A LiteFS replica holds HALT for one batch, and LiteFS
/// drops a HALT held for 30 s; 10 000 upserts take well under a second (see the `litefs_halt`
/// benchmark), so even the largest batch stays far inside that.
const BATCH_MAX_ROWS_LIMIT: usize = 10_000;

/// How SQLite journals a write transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalMode {
    /// Rollback journal (`PRAGMA journal_mode = DELETE`, `synchronous = FULL`).
    Delete,
    /// Write-ahead log (`PRAGMA journal_mode = WAL`, `synchronous = NORMAL`).
    Wal,
}

impl Default for ManifestConfig {
    fn default() -> Self {
        ManifestConfig {
            enabled: true,
            node: None,
            journal_mode: JournalMode::Delete,
            busy_timeout: Duration::from_secs(5),
            batch_max_rows: 500,
            batch_max_delay: Duration::from_millis(200),
            queue_max_rows: 100_000,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
            read_connections: 4,
            schema_wait: Duration::from_secs(60),
        }
    }
}

impl ManifestConfig {
    /// Checks the values serde cannot; the error names the key and what to change.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.batch_max_rows > BATCH_MAX_ROWS_LIMIT {
            return Err(ManifestError::Config(format!(
                "manifest.batch_max_rows must be at most {BATCH_MAX_ROWS_LIMIT} (a batch is one \
                 transaction, and on a LiteFS replica it holds the cluster-wide HALT lock while \
                 it runs)"
            )));
        }
        let problem = if self.batch_max_rows == 0 {
            "manifest.batch_max_rows must be at least 1"
        } else if self.schema_wait.is_zero() {
            "manifest.schema_wait must be more than 0s"
        } else if self.queue_max_rows == 0 {
            "manifest.queue_max_rows must be at least 1"
        } else if self.read_connections == 0 {
            "manifest.read_connections must be at least 1"
        } else if self.retry_min.is_zero() {
            "manifest.retry_min must be more than 0s (or failed writes are retried in a busy loop)"
        } else if self.retry_min > self.retry_max {
            "manifest.retry_min must not be longer than manifest.retry_max"
        } else if self.node.as_deref().is_some_and(|n| n.trim().is_empty()) {
            "manifest.node must not be empty: remove the key to use FLY_REGION or the host name"
        } else {
            return Ok(());
        };
        Err(ManifestError::Config(problem.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_documented_defaults() {
        let config: ManifestConfig = toml::from_str("").unwrap();
        assert_eq!(config, ManifestConfig::default());
        assert_eq!(config.journal_mode, JournalMode::Delete);
        assert_eq!(config.batch_max_delay, Duration::from_millis(200));
        assert_eq!(config.schema_wait, Duration::from_secs(60));
        config.validate().unwrap();
    }

    #[test]
    fn durations_and_modes_parse() {
        let config: ManifestConfig = toml::from_str(
            "journal_mode = \"wal\"\nbusy_timeout = \"250ms\"\nretry_max = \"1m\"\nnode = \"ams\"",
        )
        .unwrap();
        assert_eq!(config.journal_mode, JournalMode::Wal);
        assert_eq!(config.busy_timeout, Duration::from_millis(250));
        assert_eq!(config.retry_max, Duration::from_secs(60));
        assert_eq!(config.node.as_deref(), Some("ams"));
    }

    #[test]
    fn bad_input_is_refused_with_the_key_named() {
        let unknown = toml::from_str::<ManifestConfig>("batch_rows = 3").unwrap_err();
        assert!(unknown.to_string().contains("batch_rows"), "{unknown}");

        let duration = toml::from_str::<ManifestConfig>("retry_min = \"soon\"").unwrap_err();
        assert!(duration.to_string().contains("\"soon\""), "{duration}");

        let mode = toml::from_str::<ManifestConfig>("journal_mode = \"memory\"").unwrap_err();
        assert!(mode.to_string().contains("memory"), "{mode}");

        let refusal = |config: ManifestConfig| config.validate().unwrap_err().to_string();
        for rows in [0, BATCH_MAX_ROWS_LIMIT + 1] {
            let message = refusal(ManifestConfig {
                batch_max_rows: rows,
                ..ManifestConfig::default()
            });
            assert!(message.contains("batch_max_rows"), "{message}");
        }
        let message = refusal(ManifestConfig {
            retry_min: Duration::from_secs(10),
            retry_max: Duration::from_secs(1),
            ..ManifestConfig::default()
        });
        assert!(message.contains("retry_max"), "{message}");
        let message = refusal(ManifestConfig {
            schema_wait: Duration::ZERO,
            ..ManifestConfig::default()
        });
        assert!(message.contains("schema_wait"), "{message}");
    }
}
