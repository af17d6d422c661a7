//! The policy chain through a real caje: the example policies routing, caching, bypassing and
//! tagging real origin traffic; failure modes of the hostile modules; hot reload under load.

mod edits;
mod failures;
mod private;
mod reload;
mod routing;
mod tags;
mod ttl;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caje::body::Body;
use caje::policy::ModuleStatus;
use caje_testkit::{TestNode, TestOrigin, eventually, policies, respond};
use http::{HeaderMap, Request, Response};
use hyper::body::Incoming;

/// Longest wait for a module change to show (the debounce is 50 ms; a cold compile of a module
/// in a debug build takes seconds).
pub const RELOAD_LIMIT: Duration = Duration::from_secs(30);

/// A caje node to start with policies: its origins, `[policies]` keys and modules.
pub struct Caje<'a> {
    origin: &'a str,
    api: Option<&'a str>,
    policy_keys: &'a str,
    modules: Vec<(&'a str, &'a str)>,
}

impl<'a> Caje<'a> {
    /// A node whose default origin (named `origin`) is `origin_url`.
    pub fn new(origin_url: &'a str) -> Self {
        Caje {
            origin: origin_url,
            api: None,
            policy_keys: "",
            modules: Vec::new(),
        }
    }

    /// Adds the origin named `api` (where `route-by-path` sends `/api/*`).
    pub fn api(mut self, url: &'a str) -> Self {
        self.api = Some(url);
        self
    }

    /// Extra keys of the `[policies]` table, e.g. `failure = "closed"`.
    pub fn policy_keys(mut self, keys: &'a str) -> Self {
        self.policy_keys = keys;
        self
    }

    /// Installs the component of the `policies/` crate `crate_name` as `file`.
    pub fn module(mut self, file: &'a str, crate_name: &'a str) -> Self {
        self.modules.push((file, crate_name));
        self
    }

    /// Starts the node, installs the modules and waits until every one is loaded or refused.
    pub async fn start(self) -> TestNode {
        let precompiled = Path::new(env!("CARGO_TARGET_TMPDIR")).join("policy-precompiled");
        let mut extra = format!(
            "[policies]\nreload_debounce = \"50ms\"\nprecompiled_dir = \"{}\"\n{}\n",
            precompiled.display(),
            self.policy_keys
        );
        if let Some(api) = self.api {
            extra.push_str(&format!("\n[origins.api]\nurl = \"{api}\"\n"));
        }
        let node = TestNode::start_with_origin(self.origin, "read_timeout = \"5s\"", &extra).await;
        for (file, crate_name) in &self.modules {
            policies::install(&node.policies_dir(), file, crate_name);
        }
        let files: Vec<&str> = self.modules.iter().map(|(file, _)| *file).collect();
        eventually("every module to be loaded or refused", RELOAD_LIMIT, || {
            let status = node.node().context.policies.status();
            files
                .iter()
                .all(|file| status.iter().any(|module| module.file == *file))
        })
        .await;
        node
    }
}

/// The status of the module in `file`.
pub fn status(node: &TestNode, file: &str) -> ModuleStatus {
    let all = node.node().context.policies.status();
    all.iter()
        .find(|status| status.file == file)
        .unwrap_or_else(|| panic!("no status for {file} in {all:#?}"))
        .clone()
}

/// The request heads an origin received, in order.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<(String, HeaderMap)>>>);

impl Seen {
    /// The headers of every request the origin received for `path_and_query`.
    pub fn headers(&self, path_and_query: &str) -> Vec<HeaderMap> {
        let seen = self.0.lock().expect("seen requests");
        seen.iter()
            .filter(|(path, _)| path == path_and_query)
            .map(|(_, headers)| headers.clone())
            .collect()
    }
}

/// An origin answering with `answer(path)` that records the head of every request it receives.
pub async fn recording_origin(answer: fn(&str) -> Response<Body>) -> (TestOrigin, Seen) {
    let seen = Seen::default();
    let recording = seen.clone();
    let origin = TestOrigin::start(move |request: Request<Incoming>| {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let response = answer(&path);
        recording
            .0
            .lock()
            .expect("seen requests")
            .push((path, request.headers().clone()));
        async move { response }
    })
    .await;
    (origin, seen)
}

/// The values of header `name`, as text.
pub fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect()
}

/// An origin whose responses (`body`, `ETag: "v1"`, `max-age=0`) are stored and revalidated on
/// every request: it answers `If-None-Match: "v1"` with a 304 carrying the ETag and `not_modified`.
pub async fn validating_origin(
    body: &'static str,
    not_modified: &'static [(&'static str, &'static str)],
) -> TestOrigin {
    const ETAG: &str = "\"v1\"";
    TestOrigin::start(move |request| async move {
        if request
            .headers()
            .get("if-none-match")
            .is_some_and(|v| v == ETAG)
        {
            let mut headers = vec![("etag", ETAG)];
            headers.extend_from_slice(not_modified);
            respond(304, &headers, "")
        } else {
            respond(200, &[("etag", ETAG), ("cache-control", "max-age=0")], body)
        }
    })
    .await
}
