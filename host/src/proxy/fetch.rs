//! The miss path: one origin fetch, the storability verdict, and the fill that stores the body
//! while clients read it. A 304 to a revalidation is merged into the stored entry.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Request, Response, StatusCode, request, response};
use http_body_util::BodyExt;
use http_cache_semantics::{AfterResponse, BeforeRequest, CachePolicy};
use hyper::body::Incoming;

use super::Proxy;
use crate::body::Body;
use super::canonical::CanonicalRequest;
use super::headers;
use super::origin::{Origin, OriginError, UpstreamTime};
use super::route::{self, Route};
use crate::cache::{
    self, Assessment, Entry, EntryHead, FillHandle, FillWriter, Key, NotStorable, Timeline,
};
use crate::manifest::ManifestRecord;
use crate::policy::{CacheVerdict, PolicyRefusal, ResponseView};

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
/// Headers of a 304 that must not replace the stored ones: they describe the body, which is reused.
const NOT_UPDATED_BY_304: [HeaderName; 4] = [
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::TRANSFER_ENCODING,
    header::CONTENT_RANGE,
];

/// A response whose body is being written to the store.
pub struct StreamingFill {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub handle: FillHandle,
    /// Request values of the varied headers, for followers whose request may differ.
    pub vary: Vec<(String, Option<Vec<u8>>)>,
    /// How long the origin took to answer (for the access log).
    pub upstream: Option<UpstreamTime>,
}

/// What a fetch produced, as seen by every request that waited for it.
#[derive(Clone)]
pub enum Outcome {
    Streaming(Arc<StreamingFill>),
    Revalidated(Arc<Entry>),
    /// The response is for the requesting client alone; others must fetch for themselves.
    NotShared,
    Failed(Arc<Failure>),
}

pub enum Failure {
    Origin(OriginError),
    /// The origin answered with a server error (its small body buffered).
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

/// What one fetch hands to the request that made it.
pub enum Fetched {
    Fill(Arc<StreamingFill>, Box<Pump>),
    Revalidated(Arc<Entry>),
    Private(Response<Body>),
    Failed(Arc<Failure>),
}

impl Fetched {
    /// The outcome as followers see it (a private response stays with its request).
    pub fn outcome(&self) -> Outcome {
        match self {
            Fetched::Fill(fill, _) => Outcome::Streaming(fill.clone()),
            Fetched::Revalidated(entry) => Outcome::Revalidated(entry.clone()),
            Fetched::Private(_) => Outcome::NotShared,
            Fetched::Failed(failure) => Outcome::Failed(failure.clone()),
        }
    }
}

/// One cacheable fetch: the request, where it goes, and what is already stored for it.
pub struct Fetch<'a> {
    pub request: &'a CanonicalRequest,
    pub route: &'a Route,
    pub stale: Option<&'a Arc<Entry>>,
}

impl Fetch<'_> {
    pub async fn run(&self, proxy: &Proxy) -> Fetched {
        let mut origin_request = self.origin_request();
        if let Some(stale) = self.stale {
            add_validators(stale, &mut origin_request, &self.request_parts());
        }
        let response = match self.route.origin.send(origin_request).await {
            Ok(response) => response,
            Err(err) => return Fetched::Failed(Arc::new(Failure::Origin(err))),
        };
        let (mut parts, body) = response.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers);
        let now = SystemTime::now();
        if parts.status == StatusCode::NOT_MODIFIED {
            if let Some(stale) = self.stale
                && let Some(fetched) = self.merge_not_modified(proxy, stale, &parts, now)
            {
                return fetched;
            }
            return Fetched::Private(pass_through(parts, body, &self.route.origin));
        }
        if parts.status.is_server_error() {
            return Fetched::Failed(Arc::new(
                buffer_failure(parts, body, &self.route.origin).await,
            ));
        }
        self.store_or_pass(proxy, parts, body, now)
    }

    fn request_parts(&self) -> request::Parts {
        let mut parts = Request::get(self.request.uri())
            .body(())
            .expect("canonical URI is valid")
            .into_parts()
            .0;
        parts.headers = self.request.headers.clone();
        parts
    }

    fn origin_request(&self) -> Request<Body> {
        let mut headers = self.route.origin_headers(self.request);
        for name in CLIENT_CONDITIONALS {
            headers.remove(name);
        }
        let mut request = Request::new(Body::Empty);
        *request.method_mut() = Method::GET;
        *request.uri_mut() = self.route.origin.uri_for(self.request.path_and_query());
        *request.headers_mut() = headers;
        request
    }

    /// The policies' verdict on a response head, starting from the host's defaults.
    fn verdict(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        default: CacheVerdict,
    ) -> Result<CacheVerdict, PolicyRefusal> {
        let chain = &self.route.chain;
        if chain.is_empty() {
            return Ok(default);
        }
        let response = ResponseView { status, headers };
        chain.on_response(&self.request.view(), &response, default)
    }

    /// Answers a 304 to caje's own revalidation from the stored entry (updated unless the
    /// policies decline); `None` when the 304 does not match the entry.
    fn merge_not_modified(
        &self,
        proxy: &Proxy,
        stale: &Arc<Entry>,
        not_modified: &response::Parts,
        now: SystemTime,
    ) -> Option<Fetched> {
        let vary = stale.head.vary_names();
        let persisted = cache::persisted_request(&self.request_parts(), &vary);
        let AfterResponse::NotModified(policy, _) = stale.head.policy.after_response(
            &persisted,
            &cache::detach::response(not_modified),
            now,
        ) else {
            return None;
        };
        let mut headers = stale.headers.clone();
        for name in not_modified.headers.keys() {
            if NOT_UPDATED_BY_304.contains(name) || name == header::SET_COOKIE {
                continue;
            }
            headers.remove(name);
            for value in not_modified.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let windows = cache::default_windows(&policy, &headers, now);
        let status = StatusCode::from_u16(stale.head.status).unwrap_or(StatusCode::OK);
        let default = CacheVerdict::default_for(&windows, true);
        let verdict = match self.verdict(status, &headers, default) {
            Ok(verdict) => verdict,
            Err(refusal) => return Some(Fetched::Private(route::refused(self.request, &refusal))),
        };
        // The client never sent a conditional request: whatever happens to the update, it
        // gets the body the origin just confirmed, never the 304.
        let confirmed = Fetched::Revalidated(stale.clone());
        if !verdict.store {
            // The policies no longer store it: the old entry stays as it was (stale).
            return Some(confirmed);
        }
        let mut head = stale.head.clone();
        head.headers = stored_headers(&headers, verdict.keep_set_cookie);
        head.policy = policy;
        head.timeline = Timeline::new(now, &verdict.windows(windows.must_revalidate));
        head.tags = verdict.tags;
        match proxy.cache.update_head(stale, head) {
            Ok(entry) => {
                // Its expiry (and tags) changed: other nodes must see the new ones.
                record(proxy, &entry);
                Some(Fetched::Revalidated(entry))
            }
            Err(err) => {
                proxy
                    .cache
                    .store_failed("revalidate", &self.request.url, &err);
                Some(confirmed)
            }
        }
    }

    fn store_or_pass(
        &self,
        proxy: &Proxy,
        parts: response::Parts,
        body: Incoming,
        now: SystemTime,
    ) -> Fetched {
        let full_request = self.request_parts();
        let max_size = proxy.cache.config().max_object_size.0;
        let Assessment {
            windows, storable, ..
        } = cache::assess(&full_request, &parts, now, max_size);
        let default = CacheVerdict::default_for(&windows, storable.is_ok());
        let verdict = match self.verdict(parts.status, &parts.headers, default) {
            Ok(verdict) => verdict,
            Err(refusal) => return Fetched::Private(route::refused(self.request, &refusal)),
        };
        // Policies may store what http-cache-semantics would not, never what cannot be stored correctly.
        let impossible = matches!(
            storable,
            Err(NotStorable::PartialContent | NotStorable::VaryStar | NotStorable::TooLarge)
        );
        if !verdict.store || impossible {
            let reason = storable
                .err()
                .map_or("a policy said so", NotStorable::as_str);
            tracing::debug!(url = %self.request.url, reason, "not storing");
            return Fetched::Private(pass_through(parts, body, &self.route.origin));
        }
        let vary = cache::vary_names(&parts.headers).unwrap_or_default();
        let vary_values = cache::vary_values(&vary, &self.request.headers);
        let base = &self.route.key;
        let key = if vary.is_empty() {
            base.clone()
        } else {
            base.variant(&vary_values)
        };
        let writer = match proxy.cache.begin_fill(key) {
            Ok(writer) => writer,
            Err(err) => {
                proxy.cache.store_failed("create", &self.request.url, &err);
                return Fetched::Private(pass_through(parts, body, &self.route.origin));
            }
        };
        let persisted = cache::persisted_request(&full_request, &vary);
        let head = EntryHead {
            url: self.request.url.clone(),
            origin: self.route.origin.name.clone(),
            status: parts.status.as_u16(),
            headers: stored_headers(&parts.headers, verdict.keep_set_cookie),
            policy: CachePolicy::new_options(
                &persisted,
                &cache::detach::response(&parts),
                now,
                cache::cache_options(),
            ),
            timeline: Timeline::new(now, &verdict.windows(windows.must_revalidate)),
            shared_with_authorization: cache::shared_with_authorization(&parts.headers),
            vary: vary_values
                .iter()
                .map(|(name, value)| (name.clone(), value.clone().map(serde_bytes::ByteBuf::from)))
                .collect(),
            tags: verdict.tags,
            body_len: 0,
            body_checksum: 0,
        };
        let mut served = parts.headers;
        if !verdict.keep_set_cookie {
            // Clients that share this response must not receive the first client's cookie.
            served.remove(header::SET_COOKIE);
        }
        let fill = Arc::new(StreamingFill {
            status: parts.status,
            headers: served,
            handle: writer.handle(),
            vary: vary_values,
            upstream: parts.extensions.get::<UpstreamTime>().copied(),
        });
        let pump = Pump {
            body,
            writer,
            head,
            base: base.clone(),
            origin: self.route.origin.clone(),
            max_size,
        };
        Fetched::Fill(fill, Box::new(pump))
    }
}

/// Copies the origin's body into the store; runs to the end even when every client has gone.
pub struct Pump {
    body: Incoming,
    writer: FillWriter,
    head: EntryHead,
    base: Key,
    origin: Arc<Origin>,
    max_size: u64,
}

impl Pump {
    pub async fn run(mut self, proxy: &Proxy) -> Option<Arc<Entry>> {
        let url = self.head.url.clone();
        let mut unstored = false;
        loop {
            let frame =
                match tokio::time::timeout(self.origin.read_timeout, self.body.frame()).await {
                    Err(_) => {
                        let reason = self.origin.body_timeout().to_string();
                        return self.abandon(&url, &reason);
                    }
                    Ok(None) => break,
                    Ok(Some(Err(err))) => return self.abandon(&url, &err.to_string()),
                    Ok(Some(Ok(frame))) => frame,
                };
            if let Ok(data) = frame.into_data() {
                let written = self.writer.write(&data);
                if let Some(err) = self.writer.take_store_error() {
                    // Clients still get the whole body; the entry is not stored.
                    proxy.cache.store_failed("write", &url, &err);
                    unstored = true;
                }
                if let Err(err) = written {
                    return self.abandon(&url, &format!("cache write failed: {err}"));
                }
            }
        }
        let declared = self
            .head
            .headers
            .iter()
            .find(|(name, _)| name == "content-length");
        let declared = declared.and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
        if declared.is_some_and(|len| len != self.writer.written()) {
            return self.abandon(&url, "body length differs from Content-Length");
        }
        let too_large = self.writer.written() > self.max_size;
        if too_large {
            tracing::debug!(url = %url, "body outgrew max_object_size; served but not stored");
        }
        if unstored || too_large {
            self.writer.complete_unstored();
            return None;
        }
        match proxy.cache.commit(self.writer, self.head, &self.base) {
            Ok(entry) => {
                metrics::counter!("caje_cache_fills_total").increment(1);
                record(proxy, &entry);
                Some(entry)
            }
            Err(err) => {
                proxy.cache.store_failed("commit", &url, &err);
                None
            }
        }
    }

    fn abandon(self, url: &str, reason: &str) -> Option<Arc<Entry>> {
        metrics::counter!("caje_fills_abandoned_total").increment(1);
        tracing::warn!(url = %url, origin = %self.origin.name, reason, "fill abandoned; nothing stored");
        None
    }
}

/// Queues the manifest row of a stored entry, off the response path.
fn record(proxy: &Proxy, entry: &Entry) {
    if let Some(manifest) = &proxy.manifest {
        manifest.record(manifest_record(entry));
    }
}

/// The manifest row of a stored entry: what other nodes need to fetch it themselves.
fn manifest_record(entry: &Entry) -> ManifestRecord {
    let timeline = &entry.head.timeline;
    ManifestRecord {
        key: entry.key.to_string(),
        method: Method::GET.to_string(),
        url: entry.head.url.clone(),
        origin: entry.head.origin.clone(),
        status: entry.head.status,
        size: entry.head.body_len,
        stored_at: UNIX_EPOCH + Duration::from_millis(timeline.stored_at),
        expires_at: UNIX_EPOCH + Duration::from_millis(timeline.fresh_until),
        tags: entry.head.tags.clone(),
    }
}

fn stored_headers(
    headers: &HeaderMap,
    keep_set_cookie: bool,
) -> Vec<(String, serde_bytes::ByteBuf)> {
    headers
        .iter()
        .filter(|(name, _)| {
            (keep_set_cookie || *name != header::SET_COOKIE) && *name != header::AGE
        })
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                serde_bytes::ByteBuf::from(value.as_bytes()),
            )
        })
        .collect()
}

fn add_validators(
    stale: &Entry,
    origin_request: &mut Request<Body>,
    client_request: &request::Parts,
) {
    let conditional = match stale
        .head
        .policy
        .before_request(client_request, SystemTime::now())
    {
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
            && let Some(value) = stale.headers.get(validator)
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
                    Ok(Some(Err(err))) => {
                        return Some((Err(crate::body::BoxError::from(err)), None));
                    }
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
