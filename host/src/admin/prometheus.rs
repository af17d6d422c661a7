//! Prometheus metrics: the process-wide recorder (installed once, shared by every node in the
//! process), deliberate histogram buckets, descriptions, and counters read back for health.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;

use super::Admin;
use super::reply::{self, Reply};
use crate::body::Body;
use http::StatusCode;

/// Origin response-head latency: from 1 ms (an origin in the same region) to 30 s, the default
/// `read_timeout`, with enough steps in between to tell a slow origin from a timing-out one.
const ORIGIN_SECONDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Rows per manifest batch: 1 on a quiet node, up to the default `batch_max_rows` (500) and
/// beyond it for configs that raise it.
const BATCH_ROWS: [f64; 11] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
];
/// Waiting for and holding the LiteFS HALT lock: from 0.5 ms (the primary, a no-op) to
/// `halt_timeout`'s default of 15 s and the ~30 s after which the primary drops a HALT.
const HALT_SECONDS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
    30.0,
];
/// How often buffered histogram samples are folded into their buckets (bounds their memory).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// The cache verdicts counted in `caje_requests_total{cache}`.
const VERDICTS: [&str; 4] = ["hit", "stale", "miss", "bypass"];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder the first time it is called in the process and returns its
/// handle; `None` when another recorder was installed first (metrics then go there).
pub fn install() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| match builder().install_recorder() {
            Ok(handle) => {
                describe();
                let upkeep = handle.clone();
                let started = std::thread::Builder::new()
                    .name("caje-metrics-upkeep".into())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(UPKEEP_EVERY);
                            upkeep.run_upkeep();
                        }
                    });
                if let Err(err) = started {
                    tracing::warn!(error = %err, "cannot start the metrics upkeep thread; histograms are folded only when scraped");
                }
                Some(handle)
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot install the Prometheus recorder; /_caje/metrics answers 503");
                None
            }
        })
        .clone()
}

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("caje_origin_seconds".into()), &ORIGIN_SECONDS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Prefix("caje_litefs_halt_".into()), &HALT_SECONDS)
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("caje_manifest_batch_rows".into()),
                &BATCH_ROWS,
            )
        })
        .expect("bucket lists are not empty")
}

/// HELP lines for what caje records, and the request counters at zero so that rates and the
/// hit ratio exist before the first request.
fn describe() {
    describe_counter!(
        "caje_requests_total",
        "Client requests by cache verdict: hit (fresh), stale (served stale, refreshed in the \
         background), miss (went to the origin, revalidations included), bypass (passed through)"
    );
    for verdict in VERDICTS {
        counter!("caje_requests_total", "cache" => verdict).increment(0);
    }
    describe_counter!(
        "caje_coalesced_requests_total",
        "Requests that waited for another request's origin fetch of the same key"
    );
    describe_counter!(
        "caje_stale_if_error_total",
        "Stale responses served because the origin failed (stale-if-error)"
    );
    describe_histogram!(
        "caje_origin_seconds",
        Unit::Seconds,
        "Time until an origin's response head, per origin"
    );
    describe_counter!("caje_cache_fills_total", "Responses stored in the cache");
    describe_counter!(
        "caje_connections_refused_total",
        "Client connections refused because [server] max_connections were open"
    );
    describe_counter!(
        "caje_connections_closed_total",
        "Client connections caje closed: no_request (no request head within \
         header_read_timeout), idle or stalled_reader (nothing moved for idle_timeout)"
    );
    describe_counter!(
        "caje_fills_abandoned_total",
        "Fills dropped because the origin body broke off, stalled or had the wrong length"
    );
    describe_counter!(
        "caje_cache_store_errors_total",
        "Failed cache file operations, by operation"
    );
    describe_counter!(
        "caje_cache_corrupt_entries_total",
        "Cache files that failed verification and were removed"
    );
    describe_counter!("caje_manifest_batches_total", "Manifest batches committed");
    describe_counter!("caje_manifest_rows_total", "Manifest rows committed");
    describe_histogram!(
        "caje_manifest_batch_rows",
        Unit::Count,
        "Rows per committed manifest batch"
    );
    describe_counter!(
        "caje_manifest_errors_total",
        "Failed manifest writes, by operation"
    );
    describe_counter!(
        "caje_manifest_retries_total",
        "Manifest batch attempts that repeated a failed one"
    );
    describe_counter!(
        "caje_manifest_dropped_total",
        "Manifest records dropped because the write queue was full or closed"
    );
    describe_counter!(
        "caje_manifest_coalesced_total",
        "Manifest records merged with a waiting record of the same key"
    );
    describe_counter!(
        "caje_requests_refused_total",
        "Requests refused before the cache, by reason (host: no origin serves the Host)"
    );
    describe_counter!(
        "caje_policy_calls_total",
        "Policy hook calls, by module and hook"
    );
    describe_counter!(
        "caje_policy_failures_total",
        "Policy hook failures (trap, timeout, invalid decision), by module and kind"
    );
    describe_histogram!(
        "caje_litefs_halt_wait_seconds",
        Unit::Seconds,
        "Time a replica waited for the LiteFS HALT lock before a manifest write"
    );
    describe_histogram!(
        "caje_litefs_halt_held_seconds",
        Unit::Seconds,
        "Time a manifest write held the LiteFS HALT lock"
    );
    describe_gauge!(
        "caje_manifest_queue_rows",
        "Manifest records waiting to be written"
    );
}

/// `GET /_caje/metrics`: the Prometheus text exposition of the process's metrics.
pub(super) fn scrape(admin: &Admin) -> Reply {
    match &admin.metrics {
        Some(handle) => reply::with_type(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            Body::full(handle.render()),
        ),
        None => reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not recorded on this node",
            "set [admin] metrics = true (if it is, another metrics recorder was installed in \
             this process first)",
        ),
    }
}

/// The request counters as health reports them.
#[derive(Debug, Clone, Default, Serialize)]
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

impl RequestCounts {
    /// Reads the counters from a rendered scrape.
    pub fn from_scrape(text: &str) -> RequestCounts {
        let verdict = |name| sample(text, "caje_requests_total", Some(("cache", name)));
        let (hit, stale, miss) = (verdict("hit"), verdict("stale"), verdict("miss"));
        let served = hit + stale;
        RequestCounts {
            hit,
            stale,
            miss,
            bypass: verdict("bypass"),
            coalesced: sample(text, "caje_coalesced_requests_total", None),
            hit_ratio: (served + miss > 0).then(|| served as f64 / (served + miss) as f64),
        }
    }
}

/// The sum of a counter's samples in Prometheus text, optionally only those with one label value.
fn sample(text: &str, name: &str, label: Option<(&str, &str)>) -> u64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once('}')?,
                None => ("", rest),
            };
            if !value.starts_with(' ') {
                return None;
            }
            let wanted = label.is_none_or(|(key, wanted)| {
                labels.split(',').any(|pair| {
                    pair.split_once('=')
                        .is_some_and(|(k, v)| k == key && v.trim_matches('"') == wanted)
                })
            });
            wanted.then(|| value.trim().parse::<f64>().ok())?
        })
        .map(|value| value as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_back_from_a_scrape() {
        let text = "# HELP caje_requests_total requests\n\
                    # TYPE caje_requests_total counter\n\
                    caje_requests_total{cache=\"hit\"} 6\n\
                    caje_requests_total{cache=\"miss\"} 2\n\
                    caje_requests_total{cache=\"stale\"} 2\n\
                    caje_requests_total_other{cache=\"hit\"} 99\n\
                    caje_coalesced_requests_total 3\n";
        let counts = RequestCounts::from_scrape(text);
        assert_eq!(
            (
                counts.hit,
                counts.miss,
                counts.stale,
                counts.bypass,
                counts.coalesced
            ),
            (6, 2, 2, 0, 3)
        );
        assert_eq!(counts.hit_ratio, Some(0.8));
        assert_eq!(RequestCounts::from_scrape("").hit_ratio, None);
    }
}
