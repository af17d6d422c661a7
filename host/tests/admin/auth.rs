//! Who gets in: the token on every route, refusals that say nothing about what was wrong, no
//! tokens in URLs or logs, loopback-only without a token, and an admin listener of its own.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use caje::admin::{Access, routes};
use caje_testkit::{CajeProcess, TestNode, eventually, get};
use http::StatusCode;

use crate::support::{self, TOKEN, assert_error, base, call};

#[tokio::test]
async fn every_route_refuses_a_missing_or_wrong_token_alike() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    let base = base(&node);
    assert!(routes().iter().any(|r| r.access == Access::Token));
    for route in routes() {
        let method = route.method.as_str();
        let missing = call(&base, method, route.path, "", None).await;
        let wrong = call(&base, method, route.path, "", Some("not-the-token")).await;
        let malformed = call(&base, method, route.path, "", Some("")).await;
        if route.access == Access::Public {
            // The dashboard page and its redirect: static, the same for everyone, no data.
            assert!(missing.status.is_success() || missing.status.is_redirection());
            assert_eq!(missing.body, wrong.body);
            assert!(!missing.text().contains("caje_requests_total"));
            continue;
        }
        for refused in [&missing, &wrong, &malformed] {
            let body = assert_error(refused, StatusCode::UNAUTHORIZED);
            assert_eq!(
                refused.header("www-authenticate"),
                Some("Bearer realm=\"caje\""),
                "{method} {}",
                route.path
            );
            assert_eq!(
                body,
                support::json(&missing),
                "one refusal for every wrong token"
            );
        }
        let allowed = call(&base, method, route.path, "", Some(TOKEN)).await;
        assert!(
            allowed.status != StatusCode::UNAUTHORIZED && allowed.status != StatusCode::FORBIDDEN,
            "{method} {} with the token: {}",
            route.path,
            allowed.status
        );
    }
    // Unknown routes are 401 to strangers (they learn nothing), 404/405 to the operator.
    assert_error(
        &call(&base, "GET", "/_caje/nope", "", None).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_error(
        &call(&base, "GET", "/_caje/nope", "", Some(TOKEN)).await,
        StatusCode::NOT_FOUND,
    );
    let wrong_method = call(&base, "DELETE", "/_caje/purge", "", Some(TOKEN)).await;
    assert_error(&wrong_method, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    assert_eq!(
        origin.hits("/_caje/nope"),
        0,
        "admin paths never reach the origin"
    );
}

#[tokio::test]
async fn a_token_in_the_query_string_is_refused_with_a_hint() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "", "").await;
    for query in [
        format!("token={TOKEN}"),
        "access_token=whatever".to_owned(),
        format!("prefix={TOKEN}"),
    ] {
        let path = format!("/_caje/list?{query}");
        let body = support::get_error(&node, &path, StatusCode::BAD_REQUEST).await;
        assert!(
            body["hint"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_token_comes_from_the_environment_first_and_never_reaches_the_log() {
    const ENV_TOKEN: &str = "env-token-93c1d0";
    let origin = support::origin().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin-token"), "file-token-ignored\n").unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let config = dir.path().join("caje.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ncache_dir = \"cache\"\ndatabase = \"manifest.db\"\n\
             policies_dir = \"policies\"\ndefault_origin = \"origin\"\n\n[origins.origin]\n\
             url = \"{}\"\n\n[admin]\ntoken_file = \"admin-token\"\n\n[log]\nlevel = \"debug\"\n\
             format = \"json\"\n",
            origin.url()
        ),
    )
    .unwrap();
    let mut caje = CajeProcess::spawn(
        env!("CARGO_BIN_EXE_caje"),
        &config,
        &[("CAJE_ADMIN_TOKEN", ENV_TOKEN)],
    )
    .await;
    let base = caje.url("");
    let text = caje.log();
    assert!(
        text.contains("bearer token from CAJE_ADMIN_TOKEN"),
        "{text}"
    );

    assert_eq!(
        call(&base, "GET", "/_caje/health", "", Some(ENV_TOKEN))
            .await
            .status,
        200
    );
    let file_token = call(
        &base,
        "GET",
        "/_caje/health",
        "",
        Some("file-token-ignored"),
    )
    .await;
    assert_eq!(file_token.status, 401, "the environment wins over the file");
    // A proxied request carrying the token (a client that sends it everywhere) is logged too,
    // at debug level, without it.
    let proxied = caje_testkit::get_with(
        &format!("{base}/page"),
        &[("authorization", &format!("Bearer {ENV_TOKEN}"))],
    )
    .await;
    assert_eq!(proxied.status, 200);
    let in_query = format!("/_caje/list?token={ENV_TOKEN}");
    assert_eq!(
        call(&base, "GET", &in_query, "", Some(ENV_TOKEN))
            .await
            .status,
        400
    );
    eventually("the admin access lines", Duration::from_secs(10), || {
        caje.log().matches("caje::admin").count() >= 3
    })
    .await;
    caje.kill();
    let text = caje.log();
    assert!(text.contains(r#""path":"/_caje/list""#), "{text}");
    assert!(
        text.contains(r#""url":"http://"#),
        "the proxied request is logged: {text}"
    );
    for secret in [ENV_TOKEN, "file-token-ignored"] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the log:\n{text}"
        );
    }
}

/// An address of this machine that is not loopback (so that a request from it is not from
/// loopback), from the kernel's local routing table.
fn non_loopback_address() -> Option<IpAddr> {
    let table = std::fs::read_to_string("/proc/net/fib_trie").ok()?;
    let lines: Vec<&str> = table.lines().collect();
    lines.windows(2).find_map(|pair| {
        let ip: IpAddr = pair[0]
            .trim()
            .trim_start_matches(['|', '-', '+', ' '])
            .parse()
            .ok()?;
        (pair[1].contains("/32 host LOCAL") && !ip.is_loopback()).then_some(ip)
    })
}

#[tokio::test]
async fn without_a_token_only_loopback_clients_are_answered() {
    let Some(ip) = non_loopback_address() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs a non-loopback address to test the loopback rule"
        );
        eprintln!("SKIPPED: this machine has no non-loopback address to send from");
        return;
    };
    let origin = support::origin().await;
    let open = TestNode::start_with(&origin.url(), "[admin]\nlisten = \"0.0.0.0:0\"\n").await;
    let port = open.node().admin_addr.unwrap().port();
    let remote = format!("http://{}", SocketAddr::new(ip, port));
    let local = format!("http://127.0.0.1:{port}");
    for path in ["/_caje/health", "/_caje/"] {
        let refused = call(&remote, "GET", path, "", None).await;
        let body = assert_error(&refused, StatusCode::FORBIDDEN);
        assert!(
            body["hint"].as_str().unwrap().contains("CAJE_ADMIN_TOKEN"),
            "{body}"
        );
        assert_eq!(
            call(&remote, "GET", path, "", Some("anything"))
                .await
                .status,
            403
        );
        assert_eq!(
            call(&local, "GET", path, "", None).await.status,
            200,
            "{path}"
        );
    }
    // With a token, the address does not matter: the token does.
    let guarded = support::start(&origin.url(), "listen = \"0.0.0.0:0\"", "").await;
    let port = guarded.node().admin_addr.unwrap().port();
    let remote = format!("http://{}", SocketAddr::new(ip, port));
    assert_eq!(
        call(&remote, "GET", "/_caje/health", "", Some(TOKEN))
            .await
            .status,
        200
    );
    assert_eq!(
        call(&remote, "GET", "/_caje/health", "", None).await.status,
        401
    );
    // public_health without a token: strangers learn that the node serves, nothing more.
    let probed = TestNode::start_with(
        &origin.url(),
        "[admin]\nlisten = \"0.0.0.0:0\"\npublic_health = true\n",
    )
    .await;
    let port = probed.node().admin_addr.unwrap().port();
    let remote = format!("http://{}", SocketAddr::new(ip, port));
    let bare = call(&remote, "GET", "/_caje/health", "", None).await;
    assert_eq!(support::json(&bare), serde_json::json!({"serving": true}));
    assert_error(
        &call(&remote, "GET", "/_caje/list", "", None).await,
        StatusCode::FORBIDDEN,
    );
    let local = format!("http://127.0.0.1:{port}/_caje/health");
    assert!(support::json(&get(&local).await)["node"].is_string());
}

#[tokio::test]
async fn public_health_tells_anyone_that_the_node_serves_and_only_the_operator_how() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "public_health = true", "").await;
    let base = base(&node);
    for token in [None, Some("not-the-token")] {
        let bare = call(&base, "GET", "/_caje/health", "", token).await;
        assert_eq!(bare.status, StatusCode::OK, "{}", bare.text());
        assert_eq!(support::json(&bare), serde_json::json!({"serving": true}));
    }
    let report = support::get(&node, "/_caje/health").await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["node"].is_string(), "{report}");
    // Only that route and method: everything else still wants the token.
    for (method, path) in [
        ("GET", "/_caje/list"),
        ("GET", "/_caje/metrics"),
        ("POST", "/_caje/health"),
    ] {
        let refused = call(&base, method, path, "", None).await;
        assert_error(&refused, StatusCode::UNAUTHORIZED);
    }
    let in_query = format!("/_caje/health?token={TOKEN}");
    assert_error(
        &call(&base, "GET", &in_query, "", None).await,
        StatusCode::BAD_REQUEST,
    );
}

#[tokio::test]
async fn an_admin_listener_of_its_own_takes_the_api_off_the_proxy_listener() {
    let origin = support::origin().await;
    let node = support::start(&origin.url(), "listen = \"127.0.0.1:0\"", "").await;
    let admin = format!("http://{}", node.node().admin_addr.unwrap());
    assert_eq!(
        call(&admin, "GET", "/_caje/health", "", Some(TOKEN))
            .await
            .status,
        200
    );
    let body = support::get_error(&node, "/_caje/health", StatusCode::NOT_FOUND).await;
    assert!(
        body["hint"].as_str().unwrap().contains("[admin] listen"),
        "{body}"
    );
    // Pages are not served on the admin listener, and neither listener sends /_caje anywhere.
    let page_on_admin = call(&admin, "GET", "/page", "", Some(TOKEN)).await;
    assert_error(&page_on_admin, StatusCode::NOT_FOUND);
    assert_eq!(get(&node.url("/page")).await.status, 200);
    assert_eq!(origin.hits("/page"), 1);
    assert_eq!(origin.hits("/_caje/health"), 0);
}

#[tokio::test]
async fn a_disabled_admin_api_still_keeps_its_paths_from_the_origin() {
    let origin = support::origin().await;
    let node = TestNode::start_with(&origin.url(), "[admin]\nenabled = false\n").await;
    let reply = call(&base(&node), "GET", "/_caje/list", "", None).await;
    assert_error(&reply, StatusCode::NOT_FOUND);
    assert_eq!(origin.hits("/_caje/list"), 0);
}

#[tokio::test]
async fn an_unreadable_token_file_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let path = dir.path().join("caje.toml");
    let text = "listen = \"127.0.0.1:0\"\ncache_dir = \"cache\"\ndatabase = \"manifest.db\"\n\
                policies_dir = \"policies\"\ndefault_origin = \"o\"\n[origins.o]\n\
                url = \"http://127.0.0.1:9\"\n[admin]\ntoken_file = \"missing-token\"\n";
    let config = caje::config::Config::parse(text, &path).unwrap();
    let err = caje::app::Node::start(&config)
        .await
        .err()
        .expect("no start");
    let message = format!("{err:#}");
    assert!(
        message.contains("cannot read the admin token file"),
        "{message}"
    );
    assert!(message.contains("hint:"), "{message}");
    std::fs::write(dir.path().join("missing-token"), "  \n").unwrap();
    let err = caje::app::Node::start(&config)
        .await
        .err()
        .expect("no start");
    assert!(format!("{err:#}").contains("is empty"), "{err:#}");
}
