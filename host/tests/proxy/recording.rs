//! Stored pages are recorded in the SQLite manifest, once per key, off the response path.

use std::time::Duration;

use caje::demo_origin::DemoOrigin;
use caje::manifest::{ListOrder, ListQuery};
use caje_testkit::{TestNode, get, get_with};

#[tokio::test]
async fn each_stored_page_is_one_manifest_row() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::from_millis(100))
        .await
        .unwrap();
    let node = TestNode::start(&origin.url()).await;
    let url = node.url("/slow/recorded");
    let replies: Vec<_> = (0..10)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { get(&url).await })
        })
        .collect();
    for reply in replies {
        assert_eq!(reply.await.unwrap().status, 200);
    }
    get(&node.url("/vary")).await;
    get_with(&node.url("/vary"), &[("accept-encoding", "gzip")]).await;
    get(&node.url("/")).await; // no-store: never recorded
    let manifest = node
        .node()
        .context
        .manifest
        .as_ref()
        .expect("manifest enabled by default");
    manifest.flush().await.unwrap();
    let page = manifest
        .list(&ListQuery {
            order: ListOrder::Url,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let urls: Vec<&str> = page
        .rows
        .iter()
        .map(|row| row.record.url.as_str())
        .collect();
    assert_eq!(
        urls.iter()
            .filter(|u| u.ends_with("/slow/recorded"))
            .count(),
        1,
        "{urls:?}"
    );
    assert_eq!(
        urls.iter().filter(|u| u.ends_with("/vary")).count(),
        2,
        "one row per variant: {urls:?}"
    );
    assert_eq!(page.rows.len(), 3, "{urls:?}");
    let slow = page
        .rows
        .iter()
        .find(|row| row.record.url.ends_with("/slow/recorded"))
        .unwrap();
    assert_eq!(slow.record.origin, "origin");
    assert_eq!(slow.record.status, 200);
    assert!(slow.record.expires_at > slow.record.stored_at);
    // A restart and a refetch of the same key update the row instead of adding one.
    let node = node.restart().await;
    get_with(
        &node.url("/slow/recorded"),
        &[("cache-control", "no-cache")],
    )
    .await;
    let manifest = node.node().context.manifest.as_ref().unwrap();
    manifest.flush().await.unwrap();
    let page = manifest.list(&ListQuery::default()).await.unwrap();
    assert_eq!(page.rows.len(), 3);
}
