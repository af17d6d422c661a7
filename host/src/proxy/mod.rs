//! The caching reverse proxy: a request's life as a sequence of phases, one file each, run in
//! this order by [`Proxy::handle`] (data flows one way, down the list):
//!
//! 1. `canonicalize`: the request in one canonical form (absolute URL, Host, no hop-by-hop).
//! 2. `route`: origin, cache key, lookup or pass, as the policies' `on-request` decides.
//! 3. `lookup`: a stored response that may answer now, or a miss.
//! 4. `coalesce`: one origin fetch per key; other requests for it follow that flight.
//! 5. `fetch`: the origin request, built once; the answer sorted (304, failure, response).
//! 6. `decide_store`: whether the response is stored, and why not.
//! 7. `store`: the entry written while clients read it; the manifest record.
//! 8. `respond`: the client's response; its `outcome` is rendered into headers at the edge.
//! 9. `log`: one access-log line from the context and the outcome.
//!
//! `RequestCtx` (`context`) carries what phases 1–2 decided; `flight` runs phases
//! 4–7 for a miss, `pass` relays what is not looked up, `warm` runs a manifest row through the
//! same path.

mod canonicalize;
mod coalesce;
mod config;
mod context;
mod decide_store;
mod fetch;
mod flight;
mod headers;
mod log;
mod lookup;
mod origin;
mod outcome;
mod pass;
mod respond;
mod route;
mod store;
mod warm;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::uri::Scheme;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

pub use canonicalize::{BadRequest, CanonicalRequest};
pub use coalesce::Flights;
pub use config::{OriginConfig, OriginUrl};
pub use origin::{OriginError, Origins};
pub use outcome::{CacheOutcome, Forward, XCache};
pub use warm::Warmed;

use crate::body::Body;
use crate::cache::{self, Entry, Freshness};
use crate::node::NodeContext;
use coalesce::{Coalescer, Join};
use context::{Action, RequestCtx};
use lookup::Looked;
use respond::Answer;

/// What the proxy is configured with, besides the parts it is handed.
pub struct ProxyConfig<'a> {
    pub origins: &'a BTreeMap<String, OriginConfig>,
    /// The origin of requests no policy and no `hosts` list sends elsewhere.
    pub default_origin: &'a str,
    /// One `caje::access` log line per request.
    pub access_log: bool,
}

/// The proxy of one node: its origins and flights, and the parts it shares with the rest of
/// the node.
pub struct Proxy {
    node: Arc<NodeContext>,
    origins: Origins,
    coalescer: Arc<Coalescer>,
    default_origin: String,
    scheme: Scheme,
    access_log: bool,
}

impl Proxy {
    /// Builds the proxy; fails when an origin's TLS settings are unusable.
    pub fn new(config: &ProxyConfig<'_>, node: Arc<NodeContext>) -> Result<Proxy, String> {
        Ok(Proxy {
            node,
            origins: Origins::new(config.origins)?,
            coalescer: Arc::default(),
            default_origin: config.default_origin.to_owned(),
            scheme: Scheme::HTTP,
            access_log: config.access_log,
        })
    }

    /// No origin restricts the hosts it serves.
    pub fn accepts_any_host(&self) -> bool {
        self.origins.accepts_any_host()
    }

    /// The count of origin fetches in flight, for health.
    pub fn flights(&self) -> Flights {
        Flights::of(&self.coalescer)
    }
}

impl Proxy {
    /// A client request's life: canonicalize → route → (lookup … respond) or pass → log, and
    /// the cache outcome rendered into the response's headers, once.
    pub async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<Body> {
        let started = Instant::now();
        let (mut parts, body) = request.into_parts();
        let request = match CanonicalRequest::new(&mut parts, client, &self.scheme) {
            Ok(request) => request,
            Err(err) => return respond::error_closing(err.status(), &err.to_string()),
        };
        let chain = self.node.policies.chain();
        let ctx = match route::route(&self.origins, &self.default_origin, chain, request) {
            Ok(ctx) => ctx,
            Err(answer) => return answer.render(),
        };
        let answer = match ctx.action {
            Action::Lookup => self.serve(&ctx).await,
            Action::Pass(forward) => pass::pass(&self.node.cache, &ctx, body, forward).await,
        };
        if let Some(outcome) = answer.outcome {
            outcome.count();
        }
        if self.access_log {
            log::access(&ctx, &answer, started);
        }
        answer.render()
    }

    /// A cacheable request: a stored response answers, or one coalesced flight per key fetches.
    pub(crate) async fn serve(self: &Arc<Self>, ctx: &RequestCtx) -> Answer {
        let now = SystemTime::now();
        let stale = match lookup::lookup(&self.node.cache, ctx, now).await {
            Looked::Hit(entry, freshness) => return self.hit(ctx, &entry, freshness, now),
            Looked::Miss { stale } => stale,
        };
        if cache::only_if_cached(&ctx.request.headers) {
            return Answer::plain(respond::error(
                StatusCode::GATEWAY_TIMEOUT,
                "not in the cache (the request said only-if-cached)",
            ));
        }
        if ctx.request.is_authorized() {
            // Requests with credentials never share a fetch: their responses may be theirs alone.
            return self.fetch_alone(ctx, stale.as_ref()).await;
        }
        match self.coalescer.join(&ctx.key) {
            Join::Leader(guard) => {
                if let Some(Looked::Hit(entry, freshness)) =
                    lookup::recheck_memory(&self.node.cache, ctx, now)
                {
                    return self.hit(ctx, &entry, freshness, now);
                }
                self.lead(guard, ctx, stale).await
            }
            Join::Follower(receiver) => self.follow(receiver, ctx, stale).await,
        }
    }

    /// Answers from a stored entry; within stale-while-revalidate it is refreshed in the
    /// background.
    fn hit(
        self: &Arc<Self>,
        ctx: &RequestCtx,
        entry: &Arc<Entry>,
        freshness: Freshness,
        now: SystemTime,
    ) -> Answer {
        let ttl = entry.head.timeline.ttl_left(now);
        let outcome = if freshness == Freshness::Fresh {
            CacheOutcome::Hit { ttl }
        } else {
            // The refresh is a flight others join and its response is stored for everyone:
            // like any shared fetch, it is never made with a client's credentials (the next
            // request without them refreshes the entry).
            if !ctx.request.is_authorized() {
                self.refresh_in_background(ctx, entry.clone());
            }
            CacheOutcome::StaleWhileRevalidate { ttl }
        };
        let response = respond::from_entry(&self.node.cache, entry, &ctx.request, now);
        Answer::new(response, outcome)
    }
}
