//! `GET /_caje/list`: manifest rows with their on-disk flag, then this node's files the
//! manifest lacks; paging, prefix filter, and rows that never duplicate.

use caje::manifest::Selector;
use caje_testkit::get;
use http::StatusCode;
use serde_json::Value;

use crate::support::{self, flush, list_all, paths};

fn manifest_rows(entries: &[Value]) -> Vec<&Value> {
    entries
        .iter()
        .filter(|e| e["in_manifest"] == true)
        .collect()
}

#[tokio::test]
async fn rows_appear_after_misses_and_never_duplicate() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    let concurrent: Vec<_> = (0..10)
        .map(|_| {
            let url = node.url("/hot");
            tokio::spawn(async move { get(&url).await })
        })
        .collect();
    for reply in concurrent {
        assert_eq!(reply.await.unwrap().status, 200);
    }
    support::fill(&node, &["/a", "/b"]).await;
    let entries = list_all(&node, "order=url").await;
    assert_eq!(paths(&entries), ["/a", "/b", "/hot"]);
    for entry in &entries {
        assert_eq!(entry["in_manifest"], true);
        assert_eq!(entry["on_disk"], true);
        assert_eq!(entry["origin"], "origin");
        assert_eq!(entry["status"], 200);
        assert_eq!(entry["soft_purged"], false);
        let ttl = entry["ttl"].as_i64().unwrap();
        assert!((55..=60).contains(&ttl), "{entry}");
        assert!(
            entry["stored_at"].as_str().unwrap().ends_with('Z'),
            "{entry}"
        );
    }
    // A restart and forced refetches update the rows instead of adding to them.
    let node = node.restart().await;
    for path in ["/hot", "/a"] {
        caje_testkit::get_with(&node.url(path), &[("cache-control", "no-cache")]).await;
    }
    flush(&node).await;
    let entries = list_all(&node, "order=url").await;
    assert_eq!(paths(&entries), ["/a", "/b", "/hot"]);
}

#[tokio::test]
async fn pages_follow_the_cursor_and_the_prefix_filters() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    let mut expected = Vec::new();
    for dir in ["x", "y"] {
        for n in 0..4 {
            let path = format!("/{dir}/{n}");
            get(&node.url(&path)).await;
            expected.push(path);
        }
    }
    flush(&node).await;
    // Two rows a page: four manifest pages, then the disk phase (nothing missing from it).
    let first = support::get(&node, "/_caje/list?order=url&limit=2").await;
    assert_eq!(first["source"], "manifest");
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    assert!(first["next"].as_str().unwrap().starts_with("m."));
    let all = list_all(&node, "order=url&limit=2").await;
    assert_eq!(paths(&all), expected);
    let newest = list_all(&node, "limit=3").await;
    let mut newest_paths = paths(&newest);
    assert_eq!(newest_paths.first().map(String::as_str), Some("/y/3"));
    newest_paths.sort();
    assert_eq!(newest_paths, expected);

    let prefix = node.url("/x/");
    let query = format!(
        "order=url&prefix={}",
        prefix.replace(':', "%3A").replace('/', "%2F")
    );
    assert_eq!(paths(&list_all(&node, &query).await), expected[..4]);
    // An unencoded prefix works too (it is a valid query value).
    assert_eq!(
        paths(&list_all(&node, &format!("prefix={prefix}")).await).len(),
        4
    );
}

#[tokio::test]
async fn files_the_manifest_lacks_are_listed_from_disk_in_bounded_pages() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    for n in 0..5 {
        get(&node.url(&format!("/f/{n}"))).await;
    }
    flush(&node).await;
    let manifest = node.node().context.manifest.as_ref().unwrap();
    // Two rows leave the manifest but keep their files; one file leaves the disk, keeping its row.
    for n in [1, 3] {
        manifest
            .purge(
                &Selector::Url(node.url(&format!("/f/{n}"))),
                caje::purge_mode::PurgeMode::Hard,
            )
            .await
            .unwrap();
    }
    node.node()
        .context
        .cache
        .remove_url(&node.url("/f/4"))
        .unwrap();

    let entries = list_all(&node, "order=url&limit=1").await;
    let in_manifest: Vec<(String, bool)> = manifest_rows(&entries)
        .iter()
        .map(|e| (support::path_of(e), e["on_disk"] == true))
        .collect();
    assert_eq!(
        in_manifest,
        [
            ("/f/0".into(), true),
            ("/f/2".into(), true),
            ("/f/4".into(), false)
        ]
    );
    let mut disk_only: Vec<String> = paths(
        &entries
            .iter()
            .filter(|e| e["in_manifest"] == false)
            .cloned()
            .collect::<Vec<_>>(),
    );
    disk_only.sort();
    assert_eq!(disk_only, ["/f/1", "/f/3"]);
    // A disk page reads at most `limit` files: with limit=1 it holds at most one entry, and
    // the listing still reaches every file.
    let disk_page = support::get(&node, "/_caje/list?cursor=d.&limit=1").await;
    assert_eq!(disk_page["source"], "disk");
    assert!(disk_page["entries"].as_array().unwrap().len() <= 1);
    assert!(disk_page["next"].as_str().unwrap().starts_with("d."));
}

#[tokio::test]
async fn bad_list_parameters_are_400_with_a_hint() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    for query in [
        "limit=0",
        "limit=5000",
        "limit=many",
        "order=oldest",
        "colour=red",
        "cursor=zz",
        "cursor=d.not-a-key",
        "cursor=m.n.1.zz",
        "prefix=%2Frelative%2F",
    ] {
        let path = format!("/_caje/list?{query}");
        let body = support::get_error(&node, &path, StatusCode::BAD_REQUEST).await;
        assert!(!body["error"].as_str().unwrap().is_empty(), "{query}");
    }
}
