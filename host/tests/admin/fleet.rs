//! Two nodes sharing one manifest (one local SQLite file): what one stores, the other warms in
//! the background; what one purges, the other drops, also when it was down at the time; warming
//! keeps to its concurrency, leaves a failing origin alone, and never fetches a page that a
//! client request is already filling.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use caje_testkit::{TestNode, TestOrigin, eventually, eventually_async, respond, x_cache_as};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::support::{self, TOKEN, base, call, post};

/// Every request names this host, so one path is one cache key on both nodes.
const HOST: &str = "cdn.test";
/// Bound on anything that should happen in the background.
const SETTLE: Duration = Duration::from_secs(20);

fn url(path: &str) -> String {
    format!("http://{HOST}{path}")
}

/// A node named `name` in front of `origin`, on `database` (its own when `None`), with
/// `populate` keys in its `[populate]` table (polling every 20 ms unless they say otherwise).
async fn node(
    origin: &str,
    database: Option<&std::path::Path>,
    name: &str,
    populate: &str,
) -> TestNode {
    let populate = if populate.contains("interval") {
        populate.to_owned()
    } else {
        format!("interval = \"20ms\"\n{populate}")
    };
    support::start_on(
        origin,
        database,
        "",
        &format!("node = \"{name}\"\n"),
        &format!("[populate]\n{populate}\n"),
    )
    .await
}

/// Node "a" and node "b" on a's manifest, in front of `origin`.
async fn pair(origin: &str, populate: &str) -> (TestNode, TestNode) {
    let a = node(origin, None, "a", populate).await;
    let database = a.config.database.clone();
    let b = node(origin, Some(&database), "b", populate).await;
    (a, b)
}

/// The origin's page at `path`: cacheable for ten minutes, its body the path.
fn page(path: &str) -> http::Response<caje::body::Body> {
    respond(200, &[("cache-control", "max-age=600")], path)
}

/// GETs `path` from `node` as [`HOST`]; returns the `X-Cache` verdict of a 200.
async fn fetch(node: &TestNode, path: &str) -> String {
    x_cache_as(&node.url(path), HOST).await
}

fn holds(node: &TestNode, path: &str) -> bool {
    node.holds(&url(path))
}

/// Whether `node`'s copy of the page at `path` is fresh; `None` when it holds none.
fn fresh(node: &TestNode, path: &str) -> Option<bool> {
    let cache = &node.node().context.cache;
    let keys = cache
        .keys_of_url(&url(path))
        .expect("read the cache directory");
    let until = keys
        .iter()
        .find_map(|key| cache.fresh_until(key).expect("read an entry's head"))?;
    Some(until > std::time::SystemTime::now())
}

async fn wait_until_held(node: &TestNode, paths: &[&str], held: bool) {
    let what = format!("{paths:?} held = {held} by {}", node.node().addr);
    eventually(&what, SETTLE, || {
        paths.iter().all(|p| holds(node, p) == held)
    })
    .await;
}

async fn populate_status(node: &TestNode) -> Value {
    support::get(node, "/_caje/health").await["populate"].clone()
}

async fn purge(node: &TestNode, body: Value) -> Value {
    let (status, answer) = post(node, "/_caje/purge", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_missed_on_one_node_is_a_hit_on_the_other() {
    let origin = support::origin().await;
    let (a, b) = pair(&origin.url(), "").await;
    assert_eq!(fetch(&a, "/warm/1").await, "MISS");
    wait_until_held(&b, &["/warm/1"], true).await;
    let fetched = origin.hits("/warm/1");
    assert_eq!(fetched, 2, "one fetch by a's client, one by b's warming");
    assert_eq!(fetch(&b, "/warm/1").await, "HIT");
    assert_eq!(
        origin.hits("/warm/1"),
        fetched,
        "b's client did not reach the origin"
    );

    // The other way round too, and a's warming of b's page leaves b's copy alone.
    assert_eq!(fetch(&b, "/warm/2").await, "MISS");
    wait_until_held(&a, &["/warm/2"], true).await;
    assert_eq!(fetch(&a, "/warm/2").await, "HIT");
    assert_eq!(origin.hits("/warm/2"), 2);
    let status = populate_status(&b).await;
    assert_eq!(status["enabled"], true, "{status}");
    assert!(status["fetched_total"].as_u64() >= Some(1), "{status}");
    assert_eq!(status["error"], Value::Null, "{status}");
    let list = support::list_all(&b, "").await;
    let listed = list
        .iter()
        .find(|entry| entry["url"] == url("/warm/1"))
        .expect("listed");
    assert_eq!(listed["on_disk"], true, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_on_one_node_reach_the_files_of_the_other() {
    let origin = support::origin().await;
    let (a, b) = pair(&origin.url(), "").await;
    let paths = ["/p/url", "/p/pre/1", "/p/pre/2", "/p/soft", "/p/keep"];
    for path in paths {
        assert_eq!(fetch(&a, path).await, "MISS");
    }
    wait_until_held(&b, &paths, true).await;

    let answer = purge(&b, json!({ "url": url("/p/url") })).await;
    assert_eq!(answer["files"]["files"], 1, "{answer}");
    wait_until_held(&a, &["/p/url"], false).await;
    purge(&b, json!({ "prefix": url("/p/pre/") })).await;
    wait_until_held(&a, &["/p/pre/1", "/p/pre/2"], false).await;
    assert!(holds(&a, "/p/keep") && holds(&a, "/p/soft"));

    // A soft purge leaves the file but makes it stale everywhere: the next request revalidates.
    purge(&b, json!({ "url": url("/p/soft"), "soft": true })).await;
    eventually("a's copy of /p/soft to be stale", SETTLE, || {
        fresh(&a, "/p/soft") == Some(false)
    })
    .await;
    assert_eq!(fetch(&a, "/p/soft").await, "REVALIDATED");
    assert_eq!(fetch(&a, "/p/keep").await, "HIT");
    assert_eq!(fetch(&a, "/p/url").await, "MISS");

    let purges = &populate_status(&a).await["purges"];
    assert!(purges["applied"].as_u64() >= Some(3), "{purges}");
    assert!(purges["applied_seq"].as_u64() > Some(0), "{purges}");
    assert_eq!(purges["error"], Value::Null, "{purges}");
    // The purging node applied its own purges already and skips them in the log.
    assert_eq!(populate_status(&b).await["purges"]["applied"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_during_a_purge_drops_the_page_before_it_serves_again() {
    let origin = support::origin().await;
    let (mut a, b) = pair(&origin.url(), "").await;
    for path in ["/r/gone", "/r/prefixed", "/r/stays"] {
        fetch(&a, path).await;
    }
    wait_until_held(&b, &["/r/gone", "/r/prefixed", "/r/stays"], true).await;
    a.stop().await;
    purge(&b, json!({ "url": url("/r/gone") })).await;
    purge(&b, json!({ "prefix": url("/r/pre") })).await;
    let a = a.restart().await;
    // No waiting: the purges were applied before the node took its first request.
    assert!(!holds(&a, "/r/gone") && !holds(&a, "/r/prefixed"));
    assert!(holds(&a, "/r/stays"));
    let before = origin.hits("/r/gone");
    assert_eq!(fetch(&a, "/r/gone").await, "MISS");
    assert_eq!(origin.hits("/r/gone"), before + 1);
    assert_eq!(fetch(&a, "/r/stays").await, "HIT");
    let state = a.cache_dir().join("purges-applied.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(
        saved["applied"],
        populate_status(&a).await["purges"]["applied_seq"]
    );
}

/// An origin that answers after `delay`, counting the requests in flight at once and the most
/// ever in flight.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_never_runs_more_fetches_than_its_concurrency() {
    const PAGES: usize = 24;
    const CONCURRENCY: usize = 3;
    let seen = Arc::new(Concurrency::default());
    let counting = Arc::clone(&seen);
    let origin = TestOrigin::start(move |request| {
        let seen = Arc::clone(&counting);
        async move {
            let now = seen.now.fetch_add(1, Ordering::SeqCst) + 1;
            seen.max.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            seen.now.fetch_sub(1, Ordering::SeqCst);
            page(request.uri().path())
        }
    })
    .await;
    let a = node(&origin.url(), None, "a", "enabled = false").await;
    let mut filling = tokio::task::JoinSet::new();
    let a = Arc::new(a);
    for i in 0..PAGES {
        let a = Arc::clone(&a);
        filling.spawn(async move { fetch(&a, &format!("/c/{i}")).await });
    }
    filling.join_all().await;
    support::flush(&a).await;
    seen.max.store(0, Ordering::SeqCst);

    let b = node(
        &origin.url(),
        Some(&a.config.database),
        "b",
        &format!("concurrency = {CONCURRENCY}"),
    )
    .await;
    let paths: Vec<String> = (0..PAGES).map(|i| format!("/c/{i}")).collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    wait_until_held(&b, &paths, true).await;
    // A pass is booked once its last fetch has returned, a moment after its file is held.
    eventually_async("b's pass to be booked", SETTLE, || async {
        populate_status(&b).await["fetched_total"] == PAGES
    })
    .await;
    let max = seen.max.load(Ordering::SeqCst);
    assert!(max <= CONCURRENCY, "{max} fetches at once");
    assert!(max >= 2, "the fetches overlapped ({max} at most)");
}

/// The failed rounds of the one failing origin in a populate status.
fn failed_rounds(status: &Value) -> u64 {
    status["backoff"][0]["failed_rounds"].as_u64().unwrap_or(0)
}

/// Polls `node`'s populate status until its origin failed `rounds` rounds in a row.
async fn wait_for_failed_rounds(node: &TestNode, rounds: u64) -> Value {
    for _ in 0..1000 {
        let status = populate_status(node).await;
        if failed_rounds(&status) >= rounds {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the origin did not fail {rounds} rounds: {}",
        populate_status(node).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_origin_is_left_alone_and_warmed_once_it_recovers() {
    const PAGES: u64 = 30;
    const CONCURRENCY: u64 = 2;
    let failing = Arc::new(AtomicBool::new(false));
    let failed_requests = Arc::new(AtomicUsize::new(0));
    let (mode, counter) = (Arc::clone(&failing), Arc::clone(&failed_requests));
    let origin = TestOrigin::start(move |request| {
        let (mode, counter) = (Arc::clone(&mode), Arc::clone(&counter));
        async move {
            if mode.load(Ordering::SeqCst) {
                counter.fetch_add(1, Ordering::SeqCst);
                return respond(503, &[], "down for maintenance");
            }
            page(request.uri().path())
        }
    })
    .await;
    let a = node(&origin.url(), None, "a", "enabled = false").await;
    for i in 0..PAGES {
        fetch(&a, &format!("/f/{i}")).await;
    }
    support::flush(&a).await;
    failing.store(true, Ordering::SeqCst);

    let b = node(
        &origin.url(),
        Some(&a.config.database),
        "b",
        &format!("concurrency = {CONCURRENCY}\nbackoff_min = \"20ms\"\nbackoff_max = \"200ms\""),
    )
    .await;
    wait_for_failed_rounds(&b, 4).await;
    // Requests first, rounds after: rounds only grow, so the bound holds at any moment.
    let requests = failed_requests.load(Ordering::SeqCst) as u64;
    let status = populate_status(&b).await;
    let failed_rounds = failed_rounds(&status);
    assert!(
        requests <= CONCURRENCY * (failed_rounds + 1),
        "{requests} requests in {failed_rounds} failed rounds: {status}"
    );
    assert!(requests < PAGES, "{requests}");
    assert_eq!(status["backoff"][0]["origin"], "origin");
    assert!(
        status["backoff"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{status}"
    );

    failing.store(false, Ordering::SeqCst);
    let paths: Vec<String> = (0..PAGES).map(|i| format!("/f/{i}")).collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    wait_until_held(&b, &paths, true).await;
    // Each fetch settles with its origin's gate once it has returned, after its file is held.
    eventually_async("the origin's pause to end", SETTLE, || async {
        populate_status(&b).await["backoff"] == json!([])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_origin_is_left_alone_too() {
    const PAGES: u64 = 20;
    let origin = support::origin().await;
    let a = node(&origin.url(), None, "a", "enabled = false").await;
    for i in 0..PAGES {
        fetch(&a, &format!("/u/{i}")).await;
    }
    support::flush(&a).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    // b knows the origin by the same name, at an address where nothing listens.
    let b = node(
        &nowhere,
        Some(&a.config.database),
        "b",
        "concurrency = 2\nbackoff_min = \"20ms\"\nbackoff_max = \"100ms\"",
    )
    .await;
    let status = wait_for_failed_rounds(&b, 3).await;
    let failed = status["failed_total"].as_u64().unwrap();
    let failed_rounds = failed_rounds(&status);
    assert!(failed <= 2 * (failed_rounds + 1), "{status}");
    assert!(
        status["last_pass"]["deferred"].as_u64() > Some(0),
        "{status}"
    );
    assert!((0..PAGES).all(|i| !holds(&b, &format!("/u/{i}"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_copy_is_refreshed_when_another_node_stores_the_page_again() {
    // No validators: a stale page is fetched whole again, and the new copy recorded.
    let origin = TestOrigin::cacheable().await;
    let (a, b) = pair(&origin.url(), "").await;
    assert_eq!(fetch(&a, "/stale").await, "MISS");
    wait_until_held(&b, &["/stale"], true).await;
    purge(&b, json!({ "url": url("/stale"), "soft": true })).await;
    eventually("a's copy to be stale", SETTLE, || {
        fresh(&a, "/stale") == Some(false)
    })
    .await;
    assert_eq!(fetch(&b, "/stale").await, "MISS");
    eventually("a's copy to be fresh again", SETTLE, || {
        fresh(&a, "/stale") == Some(true)
    })
    .await;
    let fetched = origin.hits("/stale");
    assert_eq!(fetched, 4, "a, b's warming, b's client, a's warming");
    assert_eq!(fetch(&a, "/stale").await, "HIT");
    assert_eq!(origin.hits("/stale"), fetched);
}

/// An origin whose every page is cacheable for ten minutes, except that requests for one path
/// wait while `hold` is set, until `release` is notified.
struct HeldOrigin {
    origin: TestOrigin,
    hold: Arc<AtomicBool>,
    release: Arc<Notify>,
}

impl HeldOrigin {
    async fn start(held_path: &'static str) -> HeldOrigin {
        let hold = Arc::new(AtomicBool::new(false));
        let release = Arc::new(Notify::new());
        let (holding, released) = (Arc::clone(&hold), Arc::clone(&release));
        let origin = TestOrigin::start(move |request| {
            let (holding, released) = (Arc::clone(&holding), Arc::clone(&released));
            async move {
                let path = request.uri().path().to_owned();
                if path == held_path && holding.load(Ordering::SeqCst) {
                    released.notified().await;
                }
                page(&path)
            }
        })
        .await;
        HeldOrigin {
            origin,
            hold,
            release,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_joins_a_fill_a_client_request_started() {
    let held = HeldOrigin::start("/join").await;
    let origin = &held.origin;
    let a = node(&origin.url(), None, "a", "enabled = false").await;
    fetch(&a, "/join").await;
    support::flush(&a).await;
    let b = Arc::new(
        node(
            &origin.url(),
            Some(&a.config.database),
            "b",
            "enabled = false",
        )
        .await,
    );
    held.hold.store(true, Ordering::SeqCst);

    let client = tokio::spawn({
        let b = Arc::clone(&b);
        async move { fetch(&b, "/join").await }
    });
    eventually("b's client fetch to reach the origin", SETTLE, || {
        origin.hits("/join") == 2
    })
    .await;
    let coalesced_before = coalesced(&b).await;
    let pass = tokio::spawn({
        let b = Arc::clone(&b);
        async move { post(&b, "/_caje/populate", "").await }
    });
    for _ in 0..500 {
        if coalesced(&b).await > coalesced_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        coalesced(&b).await > coalesced_before,
        "the warm joined the fill"
    );
    held.release.notify_waiters();
    assert_eq!(client.await.unwrap(), "MISS");
    let (status, report) = pass.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(origin.hits("/join"), 2, "the warm never reached the origin");
    assert_eq!(fetch(&b, "/join").await, "HIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_are_applied_while_a_long_pass_runs() {
    let held = HeldOrigin::start("/long/blocked").await;
    let origin = &held.origin;
    let a = node(&origin.url(), None, "a", "enabled = false").await;
    for path in ["/long/other", "/long/blocked"] {
        fetch(&a, path).await;
    }
    support::flush(&a).await;
    held.hold.store(true, Ordering::SeqCst);
    // b's first pass warms /long/other and then hangs on /long/blocked.
    let b = node(&origin.url(), Some(&a.config.database), "b", "").await;
    wait_until_held(&b, &["/long/other"], true).await;
    eventually("b's warming to wait for /long/blocked", SETTLE, || {
        origin.hits("/long/blocked") == 2
    })
    .await;
    purge(&a, json!({ "url": url("/long/other") })).await;
    wait_until_held(&b, &["/long/other"], false).await;
    let status = populate_status(&b).await;
    assert_eq!(
        status["in_flight"], 1,
        "the pass is still running: {status}"
    );
    assert_eq!(status["last_pass"], Value::Null, "{status}");
    held.release.notify_waiters();
    wait_until_held(&b, &["/long/blocked"], true).await;
}

/// `caje_coalesced_requests_total` as `node` exposes it (the recorder is the process's).
async fn coalesced(node: &TestNode) -> f64 {
    let reply = call(&base(node), "GET", "/_caje/metrics", "", Some(TOKEN)).await;
    reply
        .text()
        .lines()
        .find_map(|line| line.strip_prefix("caje_coalesced_requests_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
