//! What can go wrong with the manifest, phrased for the operator who has to fix it.
//! SQLite result codes are turned into a reason and a hint naming the path.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An error from opening, querying or (for admin operations) writing the manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A `[manifest]` value is out of range.
    #[error("invalid config: {0}")]
    Config(String),
    /// The database file cannot be used; `hint` says what to do about it.
    #[error("cannot open the manifest {path}: {reason}\n  hint: {hint}")]
    Open {
        path: PathBuf,
        reason: String,
        hint: &'static str,
    },
    /// The schema migrations (run by the primary) had not arrived when the wait ran out.
    #[error(
        "the manifest schema did not appear in {path} within {waited:?}\n  hint: the LiteFS \
         primary's caje creates it; check that caje runs on the primary and that this node \
         replicates from it, or raise manifest.schema_wait"
    )]
    SchemaNotReady { path: PathBuf, waited: Duration },
    /// The write gate (the LiteFS HALT lock on a replica) could not be entered.
    #[error("cannot enter the manifest write gate: {0}")]
    Gate(#[source] io::Error),
    /// A statement failed; `what` says which operation it belonged to.
    #[error("manifest {what} failed: {source}")]
    Sql {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A list cursor that this manifest did not hand out.
    #[error("invalid list cursor {0:?}: pass back the `next` value of the previous page unchanged")]
    BadCursor(String),
    /// The writer has stopped: the manifest was closed.
    #[error("the manifest is closed")]
    Closed,
}

impl ManifestError {
    pub(crate) fn sql(what: &'static str) -> impl FnOnce(sqlx::Error) -> ManifestError {
        move |source| ManifestError::Sql { what, source }
    }

    /// Rewrites a failure met while opening `path` as an [`Open`](Self::Open) error when its
    /// cause is the file itself (not SQLite, read-only, unreachable).
    pub(crate) fn at_open(self, path: &Path) -> ManifestError {
        let ManifestError::Sql { source, .. } = &self else {
            return self;
        };
        let Some((reason, hint)) = explain(source) else {
            return self;
        };
        ManifestError::Open {
            path: path.to_owned(),
            reason: format!("{reason} ({source})"),
            hint,
        }
    }

    /// What the operator can do about a failed statement, when its cause is the file itself.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            ManifestError::Sql { source, .. } => explain(source).map(|(_, hint)| hint),
            ManifestError::Open { hint, .. } => Some(hint),
            _ => None,
        }
    }

    pub(crate) fn open(path: &Path, reason: String, hint: &'static str) -> ManifestError {
        ManifestError::Open {
            path: path.to_owned(),
            reason,
            hint,
        }
    }
}

/// SQLite's primary result code of a database error (the low byte of the extended code).
pub(crate) fn sqlite_code(err: &sqlx::Error) -> Option<i32> {
    let code = err.as_database_error()?.code()?;
    code.parse::<i32>().ok().map(|c| c & 0xff)
}

const HINT_WRITABLE: &str = "make the file and its directory writable by caje (check `chattr`, \
                             read-only mounts and disk space), or set `database` to another path";

fn explain(err: &sqlx::Error) -> Option<(&'static str, &'static str)> {
    const BUSY: i32 = 5;
    const READONLY: i32 = 8;
    const IOERR: i32 = 10;
    const CORRUPT: i32 = 11;
    const CANTOPEN: i32 = 14;
    const NOTADB: i32 = 26;
    Some(match sqlite_code(err)? {
        NOTADB => (
            "the file is not a SQLite database",
            "move the file away (caje then creates a new manifest in its place) or set `database` \
             to another path",
        ),
        CORRUPT => (
            "the database is corrupt",
            "move the file away; caje creates an empty manifest and refills it as pages are cached",
        ),
        READONLY => ("the database is read-only", HINT_WRITABLE),
        CANTOPEN | IOERR => (
            "the database file cannot be opened or written",
            HINT_WRITABLE,
        ),
        BUSY => (
            "another process holds a lock on the database",
            "stop the other process using the file, or raise manifest.busy_timeout",
        ),
        _ => return None,
    })
}
