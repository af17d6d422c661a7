//! Prometheus metrics: the process-wide recorder (installed once, shared by every node in the
//! process), its histogram buckets and descriptions, and `GET /_caje/metrics`.
//!
//! The request counters are copied in from their atomics (`request_counts`) when scraped.

use std::sync::OnceLock;
use std::time::Duration;

use http::StatusCode;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::Admin;
use super::reply::{self, Reply};
use crate::body::Body;
use crate::request_counts;

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
    request_counts::publish();
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
        "caje_responses_not_stored_total",
        "Origin responses to cacheable requests that were not stored, by reason (the \
         `Cache-Status` detail: no-store, private, policy, too-large, …)"
    );
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
        Some(handle) => {
            request_counts::publish();
            reply::with_type(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                Body::full(handle.render()),
            )
        }
        None => reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not recorded on this node",
            "set [admin] metrics = true (if it is, another metrics recorder was installed in \
             this process first)",
        ),
    }
}
