//! Records what it was given: appends `seen-origin=<origin>` to the cache key and
//! `seen-ttl=<seconds>` to the tags, so a test can see the decision each module received.

use caje_policy::{CacheVerdict, Policy, Request, RequestDecision, Response};

pub struct Probe;

impl Policy for Probe {
    fn on_request(_req: &Request, current: RequestDecision) -> RequestDecision {
        let seen = format!("seen-origin={}", current.origin);
        current.with_cache_key(seen)
    }

    fn on_response(_req: &Request, _resp: &Response, current: CacheVerdict) -> CacheVerdict {
        let seen = format!("seen-ttl={}", current.ttl.as_secs());
        current.with_tag(seen)
    }
}

caje_policy::export!(Probe);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn records_the_decision_it_was_given() {
        let req = Request::new("GET", "https://h/");
        let decision = Probe::on_request(&req, RequestDecision::new("api"));
        assert_eq!(decision.cache_key, ["seen-origin=api"]);
        let verdict = CacheVerdict::new(true, Duration::from_secs(90));
        assert_eq!(
            Probe::on_response(&req, &Response::new(200), verdict).tags,
            ["seen-ttl=90"]
        );
    }
}
