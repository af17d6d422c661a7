//! `bypass-private`: requests with `Cookie` or `Authorization` bypass the cache unless the path
//! is public; on public paths the credentials never reach the origin and the response is cached
//! for everyone.

use caje_testkit::{get, get_with, respond};

use super::{Caje, recording_origin, values};

const COOKIE: (&str, &str) = ("cookie", "session=alice");
const BEARER: (&str, &str) = ("authorization", "Bearer alice");
#[tokio::test]
async fn credentials_bypass_the_cache_except_on_public_paths() {
    let (origin, seen) =
        recording_origin(|_| respond(200, &[("cache-control", "max-age=60")], "page")).await;
    let node = Caje::new(&origin.url())
        .module("20-private.wasm", "bypass-private")
        .start()
        .await;

    for credentials in [COOKIE, BEARER] {
        for _ in 0..2 {
            let account = get_with(&node.url("/account"), &[credentials]).await;
            assert_eq!(account.status, 200);
            assert_eq!(account.x_cache(), "BYPASS", "{credentials:?}");
        }
    }
    let account = seen.headers("/account");
    assert_eq!(account.len(), 4, "every private request reaches the origin");
    assert_eq!(values(&account[0], "cookie"), ["session=alice"]);
    assert_eq!(values(&account[2], "authorization"), ["Bearer alice"]);

    // Anonymous requests are cached as usual.
    assert_eq!(get(&node.url("/news")).await.x_cache(), "MISS");
    assert_eq!(get(&node.url("/news")).await.x_cache(), "HIT");

    // Public paths: stored once, without the credentials, and served to everyone.
    let first = get_with(&node.url("/static/logo.png"), &[COOKIE, BEARER]).await;
    assert_eq!(first.x_cache(), "MISS");
    let public = seen.headers("/static/logo.png");
    assert_eq!(public.len(), 1);
    assert!(
        !public[0].contains_key("cookie") && !public[0].contains_key("authorization"),
        "credentials reached the origin: {:?}",
        public[0]
    );
    for credentials in [[COOKIE, BEARER], [BEARER, COOKIE]] {
        let again = get_with(&node.url("/static/logo.png"), &credentials).await;
        assert_eq!(again.x_cache(), "HIT");
        assert_eq!(again.text(), "page");
    }
    assert_eq!(get(&node.url("/static/logo.png")).await.x_cache(), "HIT");
    assert_eq!(origin.hits("/static/logo.png"), 1);
}
