//! Panics (traps) in on-request for paths under `/trap`.

use caje_policy::{Policy, Request, RequestDecision};

pub struct HostileTrapRequest;

impl Policy for HostileTrapRequest {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        if req.path_is_under("/trap") {
            panic!("hostile-trap-request was asked to trap on {}", req.path());
        }
        current
    }
}

caje_policy::export!(HostileTrapRequest);
