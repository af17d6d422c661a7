//! What the cache did for one request, a typed value beside the response until the edge
//! renders it, once, into `Cache-Status` (RFC 9211) and `X-Cache`.
//!
//! Logs, metrics and warming read the value, never the headers.

use std::fmt::Write as _;

use http::HeaderMap;
use http::header::HeaderValue;

use super::headers;
use crate::cache::NotStored;
use crate::request_counts::{self, Counted};

/// Why a request went forward to the origin: `fwd=` of `Cache-Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Nothing usable was stored.
    UriMiss,
    /// What was stored was stale.
    Stale,
    /// A policy passed the request to the origin.
    Bypass,
    /// The method is not answered from the cache.
    Method,
}

impl Forward {
    fn as_str(self) -> &'static str {
        match self {
            Forward::UriMiss => "uri-miss",
            Forward::Stale => "stale",
            Forward::Bypass => "bypass",
            Forward::Method => "method",
        }
    }
}

/// What the cache did for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Answered from the cache, fresh; `ttl` is the seconds of freshness left.
    Hit { ttl: i64 },
    /// Answered from the cache within stale-while-revalidate (refreshed in the background).
    StaleWhileRevalidate { ttl: i64 },
    /// The origin answered and its response is being stored.
    Stored { forward: Forward, status: u16 },
    /// The origin answered for this client alone; `reason` when the store decision refused it.
    NotStored {
        forward: Forward,
        reason: Option<NotStored>,
    },
    /// The origin confirmed the stored response (304), which answered.
    Revalidated { ttl: i64 },
    /// The origin failed with `status` and a stale copy answered (stale-if-error).
    StaleIfError { status: u16, ttl: i64 },
    /// The origin failed with `status` and nothing stored could answer.
    OriginFailed { forward: Forward, status: u16 },
    /// Passed to the origin without a lookup.
    Passed { forward: Forward },
    /// A policy answered without cache or origin.
    PolicyAnswer,
}

/// The short verdict of `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XCache {
    Hit,
    Miss,
    Stale,
    Bypass,
    Revalidated,
}

impl XCache {
    pub fn as_str(self) -> &'static str {
        match self {
            XCache::Hit => "HIT",
            XCache::Miss => "MISS",
            XCache::Stale => "STALE",
            XCache::Bypass => "BYPASS",
            XCache::Revalidated => "REVALIDATED",
        }
    }
}

impl CacheOutcome {
    pub fn x_cache(self) -> XCache {
        match self {
            CacheOutcome::Hit { .. } => XCache::Hit,
            CacheOutcome::StaleWhileRevalidate { .. } | CacheOutcome::StaleIfError { .. } => {
                XCache::Stale
            }
            CacheOutcome::Stored { .. }
            | CacheOutcome::NotStored { .. }
            | CacheOutcome::OriginFailed { .. } => XCache::Miss,
            CacheOutcome::Revalidated { .. } => XCache::Revalidated,
            CacheOutcome::Passed { .. } | CacheOutcome::PolicyAnswer => XCache::Bypass,
        }
    }

    /// How `caje_requests_total{cache}` counts it: a miss is any request that went to the
    /// origin for the cache (revalidations and stale-if-error included); a policy's own
    /// answer is not counted.
    fn counted(self) -> Option<Counted> {
        match self {
            CacheOutcome::Hit { .. } => Some(Counted::Hit),
            CacheOutcome::StaleWhileRevalidate { .. } => Some(Counted::Stale),
            CacheOutcome::Stored { .. }
            | CacheOutcome::NotStored { .. }
            | CacheOutcome::Revalidated { .. }
            | CacheOutcome::StaleIfError { .. }
            | CacheOutcome::OriginFailed { .. } => Some(Counted::Miss),
            CacheOutcome::Passed { .. } => Some(Counted::Bypass),
            CacheOutcome::PolicyAnswer => None,
        }
    }

    /// Counts the request in `caje_requests_total`.
    pub fn count(self) {
        if let Some(counted) = self.counted() {
            request_counts::add(counted);
        }
    }

    /// The `Cache-Status` entry: `caje; hit; fwd=…; fwd-status=…; ttl=…; stored; detail=…`.
    fn cache_status(self) -> HeaderValue {
        let (hit, forward, forward_status, ttl, stored, detail) = match self {
            CacheOutcome::Hit { ttl } | CacheOutcome::StaleWhileRevalidate { ttl } => {
                (true, None, None, Some(ttl), false, None)
            }
            CacheOutcome::Stored { forward, status } => {
                (false, Some(forward), Some(status), None, true, None)
            }
            CacheOutcome::NotStored { forward, reason } => (
                false,
                Some(forward),
                None,
                None,
                false,
                reason.map(NotStored::as_str),
            ),
            CacheOutcome::Revalidated { ttl } => (
                false,
                Some(Forward::Stale),
                Some(304),
                Some(ttl),
                false,
                None,
            ),
            CacheOutcome::StaleIfError { status, ttl } => (
                false,
                Some(Forward::Stale),
                Some(status),
                Some(ttl),
                false,
                None,
            ),
            CacheOutcome::OriginFailed { forward, status } => {
                (false, Some(forward), Some(status), None, false, None)
            }
            CacheOutcome::Passed { forward } => (false, Some(forward), None, None, false, None),
            CacheOutcome::PolicyAnswer => (
                false,
                Some(Forward::Bypass),
                None,
                None,
                false,
                Some("policy"),
            ),
        };
        let mut text = String::from("caje");
        if hit {
            text.push_str("; hit");
        }
        if let Some(forward) = forward {
            let _ = write!(text, "; fwd={}", forward.as_str());
        }
        if let Some(status) = forward_status {
            let _ = write!(text, "; fwd-status={status}");
        }
        if let Some(ttl) = ttl {
            let _ = write!(text, "; ttl={ttl}");
        }
        if stored {
            text.push_str("; stored");
        }
        if let Some(detail) = detail {
            let _ = write!(text, "; detail={detail}");
        }
        HeaderValue::from_str(&text).expect("cache status is ASCII")
    }

    /// Writes the outcome into a response's headers: done once, at the edge.
    pub fn render(self, headers: &mut HeaderMap) {
        headers.insert("cache-status", self.cache_status());
        headers.insert("x-cache", HeaderValue::from_static(self.x_cache().as_str()));
        headers::append_via(headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(outcome: CacheOutcome) -> (String, String) {
        let mut headers = HeaderMap::new();
        outcome.render(&mut headers);
        let text = |name: &str| headers[name].to_str().unwrap().to_owned();
        (text("cache-status"), text("x-cache"))
    }

    #[test]
    fn each_outcome_renders_as_rfc_9211_says() {
        let cases = [
            (CacheOutcome::Hit { ttl: 5 }, "caje; hit; ttl=5", "HIT"),
            (
                CacheOutcome::StaleWhileRevalidate { ttl: -2 },
                "caje; hit; ttl=-2",
                "STALE",
            ),
            (
                CacheOutcome::Stored {
                    forward: Forward::UriMiss,
                    status: 200,
                },
                "caje; fwd=uri-miss; fwd-status=200; stored",
                "MISS",
            ),
            (
                CacheOutcome::NotStored {
                    forward: Forward::Stale,
                    reason: Some(NotStored::NoStore),
                },
                "caje; fwd=stale; detail=no-store",
                "MISS",
            ),
            (
                CacheOutcome::Revalidated { ttl: 60 },
                "caje; fwd=stale; fwd-status=304; ttl=60",
                "REVALIDATED",
            ),
            (
                CacheOutcome::StaleIfError {
                    status: 503,
                    ttl: -1,
                },
                "caje; fwd=stale; fwd-status=503; ttl=-1",
                "STALE",
            ),
            (
                CacheOutcome::Passed {
                    forward: Forward::Method,
                },
                "caje; fwd=method",
                "BYPASS",
            ),
            (
                CacheOutcome::PolicyAnswer,
                "caje; fwd=bypass; detail=policy",
                "BYPASS",
            ),
        ];
        for (outcome, status, x_cache) in cases {
            assert_eq!(
                rendered(outcome),
                (status.to_owned(), x_cache.to_owned()),
                "{outcome:?}"
            );
        }
    }
}
