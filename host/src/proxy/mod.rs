//! The caching reverse proxy: a request's life as a sequence of phases, one file each, run in
//! this order by [`Proxy::handle`] (data flows one way, down the list):
//!
//! 1. [`canonicalize`]: the request in one canonical form (absolute URL, Host, no hop-by-hop).
//! 2. [`route`]: origin, cache key, lookup or pass, as the policies' `on-request` decides.
//! 3. [`lookup`]: a stored response that may answer now, or a miss.
//! 4. [`coalesce`]: one origin fetch per key; other requests for it follow that flight.
//! 5. [`fetch`]: the origin request, built once; the answer sorted (304, failure, response).
//! 6. [`decide_store`]: whether the response is stored, and why not.
//! 7. [`store`]: the entry written while clients read it; the manifest record.
//! 8. [`respond`]: the client's response; its [`outcome`] is rendered into headers at the edge.
//! 9. [`log`]: one access-log line from the context and the outcome.
//!
//! [`RequestCtx`](context::RequestCtx) carries what phases 1–2 decided; `flight` runs phases
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
pub use config::{OriginConfig, OriginUrl};
pub use origin::{OriginError, Origins};
pub use outcome::{CacheOutcome, Forward, XCache};
pub use warm::Warmed;

use crate::body::Body;
use crate::cache::{self, Cache, Entry, Freshness};
use crate::litefs;
use crate::manifest::Manifest;
use crate::policy::Policies;
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

/// Everything a request needs, shared by all connections.
pub struct Proxy {
    cache: Cache,
    origins: Origins,
    coalescer: Arc<Coalescer>,
    default_origin: String,
    scheme: Scheme,
    access_log: bool,
    /// Where stored entries are recorded for the fleet; `None` when `[manifest] enabled = false`.
    manifest: Option<Manifest>,
    /// The hot-reloading policy chain (empty when the directory has no modules).
    policies: Policies,
    /// The LiteFS view of the manifest's database, when it is on a LiteFS mount.
    litefs: Option<litefs::Database>,
}

impl Proxy {
    /// Builds the proxy; fails when an origin's TLS settings are unusable.
    pub fn new(
        config: &ProxyConfig<'_>,
        cache: Cache,
        manifest: Option<Manifest>,
        policies: Policies,
    ) -> Result<Proxy, String> {
        Ok(Proxy {
            cache,
            origins: Origins::new(config.origins)?,
            coalescer: Arc::default(),
            default_origin: config.default_origin.to_owned(),
            scheme: Scheme::HTTP,
            access_log: config.access_log,
            manifest,
            policies,
            litefs: None,
        })
    }

    /// Attaches the LiteFS view of the manifest's database, for [`Proxy::litefs`].
    pub fn with_litefs(self, litefs: Option<litefs::Database>) -> Proxy {
        Proxy { litefs, ..self }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// No origin restricts the hosts it serves.
    pub fn accepts_any_host(&self) -> bool {
        self.origins.accepts_any_host()
    }

    /// The manifest's database on LiteFS, `None` when it is not on a LiteFS mount. For health
    /// reports: [`litefs::Database::status`] gives this node's role and replication lag now.
    pub fn litefs(&self) -> Option<&litefs::Database> {
        self.litefs.as_ref()
    }

    /// Origin fetches currently in flight (one per key however many requests wait for it).
    pub fn fetches_in_flight(&self) -> usize {
        self.coalescer.in_flight()
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
        let chain = self.policies.chain();
        let ctx = match route::route(&self.origins, &self.default_origin, chain, request) {
            Ok(ctx) => ctx,
            Err(answer) => return answer.render(),
        };
        let answer = match ctx.action {
            Action::Lookup => self.serve(&ctx).await,
            Action::Pass(forward) => pass::pass(&self.cache, &ctx, body, forward).await,
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
        let stale = match lookup::lookup(&self.cache, ctx, now).await {
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
                    lookup::recheck_memory(&self.cache, ctx, now)
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
        let response = respond::from_entry(&self.cache, entry, &ctx.request, now);
        Answer::new(response, outcome)
    }
}
