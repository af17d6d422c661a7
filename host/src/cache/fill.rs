//! A body on its way from the origin into the store, readable by any number of clients meanwhile.
//! Readers tail the temp file, so memory stays bounded however large the body and however slow a reader.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::sync::watch;
use xxhash_rust::xxh3::Xxh3;

use super::Key;
use super::entry::MAGIC;

const READ_CHUNK: u64 = 256 << 10;

/// How far a fill has got, in body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Writing(u64),
    Complete(u64),
    /// The origin broke off or the store failed: readers must end their responses with an error.
    Failed,
}

/// The writing side, owned by the task that reads the origin's body.
pub struct FillWriter {
    pub(super) key: Key,
    pub(super) file: Arc<File>,
    pub(super) temp: PathBuf,
    written: u64,
    hasher: Xxh3,
    /// A copy of the body while it is small enough for the memory tier.
    memory: Option<BytesMut>,
    memory_max: u64,
    progress: watch::Sender<Progress>,
    finished: bool,
}

/// The reading side: cheap to clone, one per client.
#[derive(Clone)]
pub struct FillHandle {
    file: Arc<File>,
    progress: watch::Receiver<Progress>,
}

impl FillWriter {
    pub(super) fn new(
        key: Key,
        file: File,
        temp: PathBuf,
        memory_max: u64,
    ) -> io::Result<FillWriter> {
        file.write_all_at(MAGIC, 0)?;
        Ok(FillWriter {
            key,
            file: Arc::new(file),
            temp,
            written: 0,
            hasher: Xxh3::new(),
            memory: Some(BytesMut::new()),
            memory_max,
            progress: watch::Sender::new(Progress::Writing(0)),
            finished: false,
        })
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    pub fn handle(&self) -> FillHandle {
        FillHandle {
            file: self.file.clone(),
            progress: self.progress.subscribe(),
        }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends a chunk of body and wakes the readers.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file
            .write_all_at(chunk, MAGIC.len() as u64 + self.written)?;
        self.written += chunk.len() as u64;
        self.hasher.update(chunk);
        if let Some(memory) = &mut self.memory {
            if self.written <= self.memory_max {
                memory.extend_from_slice(chunk);
            } else {
                self.memory = None;
            }
        }
        self.progress.send_replace(Progress::Writing(self.written));
        Ok(())
    }

    /// The body is complete: its length, checksum and (when small) an in-memory copy.
    pub(super) fn finish(&mut self) -> (u64, u64, Option<Bytes>) {
        (
            self.written,
            self.hasher.digest(),
            self.memory.take().map(BytesMut::freeze),
        )
    }

    /// Tells readers the body is whole; called once the entry is published.
    pub(super) fn complete(mut self) {
        self.finished = true;
        self.progress.send_replace(Progress::Complete(self.written));
    }
}

impl FillWriter {
    /// The body is whole but will not be stored (it outgrew max_object_size): readers finish
    /// from the already unlinked file.
    pub fn complete_unstored(mut self) {
        self.finished = true;
        let _ = std::fs::remove_file(&self.temp);
        self.progress.send_replace(Progress::Complete(self.written));
    }
}

impl Drop for FillWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Readers see the failure; the half-written file must never become an entry.
            self.progress.send_replace(Progress::Failed);
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Why a fill reader stopped before the end of the body.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error("the origin response broke off before its end")]
    Aborted,
    #[error("reading the cached body failed: {0}")]
    Io(#[from] io::Error),
}

impl FillHandle {
    /// The body from its first byte, as it arrives.
    pub fn stream(&self) -> impl Stream<Item = Result<Bytes, FillError>> + Send + 'static {
        let state = (self.clone(), 0u64);
        futures_util::stream::unfold(state, |(mut handle, offset)| async move {
            match handle.next_chunk(offset).await {
                Ok(Some(chunk)) => {
                    let next = offset + chunk.len() as u64;
                    Some((Ok(chunk), (handle, next)))
                }
                Ok(None) => None,
                Err(err) => Some((Err(err), (handle, u64::MAX))),
            }
        })
    }

    async fn next_chunk(&mut self, offset: u64) -> Result<Option<Bytes>, FillError> {
        if offset == u64::MAX {
            return Ok(None);
        }
        loop {
            let progress = *self.progress.borrow_and_update();
            let available = match progress {
                Progress::Writing(n) | Progress::Complete(n) => n,
                Progress::Failed => return Err(FillError::Aborted),
            };
            if offset < available {
                let len = (available - offset).min(READ_CHUNK) as usize;
                let mut buffer = vec![0u8; len];
                self.file
                    .read_exact_at(&mut buffer, MAGIC.len() as u64 + offset)?;
                return Ok(Some(Bytes::from(buffer)));
            }
            if matches!(progress, Progress::Complete(_)) {
                return Ok(None);
            }
            if self.progress.changed().await.is_err() {
                // The writer vanished without completing.
                return Err(FillError::Aborted);
            }
        }
    }
}

/// Streams `start..end` of a body file, reading off the async runtime.
pub fn file_stream(
    file: Arc<File>,
    start: u64,
    end: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(start, move |offset| {
        let file = file.clone();
        async move {
            if offset >= end {
                return None;
            }
            let len = (end - offset).min(READ_CHUNK) as usize;
            let read = tokio::task::spawn_blocking(move || {
                let mut buffer = vec![0u8; len];
                file.read_exact_at(&mut buffer, offset)
                    .map(|()| Bytes::from(buffer))
            })
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join)));
            match read {
                Ok(chunk) => Some((Ok(chunk), offset + len as u64)),
                Err(err) => Some((Err(err), end)),
            }
        }
    })
}
