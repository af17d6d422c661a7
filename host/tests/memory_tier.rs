//! The memory tier stays near `cache.memory_size` however small its entries are.
//! Alone in its test binary so that no other test's allocations disturb the RSS reading.

use std::time::Duration;

use caje::demo_origin::DemoOrigin;
use caje_testkit::TestNode;
use futures_util::StreamExt;

const FILLS: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_small_entries_keep_memory_near_the_configured_size() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::ZERO)
        .await
        .unwrap();
    let node = TestNode::start_with(&origin.url(), "[cache]\nmemory_size = \"8MiB\"\n").await;
    let fill = |i: usize| {
        let url = node.url(&format!("/fast?n={i}"));
        async move { caje_testkit::get(&url).await }
    };
    // Warm up the runtime, the pools and the manifest before the baseline reading.
    futures_util::stream::iter(0..500)
        .for_each_concurrent(16, |i| async move {
            assert_eq!(fill(i).await.status, 200);
        })
        .await;
    let before = rss_kib();
    futures_util::stream::iter(500..500 + FILLS)
        .for_each_concurrent(16, |i| async move {
            let reply = fill(i).await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.x_cache(), "MISS");
            assert_eq!(reply.text(), "fast page\n");
        })
        .await;
    let grown_mib = (rss_kib() - before) / 1024;
    // Each fill stored one entry of ~6 headers and a 10-byte body: weighed at what they really
    // cost, they stay near 8 MiB. Entries that pinned hyper's read buffers or were weighed at a
    // tenth of their heap grew this process by 75 MiB.
    assert!(
        grown_mib < 40,
        "RSS grew by {grown_mib} MiB over {FILLS} small fills with an 8 MiB memory tier"
    );
    let first = caje_testkit::get(&node.url("/fast?n=0")).await;
    assert_eq!(
        first.text(),
        "fast page\n",
        "evicted entries are read back from disk"
    );
}

fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
