//! Fleet warming, measured end to end with real nodes:
//!
//! - populate: one `POST /_caje/populate` pass fetching 1,000 manifest rows from a fast local
//!   origin, at concurrency 16 and at concurrency 1, interleaved rounds in the same run;
//! - propagation: from a client's miss on node A until node B answers the page from its cache
//!   (`Cache-Control: only-if-cached` requests every 5 ms; the misses are spread over B's
//!   polling cycle), with every setting at its default
//!   (manifest `batch_max_delay` 200 ms, populate `interval` 200 ms): A and B on a real two-node
//!   LiteFS cluster (A on the primary, B on the replica), and as the peer, A and B sharing one
//!   local SQLite file. The LiteFS part is skipped loudly without FUSE or Go.
//!
//! `cargo bench -p caje --bench fleet`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use caje_testkit::litefs::Cluster;
use caje_testkit::{TestNode, TestOrigin, get_with, send};
use http::{Request, StatusCode};
use http_body_util::Full;

const ROWS: usize = 1_000;
const POPULATE_ROUNDS: usize = 3;
const PAGES: usize = 40;
const HOST: &str = "cdn.test";
/// Longest wait for one page to reach node B.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(30);

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("error"))
        .try_init();
    let runtime = tokio::runtime::Runtime::new().expect("start tokio");
    let origin = runtime.block_on(TestOrigin::cacheable());
    runtime.block_on(populate(&origin));
    let plain = runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = dir.path().join("manifest.db");
        propagation(&origin, (&database, ""), (&database, "")).await
    });
    report_propagation("shared local SQLite file", &plain);
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let litefs = runtime.block_on(async {
        let tables = |node: &caje_testkit::litefs::Node| {
            format!(
                "[litefs]\nrequire = true\nhttp_addr = \"{}\"\n",
                node.http_addr()
            )
        };
        let (primary, replica) = (cluster.primary(), cluster.replica());
        propagation(
            &origin,
            (&primary.db_path("manifest.db"), &tables(primary)),
            (&replica.db_path("manifest.db"), &tables(replica)),
        )
        .await
    });
    report_propagation("LiteFS, A on the primary, B on the replica", &litefs);
    println!(
        "propagation median LiteFS / shared local file: {:.2}",
        median(&litefs) / median(&plain)
    );
}

async fn populate(origin: &TestOrigin) {
    let a = TestNode::start_with(&origin.url(), "[populate]\nenabled = false").await;
    let a = Arc::new(a);
    let mut filling = tokio::task::JoinSet::new();
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(ROWS / 20) {
        let (a, chunk) = (Arc::clone(&a), chunk.to_vec());
        filling.spawn(async move {
            for i in chunk {
                let reply = get_with(&a.url(&format!("/rows/{i}")), &[("host", HOST)]).await;
                assert_eq!(reply.status, StatusCode::OK);
            }
        });
    }
    filling.join_all().await;
    let manifest = a.node().context.manifest.as_ref().expect("manifest");
    manifest.flush().await.expect("flush the manifest");
    let mut timings: Vec<(usize, Vec<f64>)> = vec![(16, Vec::new()), (1, Vec::new())];
    for _ in 0..POPULATE_ROUNDS {
        for (concurrency, seconds) in &mut timings {
            let b = TestNode::start_with_database(
                &origin.url(),
                &a.config.database,
                &format!("[populate]\nenabled = false\nconcurrency = {concurrency}"),
            )
            .await;
            let started = Instant::now();
            let reply = send(
                Request::post(b.url("/_caje/populate"))
                    .body(Full::default())
                    .expect("valid request"),
            )
            .await;
            seconds.push(started.elapsed().as_secs_f64());
            let report: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
            assert_eq!(report["fetched"], ROWS, "{report}");
            let mut b = b;
            b.stop().await;
        }
    }
    println!(
        "populate: {ROWS} rows from a local origin, median of {POPULATE_ROUNDS} interleaved rounds"
    );
    for (concurrency, seconds) in &timings {
        println!(
            "  concurrency {concurrency:>2}: {:.3} s ({:.0} rows/s)",
            median(seconds),
            ROWS as f64 / median(seconds)
        );
    }
    println!(
        "  concurrency 16 / concurrency 1 time: {:.2}",
        median(&timings[0].1) / median(&timings[1].1)
    );
}

/// Seconds from A's miss until B answers from its cache, page by page: each node on its
/// database path (the same file, or the two mounts of one LiteFS database) with its extra config.
async fn propagation(
    origin: &TestOrigin,
    (database_a, extra_a): (&Path, &str),
    (database_b, extra_b): (&Path, &str),
) -> Vec<f64> {
    let mut a = TestNode::start_with_database(&origin.url(), database_a, extra_a).await;
    let mut b = TestNode::start_with_database(&origin.url(), database_b, extra_b).await;
    let mut seconds = Vec::with_capacity(PAGES);
    for i in 0..PAGES {
        // Misses one after another would fall at the same point of B's polling cycle each
        // time: spread them over it.
        tokio::time::sleep(Duration::from_millis((i as u64 * 37) % 200)).await;
        let path = format!("/spread/{i}");
        let started = Instant::now();
        let miss = get_with(&a.url(&path), &[("host", HOST)]).await;
        assert_eq!(miss.x_cache(), "MISS");
        loop {
            let cached = get_with(
                &b.url(&path),
                &[("host", HOST), ("cache-control", "only-if-cached")],
            )
            .await;
            if cached.status == StatusCode::OK {
                assert_eq!(cached.x_cache(), "HIT");
                break;
            }
            assert!(
                started.elapsed() < PROPAGATION_LIMIT,
                "{path} did not reach node B within {PROPAGATION_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seconds.push(started.elapsed().as_secs_f64());
    }
    b.stop().await;
    a.stop().await;
    seconds
}

fn report_propagation(setup: &str, seconds: &[f64]) {
    let mut sorted = seconds.to_vec();
    sorted.sort_by(f64::total_cmp);
    let p90 = sorted[(sorted.len() * 9 / 10).min(sorted.len() - 1)];
    println!(
        "propagation, {setup}: median {:.0} ms, p90 {:.0} ms, max {:.0} ms over {} pages",
        median(seconds) * 1000.0,
        p90 * 1000.0,
        sorted[sorted.len() - 1] * 1000.0,
        seconds.len()
    );
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
