//! Phase 3, lookup: what the cache holds for a request, and whether it may answer now (fresh,
//! or within stale-while-revalidate) or the origin must be asked.

use std::sync::Arc;
use std::time::SystemTime;

use super::context::RequestCtx;
use crate::cache::{self, Cache, Entry, Freshness};

/// What the lookup found.
pub enum Looked {
    /// A stored response answers: [`Freshness::Fresh`] or [`Freshness::StaleWhileRevalidate`].
    Hit(Arc<Entry>, Freshness),
    /// The origin must be asked; `stale` is what is stored (its validators make the fetch
    /// conditional; stale-if-error may answer with it).
    Miss { stale: Option<Arc<Entry>> },
}

/// Looks the request's key up (memory, then disk). A request with credentials is answered
/// only from a response that allows it (RFC 9111 §3.5).
pub async fn lookup(cache: &Cache, ctx: &RequestCtx, now: SystemTime) -> Looked {
    let stored = cache.lookup(&ctx.key, &ctx.request.headers).await;
    let stored =
        stored.filter(|entry| !ctx.request.is_authorized() || entry.head.shared_with_authorization);
    match stored {
        Some(entry) => judge(cache, entry, ctx, now),
        None => Looked::Miss { stale: None },
    }
}

/// The memory tier only: a fill that committed since [`lookup`] is there by now, and
/// fetching again would cost the origin a request.
pub fn recheck_memory(cache: &Cache, ctx: &RequestCtx, now: SystemTime) -> Option<Looked> {
    let entry = cache.lookup_in_memory(&ctx.key, &ctx.request.headers)?;
    match judge(cache, entry, ctx, now) {
        hit @ Looked::Hit(..) => Some(hit),
        Looked::Miss { .. } => None,
    }
}

fn judge(cache: &Cache, entry: Arc<Entry>, ctx: &RequestCtx, now: SystemTime) -> Looked {
    let freshness = cache::evaluate(
        &entry.head.timeline,
        entry.head.policy.age(now),
        &ctx.request.headers,
        now,
        cache.config().honor_client_max_stale,
    );
    match freshness {
        Freshness::Stale => Looked::Miss { stale: Some(entry) },
        usable => Looked::Hit(entry, usable),
    }
}
