//! The manifest's SQLite file locked by another process, deleted, or overwritten with garbage
//! while caje runs: pages are still served (hits and misses), failed writes are counted,
//! retried and logged with the path and what to do, and the pending rows land once the file
//! is usable again. (`tests/admin/outage.rs` covers an immutable file and bad files at start.)

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use caje_testkit::{TestOrigin, eventually, eventually_async, get};

use crate::support::{self, Caje};

const MANIFEST: &str = "[manifest]\nbusy_timeout = \"200ms\"\nretry_min = \"50ms\"\n\
                        retry_max = \"400ms\"\nbatch_max_delay = \"20ms\"\n";

/// caje whose manifest already holds a row for `<prefix>0`.
async fn start_with_a_row(prefix: &str) -> (TestOrigin, tempfile::TempDir, Caje) {
    let origin = TestOrigin::cacheable().await;
    let dir = tempfile::tempdir().unwrap();
    let config = support::config(&origin.url(), "127.0.0.1:0", MANIFEST);
    let caje = Caje::start(dir.path(), &config).await;
    let first = format!("{prefix}0");
    get(&caje.url(&first)).await;
    rows_land(&caje, &[first]).await;
    (origin, dir, caje)
}

/// The paths of the URLs the manifest file holds rows for (read with the sqlite3 CLI).
fn rows(database: &Path) -> Vec<String> {
    let output = Command::new("sqlite3")
        .arg(database)
        .arg(".timeout 2000")
        .arg("SELECT url FROM entries ORDER BY url")
        .output()
        .expect("the sqlite3 CLI");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|url| Some(format!("/{}", url.split_once("//")?.1.split_once('/')?.1)))
        .collect()
}

async fn rows_land(caje: &Caje, paths: &[String]) {
    let database = caje.database();
    eventually(
        &format!("manifest rows for {paths:?}"),
        Duration::from_secs(20),
        || {
            let rows = rows(&database);
            paths.iter().all(|path| rows.contains(path))
        },
    )
    .await;
}

/// Misses and a hit are all served while the manifest is in trouble; returns the new paths.
async fn serve_through(caje: &Caje, prefix: &str, stored: &str) -> Vec<String> {
    let paths: Vec<String> = (1..=10).map(|n| format!("{prefix}{n}")).collect();
    for path in &paths {
        let reply = get(&caje.url(path)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.x_cache()),
            (200, "MISS"),
            "{path}"
        );
    }
    assert_eq!(get(&caje.url(stored)).await.x_cache(), "HIT");
    paths
}

/// Waits for the failure to show in health and metrics, and in one clear log line that
/// names the database and contains `hint`.
async fn failure_reported(caje: &Caje, hint: &str) {
    eventually_async("the failure to show", Duration::from_secs(10), || async {
        caje.health().await["ok"] == false
            && caje.metric("caje_manifest_retries_total").await >= 1.0
    })
    .await;
    let health = caje.health().await;
    assert!(
        health["problems"][0]
            .as_str()
            .unwrap()
            .contains("manifest writes are failing"),
        "{health}"
    );
    assert!(caje.metric("caje_manifest_errors_total").await >= 1.0);
    let warnings = caje.log_lines("manifest write failed");
    assert!(
        !warnings.is_empty() && warnings.len() <= 2,
        "rate-limited: {warnings:#?}"
    );
    let database = caje.database().display().to_string();
    assert!(
        warnings[0].contains(&database) && warnings[0].contains(hint),
        "names {database} and says what to do ({hint}): {}",
        warnings[0]
    );
}

async fn recovered(caje: &Caje) {
    eventually_async("health to be ok again", Duration::from_secs(10), || async {
        caje.health().await["ok"] == true
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_past_busy_timeout_is_retried_and_loses_no_row() {
    let (_origin, _dir, caje) = start_with_a_row("/lock/").await;

    let mut holder = Command::new("sqlite3")
        .arg(caje.database())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut commands = holder.stdin.take().unwrap();
    commands
        .write_all(b"BEGIN EXCLUSIVE;\nSELECT 'locked';\n")
        .unwrap();
    let mut said = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert_eq!(said.trim(), "locked");

    let paths = serve_through(&caje, "/lock/", "/lock/0").await;
    failure_reported(&caje, "busy_timeout").await;

    commands.write_all(b"COMMIT;\n.quit\n").unwrap();
    drop(commands);
    holder.wait().unwrap();
    rows_land(&caje, &paths).await;
    recovered(&caje).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_manifest_is_recreated_and_new_rows_land_in_it() {
    let (_origin, _dir, caje) = start_with_a_row("/gone/").await;

    std::fs::remove_file(caje.database()).unwrap();
    let paths = serve_through(&caje, "/gone/", "/gone/0").await;
    rows_land(&caje, &paths).await;
    assert!(
        !rows(&caje.database()).contains(&"/gone/0".to_owned()),
        "the deleted file's rows went with it"
    );
    recovered(&caje).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_overwritten_with_garbage_is_left_alone_and_rows_wait_for_a_usable_file() {
    let (_origin, dir, caje) = start_with_a_row("/junk/").await;

    let garbage = b"not a database: an operator's notes\n".repeat(200);
    let replacement = dir.path().join("garbage");
    std::fs::write(&replacement, &garbage).unwrap();
    std::fs::rename(&replacement, caje.database()).unwrap();
    let paths = serve_through(&caje, "/junk/", "/junk/0").await;
    failure_reported(&caje, "move the file away").await;
    assert_eq!(
        std::fs::read(caje.database()).unwrap(),
        garbage,
        "caje never overwrites a file it does not recognise"
    );

    // The operator moves it away: caje creates a new manifest and the kept rows land.
    std::fs::rename(caje.database(), dir.path().join("garbage.moved")).unwrap();
    rows_land(&caje, &paths).await;
    recovered(&caje).await;
}
