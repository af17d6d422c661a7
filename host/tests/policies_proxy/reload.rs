//! Hot reload while requests flow: a module is added, replaced by a rename and deleted while a
//! background client sends requests without pause. No request fails, and each change shows.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caje_testkit::{TestOrigin, policies, respond, try_get};

use super::{Caje, RELOAD_LIMIT};

const FILE: &str = "10-swap.wasm";

async fn named_origin(name: &'static str) -> TestOrigin {
    TestOrigin::start(move |request| async move {
        let policy = request
            .headers()
            .get("x-policy")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("-");
        let body = format!("{name} policy={policy}");
        respond(200, &[("cache-control", "no-store")], &body)
    })
    .await
}

/// What the background client saw: how many requests succeeded, the body of the latest, and
/// every failure.
#[derive(Default)]
struct Load {
    ok: u64,
    latest: String,
    failures: Vec<String>,
}

/// Waits until the background client's latest answer is `expected`; fails after [`RELOAD_LIMIT`].
async fn until_answer(load: &Mutex<Load>, expected: &str) {
    let deadline = Instant::now() + RELOAD_LIMIT;
    loop {
        let (ok, latest) = {
            let load = load.lock().unwrap();
            (load.ok, load.latest.clone())
        };
        if latest == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {ok} requests, still answering {latest:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_are_swapped_under_load_without_a_failed_request() {
    let default = named_origin("default").await;
    let api = named_origin("api").await;
    let node = Caje::new(&default.url()).api(&api.url()).start().await;
    let url = node.url("/api/items");
    let load = Arc::new(Mutex::new(Load::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = tokio::spawn({
        let (load, stop) = (load.clone(), stop.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let reply = try_get(&url).await;
                let mut load = load.lock().unwrap();
                match reply {
                    Ok(reply) if reply.status == 200 => {
                        load.ok += 1;
                        load.latest = reply.text();
                    }
                    Ok(reply) => load
                        .failures
                        .push(format!("{} {}", reply.status, reply.text())),
                    Err(err) => load.failures.push(err),
                }
            }
        }
    });

    until_answer(&load, "default policy=-").await;
    let dir = node.policies_dir();
    policies::install(&dir, FILE, "route-by-path");
    until_answer(&load, "api policy=-").await;
    // Replaced by a rename over the old file: the new module routes nowhere but edits headers.
    policies::install(&dir, FILE, "decorate");
    until_answer(&load, "default policy=decorate").await;
    fs::remove_file(dir.join(FILE)).unwrap();
    until_answer(&load, "default policy=-").await;

    stop.store(true, Ordering::Relaxed);
    client.await.unwrap();
    let load = load.lock().unwrap();
    assert!(
        load.failures.is_empty(),
        "failed requests: {:?}",
        load.failures
    );
    assert!(default.hits("/api/items") > 0 && api.hits("/api/items") > 0);
}
