//! What a hook call costs through the real chain, as the proxy makes it: inline on the calling
//! thread, on a pooled instance (instantiation amortized), with a realistic request of 11
//! headers. Compare each figure with `noop` (a module that keeps every decision) and with
//! the empty chain measured in the same run; on-deliver with a module without the hook
//! (`no-hooks`, never called) and with the memo off.

use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use caje::policy::{
    CacheOutcome, CacheVerdict, Chain, Delivery, Policies, PolicyConfig, RequestDecision,
    RequestView, ResponseView,
};
use caje_testkit::policies;
use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use tempfile::TempDir;

/// Header fields as hyper hands them over: slices of one shared read buffer.
fn headers(raw: &str) -> HeaderMap {
    let buffer = Bytes::copy_from_slice(raw.as_bytes());
    let mut headers = HeaderMap::new();
    for line in raw.lines() {
        let (name, value) = line.split_once(": ").unwrap();
        let start = value.as_ptr() as usize - raw.as_ptr() as usize;
        let value =
            HeaderValue::from_maybe_shared(buffer.slice(start..start + value.len())).unwrap();
        headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
    }
    headers
}

const REQUEST_HEADERS: &str = "host: shop.example.com
user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36
accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8
accept-encoding: br, gzip
accept-language: en-US,en;q=0.9,fr;q=0.8
referer: https://shop.example.com/products
x-forwarded-for: 203.0.113.7
x-request-id: 7f9c2ba4e88f827d616045507605853e
sec-fetch-mode: navigate
sec-fetch-site: same-origin
upgrade-insecure-requests: 1";

const RESPONSE_HEADERS: &str = "content-type: text/html; charset=utf-8
cache-control: public, max-age=60
etag: \"33a64df551425fcc55e4d42a148795d9f25f89d4\"
last-modified: Tue, 25 Nov 2025 10:00:00 GMT
vary: Accept-Encoding
date: Wed, 26 Nov 2025 10:00:00 GMT";

struct Setup {
    _dir: TempDir,
    _policies: Policies,
    chain: std::sync::Arc<Chain>,
}

/// A chain of the given `policies/` crates, in this order.
fn chain(crates: &[&str]) -> Setup {
    chain_with(crates, true)
}

/// [`chain`], with the decision memo on or off.
fn chain_with(crates: &[&str], memoize: bool) -> Setup {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("policies");
    fs::create_dir(&path).unwrap();
    for (index, name) in crates.iter().enumerate() {
        policies::install(&path, &format!("{index:02}-{name}.wasm"), name);
    }
    let config = PolicyConfig {
        precompiled_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("policy-precompiled")),
        memoize,
        ..PolicyConfig::default()
    };
    let policies = Policies::start(&path, &config, vec!["default".into(), "api".into()]).unwrap();
    let chain = policies.chain();
    assert_eq!(chain.module_names().count(), crates.len());
    Setup {
        _dir: dir,
        _policies: policies,
        chain,
    }
}

fn hooks(c: &mut Criterion) {
    let method = Method::GET;
    let uri: Uri = "https://shop.example.com/api/products/42?color=blue"
        .parse()
        .unwrap();
    let request_headers = headers(REQUEST_HEADERS);
    let request = RequestView::from_uri(&method, &uri, &request_headers);
    let response_headers = headers(RESPONSE_HEADERS);
    let response = ResponseView {
        status: StatusCode::OK,
        headers: &response_headers,
        origin: "default",
    };
    let decision = RequestDecision::default_for(&method, "default");
    let verdict = CacheVerdict::new(true, Duration::from_secs(60));

    let chains = [
        ("empty", Vec::new()),
        ("noop", vec!["noop"]),
        ("route-by-path", vec!["route-by-path"]),
        ("ttl-override", vec!["ttl-override"]),
        ("tag-by-path", vec!["tag-by-path"]),
        (
            "3 modules",
            vec!["route-by-path", "bypass-private", "ttl-override"],
        ),
    ];
    let mut on_request = c.benchmark_group("on_request");
    let mut on_response_chains = Vec::new();
    for (label, crates) in chains {
        let setup = chain(&crates);
        if label != "tag-by-path" && label != "ttl-override" {
            on_request.bench_function(label, |b| {
                b.iter(|| {
                    setup
                        .chain
                        .on_request(black_box(&request), decision.clone())
                        .unwrap()
                })
            });
        }
        on_response_chains.push((label, setup));
    }
    on_request.finish();

    let mut on_response = c.benchmark_group("on_response");
    for (label, setup) in &on_response_chains {
        if *label != "route-by-path" {
            on_response.bench_function(*label, |b| {
                b.iter(|| {
                    setup
                        .chain
                        .on_response(black_box(&request), black_box(&response), verdict.clone())
                        .unwrap()
                })
            });
        }
    }
    on_response.finish();

    // on-deliver on a hit, as the proxy will make it: nothing for modules without the hook, a
    // memo lookup for repeated hits on one stored response, a call without the memo.
    let delivery = Delivery {
        status: StatusCode::OK,
        outcome: CacheOutcome::Hit,
        origin: Some("default"),
    };
    let mut on_deliver = c.benchmark_group("on_deliver");
    for (label, crates, memoize) in [
        ("empty", vec![], true),
        ("no-hooks", vec!["no-hooks"], true),
        ("security-headers (memo)", vec!["security-headers"], true),
        (
            "security-headers (no memo)",
            vec!["security-headers"],
            false,
        ),
    ] {
        let setup = chain_with(&crates, memoize);
        on_deliver.bench_function(label, |b| {
            b.iter(|| {
                let mut headers = response_headers.clone();
                setup
                    .chain
                    .on_deliver(black_box(&request), &delivery, &mut headers)
                    .unwrap();
                headers
            })
        });
    }
    on_deliver.finish();

    // The worst case: a module that traps on every call costs a fresh instance each time.
    let trapping = chain(&["hostile-trap-request"]);
    let trap_uri: Uri = "https://shop.example.com/trap".parse().unwrap();
    let trap_request = RequestView::from_uri(&method, &trap_uri, &request_headers);
    c.bench_function("on_request/trap every call (fresh instance)", |b| {
        b.iter(|| {
            trapping
                .chain
                .on_request(black_box(&trap_request), decision.clone())
                .unwrap()
        })
    });

    // Part of every non-empty chain call: the request is copied once for the modules' stores.
    c.bench_function("clone request headers", |b| {
        b.iter(|| black_box(&request_headers).clone())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = hooks
}
criterion_main!(benches);
