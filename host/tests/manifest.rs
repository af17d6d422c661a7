//! The manifest against real SQLite files: batching, upserts, paging, purges, open errors,
//! outages (immutable files, which stop even root) and the write gate.

use std::collections::BTreeSet;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caje::key::Key;
use caje::manifest::{
    GatePass, JournalMode, ListOrder, ListQuery, Manifest, ManifestConfig, ManifestError,
    ManifestRecord, ManifestRow, OpenOptions, PurgedRow, SchemaMode, Selector, WriteGate,
};
use caje::purge_mode::PurgeMode;
use caje_testkit::Immutable;
use futures_util::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};
use tempfile::TempDir;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::time::timeout;

/// Generous upper bound for anything that should happen: tests wait on events, not on time.
const WAIT: Duration = Duration::from_secs(30);

fn config() -> ManifestConfig {
    ManifestConfig {
        node: Some("test-node".into()),
        batch_max_delay: Duration::from_millis(5),
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
        ..ManifestConfig::default()
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// The key these tests give the row they call `label`.
fn key(label: &str) -> Key {
    Key::for_url(&format!("test:{label}"), &[])
}

fn rec(label: &str, url: &str, stored: u64, tags: &[&str]) -> ManifestRecord {
    ManifestRecord {
        key: key(label),
        method: http::Method::GET,
        url: url.into(),
        origin: "demo".into(),
        status: 200,
        size: stored,
        stored_at: at(stored),
        expires_at: at(stored + 60),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

/// Records rows `{prefix}{n:03}` at `{url}{n:03}`, stored at second `n`, for `n` in `numbers`.
fn record_numbered(
    manifest: &Manifest,
    prefix: &str,
    url: &str,
    numbers: Range<u64>,
    tags: &[&str],
) {
    for n in numbers {
        manifest.record(rec(
            &format!("{prefix}{n:03}"),
            &format!("{url}{n:03}"),
            n,
            tags,
        ));
    }
}

struct Fixture {
    dir: TempDir,
    path: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("manifest.db");
    Fixture { dir, path }
}

async fn open(path: &Path, config: &ManifestConfig) -> Manifest {
    Manifest::open(path, config).await.expect("open manifest")
}

async fn flushed(manifest: &Manifest) {
    timeout(WAIT, manifest.flush())
        .await
        .expect("flush did not finish")
        .expect("flush failed");
}

/// Every row, walking the pages of a URL-ordered listing.
async fn all_rows(manifest: &Manifest, include_stale: bool) -> Vec<ManifestRow> {
    collect(
        manifest,
        ListQuery {
            order: ListOrder::Url,
            include_stale,
            limit: Some(7),
            ..ListQuery::default()
        },
    )
    .await
}

async fn collect(manifest: &Manifest, mut query: ListQuery) -> Vec<ManifestRow> {
    let mut rows = Vec::new();
    for _ in 0..10_000 {
        let page = manifest.list(&query).await.expect("list");
        assert!(page.rows.len() <= query.limit.unwrap_or(100) as usize);
        rows.extend(page.rows);
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return rows,
        }
    }
    panic!("listing did not end");
}

fn keys_of(rows: &[ManifestRow]) -> BTreeSet<Key> {
    rows.iter().map(|r| r.record.key.clone()).collect()
}

fn purged_keys(rows: &[PurgedRow]) -> BTreeSet<Key> {
    rows.iter().map(|r| r.key.clone()).collect()
}

fn set(labels: &[&str]) -> BTreeSet<Key> {
    labels.iter().map(|label| key(label)).collect()
}

/// Polls `check` until it holds; panics after [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn recorded_rows_appear_after_flush() {
    let f = fixture();
    let manifest = open(&f.path, &config()).await;
    let before = manifest.change_seq().await.unwrap();
    manifest.record(rec("k1", "https://a.example/1", 1, &["t"]));
    manifest.record(rec("k2", "https://a.example/2", 2, &[]));
    flushed(&manifest).await;

    let row = manifest.get(&key("k1")).await.unwrap().expect("k1 stored");
    assert_eq!(
        (
            row.record.method.as_str(),
            row.record.url.as_str(),
            row.record.origin.as_str()
        ),
        ("GET", "https://a.example/1", "demo")
    );
    assert_eq!((row.record.status, row.record.size), (200, 1));
    assert_eq!(
        (row.record.stored_at, row.record.expires_at),
        (at(1), at(61))
    );
    assert_eq!((row.node.as_str(), row.stale_since), ("test-node", None));
    assert_eq!(row.record.tags, ["t"]);
    assert!(row.change_seq > before);
    assert!(manifest.get(&key("k2")).await.unwrap().is_some());
    assert!(manifest.get(&key("k3")).await.unwrap().is_none());

    let stats = manifest.stats();
    assert_eq!((stats.recorded, stats.written, stats.queued), (2, 2, 0));
    assert_eq!(
        (stats.failures, stats.dropped, stats.last_error),
        (0, 0, None)
    );
    assert!(manifest.change_seq().await.unwrap() > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_row_per_key_with_the_newest_values_across_tasks_and_reopen() {
    let f = fixture();
    let manifest = open(&f.path, &config()).await;
    let tasks: Vec<_> = (0..16u64)
        .map(|task| {
            let manifest = manifest.clone();
            tokio::spawn(async move {
                for i in 0..50u64 {
                    let key = format!("k{}", i % 5);
                    // Every record has its own time; the newest per key is 750..=799.
                    let stored = i * 16 + task;
                    manifest.record(rec(&key, &format!("https://a.example/{key}"), stored, &[]));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    flushed(&manifest).await;

    let rows = all_rows(&manifest, true).await;
    assert_eq!(keys_of(&rows), set(&["k0", "k1", "k2", "k3", "k4"]));
    for row in &rows {
        let k: u64 = row.record.url["https://a.example/k".len()..]
            .parse()
            .unwrap();
        let newest = (0..800u64).filter(|s| (s / 16) % 5 == k).max().unwrap();
        assert_eq!(row.record.stored_at, at(newest), "{}", row.record.key);
        assert_eq!(row.record.size, newest);
    }
    assert_eq!(manifest.stats().recorded, 800);
    manifest.close().await.unwrap();

    let reopened = open(&f.path, &config()).await;
    reopened.record(rec("k0", "https://a.example/old", 3, &[]));
    reopened.record(rec("k1", "https://a.example/new", 5_000, &[]));
    flushed(&reopened).await;
    let rows = all_rows(&reopened, true).await;
    assert_eq!(rows.len(), 5);
    let k0 = reopened.get(&key("k0")).await.unwrap().unwrap();
    assert_eq!(
        k0.record.url, "https://a.example/k0",
        "an older record must not replace a newer row"
    );
    let k1 = reopened.get(&key("k1")).await.unwrap().unwrap();
    assert_eq!(
        (k1.record.url.as_str(), k1.record.stored_at),
        ("https://a.example/new", at(5_000))
    );
}

#[tokio::test]
async fn list_pages_in_every_order_with_prefix_and_change_filters() {
    let f = fixture();
    let manifest = open(&f.path, &config()).await;
    record_numbered(&manifest, "a", "https://a.example/x/", 0..15, &[]);
    record_numbered(&manifest, "b", "https://b.example/", 100..110, &[]);
    flushed(&manifest).await;

    for order in [ListOrder::Newest, ListOrder::Url, ListOrder::Changed] {
        let query = ListQuery {
            order,
            limit: Some(4),
            ..ListQuery::default()
        };
        let rows = collect(&manifest, query).await;
        assert_eq!(rows.len(), 25, "{order:?}");
        assert_eq!(
            keys_of(&rows).len(),
            25,
            "{order:?}: a row was listed twice"
        );
        let sorted = rows.windows(2).all(|w| match order {
            ListOrder::Newest => {
                (w[0].record.stored_at, &w[0].record.key)
                    > (w[1].record.stored_at, &w[1].record.key)
            }
            ListOrder::Url => {
                (&w[0].record.url, &w[0].record.key) < (&w[1].record.url, &w[1].record.key)
            }
            ListOrder::Changed => {
                (w[0].change_seq, &w[0].record.key) < (w[1].change_seq, &w[1].record.key)
            }
        });
        assert!(sorted, "{order:?} order not kept across pages");
    }

    let newest = manifest.list(&ListQuery::default()).await.unwrap();
    assert_eq!(newest.rows[0].record.key, key("b109"));
    assert!(newest.next.is_none());

    let prefixed = collect(
        &manifest,
        ListQuery {
            prefix: Some("https://a.example/x/01".into()),
            limit: Some(2),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(
        keys_of(&prefixed),
        set(&["a010", "a011", "a012", "a013", "a014"])
    );
    let none = manifest
        .list(&ListQuery {
            prefix: Some("https://c.example/".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert!(none.rows.is_empty() && none.next.is_none());

    let seq = manifest.change_seq().await.unwrap();
    manifest.record(rec("a003", "https://a.example/x/003", 500, &[]));
    manifest.record(rec("c00", "https://c.example/00", 501, &[]));
    flushed(&manifest).await;
    let changed = collect(
        &manifest,
        ListQuery {
            order: ListOrder::Changed,
            changed_after: Some(seq),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(keys_of(&changed), set(&["a003", "c00"]));

    let url_page = manifest
        .list(&ListQuery {
            order: ListOrder::Url,
            limit: Some(3),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let foreign = ListQuery {
        order: ListOrder::Newest,
        cursor: url_page.next,
        ..ListQuery::default()
    };
    let err = manifest.list(&foreign).await.unwrap_err();
    assert!(matches!(err, ManifestError::BadCursor(_)), "{err}");
    let forged = ListQuery {
        cursor: Some("not-a-cursor".into()),
        ..ListQuery::default()
    };
    assert!(matches!(
        manifest.list(&forged).await,
        Err(ManifestError::BadCursor(_))
    ));
}

#[tokio::test]
async fn purge_by_url_prefix_and_tag_hits_exactly_the_right_rows() {
    let f = fixture();
    let manifest = open(&f.path, &config()).await;
    manifest.record(rec("a", "https://s.example/news/1", 1, &["news", "front"]));
    manifest.record(rec("a-br", "https://s.example/news/1", 2, &["news"]));
    manifest.record(rec(
        "b",
        "https://s.example/news/2",
        3,
        &["front", "sports"],
    ));
    manifest.record(rec("c", "https://s.example/sports/1", 4, &["sports"]));
    manifest.record(rec("d", "https://s.example/about", 5, &[]));
    manifest.record(rec("e", "https://t.example/news/1", 6, &["news"]));
    flushed(&manifest).await;

    let front = manifest.keys(&Selector::Tag("front".into())).await.unwrap();
    assert_eq!(front.into_iter().collect::<BTreeSet<_>>(), set(&["a", "b"]));
    let by_tag = manifest
        .purge(&Selector::Tag("front".into()), PurgeMode::Hard)
        .await
        .unwrap();
    assert_eq!(purged_keys(&by_tag), set(&["a", "b"]));
    assert_eq!(
        keys_of(&all_rows(&manifest, true).await),
        set(&["a-br", "c", "d", "e"])
    );
    assert_eq!(
        manifest
            .keys(&Selector::Tag("sports".into()))
            .await
            .unwrap(),
        [key("c")],
        "the tags of purged rows go with them"
    );

    let by_url = manifest
        .purge(
            &Selector::Url("https://s.example/news/1".into()),
            PurgeMode::Hard,
        )
        .await
        .unwrap();
    assert_eq!(
        by_url,
        [PurgedRow {
            key: key("a-br"),
            method: http::Method::GET,
            url: "https://s.example/news/1".into(),
            node: "test-node".into(),
        }]
    );

    let by_prefix = manifest
        .purge(
            &Selector::Prefix("https://s.example/".into()),
            PurgeMode::Hard,
        )
        .await
        .unwrap();
    assert_eq!(purged_keys(&by_prefix), set(&["c", "d"]));
    assert_eq!(keys_of(&all_rows(&manifest, true).await), set(&["e"]));

    let by_key = manifest
        .purge(&Selector::Key(key("e")), PurgeMode::Hard)
        .await
        .unwrap();
    assert_eq!(purged_keys(&by_key), set(&["e"]));
    assert!(
        manifest
            .purge(&Selector::Tag("news".into()), PurgeMode::Hard)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn purge_sees_records_queued_before_it() {
    let f = fixture();
    let manifest = open(
        &f.path,
        &ManifestConfig {
            batch_max_delay: Duration::from_secs(3600),
            ..config()
        },
    )
    .await;
    manifest.record(rec("a", "https://s.example/a", 1, &["x"]));
    let purged = manifest
        .purge(&Selector::Tag("x".into()), PurgeMode::Hard)
        .await
        .unwrap();
    assert_eq!(purged_keys(&purged), set(&["a"]));
    assert!(manifest.get(&key("a")).await.unwrap().is_none());
}

#[tokio::test]
async fn soft_purge_marks_rows_stale_and_a_newer_store_revives_them() {
    let f = fixture();
    let manifest = open(&f.path, &config()).await;
    let now = SystemTime::now().duration_since(at(0)).unwrap().as_secs();
    manifest.record(rec("a", "https://s.example/a", 1, &["x"]));
    manifest.record(rec("b", "https://s.example/b", 2, &["x"]));
    manifest.record(rec("c", "https://s.example/c", 3, &[]));
    flushed(&manifest).await;
    let before = manifest.change_seq().await.unwrap();

    let touched = manifest
        .purge(&Selector::Tag("x".into()), PurgeMode::Soft)
        .await
        .unwrap();
    assert_eq!(purged_keys(&touched), set(&["a", "b"]));
    let a = manifest
        .get(&key("a"))
        .await
        .unwrap()
        .expect("a soft purge keeps the row");
    assert!(a.stale_since.is_some());
    assert_eq!(a.record.tags, ["x"]);
    assert_eq!(keys_of(&all_rows(&manifest, false).await), set(&["c"]));
    assert_eq!(
        keys_of(&all_rows(&manifest, true).await),
        set(&["a", "b", "c"])
    );

    // A record stored before the purge (a late replay) leaves the row stale;
    // one stored after it revives the row.
    manifest.record(rec("a", "https://s.example/a", 1, &["x"]));
    manifest.record(rec("b", "https://s.example/b", now + 10, &["y"]));
    flushed(&manifest).await;
    assert!(
        manifest
            .get(&key("a"))
            .await
            .unwrap()
            .unwrap()
            .stale_since
            .is_some()
    );
    let b = manifest.get(&key("b")).await.unwrap().unwrap();
    assert_eq!(
        (b.stale_since, b.record.tags),
        (None, vec!["y".to_string()])
    );

    let log = manifest.purges_since(before, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].selector, Some(Selector::Tag("x".into())));
    assert_eq!(log[0].mode, PurgeMode::Soft);
    assert_eq!((log[0].rows, log[0].node.as_str()), (2, "test-node"));
    assert!(log[0].change_seq > before);
    assert!(
        manifest
            .purges_since(log[0].change_seq, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn clear_removes_every_row_and_is_logged() {
    let f = fixture();
    let manifest = open(&f.path, &config()).await;
    record_numbered(&manifest, "k", "https://s.example/", 0..12, &["t"]);
    flushed(&manifest).await;
    assert_eq!(manifest.clear().await.unwrap(), 12);
    assert!(all_rows(&manifest, true).await.is_empty());
    assert!(
        manifest
            .keys(&Selector::Tag("t".into()))
            .await
            .unwrap()
            .is_empty()
    );
    let log = manifest.purges_since(0, 10).await.unwrap();
    assert_eq!(
        (log.len(), log[0].selector.clone(), log[0].rows),
        (1, None, 12)
    );
    assert_eq!(manifest.clear().await.unwrap(), 0);
}

#[tokio::test]
async fn prefix_and_tag_purges_list_their_pages_for_other_nodes_and_name_their_session() {
    let f = fixture();
    let manifest = open(&f.path, &config()).await;
    record_numbered(&manifest, "p", "https://s.example/p/", 0..1500, &[]);
    manifest.record(rec("t1", "https://s.example/t/1", 1, &["red"]));
    manifest.record(rec("t2", "https://s.example/t/2", 2, &["red", "blue"]));
    manifest.record(rec("u", "https://s.example/u", 3, &["red"]));
    flushed(&manifest).await;
    manifest
        .purge(
            &Selector::Prefix("https://s.example/p/".into()),
            PurgeMode::Hard,
        )
        .await
        .unwrap();
    manifest
        .purge(&Selector::Tag("red".into()), PurgeMode::Soft)
        .await
        .unwrap();
    manifest
        .purge(
            &Selector::Url("https://s.example/u".into()),
            PurgeMode::Hard,
        )
        .await
        .unwrap();
    let log = manifest.purges_since(0, 10).await.unwrap();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|entry| entry.session == manifest.session()));

    // The prefix purge's 1500 pages come back in pages, each row once.
    let mut urls = BTreeSet::new();
    let mut after = None;
    for _ in 0..10 {
        let page = manifest
            .purged_pages(log[0].change_seq, after, 1000)
            .await
            .unwrap();
        assert!(page.rows.len() <= 1000);
        urls.extend(page.rows.into_iter().map(|row| row.url));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(urls.len(), 1500);
    assert!(
        urls.iter()
            .all(|url| url.starts_with("https://s.example/p/"))
    );
    let tagged = manifest
        .purged_pages(log[1].change_seq, None, 1000)
        .await
        .unwrap();
    assert_eq!(purged_keys(&tagged.rows), set(&["t1", "t2", "u"]));
    assert_eq!(tagged.next, None);
    // A URL purge names its page itself.
    let url = manifest
        .purged_pages(log[2].change_seq, None, 1000)
        .await
        .unwrap();
    assert!(url.rows.is_empty());

    // Another handle on the same file logs with another session; the instance is the file's.
    let other = open(&f.path, &config()).await;
    assert_ne!(other.session(), manifest.session());
    assert_eq!(
        other.instance().await.unwrap(),
        manifest.instance().await.unwrap()
    );
    other.clear().await.unwrap();
    let clear = manifest.purges_since(log[2].change_seq, 10).await.unwrap();
    assert_eq!(clear[0].session, other.session());
    let replaced = fixture();
    let fresh = open(&replaced.path, &config()).await;
    assert_ne!(
        fresh.instance().await.unwrap(),
        manifest.instance().await.unwrap()
    );
}

#[tokio::test]
async fn an_upsert_replaces_the_tags() {
    let f = fixture();
    let manifest = open(&f.path, &config()).await;
    manifest.record(rec("k", "https://s.example/k", 1, &["a", "b"]));
    flushed(&manifest).await;
    manifest.record(rec("k", "https://s.example/k", 2, &["c", "b", "c"]));
    flushed(&manifest).await;
    assert_eq!(
        manifest.get(&key("k")).await.unwrap().unwrap().record.tags,
        ["b", "c"]
    );
    assert!(
        manifest
            .keys(&Selector::Tag("a".into()))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        manifest.keys(&Selector::Tag("c".into())).await.unwrap(),
        [key("k")]
    );
}

fn assert_open_error(err: ManifestError, path: &Path, says: &str) {
    let text = err.to_string();
    assert!(matches!(err, ManifestError::Open { .. }), "{text}");
    assert!(
        text.contains(&path.display().to_string()),
        "names the path: {text}"
    );
    assert!(text.contains(says), "says {says:?}: {text}");
    assert!(text.contains("hint:"), "says what to do: {text}");
}

#[tokio::test]
async fn open_explains_files_and_places_it_cannot_use() {
    let f = fixture();
    let garbage = f.dir.path().join("garbage.db");
    std::fs::write(
        &garbage,
        "this is not a database, it is a long enough text file",
    )
    .unwrap();
    let err = Manifest::open(&garbage, &config()).await.err().unwrap();
    assert_open_error(err, &garbage, "not a SQLite database");
    assert!(
        std::fs::read(&garbage).unwrap().starts_with(b"this is not"),
        "left untouched"
    );

    let err = Manifest::open(f.dir.path(), &config()).await.err().unwrap();
    assert_open_error(err, f.dir.path(), "directory");

    let under_file = garbage.join("sub").join("manifest.db");
    let err = Manifest::open(&under_file, &config()).await.err().unwrap();
    assert_open_error(err, &under_file, "cannot create its directory");

    let existing = f.dir.path().join("existing.db");
    open(&existing, &config()).await.close().await.unwrap();
    let locked_dir = f.dir.path().join("locked");
    std::fs::create_dir(&locked_dir).unwrap();
    let fresh = locked_dir.join("manifest.db");
    let _immutable = Immutable::set(&[&existing, &locked_dir]);

    let err = Manifest::open(&existing, &config()).await.err().unwrap();
    assert_open_error(err, &existing, "read-only");
    let err = Manifest::open(&fresh, &config()).await.err().unwrap();
    assert_open_error(err, &fresh, "cannot be opened or written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_never_fails_callers_and_every_row_lands_after_recovery() {
    let f = fixture();
    let manifest = open(&f.path, &config()).await;
    manifest.record(rec("before", "https://s.example/before", 1, &[]));
    flushed(&manifest).await;

    let outage = Immutable::set(&[&f.path, f.path.parent().unwrap()]);
    record_numbered(&manifest, "k", "https://s.example/", 0..200, &["t"]);
    eventually("writes have failed and been retried", || {
        let stats = manifest.stats();
        stats.failures >= 3 && stats.retries >= 2
    })
    .await;
    let stats = manifest.stats();
    assert_eq!((stats.recorded, stats.dropped, stats.written), (201, 0, 1));
    assert_eq!(stats.queued, 200);
    assert!(stats.last_error.is_some());
    assert!(
        timeout(Duration::from_millis(200), manifest.flush())
            .await
            .is_err(),
        "a flush cannot finish while the file is unwritable"
    );
    assert_eq!(
        all_rows(&manifest, true).await.len(),
        1,
        "reads keep working"
    );
    manifest.record(rec("k007", "https://s.example/007", 1_000, &["newer"]));

    drop(outage);
    flushed(&manifest).await;
    let rows = all_rows(&manifest, true).await;
    assert_eq!(rows.len(), 201);
    assert_eq!(
        manifest
            .get(&key("k007"))
            .await
            .unwrap()
            .unwrap()
            .record
            .tags,
        ["newer"]
    );
    let stats = manifest.stats();
    assert_eq!((stats.recorded, stats.written, stats.queued), (202, 201, 0));
    assert_eq!(stats.last_error, None);
}

#[tokio::test]
async fn a_removed_file_is_recreated_and_the_rows_land_in_it() {
    for mode in [JournalMode::Delete, JournalMode::Wal] {
        let f = fixture();
        let config = ManifestConfig {
            journal_mode: mode,
            ..config()
        };
        let manifest = open(&f.path, &config).await;
        manifest.record(rec("old", "https://s.example/old", 1, &[]));
        flushed(&manifest).await;

        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", f.path.display()));
            if suffix.is_empty() || mode == JournalMode::Wal {
                std::fs::remove_file(&file).unwrap();
            }
        }
        manifest.record(rec("new", "https://s.example/new", 2, &[]));
        flushed(&manifest).await;
        assert!(f.path.exists(), "{mode:?}");
        assert!(
            manifest.get(&key("new")).await.unwrap().is_some(),
            "{mode:?}: reads follow the new file"
        );
        assert!(
            manifest.get(&key("old")).await.unwrap().is_none(),
            "{mode:?}"
        );

        let other = open(&f.path, &config).await;
        assert_eq!(
            keys_of(&all_rows(&other, true).await),
            set(&["new"]),
            "{mode:?}"
        );
    }
}

/// A gate a test can close, make fail, and count passes through, as the LiteFS HALT lock will.
#[derive(Default)]
struct TestGate {
    lock: Arc<Mutex<()>>,
    failing: AtomicBool,
    entries: AtomicUsize,
    exits: Arc<AtomicUsize>,
}

struct TestPass {
    _held: OwnedMutexGuard<()>,
    exits: Arc<AtomicUsize>,
}

impl Drop for TestPass {
    fn drop(&mut self) {
        self.exits.fetch_add(1, Ordering::SeqCst);
    }
}

impl WriteGate for TestGate {
    fn enter(&self) -> BoxFuture<'_, io::Result<GatePass>> {
        Box::pin(async {
            let held = Arc::clone(&self.lock).lock_owned().await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(io::Error::other("halt lock timed out"));
            }
            self.entries.fetch_add(1, Ordering::SeqCst);
            let exits = Arc::clone(&self.exits);
            Ok(Box::new(TestPass { _held: held, exits }) as GatePass)
        })
    }
}

async fn open_gated(path: &Path, config: &ManifestConfig, gate: &Arc<TestGate>) -> Manifest {
    let options = OpenOptions {
        gate: Arc::clone(gate) as Arc<dyn WriteGate>,
        schema: SchemaMode::Migrate,
    };
    Manifest::open_with(path, config, options)
        .await
        .expect("open manifest")
}

#[tokio::test]
async fn the_write_gate_is_entered_once_per_batch_and_admin_write() {
    let f = fixture();
    let gate = Arc::new(TestGate::default());
    let manifest = open_gated(
        &f.path,
        &ManifestConfig {
            batch_max_rows: 4,
            ..config()
        },
        &gate,
    )
    .await;
    assert_eq!(
        gate.entries.load(Ordering::SeqCst),
        1,
        "open migrates inside the gate"
    );

    let closed = Arc::clone(&gate.lock).lock_owned().await;
    record_numbered(&manifest, "k", "https://s.example/", 0..10, &[]);
    eventually("the writer waits at the gate", || {
        manifest.stats().queued == 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        manifest.stats().written,
        0,
        "nothing is written around the gate"
    );
    drop(closed);

    flushed(&manifest).await;
    assert_eq!(all_rows(&manifest, true).await.len(), 10);
    let stats = manifest.stats();
    assert_eq!(stats.batches, 3, "10 rows in batches of at most 4");
    assert_eq!(gate.entries.load(Ordering::SeqCst), 1 + 3);

    manifest
        .purge(&Selector::Key(key("k001")), PurgeMode::Hard)
        .await
        .unwrap();
    manifest.clear().await.unwrap();
    assert_eq!(gate.entries.load(Ordering::SeqCst), 1 + 3 + 2);
    assert_eq!(
        gate.exits.load(Ordering::SeqCst),
        gate.entries.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_failing_gate_is_retried_like_a_failing_disk() {
    let f = fixture();
    let gate = Arc::new(TestGate::default());
    let manifest = open_gated(&f.path, &config(), &gate).await;
    gate.failing.store(true, Ordering::SeqCst);
    manifest.record(rec("k", "https://s.example/k", 1, &[]));
    eventually("the gate failure was retried", || {
        manifest.stats().retries >= 2
    })
    .await;
    let error = manifest.stats().last_error.unwrap();
    assert!(error.contains("halt lock timed out"), "{error}");

    let err = manifest.clear().await.unwrap_err();
    assert!(
        err.to_string().contains("halt lock timed out"),
        "admin writes report it: {err}"
    );

    gate.failing.store(false, Ordering::SeqCst);
    flushed(&manifest).await;
    assert!(manifest.get(&key("k")).await.unwrap().is_some());
    assert_eq!(manifest.stats().last_error, None);
}

#[tokio::test]
async fn a_full_queue_drops_new_keys_but_keeps_coalescing() {
    let f = fixture();
    let gate = Arc::new(TestGate::default());
    let small = ManifestConfig {
        queue_max_rows: 10,
        batch_max_rows: 5,
        ..config()
    };
    let manifest = open_gated(&f.path, &small, &gate).await;
    let closed = Arc::clone(&gate.lock).lock_owned().await;
    record_numbered(&manifest, "k", "https://s.example/", 0..100, &[]);
    for i in 0..20 {
        manifest.record(rec("k000", "https://s.example/000", 1_000 + i, &[]));
    }
    let stats = manifest.stats();
    assert!(stats.dropped >= 85, "{stats:?}");
    assert_eq!(stats.recorded + stats.dropped, 120, "{stats:?}");
    assert!(stats.queued <= 15, "memory stays bounded: {stats:?}");
    drop(closed);

    flushed(&manifest).await;
    let rows = all_rows(&manifest, true).await;
    assert_eq!(rows.len() as u64, 100 - stats.dropped);
    assert_eq!(
        manifest
            .get(&key("k000"))
            .await
            .unwrap()
            .unwrap()
            .record
            .stored_at,
        at(1_019)
    );
}

#[tokio::test]
async fn a_replica_waits_for_the_primary_to_create_the_schema() {
    let f = fixture();
    let replica = OpenOptions {
        schema: SchemaMode::Await { timeout: WAIT },
        ..OpenOptions::default()
    };
    let path = f.path.clone();
    let waiting = tokio::spawn(async move { Manifest::open_with(&path, &config(), replica).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!waiting.is_finished(), "nothing to open yet");

    let primary = open(&f.path, &config()).await;
    let replica = waiting
        .await
        .unwrap()
        .expect("replica opens once the schema exists");
    replica.record(rec("r", "https://s.example/r", 1, &[]));
    flushed(&replica).await;
    assert!(primary.get(&key("r")).await.unwrap().is_some());

    let lonely = OpenOptions {
        schema: SchemaMode::Await {
            timeout: Duration::from_millis(100),
        },
        ..OpenOptions::default()
    };
    let never = f.dir.path().join("never.db");
    let err = Manifest::open_with(&never, &config(), lonely)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ManifestError::SchemaNotReady { .. }), "{err}");
    assert!(err.to_string().contains("never.db"), "{err}");
    assert!(!never.exists(), "a replica never creates the file");
}

async fn journal_mode_of(path: &Path) -> String {
    let url = format!("sqlite://{}", path.display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    let mode = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    mode
}

#[tokio::test]
async fn both_journal_modes_work_and_are_applied() {
    for (mode, expected) in [(JournalMode::Delete, "delete"), (JournalMode::Wal, "wal")] {
        let f = fixture();
        let manifest = open(
            &f.path,
            &ManifestConfig {
                journal_mode: mode,
                ..config()
            },
        )
        .await;
        manifest.record(rec("a", "https://s.example/a", 1, &["t"]));
        manifest.record(rec("b", "https://s.example/b", 2, &["t"]));
        flushed(&manifest).await;
        assert_eq!(journal_mode_of(&f.path).await, expected);
        let purged = manifest
            .purge(&Selector::Tag("t".into()), PurgeMode::Hard)
            .await
            .unwrap();
        assert_eq!(purged.len(), 2, "{expected}");
        assert!(all_rows(&manifest, true).await.is_empty(), "{expected}");
        manifest.close().await.unwrap();
    }
}

#[test]
fn the_writer_publishes_metrics() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let f = fixture();
            let gate = Arc::new(TestGate::default());
            let manifest = open_gated(&f.path, &config(), &gate).await;
            gate.failing.store(true, Ordering::SeqCst);
            manifest.record(rec("a", "https://s.example/a", 1, &[]));
            eventually("a write failed", || manifest.stats().failures >= 1).await;
            gate.failing.store(false, Ordering::SeqCst);
            manifest.record(rec("b", "https://s.example/b", 2, &[]));
            flushed(&manifest).await;
            manifest.close().await.unwrap();
        });
    });
    let text = handle.render();
    for expected in [
        "caje_manifest_rows_total 2",
        "caje_manifest_batches_total 1",
        "caje_manifest_errors_total{op=\"batch\"}",
        "caje_manifest_batch_rows_count 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[tokio::test]
async fn a_row_whose_key_caje_did_not_write_is_left_out_and_paging_goes_past_it() {
    let f = fixture();
    let manifest = open(&f.path, &config()).await;
    record_numbered(&manifest, "k", "https://s.example/", 0..3, &[]);
    flushed(&manifest).await;
    // Written by hand: its key names no file (it could name any path), so no listing returns it.
    let url = format!("sqlite://{}", f.path.display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO entries (key, method, url, origin, status, size, stored_at, expires_at, \
         node, change_seq) VALUES ('../../etc/passwd', 'GET', 'https://s.example/001x', 'o', \
         200, 1, 1, 1, 'n', 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let rows = collect(
        &manifest,
        ListQuery {
            order: ListOrder::Url,
            limit: Some(1),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(keys_of(&rows), set(&["k000", "k001", "k002"]));
}
