//! `clear-fs`, `clear-db` and `populate`: each touches only its own side, and a node with an
//! empty cache fills it from what another node recorded in the shared manifest.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use caje::body::Body;
use caje_testkit::{TestOrigin, eventually_async, get, get_with, respond};
use futures_util::StreamExt;
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::Notify;

use crate::support::{self, TOKEN, assert_error, base, call, flush, list_all, post};

/// Background warming off: the admin pass alone fetches.
const NO_WARMING: &str = "[populate]\nenabled = false";

#[tokio::test]
async fn clear_fs_removes_this_nodes_files_and_keeps_the_manifest() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    support::fill(&node, &["/c/1", "/c/2"]).await;
    let files = node.cache_files().len();
    assert_eq!(files, 2);
    let (status, answer) = post(&node, "/_caje/clear-fs", "").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({ "files": files }));
    assert!(node.cache_files().is_empty());
    let listed = list_all(&node, "").await;
    assert_eq!(listed.len(), 2, "the manifest keeps its rows");
    assert!(
        listed
            .iter()
            .all(|e| e["in_manifest"] == true && e["on_disk"] == false)
    );
    assert_eq!(get(&node.url("/c/1")).await.x_cache(), "MISS");
    let typo = call(
        &base(&node),
        "POST",
        "/_caje/clear-fs",
        r#"{"all": true}"#,
        Some(TOKEN),
    )
    .await;
    assert_error(&typo, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn clear_db_empties_the_manifest_and_keeps_the_files() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    support::fill(&node, &["/d/1", "/d/2", "/d/3"]).await;
    let (status, answer) = post(&node, "/_caje/clear-db", "{}").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({ "rows": 3 }));
    let listed = list_all(&node, "").await;
    assert_eq!(listed.len(), 3, "the files are listed from disk");
    assert!(
        listed
            .iter()
            .all(|e| e["in_manifest"] == false && e["on_disk"] == true)
    );
    assert_eq!(get(&node.url("/d/1")).await.x_cache(), "HIT");
}

#[tokio::test]
async fn populate_fetches_what_another_node_recorded() {
    let origin = TestOrigin::start(|request| async move {
        let path = request.uri().path().to_owned();
        let cache_control = match path.as_str() {
            "/w/short" => "max-age=1",
            "/w/private" => "private, max-age=60",
            _ => "max-age=60",
        };
        respond(200, &[("cache-control", cache_control)], &path)
    })
    .await;
    let first = support::start(&origin.url(), "", "node = \"first\"\n").await;
    support::fill(&first, &["/w/1", "/w/2", "/w/3", "/w/short", "/w/private"]).await;
    // The second node shares the first one's SQLite file and starts with an empty cache; it
    // does not warm in the background, so this pass does the fetching.
    let database = first.config.database.clone();
    let second = support::start_on(
        &origin.url(),
        Some(&database),
        "",
        "node = \"second\"\n",
        NO_WARMING,
    )
    .await;
    assert!(second.cache_files().is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await; // /w/short expires
    let (status, report) = post(&second, "/_caje/populate", "").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["examined"], 4, "{report}");
    assert_eq!(report["fetched"], 3, "{report}");
    assert_eq!(report["expired"], 1, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    // Its clients name the site as the first node's clients did: the pages are hits.
    let host = first.node().addr.to_string();
    for path in ["/w/1", "/w/2", "/w/3"] {
        let hit = get_with(&second.url(path), &[("host", &host)]).await;
        assert_eq!(hit.x_cache(), "HIT", "{path}");
        assert_eq!(hit.text(), path);
        assert_eq!(origin.hits(path), 2, "one fetch by each node");
    }
    // A second pass finds everything present; rows were updated, not added.
    let (_, again) = post(&second, "/_caje/populate", "").await;
    assert_eq!(
        (again["fetched"].as_u64(), again["present"].as_u64()),
        (Some(0), Some(3)),
        "{again}"
    );
    flush(&second).await;
    let rows = list_all(&second, "order=url").await;
    assert_eq!(
        support::paths(&rows)
            .iter()
            .filter(|p| p.starts_with("/w/"))
            .count(),
        4
    );
    assert!(
        rows.iter()
            .filter(|r| r["url"].as_str().unwrap().ends_with("/w/1"))
            .all(|r| r["node"] == "second")
    );
}

#[tokio::test]
async fn populate_takes_a_prefix_and_a_limit_and_refuses_bad_bodies() {
    let origin = support::origin().await;
    let first = support::start(&origin.url(), "", "").await;
    support::fill(&first, &["/a/1", "/a/2", "/b/1"]).await;
    let database = first.config.database.clone();
    let second = support::start_on(&origin.url(), Some(&database), "", "", NO_WARMING).await;
    let body = json!({ "prefix": first.url("/a/"), "limit": 1 }).to_string();
    let (status, report) = post(&second, "/_caje/populate", &body).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (
            report["fetched"].as_u64(),
            report["stopped_early"].as_bool()
        ),
        (Some(1), Some(true)),
        "{report}"
    );
    assert_eq!(origin.hits("/b/1"), 1, "outside the prefix");
    for bad in [
        r#"{"limit": -1}"#,
        r#"{"prefix": "b"}"#,
        r#"{"max": 3}"#,
        "{",
    ] {
        let reply = call(&base(&second), "POST", "/_caje/populate", bad, Some(TOKEN)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn without_a_manifest_clear_db_and_populate_say_so_and_purge_reads_the_disk() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "enabled = false").await;
    support::fill(&node, &["/n/1", "/n/2", "/m/1"]).await;
    for path in ["/_caje/clear-db", "/_caje/populate"] {
        let reply = call(&base(&node), "POST", path, "", Some(TOKEN)).await;
        assert_error(&reply, StatusCode::CONFLICT);
    }
    let listed = list_all(&node, "").await;
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|e| e["in_manifest"] == false));
    let (status, answer) = post(
        &node,
        "/_caje/purge",
        &json!({ "prefix": node.url("/n/") }).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["manifest"], json!({ "status": "disabled" }));
    assert_eq!(answer["files"], json!({ "status": "done", "files": 2 }));
    assert_eq!(get(&node.url("/m/1")).await.x_cache(), "HIT");
    assert_eq!(get(&node.url("/n/1")).await.x_cache(), "MISS");
}

#[tokio::test]
async fn clear_fs_lets_a_running_fill_finish_and_store_its_entry() {
    let release = Arc::new(Notify::new());
    let gate = Arc::clone(&release);
    let origin = TestOrigin::start(move |_| {
        let gate = Arc::clone(&gate);
        async move {
            // The second half waits until the test has cleared the node's files.
            let halves = futures_util::stream::iter(0..2).then(move |half| {
                let gate = Arc::clone(&gate);
                async move {
                    if half == 1 {
                        gate.notified().await;
                    }
                    Ok::<_, Infallible>(Bytes::from_static(b"half;"))
                }
            });
            http::Response::builder()
                .header("cache-control", "max-age=600")
                .body(Body::stream(halves))
                .unwrap()
        }
    })
    .await;
    let node = support::start(&origin.url(), "", "").await;
    let filling = caje_testkit::open(&node.url("/running")).await;
    assert_eq!(filling.headers()["x-cache"], "MISS");
    let (status, answer) = post(&node, "/_caje/clear-fs", "").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    release.notify_one();
    let body = filling.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "half;half;");
    eventually_async("the fill to be stored", Duration::from_secs(10), || async {
        get(&node.url("/running")).await.x_cache() == "HIT"
    })
    .await;
    assert_eq!(origin.hits("/running"), 1);
}
