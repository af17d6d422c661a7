//! Requests the cache does not look up (methods other than GET and HEAD, a policy's pass),
//! relayed to the origin with both bodies streamed.
//!
//! A successful unsafe request invalidates what it changed on this node (RFC 9111 §4.4).

use http::Request;
use http::header::{self, HeaderMap};
use hyper::body::Incoming;

use super::canonicalize::CanonicalRequest;
use super::context::RequestCtx;
use super::fetch;
use super::headers;
use super::outcome::{CacheOutcome, Forward};
use super::respond::{self, Answer};
use crate::body::Body;
use crate::cache::Cache;

/// Relays the request and its body to the route's origin, and the answer back.
pub async fn pass(cache: &Cache, ctx: &RequestCtx, body: Incoming, forward: Forward) -> Answer {
    let request = &ctx.request;
    let origin = &ctx.route.origin;
    let mut outgoing = Request::new(Body::Incoming(body));
    *outgoing.method_mut() = request.method.clone();
    *outgoing.uri_mut() = origin.uri_for(request.path_and_query());
    *outgoing.headers_mut() = ctx.route.origin_headers(request);
    let outcome = CacheOutcome::Passed { forward };
    match origin.send(outgoing).await {
        Err(err) => {
            tracing::warn!(url = %request.url, error = %err, "origin failed");
            Answer::new(respond::error(err.status(), &err.to_string()), outcome)
        }
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            headers::remove_hop_by_hop(&mut parts.headers);
            if !request.method.is_safe()
                && (parts.status.is_success() || parts.status.is_redirection())
            {
                invalidate(cache, request, &parts.headers);
            }
            Answer::new(fetch::pass_through(parts, body, origin), outcome)
        }
    }
}

/// After a successful unsafe request: drop the target URL and same-host Location/Content-Location.
fn invalidate(cache: &Cache, request: &CanonicalRequest, response_headers: &HeaderMap) {
    let mut urls = vec![request.url.clone()];
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        if let Some(url) = response_headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| request.resolve_same_host(v))
        {
            urls.push(url);
        }
    }
    for url in urls {
        match cache.remove_url(&url) {
            Ok(0) => {}
            Ok(_) => tracing::debug!(url = %url, "invalidated after {}", request.method),
            Err(err) => tracing::warn!(url = %url, error = %err, "could not invalidate"),
        }
    }
}
