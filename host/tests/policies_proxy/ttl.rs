//! `ttl-override`: `/static/*` is cached for 5 minutes whatever the origin says, heuristic TTLs
//! are capped at 10 minutes, `/admin` is never cached. Seen through origin request counters and
//! the TTL caje reports in `Cache-Status`.

use std::time::{Duration, SystemTime};

use caje_testkit::{Reply, TestOrigin, get, respond};

use super::Caje;

/// The `ttl=` of a `Cache-Status` header.
fn ttl(reply: &Reply) -> i64 {
    let status = reply.header("cache-status").unwrap_or_default();
    status
        .split("; ")
        .find_map(|part| part.strip_prefix("ttl="))
        .and_then(|ttl| ttl.parse().ok())
        .unwrap_or_else(|| panic!("no ttl in Cache-Status {status:?}"))
}

#[tokio::test]
async fn static_assets_are_cached_for_five_minutes_and_admin_never() {
    let last_modified =
        httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(100 * 24 * 3600));
    let origin = TestOrigin::start(move |request| {
        let last_modified = last_modified.clone();
        async move {
            match request.uri().path() {
                // Heuristically fresh for 10 days (10% of its age).
                "/old-page" => respond(200, &[("last-modified", &last_modified)], "old"),
                "/admin/users" => respond(200, &[("cache-control", "max-age=60")], "admin"),
                _ => respond(200, &[("cache-control", "max-age=0")], "asset"),
            }
        }
    })
    .await;
    let plain = Caje::new(&origin.url()).start().await;
    let node = Caje::new(&origin.url())
        .module("30-ttl.wasm", "ttl-override")
        .start()
        .await;

    for _ in 0..3 {
        get(&plain.url("/static/app.js")).await;
    }
    assert_eq!(
        origin.hits("/static/app.js"),
        3,
        "without the policy, max-age=0 goes to the origin every time"
    );

    let first = get(&node.url("/static/app.js")).await;
    assert_eq!(first.x_cache(), "MISS");
    let hit = get(&node.url("/static/app.js")).await;
    assert_eq!(hit.x_cache(), "HIT");
    assert_eq!(hit.text(), "asset");
    assert!((240..=300).contains(&ttl(&hit)), "{:?}", hit.headers);
    assert!(hit.header("age").is_some());
    assert_eq!(origin.hits("/static/app.js"), 4);

    for _ in 0..3 {
        let admin = get(&node.url("/admin/users")).await;
        assert_eq!(admin.status, 200);
        assert_eq!(admin.x_cache(), "BYPASS");
    }
    assert_eq!(origin.hits("/admin/users"), 3, "/admin is never cached");

    // The heuristic 10 days are capped at 10 minutes.
    let unpoliced = {
        get(&plain.url("/old-page")).await;
        ttl(&get(&plain.url("/old-page")).await)
    };
    assert!(unpoliced > 24 * 3600, "heuristic ttl {unpoliced}");
    get(&node.url("/old-page")).await;
    let capped = get(&node.url("/old-page")).await;
    assert_eq!(capped.x_cache(), "HIT");
    assert!((540..=600).contains(&ttl(&capped)), "{:?}", capped.headers);
}
