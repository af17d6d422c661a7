//! A 64 MiB body streams through caje (miss, then hit) without being buffered in memory.
//! Alone in its test binary so that no other test's allocations disturb the peak-RSS reading.

use std::time::Duration;

use caje::demo_origin::{DemoOrigin, pattern_byte};
use caje_testkit::TestNode;
use http_body_util::BodyExt;

#[tokio::test]
async fn a_64_mib_body_streams_through_with_bounded_memory() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::ZERO)
        .await
        .unwrap();
    let node = TestNode::start(&origin.url()).await;
    let url = node.url("/bytes/67108864");
    let before = peak_rss_kib();
    for expected in ["MISS", "HIT"] {
        let response = caje_testkit::open(&url).await;
        assert_eq!(response.headers()["x-cache"], expected);
        let mut body = response.into_body();
        let mut received = 0usize;
        let mut correct = true;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                correct &= data
                    .iter()
                    .enumerate()
                    .all(|(i, b)| *b == pattern_byte(received + i, 0));
                received += data.len();
            }
        }
        assert_eq!(received, 64 << 20);
        assert!(correct, "body bytes differ from the origin's");
    }
    let grown_mib = (peak_rss_kib() - before) / 1024;
    // Origin, proxy and client share this process; a buffered body would add 64 MiB or more.
    assert!(
        grown_mib < 40,
        "peak RSS grew by {grown_mib} MiB while streaming 64 MiB twice"
    );
    assert_eq!(origin.state.requests("/bytes/67108864"), 1);
}

fn peak_rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
