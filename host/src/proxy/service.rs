//! The request's life, in order: canonicalize → route → lookup → (coalesced) fetch → respond.
//! Unsafe methods pass through and invalidate what they changed (RFC 9111 §4.4).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{self, HeaderMap};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::oneshot;

use super::Proxy;
use crate::body::Body;
use super::canonical::CanonicalRequest;
use super::coalesce::{self, FlightGuard, Join};
use super::fetch::{Failure, Fetch, Fetched, Outcome, StreamingFill, pass_through};
use super::headers;
use super::origin::UpstreamTime;
use super::respond::{self, CacheStatus, XCache};
use super::route::{Action, Route, Routed};
use crate::cache::{self, Entry, Freshness};

/// What the leader of a flight receives from its fetch task.
enum Led {
    Shared(Outcome),
    Private(Response<Body>),
}

impl Proxy {
    pub async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<Body> {
        let started = Instant::now();
        let (mut parts, body) = request.into_parts();
        let mut request = match CanonicalRequest::new(&mut parts, client, &self.scheme) {
            Ok(request) => request,
            Err(err) => return respond::error_closing(err.status(), &err.to_string()),
        };
        let (route, action) = match self.route(&mut request) {
            Routed::Go(route, action) => (route, action),
            Routed::Answer(answer) => return answer,
        };
        let response = match action {
            Action::Lookup if request.is_cacheable_method() => self.lookup(&request, &route).await,
            Action::Lookup => self.pass(&request, body, &route, "method").await,
            Action::Pass => self.pass(&request, body, &route, "bypass").await,
        };
        if self.access_log {
            log_access(&request, &route.origin.name, &response, started);
        }
        response
    }

    pub(super) async fn lookup(
        self: &Arc<Self>,
        request: &CanonicalRequest,
        route: &Route,
    ) -> Response<Body> {
        let now = SystemTime::now();
        let authorized = request.headers.contains_key(header::AUTHORIZATION);
        let stored = self.cache.lookup(&route.key, &request.headers).await;
        let stored = stored.filter(|entry| !authorized || entry.head.shared_with_authorization);
        if let Some(entry) = &stored
            && let Some(response) = self.answer_stored(entry, request, route, now)
        {
            return response;
        }
        if cache::only_if_cached(&request.headers) {
            return respond::error(
                StatusCode::GATEWAY_TIMEOUT,
                "not in the cache (the request said only-if-cached)",
            );
        }
        if authorized {
            metrics::counter!("caje_requests_total", "cache" => "miss").increment(1);
            // Requests with credentials never share a fetch: their responses may be theirs alone.
            return self.fetch_alone(request, route, stored.as_ref()).await;
        }
        match self.coalescer.join(&route.key) {
            Join::Leader(guard) => {
                // A fill may have committed between the lookup above and this join: it is in
                // the memory tier by now, and fetching again would cost the origin a request.
                if let Some(entry) = self.cache.lookup_in_memory(&route.key, &request.headers)
                    && let Some(response) = self.answer_stored(&entry, request, route, now)
                {
                    return response;
                }
                metrics::counter!("caje_requests_total", "cache" => "miss").increment(1);
                let led = self.spawn_flight(guard, request, route, stored.clone());
                match led.await {
                    Ok(Led::Private(response)) => {
                        forwarded(response, forward_reason(stored.as_ref()), XCache::Miss)
                    }
                    Ok(Led::Shared(outcome)) => self.answer(outcome, request, stored.as_ref()),
                    Err(_) => respond::error(
                        StatusCode::BAD_GATEWAY,
                        "the origin fetch failed unexpectedly",
                    ),
                }
            }
            Join::Follower(receiver) => {
                metrics::counter!("caje_requests_total", "cache" => "miss").increment(1);
                let wait = self.cache.config().coalesce_wait;
                match coalesce::follow(receiver, wait).await {
                    Some(Outcome::Streaming(fill)) if !vary_compatible(&fill, request) => {
                        self.fetch_alone(request, route, stored.as_ref()).await
                    }
                    Some(Outcome::NotShared) | None => {
                        self.fetch_alone(request, route, stored.as_ref()).await
                    }
                    Some(outcome) => self.answer(outcome, request, stored.as_ref()),
                }
            }
        }
    }

    /// Answers from a stored entry when it is fresh (or within stale-while-revalidate, refreshing
    /// it in the background); `None` when the origin must be asked.
    fn answer_stored(
        self: &Arc<Self>,
        entry: &Arc<Entry>,
        request: &CanonicalRequest,
        route: &Route,
        now: SystemTime,
    ) -> Option<Response<Body>> {
        let age = entry.head.policy.age(now);
        let honor_max_stale = self.cache.config().honor_client_max_stale;
        let ttl = entry.head.timeline.ttl_left(now);
        let x_cache = match cache::evaluate(
            &entry.head.timeline,
            age,
            &request.headers,
            now,
            honor_max_stale,
        ) {
            Freshness::Fresh => {
                metrics::counter!("caje_requests_total", "cache" => "hit").increment(1);
                XCache::Hit
            }
            Freshness::StaleWhileRevalidate => {
                metrics::counter!("caje_requests_total", "cache" => "stale").increment(1);
                // The refresh is a flight others join and its response is stored for everyone:
                // like any shared fetch, it is never made with a client's credentials (the next
                // request without them refreshes the entry).
                if !request.headers.contains_key(header::AUTHORIZATION) {
                    self.refresh_in_background(request, route, entry.clone());
                }
                XCache::Stale
            }
            Freshness::Stale => return None,
        };
        Some(respond::from_entry(
            &self.cache,
            entry,
            request,
            &CacheStatus::hit(ttl),
            x_cache,
            now,
        ))
    }

    /// Runs a fetch in its own task so the fill finishes even if every client goes away.
    fn spawn_flight(
        self: &Arc<Self>,
        guard: FlightGuard,
        request: &CanonicalRequest,
        route: &Route,
        stale: Option<Arc<Entry>>,
    ) -> oneshot::Receiver<Led> {
        let (sender, receiver) = oneshot::channel();
        let proxy = self.clone();
        let request = request.clone();
        let route = route.clone();
        tokio::spawn(async move {
            let fetch = Fetch {
                request: &request,
                route: &route,
                stale: stale.as_ref(),
            };
            let fetched = fetch.run(&proxy).await;
            guard.publish(fetched.outcome());
            match fetched {
                Fetched::Private(response) => {
                    let _ = sender.send(Led::Private(response));
                }
                Fetched::Fill(fill, pump) => {
                    let _ = sender.send(Led::Shared(Outcome::Streaming(fill)));
                    pump.run(&proxy).await;
                }
                other => {
                    let _ = sender.send(Led::Shared(other.outcome()));
                }
            }
            // The flight ends only now, after the entry is committed: until then latecomers join it.
            drop(guard);
        });
        receiver
    }

    fn refresh_in_background(
        self: &Arc<Self>,
        request: &CanonicalRequest,
        route: &Route,
        stale: Arc<Entry>,
    ) {
        if let Join::Leader(guard) = self.coalescer.join(&route.key) {
            drop(self.spawn_flight(guard, request, route, Some(stale)));
        }
    }

    /// A fetch that shares nothing with other requests.
    async fn fetch_alone(
        self: &Arc<Self>,
        request: &CanonicalRequest,
        route: &Route,
        stale: Option<&Arc<Entry>>,
    ) -> Response<Body> {
        let fetch = Fetch {
            request,
            route,
            stale,
        };
        match fetch.run(self).await {
            Fetched::Private(response) => forwarded(response, forward_reason(stale), XCache::Miss),
            Fetched::Fill(fill, pump) => {
                let proxy = self.clone();
                tokio::spawn(async move { pump.run(&proxy).await });
                self.answer(Outcome::Streaming(fill), request, stale)
            }
            other => self.answer(other.outcome(), request, stale),
        }
    }

    fn answer(
        &self,
        outcome: Outcome,
        request: &CanonicalRequest,
        stale: Option<&Arc<Entry>>,
    ) -> Response<Body> {
        let now = SystemTime::now();
        let reason = forward_reason(stale);
        match outcome {
            Outcome::Streaming(fill) => {
                let status = CacheStatus {
                    stored: true,
                    forward_status: Some(fill.status.as_u16()),
                    ..CacheStatus::forward(reason)
                };
                respond::from_fill(&fill, request, &status)
            }
            Outcome::Revalidated(entry) => {
                let status = CacheStatus {
                    forward_status: Some(304),
                    ttl: Some(entry.head.timeline.ttl_left(now)),
                    ..CacheStatus::forward("stale")
                };
                respond::from_entry(
                    &self.cache,
                    &entry,
                    request,
                    &status,
                    XCache::Revalidated,
                    now,
                )
            }
            Outcome::Failed(failure) => self.answer_failure(&failure, request, stale, reason, now),
            Outcome::NotShared => respond::error(
                StatusCode::BAD_GATEWAY,
                "the origin response could not be shared",
            ),
        }
    }

    fn answer_failure(
        &self,
        failure: &Failure,
        request: &CanonicalRequest,
        stale: Option<&Arc<Entry>>,
        reason: &'static str,
        now: SystemTime,
    ) -> Response<Body> {
        let forward_status = Some(failure.status().as_u16());
        if let Some(entry) =
            stale.filter(|entry| cache::within_stale_if_error(&entry.head.timeline, now))
        {
            metrics::counter!("caje_stale_if_error_total").increment(1);
            let status = CacheStatus {
                forward_status,
                ttl: Some(entry.head.timeline.ttl_left(now)),
                ..CacheStatus::forward("stale")
            };
            return respond::from_entry(&self.cache, entry, request, &status, XCache::Stale, now);
        }
        if let Failure::Origin(err) = failure {
            tracing::warn!(url = %request.url, error = %err, "origin failed");
        }
        respond::from_failure(
            failure,
            &CacheStatus {
                forward_status,
                ..CacheStatus::forward(reason)
            },
        )
    }

    /// Forwards a request that the cache does not answer, streaming both bodies.
    async fn pass(
        self: &Arc<Self>,
        request: &CanonicalRequest,
        body: Incoming,
        route: &Route,
        reason: &'static str,
    ) -> Response<Body> {
        let origin = &route.origin;
        let mut outgoing = Request::new(Body::Incoming(body));
        *outgoing.method_mut() = request.method.clone();
        *outgoing.uri_mut() = origin.uri_for(request.path_and_query());
        *outgoing.headers_mut() = route.origin_headers(request);
        metrics::counter!("caje_requests_total", "cache" => "bypass").increment(1);
        match origin.send(outgoing).await {
            Err(err) => {
                tracing::warn!(url = %request.url, error = %err, "origin failed");
                let mut response = respond::error(err.status(), &err.to_string());
                respond::mark(
                    response.headers_mut(),
                    &CacheStatus::forward(reason),
                    XCache::Bypass,
                );
                response
            }
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                headers::remove_hop_by_hop(&mut parts.headers);
                if !request.method.is_safe()
                    && (parts.status.is_success() || parts.status.is_redirection())
                {
                    self.invalidate(request, &parts.headers);
                }
                forwarded(pass_through(parts, body, origin), reason, XCache::Bypass)
            }
        }
    }

    /// After a successful unsafe request: drop the target URL and same-host Location/Content-Location.
    fn invalidate(&self, request: &CanonicalRequest, response_headers: &HeaderMap) {
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
            match self.cache.remove_url(&url) {
                Ok(0) => {}
                Ok(_) => tracing::debug!(url = %url, "invalidated after {}", request.method),
                Err(err) => tracing::warn!(url = %url, error = %err, "could not invalidate"),
            }
        }
    }
}

fn forward_reason(stale: Option<&Arc<Entry>>) -> &'static str {
    if stale.is_some() { "stale" } else { "uri-miss" }
}

fn forwarded(
    mut response: Response<Body>,
    reason: &'static str,
    x_cache: XCache,
) -> Response<Body> {
    respond::mark(
        response.headers_mut(),
        &CacheStatus::forward(reason),
        x_cache,
    );
    response
}

/// A follower may share a leader's response only if it sends the same values for the varied headers.
fn vary_compatible(fill: &StreamingFill, request: &CanonicalRequest) -> bool {
    let names: Vec<String> = fill.vary.iter().map(|(name, _)| name.clone()).collect();
    cache::vary_values(&names, &request.headers) == fill.vary
}

fn log_access(
    request: &CanonicalRequest,
    origin: &str,
    response: &Response<Body>,
    started: Instant,
) {
    let cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    // Milliseconds the origin took to answer; absent when the origin was not asked (hits).
    let upstream_ms = response
        .extensions()
        .get::<UpstreamTime>()
        .map(|upstream| upstream.0.as_secs_f64() * 1000.0);
    tracing::info!(
        target: "caje::access",
        client = %request.client.ip(),
        method = %request.method,
        url = %request.url,
        status = response.status().as_u16(),
        cache,
        origin,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        upstream_ms,
    );
}
