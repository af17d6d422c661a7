//! `on-error`: a module's error page replaces caje's own answer to an origin failure; modules
//! see the previous module's page; the limits and the synthetic-response rules hold.

use caje::policy::{FailureMode, ModuleConfig, OriginFailure};
use http::StatusCode;

use super::{PolicyDir, TestRequest, config, status};

#[test]
fn security_headers_answers_origin_failures_with_its_page() {
    let dir = PolicyDir::with(&[("50-security.wasm", "security-headers")]);
    let chain = dir.start().chain();
    assert!(chain.handles_errors());
    let request = TestRequest::get("https://example.com/shop");
    for (failure, status) in [
        (OriginFailure::Unreachable, 502),
        (OriginFailure::Timeout, 504),
        (
            OriginFailure::ErrorStatus(StatusCode::SERVICE_UNAVAILABLE),
            503,
        ),
    ] {
        let page = request.error(&chain, failure).unwrap().unwrap();
        assert_eq!(page.status, status);
        assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(page.headers["cache-control"], "no-store");
        assert_eq!(page.headers["retry-after"], "30");
        assert!(String::from_utf8_lossy(&page.body).contains("Back soon"));
    }
    let routing = PolicyDir::with(&[("10-route.wasm", "route-by-path")]);
    let chain = routing.start().chain();
    assert!(!chain.handles_errors());
    assert_eq!(request.error(&chain, OriginFailure::Timeout).unwrap(), None);
}

#[test]
fn each_module_sees_the_page_of_the_one_before() {
    let request = TestRequest::get("https://example.com/");
    let probe_last = PolicyDir::with(&[
        ("50-security.wasm", "security-headers"),
        ("60-probe.wasm", "probe"),
    ]);
    let page = request
        .error(&probe_last.start().chain(), OriginFailure::Unreachable)
        .unwrap()
        .unwrap();
    assert_eq!(page.headers["x-probe-saw"], "502");
    let probe_first = PolicyDir::with(&[
        ("10-probe.wasm", "probe"),
        ("50-security.wasm", "security-headers"),
    ]);
    let page = request
        .error(&probe_first.start().chain(), OriginFailure::Unreachable)
        .unwrap()
        .unwrap();
    assert!(
        !page.headers.contains_key("x-probe-saw"),
        "the probe saw no page yet"
    );
}

#[test]
fn a_looping_or_invalid_on_error_is_skipped_or_refuses() {
    let dir = PolicyDir::with(&[
        ("10-loop.wasm", "hostile-loop"),
        ("20-invalid.wasm", "hostile-invalid"),
        ("50-security.wasm", "security-headers"),
    ]);
    let open = dir.start();
    let looping = TestRequest::get("https://example.com/loop-error");
    let page = looping
        .error(&open.chain(), OriginFailure::Timeout)
        .unwrap()
        .unwrap();
    assert_eq!(
        page.status, 504,
        "the last module's page, the failing ones skipped"
    );
    assert_eq!(status(&open, "10-loop.wasm").timeouts, 1);
    assert_eq!(status(&open, "20-invalid.wasm").invalid_decisions, 1);

    let mut strict = config();
    for file in ["10-loop.wasm", "20-invalid.wasm"] {
        strict.modules.insert(
            file.to_owned(),
            ModuleConfig {
                failure: Some(FailureMode::Closed),
                ..ModuleConfig::default()
            },
        );
    }
    let strict = dir.start_with(&strict);
    let refusal = looping
        .error(&strict.chain(), OriginFailure::Timeout)
        .unwrap_err();
    assert_eq!(refusal.module, "10-loop.wasm");
    assert!(refusal.reason.ends_with("in on-error"), "{refusal}");
    let refusal = TestRequest::get("https://example.com/error")
        .error(&strict.chain(), OriginFailure::Unreachable)
        .unwrap_err();
    assert_eq!(refusal.module, "20-invalid.wasm");
    assert!(
        refusal.reason.contains(
            "returned an invalid decision: synthetic response status 99 is outside 200..=599"
        ),
        "{refusal}"
    );
}
