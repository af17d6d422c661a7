//! The decision memo: a module is not entered again for a request that reads the same.

use caje::policy::{ModuleConfig, RequestAction};

use super::{PolicyDir, TestRequest, config, status};

#[test]
fn decisions_are_reused_only_for_requests_that_read_the_same() {
    let dir = PolicyDir::with(&[
        ("10-route.wasm", "route-by-path"),
        ("20-bypass.wasm", "bypass-private"),
    ]);
    let policies = dir.start();
    let chain = policies.chain();
    let first = TestRequest::get("https://a.test/api/users?page=1")
        .decide(&chain)
        .unwrap();
    assert_eq!(first.origin, "api");
    assert_eq!(status(&policies, "10-route.wasm").memo_hits, 0);
    // Another query string and a header neither module reads: the same reads, one memo hit each.
    let same_reads =
        TestRequest::get("https://a.test/api/users?page=2").header("user-agent", "curl/8");
    assert_eq!(same_reads.decide(&chain).unwrap(), first);
    assert_eq!(status(&policies, "10-route.wasm").memo_hits, 1);
    assert_eq!(status(&policies, "20-bypass.wasm").memo_hits, 1);
    // What a module read differs: it is entered and decides afresh.
    let elsewhere = TestRequest::get("https://a.test/home")
        .decide(&chain)
        .unwrap();
    assert_eq!(elsewhere.origin, "default");
    let with_cookie = TestRequest::get("https://a.test/api/users").header("cookie", "session=1");
    let decided = with_cookie.decide(&chain).unwrap();
    assert_eq!(
        decided.action,
        RequestAction::Pass,
        "bypass-private saw the cookie"
    );
    assert_eq!(
        decided.origin, "api",
        "route-by-path's memoized decision for /api/users still applies"
    );
    assert_eq!(status(&policies, "10-route.wasm").memo_hits, 2);
    assert_eq!(status(&policies, "20-bypass.wasm").memo_hits, 1);
    // Another cookie value is another read value: no reuse of the first cookie's decision.
    let other_cookie = TestRequest::get("https://a.test/api/users").header("cookie", "session=2");
    assert_eq!(
        other_cookie.decide(&chain).unwrap().action,
        RequestAction::Pass
    );
    assert_eq!(status(&policies, "20-bypass.wasm").memo_hits, 1);
    assert_eq!(status(&policies, "20-bypass.wasm").calls, 5);
}

#[test]
fn a_module_configured_not_to_memoize_is_entered_for_every_request() {
    let dir = PolicyDir::with(&[
        ("10-route.wasm", "route-by-path"),
        ("20-probe.wasm", "probe"),
    ]);
    let mut settings = config();
    settings.modules.insert(
        "10-route.wasm".into(),
        ModuleConfig {
            memoize: Some(false),
            ..ModuleConfig::default()
        },
    );
    let policies = dir.start_with(&settings);
    let chain = policies.chain();
    for _ in 0..3 {
        let decision = TestRequest::get("https://a.test/api/x")
            .decide(&chain)
            .unwrap();
        assert_eq!(decision.cache_key, ["seen-origin=api"]);
    }
    assert_eq!(status(&policies, "10-route.wasm").memo_hits, 0);
    assert_eq!(
        status(&policies, "20-probe.wasm").memo_hits,
        2,
        "the probe reads nothing: one shape, reused"
    );
    let mut off = config();
    off.memoize = false;
    let policies = dir.start_with(&off);
    let chain = policies.chain();
    for _ in 0..3 {
        TestRequest::get("https://a.test/api/x")
            .decide(&chain)
            .unwrap();
    }
    assert_eq!(status(&policies, "20-probe.wasm").memo_hits, 0);
}
