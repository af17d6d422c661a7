//! `GET /_caje/health`: whether this node works as it should, and the counters an operator
//! looks at first. Always 200 while the node answers; `ok` is false and `problems` says why
//! when something is degraded (a failing manifest does not stop the node from serving).

use http::StatusCode;
use serde::Serialize;

use super::Admin;
use super::prometheus::RequestCounts;
use super::reply::{self, Reply};
use crate::manifest::WriterStats;

#[derive(Serialize)]
struct Health<'a> {
    ok: bool,
    problems: Vec<String>,
    node: &'a str,
    version: &'static str,
    uptime_seconds: u64,
    manifest: ManifestHealth,
    cache: CacheHealth,
}

#[derive(Serialize)]
struct ManifestHealth {
    enabled: bool,
    path: Option<String>,
    writer: Option<WriterStats>,
}

#[derive(Serialize)]
struct CacheHealth {
    /// Origin fetches in flight right now.
    fetches_in_flight: usize,
    /// Since the process started (shared by every node of the process); `null` when metrics
    /// are off.
    requests: Option<RequestCounts>,
}

pub(super) fn health(admin: &Admin) -> Reply {
    let manifest = admin.proxy.manifest();
    let writer = manifest.map(|m| m.stats());
    let mut problems = Vec::new();
    if let Some(error) = writer.as_ref().and_then(|w| w.last_error.as_ref()) {
        problems.push(format!(
            "manifest writes are failing (pages are still served; records are kept and \
             retried): {error}"
        ));
    }
    let health = Health {
        ok: problems.is_empty(),
        problems,
        node: &admin.node,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: admin.started.elapsed().as_secs(),
        manifest: ManifestHealth {
            enabled: manifest.is_some(),
            path: manifest.map(|m| m.path().display().to_string()),
            writer,
        },
        cache: CacheHealth {
            fetches_in_flight: admin.proxy.fetches_in_flight(),
            requests: admin
                .metrics
                .as_ref()
                .map(|handle| RequestCounts::from_scrape(&handle.render())),
        },
    };
    reply::json(StatusCode::OK, &health)
}
