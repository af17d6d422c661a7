//! `tag-by-path` tags stored responses with their first path segment and host; the tags land
//! in the entry and in the manifest, where purges select them.

use caje::manifest::{ListQuery, Manifest, Selector};
use caje_testkit::{TestNode, TestOrigin, get, policies, respond};

use super::{Caje, RELOAD_LIMIT, status, validating_origin};

fn manifest(node: &TestNode) -> &Manifest {
    node.node()
        .context
        .manifest
        .as_ref()
        .expect("the manifest is enabled by default")
}

/// The URLs of the manifest rows tagged `tag`, sorted.
async fn tagged(node: &TestNode, tag: &str) -> Vec<String> {
    let manifest = manifest(node);
    manifest.flush().await.unwrap();
    let keys = manifest.keys(&Selector::Tag(tag.to_owned())).await.unwrap();
    let mut urls = Vec::new();
    for key in keys {
        urls.push(manifest.get(&key).await.unwrap().unwrap().record.url);
    }
    urls.sort();
    urls
}

#[tokio::test]
async fn stored_responses_are_tagged_in_the_manifest() {
    let origin =
        TestOrigin::start(|_| async { respond(200, &[("cache-control", "max-age=60")], "x") })
            .await;
    let node = Caje::new(&origin.url())
        .module("40-tags.wasm", "tag-by-path")
        .start()
        .await;
    for path in ["/products/42", "/products/43", "/blog/hello", "/"] {
        assert_eq!(get(&node.url(path)).await.x_cache(), "MISS");
    }
    let base = node.url("");
    assert_eq!(
        tagged(&node, "path:products").await,
        [format!("{base}/products/42"), format!("{base}/products/43")]
    );
    assert_eq!(
        tagged(&node, "path:blog").await,
        [format!("{base}/blog/hello")]
    );
    assert_eq!(tagged(&node, "path:/").await, [format!("{base}/")]);
    assert_eq!(tagged(&node, "host:127.0.0.1").await.len(), 4);
    let rows = manifest(&node).list(&ListQuery::default()).await.unwrap();
    let blog = rows
        .rows
        .iter()
        .find(|row| row.record.url.ends_with("/blog/hello"))
        .unwrap();
    assert_eq!(blog.record.tags, ["host:127.0.0.1", "path:blog"]);
}

#[tokio::test]
async fn a_revalidated_entry_is_recorded_again_with_its_new_tags() {
    let origin = validating_origin("doc", &[]).await;
    let node = Caje::new(&origin.url()).start().await;
    assert_eq!(get(&node.url("/docs/intro")).await.x_cache(), "MISS");
    assert_eq!(tagged(&node, "path:docs").await, Vec::<String>::new());
    let untagged = manifest(&node)
        .list(&ListQuery::default())
        .await
        .unwrap()
        .rows;
    assert_eq!(untagged.len(), 1);

    policies::install(&node.policies_dir(), "40-tags.wasm", "tag-by-path");
    caje_testkit::eventually("tag-by-path to load", RELOAD_LIMIT, || {
        node.node().context.policies.chain().module_names().count() == 1
    })
    .await;
    assert!(status(&node, "40-tags.wasm").error.is_none());
    let revalidated = get(&node.url("/docs/intro")).await;
    assert_eq!(revalidated.x_cache(), "REVALIDATED");
    assert_eq!(revalidated.text(), "doc");
    assert_eq!(
        tagged(&node, "path:docs").await,
        [node.url("/docs/intro")],
        "the manifest must learn the tags the revalidated entry now carries"
    );
    let row = manifest(&node)
        .list(&ListQuery::default())
        .await
        .unwrap()
        .rows
        .remove(0);
    assert!(row.record.stored_at > untagged[0].record.stored_at);
}
