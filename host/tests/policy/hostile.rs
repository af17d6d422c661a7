//! Hostile and broken modules: refused at load with a clear reason, or contained at call time
//! (counted, logged, skipped or refusing per failure mode) while later calls keep working.

use std::io;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use caje::policy::{
    CacheVerdict, FailureMode, ModuleConfig, ModuleState, Policies, PolicyConfig, RequestAction,
};

use super::{PolicyDir, TestRequest, config, status};

fn closed(files: &[&str]) -> PolicyConfig {
    let mut config = config();
    for file in files {
        config.modules.insert(
            (*file).to_owned(),
            ModuleConfig {
                failure: Some(FailureMode::Closed),
                ..ModuleConfig::default()
            },
        );
    }
    config
}

fn assert_refused(policies: &Policies, file: &str, reason: &str) {
    let status = status(policies, file);
    assert_eq!(status.state, ModuleState::Refused, "{status:#?}");
    let error = status.error.unwrap_or_default();
    assert!(
        error.starts_with(file) && error.contains(reason),
        "{file}: {error:?} should say {reason:?}"
    );
}

#[test]
fn broken_files_are_refused_at_load_and_the_rest_serve() {
    let dir = PolicyDir::with(&[
        ("20-future.wasm", "hostile-wit-version"),
        ("30-always-traps.wasm", "hostile-trap-always"),
        ("50-route.wasm", "route-by-path"),
    ]);
    dir.install_bytes("10-garbage.wasm", b"this is not wasm at all");
    let core = wat::parse_str(r#"(module (func (export "on-request") (result i32) i32.const 0))"#)
        .unwrap();
    dir.install_bytes("15-core.wasm", &core);
    dir.install_bytes(
        "40-truncated.wasm",
        &std::fs::read(super::component("route-by-path")).unwrap()[..20_000],
    );
    let policies = dir.start();

    assert_refused(
        &policies,
        "10-garbage.wasm",
        "is not a WebAssembly component (it does not start with the \\0asm header)",
    );
    assert_refused(
        &policies,
        "15-core.wasm",
        "is a core WebAssembly module, not a component",
    );
    assert_refused(
        &policies,
        "20-future.wasm",
        "was built against caje:policy@0.3.0 (caje:policy/hooks@0.3.0), but this caje implements caje:policy@0.2.0 and 0.1.0",
    );
    assert_refused(
        &policies,
        "30-always-traps.wasm",
        "failed its smoke call (implemented-hooks, for GET https://caje.invalid/): trapped: panicked at",
    );
    assert_refused(&policies, "40-truncated.wasm", "failed to compile");
    assert_eq!(
        status(&policies, "10-garbage.wasm").digest,
        status(&policies, "10-garbage.wasm").refused_digest
    );

    let chain = policies.chain();
    assert_eq!(chain.module_names().collect::<Vec<_>>(), ["50-route.wasm"]);
    assert_eq!(
        TestRequest::get("https://example.com/api/x")
            .decide(&chain)
            .unwrap()
            .origin,
        "api"
    );
}

#[test]
fn an_endless_loop_runs_out_of_fuel_and_the_module_keeps_serving() {
    let dir = PolicyDir::with(&[
        ("10-loop.wasm", "hostile-loop"),
        ("20-route.wasm", "route-by-path"),
    ]);
    let policies = dir.start();
    let chain = policies.chain();
    let looping = TestRequest::get("https://example.com/loop");
    assert_eq!(looping.decide(&chain).unwrap(), looping.default_decision());
    assert_eq!(
        TestRequest::get("https://example.com/api/x")
            .decide(&chain)
            .unwrap()
            .origin,
        "api"
    );
    let loop_status = status(&policies, "10-loop.wasm");
    assert_eq!(
        (loop_status.calls, loop_status.timeouts, loop_status.traps),
        (2, 1, 0)
    );

    let strict = dir.start_with(&closed(&["10-loop.wasm"]));
    let refusal = looping.decide(&strict.chain()).unwrap_err();
    assert_eq!(refusal.module, "10-loop.wasm");
    assert!(
        refusal
            .reason
            .contains("timed out: used up its fuel (1000000 units"),
        "{refusal}"
    );
}

#[test]
fn the_epoch_deadline_stops_a_loop_that_has_fuel_to_spare() {
    let dir = PolicyDir::with(&[("10-loop.wasm", "hostile-loop")]);
    let config = PolicyConfig {
        fuel: u64::MAX / 2,
        hook_timeout: Duration::from_millis(50),
        ..closed(&["10-loop.wasm"])
    };
    let chain = dir.start_with(&config).chain();
    let refusal = TestRequest::get("https://example.com/loop")
        .decide(&chain)
        .unwrap_err();
    assert!(
        refusal
            .reason
            .contains("timed out: ran longer than policies.hook_timeout (50ms)"),
        "{refusal}"
    );
    let request = TestRequest::get("https://example.com/fine");
    assert_eq!(request.decide(&chain).unwrap(), request.default_decision());
}

#[test]
fn a_huge_allocation_hits_the_memory_cap() {
    let dir = PolicyDir::with(&[("10-alloc.wasm", "hostile-alloc")]);
    let policies = dir.start_with(&closed(&["10-alloc.wasm"]));
    let chain = policies.chain();
    let refusal = TestRequest::get("https://example.com/alloc")
        .decide(&chain)
        .unwrap_err();
    assert!(
        refusal.reason.contains(
            "trapped: tried to grow its memory to 1025 MiB, over policies.memory_limit (16 MiB)"
        ),
        "{refusal}"
    );
    let request = TestRequest::get("https://example.com/small");
    assert_eq!(request.decide(&chain).unwrap(), request.default_decision());
    assert_eq!(status(&policies, "10-alloc.wasm").traps, 1);
}

#[test]
fn traps_in_either_hook_are_skipped_and_the_store_is_recycled() {
    let dir = PolicyDir::with(&[
        ("10-trap-request.wasm", "hostile-trap-request"),
        ("20-trap-response.wasm", "hostile-trap-response"),
        ("30-probe.wasm", "probe"),
    ]);
    let policies = dir.start();
    let chain = policies.chain();
    let trapping = TestRequest::get("https://example.com/trap/me");
    for _ in 0..3 {
        let decision = trapping.decide(&chain).unwrap();
        assert_eq!(
            decision.cache_key,
            ["seen-origin=default"],
            "the probe still ran"
        );
        let verdict = trapping
            .verdict(
                &chain,
                200,
                &[],
                CacheVerdict::new(true, Duration::from_secs(5)),
            )
            .unwrap();
        assert_eq!(verdict.tags, ["seen-ttl=5", "seen-from=default"]);
    }
    let fine = TestRequest::get("https://example.com/fine");
    assert_eq!(
        fine.decide(&chain).unwrap().cache_key,
        ["seen-origin=default"]
    );
    // Each module is called only for the hook it implements.
    let request_trap = status(&policies, "10-trap-request.wasm");
    assert_eq!((request_trap.calls, request_trap.traps), (4, 3));
    let response_trap = status(&policies, "20-trap-response.wasm");
    assert_eq!((response_trap.calls, response_trap.traps), (3, 3));
}

#[test]
fn a_closed_module_refuses_the_request_when_it_traps() {
    let dir = PolicyDir::with(&[
        ("10-trap-request.wasm", "hostile-trap-request"),
        ("20-trap-response.wasm", "hostile-trap-response"),
    ]);
    let policies = dir.start_with(&closed(&["10-trap-request.wasm", "20-trap-response.wasm"]));
    assert_eq!(
        status(&policies, "10-trap-request.wasm").failure_mode,
        FailureMode::Closed
    );
    let chain = policies.chain();
    let trapping = TestRequest::get("https://example.com/trap");
    let refusal = trapping.decide(&chain).unwrap_err();
    assert_eq!(refusal.module, "10-trap-request.wasm");
    assert!(
        refusal.reason.contains("trapped: panicked at")
            && refusal
                .reason
                .contains("hostile-trap-request was asked to trap on /trap"),
        "{refusal}"
    );
    assert!(
        refusal
            .to_string()
            .starts_with("policy module 10-trap-request.wasm refused the request: trapped")
    );
    let refusal = trapping
        .verdict(&chain, 200, &[], CacheVerdict::new(true, Duration::ZERO))
        .unwrap_err();
    assert_eq!(refusal.module, "20-trap-response.wasm");
    assert!(refusal.reason.ends_with("in on-response"), "{refusal}");
    assert!(
        TestRequest::get("https://example.com/fine")
            .decide(&chain)
            .is_ok()
    );
}

#[test]
fn invalid_decisions_are_counted_and_skipped_or_refused() {
    let dir = PolicyDir::with(&[
        ("10-invalid.wasm", "hostile-invalid"),
        ("20-nowhere.wasm", "hostile-unknown-origin"),
    ]);
    let open = dir.start();
    let request = TestRequest::get("https://example.com/");
    assert_eq!(
        request.decide(&open.chain()).unwrap(),
        request.default_decision()
    );
    assert_eq!(status(&open, "10-invalid.wasm").invalid_decisions, 1);
    assert_eq!(status(&open, "20-nowhere.wasm").invalid_decisions, 1);

    let strict = dir.start_with(&closed(&["10-invalid.wasm", "20-nowhere.wasm"]));
    let chain = strict.chain();
    for (path, reason) in [
        (
            "/",
            "origin-header-edits[0]: \"connection\" is a hop-by-hop or framing header, which policies may not edit",
        ),
        (
            "/crlf",
            "origin-header-edits[0]: the value of \"x-injected\" is not a valid header value",
        ),
        (
            "/status",
            "synthetic response status 99 is outside 200..=599",
        ),
        (
            "/big-body",
            "synthetic response body is 65537 bytes (at most 65536)",
        ),
        ("/cache-key", "cache-key has 17 components (at most 16)"),
    ] {
        let refusal = TestRequest::get(&format!("https://example.com{path}"))
            .decide(&chain)
            .unwrap_err();
        assert_eq!(refusal.module, "10-invalid.wasm");
        assert!(
            refusal
                .reason
                .contains(&format!("returned an invalid decision: {reason}")),
            "{path}: {refusal}"
        );
    }
    let refusal = request
        .verdict(&chain, 200, &[], CacheVerdict::new(true, Duration::ZERO))
        .unwrap_err();
    assert!(
        refusal
            .reason
            .contains("tags[0] \"has space\" is not 1..=128 printable ASCII bytes"),
        "{refusal}"
    );

    let mut only_origin = closed(&["20-nowhere.wasm"]);
    only_origin.modules.remove("10-invalid.wasm");
    let refusal = request
        .decide(&dir.start_with(&only_origin).chain())
        .unwrap_err();
    assert_eq!(refusal.module, "20-nowhere.wasm");
    assert!(
        refusal
            .reason
            .contains("origin \"nowhere\" is not configured (configured origins: default, api)"),
        "{refusal}"
    );
}

/// Everything this test binary logs. A global subscriber, because tracing caches per call
/// site whether anyone listens, which races with scoped subscribers in parallel tests.
fn captured_log() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static Mutex<Vec<u8>> = Box::leak(Box::default());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Log(log))
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        log
    })
}

struct Log(&'static Mutex<Vec<u8>>);

impl io::Write for Log {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn failures_are_logged_with_the_module_name_at_a_limited_rate() {
    let log = captured_log();
    let dir = PolicyDir::with(&[
        ("10-logged-trap.wasm", "hostile-trap-request"),
        ("20-logged-always.wasm", "hostile-trap-always"),
    ]);
    let policies = dir.start();
    let chain = policies.chain();
    for _ in 0..5 {
        TestRequest::get("https://example.com/trap")
            .decide(&chain)
            .unwrap();
    }
    assert_eq!(status(&policies, "10-logged-trap.wasm").traps, 5);
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        text.contains("refused policy module 20-logged-always.wasm: it failed its smoke call"),
        "{text}"
    );
    let failures: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("policy module 10-logged-trap.wasm trapped"))
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "one line per interval, not one per failure:\n{text}"
    );
    assert!(
        failures[0].contains("in on-request")
            && failures[0].contains("hostile-trap-request was asked to trap")
    );
}

#[test]
fn a_request_action_survives_a_skipped_module() {
    let dir = PolicyDir::with(&[
        ("10-bypass.wasm", "bypass-private"),
        ("20-trap.wasm", "hostile-trap-request"),
    ]);
    let chain = dir.start().chain();
    let decision = TestRequest::get("https://example.com/trap")
        .header("cookie", "a=b")
        .decide(&chain)
        .unwrap();
    assert_eq!(
        decision.action,
        RequestAction::Pass,
        "the skipped module's input decision is kept"
    );
}
