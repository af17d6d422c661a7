//! Fleet warming and fleet-wide purges on a real two-node LiteFS cluster: caje "a" on the
//! primary's mount, caje "b" on the replica's, each with its own cache directory. Replicated
//! changes reach the replica's file without any file-system event: b notices them by polling.

use bytes::Bytes;
use caje_testkit::litefs::{Cluster, Node as LitefsNode};
use caje_testkit::{TestNode, TestOrigin, send, x_cache_as};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::nodes::fleet_config;
use super::{JOURNAL, connect, eventually};

const DB: &str = "manifest.db";
/// Every request names this host, so one path is one cache key on both caje nodes.
const HOST: &str = "cdn.test";

/// caje named `name` on `node`'s mount, warming in the background (polling every 50 ms).
async fn caje_on(node: &LitefsNode, origin: &TestOrigin, name: &str) -> TestNode {
    let config = fleet_config(node, name, "", "interval = \"50ms\"");
    TestNode::start_with_database(&origin.url(), &node.db_path(DB), &config).await
}

fn url(path: &str) -> String {
    format!("http://{HOST}{path}")
}

async fn fetch(node: &TestNode, path: &str) -> String {
    x_cache_as(&node.url(path), HOST).await
}

fn holds(node: &TestNode, path: &str) -> bool {
    node.holds(&url(path))
}

async fn wait_until_held(node: &TestNode, path: &str, held: bool) {
    let what = format!("{path} held = {held} by {}", node.node().addr);
    eventually(&what, || async {
        (holds(node, path) == held).then_some(())
    })
    .await;
}

/// A purge through `node`'s admin API (no token: loopback clients are let in).
async fn purge(node: &TestNode, body: Value) -> Value {
    let request = Request::post(node.url("/_caje/purge"))
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid request");
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    serde_json::from_slice(&reply.body).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_purges_cross_the_cluster_both_ways() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let origin = TestOrigin::cacheable().await;
    let a = caje_on(cluster.primary(), &origin, "a").await;
    let b = caje_on(cluster.replica(), &origin, "b").await;

    assert_eq!(fetch(&a, "/lf/from-a").await, "MISS");
    wait_until_held(&b, "/lf/from-a", true).await;
    assert_eq!(origin.hits("/lf/from-a"), 2, "a's client and b's warming");
    assert_eq!(fetch(&b, "/lf/from-a").await, "HIT");
    assert_eq!(origin.hits("/lf/from-a"), 2);

    // The replica's record goes through HALT to the primary, and back to a's mount.
    assert_eq!(fetch(&b, "/lf/from-b").await, "MISS");
    wait_until_held(&a, "/lf/from-b", true).await;
    assert_eq!(fetch(&a, "/lf/from-b").await, "HIT");

    // A purge on the replica reaches the primary's node, and one on the primary the replica's.
    let answer = purge(&b, json!({ "url": url("/lf/from-a") })).await;
    assert_eq!(answer["manifest"]["rows"], 1, "{answer}");
    wait_until_held(&a, "/lf/from-a", false).await;
    purge(&a, json!({ "prefix": url("/lf/from-") })).await;
    wait_until_held(&b, "/lf/from-b", false).await;
    assert_eq!(fetch(&b, "/lf/from-a").await, "MISS");

    let mut nodes = [a, b];
    for node in nodes.iter_mut().rev() {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_node_down_during_a_purge_drops_the_page_before_it_serves_again() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let origin = TestOrigin::cacheable().await;
    let a = caje_on(cluster.primary(), &origin, "a").await;
    let mut b = caje_on(cluster.replica(), &origin, "b").await;
    for path in ["/down/gone", "/down/stays"] {
        fetch(&a, path).await;
        wait_until_held(&b, path, true).await;
    }
    b.stop().await;
    purge(&a, json!({ "url": url("/down/gone") })).await;
    // LiteFS keeps replicating while caje is down: wait until the purge is in b's file.
    let on_b = cluster.replica().db_path(DB);
    let on_b = &on_b;
    eventually("the purge to reach the replica", || async move {
        let mut conn = connect(on_b, JOURNAL).await;
        let purges: i64 = sqlx::query_scalar("SELECT count(*) FROM purges")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        (purges == 1).then_some(())
    })
    .await;

    let b = b.restart().await;
    // No waiting: the purge was applied before the node took its first request.
    assert!(!holds(&b, "/down/gone"));
    assert!(holds(&b, "/down/stays"));
    let before = origin.hits("/down/gone");
    assert_eq!(fetch(&b, "/down/gone").await, "MISS");
    assert_eq!(origin.hits("/down/gone"), before + 1);
    assert_eq!(fetch(&b, "/down/stays").await, "HIT");

    let mut nodes = [a, b];
    for node in nodes.iter_mut().rev() {
        node.stop().await;
    }
}
