//! The policy sandbox: a module gets no WASI (its file system, network and environment calls
//! trap, and the module is contained by its failure mode), and cannot make caje emit a framing
//! or malformed header. Fuel, memory and deadlines are in `tests/policy/hostile.rs` and
//! `tests/policies_proxy/failures.rs`; header-edit validation is fuzzed in `policy::fuzz`.

use caje::policy::ModuleState;
use caje_testkit::{TestNode, TestOrigin, get, respond};

use crate::support::{POLICY_FILE, node_with_policy, raw_exchange};

/// An origin that answers with the path it was asked for.
async fn origin() -> TestOrigin {
    TestOrigin::start(|request: http::Request<hyper::body::Incoming>| async move {
        respond(
            200,
            &[],
            &format!("origin answered {}", request.uri().path()),
        )
    })
    .await
}

#[tokio::test]
async fn wasi_calls_trap_and_the_request_is_served_as_if_the_module_were_absent() {
    let origin = origin().await;
    let node = node_with_policy(&origin.url(), "hostile-wasi").await;
    let module = |node: &TestNode| {
        node.node()
            .context
            .policies
            .status()
            .into_iter()
            .find(|module| module.file == POLICY_FILE)
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

#[tokio::test]
async fn a_synthetic_response_cannot_frame_itself() {
    // hostile-invalid answers /framing with its own `content-length: 0` and
    // `transfer-encoding: chunked` around a body that looks like a second response.
    let origin = origin().await;
    let node = node_with_policy(&origin.url(), "hostile-invalid").await;
    let reply = raw_exchange(
        node.node().addr,
        b"GET /framing HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.closed);
    assert_eq!(reply.responses(), 1, "{}", reply.text);
    let head = reply.text.to_ascii_lowercase();
    assert_eq!(head.matches("content-length:").count(), 1, "{}", reply.text);
    assert!(!head.contains("transfer-encoding"), "{}", reply.text);
    assert!(
        reply.text.ends_with("\r\n\r\norigin answered /framing"),
        "{}",
        reply.text
    );
}
