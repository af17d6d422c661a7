//! `GET /_caje/policies` shows the chain as it serves, refusals with their reasons, and the
//! counters; tags a policy puts on pages are what a tag purge takes.

use std::time::Duration;

use caje_testkit::{eventually, get};
use http::StatusCode;
use serde_json::json;

use crate::support::{self, fill, install_policy, install_policy_bytes, post};

#[tokio::test]
async fn the_policies_route_shows_serving_and_refused_modules() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    assert_eq!(
        support::get(&node, "/_caje/policies").await,
        json!({ "modules": [] })
    );
    install_policy(&node, "10-tags.wasm", "tag-by-path").await;
    install_policy_bytes(&node, "20-broken.wasm", b"\0asm but not really a component");
    let policies = &node.node().context.policies;
    eventually(
        "the broken module's refusal",
        Duration::from_secs(20),
        || policies.status().len() == 2,
    )
    .await;
    get(&node.url("/page")).await;
    let modules = support::get(&node, "/_caje/policies").await["modules"].clone();
    let tags = &modules[0];
    assert_eq!(tags["file"], "10-tags.wasm");
    assert_eq!(tags["state"], "active");
    assert!(
        tags["digest"].as_str().unwrap().starts_with("sha256:"),
        "{tags}"
    );
    assert!(tags["calls"].as_u64() >= Some(1), "{tags}");
    let broken = &modules[1];
    assert_eq!(broken["file"], "20-broken.wasm");
    assert_eq!(broken["state"], "refused");
    assert!(!broken["error"].as_str().unwrap().is_empty(), "{broken}");
}

#[tokio::test]
async fn a_tag_purge_takes_exactly_the_pages_a_policy_tagged() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    install_policy(&node, "10-tags.wasm", "tag-by-path").await;
    fill(&node, &["/shop/1", "/shop/2", "/blog/1"]).await;
    let listed = support::list_all(&node, "order=url").await;
    let shop = listed
        .iter()
        .find(|e| support::path_of(e) == "/shop/1")
        .unwrap();
    assert!(
        shop["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("path:shop")),
        "{shop}"
    );

    let (status, answer) = post(&node, "/_caje/purge", r#"{"tag": "path:shop"}"#).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["manifest"], json!({ "status": "done", "rows": 2 }));
    assert_eq!(answer["files"], json!({ "status": "done", "files": 2 }));
    for (path, expected) in [("/shop/1", "MISS"), ("/shop/2", "MISS"), ("/blog/1", "HIT")] {
        assert_eq!(get(&node.url(path)).await.x_cache(), expected, "{path}");
    }
}
