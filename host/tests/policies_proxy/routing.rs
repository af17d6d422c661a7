//! `route-by-path` sends `/api/*` to the origin named `api`, everything else to the default.

use caje_testkit::{TestOrigin, get, respond};

use super::Caje;

async fn named_origin(name: &'static str) -> TestOrigin {
    TestOrigin::start(move |request| async move {
        let body = format!("{name} answered {}", request.uri().path());
        respond(200, &[("cache-control", "max-age=60")], &body)
    })
    .await
}

#[tokio::test]
async fn api_paths_go_to_the_api_origin_and_are_cached_there() {
    let default = named_origin("default").await;
    let api = named_origin("api").await;
    let node = Caje::new(&default.url())
        .api(&api.url())
        .module("10-route.wasm", "route-by-path")
        .start()
        .await;

    let users = get(&node.url("/api/users")).await;
    assert_eq!(users.text(), "api answered /api/users");
    assert_eq!(users.x_cache(), "MISS");
    let home = get(&node.url("/apidocs")).await;
    assert_eq!(home.text(), "default answered /apidocs");
    let again = get(&node.url("/api/users")).await;
    assert_eq!(again.x_cache(), "HIT");
    assert_eq!(again.text(), "api answered /api/users");
    assert_eq!(api.hits("/api/users"), 1);
    assert_eq!(default.hits("/api/users"), 0);
    assert_eq!(default.hits("/apidocs"), 1);
    assert_eq!(api.hits("/apidocs"), 0);

    // A restarted node loads the directory before it serves its first request.
    let node = node.restart().await;
    let orders = get(&node.url("/api/orders")).await;
    assert_eq!(orders.text(), "api answered /api/orders");
    assert_eq!(api.hits("/api/orders"), 1);
    assert_eq!(default.hits("/api/orders"), 0);
}
