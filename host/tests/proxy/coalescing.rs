//! Concurrent misses for one key cause one origin fetch.

use std::time::Duration;

use caje::demo_origin::DemoOrigin;
use caje_testkit::{TestNode, get, get_with};

#[tokio::test]
async fn fifty_cold_requests_cause_one_origin_fetch() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::from_millis(200))
        .await
        .unwrap();
    let node = TestNode::start(&origin.url()).await;
    let url = node.url("/slow/coalesce");
    let replies = futures_join_all((0..50).map(|_| {
        let url = url.clone();
        async move { get(&url).await }
    }))
    .await;
    assert_eq!(origin.state.requests("/slow/coalesce"), 1);
    let first = &replies[0];
    for reply in &replies {
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, first.body);
    }
    let misses = replies.iter().filter(|r| r.x_cache() == "MISS").count();
    assert!(misses >= 1);
    assert_eq!(
        node.node().fetches_in_flight(),
        0,
        "the flight ends once the entry is stored"
    );
}

#[tokio::test]
async fn followers_with_another_vary_value_fetch_their_own_variant() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::ZERO)
        .await
        .unwrap();
    let node = TestNode::start(&origin.url()).await;
    let url = node.url("/vary");
    let gzip = [("accept-encoding", "gzip")];
    let br = [("accept-encoding", "br")];
    let (a, b) = tokio::join!(get_with(&url, &gzip), get_with(&url, &br));
    assert_eq!(a.text(), "variant for accept-encoding=gzip\n");
    assert_eq!(b.text(), "variant for accept-encoding=br\n");
}

async fn futures_join_all<
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
>(
    futures: impl Iterator<Item = F>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.expect("request task"));
    }
    results
}

#[tokio::test]
async fn requests_racing_a_finishing_fill_never_fetch_again() {
    // A fast origin makes fills finish while other requests are between their lookup and their
    // join: those must find the fresh entry, not start a second fetch.
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::ZERO)
        .await
        .unwrap();
    let node = TestNode::start(&origin.url()).await;
    for round in 0..10 {
        let url = node.url(&format!("/fast/race-{round}"));
        let replies = futures_join_all((0..40).map(|_| {
            let url = url.clone();
            async move { get(&url).await }
        }))
        .await;
        assert!(replies.iter().all(|reply| reply.status == 200));
        assert_eq!(
            origin.state.requests(&format!("/fast/race-{round}")),
            1,
            "round {round}"
        );
    }
}
