//! The admin API under `/_caje/`: bearer-token auth, JSON endpoints over the manifest and this
//! node's cache, Prometheus metrics, and a dashboard page. It is routed before the proxy sees a request.
//!
//! Every route is listed in [`routes`]; see README.md for what each answers.

mod auth;
mod clear;
mod config;
mod dashboard;
mod health;
mod list;
mod policies;
mod populate;
mod prometheus;
mod purge;
mod query;
mod reply;
mod router;
mod target;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use metrics_exporter_prometheus::PrometheusHandle;

pub use auth::{Access, Auth, TOKEN_ENV, TokenError};
pub use config::AdminConfig;
pub use prometheus::install as install_metrics;
pub use reply::Reply;
pub use router::{PREFIX, Route, owns, routes};

use crate::litefs;
use crate::node::NodeContext;
use crate::populate::Populator;
use crate::proxy::Flights;

/// What the admin API reports on and acts on.
pub struct AdminParts {
    /// The node's cache, manifest and policies.
    pub context: Arc<NodeContext>,
    /// The node's name, as the manifest's `node` column has it.
    pub name: String,
    pub flights: Flights,
    /// Present whenever the manifest is.
    pub populate: Option<Populator>,
    /// The manifest's database on LiteFS, `None` when it is not on a LiteFS mount (health
    /// reports its role and lag).
    pub litefs: Option<litefs::Database>,
}

/// The admin API of one node.
pub struct Admin {
    parts: AdminParts,
    auth: Auth,
    metrics: Option<PrometheusHandle>,
    started: Instant,
    public_health: bool,
}

impl Admin {
    /// Reads the token (a missing or empty token file is an error here, at start) and, when
    /// `[admin] metrics` is on, installs the process's Prometheus recorder.
    pub fn new(config: &AdminConfig, parts: AdminParts) -> Result<Admin, TokenError> {
        let auth = Auth::from_config(config)?;
        let metrics = if config.metrics {
            install_metrics()
        } else {
            None
        };
        Ok(Admin {
            parts,
            auth,
            metrics,
            started: Instant::now(),
            public_health: config.public_health,
        })
    }

    /// Logs where the API is served and how it is protected (never the token itself).
    pub fn log_start(&self, served_on: &str) {
        self.auth.log_start(served_on);
    }

    /// Answers one request; paths outside `/_caje` get 404 (after authentication, so that
    /// strangers learn nothing about the routes). One `caje::admin` log line per request, with
    /// the path but never the query string or the headers.
    pub async fn handle(&self, request: Request<Incoming>, client: SocketAddr) -> Reply {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let answer = router::dispatch(self, request, client).await;
        tracing::info!(
            target: "caje::admin",
            client = %client.ip(),
            method = %method,
            path = %path,
            status = answer.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
        );
        answer
    }
}

/// The answer to a `/_caje` path on a listener that does not serve the admin API: the path is
/// reserved, so it never reaches the origin or the cache.
pub fn not_served_here() -> Reply {
    reply::error(
        StatusCode::NOT_FOUND,
        "the admin API is not served on this listener",
        "it is disabled ([admin] enabled = false) or has its own listener ([admin] listen)",
    )
}
