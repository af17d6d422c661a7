//! Header edits reach the origin (valid ones, in order; invalid ones never), synthetic responses
//! answer without the origin, and a verdict on a revalidation is honoured.

use caje_testkit::{get, get_with, respond};

use super::{Caje, recording_origin, status, validating_origin, values};

#[tokio::test]
async fn valid_edits_reach_the_origin() {
    let (origin, seen) =
        recording_origin(|_| respond(200, &[("cache-control", "no-store")], "ok")).await;
    let node = Caje::new(&origin.url())
        .module("50-decorate.wasm", "decorate")
        .start()
        .await;
    let reply = get_with(
        &node.url("/page"),
        &[
            ("x-trace", "client"),
            ("x-secret", "hunter2"),
            ("x-policy", "from-client"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    let received = seen.headers("/page");
    assert_eq!(received.len(), 1);
    assert_eq!(values(&received[0], "x-policy"), ["decorate"]);
    assert_eq!(values(&received[0], "x-trace"), ["client", "decorate"]);
    assert!(!received[0].contains_key("x-secret"));
    // caje's own forwarding headers are still there.
    assert_eq!(values(&received[0], "via"), ["1.1 caje"]);
}

#[tokio::test]
async fn credentials_a_policy_adds_do_not_make_a_response_personal() {
    let (origin, seen) =
        recording_origin(|_| respond(200, &[("cache-control", "max-age=60")], "shared")).await;
    let node = Caje::new(&origin.url())
        .module("50-decorate.wasm", "decorate")
        .start()
        .await;
    assert_eq!(get(&node.url("/keyed/report")).await.x_cache(), "MISS");
    let received = seen.headers("/keyed/report");
    assert_eq!(values(&received[0], "authorization"), ["Bearer origin-key"]);
    // The same for every client: stored and shared, unlike a client's own credentials.
    assert_eq!(get(&node.url("/keyed/report")).await.x_cache(), "HIT");
    let client_key = [("authorization", "Bearer alice")];
    assert_eq!(
        get_with(&node.url("/keyed/other"), &client_key)
            .await
            .x_cache(),
        "MISS"
    );
    assert_eq!(
        get_with(&node.url("/keyed/other"), &client_key)
            .await
            .x_cache(),
        "MISS",
        "replaced or not, a client's credentials keep its responses its own"
    );
    assert_eq!(origin.hits("/keyed/report"), 1);
}

#[tokio::test]
async fn invalid_edits_never_reach_the_origin() {
    let (origin, seen) =
        recording_origin(|_| respond(200, &[("cache-control", "max-age=60")], "ok")).await;
    let node = Caje::new(&origin.url())
        .module("10-decorate.wasm", "decorate")
        .module("20-invalid.wasm", "hostile-invalid")
        .start()
        .await;
    // hostile-invalid sets `connection: close` on /page and a CR LF value on /crlf: each is an
    // invalid decision, so the module is skipped and the previous module's decision stands.
    for path in ["/page", "/crlf"] {
        let reply = get(&node.url(path)).await;
        assert_eq!(reply.status, 200, "{path}");
        let received = seen.headers(path);
        assert_eq!(received.len(), 1, "{path}");
        assert!(!received[0].contains_key("x-injected"), "{path}");
        assert!(
            !values(&received[0], "connection").contains(&"close".to_owned()),
            "{path}: {:?}",
            received[0]
        );
        assert_eq!(values(&received[0], "x-policy"), ["decorate"], "{path}");
    }
    let invalid = status(&node, "20-invalid.wasm");
    // Two on-request decisions, and two on-response verdicts (a tag with a space).
    assert_eq!(invalid.invalid_decisions, 4, "{invalid:#?}");
}

#[tokio::test]
async fn a_synthetic_response_answers_without_the_origin() {
    let (origin, _) = recording_origin(|_| respond(200, &[], "origin")).await;
    let node = Caje::new(&origin.url())
        .module("50-decorate.wasm", "decorate")
        .start()
        .await;
    for _ in 0..2 {
        let teapot = get(&node.url("/synthetic")).await;
        assert_eq!(teapot.status, 418);
        assert_eq!(teapot.text(), "short and stout\n");
        assert_eq!(teapot.header("content-type"), Some("text/plain"));
        assert_eq!(teapot.header("content-length"), Some("16"));
        assert_eq!(teapot.header("x-policy"), Some("decorate"));
        assert_eq!(teapot.x_cache(), "BYPASS");
        assert_eq!(
            teapot.header("cache-status"),
            Some("caje; fwd=bypass; detail=policy")
        );
    }
    assert_eq!(origin.hits("/synthetic"), 0);
}

#[tokio::test]
async fn a_revalidation_a_policy_declines_to_store_still_gets_the_body() {
    // Still valid, but the decorate policy must not store it any longer.
    let origin = validating_origin("body v1", &[("x-decorate-no-store", "1")]).await;
    let node = Caje::new(&origin.url())
        .module("50-decorate.wasm", "decorate")
        .start()
        .await;
    assert_eq!(get(&node.url("/doc")).await.x_cache(), "MISS");
    for _ in 0..2 {
        let again = get(&node.url("/doc")).await;
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(again.text(), "body v1");
    }
    assert_eq!(origin.hits("/doc"), 3);
}
