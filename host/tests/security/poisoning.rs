//! Cache poisoning and deception: what one client sends never changes what another receives,
//! unless the response says it may be shared. An attacker's request, then a victim's.

use std::sync::Arc;
use std::time::Duration;

use caje_testkit::{TestNode, TestOrigin, eventually, get, get_with, respond};
use tokio::sync::Notify;

use crate::support::reflecting_origin;

/// Headers some origin frameworks obey although the cache key ignores them, with values an
/// attacker would send.
const OVERRIDES: [(&str, &str); 17] = [
    ("x-forwarded-host", "evil.example"),
    ("x-forwarded-scheme", "nothttp"),
    ("x-forwarded-proto", "nothttp"),
    ("x-forwarded-port", "6666"),
    ("x-forwarded-prefix", "/evil"),
    ("x-forwarded-server", "evil.example"),
    ("x-forwarded-ssl", "evil-on"),
    ("x-host", "evil.example"),
    ("x-original-host", "evil.example"),
    ("x-original-url", "/evil"),
    ("x-rewrite-url", "/evil"),
    ("x-http-method-override", "EVIL"),
    ("x-http-method", "EVIL"),
    ("x-method-override", "EVIL"),
    ("x-url-scheme", "nothttp"),
    ("front-end-https", "evil-on"),
    ("forwarded", "host=evil.example;proto=nothttp"),
];

#[tokio::test]
async fn unkeyed_override_headers_never_reach_the_origin_nor_the_next_client() {
    let origin = reflecting_origin().await;
    let node = TestNode::start(&origin.url()).await;
    let mut attack: Vec<(&str, &str)> = OVERRIDES.to_vec();
    attack.push(("x-forwarded-for", "6.6.6.6"));
    attack.push(("x-real-ip", "6.6.6.6"));
    let attacker = get_with(&node.url("/page"), &attack).await;
    let seen = attacker.text();
    for (name, value) in OVERRIDES {
        assert!(!seen.contains(value), "{name} reached the origin:\n{seen}");
    }
    // caje's own forwarding headers: the host and scheme it served, the address it saw appended
    // to the chain (the origin trusts only the addresses its own proxies add).
    let host = node.node().addr.to_string();
    assert!(
        seen.contains(&format!("x-forwarded-host: {host}\n")),
        "{seen}"
    );
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(
        seen.contains("x-forwarded-for: 6.6.6.6, 127.0.0.1\n"),
        "{seen}"
    );
    assert!(!seen.contains("x-real-ip"), "{seen}");
    let victim = get(&node.url("/page")).await;
    assert_eq!(victim.x_cache(), "HIT");
    for (_, value) in OVERRIDES {
        assert!(!victim.text().contains(value), "{}", victim.text());
    }
    assert_eq!(origin.hits("/page"), 1);
}

/// An origin that greets whoever its credentials say, with the response's `cache-control`
/// taken from the path: `/private` says nothing about sharing, `/public` says `public`.
async fn greeting_origin() -> TestOrigin {
    TestOrigin::start(|request: http::Request<hyper::body::Incoming>| async move {
        let who = ["cookie", "authorization"]
            .iter()
            .find_map(|name| request.headers().get(*name))
            .map_or("anonymous".to_owned(), |v| {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            });
        let cache_control = if request.uri().path() == "/public" {
            "public, max-age=60"
        } else {
            "max-age=60"
        };
        respond(
            200,
            &[("cache-control", cache_control)],
            &format!("hello {who}"),
        )
    })
    .await
}

#[tokio::test]
async fn a_response_to_credentials_is_shared_only_when_it_says_public() {
    let origin = greeting_origin().await;
    let node = TestNode::start(&origin.url()).await;
    for credentials in [
        ("cookie", "session=attacker"),
        ("authorization", "Bearer attacker"),
    ] {
        let path = format!("/private?{}", credentials.0);
        let attacker = get_with(&node.url(&path), &[credentials]).await;
        assert!(attacker.text().contains("attacker"));
        let victim = get(&node.url(&path)).await;
        assert_eq!(victim.text(), "hello anonymous", "{credentials:?}");
        assert_eq!(origin.hits(&path), 2, "{credentials:?} was stored");
    }
    // `public` is the origin's word that the answer is the same for everyone: caje believes it.
    let attacker = get_with(&node.url("/public"), &[("cookie", "session=attacker")]).await;
    assert_eq!(attacker.text(), "hello session=attacker");
    let victim = get(&node.url("/public")).await;
    assert_eq!(victim.x_cache(), "HIT");
    assert_eq!(origin.hits("/public"), 1);
}

/// An origin whose answers vary on `header`, greeting whoever `describe` makes of its value
/// (given the request's value, if any).
async fn varying_origin(
    header: &'static str,
    cache_control: &'static str,
    describe: fn(Option<&[u8]>) -> String,
) -> TestOrigin {
    TestOrigin::start(
        move |request: http::Request<hyper::body::Incoming>| async move {
            let who = describe(request.headers().get(header).map(|v| v.as_bytes()));
            respond(
                200,
                &[("cache-control", cache_control), ("vary", header)],
                &format!("hello {who}"),
            )
        },
    )
    .await
}

#[tokio::test]
async fn vary_on_a_header_the_key_lacks_keeps_variants_apart() {
    let origin = varying_origin("x-device", "max-age=60", |value| {
        String::from_utf8_lossy(value.unwrap_or(b"none")).into_owned()
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    let attacker = get_with(&node.url("/v"), &[("x-device", "evil")]).await;
    assert_eq!(attacker.text(), "hello evil");
    assert_eq!(get(&node.url("/v")).await.text(), "hello none");
    let phone = get_with(&node.url("/v"), &[("x-device", "phone")]).await;
    assert_eq!(phone.text(), "hello phone");
    let again = get_with(&node.url("/v"), &[("x-device", "evil")]).await;
    assert_eq!(
        (again.text().as_str(), again.x_cache()),
        ("hello evil", "HIT")
    );
    assert_eq!(origin.hits("/v"), 3);
}

/// Requests now coalesced on a fetch in this process, read from `/_caje/metrics` (loopback
/// clients need no token when none is configured).
async fn coalesced(node: &TestNode) -> u64 {
    let metrics = get(&node.url("/_caje/metrics")).await.text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("caje_coalesced_requests_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn set_cookie_never_reaches_the_clients_coalesced_on_another_clients_fetch() {
    // The first client's request is held at the origin until the others wait on its fetch; every
    // answer sets a cookie for the client whose request the origin received.
    let release = Arc::new(Notify::new());
    let held = release.clone();
    let origin = TestOrigin::start(move |request: http::Request<hyper::body::Incoming>| {
        let held = held.clone();
        async move {
            if request.headers().contains_key("x-hold") {
                held.notified().await;
            }
            let status = if request.uri().path() == "/error" {
                500
            } else {
                200
            };
            let who = request.headers().get("x-who").and_then(|v| v.to_str().ok());
            let cookie = format!("session={}", who.unwrap_or("nobody"));
            respond(
                status,
                &[("cache-control", "max-age=60"), ("set-cookie", &cookie)],
                "personal",
            )
        }
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    for path in ["/error", "/ok"] {
        let url = node.url(path);
        let before = coalesced(&node).await;
        let leader = {
            let url = url.clone();
            tokio::spawn(
                async move { get_with(&url, &[("x-hold", "1"), ("x-who", "first")]).await },
            )
        };
        eventually(
            "the first fetch to reach the origin",
            Duration::from_secs(10),
            || origin.hits(path) == 1,
        )
        .await;
        let followers: Vec<_> = (0..3)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { get_with(&url, &[("x-who", "other")]).await })
            })
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while coalesced(&node).await < before + 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "followers never joined the fetch"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        release.notify_one();
        let leader = leader.await.unwrap();
        // A 200 that sets a cookie is the first client's alone; a server error is shared with
        // every client that waited on it, so it sets no cookie for anyone.
        let expected = (path == "/ok").then_some("session=first");
        assert_eq!(leader.header("set-cookie"), expected, "{path}");
        for follower in followers {
            let follower = follower.await.unwrap();
            assert_ne!(
                follower.header("set-cookie"),
                Some("session=first"),
                "{path}: a follower got the first client's cookie"
            );
        }
    }
}

#[tokio::test]
async fn credentials_a_response_varies_on_key_it_but_never_reach_the_disk() {
    let secret = "session=s3cr3t-5d1e";
    // Says who the cookie is without echoing it (the body is stored, and may hold anything).
    let origin = varying_origin("cookie", "public, max-age=60", |value| {
        match value {
            None => "anonymous",
            Some(b"session=s3cr3t-5d1e") => "alice",
            Some(_) => "someone else",
        }
        .to_owned()
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    let url = node.url("/me");
    let mine = [("cookie", secret)];
    assert_eq!(get_with(&url, &mine).await.text(), "hello alice");
    let again = get_with(&url, &mine).await;
    assert_eq!(
        (again.text().as_str(), again.x_cache()),
        ("hello alice", "HIT")
    );
    assert_eq!(get(&url).await.text(), "hello anonymous");
    let other = get_with(&url, &[("cookie", "session=other")]).await;
    assert_eq!(other.text(), "hello someone else");
    assert_eq!(origin.hits("/me"), 3);
    let files = node.cache_files();
    assert!(!files.is_empty());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the cookie",
            file.display()
        );
    }
}

/// Public, and may be served stale while it is refreshed in the background.
const SWR: [(&str, &str); 1] = [(
    "cache-control",
    "public, max-age=60, stale-while-revalidate=600",
)];

#[tokio::test]
async fn a_request_with_credentials_never_starts_a_shared_background_refresh() {
    let credentialed = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = credentialed.clone();
    let origin = TestOrigin::start(move |request: http::Request<hyper::body::Incoming>| {
        if request.headers().contains_key("authorization") {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        async { respond(200, &SWR, "page") }
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    let url = node.url("/swr");
    assert_eq!(get(&url).await.x_cache(), "MISS");
    // A soft purge makes the entry stale now, within its stale-while-revalidate window.
    let purge = http::Request::post(node.url("/_caje/purge"))
        .body(http_body_util::Full::new(bytes::Bytes::from(
            serde_json::json!({ "url": url, "soft": true }).to_string(),
        )))
        .unwrap();
    assert_eq!(caje_testkit::send(purge).await.status, 200);
    // Served stale, as the response allows; but the refresh that serves everyone must not be
    // fetched with this client's credentials.
    let with_credentials = get_with(&url, &[("authorization", "Bearer attacker")]).await;
    assert_eq!(with_credentials.x_cache(), "STALE");
    // An anonymous request refreshes it (or finds it refreshed).
    let anonymous = get(&url).await;
    assert!(
        matches!(anonymous.x_cache(), "STALE" | "HIT"),
        "{anonymous:?}"
    );
    eventually("the background refresh", Duration::from_secs(10), || {
        origin.hits("/swr") == 2
    })
    .await;
    assert_eq!(
        credentialed.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the shared refresh carried a client's Authorization"
    );
}

#[tokio::test]
async fn a_policy_that_forces_storing_still_never_shares_set_cookie() {
    // ttl-override stores every /static/ answer for five minutes, whatever the origin says.
    let origin = TestOrigin::start(|request: http::Request<hyper::body::Incoming>| async move {
        let who = request.headers().get("x-who").and_then(|v| v.to_str().ok());
        let cookie = format!("session={}", who.unwrap_or("nobody"));
        respond(200, &[("set-cookie", &cookie)], "app.js")
    })
    .await;
    let node = crate::support::node_with_policy(&origin.url(), "ttl-override").await;
    let url = node.url("/static/app.js");
    let attacker = get_with(&url, &[("x-who", "attacker")]).await;
    assert_eq!(attacker.text(), "app.js");
    // Stored without its cookie: the first client does not get it either, since what it got is
    // what everyone gets.
    assert_eq!(attacker.header("set-cookie"), None);
    let victim = get(&url).await;
    assert_eq!(
        (victim.x_cache(), victim.header("set-cookie")),
        ("HIT", None)
    );
    assert_eq!(origin.hits("/static/app.js"), 1);
    for file in node.cache_files() {
        let bytes = std::fs::read(&file).unwrap();
        let cookie = b"session=attacker";
        assert!(
            !bytes.windows(cookie.len()).any(|w| w == cookie),
            "{}",
            file.display()
        );
    }
}
