//! Freshness on top of http-cache-semantics: the request's own directives, and the
//! `stale-while-revalidate` / `stale-if-error` windows (RFC 5861) that the crate does not know.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::{CACHE_CONTROL, PRAGMA};
use http_cache_semantics::CachePolicy;

use super::entry::{Timeline, Windows, millis};

/// What a stored response is good for, for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Serve it now and refresh it in the background.
    StaleWhileRevalidate,
    /// Revalidate (or refetch) before serving; serve it only if the origin fails within stale-if-error.
    Stale,
}

/// The windows http-cache-semantics and the response's Cache-Control imply, before any policy overrides them.
pub fn default_windows(
    policy: &CachePolicy,
    response_headers: &HeaderMap,
    now: SystemTime,
) -> Windows {
    let directives = Directives::parse(response_headers);
    let must_revalidate = directives.has("must-revalidate")
        || directives.has("proxy-revalidate")
        || directives.has("s-maxage")
        || directives.has("no-cache");
    let stale_window = |name| {
        if must_revalidate {
            Duration::ZERO
        } else {
            directives.seconds(name).unwrap_or_default()
        }
    };
    Windows {
        ttl: policy.time_to_live(now),
        stale_while_revalidate: stale_window("stale-while-revalidate"),
        stale_if_error: stale_window("stale-if-error"),
        must_revalidate,
    }
}

/// Decides whether an entry may answer a request at `now`, honouring the request's Cache-Control.
pub fn evaluate(
    timeline: &Timeline,
    age: Duration,
    request_headers: &HeaderMap,
    now: SystemTime,
    honor_client_max_stale: bool,
) -> Freshness {
    let now_ms = millis(now);
    let fresh = now_ms < timeline.fresh_until;
    if request_headers.contains_key(CACHE_CONTROL) || request_headers.contains_key(PRAGMA) {
        let request = Directives::parse(request_headers);
        let pragma_no_cache = !request_headers.contains_key(CACHE_CONTROL)
            && request_headers.get_all(PRAGMA).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains("no-cache"))
            });
        if request.has("no-cache") || pragma_no_cache {
            return Freshness::Stale;
        }
        if request
            .seconds("max-age")
            .is_some_and(|max_age| age > max_age)
        {
            return Freshness::Stale;
        }
        if let Some(min_fresh) = request.seconds("min-fresh") {
            let left = Duration::from_millis(timeline.fresh_until.saturating_sub(now_ms));
            if left < min_fresh {
                return Freshness::Stale;
            }
        }
        if !fresh && honor_client_max_stale && !timeline.must_revalidate && request.has("max-stale")
        {
            let staleness = Duration::from_millis(now_ms - timeline.fresh_until);
            if request
                .seconds("max-stale")
                .is_none_or(|limit| staleness <= limit)
            {
                return Freshness::Fresh;
            }
        }
    }
    if fresh {
        Freshness::Fresh
    } else if now_ms < timeline.stale_while_revalidate_until {
        Freshness::StaleWhileRevalidate
    } else {
        Freshness::Stale
    }
}

/// The origin failed: may this entry answer instead?
pub fn within_stale_if_error(timeline: &Timeline, now: SystemTime) -> bool {
    millis(now) < timeline.stale_if_error_until
}

/// The request's `only-if-cached`: answer from the cache or 504, never contact the origin.
pub fn only_if_cached(request_headers: &HeaderMap) -> bool {
    request_headers.contains_key(CACHE_CONTROL)
        && Directives::parse(request_headers).has("only-if-cached")
}

/// Cache-Control directives of one header map (names lower-cased, quotes removed).
pub(super) struct Directives(Vec<(String, Option<String>)>);

impl Directives {
    pub(super) fn parse(headers: &HeaderMap) -> Directives {
        let mut directives = Vec::new();
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for part in value.split(',') {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                let (name, argument) = match part.split_once('=') {
                    Some((name, argument)) => {
                        (name, Some(argument.trim().trim_matches('"').to_owned()))
                    }
                    None => (part, None),
                };
                directives.push((name.trim().to_ascii_lowercase(), argument));
            }
        }
        Directives(directives)
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// A delta-seconds argument; an invalid one counts as absent.
    fn seconds(&self, name: &str) -> Option<Duration> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, argument)| argument.as_deref()?.parse::<u64>().ok())
            .map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn timeline(now: SystemTime, ttl: u64, swr: u64, sie: u64, must_revalidate: bool) -> Timeline {
        Timeline::new(
            now,
            &Windows {
                ttl: Duration::from_secs(ttl),
                stale_while_revalidate: Duration::from_secs(swr),
                stale_if_error: Duration::from_secs(sie),
                must_revalidate,
            },
        )
    }

    #[test]
    fn windows_follow_the_timeline() {
        let stored = SystemTime::now();
        let t = timeline(stored, 10, 20, 60, false);
        let none = HeaderMap::new();
        let at = |secs| stored + Duration::from_secs(secs);
        assert_eq!(
            evaluate(&t, Duration::ZERO, &none, at(5), false),
            Freshness::Fresh
        );
        assert_eq!(
            evaluate(&t, Duration::ZERO, &none, at(15), false),
            Freshness::StaleWhileRevalidate
        );
        assert_eq!(
            evaluate(&t, Duration::ZERO, &none, at(31), false),
            Freshness::Stale
        );
        assert!(within_stale_if_error(&t, at(69)));
        assert!(!within_stale_if_error(&t, at(71)));
    }

    #[test]
    fn request_directives_force_revalidation() {
        let now = SystemTime::now();
        let t = timeline(now, 100, 0, 0, false);
        let age = Duration::from_secs(50);
        assert_eq!(
            evaluate(
                &t,
                age,
                &headers(&[("cache-control", "no-cache")]),
                now,
                false
            ),
            Freshness::Stale
        );
        assert_eq!(
            evaluate(&t, age, &headers(&[("pragma", "no-cache")]), now, false),
            Freshness::Stale
        );
        assert_eq!(
            evaluate(
                &t,
                age,
                &headers(&[("cache-control", "max-age=10")]),
                now,
                false
            ),
            Freshness::Stale
        );
        assert_eq!(
            evaluate(
                &t,
                age,
                &headers(&[("cache-control", "max-age=60")]),
                now,
                false
            ),
            Freshness::Fresh
        );
        assert_eq!(
            evaluate(
                &t,
                age,
                &headers(&[("cache-control", "min-fresh=200")]),
                now,
                false
            ),
            Freshness::Stale
        );
    }

    #[test]
    fn client_max_stale_is_ignored_unless_enabled() {
        let stored = SystemTime::now();
        let t = timeline(stored, 1, 0, 0, false);
        let later = stored + Duration::from_secs(5);
        let max_stale = headers(&[("cache-control", "max-stale=60")]);
        assert_eq!(
            evaluate(&t, Duration::ZERO, &max_stale, later, false),
            Freshness::Stale
        );
        assert_eq!(
            evaluate(&t, Duration::ZERO, &max_stale, later, true),
            Freshness::Fresh
        );
        let strict = timeline(stored, 1, 0, 0, true);
        assert_eq!(
            evaluate(&strict, Duration::ZERO, &max_stale, later, true),
            Freshness::Stale
        );
    }

    #[test]
    fn must_revalidate_closes_the_stale_windows() {
        let response = headers(&[(
            "cache-control",
            "max-age=5, must-revalidate, stale-while-revalidate=30, stale-if-error=60",
        )]);
        let request = http::Request::get("http://a.test/").body(()).unwrap();
        let http_response = {
            let mut r = http::Response::builder().status(200).body(()).unwrap();
            *r.headers_mut() = response.clone();
            r
        };
        let now = SystemTime::now();
        let policy = CachePolicy::new_options(&request, &http_response, now, Default::default());
        let windows = default_windows(&policy, &response, now);
        assert_eq!(windows.stale_while_revalidate, Duration::ZERO);
        assert_eq!(windows.stale_if_error, Duration::ZERO);
        assert!(windows.must_revalidate);
        let relaxed = headers(&[(
            "cache-control",
            "max-age=5, stale-while-revalidate=30, stale-if-error=60",
        )]);
        let windows = default_windows(&policy, &relaxed, now);
        assert_eq!(windows.stale_while_revalidate, Duration::from_secs(30));
        assert_eq!(windows.stale_if_error, Duration::from_secs(60));
    }
}
