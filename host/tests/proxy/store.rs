//! The filesystem store: persistence, corruption, fills that lose their client, large bodies.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use caje::demo_origin::{DemoOrigin, pattern_byte};
use caje_testkit::{TestNode, eventually, get};
use http_body_util::BodyExt;

async fn demo() -> DemoOrigin {
    DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::ZERO)
        .await
        .unwrap()
}

fn expected_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| pattern_byte(i, 0)).collect()
}

#[tokio::test]
async fn the_cache_survives_a_restart() {
    let origin = demo().await;
    let node = TestNode::start(&origin.url()).await;
    get(&node.url("/fast")).await;
    get(&node.url("/bytes/5000000")).await;
    let node = node.restart().await;
    let small = get(&node.url("/fast")).await;
    let large = get(&node.url("/bytes/5000000")).await;
    assert_eq!(small.x_cache(), "HIT");
    assert_eq!(large.x_cache(), "HIT");
    assert_eq!(large.body.to_vec(), expected_bytes(5_000_000));
    assert_eq!(origin.state.total_requests(), 2);
}

#[tokio::test]
async fn corrupt_truncated_and_foreign_files_are_misses_and_are_replaced() {
    let origin = demo().await;
    // Without background warming, which would refetch the broken pages after the restart.
    let node = TestNode::start_with(&origin.url(), "[populate]\nenabled = false").await;
    for path in ["/fast", "/slow", "/bytes/1000"] {
        get(&node.url(path)).await;
    }
    let files = node.cache_files();
    assert_eq!(files.len(), 3);
    // One flipped body byte, one truncated file, one file replaced by garbage.
    flip_byte(&files[0], 10);
    let len = std::fs::metadata(&files[1]).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[1])
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::write(&files[2], b"not a cache entry at all").unwrap();
    let node = node.restart().await;
    for path in ["/fast", "/slow", "/bytes/1000"] {
        let reply = get(&node.url(path)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.x_cache(),
            "MISS",
            "{path} must not be served from a bad file"
        );
        assert_eq!(origin.state.requests(path), 2, "{path}");
    }
    assert_eq!(
        get(&node.url("/bytes/1000")).await.body.to_vec(),
        expected_bytes(1000)
    );
    for path in ["/fast", "/slow", "/bytes/1000"] {
        assert_eq!(
            get(&node.url(path)).await.x_cache(),
            "HIT",
            "{path} was stored again"
        );
    }
}

#[tokio::test]
async fn a_large_entry_corrupted_while_running_is_detected() {
    let origin = demo().await;
    // Bodies over 64 KiB stay on disk, so the running node reads the file on every hit.
    let node =
        TestNode::start_with(&origin.url(), "[cache]\nmemory_max_object = \"64KiB\"\n").await;
    let url = node.url("/bytes/1000000");
    get(&url).await;
    assert_eq!(get(&url).await.x_cache(), "HIT");
    let file = node.cache_files().pop().unwrap();
    flip_byte(&file, 500_000);
    let reply = get(&url).await;
    assert_eq!(reply.x_cache(), "MISS");
    assert_eq!(reply.body.to_vec(), expected_bytes(1_000_000));
    assert_eq!(origin.state.requests("/bytes/1000000"), 2);
}

#[tokio::test]
async fn a_fill_completes_after_its_client_disconnects() {
    let origin = demo().await;
    let node = TestNode::start(&origin.url()).await;
    let url = node.url("/bytes/20000000");
    {
        let response = caje_testkit::open(&url).await;
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        // Dropping the body and the client closes the connection mid-stream.
    }
    eventually(
        "the abandoned fill is stored",
        Duration::from_secs(20),
        || node.node().fetches_in_flight() == 0,
    )
    .await;
    let reply = get(&url).await;
    assert_eq!(reply.x_cache(), "HIT");
    assert_eq!(reply.body.len(), 20_000_000);
    assert!(
        reply
            .body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern_byte(i, 0))
    );
    assert_eq!(origin.state.requests("/bytes/20000000"), 1);
    assert!(
        node.cache_files().iter().all(|f| !f
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(".tmp"))
    );
}

#[tokio::test]
async fn bodies_over_max_object_size_pass_through_uncached() {
    let origin = demo().await;
    let node = TestNode::start_with(&origin.url(), "[cache]\nmax_object_size = \"10KiB\"\n").await;
    for _ in 0..2 {
        let reply = get(&node.url("/bytes/20000")).await;
        assert_eq!(reply.body.len(), 20_000);
        assert_eq!(reply.x_cache(), "MISS");
    }
    assert_eq!(origin.state.requests("/bytes/20000"), 2);
    assert!(node.cache_files().is_empty());
}

fn flip_byte(path: &std::path::Path, offset: u64) {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut byte = [0u8];
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&[byte[0] ^ 0xff]).unwrap();
}

#[tokio::test]
async fn temp_files_left_by_a_crash_are_swept_at_start() {
    let origin = demo().await;
    let node = TestNode::start(&origin.url()).await;
    get(&node.url("/fast")).await;
    let entry = node.cache_files().pop().unwrap();
    let name = entry.file_name().unwrap().to_str().unwrap().to_owned();
    let leftover = entry.with_file_name(format!(".tmp.{name}.1-1.0"));
    std::fs::write(&leftover, b"half a body").unwrap();
    let node = node.restart().await;
    eventually(
        "the leftover temp file is swept",
        Duration::from_secs(5),
        || !leftover.exists(),
    )
    .await;
    assert_eq!(
        get(&node.url("/fast")).await.x_cache(),
        "HIT",
        "entries survive the sweep"
    );
}
