//! Phase 6, decide store: the one place that decides whether an origin response is stored, and
//! why not (a [`NotStored`] reason, in `Cache-Status: detail` and a metric label).
//!
//! caje's HTTP caching rules speak first, then the policies' `on-response` verdict, then what
//! no policy may override (`caje_responses_not_stored_total{reason}` counts each refusal).

use std::time::SystemTime;

use http::{HeaderMap, StatusCode, request, response};

use super::context::RequestCtx;
use crate::cache::{self, Assessment, NotStored, Windows};
use crate::policy::{CacheVerdict, PolicyRefusal, ResponseView};

/// What to do with an origin response.
pub enum StoreDecision {
    Store(StoreVerdict),
    Pass(NotStored),
    /// A closed-mode policy failed: the request is answered with 503.
    Refused(PolicyRefusal),
}

/// How a response is stored: the policies' verdict (tags, `Set-Cookie`) and the entry's windows.
pub struct StoreVerdict {
    pub verdict: CacheVerdict,
    pub windows: Windows,
}

/// The decision on a response to a cache fetch. `judged` is the full client request
/// (credentials included): storability is checked against it.
pub fn decide_store(
    ctx: &RequestCtx,
    judged: &request::Parts,
    response: &response::Parts,
    max_object_size: u64,
    now: SystemTime,
) -> StoreDecision {
    let Assessment {
        windows, storable, ..
    } = cache::assess(judged, response, now, max_object_size);
    decide(ctx, response.status, &response.headers, windows, storable)
}

/// The decision on a stored response the origin confirmed with a 304, with its merged
/// `headers`: caje's rules stored it already, so only the policies speak.
pub fn decide_update(
    ctx: &RequestCtx,
    status: StatusCode,
    headers: &HeaderMap,
    windows: Windows,
) -> StoreDecision {
    decide(ctx, status, headers, windows, Ok(()))
}

/// The last reason, known only once the whole body is in: it outgrew `max_object_size`
/// (a response without `Content-Length` is streamed to the client and the store alike).
pub fn body_fits(body_len: u64, max_object_size: u64) -> Result<(), NotStored> {
    if body_len > max_object_size {
        count(NotStored::TooLarge);
        return Err(NotStored::TooLarge);
    }
    Ok(())
}

fn decide(
    ctx: &RequestCtx,
    status: StatusCode,
    headers: &HeaderMap,
    windows: Windows,
    storable: Result<(), NotStored>,
) -> StoreDecision {
    let default = CacheVerdict::default_for(&windows, storable.is_ok());
    let chain = &ctx.route.chain;
    let verdict = if chain.is_empty() {
        default
    } else {
        let response = ResponseView {
            status,
            headers,
            origin: &ctx.route.origin.name,
        };
        match chain.on_response(&ctx.request.view(), &response, default) {
            Ok(verdict) => verdict,
            Err(refusal) => return StoreDecision::Refused(refusal),
        }
    };
    // Policies may store what http-cache-semantics would not, never what cannot be stored correctly.
    let refused = match storable {
        Err(reason) if reason.binds_policies() || !verdict.store => Some(reason),
        _ if !verdict.store => Some(NotStored::Policy),
        _ => None,
    };
    match refused {
        Some(reason) => {
            count(reason);
            StoreDecision::Pass(reason)
        }
        None => StoreDecision::Store(StoreVerdict {
            windows: verdict.windows(windows.must_revalidate),
            verdict,
        }),
    }
}

fn count(reason: NotStored) {
    metrics::counter!("caje_responses_not_stored_total", "reason" => reason.as_str()).increment(1);
}
