//! The request counters behind `caje_requests_total{cache}` and
//! `caje_coalesced_requests_total`, which health reads too.
//!
//! Process-wide atomics: one add per request, no registry look-up on the hit path; a scrape
//! copies them into the Prometheus counters of the same names.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// The cache verdicts `caje_requests_total` counts, by its `cache` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Hit,
    Stale,
    Miss,
    Bypass,
}

impl Counted {
    const ALL: [Counted; 4] = [Counted::Hit, Counted::Stale, Counted::Miss, Counted::Bypass];

    pub fn label(self) -> &'static str {
        match self {
            Counted::Hit => "hit",
            Counted::Stale => "stale",
            Counted::Miss => "miss",
            Counted::Bypass => "bypass",
        }
    }
}

static REQUESTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static COALESCED: AtomicU64 = AtomicU64::new(0);

/// Counts one request with this verdict.
pub fn add(counted: Counted) {
    REQUESTS[counted as usize].fetch_add(1, Ordering::Relaxed);
}

/// Counts one request that waited for another request's origin fetch.
pub fn add_coalesced() {
    COALESCED.fetch_add(1, Ordering::Relaxed);
}

/// The counters as health reports them: since the process started (shared by every node of
/// the process, like the Prometheus recorder).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestCounts {
    pub hit: u64,
    pub stale: u64,
    pub miss: u64,
    pub bypass: u64,
    pub coalesced: u64,
    /// (hit + stale) / (hit + stale + miss): the share of cacheable requests answered from the
    /// cache. `None` before the first cacheable request.
    pub hit_ratio: Option<f64>,
}

/// The counters now.
pub fn snapshot() -> RequestCounts {
    let count = |counted: Counted| REQUESTS[counted as usize].load(Ordering::Relaxed);
    let (hit, stale, miss) = (
        count(Counted::Hit),
        count(Counted::Stale),
        count(Counted::Miss),
    );
    let served = hit + stale;
    RequestCounts {
        hit,
        stale,
        miss,
        bypass: count(Counted::Bypass),
        coalesced: COALESCED.load(Ordering::Relaxed),
        hit_ratio: (served + miss > 0).then(|| served as f64 / (served + miss) as f64),
    }
}

/// Sets the Prometheus counters to the atomics' values; a scrape calls it before rendering.
pub fn publish() {
    for counted in Counted::ALL {
        let value = REQUESTS[counted as usize].load(Ordering::Relaxed);
        metrics::counter!("caje_requests_total", "cache" => counted.label()).absolute(value);
    }
    metrics::counter!("caje_coalesced_requests_total").absolute(COALESCED.load(Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_show_in_the_snapshot_and_the_ratio() {
        let before = snapshot();
        add(Counted::Hit);
        add(Counted::Hit);
        add(Counted::Miss);
        add_coalesced();
        let after = snapshot();
        // Other tests of this process count too: only growth is asserted.
        assert!(after.hit >= before.hit + 2);
        assert!(after.miss > before.miss);
        assert!(after.coalesced > before.coalesced);
        let ratio = after.hit_ratio.expect("requests were counted");
        assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    }
}
