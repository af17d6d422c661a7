//! The bounded queue between `record` and the writer, coalescing by cache key.
//! A record for a waiting key merges with it (the later `stored_at` wins) and keeps its place.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::ManifestRecord;
use crate::key::Key;

/// A record waiting to be written.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The sequence number of the first record of this key that is still unwritten: every
    /// record numbered from here on for this key is carried by this one.
    pub(crate) first_seq: u64,
    /// When the key started waiting: the batch delay runs from here.
    pub(crate) since: Instant,
    pub(crate) record: ManifestRecord,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued behind `len - 1` other keys.
    Queued { len: usize },
    /// Merged with a waiting record for the same key (the one stored later is kept).
    Coalesced,
    /// Refused: the queue holds its maximum of distinct keys.
    Full,
}

/// Keys in the order they started waiting, each with its newest record.
#[derive(Debug)]
pub(crate) struct Queue {
    order: VecDeque<Key>,
    by_key: HashMap<Key, Pending>,
    /// The sequence number of the last record accepted.
    last_seq: u64,
    capacity: usize,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Queue {
        Queue {
            order: VecDeque::new(),
            by_key: HashMap::new(),
            last_seq: 0,
            capacity,
        }
    }

    pub(crate) fn push(&mut self, record: ManifestRecord, now: Instant) -> Pushed {
        if let Some(waiting) = self.by_key.get_mut(&record.key) {
            self.last_seq += 1;
            if record.supersedes(&waiting.record) {
                waiting.record = record;
            }
            return Pushed::Coalesced;
        }
        if self.order.len() >= self.capacity {
            return Pushed::Full;
        }
        self.last_seq += 1;
        self.order.push_back(record.key.clone());
        let pending = Pending {
            first_seq: self.last_seq,
            since: now,
            record,
        };
        self.by_key.insert(pending.record.key.clone(), pending);
        Pushed::Queued {
            len: self.order.len(),
        }
    }

    /// Removes up to `n` records, oldest first.
    pub(crate) fn take(&mut self, n: usize) -> impl Iterator<Item = Pending> + '_ {
        let n = n.min(self.order.len());
        self.order
            .drain(..n)
            .filter_map(|key| self.by_key.remove(&key))
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn oldest(&self) -> Option<&Pending> {
        self.order.front().and_then(|key| self.by_key.get(key))
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn key(label: &str) -> Key {
        Key::for_url(&format!("https://a/{label}"), &[])
    }

    fn rec(label: &str, size: u64) -> ManifestRecord {
        ManifestRecord {
            key: key(label),
            method: http::Method::GET,
            url: format!("https://a/{label}"),
            origin: "o".into(),
            status: 200,
            size,
            stored_at: UNIX_EPOCH + Duration::from_secs(size),
            expires_at: UNIX_EPOCH,
            tags: vec![],
        }
    }

    #[test]
    fn coalesces_by_key_keeping_place_and_first_seq() {
        let t0 = Instant::now();
        let mut q = Queue::new(10);
        assert_eq!(q.push(rec("a", 1), t0), Pushed::Queued { len: 1 });
        assert_eq!(q.push(rec("b", 1), t0), Pushed::Queued { len: 2 });
        let later = t0 + Duration::from_secs(1);
        assert_eq!(q.push(rec("a", 2), later), Pushed::Coalesced);
        assert_eq!(
            q.push(rec("a", 0), later),
            Pushed::Coalesced,
            "stored earlier: ignored"
        );
        assert_eq!(q.len(), 2);
        assert_eq!(q.last_seq(), 4);
        let oldest = q.oldest().unwrap();
        assert_eq!(
            (oldest.record.size, oldest.first_seq, oldest.since),
            (2, 1, t0)
        );

        let batch: Vec<_> = q.take(5).collect();
        let keys: Vec<_> = batch.iter().map(|p| p.record.key.clone()).collect();
        assert_eq!(keys, [key("a"), key("b")]);
        assert_eq!(q.len(), 0);
        assert!(q.oldest().is_none());

        // A key that was taken starts a new wait with a new first_seq.
        q.push(rec("a", 3), later);
        assert_eq!(q.oldest().unwrap().first_seq, 5);
    }

    #[test]
    fn refuses_new_keys_when_full_but_still_coalesces() {
        let now = Instant::now();
        let mut q = Queue::new(2);
        q.push(rec("a", 1), now);
        q.push(rec("b", 1), now);
        assert_eq!(q.push(rec("c", 1), now), Pushed::Full);
        assert_eq!(q.last_seq(), 2, "a refused record gets no sequence number");
        assert_eq!(q.push(rec("b", 9), now), Pushed::Coalesced);
        let taken: Vec<_> = q.take(1).map(|p| p.record.key).collect();
        assert_eq!(taken, [key("a")]);
        assert_eq!(q.push(rec("c", 1), now), Pushed::Queued { len: 2 });
    }
}
