//! The hot tier: recently used entries (heads, and bodies up to `memory_max_object`) kept in memory.
//! Bounded by weight; evicted entries are still on disk and are reloaded (and re-verified) on demand.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache as QuickCache;

use super::stored::{Entry, StoredBody};
use crate::key::Key;

/// What a key resolves to.
#[derive(Clone)]
pub enum Slot {
    Entry(Arc<Entry>),
    /// The URL's responses vary on these request headers.
    Vary(Arc<[String]>),
}

#[derive(Clone)]
struct SlotWeight;

/// Heap an entry costs beyond its headers and body: the key, the `Arc`, the head's strings and
/// the tables of the three header maps it holds (the policy's request and response, the served
/// headers). Measured: 16 MiB of small entries with ~6 headers each took ~150 MiB of RSS while
/// weighed at ~600 bytes apiece; ~5.5 KiB is what one really costs.
const ENTRY_OVERHEAD: u64 = 2048;
/// Heap per stored header beyond its bytes: its buckets in the maps that hold it, with their
/// allocations. (Measured when a third copy, a list of pairs, was kept too: kept as the bound.)
const HEADER_OVERHEAD: u64 = 448;
/// The header's bytes are held twice: the head's map and the policy's.
const HEADER_COPIES: u64 = 2;

impl Weighter<Key, Slot> for SlotWeight {
    fn weight(&self, key: &Key, slot: &Slot) -> u64 {
        let key_len = key.as_str().len() as u64;
        match slot {
            Slot::Vary(names) => {
                256 + key_len + names.iter().map(|n| n.len() as u64 + 32).sum::<u64>()
            }
            Slot::Entry(entry) => {
                let head = &entry.head;
                let headers = head
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        HEADER_COPIES * (n.as_str().len() + v.len()) as u64 + HEADER_OVERHEAD
                    })
                    .sum::<u64>();
                let body = match &entry.body {
                    StoredBody::Memory(bytes) => bytes.len() as u64,
                    StoredBody::File { path, .. } => path.as_os_str().len() as u64,
                };
                ENTRY_OVERHEAD + 2 * key_len + 2 * head.url.len() as u64 + headers + body
            }
        }
    }
}

pub struct MemoryIndex {
    slots: QuickCache<Key, Slot, SlotWeight>,
}

impl MemoryIndex {
    pub fn new(capacity_bytes: u64) -> MemoryIndex {
        let estimated_items = (capacity_bytes / 8192).clamp(64, 1 << 20) as usize;
        MemoryIndex {
            slots: QuickCache::with_weighter(estimated_items, capacity_bytes.max(1), SlotWeight),
        }
    }

    pub fn get(&self, key: &Key) -> Option<Slot> {
        self.slots.get(key)
    }

    pub fn insert(&self, key: Key, slot: Slot) {
        self.slots.insert(key, slot);
    }

    pub fn remove(&self, key: &Key) {
        self.slots.remove(key);
    }

    /// Forgets every key of one URL (all policy components and Vary variants).
    pub fn remove_url(&self, url_digest: &str) {
        self.slots.retain(|key, _| key.url_digest() != url_digest);
    }

    pub fn clear(&self) {
        self.slots.clear();
    }
}
