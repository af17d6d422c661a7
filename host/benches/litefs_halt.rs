//! Rows per second written from a LiteFS replica through HALT: many rows per HALT (how the
//! manifest writer batches) against one HALT per row, measured in the same run on a local
//! two-node cluster. Run with `cargo bench -p caje --bench litefs_halt`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use caje::litefs::{Database, LitefsConfig};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, SqliteConnection};
use support::litefs::{Cluster, wait_until};

const DB: &str = "bench.db";
const BATCH_ROWS: usize = 500;
const BATCHES: usize = 10;
const SINGLE_ROWS: usize = 200;
const WARM_UP: usize = 20;

fn main() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("start tokio");
    runtime.block_on(run(&cluster));
}

async fn run(cluster: &Cluster) {
    let on_a = cluster.primary().db_path(DB);
    let on_b = cluster.replica().db_path(DB);
    let mut primary = connect(&on_a, true).await;
    sqlx::query("CREATE TABLE entries (key TEXT PRIMARY KEY, stored_at INTEGER NOT NULL)")
        .execute(&mut primary)
        .await
        .expect("create the table");
    wait_until(
        "the database to reach the replica",
        Duration::from_secs(30),
        || on_b.exists(),
    );
    let litefs = Database::detect(&on_b, &LitefsConfig::default())
        .expect("detect LiteFS")
        .expect("the replica's mount is LiteFS");
    let mut replica = connect(&on_b, false).await;

    let mut next = 0;
    for _ in 0..WARM_UP {
        write_batch(&litefs, &mut replica, &mut next, 1).await;
    }

    let started = Instant::now();
    for _ in 0..SINGLE_ROWS {
        write_batch(&litefs, &mut replica, &mut next, 1).await;
    }
    let single = SINGLE_ROWS as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    for _ in 0..BATCHES {
        write_batch(&litefs, &mut replica, &mut next, BATCH_ROWS).await;
    }
    let batched = (BATCHES * BATCH_ROWS) as f64 / started.elapsed().as_secs_f64();

    let written = i64::try_from(next).expect("row count fits");
    let mut check = connect(&on_a, false).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM entries")
            .fetch_one(&mut check)
            .await
            .expect("count rows on the primary");
        if rows == written {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the primary has {rows} of {written} rows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!("LiteFS HALT from a replica (two local nodes, journal_mode=DELETE):");
    println!("  one HALT per row:            {single:>10.0} rows/s ({SINGLE_ROWS} rows)");
    println!(
        "  one HALT per {BATCH_ROWS} rows:        {batched:>10.0} rows/s ({} rows)",
        BATCHES * BATCH_ROWS
    );
    println!(
        "  batching / per row:          {:>10.1}x (target >= 50x)",
        batched / single
    );
}

async fn connect(path: &Path, create: bool) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Delete)
        .busy_timeout(Duration::from_secs(5));
    SqliteConnection::connect_with(&options)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// One HALT around one transaction of `rows` upserts.
async fn write_batch(
    litefs: &Database,
    conn: &mut SqliteConnection,
    next: &mut usize,
    rows: usize,
) {
    let halt = litefs.halt().await.expect("take HALT");
    let mut tx = conn.begin().await.expect("BEGIN");
    for _ in 0..rows {
        sqlx::query(
            "INSERT INTO entries (key, stored_at) VALUES (?, 0) \
             ON CONFLICT (key) DO UPDATE SET stored_at = excluded.stored_at",
        )
        .bind(format!("https://origin.test/{next}"))
        .execute(&mut *tx)
        .await
        .expect("upsert");
        *next += 1;
    }
    tx.commit().await.expect("COMMIT");
    halt.release().await.expect("release HALT");
}
