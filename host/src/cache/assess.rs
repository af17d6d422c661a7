//! What caje's HTTP caching rules say about an origin response before any policy speaks: the
//! proxy hands this to the policy chain, and `caje policy test` shows authors the same defaults.

use std::time::SystemTime;

use http::{request, response};
use http_cache_semantics::{CacheOptions, CachePolicy};

use super::entry::Windows;
use super::freshness::default_windows;
use super::storable::{NotStored, check};

/// The host's view of one response.
pub struct Assessment {
    /// http-cache-semantics' policy for the full client request, as a shared cache.
    pub policy: CachePolicy,
    /// Freshness and the stale windows of `Cache-Control`.
    pub windows: Windows,
    /// Whether caje would store it (a policy may still override that).
    pub storable: Result<(), NotStored>,
}

/// Assesses `response` to `request` (the full request, credentials included) at `now`.
pub fn assess(
    request: &request::Parts,
    response: &response::Parts,
    now: SystemTime,
    max_object_size: u64,
) -> Assessment {
    let policy = CachePolicy::new_options(request, response, now, cache_options());
    let windows = default_windows(&policy, &response.headers, now);
    let storable = check(request, response, &policy, windows.ttl, max_object_size);
    Assessment {
        policy,
        windows,
        storable,
    }
}

/// http-cache-semantics' options for caje: a shared cache.
pub fn cache_options() -> CacheOptions {
    CacheOptions {
        shared: true,
        ..CacheOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parts(cache_control: &str, cookie: bool) -> (request::Parts, response::Parts) {
        let mut request = http::Request::get("https://example.com/").header("host", "example.com");
        if cookie {
            request = request.header("cookie", "a=b");
        }
        let response = http::Response::builder().header("cache-control", cache_control);
        (
            request.body(()).unwrap().into_parts().0,
            response.body(()).unwrap().into_parts().0,
        )
    }

    #[test]
    fn storability_follows_semantics_and_shared_cache_rules() {
        let now = SystemTime::now();
        let (request, response) = parts("max-age=60, stale-if-error=600", false);
        let fresh = assess(&request, &response, now, 1 << 20);
        assert_eq!(fresh.storable, Ok(()));
        assert_eq!(fresh.windows.ttl, Duration::from_secs(60));
        assert_eq!(fresh.windows.stale_if_error, Duration::from_secs(600));
        let (request, response) = parts("max-age=60", true);
        let personal = assess(&request, &response, now, 1 << 20);
        assert_eq!(personal.storable, Err(NotStored::Cookie));
        let (request, response) = parts("private, max-age=60", false);
        assert_eq!(
            assess(&request, &response, now, 1 << 20).storable,
            Err(NotStored::Private),
            "caje is a shared cache"
        );
    }

    fn verdict(
        method: &str,
        request_headers: &[(&str, &str)],
        status: u16,
        response_headers: &[(&str, &str)],
    ) -> Result<(), NotStored> {
        let mut request = http::Request::builder()
            .method(method)
            .uri("https://example.com/")
            .header("host", "example.com");
        for (name, value) in request_headers {
            request = request.header(*name, *value);
        }
        let mut response = http::Response::builder().status(status);
        for (name, value) in response_headers {
            response = response.header(*name, *value);
        }
        let request = request.body(()).unwrap().into_parts().0;
        let response = response.body(()).unwrap().into_parts().0;
        assess(&request, &response, SystemTime::now(), 1 << 20).storable
    }

    #[test]
    fn each_refusal_of_rfc_9111_gets_its_own_reason() {
        let fresh = [("cache-control", "max-age=60")];
        let cases = [
            (verdict("GET", &[], 200, &fresh), Ok(())),
            (
                verdict("GET", &[], 200, &[("cache-control", "no-store")]),
                Err(NotStored::NoStore),
            ),
            (
                verdict("GET", &[("cache-control", "no-store")], 200, &fresh),
                Err(NotStored::NoStore),
            ),
            (verdict("POST", &[], 200, &[]), Err(NotStored::Method)),
            (
                verdict("GET", &[], 200, &[("cache-control", "private, max-age=60")]),
                Err(NotStored::Private),
            ),
            (
                verdict("GET", &[("authorization", "Bearer x")], 200, &fresh),
                Err(NotStored::Authorization),
            ),
            (verdict("GET", &[], 302, &[]), Err(NotStored::Status)),
            (
                verdict("GET", &[], 200, &[("content-length", "2000000"), fresh[0]]),
                Err(NotStored::TooLarge),
            ),
            (verdict("GET", &[], 200, &[]), Err(NotStored::NoFreshness)),
        ];
        for (i, (got, expected)) in cases.into_iter().enumerate() {
            assert_eq!(got, expected, "case {i}");
        }
    }
}
