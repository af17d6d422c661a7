//! Manifest writer throughput into a local SQLite file: the batched writer against the same
//! rows written one transaction per row (the peer), measured in the same run.
//!
//! `cargo bench -p caje --bench manifest_writer` (ROWS=n to change the row count).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use caje::key::Key;
use caje::manifest::{Manifest, ManifestConfig, ManifestRecord};

const ROUNDS: usize = 3;

fn url(i: usize) -> String {
    format!("https://shop.example/catalog/{}/item-{i}?lang=en", i % 97)
}

fn records(n: usize) -> Vec<ManifestRecord> {
    let now = SystemTime::now();
    (0..n)
        .map(|i| ManifestRecord {
            key: Key::for_url(&url(i), &[]),
            method: http::Method::GET,
            url: url(i),
            origin: "shop".into(),
            status: 200,
            size: 10_000 + i as u64,
            stored_at: now,
            expires_at: now + Duration::from_secs(300),
            tags: vec![format!("cat-{}", i % 97), "catalog".into()],
        })
        .collect()
}

/// Records every row, waits until all are committed; returns rows per second and the mean
/// cost of one `record` call.
async fn run(path: &Path, config: &ManifestConfig, rows: &[ManifestRecord]) -> (f64, Duration) {
    let manifest = Manifest::open(path, config).await.expect("open manifest");
    let started = Instant::now();
    for row in rows {
        manifest.record(row.clone());
    }
    let recording = started.elapsed();
    manifest.flush().await.expect("flush");
    let elapsed = started.elapsed();
    let stats = manifest.stats();
    assert_eq!(stats.written, rows.len() as u64, "{stats:?}");
    manifest.close().await.expect("close");
    (
        rows.len() as f64 / elapsed.as_secs_f64(),
        recording / rows.len() as u32,
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run either way.
    let n: usize = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let rows = records(n);
    let batched = ManifestConfig {
        node: Some("bench".into()),
        ..ManifestConfig::default()
    };
    let per_row = ManifestConfig {
        batch_max_rows: 1,
        ..batched.clone()
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");

    let (mut fast, mut slow, mut call) = (Vec::new(), Vec::new(), Duration::ZERO);
    for round in 0..ROUNDS {
        let (rate, per_call) = runtime.block_on(run(
            &dir.path().join(format!("batched-{round}.db")),
            &batched,
            &rows,
        ));
        fast.push(rate);
        call = call.max(per_call);
        let (rate, _) = runtime.block_on(run(
            &dir.path().join(format!("per-row-{round}.db")),
            &per_row,
            &rows,
        ));
        slow.push(rate);
    }
    let (fast, slow) = (median(fast), median(slow));
    println!(
        "manifest_writer: {n} rows into {} (median of {ROUNDS} rounds)",
        dir.path().display()
    );
    println!(
        "  batched writer (batch_max_rows = {}): {fast:>10.0} rows/s",
        batched.batch_max_rows
    );
    println!("  one transaction per row (peer):      {slow:>10.0} rows/s");
    println!(
        "  ratio batched / per-row:             {:>10.1}x",
        fast / slow
    );
    println!("  record() call incl. clone, worst mean: {call:>9.2?}");
}
