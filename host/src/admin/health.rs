//! `GET /_caje/health`: whether this node works as it should (manifest writer, LiteFS role and
//! lag, populate job and purge replay), and the counters an operator looks at first.
//!
//! Always 200 while the node answers; `ok` is false and `problems` says why when something is
//! degraded (a failing manifest does not stop the node from serving).

use http::StatusCode;
use serde::Serialize;

use super::Admin;
use super::reply::{self, Reply};
use crate::litefs::{self, Lag, Role};
use crate::manifest::WriterStats;
use crate::populate::PopulateStatus;
use crate::request_counts::{self, RequestCounts};

#[derive(Serialize)]
struct Health<'a> {
    ok: bool,
    problems: Vec<String>,
    node: &'a str,
    version: &'static str,
    uptime_seconds: u64,
    manifest: ManifestHealth,
    /// `null` unless the manifest is on a LiteFS mount.
    litefs: Option<LitefsHealth>,
    /// `null` without a manifest.
    populate: Option<PopulateStatus>,
    cache: CacheHealth,
}

#[derive(Serialize)]
struct LitefsHealth {
    /// `primary`, `replica of <host>` or `replica without a primary`; `null` when unknown.
    role: Option<String>,
    /// Milliseconds behind the primary; `null` before the first sync or when unknown.
    lag_ms: Option<u64>,
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

pub(super) async fn health(admin: &Admin) -> Reply {
    let manifest = admin.parts.context.manifest.as_ref();
    let writer = manifest.map(|m| m.stats());
    let mut problems = Vec::new();
    if let Some(error) = writer.as_ref().and_then(|w| w.last_error.as_ref()) {
        problems.push(format!(
            "manifest writes are failing (pages are still served; records are kept and \
             retried): {error}"
        ));
    }
    let litefs = match admin.parts.litefs.as_ref() {
        Some(database) => Some(litefs_health(database, &mut problems).await),
        None => None,
    };
    let populate = admin
        .parts
        .populate
        .as_ref()
        .map(|populator| populator.status());
    if let Some(error) = populate.as_ref().and_then(|p| p.purges.error.as_ref()) {
        problems.push(format!(
            "{error} (this node may serve pages purged on other nodes until it can)"
        ));
    }
    let health = Health {
        ok: problems.is_empty(),
        problems,
        node: &admin.parts.name,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: admin.started.elapsed().as_secs(),
        manifest: ManifestHealth {
            enabled: manifest.is_some(),
            path: manifest.map(|m| m.path().display().to_string()),
            writer,
        },
        litefs,
        populate,
        cache: CacheHealth {
            fetches_in_flight: admin.parts.flights.in_flight(),
            requests: admin.metrics.as_ref().map(|_| request_counts::snapshot()),
        },
    };
    reply::json(StatusCode::OK, &health)
}

/// What `[admin] public_health` gives a client without the token: that the node answers, and
/// nothing about it.
pub(super) fn liveness() -> Reply {
    reply::json(StatusCode::OK, &serde_json::json!({ "serving": true }))
}

/// The node's LiteFS role and lag now; what makes manifest writes fail or reads old is a problem.
async fn litefs_health(database: &litefs::Database, problems: &mut Vec<String>) -> LitefsHealth {
    let status = match database.status().await {
        Ok(status) => status,
        Err(err) => {
            problems.push(format!("the LiteFS status cannot be read: {err}"));
            return LitefsHealth {
                role: None,
                lag_ms: None,
            };
        }
    };
    if status.role == Role::Disconnected {
        problems.push(
            "LiteFS: this replica knows no primary; manifest writes fail until one is elected"
                .into(),
        );
    }
    let lag_ms = match status.lag {
        Lag::Behind(lag) => Some(u64::try_from(lag.as_millis()).unwrap_or(u64::MAX)),
        Lag::NotReplicated => {
            problems.push(
                "LiteFS: this replica has not finished its first sync; its manifest may be old"
                    .into(),
            );
            None
        }
    };
    LitefsHealth {
        role: Some(status.role.to_string()),
        lag_ms,
    }
}
