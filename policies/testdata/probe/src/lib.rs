//! Records what it was given, so a test can see what each module received: on-request appends
//! `seen-origin=<origin>` to the cache key, `seen-url=<path?query>` when an earlier module
//! normalised the URL and `seen-query=<query>` when the request it sees has a query;
//! on-response tags `seen-ttl=<seconds>` and `seen-from=<origin>` and sets the stored header
//! `x-probe-stored: 1`; on-deliver sets `x-probe-outcome` and `x-probe-server` (the `server`
//! header it saw, or `absent`); on-error adds `x-probe-saw: <status>` to the response it was
//! given.

use caje_policy::{
    CacheVerdict, ClientResponse, HeaderEdits, OriginError, Policy, Request, RequestDecision,
    Response, SyntheticResponse,
};

pub struct Probe;

impl Policy for Probe {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        let seen = format!("seen-origin={}", current.origin);
        let seen_url = current.url.as_ref().map(|url| format!("seen-url={url}"));
        let seen_query = req.query().map(|query| format!("seen-query={query}"));
        [seen_url, seen_query].into_iter().flatten().fold(
            current.with_cache_key(seen),
            RequestDecision::with_cache_key,
        )
    }

    fn on_response(_req: &Request, resp: &Response, current: CacheVerdict) -> CacheVerdict {
        let seen = format!("seen-ttl={}", current.ttl.as_secs());
        current
            .with_tag(seen)
            .with_tag(format!("seen-from={}", resp.origin()))
            .set_stored_header("x-probe-stored", "1")
    }

    fn on_deliver(_req: &Request, resp: &ClientResponse) -> HeaderEdits {
        let server = resp.header("server");
        HeaderEdits::new()
            .set("x-probe-outcome", resp.outcome().as_str())
            .set(
                "x-probe-server",
                server
                    .as_ref()
                    .map_or(&b"absent"[..], |value| value.as_bytes()),
            )
    }

    fn on_error(
        _req: &Request,
        _error: &OriginError,
        current: Option<SyntheticResponse>,
    ) -> Option<SyntheticResponse> {
        current.map(|response| {
            let status = response.status.to_string();
            response.with_header("x-probe-saw", status)
        })
    }
}

caje_policy::export!(Probe);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use caje_policy::{CacheOutcome, OriginFailure, PathAndQuery};

    use super::*;

    #[test]
    fn records_the_decision_it_was_given() {
        let req = Request::new("GET", "https://h/");
        let decision = Probe::on_request(&req, RequestDecision::new("api"));
        assert_eq!(decision.cache_key, ["seen-origin=api"]);
        let normalized = RequestDecision::new("api").with_url(PathAndQuery::new("/a", Some("b=1")));
        let req_seen = Request::new("GET", "https://h/a?b=1");
        assert_eq!(
            Probe::on_request(&req_seen, normalized).cache_key,
            ["seen-origin=api", "seen-url=/a?b=1", "seen-query=b=1"]
        );
        let verdict = CacheVerdict::new(true, Duration::from_secs(90));
        assert_eq!(
            Probe::on_response(&req, &Response::new(200).from_origin("api"), verdict).tags,
            ["seen-ttl=90", "seen-from=api"]
        );
    }

    #[test]
    fn records_the_response_it_was_given() {
        let req = Request::new("GET", "https://h/");
        let mut headers = Vec::new();
        let resp = ClientResponse::new(200, CacheOutcome::Stale);
        Probe::on_deliver(&req, &resp).apply_to(&mut headers);
        assert_eq!(
            headers,
            [
                ("x-probe-outcome".to_owned(), b"stale".to_vec()),
                ("x-probe-server".to_owned(), b"absent".to_vec())
            ]
        );
        let error = OriginError::new("default", OriginFailure::Timeout);
        assert_eq!(Probe::on_error(&req, &error, None), None);
        let page = Probe::on_error(&req, &error, Some(SyntheticResponse::new(504, ""))).unwrap();
        assert_eq!(page.headers, [("x-probe-saw".to_owned(), b"504".to_vec())]);
    }
}
