//! Manifest rows per second written from a LiteFS replica through HALT, by the real manifest
//! writer (`Manifest::record` + `flush`, the HALT gate caje uses): default batching against one
//! HALT per row (`batch_max_rows = 1`), interleaved rounds in the same run on a local two-node
//! cluster; plus how long one largest batch (10 000 rows) takes. Run with
//! `cargo bench -p caje --bench litefs_halt`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use caje::litefs::{Database, LitefsConfig};
use caje::manifest::{Manifest, ManifestConfig, ManifestRecord, OpenOptions};
use caje_testkit::litefs::Cluster;
use sqlx::{Connection, SqliteConnection};

const DB: &str = "bench.db";
const ROUNDS: usize = 3;
const SINGLE_ROWS: usize = 200;
const BATCHED_ROWS: usize = 5_000;
const LARGEST_BATCH: usize = 10_000;
const SETTLE: Duration = Duration::from_secs(60);

fn main() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("start tokio");
    runtime.block_on(run(&cluster));
}

/// Record `count` new rows, numbered from `next`.
fn record(manifest: &Manifest, next: &mut usize, count: usize) {
    let now = SystemTime::now();
    for _ in 0..count {
        let url = format!("https://bench.example/page/{next}");
        manifest.record(ManifestRecord {
            key: caje::key::Key::for_url(&url, &[]),
            method: http::Method::GET,
            url,
            origin: "bench".into(),
            status: 200,
            size: 4_096,
            stored_at: now,
            expires_at: now + Duration::from_secs(600),
            tags: vec!["bench".into()],
        });
        *next += 1;
    }
}

/// Opens a manifest on the replica the way caje does, writes `rows` rows through it and returns
/// rows per second (from the first `record` until `flush` returns) and the batches written.
async fn replica_rows_per_second(
    path: &Path,
    config: &ManifestConfig,
    next: &mut usize,
    rows: usize,
) -> (f64, u64) {
    let litefs = Database::detect(path, &LitefsConfig::default())
        .expect("detect LiteFS")
        .expect("the replica's mount is LiteFS");
    let role = litefs.role().await.expect("read the replica's role");
    assert!(!role.is_primary(), "{role}");
    let options = OpenOptions::for_litefs(litefs, role, SETTLE);
    let manifest = Manifest::open_with(path, config, options)
        .await
        .expect("open the manifest on the replica");
    let started = Instant::now();
    record(&manifest, next, rows);
    manifest.flush().await.expect("flush");
    let elapsed = started.elapsed();
    let stats = manifest.stats();
    assert_eq!(
        (stats.written, stats.failures),
        (rows as u64, 0),
        "{stats:?}"
    );
    manifest.close().await.expect("close");
    (rows as f64 / elapsed.as_secs_f64(), stats.batches)
}

async fn run(cluster: &Cluster) {
    let on_a = cluster.primary().db_path(DB);
    let on_b = cluster.replica().db_path(DB);
    let config = ManifestConfig {
        node: Some("replica".into()),
        ..ManifestConfig::default()
    };
    // The primary creates the schema, as the primary's caje does.
    Manifest::open(&on_a, &config)
        .await
        .expect("migrate on the primary")
        .close()
        .await
        .expect("close");
    let one_per_halt = ManifestConfig {
        batch_max_rows: 1,
        ..config.clone()
    };
    let largest = ManifestConfig {
        batch_max_rows: LARGEST_BATCH,
        ..config.clone()
    };

    let mut next = 0;
    let (mut single, mut batched) = (Vec::new(), Vec::new());
    let mut batches = 0;
    for _ in 0..ROUNDS {
        single.push(
            replica_rows_per_second(&on_b, &one_per_halt, &mut next, SINGLE_ROWS)
                .await
                .0,
        );
        let (rate, count) = replica_rows_per_second(&on_b, &config, &mut next, BATCHED_ROWS).await;
        batched.push(rate);
        batches += count;
    }
    let (largest_rate, largest_batches) =
        replica_rows_per_second(&on_b, &largest, &mut next, LARGEST_BATCH).await;
    assert_eq!(largest_batches, 1);
    wait_for_rows_on_primary(&on_a, next).await;

    let (single, batched) = (median(single), median(batched));
    let mean_batch = BATCHED_ROWS as f64 * ROUNDS as f64 / batches as f64;
    println!(
        "Manifest writes from a LiteFS replica through HALT (two local nodes, journal_mode=DELETE),"
    );
    println!("median of {ROUNDS} interleaved rounds, every row checked on the primary afterwards:");
    println!(
        "  one HALT per row (batch_max_rows = 1): {single:>9.0} rows/s ({SINGLE_ROWS} rows a round)"
    );
    println!(
        "  default batching (batch_max_rows = {}): {batched:>8.0} rows/s ({BATCHED_ROWS} rows a round, {mean_batch:.0} rows a batch on average)",
        config.batch_max_rows
    );
    println!(
        "  batching / one HALT per row:           {:>9.1}x (target >= 50x)",
        batched / single
    );
    println!(
        "  one {LARGEST_BATCH}-row batch (the largest allowed): {:.0} ms from record to flush",
        LARGEST_BATCH as f64 / largest_rate * 1000.0
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn wait_for_rows_on_primary(path: &Path, expected: usize) {
    let mut primary = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the primary's copy");
    let deadline = Instant::now() + SETTLE;
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM entries")
            .fetch_one(&mut primary)
            .await
            .expect("count rows on the primary");
        if rows == expected as i64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the primary has {rows} of {expected} rows"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
