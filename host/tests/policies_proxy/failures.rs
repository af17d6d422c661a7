//! Hostile modules through the proxy. `open` (the default): the request is served as if the
//! module were absent. `closed`: the request is refused with 503. Modules that cannot load are
//! refused whatever the mode, and the proxy serves without them. Every request gets an answer.

use caje::policy::{ModuleState, ModuleStatus};
use caje_testkit::{Reply, TestNode, TestOrigin, eventually, get, policies, respond};

use super::{Caje, RELOAD_LIMIT, status, validating_origin};

const FILE: &str = "10-hostile.wasm";

async fn origin() -> TestOrigin {
    TestOrigin::start(|request| async move {
        let body = format!("origin answered {}", request.uri().path());
        respond(200, &[("cache-control", "max-age=60")], &body)
    })
    .await
}

fn assert_refused_by_policy(reply: &Reply) {
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        reply.text(),
        format!("refused by policy {FILE}\n"),
        "{reply:?}"
    );
}

/// Open mode: `path` triggers the module's failure, counted by `failures`, and is served (and
/// cached) exactly as without the module.
async fn open_serves_as_if_absent(
    crate_name: &str,
    path: &str,
    failures: fn(&ModuleStatus) -> u64,
) {
    let origin = origin().await;
    let node = Caje::new(&origin.url())
        .module(FILE, crate_name)
        .start()
        .await;
    let first = get(&node.url(path)).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.text(), format!("origin answered {path}"));
    assert_eq!(first.x_cache(), "MISS");
    let second = get(&node.url(path)).await;
    assert_eq!(second.x_cache(), "HIT");
    assert_eq!(origin.hits(path), 1);
    let module = status(&node, FILE);
    assert_eq!(module.state, ModuleState::Active);
    assert!(failures(&module) >= 1, "{module:#?}");
}

/// Closed mode (set by `policy_keys`): `path` is refused with 503 and never reaches the
/// origin (unless the failure is in on-response); `harmless` (if any) is still served.
async fn closed_refuses(
    crate_name: &str,
    policy_keys: &str,
    path: &str,
    harmless: Option<&str>,
) -> (TestOrigin, TestNode) {
    let origin = origin().await;
    let node = Caje::new(&origin.url())
        .policy_keys(policy_keys)
        .module(FILE, crate_name)
        .start()
        .await;
    assert_eq!(
        status(&node, FILE).failure_mode,
        caje::policy::FailureMode::Closed
    );
    for _ in 0..2 {
        assert_refused_by_policy(&get(&node.url(path)).await);
    }
    if let Some(harmless) = harmless {
        let served = get(&node.url(harmless)).await;
        assert_eq!(served.status, 200, "{served:?}");
        assert_eq!(served.text(), format!("origin answered {harmless}"));
    }
    (origin, node)
}

const CLOSED: &str = "failure = \"closed\"";
const CLOSED_BY_NAME: &str = "[policies.modules.\"10-hostile.wasm\"]\nfailure = \"closed\"";

#[tokio::test]
async fn an_endless_loop_is_stopped() {
    open_serves_as_if_absent("hostile-loop", "/loop/spin", |m| m.timeouts).await;
    let (origin, _) = closed_refuses("hostile-loop", CLOSED, "/loop/spin", Some("/ok")).await;
    assert_eq!(origin.hits("/loop/spin"), 0);
}

#[tokio::test]
async fn a_one_gib_allocation_is_stopped() {
    open_serves_as_if_absent("hostile-alloc", "/alloc/huge", |m| m.traps).await;
    let (origin, _) =
        closed_refuses("hostile-alloc", CLOSED_BY_NAME, "/alloc/huge", Some("/ok")).await;
    assert_eq!(origin.hits("/alloc/huge"), 0);
}

#[tokio::test]
async fn a_trap_in_on_request_is_contained() {
    open_serves_as_if_absent("hostile-trap-request", "/trap/x", |m| m.traps).await;
    let (origin, _) = closed_refuses("hostile-trap-request", CLOSED, "/trap/x", Some("/ok")).await;
    assert_eq!(origin.hits("/trap/x"), 0);
}

#[tokio::test]
async fn a_trap_in_on_response_is_contained() {
    open_serves_as_if_absent("hostile-trap-response", "/trap/x", |m| m.traps).await;
    let (origin, node) = closed_refuses(
        "hostile-trap-response",
        CLOSED_BY_NAME,
        "/trap/x",
        Some("/ok"),
    )
    .await;
    // on-response runs after the origin answered; nothing refused is stored.
    assert_eq!(origin.hits("/trap/x"), 2);
    assert_eq!(get(&node.url("/ok")).await.x_cache(), "HIT");
}

#[tokio::test]
async fn an_invalid_header_edit_is_refused() {
    // /crlf: a header value with CR LF; other paths: a `connection` edit (hop-by-hop);
    // on-response always adds a tag with a space.
    open_serves_as_if_absent("hostile-invalid", "/crlf", |m| m.invalid_decisions).await;
    let (origin, node) = closed_refuses("hostile-invalid", CLOSED, "/crlf", None).await;
    assert_refused_by_policy(&get(&node.url("/hop-by-hop")).await);
    assert_eq!(origin.hits("/crlf") + origin.hits("/hop-by-hop"), 0);
}

#[tokio::test]
async fn an_invalid_synthetic_response_is_refused() {
    open_serves_as_if_absent("hostile-invalid", "/status", |m| m.invalid_decisions).await;
    let (origin, _) = closed_refuses("hostile-invalid", CLOSED_BY_NAME, "/status", None).await;
    assert_eq!(origin.hits("/status"), 0);
}

#[tokio::test]
async fn an_unknown_origin_is_refused() {
    open_serves_as_if_absent("hostile-unknown-origin", "/anything", |m| {
        m.invalid_decisions
    })
    .await;
    let (origin, _) =
        closed_refuses("hostile-unknown-origin", CLOSED_BY_NAME, "/anything", None).await;
    assert_eq!(origin.hits("/anything"), 0);
}

#[tokio::test]
async fn modules_refused_at_load_leave_the_proxy_serving_even_when_closed() {
    let origin = origin().await;
    let node = Caje::new(&origin.url())
        .policy_keys(CLOSED)
        .module("20-future.wasm", "hostile-wit-version")
        .module("30-always-traps.wasm", "hostile-trap-always")
        .start()
        .await;
    let dir = node.policies_dir();
    policies::install_bytes(&dir, "40-garbage.wasm", b"not wasm at all");
    let core = wat::parse_str(r#"(module (func (export "on-request") (result i32) i32.const 0))"#)
        .unwrap();
    policies::install_bytes(&dir, "50-core.wasm", &core);
    eventually("every file to be refused", RELOAD_LIMIT, || {
        node.node().context.policies.status().len() == 4
    })
    .await;
    for (file, reason) in [
        ("20-future.wasm", "was built against caje:policy@0.3.0"),
        ("30-always-traps.wasm", "failed its smoke call"),
        ("40-garbage.wasm", "is not a WebAssembly component"),
        (
            "50-core.wasm",
            "is a core WebAssembly module, not a component",
        ),
    ] {
        let module = status(&node, file);
        assert_eq!(module.state, ModuleState::Refused, "{module:#?}");
        assert!(
            module.error.as_deref().unwrap_or_default().contains(reason),
            "{module:#?}"
        );
    }
    assert_eq!(
        node.node().context.policies.chain().module_names().count(),
        0
    );
    for path in ["/a", "/trap/x", "/a"] {
        let reply = get(&node.url(path)).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.text(), format!("origin answered {path}"));
    }
    assert_eq!(origin.hits("/a"), 1);
}

#[tokio::test]
async fn a_closed_module_failing_on_a_revalidation_refuses_it() {
    let origin = validating_origin("v1", &[]).await;
    let node = Caje::new(&origin.url()).policy_keys(CLOSED).start().await;
    assert_eq!(get(&node.url("/trap/doc")).await.x_cache(), "MISS");
    policies::install(&node.policies_dir(), FILE, "hostile-trap-response");
    eventually("hostile-trap-response to load", RELOAD_LIMIT, || {
        node.node().context.policies.chain().module_names().count() == 1
    })
    .await;
    // The entry is stale: caje revalidates, the origin says 304, on-response traps.
    assert_refused_by_policy(&get(&node.url("/trap/doc")).await);
    assert_eq!(origin.hits("/trap/doc"), 2);
}
