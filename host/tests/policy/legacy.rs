//! A module built with the first SDK (`caje:policy@0.1.0`, `data/decorate-0.1.0.wasm`, see
//! `data/README.md`) loads, decides exactly as the same source built with today's SDK, and
//! keeps what it cannot see (a normalised URL, stored-header edits) in a chain of new modules.

use std::time::Duration;

use caje::policy::{CacheVerdict, Chain, Policies, RequestAction};

use super::{PolicyDir, TestRequest, status};

const OLD_DECORATE: &[u8] = include_bytes!("data/decorate-0.1.0.wasm");

fn with_old_decorate(before: &[(&str, &str)], file: &str) -> PolicyDir {
    let dir = PolicyDir::with(before);
    dir.install_bytes(file, OLD_DECORATE);
    dir
}

#[test]
fn an_old_module_loads_as_0_1_0_with_its_two_hooks() {
    let dir = with_old_decorate(&[], "10-old.wasm");
    let policies = dir.start();
    let old = status(&policies, "10-old.wasm");
    assert_eq!(old.error, None);
    assert_eq!(old.world.as_deref(), Some("caje:policy@0.1.0"));
    assert_eq!(old.hooks, ["on-request", "on-response"]);
    let chain = policies.chain();
    assert!(!chain.delivers() && !chain.handles_errors());
}

fn decisions(chain: &Chain) -> Vec<String> {
    let mut seen = Vec::new();
    for path in ["/page", "/synthetic", "/keyed/x", "/api?x=1"] {
        let request = TestRequest::get(&format!("https://example.com{path}"))
            .header("x-secret", "s3cret")
            .header("x-trace", "client");
        seen.push(format!("{:?}", request.decide(chain)));
        for headers in [vec![], vec![("x-decorate-no-store", "1")]] {
            let verdict = request.verdict(
                chain,
                200,
                &headers,
                CacheVerdict::new(true, Duration::from_secs(60)),
            );
            seen.push(format!("{verdict:?}"));
        }
    }
    seen
}

#[test]
fn an_old_module_decides_as_the_same_source_built_today() {
    let old = with_old_decorate(&[], "10-decorate.wasm");
    let new = PolicyDir::with(&[("10-decorate.wasm", "decorate")]);
    let (old, new): (Policies, Policies) = (old.start(), new.start());
    let old_decisions = decisions(&old.chain());
    assert_eq!(old_decisions, decisions(&new.chain()));
    // And what it decides is what decorate is for.
    let page = TestRequest::get("https://example.com/page")
        .decide(&old.chain())
        .unwrap();
    assert_eq!(page.origin_header_edits.len(), 3);
    let synthetic = TestRequest::get("https://example.com/synthetic")
        .decide(&old.chain())
        .unwrap();
    assert!(
        matches!(synthetic.action, RequestAction::Respond(ref teapot) if teapot.status == 418),
        "{synthetic:?}"
    );
    let no_store = TestRequest::get("https://example.com/page")
        .verdict(
            &old.chain(),
            200,
            &[("x-decorate-no-store", "1")],
            CacheVerdict::new(true, Duration::from_secs(60)),
        )
        .unwrap();
    assert!(!no_store.store);
}

#[test]
fn an_old_module_keeps_what_newer_modules_decided() {
    let dir = with_old_decorate(
        &[
            ("05-normalize.wasm", "normalize-query"),
            ("08-probe.wasm", "probe"),
        ],
        "10-old.wasm",
    );
    let chain = dir.start().chain();
    let request = TestRequest::get("https://example.com/page?utm_source=x&b=1");
    let decision = request.decide(&chain).unwrap();
    assert_eq!(
        decision.url.as_ref().map(ToString::to_string).as_deref(),
        Some("/page?b=1"),
        "the normalised URL survives the old module"
    );
    assert_eq!(
        decision.origin_header_edits.len(),
        3,
        "the old module's edits"
    );
    let verdict = request
        .verdict(
            &chain,
            200,
            &[],
            CacheVerdict::new(true, Duration::from_secs(60)),
        )
        .unwrap();
    assert_eq!(
        verdict.stored_header_edits.len(),
        1,
        "the probe's stored-header edit survives the old module: {verdict:?}"
    );
    assert!(verdict.store);
}

#[test]
fn caje_policy_check_shows_an_old_modules_version_and_hooks() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("decorate-0.1.0.wasm");
    std::fs::write(&file, OLD_DECORATE).unwrap();
    let output = super::caje(&["policy", "check", file.to_str().unwrap()]);
    let stdout = super::text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        super::text(&output.stderr)
    );
    assert!(
        stdout.starts_with("ok: decorate-0.1.0.wasm is a caje policy (caje:policy/hooks@0.1.0)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  world:      caje:policy@0.1.0\n  hooks:      on-request, on-response\n"),
        "{stdout}"
    );
}
