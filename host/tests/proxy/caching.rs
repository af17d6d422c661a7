//! What gets cached, for how long, and for whom.

use std::time::Duration;

use caje::demo_origin::DemoOrigin;
use caje_testkit::{TestNode, TestOrigin, get, get_h2, get_with, respond};

async fn demo() -> DemoOrigin {
    DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::from_millis(50))
        .await
        .unwrap()
}

#[tokio::test]
async fn second_request_is_a_hit_and_never_reaches_the_origin() {
    let origin = demo().await;
    let node = TestNode::start(&origin.url()).await;
    let first = get(&node.url("/fast")).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.x_cache(), "MISS");
    assert!(
        first
            .header("cache-status")
            .unwrap()
            .contains("fwd=uri-miss")
    );
    for _ in 0..3 {
        let again = get(&node.url("/fast")).await;
        assert_eq!(again.x_cache(), "HIT");
        assert_eq!(again.body, first.body);
        assert!(
            again
                .header("cache-status")
                .unwrap()
                .starts_with("caje; hit; ttl=")
        );
    }
    assert_eq!(origin.state.requests("/fast"), 1);
    // The query string is part of the key.
    get(&node.url("/fast?v=2")).await;
    assert_eq!(origin.state.requests("/fast?v=2"), 1);
}

#[tokio::test]
async fn age_counts_the_origins_age_plus_time_in_cache() {
    let origin = TestOrigin::start(|_| async {
        respond(
            200,
            &[("cache-control", "max-age=1000"), ("age", "100")],
            "aged",
        )
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    get(&node.url("/a")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let hit = get(&node.url("/a")).await;
    assert_eq!(hit.x_cache(), "HIT");
    let age: u64 = hit.header("age").unwrap().parse().unwrap();
    assert!((101..110).contains(&age), "age {age}");
}

#[tokio::test]
async fn s_maxage_governs_a_shared_cache() {
    let origin = TestOrigin::start(|request| async move {
        match request.uri().path() {
            "/shared-longer" => respond(200, &[("cache-control", "max-age=0, s-maxage=60")], "s"),
            _ => respond(200, &[("cache-control", "max-age=60, s-maxage=0")], "m"),
        }
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    for _ in 0..3 {
        get(&node.url("/shared-longer")).await;
        get(&node.url("/shared-zero")).await;
    }
    assert_eq!(
        origin.hits("/shared-longer"),
        1,
        "s-maxage=60 must be cached by a shared cache"
    );
    assert_eq!(
        origin.hits("/shared-zero"),
        3,
        "s-maxage=0 overrides max-age for a shared cache"
    );
}

#[tokio::test]
async fn no_store_private_and_set_cookie_are_never_served_from_cache() {
    let origin = TestOrigin::start(|request| async move {
        match request.uri().path() {
            "/no-store" => respond(200, &[("cache-control", "no-store")], "n"),
            "/private" => respond(200, &[("cache-control", "private, max-age=60")], "p"),
            _ => respond(
                200,
                &[("cache-control", "max-age=60"), ("set-cookie", "id=1")],
                "c",
            ),
        }
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    for _ in 0..2 {
        // Cache-Status says why each was not stored (RFC 9211 `detail`).
        for (path, detail) in [
            ("/no-store", "no-store"),
            ("/private", "private"),
            ("/cookie", "set-cookie"),
        ] {
            let reply = get(&node.url(path)).await;
            assert_eq!(reply.x_cache(), "MISS", "{path}");
            assert_eq!(
                reply.header("cache-status"),
                Some(format!("caje; fwd=uri-miss; detail={detail}").as_str()),
                "{path}"
            );
        }
    }
    assert_eq!(origin.hits("/no-store"), 2);
    assert_eq!(origin.hits("/private"), 2);
    assert_eq!(origin.hits("/cookie"), 2);
    assert_eq!(node.cache_files().len(), 0, "nothing may reach the disk");
}

#[tokio::test]
async fn vary_keeps_one_variant_per_normalized_request() {
    let origin = demo().await;
    let node = TestNode::start(&origin.url()).await;
    let gzip = get_with(&node.url("/vary"), &[("accept-encoding", "gzip, deflate")]).await;
    let br = get_with(&node.url("/vary"), &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(gzip.text(), "variant for accept-encoding=gzip\n");
    assert_eq!(br.text(), "variant for accept-encoding=br\n");
    assert_eq!(origin.state.requests("/vary"), 2);
    // Equivalent Accept-Encoding values normalize to the same variant: hits.
    let gzip_again = get_with(&node.url("/vary"), &[("accept-encoding", "GZIP")]).await;
    let br_again = get_with(
        &node.url("/vary"),
        &[("accept-encoding", "br;q=1, gzip;q=0.5")],
    )
    .await;
    let none = get(&node.url("/vary")).await;
    assert_eq!(gzip_again.x_cache(), "HIT");
    assert_eq!(gzip_again.text(), gzip.text());
    assert_eq!(br_again.x_cache(), "HIT");
    assert_eq!(br_again.text(), br.text());
    assert_eq!(none.x_cache(), "MISS");
    assert_eq!(none.text(), "variant for accept-encoding=none\n");
    assert_eq!(origin.state.requests("/vary"), 3);
}

#[tokio::test]
async fn vary_star_is_never_reused() {
    let origin = TestOrigin::start(|_| async {
        respond(200, &[("cache-control", "max-age=60"), ("vary", "*")], "v")
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    get(&node.url("/star")).await;
    let again = get(&node.url("/star")).await;
    assert_eq!(origin.hits("/star"), 2);
    assert_eq!(
        again.header("cache-status"),
        Some("caje; fwd=uri-miss; detail=vary-star")
    );
}

#[tokio::test]
async fn http1_and_http2_clients_share_entries() {
    let origin = demo().await;
    let node = TestNode::start(&origin.url()).await;
    let h2 = get_h2(&node.url("/fast")).await;
    assert_eq!(h2.x_cache(), "MISS");
    let h1 = get(&node.url("/fast")).await;
    assert_eq!(h1.x_cache(), "HIT");
    assert_eq!(origin.state.requests("/fast"), 1);
}

#[tokio::test]
async fn authorization_is_served_from_cache_only_when_the_response_allows_it() {
    let origin = TestOrigin::start(|request| async move {
        match request.uri().path() {
            "/public" => respond(
                200,
                &[("cache-control", "public, max-age=60")],
                "for everyone",
            ),
            _ => respond(200, &[("cache-control", "max-age=60")], "maybe personal"),
        }
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    // An anonymous request fills both.
    get(&node.url("/public")).await;
    get(&node.url("/plain")).await;
    let auth = [("authorization", "Bearer alice")];
    let public = get_with(&node.url("/public"), &auth).await;
    let plain = get_with(&node.url("/plain"), &auth).await;
    assert_eq!(public.x_cache(), "HIT");
    assert_eq!(plain.x_cache(), "MISS");
    assert_eq!(origin.hits("/public"), 1);
    assert_eq!(origin.hits("/plain"), 2);
    // A response to an authorized request without `public` is not stored for others.
    get_with(&node.url("/secret"), &auth).await;
    let anonymous = get(&node.url("/secret")).await;
    assert_eq!(anonymous.x_cache(), "MISS");
    assert_eq!(origin.hits("/secret"), 2);
}

#[tokio::test]
async fn range_requests_are_served_from_the_complete_entry() {
    let origin = demo().await;
    let node = TestNode::start(&origin.url()).await;
    let full = get(&node.url("/bytes/1000")).await;
    assert_eq!(full.body.len(), 1000);
    let part = get_with(&node.url("/bytes/1000"), &[("range", "bytes=10-19")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(&part.body[..], &full.body[10..20]);
    let suffix = get_with(&node.url("/bytes/1000"), &[("range", "bytes=-5")]).await;
    assert_eq!(&suffix.body[..], &full.body[995..]);
    let beyond = get_with(&node.url("/bytes/1000"), &[("range", "bytes=5000-")]).await;
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */1000"));
    let stale_if_range = get_with(
        &node.url("/bytes/1000"),
        &[("range", "bytes=0-1"), ("if-range", "\"other\"")],
    )
    .await;
    assert_eq!(stale_if_range.status, 200);
    assert_eq!(stale_if_range.body.len(), 1000);
    assert_eq!(origin.state.requests("/bytes/1000"), 1);
}

#[tokio::test]
async fn no_cache_request_and_only_if_cached_are_honoured() {
    let origin = demo().await;
    let node = TestNode::start(&origin.url()).await;
    let missing = get_with(&node.url("/fast"), &[("cache-control", "only-if-cached")]).await;
    assert_eq!(missing.status, 504);
    assert_eq!(origin.state.requests("/fast"), 0);
    get(&node.url("/fast")).await;
    let cached = get_with(&node.url("/fast"), &[("cache-control", "only-if-cached")]).await;
    assert_eq!(cached.x_cache(), "HIT");
    get_with(&node.url("/fast"), &[("cache-control", "no-cache")]).await;
    assert_eq!(origin.state.requests("/fast"), 2);
}

#[tokio::test]
async fn https_origins_are_fetched_over_tls_with_an_operator_ca() {
    let (origin, ca_pem) = TestOrigin::start_tls(|request| async move {
        let version = format!("{:?}", request.version());
        respond(200, &[("cache-control", "max-age=60")], &version)
    })
    .await;
    let url = format!("https://localhost:{}", origin.addr.port());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("origin-ca.pem"), &ca_pem).unwrap();
    let ca = dir.path().join("origin-ca.pem");
    let node =
        TestNode::start_with_origin(&url, &format!("ca_file = \"{}\"", ca.display()), "").await;
    let first = get(&node.url("/tls")).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "HTTP/2.0", "h2 negotiated by ALPN");
    assert_eq!(get(&node.url("/tls")).await.x_cache(), "HIT");
    assert_eq!(origin.hits("/tls"), 1);
    // Without the CA the origin's certificate is not trusted: a 502 that says why.
    let untrusting = TestNode::start(&url).await;
    let refused = get(&untrusting.url("/tls")).await;
    assert_eq!(refused.status, 502);
    assert!(
        refused.text().to_lowercase().contains("certificate"),
        "{}",
        refused.text()
    );
}
