//! `caje policy check|test`, run as the real binary.

use super::{caje, component, text};

#[test]
fn check_accepts_a_policy_and_shows_its_world() {
    let file = component("route-by-path");
    let output = caje(&["policy", "check", file.to_str().unwrap()]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.starts_with("ok: route_by_path.wasm is a caje policy (caje:policy/hooks@0.2.0)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  world:      caje:policy@0.2.0\n  hooks:      on-request\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("imports:    caje:policy/types@0.2.0\n"),
        "{stdout}"
    );
    assert!(stdout.contains("wasi:cli/stderr@"), "{stdout}");
    assert!(
        stdout.contains("(traps if called: policies get no WASI)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("smoke call: passed (on-request for GET https://caje.invalid/)"),
        "{stdout}"
    );
}

#[test]
fn check_refuses_garbage_and_other_versions() {
    let temp = tempfile::tempdir().unwrap();
    let garbage = temp.path().join("garbage.wasm");
    std::fs::write(&garbage, "hello").unwrap();
    let output = caje(&["policy", "check", garbage.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert_eq!(
        text(&output.stderr),
        "error: garbage.wasm is not a WebAssembly component (it does not start with the \\0asm header)\n"
    );

    let future = component("hostile-wit-version");
    let output = caje(&["policy", "check", future.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("was built against caje:policy@0.3.0"),
        "{}",
        text(&output.stderr)
    );

    let missing = temp.path().join("missing.wasm");
    let output = caje(&["policy", "check", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).starts_with("error: cannot read "),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn test_prints_each_hooks_decision() {
    let file = component("bypass-private");
    let output = caje(&[
        "policy",
        "test",
        file.to_str().unwrap(),
        "--request",
        "GET https://example.com/static/logo.png",
        "--header",
        "Cookie: session=1",
        "--origin",
        "web",
        "--response-header",
        "cache-control: max-age=120, stale-if-error=60",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for line in [
        "request:  GET https://example.com/static/logo.png",
        "on-request (given origin web, lookup)",
        "  origin:                 web",
        "  action:                 lookup",
        "  origin-header-edits:    remove cookie, remove authorization",
        "  url:                    (unchanged)",
        "  fuel used:",
        "not implemented (caje never calls them): on-response, on-deliver, on-error",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

#[test]
fn test_starts_on_response_from_the_proxys_defaults() {
    // http-cache-semantics alone would store this; caje does not share what answers a Cookie
    // request unless the response says so, and `caje policy test` says what caje would do.
    let output = caje(&[
        "policy",
        "test",
        component("tag-by-path").to_str().unwrap(),
        "--request",
        "GET https://example.com/account",
        "--header",
        "Cookie: session=1",
        "--response-header",
        "cache-control: max-age=120, stale-if-error=60",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for line in [
        "on-response (status 200; given store no (request had Cookie), ttl 2m)",
        "  ttl:                    2m",
        "  stale-if-error:         1m",
        "  tags:                   path:account, host:example.com",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

#[test]
fn test_shows_delivered_headers_and_error_pages() {
    let output = caje(&[
        "policy",
        "test",
        component("security-headers").to_str().unwrap(),
        "--request",
        "GET https://example.com/",
        "--response-header",
        "server: nginx",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for line in [
        "on-deliver (status 200, miss)",
        "  header-edits:           remove server, remove x-powered-by, set x-content-type-options: nosniff, \
         set referrer-policy: strict-origin-when-cross-origin, \
         set strict-transport-security: max-age=63072000; includeSubDomains, set content-security-policy: ",
        "on-error (origin default unreachable)",
        "  response:               respond 502 Bad Gateway (3 headers, ",
        "not implemented (caje never calls them): on-request, on-response",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

#[test]
fn test_reports_a_failing_hook_and_exits_with_1() {
    let file = component("hostile-unknown-origin");
    let output = caje(&[
        "policy",
        "test",
        file.to_str().unwrap(),
        "--request",
        "GET https://example.com/",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("  error: the module returned an invalid decision: origin \"nowhere\" is not configured (configured origins: default)"),
        "{stdout}"
    );
    let output = caje(&[
        "policy",
        "test",
        file.to_str().unwrap(),
        "--request",
        "/relative",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("write it as 'METHOD URL'"),
        "{}",
        text(&output.stderr)
    );
}
