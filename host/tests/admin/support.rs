//! What the admin tests share: nodes whose admin API wants a token, admin calls, JSON answers.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use caje::policy::ModuleState;

use bytes::Bytes;
use caje_testkit::{Reply, TestNode, TestOrigin, respond, send};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use caje_testkit::policies::component;

pub const TOKEN: &str = "test-admin-token-5f1c2a9e";

/// A node in front of `origin` whose admin API wants [`TOKEN`] (read from a token file);
/// `admin_keys` go into its `[admin]` table, `manifest_keys` into `[manifest]`.
pub async fn start(origin: &str, admin_keys: &str, manifest_keys: &str) -> TestNode {
    start_on(origin, None, admin_keys, manifest_keys, "").await
}

/// [`start`] with the manifest at `database` (another node's file, for instance) and `extra`
/// appended to the config.
pub async fn start_on(
    origin: &str,
    database: Option<&Path>,
    admin_keys: &str,
    manifest_keys: &str,
    extra: &str,
) -> TestNode {
    let token_file = token_file();
    let extra = format!(
        "[admin]\ntoken_file = '{}'\n{admin_keys}\n\n[manifest]\nbatch_max_delay = \"5ms\"\n{manifest_keys}\n\n{extra}\n",
        token_file.display()
    );
    match database {
        Some(database) => TestNode::start_with_database(origin, database, &extra).await,
        None => TestNode::start_with(origin, &extra).await,
    }
}

/// A file holding [`TOKEN`], shared by the nodes of the test process (it must outlive them:
/// a restart reads it again).
fn token_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-test-token");
        std::fs::write(&path, format!("{TOKEN}\n")).expect("write the token file");
        path
    })
}

/// Puts the `policies/` crate `crate_name`'s component into the node's policies directory as
/// `file` (written beside it, then renamed in, as operators should) and waits until it serves.
pub async fn install_policy(node: &TestNode, file: &str, crate_name: &str) {
    install_policy_bytes(
        node,
        file,
        &std::fs::read(component(crate_name)).expect("component"),
    );
    let policies = &node.node().context.policies;
    caje_testkit::eventually(&format!("{file} to serve"), Duration::from_secs(20), || {
        policies
            .status()
            .iter()
            .any(|m| m.file == file && m.state == ModuleState::Active)
    })
    .await;
}

/// Renames `bytes` into the node's policies directory as `file`.
pub fn install_policy_bytes(node: &TestNode, file: &str, bytes: &[u8]) {
    let dir = &node.config.policies_dir;
    let temp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&temp, bytes).expect("write the module");
    std::fs::rename(&temp, dir.join(file)).expect("rename the module in");
}

/// An admin request to `base` (`http://host:port`) with an optional bearer token.
pub async fn call(base: &str, method: &str, path: &str, body: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send(
        request
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("valid request"),
    )
    .await
}

/// `http://127.0.0.1:<port>` of a node's proxy listener.
pub fn base(node: &TestNode) -> String {
    node.url("")
}

/// GET with the token; the answer must be 200 JSON.
pub async fn get(node: &TestNode, path: &str) -> Value {
    let reply = call(&base(node), "GET", path, "", Some(TOKEN)).await;
    assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.text());
    json(&reply)
}

/// POST with the token: the status and the JSON answer.
pub async fn post(node: &TestNode, path: &str, body: &str) -> (StatusCode, Value) {
    let reply = call(&base(node), "POST", path, body, Some(TOKEN)).await;
    (reply.status, json(&reply))
}

pub fn json(reply: &Reply) -> Value {
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{}",
        reply.text()
    );
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", reply.text()))
}

/// Asserts an error answer: its status and a JSON body with a non-empty error and hint.
pub fn assert_error(reply: &Reply, status: StatusCode) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    let body = json(reply);
    for field in ["error", "hint"] {
        assert!(
            body[field].as_str().is_some_and(|text| !text.is_empty()),
            "{field} missing in {body}"
        );
    }
    body
}

/// Every listed entry, following `next` through manifest and disk pages (at most 200 pages).
pub async fn list_all(node: &TestNode, query: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..200 {
        let mut path = format!("/_caje/list?{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = get(node, &path).await;
        entries.extend(page["entries"].as_array().expect("entries").iter().cloned());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return entries,
        }
    }
    panic!("the listing did not end within 200 pages");
}

/// The listed entries' URL paths (after the node's address), in listing order.
pub fn paths(entries: &[Value]) -> Vec<String> {
    entries.iter().map(path_of).collect()
}

/// A listed entry's URL path.
pub fn path_of(entry: &Value) -> String {
    let url = entry["url"].as_str().expect("url");
    url.splitn(4, '/')
        .nth(3)
        .map_or("/".into(), |p| format!("/{p}"))
}

/// GETs each path through the node (each a MISS that stores the page), then waits until the
/// manifest has them.
pub async fn fill(node: &TestNode, paths: &[&str]) {
    for path in paths {
        let reply = caje_testkit::get(&node.url(path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    if node.node().context.manifest.as_ref().is_some() {
        flush(node).await;
    }
}

/// GET with the token that must fail with `status` and a JSON error.
pub async fn get_error(node: &TestNode, path: &str, status: StatusCode) -> Value {
    assert_error(
        &call(&base(node), "GET", path, "", Some(TOKEN)).await,
        status,
    )
}

/// Waits until every record queued so far is in the manifest.
pub async fn flush(node: &TestNode) {
    node.node()
        .context
        .manifest
        .as_ref()
        .expect("manifest enabled")
        .flush()
        .await
        .expect("manifest flush");
}

/// An origin whose every page is cacheable for a minute, has the ETag `"v1"` (answering 304 to
/// `If-None-Match: "v1"`) and says which path it is.
pub async fn origin() -> TestOrigin {
    TestOrigin::start(|request| async move {
        let headers = [("cache-control", "max-age=60"), ("etag", "\"v1\"")];
        if request
            .headers()
            .get("if-none-match")
            .is_some_and(|v| v == "\"v1\"")
        {
            return respond(304, &headers, "");
        }
        respond(200, &headers, request.uri().path())
    })
    .await
}
