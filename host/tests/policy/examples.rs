//! Each example policy's decisions, through the real host (no WASI: every WASI import traps).

use std::time::Duration;

use caje::policy::{CacheVerdict, HeaderEdit, RequestAction};
use http::HeaderName;

use super::{PolicyDir, TestRequest};

#[test]
fn route_by_path_sends_api_requests_to_the_api_origin() {
    let dir = PolicyDir::with(&[("10-route.wasm", "route-by-path")]);
    let chain = dir.start().chain();
    for (url, origin) in [
        ("https://example.com/api/users?id=1", "api"),
        ("https://example.com/api", "api"),
        ("https://example.com/apidocs", "default"),
        ("https://example.com/", "default"),
    ] {
        let decision = TestRequest::get(url).decide(&chain).unwrap();
        assert_eq!(decision.origin, origin, "{url}");
        assert_eq!(decision.action, RequestAction::Lookup, "{url}");
    }
}

#[test]
fn ttl_override_forces_caps_and_refuses_ttls() {
    let dir = PolicyDir::with(&[("10-ttl.wasm", "ttl-override")]);
    let chain = dir.start().chain();
    let hour = Duration::from_secs(3600);

    let forced = TestRequest::get("https://example.com/static/app.js")
        .verdict(
            &chain,
            200,
            &[("cache-control", "no-store")],
            CacheVerdict::new(false, Duration::ZERO),
        )
        .unwrap();
    assert!(forced.store);
    assert_eq!(forced.ttl, Duration::from_secs(300));

    let heuristic = TestRequest::get("https://example.com/page")
        .verdict(
            &chain,
            200,
            &[("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")],
            CacheVerdict::new(true, 10 * hour),
        )
        .unwrap();
    assert_eq!(heuristic.ttl, Duration::from_secs(600));

    let explicit = TestRequest::get("https://example.com/page")
        .verdict(
            &chain,
            200,
            &[("cache-control", "max-age=36000")],
            CacheVerdict::new(true, 10 * hour),
        )
        .unwrap();
    assert_eq!(explicit.ttl, 10 * hour);

    let admin = TestRequest::get("https://example.com/admin/users");
    assert_eq!(admin.decide(&chain).unwrap().action, RequestAction::Pass);
    let refused = admin
        .verdict(
            &chain,
            200,
            &[("cache-control", "max-age=60")],
            CacheVerdict::new(true, hour),
        )
        .unwrap();
    assert!(!refused.store);
}

#[test]
fn bypass_private_passes_requests_with_credentials() {
    let dir = PolicyDir::with(&[("10-bypass.wasm", "bypass-private")]);
    let chain = dir.start().chain();
    let cookie = TestRequest::get("https://example.com/account").header("cookie", "session=1");
    assert_eq!(cookie.decide(&chain).unwrap().action, RequestAction::Pass);
    let bearer = TestRequest::get("https://example.com/feed").header("authorization", "Bearer t");
    assert_eq!(bearer.decide(&chain).unwrap().action, RequestAction::Pass);
    let anonymous = TestRequest::get("https://example.com/account");
    assert_eq!(
        anonymous.decide(&chain).unwrap(),
        anonymous.default_decision()
    );

    let public =
        TestRequest::get("https://example.com/static/logo.png").header("cookie", "session=1");
    let decision = public.decide(&chain).unwrap();
    assert_eq!(decision.action, RequestAction::Lookup);
    assert_eq!(
        decision.origin_header_edits,
        [
            HeaderEdit::Remove(HeaderName::from_static("cookie")),
            HeaderEdit::Remove(HeaderName::from_static("authorization")),
        ]
    );
}

#[test]
fn tag_by_path_tags_by_section_and_host() {
    let dir = PolicyDir::with(&[("10-tag.wasm", "tag-by-path")]);
    let chain = dir.start().chain();
    let mut current = CacheVerdict::new(true, Duration::from_secs(60));
    current.tags.push("earlier".to_owned());
    let tagged = TestRequest::get("https://shop.example:8443/products/42")
        .verdict(&chain, 200, &[], current)
        .unwrap();
    assert_eq!(
        tagged.tags,
        ["earlier", "path:products", "host:shop.example"]
    );
    assert_eq!(tagged.ttl, Duration::from_secs(60));
    let root = TestRequest::get("https://example.com/")
        .verdict(&chain, 200, &[], CacheVerdict::new(true, Duration::ZERO))
        .unwrap();
    assert_eq!(root.tags, ["path:/", "host:example.com"]);
}
