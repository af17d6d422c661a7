//! TTL rules by path: `/static/*` is cached for 5 minutes whatever the origin says, TTLs that
//! caje derived heuristically (no explicit `max-age`, `s-maxage` or `Expires`) are capped at
//! 10 minutes, and `/admin` is never cached.

use std::time::Duration;

use caje_policy::{CacheVerdict, Policy, Request, RequestDecision, Response};

pub const STATIC_TTL: Duration = Duration::from_secs(5 * 60);
pub const HEURISTIC_TTL_CAP: Duration = Duration::from_secs(10 * 60);

pub struct TtlOverride;

/// Statuses RFC 9110 §15.1 lets a cache store without explicit freshness: forcing a TTL on
/// anything else (a 500, a 302) would cache errors and per-user redirects.
fn heuristically_cacheable(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

fn has_explicit_freshness(resp: &Response) -> bool {
    resp.header("expires").is_some()
        || resp.header_all("cache-control").iter().any(|value| {
            value.to_str().is_some_and(|directives| {
                directives.split(',').any(|directive| {
                    let name = directive.split('=').next().unwrap_or("").trim();
                    name.eq_ignore_ascii_case("max-age") || name.eq_ignore_ascii_case("s-maxage")
                })
            })
        })
}

impl Policy for TtlOverride {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        if req.path_is_under("/admin") {
            current.pass()
        } else {
            current
        }
    }

    fn on_response(req: &Request, resp: &Response, current: CacheVerdict) -> CacheVerdict {
        if req.path_is_under("/admin") {
            current.no_store()
        } else if req.path_is_under("/static") && heuristically_cacheable(resp.status()) {
            current.store_for(STATIC_TTL)
        } else if !has_explicit_freshness(resp) {
            current.cap_ttl(HEURISTIC_TTL_CAP)
        } else {
            current
        }
    }
}

caje_policy::export!(TtlOverride);

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn verdict(url: &str, resp: Response<'static>, current: CacheVerdict) -> CacheVerdict {
        TtlOverride::on_response(&Request::new("GET", url), &resp, current)
    }

    #[test]
    fn static_assets_are_forced_to_five_minutes() {
        let no_store = CacheVerdict::new(false, Duration::ZERO);
        let resp = Response::new(200).with_header("cache-control", "no-store");
        let forced = verdict("https://h/static/app.js", resp, no_store);
        assert!(forced.store);
        assert_eq!(forced.ttl, STATIC_TTL);
        let long = CacheVerdict::new(true, HOUR);
        let resp = Response::new(200).with_header("cache-control", "max-age=3600");
        assert_eq!(
            verdict("https://h/static/a.css", resp, long).ttl,
            STATIC_TTL
        );
    }

    #[test]
    fn static_errors_are_not_forced_into_the_cache() {
        let current = CacheVerdict::new(false, Duration::ZERO);
        let forced = verdict(
            "https://h/static/app.js",
            Response::new(503),
            current.clone(),
        );
        assert_eq!(forced, current);
    }

    #[test]
    fn heuristic_ttls_are_capped() {
        let current = CacheVerdict::new(true, 10 * HOUR);
        let resp = Response::new(200).with_header("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT");
        assert_eq!(
            verdict("https://h/page", resp, current).ttl,
            HEURISTIC_TTL_CAP
        );
    }

    #[test]
    fn explicit_ttls_are_kept() {
        let current = CacheVerdict::new(true, 10 * HOUR);
        let max_age = Response::new(200).with_header("Cache-Control", "public, S-MaxAge=36000");
        assert_eq!(
            verdict("https://h/page", max_age, current.clone()).ttl,
            10 * HOUR
        );
        let expires = Response::new(200).with_header("expires", "Mon, 01 Jan 2100 00:00:00 GMT");
        assert_eq!(verdict("https://h/page", expires, current).ttl, 10 * HOUR);
    }

    #[test]
    fn admin_is_never_cached() {
        let req = Request::new("GET", "https://h/admin/users");
        assert!(TtlOverride::on_request(&req, RequestDecision::new("default")).is_pass());
        let resp = Response::new(200).with_header("cache-control", "max-age=60");
        let current = CacheVerdict::new(true, Duration::from_secs(60));
        assert!(!verdict("https://h/admin", resp, current).store);
        let other = Request::new("GET", "https://h/administrator");
        assert!(!TtlOverride::on_request(&other, RequestDecision::new("default")).is_pass());
    }
}
