//! The policy sandbox: a module gets no WASI (its file system, network and environment calls
//! trap, and the module is contained by its failure mode), and cannot make caje emit a framing
//! or malformed header. Fuel, memory and deadlines are in `tests/policy/hostile.rs` and
//! `tests/policies_proxy/failures.rs`; header-edit validation is fuzzed in `policy::decision`.

use caje::policy::ModuleState;
use caje_testkit::{TestNode, TestOrigin, eventually, get, policies, respond};
use std::time::Duration;

const FILE: &str = "10-hostile.wasm";

/// A node with the `policies/` crate `crate_name` installed as [`FILE`], once it is active.
async fn node_with(origin: &str, crate_name: &str) -> TestNode {
    let node = TestNode::start_with(origin, "[policies]\nreload_debounce = \"50ms\"\n").await;
    policies::install(&node.policies_dir(), FILE, crate_name);
    eventually("the module to load", Duration::from_secs(60), || {
        node.node()
            .proxy
            .policies()
            .status()
            .iter()
            .any(|module| module.file == FILE)
    })
    .await;
    node
}

#[tokio::test]
async fn wasi_calls_trap_and_the_request_is_served_as_if_the_module_were_absent() {
    let origin = TestOrigin::start(|request: http::Request<hyper::body::Incoming>| async move {
        respond(
            200,
            &[],
            &format!("origin answered {}", request.uri().path()),
        )
    })
    .await;
    let node = node_with(&origin.url(), "hostile-wasi").await;
    let module = |node: &TestNode| {
        node.node()
            .proxy
            .policies()
            .status()
            .into_iter()
            .find(|module| module.file == FILE)
            .expect("the module is listed")
    };
    assert_eq!(
        module(&node).state,
        ModuleState::Active,
        "{:#?}",
        module(&node)
    );
    for path in ["/fs", "/net", "/env"] {
        let reply = get(&node.url(path)).await;
        assert_eq!(
            reply.text(),
            format!("origin answered {path}"),
            "{path}: {reply:?}"
        );
        assert!(!reply.text().contains("leaked"), "{path}: {}", reply.text());
    }
    assert!(module(&node).traps >= 3, "{:#?}", module(&node));
}
