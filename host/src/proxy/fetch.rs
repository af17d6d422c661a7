//! Phase 5, fetch: the request for the origin, built once (conditional on a stale copy's
//! validators), and the answer sorted into a 304, a failure to share, or a response to judge.
//!
//! Also the relay of an origin body to one client.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Request, Response, StatusCode, request, response};
use http_body_util::BodyExt;
use http_cache_semantics::BeforeRequest;
use hyper::body::Incoming;

use super::context::RequestCtx;
use super::headers;
use super::origin::{Origin, OriginError};
use crate::body::{Body, BoxError};
use crate::cache::Entry;

/// Request headers that would turn the cache's fetch into something other than a full 200.
const CLIENT_CONDITIONALS: [HeaderName; 6] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];
/// Largest error body buffered to share among coalesced requests.
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// The origin failed: no answer, or a server error (its small body buffered to share).
pub enum Failure {
    Origin(OriginError),
    Status {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
}

impl Failure {
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::Origin(err) => err.status(),
            Failure::Status { status, .. } => *status,
        }
    }
}

/// What the origin answered a cache fetch, hop-by-hop headers removed.
pub enum OriginAnswer {
    /// A 304 to the validators caje sent.
    NotModified(response::Parts, Incoming),
    Failed(Arc<Failure>),
    /// Anything else: for the store decision.
    Response(response::Parts, Incoming),
}

/// A fetch: the canonical request as the cache judges the answer to it (http-cache-semantics'
/// request: absolute URI, the headers after the policies' edits), and the origin's answer.
pub struct Fetched {
    pub judged: request::Parts,
    pub answer: OriginAnswer,
}

/// Sends the context's request to its origin as a GET, conditional on `stale`'s validators.
pub async fn fetch(ctx: &RequestCtx, stale: Option<&Entry>) -> Fetched {
    let judged = judged_request(ctx);
    let mut outgoing = origin_request(ctx);
    if let Some(stale) = stale {
        add_validators(stale, &mut outgoing, &judged);
    }
    let origin = &ctx.route.origin;
    let answer = match origin.send(outgoing).await {
        Err(err) => OriginAnswer::Failed(Arc::new(Failure::Origin(err))),
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            headers::remove_hop_by_hop(&mut parts.headers);
            if parts.status == StatusCode::NOT_MODIFIED {
                OriginAnswer::NotModified(parts, body)
            } else if parts.status.is_server_error() {
                OriginAnswer::Failed(Arc::new(buffer_failure(parts, body, origin).await))
            } else {
                OriginAnswer::Response(parts, body)
            }
        }
    };
    Fetched { judged, answer }
}

fn judged_request(ctx: &RequestCtx) -> request::Parts {
    let mut parts = Request::get(ctx.request.uri())
        .body(())
        .expect("canonical URI is valid")
        .into_parts()
        .0;
    parts.headers = ctx.request.headers.clone();
    parts
}

/// The request the origin gets: a GET of the path, the route's headers without the client's
/// conditionals (the cache wants the whole response).
fn origin_request(ctx: &RequestCtx) -> Request<Body> {
    let mut headers = ctx.route.origin_headers(&ctx.request);
    for name in CLIENT_CONDITIONALS {
        headers.remove(name);
    }
    let mut request = Request::new(Body::Empty);
    *request.method_mut() = Method::GET;
    *request.uri_mut() = ctx.route.origin.uri_for(ctx.request.path_and_query());
    *request.headers_mut() = headers;
    request
}

fn add_validators(stale: &Entry, origin_request: &mut Request<Body>, judged: &request::Parts) {
    let conditional = match stale.head.policy.before_request(judged, SystemTime::now()) {
        BeforeRequest::Stale { request, .. } => request.headers,
        BeforeRequest::Fresh(_) => HeaderMap::new(),
    };
    let headers = origin_request.headers_mut();
    for name in [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE] {
        if let Some(value) = conditional.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    for (condition, validator) in [
        (header::IF_NONE_MATCH, header::ETAG),
        (header::IF_MODIFIED_SINCE, header::LAST_MODIFIED),
    ] {
        if !headers.contains_key(&condition)
            && let Some(value) = stale.head.headers.get(validator)
        {
            headers.insert(condition, value.clone());
        }
    }
}

/// A response for one client, streamed from the origin with the origin's read timeout between chunks.
pub fn pass_through(
    parts: response::Parts,
    body: Incoming,
    origin: &Arc<Origin>,
) -> Response<Body> {
    let origin = origin.clone();
    let stream = futures_util::stream::unfold(Some(body), move |body| {
        let origin = origin.clone();
        async move {
            let mut body = body?;
            loop {
                match tokio::time::timeout(origin.read_timeout, body.frame()).await {
                    Err(_) => return Some((Err(origin.body_timeout().into()), None)),
                    Ok(None) => return None,
                    Ok(Some(Err(err))) => return Some((Err(BoxError::from(err)), None)),
                    Ok(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data() {
                            return Some((Ok(data), Some(body)));
                        }
                    }
                }
            }
        }
    });
    Response::from_parts(parts, Body::stream(stream))
}

async fn buffer_failure(parts: response::Parts, mut body: Incoming, origin: &Origin) -> Failure {
    let mut buffered = BytesMut::new();
    let complete = loop {
        match tokio::time::timeout(origin.read_timeout, body.frame()).await {
            Ok(None) => break true,
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    buffered.extend_from_slice(&data);
                }
                if buffered.len() > ERROR_BODY_LIMIT {
                    break false;
                }
            }
            Ok(Some(Err(_))) | Err(_) => break false,
        }
    };
    let mut headers = parts.headers;
    headers.remove(header::CONTENT_LENGTH);
    // A failure is shared with every request coalesced on the fetch: none of them may receive
    // the cookie the origin set for the client that led it.
    headers.remove(header::SET_COOKIE);
    let body = if complete {
        buffered.freeze()
    } else {
        // Never relay part of a body as if it were all of it.
        headers.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Bytes::from(format!(
            "origin {} answered {} with a body caje did not relay\n",
            origin.name, parts.status
        ))
    };
    Failure::Status {
        status: parts.status,
        headers,
        body,
    }
}
