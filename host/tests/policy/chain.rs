//! The chain: file-name order, each module seeing the previous decision, counters, sharing.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use caje::policy::{
    CacheVerdict, FailureMode, ModuleConfig, ModuleState, Policies, RequestAction, ResponseView,
};
use http::StatusCode;
use metrics_exporter_prometheus::PrometheusBuilder;

use super::{ORIGINS, PolicyDir, TestRequest, config, status};

#[test]
fn modules_run_in_file_name_order_and_see_the_previous_decision() {
    let route_first = PolicyDir::with(&[
        ("10-route.wasm", "route-by-path"),
        ("20-probe.wasm", "probe"),
    ]);
    let chain = route_first.start().chain();
    assert_eq!(
        chain.module_names().collect::<Vec<_>>(),
        ["10-route.wasm", "20-probe.wasm"]
    );
    let decision = TestRequest::get("https://example.com/api/x")
        .decide(&chain)
        .unwrap();
    assert_eq!(decision.origin, "api");
    assert_eq!(decision.cache_key, ["seen-origin=api"]);

    let probe_first = PolicyDir::with(&[
        ("10-probe.wasm", "probe"),
        ("20-route.wasm", "route-by-path"),
    ]);
    let decision = TestRequest::get("https://example.com/api/x")
        .decide(&probe_first.start().chain())
        .unwrap();
    assert_eq!(decision.origin, "api");
    assert_eq!(decision.cache_key, ["seen-origin=default"]);

    let verdicts = PolicyDir::with(&[("10-ttl.wasm", "ttl-override"), ("20-probe.wasm", "probe")]);
    let verdict = TestRequest::get("https://example.com/static/a.css")
        .verdict(
            &verdicts.start().chain(),
            200,
            &[],
            CacheVerdict::new(true, Duration::from_secs(7)),
        )
        .unwrap();
    assert_eq!(verdict.ttl, Duration::from_secs(300));
    assert_eq!(verdict.tags, ["seen-ttl=300", "seen-from=default"]);
}

#[test]
fn an_empty_directory_keeps_the_hosts_decisions() {
    let dir = PolicyDir::with(&[]);
    let policies = dir.start();
    let chain = policies.chain();
    assert!(chain.is_empty());
    assert!(policies.status().is_empty());
    let request = TestRequest::get("https://example.com/api/x");
    assert_eq!(request.decide(&chain).unwrap(), request.default_decision());
    let current = CacheVerdict::new(true, Duration::from_secs(9));
    assert_eq!(
        request.verdict(&chain, 200, &[], current.clone()).unwrap(),
        current
    );
}

#[test]
fn a_missing_directory_or_no_origins_are_clear_errors() {
    let dir = PolicyDir::with(&[]);
    let missing = dir.path().join("nope");
    let origins = ORIGINS.map(str::to_owned).to_vec();
    let err = Policies::start(&missing, &config(), origins)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("cannot open the policies directory") && err.contains("create it"),
        "{err}"
    );
    let err = Policies::start(&dir.path(), &config(), Vec::new())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("at least one configured origin"), "{err}");
}

#[test]
fn status_lists_modules_with_their_counters() {
    let dir = PolicyDir::with(&[
        ("10-route.wasm", "route-by-path"),
        ("20-tag.wasm", "tag-by-path"),
    ]);
    let policies = dir.start();
    let chain = policies.chain();
    for _ in 0..3 {
        TestRequest::get("https://example.com/api/x")
            .decide(&chain)
            .unwrap();
    }
    TestRequest::get("https://example.com/api/x")
        .verdict(&chain, 200, &[], CacheVerdict::new(true, Duration::ZERO))
        .unwrap();
    // route-by-path implements on-request only, tag-by-path on-response only: neither is
    // called for the other hook.
    let route = status(&policies, "10-route.wasm");
    assert_eq!(route.state, ModuleState::Active);
    assert_eq!(route.world.as_deref(), Some("caje:policy@0.2.0"));
    assert_eq!(route.hooks, ["on-request"]);
    assert_eq!(route.digest, Some(super::digest_of("route-by-path")));
    assert!(route.loaded_at.is_some());
    assert_eq!(
        (
            route.calls,
            route.traps,
            route.timeouts,
            route.invalid_decisions
        ),
        (3, 0, 0, 0)
    );
    assert_eq!(route.error, None);
    let json = serde_json::to_value(policies.status()).unwrap();
    assert_eq!(json[1]["file"], "20-tag.wasm");
    assert_eq!(json[1]["state"], "active");
    assert_eq!(json[1]["failure_mode"], "open");
    assert_eq!(json[1]["hooks"], serde_json::json!(["on-response"]));
    assert_eq!(json[1]["calls"], 1);
}

#[test]
fn metrics_count_calls_and_failures_per_module() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let dir = PolicyDir::with(&[("10-trap.wasm", "hostile-trap-request")]);
    // Counters bind to the recorder in place when the module loads.
    let policies = metrics::with_local_recorder(&recorder, || dir.start());
    let chain = policies.chain();
    TestRequest::get("https://example.com/ok")
        .decide(&chain)
        .unwrap();
    TestRequest::get("https://example.com/trap")
        .decide(&chain)
        .unwrap();
    let text = handle.render();
    assert!(
        text.contains(r#"caje_policy_calls_total{module="10-trap.wasm",hook="on_request"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"caje_policy_failures_total{module="10-trap.wasm",kind="trap"} 1"#),
        "{text}"
    );
}

#[test]
fn one_chain_serves_many_threads_at_once() {
    let dir = PolicyDir::with(&[
        ("10-route.wasm", "route-by-path"),
        ("20-bypass.wasm", "bypass-private"),
    ]);
    let policies = dir.start();
    let chain = policies.chain();
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let chain = Arc::clone(&chain);
            thread::spawn(move || {
                for call in 0..25 {
                    let private = (worker + call) % 2 == 0;
                    let mut request =
                        TestRequest::get(&format!("https://example.com/api/{worker}/{call}"));
                    if private {
                        request = request.header("cookie", "session=1");
                    }
                    let decision = request.decide(&chain).unwrap();
                    assert_eq!(decision.origin, "api");
                    let expected = if private {
                        RequestAction::Pass
                    } else {
                        RequestAction::Lookup
                    };
                    assert_eq!(decision.action, expected);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(status(&policies, "20-bypass.wasm").calls, 100);
}

#[test]
fn on_response_sees_the_origin_and_edits_the_stored_headers() {
    let dir = PolicyDir::with(&[("10-probe.wasm", "probe")]);
    let chain = dir.start().chain();
    let request = TestRequest::get("https://example.com/api/x");
    let mut headers = super::header_map(&[("server", "nginx")]);
    let response = ResponseView {
        status: StatusCode::OK,
        headers: &headers,
        origin: "api",
    };
    let verdict = chain
        .on_response(
            &request.view(),
            &response,
            CacheVerdict::new(true, Duration::from_secs(30)),
        )
        .unwrap();
    assert_eq!(verdict.tags, ["seen-ttl=30", "seen-from=api"]);
    verdict.apply_stored_edits(&mut headers);
    assert_eq!(headers["x-probe-stored"], "1");
    assert_eq!(headers["server"], "nginx");

    let invalid = PolicyDir::with(&[("10-invalid.wasm", "hostile-invalid")]);
    let mut strict = config();
    strict.modules.insert(
        "10-invalid.wasm".to_owned(),
        ModuleConfig {
            failure: Some(FailureMode::Closed),
            ..ModuleConfig::default()
        },
    );
    let refusal = TestRequest::get("https://example.com/stored")
        .verdict(
            &invalid.start_with(&strict).chain(),
            200,
            &[],
            CacheVerdict::new(true, Duration::ZERO),
        )
        .unwrap_err();
    assert!(
        refusal.reason.contains(
            "stored-header-edits[0]: \"transfer-encoding\" is a hop-by-hop or framing header"
        ),
        "{refusal}"
    );
}
