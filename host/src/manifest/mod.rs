//! The manifest: every cached page recorded in SQLite, which LiteFS replicates to every region.
//! Records are queued without I/O and written in batches by one writer task, off the response path.
//!
//! # Writes
//!
//! [`Manifest::record`] puts a record in a bounded in-memory queue and returns; it never waits
//! and never fails. A record for a key that is still waiting merges with it (the one stored
//! later wins, as in the database), so a hot key costs one queue slot. When `queue_max_rows`
//! distinct keys wait (the database has been unwritable for long), further new keys are
//! dropped, counted (`caje_manifest_dropped_total`) and logged at most every 30 s: memory stays
//! bounded by `queue_max_rows + batch_max_rows` records.
//!
//! One writer task owns one dedicated connection (never a pool connection) and writes up to
//! `batch_max_rows` records, or whatever waited `batch_max_delay`, as one `BEGIN IMMEDIATE …
//! COMMIT`, inside one pass of the [`WriteGate`] (the LiteFS HALT lock on a replica: taken
//! before `BEGIN`, released after `COMMIT`; see [`HaltGate`]). A failed batch is kept, retried
//! with exponential backoff (`retry_min` … `retry_max`), counted and logged (rate-limited). The
//! connection is reopened after a failure, and whenever the file at the path is no longer the
//! one it has open (removed or replaced): with [`SchemaMode::Migrate`] a removed file is
//! recreated and migrated, and the read pool follows the new file. Purges and clears go through
//! the same task, after the records queued before them.
//!
//! Upserts are keyed on the cache key and ignore a record older than the stored row, so a
//! replayed batch or a late write from another node never creates a duplicate or regresses a
//! row. Every write transaction bumps `changes.seq`; rows carry the number that last wrote
//! them, and purges are logged in `purges` with theirs, so a node can ask "what changed since
//! N" ([`Manifest::change_seq`], [`ListOrder::Changed`], [`Manifest::purges_since`]). A prefix or
//! tag purge also lists the rows it touched ([`Manifest::purged_pages`]): they are gone from
//! `entries`, and other nodes need them to find their own files.
//!
//! # Journal mode: rollback journal (`DELETE`) by default
//!
//! LiteFS (≥ 0.3) replicates both modes. We default to the rollback journal because:
//! - Without HALT a replica's write fails as "attempt to write a readonly database"
//!   (`SQLITE_READONLY`) in journal mode, but as "disk I/O error" in WAL, which is
//!   indistinguishable from a failing disk in logs and error handling.
//! - HALT weighs differently on each mode in LiteFS: granting HALT makes the primary take every
//!   lock of the database and run a recovery, which in WAL mode is a checkpoint, and a replica
//!   checkpoints again when it releases HALT; so in WAL mode every forwarded batch costs two
//!   checkpoints. While LiteFS holds the WAL locks, waiting readers can get "locking protocol"
//!   errors instead of waiting (LiteFS PR #450). In journal mode the same locks reach readers
//!   and writers as `SQLITE_BUSY`, which `busy_timeout` waits out.
//! - Creating a WAL database and migrating it on a fresh LiteFS volume has an open LiteFS bug
//!   (issue #425, migrations fail after `journal_mode = wal` on an empty database).
//!
//! The cost is that a reader and the writer's commit exclude each other briefly; reads here are
//! short pages (admin lists, the populator) and `busy_timeout` covers the wait. `synchronous`
//! is FULL in journal mode (required for crash safety) and NORMAL in WAL. `journal_mode =
//! "wal"` is available; every node must use the same mode, because a replica cannot switch a
//! replicated file's mode. `busy_timeout` (default 5 s) must outlast the longest HALT another
//! node holds: one round trip to the primary plus one batch.

mod config;
mod error;
mod gate;
mod halt_gate;
mod inbox;
mod node;
mod open;
mod query;
mod queue;
mod read;
mod record;
mod selector;
mod stats;
mod store;
mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot, watch};

pub use config::{JournalMode, ManifestConfig};
pub use error::ManifestError;
pub use gate::{GatePass, NoGate, WriteGate};
pub use halt_gate::HaltGate;
pub use open::{OpenOptions, SchemaMode};
pub use query::{ListOrder, ListQuery, Page};
pub use record::{ManifestRecord, ManifestRow, PurgeLogEntry, PurgedPage, PurgedRow};
pub use selector::Selector;
pub use stats::WriterStats;

pub(crate) use node::node_name;

use crate::key::Key;
use crate::purge_mode::PurgeMode;
use inbox::Inbox;
use writer::{Command, Writer};

/// A handle on the manifest; clones share the writer and the read pool. When the last clone is
/// dropped the writer writes what is queued (one attempt) and stops.
#[derive(Clone)]
pub struct Manifest {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    node: Arc<str>,
    session: Arc<str>,
    inbox: Arc<Inbox>,
    readers: Arc<ArcSwap<SqlitePool>>,
    commands: mpsc::Sender<Command>,
    committed: watch::Receiver<u64>,
}

impl Manifest {
    /// Opens (creating file and parent directory if needed) and migrates the manifest at
    /// `path`, with no write gate. Must run inside a tokio runtime: it starts the writer task.
    pub async fn open(path: &Path, config: &ManifestConfig) -> Result<Manifest, ManifestError> {
        Self::open_with(path, config, OpenOptions::default()).await
    }

    /// [`open`](Self::open) with a write gate and a schema mode (on LiteFS:
    /// [`OpenOptions::for_litefs`]).
    pub async fn open_with(
        path: &Path,
        config: &ManifestConfig,
        options: OpenOptions,
    ) -> Result<Manifest, ManifestError> {
        config.validate()?;
        open::prepare_path(path)?;
        if let SchemaMode::Await { timeout } = options.schema {
            open::wait_for_schema(path, config, timeout).await?;
        }
        let conn = {
            let _pass = options.gate.enter().await.map_err(ManifestError::Gate)?;
            open::connect_writer(path, config, options.schema)
                .await
                .map_err(|e| e.at_open(path))?
        };
        let readers = Arc::new(ArcSwap::from_pointee(open::reader_pool(path, config)));
        let node: Arc<str> = node::node_name(config.node.as_deref()).into();
        let session: Arc<str> = node::session_name(&node).into();
        let inbox = Arc::new(Inbox::new(config.queue_max_rows, config.batch_max_rows));
        let (commands, command_rx) = mpsc::channel(64);
        let (committed_tx, committed) = watch::channel(0);
        let writer = Writer {
            path: path.to_owned(),
            config: config.clone(),
            node: Arc::clone(&node),
            session: Arc::clone(&session),
            gate: options.gate,
            schema: options.schema,
            readers_file: conn.file,
            conn: Some(conn),
            readers: Arc::clone(&readers),
            inbox: Arc::clone(&inbox),
            commands: command_rx,
            committed: committed_tx,
        };
        tokio::spawn(writer.run());
        Ok(Manifest {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                node,
                session,
                inbox,
                readers,
                commands,
                committed,
            }),
        })
    }

    /// Queues a record for the writer. Never blocks and never fails; see the module docs for
    /// what happens when the queue is full.
    pub fn record(&self, record: ManifestRecord) {
        self.inner.inbox.record(record);
    }

    /// Waits until every record queued before this call is committed. While the database is
    /// unwritable this waits for it to recover: bound it with a timeout where that matters.
    pub async fn flush(&self) -> Result<(), ManifestError> {
        let target = self.inner.inbox.lock().queue.last_seq();
        let mut committed = self.inner.committed.clone();
        if *committed.borrow() >= target {
            return Ok(());
        }
        self.send(Command::Flush).await?;
        committed
            .wait_for(|done| *done >= target)
            .await
            .map(drop)
            .map_err(|_| ManifestError::Closed)
    }

    /// One row by cache key, stale or not.
    pub async fn get(&self, key: &Key) -> Result<Option<ManifestRow>, ManifestError> {
        read::get(&self.readers(), key).await
    }

    /// A page of rows: optional URL prefix, in [`ListOrder`], paged with the cursor of the
    /// previous page (keyset paging: stable while rows are added or removed).
    pub async fn list(&self, query: &ListQuery) -> Result<Page, ManifestError> {
        read::list(&self.readers(), query).await
    }

    /// The keys of the rows `selector` matches (stale or not), sorted.
    pub async fn keys(&self, selector: &Selector) -> Result<Vec<Key>, ManifestError> {
        read::keys(&self.readers(), selector).await
    }

    /// Deletes the selected rows (soft: marks them stale and keeps them), after the records
    /// queued before the call are written. Returns the rows it touched and logs the purge.
    pub async fn purge(
        &self,
        selector: &Selector,
        mode: PurgeMode,
    ) -> Result<Vec<PurgedRow>, ManifestError> {
        let selector = selector.clone();
        self.ask(|reply| Command::Purge {
            selector,
            mode,
            reply,
        })
        .await
    }

    /// Deletes every row (logged as a purge of everything); returns how many.
    pub async fn clear(&self) -> Result<u64, ManifestError> {
        self.ask(|reply| Command::Clear { reply }).await
    }

    /// Which of `keys` have a row (stale or not): one query for a whole page of keys.
    pub async fn existing_keys(&self, keys: &[Key]) -> Result<HashSet<Key>, ManifestError> {
        read::existing_keys(&self.readers(), keys).await
    }

    /// The change counter: it grows with every committed write transaction.
    pub async fn change_seq(&self) -> Result<u64, ManifestError> {
        read::change_seq(&self.readers()).await
    }

    /// Purges and clears committed after `change_seq`, oldest first, at most `limit`.
    pub async fn purges_since(
        &self,
        change_seq: u64,
        limit: u32,
    ) -> Result<Vec<PurgeLogEntry>, ManifestError> {
        read::purges_since(&self.readers(), change_seq, limit).await
    }

    /// A page of the rows the prefix or tag purge logged at `change_seq` touched (a URL or key
    /// purge lists none: its selector names its pages), in the order it logged them, after the
    /// page whose [`PurgedPage::next`] is `after`.
    pub async fn purged_pages(
        &self,
        change_seq: u64,
        after: Option<u64>,
        limit: u32,
    ) -> Result<PurgedPage, ManifestError> {
        read::purged_pages(&self.readers(), change_seq, after, limit).await
    }

    /// The random name this manifest was given when its schema was created: a node that sees
    /// another one knows the file was replaced, and that the purge log it followed is gone.
    pub async fn instance(&self) -> Result<String, ManifestError> {
        read::instance(&self.readers()).await
    }

    /// The name of this handle (one running caje), written with its rows
    /// ([`ManifestRow::session`]) and its purges and clears ([`PurgeLogEntry::session`]).
    pub fn session(&self) -> &str {
        &self.inner.session
    }

    /// The writer's counters.
    pub fn stats(&self) -> WriterStats {
        let queued = self.inner.inbox.lock().queue.len();
        self.inner.inbox.counters.snapshot(queued)
    }

    /// The name written into the `node` column of this node's rows.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Writes what is queued (one attempt), then closes the connections; later records are
    /// dropped. Flush first (with a timeout) to ride out a short outage.
    pub async fn close(&self) -> Result<(), ManifestError> {
        self.ask(|reply| Command::Close { reply }).await
    }

    fn readers(&self) -> SqlitePool {
        SqlitePool::clone(&self.inner.readers.load())
    }

    async fn send(&self, command: Command) -> Result<(), ManifestError> {
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| ManifestError::Closed)
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(writer::Reply<T>) -> Command,
    ) -> Result<T, ManifestError> {
        let (reply, answer) = oneshot::channel();
        self.send(command(reply)).await?;
        answer.await.map_err(|_| ManifestError::Closed)?
    }
}
