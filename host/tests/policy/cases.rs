//! `caje policy test --cases`, run as the real binary: a passing file, a failing one with its
//! differences, a whole directory under a config's settings, and a malformed file.

use std::fs;
use std::path::{Path, PathBuf};

use super::{PolicyDir, caje, component, text};

fn run_cases(target: &Path, cases: &Path, config: Option<&Path>) -> (Option<i32>, String, String) {
    let mut args = vec![
        "policy",
        "test",
        target.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ];
    if let Some(config) = config {
        args.extend(["--config", config.to_str().unwrap()]);
    }
    let output = caje(&args);
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

fn shipped(example: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policies")
        .join(example)
        .join("cases.toml")
}

#[test]
fn a_passing_cases_file_prints_ok_rows_and_exits_0() {
    let (code, stdout, stderr) = run_cases(
        &component("security-headers"),
        &shipped("security-headers"),
        None,
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("6 cases through security_headers.wasm\n"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("ok    a hit gets the security headers and loses server and x-powered-by\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("6 passed, 0 failed\n"), "{stdout}");
}

const WRONG: &str = r#"
[[case]]
name = "right"
request = "GET https://example.com/"
[case.response]
headers = { server = "nginx" }
[case.expect]
delivered_headers = { server = false }

[[case]]
name = "wrong about the headers and the status"
request = "GET http://example.com/"
[case.response]
headers = { server = "nginx" }
[case.expect]
status = 204
delivered_headers = { server = "nginx", "strict-transport-security" = true }

[[case]]
name = "wrong about failures"
request = "GET https://example.com/"
origin_error = "timeout"
[case.expect]
failures = ["security_headers.wasm"]
"#;

#[test]
fn a_failing_cases_file_prints_each_difference_and_exits_1() {
    let temp = tempfile::tempdir().unwrap();
    let cases = temp.path().join("cases.toml");
    fs::write(&cases, WRONG).unwrap();
    let (code, stdout, stderr) = run_cases(&component("security-headers"), &cases, None);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let expected = "\
3 cases through security_headers.wasm
ok    right
FAIL  wrong about the headers and the status
        status
          expected: 204
          got:      200
        delivered_headers.server
          expected: [\"nginx\"]
          got:      (absent)
        delivered_headers.strict-transport-security
          expected: (present)
          got:      (absent)
FAIL  wrong about failures
        failures
          expected: [security_headers.wasm]
          got:      (none)
1 passed, 2 failed
";
    assert_eq!(stdout, expected);
}

#[test]
fn a_directory_runs_in_chain_order_under_the_configs_settings() {
    let dir = PolicyDir::with(&[
        ("05-normalize.wasm", "normalize-query"),
        ("10-route.wasm", "route-by-path"),
        ("50-security.wasm", "security-headers"),
        ("60-loop.wasm", "hostile-loop"),
    ]);
    let root = dir.path().parent().unwrap().to_owned();
    let config = root.join("caje.toml");
    fs::write(
        &config,
        r#"
listen = "127.0.0.1:0"
cache_dir = "cache"
database = "manifest.db"
policies_dir = "policies"
default_origin = "web"

[origins.web]
url = "http://127.0.0.1:9"
hosts = ["shop.example"]

[origins.api]
url = "http://127.0.0.1:9"

[policies.modules."60-loop.wasm"]
failure = "closed"
"#,
    )
    .unwrap();
    let cases = root.join("cases.toml");
    fs::write(
        &cases,
        r#"
[[case]]
name = "normalised, then routed on the clean URL, then secured"
request = "GET https://shop.example/api/items?utm_source=x&b=2&a=1"
[case.response]
headers = { "cache-control" = "max-age=60", server = "nginx" }
[case.expect]
origin = "api"
url = "/api/items?a=1&b=2"
store = true
outcome = "miss"
delivered_headers = { server = false, "x-hostile-loop" = "finished" }

[[case]]
name = "a host no origin serves gets 421, still with the security headers"
request = "GET https://elsewhere.example/"
[case.expect]
status = 421
outcome = "error"
delivered_headers = { "x-content-type-options" = "nosniff" }

[[case]]
name = "the looping module fails closed, as the config says"
request = "GET https://shop.example/loop-deliver"
[case.response]
[case.expect]
status = 503
outcome = "error"
failures = ["60-loop.wasm"]
"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run_cases(&dir.path(), &cases, Some(&config));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with(
            "3 cases through 05-normalize.wasm, 10-route.wasm, 50-security.wasm, 60-loop.wasm\n"
        ),
        "{stdout}"
    );
    assert!(stdout.ends_with("3 passed, 0 failed\n"), "{stdout}");

    // Without the config, the loop fails open: the case that expects a 503 fails.
    let (code, stdout, _) = run_cases(&dir.path(), &cases, None);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  the looping module fails closed"),
        "{stdout}"
    );
}

#[test]
fn a_malformed_cases_file_names_the_case_and_the_key() {
    let temp = tempfile::tempdir().unwrap();
    let cases = temp.path().join("cases.toml");
    fs::write(
        &cases,
        "[[case]]\nname = \"first\"\nrequest = \"GET https://example.com/\"\n[case.expect]\nttl = \"soon\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run_cases(&component("security-headers"), &cases, None);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(&format!(
            "error: {}:5: case 1 \"first\": `case.expect.ttl`: invalid duration \"soon\"",
            cases.display()
        )),
        "{stderr}"
    );
    let output = caje(&[
        "policy",
        "test",
        component("security-headers").to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "clap: --request or --cases is needed"
    );
}
