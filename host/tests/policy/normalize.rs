//! URL normalisation in `on-request`: the decision carries the path and query to key on and
//! fetch, the modules after the normaliser see the request with them, the chain memo stays
//! exact, and an invalid URL is an invalid decision.

use caje::policy::{FailureMode, ModuleConfig, RequestAction};

use super::{PolicyDir, TestRequest, config};

fn url(decision: &caje::policy::RequestDecision) -> Option<String> {
    decision.url.as_ref().map(ToString::to_string)
}

#[test]
fn tracking_parameters_are_dropped_and_later_modules_see_the_clean_url() {
    let dir = PolicyDir::with(&[
        ("05-normalize.wasm", "normalize-query"),
        ("10-route.wasm", "route-by-path"),
        ("20-probe.wasm", "probe"),
    ]);
    let chain = dir.start().chain();
    let decision = TestRequest::get(
        "https://shop.example/api/items?utm_source=mail&size=42&fbclid=x&color=red",
    )
    .decide(&chain)
    .unwrap();
    assert_eq!(
        url(&decision).as_deref(),
        Some("/api/items?color=red&size=42")
    );
    assert_eq!(decision.origin, "api");
    assert_eq!(
        decision.cache_key,
        [
            "seen-origin=api",
            "seen-url=/api/items?color=red&size=42",
            "seen-query=color=red&size=42"
        ],
        "the probe reads the normalised query from the request itself"
    );
    let only_tracking = TestRequest::get("https://shop.example/a?utm_campaign=x")
        .decide(&chain)
        .unwrap();
    assert_eq!(url(&only_tracking).as_deref(), Some("/a"));
    assert_eq!(
        only_tracking.cache_key,
        ["seen-origin=default", "seen-url=/a"]
    );
    let clean = TestRequest::get("https://shop.example/a?b=1")
        .decide(&chain)
        .unwrap();
    assert_eq!(url(&clean), None, "a clean URL is left as it is");
    assert_eq!(clean.cache_key, ["seen-origin=default", "seen-query=b=1"]);
}

#[test]
fn memoized_decisions_equal_fresh_ones() {
    let modules = [
        ("05-normalize.wasm", "normalize-query"),
        ("10-route.wasm", "route-by-path"),
        ("20-probe.wasm", "probe"),
        ("30-bypass.wasm", "bypass-private"),
    ];
    let memoized_dir = PolicyDir::with(&modules);
    let memoized = memoized_dir.start();
    let mut off = config();
    off.memoize = false;
    let fresh_dir = PolicyDir::with(&modules);
    let fresh = fresh_dir.start_with(&off);
    let requests = [
        "https://a.test/api/x?utm_source=1&b=2&a=1",
        "https://a.test/api/x?utm_source=2&b=2&a=1",
        "https://a.test/api/x?a=1&b=2",
        "https://a.test/api/x?b=2&a=1",
        "https://a.test/home?gclid=7",
        "https://a.test/home",
        "https://a.test/api/x?utm_source=1&b=2&a=1",
        "https://a.test/home?gclid=8",
    ];
    for _ in 0..2 {
        for url in requests {
            for cookie in [None, Some("session=1")] {
                let mut request = TestRequest::get(url);
                if let Some(cookie) = cookie {
                    request = request.header("cookie", cookie);
                }
                assert_eq!(
                    request.decide(&memoized.chain()).unwrap(),
                    request.decide(&fresh.chain()).unwrap(),
                    "{url} {cookie:?}"
                );
            }
        }
    }
    assert!(super::status(&memoized, "05-normalize.wasm").memo_hits > 0);
}

#[test]
fn an_invalid_url_is_an_invalid_decision() {
    let dir = PolicyDir::with(&[("10-invalid.wasm", "hostile-invalid")]);
    let request = TestRequest::get("https://example.com/url");
    let open = request.decide(&dir.start().chain()).unwrap();
    assert_eq!(open.url, None);
    assert_eq!(open.action, RequestAction::Lookup);
    let mut strict = config();
    strict.modules.insert(
        "10-invalid.wasm".to_owned(),
        ModuleConfig {
            failure: Some(FailureMode::Closed),
            ..ModuleConfig::default()
        },
    );
    let refusal = request
        .decide(&dir.start_with(&strict).chain())
        .unwrap_err();
    assert!(
        refusal
            .reason
            .contains("returned an invalid decision: url \"//evil.test/x\" starts with \"//\""),
        "{refusal}"
    );
}
