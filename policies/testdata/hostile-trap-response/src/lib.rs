//! Panics (traps) in on-response for paths under `/trap`.

use caje_policy::{CacheVerdict, Policy, Request, Response};

pub struct HostileTrapResponse;

impl Policy for HostileTrapResponse {
    fn on_response(req: &Request, _resp: &Response, current: CacheVerdict) -> CacheVerdict {
        if req.path_is_under("/trap") {
            panic!("hostile-trap-response was asked to trap on {}", req.path());
        }
        current
    }
}

caje_policy::export!(HostileTrapResponse);
