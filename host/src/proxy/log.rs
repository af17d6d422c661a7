//! Phase 9, log: one `caje::access` line per request, from its context and its cache outcome
//! (never read back from the response's headers).

use std::time::Instant;

use super::context::RequestCtx;
use super::origin::UpstreamTime;
use super::respond::Answer;

pub fn access(ctx: &RequestCtx, answer: &Answer, started: Instant) {
    let cache = answer
        .outcome
        .map_or("-", |outcome| outcome.x_cache().as_str());
    let response = &answer.response;
    // Milliseconds the origin took to answer; absent when the origin was not asked (hits).
    let upstream_ms = response
        .extensions()
        .get::<UpstreamTime>()
        .map(|upstream| upstream.0.as_secs_f64() * 1000.0);
    let request = &ctx.request;
    tracing::info!(
        target: "caje::access",
        client = %request.client.ip(),
        method = %request.method,
        url = %request.url,
        status = response.status().as_u16(),
        cache,
        origin = ctx.route.origin.name.as_str(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        upstream_ms,
    );
}
