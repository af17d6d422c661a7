//! The one writer task: turns queued records into batches (one transaction each, under the
//! write gate), runs purges and clears in line with them, and retries failed batches.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{info, warn};

use super::gate::{GatePass, WriteGate};
use super::inbox::Inbox;
use super::open::{self, FileId, SchemaMode, WriterConn};
use super::queue::Pending;
use super::{ManifestConfig, ManifestError, PurgedRow, Selector, store};
use crate::purge_mode::PurgeMode;
use crate::warn_limit::WarnLimiter;

/// Said when SQLite's error does not point at the file itself.
const HINT_RETRY: &str = "pages are still served; check the database file, its directory and \
                          the disk it is on (see /_caje/health)";

pub(crate) type Reply<T> = oneshot::Sender<Result<T, ManifestError>>;

pub(crate) enum Command {
    /// Write what is queued now instead of waiting out the batch delay.
    Flush,
    Purge {
        selector: Selector,
        mode: PurgeMode,
        reply: Reply<Vec<PurgedRow>>,
    },
    Clear {
        reply: Reply<u64>,
    },
    /// Write what is queued (one attempt), close the connections and stop.
    Close {
        reply: Reply<()>,
    },
}

pub(crate) struct Writer {
    pub(crate) path: PathBuf,
    pub(crate) config: ManifestConfig,
    pub(crate) node: Arc<str>,
    /// This handle's session, logged with its purges.
    pub(crate) session: Arc<str>,
    pub(crate) gate: Arc<dyn WriteGate>,
    pub(crate) schema: SchemaMode,
    pub(crate) conn: Option<WriterConn>,
    /// The file the read pool has open.
    pub(crate) readers_file: FileId,
    pub(crate) readers: Arc<ArcSwap<SqlitePool>>,
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) commands: mpsc::Receiver<Command>,
    /// Every record numbered up to this is committed.
    pub(crate) committed: watch::Sender<u64>,
}

/// The writer's working state besides its inputs.
#[derive(Default)]
struct Progress {
    /// The batch being written; kept after a failure and retried.
    batch: Vec<Pending>,
    flush_requested: bool,
    /// Set while failing: when to try again.
    retry_at: Option<Instant>,
    backoff: Duration,
    failing: bool,
    warnings: WarnLimiter,
}

impl Writer {
    pub(crate) async fn run(mut self) {
        let mut progress = Progress::default();
        loop {
            let due = self.next_attempt(&mut progress);
            tokio::select! {
                biased;
                command = self.commands.recv() => {
                    // Every handle is gone: close as if asked to, with nobody to tell.
                    let command = command.unwrap_or_else(|| Command::Close {
                        reply: oneshot::channel().0,
                    });
                    if self.handle(command, &mut progress).await.is_break() {
                        return;
                    }
                }
                () = self.inbox.wake.notified() => {}
                () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    let _ = self.write_batch(&mut progress).await;
                }
            }
        }
    }

    /// When the next batch should be written: `None` with nothing pending; the retry time
    /// while failing; now for a full batch or a flush; else when the oldest record's wait ends.
    fn next_attempt(&self, progress: &mut Progress) -> Option<Instant> {
        let inbox = self.inbox.lock();
        let oldest = progress
            .batch
            .first()
            .or_else(|| inbox.queue.oldest())
            .map(|pending| Instant::from_std(pending.since));
        let Some(oldest) = oldest else {
            progress.flush_requested = false;
            return None;
        };
        if progress.retry_at.is_some() {
            return progress.retry_at;
        }
        let pending = progress.batch.len() + inbox.queue.len();
        if progress.flush_requested || pending >= self.config.batch_max_rows {
            return Some(Instant::now());
        }
        Some(oldest + self.config.batch_max_delay)
    }

    async fn handle(&mut self, command: Command, progress: &mut Progress) -> ControlFlow<()> {
        match command {
            Command::Flush => progress.flush_requested = true,
            Command::Purge {
                selector,
                mode,
                reply,
            } => {
                let (node, session) = (Arc::clone(&self.node), Arc::clone(&self.session));
                let author = store::Author {
                    node: &node,
                    session: &session,
                };
                let result = match self.admin_session(progress).await {
                    Ok((_pass, conn)) => {
                        store::purge(conn, &selector, mode, &author, SystemTime::now())
                            .await
                            .map_err(ManifestError::sql("purge"))
                    }
                    Err(error) => Err(error),
                };
                let _ = reply.send(self.admin_outcome("purge", result));
            }
            Command::Clear { reply } => {
                let (node, session) = (Arc::clone(&self.node), Arc::clone(&self.session));
                let author = store::Author {
                    node: &node,
                    session: &session,
                };
                let result = match self.admin_session(progress).await {
                    Ok((_pass, conn)) => store::clear(conn, &author, SystemTime::now())
                        .await
                        .map_err(ManifestError::sql("clear")),
                    Err(error) => Err(error),
                };
                let _ = reply.send(self.admin_outcome("clear", result));
            }
            Command::Close { reply } => {
                let _ = reply.send(self.close(progress).await);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// Writes one batch. On failure the batch is kept for the retry that `next_attempt` schedules.
    async fn write_batch(&mut self, progress: &mut Progress) -> Result<(), ManifestError> {
        let retry = progress.failing;
        match self.commit_batch(progress).await {
            Ok(rows) => {
                if rows > 0 {
                    self.inbox.counters.batch_committed(rows, retry);
                }
                progress.batch.clear();
                self.inbox.counters.set_in_flight(0);
                if progress.failing {
                    let skipped = progress.warnings.reset();
                    let path = self.path.display();
                    info!(%path, skipped_warnings = skipped, "manifest writes recovered");
                }
                progress.failing = false;
                progress.retry_at = None;
                self.publish_committed();
                Ok(())
            }
            Err(error) => {
                self.inbox
                    .counters
                    .failed("batch", error.to_string(), retry);
                self.conn = None;
                progress.backoff = if progress.failing {
                    (progress.backoff * 2).min(self.config.retry_max)
                } else {
                    self.config.retry_min
                };
                progress.failing = true;
                let now = Instant::now();
                progress.retry_at = Some(now + progress.backoff);
                if let Some(skipped) = progress.warnings.admit(now.into_std()) {
                    warn!(
                        path = %self.path.display(),
                        pending = progress.batch.len() + self.inbox.lock().queue.len(),
                        retry_in = ?progress.backoff,
                        skipped_warnings = skipped,
                        hint = error.hint().unwrap_or(HINT_RETRY),
                        "manifest write failed, records are kept and retried: {error}"
                    );
                }
                Err(error)
            }
        }
    }

    /// Enters the gate, then tops the batch up (records that arrived while waiting for the
    /// gate ride along) and commits it. Returns the rows written.
    async fn commit_batch(&mut self, progress: &mut Progress) -> Result<usize, ManifestError> {
        let _pass = self.gate.enter().await.map_err(ManifestError::Gate)?;
        self.top_up(&mut progress.batch);
        if progress.batch.is_empty() {
            return Ok(0);
        }
        let (node, session) = (Arc::clone(&self.node), Arc::clone(&self.session));
        let author = store::Author {
            node: &node,
            session: &session,
        };
        let conn = self.connection().await?;
        store::write_batch(conn, &progress.batch, &author)
            .await
            .map_err(ManifestError::sql("batch write"))?;
        Ok(progress.batch.len())
    }

    fn top_up(&self, batch: &mut Vec<Pending>) {
        let retained = batch.len();
        let mut inbox = self.inbox.lock();
        let room = self.config.batch_max_rows.saturating_sub(retained);
        for pending in inbox.queue.take(room) {
            // The queue holds each key once, but a retried batch may already carry a record of
            // it: the two merge in the batch's place.
            match batch[..retained]
                .iter_mut()
                .find(|kept| kept.record.key == pending.record.key)
            {
                Some(kept) if pending.record.supersedes(&kept.record) => {
                    kept.record = pending.record
                }
                Some(_) => {}
                None => batch.push(pending),
            }
        }
        self.inbox.counters.set_in_flight(batch.len());
        self.inbox.counters.queue_len(inbox.queue.len());
    }

    /// The writer connection, reopened when the last attempt failed or the file at the path is
    /// no longer the one it has open (removed or replaced). The caller holds the gate.
    async fn connection(&mut self) -> Result<&mut SqliteConnection, ManifestError> {
        let current = open::file_id(&self.path);
        if self.conn.as_ref().is_some_and(|c| Some(c.file) != current) {
            self.conn = None;
        }
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let fresh = open::connect_writer(&self.path, &self.config, self.schema).await?;
                if fresh.file != self.readers_file {
                    self.replace_readers(fresh.file);
                }
                fresh
            }
        };
        Ok(&mut self.conn.insert(conn).conn)
    }

    /// Points look-ups at the new file, letting the old pool finish what it is doing.
    fn replace_readers(&mut self, file: FileId) {
        let fresh = open::reader_pool(&self.path, &self.config);
        let old = self.readers.swap(Arc::new(fresh));
        self.readers_file = file;
        tokio::spawn(async move { old.close().await });
    }

    /// Counts and logs the result of a purge or clear.
    fn admin_outcome<T>(
        &mut self,
        what: &'static str,
        result: Result<T, ManifestError>,
    ) -> Result<T, ManifestError> {
        match &result {
            Ok(_) => self.inbox.counters.succeeded(),
            Err(error) => {
                self.inbox.counters.failed(what, error.to_string(), false);
                self.conn = None;
                warn!(path = %self.path.display(), "manifest {what} failed: {error}");
            }
        }
        result
    }

    /// Gets a purge or clear ready: writes the records queued before it (so a purge sees
    /// them), enters the gate and returns the connection to run it on.
    async fn admin_session(
        &mut self,
        progress: &mut Progress,
    ) -> Result<(GatePass, &mut SqliteConnection), ManifestError> {
        self.write_queued(progress).await?;
        let pass = self.gate.enter().await.map_err(ManifestError::Gate)?;
        Ok((pass, self.connection().await?))
    }

    /// Writes batches until everything recorded before this call is committed; stops at the
    /// first failure.
    async fn write_queued(&mut self, progress: &mut Progress) -> Result<(), ManifestError> {
        let target = self.inbox.lock().queue.last_seq();
        while *self.committed.borrow() < target {
            self.write_batch(progress).await?;
        }
        Ok(())
    }

    /// Announces how far records are committed: up to the oldest one still queued.
    fn publish_committed(&self) {
        let inbox = self.inbox.lock();
        let done = inbox
            .queue
            .oldest()
            .map_or(inbox.queue.last_seq(), |p| p.first_seq - 1);
        self.committed.send_if_modified(|committed| {
            let advanced = done > *committed;
            *committed = done.max(*committed);
            advanced
        });
    }

    async fn close(&mut self, progress: &mut Progress) -> Result<(), ManifestError> {
        self.inbox.lock().closed = true;
        let result = self.write_queued(progress).await;
        if let Err(error) = &result {
            let stats = self.inbox.counters.snapshot(self.inbox.lock().queue.len());
            warn!(
                path = %self.path.display(),
                unwritten = stats.queued,
                "closing the manifest with records unwritten: {error}"
            );
        }
        if let Some(writer) = self.conn.take() {
            let _ = writer.conn.close().await;
        }
        self.readers.load().close().await;
        result
    }
}
