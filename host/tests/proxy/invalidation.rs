//! Unsafe methods pass through and invalidate what they changed (RFC 9111 §4.4).

use std::time::Duration;

use bytes::Bytes;
use caje::demo_origin::DemoOrigin;
use caje_testkit::{TestNode, TestOrigin, get, respond, send};
use http::Request;
use http_body_util::Full;

fn request(method: &str, url: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap()
}

#[tokio::test]
async fn post_put_delete_and_unknown_methods_invalidate_the_url() {
    let origin = DemoOrigin::start("127.0.0.1:0".parse().unwrap(), Duration::ZERO)
        .await
        .unwrap();
    let node = TestNode::start(&origin.url()).await;
    let url = node.url("/fast");
    get(&url).await;
    for method in ["POST", "PUT", "DELETE", "PURGEME"] {
        assert_eq!(get(&url).await.x_cache(), "HIT", "cached before {method}");
        let before = origin.state.requests("/fast");
        let reply = send(request(method, &url)).await;
        assert_eq!(reply.status, 200, "{method}");
        assert_eq!(reply.x_cache(), "BYPASS");
        assert_eq!(
            reply.text(),
            format!("{method} /fast done\n"),
            "every method is forwarded"
        );
        assert_eq!(origin.state.requests("/fast"), before + 1);
        assert_eq!(
            get(&url).await.x_cache(),
            "MISS",
            "{method} must invalidate"
        );
    }
}

#[tokio::test]
async fn location_and_content_location_on_the_same_host_are_invalidated() {
    let origin = TestOrigin::start(|request| async move {
        if request.method() == http::Method::POST {
            let host = request
                .headers()
                .get("x-forwarded-host")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            respond(
                201,
                &[
                    ("location", "/items/7"),
                    ("content-location", &format!("http://{host}/items")),
                    ("cache-control", "no-store"),
                ],
                "",
            )
        } else {
            respond(
                200,
                &[("cache-control", "max-age=60")],
                request.uri().path(),
            )
        }
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    for path in ["/items", "/items/7", "/other"] {
        get(&node.url(path)).await;
        assert_eq!(get(&node.url(path)).await.x_cache(), "HIT");
    }
    send(request("POST", &node.url("/create"))).await;
    assert_eq!(get(&node.url("/items")).await.x_cache(), "MISS");
    assert_eq!(get(&node.url("/items/7")).await.x_cache(), "MISS");
    assert_eq!(get(&node.url("/other")).await.x_cache(), "HIT");
}

#[tokio::test]
async fn a_failed_unsafe_request_invalidates_nothing() {
    let origin = TestOrigin::start(|request| async move {
        if request.method() == http::Method::DELETE {
            respond(403, &[], "no")
        } else {
            respond(200, &[("cache-control", "max-age=60")], "kept")
        }
    })
    .await;
    let node = TestNode::start(&origin.url()).await;
    get(&node.url("/k")).await;
    assert_eq!(send(request("DELETE", &node.url("/k"))).await.status, 403);
    assert_eq!(get(&node.url("/k")).await.x_cache(), "HIT");
}
