//! Valid decisions of every kind, for the proxy's tests: `/synthetic` is answered with a 418
//! made here; every other request reaches its origin with `x-policy: decorate` set,
//! `x-trace: decorate` appended and `x-secret` removed, and requests under `/keyed` with the
//! origin's API key (`authorization: Bearer origin-key`); an origin response carrying
//! `x-decorate-no-store` is not stored.

use caje_policy::{CacheVerdict, Policy, Request, RequestDecision, Response, SyntheticResponse};

pub struct Decorate;

impl Policy for Decorate {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        if req.path() == "/synthetic" {
            let teapot = SyntheticResponse::new(418, "short and stout\n")
                .with_header("content-type", "text/plain")
                .with_header("x-policy", "decorate");
            return current.respond(teapot);
        }
        let decorated = current
            .set_origin_header("x-policy", "decorate")
            .append_origin_header("x-trace", "decorate")
            .remove_origin_header("x-secret");
        if req.path_is_under("/keyed") {
            decorated.set_origin_header("authorization", "Bearer origin-key")
        } else {
            decorated
        }
    }

    fn on_response(_req: &Request, resp: &Response, current: CacheVerdict) -> CacheVerdict {
        if resp.header("x-decorate-no-store").is_some() {
            current.no_store()
        } else {
            current
        }
    }
}

caje_policy::export!(Decorate);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use caje_policy::{Action, HeaderEdit};

    use super::*;

    #[test]
    fn edits_every_request_but_the_synthetic_one() {
        let decision = Decorate::on_request(
            &Request::new("GET", "https://h/page"),
            RequestDecision::new("default"),
        );
        assert_eq!(
            decision.origin_header_edits,
            [
                HeaderEdit::Set(("x-policy".into(), b"decorate".to_vec())),
                HeaderEdit::Append(("x-trace".into(), b"decorate".to_vec())),
                HeaderEdit::Remove("x-secret".into()),
            ]
        );
        let synthetic = Decorate::on_request(
            &Request::new("GET", "https://h/synthetic"),
            RequestDecision::new("default"),
        );
        assert!(matches!(synthetic.action, Action::Respond(ref r) if r.status == 418));
    }

    #[test]
    fn the_origin_can_ask_not_to_store() {
        let req = Request::new("GET", "https://h/");
        let stored = CacheVerdict::new(true, Duration::from_secs(60));
        let refused = Response::new(200).with_header("x-decorate-no-store", "1");
        assert!(!Decorate::on_response(&req, &refused, stored.clone()).store);
        assert!(Decorate::on_response(&req, &Response::new(200), stored).store);
    }
}
