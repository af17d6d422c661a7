//! Opening the database file: the path, the connection settings, the schema (migrated here
//! or awaited from the primary) and a check that the file really takes writes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, SqliteConnection, SqlitePool};
use tokio::time::Instant;

use super::error::sqlite_code;
use super::gate::{NoGate, WriteGate};
use super::{JournalMode, ManifestConfig, ManifestError};

/// How [`Manifest::open_with`](super::Manifest::open_with) gets the schema in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaMode {
    /// Create the file if missing and apply pending migrations (under the write gate).
    Migrate,
    /// Never write the schema: wait up to `timeout` for the file and the migrations this build
    /// knows to appear (a LiteFS replica waiting for the primary).
    Await { timeout: Duration },
}

/// What [`Manifest::open_with`](super::Manifest::open_with) takes besides path and config.
#[derive(Clone)]
pub struct OpenOptions {
    /// Entered around every write transaction. Default [`NoGate`].
    pub gate: Arc<dyn WriteGate>,
    /// Default [`SchemaMode::Migrate`].
    pub schema: SchemaMode,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            gate: Arc::new(NoGate),
            schema: SchemaMode::Migrate,
        }
    }
}

/// The identity of the file behind a path, to notice that it was removed or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

pub(crate) fn file_id(path: &Path) -> Option<FileId> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// The writer's own connection: one, never pooled, so a LiteFS HALT lock taken for it covers
/// exactly the transactions it runs.
pub(crate) struct WriterConn {
    pub(crate) conn: SqliteConnection,
    pub(crate) file: FileId,
}

/// Creates the parent directory and refuses what SQLite would misreport.
pub(crate) fn prepare_path(path: &Path) -> Result<(), ManifestError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            ManifestError::open(
                path,
                format!("cannot create its directory {}: {e}", parent.display()),
                "create that directory (writable by caje) or set `database` to a path in an \
                 existing one",
            )
        })?;
    }
    if path.is_dir() {
        return Err(ManifestError::open(
            path,
            "it is a directory".to_owned(),
            "set `database` to a file path, such as /data/litefs/manifest.db",
        ));
    }
    Ok(())
}

/// Opens the writer's connection, brings the schema up (or checks that it arrived) and proves
/// the file takes writes. The caller holds the write gate.
pub(crate) async fn connect_writer(
    path: &Path,
    config: &ManifestConfig,
    schema: SchemaMode,
) -> Result<WriterConn, ManifestError> {
    let journal = match config.journal_mode {
        JournalMode::Delete => SqliteJournalMode::Delete,
        JournalMode::Wal => SqliteJournalMode::Wal,
    };
    let mut conn = options(path, config)
        .journal_mode(journal)
        .create_if_missing(schema == SchemaMode::Migrate)
        .connect()
        .await
        .map_err(ManifestError::sql("open"))?;
    match schema {
        SchemaMode::Migrate => {
            // `run` is generic over `Acquire<'a>`, which makes the writer task's future fail
            // the `Send` check ("Acquire is not general enough"); `run_direct` is sqlx's own
            // way around that and does the same on a connection we already hold.
            migrator()
                .run_direct(None, &mut conn, false)
                .await
                .map_err(|e| migrate_error(path, e))?;
        }
        SchemaMode::Await { .. } => {
            if !schema_ready(&mut conn)
                .await
                .map_err(ManifestError::sql("schema check"))?
            {
                return Err(ManifestError::SchemaNotReady {
                    path: path.to_owned(),
                    waited: Duration::ZERO,
                });
            }
        }
    }
    probe_writable(&mut conn)
        .await
        .map_err(ManifestError::sql("write check"))?;
    let file = file_id(path).ok_or_else(|| {
        ManifestError::open(
            path,
            "the file disappeared while it was being opened".to_owned(),
            "check what else removes files in that directory",
        )
    })?;
    Ok(WriterConn { conn, file })
}

/// Polls until the file exists and carries every migration this build knows.
pub(crate) async fn wait_for_schema(
    path: &Path,
    config: &ManifestConfig,
    timeout: Duration,
) -> Result<(), ManifestError> {
    const POLL: Duration = Duration::from_millis(100);
    let started = Instant::now();
    loop {
        match options(path, config).connect().await {
            Ok(mut conn) => {
                let ready = schema_ready(&mut conn).await;
                let _ = conn.close().await;
                if ready.map_err(|e| ManifestError::sql("schema check")(e).at_open(path))? {
                    return Ok(());
                }
            }
            // The file has not been replicated yet.
            Err(e) if sqlite_code(&e) == Some(14) => {}
            Err(e) => return Err(ManifestError::sql("open")(e).at_open(path)),
        }
        if started.elapsed() >= timeout {
            return Err(ManifestError::SchemaNotReady {
                path: path.to_owned(),
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The pool for look-ups. Lazy: connections open on first use, after the writer made the file.
pub(crate) fn reader_pool(path: &Path, config: &ManifestConfig) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(config.read_connections)
        .connect_lazy_with(options(path, config))
}

/// Settings shared by every connection. `synchronous` follows the journal mode: FULL is what
/// makes a rollback journal crash-safe; WAL is crash-safe at NORMAL (a power cut may lose the
/// last transactions, never corrupt the file). Foreign keys let tag rows follow their entry.
fn options(path: &Path, config: &ManifestConfig) -> SqliteConnectOptions {
    let synchronous = match config.journal_mode {
        JournalMode::Delete => SqliteSynchronous::Full,
        JournalMode::Wal => SqliteSynchronous::Normal,
    };
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(config.busy_timeout)
        .synchronous(synchronous)
        .foreign_keys(true)
}

fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    // A newer caje may have added migrations during a rolling deploy; they only add, so an
    // older node keeps working with them.
    migrator.set_ignore_missing(true);
    migrator
}

fn migrate_error(path: &Path, err: MigrateError) -> ManifestError {
    match err {
        MigrateError::Execute(source) | MigrateError::ExecuteMigration(source, _) => {
            ManifestError::Sql {
                what: "migration",
                source,
            }
            .at_open(path)
        }
        other => ManifestError::open(
            path,
            format!("its schema does not match this caje build: {other}"),
            "the file was migrated by a different caje build: run matching builds, or move the \
             file away to start an empty manifest",
        ),
    }
}

/// Whether every migration this build knows has been applied.
async fn schema_ready(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    let has_table: bool = sqlx::query_scalar(
        "SELECT EXISTS \
         (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !has_table {
        return Ok(false);
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
            .fetch_all(&mut *conn)
            .await?;
    Ok(migrator().iter().all(|m| applied.contains(&m.version)))
}

/// Writes the header (same `user_version`) and rolls back. SQLite quietly opens a read-only
/// file read-only, and a read-only directory only fails once a journal must be created: this
/// makes both fail here, at open, instead of on the first batch.
async fn probe_writable(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(AssertSqlSafe(format!("PRAGMA user_version = {version}")))
        .execute(&mut *tx)
        .await?;
    tx.rollback().await
}
