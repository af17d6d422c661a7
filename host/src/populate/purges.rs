//! Following the fleet's purges: each node replays, in log order, the purges the manifest
//! logged that it has not applied to its own files yet.
//!
//! A prefix or tag purge logs the pages it touched; how far the replay got is kept in
//! `cache_dir`.
//!
//! - A node skips the entries its own manifest handle logged: the admin API that asked for
//!   them already applied them here.
//! - A clear (`clear-db`) forgets the index only: no node removes files for it. `clear-fs` on
//!   each node, or a prefix purge, removes files.
//! - Where to start: the saved position when it belongs to this manifest; else, with an empty
//!   cache directory (a new node), the log's end, since there is nothing to purge; else (files
//!   of unknown age, or the manifest was replaced) the whole log, which may remove a few files
//!   that were stored after an old purge: a refetch, never a stale page.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::state::{Position, StateFile};
use super::warmer::Warmer;
use crate::cache::{PurgeTally, PurgeTargets};
use crate::manifest::{ManifestError, PurgeLogEntry, PurgedRow, Selector};
use crate::purge_mode::PurgeMode;

/// Log entries read per query.
const LOG_PAGE: u32 = 100;
/// Purged pages read per query.
const PAGES_PAGE: u32 = 1000;

/// The files of this node that a purge of `selector` reaches, given the rows it touched: whole
/// URLs for a URL or prefix, single keys (variants) for a key or tag.
pub fn files_of(selector: &Selector, rows: &[PurgedRow]) -> PurgeTargets {
    match selector {
        Selector::Url(url) => PurgeTargets::Urls(BTreeSet::from([url.clone()])),
        Selector::Key(key) => PurgeTargets::Keys(BTreeSet::from([key.clone()])),
        Selector::Prefix(_) => PurgeTargets::Urls(rows.iter().map(|r| r.url.clone()).collect()),
        Selector::Tag(_) => PurgeTargets::Keys(rows.iter().map(|r| r.key.clone()).collect()),
    }
}

pub(crate) struct Replay {
    warmer: Arc<Warmer>,
    state: StateFile,
    /// `None` until the manifest could be read once.
    position: Option<Position>,
}

impl Replay {
    pub(crate) fn new(warmer: Arc<Warmer>, cache_dir: &Path) -> Replay {
        Replay {
            warmer,
            state: StateFile::in_dir(cache_dir),
            position: None,
        }
    }

    /// Applies every purge logged since the last one applied; on a manifest error it stops
    /// where it is, to go on from there next time. The error is kept for the health report.
    pub(crate) async fn catch_up(&mut self) -> Result<(), ManifestError> {
        let result = self.apply_pending().await;
        self.warmer.book().purges.error = result.as_ref().err().map(|err| {
            format!(
                "the purge log cannot be read, so purges made on other nodes are not applied \
                 here yet: {err}"
            )
        });
        result
    }

    /// The manifest's change counter went back: if the file was replaced, its log is new.
    pub(crate) async fn check_instance(&mut self) -> Result<(), ManifestError> {
        let instance = self.warmer.manifest.instance().await?;
        if self
            .position
            .as_ref()
            .is_some_and(|position| position.instance != instance)
        {
            tracing::warn!(
                "the manifest was replaced (instance {instance}): applying its purge log from \
                 the start; purges made on the old one while this node was not looking are lost \
                 (POST /_caje/clear-fs drops this node's files if that matters)"
            );
            self.save(Position {
                instance,
                applied: 0,
            })
            .await;
        }
        Ok(())
    }

    async fn apply_pending(&mut self) -> Result<(), ManifestError> {
        let mut position = match self.position.clone() {
            Some(position) => position,
            None => self.locate().await?,
        };
        loop {
            let entries = self
                .warmer
                .manifest
                .purges_since(position.applied, LOG_PAGE)
                .await?;
            if entries.is_empty() {
                return Ok(());
            }
            for entry in &entries {
                if entry.session != self.warmer.manifest.session() {
                    self.apply(entry).await?;
                }
                // Kept in memory at once, so that an error further on resumes after it.
                position.applied = entry.change_seq;
                self.position = Some(position.clone());
                self.warmer.book().purges.applied_seq = entry.change_seq;
            }
            self.save(position.clone()).await;
        }
    }

    /// Where this node starts in the log (see the module docs), saved at once.
    async fn locate(&mut self) -> Result<Position, ManifestError> {
        let manifest = &self.warmer.manifest;
        let instance = manifest.instance().await?;
        let end = manifest.change_seq().await?;
        let file = self.state.path().display().to_string();
        let applied = match self.state.load().await {
            Ok(Some(saved)) if saved.instance == instance => saved.applied,
            Ok(Some(_)) => {
                tracing::warn!(
                    %file,
                    "this node followed another manifest (the file was replaced): applying the \
                     whole purge log to its files"
                );
                0
            }
            Ok(None) if self.cache_is_empty().await => end,
            Ok(None) => {
                tracing::warn!(
                    %file,
                    "no record of which purges this node's files have seen: applying the whole \
                     purge log to them (once)"
                );
                0
            }
            Err(err) => {
                tracing::warn!("{err}: applying the whole purge log to this node's files");
                0
            }
        };
        let position = Position { instance, applied };
        self.save(position.clone()).await;
        Ok(position)
    }

    async fn cache_is_empty(&self) -> bool {
        let cache = self.warmer.cache.clone();
        // A directory that cannot be read is not known to be empty.
        crate::sync::blocking(move || cache.scan(None, 1))
            .await
            .is_ok_and(|page| page.last.is_none())
    }

    /// Keeps the position, and writes it down; a failed write is logged and retried with the
    /// next purge (a restart would then apply a few purges twice, which is harmless).
    async fn save(&mut self, position: Position) {
        if let Err(err) = self.state.save(&position).await {
            tracing::warn!(
                file = %self.state.path().display(),
                "cannot record how far the purge log is applied: {err}"
            );
        }
        self.warmer.book().purges.applied_seq = position.applied;
        self.position = Some(position);
    }

    /// Applies one logged purge to this node's files.
    async fn apply(&self, entry: &PurgeLogEntry) -> Result<(), ManifestError> {
        let Some(selector) = &entry.selector else {
            // A clear forgets the index; the files stay (see the module docs).
            return Ok(());
        };
        let mut tally = PurgeTally::default();
        match selector {
            Selector::Url(_) | Selector::Key(_) => {
                self.merge(&mut tally, files_of(selector, &[]), entry.mode)
                    .await;
            }
            Selector::Prefix(_) | Selector::Tag(_) => {
                let mut after = None;
                loop {
                    let page = self
                        .warmer
                        .manifest
                        .purged_pages(entry.change_seq, after, PAGES_PAGE)
                        .await?;
                    self.merge(&mut tally, files_of(selector, &page.rows), entry.mode)
                        .await;
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
            }
        }
        if let Some(err) = &tally.first_error {
            tracing::warn!(
                ?selector,
                failed = tally.failed,
                "a purge from node {} could not reach every file here (they are still served; \
                 check the permissions of cache_dir): {err}",
                entry.node
            );
        }
        tracing::debug!(?selector, mode = ?entry.mode, files = tally.files, node = %entry.node, "applied a purge");
        let mut book = self.warmer.book();
        book.purges.applied += 1;
        book.purges.files += tally.files as u64;
        book.purges.failed_files += tally.failed as u64;
        metrics::counter!("caje_populate_purges_applied_total").increment(1);
        Ok(())
    }

    async fn merge(&self, tally: &mut PurgeTally, targets: PurgeTargets, mode: PurgeMode) {
        let done = self.warmer.cache.purge(targets, mode).await;
        tally.files += done.files;
        tally.failed += done.failed;
        if tally.first_error.is_none() {
            tally.first_error = done.first_error;
        }
    }
}
