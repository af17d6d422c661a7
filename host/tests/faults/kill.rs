//! SIGKILL while a thousand fills are in flight: after a restart on the same cache directory
//! every body is byte-identical to the origin's, what the kill broke is fetched again, and no
//! temp file survives, however many times it happens.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use caje::body::Body;
use caje_testkit::{TestOrigin, eventually, try_get};
use futures_util::StreamExt;
use http::Response;

use crate::support::{self, Caje, pattern, temp_files};

const OBJECTS: usize = 1000;
/// Requests in flight while loading (enough for many fills at once when caje dies) and
/// while verifying (fewer: a loaded machine must not push the origin past read_timeout).
const CONCURRENCY: usize = 48;
const VERIFY_CONCURRENCY: usize = 16;
const LARGE: usize = 512 << 10;
const CHUNK: usize = 32 << 10;

/// Every tenth object is large and streamed slowly, so fills are in flight when caje dies.
fn size_of(n: usize) -> usize {
    if n.is_multiple_of(10) {
        LARGE
    } else {
        1 + (n * 7919) % (48 << 10)
    }
}

/// Objects whose whole body the origin has sent.
type Finished = Arc<Mutex<HashSet<usize>>>;

async fn origin(finished: Finished) -> TestOrigin {
    TestOrigin::start(move |request| {
        let finished = finished.clone();
        async move {
            let n: usize = request
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let body = Bytes::from(pattern(n, size_of(n)));
            let chunks: Vec<Bytes> = (0..body.len())
                .step_by(CHUNK)
                .map(|at| body.slice(at..(at + CHUNK).min(body.len())))
                .collect();
            let count = chunks.len();
            let stream = futures_util::stream::iter(chunks.into_iter().enumerate()).then(
                move |(i, chunk)| {
                    let finished = finished.clone();
                    async move {
                        if count > 1 {
                            tokio::time::sleep(Duration::from_millis(15)).await;
                        }
                        if i + 1 == count {
                            finished.lock().unwrap().insert(n);
                        }
                        Ok::<_, std::io::Error>(chunk)
                    }
                },
            );
            Response::builder()
                .header("cache-control", "max-age=3600")
                .header("content-length", body.len())
                .body(Body::stream(stream))
                .unwrap()
        }
    })
    .await
}

/// Each round asks for objects of its own, so that its fills are fresh.
fn path(round: usize, n: usize) -> String {
    format!("/{round}/{n}")
}

/// Requests every object, `CONCURRENCY` at a time, until caje is killed under them.
async fn load(base: String, round: usize) {
    futures_util::stream::iter(0..OBJECTS)
        .for_each_concurrent(CONCURRENCY, |n| {
            let url = format!("{base}{}", path(round, n));
            async move {
                let _ = try_get(&url).await;
            }
        })
        .await;
}

/// Every object is served whole; the ones the kill cut off are misses that reach the origin.
/// Returns how many were hits.
async fn verify(caje: &Caje, origin: &TestOrigin, round: usize, cut_off: &HashSet<usize>) -> usize {
    let verdicts = futures_util::stream::iter(0..OBJECTS)
        .map(|n| async move {
            let path = path(round, n);
            let before = origin.hits(&path);
            let reply = try_get(&caje.url(&path))
                .await
                .unwrap_or_else(|err| panic!("{path}: {err}"));
            assert_eq!(reply.status, 200, "{path}");
            assert!(
                reply.body[..] == pattern(n, size_of(n))[..],
                "{path}: the body differs from the origin's ({} bytes, {})",
                reply.body.len(),
                reply.x_cache()
            );
            let fetched = origin.hits(&path) > before;
            match reply.x_cache() {
                "HIT" => {
                    assert!(!fetched, "{path}: a hit reached the origin");
                    assert!(
                        !cut_off.contains(&n),
                        "{path}: its body was cut off by the kill yet it is a hit"
                    );
                    true
                }
                "MISS" => {
                    assert!(fetched, "{path}: a miss did not reach the origin");
                    false
                }
                other => panic!("{path}: unexpected X-Cache {other:?}"),
            }
        })
        .buffer_unordered(VERIFY_CONCURRENCY)
        .collect::<Vec<bool>>()
        .await;
    verdicts.into_iter().filter(|hit| *hit).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_fill_never_serves_a_broken_entry_or_leaves_temp_files() {
    let finished = Finished::default();
    let origin = origin(finished.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut caje = Caje::start(
        dir.path(),
        &support::config(&origin.url(), "127.0.0.1:0", ""),
    )
    .await;
    let listen = caje.addr.to_string();
    for round in 1..=2 {
        finished.lock().unwrap().clear();
        let load = tokio::spawn(load(format!("http://{listen}"), round));
        // Kill once a good part is stored and fills are genuinely in flight: temp files
        // exist, large bodies are half sent.
        let cache_dir = caje.cache_dir();
        eventually("fills in flight", Duration::from_secs(60), || {
            finished.lock().unwrap().len() >= OBJECTS / 4 && temp_files(&cache_dir).len() >= 3
        })
        .await;
        caje.kill();
        let in_flight = temp_files(&cache_dir).len();
        // Every object the origin had not finished sending when caje died.
        let cut_off: HashSet<usize> = (0..OBJECTS)
            .filter(|n| origin.hits(&path(round, *n)) > 0 && !finished.lock().unwrap().contains(n))
            .collect();
        load.await.unwrap();
        assert!(in_flight > 0, "round {round}: the kill left no fill behind");
        assert!(
            !cut_off.is_empty(),
            "round {round}: some origin bodies were cut off"
        );

        caje = Caje::start(dir.path(), &support::config(&origin.url(), &listen, "")).await;
        eventually(
            "the temp files of the killed process to be swept",
            Duration::from_secs(20),
            || temp_files(&cache_dir).is_empty(),
        )
        .await;
        let hits = verify(&caje, &origin, round, &cut_off).await;
        assert!(
            hits > 0 && hits < OBJECTS,
            "round {round}: entries completed before the kill are hits, the rest misses ({hits} hits)"
        );
        assert!(
            temp_files(&cache_dir).is_empty(),
            "round {round}: no temp file after the restart: {:?}",
            temp_files(&cache_dir)
        );
    }
}
