//! Stale entries: conditional revalidation, stale-while-revalidate and stale-if-error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use caje::demo_origin::DemoOrigin;
use caje_testkit::{TestNode, TestOrigin, eventually, get, respond};

const PAST_ONE_SECOND: Duration = Duration::from_millis(1100);

#[tokio::test]
async fn a_304_is_merged_into_the_stored_entry() {
    let revalidations = Arc::new(AtomicU32::new(0));
    let seen = revalidations.clone();
    let origin = TestOrigin::start(move |request| {
        let seen = seen.clone();
        async move {
            if request
                .headers()
                .get("if-none-match")
                .is_some_and(|v| v == "\"v1\"")
            {
                let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                respond(
                    304,
                    &[
                        ("etag", "\"v1\""),
                        ("cache-control", "max-age=60"),
                        ("x-revalidated", &n.to_string()),
                    ],
                    "",
                )
            } else {
                respond(
                    200,
                    &[
                        ("etag", "\"v1\""),
                        ("cache-control", "max-age=1"),
                        ("x-revalidated", "0"),
                    ],
                    "original body",
                )
            }
        }
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    assert_eq!(get(&node.url("/doc")).await.x_cache(), "MISS");
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let revalidated = get(&node.url("/doc")).await;
    assert_eq!(revalidated.x_cache(), "REVALIDATED");
    assert_eq!(revalidated.text(), "original body");
    assert_eq!(
        revalidated.header("x-revalidated"),
        Some("1"),
        "headers from the 304 replace stored ones"
    );
    assert_eq!(revalidated.header("cache-control"), Some("max-age=60"));
    assert!(
        revalidated
            .header("cache-status")
            .unwrap()
            .contains("fwd-status=304")
    );
    // The merged entry is fresh for 60 s now, also after a restart (it was written to disk).
    let node = node.restart().await;
    let hit = get(&node.url("/doc")).await;
    assert_eq!(hit.x_cache(), "HIT");
    assert_eq!(hit.header("x-revalidated"), Some("1"));
    assert_eq!(hit.text(), "original body");
    assert_eq!(origin.hits("/doc"), 2);
}

#[tokio::test]
async fn last_modified_revalidation_uses_if_modified_since() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::ZERO)
        .await
        .unwrap();
    let node = TestNode::start(&origin.url()).await;
    get(&node.url("/last-modified")).await;
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let revalidated = get(&node.url("/last-modified")).await;
    assert_eq!(revalidated.x_cache(), "REVALIDATED");
    assert_eq!(revalidated.text(), "validated page version 0\n");
    // A changed page answers 200: the new body replaces the stored one.
    origin.state.bump_version();
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let changed = get(&node.url("/last-modified")).await;
    assert_eq!(changed.x_cache(), "MISS");
    assert_eq!(changed.text(), "validated page version 1\n");
    assert_eq!(
        get(&node.url("/last-modified")).await.text(),
        "validated page version 1\n"
    );
}

#[tokio::test]
async fn stale_while_revalidate_serves_stale_and_refreshes_in_the_background() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::ZERO)
        .await
        .unwrap();
    let node = TestNode::start(&origin.url()).await;
    assert_eq!(get(&node.url("/swr")).await.text(), "swr version 0\n");
    origin.state.bump_version();
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let stale = get(&node.url("/swr")).await;
    assert_eq!(stale.x_cache(), "STALE");
    assert_eq!(
        stale.text(),
        "swr version 0\n",
        "the stale copy is served at once"
    );
    eventually(
        "the background refresh reaches the origin",
        Duration::from_secs(5),
        || origin.state.requests("/swr") == 2,
    )
    .await;
    let mut refreshed = get(&node.url("/swr")).await;
    for _ in 0..50 {
        if refreshed.text() == "swr version 1\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        refreshed = get(&node.url("/swr")).await;
    }
    assert_eq!(refreshed.x_cache(), "HIT");
    assert_eq!(refreshed.text(), "swr version 1\n");
    assert_eq!(origin.state.requests("/swr"), 2);
}

#[tokio::test]
async fn stale_if_error_serves_stale_while_the_origin_fails() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::ZERO)
        .await
        .unwrap();
    let node = TestNode::start(&origin.url()).await;
    assert_eq!(get(&node.url("/sie")).await.text(), "sie version 0\n");
    tokio::time::sleep(PAST_ONE_SECOND).await;
    origin.state.set_failing(true);
    let stale = get(&node.url("/sie")).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.x_cache(), "STALE");
    assert_eq!(stale.text(), "sie version 0\n");
    assert!(
        stale
            .header("cache-status")
            .unwrap()
            .contains("fwd-status=503")
    );
    // Without a stored copy, the origin's error goes through.
    let uncached = get(&node.url("/fast")).await;
    assert_eq!(uncached.status, 503);
    origin.state.set_failing(false);
    origin.state.bump_version();
    assert_eq!(get(&node.url("/sie")).await.text(), "sie version 1\n");
}

#[tokio::test]
async fn stale_if_error_also_covers_an_unreachable_origin() {
    let origin = TestOrigin::start(|_| async {
        respond(
            200,
            &[("cache-control", "max-age=1, stale-if-error=60")],
            "kept",
        )
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    get(&node.url("/p")).await;
    tokio::time::sleep(PAST_ONE_SECOND).await;
    origin.stop().await;
    let stale = get(&node.url("/p")).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.x_cache(), "STALE");
    assert_eq!(stale.text(), "kept");
    assert!(
        stale
            .header("cache-status")
            .unwrap()
            .contains("fwd-status=502")
    );
}

#[tokio::test]
async fn must_revalidate_forbids_serving_stale_on_error() {
    let failing = Arc::new(AtomicBool::new(false));
    let switch = failing.clone();
    let origin = TestOrigin::start(move |_| {
        let failing = switch.clone();
        async move {
            if failing.load(Ordering::SeqCst) {
                respond(500, &[], "down")
            } else {
                respond(
                    200,
                    &[(
                        "cache-control",
                        "max-age=1, must-revalidate, stale-if-error=60",
                    )],
                    "strict",
                )
            }
        }
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    get(&node.url("/strict")).await;
    tokio::time::sleep(PAST_ONE_SECOND).await;
    failing.store(true, Ordering::SeqCst);
    let reply = get(&node.url("/strict")).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.text(), "down");
}
