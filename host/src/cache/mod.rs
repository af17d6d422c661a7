//! The local cache: keys, the on-disk store, the hot memory tier, fills, and freshness rules.
//! It never touches the network: the proxy hands it request headers and origin response heads.

mod assess;
mod config;
pub mod detach;
mod entry;
mod fill;
mod freshness;
#[cfg(test)]
mod fuzz;
mod memory;
mod purge;
mod report;
mod storable;
mod store;
mod stored;

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::Stream;
use http::HeaderMap;

pub use assess::{Assessment, assess, cache_options};
pub use config::CacheConfig;
pub use entry::{
    EntryError, EntryHead, Record, Timeline, Windows, decode as decode_entry,
    encode as encode_entry,
};
pub use fill::{FillError, FillHandle, FillWriter};
pub use freshness::{Freshness, default_windows, evaluate, only_if_cached, within_stale_if_error};
use memory::{MemoryIndex, Slot};
pub use purge::{PurgeTally, PurgeTargets};
pub use storable::{NotStored, persisted_request, shared_with_authorization, vary_names};
use store::{DiskStore, Loaded};
pub use stored::{Entry, StoredBody};

use crate::key::{Key, url_digest};
use crate::sync::blocking;

/// One page of [`Cache::scan`].
#[derive(Debug, Default)]
pub struct DiskPage {
    pub entries: Vec<EntrySummary>,
    /// The last key examined, to pass as `after` for the next page; `None` once the walk
    /// reached the end of the store.
    pub last: Option<Key>,
}

/// A handle to this node's cache; cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    store: DiskStore,
    memory: MemoryIndex,
    config: CacheConfig,
    /// Rate-limits warnings about store failures (see `report`).
    warnings: std::sync::Mutex<crate::warn_limit::WarnLimiter>,
}

/// One entry as listed for operators.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EntrySummary {
    pub key: Key,
    pub url: String,
    pub origin: String,
    pub status: u16,
    pub size: u64,
    pub stored_at: u64,
    pub ttl_left: i64,
    pub tags: Vec<String>,
}

impl Cache {
    /// Opens (creating) the cache directory and removes temp files a crash left behind, in the background.
    pub fn open(dir: &Path, config: &CacheConfig) -> io::Result<Cache> {
        let store = DiskStore::open(dir)?;
        let cache = Cache {
            inner: Arc::new(Inner {
                store,
                memory: MemoryIndex::new(config.memory_size.0),
                config: config.clone(),
                warnings: Default::default(),
            }),
        };
        let sweeper = cache.clone();
        std::thread::Builder::new().name("caje-temp-sweep".into()).spawn(move || {
            if let Err(err) = sweeper.inner.store.walk(true, |_, _| {}) {
                tracing::warn!(error = %err, "could not sweep leftover temp files from the cache directory");
            }
        })?;
        Ok(cache)
    }

    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// The stored response for this request, if any (stale or not: freshness is the caller's question).
    pub async fn lookup(&self, key: &Key, request_headers: &HeaderMap) -> Option<Arc<Entry>> {
        match self.slot(key).await? {
            Slot::Entry(entry) => {
                (!entry.varies() || vary_matches(&entry, request_headers)).then_some(entry)
            }
            Slot::Vary(names) => {
                let variant = key.variant(&vary_values(&names, request_headers));
                match self.slot(&variant).await? {
                    Slot::Entry(entry) if vary_matches(&entry, request_headers) => Some(entry),
                    _ => None,
                }
            }
        }
    }

    /// [`Cache::lookup`] in the memory tier only: what a fill that just committed published.
    pub fn lookup_in_memory(&self, key: &Key, request_headers: &HeaderMap) -> Option<Arc<Entry>> {
        match self.memory_slot(key)? {
            Slot::Entry(entry) => {
                (!entry.varies() || vary_matches(&entry, request_headers)).then_some(entry)
            }
            Slot::Vary(names) => {
                let variant = key.variant(&vary_values(&names, request_headers));
                match self.memory_slot(&variant)? {
                    Slot::Entry(entry) if vary_matches(&entry, request_headers) => Some(entry),
                    _ => None,
                }
            }
        }
    }

    fn memory_slot(&self, key: &Key) -> Option<Slot> {
        let slot = self.inner.memory.get(key)?;
        match &slot {
            Slot::Entry(entry) if !entry.body_is_current() => {
                self.inner.memory.remove(key);
                None
            }
            _ => Some(slot),
        }
    }

    async fn slot(&self, key: &Key) -> Option<Slot> {
        if let Some(slot) = self.memory_slot(key) {
            return Some(slot);
        }
        // Most keys that miss the memory tier have no file either. Finding that out is one
        // directory lookup, cheap enough for the runtime's thread; reading and verifying a file
        // that exists stays on the blocking pool.
        let file = match self.inner.store.open_entry(key) {
            Ok(Some(file)) => file,
            Ok(None) => return None,
            Err(err) => {
                self.store_failed("read", key.as_str(), &err);
                return None;
            }
        };
        let inner = self.inner.clone();
        let owned_key = key.clone();
        let loaded = blocking(move || {
            inner
                .store
                .load_opened(&owned_key, &file, inner.config.memory_max_object.0)
        })
        .await;
        let slot = match loaded {
            Ok(Some(Loaded::Entry(entry))) => Slot::Entry(Arc::from(entry)),
            Ok(Some(Loaded::Vary(names))) => Slot::Vary(names.into()),
            Ok(None) => return None,
            Err(err) => {
                // Treated as a miss.
                self.store_failed("read", key.as_str(), &err);
                return None;
            }
        };
        self.inner.memory.insert(key.clone(), slot.clone());
        Some(slot)
    }

    /// Starts writing a new body for `key`; readers can follow it while it is written.
    pub fn begin_fill(&self, key: Key) -> io::Result<FillWriter> {
        let (file, temp) = self.inner.store.create_temp(&key)?;
        FillWriter::new(
            key,
            file,
            temp.clone(),
            self.inner.config.memory_max_object.0,
        )
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
    }

    /// Publishes a completely written body with its head; `base` is the key before any Vary variant.
    /// If that fails, readers still get the whole body; only the entry is lost.
    pub fn commit(
        &self,
        mut writer: FillWriter,
        mut head: EntryHead,
        base: &Key,
    ) -> io::Result<Arc<Entry>> {
        if !writer.is_stored() {
            let err = writer
                .take_store_error()
                .unwrap_or_else(|| io::Error::other("the store failed while the body was written"));
            writer.complete_unstored();
            return Err(err);
        }
        let (body_len, checksum, memory_copy) = writer.finish();
        head.body_len = body_len;
        head.body_checksum = checksum;
        match self.publish(&writer, head, base, memory_copy) {
            Ok(entry) => {
                writer.complete();
                Ok(entry)
            }
            Err(err) => {
                writer.complete_unstored();
                Err(err)
            }
        }
    }

    fn publish(
        &self,
        writer: &FillWriter,
        head: EntryHead,
        base: &Key,
        memory_copy: Option<Bytes>,
    ) -> io::Result<Arc<Entry>> {
        use std::os::unix::fs::FileExt;
        let store = &self.inner.store;
        let fsync = self.inner.config.fsync;
        let trailer = entry::encode_trailer(&Record::Response(Box::new(head.clone())));
        writer
            .file
            .write_all_at(&trailer, entry::MAGIC.len() as u64 + head.body_len)?;
        if !head.vary.is_empty() {
            let names = head.vary_names();
            let known = matches!(self.inner.memory.get(base), Some(Slot::Vary(current)) if *current == *names);
            if !known {
                store.write_record(base, &Record::Vary(names.clone()), fsync)?;
                self.inner
                    .memory
                    .insert(base.clone(), Slot::Vary(names.into()));
            }
        }
        store.publish(&writer.file, &writer.temp, &writer.key, fsync)?;
        let body = match memory_copy {
            Some(bytes) => StoredBody::Memory(bytes),
            None => {
                let path = store.path(&writer.key);
                let meta = writer.file.metadata()?;
                StoredBody::File {
                    path,
                    offset: entry::MAGIC.len() as u64,
                    stamp: stored::FileStamp::of(&meta),
                }
            }
        };
        let entry = Arc::new(Entry {
            key: writer.key.clone(),
            head,
            body,
        });
        self.inner
            .memory
            .insert(writer.key.clone(), Slot::Entry(entry.clone()));
        Ok(entry)
    }

    /// Rewrites an entry with a new head and the same body (a merged 304, a soft purge).
    pub fn update_head(&self, entry: &Entry, mut head: EntryHead) -> io::Result<Arc<Entry>> {
        head.body_len = entry.head.body_len;
        head.body_checksum = entry.head.body_checksum;
        let mut writer = self.begin_fill(entry.key.clone())?;
        match &entry.body {
            StoredBody::Memory(bytes) => writer.write(bytes)?,
            StoredBody::File { path, offset, .. } => {
                let source = File::open(path)?;
                copy_range(&source, *offset, entry.head.body_len, &mut writer)?;
            }
        }
        let base = entry.key.clone();
        self.commit(writer, head, &base)
    }

    /// The body bytes `range` of an entry.
    pub fn body(&self, entry: &Entry, start: u64, end: u64) -> io::Result<BodySource> {
        match &entry.body {
            StoredBody::Memory(bytes) => {
                Ok(BodySource::Bytes(bytes.slice(start as usize..end as usize)))
            }
            StoredBody::File { path, offset, .. } => {
                let file = Arc::new(File::open(path)?);
                Ok(BodySource::Stream(Box::pin(fill::file_stream(
                    file,
                    offset + start,
                    offset + end,
                ))))
            }
        }
    }

    /// Removes every stored response of a canonical URL. Returns how many files went.
    pub fn remove_url(&self, url: &str) -> io::Result<usize> {
        let digest = url_digest(url);
        self.inner.memory.remove_url(&digest);
        self.inner.store.remove_url(&digest)
    }

    /// Whether this node holds a file for the key.
    pub fn has_key(&self, key: &Key) -> bool {
        self.inner.store.path(key).exists()
    }

    /// Until when the response stored under `key` is fresh, from its head alone (the body is
    /// neither read nor verified); `None` when this node holds no response under the key.
    /// Blocking: reads the file's head unless the entry is in memory.
    pub fn fresh_until(&self, key: &Key) -> io::Result<Option<SystemTime>> {
        let timeline = match self.inner.memory.get(key) {
            Some(Slot::Entry(entry)) if entry.body_is_current() => Some(entry.head.timeline),
            _ => match self.inner.store.load_head(key)? {
                Some(Record::Response(head)) => Some(head.timeline),
                _ => None,
            },
        };
        Ok(timeline
            .map(|t| std::time::UNIX_EPOCH + std::time::Duration::from_millis(t.fresh_until)))
    }

    /// Removes one key's file (a tag purge removes exactly the tagged variants). Returns whether
    /// a file went.
    pub fn remove(&self, key: &Key) -> io::Result<bool> {
        self.inner.memory.remove(key);
        self.inner.store.remove(key)
    }

    /// The keys of every file this node holds for a canonical URL (variants and vary record included).
    pub fn keys_of_url(&self, url: &str) -> io::Result<Vec<Key>> {
        self.inner.store.keys_of_url(&url_digest(url))
    }

    /// Makes a stored response stale now (a soft purge): its timeline is rewritten through
    /// [`update_head`](Self::update_head), keeping the lengths of its stale windows, so the next
    /// request revalidates it. Returns whether the key holds a response (vary records do not).
    pub async fn expire(&self, key: &Key, now: SystemTime) -> io::Result<bool> {
        let Some(Slot::Entry(entry)) = self.slot(key).await else {
            return Ok(false);
        };
        let mut head = entry.head.clone();
        head.timeline.expire(now);
        if head.timeline != entry.head.timeline {
            self.update_head(&entry, head)?;
        }
        Ok(true)
    }

    /// Up to `max_files` of this node's entries in key order, starting after `after` (reads
    /// heads only, never bodies).
    pub fn scan(&self, after: Option<&Key>, max_files: usize) -> io::Result<DiskPage> {
        let now = SystemTime::now();
        let store = &self.inner.store;
        let mut page = DiskPage::default();
        let mut scanned = 0;
        let mut failure = None;
        store.walk_after(after, false, |key, _| {
            if scanned == max_files {
                return ControlFlow::Break(());
            }
            scanned += 1;
            match store.load_head(&key) {
                Ok(Some(Record::Response(head))) => page.entries.push(EntrySummary {
                    key: key.clone(),
                    url: head.url,
                    origin: head.origin,
                    status: head.status,
                    size: head.body_len,
                    stored_at: head.timeline.stored_at,
                    ttl_left: head.timeline.ttl_left(now),
                    tags: head.tags,
                }),
                Ok(_) => {}
                Err(err) => failure = Some(err),
            }
            page.last = Some(key);
            ControlFlow::Continue(())
        })?;
        if scanned < max_files {
            // The walk reached the end of the store.
            page.last = None;
        }
        failure.map_or(Ok(page), Err)
    }

    /// Removes every entry on this node. Returns how many files went.
    pub fn clear(&self) -> io::Result<usize> {
        self.inner.memory.clear();
        let mut removed = 0;
        let store = &self.inner.store;
        let mut failure = None;
        store.walk(true, |key, _| match store.remove(&key) {
            Ok(true) => removed += 1,
            Ok(false) => {}
            Err(err) => failure = Some(err),
        })?;
        failure.map_or(Ok(removed), Err)
    }
}

/// Where a response body comes from.
pub enum BodySource {
    Bytes(Bytes),
    Stream(std::pin::Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>),
}

/// Request headers whose values are secrets: a response varying on them is keyed and matched by
/// a digest of the value, which is all its entry records (the design's promise that `Cookie` and
/// `Authorization` never reach the disk holds under `Vary: Cookie` too).
const CREDENTIALS: [http::HeaderName; 2] = [http::header::COOKIE, http::header::AUTHORIZATION];

/// The request's values of the headers a response varies on (several lines joined with ", "),
/// credentials as `sha256:<hex>` of the joined value.
pub fn vary_values(names: &[String], headers: &HeaderMap) -> Vec<(String, Option<Vec<u8>>)> {
    names
        .iter()
        .map(|name| {
            let mut values = headers.get_all(name.as_str()).iter();
            let value = values.next().map(|first| {
                let mut joined = first.as_bytes().to_vec();
                for more in values {
                    joined.extend_from_slice(b", ");
                    joined.extend_from_slice(more.as_bytes());
                }
                if CREDENTIALS.iter().any(|secret| secret == name.as_str()) {
                    use sha2::Digest;
                    joined = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&joined)))
                        .into_bytes();
                }
                joined
            });
            (name.clone(), value)
        })
        .collect()
}

fn vary_matches(entry: &Entry, request_headers: &HeaderMap) -> bool {
    let names = entry.head.vary_names();
    let current = vary_values(&names, request_headers);
    entry
        .head
        .vary
        .iter()
        .zip(current.iter())
        .all(|((_, stored), (_, now))| stored.as_deref().map(|v| &v[..]) == now.as_deref())
}

fn copy_range(source: &File, offset: u64, len: u64, writer: &mut FillWriter) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buffer = vec![0u8; (len.min(1 << 20)) as usize];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(buffer.len() as u64) as usize;
        source.read_exact_at(&mut buffer[..want], offset + done)?;
        writer.write(&buffer[..want])?;
        done += want as u64;
    }
    Ok(())
}
