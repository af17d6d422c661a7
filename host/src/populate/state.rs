//! How far this node applied the purge log, kept in a small file in `cache_dir` so that a
//! restart picks up where the node left off.
//!
//! The files it describes live there too, so a new or wiped cache directory starts without it.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// At the top of `cache_dir`, beside the shard directories (the store ignores plain files there).
const FILE_NAME: &str = "purges-applied.json";

/// The purge log of manifest `instance` is applied to this node's files up to `applied`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Position {
    pub(crate) instance: String,
    pub(crate) applied: u64,
}

pub(crate) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub(crate) fn in_dir(cache_dir: &Path) -> StateFile {
        StateFile {
            path: cache_dir.join(FILE_NAME),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The saved position; `Ok(None)` when there is no file, an error naming the file when it
    /// cannot be read or parsed.
    pub(crate) async fn load(&self) -> Result<Option<Position>, String> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("cannot read {}: {err}", self.path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| format!("{} is not valid: {err}", self.path.display()))
    }

    /// Replaces the file atomically (written beside it, synced, renamed over it).
    pub(crate) async fn save(&self, position: &Position) -> io::Result<()> {
        let temp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec(position).map_err(io::Error::other)?;
        let mut file = tokio::fs::File::create(&temp).await?;
        file.write_all(&text).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&temp, &self.path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn positions_round_trip_and_a_damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateFile::in_dir(dir.path());
        assert_eq!(state.load().await, Ok(None));
        let position = Position {
            instance: "abc".into(),
            applied: 42,
        };
        state.save(&position).await.unwrap();
        assert_eq!(state.load().await, Ok(Some(position)));
        std::fs::write(state.path(), "{\"instance\": 3}").unwrap();
        let err = state.load().await.unwrap_err();
        assert!(err.contains(FILE_NAME), "{err}");
    }
}
