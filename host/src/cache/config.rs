//! The `[cache]` config section: the body store's limits, the memory tier and freshness rules.
//! Every key has a documented default.

use std::time::Duration;

use serde::Deserialize;

use crate::units::{self, ByteSize};

/// `[cache]`: the body store and freshness rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Bodies larger than this are passed through uncached.
    pub max_object_size: ByteSize,
    /// Memory kept for hot entries (heads and small bodies); the rest is read from disk.
    pub memory_size: ByteSize,
    /// Bodies up to this size are kept in memory when hot; larger ones are streamed from disk.
    pub memory_max_object: ByteSize,
    /// fsync each entry before it becomes visible (survives power loss, costs fill throughput).
    pub fsync: bool,
    /// Honour a client's `Cache-Control: max-stale` (off: a shared cache decides staleness itself).
    pub honor_client_max_stale: bool,
    /// Longest time a coalesced request waits for another request's origin fetch before fetching itself.
    #[serde(deserialize_with = "units::duration")]
    pub coalesce_wait: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_object_size: ByteSize(1 << 30),
            memory_size: ByteSize(16 << 20),
            memory_max_object: ByteSize(2 << 20),
            fsync: false,
            honor_client_max_stale: false,
            coalesce_wait: Duration::from_secs(30),
        }
    }
}
