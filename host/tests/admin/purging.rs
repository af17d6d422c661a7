//! `POST /_caje/purge`: by URL, prefix and tag, hard and soft, on both sides; bad bodies change
//! nothing; a purge of nothing is a 200 with zero counts.

use std::time::{Duration, SystemTime};

use caje::manifest::{ListQuery, ManifestRecord};
use caje_testkit::{TestNode, get};
use http::StatusCode;
use serde_json::{Value, json};

use crate::support::{self, TOKEN, assert_error, base, call, flush, post};

async fn purge(node: &TestNode, body: Value) -> Value {
    let (status, answer) = post(node, "/_caje/purge", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn x_cache(node: &TestNode, path: &str) -> String {
    get(&node.url(path)).await.x_cache().to_owned()
}

#[tokio::test]
async fn a_url_purge_removes_row_and_files_and_the_page_is_fetched_again() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    assert_eq!(x_cache(&node, "/page").await, "MISS");
    assert_eq!(x_cache(&node, "/page").await, "HIT");
    flush(&node).await;
    let answer = purge(&node, json!({ "url": node.url("/page") })).await;
    assert_eq!(
        answer["selector"],
        json!({ "kind": "url", "value": node.url("/page") })
    );
    assert_eq!(answer["soft"], false);
    assert_eq!(answer["manifest"], json!({ "status": "done", "rows": 1 }));
    assert_eq!(answer["files"], json!({ "status": "done", "files": 1 }));
    assert!(node.cache_files().is_empty(), "{:?}", node.cache_files());
    assert_eq!(x_cache(&node, "/page").await, "MISS");
    assert_eq!(origin.hits("/page"), 2);
}

#[tokio::test]
async fn a_prefix_purge_takes_exactly_the_urls_under_it() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    support::fill(&node, &["/p/1", "/p/2", "/p/deep/3", "/q/1", "/p"]).await;
    let answer = purge(&node, json!({ "prefix": node.url("/p/") })).await;
    assert_eq!(answer["manifest"], json!({ "status": "done", "rows": 3 }));
    assert_eq!(answer["files"], json!({ "status": "done", "files": 3 }));
    for (path, expected) in [
        ("/p/1", "MISS"),
        ("/p/deep/3", "MISS"),
        ("/q/1", "HIT"),
        ("/p", "HIT"),
    ] {
        assert_eq!(x_cache(&node, path).await, expected, "{path}");
    }
}

#[tokio::test]
async fn a_tag_purge_takes_exactly_the_tagged_pages() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    support::fill(&node, &["/t/1", "/t/2", "/t/3"]).await;
    // Rows tagged in the manifest as another node's policy would have: two pages this node
    // holds (with no tags on its own disk), and one row whose page is on no disk here.
    let manifest = node.node().context.manifest.as_ref().unwrap();
    let rows = manifest.list(&ListQuery::default()).await.unwrap().rows;
    for row in rows.iter().filter(|r| !r.record.url.ends_with("/t/3")) {
        manifest.record(ManifestRecord {
            tags: vec!["sale".into()],
            ..row.record.clone()
        });
    }
    manifest.record(ManifestRecord {
        key: caje::key::Key::for_url("http://elsewhere.test/sale", &[]),
        method: http::Method::GET,
        url: "http://elsewhere.test/sale".into(),
        origin: "origin".into(),
        status: 200,
        size: 1,
        stored_at: SystemTime::now(),
        expires_at: SystemTime::now() + Duration::from_secs(60),
        tags: vec!["sale".into(), "other".into()],
    });
    flush(&node).await;
    let answer = purge(&node, json!({ "tag": "sale" })).await;
    assert_eq!(answer["manifest"], json!({ "status": "done", "rows": 3 }));
    assert_eq!(answer["files"], json!({ "status": "done", "files": 2 }));
    let left = support::list_all(&node, "order=url").await;
    assert_eq!(support::paths(&left), ["/t/3"]);
    for (path, expected) in [("/t/1", "MISS"), ("/t/2", "MISS"), ("/t/3", "HIT")] {
        assert_eq!(x_cache(&node, path).await, expected, "{path}");
    }
}

#[tokio::test]
async fn a_soft_purge_makes_the_next_request_revalidate() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    for path in ["/s/1", "/s/2", "/kept"] {
        assert_eq!(x_cache(&node, path).await, "MISS");
    }
    flush(&node).await;
    let answer = purge(&node, json!({ "url": node.url("/s/1"), "soft": true })).await;
    assert_eq!(answer["soft"], true);
    assert_eq!(answer["manifest"], json!({ "status": "done", "rows": 1 }));
    assert_eq!(answer["files"], json!({ "status": "done", "files": 1 }));
    let answer = purge(&node, json!({ "prefix": node.url("/s/"), "soft": true })).await;
    assert_eq!(answer["manifest"], json!({ "status": "done", "rows": 2 }));
    // The rows stay, marked; the files stay, stale.
    let listed = support::list_all(&node, "order=url").await;
    let soft: Vec<(String, bool)> = listed
        .iter()
        .map(|e| {
            (
                support::path_of(e),
                e["soft_purged"] == true && e["ttl"].as_i64() < Some(0),
            )
        })
        .collect();
    assert_eq!(
        soft,
        [
            ("/kept".into(), false),
            ("/s/1".into(), true),
            ("/s/2".into(), true)
        ]
    );
    assert_eq!(node.cache_files().len(), 3);
    for path in ["/s/1", "/s/2"] {
        let revalidated = get(&node.url(path)).await;
        assert_eq!(revalidated.x_cache(), "REVALIDATED", "{path}");
        assert_eq!(revalidated.text(), path, "the stored body is served");
        assert_eq!(
            x_cache(&node, path).await,
            "HIT",
            "fresh again after the 304"
        );
        assert_eq!(origin.hits(path), 2);
    }
    assert_eq!(x_cache(&node, "/kept").await, "HIT");
}

#[tokio::test]
async fn a_purge_that_matches_nothing_answers_200_with_zero_counts() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    get(&node.url("/here")).await;
    flush(&node).await;
    for selector in [
        json!({ "url": node.url("/nowhere") }),
        json!({ "prefix": "http://nowhere.test/" }),
        json!({ "tag": "none", "soft": true }),
    ] {
        let answer = purge(&node, selector).await;
        assert_eq!(answer["manifest"]["rows"], 0, "{answer}");
        assert_eq!(answer["files"]["files"], 0, "{answer}");
    }
    assert_eq!(x_cache(&node, "/here").await, "HIT");
}

#[tokio::test]
async fn bad_purge_requests_are_400_and_change_nothing() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    get(&node.url("/keep")).await;
    flush(&node).await;
    let url = node.url("/keep");
    let cases = [
        (String::new(), "exactly one of url, prefix or tag"),
        ("{\"url\": ".to_owned(), "invalid JSON"),
        ("[1, 2]".to_owned(), "invalid JSON"),
        (
            json!({ "url": url, "hard": true }).to_string(),
            "unknown field `hard`",
        ),
        (
            json!({ "url": url, "soft": "yes" }).to_string(),
            "invalid type",
        ),
        (
            json!({ "url": url, "prefix": url }).to_string(),
            "exactly one",
        ),
        (json!({ "url": "/keep" }).to_string(), "not an absolute URL"),
        (
            json!({ "prefix": "http://host" }).to_string(),
            "slash after the host",
        ),
        (json!({ "tag": "  " }).to_string(), "tag is empty"),
    ];
    for (body, says) in cases {
        let reply = call(&base(&node), "POST", "/_caje/purge", &body, Some(TOKEN)).await;
        let answer = assert_error(&reply, StatusCode::BAD_REQUEST);
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    let huge = json!({ "url": "x".repeat(70_000) }).to_string();
    let reply = call(&base(&node), "POST", "/_caje/purge", &huge, Some(TOKEN)).await;
    assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(x_cache(&node, "/keep").await, "HIT");
    assert_eq!(support::list_all(&node, "").await.len(), 1);
}
