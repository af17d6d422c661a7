//! A miss's flight: fetch → decide store → store, once per key in a task of its own (the fill
//! finishes even when every client has gone), its leader and followers answered from it.
//!
//! Requests with credentials fly alone.

use std::sync::Arc;
use std::time::SystemTime;

use http::{Response, StatusCode, request, response};
use hyper::body::Incoming;
use tokio::sync::oneshot;

use super::Proxy;
use super::coalesce::{FlightGuard, Follower, Join, Shared};
use super::context::RequestCtx;
use super::decide_store::{self, StoreDecision};
use super::fetch::{self, Failure, Fetched, OriginAnswer};
use super::outcome::{CacheOutcome, Forward};
use super::respond::{self, Answer};
use super::route;
use super::store::{self, Pump};
use crate::body::Body;
use crate::cache::{self, Entry, NotStored};

/// What a flight hands to the request that made it.
enum Landed {
    /// For the requesting client alone; `reason` when the store decision refused it.
    Private(Response<Body>, Option<NotStored>),
    /// For every waiting request; a fill comes with the pump that feeds it.
    Shared(Shared, Option<Box<Pump>>),
}

/// What the leader receives from its flight's task.
enum Led {
    Private(Response<Body>, Option<NotStored>),
    Shared(Shared),
}

impl Proxy {
    /// Leads a flight: fetches in a task of its own and answers from what it lands.
    pub(super) async fn lead(
        self: &Arc<Self>,
        guard: FlightGuard,
        ctx: &RequestCtx,
        stale: Option<Arc<Entry>>,
    ) -> Answer {
        let led = self.spawn_flight(guard, ctx, stale.clone());
        match led.await {
            Ok(Led::Private(response, reason)) => private(response, reason, stale.as_ref()),
            Ok(Led::Shared(shared)) => self.answer(shared, ctx, stale.as_ref()),
            Err(_) => Answer::plain(respond::error(
                StatusCode::BAD_GATEWAY,
                "the origin fetch failed unexpectedly",
            )),
        }
    }

    /// Follows another request's flight; fetches alone when it shares nothing this request
    /// may use, or takes longer than `coalesce_wait`.
    pub(super) async fn follow(
        self: &Arc<Self>,
        follower: Follower,
        ctx: &RequestCtx,
        stale: Option<Arc<Entry>>,
    ) -> Answer {
        let wait = self.node.cache.config().coalesce_wait;
        match follower.wait(wait).await {
            Some(Shared::Filling(fill)) if !fill.fits(&ctx.request.headers) => {
                self.fetch_alone(ctx, stale.as_ref()).await
            }
            Some(shared) => self.answer(shared, ctx, stale.as_ref()),
            None => self.fetch_alone(ctx, stale.as_ref()).await,
        }
    }

    /// A flight nobody follows (the request's own credentials, or a follower on its own).
    pub(super) async fn fetch_alone(
        self: &Arc<Self>,
        ctx: &RequestCtx,
        stale: Option<&Arc<Entry>>,
    ) -> Answer {
        match self.fly(ctx, stale).await {
            Landed::Private(response, reason) => private(response, reason, stale),
            Landed::Shared(shared, pump) => {
                if let Some(pump) = pump {
                    let proxy = self.clone();
                    tokio::spawn(async move {
                        pump.run(&proxy.node.cache, proxy.node.manifest.as_ref())
                            .await
                    });
                }
                self.answer(shared, ctx, stale)
            }
        }
    }

    /// Refreshes a stale entry in a flight of its own, unless one is already under way.
    pub(super) fn refresh_in_background(self: &Arc<Self>, ctx: &RequestCtx, stale: Arc<Entry>) {
        if let Join::Leader(guard) = self.coalescer.join(&ctx.key) {
            drop(self.spawn_flight(guard, ctx, Some(stale)));
        }
    }

    /// Runs a flight in its own task so the fill finishes even if every client goes away. The
    /// flight ends (the guard drops) only once the entry is committed: until then latecomers
    /// join it.
    fn spawn_flight(
        self: &Arc<Self>,
        guard: FlightGuard,
        ctx: &RequestCtx,
        stale: Option<Arc<Entry>>,
    ) -> oneshot::Receiver<Led> {
        let (sender, receiver) = oneshot::channel();
        let proxy = self.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            match proxy.fly(&ctx, stale.as_ref()).await {
                Landed::Private(response, reason) => {
                    guard.publish(None);
                    let _ = sender.send(Led::Private(response, reason));
                }
                Landed::Shared(shared, pump) => {
                    guard.publish(Some(shared.clone()));
                    let _ = sender.send(Led::Shared(shared));
                    if let Some(pump) = pump {
                        pump.run(&proxy.node.cache, proxy.node.manifest.as_ref())
                            .await;
                    }
                }
            }
            drop(guard);
        });
        receiver
    }

    /// Phases 5–7 for one miss: fetch, then decide and store (or merge a 304).
    async fn fly(&self, ctx: &RequestCtx, stale: Option<&Arc<Entry>>) -> Landed {
        let Fetched { judged, answer } = fetch::fetch(ctx, stale.map(Arc::as_ref)).await;
        let now = SystemTime::now();
        match answer {
            OriginAnswer::Failed(failure) => Landed::Shared(Shared::Failed(failure), None),
            OriginAnswer::NotModified(parts, body) => match stale {
                Some(stale) => self.revalidated(ctx, &judged, stale, parts, body, now),
                None => Landed::Private(fetch::pass_through(parts, body, &ctx.route.origin), None),
            },
            OriginAnswer::Response(parts, body) => self.fetched(ctx, &judged, parts, body, now),
        }
    }

    /// A new response: stored if the store decision says so, else relayed to this client.
    fn fetched(
        &self,
        ctx: &RequestCtx,
        judged: &request::Parts,
        parts: response::Parts,
        body: Incoming,
        now: SystemTime,
    ) -> Landed {
        let max_object_size = self.node.cache.config().max_object_size.0;
        let stored = match decide_store::decide_store(ctx, judged, &parts, max_object_size, now) {
            StoreDecision::Store(stored) => stored,
            StoreDecision::Pass(reason) => {
                tracing::debug!(url = %ctx.request.url, reason = reason.describe(), "not storing");
                let response = fetch::pass_through(parts, body, &ctx.route.origin);
                return Landed::Private(response, Some(reason));
            }
            StoreDecision::Refused(refusal) => {
                return Landed::Private(route::refused(&ctx.request, &refusal), None);
            }
        };
        let Some(opened) = store::open(&self.node.cache, ctx, &parts) else {
            return Landed::Private(fetch::pass_through(parts, body, &ctx.route.origin), None);
        };
        let (fill, pump) = store::begin(
            &self.node.cache,
            opened,
            ctx,
            judged,
            (parts, body),
            stored,
            now,
        );
        Landed::Shared(Shared::Filling(fill), Some(Box::new(pump)))
    }

    /// A 304 to caje's revalidation: the stored entry is updated (unless the policies no longer
    /// store it) and answers. The client never sent a conditional request, so it gets the body
    /// the origin just confirmed, never the 304; a 304 that does not match is relayed as it is.
    fn revalidated(
        &self,
        ctx: &RequestCtx,
        judged: &request::Parts,
        stale: &Arc<Entry>,
        parts: response::Parts,
        body: Incoming,
        now: SystemTime,
    ) -> Landed {
        let Some(revalidation) = store::revalidate(stale, judged, &parts, now) else {
            return Landed::Private(fetch::pass_through(parts, body, &ctx.route.origin), None);
        };
        let status = StatusCode::from_u16(stale.head.status).unwrap_or(StatusCode::OK);
        let entry = match decide_store::decide_update(
            ctx,
            status,
            &revalidation.headers,
            revalidation.windows,
        ) {
            StoreDecision::Store(stored) => store::update(
                &self.node.cache,
                self.node.manifest.as_ref(),
                stale,
                revalidation,
                stored,
                now,
            ),
            // The policies no longer store it: the old entry stays as it was (stale).
            StoreDecision::Pass(_) => stale.clone(),
            StoreDecision::Refused(refusal) => {
                return Landed::Private(route::refused(&ctx.request, &refusal), None);
            }
        };
        Landed::Shared(Shared::Revalidated(entry), None)
    }

    /// Answers a request from what a flight shares.
    fn answer(&self, shared: Shared, ctx: &RequestCtx, stale: Option<&Arc<Entry>>) -> Answer {
        let now = SystemTime::now();
        match shared {
            Shared::Filling(fill) => Answer::new(
                respond::from_fill(&fill, &ctx.request),
                CacheOutcome::Stored {
                    forward: forward(stale),
                    status: fill.status.as_u16(),
                },
            ),
            Shared::Revalidated(entry) => Answer::new(
                respond::from_entry(&self.node.cache, &entry, &ctx.request, now),
                CacheOutcome::Revalidated {
                    ttl: entry.head.timeline.ttl_left(now),
                },
            ),
            Shared::Failed(failure) => self.answer_failure(&failure, ctx, stale, now),
        }
    }

    /// The origin failed: a stale copy answers within stale-if-error, else the failure does.
    fn answer_failure(
        &self,
        failure: &Failure,
        ctx: &RequestCtx,
        stale: Option<&Arc<Entry>>,
        now: SystemTime,
    ) -> Answer {
        let status = failure.status().as_u16();
        if let Some(entry) =
            stale.filter(|entry| cache::within_stale_if_error(&entry.head.timeline, now))
        {
            metrics::counter!("caje_stale_if_error_total").increment(1);
            return Answer::new(
                respond::from_entry(&self.node.cache, entry, &ctx.request, now),
                CacheOutcome::StaleIfError {
                    status,
                    ttl: entry.head.timeline.ttl_left(now),
                },
            );
        }
        if let Failure::Origin(err) = failure {
            tracing::warn!(url = %ctx.request.url, error = %err, "origin failed");
        }
        Answer::new(
            respond::from_failure(failure),
            CacheOutcome::OriginFailed {
                forward: forward(stale),
                status,
            },
        )
    }
}

/// A response for this client alone.
fn private(
    response: Response<Body>,
    reason: Option<NotStored>,
    stale: Option<&Arc<Entry>>,
) -> Answer {
    let forward = forward(stale);
    Answer::new(response, CacheOutcome::NotStored { forward, reason })
}

fn forward(stale: Option<&Arc<Entry>>) -> Forward {
    if stale.is_some() {
        Forward::Stale
    } else {
        Forward::UriMiss
    }
}
