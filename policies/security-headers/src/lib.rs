//! Security headers on every response caje sends, and an error page of its own when the origin
//! fails: what a Varnish `vcl_deliver` and `vcl_backend_error` usually do.

use caje_policy::{ClientResponse, HeaderEdits, OriginError, Policy, Request, SyntheticResponse};

pub const HSTS: &str = "max-age=63072000; includeSubDomains";
pub const REFERRER_POLICY: &str = "strict-origin-when-cross-origin";
/// Used when the origin sent no policy of its own.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'self'; base-uri 'self'";
/// Headers that tell attackers what the origin runs.
pub const REVEALING: [&str; 2] = ["server", "x-powered-by"];
/// Seconds a client should wait before trying again after an origin failure.
pub const RETRY_AFTER: &str = "30";

pub const ERROR_PAGE: &str = "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>Back soon</title></head>
<body><h1>Back soon</h1><p>This page is unavailable for a moment. Please try again in a minute.</p></body>
</html>
";

pub struct SecurityHeaders;

impl Policy for SecurityHeaders {
    fn on_deliver(req: &Request, resp: &ClientResponse) -> HeaderEdits {
        let mut edits = REVEALING
            .iter()
            .fold(HeaderEdits::new(), |edits, name| edits.remove(name))
            .set("x-content-type-options", "nosniff")
            .set("referrer-policy", REFERRER_POLICY);
        // Browsers ignore HSTS over plain http; sending it there would only mislead.
        if req.scheme() == "https" {
            edits = edits.set("strict-transport-security", HSTS);
        }
        if !resp.has_header("content-security-policy") {
            edits = edits.set("content-security-policy", CSP);
        }
        edits
    }

    fn on_error(
        _req: &Request,
        error: &OriginError,
        current: Option<SyntheticResponse>,
    ) -> Option<SyntheticResponse> {
        // A page an earlier module made stands.
        current.or_else(|| {
            let page = SyntheticResponse::new(error.status(), ERROR_PAGE)
                .with_header("content-type", "text/html; charset=utf-8")
                .with_header("cache-control", "no-store")
                .with_header("retry-after", RETRY_AFTER);
            Some(page)
        })
    }
}

caje_policy::export!(SecurityHeaders);

#[cfg(test)]
mod tests {
    use caje_policy::{CacheOutcome, OriginFailure};

    use super::*;

    fn delivered(url: &str, resp: ClientResponse) -> Vec<(String, Vec<u8>)> {
        let mut headers = resp
            .headers()
            .into_iter()
            .map(|(name, value)| (name, value.as_bytes().to_vec()))
            .collect();
        SecurityHeaders::on_deliver(&Request::new("GET", url), &resp).apply_to(&mut headers);
        headers
    }

    fn value<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
        headers
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_slice())
    }

    #[test]
    fn every_response_gets_the_headers_and_loses_the_revealing_ones() {
        let resp = ClientResponse::new(200, CacheOutcome::Hit)
            .with_header("server", "Apache/2.4.1")
            .with_header("x-powered-by", "PHP/8.3")
            .with_header("content-type", "text/html");
        let headers = delivered("https://example.com/", resp);
        assert_eq!(value(&headers, "server"), None);
        assert_eq!(value(&headers, "x-powered-by"), None);
        assert_eq!(
            value(&headers, "x-content-type-options"),
            Some(&b"nosniff"[..])
        );
        assert_eq!(
            value(&headers, "referrer-policy"),
            Some(REFERRER_POLICY.as_bytes())
        );
        assert_eq!(
            value(&headers, "strict-transport-security"),
            Some(HSTS.as_bytes())
        );
        assert_eq!(
            value(&headers, "content-security-policy"),
            Some(CSP.as_bytes())
        );
        assert_eq!(value(&headers, "content-type"), Some(&b"text/html"[..]));
    }

    #[test]
    fn no_hsts_over_http_and_the_origins_csp_stands() {
        let resp = ClientResponse::new(200, CacheOutcome::Miss)
            .with_header("content-security-policy", "default-src 'none'");
        let headers = delivered("http://example.com/", resp);
        assert_eq!(value(&headers, "strict-transport-security"), None);
        assert_eq!(
            value(&headers, "content-security-policy"),
            Some(&b"default-src 'none'"[..])
        );
    }

    #[test]
    fn origin_failures_get_the_error_page_with_caje_s_status() {
        let req = Request::new("GET", "https://example.com/");
        for (failure, status) in [
            (OriginFailure::Unreachable, 502),
            (OriginFailure::Timeout, 504),
            (OriginFailure::ErrorStatus(503), 503),
        ] {
            let error = OriginError::new("default", failure);
            let page = SecurityHeaders::on_error(&req, &error, None).unwrap();
            assert_eq!(page.status, status);
            assert_eq!(page.body, ERROR_PAGE.as_bytes());
            assert!(
                page.headers
                    .contains(&("cache-control".to_owned(), b"no-store".to_vec()))
            );
            assert!(
                page.headers
                    .contains(&("retry-after".to_owned(), b"30".to_vec()))
            );
        }
        let earlier = SyntheticResponse::new(503, "maintenance");
        let error = OriginError::new("default", OriginFailure::Timeout);
        assert_eq!(
            SecurityHeaders::on_error(&req, &error, Some(earlier.clone())),
            Some(earlier)
        );
    }
}
