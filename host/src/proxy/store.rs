//! Phase 7, store + record: a kept response written to the store while clients read it, a 304
//! merged into a stored entry, and the manifest record of what was stored.
//!
//! The pump copies the body from the origin to the end even when every client has gone.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderName};
use http::{Method, StatusCode, request, response};
use http_body_util::BodyExt;
use http_cache_semantics::{AfterResponse, CachePolicy};
use hyper::body::Incoming;

use super::context::RequestCtx;
use super::decide_store::{self, StoreVerdict};
use super::origin::{Origin, UpstreamTime};
use crate::cache::{self, Cache, Entry, EntryHead, FillHandle, FillWriter, Timeline, Windows};
use crate::key::Key;
use crate::manifest::{Manifest, ManifestRecord};

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

impl StreamingFill {
    /// Whether a follower's request may share this response: it sends the same values for the
    /// headers the response varies on.
    pub fn fits(&self, request_headers: &HeaderMap) -> bool {
        let names: Vec<String> = self.vary.iter().map(|(name, _)| name.clone()).collect();
        cache::vary_values(&names, request_headers) == self.vary
    }
}

/// A new entry's file, open for its body: under the key of the response's Vary variant.
pub struct Opened {
    writer: FillWriter,
    vary: Vec<String>,
    vary_values: Vec<(String, Option<Vec<u8>>)>,
}

/// Opens the file a response the store decision kept is written to; `None` when the store
/// cannot take it (counted and logged: the response is then relayed to this client alone).
pub fn open(cache: &Cache, ctx: &RequestCtx, response: &response::Parts) -> Option<Opened> {
    let vary = cache::vary_names(&response.headers).unwrap_or_default();
    let vary_values = cache::vary_values(&vary, &ctx.request.headers);
    let key = if vary.is_empty() {
        ctx.key.clone()
    } else {
        ctx.key.variant(&vary_values)
    };
    match cache.begin_fill(key) {
        Ok(writer) => Some(Opened {
            writer,
            vary,
            vary_values,
        }),
        Err(err) => {
            cache.store_failed("create", &ctx.request.url, &err);
            None
        }
    }
}

/// Starts storing a response into its opened file: the fill clients read and the pump that
/// feeds it.
pub fn begin(
    cache: &Cache,
    opened: Opened,
    ctx: &RequestCtx,
    judged: &request::Parts,
    (parts, body): (response::Parts, Incoming),
    stored: StoreVerdict,
    now: SystemTime,
) -> (Arc<StreamingFill>, Pump) {
    let Opened {
        writer,
        vary,
        vary_values,
    } = opened;
    let StoreVerdict { verdict, windows } = stored;
    let persisted = cache::persisted_request(judged, &vary);
    let head = EntryHead {
        url: ctx.request.url.clone(),
        origin: ctx.route.origin.name.clone(),
        status: parts.status.as_u16(),
        headers: stored_headers(&parts.headers, verdict.keep_set_cookie),
        policy: CachePolicy::new_options(
            &persisted,
            &cache::detach::response(&parts),
            now,
            cache::cache_options(),
        ),
        timeline: Timeline::new(now, &windows),
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
        base: ctx.key.clone(),
        origin: ctx.route.origin.clone(),
        max_size: cache.config().max_object_size.0,
    };
    (fill, pump)
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
    /// Copies the body, commits the entry and queues its manifest record.
    pub async fn run(mut self, cache: &Cache, manifest: Option<&Manifest>) -> Option<Arc<Entry>> {
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
                    cache.store_failed("write", &url, &err);
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
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|len| len != self.writer.written()) {
            return self.abandon(&url, "body length differs from Content-Length");
        }
        let fits = decide_store::body_fits(self.writer.written(), self.max_size);
        if fits.is_err() {
            tracing::debug!(url = %url, "body outgrew max_object_size; served but not stored");
        }
        if unstored || fits.is_err() {
            self.writer.complete_unstored();
            return None;
        }
        match cache.commit(self.writer, self.head, &self.base) {
            Ok(entry) => {
                metrics::counter!("caje_cache_fills_total").increment(1);
                record(manifest, &entry);
                Some(entry)
            }
            Err(err) => {
                cache.store_failed("commit", &url, &err);
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

/// A stored entry as a 304 from its origin leaves it: the merged headers and policy, and the
/// windows they imply before any policy speaks.
pub struct Revalidation {
    pub headers: HeaderMap,
    policy: CachePolicy,
    pub windows: Windows,
}

/// Merges a 304 to caje's revalidation into the stored entry; `None` when the 304 does not
/// match it (then the 304 is relayed as it is).
pub fn revalidate(
    stale: &Entry,
    judged: &request::Parts,
    not_modified: &response::Parts,
    now: SystemTime,
) -> Option<Revalidation> {
    let vary = stale.head.vary_names();
    let persisted = cache::persisted_request(judged, &vary);
    let AfterResponse::NotModified(policy, _) =
        stale
            .head
            .policy
            .after_response(&persisted, &cache::detach::response(not_modified), now)
    else {
        return None;
    };
    let mut headers = stale.head.headers.clone();
    for name in not_modified.headers.keys() {
        if NOT_UPDATED_BY_304.contains(name) || name == header::SET_COOKIE {
            continue;
        }
        headers.remove(name);
        for value in not_modified.headers.get_all(name) {
            headers.append(name.clone(), cache::detach::value(value));
        }
    }
    let windows = cache::default_windows(&policy, &headers, now);
    Some(Revalidation {
        headers,
        policy,
        windows,
    })
}

/// Rewrites a revalidated entry under the new verdict and records it; when the store fails,
/// the entry stays as it was (the client still gets the confirmed body).
pub fn update(
    cache: &Cache,
    manifest: Option<&Manifest>,
    stale: &Arc<Entry>,
    revalidation: Revalidation,
    stored: StoreVerdict,
    now: SystemTime,
) -> Arc<Entry> {
    let mut head = stale.head.clone();
    head.headers = stored_headers(&revalidation.headers, stored.verdict.keep_set_cookie);
    head.policy = revalidation.policy;
    head.timeline = Timeline::new(now, &stored.windows);
    head.tags = stored.verdict.tags;
    match cache.update_head(stale, head) {
        Ok(entry) => {
            // Its expiry (and tags) changed: other nodes must see the new ones.
            record(manifest, &entry);
            entry
        }
        Err(err) => {
            cache.store_failed("revalidate", &stale.head.url, &err);
            stale.clone()
        }
    }
}

/// Queues the manifest row of a stored entry, off the response path.
fn record(manifest: Option<&Manifest>, entry: &Entry) {
    if let Some(manifest) = manifest {
        manifest.record(manifest_record(entry));
    }
}

/// The manifest row of a stored entry: what other nodes need to fetch it themselves.
fn manifest_record(entry: &Entry) -> ManifestRecord {
    let timeline = &entry.head.timeline;
    ManifestRecord {
        key: entry.key.clone(),
        method: Method::GET,
        url: entry.head.url.clone(),
        origin: entry.head.origin.clone(),
        status: entry.head.status,
        size: entry.head.body_len,
        stored_at: UNIX_EPOCH + Duration::from_millis(timeline.stored_at),
        expires_at: UNIX_EPOCH + Duration::from_millis(timeline.fresh_until),
        tags: entry.head.tags.clone(),
    }
}

/// The headers an entry keeps, each value in an allocation of its own (never a slice of the
/// connection's buffer): no `Age` (computed when served), no `Set-Cookie` unless the verdict
/// keeps it.
fn stored_headers(headers: &HeaderMap, keep_set_cookie: bool) -> HeaderMap {
    let mut stored = HeaderMap::with_capacity(headers.len() + 3);
    for (name, value) in headers {
        if (keep_set_cookie || name != header::SET_COOKIE) && name != header::AGE {
            stored.append(name.clone(), cache::detach::value(value));
        }
    }
    stored
}
