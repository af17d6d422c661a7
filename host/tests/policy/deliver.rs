//! `on-deliver`: every module that implements it edits the client's headers in chain order,
//! decisions are reused for hits that read the same, modules that do not implement it cost
//! nothing, and the limits and header rules hold.

use caje::policy::{CacheOutcome, FailureMode, ModuleConfig, PolicyConfig};
use http::HeaderMap;

use super::{PolicyDir, TestRequest, config, status};

fn value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

fn closed(file: &str) -> PolicyConfig {
    let mut config = config();
    config.modules.insert(
        file.to_owned(),
        ModuleConfig {
            failure: Some(FailureMode::Closed),
            ..ModuleConfig::default()
        },
    );
    config
}

#[test]
fn modules_edit_the_clients_headers_in_chain_order() {
    let dir = PolicyDir::with(&[
        ("50-security.wasm", "security-headers"),
        ("60-probe.wasm", "probe"),
    ]);
    let chain = dir.start().chain();
    assert!(chain.delivers());
    let request = TestRequest::get("https://example.com/page");
    let headers = request
        .deliver(
            &chain,
            CacheOutcome::Hit,
            &[
                ("server", "nginx/1.27"),
                ("x-powered-by", "PHP"),
                ("content-type", "text/html"),
            ],
        )
        .unwrap();
    assert_eq!(value(&headers, "server"), None);
    assert_eq!(value(&headers, "x-powered-by"), None);
    assert_eq!(value(&headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(
        value(&headers, "strict-transport-security"),
        Some("max-age=63072000; includeSubDomains")
    );
    assert!(value(&headers, "content-security-policy").is_some());
    assert_eq!(value(&headers, "content-type"), Some("text/html"));
    assert_eq!(value(&headers, "x-probe-outcome"), Some("hit"));
    assert_eq!(
        value(&headers, "x-probe-server"),
        Some("absent"),
        "the probe runs after security-headers removed the server header"
    );

    let probe_first = PolicyDir::with(&[
        ("10-probe.wasm", "probe"),
        ("50-security.wasm", "security-headers"),
    ]);
    let headers = TestRequest::get("http://example.com/page")
        .deliver(
            &probe_first.start().chain(),
            CacheOutcome::Pass,
            &[("server", "nginx")],
        )
        .unwrap();
    assert_eq!(value(&headers, "x-probe-server"), Some("nginx"));
    assert_eq!(value(&headers, "x-probe-outcome"), Some("pass"));
    assert_eq!(value(&headers, "server"), None);
    assert_eq!(
        value(&headers, "strict-transport-security"),
        None,
        "no HSTS over http"
    );
}

#[test]
fn hits_that_read_the_same_reuse_the_decision() {
    let dir = PolicyDir::with(&[("50-security.wasm", "security-headers")]);
    let policies = dir.start();
    let chain = policies.chain();
    let request = TestRequest::get("https://example.com/page");
    for age in ["1", "2", "3"] {
        let headers = request
            .deliver(
                &chain,
                CacheOutcome::Hit,
                &[("age", age), ("server", "nginx")],
            )
            .unwrap();
        assert_eq!(value(&headers, "server"), None);
        assert_eq!(value(&headers, "age"), Some(age));
    }
    let security = status(&policies, "50-security.wasm");
    assert_eq!((security.calls, security.memo_hits), (3, 2));
    // What the module reads differs (the origin's own policy): it is entered again, and decides
    // differently.
    let own_policy = request
        .deliver(
            &chain,
            CacheOutcome::Hit,
            &[("content-security-policy", "default-src 'none'")],
        )
        .unwrap();
    assert_eq!(
        value(&own_policy, "content-security-policy"),
        Some("default-src 'none'")
    );
    assert_eq!(status(&policies, "50-security.wasm").memo_hits, 2);

    let mut off = config();
    off.memoize = false;
    let policies = dir.start_with(&off);
    for _ in 0..3 {
        request
            .deliver(&policies.chain(), CacheOutcome::Hit, &[])
            .unwrap();
    }
    assert_eq!(status(&policies, "50-security.wasm").memo_hits, 0);
}

#[test]
fn modules_that_do_not_implement_a_hook_are_never_called_for_it() {
    let dir = PolicyDir::with(&[
        ("10-none.wasm", "no-hooks"),
        ("20-route.wasm", "route-by-path"),
    ]);
    let policies = dir.start();
    let chain = policies.chain();
    assert!(!chain.delivers());
    assert!(!chain.handles_errors());
    let request = TestRequest::get("https://example.com/api/x");
    let headers = request
        .deliver(&chain, CacheOutcome::Hit, &[("server", "nginx")])
        .unwrap();
    assert_eq!(value(&headers, "server"), Some("nginx"));
    assert_eq!(request.decide(&chain).unwrap().origin, "api");
    let none = status(&policies, "10-none.wasm");
    assert!(none.hooks.is_empty(), "{none:#?}");
    assert_eq!(none.calls, 0);
    assert_eq!(status(&policies, "20-route.wasm").calls, 1);
}

#[test]
fn a_looping_on_deliver_is_cut_off_and_fails_open_or_closed() {
    let dir = PolicyDir::with(&[
        ("10-loop.wasm", "hostile-loop"),
        ("50-security.wasm", "security-headers"),
    ]);
    let policies = dir.start();
    let looping = TestRequest::get("https://example.com/loop-deliver/page");
    let headers = looping
        .deliver(&policies.chain(), CacheOutcome::Hit, &[("server", "nginx")])
        .unwrap();
    assert_eq!(
        value(&headers, "x-hostile-loop"),
        None,
        "the loop's edits are dropped"
    );
    assert_eq!(
        value(&headers, "server"),
        None,
        "the next module still runs"
    );
    let stats = status(&policies, "10-loop.wasm");
    assert_eq!((stats.calls, stats.timeouts), (1, 1));
    // Outside its trigger path the module serves.
    let fine = TestRequest::get("https://example.com/page")
        .deliver(&policies.chain(), CacheOutcome::Hit, &[])
        .unwrap();
    assert_eq!(value(&fine, "x-hostile-loop"), Some("finished"));

    let strict = dir.start_with(&closed("10-loop.wasm"));
    let refusal = looping
        .deliver(&strict.chain(), CacheOutcome::Hit, &[])
        .unwrap_err();
    assert_eq!(refusal.module, "10-loop.wasm");
    assert!(
        refusal.reason.contains("timed out: used up its fuel")
            && refusal.reason.ends_with("in on-deliver"),
        "{refusal}"
    );

    let backstop = PolicyConfig {
        fuel: u64::MAX / 2,
        hook_timeout: std::time::Duration::from_millis(50),
        ..closed("10-loop.wasm")
    };
    let refusal = looping
        .deliver(&dir.start_with(&backstop).chain(), CacheOutcome::Miss, &[])
        .unwrap_err();
    assert!(
        refusal
            .reason
            .contains("ran longer than policies.hook_timeout (50ms)"),
        "{refusal}"
    );
}

#[test]
fn delivered_edits_follow_the_header_rules() {
    let dir = PolicyDir::with(&[("10-invalid.wasm", "hostile-invalid")]);
    let open = dir.start();
    let framing = TestRequest::get("https://example.com/deliver-framing");
    let headers = framing
        .deliver(&open.chain(), CacheOutcome::Hit, &[("content-length", "5")])
        .unwrap();
    assert_eq!(
        value(&headers, "content-length"),
        Some("5"),
        "the edit is dropped"
    );
    assert_eq!(status(&open, "10-invalid.wasm").invalid_decisions, 1);

    let strict = dir.start_with(&closed("10-invalid.wasm"));
    for (path, reason) in [
        (
            "/deliver-framing",
            "header-edits[0]: \"content-length\" is a hop-by-hop or framing header",
        ),
        (
            "/deliver-crlf",
            "header-edits[0]: the value of \"x-injected\" is not a valid header value",
        ),
        ("/deliver-many", "header-edits has 65 edits (at most 64)"),
    ] {
        let refusal = TestRequest::get(&format!("https://example.com{path}"))
            .deliver(&strict.chain(), CacheOutcome::Hit, &[])
            .unwrap_err();
        assert!(
            refusal
                .reason
                .contains(&format!("returned an invalid decision: {reason}")),
            "{path}: {refusal}"
        );
    }
}
