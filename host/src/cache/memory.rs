//! The hot tier: recently used entries (heads, and bodies up to `memory_max_object`) kept in memory.
//! Bounded by weight; evicted entries are still on disk and are reloaded (and re-verified) on demand.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache as QuickCache;

use super::Key;
use super::stored::{Entry, StoredBody};

/// What a key resolves to.
#[derive(Clone)]
pub enum Slot {
    Entry(Arc<Entry>),
    /// The URL's responses vary on these request headers.
    Vary(Arc<[String]>),
}

#[derive(Clone)]
struct SlotWeight;

impl Weighter<Key, Slot> for SlotWeight {
    fn weight(&self, key: &Key, slot: &Slot) -> u64 {
        // A rough per-item overhead keeps millions of tiny heads from looking free.
        let base = 256 + key.as_str().len() as u64;
        match slot {
            Slot::Vary(names) => base + names.iter().map(|n| n.len() as u64).sum::<u64>(),
            Slot::Entry(entry) => {
                let head = entry.head.url.len() as u64
                    + entry
                        .head
                        .headers
                        .iter()
                        .map(|(n, v)| (n.len() + v.len()) as u64 + 32)
                        .sum::<u64>();
                let body = match &entry.body {
                    StoredBody::Memory(bytes) => bytes.len() as u64,
                    StoredBody::File { .. } => 0,
                };
                base + head + body
            }
        }
    }
}

pub struct MemoryIndex {
    slots: QuickCache<Key, Slot, SlotWeight>,
}

impl MemoryIndex {
    pub fn new(capacity_bytes: u64) -> MemoryIndex {
        let estimated_items = (capacity_bytes / 2048).clamp(64, 1 << 20) as usize;
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
