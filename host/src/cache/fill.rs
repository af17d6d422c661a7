//! A body on its way from the origin into the store, readable by any number of clients
//! meanwhile: readers tail the temp file, so memory stays bounded however slow a reader.
//!
//! When the store fails mid-body (disk full, file system gone read-only), the rest of the body
//! is kept in memory instead (up to `memory_max_object`), so the clients already reading it
//! still get all of it; such a fill is never published.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::sync::watch;
use xxhash_rust::xxh3::Xxh3;

use super::entry::MAGIC;
use crate::key::Key;
use crate::sync::lock;

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
    spill: Arc<Mutex<Option<Spill>>>,
    /// Why the store stopped taking this body, until the caller takes it to report it.
    store_error: Option<io::Error>,
}

/// The part of a body the store could not take, from body offset `start` on.
struct Spill {
    start: u64,
    bytes: BytesMut,
}

/// The reading side: cheap to clone, one per client.
#[derive(Clone)]
pub struct FillHandle {
    file: Arc<File>,
    spill: Arc<Mutex<Option<Spill>>>,
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
            spill: Arc::default(),
            store_error: None,
        })
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    pub fn handle(&self) -> FillHandle {
        FillHandle {
            file: self.file.clone(),
            spill: self.spill.clone(),
            progress: self.progress.subscribe(),
        }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends a chunk of body and wakes the readers. Fails only when the store failed and the
    /// rest of the body outgrew what may be kept in memory: readers then see the fill fail.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if !self.spilling() {
            let offset = MAGIC.len() as u64 + self.written;
            if let Err(err) = self.file.write_all_at(chunk, offset) {
                self.begin_spill(err);
            }
        }
        if self.spilling() {
            self.spill(chunk)?;
        }
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

    fn spilling(&self) -> bool {
        lock(&self.spill).is_some()
    }

    /// The store failed: readers keep reading what was written from the open file, the rest
    /// comes from memory. The file's name goes now, giving its space back.
    fn begin_spill(&mut self, err: io::Error) {
        let _ = std::fs::remove_file(&self.temp);
        *lock(&self.spill) = Some(Spill {
            start: self.written,
            bytes: BytesMut::new(),
        });
        self.store_error = Some(err);
    }

    fn spill(&mut self, chunk: &[u8]) -> io::Result<()> {
        let mut spill = lock(&self.spill);
        let spill = spill.as_mut().expect("spilling");
        if (spill.bytes.len() + chunk.len()) as u64 > self.memory_max {
            return Err(io::Error::other(
                "the cache store failed and the rest of the body is larger than \
                 cache.memory_max_object, the most kept in memory instead",
            ));
        }
        spill.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Why the store stopped taking this body (reported once: the error is handed over).
    pub fn take_store_error(&mut self) -> Option<io::Error> {
        self.store_error.take()
    }

    /// Whether the whole body is in the temp file, so it can become an entry.
    pub(super) fn is_stored(&self) -> bool {
        !self.spilling()
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
                return Ok(Some(self.read(offset, available)?));
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

    /// Up to `READ_CHUNK` bytes from body offset `offset`, which is below `available`.
    fn read(&self, offset: u64, available: u64) -> io::Result<Bytes> {
        let spill = lock(&self.spill);
        let in_file = spill.as_ref().map_or(available, |s| s.start.min(available));
        if offset < in_file {
            drop(spill);
            let mut buffer = vec![0u8; (in_file - offset).min(READ_CHUNK) as usize];
            self.file
                .read_exact_at(&mut buffer, MAGIC.len() as u64 + offset)?;
            return Ok(Bytes::from(buffer));
        }
        let spill = spill.as_ref().expect("bytes past the file are spilled");
        let from = (offset - spill.start) as usize;
        let to = ((available - spill.start) as usize).min(from + READ_CHUNK as usize);
        Ok(Bytes::copy_from_slice(&spill.bytes[from..to]))
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
            let read = crate::sync::blocking(move || {
                let mut buffer = vec![0u8; len];
                file.read_exact_at(&mut buffer, offset)
                    .map(|()| Bytes::from(buffer))
            })
            .await;
            match read {
                Ok(chunk) => Some((Ok(chunk), offset + len as u64)),
                Err(err) => Some((Err(err), end)),
            }
        }
    })
}
