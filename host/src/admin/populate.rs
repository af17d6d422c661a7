//! `POST /_caje/populate`: one synchronous pass of [`crate::populate`] over the manifest (an
//! optional URL prefix and fetch limit), answered with the pass's report.
//!
//! The pass shares the background job's limits: concurrency, origin pace and pauses.

use http::StatusCode;
use hyper::body::Incoming;
use serde::Deserialize;

use super::Admin;
use super::reply::{self, Reply};
use super::target;
use crate::populate::Pass;

const EXAMPLE: &str = r#"{} or {"prefix": "http://example.com/blog/", "limit": 100}"#;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PopulateRequest {
    prefix: Option<String>,
    /// Most origin fetches in this pass.
    limit: Option<u64>,
}

pub(super) async fn populate(admin: &Admin, body: Incoming) -> Reply {
    let request: PopulateRequest = match reply::read_json(body, EXAMPLE).await {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let prefix = match request
        .prefix
        .as_deref()
        .map(target::canonical_prefix)
        .transpose()
    {
        Ok(prefix) => prefix,
        Err(err) => return reply::error(StatusCode::BAD_REQUEST, &err, &format!("send {EXAMPLE}")),
    };
    let Some(populator) = &admin.parts.populate else {
        return reply::error(
            StatusCode::CONFLICT,
            "the manifest is disabled on this node, so there is nothing to populate from",
            "set [manifest] enabled = true",
        );
    };
    let pass = Pass {
        prefix,
        max_fetches: request.limit,
    };
    let report = populator.run_pass(&pass).await;
    tracing::info!(
        fetched = report.fetched,
        skipped = report.skipped,
        failed = report.failed,
        "admin populate pass finished"
    );
    let status = if report.error.is_some() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    reply::json(status, &report)
}
